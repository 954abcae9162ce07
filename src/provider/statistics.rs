//! Catalog statistics as DataFusion [`Statistics`], so the planner sees what it would
//! see on the raw Parquet files (row counts, null counts, min/max, sizes) without
//! opening one: join sides and orders, filter selectivity and metadata-only answers
//! (`count(*)`, `min`, `max`) come from `ducklake_file_column_stats`.
//!
//! A file's statistics describe every row it holds. When a scan reads fewer (a delete
//! file, inlined deletions, rows of a later snapshot), its bounds still hold but are no
//! longer exact. Min/max are given only for types whose catalog text is unambiguous
//! (those [`pruning`](super::pruning) prunes with); float bounds are never exact (NaN and
//! `-0.0` are not in them reliably), string bounds are never given (DuckDB may truncate
//! them). Nested columns get sizes only.

use std::sync::Arc;

use datafusion::arrow::array::{Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, ScalarValue, Statistics};

use super::pruning::{load_bounds, prunable};
use crate::catalog::TableEntry;
use crate::catalog::files::{ColumnBounds, TableFiles};
use crate::error::Result;
use crate::spec::FileId;
use crate::store::MetadataStore;

/// How far a column's catalog min/max can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bounds {
    /// Not given to the planner.
    None,
    /// Bounds for estimates only.
    Inexact,
    /// The true min/max of a file read whole.
    Exact,
}

/// One scanned column's catalog statistics.
#[derive(Debug)]
struct ColumnSource {
    bounds: Arc<ColumnBounds>,
    min_max: Bounds,
    /// Null counts are given (flat columns only).
    nulls: bool,
    /// Bytes per value of a fixed-width type.
    width: Option<usize>,
}

/// The catalog statistics of one scan's columns, ready to describe each file.
#[derive(Debug)]
pub struct ScanStatistics {
    /// Per field of the file schema, `None` when nothing is known.
    columns: Vec<Option<ColumnSource>>,
    /// Data file ids of [`TableFiles::files`], ascending, to find a file's position.
    file_ids: Vec<FileId>,
}

impl ScanStatistics {
    /// Statistics that know nothing beyond row counts, for a file schema of `width` fields.
    pub fn row_counts_only(width: usize) -> Self {
        Self {
            columns: (0..width).map(|_| None).collect(),
            file_ids: Vec::new(),
        }
    }

    /// Load the statistics of the `projection` (all when `None`) of `table`'s columns
    /// over `files`, from `store` where `files` has not cached them yet. `skip` names
    /// columns to leave unknown (geometry: WKB in the files, WKT above the scan).
    pub async fn load(
        store: &MetadataStore,
        table: &TableEntry,
        files: &TableFiles,
        projection: Option<&Vec<usize>>,
        skip: &std::collections::HashSet<String>,
    ) -> Result<Self> {
        let fields = table.arrow_schema.fields();
        let wanted: Vec<usize> = match projection {
            Some(p) => p.iter().copied().filter(|i| *i < fields.len()).collect(),
            None => (0..fields.len()).collect(),
        };
        let ids: Vec<_> = wanted
            .iter()
            .filter_map(|i| {
                let field = fields.get(*i)?;
                let node = table.columns.get(*i)?;
                (!skip.contains(field.name())).then_some(node.row.column_id)
            })
            .collect();
        load_bounds(store, table, files, &ids).await?;
        let mut columns: Vec<Option<ColumnSource>> = (0..fields.len()).map(|_| None).collect();
        for i in wanted {
            let (Some(field), Some(node)) = (fields.get(i), table.columns.get(i)) else {
                continue;
            };
            if skip.contains(field.name()) {
                continue;
            }
            let Some(bounds) = files.bounds(node.row.column_id) else {
                continue;
            };
            let dt = field.data_type();
            let min_max = if matches!(
                dt,
                DataType::Float16 | DataType::Float32 | DataType::Float64
            ) {
                Bounds::Inexact
            } else if prunable(dt) {
                Bounds::Exact
            } else {
                Bounds::None
            };
            if let Some(slot) = columns.get_mut(i) {
                *slot = Some(ColumnSource {
                    bounds,
                    min_max,
                    nulls: !dt.is_nested(),
                    width: dt.primitive_width(),
                });
            }
        }
        Ok(Self {
            columns,
            file_ids: files.files.iter().map(|f| f.data_file_id).collect(),
        })
    }

    /// The statistics of data file `file_id` read with `live_rows` of its rows; `whole`
    /// when the scan reads every row the file holds (its catalog statistics are then exact).
    pub fn file(&self, file_id: FileId, live_rows: usize, whole: bool) -> Statistics {
        let position = self.file_ids.binary_search(&file_id).ok();
        let precision = |v: usize| {
            if whole {
                Precision::Exact(v)
            } else {
                Precision::Inexact(v)
            }
        };
        let column_statistics = self
            .columns
            .iter()
            .map(|column| match column {
                Some(c) => c.statistics(position, live_rows, whole, &precision),
                None => ColumnStatistics::new_unknown(),
            })
            .collect();
        Statistics {
            num_rows: Precision::Exact(live_rows),
            total_byte_size: Precision::Absent,
            column_statistics,
        }
    }

    /// The statistics of a group of files (each from [`Self::file`]) or of groups,
    /// for a file schema `schema`.
    pub fn merge<'a>(
        parts: impl IntoIterator<Item = &'a Statistics>,
        schema: &Schema,
    ) -> Option<Statistics> {
        Statistics::try_merge_iter(parts, schema).ok()
    }
}

impl ColumnSource {
    /// This column's statistics in the file at `position` of the table's files.
    fn statistics(
        &self,
        position: Option<usize>,
        live_rows: usize,
        whole: bool,
        precision: &dyn Fn(usize) -> Precision<usize>,
    ) -> ColumnStatistics {
        let mut out = ColumnStatistics::new_unknown();
        if let Some(width) = self.width {
            out.byte_size = Precision::Exact(width.saturating_mul(live_rows));
        }
        let Some(p) = position else {
            return out;
        };
        if self.width.is_none()
            && let Some(Some(bytes)) = self.bounds.byte_sizes.get(p)
        {
            out.byte_size = Precision::Inexact(usize::try_from(*bytes).unwrap_or(usize::MAX));
        }
        if self.nulls
            && let Some(counts) = self
                .bounds
                .null_counts
                .as_any()
                .downcast_ref::<UInt64Array>()
            && p < counts.len()
            && counts.is_valid(p)
        {
            out.null_count = precision(usize::try_from(counts.value(p)).unwrap_or(usize::MAX));
        }
        if self.min_max != Bounds::None {
            let exact = whole && self.min_max == Bounds::Exact;
            let bound = |array: &Arc<dyn Array>| -> Precision<ScalarValue> {
                if p >= array.len() || array.is_null(p) {
                    return Precision::Absent;
                }
                match ScalarValue::try_from_array(array, p) {
                    Ok(v) if exact => Precision::Exact(v),
                    Ok(v) => Precision::Inexact(v),
                    Err(_) => Precision::Absent,
                }
            };
            out.min_value = bound(&self.bounds.min);
            out.max_value = bound(&self.bounds.max);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::Field;

    fn source(min_max: Bounds) -> ColumnSource {
        ColumnSource {
            bounds: Arc::new(ColumnBounds {
                min: Arc::new(Int64Array::from(vec![Some(1), None])),
                max: Arc::new(Int64Array::from(vec![Some(9), Some(5)])),
                null_counts: Arc::new(UInt64Array::from(vec![Some(2), None])),
                byte_sizes: vec![Some(100), None],
            }),
            min_max,
            nulls: true,
            width: Some(8),
        }
    }

    fn scan(min_max: Bounds) -> ScanStatistics {
        ScanStatistics {
            columns: vec![Some(source(min_max)), None],
            file_ids: vec![10, 20],
        }
    }

    #[test]
    fn a_whole_file_has_exact_statistics() {
        let s = scan(Bounds::Exact).file(10, 7, true);
        assert_eq!(s.num_rows, Precision::Exact(7));
        let c = &s.column_statistics[0];
        assert_eq!(c.min_value, Precision::Exact(ScalarValue::Int64(Some(1))));
        assert_eq!(c.max_value, Precision::Exact(ScalarValue::Int64(Some(9))));
        assert_eq!(c.null_count, Precision::Exact(2));
        assert_eq!(c.byte_size, Precision::Exact(56));
        assert_eq!(s.column_statistics[1], ColumnStatistics::new_unknown());
    }

    #[test]
    fn deleted_rows_leave_bounds_inexact() {
        let s = scan(Bounds::Exact).file(10, 5, false);
        assert_eq!(s.num_rows, Precision::Exact(5));
        let c = &s.column_statistics[0];
        assert_eq!(c.min_value, Precision::Inexact(ScalarValue::Int64(Some(1))));
        assert_eq!(c.null_count, Precision::Inexact(2));
    }

    #[test]
    fn unknown_values_stay_absent() {
        // File 20 has no minimum and no null count; file 30 is not in the catalog.
        let stats = scan(Bounds::Exact);
        let c = &stats.file(20, 3, true).column_statistics[0];
        assert_eq!(c.min_value, Precision::Absent);
        assert_eq!(c.max_value, Precision::Exact(ScalarValue::Int64(Some(5))));
        assert_eq!(c.null_count, Precision::Absent);
        let c = &stats.file(30, 3, true).column_statistics[0];
        assert_eq!(c.max_value, Precision::Absent);
        assert_eq!(c.byte_size, Precision::Exact(24));
    }

    #[test]
    fn inexact_kinds_never_become_exact() {
        let c = &scan(Bounds::Inexact).file(10, 7, true).column_statistics[0];
        assert_eq!(c.max_value, Precision::Inexact(ScalarValue::Int64(Some(9))));
        let c = &scan(Bounds::None).file(10, 7, true).column_statistics[0];
        assert_eq!(c.max_value, Precision::Absent);
    }

    #[test]
    fn merged_files_keep_the_widest_bounds() {
        let stats = scan(Bounds::Exact);
        let a = stats.file(10, 7, true);
        let b = stats.file(20, 3, true);
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ]);
        let merged = ScanStatistics::merge([&a, &b], &schema).expect("merges");
        assert_eq!(merged.num_rows, Precision::Exact(10));
        let c = &merged.column_statistics[0];
        // One file's minimum is unknown: so is the group's.
        assert_eq!(c.min_value, Precision::Absent);
        assert_eq!(c.max_value, Precision::Exact(ScalarValue::Int64(Some(9))));
    }
}
