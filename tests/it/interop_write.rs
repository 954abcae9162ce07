//! lakeq writes, DuckDB 1.5.5 reads: `tests/interop/write_lakeq.slt` runs its
//! statements in lakeq (DDL, INSERT, CTAS, DELETE, UPDATE, ALTER, views, drops,
//! CREATE OR REPLACE), then every query must give the same answer in DuckDB and
//! lakeq. Then `write_duckdb_more.slt` lets DuckDB write on top (mixed history)
//! and both engines must agree again. On SQLite and PostgreSQL catalogs.

use std::path::Path;

use crate::common::{
    Backend, TestLake, TestResult, compare_with_oracle, duckdb_run, script_blocks,
};

async fn round_trip(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "write_all").await?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;

    // 1. lakeq writes.
    let (statements, queries) = script_blocks(&dir.join("write_lakeq.slt"))?;
    for stmt in &statements {
        session
            .sql(stmt)
            .await
            .map_err(|e| format!("lakeq failed on {backend:?}: {e}\n  statement: {stmt}"))?;
    }
    // 2. DuckDB reads what lakeq wrote; lakeq must agree.
    let queries_only = lake.dir.join("queries.slt");
    std::fs::write(&queries_only, &queries)?;
    let expected = duckdb_run(&[lake.attach_sql("lake")], &queries_only)?;
    assert!(
        expected.len() >= 10,
        "oracle returned {} queries",
        expected.len()
    );
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(
        problems.is_empty(),
        "lakeq-written lake, {} of {} queries differ on {backend:?}:\n{}",
        problems.len(),
        expected.len(),
        problems.join("\n")
    );

    // 3. DuckDB writes on top; lakeq must read the mixed history.
    let expected = duckdb_run(
        &[lake.attach_sql("lake")],
        &dir.join("write_duckdb_more.slt"),
    )?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(
        problems.is_empty(),
        "mixed history, {} of {} queries differ on {backend:?}:\n{}",
        problems.len(),
        expected.len(),
        problems.join("\n")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lakeq_written_lake_reads_identically_in_duckdb_on_sqlite() -> TestResult {
    round_trip(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lakeq_written_lake_reads_identically_in_duckdb_on_postgres() -> TestResult {
    round_trip(Backend::Postgres).await
}
