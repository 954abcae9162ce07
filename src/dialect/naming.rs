//! DuckDB's names for unnamed result columns.
//!
//! DuckDB names a select item without an alias after the expression as the
//! user wrote it, printed by its parser (`sum(x)`, `(x + 1)`, `count_star()`,
//! `CAST(x AS "DOUBLE")`), where DataFusion prints its resolved expression
//! (`sum(lake.main.t.x)`, `t.x + Int64(1)`). The names matter beyond display:
//! `CREATE TABLE AS` and views store them in the lake, and the other engine (and
//! every later query) then sees them. [`duckdb_name`] prints the expression
//! forms whose DuckDB name was checked against DuckDB 1.5.5; for any other form
//! it returns `None` and the column keeps DataFusion's name.

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DuplicateTreatment, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, ObjectNamePart, UnaryOperator, Value,
};

use super::keywords::is_duckdb_keyword;

/// DuckDB's name for an unaliased select item `expr`, when lakeq knows it and
/// it differs from what DataFusion would call it; `None` for a plain column
/// (both name it after the column) and for forms not covered.
pub fn duckdb_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => None,
        Expr::Nested(inner) => duckdb_name(inner),
        _ => render(expr),
    }
}

/// DuckDB's print of any expression form lakeq covers (plain columns
/// included), as DuckDB stores an expression `DEFAULT`.
pub fn duckdb_text(expr: &Expr) -> Option<String> {
    render(expr)
}

/// An identifier as DuckDB prints it: quoted when it is a keyword or holds
/// anything but ASCII letters, digits and `_` (or starts with a digit).
fn ident(id: &Ident) -> String {
    let name = &id.value;
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain && !is_duckdb_keyword(name) {
        name.clone()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn render(expr: &Expr) -> Option<String> {
    Some(match expr {
        Expr::Identifier(id) => ident(id),
        Expr::CompoundIdentifier(parts) => parts.iter().map(ident).collect::<Vec<_>>().join("."),
        Expr::Value(v) => value(&v.value)?,
        Expr::Nested(inner) => render(inner)?,
        Expr::BinaryOp { left, op, right } => binary(left, op, right)?,
        Expr::UnaryOp { op, expr } => match op {
            UnaryOperator::Minus => match strip(expr) {
                Expr::Value(v) if matches!(v.value, Value::Number(..)) => {
                    format!("-{}", value(&v.value)?)
                }
                inner => format!("-({})", render(inner)?),
            },
            UnaryOperator::Plus => format!("+({})", render(expr)?),
            UnaryOperator::Not => negate(expr)?,
            _ => return None,
        },
        Expr::IsNull(e) => format!("({} IS NULL)", render(e)?),
        Expr::IsNotNull(e) => format!("({} IS NOT NULL)", render(e)?),
        Expr::IsDistinctFrom(a, b) => format!("({} IS DISTINCT FROM {})", render(a)?, render(b)?),
        Expr::IsNotDistinctFrom(a, b) => {
            format!("({} IS NOT DISTINCT FROM {})", render(a)?, render(b)?)
        }
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let between = format!(
                "({} BETWEEN {} AND {})",
                render(expr)?,
                render(low)?,
                render(high)?
            );
            if *negated {
                format!("(NOT {between})")
            } else {
                between
            }
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => format!(
            "({} {}IN ({}))",
            render(expr)?,
            if *negated { "NOT " } else { "" },
            list.iter()
                .map(render)
                .collect::<Option<Vec<_>>>()?
                .join(", ")
        ),
        Expr::Like {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: None,
        } => format!(
            "({} {} {})",
            render(expr)?,
            if *negated { "!~~" } else { "~~" },
            render(pattern)?
        ),
        Expr::ILike {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: None,
        } => format!(
            "({} {} {})",
            render(expr)?,
            if *negated { "!~~*" } else { "~~*" },
            render(pattern)?
        ),
        Expr::Cast {
            kind,
            expr,
            data_type,
            array: false,
            format: None,
        } => {
            let ty = type_name(&data_type.to_string())?;
            match kind {
                CastKind::Cast | CastKind::DoubleColon => {
                    format!("CAST({} AS {ty})", render(expr)?)
                }
                CastKind::TryCast | CastKind::SafeCast => {
                    format!("TRY_CAST({} AS {ty})", render(expr)?)
                }
            }
        }
        Expr::TypedString(t) => {
            let ty = type_name(&t.data_type.to_string())?;
            format!("CAST({} AS {ty})", value(&t.value.value)?)
        }
        Expr::Function(f) => function(f)?,
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            let mut out = "CASE ".to_string();
            for when in conditions {
                let condition = match operand {
                    Some(op) => format!("({} = {})", render(op)?, render(&when.condition)?),
                    None => render(&when.condition)?,
                };
                out.push_str(&format!(
                    " WHEN ({condition}) THEN ({})",
                    render(&when.result)?
                ));
            }
            let otherwise = match else_result {
                Some(e) => render(e)?,
                None => "NULL".into(),
            };
            out.push_str(&format!(" ELSE {otherwise} END"));
            out
        }
        _ => return None,
    })
}

/// `expr` without redundant parentheses.
fn strip(expr: &Expr) -> &Expr {
    match expr {
        Expr::Nested(inner) => strip(inner),
        other => other,
    }
}

fn value(v: &Value) -> Option<String> {
    Some(match v {
        // `1e3` prints as `1000.0`: exponents are left to DataFusion's naming.
        Value::Number(n, _) if !n.contains(['e', 'E']) => n.clone(),
        Value::SingleQuotedString(s) => format!("'{}'", s.replace('\'', "''")),
        Value::Boolean(true) => "CAST('t' AS BOOLEAN)".into(),
        Value::Boolean(false) => "CAST('f' AS BOOLEAN)".into(),
        Value::Null => "NULL".into(),
        _ => return None,
    })
}

fn binary(left: &Expr, op: &BinaryOperator, right: &Expr) -> Option<String> {
    let symbol = match op {
        BinaryOperator::Plus => "+",
        BinaryOperator::Minus => "-",
        BinaryOperator::Multiply => "*",
        BinaryOperator::Divide => "/",
        BinaryOperator::Modulo => "%",
        BinaryOperator::DuckIntegerDivide => "//",
        BinaryOperator::StringConcat => "||",
        BinaryOperator::Eq => "=",
        BinaryOperator::NotEq => "!=",
        BinaryOperator::Lt => "<",
        BinaryOperator::LtEq => "<=",
        BinaryOperator::Gt => ">",
        BinaryOperator::GtEq => ">=",
        BinaryOperator::And | BinaryOperator::Or => {
            // DuckDB keeps a chain of ANDs (ORs) as one n-ary conjunction.
            let mut terms = Vec::new();
            flatten(left, op, &mut terms);
            flatten(right, op, &mut terms);
            let terms = terms.into_iter().map(render).collect::<Option<Vec<_>>>()?;
            let word = if *op == BinaryOperator::And {
                " AND "
            } else {
                " OR "
            };
            return Some(format!("({})", terms.join(word)));
        }
        _ => return None,
    };
    Some(format!("({} {symbol} {})", render(left)?, render(right)?))
}

fn flatten<'a>(expr: &'a Expr, op: &BinaryOperator, out: &mut Vec<&'a Expr>) {
    match strip(expr) {
        Expr::BinaryOp { left, op: o, right } if o == op => {
            flatten(left, op, out);
            flatten(right, op, out);
        }
        other => out.push(other),
    }
}

/// `NOT expr`: DuckDB's parser flips a negated comparison (`NOT x = 1` is `(x != 1)`).
fn negate(expr: &Expr) -> Option<String> {
    if let Expr::BinaryOp { left, op, right } = strip(expr) {
        let flipped = match op {
            BinaryOperator::Eq => Some(BinaryOperator::NotEq),
            BinaryOperator::NotEq => Some(BinaryOperator::Eq),
            BinaryOperator::Lt => Some(BinaryOperator::GtEq),
            BinaryOperator::GtEq => Some(BinaryOperator::Lt),
            BinaryOperator::Gt => Some(BinaryOperator::LtEq),
            BinaryOperator::LtEq => Some(BinaryOperator::Gt),
            _ => None,
        };
        if let Some(op) = flipped {
            return binary(left, &op, right);
        }
    }
    Some(format!("(NOT {})", render(expr)?))
}

/// Functions whose DuckDB name lakeq does not print (special syntax, or a
/// name DuckDB prints qualified, as `main."trim"(s)`).
const UNNAMED_FUNCTIONS: &[&str] = &[
    "trim",
    "ltrim",
    "rtrim",
    "substring",
    "position",
    "overlay",
    "extract",
    "list_value",
    "struct_pack",
    "row",
    "map",
    "like_escape",
    "grouping",
];

fn function(f: &Function) -> Option<String> {
    let [ObjectNamePart::Identifier(name)] = f.name.0.as_slice() else {
        return None;
    };
    let lower = name.value.to_ascii_lowercase();
    if f.over.is_some()
        || f.null_treatment.is_some()
        || !f.within_group.is_empty()
        || !matches!(f.parameters, FunctionArguments::None)
        || UNNAMED_FUNCTIONS.contains(&lower.as_str())
    {
        return None;
    }
    let filter = match &f.filter {
        Some(condition) => format!(" FILTER (WHERE {})", render(condition)?),
        None => String::new(),
    };
    let list = match &f.args {
        FunctionArguments::None => return Some(format!("{}{filter}", ident_text(&lower))),
        FunctionArguments::Subquery(_) => return None,
        FunctionArguments::List(list) => list,
    };
    if !list.clauses.is_empty() {
        return None;
    }
    let star = matches!(
        list.args.as_slice(),
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]
    );
    if lower == "count" && (star || list.args.is_empty()) && list.duplicate_treatment.is_none() {
        return Some(format!("count_star(){filter}"));
    }
    let mut args = Vec::with_capacity(list.args.len());
    for arg in &list.args {
        let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg else {
            return None;
        };
        args.push(render(e)?);
    }
    let distinct = match list.duplicate_treatment {
        Some(DuplicateTreatment::Distinct) => "DISTINCT ",
        Some(DuplicateTreatment::All) => return None,
        None => "",
    };
    let name = match lower.as_str() {
        "coalesce" | "ifnull" => "COALESCE".to_string(),
        other => ident_text(other),
    };
    Some(format!("{name}({distinct}{}){filter}", args.join(", ")))
}

fn ident_text(name: &str) -> String {
    ident(&Ident::new(name))
}

/// DuckDB's print of a cast's target type, for the types checked against it.
fn type_name(sqlparser_type: &str) -> Option<String> {
    let t = sqlparser_type.to_ascii_uppercase();
    if let Some(element) = t.strip_suffix("[]") {
        return Some(format!("{}[]", type_name(element)?));
    }
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    if let Some(args) = compact
        .strip_prefix("DECIMAL(")
        .or_else(|| compact.strip_prefix("NUMERIC("))
        .and_then(|r| r.strip_suffix(')'))
    {
        let parts: Vec<&str> = args.split(',').collect();
        if parts.iter().all(|p| p.parse::<u32>().is_ok()) {
            return Some(format!("DECIMAL({})", parts.join(", ")));
        }
        return None;
    }
    if let Some(n) = compact
        .strip_prefix("VARCHAR(")
        .and_then(|r| r.strip_suffix(')'))
        .filter(|n| n.parse::<u32>().is_ok())
    {
        return Some(format!("VARCHAR({n})"));
    }
    Some(
        match t.as_str() {
            "INT" | "INTEGER" | "INT4" | "SIGNED" => "INTEGER",
            "BIGINT" | "INT8" | "LONG" => "BIGINT",
            "SMALLINT" | "INT2" | "SHORT" => "SMALLINT",
            "TINYINT" | "INT1" => "\"TINYINT\"",
            "HUGEINT" => "\"HUGEINT\"",
            "UBIGINT" => "\"UBIGINT\"",
            "UINTEGER" => "\"UINTEGER\"",
            "REAL" | "FLOAT" | "FLOAT4" => "FLOAT",
            "DOUBLE" | "FLOAT8" | "DOUBLE PRECISION" => "\"DOUBLE\"",
            "BOOLEAN" | "BOOL" => "BOOLEAN",
            "VARCHAR" | "TEXT" | "STRING" => "VARCHAR",
            "DATE" => "\"DATE\"",
            "TIMESTAMP" => "TIMESTAMP",
            "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" => "\"TIMESTAMP WITH TIME ZONE\"",
            "TIME" => "TIME",
            "INTERVAL" => "INTERVAL",
            "DECIMAL" | "NUMERIC" => "DECIMAL",
            "UUID" => "\"UUID\"",
            "BLOB" | "BYTEA" => "\"BLOB\"",
            _ => return None,
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::parser::parse_statements;
    use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr, Statement};

    fn name(sql: &str) -> Option<String> {
        let mut stmts = parse_statements(&format!("SELECT {sql} FROM t")).ok()?;
        let datafusion::sql::parser::Statement::Statement(s) = stmts.pop_front()? else {
            return None;
        };
        let Statement::Query(q) = *s else {
            return None;
        };
        let SetExpr::Select(select) = *q.body else {
            return None;
        };
        let SelectItem::UnnamedExpr(e) = select.projection.first()? else {
            return None;
        };
        duckdb_name(e)
    }

    /// Every pair was printed by DuckDB 1.5.5 (`SELECT <expr> FROM t`).
    #[test]
    fn names_columns_as_duckdb_does() {
        let mut failures = Vec::new();
        for (sql, duckdb) in [
            ("sum(x)", "sum(x)"),
            ("SUM(x)", "sum(x)"),
            ("x+1", "(x + 1)"),
            ("X+1", "(X + 1)"),
            ("\"My Col\"+1", "(\"My Col\" + 1)"),
            ("count(*)", "count_star()"),
            ("count()", "count_star()"),
            ("count(DISTINCT x)", "count(DISTINCT x)"),
            ("x*2-1", "((x * 2) - 1)"),
            ("-x", "-(x)"),
            ("- 1.5", "-1.5"),
            ("-(x+1)", "-((x + 1))"),
            ("NOT b", "(NOT b)"),
            ("NOT x > 1", "(x <= 1)"),
            ("NOT (x = 1)", "(x != 1)"),
            ("x<>1", "(x != 1)"),
            ("x BETWEEN 1 AND 2", "(x BETWEEN 1 AND 2)"),
            ("x NOT BETWEEN 1 AND 2", "(NOT (x BETWEEN 1 AND 2))"),
            ("x IN (1,2)", "(x IN (1, 2))"),
            ("x NOT IN (1)", "(x NOT IN (1))"),
            ("x IS NULL", "(x IS NULL)"),
            ("x IS NOT NULL", "(x IS NOT NULL)"),
            ("x IS DISTINCT FROM 1", "(x IS DISTINCT FROM 1)"),
            ("CAST(x AS BIGINT)", "CAST(x AS BIGINT)"),
            ("x::double", "CAST(x AS \"DOUBLE\")"),
            ("x::numeric(16,2)", "CAST(x AS DECIMAL(16, 2))"),
            ("CAST(x AS TEXT)", "CAST(x AS VARCHAR)"),
            ("s::varchar(10)", "CAST(s AS VARCHAR(10))"),
            ("x::integer[]", "CAST(x AS INTEGER[])"),
            ("ts::date", "CAST(ts AS \"DATE\")"),
            ("try_cast(s as int)", "TRY_CAST(s AS INTEGER)"),
            ("DATE '2020-01-01'", "CAST('2020-01-01' AS \"DATE\")"),
            ("TIMESTAMP '2020-01-01'", "CAST('2020-01-01' AS TIMESTAMP)"),
            ("'abc'", "'abc'"),
            ("'it''s'", "'it''s'"),
            ("1", "1"),
            ("1.50", "1.50"),
            ("NULL", "NULL"),
            ("TRUE", "CAST('t' AS BOOLEAN)"),
            ("s || 'a'", "(s || 'a')"),
            ("name || 'a'", "(\"name\" || 'a')"),
            ("t.name || 'a'", "(t.\"name\" || 'a')"),
            ("s LIKE 'a%'", "(s ~~ 'a%')"),
            ("s NOT LIKE 'a'", "(s !~~ 'a')"),
            ("s ILIKE 'a'", "(s ~~* 'a')"),
            (
                "CASE WHEN x>1 THEN 1 ELSE 0 END",
                "CASE  WHEN ((x > 1)) THEN (1) ELSE 0 END",
            ),
            (
                "CASE WHEN x>1 THEN 1 END",
                "CASE  WHEN ((x > 1)) THEN (1) ELSE NULL END",
            ),
            (
                "CASE x WHEN 1 THEN 2 ELSE 3 END",
                "CASE  WHEN ((x = 1)) THEN (2) ELSE 3 END",
            ),
            ("coalesce(x,0)", "COALESCE(x, 0)"),
            ("ifnull(x,0)", "COALESCE(x, 0)"),
            ("nullif(x,0)", "\"nullif\"(x, 0)"),
            ("year(d)", "\"year\"(d)"),
            ("upper(name)", "upper(\"name\")"),
            ("sum(x)/100", "(sum(x) / 100)"),
            ("round(sum(x)/100.0, 2)", "round((sum(x) / 100.0), 2)"),
            ("date_trunc('month', d)", "date_trunc('month', d)"),
            ("x // 2", "(x // 2)"),
            ("max(t.x)", "max(t.x)"),
            ("((x+1))", "(x + 1)"),
            ("1+2*3", "(1 + (2 * 3))"),
            ("(1+2)*3", "((1 + 2) * 3)"),
            (
                "x > 1 AND x < 3 AND x <> 2",
                "((x > 1) AND (x < 3) AND (x != 2))",
            ),
            ("(x > 1) AND (x < 3)", "((x > 1) AND (x < 3))"),
            ("b OR NOT b", "(b OR (NOT b))"),
            ("x - -1", "(x - -1)"),
            ("abs(-x)", "abs(-(x))"),
            ("sum(x) * 1.0 / count(*)", "((sum(x) * 1.0) / count_star())"),
            ("avg(x) FILTER (WHERE x>1)", "avg(x) FILTER (WHERE (x > 1))"),
            (
                "count(*) FILTER (WHERE x>1)",
                "count_star() FILTER (WHERE (x > 1))",
            ),
            ("sum(x)::double", "CAST(sum(x) AS \"DOUBLE\")"),
            ("now()", "now()"),
            ("current_date", "current_date"),
        ] {
            if name(sql).as_deref() != Some(duckdb) {
                failures.push(format!("{sql}: {:?}, DuckDB {duckdb}", name(sql)));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn leaves_plain_columns_and_unknown_forms_alone() {
        for sql in [
            "x",
            "t.x",
            "1e3",
            "trim(s)",
            "[1, 2]",
            "row_number() OVER (ORDER BY x)",
            "extract(year from d)",
            "x::json",
            "(SELECT 1)",
        ] {
            assert_eq!(name(sql), None, "{sql}");
        }
    }
}
