//! `ducklake_rewrite_data_files`: rewrite data files that carry many deleted rows
//! without them, as DuckDB 1.5.5 does (SPEC §15).
//!
//! A live data file is a candidate when the fraction of its rows deleted (by its
//! delete file and inlined deletions) is at least the threshold: the call's
//! `delete_threshold`, else the lake's `rewrite_delete_threshold` option, else 0.95.
//! The candidates of a table (of one partition) are written as one new file with
//! their live rows and each row's id (`_ducklake_internal_row_id`); it begins at the
//! new snapshot. The sources and their delete files end there: time travel to
//! earlier snapshots still reads them, and `ducklake_cleanup_old_files` removes them
//! once those snapshots expire. One snapshot per call (`rewrite_delete:<table>`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::provider_as_source;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{LogicalPlanBuilder, col};
use futures::StreamExt;

use super::expire::PathResolver;
use super::merge::MergeOutcome;
use crate::catalog::files::TableFiles;
use crate::catalog::{CatalogSnapshot, FIELD_ID_KEY, TableEntry};
use crate::commit::{ChangeSet, MergedFile, commit};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::provider::table::{LakeTable, ROWID_COLUMN};
use crate::spec::rows::DataFileRow;
use crate::spec::{ROW_ID_COLUMN, ROW_ID_FIELD_ID};
use crate::write::{DataFileWriter, WriteOptions, discard};

/// A partition spec id and a file's values for its keys.
type PartitionKey = (i64, Vec<Option<String>>);

/// DuckDB's default `rewrite_delete_threshold`.
pub const DEFAULT_DELETE_THRESHOLD: f64 = 0.95;

/// The deleted fraction at which a file is rewritten: `given`, else the lake's
/// `rewrite_delete_threshold` for the table, else the default.
fn threshold(metadata: &crate::store::LakeMetadata, entry: &TableEntry, given: Option<f64>) -> f64 {
    given
        .or_else(|| {
            metadata
                .option("rewrite_delete_threshold", entry.row.schema_id, entry.id())
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(DEFAULT_DELETE_THRESHOLD)
}

/// Deleted rows of `file` at the snapshot `files` was loaded at.
fn deleted_rows(files: &TableFiles, file: &DataFileRow) -> i64 {
    let from_file = file.delete_file.as_ref().map_or(0, |d| d.delete_count);
    let inlined = files
        .inlined_deletions
        .get(&file.data_file_id)
        .map_or(0, BTreeSet::len);
    from_file.saturating_add(i64::try_from(inlined).unwrap_or(i64::MAX))
}

/// Rewrite the files of `tables` (of `snapshot`) with at least `delete_threshold`
/// (see `threshold`) of their rows deleted, as one snapshot.
pub async fn rewrite_data_files(
    state: &SessionState,
    lake: &Arc<Lake>,
    snapshot: &CatalogSnapshot,
    tables: &[Arc<TableEntry>],
    delete_threshold: Option<f64>,
) -> Result<Vec<MergeOutcome>> {
    if lake.read_only() {
        return Err(Error::Unsupported(
            "rewriting files of a lake attached read only".into(),
        ));
    }
    let metadata = lake.store().metadata().await?;
    let paths = PathResolver::load(lake).await?;
    let s = snapshot.snapshot.snapshot_id;
    let mut changes = ChangeSet::new(s);
    let mut outcomes = Vec::new();
    for entry in tables {
        let limit = threshold(&metadata, entry, delete_threshold);
        let files = lake.table_files(entry.id(), s).await?;
        // Candidates by partition (spec and values): files of different partitions
        // are never written into one file.
        let mut groups: BTreeMap<Option<PartitionKey>, Vec<&DataFileRow>> = BTreeMap::new();
        let partitioned = !entry.partition.is_empty();
        let values = if partitioned {
            let (Some(first), Some(last)) = (files.files.first(), files.files.last()) else {
                continue;
            };
            lake.store()
                .file_partition_values(entry.id(), first.data_file_id..=last.data_file_id)
                .await?
        } else {
            Vec::new()
        };
        for file in &files.files {
            let deleted = deleted_rows(&files, file);
            if deleted == 0 || file.record_count <= 0 {
                continue;
            }
            #[allow(clippy::cast_precision_loss)]
            let fraction = deleted as f64 / file.record_count as f64;
            if fraction < limit {
                continue;
            }
            let key = file.partition_id.map(|spec| {
                let mut keyed: Vec<(i64, Option<String>)> = values
                    .iter()
                    .filter(|v| v.data_file_id == file.data_file_id)
                    .map(|v| (v.partition_key_index, v.partition_value.clone()))
                    .collect();
                keyed.sort();
                (spec, keyed.into_iter().map(|(_, v)| v).collect())
            });
            groups.entry(key).or_default().push(file);
        }
        if groups.is_empty() {
            continue;
        }
        if LakeTable::virtual_columns(entry).is_empty() {
            return Err(Error::Unsupported(format!(
                "rewriting files of '{}': a column named rowid hides the row ids",
                entry.qualified_name()
            )));
        }
        for (partition, sources) in groups {
            match write_live_rows(state, lake, entry, s, &files, &sources).await {
                Ok(file) => {
                    let before: i64 = sources.iter().map(|f| f.record_count).sum();
                    outcomes.push(MergeOutcome {
                        schema_name: entry.schema_name.clone(),
                        table_name: entry.row.table_name.clone(),
                        files_processed: sources.len() as i64,
                        files_created: 1,
                    });
                    changes.merges.push(MergedFile {
                        table_id: entry.id(),
                        sources: sources
                            .iter()
                            .map(|f| {
                                let absolute =
                                    paths.absolute(entry.id(), &f.path, f.path_is_relative);
                                let scheduled = paths.scheduled(f.data_file_id, &absolute);
                                (scheduled.id, scheduled.path, scheduled.relative)
                            })
                            .collect(),
                        dropped_rows: before.saturating_sub(file.record_count),
                        file,
                        begin_snapshot: s,
                        row_id_start: 0,
                        partial_max: s,
                        partition,
                        rewrite: true,
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

/// Write the live rows of `sources` (with their row ids, in row-id order) as one file.
async fn write_live_rows(
    state: &SessionState,
    lake: &Arc<Lake>,
    entry: &Arc<TableEntry>,
    s: crate::spec::SnapshotId,
    files: &TableFiles,
    sources: &[&DataFileRow],
) -> Result<crate::write::WrittenFile> {
    let mut chosen = TableFiles::chosen(sources.iter().map(|f| (*f).clone()).collect(), None, None);
    for f in sources {
        if let Some(positions) = files.inlined_deletions.get(&f.data_file_id) {
            chosen
                .inlined_deletions
                .insert(f.data_file_id, positions.clone());
        }
    }
    let table = LakeTable::new(Arc::clone(lake), Arc::clone(entry), s)
        .with_files(Arc::new(chosen))
        .with_rowid();
    let mut columns: Vec<_> = entry
        .arrow_schema
        .fields()
        .iter()
        .map(|f| col(datafusion::common::Column::from_name(f.name())))
        .collect();
    columns.push(col(ROWID_COLUMN));
    let mut fields: Vec<_> = entry.file_schema.fields().iter().cloned().collect();
    fields.push(Arc::new(
        Field::new(ROW_ID_COLUMN, DataType::Int64, true).with_metadata(HashMap::from([(
            FIELD_ID_KEY.to_string(),
            ROW_ID_FIELD_ID.to_string(),
        )])),
    ));
    let plan = LogicalPlanBuilder::scan("rewrite", provider_as_source(Arc::new(table)), None)?
        .sort(vec![col(ROWID_COLUMN).sort(true, false)])?
        .project(columns)?
        .build()?;
    let df = datafusion::dataframe::DataFrame::new(state.clone(), plan);
    let stream = df.execute_stream().await?;
    let store = lake.object_store(&entry.dir)?;
    let metadata = lake.store().metadata().await?;
    let options = WriteOptions {
        target_file_size: u64::MAX,
        ..lake.write_options(&metadata, entry.row.schema_id, entry.id())?
    };
    let writer = DataFileWriter::new(store, &entry.dir, Arc::new(Schema::new(fields)), options);
    let batches = stream.map(|batch| batch.map_err(Error::from));
    let writer = crate::write::write_all(writer, batches).await?;
    let mut written = writer.finish().await?;
    let expected: i64 = sources
        .iter()
        .map(|f| f.record_count - deleted_rows(files, f))
        .sum();
    match (written.pop(), written.is_empty()) {
        (Some(file), true) if file.record_count == expected => Ok(file),
        (file, _) => {
            discard(&written).await;
            if let Some(f) = file {
                discard(std::slice::from_ref(&f)).await;
            }
            Err(Error::Corrupt(format!(
                "rewriting {} files of '{}' read a different number of live rows than the \
                 catalog records ({expected}); nothing was changed",
                sources.len(),
                entry.qualified_name()
            )))
        }
    }
}
