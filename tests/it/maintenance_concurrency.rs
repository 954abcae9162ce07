//! Maintenance while writers commit: four `lakeq sql` processes insert one row
//! per statement (one Parquet file and one snapshot each) while this test merges
//! adjacent files, expires old snapshots and deletes the files they alone used,
//! round after round. A maintenance call that loses a race is refused (and the
//! next round tries again) or retried; afterwards every insert is present exactly
//! once, every retained snapshot reads in both engines with the same answer, and
//! DuckDB 1.5.5 reads the lake (it fails on a missing file) as lakeq does.

use std::process::{Child, Command, Stdio};

use crate::common::{
    Backend, TestLake, TestResult, canonical::render_batches, compare_with_oracle,
    duckdb_sql_queries,
};

const WRITERS: usize = 4;
const INSERTS: usize = 40;

fn writer(lake: &TestLake, w: usize) -> TestResult<Child> {
    let mut sql = format!("{};\n", lake.attach_sql_without_inlining("lake"));
    for i in 0..INSERTS {
        sql.push_str(&format!("INSERT INTO lake.main.t VALUES ({w}, {i});\n"));
    }
    let script = lake.dir.join(format!("writer{w}.sql"));
    std::fs::write(&script, sql)?;
    Ok(Command::new(env!("CARGO_BIN_EXE_lakeq"))
        .args(["sql", "--format", "csv", "-f"])
        .arg(&script)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?)
}

async fn one_value(session: &lakeq::Session, sql: &str) -> TestResult<String> {
    let (_, rows) = render_batches(&session.sql(sql).await?)?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .cloned()
        .ok_or_else(|| format!("no value from {sql}"))?)
}

async fn maintenance_while_writers_commit(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "maintain_concurrent").await?;
    let session = lakeq::Session::new();
    session
        .sql(&lake.attach_sql_without_inlining("lake"))
        .await?;
    session
        .sql("CREATE TABLE lake.main.t (w INT, i INT)")
        .await?;

    let mut children = (0..WRITERS)
        .map(|w| writer(&lake, w))
        .collect::<TestResult<Vec<_>>>()?;
    let calls = [
        "CALL ducklake_merge_adjacent_files('lake')",
        "CALL ducklake_expire_snapshots('lake', older_than => now())",
        "CALL ducklake_cleanup_old_files('lake', cleanup_all => true)",
    ];
    let (mut done, mut refused, mut rounds_during_writes) = (0usize, Vec::new(), 0usize);
    loop {
        let running = children
            .iter_mut()
            .map(|c| c.try_wait().map(|s| s.is_none()))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .any(|r| r);
        if !running {
            break;
        }
        for call in calls {
            match session.sql(call).await {
                Ok(_) => done += 1,
                Err(e) => refused.push(format!("{call}: {e}")),
            }
        }
        // The round counts as concurrent only if a writer was still at work after it.
        if children
            .iter_mut()
            .map(|c| c.try_wait().map(|s| s.is_none()))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .any(|r| r)
        {
            rounds_during_writes += 1;
        }
    }
    for child in children {
        let out = child.wait_with_output()?;
        assert!(
            out.status.success(),
            "a writer failed beside maintenance: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        rounds_during_writes >= 1,
        "no maintenance round finished while the writers were committing"
    );
    assert!(
        done >= calls.len(),
        "maintenance never succeeded: {refused:#?}"
    );
    // A refusal must be a conflict that names what it lost to, never anything else.
    for r in &refused {
        assert!(
            r.to_lowercase().contains("conflict"),
            "unexpected failure: {r}"
        );
    }
    eprintln!(
        "{backend:?}: {rounds_during_writes} maintenance rounds during the writes, \
         {done} calls done, {} refused as conflicts",
        refused.len()
    );

    // Once more with the writers done: the table ends as one file.
    for call in calls {
        session.sql(call).await?;
    }
    let total = (WRITERS * INSERTS).to_string();
    assert_eq!(
        one_value(
            &session,
            "SELECT count(DISTINCT w * 1000 + i) FROM lake.main.t"
        )
        .await?,
        total
    );
    assert_eq!(
        one_value(&session, "SELECT count(*) FROM lake.main.t").await?,
        total
    );

    // Every retained snapshot reads the same in both engines.
    let (_, snapshots) = render_batches(
        &session
            .sql("SELECT snapshot_id FROM lake.snapshots()")
            .await?,
    )?;
    let mut queries = String::from(
        "query all\nSELECT w, count(*) AS n, sum(i) AS s FROM lake.main.t GROUP BY w ORDER BY w\n\n",
    );
    for row in &snapshots {
        let id = row.first().ok_or("no snapshot id")?;
        queries.push_str(&format!(
            "query at_{id}\nSELECT count(*) AS n, sum(i) AS s FROM lake.main.t AT (VERSION => {id})\n\n"
        ));
    }
    let expected = duckdb_sql_queries(&lake, &queries)?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_while_writers_commit_on_sqlite() -> TestResult {
    maintenance_while_writers_commit(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_while_writers_commit_on_postgres() -> TestResult {
    maintenance_while_writers_commit(Backend::Postgres).await
}
