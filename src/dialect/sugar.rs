//! DuckDB's syntactic sugar that sqlparser does not read, rewritten into plain
//! calls before parsing (on tokens, so strings and comments are never touched):
//!
//! - method chaining on a call or list: `substr(s, 1, 3).rpad(3, ' ')` is
//!   `rpad(substr(s, 1, 3), 3, ' ')`, `[1, 2].flatten()` is `flatten([1, 2])`;
//! - list comprehensions: `[f(x) FOR x IN l]` is `list_apply(l, lambda x: f(x))`,
//!   `[f(x) FOR x IN l IF c(x)]` is `list_apply(list_filter(l, lambda x: c(x)), lambda x: f(x))`.
//!
//! `a.f()` on a plain name is left alone (it is also how a schema-qualified
//! function is written).

use std::ops::Range;

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::dialect::lake_statements::tokenize;

/// The column list `INSERT INTO t BY NAME` is rewritten with (see [`super::plan`]).
pub const BY_NAME_MARKER: &str = "\"__lakeq_insert_by_name\"";

/// The most rewrites of one statement (each removes one chain link or comprehension).
const MAX_REWRITES: usize = 256;

/// `sql` with method chains and list comprehensions rewritten; `None` when it
/// has neither (or cannot be tokenized: the parser then reports it).
pub fn desugar(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    if !sql.contains(['.', '_']) && !lower.contains("for") && !lower.contains("by") {
        return None;
    }
    let mut text = sql.to_string();
    let mut changed = false;
    for _ in 0..MAX_REWRITES {
        match rewrite_once(&text) {
            Some(next) => {
                text = next;
                changed = true;
            }
            None => break,
        }
    }
    changed.then_some(text)
}

/// Tokens without whitespace, with byte ranges.
fn tokens(sql: &str) -> Option<Vec<(Token, Range<usize>)>> {
    Some(
        tokenize(sql)
            .ok()?
            .into_iter()
            .filter(|(t, _)| !matches!(t, Token::Whitespace(_)))
            .collect(),
    )
}

fn is_open(t: &Token) -> bool {
    matches!(t, Token::LParen | Token::LBracket)
}

fn is_close(t: &Token) -> bool {
    matches!(t, Token::RParen | Token::RBracket)
}

/// Index of the bracket matching the closing one at `close`.
fn matching_open(tokens: &[(Token, Range<usize>)], close: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = close;
    loop {
        let (t, _) = tokens.get(i)?;
        if is_close(t) {
            depth += 1;
        } else if is_open(t) {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(i);
            }
        }
        i = i.checked_sub(1)?;
    }
}

/// Index of the bracket matching the opening one at `open`.
fn matching_close(tokens: &[(Token, Range<usize>)], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, (t, _)) in tokens.iter().enumerate().skip(open) {
        if is_open(t) {
            depth += 1;
        } else if is_close(t) {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// The first token of the primary expression ending at `end` (a call, a list or
/// an index into one): `f(...)`, `s.f(...)`, `[...]`, `x[1]`, `f(...)[1]`.
fn primary_start(tokens: &[(Token, Range<usize>)], end: usize) -> Option<usize> {
    let (last, _) = tokens.get(end)?;
    if !is_close(last) {
        return None;
    }
    let mut start = matching_open(tokens, end)?;
    loop {
        let Some(before) = start.checked_sub(1) else {
            return Some(start);
        };
        match tokens.get(before).map(|(t, _)| t) {
            // The name of a call (possibly qualified), or what a `[` indexes.
            Some(Token::Word(w)) if w.quote_style.is_some() || !is_clause_keyword(w.keyword) => {
                start = before;
                while let (Some(Token::Period), Some(Token::Word(_))) = (
                    start
                        .checked_sub(1)
                        .and_then(|i| tokens.get(i))
                        .map(|(t, _)| t),
                    start
                        .checked_sub(2)
                        .and_then(|i| tokens.get(i))
                        .map(|(t, _)| t),
                ) {
                    start -= 2;
                }
                return Some(start);
            }
            Some(t)
                if is_close(t)
                    && matches!(tokens.get(start).map(|(t, _)| t), Some(Token::LBracket)) =>
            {
                start = matching_open(tokens, before)?;
            }
            _ => return Some(start),
        }
    }
}

/// Keywords that may stand before `(` without naming a function.
fn is_clause_keyword(k: Keyword) -> bool {
    matches!(
        k,
        Keyword::IN
            | Keyword::AS
            | Keyword::EXISTS
            | Keyword::VALUES
            | Keyword::ON
            | Keyword::USING
            | Keyword::OVER
            | Keyword::FILTER
            | Keyword::AND
            | Keyword::OR
            | Keyword::NOT
            | Keyword::THEN
            | Keyword::WHEN
            | Keyword::ELSE
            | Keyword::SELECT
            | Keyword::FROM
            | Keyword::WHERE
            | Keyword::BY
            | Keyword::IS
            | Keyword::LIKE
            | Keyword::ILIKE
            | Keyword::BETWEEN
            | Keyword::CASE
            | Keyword::JOIN
            | Keyword::ALL
            | Keyword::ANY
            | Keyword::DISTINCT
            | Keyword::WITH
            | Keyword::INTO
            | Keyword::TABLE
            | Keyword::RETURN
            | Keyword::HAVING
            | Keyword::QUALIFY
            | Keyword::LATERAL
    )
}

fn slice(sql: &str, from: usize, to: usize) -> Option<&str> {
    sql.get(from..to)
}

fn rewrite_once(sql: &str) -> Option<String> {
    let tokens = tokens(sql)?;
    let at = |i: usize| tokens.get(i).map(|(t, _)| t);
    let start_of = |i: usize| tokens.get(i).map(|(_, r)| r.start);
    let end_of = |i: usize| tokens.get(i).map(|(_, r)| r.end);
    // `INSERT INTO t BY NAME <query>`: a marker column list, which
    // [`super::plan`] replaces by the query's column names.
    if let (Some(Token::Word(insert)), Some(Token::Word(into))) = (at(0), at(1))
        && insert.keyword == Keyword::INSERT
        && into.keyword == Keyword::INTO
    {
        let mut i = 2;
        while matches!(at(i), Some(Token::Word(_))) && matches!(at(i + 1), Some(Token::Period)) {
            i += 2;
        }
        if let (Some(Token::Word(_)), Some(Token::Word(by)), Some(Token::Word(name))) =
            (at(i), at(i + 1), at(i + 2))
            && by.keyword == Keyword::BY
            && name.value.eq_ignore_ascii_case("name")
        {
            return Some(format!(
                "{}({BY_NAME_MARKER}){}",
                slice(sql, 0, start_of(i + 1)?)?,
                slice(sql, end_of(i + 2)?, sql.len())?
            ));
        }
    }
    // `100_000`: digits grouped by underscores (the tokenizer splits off `_000`).
    for pair in tokens.windows(2) {
        if let [(Token::Number(..), number), (Token::Word(w), group)] = pair
            && number.end == group.start
            && w.quote_style.is_none()
            && w.value.starts_with('_')
            && w.value.chars().all(|c| c == '_' || c.is_ascii_digit())
        {
            let digits =
                format!("{}{}", slice(sql, number.start, number.end)?, w.value).replace('_', "");
            return Some(format!(
                "{}{digits}{}",
                slice(sql, 0, number.start)?,
                slice(sql, group.end, sql.len())?
            ));
        }
    }
    // A list comprehension: `[` ... FOR x IN ... [IF ...] `]` at one level.
    for (open, (t, _)) in tokens.iter().enumerate() {
        if !matches!(t, Token::LBracket) {
            continue;
        }
        let Some(close) = matching_close(&tokens, open) else {
            continue;
        };
        let mut depth = 0usize;
        let (mut for_at, mut in_at, mut if_at) = (None, None, None);
        for i in open + 1..close {
            match at(i) {
                Some(t) if is_open(t) => depth += 1,
                Some(t) if is_close(t) => depth = depth.saturating_sub(1),
                Some(Token::Word(w)) if depth == 0 && w.quote_style.is_none() => match w.keyword {
                    Keyword::FOR if for_at.is_none() => for_at = Some(i),
                    Keyword::IN if for_at.is_some() && in_at.is_none() => in_at = Some(i),
                    Keyword::IF if in_at.is_some() && if_at.is_none() => if_at = Some(i),
                    _ => {}
                },
                _ => {}
            }
        }
        let (Some(for_at), Some(in_at)) = (for_at, in_at) else {
            continue;
        };
        let element = slice(sql, end_of(open)?, start_of(for_at)?)?.trim();
        let variable = slice(sql, end_of(for_at)?, start_of(in_at)?)?.trim();
        let list_end = if_at.unwrap_or(close);
        let list = slice(sql, end_of(in_at)?, start_of(list_end)?)?.trim();
        let source = match if_at {
            Some(i) => {
                let condition = slice(sql, end_of(i)?, start_of(close)?)?.trim();
                format!("list_filter({list}, lambda {variable}: {condition})")
            }
            None => list.to_string(),
        };
        let replacement = format!("list_apply({source}, lambda {variable}: {element})");
        return Some(format!(
            "{}{replacement}{}",
            slice(sql, 0, start_of(open)?)?,
            slice(sql, end_of(close)?, sql.len())?
        ));
    }
    // A method call on a call or a list: `<primary> . name ( args )`.
    for (dot, (t, _)) in tokens.iter().enumerate() {
        if !matches!(t, Token::Period) {
            continue;
        }
        let (Some(receiver_end), Some(Token::Word(_)), Some(Token::LParen)) =
            (dot.checked_sub(1), at(dot + 1), at(dot + 2))
        else {
            continue;
        };
        let Some(receiver_start) = primary_start(&tokens, receiver_end) else {
            continue;
        };
        let Some(args_close) = matching_close(&tokens, dot + 2) else {
            continue;
        };
        let receiver = slice(sql, start_of(receiver_start)?, end_of(receiver_end)?)?;
        let args = slice(sql, end_of(dot + 2)?, start_of(args_close)?)?.trim();
        let name = slice(sql, start_of(dot + 1)?, end_of(dot + 1)?)?;
        let call = if args.is_empty() {
            format!("{name}({receiver})")
        } else {
            format!("{name}({receiver}, {args})")
        };
        return Some(format!(
            "{}{call}{}",
            slice(sql, 0, start_of(receiver_start)?)?,
            slice(sql, end_of(args_close)?, sql.len())?
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_chains_and_comprehensions_become_calls() {
        assert_eq!(
            desugar("SELECT substr(i, 1, 3).rpad(3, ' ').string_split('')").as_deref(),
            Some("SELECT string_split(rpad(substr(i, 1, 3), 3, ' '), '')")
        );
        assert_eq!(
            desugar("SELECT [x * 2 FOR x IN [1, 2, 3] IF x > 1].flatten()").as_deref(),
            Some(
                "SELECT flatten(list_apply(list_filter([1, 2, 3], lambda x: x > 1), lambda x: x * 2))"
            )
        );
        assert_eq!(
            desugar("SELECT [list_value(z[1], z[2]) FOR z IN list_zip(a, b)].flatten().array_to_string('')")
                .as_deref(),
            Some("SELECT array_to_string(flatten(list_apply(list_zip(a, b), lambda z: list_value(z[1], z[2]))), '')")
        );
        // Plain names, qualified functions, strings and comments are left alone.
        assert_eq!(
            desugar("SELECT t.a, main.lower('x.y()') FROM s.t -- a.b()"),
            None
        );
        assert_eq!(desugar("SELECT 'for x in [1]'"), None);
        assert_eq!(
            desugar("INSERT INTO s.t BY NAME SELECT 1 AS b").as_deref(),
            Some("INSERT INTO s.t (\"__lakeq_insert_by_name\") SELECT 1 AS b")
        );
        assert_eq!(
            desugar("SELECT 100_000 + 1_0, a_1").as_deref(),
            Some("SELECT 100000 + 10, a_1")
        );
    }
}
