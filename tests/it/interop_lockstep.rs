//! DuckDB 1.5.5 and lakeq write side by side: every statement of
//! `tests/interop/write_both.sql` runs in DuckDB on one lake and in lakeq on
//! another (same catalog backend, data inlining off). Queries must give the same
//! rows (each value as DuckDB prints it); other statements must succeed or fail
//! in both. This checks what lakeq *decides* when it writes (partitioning no-ops,
//! bucket folders, file counts of size-bounded merges, transaction-local row ids)
//! against what DuckDB decides for the same statements.

use std::path::Path;

use lakeq::dialect::render::value_text;

use crate::common::{Backend, TestLake, TestResult, oracle_python};

use crate::dialect::duckdb::{Duck, DuckResult};

/// Every value of `batches` as DuckDB prints it (`None` = NULL), row by row.
fn texts(batches: &[datafusion::arrow::array::RecordBatch]) -> Vec<Vec<Option<String>>> {
    batches
        .iter()
        .flat_map(|b| {
            (0..b.num_rows()).map(move |r| {
                b.columns()
                    .iter()
                    .map(|c| value_text(c.as_ref(), r))
                    .collect::<Vec<_>>()
            })
        })
        .collect()
}

async fn lockstep(backend: Backend) -> TestResult {
    let (python, ext) = oracle_python()?;
    let mut duck = Duck::start(&python, &ext)?;
    let theirs = TestLake::new(backend, "lockstep_duckdb").await?;
    let ours = TestLake::new(backend, "lockstep_lakeq").await?;
    if let DuckResult::Error(e) = duck.exec(&theirs.attach_sql_without_inlining("lake"), None)? {
        return Err(format!("DuckDB cannot attach: {e}").into());
    }
    let session = lakeq::Session::new();
    session
        .sql(&ours.attach_sql_without_inlining("lake"))
        .await?;
    let script = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/write_both.sql"),
    )?;
    let statements = lakeq::dialect::lake_statements::split_statements(&script)?;
    assert!(statements.len() > 40, "the script lost its statements");
    let mut failures = Vec::new();
    let mut compared = 0;
    for sql in &statements {
        let expected = duck.exec(sql, None)?;
        let got = session.sql(sql).await;
        let upper = sql.trim_start().to_ascii_uppercase();
        let query = upper.starts_with("SELECT") || upper.starts_with("DESCRIBE");
        let ours = got.map(|b| texts(&b)).map_err(|e| e.to_string());
        let same = match (&expected, &ours) {
            (DuckResult::Error(_), Err(_)) => true,
            (DuckResult::Rows { rows, .. }, Ok(mine)) if query => {
                compared += 1;
                rows == mine
            }
            (DuckResult::Error(_), Ok(_)) | (_, Err(_)) => false,
            _ => !query,
        };
        if !same {
            failures.push(format!(
                "{sql}\n    DuckDB: {expected:?}\n    lakeq:  {ours:?}"
            ));
        }
    }
    assert!(compared >= 15, "only {compared} queries compared");
    assert!(
        failures.is_empty(),
        "{} of {} statements differ from DuckDB on {backend:?}:\n{}",
        failures.len(),
        statements.len(),
        failures.join("\n")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lakeq_writes_as_duckdb_decides_on_sqlite() -> TestResult {
    lockstep(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lakeq_writes_as_duckdb_decides_on_postgres() -> TestResult {
    lockstep(Backend::Postgres).await
}
