//! SQLite catalog backend (the embedded default).
//!
//! DuckDB stores booleans as integers, UUIDs and timestamps as text in SQLite
//! catalogs; [`SqlValue`] carries them as they are and the store converts.

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::{AssertSqlSafe, Row, TypeInfo, ValueRef};
use std::str::FromStr;
use std::time::Duration;

use super::{Dialect, SqlBackend, SqlRow, SqlValue, quote_ident};
use crate::error::{Error, Result};

/// A SQLite catalog file.
#[derive(Debug)]
pub struct SqliteBackend {
    pool: SqlitePool,
    location: String,
}

impl SqliteBackend {
    /// Open (or create) the SQLite file.
    pub async fn connect(path: &str) -> Result<Self> {
        let location = format!("ducklake:sqlite:{path}");
        let err = |source| Error::Catalog {
            location: location.clone(),
            source,
        };
        if let Some(parent) = std::path::Path::new(path).parent()
            && !parent.as_os_str().is_empty()
            && !parent.exists()
        {
            std::fs::create_dir_all(parent)?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(err)?
            .create_if_missing(true)
            // DuckDB's sqlite extension uses the default rollback journal; keep it so
            // both can open the file concurrently.
            .journal_mode(SqliteJournalMode::Delete)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(err)?;
        Ok(Self { pool, location })
    }

    fn err(&self, source: sqlx::Error) -> Error {
        Error::Catalog {
            location: self.location.clone(),
            source,
        }
    }
}

fn decode_row(row: &SqliteRow) -> Result<SqlRow> {
    let mut out = Vec::with_capacity(row.columns().len());
    for i in 0..row.columns().len() {
        let raw = row
            .try_get_raw(i)
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        if raw.is_null() {
            out.push(SqlValue::Null);
            continue;
        }
        let kind = raw.type_info().name().to_ascii_uppercase();
        let decode_err = |e: sqlx::Error| Error::Corrupt(format!("SQLite value: {e}"));
        let value = match kind.as_str() {
            "INTEGER" | "BIGINT" | "INT" | "BOOLEAN" => {
                SqlValue::Int(row.try_get::<i64, _>(i).map_err(decode_err)?)
            }
            "REAL" | "DOUBLE" | "FLOAT" => {
                SqlValue::Float(row.try_get::<f64, _>(i).map_err(decode_err)?)
            }
            "BLOB" => SqlValue::Blob(row.try_get::<Vec<u8>, _>(i).map_err(decode_err)?),
            _ => SqlValue::Text(row.try_get::<String, _>(i).map_err(decode_err)?),
        };
        out.push(value);
    }
    Ok(SqlRow(out))
}

#[async_trait]
impl SqlBackend for SqliteBackend {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn table(&self, name: &str) -> String {
        quote_ident(name)
    }

    async fn query(&self, sql: &str) -> Result<Vec<SqlRow>> {
        let rows = sqlx::query(AssertSqlSafe(sql.to_owned()))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter().map(decode_row).collect()
    }

    async fn execute_batch(&self, sql: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(|e| self.err(e))?;
        // BEGIN IMMEDIATE takes the write lock up front, so two writers serialise
        // instead of failing on lock upgrade.
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .map_err(|e| self.err(e))?;
        match sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut *conn)
            .await
        {
            Ok(_) => {
                sqlx::raw_sql("COMMIT")
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| self.err(e))?;
                Ok(())
            }
            Err(e) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                Err(self.err(e))
            }
        }
    }

    async fn table_exists(&self, name: &str) -> Result<bool> {
        let rows = sqlx::query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(name)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(!rows.is_empty())
    }

    async fn table_columns(&self, name: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "PRAGMA table_info({})",
            quote_ident(name)
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("name").map_err(|e| self.err(e)))
            .collect()
    }
}
