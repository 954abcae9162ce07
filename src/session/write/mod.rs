//! Writes through SQL: DDL (`CREATE SCHEMA/TABLE/VIEW`, CTAS, `DROP`, `ALTER`)
//! and DML (`INSERT`, `DELETE`, `UPDATE`) on DuckLake tables.
//!
//! DataFusion plans the statement; lakeq executes lake-targeted plans itself so
//! that each statement becomes exactly one snapshot (see [`crate::commit`]):
//! data files are written first, then one catalog transaction references them.
//! A failed statement removes the files it wrote and leaves the lake as it was.
//!
//! - `DELETE` finds the 0-based positions of matching rows per data file (a
//!   Parquet row-number column) and writes cumulative positional delete files;
//!   a file whose every row is deleted is ended instead. Matching inlined rows
//!   get their `end_snapshot` set.
//! - `UPDATE` is a delete plus an insert of the new row versions in the same
//!   snapshot (new row ids: lakeq does not yet write `_ducklake_internal_row_id`).
//!
//! The statement kinds live in their own files: `ddl` (schemas, tables, views,
//! macros, comments), `alter` (`ALTER TABLE`/`ALTER VIEW`, type widening and
//! nested evolution), `dml` (`INSERT`/`DELETE`/`UPDATE` dispatch, deletes),
//! `merge` (`MERGE INTO`), and `insert` (the write loop: data files or inlined
//! rows, partitioned, sorted, committed once).

mod alter;
mod ddl;
mod dml;
mod insert;
pub(crate) use insert::reads_tables;
mod merge;

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{ScalarValue, TableReference};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;
use object_store::ObjectStore;

use crate::catalog::{CatalogSnapshot, TableEntry};
use crate::commit::{ChangeSet, commit};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::provider::catalog::LakeCatalog;
use crate::spec::values::format_duckdb_text;
use crate::storage::locate;
use crate::write::discard;

/// A one-row `count` result, like DuckDB returns for DML.
pub fn count_batch(n: u64) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]));
    Ok(RecordBatch::try_new(
        schema,
        vec![Arc::new(UInt64Array::from(vec![n]))],
    )?)
}

/// Resolves lake-qualified names for one statement.
pub struct Writer<'a> {
    ctx: &'a SessionContext,
    lakes: &'a HashMap<String, Arc<LakeCatalog>>,
    /// `CREATE OR REPLACE VIEW/TABLE` also replaces a table/view of the same
    /// name (in the same snapshot). DuckDB refuses that, so plain SQL does too;
    /// model runs use it when a model's materialization changes.
    replace_other_kind: bool,
    /// `ctx` is a coordinator of workers: data files are written where the
    /// rows are computed (see [`crate::distributed::write`]).
    on_workers: bool,
}

/// A table reference resolved to a lake.
struct Target {
    catalog: Arc<LakeCatalog>,
    snapshot: Arc<CatalogSnapshot>,
    schema: String,
    name: String,
}

impl Target {
    fn lake(&self) -> &Arc<Lake> {
        self.catalog.lake()
    }
    fn qualified(&self) -> String {
        format!("{}.{}.{}", self.catalog.name(), self.schema, self.name)
    }
    fn table(&self) -> Result<&Arc<TableEntry>> {
        self.snapshot.table(&self.schema, &self.name)
    }
    fn is_view(&self) -> bool {
        self.snapshot
            .schemas
            .get(&self.schema)
            .is_some_and(|s| s.views.contains_key(&self.name))
    }
}

impl<'a> Writer<'a> {
    /// A writer for the lakes attached to `ctx`.
    pub fn new(ctx: &'a SessionContext, lakes: &'a HashMap<String, Arc<LakeCatalog>>) -> Self {
        Self {
            ctx,
            lakes,
            replace_other_kind: false,
            on_workers: false,
        }
    }

    /// Write data files on the workers of `ctx` (a coordinator's context).
    pub fn on_workers(mut self, yes: bool) -> Self {
        self.on_workers = yes;
        self
    }

    /// Whether `CREATE OR REPLACE VIEW/TABLE` replaces an object of the other kind.
    pub fn replacing_other_kind(mut self, yes: bool) -> Self {
        self.replace_other_kind = yes;
        self
    }

    fn resolve(&self, name: &TableReference) -> Option<Target> {
        let state = self.ctx.state();
        let opts = state.config().options();
        // DuckDB's `x.t`: table `t` in the default schema of catalog `x` when `x`
        // is an attached lake and not a schema of the current catalog.
        let name = match name {
            TableReference::Partial { schema, table }
                if self.lakes.contains_key(schema.as_ref())
                    && state
                        .catalog_list()
                        .catalog(&opts.catalog.default_catalog)
                        .is_none_or(|c| c.schema(schema).is_none()) =>
            {
                TableReference::full(schema.as_ref(), "main", table.as_ref())
            }
            other => other.clone(),
        };
        let r = name.resolve(&opts.catalog.default_catalog, &opts.catalog.default_schema);
        let catalog = self.lakes.get(r.catalog.as_ref())?;
        // `t@@rowid`: the table read with its virtual columns (a DML statement
        // naming `rowid`, see `crate::dialect::dml`); time travel is no target.
        let (table, options) = crate::provider::catalog::table_options(r.table.as_ref());
        if options.at.is_some() {
            return None;
        }
        Some(Target {
            snapshot: catalog.current(),
            catalog: Arc::clone(catalog),
            schema: r.schema.to_string(),
            name: table.to_string(),
        })
    }

    fn resolve_schema(&self, name: &str) -> Option<(Arc<LakeCatalog>, String)> {
        let state = self.ctx.state();
        let opts = state.config().options();
        let (catalog, schema) = match name.split_once('.') {
            Some((c, s)) => (c.to_string(), s.to_string()),
            None => (opts.catalog.default_catalog.clone(), name.to_string()),
        };
        let catalog = self.lakes.get(&catalog)?;
        Some((Arc::clone(catalog), schema.trim_matches('"').to_string()))
    }

    /// Execute `plan` if it writes to a lake; `Ok(None)` when it is not ours.
    pub async fn execute(&self, plan: &LogicalPlan, sql: &str) -> Result<Option<Vec<RecordBatch>>> {
        match plan {
            LogicalPlan::Ddl(ddl) => self.ddl(ddl, sql).await,
            LogicalPlan::Dml(dml) => self.dml(dml, sql).await,
            _ => Ok(None),
        }
    }

    /// Commit, removing the change set's files when the commit fails.
    async fn commit_or_clean(&self, lake: &Arc<Lake>, changes: &ChangeSet) -> Result<()> {
        match commit(lake, changes).await {
            Ok(_) => Ok(()),
            Err(e) => {
                discard(&changes.written_files()).await;
                Err(e)
            }
        }
    }

    fn object_store(&self, url: &str) -> Result<Arc<dyn ObjectStore>> {
        let loc = locate(url)?;
        Ok(self.ctx.runtime_env().object_store(&loc.store_url)?)
    }

    /// A constant expression's value as DuckDB text (for defaults).
    async fn constant(&self, expr_sql: &str, type_sql: &str) -> Result<Option<String>> {
        let batches = self
            .ctx
            .sql(&format!("SELECT CAST({expr_sql} AS {type_sql}) AS x"))
            .await
            .map_err(|e| Error::Unsupported(format!("default '{expr_sql}': {e}")))?
            .collect()
            .await?;
        let Some(b) = batches.first().filter(|b| b.num_rows() == 1) else {
            return Err(Error::Unsupported(format!(
                "default '{expr_sql}' is not a constant"
            )));
        };
        let v = ScalarValue::try_from_array(b.column(0), 0)?;
        format_duckdb_text(&v)
    }
}

fn with_table(e: Error, target: &Target) -> Error {
    match e {
        Error::DataFusion(inner) => {
            Error::Unsupported(format!("writing to '{}': {inner}", target.qualified()))
        }
        other => other,
    }
}

/// `"lake"."schema"."table"` of a write target, quoted for SQL.
fn quoted_name(target: &Target) -> String {
    [
        target.catalog.name(),
        target.schema.as_str(),
        target.name.as_str(),
    ]
    .iter()
    .map(|p| crate::store::quote_ident(p))
    .collect::<Vec<_>>()
    .join(".")
}
