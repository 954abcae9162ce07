//! SQL models: the bundled project end to end (values checked against formulas
//! computed independently by DuckDB, and DuckDB reading every model lakeq
//! wrote), the formulas on hand-made edge cases, incremental models, selection,
//! failure isolation, cycles and bad Jinja. SQLite and PostgreSQL catalogs.

use std::path::{Path, PathBuf};

use crate::common::{
    Backend, OracleQuery, TestResult, canonical, compare_with_oracle, copy_dir, create_pg_database,
    duckdb_run, lakeq_cli, lakeq_cli_err, scratch_dir,
};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run_ok(dir: &Path, args: &[&str]) -> TestResult<String> {
    let out = lakeq_cli(dir, args)?;
    if !out.status.success() {
        return Err(format!(
            "lakeq {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Copy the bundled `models/` and `tests/*.sql` into `dir`.
pub fn copy_bundled_models(dir: &Path) -> TestResult {
    copy_dir(&Path::new(ROOT).join("models"), &dir.join("models"))?;
    std::fs::create_dir_all(dir.join("tests"))?;
    for entry in std::fs::read_dir(Path::new(ROOT).join("tests"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "sql") {
            std::fs::copy(
                &path,
                dir.join("tests").join(path.file_name().ok_or("name")?),
            )?;
        }
    }
    Ok(())
}

/// A project folder with the bundled `models/` and `tests/*.sql`; on PostgreSQL
/// a lakeq.toml puts the raw and analytics catalogs in a fresh database.
/// Returns the folder and DuckDB's ATTACH statements for `raw` and `dev_analytics`.
async fn bundled_project(backend: Backend, name: &str) -> TestResult<(PathBuf, Vec<String>)> {
    let dir = scratch_dir(name);
    copy_bundled_models(&dir)?;
    let attach = match backend {
        Backend::Sqlite => ["raw", "dev_analytics"]
            .iter()
            .map(|l| {
                format!(
                    "ATTACH 'ducklake:sqlite:{}/lake/{l}.sqlite' AS {l}",
                    dir.display()
                )
            })
            .collect(),
        Backend::Postgres => {
            let db = create_pg_database(name).await?;
            let catalog = format!("ducklake:postgres:dbname={db} host=127.0.0.1 user=postgres");
            let mut toml = "landing = \"lake/landing\"\n".to_string();
            let mut attach = Vec::new();
            for l in ["raw", "dev_analytics"] {
                toml.push_str(&format!(
                    "[lakes.{l}]\ncatalog = \"{catalog}\"\nmetadata_schema = \"{l}\"\ndata_path = \"{}/lake/{l}/\"\n",
                    dir.display()
                ));
                attach.push(format!("ATTACH '{catalog}' AS {l} (METADATA_SCHEMA '{l}')"));
            }
            toml.push_str("[project]\nname = \"saas\"\n[targets.dev]\nlake = \"dev_analytics\"\n");
            std::fs::write(dir.join("lakeq.toml"), toml)?;
            attach
        }
    };
    Ok((dir, attach))
}

/// A lakeq session with the same lakes attached under the same names.
async fn session(attach: &[String]) -> TestResult<lakeq::Session> {
    let s = lakeq::Session::new();
    for a in attach {
        s.sql(a).await?;
    }
    Ok(s)
}

/// Every model, read back in a fixed order (views are run by each engine).
pub const MODEL_QUERIES: &[(&str, &str)] = &[
    (
        "stg_users",
        "SELECT * FROM dev_analytics.staging.stg_users ORDER BY user_id",
    ),
    (
        "stg_events",
        "SELECT * FROM dev_analytics.staging.stg_events ORDER BY event_id",
    ),
    (
        "stg_invoices",
        "SELECT * FROM dev_analytics.staging.stg_invoices ORDER BY invoice_id",
    ),
    (
        "stg_tickets",
        "SELECT * FROM dev_analytics.staging.stg_tickets ORDER BY ticket_id",
    ),
    (
        "int_revenue_by_user",
        "SELECT * FROM dev_analytics.intermediate.int_revenue_by_user ORDER BY user_id",
    ),
    (
        "int_user_events_sessionized",
        "SELECT * FROM dev_analytics.intermediate.int_user_events_sessionized ORDER BY event_id",
    ),
    (
        "dim_users",
        "SELECT * FROM dev_analytics.marts.dim_users ORDER BY user_id",
    ),
    (
        "fct_daily_active_users",
        "SELECT * FROM dev_analytics.marts.fct_daily_active_users ORDER BY event_date",
    ),
    (
        "fct_revenue",
        "SELECT * FROM dev_analytics.marts.fct_revenue ORDER BY invoice_date, plan, country, status",
    ),
];

/// The marts computed by DuckDB straight from the raw lake, written
/// independently of the models (QUALIFY, epoch_us, integer gap arithmetic),
/// following ../shared/data-model.md section 3.
const EXPECTED_MARTS: &str = "
query dim_users
WITH u AS (
  SELECT user_id, lower(trim(email)) AS email, full_name, country, plan, signup_at, is_active
  FROM raw.saas.users
  QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY updated_at DESC, _lakeq_load_id DESC, _lakeq_id DESC) = 1
), inv AS (
  SELECT user_id, count(*) AS invoice_count, sum(amount) FILTER (WHERE status = 'paid') AS paid
  FROM raw.saas.invoices GROUP BY ALL
), t AS (
  SELECT user_id, count(*) AS tickets, count(*) FILTER (WHERE status IN ('open', 'pending')) AS open_tickets,
         avg(satisfaction_score::DOUBLE) AS sat,
         avg((epoch_us(resolved_at)::DOUBLE / 1e6 - epoch_us(created_at)::DOUBLE / 1e6) / 3600.0) AS hours
  FROM raw.saas.support_tickets GROUP BY ALL
), e AS (
  SELECT user_id, event_at, sum(CASE WHEN prev IS NULL OR epoch_us(event_at) - epoch_us(prev) > 1800000000 THEN 1 ELSE 0 END)
           OVER (PARTITION BY user_id ORDER BY event_at, event_id ROWS UNBOUNDED PRECEDING) AS session_number
  FROM (SELECT *, lag(event_at) OVER (PARTITION BY user_id ORDER BY event_at, event_id) AS prev FROM raw.saas.events)
), ea AS (
  SELECT user_id, count(*) AS n, count(DISTINCT session_number) AS sessions, min(event_at) AS first_at, max(event_at) AS last_at
  FROM e GROUP BY ALL
)
SELECT u.user_id, u.email, u.full_name, u.country, u.plan, u.signup_at, u.is_active,
       coalesce(inv.paid, 0)::DECIMAL(18, 2) AS lifetime_revenue, coalesce(inv.invoice_count, 0) AS invoice_count,
       coalesce(t.tickets, 0) AS ticket_count, coalesce(t.open_tickets, 0) AS open_ticket_count,
       t.sat AS avg_satisfaction, t.hours AS avg_resolution_hours,
       coalesce(ea.n, 0) AS total_events, coalesce(ea.sessions, 0) AS total_sessions, ea.first_at AS first_event_at, ea.last_at AS last_event_at
FROM u LEFT JOIN inv USING (user_id) LEFT JOIN t USING (user_id) LEFT JOIN ea USING (user_id)
ORDER BY user_id

query fct_daily_active_users
WITH e AS (
  SELECT *, user_id::VARCHAR || '-' || sum(CASE WHEN prev IS NULL OR epoch_us(event_at) - epoch_us(prev) > 1800000000 THEN 1 ELSE 0 END)
           OVER (PARTITION BY user_id ORDER BY event_at, event_id ROWS UNBOUNDED PRECEDING)::VARCHAR AS session_id
  FROM (SELECT *, lag(event_at) OVER (PARTITION BY user_id ORDER BY event_at, event_id) AS prev FROM raw.saas.events)
)
SELECT event_at::DATE AS event_date, count(DISTINCT user_id) AS active_users, count(DISTINCT session_id) AS sessions,
       count(*) AS total_events,
       count(*) FILTER (WHERE event_type = 'page_view') AS page_views, count(*) FILTER (WHERE event_type = 'login') AS logins,
       count(*) FILTER (WHERE event_type = 'feature_used') AS feature_uses, count(*) FILTER (WHERE event_type = 'signup') AS signups,
       count(*) FILTER (WHERE event_type = 'upgrade') AS upgrades, count(*) FILTER (WHERE event_type = 'downgrade') AS downgrades
FROM e GROUP BY 1 ORDER BY 1

query fct_revenue
WITH u AS (
  SELECT user_id, country FROM raw.saas.users
  QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY updated_at DESC, _lakeq_load_id DESC, _lakeq_id DESC) = 1
)
SELECT i.issued_at::DATE AS invoice_date, i.plan, u.country, i.status, count(*) AS invoice_count,
       sum(i.amount) AS total_amount, count(DISTINCT i.user_id) AS paying_users
FROM raw.saas.invoices i JOIN u USING (user_id)
GROUP BY ALL ORDER BY invoice_date, plan, country, status
";

/// Render a lakeq query result as the oracle does.
async fn lakeq_rows(s: &lakeq::Session, sql: &str) -> TestResult<Vec<Vec<String>>> {
    Ok(canonical::render_batches(&s.sql(sql).await?)?.1)
}

async fn bundled_end_to_end(backend: Backend, name: &str) -> TestResult {
    let (dir, attach) = bundled_project(backend, name).await?;
    run_ok(
        &dir,
        &[
            "generate",
            "--batches",
            "2",
            "--users",
            "300",
            "--events",
            "6000",
            "--invoices",
            "600",
            "--tickets",
            "200",
        ],
    )?;
    let out = run_ok(&dir, &["run", "0"])?;
    assert!(out.contains("9 models built"), "{out}");
    assert!(out.contains("tests passed"), "{out}");
    // `lakeq sql` in the project folder sees the lakes the project configures
    // (for PostgreSQL only lakeq.toml says where they are).
    let counts = run_ok(
        &dir,
        &[
            "sql",
            "--format",
            "csv",
            "-c",
            "SELECT (SELECT count(*) FROM dev_analytics.marts.dim_users) = (SELECT count(DISTINCT user_id) FROM raw.saas.users) AS same, (SELECT count(*) FROM dev_analytics.marts.dim_users) > 0 AS some",
        ],
    )?;
    assert_eq!(counts.trim(), "same,some\ntrue,true", "{counts}");
    // Maintenance merged the two batches' files of each landing table into one.
    assert!(out.contains("raw: 8 files merged into 4"), "{out}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("target/run_results.json"))?)?;
    let statuses: Vec<&str> = results["results"]
        .as_array()
        .ok_or("results")?
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == "success" || *s == "pass"),
        "{statuses:?}"
    );
    assert!(dir.join("target/manifest.json").exists());

    // DuckDB attaches both lakes under the same names and reads every model.
    let script = dir.join("models.slt");
    let mut text = String::new();
    for (label, sql) in MODEL_QUERIES {
        text.push_str(&format!("query {label}\n{sql}\n\n"));
    }
    std::fs::write(&script, &text)?;
    let duck = duckdb_run(&attach, &script)?;
    assert_eq!(duck.len(), MODEL_QUERIES.len());
    for q in &duck {
        assert!(!q.rows.is_empty(), "model {} is empty", q.label);
    }
    let s = session(&attach).await?;
    let problems = compare_with_oracle(&s, &duck).await;
    assert!(
        problems.is_empty(),
        "lakeq and DuckDB disagree:\n{}",
        problems.join("\n")
    );

    // The marts hold exactly what the data model defines.
    let script = dir.join("expected.slt");
    std::fs::write(&script, EXPECTED_MARTS)?;
    let expected: Vec<OracleQuery> = duckdb_run(&attach, &script)?;
    for q in expected {
        let sql = MODEL_QUERIES
            .iter()
            .find(|(l, _)| *l == q.label)
            .map(|(_, s)| *s)
            .ok_or("label")?;
        let got = lakeq_rows(&s, sql).await?;
        assert_eq!(got.len(), q.rows.len(), "{}: row count", q.label);
        for (i, (a, b)) in got.iter().zip(&q.rows).enumerate() {
            assert_eq!(a, b, "{} row {i} differs from the data model", q.label);
        }
    }

    // A second run with no new data rebuilds the same marts.
    run_ok(&dir, &["run", "0"])?;
    let again = lakeq_rows(&s, MODEL_QUERIES[6].1).await?;
    assert_eq!(again, lakeq_rows(&s, MODEL_QUERIES[6].1).await?);
    // Every raw table is one data file (the merges kept it so).
    let files = lakeq_rows(
        &s,
        "SELECT table_name, file_count FROM ducklake_table_info('raw')",
    )
    .await?;
    assert_eq!(files.len(), 6, "{files:?}");
    assert!(files.iter().all(|r| r[1] == "1"), "{files:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_project_end_to_end_sqlite() -> TestResult {
    bundled_end_to_end(Backend::Sqlite, "models_e2e_sqlite").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_project_end_to_end_postgres() -> TestResult {
    bundled_end_to_end(Backend::Postgres, "models_e2e_pg").await
}

/// A project folder with the bundled models and a raw lake made by hand.
async fn hand_made_raw(name: &str, statements: &[&str]) -> TestResult<(PathBuf, lakeq::Session)> {
    let (dir, _) = bundled_project(Backend::Sqlite, name).await?;
    let s = lakeq::Session::new();
    s.sql(&format!(
        "ATTACH 'ducklake:sqlite:{d}/lake/raw.sqlite' AS raw (DATA_PATH '{d}/lake/raw/')",
        d = dir.display()
    ))
    .await?;
    s.sql("CREATE SCHEMA raw.saas").await?;
    for st in statements {
        s.sql(st).await?;
    }
    Ok((dir, s))
}

const RAW_TABLES: &[&str] = &[
    "CREATE TABLE raw.saas.users (user_id BIGINT NOT NULL, email VARCHAR, full_name VARCHAR, country VARCHAR, plan VARCHAR, signup_at TIMESTAMP, is_active BOOLEAN, updated_at TIMESTAMP, _lakeq_load_id VARCHAR, _lakeq_id VARCHAR, _lakeq_source_file VARCHAR)",
    "CREATE TABLE raw.saas.events (event_id VARCHAR NOT NULL, user_id BIGINT NOT NULL, event_type VARCHAR, event_at TIMESTAMP, page VARCHAR, feature VARCHAR, device VARCHAR, _lakeq_load_id VARCHAR, _lakeq_id VARCHAR, _lakeq_source_file VARCHAR)",
    "CREATE TABLE raw.saas.invoices (invoice_id VARCHAR NOT NULL, user_id BIGINT NOT NULL, issued_at TIMESTAMP, amount DECIMAL(12, 2), currency VARCHAR, plan VARCHAR, status VARCHAR, _lakeq_load_id VARCHAR, _lakeq_id VARCHAR, _lakeq_source_file VARCHAR)",
    "CREATE TABLE raw.saas.support_tickets (ticket_id VARCHAR NOT NULL, user_id BIGINT NOT NULL, created_at TIMESTAMP, resolved_at TIMESTAMP, priority VARCHAR, category VARCHAR, status VARCHAR, satisfaction_score INT, _lakeq_load_id VARCHAR, _lakeq_id VARCHAR, _lakeq_source_file VARCHAR)",
    // User 1: three versions with the same updated_at; the greatest load id, then row id, wins.
    // User 2: no events, invoices or tickets. User 3: only an open invoice.
    "INSERT INTO raw.saas.users VALUES
      (1, 'old@x.com', 'Ann', 'US', 'free', TIMESTAMP '2025-12-01 00:00:00', true, TIMESTAMP '2026-01-31 00:00:00', 'L1', 'z', 'f'),
      (1, ' Ann.B@Example.COM ', 'Ann B', 'DE', 'pro', TIMESTAMP '2025-12-01 00:00:00', true, TIMESTAMP '2026-01-31 00:00:00', 'L2', 'a', 'f'),
      (1, 'Ann.C@Example.com', 'Ann C', 'FR', 'pro', TIMESTAMP '2025-12-01 00:00:00', true, TIMESTAMP '2026-01-31 00:00:00', 'L2', 'b', 'f'),
      (1, 'older@x.com', 'Ann', 'US', 'free', TIMESTAMP '2025-12-01 00:00:00', true, TIMESTAMP '2026-01-01 00:00:00', 'L3', 'y', 'f'),
      (2, 'bo@x.com', 'Bo', 'US', 'free', TIMESTAMP '2025-12-02 00:00:00', false, TIMESTAMP '2026-01-31 00:00:00', 'L1', 'c', 'f'),
      (3, 'cy@x.com', 'Cy', 'BR', 'starter', TIMESTAMP '2025-12-03 00:00:00', true, TIMESTAMP '2026-01-31 00:00:00', 'L1', 'd', 'f')",
    // User 1: gaps of exactly 1,800 s (same session) and 1,801 s (new session);
    // two events at the same instant are ordered by event_id. User 3: one event the next day.
    "INSERT INTO raw.saas.events VALUES
      ('e1', 1, 'login', TIMESTAMP '2026-01-05 10:00:00', NULL, NULL, 'desktop', 'L1', 'r1', 'f'),
      ('e2', 1, 'page_view', TIMESTAMP '2026-01-05 10:30:00', '/home', NULL, 'desktop', 'L1', 'r2', 'f'),
      ('e3', 1, 'feature_used', TIMESTAMP '2026-01-05 11:00:01', NULL, 'export', 'desktop', 'L1', 'r3', 'f'),
      ('e4', 1, 'upgrade', TIMESTAMP '2026-01-05 11:00:01', NULL, NULL, 'mobile', 'L1', 'r4', 'f'),
      ('e5', 3, 'signup', TIMESTAMP '2026-01-06 23:59:59.999999', NULL, NULL, 'tablet', 'L1', 'r5', 'f')",
    "INSERT INTO raw.saas.invoices VALUES
      ('i1', 1, TIMESTAMP '2026-01-05 12:00:00', 10.00, 'USD', 'pro', 'paid', 'L1', 'r1', 'f'),
      ('i2', 1, TIMESTAMP '2026-01-06 12:00:00', 5.50, 'USD', 'pro', 'open', 'L1', 'r2', 'f'),
      ('i3', 3, TIMESTAMP '2026-01-06 12:00:00', 7.25, 'USD', 'starter', 'open', 'L1', 'r3', 'f')",
    "INSERT INTO raw.saas.support_tickets VALUES
      ('t1', 1, TIMESTAMP '2026-01-05 00:00:00', TIMESTAMP '2026-01-05 01:30:00', 'low', 'bug', 'resolved', 4, 'L1', 'r1', 'f'),
      ('t2', 1, TIMESTAMP '2026-01-05 00:00:00', NULL, 'high', 'billing', 'pending', NULL, 'L1', 'r2', 'f'),
      ('t3', 3, TIMESTAMP '2026-01-05 00:00:00', TIMESTAMP '2026-01-05 00:00:00.000001', 'low', 'bug', 'closed', NULL, 'L1', 'r3', 'f')",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formulas_on_hand_made_inputs() -> TestResult {
    let (dir, _raw) = hand_made_raw("models_formulas", RAW_TABLES).await?;
    run_ok(&dir, &["build"])?;
    let s = session(&[
        format!(
            "ATTACH 'ducklake:sqlite:{}/lake/raw.sqlite' AS raw",
            dir.display()
        ),
        format!(
            "ATTACH 'ducklake:sqlite:{}/lake/dev_analytics.sqlite' AS dev_analytics",
            dir.display()
        ),
    ])
    .await?;
    let users = lakeq_rows(
        &s,
        "SELECT user_id, email, country, lifetime_revenue, invoice_count, ticket_count, open_ticket_count, \
         avg_satisfaction, avg_resolution_hours, total_events, total_sessions, first_event_at, last_event_at \
         FROM dev_analytics.marts.dim_users ORDER BY user_id",
    )
    .await?;
    let row = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        users,
        vec![
            row(&[
                "1",
                "ann.c@example.com",
                "FR",
                "10.00",
                "2",
                "2",
                "1",
                "4.000000",
                "1.500000",
                "4",
                "2",
                "2026-01-05 10:00:00.000000",
                "2026-01-05 11:00:01.000000"
            ]),
            row(&[
                "2", "bo@x.com", "US", "0.00", "0", "0", "0", "NULL", "NULL", "0", "0", "NULL",
                "NULL"
            ]),
            row(&[
                "3",
                "cy@x.com",
                "BR",
                "0.00",
                "1",
                "1",
                "0",
                "NULL",
                "0.000000",
                "1",
                "1",
                "2026-01-06 23:59:59.999999",
                "2026-01-06 23:59:59.999999"
            ]),
        ]
    );
    // Exactly 1 µs in hours, computed from epoch seconds as doubles.
    let hours = s
        .sql("SELECT avg_resolution_hours FROM dev_analytics.marts.dim_users WHERE user_id = 3")
        .await?;
    let value = hours[0]
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Float64Array>()
        .ok_or("double")?
        .value(0);
    let expected = (1_767_571_200_000_001_f64 / 1e6 - 1_767_571_200_f64) / 3600.0;
    assert!(
        (value - expected).abs() <= expected.abs() * 1e-9,
        "{value} vs {expected}"
    );

    let sessions = lakeq_rows(
        &s,
        "SELECT event_id, session_number, session_id FROM dev_analytics.intermediate.int_user_events_sessionized ORDER BY event_id",
    )
    .await?;
    assert_eq!(
        sessions,
        vec![
            row(&["e1", "1", "1-1"]),
            row(&["e2", "1", "1-1"]),
            row(&["e3", "2", "1-2"]),
            row(&["e4", "2", "1-2"]),
            row(&["e5", "1", "3-1"]),
        ]
    );
    let daily = lakeq_rows(
        &s,
        "SELECT * FROM dev_analytics.marts.fct_daily_active_users ORDER BY event_date",
    )
    .await?;
    assert_eq!(
        daily,
        vec![
            row(&["2026-01-05", "1", "2", "4", "1", "1", "1", "0", "1", "0"]),
            row(&["2026-01-06", "1", "1", "1", "0", "0", "0", "1", "0", "0"]),
        ]
    );
    let revenue = lakeq_rows(
        &s,
        "SELECT * FROM dev_analytics.marts.fct_revenue ORDER BY invoice_date, plan, status",
    )
    .await?;
    assert_eq!(
        revenue,
        vec![
            row(&["2026-01-05", "pro", "FR", "paid", "1", "10.00", "1"]),
            row(&["2026-01-06", "pro", "FR", "open", "1", "5.50", "1"]),
            row(&["2026-01-06", "starter", "BR", "open", "1", "7.25", "1"]),
        ]
    );
    let rev = lakeq_rows(
        &s,
        "SELECT * FROM dev_analytics.intermediate.int_revenue_by_user ORDER BY user_id",
    )
    .await?;
    assert_eq!(
        rev,
        vec![
            row(&[
                "1",
                "2",
                "1",
                "10.00",
                "2026-01-05 12:00:00.000000",
                "2026-01-06 12:00:00.000000"
            ]),
            row(&[
                "3",
                "1",
                "0",
                "0.00",
                "2026-01-06 12:00:00.000000",
                "2026-01-06 12:00:00.000000"
            ]),
        ]
    );
    Ok(())
}

/// A small project of our own: `src.t` in the raw lake and models written here.
async fn own_project(name: &str, models: &[(&str, &str)]) -> TestResult<(PathBuf, lakeq::Session)> {
    let dir = scratch_dir(name);
    std::fs::create_dir_all(dir.join("models"))?;
    std::fs::write(
        dir.join("models/_sources.yml"),
        "version: 2\nsources:\n  - name: src\n    database: raw\n    schema: src\n    tables:\n      - name: t\n",
    )?;
    for (path, sql) in models {
        let p = dir.join("models").join(path);
        std::fs::create_dir_all(p.parent().ok_or("parent")?)?;
        std::fs::write(p, sql)?;
    }
    let s = lakeq::Session::new();
    for l in ["raw", "dev_analytics"] {
        s.sql(&format!(
            "ATTACH 'ducklake:sqlite:{d}/lake/{l}.sqlite' AS {l} (DATA_PATH '{d}/lake/{l}/')",
            d = dir.display()
        ))
        .await?;
    }
    s.sql("CREATE SCHEMA raw.src").await?;
    s.sql("CREATE TABLE raw.src.t (id BIGINT, v VARCHAR)")
        .await?;
    s.sql("INSERT INTO raw.src.t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        .await?;
    Ok((dir, s))
}

async fn snapshot_id(s: &lakeq::Session) -> TestResult<i64> {
    s.refresh().await?;
    Ok(s.lake("dev_analytics")?.current().snapshot.snapshot_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_models_append_and_delete_insert() -> TestResult {
    let (dir, s) = own_project(
        "models_incremental",
        &[
            (
                "inc/appended.sql",
                "{{ config(materialized='incremental') }}\nselect id, v from {{ source('src', 't') }}\n{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}",
            ),
            (
                "inc/first_three.sql",
                "{{ config(materialized='ephemeral') }}\nselect id, v from {{ source('src', 't') }} where id <= 3",
            ),
            (
                "inc/counted.sql",
                "-- a view over an ephemeral model: inlined as a CTE, DuckDB runs it too\nselect count(*) as n, max(v) as biggest from {{ ref('first_three') }}",
            ),
            (
                "inc/upserted.sql",
                "{{ config(materialized='incremental', unique_key='id') }}\nselect id, v from {{ source('src', 't') }}",
            ),
        ],
    )
    .await?;
    run_ok(&dir, &["transform"])?;
    let before = snapshot_id(&s).await?;
    s.sql("INSERT INTO raw.src.t VALUES (4, 'd')").await?;
    s.sql("UPDATE raw.src.t SET v = 'B' WHERE id = 2").await?;
    run_ok(&dir, &["transform"])?;
    // One snapshot per incremental model; the view's SQL did not change, so it is left as it is,
    // and the ephemeral model is not built at all.
    assert_eq!(snapshot_id(&s).await?, before + 2);
    assert_eq!(
        lakeq_rows(&s, "SELECT n, biggest FROM dev_analytics.inc.counted").await?,
        vec![vec!["3".to_string(), "c".to_string()]]
    );
    let tables = lakeq_rows(
        &s,
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = 'dev_analytics' AND table_name = 'first_three'",
    )
    .await?;
    assert_eq!(tables, vec![vec!["0".to_string()]]);
    let appended = lakeq_rows(
        &s,
        "SELECT id, v FROM dev_analytics.inc.appended ORDER BY id",
    )
    .await?;
    assert_eq!(
        appended,
        vec![
            vec!["1", "a"],
            vec!["2", "b"],
            vec!["3", "c"],
            vec!["4", "d"]
        ]
        .into_iter()
        .map(|r| r.into_iter().map(String::from).collect::<Vec<_>>())
        .collect::<Vec<_>>()
    );
    let upserted = lakeq_rows(
        &s,
        "SELECT id, v FROM dev_analytics.inc.upserted ORDER BY id",
    )
    .await?;
    assert_eq!(upserted.len(), 4);
    assert_eq!(upserted[1], vec!["2".to_string(), "B".to_string()]);
    // DuckDB sees the same rows after the delete+insert.
    let script = dir.join("inc.slt");
    std::fs::write(
        &script,
        "query counted\nSELECT n, biggest FROM dev_analytics.inc.counted\n\nquery upserted\nSELECT id, v FROM dev_analytics.inc.upserted ORDER BY id\n\nquery appended\nSELECT id, v FROM dev_analytics.inc.appended ORDER BY id\n",
    )?;
    let duck = duckdb_run(
        &["raw", "dev_analytics"].map(|l| {
            format!(
                "ATTACH 'ducklake:sqlite:{}/lake/{l}.sqlite' AS {l}",
                dir.display()
            )
        }),
        &script,
    )?;
    let problems = compare_with_oracle(&s, &duck).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // --full-refresh rebuilds the appended model from scratch.
    run_ok(&dir, &["transform", "--full-refresh", "-s", "appended"])?;
    let appended = lakeq_rows(&s, "SELECT v FROM dev_analytics.inc.appended WHERE id = 2").await?;
    assert_eq!(appended, vec![vec!["B".to_string()]]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_model_skips_only_its_descendants() -> TestResult {
    let models = [
        (
            "a.sql",
            "{{ config(materialized='table') }}select id, v from {{ source('src', 't') }}",
        ),
        (
            "b.sql",
            "{{ config(materialized='table') }}select id, v from {{ ref('a') }}",
        ),
        (
            "c.sql",
            "{{ config(materialized='table') }}select id from {{ ref('b') }}",
        ),
        (
            "d.sql",
            "{{ config(materialized='table') }}select count(*) as n from {{ ref('a') }}",
        ),
    ];
    let (dir, s) = own_project("models_failure", &models).await?;
    run_ok(&dir, &["transform", "--threads", "2"])?;
    s.sql("INSERT INTO raw.src.t VALUES (4, 'd')").await?;
    std::fs::write(
        dir.join("models/b.sql"),
        "{{ config(materialized='table') }}\nselect id,\n  no_such_column\nfrom {{ ref('a') }}",
    )?;
    let out = lakeq_cli_err(&dir, &["transform"])?;
    assert!(out.contains("model 'b' (models/b.sql)"), "{out}");
    assert!(out.contains("no_such_column"), "{out}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("target/run_results.json"))?)?;
    let status = |name: &str| -> String {
        results["results"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == name))
            .and_then(|r| r["status"].as_str())
            .unwrap_or("missing")
            .to_string()
    };
    assert_eq!(
        [status("a"), status("b"), status("c"), status("d")],
        ["success", "error", "skipped", "success"]
    );
    // a and d were rebuilt with the new row; b and c keep their previous version.
    assert_eq!(
        lakeq_rows(&s, "SELECT count(*) FROM dev_analytics.main.a").await?,
        vec![vec!["4".to_string()]]
    );
    assert_eq!(
        lakeq_rows(&s, "SELECT n FROM dev_analytics.main.d").await?,
        vec![vec!["4".to_string()]]
    );
    assert_eq!(
        lakeq_rows(&s, "SELECT count(*) FROM dev_analytics.main.b").await?,
        vec![vec!["3".to_string()]]
    );
    assert_eq!(
        lakeq_rows(&s, "SELECT count(*) FROM dev_analytics.main.c").await?,
        vec![vec!["3".to_string()]]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_cycles_and_bad_templates() -> TestResult {
    let models = [
        (
            "staging/s1.sql",
            "{{ config(tags=['daily']) }}select * from {{ source('src', 't') }}",
        ),
        ("staging/s2.sql", "select * from {{ source('src', 't') }}"),
        ("marts/m1.sql", "select * from {{ ref('s1') }}"),
        (
            "marts/m2.sql",
            "select * from {{ ref('m1') }} join {{ ref('s2') }} using (id)",
        ),
    ];
    let (dir, s) = own_project("models_selection", &models).await?;
    let names = |out: String| -> Vec<String> {
        let mut v: Vec<String> = out
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(run_ok(&dir, &["ls", "-s", "+m2"])?),
        ["m1", "m2", "s1", "s2"]
    );
    assert_eq!(
        names(run_ok(&dir, &["ls", "-s", "s1+"])?),
        ["m1", "m2", "s1"]
    );
    assert_eq!(names(run_ok(&dir, &["ls", "-s", "tag:daily"])?), ["s1"]);
    assert_eq!(
        names(run_ok(&dir, &["ls", "-s", "path:models/marts"])?),
        ["m1", "m2"]
    );
    assert_eq!(
        names(run_ok(&dir, &["ls", "-s", "+m2", "--exclude", "s2"])?).len(),
        3
    );
    // Only the selected model is built; its schema comes from its folder.
    run_ok(&dir, &["transform", "-s", "s1"])?;
    // Changing a model's materialization replaces the view by a table (and back), one snapshot each.
    let s1 = "select * from {{ source('src', 't') }}";
    for kind in ["table", "view"] {
        let before = snapshot_id(&s).await?;
        std::fs::write(
            dir.join("models/staging/s1.sql"),
            format!("{{{{ config(materialized='{kind}', tags=['daily']) }}}}{s1}"),
        )?;
        run_ok(&dir, &["transform", "-s", "s1"])?;
        assert_eq!(snapshot_id(&s).await?, before + 1);
        let n = lakeq_rows(&s, "SELECT count(*) FROM dev_analytics.staging.s1").await?;
        assert_eq!(n, vec![vec!["3".to_string()]]);
    }
    // Folder defaults from lakeq.toml; a target writes its own lake.
    std::fs::write(
        dir.join("lakeq.toml"),
        "[models.marts]\nmaterialized = \"table\"\ntags = [\"nightly\"]\n[targets.prod]\nlake = \"prod_analytics\"\n",
    )?;
    let listed = run_ok(&dir, &["ls", "-s", "tag:nightly"])?;
    assert_eq!(names(listed.clone()), ["m1", "m2"]);
    assert!(
        listed.contains("table") && listed.contains("dev_analytics.marts.m1"),
        "{listed}"
    );
    run_ok(&dir, &["transform", "-s", "s2", "--target", "prod"])?;
    let prod = lakeq::Session::new();
    prod.sql(&format!(
        "ATTACH 'ducklake:sqlite:{}/lake/prod_analytics.sqlite' AS prod_analytics",
        dir.display()
    ))
    .await?;
    prod.sql(&format!(
        "ATTACH 'ducklake:sqlite:{}/lake/raw.sqlite' AS raw",
        dir.display()
    ))
    .await?;
    assert_eq!(
        lakeq_rows(&prod, "SELECT count(*) FROM prod_analytics.staging.s2").await?,
        vec![vec!["3".to_string()]]
    );
    let err = lakeq_cli_err(&dir, &["ls", "-s", "m3"])?;
    assert!(
        err.contains("no model 'm3'") && err.contains("'m1'"),
        "{err}"
    );

    // Unknown ref: the closest names.
    std::fs::write(
        dir.join("models/marts/m1.sql"),
        "select * from {{ ref('s_1') }}",
    )?;
    let err = lakeq_cli_err(&dir, &["compile"])?;
    assert!(
        err.contains("models/marts/m1.sql") && err.contains("did you mean 's1'"),
        "{err}"
    );
    // Bad Jinja: file and line.
    std::fs::write(dir.join("models/marts/m1.sql"), "select 1\n{% if %}\n")?;
    let err = lakeq_cli_err(&dir, &["transform"])?;
    assert!(err.contains("models/marts/m1.sql, line 2"), "{err}");
    // A cycle is listed.
    std::fs::write(
        dir.join("models/marts/m1.sql"),
        "select * from {{ ref('m2') }}",
    )?;
    let err = lakeq_cli_err(&dir, &["transform"])?;
    assert!(
        err.contains("cycle: m1 -> m2 -> m1") || err.contains("cycle: m2 -> m1 -> m2"),
        "{err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_stops_descendants_of_a_failed_test_and_templates_see_vars() -> TestResult {
    let models = [
        (
            "a.sql",
            "{{ config(materialized='table') }}select id, v, '{{ var('label', 'none') }}' as label, '{{ env_var('LAKEQ_TEST_MODEL_ENV', 'unset') }}' as env from {{ source('src', 't') }}",
        ),
        ("b.sql", "select id from {{ ref('a') }}"),
        (
            "other.sql",
            "select count(*) as n from {{ source('src', 't') }}",
        ),
        (
            "schema.yml",
            "version: 2\nmodels:\n  - name: a\n    columns:\n      - name: v\n        tests:\n          - accepted_values:\n              values: [a, b]\n",
        ),
    ];
    let (dir, s) = own_project("models_build", &models).await?;
    std::fs::write(dir.join("lakeq.toml"), "[vars]\nlabel = \"from-toml\"\n")?;
    let compiled = run_ok(&dir, &["compile", "-s", "a", "--vars", "{label: from-cli}"])?;
    assert!(compiled.contains("'from-cli' as label"), "{compiled}");
    assert!(compiled.contains("from raw.src.t"), "{compiled}");
    let compiled = run_ok(&dir, &["compile", "-s", "a"])?;
    assert!(compiled.contains("'from-toml' as label"), "{compiled}");

    // v = 'c' fails accepted_values: b (downstream of a) is skipped, other still builds.
    let out = lakeq_cli_err(&dir, &["build"])?;
    assert!(
        out.contains("FAIL") && out.contains("1 failing rows"),
        "{out}"
    );
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("target/run_results.json"))?)?;
    let status = |name: &str| -> String {
        results["results"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == name))
            .and_then(|r| r["status"].as_str())
            .unwrap_or("missing")
            .to_string()
    };
    assert_eq!(
        [
            status("a"),
            status("accepted_values_a_v"),
            status("b"),
            status("other")
        ],
        ["success", "fail", "skipped", "success"]
    );
    assert_eq!(
        lakeq_rows(&s, "SELECT DISTINCT label, env FROM dev_analytics.main.a").await?,
        vec![vec!["from-toml".to_string(), "unset".to_string()]]
    );
    // Once the data is fixed, build passes end to end.
    s.sql("DELETE FROM raw.src.t WHERE v = 'c'").await?;
    run_ok(&dir, &["build"])?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("target/manifest.json"))?)?;
    let b = &manifest["nodes"]["model.lakeq.b"];
    assert_eq!(b["depends_on"]["nodes"][0], "model.lakeq.a");
    assert!(
        b["compiled_code"]
            .as_str()
            .is_some_and(|c| c.contains("dev_analytics.main.a"))
    );
    Ok(())
}
