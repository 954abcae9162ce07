//! DDL on lake objects: `CREATE`/`DROP SCHEMA`, `CREATE TABLE` (and CTAS),
//! `CREATE VIEW`, `DROP`, `CREATE`/`DROP MACRO`, view renames and `COMMENT ON`.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::TableReference;
use datafusion::logical_expr::{DdlStatement, Expr, LogicalPlan};

use super::alter::{check_column_name, quoted_path};
use super::insert::{FileLayout, Written, inlined_insert, write_options};
use super::{Target, Writer, count_batch};
use crate::commit::{AddedFile, ChangeSet, NewColumn, NewTable, NewView, TableRef, commit};
use crate::error::{Error, Result};
use crate::spec::paths::{default_dir_name, resolve};
use crate::spec::values::format_duckdb_text;

impl Writer<'_> {
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

    pub(super) async fn ddl(
        &self,
        ddl: &DdlStatement,
        sql: &str,
    ) -> Result<Option<Vec<RecordBatch>>> {
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

    pub(super) async fn create_view(
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
        let (query, aliases) = crate::dialect::lake_statements::view_query(
            sql,
            target.catalog.name(),
            &target.schema,
        )?;
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

    pub(super) async fn create_table(
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

    /// `ALTER VIEW name RENAME TO to`, one snapshot; the view keeps its id.
    pub(super) async fn rename_view(
        &self,
        view: &str,
        to: &str,
        if_exists: bool,
    ) -> Result<Vec<RecordBatch>> {
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
    pub async fn comment(
        &self,
        c: crate::dialect::lake_statements::CommentStatement,
    ) -> Result<Vec<RecordBatch>> {
        use crate::dialect::lake_statements::CommentOn;
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
}

/// The Arrow schema (with field ids) of new columns.
pub(super) fn table_arrow_schema(columns: &[NewColumn]) -> Result<SchemaRef> {
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

/// A literal default's DuckDB text.
pub(super) fn literal_text(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Literal(v, _) => format_duckdb_text(v).ok().flatten().or(Some("NULL".into())),
        Expr::Cast(c) => literal_text(&c.expr),
        _ => None,
    }
}
