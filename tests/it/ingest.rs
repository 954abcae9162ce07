//! `lakeq ingest`: the landing zone lands in `raw.saas` exactly once — also when
//! ingests race or are killed — with schema evolution, clear errors for bad
//! files, and DuckDB 1.5.5 agreeing with lakeq on the raw lake. On SQLite (the
//! embedded default) and PostgreSQL catalogs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;

use crate::common::{
    Backend, TestResult, compare_with_oracle, create_pg_database, duckdb_run, scratch_dir,
};

/// A project folder: the embedded default (SQLite), or a lakeq.toml on PostgreSQL.
async fn project(backend: Backend, name: &str) -> TestResult<(PathBuf, String)> {
    let dir = scratch_dir(name);
    let attach = match backend {
        Backend::Sqlite => format!(
            "ATTACH 'ducklake:sqlite:{}/lake/raw.sqlite' AS raw",
            dir.display()
        ),
        Backend::Postgres => {
            let db = create_pg_database(name).await?;
            let catalog = format!("ducklake:postgres:dbname={db} host=127.0.0.1 user=postgres");
            std::fs::write(
                dir.join("lakeq.toml"),
                format!(
                    "landing = \"lake/landing\"\n[lakes.raw]\ncatalog = \"{catalog}\"\nmetadata_schema = \"raw\"\ndata_path = \"{}/lake/raw/\"\n",
                    dir.display()
                ),
            )?;
            format!("ATTACH '{catalog}' AS raw (METADATA_SCHEMA 'raw')")
        }
    };
    Ok((dir, attach))
}

fn lakeq(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakeq"));
    cmd.current_dir(dir).args(args);
    cmd
}

fn run_ok(dir: &Path, args: &[&str]) -> TestResult<String> {
    let out = lakeq(dir, args).output()?;
    if !out.status.success() {
        return Err(format!(
            "lakeq {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn generate(dir: &Path, batches: usize) -> TestResult {
    run_ok(
        dir,
        &[
            "generate",
            "--batches",
            &batches.to_string(),
            "--events",
            "5000",
            "--invoices",
            "500",
            "--tickets",
            "150",
            "--users",
            "200",
        ],
    )?;
    Ok(())
}

async fn raw_session(attach: &str) -> TestResult<lakeq::Session> {
    let session = lakeq::Session::new();
    session.sql(attach).await?;
    Ok(session)
}

async fn scalar(session: &lakeq::Session, sql: &str) -> TestResult<String> {
    let batches = session.sql(sql).await?;
    let (_, rows) = crate::common::canonical::render_batches(&batches)?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .cloned()
        .unwrap_or_default())
}

/// Every landing row is in raw exactly once: per table, row count = rows in the
/// landing files, and the key is unique per source file.
async fn assert_exactly_once(session: &lakeq::Session, batches: usize) -> TestResult {
    let expected = [
        ("users", 200),
        ("events", 5000),
        ("invoices", 500),
        ("support_tickets", 150),
    ];
    for (table, per_batch) in expected {
        let n = scalar(session, &format!("SELECT count(*) FROM raw.saas.{table}")).await?;
        assert_eq!(
            n,
            (per_batch * batches).to_string(),
            "rows of raw.saas.{table}"
        );
        let distinct = scalar(
            session,
            &format!("SELECT count(DISTINCT _lakeq_id) FROM raw.saas.{table}"),
        )
        .await?;
        assert_eq!(distinct, n, "_lakeq_id unique in raw.saas.{table}");
    }
    let files = scalar(
        session,
        "SELECT count(*) FROM raw.saas._lakeq_files WHERE status = 'loaded'",
    )
    .await?;
    let distinct = scalar(
        session,
        "SELECT count(DISTINCT path) FROM raw.saas._lakeq_files",
    )
    .await?;
    assert_eq!(files, (4 * batches).to_string());
    assert_eq!(distinct, files, "each landing file recorded once");
    Ok(())
}

async fn load_and_compare(backend: Backend) -> TestResult {
    let (dir, attach) = project(backend, "ingest_basic").await?;
    generate(&dir, 2)?;
    // stdout is pure JSON; stderr is no terminal here, so no progress line either.
    let out = lakeq(&dir, &["ingest", "--json"]).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lakeq ingest failed: {stderr}");
    assert!(out.stderr.is_empty(), "unexpected stderr: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["files"], 8, "{report}");
    let again = run_ok(&dir, &["ingest"])?;
    assert!(again.contains("nothing new"), "{again}");
    generate(&dir, 1)?;
    run_ok(&dir, &["ingest"])?;
    let session = raw_session(&attach).await?;
    assert_exactly_once(&session, 3).await?;

    let script = dir.join("q.slt");
    std::fs::write(
        &script,
        "query events\nSELECT count(*) AS n, count(DISTINCT event_id) AS ids, min(event_at) AS lo, max(event_at) AS hi FROM raw.saas.events\n\n\
         query invoices\nSELECT status, count(*) AS n, sum(amount) AS total FROM raw.saas.invoices GROUP BY status ORDER BY status\n\n\
         query users\nSELECT plan, count(*) AS n, count(DISTINCT user_id) AS u FROM raw.saas.users GROUP BY plan ORDER BY plan\n\n\
         query tickets\nSELECT count(*) AS n, sum(satisfaction_score) AS s, count(resolved_at) AS r FROM raw.saas.support_tickets\n\n\
         query lineage\nSELECT _lakeq_source_file, count(*) AS n FROM raw.saas.events GROUP BY _lakeq_source_file ORDER BY _lakeq_source_file\n\n\
         query lineage_ids\nSELECT _lakeq_source_file, count(DISTINCT _lakeq_id) AS d, min(_lakeq_id) AS lo, max(_lakeq_id) AS hi FROM raw.saas.events GROUP BY _lakeq_source_file ORDER BY _lakeq_source_file\n",
    )?;
    let expected = duckdb_run(std::slice::from_ref(&attach), &script)?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_loads_everything_once_and_duckdb_agrees_on_sqlite() -> TestResult {
    load_and_compare(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_loads_everything_once_and_duckdb_agrees_on_postgres() -> TestResult {
    load_and_compare(Backend::Postgres).await
}

async fn racing(backend: Backend) -> TestResult {
    let (dir, attach) = project(backend, "ingest_race").await?;
    generate(&dir, 3)?;
    let children: Vec<_> = (0..3)
        .map(|_| {
            lakeq(&dir, &["ingest"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    for child in children {
        let out = child.wait_with_output()?;
        assert!(
            out.status.success(),
            "a racing ingest failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_exactly_once(&raw_session(&attach).await?, 3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_ingests_load_each_file_once_on_sqlite() -> TestResult {
    racing(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_ingests_load_each_file_once_on_postgres() -> TestResult {
    racing(Backend::Postgres).await
}

async fn killed(backend: Backend) -> TestResult {
    let (dir, attach) = project(backend, "ingest_kill").await?;
    let mut batches = 0;
    for delay_ms in [20u64, 60, 110, 170, 240] {
        generate(&dir, 1)?;
        batches += 1;
        let mut child = lakeq(&dir, &["ingest"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = child.kill(); // SIGKILL at an arbitrary point
        let _ = child.wait();
    }
    run_ok(&dir, &["ingest"])?;
    assert_exactly_once(&raw_session(&attach).await?, batches).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_ingests_then_a_rerun_load_exactly_once_on_sqlite() -> TestResult {
    killed(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_ingests_then_a_rerun_load_exactly_once_on_postgres() -> TestResult {
    killed(Backend::Postgres).await
}

fn write_users_file(
    path: &Path,
    columns: Vec<(&str, Arc<dyn datafusion::arrow::array::Array>)>,
) -> TestResult {
    std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )?;
    let mut w = ArrowWriter::try_new(std::fs::File::create(path)?, batch.schema(), None)?;
    w.write(&batch)?;
    w.close()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_evolution_and_incompatible_changes() -> TestResult {
    let (dir, attach) = project(Backend::Sqlite, "ingest_evolve").await?;
    let users = dir.join("lake/landing/users");
    write_users_file(
        &users.join("batch-000001.parquet"),
        vec![
            ("user_id", Arc::new(Int64Array::from(vec![1, 2]))),
            ("email", Arc::new(StringArray::from(vec!["a@x", "b@x"]))),
        ],
    )?;
    run_ok(&dir, &["ingest"])?;
    // A new column, and user_id widened from int32 in the file: evolve.
    write_users_file(
        &users.join("batch-000002.parquet"),
        vec![
            (
                "user_id",
                Arc::new(datafusion::arrow::array::Int32Array::from(vec![3])),
            ),
            ("email", Arc::new(StringArray::from(vec!["c@x"]))),
            ("referrer", Arc::new(StringArray::from(vec!["ads"]))),
        ],
    )?;
    run_ok(&dir, &["ingest"])?;
    let session = raw_session(&attach).await?;
    let n = scalar(
        &session,
        "SELECT count(*) FROM raw.saas.users WHERE referrer IS NULL",
    )
    .await?;
    assert_eq!(n, "2", "older rows read NULL for the new column");
    // Freeze refuses a new column.
    write_users_file(
        &users.join("batch-000003.parquet"),
        vec![
            ("user_id", Arc::new(Int64Array::from(vec![4]))),
            ("country", Arc::new(StringArray::from(vec!["US"]))),
        ],
    )?;
    let out = lakeq(&dir, &["ingest", "--schema-change", "freeze"]).output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("users/batch-000003.parquet") && err.contains("country"),
        "{err}"
    );
    std::fs::remove_file(users.join("batch-000003.parquet"))?;
    // An incompatible type: error naming file, column and both types; nothing committed.
    write_users_file(
        &users.join("batch-000004.parquet"),
        vec![
            ("user_id", Arc::new(StringArray::from(vec!["five"]))),
            ("email", Arc::new(StringArray::from(vec!["e@x"]))),
        ],
    )?;
    let before = scalar(&session, "SELECT count(*) FROM raw.saas._lakeq_loads").await?;
    let out = lakeq(&dir, &["ingest"]).output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("users/batch-000004.parquet")
            && err.contains("user_id")
            && err.contains("Utf8")
            && err.contains("Int64"),
        "{err}"
    );
    assert_eq!(
        scalar(&session, "SELECT count(*) FROM raw.saas._lakeq_loads").await?,
        before
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_stop_the_load_or_are_skipped() -> TestResult {
    let (dir, attach) = project(Backend::Sqlite, "ingest_bad").await?;
    generate(&dir, 1)?;
    let landing = dir.join("lake/landing");
    std::fs::write(
        landing.join("events/batch-000900.parquet"),
        b"this is not parquet",
    )?;
    std::fs::write(landing.join("events/batch-000901.parquet"), b"")?;
    write_users_file(
        &landing.join("users/batch-000902.parquet"),
        vec![("email", Arc::new(StringArray::from(vec!["no key"])))],
    )?;
    let out = lakeq(&dir, &["ingest"]).output()?;
    assert!(!out.status.success(), "a bad file must stop the load");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("batch-00090"), "{err}");
    let session = raw_session(&attach).await?;
    assert_eq!(
        scalar(&session, "SELECT count(*) FROM raw.saas._lakeq_files").await?,
        "0"
    );

    let out = run_ok(&dir, &["ingest", "--skip-bad-files"])?;
    assert!(out.contains("rejected"), "{out}");
    let rejected = scalar(
        &session,
        "SELECT count(*) FROM raw.saas._lakeq_files WHERE status = 'rejected'",
    )
    .await?;
    assert_eq!(rejected, "3");
    let reason = scalar(
        &session,
        "SELECT reason FROM raw.saas._lakeq_files WHERE path = 'users/batch-000902.parquet'",
    )
    .await?;
    assert!(reason.contains("user_id"), "{reason}");
    assert_eq!(
        scalar(&session, "SELECT count(*) FROM raw.saas.events").await?,
        "5000"
    );
    Ok(())
}
