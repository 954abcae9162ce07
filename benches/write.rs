//! Write path against DuckDB 1.5.5 (issue: writing the lake):
//! * `insert/bulk`: `INSERT INTO t SELECT` of mixed-type rows into a SQLite-catalog lake, lakeq vs
//!   DuckDB into the same kind of lake, in one run (`LAKEQ_BENCH_INSERT_ROWS`, default 10 million).
//! * `commit/one_row_{sqlite,postgres}`: latency of a one-row INSERT (one snapshot each).
//! * `commit/4_writers_{sqlite,postgres}`: four concurrent sessions committing one-row inserts;
//!   reported as commits per second.
//!
//! Both engines' tables must hold the same row count and sums before the timings are reported.
//! Run: `source scripts/test-env.sh && cargo bench --bench write` (`-- --quick` for a short run).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Duck, Summary, Timings};
use criterion::SamplingMode;

fn rows() -> u64 {
    std::env::var("LAKEQ_BENCH_INSERT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

fn lakeq_insert(n: u64) -> String {
    format!(
        "INSERT INTO lake.main.t SELECT v AS id, v % 1000 AS k, 'v' || CAST(v % 97 AS VARCHAR) AS s, \
         CAST(v AS DOUBLE) * 0.5 AS x, to_timestamp_micros(1704067200000000 + v * 1000000) AS ts \
         FROM generate_series(0, {}) AS g(v)",
        n - 1
    )
}

fn duck_insert(n: u64) -> String {
    format!(
        "INSERT INTO lake.main.t SELECT i AS id, i % 1000 AS k, 'v' || (i % 97) AS s, i * 0.5 AS x, \
         TIMESTAMP '2024-01-01' + INTERVAL (i) SECOND AS ts FROM range({n}) t(i)"
    )
}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS lake.main.t (id BIGINT, k BIGINT, s VARCHAR, x DOUBLE, ts TIMESTAMP)";

fn fresh_sqlite_lake(name: &str) -> String {
    let dir = common::lake_dir(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create bench lake dir");
    format!(
        "ATTACH 'ducklake:sqlite:{}/meta.sqlite' AS lake (DATA_PATH '{}/data/')",
        dir.display(),
        dir.display()
    )
}

fn main() {
    if !common::benchmarking("write") {
        return;
    }
    let rt = common::runtime();
    let duck = Duck::from_env();
    let n = rows();
    let mut summary = Summary::default();
    let mut c = common::criterion(Duration::from_secs(5));

    // --- bulk insert, lakeq vs DuckDB -------------------------------------------------------
    let duck_attach = fresh_sqlite_lake("write-duck");
    let duck_runs = duck.run(
        &duck_attach,
        3,
        &[("create", CREATE), ("insert", &duck_insert(n))],
    );
    let lakeq_attach = fresh_sqlite_lake("write-lakeq");
    let session = rt.block_on(async {
        let s = lakeq::Session::new();
        s.sql(&lakeq_attach).await.expect("attach");
        s.sql(CREATE).await.expect("create");
        s
    });
    let insert_timings = Timings::new();
    {
        let mut group = c.benchmark_group("insert");
        group.sampling_mode(SamplingMode::Flat).sample_size(10);
        let sql = lakeq_insert(n);
        let (session, t) = (&session, &insert_timings);
        group.bench_function("bulk", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let sql = sql.clone();
                let t = Arc::clone(t);
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        session.sql(&sql).await.expect("lakeq insert");
                        let e = start.elapsed();
                        t.record(e);
                        total += e;
                    }
                    total
                }
            })
        });
        group.finish();
    }
    // Same data in both (every insert adds the same rows, so sets of values must match).
    let check = "SELECT count(DISTINCT id) AS ids, min(x) AS lo, max(x) AS hi, max(s) AS ms FROM lake.main.t WHERE k = 7";
    let ours = rt.block_on(common::lakeq_rows(&session, check));
    let theirs = duck.run(&duck_attach, 0, &[("check", check)]);
    assert_eq!(
        Some(&ours),
        theirs.first().map(|q| &q.rows),
        "lakeq and DuckDB inserted different data"
    );
    let median = summary.median("insert/bulk", &insert_timings);
    if let (Some(m), Some(d)) = (median, duck_runs.get(1)) {
        summary.ratio("insert/bulk", Some(m), d);
        summary.line(format!(
            "THROUGHPUT insert/bulk lakeq = {:.2} M rows/s ({n} rows per insert)",
            n as f64 / m.as_secs_f64() / 1e6
        ));
    }

    // --- one-row commit latency and 4 concurrent writers -------------------------------------
    for backend in ["sqlite", "postgres"] {
        let attach = match backend {
            "sqlite" => fresh_sqlite_lake("write-commit"),
            _ => {
                let db = rt.block_on(common::create_pg_database("write_commit"));
                let dir = common::lake_dir("write-commit-pg");
                let _ = std::fs::remove_dir_all(&dir);
                format!(
                    "ATTACH 'ducklake:postgres:dbname={db} host=127.0.0.1 user=postgres' AS lake (DATA_PATH '{}/data/', METADATA_SCHEMA 'bench')",
                    dir.display()
                )
            }
        };
        let session = rt.block_on(async {
            let s = lakeq::Session::new();
            s.sql(&attach).await.expect("attach");
            s.sql("CREATE TABLE lake.main.c (w INT, i INT)")
                .await
                .expect("create");
            s
        });
        let t = Timings::new();
        let id = format!("commit/one_row_{backend}");
        {
            let mut group = c.benchmark_group("commit");
            group.sample_size(20);
            let (session, t2) = (&session, &t);
            group.bench_function(format!("one_row_{backend}"), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let t = Arc::clone(t2);
                    async move {
                        let mut total = Duration::ZERO;
                        for i in 0..iters {
                            let start = Instant::now();
                            session
                                .sql(&format!("INSERT INTO lake.main.c VALUES (0, {i})"))
                                .await
                                .expect("one-row insert");
                            let e = start.elapsed();
                            t.record(e);
                            total += e;
                        }
                        total
                    }
                })
            });
            group.finish();
        }
        summary.median(&id, &t);

        // Four writers, 25 commits each, in separate sessions.
        let start = Instant::now();
        rt.block_on(async {
            let mut handles = Vec::new();
            for w in 1..=4 {
                let attach = attach.clone();
                handles.push(tokio::spawn(async move {
                    let s = lakeq::Session::new();
                    s.sql(&attach).await.expect("attach");
                    for i in 0..25 {
                        s.sql(&format!("INSERT INTO lake.main.c VALUES ({w}, {i})"))
                            .await
                            .expect("concurrent insert");
                    }
                }));
            }
            for h in handles {
                h.await.expect("writer task");
            }
        });
        let elapsed = start.elapsed();
        let committed = rt.block_on(common::lakeq_rows(
            &session,
            "SELECT count(*) FROM lake.main.c WHERE w > 0",
        ));
        assert_eq!(
            committed,
            vec![vec!["100".to_string()]],
            "every concurrent insert committed once"
        );
        summary.line(format!(
            "THROUGHPUT commit/4_writers_{backend} = {:.0} commits/s (100 one-row commits in {:.2} s)",
            100.0 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        ));
    }
    c.final_summary();
    summary.print("write: medians from one run on this machine");
}
