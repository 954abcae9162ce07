//! DuckDB SQL to a DataFusion logical plan: parse ([`super::parser`]), rewrite
//! ([`super::rewrite`]), evaluate what must be constant before planning
//! (time-travel targets), then DataFusion's planner.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::ScalarValue;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    Expr, Query, Select, SelectFlavor, SelectItem, SetExpr, Statement, TableWithJoins,
};

use super::parser::parse_statements;
use super::rewrite::{
    MacroLookup, NameContext, TableColumns, apply_at_targets, expand_order_by_all, order_by_all,
    rewrite,
};
use crate::error::{Error, Result};

/// Session variables (`SET VARIABLE`), by lower-case name.
pub type Variables = HashMap<String, ScalarValue>;

/// The key under which a `PREPARE`d statement's text is kept among the session's
/// variables (a name no `SET VARIABLE` can give).
pub fn prepared_key(name: &str) -> String {
    format!("\u{1}prepared:{}", name.to_ascii_lowercase())
}

/// `EXECUTE name(args)`: the prepared statement with its `$n` and `?` parameters
/// replaced by the arguments, as DuckDB binds them.
fn executed_statement(
    name: &str,
    parameters: &[datafusion::sql::sqlparser::ast::Expr],
    variables: &Variables,
) -> Result<DFStatement> {
    use datafusion::sql::sqlparser::ast::{Value, VisitMut, VisitorMut};
    use std::ops::ControlFlow;
    let Some(ScalarValue::Utf8(Some(text))) = variables.get(&prepared_key(name)) else {
        return Err(Error::Unsupported(format!(
            "prepared statement '{name}' does not exist"
        )));
    };
    let mut statements = parse_statements(text)?;
    let (Some(mut statement), true) = (statements.pop_front(), statements.is_empty()) else {
        return Err(Error::Unsupported(format!(
            "prepared statement '{name}' is not one statement"
        )));
    };
    struct Bind<'a> {
        parameters: &'a [Expr],
        next: usize,
        error: Option<String>,
    }
    impl VisitorMut for Bind<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let Expr::Value(v) = expr else {
                return ControlFlow::Continue(());
            };
            let Value::Placeholder(p) = &v.value else {
                return ControlFlow::Continue(());
            };
            let index = if p == "?" {
                self.next += 1;
                Some(self.next)
            } else {
                p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok())
            };
            match index
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| self.parameters.get(i))
            {
                Some(value) => *expr = Expr::Nested(Box::new(value.clone())),
                None => {
                    self.error = Some(format!(
                        "parameter {p} has no value ({} given)",
                        self.parameters.len()
                    ));
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut bind = Bind {
        parameters,
        next: 0,
        error: None,
    };
    if let DFStatement::Statement(s) = &mut statement {
        let _ = s.visit(&mut bind);
    }
    if let Some(e) = bind.error {
        return Err(Error::Unsupported(format!("EXECUTE {name}: {e}")));
    }
    Ok(statement)
}

/// The default schema DuckDB gives a catalog: `main` where it exists.
fn default_schema(catalog: &dyn datafusion::catalog::CatalogProvider) -> String {
    let names = catalog.schema_names();
    if names.iter().any(|n| n == "main") || names.is_empty() {
        "main".into()
    } else if names.iter().any(|n| n == "public") {
        "public".into()
    } else {
        names.into_iter().next().unwrap_or_else(|| "main".into())
    }
}

/// What name resolution needs, read from the session state.
pub fn name_context(state: &SessionState) -> NameContext {
    let list = state.catalog_list();
    let mut catalogs = HashMap::new();
    let mut lakes = std::collections::HashSet::new();
    for name in list.catalog_names() {
        if let Some(c) = list.catalog(&name) {
            let any: &dyn std::any::Any = c.as_ref();
            if any.is::<crate::provider::catalog::LakeCatalog>() {
                lakes.insert(name.to_ascii_lowercase());
            }
            catalogs.insert(
                name.to_ascii_lowercase(),
                (name.clone(), default_schema(c.as_ref())),
            );
        }
    }
    let current_catalog = state.config_options().catalog.default_catalog.clone();
    let current_schema = state.config_options().catalog.default_schema.clone();
    let current_schemas = list
        .catalog(&current_catalog)
        .map(|c| {
            c.schema_names()
                .into_iter()
                .map(|s| s.to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let catalog_list = Arc::clone(list);
    let table_columns = TableColumns::new(move |catalog: &str, schema: &str, table: &str| {
        let catalog_name = catalog_list
            .catalog_names()
            .into_iter()
            .find(|n| n.eq_ignore_ascii_case(catalog))?;
        let provider = catalog_list.catalog(&catalog_name)?;
        let any: &dyn std::any::Any = provider.as_ref();
        let lake = any.downcast_ref::<crate::provider::catalog::LakeCatalog>()?;
        let snapshot = lake.current();
        let schema_entry = snapshot
            .schemas
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(schema))
            .map(|(_, s)| s)?;
        let entry = schema_entry
            .tables
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(table))
            .map(|(_, t)| t)?;
        Some(
            entry
                .arrow_schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        )
    });
    let macro_list = Arc::clone(list);
    let macros = MacroLookup::new(move |catalog: &str, schema: &str, name: &str| {
        let catalog_name = macro_list
            .catalog_names()
            .into_iter()
            .find(|n| n.eq_ignore_ascii_case(catalog))?;
        let provider = macro_list.catalog(&catalog_name)?;
        let any: &dyn std::any::Any = provider.as_ref();
        let lake = any.downcast_ref::<crate::provider::catalog::LakeCatalog>()?;
        let snapshot = lake.current();
        let schema_entry = snapshot
            .schemas
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(schema))
            .map(|(_, s)| s)?;
        schema_entry
            .macros
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, m)| Arc::clone(m))
    });
    let temp_tables = list
        .catalog("temp")
        .and_then(|c| c.schema("main"))
        .map(|s| s.table_names().iter().map(|t| t.to_lowercase()).collect())
        .unwrap_or_default();
    NameContext {
        temp_tables,
        macros,
        catalogs,
        current_catalog,
        current_schemas,
        current_schema,
        lakes,
        table_columns,
    }
}

/// A table's sort key (a `SET SORTED BY` expression, DuckDB SQL) planned over
/// the table `table` (a qualified SQL name): macros expanded, DuckDB's functions
/// mapped, columns unqualified. A key calling a function that does not exist is
/// an error, as in DuckDB; `Ok(None)` when lakeq cannot plan it for another
/// reason (the sort is then left out: it orders the files, not any answer).
pub async fn sort_key(
    state: &SessionState,
    table: &str,
    expression: &str,
) -> Result<Option<datafusion::logical_expr::Expr>> {
    use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
    let sql = format!("SELECT {expression} FROM {table}");
    let plan = match Box::pin(plan_sql(state, &sql, &Variables::new())).await {
        Ok((plan, _)) => plan,
        Err(e)
            if e.to_string().contains("Invalid function")
                || e.to_string().contains("has no implementation taking") =>
        {
            return Err(Error::Unsupported(format!(
                "table {table} is sorted by {expression}, which calls a function or macro that \
                 does not exist or does not take these arguments: {e}"
            )));
        }
        Err(_) => return Ok(None),
    };
    let LogicalPlan::Projection(projection) = plan else {
        return Ok(None);
    };
    let [expr] = projection.expr.as_slice() else {
        return Ok(None);
    };
    let expr = expr.clone().unalias_nested().data;
    Ok(expr
        .transform(|e| match e {
            datafusion::logical_expr::Expr::Column(c) => {
                Ok(Transformed::yes(datafusion::logical_expr::Expr::Column(
                    datafusion::common::Column::new_unqualified(c.name),
                )))
            }
            other => Ok(Transformed::no(other)),
        })
        .data()
        .ok())
}

/// Evaluate a constant expression (no columns) to a value.
pub async fn evaluate_constant(state: &SessionState, expr: Expr) -> Result<ScalarValue> {
    let select = Select {
        projection: vec![SelectItem::UnnamedExpr(expr.clone())],
        ..empty_select()
    };
    let query = Query {
        body: Box::new(SetExpr::Select(Box::new(select))),
        ..empty_query()
    };
    let plan = state
        .statement_to_plan(DFStatement::Statement(Box::new(Statement::Query(
            Box::new(query),
        ))))
        .await
        .map_err(|e| Error::Unsupported(format!("'{expr}' is not a constant: {e}")))?;
    let physical = state.create_physical_plan(&plan).await?;
    let batches = datafusion::physical_plan::collect(physical, state.task_ctx()).await?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Err(Error::Unsupported(format!("'{expr}' has no value")));
    };
    Ok(ScalarValue::try_from_array(batch.column(0), 0)?)
}

fn empty_select() -> Select {
    use datafusion::sql::sqlparser::ast::{GroupByExpr, helpers::attached_token::AttachedToken};
    Select {
        select_token: AttachedToken::empty(),
        optimizer_hints: Vec::new(),
        distinct: None,
        select_modifiers: None,
        top: None,
        top_before_distinct: false,
        projection: Vec::new(),
        exclude: None,
        into: None,
        from: Vec::<TableWithJoins>::new(),
        lateral_views: Vec::new(),
        prewhere: None,
        selection: None,
        connect_by: Vec::new(),
        group_by: GroupByExpr::Expressions(Vec::new(), Vec::new()),
        cluster_by: Vec::new(),
        distribute_by: Vec::new(),
        sort_by: Vec::new(),
        having: None,
        named_window: Vec::new(),
        qualify: None,
        window_before_qualify: false,
        value_table_mode: None,
        flavor: SelectFlavor::Standard,
    }
}

fn empty_query() -> Query {
    Query {
        with: None,
        body: Box::new(SetExpr::Select(Box::new(empty_select()))),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: Vec::new(),
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: Vec::new(),
    }
}

/// A time-travel target as the schema provider reads it.
async fn at_target(state: &SessionState, is_version: bool, expr: Expr) -> Result<String> {
    let value = evaluate_constant(state, expr.clone()).await?;
    if is_version {
        let v = value
            .cast_to(&DataType::Int64)
            .ok()
            .and_then(|v| match v {
                ScalarValue::Int64(Some(v)) => Some(v),
                _ => None,
            })
            .ok_or_else(|| {
                Error::Unsupported(format!("AT (VERSION => {expr}): not an integer ({value})"))
            })?;
        return Ok(format!("version={v}"));
    }
    let ts_type = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let array = value
        .to_array()
        .and_then(|a| Ok(datafusion::arrow::compute::cast(&a, &ts_type)?));
    let micros = array.ok().and_then(|a| {
        let p = a.as_primitive::<TimestampMicrosecondType>();
        (!p.is_null(0)).then(|| p.value(0))
    });
    let Some(micros) = micros else {
        return Err(Error::Unsupported(format!(
            "AT (TIMESTAMP => {expr}): not a timestamp ({value})"
        )));
    };
    let dt = chrono::DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| Error::Unsupported(format!("AT (TIMESTAMP => {expr}): out of range")))?;
    Ok(format!(
        "timestamp={}",
        dt.format("%Y-%m-%d %H:%M:%S%.6f+00")
    ))
}

/// Number of columns a query returns (planned without its ORDER BY).
async fn query_width(state: &SessionState, query: &Query) -> Result<usize> {
    let mut q = query.clone();
    q.order_by = None;
    let plan = state
        .statement_to_plan(DFStatement::Statement(Box::new(Statement::Query(
            Box::new(q),
        ))))
        .await?;
    Ok(plan.schema().fields().len())
}

/// A DuckDB statement, rewritten (see [`super::rewrite`]) and ready to plan.
pub async fn prepare_statement(
    state: &SessionState,
    statement: DFStatement,
    variables: &Variables,
) -> Result<DFStatement> {
    let mut s = match statement {
        DFStatement::Statement(s) => s,
        DFStatement::Explain(mut explain) => {
            // EXPLAIN plans its statement with the same rewrites.
            let inner = Box::pin(prepare_statement(state, *explain.statement, variables)).await?;
            explain.statement = Box::new(inner);
            return Ok(DFStatement::Explain(explain));
        }
        DFStatement::CopyTo(mut copy) => {
            if let datafusion::sql::parser::CopyToSource::Query(query) = copy.source {
                let inner = Box::pin(prepare_statement(
                    state,
                    DFStatement::Statement(Box::new(Statement::Query(query))),
                    variables,
                ))
                .await?;
                let DFStatement::Statement(stmt) = inner else {
                    return Err(Error::Unsupported("COPY (query) TO ...".into()));
                };
                let Statement::Query(query) = *stmt else {
                    return Err(Error::Unsupported("COPY (query) TO ...".into()));
                };
                copy.source = datafusion::sql::parser::CopyToSource::Query(query);
            }
            return Ok(DFStatement::CopyTo(copy));
        }
        other => return Ok(other),
    };
    // DuckDB's `CALL f(...)` is `SELECT * FROM f(...)`.
    if let Statement::Call(function) = s.as_ref() {
        let mut call = function.clone();
        if matches!(
            call.args,
            datafusion::sql::sqlparser::ast::FunctionArguments::None
        ) {
            call.args = datafusion::sql::sqlparser::ast::FunctionArguments::List(
                datafusion::sql::sqlparser::ast::FunctionArgumentList {
                    duplicate_treatment: None,
                    args: Vec::new(),
                    clauses: Vec::new(),
                },
            );
        }
        let mut statements = super::parser::parse_statements(&format!("SELECT * FROM {call}"))?;
        if let Some(DFStatement::Statement(query)) = statements.pop_front() {
            s = query;
        }
    }
    if let Statement::Merge(merge) = s.as_mut() {
        expand_merge_stars(state, merge, variables).await?;
    }
    if let Statement::Insert(insert) = s.as_mut() {
        insert_by_name(state, insert, variables).await?;
        expand_insert_defaults(state, insert, variables).await?;
    }
    super::files::register_files(state, &s).await?;
    let names = name_context(state);
    super::dml::as_merge(&mut s, &names)?;
    let pending = rewrite(&mut s, &names, variables)?;
    if !pending.at_clauses.is_empty() {
        let mut targets = Vec::new();
        for clause in pending.at_clauses {
            targets.push(at_target(state, clause.is_version, clause.expr).await?);
        }
        apply_at_targets(&mut s, &targets);
    }
    // `ORDER BY ALL` of a query, and of the query of CREATE VIEW, CREATE TABLE
    // AS and INSERT ... SELECT (a view stores the text as written, with ALL).
    let query = match s.as_mut() {
        Statement::Query(q) => Some(q),
        Statement::CreateView(view) => Some(&mut view.query),
        Statement::CreateTable(create) => create.query.as_mut(),
        Statement::Insert(insert) => insert.source.as_mut(),
        _ => None,
    };
    if let Some(q) = query
        && order_by_all(q)
    {
        let width = query_width(state, q).await?;
        expand_order_by_all(q, width);
    }
    Ok(DFStatement::Statement(s))
}

/// `INSERT INTO t BY NAME <query>` (marked by [`super::sugar`]): the query's
/// columns go to the target's columns of the same names, the others get their
/// defaults, as in DuckDB.
async fn insert_by_name(
    state: &SessionState,
    insert: &mut datafusion::sql::sqlparser::ast::Insert,
    variables: &Variables,
) -> Result<()> {
    let marker = super::sugar::BY_NAME_MARKER.trim_matches('"');
    let by_name =
        matches!(insert.columns.as_slice(), [c] if c.to_string().trim_matches('"') == marker);
    if !by_name {
        return Ok(());
    }
    let Some(source) = insert.source.as_ref() else {
        return Err(Error::Unsupported(
            "INSERT ... BY NAME needs a query".into(),
        ));
    };
    let (plan, _) = Box::pin(plan_sql(state, &source.to_string(), variables)).await?;
    insert.columns = plan
        .schema()
        .fields()
        .iter()
        .map(|f| {
            datafusion::sql::sqlparser::ast::ObjectName::from(vec![
                datafusion::sql::sqlparser::ast::Ident::with_quote('"', f.name().as_str()),
            ])
        })
        .collect();
    Ok(())
}

/// `INSERT INTO t DEFAULT VALUES` and the `DEFAULT` keyword in a `VALUES` row of an
/// INSERT, which DataFusion does not plan: each becomes the column's default expression
/// (`NULL` for a column without one), as DuckDB inserts it.
async fn expand_insert_defaults(
    state: &SessionState,
    insert: &mut datafusion::sql::sqlparser::ast::Insert,
    variables: &Variables,
) -> Result<()> {
    use datafusion::sql::sqlparser::ast::{TableObject, Value, Values};
    let is_default = |e: &Expr| matches!(e, Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("DEFAULT"));
    let default_values = insert.source.is_none();
    let uses_default = match insert.source.as_deref().map(|q| q.body.as_ref()) {
        Some(SetExpr::Values(values)) => {
            values.rows.iter().any(|r| r.content.iter().any(is_default))
        }
        _ => false,
    };
    if !default_values && !uses_default {
        return Ok(());
    }
    let TableObject::TableName(name) = &insert.table else {
        return Ok(());
    };
    let (plan, _) = Box::pin(plan_sql(state, &format!("SELECT * FROM {name}"), variables)).await?;
    let mut source = None;
    datafusion::common::tree_node::TreeNode::apply(&plan, |node| {
        if let LogicalPlan::TableScan(scan) = node {
            source = Some(Arc::clone(&scan.source));
            return Ok(datafusion::common::tree_node::TreeNodeRecursion::Stop);
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })?;
    let Some(source) = source else {
        return Ok(());
    };
    let schema = source.schema();
    let unparser = datafusion::sql::unparser::Unparser::default();
    let default_of = |column: &str| -> Result<Expr> {
        match source.get_column_default(column) {
            Some(expr) => Ok(unparser.expr_to_sql(expr)?),
            None => Ok(Expr::value(Value::Null)),
        }
    };
    let targets: Vec<String> = if insert.columns.is_empty() {
        schema.fields().iter().map(|f| f.name().clone()).collect()
    } else {
        insert
            .columns
            .iter()
            .map(|c| match c.0.last().and_then(|p| p.as_ident()) {
                Some(i) => i.value.clone(),
                None => c.to_string(),
            })
            .collect()
    };
    if default_values {
        let row = targets
            .iter()
            .map(|c| default_of(c))
            .collect::<Result<Vec<_>>>()?;
        insert.source = Some(Box::new(Query {
            body: Box::new(SetExpr::Values(Values {
                explicit_row: false,
                value_keyword: false,
                rows: vec![datafusion::sql::sqlparser::ast::Parens {
                    opening_token: datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                    content: row,
                    closing_token: datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                }],
            })),
            ..empty_query()
        }));
        return Ok(());
    }
    if let Some(SetExpr::Values(values)) = insert.source.as_deref_mut().map(|q| q.body.as_mut()) {
        for row in &mut values.rows {
            for (i, e) in row.content.iter_mut().enumerate() {
                if is_default(e) {
                    let Some(column) = targets.get(i) else {
                        return Err(Error::Unsupported(format!(
                            "INSERT INTO {name}: DEFAULT in position {} of a row, but the table has {} columns",
                            i + 1,
                            targets.len()
                        )));
                    };
                    *e = default_of(column)?;
                }
            }
        }
    }
    Ok(())
}

/// DuckDB's `MERGE ... INSERT *` / `UPDATE SET *` (parsed as placeholders, see
/// [`super::copy::rewrite_merge_stars`]): every column, by position, from the
/// source's columns.
async fn expand_merge_stars(
    state: &SessionState,
    merge: &mut datafusion::sql::sqlparser::ast::Merge,
    variables: &Variables,
) -> Result<()> {
    use super::copy::MERGE_STAR;
    use datafusion::sql::sqlparser::ast::{
        Assignment, AssignmentTarget, Ident, MergeAction, MergeInsertKind, ObjectName, TableFactor,
    };
    let is_star = |e: &Expr| matches!(e, Expr::Identifier(i) if i.value == MERGE_STAR);
    let has_star = merge.clauses.iter().any(|c| match &c.action {
        MergeAction::Insert(i) => matches!(&i.kind, MergeInsertKind::Values(v)
            if v.rows.iter().any(|r| r.content.iter().any(is_star))),
        MergeAction::Update(u) => u.assignments.iter().any(|a| is_star(&a.value)),
        MergeAction::Delete { .. } => false,
    });
    if !has_star {
        return Ok(());
    }
    let columns = |plan: &LogicalPlan| -> Vec<String> {
        plan.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    };
    let (target_plan, _) = Box::pin(plan_sql(
        state,
        &format!("SELECT * FROM {}", merge.table),
        variables,
    ))
    .await?;
    let (source_plan, _) = Box::pin(plan_sql(
        state,
        &format!("SELECT * FROM {}", merge.source),
        variables,
    ))
    .await?;
    let (target, source) = (columns(&target_plan), columns(&source_plan));
    let qualifier = match &merge.source {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            a.name.clone()
        }
        TableFactor::Table { name, .. } => match name.0.last().and_then(|p| p.as_ident()) {
            Some(i) => i.clone(),
            None => {
                return Err(Error::Unsupported(
                    "MERGE ... * needs a named source".into(),
                ));
            }
        },
        _ => {
            return Err(Error::Unsupported(
                "MERGE ... INSERT * / UPDATE SET * needs an alias on the source".into(),
            ));
        }
    };
    let source_column = |name: &str| {
        Expr::CompoundIdentifier(vec![qualifier.clone(), Ident::with_quote('"', name)])
    };
    for clause in &mut merge.clauses {
        match &mut clause.action {
            MergeAction::Insert(insert) => {
                if let MergeInsertKind::Values(values) = &mut insert.kind {
                    for row in &mut values.rows {
                        if row.content.iter().any(is_star) {
                            row.content = source.iter().map(|c| source_column(c)).collect();
                        }
                    }
                }
            }
            MergeAction::Update(update) if update.assignments.iter().any(|a| is_star(&a.value)) => {
                if target.len() != source.len() {
                    return Err(Error::Unsupported(format!(
                        "MERGE ... UPDATE SET *: the table has {} columns but the source {}",
                        target.len(),
                        source.len()
                    )));
                }
                update.assignments = target
                    .iter()
                    .zip(&source)
                    .map(|(t, s)| Assignment {
                        target: AssignmentTarget::ColumnName(ObjectName::from(vec![
                            Ident::with_quote('"', t.as_str()),
                        ])),
                        value: source_column(s),
                    })
                    .collect();
            }
            _ => {}
        }
    }
    Ok(())
}

/// The lake catalog and schema a `CREATE VIEW` puts its view in, when it names
/// another than the current one (`CREATE VIEW lake.v AS ...` from `memory`).
fn view_home(state: &SessionState, statement: &DFStatement) -> Option<(String, String)> {
    let DFStatement::Statement(s) = statement else {
        return None;
    };
    let Statement::CreateView(view) = s.as_ref() else {
        return None;
    };
    let names = name_context(state);
    let parts: Vec<String> = view
        .name
        .0
        .iter()
        .map(|p| p.as_ident().map(|i| i.value.clone()))
        .collect::<Option<_>>()?;
    let (catalog, schema) = match parts.as_slice() {
        [c, s, _] => (
            names.catalogs.get(&c.to_ascii_lowercase())?.0.clone(),
            s.clone(),
        ),
        [x, _] if !names.current_schemas.contains(&x.to_ascii_lowercase()) => {
            names.catalogs.get(&x.to_ascii_lowercase())?.clone()
        }
        _ => return None,
    };
    let current = catalog.eq_ignore_ascii_case(&names.current_catalog)
        && schema.eq_ignore_ascii_case(&names.current_schema);
    (names.lakes.contains(&catalog.to_ascii_lowercase()) && !current).then_some((catalog, schema))
}

/// Parse one DuckDB statement, rewrite and plan it. Returns the plan and the
/// rewritten SQL text (names resolved), which view definitions store.
pub async fn plan_sql(
    state: &SessionState,
    sql: &str,
    variables: &Variables,
) -> Result<(LogicalPlan, String)> {
    let mut statements = parse_statements(sql)?;
    let statement = match (statements.pop_front(), statements.is_empty()) {
        (Some(s), true) => s,
        (None, _) => return Err(Error::Unsupported("empty statement".into())),
        (Some(_), false) => {
            return Err(Error::Unsupported(
                "several statements in one call; run them one by one (or as a script)".into(),
            ));
        }
    };
    let statement = match &statement {
        DFStatement::Statement(s) => match s.as_ref() {
            Statement::Execute {
                name: Some(name),
                parameters,
                immediate: false,
                ..
            } => executed_statement(&name.to_string(), parameters, variables)?,
            _ => statement,
        },
        _ => statement,
    };
    if let Some(plan) = super::statements::duckdb_statement(state, &statement, variables).await? {
        return Ok((plan, sql.to_string()));
    }
    // DuckDB binds a view's query in the view's own catalog and schema.
    let view_state;
    let state = match view_home(state, &statement) {
        Some((catalog, schema)) => {
            let mut home = state.clone();
            let options = home.config_mut().options_mut();
            options.catalog.default_catalog = catalog;
            options.catalog.default_schema = schema;
            view_state = home;
            &view_state
        }
        None => state,
    };
    let statement = prepare_statement(state, statement, variables).await?;
    let text = statement.to_string();
    let plan = state.statement_to_plan(statement).await?;
    Ok((plan, text))
}
