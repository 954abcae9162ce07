//! Statistics rows: per-file column statistics, partition values and the
//! table-level bounds merged from them.

use std::collections::HashMap;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::super::ChangeSet;
use crate::error::Result;
use crate::lake::Lake;
use crate::spec::rows::DataFileRow;
use crate::spec::types::DuckLakeType;
use crate::spec::values::parse_stat;
use crate::spec::{CatalogId, ColumnId, FileId, SnapshotId};
use crate::store::{Literal, SqlBackend};
use crate::write::{ColumnStats, WrittenFile};

/// What is known about a column's values.
#[derive(Debug, Clone)]
pub(super) enum Bound {
    /// No non-null value at all.
    Empty,
    /// Every non-null value lies in `[min, max]`.
    Known(ScalarValue, ScalarValue),
    /// Nothing is known (bounds written as NULL).
    Unknown,
}

/// Table-level statistics of one column while merging new files in.
#[derive(Debug, Clone)]
pub(super) struct ColumnBounds {
    pub(super) contains_null: Option<bool>,
    pub(super) contains_nan: Option<bool>,
    pub(super) bounds: Bound,
}

impl ColumnBounds {
    pub(super) fn merge(&mut self, has_null: bool, has_nan: Option<bool>, file: Bound) {
        self.contains_null = self.contains_null.map(|n| n || has_null);
        self.contains_nan = match (self.contains_nan, has_nan) {
            (Some(a), Some(b)) => Some(a || b),
            (a, b) => a.or(b),
        };
        self.bounds = match (std::mem::replace(&mut self.bounds, Bound::Unknown), file) {
            (Bound::Unknown, _) | (_, Bound::Unknown) => Bound::Unknown,
            (Bound::Empty, x) | (x, Bound::Empty) => x,
            (Bound::Known(a_min, a_max), Bound::Known(b_min, b_max)) => {
                match (a_min.partial_cmp(&b_min), a_max.partial_cmp(&b_max)) {
                    (Some(lo), Some(hi)) => Bound::Known(
                        if lo.is_le() { a_min } else { b_min },
                        if hi.is_ge() { a_max } else { b_max },
                    ),
                    _ => Bound::Unknown,
                }
            }
        };
    }
}

/// Merge one new file's (or inlined insert's) statistics of a leaf column into
/// the table's. A column the table had rows for but no statistics is unknown.
pub(super) fn merge_column_stats(
    merged: &mut HashMap<ColumnId, ColumnBounds>,
    types: &HashMap<ColumnId, DataType>,
    had_rows: bool,
    cs: &ColumnStats,
) {
    let dt = types.get(&cs.column_id);
    let parse = |v: &Option<String>| {
        v.as_deref()
            .and_then(|t| dt.and_then(|dt| parse_stat(t, dt)))
    };
    let bounds = if cs.value_count == 0 {
        Bound::Empty
    } else {
        match (parse(&cs.min_value), parse(&cs.max_value)) {
            (Some(min), Some(max)) => Bound::Known(min, max),
            _ => Bound::Unknown,
        }
    };
    let entry = merged.entry(cs.column_id).or_insert_with(|| ColumnBounds {
        contains_null: Some(false),
        contains_nan: None,
        bounds: if had_rows {
            Bound::Unknown
        } else {
            Bound::Empty
        },
    });
    entry.merge(cs.null_count > 0, cs.contains_nan, bounds);
}

/// The `ducklake_file_partition_value` rows of a new data file (`None` for no
/// key parts).
pub(super) fn partition_values_sql(
    b: &dyn SqlBackend,
    data_file_id: FileId,
    table_id: CatalogId,
    values: &[Option<String>],
) -> Option<String> {
    let rows: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "({data_file_id}, {table_id}, {i}, {})",
                b.literal(&v.clone().into())
            )
        })
        .collect();
    (!rows.is_empty()).then(|| {
        format!(
            "INSERT INTO {} VALUES {}",
            b.table("ducklake_file_partition_value"),
            rows.join(", ")
        )
    })
}

/// A `ducklake_table_column_stats` row's values.
pub(super) fn table_column_stats_values(
    b: &dyn SqlBackend,
    table_id: CatalogId,
    column_id: ColumnId,
    m: &ColumnBounds,
) -> String {
    let lit = |v: Literal| b.literal(&v);
    let text = |v: &ScalarValue| crate::spec::values::format_duckdb_text(v).ok().flatten();
    let (min, max) = match &m.bounds {
        Bound::Known(min, max) => (text(min), text(max)),
        Bound::Empty | Bound::Unknown => (None, None),
    };
    format!(
        "({table_id}, {column_id}, {}, {}, {}, {}, NULL)",
        lit(m.contains_null.into()),
        lit(m.contains_nan.into()),
        lit(min.into()),
        lit(max.into())
    )
}

/// The table-level bounds of `table_id`'s leaf columns over its files live at
/// `latest`, without the files `removed` and with the files `added`. A column some
/// live file has no statistics for (added after it was written) is unknown.
pub(super) async fn live_column_bounds(
    lake: &Lake,
    table_id: CatalogId,
    latest: SnapshotId,
    types: &HashMap<ColumnId, DataType>,
    removed: &[FileId],
    added: &[&WrittenFile],
) -> Result<std::collections::BTreeMap<ColumnId, ColumnBounds>> {
    let store = lake.store();
    let files: Vec<DataFileRow> = store
        .data_files(table_id, latest)
        .await?
        .into_iter()
        .filter(|f| !removed.contains(&f.data_file_id))
        .collect();
    let columns: Vec<ColumnId> = types.keys().copied().collect();
    let stats = match (files.first(), files.last()) {
        (Some(first), Some(last)) => {
            store
                .file_column_stats(table_id, &columns, first.data_file_id..=last.data_file_id)
                .await?
        }
        _ => Vec::new(),
    };
    let live: std::collections::HashSet<FileId> = files.iter().map(|f| f.data_file_id).collect();
    let parse = |id: ColumnId, v: &Option<String>| {
        v.as_deref()
            .and_then(|t| types.get(&id).and_then(|dt| parse_stat(t, dt)))
    };
    let bound = |id: ColumnId, values: i64, min: &Option<String>, max: &Option<String>| {
        if values == 0 {
            Bound::Empty
        } else {
            match (parse(id, min), parse(id, max)) {
                (Some(min), Some(max)) => Bound::Known(min, max),
                _ => Bound::Unknown,
            }
        }
    };
    let mut out: std::collections::BTreeMap<ColumnId, ColumnBounds> = columns
        .iter()
        .map(|id| {
            (
                *id,
                ColumnBounds {
                    contains_null: Some(false),
                    contains_nan: None,
                    bounds: Bound::Empty,
                },
            )
        })
        .collect();
    let mut seen: HashMap<ColumnId, usize> = HashMap::new();
    for row in stats.iter().filter(|r| live.contains(&r.data_file_id)) {
        let Some(m) = out.get_mut(&row.column_id) else {
            continue;
        };
        *seen.entry(row.column_id).or_default() += 1;
        let values = row.value_count.unwrap_or(1);
        m.merge(
            row.null_count.is_none_or(|n| n > 0),
            row.contains_nan,
            bound(row.column_id, values, &row.min_value, &row.max_value),
        );
    }
    for (id, m) in &mut out {
        if seen.get(id).copied().unwrap_or(0) < files.len() {
            m.bounds = Bound::Unknown;
            m.contains_null = None;
        }
    }
    for file in added {
        for cs in &file.column_stats {
            if let Some(m) = out.get_mut(&cs.column_id) {
                m.merge(
                    cs.null_count > 0,
                    cs.contains_nan,
                    bound(cs.column_id, cs.value_count, &cs.min_value, &cs.max_value),
                );
            }
        }
    }
    Ok(out)
}

/// Arrow types of a table's leaf columns (to parse and compare statistics).
pub(super) async fn leaf_types(
    lake: &Lake,
    c: &ChangeSet,
    table_id: CatalogId,
    new_table_ids: &[CatalogId],
    latest: SnapshotId,
) -> Result<HashMap<ColumnId, DataType>> {
    let mut types = HashMap::new();
    let add = |types: &mut HashMap<ColumnId, DataType>, id: ColumnId, ty: &str| {
        if let Ok(dt) = ty.parse::<DuckLakeType>().and_then(|t| t.to_arrow()) {
            types.insert(id, dt);
        }
    };
    let new_table = new_table_ids
        .iter()
        .zip(&c.new_tables)
        .find_map(|(id, table)| (*id == table_id).then_some(table));
    if let Some(new_table) = new_table {
        let mut all = Vec::new();
        for col in &new_table.columns {
            col.walk(None, &mut all);
        }
        for (_, col) in all {
            add(&mut types, col.column_id, &col.ty.to_string());
        }
    } else {
        for col in lake.store().table_columns(table_id, latest).await? {
            add(&mut types, col.column_id, &col.column_type);
        }
    }
    Ok(types)
}

pub(super) fn file_stats_values(
    b: &dyn SqlBackend,
    data_file_id: FileId,
    table_id: CatalogId,
    cs: &ColumnStats,
) -> String {
    let lit = |v: Literal| b.literal(&v);
    format!(
        "({data_file_id}, {table_id}, {}, {}, {}, {}, {}, {}, {}, NULL)",
        cs.column_id,
        lit(cs.column_size_bytes.into()),
        cs.value_count,
        cs.null_count,
        lit(cs.min_value.clone().into()),
        lit(cs.max_value.clone().into()),
        lit(cs.contains_nan.into()),
    )
}
