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

mod nested;
mod numeric;
mod stats;
mod temporal;
mod text;

#[cfg(test)]
mod tests;

use nested::*;
use numeric::*;
pub use stats::parse_stat;
pub(crate) use temporal::format_clock;
use temporal::*;
use text::*;

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
