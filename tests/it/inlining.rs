//! Data inlining both ways, on SQLite and PostgreSQL catalogs: lakeq stores
//! small writes in the catalog as DuckDB does, changes the table's layout in
//! between, flushes, and DuckDB 1.5.5 reads the same rows, history and change
//! feed (`inline_lakeq.slt`); DuckDB then writes into the same table, and lakeq
//! reads and flushes what DuckDB inlined.

use std::path::Path;

use crate::common::{
    Backend, TestLake, TestResult, compare_with_oracle, duckdb_run, duckdb_sql_queries,
    script_blocks,
};

/// DuckDB answers `queries` (slt query blocks) on the lake, expecting `count`
/// answers, and lakeq's answers are the same.
async fn agrees_with_duckdb(
    session: &lakeq::Session,
    lake: &TestLake,
    queries: &str,
    count: usize,
    what: &str,
) -> TestResult {
    let path = lake.dir.join("queries.slt");
    std::fs::write(&path, queries)?;
    let expected = duckdb_run(&[lake.attach_sql("lake")], &path)?;
    assert_eq!(
        expected.len(),
        count,
        "{what}: oracle answered {} queries",
        expected.len()
    );
    let problems = compare_with_oracle(session, &expected).await;
    assert!(
        problems.is_empty(),
        "{what}: {} queries differ:\n{}",
        problems.len(),
        problems.join("\n")
    );
    Ok(())
}

async fn lakeq_inlines(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "inline_lakeq").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/inline_lakeq.slt");
    let (statements, queries) = script_blocks(&script)?;
    // Statements up to the flush first, the queries before it, then the rest.
    let flush_at = statements
        .iter()
        .position(|s| s.contains("ducklake_flush_inlined_data"))
        .ok_or("the script flushes")?;
    for stmt in &statements[..flush_at] {
        session
            .sql(stmt)
            .await
            .map_err(|e| format!("lakeq failed on {backend:?}: {e}\n  statement: {stmt}"))?;
    }
    // Nothing small was written to Parquet: one file (the 20-row insert).
    let files = session
        .sql("SELECT count(*) FROM ducklake_list_files('lake', 't')")
        .await?;
    let n = lakeq::dialect::render::value_text(files[0].column(0).as_ref(), 0);
    assert_eq!(
        n.as_deref(),
        Some("1"),
        "{backend:?}: files before the flush"
    );
    let split = queries
        .find("query t_after_flush")
        .ok_or("the script queries after the flush")?;
    let (before, after) = queries.split_at(split);
    agrees_with_duckdb(
        &session,
        &lake,
        before,
        5,
        &format!("inlined lakeq lake on {backend:?}"),
    )
    .await?;
    for stmt in &statements[flush_at..] {
        session.sql(stmt).await?;
    }
    agrees_with_duckdb(
        &session,
        &lake,
        after,
        4,
        &format!("flushed lakeq lake on {backend:?}"),
    )
    .await?;
    // DuckDB writes into the table lakeq altered (into the inlined table of the
    // current layout), and lakeq reads and flushes it.
    duckdb_sql_queries(
        &lake,
        "statement ok\nINSERT INTO lake.main.t (id, s_renamed, extra) VALUES (400, 'duck', 'd')\n\n\
         statement ok\nDELETE FROM lake.main.t WHERE id = 12\n",
    )?;
    let expected = duckdb_sql_queries(
        &lake,
        "query t_duck\nSELECT id, s_renamed, extra FROM lake.main.t ORDER BY id\n",
    )?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{backend:?}:\n{}", problems.join("\n"));
    session
        .sql("CALL ducklake_flush_inlined_data('lake')")
        .await?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(
        problems.is_empty(),
        "{backend:?} after flush:\n{}",
        problems.join("\n")
    );
    let again = duckdb_sql_queries(
        &lake,
        "query t_duck\nSELECT id, s_renamed, extra FROM lake.main.t ORDER BY id\n",
    )?;
    assert_eq!(
        again[0].rows, expected[0].rows,
        "{backend:?}: DuckDB after lakeq's flush"
    );
    Ok(())
}

#[tokio::test]
async fn lakeq_inlined_lake_reads_identically_in_duckdb_on_sqlite() -> TestResult {
    lakeq_inlines(Backend::Sqlite).await
}

#[tokio::test]
async fn lakeq_inlined_lake_reads_identically_in_duckdb_on_postgres() -> TestResult {
    lakeq_inlines(Backend::Postgres).await
}

/// `ducklake_flush_inlined_data` writes a sorted table's rows in the order of
/// its `SET SORTED BY` keys (an expression key, a column added after the rows
/// were inlined), as DuckDB does: the table then reads in that order in both
/// engines, with the rows' ids and snapshots kept.
async fn flush_follows_sort_keys(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "flush_sorted").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session
        .sql("CREATE TABLE lake.main.t (i INT, k VARCHAR)")
        .await?;
    for i in 0..6 {
        session
            .sql(&format!(
                "INSERT INTO lake.main.t VALUES ({i}, 'k{}')",
                i % 3
            ))
            .await?;
    }
    session
        .sql("ALTER TABLE lake.main.t SET SORTED BY (i % 2 DESC, k)")
        .await?;
    session
        .sql("ALTER TABLE lake.main.t ADD COLUMN key INT")
        .await?;
    session
        .sql("CALL ducklake_flush_inlined_data('lake', table_name => 't')")
        .await?;
    let rows = crate::common::canonical::render_batches(
        &session.sql("SELECT i, k FROM lake.main.t").await?,
    )?
    .1;
    let order: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(order, ["3", "1", "5", "0", "4", "2"], "{rows:?}");
    agrees_with_duckdb(
        &session,
        &lake,
        "query rows\nSELECT rowid, snapshot_id, i, k, key FROM lake.main.t\n",
        1,
        "flushed in sort order",
    )
    .await
}

#[tokio::test]
async fn flush_follows_sort_keys_on_sqlite() -> TestResult {
    flush_follows_sort_keys(Backend::Sqlite).await
}

#[tokio::test]
async fn flush_follows_sort_keys_on_postgres() -> TestResult {
    flush_follows_sort_keys(Backend::Postgres).await
}
