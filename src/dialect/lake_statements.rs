//! The statements lakeq handles in front of DataFusion: statement splitting,
//! DuckDB's `ATTACH` / `DETACH` / `USE`, `SET VARIABLE` and the `ALTER TABLE`
//! forms DataFusion does not plan. Everything works on the tokenizer's output,
//! so string literals and comments are never touched. (Queries go through
//! [`crate::dialect`].)

use std::collections::BTreeMap;
use std::ops::Range;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use crate::error::{Error, Result};

/// A token and its byte range in the original text.
pub(crate) type Spanned = (Token, Range<usize>);

pub(crate) fn tokenize(sql: &str) -> Result<Vec<Spanned>> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| {
            Error::DataFusion(datafusion::error::DataFusionError::SQL(
                Box::new(e.into()),
                None,
            ))
        })?;
    // Map (line, column) — 1-based, in characters — to byte offsets, through the
    // byte offset of every character (one pass: a scan per token would make a long
    // one-line statement quadratic, seconds for a 20,000-character INSERT).
    let mut char_offsets: Vec<usize> = Vec::with_capacity(sql.len() + 1);
    let mut line_starts = vec![0usize];
    for (i, c) in sql.char_indices() {
        char_offsets.push(i);
        if c == '\n' {
            line_starts.push(char_offsets.len());
        }
    }
    char_offsets.push(sql.len());
    let offset = |line: u64, column: u64| -> usize {
        let Some(&start) = usize::try_from(line)
            .ok()
            .and_then(|l| line_starts.get(l.saturating_sub(1)))
        else {
            return sql.len();
        };
        let col = usize::try_from(column).unwrap_or(1).saturating_sub(1);
        start
            .checked_add(col)
            .and_then(|i| char_offsets.get(i))
            .copied()
            .unwrap_or(sql.len())
    };
    Ok(tokens
        .into_iter()
        .map(|t| {
            let range = offset(t.span.start.line, t.span.start.column)
                ..offset(t.span.end.line, t.span.end.column);
            (t.token, range)
        })
        .collect())
}

/// The text of `range` in `sql`, trimmed; an error if the tokenizer's span does not fit the text.
fn statement_text(sql: &str, range: Range<usize>) -> Result<String> {
    sql.get(range.clone())
        .map(|text| text.trim().to_string())
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "cannot split the script at bytes {}..{}",
                range.start, range.end
            ))
        })
}

fn is_trivia(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_))
}

/// Split a script into statements at top-level `;`. Empty statements are dropped.
pub fn split_statements(sql: &str) -> Result<Vec<String>> {
    let tokens = tokenize(sql)?;
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut has_content = false;
    for (tok, range) in &tokens {
        match tok {
            Token::SemiColon => {
                if has_content {
                    out.push(statement_text(sql, start..range.start)?);
                }
                start = range.end;
                has_content = false;
            }
            Token::Whitespace(
                Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_),
            ) => {}
            t if is_trivia(t) => {}
            _ => has_content = true,
        }
    }
    if has_content {
        out.push(statement_text(sql, start..sql.len())?);
    }
    Ok(out)
}

/// How an ATTACH option given as `getvariable('name')` is passed on: this prefix
/// and the variable's name (the session puts in the value).
pub const ATTACH_VARIABLE: &str = "\u{1}getvariable:";

/// A statement lakeq handles itself.
#[derive(Debug, Clone, PartialEq)]
pub enum LakeStatement {
    /// `CHECKPOINT [name]`: DuckLake's maintenance of a lake (the current one by default).
    Checkpoint(Option<String>),
    /// `ATTACH [IF NOT EXISTS] 'ducklake:...' [AS name] [(OPTION value, ...)]`
    Attach {
        /// Location string.
        location: String,
        /// Catalog name.
        name: Option<String>,
        /// Upper-cased option names with their values as text.
        options: BTreeMap<String, String>,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
        /// `OR REPLACE` was given.
        or_replace: bool,
    },
    /// `DETACH [IF EXISTS] name`
    Detach {
        /// Catalog name.
        name: String,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `USE catalog[.schema]` or `USE schema`.
    Use(Vec<String>),
    /// DuckDB's `SET VARIABLE name = expr`.
    SetVariable {
        /// Variable name.
        name: String,
        /// The value's SQL expression.
        expr: String,
    },
    /// `RESET VARIABLE name`.
    ResetVariable {
        /// Variable name.
        name: String,
    },
    /// DuckDB's `PREPARE name AS statement`: kept as text; `EXECUTE name(args)`
    /// runs it with its `$n` / `?` parameters replaced by the arguments.
    Prepare {
        /// Statement name.
        name: String,
        /// The statement's SQL, as written.
        statement: String,
    },
    /// `DEALLOCATE [PREPARE] name`.
    Deallocate {
        /// Statement name.
        name: String,
    },
    /// `SET [GLOBAL | SESSION] name = value` / `RESET name` of one of DuckDB's
    /// settings in [`DUCKDB_SETTINGS`] (`value` is `None` for `RESET`).
    SetSetting {
        /// Setting name, lower-case.
        name: String,
        /// The value as written (quotes removed), `None` for `RESET`.
        value: Option<String>,
    },
    /// `BEGIN [TRANSACTION]`, `START TRANSACTION`.
    Begin,
    /// `COMMIT [TRANSACTION]`, `END [TRANSACTION]`.
    Commit,
    /// `ROLLBACK [TRANSACTION]`, `ABORT [TRANSACTION]`.
    Rollback,
}

/// DuckDB settings the DuckLake suite and DuckDB users set, and what lakeq does
/// with them ([`check_setting`]). Others go to DataFusion's `SET` (`TimeZone`).
pub const DUCKDB_SETTINGS: [(&str, SettingUse); 13] = [
    // How many threads DuckDB runs; lakeq's answers do not depend on its parallelism.
    ("threads", SettingUse::Accepted),
    // lakeq always keeps insertion order (DuckDB's default, `true`); `false`
    // lets DuckDB split a write into a file per thread (`per_thread_output`),
    // a layout lakeq does not produce: refused.
    ("preserve_insertion_order", SettingUse::OnlyTrue),
    // When DuckDB starts a transaction's catalog work; changes no answer.
    ("immediate_transaction_mode", SettingUse::Accepted),
    // DuckDB's cache of Parquet footers; lakeq reads the same files either way.
    ("parquet_metadata_cache", SettingUse::Accepted),
    // Commit retries: lakeq retries a conflicting commit with its own bounded
    // policy; only "never retry" (0) would change an outcome, and is refused.
    ("ducklake_max_retry_count", SettingUse::Retries),
    ("ducklake_retry_wait_ms", SettingUse::Retries),
    ("ducklake_retry_backoff", SettingUse::Retries),
    // Session-wide lake options ([`crate::SessionSettings`]): the file size
    // over every scope's `target_file_size`, the inlining limit of tables
    // without a `data_inlining_row_limit` option or ATTACH option.
    ("ducklake_target_file_size", SettingUse::Session),
    (
        "ducklake_default_data_inlining_row_limit",
        SettingUse::Session,
    ),
    ("disabled_filesystems", SettingUse::Refused),
    ("allow_persistent_secrets", SettingUse::Refused),
    // Extension loading: lakeq has DuckLake built in.
    ("autoinstall_known_extensions", SettingUse::Accepted),
    ("autoload_known_extensions", SettingUse::Accepted),
];

/// What lakeq does with a DuckDB setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingUse {
    /// The setting changes no answer lakeq gives: accepted and ignored.
    Accepted,
    /// Commit retries: accepted unless it turns retries off.
    Retries,
    /// A boolean whose default (`true`) is lakeq's behaviour: `false` is refused.
    OnlyTrue,
    /// A session-wide lake option, kept by the session ([`setting_value`]).
    Session,
    /// Not implemented: an error says so.
    Refused,
}

/// The value of `SET name = value` of a [`SettingUse::Session`] setting: bytes
/// for `ducklake_target_file_size` (a size such as `'10KB'`, more than zero),
/// rows for `ducklake_default_data_inlining_row_limit`; an error, as in DuckDB,
/// for a value it does not take.
pub fn setting_value(name: &str, value: &str) -> Result<u64> {
    if name == "ducklake_target_file_size" {
        let bytes = crate::ops::options::parse_bytes(value)
            .map_err(|e| Error::Unsupported(format!("SET {name} = '{value}': {e}")))?;
        if bytes == 0 {
            return Err(Error::Unsupported(format!(
                "SET {name} = '{value}': the target file size must be greater than zero"
            )));
        }
        return Ok(bytes);
    }
    value.trim().parse::<u64>().map_err(|_| {
        Error::Unsupported(format!(
            "SET {name} = '{value}': not a row count (a whole number, 0 or more)"
        ))
    })
}

/// Check `SET name = value` (`None`: `RESET name`) of a setting in
/// [`DUCKDB_SETTINGS`]: `Ok` when lakeq's answers are those DuckDB gives with
/// it, an error naming the setting otherwise. `RESET` restores DuckDB's default,
/// which is lakeq's behaviour, and is always accepted.
pub fn check_setting(name: &str, value: Option<&str>) -> Result<()> {
    let Some(value) = value else {
        return Ok(());
    };
    let usage = DUCKDB_SETTINGS
        .iter()
        .find(|(s, _)| *s == name)
        .map_or(SettingUse::Refused, |(_, u)| *u);
    match usage {
        SettingUse::Accepted => Ok(()),
        SettingUse::OnlyTrue if value.trim().eq_ignore_ascii_case("true") => Ok(()),
        SettingUse::OnlyTrue => Err(Error::Unsupported(format!(
            "SET {name} = {value}: lakeq always behaves as with {name} = true"
        ))),
        SettingUse::Retries => {
            let number: f64 = value
                .trim()
                .parse()
                .map_err(|_| Error::Unsupported(format!("SET {name} = '{value}': not a number")))?;
            if name == "ducklake_max_retry_count" && number < 1.0 {
                return Err(Error::Unsupported(format!(
                    "SET {name} = {value}: lakeq always retries a conflicting commit a few \
                     times (its own bounded policy) and cannot turn retries off"
                )));
            }
            Ok(())
        }
        SettingUse::Session => setting_value(name, value).map(|_| ()),
        SettingUse::Refused => Err(Error::Unsupported(format!(
            "the DuckDB setting {name} is not supported by lakeq (SET {name} = '{value}'); \
             lake options go on the lake: CALL lake.set_option(...) or ATTACH options"
        ))),
    }
}

/// Recognise ATTACH / DETACH / USE; `None` for anything DataFusion should plan.
pub fn parse_lake_statement(sql: &str) -> Result<Option<LakeStatement>> {
    let mut tokens: Vec<Token> = tokenize(sql)?
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| !is_trivia(t))
        .collect();
    while tokens.last() == Some(&Token::SemiColon) {
        tokens.pop();
    }
    let kw = |i: usize, k: Keyword| matches!(tokens.get(i), Some(Token::Word(w)) if w.keyword == k && w.quote_style.is_none());
    let bad = |msg: &str| Error::Unsupported(format!("{msg} in: {sql}"));
    let ident = |t: Option<&Token>| match t {
        Some(Token::Word(w)) => Some(w.value.clone()),
        Some(Token::SingleQuotedString(s)) => Some(s.clone()),
        _ => None,
    };
    let is_word = |i: usize, w: &str| matches!(tokens.get(i), Some(Token::Word(t)) if t.quote_style.is_none() && t.value.eq_ignore_ascii_case(w));
    // `BEGIN`, `COMMIT`, ... alone or followed by TRANSACTION (`START` only so).
    let transaction = match tokens.len() {
        1 => !is_word(0, "START"),
        2 => is_word(1, "TRANSACTION"),
        _ => false,
    };
    if transaction {
        if is_word(0, "BEGIN") || is_word(0, "START") {
            return Ok(Some(LakeStatement::Begin));
        }
        if is_word(0, "COMMIT") || is_word(0, "END") {
            return Ok(Some(LakeStatement::Commit));
        }
        if is_word(0, "ROLLBACK") || is_word(0, "ABORT") {
            return Ok(Some(LakeStatement::Rollback));
        }
    }
    if is_word(0, "SET") || is_word(0, "RESET") {
        let at = if is_word(1, "GLOBAL") || is_word(1, "SESSION") || is_word(1, "LOCAL") {
            2
        } else {
            1
        };
        if let Some(name) = ident(tokens.get(at))
            && DUCKDB_SETTINGS
                .iter()
                .any(|(s, _)| s.eq_ignore_ascii_case(&name))
        {
            let name = name.to_ascii_lowercase();
            if is_word(0, "RESET") {
                return Ok(Some(LakeStatement::SetSetting { name, value: None }));
            }
            let assigned = matches!(tokens.get(at + 1), Some(Token::Eq)) || is_word(at + 1, "TO");
            let value = match tokens.get(at + 2) {
                Some(Token::Number(n, _)) if tokens.len() == at + 3 => Some(n.clone()),
                Some(Token::SingleQuotedString(v)) if tokens.len() == at + 3 => Some(v.clone()),
                Some(Token::Word(w)) if tokens.len() == at + 3 => Some(w.value.clone()),
                _ => None,
            };
            return match (assigned, value) {
                (true, Some(value)) => Ok(Some(LakeStatement::SetSetting {
                    name,
                    value: Some(value),
                })),
                _ => Err(bad(&format!("SET {name} = value"))),
            };
        }
    }
    if (is_word(0, "SET") || is_word(0, "RESET")) && is_word(1, "VARIABLE") {
        let name = ident(tokens.get(2)).ok_or_else(|| bad("SET VARIABLE needs a name"))?;
        if is_word(0, "RESET") {
            return Ok(Some(LakeStatement::ResetVariable { name }));
        }
        // The expression is the text after `=` (or `TO`).
        let spanned = tokenize(sql)?;
        let mut seen = 0;
        let mut start = None;
        for (tok, range) in &spanned {
            if is_trivia(tok) {
                continue;
            }
            seen += 1;
            if seen == 4 {
                let ok = matches!(tok, Token::Eq)
                    || matches!(tok, Token::Word(w) if w.value.eq_ignore_ascii_case("TO"));
                if !ok {
                    return Err(bad("SET VARIABLE name = value"));
                }
                start = Some(range.end);
                break;
            }
        }
        let Some(start) = start else {
            return Err(bad("SET VARIABLE name = value"));
        };
        let expr = sql
            .get(start..)
            .unwrap_or_default()
            .trim()
            .trim_end_matches(';')
            .to_string();
        if expr.is_empty() {
            return Err(bad("SET VARIABLE needs a value"));
        }
        return Ok(Some(LakeStatement::SetVariable { name, expr }));
    }
    if is_word(0, "DEALLOCATE") {
        let at = if is_word(1, "PREPARE") { 2 } else { 1 };
        let name = ident(tokens.get(at)).ok_or_else(|| bad("DEALLOCATE needs a name"))?;
        return Ok(Some(LakeStatement::Deallocate { name }));
    }
    if is_word(0, "PREPARE") {
        let name = ident(tokens.get(1)).ok_or_else(|| bad("PREPARE needs a name"))?;
        // The statement is the text after the first `AS` outside parentheses
        // (`PREPARE p(INT) AS ...` names parameter types, which DuckDB infers anyway).
        let mut depth = 0usize;
        let mut start = None;
        for (tok, range) in tokenize(sql)?.iter().skip(1) {
            match tok {
                Token::LParen => depth += 1,
                Token::RParen => depth = depth.saturating_sub(1),
                Token::Word(w) if depth == 0 && w.keyword == Keyword::AS => {
                    start = Some(range.end);
                    break;
                }
                _ => {}
            }
        }
        let statement = start
            .and_then(|s| sql.get(s..))
            .map(|s| s.trim().trim_end_matches(';').trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("PREPARE name AS statement"))?;
        return Ok(Some(LakeStatement::Prepare { name, statement }));
    }
    if matches!(tokens.first(), Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("checkpoint"))
    {
        let name = match tokens.get(1) {
            None => None,
            t => Some(ident(t).ok_or_else(|| bad("CHECKPOINT takes a lake name"))?),
        };
        if tokens.len() > 2 {
            return Err(bad("unexpected text after CHECKPOINT name"));
        }
        return Ok(Some(LakeStatement::Checkpoint(name)));
    }
    if kw(0, Keyword::USE) {
        let mut parts = Vec::new();
        let mut i = 1;
        loop {
            parts.push(ident(tokens.get(i)).ok_or_else(|| bad("USE needs a lake or schema name"))?);
            i += 1;
            match tokens.get(i) {
                Some(Token::Period) => i += 1,
                None => break,
                Some(_) => return Err(bad("unexpected text after USE name")),
            }
        }
        return Ok(Some(LakeStatement::Use(parts)));
    }
    if kw(0, Keyword::DETACH) {
        let mut i = 1;
        if kw(i, Keyword::DATABASE) {
            i += 1;
        }
        let if_exists = kw(i, Keyword::IF) && kw(i + 1, Keyword::EXISTS);
        if if_exists {
            i += 2;
        }
        let name = ident(tokens.get(i)).ok_or_else(|| bad("DETACH needs a name"))?;
        return Ok(Some(LakeStatement::Detach { name, if_exists }));
    }
    if !kw(0, Keyword::ATTACH) {
        return Ok(None);
    }
    let mut i = 1;
    let or_replace = kw(i, Keyword::OR) && kw(i + 1, Keyword::REPLACE);
    if or_replace {
        i += 2;
    }
    if kw(i, Keyword::DATABASE) {
        i += 1;
    }
    let if_not_exists = kw(i, Keyword::IF) && kw(i + 1, Keyword::NOT) && kw(i + 2, Keyword::EXISTS);
    if if_not_exists {
        i += 3;
    }
    let Some(Token::SingleQuotedString(location)) = tokens.get(i) else {
        return Err(bad(
            "ATTACH needs a quoted location such as 'ducklake:sqlite:meta.sqlite'",
        ));
    };
    i += 1;
    let mut name = None;
    if kw(i, Keyword::AS) {
        name = Some(ident(tokens.get(i + 1)).ok_or_else(|| bad("ATTACH ... AS needs a name"))?);
        i += 2;
    }
    let mut options = BTreeMap::new();
    if tokens.get(i) == Some(&Token::LParen) {
        i += 1;
        loop {
            let Some(Token::Word(opt)) = tokens.get(i) else {
                return Err(bad("expected an ATTACH option name"));
            };
            let key = opt.value.to_ascii_uppercase();
            i += 1;
            let value = match tokens.get(i) {
                Some(Token::Comma | Token::RParen) => "true".to_string(),
                Some(Token::SingleQuotedString(s)) => {
                    i += 1;
                    s.clone()
                }
                Some(Token::Number(n, _)) => {
                    i += 1;
                    n.clone()
                }
                // DuckDB's `SNAPSHOT_TIME getvariable('t')`: the variable's value.
                Some(Token::Word(w))
                    if w.value.eq_ignore_ascii_case("getvariable")
                        && tokens.get(i + 1) == Some(&Token::LParen) =>
                {
                    let (Some(Token::SingleQuotedString(var)), Some(Token::RParen)) =
                        (tokens.get(i + 2), tokens.get(i + 3))
                    else {
                        return Err(bad(&format!(
                            "ATTACH option {key}: getvariable takes the variable's name as a string"
                        )));
                    };
                    i += 4;
                    format!("{ATTACH_VARIABLE}{var}")
                }
                Some(Token::Word(w)) => {
                    i += 1;
                    w.value.clone()
                }
                _ => return Err(bad(&format!("missing value for ATTACH option {key}"))),
            };
            options.insert(key, value);
            match tokens.get(i) {
                Some(Token::Comma) => i += 1,
                Some(Token::RParen) => {
                    i += 1;
                    break;
                }
                _ => return Err(bad("expected ',' or ')' in ATTACH options")),
            }
        }
    }
    if i != tokens.len() {
        return Err(bad("unexpected text after ATTACH"));
    }
    Ok(Some(LakeStatement::Attach {
        location: location.clone(),
        name,
        options,
        if_not_exists,
        or_replace,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renaming_a_column_renames_it_in_sort_keys() {
        let key = |e: &str| crate::commit::SortKey {
            expression: e.into(),
            descending: true,
            nulls_first: false,
        };
        let keys = [
            key("sort_key_1"),
            key("concat(Sort_Key_1, '_', other)"),
            key("x"),
        ];
        let renamed = renamed_sort_keys(&keys, "sort_key_1", "My Col").unwrap_or_default();
        let texts: Vec<_> = renamed.iter().map(|k| k.expression.as_str()).collect();
        assert_eq!(texts, ["\"My Col\"", "concat(\"My Col\", '_', other)", "x"]);
        assert!(renamed.iter().all(|k| k.descending));
        assert!(renamed_sort_keys(&keys, "nope", "y").is_none());
        let plain = renamed_sort_keys(&keys, "x", "y_2").unwrap_or_default();
        assert_eq!(plain.last().map(|k| k.expression.as_str()), Some("y_2"));
    }

    #[test]
    fn duckdb_settings_are_accepted_only_where_answers_stay_duckdbs() -> Result<()> {
        let set = |sql: &str| -> Result<()> {
            match parse_lake_statement(sql)? {
                Some(LakeStatement::SetSetting { name, value }) => {
                    check_setting(&name, value.as_deref())
                }
                other => Err(Error::Unsupported(format!("{sql} parsed as {other:?}"))),
            }
        };
        set("SET threads=4;")?;
        set("SET preserve_insertion_order = true")?;
        assert!(set("SET preserve_insertion_order = false").is_err());
        set("SET GLOBAL immediate_transaction_mode TO true")?;
        set("SET ducklake_max_retry_count=100")?;
        set("SET ducklake_retry_backoff=2.0")?;
        set("RESET ducklake_target_file_size")?;
        assert!(set("SET ducklake_max_retry_count = 0").is_err());
        set("SET ducklake_target_file_size = '512MB'")?;
        set("SET ducklake_default_data_inlining_row_limit = 0")?;
        let err = set("SET ducklake_target_file_size = 'not-a-size'")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("ducklake_target_file_size"), "{err}");
        assert!(set("SET ducklake_target_file_size = '0'").is_err());
        assert!(set("SET ducklake_default_data_inlining_row_limit = -1").is_err());
        assert_eq!(setting_value("ducklake_target_file_size", "10KB")?, 10_000);
        assert!(set("SET threads").is_err());
        // Other settings (DataFusion's, TimeZone) are not taken here.
        assert!(parse_lake_statement("SET TimeZone = 'UTC'")?.is_none());
        Ok(())
    }

    #[test]
    fn nested_field_alters_parse_with_their_path() {
        let op = |sql: &str| parse_alter(sql).expect("parses").expect("an ALTER").op;
        assert!(matches!(
            op("ALTER TABLE l.s.t ADD COLUMN IF NOT EXISTS col1.element.k INTEGER"),
            AlterOp::AddColumn { name, parents, if_not_exists: true, .. }
                if name == "k" && parents == ["col1", "element"]
        ));
        assert!(matches!(
            op("ALTER TABLE t DROP COLUMN \"Col 1\".j"),
            AlterOp::DropColumn { name, parents, if_exists: false } if name == "j" && parents == ["Col 1"]
        ));
        assert!(matches!(
            op("ALTER TABLE t RENAME c.J TO K"),
            AlterOp::RenameColumn { from, parents, to } if from == "J" && parents == ["c"] && to == "K"
        ));
        assert!(matches!(
            op("ALTER TABLE l.t ADD COLUMN k INT"),
            AlterOp::AddColumn { name, parents, .. } if name == "k" && parents.is_empty()
        ));
    }

    #[test]
    fn splits_statements_outside_strings() {
        let stmts = split_statements("SELECT ';'; -- c;\n SELECT 2;;").expect("split");
        assert_eq!(stmts, vec!["SELECT ';'", "-- c;\n SELECT 2"]);
    }

    #[test]
    fn parses_attach_and_use() {
        let s = parse_lake_statement(
            "ATTACH 'ducklake:postgres:dbname=lake host=127.0.0.1' AS raw (DATA_PATH '/d/', METADATA_SCHEMA 'raw', READ_ONLY)",
        )
        .expect("parse");
        let Some(LakeStatement::Attach {
            location,
            name,
            options,
            ..
        }) = s
        else {
            panic!("not an attach: {s:?}")
        };
        assert_eq!(location, "ducklake:postgres:dbname=lake host=127.0.0.1");
        assert_eq!(name.as_deref(), Some("raw"));
        assert_eq!(options.get("DATA_PATH").map(String::as_str), Some("/d/"));
        assert_eq!(options.get("READ_ONLY").map(String::as_str), Some("true"));
        assert_eq!(
            parse_lake_statement("USE lake.s1").expect("parse"),
            Some(LakeStatement::Use(vec!["lake".into(), "s1".into()]))
        );
        assert_eq!(parse_lake_statement("SELECT 1").expect("parse"), None);
        let p = parse_alter("ALTER TABLE lake.s.ev SET PARTITIONED BY (year(ts), region)")
            .expect("parse");
        assert_eq!(
            p.map(|a| a.op),
            Some(AlterOp::SetPartitionedBy {
                keys: vec![
                    ("year".into(), "ts".into()),
                    ("identity".into(), "region".into())
                ]
            })
        );
        assert!(parse_lake_statement("ATTACH lake").is_err());
    }
}

/// An `ALTER TABLE` statement lakeq executes itself (DataFusion plans none).
#[derive(Debug, Clone, PartialEq)]
pub struct AlterStatement {
    /// The table name as written (possibly qualified).
    pub table: String,
    /// What to change.
    pub op: AlterOp,
}

/// One `ALTER TABLE` operation; types and defaults are SQL text, resolved by DataFusion.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterOp {
    /// `ADD COLUMN [IF NOT EXISTS] name type [DEFAULT expr]`
    AddColumn {
        /// Column name.
        name: String,
        /// The path to the struct a nested field is added to (`ADD COLUMN s.f`),
        /// empty for a top-level column.
        parents: Vec<String>,
        /// SQL type.
        type_sql: String,
        /// SQL of the default expression.
        default_sql: Option<String>,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
    },
    /// `DROP COLUMN [IF EXISTS] name`
    DropColumn {
        /// Column name.
        name: String,
        /// The path to a nested field's struct (`DROP COLUMN s.f`), else empty.
        parents: Vec<String>,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `RENAME COLUMN a TO b`
    RenameColumn {
        /// Old name.
        from: String,
        /// The path to a nested field's struct (`RENAME s.f TO g`), else empty.
        parents: Vec<String>,
        /// New name.
        to: String,
    },
    /// `ALTER COLUMN name [SET DATA] TYPE type`
    SetType {
        /// Column name.
        name: String,
        /// SQL type.
        type_sql: String,
    },
    /// `ALTER COLUMN name SET NOT NULL` (`not_null`) or `DROP NOT NULL`
    SetNotNull {
        /// Column name.
        name: String,
        /// `SET NOT NULL` rather than `DROP NOT NULL`.
        not_null: bool,
    },
    /// `ALTER COLUMN name SET DEFAULT expr` / `DROP DEFAULT` (`value` `None`).
    SetDefault {
        /// Column name.
        name: String,
        /// The default's SQL, `None` to drop it.
        value: Option<String>,
        /// Whether it is a constant (stored as its value) rather than an
        /// expression (stored as DuckDB SQL, `expression_text`).
        literal: bool,
        /// DuckDB's text of the expression, when lakeq can print it.
        expression_text: Option<String>,
    },
    /// `RENAME TO name`
    RenameTable {
        /// New name.
        to: String,
    },
    /// DuckDB's `SET PARTITIONED BY (year(ts), region)`; empty for `RESET PARTITIONED BY`.
    SetPartitionedBy {
        /// (transform, column) per key part: `identity`, `year`, `month`, `day`, `hour`,
        /// `bucket(N)`.
        keys: Vec<(String, String)>,
    },
    /// `ALTER VIEW name RENAME TO to` (the statement's `table` is the view).
    RenameView {
        /// New name.
        to: String,
        /// `IF EXISTS`: a missing view is not an error.
        if_exists: bool,
    },
    /// DuckDB's `SET SORTED BY (v DESC, region NULLS FIRST)`; empty for `RESET SORTED BY`.
    SetSortedBy {
        /// The sort keys, in order.
        keys: Vec<crate::commit::SortKey>,
    },
}

/// Parse DuckDB's `ALTER TABLE t SET PARTITIONED BY (...)` / `RESET PARTITIONED BY`,
/// which no SQL parser in the tree knows.
fn parse_partitioned_by(sql: &str) -> Result<Option<AlterStatement>> {
    let tokens: Vec<Token> = tokenize(sql)?
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| !is_trivia(t))
        .collect();
    let word = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) => Some(w.value.clone()),
        _ => None,
    };
    let upper = |i: usize| word(i).map(|w| w.to_ascii_uppercase());
    if upper(0).as_deref() != Some("ALTER") || upper(1).as_deref() != Some("TABLE") {
        return Ok(None);
    }
    // The table name: words joined by periods.
    let mut i = 2;
    let mut name = Vec::new();
    loop {
        name.push(
            word(i)
                .ok_or_else(|| Error::Unsupported(format!("ALTER TABLE without a name: {sql}")))?,
        );
        i += 1;
        if tokens.get(i) == Some(&Token::Period) {
            i += 1;
        } else {
            break;
        }
    }
    let (reset, sorted) = match (
        upper(i).as_deref(),
        upper(i + 1).as_deref(),
        upper(i + 2).as_deref(),
    ) {
        (Some("SET"), Some("PARTITIONED"), Some("BY")) => (false, false),
        (Some("RESET"), Some("PARTITIONED"), Some("BY")) => (true, false),
        (Some("SET"), Some("SORTED"), Some("BY")) => (false, true),
        (Some("RESET"), Some("SORTED"), Some("BY")) => (true, true),
        _ => return Ok(None),
    };
    i += 3;
    let table = name.join(".");
    if sorted {
        let keys = if reset {
            Vec::new()
        } else {
            parse_sort_keys(sql)?
        };
        return Ok(Some(AlterStatement {
            table,
            op: AlterOp::SetSortedBy { keys },
        }));
    }
    if reset {
        return Ok(Some(AlterStatement {
            table,
            op: AlterOp::SetPartitionedBy { keys: Vec::new() },
        }));
    }
    let bad = || {
        Error::Unsupported(format!(
            "partition keys must be columns or year/month/day/hour(column): {sql}"
        ))
    };
    if tokens.get(i) != Some(&Token::LParen) {
        return Err(bad());
    }
    i += 1;
    let mut keys = Vec::new();
    loop {
        let first = word(i).ok_or_else(bad)?;
        i += 1;
        if tokens.get(i) == Some(&Token::LParen) && first.eq_ignore_ascii_case("bucket") {
            // DuckDB's bucket(N, column), stored as the transform `bucket(N)`.
            let expected = || Error::Unsupported("Expected bucket(bucket_count, column)".into());
            let mut j = i + 1;
            let negative = tokens.get(j) == Some(&Token::Minus);
            if negative {
                j += 1;
            }
            let count = tokens.get(j).cloned();
            if tokens.get(j + 1) != Some(&Token::Comma) {
                return Err(expected());
            }
            let count = match count {
                Some(Token::Number(n, _)) => match n.parse::<i64>() {
                    _ if negative => Err("Bucket count must be positive".to_string()),
                    Ok(0) => Err("Bucket count must be positive".to_string()),
                    Ok(n) if n > i64::from(i32::MAX) => {
                        Err(format!("Bucket count cannot exceed {} (got {n})", i32::MAX))
                    }
                    Ok(n) => Ok(n),
                    Err(_) => Err(format!("Bucket count must be an integer, got {n}")),
                },
                Some(Token::SingleQuotedString(s)) => {
                    Err(format!("Bucket count must be an integer, got '{s}'"))
                }
                _ => Err("Bucket count must be a constant integer".to_string()),
            }
            .map_err(Error::Unsupported)?;
            let column = word(j + 2).ok_or_else(expected)?;
            if tokens.get(j + 3) != Some(&Token::RParen) {
                return Err(expected());
            }
            i = j + 4;
            keys.push((format!("bucket({count})"), column));
        } else if tokens.get(i) == Some(&Token::LParen) {
            let transform = first.to_ascii_lowercase();
            if !["year", "month", "day", "hour"].contains(&transform.as_str()) {
                return Err(Error::Unsupported(format!(
                    "partition transform '{transform}' (lakeq writes identity, year, month, day, hour and bucket)"
                )));
            }
            let column = word(i + 1).ok_or_else(bad)?;
            if tokens.get(i + 2) != Some(&Token::RParen) {
                return Err(bad());
            }
            i += 3;
            keys.push((transform, column));
        } else {
            keys.push(("identity".to_string(), first));
        }
        match tokens.get(i) {
            Some(Token::Comma) => i += 1,
            Some(Token::RParen) if i + 1 == tokens.len() => break,
            _ => return Err(bad()),
        }
    }
    Ok(Some(AlterStatement {
        table,
        op: AlterOp::SetPartitionedBy { keys },
    }))
}

/// The keys of `... SORTED BY (expr [ASC|DESC] [NULLS FIRST|LAST], ...)`, each
/// expression as DuckDB stores it (its SQL text), NULLS LAST by default.
fn parse_sort_keys(sql: &str) -> Result<Vec<crate::commit::SortKey>> {
    use datafusion::sql::sqlparser::ast::{OrderByKind, SetExpr, Statement};
    use datafusion::sql::sqlparser::parser::Parser;
    let bad = || {
        Error::Unsupported(format!(
            "SORTED BY needs (expression [ASC|DESC], ...): {sql}"
        ))
    };
    let upper = sql.to_ascii_uppercase();
    let start = upper.find("SORTED").ok_or_else(bad)?;
    let rest = sql.get(start..).ok_or_else(bad)?;
    let open = rest.find('(').ok_or_else(bad)?;
    let close = rest.rfind(')').ok_or_else(bad)?;
    let inner = rest.get(open + 1..close).ok_or_else(bad)?;
    let statements = Parser::parse_sql(
        &crate::dialect::parser::LakeqDialect,
        &format!("SELECT 1 ORDER BY {inner}"),
    )
    .map_err(|e| Error::Unsupported(format!("SORTED BY: {e}")))?;
    let Some(Statement::Query(query)) = statements.first() else {
        return Err(bad());
    };
    if !matches!(query.body.as_ref(), SetExpr::Select(_)) {
        return Err(bad());
    }
    let Some(OrderByKind::Expressions(exprs)) = query.order_by.as_ref().map(|o| &o.kind) else {
        return Err(bad());
    };
    Ok(exprs
        .iter()
        .map(|e| crate::commit::SortKey {
            expression: e.expr.to_string(),
            descending: e.options.asc == Some(false),
            nulls_first: e.options.nulls_first == Some(true),
        })
        .collect())
}

/// The column names a sort key expression refers to (the last part of each
/// identifier; function names are not columns).
pub fn sort_key_columns(expression: &str) -> Vec<String> {
    use datafusion::sql::sqlparser::ast::{Expr, Visit, Visitor};
    use datafusion::sql::sqlparser::parser::Parser;
    struct Columns(Vec<String>);
    impl Visitor for Columns {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> std::ops::ControlFlow<()> {
            match expr {
                Expr::Identifier(id) => self.0.push(id.value.clone()),
                Expr::CompoundIdentifier(parts) => {
                    if let Some(last) = parts.last() {
                        self.0.push(last.value.clone());
                    }
                }
                _ => {}
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let Ok(mut parser) =
        Parser::new(&crate::dialect::parser::LakeqDialect).try_with_sql(expression)
    else {
        return Vec::new();
    };
    let Ok(expr) = parser.parse_expr() else {
        return Vec::new();
    };
    let mut columns = Columns(Vec::new());
    let _ = expr.visit(&mut columns);
    columns.0
}

/// The sort keys `keys` with column `from` renamed to `to` (names matched
/// case-insensitively, the new name quoted where it needs quotes), as DuckDB
/// rewrites a table's sort expressions when one of their columns is renamed;
/// `None` when no key names `from`.
pub fn renamed_sort_keys(
    keys: &[crate::commit::SortKey],
    from: &str,
    to: &str,
) -> Option<Vec<crate::commit::SortKey>> {
    use datafusion::sql::sqlparser::ast::{Expr, Ident, VisitMut, VisitorMut};
    use datafusion::sql::sqlparser::parser::Parser;
    struct Rename<'a> {
        from: &'a str,
        to: Ident,
        changed: bool,
    }
    impl VisitorMut for Rename<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> std::ops::ControlFlow<()> {
            let id = match expr {
                Expr::Identifier(id) => Some(id),
                Expr::CompoundIdentifier(parts) => parts.last_mut(),
                _ => None,
            };
            if let Some(id) = id
                && id.value.eq_ignore_ascii_case(self.from)
            {
                *id = self.to.clone();
                self.changed = true;
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let plain = to.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && to
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let to = if plain {
        Ident::new(to)
    } else {
        Ident::with_quote('"', to)
    };
    let mut any = false;
    let renamed = keys
        .iter()
        .map(|k| {
            let mut rename = Rename {
                from,
                to: to.clone(),
                changed: false,
            };
            let parsed = Parser::new(&crate::dialect::parser::LakeqDialect)
                .try_with_sql(&k.expression)
                .and_then(|mut p| p.parse_expr());
            match parsed {
                Ok(mut expr) => {
                    let _ = expr.visit(&mut rename);
                    any |= rename.changed;
                    let expression = if rename.changed {
                        expr.to_string()
                    } else {
                        k.expression.clone()
                    };
                    crate::commit::SortKey {
                        expression,
                        ..k.clone()
                    }
                }
                Err(_) => k.clone(),
            }
        })
        .collect();
    any.then_some(renamed)
}

/// Parse `ALTER VIEW [IF EXISTS] name RENAME TO new`; `None` for other statements.
fn parse_view_rename(sql: &str) -> Result<Option<AlterStatement>> {
    let tokens: Vec<Token> = tokenize(sql)?
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| !is_trivia(t) && *t != Token::SemiColon)
        .collect();
    let word = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) => Some(w.value.clone()),
        _ => None,
    };
    let upper = |i: usize| word(i).map(|w| w.to_ascii_uppercase());
    if upper(0).as_deref() != Some("ALTER") || upper(1).as_deref() != Some("VIEW") {
        return Ok(None);
    }
    let mut i = 2;
    let if_exists = upper(2).as_deref() == Some("IF") && upper(3).as_deref() == Some("EXISTS");
    if if_exists {
        i = 4;
    }
    let mut name = Vec::new();
    loop {
        let Some(part) = word(i) else {
            return Ok(None);
        };
        name.push(part);
        i += 1;
        if tokens.get(i) == Some(&Token::Period) {
            i += 1;
        } else {
            break;
        }
    }
    if upper(i).as_deref() != Some("RENAME") || upper(i + 1).as_deref() != Some("TO") {
        return Ok(None);
    }
    let Some(to) = word(i + 2) else {
        return Err(Error::Unsupported(format!(
            "ALTER VIEW ... RENAME TO without a name: {sql}"
        )));
    };
    if tokens.len() != i + 3 {
        return Err(Error::Unsupported(format!(
            "ALTER VIEW ... RENAME TO takes a plain new name: {sql}"
        )));
    }
    Ok(Some(AlterStatement {
        table: name.join("."),
        op: AlterOp::RenameView { to, if_exists },
    }))
}

/// What `COMMENT ON` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentOn {
    /// `COMMENT ON TABLE`.
    Table,
    /// `COMMENT ON VIEW`.
    View,
    /// `COMMENT ON COLUMN`.
    Column,
}

/// `COMMENT ON TABLE|VIEW|COLUMN name IS 'text' | NULL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentStatement {
    /// The kind of object.
    pub on: CommentOn,
    /// The name's parts (a column's last part is the column).
    pub name: Vec<String>,
    /// The comment (`None`: `IS NULL`).
    pub value: Option<String>,
}

/// Parse DuckDB's `COMMENT ON`; `None` for other statements.
pub fn parse_comment(sql: &str) -> Result<Option<CommentStatement>> {
    let mut tokens: Vec<Token> = tokenize(sql)?
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| !is_trivia(t))
        .collect();
    while tokens.last() == Some(&Token::SemiColon) {
        tokens.pop();
    }
    let word = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
    if word(0).as_deref() != Some("COMMENT") || word(1).as_deref() != Some("ON") {
        return Ok(None);
    }
    let bad = || {
        Error::Unsupported(format!(
            "COMMENT ON takes TABLE, VIEW or COLUMN name IS 'text' | NULL: {sql}"
        ))
    };
    let on = match word(2).as_deref() {
        Some("TABLE") => CommentOn::Table,
        Some("VIEW") => CommentOn::View,
        Some("COLUMN") => CommentOn::Column,
        _ => return Err(bad()),
    };
    let mut name = Vec::new();
    let mut i = 3;
    loop {
        match tokens.get(i) {
            Some(Token::Word(w)) => name.push(w.value.clone()),
            _ => return Err(bad()),
        }
        i += 1;
        if tokens.get(i) == Some(&Token::Period) {
            i += 1;
        } else {
            break;
        }
    }
    if word(i).as_deref() != Some("IS") || tokens.len() != i + 2 {
        return Err(bad());
    }
    let value = match tokens.get(i + 1) {
        Some(Token::SingleQuotedString(s)) => Some(s.clone()),
        Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("NULL") => {
            None
        }
        _ => return Err(bad()),
    };
    Ok(Some(CommentStatement { on, name, value }))
}

/// DuckDB's nested-field forms `ALTER TABLE t ADD [COLUMN] [IF NOT EXISTS] a.b.c type`,
/// `DROP [COLUMN] [IF EXISTS] a.b.c` and `RENAME [COLUMN] a.b.c TO d`, which sqlparser
/// does not take: the statement with the dotted path cut to its last name, and the
/// path before it (`[a, b]`; empty for a top-level column).
fn split_nested_column(sql: &str) -> Result<(String, Vec<String>)> {
    let tokens: Vec<Spanned> = tokenize(sql)?
        .into_iter()
        .filter(|(t, _)| !is_trivia(t))
        .collect();
    let keyword = |i: usize| match tokens.get(i) {
        Some((Token::Word(w), _)) if w.quote_style.is_none() => Some(w.keyword),
        _ => None,
    };
    let unchanged = || Ok((sql.to_string(), Vec::new()));
    if keyword(0) != Some(Keyword::ALTER) || keyword(1) != Some(Keyword::TABLE) {
        return unchanged();
    }
    let mut i = 2;
    if keyword(i) == Some(Keyword::IF) && keyword(i + 1) == Some(Keyword::EXISTS) {
        i += 2;
    }
    // The table name: words joined by periods.
    i += 1;
    while matches!(tokens.get(i), Some((Token::Period, _))) {
        i += 2;
    }
    let op = keyword(i);
    if !matches!(op, Some(Keyword::ADD | Keyword::DROP | Keyword::RENAME)) {
        return unchanged();
    }
    i += 1;
    if keyword(i) == Some(Keyword::COLUMN) {
        i += 1;
    }
    if keyword(i) == Some(Keyword::IF) {
        i += if keyword(i + 1) == Some(Keyword::NOT) {
            3
        } else {
            2
        };
    }
    let mut path: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    while let Some((Token::Word(w), range)) = tokens.get(i) {
        path.push((w.value.clone(), range.clone()));
        if !matches!(tokens.get(i + 1), Some((Token::Period, _))) {
            break;
        }
        i += 2;
    }
    let (Some((_, first)), Some((_, last))) = (path.first(), path.last()) else {
        return unchanged();
    };
    if path.len() < 2 {
        return unchanged();
    }
    let (Some(head), Some(name), Some(tail)) = (
        sql.get(..first.start),
        sql.get(last.clone()),
        sql.get(last.end..),
    ) else {
        return unchanged();
    };
    let rewritten = format!("{head}{name}{tail}");
    path.pop();
    Ok((rewritten, path.into_iter().map(|(p, _)| p).collect()))
}

/// Parse `ALTER TABLE`; `None` for other statements.
pub fn parse_alter(sql: &str) -> Result<Option<AlterStatement>> {
    use datafusion::sql::sqlparser::ast::{
        AlterColumnOperation, AlterTableOperation, ColumnOption, RenameTableNameKind, Statement,
    };
    use datafusion::sql::sqlparser::parser::Parser;
    let first = tokenize(sql)?
        .into_iter()
        .find(|(t, _)| !is_trivia(t))
        .map(|(t, _)| t);
    if !matches!(first, Some(Token::Word(w)) if w.keyword == Keyword::ALTER) {
        return Ok(None);
    }
    if let Some(partitioned) = parse_partitioned_by(sql)? {
        return Ok(Some(partitioned));
    }
    if let Some(rename) = parse_view_rename(sql)? {
        return Ok(Some(rename));
    }
    let (nested_sql, parents) = split_nested_column(sql)?;
    let sql = nested_sql.as_str();
    // DuckDB's `ALTER [COLUMN] c SET TYPE t` is the standard `SET DATA TYPE`.
    let set_type = sql.to_ascii_uppercase().find(" SET TYPE ");
    let rewritten;
    let sql =
        match set_type.and_then(|at| Some((sql.get(..at)?, sql.get(at + " SET TYPE ".len()..)?))) {
            Some((head, tail)) => {
                rewritten = format!("{head} SET DATA TYPE {tail}");
                rewritten.as_str()
            }
            None => sql,
        };
    // DuckDB's types (STRUCT(k INT), MAP(...)) parse in its dialect; other forms in
    // the generic one.
    let statements = Parser::parse_sql(&crate::dialect::parser::LakeqDialect, sql)
        .or_else(|_| Parser::parse_sql(&GenericDialect {}, sql))
        .map_err(|e| Error::Unsupported(format!("cannot parse ALTER statement: {e}")))?;
    let [Statement::AlterTable(alter)] = statements.as_slice() else {
        return Ok(None);
    };
    let [op] = alter.operations.as_slice() else {
        return Err(Error::Unsupported(
            "ALTER TABLE with several operations; run them one by one".into(),
        ));
    };
    let op = match op {
        AlterTableOperation::AddColumn {
            if_not_exists,
            column_def,
            ..
        } => {
            let mut default_sql = None;
            for option in &column_def.options {
                match &option.option {
                    ColumnOption::Default(expr) => {
                        if !is_literal(expr) {
                            // DuckDB's rule: existing rows would need the expression evaluated.
                            return Err(Error::Unsupported(format!(
                                "ADD COLUMN {} with the non-literal default '{expr}': add the \
                                 column, then set the default for new values with ALTER ... SET DEFAULT",
                                column_def.name.value
                            )));
                        }
                        default_sql = Some(expr.to_string());
                    }
                    ColumnOption::Null => {}
                    other => {
                        return Err(Error::Unsupported(format!(
                            "column option '{other}' in ALTER TABLE ADD COLUMN"
                        )));
                    }
                }
            }
            let mut data_type = column_def.data_type.clone();
            crate::dialect::functions::normalize_column_type(&mut data_type);
            AlterOp::AddColumn {
                name: column_def.name.value.clone(),
                parents,
                type_sql: data_type.to_string(),
                default_sql,
                if_not_exists: *if_not_exists,
            }
        }
        AlterTableOperation::DropColumn {
            column_names,
            if_exists,
            ..
        } => match column_names.as_slice() {
            [name] => AlterOp::DropColumn {
                name: name.value.clone(),
                parents,
                if_exists: *if_exists,
            },
            _ => {
                return Err(Error::Unsupported(
                    "DROP COLUMN of several columns at once".into(),
                ));
            }
        },
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => AlterOp::RenameColumn {
            from: old_column_name.value.clone(),
            parents,
            to: new_column_name.value.clone(),
        },
        AlterTableOperation::RenameTable { table_name } => {
            let (RenameTableNameKind::As(name) | RenameTableNameKind::To(name)) = table_name;
            let to = name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.clone())
                .ok_or_else(|| Error::Unsupported(format!("RENAME TO {name}")))?;
            AlterOp::RenameTable { to }
        }
        AlterTableOperation::AlterColumn {
            column_name,
            op:
                AlterColumnOperation::SetDataType {
                    data_type,
                    using: None,
                    ..
                },
        } => {
            let mut data_type = data_type.clone();
            crate::dialect::functions::normalize_column_type(&mut data_type);
            AlterOp::SetType {
                name: column_name.value.clone(),
                type_sql: data_type.to_string(),
            }
        }
        AlterTableOperation::AlterColumn {
            column_name,
            op: op @ (AlterColumnOperation::SetNotNull | AlterColumnOperation::DropNotNull),
        } => AlterOp::SetNotNull {
            name: column_name.value.clone(),
            not_null: matches!(op, AlterColumnOperation::SetNotNull),
        },
        AlterTableOperation::AlterColumn {
            column_name,
            op: AlterColumnOperation::SetDefault { value },
        } => AlterOp::SetDefault {
            name: column_name.value.clone(),
            value: Some(value.to_string()),
            literal: is_literal(value),
            expression_text: crate::dialect::naming::duckdb_text(value),
        },
        AlterTableOperation::AlterColumn {
            column_name,
            op: AlterColumnOperation::DropDefault,
        } => AlterOp::SetDefault {
            name: column_name.value.clone(),
            value: None,
            literal: true,
            expression_text: None,
        },
        other => return Err(Error::Unsupported(format!("ALTER TABLE ... {other}"))),
    };
    let table = alter
        .name
        .0
        .iter()
        .map(|p| {
            p.as_ident()
                .map_or_else(|| p.to_string(), |i| i.value.clone())
        })
        .collect::<Vec<_>>()
        .join(".");
    Ok(Some(AlterStatement { table, op }))
}

/// Whether `expr` is a literal (possibly signed or cast), as DuckDB requires of
/// an `ADD COLUMN` default.
fn is_literal(expr: &datafusion::sql::sqlparser::ast::Expr) -> bool {
    use datafusion::sql::sqlparser::ast::{Expr, UnaryOperator};
    match expr {
        Expr::Value(_) | Expr::TypedString { .. } => true,
        Expr::UnaryOp {
            op: UnaryOperator::Minus | UnaryOperator::Plus,
            expr,
        } => is_literal(expr),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => is_literal(expr),
        _ => false,
    }
}

/// The query of a `CREATE VIEW` statement as DuckDB should store it: references
/// to the view's own lake written as `{DUCKLAKE_CATALOG}` (DuckDB substitutes
/// the attached name), and the column aliases as `"x","y"`.
pub fn view_query(sql: &str, catalog: &str, _schema: &str) -> Result<(String, String)> {
    use datafusion::sql::sqlparser::ast::{Ident, ObjectNamePart, Statement, visit_relations_mut};
    use datafusion::sql::sqlparser::parser::Parser;
    let sql = crate::dialect::parser::insert_select_star(sql);
    let mut statements = Parser::parse_sql(&crate::dialect::parser::LakeqDialect, &sql)
        .map_err(|e| Error::Unsupported(format!("cannot parse CREATE VIEW: {e}")))?;
    let Some(Statement::CreateView(view)) = statements.first_mut() else {
        return Err(Error::Unsupported(format!(
            "not a CREATE VIEW statement: {sql}"
        )));
    };
    let _ = visit_relations_mut(view.query.as_mut(), |name| {
        // `lake.s.t`, and `lake.t` (DuckDB's catalog.table), as DuckDB stores them.
        if let [first, _] | [first, _, _] = name.0.as_mut_slice()
            && first.as_ident().is_some_and(|i| i.value == catalog)
        {
            *first = ObjectNamePart::Identifier(Ident::new("{DUCKLAKE_CATALOG}"));
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    let aliases = view
        .columns
        .iter()
        .map(|c| format!("\"{}\"", c.name.value.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(",");
    Ok((view.query.to_string(), aliases))
}
