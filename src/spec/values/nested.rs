//! Lists, structs and maps: DuckDB's `[...]`, `{'k': v}` and `{k=v}` forms.

use super::*;

// ---------------------------------------------------------------------------
// Parsing: nested values
// ---------------------------------------------------------------------------

/// One scalar element of a nested literal.
struct Token<'a> {
    /// The value with quotes removed and escapes resolved.
    text: String,
    /// Whether any part was quoted (`'NULL'` is a string, `NULL` is null).
    quoted: bool,
    /// The element as written.
    raw: &'a str,
}

/// A recursive-descent parser for DuckDB's nested literals (`[…]`, `{'k': v}`,
/// `{k=v}`, `(v, …)`), driven by the target type.
pub(super) struct NestedParser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

pub(super) fn is_container(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::List(_) | DataType::Struct(_) | DataType::Map(_, _)
    )
}

impl<'a> NestedParser<'a> {
    pub(super) fn parse_top(text: &'a str, data_type: &DataType) -> Res<ScalarValue> {
        let mut parser = NestedParser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        };
        parser.skip_space();
        let value = parser.parse_container(data_type)?;
        parser.skip_space();
        if let Some(rest) = parser.bytes.get(parser.pos..).filter(|r| !r.is_empty()) {
            return Err(format!(
                "unexpected '{}' after the value",
                excerpt(&String::from_utf8_lossy(rest))
            ));
        }
        Ok(value)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    fn unexpected(&self, expected: &str) -> String {
        match self
            .text
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
        {
            Some(c) => format!("expected {expected} at byte {}, found '{c}'", self.pos),
            None => format!("expected {expected}, found the end of the text"),
        }
    }

    /// Consumes a separator: `Ok(true)` for `,`, `Ok(false)` for `close`.
    fn separator(&mut self, close: u8) -> Res<bool> {
        self.skip_space();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(self.unexpected(&format!("',' or '{}'", close as char))),
        }
    }

    /// Consumes `close` if it is next (an empty container).
    fn empty(&mut self, close: u8) -> bool {
        self.skip_space();
        if self.peek() == Some(close) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn parse_container(&mut self, data_type: &DataType) -> Res<ScalarValue> {
        match data_type {
            DataType::List(field) => self.parse_list(field),
            DataType::Struct(fields) => self.parse_struct(fields),
            DataType::Map(field, sorted) => self.parse_map(field, *sorted),
            other => Err(format!("{other} is not a container type")),
        }
    }

    fn parse_list(&mut self, field: &FieldRef) -> Res<ScalarValue> {
        if self.bump() != Some(b'[') {
            return Err("a list must start with '['".to_string());
        }
        let mut items = Vec::new();
        if !self.empty(b']') {
            loop {
                items.push(self.parse_element(field.data_type(), b",]")?);
                if !self.separator(b']')? {
                    break;
                }
            }
        }
        build_list(field, items)
    }

    fn parse_struct(&mut self, fields: &Fields) -> Res<ScalarValue> {
        let close = match self.bump() {
            Some(b'{') => b'}',
            Some(b'(') => b')',
            _ => return Err("a struct must start with '{' or '('".to_string()),
        };
        let positional = close == b')';
        let mut values: Vec<Option<ScalarValue>> = vec![None; fields.len()];
        let mut next_position = 0;
        if !self.empty(close) {
            loop {
                let index = if positional {
                    next_position += 1;
                    next_position - 1
                } else {
                    self.parse_struct_key(fields)?
                };
                let (field, slot) = fields
                    .get(index)
                    .zip(values.get_mut(index))
                    .ok_or_else(|| format!("more than {} struct fields", fields.len()))?;
                let value = self.parse_element(field.data_type(), &[b',', close])?;
                if slot.replace(value).is_some() {
                    return Err(format!("struct field '{}' given twice", field.name()));
                }
                if !self.separator(close)? {
                    break;
                }
            }
        }
        let values = fields
            .iter()
            .zip(values)
            .map(|(field, value)| match value {
                Some(value) => Ok(value),
                None => null_of(field.data_type()),
            })
            .collect::<Res<Vec<_>>>()?;
        build_struct(fields, values)
    }

    /// `'key':` → the index of the field it names.
    fn parse_struct_key(&mut self, fields: &Fields) -> Res<usize> {
        let key = self.read_token(b":,}")?;
        if self.bump() != Some(b':') {
            return Err(format!("expected ':' after struct key '{}'", key.text));
        }
        let by_name = |exact: bool| {
            fields.iter().position(|f| {
                if exact {
                    f.name() == &key.text
                } else {
                    f.name().eq_ignore_ascii_case(&key.text)
                }
            })
        };
        by_name(true)
            .or_else(|| by_name(false))
            .ok_or_else(|| format!("unknown struct field '{}'", key.text))
    }

    fn parse_map(&mut self, field: &FieldRef, sorted: bool) -> Res<ScalarValue> {
        let (_, key_field, value_field) = map_entries(field)?;
        let (key_type, value_type) = (key_field.data_type(), value_field.data_type());
        if self.bump() != Some(b'{') {
            return Err("a map must start with '{'".to_string());
        }
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        if !self.empty(b'}') {
            loop {
                let key = self.parse_element(key_type, b"=,}")?;
                if key.is_null() {
                    return Err("a map key is NULL".to_string());
                }
                self.skip_space();
                if self.bump() != Some(b'=') {
                    return Err("expected '=' after a map key".to_string());
                }
                keys.push(key);
                values.push(self.parse_element(value_type, b",}")?);
                if !self.separator(b'}')? {
                    break;
                }
            }
        }
        build_map(field, sorted, keys, values)
    }

    /// One element of `data_type`, ending before one of `stops` (at depth 0).
    fn parse_element(&mut self, data_type: &DataType, stops: &[u8]) -> Res<ScalarValue> {
        self.skip_space();
        if is_container(data_type) && matches!(self.peek(), Some(b'[' | b'{' | b'(')) {
            return self.parse_container(data_type);
        }
        let token = self.read_token(stops)?;
        if !token.quoted && token.text.eq_ignore_ascii_case("null") {
            return null_of(data_type);
        }
        let text = unwrap_sql_cast(token.raw).unwrap_or(token.text);
        parse_value(&text, data_type)
            .map_err(|e| format!("element '{}' as {data_type}: {e}", excerpt(&text)))
    }

    /// A scalar element: quoted parts are unescaped, unquoted surrounding space is
    /// trimmed, brackets nest (`a[b]c` is one element).
    fn read_token(&mut self, stops: &[u8]) -> Res<Token<'a>> {
        self.skip_space();
        let start = self.pos;
        let mut out = Vec::new();
        let mut quoted = false;
        let mut depth = 0usize;
        let mut significant = 0;
        while let Some(b) = self.peek() {
            if depth == 0 && stops.contains(&b) {
                break;
            }
            match b {
                b'\'' | b'"' => {
                    self.pos += 1;
                    self.read_quoted(b, &mut out)?;
                    quoted = true;
                    significant = out.len();
                    continue;
                }
                b'[' | b'{' | b'(' => depth += 1,
                b']' | b'}' | b')' if depth == 0 => break,
                b']' | b'}' | b')' => depth -= 1,
                _ => {}
            }
            out.push(b);
            self.pos += 1;
            if !is_space(b) {
                significant = out.len();
            }
        }
        out.truncate(significant);
        let text = String::from_utf8(out).map_err(|_| "invalid UTF-8 in element".to_string())?;
        Ok(Token {
            text,
            quoted,
            raw: self
                .text
                .get(start..self.pos)
                .ok_or_else(|| format!("element cut inside a character at byte {}", self.pos))?
                .trim_end_matches(|c: char| c.is_ascii_whitespace()),
        })
    }

    /// The rest of a string quoted with `quote`: `\'`, `\"` and `\\` are escapes
    /// (DuckDB's writer), a doubled quote is one quote (SQL literals), any other
    /// backslash is kept.
    fn read_quoted(&mut self, quote: u8, out: &mut Vec<u8>) -> Res<()> {
        loop {
            match self.bump() {
                None => return Err("unterminated quoted string".to_string()),
                Some(b) if b == quote => {
                    if self.peek() != Some(quote) {
                        return Ok(());
                    }
                    out.push(quote);
                    self.pos += 1;
                }
                Some(b'\\') => match self.peek() {
                    Some(c @ (b'\'' | b'"' | b'\\')) => {
                        out.push(c);
                        self.pos += 1;
                    }
                    _ => out.push(b'\\'),
                },
                Some(b) => out.push(b),
            }
        }
    }
}

/// The string inside `CAST('…' AS TYPE)` (how DuckDB 1.5.5 writes some values
/// inside a top-level struct), with SQL `''` escapes resolved.
pub(super) fn unwrap_sql_cast(raw: &str) -> Option<String> {
    let (head, rest) = raw.split_at_checked(5)?;
    if !head.eq_ignore_ascii_case("cast(") || !raw.ends_with(')') {
        return None;
    }
    let literal = rest.trim_start().strip_prefix('\'')?;
    let mut value = String::new();
    let mut chars = literal.chars();
    loop {
        let c = chars.next()?;
        if c != '\'' {
            value.push(c);
        } else if chars.as_str().starts_with('\'') {
            value.push('\'');
            chars.next();
        } else {
            break;
        }
    }
    let tail = chars.as_str().trim_start();
    let is_as = tail.get(..3).is_some_and(|t| t.eq_ignore_ascii_case("as "));
    is_as.then_some(value)
}

pub(super) fn null_of(data_type: &DataType) -> Res<ScalarValue> {
    ScalarValue::try_new_null(data_type).map_err(|e| e.to_string())
}

pub(super) fn scalars_to_array(items: Vec<ScalarValue>, data_type: &DataType) -> Res<ArrayRef> {
    if items.is_empty() {
        return Ok(new_empty_array(data_type));
    }
    ScalarValue::iter_to_array(items).map_err(|e| e.to_string())
}

pub(super) fn build_list(field: &FieldRef, items: Vec<ScalarValue>) -> Res<ScalarValue> {
    let len = items.len();
    let values = scalars_to_array(items, field.data_type())?;
    let offsets = OffsetBuffer::from_lengths([len]);
    let list =
        ListArray::try_new(Arc::clone(field), offsets, values, None).map_err(|e| e.to_string())?;
    Ok(ScalarValue::List(Arc::new(list)))
}

pub(super) fn build_struct(fields: &Fields, values: Vec<ScalarValue>) -> Res<ScalarValue> {
    if fields.is_empty() {
        return Ok(ScalarValue::Struct(Arc::new(
            StructArray::new_empty_fields(1, None),
        )));
    }
    let columns = values
        .iter()
        .map(ScalarValue::to_array)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let array = StructArray::try_new(fields.clone(), columns, None).map_err(|e| e.to_string())?;
    Ok(ScalarValue::Struct(Arc::new(array)))
}

/// A map's entries struct: its fields, the key field and the value field.
pub(super) fn map_entries(field: &FieldRef) -> Res<(&Fields, &FieldRef, &FieldRef)> {
    if let DataType::Struct(fields) = field.data_type()
        && let [key, value] = &**fields
    {
        return Ok((fields, key, value));
    }
    Err(format!("invalid map entries type {}", field.data_type()))
}

pub(super) fn build_map(
    field: &FieldRef,
    sorted: bool,
    keys: Vec<ScalarValue>,
    values: Vec<ScalarValue>,
) -> Res<ScalarValue> {
    let (entry_fields, key_field, value_field) = map_entries(field)?;
    let len = keys.len();
    let keys = scalars_to_array(keys, key_field.data_type())?;
    let values = scalars_to_array(values, value_field.data_type())?;
    let entries = StructArray::try_new(entry_fields.clone(), vec![keys, values], None)
        .map_err(|e| e.to_string())?;
    let offsets = OffsetBuffer::from_lengths([len]);
    let map = MapArray::try_new(Arc::clone(field), offsets, entries, None, sorted)
        .map_err(|e| e.to_string())?;
    Ok(ScalarValue::Map(Arc::new(map)))
}

/// Whether DuckDB quotes a scalar's text inside a list, struct or map.
pub(super) fn needs_quotes(text: &str) -> bool {
    let bytes = text.as_bytes();
    match (bytes.first(), bytes.last()) {
        (None, _) => true,
        (Some(&first), _) if is_space(first) => true,
        (_, Some(&last)) if bytes.len() >= 2 && is_space(last) => true,
        _ => {
            text.eq_ignore_ascii_case("null")
                || bytes.iter().any(|b| {
                    matches!(
                        b,
                        b'"' | b'\'' | b'(' | b')' | b',' | b':' | b'=' | b'[' | b']' | b'{' | b'}'
                    )
                })
        }
    }
}

/// `'text'` with `'` and `\` backslash-escaped.
pub(super) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// A value inside a container: `NULL`, nested containers as-is, scalars quoted
/// when DuckDB would.
pub(super) fn format_element(value: &ScalarValue) -> Result<String, Error> {
    let nested = matches!(
        value,
        ScalarValue::List(_)
            | ScalarValue::LargeList(_)
            | ScalarValue::FixedSizeList(_)
            | ScalarValue::Struct(_)
            | ScalarValue::Map(_)
    );
    Ok(match format_duckdb_text(value)? {
        None => "NULL".to_string(),
        Some(text) if !nested && needs_quotes(&text) => quote(&text),
        Some(text) => text,
    })
}

/// The scalars of row 0 of a one-row list-like array.
pub(super) fn list_row(array: &dyn Array) -> Result<Vec<ScalarValue>, Error> {
    let child = match array.data_type() {
        DataType::List(_) => array.as_list::<i32>().value(0),
        DataType::LargeList(_) => array.as_list::<i64>().value(0),
        DataType::FixedSizeList(_, _) => array.as_fixed_size_list().value(0),
        other => return Err(Error::Unsupported(format!("rendering {other} as a list"))),
    };
    (0..child.len())
        .map(|i| ScalarValue::try_from_array(&child, i).map_err(Error::from))
        .collect()
}

pub(super) fn check_one_row(array: &dyn Array) -> Result<(), Error> {
    if array.len() == 1 {
        Ok(())
    } else {
        Err(Error::Corrupt(format!(
            "a nested scalar must have one row, found {}",
            array.len()
        )))
    }
}

pub(super) fn format_list(array: &dyn Array) -> Result<String, Error> {
    check_one_row(array)?;
    let items = list_row(array)?
        .iter()
        .map(format_element)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("[{}]", items.join(", ")))
}

pub(super) fn format_struct(array: &StructArray) -> Result<String, Error> {
    check_one_row(array)?;
    let mut parts = Vec::with_capacity(array.num_columns());
    for (field, column) in array.fields().iter().zip(array.columns()) {
        let value = ScalarValue::try_from_array(column, 0)?;
        parts.push(format!(
            "{}: {}",
            quote(field.name()),
            format_element(&value)?
        ));
    }
    Ok(format!("{{{}}}", parts.join(", ")))
}

pub(super) fn format_map(array: &MapArray) -> Result<String, Error> {
    check_one_row(array)?;
    let entries = array.value(0);
    let (keys, values) = (entries.column(0), entries.column(1));
    let mut parts = Vec::with_capacity(entries.len());
    for i in 0..entries.len() {
        let key = format_element(&ScalarValue::try_from_array(keys, i)?)?;
        let value = format_element(&ScalarValue::try_from_array(values, i)?)?;
        parts.push(format!("{key}={value}"));
    }
    Ok(format!("{{{}}}", parts.join(", ")))
}
