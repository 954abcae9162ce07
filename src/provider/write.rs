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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Column, ScalarValue, TableReference};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{DdlStatement, DmlStatement, Expr, LogicalPlan, WriteOp};
use futures::StreamExt;
use object_store::ObjectStore;

use super::catalog::LakeCatalog;
use super::partition::{PartitionSpec, PartitionedWriter};
use super::table::LakeTable;
use crate::catalog::{CatalogSnapshot, TableEntry};
use crate::commit::{
    AddedFile, Alter, ChangeSet, NewColumn, NewDeleteFile, NewTable, NewView, TableRef, commit,
};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::spec::paths::{default_dir_name, resolve};
use crate::spec::types::DuckLakeType;
use crate::spec::values::format_duckdb_text;
use crate::storage::locate;
use crate::write::{WriteOptions, WrittenFile, conform, discard};

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
        }
    }

    /// Let `CREATE OR REPLACE VIEW/TABLE` replace an object of the other kind.
    pub fn replacing_other_kind(mut self) -> Self {
        self.replace_other_kind = true;
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
        let (table, options) = super::catalog::table_options(r.table.as_ref());
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

    /// `CREATE MACRO` / `DROP MACRO` in a lake (one snapshot); `Ok(None)` when the
    /// name is not in an attached lake.
    pub async fn macro_statement(
        &self,
        statement: crate::dialect::macros::MacroStatement,
    ) -> Result<Option<Vec<RecordBatch>>> {
        use crate::dialect::macros::MacroStatement;
        let reference = |parts: &[String]| match parts {
            [n] => Some(TableReference::bare(n.as_str())),
            [s, n] => Some(TableReference::partial(s.as_str(), n.as_str())),
            [c, s, n] => Some(TableReference::full(c.as_str(), s.as_str(), n.as_str())),
            _ => None,
        };
        let (name, table) = match &statement {
            MacroStatement::Create { name, table, .. }
            | MacroStatement::Drop { name, table, .. } => (name, *table),
        };
        let Some(target) = reference(name).and_then(|r| self.resolve(&r)) else {
            return Ok(None);
        };
        let schema = target.snapshot.schema(&target.schema)?;
        let kind = if table { "table" } else { "scalar" };
        // The live macro of this kind and name (a scalar and a table macro of one
        // name are two macros in DuckDB).
        let existing = schema
            .macros
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&target.name))
            .flat_map(|(_, m)| m.impls.iter())
            .find(|i| i.kind == kind)
            .map(|i| i.macro_id);
        let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
        let described = format!(
            "{} macro '{}'",
            if table { "table" } else { "scalar" },
            target.qualified()
        );
        match statement {
            MacroStatement::Drop { if_exists, .. } => {
                let Some(id) = existing else {
                    if if_exists {
                        return Ok(Some(Vec::new()));
                    }
                    return Err(Error::not_found("macro", described));
                };
                changes.dropped_macros.push((id, table));
            }
            MacroStatement::Create {
                or_replace,
                if_not_exists,
                implementations,
                ..
            } => {
                if let Some(id) = existing {
                    if if_not_exists {
                        return Ok(Some(Vec::new()));
                    }
                    if !or_replace {
                        return Err(Error::AlreadyExists {
                            kind: "macro",
                            name: described,
                        });
                    }
                    changes.dropped_macros.push((id, table));
                }
                changes.new_macros.push(crate::commit::NewMacro {
                    schema_id: schema.row.schema_id,
                    schema_name: target.schema.clone(),
                    name: target.name.clone(),
                    table,
                    impls: implementations
                        .into_iter()
                        .map(|i| crate::commit::NewMacroImpl {
                            sql: i.body,
                            parameters: i
                                .parameters
                                .into_iter()
                                .map(|p| crate::commit::NewMacroParameter {
                                    name: p.name,
                                    type_name: p.type_name,
                                    default: p.default,
                                })
                                .collect(),
                        })
                        .collect(),
                });
            }
        }
        commit(target.lake(), &changes).await?;
        Ok(Some(Vec::new()))
    }

    /// Execute `plan` if it writes to a lake; `Ok(None)` when it is not ours.
    pub async fn execute(&self, plan: &LogicalPlan, sql: &str) -> Result<Option<Vec<RecordBatch>>> {
        match plan {
            LogicalPlan::Ddl(ddl) => self.ddl(ddl, sql).await,
            LogicalPlan::Dml(dml) => self.dml(dml, sql).await,
            _ => Ok(None),
        }
    }

    async fn ddl(&self, ddl: &DdlStatement, sql: &str) -> Result<Option<Vec<RecordBatch>>> {
        match ddl {
            DdlStatement::CreateCatalogSchema(c) => {
                let Some((catalog, schema)) = self.resolve_schema(&c.schema_name) else {
                    return Ok(None);
                };
                let snap = catalog.current();
                if snap.schemas.contains_key(&schema) {
                    if c.if_not_exists {
                        return Ok(Some(Vec::new()));
                    }
                    return Err(Error::AlreadyExists {
                        kind: "schema",
                        name: format!("{}.{schema}", catalog.name()),
                    });
                }
                let mut changes = ChangeSet::new(snap.snapshot.snapshot_id);
                changes.new_schemas.push(schema);
                commit(catalog.lake(), &changes).await?;
                Ok(Some(Vec::new()))
            }
            DdlStatement::DropCatalogSchema(d) => {
                let Some((catalog, schema)) = self.resolve_schema(&d.name.to_string()) else {
                    return Ok(None);
                };
                let snap = catalog.current();
                let Some(entry) = snap.schemas.get(&schema) else {
                    if d.if_exists {
                        return Ok(Some(Vec::new()));
                    }
                    return Err(Error::not_found(
                        "schema",
                        format!("{}.{schema}", catalog.name()),
                    ));
                };
                let mut changes = ChangeSet::new(snap.snapshot.snapshot_id);
                if !entry.tables.is_empty() || !entry.views.is_empty() || !entry.macros.is_empty() {
                    if !d.cascade {
                        return Err(Error::Unsupported(format!(
                            "schema '{}.{schema}' is not empty ({} tables, {} views, {} macros); use DROP SCHEMA ... CASCADE",
                            catalog.name(),
                            entry.tables.len(),
                            entry.views.len(),
                            entry.macros.len()
                        )));
                    }
                    let mut macros: Vec<(crate::spec::CatalogId, bool)> = entry
                        .macros
                        .values()
                        .flat_map(|m| m.impls.iter().map(|i| (i.macro_id, i.kind == "table")))
                        .collect();
                    macros.sort_unstable();
                    macros.dedup();
                    changes.dropped_macros.extend(macros);
                    changes
                        .dropped_tables
                        .extend(entry.tables.values().map(|t| t.id()));
                    changes
                        .dropped_views
                        .extend(entry.views.values().map(|v| v.view_id));
                }
                changes.dropped_schemas.push(entry.row.schema_id);
                commit(catalog.lake(), &changes).await?;
                Ok(Some(Vec::new()))
            }
            DdlStatement::DropTable(d) => {
                let Some(target) = self.resolve(&d.name) else {
                    return Ok(None);
                };
                let Ok(table) = target.table() else {
                    if target.is_view() {
                        return Err(Error::Unsupported(format!(
                            "'{}' is a view, not a table (DROP VIEW drops it)",
                            target.qualified()
                        )));
                    }
                    if d.if_exists {
                        return Ok(Some(Vec::new()));
                    }
                    return Err(Error::not_found("table", target.qualified()));
                };
                let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
                changes.dropped_tables.push(table.id());
                commit(target.lake(), &changes).await?;
                Ok(Some(Vec::new()))
            }
            DdlStatement::DropView(d) => {
                let Some(target) = self.resolve(&d.name) else {
                    return Ok(None);
                };
                let view = target
                    .snapshot
                    .schemas
                    .get(&target.schema)
                    .and_then(|s| s.views.get(&target.name));
                let Some(view) = view else {
                    if target.table().is_ok() {
                        return Err(Error::Unsupported(format!(
                            "'{}' is a table, not a view (DROP TABLE drops it)",
                            target.qualified()
                        )));
                    }
                    if d.if_exists {
                        return Ok(Some(Vec::new()));
                    }
                    return Err(Error::not_found("view", target.qualified()));
                };
                let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
                changes.dropped_views.push(view.view_id);
                commit(target.lake(), &changes).await?;
                Ok(Some(Vec::new()))
            }
            DdlStatement::CreateView(v) => {
                let Some(target) = self.resolve(&v.name) else {
                    return Ok(None);
                };
                self.create_view(&target, v.or_replace, sql).await.map(Some)
            }
            DdlStatement::CreateMemoryTable(c) => {
                let Some(target) = self.resolve(&c.name) else {
                    return Ok(None);
                };
                if !c.constraints.is_empty() {
                    // DuckLake has no constraints besides NOT NULL; refusing is safer than ignoring.
                    return Err(Error::Unsupported(format!(
                        "constraints (PRIMARY KEY, UNIQUE) on DuckLake table '{}'",
                        target.qualified()
                    )));
                }
                self.create_table(
                    &target,
                    c.input.as_ref(),
                    c.or_replace,
                    c.if_not_exists,
                    &c.column_defaults,
                )
                .await
                .map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn create_view(
        &self,
        target: &Target,
        or_replace: bool,
        sql: &str,
    ) -> Result<Vec<RecordBatch>> {
        let schema = target.snapshot.schema(&target.schema)?;
        let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
        if let Some(existing) = schema.views.get(&target.name) {
            if !or_replace {
                return Err(Error::AlreadyExists {
                    kind: "view",
                    name: target.qualified(),
                });
            }
            changes.dropped_views.push(existing.view_id);
        }
        if let Some(table) = schema.tables.get(&target.name) {
            if !(or_replace && self.replace_other_kind) {
                return Err(Error::AlreadyExists {
                    kind: "table",
                    name: target.qualified(),
                });
            }
            changes.dropped_tables.push(table.id());
        }
        let (query, aliases) = super::sql::view_query(sql, target.catalog.name(), &target.schema)?;
        changes.new_views.push(NewView {
            schema_id: schema.row.schema_id,
            schema_name: target.schema.clone(),
            name: target.name.clone(),
            sql: query,
            column_aliases: aliases,
        });
        commit(target.lake(), &changes).await?;
        Ok(Vec::new())
    }

    async fn create_table(
        &self,
        target: &Target,
        input: &LogicalPlan,
        or_replace: bool,
        if_not_exists: bool,
        defaults: &[(String, Expr)],
    ) -> Result<Vec<RecordBatch>> {
        let schema = target.snapshot.schema(&target.schema)?;
        let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
        if let Some(existing) = schema.tables.get(&target.name) {
            if if_not_exists {
                return Ok(Vec::new());
            }
            if !or_replace {
                return Err(Error::AlreadyExists {
                    kind: "table",
                    name: target.qualified(),
                });
            }
            changes.dropped_tables.push(existing.id());
        }
        if let Some(view) = schema.views.get(&target.name) {
            if !(or_replace && self.replace_other_kind) {
                return Err(Error::AlreadyExists {
                    kind: "view",
                    name: target.qualified(),
                });
            }
            changes.dropped_views.push(view.view_id);
        }
        let arrow_schema: Schema = input.schema().as_arrow().clone();
        let fields: Vec<Field> = arrow_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let is_ctas = !matches!(input, LogicalPlan::EmptyRelation(_));
        for field in &fields {
            check_column_name(target.lake(), field.name())?;
        }
        let mut next_id = 1;
        let mut columns = NewColumn::from_arrow_fields(&fields, &mut next_id)
            .map_err(|e| Error::Unsupported(format!("table '{}': {e}", target.qualified())))?;
        if is_ctas {
            // Like DuckDB, CREATE TABLE AS makes nullable columns.
            for c in &mut columns {
                c.nulls_allowed = true;
            }
        }
        for (name, expr) in defaults {
            let Some(col) = columns.iter_mut().find(|c| &c.name == name) else {
                continue;
            };
            col.default_value = Some(literal_text(expr).ok_or_else(|| {
                Error::Unsupported(format!(
                    "default '{expr}' of column '{name}': only constant defaults are supported"
                ))
            })?);
        }
        let uuid = uuid::Uuid::now_v7().to_string();
        let table = NewTable {
            schema_id: schema.row.schema_id,
            schema_name: target.schema.clone(),
            name: target.name.clone(),
            path: default_dir_name(&target.name, &uuid),
            uuid,
            columns,
        };
        let table_dir = resolve(&schema.dir, Some(&table.path), true);
        let table_schema = table_arrow_schema(&table.columns)?;
        let new_table_columns = table.columns.clone();
        changes.new_tables.push(table);
        let mut rows = 0;
        if is_ctas {
            // DuckDB inlines the rows of a small CREATE TABLE AS too.
            let new_columns = crate::catalog::build_column_tree(&crate::commit::new_column_rows(
                0,
                0,
                None,
                &new_table_columns,
            ))?;
            let dialect = target.lake().store().backend().dialect();
            let limit = if crate::commit::inline::can_inline(dialect, &new_columns) {
                crate::commit::inline::configured_limit(target.lake(), schema.row.schema_id, -1)
                    .await?
            } else {
                0
            };
            let layout = || async {
                Ok::<_, Error>(FileLayout {
                    partition: None,
                    options: write_options(target.lake(), schema.row.schema_id, None).await?,
                })
            };
            let written = self
                .write_plan(
                    &target.qualified(),
                    &table_dir,
                    &table_schema,
                    &[],
                    layout().await?,
                    input.clone(),
                    limit,
                )
                .await?;
            let (files, n) = match written {
                Written::Files(files, n) => (files, n),
                Written::Held(batches, n) => {
                    let inlined = inlined_insert(
                        target.lake(),
                        TableRef::New(0),
                        &new_columns,
                        &table_schema,
                        &target.qualified(),
                        &table_schema,
                        &batches,
                        false,
                    )?;
                    match inlined {
                        Some(inlined) => {
                            changes.inlined_inserts.push(inlined);
                            (Vec::new(), n)
                        }
                        None => (
                            self.write_held(&table_dir, &table_schema, layout().await?, batches)
                                .await?,
                            n,
                        ),
                    }
                }
            };
            rows = n;
            changes
                .added_files
                .extend(files.into_iter().map(|(file, partition)| AddedFile {
                    table: TableRef::New(0),
                    file,
                    partition,
                    mapping: None,
                }));
        }
        self.commit_or_clean(target.lake(), &changes).await?;
        Ok(if is_ctas {
            vec![count_batch(rows)?]
        } else {
            Vec::new()
        })
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

    /// Execute `plan` and stream its rows into Parquet files under `table_dir`
    /// (split and tuned by `layout`), refusing NULLs in the `not_null` columns.
    /// When the plan yields at most `inline_limit` rows, nothing is written and
    /// the rows come back instead (for data inlining).
    #[allow(clippy::too_many_arguments)]
    async fn write_plan(
        &self,
        table_name: &str,
        table_dir: &str,
        table_schema: &SchemaRef,
        not_null: &[usize],
        layout: FileLayout,
        plan: LogicalPlan,
        inline_limit: u64,
    ) -> Result<Written> {
        let FileLayout { partition, options } = layout;
        let store = self.object_store(table_dir)?;
        let df = self.ctx.execute_logical_plan(plan).await?;
        let mut stream = in_input_order(df).await?;
        let mut writer = PartitionedWriter::new(
            store,
            table_dir,
            Arc::clone(table_schema),
            partition,
            options,
        );
        let mut rows = 0u64;
        // Rows held back while they may still be inlined.
        let mut held: Option<Vec<RecordBatch>> = (inline_limit > 0).then(Vec::new);
        while let Some(batch) = stream.next().await {
            let checked = batch
                .map_err(Error::from)
                .and_then(|b| conform(&b, table_schema))
                .and_then(|b| {
                    for &i in not_null {
                        if b.column(i).null_count() > 0 {
                            return Err(Error::Constraint(format!(
                                "NOT NULL constraint failed: {table_name}.{}",
                                table_schema.field(i).name()
                            )));
                        }
                    }
                    Ok(b)
                });
            let batch = match checked {
                Ok(b) => b,
                Err(e) => {
                    writer.abort().await?;
                    return Err(e);
                }
            };
            rows += batch.num_rows() as u64;
            let to_write = match held.as_mut() {
                Some(h) => {
                    h.push(batch);
                    if rows <= inline_limit {
                        continue;
                    }
                    held.take().unwrap_or_default()
                }
                None => vec![batch],
            };
            for batch in to_write {
                if let Err(e) = writer.write(&batch).await {
                    writer.abort().await?;
                    return Err(e);
                }
            }
        }
        if let Some(batches) = held {
            writer.abort().await?;
            return Ok(Written::Held(batches, rows));
        }
        Ok(Written::Files(writer.finish().await?, rows))
    }

    /// Write rows held back for inlining to Parquet after all (a value has no
    /// inlined form).
    async fn write_held(
        &self,
        table_dir: &str,
        table_schema: &SchemaRef,
        layout: FileLayout,
        batches: Vec<RecordBatch>,
    ) -> Result<Vec<PartitionedFile>> {
        let FileLayout { partition, options } = layout;
        let mut writer = PartitionedWriter::new(
            self.object_store(table_dir)?,
            table_dir,
            Arc::clone(table_schema),
            partition,
            options,
        );
        for batch in &batches {
            if let Err(e) = writer.write(batch).await {
                writer.abort().await?;
                return Err(e);
            }
        }
        writer.finish().await
    }

    async fn dml(&self, dml: &DmlStatement, sql: &str) -> Result<Option<Vec<RecordBatch>>> {
        let Some(target) = self.resolve(&dml.table_name) else {
            return Ok(None);
        };
        let table = Arc::clone(target.table()?);
        match &dml.op {
            WriteOp::Insert(op) => {
                if !matches!(op, datafusion::logical_expr::dml::InsertOp::Append) {
                    return Err(Error::Unsupported(format!(
                        "INSERT {op} into DuckLake table '{}'",
                        target.qualified()
                    )));
                }
                let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
                let rows = self
                    .append(&target, &table, dml.input.as_ref(), &mut changes)
                    .await?;
                if !changes.is_empty() {
                    self.commit_or_clean(target.lake(), &changes).await?;
                }
                Ok(Some(vec![count_batch(rows)?]))
            }
            // TRUNCATE is a DELETE of every row (one snapshot, as in DuckDB).
            WriteOp::Delete | WriteOp::Truncate => {
                let predicate = match dml.op {
                    WriteOp::Truncate => None,
                    _ => filter_predicate(&dml.input),
                };
                let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
                let n = self
                    .plan_deletes(&target, &table, predicate, &mut changes)
                    .await?;
                if !changes.is_empty() {
                    self.commit_or_clean(target.lake(), &changes).await?;
                }
                Ok(Some(vec![count_batch(n)?]))
            }
            WriteOp::Update => {
                let predicate = filter_predicate(&dml.input);
                let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
                // Updated rows keep their row ids (in `_ducklake_internal_row_id`, as
                // DuckDB writes them), so the change feed shows an update.
                let rows = match updated_with_row_ids(&target, &table, dml.input.as_ref())? {
                    Some(input) => {
                        self.append_rows(&target, &table, &input, true, &mut changes)
                            .await?
                    }
                    None => {
                        self.append(&target, &table, dml.input.as_ref(), &mut changes)
                            .await?
                    }
                };
                let deleted = self
                    .plan_deletes(&target, &table, predicate, &mut changes)
                    .await?;
                if deleted != rows {
                    return Err(Error::Corrupt(format!(
                        "UPDATE of '{}' matched {deleted} rows to delete but produced {rows} new rows",
                        target.qualified()
                    )));
                }
                if !changes.is_empty() {
                    self.commit_or_clean(target.lake(), &changes).await?;
                }
                Ok(Some(vec![count_batch(rows)?]))
            }
            WriteOp::MergeInto(op) => {
                let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
                let joined = crate::dialect::dml::is_joined_dml(sql);
                let n = self
                    .merge(
                        &target,
                        &table,
                        &dml.table_name,
                        dml.input.as_ref(),
                        op,
                        joined,
                        &mut changes,
                    )
                    .await?;
                if !changes.is_empty() {
                    self.commit_or_clean(target.lake(), &changes).await?;
                }
                Ok(Some(vec![count_batch(n)?]))
            }
            other => Err(Error::Unsupported(format!(
                "{other} on DuckLake table '{}'",
                target.qualified()
            ))),
        }
    }

    /// `MERGE INTO target USING source ON cond WHEN ...`: the target (with each
    /// row's file, position and row id) joined with the source; every row gets
    /// the index of the first WHEN clause it satisfies; then updated and deleted
    /// rows are deleted by position, updated rows are written again with their
    /// row ids (as an UPDATE does) and inserted rows appended, all in one change
    /// set. Returns the rows affected. A target row that more than one source
    /// row matches (for an UPDATE or DELETE) is an error, unless `once`: the
    /// MERGE is DuckDB's `UPDATE ... FROM` or `DELETE ... USING` (see
    /// [`crate::dialect::dml`]), which changes such a row once; lakeq then
    /// refuses only an update whose source rows give the row different values
    /// (DuckDB keeps whichever its join produced first).
    #[allow(clippy::too_many_arguments)]
    async fn merge(
        &self,
        target: &Target,
        table: &Arc<TableEntry>,
        target_ref: &TableReference,
        source: &LogicalPlan,
        op: &datafusion::logical_expr::dml::MergeIntoOp,
        once: bool,
        changes: &mut ChangeSet,
    ) -> Result<u64> {
        use datafusion::common::JoinType;
        use datafusion::datasource::provider_as_source;
        use datafusion::logical_expr::dml::{MergeIntoAction, MergeIntoClauseKind};
        use datafusion::logical_expr::{LogicalPlanBuilder, cast, col, lit, when};
        const IN_TARGET: &str = "__lakeq_merge_target";
        const IN_SOURCE: &str = "__lakeq_merge_source";
        const ACTION: &str = "__lakeq_merge_action";
        let s = target.snapshot.snapshot.snapshot_id;
        let scan =
            LakeTable::new(Arc::clone(target.lake()), Arc::clone(table), s).with_row_origin();
        let has_rowid = LakeTable::virtual_columns(table).contains(&super::table::ROWID_COLUMN);
        let target_col = |name: &str| col(Column::new(Some(target_ref.clone()), name));
        let with_marker = |b: LogicalPlanBuilder, marker: &str| -> Result<LogicalPlanBuilder> {
            let mut exprs: Vec<Expr> = b.schema().columns().into_iter().map(Expr::Column).collect();
            exprs.push(lit(true).alias(marker));
            Ok(b.project(exprs)?)
        };
        let tgt = with_marker(
            LogicalPlanBuilder::scan(target_ref.clone(), provider_as_source(Arc::new(scan)), None)?,
            IN_TARGET,
        )?
        .build()?;
        let src = with_marker(LogicalPlanBuilder::from(source.clone()), IN_SOURCE)?.build()?;
        if crate::provider::catalog::table_options(target_ref.table())
            .1
            .rowid
        {
            self.refuse_transaction_local_ids(target, table, &tgt, target_ref)
                .await?;
        }
        let unmatched_source = op.clauses.iter().any(|c| {
            matches!(
                c.kind,
                MergeIntoClauseKind::NotMatched | MergeIntoClauseKind::NotMatchedByTarget
            )
        });
        let unmatched_target = op
            .clauses
            .iter()
            .any(|c| matches!(c.kind, MergeIntoClauseKind::NotMatchedBySource));
        let join = match (unmatched_target, unmatched_source) {
            (true, true) => JoinType::Full,
            (true, false) => JoinType::Left,
            (false, true) => JoinType::Right,
            (false, false) => JoinType::Inner,
        };
        let in_target = col(IN_TARGET).is_not_null();
        let in_source = col(IN_SOURCE).is_not_null();
        let mut action: Option<datafusion::logical_expr::conditional_expressions::CaseBuilder> =
            None;
        for (i, clause) in op.clauses.iter().enumerate() {
            let mut condition = match clause.kind {
                MergeIntoClauseKind::Matched => in_target.clone().and(in_source.clone()),
                MergeIntoClauseKind::NotMatched | MergeIntoClauseKind::NotMatchedByTarget => {
                    in_source.clone().and(col(IN_TARGET).is_null())
                }
                MergeIntoClauseKind::NotMatchedBySource => {
                    in_target.clone().and(col(IN_SOURCE).is_null())
                }
            };
            if let Some(p) = &clause.predicate {
                condition = condition.and(p.clone());
            }
            let index = lit(i64::try_from(i).unwrap_or(i64::MAX));
            action = Some(match action {
                None => when(condition, index),
                Some(mut b) => b.when(condition, index),
            });
        }
        let Some(mut action) = action else {
            return Err(Error::Unsupported("MERGE without WHEN clauses".into()));
        };
        let joined = LogicalPlanBuilder::from(tgt).join_on(src, join, vec![op.on.clone()])?;
        let mut exprs: Vec<Expr> = joined
            .schema()
            .columns()
            .into_iter()
            .map(Expr::Column)
            .collect();
        exprs.push(action.otherwise(lit(-1i64))?.alias(ACTION));
        let classified = joined.project(exprs)?.build()?;
        let indices = |pick: &dyn Fn(&MergeIntoAction) -> bool| -> Vec<Expr> {
            op.clauses
                .iter()
                .enumerate()
                .filter(|(_, c)| pick(&c.action))
                .map(|(i, _)| lit(i64::try_from(i).unwrap_or(i64::MAX)))
                .collect()
        };
        let updates = indices(&|a| matches!(a, MergeIntoAction::Update(_)));
        let deletes = indices(&|a| matches!(a, MergeIntoAction::Delete));
        let inserts = indices(&|a| matches!(a, MergeIntoAction::Insert { .. }));
        let chosen = |wanted: &[Expr]| col(ACTION).in_list(wanted.to_vec(), false);

        // Rows leaving their place: updated and deleted ones, by file and position.
        let mut by_file: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        let mut removed = 0u64;
        let mut deleted_only = 0u64;
        let mut updated_rows = 0u64;
        let mut delete_matches = 0u64;
        let leaving: Vec<Expr> = updates.iter().chain(&deletes).cloned().collect();
        if !leaving.is_empty() {
            let plan = LogicalPlanBuilder::from(classified.clone())
                .filter(chosen(&leaving))?
                .project(vec![
                    target_col(super::table::ROW_FILE_COLUMN),
                    target_col(super::table::ROW_POSITION_COLUMN),
                    chosen(&deletes),
                ])?
                .build()?;
            let batches = self.ctx.execute_logical_plan(plan).await?.collect().await?;
            for b in &batches {
                let files = b.column(0).as_primitive::<Int64Type>();
                let rows = b.column(1).as_primitive::<Int64Type>();
                let is_delete = b.column(2).as_boolean();
                for i in 0..b.num_rows() {
                    if files.is_null(i) || rows.is_null(i) {
                        continue;
                    }
                    if !by_file
                        .entry(files.value(i))
                        .or_default()
                        .insert(rows.value(i))
                    {
                        if once {
                            // DuckDB counts every source row of a DELETE ... USING.
                            if is_delete.value(i) {
                                delete_matches += 1;
                            }
                            continue;
                        }
                        return Err(Error::Unsupported(format!(
                            "MERGE INTO '{}': a target row is matched by more than one source \
                             row; lakeq refuses to pick one of them",
                            target.qualified()
                        )));
                    }
                    removed += 1;
                    if is_delete.value(i) {
                        deleted_only += 1;
                        delete_matches += 1;
                    } else {
                        updated_rows += 1;
                    }
                }
            }
        }

        // Updated rows, written again with their row ids.
        let columns: Vec<(String, DataType)> = table
            .arrow_schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        let mut updated = 0u64;
        if !updates.is_empty() {
            let mut exprs = Vec::with_capacity(columns.len() + 1);
            for (name, dt) in &columns {
                let mut value = target_col(name);
                for (i, clause) in op.clauses.iter().enumerate() {
                    if let MergeIntoAction::Update(assignments) = &clause.action
                        && let Some((_, v)) = assignments.iter().find(|(c, _)| c == name)
                    {
                        value = when(
                            col(ACTION).eq(lit(i64::try_from(i).unwrap_or(i64::MAX))),
                            v.clone(),
                        )
                        .otherwise(value)?;
                    }
                }
                exprs.push(cast(value, dt.clone()).alias(name));
            }
            if has_rowid {
                exprs
                    .push(target_col(super::table::ROWID_COLUMN).alias(super::table::ROWID_COLUMN));
            }
            let mut plan = LogicalPlanBuilder::from(classified.clone())
                .filter(chosen(&updates))?
                .project(exprs.clone())?
                .build()?;
            if once {
                plan = self
                    .updated_once(target, &classified, &chosen(&updates), exprs, updated_rows)
                    .await?;
            }
            updated = self
                .append_rows(target, table, &plan, has_rowid, changes)
                .await?;
        }
        if updated + deleted_only != removed {
            return Err(Error::Corrupt(format!(
                "MERGE INTO '{}' removed {removed} rows but rewrote {updated} and deleted {deleted_only}",
                target.qualified()
            )));
        }
        self.delete_positions(target, table, by_file, changes)
            .await?;

        // Inserted rows: the clause's values, defaults for columns it leaves out.
        let mut inserted = 0u64;
        if !inserts.is_empty() {
            let defaults = super::defaults::column_defaults(table);
            let mut exprs = Vec::with_capacity(columns.len());
            for (position, (name, dt)) in columns.iter().enumerate() {
                let default = defaults
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| lit(ScalarValue::Null));
                let mut value = default.clone();
                for (i, clause) in op.clauses.iter().enumerate() {
                    let MergeIntoAction::Insert {
                        columns: listed,
                        values,
                    } = &clause.action
                    else {
                        continue;
                    };
                    let given = if listed.is_empty() {
                        values.get(position).cloned()
                    } else {
                        listed
                            .iter()
                            .position(|c| c == name)
                            .and_then(|k| values.get(k).cloned())
                    };
                    value = when(
                        col(ACTION).eq(lit(i64::try_from(i).unwrap_or(i64::MAX))),
                        given.unwrap_or_else(|| default.clone()),
                    )
                    .otherwise(value)?;
                }
                exprs.push(cast(value, dt.clone()).alias(name));
            }
            let plan = LogicalPlanBuilder::from(classified)
                .filter(chosen(&inserts))?
                .project(exprs)?
                .build()?;
            inserted = self.append(target, table, &plan, changes).await?;
        }
        Ok(updated + delete_matches + inserted)
    }

    /// The rows an `UPDATE ... FROM` writes: one per target row. `exprs` are
    /// the new row's columns over `classified` (the target joined with the
    /// source), `rows` the number of distinct target rows to update. Several
    /// source rows that give a target row the same values update it once, as
    /// in DuckDB; if they give it different values, DuckDB keeps the first its
    /// join produced, and lakeq refuses the statement rather than guess which.
    async fn updated_once(
        &self,
        target: &Target,
        classified: &LogicalPlan,
        chosen: &Expr,
        exprs: Vec<Expr>,
        rows: u64,
    ) -> Result<LogicalPlan> {
        use datafusion::functions_aggregate::count::count_all;
        use datafusion::logical_expr::{LogicalPlanBuilder, col};
        const FILE: &str = "__lakeq_update_file";
        const POSITION: &str = "__lakeq_update_position";
        let names: Vec<String> = exprs.iter().map(|e| e.schema_name().to_string()).collect();
        let mut keyed = exprs;
        keyed.push(col(Column::new_unqualified(super::table::ROW_FILE_COLUMN)).alias(FILE));
        keyed.push(col(Column::new_unqualified(super::table::ROW_POSITION_COLUMN)).alias(POSITION));
        let distinct = LogicalPlanBuilder::from(classified.clone())
            .filter(chosen.clone())?
            .project(keyed)?
            .distinct()?
            .build()?;
        let counted = LogicalPlanBuilder::from(distinct.clone())
            .aggregate(Vec::<Expr>::new(), vec![count_all()])?
            .build()?;
        let batches = self
            .ctx
            .execute_logical_plan(counted)
            .await?
            .collect()
            .await?;
        let versions = batches
            .first()
            .filter(|b| b.num_rows() == 1)
            .map(|b| b.column(0).as_primitive::<Int64Type>().value(0))
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| Error::Corrupt("UPDATE ... FROM: no row count".into()))?;
        if versions != rows {
            return Err(Error::Unsupported(format!(
                "UPDATE '{}' ... FROM: a row of the table is matched by several source rows \
                 that give it different values; DuckDB keeps the first its join produces, \
                 which lakeq cannot reproduce: make the source give one value per row \
                 (SELECT DISTINCT, or aggregate it)",
                target.qualified()
            )));
        }
        let columns: Vec<Expr> = names
            .iter()
            .map(|n| col(Column::new_unqualified(n.as_str())))
            .collect();
        Ok(LogicalPlanBuilder::from(distinct)
            .project(columns)?
            .build()?)
    }

    /// `UPDATE`/`DELETE ... WHERE rowid ...` inside a transaction that wrote
    /// rows of the table: DuckDB numbers those rows from 10^18 and gives them no
    /// `snapshot_id` until `COMMIT`, while the writer reads the rows' real ids;
    /// refused rather than matched against other ids than DuckDB's.
    async fn refuse_transaction_local_ids(
        &self,
        target: &Target,
        table: &Arc<TableEntry>,
        scan: &LogicalPlan,
        target_ref: &TableReference,
    ) -> Result<()> {
        use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
        let lake = target.lake();
        let (Some(base), Some(first)) = (
            lake.transaction_base(),
            lake.transaction_first_row_id(table.id()),
        ) else {
            return Ok(());
        };
        let column = |name: &str| col(Column::new(Some(target_ref.clone()), name));
        let mut local = column(super::table::ROWID_COLUMN).gt_eq(lit(first));
        if LakeTable::virtual_columns(table).contains(&super::table::SNAPSHOT_COLUMN) {
            local = local.or(column(super::table::SNAPSHOT_COLUMN).gt(lit(base)));
        }
        let plan = LogicalPlanBuilder::from(scan.clone())
            .filter(local)?
            .limit(0, Some(1))?
            .build()?;
        let batches = self.ctx.execute_logical_plan(plan).await?.collect().await?;
        if batches.iter().any(|b| b.num_rows() > 0) {
            return Err(Error::Unsupported(format!(
                "UPDATE/DELETE of '{}' naming rowid or snapshot_id inside a transaction that \
                 wrote rows of the table: DuckDB gives those rows transaction-local ids until \
                 COMMIT; COMMIT first",
                target.qualified()
            )));
        }
        Ok(())
    }

    /// dbt's `delete+insert`: delete the rows of `table` whose `unique_key`
    /// appears in `input`, then insert every row of `input`, in one snapshot.
    /// Returns (rows deleted, rows inserted).
    pub async fn delete_insert(
        &self,
        table: &TableReference,
        input: &LogicalPlan,
        unique_key: &[String],
    ) -> Result<(u64, u64)> {
        let target = self
            .resolve(table)
            .ok_or_else(|| Error::not_found("lake table", table.to_string()))?;
        let entry = Arc::clone(target.table()?);
        let key = |qualified: bool| -> Result<Expr> {
            let mut parts = Vec::new();
            for k in unique_key {
                if entry.arrow_schema.field_with_name(k).is_err() {
                    return Err(Error::not_found(
                        "column",
                        format!("{}.{k}", target.qualified()),
                    ));
                }
                let c = if qualified {
                    Expr::Column(Column::from_name(k))
                } else {
                    Expr::Column(Column::new_unqualified(k))
                };
                parts.push(cast_expr(c, DataType::Utf8));
            }
            Ok(match unique_key {
                [] => {
                    return Err(Error::Unsupported(
                        "delete+insert needs a unique_key".into(),
                    ));
                }
                [only] => Expr::Column(Column::new_unqualified(only)),
                _ => datafusion::functions::expr_fn::concat_ws(
                    datafusion::prelude::lit("\u{1f}"),
                    parts,
                ),
            })
        };
        let keys = datafusion::logical_expr::LogicalPlanBuilder::from(input.clone())
            .project(vec![key(true)?])?
            .build()?;
        let predicate = datafusion::logical_expr::expr_fn::in_subquery(key(false)?, Arc::new(keys));
        let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
        let inserted = self.append(&target, &entry, input, &mut changes).await?;
        let deleted = match self
            .plan_deletes(&target, &entry, Some(predicate), &mut changes)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                discard(&changes.written_files()).await;
                return Err(e);
            }
        };
        if !changes.is_empty() {
            self.commit_or_clean(target.lake(), &changes).await?;
        }
        Ok((deleted, inserted))
    }

    /// Write the rows of `input` as new data files of `table` into `changes`.
    async fn append(
        &self,
        target: &Target,
        table: &TableEntry,
        input: &LogicalPlan,
        changes: &mut ChangeSet,
    ) -> Result<u64> {
        self.append_rows(target, table, input, false, changes).await
    }

    /// [`Self::append`]; with `row_ids`, `input` ends with each row's existing
    /// row id, written as `_ducklake_internal_row_id`.
    async fn append_rows(
        &self,
        target: &Target,
        table: &TableEntry,
        input: &LogicalPlan,
        row_ids: bool,
        changes: &mut ChangeSet,
    ) -> Result<u64> {
        let schema = if row_ids {
            let mut fields: Vec<_> = table.file_schema.fields().iter().cloned().collect();
            fields.push(Arc::new(
                Field::new(crate::spec::ROW_ID_COLUMN, DataType::Int64, true).with_metadata(
                    std::collections::HashMap::from([(
                        crate::catalog::FIELD_ID_KEY.to_string(),
                        crate::spec::ROW_ID_FIELD_ID.to_string(),
                    )]),
                ),
            ));
            Arc::new(Schema::new(fields))
        } else {
            Arc::clone(&table.file_schema)
        };
        let input = self.sorted_for_insert(target, table, input).await?;
        let layout = || async {
            Ok::<_, Error>(FileLayout {
                partition: PartitionSpec::of(table)?,
                options: write_options(target.lake(), table.row.schema_id, Some(table.id()))
                    .await?,
            })
        };
        let written = self
            .write_plan(
                &target.qualified(),
                &table.dir,
                &schema,
                &not_null_columns(table),
                layout().await?,
                input,
                inline_limit(target.lake(), table).await?,
            )
            .await
            .map_err(|e| with_table(e, target))?;
        let (files, rows) = match written {
            Written::Files(files, rows) => (files, rows),
            // No rows: no change, and no snapshot (as in DuckDB).
            Written::Held(_, 0) => return Ok(0),
            Written::Held(batches, rows) => {
                let inlined = inlined_insert(
                    target.lake(),
                    TableRef::Existing(table.id()),
                    &table.columns,
                    &table.file_schema,
                    &table.qualified_name(),
                    &schema,
                    &batches,
                    row_ids,
                )?;
                if let Some(inlined) = inlined {
                    changes.inlined_inserts.push(inlined);
                    return Ok(rows);
                }
                let files = self
                    .write_held(&table.dir, &schema, layout().await?, batches)
                    .await
                    .map_err(|e| with_table(e, target))?;
                (files, rows)
            }
        };
        changes
            .added_files
            .extend(files.into_iter().map(|(file, partition)| AddedFile {
                table: TableRef::Existing(table.id()),
                file,
                partition,
                mapping: None,
            }));
        Ok(rows)
    }

    /// `input` sorted by the table's `SET SORTED BY` keys, as DuckDB sorts the
    /// files it writes (unless the `sort_on_insert` option is false). Keys lakeq
    /// cannot evaluate (a DuckDB macro) leave the rows in their order: the sort
    /// order is a layout hint, never part of a query's answer.
    async fn sorted_for_insert(
        &self,
        target: &Target,
        table: &TableEntry,
        input: &LogicalPlan,
    ) -> Result<LogicalPlan> {
        let store = target.lake().store();
        let keys = store
            .sort_keys(table.id(), target.snapshot.snapshot.snapshot_id)
            .await?;
        if keys.is_empty() {
            return Ok(input.clone());
        }
        let metadata = store.metadata().await?;
        if metadata
            .option("sort_on_insert", table.row.schema_id, table.id())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"))
        {
            return Ok(input.clone());
        }
        let mut exprs = Vec::with_capacity(keys.len());
        let qualified = quoted_name(target);
        for key in &keys {
            match crate::dialect::plan::sort_key(&self.ctx.state(), &qualified, &key.expression)
                .await?
            {
                Some(e) => exprs.push(e.sort(!key.descending, key.nulls_first)),
                None => return Ok(input.clone()),
            }
        }
        Ok(
            datafusion::logical_expr::LogicalPlanBuilder::from(input.clone())
                .sort(exprs)?
                .build()?,
        )
    }

    /// Find the rows matching `predicate` and record their deletion in `changes`.
    async fn plan_deletes(
        &self,
        target: &Target,
        table: &Arc<TableEntry>,
        predicate: Option<Expr>,
        changes: &mut ChangeSet,
    ) -> Result<u64> {
        let s = target.snapshot.snapshot.snapshot_id;
        let positions_table = Arc::new(
            LakeTable::new(Arc::clone(target.lake()), Arc::clone(table), s).with_positions(),
        );
        let mut df = self.ctx.read_table(positions_table)?;
        if let Some(p) = predicate {
            df = df.filter(unqualify(p)?)?;
        }
        let df = df.select_columns(&[
            super::table::FILE_ID_COLUMN,
            super::table::ROW_POSITION_COLUMN,
        ])?;
        let batches = df.collect().await?;
        let mut by_file: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        let mut total = 0u64;
        for b in &batches {
            let files = b.column(0).as_primitive::<Int64Type>();
            let rows = b.column(1).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                if files.is_null(i) || rows.is_null(i) {
                    continue;
                }
                by_file
                    .entry(files.value(i))
                    .or_default()
                    .insert(rows.value(i));
                total += 1;
            }
        }
        self.delete_positions(target, table, by_file, changes)
            .await?;
        Ok(total)
    }

    /// Record the deletion of rows by (data file id, position) in `changes`;
    /// file id [`super::table::INLINED_FILE_ID`] holds inlined rows by row id.
    async fn delete_positions(
        &self,
        target: &Target,
        table: &Arc<TableEntry>,
        mut by_file: BTreeMap<i64, BTreeSet<i64>>,
        changes: &mut ChangeSet,
    ) -> Result<()> {
        let s = target.snapshot.snapshot.snapshot_id;
        if by_file.is_empty() {
            return Ok(());
        }
        // Inlined rows (file id -1): end them in every inlined table of the table.
        if let Some(row_ids) = by_file.remove(&super::table::INLINED_FILE_ID) {
            let ids: Vec<i64> = row_ids.into_iter().collect();
            for it in target.lake().store().inlined_tables(table.id()).await? {
                changes
                    .inlined_row_deletes
                    .push((table.id(), it.table_name, ids.clone()));
            }
        }
        if by_file.is_empty() {
            return Ok(());
        }
        let files = target.lake().store().data_files(table.id(), s).await?;
        let files: HashMap<i64, _> = files.into_iter().map(|f| (f.data_file_id, f)).collect();
        let data_path = target.lake().data_path().to_string();
        let mut inlined_deleted: HashMap<i64, usize> = HashMap::new();
        for (file, _) in target
            .lake()
            .store()
            .inlined_deletions(table.id(), s)
            .await?
        {
            *inlined_deleted.entry(file).or_default() += 1;
        }
        let limit = configured_inline_limit(target.lake(), table).await?;
        for (file_id, positions) in by_file {
            let file = files.get(&file_id).ok_or_else(|| {
                Error::Corrupt(format!(
                    "data file {file_id} of '{}' vanished",
                    target.qualified()
                ))
            })?;
            let data_url = resolve(&table.dir, Some(&file.path), file.path_is_relative);
            let store = self.object_store(&data_url)?;
            let mut previous: Vec<(i64, i64)> = Vec::new();
            let mut replaces = None;
            if let Some(d) = &file.delete_file {
                let url = resolve(&table.dir, Some(&d.path), d.path_is_relative);
                let begin = d.begin_snapshot;
                previous = super::deletes::delete_file_entries(&store, &url, begin).await?;
                let relative = url.strip_prefix(&data_path).unwrap_or(&url).to_string();
                replaces = Some((d.delete_file_id, relative, begin));
            }
            let already: usize = previous.len();
            let inlined = inlined_deleted.get(&file_id).copied().unwrap_or(0);
            if already + inlined + positions.len()
                >= usize::try_from(file.record_count).unwrap_or(0)
            {
                changes.ended_files.push((table.id(), file_id));
                continue;
            }
            // A few deleted rows of a file are recorded in the catalog (deletion
            // inlining), as DuckDB does, rather than in a new delete file.
            if (positions.len() as u64) <= limit {
                changes.inlined_file_deletes.push((
                    table.id(),
                    file_id,
                    positions.into_iter().collect(),
                ));
                continue;
            }
            changes.delete_files.push(NewDeleteFile {
                table_id: table.id(),
                data_file_id: file_id,
                data_file_url: data_url,
                table_dir: table.dir.clone(),
                new_positions: positions.into_iter().collect(),
                previous,
                replaces,
                flushed: false,
            });
        }
        Ok(())
    }

    /// The Arrow type DataFusion gives a SQL type name.
    async fn sql_type(&self, type_sql: &str) -> Result<DataType> {
        // Through the DuckDB dialect, so DuckDB's type names (STRUCT(k INT), ...) work.
        let (plan, _) = crate::dialect::plan::plan_sql(
            &self.ctx.state(),
            &format!("SELECT CAST(NULL AS {type_sql}) AS x"),
            &Default::default(),
        )
        .await
        .map_err(|e| Error::Unsupported(format!("type '{type_sql}': {e}")))?;
        Ok(plan.schema().field(0).data_type().clone())
    }

    /// `ALTER VIEW name RENAME TO to`, one snapshot; the view keeps its id.
    async fn rename_view(&self, view: &str, to: &str, if_exists: bool) -> Result<Vec<RecordBatch>> {
        let name = TableReference::from(view);
        let target = self.resolve(&name).ok_or_else(|| {
            Error::Unsupported(format!(
                "ALTER VIEW on '{view}', which is not in a DuckLake"
            ))
        })?;
        let schema = target.snapshot.schema(&target.schema)?;
        let Some(row) = schema.views.get(&target.name) else {
            if if_exists {
                return Ok(Vec::new());
            }
            if schema.tables.contains_key(&target.name) {
                return Err(Error::Unsupported(format!(
                    "'{}' is a table, not a view (use ALTER TABLE ... RENAME TO)",
                    target.qualified()
                )));
            }
            return Err(Error::not_found("view", target.qualified()));
        };
        if schema.tables.contains_key(to) || schema.views.contains_key(to) {
            return Err(Error::AlreadyExists {
                kind: "view",
                name: format!("{}.{}.{to}", target.catalog.name(), target.schema),
            });
        }
        let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
        changes.renamed_views.push(crate::commit::RenamedView {
            view_id: row.view_id,
            schema_name: target.schema.clone(),
            new_name: to.to_string(),
        });
        self.commit_or_clean(target.lake(), &changes).await?;
        Ok(Vec::new())
    }

    /// `COMMENT ON TABLE | VIEW | COLUMN ... IS ...`: one snapshot.
    pub async fn comment(&self, c: super::sql::CommentStatement) -> Result<Vec<RecordBatch>> {
        use super::sql::CommentOn;
        let (object, column) = match c.on {
            CommentOn::Column => match c.name.split_last() {
                Some((column, table)) if !table.is_empty() => {
                    (table.to_vec(), Some(column.clone()))
                }
                _ => {
                    return Err(Error::Unsupported(
                        "COMMENT ON COLUMN needs table.column".into(),
                    ));
                }
            },
            _ => (c.name.clone(), None),
        };
        let quoted: Vec<String> = object.iter().map(|p| quoted_path(&[p])).collect();
        let name = TableReference::parse_str(&quoted.join("."));
        let target = self.resolve(&name).ok_or_else(|| {
            Error::Unsupported(format!(
                "COMMENT ON '{}', which is not in a DuckLake",
                object.join(".")
            ))
        })?;
        let schema = target.snapshot.schema(&target.schema)?;
        let comment_target = match (c.on, column) {
            (CommentOn::View, _) => {
                let view = schema
                    .views
                    .get(&target.name)
                    .ok_or_else(|| Error::not_found("view", target.qualified()))?;
                crate::commit::CommentTarget::View(view.view_id)
            }
            (_, None) => crate::commit::CommentTarget::Table(target.table()?.id()),
            (_, Some(column)) => {
                let table = target.table()?;
                let col = table
                    .columns
                    .iter()
                    .find(|n| n.row.column_name.eq_ignore_ascii_case(&column))
                    .ok_or_else(|| {
                        Error::not_found("column", format!("{}.{column}", target.qualified()))
                    })?;
                crate::commit::CommentTarget::Column(table.id(), col.row.column_id)
            }
        };
        let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
        changes.comments.push(crate::commit::Comment {
            target: comment_target,
            value: c.value,
        });
        self.commit_or_clean(target.lake(), &changes).await?;
        Ok(Vec::new())
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

    /// `ALTER TABLE` operations (parsed by [`super::sql::parse_alter`]).
    pub async fn alter(&self, alter: super::sql::AlterStatement) -> Result<Vec<RecordBatch>> {
        if let super::sql::AlterOp::RenameView { to, if_exists } = &alter.op {
            return self.rename_view(&alter.table, to, *if_exists).await;
        }
        let name = TableReference::from(alter.table.as_str());
        let target = self.resolve(&name).ok_or_else(|| {
            Error::Unsupported(format!(
                "ALTER TABLE on '{}', which is not in a DuckLake",
                alter.table
            ))
        })?;
        let table = Arc::clone(target.table()?);
        refuse_relayout_over_inlined_rows(target.lake(), table.id(), &target.qualified()).await?;
        let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
        let find = |name: &str| {
            table
                .columns
                .iter()
                .find(|c| c.row.column_name == name)
                .ok_or_else(|| Error::NotFound {
                    kind: "column",
                    name: format!("{}.{name}", target.qualified()),
                    hint: format!(
                        "; columns: {}",
                        table
                            .columns
                            .iter()
                            .map(|c| c.row.column_name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
        };
        use super::sql::AlterOp;
        match alter.op {
            AlterOp::AddColumn {
                name,
                parents,
                type_sql,
                default_sql,
                if_not_exists,
            } if !parents.is_empty() => {
                let parent = nested_column(&table, &parents, &target.qualified())?;
                if !matches!(parent.ty, crate::spec::types::DuckLakeType::Struct) {
                    return Err(Error::Unsupported(format!(
                        "'{}' of '{}' is {}: fields can only be added to structs",
                        parents.join("."),
                        target.qualified(),
                        parent.ty
                    )));
                }
                if field_of(parent, &name).is_some() {
                    if if_not_exists {
                        return Ok(Vec::new());
                    }
                    return Err(Error::AlreadyExists {
                        kind: "field",
                        name: format!("{}.{}.{name}", target.qualified(), parents.join(".")),
                    });
                }
                let data_type = self.sql_type(&type_sql).await?;
                let default = match &default_sql {
                    Some(d) => self.constant(d, &type_sql).await?,
                    None => None,
                };
                if default.as_deref().is_some_and(|d| d != "NULL") {
                    // Rows written before would read the default at that depth, which
                    // lakeq's reader cannot fill in yet: refused here rather than at
                    // every later read.
                    return Err(Error::Unsupported(format!(
                        "adding struct field '{}.{name}' of '{}' with a default value \
                         (lakeq cannot yet read the default into rows written before; add it \
                         without a default)",
                        parents.join("."),
                        target.qualified()
                    )));
                }
                let mut next = crate::commit::next_column_id(target.lake(), table.id()).await?;
                let mut column =
                    NewColumn::from_arrow(&Field::new(&name, data_type, true), &mut next)?;
                column.default_value = default.clone();
                column.initial_default = default;
                changes.alters.push(Alter::AddColumn {
                    table_id: table.id(),
                    parent: Some(parent.row.column_id),
                    column,
                });
            }
            AlterOp::DropColumn {
                name,
                parents,
                if_exists,
            } if !parents.is_empty() => {
                let parent = nested_column(&table, &parents, &target.qualified())?;
                let Some(field) = field_of(parent, &name) else {
                    if if_exists {
                        return Ok(Vec::new());
                    }
                    return Err(Error::not_found(
                        "field",
                        format!("{}.{}.{name}", target.qualified(), parents.join(".")),
                    ));
                };
                if parent.children.len() == 1 {
                    return Err(Error::Unsupported(format!(
                        "dropping '{name}', the only field of '{}'",
                        parents.join(".")
                    )));
                }
                let mut all = Vec::new();
                field.walk(&mut all);
                changes.alters.push(Alter::DropColumn {
                    table_id: table.id(),
                    column_ids: all.iter().map(|c| c.row.column_id).collect(),
                });
            }
            AlterOp::RenameColumn { from, parents, to } if !parents.is_empty() => {
                let parent = nested_column(&table, &parents, &target.qualified())?;
                let field = field_of(parent, &from).ok_or_else(|| {
                    Error::not_found(
                        "field",
                        format!("{}.{}.{from}", target.qualified(), parents.join(".")),
                    )
                })?;
                if field_of(parent, &to).is_some() {
                    return Err(Error::AlreadyExists {
                        kind: "field",
                        name: format!("{}.{}.{to}", target.qualified(), parents.join(".")),
                    });
                }
                let mut row = field.row.clone();
                row.column_name = to;
                changes.alters.push(Alter::ReplaceColumn { row });
            }
            AlterOp::AddColumn {
                name,
                type_sql,
                default_sql,
                if_not_exists,
                ..
            } => {
                check_column_name(target.lake(), &name)?;
                if find(&name).is_ok() {
                    if if_not_exists {
                        return Ok(Vec::new());
                    }
                    return Err(Error::AlreadyExists {
                        kind: "column",
                        name: format!("{}.{name}", target.qualified()),
                    });
                }
                let data_type = self.sql_type(&type_sql).await?;
                let default = match &default_sql {
                    Some(d) => self.constant(d, &type_sql).await?,
                    None => None,
                };
                let mut next = crate::commit::next_column_id(target.lake(), table.id()).await?;
                let mut column =
                    NewColumn::from_arrow(&Field::new(&name, data_type, true), &mut next)?;
                column.default_value = default.clone();
                column.initial_default = default;
                changes.alters.push(Alter::AddColumn {
                    table_id: table.id(),
                    parent: None,
                    column,
                });
            }
            AlterOp::DropColumn {
                name, if_exists, ..
            } => {
                let col = match find(&name) {
                    Ok(c) => c,
                    Err(_) if if_exists => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                };
                if table.columns.len() == 1 {
                    return Err(Error::Unsupported(format!(
                        "dropping '{name}', the only column of '{}'",
                        target.qualified()
                    )));
                }
                let sorted_by = target
                    .lake()
                    .store()
                    .sort_keys(table.id(), target.snapshot.snapshot.snapshot_id)
                    .await?;
                if sorted_by.iter().any(|k| {
                    super::sql::sort_key_columns(&k.expression)
                        .iter()
                        .any(|c| c.eq_ignore_ascii_case(&col.row.column_name))
                }) {
                    return Err(Error::Unsupported(format!(
                        "cannot drop column '{name}' of '{}': the table is sorted by this column \
                         (ALTER TABLE ... RESET SORTED BY first)",
                        target.qualified()
                    )));
                }
                if table
                    .partition
                    .iter()
                    .any(|p| p.column_id == col.row.column_id)
                {
                    return Err(Error::Unsupported(format!(
                        "dropping '{name}' of '{}': the table is partitioned by this column \
                         (ALTER TABLE ... RESET PARTITIONED BY first)",
                        target.qualified()
                    )));
                }
                let mut all = Vec::new();
                col.walk(&mut all);
                changes.alters.push(Alter::DropColumn {
                    table_id: table.id(),
                    column_ids: all.iter().map(|c| c.row.column_id).collect(),
                });
            }
            AlterOp::RenameColumn { from, to, .. } => {
                check_column_name(target.lake(), &to)?;
                let col = find(&from)?;
                if find(&to).is_ok() {
                    return Err(Error::AlreadyExists {
                        kind: "column",
                        name: format!("{}.{to}", target.qualified()),
                    });
                }
                let mut row = col.row.clone();
                row.column_name = to;
                changes.alters.push(Alter::ReplaceColumn { row });
            }
            AlterOp::SetType { name, type_sql } => {
                let col = find(&name)?;
                let data_type = self.sql_type(&type_sql).await?;
                if col.ty.is_nested() {
                    let mut next = crate::commit::next_column_id(target.lake(), table.id()).await?;
                    let mut evolution = NestedEvolution {
                        table_id: table.id(),
                        qualified: target.qualified(),
                        next_id: &mut next,
                        alters: &mut changes.alters,
                    };
                    evolution.evolve(col, &data_type, &name)?;
                    if changes.alters.is_empty() {
                        return Ok(Vec::new());
                    }
                } else {
                    let new_type = crate::spec::types::DuckLakeType::from_arrow(&data_type)?;
                    let old = col.ty.to_arrow()?;
                    if !datafusion::arrow::compute::can_cast_types(&old, &data_type)
                        || new_type.is_nested()
                        || (new_type != col.ty && !is_widening(&col.ty, &new_type))
                    {
                        return Err(Error::Unsupported(format!(
                            "changing column '{name}' of '{}' from {} to {new_type}: only widening \
                             type promotions are allowed (files already written keep their type)",
                            target.qualified(),
                            col.ty
                        )));
                    }
                    let mut row = col.row.clone();
                    row.column_type = new_type.to_string();
                    changes.alters.push(Alter::ReplaceColumn { row });
                }
            }
            AlterOp::SetNotNull { name, not_null } => {
                let col = find(&name)?;
                if col.row.nulls_allowed != not_null {
                    // DuckDB refuses a constraint that is already (or not) there.
                    return Err(Error::Unsupported(if not_null {
                        format!(
                            "column '{name}' of '{}' is already NOT NULL",
                            target.qualified()
                        )
                    } else {
                        format!(
                            "column '{name}' of '{}' has no NOT NULL constraint",
                            target.qualified()
                        )
                    }));
                }
                if not_null {
                    // The rows visible now decide, not statistics (deleted NULLs do not count).
                    let count_sql = format!(
                        "SELECT count(*) FROM {} WHERE {} IS NULL",
                        quoted_path(&[target.catalog.name(), &target.schema, &target.name]),
                        quoted_path(&[&name])
                    );
                    let batches = self.ctx.sql(&count_sql).await?.collect().await?;
                    let nulls = batches
                        .first()
                        .filter(|b| b.num_rows() == 1)
                        .and_then(|b| ScalarValue::try_from_array(b.column(0), 0).ok());
                    if !matches!(nulls, Some(ScalarValue::Int64(Some(0)))) {
                        return Err(Error::Constraint(format!(
                            "NOT NULL constraint failed: column '{name}' of '{}' holds NULLs",
                            target.qualified()
                        )));
                    }
                }
                let mut row = col.row.clone();
                row.nulls_allowed = !not_null;
                changes.alters.push(Alter::ReplaceColumn { row });
            }
            AlterOp::SetDefault {
                name,
                value,
                literal,
                expression_text,
            } => {
                let col = find(&name)?;
                let mut row = col.row.clone();
                let (text, kind) = match value {
                    None => ("NULL".to_string(), "literal"),
                    Some(sql) if literal => {
                        // A constant is stored as its value, in the column's type.
                        let dt = col
                            .row
                            .column_type
                            .parse::<DuckLakeType>()
                            .and_then(|t| t.to_arrow())?;
                        let batches = self
                            .ctx
                            .sql(&format!("SELECT {sql}"))
                            .await?
                            .collect()
                            .await?;
                        let value = batches
                            .first()
                            .filter(|b| b.num_rows() == 1 && b.num_columns() == 1)
                            .map(|b| ScalarValue::try_from_array(b.column(0), 0))
                            .transpose()?
                            .ok_or_else(|| {
                                Error::Unsupported(format!("DEFAULT {sql} of column '{name}'"))
                            })?
                            .cast_to(&dt)?;
                        let text = format_duckdb_text(&value)?.unwrap_or_else(|| "NULL".into());
                        (text, "literal")
                    }
                    Some(sql) => {
                        let text = expression_text.ok_or_else(|| {
                            Error::Unsupported(format!(
                                "DEFAULT {sql} of column '{name}': lakeq stores expression \
                                 defaults it can print as DuckDB does (functions, operators, \
                                 casts of constants)"
                            ))
                        })?;
                        (text, "expression")
                    }
                };
                row.default_value = Some(text);
                row.default_value_type = Some(kind.to_string());
                changes.alters.push(Alter::ReplaceColumn { row });
            }
            AlterOp::RenameView { .. } => {
                return Err(Error::Unsupported(
                    "ALTER VIEW is handled before table alters".into(),
                ));
            }
            AlterOp::SetSortedBy { keys } => {
                let unmatched: Vec<String> = keys
                    .iter()
                    .flat_map(|k| super::sql::sort_key_columns(&k.expression))
                    .filter(|c| find(c).is_err())
                    .collect();
                if !unmatched.is_empty() {
                    return Err(Error::Unsupported(format!(
                        "Columns in the SET SORTED BY statement were not found in the DuckLake \
                         table '{}'. Unmatched columns were: {}",
                        target.qualified(),
                        unmatched.join(", ")
                    )));
                }
                changes.alters.push(Alter::SetSort {
                    table_id: table.id(),
                    keys,
                });
            }
            AlterOp::SetPartitionedBy { keys } => {
                let mut resolved = Vec::new();
                for (transform, column) in keys {
                    let col = find(&column)?;
                    if let Some(n) = super::partition::bucket_count(&transform) {
                        super::partition::check_bucket_type(&col.ty, n)
                            .map_err(Error::Unsupported)?;
                    } else if transform != "identity"
                        && !matches!(
                            col.ty,
                            crate::spec::types::DuckLakeType::Date
                                | crate::spec::types::DuckLakeType::Timestamp
                                | crate::spec::types::DuckLakeType::TimestampTz
                                | crate::spec::types::DuckLakeType::TimestampS
                                | crate::spec::types::DuckLakeType::TimestampMs
                                | crate::spec::types::DuckLakeType::TimestampNs
                        )
                    {
                        return Err(Error::Unsupported(format!(
                            "partition transform {transform}({column}) needs a date or timestamp column, '{column}' is {}",
                            col.ty
                        )));
                    }
                    resolved.push((col.row.column_id, transform));
                }
                // The table's own partitioning again changes nothing: no
                // snapshot, no new schema version (DuckDB's PartitionFieldsMatch).
                let same = resolved.len() == table.partition.len()
                    && resolved.iter().zip(&table.partition).all(|((id, t), p)| {
                        *id == p.column_id && t.eq_ignore_ascii_case(&p.transform)
                    });
                if same {
                    return Ok(Vec::new());
                }
                changes.alters.push(Alter::SetPartition {
                    table_id: table.id(),
                    keys: resolved,
                });
            }
            AlterOp::RenameTable { to } => {
                let schema = target.snapshot.schema(&target.schema)?;
                if schema.tables.contains_key(&to) || schema.views.contains_key(&to) {
                    return Err(Error::AlreadyExists {
                        kind: "table",
                        name: format!("{}.{}.{to}", target.catalog.name(), target.schema),
                    });
                }
                changes.alters.push(Alter::RenameTable {
                    row: table.row.clone(),
                    new_name: to,
                    schema_name: target.schema.clone(),
                });
            }
        }
        commit(target.lake(), &changes).await?;
        Ok(Vec::new())
    }
}

/// Whether changing a column from `from` to `to` widens it, as DuckDB allows
/// (its implicit-cast lattice): integers to wider integers (unsigned to a wider
/// signed one too), integers and FLOAT to DOUBLE, small integers to FLOAT,
/// decimals to decimals with room for every value, DATE to TIMESTAMP.
fn is_widening(from: &DuckLakeType, to: &DuckLakeType) -> bool {
    use crate::spec::types::DuckLakeType as T;
    fn signed_bits(t: &DuckLakeType) -> Option<u32> {
        match t {
            T::Int8 => Some(8),
            T::Int16 => Some(16),
            T::Int32 => Some(32),
            T::Int64 => Some(64),
            T::Int128 => Some(128),
            _ => None,
        }
    }
    fn unsigned_bits(t: &DuckLakeType) -> Option<u32> {
        match t {
            T::UInt8 => Some(8),
            T::UInt16 => Some(16),
            T::UInt32 => Some(32),
            T::UInt64 => Some(64),
            T::UInt128 => Some(128),
            _ => None,
        }
    }
    if from == to {
        return false;
    }
    let small_int = |t: &DuckLakeType| {
        signed_bits(t).is_some_and(|b| b <= 16) || unsigned_bits(t).is_some_and(|b| b <= 16)
    };
    match (from, to) {
        (a, b) if signed_bits(a).is_some() && signed_bits(b).is_some() => {
            signed_bits(a) < signed_bits(b)
        }
        (a, b) if unsigned_bits(a).is_some() && unsigned_bits(b).is_some() => {
            unsigned_bits(a) < unsigned_bits(b)
        }
        (a, b) if unsigned_bits(a).is_some() && signed_bits(b).is_some() => {
            unsigned_bits(a) < signed_bits(b)
        }
        (a, T::Float64) if signed_bits(a).is_some() || unsigned_bits(a).is_some() => true,
        (T::Float32, T::Float64) => true,
        (a, T::Float32) => small_int(a),
        (
            T::Decimal {
                precision: p1,
                scale: s1,
            },
            T::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => s2 >= s1 && i64::from(*p2) - i64::from(*s2) >= i64::from(*p1) - i64::from(*s1),
        (T::Date, T::Timestamp) => true,
        _ => false,
    }
}

/// Column names DuckDB reserves for its inlined-data tables, refused (as DuckDB
/// does) unless the lake was attached with data inlining off, so that DuckDB can
/// still inline rows into the table.
const RESERVED_COLUMN_NAMES: [&str; 5] = [
    "row_id",
    "begin_snapshot",
    "end_snapshot",
    "_ducklake_internal_snapshot_id",
    "_ducklake_internal_row_id",
];

/// Refuse a column name DuckLake reserves for internal use.
fn check_column_name(lake: &Lake, name: &str) -> Result<()> {
    if lake.data_inlining_row_limit() != Some(0)
        && RESERVED_COLUMN_NAMES
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name))
    {
        return Err(Error::Unsupported(format!(
            "column name \"{name}\" is reserved by DuckLake for internal use (attach the lake \
             with DATA_INLINING_ROW_LIMIT 0 to use it)"
        )));
    }
    Ok(())
}

/// `ALTER COLUMN c SET DATA TYPE <nested type>` as DuckDB evolves a nested column:
/// fields matched by name (any case) keep their ids (and may widen), fields the new
/// type leaves out are dropped, new fields are added after the kept ones.
struct NestedEvolution<'a> {
    table_id: crate::spec::CatalogId,
    qualified: String,
    next_id: &'a mut crate::spec::ColumnId,
    alters: &'a mut Vec<Alter>,
}

impl NestedEvolution<'_> {
    fn refuse(&self, path: &str, why: &str) -> Error {
        Error::Unsupported(format!(
            "changing the type of '{path}' of '{}': {why}",
            self.qualified
        ))
    }

    /// Evolve `node` (at `path`, for messages) to `to`.
    fn evolve(
        &mut self,
        node: &crate::catalog::ColumnNode,
        to: &DataType,
        path: &str,
    ) -> Result<()> {
        use crate::spec::types::DuckLakeType as T;
        match (&node.ty, to) {
            (T::Struct, DataType::Struct(fields)) => {
                // Kept fields, in the new type's order, must keep their order.
                let mut last_kept: Option<usize> = None;
                let mut kept_any = false;
                for child in &node.children {
                    let name = &child.row.column_name;
                    match fields
                        .iter()
                        .position(|f| f.name().eq_ignore_ascii_case(name))
                    {
                        Some(i) => {
                            if last_kept.is_some_and(|l| i < l) {
                                return Err(self.refuse(path, "the new type reorders fields"));
                            }
                            last_kept = Some(i);
                            kept_any = true;
                            if let Some(f) = fields.get(i) {
                                self.evolve(child, f.data_type(), &format!("{path}.{name}"))?;
                            }
                        }
                        None => {
                            let mut all = Vec::new();
                            child.walk(&mut all);
                            self.alters.push(Alter::DropColumn {
                                table_id: self.table_id,
                                column_ids: all.iter().map(|c| c.row.column_id).collect(),
                            });
                        }
                    }
                }
                for (i, f) in fields.iter().enumerate() {
                    let existing = node
                        .children
                        .iter()
                        .any(|c| c.row.column_name.eq_ignore_ascii_case(f.name()));
                    if existing {
                        continue;
                    }
                    if kept_any && last_kept.is_some_and(|l| i < l) {
                        return Err(
                            self.refuse(path, "new fields go after the fields the struct keeps")
                        );
                    }
                    let column = NewColumn::from_arrow(f, self.next_id)?;
                    self.alters.push(Alter::AddColumn {
                        table_id: self.table_id,
                        parent: Some(node.row.column_id),
                        column,
                    });
                }
                Ok(())
            }
            (T::List, DataType::List(f) | DataType::LargeList(f)) => match node.children.first() {
                Some(element) => self.evolve(element, f.data_type(), &format!("{path}.element")),
                None => Err(self.refuse(path, "the list has no element column")),
            },
            (T::Map, DataType::Map(entries, _)) => {
                let DataType::Struct(kv) = entries.data_type() else {
                    return Err(self.refuse(path, "a map without key and value"));
                };
                for (child, f) in node.children.iter().zip(kv.iter()) {
                    let name = &child.row.column_name;
                    self.evolve(child, f.data_type(), &format!("{path}.{name}"))?;
                }
                Ok(())
            }
            (old, _) if old.is_nested() => {
                Err(self.refuse(path, &format!("a {old} column cannot become {to}")))
            }
            (old, _) => {
                let new = crate::spec::types::DuckLakeType::from_arrow(to)?;
                if new == *old {
                    return Ok(());
                }
                if new.is_nested() || !is_widening(old, &new) {
                    return Err(self.refuse(
                        path,
                        &format!("{old} to {new} is not a widening type promotion"),
                    ));
                }
                let mut row = node.row.clone();
                row.column_type = new.to_string();
                self.alters.push(Alter::ReplaceColumn { row });
                Ok(())
            }
        }
    }
}

/// The column at `path` (top-level name, then field names; `element`, `key` and
/// `value` inside lists and maps), matched without regard to case as DuckDB does.
fn nested_column<'a>(
    table: &'a crate::catalog::TableEntry,
    path: &[String],
    qualified: &str,
) -> Result<&'a crate::catalog::ColumnNode> {
    let missing = |upto: usize| {
        Error::not_found(
            "column",
            format!("{qualified}.{}", path.get(..upto).unwrap_or(path).join(".")),
        )
    };
    let (first, rest) = path.split_first().ok_or_else(|| missing(0))?;
    let mut node = table
        .columns
        .iter()
        .find(|c| c.row.column_name.eq_ignore_ascii_case(first))
        .ok_or_else(|| missing(1))?;
    for (i, name) in rest.iter().enumerate() {
        node = field_of(node, name).ok_or_else(|| missing(i + 2))?;
    }
    Ok(node)
}

/// The child of `node` named `name` (any case).
fn field_of<'a>(
    node: &'a crate::catalog::ColumnNode,
    name: &str,
) -> Option<&'a crate::catalog::ColumnNode> {
    node.children
        .iter()
        .find(|c| c.row.column_name.eq_ignore_ascii_case(name))
}

/// `"a"."b"."c"`, each part quoted.
fn quoted_path(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// How new data files of a table are laid out: split by partition, cut and
/// encoded by the lake's options.
struct FileLayout {
    partition: Option<PartitionSpec>,
    options: WriteOptions,
}

/// The lake's write options for a table (`set_option`), read fresh: options are
/// not versioned, another session may have set one since the lake was attached.
async fn write_options(
    lake: &Lake,
    schema_id: crate::spec::CatalogId,
    table_id: Option<crate::spec::CatalogId>,
) -> Result<WriteOptions> {
    let metadata = lake.store().metadata().await?;
    WriteOptions::for_table(&metadata, schema_id, table_id.unwrap_or(-1))
}

/// Indexes of top-level columns declared NOT NULL.
fn not_null_columns(table: &TableEntry) -> Vec<usize> {
    table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.row.nulls_allowed)
        .map(|(i, _)| i)
        .collect()
}

fn with_table(e: Error, target: &Target) -> Error {
    match e {
        Error::DataFusion(inner) => {
            Error::Unsupported(format!("writing to '{}': {inner}", target.qualified()))
        }
        other => other,
    }
}

/// The rows of `df` as a stream for writing. A `UNION ALL` of inputs of one
/// partition each (`VALUES`, constant selects) is read input after input, so
/// rows get their row ids in the order written, as in DuckDB (DataFusion
/// would interleave the inputs); anything else streams as DataFusion runs it.
async fn in_input_order(
    df: datafusion::dataframe::DataFrame,
) -> Result<datafusion::physical_plan::SendableRecordBatchStream> {
    use datafusion::physical_plan::union::UnionExec;
    use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
    let task = Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await?;
    let mut node: &Arc<dyn ExecutionPlan> = &plan;
    let ordered_union = loop {
        let any: &dyn std::any::Any = node.as_ref();
        if let Some(union) = any.downcast_ref::<UnionExec>() {
            break union
                .inputs()
                .iter()
                .all(|i| i.output_partitioning().partition_count() == 1);
        }
        match (
            node.children().as_slice(),
            node.maintains_input_order().as_slice(),
        ) {
            ([child], [true])
                if child.output_partitioning().partition_count()
                    == node.output_partitioning().partition_count() =>
            {
                node = child;
            }
            _ => break false,
        }
    };
    if ordered_union && plan.output_partitioning().partition_count() > 1 {
        let schema = plan.schema();
        let streams = datafusion::physical_plan::execute_stream_partitioned(plan, task)?;
        let chained = futures::stream::iter(streams).flatten();
        return Ok(Box::pin(
            datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, chained),
        ));
    }
    Ok(datafusion::physical_plan::execute_stream(plan, task)?)
}

/// A written data file with its partition (spec id and values), if any.
type PartitionedFile = (WrittenFile, Option<(i64, Vec<Option<String>>)>);

/// What [`Writer::write_plan`] did with the rows.
enum Written {
    /// Written to these data files (with their partition values); row count.
    Files(Vec<PartitionedFile>, u64),
    /// Held back, few enough to inline; row count.
    Held(Vec<RecordBatch>, u64),
}

/// How many rows one statement may inline into `table` (0: none), as DuckDB
/// decides (SPEC §8.1): the lake's `data_inlining_row_limit` option (table,
/// then schema, then global scope), else `DATA_INLINING_ROW_LIMIT` given at
/// ATTACH, else 10; 0 for tables with a column that has no inlined form.
async fn inline_limit(lake: &Lake, table: &TableEntry) -> Result<u64> {
    let dialect = lake.store().backend().dialect();
    if !crate::commit::inline::can_inline(dialect, &table.columns) {
        return Ok(0);
    }
    configured_inline_limit(lake, table).await
}

/// The lake's inlining row limit for `table`, whatever its columns (deleted
/// rows of its Parquet files are inlined up to it).
async fn configured_inline_limit(lake: &Lake, table: &TableEntry) -> Result<u64> {
    crate::commit::inline::configured_limit(lake, table.row.schema_id, table.id()).await
}

/// The rows held back for a table as an inlined insert (`None`: a value has no
/// inlined form, so they go to Parquet). `columns` and `file_schema` are the
/// table's; with `row_ids`, the last column of `schema` (the batches') holds
/// each row's existing row id.
#[allow(clippy::too_many_arguments)]
fn inlined_insert(
    lake: &Lake,
    table: TableRef,
    columns: &[crate::catalog::ColumnNode],
    file_schema: &SchemaRef,
    name: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    row_ids: bool,
) -> Result<Option<crate::commit::inline::InlinedInsert>> {
    use crate::commit::inline;
    let batch = datafusion::arrow::compute::concat_batches(schema, batches)?;
    let (batch, ids) = if row_ids {
        let last = batch.num_columns().saturating_sub(1);
        let ids = batch.column(last).as_primitive::<Int64Type>();
        if ids.null_count() > 0 {
            return Ok(None);
        }
        let ids: Vec<i64> = ids.values().to_vec();
        let mut kept = batch;
        kept.remove_column(last);
        (kept, Some(ids))
    } else {
        (batch, None)
    };
    let dialect = lake.store().backend().dialect();
    let Some(rows) = inline::render_rows(dialect, columns, &batch)? else {
        return Ok(None);
    };
    let mut stats = crate::write::StatsCollector::new(Arc::clone(file_schema), name)?;
    stats.add(&conform(&batch, file_schema)?)?;
    let (_, column_stats) = stats.finish()?;
    Ok(Some(inline::InlinedInsert {
        table,
        column_ids: columns.iter().map(|c| c.row.column_id).collect(),
        rows,
        row_ids: ids,
        column_stats,
    }))
}

/// An UPDATE's input with each row's row id appended: the scan of the target
/// table reads DuckDB's `rowid` too, and the top projection passes it on. `None`
/// when the plan has another shape, or the table hides `rowid` behind a column.
fn updated_with_row_ids(
    target: &Target,
    table: &Arc<TableEntry>,
    input: &LogicalPlan,
) -> Result<Option<LogicalPlan>> {
    use datafusion::datasource::provider_as_source;
    use datafusion::logical_expr::{Projection, TableScanBuilder};
    let LogicalPlan::Projection(top) = input else {
        return Ok(None);
    };
    if !super::table::LakeTable::virtual_columns(table).contains(&super::table::ROWID_COLUMN) {
        return Ok(None);
    }
    let provider = super::table::LakeTable::new(
        Arc::clone(target.lake()),
        Arc::clone(table),
        target.snapshot.snapshot.snapshot_id,
    )
    .with_rowid();
    let source = provider_as_source(Arc::new(provider));
    let mut scans = 0;
    let mut qualifier = None;
    let rebuilt = top
        .input
        .as_ref()
        .clone()
        .transform_up(|plan| match plan {
            LogicalPlan::TableScan(scan) => {
                scans += 1;
                qualifier = Some(scan.table_name.clone());
                let replaced = TableScanBuilder::new(scan.table_name, Arc::clone(&source))
                    .with_filters(scan.filters)
                    .with_fetch(scan.fetch)
                    .build()?;
                Ok(Transformed::yes(LogicalPlan::TableScan(replaced)))
            }
            other => Ok(Transformed::yes(other.recompute_schema()?)),
        })
        .data()?;
    let (1, Some(qualifier)) = (scans, qualifier) else {
        return Ok(None);
    };
    let mut exprs = top.expr.clone();
    exprs.push(Expr::Column(Column::new(
        Some(qualifier),
        super::table::ROWID_COLUMN,
    )));
    Ok(Some(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(rebuilt),
    )?)))
}

/// The predicate of a DELETE/UPDATE input (the `Filter` above the scan), if any.
fn filter_predicate(plan: &LogicalPlan) -> Option<Expr> {
    match plan {
        LogicalPlan::Filter(f) => Some(f.predicate.clone()),
        other => match other.inputs().as_slice() {
            [only] => filter_predicate(only),
            _ => None,
        },
    }
}

/// `CAST(expr AS type)`.
fn cast_expr(expr: Expr, to: DataType) -> Expr {
    Expr::Cast(datafusion::logical_expr::Cast::new(Box::new(expr), to))
}

/// Drop table qualifiers so the predicate applies to the positions table.
fn unqualify(expr: Expr) -> Result<Expr> {
    Ok(expr
        .transform(|e| match e {
            Expr::Column(c) if c.relation.is_some() => Ok(Transformed::yes(Expr::Column(
                Column::new_unqualified(c.name),
            ))),
            other => Ok(Transformed::no(other)),
        })
        .data()?)
}

/// A literal default's DuckDB text.
fn literal_text(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Literal(v, _) => format_duckdb_text(v).ok().flatten().or(Some("NULL".into())),
        Expr::Cast(c) => literal_text(&c.expr),
        _ => None,
    }
}

/// The Arrow schema (with field ids) of new columns.
fn table_arrow_schema(columns: &[NewColumn]) -> Result<SchemaRef> {
    fn field(c: &NewColumn) -> Result<Field> {
        let children = c.children.iter().map(field).collect::<Result<Vec<_>>>()?;
        let dt = c.ty.to_arrow_nested(children)?;
        Ok(Field::new(&c.name, dt, true).with_metadata(HashMap::from([(
            crate::catalog::FIELD_ID_KEY.to_string(),
            c.column_id.to_string(),
        )])))
    }
    Ok(Arc::new(Schema::new(
        columns.iter().map(field).collect::<Result<Vec<_>>>()?,
    )))
}

/// Render every value of a batch as text (`None` for NULL), for small internal
/// reads such as ingest bookkeeping.
pub fn strings(batch: &RecordBatch) -> Result<Vec<Vec<Option<String>>>> {
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

/// In a transaction, a table whose columns already changed in it and that then
/// received inlined rows in that new layout cannot change its columns again:
/// the commit would leave those rows in a layout no snapshot has, and both
/// engines would read them wrong (DuckDB rewrites them into the final layout at
/// COMMIT; lakeq does not yet). Refused with an error, never committed wrong.
async fn refuse_relayout_over_inlined_rows(
    lake: &Lake,
    table_id: crate::spec::CatalogId,
    qualified: &str,
) -> Result<()> {
    let Some(base) = lake.transaction_base() else {
        return Ok(());
    };
    let store = lake.store();
    let created_here: BTreeSet<i64> = store
        .schema_versions(table_id)
        .await?
        .into_iter()
        .filter(|v| v.begin_snapshot > base)
        .map(|v| v.schema_version)
        .collect();
    for inlined in store.inlined_tables(table_id).await? {
        if !created_here.contains(&inlined.schema_version)
            || !store.backend().table_exists(&inlined.table_name).await?
        {
            continue;
        }
        let rows = store
            .backend()
            .query(&format!(
                "SELECT count(*) FROM {} WHERE begin_snapshot > {base}",
                store.backend().table(&inlined.table_name)
            ))
            .await?;
        let written = rows.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0);
        if written > 0 {
            return Err(Error::Unsupported(format!(
                "changing the columns of '{qualified}' again in this transaction: its columns already \
                 changed in it and it holds {written} inlined row(s) written since, which lakeq \
                 cannot yet carry into the new layout at COMMIT; COMMIT first, or write the rows \
                 after the last column change"
            )));
        }
    }
    Ok(())
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

#[cfg(test)]
mod widening_tests {
    use super::is_widening;
    use crate::spec::types::DuckLakeType as T;

    #[test]
    fn only_widening_type_changes_are_allowed() {
        assert!(is_widening(&T::Int16, &T::Int32));
        assert!(is_widening(&T::UInt8, &T::Int16));
        assert!(is_widening(&T::Int32, &T::Float64));
        assert!(is_widening(&T::Float32, &T::Float64));
        assert!(is_widening(&T::Date, &T::Timestamp));
        assert!(is_widening(
            &T::Decimal {
                precision: 9,
                scale: 2
            },
            &T::Decimal {
                precision: 18,
                scale: 4
            }
        ));
        assert!(!is_widening(&T::Int32, &T::Int16));
        assert!(!is_widening(&T::UInt32, &T::Int32));
        assert!(!is_widening(&T::Int64, &T::Float32));
        assert!(!is_widening(&T::Float64, &T::Float32));
        assert!(!is_widening(
            &T::Decimal {
                precision: 9,
                scale: 2
            },
            &T::Decimal {
                precision: 9,
                scale: 3
            }
        ));
        assert!(!is_widening(&T::Int32, &T::Int32));
    }
}
