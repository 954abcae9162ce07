//! DuckDB's text rendering of values ⇄ DataFusion [`ScalarValue`]s.
//!
//! DuckLake stores values as text in several places: inlined-data tables (every
//! column in a SQLite catalog, dates/timestamps/containers in a PostgreSQL one),
//! column defaults, partition values and min/max statistics. The text is what
//! DuckDB's `CAST(x AS VARCHAR)` produces (SPEC §5.6, §6), e.g. `2024-01-15
//! 12:30:00.5`, `1 year 2 months 3 days 04:00:00`, `\x00\xFFab`, `[a, 'b,c', NULL]`,
//! `{'a': 10, 'b': x}`, `{k1=1, k2=2}`.
//!
//! The parser also accepts PostgreSQL's `::text` renderings of the columns a
//! PostgreSQL catalog stores natively (`NaN`, `Infinity`, `t`/`f`, `2 mons`,
//! `-1 days`) and the `{'a': 'x', 't': CAST('…' AS TIMESTAMP)}` form DuckDB 1.5.5
//! writes for a top-level struct (SQL-quoted children with `''` escapes).
//!
//! The formatter writes DuckDB's canonical `CAST(x AS VARCHAR)` form, which DuckDB
//! reads back with `CAST(text AS <type>)`; `parse_duckdb_text(format_duckdb_text(v))`
//! returns `v` for every supported type.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, ListArray, MapArray, StructArray, new_empty_array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{
    DataType, FieldRef, Fields, IntervalDayTime, IntervalMonthDayNano, IntervalUnit, TimeUnit,
};
use datafusion::scalar::ScalarValue;

use crate::error::Error;

/// Internal result: the error is the reason, completed into an [`Error`] at the API.
type Res<T> = std::result::Result<T, String>;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
const NANOS_PER_DAY: i64 = SECONDS_PER_DAY * NANOS_PER_SECOND;
/// DuckDB's `date_t` infinity (`2^31 - 1` days); `-infinity` is its negation.
const DATE_INFINITY: i32 = i32::MAX;
/// DuckDB's `timestamp_t` infinity; `-infinity` is its negation (not `i64::MIN`).
const TIMESTAMP_INFINITY: i64 = i64::MAX;
/// Longest excerpt of a value quoted in an error message.
const MAX_EXCERPT: usize = 120;

/// Parse DuckDB's text form of a value into a ScalarValue of `data_type`.
///
/// Never returns a null: SQL NULL has no text form (the string `NULL` is a
/// valid `varchar`). Unparsable text is an [`Error::Corrupt`] naming the text
/// and the type.
pub fn parse_duckdb_text(text: &str, data_type: &DataType) -> Result<ScalarValue, Error> {
    parse_value(text, data_type).map_err(|reason| {
        Error::Corrupt(format!(
            "cannot read DuckDB text '{}' as {data_type}: {reason}",
            excerpt(text)
        ))
    })
}

/// Render a value the way DuckDB's CAST(x AS VARCHAR) does (None for NULL).
///
/// Types DuckLake has no text form for (durations, unions, …) are an
/// [`Error::Unsupported`].
pub fn format_duckdb_text(value: &ScalarValue) -> Result<Option<String>, Error> {
    if value.is_null() {
        return Ok(None);
    }
    format_value(value).map(Some)
}

/// Parse a min/max statistics string; None when it cannot be interpreted (an unknown bound, never an error).
///
/// Tolerates the mixed encodings of SPEC §6: booleans as `0`/`1` or
/// `false`/`true`; blobs as Parquet hex (`6230`, ambiguous, so `None`) or DuckDB
/// escapes (`\x00ab`); `nan` floats and containers give `None`.
pub fn parse_stat(text: &str, data_type: &DataType) -> Option<ScalarValue> {
    match data_type {
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::FixedSizeList(_, _)
        | DataType::Struct(_)
        | DataType::Map(_, _) => None,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let value = parse_value(text, data_type).ok()?;
            let is_nan = match &value {
                ScalarValue::Float32(Some(v)) => v.is_nan(),
                ScalarValue::Float64(Some(v)) => v.is_nan(),
                _ => true,
            };
            (!is_nan).then_some(value)
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            if looks_like_parquet_hex(text) {
                None
            } else {
                parse_value(text, data_type).ok()
            }
        }
        _ => parse_value(text, data_type).ok(),
    }
}

/// Whether a blob statistic may be the plain hex DuckDB writes for Parquet
/// files, i.e. cannot be told apart from an escape-encoded blob of hex digits.
fn looks_like_parquet_hex(text: &str) -> bool {
    !text.is_empty() && text.len() % 2 == 0 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A value of at most [`MAX_EXCERPT`] characters for error messages.
fn excerpt(text: &str) -> String {
    if text.chars().count() <= MAX_EXCERPT {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX_EXCERPT).collect();
        format!("{head}…")
    }
}

// ---------------------------------------------------------------------------
// Parsing: dispatch
// ---------------------------------------------------------------------------

fn parse_value(text: &str, data_type: &DataType) -> Res<ScalarValue> {
    Ok(match data_type {
        DataType::Boolean => ScalarValue::Boolean(Some(parse_bool(text)?)),
        DataType::Int8 => ScalarValue::Int8(Some(parse_integer(text)?)),
        DataType::Int16 => ScalarValue::Int16(Some(parse_integer(text)?)),
        DataType::Int32 => ScalarValue::Int32(Some(parse_integer(text)?)),
        DataType::Int64 => ScalarValue::Int64(Some(parse_integer(text)?)),
        DataType::UInt8 => ScalarValue::UInt8(Some(parse_integer(text)?)),
        DataType::UInt16 => ScalarValue::UInt16(Some(parse_integer(text)?)),
        DataType::UInt32 => ScalarValue::UInt32(Some(parse_integer(text)?)),
        DataType::UInt64 => ScalarValue::UInt64(Some(parse_integer(text)?)),
        DataType::Float32 => ScalarValue::Float32(Some(parse_float(text)?)),
        DataType::Float64 => ScalarValue::Float64(Some(parse_float(text)?)),
        DataType::Decimal128(precision, scale) => ScalarValue::Decimal128(
            Some(parse_decimal(text, *precision, *scale)?),
            *precision,
            *scale,
        ),
        DataType::Date32 => ScalarValue::Date32(Some(parse_date(text)?)),
        DataType::Time32(unit) => parse_time32(text, unit)?,
        DataType::Time64(unit) => parse_time64(text, unit)?,
        DataType::Timestamp(unit, tz) => parse_timestamp_scalar(text, unit, tz.clone())?,
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            ScalarValue::IntervalMonthDayNano(Some(parse_interval(text)?))
        }
        DataType::Utf8 => ScalarValue::Utf8(Some(text.to_string())),
        DataType::LargeUtf8 => ScalarValue::LargeUtf8(Some(text.to_string())),
        DataType::Utf8View => ScalarValue::Utf8View(Some(text.to_string())),
        DataType::Binary => ScalarValue::Binary(Some(parse_blob(text)?)),
        DataType::LargeBinary => ScalarValue::LargeBinary(Some(parse_blob(text)?)),
        DataType::BinaryView => ScalarValue::BinaryView(Some(parse_blob(text)?)),
        DataType::FixedSizeBinary(16) => ScalarValue::FixedSizeBinary(16, Some(parse_uuid(text)?)),
        DataType::FixedSizeBinary(len) => {
            let bytes = parse_blob(text)?;
            if i32::try_from(bytes.len()).ok() != Some(*len) {
                return Err(format!("expected {len} bytes, found {}", bytes.len()));
            }
            ScalarValue::FixedSizeBinary(*len, Some(bytes))
        }
        DataType::Dictionary(key_type, value_type) => ScalarValue::Dictionary(
            key_type.clone(),
            Box::new(parse_value(text, value_type)?),
        ),
        DataType::List(_) | DataType::Struct(_) | DataType::Map(_, _) => {
            NestedParser::parse_top(text, data_type)?
        }
        other => return Err(format!("no DuckDB text form for Arrow type {other}")),
    })
}

// ---------------------------------------------------------------------------
// Parsing: scalars
// ---------------------------------------------------------------------------

fn parse_bool(text: &str) -> Res<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" => Ok(true),
        "false" | "f" | "0" | "no" | "n" => Ok(false),
        _ => Err("not a boolean".to_string()),
    }
}

/// A number in decimal text: `-12.5`, `.5`, `5.`, `1e+300`.
struct DecimalText {
    negative: bool,
    /// Integer and fraction digits, concatenated.
    digits: String,
    /// How many of `digits` are after the decimal point.
    fraction_len: usize,
    /// Power of ten from an `e` suffix.
    exponent: i64,
}

fn parse_decimal_text(text: &str) -> Res<DecimalText> {
    let t = text.trim();
    let (negative, unsigned) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => {
            let exp = unsigned[at + 1..]
                .parse::<i64>()
                .map_err(|_| "invalid exponent".to_string())?;
            (&unsigned[..at], exp)
        }
        None => (unsigned, 0),
    };
    let (int_part, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.len() + fraction.len() == 0 || !all_digits(int_part) || !all_digits(fraction) {
        return Err("not a number".to_string());
    }
    Ok(DecimalText {
        negative,
        digits: format!("{int_part}{fraction}"),
        fraction_len: fraction.len(),
        exponent,
    })
}

/// `10^exp` as i128, if it fits.
fn pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

/// The number times `10^scale`, rounded half away from zero (DuckDB's rounding).
fn scaled_integer(number: &DecimalText, scale: i64) -> Res<i128> {
    let too_large = || "number too large".to_string();
    let digits = number.digits.trim_start_matches('0');
    let fraction_len = i64::try_from(number.fraction_len).unwrap_or(i64::MAX);
    let shift = scale
        .saturating_add(number.exponent)
        .saturating_sub(fraction_len);
    let magnitude = if digits.is_empty() {
        0
    } else if shift >= 0 {
        let factor = u32::try_from(shift).ok().and_then(pow10).ok_or_else(too_large)?;
        let mantissa: i128 = digits.parse().map_err(|_| too_large())?;
        mantissa.checked_mul(factor).ok_or_else(too_large)?
    } else {
        let dropped = usize::try_from(-shift).map_err(|_| too_large())?;
        if dropped > digits.len() {
            0
        } else {
            let (kept, rest) = digits.split_at(digits.len() - dropped);
            let mantissa: i128 = if kept.is_empty() {
                0
            } else {
                kept.parse().map_err(|_| too_large())?
            };
            let round_up = rest.as_bytes().first().is_some_and(|d| *d >= b'5');
            mantissa + i128::from(round_up)
        }
    };
    Ok(if number.negative { -magnitude } else { magnitude })
}

fn parse_integer<T: TryFrom<i128>>(text: &str) -> Res<T> {
    let value = scaled_integer(&parse_decimal_text(text)?, 0)?;
    T::try_from(value).map_err(|_| format!("{value} is out of range"))
}

fn parse_float<T: std::str::FromStr>(text: &str) -> Res<T> {
    // Rust accepts `nan`, `NaN`, `inf`, `-inf`, `Infinity`, `1e+300` case-insensitively.
    text.trim()
        .parse::<T>()
        .map_err(|_| "not a floating-point number".to_string())
}

fn parse_decimal(text: &str, precision: u8, scale: i8) -> Res<i128> {
    let value = scaled_integer(&parse_decimal_text(text)?, i64::from(scale))?;
    let limit = pow10(u32::from(precision)).unwrap_or(i128::MAX);
    if value.unsigned_abs() >= limit.unsigned_abs() {
        return Err(format!("does not fit decimal({precision},{scale})"));
    }
    Ok(value)
}

fn parse_uuid(text: &str) -> Res<Vec<u8>> {
    uuid::Uuid::parse_str(text.trim())
        .map(|u| u.as_bytes().to_vec())
        .map_err(|e| format!("not a UUID: {e}"))
}

/// DuckDB's blob text: printable ASCII as itself, any byte as `\xHH`.
fn parse_blob(text: &str) -> Res<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let hex = bytes
                    .get(i + 1..i + 4)
                    .filter(|h| h[0] == b'x')
                    .and_then(|h| std::str::from_utf8(&h[1..]).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("invalid escape at byte {i} (expected \\xHH)"))?;
                out.push(hex);
                i += 4;
            }
            b if b.is_ascii() => {
                out.push(b);
                i += 1;
            }
            _ => return Err("non-ASCII characters must be escaped as \\xHH".to_string()),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Parsing: dates and times
// ---------------------------------------------------------------------------

/// Days since 1970-01-01 of a proleptic Gregorian date (astronomical year numbering).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let shifted_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of days since 1970-01-01 (astronomical year numbering).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    // Both values are small and positive by construction.
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Leading ASCII digits of `s` and the rest.
fn split_digits(s: &str) -> (&str, &str) {
    let end = s.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// `[-]YYYY-MM-DD[ (BC)]` at the start of `s`: days since the epoch and the rest.
fn parse_date_prefix(s: &str) -> Res<(i64, &str)> {
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (year, rest) = split_digits(s);
    let rest = rest.strip_prefix('-').ok_or("expected YYYY-MM-DD")?;
    let (month, rest) = split_digits(rest);
    let rest = rest.strip_prefix('-').ok_or("expected YYYY-MM-DD")?;
    let (day, rest) = split_digits(rest);
    let parse = |digits: &str, max_len: usize| -> Res<i64> {
        if digits.is_empty() || digits.len() > max_len {
            return Err("expected YYYY-MM-DD".to_string());
        }
        digits.parse().map_err(|_| "expected YYYY-MM-DD".to_string())
    };
    let (year, month, day) = (parse(year, 9)?, parse(month, 2)?, parse(day, 2)?);
    let (bc, rest) = match rest.strip_prefix(" (BC)") {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    let year = match (negative, bc) {
        (false, false) => year,
        (true, false) => -year,
        (false, true) if year > 0 => 1 - year,
        _ => return Err("invalid year".to_string()),
    };
    let month = u32::try_from(month).ok().filter(|m| (1..=12).contains(m));
    let month = month.ok_or("month out of range")?;
    let day = u32::try_from(day)
        .ok()
        .filter(|d| (1..=days_in_month(year, month)).contains(d))
        .ok_or("day out of range")?;
    Ok((days_from_civil(year, month, day), rest))
}

fn parse_date(text: &str) -> Res<i32> {
    let t = text.trim();
    match t.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => return Ok(DATE_INFINITY),
        "-infinity" => return Ok(-DATE_INFINITY),
        _ => {}
    }
    let (days, rest) = parse_date_prefix(t)?;
    if !rest.is_empty() {
        return Err(format!("unexpected '{rest}' after the date"));
    }
    i32::try_from(days)
        .ok()
        .filter(|d| d.unsigned_abs() < DATE_INFINITY.unsigned_abs())
        .ok_or_else(|| "date out of range".to_string())
}

/// A time of day `H+:MM[:SS[.fffffffff]]`.
struct Clock {
    hours: u64,
    minutes: u64,
    seconds: u64,
    nanos: u64,
}

impl Clock {
    fn total_nanos(&self) -> i128 {
        let seconds = self.hours * 3600 + self.minutes * 60 + self.seconds;
        i128::from(seconds) * i128::from(NANOS_PER_SECOND) + i128::from(self.nanos)
    }
}

/// A clock at the start of `s` and the rest; digits beyond nanoseconds are truncated.
fn parse_clock(s: &str) -> Res<(Clock, &str)> {
    let bad = || "expected HH:MM:SS[.ffffff]".to_string();
    let (hours, rest) = split_digits(s);
    let rest = rest.strip_prefix(':').ok_or_else(bad)?;
    let (minutes, mut rest) = split_digits(rest);
    let mut seconds = "0";
    let mut nanos = 0;
    if let Some(after) = rest.strip_prefix(':') {
        let (secs, after) = split_digits(after);
        seconds = secs;
        rest = after;
        if let Some(after) = rest.strip_prefix('.') {
            let (fraction, after) = split_digits(after);
            nanos = fraction_nanos(fraction);
            rest = after;
        }
    }
    if hours.is_empty() || hours.len() > 12 || minutes.len() != 2 || seconds.is_empty() {
        return Err(bad());
    }
    let number = |d: &str| d.parse::<u64>().map_err(|_| bad());
    let clock = Clock {
        hours: number(hours)?,
        minutes: number(minutes)?,
        seconds: number(seconds)?,
        nanos,
    };
    if clock.minutes >= 60 || clock.seconds >= 60 || seconds.len() > 2 {
        return Err("minutes or seconds out of range".to_string());
    }
    Ok((clock, rest))
}

/// Fraction digits as nanoseconds (digits beyond the ninth are truncated).
fn fraction_nanos(digits: &str) -> u64 {
    digits
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0, |acc, d| acc * 10 + u64::from(d - b'0'))
}

/// A UTC offset suffix in seconds: `+02`, `-05:30`, `+0530`, `+02:00:00`, `Z`, ` UTC`.
fn parse_offset(s: &str) -> Res<i64> {
    let t = s.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Ok(0);
    }
    let bad = || format!("invalid time zone offset '{t}'");
    let (sign, rest) = match t.as_bytes()[0] {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![2, 4, 6].contains(&digits.len()) {
        return Err(bad());
    }
    let part = |i: usize| digits.get(i..i + 2).map_or(Ok(0), str::parse::<i64>);
    let (h, m, sec) = (part(0), part(2), part(4));
    match (h, m, sec) {
        (Ok(h), Ok(m), Ok(sec)) if m < 60 && sec < 60 => Ok(sign * (h * 3600 + m * 60 + sec)),
        _ => Err(bad()),
    }
}

/// Nanoseconds since midnight, normalised to UTC when an offset is given (`timetz`).
fn parse_time_nanos(text: &str) -> Res<i64> {
    let (clock, rest) = parse_clock(text.trim())?;
    let nanos = clock.total_nanos();
    if nanos > i128::from(NANOS_PER_DAY) {
        return Err("time of day out of range".to_string());
    }
    let offset = parse_offset(rest)?;
    // Lossless: the value is at most one day of nanoseconds.
    let nanos = nanos as i64;
    if offset == 0 {
        return Ok(nanos);
    }
    Ok((nanos - offset * NANOS_PER_SECOND).rem_euclid(NANOS_PER_DAY))
}

fn parse_time64(text: &str, unit: &TimeUnit) -> Res<ScalarValue> {
    let nanos = parse_time_nanos(text)?;
    match unit {
        TimeUnit::Microsecond => Ok(ScalarValue::Time64Microsecond(Some(nanos / 1000))),
        TimeUnit::Nanosecond => Ok(ScalarValue::Time64Nanosecond(Some(nanos))),
        other => Err(format!("invalid Time64 unit {other:?}")),
    }
}

fn parse_time32(text: &str, unit: &TimeUnit) -> Res<ScalarValue> {
    let nanos = parse_time_nanos(text)?;
    // A day has fewer than 2^31 milliseconds.
    match unit {
        TimeUnit::Second => Ok(ScalarValue::Time32Second(Some(
            (nanos / NANOS_PER_SECOND) as i32,
        ))),
        TimeUnit::Millisecond => Ok(ScalarValue::Time32Millisecond(Some(
            (nanos / 1_000_000) as i32,
        ))),
        other => Err(format!("invalid Time32 unit {other:?}")),
    }
}

/// Nanoseconds per unit of a timestamp.
fn unit_nanos(unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => NANOS_PER_SECOND,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1000,
        TimeUnit::Nanosecond => 1,
    }
}

/// A timestamp in `unit` since the epoch. Offsets are applied only when
/// `with_tz` (DuckDB ignores them for a plain `TIMESTAMP`).
fn parse_timestamp(text: &str, unit: &TimeUnit, with_tz: bool) -> Res<i64> {
    let t = text.trim();
    match t.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => return Ok(TIMESTAMP_INFINITY),
        "-infinity" => return Ok(-TIMESTAMP_INFINITY),
        _ => {}
    }
    let (days, rest) = parse_date_prefix(t)?;
    let (clock_nanos, rest) = match rest.strip_prefix([' ', 'T', 't']) {
        Some(after) => {
            let (clock, rest) = parse_clock(after.trim_start())?;
            (clock.total_nanos(), rest)
        }
        None => (0, rest),
    };
    if clock_nanos > i128::from(NANOS_PER_DAY) {
        return Err("time of day out of range".to_string());
    }
    let offset = parse_offset(rest)?;
    let offset = if with_tz { offset } else { 0 };
    let nanos = i128::from(days) * i128::from(NANOS_PER_DAY) + clock_nanos
        - i128::from(offset) * i128::from(NANOS_PER_SECOND);
    // DuckDB truncates to microseconds, then rounds to coarser units.
    let value = match unit {
        TimeUnit::Nanosecond => nanos,
        TimeUnit::Microsecond => nanos.div_euclid(1000),
        coarse => {
            let micros_per_unit = i128::from(unit_nanos(coarse) / 1000);
            let micros = nanos.div_euclid(1000);
            (micros + micros_per_unit / 2).div_euclid(micros_per_unit)
        }
    };
    i64::try_from(value)
        .ok()
        .filter(|v| v.unsigned_abs() < TIMESTAMP_INFINITY.unsigned_abs())
        .ok_or_else(|| "timestamp out of range".to_string())
}

fn parse_timestamp_scalar(text: &str, unit: &TimeUnit, tz: Option<Arc<str>>) -> Res<ScalarValue> {
    let value = Some(parse_timestamp(text, unit, tz.is_some())?);
    Ok(match unit {
        TimeUnit::Second => ScalarValue::TimestampSecond(value, tz),
        TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(value, tz),
        TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(value, tz),
        TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(value, tz),
    })
}

// ---------------------------------------------------------------------------
// Parsing: intervals
// ---------------------------------------------------------------------------

/// An interval being summed up from its parts.
#[derive(Default)]
struct IntervalSum {
    months: i128,
    days: i128,
    nanos: i128,
}

/// `target += value`, failing on overflow.
fn accumulate(target: &mut i128, value: i128) -> Res<()> {
    *target = target
        .checked_add(value)
        .ok_or_else(|| "interval out of range".to_string())?;
    Ok(())
}

/// What a unit word adds per unit.
enum IntervalUnitKind {
    Months(i128),
    Days(i128),
    Nanos(i128),
}

fn interval_unit(word: &str) -> Option<IntervalUnitKind> {
    use IntervalUnitKind::{Days, Months, Nanos};
    let nanos_per_second = i128::from(NANOS_PER_SECOND);
    Some(match word.to_ascii_lowercase().as_str() {
        "millennium" | "millennia" | "millenniums" => Months(12_000),
        "century" | "centuries" => Months(1200),
        "decade" | "decades" => Months(120),
        "year" | "years" | "y" | "yr" | "yrs" => Months(12),
        "month" | "months" | "mon" | "mons" => Months(1),
        "week" | "weeks" | "w" => Days(7),
        "day" | "days" | "d" => Days(1),
        "hour" | "hours" | "h" | "hr" | "hrs" => Nanos(3600 * nanos_per_second),
        "minute" | "minutes" | "min" | "mins" | "m" => Nanos(60 * nanos_per_second),
        "second" | "seconds" | "sec" | "secs" | "s" => Nanos(nanos_per_second),
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" => Nanos(1_000_000),
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" => Nanos(1000),
        "nanosecond" | "nanoseconds" | "ns" => Nanos(1),
        _ => return None,
    })
}

impl IntervalSum {
    /// Adds `amount` (text like `-1.5`) of `unit`.
    fn add(&mut self, amount: &str, unit: &str) -> Res<()> {
        let overflow = || "interval out of range".to_string();
        let number = parse_decimal_text(amount)?;
        // Nine fraction digits are enough for nanosecond precision.
        let scaled = scaled_integer(&number, 9)?;
        let denominator = i128::from(NANOS_PER_SECOND);
        let kind = interval_unit(unit).ok_or_else(|| format!("unknown interval unit '{unit}'"))?;
        match kind {
            IntervalUnitKind::Months(per_unit) => {
                let total = scaled.checked_mul(per_unit).ok_or_else(overflow)?;
                if total % denominator != 0 {
                    return Err("fractional months are not supported".to_string());
                }
                accumulate(&mut self.months, total / denominator)?;
            }
            IntervalUnitKind::Days(per_unit) => {
                let total = scaled.checked_mul(per_unit).ok_or_else(overflow)?;
                accumulate(&mut self.days, total / denominator)?;
                let remainder = total % denominator;
                accumulate(
                    &mut self.nanos,
                    remainder * i128::from(NANOS_PER_DAY) / denominator,
                )?;
            }
            IntervalUnitKind::Nanos(per_unit) => {
                let total = scaled.checked_mul(per_unit).ok_or_else(overflow)?;
                accumulate(&mut self.nanos, total / denominator)?;
            }
        }
        Ok(())
    }

    /// Adds a `[+-]H+:MM[:SS[.f]]` part.
    fn add_clock(&mut self, token: &str) -> Res<()> {
        let (negative, unsigned) = match token.as_bytes().first() {
            Some(b'-') => (true, &token[1..]),
            Some(b'+') => (false, &token[1..]),
            _ => (false, token),
        };
        let (clock, rest) = parse_clock(unsigned)?;
        if !rest.is_empty() {
            return Err(format!("unexpected '{rest}' in interval time"));
        }
        let nanos = clock.total_nanos();
        accumulate(&mut self.nanos, if negative { -nanos } else { nanos })
    }

    fn finish(self, negate: bool) -> Res<IntervalMonthDayNano> {
        let overflow = || "interval out of range".to_string();
        let signed = |v: i128| if negate { -v } else { v };
        Ok(IntervalMonthDayNano {
            months: i32::try_from(signed(self.months)).map_err(|_| overflow())?,
            days: i32::try_from(signed(self.days)).map_err(|_| overflow())?,
            nanoseconds: i64::try_from(signed(self.nanos)).map_err(|_| overflow())?,
        })
    }
}

/// DuckDB (`1 year 2 months 3 days 04:00:00`) and PostgreSQL (`1 year 2 mons
/// -1 days +04:00:00`, `@ 1 day ago`) interval text.
fn parse_interval(text: &str) -> Res<IntervalMonthDayNano> {
    let mut sum = IntervalSum::default();
    let mut negate = false;
    let mut tokens = text.split_whitespace().peekable();
    if tokens.peek().is_none() {
        return Err("empty interval".to_string());
    }
    while let Some(token) = tokens.next() {
        if token == "@" {
            continue;
        }
        if token.eq_ignore_ascii_case("ago") {
            negate = true;
        } else if token.contains(':') {
            sum.add_clock(token)?;
        } else {
            // `3 days` or `3days`.
            let unit_start = token.find(|c: char| c.is_ascii_alphabetic());
            match unit_start {
                Some(at) if at > 0 => sum.add(&token[..at], &token[at..])?,
                Some(_) => return Err(format!("unexpected '{token}'")),
                None => {
                    let unit = tokens.next().ok_or_else(|| format!("no unit after '{token}'"))?;
                    sum.add(token, unit)?;
                }
            }
        }
    }
    sum.finish(negate)
}

// ---------------------------------------------------------------------------
// Parsing: nested values
// ---------------------------------------------------------------------------

/// One scalar element of a nested literal.
struct Token<'a> {
    /// The value with quotes removed and escapes resolved.
    text: String,
    /// Whether any part was quoted (`'NULL'` is a string, `NULL` is null).
    quoted: bool,
    /// The element as written.
    raw: &'a str,
}

/// A recursive-descent parser for DuckDB's nested literals (`[…]`, `{'k': v}`,
/// `{k=v}`, `(v, …)`), driven by the target type.
struct NestedParser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

fn is_container(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::List(_) | DataType::Struct(_) | DataType::Map(_, _)
    )
}

impl<'a> NestedParser<'a> {
    fn parse_top(text: &'a str, data_type: &DataType) -> Res<ScalarValue> {
        let mut parser = NestedParser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        };
        parser.skip_space();
        let value = parser.parse_container(data_type)?;
        parser.skip_space();
        if parser.pos != parser.bytes.len() {
            return Err(format!(
                "unexpected '{}' after the value",
                excerpt(&text[parser.pos..])
            ));
        }
        Ok(value)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    fn unexpected(&self, expected: &str) -> String {
        match self.text.get(self.pos..).and_then(|rest| rest.chars().next()) {
            Some(c) => format!("expected {expected} at byte {}, found '{c}'", self.pos),
            None => format!("expected {expected}, found the end of the text"),
        }
    }

    /// Consumes a separator: `Ok(true)` for `,`, `Ok(false)` for `close`.
    fn separator(&mut self, close: u8) -> Res<bool> {
        self.skip_space();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(self.unexpected(&format!("',' or '{}'", close as char))),
        }
    }

    /// Consumes `close` if it is next (an empty container).
    fn empty(&mut self, close: u8) -> bool {
        self.skip_space();
        if self.peek() == Some(close) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn parse_container(&mut self, data_type: &DataType) -> Res<ScalarValue> {
        match data_type {
            DataType::List(field) => self.parse_list(field),
            DataType::Struct(fields) => self.parse_struct(fields),
            DataType::Map(field, sorted) => self.parse_map(field, *sorted),
            other => Err(format!("{other} is not a container type")),
        }
    }

    fn parse_list(&mut self, field: &FieldRef) -> Res<ScalarValue> {
        if self.bump() != Some(b'[') {
            return Err("a list must start with '['".to_string());
        }
        let mut items = Vec::new();
        if !self.empty(b']') {
            loop {
                items.push(self.parse_element(field.data_type(), &[b',', b']'])?);
                if !self.separator(b']')? {
                    break;
                }
            }
        }
        build_list(field, items)
    }

    fn parse_struct(&mut self, fields: &Fields) -> Res<ScalarValue> {
        let close = match self.bump() {
            Some(b'{') => b'}',
            Some(b'(') => b')',
            _ => return Err("a struct must start with '{' or '('".to_string()),
        };
        let positional = close == b')';
        let mut values: Vec<Option<ScalarValue>> = vec![None; fields.len()];
        let mut next_position = 0;
        if !self.empty(close) {
            loop {
                let index = if positional {
                    next_position += 1;
                    next_position - 1
                } else {
                    self.parse_struct_key(fields)?
                };
                let field = fields
                    .get(index)
                    .ok_or_else(|| format!("more than {} struct fields", fields.len()))?;
                let value = self.parse_element(field.data_type(), &[b',', close])?;
                if values[index].replace(value).is_some() {
                    return Err(format!("struct field '{}' given twice", field.name()));
                }
                if !self.separator(close)? {
                    break;
                }
            }
        }
        let values = fields
            .iter()
            .zip(values)
            .map(|(field, value)| match value {
                Some(value) => Ok(value),
                None => null_of(field.data_type()),
            })
            .collect::<Res<Vec<_>>>()?;
        build_struct(fields, values)
    }

    /// `'key':` → the index of the field it names.
    fn parse_struct_key(&mut self, fields: &Fields) -> Res<usize> {
        let key = self.read_token(&[b':', b',', b'}'])?;
        if self.bump() != Some(b':') {
            return Err(format!("expected ':' after struct key '{}'", key.text));
        }
        let by_name = |exact: bool| {
            fields.iter().position(|f| {
                if exact {
                    f.name() == &key.text
                } else {
                    f.name().eq_ignore_ascii_case(&key.text)
                }
            })
        };
        by_name(true)
            .or_else(|| by_name(false))
            .ok_or_else(|| format!("unknown struct field '{}'", key.text))
    }

    fn parse_map(&mut self, field: &FieldRef, sorted: bool) -> Res<ScalarValue> {
        let (key_type, value_type) = match field.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => (kv[0].data_type(), kv[1].data_type()),
            other => return Err(format!("invalid map entries type {other}")),
        };
        if self.bump() != Some(b'{') {
            return Err("a map must start with '{'".to_string());
        }
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        if !self.empty(b'}') {
            loop {
                let key = self.parse_element(key_type, &[b'=', b',', b'}'])?;
                if key.is_null() {
                    return Err("a map key is NULL".to_string());
                }
                self.skip_space();
                if self.bump() != Some(b'=') {
                    return Err("expected '=' after a map key".to_string());
                }
                keys.push(key);
                values.push(self.parse_element(value_type, &[b',', b'}'])?);
                if !self.separator(b'}')? {
                    break;
                }
            }
        }
        build_map(field, sorted, keys, values)
    }

    /// One element of `data_type`, ending before one of `stops` (at depth 0).
    fn parse_element(&mut self, data_type: &DataType, stops: &[u8]) -> Res<ScalarValue> {
        self.skip_space();
        if is_container(data_type) && matches!(self.peek(), Some(b'[' | b'{' | b'(')) {
            return self.parse_container(data_type);
        }
        let token = self.read_token(stops)?;
        if !token.quoted && token.text.eq_ignore_ascii_case("null") {
            return null_of(data_type);
        }
        let text = unwrap_sql_cast(token.raw).unwrap_or(token.text);
        parse_value(&text, data_type)
            .map_err(|e| format!("element '{}' as {data_type}: {e}", excerpt(&text)))
    }

    /// A scalar element: quoted parts are unescaped, unquoted surrounding space is
    /// trimmed, brackets nest (`a[b]c` is one element).
    fn read_token(&mut self, stops: &[u8]) -> Res<Token<'a>> {
        self.skip_space();
        let start = self.pos;
        let mut out = Vec::new();
        let mut quoted = false;
        let mut depth = 0usize;
        let mut significant = 0;
        while let Some(b) = self.peek() {
            if depth == 0 && stops.contains(&b) {
                break;
            }
            match b {
                b'\'' | b'"' => {
                    self.pos += 1;
                    self.read_quoted(b, &mut out)?;
                    quoted = true;
                    significant = out.len();
                    continue;
                }
                b'[' | b'{' | b'(' => depth += 1,
                b']' | b'}' | b')' if depth == 0 => break,
                b']' | b'}' | b')' => depth -= 1,
                _ => {}
            }
            out.push(b);
            self.pos += 1;
            if !is_space(b) {
                significant = out.len();
            }
        }
        out.truncate(significant);
        let text = String::from_utf8(out).map_err(|_| "invalid UTF-8 in element".to_string())?;
        Ok(Token {
            text,
            quoted,
            raw: self.text[start..self.pos].trim_end_matches(|c: char| c.is_ascii_whitespace()),
        })
    }

    /// The rest of a string quoted with `quote`: `\'`, `\"` and `\\` are escapes
    /// (DuckDB's writer), a doubled quote is one quote (SQL literals), any other
    /// backslash is kept.
    fn read_quoted(&mut self, quote: u8, out: &mut Vec<u8>) -> Res<()> {
        loop {
            match self.bump() {
                None => return Err("unterminated quoted string".to_string()),
                Some(b) if b == quote => {
                    if self.peek() != Some(quote) {
                        return Ok(());
                    }
                    out.push(quote);
                    self.pos += 1;
                }
                Some(b'\\') => match self.peek() {
                    Some(c @ (b'\'' | b'"' | b'\\')) => {
                        out.push(c);
                        self.pos += 1;
                    }
                    _ => out.push(b'\\'),
                },
                Some(b) => out.push(b),
            }
        }
    }
}

/// The string inside `CAST('…' AS TYPE)` (how DuckDB 1.5.5 writes some values
/// inside a top-level struct), with SQL `''` escapes resolved.
fn unwrap_sql_cast(raw: &str) -> Option<String> {
    let head = raw.get(..5)?;
    if !head.eq_ignore_ascii_case("cast(") || !raw.ends_with(')') {
        return None;
    }
    let literal = raw[5..].trim_start().strip_prefix('\'')?;
    let mut value = String::new();
    let mut chars = literal.char_indices();
    let end = loop {
        let (i, c) = chars.next()?;
        if c != '\'' {
            value.push(c);
        } else if literal[i + 1..].starts_with('\'') {
            value.push('\'');
            chars.next();
        } else {
            break i + 1;
        }
    };
    let tail = literal[end..].trim_start();
    let is_as = tail.get(..3).is_some_and(|t| t.eq_ignore_ascii_case("as "));
    is_as.then_some(value)
}

fn null_of(data_type: &DataType) -> Res<ScalarValue> {
    ScalarValue::try_new_null(data_type).map_err(|e| e.to_string())
}

fn scalars_to_array(items: Vec<ScalarValue>, data_type: &DataType) -> Res<ArrayRef> {
    if items.is_empty() {
        return Ok(new_empty_array(data_type));
    }
    ScalarValue::iter_to_array(items).map_err(|e| e.to_string())
}

fn build_list(field: &FieldRef, items: Vec<ScalarValue>) -> Res<ScalarValue> {
    let len = items.len();
    let values = scalars_to_array(items, field.data_type())?;
    let offsets = OffsetBuffer::from_lengths([len]);
    let list = ListArray::try_new(Arc::clone(field), offsets, values, None)
        .map_err(|e| e.to_string())?;
    Ok(ScalarValue::List(Arc::new(list)))
}

fn build_struct(fields: &Fields, values: Vec<ScalarValue>) -> Res<ScalarValue> {
    if fields.is_empty() {
        return Ok(ScalarValue::Struct(Arc::new(StructArray::new_empty_fields(
            1, None,
        ))));
    }
    let columns = values
        .iter()
        .map(ScalarValue::to_array)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let array = StructArray::try_new(fields.clone(), columns, None).map_err(|e| e.to_string())?;
    Ok(ScalarValue::Struct(Arc::new(array)))
}

fn build_map(
    field: &FieldRef,
    sorted: bool,
    keys: Vec<ScalarValue>,
    values: Vec<ScalarValue>,
) -> Res<ScalarValue> {
    let entry_fields = match field.data_type() {
        DataType::Struct(fields) if fields.len() == 2 => fields,
        other => return Err(format!("invalid map entries type {other}")),
    };
    let len = keys.len();
    let keys = scalars_to_array(keys, entry_fields[0].data_type())?;
    let values = scalars_to_array(values, entry_fields[1].data_type())?;
    let entries = StructArray::try_new(entry_fields.clone(), vec![keys, values], None)
        .map_err(|e| e.to_string())?;
    let offsets = OffsetBuffer::from_lengths([len]);
    let map = MapArray::try_new(Arc::clone(field), offsets, entries, None, sorted)
        .map_err(|e| e.to_string())?;
    Ok(ScalarValue::Map(Arc::new(map)))
}

// ---------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------

fn unsupported(value: &ScalarValue) -> Error {
    Error::Unsupported(format!(
        "rendering {} values as DuckDB text",
        value.data_type()
    ))
}

/// Text of a non-null value.
fn format_value(value: &ScalarValue) -> Result<String, Error> {
    use ScalarValue as S;
    Ok(match value {
        S::Boolean(Some(v)) => v.to_string(),
        S::Int8(Some(v)) => v.to_string(),
        S::Int16(Some(v)) => v.to_string(),
        S::Int32(Some(v)) => v.to_string(),
        S::Int64(Some(v)) => v.to_string(),
        S::UInt8(Some(v)) => v.to_string(),
        S::UInt16(Some(v)) => v.to_string(),
        S::UInt32(Some(v)) => v.to_string(),
        S::UInt64(Some(v)) => v.to_string(),
        S::Float32(Some(v)) => format_float(v.is_nan(), v.is_infinite(), &format!("{v:e}")),
        S::Float64(Some(v)) => format_float(v.is_nan(), v.is_infinite(), &format!("{v:e}")),
        S::Decimal128(Some(v), _, scale) => format_decimal(*v, *scale),
        S::Utf8(Some(v)) | S::LargeUtf8(Some(v)) | S::Utf8View(Some(v)) => v.clone(),
        S::Binary(Some(v)) | S::LargeBinary(Some(v)) | S::BinaryView(Some(v)) => format_blob(v),
        S::FixedSizeBinary(16, Some(v)) => format_uuid(v)?,
        S::FixedSizeBinary(_, Some(v)) => format_blob(v),
        S::Date32(Some(v)) => format_date32(*v),
        S::Time32Second(Some(v)) => format_time(i64::from(*v) * NANOS_PER_SECOND)?,
        S::Time32Millisecond(Some(v)) => format_time(i64::from(*v) * 1_000_000)?,
        S::Time64Microsecond(Some(v)) => format_time(v.saturating_mul(1000))?,
        S::Time64Nanosecond(Some(v)) => format_time(*v)?,
        S::TimestampSecond(Some(v), tz) => format_timestamp(*v, &TimeUnit::Second, tz.is_some()),
        S::TimestampMillisecond(Some(v), tz) => {
            format_timestamp(*v, &TimeUnit::Millisecond, tz.is_some())
        }
        S::TimestampMicrosecond(Some(v), tz) => {
            format_timestamp(*v, &TimeUnit::Microsecond, tz.is_some())
        }
        S::TimestampNanosecond(Some(v), tz) => {
            format_timestamp(*v, &TimeUnit::Nanosecond, tz.is_some())
        }
        S::IntervalMonthDayNano(Some(v)) => format_interval(*v),
        S::IntervalYearMonth(Some(v)) => format_interval(IntervalMonthDayNano::new(*v, 0, 0)),
        S::IntervalDayTime(Some(IntervalDayTime { days, milliseconds })) => format_interval(
            IntervalMonthDayNano::new(0, *days, i64::from(*milliseconds) * 1_000_000),
        ),
        S::Dictionary(_, inner) => return format_duckdb_text(inner)?.ok_or_else(|| unsupported(value)),
        S::List(array) => format_list(array.as_ref())?,
        S::LargeList(array) => format_list(array.as_ref())?,
        S::FixedSizeList(array) => format_list(array.as_ref())?,
        S::Struct(array) => format_struct(array)?,
        S::Map(array) => format_map(array)?,
        _ => return Err(unsupported(value)),
    })
}

/// DuckDB's float text from Rust's shortest round-trip digits (`{:e}`): fixed
/// notation for exponents -4..16 (always with a fraction, `1.0`), otherwise
/// `1e+300` / `1e-07` (the same rule as Python's `repr`).
fn format_float(is_nan: bool, is_infinite: bool, scientific: &str) -> String {
    if is_nan {
        return "nan".to_string();
    }
    let (negative, scientific) = match scientific.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, scientific),
    };
    let sign = if negative { "-" } else { "" };
    if is_infinite {
        return format!("{sign}inf");
    }
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((scientific, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exponent) {
        // `exponent` is small here, so the casts are lossless.
        if exponent >= 0 {
            let int_len = exponent as usize + 1;
            if digits.len() <= int_len {
                format!("{sign}{digits}{}.0", "0".repeat(int_len - digits.len()))
            } else {
                format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
            }
        } else {
            let zeros = "0".repeat((-exponent - 1) as usize);
            format!("{sign}0.{zeros}{digits}")
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{first}{fraction}e{exp_sign}{:02}", exponent.unsigned_abs())
    }
}

/// `-12.340` for (-12340, 3); exactly `scale` fraction digits.
fn format_decimal(value: i128, scale: i8) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let digits = value.unsigned_abs().to_string();
    if scale <= 0 {
        let zeros = if value == 0 { 0 } else { scale.unsigned_abs() };
        return format!("{sign}{digits}{}", "0".repeat(usize::from(zeros)));
    }
    let scale = usize::from(scale.unsigned_abs());
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int_part, fraction) = padded.split_at(padded.len() - scale);
    format!("{sign}{int_part}.{fraction}")
}

/// DuckDB's blob escape: printable ASCII except `\`, `'` and `"` as itself.
fn format_blob(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..=0x7E).contains(&b) && !matches!(b, b'\\' | b'\'' | b'"') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

fn format_uuid(bytes: &[u8]) -> Result<String, Error> {
    uuid::Uuid::from_slice(bytes)
        .map(|u| u.hyphenated().to_string())
        .map_err(|e| Error::Corrupt(format!("invalid UUID bytes: {e}")))
}

/// `2024-01-15`, `0044-03-15 (BC)` (no year 0, like DuckDB).
fn format_date(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    if year <= 0 {
        format!("{:04}-{month:02}-{day:02} (BC)", 1 - year)
    } else {
        format!("{year:04}-{month:02}-{day:02}")
    }
}

fn format_date32(days: i32) -> String {
    match days {
        DATE_INFINITY => "infinity".to_string(),
        d if d == -DATE_INFINITY => "-infinity".to_string(),
        d => format_date(i64::from(d)),
    }
}

/// `HH:MM:SS[.f]` with the fraction's trailing zeros dropped; hours may exceed 24.
fn format_clock(nanos: u64) -> String {
    let nanos_per_second = NANOS_PER_SECOND.unsigned_abs();
    let seconds = nanos / nanos_per_second;
    let fraction = nanos % nanos_per_second;
    let clock = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    if fraction == 0 {
        clock
    } else {
        let digits = format!("{fraction:09}");
        format!("{clock}.{}", digits.trim_end_matches('0'))
    }
}

fn format_time(nanos: i64) -> Result<String, Error> {
    u64::try_from(nanos)
        .map(format_clock)
        .map_err(|_| Error::Corrupt(format!("negative time of day ({nanos} ns)")))
}

fn format_timestamp(value: i64, unit: &TimeUnit, with_tz: bool) -> String {
    if value == TIMESTAMP_INFINITY {
        return "infinity".to_string();
    }
    if value == -TIMESTAMP_INFINITY {
        return "-infinity".to_string();
    }
    let per_unit = unit_nanos(unit);
    let units_per_day = NANOS_PER_DAY / per_unit;
    let days = value.div_euclid(units_per_day);
    // Less than one day, so positive and in range.
    let time_nanos = (value.rem_euclid(units_per_day) * per_unit).unsigned_abs();
    let suffix = if with_tz { "+00" } else { "" };
    format!("{} {}{suffix}", format_date(days), format_clock(time_nanos))
}

fn plural(value: i64) -> &'static str {
    if value == 1 || value == -1 { "" } else { "s" }
}

/// `1 year 2 months 3 days 04:00:00`, `-1 day`, `00:00:00` for zero.
fn format_interval(value: IntervalMonthDayNano) -> String {
    let mut parts = Vec::new();
    let years = i64::from(value.months / 12);
    let months = i64::from(value.months % 12);
    let days = i64::from(value.days);
    if years != 0 {
        parts.push(format!("{years} year{}", plural(years)));
    }
    if months != 0 {
        parts.push(format!("{months} month{}", plural(months)));
    }
    if days != 0 {
        parts.push(format!("{days} day{}", plural(days)));
    }
    if value.nanoseconds != 0 {
        let sign = if value.nanoseconds < 0 { "-" } else { "" };
        parts.push(format!(
            "{sign}{}",
            format_clock(value.nanoseconds.unsigned_abs())
        ));
    }
    if parts.is_empty() {
        "00:00:00".to_string()
    } else {
        parts.join(" ")
    }
}

/// Whether DuckDB quotes a scalar's text inside a list, struct or map.
fn needs_quotes(text: &str) -> bool {
    let bytes = text.as_bytes();
    match (bytes.first(), bytes.last()) {
        (None, _) => true,
        (Some(&first), _) if is_space(first) => true,
        (_, Some(&last)) if bytes.len() >= 2 && is_space(last) => true,
        _ => {
            text.eq_ignore_ascii_case("null")
                || bytes.iter().any(|b| {
                    matches!(
                        b,
                        b'"' | b'\'' | b'(' | b')' | b',' | b':' | b'=' | b'[' | b']' | b'{' | b'}'
                    )
                })
        }
    }
}

/// `'text'` with `'` and `\` backslash-escaped.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// A value inside a container: `NULL`, nested containers as-is, scalars quoted
/// when DuckDB would.
fn format_element(value: &ScalarValue) -> Result<String, Error> {
    let nested = matches!(
        value,
        ScalarValue::List(_)
            | ScalarValue::LargeList(_)
            | ScalarValue::FixedSizeList(_)
            | ScalarValue::Struct(_)
            | ScalarValue::Map(_)
    );
    Ok(match format_duckdb_text(value)? {
        None => "NULL".to_string(),
        Some(text) if !nested && needs_quotes(&text) => quote(&text),
        Some(text) => text,
    })
}

/// The scalars of row 0 of a one-row list-like array.
fn list_row(array: &dyn Array) -> Result<Vec<ScalarValue>, Error> {
    let child = match array.data_type() {
        DataType::List(_) => array.as_list::<i32>().value(0),
        DataType::LargeList(_) => array.as_list::<i64>().value(0),
        DataType::FixedSizeList(_, _) => array.as_fixed_size_list().value(0),
        other => return Err(Error::Unsupported(format!("rendering {other} as a list"))),
    };
    (0..child.len())
        .map(|i| ScalarValue::try_from_array(&child, i).map_err(Error::from))
        .collect()
}

fn check_one_row(array: &dyn Array) -> Result<(), Error> {
    if array.len() == 1 {
        Ok(())
    } else {
        Err(Error::Corrupt(format!(
            "a nested scalar must have one row, found {}",
            array.len()
        )))
    }
}

fn format_list(array: &dyn Array) -> Result<String, Error> {
    check_one_row(array)?;
    let items = list_row(array)?
        .iter()
        .map(format_element)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("[{}]", items.join(", ")))
}

fn format_struct(array: &StructArray) -> Result<String, Error> {
    check_one_row(array)?;
    let mut parts = Vec::with_capacity(array.num_columns());
    for (field, column) in array.fields().iter().zip(array.columns()) {
        let value = ScalarValue::try_from_array(column, 0)?;
        parts.push(format!("{}: {}", quote(field.name()), format_element(&value)?));
    }
    Ok(format!("{{{}}}", parts.join(", ")))
}

fn format_map(array: &MapArray) -> Result<String, Error> {
    check_one_row(array)?;
    let entries = array.value(0);
    let (keys, values) = (entries.column(0), entries.column(1));
    let mut parts = Vec::with_capacity(entries.len());
    for i in 0..entries.len() {
        let key = format_element(&ScalarValue::try_from_array(keys, i)?)?;
        let value = format_element(&ScalarValue::try_from_array(values, i)?)?;
        parts.push(format!("{key}={value}"));
    }
    Ok(format!("{{{}}}", parts.join(", ")))
}
