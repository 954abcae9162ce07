//! DuckDB's functions where DataFusion lacks them or spells them differently.
//!
//! Most are rewritten in the AST into DataFusion's own functions (see
//! [`rewrite_call`]): `year(x)` is `CAST(date_part('year', x) AS BIGINT)`,
//! `list_value` is `make_array`, `strlen` is `octet_length`, ... A few need
//! their own implementation: `typeof` (DuckDB's type names) and the
//! `lakeq_duckdb_type` helper that shows DataFusion's `information_schema`
//! types by DuckDB's names.

use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::{
    CastKind, DataType as SqlType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, Ident, ObjectName, ObjectNamePart, Value,
};

use super::render::duckdb_type_name;

/// `typeof(x)`: DuckDB's name of the argument's type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TypeOf {
    signature: Signature,
}

impl ScalarUDFImpl for TypeOf {
    fn name(&self) -> &str {
        "typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let name = args
            .arg_fields
            .first()
            .map(|f| duckdb_type_name(f.data_type()))
            .unwrap_or_else(|| "\"NULL\"".into());
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))))
    }
}

/// `lakeq_duckdb_type(text)`: an Arrow type as DataFusion prints it, by DuckDB's name.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DuckDbTypeName {
    signature: Signature,
}

fn arrow_text_to_duckdb(text: &str) -> String {
    DataType::from_str(text).map_or_else(|_| text.to_string(), |t| duckdb_type_name(&t))
}

impl ScalarUDFImpl for DuckDbTypeName {
    fn name(&self) -> &str {
        "lakeq_duckdb_type"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        match args.args.first() {
            Some(ColumnarValue::Scalar(v)) => {
                let text = match v {
                    ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => {
                        s.as_deref().map(arrow_text_to_duckdb)
                    }
                    _ => None,
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(text)))
            }
            Some(ColumnarValue::Array(a)) => {
                let a = datafusion::arrow::compute::cast(a, &DataType::Utf8)?;
                let strings = a.as_string::<i32>();
                let out: StringArray = (0..strings.len())
                    .map(|i| (!strings.is_null(i)).then(|| arrow_text_to_duckdb(strings.value(i))))
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            None => Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))),
        }
    }
}

/// `lakeq_round_for_cast(x)`: `x` rounded half away from zero if it is a float
/// or a decimal, else `x`, in `x`'s type. Wrapped around the operand of every
/// cast to an integer type, so `CAST(2.5 AS INT)` is 3 as in DuckDB (Arrow's cast
/// truncates). Invisible in column names.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RoundForCast {
    signature: Signature,
}

/// The name of `RoundForCast` in SQL.
pub const ROUND_FOR_CAST: &str = "lakeq_round_for_cast";

fn round_decimal(v: i128, scale: i8) -> i128 {
    let Ok(scale) = u32::try_from(scale) else {
        return v;
    };
    if scale == 0 {
        return v;
    }
    let factor = 10i128.saturating_pow(scale);
    let half = factor / 2;
    let whole = v / factor;
    let rest = v % factor;
    let rounded = if rest >= half {
        whole + 1
    } else if rest <= -half {
        whole - 1
    } else {
        whole
    };
    rounded.saturating_mul(factor)
}

impl ScalarUDFImpl for RoundForCast {
    fn name(&self) -> &str {
        ROUND_FOR_CAST
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(arg_types.first().cloned().unwrap_or(DataType::Null))
    }

    fn schema_name(&self, args: &[datafusion::logical_expr::Expr]) -> DFResult<String> {
        Ok(args
            .first()
            .map(|a| a.schema_name().to_string())
            .unwrap_or_default())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        use datafusion::arrow::datatypes::{Decimal128Type, Float32Type, Float64Type};
        let Some(arg) = args.args.into_iter().next() else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Null));
        };
        let array = arg.to_array(args.number_rows)?;
        let out: Arc<dyn Array> = match array.data_type() {
            // DuckDB rounds floats half to even (`CAST(2.5::DOUBLE AS INT)` is 2) and
            // decimals half away from zero (`CAST(2.5 AS INT)` is 3).
            DataType::Float64 => Arc::new(
                array
                    .as_primitive::<Float64Type>()
                    .unary::<_, Float64Type>(f64::round_ties_even),
            ),
            DataType::Float32 => Arc::new(
                array
                    .as_primitive::<Float32Type>()
                    .unary::<_, Float32Type>(f32::round_ties_even),
            ),
            DataType::Decimal128(p, s) => {
                let (p, s) = (*p, *s);
                Arc::new(
                    array
                        .as_primitive::<Decimal128Type>()
                        .unary::<_, Decimal128Type>(|v| round_decimal(v, s))
                        .with_precision_and_scale(p, s)?,
                )
            }
            _ => array,
        };
        Ok(match arg {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(out),
        })
    }
}

/// DuckDB's `printf(format, args...)`: C-style `%[flags][width][.precision]type`
/// with types `d i u s f F e E g x X o c %` and flags `- 0 + space`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Printf {
    signature: Signature,
}

/// One argument of a printf call, as a value.
enum PrintfArg {
    Int(i128),
    Float(f64),
    Text(String),
    Null,
}

fn printf_arg(array: &dyn Array, row: usize) -> PrintfArg {
    use datafusion::arrow::datatypes::{Float32Type, Float64Type, Int64Type};
    if array.is_null(row) {
        return PrintfArg::Null;
    }
    match array.data_type() {
        t if t.is_integer() => {
            datafusion::arrow::compute::cast(&array.slice(row, 1), &DataType::Int64)
                .ok()
                .and_then(|a| {
                    a.as_primitive_opt::<Int64Type>()
                        .map(|p| PrintfArg::Int(i128::from(p.value(0))))
                })
                .unwrap_or(PrintfArg::Null)
        }
        DataType::Float64 => PrintfArg::Float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Float32 => {
            PrintfArg::Float(f64::from(array.as_primitive::<Float32Type>().value(row)))
        }
        DataType::Decimal128(..) | DataType::Decimal256(..) => PrintfArg::Float(
            super::render::value_text(array, row)
                .and_then(|t| t.parse().ok())
                .unwrap_or(0.0),
        ),
        _ => PrintfArg::Text(super::render::value_text(array, row).unwrap_or_default()),
    }
}

/// Format `args` by `format` as C's printf would (what DuckDB's `printf` does).
fn printf_format(format: &str, args: &[PrintfArg]) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next = args.iter();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero, mut plus, mut space) = (false, false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' => space = true,
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(p.parse().unwrap_or(0));
        }
        // Length modifiers (`l`, `ll`, `h`) change nothing here.
        while matches!(chars.peek(), Some('l' | 'h' | 'z')) {
            chars.next();
        }
        let Some(conv) = chars.next() else {
            return Err("printf: format ends inside a conversion".into());
        };
        if conv == '%' {
            out.push('%');
            continue;
        }
        let arg = next
            .next()
            .ok_or_else(|| format!("printf: too few arguments for '{format}'"))?;
        let sign = |negative: bool| {
            if negative {
                "-"
            } else if plus {
                "+"
            } else if space {
                " "
            } else {
                ""
            }
        };
        let (prefix, body) = match (conv, arg) {
            (_, PrintfArg::Null) => (String::new(), "NULL".to_string()),
            ('d' | 'i' | 'u', PrintfArg::Int(v)) => {
                (sign(*v < 0).to_string(), v.unsigned_abs().to_string())
            }
            ('d' | 'i' | 'u', PrintfArg::Float(v)) => (
                sign(*v < 0.0).to_string(),
                (v.abs().trunc() as i128).to_string(),
            ),
            ('x', PrintfArg::Int(v)) => (String::new(), format!("{v:x}")),
            ('X', PrintfArg::Int(v)) => (String::new(), format!("{v:X}")),
            ('o', PrintfArg::Int(v)) => (String::new(), format!("{v:o}")),
            ('c', PrintfArg::Int(v)) => (
                String::new(),
                u32::try_from(*v)
                    .ok()
                    .and_then(char::from_u32)
                    .map(String::from)
                    .unwrap_or_default(),
            ),
            ('f' | 'F', a) => {
                let v = match a {
                    PrintfArg::Int(i) => *i as f64,
                    PrintfArg::Float(f) => *f,
                    _ => return Err(format!("printf: %{conv} needs a number")),
                };
                (
                    sign(v < 0.0).to_string(),
                    format!("{:.*}", precision.unwrap_or(6), v.abs()),
                )
            }
            ('e' | 'E', a) => {
                let v = match a {
                    PrintfArg::Int(i) => *i as f64,
                    PrintfArg::Float(f) => *f,
                    _ => return Err(format!("printf: %{conv} needs a number")),
                };
                let text = format!("{:.*e}", precision.unwrap_or(6), v.abs());
                // Rust writes `1.5e2`; C writes `1.5e+02`.
                let (m, e) = text.split_once('e').unwrap_or((&text, "0"));
                let e: i32 = e.parse().unwrap_or(0);
                let text = format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
                (
                    sign(v < 0.0).to_string(),
                    if conv == 'E' {
                        text.to_uppercase()
                    } else {
                        text
                    },
                )
            }
            ('g' | 'G', a) => {
                let v = match a {
                    PrintfArg::Int(i) => *i as f64,
                    PrintfArg::Float(f) => *f,
                    _ => return Err(format!("printf: %{conv} needs a number")),
                };
                (sign(v < 0.0).to_string(), format!("{}", v.abs()))
            }
            ('s', a) => {
                let text = match a {
                    PrintfArg::Int(i) => i.to_string(),
                    PrintfArg::Float(f) => {
                        let mut t = String::new();
                        super::render::push_float(&mut t, *f);
                        t
                    }
                    PrintfArg::Text(t) => t.clone(),
                    PrintfArg::Null => "NULL".into(),
                };
                let text = match precision {
                    Some(p) => text.chars().take(p).collect(),
                    None => text,
                };
                (String::new(), text)
            }
            (other, _) => return Err(format!("printf: unsupported conversion %{other}")),
        };
        let width: usize = width.parse().unwrap_or(0);
        let len = prefix.chars().count() + body.chars().count();
        let pad = width.saturating_sub(len);
        if left {
            out.push_str(&prefix);
            out.push_str(&body);
            out.push_str(&" ".repeat(pad));
        } else if zero && conv != 's' {
            out.push_str(&prefix);
            out.push_str(&"0".repeat(pad));
            out.push_str(&body);
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(&prefix);
            out.push_str(&body);
        }
    }
    Ok(out)
}

impl ScalarUDFImpl for Printf {
    fn name(&self) -> &str {
        "printf"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let n = args.number_rows;
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(if all_scalar { 1 } else { n }))
            .collect::<DFResult<Vec<_>>>()?;
        let rows = if all_scalar { 1 } else { n };
        let Some((format, rest)) = arrays.split_first() else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        };
        let format = datafusion::arrow::compute::cast(format, &DataType::Utf8)?;
        let format = format.as_string::<i32>();
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            if format.is_null(row) {
                out.push(None);
                continue;
            }
            let values: Vec<PrintfArg> = rest.iter().map(|a| printf_arg(a.as_ref(), row)).collect();
            let text = printf_format(format.value(row), &values)
                .map_err(datafusion::error::DataFusionError::Execution)?;
            out.push(Some(text));
        }
        let array = Arc::new(StringArray::from(out));
        Ok(if all_scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(array.as_ref(), 0)?)
        } else {
            ColumnarValue::Array(array)
        })
    }
}

/// `lakeq_to_varchar(x)`: DuckDB's `CAST(x AS VARCHAR)` (its text of every
/// type, nested ones included, which Arrow's cast lacks or spells otherwise).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToVarchar {
    signature: Signature,
}

/// The name of `ToVarchar` in SQL.
pub const TO_VARCHAR: &str = "lakeq_to_varchar";

impl ScalarUDFImpl for ToVarchar {
    fn name(&self) -> &str {
        TO_VARCHAR
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn schema_name(&self, args: &[datafusion::logical_expr::Expr]) -> DFResult<String> {
        Ok(format!(
            "CAST({} AS VARCHAR)",
            args.first()
                .map(|a| a.schema_name().to_string())
                .unwrap_or_default()
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let Some(arg) = args.args.into_iter().next() else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        };
        let scalar = matches!(arg, ColumnarValue::Scalar(_));
        let array = arg.to_array(if scalar { 1 } else { args.number_rows })?;
        let out: Arc<dyn Array> = match array.data_type() {
            DataType::Utf8 => array,
            DataType::LargeUtf8 | DataType::Utf8View => {
                datafusion::arrow::compute::cast(&array, &DataType::Utf8)?
            }
            _ => Arc::new(
                (0..array.len())
                    .map(|i| super::render::value_text(array.as_ref(), i))
                    .collect::<StringArray>(),
            ),
        };
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(out.as_ref(), 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

/// `lakeq_to_uuid(x)`: DuckDB's UUID from text (lakeq's UUID is a
/// `FixedSizeBinary(16)`, which it prints as `8-4-4-4-12` hex).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToUuid {
    signature: Signature,
}

impl ScalarUDFImpl for ToUuid {
    fn name(&self) -> &str {
        "lakeq_to_uuid"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::FixedSizeBinary(16))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        use datafusion::arrow::array::FixedSizeBinaryBuilder;
        let Some(arg) = args.args.into_iter().next() else {
            return Ok(ColumnarValue::Scalar(ScalarValue::FixedSizeBinary(
                16, None,
            )));
        };
        let scalar = matches!(arg, ColumnarValue::Scalar(_));
        let array = arg.to_array(if scalar { 1 } else { args.number_rows })?;
        if array.data_type() == &DataType::FixedSizeBinary(16) {
            return Ok(if scalar {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
            } else {
                ColumnarValue::Array(array)
            });
        }
        let text = datafusion::arrow::compute::cast(&array, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let mut out = FixedSizeBinaryBuilder::with_capacity(text.len(), 16);
        for i in 0..text.len() {
            if text.is_null(i) {
                out.append_null();
                continue;
            }
            let uuid = uuid::Uuid::parse_str(text.value(i).trim()).map_err(|e| {
                datafusion::error::DataFusionError::Execution(format!(
                    "'{}' is not a UUID: {e}",
                    text.value(i)
                ))
            })?;
            out.append_value(uuid.as_bytes())?;
        }
        let out: Arc<dyn Array> = Arc::new(out.finish());
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

/// DuckDB's `uuid_extract_version(u)`: the version nibble of an RFC 4122 UUID
/// (a UINTEGER); other variants are an error (DuckDB answers for them with
/// numbers lakeq does not reproduce).
#[derive(Debug, PartialEq, Eq, Hash)]
struct UuidVersion {
    signature: Signature,
}

impl ScalarUDFImpl for UuidVersion {
    fn name(&self) -> &str {
        "uuid_extract_version"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::UInt32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        use datafusion::arrow::array::UInt32Array;
        let rows = args.number_rows;
        let inner = ScalarUDF::from(ToUuid {
            signature: Signature::any(1, Volatility::Immutable),
        });
        let uuids = inner.invoke_with_args(ScalarFunctionArgs {
            args: args.args,
            arg_fields: args.arg_fields,
            number_rows: rows,
            return_field: Arc::new(datafusion::arrow::datatypes::Field::new(
                "u",
                DataType::FixedSizeBinary(16),
                true,
            )),
            config_options: args.config_options,
        })?;
        let scalar = matches!(uuids, ColumnarValue::Scalar(_));
        let array = uuids.to_array(if scalar { 1 } else { rows })?;
        let bytes = array.as_fixed_size_binary();
        let out = (0..bytes.len())
            .map(|i| {
                if bytes.is_null(i) {
                    return Ok(None);
                }
                let b = bytes.value(i);
                match (b.get(6), b.get(8)) {
                    (Some(v), Some(variant)) if variant >> 6 == 0b10 => Ok(Some(u32::from(v >> 4))),
                    _ => datafusion::common::exec_err!(
                        "uuid_extract_version: {} is not an RFC 4122 UUID (lakeq reads the \
                         version of those only)",
                        uuid::Uuid::from_slice(b)
                            .map(|u| u.to_string())
                            .unwrap_or_default()
                    ),
                }
            })
            .collect::<DFResult<UInt32Array>>()?;
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(Arc::new(out))
        })
    }
}

/// `lakeq_to_blob(x)`: DuckDB's `CAST(text AS BLOB)`: `\xHH` escapes are bytes,
/// other characters their UTF-8 bytes; a BLOB stays as it is.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToBlob {
    signature: Signature,
}

/// Decode DuckDB's blob text (`a\x00b`).
fn blob_from_text(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            let hex = text
                .get(i + 2..i + 4)
                .filter(|_| matches!(bytes.get(i + 1), Some(b'x' | b'X')))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("invalid escape in blob text '{text}' (use \\xHH)"))?;
            out.push(hex);
            i += 4;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

impl ScalarUDFImpl for ToBlob {
    fn name(&self) -> &str {
        "lakeq_to_blob"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Binary)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        use datafusion::arrow::array::BinaryBuilder;
        let Some(arg) = args.args.into_iter().next() else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Binary(None)));
        };
        let scalar = matches!(arg, ColumnarValue::Scalar(_));
        let array = arg.to_array(if scalar { 1 } else { args.number_rows })?;
        let out: Arc<dyn Array> = match array.data_type() {
            DataType::Binary => array,
            DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
                datafusion::arrow::compute::cast(&array, &DataType::Binary)?
            }
            _ => {
                let text = datafusion::arrow::compute::cast(&array, &DataType::Utf8)?;
                let text = text.as_string::<i32>();
                let mut out = BinaryBuilder::new();
                for i in 0..text.len() {
                    if text.is_null(i) {
                        out.append_null();
                    } else {
                        out.append_value(
                            blob_from_text(text.value(i))
                                .map_err(datafusion::error::DataFusionError::Execution)?,
                        );
                    }
                }
                Arc::new(out.finish())
            }
        };
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

/// `CAST(x AS BLOB)` (and `BYTEA`, `VARBINARY`) → `lakeq_to_blob(x)`.
pub fn duckdb_blob(expr: &mut Expr) {
    let is_blob = |t: &SqlType| {
        matches!(t, SqlType::Blob(_) | SqlType::Bytea | SqlType::Varbinary(_))
            || matches!(t, SqlType::Custom(name, _) if name.to_string().eq_ignore_ascii_case("blob"))
    };
    match expr {
        Expr::Cast {
            expr: inner,
            data_type,
            ..
        } if is_blob(data_type) => {
            let operand = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
            *expr = call("lakeq_to_blob", vec![operand]);
        }
        Expr::TypedString(ts) if is_blob(&ts.data_type) => {
            let value = Expr::Value(ts.value.clone());
            *expr = call("lakeq_to_blob", vec![value]);
        }
        _ => {}
    }
}

/// `CAST(x AS UUID)` and `UUID '...'` → `lakeq_to_uuid(x)`.
pub fn duckdb_uuid(expr: &mut Expr) {
    match expr {
        Expr::Cast {
            expr: inner,
            data_type: SqlType::Uuid,
            ..
        } => {
            let operand = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
            *expr = call("lakeq_to_uuid", vec![operand]);
        }
        Expr::TypedString(ts) if ts.data_type == SqlType::Uuid => {
            let value = Expr::Value(ts.value.clone());
            *expr = call("lakeq_to_uuid", vec![value]);
        }
        _ => {}
    }
}

/// DuckDB's unsigned type names (`UTINYINT` .. `UBIGINT`, `UINT8` ..) as the
/// `... UNSIGNED` forms DataFusion knows, inside lists and structs too. Used for
/// column definitions; casts also get [`duckdb_type_names`].
pub fn normalize_column_type(t: &mut SqlType) {
    use datafusion::sql::sqlparser::ast::{ArrayElemTypeDef, ExactNumberInfo, StructField};
    match t {
        SqlType::UTinyInt | SqlType::UInt8 => *t = SqlType::TinyIntUnsigned(None),
        SqlType::USmallInt | SqlType::UInt16 => *t = SqlType::SmallIntUnsigned(None),
        SqlType::UInt32 => *t = SqlType::IntUnsigned(None),
        SqlType::UBigInt | SqlType::UInt64 => *t = SqlType::BigIntUnsigned(None),
        // DuckDB's BLOB (and its alias BYTEA): DataFusion knows BYTEA.
        SqlType::Blob(_) | SqlType::Varbinary(_) | SqlType::Binary(_) => *t = SqlType::Bytea,
        SqlType::Custom(name, modifiers)
            if modifiers.is_empty() && name.to_string().eq_ignore_ascii_case("uinteger") =>
        {
            *t = SqlType::IntUnsigned(None);
        }
        SqlType::Array(
            ArrayElemTypeDef::AngleBracket(inner)
            | ArrayElemTypeDef::SquareBracket(inner, _)
            | ArrayElemTypeDef::Parenthesis(inner),
        ) => normalize_column_type(inner),
        SqlType::Struct(fields, _) => {
            for StructField { field_type, .. } in fields {
                normalize_column_type(field_type);
            }
        }
        SqlType::Map(k, v) => {
            normalize_column_type(k);
            normalize_column_type(v);
        }
        // DuckDB's DECIMAL without a width is DECIMAL(18,3) (DataFusion's would be (38,10)).
        SqlType::Decimal(ExactNumberInfo::None)
        | SqlType::Numeric(ExactNumberInfo::None)
        | SqlType::Dec(ExactNumberInfo::None) => {
            *t = SqlType::Decimal(ExactNumberInfo::PrecisionAndScale(18, 3));
        }
        _ => {}
    }
}

/// Type names in casts: DuckDB's unsigned names (see [`normalize_column_type`]),
/// `HUGEINT` as `DECIMAL(38,0)` (how lakeq reads DuckDB's HUGEINT columns) and
/// `TIMESTAMP` as microseconds.
pub fn duckdb_type_names(expr: &mut Expr) {
    let data_type = match expr {
        Expr::Cast { data_type, .. } => data_type,
        Expr::TypedString(ts) => &mut ts.data_type,
        _ => return,
    };
    // DuckDB's TIMESTAMP (and TIMESTAMPTZ) holds microseconds; DataFusion's
    // unqualified TIMESTAMP would be nanoseconds.
    if let SqlType::Timestamp(precision @ None, _) = data_type {
        *precision = Some(6);
        return;
    }
    if matches!(data_type, SqlType::HugeInt | SqlType::Int128) {
        *data_type = SqlType::Decimal(
            datafusion::sql::sqlparser::ast::ExactNumberInfo::PrecisionAndScale(38, 0),
        );
        return;
    }
    normalize_column_type(data_type);
}

/// `CAST(x AS VARCHAR)` → `lakeq_to_varchar(x)`.
pub fn duckdb_varchar_cast(expr: &mut Expr) {
    if let Expr::Cast {
        kind: CastKind::Cast | CastKind::DoubleColon,
        expr: inner,
        data_type:
            SqlType::Varchar(_) | SqlType::Text | SqlType::String(_) | SqlType::CharacterVarying(_),
        ..
    } = expr
    {
        let operand = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
        *expr = call(TO_VARCHAR, vec![operand]);
    }
}

/// Is `t` an integer type (a cast to it rounds in DuckDB)?
pub fn is_integer_type(t: &SqlType) -> bool {
    matches!(
        t,
        SqlType::TinyInt(_)
            | SqlType::SmallInt(_)
            | SqlType::Int(_)
            | SqlType::Integer(_)
            | SqlType::BigInt(_)
            | SqlType::Int2(_)
            | SqlType::Int4(_)
            | SqlType::Int8(_)
            | SqlType::Int16
            | SqlType::Int32
            | SqlType::Int64
            | SqlType::Int128
            | SqlType::UInt8
            | SqlType::UInt16
            | SqlType::UInt32
            | SqlType::UInt64
            | SqlType::TinyIntUnsigned(_)
            | SqlType::SmallIntUnsigned(_)
            | SqlType::IntUnsigned(_)
            | SqlType::IntegerUnsigned(_)
            | SqlType::BigIntUnsigned(_)
            | SqlType::HugeInt
            | SqlType::UHugeInt
            | SqlType::UTinyInt
            | SqlType::USmallInt
            | SqlType::UBigInt
    )
}

/// `CAST(x AS <integer>)` → `CAST(lakeq_round_for_cast(x) AS <integer>)`.
pub fn round_before_integer_cast(expr: &mut Expr) {
    if let Expr::Cast {
        expr: inner,
        data_type,
        ..
    } = expr
        && is_integer_type(data_type)
        && !matches!(inner.as_ref(), Expr::Function(f) if f.name.to_string() == ROUND_FOR_CAST)
    {
        let operand = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
        **inner = call(ROUND_FOR_CAST, vec![operand]);
    }
}

/// `lakeq_interval(n, 'unit')`: DuckDB's `INTERVAL (n) unit` for a computed
/// integer `n` (DataFusion takes only literal interval quantities).
#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalOf {
    signature: Signature,
}

/// The name of [`IntervalOf`] in SQL.
const INTERVAL_OF: &str = "lakeq_interval";

impl ScalarUDFImpl for IntervalOf {
    fn name(&self) -> &str {
        INTERVAL_OF
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Interval(
            datafusion::arrow::datatypes::IntervalUnit::MonthDayNano,
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        use datafusion::arrow::array::IntervalMonthDayNanoArray;
        use datafusion::arrow::datatypes::IntervalMonthDayNano;
        let err = |m: String| datafusion::error::DataFusionError::Execution(m);
        let [n, unit]: [ColumnarValue; 2] = args
            .args
            .try_into()
            .map_err(|_| err("INTERVAL (n) unit takes a quantity and a unit".into()))?;
        let ColumnarValue::Scalar(ScalarValue::Utf8(Some(unit))) = unit else {
            return Err(err("INTERVAL (n) unit: the unit must be a literal".into()));
        };
        let unit = unit.to_ascii_lowercase();
        let (months, days, nanos): (i64, i64, i64) = match unit.trim_end_matches('s') {
            "year" => (12, 0, 0),
            "month" => (1, 0, 0),
            "week" => (0, 7, 0),
            "day" => (0, 1, 0),
            "hour" => (0, 0, 3_600_000_000_000),
            "minute" => (0, 0, 60_000_000_000),
            "second" => (0, 0, 1_000_000_000),
            "millisecond" => (0, 0, 1_000_000),
            "microsecond" => (0, 0, 1_000),
            other => return Err(err(format!("INTERVAL (n) {other}: unknown unit"))),
        };
        let scalar = matches!(n, ColumnarValue::Scalar(_));
        let values = n.to_array(if scalar { 1 } else { args.number_rows })?;
        if !values.data_type().is_integer() && !values.data_type().is_null() {
            return Err(err(format!(
                "INTERVAL (n) {unit} needs an integer n, not {}",
                values.data_type()
            )));
        }
        let values = datafusion::arrow::compute::cast(&values, &DataType::Int64)?;
        let values = values.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let overflow = || err(format!("INTERVAL (n) {unit} is out of range"));
        let out = values
            .iter()
            .map(|v| {
                v.map(|n| {
                    Ok(IntervalMonthDayNano::new(
                        i32::try_from(n.checked_mul(months).ok_or_else(overflow)?)
                            .map_err(|_| overflow())?,
                        i32::try_from(n.checked_mul(days).ok_or_else(overflow)?)
                            .map_err(|_| overflow())?,
                        n.checked_mul(nanos).ok_or_else(overflow)?,
                    ))
                })
                .transpose()
            })
            .collect::<DFResult<IntervalMonthDayNanoArray>>()?;
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(Arc::new(out))
        })
    }
}

/// DuckDB's `INTERVAL (expr) unit` with a computed quantity as `lakeq_interval`.
pub fn duckdb_interval_expression(expr: &mut Expr) {
    let Expr::Interval(interval) = expr else {
        return;
    };
    if matches!(interval.value.as_ref(), Expr::Value(_))
        || interval.last_field.is_some()
        || matches!(interval.value.as_ref(), Expr::UnaryOp { expr, .. } if matches!(expr.as_ref(), Expr::Value(_)))
    {
        return;
    }
    let Some(unit) = &interval.leading_field else {
        return;
    };
    let unit = unit.to_string();
    let value = match interval.value.as_ref() {
        Expr::Nested(inner) => inner.as_ref().clone(),
        other => other.clone(),
    };
    *expr = call(
        INTERVAL_OF,
        vec![
            value,
            Expr::value(datafusion::sql::sqlparser::ast::Value::SingleQuotedString(
                unit,
            )),
        ],
    );
}

/// Register the functions lakeq implements itself.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(IntervalOf {
        signature: Signature::any(2, Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::from(ToBlob {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::from(ToUuid {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::from(UuidVersion {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::from(ToVarchar {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::from(Printf {
        signature: Signature::variadic_any(Volatility::Immutable),
    }));
    for name in ["range", "generate_series"] {
        if let Some(f) = ctx.state().table_functions().get(name) {
            ctx.register_udtf(&format!("__lakeq_{name}"), Arc::clone(f.function()));
        }
    }
    ctx.register_udf(ScalarUDF::from(RoundForCast {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::from(AverageOf {
        signature: Signature::any(2, Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::from(TypeOf {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::from(DuckDbTypeName {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    // DuckDB refuses arguments outside a function's domain where DataFusion
    // returns -inf or NaN: a different answer without an error otherwise.
    let state = ctx.state();
    for (name, domain) in [
        ("ln", Domain::Logarithm),
        ("log", Domain::Logarithm),
        ("log10", Domain::Logarithm),
        ("log2", Domain::Logarithm),
        ("acos", Domain::UnitInterval),
        ("asin", Domain::UnitInterval),
        ("cot", Domain::NonZero),
    ] {
        if let Some(inner) = state.scalar_functions().get(name) {
            ctx.register_udf(ScalarUDF::from(DomainChecked {
                inner: Arc::clone(inner),
                domain,
            }));
        }
    }
}

/// The inputs a math function accepts in DuckDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Domain {
    /// Positive numbers (`ln`, `log10`, `log2`, `log`).
    Logarithm,
    /// `[-1, 1]` (`acos`, `asin`).
    UnitInterval,
    /// Anything but zero (`cot`).
    NonZero,
}

impl Domain {
    /// DuckDB's error for `x`, if it is outside the domain (NaN passes).
    fn error(self, function: &str, x: f64) -> Option<String> {
        match self {
            Domain::Logarithm if x == 0.0 => Some("cannot take logarithm of zero".into()),
            Domain::Logarithm if x < 0.0 => {
                Some("cannot take logarithm of a negative number".into())
            }
            Domain::UnitInterval if x.abs() > 1.0 => Some(format!(
                "{} is undefined outside [-1,1]",
                function.to_ascii_uppercase()
            )),
            Domain::NonZero if x == 0.0 => Some(format!(
                "input value {x:.6} is out of range for numeric function {function}"
            )),
            _ => None,
        }
    }
}

/// A DataFusion math function whose (last) argument is checked against DuckDB's
/// domain first: `ln(0)` is an error, as in DuckDB, not `-inf`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DomainChecked {
    inner: Arc<ScalarUDF>,
    domain: Domain,
}

impl ScalarUDFImpl for DomainChecked {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        self.inner.return_type(arg_types)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DFResult<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        // `log(b, x)` checks `x`, the value taken the logarithm of.
        if let Some(x) = args.args.last() {
            let values = x.to_array(args.number_rows)?;
            if let Ok(values) = datafusion::arrow::compute::cast(&values, &DataType::Float64) {
                let values = values.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
                for v in values.iter().flatten() {
                    if let Some(e) = self.domain.error(self.name(), v) {
                        return datafusion::common::exec_err!("{e}");
                    }
                }
            }
        }
        self.inner.invoke_with_args(args)
    }
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

fn string(s: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(s.to_string()))
}

fn cast(expr: Expr, data_type: SqlType) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(expr),
        data_type,
        array: false,
        format: None,
    }
}

/// The plain positional arguments of a call (`None` if any is named, `*`, ...).
fn plain_args(f: &Function) -> Option<Vec<Expr>> {
    let FunctionArguments::List(list) = &f.args else {
        return (matches!(f.args, FunctionArguments::None)).then(Vec::new);
    };
    if !list.clauses.is_empty() || list.duplicate_treatment.is_some() {
        return None;
    }
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// DuckDB date-part functions and the `date_part` field each reads.
const DATE_PARTS: &[(&str, &str)] = &[
    ("year", "year"),
    ("month", "month"),
    ("day", "day"),
    ("dayofmonth", "day"),
    ("hour", "hour"),
    ("minute", "minute"),
    ("second", "second"),
    ("millisecond", "millisecond"),
    ("microsecond", "microsecond"),
    ("quarter", "quarter"),
    ("week", "week"),
    ("weekofyear", "week"),
    ("dayofweek", "dow"),
    ("dayofyear", "doy"),
];

/// DuckDB aggregate names DataFusion spells differently: the call keeps its
/// arguments, `ORDER BY`, `FILTER` and window.
const AGGREGATE_ALIASES: &[(&str, &str)] = &[("list", "array_agg"), ("array_agg", "array_agg")];

/// The name of `AverageOf` in SQL.
pub const AVERAGE_OF: &str = "lakeq_average_of";

/// DuckDB's `avg(x)` / `mean(x)` (also as a window function: both parts get its
/// `OVER`) as `lakeq_average_of(sum(x), count(x))`: a DOUBLE for every numeric `x`, as in DuckDB.
/// DataFusion's `avg` of a DECIMAL is a DECIMAL with 4 more digits, cut
/// (`25.522005` where DuckDB says `25.522005853257337`).
pub fn duckdb_average(expr: &mut Expr) {
    let Expr::Function(f) = expr else {
        return;
    };
    let [ObjectNamePart::Identifier(ident)] = f.name.0.as_slice() else {
        return;
    };
    if ident.quote_style.is_some()
        || !(ident.value.eq_ignore_ascii_case("avg") || ident.value.eq_ignore_ascii_case("mean"))
        || !f.within_group.is_empty()
    {
        return;
    }
    let FunctionArguments::List(list) = &f.args else {
        return;
    };
    if list.args.len() != 1 {
        return;
    }
    let with_name = |name: &str| {
        let mut g = f.clone();
        g.name = ObjectName::from(vec![Ident::new(name)]);
        Expr::Function(g)
    };
    let (sum, count) = (with_name("sum"), with_name("count"));
    *expr = call(AVERAGE_OF, vec![sum, count]);
}

/// `lakeq_average_of(sum, count)`: `sum / count` as a DOUBLE, for a DECIMAL sum
/// from its unscaled value (`unscaled / (count · 10^scale)`, one rounding, as
/// DuckDB divides); NULL for no rows. Invisible in column names.
#[derive(Debug, PartialEq, Eq, Hash)]
struct AverageOf {
    signature: Signature,
}

impl ScalarUDFImpl for AverageOf {
    fn name(&self) -> &str {
        AVERAGE_OF
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Float64)
    }

    fn schema_name(&self, args: &[datafusion::logical_expr::Expr]) -> DFResult<String> {
        let inner = args
            .first()
            .map(|a| a.schema_name().to_string())
            .unwrap_or_default();
        Ok(inner
            .strip_prefix("sum(")
            .map_or(inner.clone(), |rest| format!("avg({rest}")))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        use datafusion::arrow::array::Float64Array;
        use datafusion::arrow::datatypes::{Decimal128Type, Int64Type};
        let rows = args.number_rows;
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let [sum, count] = args.args.as_slice() else {
            return datafusion::common::plan_err!("avg: lakeq_average_of takes (sum, count)");
        };
        let (sum, count) = (sum.to_array(rows)?, count.to_array(rows)?);
        let count = datafusion::arrow::compute::cast(&count, &DataType::Int64)?;
        let count = count.as_primitive::<Int64Type>();
        let divide = |i: usize, value: Option<f64>, scale: f64| -> Option<f64> {
            let n = count.is_valid(i).then(|| count.value(i))?;
            (n > 0).then_some(())?;
            #[allow(clippy::cast_precision_loss)]
            let n = n as f64;
            Some(value? / (n * scale))
        };
        let out: Float64Array = match sum.data_type() {
            DataType::Decimal128(_, s) => {
                let scale = 10f64.powi(i32::from(*s));
                let sum = sum.as_primitive::<Decimal128Type>();
                (0..rows)
                    .map(|i| {
                        #[allow(clippy::cast_precision_loss)]
                        let v = sum.is_valid(i).then(|| sum.value(i) as f64);
                        divide(i, v, scale)
                    })
                    .collect()
            }
            DataType::Null => (0..rows).map(|_| None).collect(),
            dt if dt.is_numeric() => {
                let sum = datafusion::arrow::compute::cast(&sum, &DataType::Float64)?;
                let sum = sum.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
                (0..rows)
                    .map(|i| divide(i, sum.is_valid(i).then(|| sum.value(i)), 1.0))
                    .collect()
            }
            other => {
                return datafusion::common::plan_err!(
                    "avg of {other} is not supported by lakeq (DuckDB averages numbers, \
                     intervals and timestamps)"
                );
            }
        };
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(Arc::new(out))
        })
    }
}

/// Rename a DuckDB aggregate to DataFusion's name, in place.
pub fn rename_aggregate(f: &mut Function) {
    if let [ObjectNamePart::Identifier(ident)] = f.name.0.as_mut_slice()
        && ident.quote_style.is_none()
        && let Some((_, to)) = AGGREGATE_ALIASES
            .iter()
            .find(|(from, _)| ident.value.eq_ignore_ascii_case(from))
    {
        ident.value = (*to).to_string();
    }
}

/// The DataFusion expression for a DuckDB function call DataFusion spells
/// differently; `None` when the call needs no rewrite. `current_catalog` and
/// `current_schema` answer `current_database()` / `current_schema()`.
pub fn rewrite_call(f: &Function, current_catalog: &str, current_schema: &str) -> Option<Expr> {
    if f.over.is_some() || f.filter.is_some() {
        return None;
    }
    let [name] = f.name.0.as_slice() else {
        return None;
    };
    let name = name.as_ident()?.value.to_ascii_lowercase();
    let args = plain_args(f)?;
    let bigint = SqlType::BigInt(None);
    if let Some((_, part)) = DATE_PARTS.iter().find(|(n, _)| *n == name) {
        let [arg] = args.as_slice() else { return None };
        return Some(cast(
            call("date_part", vec![string(part), arg.clone()]),
            bigint,
        ));
    }
    Some(match (name.as_str(), args.as_slice()) {
        ("isodow", [arg]) => {
            // DuckDB: Monday = 1 ... Sunday = 7.
            let dow = cast(call("date_part", vec![string("dow"), arg.clone()]), bigint);
            Expr::Nested(Box::new(Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(Expr::BinaryOp {
                    left: Box::new(Expr::Nested(Box::new(Expr::BinaryOp {
                        left: Box::new(dow),
                        op: datafusion::sql::sqlparser::ast::BinaryOperator::Plus,
                        right: Box::new(Expr::value(Value::Number("6".into(), false))),
                    }))),
                    op: datafusion::sql::sqlparser::ast::BinaryOperator::Modulo,
                    right: Box::new(Expr::value(Value::Number("7".into(), false))),
                }))),
                op: datafusion::sql::sqlparser::ast::BinaryOperator::Plus,
                right: Box::new(Expr::value(Value::Number("1".into(), false))),
            }))
        }
        ("epoch", [arg]) => call("date_part", vec![string("epoch"), arg.clone()]),
        ("strlen", [arg]) => call("octet_length", vec![arg.clone()]),
        ("list_value" | "list_pack", _) => call("make_array", args.clone()),
        // DuckDB splits at every character when the separator is empty
        // (DataFusion, as PostgreSQL, returns the whole string); `''` gives `['']`.
        ("string_split" | "str_split" | "string_to_array", [s, Expr::Value(v)]) if matches!(&v.value, Value::SingleQuotedString(e) if e.is_empty()) => {
            Expr::Case {
                case_token:
                    datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                end_token:
                    datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                operand: None,
                conditions: vec![datafusion::sql::sqlparser::ast::CaseWhen {
                    condition: Expr::BinaryOp {
                        left: Box::new(s.clone()),
                        op: datafusion::sql::sqlparser::ast::BinaryOperator::Eq,
                        right: Box::new(string("")),
                    },
                    result: call("make_array", vec![string("")]),
                }],
                else_result: Some(Box::new(call(
                    "string_to_array",
                    vec![s.clone(), Expr::value(Value::Null)],
                ))),
            }
        }
        ("string_split" | "str_split" | "string_to_array", [s, sep]) => {
            call("string_to_array", vec![s.clone(), sep.clone()])
        }
        // DuckDB's names of `array_transform` (DuckDB stores `list_apply` in view
        // and macro SQL for `[f(x) FOR x IN l]`).
        ("list_apply" | "array_apply" | "apply", [list, lambda]) => {
            call("array_transform", vec![list.clone(), lambda.clone()])
        }
        ("strftime", [ts, fmt]) => call("to_char", vec![ts.clone(), fmt.clone()]),
        ("regexp_extract", [s, pattern]) => regexp_extract(s, pattern, 0),
        ("regexp_extract", [s, pattern, Expr::Value(v)]) => {
            let Value::Number(n, _) = &v.value else {
                return None;
            };
            regexp_extract(s, pattern, n.parse().ok()?)
        }
        ("current_database" | "current_catalog", []) => string(current_catalog),
        ("current_schema", []) => string(current_schema),
        _ => return None,
    })
}

/// DuckDB's `regexp_extract(s, pattern, group)`: the group's text, `''` without a match.
fn regexp_extract(s: &Expr, pattern: &Expr, group: usize) -> Expr {
    // The pattern in a group of its own: group 0 (the whole match) is group 1 then.
    let wrapped = call("concat", vec![string("("), pattern.clone(), string(")")]);
    let matched = call("regexp_match", vec![s.clone(), wrapped]);
    let item = call(
        "array_element",
        vec![
            matched,
            Expr::value(Value::Number((group + 1).to_string(), false)),
        ],
    );
    call("coalesce", vec![item, string("")])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::parser::parse_statements;

    fn rewrite(sql: &str) -> Option<String> {
        let mut stmts = parse_statements(&format!("SELECT {sql}")).ok()?;
        let datafusion::sql::parser::Statement::Statement(s) = stmts.pop_front()? else {
            return None;
        };
        let datafusion::sql::sqlparser::ast::Statement::Query(q) = *s else {
            return None;
        };
        let datafusion::sql::sqlparser::ast::SetExpr::Select(select) = *q.body else {
            return None;
        };
        let datafusion::sql::sqlparser::ast::SelectItem::UnnamedExpr(Expr::Function(f)) =
            select.projection.first()?.clone()
        else {
            return None;
        };
        rewrite_call(&f, "lake", "main").map(|e| e.to_string())
    }

    #[test]
    fn rewrites_duckdb_functions() {
        assert_eq!(
            rewrite("year(ts)").as_deref(),
            Some("CAST(date_part('year', ts) AS BIGINT)")
        );
        assert_eq!(
            rewrite("list_value(1, 2)").as_deref(),
            Some("make_array(1, 2)")
        );
        assert_eq!(rewrite("current_database()").as_deref(), Some("'lake'"));
        assert_eq!(rewrite("unknown_fn(1)"), None);
        assert_eq!(arrow_text_to_duckdb("Int32"), "INTEGER");
        assert_eq!(
            printf_format(
                "%06d|%-4s|%.2f|%x|%%|%5d",
                &[
                    PrintfArg::Int(42),
                    PrintfArg::Text("ab".into()),
                    PrintfArg::Float(3.14259),
                    PrintfArg::Int(255),
                    PrintfArg::Int(-7),
                ]
            )
            .as_deref(),
            Ok("000042|ab  |3.14|ff|%|   -7")
        );
        assert_eq!(
            arrow_text_to_duckdb("Timestamp(µs, \"UTC\")"),
            "TIMESTAMP WITH TIME ZONE"
        );
    }
}
