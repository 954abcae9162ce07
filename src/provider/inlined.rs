//! Inlined data: small inserts DuckDB keeps inside the catalog, in
//! `ducklake_inlined_data_<table>_<schema_version>` tables (SPEC §8).
//!
//! Each inlined table has the column layout of its schema version; columns are
//! mapped to the current table schema by column id (renamed columns keep their
//! id, dropped ones are ignored, later-added ones read their `initial_default`).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, new_null_array};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;

use crate::catalog::{ColumnNode, TableEntry, build_column_tree};
use crate::error::{Error, Result};
use crate::spec::SnapshotId;
use crate::spec::types::DuckLakeType;
use crate::spec::values::parse_duckdb_text;
use crate::store::{Dialect, MetadataStore, SqlValue, quote_ident, visible};

/// Convert one catalog value into a value of `data_type`.
fn to_scalar(value: &SqlValue, data_type: &DataType) -> Result<ScalarValue> {
    let cast = |v: ScalarValue| {
        v.cast_to(data_type)
            .map_err(|e| Error::Corrupt(format!("inlined value {value:?} as {data_type}: {e}")))
    };
    match value {
        SqlValue::Null => Ok(ScalarValue::try_from(data_type)?),
        SqlValue::Int(v) => match data_type {
            DataType::Utf8 | DataType::Decimal128(..) | DataType::Boolean => {
                if *data_type == DataType::Boolean {
                    Ok(ScalarValue::Boolean(Some(*v != 0)))
                } else {
                    parse_duckdb_text(&v.to_string(), data_type)
                }
            }
            _ => cast(ScalarValue::Int64(Some(*v))),
        },
        SqlValue::Float(v) => cast(ScalarValue::Float64(Some(*v))),
        SqlValue::Bool(b) => cast(ScalarValue::Boolean(Some(*b))),
        SqlValue::Text(t) => parse_duckdb_text(t, data_type),
        SqlValue::Timestamp(t) => {
            parse_duckdb_text(&t.format("%Y-%m-%d %H:%M:%S%.f+00").to_string(), data_type)
        }
        SqlValue::Blob(b) => match data_type {
            DataType::Binary => Ok(ScalarValue::Binary(Some(b.clone()))),
            _ => {
                let text = String::from_utf8(b.clone()).map_err(|_| {
                    Error::Corrupt(format!("inlined bytes are not UTF-8 for {data_type}"))
                })?;
                parse_duckdb_text(&text, data_type)
            }
        },
    }
}

/// How to select one inlined column so that the backend returns a decodable value.
fn select_expr(dialect: Dialect, name: &str, ty: &DuckLakeType) -> String {
    let col = quote_ident(name);
    match dialect {
        Dialect::Sqlite => col,
        Dialect::Postgres => match ty {
            DuckLakeType::Boolean
            | DuckLakeType::Int8
            | DuckLakeType::Int16
            | DuckLakeType::Int32
            | DuckLakeType::Int64
            | DuckLakeType::UInt8
            | DuckLakeType::UInt16
            | DuckLakeType::UInt32
            | DuckLakeType::Float32
            | DuckLakeType::Float64
            | DuckLakeType::Varchar
            | DuckLakeType::Json
            | DuckLakeType::Blob => col,
            _ => format!("{col}::text"),
        },
    }
}

/// Read all inlined rows of `table` visible at snapshot `s`, in the table's
/// current schema, with their row ids; `None` when there are none.
pub async fn read_inlined_rows(
    store: &MetadataStore,
    table: &TableEntry,
    s: SnapshotId,
) -> Result<Option<(RecordBatch, Vec<i64>, Vec<i64>)>> {
    read_inlined(store, table, InlinedVisibility::At(s)).await
}

/// Which inlined rows to read.
#[derive(Debug, Clone, Copy)]
pub enum InlinedVisibility {
    /// Visible at a snapshot; each row's snapshot is the one that inserted it.
    At(SnapshotId),
    /// Inserted in `[start, end]`, whatever happened later; snapshot = insert.
    InsertedBetween(SnapshotId, SnapshotId),
    /// Deleted in `[start, end]`; snapshot = delete.
    DeletedBetween(SnapshotId, SnapshotId),
}

/// Read the inlined rows of `table` chosen by `which`, in the table's current
/// schema: (rows, row ids, snapshot per row).
pub async fn read_inlined(
    store: &MetadataStore,
    table: &TableEntry,
    which: InlinedVisibility,
) -> Result<Option<(RecordBatch, Vec<i64>, Vec<i64>)>> {
    Ok(read_inlined_rows_of(store, table, which, None)
        .await?
        .map(|r| (r.batch, r.row_ids, r.snapshots)))
}

/// Inlined rows with their whole history.
#[derive(Debug)]
pub struct InlinedRows {
    /// The rows, in the schema of the table entry they were read for.
    pub batch: RecordBatch,
    /// Each row's row id.
    pub row_ids: Vec<i64>,
    /// Each row's snapshot as the visibility asked for it.
    pub snapshots: Vec<i64>,
    /// Each row's `end_snapshot` (`None`: live).
    pub end_snapshots: Vec<Option<i64>>,
}

impl InlinedRows {
    /// The rows at these positions, in that order.
    pub fn take(&self, positions: &[u32]) -> Result<InlinedRows> {
        let indices = datafusion::arrow::array::UInt32Array::from(positions.to_vec());
        let pick = |v: &[i64]| -> Vec<i64> {
            positions
                .iter()
                .filter_map(|&p| v.get(p as usize).copied())
                .collect()
        };
        Ok(InlinedRows {
            batch: datafusion::arrow::compute::take_record_batch(&self.batch, &indices)?,
            row_ids: pick(&self.row_ids),
            snapshots: pick(&self.snapshots),
            end_snapshots: positions
                .iter()
                .filter_map(|&p| self.end_snapshots.get(p as usize).copied())
                .collect(),
        })
    }
}

/// Every row version of the one inlined table `table_name` inserted up to
/// snapshot `upto` (ended ones too), in the layout of `table` (the table as it
/// was at that inlined table's schema version), in row-id order; for flushing.
pub async fn read_inlined_versions(
    store: &MetadataStore,
    table: &TableEntry,
    table_name: &str,
    upto: SnapshotId,
) -> Result<Option<InlinedRows>> {
    read_inlined_rows_of(
        store,
        table,
        InlinedVisibility::InsertedBetween(SnapshotId::MIN, upto),
        Some(table_name),
    )
    .await
}

async fn read_inlined_rows_of(
    store: &MetadataStore,
    table: &TableEntry,
    which: InlinedVisibility,
    only: Option<&str>,
) -> Result<Option<InlinedRows>> {
    let mut inlined = store.inlined_tables(table.id()).await?;
    if let Some(name) = only {
        inlined.retain(|t| t.table_name == name);
    }
    let condition = match which {
        InlinedVisibility::At(s) => visible("", s),
        InlinedVisibility::InsertedBetween(a, b) => {
            format!("begin_snapshot >= {a} AND begin_snapshot <= {b}")
        }
        InlinedVisibility::DeletedBetween(a, b) => {
            format!("end_snapshot >= {a} AND end_snapshot <= {b}")
        }
    };
    // Most inlined tables are empty (every table has one, flushes empty them):
    // one probe each, and the layouts are loaded only for those with rows.
    let backend = store.backend();
    let mut with_rows = Vec::new();
    for it in inlined {
        if backend.table_exists(&it.table_name).await?
            && !backend
                .query(&format!(
                    "SELECT 1 FROM {} WHERE {condition} LIMIT 1",
                    backend.table(&it.table_name)
                ))
                .await?
                .is_empty()
        {
            with_rows.push(it);
        }
    }
    let inlined = with_rows;
    if inlined.is_empty() {
        return Ok(None);
    }
    let schema: SchemaRef = Arc::clone(&table.arrow_schema);
    let versions = store.schema_versions(table.id()).await?;
    let all_columns = store.all_column_versions(table.id()).await?;
    let current: Vec<(i64, DataType)> = table
        .columns
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| (c.row.column_id, f.data_type().clone()))
        .collect();
    let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::new(); current.len()];
    let mut row_ids: Vec<i64> = Vec::new();
    let mut snapshots: Vec<i64> = Vec::new();
    let mut end_snapshots: Vec<Option<i64>> = Vec::new();
    for it in &inlined {
        // The layout: top-level columns visible at the first snapshot of that schema version.
        let layout_snapshot = versions
            .iter()
            .find(|v| v.schema_version == it.schema_version)
            .map_or(table.row.begin_snapshot, |v| v.begin_snapshot);
        let layout_rows: Vec<_> = all_columns
            .iter()
            .filter(|c| {
                c.begin_snapshot <= layout_snapshot
                    && c.end_snapshot.is_none_or(|e| layout_snapshot < e)
            })
            .cloned()
            .collect();
        let layout = build_column_tree(&layout_rows)?;
        let physical_names = backend.table_columns(&it.table_name).await?;
        // Inlined tables are (row_id, begin_snapshot, end_snapshot, <columns...>).
        let user_names = physical_names.get(3..).unwrap_or(&[]);
        let snapshot_column = match which {
            InlinedVisibility::DeletedBetween(..) => "end_snapshot",
            InlinedVisibility::At(_) | InlinedVisibility::InsertedBetween(..) => "begin_snapshot",
        };
        let mut select = vec![
            "row_id".to_string(),
            snapshot_column.to_string(),
            "end_snapshot".to_string(),
        ];
        let mut source_for_current: HashMap<i64, (usize, &ColumnNode)> = HashMap::new();
        for (k, col) in layout.iter().enumerate() {
            let Some(name) = user_names.get(k) else { break };
            source_for_current.insert(col.row.column_id, (select.len(), col));
            select.push(select_expr(backend.dialect(), name, &col.ty));
        }
        let by_id = table.columns_by_id();
        let sql = format!(
            "SELECT {} FROM {} WHERE {} ORDER BY row_id, begin_snapshot",
            select.join(", "),
            backend.table(&it.table_name),
            condition
        );
        let rows = backend.query(&sql).await?;
        for row in &rows {
            row_ids.push(row.i64(0)?);
            snapshots.push(row.i64(1)?);
            end_snapshots.push(row.opt_i64(2)?);
            let targets = current.iter().zip(columns.iter_mut().zip(schema.fields()));
            for ((column_id, dt), (values, field)) in targets {
                let value = match source_for_current.get(column_id) {
                    Some(&(src, old)) => {
                        // Parsed in the layout of its schema version, then mapped to the
                        // current one by column id (nested fields renamed, dropped, added).
                        let old_type = old.arrow_field()?.data_type().clone();
                        let parsed = row.get(src).and_then(|raw| to_scalar(raw, &old_type));
                        let parsed = parsed.and_then(|v| match by_id.get(column_id) {
                            Some(new) if old_type != *dt => remap_value(&v, old, new, dt, table),
                            _ => Ok(v),
                        });
                        parsed.map_err(|e| {
                            Error::Corrupt(format!(
                                "inlined data of table '{}' ({}): column '{}': {e}",
                                table.qualified_name(),
                                it.table_name,
                                field.name()
                            ))
                        })?
                    }
                    None => initial_default(table, *column_id, dt)?,
                };
                values.push(value);
            }
        }
    }
    let num_rows = row_ids.len();
    if num_rows == 0 {
        return Ok(None);
    }
    let arrays = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(values, field)| {
            if values.is_empty() {
                Ok(new_null_array(field.data_type(), num_rows))
            } else {
                ScalarValue::iter_to_array(values).map_err(Error::from)
            }
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    let batch = RecordBatch::try_new(schema, arrays).map_err(|e| {
        Error::Corrupt(format!("inlined data of '{}': {e}", table.qualified_name()))
    })?;
    Ok(Some(InlinedRows {
        batch,
        row_ids,
        snapshots,
        end_snapshots,
    }))
}

/// A value of column `old` (an earlier layout) as a value of column `new` (the
/// current one): nested fields matched by column id, fields added since filled
/// with their `initial_default`, primitive types widened by a cast.
fn remap_value(
    value: &ScalarValue,
    old: &ColumnNode,
    new: &ColumnNode,
    new_type: &DataType,
    table: &TableEntry,
) -> Result<ScalarValue> {
    let array = value.to_array()?;
    let remapped = remap_array(&array, old, new, new_type, table)?;
    Ok(ScalarValue::try_from_array(&remapped, 0)?)
}

fn remap_array(
    array: &ArrayRef,
    old: &ColumnNode,
    new: &ColumnNode,
    new_type: &DataType,
    table: &TableEntry,
) -> Result<ArrayRef> {
    use datafusion::arrow::array::{Array, AsArray, ListArray, MapArray, StructArray};
    let new_type = new_type.clone();
    if array.data_type() == &new_type {
        return Ok(Arc::clone(array));
    }
    let child =
        |node: &ColumnNode, id: i64| node.children.iter().position(|c| c.row.column_id == id);
    match (array.data_type(), &new_type) {
        (DataType::Struct(_), DataType::Struct(new_fields)) => {
            let s = array.as_struct();
            let mut columns = Vec::with_capacity(new.children.len());
            for (n, field) in new.children.iter().zip(new_fields.iter()) {
                let found =
                    child(old, n.row.column_id).and_then(|i| Some((i, old.children.get(i)?)));
                let column = match found {
                    Some((i, old_child)) => {
                        remap_array(s.column(i), old_child, n, field.data_type(), table)?
                    }
                    None => {
                        let v = initial_default(table, n.row.column_id, field.data_type())?;
                        v.to_array_of_size(s.len())?
                    }
                };
                columns.push(column);
            }
            Ok(Arc::new(StructArray::try_new(
                new_fields.clone(),
                columns,
                s.nulls().cloned(),
            )?))
        }
        (DataType::List(_), DataType::List(new_element)) => {
            let (Some(old_el), Some(new_el)) = (old.children.first(), new.children.first()) else {
                return Err(Error::Corrupt("list column without an element".into()));
            };
            let list = array.as_list::<i32>();
            let values = remap_array(
                list.values(),
                old_el,
                new_el,
                new_element.data_type(),
                table,
            )?;
            Ok(Arc::new(ListArray::try_new(
                Arc::clone(new_element),
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )?))
        }
        (DataType::Map(_, sorted), DataType::Map(new_entries, _)) => {
            let map = array.as_map();
            let DataType::Struct(entry_fields) = new_entries.data_type() else {
                return Err(Error::Corrupt("map entries are not a struct".into()));
            };
            let mut columns = Vec::new();
            for (k, (n, field)) in new.children.iter().zip(entry_fields.iter()).enumerate() {
                let i = child(old, n.row.column_id).unwrap_or(k);
                let (Some(old_child), Some(source)) =
                    (old.children.get(i), map.entries().columns().get(i))
                else {
                    return Err(Error::Corrupt("map column without key or value".into()));
                };
                columns.push(remap_array(source, old_child, n, field.data_type(), table)?);
            }
            let entries = StructArray::try_new(entry_fields.clone(), columns, None)?;
            Ok(Arc::new(MapArray::try_new(
                Arc::clone(new_entries),
                map.offsets().clone(),
                entries,
                map.nulls().cloned(),
                *sorted,
            )?))
        }
        _ => Ok(datafusion::arrow::compute::cast(array, &new_type)?),
    }
}

/// A column's `initial_default` as a value of `dt` (NULL when it has none).
pub fn initial_default(table: &TableEntry, column_id: i64, dt: &DataType) -> Result<ScalarValue> {
    let by_id = table.columns_by_id();
    match by_id
        .get(&column_id)
        .and_then(|c| c.row.initial_default.as_deref())
    {
        Some(text) if text != "NULL" => parse_duckdb_text(text, dt),
        _ => Ok(ScalarValue::try_from(dt)?),
    }
}
