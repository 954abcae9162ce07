//! Lake maintenance both ways: lakeq expires snapshots and removes old and
//! orphaned files of the lake it wrote, and DuckDB 1.5.5 reads the same rows,
//! history and time travel (`maintain_lakeq.slt`); DuckDB merges, expires and
//! cleans up its own lake and lakeq reads it identically (`maintain_duckdb.slt`).
//! On SQLite and PostgreSQL catalogs.

use std::path::Path;

use crate::common::{
    Backend, TestLake, TestResult, compare_with_oracle, duckdb_run, duckdb_sql_queries,
    files_under, script_blocks,
};

fn interop_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

async fn lakeq_maintains(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "maintain_lakeq").await?;
    let session = lakeq::Session::new();
    // The file counts below assume small inserts write files (inlining has its
    // own tests in inlining.rs).
    session
        .sql(&lake.attach_sql_without_inlining("lake"))
        .await?;
    let (statements, queries) = script_blocks(&interop_dir().join("maintain_lakeq.slt"))?;
    let mut files_before_cleanup = 0;
    for stmt in &statements {
        if stmt.contains("ducklake_cleanup_old_files") {
            files_before_cleanup = files_under(Path::new(&lake.data_path));
        }
        session
            .sql(stmt)
            .await
            .map_err(|e| format!("lakeq failed on {backend:?}: {e}\n  statement: {stmt}"))?;
    }
    // Scheduled for deletion: the delete file the UPDATE replaced (at once, as
    // DuckDB does), the four files the merge replaced and, by expiry, the dropped
    // table's file. Cleanup removes all six. The file the rewrite ended stays
    // (retained snapshots read it). CHECKPOINT then merges the merged and the
    // rewritten file into one (their sources wait for `delete_older_than`), and the
    // last INSERT adds one.
    let files_after = files_under(Path::new(&lake.data_path));
    assert_eq!(
        files_after + 4,
        files_before_cleanup,
        "{files_before_cleanup} files before cleanup, {files_after} at the end"
    );
    let queries_only = lake.dir.join("queries.slt");
    std::fs::write(&queries_only, &queries)?;
    let expected = duckdb_run(&[lake.attach_sql("lake")], &queries_only)?;
    assert_eq!(
        expected.len(),
        6,
        "oracle answered {} queries",
        expected.len()
    );
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(
        problems.is_empty(),
        "maintained lakeq lake, {} queries differ on {backend:?}:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // Expired snapshots are gone for both engines.
    let err = session
        .sql("SELECT count(*) FROM lake.main.m AT (VERSION => 3)")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("snapshot"),
        "time travel to an expired snapshot: {err}"
    );
    Ok(())
}

async fn duckdb_maintains(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "maintain_duckdb").await?;
    let expected = duckdb_run(
        &[lake.attach_sql("lake")],
        &interop_dir().join("maintain_duckdb.slt"),
    )?;
    assert_eq!(
        expected.len(),
        5,
        "oracle answered {} queries",
        expected.len()
    );
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(
        problems.is_empty(),
        "DuckDB-maintained lake, {} queries differ on {backend:?}:\n{}",
        problems.len(),
        problems.join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn lakeq_maintained_lake_reads_identically_in_duckdb_on_sqlite() -> TestResult {
    lakeq_maintains(Backend::Sqlite).await
}

#[tokio::test]
async fn lakeq_maintained_lake_reads_identically_in_duckdb_on_postgres() -> TestResult {
    lakeq_maintains(Backend::Postgres).await
}

#[tokio::test]
async fn duckdb_maintained_lake_reads_identically_in_lakeq_on_sqlite() -> TestResult {
    duckdb_maintains(Backend::Sqlite).await
}

#[tokio::test]
async fn duckdb_maintained_lake_reads_identically_in_lakeq_on_postgres() -> TestResult {
    duckdb_maintains(Backend::Postgres).await
}

/// Files written under older layouts (before ADD/DROP COLUMN) are merged in their
/// own layout, as DuckDB does: time travel to those snapshots still reads every
/// column (a merge in the current layout would lose the dropped column's history).
#[tokio::test]
async fn merging_files_of_older_layouts_keeps_their_columns() -> TestResult {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let lake = TestLake::new(backend, "merge_layouts").await?;
        let session = lakeq::Session::new();
        session
            .sql(&lake.attach_sql_without_inlining("lake"))
            .await?;
        for stmt in [
            "CREATE TABLE lake.main.t (id INTEGER, i INTEGER)", // S1
            "INSERT INTO lake.main.t VALUES (1, 10)",           // S2
            "INSERT INTO lake.main.t VALUES (2, 20)",           // S3
            "ALTER TABLE lake.main.t ADD COLUMN j INTEGER",     // S4
            "INSERT INTO lake.main.t VALUES (3, 30, 300)",
            "INSERT INTO lake.main.t VALUES (4, 40, 400)", // S6
            "ALTER TABLE lake.main.t DROP COLUMN i",
            "INSERT INTO lake.main.t VALUES (5, 500)",
            "INSERT INTO lake.main.t VALUES (6, 600)", // S9
            "ALTER TABLE lake.main.t ADD COLUMN i VARCHAR",
            "INSERT INTO lake.main.t VALUES (7, 700, 'hello')",
            "INSERT INTO lake.main.t VALUES (8, 800, 'world')",
        ] {
            session.sql(stmt).await?;
        }
        let merged = session
            .sql("SELECT files_processed, files_created FROM ducklake_merge_adjacent_files('lake')")
            .await?;
        // One row per merged file, two files each, one per layout (as DuckDB reports it).
        assert_eq!(
            merged.iter().map(|b| b.num_rows()).sum::<usize>(),
            4,
            "{backend:?}"
        );
        let expected = duckdb_sql_queries(
            &lake,
            "query v3\nSELECT * FROM lake.main.t AT (VERSION => 3) ORDER BY id\n\n\
             query v6\nSELECT * FROM lake.main.t AT (VERSION => 6) ORDER BY id\n\n\
             query v9\nSELECT * FROM lake.main.t AT (VERSION => 9) ORDER BY id\n\n\
             query now\nSELECT * FROM lake.main.t ORDER BY id\n\n\
             query files\nSELECT count(*) AS n FROM ducklake_list_files('lake', 't')\n",
        )?;
        assert_eq!(expected.len(), 5);
        let problems = compare_with_oracle(&session, &expected).await;
        assert!(problems.is_empty(), "{backend:?}:\n{}", problems.join("\n"));
        // And the values are the ones written, not NULLs.
        let v3 = session
            .sql("SELECT sum(i) AS s FROM lake.main.t AT (VERSION => 3)")
            .await?;
        let text = lakeq::dialect::render::value_text(v3[0].column(0).as_ref(), 0);
        assert_eq!(text.as_deref(), Some("30"), "{backend:?}");
    }
    Ok(())
}
