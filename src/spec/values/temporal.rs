//! Dates, times, timestamps and intervals.

use super::*;

// ---------------------------------------------------------------------------
// Parsing: dates and times
// ---------------------------------------------------------------------------

/// Days since 1970-01-01 of a proleptic Gregorian date (astronomical year numbering).
pub(super) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let shifted_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of days since 1970-01-01 (astronomical year numbering).
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
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

pub(super) fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub(super) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Leading ASCII digits of `s` and the rest.
pub(super) fn split_digits(s: &str) -> (&str, &str) {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    s.split_at(end)
}

/// `[-]YYYY-MM-DD[ (BC)]` at the start of `s`: days since the epoch and the rest.
pub(super) fn parse_date_prefix(s: &str) -> Res<(i64, &str)> {
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

pub(super) fn parse_date(text: &str) -> Res<i32> {
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
pub(super) struct Clock {
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
pub(super) fn parse_clock(s: &str) -> Res<(Clock, &str)> {
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
pub(super) fn fraction_nanos(digits: &str) -> u64 {
    digits
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0, |acc, d| acc * 10 + u64::from(d - b'0'))
}

/// A UTC offset suffix in seconds: `+02`, `-05:30`, `+0530`, `+02:00:00`, `Z`, ` UTC`.
pub(super) fn parse_offset(s: &str) -> Res<i64> {
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
pub(super) fn parse_time_nanos(text: &str) -> Res<i64> {
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

pub(super) fn parse_time64(text: &str, unit: &TimeUnit) -> Res<ScalarValue> {
    let nanos = parse_time_nanos(text)?;
    match unit {
        TimeUnit::Microsecond => Ok(ScalarValue::Time64Microsecond(Some(nanos / 1000))),
        TimeUnit::Nanosecond => Ok(ScalarValue::Time64Nanosecond(Some(nanos))),
        other => Err(format!("invalid Time64 unit {other:?}")),
    }
}

pub(super) fn parse_time32(text: &str, unit: &TimeUnit) -> Res<ScalarValue> {
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
pub(super) fn unit_nanos(unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => NANOS_PER_SECOND,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1000,
        TimeUnit::Nanosecond => 1,
    }
}

/// A timestamp in `unit` since the epoch. Offsets are applied only when
/// `with_tz` (DuckDB ignores them for a plain `TIMESTAMP`).
pub(super) fn parse_timestamp(text: &str, unit: &TimeUnit, with_tz: bool) -> Res<i64> {
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

pub(super) fn parse_timestamp_scalar(
    text: &str,
    unit: &TimeUnit,
    tz: Option<Arc<str>>,
) -> Res<ScalarValue> {
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
pub(super) fn accumulate(target: &mut i128, value: i128) -> Res<()> {
    *target = target
        .checked_add(value)
        .ok_or_else(|| "interval out of range".to_string())?;
    Ok(())
}

/// What a unit word adds per unit.
pub(super) enum IntervalUnitKind {
    Months(i128),
    Days(i128),
    Nanos(i128),
}

pub(super) fn interval_unit(word: &str) -> Option<IntervalUnitKind> {
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
pub(super) fn parse_interval(text: &str) -> Res<IntervalMonthDayNano> {
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

/// `2024-01-15`, `0044-03-15 (BC)` (no year 0, like DuckDB).
pub(super) fn format_date(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    if year <= 0 {
        format!("{:04}-{month:02}-{day:02} (BC)", 1 - year)
    } else {
        format!("{year:04}-{month:02}-{day:02}")
    }
}

pub(super) fn format_date32(days: i32) -> String {
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

pub(super) fn format_time(nanos: i64) -> Result<String, Error> {
    u64::try_from(nanos)
        .map(format_clock)
        .map_err(|_| Error::Corrupt(format!("negative time of day ({nanos} ns)")))
}

pub(super) fn format_timestamp(value: i64, unit: &TimeUnit, with_tz: bool) -> String {
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

pub(super) fn plural(value: i64) -> &'static str {
    if value == 1 || value == -1 { "" } else { "s" }
}

/// `1 year 2 months 3 days 04:00:00`, `-1 day`, `00:00:00` for zero.
pub(super) fn format_interval(value: IntervalMonthDayNano) -> String {
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
