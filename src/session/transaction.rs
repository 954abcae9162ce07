//! Explicit transactions: `BEGIN` ... `COMMIT` / `ROLLBACK`, as DuckDB runs them
//! on a DuckLake: everything in between becomes one snapshot, or nothing.
//!
//! `BEGIN` forks the catalog of every writable attached lake
//! ([`crate::store::fork`]) and serves the session from the forks, so the
//! transaction's statements read their own changes and nobody else's (snapshot
//! isolation from the moment of `BEGIN`). Their commits all amend the one
//! snapshot after the fork's base ([`crate::lake::Lake::fork`]). `COMMIT`
//! applies each fork's changes to its real catalog in one catalog transaction;
//! `ROLLBACK` removes the data and delete files the transaction wrote and drops
//! the forks. Either way the session is served from the real catalogs again.
//!
//! If another writer committed to a lake after `BEGIN`, `COMMIT` applies nothing
//! to it and says so: lakeq does not yet rebase a transaction onto concurrent
//! commits (DuckDB merges those that do not conflict).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::ops::expire::PathResolver;
use crate::provider::catalog::{LakeCatalog, SharedViewPlanner};
use crate::spec::changes::{Change, format_changes, parse_changes};
use crate::spec::rows::SnapshotRow;
use crate::spec::{CatalogId, SnapshotId};
use crate::store::fork::CatalogFork;
use crate::store::quote_text;

/// A transaction in progress.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    /// The lakes it forked.
    pub(crate) forks: Vec<ForkedLake>,
    /// The error of the first statement that failed: DuckDB then refuses
    /// everything but `ROLLBACK` (and `COMMIT`, which rolls back).
    pub(crate) aborted: Option<String>,
    /// Session (non-lake) tables it created, dropped again if it rolls back.
    pub(crate) created_memory_tables: Vec<datafusion::common::TableReference>,
}

/// One attached lake inside a transaction.
#[derive(Debug)]
pub(crate) struct ForkedLake {
    /// The attached name.
    pub(crate) name: String,
    /// The real lake, served again after the transaction.
    pub(crate) real: Arc<LakeCatalog>,
    /// The lake over the fork, served during the transaction.
    pub(crate) work: Arc<LakeCatalog>,
    fork: CatalogFork,
    /// The snapshot the fork was taken at.
    base: SnapshotRow,
    /// Whether the transaction ended (`COMMIT` or `ROLLBACK`); one dropped
    /// before that is rolled back (see the `Drop` impl).
    ended: bool,
}

impl ForkedLake {
    /// Fork `real`'s catalog.
    pub(crate) async fn fork(
        real: Arc<LakeCatalog>,
        view_planner: SharedViewPlanner,
    ) -> Result<Self> {
        let backend = real.lake().store().backend();
        let fork = backend.fork().await?;
        let forked = async {
            let store = crate::store::MetadataStore::from_backend(Arc::clone(&fork.work));
            let base = store.latest_snapshot().await?;
            // Row ids from each table's next_row_id on are the transaction's:
            // DuckDB shows them as transaction-local ids until COMMIT.
            let next_row_ids = store
                .table_stats()
                .await?
                .into_iter()
                .map(|s| (s.table_id, s.next_row_id))
                .collect();
            let lake = real
                .lake()
                .fork(Arc::clone(&fork.work), base.snapshot_id, next_row_ids);
            let work = Arc::new(
                LakeCatalog::new(real.name(), lake, view_planner)
                    .await?
                    .with_string_views(real.string_views()),
            );
            Ok::<_, Error>((base, work))
        }
        .await;
        match forked {
            Ok((base, work)) => Ok(Self {
                name: real.name().to_string(),
                real,
                work,
                fork,
                base,
                ended: false,
            }),
            Err(e) => {
                backend.drop_fork(&fork).await;
                Err(e)
            }
        }
    }

    fn work_lake(&self) -> &Arc<Lake> {
        self.work.lake()
    }

    /// Apply the transaction's changes to the real catalog (one catalog
    /// transaction), then drop the fork. On failure the transaction's files are
    /// removed and the real lake is as it was.
    pub(crate) async fn commit(mut self) -> Result<()> {
        self.ended = true;
        let outcome = self.merge().await;
        match &outcome {
            Ok(garbage) => remove_files(garbage).await,
            Err(_) => self.remove_written_files().await,
        }
        self.real
            .lake()
            .store()
            .backend()
            .drop_fork(&self.fork)
            .await;
        outcome.map(|_| ())
    }

    /// After each statement of the transaction: net out what it created and
    /// dropped again, and remove those files at once (as DuckDB drops a
    /// transaction-local table's files with it).
    pub(crate) async fn tidy(&self) -> Result<()> {
        let snapshot = self.base.snapshot_id + 1;
        if self
            .work_lake()
            .store()
            .latest_snapshot()
            .await?
            .snapshot_id
            != snapshot
        {
            return Ok(());
        }
        if !self.has_netted_rows(snapshot).await? {
            return Ok(());
        }
        let garbage = self.compact(snapshot).await?;
        remove_files(&garbage).await;
        self.work_lake().forget_files();
        Ok(())
    }

    /// Whether anything begins and ends in the transaction's snapshot (or a
    /// file of it was scheduled for deletion): one catalog query, so that
    /// statements that only add (most of them) skip the net-out.
    async fn has_netted_rows(&self, snapshot: SnapshotId) -> Result<bool> {
        let scheduled = format!(
            "SELECT 1 FROM {} WHERE data_file_id >= {}",
            self.work_lake()
                .store()
                .backend()
                .table("ducklake_files_scheduled_for_deletion"),
            self.base.next_file_id
        );
        self.any_row(
            self.versioned_tables().await?.into_iter(),
            &format!("begin_snapshot = {snapshot} AND end_snapshot = {snapshot}"),
            Some(scheduled),
        )
        .await
    }

    /// Whether any of `tables` has a row meeting `condition` (or `extra`
    /// returns a row): one catalog query.
    async fn any_row<'a>(
        &self,
        tables: impl Iterator<Item = &'a (String, Vec<String>)>,
        condition: &str,
        extra: Option<String>,
    ) -> Result<bool> {
        let backend = self.work_lake().store().backend();
        let probes: Vec<String> = tables
            .map(|(table, _)| format!("SELECT 1 FROM {} WHERE {condition}", backend.table(table)))
            .chain(extra)
            .collect();
        if probes.is_empty() {
            return Ok(false);
        }
        let sql = format!("SELECT 1 WHERE EXISTS ({})", probes.join(" UNION ALL "));
        Ok(!backend.query(&sql).await?.is_empty())
    }

    /// Compact and merge the fork; returns the files the transaction wrote that
    /// nothing refers to any more (to remove once the merge succeeded).
    async fn merge(&self) -> Result<Vec<String>> {
        let work = self.work_lake().store();
        let snapshot = self.base.snapshot_id + 1;
        let created = work.latest_snapshot().await?.snapshot_id == snapshot;
        let garbage = if created {
            self.compact(snapshot).await?
        } else {
            Vec::new()
        };
        let keeps_snapshot = work.latest_snapshot().await?.snapshot_id == snapshot;
        if keeps_snapshot
            && let Some(text) = work.changes_since(self.base.snapshot_id).await?.first()
        {
            let changes = parse_changes(text)?;
            // As DuckDB: a transaction may not both delete from a table and
            // compact its files (the compaction would rewrite the rows deleted).
            let compacted = |t: &CatalogId| {
                changes.iter().any(|c| {
                    matches!(c, Change::MergeAdjacent(x) | Change::RewriteDelete(x)
                        | Change::CompactedTable(x) if x == t)
                })
            };
            if let Some(t) = changes.iter().find_map(|c| match c {
                Change::DeletedFromTable(t) | Change::InlinedDelete(t) if compacted(t) => Some(t),
                _ => None,
            }) {
                return Err(Error::Transaction(format!(
                    "lake '{}': this transaction both deletes from table {t} and compacts its \
                     files (CHECKPOINT, ducklake_merge_adjacent_files, ducklake_rewrite_data_files); \
                     DuckDB refuses that too, so nothing was applied",
                    self.name
                )));
            }
        }
        if keeps_snapshot {
            self.write_commit_info(snapshot).await?;
        }
        let real = self.real.lake().store();
        let conflict = |latest: &SnapshotRow| Error::CommitConflict {
            message: format!(
                "lake '{}' received snapshot {} from another writer after this transaction \
                 began at snapshot {}; lakeq does not merge a transaction with concurrent \
                 commits yet, so none of its changes to this lake were applied (run the \
                 transaction again)",
                self.name, latest.snapshot_id, self.base.snapshot_id
            ),
            retryable: true,
        };
        if keeps_snapshot {
            let latest = real.latest_snapshot().await?;
            if latest.snapshot_id != self.base.snapshot_id {
                return Err(conflict(&latest));
            }
        }
        match real.backend().merge_fork(&self.fork).await {
            Ok(()) => Ok(garbage),
            Err(e) => {
                // Lost the race for the snapshot id (its primary key): a conflict.
                let latest = real.latest_snapshot().await?;
                if keeps_snapshot && latest.snapshot_id != self.base.snapshot_id {
                    return Err(conflict(&latest));
                }
                Err(e)
            }
        }
    }

    /// Write what `set_commit_message` gave onto the transaction's snapshot in
    /// the fork, or refuse the commit when the lake requires a message and none
    /// was given (DuckDB's `require_commit_message`).
    async fn write_commit_info(&self, snapshot: SnapshotId) -> Result<()> {
        let lake = self.work_lake();
        let Some(info) = lake.commit_info() else {
            if lake.requires_commit_message().await? {
                return Err(crate::commit::commit_message_required(&self.name));
            }
            return Ok(());
        };
        let text = |v: &Option<String>| v.as_deref().map_or("NULL".to_string(), quote_text);
        let backend = lake.store().backend();
        backend
            .execute_batch(&format!(
                "UPDATE {} SET author = {}, commit_message = {}, commit_extra_info = {} \
                 WHERE snapshot_id = {snapshot};",
                backend.table("ducklake_snapshot_changes"),
                text(&info.author),
                text(&info.message),
                text(&info.extra_info)
            ))
            .await
    }

    /// Net out the transaction inside the fork, as DuckDB's transaction-local
    /// storage does: what it created and dropped again (schemas, tables, views,
    /// columns, data and delete files) leaves no row, no statistics and no
    /// entry in the change list; a transaction that changed nothing in the end
    /// leaves no snapshot. Returns the files that became unreferenced.
    async fn compact(&self, snapshot: SnapshotId) -> Result<Vec<String>> {
        let lake = self.work_lake();
        let backend = lake.store().backend();
        let t = |name: &str| backend.table(name);
        let paths = PathResolver::load(lake).await?;
        let first_id = self.base.next_catalog_id;
        let first_file = self.base.next_file_id;
        // Files written and replaced (or dropped) inside the transaction; files
        // registered by `ducklake_add_data_files` (with a name mapping) are not
        // lakeq's to remove.
        let mut garbage = Vec::new();
        for (table, written) in [
            ("ducklake_data_file", " AND mapping_id IS NULL"),
            ("ducklake_delete_file", ""),
        ] {
            for r in backend
                .query(&format!(
                    "SELECT table_id, path, path_is_relative FROM {} \
                     WHERE begin_snapshot = {snapshot} AND end_snapshot = {snapshot}{written}",
                    t(table)
                ))
                .await?
            {
                garbage.push(paths.absolute(r.i64(0)?, &r.text(1)?, r.bool_or(2, true)?));
            }
        }
        for r in backend
            .query(&format!(
                "SELECT path, path_is_relative FROM {} WHERE data_file_id >= {first_file}",
                t("ducklake_files_scheduled_for_deletion")
            ))
            .await?
        {
            garbage.push(paths.scheduled_absolute(&r.text(0)?, r.bool_or(1, true)?));
        }
        let mut sql = vec![format!(
            "DELETE FROM {} WHERE data_file_id >= {first_file}",
            t("ducklake_files_scheduled_for_deletion")
        )];
        // Inlined data and deletion tables of tables the transaction created and
        // dropped again go with them (registration and table).
        let gone_tables = format!(
            "table_id >= {first_id} AND table_id NOT IN (SELECT table_id FROM {})",
            t("ducklake_table")
        );
        for r in backend
            .query(&format!(
                "SELECT table_name FROM {} WHERE {gone_tables}",
                t("ducklake_inlined_data_tables")
            ))
            .await?
        {
            sql.push(format!("DROP TABLE IF EXISTS {}", t(&r.text(0)?)));
        }
        sql.push(format!(
            "DELETE FROM {} WHERE {gone_tables}",
            t("ducklake_inlined_data_tables")
        ));
        sql.extend(self.intermediate_inlined_tables(snapshot).await?);
        let live: std::collections::HashSet<i64> = backend
            .query(&format!(
                "SELECT DISTINCT table_id FROM {}",
                t("ducklake_table")
            ))
            .await?
            .iter()
            .map(|r| r.i64(0))
            .collect::<Result<_>>()?;
        // (Ids are handed out again after a net-out: a leftover deletion table
        // would delete rows of the next table and file with the same ids.)
        let next_id = lake.store().latest_snapshot().await?.next_catalog_id;
        for id in (first_id..next_id).filter(|id| !live.contains(id)) {
            let name = format!("ducklake_inlined_delete_{id}");
            if backend.table_exists(&name).await? {
                sql.push(format!("DROP TABLE IF EXISTS {}", t(&name)));
            }
        }
        for (table, _) in self.versioned_tables().await? {
            sql.push(format!(
                "DELETE FROM {} WHERE begin_snapshot = {snapshot} AND end_snapshot = {snapshot}",
                t(table)
            ));
        }
        // Rows about files and tables the transaction created and dropped again.
        for (table, key, first, owner) in [
            (
                "ducklake_file_column_stats",
                "data_file_id",
                first_file,
                "ducklake_data_file",
            ),
            (
                "ducklake_file_variant_stats",
                "data_file_id",
                first_file,
                "ducklake_data_file",
            ),
            (
                "ducklake_file_partition_value",
                "data_file_id",
                first_file,
                "ducklake_data_file",
            ),
            (
                "ducklake_table_stats",
                "table_id",
                first_id,
                "ducklake_table",
            ),
            (
                "ducklake_table_column_stats",
                "table_id",
                first_id,
                "ducklake_table",
            ),
            (
                "ducklake_schema_versions",
                "table_id",
                first_id,
                "ducklake_table",
            ),
        ] {
            if self.fork.tables.iter().any(|(name, _)| name == table) {
                sql.push(format!(
                    "DELETE FROM {} WHERE {key} >= {first} AND {key} NOT IN (SELECT {key} FROM {})",
                    t(table),
                    t(owner)
                ));
            }
        }
        backend.execute_batch(&(sql.join(";\n") + ";")).await?;

        // The change list, without what refers to objects that are gone.
        let changes = lake.store().changes_since(self.base.snapshot_id).await?;
        let changes = match changes.first() {
            Some(text) => parse_changes(text)?,
            None => Vec::new(),
        };
        let mut live_ids = std::collections::HashSet::new();
        let mut live_names = std::collections::HashSet::new();
        for (table, id, name) in [
            ("ducklake_schema", "schema_id", "schema_name"),
            ("ducklake_table", "table_id", "table_name"),
            ("ducklake_view", "view_id", "view_name"),
        ] {
            // Objects created in the transaction (ids from the base's next id on),
            // and the names live rows got in it (a rename of an older object too).
            for r in backend
                .query(&format!(
                    "SELECT {id}, {name}, end_snapshot IS NULL, begin_snapshot FROM {} \
                     WHERE {id} >= {first_id} OR begin_snapshot = {snapshot}",
                    t(table)
                ))
                .await?
            {
                if r.i64(0)? >= first_id {
                    live_ids.insert(r.i64(0)?);
                }
                if r.bool_or(2, false)? && r.i64(3)? == snapshot {
                    live_names.insert(r.text(1)?);
                }
            }
        }
        let gone = |id: &CatalogId| *id >= first_id && !live_ids.contains(id);
        let all_changes = changes.clone();
        let kept: Vec<Change> = changes
            .into_iter()
            .filter(|c| match c {
                Change::CreatedSchema(name)
                | Change::CreatedTable(_, name)
                | Change::CreatedView(_, name) => live_names.contains(name),
                Change::DroppedSchema(id)
                | Change::DroppedTable(id)
                | Change::DroppedView(id)
                | Change::InsertedIntoTable(id)
                | Change::DeletedFromTable(id)
                | Change::AlteredTable(id)
                | Change::AlteredView(id)
                | Change::InlinedInsert(id)
                | Change::InlinedDelete(id) => !gone(id),
                _ => true,
            })
            .collect();
        // Rows that begin in the transaction's snapshot and live on keep it,
        // whatever the change list says.
        let rows_live = self
            .any_row(
                self.live_tables()
                    .await?
                    .into_iter()
                    .filter(|(_, columns)| columns.iter().any(|c| c == "begin_snapshot")),
                &format!("begin_snapshot = {snapshot}"),
                None,
            )
            .await?;
        let kept = if kept.is_empty() && rows_live {
            all_changes
        } else {
            kept
        };
        let update = if kept.is_empty() {
            // Nothing happened in the end: no snapshot.
            format!(
                "DELETE FROM {} WHERE snapshot_id = {snapshot};\nDELETE FROM {} WHERE snapshot_id = {snapshot};",
                t("ducklake_snapshot_changes"),
                t("ducklake_snapshot")
            )
        } else {
            format!(
                "UPDATE {} SET changes_made = {} WHERE snapshot_id = {snapshot};",
                t("ducklake_snapshot_changes"),
                backend.literal(&format_changes(&kept).into())
            )
        };
        backend.execute_batch(&update).await?;
        Ok(garbage)
    }

    /// Statements that remove the empty inlined-data tables the transaction
    /// created for a column layout it changed again before `COMMIT` (`CREATE
    /// TABLE t(a)` then `ALTER TABLE t ADD COLUMN b` in one transaction). The
    /// whole transaction becomes one snapshot with the final layout, so no
    /// snapshot has the intermediate schema version: DuckDB, which reads every
    /// registered inlined table of a table with the columns of the nearest
    /// layout it knows, fails on such a table ("Referenced column b not
    /// found"). DuckDB's own transactions never leave one. A table of an
    /// intermediate layout that holds rows is kept (lakeq refuses the column
    /// change that would leave rows there, so none should).
    async fn intermediate_inlined_tables(&self, snapshot: SnapshotId) -> Result<Vec<String>> {
        let backend = self.work_lake().store().backend();
        let t = |name: &str| backend.table(name);
        let mut sql = Vec::new();
        let rows = backend
            .query(&format!(
                "SELECT table_name FROM {} WHERE schema_version <> \
                 (SELECT schema_version FROM {} WHERE snapshot_id = {snapshot})",
                t("ducklake_inlined_data_tables"),
                t("ducklake_snapshot")
            ))
            .await?;
        for r in rows {
            let name = r.text(0)?;
            let in_base = self.fork.tables.iter().any(|(base, _)| *base == name);
            if in_base || !backend.table_exists(&name).await? {
                continue;
            }
            let empty = backend
                .query(&format!("SELECT 1 FROM {} LIMIT 1", t(&name)))
                .await?
                .is_empty();
            if empty {
                sql.push(format!("DROP TABLE IF EXISTS {}", t(&name)));
                sql.push(format!(
                    "DELETE FROM {} WHERE table_name = {}",
                    t("ducklake_inlined_data_tables"),
                    quote_text(&name)
                ));
            }
        }
        Ok(sql)
    }

    /// The forked tables whose rows live between `begin_snapshot` and
    /// `end_snapshot` (with their columns).
    async fn versioned_tables(&self) -> Result<Vec<&(String, Vec<String>)>> {
        Ok(self
            .live_tables()
            .await?
            .into_iter()
            .filter(|(_, columns)| {
                columns.iter().any(|c| c == "begin_snapshot")
                    && columns.iter().any(|c| c == "end_snapshot")
            })
            .collect())
    }

    /// The forked tables that still exist in the working copy: a flush inside
    /// the transaction drops the inlined-data tables of older schema versions.
    async fn live_tables(&self) -> Result<Vec<&(String, Vec<String>)>> {
        let backend = self.work_lake().store().backend();
        let mut live = Vec::with_capacity(self.fork.tables.len());
        for table in &self.fork.tables {
            if !crate::store::fork::may_be_dropped(&table.0)
                || backend.table_exists(&table.0).await?
            {
                live.push(table);
            }
        }
        Ok(live)
    }

    /// Undo the transaction: remove its files, drop the fork.
    pub(crate) async fn rollback(mut self) {
        self.ended = true;
        self.undo().await;
    }

    async fn undo(&self) {
        self.remove_written_files().await;
        self.real
            .lake()
            .store()
            .backend()
            .drop_fork(&self.fork)
            .await;
    }

    /// Remove the data and delete files the transaction wrote (file ids from
    /// the base snapshot's next id on). Best effort: a file left behind is an
    /// orphan, which `ducklake_delete_orphaned_files` removes.
    async fn remove_written_files(&self) {
        let lake = self.work_lake();
        let Ok(paths) = PathResolver::load(lake).await else {
            return;
        };
        let backend = lake.store().backend();
        // Files registered by `ducklake_add_data_files` (with a name mapping)
        // were not written by the transaction: they stay.
        for (table, id, written) in [
            (
                "ducklake_data_file",
                "data_file_id",
                " AND mapping_id IS NULL",
            ),
            ("ducklake_delete_file", "delete_file_id", ""),
        ] {
            let Ok(rows) = backend
                .query(&format!(
                    "SELECT table_id, path, path_is_relative FROM {} WHERE {id} >= {}{written}",
                    backend.table(table),
                    self.base.next_file_id
                ))
                .await
            else {
                continue;
            };
            let mut files = Vec::new();
            for r in rows {
                if let (Ok(t), Ok(p), Ok(rel)) = (r.i64(0), r.text(1), r.bool_or(2, true)) {
                    files.push(paths.absolute(t, &p, rel));
                }
            }
            remove_files(&files).await;
        }
    }
}

/// A session that ends inside a transaction (a script without `COMMIT`, or one
/// that stopped at an error) rolls it back, as DuckDB does at exit: the files the
/// transaction wrote and its fork (temporary SQLite files, or PostgreSQL scratch
/// schemas) are removed. Outside a multi-threaded runtime only the SQLite fork's
/// files can be removed here; a PostgreSQL fork's schemas are then dropped by
/// the next `BEGIN` on that database (their advisory lock is free).
impl Drop for ForkedLake {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        if let Ok(handle) = tokio::runtime::Handle::try_current()
            && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| handle.block_on(self.undo()));
        } else if self.real.lake().store().backend().dialect() == crate::store::Dialect::Sqlite {
            for path in [&self.fork.base_location, &self.fork.work_location] {
                let _ = std::fs::remove_file(path);
                let _ = std::fs::remove_file(format!("{path}-journal"));
            }
        }
    }
}

/// Remove files, best effort (a file left behind is an orphan, which
/// `ducklake_delete_orphaned_files` removes).
async fn remove_files(paths: &[String]) {
    for path in paths {
        let _ = crate::ops::cleanup::remove(path).await;
    }
}
