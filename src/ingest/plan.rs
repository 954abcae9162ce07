//! Planning a load: the raw tables' schemas (creation, new columns, safe
//! widening), and the bookkeeping rows written with the data.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray, new_null_array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::arrow_reader::ArrowReaderMetadata;
// ParquetObjectReader is deprecated in parquet 59 in favour of hand-written
// AsyncFileReaders; it is still the object_store reader DataFusion 55 itself uses.
#[allow(deprecated)]
use datafusion::parquet::arrow::async_reader::ParquetObjectReader;
use object_store::ObjectStore;

use super::{FILES_TABLE, LOADS_TABLE, LandingFile, RAW_LAKE, RAW_SCHEMA, TABLES};
use crate::catalog::{CatalogSnapshot, FIELD_ID_KEY, strip_metadata};
use crate::commit::{Alter, ChangeSet, NewColumn, NewTable, TableRef, next_column_id};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::session::Session;
use crate::spec::CatalogId;
use crate::spec::paths::{default_dir_name, resolve};
use crate::spec::rows::ColumnRow;
use crate::spec::types::DuckLakeType;
use crate::storage::object_store_for;
use crate::write::{DataFileWriter, WriteOptions, WrittenFile};

/// What to do when a landing file has columns the raw table lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SchemaChange {
    /// Add new columns and apply safe widenings (the default).
    #[default]
    Evolve,
    /// Refuse any schema change.
    Freeze,
}

/// How one raw table is written by this load.
#[derive(Debug, Clone)]
pub struct TablePlan {
    /// The table (existing, or the n-th created by this load).
    pub table_ref: TableRef,
    /// Its directory.
    pub table_dir: String,
    /// The schema data files are written with (field ids, lineage columns last
    /// for new tables).
    pub file_schema: SchemaRef,
    /// Index of the key column in `file_schema`.
    pub key_column: Option<usize>,
    /// The table to create, if it does not exist yet.
    pub new_table: Option<NewTable>,
    /// Columns to add to an existing table.
    pub added: Vec<NewColumn>,
    /// Column versions with a widened type.
    pub widened: Vec<ColumnRow>,
}

/// Lineage columns appended to every raw table.
pub const LINEAGE: [&str; 3] = ["_lakeq_load_id", "_lakeq_id", "_lakeq_source_file"];

/// Create the raw schema and the bookkeeping tables if they are missing
/// (one snapshot each, only on the first run).
pub async fn ensure_bookkeeping(session: &Session) -> Result<()> {
    session
        .sql(&format!(
            "CREATE SCHEMA IF NOT EXISTS {RAW_LAKE}.{RAW_SCHEMA}"
        ))
        .await?;
    session
        .sql(&format!(
            "CREATE TABLE IF NOT EXISTS {RAW_LAKE}.{RAW_SCHEMA}.{FILES_TABLE} (path VARCHAR NOT NULL, \
             table_name VARCHAR, size BIGINT, etag VARCHAR, load_id VARCHAR, rows BIGINT, status VARCHAR, \
             reason VARCHAR, loaded_at TIMESTAMP)"
        ))
        .await?;
    session
        .sql(&format!(
            "CREATE TABLE IF NOT EXISTS {RAW_LAKE}.{RAW_SCHEMA}.{LOADS_TABLE} (load_id VARCHAR NOT NULL, \
             started_at TIMESTAMP, finished_at TIMESTAMP, status VARCHAR, files BIGINT, rows BIGINT)"
        ))
        .await?;
    Ok(())
}

/// Files already in `_lakeq_files`: path → (size, etag).
pub async fn loaded_files(session: &Session) -> Result<HashMap<String, (i64, String)>> {
    let batches = session
        .sql(&format!(
            "SELECT path, size, etag FROM {RAW_LAKE}.{RAW_SCHEMA}.{FILES_TABLE}"
        ))
        .await?;
    let mut out = HashMap::new();
    for b in batches {
        let b = strings(&b)?;
        for row in b {
            if let [Some(path), size, etag] = row.as_slice() {
                out.insert(
                    path.clone(),
                    (
                        size.as_deref().and_then(|s| s.parse().ok()).unwrap_or(-1),
                        etag.clone().unwrap_or_default(),
                    ),
                );
            }
        }
    }
    Ok(out)
}

/// Render every value of a batch as text (`None` for NULL), for small internal
/// reads such as ingest bookkeeping.
fn strings(batch: &RecordBatch) -> Result<Vec<Vec<Option<String>>>> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default();
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((0..batch.num_rows())
        .map(|r| {
            batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(c, f)| (!c.is_null(r)).then(|| f.value(r).to_string()))
                .collect()
        })
        .collect())
}

/// Whether every value of `from` is stored exactly (or to DuckDB's precision) as `to`.
pub fn widens(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    if from == to {
        return true;
    }
    match (from, to) {
        (Int8, Int16 | Int32 | Int64 | Float64)
        | (Int16, Int32 | Int64 | Float64)
        | (Int32, Int64 | Float64) => true,
        (UInt8, UInt16 | UInt32 | UInt64 | Int16 | Int32 | Int64)
        | (UInt16, UInt32 | UInt64 | Int32 | Int64) => true,
        (UInt32, UInt64 | Int64) => true,
        (Float16, Float32 | Float64) | (Float32, Float64) => true,
        (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) => true,
        (Binary | LargeBinary | BinaryView, Binary | LargeBinary | BinaryView) => true,
        (Timestamp(_, a), Timestamp(_, b)) => a.is_some() == b.is_some(),
        (Date32, Date64) | (Date64, Date32) => true,
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            s2 >= s1 && i16::from(*p2) - i16::from(*s2) >= i16::from(*p1) - i16::from(*s1)
        }
        _ => false,
    }
}

/// The DuckLake column type a landing type becomes (microsecond timestamps, utf8 strings).
fn lake_type(dt: &DataType) -> DataType {
    match dt {
        DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
        // DuckLake has no half floats (`float32` is the smallest), nor has the writer.
        DataType::Float16 => DataType::Float32,
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        DataType::Date64 => DataType::Date32,
        other => other.clone(),
    }
}

fn with_id(field: Field, id: i64) -> Field {
    field.with_metadata(HashMap::from([(FIELD_ID_KEY.to_string(), id.to_string())]))
}

/// Read a landing file's Arrow schema from its footer.
#[allow(deprecated)] // see the import of ParquetObjectReader
async fn footer_schema(store: &Arc<dyn ObjectStore>, f: &LandingFile) -> Result<SchemaRef> {
    let mut reader =
        ParquetObjectReader::new(Arc::clone(store), f.location.clone()).with_file_size(f.size);
    let meta = ArrowReaderMetadata::load_async(&mut reader, super::landing_reader_options())
        .await
        .map_err(|e| Error::DataFile {
            path: f.relative.clone(),
            source: format!("not a readable Parquet file: {e}").into(),
        })?;
    Ok(Arc::clone(meta.schema()))
}

/// Plan every raw table that receives files. Bad files are rejected (with
/// `skip_bad`) or stop the load with an error naming file, column and types.
pub async fn plan_tables(
    lake: &Arc<Lake>,
    snapshot: &CatalogSnapshot,
    store: &Arc<dyn ObjectStore>,
    files: &[LandingFile],
    mode: SchemaChange,
    skip_bad: bool,
    rejected: &mut Vec<(String, String)>,
) -> Result<BTreeMap<String, TablePlan>> {
    let schema = snapshot.schema(RAW_SCHEMA)?;
    let mut plans = BTreeMap::new();
    let mut new_tables = 0usize;
    for (table, key) in TABLES {
        let table_files: Vec<&LandingFile> = files.iter().filter(|f| f.table == table).collect();
        if table_files.is_empty() {
            continue;
        }
        let existing = schema.tables.get(table);
        // (name, type, column id, existing column version)
        let mut columns: Vec<(String, DataType, i64, Option<ColumnRow>)> = Vec::new();
        let mut next_id = 1;
        if let Some(t) = existing {
            for (node, field) in t.columns.iter().zip(t.arrow_schema.fields()) {
                columns.push((
                    field.name().clone(),
                    field.data_type().clone(),
                    node.row.column_id,
                    Some(node.row.clone()),
                ));
            }
            next_id = next_column_id(lake, t.id()).await?;
        }
        let mut widened: HashSet<String> = HashSet::new();
        let mut added: HashSet<String> = HashSet::new();
        for f in table_files {
            let problem = match footer_schema(store, f).await {
                Err(e) => Some(e.to_string()),
                Ok(fs) => check_file(
                    &fs,
                    key,
                    &mut columns,
                    &mut widened,
                    &mut added,
                    &mut next_id,
                    mode,
                    existing.is_some(),
                )
                .err()
                .map(|reason| format!("landing file '{}': {reason}", f.relative)),
            };
            if let Some(reason) = problem {
                if skip_bad {
                    rejected.push((f.relative.clone(), reason));
                    continue;
                }
                return Err(Error::DataFile {
                    path: f.relative.clone(),
                    source: reason.into(),
                });
            }
        }
        if existing.is_none() {
            for name in LINEAGE {
                if !columns.iter().any(|c| c.0 == name) {
                    columns.push((name.to_string(), DataType::Utf8, next_id, None));
                    next_id += 1;
                }
            }
        }
        if columns.is_empty() {
            continue;
        }
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, dt, id, _)| with_id(Field::new(name, dt.clone(), true), *id))
            .collect();
        let file_schema = Arc::new(Schema::new(fields.clone()));
        let key_column = columns.iter().position(|c| c.0 == key);
        let mut plan = TablePlan {
            table_ref: TableRef::New(0),
            table_dir: String::new(),
            file_schema,
            key_column,
            new_table: None,
            added: Vec::new(),
            widened: Vec::new(),
        };
        match existing {
            Some(t) => {
                plan.table_ref = TableRef::Existing(t.id());
                plan.table_dir = t.dir.clone();
                for (name, dt, id, row) in &columns {
                    match row {
                        None => {
                            let mut next = *id;
                            plan.added.push(NewColumn::from_arrow(
                                &Field::new(name, dt.clone(), true),
                                &mut next,
                            )?);
                        }
                        Some(row) if widened.contains(name) => {
                            let mut row = row.clone();
                            row.column_type = DuckLakeType::from_arrow(dt)?.to_string();
                            plan.widened.push(row);
                        }
                        Some(_) => {}
                    }
                }
            }
            None => {
                let uuid = uuid::Uuid::now_v7().to_string();
                let path = default_dir_name(table, &uuid);
                plan.table_dir = resolve(&schema.dir, Some(&path), true);
                let mut next = 1;
                let mut cols = NewColumn::from_arrow_fields(
                    &strip_metadata(&fields)
                        .fields()
                        .iter()
                        .map(|f| f.as_ref().clone())
                        .collect::<Vec<_>>(),
                    &mut next,
                )?;
                // One column per field, so the key's position is the same in `cols`.
                if let Some(key) = key_column.and_then(|k| cols.get_mut(k)) {
                    key.nulls_allowed = false;
                }
                plan.table_ref = TableRef::New(new_tables);
                new_tables += 1;
                plan.new_table = Some(NewTable {
                    schema_id: schema.row.schema_id,
                    schema_name: RAW_SCHEMA.to_string(),
                    name: table.to_string(),
                    uuid,
                    path,
                    columns: cols,
                });
            }
        }
        plans.insert(table.to_string(), plan);
    }
    Ok(plans)
}

/// Fold one file's schema into the table's planned columns.
#[allow(clippy::too_many_arguments)]
fn check_file(
    file_schema: &Schema,
    key: &str,
    columns: &mut Vec<(String, DataType, i64, Option<ColumnRow>)>,
    widened: &mut HashSet<String>,
    added: &mut HashSet<String>,
    next_id: &mut i64,
    mode: SchemaChange,
    table_exists: bool,
) -> std::result::Result<(), String> {
    if file_schema.field_with_name(key).is_err() {
        return Err(format!("the key column '{key}' is missing"));
    }
    for field in file_schema.fields() {
        if field.name().starts_with("_lakeq_") {
            return Err(format!(
                "column '{}' uses lakeq's reserved prefix",
                field.name()
            ));
        }
        // Raw columns are flat: a nested column's children would need column ids
        // and field ids of their own, which a landing file cannot give.
        if field.data_type().is_nested() {
            return Err(format!(
                "column '{}' is {}: nested columns are not supported in landing files",
                field.name(),
                field.data_type()
            ));
        }
        let file_type = lake_type(field.data_type());
        match columns.iter_mut().find(|c| &c.0 == field.name()) {
            Some(col) => {
                if widens(&file_type, &col.1) {
                    continue;
                }
                if widens(&col.1, &file_type) {
                    if mode == SchemaChange::Freeze && table_exists {
                        return Err(format!(
                            "column '{}' is {} in the file but {} in the raw table, and --schema-change freeze forbids widening",
                            field.name(),
                            field.data_type(),
                            col.1
                        ));
                    }
                    col.1 = file_type;
                    widened.insert(field.name().clone());
                    continue;
                }
                return Err(format!(
                    "column '{}' is {} in the file but {} in the raw table (an incompatible change)",
                    field.name(),
                    field.data_type(),
                    col.1
                ));
            }
            None => {
                if mode == SchemaChange::Freeze && table_exists {
                    return Err(format!(
                        "new column '{}' ({}) and --schema-change freeze forbids adding it",
                        field.name(),
                        field.data_type()
                    ));
                }
                DuckLakeType::from_arrow(&file_type)
                    .map_err(|e| format!("column '{}': {e}", field.name()))?;
                columns.push((field.name().clone(), file_type, *next_id, None));
                added.insert(field.name().clone());
                *next_id += 1;
            }
        }
    }
    Ok(())
}

/// Put the plans' schema changes into the change set (same order as the
/// `TableRef::New` indexes handed out by [`plan_tables`]).
pub fn apply_schema_changes(changes: &mut ChangeSet, plans: &mut BTreeMap<String, TablePlan>) {
    let mut created: Vec<(usize, NewTable)> = plans
        .values_mut()
        .filter_map(|p| match (p.table_ref, p.new_table.take()) {
            (TableRef::New(i), Some(t)) => Some((i, t)),
            _ => None,
        })
        .collect();
    created.sort_by_key(|(i, _)| *i);
    changes
        .new_tables
        .extend(created.into_iter().map(|(_, t)| t));
    for plan in plans.values_mut() {
        if let TableRef::Existing(table_id) = plan.table_ref {
            for column in plan.added.drain(..) {
                changes.alters.push(Alter::AddColumn {
                    table_id,
                    parent: None,
                    column,
                });
            }
            for row in plan.widened.drain(..) {
                changes.alters.push(Alter::ReplaceColumn { row });
            }
        }
    }
}

/// Write the bookkeeping rows of this load as data files of `_lakeq_files` and
/// `_lakeq_loads`; returns both table ids and the files.
pub async fn bookkeeping_files(
    session: &Session,
    loaded: &[(LandingFile, u64)],
    rejected: &[(String, String)],
    all_new: &[LandingFile],
    load_id: &str,
    started_at: chrono::DateTime<chrono::Utc>,
    finished_at: chrono::DateTime<chrono::Utc>,
) -> Result<(CatalogId, CatalogId, Vec<(CatalogId, WrittenFile)>)> {
    let catalog = session.lake(RAW_LAKE)?;
    let snapshot = catalog.current();
    let files_table = Arc::clone(snapshot.table(RAW_SCHEMA, FILES_TABLE)?);
    let loads_table = Arc::clone(snapshot.table(RAW_SCHEMA, LOADS_TABLE)?);
    let micros = |t: chrono::DateTime<chrono::Utc>| t.timestamp_micros();
    let by_path: HashMap<&str, &LandingFile> =
        all_new.iter().map(|f| (f.relative.as_str(), f)).collect();
    let n = loaded.len() + rejected.len();
    let mut path = Vec::with_capacity(n);
    let mut table_name = Vec::with_capacity(n);
    let mut size = Vec::with_capacity(n);
    let mut etag = Vec::with_capacity(n);
    let mut rows = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut reason: Vec<Option<String>> = Vec::with_capacity(n);
    for (f, r) in loaded {
        path.push(f.relative.clone());
        table_name.push(Some(f.table.clone()));
        size.push(Some(f.size as i64));
        etag.push(Some(f.etag.clone()));
        rows.push(Some(*r as i64));
        status.push("loaded".to_string());
        reason.push(None);
    }
    for (p, why) in rejected {
        let f = by_path.get(p.as_str());
        path.push(p.clone());
        table_name.push(f.map(|f| f.table.clone()));
        size.push(f.map(|f| f.size as i64));
        etag.push(f.map(|f| f.etag.clone()));
        rows.push(None);
        status.push("rejected".to_string());
        reason.push(Some(why.clone()));
    }
    let files_values: HashMap<&str, ArrayRef> = HashMap::from([
        ("path", Arc::new(StringArray::from(path)) as ArrayRef),
        (
            "table_name",
            Arc::new(StringArray::from(table_name)) as ArrayRef,
        ),
        ("size", Arc::new(Int64Array::from(size)) as ArrayRef),
        ("etag", Arc::new(StringArray::from(etag)) as ArrayRef),
        (
            "load_id",
            Arc::new(StringArray::from(vec![load_id; n])) as ArrayRef,
        ),
        ("rows", Arc::new(Int64Array::from(rows)) as ArrayRef),
        ("status", Arc::new(StringArray::from(status)) as ArrayRef),
        ("reason", Arc::new(StringArray::from(reason)) as ArrayRef),
        (
            "loaded_at",
            Arc::new(TimestampMicrosecondArray::from(vec![
                micros(finished_at);
                n
            ])) as ArrayRef,
        ),
    ]);
    let total_rows: u64 = loaded.iter().map(|(_, r)| r).sum();
    let loads_values: HashMap<&str, ArrayRef> = HashMap::from([
        (
            "load_id",
            Arc::new(StringArray::from(vec![load_id])) as ArrayRef,
        ),
        (
            "started_at",
            Arc::new(TimestampMicrosecondArray::from(vec![micros(started_at)])) as ArrayRef,
        ),
        (
            "finished_at",
            Arc::new(TimestampMicrosecondArray::from(vec![micros(finished_at)])) as ArrayRef,
        ),
        (
            "status",
            Arc::new(StringArray::from(vec!["committed"])) as ArrayRef,
        ),
        (
            "files",
            Arc::new(Int64Array::from(vec![loaded.len() as i64])) as ArrayRef,
        ),
        (
            "rows",
            Arc::new(Int64Array::from(vec![total_rows as i64])) as ArrayRef,
        ),
    ]);
    let mut out = Vec::new();
    for (table, values) in [(&files_table, files_values), (&loads_table, loads_values)] {
        let schema = Arc::clone(&table.file_schema);
        let len = values.values().next().map_or(0, |a| a.len());
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| {
                values
                    .get(f.name().as_str())
                    .map(Arc::clone)
                    .unwrap_or_else(|| new_null_array(f.data_type(), len))
            })
            .collect();
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        let store = object_store_for(&table.dir)?;
        let mut writer = DataFileWriter::new(store, &table.dir, schema, WriteOptions::default());
        writer.write(&batch).await?;
        for file in writer.finish().await? {
            out.push((table.id(), file));
        }
    }
    Ok((files_table.id(), loads_table.id(), out))
}
