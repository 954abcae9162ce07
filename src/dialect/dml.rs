//! DuckDB's `UPDATE ... FROM`, `DELETE ... USING` and `UPDATE`/`DELETE` whose
//! `WHERE` or `SET` names DuckLake's virtual columns (`rowid`, `snapshot_id`,
//! `filename`, `file_row_number`), as a `MERGE`.
//!
//! DataFusion plans neither a joined `UPDATE`/`DELETE` nor a virtual column
//! outside a query. lakeq's writer runs a `MERGE` over the target with each
//! row's row id, file and position, so these statements become one:
//!
//! ```text
//! UPDATE t SET a = s.b FROM s WHERE t.k = s.k
//!   -> MERGE INTO t USING s ON t.k = s.k WHEN MATCHED THEN UPDATE SET a = s.b
//! DELETE FROM t WHERE rowid = 7
//!   -> MERGE INTO "t@@rowid" AS t USING (SELECT 1) AS __lakeq_no_source ON rowid = 7
//!      WHEN MATCHED THEN DELETE
//! ```
//!
//! A target row matched by several source rows is updated (or deleted) once,
//! as in DuckDB; where the source rows would give it different values, DuckDB
//! keeps the first its join produced, and lakeq refuses the statement rather than
//! pick one (see [`crate::session::write`]). The writer tells these statements
//! from a `MERGE` the user wrote by [`is_joined_dml`].

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    Delete, Expr, FromTable, Ident, Join, JoinConstraint, JoinOperator, Merge, MergeAction,
    MergeClause, MergeClauseKind, MergeUpdateExpr, ObjectNamePart, Statement, TableAlias,
    TableFactor, TableWithJoins, Update, UpdateTableFromKind, Visit, Visitor,
};

use super::rewrite::{NameContext, VIRTUAL_COLUMNS};
use crate::error::{Error, Result};
use crate::provider::catalog::AT_MARKER;

/// Alias of the one-row source of an `UPDATE`/`DELETE` without `FROM`/`USING`.
const NO_SOURCE: &str = "__lakeq_no_source";

/// Turn `statement` into a `MERGE` when it is an `UPDATE ... FROM`, a
/// `DELETE ... USING` or an `UPDATE`/`DELETE` naming a virtual column of its
/// lake table; leave every other statement as it is.
pub fn as_merge(statement: &mut Statement, names: &NameContext) -> Result<()> {
    let merge = match statement {
        Statement::Update(update) => update_as_merge(update, names)?,
        Statement::Delete(delete) => delete_as_merge(delete, names)?,
        _ => None,
    };
    if let Some(merge) = merge {
        *statement = Statement::Merge(merge);
    }
    Ok(())
}

/// Whether `sql` is an `UPDATE` or `DELETE` (which [`as_merge`] may have
/// planned as a `MERGE`): a target row several source rows match is then
/// changed once, not refused as in a `MERGE`.
pub fn is_joined_dml(sql: &str) -> bool {
    let Ok(mut statements) = super::parser::parse_statements(sql) else {
        return false;
    };
    matches!(
        statements.pop_front(),
        Some(datafusion::sql::parser::Statement::Statement(s))
            if matches!(s.as_ref(), Statement::Update(_) | Statement::Delete(_))
    )
}

fn update_as_merge(update: &Update, names: &NameContext) -> Result<Option<Merge>> {
    let simple = update.returning.is_none()
        && update.output.is_none()
        && update.or.is_none()
        && update.limit.is_none()
        && update.order_by.is_empty()
        && update.optimizer_hints.is_empty()
        && update.table.joins.is_empty();
    if !simple {
        return Ok(None);
    }
    let from = match &update.from {
        Some(UpdateTableFromKind::BeforeSet(f) | UpdateTableFromKind::AfterSet(f)) => Some(f),
        None => None,
    };
    let mut find = FindVirtual(Vec::new());
    let _ = update.selection.visit(&mut find);
    for a in &update.assignments {
        let _ = a.value.visit(&mut find);
    }
    let Some(target) = target(&update.table.relation, &find.0, names) else {
        return Ok(None);
    };
    if from.is_none() && !target.virtual_columns {
        return Ok(None);
    }
    let source = match from {
        Some(tables) => joined_source(tables)?,
        None => no_source()?,
    };
    Ok(Some(merge(
        target.relation,
        source,
        update.selection.clone(),
        MergeAction::Update(MergeUpdateExpr {
            update_token: AttachedToken::empty(),
            assignments: update.assignments.clone(),
            update_predicate: None,
            delete_predicate: None,
        }),
    )))
}

fn delete_as_merge(delete: &Delete, names: &NameContext) -> Result<Option<Merge>> {
    let simple = delete.returning.is_none()
        && delete.output.is_none()
        && delete.limit.is_none()
        && delete.order_by.is_empty()
        && delete.optimizer_hints.is_empty()
        && delete.tables.is_empty();
    if !simple {
        return Ok(None);
    }
    let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &delete.from;
    let [only] = from.as_slice() else {
        return Ok(None);
    };
    if !only.joins.is_empty() {
        return Ok(None);
    }
    let mut find = FindVirtual(Vec::new());
    let _ = delete.selection.visit(&mut find);
    let Some(target) = target(&only.relation, &find.0, names) else {
        return Ok(None);
    };
    if delete.using.is_none() && !target.virtual_columns {
        return Ok(None);
    }
    let source = match &delete.using {
        Some(tables) => joined_source(tables)?,
        None => no_source()?,
    };
    Ok(Some(merge(
        target.relation,
        source,
        delete.selection.clone(),
        MergeAction::Delete {
            delete_token: AttachedToken::empty(),
        },
    )))
}

fn merge(target: TableFactor, source: TableFactor, on: Option<Expr>, action: MergeAction) -> Merge {
    Merge {
        merge_token: AttachedToken::empty(),
        optimizer_hints: Vec::new(),
        into: true,
        table: target,
        source,
        on: Box::new(on.unwrap_or(Expr::value(
            datafusion::sql::sqlparser::ast::Value::Boolean(true),
        ))),
        clauses: vec![MergeClause {
            when_token: AttachedToken::empty(),
            clause_kind: MergeClauseKind::Matched,
            predicate: None,
            action,
        }],
        output: None,
    }
}

/// The statement's target, read with its virtual columns (`"t@@rowid" AS t`)
/// when the statement names one the table has no real column for.
struct Target {
    relation: TableFactor,
    virtual_columns: bool,
}

fn target(relation: &TableFactor, named: &[String], names: &NameContext) -> Option<Target> {
    let TableFactor::Table {
        name,
        alias,
        args: None,
        ..
    } = relation
    else {
        return None;
    };
    let mut relation = relation.clone();
    if named.is_empty() {
        return Some(Target {
            relation,
            virtual_columns: false,
        });
    }
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(|i| i.value.clone()))
        .collect::<Option<_>>()?;
    let Some(columns) = names.lake_table_columns(&parts) else {
        // Not a lake table: DataFusion plans (or refuses) it.
        return Some(Target {
            relation,
            virtual_columns: false,
        });
    };
    let all_real = named
        .iter()
        .all(|v| columns.iter().any(|c| c.eq_ignore_ascii_case(v)));
    if all_real {
        return Some(Target {
            relation,
            virtual_columns: false,
        });
    }
    let table = parts.last()?.clone();
    if let TableFactor::Table { name, alias: a, .. } = &mut relation {
        if let Some(ObjectNamePart::Identifier(last)) = name.0.last_mut() {
            last.value = format!("{table}{AT_MARKER}rowid");
            last.quote_style = Some('"');
        }
        // The statement still says `t.rowid`: the table keeps its name.
        if alias.is_none() {
            *a = Some(TableAlias {
                explicit: true,
                name: Ident::with_quote('"', table),
                columns: Vec::new(),
                at: None,
            });
        }
    }
    Some(Target {
        relation,
        virtual_columns: true,
    })
}

/// The `FROM` of an `UPDATE` (or `USING` of a `DELETE`) as one relation: a
/// list of tables is their cross join, as in DuckDB.
fn joined_source(tables: &[TableWithJoins]) -> Result<TableFactor> {
    let mut items = tables.iter();
    let Some(first) = items.next() else {
        return no_source();
    };
    let mut joined = first.clone();
    for next in items {
        joined.joins.push(Join {
            relation: nested(next.clone()),
            global: false,
            join_operator: JoinOperator::CrossJoin(JoinConstraint::None),
        });
    }
    Ok(nested(joined))
}

fn nested(table: TableWithJoins) -> TableFactor {
    if table.joins.is_empty() {
        return table.relation;
    }
    TableFactor::NestedJoin {
        table_with_joins: Box::new(table),
        alias: None,
    }
}

/// A one-row source, for an `UPDATE`/`DELETE` that joins nothing.
fn no_source() -> Result<TableFactor> {
    let sql = format!("SELECT * FROM (SELECT 1 AS {NO_SOURCE}) AS {NO_SOURCE}");
    let mut statements = super::parser::parse_statements(&sql)?;
    if let Some(datafusion::sql::parser::Statement::Statement(s)) = statements.pop_front()
        && let Statement::Query(q) = *s
        && let datafusion::sql::sqlparser::ast::SetExpr::Select(select) = *q.body
        && let Some(from) = select.from.into_iter().next()
    {
        return Ok(from.relation);
    }
    Err(Error::Unsupported(format!(
        "could not build the source {sql}"
    )))
}

/// The DuckDB virtual columns an expression names (unquoted, lower-case).
pub(super) struct FindVirtual(pub(super) Vec<String>);

impl Visitor for FindVirtual {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        let name = match expr {
            Expr::Identifier(i) => Some(i),
            Expr::CompoundIdentifier(parts) => parts.last(),
            _ => None,
        };
        if let Some(i) = name
            && i.quote_style.is_none()
        {
            let lower = i.value.to_ascii_lowercase();
            if VIRTUAL_COLUMNS.contains(&lower.as_str()) && !self.0.contains(&lower) {
                self.0.push(lower);
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::rewrite::TableColumns;

    fn names() -> NameContext {
        NameContext {
            table_columns: TableColumns::new(|_, _, t| match t {
                "t" => Some(vec!["i".to_string(), "j".to_string()]),
                "u" => Some(vec!["i".to_string(), "rowid".to_string()]),
                _ => None,
            }),
            current_catalog: "lake".into(),
            current_schema: "main".into(),
            lakes: ["lake".to_string()].into_iter().collect(),
            catalogs: [("lake".to_string(), ("lake".to_string(), "main".to_string()))]
                .into_iter()
                .collect(),
            ..NameContext::default()
        }
    }

    fn converted(sql: &str) -> Result<String> {
        let mut statements = super::super::parser::parse_statements(sql)?;
        let Some(datafusion::sql::parser::Statement::Statement(mut s)) = statements.pop_front()
        else {
            return Err(Error::Unsupported("no statement".into()));
        };
        as_merge(&mut s, &names())?;
        Ok(s.to_string())
    }

    #[test]
    fn update_from_becomes_a_merge() -> Result<()> {
        assert_eq!(
            converted("UPDATE t SET j = s.v FROM s WHERE t.i = s.i")?,
            "MERGE INTO t USING s ON t.i = s.i WHEN MATCHED THEN UPDATE SET j = s.v"
        );
        assert_eq!(
            converted("UPDATE t SET j = a.v FROM a, b WHERE t.i = a.i AND a.i = b.i")?,
            "MERGE INTO t USING (a CROSS JOIN b) ON t.i = a.i AND a.i = b.i \
             WHEN MATCHED THEN UPDATE SET j = a.v"
        );
        Ok(())
    }

    #[test]
    fn delete_using_becomes_a_merge() -> Result<()> {
        assert_eq!(
            converted("DELETE FROM t USING s WHERE t.i = s.i")?,
            "MERGE INTO t USING s ON t.i = s.i WHEN MATCHED THEN DELETE"
        );
        Ok(())
    }

    #[test]
    fn virtual_columns_read_the_table_with_its_row_ids() -> Result<()> {
        assert_eq!(
            converted("DELETE FROM t WHERE rowid = 7")?,
            "MERGE INTO \"t@@rowid\" AS \"t\" USING (SELECT 1 AS __lakeq_no_source) AS \
             __lakeq_no_source ON rowid = 7 WHEN MATCHED THEN DELETE"
        );
        assert_eq!(
            converted("UPDATE t SET i = rowid WHERE t.rowid = 5")?,
            "MERGE INTO \"t@@rowid\" AS \"t\" USING (SELECT 1 AS __lakeq_no_source) AS \
             __lakeq_no_source ON t.rowid = 5 WHEN MATCHED THEN UPDATE SET i = rowid"
        );
        Ok(())
    }

    #[test]
    fn plain_statements_stay() -> Result<()> {
        assert_eq!(
            converted("UPDATE t SET j = 1 WHERE i = 2")?,
            "UPDATE t SET j = 1 WHERE i = 2"
        );
        assert_eq!(
            converted("DELETE FROM t WHERE i = 2")?,
            "DELETE FROM t WHERE i = 2"
        );
        // A table with a real column of that name: the column wins.
        assert_eq!(
            converted("DELETE FROM u WHERE rowid = 2")?,
            "DELETE FROM u WHERE rowid = 2"
        );
        Ok(())
    }

    #[test]
    fn joined_dml_is_told_from_a_merge() {
        assert!(is_joined_dml("UPDATE t SET j = s.v FROM s WHERE t.i = s.i"));
        assert!(is_joined_dml("delete from t where rowid = 1"));
        assert!(!is_joined_dml(
            "MERGE INTO t USING s ON t.i = s.i WHEN MATCHED THEN DELETE"
        ));
    }
}
