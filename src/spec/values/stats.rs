//! Statistics text: min/max strings as DuckDB and other writers leave them.

use super::*;

/// Parse a min/max statistics string; None when it cannot be interpreted (an unknown bound, never an error).
///
/// Tolerates the mixed encodings of SPEC §6: booleans as `0`/`1` or
/// `false`/`true`; blobs as Parquet hex (`6230`, ambiguous, so `None`) or DuckDB
/// escapes (`\x00ab`); `nan` floats and containers give `None`.
pub fn parse_stat(text: &str, data_type: &DataType) -> Option<ScalarValue> {
    match data_type {
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::FixedSizeList(_, _)
        | DataType::Struct(_)
        | DataType::Map(_, _) => None,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let value = parse_value(text, data_type).ok()?;
            let is_nan = match &value {
                ScalarValue::Float32(Some(v)) => v.is_nan(),
                ScalarValue::Float64(Some(v)) => v.is_nan(),
                _ => true,
            };
            (!is_nan).then_some(value)
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            if looks_like_parquet_hex(text) {
                None
            } else {
                parse_value(text, data_type).ok()
            }
        }
        _ => parse_value(text, data_type).ok(),
    }
}

/// Whether a blob statistic may be the plain hex DuckDB writes for Parquet
/// files, i.e. cannot be told apart from an escape-encoded blob of hex digits.
pub(super) fn looks_like_parquet_hex(text: &str) -> bool {
    !text.is_empty() && text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit())
}
