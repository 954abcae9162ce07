//! Partitioned writes: rows are split by their partition key values (DuckDB's
//! transforms: `identity`, `year`, `month`, `day`, `hour`, calendar based, in
//! UTC) into one file stream per partition, under Hive-style directories
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
        let mut keys = Vec::new();
        for p in &table.partition {
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
            let dir_key = if p.transform == "identity" {
                name.clone()
            } else if ["year", "month", "day", "hour"].contains(&p.transform.as_str()) {
                p.transform.clone()
            } else {
                return Err(Error::Unsupported(format!(
                    "writing to '{}', partitioned with transform '{}'",
                    table.qualified_name(),
                    p.transform
                )));
            };
            keys.push((index, p.transform.clone(), dir_key));
        }
        Ok(Some(Self {
            partition_id: first.partition_id,
            keys,
        }))
    }
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

/// The DuckDB text of one key part for one value.
fn key_value(v: &ScalarValue, transform: &str) -> Result<Option<String>> {
    if v.is_null() {
        return Ok(None);
    }
    if transform == "identity" {
        return format_duckdb_text(v);
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
        }
    }

    fn writer(&mut self, key: Vec<Option<String>>) -> &mut DataFileWriter {
        let subdir = match &self.spec {
            None => String::new(),
            Some(spec) => spec
                .keys
                .iter()
                .zip(&key)
                .map(|((_, _, dir_key), v)| {
                    let v = v
                        .as_deref()
                        .unwrap_or("__HIVE_DEFAULT_PARTITION__")
                        .replace('/', "%2F");
                    format!("{dir_key}={v}/")
                })
                .collect(),
        };
        let (store, dir, schema, options) = (
            Arc::clone(&self.store),
            format!("{}{subdir}", self.table_dir),
            Arc::clone(&self.schema),
            self.options,
        );
        &mut self
            .writers
            .entry(key)
            .or_insert_with(|| (subdir, DataFileWriter::new(store, &dir, schema, options)))
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
