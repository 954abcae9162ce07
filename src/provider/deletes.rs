//! Row-level exclusions for one data file at one snapshot, turned into a Parquet
//! row selection before the file is opened.
//!
//! Three sources, all addressed by 0-based position in the data file (SPEC §9.3,
//! §8.3, §9.4): the visible positional delete file (ignoring positions deleted
//! after the snapshot when it carries `_ducklake_internal_snapshot_id`), inlined
//! deletions in `ducklake_inlined_delete_<table>`, and, for multi-snapshot files
//! whose `partial_max` is past the snapshot, rows inserted after it.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{
    ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use object_store::{ObjectStore, ObjectStoreExt};

use super::adapter::field_id;
use crate::error::{Error, Result};
use crate::spec::{DELETE_POS_FIELD_ID, SNAPSHOT_ID_COLUMN, SNAPSHOT_ID_FIELD_ID, SnapshotId};
use crate::storage::locate;

/// Read a small Parquet file fully into memory.
async fn read_parquet_bytes(store: &Arc<dyn ObjectStore>, url: &str) -> Result<bytes::Bytes> {
    let loc = locate(url)?;
    let data = store
        .get(&loc.path)
        .await
        .map_err(|e| Error::DataFile {
            path: url.to_string(),
            source: Box::new(e),
        })?
        .bytes()
        .await
        .map_err(|e| Error::DataFile {
            path: url.to_string(),
            source: Box::new(e),
        })?;
    Ok(data)
}

/// Read `(column with field id A, optional column with field id B)` as i64 pairs
/// from a Parquet file.
async fn read_i64_columns(
    store: &Arc<dyn ObjectStore>,
    url: &str,
    wanted: i64,
    wanted_name: &str,
    optional: i64,
    optional_name: &str,
) -> Result<Vec<(i64, Option<i64>)>> {
    let data = read_parquet_bytes(store, url).await?;
    let file_err = |e: &dyn std::fmt::Display| Error::DataFile {
        path: url.to_string(),
        source: e.to_string().into(),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(data).map_err(|e| file_err(&e))?;
    let schema = Arc::clone(builder.schema());
    let find = |id: i64, name: &str| {
        schema
            .fields()
            .iter()
            .position(|f| field_id(f) == Some(id))
            .or_else(|| schema.index_of(name).ok())
    };
    let main_idx = find(wanted, wanted_name).ok_or_else(|| Error::DataFile {
        path: url.to_string(),
        source: format!("no column '{wanted_name}' (field id {wanted})").into(),
    })?;
    let opt_idx = find(optional, optional_name);
    let mut roots = vec![main_idx];
    roots.extend(opt_idx);
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()
        .map_err(|e| file_err(&e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| file_err(&e))?;
        let main = batch
            .column_by_name(schema.field(main_idx).name())
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| file_err(&format!("column '{wanted_name}' is not BIGINT")))?;
        let opt = opt_idx.and_then(|i| {
            batch
                .column_by_name(schema.field(i).name())
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
        });
        for row in 0..batch.num_rows() {
            if main.is_null(row) {
                continue;
            }
            let snap = opt.and_then(|o| (!o.is_null(row)).then(|| o.value(row)));
            out.push((main.value(row), snap));
        }
    }
    Ok(out)
}

/// Positions deleted by a positional delete file as of snapshot `s` (entries
/// without a snapshot column count as deleted at the file's begin, which is <= s).
pub async fn delete_file_positions(
    store: &Arc<dyn ObjectStore>,
    url: &str,
    s: SnapshotId,
) -> Result<Vec<i64>> {
    Ok(delete_file_entries(store, url, s)
        .await?
        .into_iter()
        .filter(|(_, snap)| *snap <= s)
        .map(|(pos, _)| pos)
        .collect())
}

/// Every entry of a delete file as (position, deleting snapshot); positions of
/// files without a snapshot column get `begin` (the delete file's begin snapshot).
pub async fn delete_file_entries(
    store: &Arc<dyn ObjectStore>,
    url: &str,
    begin: SnapshotId,
) -> Result<Vec<(i64, SnapshotId)>> {
    let rows = read_i64_columns(
        store,
        url,
        i64::from(DELETE_POS_FIELD_ID),
        "pos",
        i64::from(SNAPSHOT_ID_FIELD_ID),
        SNAPSHOT_ID_COLUMN,
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|(pos, snap)| (pos, snap.unwrap_or(begin)))
        .collect())
}

/// Positions of rows inserted after `s` in a multi-snapshot (flushed/merged) file.
pub async fn rows_after_snapshot(
    store: &Arc<dyn ObjectStore>,
    url: &str,
    s: SnapshotId,
) -> Result<Vec<i64>> {
    let rows = read_i64_columns(
        store,
        url,
        i64::from(SNAPSHOT_ID_FIELD_ID),
        SNAPSHOT_ID_COLUMN,
        -1,
        "",
    )
    .await?;
    Ok(rows
        .into_iter()
        .enumerate()
        .filter(|(_, (snap, _))| *snap > s)
        .map(|(pos, _)| pos as i64)
        .collect())
}

/// A selection keeping every row of `row_count` except `deleted`.
pub fn selection_without(row_count: usize, deleted: &BTreeSet<i64>) -> RowSelection {
    let mut selectors = Vec::new();
    let mut next = 0usize;
    for &pos in deleted {
        let Ok(pos) = usize::try_from(pos) else {
            continue;
        };
        if pos >= row_count || pos < next {
            continue;
        }
        if pos > next {
            selectors.push(RowSelector::select(pos - next));
        }
        selectors.push(RowSelector::skip(1));
        next = pos + 1;
    }
    if next < row_count {
        selectors.push(RowSelector::select(row_count - next));
    }
    RowSelection::from(selectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_skips_deleted_positions() {
        let deleted: BTreeSet<i64> = [0, 2, 3, 9, 42].into_iter().collect();
        let sel = selection_without(10, &deleted);
        assert_eq!(sel.row_count(), 6);
        assert_eq!(sel.skipped_row_count(), 4);
    }
}
