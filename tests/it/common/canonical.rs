//! Canonical rendering of Arrow values, byte-identical to the DuckDB oracle's
//! (`tests/oracle/CANONICAL.md`), so results of both engines compare as strings.

use datafusion::arrow::array::*;
use datafusion::arrow::datatypes::*;
use datafusion::arrow::record_batch::RecordBatch;

use super::TestResult;

/// Column names and rendered rows of a query result.
pub fn render_batches(batches: &[RecordBatch]) -> TestResult<(Vec<String>, Vec<Vec<String>>)> {
    let Some(first) = batches.first() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let columns = first
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut rows = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            let row = b
                .columns()
                .iter()
                .map(|c| render(c.as_ref(), r))
                .collect::<TestResult<Vec<_>>>()?;
            rows.push(row);
        }
    }
    Ok((columns, rows))
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v:.6}")
    }
}

fn decimal(v: i128, scale: i8) -> String {
    if scale <= 0 {
        return (v * 10i128.pow(u32::from(scale.unsigned_abs()))).to_string();
    }
    let neg = v < 0;
    let digits = v.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{}{int}.{frac}", if neg { "-" } else { "" })
}

fn micros_to_datetime(micros: i64) -> chrono::NaiveDateTime {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|d| d.naive_utc())
        .unwrap_or_default()
}

fn ts(dt: chrono::NaiveDateTime) -> String {
    dt.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// Render one value.
pub fn render(array: &dyn Array, i: usize) -> TestResult<String> {
    if array.is_null(i) {
        return Ok("NULL".into());
    }
    let any = array.as_any();
    macro_rules! prim {
        ($t:ty) => {
            if let Some(a) = any.downcast_ref::<PrimitiveArray<$t>>() {
                return Ok(a.value(i).to_string());
            }
        };
    }
    prim!(Int8Type);
    prim!(Int16Type);
    prim!(Int32Type);
    prim!(Int64Type);
    prim!(UInt8Type);
    prim!(UInt16Type);
    prim!(UInt32Type);
    prim!(UInt64Type);
    Ok(match array.data_type() {
        DataType::Boolean => array.as_boolean().value(i).to_string(),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(i)),
        DataType::Decimal128(_, s) => decimal(array.as_primitive::<Decimal128Type>().value(i), *s),
        DataType::Utf8 => array.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(i).to_string(),
        DataType::Utf8View => array.as_string_view().value(i).to_string(),
        DataType::Binary => hex(array.as_binary::<i32>().value(i)),
        DataType::LargeBinary => hex(array.as_binary::<i64>().value(i)),
        DataType::BinaryView => hex(array.as_binary_view().value(i)),
        DataType::FixedSizeBinary(16) => {
            let b = array.as_fixed_size_binary().value(i);
            uuid::Uuid::from_slice(b)?.to_string()
        }
        DataType::FixedSizeBinary(_) => hex(array.as_fixed_size_binary().value(i)),
        DataType::Date32 => {
            let d = array.as_primitive::<Date32Type>().value(i);
            (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
                + chrono::Duration::days(i64::from(d)))
            .format("%Y-%m-%d")
            .to_string()
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            let us = array.as_primitive::<Time64MicrosecondType>().value(i);
            ts(micros_to_datetime(us))[11..].to_string()
        }
        DataType::Timestamp(unit, tz) => {
            let v = match unit {
                TimeUnit::Second => {
                    array.as_primitive::<TimestampSecondType>().value(i) * 1_000_000
                }
                TimeUnit::Millisecond => {
                    array.as_primitive::<TimestampMillisecondType>().value(i) * 1000
                }
                TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(i),
                TimeUnit::Nanosecond => array
                    .as_primitive::<TimestampNanosecondType>()
                    .value(i)
                    .div_euclid(1000),
            };
            let s = ts(micros_to_datetime(v));
            if tz.is_some() { format!("{s}+00") } else { s }
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = array.as_primitive::<IntervalMonthDayNanoType>().value(i);
            ((i64::from(v.months) * 30 + i64::from(v.days)) * 86_400_000_000 + v.nanoseconds / 1000)
                .to_string()
        }
        DataType::List(_) => {
            let l = array.as_list::<i32>();
            let v = l.value(i);
            items(v.as_ref())?
        }
        DataType::LargeList(_) => items(array.as_list::<i64>().value(i).as_ref())?,
        DataType::FixedSizeList(_, _) => items(array.as_fixed_size_list().value(i).as_ref())?,
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let parts = fields
                .iter()
                .enumerate()
                .map(|(k, f)| {
                    Ok(format!(
                        "{}: {}",
                        f.name(),
                        render(s.column(k).as_ref(), i)?
                    ))
                })
                .collect::<TestResult<Vec<_>>>()?;
            format!("{{{}}}", parts.join(", "))
        }
        DataType::Map(_, _) => {
            let m = array.as_map();
            let entries = m.value(i);
            let (k, v) = (entries.column(0), entries.column(1));
            let parts = (0..entries.len())
                .map(|e| {
                    Ok(format!(
                        "{}: {}",
                        render(k.as_ref(), e)?,
                        render(v.as_ref(), e)?
                    ))
                })
                .collect::<TestResult<Vec<_>>>()?;
            format!("{{{}}}", parts.join(", "))
        }
        other => return Err(format!("no canonical rendering for Arrow type {other}").into()),
    })
}

fn items(a: &dyn Array) -> TestResult<String> {
    let parts = (0..a.len())
        .map(|k| render(a, k))
        .collect::<TestResult<Vec<_>>>()?;
    Ok(format!("[{}]", parts.join(", ")))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
