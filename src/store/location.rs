//! Where a catalog lives: parsing DuckDB's ATTACH strings
//! (`ducklake:sqlite:/path/meta.sqlite`, `ducklake:postgres:dbname=lake host=...`).

use crate::error::{Error, Result};

/// A catalog database location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogLocation {
    /// A SQLite database file.
    Sqlite {
        /// Path of the file (created on first use).
        path: String,
    },
    /// A schema in a PostgreSQL database.
    Postgres {
        /// libpq-style `key=value` connection string (or a `postgres://` URL).
        conninfo: String,
        /// Schema that holds the `ducklake_*` tables (`public` by default).
        metadata_schema: String,
    },
}

impl CatalogLocation {
    /// Parse an ATTACH string. `metadata_schema` is the ATTACH option `METADATA_SCHEMA`.
    pub fn parse(attach: &str, metadata_schema: Option<&str>) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidLocation {
            location: redact(attach),
            reason: reason.to_string(),
        };
        let rest = attach.strip_prefix("ducklake:").ok_or_else(|| {
            invalid("expected 'ducklake:sqlite:<file>' or 'ducklake:postgres:<connection string>'")
        })?;
        if let Some(path) = rest.strip_prefix("sqlite:") {
            if path.trim().is_empty() {
                return Err(invalid("the SQLite file path is empty"));
            }
            if metadata_schema.is_some_and(|s| s != "main") {
                return Err(invalid(
                    "METADATA_SCHEMA is only supported on PostgreSQL catalogs",
                ));
            }
            return Ok(Self::Sqlite {
                path: path.to_string(),
            });
        }
        if let Some(conninfo) = rest
            .strip_prefix("postgres:")
            .or_else(|| rest.strip_prefix("postgresql:"))
        {
            return Ok(Self::Postgres {
                conninfo: conninfo.to_string(),
                metadata_schema: metadata_schema.unwrap_or("public").to_string(),
            });
        }
        Err(invalid(
            "unsupported catalog database; lakeq supports 'ducklake:sqlite:<file>' and \
             'ducklake:postgres:<connection string>' (DuckDB-file catalogs are not supported)",
        ))
    }

    /// A description without passwords, for messages.
    pub fn display(&self) -> String {
        match self {
            Self::Sqlite { path } => format!("ducklake:sqlite:{path}"),
            Self::Postgres {
                conninfo,
                metadata_schema,
            } => format!(
                "ducklake:postgres:{} (schema {metadata_schema})",
                redact(conninfo)
            ),
        }
    }
}

/// The `key=value` pairs of a libpq connection string, as libpq reads them:
/// spaces around `=` allowed, values in single quotes may hold spaces, and `\'`
/// and `\\` escape a quote and a backslash. A malformed string is an error
/// (never a silently different connection).
pub fn conninfo_pairs(conninfo: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = conninfo.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("expected key=value after '{key}'"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quoted value of '{key}'")),
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(format!("unterminated quoted value of '{key}'")),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

/// Remove `password=...` values and URL passwords from a connection string.
pub fn redact(conninfo: &str) -> String {
    let trimmed = conninfo.trim();
    if !trimmed.contains("://") {
        return match conninfo_pairs(trimmed) {
            Ok(pairs) => pairs
                .iter()
                .map(|(k, v)| {
                    if k.eq_ignore_ascii_case("password") {
                        format!("{k}=***")
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
            // Unparseable: show nothing that might be a secret.
            Err(_) if trimmed.to_ascii_lowercase().contains("password") => {
                "<connection string with a password>".to_string()
            }
            Err(_) => trimmed.to_string(),
        };
    }
    let words: Vec<String> = conninfo
        .split_whitespace()
        .map(|w| {
            if w.to_ascii_lowercase().starts_with("password=") {
                "password=***".to_string()
            } else if let Some(at) = w.find('@')
                && let Some(scheme) = w.find("://")
                && let Some(userinfo) = w.get(scheme + 3..at)
                && let Some(colon) = userinfo.find(':')
                && let (Some(user), Some(host)) = (w.get(..scheme + 3 + colon), w.get(at..))
            {
                format!("{user}:***{host}")
            } else {
                w.to_string()
            }
        })
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_strings_parse_as_libpq_reads_them() {
        assert_eq!(
            conninfo_pairs("host=h  port = 5433 password='a b\\'c' dbname=x").unwrap(),
            vec![
                ("host".to_string(), "h".to_string()),
                ("port".to_string(), "5433".to_string()),
                ("password".to_string(), "a b'c".to_string()),
                ("dbname".to_string(), "x".to_string()),
            ]
        );
        assert!(conninfo_pairs("host").is_err());
        assert!(conninfo_pairs("password='open").is_err());
        assert_eq!(redact("host=h password='two words'"), "host=h password=***");
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert!(!redact("password='unterminated secret").contains("secret"));
    }

    #[test]
    fn parses_duckdb_attach_strings() {
        assert_eq!(
            CatalogLocation::parse("ducklake:sqlite:/tmp/m.sqlite", None).ok(),
            Some(CatalogLocation::Sqlite {
                path: "/tmp/m.sqlite".into()
            })
        );
        assert_eq!(
            CatalogLocation::parse("ducklake:postgres:dbname=lake host=127.0.0.1", Some("raw"))
                .ok(),
            Some(CatalogLocation::Postgres {
                conninfo: "dbname=lake host=127.0.0.1".into(),
                metadata_schema: "raw".into()
            })
        );
        assert!(CatalogLocation::parse("sqlite:/x", None).is_err());
        assert!(CatalogLocation::parse("ducklake:/x.ducklake", None).is_err());
        assert_eq!(redact("dbname=x password=secret"), "dbname=x password=***");
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        // An '@' before the scheme, multi-byte text: redacted or kept, never a panic.
        assert_eq!(redact("x@y://z"), "x@y://z");
        assert_eq!(redact("é@ü://ö:p@h"), "é@ü://ö:p@h");
        assert!(CatalogLocation::parse("x@y://z", None).is_err());
    }
}
