//! Map table columns to Parquet columns by field id, not by name.
//!
//! DuckLake identifies a column by its `column_id`, which DuckDB writes as the
//! Parquet field id. After `RENAME COLUMN`, old files still carry the old name,
//! and after `DROP` + `ADD` of the same name the new column must *not* read the
//! old data. DataFusion's default adapter matches by name, so this adapter first
//! renames the table-side columns to the file's names for the same field id,
//! fills columns the file lacks with their `initial_default`, and then lets
//! [`DefaultPhysicalExprAdapter`] insert casts (type widening, int128 stored as
//! DOUBLE, ...).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapter, PhysicalExprAdapter, PhysicalExprAdapterFactory,
};

use crate::catalog::{ColumnNode, FIELD_ID_KEY};

/// The field id of an Arrow field, if it carries one.
pub fn field_id(field: &Field) -> Option<i64> {
    field.metadata().get(FIELD_ID_KEY)?.parse().ok()
}

/// Creates [`FieldIdAdapter`]s; holds each table column's id and `initial_default`.
#[derive(Debug, Clone, Default)]
pub struct FieldIdAdapterFactory {
    /// Column id (= Parquet field id) by table column name.
    pub field_ids: HashMap<String, i64>,
    /// Value for rows of files written before the column existed, by table column name.
    pub initial_defaults: HashMap<String, ScalarValue>,
    /// For files registered with a name mapping (`ducklake_add_data_files`): the
    /// file's column name per table column name. Empty: match by field id.
    pub file_names: HashMap<String, String>,
    /// Values that do not come from the file: Hive partition values of
    /// name-mapped files, by table column name.
    pub constants: HashMap<String, ScalarValue>,
    /// Column ids of nested fields with a non-NULL `initial_default`.
    pub defaulted_nested: std::collections::HashSet<i64>,
    /// The column trees of the table's nested columns, by table column name: their
    /// fields are matched to a file's by field id.
    pub nested: HashMap<String, Arc<ColumnNode>>,
}

/// `table` (the type of column `node`) with each struct field named as the field of
/// the same id in `file` (a file's type of that column), so that DataFusion's by-name
/// cast reads a renamed field from its old name. A field the file lacks gets a name no
/// file field has (it reads NULL, never a dropped field of its old name); a missing
/// field with a non-NULL `initial_default` is refused (its value would be lost).
fn file_named(
    node: &ColumnNode,
    table: &DataType,
    file: &DataType,
    defaulted: &std::collections::HashSet<i64>,
) -> std::result::Result<DataType, String> {
    Ok(match (table, file) {
        (DataType::Struct(tc), DataType::Struct(fc)) => {
            let mut fields = Vec::with_capacity(tc.len());
            for (t, child) in tc.iter().zip(&node.children) {
                let id = child.row.column_id;
                let field = match fc.iter().find(|f| field_id(f) == Some(id)) {
                    Some(f) => t
                        .as_ref()
                        .clone()
                        .with_name(f.name())
                        .with_data_type(file_named(
                            child,
                            t.data_type(),
                            f.data_type(),
                            defaulted,
                        )?),
                    None if defaulted.contains(&id) => {
                        return Err(format!(
                            "struct field '{}' was added with a default value",
                            t.name()
                        ));
                    }
                    None => t
                        .as_ref()
                        .clone()
                        .with_name(format!("__lakeq_missing_{id}")),
                };
                fields.push(Arc::new(field));
            }
            // DataFusion casts a struct only when some field names overlap: a struct
            // none of whose fields are in the file reads one of the file's fields as
            // well, which the relabel drops (it keeps the table's fields only).
            let overlaps = fields
                .iter()
                .any(|f| fc.iter().any(|p| p.name() == f.name()));
            if let (false, Some(first)) = (overlaps, fc.first()) {
                fields.push(Arc::clone(first));
            }
            DataType::Struct(fields.into())
        }
        (DataType::List(t), DataType::List(f) | DataType::LargeList(f))
        | (DataType::LargeList(t), DataType::List(f) | DataType::LargeList(f)) => {
            let Some(element) = node.children.first() else {
                return Ok(table.clone());
            };
            let inner = Arc::new(t.as_ref().clone().with_data_type(file_named(
                element,
                t.data_type(),
                f.data_type(),
                defaulted,
            )?));
            match table {
                DataType::LargeList(_) => DataType::LargeList(inner),
                _ => DataType::List(inner),
            }
        }
        (DataType::Map(t, sorted), DataType::Map(f, _)) => {
            let (DataType::Struct(tkv), DataType::Struct(fkv)) = (t.data_type(), f.data_type())
            else {
                return Ok(table.clone());
            };
            let mut fields = Vec::with_capacity(tkv.len());
            for ((tf, ff), child) in tkv.iter().zip(fkv.iter()).zip(&node.children) {
                fields.push(Arc::new(tf.as_ref().clone().with_data_type(file_named(
                    child,
                    tf.data_type(),
                    ff.data_type(),
                    defaulted,
                )?)));
            }
            let entries = t
                .as_ref()
                .clone()
                .with_data_type(DataType::Struct(fields.into()));
            DataType::Map(Arc::new(entries), *sorted)
        }
        _ => table.clone(),
    })
}

impl PhysicalExprAdapterFactory for FieldIdAdapterFactory {
    fn create(
        &self,
        logical_file_schema: SchemaRef,
        physical_file_schema: SchemaRef,
    ) -> DFResult<Arc<dyn PhysicalExprAdapter>> {
        let by_id: HashMap<i64, &Field> = physical_file_schema
            .fields()
            .iter()
            .filter_map(|f| field_id(f).map(|id| (id, f.as_ref())))
            .collect();
        let file_has_ids = !by_id.is_empty();
        let mut renames = HashMap::new();
        let mut defaults = HashMap::new();
        let mut relabel = HashMap::new();
        let mut fields = Vec::with_capacity(logical_file_schema.fields().len());
        for (i, field) in logical_file_schema.fields().iter().enumerate() {
            let table_field_id = self
                .field_ids
                .get(field.name())
                .copied()
                .or_else(|| field_id(field));
            if let Some(v) = self.constants.get(field.name()) {
                defaults.insert(field.name().clone(), v.clone());
                let name = format!("__lakeq_constant_{i}");
                renames.insert(field.name().clone(), name.clone());
                fields.push(field.as_ref().clone().with_name(name));
                continue;
            }
            let physical =
                if !self.file_names.is_empty() && self.field_ids.contains_key(field.name()) {
                    self.file_names
                        .get(field.name())
                        .and_then(|n| physical_file_schema.field_with_name(n).ok())
                } else if file_has_ids && let Some(id) = table_field_id {
                    by_id.get(&id).copied()
                } else if file_has_ids {
                    // Not a table column (a virtual column such as the row number): by name.
                    physical_file_schema.field_with_name(field.name()).ok()
                } else if table_field_id.is_some() {
                    // Files without field ids and without a name mapping (registered
                    // by DuckLake before 0.3): the table's columns by position, as
                    // DuckDB reads them.
                    physical_file_schema.fields().get(i).map(|f| f.as_ref())
                } else {
                    physical_file_schema.field_with_name(field.name()).ok()
                };
            // Nested fields: read by field id, under the names the file gives them,
            // then relabelled to the table's names.
            let mut read_as = None;
            if let Some(p) = physical
                && file_has_ids
                && let Some(node) = self.nested.get(field.name())
            {
                let named = file_named(
                    node,
                    field.data_type(),
                    p.data_type(),
                    &self.defaulted_nested,
                )
                .map_err(|why| {
                    datafusion::error::DataFusionError::NotImplemented(format!(
                        "column '{}': {why} after some data files were written; lakeq \
                                 would read wrong values there, so it refuses (rewrite the files \
                                 with DuckDB's ducklake_rewrite_data_files, or read with DuckDB)",
                        field.name()
                    ))
                })?;
                if &named != field.data_type() {
                    read_as = Some(named);
                }
            }
            let name = match physical {
                Some(p) => p.name().clone(),
                None => {
                    if let Some(v) = self.initial_defaults.get(field.name()) {
                        defaults.insert(field.name().clone(), v.clone());
                    }
                    // A name no file column has, so the default adapter reads NULL.
                    format!("__lakeq_missing_{i}")
                }
            };
            if &name != field.name() {
                renames.insert(field.name().clone(), name.clone());
            }
            match read_as {
                Some(named) => {
                    relabel.insert(name.clone(), field.data_type().clone());
                    fields.push(field.as_ref().clone().with_name(name).with_data_type(named));
                }
                None => fields.push(field.as_ref().clone().with_name(name)),
            }
        }
        let renamed_logical = Arc::new(Schema::new_with_metadata(
            fields,
            logical_file_schema.metadata().clone(),
        ));
        Ok(Arc::new(FieldIdAdapter {
            renames,
            defaults,
            relabel,
            inner: DefaultPhysicalExprAdapter::new(renamed_logical, physical_file_schema),
        }))
    }
}

/// Rewrites expressions over the table schema into expressions over one file.
#[derive(Debug)]
pub struct FieldIdAdapter {
    renames: HashMap<String, String>,
    defaults: HashMap<String, ScalarValue>,
    /// File-side column names read under the file's nested field names, with the
    /// table's type to relabel them to.
    relabel: HashMap<String, DataType>,
    inner: DefaultPhysicalExprAdapter,
}

impl PhysicalExprAdapter for FieldIdAdapter {
    fn rewrite(&self, expr: Arc<dyn PhysicalExpr>) -> DFResult<Arc<dyn PhysicalExpr>> {
        let renamed = expr
            .transform(|e| {
                let Some(col) = e.downcast_ref::<Column>() else {
                    return Ok(Transformed::no(e));
                };
                if let Some(v) = self.defaults.get(col.name()) {
                    return Ok(Transformed::yes(Arc::new(Literal::new(v.clone())) as _));
                }
                let name = self
                    .renames
                    .get(col.name())
                    .map_or(col.name(), |n| n.as_str());
                let column: Arc<dyn PhysicalExpr> = if name == col.name() {
                    Arc::clone(&e)
                } else {
                    Arc::new(Column::new(name, col.index()))
                };
                match self.relabel.get(name) {
                    // (Bottom-up: the column inside is not visited again here; the
                    // default adapter rewrites it below.)
                    Some(table_type) => Ok(Transformed::yes(Arc::new(Relabel::new(
                        column,
                        table_type.clone(),
                    )) as _)),
                    None if name == col.name() => Ok(Transformed::no(e)),
                    None => Ok(Transformed::yes(column)),
                }
            })
            .data()?;
        self.inner.rewrite(renamed)
    }
}

/// Nested values read under a file's field names, given the table's names: the same
/// arrays under another type of identical layout (see `file_named`).
#[derive(Debug, Eq)]
pub struct Relabel {
    input: Arc<dyn PhysicalExpr>,
    target: DataType,
}

impl PartialEq for Relabel {
    fn eq(&self, other: &Self) -> bool {
        self.input.as_ref() == other.input.as_ref() && self.target == other.target
    }
}

impl std::hash::Hash for Relabel {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.target.hash(state);
    }
}

impl Relabel {
    /// `input`'s values typed as `target`.
    pub fn new(input: Arc<dyn PhysicalExpr>, target: DataType) -> Self {
        Self { input, target }
    }
}

impl std::fmt::Display for Relabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "relabel({})", self.input)
    }
}

/// `data` typed as `target`, whose layout is the same (names may differ), at every depth.
fn relabel_data(
    data: datafusion::arrow::array::ArrayData,
    target: &DataType,
) -> DFResult<datafusion::arrow::array::ArrayData> {
    let children: Vec<datafusion::arrow::array::ArrayData> = match target {
        // (`zip` leaves out a field read only to make the cast possible, see
        // [`file_named`].)
        DataType::Struct(fields) => data
            .child_data()
            .iter()
            .zip(fields.iter())
            .map(|(c, f)| relabel_data(c.clone(), f.data_type()))
            .collect::<DFResult<_>>()?,
        DataType::List(f) | DataType::LargeList(f) | DataType::Map(f, _) => data
            .child_data()
            .iter()
            .map(|c| relabel_data(c.clone(), f.data_type()))
            .collect::<DFResult<_>>()?,
        _ => return Ok(data),
    };
    Ok(data
        .into_builder()
        .data_type(target.clone())
        .child_data(children)
        .build()?)
}

impl PhysicalExpr for Relabel {
    fn return_field(
        &self,
        input_schema: &Schema,
    ) -> DFResult<datafusion::arrow::datatypes::FieldRef> {
        let input = self.input.return_field(input_schema)?;
        Ok(Arc::new(
            input.as_ref().clone().with_data_type(self.target.clone()),
        ))
    }

    fn evaluate(
        &self,
        batch: &datafusion::arrow::record_batch::RecordBatch,
    ) -> DFResult<datafusion::logical_expr::ColumnarValue> {
        use datafusion::logical_expr::ColumnarValue;
        let values = self.input.evaluate(batch)?.into_array(batch.num_rows())?;
        let data = relabel_data(values.to_data(), &self.target)?;
        Ok(ColumnarValue::Array(datafusion::arrow::array::make_array(
            data,
        )))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> DFResult<Arc<dyn PhysicalExpr>> {
        let [input] = <[Arc<dyn PhysicalExpr>; 1]>::try_from(children).map_err(|_| {
            datafusion::error::DataFusionError::Internal("relabel takes one input".into())
        })?;
        Ok(Arc::new(Self::new(input, self.target.clone())))
    }

    fn fmt_sql(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.input)
    }
}

/// A DuckLake `geometry` column: the file's WKB values as WKT text.
#[derive(Debug, Eq)]
pub struct WkbToWkt {
    wkb: Arc<dyn PhysicalExpr>,
}

impl PartialEq for WkbToWkt {
    fn eq(&self, other: &Self) -> bool {
        self.wkb.as_ref() == other.wkb.as_ref()
    }
}

impl std::hash::Hash for WkbToWkt {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.wkb.hash(state);
    }
}

impl WkbToWkt {
    /// WKT of the WKB values of `wkb`.
    pub fn new(wkb: Arc<dyn PhysicalExpr>) -> Self {
        Self { wkb }
    }
}

impl std::fmt::Display for WkbToWkt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "wkb_to_wkt({})", self.wkb)
    }
}

impl PhysicalExpr for WkbToWkt {
    fn return_field(
        &self,
        input_schema: &Schema,
    ) -> DFResult<datafusion::arrow::datatypes::FieldRef> {
        let wkb = self.wkb.return_field(input_schema)?;
        Ok(Arc::new(
            wkb.as_ref().clone().with_data_type(DataType::Utf8),
        ))
    }

    fn evaluate(
        &self,
        batch: &datafusion::arrow::record_batch::RecordBatch,
    ) -> DFResult<datafusion::logical_expr::ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray};
        use datafusion::logical_expr::ColumnarValue;
        let values = self.wkb.evaluate(batch)?.into_array(batch.num_rows())?;
        let text = match values.data_type() {
            DataType::Binary => wkt_of(values.as_binary::<i32>().iter(), values.len()),
            DataType::LargeBinary => wkt_of(values.as_binary::<i64>().iter(), values.len()),
            DataType::BinaryView => wkt_of(values.as_binary_view().iter(), values.len()),
            other => return Err(wkb_type_error(other)),
        }?;
        Ok(ColumnarValue::Array(Arc::new(text)))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.wkb]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> DFResult<Arc<dyn PhysicalExpr>> {
        let [wkb]: [Arc<dyn PhysicalExpr>; 1] = children.try_into().map_err(|_| {
            datafusion::error::DataFusionError::Internal("wkb_to_wkt takes one argument".into())
        })?;
        Ok(Arc::new(Self::new(wkb)))
    }

    fn fmt_sql(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "wkb_to_wkt(")?;
        self.wkb.fmt_sql(f)?;
        write!(f, ")")
    }
}

/// WKT of each WKB value (NULL stays NULL).
fn wkt_of<'a>(
    values: impl Iterator<Item = Option<&'a [u8]>>,
    len: usize,
) -> DFResult<datafusion::arrow::array::StringArray> {
    let mut out = datafusion::arrow::array::StringBuilder::with_capacity(len, len * 16);
    for value in values {
        match value {
            None => out.append_null(),
            Some(wkb) => {
                let text = crate::spec::geometry::wkb_to_wkt(wkb).map_err(|e| {
                    datafusion::error::DataFusionError::Execution(format!(
                        "geometry column: invalid WKB value: {e}"
                    ))
                })?;
                out.append_value(text);
            }
        }
    }
    Ok(out.finish())
}

fn wkb_type_error(found: &DataType) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::Execution(format!(
        "geometry column stored as {found} in a data file, expected WKB bytes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_id(name: &str, t: DataType, id: i64) -> Field {
        Field::new(name, t, true)
            .with_metadata(HashMap::from([(FIELD_ID_KEY.to_string(), id.to_string())]))
    }

    /// The file column a table column's expression reads, after adaptation.
    fn reads(
        factory: &FieldIdAdapterFactory,
        table: &Schema,
        file: &Schema,
        column: &str,
    ) -> String {
        let adapter = factory
            .create(Arc::new(table.clone()), Arc::new(file.clone()))
            .expect("adapter");
        let index = table.index_of(column).expect("column");
        let expr = adapter
            .rewrite(Arc::new(Column::new(column, index)))
            .expect("rewrite");
        expr.to_string()
    }

    fn factory() -> FieldIdAdapterFactory {
        FieldIdAdapterFactory {
            field_ids: HashMap::from([("id".to_string(), 1), ("payload".to_string(), 2)]),
            ..FieldIdAdapterFactory::default()
        }
    }

    #[test]
    fn renamed_columns_are_read_by_field_id() {
        let table = Schema::new(vec![
            with_id("id", DataType::Int32, 1),
            with_id("payload", DataType::Utf8, 2),
        ]);
        // The file has the columns in another order, under an old name.
        let file = Schema::new(vec![
            with_id("payload", DataType::Utf8, 2),
            with_id("old_id", DataType::Int32, 1),
        ]);
        assert_eq!(reads(&factory(), &table, &file, "id"), "old_id@1");
        assert_eq!(reads(&factory(), &table, &file, "payload"), "payload@0");
    }

    /// DuckDB reads a file without field ids and without a name mapping (DuckLake
    /// before 0.3) by position: a column renamed since still reads its data.
    #[test]
    fn files_without_field_ids_are_read_by_position() {
        let table = Schema::new(vec![
            with_id("id", DataType::Int32, 1),
            with_id("payload", DataType::Utf8, 2),
        ]);
        let file = Schema::new(vec![
            Field::new("old_id", DataType::Int32, true),
            Field::new("payload", DataType::Utf8, true),
        ]);
        assert!(reads(&factory(), &table, &file, "id").contains("old_id@0"));
        assert!(reads(&factory(), &table, &file, "payload").contains("payload@1"));
    }
}
