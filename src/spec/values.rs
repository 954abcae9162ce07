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
/// and the type; a type without a DuckDB text form is an [`Error::Unsupported`].
pub fn parse_duckdb_text(text: &str, data_type: &DataType) -> Result<ScalarValue, Error> {
    if !has_text_form(data_type) {
        return Err(Error::Unsupported(format!(
            "reading {data_type} values from DuckDB text"
        )));
    }
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
    !text.is_empty() && text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit())
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

/// Whether [`parse_value`] can produce values of `data_type` (and all its children).
fn has_text_form(data_type: &DataType) -> bool {
    match data_type {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _)
        | DataType::Date32
        | DataType::Time32(TimeUnit::Second | TimeUnit::Millisecond)
        | DataType::Time64(TimeUnit::Microsecond | TimeUnit::Nanosecond)
        | DataType::Timestamp(_, _)
        | DataType::Interval(IntervalUnit::MonthDayNano)
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => true,
        DataType::Dictionary(_, value_type) => has_text_form(value_type),
        DataType::List(field) | DataType::Map(field, _) => has_text_form(field.data_type()),
        DataType::Struct(fields) => fields.iter().all(|f| has_text_form(f.data_type())),
        _ => false,
    }
}

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
        DataType::Dictionary(key_type, value_type) => {
            ScalarValue::Dictionary(key_type.clone(), Box::new(parse_value(text, value_type)?))
        }
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

/// A leading `-` or `+` removed: whether it was `-`, and the rest.
fn split_sign(text: &str) -> (bool, &str) {
    match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    }
}

fn parse_decimal_text(text: &str) -> Res<DecimalText> {
    let t = text.trim();
    let (negative, unsigned) = split_sign(t);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exp)) => {
            let exp = exp
                .parse::<i64>()
                .map_err(|_| "invalid exponent".to_string())?;
            (mantissa, exp)
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
        let factor = u32::try_from(shift)
            .ok()
            .and_then(pow10)
            .ok_or_else(too_large)?;
        let mantissa: i128 = digits.parse().map_err(|_| too_large())?;
        mantissa.checked_mul(factor).ok_or_else(too_large)?
    } else {
        // `unsigned_abs`: `8e-9223372036854775808` saturates the shift at i64::MIN.
        let dropped = usize::try_from(shift.unsigned_abs()).map_err(|_| too_large())?;
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
            // `170141183460469231731687303715884105727.5` rounds past i128::MAX.
            mantissa
                .checked_add(i128::from(round_up))
                .ok_or_else(too_large)?
        }
    };
    Ok(if number.negative {
        -magnitude
    } else {
        magnitude
    })
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
    let does_not_fit = || format!("does not fit decimal({precision},{scale})");
    let number = parse_decimal_text(text)?;
    let value = scaled_integer(&number, i64::from(scale)).map_err(|_| does_not_fit())?;
    let limit = pow10(u32::from(precision)).unwrap_or(i128::MAX);
    if value.unsigned_abs() >= limit.unsigned_abs() {
        return Err(does_not_fit());
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
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => {
                let hex = match bytes.get(i + 1..i + 4) {
                    Some([b'x', high, low]) => hex_value(*high).zip(hex_value(*low)),
                    _ => None,
                };
                let (high, low) =
                    hex.ok_or_else(|| format!("invalid escape at byte {i} (expected \\xHH)"))?;
                out.push((high << 4) | low);
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

/// The value of one hexadecimal digit.
fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
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
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
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
        digits
            .parse()
            .map_err(|_| "expected YYYY-MM-DD".to_string())
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
    let (sign, rest) = if let Some(rest) = t.strip_prefix('+') {
        (1, rest)
    } else if let Some(rest) = t.strip_prefix('-') {
        (-1, rest)
    } else {
        return Err(bad());
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
        let (negative, unsigned) = split_sign(token);
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
            match unit_start.map(|at| token.split_at_checked(at)) {
                Some(Some((number, unit))) if !number.is_empty() => sum.add(number, unit)?,
                Some(_) => return Err(format!("unexpected '{token}'")),
                None => {
                    let unit = tokens
                        .next()
                        .ok_or_else(|| format!("no unit after '{token}'"))?;
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
        if let Some(rest) = parser.bytes.get(parser.pos..).filter(|r| !r.is_empty()) {
            return Err(format!(
                "unexpected '{}' after the value",
                excerpt(&String::from_utf8_lossy(rest))
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
        match self
            .text
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
        {
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
                items.push(self.parse_element(field.data_type(), b",]")?);
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
                let (field, slot) = fields
                    .get(index)
                    .zip(values.get_mut(index))
                    .ok_or_else(|| format!("more than {} struct fields", fields.len()))?;
                let value = self.parse_element(field.data_type(), &[b',', close])?;
                if slot.replace(value).is_some() {
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
        let key = self.read_token(b":,}")?;
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
        let (_, key_field, value_field) = map_entries(field)?;
        let (key_type, value_type) = (key_field.data_type(), value_field.data_type());
        if self.bump() != Some(b'{') {
            return Err("a map must start with '{'".to_string());
        }
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        if !self.empty(b'}') {
            loop {
                let key = self.parse_element(key_type, b"=,}")?;
                if key.is_null() {
                    return Err("a map key is NULL".to_string());
                }
                self.skip_space();
                if self.bump() != Some(b'=') {
                    return Err("expected '=' after a map key".to_string());
                }
                keys.push(key);
                values.push(self.parse_element(value_type, b",}")?);
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
            raw: self
                .text
                .get(start..self.pos)
                .ok_or_else(|| format!("element cut inside a character at byte {}", self.pos))?
                .trim_end_matches(|c: char| c.is_ascii_whitespace()),
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
    let (head, rest) = raw.split_at_checked(5)?;
    if !head.eq_ignore_ascii_case("cast(") || !raw.ends_with(')') {
        return None;
    }
    let literal = rest.trim_start().strip_prefix('\'')?;
    let mut value = String::new();
    let mut chars = literal.chars();
    loop {
        let c = chars.next()?;
        if c != '\'' {
            value.push(c);
        } else if chars.as_str().starts_with('\'') {
            value.push('\'');
            chars.next();
        } else {
            break;
        }
    }
    let tail = chars.as_str().trim_start();
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
    let list =
        ListArray::try_new(Arc::clone(field), offsets, values, None).map_err(|e| e.to_string())?;
    Ok(ScalarValue::List(Arc::new(list)))
}

fn build_struct(fields: &Fields, values: Vec<ScalarValue>) -> Res<ScalarValue> {
    if fields.is_empty() {
        return Ok(ScalarValue::Struct(Arc::new(
            StructArray::new_empty_fields(1, None),
        )));
    }
    let columns = values
        .iter()
        .map(ScalarValue::to_array)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let array = StructArray::try_new(fields.clone(), columns, None).map_err(|e| e.to_string())?;
    Ok(ScalarValue::Struct(Arc::new(array)))
}

/// A map's entries struct: its fields, the key field and the value field.
fn map_entries(field: &FieldRef) -> Res<(&Fields, &FieldRef, &FieldRef)> {
    if let DataType::Struct(fields) = field.data_type()
        && let [key, value] = &**fields
    {
        return Ok((fields, key, value));
    }
    Err(format!("invalid map entries type {}", field.data_type()))
}

fn build_map(
    field: &FieldRef,
    sorted: bool,
    keys: Vec<ScalarValue>,
    values: Vec<ScalarValue>,
) -> Res<ScalarValue> {
    let (entry_fields, key_field, value_field) = map_entries(field)?;
    let len = keys.len();
    let keys = scalars_to_array(keys, key_field.data_type())?;
    let values = scalars_to_array(values, value_field.data_type())?;
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
        S::Decimal128(Some(v), precision, scale) => format_decimal(*v, *precision, *scale),
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
        S::Dictionary(_, inner) => {
            return format_duckdb_text(inner)?.ok_or_else(|| unsupported(value));
        }
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
            match digits.split_at_checked(int_len) {
                Some((int_part, fraction)) if !fraction.is_empty() => {
                    format!("{sign}{int_part}.{fraction}")
                }
                _ => format!(
                    "{sign}{digits}{}.0",
                    "0".repeat(int_len.saturating_sub(digits.len()))
                ),
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
        format!(
            "{sign}{first}{fraction}e{exp_sign}{:02}",
            exponent.unsigned_abs()
        )
    }
}

/// `-12.340` for (-12340, 3): exactly `scale` fraction digits. Like DuckDB, a
/// decimal without integer digits (`precision == scale`) has no leading `0`: `-.500`.
fn format_decimal(value: i128, precision: u8, scale: i8) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let digits = value.unsigned_abs().to_string();
    if scale <= 0 {
        let zeros = if value == 0 { 0 } else { scale.unsigned_abs() };
        return format!("{sign}{digits}{}", "0".repeat(usize::from(zeros)));
    }
    let fraction_len = usize::from(scale.unsigned_abs());
    let int_len = usize::from(precision > scale.unsigned_abs());
    let padded = format!("{digits:0>width$}", width = fraction_len + int_len);
    let (int_part, fraction) = padded.split_at(padded.len() - fraction_len);
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
pub(crate) fn format_clock(nanos: u64) -> String {
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
        parts.push(format!(
            "{}: {}",
            quote(field.name()),
            format_element(&value)?
        ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;

    fn list_of(element: DataType) -> DataType {
        DataType::List(Arc::new(Field::new("element", element, true)))
    }

    fn struct_of(fields: Vec<(&str, DataType)>) -> DataType {
        DataType::Struct(Fields::from(
            fields
                .into_iter()
                .map(|(name, dt)| Field::new(name, dt, true))
                .collect::<Vec<_>>(),
        ))
    }

    fn map_of(key: DataType, value: DataType) -> DataType {
        let entries = DataType::Struct(Fields::from(vec![
            Field::new("key", key, false),
            Field::new("value", value, true),
        ]));
        DataType::Map(Arc::new(Field::new("key_value", entries, false)), false)
    }

    fn ts(unit: TimeUnit) -> DataType {
        DataType::Timestamp(unit, None)
    }

    fn tstz() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
    }

    fn interval() -> DataType {
        DataType::Interval(IntervalUnit::MonthDayNano)
    }

    fn parse(text: &str, dt: &DataType) -> ScalarValue {
        match parse_duckdb_text(text, dt) {
            Ok(v) => v,
            Err(e) => panic!("parsing '{text}' as {dt}: {e}"),
        }
    }

    fn format(value: &ScalarValue) -> String {
        format_duckdb_text(value)
            .unwrap_or_else(|e| panic!("formatting {value:?}: {e}"))
            .unwrap_or_else(|| panic!("{value:?} formatted as NULL"))
    }

    /// `text` is canonical: it parses, formats back to itself, and re-parses equal.
    fn canonical(text: &str, dt: &DataType) {
        let value = parse(text, dt);
        assert_eq!(value.data_type(), *dt, "type of '{text}'");
        let formatted = format(&value);
        assert_eq!(formatted, text, "format(parse('{text}')) as {dt}");
        assert_eq!(parse(&formatted, dt), value, "re-parse of '{text}'");
    }

    /// `text` parses to the value whose canonical text is `expected`.
    fn normalises(text: &str, dt: &DataType, expected: &str) {
        let value = parse(text, dt);
        assert_eq!(format(&value), expected, "'{text}' as {dt}");
        assert_eq!(parse(expected, dt), value, "'{expected}' as {dt}");
    }

    /// `format(value)` is `expected` and parses back to `value`.
    fn formats(value: ScalarValue, expected: &str) {
        assert_eq!(format(&value), expected, "{value:?}");
        let back = parse(expected, &value.data_type());
        assert_eq!(back, value, "parse('{expected}')");
    }

    fn corrupt_message(text: &str, dt: &DataType) -> String {
        match parse_duckdb_text(text, dt) {
            Err(Error::Corrupt(message)) => message,
            other => panic!("'{text}' as {dt}: expected Corrupt, got {other:?}"),
        }
    }

    fn f64_text(v: f64) -> String {
        format(&ScalarValue::Float64(Some(v)))
    }

    fn f32_text(v: f32) -> String {
        format(&ScalarValue::Float32(Some(v)))
    }

    fn micros(text: &str) -> i64 {
        match parse(text, &tstz()) {
            ScalarValue::TimestampMicrosecond(Some(v), _) => v,
            other => panic!("{other:?}"),
        }
    }

    fn time_micros(text: &str) -> i64 {
        match parse(text, &DataType::Time64(TimeUnit::Microsecond)) {
            ScalarValue::Time64Microsecond(Some(v)) => v,
            other => panic!("{other:?}"),
        }
    }

    fn mdn(text: &str) -> (i32, i32, i64) {
        match parse(text, &interval()) {
            ScalarValue::IntervalMonthDayNano(Some(v)) => (v.months, v.days, v.nanoseconds),
            other => panic!("{other:?}"),
        }
    }

    const HOUR_NS: i64 = 3_600_000_000_000;

    #[test]
    fn booleans() {
        canonical("true", &DataType::Boolean);
        canonical("false", &DataType::Boolean);
        for (text, expected) in [("t", true), ("f", false), ("1", true), ("0", false)] {
            assert_eq!(
                parse(text, &DataType::Boolean),
                ScalarValue::Boolean(Some(expected))
            );
        }
        assert_eq!(
            parse("TRUE", &DataType::Boolean),
            ScalarValue::Boolean(Some(true))
        );
        corrupt_message("maybe", &DataType::Boolean);
    }

    #[test]
    fn integers() {
        canonical("-8", &DataType::Int8);
        canonical("127", &DataType::Int8);
        canonical("-128", &DataType::Int8);
        canonical("32767", &DataType::Int16);
        canonical("-2147483648", &DataType::Int32);
        canonical("9223372036854775807", &DataType::Int64);
        canonical("-9223372036854775808", &DataType::Int64);
        canonical("255", &DataType::UInt8);
        canonical("65535", &DataType::UInt16);
        canonical("4294967295", &DataType::UInt32);
        canonical("18446744073709551615", &DataType::UInt64);
        canonical("0", &DataType::UInt64);
        normalises(" 5 ", &DataType::Int32, "5");
        normalises("+5", &DataType::Int32, "5");
        normalises("1e2", &DataType::Int32, "100");
        normalises("1.5", &DataType::Int32, "2");
        normalises("-1.5", &DataType::Int32, "-2");
        corrupt_message("128", &DataType::Int8);
        corrupt_message("-1", &DataType::UInt64);
        corrupt_message("18446744073709551616", &DataType::UInt64);
        corrupt_message("", &DataType::Int32);
        corrupt_message("1 2", &DataType::Int32);
        corrupt_message("0x10", &DataType::Int32);
        corrupt_message("1e999", &DataType::Int64);
    }

    #[test]
    fn hugeints_as_decimal_38_0() {
        let dt = DataType::Decimal128(38, 0);
        canonical("-12345678901234567890123", &dt);
        canonical("0", &dt);
        canonical("99999999999999999999999999999999999999", &dt);
        assert_eq!(parse("123", &dt), ScalarValue::Decimal128(Some(123), 38, 0));
        // HUGEINT's range is wider than DECIMAL(38,0).
        let message = corrupt_message("-170141183460469231731687303715884105728", &dt);
        assert!(message.contains("does not fit decimal(38,0)"), "{message}");
    }

    #[test]
    fn floats() {
        for text in [
            "3.14",
            "nan",
            "inf",
            "-inf",
            "1e+300",
            "1e-07",
            "0.0",
            "-0.0",
            "-1.5",
            "50.25",
            "1.0",
            "100.0",
            "1000000000000000.0",
            "1e+16",
            "0.0001",
            "1e-05",
            "1.5e-05",
            "123456789.123",
            "2.5e-300",
            "1.7976931348623157e+308",
            "5e-324",
            "124.875",
        ] {
            canonical(text, &DataType::Float64);
        }
        for text in [
            "3.14",
            "0.1",
            "1e-05",
            "16777216.0",
            "3.4e+38",
            "1e+16",
            "249.75",
        ] {
            canonical(text, &DataType::Float32);
        }
        // DuckDB's own renderings, cross-checked with DuckDB 1.5.5.
        assert_eq!(f64_text(1e15), "1000000000000000.0");
        assert_eq!(f64_text(1e16), "1e+16");
        assert_eq!(f64_text(1e20), "1e+20");
        assert_eq!(f64_text(123_456_789_012_345.0), "123456789012345.0");
        assert_eq!(f64_text(1_234_567_890_123_456.0), "1234567890123456.0");
        assert_eq!(f64_text(f64::from(1e30_f32)), "1.0000000150474662e+30");
        assert_eq!(f32_text(1e30), "1e+30");
        assert_eq!(f32_text(123.0), "123.0");
        assert_eq!(f32_text(-0.0), "-0.0");
        // PostgreSQL's float text.
        normalises("NaN", &DataType::Float64, "nan");
        normalises("Infinity", &DataType::Float64, "inf");
        normalises("-Infinity", &DataType::Float32, "-inf");
        normalises("1E+300", &DataType::Float64, "1e+300");
        normalises("1e300", &DataType::Float64, "1e+300");
        assert!(matches!(
            parse("nan", &DataType::Float32),
            ScalarValue::Float32(Some(v)) if v.is_nan()
        ));
        corrupt_message("pi", &DataType::Float64);
        corrupt_message("", &DataType::Float64);
    }

    #[test]
    fn decimals() {
        canonical("12345.678", &DataType::Decimal128(18, 3));
        canonical("-0.001", &DataType::Decimal128(18, 3));
        canonical("1.5000000000", &DataType::Decimal128(38, 10));
        canonical("-99.9999999999", &DataType::Decimal128(38, 10));
        canonical("142.714", &DataType::Decimal128(18, 3));
        canonical("0.00", &DataType::Decimal128(4, 2));
        canonical("-0.5", &DataType::Decimal128(4, 1));
        canonical("-0.01", &DataType::Decimal128(5, 2));
        canonical("99.99", &DataType::Decimal128(4, 2));
        canonical(".123", &DataType::Decimal128(3, 3));
        canonical("-.0644", &DataType::Decimal128(4, 4));
        canonical(".0000", &DataType::Decimal128(4, 4));
        canonical("[.500, -.010]", &list_of(DataType::Decimal128(3, 3)));
        normalises("0.5", &DataType::Decimal128(1, 1), ".5");
        assert_eq!(
            parse("-2.25", &DataType::Decimal128(9, 2)),
            ScalarValue::Decimal128(Some(-225), 9, 2)
        );
        // Fewer or more digits than the scale: rescaled, rounding half away from zero.
        normalises("1.5", &DataType::Decimal128(10, 4), "1.5000");
        normalises("1", &DataType::Decimal128(10, 4), "1.0000");
        normalises("1.235", &DataType::Decimal128(4, 2), "1.24");
        normalises("1.225", &DataType::Decimal128(4, 2), "1.23");
        normalises("-1.235", &DataType::Decimal128(4, 2), "-1.24");
        normalises("1.234", &DataType::Decimal128(4, 2), "1.23");
        normalises(".5", &DataType::Decimal128(4, 2), "0.50");
        normalises("5.", &DataType::Decimal128(4, 2), "5.00");
        normalises("1e2", &DataType::Decimal128(5, 1), "100.0");
        normalises("0.004", &DataType::Decimal128(4, 2), "0.00");
        normalises("0.005", &DataType::Decimal128(4, 2), "0.01");
        normalises("-0.000", &DataType::Decimal128(4, 2), "0.00");
        normalises(
            "333.0000000000",
            &DataType::Decimal128(38, 10),
            "333.0000000000",
        );
        let message = corrupt_message("12345.6", &DataType::Decimal128(4, 1));
        assert!(message.contains("'12345.6'"), "{message}");
        assert!(message.contains("Decimal128(4, 1)"), "{message}");
        corrupt_message("99.995", &DataType::Decimal128(4, 2));
        corrupt_message("NaN", &DataType::Decimal128(4, 2));
        corrupt_message("1.2.3", &DataType::Decimal128(4, 2));
        let largest = 10i128.pow(38) - 1;
        formats(
            ScalarValue::Decimal128(Some(-largest), 38, 0),
            &(-largest).to_string(),
        );
        assert_eq!(
            format(&ScalarValue::Decimal128(Some(i128::MIN), 38, 0)),
            i128::MIN.to_string()
        );
        assert_eq!(format(&ScalarValue::Decimal128(Some(12), 38, -2)), "1200");
        formats(ScalarValue::Decimal128(Some(-5), 38, 10), "-0.0000000005");
    }

    #[test]
    fn dates() {
        let dt = DataType::Date32;
        canonical("2024-01-15", &dt);
        canonical("1970-01-01", &dt);
        canonical("2020-02-29", &dt);
        canonical("0001-01-01", &dt);
        canonical("0044-03-15 (BC)", &dt);
        canonical("0001-01-01 (BC)", &dt);
        canonical("10000-01-01", &dt);
        canonical("290308-12-22", &dt);
        canonical("infinity", &dt);
        canonical("-infinity", &dt);
        assert_eq!(parse("1970-01-02", &dt), ScalarValue::Date32(Some(1)));
        assert_eq!(parse("1969-12-31", &dt), ScalarValue::Date32(Some(-1)));
        assert_eq!(parse("2024-01-15", &dt), ScalarValue::Date32(Some(19737)));
        assert_eq!(parse("infinity", &dt), ScalarValue::Date32(Some(i32::MAX)));
        assert_eq!(
            parse("-infinity", &dt),
            ScalarValue::Date32(Some(-i32::MAX))
        );
        normalises("-0044-03-15", &dt, "0045-03-15 (BC)");
        normalises("0000-01-01", &dt, "0001-01-01 (BC)");
        normalises(" 2024-1-5 ", &dt, "2024-01-05");
        for bad in [
            "2024-02-30",
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024/01/15",
            "x",
        ] {
            corrupt_message(bad, &dt);
        }
        corrupt_message("2024-01-15 12:00:00", &dt);
    }

    #[test]
    fn civil_conversion_is_consistent() {
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn times() {
        let us = DataType::Time64(TimeUnit::Microsecond);
        let ns = DataType::Time64(TimeUnit::Nanosecond);
        for text in [
            "12:30:00",
            "12:30:00.5",
            "12:30:00.123456",
            "00:00:00",
            "23:59:59.999999",
            "24:00:00",
            "00:16:39",
        ] {
            canonical(text, &us);
        }
        for text in [
            "12:30:00.123456789",
            "12:30:00.1",
            "00:00:00.000000001",
            "00:00:00",
        ] {
            canonical(text, &ns);
        }
        assert_eq!(time_micros("12:30:00.5"), 45_000_500_000);
        normalises("12:30", &us, "12:30:00");
        // Sub-microsecond digits are truncated, like DuckDB.
        normalises("12:30:00.1234567", &us, "12:30:00.123456");
        // timetz: normalised to UTC.
        assert_eq!(time_micros("12:30:00+02"), time_micros("10:30:00"));
        assert_eq!(time_micros("12:30:00+05:30"), time_micros("07:00:00"));
        assert_eq!(time_micros("12:30:00.5-05:30"), time_micros("18:00:00.5"));
        assert_eq!(time_micros("01:00:00+05:30"), time_micros("19:30:00"));
        assert_eq!(time_micros("23:00:00-02"), time_micros("01:00:00"));
        assert_eq!(time_micros("12:30:00+00"), time_micros("12:30:00"));
        canonical("12:30:00", &DataType::Time32(TimeUnit::Second));
        canonical("12:30:00.25", &DataType::Time32(TimeUnit::Millisecond));
        for bad in [
            "25:00:00", "24:00:01", "12:60:00", "12:30:60", "12", "noon", "12:3:00",
        ] {
            corrupt_message(bad, &us);
        }
        corrupt_message("12:30:00+2x", &us);
    }

    #[test]
    fn timestamps() {
        let us = ts(TimeUnit::Microsecond);
        for text in [
            "2024-01-15 12:30:00.123456",
            "2024-01-15 12:30:00",
            "1970-01-01 00:00:00",
            "2020-02-11 15:00:00",
            "1969-12-31 23:59:59.999999",
            "0044-03-15 (BC) 12:00:00",
            "infinity",
            "-infinity",
        ] {
            canonical(text, &us);
        }
        assert_eq!(
            parse("infinity", &us),
            ScalarValue::TimestampMicrosecond(Some(i64::MAX), None)
        );
        assert_eq!(
            parse("-infinity", &us),
            ScalarValue::TimestampMicrosecond(Some(-i64::MAX), None)
        );
        assert_eq!(
            parse("1970-01-01 00:00:01.5", &us),
            ScalarValue::TimestampMicrosecond(Some(1_500_000), None)
        );
        normalises("2024-01-15T12:30:00", &us, "2024-01-15 12:30:00");
        normalises("2024-01-15", &us, "2024-01-15 00:00:00");
        normalises("2024-01-15 12:30", &us, "2024-01-15 12:30:00");
        normalises(
            "2024-01-15 12:30:00.1234567",
            &us,
            "2024-01-15 12:30:00.123456",
        );
        normalises(
            "2024-01-15 12:30:00.9999999",
            &us,
            "2024-01-15 12:30:00.999999",
        );
        // A plain TIMESTAMP ignores an offset, as DuckDB does.
        normalises("2024-01-15 12:30:00+02", &us, "2024-01-15 12:30:00");

        let ns = ts(TimeUnit::Nanosecond);
        canonical("2024-01-15 12:30:00.123456789", &ns);
        canonical("2024-01-15 12:30:00.1234567", &ns);
        canonical("2020-01-01 00:03:20", &ns);
        canonical("infinity", &ns);
        canonical("-infinity", &ns);
        corrupt_message("3000-01-01 00:00:00", &ns);

        let ms = ts(TimeUnit::Millisecond);
        canonical("2024-01-15 12:30:00.123", &ms);
        canonical("2024-01-15 12:30:00.5", &ms);
        canonical("-infinity", &ms);
        normalises("2024-01-15 12:30:00.1235", &ms, "2024-01-15 12:30:00.124");
        normalises("2024-01-15 12:30:00.1234", &ms, "2024-01-15 12:30:00.123");

        let s = ts(TimeUnit::Second);
        canonical("2024-01-15 12:30:01", &s);
        canonical("infinity", &s);
        normalises("2024-01-15 12:30:00.5", &s, "2024-01-15 12:30:01");
        normalises("2024-01-15 12:30:00.4", &s, "2024-01-15 12:30:00");

        for bad in [
            "2024-01-15 25:00:00",
            "2024-01-15X12:00:00",
            "yesterday",
            "2024-01-15 12",
        ] {
            corrupt_message(bad, &us);
        }
    }

    #[test]
    fn timestamptz() {
        let dt = tstz();
        for text in [
            "2000-07-01 06:59:59.999999+00",
            "2024-01-15 12:30:00.123456+00",
            "2020-01-01 00:00:00+00",
            "infinity",
            "-infinity",
        ] {
            canonical(text, &dt);
        }
        let base = micros("2024-01-15 12:30:00+00");
        assert_eq!(micros("2024-01-15 12:30:00+02"), base - 2 * 3_600_000_000);
        assert_eq!(micros("2024-01-15 12:30:00-08"), base + 8 * 3_600_000_000);
        assert_eq!(micros("2024-01-15 12:30:00+05:30"), base - 19_800_000_000);
        assert_eq!(micros("2024-01-15 12:30:00+0530"), base - 19_800_000_000);
        assert_eq!(micros("2024-01-15T12:30:00Z"), base);
        assert_eq!(micros("2024-01-15 12:30:00 UTC"), base);
        assert_eq!(micros("2024-01-15 12:30:00"), base);
        normalises("2024-01-15 01:00:00+02", &dt, "2024-01-14 23:00:00+00");
        let other_zone = DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("+02:00")));
        assert_eq!(
            format(&parse("2024-01-15 12:30:00+00", &other_zone)),
            "2024-01-15 12:30:00+00"
        );
        corrupt_message("2024-01-15 12:30:00+2", &dt);
        corrupt_message("2024-01-15 12:30:00 Europe/Berlin", &dt);
    }

    #[test]
    fn intervals() {
        let dt = interval();
        for text in [
            "1 year 2 months 3 days 04:00:00",
            "25:00:00",
            "200 days",
            "-1 day",
            "1 day -01:00:00",
            "00:00:00.5",
            "00:00:00",
            "-1 year -2 months",
            "1 year 1 month",
            "1 month",
            "2 years",
            "-24:57:00",
            "00:00:00.000001",
            "-00:00:00.000001",
            "100000:00:00",
            "1 day 02:00:00",
            "00:00:00.000000001",
        ] {
            canonical(text, &dt);
        }
        assert_eq!(mdn("1 year 2 months 3 days 04:00:00"), (14, 3, 4 * HOUR_NS));
        assert_eq!(mdn("25:00:00"), (0, 0, 25 * HOUR_NS));
        assert_eq!(mdn("1 day -01:00:00"), (0, 1, -HOUR_NS));
        assert_eq!(mdn("00:00:00.5"), (0, 0, 500_000_000));
        // PostgreSQL's interval text.
        normalises(
            "1 year 2 mons 3 days 04:00:00",
            &dt,
            "1 year 2 months 3 days 04:00:00",
        );
        normalises("1 mon", &dt, "1 month");
        normalises("-1 days", &dt, "-1 day");
        normalises("-2 days", &dt, "-2 days");
        normalises("-1 years -2 mons", &dt, "-1 year -2 months");
        normalises("-1 days +02:00:00", &dt, "-1 day 02:00:00");
        normalises("@ 1 day 2 hours ago", &dt, "-1 day -02:00:00");
        // Other spellings DuckDB accepts.
        normalises("13 months", &dt, "1 year 1 month");
        normalises("2 weeks", &dt, "14 days");
        normalises("1.5 days", &dt, "1 day 12:00:00");
        normalises("1.5 years", &dt, "1 year 6 months");
        normalises("1 hour 30 minutes", &dt, "01:30:00");
        normalises("1:30", &dt, "01:30:00");
        normalises("0.5 seconds", &dt, "00:00:00.5");
        normalises("3days", &dt, "3 days");
        normalises(
            "0 months 1 days 7200000000 microseconds",
            &dt,
            "1 day 02:00:00",
        );
        normalises("-25 hours 3 minutes", &dt, "-24:57:00");
        for bad in [
            "",
            "1 fortnight",
            "5",
            "days",
            "1.5 months",
            "1:2:3",
            "99999999999 years",
        ] {
            corrupt_message(bad, &dt);
        }
        formats(
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(-13, -2, 0))),
            "-1 year -1 month -2 days",
        );
        assert_eq!(
            format(&ScalarValue::IntervalYearMonth(Some(14))),
            "1 year 2 months"
        );
        assert_eq!(
            format(&ScalarValue::IntervalDayTime(Some(IntervalDayTime::new(
                1, 1500
            )))),
            "1 day 00:00:01.5"
        );
    }

    #[test]
    fn strings() {
        for text in [
            "hello",
            "",
            "NULL",
            "quote's \"dq\" ,comma",
            "{\"k\": [1,2]}",
            " x ",
            "é",
        ] {
            canonical(text, &DataType::Utf8);
        }
        canonical("row_0", &DataType::Utf8View);
        canonical("row_0", &DataType::LargeUtf8);
    }

    #[test]
    fn blobs() {
        let dt = DataType::Binary;
        canonical("\\x00\\xFFab", &dt);
        canonical("", &dt);
        canonical("b0", &dt);
        canonical("\\x00\\x01a\\x27b\\x22\\x5C~\\x7F\\x80\\xFF", &dt);
        assert_eq!(
            parse("\\x00\\xFFab", &dt),
            ScalarValue::Binary(Some(vec![0, 255, b'a', b'b']))
        );
        assert_eq!(
            parse("\\xff'\"", &dt),
            ScalarValue::Binary(Some(vec![255, b'\'', b'"']))
        );
        formats(
            ScalarValue::Binary(Some(vec![0, 1, b'a', b'\'', b'b', b'"', b'\\', b' ', 0x7F])),
            "\\x00\\x01a\\x27b\\x22\\x5C \\x7F",
        );
        canonical("\\x00ab", &DataType::LargeBinary);
        canonical("\\x00ab", &DataType::BinaryView);
        for bad in ["\\x4", "\\X41", "\\", "a\\b", "é", "\\xZZ", "\\x+4"] {
            corrupt_message(bad, &dt);
        }
    }

    #[test]
    fn uuids() {
        let dt = DataType::FixedSizeBinary(16);
        canonical("550e8400-e29b-41d4-a716-446655440000", &dt);
        canonical("00000000-0000-0000-0000-000000000001", &dt);
        normalises(
            "550E8400-E29B-41D4-A716-446655440000",
            &dt,
            "550e8400-e29b-41d4-a716-446655440000",
        );
        normalises(
            "{550e8400-e29b-41d4-a716-446655440000}",
            &dt,
            "550e8400-e29b-41d4-a716-446655440000",
        );
        let value = parse("00000000-0000-0000-0000-000000000001", &dt);
        let mut bytes = vec![0; 16];
        bytes[15] = 1;
        assert_eq!(value, ScalarValue::FixedSizeBinary(16, Some(bytes)));
        corrupt_message("550e8400-e29b-41d4-a716", &dt);
        corrupt_message("not-a-uuid", &dt);
        canonical("ab\\x00", &DataType::FixedSizeBinary(3));
        corrupt_message("ab", &DataType::FixedSizeBinary(3));
    }

    #[test]
    fn lists() {
        let ints = list_of(DataType::Int32);
        for text in ["[1, 2, 3]", "[]", "[NULL, 5]", "[NULL]", "[200, 201]"] {
            canonical(text, &ints);
        }
        let value = parse("[NULL, 5]", &ints);
        let ScalarValue::List(array) = &value else {
            panic!("{value:?}");
        };
        assert_eq!(array.value_length(0), 2);
        assert!(array.value(0).is_null(0));
        normalises("[1,2,3]", &ints, "[1, 2, 3]");
        normalises(" [ 1 , 2 ] ", &ints, "[1, 2]");
        normalises("[ ]", &ints, "[]");
        normalises("[null, Null]", &ints, "[NULL, NULL]");
        normalises("['1', \"2\"]", &ints, "[1, 2]");

        let nested = list_of(list_of(DataType::Utf8));
        canonical("[[a, b], [c]]", &nested);
        canonical("[[NULL]]", &nested);
        canonical("[[s200]]", &nested);
        canonical("[[], NULL, [x]]", &nested);

        let strings = list_of(DataType::Utf8);
        let text = r#"['a,b', 'c]d', 'q\'uote', 'dq"x', ' lead', 'NULL', NULL, '']"#;
        canonical(text, &strings);
        let expected: Vec<Option<&str>> = vec![
            Some("a,b"),
            Some("c]d"),
            Some("q'uote"),
            Some("dq\"x"),
            Some(" lead"),
            Some("NULL"),
            None,
            Some(""),
        ];
        let expected = ScalarValue::List(Arc::new(
            ListArray::try_new(
                Arc::new(Field::new("element", DataType::Utf8, true)),
                OffsetBuffer::from_lengths([expected.len()]),
                Arc::new(datafusion::arrow::array::StringArray::from(expected)),
                None,
            )
            .unwrap_or_else(|e| panic!("{e}")),
        ));
        assert_eq!(parse(text, &strings), expected);
        // DuckDB's quoting rules, cross-checked with DuckDB 1.5.5.
        canonical(
            r"[x, 'it\'s', a\b, 'null', 'NULL', ' x', 'x ', a b, 'x(', é, '', 'a=b', 'a:b', '{', '\\\'']",
            &strings,
        );
        normalises("[a[b]c, a(b,c)]", &strings, "['a[b]c', 'a(b,c)']");
        normalises("[ab'c'd]", &strings, "[abcd]");
        normalises(r#"["hello", "wo,rld"]"#, &strings, "[hello, 'wo,rld']");
        normalises(r"['a\b']", &strings, r"[a\b]");
        normalises(r"['a\\b']", &strings, r"[a\b]");
        normalises("[a\tb, '\tx']", &strings, "[a\tb, '\tx']");

        canonical(
            "['2024-01-01 00:00:00.5']",
            &list_of(ts(TimeUnit::Microsecond)),
        );
        canonical("['2024-01-01 00:00:00+00']", &list_of(tstz()));
        canonical(
            "['12:30:00']",
            &list_of(DataType::Time64(TimeUnit::Microsecond)),
        );
        canonical("[2024-01-15, infinity]", &list_of(DataType::Date32));
        canonical("[1.50, -2.25]", &list_of(DataType::Decimal128(5, 2)));
        canonical("[\\x00\\x01]", &list_of(DataType::Binary));
        canonical("[\\x00\\x01, 'a,b', \\x27]", &list_of(DataType::Binary));
        canonical("[nan, 1e-07, 0.0, -inf]", &list_of(DataType::Float64));
        canonical("[true, false, NULL]", &list_of(DataType::Boolean));
        canonical("[1 day, '01:00:00']", &list_of(interval()));
        canonical(
            "[550e8400-e29b-41d4-a716-446655440000]",
            &list_of(DataType::FixedSizeBinary(16)),
        );
        canonical("['{\"a\": 1}']", &strings);

        for bad in [
            "[1, 2", "[1] x", "1, 2", "[1,]", "[a]", "[1 2]", "NULL", "", "['x]",
        ] {
            corrupt_message(bad, &ints);
        }
        let message = corrupt_message("[1, x]", &ints);
        assert!(
            message.contains("'[1, x]'") && message.contains("'x'"),
            "{message}"
        );
    }

    #[test]
    fn structs() {
        let st = struct_of(vec![("a", DataType::Int32), ("b", DataType::Utf8)]);
        canonical("{'a': 10, 'b': x}", &st);
        canonical("{'a': NULL, 'b': NULL}", &st);
        canonical("{'a': 1, 'b': 'it\\'s'}", &st);
        canonical("{'a': 1, 'b': 'null'}", &st);
        canonical("{'a': 1, 'b': ''}", &st);
        // DuckLake 1.5.5 writes top-level struct children as SQL literals.
        normalises("{'a': 10, 'b': 'x'}", &st, "{'a': 10, 'b': x}");
        normalises("{'a': 200, 'b': 'v200'}", &st, "{'a': 200, 'b': v200}");
        normalises("{'a': 1, 'b': 'it''s'}", &st, "{'a': 1, 'b': 'it\\'s'}");
        normalises("{'a': 1, 'b': 'a\\b'}", &st, "{'a': 1, 'b': a\\b}");
        normalises("{a: 1, \"b\": x}", &st, "{'a': 1, 'b': x}");
        normalises("{'b': x}", &st, "{'a': NULL, 'b': x}");
        normalises("{'B': x, 'A': 2}", &st, "{'a': 2, 'b': x}");
        normalises("(1, x)", &st, "{'a': 1, 'b': x}");
        normalises("{}", &st, "{'a': NULL, 'b': NULL}");

        let odd = struct_of(vec![
            ("a b", DataType::Utf8),
            ("c", list_of(DataType::Int32)),
        ]);
        canonical("{'a b': 'x, y', 'c': [1, NULL]}", &odd);
        canonical("{'a b': NULL, 'c': []}", &odd);

        let quoted_keys = struct_of(vec![("it's", DataType::Int32), ("a\"b", DataType::Int32)]);
        canonical("{'it\\'s': 1, 'a\"b': 2}", &quoted_keys);
        normalises(
            "{'it''s': 1, 'a\"b': 2}",
            &quoted_keys,
            "{'it\\'s': 1, 'a\"b': 2}",
        );

        let deep = struct_of(vec![
            ("x", list_of(DataType::Int32)),
            ("y", struct_of(vec![("z", DataType::Float64)])),
        ]);
        canonical("{'x': [1, 2], 'y': {'z': 2.5}}", &deep);
        canonical("{'x': NULL, 'y': NULL}", &deep);
        canonical("{'x': [200], 'y': {'z': 100.0}}", &deep);

        let typed = struct_of(vec![
            ("ts", ts(TimeUnit::Microsecond)),
            ("d", DataType::Date32),
            ("bl", DataType::Binary),
            ("f", DataType::Float64),
            ("r", DataType::Float32),
            ("dec", DataType::Decimal128(5, 2)),
            ("u", DataType::FixedSizeBinary(16)),
            ("iv", interval()),
            ("b", DataType::Boolean),
        ]);
        // What DuckLake 1.5.5 stores for such a struct (DuckDB cannot read it back).
        normalises(
            "{'ts': CAST('2024-01-01 00:00:00.5' AS TIMESTAMP), 'd': CAST('2024-01-02' AS DATE), \
             'bl': CAST('\\x00\\x01a\\x27b' AS BLOB), 'f': CAST('nan' AS VARCHAR), 'r': 3.14, \
             'dec': 1.50, 'u': CAST('550e8400-e29b-41d4-a716-446655440000' AS UUID), \
             'iv': CAST('0 months 1 days 7200000000 microseconds' AS INTERVAL), 'b': true}",
            &typed,
            "{'ts': '2024-01-01 00:00:00.5', 'd': 2024-01-02, 'bl': \\x00\\x01a\\x27b, \
             'f': nan, 'r': 3.14, 'dec': 1.50, 'u': 550e8400-e29b-41d4-a716-446655440000, \
             'iv': '1 day 02:00:00', 'b': true}",
        );

        let empty = DataType::Struct(Fields::empty());
        canonical("{}", &empty);

        for bad in [
            "{'c': 1}",
            "{'a': 1, 'a': 2}",
            "{'a' 1}",
            "{'a': 1",
            "[1]",
            "(1, x, 3)",
        ] {
            corrupt_message(bad, &st);
        }
    }

    #[test]
    fn maps() {
        let m = map_of(DataType::Utf8, DataType::Int32);
        for text in ["{k1=1, k2=2}", "{}", "{z=NULL}", "{k=200}"] {
            canonical(text, &m);
        }
        let strings = map_of(DataType::Utf8, DataType::Utf8);
        canonical("{'k,1'='v\\'1', k2=NULL}", &strings);
        canonical("{'it\\'s'='x=y', a\\b='null', k=NULL}", &strings);
        normalises("{k=v, 'x'=\"y\"}", &strings, "{k=v, x=y}");
        normalises("{ k = v }", &strings, "{k=v}");

        let nested = map_of(DataType::Int32, struct_of(vec![("x", DataType::Utf8)]));
        canonical("{1={'x': a}, 2=NULL}", &nested);
        let list_values = map_of(DataType::Utf8, list_of(DataType::Int32));
        canonical("{a=[1, 2], b=[], c=NULL}", &list_values);

        let value = parse("{k1=1, k2=2}", &m);
        let ScalarValue::Map(array) = &value else {
            panic!("{value:?}");
        };
        assert_eq!(array.value_length(0), 2);
        assert_eq!(value.data_type(), m);

        for bad in [
            "{NULL=1}",
            "{k1}",
            "{k1=1",
            "{k1=x}",
            "[k1=1]",
            "{k1=1 k2=2}",
        ] {
            corrupt_message(bad, &m);
        }
    }

    #[test]
    fn nested_text_dump_rows() {
        // dumps/extras/nested_text.out.txt, row 1 and row 2.
        let row: [(&str, DataType); 7] = [
            (
                r#"['a,b', 'c]d', 'q\'uote', 'dq"x', ' lead', 'NULL', NULL, '']"#,
                list_of(DataType::Utf8),
            ),
            (
                "{'a b': 'x, y', 'c': [1, NULL]}",
                struct_of(vec![
                    ("a b", DataType::Utf8),
                    ("c", list_of(DataType::Int32)),
                ]),
            ),
            (
                "{'k,1'='v\\'1', k2=NULL}",
                map_of(DataType::Utf8, DataType::Utf8),
            ),
            (
                "['2024-01-01 00:00:00.5']",
                list_of(ts(TimeUnit::Microsecond)),
            ),
            ("[1.50, -2.25]", list_of(DataType::Decimal128(5, 2))),
            ("[\\x00\\x01]", list_of(DataType::Binary)),
            ("[nan, 1e-07, 0.0]", list_of(DataType::Float64)),
        ];
        for (text, dt) in &row {
            canonical(text, dt);
            let empty = match dt {
                DataType::Struct(_) => "{'a b': NULL, 'c': []}",
                DataType::Map(_, _) => "{}",
                _ => "[]",
            };
            canonical(empty, dt);
        }
    }

    #[test]
    fn update_few_rows_dump_values() {
        // dumps/sqlite/09_update_few_rows.txt, ducklake_inlined_data_2_2.
        let samples: Vec<(&str, DataType)> = vec![
            ("-8", DataType::Int8),
            ("-16", DataType::Int16),
            ("-64", DataType::Int64),
            ("8", DataType::UInt8),
            ("32", DataType::UInt32),
            ("18446744073709551615", DataType::UInt64),
            ("-12345678901234567890123", DataType::Decimal128(38, 0)),
            ("12345.678", DataType::Decimal128(18, 3)),
            ("1.5000000000", DataType::Decimal128(38, 10)),
            ("hello", DataType::Utf8),
            ("2024-01-15", DataType::Date32),
            ("2024-01-15 12:30:00.123456", ts(TimeUnit::Microsecond)),
            ("2024-01-15 12:30:00.123456+00", tstz()),
            ("2024-01-15 12:30:00.123456789", ts(TimeUnit::Nanosecond)),
            ("12:30:00.5", DataType::Time64(TimeUnit::Microsecond)),
            ("3.14", DataType::Float32),
            ("nan", DataType::Float64),
            (
                "550e8400-e29b-41d4-a716-446655440000",
                DataType::FixedSizeBinary(16),
            ),
            ("1 year 2 months 3 days 04:00:00", interval()),
            ("{\"k\": [1,2]}", DataType::Utf8),
            ("[1, 2, 3]", list_of(DataType::Int32)),
            ("infinity", DataType::Date32),
            ("-infinity", ts(TimeUnit::Microsecond)),
            ("inf", DataType::Float32),
            ("0.0", DataType::Float64),
            ("-0.001", DataType::Decimal128(18, 3)),
            ("-99.9999999999", DataType::Decimal128(38, 10)),
            ("quote's \"dq\" ,comma", DataType::Utf8),
            ("2000-07-01 06:59:59.999999+00", tstz()),
            ("00:00:00", DataType::Time64(TimeUnit::Microsecond)),
            ("1e+300", DataType::Float64),
            ("25:00:00", interval()),
            ("null", DataType::Utf8),
            ("200 days", interval()),
            ("50.25", DataType::Float32),
            ("25.125", DataType::Float64),
        ];
        for (text, dt) in &samples {
            canonical(text, dt);
        }
        assert_eq!(
            parse("1", &DataType::Boolean),
            ScalarValue::Boolean(Some(true))
        );
    }

    #[test]
    fn nulls_and_unsupported_types() {
        assert_eq!(
            format_duckdb_text(&ScalarValue::Int32(None)).ok(),
            Some(None)
        );
        assert_eq!(format_duckdb_text(&ScalarValue::Null).ok(), Some(None));
        let null_list =
            ScalarValue::try_new_null(&list_of(DataType::Int32)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format_duckdb_text(&null_list).ok(), Some(None));
        assert!(matches!(
            format_duckdb_text(&ScalarValue::DurationSecond(Some(1))),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(
            parse_duckdb_text("1", &DataType::Duration(TimeUnit::Second)),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(
            parse_duckdb_text("[1]", &list_of(DataType::Float16)),
            Err(Error::Unsupported(_))
        ));
        assert_eq!(parse_stat("1", &DataType::Duration(TimeUnit::Second)), None);
        // The string NULL is a value, not a null.
        assert_eq!(
            parse("NULL", &DataType::Utf8),
            ScalarValue::Utf8(Some("NULL".to_string()))
        );
    }

    #[test]
    fn other_list_encodings_format() {
        let value = parse("[[1, 2], NULL]", &list_of(list_of(DataType::Int64)));
        let ScalarValue::List(array) = &value else {
            panic!("{value:?}");
        };
        let large = datafusion::arrow::compute::cast(
            array.as_ref(),
            &DataType::LargeList(Arc::new(Field::new(
                "element",
                list_of(DataType::Int64),
                true,
            ))),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let large = ScalarValue::try_from_array(&large, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format(&large), "[[1, 2], NULL]");
        let dict = ScalarValue::Dictionary(
            Box::new(DataType::Int32),
            Box::new(ScalarValue::Utf8(Some("x".to_string()))),
        );
        assert_eq!(format(&dict), "x");
    }

    #[test]
    fn error_messages_quote_text_and_type() {
        let message = corrupt_message("abc", &DataType::Int32);
        assert!(message.contains("'abc'"), "{message}");
        assert!(message.contains("Int32"), "{message}");
        let long = "x".repeat(1000);
        let message = corrupt_message(&long, &DataType::Int32);
        assert!(message.len() < 400, "{message}");
    }

    #[test]
    fn stats() {
        let b = DataType::Boolean;
        assert_eq!(parse_stat("0", &b), Some(ScalarValue::Boolean(Some(false))));
        assert_eq!(parse_stat("1", &b), Some(ScalarValue::Boolean(Some(true))));
        assert_eq!(
            parse_stat("true", &b),
            Some(ScalarValue::Boolean(Some(true)))
        );
        assert_eq!(
            parse_stat("false", &b),
            Some(ScalarValue::Boolean(Some(false)))
        );

        let bin = DataType::Binary;
        assert_eq!(parse_stat("6230", &bin), None);
        assert_eq!(parse_stat("62393939", &bin), None);
        assert_eq!(
            parse_stat("\\x00\\xFFab", &bin),
            Some(ScalarValue::Binary(Some(vec![0, 255, b'a', b'b'])))
        );
        assert_eq!(
            parse_stat("row", &bin),
            Some(ScalarValue::Binary(Some(b"row".to_vec())))
        );
        assert_eq!(
            parse_stat("", &bin),
            Some(ScalarValue::Binary(Some(vec![])))
        );
        assert_eq!(parse_stat("\\x", &bin), None);

        assert_eq!(parse_stat("nan", &DataType::Float64), None);
        assert_eq!(parse_stat("nan", &DataType::Float32), None);
        assert_eq!(
            parse_stat("inf", &DataType::Float64),
            Some(ScalarValue::Float64(Some(f64::INFINITY)))
        );
        assert_eq!(
            parse_stat("249.75", &DataType::Float32),
            Some(ScalarValue::Float32(Some(249.75)))
        );
        assert_eq!(
            parse_stat("142.714", &DataType::Decimal128(18, 3)),
            Some(ScalarValue::Decimal128(Some(142_714), 18, 3))
        );
        assert_eq!(
            parse_stat("18446744073709551615", &DataType::UInt64),
            Some(ScalarValue::UInt64(Some(u64::MAX)))
        );
        assert_eq!(
            parse_stat("2020-01-01 00:00:00+00", &tstz()),
            Some(ScalarValue::TimestampMicrosecond(
                Some(1_577_836_800_000_000),
                Some(Arc::from("UTC"))
            ))
        );
        assert_eq!(
            parse_stat("infinity", &DataType::Date32),
            Some(ScalarValue::Date32(Some(i32::MAX)))
        );
        assert_eq!(
            parse_stat("{\"i\":0}", &DataType::Utf8),
            Some(ScalarValue::Utf8(Some("{\"i\":0}".to_string())))
        );
        assert!(parse_stat("1 year 2 months 3 days 04:00:00", &interval()).is_some());
        assert_eq!(parse_stat("[1, 2]", &list_of(DataType::Int32)), None);
        assert_eq!(
            parse_stat("{k=1}", &map_of(DataType::Utf8, DataType::Int32)),
            None
        );
        assert_eq!(parse_stat("garbage", &DataType::Int64), None);
        assert_eq!(parse_stat("garbage", &DataType::Date32), None);
    }
}
