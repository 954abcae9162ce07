//! PostgreSQL catalog backend: the `ducklake_*` tables live in one schema
//! (`METADATA_SCHEMA`, default `public`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow, PgValueRef, Postgres};
use sqlx::{AssertSqlSafe, Column, Decode, Row, TypeInfo, ValueRef};

use super::location::redact;
use super::{Dialect, SqlBackend, SqlRow, SqlValue, quote_ident};
use crate::error::{Error, Result};

/// A PostgreSQL catalog schema.
#[derive(Debug)]
pub struct PgBackend {
    pool: PgPool,
    schema: String,
    location: String,
}

/// Build connect options from a libpq `key=value` string or a `postgres://` URL.
pub fn connect_options(conninfo: &str) -> Result<PgConnectOptions> {
    let trimmed = conninfo.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        return trimmed
            .parse()
            .map_err(|e: sqlx::Error| Error::InvalidLocation {
                location: redact(conninfo),
                reason: e.to_string(),
            });
    }
    // Start from the environment (PGHOST, PGUSER, ...) like libpq does.
    let mut options = PgConnectOptions::new();
    for word in trimmed.split_whitespace() {
        let (key, value) = word.split_once('=').ok_or_else(|| Error::InvalidLocation {
            location: redact(conninfo),
            reason: format!("expected key=value, found '{}'", redact(word)),
        })?;
        let value = value.trim_matches('\'');
        options = match key {
            "host" | "hostaddr" => options.host(value),
            "port" => options.port(value.parse().map_err(|_| Error::InvalidLocation {
                location: redact(conninfo),
                reason: format!("invalid port '{value}'"),
            })?),
            "dbname" | "database" => options.database(value),
            "user" => options.username(value),
            "password" => options.password(value),
            "application_name" => options.application_name(value),
            "sslmode" | "options" | "connect_timeout" => options,
            other => {
                return Err(Error::InvalidLocation {
                    location: redact(conninfo),
                    reason: format!("unknown connection parameter '{other}'"),
                });
            }
        };
    }
    Ok(options)
}

impl PgBackend {
    /// Connect and make sure the metadata schema exists.
    pub async fn connect(conninfo: &str, schema: &str) -> Result<Self> {
        let location = format!("ducklake:postgres:{} (schema {schema})", redact(conninfo));
        let options = connect_options(conninfo)?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            // timestamptz is rendered in UTC, as DuckDB expects: sqlx sends TimeZone=UTC in
            // the startup message, so no `SET TIME ZONE` round trip per connection.
            .connect_with(options)
            .await
            .map_err(|source| Error::Catalog {
                location: location.clone(),
                source,
            })?;
        Ok(Self {
            pool,
            schema: schema.to_string(),
            location,
        })
    }

    fn err(&self, source: sqlx::Error) -> Error {
        Error::Catalog {
            location: self.location.clone(),
            source,
        }
    }

    /// The metadata schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

/// How one result column is decoded, decided once per query from its PostgreSQL type.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Int8,
    Int4,
    Int2,
    Bool,
    Float8,
    Float4,
    Bytea,
    Uuid,
    Timestamptz,
    Text,
}

impl Kind {
    fn of(type_name: &str) -> Self {
        match type_name {
            "INT8" => Kind::Int8,
            "INT4" => Kind::Int4,
            "INT2" => Kind::Int2,
            "BOOL" => Kind::Bool,
            "FLOAT8" => Kind::Float8,
            "FLOAT4" => Kind::Float4,
            "BYTEA" => Kind::Bytea,
            "UUID" => Kind::Uuid,
            "TIMESTAMPTZ" => Kind::Timestamptz,
            _ => Kind::Text,
        }
    }
}

/// Decode all rows of one result. Column types are looked at once, not per value:
/// listing 10,000 data files spent most of its time in per-value type checks.
fn decode_rows(rows: &[PgRow]) -> Result<Vec<SqlRow>> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let kinds: Vec<Kind> = first
        .columns()
        .iter()
        .map(|c| Kind::of(c.type_info().name()))
        .collect();
    rows.iter().map(|row| decode_row(row, &kinds)).collect()
}

/// One value as a PostgreSQL `T`.
fn dec<'r, T: Decode<'r, Postgres>>(raw: PgValueRef<'r>) -> std::result::Result<T, BoxDynError> {
    T::decode(raw)
}

fn decode_row(row: &PgRow, kinds: &[Kind]) -> Result<SqlRow> {
    let mut out = Vec::with_capacity(kinds.len());
    for (i, kind) in kinds.iter().enumerate() {
        let raw = row
            .try_get_raw(i)
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        if raw.is_null() {
            out.push(SqlValue::Null);
            continue;
        }
        let e = |e: BoxDynError| {
            Error::Corrupt(format!("PostgreSQL value of column {i} ({kind:?}): {e}"))
        };
        let value = match kind {
            Kind::Int8 => SqlValue::Int(dec::<i64>(raw).map_err(e)?),
            Kind::Int4 => SqlValue::Int(i64::from(dec::<i32>(raw).map_err(e)?)),
            Kind::Int2 => SqlValue::Int(i64::from(dec::<i16>(raw).map_err(e)?)),
            Kind::Bool => SqlValue::Bool(dec::<bool>(raw).map_err(e)?),
            Kind::Float8 => SqlValue::Float(dec::<f64>(raw).map_err(e)?),
            Kind::Float4 => SqlValue::Float(f64::from(dec::<f32>(raw).map_err(e)?)),
            Kind::Bytea => SqlValue::Blob(dec::<Vec<u8>>(raw).map_err(e)?),
            Kind::Uuid => SqlValue::Text(dec::<uuid::Uuid>(raw).map_err(e)?.to_string()),
            Kind::Timestamptz => SqlValue::Timestamp(dec::<DateTime<Utc>>(raw).map_err(e)?),
            Kind::Text => SqlValue::Text(dec::<String>(raw).map_err(e)?),
        };
        out.push(value);
    }
    Ok(SqlRow(out))
}

#[async_trait]
impl SqlBackend for PgBackend {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(name))
    }

    async fn query(&self, sql: &str) -> Result<Vec<SqlRow>> {
        let rows = sqlx::query(AssertSqlSafe(sql.to_owned()))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        decode_rows(&rows)
    }

    async fn execute_batch(&self, sql: &str) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        sqlx::raw_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    async fn table_exists(&self, name: &str) -> Result<bool> {
        // to_regclass instead of information_schema.tables: 0.1 ms instead of 0.3 ms, and
        // ~1 ms less on a new connection (which must first load that view's definition).
        sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(self.table(name))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))
    }

    async fn table_columns(&self, name: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        )
        .bind(&self.schema)
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(|e| self.err(e)))
            .collect()
    }
}
