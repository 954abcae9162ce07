//! Partitioned writes: rows are split by their partition key values (DuckDB's
//! transforms: `identity`, `year`, `month`, `day`, `hour`, calendar based, in
//! UTC, and `bucket(N)`, Iceberg's murmur3 hash as DuckLake computes it) into
//! one file stream per partition, under Hive-style directories
//! (`year=2023/region=eu/`), and each file records its values for
//! `ducklake_file_partition_value`. The directories are informational: readers
//! use the catalog's values (SPEC §4.13).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Datelike, NaiveDateTime, Timelike};
use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use object_store::ObjectStore;

use crate::catalog::TableEntry;
use crate::error::{Error, Result};
use crate::spec::CatalogId;
use crate::spec::rows::PartitionColumnRow;
use crate::spec::types::DuckLakeType;
use crate::spec::values::format_duckdb_text;
use crate::write::{DataFileWriter, WriteOptions, WrittenFile};

/// The partition spec a write follows.
#[derive(Debug, Clone)]
pub struct PartitionSpec {
    /// `ducklake_partition_info.partition_id`.
    pub partition_id: CatalogId,
    /// Per key part: (top-level column index, transform, directory key).
    pub keys: Vec<(usize, String, String)>,
}

impl PartitionSpec {
    /// The partition values (as stored in the catalog) of row `row` of `batch`
    /// (whose columns are the table's top-level columns).
    pub fn key_of(&self, batch: &RecordBatch, row: usize) -> Result<Vec<Option<String>>> {
        let mut key = Vec::with_capacity(self.keys.len());
        for (index, transform, _) in &self.keys {
            let column = batch.columns().get(*index).ok_or_else(|| {
                Error::Corrupt(format!("partition column #{index} is missing from a batch"))
            })?;
            let v = ScalarValue::try_from_array(column, row)?;
            key.push(key_value(&v, transform)?);
        }
        Ok(key)
    }

    /// The current spec of a table, if it is partitioned.
    pub fn of(table: &TableEntry) -> Result<Option<Self>> {
        let Some(first) = table.partition.first() else {
            return Ok(None);
        };
        Ok(Some(Self {
            partition_id: first.partition_id,
            keys: spec_keys(table, &table.partition)?,
        }))
    }
}

/// The Hive directories (`k=v/k2=v2/`) of a file with partition `values` of the
/// spec made of `parts` (key parts of one `partition_id`), as DuckDB names them.
pub fn hive_subdir(
    table: &TableEntry,
    parts: &[PartitionColumnRow],
    values: &[Option<String>],
) -> Result<String> {
    let keys = spec_keys(table, parts)?;
    Ok(subdir(&keys, values))
}

/// `k=v/` per key part; NULL is `__HIVE_DEFAULT_PARTITION__`, `/` is escaped.
fn subdir(keys: &[(usize, String, String)], values: &[Option<String>]) -> String {
    keys.iter()
        .zip(values)
        .map(|((_, _, dir_key), v)| {
            let v = v
                .as_deref()
                .unwrap_or("__HIVE_DEFAULT_PARTITION__")
                .replace('/', "%2F");
            format!("{dir_key}={v}/")
        })
        .collect()
}

/// Per key part of `parts`: (top-level column index, transform, directory key).
fn spec_keys(
    table: &TableEntry,
    parts: &[PartitionColumnRow],
) -> Result<Vec<(usize, String, String)>> {
    let mut keys = Vec::new();
    for p in parts {
        let (index, column) = table
            .columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.row.column_id == p.column_id)
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "table '{}' is partitioned by nested or dropped column {}",
                    table.qualified_name(),
                    p.column_id
                ))
            })?;
        let name = &column.row.column_name;
        let prefix = if p.transform == "identity" {
            name.clone()
        } else if ["year", "month", "day", "hour"].contains(&p.transform.as_str()) {
            p.transform.clone()
        } else if let Some(n) = bucket_count(&p.transform) {
            check_bucket_type(&column.ty, n).map_err(|e| {
                Error::Unsupported(format!(
                    "writing to '{}', partitioned by bucket({n}, {name}): {e}",
                    table.qualified_name()
                ))
            })?;
            "bucket".to_string()
        } else {
            return Err(Error::Unsupported(format!(
                "writing to '{}', partitioned with transform '{}'",
                table.qualified_name(),
                p.transform
            )));
        };
        // DuckDB's directory key: the transform's name, or `<name>_<column>`
        // when an earlier key part took that name already.
        let dir_key = if keys
            .iter()
            .any(|(_, _, k): &(usize, String, String)| k.eq_ignore_ascii_case(&prefix))
        {
            format!("{prefix}_{name}")
        } else {
            prefix
        };
        keys.push((index, p.transform.clone(), dir_key));
    }
    Ok(keys)
}

fn datetime_of(v: &ScalarValue) -> Option<NaiveDateTime> {
    let micros = match v {
        ScalarValue::Date32(Some(d)) => i64::from(*d) * 86_400_000_000,
        ScalarValue::Date64(Some(ms)) => ms * 1000,
        ScalarValue::TimestampSecond(Some(s), _) => s * 1_000_000,
        ScalarValue::TimestampMillisecond(Some(ms), _) => ms * 1000,
        ScalarValue::TimestampMicrosecond(Some(us), _) => *us,
        ScalarValue::TimestampNanosecond(Some(ns), _) => ns.div_euclid(1000),
        _ => return None,
    };
    chrono::DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc())
}

/// `N` of a `bucket(N)` transform.
pub(crate) fn bucket_count(transform: &str) -> Option<i64> {
    transform
        .strip_prefix("bucket(")?
        .strip_suffix(')')?
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0 && *n <= i64::from(i32::MAX))
}

/// Whether lakeq computes DuckDB's bucket of a column of type `ty`: every
/// type but those whose DuckDB hash is of an in-memory layout Arrow does not
/// share (TIME WITH TIME ZONE) or that lakeq cannot write (GEOMETRY, VARIANT).
pub(crate) fn check_bucket_type(ty: &DuckLakeType, n: i64) -> std::result::Result<(), String> {
    match ty {
        DuckLakeType::TimeTz | DuckLakeType::Geometry | DuckLakeType::Variant => Err(format!(
            "lakeq cannot compute bucket({n}) of a {ty} column as DuckDB does"
        )),
        _ => Ok(()),
    }
}

/// DuckLake's `murmur3_32` of a value (Iceberg's bucket hash): integers,
/// booleans, dates, times and timestamps (in their own unit) and decimals of up
/// to 18 digits (unscaled) as a little-endian 64-bit integer; floats as the
/// bits of the double (`-0.0` as `0.0`); strings and blobs as their bytes;
/// every other type as DuckDB's text of the value.
fn bucket_hash(v: &ScalarValue) -> Result<i32> {
    let long = |x: i64| murmur3_32(&x.to_le_bytes());
    let double = |d: f64| long(if d == 0.0 { 0.0f64 } else { d }.to_bits() as i64);
    Ok(match v {
        ScalarValue::Boolean(Some(b)) => long(i64::from(*b)),
        ScalarValue::Int8(Some(x)) => long(i64::from(*x)),
        ScalarValue::Int16(Some(x)) => long(i64::from(*x)),
        ScalarValue::Int32(Some(x)) | ScalarValue::Date32(Some(x)) => long(i64::from(*x)),
        ScalarValue::Int64(Some(x))
        | ScalarValue::TimestampSecond(Some(x), _)
        | ScalarValue::TimestampMillisecond(Some(x), _)
        | ScalarValue::TimestampMicrosecond(Some(x), _)
        | ScalarValue::TimestampNanosecond(Some(x), _)
        | ScalarValue::Time64Microsecond(Some(x))
        | ScalarValue::Time64Nanosecond(Some(x)) => long(*x),
        ScalarValue::Float32(Some(f)) => double(f64::from(*f)),
        ScalarValue::Float64(Some(f)) => double(*f),
        ScalarValue::Decimal128(Some(x), p, _) if *p <= 18 => {
            long(i64::try_from(*x).map_err(|_| Error::Corrupt(format!("decimal {x} overflows")))?)
        }
        ScalarValue::Utf8(Some(t))
        | ScalarValue::LargeUtf8(Some(t))
        | ScalarValue::Utf8View(Some(t)) => murmur3_32(t.as_bytes()),
        ScalarValue::Binary(Some(b))
        | ScalarValue::LargeBinary(Some(b))
        | ScalarValue::BinaryView(Some(b)) => murmur3_32(b),
        other => {
            let text = format_duckdb_text(other)?.ok_or_else(|| {
                Error::Unsupported(format!("bucket of a {} value", other.data_type()))
            })?;
            murmur3_32(text.as_bytes())
        }
    })
}

/// MurmurHash3 (x86, 32 bits) with seed 0.
fn murmur3_32(data: &[u8]) -> i32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mix = |k: u32| k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    let mut h: u32 = 0;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut word = [0u8; 4];
        word.copy_from_slice(chunk);
        h ^= mix(u32::from_le_bytes(word));
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let k = tail
            .iter()
            .enumerate()
            .fold(0u32, |k, (i, b)| k | (u32::from(*b) << (8 * i)));
        h ^= mix(k);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h as i32
}

/// The DuckDB text of one key part for one value.
fn key_value(v: &ScalarValue, transform: &str) -> Result<Option<String>> {
    if v.is_null() {
        return Ok(None);
    }
    if transform == "identity" {
        return format_duckdb_text(v);
    }
    if let Some(n) = bucket_count(transform) {
        let hash = i64::from(bucket_hash(v)? & i32::MAX);
        return Ok(Some((hash % n).to_string()));
    }
    let dt = datetime_of(v).ok_or_else(|| {
        Error::Unsupported(format!(
            "partition transform {transform} of a {} value",
            v.data_type()
        ))
    })?;
    Ok(Some(
        match transform {
            "year" => i64::from(dt.year()),
            "month" => i64::from(dt.month()),
            "day" => i64::from(dt.day()),
            _ => i64::from(dt.hour()),
        }
        .to_string(),
    ))
}

/// Streams rows into one [`DataFileWriter`] per partition.
pub struct PartitionedWriter {
    store: Arc<dyn ObjectStore>,
    table_dir: String,
    schema: SchemaRef,
    spec: Option<PartitionSpec>,
    options: WriteOptions,
    writers: HashMap<Vec<Option<String>>, (String, DataFileWriter)>,
    tag: Option<u64>,
}

impl PartitionedWriter {
    /// A writer for `table_dir`, partitioned by `spec` (or not).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        table_dir: &str,
        schema: SchemaRef,
        spec: Option<PartitionSpec>,
        options: WriteOptions,
    ) -> Self {
        Self {
            store,
            table_dir: table_dir.to_string(),
            schema,
            spec,
            options,
            writers: HashMap::new(),
            tag: None,
        }
    }

    /// Name every file with `tag` (see [`DataFileWriter::with_name_tag`]).
    pub fn with_name_tag(mut self, tag: u64) -> Self {
        self.tag = Some(tag);
        self
    }

    fn writer(&mut self, key: Vec<Option<String>>) -> &mut DataFileWriter {
        let subdir = match &self.spec {
            None => String::new(),
            Some(spec) => subdir(&spec.keys, &key),
        };
        let (store, dir, schema, options, tag) = (
            Arc::clone(&self.store),
            format!("{}{subdir}", self.table_dir),
            Arc::clone(&self.schema),
            self.options,
            self.tag,
        );
        &mut self
            .writers
            .entry(key)
            .or_insert_with(|| {
                let writer = DataFileWriter::new(store, &dir, schema, options);
                let writer = match tag {
                    Some(tag) => writer.with_name_tag(tag),
                    None => writer,
                };
                (subdir, writer)
            })
            .1
    }

    /// Write a batch, split by partition.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let Some(spec) = self.spec.clone() else {
            return self.writer(Vec::new()).write(batch).await;
        };
        let mut groups: HashMap<Vec<Option<String>>, Vec<u32>> = HashMap::new();
        for row in 0..batch.num_rows() {
            let key = spec.key_of(batch, row)?;
            groups
                .entry(key)
                .or_default()
                .push(u32::try_from(row).unwrap_or(u32::MAX));
        }
        for (key, rows) in groups {
            let part = take_record_batch(batch, &UInt32Array::from(rows))?;
            self.writer(key).write(&part).await?;
        }
        Ok(())
    }

    /// Close every file; each comes with its partition id and values.
    pub async fn finish(
        self,
    ) -> Result<Vec<(WrittenFile, Option<(CatalogId, Vec<Option<String>>)>)>> {
        let mut out = Vec::new();
        for (key, (subdir, writer)) in self.writers {
            for mut file in writer.finish().await? {
                file.file_name = format!("{subdir}{}", file.file_name);
                let partition = self.spec.as_ref().map(|s| (s.partition_id, key.clone()));
                out.push((file, partition));
            }
        }
        Ok(out)
    }

    /// Remove everything written so far.
    pub async fn abort(self) -> Result<()> {
        for (_, (_, writer)) in self.writers {
            writer.abort().await?;
        }
        Ok(())
    }
}

impl crate::write::FileSink for PartitionedWriter {
    fn write(&mut self, batch: &RecordBatch) -> impl Future<Output = Result<()>> + Send {
        PartitionedWriter::write(self, batch)
    }

    fn abort(self) -> impl Future<Output = Result<()>> + Send {
        PartitionedWriter::abort(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values and hashes from DuckDB 1.5.5's `murmur3_32` (DuckLake d8a1881e),
    /// which agree with Iceberg's spec for integers, dates, timestamps and strings.
    #[test]
    fn bucket_hash_is_duckdbs_murmur3() {
        let micros = 1_510_871_468_000_000;
        let cases = [
            (ScalarValue::Int64(Some(34)), 2_017_239_379),
            (ScalarValue::Int32(Some(34)), 2_017_239_379),
            (ScalarValue::Int8(Some(34)), 2_017_239_379),
            (ScalarValue::Boolean(Some(true)), 1_392_991_556),
            (ScalarValue::Int64(Some(-1)), 1_651_860_712),
            (ScalarValue::Utf8(Some("iceberg".into())), 1_210_000_089),
            (ScalarValue::Utf8(Some(String::new())), 0),
            (ScalarValue::Utf8(Some("é".into())), 269_551_495),
            (ScalarValue::Binary(Some(vec![0, 1])), 1_893_835_456),
            (ScalarValue::Date32(Some(17_486)), -653_330_422),
            (
                ScalarValue::TimestampMicrosecond(Some(micros), None),
                -2_047_944_441,
            ),
            (
                ScalarValue::TimestampNanosecond(Some(micros * 1000), None),
                -737_750_069,
            ),
            (
                ScalarValue::Time64Microsecond(Some(81_068_000_000)),
                -662_762_989,
            ),
            (ScalarValue::Float64(Some(1.5)), -260_406_309),
            (ScalarValue::Float32(Some(1.5)), -260_406_309),
            (ScalarValue::Decimal128(Some(1420), 4, 2), -622_427_183),
            (ScalarValue::Decimal128(Some(1420), 20, 2), -1_660_625_346),
            (ScalarValue::Decimal128(Some(34), 38, 0), -427_558_391),
            (ScalarValue::UInt64(Some(34)), -427_558_391),
            (ScalarValue::UInt32(Some(42)), -1_135_041_482),
        ];
        for (value, hash) in cases {
            assert_eq!(bucket_hash(&value).expect("hash"), hash, "{value:?}");
        }
    }

    #[test]
    fn bucket_keys_and_counts() {
        assert_eq!(bucket_count("bucket(4)"), Some(4));
        assert_eq!(bucket_count("bucket(0)"), None);
        assert_eq!(bucket_count("year"), None);
        // 'alice', 'bob', 'charlie' go to buckets 1, 2, 3 of 4 (DuckLake's own test).
        for (name, bucket) in [("alice", "1"), ("bob", "2"), ("charlie", "3")] {
            let v = ScalarValue::Utf8(Some(name.into()));
            assert_eq!(
                key_value(&v, "bucket(4)").expect("key").as_deref(),
                Some(bucket)
            );
        }
    }
}
