//! Printing query results: `table`, `csv`, `json` (an array of objects with
//! explicit nulls) and `nd-json` (one object per line), every value as DuckDB
//! prints it.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;

use lakeq::dialect::render::{json_value, value_text};

use lakeq::error::Result;

/// Output format of `lakeq sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A human-readable table.
    Table,
    /// CSV with a header row; NULL is an empty unquoted field, an empty string is `""`.
    Csv,
    /// A JSON array of objects, NULLs explicit.
    Json,
    /// One JSON object per line.
    NdJson,
}

/// Print one statement's result. Values are written as DuckDB prints them
/// ([`lakeq::dialect::render`]): the same query reads the same in lakeq and DuckDB.
pub fn write_batches(
    out: &mut dyn Write,
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<()> {
    match format {
        OutputFormat::Table => write_table(out, batches)?,
        OutputFormat::Csv => write_csv(out, batches)?,
        OutputFormat::Json => write_json(out, batches, true)?,
        OutputFormat::NdJson => write_json(out, batches, false)?,
    }
    Ok(())
}

/// A table with a header, NULL written as `NULL`.
fn write_table(out: &mut dyn Write, batches: &[RecordBatch]) -> Result<()> {
    let Some(first) = batches.first() else {
        return Ok(());
    };
    let schema = first.schema();
    let header: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| value_text(c.as_ref(), row).unwrap_or_else(|| "NULL".into()))
                    .collect(),
            );
        }
    }
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for r in &rows {
        for (w, v) in widths.iter_mut().zip(r) {
            *w = (*w).max(width(v));
        }
    }
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+";
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("| {c}{} ", " ".repeat(w - width(c))))
            .collect::<String>()
            + "|"
    };
    writeln!(out, "{rule}")?;
    writeln!(out, "{}", line(&header))?;
    writeln!(out, "{rule}")?;
    for r in &rows {
        writeln!(out, "{}", line(r))?;
    }
    writeln!(out, "{rule}")?;
    Ok(())
}

fn write_json(out: &mut dyn Write, batches: &[RecordBatch], array: bool) -> Result<()> {
    let mut first_row = true;
    if array {
        write!(out, "[")?;
    }
    for batch in batches {
        let schema = batch.schema();
        for row in 0..batch.num_rows() {
            let mut object = String::from("{");
            for (i, (field, column)) in schema.fields().iter().zip(batch.columns()).enumerate() {
                if i > 0 {
                    object.push(',');
                }
                object.push_str(&serde_json::Value::String(field.name().clone()).to_string());
                object.push(':');
                object.push_str(&json_value(column.as_ref(), row));
            }
            object.push('}');
            if array {
                if !first_row {
                    write!(out, ",")?;
                }
                write!(out, "{object}")?;
            } else {
                writeln!(out, "{object}")?;
            }
            first_row = false;
        }
    }
    if array {
        writeln!(out, "]")?;
    }
    Ok(())
}

/// CSV is written by hand because arrow's writer cannot tell NULL (empty field)
/// from the empty string (`""`), which round trips need.
fn write_csv(out: &mut dyn Write, batches: &[RecordBatch]) -> Result<()> {
    let Some(first) = batches.first() else {
        return Ok(());
    };
    let header: Vec<String> = first
        .schema()
        .fields()
        .iter()
        .map(|f| csv_quote(f.name(), false))
        .collect();
    writeln!(out, "{}", header.join(","))?;
    for batch in batches {
        for row in 0..batch.num_rows() {
            let mut fields = Vec::with_capacity(batch.num_columns());
            for col in batch.columns() {
                let Some(text) = value_text(col.as_ref(), row) else {
                    fields.push(String::new());
                    continue;
                };
                let is_string = matches!(
                    col.data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                );
                fields.push(csv_quote(&text, is_string));
            }
            writeln!(out, "{}", fields.join(","))?;
        }
    }
    Ok(())
}

fn csv_quote(text: &str, quote_empty: bool) -> String {
    if (quote_empty && text.is_empty()) || text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, StringArray};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            (
                "i",
                Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])) as _,
            ),
            (
                "s",
                Arc::new(StringArray::from(vec![Some(""), None, Some("a,\"b\"")])) as _,
            ),
        ])
        .expect("batch")
    }

    fn render(format: OutputFormat) -> String {
        let mut out = Vec::new();
        write_batches(&mut out, &[batch()], format).expect("write");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn csv_distinguishes_null_from_empty() {
        assert_eq!(
            render(OutputFormat::Csv),
            "i,s\n1,\"\"\n,\n3,\"a,\"\"b\"\"\"\n"
        );
    }

    #[test]
    fn json_has_explicit_nulls() {
        assert_eq!(
            render(OutputFormat::Json),
            "[{\"i\":1,\"s\":\"\"},{\"i\":null,\"s\":null},{\"i\":3,\"s\":\"a,\\\"b\\\"\"}]\n"
        );
        assert_eq!(render(OutputFormat::NdJson).lines().count(), 3);
    }
}
