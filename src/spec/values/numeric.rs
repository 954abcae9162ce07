//! Booleans, integers, floats and decimals.

use super::*;

// ---------------------------------------------------------------------------
// Parsing: scalars
// ---------------------------------------------------------------------------

pub(super) fn parse_bool(text: &str) -> Res<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" => Ok(true),
        "false" | "f" | "0" | "no" | "n" => Ok(false),
        _ => Err("not a boolean".to_string()),
    }
}

/// A number in decimal text: `-12.5`, `.5`, `5.`, `1e+300`.
pub(super) struct DecimalText {
    negative: bool,
    /// Integer and fraction digits, concatenated.
    digits: String,
    /// How many of `digits` are after the decimal point.
    fraction_len: usize,
    /// Power of ten from an `e` suffix.
    exponent: i64,
}

/// A leading `-` or `+` removed: whether it was `-`, and the rest.
pub(super) fn split_sign(text: &str) -> (bool, &str) {
    match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    }
}

pub(super) fn parse_decimal_text(text: &str) -> Res<DecimalText> {
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
pub(super) fn pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

/// The number times `10^scale`, rounded half away from zero (DuckDB's rounding).
pub(super) fn scaled_integer(number: &DecimalText, scale: i64) -> Res<i128> {
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

pub(super) fn parse_integer<T: TryFrom<i128>>(text: &str) -> Res<T> {
    let value = scaled_integer(&parse_decimal_text(text)?, 0)?;
    T::try_from(value).map_err(|_| format!("{value} is out of range"))
}

pub(super) fn parse_float<T: std::str::FromStr>(text: &str) -> Res<T> {
    // Rust accepts `nan`, `NaN`, `inf`, `-inf`, `Infinity`, `1e+300` case-insensitively.
    text.trim()
        .parse::<T>()
        .map_err(|_| "not a floating-point number".to_string())
}

pub(super) fn parse_decimal(text: &str, precision: u8, scale: i8) -> Res<i128> {
    let does_not_fit = || format!("does not fit decimal({precision},{scale})");
    let number = parse_decimal_text(text)?;
    let value = scaled_integer(&number, i64::from(scale)).map_err(|_| does_not_fit())?;
    let limit = pow10(u32::from(precision)).unwrap_or(i128::MAX);
    if value.unsigned_abs() >= limit.unsigned_abs() {
        return Err(does_not_fit());
    }
    Ok(value)
}
/// DuckDB's float text from Rust's shortest round-trip digits (`{:e}`): fixed
/// notation for exponents -4..16 (always with a fraction, `1.0`), otherwise
/// `1e+300` / `1e-07` (the same rule as Python's `repr`).
pub(super) fn format_float(is_nan: bool, is_infinite: bool, scientific: &str) -> String {
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
pub(super) fn format_decimal(value: i128, precision: u8, scale: i8) -> String {
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
