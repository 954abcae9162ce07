//! Several processes commit to one lake at once; a writer killed with SIGKILL at
//! random points. Afterwards every committed insert is present exactly once,
//! snapshot ids are contiguous, nothing references a missing file, and DuckDB
//! 1.5.5 agrees with lakeq.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{Backend, TestLake, TestResult, compare_with_oracle, duckdb_sql_queries};

const WRITERS: usize = 8;
const INSERTS: usize = 100;

fn writer_script(lake: &TestLake, writer: usize, inserts: usize) -> String {
    let mut sql = format!("{};\n", lake.attach_sql("lake"));
    for i in 0..inserts {
        sql.push_str(&format!(
            "INSERT INTO lake.main.t VALUES ({writer}, {i});\n"
        ));
    }
    sql
}

/// Snapshot ids as stored in the catalog, read through lakeq's own store.
async fn snapshot_ids(lake: &TestLake) -> TestResult<Vec<i64>> {
    let opened = lake.open().await?;
    Ok(opened
        .store()
        .snapshots()
        .await?
        .into_iter()
        .map(|s| s.snapshot_id)
        .collect())
}

async fn concurrent_writers(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "concurrent").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session
        .sql("CREATE TABLE lake.main.t (w INT, i INT)")
        .await?;
    let before = snapshot_ids(&lake).await?.len();

    let mut children = Vec::new();
    for w in 0..WRITERS {
        let script = lake.dir.join(format!("writer{w}.sql"));
        std::fs::write(&script, writer_script(&lake, w, INSERTS))?;
        children.push(
            Command::new(env!("CARGO_BIN_EXE_lakeq"))
                .args(["sql", "--format", "csv", "-f"])
                .arg(&script)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()?,
        );
    }
    for child in children {
        let out = child.wait_with_output()?;
        assert!(
            out.status.success(),
            "a writer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let rows = session
        .sql("SELECT count(*) AS n, count(DISTINCT w * 1000 + i) AS d FROM lake.main.t")
        .await?;
    let (_, rendered) = crate::common::canonical::render_batches(&rows)?;
    let total = (WRITERS * INSERTS).to_string();
    assert_eq!(
        rendered,
        vec![vec![total.clone(), total]],
        "every insert exactly once"
    );

    let ids = snapshot_ids(&lake).await?;
    assert_eq!(
        ids.len(),
        before + WRITERS * INSERTS,
        "one snapshot per insert"
    );
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "snapshot ids are contiguous: {ids:?}"
    );

    let expected = duckdb_sql_queries(
        &lake,
        "query counts\nSELECT count(*) AS n, count(DISTINCT w * 1000 + i) AS d, sum(i) AS s FROM lake.main.t\n\n\
         query per_writer\nSELECT w, count(*) AS n FROM lake.main.t GROUP BY w ORDER BY w\n",
    )?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writer_processes_on_sqlite() -> TestResult {
    concurrent_writers(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writer_processes_on_postgres() -> TestResult {
    concurrent_writers(Backend::Postgres).await
}

/// Kill a writer at pseudo-random moments, several times; the lake must stay
/// consistent: counts in lakeq and DuckDB agree with the committed snapshots,
/// and every referenced file exists.
async fn killed_writers(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "killed").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session
        .sql("CREATE TABLE lake.main.t (w INT, i INT)")
        .await?;
    // Deterministic "random" kill delays, spread over the writer's lifetime.
    let delays_ms = [5u64, 20, 45, 80, 120, 160];
    let mut killed_mid_work = 0;
    for (round, delay) in delays_ms.iter().enumerate() {
        let script = lake.dir.join(format!("kill{round}.sql"));
        let mut sql = writer_script(&lake, round, 40);
        sql.push_str(&format!(
            "DELETE FROM lake.main.t WHERE w = {round} AND i % 3 = 0;\n"
        ));
        std::fs::write(&script, sql)?;
        let before = lake
            .open()
            .await?
            .store()
            .latest_snapshot()
            .await?
            .snapshot_id;
        let mut child = Command::new(env!("CARGO_BIN_EXE_lakeq"))
            .args(["sql", "-f"])
            .arg(&script)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // The delay counts from the writer's first commit, so a slow start-up
        // cannot make the kill land before any work.
        let started = std::time::Instant::now();
        while lake
            .open()
            .await?
            .store()
            .latest_snapshot()
            .await?
            .snapshot_id
            == before
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "writer {round} committed nothing in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(*delay)).await;
        if child.try_wait()?.is_none() {
            killed_mid_work += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    assert!(
        killed_mid_work >= delays_ms.len() / 2,
        "only {killed_mid_work} of {} writers were still working when killed",
        delays_ms.len()
    );
    // Every file the catalog references exists.
    let opened = lake.open().await?;
    let latest = opened.store().latest_snapshot().await?;
    let catalog = opened.pin(latest).await?;
    let table = catalog.table("main", "t")?;
    for f in opened
        .store()
        .data_files(table.id(), catalog.snapshot.snapshot_id)
        .await?
    {
        let path = format!("{}{}", table.dir, f.path);
        assert!(
            std::path::Path::new(&path).exists(),
            "missing data file {path}"
        );
        if let Some(d) = f.delete_file {
            let path = format!("{}{}", table.dir, d.path);
            assert!(
                std::path::Path::new(&path).exists(),
                "missing delete file {path}"
            );
        }
    }
    let expected = duckdb_sql_queries(
        &lake,
        "query counts\nSELECT count(*) AS n, sum(i) AS s FROM lake.main.t\n\n\
         query per_writer\nSELECT w, count(*) AS n, min(i) AS lo, max(i) AS hi FROM lake.main.t GROUP BY w ORDER BY w\n",
    )?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Within a writer, inserts commit in order: the rows present are a prefix 0..n.
    let rows = session
        .sql("SELECT w, count(*) AS n, max(i) AS hi FROM lake.main.t WHERE i % 3 <> 0 GROUP BY w ORDER BY w")
        .await?;
    let (_, rendered) = crate::common::canonical::render_batches(&rows)?;
    for r in rendered {
        let n: i64 = r[1].parse()?;
        let hi: i64 = r[2].parse()?;
        assert_eq!(
            n,
            hi - hi / 3,
            "writer {} committed a prefix of its inserts",
            r[0]
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writers_leave_a_consistent_lake_on_sqlite() -> TestResult {
    killed_writers(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writers_leave_a_consistent_lake_on_postgres() -> TestResult {
    killed_writers(Backend::Postgres).await
}

/// Small tables (their rows inlined in the catalog) replaced by several writers
/// while another one commits explicit transactions: every table holds its rows
/// exactly once. A transaction's fork once listed the catalog's tables before
/// copying them, so an inlined table another writer created in between was
/// copied, unlisted, and taken at `COMMIT` for one the transaction had created:
/// its rows went in a second time (a dbt build with several threads ended with
/// a model's 7 rows read 14 times, by lakeq and DuckDB alike).
async fn inlined_tables_beside_transactions(backend: Backend) -> TestResult {
    const TABLES: usize = 3;
    const ROUNDS: usize = 15;
    const ROWS: usize = 7;
    let lake = TestLake::new(backend, "inlined_beside_txn").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session.sql("CREATE TABLE lake.main.log (i INT)").await?;

    let values: Vec<String> = (1..=ROWS).map(|i| format!("({i}, 'row {i}')")).collect();
    let mut scripts = Vec::new();
    for t in 0..TABLES {
        let mut sql = format!("{};\n", lake.attach_sql("lake"));
        for _ in 0..ROUNDS {
            sql.push_str(&format!(
                "CREATE OR REPLACE TABLE lake.main.t{t} AS SELECT * FROM (VALUES {}) v(id, name);\n",
                values.join(", ")
            ));
        }
        scripts.push((format!("ctas{t}.sql"), sql));
    }
    let mut children = Vec::new();
    for (name, sql) in &scripts {
        let script = lake.dir.join(name);
        std::fs::write(&script, sql)?;
        children.push(
            Command::new(env!("CARGO_BIN_EXE_lakeq"))
                .args(["sql", "--format", "csv", "-f"])
                .arg(&script)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()?,
        );
    }
    // Meanwhile, transactions in this process: one that sees a concurrent commit
    // is refused at COMMIT (lakeq does not merge transactions yet) and counts for
    // nothing; the others each add one row (the last ones may run alone).
    let (mut committed, mut refused) = (0usize, 0usize);
    let mut running = children.len();
    while running > 0 || committed == 0 {
        session.sql("BEGIN TRANSACTION").await?;
        let i = committed + refused;
        session
            .sql(&format!("INSERT INTO lake.main.log VALUES ({i})"))
            .await?;
        match session.sql("COMMIT").await {
            Ok(_) => committed += 1,
            Err(e) if e.to_string().contains("commit conflict") => refused += 1,
            Err(e) => return Err(e.into()),
        }
        running = 0;
        for child in &mut children {
            if child.try_wait()?.is_none() {
                running += 1;
            }
        }
    }
    for child in children {
        let out = child.wait_with_output()?;
        assert!(
            out.status.success(),
            "a writer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let mut blocks = String::new();
    for t in 0..TABLES {
        let sql = format!("SELECT count(*) AS n, count(DISTINCT id) AS d FROM lake.main.t{t}");
        let (_, rendered) = crate::common::canonical::render_batches(&session.sql(&sql).await?)?;
        assert_eq!(
            rendered,
            vec![vec![ROWS.to_string(), ROWS.to_string()]],
            "t{t}: each row exactly once"
        );
        blocks.push_str(&format!("query t{t}\n{sql}\n\n"));
    }
    let (_, log) = crate::common::canonical::render_batches(
        &session.sql("SELECT count(*) FROM lake.main.log").await?,
    )?;
    assert_eq!(log, vec![vec![committed.to_string()]]);
    blocks.push_str("query log\nSELECT count(*) AS n, count(DISTINCT i) AS d FROM lake.main.log\n");
    // DuckDB reads the same counts.
    let expected = duckdb_sql_queries(&lake, &blocks)?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inlined_tables_beside_transactions_on_sqlite() -> TestResult {
    inlined_tables_beside_transactions(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inlined_tables_beside_transactions_on_postgres() -> TestResult {
    inlined_tables_beside_transactions(Backend::Postgres).await
}
