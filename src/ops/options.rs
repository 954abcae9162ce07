//! DuckLake's per-lake options (`CALL lake.set_option(...)`, `FROM lake.options()`).
//!
//! Options live in `ducklake_metadata` as (key, value, scope, scope_id) rows:
//! global (scope NULL), per schema (`schema`, schema id) or per table (`table`,
//! table id). Setting one is not versioned and creates no snapshot (DuckDB 1.5.5).
//! Values are stored normalised exactly as DuckDB stores them (`'5.4MB'` →
//! `5400000`, `ZSTD` → `zstd`, `2` → `V2`, `0.5` → `0.500000`), so either engine
//! reads what the other set.
//!
//! lakeq's writer honours `target_file_size`, `parquet_row_group_size` and
//! `parquet_compression` (+ `_level`); the others are kept for DuckDB (inlining,
//! sorting, per-thread output) or read by lakeq's maintenance functions
//! (`delete_older_than`, `expire_older_than`, `rewrite_delete_threshold`).

use datafusion::parquet::basic::{Compression, GzipLevel, ZstdLevel};

use crate::error::{Error, Result};
use crate::spec::CatalogId;
use crate::store::{LakeMetadata, MetadataStore, quote_text};
use crate::write::WriteOptions;

/// How an option's value is checked and normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A byte size with DuckDB's units (`1KB` = 1000, `1KiB` = 1024).
    Bytes,
    /// A non-negative integer.
    Count,
    /// `true` / `false`.
    Bool,
    /// A Parquet codec name.
    Codec,
    /// `1` / `2` (stored `V1` / `V2`).
    ParquetVersion,
    /// A fraction between 0 and 1, stored with six decimals.
    Fraction,
    /// Interval text, stored as given (`'1 week'`).
    Interval,
}

/// The options DuckDB 1.5.5 accepts in `set_option`, with their descriptions as
/// `options()` shows them.
const SETTABLE: &[(&str, Kind, &str)] = &[
    (
        "auto_compact",
        Kind::Bool,
        "Pre-defined schema used as a default value for the following compaction functions 'ducklake_flush_inlined_data','ducklake_merge_adjacent_files', 'ducklake_rewrite_data_files', 'ducklake_delete_orphaned_files'",
    ),
    (
        "data_inlining_row_limit",
        Kind::Count,
        "Maximum amount of rows to inline in a single insert",
    ),
    (
        "delete_older_than",
        Kind::Interval,
        "How old unused files must be to be removed by the 'ducklake_delete_orphaned_files' and 'ducklake_cleanup_old_files' cleanup functions.",
    ),
    (
        "expire_older_than",
        Kind::Interval,
        "How old snapshots must be, by default, to be expired by: 'ducklake_expire_snapshots'",
    ),
    (
        "parquet_compression",
        Kind::Codec,
        "Compression algorithm for Parquet files (uncompressed, snappy, gzip, zstd, brotli, lz4, lz4_raw)",
    ),
    (
        "parquet_compression_level",
        Kind::Count,
        "Compression level for Parquet files",
    ),
    (
        "parquet_row_group_size",
        Kind::Count,
        "Number of rows per row group in Parquet files",
    ),
    (
        "parquet_row_group_size_bytes",
        Kind::Bytes,
        "Number of bytes per row group in Parquet files",
    ),
    (
        "parquet_version",
        Kind::ParquetVersion,
        "Parquet format version (1 or 2)",
    ),
    (
        "per_thread_output",
        Kind::Bool,
        "Whether to create separate output files per thread during parallel insertion",
    ),
    (
        "require_commit_message",
        Kind::Bool,
        "If an explicit commit message is required for a snapshot commit.",
    ),
    (
        "rewrite_delete_threshold",
        Kind::Fraction,
        "A threshold that determines the minimum amount of data that must be removed from a file before a rewrite is warranted. From 0 - 1.",
    ),
    (
        "sort_on_insert",
        Kind::Bool,
        "Whether to sort data on INSERT according to SET SORTED BY (default: true)",
    ),
    (
        "target_file_size",
        Kind::Bytes,
        "The target data file size for insertion and compaction operations",
    ),
];

/// Descriptions of the options only the lake itself sets.
const FIXED: &[(&str, &str)] = &[
    ("created_by", "Tool used to write the DuckLake"),
    ("data_path", "Path to data files"),
    (
        "encrypted",
        "Whether or not to encrypt Parquet files written to the data path",
    ),
    ("version", "DuckLake format version"),
];

/// The description `options()` shows for `key`, if DuckDB has one.
pub fn description(key: &str) -> Option<&'static str> {
    SETTABLE
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, _, d)| *d)
        .or_else(|| FIXED.iter().find(|(k, _)| *k == key).map(|(_, d)| *d))
}

/// Parse a byte size as DuckDB does: a number and a unit (`B`, `KB`/`MB`/`GB`/`TB`
/// in powers of 1000, `KiB`/`MiB`/`GiB`/`TiB` in powers of 1024), case-insensitive.
pub fn parse_bytes(text: &str) -> Result<u64> {
    let t = text.trim();
    let unit = t.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    let number = t.strip_suffix(unit).unwrap_or_default();
    let (number, unit) = (number.trim(), unit.trim());
    let value: f64 = number.parse().map_err(|_| {
        Error::Unsupported(format!(
            "'{text}' is not a size: it needs a number (e.g. 1GB)"
        ))
    })?;
    let multiplier: f64 = match unit.to_ascii_lowercase().as_str() {
        "b" | "byte" | "bytes" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(Error::Unsupported(format!(
                "unknown unit '{unit}' in size '{text}' (expected KB, MB, GB, TB for 1000^i \
                 units or KiB, MiB, GiB, TiB for 1024^i units)"
            )));
        }
    };
    // Whole bytes, truncated as DuckDB does.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok((value * multiplier) as u64)
}

/// Check `value` for option `key` and return it as DuckDB stores it.
pub fn normalize(key: &str, value: &str) -> Result<String> {
    let Some((_, kind, _)) = SETTABLE.iter().find(|(k, _, _)| *k == key) else {
        return Err(Error::Unsupported(format!(
            "unknown option '{key}'; the options are {}",
            SETTABLE
                .iter()
                .map(|(k, _, _)| *k)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let bad = |what: &str| Error::Unsupported(format!("option {key}: '{value}' is not {what}"));
    let v = value.trim();
    Ok(match kind {
        Kind::Bytes => parse_bytes(v)?.to_string(),
        Kind::Count => v
            .parse::<u64>()
            .map_err(|_| bad("a non-negative integer"))?
            .to_string(),
        Kind::Bool => match v.to_ascii_lowercase().as_str() {
            "true" | "t" | "1" => "true".into(),
            "false" | "f" | "0" => "false".into(),
            _ => return Err(bad("a boolean")),
        },
        Kind::Codec => {
            let codec = v.to_ascii_lowercase();
            let known = [
                "uncompressed",
                "snappy",
                "gzip",
                "zstd",
                "brotli",
                "lz4",
                "lz4_raw",
            ];
            if !known.contains(&codec.as_str()) {
                return Err(bad(&format!("a Parquet codec ({})", known.join(", "))));
            }
            codec
        }
        Kind::ParquetVersion => match v.to_ascii_uppercase().trim_start_matches('V') {
            "1" => "V1".into(),
            "2" => "V2".into(),
            _ => return Err(bad("a Parquet version (1 or 2)")),
        },
        Kind::Fraction => {
            let f: f64 = v.parse().map_err(|_| bad("a number"))?;
            if !(0.0..=1.0).contains(&f) {
                return Err(bad("between 0 and 1"));
            }
            format!("{f:.6}")
        }
        // Empty resets to the default, as in DuckDB.
        Kind::Interval => {
            if !v.is_empty() && crate::ops::cleanup::parse_interval(v).is_err() {
                return Err(Error::Unsupported(format!(
                    "{key} is not a valid interval value. ('{value}': an interval such as '2 days')"
                )));
            }
            v.to_string()
        }
    })
}

/// Where an option applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The whole lake.
    Global,
    /// One schema (by id).
    Schema(CatalogId),
    /// One table (by id).
    Table(CatalogId),
}

impl Scope {
    fn columns(&self) -> (String, String) {
        match self {
            Scope::Global => ("NULL".into(), "NULL".into()),
            Scope::Schema(id) => ("'schema'".into(), id.to_string()),
            Scope::Table(id) => ("'table'".into(), id.to_string()),
        }
    }
}

/// Store option `key` (already normalised) for `scope`, replacing an earlier value.
pub async fn set_option(
    store: &MetadataStore,
    key: &str,
    value: &str,
    scope: &Scope,
) -> Result<()> {
    let table = store.backend().table("ducklake_metadata");
    let (scope_sql, id_sql) = scope.columns();
    let matches = match scope {
        Scope::Global => "scope IS NULL AND scope_id IS NULL".to_string(),
        _ => format!("scope = {scope_sql} AND scope_id = {id_sql}"),
    };
    let key_sql = quote_text(key);
    store
        .backend()
        .execute_batch(&format!(
            "DELETE FROM {table} WHERE key = {key_sql} AND {matches};\n\
             INSERT INTO {table} (key, value, scope, scope_id) VALUES ({key_sql}, {}, {scope_sql}, {id_sql});",
            quote_text(value)
        ))
        .await
}

impl WriteOptions {
    /// The write options for a table from the lake's options (table scope, then
    /// schema, then global; DuckLake's defaults otherwise). A value lakeq cannot
    /// use (a codec it does not have) is an error naming the option.
    pub fn for_table(
        metadata: &LakeMetadata,
        schema_id: CatalogId,
        table_id: CatalogId,
    ) -> Result<Self> {
        let mut options = WriteOptions::default();
        let get = |key: &str| metadata.option(key, schema_id, table_id);
        if let Some(v) = get("target_file_size") {
            // Stored as bytes; a unit only if another tool wrote one.
            let bytes = match v.trim().parse::<u64>() {
                Ok(b) => b,
                Err(_) => parse_bytes(v)?,
            };
            options.target_file_size = bytes.max(1);
        }
        if let Some(v) = get("parquet_row_group_size") {
            options.row_group_size = v
                .parse::<usize>()
                .map_err(|_| Error::Unsupported(format!("option parquet_row_group_size: '{v}'")))?;
        }
        let level = get("parquet_compression_level").and_then(|v| v.parse::<i32>().ok());
        if let Some(codec) = get("parquet_compression") {
            let bad = |e: datafusion::parquet::errors::ParquetError| {
                Error::Unsupported(format!("option parquet_compression '{codec}': {e}"))
            };
            options.compression = match codec {
                "uncompressed" => Compression::UNCOMPRESSED,
                "snappy" => Compression::SNAPPY,
                "zstd" => Compression::ZSTD(match level {
                    Some(l) => ZstdLevel::try_new(l).map_err(bad)?,
                    None => ZstdLevel::default(),
                }),
                "gzip" => Compression::GZIP(match level {
                    Some(l) => GzipLevel::try_new(u32::try_from(l).unwrap_or(6)).map_err(bad)?,
                    None => GzipLevel::default(),
                }),
                other => {
                    return Err(Error::Unsupported(format!(
                        "option parquet_compression '{other}': lakeq writes uncompressed, \
                         snappy, gzip or zstd Parquet"
                    )));
                }
            };
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_stored_as_duckdb_stores_them() -> Result<()> {
        assert_eq!(normalize("target_file_size", "5.4MB")?, "5400000");
        assert_eq!(normalize("target_file_size", "2KiB")?, "2048");
        assert_eq!(normalize("target_file_size", "1B")?, "1");
        assert_eq!(normalize("parquet_compression", "ZSTD")?, "zstd");
        assert_eq!(normalize("parquet_version", "2")?, "V2");
        assert_eq!(normalize("rewrite_delete_threshold", "0.5")?, "0.500000");
        assert_eq!(normalize("sort_on_insert", "TRUE")?, "true");
        assert_eq!(normalize("delete_older_than", "1 week")?, "1 week");
        assert!(normalize("sort_on_insert", "not_a_bool").is_err());
        assert!(normalize("target_file_size", "1000").is_err());
        assert!(normalize("parquet_compression", "foo").is_err());
        assert!(normalize("version", "2.0").is_err());
        Ok(())
    }

    #[test]
    fn write_options_follow_table_then_schema_then_global() -> Result<()> {
        let metadata = LakeMetadata {
            rows: vec![
                ("target_file_size".into(), "1000".into(), None, None),
                (
                    "target_file_size".into(),
                    "2000".into(),
                    Some("schema".into()),
                    Some(1),
                ),
                (
                    "target_file_size".into(),
                    "3000".into(),
                    Some("table".into()),
                    Some(7),
                ),
                ("parquet_compression".into(), "zstd".into(), None, None),
            ],
            ..LakeMetadata::default()
        };
        assert_eq!(
            WriteOptions::for_table(&metadata, 1, 7)?.target_file_size,
            3000
        );
        assert_eq!(
            WriteOptions::for_table(&metadata, 1, 8)?.target_file_size,
            2000
        );
        let other = WriteOptions::for_table(&metadata, 2, 9)?;
        assert_eq!(other.target_file_size, 1000);
        assert!(matches!(other.compression, Compression::ZSTD(_)));
        Ok(())
    }
}
