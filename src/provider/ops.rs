//! DuckLake's option and maintenance calls as table functions, so both DuckDB
//! spellings work: `CALL lake.set_option('k', 'v')` (the dialect turns `CALL f(...)`
//! into `SELECT * FROM f(...)`) and `FROM ducklake_options('lake')`.
//!
//! The work happens when the plan runs, not when it is planned: `EXPLAIN` changes
//! nothing.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DataFusionError, Result as DFResult, ScalarValue};
use datafusion::execution::context::SessionContext;

use super::functions::{constant, lake_catalog, stateful_table, text_arg};
use crate::error::Error;
use crate::ops::options::{Scope, description, normalize, set_option};

fn field(name: &str, t: DataType) -> Field {
    Field::new(name, t, true)
}

fn strings(values: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

/// The lake named by a function's first argument.
fn lake_of(
    args: &TableFunctionArgs,
    function: &str,
) -> DFResult<(
    Arc<crate::lake::Lake>,
    Arc<crate::catalog::CatalogSnapshot>,
    String,
)> {
    let name = text_arg(args.session(), args.exprs(), 0, "the lake name")?.ok_or_else(|| {
        DataFusionError::Plan(format!(
            "{function}(lake, ...) needs the attached lake's name"
        ))
    })?;
    let (lake, snapshot) = lake_catalog(args.session(), &name)?;
    Ok((lake, snapshot, name))
}

/// `ducklake_set_option(lake, name, value, schema, table_name)` → `Success`.
#[derive(Debug)]
struct SetOption;

impl TableFunctionImpl for SetOption {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let (lake, snapshot, lake_name) = lake_of(&args, "ducklake_set_option")?;
        if lake.read_only() {
            return Err(Error::Unsupported(format!(
                "set_option on lake '{lake_name}', attached read only"
            ))
            .into());
        }
        let key = text_arg(args.session(), args.exprs(), 1, "the option name")?
            .ok_or_else(|| DataFusionError::Plan("set_option needs an option name".into()))?;
        let value = match args.exprs().get(2) {
            Some(e) => match constant(args.session(), e)? {
                ScalarValue::Utf8(Some(s))
                | ScalarValue::LargeUtf8(Some(s))
                | ScalarValue::Utf8View(Some(s)) => s,
                v if v.is_null() => {
                    return Err(DataFusionError::Plan(format!(
                        "set_option: option {key} needs a value"
                    )));
                }
                v => v.to_string(),
            },
            None => {
                return Err(DataFusionError::Plan(format!(
                    "set_option: option {key} needs a value"
                )));
            }
        };
        let value = normalize(&key, &value)?;
        let schema_arg = text_arg(args.session(), args.exprs(), 3, "schema")?;
        let table_arg = text_arg(args.session(), args.exprs(), 4, "table_name")?;
        let scope = match (schema_arg, table_arg) {
            (schema, Some(table)) => {
                let schema = schema.unwrap_or_else(|| "main".into());
                let entry = snapshot
                    .table(&schema, &table)
                    .map_err(|_| Error::NotFound {
                        kind: "table",
                        name: format!("{lake_name}.{schema}.{table}"),
                        hint: String::new(),
                    })?;
                Scope::Table(entry.id())
            }
            (Some(schema), None) => {
                let entry = snapshot.schema(&schema)?;
                Scope::Schema(entry.row.schema_id)
            }
            (None, None) => Scope::Global,
        };
        let schema: SchemaRef = Arc::new(Schema::new(vec![field("Success", DataType::Boolean)]));
        let out = Arc::clone(&schema);
        Ok(stateful_table(
            schema,
            Arc::new(move |_| {
                let (lake, key, value, scope, out) = (
                    Arc::clone(&lake),
                    key.clone(),
                    value.clone(),
                    scope.clone(),
                    Arc::clone(&out),
                );
                Box::pin(async move {
                    set_option(lake.store(), &key, &value, &scope).await?;
                    // DuckDB returns no rows.
                    let none: ArrayRef = Arc::new(BooleanArray::from(Vec::<bool>::new()));
                    Ok(RecordBatch::try_new(out, vec![none])?)
                })
            }),
        ))
    }
}

/// `ducklake_options(lake)`: option_name, description, value, scope, scope_entry.
#[derive(Debug)]
struct Options;

impl TableFunctionImpl for Options {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let (lake, snapshot, _) = lake_of(&args, "ducklake_options")?;
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            field("option_name", DataType::Utf8),
            field("description", DataType::Utf8),
            field("value", DataType::Utf8),
            field("scope", DataType::Utf8),
            field("scope_entry", DataType::Utf8),
        ]));
        let out = Arc::clone(&schema);
        Ok(stateful_table(
            schema,
            Arc::new(move |_| {
                let (lake, snapshot, out) =
                    (Arc::clone(&lake), Arc::clone(&snapshot), Arc::clone(&out));
                Box::pin(async move {
                    let metadata = lake.store().metadata().await?;
                    let scope_rank = |s: &Option<String>| match s.as_deref() {
                        None => 0,
                        Some("schema") => 1,
                        _ => 2,
                    };
                    let mut rows: Vec<_> = metadata.rows.iter().collect();
                    rows.sort_by(|a, b| {
                        (&a.0, scope_rank(&a.2), a.3).cmp(&(&b.0, scope_rank(&b.2), b.3))
                    });
                    let schema_name = |id: i64| {
                        snapshot
                            .schemas
                            .iter()
                            .find(|(_, s)| s.row.schema_id == id)
                            .map(|(n, _)| n.clone())
                    };
                    let table_name = |id: i64| {
                        snapshot.schemas.iter().find_map(|(sn, s)| {
                            s.tables
                                .iter()
                                .find(|(_, t)| t.id() == id)
                                .map(|(tn, _)| format!("{sn}.{tn}"))
                        })
                    };
                    let mut cols: [Vec<Option<String>>; 5] = Default::default();
                    for (key, value, scope, id) in rows {
                        let (scope_text, entry) = match (scope.as_deref(), id) {
                            (None, _) => ("GLOBAL", None),
                            (Some("schema"), Some(id)) => ("SCHEMA", schema_name(*id)),
                            (Some("table"), Some(id)) => ("TABLE", table_name(*id)),
                            (Some(other), _) => (other, None),
                        };
                        cols[0].push(Some(key.clone()));
                        cols[1].push(description(key).map(str::to_string));
                        cols[2].push(Some(value.clone()));
                        cols[3].push(Some(scope_text.to_string()));
                        cols[4].push(entry);
                    }
                    let columns = cols.into_iter().map(strings).collect();
                    Ok(RecordBatch::try_new(out, columns)?)
                })
            }),
        ))
    }
}

/// `ducklake_settings(lake)`: catalog_type, extension_version, data_path.
#[derive(Debug)]
struct Settings;

impl TableFunctionImpl for Settings {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let (lake, _, _) = lake_of(&args, "ducklake_settings")?;
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            field("catalog_type", DataType::Utf8),
            field("extension_version", DataType::Utf8),
            field("data_path", DataType::Utf8),
        ]));
        let out = Arc::clone(&schema);
        Ok(stateful_table(
            schema,
            Arc::new(move |_| {
                let (lake, out) = (Arc::clone(&lake), Arc::clone(&out));
                Box::pin(async move {
                    let catalog_type = match lake.store().backend().dialect() {
                        crate::store::Dialect::Sqlite => "sqlite",
                        crate::store::Dialect::Postgres => "postgres",
                    };
                    let columns = vec![
                        strings(vec![Some(catalog_type.to_string())]),
                        strings(vec![Some(format!("lakeq {}", env!("CARGO_PKG_VERSION")))]),
                        strings(vec![Some(lake.data_path().to_string())]),
                    ];
                    Ok(RecordBatch::try_new(out, columns)?)
                })
            }),
        ))
    }
}

/// Register the option and maintenance functions.
pub fn register(ctx: &SessionContext) {
    ctx.register_udtf("ducklake_set_option", Arc::new(SetOption));
    ctx.register_udtf("ducklake_options", Arc::new(Options));
    ctx.register_udtf("ducklake_settings", Arc::new(Settings));
}
