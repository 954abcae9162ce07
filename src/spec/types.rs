//! DuckLake column type names (`ducklake_column.column_type`) and their Arrow form.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, IntervalUnit, TimeUnit};

use crate::error::Error;

/// A DuckLake type name, as stored in `ducklake_column.column_type`.
///
/// Container types (`list`, `struct`, `map`) carry no children here: the children
/// are separate `ducklake_column` rows linked by `parent_column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DuckLakeType {
    /// `boolean`
    Boolean,
    /// `int8`
    Int8,
    /// `int16`
    Int16,
    /// `int32`
    Int32,
    /// `int64`
    Int64,
    /// `int128` (stored as DOUBLE in DuckDB's Parquet files)
    Int128,
    /// `uint8`
    UInt8,
    /// `uint16`
    UInt16,
    /// `uint32`
    UInt32,
    /// `uint64`
    UInt64,
    /// `uint128` (stored as DOUBLE in DuckDB's Parquet files)
    UInt128,
    /// `float32`
    Float32,
    /// `float64`
    Float64,
    /// `decimal(p,s)`
    Decimal {
        /// Precision, 1..=38.
        precision: u8,
        /// Scale.
        scale: i8,
    },
    /// `time`
    Time,
    /// `time_ns`
    TimeNs,
    /// `timetz`
    TimeTz,
    /// `date`
    Date,
    /// `timestamp` (`timestamp_us` on read)
    Timestamp,
    /// `timestamp_s`
    TimestampS,
    /// `timestamp_ms`
    TimestampMs,
    /// `timestamp_ns`
    TimestampNs,
    /// `timestamptz`
    TimestampTz,
    /// `interval`
    Interval,
    /// `varchar`
    Varchar,
    /// `json`
    Json,
    /// `blob`
    Blob,
    /// `uuid`
    Uuid,
    /// `list`
    List,
    /// `struct`
    Struct,
    /// `map`
    Map,
    /// `variant` (not readable by lakeq yet)
    Variant,
    /// `geometry` (not readable by lakeq yet)
    Geometry,
}

impl FromStr for DuckLakeType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let lower = s.trim().to_ascii_lowercase();
        let t = match lower.as_str() {
            "boolean" | "bool" => Self::Boolean,
            "int8" | "tinyint" => Self::Int8,
            "int16" | "smallint" => Self::Int16,
            "int32" | "integer" | "int" => Self::Int32,
            "int64" | "bigint" => Self::Int64,
            "int128" | "hugeint" => Self::Int128,
            "uint8" | "utinyint" => Self::UInt8,
            "uint16" | "usmallint" => Self::UInt16,
            "uint32" | "uinteger" => Self::UInt32,
            "uint64" | "ubigint" => Self::UInt64,
            "uint128" | "uhugeint" => Self::UInt128,
            "float32" | "float" | "real" => Self::Float32,
            "float64" | "double" => Self::Float64,
            "time" => Self::Time,
            "time_ns" => Self::TimeNs,
            "timetz" => Self::TimeTz,
            "date" => Self::Date,
            "timestamp" | "timestamp_us" => Self::Timestamp,
            "timestamp_s" => Self::TimestampS,
            "timestamp_ms" => Self::TimestampMs,
            "timestamp_ns" => Self::TimestampNs,
            "timestamptz" => Self::TimestampTz,
            "interval" => Self::Interval,
            "varchar" | "text" | "string" => Self::Varchar,
            "json" => Self::Json,
            "blob" | "bytea" => Self::Blob,
            "uuid" => Self::Uuid,
            "list" => Self::List,
            "struct" => Self::Struct,
            "map" => Self::Map,
            "variant" => Self::Variant,
            "geometry" => Self::Geometry,
            "decimal" | "numeric" => Self::Decimal {
                precision: 18,
                scale: 3,
            },
            other => {
                if let Some(args) = other
                    .strip_prefix("decimal(")
                    .or_else(|| other.strip_prefix("numeric("))
                    .and_then(|r| r.strip_suffix(')'))
                {
                    let mut parts = args.split(',').map(str::trim);
                    let precision = parts.next().and_then(|p| p.parse::<u8>().ok());
                    let scale = parts.next().map_or(Some(0), |p| p.parse::<i8>().ok());
                    match (precision, scale) {
                        (Some(precision), Some(scale)) if (1..=38).contains(&precision) => {
                            Self::Decimal { precision, scale }
                        }
                        _ => return Err(Error::Corrupt(format!("invalid decimal type '{s}'"))),
                    }
                } else {
                    return Err(Error::Unsupported(format!("DuckLake column type '{s}'")));
                }
            }
        };
        Ok(t)
    }
}

impl fmt::Display for DuckLakeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Boolean => "boolean",
            Self::Int8 => "int8",
            Self::Int16 => "int16",
            Self::Int32 => "int32",
            Self::Int64 => "int64",
            Self::Int128 => "int128",
            Self::UInt8 => "uint8",
            Self::UInt16 => "uint16",
            Self::UInt32 => "uint32",
            Self::UInt64 => "uint64",
            Self::UInt128 => "uint128",
            Self::Float32 => "float32",
            Self::Float64 => "float64",
            Self::Decimal { precision, scale } => return write!(f, "decimal({precision},{scale})"),
            Self::Time => "time",
            Self::TimeNs => "time_ns",
            Self::TimeTz => "timetz",
            Self::Date => "date",
            Self::Timestamp => "timestamp",
            Self::TimestampS => "timestamp_s",
            Self::TimestampMs => "timestamp_ms",
            Self::TimestampNs => "timestamp_ns",
            Self::TimestampTz => "timestamptz",
            Self::Interval => "interval",
            Self::Varchar => "varchar",
            Self::Json => "json",
            Self::Blob => "blob",
            Self::Uuid => "uuid",
            Self::List => "list",
            Self::Struct => "struct",
            Self::Map => "map",
            Self::Variant => "variant",
            Self::Geometry => "geometry",
        };
        f.write_str(s)
    }
}

/// The Arrow time zone lakeq uses for `timestamptz` values (always UTC instants).
pub const UTC: &str = "UTC";

impl DuckLakeType {
    /// The Arrow type of a primitive DuckLake type; containers are built by
    /// [`DuckLakeType::to_arrow_nested`].
    pub fn to_arrow(&self) -> Result<DataType, Error> {
        Ok(match self {
            Self::Boolean => DataType::Boolean,
            Self::Int8 => DataType::Int8,
            Self::Int16 => DataType::Int16,
            Self::Int32 => DataType::Int32,
            Self::Int64 => DataType::Int64,
            // DuckDB stores (u)int128 as DOUBLE in Parquet; a 38-digit decimal holds
            // every value that survives that round trip exactly.
            Self::Int128 | Self::UInt128 => DataType::Decimal128(38, 0),
            Self::UInt8 => DataType::UInt8,
            Self::UInt16 => DataType::UInt16,
            Self::UInt32 => DataType::UInt32,
            Self::UInt64 => DataType::UInt64,
            Self::Float32 => DataType::Float32,
            Self::Float64 => DataType::Float64,
            Self::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            Self::Time | Self::TimeTz => DataType::Time64(TimeUnit::Microsecond),
            Self::TimeNs => DataType::Time64(TimeUnit::Nanosecond),
            Self::Date => DataType::Date32,
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Self::TimestampS => DataType::Timestamp(TimeUnit::Second, None),
            Self::TimestampMs => DataType::Timestamp(TimeUnit::Millisecond, None),
            Self::TimestampNs => DataType::Timestamp(TimeUnit::Nanosecond, None),
            Self::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(UTC))),
            Self::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            Self::Varchar | Self::Json => DataType::Utf8,
            Self::Blob => DataType::Binary,
            Self::Uuid => DataType::FixedSizeBinary(16),
            Self::List | Self::Struct | Self::Map => {
                return Err(Error::Corrupt(format!(
                    "container type '{self}' needs its child columns"
                )));
            }
            Self::Variant | Self::Geometry => {
                return Err(Error::Unsupported(format!(
                    "reading DuckLake type '{self}'"
                )));
            }
        })
    }

    /// The Arrow type of this column given its children's Arrow fields
    /// (in `column_order`): `element` for lists, `key`/`value` for maps.
    pub fn to_arrow_nested(&self, children: Vec<Field>) -> Result<DataType, Error> {
        match self {
            Self::List => {
                let [element]: [Field; 1] = children.try_into().map_err(|c: Vec<Field>| {
                    Error::Corrupt(format!("list column has {} children, expected 1", c.len()))
                })?;
                Ok(DataType::List(Arc::new(element)))
            }
            Self::Struct => {
                if children.is_empty() {
                    return Err(Error::Corrupt("struct column has no fields".into()));
                }
                Ok(DataType::Struct(Fields::from(children)))
            }
            Self::Map => {
                let [key, value]: [Field; 2] = children.try_into().map_err(|c: Vec<Field>| {
                    Error::Corrupt(format!("map column has {} children, expected 2", c.len()))
                })?;
                let entries = Field::new(
                    "key_value",
                    DataType::Struct(Fields::from(vec![key.with_nullable(false), value])),
                    false,
                );
                Ok(DataType::Map(Arc::new(entries), false))
            }
            other => other.to_arrow(),
        }
    }

    /// True for `list`, `struct` and `map`.
    pub fn is_nested(&self) -> bool {
        matches!(self, Self::List | Self::Struct | Self::Map)
    }

    /// The DuckLake type for an Arrow type (used when lakeq creates tables).
    pub fn from_arrow(dt: &DataType) -> Result<Self, Error> {
        Ok(match dt {
            DataType::Boolean => Self::Boolean,
            DataType::Int8 => Self::Int8,
            DataType::Int16 => Self::Int16,
            DataType::Int32 => Self::Int32,
            DataType::Int64 => Self::Int64,
            DataType::UInt8 => Self::UInt8,
            DataType::UInt16 => Self::UInt16,
            DataType::UInt32 => Self::UInt32,
            DataType::UInt64 => Self::UInt64,
            DataType::Float16 | DataType::Float32 => Self::Float32,
            DataType::Float64 => Self::Float64,
            DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s)
                if *p <= 38 =>
            {
                Self::Decimal {
                    precision: *p,
                    scale: *s,
                }
            }
            // DataFusion's SQL `TIME` and `TIMESTAMP` are nanoseconds; DuckDB's (and what a
            // DuckLake's users expect) are microseconds, so new columns get `time`/`timestamp`.
            DataType::Time32(_) | DataType::Time64(_) => Self::Time,
            DataType::Date32 | DataType::Date64 => Self::Date,
            DataType::Timestamp(_, Some(_)) => Self::TimestampTz,
            DataType::Timestamp(TimeUnit::Second, None) => Self::TimestampS,
            DataType::Timestamp(TimeUnit::Millisecond, None) => Self::TimestampMs,
            DataType::Timestamp(TimeUnit::Microsecond, None) => Self::Timestamp,
            DataType::Timestamp(TimeUnit::Nanosecond, None) => Self::Timestamp,
            DataType::Interval(_) => Self::Interval,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Self::Varchar,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Self::Blob,
            DataType::FixedSizeBinary(16) => Self::Uuid,
            DataType::List(_) | DataType::LargeList(_) | DataType::ListView(_) => Self::List,
            DataType::Struct(_) => Self::Struct,
            DataType::Map(_, _) => Self::Map,
            DataType::Null => Self::Int32,
            other => {
                return Err(Error::Unsupported(format!(
                    "Arrow type {other} has no DuckLake equivalent"
                )));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_name() {
        for name in [
            "boolean",
            "int8",
            "int16",
            "int32",
            "int64",
            "int128",
            "uint8",
            "uint16",
            "uint32",
            "uint64",
            "uint128",
            "float32",
            "float64",
            "decimal(18,3)",
            "time",
            "time_ns",
            "timetz",
            "date",
            "timestamp",
            "timestamp_s",
            "timestamp_ms",
            "timestamp_ns",
            "timestamptz",
            "interval",
            "varchar",
            "json",
            "blob",
            "uuid",
            "list",
            "struct",
            "map",
        ] {
            let t: DuckLakeType = name.parse().expect(name);
            assert_eq!(t.to_string(), name);
        }
        assert_eq!(
            "NUMERIC".parse::<DuckLakeType>().ok(),
            Some(DuckLakeType::Decimal {
                precision: 18,
                scale: 3
            })
        );
        assert!("enum".parse::<DuckLakeType>().is_err());
    }
}
