//! `ducklake_snapshot_changes.changes_made`: parsing and writing the change list.

use std::fmt;

use super::CatalogId;
use crate::error::Error;

/// One entry of a snapshot's change list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `created_schema:"s"`
    CreatedSchema(String),
    /// `created_table:"s"."t"`
    CreatedTable(String, String),
    /// `created_view:"s"."v"`
    CreatedView(String, String),
    /// `created_scalar_macro:"s"."m"`
    CreatedScalarMacro(String, String),
    /// `created_table_macro:"s"."m"`
    CreatedTableMacro(String, String),
    /// `dropped_schema:<id>`
    DroppedSchema(CatalogId),
    /// `dropped_table:<id>`
    DroppedTable(CatalogId),
    /// `dropped_view:<id>`
    DroppedView(CatalogId),
    /// `dropped_scalar_macro:<id>`
    DroppedScalarMacro(CatalogId),
    /// `dropped_table_macro:<id>`
    DroppedTableMacro(CatalogId),
    /// `inserted_into_table:<id>`
    InsertedIntoTable(CatalogId),
    /// `deleted_from_table:<id>`
    DeletedFromTable(CatalogId),
    /// `altered_table:<id>`
    AlteredTable(CatalogId),
    /// `altered_view:<id>`
    AlteredView(CatalogId),
    /// `inlined_insert:<id>`
    InlinedInsert(CatalogId),
    /// `inlined_delete:<id>`
    InlinedDelete(CatalogId),
    /// `inline_flush:<id>` (also read from `flushed_inlined:<id>`)
    InlineFlush(CatalogId),
    /// `merge_adjacent:<id>`
    MergeAdjacent(CatalogId),
    /// `rewrite_delete:<id>`
    RewriteDelete(CatalogId),
    /// `compacted_table:<id>`
    CompactedTable(CatalogId),
}

/// Quote a name the way DuckDB does in change lists: `"` doubled inside.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Change::*;
        match self {
            CreatedSchema(s) => write!(f, "created_schema:{}", quote(s)),
            CreatedTable(s, t) => write!(f, "created_table:{}.{}", quote(s), quote(t)),
            CreatedView(s, t) => write!(f, "created_view:{}.{}", quote(s), quote(t)),
            CreatedScalarMacro(s, t) => write!(f, "created_scalar_macro:{}.{}", quote(s), quote(t)),
            CreatedTableMacro(s, t) => write!(f, "created_table_macro:{}.{}", quote(s), quote(t)),
            DroppedSchema(id) => write!(f, "dropped_schema:{id}"),
            DroppedTable(id) => write!(f, "dropped_table:{id}"),
            DroppedView(id) => write!(f, "dropped_view:{id}"),
            DroppedScalarMacro(id) => write!(f, "dropped_scalar_macro:{id}"),
            DroppedTableMacro(id) => write!(f, "dropped_table_macro:{id}"),
            InsertedIntoTable(id) => write!(f, "inserted_into_table:{id}"),
            DeletedFromTable(id) => write!(f, "deleted_from_table:{id}"),
            AlteredTable(id) => write!(f, "altered_table:{id}"),
            AlteredView(id) => write!(f, "altered_view:{id}"),
            InlinedInsert(id) => write!(f, "inlined_insert:{id}"),
            InlinedDelete(id) => write!(f, "inlined_delete:{id}"),
            InlineFlush(id) => write!(f, "inline_flush:{id}"),
            MergeAdjacent(id) => write!(f, "merge_adjacent:{id}"),
            RewriteDelete(id) => write!(f, "rewrite_delete:{id}"),
            CompactedTable(id) => write!(f, "compacted_table:{id}"),
        }
    }
}

/// Render a change list as stored in `changes_made` (NULL when empty).
pub fn format_changes(changes: &[Change]) -> Option<String> {
    if changes.is_empty() {
        return None;
    }
    Some(
        changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// Parse a `changes_made` string.
pub fn parse_changes(text: &str) -> Result<Vec<Change>, Error> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (kind, value) = rest
            .split_once(':')
            .ok_or_else(|| Error::Corrupt(format!("change entry without ':' in '{text}'")))?;
        let (names, after) = parse_value(value)?;
        rest = after.strip_prefix(',').unwrap_or(after);
        let id = || -> Result<CatalogId, Error> {
            names
                .first()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| Error::Corrupt(format!("bad id in change '{kind}' of '{text}'")))
        };
        let pair = || -> Result<(String, String), Error> {
            match names.as_slice() {
                [s, t] => Ok((s.clone(), t.clone())),
                _ => Err(Error::Corrupt(format!(
                    "bad name in change '{kind}' of '{text}'"
                ))),
            }
        };
        use Change::*;
        out.push(match kind {
            "created_schema" => CreatedSchema(names.first().cloned().unwrap_or_default()),
            "created_table" => pair().map(|(s, t)| CreatedTable(s, t))?,
            "created_view" => pair().map(|(s, t)| CreatedView(s, t))?,
            "created_scalar_macro" => pair().map(|(s, t)| CreatedScalarMacro(s, t))?,
            "created_table_macro" => pair().map(|(s, t)| CreatedTableMacro(s, t))?,
            "dropped_schema" => DroppedSchema(id()?),
            "dropped_table" => DroppedTable(id()?),
            "dropped_view" => DroppedView(id()?),
            "dropped_scalar_macro" => DroppedScalarMacro(id()?),
            "dropped_table_macro" => DroppedTableMacro(id()?),
            "inserted_into_table" => InsertedIntoTable(id()?),
            "deleted_from_table" => DeletedFromTable(id()?),
            "altered_table" => AlteredTable(id()?),
            "altered_view" => AlteredView(id()?),
            "inlined_insert" => InlinedInsert(id()?),
            "inlined_delete" => InlinedDelete(id()?),
            "inline_flush" | "flushed_inlined" => InlineFlush(id()?),
            "merge_adjacent" => MergeAdjacent(id()?),
            "rewrite_delete" => RewriteDelete(id()?),
            "compacted_table" => CompactedTable(id()?),
            other => return Err(Error::Corrupt(format!("unsupported change type '{other}'"))),
        });
    }
    Ok(out)
}

/// Parse one value: a bare id, or one or more `"quoted"` names joined by `.`.
/// Returns the parts and the unparsed remainder.
fn parse_value(input: &str) -> Result<(Vec<String>, &str), Error> {
    let mut parts = Vec::new();
    // After the opening quote of the current name.
    let Some(mut rest) = input.strip_prefix('"') else {
        let end = input.find(',').unwrap_or(input.len());
        let (id, rest) = input
            .split_at_checked(end)
            .ok_or_else(|| Error::Corrupt(format!("bad value in '{input}'")))?;
        return Ok((vec![id.to_string()], rest));
    };
    loop {
        let mut name = String::new();
        let mut chars = rest.chars();
        let mut closed = false;
        while let Some(c) = chars.next() {
            if c != '"' {
                name.push(c);
            } else if chars.as_str().starts_with('"') {
                name.push('"');
                chars.next();
            } else {
                closed = true;
                break;
            }
        }
        if !closed {
            return Err(Error::Corrupt(format!("unterminated name in '{input}'")));
        }
        parts.push(name);
        rest = chars.as_str();
        match rest.strip_prefix(".\"") {
            Some(next) => rest = next,
            None => return Ok((parts, rest)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_qualified_names() {
        let parsed =
            parse_changes(r#"created_table:"My Schema!"."Tbl ""q""",inserted_into_table:2"#)
                .expect("parse");
        assert_eq!(
            parsed,
            vec![
                Change::CreatedTable("My Schema!".into(), "Tbl \"q\"".into()),
                Change::InsertedIntoTable(2)
            ]
        );
        assert_eq!(
            format_changes(&parsed).as_deref(),
            Some(r#"created_table:"My Schema!"."Tbl ""q""",inserted_into_table:2"#)
        );
        assert!(parse_changes("bogus:1").is_err());
        assert_eq!(
            parse_changes(r#"created_schema:"main""#).expect("parse"),
            vec![Change::CreatedSchema("main".into())]
        );
    }
}
