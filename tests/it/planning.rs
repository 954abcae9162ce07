//! Planning keeps a table's file list, deletions and statistics per snapshot while the
//! lake's latest snapshot stays the same (issue 2: planning overhead). Compaction rewrites
//! the file lists of older snapshots, so a session that planned time-travel queries before
//! DuckDB 1.5.5 merged and deleted the files must plan them again, from the new files,
//! and answer as DuckDB does. On SQLite and PostgreSQL catalogs.

use std::path::Path;

use crate::common::{Backend, OracleQuery, TestLake, TestResult, compare_with_oracle, duckdb_run};

async fn compaction_between_queries(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "planning_cache").await?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    // One Parquet file per insert, so that there is something to merge.
    let attach = lake.attach_sql("lake");
    let duck_attach = match attach.strip_suffix(')') {
        Some(head) => format!("{head}, DATA_INLINING_ROW_LIMIT 0)"),
        None => return Err(format!("unexpected ATTACH: {attach}").into()),
    };

    let before = duckdb_run(
        std::slice::from_ref(&duck_attach),
        &dir.join("planning_cache_build.slt"),
    )?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let problems = compare_with_oracle(&session, &before).await;
    assert!(
        problems.is_empty(),
        "before the merge, {} of {} queries differ on {backend:?}:\n{}",
        problems.len(),
        before.len(),
        problems.join("\n")
    );

    let after = duckdb_run(&[duck_attach], &dir.join("planning_cache_compact.slt"))?;
    let (files, after): (Vec<OracleQuery>, Vec<OracleQuery>) =
        after.into_iter().partition(|q| q.label == "files");
    assert_eq!(
        files.first().map(|q| q.rows.clone()),
        Some(vec![vec!["1".to_string()]]),
        "DuckDB should have merged the three files into one"
    );
    let problems = compare_with_oracle(&session, &after).await;
    assert!(
        problems.is_empty(),
        "after the merge, {} of {} queries differ on {backend:?}:\n{}",
        problems.len(),
        after.len(),
        problems.join("\n")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn r2_planning_after_compaction_reads_the_merged_files_on_sqlite() -> TestResult {
    compaction_between_queries(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread")]
async fn r2_planning_after_compaction_reads_the_merged_files_on_postgres() -> TestResult {
    compaction_between_queries(Backend::Postgres).await
}
