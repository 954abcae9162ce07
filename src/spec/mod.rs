//! The DuckLake format as plain types: no I/O, no database, no DataFusion planning.
//!
//! Names follow the DuckLake specification and the catalog DDL that DuckDB 1.5.5
//! writes (see `../shared/ducklake/SPEC.md`).

pub mod changes;
pub mod float_text;
pub mod geometry;
pub mod paths;
pub mod rows;
pub mod types;
pub mod values;

/// The only catalog format version lakeq reads and writes.
pub const SUPPORTED_VERSION: &str = "1.0";

/// Parquet field id of the hidden row-id column in data files.
pub const ROW_ID_FIELD_ID: i32 = 2_147_483_540;
/// Parquet field id of the hidden per-row snapshot-id column.
pub const SNAPSHOT_ID_FIELD_ID: i32 = 2_147_483_539;
/// Parquet field id of `file_path` in positional delete files.
pub const DELETE_FILE_PATH_FIELD_ID: i32 = 2_147_483_646;
/// Parquet field id of `pos` in positional delete files.
pub const DELETE_POS_FIELD_ID: i32 = 2_147_483_645;

/// Name of the hidden row-id column.
pub const ROW_ID_COLUMN: &str = "_ducklake_internal_row_id";
/// Name of the hidden snapshot-id column.
pub const SNAPSHOT_ID_COLUMN: &str = "_ducklake_internal_snapshot_id";

/// A snapshot id (`ducklake_snapshot.snapshot_id`).
pub type SnapshotId = i64;
/// A schema, table, view, partition, sort or macro id (allocated from `next_catalog_id`).
pub type CatalogId = i64;
/// A data file, delete file or column mapping id (allocated from `next_file_id`).
pub type FileId = i64;
/// A column id: unique per table, equal to the Parquet field id.
pub type ColumnId = i64;
