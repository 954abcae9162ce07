//! File pruning from catalog statistics, before any Parquet file is opened.
//!
//! DuckLake keeps per-file min/max/null counts in `ducklake_file_column_stats`
//! and partition values in `ducklake_file_partition_value`. This module exposes
//! them as DataFusion [`PruningStatistics`] so a [`PruningPredicate`] built from
//! the query's filters can drop files. Only types whose text encoding is
//! unambiguous (integers, decimals, floats, dates, timestamps) are used; other
//! columns count as "unknown" and never prune (SPEC §6: string bounds may be
//! truncated, boolean/blob encodings differ by origin).
//!
//! Only the columns a filter uses are read, once per table and snapshot: their
//! bounds are kept with the table's [`TableFiles`] as Arrow arrays.
//!
//! [`PruningPredicate`]: datafusion::physical_optimizer::pruning::PruningPredicate

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, UInt64Array, new_null_array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::Expr;

use crate::catalog::TableEntry;
use crate::catalog::files::{ColumnBounds, TableFiles};
use crate::error::Result;
use crate::spec::rows::{DataFileRow, FileColumnStatsRow, FilePartitionValueRow};
use crate::spec::values::parse_stat;
use crate::spec::{ColumnId, FileId};
use crate::store::MetadataStore;

/// Catalog statistics of a table's files at one snapshot, for the columns a filter uses.
#[derive(Debug)]
pub struct CatalogFileStats {
    /// Bounds per top-level column name.
    bounds: HashMap<String, Arc<ColumnBounds>>,
    row_counts: ArrayRef,
}

/// Whether min/max strings of this type are reliable enough to prune with.
pub(crate) fn prunable(dt: &DataType) -> bool {
    dt.is_integer()
        || matches!(
            dt,
            DataType::Float32
                | DataType::Float64
                | DataType::Decimal128(..)
                | DataType::Date32
                | DataType::Timestamp(..)
        )
}

/// The columns of `table` that `filter` refers to and whose statistics can prune, by id.
/// Only their statistics need loading.
pub fn pruning_columns(table: &TableEntry, filter: &Expr) -> Vec<ColumnId> {
    let used: HashSet<&str> = filter
        .column_refs()
        .into_iter()
        .map(|c| c.name.as_str())
        .collect();
    table
        .columns
        .iter()
        .zip(table.arrow_schema.fields())
        .filter(|(c, f)| {
            used.contains(f.name().as_str())
                && prunable(f.data_type())
                // WKT text of WKB values: the catalog's bounds are not text bounds.
                && c.ty != crate::spec::types::DuckLakeType::Geometry
        })
        .map(|(c, _)| c.row.column_id)
        .collect()
}

/// Whether any of `columns` is an identity partition key of `table` (its files' partition
/// values then bound the column too).
fn uses_partition_values(table: &TableEntry, columns: &[ColumnId]) -> bool {
    table
        .partition
        .iter()
        .any(|p| p.transform == "identity" && columns.contains(&p.column_id))
}

/// Position of a data file in `files` (sorted by id).
fn position(files: &[DataFileRow], id: FileId) -> Option<usize> {
    files.binary_search_by_key(&id, |f| f.data_file_id).ok()
}

/// One file's bounds of one column, while they are gathered.
#[derive(Clone, Default)]
struct FileBounds {
    min: Option<ScalarValue>,
    max: Option<ScalarValue>,
    null_count: Option<u64>,
    byte_size: Option<u64>,
}

/// Build the bounds of one column over `files` from its statistics rows and, for an
/// identity partition column, the files' partition values.
fn column_bounds(
    table: &TableEntry,
    files: &[DataFileRow],
    column: ColumnId,
    dt: &DataType,
    stats: &[FileColumnStatsRow],
    partition_values: &[FilePartitionValueRow],
) -> ColumnBounds {
    let n = files.len();
    let mut bounds = vec![FileBounds::default(); n];
    for s in stats.iter().filter(|s| s.column_id == column) {
        let Some(b) = position(files, s.data_file_id).and_then(|i| bounds.get_mut(i)) else {
            continue;
        };
        b.min = s.min_value.as_deref().and_then(|t| parse_stat(t, dt));
        b.max = s.max_value.as_deref().and_then(|t| parse_stat(t, dt));
        // NaN sorts above every number (DuckDB, Arrow) but is not in the recorded
        // maximum: a float file that holds NaN, or may, has no usable maximum.
        if matches!(
            dt,
            DataType::Float16 | DataType::Float32 | DataType::Float64
        ) && s.contains_nan != Some(false)
        {
            b.max = None;
        }
        b.null_count = s.null_count.and_then(|c| u64::try_from(c).ok());
        b.byte_size = s.column_size_bytes.and_then(|c| u64::try_from(c).ok());
    }
    // Identity partitions: every row of a file written under the current spec has
    // the file's partition value.
    let spec = table.partition.first().map(|p| p.partition_id);
    let keys: Vec<i64> = table
        .partition
        .iter()
        .filter(|p| p.transform == "identity" && p.column_id == column)
        .map(|p| p.partition_key_index)
        .collect();
    for pv in partition_values
        .iter()
        .filter(|pv| keys.contains(&pv.partition_key_index))
    {
        let Some((file, b)) =
            position(files, pv.data_file_id).and_then(|i| files.get(i).zip(bounds.get_mut(i)))
        else {
            continue;
        };
        if file.partition_id != spec {
            continue;
        }
        if let Some(v) = pv
            .partition_value
            .as_deref()
            .and_then(|t| parse_stat(t, dt))
        {
            if b.min.is_none() {
                b.min = Some(v.clone());
            }
            if b.max.is_none() {
                b.max = Some(v);
            }
        }
    }
    let null_counts: Vec<Option<u64>> = bounds.iter().map(|b| b.null_count).collect();
    let byte_sizes: Vec<Option<u64>> = bounds.iter().map(|b| b.byte_size).collect();
    let (min, max): (Vec<_>, Vec<_>) = bounds.into_iter().map(|b| (b.min, b.max)).unzip();
    // A value that does not fit the column's type makes the whole column unknown.
    let to_array = |values: Vec<Option<ScalarValue>>| -> ArrayRef {
        let array = ScalarValue::try_from(dt).ok().and_then(|null| {
            ScalarValue::iter_to_array(
                values
                    .into_iter()
                    .map(|v| v.unwrap_or_else(|| null.clone())),
            )
            .ok()
        });
        match array {
            Some(a) if a.data_type() == dt => a,
            _ => new_null_array(dt, n),
        }
    };
    ColumnBounds {
        min: to_array(min),
        max: to_array(max),
        null_counts: Arc::new(UInt64Array::from(null_counts)),
        byte_sizes,
    }
}

/// Make sure `files` holds the bounds of `columns`, reading from `store` those it has
/// not seen yet (one query for all of them).
pub async fn load_bounds(
    store: &MetadataStore,
    table: &TableEntry,
    files: &TableFiles,
    columns: &[ColumnId],
) -> Result<()> {
    let missing: Vec<ColumnId> = columns
        .iter()
        .copied()
        .filter(|c| files.bounds(*c).is_none())
        .collect();
    let (Some(first), Some(last)) = (files.files.first(), files.files.last()) else {
        return Ok(());
    };
    if missing.is_empty() {
        return Ok(());
    }
    let ids = first.data_file_id..=last.data_file_id;
    let (stats, partition_values) = tokio::try_join!(
        store.file_column_stats(table.id(), &missing, ids.clone()),
        async {
            if uses_partition_values(table, &missing) {
                store.file_partition_values(table.id(), ids.clone()).await
            } else {
                Ok(Vec::new())
            }
        }
    )?;
    for (node, field) in table.columns.iter().zip(table.arrow_schema.fields()) {
        let id = node.row.column_id;
        if missing.contains(&id) {
            let bounds = column_bounds(
                table,
                &files.files,
                id,
                field.data_type(),
                &stats,
                &partition_values,
            );
            files.set_bounds(id, Arc::new(bounds));
        }
    }
    Ok(())
}

impl CatalogFileStats {
    /// The statistics of `columns` (from [`pruning_columns`]) over `files`, read from
    /// `store` for the columns `files` has not seen yet.
    pub async fn load(
        store: &MetadataStore,
        table: &TableEntry,
        files: &TableFiles,
        columns: &[ColumnId],
    ) -> Result<Self> {
        load_bounds(store, table, files, columns).await?;
        let bounds = table
            .columns
            .iter()
            .zip(table.arrow_schema.fields())
            .filter(|(node, _)| columns.contains(&node.row.column_id))
            .filter_map(|(node, field)| {
                files
                    .bounds(node.row.column_id)
                    .map(|b| (field.name().clone(), b))
            })
            .collect();
        let row_counts = files
            .files
            .iter()
            .map(|f| u64::try_from(f.record_count).unwrap_or(0))
            .collect::<Vec<_>>();
        Ok(Self {
            bounds,
            row_counts: Arc::new(UInt64Array::from(row_counts)),
        })
    }
}

impl PruningStatistics for CatalogFileStats {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bounds.get(column.name()).map(|b| Arc::clone(&b.min))
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bounds.get(column.name()).map(|b| Arc::clone(&b.max))
    }

    fn num_containers(&self) -> usize {
        self.row_counts.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        self.bounds
            .get(column.name())
            .map(|b| Arc::clone(&b.null_counts))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::clone(&self.row_counts))
    }

    #[allow(clippy::mutable_key_type)]
    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}
