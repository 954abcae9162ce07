//! Floating-point numbers as DuckDB prints them (`CAST(x AS VARCHAR)`): the
//! shortest digits that round-trip, laid out as Python's `repr` does. Used by
//! value rendering (`dialect::render`) and WKT text (`spec::geometry`).

use std::fmt::Write;

/// Shortest round-trip digits as Python's `repr` (and DuckDB) lays them out:
/// plain notation for exponents -5 < e < 16, else `d.ddde+XX`.
fn write_float_digits(out: &mut String, sci: &str) {
    // `sci` is Rust's `{:e}`: "-1.2345e6", "1e-7", "0e0".
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if negative {
        out.push('-');
    }
    if (-5 < exponent) && (exponent < 16) {
        if exponent >= 0 {
            let int_len = usize::try_from(exponent).unwrap_or(0) + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                for _ in digits.len()..int_len {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                let (int_part, frac) = digits.split_at(int_len);
                out.push_str(int_part);
                out.push('.');
                out.push_str(frac);
            }
        } else {
            out.push_str("0.");
            for _ in 0..(-exponent - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        );
    }
}

/// A DOUBLE as DuckDB prints it.
pub fn push_float(out: &mut String, v: f64) {
    write_f64(out, v);
}

/// A DOUBLE as DuckDB prints it (`nan`, `inf`, shortest round-trip digits).
pub fn write_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("nan");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "inf" } else { "-inf" });
    } else {
        write_float_digits(out, &format!("{v:e}"));
    }
}

/// A FLOAT as DuckDB prints it.
pub fn write_f32(out: &mut String, v: f32) {
    if v.is_nan() {
        out.push_str("nan");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "inf" } else { "-inf" });
    } else {
        write_float_digits(out, &format!("{v:e}"));
    }
}
