//! Scale-out on loopback (issue 13): one coordinator (`lakeq sql --workers`) and
//! two `lakeq worker` processes give the same answers as one process, over a
//! lake with several files per table, deleted rows, inlined rows, a renamed
//! column and a column added with a default; the workers' logs show they ran the
//! scans; CREATE TABLE AS and INSERT run and write their data files on the
//! workers and give the tables one process writes; UPDATE and DELETE are
//! refused; a worker killed mid-statement makes the coordinator run it again on
//! the other (one snapshot); with no worker left a query fails with an error
//! and leaves the lake unchanged. TPC-H's 22 queries give the answers of one
//! process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::common::{TestLake, TestResult, files_under, lakeq_cli};

/// A `lakeq worker` process on a free loopback port, its stderr collected.
struct WorkerProcess {
    child: Child,
    address: String,
    log: Arc<Mutex<String>>,
}

impl WorkerProcess {
    fn start() -> TestResult<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lakeq"))
            .args(["worker", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or("worker stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let first = lines.next().ok_or("worker exited before listening")??;
        let address = first
            .strip_prefix("lakeq worker listening on ")
            .ok_or_else(|| format!("unexpected first worker line: {first}"))?
            .to_string();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        // The server is up once it accepts a connection.
        let mut up = false;
        for _ in 0..200 {
            if std::net::TcpStream::connect(&address).is_ok() {
                up = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if !up {
            return Err(format!("worker on {address} does not accept connections").into());
        }
        Ok(Self {
            child,
            address,
            log,
        })
    }

    fn scan_tasks(&self) -> usize {
        self.log
            .lock()
            .map(|l| l.lines().filter(|l| l.contains("scan task")).count())
            .unwrap_or(0)
    }

    /// Scan tasks that read row positions (rowid, DELETE, UPDATE, ...).
    fn positions_scan_tasks(&self) -> usize {
        self.log
            .lock()
            .map(|l| {
                l.lines()
                    .filter(|l| l.contains("scan task") && l.contains("row positions"))
                    .count()
            })
            .unwrap_or(0)
    }

    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A lake with two tables of several files each, deleted rows (delete files),
/// inlined rows, a renamed column and a column added with a default.
async fn build_lake(lake: &TestLake) -> TestResult {
    let session = lakeq::Session::new();
    session
        .sql(&lake.attach_sql_without_inlining("lake"))
        .await?;
    session
        .sql(
            "CREATE TABLE lake.customers (c_custkey BIGINT, c_name VARCHAR, c_nation INTEGER, \
             c_acctbal DOUBLE)",
        )
        .await?;
    session
        .sql(
            "CREATE TABLE lake.orders (o_orderkey BIGINT, o_custkey BIGINT, o_status VARCHAR, \
             o_price DECIMAL(12,2), o_date DATE)",
        )
        .await?;
    session
        .sql("CREATE TABLE lake.events (e_key BIGINT, e_seq BIGINT)")
        .await?;
    // Several files per table: one insert each.
    for part in 0..4i64 {
        let lo = part * 250;
        session
            .sql(&format!(
                "INSERT INTO lake.customers SELECT range, 'Customer#' || range, \
                 CAST(range % 25 AS INTEGER), (range * 37 % 10000) / 7.0 \
                 FROM range({lo}, {lo} + 250)"
            ))
            .await?;
    }
    for part in 0..5i64 {
        let lo = part * 2000;
        session
            .sql(&format!(
                "INSERT INTO lake.orders SELECT range, range % 1000, \
                 CASE range % 3 WHEN 0 THEN 'F' WHEN 1 THEN 'O' ELSE 'P' END, \
                 CAST((range * 7919 % 100000) / 100.0 AS DECIMAL(12,2)), \
                 DATE '1995-01-01' + CAST(range % 1000 AS INTEGER) \
                 FROM range({lo}, {lo} + 2000)"
            ))
            .await?;
    }
    // A table of several small files and nothing else (no deletes, no inlined
    // rows): scanned as one partition on one machine.
    for part in 0..3i64 {
        session
            .sql(&format!(
                "INSERT INTO lake.events SELECT range % 50, range + {part} * 1000 \
                 FROM range(0, 200)"
            ))
            .await?;
    }
    // Deleted rows in several files (delete files).
    session
        .sql("DELETE FROM lake.orders WHERE o_orderkey % 17 = 3")
        .await?;
    session
        .sql("DELETE FROM lake.customers WHERE c_custkey % 11 = 5")
        .await?;
    // Schema evolution: the files keep the old name; a new column has a default.
    session
        .sql("ALTER TABLE lake.orders RENAME COLUMN o_status TO o_orderstatus")
        .await?;
    session
        .sql("ALTER TABLE lake.customers ADD COLUMN c_segment VARCHAR DEFAULT 'BUILDING'")
        .await?;
    session.sql("DETACH lake").await?;
    // Inlined rows: small inserts stay in the catalog.
    let files_before = files_under(Path::new(&lake.data_path));
    session.sql(&lake.attach_sql("lake")).await?;
    session
        .sql(
            "INSERT INTO lake.orders VALUES (100001, 7, 'O', 12.50, DATE '1998-08-01'), \
             (100002, 8, 'F', 99.99, DATE '1998-08-02'), (100003, 7, 'P', 0.01, NULL)",
        )
        .await?;
    session
        .sql("INSERT INTO lake.customers VALUES (5000, 'Customer#5000', 3, 10.5, 'MACHINERY')")
        .await?;
    assert_eq!(
        files_under(Path::new(&lake.data_path)),
        files_before,
        "the small inserts are inlined, not written to files"
    );
    Ok(())
}

/// The queries compared: scans, filters, aggregates, joins, ordering.
const QUERIES: &[&str] = &[
    "SELECT count(*), sum(o_price), min(o_date), max(o_date) FROM lake.orders",
    "SELECT o_orderstatus, count(*) AS n, sum(o_price) AS revenue, avg(o_price) AS avg_price \
     FROM lake.orders GROUP BY o_orderstatus ORDER BY o_orderstatus",
    "SELECT c_nation, c_segment, count(*) AS n, sum(c_acctbal) AS bal FROM lake.customers \
     GROUP BY c_nation, c_segment ORDER BY c_nation, c_segment",
    "SELECT c.c_nation, count(*) AS orders, sum(o.o_price) AS revenue \
     FROM lake.orders o JOIN lake.customers c ON o.o_custkey = c.c_custkey \
     WHERE o.o_date >= DATE '1996-01-01' GROUP BY c.c_nation ORDER BY revenue DESC, c.c_nation",
    "SELECT o_orderkey, o_custkey, o_orderstatus, o_price, o_date FROM lake.orders \
     WHERE o_orderkey % 997 = 1 OR o_orderkey > 100000 ORDER BY o_orderkey",
    "SELECT c_custkey, c_name, o_total FROM lake.customers JOIN (SELECT o_custkey, \
     sum(o_price) AS o_total FROM lake.orders GROUP BY o_custkey) t ON t.o_custkey = c_custkey \
     ORDER BY o_total DESC, c_custkey LIMIT 10",
    // A window over a one-partition scan of several files: every row of a key
    // must reach the same task (each task numbered its files' rows from 1).
    "SELECT count(*) AS firsts, sum(e_seq) AS seqs FROM (SELECT e_seq, \
     row_number() OVER (PARTITION BY e_key ORDER BY e_seq DESC) AS rn FROM lake.events) \
     WHERE rn = 1",
];

fn run_sql(
    dir: &Path,
    attach: &str,
    query: &str,
    workers: Option<&str>,
) -> TestResult<(String, f64)> {
    let script = format!("{attach}; {query}");
    let mut args = vec!["sql", "--format", "csv", "-c", script.as_str()];
    if let Some(w) = workers {
        args.extend(["--workers", w, "--bytes-per-task", "1"]);
    }
    let start = Instant::now();
    let out = lakeq_cli(dir, &args)?;
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "lakeq sql {}failed on {query}:\n{}",
            if workers.is_some() { "--workers " } else { "" },
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok((String::from_utf8(out.stdout)?, secs))
}

/// `script` run by `lakeq sql --format csv` with `workers`, whatever its outcome.
fn csv_on_workers(dir: &Path, workers: &str, script: &str) -> TestResult<std::process::Output> {
    sql_on_workers_with(dir, workers, &["--format", "csv"], script)
}

/// `lakeq sql --workers <workers> --bytes-per-task 1 -c <script>`, however it ends.
fn sql_on_workers(dir: &Path, workers: &str, script: &str) -> TestResult<std::process::Output> {
    sql_on_workers_with(dir, workers, &[], script)
}

/// `lakeq sql <options> --workers <workers> --bytes-per-task 1 -c <script>`.
fn sql_on_workers_with(
    dir: &Path,
    workers: &str,
    options: &[&str],
    script: &str,
) -> TestResult<std::process::Output> {
    let mut args = vec!["sql"];
    args.extend_from_slice(options);
    args.extend(["--workers", workers, "--bytes-per-task", "1", "-c", script]);
    lakeq_cli(dir, &args)
}

/// What must not change when a distributed statement fails: the snapshots and
/// the data files.
async fn lake_state(lake: &TestLake) -> TestResult<(String, usize)> {
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let batches = session
        .sql("SELECT max(snapshot_id), count(*) FROM ducklake_snapshots('lake')")
        .await?;
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string();
    Ok((text, files_under(Path::new(&lake.data_path))))
}

#[tokio::test(flavor = "multi_thread")]
async fn r13_two_workers_give_the_local_answers() -> TestResult {
    let lake = TestLake::new(crate::common::Backend::Sqlite, "distributed").await?;
    build_lake(&lake).await?;
    let attach = lake.attach_sql("lake");
    let dir = lake.dir.clone();
    let mut a = WorkerProcess::start()?;
    let mut b = WorkerProcess::start()?;
    let workers = format!("{},{}", a.address, b.address);
    let (mut local_total, mut distributed_total) = (0.0, 0.0);
    for query in QUERIES {
        let (local, local_secs) = run_sql(&dir, &attach, query, None)?;
        let (distributed, distributed_secs) = run_sql(&dir, &attach, query, Some(&workers))?;
        assert!(local.lines().count() > 1, "{query} answers something");
        assert_eq!(distributed, local, "{query}: distributed answer differs");
        eprintln!(
            "timing local {local_secs:.3}s distributed {distributed_secs:.3}s ratio {:.2}: {query}",
            distributed_secs / local_secs
        );
        local_total += local_secs;
        distributed_total += distributed_secs;
    }
    eprintln!(
        "timing total local {local_total:.3}s distributed {distributed_total:.3}s ratio {:.2}",
        distributed_total / local_total
    );
    // Both workers scanned: their logs name the scan tasks they were given, some
    // with deleted rows and some with inlined rows. datafusion-distributed
    // routes a one-task stage to a random worker, and a worker's log reaches
    // this process through a pipe read by a thread: so the queries run again
    // (at most 20 rounds; both workers missed by chance in all of them has a
    // probability far below 2^-20) until both logs show a scan.
    for round in 0..200 {
        if a.scan_tasks() > 0 && b.scan_tasks() > 0 {
            break;
        }
        if round % 10 == 9 {
            for query in QUERIES {
                run_sql(&dir, &attach, query, Some(&workers))?;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(a.scan_tasks() > 0, "worker A ran no scan:\n{}", a.log());
    assert!(b.scan_tasks() > 0, "worker B ran no scan:\n{}", b.log());
    let logs = format!("{}{}", a.log(), b.log());
    assert!(
        logs.lines()
            .any(|l| l.contains("scan task") && !l.contains("(0 with deleted rows)")),
        "no worker scanned a file with deleted rows:\n{logs}"
    );

    // Writes with workers: the input is read on the workers, the files and the
    // commit are written here, one snapshot per statement; the tables equal
    // those written without workers.
    let (snapshots_before, _) = lake_state(&lake).await?;
    let write = |table: &str| {
        format!(
            "CREATE TABLE lake.{table} AS SELECT c.c_nation, count(*) AS orders, \
             sum(o.o_price) AS revenue FROM lake.orders o JOIN lake.customers c \
             ON o.o_custkey = c.c_custkey GROUP BY c.c_nation; \
             INSERT INTO lake.{table} SELECT o_custkey + 1000, count(*), max(o_price) \
             FROM (SELECT *, row_number() OVER (PARTITION BY o_custkey ORDER BY o_orderkey) AS rn \
             FROM lake.orders) WHERE rn <= 2 GROUP BY o_custkey"
        )
    };
    run_sql(&dir, &attach, &write("written_here"), None)?;
    run_sql(
        &dir,
        &attach,
        &write("written_with_workers"),
        Some(&workers),
    )?;
    let read = |table: &str| {
        run_sql(
            &dir,
            &attach,
            &format!("SELECT * FROM lake.{table} ORDER BY ALL"),
            None,
        )
    };
    let (here, _) = read("written_here")?;
    let (with_workers, _) = read("written_with_workers")?;
    assert!(here.lines().count() > 1000, "{here}");
    assert_eq!(with_workers, here, "a table written with workers differs");
    let (snapshots_after, _) = lake_state(&lake).await?;
    assert_ne!(snapshots_after, snapshots_before);
    // `CREATE TABLE AS ... ORDER BY` writes its rows in that order with workers
    // too (the rows' ids follow it), even by a key it does not keep: the
    // optimizer dropped the sort under the write, which no operator required.
    let sorted = |table: &str| {
        format!(
            "CREATE TABLE lake.{table} AS SELECT o_orderkey, o_custkey FROM lake.orders \
             ORDER BY o_price DESC, o_orderkey"
        )
    };
    run_sql(&dir, &attach, &sorted("sorted_here"), None)?;
    run_sql(&dir, &attach, &sorted("sorted_there"), Some(&workers))?;
    let by_rowid = |table: &str| {
        run_sql(
            &dir,
            &attach,
            &format!("SELECT rowid, o_orderkey FROM lake.{table} ORDER BY rowid"),
            None,
        )
    };
    let (here, _) = by_rowid("sorted_here")?;
    assert!(here.lines().count() > 9000, "{}", here.lines().count());
    assert_eq!(
        by_rowid("sorted_there")?.0,
        here,
        "ORDER BY of a write on workers"
    );
    // A copy of a table with deleted and inlined rows: its stage of files and
    // inlined rows runs in two tasks, and each writes its share's data files
    // (a statement whose last stage is one task, like the aggregates above,
    // runs that stage and its write on the coordinator: the engine's choice).
    run_sql(
        &dir,
        &attach,
        "CREATE TABLE lake.orders_copy AS SELECT * FROM lake.orders",
        Some(&workers),
    )?;
    wait_for_logs(&[&a, &b], "write task: lake.main.orders_copy")?;
    let (copy, _) = read("orders_copy")?;
    let (orders, _) = read("orders")?;
    assert!(orders.lines().count() > 9000, "{}", orders.lines().count());
    assert_eq!(copy, orders, "the copy the workers wrote differs");

    // A write of few rows on the workers is inlined as without them (its files
    // are read back and removed), and a NULL into a NOT NULL column is refused
    // where the rows are written, naming the column, leaving the lake as it was.
    let (_, files_before) = lake_state(&lake).await?;
    run_sql(
        &dir,
        &attach,
        "INSERT INTO lake.written_with_workers SELECT c_nation + 100000, 1 AS n, 2 AS r \
         FROM lake.customers WHERE c_custkey < 3",
        Some(&workers),
    )?;
    let (few, _) = run_sql(
        &dir,
        &attach,
        "SELECT count(*) FROM lake.written_with_workers WHERE c_nation >= 100000",
        None,
    )?;
    assert_eq!(few.lines().nth(1), Some("3"), "{few}");
    let (_, files_after) = lake_state(&lake).await?;
    assert_eq!(
        files_after, files_before,
        "3 rows are inlined, not written as files"
    );
    run_sql(
        &dir,
        &attach,
        "CREATE TABLE lake.strict (k BIGINT NOT NULL, v VARCHAR)",
        None,
    )?;
    let before = lake_state(&lake).await?;
    let script = format!(
        "{attach}; INSERT INTO lake.strict SELECT CASE WHEN o_orderkey = 5000 THEN NULL \
         ELSE o_orderkey END, o_orderstatus FROM lake.orders"
    );
    let out = sql_on_workers(&dir, &workers, &script)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a NULL into a NOT NULL column fails");
    assert!(
        stderr.contains("NOT NULL") && stderr.contains("strict.k"),
        "{stderr}"
    );
    assert_eq!(
        lake_state(&lake).await?,
        before,
        "the failed insert changed the lake"
    );

    // UPDATE, DELETE and MERGE find their rows by position: with --workers the
    // positions scans run on the workers (no note that the statement ran here)
    // and the table comes out as the same statements leave it without workers.
    run_sql(
        &dir,
        &attach,
        "CREATE TABLE lake.orders_here AS SELECT * FROM lake.orders",
        None,
    )?;
    let positions_before = (a.positions_scan_tasks(), b.positions_scan_tasks());
    for table in ["orders_copy", "orders_here"] {
        let script = format!(
            "{attach}; DELETE FROM lake.{table} WHERE o_orderkey % 13 = 1; \
             UPDATE lake.{table} SET o_price = 0 WHERE o_orderkey % 29 = 2; \
             MERGE INTO lake.{table} t USING (SELECT o_orderkey, o_price FROM lake.orders \
             WHERE o_orderkey % 31 = 4) s ON t.o_orderkey = s.o_orderkey \
             WHEN MATCHED THEN UPDATE SET o_price = s.o_price + 1"
        );
        let out = if table == "orders_copy" {
            sql_on_workers(&dir, &workers, &script)?
        } else {
            lakeq_cli(&dir, &["sql", "-c", &script])?
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "DELETE, UPDATE and MERGE on {table}: {stderr}"
        );
        assert!(
            !stderr.contains("runs on this machine"),
            "DELETE, UPDATE and MERGE ran on the coordinator alone: {stderr}"
        );
    }
    let (changed_there, _) = read("orders_copy")?;
    let (changed_here, _) = read("orders_here")?;
    assert_ne!(changed_here, orders, "the statements changed rows");
    assert_eq!(
        changed_there, changed_here,
        "UPDATE/DELETE/MERGE with --workers differ"
    );
    // DuckDB's virtual columns over a table with deleted and inlined rows; all
    // but `filename` (whose file names stay on the coordinator) run on workers.
    for rowids in [
        "SELECT count(*), sum(rowid), max(rowid) FROM lake.orders WHERE o_orderkey % 3 = 0",
        "SELECT snapshot_id, count(*), min(rowid), max(rowid) FROM lake.orders \
         GROUP BY snapshot_id ORDER BY snapshot_id",
        "SELECT rowid, o_orderkey, snapshot_id FROM lake.orders_copy \
         WHERE o_orderkey % 97 = 3 ORDER BY rowid",
        "SELECT count(*), sum(file_row_number), max(file_row_number) FROM lake.orders_copy",
    ] {
        let (here, _) = run_sql(&dir, &attach, rowids, None)?;
        let out = csv_on_workers(&dir, &workers, &format!("{attach}; {rowids}"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{rowids}: {stderr}");
        assert!(
            !stderr.contains("runs on this machine"),
            "{rowids}: {stderr}"
        );
        assert!(here.lines().count() > 1, "{rowids} answers: {here}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            here,
            "{rowids} with --workers"
        );
    }
    // (A worker's log reaches this process through a pipe read by a thread.)
    for _ in 0..200 {
        if a.positions_scan_tasks() + b.positions_scan_tasks()
            > positions_before.0 + positions_before.1
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        a.positions_scan_tasks() + b.positions_scan_tasks()
            > positions_before.0 + positions_before.1,
        "no worker ran a positions scan:\n{}{}",
        a.log(),
        b.log()
    );
    let filenames = "SELECT count(DISTINCT filename) FROM lake.orders_copy";
    let (here, _) = run_sql(&dir, &attach, filenames, None)?;
    let out = csv_on_workers(&dir, &workers, &format!("{attach}; {filenames}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("runs on this machine"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), here, "filename");

    // A worker killed in the middle of a statement: a CREATE TABLE AS whose join
    // runs on the workers; the first worker to receive one of its scan tasks is
    // killed (SIGKILL) while the coordinator is still running (which worker gets a
    // one-task stage is the engine's choice). The attempt fails, the coordinator
    // finds the worker gone and runs the statement again on the other one: the
    // table is written once, with the answer of one process, in one snapshot.
    let (snapshots_before, _) = lake_state(&lake).await?;
    // ~20M joined pairs with a string expression each: seconds of work on the
    // workers, so the kill lands while it runs.
    let heavy_query = "SELECT count(*) AS n FROM lake.orders a \
         JOIN lake.orders b ON a.o_custkey % 5 = b.o_custkey % 5 \
         WHERE length(a.o_orderstatus || b.o_orderstatus || CAST(a.o_price AS VARCHAR)) > 7";
    let heavy = format!("{attach}; CREATE TABLE lake.heavy AS {heavy_query}");
    // The log lines of earlier queries may still be in the pipes: wait until both
    // counts of scan tasks hold still.
    let mut scans_before = (a.scan_tasks(), b.scan_tasks());
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = (a.scan_tasks(), b.scan_tasks());
        if now == scans_before {
            break;
        }
        scans_before = now;
    }
    let mut coordinator = Command::new(env!("CARGO_BIN_EXE_lakeq"))
        .current_dir(&dir)
        .args([
            "sql",
            "--workers",
            &workers,
            "--bytes-per-task",
            "1",
            "-c",
            &heavy,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut killed = None;
    for _ in 0..3000 {
        if coordinator.try_wait()?.is_some() {
            break;
        }
        let victim = if a.scan_tasks() > scans_before.0 {
            Some(&mut a)
        } else if b.scan_tasks() > scans_before.1 {
            Some(&mut b)
        } else {
            None
        };
        if let Some(worker) = victim {
            worker.child.kill()?;
            if coordinator.try_wait()?.is_none() {
                killed = Some(worker.address.clone());
            }
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = coordinator.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let killed = killed.ok_or_else(|| {
        format!(
            "no worker was killed while the statement ran (it finished first, or no worker got \
             a scan task): {stderr}\nA:\n{}\nB:\n{}",
            a.log(),
            b.log()
        )
    })?;
    assert!(
        out.status.success(),
        "the statement runs again on the worker that answers: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{killed} stopped answering")),
        "it says which worker it lost: {stderr}"
    );
    let (heavy_here, _) = run_sql(&dir, &attach, heavy_query, None)?;
    let (heavy_table, _) = run_sql(&dir, &attach, "SELECT n FROM lake.heavy", None)?;
    assert_eq!(heavy_table, heavy_here, "the table written after the retry");
    let snapshots = |text: &str| -> Option<i64> {
        text.lines()
            .find(|l| l.contains('|') && l.chars().any(|c| c.is_ascii_digit()))
            .and_then(|l| l.split('|').nth(2))
            .and_then(|n| n.trim().parse().ok())
    };
    let (snapshots_after, _) = lake_state(&lake).await?;
    assert_eq!(
        snapshots(&snapshots_after),
        snapshots(&snapshots_before).map(|n| n + 1),
        "one snapshot for the retried statement:\n{snapshots_before}\n{snapshots_after}"
    );

    // No worker answers: the query fails with an error, the lake is unchanged.
    drop(a);
    drop(b);
    let before = lake_state(&lake).await?;
    let query = QUERIES.get(3).ok_or("query")?;
    let script = format!("{attach}; {query}");
    let out = sql_on_workers(&dir, &workers, &script)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a query without a live worker fails:\n{stderr}"
    );
    assert!(stderr.contains("Error"), "it says so: {stderr}");
    assert_eq!(
        lake_state(&lake).await?,
        before,
        "the failed query changed the lake"
    );
    Ok(())
}

/// Planning and codec overhead per query (printed; no thresholds): the time to
/// plan each query locally and as a coordinator, and to encode / decode the
/// plan (with its lakeq scans wrapped) through lakeq's codec.
#[tokio::test(flavor = "multi_thread")]
async fn r13_planning_and_codec_overhead() -> TestResult {
    use datafusion::physical_optimizer::PhysicalOptimizerRule;
    use datafusion_proto::bytes::{
        physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
    };
    let lake = TestLake::new(crate::common::Backend::Sqlite, "distributed_plan").await?;
    build_lake(&lake).await?;
    let local = lakeq::Session::new();
    local.sql(&lake.attach_sql("lake")).await?;
    // Planning asks the resolver for the worker list only; nothing is contacted.
    let cluster = lakeq::distributed::ClusterOptions {
        workers: vec!["127.0.0.1:9".into(), "127.0.0.1:10".into()],
        bytes_per_task: Some(1),
    };
    let coordinator =
        lakeq::Session::with_options(&lakeq::SessionOptions::default().with_cluster(cluster));
    coordinator.sql(&lake.attach_sql("lake")).await?;
    let codec = lakeq::distributed::LakeCodec::default();
    for query in QUERIES {
        let start = Instant::now();
        let plan = local.query(query).await?.create_physical_plan().await?;
        let local_ms = start.elapsed().as_secs_f64() * 1000.0;
        let start = Instant::now();
        let distributed = coordinator
            .query(query)
            .await?
            .create_physical_plan()
            .await?;
        let distributed_ms = start.elapsed().as_secs_f64() * 1000.0;
        let text = datafusion::physical_plan::displayable(distributed.as_ref())
            .indent(true)
            .to_string();
        assert!(text.contains("LakeScanExec"), "scans are wrapped:\n{text}");
        let wrapped = lakeq::distributed::WrapLakeScans.optimize(plan, &Default::default())?;
        let start = Instant::now();
        let bytes = physical_plan_to_bytes_with_extension_codec(Arc::clone(&wrapped), &codec)?;
        let back = physical_plan_from_bytes_with_extension_codec(
            &bytes,
            &local.context().task_ctx(),
            &codec,
        )?;
        let codec_ms = start.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(back.schema(), wrapped.schema());
        eprintln!(
            "overhead plan local {local_ms:.1} ms, coordinator {distributed_ms:.1} ms, \
             codec round trip {codec_ms:.2} ms ({} bytes): {query}",
            bytes.len()
        );
    }
    Ok(())
}

/// `lakeq run` with workers (issue 13): the bundled pipeline (generate, ingest,
/// 9 models, 23 tests) with the models' queries on 2 workers builds every
/// model with the rows one process builds, and the workers ran scans.
#[test]
fn r13_bundled_models_on_two_workers_match_one_process() -> TestResult {
    let a = WorkerProcess::start()?;
    let b = WorkerProcess::start()?;
    let workers = format!("{},{}", a.address, b.address);
    let local = crate::common::scratch_dir("r13_models_local");
    let distributed = crate::common::scratch_dir("r13_models_workers");
    let run = |dir: &Path, extra: &[&str]| -> TestResult<String> {
        let mut args = vec!["run", "2"];
        args.extend_from_slice(extra);
        let out = lakeq_cli(dir, &args)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "lakeq {args:?} failed:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(stdout)
    };
    run(&local, &[])?;
    let out = run(
        &distributed,
        &["--workers", &workers, "--bytes-per-task", "1"],
    )?;
    assert!(out.contains("9 models built, 23 tests passed"), "{out}");
    let relations = |dir: &Path| -> TestResult<Vec<String>> {
        let out = lakeq_cli(
            dir,
            &[
                "sql",
                "--format",
                "csv",
                "-c",
                "SELECT table_schema || '.' || table_name FROM information_schema.tables \
                 WHERE table_catalog = 'dev_analytics' ORDER BY 1",
            ],
        )?;
        Ok(String::from_utf8(out.stdout)?
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect())
    };
    let names = relations(&local)?;
    assert_eq!(names.len(), 9, "{names:?}");
    assert_eq!(relations(&distributed)?, names);
    for name in &names {
        let query = format!("SELECT * FROM dev_analytics.{name} ORDER BY ALL");
        let rows = |dir: &Path| -> TestResult<String> {
            let out = lakeq_cli(dir, &["sql", "--format", "csv", "-c", &query])?;
            Ok(String::from_utf8(out.stdout)?)
        };
        let (one, two) = (rows(&local)?, rows(&distributed)?);
        assert!(one.lines().count() > 1, "{name} is empty");
        assert_eq!(
            one.lines().count(),
            two.lines().count(),
            "{name}: row counts"
        );
        for (x, y) in one.lines().zip(two.lines()) {
            assert!(
                same_row(x, y),
                "{name}: the model built with workers differs:\n{x}\n{y}"
            );
        }
    }
    assert!(
        a.scan_tasks() + b.scan_tasks() > 0,
        "no worker ran a scan:\n{}{}",
        a.log(),
        b.log()
    );
    Ok(())
}

/// Wait (up to 10 s) until one of `workers`' logs has a line containing `text`.
fn wait_for_logs(workers: &[&WorkerProcess], text: &str) -> TestResult {
    for _ in 0..200 {
        if workers.iter().any(|w| w.log().contains(text)) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let logs: Vec<String> = workers.iter().map(|w| w.log()).collect();
    Err(format!("no worker log says '{text}':\n{}", logs.join("\n")).into())
}

/// TPC-H on 1 coordinator + 2 workers (issue 13): the 22 queries of DuckDB's
/// tpch extension on a lake DuckDB 1.5.5 wrote with `dbgen` (SF 0.01) give the
/// answers of one process, and a copy of `lineitem` made with the workers (its
/// files written by them) equals the original.
#[tokio::test(flavor = "multi_thread")]
async fn r13_tpch_on_two_workers_matches_one_process() -> TestResult {
    let lake = TestLake::new(crate::common::Backend::Sqlite, "distributed_tpch").await?;
    let (python, ext) = crate::common::oracle_python()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/bench_duckdb.py");
    let duck = |args: &[&str]| -> TestResult<Vec<u8>> {
        let out = Command::new(&python)
            .arg(&script)
            .args(args)
            .args(["--ext-dir", &ext])
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "bench_duckdb.py {args:?} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(out.stdout)
    };
    let attach = lake.attach_sql_without_inlining("lake");
    duck(&["build-tpch", "--attach", &attach, "--sf", "0.01"])?;
    #[derive(serde::Deserialize)]
    struct Query {
        nr: u32,
        sql: String,
    }
    #[derive(serde::Deserialize)]
    struct Queries {
        queries: Vec<Query>,
    }
    let queries: Queries = serde_json::from_slice(&duck(&["tpch-queries"])?)?;
    assert_eq!(
        queries.queries.len(),
        22,
        "DuckDB lists the 22 TPC-H queries"
    );

    let a = WorkerProcess::start()?;
    let b = WorkerProcess::start()?;
    let local = lakeq::Session::new();
    let cluster = lakeq::distributed::ClusterOptions {
        workers: vec![a.address.clone(), b.address.clone()],
        bytes_per_task: Some(64 * 1024),
    };
    let coordinator =
        lakeq::Session::with_options(&lakeq::SessionOptions::default().with_cluster(cluster));
    for session in [&local, &coordinator] {
        session.sql(&lake.attach_sql("lake")).await?;
        session.sql("USE lake").await?;
    }
    let mut problems = Vec::new();
    for q in &queries.queries {
        let one = crate::common::lakeq_query(&local, &q.sql).await?;
        assert!(!one.1.is_empty(), "q{:02} answers rows", q.nr);
        match crate::common::lakeq_query(&coordinator, &q.sql).await {
            Err(e) => problems.push(format!("q{:02} failed with workers: {e}", q.nr)),
            Ok(two) if two.0 != one.0 => problems.push(format!("q{:02}: columns differ", q.nr)),
            Ok(two) => {
                let same = two.1.len() == one.1.len()
                    && one
                        .1
                        .iter()
                        .zip(&two.1)
                        .all(|(x, y)| same_row(&x.join(","), &y.join(",")));
                if !same {
                    problems.push(format!(
                        "q{:02}: rows differ\n  one process: {:?}\n  workers:     {:?}",
                        q.nr,
                        one.1.iter().take(3).collect::<Vec<_>>(),
                        two.1.iter().take(3).collect::<Vec<_>>()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    wait_for_logs(&[&a, &b], "scan task")?;

    // The per-stage profile of q1 (a scan of lineitem under an aggregate): the head stage on the
    // coordinator and at least one stage of several tasks on the workers, with compute measured.
    let q1 = &queries.queries[0].sql;
    let (rows, profile) = coordinator.query_profiled(q1).await?;
    assert!(!rows.is_empty(), "q1 answers rows");
    let profile = profile.ok_or("q1 ran in one process with workers")?;
    assert!(profile.stages.len() >= 2, "q1's stages: {profile:?}");
    assert_eq!(profile.stages[0].task_compute.len(), 1, "{profile:?}");
    assert!(
        profile.stages[1..]
            .iter()
            .any(|s| s.task_compute.len() >= 2 && s.task_compute.iter().all(|t| !t.is_zero())),
        "no stage of several tasks with their compute measured: {profile:?}"
    );
    assert!(
        profile.stages.iter().any(|s| s.bytes_received > 0),
        "no bytes crossed a stage boundary: {profile:?}"
    );
    let model = |machines| lakeq::distributed::ClusterModel {
        machines,
        cores: 2,
        bytes_per_second: f64::INFINITY,
    };
    assert!(profile.modeled(model(1)) >= profile.modeled(model(4)));

    // lineitem copied by the workers: one snapshot, the same rows.
    coordinator
        .sql("CREATE TABLE lake.lineitem_copy AS SELECT * FROM lake.lineitem")
        .await?;
    wait_for_logs(&[&a, &b], "write task: lake.main.lineitem_copy")?;
    let check = "SELECT count(*), sum(l_extendedprice), sum(l_orderkey * 7 + l_linenumber),                  min(l_shipdate), max(l_comment) FROM lake.";
    let original = crate::common::lakeq_query(&local, &format!("{check}lineitem")).await?;
    let copy = crate::common::lakeq_query(&local, &format!("{check}lineitem_copy")).await?;
    assert_eq!(copy, original, "the copy written by the workers differs");
    // DuckDB reads the files the workers wrote as it reads its own.
    #[derive(serde::Deserialize)]
    struct Answer {
        rows: Vec<Vec<String>>,
    }
    #[derive(serde::Deserialize)]
    struct Answers {
        queries: Vec<Answer>,
    }
    let (copy_sql, original_sql) = (format!("{check}lineitem_copy"), format!("{check}lineitem"));
    let answers: Answers = serde_json::from_slice(&duck(&[
        "run",
        "--attach",
        &lake.attach_sql("lake"),
        "--runs",
        "0",
        "--query",
        "copy",
        &copy_sql,
        "--query",
        "original",
        &original_sql,
    ])?)?;
    let [copy, original] = answers.queries.as_slice() else {
        return Err("DuckDB answered other than two queries".into());
    };
    assert!(!original.rows.is_empty());
    assert_eq!(copy.rows, original.rows, "DuckDB reads another copy");
    Ok(())
}

/// Whether two CSV rows are equal, floating-point fields to 1e-12 relative:
/// a DOUBLE sum or average depends on the order its rows are added in, which
/// differs between tasks (on one machine too, between runs with more threads).
fn same_row(x: &str, y: &str) -> bool {
    if x == y {
        return true;
    }
    let (a, b): (Vec<&str>, Vec<&str>) = (x.split(',').collect(), y.split(',').collect());
    a.len() == b.len()
        && a.iter().zip(&b).all(|(p, q)| {
            p == q
                || match (p.parse::<f64>(), q.parse::<f64>()) {
                    (Ok(u), Ok(v)) if p.contains('.') && q.contains('.') => {
                        (u - v).abs() <= 1e-12 * u.abs().max(v.abs())
                    }
                    _ => false,
                }
        })
}
