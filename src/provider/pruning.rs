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
//! [`PruningPredicate`]: datafusion::physical_optimizer::pruning::PruningPredicate

use std::collections::{HashMap, HashSet};

use datafusion::arrow::array::{ArrayRef, BooleanArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::Expr;

use crate::catalog::TableEntry;
use crate::spec::rows::{DataFileRow, FileColumnStatsRow, FilePartitionValueRow};
use crate::spec::values::parse_stat;
use crate::spec::{ColumnId, FileId};

/// Min/max statistics of one column in one file.
#[derive(Debug, Clone, Default)]
struct Bounds {
    min: Option<ScalarValue>,
    max: Option<ScalarValue>,
    null_count: Option<u64>,
}

/// Catalog statistics of a set of candidate files.
#[derive(Debug)]
pub struct CatalogFileStats {
    schema: SchemaRef,
    /// Per top-level column name: bounds per file (same order as the files).
    bounds: HashMap<String, Vec<Bounds>>,
    row_counts: Vec<u64>,
}

/// Whether min/max strings of this type are reliable enough to prune with.
fn prunable(dt: &DataType) -> bool {
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
        .filter(|(_, f)| used.contains(f.name().as_str()) && prunable(f.data_type()))
        .map(|(c, _)| c.row.column_id)
        .collect()
}

/// Whether any of `columns` is an identity partition key of `table` (its files' partition
/// values then bound the column too).
pub fn uses_partition_values(table: &TableEntry, columns: &[ColumnId]) -> bool {
    table
        .partition
        .iter()
        .any(|p| p.transform == "identity" && columns.contains(&p.column_id))
}

impl CatalogFileStats {
    /// Collect the statistics of `files` (in order).
    pub fn new(
        table: &TableEntry,
        files: &[DataFileRow],
        stats: &[FileColumnStatsRow],
        partition_values: &[FilePartitionValueRow],
    ) -> Self {
        let schema = table.arrow_schema.clone();
        let index: HashMap<FileId, usize> = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.data_file_id, i))
            .collect();
        let mut by_column: HashMap<ColumnId, (String, DataType)> = HashMap::new();
        for (node, field) in table.columns.iter().zip(schema.fields()) {
            if prunable(field.data_type()) {
                by_column.insert(
                    node.row.column_id,
                    (field.name().clone(), field.data_type().clone()),
                );
            }
        }
        let mut bounds: HashMap<String, Vec<Bounds>> = by_column
            .values()
            .map(|(name, _)| (name.clone(), vec![Bounds::default(); files.len()]))
            .collect();
        for s in stats {
            let (Some(&i), Some((name, dt))) =
                (index.get(&s.data_file_id), by_column.get(&s.column_id))
            else {
                continue;
            };
            if let Some(b) = bounds.get_mut(name).and_then(|v| v.get_mut(i)) {
                b.min = s.min_value.as_deref().and_then(|t| parse_stat(t, dt));
                b.max = s.max_value.as_deref().and_then(|t| parse_stat(t, dt));
                b.null_count = s.null_count.and_then(|n| u64::try_from(n).ok());
            }
        }
        // Identity partitions: every row of the file has the partition value.
        let identity: HashMap<i64, ColumnId> = table
            .partition
            .iter()
            .filter(|p| p.transform == "identity")
            .map(|p| (p.partition_key_index, p.column_id))
            .collect();
        for pv in partition_values {
            let Some(&i) = index.get(&pv.data_file_id) else {
                continue;
            };
            let file_spec_matches =
                files[i].partition_id == table.partition.first().map(|p| p.partition_id);
            let (true, Some(col), Some(value)) = (
                file_spec_matches,
                identity.get(&pv.partition_key_index),
                pv.partition_value.as_deref(),
            ) else {
                continue;
            };
            let Some((name, dt)) = by_column.get(col) else {
                continue;
            };
            if let (Some(v), Some(b)) = (
                parse_stat(value, dt),
                bounds.get_mut(name).and_then(|v| v.get_mut(i)),
            ) {
                if b.min.is_none() {
                    b.min = Some(v.clone());
                }
                if b.max.is_none() {
                    b.max = Some(v);
                }
            }
        }
        let row_counts = files
            .iter()
            .map(|f| u64::try_from(f.record_count).unwrap_or(0))
            .collect();
        Self {
            schema,
            bounds,
            row_counts,
        }
    }

    fn values(
        &self,
        column: &Column,
        pick: impl Fn(&Bounds) -> Option<ScalarValue>,
    ) -> Option<ArrayRef> {
        let bounds = self.bounds.get(column.name())?;
        let dt = self
            .schema
            .field_with_name(column.name())
            .ok()?
            .data_type()
            .clone();
        let null = ScalarValue::try_from(&dt).ok()?;
        let values = bounds
            .iter()
            .map(|b| pick(b).unwrap_or_else(|| null.clone()));
        ScalarValue::iter_to_array(values).ok()
    }
}

impl PruningStatistics for CatalogFileStats {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.values(column, |b| b.min.clone())
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.values(column, |b| b.max.clone())
    }

    fn num_containers(&self) -> usize {
        self.row_counts.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let bounds = self.bounds.get(column.name())?;
        Some(std::sync::Arc::new(UInt64Array::from(
            bounds.iter().map(|b| b.null_count).collect::<Vec<_>>(),
        )))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(std::sync::Arc::new(UInt64Array::from(
            self.row_counts.clone(),
        )))
    }

    #[allow(clippy::mutable_key_type)]
    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}
