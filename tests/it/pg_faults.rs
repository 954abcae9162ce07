//! A PostgreSQL catalog server stopped in the middle of a commit. The shared
//! test server must keep running, so the test starts a private PostgreSQL
//! (`initdb` into a temporary folder, its own port and socket folder, run as the
//! `postgres` user when the test runs as root), holds a lock that lakeq's
//! commit needs, proves the commit is waiting inside its catalog transaction
//! (its backend waits on a lock and holds a transaction id: it has written
//! rows), then stops the server with `pg_ctl stop -m immediate` (no clean
//! shutdown: the server recovers from its WAL at the next start) and starts it
//! again.
//!
//! Both a plain INSERT and a `BEGIN ... COMMIT` transaction: the writer fails
//! with an error that names the catalog (or its retry commits the whole
//! change), the lake is exactly as before or has exactly the whole change,
//! DuckDB 1.5.5 reads what lakeq reads, and the same `lakeq sql` session writes
//! again once the server is back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{
    TestLake, TestResult, canonical::render_batches, compare_with_oracle, duckdb_sql_queries,
    scratch_dir,
};
use crate::txn_faults::Repl;

/// Hang guard for what the test waits for (never reached when all is well).
const GUARD: Duration = Duration::from_secs(120);

/// A private PostgreSQL server in a temporary folder.
struct PrivatePg {
    bin: PathBuf,
    root: PathBuf,
    port: u16,
}

impl PrivatePg {
    /// `initdb` and start a server on a free port.
    fn start() -> TestResult<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| {
                format!("PostgreSQL server binaries are required in /usr/lib/postgresql: {e}")
            })?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .ok_or("no /usr/lib/postgresql/<version>/bin/initdb")?;
        // Under /tmp: the server's user must reach it.
        let root = std::env::temp_dir().join(format!("lakeq-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&root)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let pg = Self { bin, root, port };
        if running_as_root()? {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(&pg.root))?;
        }
        pg.as_server(
            &pg.bin.join("initdb"),
            &[
                "-D",
                &pg.data(),
                "--auth=trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )?;
        pg.start_again()?;
        Ok(pg)
    }

    fn data(&self) -> String {
        self.root.join("data").display().to_string()
    }

    /// Run a server binary, as `postgres` when the test runs as root.
    fn as_server(&self, program: &Path, args: &[&str]) -> TestResult {
        let mut cmd = if running_as_root()? {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        run(cmd.args(args))
    }

    fn start_again(&self) -> TestResult {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.root.display()
        );
        let log = self.root.join("server.log").display().to_string();
        self.as_server(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        )
    }

    /// Stop at once: no checkpoint, connections cut, recovery at the next start.
    fn stop_immediately(&self) -> TestResult {
        self.as_server(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        )
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self.stop_immediately();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn running_as_root() -> TestResult<bool> {
    let out = Command::new("id").arg("-u").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn run(cmd: &mut Command) -> TestResult {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// Snapshot count and the rows of `lake.main.t` per writer, read by lakeq.
async fn state(lake: &TestLake) -> TestResult<(String, Vec<Vec<String>>)> {
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let snapshots = render_batches(&session.sql("SELECT count(*) FROM lake.snapshots()").await?)?
        .1
        .first()
        .and_then(|r| r.first())
        .cloned()
        .ok_or("no snapshot count")?;
    let rows = render_batches(
        &session
            .sql("SELECT w, count(*), sum(i) FROM lake.main.t GROUP BY w ORDER BY w")
            .await?,
    )?
    .1;
    Ok((snapshots, rows))
}

/// DuckDB opens the lake first (after the server's recovery) and reads what lakeq reads.
async fn duckdb_agrees(lake: &TestLake, what: &str) -> TestResult {
    let expected = duckdb_sql_queries(
        lake,
        "query snapshots\nSELECT count(*) AS n, max(snapshot_id) AS last FROM lake.snapshots()\n\n\
         query rows\nSELECT w, count(*) AS n, sum(i) AS s FROM lake.main.t GROUP BY w ORDER BY w\n",
    )
    .map_err(|e| format!("{what}: DuckDB cannot read the lake: {e}"))?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_inside_a_commit_fails_it_cleanly() -> TestResult {
    use sqlx::Connection;
    let pg = PrivatePg::start()?;
    let dir = scratch_dir("pg_stop");
    let lake = TestLake {
        location: format!(
            "ducklake:postgres:dbname=postgres host=127.0.0.1 port={} user=postgres",
            pg.port
        ),
        metadata_schema: Some("lakeq_meta".into()),
        data_path: format!("{}/data/", dir.display()),
        dir,
    };
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session
        .sql("CREATE TABLE lake.main.t (w INTEGER, i BIGINT)")
        .await?;
    session
        .sql("INSERT INTO lake.main.t SELECT 0, range FROM range(100)")
        .await?;
    drop(session);

    let cases = [
        (
            "insert",
            "INSERT INTO lake.main.t SELECT 1, range FROM range(1000);",
        ),
        (
            "transaction",
            "BEGIN; INSERT INTO lake.main.t SELECT 2, range FROM range(500); \
             INSERT INTO lake.main.t SELECT 2, range FROM range(500, 1000); COMMIT;",
        ),
    ];
    let (mut failed, mut retried) = (0, 0);
    for (w, (name, write)) in (1..).zip(cases) {
        let before = state(&lake).await?;
        let mut repl = Repl::start(&lake, name, &[])?;
        repl.phase("attached")?;
        // A lock the commit needs: it waits inside its catalog transaction.
        let mut holder = sqlx::PgConnection::connect(&pg.url()).await?;
        sqlx::raw_sql("BEGIN; LOCK TABLE lakeq_meta.ducklake_table_stats IN SHARE MODE;")
            .execute(&mut holder)
            .await?;
        repl.send(write)?;
        let mut watcher = sqlx::PgConnection::connect(&pg.url()).await?;
        let started = Instant::now();
        let (pid, query) = loop {
            let found: Option<(i32, String)> = sqlx::query_as(
                "SELECT pid, left(query, 80) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                 AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()",
            )
            .fetch_optional(&mut watcher)
            .await?;
            if let Some(found) = found {
                break found;
            }
            assert!(
                started.elapsed() < GUARD,
                "{name}: the commit never waited inside its catalog transaction"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        println!(
            "{name}: commit backend {pid} waits on a lock holding a transaction id, in: {query}"
        );
        assert!(repl.running()?, "{name}: the writer ended before the stop");
        drop(watcher);
        pg.stop_immediately()?;
        drop(holder);
        pg.start_again()?;
        // Sent once the server is back: while it is down, every statement
        // fails (each first refreshes the catalog), the marker's too.
        repl.phase("written")?;
        let after = state(&lake).await?;
        let whole = {
            let mut rows = before.1.clone();
            rows.push(vec![
                w.to_string(),
                "1000".into(),
                (999 * 1000 / 2).to_string(),
            ]);
            let snapshots: i64 = before.0.parse()?;
            ((snapshots + 1).to_string(), rows)
        };
        let stderr = std::fs::read_to_string(lake.dir.join(format!("{name}.stderr")))?;
        if after == before {
            assert!(
                stderr.contains(&format!("port={}", pg.port))
                    && stderr.contains("metadata catalog"),
                "{name}: the error names the catalog: {stderr}"
            );
            failed += 1;
            println!("{name}: failed cleanly: {}", stderr.trim());
        } else {
            assert_eq!(
                after, whole,
                "{name}: the lake is as before or has the whole change"
            );
            retried += 1;
        }
        duckdb_agrees(&lake, name).await?;
        // The session writes again once the server is back.
        repl.send(&format!("INSERT INTO lake.main.t VALUES ({}, 7);", w + 10))?;
        repl.phase("again")?;
        // The prompt exits non-zero when a statement failed (the one stopped).
        let _ = repl.finish();
        let again = state(&lake).await?;
        assert!(
            again
                .1
                .iter()
                .any(|r| r.first() == Some(&(w + 10).to_string())),
            "{name}: the session's next write after the restart: {}",
            std::fs::read_to_string(lake.dir.join(format!("{name}.stderr")))?
        );
        duckdb_agrees(&lake, &format!("{name}, written again")).await?;
    }
    println!(
        "PostgreSQL stopped inside 2 commits: {failed} failed cleanly, {retried} committed whole by a retry; 0 rows lost"
    );
    Ok(())
}
