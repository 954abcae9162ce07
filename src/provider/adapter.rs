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

use crate::catalog::FIELD_ID_KEY;

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
}

/// Check that DataFusion's by-name mapping of nested fields reads what DuckLake's
/// by-id mapping would: a nested field renamed, dropped and re-added under the
/// same name, or added with a default since the file was written would be read
/// wrongly, so it is refused (a wrong value is worse than an error).
fn check_nested(
    table: &Field,
    file: &Field,
    defaulted: &std::collections::HashSet<i64>,
) -> std::result::Result<(), String> {
    match (table.data_type(), file.data_type()) {
        (DataType::Struct(tc), DataType::Struct(fc)) => {
            for t in tc {
                let Some(id) = field_id(t) else { continue };
                match fc.iter().find(|f| field_id(f) == Some(id)) {
                    Some(f) if f.name() != t.name() => {
                        return Err(format!(
                            "struct field '{}' was renamed from '{}'",
                            t.name(),
                            f.name()
                        ));
                    }
                    Some(f) => check_nested(t, f, defaulted)?,
                    None if fc.iter().any(|f| f.name() == t.name()) => {
                        return Err(format!(
                            "struct field '{}' was dropped and added again",
                            t.name()
                        ));
                    }
                    None if defaulted.contains(&id) => {
                        return Err(format!(
                            "struct field '{}' was added with a default value",
                            t.name()
                        ));
                    }
                    None => {}
                }
            }
            Ok(())
        }
        (DataType::List(t), DataType::List(f))
        | (DataType::LargeList(t), DataType::LargeList(f))
        | (DataType::Map(t, _), DataType::Map(f, _)) => check_nested(t, f, defaulted),
        _ => Ok(()),
    }
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
            if let Some(p) = physical
                && file_has_ids
                && let Err(why) = check_nested(field, p, &self.defaulted_nested)
            {
                return Err(datafusion::error::DataFusionError::NotImplemented(format!(
                    "column '{}': {why} after some data files were written; lakeq maps nested \
                     fields by name and would read wrong values there, so it refuses (rewrite \
                     the files with DuckDB's ducklake_rewrite_data_files, or read with DuckDB)",
                    field.name()
                )));
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
            fields.push(field.as_ref().clone().with_name(name));
        }
        let renamed_logical = Arc::new(Schema::new_with_metadata(
            fields,
            logical_file_schema.metadata().clone(),
        ));
        Ok(Arc::new(FieldIdAdapter {
            renames,
            defaults,
            inner: DefaultPhysicalExprAdapter::new(renamed_logical, physical_file_schema),
        }))
    }
}

/// Rewrites expressions over the table schema into expressions over one file.
#[derive(Debug)]
pub struct FieldIdAdapter {
    renames: HashMap<String, String>,
    defaults: HashMap<String, ScalarValue>,
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
                match self.renames.get(col.name()) {
                    Some(n) => Ok(Transformed::yes(Arc::new(Column::new(n, col.index())) as _)),
                    None => Ok(Transformed::no(e)),
                }
            })
            .data()?;
        self.inner.rewrite(renamed)
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
