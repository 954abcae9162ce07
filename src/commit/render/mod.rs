//! Rendering: a [`ChangeSet`] becomes the SQL of one catalog transaction, every
//! row at the snapshot the commit takes.
//!
//! One [`Renderer`] walks the change set kind by kind, in the order DuckDB
//! writes them: drops, then new schemas, tables, views and macros, schema
//! changes, data (name mappings, files, inlined rows, table statistics),
//! compaction, deletions, comments, and last the snapshot's own rows. Each kind
//! of change has its file; the order of the calls in [`render`] fixes the order
//! of the statements and of the ids they take (catalog ids from
//! `next_catalog_id`, file ids from `next_file_id`).

mod columns;
mod comments;
mod compaction;
mod deletes;
mod files;
mod inlined;
mod macros;
mod schemas;
mod stats;
mod tables;
mod views;

#[cfg(test)]
mod tests;

use chrono::Utc;

pub(crate) use columns::new_column_rows;

use super::{Alter, ChangeSet, MappingRef, TableRef};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::spec::changes::{Change, format_changes, parse_changes};
use crate::spec::rows::SnapshotRow;
use crate::spec::{CatalogId, FileId, SnapshotId};
use crate::store::{Literal, SqlBackend};
use crate::write::WrittenFile;

pub(super) struct Rendered {
    pub(super) sql: String,
    pub(super) new_table_ids: Vec<CatalogId>,
}

/// The snapshot a commit writes: a new one (`latest + 1`), or, in a
/// transaction's fork, the transaction's snapshot amended (`latest`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Target {
    pub(super) s: SnapshotId,
    pub(super) amend: bool,
}

/// The state of one rendering: the statements so far, the change list, and the
/// id counters as the change set's objects take ids.
struct Renderer<'a> {
    lake: &'a Lake,
    b: &'a dyn SqlBackend,
    c: &'a ChangeSet,
    latest: &'a SnapshotRow,
    target: Target,
    /// The snapshot written (`target.s`).
    s: SnapshotId,
    next_catalog_id: CatalogId,
    next_file_id: FileId,
    /// The schema version before the snapshot (before the transaction's
    /// snapshot when it is amended).
    prior_schema_version: i64,
    schema_version: i64,
    sql: Vec<String>,
    changes: Vec<Change>,
    /// Tables whose column layout changes (they get a schema version row).
    layout_changed: Vec<CatalogId>,
    /// Ids given to the change set's new tables, in order.
    new_table_ids: Vec<CatalogId>,
    /// Ids given to the change set's new name mappings, in order.
    mapping_ids: Vec<FileId>,
    /// Inlined rows go in after inlined rows are deleted (an UPDATE's new
    /// version keeps the row id of the version it ends).
    inlined_sql: Vec<String>,
    /// Tables whose inlined table this commit has settled already.
    inlined_ready: Vec<CatalogId>,
    /// Tables that received inlined rows (logged after every other change).
    changes_inlined: Vec<CatalogId>,
    /// Tables whose inlined rows were deleted (logged after every other change).
    inlined_deleted: Vec<CatalogId>,
}

pub(super) async fn render(
    lake: &Lake,
    b: &dyn SqlBackend,
    c: &ChangeSet,
    latest: &SnapshotRow,
    target: Target,
    delete_files: &[WrittenFile],
) -> Result<Rendered> {
    let mut r = Renderer::new(lake, b, c, latest, target).await?;
    // Drops first, as DuckDB does.
    r.drop_schemas();
    r.drop_tables();
    r.drop_views();
    r.drop_macros();
    r.create_schemas();
    r.create_tables();
    r.create_views();
    r.create_macros();
    r.rename_views();
    for a in &c.alters {
        match a {
            Alter::AddColumn { .. } | Alter::DropColumn { .. } | Alter::ReplaceColumn { .. } => {
                r.alter_column(a);
            }
            Alter::SetPartition { .. } | Alter::SetSort { .. } | Alter::RenameTable { .. } => {
                r.alter_table(a);
            }
        }
    }
    // Data: files, statistics, deletes.
    r.name_mappings();
    r.insert_data().await?;
    r.compact().await?;
    r.end_files();
    r.replace_delete_files(delete_files);
    r.flush_inlined();
    r.flush_inlined_deletes();
    r.delete_inlined_rows();
    r.delete_inlined_file_rows();
    let inlined_sql = std::mem::take(&mut r.inlined_sql);
    r.sql.extend(inlined_sql);
    r.log_deletes();
    if !c.alters.is_empty() || !c.comments.is_empty() {
        for id in c.altered_tables() {
            r.changes.push(Change::AlteredTable(id));
        }
    }
    r.comments();
    r.inlined_tables_for_new_layouts().await?;
    r.finish().await
}

impl<'a> Renderer<'a> {
    async fn new(
        lake: &'a Lake,
        b: &'a dyn SqlBackend,
        c: &'a ChangeSet,
        latest: &'a SnapshotRow,
        target: Target,
    ) -> Result<Self> {
        let s = target.s;
        // A transaction's DDL statements raise the schema version once, as DuckDB's do.
        let prior_schema_version = if target.amend {
            lake.store().snapshot(s - 1).await?.schema_version
        } else {
            latest.schema_version
        };
        let schema_version = if target.amend {
            latest
                .schema_version
                .max(prior_schema_version + i64::from(c.is_ddl()))
        } else {
            latest.schema_version + i64::from(c.is_ddl())
        };
        Ok(Self {
            lake,
            b,
            c,
            latest,
            target,
            s,
            next_catalog_id: latest.next_catalog_id,
            next_file_id: latest.next_file_id,
            prior_schema_version,
            schema_version,
            sql: Vec::new(),
            changes: Vec::new(),
            layout_changed: Vec::new(),
            new_table_ids: Vec::new(),
            mapping_ids: Vec::new(),
            inlined_sql: Vec::new(),
            inlined_ready: Vec::new(),
            changes_inlined: Vec::new(),
            inlined_deleted: Vec::new(),
        })
    }

    /// The next catalog id (schemas, tables, views, macros, partition and sort specs).
    fn take_catalog_id(&mut self) -> CatalogId {
        let id = self.next_catalog_id;
        self.next_catalog_id += 1;
        id
    }

    /// The next file id (data and delete files, name mappings).
    fn take_file_id(&mut self) -> FileId {
        let id = self.next_file_id;
        self.next_file_id += 1;
        id
    }

    /// The id of a table the change set refers to.
    fn table_id_of(&self, r: TableRef) -> Result<CatalogId> {
        match r {
            TableRef::Existing(id) => Ok(id),
            TableRef::New(i) => self
                .new_table_ids
                .get(i)
                .copied()
                .ok_or_else(|| Error::Corrupt(format!("change set refers to new table #{i}"))),
        }
    }

    /// The id of a registered file's name mapping.
    fn mapping_of(&self, m: Option<MappingRef>) -> Result<Option<FileId>> {
        match m {
            None => Ok(None),
            Some(MappingRef::Existing(id)) => Ok(Some(id)),
            Some(MappingRef::New(i)) => self
                .mapping_ids
                .get(i)
                .copied()
                .map(Some)
                .ok_or_else(|| Error::Corrupt(format!("change set refers to new mapping #{i}"))),
        }
    }

    /// The snapshot's own rows: schema versions, the change list and the
    /// snapshot row (first: it is the serialisation point).
    async fn finish(mut self) -> Result<Rendered> {
        let (b, s, schema_version) = (self.b, self.s, self.schema_version);
        let lit = |v: Literal| b.literal(&v);
        let t = |name: &str| b.table(name);
        // DuckDB lists inlined changes after every other kind.
        self.changes
            .extend(self.changes_inlined.drain(..).map(Change::InlinedInsert));
        self.changes
            .extend(self.inlined_deleted.drain(..).map(Change::InlinedDelete));
        // (A flush of inlined deletions only is logged as a deletion, as by DuckDB.)
        let mut flushed: Vec<CatalogId> =
            self.c.inlined_flushes.iter().map(|f| f.table_id).collect();
        flushed.sort_unstable();
        flushed.dedup();
        self.changes
            .extend(flushed.into_iter().map(Change::InlineFlush));
        let mut sql = self.sql;
        self.layout_changed.sort_unstable();
        self.layout_changed.dedup();
        for &table_id in &self.layout_changed {
            if self.target.amend {
                sql.push(format!(
                    "DELETE FROM {} WHERE begin_snapshot = {s} AND table_id = {table_id}",
                    t("ducklake_schema_versions")
                ));
            }
            sql.push(format!(
                "INSERT INTO {} VALUES ({s}, {schema_version}, {table_id})",
                t("ducklake_schema_versions")
            ));
        }
        let (next_catalog_id, next_file_id) = (self.next_catalog_id, self.next_file_id);
        if self.target.amend {
            let mut all = match self.lake.store().changes_since(s - 1).await?.first() {
                Some(earlier) => parse_changes(earlier)?,
                None => Vec::new(),
            };
            for change in self.changes {
                if !all.contains(&change) {
                    all.push(change);
                }
            }
            sql.push(format!(
                "UPDATE {} SET changes_made = {} WHERE snapshot_id = {s}",
                t("ducklake_snapshot_changes"),
                lit(format_changes(&all).into())
            ));
            sql.insert(
                0,
                format!(
                    "UPDATE {} SET snapshot_time = {}, schema_version = {schema_version}, \
                     next_catalog_id = {next_catalog_id}, next_file_id = {next_file_id} \
                     WHERE snapshot_id = {s}",
                    t("ducklake_snapshot"),
                    lit(Literal::Timestamp(Utc::now()))
                ),
            );
        } else {
            sql.push(format!(
                "INSERT INTO {} VALUES ({s}, {}, NULL, NULL, NULL)",
                t("ducklake_snapshot_changes"),
                lit(format_changes(&self.changes).into())
            ));
            // The snapshot row goes first: it is the serialisation point.
            sql.insert(
                0,
                format!(
                    "INSERT INTO {} VALUES ({s}, {}, {schema_version}, {next_catalog_id}, {next_file_id})",
                    t("ducklake_snapshot"),
                    lit(Literal::Timestamp(Utc::now()))
                ),
            );
        }
        Ok(Rendered {
            sql: sql.join(";\n") + ";",
            new_table_ids: self.new_table_ids,
        })
    }
}
