//! `lakeq ingest` against DuckDB 1.5.5 (issue 4):
//! * `ingest/batches_<N>`: [`lakeq::ingest::ingest`] of N generated batches
//!   (`LAKEQ_BENCH_INGEST_BATCHES`, default 2: 117,000 rows in 8 files) into a fresh embedded lake
//!   (SQLite catalog, local Parquet), in process; every iteration starts from a new, empty lake.
//! * DuckDB: `bench_duckdb.py ingest` of the same landing zone into a fresh SQLite-catalog DuckLake
//!   (connect, load extensions, attach, one transaction, commit; three runs, median), for the
//!   lakeq/DuckDB ratio of this run; the transaction alone is reported too.
//!
//! Before the timings are reported, DuckDB counts the rows of the last lakeq-written raw lake per
//! table: they must equal what DuckDB inserted and what `lakeq generate` wrote.
//! The whole-binary comparison (process start, peak memory, 100 batches) is
//! `benches/ingest_vs_duckdb.sh`.
//! Run: `source scripts/test-env.sh && cargo bench --bench ingest` (`-- --quick` for a short run).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Duck, DuckQuery, Summary, Timings};
use criterion::SamplingMode;
use lakeq::config::embedded_lake;
use lakeq::generate::{GenerateOptions, generate};
use lakeq::ingest::{IngestOptions, RAW_LAKE, SchemaChange, TABLES, ingest};

fn batches() -> u32 {
    std::env::var("LAKEQ_BENCH_INGEST_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// An empty project folder (the embedded default lake lives under `<dir>/lake/`).
fn fresh_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the benchmark project folder");
}

fn main() {
    if !common::benchmarking("ingest") {
        return;
    }
    let rt = common::runtime();
    let duck = Duck::from_env();
    let n = batches();
    let tables: Vec<&str> = TABLES.iter().map(|(t, _)| *t).collect();
    let mut summary = Summary::default();
    let mut c = common::criterion(Duration::from_secs(10));

    // The landing zone, generated once per run (a few hundred ms).
    let landing = common::lake_dir("ingest-landing");
    fresh_dir(&landing);
    let generated = rt
        .block_on(generate(&GenerateOptions {
            landing: landing.display().to_string(),
            batches: n,
            ..GenerateOptions::default()
        }))
        .expect("generate the landing zone");
    let rows = &generated.rows;
    let total_rows = rows.users + rows.events + rows.invoices + rows.support_tickets;
    let expected: Vec<u64> = vec![rows.users, rows.events, rows.invoices, rows.support_tickets];

    // --- DuckDB: three fresh lakes ------------------------------------------------------------
    let mut duck_times = Vec::new();
    let mut duck_tx_times = Vec::new();
    for run in 0..3 {
        let dir = common::lake_dir(&format!("ingest-duck-{run}"));
        fresh_dir(&dir);
        let attach = format!(
            "ATTACH 'ducklake:sqlite:{}/meta.sqlite' AS lake (DATA_PATH '{}/data/')",
            dir.display(),
            dir.display()
        );
        let result = duck.ingest(&attach, &landing, &tables);
        let inserted: Vec<u64> = tables
            .iter()
            .map(|t| result.rows.get(*t).copied().unwrap_or_default())
            .collect();
        assert_eq!(inserted, expected, "DuckDB inserted other row counts");
        duck_times.push(result.seconds);
        duck_tx_times.push(result.insert_seconds);
    }
    let mut sorted = duck_times.clone();
    sorted.sort_by(f64::total_cmp);
    let duck_median = DuckQuery {
        label: "ingest".into(),
        sql: String::new(),
        columns: Vec::new(),
        rows: Vec::new(),
        median_s: sorted.get(1).copied(),
        times_s: duck_times,
    };

    // --- lakeq: a fresh lake per iteration ----------------------------------------------------
    let project = common::lake_dir("ingest-lakeq");
    let timings = Timings::new();
    let id = format!("ingest/batches_{n}");
    {
        let mut group = c.benchmark_group("ingest");
        group.sampling_mode(SamplingMode::Flat).sample_size(10);
        let (t, project, landing) = (&timings, &project, &landing);
        group.bench_function(format!("batches_{n}"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let t = Arc::clone(t);
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        fresh_dir(project);
                        let options = IngestOptions {
                            landing: landing.display().to_string(),
                            raw: embedded_lake(project, RAW_LAKE),
                            schema_change: SchemaChange::Evolve,
                            skip_bad_files: false,
                            concurrency: lakeq::cli::ingest::default_concurrency(),
                            memory_limit: None,
                        };
                        let start = Instant::now();
                        let report = ingest(&options).await.expect("lakeq ingest");
                        let e = start.elapsed();
                        assert_eq!(report.rows.values().sum::<u64>(), total_rows);
                        t.record(e);
                        total += e;
                    }
                    total
                }
            })
        });
        group.finish();
    }

    // Same answer: DuckDB counts the rows of the last lake lakeq wrote.
    let attach = format!(
        "ATTACH 'ducklake:sqlite:{}/lake/raw.sqlite' AS lake (READ_ONLY)",
        project.display()
    );
    let queries: Vec<(String, String)> = tables
        .iter()
        .map(|t| (t.to_string(), format!("SELECT count(*) FROM lake.saas.{t}")))
        .collect();
    let query_refs: Vec<(&str, &str)> = queries
        .iter()
        .map(|(l, q)| (l.as_str(), q.as_str()))
        .collect();
    let counted: Vec<u64> = duck
        .run(&attach, 0, &query_refs)
        .iter()
        .map(|q| {
            q.rows
                .first()
                .and_then(|r| r.first())
                .and_then(|v| v.parse().ok())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        counted, expected,
        "DuckDB counts other rows in lakeq's raw lake than were generated"
    );
    println!("CHECK ingest: DuckDB counts {counted:?} rows in lakeq's raw lake, as generated");

    let median = summary.median(&id, &timings);
    summary.ratio(&id, median, &duck_median);
    if let Some(m) = median {
        summary.line(format!(
            "THROUGHPUT {id} lakeq = {:.2} M rows/s ({total_rows} rows, {} files)",
            total_rows as f64 / m.as_secs_f64() / 1e6,
            generated.files.len()
        ));
    }
    if let Some(d) = duck_median.median_s {
        summary.line(format!(
            "THROUGHPUT {id} duckdb = {:.2} M rows/s",
            total_rows as f64 / d / 1e6
        ));
    }
    // DuckDB's time above includes loading its extensions and attaching; the transaction alone:
    duck_tx_times.sort_by(f64::total_cmp);
    if let Some(tx) = duck_tx_times.get(1) {
        summary.line(format!(
            "MEDIAN {id} duckdb transaction only = {:.3} ms ({:.2} M rows/s)",
            tx * 1e3,
            total_rows as f64 / tx / 1e6
        ));
    }
    c.final_summary();
    summary.print("ingest: medians from one run on this machine");
}
