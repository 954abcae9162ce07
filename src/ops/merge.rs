//! `ducklake_merge_adjacent_files`: rewrite runs of small adjacent data files of a
//! table as one file, as DuckDB 1.5.5 does (SPEC §15).
//!
//! Candidates are live files smaller than the lake's `target_file_size` (and
//! than `max_file_size`, at least `min_file_size` when given) with no delete
//! file and no inlined deletions. Files merge only with files of the same
//! partition (spec and values) written under the same table layout
//! (`ducklake_schema_versions`). In DuckDB's order (first snapshot, row id,
//! file id) a run takes the next file while it is still below the target size
//! (so the last file may take it over); files left out do not split a run. The merged file keeps
//! every row's id and snapshot (hidden `_ducklake_internal_snapshot_id`, and
//! `_ducklake_internal_row_id` when the run's row ids have gaps), so time travel
//! and the change feed read it as they read the sources. A table with
//! `SET SORTED BY` keys has its merged file written in the keys' order (row ids
//! breaking ties), as DuckDB writes it: when the run's row ids are contiguous
//! its rows are numbered anew in that order, as in DuckDB. All
//! merges of one call are one snapshot (`merge_adjacent:<table>`); the sources leave the catalog and
//! wait in `ducklake_files_scheduled_for_deletion` for `ducklake_cleanup_old_files`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::provider_as_source;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{LogicalPlanBuilder, col};
use futures::StreamExt;

use super::expire::PathResolver;
use super::flush::{SortKeys, sort_column};
use crate::catalog::files::TableFiles;
use crate::catalog::{CatalogSnapshot, FIELD_ID_KEY, TableEntry};
use crate::commit::{ChangeSet, MergedFile, commit};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::provider::table::{LakeTable, ROWID_COLUMN, SNAPSHOT_COLUMN};
use crate::spec::rows::DataFileRow;
use crate::spec::{ROW_ID_COLUMN, ROW_ID_FIELD_ID, SNAPSHOT_ID_COLUMN, SNAPSHOT_ID_FIELD_ID};
use crate::write::{DataFileWriter, WriteOptions, discard};

/// What a merge did to one table (a row of the function's result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeOutcome {
    /// Schema of the table.
    pub schema_name: String,
    /// The table.
    pub table_name: String,
    /// Source files rewritten.
    pub files_processed: i64,
    /// Files written.
    pub files_created: i64,
}

/// Limits of one merge call.
#[derive(Debug, Clone, Copy, Default)]
pub struct MergeLimits {
    /// Files at or above this size are left alone (default: `target_file_size`).
    pub max_file_size: Option<u64>,
    /// Files below this size are left alone (default: none).
    pub min_file_size: Option<u64>,
    /// At most this many merges are tried per table (default: no limit).
    pub max_compacted_files: Option<usize>,
}

/// A run of files to merge into one.
struct Run<'a> {
    files: Vec<&'a DataFileRow>,
    partition: Option<(i64, Vec<Option<String>>)>,
    /// Whether the files were written under the table's current layout; if not,
    /// the merged file is written in theirs (time travel still reads every column).
    latest_layout: bool,
}

/// Merge adjacent small files of `tables` (of `snapshot`), as one snapshot.
/// Tables with keys in `sort` (over columns named by [`sort_column`]) have each
/// merged file sorted by them.
pub async fn merge_adjacent_files(
    state: &SessionState,
    lake: &Arc<Lake>,
    snapshot: &CatalogSnapshot,
    tables: &[Arc<TableEntry>],
    limits: MergeLimits,
    sort: &SortKeys,
) -> Result<Vec<MergeOutcome>> {
    if lake.read_only() {
        return Err(Error::Unsupported(
            "merging files of a lake attached read only".into(),
        ));
    }
    let metadata = lake.store().metadata().await?;
    let paths = PathResolver::load(lake).await?;
    let mut changes = ChangeSet::new(snapshot.snapshot.snapshot_id);
    let mut outcomes = Vec::new();
    for entry in tables {
        let options = lake.write_options(&metadata, entry.row.schema_id, entry.id())?;
        let files = lake
            .table_files(entry.id(), snapshot.snapshot.snapshot_id)
            .await?;
        let runs = plan_runs(lake, entry, &files, options.target_file_size, limits).await?;
        if runs.is_empty() {
            continue;
        }
        if LakeTable::virtual_columns(entry).len() < 2 {
            return Err(Error::Unsupported(format!(
                "merging files of '{}': a column named rowid or snapshot_id hides the row ids",
                entry.qualified_name()
            )));
        }
        for run in &runs {
            let run_entry = if run.latest_layout {
                Arc::clone(entry)
            } else {
                table_as_written(lake, entry, run).await?
            };
            let keys = sort.get(&entry.id()).map(Vec::as_slice).unwrap_or_default();
            match write_run(state, lake, &run_entry, run, options, keys).await {
                Ok(merged) => {
                    // DuckDB reports one row per merged file.
                    outcomes.push(MergeOutcome {
                        schema_name: entry.schema_name.clone(),
                        table_name: entry.row.table_name.clone(),
                        files_processed: run.files.len() as i64,
                        files_created: 1,
                    });
                    changes.merges.push(MergedFile {
                        sources: run
                            .files
                            .iter()
                            .map(|f| {
                                let absolute =
                                    paths.absolute(entry.id(), &f.path, f.path_is_relative);
                                let s = paths.scheduled(f.data_file_id, &absolute);
                                (s.id, s.path, s.relative)
                            })
                            .collect(),
                        ..merged
                    });
                }
                Err(e) => {
                    discard(&changes.written_files()).await;
                    return Err(e);
                }
            }
        }
    }
    if changes.merges.is_empty() {
        return Ok(outcomes);
    }
    if let Err(e) = commit(lake, &changes).await {
        discard(&changes.written_files()).await;
        return Err(e);
    }
    Ok(outcomes)
}

/// The runs of `entry`'s files worth merging.
async fn plan_runs<'a>(
    lake: &Lake,
    entry: &TableEntry,
    files: &'a TableFiles,
    target: u64,
    limits: MergeLimits,
) -> Result<Vec<Run<'a>>> {
    let store = lake.store();
    // The table layout each file was written under: the last schema change at or
    // before its first snapshot.
    let versions = store.schema_versions(entry.id()).await?;
    let layout_of = |f: &DataFileRow| {
        versions
            .iter()
            .filter(|v| v.begin_snapshot <= f.begin_snapshot)
            .map(|v| v.schema_version)
            .max()
    };
    let mut values: HashMap<i64, Vec<Option<String>>> = HashMap::new();
    if let (Some(first), Some(last)) = (files.files.first(), files.files.last())
        && files.files.iter().any(|f| f.partition_id.is_some())
    {
        let mut rows = store
            .file_partition_values(entry.id(), first.data_file_id..=last.data_file_id)
            .await?;
        rows.sort_by_key(|r| (r.data_file_id, r.partition_key_index));
        for r in rows {
            values
                .entry(r.data_file_id)
                .or_default()
                .push(r.partition_value);
        }
    }
    // DuckDB's order: by first snapshot, then row ids, then file id.
    let mut ordered: Vec<&DataFileRow> = files.files.iter().collect();
    ordered.sort_by_key(|f| (f.begin_snapshot, f.row_id_start, f.data_file_id));
    let max_size = limits.max_file_size.unwrap_or(target);
    // Group (partition, layout) → candidate files; files that are not candidates
    // (too large, with deletes) are left out and do not split a group.
    type Key = (Option<i64>, Vec<Option<String>>, Option<i64>);
    let mut groups: BTreeMap<Key, Vec<&DataFileRow>> = BTreeMap::new();
    for f in ordered {
        let size = u64::try_from(f.file_size_bytes).unwrap_or(u64::MAX);
        let candidate = f.delete_file.is_none()
            && !files.inlined_deletions.contains_key(&f.data_file_id)
            && f.encryption_key.is_none()
            && size < max_size
            && size < target
            && limits.min_file_size.is_none_or(|min| size >= min);
        if !candidate {
            continue;
        }
        let key = (
            f.partition_id,
            values.get(&f.data_file_id).cloned().unwrap_or_default(),
            layout_of(f),
        );
        groups.entry(key).or_default().push(f);
    }
    // Greedy runs, as DuckDB 1.5.5 (DuckLake d8a1881e, `GenerateCompactions`)
    // builds them: a run takes the next file while its size is still below the
    // target (the last file may overshoot it); `max_compacted_files` bounds the
    // number of runs tried (one-file runs count), over all groups.
    let max_runs = limits.max_compacted_files.unwrap_or(usize::MAX);
    let mut tried = 0usize;
    let mut runs = Vec::new();
    let current_layout = versions.iter().map(|v| v.schema_version).max();
    'groups: for ((partition_id, partition_values, layout), members) in groups {
        if members.len() < 2 {
            continue;
        }
        let partition = partition_id.map(|id| (id, partition_values.clone()));
        let mut rest = members.as_slice();
        while !rest.is_empty() {
            let mut size = 0u64;
            let mut taken = 0usize;
            for f in rest {
                if size >= target {
                    break;
                }
                let s = u64::try_from(f.file_size_bytes).unwrap_or(u64::MAX);
                size = size.saturating_add(s);
                taken += 1;
            }
            let taken = taken.max(1);
            let (run, tail) = rest.split_at(taken.min(rest.len()));
            if run.len() >= 2 {
                runs.push(Run {
                    files: run.to_vec(),
                    partition: partition.clone(),
                    latest_layout: layout == current_layout,
                });
            }
            rest = tail;
            tried += 1;
            if tried >= max_runs {
                break 'groups;
            }
        }
    }
    Ok(runs)
}

/// The table as it was when `run`'s files were written (its columns then), found
/// by id at the newest snapshot of the run.
async fn table_as_written(
    lake: &Arc<Lake>,
    entry: &Arc<TableEntry>,
    run: &Run<'_>,
) -> Result<Arc<TableEntry>> {
    let at = run
        .files
        .iter()
        .map(|f| f.begin_snapshot)
        .max()
        .ok_or_else(|| Error::Unsupported("merging an empty run of files".into()))?;
    let snapshot = lake.pin(lake.store().snapshot(at).await?).await?;
    snapshot
        .schemas
        .values()
        .flat_map(|s| s.tables.values())
        .find(|t| t.id() == entry.id())
        .cloned()
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "table {} of '{}' not found at snapshot {at}, where its files were written",
                entry.id(),
                entry.qualified_name()
            ))
        })
}

/// Read `run`'s rows in row-id order (or in the order of the sort keys `sort`,
/// row ids breaking ties) with their ids and snapshots and write them as one
/// file. The result's `sources` are filled by the caller.
async fn write_run(
    state: &SessionState,
    lake: &Arc<Lake>,
    entry: &Arc<TableEntry>,
    run: &Run<'_>,
    options: WriteOptions,
    sort: &[datafusion::logical_expr::SortExpr],
) -> Result<MergedFile> {
    let Some(&first) = run.files.first() else {
        return Err(Error::Unsupported("merging an empty run of files".into()));
    };
    // The keys name columns by id; a key over a column the run's layout does
    // not have leaves the file in row-id order.
    let aliases: Vec<_> = entry
        .columns
        .iter()
        .map(|c| {
            col(datafusion::common::Column::from_name(&c.row.column_name))
                .alias(sort_column(c.row.column_id))
        })
        .collect();
    let sorted = !sort.is_empty()
        && sort.iter().all(|k| {
            k.expr.column_refs().iter().all(|c| {
                entry
                    .columns
                    .iter()
                    .any(|n| sort_column(n.row.column_id) == c.name)
            })
        });
    // As DuckDB does, a merged file of contiguous row ids stores none: its rows
    // are numbered from the run's first id in file order, so sorted rows get
    // new ids in the sort order (DuckDB's answers for `rowid` after a sorted
    // merge). Runs with gaps keep each row's id.
    let contiguous = run
        .files
        .iter()
        .zip(run.files.iter().skip(1))
        .all(|(a, b)| a.row_id_start.checked_add(a.record_count) == Some(b.row_id_start));
    let partial_max = run
        .files
        .iter()
        .map(|f| {
            f.partial_max
                .unwrap_or(f.begin_snapshot)
                .max(f.begin_snapshot)
        })
        .max()
        .unwrap_or(first.begin_snapshot);
    let chosen = Arc::new(TableFiles::chosen(
        run.files.iter().map(|f| (*f).clone()).collect(),
        None,
        None,
    ));
    let table = LakeTable::new(Arc::clone(lake), Arc::clone(entry), partial_max)
        .with_files(chosen)
        .with_rowid();
    let mut columns: Vec<_> = entry
        .arrow_schema
        .fields()
        .iter()
        .map(|f| col(datafusion::common::Column::from_name(f.name())))
        .collect();
    let with_id = |name: &str, id: i32| {
        Arc::new(
            Field::new(name, DataType::Int64, true)
                .with_metadata(HashMap::from([(FIELD_ID_KEY.to_string(), id.to_string())])),
        )
    };
    let mut fields: Vec<_> = entry.file_schema.fields().iter().cloned().collect();
    if !contiguous {
        columns.push(col(ROWID_COLUMN));
        fields.push(with_id(ROW_ID_COLUMN, ROW_ID_FIELD_ID));
    }
    columns.push(col(SNAPSHOT_COLUMN));
    fields.push(with_id(SNAPSHOT_ID_COLUMN, SNAPSHOT_ID_FIELD_ID));
    let scan = LogicalPlanBuilder::scan("merge", provider_as_source(Arc::new(table)), None)?;
    let by_rowid = col(ROWID_COLUMN).sort(true, false);
    let plan = if sorted {
        let mut keyed: Vec<_> = entry
            .arrow_schema
            .fields()
            .iter()
            .map(|f| col(datafusion::common::Column::from_name(f.name())))
            .collect();
        keyed.extend([col(ROWID_COLUMN), col(SNAPSHOT_COLUMN)]);
        keyed.extend(aliases);
        let mut keys = sort.to_vec();
        keys.push(by_rowid);
        scan.project(keyed)?.sort(keys)?.project(columns)?.build()?
    } else {
        scan.sort(vec![by_rowid])?.project(columns)?.build()?
    };
    let df = datafusion::dataframe::DataFrame::new(state.clone(), plan);
    let stream = df.execute_stream().await?;
    let store = lake.object_store(&entry.dir)?;
    // One file per run: the run is below the target size already.
    let options = WriteOptions {
        target_file_size: u64::MAX,
        ..options
    };
    // The merged file of a partition goes into the partition's Hive folders, as
    // the files it replaces (and as DuckDB writes it).
    let subdir = match &run.partition {
        Some((partition_id, values)) => {
            let parts: Vec<_> = lake
                .store()
                .partition_specs(entry.id())
                .await?
                .into_iter()
                .filter(|p| p.partition_id == *partition_id)
                .collect();
            crate::provider::partition::hive_subdir(entry, &parts, values).unwrap_or_default()
        }
        None => String::new(),
    };
    let dir = format!("{}{subdir}", crate::spec::paths::normalize_dir(&entry.dir));
    let writer = DataFileWriter::new(store, &dir, Arc::new(Schema::new(fields)), options);
    let batches = stream.map(|batch| batch.map_err(Error::from));
    let writer = crate::write::write_all(writer, batches).await?;
    let mut files = writer.finish().await?;
    let expected: i64 = run.files.iter().map(|f| f.record_count).sum();
    let file = match (files.pop(), files.is_empty()) {
        (Some(mut file), true) if file.record_count == expected => {
            file.file_name = format!("{subdir}{}", file.file_name);
            file
        }
        (file, _) => {
            discard(&files).await;
            if let Some(f) = file {
                discard(std::slice::from_ref(&f)).await;
            }
            return Err(Error::Corrupt(format!(
                "merging {} files of '{}' read a different number of rows than the catalog \
                 records ({expected}); nothing was changed",
                run.files.len(),
                entry.qualified_name()
            )));
        }
    };
    Ok(MergedFile {
        table_id: entry.id(),
        sources: Vec::new(),
        file,
        // Visible from the oldest source's snapshot on; newer rows are filtered
        // by their own snapshot id.
        begin_snapshot: run
            .files
            .iter()
            .map(|f| f.begin_snapshot)
            .min()
            .unwrap_or(first.begin_snapshot),
        row_id_start: first.row_id_start,
        partial_max,
        partition: run.partition.clone(),
        rewrite: false,
        dropped_rows: 0,
    })
}
