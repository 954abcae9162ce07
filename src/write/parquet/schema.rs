//! The Arrow → Parquet schema mapping: every field's write type (what
//! parquet-rs is given), its Parquet type with DuckDB's physical and logical
//! types and the DuckLake column id as field id, and the leaf columns in
//! Parquet column order.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, IntervalUnit, TimeUnit};
use datafusion::parquet::basic::{
    ConvertedType, LogicalType, Repetition, TimeUnit as ParquetTimeUnit, Type as PhysicalType,
};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::schema::types::{Type as ParquetType, TypePtr};

use crate::catalog::FIELD_ID_KEY;

/// One leaf column of the Parquet schema, in schema (pre-)order.
#[derive(Debug)]
pub(super) struct Leaf {
    /// DuckLake column id (= Parquet field id).
    pub(super) column_id: i64,
    /// The Arrow type handed to the Parquet writer.
    pub(super) write_type: DataType,
    /// Whether the leaf is a float (gets `contains_nan`).
    pub(super) is_float: bool,
}

/// A field of the table schema mapped for writing.
pub(super) struct PlannedField {
    /// The Arrow field handed to the Parquet writer.
    pub(super) arrow: Field,
    /// Its Parquet type.
    pub(super) parquet: TypePtr,
    /// Whether arrays of this field must go through [`to_write_array`].
    pub(super) convert: bool,
}

/// The DuckLake column id of an Arrow field, from its `PARQUET:field_id` metadata.
fn field_id(field: &Field) -> Option<i32> {
    field.metadata().get(FIELD_ID_KEY)?.parse().ok()
}

fn parquet_err(e: ParquetError) -> String {
    e.to_string()
}

/// Map one field (recursively) to its write type and Parquet type; leaves are
/// appended to `leaves` in Parquet column order.
pub(super) fn plan_field(field: &Field, leaves: &mut Vec<Leaf>) -> Result<PlannedField, String> {
    let name = field.name().as_str();
    let id = field_id(field)
        .ok_or_else(|| format!("column '{name}' has no field id ({FIELD_ID_KEY} metadata)"))?;
    let repetition = if field.is_nullable() {
        Repetition::OPTIONAL
    } else {
        Repetition::REQUIRED
    };
    match field.data_type() {
        DataType::List(child) => {
            let element = plan_field(child, leaves)?;
            let repeated = ParquetType::group_type_builder("list")
                .with_repetition(Repetition::REPEATED)
                .with_fields(vec![element.parquet])
                .build()
                .map_err(parquet_err)?;
            let parquet = ParquetType::group_type_builder(name)
                .with_repetition(repetition)
                .with_logical_type(Some(LogicalType::List))
                .with_id(Some(id))
                .with_fields(vec![Arc::new(repeated)])
                .build()
                .map_err(parquet_err)?;
            Ok(PlannedField {
                arrow: field
                    .clone()
                    .with_data_type(DataType::List(Arc::new(element.arrow))),
                parquet: Arc::new(parquet),
                convert: element.convert,
            })
        }
        DataType::Struct(children) => {
            if children.is_empty() {
                return Err(format!("struct column '{name}' has no fields"));
            }
            let planned = children
                .iter()
                .map(|c| plan_field(c, leaves))
                .collect::<Result<Vec<_>, String>>()?;
            let convert = planned.iter().any(|p| p.convert);
            let parquet = ParquetType::group_type_builder(name)
                .with_repetition(repetition)
                .with_id(Some(id))
                .with_fields(planned.iter().map(|p| Arc::clone(&p.parquet)).collect())
                .build()
                .map_err(parquet_err)?;
            let fields: Fields = planned.into_iter().map(|p| p.arrow).collect();
            Ok(PlannedField {
                arrow: field.clone().with_data_type(DataType::Struct(fields)),
                parquet: Arc::new(parquet),
                convert,
            })
        }
        DataType::Map(entries, sorted) => {
            let DataType::Struct(key_value) = entries.data_type() else {
                return Err(format!("map column '{name}' has no key/value struct"));
            };
            let [key, value] = key_value.iter().collect::<Vec<_>>()[..] else {
                return Err(format!(
                    "map column '{name}' has {} entry fields, expected key and value",
                    key_value.len()
                ));
            };
            if key.is_nullable() {
                return Err(format!(
                    "the key of map column '{name}' must not be nullable"
                ));
            }
            let key = plan_field(key, leaves)?;
            let value = plan_field(value, leaves)?;
            let convert = key.convert || value.convert;
            let repeated = ParquetType::group_type_builder("key_value")
                .with_repetition(Repetition::REPEATED)
                .with_fields(vec![Arc::clone(&key.parquet), Arc::clone(&value.parquet)])
                .build()
                .map_err(parquet_err)?;
            let parquet = ParquetType::group_type_builder(name)
                .with_repetition(repetition)
                .with_logical_type(Some(LogicalType::Map))
                .with_id(Some(id))
                .with_fields(vec![Arc::new(repeated)])
                .build()
                .map_err(parquet_err)?;
            let entries = entries
                .as_ref()
                .clone()
                .with_data_type(DataType::Struct(Fields::from(vec![key.arrow, value.arrow])));
            Ok(PlannedField {
                arrow: field
                    .clone()
                    .with_data_type(DataType::Map(Arc::new(entries), *sorted)),
                parquet: Arc::new(parquet),
                convert,
            })
        }
        data_type => {
            let (write_type, parquet, convert) = plan_leaf(name, id, repetition, data_type)?;
            leaves.push(Leaf {
                column_id: i64::from(id),
                is_float: matches!(write_type, DataType::Float32 | DataType::Float64),
                write_type: write_type.clone(),
            });
            Ok(PlannedField {
                arrow: field.clone().with_data_type(write_type),
                parquet: Arc::new(parquet),
                convert,
            })
        }
    }
}

/// Byte length of a FIXED_LEN_BYTE_ARRAY decimal of `precision` digits (the same
/// formula parquet-rs uses when it writes the values: 16 bytes for 38 digits).
pub(super) fn decimal_length(precision: u8) -> i32 {
    // (log2(10^p + 1) + 1) / 8, rounded up; at most 16 for p <= 38.
    let bits = (10f64.powi(i32::from(precision)) + 1.0).log2() + 1.0;
    // Small positive value: the cast cannot truncate.
    (bits / 8.0).ceil() as i32
}

/// The write type, Parquet type and conversion flag of a leaf.
fn plan_leaf(
    name: &str,
    id: i32,
    repetition: Repetition,
    data_type: &DataType,
) -> Result<(DataType, ParquetType, bool), String> {
    let primitive = |physical| {
        ParquetType::primitive_type_builder(name, physical)
            .with_repetition(repetition)
            .with_id(Some(id))
    };
    let integer = |physical, bits, signed| {
        primitive(physical).with_logical_type(Some(LogicalType::integer(bits, signed)))
    };
    let timestamp = |unit, tz: &Option<Arc<str>>| {
        primitive(PhysicalType::INT64)
            .with_logical_type(Some(LogicalType::timestamp(tz.is_some(), unit)))
    };
    let (write_type, builder, convert) = match data_type {
        DataType::Boolean => (data_type.clone(), primitive(PhysicalType::BOOLEAN), false),
        DataType::Int8 => (
            data_type.clone(),
            integer(PhysicalType::INT32, 8, true),
            false,
        ),
        DataType::Int16 => (
            data_type.clone(),
            integer(PhysicalType::INT32, 16, true),
            false,
        ),
        DataType::Int32 => (
            data_type.clone(),
            integer(PhysicalType::INT32, 32, true),
            false,
        ),
        DataType::Int64 => (
            data_type.clone(),
            integer(PhysicalType::INT64, 64, true),
            false,
        ),
        DataType::UInt8 => (
            data_type.clone(),
            integer(PhysicalType::INT32, 8, false),
            false,
        ),
        DataType::UInt16 => (
            data_type.clone(),
            integer(PhysicalType::INT32, 16, false),
            false,
        ),
        DataType::UInt32 => (
            data_type.clone(),
            integer(PhysicalType::INT32, 32, false),
            false,
        ),
        DataType::UInt64 => (
            data_type.clone(),
            integer(PhysicalType::INT64, 64, false),
            false,
        ),
        DataType::Float32 => (data_type.clone(), primitive(PhysicalType::FLOAT), false),
        DataType::Float64 => (data_type.clone(), primitive(PhysicalType::DOUBLE), false),
        DataType::Decimal128(precision, scale) => {
            if !(1..=38).contains(precision) || *scale < 0 || scale.unsigned_abs() > *precision {
                return Err(format!(
                    "column '{name}': decimal({precision},{scale}) cannot be written"
                ));
            }
            let builder = if *precision <= 9 {
                primitive(PhysicalType::INT32)
            } else if *precision <= 18 {
                primitive(PhysicalType::INT64)
            } else {
                primitive(PhysicalType::FIXED_LEN_BYTE_ARRAY)
                    .with_length(decimal_length(*precision))
            };
            let builder = builder
                .with_logical_type(Some(LogicalType::decimal(
                    i32::from(*scale),
                    i32::from(*precision),
                )))
                .with_precision(i32::from(*precision))
                .with_scale(i32::from(*scale));
            // Values are validated against the precision before parquet-rs
            // narrows them to the physical width.
            (data_type.clone(), builder, true)
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => (
            data_type.clone(),
            primitive(PhysicalType::BYTE_ARRAY).with_logical_type(Some(LogicalType::String)),
            false,
        ),
        DataType::Dictionary(key, value)
            if key.as_ref() == &DataType::Int32 && value.as_ref() == &DataType::Utf8 =>
        {
            (
                data_type.clone(),
                primitive(PhysicalType::BYTE_ARRAY).with_logical_type(Some(LogicalType::String)),
                false,
            )
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => (
            data_type.clone(),
            primitive(PhysicalType::BYTE_ARRAY),
            false,
        ),
        DataType::FixedSizeBinary(16) => (
            data_type.clone(),
            primitive(PhysicalType::FIXED_LEN_BYTE_ARRAY)
                .with_length(16)
                .with_logical_type(Some(LogicalType::Uuid)),
            false,
        ),
        DataType::Date32 => (
            data_type.clone(),
            primitive(PhysicalType::INT32).with_logical_type(Some(LogicalType::Date)),
            false,
        ),
        DataType::Time64(TimeUnit::Microsecond) => (
            data_type.clone(),
            primitive(PhysicalType::INT64)
                .with_logical_type(Some(LogicalType::time(false, ParquetTimeUnit::MICROS))),
            false,
        ),
        // DuckDB writes TIME_NS as text (it reads Parquet TIME(NANOS) back as
        // microseconds, which would lose digits).
        DataType::Time64(TimeUnit::Nanosecond) => (
            DataType::Utf8,
            primitive(PhysicalType::BYTE_ARRAY).with_logical_type(Some(LogicalType::String)),
            true,
        ),
        DataType::Timestamp(TimeUnit::Second, tz) => (
            DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
            timestamp(ParquetTimeUnit::MICROS, tz),
            true,
        ),
        DataType::Timestamp(unit, tz) => {
            let parquet_unit = match unit {
                TimeUnit::Millisecond => ParquetTimeUnit::MILLIS,
                TimeUnit::Nanosecond => ParquetTimeUnit::NANOS,
                _ => ParquetTimeUnit::MICROS,
            };
            (data_type.clone(), timestamp(parquet_unit, tz), false)
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => (
            DataType::FixedSizeBinary(12),
            primitive(PhysicalType::FIXED_LEN_BYTE_ARRAY)
                .with_length(12)
                .with_converted_type(ConvertedType::INTERVAL),
            true,
        ),
        other => {
            return Err(format!(
                "column '{name}': Arrow type {other} cannot be written to a DuckLake data file"
            ));
        }
    };
    let parquet = builder.build().map_err(parquet_err)?;
    Ok((write_type, parquet, convert))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_lengths_match_parquet_rs() {
        assert_eq!(decimal_length(19), 9);
        assert_eq!(decimal_length(38), 16);
    }
}
