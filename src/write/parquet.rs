//! The Parquet writer behind [`DataFileWriter`] and [`write_delete_file`].
//!
//! # Physical encoding (SPEC §5.3)
//!
//! lakeq builds the Parquet schema itself (instead of parquet-rs' Arrow
//! conversion) so that it matches DuckDB's writer:
//!
//! | Arrow (lakeq) | Parquet |
//! |---|---|
//! | Int8/16/32/64, UInt8/16/32/64 | INT32/INT64 with INT(n, signed) (`INT_8` … `UINT_64`) |
//! | Float32 / Float64 | FLOAT / DOUBLE |
//! | Decimal128(p,s) | DECIMAL on INT32 (p ≤ 9), INT64 (p ≤ 18), else the smallest FIXED_LEN_BYTE_ARRAY (16 bytes for p = 38) |
//! | Decimal128(38,0) (`int128`/`uint128`) | DECIMAL(38,0) FIXED_LEN_BYTE_ARRAY(16) — lossless, where DuckDB writes a lossy DOUBLE; DuckDB casts it back to HUGEINT |
//! | Utf8 (`varchar`, `json`) | BYTE_ARRAY STRING (`UTF8`) |
//! | Binary | BYTE_ARRAY |
//! | FixedSizeBinary(16) (`uuid`) | FIXED_LEN_BYTE_ARRAY(16) UUID |
//! | Date32 | INT32 DATE |
//! | Time64(µs) (`time`, `timetz`) | INT64 TIME(MICROS, not UTC-adjusted) |
//! | Time64(ns) (`time_ns`) | BYTE_ARRAY STRING: DuckDB's text (`12:30:00.123456789`), like DuckDB, which reads TIME(NANOS) back as microseconds |
//! | Timestamp(ms / µs / ns, tz) | INT64 TIMESTAMP(unit, isAdjustedToUTC = has tz); no INT96 |
//! | Timestamp(s, tz) (`timestamp_s`) | converted to µs, INT64 TIMESTAMP(MICROS) like DuckDB |
//! | Interval(MonthDayNano) | FIXED_LEN_BYTE_ARRAY(12) INTERVAL (months, days, millis; sub-millisecond precision is dropped and negative parts are an error, like DuckDB) |
//! | List / Struct / Map | 3-level LIST (`list`/`element`), group, MAP (`key_value`/`key`/`value`) |
//!
//! Field ids come from the `PARQUET:field_id` metadata of every Arrow field
//! (missing ids are an error); the repeated `list` / `key_value` groups get none.
//! No key/value metadata is written.
//!
//! # Statistics
//!
//! Counts, sizes and bounds come from the column chunk statistics of the footer
//! parquet-rs just wrote (truncated only beyond 256 bytes), merged over row
//! groups: they describe exactly the values in the file, nested leaves included,
//! and cost no extra pass over the data. `value_count` is the chunk's value count
//! minus its null count, so nulls count like DuckDB counts them (a NULL struct is a
//! null in each of its leaves, a NULL or empty list one null in its element leaf).
//! Bounds are exact (DuckDB answers `min()`/`max()` from them, SPEC §13.6); a leaf
//! gets `None` when a row group has no exact bound, for blobs (DuckDB's hex
//! encoding does not round-trip through a cast) and intervals (no Parquet order),
//! for strings over 256 bytes or containing NUL, and when every value is null.
//! Float leaves are the exception: their chunks carry no Parquet statistics
//! (DuckDB 1.5.5 would trust a maximum that leaves NaN out), so counts, bounds
//! and `contains_nan` come from the Arrow arrays (only values the file actually
//! holds, i.e. under live parents; bounds leave NaN out).
//! Booleans are `0`/`1` and other values DuckDB's `CAST(x AS VARCHAR)` text
//! ([`format_duckdb_text`]); `-0.0` is written as `0.0`.
//!
//! # Default tuning (measured)
//!
//! 4 M rows (int64, float64, varchar with 50 000 distinct values, timestamp)
//! written to one file, then scanned in full (`sum`/`max` of every column) and
//! with a needle filter (`id BETWEEN x AND x + 1000`), best of 3, release build,
//! on the shared 2-core machine (load 3-5, so ±30% noise):
//!
//! | codec, row group | write | size | DataFusion full / needle | DuckDB full / needle |
//! |---|---|---|---|---|
//! | Snappy, 122880 rows | 2.0 s | 94 MiB | 0.18 s / 5 ms | 0.35 s / 4 ms |
//! | Snappy, 1 M rows | 1.0 s | 59 MiB | 0.16 s / 5 ms | 0.16 s / 11 ms |
//! | ZSTD(1), 122880 rows | 1.9 s | 58 MiB | 0.22 s / 4 ms | 0.50 s / 6 ms |
//! | ZSTD(1), 1 M rows | 1.1 s | 41 MiB | 0.2-0.34 s / 8 ms | 0.40 s / 41 ms |
//!
//! Small row groups repeat each column's dictionary per group (larger files, slower
//! writes and DuckDB full scans); their only gain is DuckDB's needle queries
//! (DuckDB prunes by row group only; DataFusion also uses the page index written
//! here). ZSTD(1) files are 30-40% smaller but decode slower. Hence the defaults
//! in [`WriteOptions::default`]: Snappy, 1 M-row groups.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::BooleanBufferBuilder;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, FixedSizeBinaryArray, Int64Array, ListArray,
    MapArray, RecordBatch, RecordBatchOptions, StringArray, StringBuilder, StructArray,
};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Field, Fields, Float32Type, Float64Type, Int32Type,
    IntervalMonthDayNanoType, IntervalUnit, Schema, SchemaRef, Time64NanosecondType, TimeUnit,
    TimestampSecondType,
};
use datafusion::parquet::arrow::arrow_writer::ArrowWriterOptions;
use datafusion::parquet::arrow::async_writer::AsyncFileWriter;
use datafusion::parquet::arrow::{ArrowWriter, AsyncArrowWriter};
use datafusion::parquet::basic::{
    ConvertedType, Encoding, LogicalType, Repetition, TimeUnit as ParquetTimeUnit,
    Type as PhysicalType,
};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use datafusion::parquet::file::statistics::Statistics;
use datafusion::parquet::schema::types::{
    ColumnPath, SchemaDescriptor, Type as ParquetType, TypePtr,
};
use datafusion::scalar::ScalarValue;
use futures::StreamExt;
use futures::future::BoxFuture;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use tokio::io::AsyncWriteExt;

use super::{ColumnStats, WriteOptions, WrittenFile};
use crate::catalog::FIELD_ID_KEY;
use crate::error::{Error, Result};
use crate::spec::paths::normalize_dir;
use crate::spec::values::format_duckdb_text;
use crate::spec::{
    DELETE_FILE_PATH_FIELD_ID, DELETE_POS_FIELD_ID, SNAPSHOT_ID_COLUMN, SNAPSHOT_ID_FIELD_ID,
};
use crate::storage::locate;

/// Rows handed to the Parquet writer at a time; the file size is checked after
/// each chunk, so files overshoot the target by at most one chunk.
const WRITE_CHUNK_ROWS: usize = 8192;
/// DuckDB's default rows per row group (`parquet_row_group_size`).
const DUCKDB_ROW_GROUP_ROWS: usize = 122_880;
/// Row groups are cut at this many bytes of encoded data whatever their row
/// count, which bounds the writer's memory for wide rows.
const MAX_ROW_GROUP_BYTES: usize = 128 * 1024 * 1024;
/// A string min/max longer than this is not recorded (the column gets no bounds):
/// DuckDB truncates its own string statistics to 256 bytes, but a truncated bound
/// is not exact, and long values would bloat the catalog.
const MAX_STAT_STRING_BYTES: usize = 256;
/// Field ids from here up belong to DuckLake's hidden columns
/// (`_ducklake_internal_snapshot_id`, `_ducklake_internal_row_id`, delete file
/// columns), which get no statistics rows.
const FIRST_HIDDEN_FIELD_ID: i64 = SNAPSHOT_ID_FIELD_ID as i64;
/// Root name of the Parquet schema (DuckDB's).
const SCHEMA_ROOT: &str = "duckdb_schema";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An [`Error::DataFile`] for `path`.
fn file_error(path: &str, source: impl Into<BoxError>) -> Error {
    Error::DataFile {
        path: path.to_string(),
        source: source.into(),
    }
}

// ---------------------------------------------------------------------------
// Write plan: the table schema mapped to what parquet-rs is given
// ---------------------------------------------------------------------------

/// One leaf column of the Parquet schema, in schema (pre-)order.
#[derive(Debug)]
struct Leaf {
    /// DuckLake column id (= Parquet field id).
    column_id: i64,
    /// The Arrow type handed to the Parquet writer.
    write_type: DataType,
    /// Whether the leaf is a float (gets `contains_nan`).
    is_float: bool,
}

/// A field of the table schema mapped for writing.
struct PlannedField {
    /// The Arrow field handed to the Parquet writer.
    arrow: Field,
    /// Its Parquet type.
    parquet: TypePtr,
    /// Whether arrays of this field must go through [`to_write_array`].
    convert: bool,
}

/// The table schema, what parquet-rs is given for it, and the Parquet leaves.
struct WritePlan {
    /// Schema of the input batches (with field ids).
    table_schema: SchemaRef,
    /// Schema handed to the Parquet writer (write types, same names and ids).
    write_schema: SchemaRef,
    /// The Parquet schema written to the files.
    parquet_schema: SchemaDescriptor,
    /// Per top-level column: whether it needs [`to_write_array`].
    convert: Vec<bool>,
    /// Leaf columns in Parquet column order.
    leaves: Vec<Leaf>,
    /// Whether any leaf is a float (else the NaN scan is skipped).
    has_float_leaf: bool,
}

impl WritePlan {
    fn new(table_schema: SchemaRef) -> Result<Self, String> {
        if let Some(g) = table_schema
            .fields()
            .iter()
            .find(|f| crate::catalog::is_geometry(f))
        {
            return Err(format!(
                "column '{}' is a GEOMETRY column; lakeq reads geometries (as WKT text) but \
                 does not write them yet: write this table with DuckDB",
                g.name()
            ));
        }
        let mut leaves = Vec::new();
        let planned = table_schema
            .fields()
            .iter()
            .map(|f| plan_field(f, &mut leaves))
            .collect::<Result<Vec<_>, String>>()?;
        if planned.is_empty() {
            return Err("a data file needs at least one column".into());
        }
        let root = ParquetType::group_type_builder(SCHEMA_ROOT)
            .with_fields(planned.iter().map(|p| Arc::clone(&p.parquet)).collect())
            .build()
            .map_err(|e| e.to_string())?;
        let convert = planned.iter().map(|p| p.convert).collect();
        let write_schema = Arc::new(Schema::new(
            planned.into_iter().map(|p| p.arrow).collect::<Vec<_>>(),
        ));
        Ok(Self {
            table_schema,
            write_schema,
            parquet_schema: SchemaDescriptor::new(Arc::new(root)),
            convert,
            has_float_leaf: leaves.iter().any(|l| l.is_float),
            leaves,
        })
    }

    /// Cast `batch` to the table schema (by position) and convert it to the write schema.
    fn prepare(&self, batch: &RecordBatch) -> Result<RecordBatch, String> {
        let fields = self.table_schema.fields();
        if batch.num_columns() != fields.len() {
            return Err(format!(
                "batch has {} columns, the table has {}",
                batch.num_columns(),
                fields.len()
            ));
        }
        let cast_options = CastOptions {
            safe: false,
            ..CastOptions::default()
        };
        let mut columns = Vec::with_capacity(fields.len());
        for ((array, field), (write_field, convert)) in batch
            .columns()
            .iter()
            .zip(fields.iter())
            .zip(self.write_schema.fields().iter().zip(&self.convert))
        {
            let array = if array.data_type() == field.data_type() {
                Arc::clone(array)
            } else {
                cast_with_options(array, field.data_type(), &cast_options).map_err(|e| {
                    format!(
                        "column '{}': cannot cast {} to {}: {e}",
                        field.name(),
                        array.data_type(),
                        field.data_type()
                    )
                })?
            };
            let array = if *convert {
                to_write_array(&array, write_field.data_type())
                    .map_err(|e| format!("column '{}': {e}", field.name()))?
            } else {
                array
            };
            columns.push(array);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        RecordBatch::try_new_with_options(Arc::clone(&self.write_schema), columns, &options)
            .map_err(|e| e.to_string())
    }

    /// Add the values of `batch`'s float leaves to `floats` (one entry per leaf).
    fn scan_floats(&self, batch: &RecordBatch, floats: &mut [FloatLeafStats]) {
        if !self.has_float_leaf {
            return;
        }
        let mut next = 0;
        for column in batch.columns() {
            scan_floats(column.as_ref(), None, &self.leaves, &mut next, floats);
        }
    }

    /// Writer properties for this schema: float leaves get no Parquet statistics.
    ///
    /// parquet-rs leaves NaN out of a chunk's min/max, as the Parquet spec says,
    /// but DuckDB 1.5.5 trusts a float maximum and skips a row group holding NaN
    /// (`f = 'NaN'`, `f > 1` miss rows). DuckDB itself writes no bounds for such
    /// chunks; without knowing the data ahead, lakeq writes none for any float
    /// chunk and takes a float leaf's catalog statistics from its Arrow values.
    fn writer_properties(&self, options: &WriteOptions) -> WriterProperties {
        let mut builder = writer_properties(options).into_builder();
        for (i, leaf) in self.leaves.iter().enumerate() {
            if leaf.is_float {
                let path = self.parquet_schema.column(i).path().clone();
                builder = builder.set_column_statistics_enabled(path, EnabledStatistics::None);
            }
        }
        builder.build()
    }

    /// The statistics rows of a written file, from its footer.
    fn column_stats(
        &self,
        metadata: &ParquetMetaData,
        floats: &[FloatLeafStats],
    ) -> Result<Vec<ColumnStats>, String> {
        let columns = metadata.file_metadata().schema_descr().num_columns();
        if columns != self.leaves.len() {
            return Err(format!(
                "the footer has {columns} leaf columns, expected {}",
                self.leaves.len()
            ));
        }
        let mut out = Vec::with_capacity(self.leaves.len());
        for (i, leaf) in self.leaves.iter().enumerate() {
            if leaf.column_id >= FIRST_HIDDEN_FIELD_ID {
                continue;
            }
            if leaf.is_float {
                let chunk_values: i64 = metadata
                    .row_groups()
                    .iter()
                    .map(|rg| rg.column(i).num_values())
                    .sum();
                let size: i64 = metadata
                    .row_groups()
                    .iter()
                    .map(|rg| rg.column(i).compressed_size())
                    .sum();
                let float = floats.get(i).cloned().unwrap_or_default();
                out.push(float.finish(leaf, chunk_values, size));
                continue;
            }
            let mut acc = LeafStats::default();
            for row_group in metadata.row_groups() {
                acc.add(row_group.column(i), leaf)?;
            }
            out.push(acc.finish(leaf));
        }
        Ok(out)
    }
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
fn plan_field(field: &Field, leaves: &mut Vec<Leaf>) -> Result<PlannedField, String> {
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
fn decimal_length(precision: u8) -> i32 {
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

// ---------------------------------------------------------------------------
// Array conversion (table type → write type)
// ---------------------------------------------------------------------------

const MICROS_PER_SECOND: i64 = 1_000_000;
const NANOS_PER_MILLI: i64 = 1_000_000;

/// Convert an array of the table type to `write_type` (see [`plan_leaf`]).
fn to_write_array(array: &ArrayRef, write_type: &DataType) -> Result<ArrayRef, String> {
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

// ---------------------------------------------------------------------------
// Float leaves: NaN, value count and bounds from the Arrow values
// ---------------------------------------------------------------------------

/// What a file holds of one float leaf, from the values written (the footer has
/// no statistics for float leaves, see [`WritePlan::writer_properties`]).
#[derive(Debug, Clone, Default)]
struct FloatLeafStats {
    /// Non-null values in the file (NaN included).
    values: i64,
    /// A NaN was written.
    nan: bool,
    /// Smallest and largest non-NaN value.
    min: Option<f64>,
    max: Option<f64>,
}

impl FloatLeafStats {
    fn add(&mut self, v: f64) {
        self.values += 1;
        if v.is_nan() {
            self.nan = true;
            return;
        }
        if self.min.is_none_or(|m| v < m) {
            self.min = Some(v);
        }
        if self.max.is_none_or(|m| v > m) {
            self.max = Some(v);
        }
    }

    /// The leaf's statistics row; `chunk_values` counts its nulls too.
    fn finish(self, leaf: &Leaf, chunk_values: i64, size: i64) -> ColumnStats {
        let scalar = |v: f64| match leaf.write_type {
            // Exact: the value came from an f32.
            #[allow(clippy::cast_possible_truncation)]
            DataType::Float32 => ScalarValue::Float32(Some(v as f32)),
            _ => ScalarValue::Float64(Some(v)),
        };
        let (min_value, max_value) = match (self.min, self.max) {
            (Some(min), Some(max)) => (stat_text(&scalar(min)), stat_text(&scalar(max))),
            _ => (None, None),
        };
        ColumnStats {
            column_id: leaf.column_id,
            column_size_bytes: Some(size),
            value_count: self.values,
            null_count: chunk_values - self.values,
            min_value,
            max_value,
            contains_nan: Some(self.nan),
        }
    }
}

/// Walk `array` (of a write type) leaf by leaf, adding float values to `floats`;
/// `live` marks the slots that are in the file (not under a null or out-of-range
/// parent).
fn scan_floats(
    array: &dyn Array,
    live: Option<&BooleanBuffer>,
    leaves: &[Leaf],
    next: &mut usize,
    floats: &mut [FloatLeafStats],
) {
    match array.data_type() {
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let child_live = child_slots(list.offsets(), list.nulls(), live, list.values().len());
            scan_floats(
                list.values().as_ref(),
                child_live.as_ref(),
                leaves,
                next,
                floats,
            );
        }
        DataType::Map(_, _) => {
            let map = array.as_map();
            let child_live = child_slots(map.offsets(), map.nulls(), live, map.entries().len());
            scan_floats(map.entries(), child_live.as_ref(), leaves, next, floats);
        }
        DataType::Struct(_) => {
            let struct_array = array.as_struct();
            let live = match (live, struct_array.nulls()) {
                (None, None) => None,
                (Some(l), None) => Some(l.clone()),
                (None, Some(n)) => Some(n.inner().clone()),
                (Some(l), Some(n)) => Some(l & n.inner()),
            };
            for column in struct_array.columns() {
                scan_floats(column.as_ref(), live.as_ref(), leaves, next, floats);
            }
        }
        _ => {
            let index = *next;
            *next += 1;
            if !leaves.get(index).is_some_and(|l| l.is_float) {
                return;
            }
            let Some(acc) = floats.get_mut(index) else {
                return;
            };
            match array.data_type() {
                DataType::Float32 => {
                    let values = array.as_primitive::<Float32Type>().values();
                    add_live(array, live, acc, values);
                }
                DataType::Float64 => {
                    let values = array.as_primitive::<Float64Type>().values();
                    add_live(array, live, acc, values);
                }
                _ => {}
            }
        }
    }
}

/// Add the valid, live slots of `array` (whose slot values are `values`) to `acc`.
fn add_live<T: Copy + Into<f64>>(
    array: &dyn Array,
    live: Option<&BooleanBuffer>,
    acc: &mut FloatLeafStats,
    values: &[T],
) {
    if live.is_none() && array.null_count() == 0 {
        values.iter().for_each(|&v| acc.add(v.into()));
        return;
    }
    for (i, &v) in values.iter().enumerate() {
        if array.is_valid(i) && live.is_none_or(|l| l.value(i)) {
            acc.add(v.into());
        }
    }
}

/// Which child slots of a list/map are in the file: those inside the offsets of
/// live, valid entries. `None` = all of them.
fn child_slots(
    offsets: &OffsetBuffer<i32>,
    nulls: Option<&NullBuffer>,
    live: Option<&BooleanBuffer>,
    child_len: usize,
) -> Option<BooleanBuffer> {
    let first = offsets.first().copied().unwrap_or(0);
    let last = offsets.last().copied().unwrap_or(0);
    let covers_all = first == 0 && usize::try_from(last).is_ok_and(|l| l == child_len);
    if live.is_none() && nulls.is_none() && covers_all {
        return None;
    }
    let mut builder = BooleanBufferBuilder::new(child_len);
    let mut position = 0usize;
    for (i, (&start, &end)) in offsets.iter().zip(offsets.iter().skip(1)).enumerate() {
        let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
            continue;
        };
        let keep = nulls.is_none_or(|n| n.is_valid(i)) && live.is_none_or(|l| l.value(i));
        if start > position {
            builder.append_n(start - position, false);
        }
        builder.append_n(end.saturating_sub(start), keep);
        position = end.max(position);
    }
    if child_len > position {
        builder.append_n(child_len - position, false);
    }
    Some(builder.finish())
}

// ---------------------------------------------------------------------------
// Statistics from the footer
// ---------------------------------------------------------------------------

/// Statistics of one leaf, accumulated over row groups.
struct LeafStats {
    size: i64,
    values: i64,
    nulls: i64,
    min: Option<ScalarValue>,
    max: Option<ScalarValue>,
    /// False once a row group with values has no usable bound.
    bounds_known: bool,
}

impl Default for LeafStats {
    fn default() -> Self {
        Self {
            size: 0,
            values: 0,
            nulls: 0,
            min: None,
            max: None,
            bounds_known: true,
        }
    }
}

impl LeafStats {
    fn add(&mut self, chunk: &ColumnChunkMetaData, leaf: &Leaf) -> Result<(), String> {
        let stats = chunk
            .statistics()
            .ok_or_else(|| format!("column {} has no statistics in the footer", leaf.column_id))?;
        let nulls = stats
            .null_count_opt()
            .and_then(|n| i64::try_from(n).ok())
            .ok_or_else(|| format!("column {} has no null count", leaf.column_id))?;
        let values = chunk.num_values() - nulls;
        self.size += chunk.compressed_size();
        self.nulls += nulls;
        self.values += values;
        if values == 0 || !self.bounds_known {
            return Ok(());
        }
        match (
            bound(stats, &leaf.write_type, false),
            bound(stats, &leaf.write_type, true),
        ) {
            (Some(min), Some(max)) => {
                self.min = Some(merge(
                    self.min.take(),
                    min,
                    Ordering::Less,
                    &mut self.bounds_known,
                ));
                self.max = Some(merge(
                    self.max.take(),
                    max,
                    Ordering::Greater,
                    &mut self.bounds_known,
                ));
            }
            _ => self.bounds_known = false,
        }
        Ok(())
    }

    fn finish(self, leaf: &Leaf) -> ColumnStats {
        let (min_value, max_value) = match (self.bounds_known, &self.min, &self.max) {
            (true, Some(min), Some(max)) => match (stat_text(min), stat_text(max)) {
                (Some(min), Some(max)) => (Some(min), Some(max)),
                _ => (None, None),
            },
            _ => (None, None),
        };
        ColumnStats {
            column_id: leaf.column_id,
            column_size_bytes: Some(self.size),
            value_count: self.values,
            null_count: self.nulls,
            min_value,
            max_value,
            contains_nan: None,
        }
    }
}

/// Keep the smaller (`Less`) or larger (`Greater`) of `current` and `new`.
fn merge(
    current: Option<ScalarValue>,
    new: ScalarValue,
    keep_if: Ordering,
    known: &mut bool,
) -> ScalarValue {
    match current {
        None => new,
        Some(current) => match new.partial_cmp(&current) {
            Some(ordering) if ordering == keep_if => new,
            Some(_) => current,
            None => {
                *known = false;
                current
            }
        },
    }
}

/// The exact min (`max == false`) or max of a chunk as a value of `write_type`.
fn bound(stats: &Statistics, write_type: &DataType, max: bool) -> Option<ScalarValue> {
    let exact = if max {
        stats.max_is_exact()
    } else {
        stats.min_is_exact()
    };
    if !exact {
        return None;
    }
    macro_rules! pick {
        ($s:expr) => {
            if max { $s.max_opt() } else { $s.min_opt() }
        };
    }
    match stats {
        Statistics::Boolean(s) => pick!(s).map(|v| ScalarValue::Boolean(Some(*v))),
        Statistics::Int32(s) => pick!(s).and_then(|v| int32_value(*v, write_type)),
        Statistics::Int64(s) => pick!(s).and_then(|v| int64_value(*v, write_type)),
        Statistics::Float(s) => pick!(s).map(|v| ScalarValue::Float32(Some(*v))),
        Statistics::Double(s) => pick!(s).map(|v| ScalarValue::Float64(Some(*v))),
        Statistics::ByteArray(s) => pick!(s).and_then(|v| match write_type {
            DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Dictionary(_, _) => std::str::from_utf8(v.data())
                .ok()
                .map(|s| ScalarValue::Utf8(Some(s.to_string()))),
            _ => None,
        }),
        Statistics::FixedLenByteArray(s) => pick!(s).and_then(|v| {
            let bytes = v.data();
            match write_type {
                DataType::Decimal128(precision, scale) => decimal_from_be(bytes)
                    .map(|d| ScalarValue::Decimal128(Some(d), *precision, *scale)),
                DataType::FixedSizeBinary(16) => {
                    Some(ScalarValue::FixedSizeBinary(16, Some(bytes.to_vec())))
                }
                _ => None,
            }
        }),
        Statistics::Int96(_) => None,
    }
}

fn int32_value(v: i32, write_type: &DataType) -> Option<ScalarValue> {
    Some(match write_type {
        DataType::Int8 => ScalarValue::Int8(Some(i8::try_from(v).ok()?)),
        DataType::Int16 => ScalarValue::Int16(Some(i16::try_from(v).ok()?)),
        DataType::Int32 => ScalarValue::Int32(Some(v)),
        DataType::UInt8 => ScalarValue::UInt8(Some(u8::try_from(v).ok()?)),
        DataType::UInt16 => ScalarValue::UInt16(Some(u16::try_from(v).ok()?)),
        // Stored as the same 32 bits, compared unsigned by parquet-rs.
        DataType::UInt32 => ScalarValue::UInt32(Some(u32::from_ne_bytes(v.to_ne_bytes()))),
        DataType::Date32 => ScalarValue::Date32(Some(v)),
        DataType::Decimal128(precision, scale) => {
            ScalarValue::Decimal128(Some(i128::from(v)), *precision, *scale)
        }
        _ => return None,
    })
}

fn int64_value(v: i64, write_type: &DataType) -> Option<ScalarValue> {
    Some(match write_type {
        DataType::Int64 => ScalarValue::Int64(Some(v)),
        DataType::UInt64 => ScalarValue::UInt64(Some(u64::from_ne_bytes(v.to_ne_bytes()))),
        DataType::Time64(TimeUnit::Microsecond) => ScalarValue::Time64Microsecond(Some(v)),
        DataType::Time64(TimeUnit::Nanosecond) => ScalarValue::Time64Nanosecond(Some(v)),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            ScalarValue::TimestampMillisecond(Some(v), tz.clone())
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            ScalarValue::TimestampMicrosecond(Some(v), tz.clone())
        }
        DataType::Timestamp(TimeUnit::Nanosecond, tz) => {
            ScalarValue::TimestampNanosecond(Some(v), tz.clone())
        }
        DataType::Decimal128(precision, scale) => {
            ScalarValue::Decimal128(Some(i128::from(v)), *precision, *scale)
        }
        _ => return None,
    })
}

/// A big-endian two's complement integer of at most 16 bytes.
fn decimal_from_be(bytes: &[u8]) -> Option<i128> {
    let (&high, _) = bytes.split_first()?;
    let fill = if high & 0x80 != 0 { 0xFF } else { 0 };
    let mut buffer = [fill; 16];
    buffer
        .get_mut(16usize.checked_sub(bytes.len())?..)?
        .copy_from_slice(bytes);
    Some(i128::from_be_bytes(buffer))
}

/// DuckDB's text for a min/max value of a Parquet file (SPEC §6), or `None`.
fn stat_text(value: &ScalarValue) -> Option<String> {
    match value {
        ScalarValue::Boolean(Some(b)) => Some(if *b { "1" } else { "0" }.to_string()),
        // -0.0 and 0.0 are equal; DuckDB writes `0.0`.
        ScalarValue::Float32(Some(v)) if *v == 0.0 => Some("0.0".to_string()),
        ScalarValue::Float64(Some(v)) if *v == 0.0 => Some("0.0".to_string()),
        ScalarValue::Utf8(Some(s)) => {
            (s.len() <= MAX_STAT_STRING_BYTES && !s.contains('\0')).then(|| s.clone())
        }
        ScalarValue::Binary(_) | ScalarValue::LargeBinary(_) | ScalarValue::BinaryView(_) => None,
        other => format_duckdb_text(other)
            .ok()
            .flatten()
            .filter(|text| !text.contains('\0')),
    }
}

// ---------------------------------------------------------------------------
// Upload
// ---------------------------------------------------------------------------

/// The object store upload of one file, counting its bytes and keeping the last
/// eight (footer length + `PAR1`).
struct Upload {
    writer: BufWriter,
    size: u64,
    tail: Vec<u8>,
    /// Set once completion started: the upload can then no longer be aborted.
    completing: bool,
}

impl Upload {
    fn new(store: Arc<dyn ObjectStore>, path: ObjectPath) -> Self {
        Self {
            writer: BufWriter::new(store, path),
            size: 0,
            tail: Vec::with_capacity(16),
            completing: false,
        }
    }

    fn track(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if let Some(last) = bytes.last_chunk::<8>() {
            self.tail.clear();
            self.tail.extend_from_slice(last);
        } else {
            self.tail.extend_from_slice(bytes);
            let excess = self.tail.len().saturating_sub(8);
            self.tail.drain(..excess);
        }
    }

    /// The footer length before the trailing `PAR1`.
    fn footer_size(&self) -> Option<i64> {
        match self.tail.as_slice() {
            [a, b, c, d, b'P', b'A', b'R', b'1'] => {
                Some(i64::from(u32::from_le_bytes([*a, *b, *c, *d])))
            }
            _ => None,
        }
    }

    /// Abort a multipart upload in progress (nothing is visible yet).
    async fn abort(&mut self) {
        if !self.completing {
            self.completing = true;
            let _ = self.writer.abort().await;
        }
    }
}

impl AsyncFileWriter for Upload {
    fn write(&mut self, bytes: Bytes) -> BoxFuture<'_, datafusion::parquet::errors::Result<()>> {
        self.track(&bytes);
        Box::pin(async move {
            self.writer
                .put(bytes)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        })
    }

    fn complete(&mut self) -> BoxFuture<'_, datafusion::parquet::errors::Result<()>> {
        self.completing = true;
        Box::pin(async move {
            self.writer
                .shutdown()
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        })
    }
}

// ---------------------------------------------------------------------------
// Data file writer
// ---------------------------------------------------------------------------

/// A file being written.
struct OpenFile {
    writer: AsyncArrowWriter<Upload>,
    url: String,
    file_name: String,
    rows: i64,
    /// Per leaf: what the file holds of a float leaf (unused for other leaves).
    floats: Vec<FloatLeafStats>,
}

/// Streams record batches into one or more Parquet files under a table directory.
///
/// Batches must have the table schema's columns in order (names are ignored,
/// types are cast to the schema's where they differ). A new file is started when
/// the current one reaches [`WriteOptions::target_file_size`]; memory stays
/// bounded by one row group plus the upload buffer. After an error from
/// [`DataFileWriter::write`], call [`DataFileWriter::abort`]; dropping the writer
/// without [`DataFileWriter::finish`] or `abort` leaves the files written so far.
pub struct DataFileWriter {
    store: Arc<dyn ObjectStore>,
    table_dir: String,
    plan: std::result::Result<Arc<WritePlan>, String>,
    options: WriteOptions,
    properties: WriterProperties,
    /// `""` for data files, `"-delete"` for delete files.
    name_suffix: &'static str,
    /// Whether [`WrittenFile::column_stats`] is filled.
    collect_stats: bool,
    current: Option<OpenFile>,
    done: Vec<WrittenFile>,
}

impl fmt::Debug for DataFileWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataFileWriter")
            .field("table_dir", &self.table_dir)
            .field("options", &self.options)
            .field("finished_files", &self.done.len())
            .field("open_file", &self.current.as_ref().map(|c| c.url.as_str()))
            .finish()
    }
}

impl DataFileWriter {
    /// A writer of data files into `table_dir` (an absolute path or URL; a missing
    /// trailing `/` is added) for batches of `schema`, whose fields (nested ones
    /// too) carry their column ids as `PARQUET:field_id` metadata.
    ///
    /// A schema that cannot be written (missing field id, unsupported type) is
    /// reported by the first [`DataFileWriter::write`] or by
    /// [`DataFileWriter::finish`].
    pub fn new(
        store: Arc<dyn ObjectStore>,
        table_dir: &str,
        schema: SchemaRef,
        options: WriteOptions,
    ) -> Self {
        Self::with_kind(store, table_dir, schema, options, "", true)
    }

    fn with_kind(
        store: Arc<dyn ObjectStore>,
        table_dir: &str,
        schema: SchemaRef,
        options: WriteOptions,
        name_suffix: &'static str,
        collect_stats: bool,
    ) -> Self {
        let plan = WritePlan::new(schema).map(Arc::new);
        let properties = match &plan {
            Ok(plan) => plan.writer_properties(&options),
            Err(_) => writer_properties(&options),
        };
        Self {
            store,
            table_dir: normalize_dir(table_dir),
            plan,
            properties,
            options,
            name_suffix,
            collect_stats,
            current: None,
            done: Vec::new(),
        }
    }

    /// Write the named top-level column with `encoding` instead of a dictionary
    /// (e.g. `DELTA_BYTE_ARRAY` for distinct strings sharing long prefixes).
    pub fn with_column_encoding(mut self, column: &str, encoding: Encoding) -> Self {
        let path = ColumnPath::from(vec![column.to_string()]);
        self.properties = self
            .properties
            .into_builder()
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, encoding)
            .build();
        self
    }

    fn plan(&self) -> Result<Arc<WritePlan>> {
        self.plan
            .as_ref()
            .map(Arc::clone)
            .map_err(|reason| file_error(&self.table_dir, reason.clone()))
    }

    /// Append `batch`, rolling over to a new file at the target size.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let plan = self.plan()?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = plan.prepare(batch).map_err(|reason| {
            let path = self
                .current
                .as_ref()
                .map_or(self.table_dir.as_str(), |c| &c.url);
            file_error(path, reason)
        })?;
        // Files are cut where DuckDB cuts them: at the end of a row group (of
        // DuckDB's size, see `roll_rows`) once the file reached its target.
        let roll = self.roll_rows();
        let mut offset = 0;
        while offset < batch.num_rows() {
            let in_file = self.current.as_ref().map_or(0, |f| f.rows.unsigned_abs());
            let to_boundary = roll - in_file % roll;
            let len = WRITE_CHUNK_ROWS
                .min(batch.num_rows() - offset)
                .min(usize::try_from(to_boundary).unwrap_or(usize::MAX));
            let chunk = batch.slice(offset, len);
            offset += len;
            let mut file = match self.current.take() {
                Some(file) => file,
                None => self.open(&plan, &chunk)?,
            };
            if let Err(e) = file.writer.write(&chunk).await {
                let error = file_error(&file.url, e);
                self.current = Some(file);
                return Err(error);
            }
            file.rows += i64::try_from(len).unwrap_or(i64::MAX);
            plan.scan_floats(&chunk, &mut file.floats);
            let size = file.writer.bytes_written() + file.writer.in_progress_size();
            if file.rows.unsigned_abs() % roll == 0 && size as u64 >= self.options.target_file_size
            {
                let written = self.close(&plan, file).await?;
                self.done.push(written);
            } else {
                self.current = Some(file);
            }
        }
        Ok(())
    }

    /// Rows per DuckDB row group: the lake's `parquet_row_group_size`, or DuckDB's
    /// default of 122880 where lakeq uses its own larger default. DuckDB starts a
    /// new file only after a row group, so a file of fewer rows is never split.
    fn roll_rows(&self) -> u64 {
        let rows = if self.options.row_group_size == super::DEFAULT_ROW_GROUP_SIZE {
            DUCKDB_ROW_GROUP_ROWS
        } else {
            self.options.row_group_size
        };
        u64::try_from(rows.max(1)).unwrap_or(u64::MAX)
    }

    /// Close the current file and return every file written, in order. Writing
    /// nothing writes no file. On error, the files written so far are removed.
    pub async fn finish(mut self) -> Result<Vec<WrittenFile>> {
        let plan = match self.plan() {
            Ok(plan) => plan,
            Err(e) => {
                self.abort().await?;
                return Err(e);
            }
        };
        if let Some(file) = self.current.take() {
            match self.close(&plan, file).await {
                Ok(written) => self.done.push(written),
                Err(e) => {
                    delete_files(&self.store, &self.done).await;
                    return Err(e);
                }
            }
        }
        Ok(self.done)
    }

    /// Remove every file written so far (best effort: all removals are attempted;
    /// the first failure other than "not found" is returned). Never panics.
    pub async fn abort(mut self) -> Result<()> {
        let mut urls: Vec<String> = self.done.drain(..).map(|f| f.url).collect();
        if let Some(file) = self.current.take() {
            file.writer.into_inner().abort().await;
            // In case the upload had completed after all.
            urls.push(file.url);
        }
        remove_all(&self.store, &urls).await
    }

    /// Open a new file whose first rows are `first`.
    fn open(&self, plan: &WritePlan, first: &RecordBatch) -> Result<OpenFile> {
        let file_name = format!(
            "ducklake-{}{}.parquet",
            uuid::Uuid::now_v7(),
            self.name_suffix
        );
        let url = format!("{}{file_name}", self.table_dir);
        let path = locate(&url)?.path;
        let options = ArrowWriterOptions::new()
            .with_properties(file_properties(&self.properties, first))
            .with_skip_arrow_metadata(true)
            .with_parquet_schema(plan.parquet_schema.clone());
        let upload = Upload::new(Arc::clone(&self.store), path);
        let writer =
            AsyncArrowWriter::try_new_with_options(upload, Arc::clone(&plan.write_schema), options)
                .map_err(|e| file_error(&url, e))?;
        Ok(OpenFile {
            writer,
            url,
            file_name,
            rows: 0,
            floats: vec![FloatLeafStats::default(); plan.leaves.len()],
        })
    }

    /// Finish `file`'s footer and upload and describe it. On failure nothing is
    /// left behind.
    async fn close(&mut self, plan: &WritePlan, file: OpenFile) -> Result<WrittenFile> {
        let OpenFile {
            mut writer,
            url,
            file_name,
            rows,
            floats,
        } = file;
        let metadata = match writer.finish().await {
            Ok(metadata) => metadata,
            Err(e) => {
                writer.into_inner().abort().await;
                let _ = remove_all(&self.store, std::slice::from_ref(&url)).await;
                return Err(file_error(&url, e));
            }
        };
        let upload = writer.into_inner();
        let described = describe(plan, &metadata, rows, &floats, &upload, self.collect_stats);
        match described {
            Ok((record_count, file_size_bytes, column_stats)) => Ok(WrittenFile {
                url,
                file_name,
                record_count,
                file_size_bytes,
                footer_size: upload.footer_size(),
                column_stats,
            }),
            Err(reason) => {
                let _ = remove_all(&self.store, std::slice::from_ref(&url)).await;
                Err(file_error(&url, reason))
            }
        }
    }
}

/// The statistics a data file of some rows would get, without writing one: the
/// rows go through the same Parquet encoder as [`DataFileWriter`] into a sink,
/// and the footer it would have written gives the [`ColumnStats`]. For files
/// lakeq registers but did not write (`ducklake_add_data_files`): their own
/// footers may lack statistics, hold truncated bounds or bounds in the file's
/// type rather than the table's.
pub struct StatsCollector {
    plan: WritePlan,
    writer: ArrowWriter<std::io::Sink>,
    floats: Vec<FloatLeafStats>,
    rows: i64,
    /// The file the rows come from, for errors.
    path: String,
}

impl fmt::Debug for StatsCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatsCollector")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish()
    }
}

impl StatsCollector {
    /// A collector for batches of `schema` (fields carrying their column ids, as
    /// for [`DataFileWriter::new`]) read from the file `path`.
    pub fn new(schema: SchemaRef, path: &str) -> Result<Self> {
        let plan = WritePlan::new(schema).map_err(|reason| file_error(path, reason))?;
        let options = ArrowWriterOptions::new()
            .with_properties(plan.writer_properties(&WriteOptions::default()))
            .with_skip_arrow_metadata(true)
            .with_parquet_schema(plan.parquet_schema.clone());
        let writer = ArrowWriter::try_new_with_options(
            std::io::sink(),
            Arc::clone(&plan.write_schema),
            options,
        )
        .map_err(|e| file_error(path, e))?;
        Ok(Self {
            floats: vec![FloatLeafStats::default(); plan.leaves.len()],
            plan,
            writer,
            rows: 0,
            path: path.to_string(),
        })
    }

    /// Add `batch`'s rows.
    pub fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = self
            .plan
            .prepare(batch)
            .map_err(|reason| file_error(&self.path, reason))?;
        self.writer
            .write(&batch)
            .map_err(|e| file_error(&self.path, e))?;
        self.plan.scan_floats(&batch, &mut self.floats);
        self.rows += i64::try_from(batch.num_rows()).unwrap_or(i64::MAX);
        Ok(())
    }

    /// The number of rows added and one statistics row per leaf column.
    pub fn finish(self) -> Result<(i64, Vec<ColumnStats>)> {
        let Self {
            plan,
            writer,
            floats,
            rows,
            path,
        } = self;
        let metadata = writer.close().map_err(|e| file_error(&path, e))?;
        let stats = plan
            .column_stats(&metadata, &floats)
            .map_err(|reason| file_error(&path, reason))?;
        Ok((rows, stats))
    }
}

/// Record count, file size and column statistics of a finished file.
fn describe(
    plan: &WritePlan,
    metadata: &ParquetMetaData,
    rows: i64,
    floats: &[FloatLeafStats],
    upload: &Upload,
    collect_stats: bool,
) -> Result<(i64, i64, Vec<ColumnStats>), String> {
    let footer_rows = metadata.file_metadata().num_rows();
    if footer_rows != rows {
        return Err(format!(
            "the footer counts {footer_rows} rows, {rows} were written"
        ));
    }
    let column_stats = if collect_stats {
        plan.column_stats(metadata, floats)?
    } else {
        Vec::new()
    };
    let size = i64::try_from(upload.size).map_err(|e| e.to_string())?;
    Ok((rows, size, column_stats))
}

/// The writer properties of one file, whose first rows are `first`, so that
/// files come out near the size DuckDB gives them (size-bounded merges compare
/// file sizes, DuckDB's tests count the files they pick):
///
/// * dictionary encoding is off for the top-level primitive columns of `first`
///   whose values are more than one fifth distinct: DuckDB's rule (its writer
///   falls back to PLAIN when a row group's dictionary would hold more than a
///   fifth of its non-null values; lakeq looks at the file's first chunk,
///   DuckDB decides per row group);
/// * a file begun with less than a write chunk (a small insert, a flush, a
///   merge of small files) gets chunk statistics only and no page index, as
///   DuckDB writes none: with one page per column it would only repeat them.
fn file_properties(properties: &WriterProperties, first: &RecordBatch) -> WriterProperties {
    use datafusion::arrow::row::{RowConverter, SortField};
    let mut builder: Option<datafusion::parquet::file::properties::WriterPropertiesBuilder> = None;
    if first.num_rows() < WRITE_CHUNK_ROWS {
        builder = Some(
            properties
                .clone()
                .into_builder()
                .set_statistics_enabled(EnabledStatistics::Chunk)
                .set_offset_index_disabled(true),
        );
    }
    for (field, column) in first.schema().fields().iter().zip(first.columns()) {
        let path = ColumnPath::from(vec![field.name().clone()]);
        if field.data_type().is_nested()
            || matches!(field.data_type(), DataType::Boolean | DataType::Null)
            || !properties.dictionary_enabled(&path)
        {
            continue;
        }
        let values = column.len() - column.null_count();
        if values == 0 {
            continue;
        }
        let Ok(converter) = RowConverter::new(vec![SortField::new(field.data_type().clone())])
        else {
            continue;
        };
        let Ok(rows) = converter.convert_columns(std::slice::from_ref(column)) else {
            continue;
        };
        let mut distinct = std::collections::HashSet::new();
        for (i, row) in rows.iter().enumerate() {
            if column.is_valid(i) {
                distinct.insert(row);
            }
        }
        if distinct.len() * 5 > values {
            builder = Some(
                builder
                    .unwrap_or_else(|| properties.clone().into_builder())
                    .set_column_dictionary_enabled(path, false),
            );
        }
    }
    builder.map_or_else(|| properties.clone(), |b| b.build())
}

fn writer_properties(options: &WriteOptions) -> WriterProperties {
    WriterProperties::builder()
        // Format version 1 data pages, like DuckDB.
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(options.compression)
        .set_max_row_group_row_count(Some(options.row_group_size.max(1)))
        .set_max_row_group_bytes(Some(MAX_ROW_GROUP_BYTES))
        .set_statistics_enabled(EnabledStatistics::Page)
        // Chunk statistics become the catalog's min/max: longer values are
        // truncated (marked inexact), and inexact bounds are not recorded.
        .set_statistics_truncate_length(Some(MAX_STAT_STRING_BYTES))
        .build()
}

// ---------------------------------------------------------------------------
// Delete files and cleanup
// ---------------------------------------------------------------------------

/// Write a positional delete file (`file_path`, `pos`[, `_ducklake_internal_snapshot_id`])
/// for one data file, named `ducklake-<uuidv7>-delete.parquet` in `table_dir`.
///
/// `data_file_url` is the data file's full path or URL (DuckDB writes the
/// absolute path). `positions` are 0-based row positions in the data file; they
/// are written sorted and unique (when a position repeats, its smallest snapshot
/// id is kept). `snapshots`, when given, has one snapshot id per position: the
/// snapshot that deleted it. The result's `record_count` is the number of
/// distinct positions (the catalog's `delete_count`); it has no column stats.
pub async fn write_delete_file(
    store: &Arc<dyn ObjectStore>,
    table_dir: &str,
    data_file_url: &str,
    positions: &[i64],
    snapshots: Option<&[i64]>,
) -> Result<WrittenFile> {
    let dir = normalize_dir(table_dir);
    // Errors before a delete file exists name the data file.
    let invalid = |reason: String| file_error(data_file_url, reason);
    if positions.is_empty() {
        return Err(invalid("no row positions to delete".to_string()));
    }
    if let Some(snapshots) = snapshots
        && snapshots.len() != positions.len()
    {
        return Err(invalid(format!(
            "{} positions but {} snapshot ids",
            positions.len(),
            snapshots.len()
        )));
    }
    if let Some(p) = positions.iter().find(|p| **p < 0) {
        return Err(invalid(format!("negative row position {p}")));
    }
    let (positions, snapshots) = sorted_unique(positions, snapshots);

    let id_field = |name: &str, data_type: DataType, id: i32| {
        Field::new(name, data_type, true).with_metadata(
            [(FIELD_ID_KEY.to_string(), id.to_string())]
                .into_iter()
                .collect(),
        )
    };
    let path_type = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let mut fields = vec![
        id_field("file_path", path_type, DELETE_FILE_PATH_FIELD_ID),
        id_field("pos", DataType::Int64, DELETE_POS_FIELD_ID),
    ];
    // One dictionary entry for every row: the path is stored once in memory.
    let keys = datafusion::arrow::array::Int32Array::from(vec![0; positions.len()]);
    let paths = DictionaryArray::<Int32Type>::try_new(
        keys,
        Arc::new(StringArray::from(vec![data_file_url])),
    )
    .map_err(|e| invalid(e.to_string()))?;
    let mut columns: Vec<ArrayRef> = vec![Arc::new(paths), Arc::new(Int64Array::from(positions))];
    if let Some(snapshots) = snapshots {
        fields.push(id_field(
            SNAPSHOT_ID_COLUMN,
            DataType::Int64,
            SNAPSHOT_ID_FIELD_ID,
        ));
        columns.push(Arc::new(Int64Array::from(snapshots)));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch =
        RecordBatch::try_new(Arc::clone(&schema), columns).map_err(|e| invalid(e.to_string()))?;
    let options = WriteOptions {
        target_file_size: u64::MAX,
        ..WriteOptions::default()
    };
    let mut writer =
        DataFileWriter::with_kind(Arc::clone(store), &dir, schema, options, "-delete", false);
    if let Err(e) = writer.write(&batch).await {
        let _ = writer.abort().await;
        return Err(e);
    }
    let mut files = writer.finish().await?;
    match (files.pop(), files.is_empty()) {
        (Some(file), true) => Ok(file),
        (file, _) => {
            let mut all = files;
            all.extend(file);
            delete_files(store, &all).await;
            Err(invalid(format!(
                "expected one delete file, {} were written",
                all.len()
            )))
        }
    }
}

/// Positions sorted ascending without duplicates, with their snapshot ids (the
/// smallest one for a repeated position).
fn sorted_unique(positions: &[i64], snapshots: Option<&[i64]>) -> (Vec<i64>, Option<Vec<i64>>) {
    let strictly_ascending = positions.is_sorted_by(|a, b| a < b);
    match snapshots {
        None if strictly_ascending => (positions.to_vec(), None),
        None => {
            let mut sorted = positions.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            (sorted, None)
        }
        Some(snapshots) if strictly_ascending => (positions.to_vec(), Some(snapshots.to_vec())),
        Some(snapshots) => {
            let mut pairs: Vec<(i64, i64)> = positions
                .iter()
                .copied()
                .zip(snapshots.iter().copied())
                .collect();
            pairs.sort_unstable();
            pairs.dedup_by_key(|(position, _)| *position);
            let (positions, snapshots) = pairs.into_iter().unzip();
            (positions, Some(snapshots))
        }
    }
}

/// Remove written files (used when a commit fails). Best effort: errors, missing
/// files included, are ignored.
pub async fn delete_files(store: &Arc<dyn ObjectStore>, files: &[WrittenFile]) {
    let urls: Vec<String> = files.iter().map(|f| f.url.clone()).collect();
    let _ = remove_all(store, &urls).await;
}

/// Delete `urls`, attempting all; the first error other than "not found" is returned.
async fn remove_all(store: &Arc<dyn ObjectStore>, urls: &[String]) -> Result<()> {
    let mut first_error = None;
    let mut paths = Vec::with_capacity(urls.len());
    for url in urls {
        match locate(url) {
            Ok(location) => paths.push(Ok(location.path)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if !paths.is_empty() {
        let mut results = store.delete_stream(futures::stream::iter(paths).boxed());
        while let Some(result) = results.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    first_error.get_or_insert(Error::ObjectStore(e));
                }
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use datafusion::arrow::array::{
        BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
        Int8Array, Int16Array, Int32Array, IntervalMonthDayNanoArray, StringViewArray,
        Time64MicrosecondArray, Time64NanosecondArray, TimestampMicrosecondArray,
        TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray, UInt8Array,
        UInt16Array, UInt32Array, UInt64Array,
    };
    use datafusion::arrow::datatypes::IntervalMonthDayNano;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use datafusion::parquet::schema::printer::print_schema;
    use object_store::local::LocalFileSystem;

    use super::*;
    use crate::spec::types::DuckLakeType;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    /// A fresh directory (with trailing `/`) under `target/test-scratch/`; files
    /// are left there for inspection (e.g. with DuckDB).
    fn scratch(name: &str) -> String {
        let dir = format!(
            "{}/target/test-scratch/write-{name}/",
            env!("CARGO_MANIFEST_DIR")
        );
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn store() -> Arc<dyn ObjectStore> {
        Arc::new(LocalFileSystem::new())
    }

    fn with_id(field: Field, id: i64) -> Field {
        field.with_metadata(HashMap::from([(FIELD_ID_KEY.to_string(), id.to_string())]))
    }

    /// A nullable leaf field of a DuckLake type, like the catalog builds it.
    fn leaf(name: &str, ty: DuckLakeType, id: i64) -> Field {
        let data_type = ty.to_arrow().expect("leaf type");
        with_id(Field::new(name, data_type, true), id)
    }

    fn nested(name: &str, ty: DuckLakeType, id: i64, children: Vec<Field>) -> Field {
        let data_type = ty.to_arrow_nested(children).expect("nested type");
        with_id(Field::new(name, data_type, true), id)
    }

    fn child_field(data_type: &DataType) -> FieldRef {
        match data_type {
            DataType::List(f) | DataType::Map(f, _) => Arc::clone(f),
            other => panic!("no child field in {other}"),
        }
    }

    fn struct_fields(data_type: &DataType) -> Fields {
        match data_type {
            DataType::Struct(fields) => fields.clone(),
            other => panic!("not a struct: {other}"),
        }
    }

    fn list(field: &Field, offsets: Vec<i32>, values: ArrayRef, valid: Vec<bool>) -> ArrayRef {
        Arc::new(
            ListArray::try_new(
                child_field(field.data_type()),
                OffsetBuffer::new(offsets.into()),
                values,
                Some(NullBuffer::from(valid)),
            )
            .expect("list"),
        )
    }

    use datafusion::arrow::datatypes::FieldRef;

    const I128_MAX: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

    /// Every lakeq type, nested ones included, with ids in DuckDB's pre-order.
    fn all_types() -> (SchemaRef, RecordBatch) {
        use DuckLakeType as T;
        let l = nested("l", T::List, 28, vec![leaf("element", T::Int32, 29)]);
        let st = nested(
            "st",
            T::Struct,
            30,
            vec![leaf("a", T::Int32, 31), leaf("b", T::Varchar, 32)],
        );
        let m = nested(
            "m",
            T::Map,
            33,
            vec![leaf("key", T::Varchar, 34), leaf("value", T::Int32, 35)],
        );
        let ll_inner = nested(
            "element",
            T::List,
            37,
            vec![leaf("element", T::Varchar, 38)],
        );
        let ll = nested("ll", T::List, 36, vec![ll_inner.clone()]);
        let sl_x = nested("x", T::List, 40, vec![leaf("element", T::Int32, 41)]);
        let sl_y = nested("y", T::Struct, 42, vec![leaf("z", T::Float64, 43)]);
        let sl = nested("sl", T::Struct, 39, vec![sl_x.clone(), sl_y.clone()]);
        let gl = nested("gl", T::List, 46, vec![leaf("element", T::Float64, 47)]);
        let fields = vec![
            leaf("b", T::Boolean, 1),
            leaf("i8", T::Int8, 2),
            leaf("i16", T::Int16, 3),
            leaf("i32", T::Int32, 4),
            leaf("i64", T::Int64, 5),
            leaf("h", T::Int128, 6),
            leaf("u8", T::UInt8, 7),
            leaf("u16", T::UInt16, 8),
            leaf("u32", T::UInt32, 9),
            leaf("u64", T::UInt64, 10),
            leaf("f32", T::Float32, 11),
            leaf("f64", T::Float64, 12),
            leaf(
                "dec4",
                T::Decimal {
                    precision: 4,
                    scale: 1,
                },
                13,
            ),
            leaf(
                "dec18",
                T::Decimal {
                    precision: 18,
                    scale: 3,
                },
                14,
            ),
            leaf(
                "dec38",
                T::Decimal {
                    precision: 38,
                    scale: 10,
                },
                15,
            ),
            leaf("tm", T::Time, 16),
            leaf("tmns", T::TimeNs, 17),
            leaf("d", T::Date, 18),
            leaf("ts", T::Timestamp, 19),
            leaf("ts_s", T::TimestampS, 20),
            leaf("ts_ms", T::TimestampMs, 21),
            leaf("ts_ns", T::TimestampNs, 22),
            leaf("tstz", T::TimestampTz, 23),
            leaf("iv", T::Interval, 24),
            leaf("s", T::Varchar, 25),
            leaf("bl", T::Blob, 26),
            leaf("u", T::Uuid, 27),
            l.clone(),
            st.clone(),
            m.clone(),
            ll.clone(),
            sl.clone(),
            leaf("nul", T::Int32, 44),
            leaf("fnan", T::Float64, 45),
            gl.clone(),
        ];
        let schema = Arc::new(Schema::new(fields));

        let day = 86_400i64;
        let micros = 1_000_000i64;
        let ts_2020 = 18_262 * day; // 2020-01-01 in seconds
        let ts_2024 = 19_737 * day + 12 * 3600 + 30 * 60; // 2024-01-15 12:30:00
        let uuid = |s: &str| {
            uuid::Uuid::parse_str(s)
                .expect("uuid")
                .into_bytes()
                .to_vec()
        };

        let st_fields = struct_fields(st.data_type());
        let st_array = StructArray::try_new(
            st_fields,
            vec![
                Arc::new(Int32Array::from(vec![Some(1), None, None, Some(4)])),
                Arc::new(StringArray::from(vec![Some("x"), None, None, Some("y")])),
            ],
            Some(NullBuffer::from(vec![true, false, true, true])),
        )
        .expect("struct");

        let entries_field = child_field(m.data_type());
        let entries = StructArray::try_new(
            struct_fields(entries_field.data_type()),
            vec![
                Arc::new(StringArray::from(vec!["k", "q"])),
                Arc::new(Int32Array::from(vec![Some(1), None])),
            ],
            None,
        )
        .expect("entries");
        let m_array = MapArray::try_new(
            entries_field,
            OffsetBuffer::new(vec![0, 1, 1, 1, 2].into()),
            entries,
            Some(NullBuffer::from(vec![true, false, true, true])),
            false,
        )
        .expect("map");

        let ll_leaf = Arc::new(StringArray::from(vec![Some("s0"), Some("a"), None]));
        let ll_mid = list(
            &ll_inner,
            vec![0, 1, 1, 1, 3],
            ll_leaf,
            vec![true, true, false, true],
        );
        let ll_array = list(
            &ll,
            vec![0, 1, 1, 2, 4],
            ll_mid,
            vec![true, false, true, true],
        );

        let sl_x_array = list(
            &sl_x,
            vec![0, 1, 1, 1, 3],
            Arc::new(Int32Array::from(vec![1, 2, 3])),
            vec![true, false, false, true],
        );
        let sl_y_array = StructArray::try_new(
            struct_fields(sl_y.data_type()),
            vec![Arc::new(Float64Array::from(vec![
                Some(0.5),
                None,
                None,
                Some(f64::NAN),
            ]))],
            Some(NullBuffer::from(vec![true, false, false, true])),
        )
        .expect("y");
        let sl_array = StructArray::try_new(
            struct_fields(sl.data_type()),
            vec![sl_x_array, Arc::new(sl_y_array)],
            Some(NullBuffer::from(vec![true, false, true, true])),
        )
        .expect("sl");

        let columns: Vec<ArrayRef> = vec![
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                Some(true),
            ])),
            Arc::new(Int8Array::from(vec![
                Some(1),
                None,
                Some(i8::MIN),
                Some(i8::MAX),
            ])),
            Arc::new(Int16Array::from(vec![
                Some(2),
                None,
                Some(i16::MIN),
                Some(i16::MAX),
            ])),
            Arc::new(Int32Array::from(vec![
                Some(3),
                None,
                Some(i32::MIN),
                Some(i32::MAX),
            ])),
            Arc::new(Int64Array::from(vec![
                Some(4),
                None,
                Some(i64::MIN),
                Some(i64::MAX),
            ])),
            Arc::new(
                Decimal128Array::from(vec![Some(5), None, Some(-I128_MAX), Some(I128_MAX)])
                    .with_precision_and_scale(38, 0)
                    .expect("decimal"),
            ),
            Arc::new(UInt8Array::from(vec![
                Some(6),
                None,
                Some(0),
                Some(u8::MAX),
            ])),
            Arc::new(UInt16Array::from(vec![
                Some(7),
                None,
                Some(0),
                Some(u16::MAX),
            ])),
            Arc::new(UInt32Array::from(vec![
                Some(8),
                None,
                Some(0),
                Some(u32::MAX),
            ])),
            Arc::new(UInt64Array::from(vec![
                Some(9),
                None,
                Some(0),
                Some(u64::MAX),
            ])),
            Arc::new(Float32Array::from(vec![
                Some(1.5),
                None,
                Some(-0.0),
                Some(f32::NAN),
            ])),
            Arc::new(Float64Array::from(vec![
                Some(2.5),
                None,
                Some(f64::NEG_INFINITY),
                Some(f64::INFINITY),
            ])),
            Arc::new(
                Decimal128Array::from(vec![Some(1234), None, Some(-9999), Some(0)])
                    .with_precision_and_scale(4, 1)
                    .expect("decimal"),
            ),
            Arc::new(
                Decimal128Array::from(vec![Some(12_345_678), None, Some(-1), Some(0)])
                    .with_precision_and_scale(18, 3)
                    .expect("decimal"),
            ),
            Arc::new(
                Decimal128Array::from(vec![
                    Some(15_000_000_000),
                    None,
                    Some(-999_999_999_999),
                    Some(0),
                ])
                .with_precision_and_scale(38, 10)
                .expect("decimal"),
            ),
            Arc::new(Time64MicrosecondArray::from(vec![
                Some((12 * 3600 + 30 * 60) * micros + 500_000),
                None,
                Some(0),
                Some(day * micros - 1),
            ])),
            Arc::new(Time64NanosecondArray::from(vec![
                Some((12 * 3600 + 30 * 60) * 1_000_000_000 + 123_456_789),
                None,
                Some(0),
                Some(1),
            ])),
            Arc::new(Date32Array::from(vec![
                Some(18_262),
                None,
                Some(0),
                Some(19_737),
            ])),
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(ts_2020 * micros),
                None,
                Some(0),
                Some(ts_2024 * micros + 123_456),
            ])),
            Arc::new(TimestampSecondArray::from(vec![
                Some(ts_2020),
                None,
                Some(0),
                Some(ts_2024),
            ])),
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(ts_2020 * 1000),
                None,
                Some(0),
                Some(ts_2024 * 1000 + 5),
            ])),
            Arc::new(TimestampNanosecondArray::from(vec![
                Some(ts_2020 * 1_000_000_000),
                None,
                Some(0),
                Some(ts_2024 * 1_000_000_000 + 123_456_789),
            ])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    Some(ts_2020 * micros),
                    None,
                    Some(-micros),
                    Some(ts_2024 * micros),
                ])
                .with_timezone("UTC"),
            ),
            Arc::new(IntervalMonthDayNanoArray::from(vec![
                Some(IntervalMonthDayNano::new(14, 3, 4 * 3600 * 1_000_000_000)),
                None,
                Some(IntervalMonthDayNano::new(0, 0, 0)),
                Some(IntervalMonthDayNano::new(
                    0,
                    0,
                    25 * 3600 * 1_000_000_000 + 1_500_000,
                )),
            ])),
            Arc::new(StringArray::from(vec![
                Some("row_0"),
                None,
                Some(""),
                Some("zz"),
            ])),
            Arc::new(BinaryArray::from_opt_vec(vec![
                Some(b"b0"),
                None,
                Some(b"\x00\xff"),
                Some(b""),
            ])),
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    vec![
                        Some(uuid("550e8400-e29b-41d4-a716-446655440000")),
                        None,
                        Some(uuid("00000000-0000-0000-0000-000000000001")),
                        Some(uuid("ffffffff-ffff-ffff-ffff-ffffffffffff")),
                    ]
                    .into_iter(),
                    16,
                )
                .expect("uuid"),
            ),
            list(
                &l,
                vec![0, 3, 3, 3, 4],
                Arc::new(Int32Array::from(vec![Some(1), None, Some(3), None])),
                vec![true, false, true, true],
            ),
            Arc::new(st_array),
            Arc::new(m_array),
            ll_array,
            Arc::new(sl_array),
            Arc::new(Int32Array::from(vec![None::<i32>; 4])),
            Arc::new(Float64Array::from(vec![
                Some(f64::NAN),
                None,
                Some(f64::NAN),
                None,
            ])),
            // The NULL entry covers a NaN that is not part of the file.
            list(
                &gl,
                vec![0, 1, 2, 2, 3],
                Arc::new(Float64Array::from(vec![1.0, f64::NAN, 2.0])),
                vec![true, false, true, true],
            ),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).expect("batch");
        (schema, batch)
    }

    fn read_back(url: &str) -> (ParquetMetaData, RecordBatch) {
        let bytes = Bytes::from(std::fs::read(url).expect("read file"));
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("reader");
        let metadata = builder.metadata().as_ref().clone();
        let batches = builder
            .build()
            .expect("reader")
            .collect::<std::result::Result<Vec<_>, _>>()
            .expect("batches");
        let batch = datafusion::arrow::compute::concat_batches(
            &batches.first().expect("a batch").schema(),
            &batches,
        )
        .expect("concat");
        (metadata, batch)
    }

    fn stats_by_id(file: &WrittenFile) -> HashMap<i64, &ColumnStats> {
        file.column_stats.iter().map(|s| (s.column_id, s)).collect()
    }

    /// (min, max, value_count, null_count, contains_nan) of a column.
    fn summary<'a>(
        stats: &HashMap<i64, &'a ColumnStats>,
        id: i64,
    ) -> (Option<&'a str>, Option<&'a str>, i64, i64, Option<bool>) {
        let s = stats
            .get(&id)
            .unwrap_or_else(|| panic!("no stats for {id}"));
        (
            s.min_value.as_deref(),
            s.max_value.as_deref(),
            s.value_count,
            s.null_count,
            s.contains_nan,
        )
    }

    /// (path, field id) of every node of the Parquet schema, pre-order.
    fn field_ids(ty: &ParquetType, prefix: &str, out: &mut Vec<(String, Option<i32>)>) {
        for child in ty.get_fields() {
            let info = child.get_basic_info();
            let path = format!("{prefix}{}", info.name());
            out.push((path.clone(), info.has_id().then(|| info.id())));
            if child.is_group() {
                field_ids(child, &format!("{path}."), out);
            }
        }
    }

    #[tokio::test]
    async fn round_trip_every_type() -> TestResult {
        let dir = scratch("round-trip");
        let (schema, batch) = all_types();
        let mut writer =
            DataFileWriter::new(store(), &dir, Arc::clone(&schema), WriteOptions::default());
        writer.write(&batch).await?;
        let files = writer.finish().await?;
        assert_eq!(files.len(), 1);
        let file = &files[0];
        assert!(file.file_name.starts_with("ducklake-") && file.file_name.ends_with(".parquet"));
        assert!(!file.file_name.ends_with("-delete.parquet"));
        assert_eq!(
            uuid::Uuid::parse_str(&file.file_name[9..45])?.get_version_num(),
            7
        );
        assert_eq!(file.url, format!("{dir}{}", file.file_name));
        assert_eq!(file.record_count, 4);
        // Sidecar for manual checks with DuckDB (registering the file in a lake).
        let stats_json: Vec<_> = file
            .column_stats
            .iter()
            .map(|s| {
                serde_json::json!({
                    "column_id": s.column_id, "column_size_bytes": s.column_size_bytes,
                    "value_count": s.value_count, "null_count": s.null_count,
                    "min_value": s.min_value, "max_value": s.max_value,
                    "contains_nan": s.contains_nan,
                })
            })
            .collect();
        let sidecar = serde_json::json!({
            "url": file.url, "file_name": file.file_name, "record_count": file.record_count,
            "file_size_bytes": file.file_size_bytes, "footer_size": file.footer_size,
            "column_stats": stats_json,
        });
        std::fs::write(format!("{dir}written.json"), sidecar.to_string())?;

        // Exact size and footer length.
        let bytes = std::fs::read(&file.url)?;
        assert_eq!(file.file_size_bytes, bytes.len() as i64);
        let tail = &bytes[bytes.len() - 8..];
        assert_eq!(&tail[4..], b"PAR1");
        let footer = i64::from(u32::from_le_bytes(tail[..4].try_into()?));
        assert_eq!(file.footer_size, Some(footer));

        // Footer: field ids everywhere but the repeated groups, no key/value metadata.
        let (metadata, read) = read_back(&file.url);
        assert!(metadata.file_metadata().key_value_metadata().is_none());
        let root = metadata.file_metadata().schema_descr().root_schema_ptr();
        let mut printed = Vec::new();
        print_schema(&mut printed, &root);
        println!("{}", String::from_utf8_lossy(&printed));
        let mut ids = Vec::new();
        field_ids(&root, "", &mut ids);
        for (path, id) in &ids {
            let repeated_group = path.ends_with(".list") || path.ends_with(".key_value");
            assert_eq!(id.is_none(), repeated_group, "field id of {path}: {id:?}");
        }
        let expect = |path: &str| ids.iter().find(|(p, _)| p == path).and_then(|(_, id)| *id);
        assert_eq!(expect("b"), Some(1));
        assert_eq!(expect("l"), Some(28));
        assert_eq!(expect("l.list.element"), Some(29));
        assert_eq!(expect("m.key_value.key"), Some(34));
        assert_eq!(expect("m.key_value.value"), Some(35));
        assert_eq!(expect("ll.list.element.list.element"), Some(38));
        assert_eq!(expect("sl.y.z"), Some(43));
        let printed = String::from_utf8_lossy(&printed).to_string();
        for needle in [
            "OPTIONAL INT32 i8 [2] (INTEGER(8,true))",
            "OPTIONAL INT32 u32 [9] (INTEGER(32,false))",
            "OPTIONAL FIXED_LEN_BYTE_ARRAY (16) h [6] (DECIMAL(38,0))",
            "OPTIONAL INT32 dec4 [13] (DECIMAL(4,1))",
            "OPTIONAL INT64 dec18 [14] (DECIMAL(18,3))",
            "OPTIONAL FIXED_LEN_BYTE_ARRAY (16) u [27] (UUID)",
            "OPTIONAL FIXED_LEN_BYTE_ARRAY (12) iv [24] (INTERVAL)",
            "OPTIONAL BYTE_ARRAY s [25] (STRING)",
            "OPTIONAL INT64 ts_s [20] (TIMESTAMP(MICROS,false))",
            "OPTIONAL INT64 tstz [23] (TIMESTAMP(MICROS,true))",
            "OPTIONAL BYTE_ARRAY tmns [17] (STRING)",
            "REQUIRED BYTE_ARRAY key [34] (STRING)",
            "REPEATED group key_value {",
            "OPTIONAL BYTE_ARRAY bl [26];",
        ] {
            assert!(printed.contains(needle), "missing `{needle}` in\n{printed}");
        }

        // Values round-trip (cast back to the table types where Parquet differs).
        for (i, field) in schema.fields().iter().enumerate() {
            let got = read.column(i);
            let want = batch.column(i);
            if field.name() == "iv" {
                let got = got.as_fixed_size_binary_opt().map(|a| a.value(3).to_vec());
                let got = got.unwrap_or_else(|| {
                    // parquet-rs may decode INTERVAL as an Arrow interval.
                    let c = datafusion::arrow::compute::cast(
                        read.column(i),
                        &DataType::Interval(IntervalUnit::DayTime),
                    )
                    .expect("cast");
                    let v = c
                        .as_primitive::<datafusion::arrow::datatypes::IntervalDayTimeType>()
                        .value(3);
                    let mut b = 0u32.to_le_bytes().to_vec();
                    b.extend_from_slice(&v.days.to_le_bytes());
                    b.extend_from_slice(&v.milliseconds.to_le_bytes());
                    b
                });
                // 25:00:00.0015 → 0 months, 0 days, 90000001 ms.
                let mut want = vec![0u8; 8];
                want.extend_from_slice(&90_000_001u32.to_le_bytes());
                assert_eq!(got, want);
                assert!(read.column(i).is_null(1));
                continue;
            }
            let got = if got.data_type() == field.data_type() {
                Arc::clone(got)
            } else {
                datafusion::arrow::compute::cast(got, field.data_type())?
            };
            assert_eq!(&got, want, "column {}", field.name());
        }

        // Statistics.
        let stats = stats_by_id(file);
        // No rows for containers (28 l, 30 st, 33 m, 36 ll, 37, 39 sl, 40 x, 42 y, 46 gl).
        for container in [28, 30, 33, 36, 37, 39, 40, 42, 46] {
            assert!(
                !stats.contains_key(&container),
                "stats for container {container}"
            );
        }
        assert_eq!(file.column_stats.len(), 38);
        assert_eq!(summary(&stats, 1), (Some("0"), Some("1"), 3, 1, None));
        assert_eq!(summary(&stats, 2), (Some("-128"), Some("127"), 3, 1, None));
        assert_eq!(
            summary(&stats, 4),
            (Some("-2147483648"), Some("2147483647"), 3, 1, None)
        );
        assert_eq!(
            summary(&stats, 5),
            (
                Some("-9223372036854775808"),
                Some("9223372036854775807"),
                3,
                1,
                None
            )
        );
        let i128_max = I128_MAX.to_string();
        let i128_min = format!("-{i128_max}");
        assert_eq!(
            summary(&stats, 6),
            (Some(i128_min.as_str()), Some(i128_max.as_str()), 3, 1, None)
        );
        assert_eq!(summary(&stats, 7), (Some("0"), Some("255"), 3, 1, None));
        assert_eq!(
            summary(&stats, 9),
            (Some("0"), Some("4294967295"), 3, 1, None)
        );
        assert_eq!(
            summary(&stats, 10),
            (Some("0"), Some("18446744073709551615"), 3, 1, None)
        );
        assert_eq!(
            summary(&stats, 11),
            (Some("0.0"), Some("1.5"), 3, 1, Some(true))
        );
        assert_eq!(
            summary(&stats, 12),
            (Some("-inf"), Some("inf"), 3, 1, Some(false))
        );
        assert_eq!(
            summary(&stats, 13),
            (Some("-999.9"), Some("123.4"), 3, 1, None)
        );
        assert_eq!(
            summary(&stats, 14),
            (Some("-0.001"), Some("12345.678"), 3, 1, None)
        );
        assert_eq!(
            summary(&stats, 15),
            (Some("-99.9999999999"), Some("1.5000000000"), 3, 1, None)
        );
        assert_eq!(
            summary(&stats, 16),
            (Some("00:00:00"), Some("23:59:59.999999"), 3, 1, None)
        );
        assert_eq!(
            summary(&stats, 17),
            (Some("00:00:00"), Some("12:30:00.123456789"), 3, 1, None)
        );
        assert_eq!(
            summary(&stats, 18),
            (Some("1970-01-01"), Some("2024-01-15"), 3, 1, None)
        );
        assert_eq!(
            summary(&stats, 19),
            (
                Some("1970-01-01 00:00:00"),
                Some("2024-01-15 12:30:00.123456"),
                3,
                1,
                None
            )
        );
        assert_eq!(
            summary(&stats, 20),
            (
                Some("1970-01-01 00:00:00"),
                Some("2024-01-15 12:30:00"),
                3,
                1,
                None
            )
        );
        assert_eq!(
            summary(&stats, 21),
            (
                Some("1970-01-01 00:00:00"),
                Some("2024-01-15 12:30:00.005"),
                3,
                1,
                None
            )
        );
        assert_eq!(
            summary(&stats, 22),
            (
                Some("1970-01-01 00:00:00"),
                Some("2024-01-15 12:30:00.123456789"),
                3,
                1,
                None
            )
        );
        assert_eq!(
            summary(&stats, 23),
            (
                Some("1969-12-31 23:59:59+00"),
                Some("2024-01-15 12:30:00+00"),
                3,
                1,
                None
            )
        );
        assert_eq!(summary(&stats, 24), (None, None, 3, 1, None), "interval");
        assert_eq!(summary(&stats, 25), (Some(""), Some("zz"), 3, 1, None));
        assert_eq!(summary(&stats, 26), (None, None, 3, 1, None), "blob");
        assert_eq!(
            summary(&stats, 27),
            (
                Some("00000000-0000-0000-0000-000000000001"),
                Some("ffffffff-ffff-ffff-ffff-ffffffffffff"),
                3,
                1,
                None
            )
        );
        // Nested leaves count like DuckDB: [1, NULL, 3], NULL, [], [NULL].
        assert_eq!(summary(&stats, 29), (Some("1"), Some("3"), 2, 4, None));
        assert_eq!(summary(&stats, 31), (Some("1"), Some("4"), 2, 2, None));
        assert_eq!(summary(&stats, 32), (Some("x"), Some("y"), 2, 2, None));
        assert_eq!(summary(&stats, 34), (Some("k"), Some("q"), 2, 2, None));
        assert_eq!(summary(&stats, 35), (Some("1"), Some("1"), 1, 3, None));
        assert_eq!(summary(&stats, 38), (Some("a"), Some("s0"), 2, 4, None));
        assert_eq!(summary(&stats, 41), (Some("1"), Some("3"), 3, 2, None));
        assert_eq!(
            summary(&stats, 43),
            (Some("0.5"), Some("0.5"), 2, 2, Some(true))
        );
        // All NULL, all NaN, NaN only under a NULL list entry.
        assert_eq!(summary(&stats, 44), (None, None, 0, 4, None));
        assert_eq!(summary(&stats, 45), (None, None, 2, 2, Some(true)));
        assert_eq!(
            summary(&stats, 47),
            (Some("1.0"), Some("2.0"), 2, 2, Some(false))
        );
        for s in &file.column_stats {
            assert!(
                s.column_size_bytes.is_some_and(|n| n > 0),
                "size of {}",
                s.column_id
            );
        }
        Ok(())
    }

    /// DuckDB 1.5.5 trusts a Parquet float maximum that leaves NaN out: float
    /// chunks carry no footer statistics, the catalog's come from the values.
    #[tokio::test]
    async fn float_chunks_have_no_footer_statistics() -> TestResult {
        let dir = scratch("float-stats");
        let table = Arc::new(Schema::new(vec![
            leaf("f", DuckLakeType::Float64, 1),
            leaf("i", DuckLakeType::Int64, 2),
        ]));
        let input = RecordBatch::try_from_iter(vec![
            (
                "f",
                Arc::new(Float64Array::from(vec![Some(f64::NAN), Some(1.0), None])) as ArrayRef,
            ),
            (
                "i",
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None])),
            ),
        ])?;
        let mut writer =
            DataFileWriter::new(store(), &dir, Arc::clone(&table), WriteOptions::default());
        writer.write(&input).await?;
        let files = writer.finish().await?;
        let (metadata, _) = read_back(&files[0].url);
        let row_group = &metadata.row_groups()[0];
        assert!(row_group.column(0).statistics().is_none());
        assert!(row_group.column(1).statistics().is_some());
        let stats: HashMap<i64, &ColumnStats> = files[0]
            .column_stats
            .iter()
            .map(|s| (s.column_id, s))
            .collect();
        assert_eq!(
            summary(&stats, 1),
            (Some("1.0"), Some("1.0"), 2, 1, Some(true))
        );
        assert_eq!(summary(&stats, 2), (Some("1"), Some("2"), 2, 1, None));
        Ok(())
    }

    #[tokio::test]
    async fn input_types_are_cast_to_the_table_schema() -> TestResult {
        let dir = scratch("cast");
        let table = Arc::new(Schema::new(vec![
            leaf("s", DuckLakeType::Varchar, 1),
            leaf("i", DuckLakeType::Int32, 2),
            nested(
                "l",
                DuckLakeType::List,
                3,
                vec![leaf("element", DuckLakeType::Int64, 4)],
            ),
        ]));
        // Different names, Utf8View, Int64 and an `item` list without field ids.
        let input = RecordBatch::try_from_iter(vec![
            (
                "x",
                Arc::new(StringViewArray::from(vec![Some("a"), None])) as ArrayRef,
            ),
            ("y", Arc::new(Int64Array::from(vec![Some(1), Some(2)]))),
            (
                "z",
                Arc::new(ListArray::from_iter_primitive::<
                    datafusion::arrow::datatypes::Int64Type,
                    _,
                    _,
                >(vec![Some(vec![Some(7)]), None])),
            ),
        ])?;
        let mut writer =
            DataFileWriter::new(store(), &dir, Arc::clone(&table), WriteOptions::default());
        writer.write(&input).await?;
        let files = writer.finish().await?;
        let (metadata, read) = read_back(&files[0].url);
        let mut ids = Vec::new();
        field_ids(
            &metadata.file_metadata().schema_descr().root_schema_ptr(),
            "",
            &mut ids,
        );
        assert_eq!(
            ids,
            vec![
                ("s".to_string(), Some(1)),
                ("i".to_string(), Some(2)),
                ("l".to_string(), Some(3)),
                ("l.list".to_string(), None),
                ("l.list.element".to_string(), Some(4)),
            ]
        );
        assert_eq!(read.num_rows(), 2);
        let stats = stats_by_id(&files[0]);
        assert_eq!(summary(&stats, 2), (Some("1"), Some("2"), 2, 0, None));
        assert_eq!(summary(&stats, 4), (Some("7"), Some("7"), 1, 1, None));

        // A value that does not fit is an error naming the table directory.
        let too_big = RecordBatch::try_from_iter(vec![
            ("x", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
            ("y", Arc::new(Int64Array::from(vec![i64::MAX]))),
            (
                "z",
                Arc::new(ListArray::from_iter_primitive::<
                    datafusion::arrow::datatypes::Int64Type,
                    _,
                    _,
                >(vec![None::<Vec<Option<i64>>>])),
            ),
        ])?;
        let mut writer = DataFileWriter::new(store(), &dir, table, WriteOptions::default());
        let error = writer.write(&too_big).await.expect_err("overflow");
        assert!(
            matches!(&error, Error::DataFile { path, .. } if path == &dir),
            "{error}"
        );
        assert!(error.to_string().contains("column 'i'"), "{error}");
        writer.abort().await?;
        Ok(())
    }

    /// `field` without metadata at any depth (what DataFusion hands over).
    fn strip(field: &Field) -> Field {
        let data_type = match field.data_type() {
            DataType::List(c) => DataType::List(Arc::new(strip(c))),
            DataType::Struct(cs) => DataType::Struct(cs.iter().map(|c| strip(c)).collect()),
            DataType::Map(e, sorted) => DataType::Map(Arc::new(strip(e)), *sorted),
            other => other.clone(),
        };
        Field::new(field.name(), data_type, field.is_nullable())
    }

    #[tokio::test]
    async fn batches_without_field_ids_are_accepted() -> TestResult {
        let dir = scratch("no-field-ids");
        let (schema, batch) = all_types();
        let stripped: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(c, f)| datafusion::arrow::compute::cast(c, strip(f).data_type()))
            .collect::<std::result::Result<_, _>>()?;
        let stripped_schema = Arc::new(Schema::new(
            schema.fields().iter().map(|f| strip(f)).collect::<Vec<_>>(),
        ));
        let input = RecordBatch::try_new(stripped_schema, stripped)?;
        let mut writer =
            DataFileWriter::new(store(), &dir, Arc::clone(&schema), WriteOptions::default());
        writer.write(&input).await?;
        let files = writer.finish().await?;
        let (_, read) = read_back(&files[0].url);
        for name in ["l", "st", "m", "ll", "sl", "gl"] {
            let i = schema.index_of(name)?;
            assert_eq!(read.column(i), batch.column(i), "column {name}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn long_strings_get_no_bounds() -> TestResult {
        let dir = scratch("long-strings");
        let schema = Arc::new(Schema::new(vec![
            leaf("short", DuckLakeType::Varchar, 1),
            leaf("long", DuckLakeType::Varchar, 2),
            leaf("nul", DuckLakeType::Varchar, 3),
        ]));
        let exactly = "é".repeat(128); // 256 bytes
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(vec![exactly.as_str(), "a"])),
                Arc::new(StringArray::from(vec!["a".repeat(257), "b".to_string()])),
                Arc::new(StringArray::from(vec!["a\0b", "c"])),
            ],
        )?;
        let mut writer = DataFileWriter::new(store(), &dir, schema, WriteOptions::default());
        writer.write(&batch).await?;
        let files = writer.finish().await?;
        let stats = stats_by_id(&files[0]);
        assert_eq!(
            summary(&stats, 1),
            (Some("a"), Some(exactly.as_str()), 2, 0, None)
        );
        assert_eq!(summary(&stats, 2), (None, None, 2, 0, None));
        assert_eq!(summary(&stats, 3), (None, None, 2, 0, None));
        Ok(())
    }

    #[tokio::test]
    async fn hidden_columns_get_no_stats() -> TestResult {
        let dir = scratch("hidden");
        let schema = Arc::new(Schema::new(vec![
            leaf("a", DuckLakeType::Int32, 1),
            with_id(
                Field::new(crate::spec::ROW_ID_COLUMN, DataType::Int64, true),
                i64::from(crate::spec::ROW_ID_FIELD_ID),
            ),
            with_id(
                Field::new(SNAPSHOT_ID_COLUMN, DataType::Int64, true),
                i64::from(SNAPSHOT_ID_FIELD_ID),
            ),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(Int64Array::from(vec![10, 11])),
                Arc::new(Int64Array::from(vec![3, 4])),
            ],
        )?;
        let mut writer = DataFileWriter::new(store(), &dir, schema, WriteOptions::default());
        writer.write(&batch).await?;
        let files = writer.finish().await?;
        let ids: Vec<i64> = files[0].column_stats.iter().map(|s| s.column_id).collect();
        assert_eq!(ids, vec![1]);
        let (metadata, _) = read_back(&files[0].url);
        let row_id = metadata.file_metadata().schema_descr().column(1);
        assert_eq!(
            row_id.self_type().get_basic_info().id(),
            crate::spec::ROW_ID_FIELD_ID
        );
        Ok(())
    }

    #[tokio::test]
    async fn files_roll_over_at_the_target_size() -> TestResult {
        let dir = scratch("rolling");
        let schema = Arc::new(Schema::new(vec![
            leaf("id", DuckLakeType::Int64, 1),
            leaf("s", DuckLakeType::Varchar, 2),
        ]));
        let options = WriteOptions {
            target_file_size: 200 * 1024,
            row_group_size: 10_000,
            ..WriteOptions::default()
        };
        let mut writer = DataFileWriter::new(store(), &dir, Arc::clone(&schema), options);
        let total = 200_000i64;
        for start in (0..total).step_by(50_000) {
            let ids: Vec<i64> = (start..start + 50_000).collect();
            let strings: Vec<String> = ids
                .iter()
                .map(|i| format!("value-{i:08}-{}", i * 7919 % 1000))
                .collect();
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(StringArray::from(strings)),
                ],
            )?;
            writer.write(&batch).await?;
        }
        let files = writer.finish().await?;
        assert!(
            files.len() > 3,
            "expected several files, got {}",
            files.len()
        );
        let mut next_id = 0i64;
        for file in &files {
            let on_disk = std::fs::metadata(&file.url)?.len();
            assert_eq!(file.file_size_bytes, on_disk as i64);
            // Rolled after at most one chunk of 8192 rows past the target.
            assert!(
                file.file_size_bytes < 400 * 1024,
                "{} bytes",
                file.file_size_bytes
            );
            let (metadata, read) = read_back(&file.url);
            assert_eq!(read.num_rows() as i64, file.record_count);
            assert!(
                metadata
                    .row_groups()
                    .iter()
                    .all(|rg| rg.num_rows() <= 10_000)
            );
            let stats = stats_by_id(file);
            let (min, max, values, nulls, _) = summary(&stats, 1);
            assert_eq!(min, Some(next_id.to_string().as_str()));
            next_id += file.record_count;
            assert_eq!(max, Some((next_id - 1).to_string().as_str()));
            assert_eq!((values, nulls), (file.record_count, 0));
        }
        assert_eq!(next_id, total);
        let names: std::collections::HashSet<_> = files.iter().map(|f| &f.file_name).collect();
        assert_eq!(names.len(), files.len());
        Ok(())
    }

    #[tokio::test]
    async fn abort_removes_every_file() -> TestResult {
        let dir = scratch("abort");
        let schema = Arc::new(Schema::new(vec![leaf("id", DuckLakeType::Int64, 1)]));
        // Files are cut after row groups (here of 10000 rows) once at the target.
        let options = WriteOptions {
            target_file_size: 16 * 1024,
            row_group_size: 10_000,
            ..WriteOptions::default()
        };
        let mut writer = DataFileWriter::new(store(), &dir, Arc::clone(&schema), options);
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(
                (0..50_000).collect::<Vec<i64>>(),
            ))],
        )?;
        writer.write(&batch).await?;
        assert!(std::fs::read_dir(&dir)?.count() > 1, "finished files exist");
        writer.abort().await?;
        assert_eq!(std::fs::read_dir(&dir)?.count(), 0, "directory left empty");

        // delete_files removes finished files; removing them twice is fine.
        let mut writer = DataFileWriter::new(store(), &dir, schema, WriteOptions::default());
        writer.write(&batch).await?;
        let files = writer.finish().await?;
        delete_files(&store(), &files).await;
        delete_files(&store(), &files).await;
        assert_eq!(std::fs::read_dir(&dir)?.count(), 0);
        Ok(())
    }

    /// DuckDB's file cuts and dictionary rule: an insert smaller than one of
    /// DuckDB's row groups is one file whatever the target size; a column more
    /// than a fifth distinct is written PLAIN, a repetitive one with a dictionary.
    #[tokio::test]
    async fn files_are_cut_and_encoded_as_duckdb_does() -> TestResult {
        let dir = scratch("duckdb_cuts");
        let schema = Arc::new(Schema::new(vec![
            leaf("id", DuckLakeType::Int64, 1),
            leaf("k", DuckLakeType::Int64, 2),
        ]));
        let options = WriteOptions {
            target_file_size: 1024,
            ..WriteOptions::default()
        };
        let mut writer = DataFileWriter::new(store(), &dir, Arc::clone(&schema), options);
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from((0..50_000).collect::<Vec<i64>>())),
                Arc::new(Int64Array::from(
                    (0..50_000).map(|i| i % 7).collect::<Vec<i64>>(),
                )),
            ],
        )?;
        writer.write(&batch).await?;
        let files = writer.finish().await?;
        assert_eq!(
            files.len(),
            1,
            "50000 rows are less than a DuckDB row group"
        );
        let bytes = std::fs::read(&files[0].url)?;
        let reader = datafusion::parquet::file::reader::SerializedFileReader::new(
            bytes::Bytes::from(bytes),
        )?;
        use datafusion::parquet::file::reader::FileReader;
        let row_group = reader.metadata().row_group(0);
        let dictionary = |i: usize| row_group.column(i).dictionary_page_offset().is_some();
        assert!(!dictionary(0), "distinct ids are PLAIN");
        assert!(dictionary(1), "seven values get a dictionary");
        Ok(())
    }

    #[tokio::test]
    async fn bad_schemas_and_values_are_errors() -> TestResult {
        let dir = scratch("errors");
        // Missing field id on a nested child.
        let schema = Arc::new(Schema::new(vec![with_id(
            Field::new(
                "l",
                DataType::List(Arc::new(Field::new("element", DataType::Int32, true))),
                true,
            ),
            1,
        )]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(ListArray::new_null(
                child_field(schema.field(0).data_type()),
                1,
            ))],
        )?;
        let mut writer = DataFileWriter::new(store(), &dir, schema, WriteOptions::default());
        let error = writer.write(&batch).await.expect_err("no field id");
        assert!(
            error
                .to_string()
                .contains("column 'element' has no field id"),
            "{error}"
        );
        let error = writer.finish().await.expect_err("no field id");
        assert!(matches!(error, Error::DataFile { .. }));

        // Negative intervals cannot be written (like DuckDB).
        let schema = Arc::new(Schema::new(vec![leaf("iv", DuckLakeType::Interval, 1)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(IntervalMonthDayNanoArray::from(vec![
                IntervalMonthDayNano::new(0, -1, 0),
            ]))],
        )?;
        let mut writer = DataFileWriter::new(store(), &dir, schema, WriteOptions::default());
        let error = writer.write(&batch).await.expect_err("negative interval");
        assert!(error.to_string().contains("negative intervals"), "{error}");
        writer.abort().await?;

        // Out-of-precision decimals are rejected, not truncated.
        let schema = Arc::new(Schema::new(vec![leaf(
            "d",
            DuckLakeType::Decimal {
                precision: 4,
                scale: 1,
            },
            1,
        )]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(
                Decimal128Array::from(vec![123_456]).with_precision_and_scale(4, 1)?,
            )],
        )?;
        let mut writer = DataFileWriter::new(store(), &dir, schema, WriteOptions::default());
        assert!(writer.write(&batch).await.is_err());
        writer.abort().await?;
        assert!(std::fs::read_dir(&dir).map_or(0, |d| d.count()) == 0);
        Ok(())
    }

    #[tokio::test]
    async fn delete_files_have_duckdbs_shape() -> TestResult {
        let dir = scratch("delete");
        let data_file = format!("{dir}ducklake-0190a000-0000-7000-8000-000000000000.parquet");
        let file = write_delete_file(&store(), &dir, &data_file, &[3, 1], None).await?;
        assert!(file.file_name.starts_with("ducklake-"));
        assert!(file.file_name.ends_with("-delete.parquet"));
        assert_eq!(file.record_count, 2);
        // Sidecar for manual checks with DuckDB.
        let sidecar = serde_json::json!({
            "url": file.url, "file_name": file.file_name, "record_count": file.record_count,
            "file_size_bytes": file.file_size_bytes, "footer_size": file.footer_size,
            "data_file": data_file,
        });
        std::fs::write(format!("{dir}written.json"), sidecar.to_string())?;
        assert!(file.column_stats.is_empty());
        assert_eq!(
            file.file_size_bytes,
            std::fs::metadata(&file.url)?.len() as i64
        );
        assert!(file.footer_size.is_some());
        let (metadata, read) = read_back(&file.url);
        assert!(metadata.file_metadata().key_value_metadata().is_none());
        let schema = metadata.file_metadata().schema_descr();
        let columns: Vec<_> = schema
            .columns()
            .iter()
            .map(|c| {
                let info = c.self_type().get_basic_info();
                (
                    c.name().to_string(),
                    c.physical_type(),
                    info.converted_type(),
                    info.id(),
                )
            })
            .collect();
        assert_eq!(
            columns,
            vec![
                (
                    "file_path".to_string(),
                    PhysicalType::BYTE_ARRAY,
                    ConvertedType::UTF8,
                    DELETE_FILE_PATH_FIELD_ID
                ),
                (
                    "pos".to_string(),
                    PhysicalType::INT64,
                    ConvertedType::INT_64,
                    DELETE_POS_FIELD_ID
                ),
            ]
        );
        let paths = datafusion::arrow::compute::cast(read.column(0), &DataType::Utf8)?;
        assert!(
            paths
                .as_string::<i32>()
                .iter()
                .all(|p| p == Some(data_file.as_str()))
        );
        assert_eq!(
            read.column(1)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .values(),
            &[1, 3]
        );

        // With snapshot ids: sorted, duplicates keep the earliest snapshot.
        let file = write_delete_file(
            &store(),
            &dir,
            &data_file,
            &[100, 7, 50, 7],
            Some(&[9, 9, 7, 8]),
        )
        .await?;
        assert_eq!(file.record_count, 3);
        let (metadata, read) = read_back(&file.url);
        let last = metadata.file_metadata().schema_descr().column(2);
        assert_eq!(last.name(), SNAPSHOT_ID_COLUMN);
        assert_eq!(last.self_type().get_basic_info().id(), SNAPSHOT_ID_FIELD_ID);
        let int64 = |i: usize| {
            read.column(i)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .values()
                .to_vec()
        };
        assert_eq!(int64(1), vec![7, 50, 100]);
        assert_eq!(int64(2), vec![8, 7, 9]);

        // Bad input.
        assert!(
            write_delete_file(&store(), &dir, &data_file, &[], None)
                .await
                .is_err()
        );
        assert!(
            write_delete_file(&store(), &dir, &data_file, &[-1], None)
                .await
                .is_err()
        );
        assert!(
            write_delete_file(&store(), &dir, &data_file, &[1, 2], Some(&[1]))
                .await
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn footer_tail_tracking() {
        let mut upload = Upload::new(
            Arc::new(object_store::memory::InMemory::new()),
            ObjectPath::from("x"),
        );
        upload.track(b"PAR1 lots of bytes");
        upload.track(&[0x2a, 0x01]);
        upload.track(&[0, 0]);
        upload.track(b"PAR1");
        assert_eq!(upload.size, 26);
        assert_eq!(upload.footer_size(), Some(0x012a));
        upload.track(b"x");
        assert_eq!(upload.footer_size(), None);
    }

    #[test]
    fn decimal_lengths_match_parquet_rs() {
        assert_eq!(decimal_length(19), 9);
        assert_eq!(decimal_length(38), 16);
        assert_eq!(decimal_from_be(&[0xff, 0xfe]), Some(-2));
        assert_eq!(decimal_from_be(&[0x01, 0x00]), Some(256));
    }
}
