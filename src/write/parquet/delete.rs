//! Positional delete files (`file_path`, `pos`[, snapshot id]) in DuckDB's
//! shape, written through the data file writer.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, DictionaryArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema};
use object_store::ObjectStore;

use super::file_error;
use super::upload::delete_files;
use super::writer::DataFileWriter;
use crate::catalog::FIELD_ID_KEY;
use crate::error::Result;
use crate::spec::paths::normalize_dir;
use crate::spec::{
    DELETE_FILE_PATH_FIELD_ID, DELETE_POS_FIELD_ID, SNAPSHOT_ID_COLUMN, SNAPSHOT_ID_FIELD_ID,
};
use crate::write::{WriteOptions, WrittenFile};

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
