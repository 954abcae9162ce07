//! The change set: everything one snapshot changes, as plain data built by the
//! writers and rendered into catalog rows by [`super::render`].

use datafusion::arrow::datatypes::{DataType, Field};

use super::inline;
use crate::error::{Error, Result};
use crate::spec::rows::{ColumnRow, TableRow};
use crate::spec::types::DuckLakeType;
use crate::spec::{CatalogId, ColumnId, FileId, SnapshotId};
use crate::write::WrittenFile;

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

    pub(super) fn walk<'a>(
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
    /// ([`next_column_id`](super::next_column_id)); a concurrent ALTER makes the commit conflict.
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

/// Everything one snapshot changes. Build it, then [`commit`](super::commit) it.
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

    pub(super) fn altered_tables(&self) -> Vec<CatalogId> {
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
    pub(super) fn written_tables(&self) -> Vec<CatalogId> {
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

    pub(super) fn deleted_tables(&self) -> Vec<CatalogId> {
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

    pub(super) fn is_ddl(&self) -> bool {
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
