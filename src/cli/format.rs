//! Printing query results: `table` (arrow's pretty printer), `csv`, `json`
//! (an array of objects with explicit nulls) and `nd-json` (one object per line).

use std::io::Write;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::json::writer::{JsonArray, JsonFormat, LineDelimited, WriterBuilder};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::error::{Error, Result};

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

/// Print one statement's result.
pub fn write_batches(
    out: &mut dyn Write,
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<()> {
    match format {
        OutputFormat::Table => {
            if batches.is_empty() {
                return Ok(());
            }
            writeln!(out, "{}", pretty_format_batches(batches)?)?;
        }
        OutputFormat::Csv => write_csv(out, batches)?,
        OutputFormat::Json => write_json::<JsonArray>(out, batches, true)?,
        OutputFormat::NdJson => write_json::<LineDelimited>(out, batches, false)?,
    }
    Ok(())
}

fn write_json<F: JsonFormat>(
    out: &mut dyn Write,
    batches: &[RecordBatch],
    array: bool,
) -> Result<()> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if rows == 0 {
        if array {
            writeln!(out, "[]")?;
        }
        return Ok(());
    }
    let mut buf = Vec::new();
    {
        let mut writer = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, F>(&mut buf);
        for b in batches {
            writer.write(b)?;
        }
        writer.finish()?;
    }
    out.write_all(&buf)?;
    if array {
        writeln!(out)?;
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
    let options = FormatOptions::default();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let mut fields = Vec::with_capacity(formatters.len());
            for (col, f) in batch.columns().iter().zip(&formatters) {
                if col.is_null(row) {
                    fields.push(String::new());
                    continue;
                }
                let is_string = matches!(
                    col.data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                );
                let text = if is_string {
                    match col.data_type() {
                        DataType::Utf8 => col.as_string::<i32>().value(row).to_string(),
                        DataType::LargeUtf8 => col.as_string::<i64>().value(row).to_string(),
                        _ => col.as_string_view().value(row).to_string(),
                    }
                } else {
                    f.value(row).to_string()
                };
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

impl From<datafusion::arrow::error::ArrowError> for Error {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        Error::DataFusion(e.into())
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
