//! Scan throughput against DuckDB 1.5.5 on the same lake: a 10-million-row table written by DuckDB
//! (SQLite catalog), queried by lakeq (`Session::sql`: refresh, plan, execute) under criterion and by
//! DuckDB in the same run (`tests/oracle/bench_duckdb.py run`: one warm-up, then timed runs).
//!
//! Queries (`count(*)` alone would be answered by DuckDB from catalog statistics, so each also
//! aggregates columns that force reading data):
//! * `full_scan`: `SELECT count(*), sum(x), max(s) FROM lake.main.big`
//! * `selective`: `SELECT count(*), sum(x) FROM lake.main.big WHERE id BETWEEN 5000000 AND 5001000`
//!
//! Both engines' answers must be equal before anything is timed. Printed at the end: medians
//! and `RATIO scan/<query> lakeq/duckdb`, from one run on this machine.
//!
//! Run: `source scripts/test-env.sh && cargo bench --bench scan` (add `-- --quick` for a shorter
//! run). The lake is built once (a few seconds) under `target/bench-lakes/scan-sqlite/` and reused
//! while its key matches.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Duck, Summary, Timings};
use criterion::SamplingMode;
use std::hint::black_box;

const ROWS: u64 = 10_000_000;
/// Identifies the reusable lake; change it when the table definition changes.
const LAKE_KEY: &str = "scan-v1 rows=10000000 duckdb=1.5.5";
const QUERIES: [(&str, &str); 2] = [
    (
        "full_scan",
        "SELECT count(*), sum(x), max(s) FROM lake.main.big",
    ),
    (
        "selective",
        "SELECT count(*), sum(x) FROM lake.main.big WHERE id BETWEEN 5000000 AND 5001000",
    ),
];
/// Timed DuckDB runs per query (after one warm-up).
const DUCK_RUNS: usize = 10;

fn main() {
    if !common::benchmarking("scan") {
        return;
    }
    let rt = common::runtime();
    let duck = Duck::from_env();

    let dir = common::lake_dir("scan-sqlite");
    let attach = format!(
        "ATTACH 'ducklake:sqlite:{}/meta.sqlite' AS lake (DATA_PATH '{}/data/')",
        dir.display(),
        dir.display()
    );
    common::reuse_or_build(&dir, LAKE_KEY, |_| duck.build_scan(&attach, ROWS));

    let shape = duck.run(
        &attach,
        0,
        &[(
            "files",
            "SELECT count(*) FROM ducklake_list_files('lake', 'big')",
        )],
    );
    let files = shape
        .first()
        .and_then(|q| q.rows.first())
        .and_then(|r| r.first())
        .cloned()
        .unwrap_or_default();
    println!("lake.main.big: {ROWS} rows in {files} data file(s)");

    // DuckDB first (answers and timings), then lakeq must give the same answers.
    let duck_queries = duck.run(&attach, DUCK_RUNS, &QUERIES);
    let session = rt.block_on(async {
        let session = lakeq::Session::new();
        session
            .sql(&attach)
            .await
            .unwrap_or_else(|e| panic!("lakeq failed to attach ({attach}): {e}"));
        common::assert_same_answers("scan", &session, &duck_queries).await;
        session
    });

    let mut c = common::criterion(Duration::from_secs(5));
    let mut summary = Summary::default();
    let timings: Vec<Arc<Timings>> = QUERIES.iter().map(|_| Timings::new()).collect();
    let mut group = c.benchmark_group("scan");
    // Full scans take long enough that criterion's linear sampling (1+2+..+10 runs) would not fit.
    group.sampling_mode(SamplingMode::Flat);
    for ((label, sql), t) in QUERIES.iter().zip(&timings) {
        let session = &session;
        group.bench_function(*label, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let t = Arc::clone(t);
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        let batches = session
                            .sql(sql)
                            .await
                            .unwrap_or_else(|e| panic!("lakeq failed on {sql}: {e}"));
                        let elapsed = start.elapsed();
                        black_box(batches);
                        t.record(elapsed);
                        total += elapsed;
                    }
                    total
                }
            })
        });
    }
    group.finish();

    for (((label, _), t), d) in QUERIES.iter().zip(&timings).zip(&duck_queries) {
        let id = format!("scan/{label}");
        let median = summary.median(&id, t);
        summary.ratio(&id, median, d);
    }
    c.final_summary();
    summary.print(&format!(
        "scan: {ROWS} rows, SQLite catalog; medians from one run on this machine"
    ));
}
