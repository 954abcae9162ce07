//! The write plan of one table schema: the schema handed to parquet-rs, the
//! Parquet schema, the leaf columns, and the preparation of input batches
//! (cast to the table schema, converted to the write types).
//!
//! The plan's other parts live with what they serve: the writer properties in
//! `properties`, the statistics in `stats` and `floats`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::parquet::schema::types::{SchemaDescriptor, Type as ParquetType};

use super::convert::to_write_array;
use super::schema::{Leaf, plan_field};

/// Root name of the Parquet schema (DuckDB's).
const SCHEMA_ROOT: &str = "duckdb_schema";

/// The table schema, what parquet-rs is given for it, and the Parquet leaves.
pub(super) struct WritePlan {
    /// Schema of the input batches (with field ids).
    pub(super) table_schema: SchemaRef,
    /// Schema handed to the Parquet writer (write types, same names and ids).
    pub(super) write_schema: SchemaRef,
    /// The Parquet schema written to the files.
    pub(super) parquet_schema: SchemaDescriptor,
    /// Per top-level column: whether it needs [`to_write_array`].
    pub(super) convert: Vec<bool>,
    /// Leaf columns in Parquet column order.
    pub(super) leaves: Vec<Leaf>,
    /// Whether any leaf is a float (else the NaN scan is skipped).
    pub(super) has_float_leaf: bool,
}

impl WritePlan {
    pub(super) fn new(table_schema: SchemaRef) -> Result<Self, String> {
        if let Some(g) = table_schema
            .fields()
            .iter()
            .find(|f| crate::catalog::is_geometry(f))
        {
            return Err(format!(
                "column '{}' is a GEOMETRY column; lakeq reads geometries (as WKT text) but \
                 does not write them yet: write this table with DuckDB",
                g.name()
            ));
        }
        let mut leaves = Vec::new();
        let planned = table_schema
            .fields()
            .iter()
            .map(|f| plan_field(f, &mut leaves))
            .collect::<Result<Vec<_>, String>>()?;
        if planned.is_empty() {
            return Err("a data file needs at least one column".into());
        }
        let root = ParquetType::group_type_builder(SCHEMA_ROOT)
            .with_fields(planned.iter().map(|p| Arc::clone(&p.parquet)).collect())
            .build()
            .map_err(|e| e.to_string())?;
        let convert = planned.iter().map(|p| p.convert).collect();
        let write_schema = Arc::new(Schema::new(
            planned.into_iter().map(|p| p.arrow).collect::<Vec<_>>(),
        ));
        Ok(Self {
            table_schema,
            write_schema,
            parquet_schema: SchemaDescriptor::new(Arc::new(root)),
            convert,
            has_float_leaf: leaves.iter().any(|l| l.is_float),
            leaves,
        })
    }

    /// Cast `batch` to the table schema (by position) and convert it to the write schema.
    pub(super) fn prepare(&self, batch: &RecordBatch) -> Result<RecordBatch, String> {
        let fields = self.table_schema.fields();
        if batch.num_columns() != fields.len() {
            return Err(format!(
                "batch has {} columns, the table has {}",
                batch.num_columns(),
                fields.len()
            ));
        }
        let cast_options = CastOptions {
            safe: false,
            ..CastOptions::default()
        };
        let mut columns = Vec::with_capacity(fields.len());
        for ((array, field), (write_field, convert)) in batch
            .columns()
            .iter()
            .zip(fields.iter())
            .zip(self.write_schema.fields().iter().zip(&self.convert))
        {
            let array = if array.data_type() == field.data_type() {
                Arc::clone(array)
            } else {
                cast_with_options(array, field.data_type(), &cast_options).map_err(|e| {
                    format!(
                        "column '{}': cannot cast {} to {}: {e}",
                        field.name(),
                        array.data_type(),
                        field.data_type()
                    )
                })?
            };
            let array = if *convert {
                to_write_array(&array, write_field.data_type())
                    .map_err(|e| format!("column '{}': {e}", field.name()))?
            } else {
                array
            };
            columns.push(array);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        RecordBatch::try_new_with_options(Arc::clone(&self.write_schema), columns, &options)
            .map_err(|e| e.to_string())
    }
}
