//! Faults injected with real components: a read-only SQLite catalog (the file,
//! and its directory), a full disk on the data path (a 2 MiB tmpfs), and an S3
//! server (moto) that stops answering in the middle of a large CREATE TABLE AS.
//! Each write fails with an error that names what failed, the lake keeps its
//! snapshots, files and rows, and DuckDB 1.5.5 reads what lakeq reads.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    Backend, TestLake, TestResult, canonical::render_batches, compare_with_oracle, duckdb_run,
    duckdb_sql_queries, files_under, oracle_python,
};

/// Snapshot count and rows of `lake.t`, read by lakeq in-process.
async fn lake_state(lake: &TestLake) -> TestResult<(String, Vec<Vec<String>>)> {
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let snapshots = render_batches(&session.sql("SELECT count(*) FROM lake.snapshots()").await?)?.1
        [0][0]
        .clone();
    let rows = render_batches(
        &session
            .sql("SELECT count(*), sum(i), min(s), max(s) FROM lake.t")
            .await?,
    )?
    .1;
    Ok((snapshots, rows))
}

async fn duckdb_agrees(lake: &TestLake, what: &str) -> TestResult {
    let expected = duckdb_sql_queries(
        lake,
        "query t\nSELECT count(*) AS n, sum(i) AS s, min(s) AS lo, max(s) AS hi FROM lake.t\n\n\
         query tables\nSELECT table_name FROM information_schema.tables WHERE table_catalog = 'lake' AND table_schema = 'main' ORDER BY 1\n\n",
    )?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
    Ok(())
}

fn running_as_root() -> TestResult<bool> {
    let out = Command::new("id").arg("-u").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn chmod(path: &Path, mode: u32) -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Directories under `dir` (and `dir`) open to everyone, so that an
/// unprivileged writer may write data files: only the catalog can stop it.
fn open_dirs(dir: &Path) -> TestResult {
    chmod(dir, 0o777)?;
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            open_dirs(&p)?;
        }
    }
    Ok(())
}

/// `lakeq sql -c` as a user that file permissions apply to (root ignores them:
/// as root the process runs as `nobody`).
fn lakeq_unprivileged(lake: &TestLake, sql: &str) -> TestResult<Output> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakeq"));
    cmd.args([
        "sql",
        "--format",
        "csv",
        "-c",
        &format!("{}; {sql}", lake.attach_sql("lake")),
    ])
    .current_dir(&lake.dir)
    .env("TMPDIR", lake.dir.join("tmp"));
    if running_as_root()? {
        cmd.uid(65534).gid(65534);
    }
    Ok(cmd.output()?)
}

/// A read-only catalog: the file (0444 in a writable directory), then its
/// directory (0555, so SQLite cannot create its rollback journal). Writes —
/// single statements, CREATE TABLE, a transaction's COMMIT — fail with an error
/// naming the catalog; reads work; nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_sqlite_catalog_refuses_writes_and_still_reads() -> TestResult {
    let lake = TestLake::new(Backend::Sqlite, "ro_catalog").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session
        .sql("CREATE TABLE lake.t AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(100)")
        .await?;
    drop(session);
    std::fs::create_dir_all(lake.dir.join("tmp"))?;
    open_dirs(&lake.dir)?;
    let meta = lake.dir.join("meta.sqlite");
    let before = lake_state(&lake).await?;
    let files = files_under(Path::new(&lake.data_path));
    let mut refused = 0;
    for (variant, file_mode, dir_mode) in [
        ("read-only file", 0o444, 0o777),
        ("read-only directory", 0o666, 0o555),
    ] {
        chmod(&meta, file_mode)?;
        chmod(&lake.dir, dir_mode)?;
        let read = lakeq_unprivileged(&lake, "SELECT count(*) AS n, sum(i) AS s FROM lake.t")?;
        assert!(
            read.status.success(),
            "{variant}: reads fail: {}",
            String::from_utf8_lossy(&read.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&read.stdout), "n,s\n100,4950\n");
        for write in [
            "INSERT INTO lake.t VALUES (1000, 'x')",
            "CREATE TABLE lake.u (i INTEGER)",
            "DELETE FROM lake.t WHERE i < 10",
            "BEGIN; INSERT INTO lake.t VALUES (1001, 'y'); COMMIT",
        ] {
            let out = lakeq_unprivileged(&lake, write)?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{variant}: {write} succeeded");
            assert!(
                stderr.contains(&format!("ducklake:sqlite:{}", meta.display()))
                    && stderr.contains("readonly database"),
                "{variant}: {write}: the error names the catalog and says it is read-only: {stderr}"
            );
            refused += 1;
            assert_eq!(lake_state(&lake).await?, before, "{variant}: {write}");
            assert_eq!(
                files_under(Path::new(&lake.data_path)),
                files,
                "{variant}: {write}: files written by the failed statement stay"
            );
        }
        chmod(&lake.dir, 0o777)?;
    }
    chmod(&meta, 0o644)?;
    assert_eq!(refused, 8);
    duckdb_agrees(&lake, "after the refused writes").await?;
    Ok(())
}

/// A tmpfs mounted on a lake's data path, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> TestResult<Self> {
        std::fs::create_dir_all(dir)?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "this test mounts a {size} tmpfs as the data path, which needs root \
                 (CAP_SYS_ADMIN), as scripts/test.sh has in CI: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(Self(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The data path on a 2 MiB filesystem: writes that do not fit fail with the
/// operating system's "No space left on device" naming the data file; the lake
/// keeps its snapshots, files and rows, and takes writes that fit afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_on_the_data_path_fails_the_write_and_changes_nothing() -> TestResult {
    let lake = TestLake::new(Backend::Sqlite, "disk_full").await?;
    let _disk = SmallDisk::mount(Path::new(&lake.data_path), "2m")?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session
        .sql("CREATE TABLE lake.t AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(1000)")
        .await?;
    let big = "SELECT range AS i, md5(range::VARCHAR) AS s FROM range(200000)";
    let mut failures = 0;
    for statements in [
        vec![format!("CREATE TABLE lake.big AS {big}")],
        vec![format!("INSERT INTO lake.t {big}")],
        vec![
            "BEGIN".to_string(),
            "INSERT INTO lake.t VALUES (-1, 'in the transaction')".to_string(),
            format!("INSERT INTO lake.t {big}"),
        ],
    ] {
        let before = lake_state(&lake).await?;
        let files = files_under(Path::new(&lake.data_path));
        let mut error = None;
        for stmt in &statements {
            if let Err(e) = session.sql(stmt).await {
                error = Some(e.to_string());
                break;
            }
        }
        let error = error.ok_or_else(|| format!("{statements:?} fitted in 2 MiB"))?;
        failures += 1;
        assert!(
            error.contains("No space left on device") && error.contains(&lake.data_path),
            "the error names the file and the cause: {error}"
        );
        if session.in_transaction() {
            session.sql("COMMIT").await?; // an aborted transaction: rolled back
        }
        assert_eq!(lake_state(&lake).await?, before, "{statements:?}");
        assert_eq!(
            files_under(Path::new(&lake.data_path)),
            files,
            "{statements:?}: the partial files are removed"
        );
    }
    assert_eq!(failures, 3);
    duckdb_agrees(&lake, "after a full disk").await?;
    // Space is back: a write that fits goes through.
    session
        .sql("INSERT INTO lake.t VALUES (1000, 'fits')")
        .await?;
    assert_eq!(lake_state(&lake).await?.1[0][0], "1001");
    duckdb_agrees(&lake, "after a write that fits").await?;
    Ok(())
}

/// A moto S3 server, killed on drop.
struct S3Server {
    child: Child,
    port: u16,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    fn start() -> TestResult<Self> {
        let (python, _) = oracle_python()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = Self { child, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err("moto's S3 server did not start within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `kill -<sig>` the server (STOP: it answers nothing; CONT: it goes on).
    fn signal(&self, sig: &str) -> TestResult {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()?;
        if !status.success() {
            return Err(format!("kill -{sig} failed").into());
        }
        Ok(())
    }

    /// Run a Python snippet with a boto3 client `c` for this server.
    fn boto(&self, code: &str) -> TestResult<Output> {
        let (python, _) = oracle_python()?;
        let prelude = format!(
            "import boto3, time\nc = boto3.client('s3', endpoint_url='{}', aws_access_key_id='k', \
             aws_secret_access_key='s', region_name='us-east-1')\n",
            self.endpoint()
        );
        Ok(Command::new(python)
            .arg("-c")
            .arg(format!("{prelude}{code}"))
            .output()?)
    }

    fn lakeq(&self, dir: &Path, sql: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakeq"));
        cmd.current_dir(dir)
            .args(["sql", "--format", "csv", "-c", sql])
            .env("AWS_ACCESS_KEY_ID", "lakeq-test")
            .env("AWS_SECRET_ACCESS_KEY", "lakeq-test-secret")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_ALLOW_HTTP", "true")
            // Each request gives up after 2 s (object_store then retries with
            // backoff, about a minute in all), so the stopped server fails the
            // statement in reasonable time.
            .env("AWS_TIMEOUT", "2s");
        cmd
    }
}

/// The S3 server stops answering (SIGSTOP) while a large CREATE TABLE AS is
/// uploading its data file: the statement fails with an error naming the file,
/// the catalog keeps its snapshots, and once the server goes on (SIGCONT) lakeq
/// and DuckDB read the same rows as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_s3_server_fails_the_write_and_changes_nothing() -> TestResult {
    let s3 = S3Server::start()?;
    let made = s3.boto("c.create_bucket(Bucket='faults')")?;
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let dir = crate::common::scratch_dir("s3_stopped");
    let attach = format!(
        "ATTACH 'ducklake:sqlite:{}/meta.sqlite' AS lake (DATA_PATH 's3://faults/lake/')",
        dir.display()
    );
    let run = |sql: &str| -> TestResult<Output> {
        Ok(s3.lakeq(&dir, &format!("{attach}; {sql}")).output()?)
    };
    let ok = |sql: &str| -> TestResult<String> {
        let out = run(sql)?;
        if !out.status.success() {
            return Err(format!("{sql}: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    ok("CREATE TABLE lake.t AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(1000)")?;
    let state_sql = "SELECT count(*) AS snapshots FROM lake.snapshots(); \
                     SELECT count(*) AS n, sum(i) AS s, min(s) AS lo, max(s) AS hi FROM lake.t; \
                     SELECT count(*) AS tables FROM information_schema.tables WHERE table_catalog = 'lake' AND table_name = 'big'";
    let before = ok(state_sql)?;

    let mut writer = s3
        .lakeq(
            &dir,
            &format!(
                "{attach}; CREATE TABLE lake.big AS SELECT range AS i, \
                 md5(range::VARCHAR) || md5((range + 1)::VARCHAR) AS s FROM range(3000000)"
            ),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    // Stop the server once the data file's multipart upload is under way.
    let waited = s3.boto(
        "t = time.time()\n\
         while not c.list_multipart_uploads(Bucket='faults').get('Uploads'):\n\
         \x20   assert time.time() - t < 120, 'no upload began'\n\
         \x20   time.sleep(0.01)\n",
    )?;
    s3.signal("STOP")?;
    assert!(
        waited.status.success(),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );
    assert!(
        writer.try_wait()?.is_none(),
        "the CREATE TABLE AS ended before the server stopped"
    );
    let out = writer.wait_with_output()?;
    s3.signal("CONT")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the write succeeded: {stderr}");
    assert!(
        stderr.contains("s3://faults/lake/main/big/ducklake-"),
        "the error names the data file: {stderr}"
    );
    assert_eq!(ok(state_sql)?, before, "the lake is as it was");

    // DuckDB reads what lakeq reads, from the same server.
    let script = dir.join("q.slt");
    std::fs::write(
        &script,
        format!(
            "statement ok\nCREATE SECRET (TYPE s3, KEY_ID 'lakeq-test', SECRET 'lakeq-test-secret', REGION 'us-east-1', ENDPOINT '127.0.0.1:{}', URL_STYLE 'path', USE_SSL false)\n\n\
             query t\nSELECT count(*) AS n, sum(i) AS s, min(s) AS lo, max(s) AS hi FROM lake.t\n\n\
             query snapshots\nSELECT count(*) AS snapshots FROM lake.snapshots()\n\n",
            s3.port
        ),
    )?;
    let expected = duckdb_run(std::slice::from_ref(&attach), &script)?;
    let lakeq_csv = ok(
        "SELECT count(*) AS n, sum(i) AS s, min(s) AS lo, max(s) AS hi FROM lake.t; \
         SELECT count(*) AS snapshots FROM lake.snapshots()",
    )?;
    let duckdb_csv: String = expected
        .iter()
        .map(|q| {
            let mut text = q.columns.join(",") + "\n";
            for r in &q.rows {
                text.push_str(&r.join(","));
                text.push('\n');
            }
            text
        })
        .collect();
    assert_eq!(lakeq_csv, duckdb_csv);
    eprintln!("the stopped server's error: {}", stderr.trim());
    Ok(())
}

/// A DuckDB 1.5.5 session (Python) attached to `lake` that holds a query result
/// it has not read to the end, as a notebook cursor does; it answers commands
/// on its standard input (`insert`: one row from DuckDB; `quit`).
struct DuckDbCursor {
    child: Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl DuckDbCursor {
    fn open(lake: &TestLake) -> TestResult<Self> {
        let (python, ext) = oracle_python()?;
        let script = format!(
            r#"
import duckdb, sys
c = duckdb.connect()
for e in ("ducklake", "sqlite_scanner"):
    c.execute("LOAD '{ext}/" + e + ".duckdb_extension'")
c.execute("""{attach}""")
held = c.cursor()
held.execute("SELECT * FROM lake.snapshots()")
held.fetchone()
print("holding", flush=True)
for line in sys.stdin:
    if line.strip() == "insert":
        c.execute("INSERT INTO lake.t VALUES (1000, 'duckdb')")
        print("inserted", flush=True)
    else:
        break
"#,
            attach = lake.attach_sql("lake"),
        );
        let path = lake.dir.join("cursor.py");
        std::fs::write(&path, script)?;
        let mut child = Command::new(python)
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut cursor = Self {
            child,
            stdin,
            stdout,
        };
        cursor.expect("holding")?;
        Ok(cursor)
    }

    fn expect(&mut self, word: &str) -> TestResult {
        use std::io::BufRead;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        if line.trim() != word {
            return Err(format!("DuckDB printed {line:?}, not {word:?}").into());
        }
        Ok(())
    }

    fn command(&mut self, cmd: &str) -> TestResult {
        use std::io::Write;
        writeln!(self.stdin, "{cmd}")?;
        self.stdin.flush()?;
        Ok(())
    }

    fn quit(mut self) -> TestResult {
        self.command("quit")?;
        let status = self.child.wait()?;
        assert!(status.success(), "the DuckDB session failed");
        Ok(())
    }
}

/// The catalog's journal mode, as SQLite reports it.
async fn journal_mode(lake: &TestLake) -> TestResult<String> {
    use sqlx::Connection;
    let path = lake.location.trim_start_matches("ducklake:sqlite:");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}")).await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(mode)
}

/// lakeq writes (`INSERT`, and a transaction) to a SQLite-catalog lake while a
/// DuckDB session holds an unread result on it: in SQLite's default rollback
/// journal the write fails after the busy timeout (the reader holds a shared
/// lock); with the catalog in WAL mode every write succeeds at once, the
/// catalog stays in WAL mode, DuckDB writes too, and both engines read the same
/// rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_catalog_in_wal_mode_is_shared_with_duckdb() -> TestResult {
    for wal in [false, true] {
        let lake = TestLake::new(Backend::Sqlite, if wal { "wal" } else { "rollback" }).await?;
        let session = lakeq::Session::new();
        session.sql(&lake.attach_sql("lake")).await?;
        session
            .sql("CREATE TABLE lake.t (i BIGINT, s VARCHAR)")
            .await?;
        session
            .sql("INSERT INTO lake.t SELECT range, 'lakeq' FROM range(100)")
            .await?;
        drop(session);
        if wal {
            use sqlx::Connection;
            let path = lake.location.trim_start_matches("ducklake:sqlite:");
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}")).await?;
            sqlx::raw_sql("PRAGMA journal_mode=WAL")
                .execute(&mut conn)
                .await?;
            conn.close().await?;
        }
        let expected_mode = if wal { "wal" } else { "delete" };
        assert_eq!(journal_mode(&lake).await?, expected_mode);
        let before = lake_state(&lake).await?;

        let mut cursor = DuckDbCursor::open(&lake)?;
        let writes = [
            "INSERT INTO lake.t VALUES (200, 'insert')".to_string(),
            "BEGIN; INSERT INTO lake.t VALUES (201, 'txn'); INSERT INTO lake.t VALUES (202, 'txn'); COMMIT"
                .to_string(),
        ];
        for write in &writes {
            let out = Command::new(env!("CARGO_BIN_EXE_lakeq"))
                .args([
                    "sql",
                    "-c",
                    &format!("{}; {write}", lake.attach_sql("lake")),
                ])
                .env("LAKEQ_SQLITE_BUSY_TIMEOUT_MS", "2000")
                .env("TMPDIR", &lake.dir)
                .output()?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if wal {
                assert!(out.status.success(), "WAL: {write}: {stderr}");
            } else {
                assert!(!out.status.success(), "rollback journal: {write} succeeded");
                assert!(stderr.contains("locked by another process"), "{stderr}");
            }
        }
        if wal {
            cursor.command("insert")?;
            cursor.expect("inserted")?;
        }
        cursor.quit()?;
        assert_eq!(
            journal_mode(&lake).await?,
            expected_mode,
            "the mode is kept"
        );
        let after = lake_state(&lake).await?;
        if wal {
            assert_eq!(
                after.1,
                vec![vec![
                    "104".to_string(),
                    (4950 + 200 + 201 + 202 + 1000).to_string(),
                    "duckdb".into(),
                    "txn".into()
                ]]
            );
        } else {
            assert_eq!(after, before, "the failed writes changed the lake");
        }
        duckdb_agrees(&lake, if wal { "WAL" } else { "rollback journal" }).await?;
    }
    Ok(())
}

/// `lakeq transform <args>` in `dir` with `memory_limit = "<limit>"` in its lakeq.toml (and no
/// `LAKEQ_MEMORY_LIMIT`): whether it succeeded, and its output.
fn transform_with_memory_limit(
    dir: &std::path::Path,
    limit: &str,
    args: &[&str],
) -> TestResult<(bool, String)> {
    std::fs::write(
        dir.join("lakeq.toml"),
        format!("memory_limit = \"{limit}\"\n"),
    )?;
    let out = Command::new(env!("CARGO_BIN_EXE_lakeq"))
        .current_dir(dir)
        .arg("transform")
        .args(args)
        .env_remove("LAKEQ_MEMORY_LIMIT")
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// A model whose query outgrows the memory pool (a hash join's build side,
/// which cannot spill) fails with an error naming the model, and leaves the
/// lake without it; with `memory_limit = "none"` (or the default pool) it builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_outgrows_the_memory_pool_fails_naming_it() -> TestResult {
    let dir = crate::common::scratch_dir("memory_limit");
    std::fs::create_dir_all(dir.join("models"))?;
    std::fs::write(
        dir.join("models/big_join.sql"),
        "{{ config(materialized='table') }}\n\
         SELECT count(*) AS n FROM range(1000000) a JOIN range(1000000) b ON a.range = b.range\n",
    )?;
    for (limit, ok) in [("4MiB", false), ("none", true)] {
        let (success, text) = transform_with_memory_limit(&dir, limit, &[])?;
        assert_eq!(success, ok, "memory_limit {limit}: {text}");
        if !ok {
            assert!(
                text.contains("big_join") && text.to_lowercase().contains("resources exhausted"),
                "memory_limit {limit}: {text}"
            );
        }
    }
    std::fs::write(dir.join("lakeq.toml"), "memory_limit = \"lots\"\n")?;
    let out = Command::new(env!("CARGO_BIN_EXE_lakeq"))
        .current_dir(&dir)
        .arg("transform")
        .env_remove("LAKEQ_MEMORY_LIMIT")
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("memory_limit") && stderr.contains("'lots'"),
        "{stderr}"
    );
    Ok(())
}

/// Models share one memory pool: two hash joins that each fit a 24 MiB pool alone do not fit
/// it side by side. The one that runs out of memory beside the other is run again alone (it
/// committed nothing), so the run succeeds; in a pool too small for either alone both fail, each
/// after its run alone, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_out_of_memory_beside_others_runs_again_alone() -> TestResult {
    let dir = crate::common::scratch_dir("memory_retry_alone");
    std::fs::create_dir_all(dir.join("models"))?;
    for name in ["join_a", "join_b"] {
        std::fs::write(
            dir.join(format!("models/{name}.sql")),
            "{{ config(materialized='table') }}\n\
             SELECT count(*) AS n FROM range(1000000) a JOIN range(1000000) b ON a.range = b.range\n",
        )?;
    }
    for (limit, ok) in [("24MiB", true), ("16MiB", false)] {
        let (success, text) = transform_with_memory_limit(&dir, limit, &["--threads", "2"])?;
        assert_eq!(success, ok, "memory_limit {limit}: {text}");
        let results: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("target/run_results.json"))?)?;
        let nodes = results["results"].as_array().ok_or("no results")?;
        assert_eq!(nodes.len(), 2, "{results}");
        for node in nodes {
            let status = node["status"].as_str().unwrap_or_default();
            let message = node["message"].as_str().unwrap_or_default();
            if ok {
                assert_eq!(status, "success", "memory_limit {limit}: {node}");
            } else {
                assert_eq!(status, "error", "memory_limit {limit}: {node}");
                assert!(
                    message.contains("Resources exhausted") && message.contains("run again alone"),
                    "memory_limit {limit}: {message}"
                );
            }
        }
    }
    Ok(())
}
