//! `ducklake_flush_inlined_data`: move the rows DuckLake keeps inside the
//! catalog (data inlining, SPEC §8) to Parquet files, as one snapshot, the way
//! DuckDB 1.5.5 does (SPEC §8.4):
//!
//! - each inlined table with rows becomes one data file in the layout of its
//!   schema version, holding every row version (ended ones too) with its row id
//!   and the snapshot that inserted it, so time travel before the flush still
//!   answers the same; the rows that had ended become a delete file for it, each
//!   position with the snapshot that ended it;
//! - inlined deletions of Parquet rows are merged into the data file's delete
//!   file (a new cumulative one, with per-row snapshots);
//! - flushed rows leave the inlined tables; superseded inlined tables are
//!   dropped, the newest stays (empty) for later inserts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::catalog::{FIELD_ID_KEY, TableEntry};
use crate::commit::{ChangeSet, FlushedFile, InlinedFlush, NewDeleteFile, commit};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::provider::inlined::read_inlined_versions;
use crate::provider::partition::{PartitionSpec, PartitionedWriter};
use crate::spec::paths::resolve;
use crate::spec::{
    FileId, ROW_ID_COLUMN, ROW_ID_FIELD_ID, SNAPSHOT_ID_COLUMN, SNAPSHOT_ID_FIELD_ID, SnapshotId,
};
use crate::write::{WriteOptions, discard, write_delete_file};

/// A partition's values, as the catalog stores them.
type PartitionKey = Vec<Option<String>>;

/// What flushing one table did (DuckDB's result row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Schema of the table.
    pub schema_name: String,
    /// The table.
    pub table_name: String,
    /// Inlined row versions moved to Parquet (ended ones too, as DuckDB counts).
    pub rows_flushed: i64,
}

/// A table's `SET SORTED BY` keys, planned, over columns named by column id
/// ([`sort_column`]): the flushed rows of each inlined table are written in this
/// order (the row id breaking ties), as DuckDB writes them.
pub type SortKeys = HashMap<crate::spec::CatalogId, Vec<datafusion::logical_expr::SortExpr>>;

/// The name a sort key gives the column with id `column_id` (a renamed column
/// keeps its id, so keys written for the current names sort older layouts too).
pub fn sort_column(column_id: i64) -> String {
    format!("__lakeq_column_{column_id}")
}

/// Flush the inlined data of `tables` (as of the lake's latest snapshot) as one
/// snapshot. Tables without inlined data are left alone and not reported.
/// Tables with keys in `sort` have their flushed rows sorted by them.
pub async fn flush_inlined_data(
    lake: &Arc<Lake>,
    tables: &[Arc<TableEntry>],
    sort: &SortKeys,
) -> Result<Vec<FlushOutcome>> {
    if lake.read_only() {
        return Err(Error::Unsupported(
            "flushing inlined data of a lake attached read only".into(),
        ));
    }
    let store = lake.store();
    let upto = store.latest_snapshot().await?.snapshot_id;
    let metadata = store.metadata().await?;
    let mut changes = ChangeSet::new(upto);
    let mut outcomes = Vec::new();
    let planned = async {
        for entry in tables {
            let options = lake.write_options(&metadata, entry.row.schema_id, entry.id())?;
            let keys = sort.get(&entry.id()).map(Vec::as_slice).unwrap_or_default();
            let rows_flushed = flush_rows(lake, entry, upto, options, keys, &mut changes).await?;
            let deletions = flush_deletions(lake, entry, upto, &mut changes).await?;
            if rows_flushed.is_some() || deletions {
                outcomes.push(FlushOutcome {
                    schema_name: entry.schema_name.clone(),
                    table_name: entry.row.table_name.clone(),
                    rows_flushed: rows_flushed.unwrap_or(0),
                });
            }
        }
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = planned {
        discard(&changes.written_files()).await;
        return Err(e);
    }
    if changes.is_empty() {
        return Ok(outcomes);
    }
    if let Err(e) = commit(lake, &changes).await {
        discard(&changes.written_files()).await;
        return Err(e);
    }
    Ok(outcomes)
}

/// Plan the flush of `entry`'s inlined tables into `changes`; the row versions
/// flushed, `None` when it had no inlined table with rows.
async fn flush_rows(
    lake: &Arc<Lake>,
    entry: &Arc<TableEntry>,
    upto: SnapshotId,
    options: WriteOptions,
    sort: &[datafusion::logical_expr::SortExpr],
    changes: &mut ChangeSet,
) -> Result<Option<i64>> {
    let store = lake.store();
    let registered = store.inlined_tables(entry.id()).await?;
    let Some(newest) = registered.iter().map(|r| r.schema_version).max() else {
        return Ok(None);
    };
    let versions = store.schema_versions(entry.id()).await?;
    let all_columns = store.all_column_versions(entry.id()).await?;
    let first = all_columns
        .iter()
        .map(|c| c.begin_snapshot)
        .min()
        .unwrap_or(entry.row.begin_snapshot);
    let mut flushed: Option<i64> = None;
    for it in &registered {
        if !store.backend().table_exists(&it.table_name).await? {
            continue;
        }
        // The table as this inlined table's rows were written.
        let at = versions
            .iter()
            .find(|v| v.schema_version == it.schema_version)
            .map_or(first, |v| v.begin_snapshot);
        let layout: Vec<_> = all_columns
            .iter()
            .filter(|c| c.begin_snapshot <= at && c.end_snapshot.is_none_or(|e| at < e))
            .cloned()
            .collect();
        let then = entry.with_columns(&layout)?;
        let drop = it.schema_version != newest;
        let Some(rows) = read_inlined_versions(store, &then, &it.table_name, upto).await? else {
            if drop {
                changes.inlined_flushes.push(InlinedFlush {
                    table_id: entry.id(),
                    inlined_table: it.table_name.clone(),
                    schema_version: it.schema_version,
                    upto,
                    files: Vec::new(),
                    drop,
                });
            }
            continue;
        };
        *flushed.get_or_insert(0) += i64::try_from(rows.row_ids.len()).unwrap_or(i64::MAX);
        // Rows of a partitioned table go to one file per partition (DuckDB's
        // layout), under the table's current partitioning if this layout has
        // its key columns.
        let spec = PartitionSpec::of(&then).ok().flatten();
        let mut groups: Vec<(Option<PartitionKey>, Vec<u32>)> = Vec::new();
        let order = match sorted_order(&rows, &then, sort).await? {
            Some(order) => order,
            None => (0..rows.batch.num_rows()).collect(),
        };
        for row in order {
            let key = match &spec {
                Some(spec) => Some(spec.key_of(&rows.batch, row)?),
                None => None,
            };
            let index = u32::try_from(row).unwrap_or(u32::MAX);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(index),
                None => groups.push((key, vec![index])),
            }
        }
        let mut files = Vec::with_capacity(groups.len());
        for (key, members) in groups {
            let part = rows.take(&members)?;
            let partition = match (&spec, key) {
                (Some(spec), Some(values)) => Some((spec.partition_id, values)),
                _ => None,
            };
            match write_flushed(lake, &then, &part, options, partition).await {
                Ok(file) => files.push(file),
                Err(e) => {
                    for f in &files {
                        discard(std::slice::from_ref(&f.data)).await;
                        if let Some((d, _)) = &f.deletes {
                            discard(std::slice::from_ref(d)).await;
                        }
                    }
                    return Err(e);
                }
            }
        }
        changes.inlined_flushes.push(InlinedFlush {
            table_id: entry.id(),
            inlined_table: it.table_name.clone(),
            schema_version: it.schema_version,
            upto,
            files,
            drop,
        });
    }
    Ok(flushed)
}

/// The positions of `rows` (read in the layout `then`) in the order of the sort
/// keys `sort`, ties in row-id order; `None` without keys, or when a key names
/// a column this layout does not have (the rows then keep row-id order: the
/// order of a file is a layout choice, never part of an answer).
async fn sorted_order(
    rows: &crate::provider::inlined::InlinedRows,
    then: &TableEntry,
    sort: &[datafusion::logical_expr::SortExpr],
) -> Result<Option<Vec<usize>>> {
    use datafusion::logical_expr::col;
    use datafusion::prelude::SessionContext;
    const POSITION: &str = "__lakeq_position";
    if sort.is_empty() || rows.batch.num_columns() != then.columns.len() {
        return Ok(None);
    }
    let mut fields: Vec<Field> = then
        .columns
        .iter()
        .zip(rows.batch.schema().fields())
        .map(|(c, f)| Field::new(sort_column(c.row.column_id), f.data_type().clone(), true))
        .collect();
    fields.push(Field::new(POSITION, DataType::UInt64, false));
    let mut columns: Vec<ArrayRef> = rows.batch.columns().to_vec();
    columns.push(Arc::new(
        datafusion::arrow::array::UInt64Array::from_iter_values(0..rows.batch.num_rows() as u64),
    ));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    let mut keys = sort.to_vec();
    keys.push(col(POSITION).sort(true, false));
    let ctx = SessionContext::new();
    let sorted = match ctx.read_batch(batch)?.sort(keys) {
        Ok(df) => df.select_columns(&[POSITION])?.collect().await?,
        // A key over a column added after these rows were inlined.
        Err(_) => return Ok(None),
    };
    let mut order = Vec::with_capacity(rows.batch.num_rows());
    for b in &sorted {
        let positions = b
            .column(0)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::UInt64Array>()
            .ok_or_else(|| Error::Corrupt("flush: sorted positions are not integers".into()))?;
        order.extend(positions.values().iter().map(|&p| p as usize));
    }
    Ok(Some(order))
}

/// Write one inlined table's row versions as a data file (and the ended ones
/// as its delete file).
async fn write_flushed(
    lake: &Arc<Lake>,
    then: &TableEntry,
    rows: &crate::provider::inlined::InlinedRows,
    options: WriteOptions,
    partition: Option<(crate::spec::CatalogId, Vec<Option<String>>)>,
) -> Result<FlushedFile> {
    let with_id = |name: &str, id: i32| {
        Arc::new(
            Field::new(name, DataType::Int64, true)
                .with_metadata(HashMap::from([(FIELD_ID_KEY.to_string(), id.to_string())])),
        )
    };
    let mut fields: Vec<_> = then.file_schema.fields().iter().cloned().collect();
    fields.push(with_id(ROW_ID_COLUMN, ROW_ID_FIELD_ID));
    fields.push(with_id(SNAPSHOT_ID_COLUMN, SNAPSHOT_ID_FIELD_ID));
    let schema = Arc::new(Schema::new(fields));
    let mut columns: Vec<ArrayRef> = rows.batch.columns().to_vec();
    columns.push(Arc::new(Int64Array::from(rows.row_ids.clone())));
    columns.push(Arc::new(Int64Array::from(rows.snapshots.clone())));
    let batch = crate::write::conform(
        &RecordBatch::try_new_with_options(
            Arc::new(Schema::new(
                schema
                    .fields()
                    .iter()
                    .zip(&columns)
                    .map(|(f, c)| Field::new(f.name(), c.data_type().clone(), true))
                    .collect::<Vec<_>>(),
            )),
            columns,
            &Default::default(),
        )?,
        &schema,
    )?;
    let store = lake.object_store(&then.dir)?;
    let options = WriteOptions {
        target_file_size: u64::MAX,
        ..options
    };
    // A partition's file goes into its hive directory, as the writer names it.
    let spec = partition
        .as_ref()
        .and_then(|_| PartitionSpec::of(then).ok().flatten());
    let writer = PartitionedWriter::new(Arc::clone(&store), &then.dir, schema, spec, options);
    let writer = crate::write::write_all(writer, futures::stream::iter([Ok(batch)])).await?;
    let mut files: Vec<_> = writer.finish().await?.into_iter().map(|(f, _)| f).collect();
    let data = match (files.pop(), files.is_empty()) {
        (Some(f), true) => f,
        (f, _) => {
            discard(&files).await;
            discard(&f.into_iter().collect::<Vec<_>>()).await;
            return Err(Error::Corrupt(format!(
                "flushing the inlined rows of '{}' did not give one file",
                then.qualified_name()
            )));
        }
    };
    let ended: Vec<(i64, SnapshotId)> = rows
        .end_snapshots
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.map(|e| (i as i64, e)))
        .collect();
    let deletes = if ended.is_empty() {
        None
    } else {
        let positions: Vec<i64> = ended.iter().map(|e| e.0).collect();
        let snapshots: Vec<i64> = ended.iter().map(|e| e.1).collect();
        match write_delete_file(&store, &then.dir, &data.url, &positions, Some(&snapshots)).await {
            Ok(d) => Some((d, snapshots.iter().copied().min().unwrap_or(0))),
            Err(e) => {
                discard(std::slice::from_ref(&data)).await;
                return Err(e);
            }
        }
    };
    Ok(FlushedFile {
        partition,
        begin_snapshot: rows.snapshots.iter().copied().min().unwrap_or(0),
        partial_max: rows.snapshots.iter().copied().max().unwrap_or(0),
        row_id_start: rows.row_ids.iter().copied().min().unwrap_or(0),
        data,
        deletes,
    })
}

/// Plan the merge of `entry`'s inlined deletions of Parquet rows into delete
/// files; whether it had any.
async fn flush_deletions(
    lake: &Arc<Lake>,
    entry: &Arc<TableEntry>,
    upto: SnapshotId,
    changes: &mut ChangeSet,
) -> Result<bool> {
    let store = lake.store();
    let history = store.inlined_deletion_history(entry.id()).await?;
    let mut by_file: BTreeMap<FileId, Vec<(i64, SnapshotId)>> = BTreeMap::new();
    for (file, position, snapshot) in history {
        if snapshot <= upto {
            by_file.entry(file).or_default().push((position, snapshot));
        }
    }
    if by_file.is_empty() {
        return Ok(false);
    }
    let files: HashMap<FileId, _> = store
        .data_files(entry.id(), upto)
        .await?
        .into_iter()
        .map(|f| (f.data_file_id, f))
        .collect();
    let data_path = lake.data_path().to_string();
    for (file_id, inlined) in by_file {
        // Deletions of a file that is gone since need no delete file.
        let Some(file) = files.get(&file_id) else {
            continue;
        };
        let data_url = resolve(&entry.dir, Some(&file.path), file.path_is_relative);
        let mut previous: Vec<(i64, SnapshotId)> = Vec::new();
        let mut replaces = None;
        if let Some(d) = &file.delete_file {
            let url = resolve(&entry.dir, Some(&d.path), d.path_is_relative);
            let object_store = lake.object_store(&url)?;
            previous = crate::provider::deletes::delete_file_entries(
                &object_store,
                &url,
                d.begin_snapshot,
            )
            .await?;
            let relative = url.strip_prefix(&data_path).unwrap_or(&url).to_string();
            replaces = Some((d.delete_file_id, relative, d.begin_snapshot));
        }
        previous.extend(inlined);
        changes.delete_files.push(NewDeleteFile {
            table_id: entry.id(),
            data_file_id: file_id,
            data_file_url: data_url,
            table_dir: entry.dir.clone(),
            new_positions: Vec::new(),
            previous,
            replaces,
            flushed: true,
        });
    }
    changes.flushed_inlined_deletes.push((entry.id(), upto));
    Ok(true)
}
