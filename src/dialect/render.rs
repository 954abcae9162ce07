//! Values as DuckDB prints them: the text of DuckDB 1.5.5's `CAST(x AS VARCHAR)`
//! for every Arrow type lakeq produces.
//!
//! `lakeq sql` output (table, CSV, JSON) and the conformance runner both use this,
//! so a value reads the same in lakeq as in DuckDB. The rules, each checked
//! against DuckDB:
//! - DOUBLE/FLOAT: the shortest text that reads back as the same number, with an
//!   exponent below 1e-4 and from 1e16 up (`1.0`, `1e+20`, `1e-05`, `nan`, `inf`);
//! - DECIMAL(p,s): exactly `s` fractional digits;
//! - TIMESTAMP: `2020-01-01 01:02:03.12` (fraction trimmed, none when zero),
//!   TIMESTAMPTZ with `+00` (lakeq sessions are UTC), `infinity`/`-infinity`,
//!   BC dates as `0044-03-15 (BC)`;
//! - INTERVAL: `1 year 2 months 3 days 01:02:03.5`;
//! - BLOB: printable ASCII as itself, other bytes and `\` as `\xHH`;
//! - UUID (lakeq's `FixedSizeBinary(16)`): `8-4-4-4-12` lowercase hex;
//! - LIST `[1, NULL]`, STRUCT `{'a': 1}`, MAP `{k=v}`; a string inside them is
//!   quoted (`'it\'s'`) only when DuckDB would: empty, `null`, leading or trailing
//!   space, or one of `"'(),:=[]{}`.

use std::fmt::Write as _;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeBinaryArray, GenericBinaryArray,
    GenericListArray, MapArray, OffsetSizeTrait, StructArray,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Decimal256Type, Float16Type, Float32Type,
    Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, IntervalDayTimeType,
    IntervalMonthDayNanoType, IntervalUnit, IntervalYearMonthType, Time32MillisecondType,
    Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};

/// The text of row `row` of `array` as DuckDB's `CAST(x AS VARCHAR)` gives it;
/// `None` for NULL.
pub fn value_text(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) || matches!(array.data_type(), DataType::Null) {
        return None;
    }
    let mut out = String::new();
    write_value(&mut out, array, row);
    Some(out)
}

/// Row `row` of `array` as a JSON value: numbers and booleans as JSON, NaN and
/// infinities as strings, lists as arrays, structs (and maps with text keys) as
/// objects, every other value as a string of its DuckDB text.
pub fn json_value(array: &dyn Array, row: usize) -> String {
    let mut out = String::new();
    write_json(&mut out, array, row);
    out
}

fn json_string(out: &mut String, text: &str) {
    out.push_str(&serde_json::Value::String(text.to_string()).to_string());
}

fn write_json(out: &mut String, array: &dyn Array, row: usize) {
    if array.is_null(row) || matches!(array.data_type(), DataType::Null) {
        out.push_str("null");
        return;
    }
    match array.data_type() {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => write_value(out, array, row),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let mut text = String::new();
            write_value(&mut text, array, row);
            if matches!(text.as_str(), "nan" | "inf" | "-inf") {
                json_string(out, &text);
            } else {
                out.push_str(&text);
            }
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            let values = match array.data_type() {
                DataType::List(_) => array.as_list::<i32>().value(row),
                DataType::LargeList(_) => array.as_list::<i64>().value(row),
                _ => array.as_fixed_size_list().value(row),
            };
            out.push('[');
            for i in 0..values.len() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, values.as_ref(), i);
            }
            out.push(']');
        }
        DataType::Struct(_) => {
            let s = array.as_struct();
            out.push('{');
            for (i, (field, column)) in s.fields().iter().zip(s.columns()).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, field.name());
                out.push(':');
                write_json(out, column.as_ref(), row);
            }
            out.push('}');
        }
        DataType::Map(..) => {
            let entries = array.as_map().value(row);
            let (keys, values) = (entries.column(0), entries.column(1));
            out.push('{');
            for i in 0..entries.len() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, &value_text(keys.as_ref(), i).unwrap_or_default());
                out.push(':');
                write_json(out, values.as_ref(), i);
            }
            out.push('}');
        }
        _ => {
            let mut text = String::new();
            write_value(&mut text, array, row);
            json_string(out, &text);
        }
    }
}

/// DuckDB's name of the type lakeq gives as `data_type` (used by `typeof`-style
/// output and the conformance runner's type-aware comparison).
pub fn duckdb_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "\"NULL\"".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "UTINYINT".into(),
        DataType::UInt16 => "USMALLINT".into(),
        DataType::UInt32 => "UINTEGER".into(),
        DataType::UInt64 => "UBIGINT".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BLOB".into(),
        DataType::FixedSizeBinary(16) => "UUID".into(),
        DataType::FixedSizeBinary(_) => "BLOB".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        DataType::Timestamp(TimeUnit::Second, None) => "TIMESTAMP_S".into(),
        DataType::Timestamp(TimeUnit::Millisecond, None) => "TIMESTAMP_MS".into(),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "TIMESTAMP".into(),
        DataType::Timestamp(TimeUnit::Nanosecond, None) => "TIMESTAMP_NS".into(),
        DataType::Interval(_) | DataType::Duration(_) => "INTERVAL".into(),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f) => format!("{}[]", duckdb_type_name(f.data_type())),
        DataType::FixedSizeList(f, n) => format!("{}[{n}]", duckdb_type_name(f.data_type())),
        DataType::Struct(fields) => format!(
            "STRUCT({})",
            fields
                .iter()
                .map(|f| format!("{} {}", f.name(), duckdb_type_name(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::Map(entries, _) => {
            if let DataType::Struct(kv) = entries.data_type()
                && let [key, value] = &**kv
            {
                format!(
                    "MAP({}, {})",
                    duckdb_type_name(key.data_type()),
                    duckdb_type_name(value.data_type())
                )
            } else {
                "MAP".into()
            }
        }
        DataType::Dictionary(_, v) => duckdb_type_name(v),
        other => other.to_string(),
    }
}

fn is_nested(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(_, _)
            | DataType::Struct(_)
            | DataType::Map(_, _)
    )
}

/// A value inside a LIST, STRUCT or MAP: NULL spelled out, scalars quoted when
/// DuckDB would quote them.
fn write_nested_item(out: &mut String, array: &dyn Array, row: usize) {
    if array.is_null(row) || matches!(array.data_type(), DataType::Null) {
        out.push_str("NULL");
        return;
    }
    if is_nested(array.data_type()) {
        write_value(out, array, row);
        return;
    }
    let mut text = String::new();
    write_value(&mut text, array, row);
    write_quoted_if_needed(out, &text, false);
}

/// DuckDB's `NestedToVarcharCast` quoting: a string is written bare unless it
/// is empty, spells `null`, starts (or, when longer than one character, ends)
/// with white space, or holds one of `"'(),:=[]{}`; quoted strings escape `'`
/// and `\` with a backslash. Struct keys are always quoted.
fn write_quoted_if_needed(out: &mut String, text: &str, always: bool) {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r');
    let needs = always
        || text.is_empty()
        || text.starts_with(is_space)
        || (text.chars().count() >= 2 && text.ends_with(is_space))
        || text.eq_ignore_ascii_case("null")
        || text.contains(['"', '\'', '(', ')', ',', ':', '=', '[', ']', '{', '}']);
    if !needs {
        out.push_str(text);
        return;
    }
    out.push('\'');
    for c in text.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
}

fn write_value(out: &mut String, array: &dyn Array, row: usize) {
    match array.data_type() {
        DataType::Null => out.push_str("NULL"),
        DataType::Boolean => {
            let b: &BooleanArray = array.as_boolean();
            out.push_str(if b.value(row) { "true" } else { "false" });
        }
        DataType::Int8 => push(out, array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => push(out, array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => push(out, array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => push(out, array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => push(out, array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => push(out, array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => push(out, array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => push(out, array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float16 => write_f32(
            out,
            f32::from(array.as_primitive::<Float16Type>().value(row)),
        ),
        DataType::Float32 => write_f32(out, array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => write_f64(out, array.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal128(_, scale) => write_decimal(
            out,
            &array
                .as_primitive::<Decimal128Type>()
                .value(row)
                .to_string(),
            *scale,
        ),
        DataType::Decimal256(_, scale) => write_decimal(
            out,
            &array
                .as_primitive::<Decimal256Type>()
                .value(row)
                .to_string(),
            *scale,
        ),
        DataType::Utf8 => out.push_str(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => out.push_str(array.as_string::<i64>().value(row)),
        DataType::Utf8View => out.push_str(array.as_string_view().value(row)),
        DataType::Binary => write_blob(out, binary(array.as_binary::<i32>(), row)),
        DataType::LargeBinary => write_blob(out, binary(array.as_binary::<i64>(), row)),
        DataType::BinaryView => write_blob(out, array.as_binary_view().value(row)),
        DataType::FixedSizeBinary(16) => {
            let a: &FixedSizeBinaryArray = array.as_fixed_size_binary();
            write_uuid(out, a.value(row));
        }
        DataType::FixedSizeBinary(_) => write_blob(out, array.as_fixed_size_binary().value(row)),
        DataType::Date32 => write_date(
            out,
            i64::from(array.as_primitive::<Date32Type>().value(row)),
        ),
        DataType::Date64 => write_date(
            out,
            array
                .as_primitive::<Date64Type>()
                .value(row)
                .div_euclid(86_400_000),
        ),
        DataType::Time32(TimeUnit::Second) => write_time(
            out,
            i64::from(array.as_primitive::<Time32SecondType>().value(row)) * 1_000_000_000,
        ),
        DataType::Time32(_) => write_time(
            out,
            i64::from(array.as_primitive::<Time32MillisecondType>().value(row)) * 1_000_000,
        ),
        DataType::Time64(TimeUnit::Microsecond) => write_time(
            out,
            array.as_primitive::<Time64MicrosecondType>().value(row) * 1_000,
        ),
        DataType::Time64(_) => {
            write_time(out, array.as_primitive::<Time64NanosecondType>().value(row))
        }
        DataType::Timestamp(unit, tz) => {
            let (v, per_second) = match unit {
                TimeUnit::Second => (array.as_primitive::<TimestampSecondType>().value(row), 1),
                TimeUnit::Millisecond => (
                    array.as_primitive::<TimestampMillisecondType>().value(row),
                    1_000,
                ),
                TimeUnit::Microsecond => (
                    array.as_primitive::<TimestampMicrosecondType>().value(row),
                    1_000_000,
                ),
                TimeUnit::Nanosecond => (
                    array.as_primitive::<TimestampNanosecondType>().value(row),
                    1_000_000_000,
                ),
            };
            write_timestamp(out, v, per_second, tz.is_some());
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = array.as_primitive::<IntervalMonthDayNanoType>().value(row);
            write_interval(out, i64::from(v.months), i64::from(v.days), v.nanoseconds);
        }
        DataType::Interval(IntervalUnit::DayTime) => {
            let v = array.as_primitive::<IntervalDayTimeType>().value(row);
            write_interval(
                out,
                0,
                i64::from(v.days),
                i64::from(v.milliseconds) * 1_000_000,
            );
        }
        DataType::Interval(IntervalUnit::YearMonth) => {
            let v = array.as_primitive::<IntervalYearMonthType>().value(row);
            write_interval(out, i64::from(v), 0, 0);
        }
        DataType::Duration(unit) => {
            let v = datafusion::arrow::compute::cast(&array.slice(row, 1), &DataType::Int64)
                .ok()
                .and_then(|a| a.as_primitive_opt::<Int64Type>().map(|p| p.value(0)))
                .unwrap_or(0);
            let nanos = match unit {
                TimeUnit::Second => v.saturating_mul(1_000_000_000),
                TimeUnit::Millisecond => v.saturating_mul(1_000_000),
                TimeUnit::Microsecond => v.saturating_mul(1_000),
                TimeUnit::Nanosecond => v,
            };
            // DuckDB's TIMESTAMP - TIMESTAMP: whole days, then the time of day.
            let day = 86_400_000_000_000i64;
            write_interval(out, 0, nanos / day, nanos % day);
        }
        DataType::List(_) => write_list(out, array.as_list::<i32>(), row),
        DataType::LargeList(_) => write_list(out, array.as_list::<i64>(), row),
        DataType::FixedSizeList(_, _) => {
            let list = array.as_fixed_size_list();
            write_items(out, &list.value(row));
        }
        DataType::Struct(_) => write_struct(out, array.as_struct(), row),
        DataType::Map(_, _) => write_map(out, array.as_map(), row),
        DataType::Dictionary(_, _) => {
            let dict = array.as_any_dictionary();
            let key = dict.normalized_keys().get(row).copied().unwrap_or_default();
            write_value(out, dict.values().as_ref(), key);
        }
        _ => {
            // Types lakeq never produces; Arrow's own display is the best guess.
            let text = datafusion::arrow::util::display::array_value_to_string(array, row)
                .unwrap_or_default();
            out.push_str(&text);
        }
    }
}

pub use crate::spec::float_text::push_float;
use crate::spec::float_text::{write_f32, write_f64};

fn push(out: &mut String, v: impl std::fmt::Display) {
    let _ = write!(out, "{v}");
}

fn binary<O: OffsetSizeTrait>(a: &GenericBinaryArray<O>, row: usize) -> &[u8] {
    a.value(row)
}

/// An integer's digits with the decimal point `scale` places from the right.
fn write_decimal(out: &mut String, digits: &str, scale: i8) {
    let (negative, digits) = match digits.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, digits),
    };
    if negative {
        out.push('-');
    }
    if scale < 0 {
        // A negative scale (`1e20` as DECIMAL(1,-20)): the digits, then zeros.
        out.push_str(digits);
        out.push_str(&"0".repeat(usize::from(scale.unsigned_abs())));
        return;
    }
    let scale = usize::try_from(scale).unwrap_or(0);
    if scale == 0 {
        out.push_str(digits);
        return;
    }
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits.to_string()
    };
    let (int_part, frac) = padded.split_at(padded.len() - scale);
    out.push_str(int_part);
    out.push('.');
    out.push_str(frac);
}

fn write_blob(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if (32..=126).contains(&b) && b != b'\\' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
}

fn write_uuid(out: &mut String, bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{b:02x}");
    }
}

/// Days since 1970-01-01 as `YYYY-MM-DD`, `infinity`, or `YYYY-MM-DD (BC)`.
fn write_date(out: &mut String, days: i64) {
    if days == i64::from(i32::MAX) {
        out.push_str("infinity");
        return;
    }
    if days == -i64::from(i32::MAX) {
        out.push_str("-infinity");
        return;
    }
    let (y, m, d) = civil_from_days(days);
    if y <= 0 {
        let _ = write!(out, "{:04}-{m:02}-{d:02} (BC)", 1 - y);
    } else {
        let _ = write!(out, "{y:04}-{m:02}-{d:02}");
    }
}

/// Howard Hinnant's `civil_from_days`: proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// `HH:MM:SS` plus the fraction without trailing zeros, from nanoseconds of the day.
fn write_clock(out: &mut String, nanos: i64) {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

fn write_time(out: &mut String, nanos: i64) {
    write_clock(out, nanos);
}

fn write_timestamp(out: &mut String, v: i64, per_second: i64, tz: bool) {
    if v == i64::MAX {
        out.push_str("infinity");
        return;
    }
    if v == -i64::MAX || v == i64::MIN {
        out.push_str("-infinity");
        return;
    }
    let seconds = v.div_euclid(per_second);
    let sub = i128::from(v.rem_euclid(per_second));
    let nanos_of_second = i64::try_from(sub * 1_000_000_000 / i128::from(per_second)).unwrap_or(0);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let year = if y <= 0 { 1 - y } else { y };
    let _ = write!(out, "{year:04}-{m:02}-{d:02} ");
    write_clock(out, second_of_day * 1_000_000_000 + nanos_of_second);
    if y <= 0 {
        out.push_str(" (BC)");
    }
    if tz {
        out.push_str("+00");
    }
}

/// DuckDB's interval text: `1 year 2 months 3 days 04:05:06.5`, `00:00:00` when zero.
fn write_interval(out: &mut String, months: i64, days: i64, nanos: i64) {
    let mut parts: Vec<String> = Vec::new();
    let years = months / 12;
    let months = months % 12;
    let unit =
        |n: i64, one: &str, many: &str| format!("{n} {}", if n.abs() == 1 { one } else { many });
    if years != 0 {
        parts.push(unit(years, "year", "years"));
    }
    if months != 0 {
        parts.push(unit(months, "month", "months"));
    }
    if days != 0 {
        parts.push(unit(days, "day", "days"));
    }
    if nanos != 0 || parts.is_empty() {
        let mut clock = String::new();
        if nanos < 0 {
            clock.push('-');
        }
        let abs = nanos.unsigned_abs();
        let secs = abs / 1_000_000_000;
        let frac = abs % 1_000_000_000;
        let _ = write!(
            clock,
            "{:02}:{:02}:{:02}",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        );
        if frac != 0 {
            let digits = format!("{frac:09}");
            // DuckDB keeps microseconds: six digits, trailing zeros trimmed.
            let micros = digits.get(..6).unwrap_or(&digits).trim_end_matches('0');
            if !micros.is_empty() {
                clock.push('.');
                clock.push_str(micros);
            }
        }
        parts.push(clock);
    }
    out.push_str(&parts.join(" "));
}

fn write_items(out: &mut String, values: &ArrayRef) {
    out.push('[');
    for i in 0..values.len() {
        if i > 0 {
            out.push_str(", ");
        }
        write_nested_item(out, values.as_ref(), i);
    }
    out.push(']');
}

fn write_list<O: OffsetSizeTrait>(out: &mut String, list: &GenericListArray<O>, row: usize) {
    write_items(out, &list.value(row));
}

fn write_struct(out: &mut String, array: &StructArray, row: usize) {
    out.push('{');
    for (i, (field, column)) in array.fields().iter().zip(array.columns()).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_quoted_if_needed(out, field.name(), true);
        out.push_str(": ");
        write_nested_item(out, column.as_ref(), row);
    }
    out.push('}');
}

fn write_map(out: &mut String, map: &MapArray, row: usize) {
    let entries = map.value(row);
    out.push('{');
    let keys = entries.column(0);
    let values = entries.column(1);
    for i in 0..entries.len() {
        if i > 0 {
            out.push_str(", ");
        }
        write_nested_item(out, keys.as_ref(), i);
        out.push('=');
        write_nested_item(out, values.as_ref(), i);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        BinaryArray, Decimal128Array, FixedSizeBinaryArray, Float32Array, Float64Array, Int32Array,
        IntervalMonthDayNanoArray, ListArray, StringArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Fields, Int32Type, IntervalMonthDayNano};

    use super::*;

    fn text(array: &dyn Array, row: usize) -> String {
        value_text(array, row).unwrap_or_else(|| "NULL".into())
    }

    #[test]
    fn doubles_print_like_duckdb() {
        let cases = [
            (1.0, "1.0"),
            (1e20, "1e+20"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (-0.0, "-0.0"),
            (1.5e300, "1.5e+300"),
            (1234567.0, "1234567.0"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        let array = Float64Array::from(cases.iter().map(|c| c.0).collect::<Vec<_>>());
        for (i, (_, want)) in cases.iter().enumerate() {
            assert_eq!(text(&array, i), *want);
        }
        let floats = Float32Array::from(vec![0.1f32, 3.25159, 123456789.0, 1e16]);
        let want = ["0.1", "3.25159", "123456790.0", "1e+16"];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(text(&floats, i), *w);
        }
    }

    #[test]
    fn scalars_print_like_duckdb() {
        let dec = Decimal128Array::from(vec![1000, -5, 7])
            .with_precision_and_scale(10, 3)
            .expect("decimal");
        assert_eq!(text(&dec, 0), "1.000");
        assert_eq!(text(&dec, 1), "-0.005");
        let blob = BinaryArray::from(vec![&b"\x00\x01"[..], b"a\n\\"]);
        assert_eq!(text(&blob, 0), "\\x00\\x01");
        assert_eq!(text(&blob, 1), "a\\x0A\\x5C");
        let uuid =
            FixedSizeBinaryArray::try_from_iter(vec![[0xffu8; 16]].into_iter()).expect("uuid");
        assert_eq!(text(&uuid, 0), "ffffffff-ffff-ffff-ffff-ffffffffffff");
        let ts = TimestampMicrosecondArray::from(vec![1_577_840_523_120_000, 0, i64::MAX]);
        assert_eq!(text(&ts, 0), "2020-01-01 01:02:03.12");
        assert_eq!(text(&ts, 1), "1970-01-01 00:00:00");
        assert_eq!(text(&ts, 2), "infinity");
        let tstz = ts.clone().with_timezone("UTC");
        assert_eq!(text(&tstz, 1), "1970-01-01 00:00:00+00");
        let iv = IntervalMonthDayNanoArray::from(vec![
            IntervalMonthDayNano::new(14, 1, 0),
            IntervalMonthDayNano::new(0, -1, -3 * 3_600_000_000_000),
            IntervalMonthDayNano::new(0, 0, 0),
            IntervalMonthDayNano::new(0, 0, 1_000),
        ]);
        assert_eq!(text(&iv, 0), "1 year 2 months 1 day");
        assert_eq!(text(&iv, 1), "-1 day -03:00:00");
        assert_eq!(text(&iv, 2), "00:00:00");
        assert_eq!(text(&iv, 3), "00:00:00.000001");
        let d = datafusion::arrow::array::Date32Array::from(vec![-731_318]);
        assert_eq!(text(&d, 0), "0034-09-21 (BC)");
    }

    #[test]
    fn nested_values_print_like_duckdb() {
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![
            Some(0),
            Some(1),
            None,
        ])]);
        assert_eq!(text(&list, 0), "[0, 1, NULL]");
        let strings = StringArray::from(vec![Some("a"), Some("b c"), Some(""), Some("it's")]);
        let offsets = datafusion::arrow::buffer::OffsetBuffer::from_lengths([4]);
        let list = ListArray::new(
            Arc::new(Field::new("item", DataType::Utf8, true)),
            offsets,
            Arc::new(strings),
            None,
        );
        assert_eq!(text(&list, 0), "[a, b c, '', 'it\\'s']");
        let s = StructArray::new(
            Fields::from(vec![
                Field::new("a", DataType::Int32, true),
                Field::new("b", DataType::Utf8, true),
            ]),
            vec![
                Arc::new(Int32Array::from(vec![None::<i32>])),
                Arc::new(StringArray::from(vec![None::<&str>])),
            ],
            None,
        );
        assert_eq!(text(&s, 0), "{'a': NULL, 'b': NULL}");
    }
}
