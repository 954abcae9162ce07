//! DuckDB's `COPY ... TO 'file' (FORMAT parquet, PARTITION_BY (y), HEADER)`
//! option list, in DataFusion's spelling (`STORED AS PARQUET PARTITIONED BY (y)
//! OPTIONS ('format.has_header' 'true')`).
//!
//! Options whose effect lakeq would not reproduce (`OVERWRITE`, `FIELD_IDS`,
//! `PER_THREAD_OUTPUT`, ...) are refused by name rather than ignored.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use super::parser::LakeqDialect;
use crate::error::{Error, Result};

/// The tokens of `sql` but whitespace, when its first word is the keyword `first`.
fn statement_tokens(sql: &str, first: Keyword) -> Option<Vec<TokenWithSpan>> {
    let tokens = Tokenizer::new(&LakeqDialect, sql)
        .tokenize_with_location()
        .ok()?;
    let significant: Vec<TokenWithSpan> = tokens
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    is_keyword(significant.first(), first).then_some(significant)
}

/// Whether `t` is the unquoted keyword `k`.
fn is_keyword(t: Option<&TokenWithSpan>, k: Keyword) -> bool {
    t.is_some_and(
        |t| matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.keyword == k),
    )
}

/// `sql` with a DuckDB `COPY` option list rewritten; other statements unchanged.
pub fn rewrite_copy_options(sql: &str) -> Result<String> {
    let Some(significant) = statement_tokens(sql, Keyword::COPY) else {
        return Ok(sql.to_string());
    };
    // `TO '<target>'` at depth 0, then `(` opens DuckDB's option list.
    let mut depth = 0i32;
    let mut open = None;
    let mut to = None;
    for (i, t) in significant.iter().enumerate() {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        if depth == 0
            && is_keyword(Some(t), Keyword::TO)
            && matches!(
                significant.get(i + 1).map(|t| &t.token),
                Some(Token::SingleQuotedString(_))
            )
            && matches!(
                significant.get(i + 2).map(|t| &t.token),
                Some(Token::LParen)
            )
        {
            open = Some(i + 2);
            to = Some(i);
            break;
        }
    }
    let Some(open) = open else {
        return Ok(sql.to_string());
    };
    // The option list up to its matching `)`, split at top-level commas.
    let mut depth = 0i32;
    let mut close = None;
    let mut options: Vec<Vec<&Token>> = vec![Vec::new()];
    for (i, t) in significant.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            Token::Comma if depth == 1 => {
                options.push(Vec::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = options.last_mut() {
            last.push(&t.token);
        }
    }
    let (Some(first), Some(last)) = (
        significant.get(open),
        close.and_then(|c| significant.get(c)),
    ) else {
        return Ok(sql.to_string());
    };
    let (start, end) = (first.span.start, last.span.end);
    let (clause, partition_columns) = translate(&options)?;
    let (Some(a), Some(b)) = (offset(sql, start), offset(sql, end)) else {
        return Ok(sql.to_string());
    };
    let (Some(before), Some(after)) = (sql.get(..a), sql.get(b..)) else {
        return Ok(sql.to_string());
    };
    if partition_columns.is_empty() {
        return Ok(format!("{before}{clause}{after}"));
    }
    // DataFusion writes a NULL partition value as the type's zero (`d=1970-01-01`,
    // `i=0`): partition by text with DuckDB's NULL directory name instead.
    let (Some(copy), Some(to)) = (significant.first(), to.and_then(|i| significant.get(i))) else {
        return Ok(sql.to_string());
    };
    let (Some(source_start), Some(to_start)) =
        (offset(sql, copy.span.end), offset(sql, to.span.start))
    else {
        return Ok(sql.to_string());
    };
    let (Some(source), Some(target)) = (sql.get(source_start..to_start), before.get(to_start..))
    else {
        return Ok(sql.to_string());
    };
    let source = source.trim();
    let from = if source.starts_with('(') {
        format!("{source} AS lakeq_copy_source")
    } else {
        source.to_string()
    };
    let replaced = partition_columns
        .iter()
        .map(|c| format!("coalesce(CAST({c} AS VARCHAR), '__HIVE_DEFAULT_PARTITION__') AS {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(format!(
        "COPY (SELECT * REPLACE ({replaced}) FROM {from}) {target}{clause}{after}"
    ))
}

/// The byte offset of a 1-based (line, column-in-characters) location.
fn offset(sql: &str, loc: Location) -> Option<usize> {
    let (mut line, mut column) = (1u64, 1u64);
    for (i, c) in sql.char_indices() {
        if line == loc.line && column == loc.column {
            return Some(i);
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line == loc.line && column == loc.column).then_some(sql.len())
}

/// DataFusion's clauses for DuckDB's options.
fn translate(options: &[Vec<&Token>]) -> Result<(String, Vec<String>)> {
    let mut stored_as = None;
    let mut partitioned: Option<Vec<String>> = None;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for option in options.iter().filter(|o| !o.is_empty()) {
        let Some((Token::Word(key), value)) = option.split_first() else {
            return Err(refused(&render(option)));
        };
        let key = key.value.to_ascii_uppercase();
        let text = value_text(value);
        let flag = || match text.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("true" | "1") => Ok("true"),
            Some("false" | "0") => Ok("false"),
            Some(other) => Err(Error::Unsupported(format!(
                "COPY option {key} {other}: expected true or false"
            ))),
        };
        let required = || {
            text.clone()
                .ok_or_else(|| Error::Unsupported(format!("COPY option {key} needs a value")))
        };
        match key.as_str() {
            "FORMAT" => stored_as = Some(required()?.to_ascii_uppercase()),
            "PARTITION_BY" => {
                let columns: Vec<String> = value
                    .iter()
                    .filter_map(|t| match t {
                        Token::Word(w) => Some(w.to_string()),
                        _ => None,
                    })
                    .collect();
                if columns.is_empty() {
                    return Err(Error::Unsupported(
                        "COPY option PARTITION_BY needs columns".into(),
                    ));
                }
                partitioned = Some(columns);
            }
            "HEADER" => pairs.push(("format.has_header".into(), flag()?.into())),
            "DELIMITER" | "DELIM" | "SEP" => pairs.push(("format.delimiter".into(), required()?)),
            "QUOTE" => pairs.push(("format.quote".into(), required()?)),
            "ESCAPE" => pairs.push(("format.escape".into(), required()?)),
            "NULL" | "NULLSTR" => pairs.push(("format.null_value".into(), required()?)),
            "COMPRESSION" | "CODEC" => {
                pairs.push((
                    "format.compression".into(),
                    required()?.to_ascii_lowercase(),
                ));
            }
            "ROW_GROUP_SIZE" => pairs.push(("format.max_row_group_size".into(), required()?)),
            // Writing into a non-empty directory: DataFusion's file names never clash.
            "OVERWRITE_OR_IGNORE" if flag()? == "true" => {}
            // How DuckDB splits the rows into files: the rows are the same, lakeq
            // writes its own number of files.
            "ROW_GROUPS_PER_FILE" | "FILE_SIZE_BYTES" => {
                required()?;
            }
            _ => return Err(refused(&render(option))),
        }
    }
    let mut out = Vec::new();
    if let Some(format) = stored_as {
        out.push(format!("STORED AS {format}"));
    }
    if let Some(columns) = &partitioned {
        out.push(format!("PARTITIONED BY ({})", columns.join(", ")));
    }
    if !pairs.is_empty() {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        out.push(format!(
            "OPTIONS ({})",
            pairs
                .iter()
                .map(|(k, v)| format!("{} {}", quote(k), quote(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok((out.join(" "), partitioned.unwrap_or_default()))
}

/// A planned `COPY ... TO` written as DuckDB writes Parquet: `TIMESTAMP_S`
/// columns become microsecond timestamps first. Parquet has no seconds unit;
/// DuckDB writes them as `TIMESTAMP(MICROS)`, while arrow-rs would write a
/// plain `INT64` that DuckDB (and every reader that ignores Arrow's embedded
/// schema) reads back as a `BIGINT` of seconds. Other plans are unchanged.
pub fn parquet_copy_types(
    plan: datafusion::logical_expr::LogicalPlan,
) -> datafusion::common::Result<datafusion::logical_expr::LogicalPlan> {
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, dml::CopyTo};
    let LogicalPlan::Copy(copy) = &plan else {
        return Ok(plan);
    };
    let seconds = |t: &DataType| matches!(t, DataType::Timestamp(TimeUnit::Second, _));
    let schema = copy.input.schema();
    if !copy.file_type.get_ext().eq_ignore_ascii_case("parquet")
        || !schema.fields().iter().any(|f| seconds(f.data_type()))
    {
        return Ok(plan);
    }
    let columns: Vec<Expr> = schema
        .iter()
        .map(|(qualifier, field)| {
            let column = Expr::Column(datafusion::common::Column::from((qualifier, field)));
            match field.data_type() {
                DataType::Timestamp(TimeUnit::Second, tz) => cast(
                    column,
                    DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
                )
                .alias(field.name()),
                _ => column,
            }
        })
        .collect();
    let input = LogicalPlanBuilder::from(std::sync::Arc::clone(&copy.input))
        .project(columns)?
        .build()?;
    Ok(LogicalPlan::Copy(CopyTo {
        input: std::sync::Arc::new(input),
        ..copy.clone()
    }))
}

/// A single value (`parquet`, `'|'`, `100`, `true`), unquoted.
fn value_text(value: &[&Token]) -> Option<String> {
    match value {
        [Token::Word(w)] => Some(w.value.clone()),
        [Token::SingleQuotedString(s)] | [Token::DoubleQuotedString(s)] => Some(s.clone()),
        [Token::Number(n, _)] => Some(n.clone()),
        _ => None,
    }
}

fn render(option: &[&Token]) -> String {
    option
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn refused(option: &str) -> Error {
    Error::Unsupported(format!(
        "COPY option {option} (lakeq's COPY takes FORMAT, PARTITION_BY, HEADER, DELIMITER, \
         QUOTE, ESCAPE, NULL, COMPRESSION, ROW_GROUP_SIZE, OVERWRITE_OR_IGNORE and, as layout hints, \
         ROW_GROUPS_PER_FILE and FILE_SIZE_BYTES)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_duckdb_copy_options() {
        assert_eq!(
            rewrite_copy_options("COPY (SELECT 1 AS a) TO 'x.parquet' (FORMAT parquet);").unwrap(),
            "COPY (SELECT 1 AS a) TO 'x.parquet' STORED AS PARQUET;"
        );
        assert_eq!(
            rewrite_copy_options(
                "COPY t TO 'dir' (FORMAT PARQUET, PARTITION_BY (year, month), OVERWRITE_OR_IGNORE)"
            )
            .unwrap(),
            "COPY (SELECT * REPLACE (coalesce(CAST(year AS VARCHAR), '__HIVE_DEFAULT_PARTITION__') \
             AS year, coalesce(CAST(month AS VARCHAR), '__HIVE_DEFAULT_PARTITION__') AS month) \
             FROM t) TO 'dir' STORED AS PARQUET PARTITIONED BY (year, month)"
        );
        assert_eq!(
            rewrite_copy_options("COPY t TO 'x.csv' (HEADER, DELIMITER '|')").unwrap(),
            "COPY t TO 'x.csv' OPTIONS ('format.has_header' 'true', 'format.delimiter' '|')"
        );
        assert_eq!(
            rewrite_copy_options("COPY (SELECT '(', 2) TO 'x.parquet'").unwrap(),
            "COPY (SELECT '(', 2) TO 'x.parquet'"
        );
        assert_eq!(rewrite_copy_options("SELECT 1").unwrap(), "SELECT 1");
        let e = rewrite_copy_options("COPY t TO 'x' (FORMAT parquet, FIELD_IDS {a: 1})")
            .unwrap_err()
            .to_string();
        assert!(e.contains("FIELD_IDS"), "{e}");
        assert!(rewrite_copy_options("COPY t TO 'x' (OVERWRITE)").is_err());
    }
}

/// `CREATE TABLE t AS <query> WITH NO DATA` (DuckDB, PostgreSQL): the table
/// with the query's columns and no rows, as `... AS SELECT * FROM (<query>)
/// LIMIT 0`; `WITH DATA` is the default and is dropped.
pub fn rewrite_with_no_data(sql: &str) -> String {
    let Some(significant) = statement_tokens(sql, Keyword::CREATE) else {
        return sql.to_string();
    };
    let word = is_keyword;
    let mut end = significant.len();
    while end > 0
        && matches!(
            significant.get(end - 1).map(|t| &t.token),
            Some(Token::SemiColon)
        )
    {
        end -= 1;
    }
    let no_data = end >= 3
        && word(significant.get(end - 3), Keyword::WITH)
        && word(significant.get(end - 2), Keyword::NO)
        && word(significant.get(end - 1), Keyword::DATA);
    let with_data = end >= 2
        && word(significant.get(end - 2), Keyword::WITH)
        && word(significant.get(end - 1), Keyword::DATA);
    if !no_data && !with_data {
        return sql.to_string();
    }
    let clause_start = significant.get(end - if no_data { 3 } else { 2 });
    let Some(cut) = clause_start.and_then(|t| offset(sql, t.span.start)) else {
        return sql.to_string();
    };
    let Some(head) = sql.get(..cut) else {
        return sql.to_string();
    };
    if with_data {
        return head.trim_end().to_string();
    }
    // The query starts after the first `AS` at depth 0.
    let mut depth = 0i32;
    for t in &significant {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        if depth == 0 && word(Some(t), Keyword::AS) {
            let (Some(a), Some(b)) = (offset(sql, t.span.start), offset(sql, t.span.end)) else {
                break;
            };
            let (Some(prefix), Some(query)) = (sql.get(..a), head.get(b..)) else {
                break;
            };
            return format!(
                "{prefix}AS SELECT * FROM ({}) AS lakeq_no_data LIMIT 0",
                query.trim()
            );
        }
    }
    sql.to_string()
}

#[cfg(test)]
mod no_data_tests {
    use super::rewrite_with_no_data;

    #[test]
    fn with_no_data_keeps_columns_only() {
        assert_eq!(
            rewrite_with_no_data("CREATE TABLE t AS FROM 'x.parquet' WITH NO DATA;"),
            "CREATE TABLE t AS SELECT * FROM (FROM 'x.parquet') AS lakeq_no_data LIMIT 0"
        );
        assert_eq!(
            rewrite_with_no_data("CREATE TABLE t AS SELECT 1 AS a WITH DATA"),
            "CREATE TABLE t AS SELECT 1 AS a"
        );
        assert_eq!(rewrite_with_no_data("SELECT 1"), "SELECT 1");
    }
}

/// Placeholder for DuckDB's `MERGE ... INSERT *` / `UPDATE SET *`, expanded to
/// the source's columns by [`crate::dialect::plan`] once they are known.
pub const MERGE_STAR: &str = "__lakeq_merge_star__";

/// DuckDB's `WHEN NOT MATCHED THEN INSERT *` and `WHEN MATCHED THEN UPDATE SET *`
/// (every column, by position) in a form sqlparser takes:
/// `INSERT VALUES (<star>)` and `UPDATE SET <star> = <star>`.
pub fn rewrite_merge_stars(sql: &str) -> String {
    let Some(significant) = statement_tokens(sql, Keyword::MERGE) else {
        return sql.to_string();
    };
    let word = is_keyword;
    // (start, end, replacement) in the original text.
    let mut edits = Vec::new();
    // A bare `THEN INSERT` / `THEN UPDATE` (followed by WHEN, `;` or the end)
    // means `*` too.
    let ends_clause = |t: Option<&TokenWithSpan>| {
        t.is_none_or(|t| t.token == Token::SemiColon || word(Some(t), Keyword::WHEN))
    };
    for (i, t) in significant.iter().enumerate() {
        let then = word(significant.get(i.wrapping_sub(1)), Keyword::THEN);
        if then && ends_clause(significant.get(i + 1)) {
            let replacement = if word(Some(t), Keyword::INSERT) {
                format!("INSERT VALUES ({MERGE_STAR})")
            } else if word(Some(t), Keyword::UPDATE) {
                format!("UPDATE SET {MERGE_STAR} = {MERGE_STAR}")
            } else {
                continue;
            };
            if let (Some(a), Some(b)) = (offset(sql, t.span.start), offset(sql, t.span.end)) {
                edits.push((a, b, replacement));
            }
            continue;
        }
        if t.token != Token::Mul {
            continue;
        }
        let replacement = if word(significant.get(i.wrapping_sub(1)), Keyword::INSERT) {
            format!("VALUES ({MERGE_STAR})")
        } else if word(significant.get(i.wrapping_sub(1)), Keyword::SET)
            && word(significant.get(i.wrapping_sub(2)), Keyword::UPDATE)
        {
            format!("{MERGE_STAR} = {MERGE_STAR}")
        } else {
            continue;
        };
        if let (Some(a), Some(b)) = (offset(sql, t.span.start), offset(sql, t.span.end)) {
            edits.push((a, b, replacement));
        }
    }
    let mut out = sql.to_string();
    for (a, b, replacement) in edits.into_iter().rev() {
        if out.get(a..b).is_some() {
            out.replace_range(a..b, &replacement);
        }
    }
    out
}

#[cfg(test)]
mod merge_star_tests {
    use super::*;

    #[test]
    fn stars_become_placeholders() {
        assert_eq!(
            rewrite_merge_stars(
                "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET * \
                 WHEN NOT MATCHED THEN INSERT *"
            ),
            format!(
                "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET {MERGE_STAR} = \
                 {MERGE_STAR} WHEN NOT MATCHED THEN INSERT VALUES ({MERGE_STAR})"
            )
        );
        assert_eq!(rewrite_merge_stars("SELECT 2 * 3"), "SELECT 2 * 3");
        assert_eq!(
            rewrite_merge_stars("MERGE INTO t USING s ON t.a = s.a WHEN NOT MATCHED THEN INSERT;"),
            format!(
                "MERGE INTO t USING s ON t.a = s.a WHEN NOT MATCHED THEN INSERT VALUES ({MERGE_STAR});"
            )
        );
        assert_eq!(
            rewrite_merge_stars("MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN UPDATE"),
            format!(
                "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN UPDATE SET {MERGE_STAR} = {MERGE_STAR}"
            )
        );
    }
}
