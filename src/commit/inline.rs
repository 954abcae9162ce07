//! Data inlining on write (SPEC §8.1): a statement that inserts at most
//! `data_inlining_row_limit` rows (DuckLake's default: 10) stores them in the
//! catalog, in `ducklake_inlined_data_<table>_<schema_version>`, instead of
//! writing a Parquet file, exactly as DuckDB 1.5.5 does.
//!
//! This module holds the catalog side: which tables can be inlined, the DDL of
//! an inlined table in each backend's types (SPEC §5.5), and each value as the
//! SQL literal DuckDB writes for it (SPEC §5.6). The rows are rendered to SQL
//! when the statement runs; the commit gives them their row ids and snapshot.

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::common::ScalarValue;

use super::TableRef;
use crate::catalog::{ColumnNode, build_column_tree};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::spec::rows::ColumnRow;
use crate::spec::types::DuckLakeType;
use crate::spec::values::format_duckdb_text;
use crate::spec::{CatalogId, ColumnId, SnapshotId};
use crate::store::{Dialect, SqlBackend, quote_ident, quote_text};
use crate::write::ColumnStats;

/// DuckLake's default `data_inlining_row_limit`.
pub const DEFAULT_ROW_LIMIT: u64 = 10;

/// Column names DuckDB's inlined tables use themselves; a table with a column
/// of such a name is never inlined.
pub const RESERVED_COLUMNS: [&str; 5] = [
    "row_id",
    "begin_snapshot",
    "end_snapshot",
    "_ducklake_internal_snapshot_id",
    "_ducklake_internal_row_id",
];

/// Rows of one INSERT (or the new versions of one UPDATE) stored in the
/// catalog instead of a Parquet file.
#[derive(Debug, Clone)]
pub struct InlinedInsert {
    /// The table (one the change set creates: CREATE TABLE AS).
    pub table: TableRef,
    /// The top-level column ids, in order, the rows were rendered for (the
    /// commit refuses them if the table's layout changed meanwhile).
    pub column_ids: Vec<ColumnId>,
    /// Each row's values as SQL literals, comma-separated, in column order.
    pub rows: Vec<String>,
    /// Row ids to keep (an UPDATE's new versions); `None`: new rows, numbered
    /// from the table's `next_row_id` at commit.
    pub row_ids: Option<Vec<i64>>,
    /// Statistics of the rows per leaf column, merged into the table's.
    pub column_stats: Vec<ColumnStats>,
}

/// The catalog type of an inlined column of type `ty` (`None`: DuckDB never
/// inlines a table with such a column).
pub fn column_type(dialect: Dialect, ty: &DuckLakeType) -> Option<String> {
    use DuckLakeType as T;
    Some(match dialect {
        Dialect::Sqlite => match ty {
            T::Boolean
            | T::Int8
            | T::Int16
            | T::Int32
            | T::Int64
            | T::UInt8
            | T::UInt16
            | T::UInt32 => "BIGINT".into(),
            T::Blob => "BLOB".into(),
            T::TimeTz | T::TimeNs | T::Variant | T::Geometry => return None,
            _ => "VARCHAR".into(),
        },
        Dialect::Postgres => match ty {
            T::Boolean => "boolean".into(),
            T::Int8 | T::Int16 => "smallint".into(),
            T::Int32 | T::UInt8 | T::UInt16 => "integer".into(),
            T::Int64 | T::UInt32 => "bigint".into(),
            T::Float32 => "real".into(),
            T::Float64 => "double precision".into(),
            T::Decimal { precision, scale } => format!("numeric({precision},{scale})"),
            T::Varchar | T::Json | T::Blob => "bytea".into(),
            T::Uuid => "uuid".into(),
            T::Time => "time without time zone".into(),
            T::Interval => "interval".into(),
            T::TimeTz | T::TimeNs | T::Variant | T::Geometry => return None,
            _ => "character varying".into(),
        },
    })
}

/// Whether DuckDB would inline rows of a table with these top-level columns
/// (SPEC §8.1): every type (nested ones included) has an inlined form, no
/// column takes a name the inlined table uses itself, no two names differ only
/// in case, and no name is longer than a PostgreSQL identifier may be (DuckDB
/// applies that limit whatever the catalog).
pub fn can_inline(dialect: Dialect, columns: &[ColumnNode]) -> bool {
    fn types_ok(dialect: Dialect, c: &ColumnNode) -> bool {
        column_type(dialect, &c.ty).is_some() && c.children.iter().all(|k| types_ok(dialect, k))
    }
    // SQLite's column names are case-insensitive (and so are DuckDB's).
    let mut names: Vec<String> = columns
        .iter()
        .map(|c| c.row.column_name.to_lowercase())
        .collect();
    names.sort();
    let distinct = names.windows(2).all(|w| w.first() != w.get(1));
    distinct
        && !columns.is_empty()
        && columns.iter().all(|c| {
            let name = c.row.column_name.as_str();
            types_ok(dialect, c)
                && !RESERVED_COLUMNS
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(name))
                // PostgreSQL's identifier limit; DuckDB applies it to every catalog.
                && name.len() <= 63
        })
}

/// The name DuckDB gives the inlined table of `table_id` at `schema_version`.
pub fn table_name(table_id: CatalogId, schema_version: i64) -> String {
    format!("ducklake_inlined_data_{table_id}_{schema_version}")
}

/// `CREATE TABLE IF NOT EXISTS` of the inlined table `name` for these
/// top-level columns.
pub fn create_table_sql(b: &dyn SqlBackend, name: &str, columns: &[ColumnNode]) -> Result<String> {
    let mut defs = vec![
        "row_id BIGINT".to_string(),
        "begin_snapshot BIGINT".to_string(),
        "end_snapshot BIGINT".to_string(),
    ];
    for c in columns {
        let ty = column_type(b.dialect(), &c.ty).ok_or_else(|| {
            Error::Unsupported(format!(
                "inlining a column of type {} ('{}')",
                c.ty, c.row.column_name
            ))
        })?;
        defs.push(format!("{} {ty}", quote_ident(&c.row.column_name)));
    }
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {}({})",
        b.table(name),
        defs.join(", ")
    ))
}

/// The rows of `batch` (in the order of `columns`, the table's top-level
/// columns) as SQL value lists for an inlined table; `None` when a value has
/// no inlined form in this backend (then the rows go to Parquet).
pub fn render_rows(
    dialect: Dialect,
    columns: &[ColumnNode],
    batch: &RecordBatch,
) -> Result<Option<Vec<String>>> {
    if batch.num_columns() != columns.len() {
        return Err(Error::Corrupt(format!(
            "inlining {} columns into a table of {}",
            batch.num_columns(),
            columns.len()
        )));
    }
    let mut rows = vec![Vec::with_capacity(columns.len()); batch.num_rows()];
    for (column, array) in columns.iter().zip(batch.columns()) {
        for (i, row) in rows.iter_mut().enumerate() {
            let value = if array.is_null(i) {
                ScalarValue::Null
            } else {
                ScalarValue::try_from_array(array.as_ref(), i)?
            };
            match value_sql(dialect, &column.ty, &value)? {
                Some(sql) => row.push(sql),
                None => return Ok(None),
            }
        }
    }
    Ok(Some(rows.into_iter().map(|r| r.join(", ")).collect()))
}

/// One value as the literal DuckDB stores in an inlined column of type `ty`
/// (SPEC §5.5/§5.6); `None` when it has none here (text with a NUL byte in a
/// SQLite catalog).
pub fn value_sql(
    dialect: Dialect,
    ty: &DuckLakeType,
    value: &ScalarValue,
) -> Result<Option<String>> {
    use DuckLakeType as T;
    if value.is_null() {
        return Ok(Some("NULL".into()));
    }
    let blob = |bytes: &[u8]| {
        let hex: String = bytes.iter().map(|x| format!("{x:02x}")).collect();
        match dialect {
            Dialect::Sqlite => format!("X'{hex}'"),
            Dialect::Postgres => format!("'\\x{hex}'::bytea"),
        }
    };
    let text = || -> Result<String> {
        format_duckdb_text(value)?
            .ok_or_else(|| Error::Corrupt(format!("no text for the value {value}")))
    };
    let quoted = |t: String| -> Option<String> {
        (!(dialect == Dialect::Sqlite && t.contains('\0'))).then(|| quote_text(&t))
    };
    Ok(match ty {
        T::Boolean => {
            let v = matches!(value, ScalarValue::Boolean(Some(true)));
            Some(match dialect {
                Dialect::Sqlite => i64::from(v).to_string(),
                Dialect::Postgres => v.to_string(),
            })
        }
        T::Int8 | T::Int16 | T::Int32 | T::Int64 | T::UInt8 | T::UInt16 | T::UInt32 => {
            Some(text()?)
        }
        T::Float32 | T::Float64 if dialect == Dialect::Postgres => {
            let t = text()?;
            Some(match t.as_str() {
                "nan" => "'NaN'".into(),
                "inf" => "'Infinity'".into(),
                "-inf" => "'-Infinity'".into(),
                _ => quote_text(&t),
            })
        }
        T::Varchar | T::Json => {
            let t = text()?;
            match dialect {
                Dialect::Sqlite => quoted(t),
                Dialect::Postgres => Some(blob(t.as_bytes())),
            }
        }
        T::Blob => {
            let bytes = match value {
                ScalarValue::Binary(Some(v))
                | ScalarValue::LargeBinary(Some(v))
                | ScalarValue::BinaryView(Some(v))
                | ScalarValue::FixedSizeBinary(_, Some(v)) => v,
                other => {
                    return Err(Error::Corrupt(format!("a blob column holds {other:?}")));
                }
            };
            Some(blob(bytes))
        }
        _ => quoted(text()?),
    })
}

/// A column layout as the inlined table depends on it: per column (parents
/// before children, siblings in order) its id, parent, name and type.
fn layout_key(rows: &[ColumnRow]) -> Vec<(Option<ColumnId>, i64, ColumnId, String, String)> {
    let mut key: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.parent_column,
                r.column_order,
                r.column_id,
                r.column_name.clone(),
                r.column_type.to_ascii_lowercase(),
            )
        })
        .collect();
    key.sort();
    key
}

/// The inlined table for `table_id` with the column layout `wanted`, and the
/// statements that create it if it has none: the registered one of the
/// highest schema version if its layout is `wanted`, else a new one named
/// after the commit's schema version (raised, as DuckDB does, when the commit
/// does not raise it anyway, so that readers caching the catalog by version
/// see it). `prior_schema_version` is the version before this commit; with
/// `record_version` the new version's layout is recorded in
/// `ducklake_schema_versions` (a DDL commit records it itself).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn ensure_table(
    lake: &Lake,
    b: &dyn SqlBackend,
    table_id: CatalogId,
    wanted: &[ColumnRow],
    s: SnapshotId,
    schema_version: &mut i64,
    prior_schema_version: i64,
    record_version: bool,
) -> Result<(String, Vec<String>)> {
    let store = lake.store();
    let registered = store.inlined_tables(table_id).await?;
    let all_versions = store.all_column_versions(table_id).await?;
    let wanted_key = layout_key(wanted);
    if let Some(last) = registered.last()
        && b.table_exists(&last.table_name).await?
    {
        let versions = store.schema_versions(table_id).await?;
        let first = all_versions
            .iter()
            .map(|c| c.begin_snapshot)
            .min()
            .unwrap_or(0);
        let at = versions
            .iter()
            .find(|v| v.schema_version == last.schema_version)
            .map_or(first, |v| v.begin_snapshot);
        let layout: Vec<ColumnRow> = all_versions
            .iter()
            .filter(|c| c.begin_snapshot <= at && c.end_snapshot.is_none_or(|e| at < e))
            .cloned()
            .collect();
        if layout_key(&layout) == wanted_key {
            return Ok((last.table_name.clone(), Vec::new()));
        }
    }
    let mut version = if *schema_version > prior_schema_version {
        *schema_version
    } else {
        *schema_version + 1
    };
    if let Some(max) = registered.iter().map(|r| r.schema_version).max() {
        version = version.max(max + 1);
    }
    *schema_version = (*schema_version).max(version);
    let name = table_name(table_id, version);
    let tree = build_column_tree(wanted)?;
    let t = |n: &str| b.table(n);
    let mut sql = vec![
        create_table_sql(b, &name, &tree)?,
        format!(
            "INSERT INTO {} VALUES ({table_id}, {}, {version})",
            t("ducklake_inlined_data_tables"),
            quote_text(&name)
        ),
    ];
    if record_version {
        // The layout of the new version for readers (DuckDB falls back to the
        // table's first layout without this row).
        sql.push(format!(
            "DELETE FROM {} WHERE table_id = {table_id} AND schema_version = {version}",
            t("ducklake_schema_versions")
        ));
        sql.push(format!(
            "INSERT INTO {} VALUES ({s}, {version}, {table_id})",
            t("ducklake_schema_versions")
        ));
    }
    Ok((name, sql))
}

/// The lake's inlining row limit for a table, whatever its columns: its
/// `data_inlining_row_limit` option (table, then schema, then global scope),
/// else `DATA_INLINING_ROW_LIMIT` given at ATTACH, else 10 (SPEC §8.1).
pub async fn configured_limit(
    lake: &Lake,
    schema_id: CatalogId,
    table_id: CatalogId,
) -> Result<u64> {
    let metadata = lake.store().metadata().await?;
    if let Some(v) = metadata.option("data_inlining_row_limit", schema_id, table_id) {
        return v.trim().parse().map_err(|_| {
            Error::Corrupt(format!(
                "the lake's data_inlining_row_limit option '{v}' is not a row count"
            ))
        });
    }
    Ok(lake.data_inlining_row_limit().unwrap_or(DEFAULT_ROW_LIMIT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::IntervalMonthDayNano;

    fn render(dialect: Dialect, ty: DuckLakeType, v: ScalarValue) -> Option<String> {
        value_sql(dialect, &ty, &v).unwrap()
    }

    #[test]
    fn values_are_stored_as_duckdb_stores_them() {
        use DuckLakeType as T;
        use ScalarValue as S;
        let sqlite = Dialect::Sqlite;
        let pg = Dialect::Postgres;
        assert_eq!(
            render(sqlite, T::Boolean, S::Boolean(Some(true))).unwrap(),
            "1"
        );
        assert_eq!(
            render(pg, T::Boolean, S::Boolean(Some(false))).unwrap(),
            "false"
        );
        assert_eq!(render(sqlite, T::Int32, S::Int32(Some(-7))).unwrap(), "-7");
        assert_eq!(
            render(sqlite, T::UInt64, S::UInt64(Some(u64::MAX))).unwrap(),
            "'18446744073709551615'"
        );
        assert_eq!(
            render(sqlite, T::Float64, S::Float64(Some(f64::NAN))).unwrap(),
            "'nan'"
        );
        assert_eq!(
            render(pg, T::Float64, S::Float64(Some(f64::NEG_INFINITY))).unwrap(),
            "'-Infinity'"
        );
        assert_eq!(
            render(pg, T::Float64, S::Float64(Some(1e300))).unwrap(),
            "'1e+300'"
        );
        let dec = T::Decimal {
            precision: 18,
            scale: 3,
        };
        assert_eq!(
            render(sqlite, dec.clone(), S::Decimal128(Some(1500), 18, 3)).unwrap(),
            "'1.500'"
        );
        assert_eq!(
            render(pg, T::Varchar, S::Utf8(Some("hello".into()))).unwrap(),
            "'\\x68656c6c6f'::bytea"
        );
        assert_eq!(
            render(sqlite, T::Varchar, S::Utf8(Some("it's".into()))).unwrap(),
            "'it''s'"
        );
        assert_eq!(
            render(sqlite, T::Varchar, S::Utf8(Some("a\0b".into()))),
            None
        );
        assert_eq!(
            render(sqlite, T::Blob, S::Binary(Some(vec![0, 1]))).unwrap(),
            "X'0001'"
        );
        assert_eq!(
            render(
                sqlite,
                T::Interval,
                S::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(
                    14,
                    3,
                    4 * 3_600_000_000_000
                )))
            )
            .unwrap(),
            "'1 year 2 months 3 days 04:00:00'"
        );
        assert_eq!(
            render(sqlite, T::Date, S::Date32(Some(0))).unwrap(),
            "'1970-01-01'"
        );
        assert_eq!(render(pg, T::Int64, S::Int64(None)).unwrap(), "NULL");
    }

    #[test]
    fn types_without_an_inlined_form_keep_a_table_in_parquet() {
        assert!(column_type(Dialect::Sqlite, &DuckLakeType::Geometry).is_none());
        assert!(column_type(Dialect::Postgres, &DuckLakeType::Variant).is_none());
        assert_eq!(
            column_type(
                Dialect::Postgres,
                &DuckLakeType::Decimal {
                    precision: 38,
                    scale: 10
                }
            )
            .unwrap(),
            "numeric(38,10)"
        );
        assert_eq!(
            column_type(Dialect::Sqlite, &DuckLakeType::Float32).unwrap(),
            "VARCHAR"
        );
    }
}
