//! Arrays of the table's types converted to the write types the schema mapping
//! chose (see `schema::plan_leaf`): `timestamp_s` to microseconds, `time_ns` to
//! DuckDB's text, intervals to Parquet's 12-byte form, decimals checked against
//! their precision, nested arrays rebuilt around converted children.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeBinaryArray, ListArray, MapArray, StringArray,
    StringBuilder, StructArray,
};
use datafusion::arrow::buffer::Buffer;
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Fields, IntervalMonthDayNanoType, IntervalUnit, Time64NanosecondType,
    TimeUnit, TimestampSecondType,
};

const MICROS_PER_SECOND: i64 = 1_000_000;
const NANOS_PER_MILLI: i64 = 1_000_000;

/// Convert an array of the table type to `write_type` (see [`plan_leaf`]).
pub(super) fn to_write_array(array: &ArrayRef, write_type: &DataType) -> Result<ArrayRef, String> {
    match (array.data_type(), write_type) {
        (DataType::Timestamp(TimeUnit::Second, _), DataType::Timestamp(_, tz)) => {
            let seconds = array.as_primitive::<TimestampSecondType>();
            // DuckDB's ±infinity (±i64::MAX) stays infinity in microseconds.
            let micros = seconds
                .try_unary::<_, datafusion::arrow::datatypes::TimestampMicrosecondType, String>(
                    |v| match v {
                        i64::MAX => Ok(i64::MAX),
                        v if v == -i64::MAX => Ok(-i64::MAX),
                        v => v
                            .checked_mul(MICROS_PER_SECOND)
                            .ok_or_else(|| format!("timestamp of {v} seconds is out of range")),
                    },
                )?
                .with_timezone_opt(tz.clone());
            Ok(Arc::new(micros))
        }
        (DataType::Time64(TimeUnit::Nanosecond), DataType::Utf8) => {
            time_ns_to_text(array).map(|a| Arc::new(a) as ArrayRef)
        }
        (DataType::Interval(IntervalUnit::MonthDayNano), DataType::FixedSizeBinary(12)) => {
            interval_to_parquet(array).map(|a| Arc::new(a) as ArrayRef)
        }
        (DataType::Decimal128(precision, _), _) => {
            array
                .as_primitive::<Decimal128Type>()
                .validate_decimal_precision(*precision)
                .map_err(|e| e.to_string())?;
            Ok(Arc::clone(array))
        }
        (DataType::List(_), DataType::List(field)) => {
            let list = array.as_list::<i32>();
            let values = to_write_array(list.values(), field.data_type())?;
            let list = ListArray::try_new(
                Arc::clone(field),
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )
            .map_err(|e| e.to_string())?;
            Ok(Arc::new(list))
        }
        (DataType::Struct(_), DataType::Struct(fields)) => {
            let struct_array = array.as_struct();
            Ok(Arc::new(convert_struct(struct_array, fields)?))
        }
        (DataType::Map(_, _), DataType::Map(entries_field, sorted)) => {
            let map = array.as_map();
            let DataType::Struct(fields) = entries_field.data_type() else {
                return Err("map entries are not a struct".into());
            };
            let entries = convert_struct(map.entries(), fields)?;
            let map = MapArray::try_new(
                Arc::clone(entries_field),
                map.offsets().clone(),
                entries,
                map.nulls().cloned(),
                *sorted,
            )
            .map_err(|e| e.to_string())?;
            Ok(Arc::new(map))
        }
        _ => Ok(Arc::clone(array)),
    }
}

fn convert_struct(array: &StructArray, fields: &Fields) -> Result<StructArray, String> {
    let columns = array
        .columns()
        .iter()
        .zip(fields.iter())
        .map(|(c, f)| to_write_array(c, f.data_type()))
        .collect::<Result<Vec<_>, String>>()?;
    StructArray::try_new(fields.clone(), columns, array.nulls().cloned()).map_err(|e| e.to_string())
}

/// DuckDB's text of `time_ns` values: `HH:MM:SS` plus the fraction without
/// trailing zeros (`12:30:00.5`); this text sorts like the times.
fn time_ns_to_text(array: &ArrayRef) -> Result<StringArray, String> {
    const NANOS_PER_SECOND: i64 = 1_000_000_000;
    let times = array.as_primitive::<Time64NanosecondType>();
    let mut out = StringBuilder::with_capacity(times.len(), times.len() * 18);
    for i in 0..times.len() {
        if times.is_null(i) {
            out.append_null();
            continue;
        }
        let nanos = times.value(i);
        if !(0..=24 * 3600 * NANOS_PER_SECOND).contains(&nanos) {
            return Err(format!("time of {nanos} ns is not a time of day"));
        }
        out.append_value(crate::spec::values::format_clock(nanos.unsigned_abs()));
    }
    Ok(out.finish())
}

/// DuckDB's Parquet interval: little-endian u32 months, days, milliseconds.
fn interval_to_parquet(array: &ArrayRef) -> Result<FixedSizeBinaryArray, String> {
    let intervals = array.as_primitive::<IntervalMonthDayNanoType>();
    let mut bytes = Vec::with_capacity(intervals.len() * 12);
    for i in 0..intervals.len() {
        let (months, days, millis) = if intervals.is_valid(i) {
            let v = intervals.value(i);
            if v.months < 0 || v.days < 0 || v.nanoseconds < 0 {
                return Err(
                    "Parquet files do not support negative intervals (like DuckDB)".to_string(),
                );
            }
            let millis = u32::try_from(v.nanoseconds / NANOS_PER_MILLI).map_err(|_| {
                format!(
                    "interval time part of {} ms does not fit Parquet's 32-bit milliseconds",
                    v.nanoseconds / NANOS_PER_MILLI
                )
            })?;
            (v.months.unsigned_abs(), v.days.unsigned_abs(), millis)
        } else {
            (0, 0, 0)
        };
        bytes.extend_from_slice(&months.to_le_bytes());
        bytes.extend_from_slice(&days.to_le_bytes());
        bytes.extend_from_slice(&millis.to_le_bytes());
    }
    FixedSizeBinaryArray::try_new(12, Buffer::from(bytes), intervals.nulls().cloned())
        .map_err(|e| e.to_string())
}
