//! UUIDs and blobs (DuckDB's `\x..` escapes).

use super::*;

pub(super) fn parse_uuid(text: &str) -> Res<Vec<u8>> {
    uuid::Uuid::parse_str(text.trim())
        .map(|u| u.as_bytes().to_vec())
        .map_err(|e| format!("not a UUID: {e}"))
}

/// DuckDB's blob text: printable ASCII as itself, any byte as `\xHH`.
pub(super) fn parse_blob(text: &str) -> Res<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => {
                let hex = match bytes.get(i + 1..i + 4) {
                    Some([b'x', high, low]) => hex_value(*high).zip(hex_value(*low)),
                    _ => None,
                };
                let (high, low) =
                    hex.ok_or_else(|| format!("invalid escape at byte {i} (expected \\xHH)"))?;
                out.push((high << 4) | low);
                i += 4;
            }
            b if b.is_ascii() => {
                out.push(b);
                i += 1;
            }
            _ => return Err("non-ASCII characters must be escaped as \\xHH".to_string()),
        }
    }
    Ok(out)
}

/// The value of one hexadecimal digit.
pub(super) fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

/// DuckDB's blob escape: printable ASCII except `\`, `'` and `"` as itself.
pub(super) fn format_blob(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..=0x7E).contains(&b) && !matches!(b, b'\\' | b'\'' | b'"') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

pub(super) fn format_uuid(bytes: &[u8]) -> Result<String, Error> {
    uuid::Uuid::from_slice(bytes)
        .map(|u| u.hyphenated().to_string())
        .map_err(|e| Error::Corrupt(format!("invalid UUID bytes: {e}")))
}
