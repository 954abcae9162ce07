//! `ducklake_add_data_files`: register existing Parquet files in a table
//! without copying them, as DuckDB 1.5.5 does (SPEC §4.16).
//!
//! Files written by other tools carry no DuckLake field ids, so each file gets
//! a `map_by_name` column mapping: file columns are matched to table columns by
//! name (case-insensitively, struct fields too; list elements and map keys and
//! values by position), and, unless `hive_partitioning => false`, `key=value`
//! directories of the path name values of table columns the file lacks (or
//! overrides). A mapping identical to one the table's files already use is
//! reused. Types must be ones DuckDB accepts for the table's type (integers
//! that fit, the float widths, timestamp precisions, decimals that fit, exact
//! types otherwise); anything else is refused naming the file and the column.
//!
//! Every file is read once, through the same scan that later reads it (name
//! mapping, casts, Hive values), and its rows go through lakeq's Parquet
//! encoder without being written, so its catalog statistics are exactly what a
//! file lakeq wrote with these rows would get. All files of one call are one
//! snapshot (`inserted_into_table:<id>`); on any error nothing is registered,
//! and the files are never moved or removed (not even when a transaction rolls
//! back). Empty files are checked but not registered, as in DuckDB.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use datafusion::common::DataFusionError;
use datafusion::datasource::provider_as_source;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::parquet::basic::{
    ConvertedType, LogicalType, TimeUnit as ParquetTimeUnit, Type as PhysicalType,
};
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use datafusion::parquet::schema::types::Type as ParquetType;
use futures::StreamExt;
use object_store::ObjectStoreExt;

use crate::catalog::files::TableFiles;
use crate::catalog::{CatalogSnapshot, ColumnNode, TableEntry};
use crate::commit::{
    AddedFile, ChangeSet, MappingRef, NameMapEntry, NewNameMapping, TableRef, commit,
};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::provider::table::LakeTable;
use crate::spec::rows::{DataFileRow, NameMappingRow, PartitionColumnRow};
use crate::spec::types::DuckLakeType;
use crate::spec::values::format_duckdb_text;
use crate::spec::{ColumnId, FileId};
use crate::write::{StatsCollector, WrittenFile};

/// Options of one call.
#[derive(Debug, Clone, Copy)]
pub struct AddOptions {
    /// Table columns the file lacks read as NULL instead of being an error.
    pub allow_missing: bool,
    /// File columns the table lacks are skipped instead of being an error.
    pub ignore_extra_columns: bool,
    /// Read `key=value` directories of the paths as column values.
    pub hive_partitioning: bool,
}

impl Default for AddOptions {
    fn default() -> Self {
        Self {
            allow_missing: false,
            ignore_extra_columns: false,
            hive_partitioning: true,
        }
    }
}

/// Register the Parquet files matching `patterns` (paths or globs) in `entry`,
/// as one snapshot. Returns the paths registered (empty files are skipped).
pub async fn add_data_files(
    state: &SessionState,
    lake: &Arc<Lake>,
    snapshot: &CatalogSnapshot,
    entry: &Arc<TableEntry>,
    patterns: &[String],
    options: AddOptions,
) -> Result<Vec<String>> {
    if lake.read_only() {
        return Err(Error::Unsupported(format!(
            "adding files to '{}': the lake is attached read only",
            entry.qualified_name()
        )));
    }
    let paths = expand(patterns).await?;
    let existing = existing_mappings(&lake.store().name_mappings(entry.id()).await?);
    let mut changes = ChangeSet::new(snapshot.snapshot.snapshot_id);
    let mut added = Vec::new();
    for path in paths {
        let file = inspect(&path).await?;
        let mapped = map_file(entry, &file, options)?;
        if file.record_count == 0 {
            continue;
        }
        let mapping = mapping_for(
            &existing,
            &mut changes.name_mappings,
            entry.id(),
            &mapped.columns,
        );
        let column_stats = file_stats(state, lake, snapshot, entry, &file, &mapped).await?;
        changes.added_files.push(AddedFile {
            table: TableRef::Existing(entry.id()),
            file: WrittenFile {
                url: path.clone(),
                file_name: path.clone(),
                record_count: file.record_count,
                file_size_bytes: file.file_size_bytes,
                footer_size: file.footer_size,
                column_stats,
            },
            partition: mapped.partition.clone(),
            mapping: Some(mapping),
        });
        added.push(path);
    }
    if changes.added_files.is_empty() {
        return Ok(added);
    }
    commit(lake, &changes).await?;
    Ok(added)
}

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

/// The files `patterns` name, in order, each once: globs (`*`, `?`, `**`) are
/// expanded (sorted); a pattern matching nothing is an error. Local paths are
/// made absolute.
async fn expand(patterns: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for pattern in patterns {
        let remote = pattern.contains("://") && !pattern.starts_with("file://");
        let wild = pattern.contains(['*', '?', '[']);
        let files = if remote {
            if wild {
                return Err(Error::Unsupported(format!(
                    "ducklake_add_data_files('{pattern}'): lakeq expands globs on local paths \
                     only; list the files instead"
                )));
            }
            vec![pattern.clone()]
        } else {
            let local = pattern.strip_prefix("file://").unwrap_or(pattern);
            let absolute = absolute(local)?;
            if wild {
                let p = absolute.clone();
                tokio::task::spawn_blocking(move || crate::storage::glob_files(&p))
                    .await
                    .map_err(|e| Error::Unsupported(format!("glob '{pattern}': {e}")))?
            } else {
                vec![absolute]
            }
        };
        if files.is_empty() {
            return Err(Error::NotFound {
                kind: "file",
                name: pattern.clone(),
                hint: " (no files match the pattern; ducklake_add_data_files adds nothing)".into(),
            });
        }
        for f in files {
            if seen.insert(f.clone()) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// A local path made absolute and normalised (no `.` or `..` segments).
fn absolute(path: &str) -> Result<String> {
    let p = std::path::Path::new(path);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    };
    let mut parts: Vec<String> = Vec::new();
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

// ---------------------------------------------------------------------------
// The file
// ---------------------------------------------------------------------------

/// What the file's footer says.
struct FileInfo {
    path: String,
    record_count: i64,
    file_size_bytes: i64,
    footer_size: Option<i64>,
    metadata: Arc<ParquetMetaData>,
}

fn file_error(path: &str, reason: impl Into<String>) -> Error {
    Error::DataFile {
        path: path.to_string(),
        source: reason.into().into(),
    }
}

/// Read the footer of the file at `path` (an error naming the file if it is
/// missing or not Parquet).
async fn inspect(path: &str) -> Result<FileInfo> {
    let store = crate::storage::object_store_for(path)?;
    let location = crate::storage::locate(path)?.path;
    let meta = store.head(&location).await.map_err(|e| {
        file_error(
            path,
            format!("cannot add it to the table: the file cannot be read ({e})"),
        )
    })?;
    let size = meta.size;
    if size < 12 {
        return Err(file_error(path, "not a Parquet file (too short)"));
    }
    let tail = store
        .get_range(&location, size - 8..size)
        .await
        .map_err(|e| file_error(path, e.to_string()))?;
    let (Some(length), Some(magic)) = (tail.get(..4), tail.get(4..8)) else {
        return Err(file_error(path, "not a Parquet file"));
    };
    if magic != b"PAR1" {
        return Err(file_error(
            path,
            "not a Parquet file (no PAR1 footer; encrypted files cannot be added)",
        ));
    }
    let footer_length = <[u8; 4]>::try_from(length)
        .map(u32::from_le_bytes)
        .map_err(|_| file_error(path, "not a Parquet file"))?;
    let start = size
        .checked_sub(8 + u64::from(footer_length))
        .filter(|start| *start >= 4)
        .ok_or_else(|| {
            file_error(
                path,
                format!("not a Parquet file (its footer length {footer_length} exceeds the file)"),
            )
        })?;
    let footer = store
        .get_range(&location, start..size - 8)
        .await
        .map_err(|e| file_error(path, e.to_string()))?;
    let metadata = ParquetMetaDataReader::decode_metadata(&footer)
        .map_err(|e| file_error(path, format!("not a readable Parquet file: {e}")))?;
    let record_count = metadata.file_metadata().num_rows();
    if record_count < 0 {
        return Err(file_error(
            path,
            "the footer counts a negative number of rows",
        ));
    }
    Ok(FileInfo {
        path: path.to_string(),
        record_count,
        file_size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
        footer_size: Some(i64::from(footer_length)),
        metadata: Arc::new(metadata),
    })
}

// ---------------------------------------------------------------------------
// Types as DuckDB derives and checks them
// ---------------------------------------------------------------------------

/// A column of the file's Parquet schema.
#[derive(Debug, Clone)]
struct SourceColumn {
    name: String,
    /// DuckDB's type for it, as DuckDB's `ducklake_add_data_files` derives it.
    ty: DuckLakeType,
    children: Vec<SourceColumn>,
    /// Index of a primitive column among the file's leaf columns.
    leaf: Option<usize>,
}

/// The file's top-level columns.
fn source_columns(schema: &ParquetType) -> Result<Vec<SourceColumn>, String> {
    let mut next_leaf = 0;
    schema
        .get_fields()
        .iter()
        .map(|f| source_column(f, &mut next_leaf, 0))
        .collect()
}

fn source_column(
    t: &ParquetType,
    next_leaf: &mut usize,
    depth: usize,
) -> Result<SourceColumn, String> {
    if depth > 64 {
        return Err("the Parquet schema is nested deeper than 64 levels".into());
    }
    let info = t.get_basic_info();
    if t.is_group() {
        let children = t
            .get_fields()
            .iter()
            .map(|f| source_column(f, next_leaf, depth + 1))
            .collect::<Result<Vec<_>, String>>()?;
        let list = matches!(info.converted_type(), ConvertedType::LIST)
            || matches!(info.logical_type_ref(), Some(LogicalType::List));
        let map = matches!(info.converted_type(), ConvertedType::MAP)
            || matches!(info.logical_type_ref(), Some(LogicalType::Map));
        let ty = if children.is_empty() {
            return Err(format!("group '{}' has no fields", info.name()));
        } else if list {
            DuckLakeType::List
        } else if map {
            DuckLakeType::Map
        } else {
            DuckLakeType::Struct
        };
        return Ok(SourceColumn {
            name: info.name().to_string(),
            ty,
            children,
            leaf: None,
        });
    }
    let leaf = *next_leaf;
    *next_leaf += 1;
    Ok(SourceColumn {
        name: info.name().to_string(),
        ty: primitive_type(t)?,
        children: Vec::new(),
        leaf: Some(leaf),
    })
}

/// DuckDB's derivation (`DeriveLogicalType` of its `ducklake_add_data_files`):
/// a few logical types first, then the converted type, then the physical type's
/// default.
fn primitive_type(t: &ParquetType) -> Result<DuckLakeType, String> {
    use DuckLakeType as T;
    let info = t.get_basic_info();
    match info.logical_type_ref() {
        Some(LogicalType::Time(time))
            if !time.is_adjusted_to_u_t_c && matches!(time.unit, ParquetTimeUnit::MICROS) =>
        {
            return Ok(T::Time);
        }
        Some(LogicalType::Timestamp(ts)) if ts.is_adjusted_to_u_t_c => return Ok(T::TimestampTz),
        Some(LogicalType::Timestamp(ts)) => {
            return Ok(match ts.unit {
                ParquetTimeUnit::MILLIS => T::TimestampMs,
                ParquetTimeUnit::MICROS => T::Timestamp,
                ParquetTimeUnit::NANOS => T::TimestampNs,
            });
        }
        Some(LogicalType::Uuid) => return Ok(T::Uuid),
        _ => {}
    }
    let from_converted = match info.converted_type() {
        ConvertedType::INT_8 => Some(T::Int8),
        ConvertedType::INT_16 => Some(T::Int16),
        ConvertedType::INT_32 => Some(T::Int32),
        ConvertedType::INT_64 => Some(T::Int64),
        ConvertedType::UINT_8 => Some(T::UInt8),
        ConvertedType::UINT_16 => Some(T::UInt16),
        ConvertedType::UINT_32 => Some(T::UInt32),
        ConvertedType::UINT_64 => Some(T::UInt64),
        ConvertedType::DATE => Some(T::Date),
        ConvertedType::TIMESTAMP_MICROS | ConvertedType::TIMESTAMP_MILLIS => Some(T::Timestamp),
        ConvertedType::DECIMAL => {
            let (precision, scale) = match t {
                ParquetType::PrimitiveType {
                    precision, scale, ..
                } => (*precision, *scale),
                ParquetType::GroupType { .. } => (0, 0),
            };
            match (u8::try_from(precision), i8::try_from(scale)) {
                (Ok(precision), Ok(scale)) if (1..=38).contains(&precision) && scale >= 0 => {
                    Some(T::Decimal { precision, scale })
                }
                _ => {
                    return Err(format!(
                        "column '{}' is a DECIMAL({precision},{scale}), which DuckDB cannot read",
                        info.name()
                    ));
                }
            }
        }
        ConvertedType::UTF8 | ConvertedType::ENUM => Some(T::Varchar),
        ConvertedType::TIME_MILLIS | ConvertedType::TIME_MICROS => Some(T::Time),
        ConvertedType::INTERVAL => Some(T::Interval),
        ConvertedType::JSON => Some(T::Json),
        _ => None,
    };
    if let Some(ty) = from_converted {
        return Ok(ty);
    }
    Ok(match t.get_physical_type() {
        PhysicalType::BOOLEAN => T::Boolean,
        PhysicalType::INT32 => T::Int32,
        PhysicalType::INT64 => T::Int64,
        PhysicalType::INT96 => T::Timestamp,
        PhysicalType::FLOAT => T::Float32,
        PhysicalType::DOUBLE => T::Float64,
        PhysicalType::BYTE_ARRAY | PhysicalType::FIXED_LEN_BYTE_ARRAY => T::Blob,
    })
}

/// DuckDB's name of a type, for messages.
fn duckdb_name(t: &DuckLakeType) -> String {
    use DuckLakeType as T;
    match t {
        T::Boolean => "BOOLEAN".into(),
        T::Int8 => "TINYINT".into(),
        T::Int16 => "SMALLINT".into(),
        T::Int32 => "INTEGER".into(),
        T::Int64 => "BIGINT".into(),
        T::Int128 => "HUGEINT".into(),
        T::UInt8 => "UTINYINT".into(),
        T::UInt16 => "USMALLINT".into(),
        T::UInt32 => "UINTEGER".into(),
        T::UInt64 => "UBIGINT".into(),
        T::UInt128 => "UHUGEINT".into(),
        T::Float32 => "FLOAT".into(),
        T::Float64 => "DOUBLE".into(),
        T::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
        T::Time => "TIME".into(),
        T::TimeNs => "TIME_NS".into(),
        T::TimeTz => "TIME WITH TIME ZONE".into(),
        T::Date => "DATE".into(),
        T::Timestamp => "TIMESTAMP".into(),
        T::TimestampS => "TIMESTAMP_S".into(),
        T::TimestampMs => "TIMESTAMP_MS".into(),
        T::TimestampNs => "TIMESTAMP_NS".into(),
        T::TimestampTz => "TIMESTAMP WITH TIME ZONE".into(),
        T::Interval => "INTERVAL".into(),
        T::Varchar => "VARCHAR".into(),
        T::Json => "JSON".into(),
        T::Blob => "BLOB".into(),
        T::Uuid => "UUID".into(),
        T::List => "LIST".into(),
        T::Struct => "STRUCT".into(),
        T::Map => "MAP".into(),
        T::Variant => "VARIANT".into(),
        T::Geometry => "GEOMETRY".into(),
    }
}

/// Whether a file column DuckDB types `source` may be added to a table column
/// of type `target` (DuckDB's `CheckMatchingType`); `Err` says what was expected.
fn check_type(target: &DuckLakeType, source: &DuckLakeType) -> Result<(), String> {
    use DuckLakeType as T;
    let accepted: Vec<DuckLakeType> = match target {
        T::Int64 => vec![
            T::Int64,
            T::UInt32,
            T::Int32,
            T::UInt16,
            T::Int16,
            T::UInt8,
            T::Int8,
        ],
        T::Int32 => vec![T::Int32, T::UInt16, T::Int16, T::UInt8, T::Int8],
        T::Int16 => vec![T::Int16, T::UInt8, T::Int8],
        T::Int8 => vec![T::Int8],
        T::UInt64 => vec![T::UInt64, T::UInt32, T::UInt16, T::UInt8],
        T::UInt32 => vec![T::UInt32, T::UInt16, T::UInt8],
        T::UInt16 => vec![T::UInt16, T::UInt8],
        T::UInt8 => vec![T::UInt8],
        T::Float64 => vec![T::Float64, T::Float32],
        T::Float32 => vec![T::Float32],
        T::Timestamp | T::TimestampNs => {
            vec![T::TimestampNs, T::Timestamp, T::TimestampMs, T::TimestampS]
        }
        T::TimestampS | T::TimestampMs => vec![T::Timestamp, T::TimestampMs, T::TimestampS],
        T::Decimal { precision, scale } => {
            return match source {
                T::Decimal {
                    precision: p,
                    scale: s,
                } if s <= scale && p <= precision => Ok(()),
                T::Decimal {
                    precision: p,
                    scale: s,
                } => Err(format!(
                    "Incompatible decimal precision/scale - found precision {p}, scale {s} - but \
                     table is defined with precision {precision}, scale {scale}"
                )),
                other => Err(format!(
                    "Expected type \"DECIMAL\" but found type \"{}\"",
                    duckdb_name(other)
                )),
            };
        }
        T::Geometry => {
            return Err(
                "GEOMETRY columns cannot be added by lakeq yet (add the file with DuckDB)".into(),
            );
        }
        T::Variant => {
            return Err("VARIANT columns cannot be added by lakeq".into());
        }
        other => vec![other.clone()],
    };
    if accepted.contains(source) {
        return Ok(());
    }
    let names: Vec<String> = accepted.iter().map(duckdb_name).collect();
    let expected = match names.as_slice() {
        [one] => one.clone(),
        many => format!("one of {}", many.join(", ")),
    };
    Err(format!(
        "Expected {expected}, found type {}",
        duckdb_name(source)
    ))
}

// ---------------------------------------------------------------------------
// The mapping
// ---------------------------------------------------------------------------

/// How a file maps onto the table.
#[derive(Debug, Clone)]
struct MappedFile {
    /// The mapping's top-level entries.
    columns: Vec<NameMapEntry>,
    /// Table column id per Parquet leaf index (for column sizes).
    leaves: HashMap<usize, ColumnId>,
    /// The partition spec and the file's value per key part, for partitioned tables.
    partition: Option<(i64, Vec<Option<String>>)>,
}

/// What the mapping of one file works with.
struct Mapper<'a> {
    path: &'a str,
    /// The table's name (for messages), columns and partition key parts.
    table_name: &'a str,
    columns: &'a [ColumnNode],
    partition: &'a [PartitionColumnRow],
    options: AddOptions,
    /// Hive `key=value` directories of the path (raw values; a key's first wins).
    hive: BTreeMap<String, String>,
    leaves: HashMap<usize, ColumnId>,
    /// Hive values used for table columns, by column id (cast, DuckDB text).
    hive_values: Vec<(ColumnId, Option<String>)>,
}

impl Mapper<'_> {
    fn fail(&self, message: String) -> Error {
        file_error(
            self.path,
            format!("cannot add it to table \"{}\": {message}", self.table_name),
        )
    }

    fn qualified(prefix: &str, name: &str) -> String {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    }

    /// Map `file` columns onto `table` columns by name (DuckDB's `MapColumns`).
    fn map_columns(
        &mut self,
        file: &[SourceColumn],
        table: &[ColumnNode],
        prefix: &str,
        top_level: bool,
    ) -> Result<Vec<NameMapEntry>> {
        let mut unmapped: Vec<&ColumnNode> = table.iter().collect();
        let mut out = Vec::new();
        for column in file {
            let Some(position) = unmapped
                .iter()
                .position(|t| t.row.column_name.eq_ignore_ascii_case(&column.name))
            else {
                if self.options.ignore_extra_columns {
                    continue;
                }
                return Err(self.fail(format!(
                    "Column \"{}\" exists in the file but was not found in the table; set \
                     ignore_extra_columns => true to add the file anyway",
                    Self::qualified(prefix, &column.name)
                )));
            };
            let target = unmapped.remove(position);
            if top_level && let Some(entry) = self.hive_entry(target)? {
                out.push(entry);
                continue;
            }
            out.push(self.map_column(column, target, prefix)?);
        }
        for target in unmapped {
            if top_level && let Some(entry) = self.hive_entry(target)? {
                out.push(entry);
                continue;
            }
            if !self.options.allow_missing {
                return Err(self.fail(format!(
                    "Column \"{}\" exists in the table but was not found in the file; set \
                     allow_missing => true to allow missing fields and columns",
                    Self::qualified(prefix, &target.row.column_name)
                )));
            }
        }
        Ok(out)
    }

    /// Map one file column onto one table column (DuckDB's `MapColumn`).
    fn map_column(
        &mut self,
        column: &SourceColumn,
        target: &ColumnNode,
        prefix: &str,
    ) -> Result<NameMapEntry> {
        let name = Self::qualified(prefix, &column.name);
        if let Err(reason) = check_type(&target.ty, &column.ty) {
            return Err(self.fail(format!(
                "Failed to map column \"{name}\" to the table's column of type {}: {reason}",
                duckdb_name(&target.ty)
            )));
        }
        if let Some(leaf) = column.leaf {
            self.leaves.insert(leaf, target.row.column_id);
        }
        let layout = |what: &str| {
            self.fail(format!(
                "column \"{name}\" has a {what} layout lakeq does not know how to map"
            ))
        };
        let children = match target.ty {
            DuckLakeType::Struct => {
                self.map_columns(&column.children, &target.children, &name, false)?
            }
            DuckLakeType::List => {
                let (Some(repeated), Some(element)) =
                    (column.children.first(), target.children.first())
                else {
                    return Err(layout("list"));
                };
                if repeated.name == "array" {
                    // The legacy two-level layout: the repeated field is the element.
                    vec![self.map_column(repeated, element, &name)?]
                } else {
                    // Three levels: DuckDB maps the element under the name "list".
                    let Some(inner) = repeated.children.first() else {
                        return Err(layout("list"));
                    };
                    let inner = SourceColumn {
                        name: "list".into(),
                        ..inner.clone()
                    };
                    vec![self.map_column(&inner, element, &name)?]
                }
            }
            DuckLakeType::Map => {
                let Some(entries) = column.children.first() else {
                    return Err(layout("map"));
                };
                self.map_columns(&entries.children, &target.children, &name, false)?
            }
            _ => Vec::new(),
        };
        Ok(NameMapEntry {
            source_name: column.name.clone(),
            target_field_id: target.row.column_id,
            is_partition: false,
            children,
        })
    }

    /// The Hive entry of a top-level table column, if the path names it
    /// (DuckDB's `MapHiveColumn`).
    fn hive_entry(&mut self, target: &ColumnNode) -> Result<Option<NameMapEntry>> {
        let Some(text) = self.hive.get(&target.row.column_name).cloned() else {
            return Ok(None);
        };
        if target.ty.is_nested() {
            return Err(self.fail(format!(
                "Type \"{}\" is not supported for hive partitioning",
                duckdb_name(&target.ty)
            )));
        }
        let value = self.hive_value(&target.row.column_name, &text, &target.ty)?;
        self.hive_values.push((target.row.column_id, value));
        Ok(Some(NameMapEntry {
            source_name: target.row.column_name.clone(),
            target_field_id: target.row.column_id,
            is_partition: true,
            children: Vec::new(),
        }))
    }

    /// A Hive value cast to `ty` as DuckDB's `HivePartitioning::GetValue` casts
    /// it, as DuckDB text (`None`: NULL).
    fn hive_value(&self, key: &str, text: &str, ty: &DuckLakeType) -> Result<Option<String>> {
        let arrow = ty.to_arrow()?;
        match crate::provider::table::hive_scalar(text, &arrow) {
            Some(v) => Ok(format_duckdb_text(&v)?),
            None => Err(self.fail(format!(
                "Unable to cast '{text}' (from hive partition column '{}') to: '{}'",
                key.to_ascii_uppercase(),
                duckdb_name(ty)
            ))),
        }
    }

    /// The file's partition values for a partitioned table (DuckDB's
    /// `MapPartitionColumns` and the check of `AddFileToTable`).
    fn partition(&self) -> Result<Option<(i64, Vec<Option<String>>)>> {
        let Some(first) = self.partition.first() else {
            return Ok(None);
        };
        let mut nodes = Vec::new();
        for c in self.columns {
            c.walk(&mut nodes);
        }
        let by_id: HashMap<ColumnId, &ColumnNode> =
            nodes.into_iter().map(|c| (c.row.column_id, c)).collect();
        let mut used: HashSet<String> = HashSet::new();
        let mut values = Vec::new();
        let mut found = 0usize;
        for part in self.partition {
            let Some(column) = by_id.get(&part.column_id) else {
                return Err(self.fail(format!(
                    "the table is partitioned by column {}, which it no longer has",
                    part.column_id
                )));
            };
            let value = if part.transform == "identity" {
                self.hive_values
                    .iter()
                    .find(|(id, _)| *id == part.column_id)
                    .map(|(_, v)| v.clone())
            } else if ["year", "month", "day", "hour"].contains(&part.transform.as_str())
                || crate::provider::partition::bucket_count(&part.transform).is_some()
            {
                let prefix = part
                    .transform
                    .split('(')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let key = if used.contains(&prefix.to_ascii_lowercase()) {
                    format!("{prefix}_{}", column.row.column_name)
                } else {
                    prefix
                };
                used.insert(key.to_ascii_lowercase());
                match self.hive.get(&key) {
                    Some(text) => Some(self.hive_value(&key, text, &DuckLakeType::Int64)?),
                    None => None,
                }
            } else {
                return Err(self.fail(format!(
                    "the table is partitioned by {}({}), which lakeq cannot add files to yet",
                    part.transform, column.row.column_name
                )));
            };
            if let Some(v) = value {
                found += 1;
                values.push(v);
            } else {
                values.push(None);
            }
        }
        // DuckDB: every partition key, and no other Hive column, must come from the path.
        let identity_ids: HashSet<ColumnId> = self
            .partition
            .iter()
            .filter(|p| p.transform == "identity")
            .map(|p| p.column_id)
            .collect();
        let other_hive = self
            .hive_values
            .iter()
            .filter(|(id, _)| !identity_ids.contains(id))
            .count();
        if found != self.partition.len() || other_hive > 0 {
            return Err(file_error(
                self.path,
                format!(
                    "File \"{}\" contains an invalid partition value for the table configuration \
                     (table \"{}\" is partitioned; the path must name every partition key as \
                     key=value)",
                    self.path, self.table_name
                ),
            ));
        }
        Ok(Some((first.partition_id, values)))
    }
}

/// Map `file` onto `table`.
fn map_file(table: &TableEntry, file: &FileInfo, options: AddOptions) -> Result<MappedFile> {
    map_schema(
        &table.row.table_name,
        &table.columns,
        &table.partition,
        file.metadata.file_metadata().schema_descr().root_schema(),
        &file.path,
        options,
    )
}

/// Map the Parquet schema `root` of the file at `path` onto a table's columns.
fn map_schema(
    table_name: &str,
    columns: &[ColumnNode],
    partition: &[PartitionColumnRow],
    root: &ParquetType,
    path: &str,
    options: AddOptions,
) -> Result<MappedFile> {
    let sources = source_columns(root).map_err(|e| file_error(path, e))?;
    let hive = if options.hive_partitioning {
        crate::provider::table::hive_values(path)
            .into_iter()
            .collect()
    } else {
        BTreeMap::new()
    };
    let mut mapper = Mapper {
        path,
        table_name,
        columns,
        partition,
        options,
        hive,
        leaves: HashMap::new(),
        hive_values: Vec::new(),
    };
    let entries = mapper.map_columns(&sources, columns, "", true)?;
    let partition = mapper.partition()?;
    Ok(MappedFile {
        columns: entries,
        leaves: mapper.leaves,
        partition,
    })
}

/// The catalog's mappings of a table, as entry trees by mapping id.
fn existing_mappings(rows: &[NameMappingRow]) -> Vec<(FileId, Vec<NameMapEntry>)> {
    let mut by_mapping: BTreeMap<FileId, Vec<&NameMappingRow>> = BTreeMap::new();
    for r in rows {
        by_mapping.entry(r.mapping_id).or_default().push(r);
    }
    by_mapping
        .into_iter()
        .map(|(id, rows)| (id, entry_tree(&rows, None, 0)))
        .collect()
}

fn entry_tree(rows: &[&NameMappingRow], parent: Option<i64>, depth: usize) -> Vec<NameMapEntry> {
    if depth > 64 {
        return Vec::new();
    }
    rows.iter()
        .filter(|r| r.parent_column == parent)
        .map(|r| NameMapEntry {
            source_name: r.source_name.clone(),
            target_field_id: r.target_field_id,
            is_partition: r.is_partition,
            children: entry_tree(rows, Some(r.column_id), depth + 1),
        })
        .collect()
}

/// The mapping a file with `columns` uses: one of the table's `existing`
/// mappings or of the `new` ones if one is interchangeable (as DuckDB reuses
/// them), else a new one appended to `new`.
fn mapping_for(
    existing: &[(FileId, Vec<NameMapEntry>)],
    new: &mut Vec<NewNameMapping>,
    table_id: i64,
    columns: &[NameMapEntry],
) -> MappingRef {
    if let Some((id, _)) = existing.iter().find(|(_, c)| same_entries(c, columns)) {
        return MappingRef::Existing(*id);
    }
    if let Some(i) = new
        .iter()
        .position(|m| m.table_id == table_id && same_entries(&m.columns, columns))
    {
        return MappingRef::New(i);
    }
    new.push(NewNameMapping {
        table_id,
        columns: columns.to_vec(),
    });
    MappingRef::New(new.len() - 1)
}

/// Whether two mappings are interchangeable (DuckDB's `IsCompatibleWith`): the
/// same entries in any order, recursively.
fn same_entries(a: &[NameMapEntry], b: &[NameMapEntry]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter().any(|y| {
                x.source_name == y.source_name
                    && x.target_field_id == y.target_field_id
                    && x.is_partition == y.is_partition
                    && same_entries(&x.children, &y.children)
            })
        })
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/// Read the file through the table's scan with its mapping and compute the
/// statistics a lakeq-written file of these rows would have; column sizes are
/// the file's own.
async fn file_stats(
    state: &SessionState,
    lake: &Arc<Lake>,
    snapshot: &CatalogSnapshot,
    entry: &Arc<TableEntry>,
    file: &FileInfo,
    mapped: &MappedFile,
) -> Result<Vec<crate::write::ColumnStats>> {
    // Placeholder ids: the file and its mapping exist only in this scan.
    const MAPPING: FileId = -1;
    let mapping = NewNameMapping {
        table_id: entry.id(),
        columns: mapped.columns.clone(),
    };
    let row = DataFileRow {
        data_file_id: -1,
        table_id: entry.id(),
        begin_snapshot: snapshot.snapshot.snapshot_id,
        path: file.path.clone(),
        path_is_relative: false,
        record_count: file.record_count,
        file_size_bytes: file.file_size_bytes,
        footer_size: file.footer_size,
        row_id_start: 0,
        partition_id: None,
        encryption_key: None,
        mapping_id: Some(MAPPING),
        partial_max: None,
        delete_file: None,
    };
    let table = LakeTable::new(
        Arc::clone(lake),
        Arc::clone(entry),
        snapshot.snapshot.snapshot_id,
    )
    .with_files(Arc::new(TableFiles::chosen(vec![row], None, None)))
    .with_name_mappings(mapping.rows(MAPPING));
    let plan = LogicalPlanBuilder::scan("added_file", provider_as_source(Arc::new(table)), None)?
        .build()?;
    let df = datafusion::dataframe::DataFrame::new(state.clone(), plan);
    let read_error = |e: DataFusionError| {
        file_error(
            &file.path,
            format!(
                "cannot be read as a file of table \"{}\": {e}",
                entry.row.table_name
            ),
        )
    };
    let mut stream = df.execute_stream().await.map_err(read_error)?;
    let mut collector = StatsCollector::new(Arc::clone(&entry.file_schema), &file.path)?;
    while let Some(batch) = stream.next().await {
        collector.add(&batch.map_err(read_error)?)?;
    }
    let (rows, mut stats) = collector.finish()?;
    if rows != file.record_count {
        return Err(file_error(
            &file.path,
            format!(
                "the footer counts {} rows, reading it gave {rows}",
                file.record_count
            ),
        ));
    }
    // Sizes of the file's own column chunks (a column the file lacks has none).
    let mut sizes: HashMap<ColumnId, i64> = HashMap::new();
    for row_group in file.metadata.row_groups() {
        for (leaf, column_id) in &mapped.leaves {
            if let Some(chunk) = row_group.columns().get(*leaf) {
                *sizes.entry(*column_id).or_default() += chunk.compressed_size();
            }
        }
    }
    for s in &mut stats {
        s.column_size_bytes = sizes.get(&s.column_id).copied();
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use datafusion::parquet::schema::parser::parse_message_type;

    use super::*;
    use crate::catalog::build_column_tree;
    use crate::spec::rows::ColumnRow;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    /// Table columns from (id, parent, name, type) in order.
    fn table(columns: &[(i64, Option<i64>, &str, &str)]) -> Vec<ColumnNode> {
        let rows: Vec<ColumnRow> = columns
            .iter()
            .map(|(id, parent, name, ty)| ColumnRow {
                column_id: *id,
                begin_snapshot: 1,
                end_snapshot: None,
                table_id: 1,
                column_order: *id,
                column_name: (*name).to_string(),
                column_type: (*ty).to_string(),
                initial_default: None,
                default_value: None,
                default_value_type: None,
                nulls_allowed: true,
                parent_column: *parent,
            })
            .collect();
        build_column_tree(&rows).expect("valid column rows")
    }

    fn map(
        columns: &[ColumnNode],
        message: &str,
        path: &str,
        options: AddOptions,
    ) -> Result<MappedFile> {
        let root = parse_message_type(message).expect("valid Parquet schema");
        map_schema("t", columns, &[], &root, path, options)
    }

    fn entry(name: &str, target: i64, children: Vec<NameMapEntry>) -> NameMapEntry {
        NameMapEntry {
            source_name: name.into(),
            target_field_id: target,
            is_partition: false,
            children,
        }
    }

    /// DuckDB's rows for `t(a INT, l INT[], m MAP(INT, VARCHAR), s STRUCT(x INT,
    /// y VARCHAR[]))` from a file DuckDB wrote with the columns in another order
    /// (checked against DuckDB 1.5.5's `ducklake_name_mapping`).
    #[test]
    fn nested_columns_map_as_duckdb_numbers_them() -> TestResult {
        let columns = table(&[
            (1, None, "a", "int32"),
            (2, None, "l", "list"),
            (3, Some(2), "element", "int32"),
            (4, None, "m", "map"),
            (5, Some(4), "key", "int32"),
            (6, Some(4), "value", "varchar"),
            (7, None, "s", "struct"),
            (8, Some(7), "x", "int32"),
            (9, Some(7), "y", "list"),
            (10, Some(9), "element", "varchar"),
        ]);
        let file = "message duckdb_schema {
            optional int32 A (INTEGER(32,true));
            optional group l (LIST) { repeated group list { optional int32 element; } }
            optional group m (MAP) { repeated group key_value {
                required int32 key; optional binary value (STRING); } }
            optional group s { optional group y (LIST) { repeated group list {
                optional binary element (STRING); } } optional int32 x; }
        }";
        let mapped = map(&columns, file, "/d/f.parquet", AddOptions::default())?;
        let rows: Vec<_> = NewNameMapping {
            table_id: 1,
            columns: mapped.columns,
        }
        .rows(0)
        .into_iter()
        .map(|r| {
            (
                r.column_id,
                r.source_name,
                r.target_field_id,
                r.parent_column,
            )
        })
        .collect();
        let expected = [
            (0, "A", 1, None),
            (1, "l", 2, None),
            (2, "list", 3, Some(1)),
            (3, "m", 4, None),
            (4, "key", 5, Some(3)),
            (5, "value", 6, Some(3)),
            (6, "s", 7, None),
            (7, "y", 9, Some(6)),
            (8, "list", 10, Some(7)),
            (9, "x", 8, Some(6)),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(c, n, t, p)| (*c, n.to_string(), *t, *p))
            .collect();
        assert_eq!(rows, expected);
        // Leaves 0..=6 in file order: A, element, key, value, y.element, x.
        assert_eq!(mapped.leaves.get(&0), Some(&1));
        assert_eq!(mapped.leaves.get(&4), Some(&10));
        assert_eq!(mapped.leaves.get(&5), Some(&8));
        Ok(())
    }

    #[test]
    fn legacy_two_level_lists_map_their_array_field() -> TestResult {
        let columns = table(&[
            (1, None, "a", "list"),
            (2, Some(1), "element", "list"),
            (3, Some(2), "element", "int32"),
        ]);
        let file = "message m { required group a (LIST) { repeated group array (LIST) {
            repeated int32 array; } } }";
        let mapped = map(&columns, file, "/f.parquet", AddOptions::default())?;
        assert_eq!(
            mapped.columns,
            vec![entry(
                "a",
                1,
                vec![entry("array", 2, vec![entry("array", 3, vec![])])]
            )]
        );
        Ok(())
    }

    #[test]
    fn missing_and_extra_columns_follow_the_options() -> TestResult {
        let columns = table(&[
            (1, None, "i", "int32"),
            (2, None, "s", "struct"),
            (3, Some(2), "x", "int32"),
            (4, Some(2), "y", "int32"),
        ]);
        let file = "message m { optional int32 j; optional group s { optional int32 y; } }";
        let err = map(&columns, file, "/f.parquet", AddOptions::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("\"j\" exists in the file"), "{err}");
        assert!(err.contains("/f.parquet"), "{err}");
        let extra = AddOptions {
            ignore_extra_columns: true,
            ..AddOptions::default()
        };
        let err = map(&columns, file, "/f.parquet", extra)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("\"s.x\" exists in the table"), "{err}");
        let both = AddOptions {
            allow_missing: true,
            ..extra
        };
        let mapped = map(&columns, file, "/f.parquet", both)?;
        assert_eq!(
            mapped.columns,
            vec![entry("s", 2, vec![entry("y", 4, vec![])])]
        );
        Ok(())
    }

    #[test]
    fn types_are_checked_as_duckdb_checks_them() {
        use DuckLakeType as T;
        let accepted = [
            (T::Int64, T::UInt32),
            (T::Int32, T::Int16),
            (T::Int16, T::UInt8),
            (T::UInt64, T::UInt8),
            (T::Float64, T::Float32),
            (T::Timestamp, T::TimestampNs),
            (T::TimestampS, T::TimestampMs),
            (T::TimestampNs, T::TimestampS),
            (
                T::Decimal {
                    precision: 18,
                    scale: 7,
                },
                T::Decimal {
                    precision: 9,
                    scale: 3,
                },
            ),
            (T::Varchar, T::Varchar),
            (T::Uuid, T::Uuid),
        ];
        for (target, source) in accepted {
            assert_eq!(
                check_type(&target, &source),
                Ok(()),
                "{target:?} <- {source:?}"
            );
        }
        let refused = [
            (T::Int32, T::Int64),
            (T::Int8, T::UInt8),
            (T::UInt16, T::Int8),
            (T::Boolean, T::Int32),
            (T::Float32, T::Float64),
            (T::TimestampMs, T::TimestampNs),
            (T::TimestampTz, T::Timestamp),
            (T::Timestamp, T::TimestampTz),
            (T::Date, T::Timestamp),
            (T::Varchar, T::Blob),
            (T::Blob, T::Varchar),
            (T::Json, T::Varchar),
            (T::List, T::Struct),
            (
                T::Decimal {
                    precision: 4,
                    scale: 1,
                },
                T::Decimal {
                    precision: 9,
                    scale: 3,
                },
            ),
        ];
        for (target, source) in refused {
            assert!(
                check_type(&target, &source).is_err(),
                "{target:?} <- {source:?}"
            );
        }
    }

    #[test]
    fn parquet_types_are_derived_as_duckdb_derives_them() -> TestResult {
        let file = "message m {
            optional int32 a;
            optional int32 b (INTEGER(8,true));
            optional int64 c (TIMESTAMP(NANOS,false));
            optional int64 d (TIMESTAMP(MILLIS,true));
            optional int64 e (TIME(NANOS,false));
            optional int64 f (TIME(MICROS,false));
            optional binary g;
            optional binary h (STRING);
            optional fixed_len_byte_array(16) i (UUID);
            optional int64 j (DECIMAL(18,7));
            optional int96 k;
        }";
        let root = parse_message_type(file)?;
        let types: Vec<DuckLakeType> = source_columns(&root)?.into_iter().map(|c| c.ty).collect();
        use DuckLakeType as T;
        assert_eq!(
            types,
            vec![
                T::Int32,
                T::Int8,
                T::TimestampNs,
                T::TimestampTz,
                // DuckDB's add_data_files derives TIME(NANOS) from its physical type.
                T::Int64,
                T::Time,
                T::Blob,
                T::Varchar,
                T::Uuid,
                T::Decimal {
                    precision: 18,
                    scale: 7
                },
                T::Timestamp,
            ]
        );
        Ok(())
    }

    #[test]
    fn hive_directories_name_missing_columns() -> TestResult {
        let columns = table(&[
            (1, None, "k", "int32"),
            (2, None, "s", "varchar"),
            (3, None, "v", "varchar"),
        ]);
        let file = "message m { optional binary v (STRING); }";
        let path = "/d/k=7/s=a%20b/f.parquet";
        let mapped = map(&columns, file, path, AddOptions::default())?;
        let hive = |name: &str, target| NameMapEntry {
            is_partition: true,
            ..entry(name, target, vec![])
        };
        assert_eq!(
            mapped.columns,
            vec![entry("v", 3, vec![]), hive("k", 1), hive("s", 2)]
        );
        let off = AddOptions {
            hive_partitioning: false,
            ..AddOptions::default()
        };
        assert!(map(&columns, file, path, off).is_err());
        // A value that does not cast is an error naming the file.
        let err = map(
            &columns,
            file,
            "/d/k=x/s=a/f.parquet",
            AddOptions::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("Unable to cast 'x'"), "{err}");
        Ok(())
    }

    #[test]
    fn identical_mappings_are_reused_in_any_order() {
        let a = vec![
            entry("x", 1, vec![]),
            entry("s", 2, vec![entry("y", 3, vec![])]),
        ];
        let reordered = vec![
            entry("s", 2, vec![entry("y", 3, vec![])]),
            entry("x", 1, vec![]),
        ];
        let other = vec![
            entry("x", 1, vec![]),
            entry("s", 2, vec![entry("z", 3, vec![])]),
        ];
        let existing = vec![(5, a.clone())];
        let mut new = Vec::new();
        assert_eq!(
            mapping_for(&existing, &mut new, 1, &reordered),
            MappingRef::Existing(5)
        );
        assert_eq!(
            mapping_for(&existing, &mut new, 1, &other),
            MappingRef::New(0)
        );
        assert_eq!(
            mapping_for(&existing, &mut new, 1, &other),
            MappingRef::New(0)
        );
        assert_eq!(new.len(), 1);
        // A subset is a different mapping.
        assert_eq!(
            mapping_for(&existing, &mut new, 1, &a[..1]),
            MappingRef::New(1)
        );
    }

    #[test]
    fn catalog_rows_round_trip_to_entries() {
        let columns = vec![
            entry("a", 1, vec![]),
            entry(
                "s",
                2,
                vec![
                    entry("x", 3, vec![]),
                    entry("l", 4, vec![entry("list", 5, vec![])]),
                ],
            ),
        ];
        let rows = NewNameMapping {
            table_id: 1,
            columns: columns.clone(),
        }
        .rows(9);
        assert_eq!(
            rows.iter()
                .map(|r| (r.column_id, r.parent_column))
                .collect::<Vec<_>>(),
            vec![
                (0, None),
                (1, None),
                (2, Some(1)),
                (3, Some(1)),
                (4, Some(3))
            ]
        );
        assert_eq!(existing_mappings(&rows), vec![(9, columns)]);
    }

    #[test]
    fn hive_paths_are_parsed_as_duckdb_parses_them() {
        let values = crate::provider::table::hive_values(
            "/a/k=1/b/two==x/q=/k=2/s=a%20b/name=with=equals/f=ile.parquet",
        );
        assert_eq!(
            values,
            vec![
                ("k".to_string(), "1".to_string()),
                ("q".to_string(), String::new()),
                ("s".to_string(), "a%20b".to_string()),
            ]
        );
    }
}
