//! PostgreSQL catalog backend: the `ducklake_*` tables live in one schema
//! (`METADATA_SCHEMA`, default `public`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow, PgValueRef, Postgres};
use sqlx::{AssertSqlSafe, Column, Decode, Row, TypeInfo, ValueRef};

use super::fork::CatalogFork;
use super::location::redact;
use super::{Dialect, SqlBackend, SqlRow, SqlValue, quote_ident};
use crate::error::{Error, Result};

/// A PostgreSQL catalog schema.
#[derive(Debug)]
pub struct PgBackend {
    pool: PgPool,
    schema: String,
    location: String,
    /// For a transaction's working copy: the connection that holds the
    /// transaction's advisory lock (see [`PgBackend::fork`]). It is closed, and
    /// the lock released, when the working copy is dropped or the process dies.
    _txn_lock: Option<std::sync::Mutex<sqlx::PgConnection>>,
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
    // Through sqlx's own parser (a `postgres://?key=value&...` URL of the same
    // pairs), so sslmode, options, PGPASSWORD and ~/.pgpass work as sqlx knows
    // them; every libpq key lakeq does not pass on is refused by name.
    let invalid = |reason: String| Error::InvalidLocation {
        location: redact(conninfo),
        reason,
    };
    let mut query = Vec::new();
    for (key, value) in super::location::conninfo_pairs(trimmed).map_err(invalid)? {
        let key = match key.as_str() {
            "host" | "hostaddr" | "port" | "dbname" | "user" | "password" | "application_name"
            | "sslmode" | "sslrootcert" | "sslcert" | "sslkey" | "options" => key,
            "database" => "dbname".to_string(),
            // Applied to the pool by `connect` (see `connect_timeout`).
            "connect_timeout" => continue,
            other => return Err(invalid(format!("unknown connection parameter '{other}'"))),
        };
        if key == "sslmode"
            && ![
                "disable",
                "allow",
                "prefer",
                "require",
                "verify-ca",
                "verify-full",
            ]
            .contains(&value.as_str())
        {
            return Err(invalid(format!(
                "sslmode '{value}' (disable, allow, prefer, require, verify-ca, verify-full)"
            )));
        }
        query.push(format!(
            "{}={}",
            percent_encode(&key),
            percent_encode(&value)
        ));
    }
    let url = format!("postgres://?{}", query.join("&"));
    let options: PgConnectOptions = url
        .parse()
        .map_err(|e: sqlx::Error| invalid(e.to_string()))?;
    Ok(options)
}

/// Percent-encode everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `connect_timeout` of a libpq string (seconds), if given.
pub fn connect_timeout(conninfo: &str) -> std::result::Result<Option<Duration>, String> {
    let trimmed = conninfo.trim();
    if trimmed.contains("://") {
        return Ok(None);
    }
    for (k, v) in super::location::conninfo_pairs(trimmed)? {
        if k == "connect_timeout" {
            let secs: u64 = v
                .parse()
                .map_err(|_| format!("connect_timeout '{v}' is not a number of seconds"))?;
            return Ok(Some(Duration::from_secs(secs.max(2))));
        }
    }
    Ok(None)
}

impl PgBackend {
    /// Connect and make sure the metadata schema exists.
    pub async fn connect(conninfo: &str, schema: &str) -> Result<Self> {
        let location = format!("ducklake:postgres:{} (schema {schema})", redact(conninfo));
        let options = connect_options(conninfo)?;
        let timeout = connect_timeout(conninfo)
            .map_err(|reason| Error::InvalidLocation {
                location: redact(conninfo),
                reason,
            })?
            .unwrap_or(Duration::from_secs(30));
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(timeout)
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
            _txn_lock: None,
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

    /// The `ducklake_*` tables of the metadata schema with their columns.
    async fn catalog_tables(&self) -> Result<Vec<(String, Vec<String>)>> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = $1 AND table_name LIKE 'ducklake%' ORDER BY table_name",
        )
        .bind(&self.schema)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let columns = self.table_columns(&name).await?;
            out.push((name, columns));
        }
        Ok(out)
    }

    /// Drop the scratch schemas of transactions whose process is gone: every
    /// `lakeq_txn_<id>_base/_work` pair whose advisory lock (see
    /// [`PgBackend::fork`]) nobody holds. The lock is taken while dropping, so a
    /// live transaction's schemas are never touched. Best effort: a schema this
    /// role may not drop stays (nothing reads it).
    pub async fn drop_abandoned_forks(&self) -> Result<Vec<String>> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'lakeq\\_txn\\_%' \
             ORDER BY nspname",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut ids: Vec<&str> = names.iter().filter_map(|n| fork_id(n)).collect();
        ids.dedup();
        let mut dropped = Vec::new();
        if ids.is_empty() {
            return Ok(dropped);
        }
        let mut conn = self.pool.acquire().await.map_err(|e| self.err(e))?;
        for id in ids {
            let Some(key) = super::fork::lock_key(id) else {
                continue;
            };
            let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| self.err(e))?;
            if !free {
                continue;
            }
            let (base, work) = fork_schemas(id);
            let drop = sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {} CASCADE; DROP SCHEMA IF EXISTS {} CASCADE;",
                quote_ident(&base),
                quote_ident(&work)
            )))
            .execute(&mut *conn)
            .await;
            let unlocked = sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
                .bind(key)
                .fetch_one(&mut *conn)
                .await;
            if unlocked.is_err() {
                // The lock's session is in doubt: never hand it back to the pool.
                let _ = conn.detach();
                return Ok(dropped);
            }
            if drop.is_ok() {
                dropped.push(id.to_string());
            }
        }
        Ok(dropped)
    }
}

/// The transaction id of a scratch schema name `lakeq_txn_<id>_base` / `_work`.
fn fork_id(schema: &str) -> Option<&str> {
    let rest = schema.strip_prefix("lakeq_txn_")?;
    let id = rest
        .strip_suffix("_base")
        .or_else(|| rest.strip_suffix("_work"))?;
    super::fork::lock_key(id).map(|_| id)
}

/// The scratch schemas (base, working copy) of transaction `id`.
fn fork_schemas(id: &str) -> (String, String) {
    (
        format!("lakeq_txn_{id}_base"),
        format!("lakeq_txn_{id}_work"),
    )
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

    async fn fork(&self) -> Result<CatalogFork> {
        // Scratch schemas left by killed processes go first (their locks are free).
        self.drop_abandoned_forks().await?;
        let tables = self.catalog_tables().await?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (base, work) = fork_schemas(&id);
        // The transaction's advisory lock, on a connection of its own held for the
        // transaction's lifetime, is taken before its schemas exist: whoever finds
        // the schemas and can take the lock knows their process is gone.
        let key = super::fork::lock_key(&id)
            .ok_or_else(|| Error::Corrupt(format!("transaction id '{id}'")))?;
        let mut lock = self.pool.acquire().await.map_err(|e| self.err(e))?.detach();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut lock)
            .await
            .map_err(|e| self.err(e))?;
        if !locked {
            return Err(Error::Corrupt(format!(
                "the advisory lock of new transaction {id} is held by another session"
            )));
        }
        let mut sql = vec![
            format!("CREATE SCHEMA {}", quote_ident(&base)),
            format!("CREATE SCHEMA {}", quote_ident(&work)),
        ];
        for (name, _) in &tables {
            let real = self.table(name);
            for copy in [&base, &work] {
                let t = format!("{}.{}", quote_ident(copy), quote_ident(name));
                sql.push(format!("CREATE TABLE {t} (LIKE {real} INCLUDING ALL)"));
                sql.push(format!("INSERT INTO {t} SELECT * FROM {real}"));
            }
        }
        // One REPEATABLE READ transaction: both copies see the same instant.
        self.execute_batch(&(sql.join(";\n") + ";")).await?;
        Ok(CatalogFork {
            work: std::sync::Arc::new(PgBackend {
                pool: self.pool.clone(),
                schema: work.clone(),
                location: self.location.clone(),
                _txn_lock: Some(std::sync::Mutex::new(lock)),
            }),
            base_location: base,
            work_location: work,
            tables,
            lock: None,
        })
    }

    async fn merge_fork(&self, fork: &CatalogFork) -> Result<()> {
        let qualify = |schema: &str, t: &str| format!("{}.{}", quote_ident(schema), quote_ident(t));
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = $1 AND table_name LIKE 'ducklake%' ORDER BY table_name",
        )
        .bind(&fork.work_location)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        // Inlined-data tables the transaction dropped (flushed older versions).
        let dropped = super::fork::dropped_tables(&fork.tables, &names);
        let mut sql = super::fork::merge_sql_dropping(
            Dialect::Postgres,
            &fork.tables,
            &dropped,
            &|t| self.table(t),
            &|t| qualify(&fork.base_location, t),
            &|t| qualify(&fork.work_location, t),
        );
        // Catalog tables the transaction created (inlined data and deletions).
        for name in names {
            if fork.tables.iter().any(|(known, _)| *known == name) {
                continue;
            }
            let (real, work) = (self.table(&name), qualify(&fork.work_location, &name));
            sql.push_str(&format!(
                "\nCREATE TABLE IF NOT EXISTS {real} (LIKE {work} INCLUDING ALL);\nINSERT INTO {real} SELECT * FROM {work};"
            ));
        }
        self.execute_batch(&sql).await
    }

    async fn drop_fork(&self, fork: &CatalogFork) {
        let _ = sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE; DROP SCHEMA IF EXISTS {} CASCADE;",
            quote_ident(&fork.base_location),
            quote_ident(&fork.work_location)
        )))
        .execute(&self.pool)
        .await;
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

#[cfg(test)]
mod conninfo_tests {
    use super::*;
    use sqlx::postgres::PgSslMode;

    #[test]
    fn libpq_strings_keep_every_setting() {
        let o = connect_options(
            "host=db.example port = 6543 dbname='my db' user=lake password='p w' \
             sslmode=verify-full application_name=lakeq options='-c search_path=cat' \
             connect_timeout=7",
        )
        .unwrap();
        assert_eq!(o.get_host(), "db.example");
        assert_eq!(o.get_port(), 6543);
        assert_eq!(o.get_database(), Some("my db"));
        assert_eq!(o.get_username(), "lake");
        assert!(matches!(o.get_ssl_mode(), PgSslMode::VerifyFull));
        assert_eq!(o.get_application_name(), Some("lakeq"));
        assert_eq!(o.get_options(), Some("-c search_path=cat"));
        assert_eq!(
            connect_timeout("host=h connect_timeout=7").unwrap(),
            Some(Duration::from_secs(7))
        );
        for bad in ["sslmode=sometimes", "bogus=1", "host", "password='open"] {
            let e = connect_options(bad).unwrap_err().to_string();
            assert!(!e.contains("open") || !bad.contains("password"), "{e}");
        }
        assert!(
            connect_options("sslmode=sometimes")
                .unwrap_err()
                .to_string()
                .contains("sslmode")
        );
    }
}
