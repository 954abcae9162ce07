//! DuckDB's sqllogictest dialect, as DuckLake's suite uses it.
//!
//! The `sqllogictest` crate parses the SQLite dialect; DuckDB's adds `require`,
//! `test-env`, `loop`/`foreach`/`concurrentloop` blocks with `${var}`
//! substitution, `mode skip`, per-record connection names and
//! `skipif i=0`-style loop conditions, so the runner reads the files itself
//! (DuckDB's own parser: `test/sqlite/sqllogic_parser.cpp`).

/// What a `statement` record expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// `statement ok`
    Ok,
    /// `statement error`, with the expected message text after `----` if any.
    Error(Option<String>),
    /// `statement maybe`: success or the given error.
    Maybe,
}

/// How a query's rows are sorted before comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(clippy::enum_variant_names)] // sqllogictest's own names: nosort, rowsort, valuesort
pub enum SortMode {
    /// As returned.
    NoSort,
    /// Rows sorted as strings.
    RowSort,
    /// Every value sorted individually.
    ValueSort,
}

/// One record of a test file.
#[derive(Debug, Clone)]
pub enum Record {
    /// `statement ok|error|maybe [connection]`
    Statement {
        /// 1-based line of the header.
        line: usize,
        /// Connection name, `None` for the default one.
        conn: Option<String>,
        /// The SQL.
        sql: String,
        /// What must happen.
        expect: Expect,
    },
    /// `query <types> [sort] [label|connection]`
    Query {
        /// 1-based line of the header.
        line: usize,
        /// Connection name.
        conn: Option<String>,
        /// The SQL.
        sql: String,
        /// Number of columns declared by the type letters.
        columns: usize,
        /// Sort mode.
        sort: SortMode,
        /// Label: queries with the same label must give the same result.
        label: Option<String>,
        /// Expected result lines (tab-separated values).
        expected: Vec<String>,
    },
    /// `require <what>`
    Require(String),
    /// `require-env NAME [value]`
    RequireEnv(String),
    /// `test-env NAME value`
    TestEnv(String, String),
    /// `loop`, `foreach` or `concurrentloop` with its body.
    Loop {
        /// Loop variable.
        var: String,
        /// Values it takes.
        values: Vec<String>,
        /// Records inside.
        body: Vec<Record>,
    },
    /// `mode skip` / `mode unskip` (other modes are ignored).
    Mode(String),
    /// `restart` / `reconnect` / `load`: a fresh database.
    Restart,
    /// `skipif <cond>` / `onlyif <cond>` applying to the next record.
    Condition {
        /// `true` for `skipif`.
        skip: bool,
        /// The condition text (`i=0`, `duckdb`).
        cond: String,
    },
    /// `set ...` / `sleep` / `halt` and other directives the runner ignores.
    Other,
}

/// Parse a test file into records; loops are nested.
pub fn parse(text: &str) -> Result<Vec<Record>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut pos = 0;
    let (records, end) = parse_block(&lines, &mut pos, false)?;
    if end {
        return Err(format!("line {pos}: endloop without loop"));
    }
    Ok(records)
}

fn parse_block(
    lines: &[&str],
    pos: &mut usize,
    in_loop: bool,
) -> Result<(Vec<Record>, bool), String> {
    let mut out = Vec::new();
    while *pos < lines.len() {
        let raw = lines.get(*pos).copied().unwrap_or_default();
        let line_no = *pos + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            *pos += 1;
            continue;
        }
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        let head = words.first().copied().unwrap_or_default();
        *pos += 1;
        match head {
            "statement" => {
                let kind = words.get(1).copied().unwrap_or("ok");
                let conn = words.get(2).map(|s| s.to_string());
                let (sql, expected) = read_body(lines, pos);
                let expect = match kind {
                    "ok" => Expect::Ok,
                    "maybe" => Expect::Maybe,
                    "error" => Expect::Error(if expected.is_empty() {
                        None
                    } else {
                        Some(expected.join("\n"))
                    }),
                    other => return Err(format!("line {line_no}: statement {other}")),
                };
                out.push(Record::Statement {
                    line: line_no,
                    conn,
                    sql,
                    expect,
                });
            }
            "query" => {
                let columns = words.get(1).map_or(1, |t| t.len());
                let mut sort = SortMode::NoSort;
                let mut label = None;
                let mut conn = None;
                for w in words.iter().skip(2) {
                    match *w {
                        "nosort" => sort = SortMode::NoSort,
                        "rowsort" => sort = SortMode::RowSort,
                        "valuesort" => sort = SortMode::ValueSort,
                        w if w
                            .strip_prefix("con")
                            .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit())) =>
                        {
                            conn = Some(w.to_string())
                        }
                        w => label = Some(w.to_string()),
                    }
                }
                let (sql, expected) = read_body(lines, pos);
                out.push(Record::Query {
                    line: line_no,
                    conn,
                    sql,
                    columns,
                    sort,
                    label,
                    expected,
                });
            }
            "require" => out.push(Record::Require(words[1..].join(" "))),
            "require-env" => out.push(Record::RequireEnv(
                words.get(1).copied().unwrap_or_default().to_string(),
            )),
            "test-env" => out.push(Record::TestEnv(
                words.get(1).copied().unwrap_or_default().to_string(),
                words.get(2..).map(|w| w.join(" ")).unwrap_or_default(),
            )),
            "loop" | "concurrentloop" => {
                let var = words.get(1).copied().unwrap_or("i").to_string();
                let start: i64 = words.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
                let end: i64 = words.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
                let (body, closed) = parse_block(lines, pos, true)?;
                if !closed {
                    return Err(format!("line {line_no}: loop without endloop"));
                }
                out.push(Record::Loop {
                    var,
                    values: (start..end).map(|i| i.to_string()).collect(),
                    body,
                });
            }
            "foreach" | "concurrentforeach" => {
                let var = words.get(1).copied().unwrap_or("i").to_string();
                let values = words.iter().skip(2).map(|s| s.to_string()).collect();
                let (body, closed) = parse_block(lines, pos, true)?;
                if !closed {
                    return Err(format!("line {line_no}: foreach without endloop"));
                }
                out.push(Record::Loop { var, values, body });
            }
            "endloop" => {
                if !in_loop {
                    return Err(format!("line {line_no}: endloop without loop"));
                }
                return Ok((out, true));
            }
            "mode" => out.push(Record::Mode(
                words.get(1).copied().unwrap_or_default().to_string(),
            )),
            "restart" | "reconnect" | "load" => out.push(Record::Restart),
            "skipif" | "onlyif" => out.push(Record::Condition {
                skip: head == "skipif",
                cond: words[1..].join(" "),
            }),
            _ => out.push(Record::Other),
        }
    }
    Ok((out, false))
}

/// The SQL lines up to `----` or a blank line, then the expected lines up to
/// the next blank line.
fn read_body(lines: &[&str], pos: &mut usize) -> (String, Vec<String>) {
    let mut sql = Vec::new();
    let mut expected = Vec::new();
    let mut in_result = false;
    while let Some(line) = lines.get(*pos) {
        if line.trim().is_empty() {
            break;
        }
        *pos += 1;
        if !in_result && line.trim_end() == "----" {
            in_result = true;
            continue;
        }
        if in_result {
            expected.push(line.to_string());
        } else if !line.trim_start().starts_with('#') || !sql.is_empty() {
            sql.push(*line);
        }
    }
    (sql.join("\n"), expected)
}

/// The parser on a known file (run at start-up: this binary has no test harness).
pub fn self_check() -> Result<(), String> {
    let text = "require ducklake\n\nstatement ok con1\nCREATE TABLE t(i INT)\n\nloop i 0 2\n\nquery II rowsort\nSELECT ${i}, 2\n----\n1\t2\n\nendloop\n\nstatement error\nSELECT x\n----\nnot found\n";
    let records = parse(text)?;
    let ok = records.len() == 4
        && matches!(&records[2], Record::Loop { values, body, .. }
            if values == &["0", "1"]
            && matches!(&body[0], Record::Query { columns: 2, sort: SortMode::RowSort, expected, .. } if expected == &["1\t2"]))
        && matches!(&records[3], Record::Statement { expect: Expect::Error(Some(m)), .. } if m == "not found");
    if ok {
        Ok(())
    } else {
        Err(format!("parser self-check failed: {records:?}"))
    }
}
