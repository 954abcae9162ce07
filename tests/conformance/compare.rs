//! Comparing a result with a record's expected lines, as DuckDB's sqllogictest
//! runner does (`scripts/sqllogictest/result.py` in duckdb/duckdb): values are
//! DuckDB's VARCHAR text (`NULL`, `(empty)` for an empty string); rows are
//! sorted per the sort mode; unequal text still matches when both sides are the
//! same number (floats within 1%), the same boolean, or a `<REGEX>:` matches.

use crate::script::SortMode;

/// A result as text: column types (DuckDB names) and rows of values.
#[derive(Debug, Clone)]
pub struct TextResult {
    /// DuckDB type name per column.
    pub types: Vec<String>,
    /// Values: `None` = NULL.
    pub rows: Vec<Vec<Option<String>>>,
}

impl TextResult {
    /// The values as the runner prints them, row-major.
    pub fn cells(&self) -> Vec<String> {
        self.rows
            .iter()
            .flat_map(|r| r.iter().map(|v| cell_text(v.as_deref())))
            .collect()
    }

    /// Column count (0 for no columns).
    pub fn columns(&self) -> usize {
        self.types.len().max(self.rows.first().map_or(0, Vec::len))
    }
}

/// `NULL`, `(empty)`, NUL bytes escaped.
pub fn cell_text(v: Option<&str>) -> String {
    match v {
        None => "NULL".into(),
        Some("") => "(empty)".into(),
        Some(s) => s.replace('\0', "\\0"),
    }
}

fn sorted_cells(result: &TextResult, sort: SortMode) -> Vec<String> {
    let mut cells = result.cells();
    let ncols = result.columns().max(1);
    match sort {
        SortMode::NoSort => {}
        SortMode::ValueSort => cells.sort(),
        SortMode::RowSort => {
            let mut rows: Vec<Vec<String>> = cells.chunks(ncols).map(<[String]>::to_vec).collect();
            rows.sort();
            cells = rows.into_iter().flatten().collect();
        }
    }
    cells
}

fn is_numeric(t: &str) -> bool {
    matches!(
        t,
        "TINYINT"
            | "SMALLINT"
            | "INTEGER"
            | "BIGINT"
            | "HUGEINT"
            | "FLOAT"
            | "DOUBLE"
            | "UTINYINT"
            | "USMALLINT"
            | "UINTEGER"
            | "UBIGINT"
            | "UHUGEINT"
    ) || t.starts_with("DECIMAL")
}

fn values_match(actual: &str, expected: &str, sql_type: &str) -> bool {
    if actual == expected {
        return true;
    }
    if let Some(re) = expected.strip_prefix("<REGEX>:") {
        return regex_match(re, actual);
    }
    if let Some(re) = expected.strip_prefix("<!REGEX>:") {
        return !regex_match(re, actual);
    }
    if is_numeric(sql_type) {
        let (Ok(a), Ok(e)) = (actual.parse::<f64>(), expected.parse::<f64>()) else {
            return false;
        };
        if sql_type == "FLOAT" || sql_type == "DOUBLE" {
            if a == e || (a.is_nan() && e.is_nan()) {
                return true;
            }
            return (e - a).abs() <= a.abs() * 0.01 + 0.000_000_01;
        }
        return a == e;
    }
    if sql_type == "BOOLEAN" {
        let b = |s: &str| match s.to_ascii_lowercase().as_str() {
            "true" | "t" | "1" => Some(true),
            "false" | "f" | "0" => Some(false),
            _ => None,
        };
        return b(actual).is_some() && b(actual) == b(expected);
    }
    false
}

/// A tiny regex matcher for the suite's `<REGEX>:` values: `.*`, top-level
/// alternatives (`1|2`) and literal text only (all the suite uses); an
/// alternative without `.*` must match the whole text, one with `.*` is
/// anchored with `.*` on both sides.
fn regex_match(pattern: &str, text: &str) -> bool {
    if pattern.contains('|') {
        return pattern.split('|').any(|alt| regex_match(alt, text));
    }
    if !pattern.contains(".*") {
        return pattern == text;
    }
    let parts: Vec<&str> = pattern.split(".*").filter(|p| !p.is_empty()).collect();
    let mut rest = text;
    for part in parts {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// Check `result` against `expected` lines; `Err` describes the first difference.
pub fn check(
    result: &TextResult,
    expected: &[String],
    declared_columns: usize,
    sort: SortMode,
) -> Result<(), String> {
    let cells = sorted_cells(result, sort);
    let ncols = result.columns();
    if ncols == 0 {
        return if expected.is_empty() {
            Ok(())
        } else {
            Err(format!("expected {} values, got no rows", expected.len()))
        };
    }
    let _ = declared_columns;
    let row_wise_by_count = ncols > 1 && expected.len() == result.rows.len();
    let row_wise =
        row_wise_by_count || (!expected.is_empty() && expected.iter().all(|l| l.contains('\t')));
    let mut want: Vec<String> = Vec::new();
    if row_wise {
        for (i, line) in expected.iter().enumerate() {
            let parts: Vec<&str> = line.split('\t').filter(|p| !p.is_empty()).collect();
            if parts.len() != ncols {
                return Err(format!(
                    "expected row {} has {} values, the result has {ncols} columns",
                    i + 1,
                    parts.len()
                ));
            }
            want.extend(parts.into_iter().map(str::to_string));
        }
    } else {
        want = expected.to_vec();
    }
    if want.len() != cells.len() {
        return Err(format!(
            "expected {} rows, got {}",
            want.len() / ncols,
            cells.len() / ncols
        ));
    }
    for (i, (got, exp)) in cells.iter().zip(&want).enumerate() {
        let column = i % ncols;
        let sql_type = result.types.get(column).map_or("", String::as_str);
        if !values_match(got, exp, sql_type) {
            return Err(format!(
                "row {}, column {}: got {got:?}, expected {exp:?}",
                i / ncols + 1,
                column + 1
            ));
        }
    }
    Ok(())
}

/// The same rows as `expected`, in another order?
pub fn same_rows_any_order(result: &TextResult, expected: &[String]) -> bool {
    let ncols = result.columns();
    if ncols == 0 || expected.len() != result.rows.len() {
        return false;
    }
    let mut want: Vec<Vec<String>> = expected
        .iter()
        .map(|l| {
            l.split('\t')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect();
    let mut got: Vec<Vec<String>> = result
        .rows
        .iter()
        .map(|r| r.iter().map(|v| cell_text(v.as_deref())).collect())
        .collect();
    want.sort();
    got.sort();
    want.iter().zip(&got).all(|(w, g)| {
        w.len() == g.len()
            && w.iter().zip(g).enumerate().all(|(c, (e, a))| {
                values_match(a, e, result.types.get(c).map_or("", String::as_str))
            })
    })
}

/// Do two results hold the same values (for labelled queries)?
pub fn same_values(a: &TextResult, b: &TextResult, sort: SortMode) -> bool {
    sorted_cells(a, sort) == sorted_cells(b, sort)
}

/// The comparison rules on known cases (run at start-up: this binary has no
/// test harness).
pub fn self_check() -> Result<(), String> {
    fn result(types: &[&str], rows: &[&[Option<&str>]]) -> TextResult {
        TextResult {
            types: types.iter().map(|s| s.to_string()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|v| v.map(str::to_string)).collect())
                .collect(),
        }
    }
    let r = result(
        &["INTEGER", "VARCHAR"],
        &[&[Some("2"), Some("")], &[Some("1"), None]],
    );
    let exp = vec!["1\tNULL".to_string(), "2\t(empty)".to_string()];
    let cases = [
        check(&r, &exp, 2, SortMode::RowSort).is_ok(),
        check(&r, &exp, 2, SortMode::NoSort).is_err(),
        check(
            &result(&["DOUBLE"], &[&[Some("0.30000000000000004")]]),
            &["0.3".to_string()],
            1,
            SortMode::NoSort,
        )
        .is_ok(),
        check(
            &result(&["BOOLEAN"], &[&[Some("true")]]),
            &["1".to_string()],
            1,
            SortMode::NoSort,
        )
        .is_ok(),
        check(
            &result(&["VARCHAR"], &[&[Some("Min: 1, Max: 6")]]),
            &["<REGEX>:.*Min.*1.*Max.*6.*".to_string()],
            1,
            SortMode::NoSort,
        )
        .is_ok(),
        check(
            &result(&["INTEGER"], &[&[Some("1")]]),
            &["2".to_string()],
            1,
            SortMode::NoSort,
        )
        .is_err(),
    ];
    match cases.iter().position(|ok| !ok) {
        Some(i) => Err(format!("comparison self-check case {i} failed")),
        None => Ok(()),
    }
}
