//! DuckDB statements whose output DataFusion shapes differently: `DESCRIBE`
//! (DuckDB's six columns and type names) and `SHOW TABLES` (the names in the
//! current schema). They are answered from the planned table's schema and the
//! catalog, as constant plans.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{DescribeAlias, ObjectName, Statement};

use super::render::duckdb_type_name;
use crate::error::Result;

fn constant_plan(batch: RecordBatch) -> Result<LogicalPlan> {
    let schema = batch.schema();
    let table = MemTable::try_new(schema, vec![vec![batch]])?;
    Ok(LogicalPlanBuilder::scan("result", provider_as_source(Arc::new(table)), None)?.build()?)
}

/// `DESCRIBE t`: column_name, column_type, null, key, default, extra.
async fn describe(
    state: &SessionState,
    name: &ObjectName,
    variables: &super::plan::Variables,
) -> Result<LogicalPlan> {
    let (plan, _) = Box::pin(super::plan::plan_sql(
        state,
        &format!("SELECT * FROM {name}"),
        variables,
    ))
    .await?;
    let fields = plan.schema().fields();
    let text = |v: Vec<Option<String>>| Arc::new(StringArray::from(v));
    let names = fields.iter().map(|f| Some(f.name().clone())).collect();
    let types = fields
        .iter()
        .map(|f| Some(duckdb_type_name(f.data_type())))
        .collect();
    // NOT NULL as the lake records it (lakeq's Arrow fields are all nullable).
    let mut not_null = std::collections::HashSet::new();
    if let LogicalPlan::Projection(p) = &plan
        && let LogicalPlan::TableScan(scan) = p.input.as_ref()
        && let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source)
    {
        let any: &dyn std::any::Any = provider.as_ref();
        if let Some(table) = any.downcast_ref::<crate::provider::table::LakeTable>() {
            for c in &table.entry().columns {
                if !c.row.nulls_allowed {
                    not_null.insert(c.row.column_name.clone());
                }
            }
        }
    }
    let nulls = fields
        .iter()
        .map(|f| {
            let nullable = f.is_nullable() && !not_null.contains(f.name());
            Some(if nullable { "YES" } else { "NO" }.to_string())
        })
        .collect();
    let none = || vec![None::<String>; fields.len()];
    let schema = Arc::new(Schema::new(
        [
            "column_name",
            "column_type",
            "null",
            "key",
            "default",
            "extra",
        ]
        .iter()
        .map(|n| Field::new(*n, DataType::Utf8, true))
        .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            text(names),
            text(types),
            text(nulls),
            text(none()),
            text(none()),
            text(none()),
        ],
    )?;
    constant_plan(batch)
}

/// `SHOW TABLES`: the tables and views of the current schema, by name.
fn show_tables(state: &SessionState) -> Result<LogicalPlan> {
    let options = state.config_options();
    let catalog = &options.catalog.default_catalog;
    let schema = &options.catalog.default_schema;
    let mut names: Vec<String> = state
        .catalog_list()
        .catalog(catalog)
        .and_then(|c| c.schema(schema))
        .map(|s| s.table_names())
        .unwrap_or_default();
    names.sort();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("name", DataType::Utf8, false)])),
        vec![Arc::new(StringArray::from(names))],
    )?;
    constant_plan(batch)
}

/// The plan of a statement DuckDB answers differently from DataFusion, if it is one.
pub async fn duckdb_statement(
    state: &SessionState,
    statement: &DFStatement,
    variables: &super::plan::Variables,
) -> Result<Option<LogicalPlan>> {
    let DFStatement::Statement(s) = statement else {
        return Ok(None);
    };
    match s.as_ref() {
        Statement::ExplainTable {
            describe_alias: DescribeAlias::Describe | DescribeAlias::Desc,
            table_name,
            ..
        } => describe(state, table_name, variables).await.map(Some),
        Statement::ShowTables { show_options, .. }
            if show_options.show_in.is_none() && show_options.filter_position.is_none() =>
        {
            show_tables(state).map(Some)
        }
        _ => Ok(None),
    }
}
