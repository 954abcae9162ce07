//! One plain struct per DuckLake catalog table (the columns lakeq uses), with field
//! names as in the DDL. These are what the metadata store returns.

use chrono::{DateTime, Utc};

use super::{CatalogId, ColumnId, FileId, SnapshotId};

/// A row of `ducklake_snapshot`.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRow {
    /// Snapshot id.
    pub snapshot_id: SnapshotId,
    /// Commit time (UTC).
    pub snapshot_time: DateTime<Utc>,
    /// Catalog-wide schema version after this snapshot.
    pub schema_version: i64,
    /// Next free schema/table/view/partition id.
    pub next_catalog_id: CatalogId,
    /// Next free data/delete file id.
    pub next_file_id: FileId,
}

/// A DuckDB macro stored in the lake (`ducklake_macro` with its
/// `ducklake_macro_impl` and `ducklake_macro_parameters` rows).
#[derive(Debug, Clone, PartialEq)]
pub struct MacroRow {
    /// Schema id.
    pub schema_id: CatalogId,
    /// Macro id.
    pub macro_id: CatalogId,
    /// Name.
    pub macro_name: String,
    /// Its implementations (DuckDB allows one per parameter count).
    pub impls: Vec<MacroImplRow>,
}

/// One implementation of a macro.
#[derive(Debug, Clone, PartialEq)]
pub struct MacroImplRow {
    /// The macro it belongs to (a scalar and a table macro of the same name are
    /// two macros, whose implementations lakeq serves under one name).
    pub macro_id: CatalogId,
    /// Implementation id.
    pub impl_id: i64,
    /// SQL dialect of the body (`duckdb`).
    pub dialect: String,
    /// The body: an expression (`scalar`) or a query (`table`).
    pub sql: String,
    /// `scalar` or `table`.
    pub kind: String,
    /// Parameters in order: (name, default value as SQL text).
    pub parameters: Vec<(String, Option<String>)>,
    /// The declared DuckLake type of each parameter (`int32`), `None` when
    /// untyped; arguments are cast to it, as DuckDB does.
    pub parameter_types: Vec<Option<String>>,
}

/// A row of `ducklake_snapshot_changes`.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotChangesRow {
    /// Snapshot id.
    pub snapshot_id: SnapshotId,
    /// The change list (see [`crate::spec::changes`]).
    pub changes_made: Option<String>,
    /// `author` of `set_commit_message`.
    pub author: Option<String>,
    /// `commit_message` of `set_commit_message`.
    pub commit_message: Option<String>,
    /// `extra_info` of `set_commit_message`.
    pub commit_extra_info: Option<String>,
}

/// A row of `ducklake_schema`.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaRow {
    /// Schema id.
    pub schema_id: CatalogId,
    /// Schema name.
    pub schema_name: String,
    /// Directory of the schema's data, relative to `data_path` when `path_is_relative`.
    pub path: Option<String>,
    /// Whether `path` is relative to the data path.
    pub path_is_relative: bool,
}

/// A row of `ducklake_table`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    /// Table id (stable across renames).
    pub table_id: CatalogId,
    /// Table UUID.
    pub table_uuid: String,
    /// Snapshot at which this version of the table row begins.
    pub begin_snapshot: SnapshotId,
    /// Owning schema.
    pub schema_id: CatalogId,
    /// Table name.
    pub table_name: String,
    /// Directory of the table's data, relative to the schema directory when `path_is_relative`.
    pub path: Option<String>,
    /// Whether `path` is relative to the schema directory.
    pub path_is_relative: bool,
}

/// A row of `ducklake_view`.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewRow {
    /// View id.
    pub view_id: CatalogId,
    /// Owning schema.
    pub schema_id: CatalogId,
    /// View name.
    pub view_name: String,
    /// SQL dialect of `sql` (`duckdb`).
    pub dialect: String,
    /// The view's query.
    pub sql: String,
    /// Column aliases, `"x","y"` or empty.
    pub column_aliases: String,
}

/// A row of `ducklake_column`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnRow {
    /// Column id (= Parquet field id).
    pub column_id: ColumnId,
    /// Snapshot at which this version begins.
    pub begin_snapshot: SnapshotId,
    /// Snapshot at which this version ends (exclusive), if it ended.
    pub end_snapshot: Option<SnapshotId>,
    /// Table id.
    pub table_id: CatalogId,
    /// Position among siblings.
    pub column_order: i64,
    /// Column name (`element`, `key`, `value` for list/map children).
    pub column_name: String,
    /// DuckLake type name.
    pub column_type: String,
    /// Value for rows written before the column existed (DuckDB text).
    pub initial_default: Option<String>,
    /// Default for new rows (`NULL` string = none).
    pub default_value: Option<String>,
    /// How `default_value` is written: `literal` (a value as DuckDB text) or
    /// `expression` (DuckDB SQL, such as `now()`).
    pub default_value_type: Option<String>,
    /// Whether NULLs are allowed.
    pub nulls_allowed: bool,
    /// Parent column id for nested fields.
    pub parent_column: Option<ColumnId>,
}

/// A `ducklake_partition_column` row joined with its visible `ducklake_partition_info`.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionColumnRow {
    /// Partition spec id.
    pub partition_id: CatalogId,
    /// Table id.
    pub table_id: CatalogId,
    /// 0-based key index.
    pub partition_key_index: i64,
    /// Source column.
    pub column_id: ColumnId,
    /// Transform (`identity`, `year`, `month`, `day`, `hour`, `bucket(N)`).
    pub transform: String,
}

/// A row of `ducklake_inlined_data_tables`.
#[derive(Debug, Clone, PartialEq)]
pub struct InlinedTableRow {
    /// Table id.
    pub table_id: CatalogId,
    /// Name of the inlined data table in the catalog database.
    pub table_name: String,
    /// Schema version whose column layout it has.
    pub schema_version: i64,
}

/// A row of `ducklake_schema_versions`.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaVersionRow {
    /// First snapshot with this layout.
    pub begin_snapshot: SnapshotId,
    /// The schema version.
    pub schema_version: i64,
    /// Table id.
    pub table_id: CatalogId,
}

/// A row of `ducklake_table_stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableStatsRow {
    /// Table id.
    pub table_id: CatalogId,
    /// Rows ever inserted.
    pub record_count: i64,
    /// Next row id to hand out.
    pub next_row_id: i64,
    /// Bytes of all data files ever added.
    pub file_size_bytes: i64,
}

/// A visible `ducklake_data_file` row joined with its visible delete file (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct DataFileRow {
    /// Data file id.
    pub data_file_id: FileId,
    /// Table id.
    pub table_id: CatalogId,
    /// First snapshot of the file.
    pub begin_snapshot: SnapshotId,
    /// File path.
    pub path: String,
    /// Whether `path` is relative to the table directory.
    pub path_is_relative: bool,
    /// Rows physically in the file.
    pub record_count: i64,
    /// File size in bytes.
    pub file_size_bytes: i64,
    /// Thrift footer length, when known.
    pub footer_size: Option<i64>,
    /// Row id of the first row.
    pub row_id_start: i64,
    /// Partition spec the file was written under.
    pub partition_id: Option<CatalogId>,
    /// Footer key (encrypted lakes).
    pub encryption_key: Option<String>,
    /// Name mapping for files without field ids.
    pub mapping_id: Option<FileId>,
    /// Max snapshot of rows in a multi-snapshot file.
    pub partial_max: Option<SnapshotId>,
    /// The delete file visible for this data file, if any.
    pub delete_file: Option<DeleteFileRow>,
}

/// A `ducklake_delete_file` row.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteFileRow {
    /// Delete file id.
    pub delete_file_id: FileId,
    /// Data file whose rows it deletes.
    pub data_file_id: FileId,
    /// First snapshot of the (possibly cumulative) deletions it holds.
    pub begin_snapshot: SnapshotId,
    /// Path.
    pub path: String,
    /// Whether `path` is relative to the table directory.
    pub path_is_relative: bool,
    /// `parquet` or `puffin`.
    pub format: String,
    /// Number of deleted positions.
    pub delete_count: i64,
    /// File size.
    pub file_size_bytes: i64,
    /// Footer key (encrypted lakes).
    pub encryption_key: Option<String>,
}

/// A row of `ducklake_file_column_stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileColumnStatsRow {
    /// Data file id.
    pub data_file_id: FileId,
    /// Column id.
    pub column_id: ColumnId,
    /// Non-null values.
    pub value_count: Option<i64>,
    /// Null values.
    pub null_count: Option<i64>,
    /// Minimum (DuckDB text), if known.
    pub min_value: Option<String>,
    /// Maximum (DuckDB text), if known.
    pub max_value: Option<String>,
    /// Whether the file holds a NaN (floats; NULL = unknown).
    pub contains_nan: Option<bool>,
    /// Bytes the column takes in the file, if recorded.
    pub column_size_bytes: Option<i64>,
}

/// A row of `ducklake_file_partition_value`.
#[derive(Debug, Clone, PartialEq)]
pub struct FilePartitionValueRow {
    /// Data file id.
    pub data_file_id: FileId,
    /// Key index.
    pub partition_key_index: i64,
    /// Value (DuckDB text), NULL for a NULL partition.
    pub partition_value: Option<String>,
}

/// A row of `ducklake_name_mapping`.
#[derive(Debug, Clone, PartialEq)]
pub struct NameMappingRow {
    /// Mapping id.
    pub mapping_id: FileId,
    /// Sequence number within the mapping.
    pub column_id: i64,
    /// Name in the file.
    pub source_name: String,
    /// Table column id it maps to.
    pub target_field_id: ColumnId,
    /// Parent sequence number for nested fields.
    pub parent_column: Option<i64>,
    /// Whether the value comes from a Hive path segment.
    pub is_partition: bool,
}

/// A row of `ducklake_table_column_stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableColumnStatsRow {
    /// Table id.
    pub table_id: CatalogId,
    /// Column id.
    pub column_id: ColumnId,
    /// Whether any NULL was ever inserted (NULL = unknown).
    pub contains_null: Option<bool>,
    /// Whether any NaN was ever inserted (NULL = unknown or not a float).
    pub contains_nan: Option<bool>,
    /// Minimum (DuckDB text), if known.
    pub min_value: Option<String>,
    /// Maximum (DuckDB text), if known.
    pub max_value: Option<String>,
}

/// One key of a table's sort order (`ducklake_sort_expression`, DuckDB dialect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The expression's SQL text (DuckDB dialect).
    pub expression: String,
    /// `DESC` rather than `ASC`.
    pub descending: bool,
    /// `NULLS FIRST` rather than DuckDB's default `NULLS LAST`.
    pub nulls_first: bool,
}
