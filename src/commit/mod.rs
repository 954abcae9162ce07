//! Commits: one [`ChangeSet`] becomes one DuckLake snapshot, written in one
//! catalog transaction.
//!
//! The protocol (SPEC §12, §14):
//! 1. Data and delete files are written to storage first (not yet referenced).
//! 2. Read the latest snapshot `L`. If other writers committed since the change
//!    set's base snapshot, parse their change lists and refuse on a logical
//!    conflict ([`conflict::check`]).
//! 3. Allocate ids from `L` (catalog ids, file ids, row ids), render every row
//!    of the change with `begin_snapshot = L + 1`, and run it as one transaction
//!    whose first statement inserts snapshot `L + 1`. The primary key on
//!    `ducklake_snapshot.snapshot_id` is the serialisation point: if another
//!    writer took `L + 1`, the transaction fails as a whole and we go back to 2
//!    (bounded retries with jittered backoff).
//! 4. On final failure the caller removes the files of step 1; nothing in the
//!    catalog references them, so a crash at any point leaves a lake that
//!    readers open (at worst with orphaned files, which DuckDB's
//!    `ducklake_delete_orphaned_files` removes).

pub mod conflict;
pub mod inline;

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;

use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::spec::changes::{Change, format_changes, parse_changes};
use crate::spec::rows::{ColumnRow, DataFileRow, SnapshotRow, TableRow, TableStatsRow};
use crate::spec::types::DuckLakeType;
use crate::spec::values::parse_stat;
use crate::spec::{CatalogId, ColumnId, FileId, SnapshotId};
use crate::store::{Literal, SqlBackend};
use crate::write::{ColumnStats, WrittenFile, discard, write_delete_file};

/// How long a commit keeps retrying after losing the race for a snapshot id.
/// Bounded by time, not by a count: with 8 writer processes committing at
/// once, 10 retries (waits growing to 1 s, 3.5 s in all) starved some writers.
const RETRY_FOR: Duration = Duration::from_secs(60);
/// The longest wait between two attempts (before jitter), in milliseconds.
const MAX_WAIT_MS: f64 = 500.0;

/// A column of a new table (or an added column), with its id already assigned.
#[derive(Debug, Clone, PartialEq)]
pub struct NewColumn {
    /// Column id (= Parquet field id).
    pub column_id: ColumnId,
    /// Name (`element`, `key`, `value` for list/map children).
    pub name: String,
    /// Type.
    pub ty: DuckLakeType,
    /// Whether NULLs are allowed.
    pub nulls_allowed: bool,
    /// Default for new rows (DuckDB text), `None` = no default.
    pub default_value: Option<String>,
    /// Value of the column in rows written before it existed (added columns).
    pub initial_default: Option<String>,
    /// Children of list/struct/map columns.
    pub children: Vec<NewColumn>,
}

impl NewColumn {
    /// Build column trees from Arrow fields, numbering ids from `next_id` in pre-order.
    pub fn from_arrow_fields(fields: &[Field], next_id: &mut ColumnId) -> Result<Vec<NewColumn>> {
        fields
            .iter()
            .map(|f| Self::from_arrow(f, next_id))
            .collect()
    }

    /// Build one column tree from an Arrow field.
    pub fn from_arrow(field: &Field, next_id: &mut ColumnId) -> Result<NewColumn> {
        let column_id = *next_id;
        *next_id += 1;
        let ty = DuckLakeType::from_arrow(field.data_type())?;
        let children = match field.data_type() {
            DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) => {
                let element = f.as_ref().clone().with_name("element");
                vec![Self::from_arrow(&element, next_id)?]
            }
            DataType::FixedSizeList(f, _) => vec![Self::from_arrow(
                &f.as_ref().clone().with_name("element"),
                next_id,
            )?],
            DataType::Struct(fields) => fields
                .iter()
                .map(|f| Self::from_arrow(f, next_id))
                .collect::<Result<_>>()?,
            DataType::Map(entries, _) => {
                let unsupported =
                    || Error::Unsupported(format!("map entries of type {}", entries.data_type()));
                let DataType::Struct(kv) = entries.data_type() else {
                    return Err(unsupported());
                };
                let [key, value] = &**kv else {
                    return Err(unsupported());
                };
                vec![
                    Self::from_arrow(&key.as_ref().clone().with_name("key"), next_id)?,
                    Self::from_arrow(&value.as_ref().clone().with_name("value"), next_id)?,
                ]
            }
            _ => Vec::new(),
        };
        Ok(NewColumn {
            column_id,
            name: field.name().clone(),
            ty,
            nulls_allowed: field.is_nullable(),
            default_value: None,
            initial_default: None,
            children,
        })
    }

    fn walk<'a>(
        &'a self,
        parent: Option<ColumnId>,
        out: &mut Vec<(Option<ColumnId>, &'a NewColumn)>,
    ) {
        out.push((parent, self));
        for c in &self.children {
            c.walk(Some(self.column_id), out);
        }
    }
}

/// A table that the change set refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableRef {
    /// An existing table id.
    Existing(CatalogId),
    /// The n-th table created by this change set.
    New(usize),
}

/// A table created by the change set.
#[derive(Debug, Clone)]
pub struct NewTable {
    /// Owning schema.
    pub schema_id: CatalogId,
    /// Schema name (for the change list).
    pub schema_name: String,
    /// Table name.
    pub name: String,
    /// Table UUID (v7), generated before files are written.
    pub uuid: String,
    /// Directory relative to the schema directory, ends with `/`.
    pub path: String,
    /// Columns with ids.
    pub columns: Vec<NewColumn>,
}

/// A view created by the change set.
#[derive(Debug, Clone)]
pub struct NewView {
    /// Owning schema.
    pub schema_id: CatalogId,
    /// Schema name (for the change list).
    pub schema_name: String,
    /// View name.
    pub name: String,
    /// The view's query, runnable by DuckDB.
    pub sql: String,
    /// `"x","y"` or empty.
    pub column_aliases: String,
}

/// A DuckDB macro created by the change set (`CREATE MACRO`), stored as DuckDB
/// stores it: one `ducklake_macro` row, a `ducklake_macro_impl` row per
/// implementation and a `ducklake_macro_parameters` row per parameter.
#[derive(Debug, Clone)]
pub struct NewMacro {
    /// Owning schema.
    pub schema_id: CatalogId,
    /// Schema name (for the change list).
    pub schema_name: String,
    /// Macro name.
    pub name: String,
    /// A table macro (`AS TABLE ...`) rather than a scalar one.
    pub table: bool,
    /// The implementations, one per parameter list.
    pub impls: Vec<NewMacroImpl>,
}

/// One implementation of a [`NewMacro`].
#[derive(Debug, Clone)]
pub struct NewMacroImpl {
    /// The body: an expression, or a query for a table macro (DuckDB SQL).
    pub sql: String,
    /// Parameters in order.
    pub parameters: Vec<NewMacroParameter>,
}

/// A parameter of a [`NewMacroImpl`].
#[derive(Debug, Clone)]
pub struct NewMacroParameter {
    /// Its name.
    pub name: String,
    /// Its DuckLake type (`unknown` when untyped).
    pub type_name: String,
    /// Its default: (value text, DuckLake type of the value).
    pub default: Option<(String, String)>,
}

/// A data file added to a table.
#[derive(Debug, Clone)]
pub struct AddedFile {
    /// Target table.
    pub table: TableRef,
    /// The written file.
    pub file: WrittenFile,
    /// Partition spec id and the file's value per key part (DuckDB text, NULL = `None`).
    pub partition: Option<(CatalogId, Vec<Option<String>>)>,
    /// `None` for a file lakeq wrote (field ids, path relative to the table).
    /// `Some` for an existing file registered by `ducklake_add_data_files`: its
    /// columns are mapped by this name mapping, its path ([`WrittenFile::url`]) is
    /// stored absolute, and a failed commit leaves it alone.
    pub mapping: Option<MappingRef>,
}

/// The name mapping of a registered file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingRef {
    /// A mapping already in the catalog (`ducklake_column_mapping.mapping_id`).
    Existing(FileId),
    /// The n-th of the change set's [`ChangeSet::name_mappings`].
    New(usize),
}

/// A `map_by_name` column mapping (`ducklake_column_mapping` and its
/// `ducklake_name_mapping` rows, SPEC §4.16) for files without field ids. Its id
/// comes from `next_file_id`, before the ids of the snapshot's data files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNameMapping {
    /// The table whose files use it.
    pub table_id: CatalogId,
    /// Top-level entries, in the order they were mapped.
    pub columns: Vec<NameMapEntry>,
}

/// One file column (or Hive path key) mapped to a table column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameMapEntry {
    /// The column's name in the file (a Hive key for partition values).
    pub source_name: String,
    /// The table column's id.
    pub target_field_id: ColumnId,
    /// Whether the value comes from a Hive path segment `source_name=value`.
    pub is_partition: bool,
    /// Nested entries (struct fields, list element, map key and value).
    pub children: Vec<NameMapEntry>,
}

impl NewNameMapping {
    /// The `ducklake_name_mapping` rows as DuckDB numbers them: `column_id` is a
    /// 0-based pre-order sequence within the mapping, `parent_column` refers to it.
    pub fn rows(&self, mapping_id: FileId) -> Vec<crate::spec::rows::NameMappingRow> {
        fn walk(
            entry: &NameMapEntry,
            parent: Option<i64>,
            mapping_id: FileId,
            out: &mut Vec<crate::spec::rows::NameMappingRow>,
        ) {
            let column_id = out.len() as i64;
            out.push(crate::spec::rows::NameMappingRow {
                mapping_id,
                column_id,
                source_name: entry.source_name.clone(),
                target_field_id: entry.target_field_id,
                parent_column: parent,
                is_partition: entry.is_partition,
            });
            for child in &entry.children {
                walk(child, Some(column_id), mapping_id, out);
            }
        }
        let mut out = Vec::new();
        for entry in &self.columns {
            walk(entry, None, mapping_id, &mut out);
        }
        out
    }
}

/// Adjacent small data files of one table rewritten as one
/// (`ducklake_merge_adjacent_files`). The new file keeps the sources' rows, row
/// ids and per-row snapshots (in `_ducklake_internal_snapshot_id`, and
/// `_ducklake_internal_row_id` when the sources' row ids are not contiguous);
/// the sources are removed from the catalog and scheduled for deletion.
#[derive(Debug, Clone)]
pub struct MergedFile {
    /// Table id.
    pub table_id: CatalogId,
    /// The source data files: (id, path relative to the data path or absolute, relative?).
    pub sources: Vec<(FileId, String, bool)>,
    /// The written file.
    pub file: WrittenFile,
    /// `begin_snapshot` of the first source.
    pub begin_snapshot: SnapshotId,
    /// `row_id_start` of the first source.
    pub row_id_start: i64,
    /// The newest snapshot of any row.
    pub partial_max: SnapshotId,
    /// Partition spec id and values, as the sources had them.
    pub partition: Option<(CatalogId, Vec<Option<String>>)>,
    /// `ducklake_rewrite_data_files`: the file holds the sources' live rows only
    /// (with their row ids) and begins at the new snapshot; the sources and their
    /// delete files end there (kept for time travel) instead of leaving the catalog.
    pub rewrite: bool,
    /// With `rewrite`: the deleted rows the new file leaves out.
    pub dropped_rows: i64,
}

/// `ducklake_flush_inlined_data`: the rows of one inlined table moved to a
/// Parquet file (SPEC §8.4).
#[derive(Debug, Clone)]
pub struct InlinedFlush {
    /// Table id.
    pub table_id: CatalogId,
    /// The inlined table (`ducklake_inlined_data_<table>_<version>`).
    pub inlined_table: String,
    /// Its schema version.
    pub schema_version: i64,
    /// Rows inserted up to this snapshot were flushed and leave the inlined table.
    pub upto: SnapshotId,
    /// The files holding every flushed row version (one per partition of a
    /// partitioned table; none when there were none).
    pub files: Vec<FlushedFile>,
    /// Whether the inlined table is dropped and unregistered afterwards (a
    /// superseded layout; the newest one stays, empty, for new rows).
    pub drop: bool,
}

/// The Parquet file of an [`InlinedFlush`].
#[derive(Debug, Clone)]
pub struct FlushedFile {
    /// The data file: the rows with `_ducklake_internal_row_id` and
    /// `_ducklake_internal_snapshot_id` (the snapshot that inserted each).
    pub data: WrittenFile,
    /// The oldest row's snapshot (the file's `begin_snapshot`).
    pub begin_snapshot: SnapshotId,
    /// The newest row's snapshot (`partial_max`).
    pub partial_max: SnapshotId,
    /// The smallest row id.
    pub row_id_start: i64,
    /// The rows that had ended, as a delete file with per-row snapshots, and
    /// the earliest of those (its `begin_snapshot`).
    pub deletes: Option<(WrittenFile, SnapshotId)>,
    /// Partition spec id and values of the file, if the table is partitioned.
    pub partition: Option<(CatalogId, Vec<Option<String>>)>,
}

/// Deletions from one data file, written as a (cumulative) delete file at commit
/// time, because its per-row snapshot ids depend on the snapshot the commit gets.
#[derive(Debug, Clone)]
pub struct NewDeleteFile {
    /// Table id.
    pub table_id: CatalogId,
    /// Data file whose rows it deletes.
    pub data_file_id: FileId,
    /// Full path of the data file (written into the delete file).
    pub data_file_url: String,
    /// Table directory, where the delete file goes.
    pub table_dir: String,
    /// Newly deleted positions.
    pub new_positions: Vec<i64>,
    /// Positions of the delete file being replaced, with their deleting snapshots.
    pub previous: Vec<(i64, SnapshotId)>,
    /// The delete file it replaces: (id, path relative to the data path, its begin snapshot).
    pub replaces: Option<(FileId, String, SnapshotId)>,
    /// A flush of inlined deletions: no new positions, the entries keep their
    /// own snapshots, and the file begins at the earliest of them.
    pub flushed: bool,
}

/// A schema change of an existing table.
#[derive(Debug, Clone)]
pub enum Alter {
    /// ADD COLUMN. Its ids must be above every id the table ever used
    /// ([`next_column_id`]); a concurrent ALTER makes the commit conflict.
    AddColumn {
        /// Table.
        table_id: CatalogId,
        /// The struct column a nested field is added to (`None`: a top-level column).
        parent: Option<ColumnId>,
        /// The column with its ids.
        column: NewColumn,
    },
    /// DROP COLUMN (and its children).
    DropColumn {
        /// Table.
        table_id: CatalogId,
        /// Column ids to end (the column and all descendants).
        column_ids: Vec<ColumnId>,
    },
    /// A new version of a column (rename, type change, default, nullability).
    ReplaceColumn {
        /// The new version of the row (same column id).
        row: ColumnRow,
    },
    /// SET/RESET PARTITIONED BY: a new partition spec (empty = unpartitioned).
    SetPartition {
        /// Table.
        table_id: CatalogId,
        /// (column id, transform) per key part.
        keys: Vec<(ColumnId, String)>,
    },
    /// SET SORTED BY (no keys: RESET SORTED BY).
    SetSort {
        /// Table.
        table_id: CatalogId,
        /// Sort keys in order.
        keys: Vec<SortKey>,
    },
    /// RENAME TABLE.
    RenameTable {
        /// Current row.
        row: TableRow,
        /// New name.
        new_name: String,
        /// Schema name (for the change list).
        schema_name: String,
    },
}

pub use crate::spec::rows::SortKey;

/// Everything one snapshot changes. Build it, then [`commit`] it.
#[derive(Debug, Clone, Default)]
pub struct ChangeSet {
    /// Snapshot the changes were computed against.
    pub base_snapshot: SnapshotId,
    /// CREATE SCHEMA.
    pub new_schemas: Vec<String>,
    /// DROP SCHEMA (ids).
    pub dropped_schemas: Vec<CatalogId>,
    /// DROP TABLE (ids).
    pub dropped_tables: Vec<CatalogId>,
    /// DROP VIEW (ids).
    pub dropped_views: Vec<CatalogId>,
    /// CREATE TABLE.
    pub new_tables: Vec<NewTable>,
    /// CREATE VIEW.
    pub new_views: Vec<NewView>,
    /// DROP MACRO: (id, is a table macro).
    pub dropped_macros: Vec<(CatalogId, bool)>,
    /// CREATE MACRO.
    pub new_macros: Vec<NewMacro>,
    /// ALTER TABLE.
    pub alters: Vec<Alter>,
    /// New data files.
    pub added_files: Vec<AddedFile>,
    /// New delete files.
    pub delete_files: Vec<NewDeleteFile>,
    /// Data files whose every row is deleted: (table, data file).
    pub ended_files: Vec<(CatalogId, FileId)>,
    /// Inlined rows deleted: (table, inlined table name, row ids).
    pub inlined_row_deletes: Vec<(CatalogId, String, Vec<i64>)>,
    /// Inlined deletions of Parquet rows: (table, data file, positions).
    pub inlined_file_deletes: Vec<(CatalogId, FileId, Vec<i64>)>,
    /// Small inserts stored in the catalog (data inlining).
    pub inlined_inserts: Vec<inline::InlinedInsert>,
    /// Inlined tables flushed to Parquet.
    pub inlined_flushes: Vec<InlinedFlush>,
    /// Inlined deletions of Parquet rows flushed into delete files: (table,
    /// up to which snapshot they leave `ducklake_inlined_delete_<table>`).
    pub flushed_inlined_deletes: Vec<(CatalogId, SnapshotId)>,
    /// Tables nobody else may insert into while this change set is in flight
    /// (ingest bookkeeping: a concurrent insert means "re-plan", never "merge").
    pub exclusive_tables: Vec<CatalogId>,
    /// Compaction: adjacent files rewritten as one.
    pub merges: Vec<MergedFile>,
    /// ALTER VIEW ... RENAME TO: the view keeps its id and uuid.
    pub renamed_views: Vec<RenamedView>,
    /// Name mappings of registered files ([`AddedFile::mapping`]).
    pub name_mappings: Vec<NewNameMapping>,
    /// COMMENT ON TABLE / VIEW / COLUMN.
    pub comments: Vec<Comment>,
}

/// What a comment is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentTarget {
    /// A table (its id).
    Table(CatalogId),
    /// A view (its id).
    View(CatalogId),
    /// A column (table id, column id).
    Column(CatalogId, ColumnId),
}

/// `COMMENT ON ... IS 'text'` (`None`: `IS NULL`), stored as DuckDB stores it:
/// the `comment` tag's current row ended and a new one inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// The object.
    pub target: CommentTarget,
    /// The text.
    pub value: Option<String>,
}

/// A view renamed (`ALTER VIEW ... RENAME TO`).
#[derive(Debug, Clone)]
pub struct RenamedView {
    /// The view.
    pub view_id: CatalogId,
    /// Its schema's name (for the change list).
    pub schema_name: String,
    /// The new name.
    pub new_name: String,
}

impl ChangeSet {
    /// An empty change set based on `snapshot`.
    pub fn new(base_snapshot: SnapshotId) -> Self {
        Self {
            base_snapshot,
            ..Self::default()
        }
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.new_schemas.is_empty()
            && self.dropped_schemas.is_empty()
            && self.dropped_tables.is_empty()
            && self.dropped_views.is_empty()
            && self.new_tables.is_empty()
            && self.new_views.is_empty()
            && self.dropped_macros.is_empty()
            && self.new_macros.is_empty()
            && self.alters.is_empty()
            && self.added_files.is_empty()
            && self.delete_files.is_empty()
            && self.ended_files.is_empty()
            && self.inlined_row_deletes.is_empty()
            && self.inlined_file_deletes.is_empty()
            && self.inlined_inserts.is_empty()
            && self.inlined_flushes.is_empty()
            && self.flushed_inlined_deletes.is_empty()
            && self.merges.is_empty()
            && self.renamed_views.is_empty()
            && self.comments.is_empty()
            && self.name_mappings.is_empty()
    }

    fn altered_tables(&self) -> Vec<CatalogId> {
        let mut out: Vec<CatalogId> = self
            .alters
            .iter()
            .map(|a| match a {
                Alter::AddColumn { table_id, .. }
                | Alter::DropColumn { table_id, .. }
                | Alter::SetPartition { table_id, .. }
                | Alter::SetSort { table_id, .. } => *table_id,
                Alter::ReplaceColumn { row } => row.table_id,
                Alter::RenameTable { row, .. } => row.table_id,
            })
            .chain(self.comments.iter().filter_map(|c| match c.target {
                CommentTarget::Table(t) | CommentTarget::Column(t, _) => Some(t),
                CommentTarget::View(_) => None,
            }))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Existing tables whose data this change set writes.
    fn written_tables(&self) -> Vec<CatalogId> {
        let mut out: Vec<CatalogId> = self
            .added_files
            .iter()
            .filter_map(|f| match f.table {
                TableRef::Existing(t) => Some(t),
                TableRef::New(_) => None,
            })
            .chain(self.inlined_inserts.iter().filter_map(|i| match i.table {
                TableRef::Existing(t) => Some(t),
                TableRef::New(_) => None,
            }))
            .chain(self.deleted_tables())
            .chain(self.merged_tables())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Tables whose files this change set compacts.
    pub(crate) fn merged_tables(&self) -> Vec<CatalogId> {
        let mut out: Vec<CatalogId> = self
            .merges
            .iter()
            .map(|m| m.table_id)
            .chain(self.inlined_flushes.iter().map(|f| f.table_id))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn deleted_tables(&self) -> Vec<CatalogId> {
        let mut out: Vec<CatalogId> = self
            .delete_files
            .iter()
            .map(|d| d.table_id)
            .chain(self.ended_files.iter().map(|(t, _)| *t))
            .chain(self.inlined_row_deletes.iter().map(|(t, _, _)| *t))
            .chain(self.inlined_file_deletes.iter().map(|(t, _, _)| *t))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    pub(crate) fn touches_table(&self, t: CatalogId) -> bool {
        self.writes_table(t)
            || self.altered_tables().contains(&t)
            || self.dropped_tables.contains(&t)
    }

    pub(crate) fn writes_table(&self, t: CatalogId) -> bool {
        self.written_tables().contains(&t)
    }

    pub(crate) fn deletes_from(&self, t: CatalogId) -> bool {
        self.deleted_tables().contains(&t)
    }

    pub(crate) fn creates(&self, schema: &str, name: &str) -> bool {
        self.new_tables
            .iter()
            .any(|t| t.schema_name == schema && t.name == name)
            || self.new_views.iter().any(|v| v.schema_name == schema && v.name == name)
            || self
                .renamed_views
                .iter()
                .any(|v| v.schema_name == schema && v.new_name == name)
            || self.alters.iter().any(|a| {
                matches!(a, Alter::RenameTable { new_name, schema_name, .. } if new_name == name && schema_name == schema)
            })
    }

    pub(crate) fn uses_schema(&self, id: CatalogId) -> bool {
        self.new_tables.iter().any(|t| t.schema_id == id)
            || self.new_views.iter().any(|v| v.schema_id == id)
            || self.new_macros.iter().any(|m| m.schema_id == id)
    }

    fn is_ddl(&self) -> bool {
        !(self.new_schemas.is_empty()
            && self.dropped_schemas.is_empty()
            && self.dropped_tables.is_empty()
            && self.dropped_views.is_empty()
            && self.new_tables.is_empty()
            && self.new_views.is_empty()
            && self.dropped_macros.is_empty()
            && self.new_macros.is_empty()
            && self.alters.is_empty()
            && self.renamed_views.is_empty()
            && self.comments.is_empty())
    }

    /// All data files this change set wrote (to remove them when the commit fails).
    /// Registered files ([`AddedFile::mapping`]) are not lakeq's to remove.
    pub fn written_files(&self) -> Vec<WrittenFile> {
        // (Delete files are written and removed by the commit itself.)
        self.added_files
            .iter()
            .filter(|f| f.mapping.is_none())
            .map(|f| f.file.clone())
            .chain(self.merges.iter().map(|m| m.file.clone()))
            .chain(self.inlined_flushes.iter().flat_map(|f| {
                f.files.iter().flat_map(|file| {
                    std::iter::once(file.data.clone())
                        .chain(file.deletes.iter().map(|(d, _)| d.clone()))
                })
            }))
            .collect()
    }
}

/// What a successful commit produced.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The new snapshot id.
    pub snapshot_id: SnapshotId,
    /// Ids given to the change set's new tables, in order.
    pub new_table_ids: Vec<CatalogId>,
}

/// Commit `changes` as one snapshot, retrying when another writer wins the race.
pub async fn commit(lake: &Lake, changes: &ChangeSet) -> Result<Committed> {
    if lake.read_only() {
        return Err(Error::Unsupported(format!(
            "the lake '{}' is attached READ_ONLY (or at a fixed SNAPSHOT_VERSION)",
            lake.store().location()
        )));
    }
    let store = lake.store();
    let backend = store.backend();
    let mut attempt = 0u32;
    let started = std::time::Instant::now();
    loop {
        let latest = store.latest_snapshot().await?;
        check_counters(
            "snapshot",
            &[
                ("snapshot_id", latest.snapshot_id),
                ("next_catalog_id", latest.next_catalog_id),
                ("next_file_id", latest.next_file_id),
                ("schema_version", latest.schema_version),
            ],
        )?;
        if latest.snapshot_id > changes.base_snapshot {
            let theirs = store.changes_since(changes.base_snapshot).await?;
            let parsed = theirs
                .iter()
                .map(|c| parse_changes(c))
                .collect::<Result<Vec<_>>>()?
                .concat();
            conflict::check(changes, &parsed)?;
        }
        // In a transaction's fork, the second and later commits amend the
        // transaction's one snapshot instead of adding another.
        let amend = lake
            .transaction_base()
            .is_some_and(|base| latest.snapshot_id > base);
        let s = latest.snapshot_id + i64::from(!amend);
        let delete_files = write_delete_files(lake, changes, s).await?;
        let target = Target { s, amend };
        let rendered = match render(
            lake,
            backend.as_ref(),
            changes,
            &latest,
            target,
            &delete_files,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                discard(&delete_files).await;
                return Err(e);
            }
        };
        let outcome = backend.execute_batch(&rendered.sql).await;
        if outcome.is_err() {
            discard(&delete_files).await;
        }
        match outcome {
            Ok(()) => {
                if lake.transaction_base().is_some() {
                    lake.forget_files();
                }
                return Ok(Committed {
                    snapshot_id: s,
                    new_table_ids: rendered.new_table_ids,
                });
            }
            Err(e) if is_retryable(&e) && started.elapsed() < RETRY_FOR => {
                attempt += 1;
                let jitter = 0.5 + f64::from(uuid::Uuid::new_v4().as_bytes()[0]) / 512.0;
                let wait = (20.0 * 1.5f64.powi(attempt.min(20) as i32)).min(MAX_WAIT_MS) * jitter;
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
            Err(e) if is_retryable(&e) => {
                return Err(Error::CommitConflict {
                    message: format!(
                        "gave up after {attempt} retries in {} s: {e}",
                        started.elapsed().as_secs()
                    ),
                    retryable: true,
                });
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether a catalog error means "another writer took the snapshot id" (or a
/// serialisation failure, or a busy SQLite file): then the commit is re-planned on
/// the new latest snapshot. Decided by error code, never by message text (a
/// PostgreSQL server may speak another language): unique violations (SQLSTATE
/// 23505, SQLite's constraint codes), serialisation failures and deadlocks
/// (40001, 40P01), lock timeouts (55P03) and SQLite's BUSY / LOCKED (5, 6 and
/// their extended codes).
fn is_retryable(e: &Error) -> bool {
    let Error::Catalog { source, .. } = e else {
        return false;
    };
    let Some(db) = source.as_database_error() else {
        return false;
    };
    if matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation) {
        return true;
    }
    let Some(code) = db.code() else {
        return false;
    };
    retryable_code(&code)
}

/// [`is_retryable`] on a PostgreSQL SQLSTATE or a SQLite (extended) result code.
fn retryable_code(code: &str) -> bool {
    match code {
        "23505" | "40001" | "40P01" | "55P03" => true,
        // SQLite: the primary result code is the low byte of the extended one.
        other => other
            .parse::<i64>()
            .is_ok_and(|c| matches!(c & 0xff, 5 | 6) || c == 1555 || c == 2067),
    }
}

struct Rendered {
    sql: String,
    new_table_ids: Vec<CatalogId>,
}

/// What is known about a column's values.
#[derive(Debug, Clone)]
enum Bound {
    /// No non-null value at all.
    Empty,
    /// Every non-null value lies in `[min, max]`.
    Known(ScalarValue, ScalarValue),
    /// Nothing is known (bounds written as NULL).
    Unknown,
}

/// Table-level statistics of one column while merging new files in.
#[derive(Debug, Clone)]
struct ColumnBounds {
    contains_null: Option<bool>,
    contains_nan: Option<bool>,
    bounds: Bound,
}

impl ColumnBounds {
    fn merge(&mut self, has_null: bool, has_nan: Option<bool>, file: Bound) {
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
fn merge_column_stats(
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
fn partition_values_sql(
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
fn table_column_stats_values(
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
async fn live_column_bounds(
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
async fn leaf_types(
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

/// Write the change set's delete files for snapshot `s`.
async fn write_delete_files(lake: &Lake, c: &ChangeSet, s: SnapshotId) -> Result<Vec<WrittenFile>> {
    let mut out = Vec::with_capacity(c.delete_files.len());
    for d in &c.delete_files {
        let store = lake.object_store(&d.data_file_url)?;
        let mut entries: Vec<(i64, SnapshotId)> = d.previous.clone();
        entries.extend(d.new_positions.iter().map(|p| (*p, s)));
        entries.sort_unstable();
        entries.dedup_by_key(|e| e.0);
        let positions: Vec<i64> = entries.iter().map(|e| e.0).collect();
        // A replacing (cumulative) file needs per-row snapshots for time travel.
        let snapshots: Option<Vec<i64>> =
            (d.replaces.is_some() || d.flushed).then(|| entries.iter().map(|e| e.1).collect());
        match write_delete_file(
            &store,
            &d.table_dir,
            &d.data_file_url,
            &positions,
            snapshots.as_deref(),
        )
        .await
        {
            Ok(f) => out.push(f),
            Err(e) => {
                discard(&out).await;
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// The snapshot a commit writes: a new one (`latest + 1`), or, in a
/// transaction's fork, the transaction's snapshot amended (`latest`).
#[derive(Debug, Clone, Copy)]
struct Target {
    s: SnapshotId,
    amend: bool,
}

async fn render(
    lake: &Lake,
    b: &dyn SqlBackend,
    c: &ChangeSet,
    latest: &SnapshotRow,
    target: Target,
    delete_files: &[WrittenFile],
) -> Result<Rendered> {
    let store = lake.store();
    let s = target.s;
    let mut next_catalog_id = latest.next_catalog_id;
    let mut next_file_id = latest.next_file_id;
    // A transaction's DDL statements raise the schema version once, as DuckDB's do.
    let prior_schema_version = if target.amend {
        store.snapshot(s - 1).await?.schema_version
    } else {
        latest.schema_version
    };
    let mut schema_version = if target.amend {
        latest
            .schema_version
            .max(prior_schema_version + i64::from(c.is_ddl()))
    } else {
        latest.schema_version + i64::from(c.is_ddl())
    };
    let lit = |v: Literal| b.literal(&v);
    let t = |name: &str| b.table(name);
    let mut sql: Vec<String> = Vec::new();
    let mut changes: Vec<Change> = Vec::new();
    let mut layout_changed: Vec<CatalogId> = Vec::new();

    // Drops first, as DuckDB does.
    for id in &c.dropped_schemas {
        sql.push(format!(
            "UPDATE {} SET end_snapshot = {s} WHERE schema_id = {id} AND end_snapshot IS NULL",
            t("ducklake_schema")
        ));
        changes.push(Change::DroppedSchema(*id));
    }
    for id in &c.dropped_tables {
        for table in [
            "ducklake_table",
            "ducklake_partition_info",
            "ducklake_column",
            "ducklake_column_tag",
            "ducklake_data_file",
            "ducklake_delete_file",
            "ducklake_sort_info",
        ] {
            sql.push(format!(
                "UPDATE {} SET end_snapshot = {s} WHERE table_id = {id} AND end_snapshot IS NULL",
                t(table)
            ));
        }
        sql.push(format!(
            "UPDATE {} SET end_snapshot = {s} WHERE object_id = {id} AND end_snapshot IS NULL",
            t("ducklake_tag")
        ));
        changes.push(Change::DroppedTable(*id));
    }
    for id in &c.dropped_views {
        sql.push(format!(
            "UPDATE {} SET end_snapshot = {s} WHERE view_id = {id} AND end_snapshot IS NULL",
            t("ducklake_view")
        ));
        changes.push(Change::DroppedView(*id));
    }
    for (id, table) in &c.dropped_macros {
        sql.push(format!(
            "UPDATE {} SET end_snapshot = {s} WHERE macro_id = {id} AND end_snapshot IS NULL",
            t("ducklake_macro")
        ));
        changes.push(if *table {
            Change::DroppedTableMacro(*id)
        } else {
            Change::DroppedScalarMacro(*id)
        });
    }
    for name in &c.new_schemas {
        let id = next_catalog_id;
        next_catalog_id += 1;
        let uuid = uuid::Uuid::now_v7().to_string();
        let path = crate::spec::paths::default_dir_name(name, &uuid);
        sql.push(format!(
            "INSERT INTO {} VALUES ({id}, {}, {s}, NULL, {}, {}, {})",
            t("ducklake_schema"),
            lit(uuid.into()),
            lit(name.as_str().into()),
            lit(path.into()),
            lit(true.into())
        ));
        changes.push(Change::CreatedSchema(name.clone()));
    }
    let mut new_table_ids = Vec::new();
    for nt in &c.new_tables {
        let id = next_catalog_id;
        next_catalog_id += 1;
        new_table_ids.push(id);
        sql.push(format!(
            "INSERT INTO {} VALUES ({id}, {}, {s}, NULL, {}, {}, {}, {})",
            t("ducklake_table"),
            lit(nt.uuid.as_str().into()),
            nt.schema_id,
            lit(nt.name.as_str().into()),
            lit(nt.path.as_str().into()),
            lit(true.into())
        ));
        let rows = column_rows(b, id, s, None, &nt.columns);
        if !rows.is_empty() {
            sql.push(format!(
                "INSERT INTO {} VALUES {}",
                t("ducklake_column"),
                rows.join(", ")
            ));
        }
        layout_changed.push(id);
        changes.push(Change::CreatedTable(
            nt.schema_name.clone(),
            nt.name.clone(),
        ));
    }
    for v in &c.new_views {
        let id = next_catalog_id;
        next_catalog_id += 1;
        sql.push(format!(
            "INSERT INTO {} VALUES ({id}, {}, {s}, NULL, {}, {}, 'duckdb', {}, {})",
            t("ducklake_view"),
            lit(uuid::Uuid::new_v4().to_string().into()),
            v.schema_id,
            lit(v.name.as_str().into()),
            lit(v.sql.as_str().into()),
            lit(v.column_aliases.as_str().into())
        ));
        changes.push(Change::CreatedView(v.schema_name.clone(), v.name.clone()));
    }
    for m in &c.new_macros {
        let id = next_catalog_id;
        next_catalog_id += 1;
        sql.push(format!(
            "INSERT INTO {} VALUES ({}, {id}, {}, {s}, NULL)",
            t("ducklake_macro"),
            m.schema_id,
            lit(m.name.as_str().into())
        ));
        let kind = if m.table { "table" } else { "scalar" };
        for (impl_id, imp) in m.impls.iter().enumerate() {
            sql.push(format!(
                "INSERT INTO {} VALUES ({id}, {impl_id}, 'duckdb', {}, '{kind}')",
                t("ducklake_macro_impl"),
                lit(imp.sql.as_str().into())
            ));
            for (column_id, p) in imp.parameters.iter().enumerate() {
                let (name, type_name) = (&p.name, &p.type_name);
                let (value, value_type) = p
                    .default
                    .clone()
                    .unwrap_or_else(|| ("NULL".into(), "unknown".into()));
                sql.push(format!(
                    "INSERT INTO {} VALUES ({id}, {impl_id}, {column_id}, {}, {}, {}, {})",
                    t("ducklake_macro_parameters"),
                    lit(name.as_str().into()),
                    lit(type_name.as_str().into()),
                    lit(value.as_str().into()),
                    lit(value_type.as_str().into())
                ));
            }
        }
        changes.push(if m.table {
            Change::CreatedTableMacro(m.schema_name.clone(), m.name.clone())
        } else {
            Change::CreatedScalarMacro(m.schema_name.clone(), m.name.clone())
        });
    }
    for v in &c.renamed_views {
        // The current row is marked (end_snapshot -1, never seen outside this
        // catalog transaction), copied under the new name, then ended: the
        // current row may itself begin at `s` (a transaction's amended snapshot).
        let view = t("ducklake_view");
        let id = v.view_id;
        sql.push(format!(
            "UPDATE {view} SET end_snapshot = -1 WHERE view_id = {id} AND end_snapshot IS NULL"
        ));
        sql.push(format!(
            "INSERT INTO {view} SELECT view_id, view_uuid, {s}, NULL, schema_id, {}, dialect, sql, \
             column_aliases FROM {view} WHERE view_id = {id} AND end_snapshot = -1",
            lit(v.new_name.as_str().into()),
        ));
        sql.push(format!(
            "UPDATE {view} SET end_snapshot = {s} WHERE view_id = {id} AND end_snapshot = -1"
        ));
        changes.push(Change::CreatedView(
            v.schema_name.clone(),
            v.new_name.clone(),
        ));
    }
    for a in &c.alters {
        match a {
            Alter::AddColumn {
                table_id,
                parent,
                column,
            } => {
                let rows = column_rows(b, *table_id, s, *parent, std::slice::from_ref(column));
                sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_column"),
                    rows.join(", ")
                ));
                layout_changed.push(*table_id);
            }
            Alter::DropColumn {
                table_id,
                column_ids,
            } => {
                let ids = column_ids
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {table_id} AND column_id IN ({ids}) AND end_snapshot IS NULL",
                    t("ducklake_column")
                ));
                layout_changed.push(*table_id);
            }
            Alter::ReplaceColumn { row } => {
                sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {} AND column_id = {} AND end_snapshot IS NULL",
                    t("ducklake_column"),
                    row.table_id,
                    row.column_id
                ));
                sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_column"),
                    column_row_values(b, row, s)
                ));
                layout_changed.push(row.table_id);
            }
            Alter::SetPartition { table_id, keys } => {
                sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {table_id} AND end_snapshot IS NULL",
                    t("ducklake_partition_info")
                ));
                let partition_id = next_catalog_id;
                next_catalog_id += 1;
                sql.push(format!(
                    "INSERT INTO {} VALUES ({partition_id}, {table_id}, {s}, NULL)",
                    t("ducklake_partition_info")
                ));
                let rows: Vec<String> = keys
                    .iter()
                    .enumerate()
                    .map(|(i, (column_id, transform))| {
                        format!(
                            "({partition_id}, {table_id}, {i}, {column_id}, {})",
                            lit(transform.as_str().into())
                        )
                    })
                    .collect();
                if !rows.is_empty() {
                    sql.push(format!(
                        "INSERT INTO {} VALUES {}",
                        t("ducklake_partition_column"),
                        rows.join(", ")
                    ));
                }
                layout_changed.push(*table_id);
            }
            Alter::SetSort { table_id, keys } => {
                sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {table_id} AND end_snapshot IS NULL",
                    t("ducklake_sort_info")
                ));
                if !keys.is_empty() {
                    let sort_id = next_catalog_id;
                    next_catalog_id += 1;
                    sql.push(format!(
                        "INSERT INTO {} VALUES ({sort_id}, {table_id}, {s}, NULL)",
                        t("ducklake_sort_info")
                    ));
                    let rows: Vec<String> = keys
                        .iter()
                        .enumerate()
                        .map(|(i, k)| {
                            format!(
                                "({sort_id}, {table_id}, {i}, {}, 'duckdb', {}, {})",
                                lit(k.expression.as_str().into()),
                                lit(if k.descending { "DESC" } else { "ASC" }.into()),
                                lit(if k.nulls_first {
                                    "NULLS_FIRST"
                                } else {
                                    "NULLS_LAST"
                                }
                                .into())
                            )
                        })
                        .collect();
                    sql.push(format!(
                        "INSERT INTO {} VALUES {}",
                        t("ducklake_sort_expression"),
                        rows.join(", ")
                    ));
                }
            }
            Alter::RenameTable {
                row,
                new_name,
                schema_name,
            } => {
                sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {} AND end_snapshot IS NULL",
                    t("ducklake_table"),
                    row.table_id
                ));
                sql.push(format!(
                    "INSERT INTO {} VALUES ({}, {}, {s}, NULL, {}, {}, {}, {})",
                    t("ducklake_table"),
                    row.table_id,
                    lit(row.table_uuid.as_str().into()),
                    row.schema_id,
                    lit(new_name.as_str().into()),
                    lit(row.path.clone().into()),
                    lit(row.path_is_relative.into())
                ));
                layout_changed.push(row.table_id);
                changes.push(Change::CreatedTable(schema_name.clone(), new_name.clone()));
            }
        }
    }

    // Data: files, statistics, deletes.
    let table_id_of = |r: TableRef| -> Result<CatalogId> {
        match r {
            TableRef::Existing(id) => Ok(id),
            TableRef::New(i) => new_table_ids
                .get(i)
                .copied()
                .ok_or_else(|| Error::Corrupt(format!("change set refers to new table #{i}"))),
        }
    };
    // Name mappings first: their ids come from `next_file_id` before the files'.
    let mut mapping_ids = Vec::with_capacity(c.name_mappings.len());
    for m in &c.name_mappings {
        let mapping_id = next_file_id;
        next_file_id += 1;
        mapping_ids.push(mapping_id);
        sql.push(format!(
            "INSERT INTO {} VALUES ({mapping_id}, {}, 'map_by_name')",
            t("ducklake_column_mapping"),
            m.table_id
        ));
        let rows: Vec<String> = m
            .rows(mapping_id)
            .iter()
            .map(|r| {
                format!(
                    "({mapping_id}, {}, {}, {}, {}, {})",
                    r.column_id,
                    lit(r.source_name.as_str().into()),
                    r.target_field_id,
                    lit(r.parent_column.into()),
                    lit(r.is_partition.into())
                )
            })
            .collect();
        if !rows.is_empty() {
            sql.push(format!(
                "INSERT INTO {} VALUES {}",
                t("ducklake_name_mapping"),
                rows.join(", ")
            ));
        }
    }
    let mapping_of = |m: Option<MappingRef>| -> Result<Option<FileId>> {
        match m {
            None => Ok(None),
            Some(MappingRef::Existing(id)) => Ok(Some(id)),
            Some(MappingRef::New(i)) => mapping_ids
                .get(i)
                .copied()
                .map(Some)
                .ok_or_else(|| Error::Corrupt(format!("change set refers to new mapping #{i}"))),
        }
    };
    let mut files_by_table: HashMap<CatalogId, Vec<&AddedFile>> = HashMap::new();
    // Inlined rows go in after inlined rows are deleted (an UPDATE's new
    // version keeps the row id of the version it ends).
    let mut inlined_sql: Vec<String> = Vec::new();
    // Tables whose inlined table this commit has settled already.
    let mut inlined_ready: Vec<CatalogId> = Vec::new();
    let mut changes_inlined: Vec<CatalogId> = Vec::new();
    for f in &c.added_files {
        files_by_table
            .entry(table_id_of(f.table)?)
            .or_default()
            .push(f);
    }
    for ins in &c.inlined_inserts {
        files_by_table.entry(table_id_of(ins.table)?).or_default();
    }
    let all_stats: HashMap<CatalogId, TableStatsRow> = if files_by_table.is_empty() {
        HashMap::new()
    } else {
        store
            .table_stats()
            .await?
            .into_iter()
            .map(|r| (r.table_id, r))
            .collect()
    };
    let mut by_table: Vec<(&CatalogId, &Vec<&AddedFile>)> = files_by_table.iter().collect();
    by_table.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (&table_id, files) in by_table {
        let mut stats = all_stats.get(&table_id).cloned().unwrap_or(TableStatsRow {
            table_id,
            record_count: 0,
            next_row_id: 0,
            file_size_bytes: 0,
        });
        check_counters(
            &format!("table {table_id}'s statistics"),
            &[
                ("record_count", stats.record_count),
                ("next_row_id", stats.next_row_id),
                ("file_size_bytes", stats.file_size_bytes),
            ],
        )?;
        let types = leaf_types(lake, c, table_id, &new_table_ids, latest.snapshot_id).await?;
        let had_rows = stats.record_count > 0;
        let mut merged: HashMap<ColumnId, ColumnBounds> = HashMap::new();
        for row in store.table_column_stats(table_id).await? {
            let dt = types.get(&row.column_id);
            let parse = |v: &Option<String>| {
                v.as_deref()
                    .and_then(|t| dt.and_then(|dt| parse_stat(t, dt)))
            };
            let bounds = match (parse(&row.min_value), parse(&row.max_value)) {
                (Some(min), Some(max)) => Bound::Known(min, max),
                _ => Bound::Unknown,
            };
            merged.insert(
                row.column_id,
                ColumnBounds {
                    contains_null: row.contains_null,
                    contains_nan: row.contains_nan,
                    bounds,
                },
            );
        }
        for added in files {
            let file = &added.file;
            let data_file_id = next_file_id;
            next_file_id += 1;
            if let Some((_, values)) = &added.partition {
                sql.extend(partition_values_sql(b, data_file_id, table_id, values));
            }
            let mapping_id = mapping_of(added.mapping)?;
            // A registered file keeps its absolute path, as DuckDB stores it.
            let (path, relative) = match mapping_id {
                Some(_) => (file.url.as_str(), false),
                None => (file.file_name.as_str(), true),
            };
            sql.push(format!(
                "INSERT INTO {} VALUES ({data_file_id}, {table_id}, {s}, NULL, NULL, {}, {}, 'parquet', {}, {}, {}, {}, {}, NULL, {}, NULL)",
                t("ducklake_data_file"),
                lit(path.into()),
                lit(relative.into()),
                file.record_count,
                file.file_size_bytes,
                lit(file.footer_size.into()),
                stats.next_row_id,
                lit(added.partition.as_ref().map(|p| p.0).into()),
                lit(mapping_id.into()),
            ));
            stats.next_row_id += file.record_count;
            stats.record_count += file.record_count;
            stats.file_size_bytes += file.file_size_bytes;
            let mut stat_rows = Vec::new();
            for cs in &file.column_stats {
                stat_rows.push(file_stats_values(b, data_file_id, table_id, cs));
                merge_column_stats(&mut merged, &types, had_rows, cs);
            }
            if !stat_rows.is_empty() {
                sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_file_column_stats"),
                    stat_rows.join(", ")
                ));
            }
        }
        let inlined: Vec<&inline::InlinedInsert> = c
            .inlined_inserts
            .iter()
            .filter(|i| table_id_of(i.table).is_ok_and(|t| t == table_id))
            .collect();
        if !inlined.is_empty() {
            let created = new_table_ids
                .iter()
                .position(|id| *id == table_id)
                .and_then(|i| c.new_tables.get(i));
            let current = match created {
                Some(nt) => new_column_rows(table_id, s, None, &nt.columns),
                None => store.table_columns(table_id, latest.snapshot_id).await?,
            };
            let mut top: Vec<&ColumnRow> = current
                .iter()
                .filter(|r| r.parent_column.is_none())
                .collect();
            top.sort_by_key(|r| r.column_order);
            let top: Vec<ColumnId> = top.iter().map(|r| r.column_id).collect();
            if inlined.iter().any(|i| i.column_ids != top) {
                return Err(Error::CommitConflict {
                    message: format!(
                        "table {table_id} changed its columns in a concurrent commit while rows \
                         were being inserted into it; run the statement again"
                    ),
                    retryable: false,
                });
            }
            let (name, created_sql) = inline::ensure_table(
                lake,
                b,
                table_id,
                &current,
                s,
                &mut schema_version,
                prior_schema_version,
                created.is_none(),
            )
            .await?;
            // Created first (the rows go in after deletes, at the end).
            sql.extend(created_sql);
            inlined_ready.push(table_id);
            for ins in inlined {
                let n = i64::try_from(ins.rows.len()).unwrap_or(i64::MAX);
                let ids: Vec<i64> = match &ins.row_ids {
                    Some(ids) => ids.clone(),
                    None => {
                        let first = stats.next_row_id;
                        stats.next_row_id += n;
                        (first..first + n).collect()
                    }
                };
                stats.record_count += n;
                let values: Vec<String> = ins
                    .rows
                    .iter()
                    .zip(&ids)
                    .map(|(row, id)| format!("({id}, {s}, NULL, {row})"))
                    .collect();
                if !values.is_empty() {
                    inlined_sql.push(format!(
                        "INSERT INTO {} VALUES {}",
                        t(&name),
                        values.join(", ")
                    ));
                }
                for cs in &ins.column_stats {
                    merge_column_stats(&mut merged, &types, had_rows, cs);
                }
            }
            changes_inlined.push(table_id);
            // DuckDB signals "data changed" by taking a file id when a commit
            // inlines rows into a table without writing it a data file.
            if files.is_empty() {
                next_file_id += 1;
            }
        }
        sql.push(format!(
            "DELETE FROM {} WHERE table_id = {table_id}",
            t("ducklake_table_stats")
        ));
        sql.push(format!(
            "INSERT INTO {} VALUES ({table_id}, {}, {}, {})",
            t("ducklake_table_stats"),
            stats.record_count,
            stats.next_row_id,
            stats.file_size_bytes
        ));
        sql.push(format!(
            "DELETE FROM {} WHERE table_id = {table_id}",
            t("ducklake_table_column_stats")
        ));
        let mut by_column: Vec<(&ColumnId, &ColumnBounds)> = merged.iter().collect();
        by_column.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let rows: Vec<String> = by_column
            .into_iter()
            .map(|(id, m)| {
                let text = |v: Option<&ScalarValue>| {
                    v.and_then(|v| crate::spec::values::format_duckdb_text(v).ok().flatten())
                };
                let (min, max) = match &m.bounds {
                    Bound::Known(min, max) => (text(Some(min)), text(Some(max))),
                    Bound::Empty | Bound::Unknown => (None, None),
                };
                format!(
                    "({table_id}, {id}, {}, {}, {}, {}, NULL)",
                    lit(m.contains_null.into()),
                    lit(m.contains_nan.into()),
                    lit(min.into()),
                    lit(max.into())
                )
            })
            .collect();
        if !rows.is_empty() {
            sql.push(format!(
                "INSERT INTO {} VALUES {}",
                t("ducklake_table_column_stats"),
                rows.join(", ")
            ));
        }
        if !files.is_empty() {
            changes.push(Change::InsertedIntoTable(table_id));
        }
    }

    // Compaction: sources out (scheduled for deletion), the merged file in. Table
    // statistics do not change: the same rows, the same row ids.
    let mut merged_tables: Vec<CatalogId> = Vec::new();
    let mut rewritten_tables: Vec<CatalogId> = Vec::new();
    for m in &c.merges {
        let data_file_id = next_file_id;
        next_file_id += 1;
        let ids = m
            .sources
            .iter()
            .map(|(id, _, _)| id.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        if m.rewrite {
            // The sources stay for time travel; the table's row count drops by the
            // deleted rows the new file leaves out (as DuckDB recomputes it).
            for table in ["ducklake_data_file", "ducklake_delete_file"] {
                sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE data_file_id IN ({ids}) AND end_snapshot IS NULL",
                    t(table)
                ));
            }
            sql.push(format!(
                "UPDATE {} SET record_count = record_count - {} WHERE table_id = {}",
                t("ducklake_table_stats"),
                m.dropped_rows,
                m.table_id
            ));
        } else {
            for table in [
                "ducklake_data_file",
                "ducklake_file_column_stats",
                "ducklake_file_partition_value",
                "ducklake_file_variant_stats",
            ] {
                if table == "ducklake_file_variant_stats" && !b.table_exists(table).await? {
                    continue;
                }
                sql.push(format!(
                    "DELETE FROM {} WHERE data_file_id IN ({ids})",
                    t(table)
                ));
            }
            let now = lit(Literal::Timestamp(Utc::now()));
            let scheduled: Vec<String> = m
                .sources
                .iter()
                .map(|(id, path, relative)| {
                    format!(
                        "({id}, {}, {}, {now})",
                        lit(path.as_str().into()),
                        lit((*relative).into())
                    )
                })
                .collect();
            sql.push(format!(
                "INSERT INTO {} VALUES {}",
                t("ducklake_files_scheduled_for_deletion"),
                scheduled.join(", ")
            ));
        }
        if let Some((_, values)) = &m.partition {
            sql.extend(partition_values_sql(b, data_file_id, m.table_id, values));
        }
        // A merged file keeps its sources' first snapshot and row ids; a rewritten
        // one begins now and carries its row ids in `_ducklake_internal_row_id`.
        let (begin, row_id_start, partial_max) = if m.rewrite {
            (s, "NULL".to_string(), "NULL".to_string())
        } else {
            (
                m.begin_snapshot,
                m.row_id_start.to_string(),
                m.partial_max.to_string(),
            )
        };
        sql.push(format!(
            "INSERT INTO {} VALUES ({data_file_id}, {}, {begin}, NULL, NULL, {}, {}, 'parquet', {}, {}, {}, {row_id_start}, {}, NULL, NULL, {partial_max})",
            t("ducklake_data_file"),
            m.table_id,
            lit(m.file.file_name.as_str().into()),
            lit(true.into()),
            m.file.record_count,
            m.file.file_size_bytes,
            lit(m.file.footer_size.into()),
            lit(m.partition.as_ref().map(|p| p.0).into()),
        ));
        let stat_rows: Vec<String> = m
            .file
            .column_stats
            .iter()
            .map(|cs| file_stats_values(b, data_file_id, m.table_id, cs))
            .collect();
        if !stat_rows.is_empty() {
            sql.push(format!(
                "INSERT INTO {} VALUES {}",
                t("ducklake_file_column_stats"),
                stat_rows.join(", ")
            ));
        }
        let tables = if m.rewrite {
            &mut rewritten_tables
        } else {
            &mut merged_tables
        };
        if !tables.contains(&m.table_id) {
            tables.push(m.table_id);
        }
    }
    for table_id in merged_tables {
        changes.push(Change::MergeAdjacent(table_id));
    }
    for table_id in rewritten_tables {
        // The rewritten files' deleted values leave the table's bounds: they are
        // recomputed from the live files, as DuckDB does (its `min`/`max` answers
        // come from them).
        let removed: Vec<FileId> = c
            .merges
            .iter()
            .filter(|m| m.rewrite && m.table_id == table_id)
            .flat_map(|m| m.sources.iter().map(|(id, _, _)| *id))
            .collect();
        let added: Vec<&WrittenFile> = c
            .merges
            .iter()
            .filter(|m| m.rewrite && m.table_id == table_id)
            .map(|m| &m.file)
            .collect();
        let types = leaf_types(lake, c, table_id, &[], latest.snapshot_id).await?;
        let rows = live_column_bounds(lake, table_id, latest.snapshot_id, &types, &removed, &added)
            .await?
            .into_iter()
            .map(|(id, m)| table_column_stats_values(b, table_id, id, &m))
            .collect::<Vec<_>>();
        sql.push(format!(
            "DELETE FROM {} WHERE table_id = {table_id}",
            t("ducklake_table_column_stats")
        ));
        if !rows.is_empty() {
            sql.push(format!(
                "INSERT INTO {} VALUES {}",
                t("ducklake_table_column_stats"),
                rows.join(", ")
            ));
        }
        changes.push(Change::RewriteDelete(table_id));
    }

    for (table_id, file_id) in &c.ended_files {
        sql.push(format!(
            "UPDATE {} SET end_snapshot = {s} WHERE data_file_id = {file_id} AND end_snapshot IS NULL",
            t("ducklake_data_file")
        ));
        sql.push(format!(
            "UPDATE {} SET end_snapshot = {s} WHERE data_file_id = {file_id} AND table_id = {table_id} AND end_snapshot IS NULL",
            t("ducklake_delete_file")
        ));
    }
    for (d, file) in c.delete_files.iter().zip(delete_files) {
        let id = next_file_id;
        next_file_id += 1;
        let earliest = d.previous.iter().map(|e| e.1).min();
        let begin = match &d.replaces {
            Some((old_id, old_path, old_begin)) => {
                sql.push(format!(
                    "DELETE FROM {} WHERE delete_file_id = {old_id}",
                    t("ducklake_delete_file")
                ));
                sql.push(format!(
                    "INSERT INTO {} VALUES ({old_id}, {}, {}, {})",
                    t("ducklake_files_scheduled_for_deletion"),
                    lit(old_path.as_str().into()),
                    lit(true.into()),
                    lit(Literal::Timestamp(Utc::now()))
                ));
                *old_begin
            }
            None => s,
        };
        let (begin, partial_max) = if d.flushed {
            let latest_entry = d.previous.iter().map(|e| e.1).max().unwrap_or(begin);
            (
                earliest.map_or(begin, |e| e.min(begin)),
                latest_entry.to_string(),
            )
        } else if d.replaces.is_some() {
            (begin, s.to_string())
        } else {
            (begin, "NULL".to_string())
        };
        sql.push(format!(
            "INSERT INTO {} VALUES ({id}, {}, {begin}, NULL, {}, {}, {}, 'parquet', {}, {}, {}, NULL, {partial_max})",
            t("ducklake_delete_file"),
            d.table_id,
            d.data_file_id,
            lit(file.file_name.as_str().into()),
            lit(true.into()),
            file.record_count,
            file.file_size_bytes,
            lit(file.footer_size.into()),
        ));
    }
    for f in &c.inlined_flushes {
        let table_id = f.table_id;
        for file in &f.files {
            let data_file_id = next_file_id;
            next_file_id += 1;
            let data = &file.data;
            if let Some((_, values)) = &file.partition {
                sql.extend(partition_values_sql(b, data_file_id, table_id, values));
            }
            sql.push(format!(
                "INSERT INTO {} VALUES ({data_file_id}, {table_id}, {}, NULL, NULL, {}, {}, 'parquet', {}, {}, {}, {}, {}, NULL, NULL, {})",
                t("ducklake_data_file"),
                file.begin_snapshot,
                lit(data.file_name.as_str().into()),
                lit(true.into()),
                data.record_count,
                data.file_size_bytes,
                lit(data.footer_size.into()),
                file.row_id_start,
                lit(file.partition.as_ref().map(|p| p.0).into()),
                file.partial_max,
            ));
            let stat_rows: Vec<String> = data
                .column_stats
                .iter()
                .map(|cs| file_stats_values(b, data_file_id, table_id, cs))
                .collect();
            if !stat_rows.is_empty() {
                sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_file_column_stats"),
                    stat_rows.join(", ")
                ));
            }
            sql.push(format!(
                "UPDATE {} SET file_size_bytes = file_size_bytes + {} WHERE table_id = {table_id}",
                t("ducklake_table_stats"),
                data.file_size_bytes
            ));
            if let Some((deletes, begin)) = &file.deletes {
                let id = next_file_id;
                next_file_id += 1;
                sql.push(format!(
                    "INSERT INTO {} VALUES ({id}, {table_id}, {begin}, NULL, {data_file_id}, {}, {}, 'parquet', {}, {}, {}, NULL, NULL)",
                    t("ducklake_delete_file"),
                    lit(deletes.file_name.as_str().into()),
                    lit(true.into()),
                    deletes.record_count,
                    deletes.file_size_bytes,
                    lit(deletes.footer_size.into()),
                ));
                if !changes.contains(&Change::DeletedFromTable(table_id)) {
                    changes.push(Change::DeletedFromTable(table_id));
                }
            }
        }
        sql.push(format!(
            "DELETE FROM {} WHERE begin_snapshot <= {}",
            t(&f.inlined_table),
            f.upto
        ));
        if f.drop {
            sql.push(format!(
                "DELETE FROM {} WHERE table_id = {table_id} AND schema_version = {}",
                t("ducklake_inlined_data_tables"),
                f.schema_version
            ));
            sql.push(format!("DROP TABLE IF EXISTS {}", t(&f.inlined_table)));
        }
    }
    for (table_id, upto) in &c.flushed_inlined_deletes {
        sql.push(format!(
            "DELETE FROM {} WHERE begin_snapshot <= {upto}",
            t(&format!("ducklake_inlined_delete_{table_id}"))
        ));
    }
    for (_, inlined_table, row_ids) in &c.inlined_row_deletes {
        let ids = row_ids
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        sql.push(format!(
            "UPDATE {} SET end_snapshot = {s} WHERE row_id IN ({ids}) AND end_snapshot IS NULL",
            t(inlined_table)
        ));
    }
    let mut by_table: Vec<&(CatalogId, FileId, Vec<i64>)> = c.inlined_file_deletes.iter().collect();
    by_table.sort_by_key(|(t, f, _)| (*t, *f));
    let mut created_delete_tables: Vec<CatalogId> = Vec::new();
    for (table_id, file_id, positions) in by_table {
        let name = format!("ducklake_inlined_delete_{table_id}");
        if !created_delete_tables.contains(table_id) {
            created_delete_tables.push(*table_id);
            sql.push(format!(
                "CREATE TABLE IF NOT EXISTS {}(file_id BIGINT, row_id BIGINT, begin_snapshot BIGINT)",
                t(&name)
            ));
        }
        let values: Vec<String> = positions
            .iter()
            .map(|p| format!("({file_id}, {p}, {s})"))
            .collect();
        if !values.is_empty() {
            sql.push(format!(
                "INSERT INTO {} VALUES {}",
                t(&name),
                values.join(", ")
            ));
        }
    }
    sql.extend(inlined_sql);
    let mut inlined_deleted: Vec<CatalogId> = Vec::new();
    let mut deleted = c.deleted_tables();
    deleted.retain(|t| !c.dropped_tables.contains(t));
    for table_id in deleted {
        if (c.delete_files.iter().any(|d| d.table_id == table_id)
            || c.ended_files.iter().any(|(t, _)| *t == table_id))
            && !changes.contains(&Change::DeletedFromTable(table_id))
        {
            changes.push(Change::DeletedFromTable(table_id));
        }
        if c.inlined_row_deletes.iter().any(|(t, _, _)| *t == table_id)
            || c.inlined_file_deletes
                .iter()
                .any(|(t, _, _)| *t == table_id)
        {
            inlined_deleted.push(table_id);
        }
    }
    if !c.alters.is_empty() || !c.comments.is_empty() {
        for id in c.altered_tables() {
            changes.push(Change::AlteredTable(id));
        }
    }
    for comment in &c.comments {
        let value = lit(comment.value.clone().into());
        match comment.target {
            CommentTarget::Table(id) | CommentTarget::View(id) => {
                sql.push(format!(
                    "UPDATE {tag} SET end_snapshot = {s} WHERE object_id = {id} AND key = 'comment' \
                     AND end_snapshot IS NULL",
                    tag = t("ducklake_tag")
                ));
                sql.push(format!(
                    "INSERT INTO {} VALUES ({id}, {s}, NULL, 'comment', {value})",
                    t("ducklake_tag")
                ));
                if let CommentTarget::View(id) = comment.target
                    && !changes.contains(&Change::AlteredView(id))
                {
                    changes.push(Change::AlteredView(id));
                }
            }
            CommentTarget::Column(table, column) => {
                sql.push(format!(
                    "UPDATE {tag} SET end_snapshot = {s} WHERE table_id = {table} AND column_id = {column} \
                     AND key = 'comment' AND end_snapshot IS NULL",
                    tag = t("ducklake_column_tag")
                ));
                sql.push(format!(
                    "INSERT INTO {} VALUES ({table}, {column}, {s}, NULL, 'comment', {value})",
                    t("ducklake_column_tag")
                ));
            }
        }
    }
    // A table whose column layout changed gets an inlined table for its new
    // layout, as DuckDB creates one (DuckDB inserts into the newest inlined
    // table of a table, so a stale one would take rows of another layout).
    layout_changed.sort_unstable();
    layout_changed.dedup();
    // The tables' rows, read once if an existing table's layout changed.
    let mut existing: Option<Vec<TableRow>> = None;
    for &table_id in &layout_changed {
        if c.dropped_tables.contains(&table_id) || inlined_ready.contains(&table_id) {
            continue;
        }
        let created = new_table_ids
            .iter()
            .position(|id| *id == table_id)
            .and_then(|i| c.new_tables.get(i));
        let (schema_id, wanted) = match created {
            Some(nt) => (
                nt.schema_id,
                new_column_rows(table_id, s, None, &nt.columns),
            ),
            None => {
                if existing.is_none() {
                    existing = Some(store.tables(latest.snapshot_id).await?);
                }
                let Some(row) = existing.iter().flatten().find(|r| r.table_id == table_id) else {
                    continue;
                };
                let current = store.table_columns(table_id, latest.snapshot_id).await?;
                (row.schema_id, columns_after(c, table_id, s, current))
            }
        };
        let tree = crate::catalog::build_column_tree(&wanted)?;
        if !inline::can_inline(b.dialect(), &tree)
            || inline::configured_limit(lake, schema_id, table_id).await? == 0
        {
            continue;
        }
        let (_, created) = inline::ensure_table(
            lake,
            b,
            table_id,
            &wanted,
            s,
            &mut schema_version,
            prior_schema_version,
            false,
        )
        .await?;
        sql.extend(created);
    }
    // DuckDB lists inlined changes after every other kind.
    changes.extend(changes_inlined.into_iter().map(Change::InlinedInsert));
    changes.extend(inlined_deleted.into_iter().map(Change::InlinedDelete));
    // (A flush of inlined deletions only is logged as a deletion, as by DuckDB.)
    let mut flushed: Vec<CatalogId> = c.inlined_flushes.iter().map(|f| f.table_id).collect();
    flushed.sort_unstable();
    flushed.dedup();
    changes.extend(flushed.into_iter().map(Change::InlineFlush));
    for table_id in layout_changed {
        if target.amend {
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
    if target.amend {
        let mut all = match store.changes_since(s - 1).await?.first() {
            Some(earlier) => parse_changes(earlier)?,
            None => Vec::new(),
        };
        for change in changes {
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
            lit(format_changes(&changes).into())
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
        new_table_ids,
    })
}

/// The first column id a new column of `table_id` may use: ids are never reused,
/// so it is one above every id of every version (dropped columns included).
pub async fn next_column_id(lake: &Lake, table_id: CatalogId) -> Result<ColumnId> {
    let max = lake
        .store()
        .all_column_versions(table_id)
        .await?
        .iter()
        .map(|r| r.column_id)
        .max()
        .unwrap_or(0);
    check_counters(
        &format!("table {table_id}'s columns"),
        &[("column_id", max)],
    )?;
    Ok(max + 1)
}

/// Catalog counters above this are corrupt (no lake counts that far) and would
/// overflow as a commit numbers what it adds.
const MAX_COUNTER: i64 = i64::MAX / 2;

/// Refuse to commit on top of counters (ids, row counts, sizes) a damaged
/// catalog holds near `i64::MAX`, naming them, instead of overflowing.
fn check_counters(what: &str, counters: &[(&str, i64)]) -> Result<()> {
    match counters.iter().find(|(_, v)| *v > MAX_COUNTER) {
        Some((name, value)) => Err(Error::Corrupt(format!(
            "the catalog's {what} has {name} = {value}, beyond what a lake can count to"
        ))),
        None => Ok(()),
    }
}

fn column_rows(
    b: &dyn SqlBackend,
    table_id: CatalogId,
    s: SnapshotId,
    parent: Option<ColumnId>,
    columns: &[NewColumn],
) -> Vec<String> {
    new_column_rows(table_id, s, parent, columns)
        .iter()
        .map(|row| column_row_values(b, row, s))
        .collect()
}

/// The `ducklake_column` rows of new columns (and their children).
pub(crate) fn new_column_rows(
    table_id: CatalogId,
    s: SnapshotId,
    parent: Option<ColumnId>,
    columns: &[NewColumn],
) -> Vec<ColumnRow> {
    let mut all = Vec::new();
    for c in columns {
        c.walk(parent, &mut all);
    }
    all.into_iter()
        .map(|(parent, c)| ColumnRow {
            column_id: c.column_id,
            begin_snapshot: s,
            end_snapshot: None,
            table_id,
            column_order: c.column_id,
            column_name: c.name.clone(),
            column_type: c.ty.to_string(),
            initial_default: c.initial_default.clone(),
            default_value: Some(c.default_value.clone().unwrap_or_else(|| "NULL".into())),
            nulls_allowed: c.nulls_allowed,
            parent_column: parent,
            default_value_type: None,
        })
        .collect()
}

/// The columns of `table_id` once `c`'s changes to it apply (`current`: its
/// columns before; `new`: the columns of a table `c` creates).
fn columns_after(
    c: &ChangeSet,
    table_id: CatalogId,
    s: SnapshotId,
    mut current: Vec<ColumnRow>,
) -> Vec<ColumnRow> {
    for a in &c.alters {
        match a {
            Alter::AddColumn {
                table_id: t,
                parent,
                column,
            } if *t == table_id => {
                current.extend(new_column_rows(
                    table_id,
                    s,
                    *parent,
                    std::slice::from_ref(column),
                ));
            }
            Alter::DropColumn {
                table_id: t,
                column_ids,
            } if *t == table_id => current.retain(|r| !column_ids.contains(&r.column_id)),
            Alter::ReplaceColumn { row } if row.table_id == table_id => {
                if let Some(old) = current.iter_mut().find(|r| r.column_id == row.column_id) {
                    *old = row.clone();
                }
            }
            _ => {}
        }
    }
    current
}

fn column_row_values(b: &dyn SqlBackend, r: &ColumnRow, s: SnapshotId) -> String {
    let lit = |v: Literal| b.literal(&v);
    let nested = r
        .column_type
        .parse::<DuckLakeType>()
        .is_ok_and(|t| t.is_nested());
    format!(
        "({}, {s}, NULL, {}, {}, {}, {}, {}, {}, {}, {}, {}, 'duckdb')",
        r.column_id,
        r.table_id,
        r.column_order,
        lit(r.column_name.as_str().into()),
        lit(r.column_type.as_str().into()),
        lit(r.initial_default.clone().into()),
        lit(r.default_value.clone().into()),
        lit(r.nulls_allowed.into()),
        lit(r.parent_column.into()),
        lit(match &r.default_value_type {
            Some(kind) => kind.as_str(),
            None if nested => "",
            None => "literal",
        }
        .into()),
    )
}

fn file_stats_values(
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

/// The data files of a table at a snapshot (re-exported for writers).
pub async fn live_files(
    lake: &Lake,
    table_id: CatalogId,
    s: SnapshotId,
) -> Result<Vec<DataFileRow>> {
    lake.store().data_files(table_id, s).await
}

#[cfg(test)]
mod retry_tests {
    use super::retryable_code;

    #[test]
    fn retries_are_decided_by_error_code() {
        // PostgreSQL: unique violation, serialisation failure, deadlock, lock timeout.
        for code in ["23505", "40001", "40P01", "55P03"] {
            assert!(retryable_code(code), "{code}");
        }
        // SQLite: BUSY, LOCKED and their extended codes, primary key / unique.
        for code in ["5", "6", "261", "517", "262", "1555", "2067"] {
            assert!(retryable_code(code), "{code}");
        }
        // Not retryable: syntax errors, missing tables, NOT NULL, disk I/O.
        for code in ["42601", "42P01", "23502", "1", "10", "1299"] {
            assert!(!retryable_code(code), "{code}");
        }
    }
}
