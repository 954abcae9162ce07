//! DuckDB's `CREATE MACRO` and `DROP MACRO`, as statements lakeq runs on a lake.
//!
//! A macro is stored as DuckDB stores it (`ducklake_macro`, `_impl`,
//! `_parameters`), its body as the user wrote it: DuckDB SQL, which DuckDB
//! parses when it reads the lake and lakeq expands at each call (see
//! [`super::rewrite`]). The forms: `CREATE [OR REPLACE] MACRO [IF NOT EXISTS]
//! name(a, b := 5) AS expr`, overloads `name (a) AS a, (a, b) AS a + b`, typed
//! parameters `(x INTEGER)`, table macros `AS TABLE query`, and `DROP MACRO
//! [TABLE] [IF EXISTS] name` (`FUNCTION` is DuckDB's synonym of `MACRO`).

use std::ops::Range;
use std::str::FromStr;

use datafusion::sql::sqlparser::ast::{Expr, UnaryOperator, Value};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::dialect::lake_statements::{Spanned, tokenize};
use crate::error::{Error, Result};

/// A macro parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct MacroParameter {
    /// Its name.
    pub name: String,
    /// The DuckLake name of its declared type (`int32`), `unknown` when untyped.
    pub type_name: String,
    /// Its default: the value's text and DuckLake type (`6`, `int32`).
    pub default: Option<(String, String)>,
}

/// One implementation (parameter list and body) of a macro.
#[derive(Debug, Clone, PartialEq)]
pub struct MacroImplementation {
    /// The parameters, in order.
    pub parameters: Vec<MacroParameter>,
    /// The body as written: an expression, or a query for a table macro.
    pub body: String,
}

/// `CREATE MACRO` or `DROP MACRO`.
#[derive(Debug, Clone, PartialEq)]
pub enum MacroStatement {
    /// `CREATE [OR REPLACE] MACRO [IF NOT EXISTS] name impl, impl ...`.
    Create {
        /// The name's parts (`name`, `schema.name`, `lake.schema.name`).
        name: Vec<String>,
        /// `OR REPLACE`.
        or_replace: bool,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
        /// `AS TABLE`.
        table: bool,
        /// One per parameter list.
        implementations: Vec<MacroImplementation>,
    },
    /// `DROP MACRO [TABLE] [IF EXISTS] name`.
    Drop {
        /// The name's parts.
        name: Vec<String>,
        /// `DROP MACRO TABLE`.
        table: bool,
        /// `IF EXISTS`.
        if_exists: bool,
    },
}

/// The tokens of a statement without whitespace and comments.
struct Tokens<'a> {
    sql: &'a str,
    tokens: Vec<Spanned>,
    at: usize,
}

impl Tokens<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn keyword(&mut self, k: Keyword) -> bool {
        let found = matches!(self.peek(), Some(Token::Word(w)) if w.quote_style.is_none() && w.keyword == k);
        if found {
            self.at += 1;
        }
        found
    }

    fn word(&mut self, text: &str) -> bool {
        let found = matches!(self.peek(), Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(text));
        if found {
            self.at += 1;
        }
        found
    }

    fn token(&mut self, t: &Token) -> bool {
        let found = self.peek() == Some(t);
        if found {
            self.at += 1;
        }
        found
    }

    /// An identifier (quoted or not).
    fn identifier(&mut self, what: &str) -> Result<String> {
        match self.peek() {
            Some(Token::Word(w)) => {
                let name = w.value.clone();
                self.at += 1;
                Ok(name)
            }
            other => Err(Error::Unsupported(format!(
                "expected {what}, found {}",
                other.map_or_else(|| "the end of the statement".to_string(), |t| t.to_string())
            ))),
        }
    }

    /// A dotted name.
    fn name(&mut self) -> Result<Vec<String>> {
        let mut parts = vec![self.identifier("a macro name")?];
        while self.token(&Token::Period) {
            parts.push(self.identifier("a macro name")?);
        }
        Ok(parts)
    }

    /// The byte range of tokens `from..to` in the text.
    fn text(&self, from: usize, to: usize) -> Result<String> {
        let start = self.tokens.get(from).map(|(_, r)| r.start);
        let end = to
            .checked_sub(1)
            .and_then(|last| self.tokens.get(last))
            .map(|(_, r)| r.end);
        match (start, end) {
            (Some(start), Some(end)) if start <= end => self
                .sql
                .get(Range { start, end })
                .map(|t| t.trim().to_string())
                .ok_or_else(|| Error::Unsupported("cannot read the macro's text".into())),
            _ => Ok(String::new()),
        }
    }

    /// The index after the tokens from here up to (not including) a top-level
    /// `,` or the end, or `)` closing the current level when `in_parens`.
    fn until_top_level_comma(&self, in_parens: bool) -> usize {
        let mut depth = 0usize;
        let mut i = self.at;
        while let Some((t, _)) = self.tokens.get(i) {
            match t {
                Token::LParen | Token::LBracket | Token::LBrace => depth += 1,
                Token::RParen | Token::RBracket | Token::RBrace => {
                    if depth == 0 && in_parens {
                        return i;
                    }
                    depth = depth.saturating_sub(1);
                }
                Token::Comma if depth == 0 => return i,
                Token::SemiColon if depth == 0 => return i,
                _ => {}
            }
            i += 1;
        }
        i
    }
}

/// A parameter default as DuckDB stores it: the value's text and type.
fn default_of(text: &str) -> Result<(String, String)> {
    let refuse = || {
        Error::Unsupported(format!(
            "macro parameter default '{text}': lakeq stores constant defaults only \
             (numbers, strings, booleans, DATE/TIMESTAMP literals)"
        ))
    };
    let expr = super::rewrite::parse_expression(text).map_err(|_| refuse())?;
    let number = |n: &str, negative: bool| -> Result<(String, String)> {
        let text = if negative {
            format!("-{n}")
        } else {
            n.to_string()
        };
        let type_name = if let Some((int, frac)) = n.split_once('.') {
            let digits = int.trim_start_matches('0').len() + frac.len();
            format!("decimal({},{})", digits.max(frac.len() + 1), frac.len())
        } else if text.parse::<i32>().is_ok() {
            "int32".into()
        } else if text.parse::<i64>().is_ok() {
            "int64".into()
        } else {
            return Err(refuse());
        };
        Ok((text, type_name))
    };
    match expr {
        Expr::Value(v) => match v.value {
            Value::Number(n, _) => number(&n, false),
            Value::SingleQuotedString(s) => Ok((s, "varchar".into())),
            Value::Boolean(b) => Ok((b.to_string(), "boolean".into())),
            _ => Err(refuse()),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match *expr {
            Expr::Value(v) => match v.value {
                Value::Number(n, _) => number(&n, true),
                _ => Err(refuse()),
            },
            _ => Err(refuse()),
        },
        Expr::TypedString(t) => {
            let type_name = match t.data_type.to_string().to_ascii_uppercase().as_str() {
                "DATE" => "date",
                "TIMESTAMP" => "timestamp",
                "TIME" => "time",
                _ => return Err(refuse()),
            };
            match t.value.value {
                Value::SingleQuotedString(s) => Ok((s, type_name.into())),
                _ => Err(refuse()),
            }
        }
        _ => Err(refuse()),
    }
}

/// The DuckLake name of a declared parameter type (`INTEGER` is `int32`).
fn type_name(text: &str) -> Result<String> {
    crate::spec::types::DuckLakeType::from_str(&text.to_ascii_lowercase())
        .map(|t| t.to_string())
        .map_err(|_| {
            Error::Unsupported(format!(
                "macro parameter type '{text}': lakeq stores the DuckLake column types only"
            ))
        })
}

/// One parameter list `(a, b INTEGER, c := 5)`; the tokens stand after its `(`.
fn parameters(t: &mut Tokens<'_>) -> Result<Vec<MacroParameter>> {
    let mut out = Vec::new();
    if t.token(&Token::RParen) {
        return Ok(out);
    }
    loop {
        let name = t.identifier("a parameter name")?;
        let end = t.until_top_level_comma(true);
        // `name [type] [:= default]` (DuckDB also reads `name = default`).
        let assign = (t.at..end).find(|&i| {
            matches!(
                t.tokens.get(i).map(|(tok, _)| tok),
                Some(Token::Assignment | Token::Eq)
            )
        });
        let type_end = assign.unwrap_or(end);
        let type_text = t.text(t.at, type_end)?;
        let default = match assign {
            Some(a) => Some(default_of(&t.text(a + 1, end)?)?),
            None => None,
        };
        if out
            .iter()
            .any(|p: &MacroParameter| p.name.eq_ignore_ascii_case(&name))
        {
            return Err(Error::Unsupported(format!(
                "macro parameter '{name}' is given twice"
            )));
        }
        out.push(MacroParameter {
            name,
            type_name: if type_text.is_empty() {
                "unknown".into()
            } else {
                type_name(&type_text)?
            },
            default,
        });
        t.at = end;
        if t.token(&Token::Comma) {
            continue;
        }
        if t.token(&Token::RParen) {
            return Ok(out);
        }
        return Err(Error::Unsupported(
            "a macro's parameter list is not closed with ')'".into(),
        ));
    }
}

/// Parse `CREATE MACRO` / `DROP MACRO` (or `FUNCTION`); `None` for any other
/// statement.
pub fn parse_macro_statement(sql: &str) -> Result<Option<MacroStatement>> {
    let Ok(tokens) = tokenize(sql) else {
        return Ok(None);
    };
    let tokens = tokens
        .into_iter()
        .filter(|(t, _)| !matches!(t, Token::Whitespace(_)))
        .collect();
    let mut t = Tokens { sql, tokens, at: 0 };
    if t.keyword(Keyword::DROP) {
        if !(t.keyword(Keyword::MACRO) || t.keyword(Keyword::FUNCTION)) {
            return Ok(None);
        }
        let table = t.keyword(Keyword::TABLE);
        let if_exists = t.keyword(Keyword::IF) && t.keyword(Keyword::EXISTS);
        let name = t.name()?;
        t.token(&Token::SemiColon);
        if t.peek().is_some() {
            return Err(Error::Unsupported(format!(
                "DROP MACRO takes one macro name: {sql}"
            )));
        }
        return Ok(Some(MacroStatement::Drop {
            name,
            table,
            if_exists,
        }));
    }
    if !t.keyword(Keyword::CREATE) {
        return Ok(None);
    }
    let or_replace = t.keyword(Keyword::OR) && t.keyword(Keyword::REPLACE);
    let temporary = t.keyword(Keyword::TEMP) || t.keyword(Keyword::TEMPORARY);
    if !(t.keyword(Keyword::MACRO) || t.keyword(Keyword::FUNCTION)) {
        return Ok(None);
    }
    if temporary {
        return Err(Error::Unsupported(
            "CREATE TEMPORARY MACRO: lakeq keeps macros in a DuckLake only".into(),
        ));
    }
    let if_not_exists =
        t.keyword(Keyword::IF) && t.keyword(Keyword::NOT) && t.keyword(Keyword::EXISTS);
    let name = t.name()?;
    let mut implementations = Vec::new();
    let mut table = None;
    loop {
        if !t.token(&Token::LParen) {
            return Err(Error::Unsupported(format!(
                "CREATE MACRO {}: expected '(' and the parameters",
                name.join(".")
            )));
        }
        let parameters = parameters(&mut t)?;
        if !t.keyword(Keyword::AS) {
            return Err(Error::Unsupported(format!(
                "CREATE MACRO {}: expected AS after the parameters",
                name.join(".")
            )));
        }
        let is_table = t.keyword(Keyword::TABLE) || (t.word("TABLE"));
        if table.is_some_and(|k| k != is_table) {
            return Err(Error::Unsupported(format!(
                "CREATE MACRO {}: scalar and table implementations in one macro",
                name.join(".")
            )));
        }
        table = Some(is_table);
        // A table macro's query has commas of its own: it is the last implementation.
        let end = if is_table {
            t.tokens
                .iter()
                .rposition(|(tok, _)| !matches!(tok, Token::SemiColon))
                .map_or(t.at, |i| i + 1)
        } else {
            t.until_top_level_comma(false)
        };
        let body = t.text(t.at, end)?;
        if body.is_empty() {
            return Err(Error::Unsupported(format!(
                "CREATE MACRO {}: the body is empty",
                name.join(".")
            )));
        }
        implementations.push(MacroImplementation { parameters, body });
        t.at = end;
        if t.token(&Token::Comma) {
            continue;
        }
        t.token(&Token::SemiColon);
        if t.peek().is_some() {
            return Err(Error::Unsupported(format!(
                "CREATE MACRO {}: unexpected text after the body",
                name.join(".")
            )));
        }
        break;
    }
    Ok(Some(MacroStatement::Create {
        name,
        or_replace,
        if_not_exists,
        table: table.unwrap_or(false),
        implementations,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(sql: &str) -> (Vec<String>, bool, Vec<MacroImplementation>) {
        match parse_macro_statement(sql) {
            Ok(Some(MacroStatement::Create {
                name,
                table,
                implementations,
                ..
            })) => (name, table, implementations),
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn macros_parse_with_defaults_types_and_overloads() {
        let (name, table, impls) =
            create("CREATE MACRO zip(i, j, num_chars := 6) AS (\n  -- note\n  i || j\n);");
        assert_eq!(name, vec!["zip"]);
        assert!(!table);
        assert_eq!(impls.len(), 1);
        assert_eq!(impls[0].body, "(\n  -- note\n  i || j\n)");
        assert_eq!(
            impls[0].parameters[2].default,
            Some(("6".into(), "int32".into()))
        );
        let (_, _, impls) = create("CREATE MACRO m () AS 0, (a) AS a, (a, b) AS a + b");
        assert_eq!(
            impls.iter().map(|i| i.body.as_str()).collect::<Vec<_>>(),
            vec!["0", "a", "a + b"]
        );
        let (_, _, impls) = create(
            "CREATE MACRO add_one_same(x BIGINT := 1, d := DATE '2020-01-01', s := 'it''s') AS (x + 1)",
        );
        let p = &impls[0].parameters;
        assert_eq!(p[0].type_name, "int64");
        assert_eq!(p[0].default, Some(("1".into(), "int32".into())));
        assert_eq!(p[1].default, Some(("2020-01-01".into(), "date".into())));
        assert_eq!(p[2].default, Some(("it's".into(), "varchar".into())));
        let (name, table, impls) =
            create("CREATE MACRO lake.s.xt(a, b) AS TABLE SELECT a AS x, b AS y FROM t;");
        assert_eq!(name, vec!["lake", "s", "xt"]);
        assert!(table);
        assert_eq!(impls[0].body, "SELECT a AS x, b AS y FROM t");
        assert!(matches!(
            parse_macro_statement("CREATE MACRO m(a := now()) AS a"),
            Err(Error::Unsupported(m)) if m.contains("constant defaults")
        ));
    }

    #[test]
    fn drop_macro_parses() {
        assert_eq!(
            parse_macro_statement("DROP MACRO TABLE IF EXISTS s.xt;")
                .ok()
                .flatten(),
            Some(MacroStatement::Drop {
                name: vec!["s".into(), "xt".into()],
                table: true,
                if_exists: true
            })
        );
        assert_eq!(parse_macro_statement("DROP TABLE t").ok().flatten(), None);
        assert_eq!(parse_macro_statement("SELECT 1").ok().flatten(), None);
    }
}
