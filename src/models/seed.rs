//! Seeds: CSV files loaded into lake tables, as dbt-duckdb loads them.
//!
//! dbt-duckdb creates the table with the column types dbt infers from the CSV
//! (agate's type tester: Number, Date `%Y-%m-%d`, DateTime `%Y-%m-%d %H:%M:%S`,
//! ISO 8601 date-time, Boolean `true`/`false`, else Text; `""` and `null` do not
//! decide a type; a Number column is `integer` unless a value has decimal places
//! after normalisation, then `float8`), then `COPY`s the file into it, where an
//! empty field is NULL. `column_types` replaces an inferred type. lakeq does the
//! same in one `CREATE OR REPLACE TABLE ... AS SELECT` (one snapshot): a row
//! with the wrong number of fields or a value that does not cast is an error
//! naming the file, and nothing is loaded.

use super::{ModelError, Seed, ident};

/// A column type dbt infers for a seed column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inferred {
    /// `integer` (a Number column without decimal places; also a column of a seed without rows).
    Integer,
    /// `float8` (DOUBLE).
    Double,
    /// `date`.
    Date,
    /// `timestamp without time zone`.
    Timestamp,
    /// `boolean`.
    Boolean,
    /// `text` (VARCHAR).
    Text,
}

impl Inferred {
    /// The SQL type name.
    pub fn sql(self) -> &'static str {
        match self {
            Self::Integer => "INTEGER",
            Self::Double => "DOUBLE",
            Self::Date => "DATE",
            Self::Timestamp => "TIMESTAMP",
            Self::Boolean => "BOOLEAN",
            Self::Text => "VARCHAR",
        }
    }
}

/// A parsed CSV file: header and rows (`None`: an empty field, loaded as NULL).
#[derive(Debug, Clone)]
pub struct Csv {
    /// Column names, exactly as the header spells them.
    pub header: Vec<String>,
    /// Rows of fields.
    pub rows: Vec<Vec<Option<String>>>,
}

/// Parse a seed's CSV text; a row with a different number of fields than the
/// header is an error naming the file and line.
pub fn parse(path: &str, text: &str, delimiter: u8) -> Result<Csv, ModelError> {
    let bad = |line: Option<u64>, message: String| ModelError::Jinja {
        path: path.to_string(),
        line: line.and_then(|l| usize::try_from(l).ok()),
        message,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| bad(Some(1), format!("cannot read the header: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err(bad(Some(1), "the seed has no header row".into()));
    }
    for (i, h) in header.iter().enumerate() {
        if h.trim().is_empty() {
            return Err(bad(Some(1), format!("column {} has no name", i + 1)));
        }
        if header.iter().take(i).any(|x| x == h) {
            return Err(bad(Some(1), format!("two columns are called '{h}'")));
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(csv::Position::line);
            let message = match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => {
                    format!("the row has {len} fields, the header {expected_len}")
                }
                _ => format!("malformed CSV: {e}"),
            };
            bad(line, message)
        })?;
        rows.push(
            record
                .iter()
                .map(|f| (!f.is_empty()).then(|| f.to_string()))
                .collect(),
        );
    }
    Ok(Csv { header, rows })
}

/// dbt's type for one column's values.
pub fn infer(values: &[Option<&str>]) -> Inferred {
    // Candidates in agate's order; a value removes those it cannot be.
    let (mut number, mut date, mut datetime, mut iso, mut boolean) = (true, true, true, true, true);
    let mut places = 0usize;
    for v in values.iter().flatten() {
        let t = v.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("null") {
            continue;
        }
        if number {
            match number_places(t) {
                Some(p) => places = places.max(p),
                None => number = false,
            }
        }
        date = date && chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok();
        datetime =
            datetime && chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").is_ok();
        iso = iso && is_iso_datetime(t);
        let b = t.replace(',', "");
        let b = b.trim();
        boolean = boolean && (b.eq_ignore_ascii_case("true") || b.eq_ignore_ascii_case("false"));
    }
    if number {
        if places > 0 {
            Inferred::Double
        } else {
            Inferred::Integer
        }
    } else if date {
        Inferred::Date
    } else if datetime || iso {
        Inferred::Timestamp
    } else if boolean {
        Inferred::Boolean
    } else {
        Inferred::Text
    }
}

/// Decimal places of `text` as a number (after dropping trailing zeros, as
/// Python's `Decimal.normalize`), or `None` when agate would not read it as one.
fn number_places(text: &str) -> Option<usize> {
    const CURRENCY: &[char] = &[
        '؋', '$', 'ƒ', '៛', '¥', '₡', '₱', '£', '€', '¢', '﷼', '₪', '₩', '₭', '₮', '₦', '฿', '₤',
        '₫',
    ];
    let t = text.trim_matches('%');
    let t = t.strip_prefix('-').unwrap_or(t);
    let t = t.trim_matches(CURRENCY).replace(',', "");
    let t = t.strip_prefix(['+', '-']).unwrap_or(&t);
    let lower = t.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan" | "snan") {
        return Some(0);
    }
    let (mantissa, exponent) = match lower.split_once('e') {
        Some((m, e)) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (m, e.parse::<i64>().ok()?)
        }
        None => (lower.as_str(), 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{int}{frac}");
    let trailing = digits.bytes().rev().take_while(|b| *b == b'0').count();
    if trailing == digits.len() {
        return Some(0); // zero
    }
    let scale = i64::try_from(frac.len()).ok()? - exponent - i64::try_from(trailing).ok()?;
    Some(usize::try_from(scale.max(0)).unwrap_or(0))
}

/// `YYYY-MM-DDTHH:MM[:SS[.f]][Z|±HH[:MM]]`, what `isodate.parse_datetime` reads in seeds.
fn is_iso_datetime(text: &str) -> bool {
    let Some((date, time)) = text.split_once('T') else {
        return false;
    };
    if chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err() {
        return false;
    }
    let time = time.strip_suffix('Z').unwrap_or(time);
    let time = time.rsplit_once(['+', '-']).map_or(time, |(t, _)| t);
    ["%H:%M:%S%.f", "%H:%M:%S", "%H:%M"]
        .iter()
        .any(|f| chrono::NaiveTime::parse_from_str(time, f).is_ok())
}

/// The column types of a seed: `column_types`, else inferred.
pub fn column_types(seed: &Seed, csv: &Csv) -> Vec<(String, String, Option<Inferred>)> {
    csv.header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if let Some(t) = seed.config.column_types.get(name) {
                return (name.clone(), t.clone(), None);
            }
            let values: Vec<Option<&str>> = csv
                .rows
                .iter()
                .map(|r| r.get(i).and_then(|v| v.as_deref()))
                .collect();
            let inferred = infer(&values);
            (name.clone(), inferred.sql().to_string(), Some(inferred))
        })
        .collect()
}

/// The statement that loads `seed` into `seed.relation` (replacing it).
pub fn load_statement(seed: &Seed) -> Result<String, ModelError> {
    let csv = parse(&seed.path, &seed.text, seed.config.delimiter)?;
    for name in seed.config.column_types.keys() {
        if !csv.header.contains(name) {
            return Err(ModelError::Config {
                model: seed.name.clone(),
                path: seed.path.clone(),
                message: format!(
                    "column_types names '{name}', which is not a column of the CSV ({})",
                    csv.header.join(", ")
                ),
            });
        }
    }
    let types = column_types(seed, &csv);
    let cols: Vec<String> = (0..types.len()).map(|i| format!("c{i}")).collect();
    let select: Vec<String> = types
        .iter()
        .zip(&cols)
        .map(|((name, ty, _), c)| format!("CAST({c} AS {ty}) AS {}", quoted(name)))
        .collect();
    let mut sql = format!(
        "CREATE OR REPLACE TABLE {} AS\nSELECT {}\nFROM ",
        seed.relation,
        select.join(", ")
    );
    if csv.rows.is_empty() {
        let nulls: Vec<String> = cols.iter().map(|c| format!("NULL AS {c}")).collect();
        sql.push_str(&format!(
            "(SELECT {}) AS seed_rows WHERE false",
            nulls.join(", ")
        ));
        return Ok(sql);
    }
    sql.push_str("(VALUES\n");
    for (n, row) in csv.rows.iter().enumerate() {
        if n > 0 {
            sql.push_str(",\n");
        }
        sql.push('(');
        for (i, (value, (_, _, inferred))) in row.iter().zip(&types).enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            match value {
                None => sql.push_str("CAST(NULL AS VARCHAR)"),
                Some(v) => {
                    // An integer column may hold `1.0` (dbt normalises it; DuckDB's cast rounds).
                    let v = match inferred {
                        Some(Inferred::Integer) => integer_text(v).unwrap_or_else(|| v.clone()),
                        _ => v.clone(),
                    };
                    sql.push('\'');
                    sql.push_str(&v.replace('\'', "''"));
                    sql.push('\'');
                }
            }
        }
        sql.push(')');
    }
    sql.push_str(&format!(") AS seed_rows({})", cols.join(", ")));
    Ok(sql)
}

/// `1.0` / `1e3` as an integer literal, when the number is whole.
fn integer_text(v: &str) -> Option<String> {
    let t = v.trim();
    if t.bytes()
        .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+')
    {
        return None;
    }
    let f: f64 = t.parse().ok()?;
    (f.fract() == 0.0 && f.abs() < 9.0e15).then(|| format!("{}", f as i64))
}

/// A column name quoted exactly as written (DuckDB keeps the header's case).
fn quoted(name: &str) -> String {
    let plain = ident(name);
    if plain.starts_with('"') {
        plain
    } else {
        format!("\"{name}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer_all(values: &[&str]) -> Inferred {
        let v: Vec<Option<&str>> = values
            .iter()
            .map(|s| (!s.is_empty()).then_some(*s))
            .collect();
        infer(&v)
    }

    #[test]
    fn infers_types_as_dbt() {
        assert_eq!(infer_all(&["1", "2", ""]), Inferred::Integer);
        assert_eq!(infer_all(&["1.0", "2.00"]), Inferred::Integer);
        assert_eq!(infer_all(&["1.5", "2"]), Inferred::Double);
        assert_eq!(infer_all(&["1e-3"]), Inferred::Double);
        assert_eq!(infer_all(&["2024-01-05", "null"]), Inferred::Date);
        assert_eq!(infer_all(&["2024-01-05 10:00:00"]), Inferred::Timestamp);
        assert_eq!(infer_all(&["2024-01-05T10:00:00.5Z"]), Inferred::Timestamp);
        assert_eq!(infer_all(&["2024-01-05 10:00:00.5"]), Inferred::Text);
        assert_eq!(infer_all(&["true", "False"]), Inferred::Boolean);
        assert_eq!(infer_all(&["yes", "no"]), Inferred::Text);
        assert_eq!(infer_all(&["", ""]), Inferred::Integer);
        assert_eq!(infer_all(&[]), Inferred::Integer);
        assert_eq!(infer_all(&["1", "x"]), Inferred::Text);
    }

    #[test]
    fn a_short_row_names_its_line() {
        let err = parse("seeds/s.csv", "a,b\n1,2\n3\n", b',')
            .expect_err("short row")
            .to_string();
        assert!(err.contains("seeds/s.csv, line 3"), "{err}");
        assert!(err.contains("1 fields, the header 2"), "{err}");
    }
}
