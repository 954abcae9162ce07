//! Transactions under faults: a `lakeq sql` process killed with SIGKILL inside
//! `BEGIN` ... `COMMIT` (idle in the transaction, in the middle of a statement,
//! blocked inside `COMMIT`'s catalog transaction, and at a sweep of moments
//! around `COMMIT`), on SQLite and PostgreSQL catalogs. Afterwards the lake has
//! exactly the snapshots it had, or exactly one more holding every row of the
//! transaction; every file the catalog references exists; DuckDB 1.5.5 opens
//! the lake first (so it meets whatever the kill left, a hot SQLite journal
//! included) and reads what lakeq reads.
//!
//! The process is a `lakeq sql` prompt fed through its standard input, so the
//! test knows which statements it ran (`SELECT '<phase>'` markers on its
//! output) and can prove where each kill landed: a marker printed and the next
//! one not, a file of a statement in progress on disk, the SQLite rollback
//! journal of `COMMIT`'s catalog transaction, or PostgreSQL showing the
//! process's backend waiting on a lock inside that transaction.
//!
//! Also: a killed transaction's fork (PostgreSQL scratch schemas, SQLite fork
//! files) is removed by the next `BEGIN`, a live transaction's never; forks are
//! removed when a process ends cleanly, also inside a transaction.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::common::{
    Backend, TestLake, TestResult, canonical::render_batches, compare_with_oracle,
    duckdb_sql_queries, files_under,
};

/// Hang guard for anything the test waits for (never reached when all is well).
const GUARD: Duration = Duration::from_secs(120);

/// A `lakeq sql` prompt fed through standard input.
pub(crate) struct Repl {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: PathBuf,
}

impl Drop for Repl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Repl {
    pub(crate) fn start(lake: &TestLake, name: &str, env: &[(&str, &str)]) -> TestResult<Self> {
        let stderr = lake.dir.join(format!("{name}.stderr"));
        let tmp = child_tmp(lake);
        std::fs::create_dir_all(&tmp)?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakeq"));
        cmd.args(["sql", "--format", "csv"])
            .current_dir(&lake.dir)
            .env("TMPDIR", &tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr)?);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut repl = Self {
            child,
            stdin,
            lines,
            stderr,
        };
        repl.send(&format!("{};", lake.attach_sql("lake")))?;
        Ok(repl)
    }

    pub(crate) fn send(&mut self, sql: &str) -> TestResult {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{sql}")?;
        stdin.flush()?;
        Ok(())
    }

    /// Run `SELECT '<name>'` and wait until it is printed: every statement sent
    /// before it has finished.
    pub(crate) fn phase(&mut self, name: &str) -> TestResult {
        self.send(&format!("SELECT '{name}' AS phase;"))?;
        self.wait_for(name)
    }

    pub(crate) fn wait_for(&mut self, marker: &str) -> TestResult {
        let started = Instant::now();
        loop {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) if line == marker => return Ok(()),
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "lakeq exited before '{marker}': {}",
                        std::fs::read_to_string(&self.stderr).unwrap_or_default()
                    )
                    .into());
                }
            }
            if started.elapsed() > GUARD {
                return Err(format!("'{marker}' not printed in {GUARD:?}").into());
            }
        }
    }

    /// Whether `marker` was printed (reads what is there, waits for nothing).
    pub(crate) fn printed(&mut self, marker: &str) -> bool {
        self.lines.try_iter().any(|l| l == marker)
    }

    pub(crate) fn running(&mut self) -> TestResult<bool> {
        Ok(self.child.try_wait()?.is_none())
    }

    /// SIGKILL, and wait until the process is gone.
    pub(crate) fn kill(&mut self) -> TestResult {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Close standard input (the prompt ends) and wait for a clean exit.
    pub(crate) fn finish(&mut self) -> TestResult {
        drop(self.stdin.take());
        let status = self.child.wait()?;
        if !status.success() {
            return Err(format!(
                "lakeq exited with {status}: {}",
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            )
            .into());
        }
        Ok(())
    }
}

/// The temporary directory of the lakeq processes (where SQLite forks go).
fn child_tmp(lake: &TestLake) -> PathBuf {
    lake.dir.join("tmp")
}

/// SQLite fork files (`lakeq-txn-*`: two copies and a lock file per
/// transaction) left in the processes' temporary directory.
fn sqlite_fork_files(lake: &TestLake) -> usize {
    std::fs::read_dir(child_tmp(lake))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("lakeq-txn-"))
                .count()
        })
        .unwrap_or(0)
}

/// The transactions whose fork exists: PostgreSQL scratch schemas or SQLite
/// fork files, one name per transaction.
async fn forks(lake: &TestLake, backend: Backend) -> TestResult<Vec<String>> {
    let mut names: Vec<String> = match backend {
        Backend::Postgres => scratch_schemas(lake)
            .await?
            .into_iter()
            .map(|s| {
                s.trim_end_matches("_base")
                    .trim_end_matches("_work")
                    .to_string()
            })
            .collect(),
        Backend::Sqlite => std::fs::read_dir(child_tmp(lake))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = name.strip_prefix("lakeq-txn-")?.get(..32)?.to_string();
                Some(id)
            })
            .collect(),
    };
    names.sort();
    names.dedup();
    Ok(names)
}

/// A connection to a PostgreSQL test lake's database.
async fn pg_connect(lake: &TestLake) -> TestResult<sqlx::PgConnection> {
    use sqlx::Connection;
    let db = lake
        .location
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("ducklake:postgres:dbname="))
        .ok_or("no dbname in the lake location")?;
    let url = std::env::var("LAKEQ_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    Ok(sqlx::PgConnection::connect(&format!("{base}/{db}")).await?)
}

/// The transaction scratch schemas in a PostgreSQL lake's database.
async fn scratch_schemas(lake: &TestLake) -> TestResult<Vec<String>> {
    let mut conn = pg_connect(lake).await?;
    Ok(sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'lakeq\\_txn\\_%' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await?)
}

/// What the lake holds, as lakeq reads it from a fresh session.
#[derive(Debug, Clone, PartialEq)]
struct State {
    snapshots: i64,
    /// `w, count, sum(i)` per writer.
    rows: Vec<Vec<String>>,
}

async fn state(lake: &TestLake) -> TestResult<State> {
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let snapshots = render_batches(&session.sql("SELECT count(*) FROM lake.snapshots()").await?)?.1
        [0][0]
        .parse()?;
    let rows = render_batches(
        &session
            .sql("SELECT w, count(*), sum(i) FROM lake.main.t GROUP BY w ORDER BY w")
            .await?,
    )?
    .1;
    Ok(State { snapshots, rows })
}

/// `before` plus one snapshot that added `n` rows `0..n` of writer `w`.
fn committed(before: &State, w: usize, n: usize) -> State {
    let mut rows = before.rows.clone();
    rows.push(vec![
        w.to_string(),
        n.to_string(),
        (n * (n - 1) / 2).to_string(),
    ]);
    rows.sort_by_key(|r| r[0].parse::<i64>().unwrap_or(0));
    State {
        snapshots: before.snapshots + 1,
        rows,
    }
}

/// The statements of transaction `w`: `n` rows of writer `w` in three INSERTs,
/// plus rows of writer 999 that a DELETE in the same transaction removes again.
fn transaction_body(w: usize, n: usize) -> Vec<String> {
    let third = n / 3;
    let mut out = Vec::new();
    for (lo, hi) in [(0, third), (third, 2 * third), (2 * third, n)] {
        out.push(format!(
            "INSERT INTO lake.main.t SELECT {w}, range FROM range({lo}, {hi});"
        ));
    }
    out.push("INSERT INTO lake.main.t VALUES (999, 1), (999, 2);".into());
    out.push("DELETE FROM lake.main.t WHERE w = 999;".into());
    out
}

/// After a kill: DuckDB opens the lake first and reads what lakeq reads; every
/// file the catalog references exists.
async fn check_consistent(lake: &TestLake, what: &str) -> TestResult {
    let expected = duckdb_sql_queries(
        lake,
        "query snapshots\nSELECT count(*) AS n, max(snapshot_id) AS last FROM lake.snapshots()\n\n\
         query rows\nSELECT w, count(*) AS n, sum(i) AS s, min(i) AS lo, max(i) AS hi FROM lake.main.t GROUP BY w ORDER BY w\n\n",
    )
    .map_err(|e| format!("{what}: DuckDB cannot read the lake: {e}"))?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));

    let opened = lake.open().await?;
    let latest = opened.store().latest_snapshot().await?;
    let catalog = opened.pin(latest).await?;
    let table = catalog.table("main", "t")?;
    for f in opened
        .store()
        .data_files(table.id(), catalog.snapshot.snapshot_id)
        .await?
    {
        let mut paths = vec![format!("{}{}", table.dir, f.path)];
        if let Some(d) = f.delete_file {
            paths.push(format!("{}{}", table.dir, d.path));
        }
        for path in paths {
            assert!(Path::new(&path).exists(), "{what}: missing file {path}");
        }
    }
    Ok(())
}

/// Tallies for the report at the end of each test.
#[derive(Debug, Default)]
struct Tally {
    kills: usize,
    unchanged: usize,
    committed: usize,
}

impl Tally {
    fn record(&mut self, outcome: &State, before: &State, after_commit: &State, what: &str) {
        self.kills += 1;
        if outcome == before {
            self.unchanged += 1;
        } else if outcome == after_commit {
            self.committed += 1;
        } else {
            panic!(
                "{what}: the lake is neither as before nor one snapshot with the whole \
                 transaction\n  before:    {before:?}\n  committed: {after_commit:?}\n  found:     {outcome:?}"
            );
        }
    }
}

/// Wait until `cond` holds (hang guard only).
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) -> TestResult {
    let started = Instant::now();
    while !cond() {
        if started.elapsed() > GUARD {
            return Err(format!("{what}: not within {GUARD:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

async fn killed_transactions(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "txn_killed").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session
        .sql("CREATE TABLE lake.main.t (w INTEGER, i BIGINT)")
        .await?;
    session
        .sql("INSERT INTO lake.main.t SELECT 0, range FROM range(100)")
        .await?;
    session
        .sql("CREATE TABLE lake.main.big (i BIGINT, s VARCHAR)")
        .await?;
    drop(session);
    let mut tally = Tally::default();
    let mut w = 0;
    let data = PathBuf::from(&lake.data_path);

    // 1. Killed while idle inside the transaction, after its statements ran.
    for round in 0..2 {
        w += 1;
        let before = state(&lake).await?;
        let mut repl = Repl::start(&lake, &format!("idle{round}"), &[])?;
        repl.send("BEGIN;")?;
        for stmt in transaction_body(w, 300) {
            repl.send(&stmt)?;
        }
        repl.phase("in-transaction")?;
        // The fork exists: the process is inside its transaction (a killed
        // one's fork was removed by this BEGIN).
        match backend {
            Backend::Sqlite => assert_eq!(sqlite_fork_files(&lake), 3, "two copies, a lock"),
            Backend::Postgres => assert_eq!(scratch_schemas(&lake).await?.len(), 2),
        }
        repl.kill()?;
        check_consistent(&lake, &format!("idle kill {round}")).await?;
        tally.record(
            &state(&lake).await?,
            &before,
            &committed(&before, w, 300),
            "idle kill",
        );
        assert_eq!(state(&lake).await?, before, "an unfinished transaction");
    }

    // 2. Killed in the middle of a statement inside the transaction: a large
    //    INSERT whose data file is on disk while the statement has not ended.
    {
        w += 1;
        let before = state(&lake).await?;
        let mut repl = Repl::start(&lake, "mid_statement", &[])?;
        repl.send("BEGIN;")?;
        for stmt in transaction_body(w, 300) {
            repl.send(&stmt)?;
        }
        repl.phase("in-transaction")?;
        let files = files_under(&data);
        repl.send(
            "INSERT INTO lake.main.big SELECT range, md5(range::VARCHAR) || md5((range + 1)::VARCHAR) \
             FROM range(4000000);",
        )?;
        repl.send("SELECT 'inserted' AS phase;")?;
        wait_until("the large INSERT's file", || files_under(&data) > files).await?;
        assert!(
            repl.running()? && !repl.printed("inserted"),
            "the large INSERT finished before the kill; make it larger"
        );
        repl.kill()?;
        check_consistent(&lake, "kill mid-statement").await?;
        tally.record(
            &state(&lake).await?,
            &before,
            &committed(&before, w, 300),
            "kill mid-statement",
        );
        assert_eq!(state(&lake).await?, before);
    }

    // 3. Killed inside COMMIT's catalog transaction. The test holds a lock the
    //    commit needs, proves the process waits inside the catalog transaction,
    //    then kills it.
    {
        w += 1;
        let before = state(&lake).await?;
        let mut repl = Repl::start(
            &lake,
            "in_commit",
            &[("LAKEQ_SQLITE_BUSY_TIMEOUT_MS", "600000")],
        )?;
        repl.send("BEGIN;")?;
        for stmt in transaction_body(w, 300) {
            repl.send(&stmt)?;
        }
        repl.phase("in-transaction")?;
        match backend {
            Backend::Sqlite => {
                use sqlx::Connection;
                let meta = lake.dir.join("meta.sqlite");
                let journal = lake.dir.join("meta.sqlite-journal");
                // A reader: lakeq's commit gets its write lock and writes its
                // rollback journal, then waits for the reader to go.
                let mut reader =
                    sqlx::SqliteConnection::connect(&format!("sqlite:{}", meta.display())).await?;
                sqlx::raw_sql("BEGIN; SELECT count(*) FROM ducklake_snapshot;")
                    .execute(&mut reader)
                    .await?;
                repl.send("COMMIT;")?;
                repl.send("SELECT 'committed' AS phase;")?;
                wait_until("the commit's rollback journal", || journal.exists()).await?;
                assert!(repl.running()? && !repl.printed("committed"));
                repl.kill()?;
                assert!(
                    journal.exists(),
                    "the killed commit leaves its rollback journal"
                );
                sqlx::raw_sql("ROLLBACK").execute(&mut reader).await?;
                drop(reader);
            }
            Backend::Postgres => {
                let mut holder = pg_connect(&lake).await?;
                sqlx::raw_sql("BEGIN; LOCK TABLE lakeq_meta.ducklake_table_stats IN SHARE MODE;")
                    .execute(&mut holder)
                    .await?;
                repl.send("COMMIT;")?;
                repl.send("SELECT 'committed' AS phase;")?;
                // The commit's backend: waiting on a lock, with a transaction id
                // (it already wrote the snapshot row) and the merge as its query.
                let mut watcher = pg_connect(&lake).await?;
                let started = Instant::now();
                let pid = loop {
                    let found: Option<i32> = sqlx::query_scalar(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                         AND wait_event_type = 'Lock' AND backend_xid IS NOT NULL \
                         AND query LIKE '%INSERT INTO \"lakeq_meta\".\"ducklake_snapshot\"%'",
                    )
                    .fetch_optional(&mut watcher)
                    .await?;
                    if let Some(pid) = found {
                        break pid;
                    }
                    assert!(
                        started.elapsed() < GUARD,
                        "the commit never waited inside its catalog transaction"
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                };
                assert!(repl.running()? && !repl.printed("committed"));
                repl.kill()?;
                sqlx::raw_sql("ROLLBACK").execute(&mut holder).await?;
                // The orphaned backend finishes its statement, finds its client
                // gone and aborts; wait until it has.
                let started = Instant::now();
                loop {
                    let alive: i64 =
                        sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = $1")
                            .bind(pid)
                            .fetch_one(&mut watcher)
                            .await?;
                    if alive == 0 {
                        break;
                    }
                    assert!(started.elapsed() < GUARD, "backend {pid} never ended");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
        check_consistent(&lake, "kill inside COMMIT").await?;
        tally.record(
            &state(&lake).await?,
            &before,
            &committed(&before, w, 300),
            "kill inside COMMIT",
        );
        assert_eq!(
            state(&lake).await?,
            before,
            "a commit killed before its end"
        );
    }

    // 4. Killed at a sweep of moments after COMMIT was sent: either nothing or
    //    the whole transaction, whichever side of the catalog commit it landed.
    for delay_ms in [0u64, 2, 5, 10, 20, 40, 80, 160] {
        w += 1;
        let before = state(&lake).await?;
        let mut repl = Repl::start(&lake, &format!("sweep{delay_ms}"), &[])?;
        repl.send("BEGIN;")?;
        for stmt in transaction_body(w, 300) {
            repl.send(&stmt)?;
        }
        repl.phase("in-transaction")?;
        repl.send("COMMIT;")?;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        repl.kill()?;
        check_consistent(&lake, &format!("kill {delay_ms} ms after COMMIT")).await?;
        tally.record(
            &state(&lake).await?,
            &before,
            &committed(&before, w, 300),
            &format!("kill {delay_ms} ms after COMMIT"),
        );
    }

    // 5. A transaction that commits before the kill is there, whole.
    {
        w += 1;
        let before = state(&lake).await?;
        let mut repl = Repl::start(&lake, "after_commit", &[])?;
        repl.send("BEGIN;")?;
        for stmt in transaction_body(w, 300) {
            repl.send(&stmt)?;
        }
        repl.send("COMMIT;")?;
        repl.phase("committed")?;
        repl.kill()?;
        check_consistent(&lake, "kill after COMMIT").await?;
        tally.record(
            &state(&lake).await?,
            &before,
            &committed(&before, w, 300),
            "kill after COMMIT",
        );
        assert_eq!(state(&lake).await?, committed(&before, w, 300));
    }

    // What a kill leaves: on PostgreSQL, scratch schemas, which the next BEGIN
    // drops; on SQLite, the fork's temporary files, which stay.
    {
        w += 1;
        let before = state(&lake).await?;
        let mut repl = Repl::start(&lake, "leftovers", &[])?;
        repl.send("BEGIN;")?;
        for stmt in transaction_body(w, 300) {
            repl.send(&stmt)?;
        }
        repl.phase("in-transaction")?;
        repl.kill()?;
        tally.record(
            &state(&lake).await?,
            &before,
            &committed(&before, w, 300),
            "leftovers",
        );
    }
    // The killed transaction's fork stays until the next BEGIN (in another
    // process: a SQLite fork's lock is held per open file) removes it.
    let left = forks(&lake, backend).await?;
    assert_eq!(left.len(), 1, "the killed transaction left its fork");
    {
        let mut next = Repl::start(&lake, "next_begin", &[])?;
        next.send("BEGIN;")?;
        next.phase("began")?;
        let during = forks(&lake, backend).await?;
        assert_eq!(during.len(), 1, "only this transaction's: {during:?}");
        assert!(during.iter().all(|s| !left.contains(s)));
        next.send("ROLLBACK;")?;
        next.finish()?;
    }
    assert_eq!(forks(&lake, backend).await?, Vec::<String>::new());
    assert_eq!(sqlite_fork_files(&lake), 0, "no SQLite fork file left");

    // The files the killed transactions wrote are orphans, which DuckLake's
    // orphan clean-up removes; the lake still reads the same afterwards.
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let referenced = render_batches(
        &session
            .sql(
                "SELECT count(*) FROM ducklake_list_files('lake', 't') \
                 UNION ALL SELECT count(*) FROM ducklake_list_files('lake', 'big')",
            )
            .await?,
    )?
    .1;
    let referenced: usize = referenced
        .iter()
        .map(|r| r[0].parse::<usize>().unwrap_or(0))
        .sum();
    let orphans = files_under(&data) - referenced;
    session
        .sql("CALL ducklake_delete_orphaned_files('lake', cleanup_all => true)")
        .await?;
    // The partial upload of the write killed mid-statement (object_store's
    // `<file>.parquet#<n>` staging file) went with them.
    assert_eq!(
        files_under(&data),
        referenced,
        "files left after the orphan clean-up: {:?}",
        crate::common::list_files(&data)
    );
    check_consistent(&lake, "after the orphan clean-up").await?;

    eprintln!(
        "{backend:?}: {} kills inside transactions; {} left the lake as it was, {} left the whole \
         transaction; 0 rows lost; {} orphaned files (partial uploads included) removed by \
         ducklake_delete_orphaned_files",
        tally.kills, tally.unchanged, tally.committed, orphans,
    );
    assert_eq!(tally.kills, tally.unchanged + tally.committed);
    assert!(tally.committed >= 1 && tally.unchanged >= 4);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_transactions_leave_nothing_or_everything_on_sqlite() -> TestResult {
    killed_transactions(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_transactions_leave_nothing_or_everything_on_postgres() -> TestResult {
    killed_transactions(Backend::Postgres).await
}

/// The next `BEGIN` removes the fork of a killed process (PostgreSQL scratch
/// schemas, SQLite fork files), never that of a live transaction in another
/// process, which then commits normally.
async fn forks_of_live_transactions_are_kept(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "txn_forks").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session
        .sql("CREATE TABLE lake.main.t (w INTEGER, i BIGINT)")
        .await?;
    let before = state(&lake).await?;

    // A live transaction's schemas ...
    let mut live = Repl::start(&lake, "live", &[])?;
    live.send("BEGIN;")?;
    for stmt in transaction_body(1, 30) {
        live.send(&stmt)?;
    }
    live.phase("in-transaction")?;
    let live_forks = forks(&lake, backend).await?;
    assert_eq!(live_forks.len(), 1);

    // ... and a killed process's.
    let mut killed = Repl::start(&lake, "killed", &[])?;
    killed.send("BEGIN;")?;
    killed.send("INSERT INTO lake.main.t VALUES (7, 7);")?;
    killed.phase("in-transaction")?;
    killed.kill()?;
    let dead: Vec<String> = forks(&lake, backend)
        .await?
        .into_iter()
        .filter(|s| !live_forks.contains(s))
        .collect();
    assert_eq!(dead.len(), 1, "the killed transaction's fork is left");

    // Another process's BEGIN: the dead fork goes, the live one stays.
    let mut other = Repl::start(&lake, "other", &[])?;
    other.send("BEGIN;")?;
    other.phase("began")?;
    let now = forks(&lake, backend).await?;
    assert!(dead.iter().all(|s| !now.contains(s)), "{now:?}");
    assert!(live_forks.iter().all(|s| now.contains(s)), "{now:?}");
    assert_eq!(now.len(), 2, "the live transaction's and the new one's");
    other.send("ROLLBACK;")?;
    other.finish()?;

    // The live transaction goes on and commits, whole.
    live.send("INSERT INTO lake.main.t VALUES (1, 30);")?;
    live.send("COMMIT;")?;
    live.phase("committed")?;
    live.finish()?;
    assert_eq!(state(&lake).await?, committed(&before, 1, 31));
    assert_eq!(forks(&lake, backend).await?, Vec::<String>::new());
    assert_eq!(sqlite_fork_files(&lake), 0);
    check_consistent(&lake, "after the live transaction").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_scratch_schemas_of_live_transactions_are_kept() -> TestResult {
    forks_of_live_transactions_are_kept(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_forks_of_live_transactions_are_kept() -> TestResult {
    forks_of_live_transactions_are_kept(Backend::Sqlite).await
}

/// A process that ends cleanly inside a transaction (a script without COMMIT,
/// or one stopped by an error) rolls it back: no fork is left (no temporary
/// SQLite file, no PostgreSQL schema), no file it wrote, no snapshot.
async fn clean_exit_inside_a_transaction(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "txn_exit").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session
        .sql("CREATE TABLE lake.main.t (w INTEGER, i BIGINT)")
        .await?;
    let before = state(&lake).await?;
    let files = files_under(Path::new(&lake.data_path));
    let tmp = child_tmp(&lake);
    std::fs::create_dir_all(&tmp)?;
    for (script, succeeds) in [
        (
            "BEGIN; INSERT INTO lake.main.t VALUES (1, 1); INSERT INTO lake.main.t VALUES (1, 2)",
            true,
        ),
        (
            "BEGIN; INSERT INTO lake.main.t VALUES (2, 1); SELECT * FROM lake.main.nosuch",
            false,
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lakeq"))
            .args([
                "sql",
                "-c",
                &format!("{}; {script}", lake.attach_sql("lake")),
            ])
            .current_dir(&lake.dir)
            .env("TMPDIR", &tmp)
            .output()?;
        assert_eq!(
            out.status.success(),
            succeeds,
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(sqlite_fork_files(&lake), 0, "{script}: SQLite fork left");
        if backend == Backend::Postgres {
            assert_eq!(
                scratch_schemas(&lake).await?,
                Vec::<String>::new(),
                "{script}"
            );
        }
        assert_eq!(
            files_under(Path::new(&lake.data_path)),
            files,
            "{script}: the transaction's files"
        );
        assert_eq!(state(&lake).await?, before, "{script}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_exit_inside_a_transaction_rolls_it_back_on_sqlite() -> TestResult {
    clean_exit_inside_a_transaction(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_exit_inside_a_transaction_rolls_it_back_on_postgres() -> TestResult {
    clean_exit_inside_a_transaction(Backend::Postgres).await
}
