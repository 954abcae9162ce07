//! Parsing DuckDB SQL: sqlparser's `DuckDbDialect`, plus DuckLake's time-travel
//! clause `tbl AT (VERSION => expr)` / `AT (TIMESTAMP => expr)`.

use std::collections::VecDeque;

use datafusion::sql::parser::{DFParser, DFParserBuilder, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{CastKind, DataType, Expr, TimezoneInfo, Value};
use datafusion::sql::sqlparser::dialect::{Dialect, DuckDbDialect};
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{Error, Result};

/// DuckDB's dialect with table versioning (`AT (...)`) switched on.
#[derive(Debug, Default, Clone, Copy)]
pub struct LakeqDialect;

macro_rules! forward {
    ($($name:ident),* $(,)?) => {
        $(fn $name(&self) -> bool { DuckDbDialect.$name() })*
    };
}

impl Dialect for LakeqDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        DuckDbDialect.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        DuckDbDialect.is_identifier_part(ch)
    }

    fn supports_table_versioning(&self) -> bool {
        true
    }

    forward!(
        supports_trailing_commas,
        supports_filter_during_aggregation,
        supports_group_by_expr,
        supports_bitwise_shift_operators,
        supports_named_fn_args_with_eq_operator,
        supports_named_fn_args_with_assignment_operator,
        supports_dictionary_syntax,
        support_map_literal_syntax,
        supports_lambda_functions,
        allow_extract_single_quotes,
        supports_explain_with_utility_options,
        supports_load_extension,
        supports_array_typedef_with_brackets,
        supports_from_first_select,
        supports_order_by_all,
        supports_select_wildcard_exclude,
        supports_notnull_operator,
        supports_install,
        supports_detach,
        supports_select_wildcard_replace,
        supports_comma_separated_trim,
    );

    /// DuckDB's `TIMESTAMP_S '...'`, `TIMESTAMP_MS`, `TIMESTAMP_US` and
    /// `TIMESTAMP_NS` literals, as casts to a timestamp of that precision. DuckDB
    /// rounds digits beyond the precision where DataFusion would cut them: such a
    /// literal is refused rather than read differently.
    fn parse_prefix(
        &self,
        parser: &mut datafusion::sql::sqlparser::parser::Parser,
    ) -> Option<std::result::Result<Expr, datafusion::sql::sqlparser::parser::ParserError>> {
        let [word, value] = parser.peek_tokens();
        let Token::Word(word) = word else {
            return None;
        };
        let Token::SingleQuotedString(text) = value else {
            return None;
        };
        if word.quote_style.is_some() {
            return None;
        }
        let precision = timestamp_precision(&word.value)?;
        let digits = text.rsplit_once('.').map_or(0, |(_, f)| {
            f.chars().take_while(char::is_ascii_digit).count()
        });
        if u64::try_from(digits).unwrap_or(u64::MAX) > precision {
            return Some(Err(
                datafusion::sql::sqlparser::parser::ParserError::ParserError(format!(
                    "{} '{text}': more fractional digits than the type holds (DuckDB rounds \
                     them, lakeq does not yet); write at most {precision}",
                    word.value
                )),
            ));
        }
        parser.next_token();
        parser.next_token();
        Some(Ok(Expr::Cast {
            kind: CastKind::Cast,
            expr: Box::new(Expr::value(Value::SingleQuotedString(text))),
            data_type: DataType::Timestamp(Some(precision), TimezoneInfo::None),
            array: false,
            format: None,
        }))
    }

    fn dialect(&self) -> std::any::TypeId {
        // DuckDB-specific branches of the parser (`dialect_of!(self is DuckDbDialect)`),
        // such as `//` and `STRUCT(...)` literals, apply to this dialect too.
        std::any::TypeId::of::<DuckDbDialect>()
    }
}

/// The fractional-second digits of DuckDB's `TIMESTAMP_S` / `_MS` / `_US` / `_NS`
/// type names (any case), `None` for other names.
pub fn timestamp_precision(name: &str) -> Option<u64> {
    match name.to_ascii_uppercase().as_str() {
        "TIMESTAMP_S" => Some(0),
        "TIMESTAMP_MS" => Some(3),
        "TIMESTAMP_US" => Some(6),
        "TIMESTAMP_NS" => Some(9),
        _ => None,
    }
}

/// DuckDB's FROM-first queries without a SELECT (`FROM t WHERE x > 1`) get an
/// explicit `SELECT *`: sqlparser only takes a bare `FROM t`. A `FROM` starts a
/// query at the start of the text, after `(`, after a set operator and after
/// `AS` (CTAS, views); it gets `SELECT * ` unless a `SELECT` follows it in the
/// same query.
pub fn insert_select_star(sql: &str) -> String {
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&LakeqDialect, sql).tokenize_with_location() else {
        return sql.to_string();
    };
    let significant: Vec<_> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let keyword = |t: &Token| match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.keyword),
        _ => None,
    };
    let mut inserts = Vec::new();
    // `INSERT INTO t [(cols)] FROM s`: the first FROM at depth 0 starts the query.
    let is_insert = significant
        .first()
        .is_some_and(|t| keyword(&t.token) == Some(Keyword::INSERT));
    let mut depth = 0i32;
    let mut insert_from_seen = false;
    for (i, tok) in significant.iter().enumerate() {
        match tok.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        if depth == 0
            && matches!(
                keyword(&tok.token),
                Some(Keyword::SELECT | Keyword::VALUES | Keyword::WITH | Keyword::DEFAULT)
            )
        {
            // The INSERT's source already started: its FROM is a plain one.
            insert_from_seen = true;
        }
        if keyword(&tok.token) != Some(Keyword::FROM) {
            continue;
        }
        let insert_source = is_insert && depth == 0 && !insert_from_seen;
        if is_insert && depth == 0 {
            insert_from_seen = true;
        }
        let starts_query = insert_source
            || match i.checked_sub(1).and_then(|p| significant.get(p)) {
                None => true,
                Some(prev) => {
                    let set_operator = |t: Option<&&TokenWithSpan>| {
                        t.is_some_and(|t| {
                            matches!(
                                keyword(&t.token),
                                Some(Keyword::UNION | Keyword::EXCEPT | Keyword::INTERSECT)
                            )
                        })
                    };
                    matches!(prev.token, Token::LParen | Token::SemiColon)
                        || set_operator(Some(prev))
                        || keyword(&prev.token) == Some(Keyword::AS)
                        // `UNION ALL FROM t`, but not `x IS DISTINCT FROM y`.
                        || matches!(keyword(&prev.token), Some(Keyword::ALL | Keyword::DISTINCT))
                            && set_operator(i.checked_sub(2).and_then(|p| significant.get(p)))
                }
            };
        if !starts_query {
            continue;
        }
        // Is there a SELECT in this query (same depth, before it ends)?
        let mut depth = 0i32;
        let mut has_select = false;
        for t in significant.iter().skip(i + 1) {
            match &t.token {
                Token::LParen => depth += 1,
                Token::RParen if depth == 0 => break,
                Token::RParen => depth -= 1,
                Token::SemiColon if depth == 0 => break,
                other if depth == 0 => match keyword(other) {
                    Some(Keyword::SELECT) => {
                        has_select = true;
                        break;
                    }
                    Some(Keyword::UNION | Keyword::EXCEPT | Keyword::INTERSECT) => break,
                    _ => {}
                },
                _ => {}
            }
        }
        if !has_select {
            inserts.push(tok.span.start);
        }
    }
    if inserts.is_empty() {
        return sql.to_string();
    }
    // Locations are 1-based (line, column in characters).
    let mut out = String::with_capacity(sql.len() + inserts.len() * 9);
    let (mut line, mut column) = (1u64, 1u64);
    let mut next = inserts.into_iter().peekable();
    for c in sql.chars() {
        while next
            .peek()
            .is_some_and(|loc| loc.line == line && loc.column == column)
        {
            out.push_str("SELECT * ");
            next.next();
        }
        out.push(c);
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    out
}

/// Parse a script of DuckDB SQL into DataFusion statements.
pub fn parse_statements(sql: &str) -> Result<VecDeque<DFStatement>> {
    let dialect = LakeqDialect;
    let desugared = super::sugar::desugar(sql);
    let sql = desugared.as_deref().unwrap_or(sql);
    let sql = insert_select_star(&super::copy::rewrite_merge_stars(
        &super::copy::rewrite_with_no_data(&super::copy::rewrite_copy_options(sql)?),
    ));
    let mut parser: DFParser = DFParserBuilder::new(sql.as_str())
        .with_dialect(&dialect)
        .build()
        .map_err(Error::DataFusion)?;
    let statements = parser.parse_statements().map_err(Error::DataFusion)?;
    for statement in &statements {
        check_expression_depth(statement)?;
    }
    Ok(statements)
}

/// DuckDB's default `max_expression_depth`: deeper expressions are refused
/// before they are planned.
pub const MAX_EXPRESSION_DEPTH: usize = 1000;

/// Refuse a statement whose expressions nest deeper than
/// [`MAX_EXPRESSION_DEPTH`], as DuckDB does. A long operator chain (`0-1-1-…`,
/// `a = 1 OR a = 2 OR …`) parses into a tree one level deeper per operator,
/// and planning recurses once per level: without this limit a few thousand
/// terms overflowed the stack (an abort, not an error) after minutes of
/// planning. The check itself walks at most one level past the limit.
fn check_expression_depth(statement: &DFStatement) -> Result<()> {
    use datafusion::sql::parser::CopyToSource;
    use datafusion::sql::sqlparser::ast::{Visit, Visitor};
    use std::ops::ControlFlow;

    struct Depth {
        current: usize,
    }
    impl Visitor for Depth {
        type Break = ();
        fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.current += 1;
            if self.current > MAX_EXPRESSION_DEPTH {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.current = self.current.saturating_sub(1);
            ControlFlow::Continue(())
        }
    }
    let mut depth = Depth { current: 0 };
    let flow = match statement {
        DFStatement::Statement(s) => s.visit(&mut depth),
        DFStatement::CopyTo(copy) => match &copy.source {
            CopyToSource::Query(query) => query.visit(&mut depth),
            CopyToSource::Relation(_) => ControlFlow::Continue(()),
        },
        DFStatement::Explain(explain) => return check_expression_depth(&explain.statement),
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => ControlFlow::Continue(()),
    };
    if flow.is_break() {
        return Err(Error::Unsupported(format!(
            "an expression nested more than {MAX_EXPRESSION_DEPTH} levels deep (DuckDB's \
             max_expression_depth): a chain of that many operators cannot be planned; split it \
             (an IN list instead of a chain of ORs, or intermediate columns)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_first_gets_select_star() {
        assert_eq!(
            insert_select_star("FROM t WHERE x"),
            "SELECT * FROM t WHERE x"
        );
        assert_eq!(insert_select_star("FROM t SELECT a"), "FROM t SELECT a");
        assert_eq!(
            insert_select_star("SELECT * FROM (FROM t) UNION ALL\nFROM u"),
            "SELECT * FROM (SELECT * FROM t) UNION ALL\nSELECT * FROM u"
        );
        assert_eq!(
            insert_select_star("SELECT extract(year FROM ts) FROM t"),
            "SELECT extract(year FROM ts) FROM t"
        );
        assert_eq!(insert_select_star("DELETE FROM t"), "DELETE FROM t");
        assert_eq!(
            insert_select_star("SELECT a IS NOT DISTINCT FROM b FROM t"),
            "SELECT a IS NOT DISTINCT FROM b FROM t"
        );
        assert_eq!(
            insert_select_star("FROM t UNION DISTINCT FROM u"),
            "SELECT * FROM t UNION DISTINCT SELECT * FROM u"
        );
        assert_eq!(
            insert_select_star("INSERT INTO t FROM range(3)"),
            "INSERT INTO t SELECT * FROM range(3)"
        );
        assert_eq!(
            insert_select_star("INSERT INTO t SELECT a FROM u"),
            "INSERT INTO t SELECT a FROM u"
        );
    }

    #[test]
    fn expressions_deeper_than_duckdbs_limit_are_refused() {
        // `0-1-…-1` with n operators nests n + 1 expressions (the literals too).
        let chain = |n: usize| format!("SELECT 0{} AS x", "-1".repeat(n));
        assert!(parse_statements(&chain(MAX_EXPRESSION_DEPTH - 1)).is_ok());
        for sql in [
            chain(MAX_EXPRESSION_DEPTH),
            format!("EXPLAIN {}", chain(5_000)),
            format!("COPY ({}) TO 'x.parquet'", chain(5_000)),
            format!("CREATE VIEW v AS {}", chain(5_000)),
        ] {
            let e = parse_statements(&sql).unwrap_err().to_string();
            assert!(e.contains("max_expression_depth"), "{e}");
        }
    }

    #[test]
    fn parses_duckdb_syntax() {
        for sql in [
            "FROM t WHERE x > 1",
            "SELECT * EXCLUDE (a) FROM t ORDER BY ALL",
            "SELECT a, count(*) FROM t GROUP BY ALL",
            "SELECT * FROM lake.t AT (VERSION => 3) AS x",
            "SELECT * FROM lake.t AT (TIMESTAMP => now() - INTERVAL '1 hour')",
            "SELECT 7 // 2",
            "SELECT {'a': 1}",
            "SELECT * FROM lake.snapshots()",
            "SELECT * FROM (FROM t WHERE a = 1) UNION ALL FROM u ORDER BY 1",
            "CREATE TABLE x AS FROM t WHERE a > 1",
        ] {
            let parsed = parse_statements(sql);
            assert!(parsed.is_ok(), "{sql}: {parsed:?}");
        }
    }
}
