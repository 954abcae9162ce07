//! Rewriting a parsed DuckDB statement into one that DataFusion plans with
//! DuckDB's meaning.
//!
//! Done on sqlparser's AST before planning, so DataFusion's own planner does
//! the rest:
//! - **names as DuckDB resolves them**: `x.t` is table `t` in the default schema
//!   of attached catalog `x` unless `x` is also a schema of the current catalog
//!   (then DuckDB refuses the ambiguity, and so does lakeq);
//! - **FROM-first** queries (`FROM t WHERE ...`) select `*`;
//! - **`ORDER BY ALL`** becomes positional `ORDER BY 1, 2, ...` (DataFusion's own
//!   handling drops the ordering of set operations and fails on expressions);
//! - **time travel**: `t AT (VERSION => expr)` / `AT (TIMESTAMP => expr)` with
//!   any constant expression, evaluated first, then turned into the table name
//!   the schema provider resolves (`"t@@version=3"`);
//! - **`getvariable('x')`** becomes the value `SET VARIABLE x = ...` stored;
//! - **`count_star()`** (how DuckDB stores `count(*)` in view SQL) becomes `count(*)`.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    ObjectName, ObjectNamePart, OrderByKind, Query, Select, SelectItem, SetExpr, Statement,
    TableFactor, TableVersion, Value, VisitMut, VisitorMut, WildcardAdditionalOptions,
};
use datafusion::sql::unparser::Unparser;

use crate::error::{Error, Result};
use crate::provider::catalog::{AT_MARKER, HISTORIC_SCHEMA};

/// A lookup of a lake table's column names by (catalog, schema, table).
type ColumnLookup = dyn Fn(&str, &str, &str) -> Option<Vec<String>> + Send + Sync;

/// The columns of a lake table, by (catalog, schema, table); `None` when no
/// lake table has that name.
#[derive(Clone, Default)]
pub struct TableColumns(Option<std::sync::Arc<ColumnLookup>>);

impl TableColumns {
    /// Wrap a lookup.
    pub fn new(
        f: impl Fn(&str, &str, &str) -> Option<Vec<String>> + Send + Sync + 'static,
    ) -> Self {
        Self(Some(std::sync::Arc::new(f)))
    }

    fn get(&self, catalog: &str, schema: &str, table: &str) -> Option<Vec<String>> {
        self.0.as_ref().and_then(|f| f(catalog, schema, table))
    }
}

impl std::fmt::Debug for TableColumns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TableColumns")
    }
}

/// A lookup of a macro stored in a lake by (catalog, schema, name).
type MacroLookupFn =
    dyn Fn(&str, &str, &str) -> Option<std::sync::Arc<crate::spec::rows::MacroRow>> + Send + Sync;

/// The DuckDB macros stored in the attached lakes.
#[derive(Clone, Default)]
pub struct MacroLookup(Option<std::sync::Arc<MacroLookupFn>>);

impl MacroLookup {
    /// Wrap a lookup.
    pub fn new(
        f: impl Fn(&str, &str, &str) -> Option<std::sync::Arc<crate::spec::rows::MacroRow>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self(Some(std::sync::Arc::new(f)))
    }

    fn get(
        &self,
        catalog: &str,
        schema: &str,
        name: &str,
    ) -> Option<std::sync::Arc<crate::spec::rows::MacroRow>> {
        self.0.as_ref().and_then(|f| f(catalog, schema, name))
    }
}

impl std::fmt::Debug for MacroLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacroLookup")
    }
}

/// What name resolution needs to know about the session.
#[derive(Debug, Clone, Default)]
pub struct NameContext {
    /// DuckDB macros of the attached lakes.
    pub macros: MacroLookup,
    /// Columns of lake tables (to tell DuckDB's virtual columns from real ones).
    pub table_columns: TableColumns,
    /// Attached catalogs, by lower-case name, with their default schema.
    pub catalogs: HashMap<String, (String, String)>,
    /// The current catalog (`USE`).
    pub current_catalog: String,
    /// Schemas of the current catalog, lower-case.
    pub current_schemas: HashSet<String>,
    /// The current schema.
    pub current_schema: String,
    /// Attached catalogs that are DuckLakes, lower-case.
    pub lakes: HashSet<String>,
    /// Tables of DuckDB's `temp.main` (`CREATE TEMP TABLE`), lower-case: an
    /// unqualified name finds them first, as in DuckDB.
    pub temp_tables: HashSet<String>,
}

/// DuckDB's virtual columns of a DuckLake table, as a query names them.
pub const VIRTUAL_COLUMNS: [&str; 4] = ["rowid", "snapshot_id", "filename", "file_row_number"];

impl NameContext {
    /// The columns of the lake table a (one- to three-part) name in a `FROM`
    /// names, resolved as DuckDB resolves it; `None` when it names no lake table.
    pub fn lake_table_columns(&self, parts: &[String]) -> Option<Vec<String>> {
        let current = self.current_catalog.clone();
        let first_lower = parts.first().map(|p| p.to_ascii_lowercase());
        let first_is_lake = first_lower.as_ref().is_some_and(|l| self.lakes.contains(l));
        let (catalog, schema, table) = match parts {
            [t] => (current, self.current_schema.clone(), t.clone()),
            [c, t] if first_is_lake => {
                let schema = first_lower
                    .as_ref()
                    .and_then(|l| self.catalogs.get(l))
                    .map_or_else(|| "main".to_string(), |(_, s)| s.clone());
                (c.clone(), schema, t.clone())
            }
            [s, t] => (current, s.clone(), t.clone()),
            [c, s, t] => (c.clone(), s.clone(), t.clone()),
            _ => return None,
        };
        self.table_columns.get(&catalog, &schema, &table)
    }
}

/// A time-travel clause found in a statement, to be evaluated.
#[derive(Debug, Clone)]
pub struct AtClause {
    /// `VERSION` (true) or `TIMESTAMP` (false).
    pub is_version: bool,
    /// The target expression.
    pub expr: Expr,
}

const PENDING: &str = "pending=";

fn part_ident(part: &ObjectNamePart) -> Option<&Ident> {
    part.as_ident()
}

/// The first, synchronous pass.
struct FirstPass<'a> {
    names: &'a NameContext,
    variables: &'a HashMap<String, ScalarValue>,
    at_clauses: Vec<AtClause>,
    error: Option<Error>,
    /// How many macro expansions deep the pass is.
    macro_depth: usize,
    /// Names of the statement's CTEs (lower-case), which hide temporary tables.
    ctes: HashSet<String>,
}

impl FirstPass<'_> {
    fn fail(&mut self, e: Error) -> ControlFlow<()> {
        self.error = Some(e);
        ControlFlow::Break(())
    }

    /// `x.t` → `x.<default schema>.t` when `x` is an attached catalog.
    fn resolve_two_part(&mut self, name: &mut ObjectName) -> ControlFlow<()> {
        let [first, table] = name.0.as_slice() else {
            return ControlFlow::Continue(());
        };
        let table = table.clone();
        let Some(first) = part_ident(first).cloned() else {
            return ControlFlow::Continue(());
        };
        let key = first.value.to_ascii_lowercase();
        let Some((catalog, default_schema)) = self.names.catalogs.get(&key).cloned() else {
            return ControlFlow::Continue(());
        };
        if self.names.current_schemas.contains(&key) {
            return self.fail(Error::Unsupported(format!(
                "ambiguous reference to catalog or schema \"{}\": use a fully qualified path \
                 like \"{}.{}\"",
                first.value, self.names.current_catalog, first.value
            )));
        }
        name.0 = vec![
            ObjectNamePart::Identifier(Ident::with_quote('"', catalog)),
            ObjectNamePart::Identifier(Ident::with_quote('"', default_schema)),
            table,
        ];
        ControlFlow::Continue(())
    }
}

fn arg_expr(arg: &FunctionArg) -> Option<(Option<String>, &Expr)> {
    match arg {
        FunctionArg::Named {
            name,
            arg: FunctionArgExpr::Expr(e),
            ..
        } => Some((Some(name.value.to_ascii_uppercase()), e)),
        FunctionArg::ExprNamed {
            name: Expr::Identifier(name),
            arg: FunctionArgExpr::Expr(e),
            ..
        } => Some((Some(name.value.to_ascii_uppercase()), e)),
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some((None, e)),
        _ => None,
    }
}

fn function_args(f: &Function) -> Vec<&FunctionArg> {
    match &f.args {
        FunctionArguments::List(list) => list.args.iter().collect(),
        _ => Vec::new(),
    }
}

fn simple_function_name(f: &Function) -> Option<String> {
    match f.name.0.as_slice() {
        [one] => part_ident(one).map(|i| i.value.to_ascii_lowercase()),
        _ => None,
    }
}

/// An expression in DuckDB SQL.
pub(crate) fn parse_expression(sql: &str) -> Result<Expr> {
    let mut statements = super::parser::parse_statements(&format!("SELECT {sql}"))?;
    if let Some(datafusion::sql::parser::Statement::Statement(statement)) = statements.pop_front()
        && let Statement::Query(query) = *statement
        && let SetExpr::Select(select) = *query.body
        && let Some(SelectItem::UnnamedExpr(e)) = select.projection.into_iter().next()
    {
        return Ok(e);
    }
    Err(Error::Unsupported(format!("not an expression: {sql}")))
}

/// A ScalarValue as a SQL literal expression.
pub fn literal(value: &ScalarValue) -> Result<Expr> {
    Unparser::default()
        .expr_to_sql(&datafusion::logical_expr::lit(value.clone()))
        .map_err(Error::from)
}

/// Replace the parameters of a macro body (unquoted identifiers naming them)
/// by the call's arguments.
struct Substitute<'a> {
    values: &'a HashMap<String, Expr>,
}

impl VisitorMut for Substitute<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Identifier(i) = expr
            && let Some(v) = self.values.get(&i.value.to_ascii_lowercase())
        {
            *expr = Expr::Nested(Box::new(v.clone()));
        }
        ControlFlow::Continue(())
    }
}

/// A macro parameter's default as DuckDB stores it: the value's text (`it's me`
/// for `'it''s me'`, `2020-01-01` for a DATE, `5`), typed by a column lakeq does
/// not read yet. A number or boolean is that literal, anything else a string
/// (never an expression: `2020-01-01` is not arithmetic).
fn default_value(text: &str) -> Expr {
    let t = text.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    let numeric = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|&c| c == '.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit());
    if numeric {
        let number = Expr::value(Value::Number(digits.to_string(), false));
        return if t.starts_with('-') {
            Expr::UnaryOp {
                op: datafusion::sql::sqlparser::ast::UnaryOperator::Minus,
                expr: Box::new(number),
            }
        } else {
            number
        };
    }
    match t.to_ascii_lowercase().as_str() {
        "true" => Expr::value(Value::Boolean(true)),
        "false" => Expr::value(Value::Boolean(false)),
        _ => Expr::value(Value::SingleQuotedString(text.to_string())),
    }
}

/// Deepest nesting of macros calling macros.
const MAX_MACRO_DEPTH: usize = 32;

impl FirstPass<'_> {
    /// The (catalog, schema, name) a function name refers to, for macros.
    fn macro_target(&self, name: &ObjectName) -> Option<(String, String, String)> {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|p| p.as_ident().map(|i| i.value.clone()))
            .collect::<Option<_>>()?;
        let lower = |s: &String| s.to_ascii_lowercase();
        Some(match parts.as_slice() {
            [f] => (
                self.names.current_catalog.clone(),
                self.names.current_schema.clone(),
                f.clone(),
            ),
            [c, f] if self.names.lakes.contains(&lower(c)) => (c.clone(), "main".into(), f.clone()),
            [s, f] => (self.names.current_catalog.clone(), s.clone(), f.clone()),
            [c, s, f] => (c.clone(), s.clone(), f.clone()),
            _ => return None,
        })
    }

    /// The argument values of a macro call: positional in order, named by name,
    /// the rest from defaults. `Err` names what is wrong.
    fn macro_arguments(
        &self,
        name: &str,
        implementation: &crate::spec::rows::MacroImplRow,
        args: &[FunctionArg],
    ) -> Result<HashMap<String, Expr>> {
        let mut values: HashMap<String, Expr> = HashMap::new();
        let mut positional = 0;
        for arg in args {
            match arg_expr(arg) {
                Some((None, e)) => {
                    let Some((param, _)) = implementation.parameters.get(positional) else {
                        return Err(Error::Unsupported(format!(
                            "macro {name} takes {} arguments",
                            implementation.parameters.len()
                        )));
                    };
                    values.insert(param.to_ascii_lowercase(), e.clone());
                    positional += 1;
                }
                Some((Some(n), e)) => {
                    values.insert(n.to_ascii_lowercase(), e.clone());
                }
                None => {
                    return Err(Error::Unsupported(format!(
                        "macro {name}: argument {arg} is not an expression"
                    )));
                }
            }
        }
        for (param, default) in &implementation.parameters {
            let key = param.to_ascii_lowercase();
            if values.contains_key(&key) {
                continue;
            }
            let Some(default) = default else {
                return Err(Error::Unsupported(format!(
                    "macro {name} needs a value for parameter {param}"
                )));
            };
            values.insert(key, default_value(default));
        }
        // A typed parameter (`m(x INTEGER)`): DuckDB casts the argument to its type.
        for ((param, _), ty) in implementation
            .parameters
            .iter()
            .zip(&implementation.parameter_types)
        {
            let Some(ty) = ty else { continue };
            let Some(sql_type) = macro_parameter_sql_type(ty) else {
                return Err(Error::Unsupported(format!(
                    "macro {name}: parameter {param} is declared {ty}, a type lakeq cannot cast \
                     macro arguments to yet"
                )));
            };
            if let Some(value) = values.get_mut(&param.to_ascii_lowercase()) {
                *value = parse_expression(&format!("CAST(({value}) AS {sql_type})"))?;
            }
        }
        Ok(values)
    }

    /// The implementation of macro `m` for `args` (DuckDB overloads by count).
    fn macro_impl<'m>(
        m: &'m crate::spec::rows::MacroRow,
        kind: &str,
        args: &[FunctionArg],
    ) -> Option<&'m crate::spec::rows::MacroImplRow> {
        let positional = args
            .iter()
            .filter(|a| matches!(arg_expr(a), Some((None, _))))
            .count();
        m.impls.iter().filter(|i| i.kind == kind).find(|i| {
            let required = i.parameters.iter().filter(|(_, d)| d.is_none()).count();
            required <= args.len() && positional <= i.parameters.len()
        })
    }

    /// A scalar macro call, expanded; `None` when `f` is no macro.
    fn expand_scalar_macro(&mut self, f: &Function) -> Option<Result<Expr>> {
        let (catalog, schema, name) = self.macro_target(&f.name)?;
        let m = self.names.macros.get(&catalog, &schema, &name)?;
        let args = function_args(f).into_iter().cloned().collect::<Vec<_>>();
        let Some(implementation) = Self::macro_impl(&m, "scalar", &args) else {
            return Some(Err(Error::Unsupported(format!(
                "macro {name} has no implementation taking {} arguments",
                args.len()
            ))));
        };
        if self.macro_depth >= MAX_MACRO_DEPTH {
            return Some(Err(Error::Unsupported(format!(
                "macro {name} expands more than {MAX_MACRO_DEPTH} levels deep"
            ))));
        }
        Some((|| {
            let values = self.macro_arguments(&name, implementation, &args)?;
            let mut body = parse_expression(&implementation.sql)?;
            let _ = body.visit(&mut Substitute { values: &values });
            self.macro_depth += 1;
            let _ = body.visit(&mut *self);
            self.macro_depth -= 1;
            if let Some(e) = self.error.take() {
                return Err(e);
            }
            Ok(Expr::Nested(Box::new(body)))
        })())
    }

    /// DuckDB's stored SQL names built-in functions with their schema
    /// (`main.list_apply(...)`, `system.main.f`, `pg_catalog.f`): the function
    /// itself, unless a macro of that name exists there.
    fn unqualify_system_function(&self, f: &mut Function) {
        let parts: Vec<String> = f
            .name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.to_ascii_lowercase()))
            .collect();
        let qualified = match parts.as_slice() {
            [s, _] => s == "main" || s == "pg_catalog",
            [c, s, _] => c == "system" && (s == "main" || s == "pg_catalog"),
            _ => false,
        };
        if !qualified || parts.len() != f.name.0.len() {
            return;
        }
        if let Some((catalog, schema, name)) = self.macro_target(&f.name)
            && self.names.macros.get(&catalog, &schema, &name).is_some()
        {
            return;
        }
        if let Some(last) = f.name.0.last().cloned() {
            f.name.0 = vec![last];
        }
    }

    /// A table macro call (`FROM m(1)`), expanded into a subquery.
    fn expand_table_macro(&mut self, factor: &TableFactor) -> Option<Result<TableFactor>> {
        let TableFactor::Table {
            name,
            args: Some(args),
            alias,
            ..
        } = factor
        else {
            return None;
        };
        let (catalog, schema, macro_name) = self.macro_target(name)?;
        let m = self.names.macros.get(&catalog, &schema, &macro_name)?;
        let implementation = Self::macro_impl(&m, "table", &args.args)?;
        Some((|| {
            let values = self.macro_arguments(&macro_name, implementation, &args.args)?;
            let mut statements = super::parser::parse_statements(&implementation.sql)?;
            let Some(datafusion::sql::parser::Statement::Statement(statement)) =
                statements.pop_front()
            else {
                return Err(Error::Unsupported(format!(
                    "table macro {macro_name}: body is not a query"
                )));
            };
            let Statement::Query(mut query) = *statement else {
                return Err(Error::Unsupported(format!(
                    "table macro {macro_name}: body is not a query"
                )));
            };
            let _ = query.visit(&mut Substitute { values: &values });
            Ok(TableFactor::Derived {
                lateral: false,
                subquery: query,
                alias: alias.clone().or_else(|| {
                    Some(datafusion::sql::sqlparser::ast::TableAlias {
                        explicit: true,
                        name: Ident::new(macro_name.clone()),
                        columns: Vec::new(),
                        at: None,
                    })
                }),
                sample: None,
            })
        })())
    }

    /// DuckDB's virtual columns `rowid` and `snapshot_id`: when a query over one
    /// lake table names one the table has no real column for, the table is read
    /// with them (`"t@@rowid"`) and `*` leaves them out.
    fn expose_rowid(&mut self, query: &mut Query) {
        use datafusion::sql::sqlparser::ast::{ExcludeSelectItem, Visit};
        let SetExpr::Select(select) = query.body.as_mut() else {
            return;
        };
        hide_feed_columns(select);
        let [from] = select.from.as_mut_slice() else {
            return;
        };
        if !from.joins.is_empty() {
            return;
        }
        let mut find = super::dml::FindVirtual(Vec::new());
        let _ = select.projection.visit(&mut find);
        let _ = select.selection.visit(&mut find);
        let _ = query.order_by.visit(&mut find);
        if find.0.is_empty() {
            return;
        }
        let TableFactor::Table {
            name, args: None, ..
        } = &mut from.relation
        else {
            return;
        };
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
            .collect();
        let cte = match (parts.as_slice(), query.with.as_ref()) {
            ([only], Some(w)) => w
                .cte_tables
                .iter()
                .any(|c| c.alias.name.value.eq_ignore_ascii_case(only)),
            _ => false,
        };
        if cte {
            return;
        }
        let Some(columns) = self.names.lake_table_columns(&parts) else {
            return;
        };
        let is_real = |v: &str| columns.iter().any(|c| c.eq_ignore_ascii_case(v));
        if find.0.iter().all(|v| is_real(v)) {
            return;
        }
        if let Some(ObjectNamePart::Identifier(last)) = name.0.last_mut() {
            last.value = format!("{}{AT_MARKER}rowid", last.value);
            last.quote_style = Some('"');
        }
        let added: Vec<ObjectName> = VIRTUAL_COLUMNS
            .iter()
            .filter(|v| !is_real(v))
            .map(|v| ObjectName::from(vec![Ident::new(*v)]))
            .collect();
        for item in &mut select.projection {
            let options = match item {
                SelectItem::Wildcard(o) | SelectItem::QualifiedWildcard(_, o) => o,
                _ => continue,
            };
            let mut excluded = match options.opt_exclude.take() {
                None => Vec::new(),
                Some(ExcludeSelectItem::Single(one)) => vec![one],
                Some(ExcludeSelectItem::Multiple(many)) => many,
            };
            excluded.extend(added.iter().cloned());
            options.opt_exclude = Some(ExcludeSelectItem::Multiple(excluded));
        }
    }

    /// DuckLake's per-lake functions (`lake.snapshots()`, `table_changes(...)`
    /// after `USE lake`) become calls of the `ducklake_*` table functions with the
    /// lake (and schema) as leading arguments; named arguments take their places.
    fn table_function(
        &mut self,
        name: &mut ObjectName,
        args: &mut datafusion::sql::sqlparser::ast::TableFunctionArgs,
    ) -> ControlFlow<()> {
        use crate::dialect::lake_functions::{LAKE_MACROS, NAMED_PARAMETERS};
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
            .collect();
        let lower = |s: &String| s.to_ascii_lowercase();
        let (function, lake, schema) = match parts.as_slice() {
            [f] => (
                lower(f),
                self.names.current_catalog.clone(),
                self.names.current_schema.clone(),
            ),
            [c, f] if self.names.lakes.contains(&lower(c)) => {
                let (catalog, schema) = self
                    .names
                    .catalogs
                    .get(&lower(c))
                    .cloned()
                    .unwrap_or_else(|| (c.clone(), "main".into()));
                (lower(f), catalog, schema)
            }
            [s, f] => (lower(f), self.names.current_catalog.clone(), s.clone()),
            [c, s, f] => (lower(f), c.clone(), s.clone()),
            _ => return ControlFlow::Continue(()),
        };
        let string = |v: &str| {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::value(
                Value::SingleQuotedString(v.to_string()),
            )))
        };
        let mut target = function.clone();
        // DuckDB's function names are case-insensitive (`GLOB(...)`); DataFusion's
        // lookup is exact, and every function lakeq registers is lower-case.
        if let [ObjectNamePart::Identifier(ident)] = name.0.as_mut_slice()
            && ident.quote_style.is_none()
        {
            ident.value = ident.value.to_ascii_lowercase();
        }
        if let Some((_, ducklake_fn, with_schema)) =
            LAKE_MACROS.iter().find(|(m, _, _)| *m == function)
            && (parts.len() > 1 || self.names.lakes.contains(&lake.to_ascii_lowercase()))
        {
            let mut leading = vec![string(&lake)];
            if *with_schema {
                leading.push(string(&schema));
            }
            leading.append(&mut args.args);
            args.args = leading;
            target = (*ducklake_fn).to_string();
        } else if parts.len() > 1 {
            return ControlFlow::Continue(());
        }
        if let Some((_, positional, named)) = NAMED_PARAMETERS.iter().find(|(f, _, _)| *f == target)
        {
            let mut slots: Vec<Option<FunctionArg>> = vec![None; positional + named.len()];
            let mut next = 0;
            for arg in std::mem::take(&mut args.args) {
                let slot = match arg_expr(&arg) {
                    Some((Some(n), _)) => named
                        .iter()
                        .position(|p| p.eq_ignore_ascii_case(&n))
                        .map(|i| positional + i),
                    _ => {
                        next += 1;
                        Some(next - 1)
                    }
                };
                let Some(slot) = slot else {
                    return self.fail(Error::Unsupported(format!(
                        "{target}: unknown named argument in {arg}; it takes {}",
                        named.join(", ")
                    )));
                };
                // DuckDB refuses an explicit NULL for the size and count options of
                // its maintenance functions; a missing argument is NULL here.
                if let Some((Some(n), Expr::Value(v))) = arg_expr(&arg)
                    && matches!(v.value, Value::Null)
                    && target == "ducklake_merge_adjacent_files"
                {
                    return self.fail(Error::Unsupported(format!(
                        "{target}: the {n} option must be a non-null integer"
                    )));
                }
                let value = match arg_expr(&arg) {
                    Some((_, e)) => FunctionArg::Unnamed(FunctionArgExpr::Expr(e.clone())),
                    None => arg,
                };
                if let Some(s) = slots.get_mut(slot) {
                    *s = Some(value);
                }
            }
            while slots.last().is_some_and(Option::is_none) {
                slots.pop();
            }
            args.args = slots
                .into_iter()
                .map(|s| {
                    s.unwrap_or(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::value(
                        Value::Null,
                    ))))
                })
                .collect();
        }
        if target != function || parts.len() > 1 {
            name.0 = vec![ObjectNamePart::Identifier(Ident::new(target))];
        }
        ControlFlow::Continue(())
    }
}

impl VisitorMut for FirstPass<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name, args: None, ..
        } = factor
        {
            temp_table(self.names, &self.ctes, name);
        }
        if let Some(series) = series_function(factor) {
            *factor = series;
            return ControlFlow::Continue(());
        }
        if let Some(file) = super::files::file_reference(factor)
            && let TableFactor::Table { name, args, .. } = factor
        {
            *name = super::files::file_table_name(&file);
            *args = None;
            return ControlFlow::Continue(());
        }
        match self.expand_table_macro(factor) {
            Some(Ok(expanded)) => {
                *factor = expanded;
                return ControlFlow::Continue(());
            }
            Some(Err(e)) => return self.fail(e),
            None => {}
        }
        if let TableFactor::Table {
            name,
            args: Some(args),
            ..
        } = factor
        {
            return self.table_function(name, args);
        }
        if let Some(view) = information_schema_view(factor) {
            *factor = view;
            return ControlFlow::Continue(());
        }
        let TableFactor::Table { name, version, .. } = factor else {
            return ControlFlow::Continue(());
        };
        let Some(v) = version.take() else {
            return ControlFlow::Continue(());
        };
        let TableVersion::Function(Expr::Function(f)) = &v else {
            return self.fail(Error::Unsupported(format!(
                "table version clause '{v}'; lakeq reads DuckDB's AT (VERSION => n) and \
                 AT (TIMESTAMP => t)"
            )));
        };
        let args = function_args(f);
        let parsed = match (simple_function_name(f).as_deref(), args.as_slice()) {
            (Some("at"), [arg]) => arg_expr(arg),
            _ => None,
        };
        let Some((Some(kind), expr)) = parsed else {
            return self.fail(Error::Unsupported(format!(
                "time travel clause '{v}': use AT (VERSION => <n>) or AT (TIMESTAMP => <t>)"
            )));
        };
        let is_version = match kind.as_str() {
            "VERSION" => true,
            "TIMESTAMP" => false,
            other => {
                return self.fail(Error::Unsupported(format!(
                    "time travel by {other}: use AT (VERSION => <n>) or AT (TIMESTAMP => <t>)"
                )));
            }
        };
        let index = self.at_clauses.len();
        let mut expr = expr.clone();
        let _ = expr.visit(&mut *self);
        if self.error.is_some() {
            return ControlFlow::Break(());
        }
        self.at_clauses.push(AtClause { is_version, expr });
        if let Some(ObjectNamePart::Identifier(last)) = name.0.last_mut() {
            last.value = format!("{}{AT_MARKER}{PENDING}{index}", last.value);
            last.quote_style = Some('"');
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        self.resolve_two_part(relation)
    }

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_lowercase());
            }
        }
        if let SetExpr::Values(values) = query.body.as_mut() {
            for row in &mut values.rows {
                for expr in &mut row.content {
                    integer_literal_as_duckdb_types_it(expr);
                }
            }
        }
        self.expose_rowid(query);
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        // FROM-first: `FROM t` selects every column.
        if select.projection.is_empty() {
            select
                .projection
                .push(SelectItem::Wildcard(WildcardAdditionalOptions::default()));
        }
        // DuckDB's lateral column aliases (below): without a FROM, a name in the
        // select list may be an alias defined before it (`SELECT 'a' AS i, f(i)`).
        let user_aliases: HashSet<String> = select
            .projection
            .iter()
            .filter_map(|item| match item {
                SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        // Unaliased expressions get DuckDB's names, from the SQL as written
        // (before any rewrite below changes it).
        for item in &mut select.projection {
            if let SelectItem::UnnamedExpr(expr) = item
                && let Some(name) = super::naming::duckdb_name(expr)
            {
                *item = SelectItem::ExprWithAlias {
                    expr: std::mem::replace(expr, Expr::value(Value::Null)),
                    alias: Ident::with_quote('"', name),
                };
            }
            if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item {
                integer_literal_as_duckdb_types_it(expr);
            }
        }
        if select.from.is_empty() && !user_aliases.is_empty() {
            lateral_aliases(&mut select.projection, &user_aliases);
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        // `s.i` on a struct column, as sqlparser hands it over: a field access by an
        // identifier, which DataFusion takes only as a string (`s['i']`).
        if let Expr::CompoundFieldAccess { access_chain, .. } = expr {
            for access in access_chain.iter_mut() {
                if let datafusion::sql::sqlparser::ast::AccessExpr::Dot(Expr::Identifier(i)) =
                    access
                {
                    *access = datafusion::sql::sqlparser::ast::AccessExpr::Dot(Expr::value(
                        Value::SingleQuotedString(i.value.clone()),
                    ));
                }
            }
        }
        super::functions::duckdb_type_names(expr);
        super::functions::duckdb_interval_expression(expr);
        super::functions::round_before_integer_cast(expr);
        super::functions::duckdb_uuid(expr);
        super::functions::duckdb_blob(expr);
        super::functions::duckdb_varchar_cast(expr);
        super::functions::duckdb_average(expr);
        // DuckDB reads `1e20` as a DOUBLE (other literals with a point are DECIMAL).
        if let Expr::Value(v) = expr
            && let Value::Number(n, _) = &v.value
            && n.contains(['e', 'E'])
        {
            *expr = Expr::Cast {
                kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
                // From text: as a decimal, 1e300 would need a scale DataFusion lacks.
                expr: Box::new(Expr::value(Value::SingleQuotedString(n.clone()))),
                data_type: datafusion::sql::sqlparser::ast::DataType::Double(
                    datafusion::sql::sqlparser::ast::ExactNumberInfo::None,
                ),
                array: false,
                format: None,
            };
            return ControlFlow::Continue(());
        }
        let Expr::Function(f) = expr else {
            return ControlFlow::Continue(());
        };
        self.unqualify_system_function(f);
        // DuckDB stores lambda arguments in parentheses (`(lambda z: z[1])`),
        // which DataFusion's planner takes only bare.
        if let FunctionArguments::List(list) = &mut f.args {
            for arg in &mut list.args {
                if let FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Nested(inner))) = arg
                    && matches!(inner.as_ref(), Expr::Lambda(_))
                {
                    let lambda = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
                    *arg = FunctionArg::Unnamed(FunctionArgExpr::Expr(lambda));
                }
            }
        }
        super::functions::rename_aggregate(f);
        if let Some(rewritten) = super::functions::rewrite_call(
            f,
            &self.names.current_catalog,
            &self.names.current_schema,
        ) {
            *expr = rewritten;
            return ControlFlow::Continue(());
        }
        match simple_function_name(f).as_deref() {
            Some("count_star") if function_args(f).is_empty() => {
                f.name = ObjectName::from(vec![Ident::new("count")]);
                f.args = FunctionArguments::List(FunctionArgumentList {
                    duplicate_treatment: None,
                    args: vec![FunctionArg::Unnamed(FunctionArgExpr::Wildcard)],
                    clauses: Vec::new(),
                });
            }
            Some("getvariable") => {
                let args = function_args(f);
                let name = match args.as_slice() {
                    [arg] => match arg_expr(arg) {
                        Some((None, Expr::Value(v))) => match &v.value {
                            Value::SingleQuotedString(s) => Some(s.clone()),
                            _ => None,
                        },
                        _ => None,
                    },
                    _ => None,
                };
                let Some(name) = name else {
                    return self.fail(Error::Unsupported(
                        "getvariable takes the variable's name as a string literal".into(),
                    ));
                };
                let value = self
                    .variables
                    .get(&name.to_ascii_lowercase())
                    .cloned()
                    .unwrap_or(ScalarValue::Null);
                match literal(&value) {
                    Ok(e) => *expr = Expr::Nested(Box::new(e)),
                    Err(e) => return self.fail(e),
                }
            }
            _ => {
                let call = f.clone();
                match self.expand_scalar_macro(&call) {
                    Some(Ok(expanded)) => *expr = expanded,
                    Some(Err(e)) => return self.fail(e),
                    None => equals_arguments_are_comparisons(f),
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// `bool_and(x = 1)`: sqlparser reads `x = 1` in a call as a named argument;
/// DuckDB reads it (in anything but a macro or table function) as a comparison.
fn equals_arguments_are_comparisons(f: &mut Function) {
    use datafusion::sql::sqlparser::ast::FunctionArgOperator;
    let FunctionArguments::List(list) = &mut f.args else {
        return;
    };
    for arg in &mut list.args {
        let comparison = match arg {
            FunctionArg::Named {
                name,
                arg: FunctionArgExpr::Expr(value),
                operator: FunctionArgOperator::Equals,
            } => Some((Expr::Identifier(name.clone()), value.clone())),
            FunctionArg::ExprNamed {
                name,
                arg: FunctionArgExpr::Expr(value),
                operator: FunctionArgOperator::Equals,
            } => Some((name.clone(), value.clone())),
            _ => None,
        };
        if let Some((left, right)) = comparison {
            *arg = FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::BinaryOp {
                left: Box::new(left),
                op: datafusion::sql::sqlparser::ast::BinaryOperator::Eq,
                right: Box::new(right),
            }));
        }
    }
}

/// Replace names in each select item that are aliases of earlier items by their
/// expressions (not inside subqueries, whose names are their own).
fn lateral_aliases(projection: &mut [SelectItem], user_aliases: &HashSet<String>) {
    struct Replace<'a> {
        aliases: &'a HashMap<String, Expr>,
        depth: usize,
    }
    impl VisitorMut for Replace<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if self.depth == 0
                && let Expr::Identifier(i) = expr
                && let Some(e) = self.aliases.get(&i.value.to_ascii_lowercase())
            {
                *expr = Expr::Nested(Box::new(e.clone()));
            }
            ControlFlow::Continue(())
        }
    }
    let mut aliases: HashMap<String, Expr> = HashMap::new();
    for item in projection.iter_mut() {
        // A bare alias keeps its name as the column's.
        if let SelectItem::UnnamedExpr(Expr::Identifier(i)) = item
            && aliases.contains_key(&i.value.to_ascii_lowercase())
        {
            let name = i.clone();
            *item = SelectItem::ExprWithAlias {
                expr: Expr::Identifier(name.clone()),
                alias: name,
            };
        }
        if !aliases.is_empty()
            && let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item
        {
            let _ = e.visit(&mut Replace {
                aliases: &aliases,
                depth: 0,
            });
        }
        if let SelectItem::ExprWithAlias { expr, alias } = item
            && user_aliases.contains(&alias.value.to_ascii_lowercase())
        {
            aliases.insert(alias.value.to_ascii_lowercase(), expr.clone());
        }
    }
}

/// DuckDB's `information_schema.tables` / `.columns` list the user's objects with
/// DuckDB's type names; DataFusion's also list `information_schema` itself and
/// name Arrow types. A reference to either becomes a subquery that filters and
/// renames (reading the underlying view through a quoted name, which this
/// rewrite leaves alone).
fn information_schema_view(factor: &TableFactor) -> Option<TableFactor> {
    let TableFactor::Table {
        name,
        alias,
        args: None,
        version: None,
        ..
    } = factor
    else {
        return None;
    };
    let parts: Vec<&Ident> = name.0.iter().filter_map(|p| p.as_ident()).collect();
    let (catalog, schema, table) = match parts.as_slice() {
        [s, t] => (None, *s, *t),
        [c, s, t] => (Some(*c), *s, *t),
        _ => return None,
    };
    if schema.quote_style.is_some() || !schema.value.eq_ignore_ascii_case("information_schema") {
        return None;
    }
    let table_name = table.value.to_ascii_lowercase();
    let source = match catalog {
        Some(c) => format!("{c}.\"information_schema\".\"{table_name}\""),
        None => format!("\"information_schema\".\"{table_name}\""),
    };
    let select = match table_name.as_str() {
        "tables" => format!("SELECT * FROM {source} WHERE table_schema <> 'information_schema'"),
        // NOT NULL as the lake records it: lakeq's Arrow fields are all nullable.
        "columns" => format!(
            "SELECT * EXCLUDE (nn_catalog, nn_schema, nn_table, nn_column) \
             REPLACE (lakeq_duckdb_type(data_type) AS data_type, \
             ordinal_position + 1 AS ordinal_position, \
             CASE WHEN nn_column IS NULL THEN is_nullable ELSE 'NO' END AS is_nullable) \
             FROM {source} LEFT JOIN __lakeq_not_null_columns() \
             ON table_catalog = nn_catalog AND table_schema = nn_schema \
             AND table_name = nn_table AND column_name = nn_column \
             WHERE table_schema <> 'information_schema'"
        ),
        "schemata" => format!("SELECT * FROM {source} WHERE schema_name <> 'information_schema'"),
        _ => return None,
    };
    let mut statements = super::parser::parse_statements(&select).ok()?;
    let datafusion::sql::parser::Statement::Statement(statement) = statements.pop_front()? else {
        return None;
    };
    let Statement::Query(query) = *statement else {
        return None;
    };
    let alias = alias.clone().or_else(|| {
        Some(datafusion::sql::sqlparser::ast::TableAlias {
            explicit: true,
            name: Ident::new(table_name),
            columns: Vec::new(),
            at: None,
        })
    });
    Some(TableFactor::Derived {
        lateral: false,
        subquery: query,
        alias,
        sample: None,
    })
}

/// DuckDB's `range(...)` / `generate_series(...)` name their column after the
/// function; DataFusion's name it `value`. The call becomes a subquery that
/// renames it (DataFusion's functions are registered again as `__lakeq_range`
/// and `__lakeq_generate_series`, see [`super::functions::register`]).
fn series_function(factor: &TableFactor) -> Option<TableFactor> {
    let TableFactor::Table {
        name,
        args: Some(args),
        alias,
        ..
    } = factor
    else {
        return None;
    };
    let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
        return None;
    };
    let function = ident.value.to_ascii_lowercase();
    if ident.quote_style.is_some() || !matches!(function.as_str(), "range" | "generate_series") {
        return None;
    }
    let args_sql = args
        .args
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let select = format!("SELECT value AS {function} FROM __lakeq_{function}({args_sql})");
    let mut statements = super::parser::parse_statements(&select).ok()?;
    let datafusion::sql::parser::Statement::Statement(statement) = statements.pop_front()? else {
        return None;
    };
    let Statement::Query(query) = *statement else {
        return None;
    };
    Some(TableFactor::Derived {
        lateral: false,
        subquery: query,
        alias: alias.clone().or_else(|| {
            Some(datafusion::sql::sqlparser::ast::TableAlias {
                explicit: true,
                name: Ident::new(function),
                columns: Vec::new(),
                at: None,
            })
        }),
        sample: None,
    })
}

/// A bare integer literal that fits 32 bits is an INTEGER in DuckDB (a BIGINT
/// in DataFusion): as a result column or a VALUES cell it gets DuckDB's type, so
/// `CREATE TABLE t AS SELECT 1 AS x` and `COPY (SELECT 200 AS c) TO ...` store
/// INTEGER columns as DuckDB does. (Literals inside expressions are left alone:
/// `ORDER BY 1` and `LIMIT 10` must stay literals.)
fn integer_literal_as_duckdb_types_it(expr: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{CastKind, DataType, UnaryOperator};
    let digits = match &*expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => Some(n.clone()),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: inner,
        } => match inner.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => Some(format!("-{n}")),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    };
    if digits.is_some_and(|d| d.parse::<i32>().is_ok()) {
        let literal = std::mem::replace(expr, Expr::value(Value::Null));
        *expr = Expr::Cast {
            kind: CastKind::Cast,
            expr: Box::new(literal),
            data_type: DataType::Integer(None),
            array: false,
            format: None,
        };
    }
}

/// The change feed's `snapshot_id` and `rowid` are virtual columns in DuckDB:
/// `*` over `table_insertions(...)` / `table_deletions(...)` leaves them out.
fn hide_feed_columns(select: &mut Select) {
    use datafusion::sql::sqlparser::ast::{ExcludeSelectItem, SelectItemQualifiedWildcardKind};
    const FEEDS: [&str; 4] = [
        "ducklake_table_insertions",
        "ducklake_table_deletions",
        "table_insertions",
        "table_deletions",
    ];
    let mut names: Vec<String> = Vec::new();
    let mut relations = 0;
    for twj in &select.from {
        for factor in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            relations += 1;
            let TableFactor::Table {
                name,
                args: Some(_),
                alias,
                ..
            } = factor
            else {
                continue;
            };
            let Some(function) = name.0.last().and_then(|p| p.as_ident()) else {
                continue;
            };
            if FEEDS.contains(&function.value.to_ascii_lowercase().as_str()) {
                names.push(
                    alias
                        .as_ref()
                        .map_or_else(|| function.value.clone(), |a| a.name.value.clone()),
                );
            }
        }
    }
    if names.is_empty() {
        return;
    }
    let hidden = || {
        vec![
            ObjectName::from(vec![Ident::new("snapshot_id")]),
            ObjectName::from(vec![Ident::new("rowid")]),
        ]
    };
    for item in &mut select.projection {
        let options = match item {
            SelectItem::Wildcard(o) if relations == 1 => o,
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(q), o)
                if q.0
                    .last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| names.iter().any(|n| n.eq_ignore_ascii_case(&i.value))) =>
            {
                o
            }
            _ => continue,
        };
        let mut excluded = match options.opt_exclude.take() {
            None => Vec::new(),
            Some(ExcludeSelectItem::Single(one)) => vec![one],
            Some(ExcludeSelectItem::Multiple(many)) => many,
        };
        excluded.extend(hidden());
        options.opt_exclude = Some(ExcludeSelectItem::Multiple(excluded));
    }
}

/// The second pass: pending time-travel names get their evaluated targets.
struct SecondPass<'a> {
    targets: &'a [String],
}

impl VisitorMut for SecondPass<'_> {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        if let Some(ObjectNamePart::Identifier(last)) = relation.0.last_mut()
            && last.value.contains(AT_MARKER)
        {
            last.value = last
                .value
                .split(AT_MARKER)
                .map(|part| {
                    part.strip_prefix(PENDING)
                        .and_then(|i| i.parse::<usize>().ok())
                        .and_then(|i| self.targets.get(i))
                        .map_or(part, String::as_str)
                })
                .collect::<Vec<_>>()
                .join(AT_MARKER);
            // The schema is looked up as of the snapshot too (a view over
            // `s1.t` read at a version from before `DROP SCHEMA s1`).
            let n = relation.0.len();
            if n >= 2
                && let Some(ObjectNamePart::Identifier(schema)) = relation.0.get_mut(n - 2)
                && !schema.value.contains(AT_MARKER)
            {
                if schema.quote_style.is_none() {
                    schema.value = schema.value.to_lowercase();
                }
                schema.value = format!("{}{HISTORIC_SCHEMA}", schema.value);
                schema.quote_style = Some('"');
            }
        }
        ControlFlow::Continue(())
    }
}

/// The outcome of the first pass: the time-travel targets still to evaluate.
#[derive(Debug)]
pub struct Pending {
    /// In order of appearance.
    pub at_clauses: Vec<AtClause>,
}

/// An unqualified name of a temporary table (not hidden by a CTE) becomes
/// `temp.main.name`: DuckDB looks in `temp` before the current schema.
pub fn temp_table(names: &NameContext, ctes: &HashSet<String>, name: &mut ObjectName) {
    let [part] = name.0.as_slice() else {
        return;
    };
    let Some(id) = part_ident(part) else {
        return;
    };
    let key = id.value.to_lowercase();
    if !names.temp_tables.contains(&key) || ctes.contains(&key) {
        return;
    }
    let table = id.clone();
    name.0 = vec![
        ObjectNamePart::Identifier(Ident::new("temp")),
        ObjectNamePart::Identifier(Ident::new("main")),
        ObjectNamePart::Identifier(table),
    ];
}

/// Apply the synchronous rewrites; returns the time-travel clauses to evaluate
/// (then call [`apply_at_targets`] with their values).
pub fn rewrite(
    statement: &mut Statement,
    names: &NameContext,
    variables: &HashMap<String, ScalarValue>,
) -> Result<Pending> {
    refuse_unsupported_columns(statement)?;
    temporary_table(statement)?;
    if let Statement::Insert(insert) = statement
        && let datafusion::sql::sqlparser::ast::TableObject::TableName(name) = &mut insert.table
    {
        temp_table(names, &HashSet::new(), name);
    }
    if let Statement::CreateTable(create) = statement {
        for column in &mut create.columns {
            super::functions::normalize_column_type(&mut column.data_type);
        }
    }
    let mut pass = FirstPass {
        names,
        variables,
        at_clauses: Vec::new(),
        error: None,
        macro_depth: 0,
        ctes: HashSet::new(),
    };
    let _ = statement.visit(&mut pass);
    if let Some(e) = pass.error {
        return Err(e);
    }
    Ok(Pending {
        at_clauses: pass.at_clauses,
    })
}

/// `CREATE TEMP TABLE t`: a table of DuckDB's `temp.main` (a memory table of the
/// session, which DataFusion then creates as any other).
fn temporary_table(statement: &mut Statement) -> Result<()> {
    let Statement::CreateTable(create) = statement else {
        return Ok(());
    };
    if !create.temporary {
        return Ok(());
    }
    create.temporary = false;
    let parts: Vec<Option<String>> = create
        .name
        .0
        .iter()
        .map(|p| part_ident(p).map(|i| i.value.to_lowercase()))
        .collect();
    let temp = |s: &str| ObjectNamePart::Identifier(Ident::new(s));
    match parts.as_slice() {
        [_] => {
            create.name.0.insert(0, temp("main"));
            create.name.0.insert(0, temp("temp"));
        }
        [Some(c), _] if c == "temp" => create.name.0.insert(1, temp("main")),
        [Some(c), Some(s), _] if c == "temp" && s == "main" => {}
        _ => {
            return Err(Error::Unsupported(format!(
                "CREATE TEMPORARY TABLE {}: temporary tables live in temp.main",
                create.name
            )));
        }
    }
    Ok(())
}

/// Column options lakeq cannot honour are refused rather than ignored (DuckLake
/// has no collations, generated columns or CHECK constraints; DuckDB refuses
/// the first two on a lake, and ignoring any of them would change answers).
fn refuse_unsupported_columns(statement: &Statement) -> Result<()> {
    use datafusion::sql::sqlparser::ast::ColumnOption;
    let Statement::CreateTable(create) = statement else {
        return Ok(());
    };
    for column in &create.columns {
        for option in &column.options {
            let what = match &option.option {
                ColumnOption::Collation(c) => format!("collation {c}"),
                ColumnOption::Generated { .. }
                | ColumnOption::Alias(_)
                | ColumnOption::Materialized(_)
                | ColumnOption::Ephemeral(_) => "a generated column".to_string(),
                ColumnOption::Check(_) => "a CHECK constraint".to_string(),
                _ => continue,
            };
            return Err(Error::Unsupported(format!(
                "column '{}' of '{}': {what} (collations, generated columns and CHECK \
                 constraints are not supported)",
                column.name.value, create.name
            )));
        }
    }
    Ok(())
}

/// Put evaluated time-travel targets (`version=3`, `timestamp=...`) in place.
pub fn apply_at_targets(statement: &mut Statement, targets: &[String]) {
    let _ = statement.visit(&mut SecondPass { targets });
}

/// `ORDER BY ALL` of a query, if it has one: (ascending, nulls first) options.
pub fn order_by_all(query: &Query) -> bool {
    match query.order_by.as_ref().map(|o| &o.kind) {
        Some(OrderByKind::All(_)) => true,
        Some(kind) => columns_star_order(kind).is_some(),
        None => false,
    }
}

/// The options of `ORDER BY COLUMNS(*) [ASC|DESC] [NULLS ...]`, which is how
/// DuckDB stores `ORDER BY ALL` in a view's SQL.
fn columns_star_order(
    kind: &OrderByKind,
) -> Option<datafusion::sql::sqlparser::ast::OrderByOptions> {
    let OrderByKind::Expressions(exprs) = kind else {
        return None;
    };
    let [only] = exprs.as_slice() else {
        return None;
    };
    let Expr::Function(f) = &only.expr else {
        return None;
    };
    let is_columns = simple_function_name(f).is_some_and(|n| n.eq_ignore_ascii_case("columns"));
    let star = matches!(
        &f.args,
        FunctionArguments::List(list)
            if matches!(
                list.args.as_slice(),
                [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]
            )
    );
    (is_columns && star).then_some(only.options)
}

/// Replace `ORDER BY ALL` with `ORDER BY 1, ..., width`.
pub fn expand_order_by_all(query: &mut Query, width: usize) {
    use datafusion::sql::sqlparser::ast::OrderByExpr;
    let Some(order_by) = query.order_by.as_mut() else {
        return;
    };
    let options = match &order_by.kind {
        OrderByKind::All(options) => *options,
        kind => match columns_star_order(kind) {
            Some(options) => options,
            None => return,
        },
    };
    order_by.kind = OrderByKind::Expressions(
        (1..=width)
            .map(|i| OrderByExpr {
                expr: Expr::value(Value::Number(i.to_string(), false)),
                options,
                with_fill: None,
            })
            .collect(),
    );
}

/// The SQL of a view with every table it reads pinned at snapshot `s`
/// (`AT (VERSION => s)`): reading a view `AT (VERSION => s)` reads its
/// definition and its tables as of `s`, as DuckDB does. Names of CTEs are left
/// alone, and so are tables that already carry a time-travel clause.
pub fn pin_tables_at(sql: &str, s: i64) -> Result<String> {
    use datafusion::sql::sqlparser::parser::Parser;
    let dialect = super::parser::LakeqDialect;
    let parse = |text: &str| {
        Parser::parse_sql(&dialect, text)
            .map_err(|e| Error::Unsupported(format!("view SQL cannot be parsed: {e}; SQL: {text}")))
    };
    let mut statements = parse(sql)?;
    let template = parse(&format!("SELECT * FROM t AT (VERSION => {s})"))?;
    let version = template.first().and_then(|st| match st {
        Statement::Query(q) => match q.body.as_ref() {
            SetExpr::Select(select) => match select.from.first().map(|f| &f.relation) {
                Some(TableFactor::Table { version, .. }) => version.clone(),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    });
    let Some(version) = version else {
        return Err(Error::Unsupported(
            "time travel through views: the AT clause did not parse".into(),
        ));
    };
    struct Pin {
        version: TableVersion,
        ctes: HashSet<String>,
    }
    impl VisitorMut for Pin {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            if let Some(with) = &query.with {
                for cte in &with.cte_tables {
                    self.ctes.insert(cte.alias.name.value.to_lowercase());
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table {
                name,
                args: None,
                version: version @ None,
                ..
            } = factor
            {
                let is_cte = match name.0.as_slice() {
                    [ObjectNamePart::Identifier(only)] => {
                        self.ctes.contains(&only.value.to_lowercase())
                    }
                    _ => false,
                };
                if !is_cte {
                    *version = Some(self.version.clone());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut pin = Pin {
        version,
        ctes: HashSet::new(),
    };
    for statement in &mut statements {
        let _ = statement.visit(&mut pin);
    }
    Ok(statements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(";\n"))
}

/// The SQL type a macro argument is cast to for a parameter declared with the
/// DuckLake type `ty` (`int32` -> `INTEGER`); `None` for types lakeq does not
/// cast arguments to.
fn macro_parameter_sql_type(ty: &str) -> Option<String> {
    let lower = ty.to_ascii_lowercase();
    let simple = match lower.as_str() {
        "boolean" => "BOOLEAN",
        "int8" => "TINYINT",
        "int16" => "SMALLINT",
        "int32" => "INTEGER",
        "int64" => "BIGINT",
        "uint8" => "UTINYINT",
        "uint16" => "USMALLINT",
        "uint32" => "UINTEGER",
        "uint64" => "UBIGINT",
        "float32" => "FLOAT",
        "float64" => "DOUBLE",
        "varchar" => "VARCHAR",
        "date" => "DATE",
        "time" => "TIME",
        "timestamp" => "TIMESTAMP",
        "timestamptz" => "TIMESTAMPTZ",
        "interval" => "INTERVAL",
        "blob" => "BLOB",
        _ => {
            let inner = lower.strip_prefix("decimal(")?.strip_suffix(')')?;
            let (p, s) = inner.split_once(',')?;
            let (p, s): (u8, u8) = (p.trim().parse().ok()?, s.trim().parse().ok()?);
            return Some(format!("DECIMAL({p},{s})"));
        }
    };
    Some(simple.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn views_are_pinned_at_a_snapshot() {
        let pinned = super::pin_tables_at(
            "WITH c AS (SELECT * FROM a) SELECT * FROM c JOIN s.b USING (k) WHERE k IN (SELECT k FROM d)",
            7,
        )
        .unwrap();
        assert!(pinned.contains("FROM a AT(VERSION => 7)"), "{pinned}");
        assert!(pinned.contains("JOIN s.b AT(VERSION => 7)"), "{pinned}");
        assert!(pinned.contains("FROM d AT(VERSION => 7)"), "{pinned}");
        assert!(pinned.contains("FROM c JOIN"), "{pinned}");
    }

    use super::*;
    use crate::dialect::parser::parse_statements;
    use datafusion::sql::parser::Statement as DFStatement;

    fn rewritten(sql: &str, names: &NameContext) -> Result<String> {
        let mut stmts = parse_statements(sql)?;
        let Some(DFStatement::Statement(mut s)) = stmts.pop_front() else {
            panic!("not a statement: {sql}");
        };
        let pending = rewrite(&mut s, names, &HashMap::new())?;
        let targets: Vec<String> = pending
            .at_clauses
            .iter()
            .map(|c| format!("version={}", c.expr))
            .collect();
        apply_at_targets(&mut s, &targets);
        Ok(s.to_string())
    }

    fn names() -> NameContext {
        NameContext {
            macros: MacroLookup::default(),
            catalogs: HashMap::from([
                ("ducklake".into(), ("ducklake".into(), "main".into())),
                ("memory".into(), ("memory".into(), "main".into())),
            ]),
            current_catalog: "memory".into(),
            current_schemas: HashSet::from(["main".into()]),
            current_schema: "main".into(),
            lakes: HashSet::from(["ducklake".into()]),
            temp_tables: HashSet::from(["tmp".into()]),
            table_columns: TableColumns::new(|c, _, _| {
                (c == "ducklake").then(|| vec!["i".to_string()])
            }),
        }
    }

    #[test]
    fn typed_macro_parameters_cast_to_duckdb_types() {
        assert_eq!(
            super::macro_parameter_sql_type("int32").as_deref(),
            Some("INTEGER")
        );
        assert_eq!(
            super::macro_parameter_sql_type("decimal(9,2)").as_deref(),
            Some("DECIMAL(9,2)")
        );
        assert_eq!(super::macro_parameter_sql_type("struct<a: int32>"), None);
    }

    #[test]
    fn expands_duckdb_macros() -> Result<()> {
        use crate::spec::rows::{MacroImplRow, MacroRow};
        let mut n = names();
        n.current_catalog = "ducklake".into();
        n.macros = MacroLookup::new(|_, _, name| {
            let implementation =
                |sql: &str, kind: &str, params: &[(&str, Option<&str>)]| MacroImplRow {
                    macro_id: 1,
                    impl_id: 0,
                    dialect: "duckdb".into(),
                    sql: sql.into(),
                    kind: kind.into(),
                    parameters: params
                        .iter()
                        .map(|(p, d)| (p.to_string(), d.map(str::to_string)))
                        .collect(),
                    parameter_types: params.iter().map(|_| None).collect(),
                };
            let impls = match name {
                "add_default" => vec![implementation(
                    "(a + b)",
                    "scalar",
                    &[("a", None), ("b", Some("5"))],
                )],
                "xt" => vec![implementation("SELECT x AS v", "table", &[("x", None)])],
                _ => return None,
            };
            Some(std::sync::Arc::new(MacroRow {
                schema_id: 0,
                macro_id: 1,
                macro_name: name.into(),
                impls,
            }))
        });
        assert_eq!(
            rewritten("SELECT add_default(1)", &n)?,
            "SELECT (((1) + (5))) AS \"add_default(1)\""
        );
        assert_eq!(
            rewritten("SELECT add_default(1, b := 2)", &n)?,
            "SELECT (((1) + (2)))"
        );
        assert_eq!(
            rewritten("FROM xt(3)", &n)?,
            "SELECT * FROM (SELECT (3) AS v) AS xt"
        );
        Ok(())
    }

    #[test]
    fn resolves_catalog_dot_table() -> Result<()> {
        assert_eq!(
            rewritten("SELECT * FROM ducklake.test", &names())?,
            "SELECT * FROM \"ducklake\".\"main\".test"
        );
        // A schema of the current catalog wins... unless it is also a catalog.
        let mut n = names();
        n.current_schemas.insert("ducklake".into());
        assert!(rewritten("SELECT * FROM ducklake.test", &n).is_err());
        assert_eq!(
            rewritten("SELECT * FROM s.t", &names())?,
            "SELECT * FROM s.t"
        );
        Ok(())
    }

    #[test]
    fn macro_defaults_are_values_not_expressions() {
        let text = |t: &str| default_value(t).to_string();
        assert_eq!(text("5"), "5");
        assert_eq!(text("-1.5"), "-1.5");
        assert_eq!(text("true"), "true");
        assert_eq!(text("it's me"), "'it''s me'");
        // A DATE default is text, not 2020 - 1 - 1.
        assert_eq!(text("2020-01-01"), "'2020-01-01'");
        assert_eq!(text("plain"), "'plain'");
    }

    #[test]
    fn rewrites_duckdb_forms() -> Result<()> {
        assert_eq!(
            rewritten("FROM ducklake.test WHERE i > 1", &names())?,
            "SELECT * FROM \"ducklake\".\"main\".test WHERE i > 1"
        );
        assert_eq!(
            rewritten("SELECT count_star() FROM t", &names())?,
            "SELECT count(*) AS \"count_star()\" FROM t"
        );
        assert_eq!(
            rewritten("SELECT * FROM ducklake.s.t AT (VERSION => 1 + 2)", &names())?,
            // The schema is marked to be resolved as of the snapshot too.
            "SELECT * FROM ducklake.\"s@@at\".\"t@@version=1 + 2\""
        );
        assert_eq!(
            rewritten(
                "SELECT rowid, * FROM ducklake.t AT (VERSION => 2)",
                &names()
            )?,
            "SELECT rowid, * EXCLUDE (rowid, snapshot_id, filename, file_row_number) FROM \
             \"ducklake\".\"main@@at\".\"t@@rowid@@version=2\""
        );
        assert_eq!(
            rewritten("FROM ducklake.snapshots()", &names())?,
            "SELECT * FROM ducklake_snapshots('ducklake')"
        );
        assert_eq!(
            rewritten("FROM ducklake.table_changes('t', 0, 3)", &names())?,
            "SELECT * FROM ducklake_table_changes('ducklake', 'main', 't', 0, 3)"
        );
        assert_eq!(
            rewritten(
                "FROM ducklake_list_files('ducklake', 't', snapshot_version => 2)",
                &names()
            )?,
            "SELECT * FROM ducklake_list_files('ducklake', 't', NULL, 2)"
        );
        Ok(())
    }
}
