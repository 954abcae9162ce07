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
use crate::ops::cleanup::{Age, before_now, cleanup_old_files, delete_orphaned_files};
use crate::ops::expire::{ExpireWhich, expire_snapshots, snapshots_to_expire};
use crate::ops::merge::{MergeLimits, MergeOutcome, merge_adjacent_files};
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

/// `ducklake_set_commit_message(lake, author, message, extra_info)`: the
/// author, message and extra information of the transaction's snapshot
/// (written at `COMMIT`; outside a transaction there is nothing to apply them
/// to, as in DuckDB). No rows.
#[derive(Debug)]
struct SetCommitMessage;

impl TableFunctionImpl for SetCommitMessage {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let (lake, _, lake_name) = lake_of(&args, "ducklake_set_commit_message")?;
        if lake.read_only() {
            return Err(Error::Unsupported(format!(
                "set_commit_message on lake '{lake_name}', attached read only"
            ))
            .into());
        }
        let info = crate::lake::CommitInfo {
            author: text_arg(args.session(), args.exprs(), 1, "the author")?,
            message: text_arg(args.session(), args.exprs(), 2, "the commit message")?,
            extra_info: text_arg(args.session(), args.exprs(), 3, "extra_info")?,
        };
        let schema: SchemaRef = Arc::new(Schema::new(vec![field("Success", DataType::Boolean)]));
        let out = Arc::clone(&schema);
        Ok(stateful_table(
            schema,
            Arc::new(move |_| {
                let (lake, info, out) = (Arc::clone(&lake), info.clone(), Arc::clone(&out));
                Box::pin(async move {
                    lake.set_commit_info(info);
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

/// A boolean argument (NULL or absent = false).
fn bool_arg(args: &TableFunctionArgs, i: usize, what: &str) -> DFResult<bool> {
    match args.exprs().get(i) {
        None => Ok(false),
        Some(e) => match constant(args.session(), e)? {
            ScalarValue::Boolean(b) => Ok(b.unwrap_or(false)),
            ScalarValue::Null => Ok(false),
            other => Err(DataFusionError::Plan(format!(
                "{what} must be true or false, not {other}"
            ))),
        },
    }
}

/// A timestamp argument (`older_than => now() - INTERVAL 1 DAY`), if given.
fn time_arg(args: &TableFunctionArgs, i: usize) -> DFResult<Option<chrono::DateTime<chrono::Utc>>> {
    let Some(e) = args.exprs().get(i) else {
        return Ok(None);
    };
    let value = constant(args.session(), e)?;
    if value.is_null() {
        return Ok(None);
    }
    let micros = value
        .cast_to(&DataType::Timestamp(
            datafusion::arrow::datatypes::TimeUnit::Microsecond,
            Some("UTC".into()),
        ))
        .ok()
        .and_then(|v| match v {
            ScalarValue::TimestampMicrosecond(m, _) => m,
            _ => None,
        })
        .ok_or_else(|| {
            DataFusionError::Plan(format!("older_than must be a timestamp, not {value}"))
        })?;
    Ok(chrono::DateTime::from_timestamp_micros(micros))
}

/// `ducklake_expire_snapshots(lake, older_than, versions, dry_run)`: the expired
/// snapshots, as `snapshots()` shows them.
#[derive(Debug)]
struct ExpireSnapshots;

impl TableFunctionImpl for ExpireSnapshots {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let (lake, _, _) = lake_of(&args, "ducklake_expire_snapshots")?;
        let older_than = time_arg(&args, 1)?;
        let versions = match args.exprs().get(2) {
            None => None,
            Some(e) => match constant(args.session(), e)? {
                v if v.is_null() => None,
                ScalarValue::List(list) => {
                    let values = list.value(0);
                    let mut ids = Vec::new();
                    for i in 0..values.len() {
                        let v =
                            ScalarValue::try_from_array(&values, i)?.cast_to(&DataType::Int64)?;
                        if let ScalarValue::Int64(Some(id)) = v {
                            ids.push(id);
                        }
                    }
                    Some(ids)
                }
                other => {
                    return Err(DataFusionError::Plan(format!(
                        "versions must be a list of snapshot ids, not {other}"
                    )));
                }
            },
        };
        let dry_run = bool_arg(&args, 3, "dry_run")?;
        if older_than.is_some() && versions.is_some() {
            return Err(DataFusionError::Plan(
                "ducklake_expire_snapshots: give either 'versions' or 'older_than', not both"
                    .into(),
            ));
        }
        let schema = super::functions::snapshots_schema();
        let out = Arc::clone(&schema);
        Ok(stateful_table(
            schema,
            Arc::new(move |_| {
                let (lake, out, versions) = (Arc::clone(&lake), Arc::clone(&out), versions.clone());
                Box::pin(async move {
                    let which = match (older_than, versions) {
                        (Some(t), _) => Some(ExpireWhich::OlderThan(t)),
                        (None, Some(v)) => Some(ExpireWhich::Versions(v)),
                        (None, None) => {
                            // The lake's `expire_older_than`, else nothing (as DuckDB).
                            let metadata = lake.store().metadata().await?;
                            match metadata.rows.iter().find(|(k, v, s, _)| {
                                k == "expire_older_than" && s.is_none() && !v.trim().is_empty()
                            }) {
                                Some((_, v, _, _)) => Some(ExpireWhich::OlderThan(before_now(v)?)),
                                None => None,
                            }
                        }
                    };
                    let chosen = match &which {
                        Some(which) => snapshots_to_expire(&lake, which).await?,
                        None => Vec::new(),
                    };
                    let ids = chosen.iter().map(|s| s.snapshot_id).collect();
                    let batch =
                        super::functions::snapshots_batch(Arc::clone(&lake), out, Some(ids))
                            .await?;
                    if !dry_run {
                        expire_snapshots(&lake, &chosen).await?;
                    }
                    Ok(batch)
                })
            }),
        ))
    }
}

/// `ducklake_cleanup_old_files` / `ducklake_delete_orphaned_files(lake,
/// cleanup_all, older_than, dry_run)`: the removed files' paths.
#[derive(Debug)]
struct Cleanup {
    orphans: bool,
}

impl TableFunctionImpl for Cleanup {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let name = if self.orphans {
            "ducklake_delete_orphaned_files"
        } else {
            "ducklake_cleanup_old_files"
        };
        let (lake, _, _) = lake_of(&args, name)?;
        let cleanup_all = bool_arg(&args, 1, "cleanup_all")?;
        let older_than = time_arg(&args, 2)?;
        let dry_run = bool_arg(&args, 3, "dry_run")?;
        let age = match (cleanup_all, older_than) {
            (true, Some(_)) => {
                return Err(DataFusionError::Plan(format!(
                    "{name}: give either cleanup_all or older_than, not both"
                )));
            }
            (true, None) => Age::All,
            (false, Some(t)) => Age::OlderThan(t),
            (false, None) => Age::Default,
        };
        let orphans = self.orphans;
        let schema: SchemaRef = Arc::new(Schema::new(vec![field("path", DataType::Utf8)]));
        let out = Arc::clone(&schema);
        Ok(stateful_table(
            schema,
            Arc::new(move |_| {
                let (lake, out) = (Arc::clone(&lake), Arc::clone(&out));
                Box::pin(async move {
                    let paths = if orphans {
                        delete_orphaned_files(&lake, age, dry_run).await?
                    } else {
                        cleanup_old_files(&lake, age, dry_run).await?
                    };
                    let column = strings(paths.into_iter().map(Some).collect());
                    Ok(RecordBatch::try_new(out, vec![column])?)
                })
            }),
        ))
    }
}

/// A non-negative integer argument, if given.
fn count_arg(args: &TableFunctionArgs, i: usize, what: &str) -> DFResult<Option<u64>> {
    let Some(e) = args.exprs().get(i) else {
        return Ok(None);
    };
    match constant(args.session(), e)? {
        v if v.is_null() => Ok(None),
        v => match v.cast_to(&DataType::UInt64) {
            Ok(ScalarValue::UInt64(n)) => Ok(n),
            _ => Err(DataFusionError::Plan(format!(
                "{what} must be a non-negative number, not {v}"
            ))),
        },
    }
}

/// The tables a maintenance call names: `table` (in `schema`, default `main`)
/// or, without one, every table of `schema` or of the lake. A named table that
/// does not exist is an error.
fn tables_in_scope(
    snapshot: &crate::catalog::CatalogSnapshot,
    lake_name: &str,
    schema: Option<&str>,
    table: Option<&str>,
) -> DFResult<Vec<Arc<crate::catalog::TableEntry>>> {
    if let Some(s) = schema
        && !snapshot.schemas.contains_key(s)
    {
        return Err(Error::NotFound {
            kind: "schema",
            name: format!("{lake_name}.{s}"),
            hint: String::new(),
        }
        .into());
    }
    // A table named without its schema is in the default schema, as in DuckDB.
    let schema = match (schema, table) {
        (None, Some(_)) => Some("main"),
        (s, _) => s,
    };
    let tables: Vec<_> = snapshot
        .schemas
        .iter()
        .filter(|(name, _)| schema.is_none_or(|s| s == name.as_str()))
        .flat_map(|(_, s)| s.tables.iter())
        .filter(|(name, _)| table.is_none_or(|t| t == name.as_str()))
        .map(|(_, entry)| Arc::clone(entry))
        .collect();
    match table {
        Some(t) if tables.is_empty() => Err(Error::NotFound {
            kind: "table",
            name: format!("{lake_name}.{}.{t}", schema.unwrap_or("main")),
            hint: String::new(),
        }
        .into()),
        _ => Ok(tables),
    }
}

/// The tables a compaction call works on: all of `tables` when it named a
/// table, else those whose `auto_compact` option is not false (as DuckDB).
async fn compactable(
    lake: &crate::lake::Lake,
    tables: Vec<Arc<crate::catalog::TableEntry>>,
    whole_lake: bool,
) -> crate::error::Result<Vec<Arc<crate::catalog::TableEntry>>> {
    if !whole_lake {
        return Ok(tables);
    }
    let metadata = lake.store().metadata().await?;
    Ok(tables
        .into_iter()
        .filter(|t| {
            metadata
                .option("auto_compact", t.row.schema_id, t.id())
                .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"))
        })
        .collect())
}

/// `ducklake_merge_adjacent_files(lake, table, schema, max_compacted_files,
/// min_file_size, max_file_size)`: per table, the files merged and written.
#[derive(Debug)]
struct MergeAdjacentFiles;

impl TableFunctionImpl for MergeAdjacentFiles {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let (lake, snapshot, lake_name) = lake_of(&args, "ducklake_merge_adjacent_files")?;
        let table = text_arg(args.session(), args.exprs(), 1, "the table name")?;
        let schema_name = text_arg(args.session(), args.exprs(), 2, "schema")?;
        let limits = MergeLimits {
            max_compacted_files: count_arg(&args, 3, "max_compacted_files")?
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            min_file_size: count_arg(&args, 4, "min_file_size")?,
            max_file_size: count_arg(&args, 5, "max_file_size")?,
        };
        if limits.max_compacted_files == Some(0) {
            return Err(DataFusionError::Plan(
                "ducklake_merge_adjacent_files: the max_compacted_files option must be greater \
                 than zero"
                    .into(),
            ));
        }
        if limits.max_file_size == Some(0) {
            return Err(DataFusionError::Plan(
                "ducklake_merge_adjacent_files: the max_file_size option must be greater than zero"
                    .into(),
            ));
        }
        if let (Some(min), Some(max)) = (limits.min_file_size, limits.max_file_size)
            && min >= max
        {
            return Err(DataFusionError::Plan(format!(
                "ducklake_merge_adjacent_files: the min_file_size ({min}) must be less than \
                 max_file_size ({max})"
            )));
        }
        let whole_lake = table.is_none();
        let tables = tables_in_scope(
            &snapshot,
            &lake_name,
            schema_name.as_deref(),
            table.as_deref(),
        )?;
        let schema = outcome_schema();
        let out = Arc::clone(&schema);
        Ok(stateful_table(
            schema,
            Arc::new(move |state| {
                let (lake, snapshot, tables, out) = (
                    Arc::clone(&lake),
                    Arc::clone(&snapshot),
                    tables.clone(),
                    Arc::clone(&out),
                );
                let lake_name = lake_name.clone();
                Box::pin(async move {
                    let tables = compactable(&lake, tables, whole_lake).await?;
                    // DuckDB writes a merged file in the table's sort-key order.
                    let sort = planned_sort_keys(&state, &lake, &lake_name, &tables).await?;
                    let outcomes =
                        merge_adjacent_files(&state, &lake, &snapshot, &tables, limits, &sort)
                            .await?;
                    outcome_batch(out, &outcomes)
                })
            }),
        ))
    }
}

/// The result columns of `ducklake_merge_adjacent_files` and
/// `ducklake_rewrite_data_files`.
fn outcome_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("schema_name", DataType::Utf8),
        field("table_name", DataType::Utf8),
        field("files_processed", DataType::Int64),
        field("files_created", DataType::Int64),
    ]))
}

/// The rows of a maintenance call's result: per table, files processed and created.
fn outcome_batch(out: SchemaRef, outcomes: &[MergeOutcome]) -> crate::error::Result<RecordBatch> {
    let text = |f: &dyn Fn(&MergeOutcome) -> String| {
        strings(outcomes.iter().map(|o| Some(f(o))).collect())
    };
    let ints = |f: &dyn Fn(&MergeOutcome) -> i64| -> ArrayRef {
        Arc::new(datafusion::arrow::array::Int64Array::from(
            outcomes.iter().map(f).collect::<Vec<_>>(),
        ))
    };
    let columns = vec![
        text(&|o| o.schema_name.clone()),
        text(&|o| o.table_name.clone()),
        ints(&|o| o.files_processed),
        ints(&|o| o.files_created),
    ];
    Ok(RecordBatch::try_new(out, columns)?)
}

/// `ducklake_rewrite_data_files(lake, table, schema, delete_threshold)`: per table,
/// the files with deleted rows rewritten and the files written (see
/// [`crate::ops::rewrite`]).
#[derive(Debug)]
struct RewriteDataFiles;

impl TableFunctionImpl for RewriteDataFiles {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let (lake, snapshot, lake_name) = lake_of(&args, "ducklake_rewrite_data_files")?;
        let table = text_arg(args.session(), args.exprs(), 1, "the table name")?;
        let schema_name = text_arg(args.session(), args.exprs(), 2, "schema")?;
        let threshold = match args.exprs().get(3) {
            None => None,
            Some(e) => match constant(args.session(), e)? {
                v if v.is_null() => None,
                v => match v.cast_to(&DataType::Float64) {
                    Ok(ScalarValue::Float64(Some(t))) if (0.0..=1.0).contains(&t) => Some(t),
                    _ => {
                        return Err(DataFusionError::Plan(format!(
                            "ducklake_rewrite_data_files: The delete_threshold option must be \
                             between 0 and 1, not {v}"
                        )));
                    }
                },
            },
        };
        let tables = tables_in_scope(
            &snapshot,
            &lake_name,
            schema_name.as_deref(),
            table.as_deref(),
        )?;
        let schema = outcome_schema();
        let out = Arc::clone(&schema);
        Ok(stateful_table(
            schema,
            Arc::new(move |state| {
                let (lake, snapshot, tables, out) = (
                    Arc::clone(&lake),
                    Arc::clone(&snapshot),
                    tables.clone(),
                    Arc::clone(&out),
                );
                Box::pin(async move {
                    let outcomes = crate::ops::rewrite::rewrite_data_files(
                        &state, &lake, &snapshot, &tables, threshold,
                    )
                    .await?;
                    outcome_batch(out, &outcomes)
                })
            }),
        ))
    }
}

/// `ducklake_flush_inlined_data(lake, schema_name, table_name)`: the inlined
/// rows and inlined deletions of the tables in scope moved to Parquet, as one
/// snapshot (see [`crate::ops::flush`]); one row per table that had any.
#[derive(Debug)]
struct FlushInlinedData;

impl TableFunctionImpl for FlushInlinedData {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let (lake, snapshot, lake_name) = lake_of(&args, "ducklake_flush_inlined_data")?;
        let schema_name = text_arg(args.session(), args.exprs(), 1, "schema_name")?;
        let table = text_arg(args.session(), args.exprs(), 2, "table_name")?;
        let whole_lake = table.is_none();
        let tables = tables_in_scope(
            &snapshot,
            &lake_name,
            schema_name.as_deref(),
            table.as_deref(),
        )?;
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            field("schema_name", DataType::Utf8),
            field("table_name", DataType::Utf8),
            field("rows_flushed", DataType::Int64),
        ]));
        let out = Arc::clone(&schema);
        Ok(stateful_table(
            schema,
            Arc::new(move |state| {
                let (lake, tables, out) = (Arc::clone(&lake), tables.clone(), Arc::clone(&out));
                let lake_name = lake_name.clone();
                Box::pin(async move {
                    let tables = compactable(&lake, tables, whole_lake).await?;
                    // DuckDB sorts flushed rows by the table's sort keys, and fails on a
                    // key whose function (a dropped macro) no longer exists.
                    let sort = planned_sort_keys(&state, &lake, &lake_name, &tables).await?;
                    let outcomes =
                        crate::ops::flush::flush_inlined_data(&lake, &tables, &sort).await?;
                    let column = |f: fn(&crate::ops::flush::FlushOutcome) -> String| {
                        Arc::new(StringArray::from(
                            outcomes.iter().map(f).collect::<Vec<_>>(),
                        )) as ArrayRef
                    };
                    Ok(RecordBatch::try_new(
                        out,
                        vec![
                            column(|o| o.schema_name.clone()),
                            column(|o| o.table_name.clone()),
                            Arc::new(datafusion::arrow::array::Int64Array::from(
                                outcomes.iter().map(|o| o.rows_flushed).collect::<Vec<_>>(),
                            )),
                        ],
                    )?)
                })
            }),
        ))
    }
}

/// The `SET SORTED BY` keys of `tables` at the lake's latest snapshot, planned
/// over columns named by column id ([`crate::ops::flush::sort_column`]); a
/// table with a key that names something else than its top-level columns has
/// none. A key calling a function or macro that does not exist is an error, as
/// in DuckDB.
async fn planned_sort_keys(
    state: &datafusion::execution::context::SessionState,
    lake: &crate::lake::Lake,
    lake_name: &str,
    tables: &[Arc<crate::catalog::TableEntry>],
) -> crate::error::Result<crate::ops::flush::SortKeys> {
    let latest = lake.store().latest_snapshot().await?.snapshot_id;
    let mut sort = crate::ops::flush::SortKeys::new();
    for table in tables {
        let mut planned = Some(Vec::new());
        for key in lake.store().sort_keys(table.id(), latest).await? {
            let name = [lake_name, &table.schema_name, &table.row.table_name]
                .iter()
                .map(|p| crate::store::quote_ident(p))
                .collect::<Vec<_>>()
                .join(".");
            let expr = crate::dialect::plan::sort_key(state, &name, &key.expression)
                .await?
                .and_then(|e| by_column_id(e, table));
            match (expr, planned.as_mut()) {
                (Some(e), Some(keys)) => {
                    keys.push(e.sort(!key.descending, key.nulls_first));
                }
                _ => planned = None,
            }
        }
        if let Some(keys) = planned.filter(|k| !k.is_empty()) {
            sort.insert(table.id(), keys);
        }
    }
    Ok(sort)
}

/// A sort key over `table`'s current column names with each column named by
/// its column id ([`crate::ops::flush::sort_column`]); `None` when it names
/// something else than a top-level column.
fn by_column_id(
    expr: datafusion::logical_expr::Expr,
    table: &crate::catalog::TableEntry,
) -> Option<datafusion::logical_expr::Expr> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    let mut unknown = false;
    let renamed = expr
        .transform(|e| match e {
            datafusion::logical_expr::Expr::Column(c) => {
                // Exact name first, then any case (DuckDB's sort keys match
                // columns case-insensitively).
                let column = table
                    .columns
                    .iter()
                    .find(|n| n.row.column_name == c.name)
                    .or_else(|| {
                        table
                            .columns
                            .iter()
                            .find(|n| n.row.column_name.eq_ignore_ascii_case(&c.name))
                    });
                match column {
                    Some(n) => Ok(Transformed::yes(datafusion::logical_expr::Expr::Column(
                        datafusion::common::Column::new_unqualified(
                            crate::ops::flush::sort_column(n.row.column_id),
                        ),
                    ))),
                    None => {
                        unknown = true;
                        Ok(Transformed::no(datafusion::logical_expr::Expr::Column(c)))
                    }
                }
            }
            other => Ok(Transformed::no(other)),
        })
        .ok()?
        .data;
    (!unknown).then_some(renamed)
}

/// `ducklake_add_data_files(lake, table, path_or_list, schema, allow_missing,
/// ignore_extra_columns, hive_partitioning)`: register existing Parquet files
/// in a table (see [`crate::ops::add_files`]). Returns no rows, as DuckDB.
#[derive(Debug)]
struct AddDataFiles;

impl TableFunctionImpl for AddDataFiles {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let (lake, snapshot, lake_name) = lake_of(&args, "ducklake_add_data_files")?;
        let table =
            text_arg(args.session(), args.exprs(), 1, "the table name")?.ok_or_else(|| {
                DataFusionError::Plan(
                    "ducklake_add_data_files: the table name cannot be NULL".into(),
                )
            })?;
        let patterns: Vec<String> = match args.exprs().get(2) {
            None => Vec::new(),
            Some(e) => match constant(args.session(), e)? {
                ScalarValue::Utf8(Some(s))
                | ScalarValue::LargeUtf8(Some(s))
                | ScalarValue::Utf8View(Some(s)) => vec![s],
                ScalarValue::List(list)
                    if !datafusion::arrow::array::Array::is_null(list.as_ref(), 0) =>
                {
                    let values = list.value(0);
                    let mut out = Vec::with_capacity(values.len());
                    for i in 0..values.len() {
                        match ScalarValue::try_from_array(&values, i)? {
                            ScalarValue::Utf8(Some(s))
                            | ScalarValue::LargeUtf8(Some(s))
                            | ScalarValue::Utf8View(Some(s)) => out.push(s),
                            other => {
                                return Err(DataFusionError::Plan(format!(
                                    "ducklake_add_data_files: the file list must hold strings, \
                                     not {other}"
                                )));
                            }
                        }
                    }
                    out
                }
                v if v.is_null() => Vec::new(),
                other => {
                    return Err(DataFusionError::Plan(format!(
                        "ducklake_add_data_files: the file list must be a string or a list of \
                         strings, not {other}"
                    )));
                }
            },
        };
        if patterns.is_empty() {
            return Err(DataFusionError::Plan(
                "ducklake_add_data_files: the file list cannot be NULL or empty".into(),
            ));
        }
        let schema_name = text_arg(args.session(), args.exprs(), 3, "schema")?;
        let options = crate::ops::add_files::AddOptions {
            allow_missing: bool_arg(&args, 4, "allow_missing")?,
            ignore_extra_columns: bool_arg(&args, 5, "ignore_extra_columns")?,
            hive_partitioning: match args.exprs().get(6) {
                None => true,
                Some(e) => match constant(args.session(), e)? {
                    ScalarValue::Boolean(Some(b)) => b,
                    v if v.is_null() => true,
                    other => {
                        return Err(DataFusionError::Plan(format!(
                            "hive_partitioning must be true or false, not {other}"
                        )));
                    }
                },
            },
        };
        let schema_name = schema_name.unwrap_or_else(|| "main".to_string());
        let entry = match snapshot.table(&schema_name, &table) {
            Ok(entry) => Arc::clone(entry),
            Err(e) => {
                // DuckDB's names are case-insensitive.
                let found = snapshot
                    .schemas
                    .iter()
                    .filter(|(s, _)| s.eq_ignore_ascii_case(&schema_name))
                    .flat_map(|(_, s)| s.tables.iter())
                    .find(|(t, _)| t.eq_ignore_ascii_case(&table))
                    .map(|(_, t)| Arc::clone(t));
                match found {
                    Some(entry) => entry,
                    None => {
                        let elsewhere: Vec<String> = snapshot
                            .schemas
                            .iter()
                            .filter(|(_, s)| {
                                s.tables.keys().any(|t| t.eq_ignore_ascii_case(&table))
                            })
                            .map(|(s, _)| format!("{s}.{table}"))
                            .collect();
                        return Err(match elsewhere.as_slice() {
                            [] => e.into(),
                            [one, ..] => Error::NotFound {
                                kind: "table",
                                name: format!("{lake_name}.{schema_name}.{table}"),
                                hint: format!("; did you mean \"{one}\"? (pass schema => '...')"),
                            }
                            .into(),
                        });
                    }
                }
            }
        };
        let out_schema: SchemaRef = Arc::new(Schema::new(vec![field("filename", DataType::Utf8)]));
        let out = Arc::clone(&out_schema);
        Ok(stateful_table(
            out_schema,
            Arc::new(move |state| {
                let (lake, snapshot, entry, patterns, out) = (
                    Arc::clone(&lake),
                    Arc::clone(&snapshot),
                    Arc::clone(&entry),
                    patterns.clone(),
                    Arc::clone(&out),
                );
                Box::pin(async move {
                    crate::ops::add_files::add_data_files(
                        &state, &lake, &snapshot, &entry, &patterns, options,
                    )
                    .await?;
                    // DuckDB returns no rows.
                    Ok(RecordBatch::new_empty(out))
                })
            }),
        ))
    }
}

/// Register the option and maintenance functions.
pub fn register(ctx: &SessionContext) {
    ctx.register_udtf(
        "ducklake_merge_adjacent_files",
        Arc::new(MergeAdjacentFiles),
    );
    ctx.register_udtf("ducklake_expire_snapshots", Arc::new(ExpireSnapshots));
    ctx.register_udtf("ducklake_rewrite_data_files", Arc::new(RewriteDataFiles));
    ctx.register_udtf("ducklake_flush_inlined_data", Arc::new(FlushInlinedData));
    ctx.register_udtf(
        "ducklake_cleanup_old_files",
        Arc::new(Cleanup { orphans: false }),
    );
    ctx.register_udtf(
        "ducklake_delete_orphaned_files",
        Arc::new(Cleanup { orphans: true }),
    );
    ctx.register_udtf("ducklake_set_option", Arc::new(SetOption));
    ctx.register_udtf("ducklake_set_commit_message", Arc::new(SetCommitMessage));
    ctx.register_udtf("ducklake_add_data_files", Arc::new(AddDataFiles));
    ctx.register_udtf("ducklake_options", Arc::new(Options));
    ctx.register_udtf("ducklake_settings", Arc::new(Settings));
}
