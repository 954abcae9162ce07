//! TPC-H against DuckDB 1.5.5 on the same DuckLake: the 22 queries of DuckDB's tpch extension
//! (`tpch_queries()`, unchanged text) on a lake DuckDB wrote with `CALL dbgen(sf)` and `CREATE TABLE
//! lake.main.<t> AS ...` (no inlining: every table is Parquet), once with a SQLite catalog and once
//! with a PostgreSQL catalog. Both engines run after `ATTACH ... AS lake; USE lake`.
//!
//! Per query: DuckDB answers and times it on one warm connection (`tests/oracle/bench_duckdb.py run`:
//! one warm-up, then `LAKEQ_TPCH_RUNS` timed runs, execute + fetchall); lakeq answers it through the
//! library (`Session::sql`: refresh, plan, execute, collect), the answer is compared with DuckDB's
//! (canonical rendering, exact equality, as in the other benchmarks), and then up to
//! `LAKEQ_TPCH_RUNS` timed runs follow (fewer once a query has used `LAKEQ_TPCH_BUDGET_S` seconds,
//! at least one). No criterion here: 22 queries x 2 backends at SF 1 would not fit its sampling.
//! A query lakeq cannot run is a `FAIL` line, one whose answer differs a `MISMATCH` line; both are
//! left out of the ratios. Printed at the end: a table per backend (query, medians, ratio), the
//! geometric mean of the ratios and `RATIO tpch/<backend>/qNN lakeq/duckdb = x.xx` lines.
//!
//! The catalog's cost: the same queries also run on DataFusion alone (the same build, a plain
//! `SessionContext` with its defaults) over the lake's Parquet files registered directly as listing
//! tables (`ducklake_list_files`; DuckDB's `dbgen` lakes have no deletes or inlined rows, so the files
//! are the tables). Its answers are compared with DuckDB's too; the table shows its medians and
//! lakeq/DataFusion, summarised as `RATIO tpch/<backend>/geomean lakeq/datafusion` (set
//! `LAKEQ_TPCH_RAW=off` to skip it).
//!
//! Environment:
//! * `LAKEQ_TPCH_SF`: scale factor (default 1; 0.1 for a quick run)
//! * `LAKEQ_TPCH_QUERIES`: a subset, e.g. `1,3,18` (default all 22)
//! * `LAKEQ_TPCH_BACKENDS`: `sqlite`, `postgres` or both, comma-separated (default both)
//! * `LAKEQ_TPCH_RUNS`: timed runs per query and engine (default 5)
//! * `LAKEQ_TPCH_BUDGET_S`: lakeq's time budget per query for the timed runs (default 30)
//! * `LAKEQ_TPCH_WORKERS`: `host:port,host:port` of running `lakeq worker`s: lakeq's queries run
//!   distributed on them (answers still compared with DuckDB's; the ratio includes the cluster);
//!   `LAKEQ_TPCH_BYTES_PER_TASK`: Parquet bytes per scan task (small: more tasks on small lakes)
//! * `LAKEQ_TPCH_RAW`: `off` skips DataFusion alone on the raw files (default on; never with workers)
//! * `LAKEQ_TPCH_STRING_VIEWS`: `on` (default: VARCHAR/BLOB scanned as Utf8View/BinaryView, lakeq's
//!   default), `off` (plain Utf8/Binary) or `both` (off, then on, against the same DuckDB timings;
//!   ids then end in `/utf8` and `/views`), see `SessionOptions::string_views`
//!
//! Run: `source scripts/test-env.sh && cargo bench --bench tpch`. The lakes are built once per scale
//! factor and backend under `target/bench-lakes/tpch-sf<SF>-<backend>/` (the PostgreSQL catalog in
//! the database `lakeq_bench_tpch_sf<SF>` of `$LAKEQ_PG_URL`'s server) and reused while their key
//! matches.

mod common;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use common::{Duck, DuckQuery};
use futures::FutureExt;
use std::hint::black_box;
use tokio::runtime::Runtime;

/// Identifies the reusable lakes (with the scale factor and backend); change it when the build changes.
const LAKE_KEY: &str = "tpch-v1 duckdb=1.5.5 dbgen+ctas inlining=0";

struct Config {
    sf: f64,
    runs: usize,
    budget: Duration,
    queries: Option<Vec<u32>>,
    backends: Vec<String>,
    /// `SessionOptions::string_views` settings to run lakeq with, in order.
    string_views: Vec<bool>,
    /// `lakeq worker` addresses: lakeq's queries run distributed on them.
    workers: Vec<String>,
    /// Also run DataFusion alone on the raw Parquet files (`LAKEQ_TPCH_RAW`, default on).
    raw: bool,
}

impl Config {
    fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let sf: f64 = var("LAKEQ_TPCH_SF").map_or(1.0, |v| {
            v.trim()
                .parse()
                .unwrap_or_else(|e| panic!("LAKEQ_TPCH_SF={v}: {e}"))
        });
        assert!(sf > 0.0 && sf.is_finite(), "LAKEQ_TPCH_SF must be positive");
        let runs = var("LAKEQ_TPCH_RUNS").map_or(5, |v| {
            v.trim()
                .parse()
                .unwrap_or_else(|e| panic!("LAKEQ_TPCH_RUNS={v}: {e}"))
        });
        assert!(runs >= 1, "LAKEQ_TPCH_RUNS must be at least 1");
        let budget = var("LAKEQ_TPCH_BUDGET_S").map_or(30.0, |v| {
            v.trim()
                .parse()
                .unwrap_or_else(|e| panic!("LAKEQ_TPCH_BUDGET_S={v}: {e}"))
        });
        let queries = var("LAKEQ_TPCH_QUERIES").map(|v| {
            v.split(',')
                .map(|q| {
                    let q = q.trim().trim_start_matches(['q', 'Q']);
                    q.parse()
                        .unwrap_or_else(|e| panic!("LAKEQ_TPCH_QUERIES: {q:?}: {e}"))
                })
                .collect()
        });
        let backends: Vec<String> = var("LAKEQ_TPCH_BACKENDS").map_or_else(
            || vec!["sqlite".into(), "postgres".into()],
            |v| v.split(',').map(|b| b.trim().to_string()).collect(),
        );
        for b in &backends {
            assert!(
                b == "sqlite" || b == "postgres",
                "LAKEQ_TPCH_BACKENDS: unknown backend {b:?} (sqlite, postgres)"
            );
        }
        let string_views = match var("LAKEQ_TPCH_STRING_VIEWS").as_deref().map(str::trim) {
            None | Some("on") => vec![true],
            Some("off") => vec![false],
            Some("both") => vec![false, true],
            Some(other) => panic!("LAKEQ_TPCH_STRING_VIEWS: {other:?} (on, off, both)"),
        };
        let workers: Vec<String> = var("LAKEQ_TPCH_WORKERS")
            .map(|v| v.split(',').map(|w| w.trim().to_string()).collect())
            .unwrap_or_default();
        let raw = !matches!(var("LAKEQ_TPCH_RAW").as_deref().map(str::trim), Some("off"));
        Self {
            workers,
            raw,
            string_views,
            sf,
            runs,
            budget: Duration::from_secs_f64(budget),
            queries,
            backends,
        }
    }

    /// `1`, `0.1`, ... as used in directory names.
    fn sf_name(&self) -> String {
        self.sf.to_string()
    }
}

/// One attached lake of the benchmark.
struct Lake {
    backend: &'static str,
    title: &'static str,
    attach: String,
}

fn build_attach(attach: &str) -> String {
    format!(
        "{}, DATA_INLINING_ROW_LIMIT 0)",
        attach.trim_end_matches(')')
    )
}

fn sqlite_lake(duck: &Duck, cfg: &Config) -> Lake {
    let dir = common::lake_dir(&format!("tpch-sf{}-sqlite", cfg.sf_name()));
    let attach = format!(
        "ATTACH 'ducklake:sqlite:{}/meta.sqlite' AS lake (DATA_PATH '{}/data/')",
        dir.display(),
        dir.display()
    );
    let key = format!("{LAKE_KEY} sf={} backend=sqlite", cfg.sf_name());
    common::reuse_or_build(&dir, &key, |_| {
        duck.build_tpch(&build_attach(&attach), cfg.sf)
    });
    Lake {
        backend: "sqlite",
        title: "SQLite catalog",
        attach,
    }
}

fn postgres_lake(rt: &Runtime, duck: &Duck, cfg: &Config) -> Lake {
    let sf = cfg.sf_name();
    let db = format!("lakeq_bench_tpch_sf{}", sf.replace('.', "_"));
    let dir = common::lake_dir(&format!("tpch-sf{sf}-postgres"));
    let attach = format!(
        "ATTACH 'ducklake:postgres:dbname={db} host=127.0.0.1 user=postgres' AS lake (DATA_PATH '{}/data/')",
        dir.display()
    );
    let key = format!("{LAKE_KEY} sf={sf} backend=postgres database={db}");
    // The marker says nothing about the database: without it, build again.
    if !rt.block_on(common::pg_database_exists(&db)) {
        let _ = std::fs::remove_file(dir.join(".lakeq-bench-key"));
    }
    common::reuse_or_build(&dir, &key, |_| {
        rt.block_on(common::recreate_pg_database(&db));
        duck.build_tpch(&build_attach(&attach), cfg.sf);
    });
    Lake {
        backend: "postgres",
        title: "PostgreSQL catalog",
        attach,
    }
}

/// What happened to one query on one backend.
enum Outcome {
    /// Same answer; lakeq's median and number of timed runs.
    Same { lakeq: Duration, n: usize },
    /// Different answers (timed all the same, left out of the ratios).
    Mismatch { lakeq: Duration, n: usize },
    /// lakeq could not plan or run it.
    Failed { error: String },
}

struct QueryResult {
    nr: u32,
    duck: DuckQuery,
    outcome: Outcome,
    /// DataFusion alone on the raw files: its median, or why it has none.
    raw: Option<Result<Duration, String>>,
}

/// A plain DataFusion context (its defaults) with each TPC-H table of the lake attached in
/// `session` registered as a listing table over the table's Parquet files.
async fn raw_context(
    session: &lakeq::Session,
) -> Result<datafusion::prelude::SessionContext, String> {
    use datafusion::datasource::file_format::options::ReadOptions;
    use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
    use datafusion::prelude::{ParquetReadOptions, SessionContext};
    let ctx = SessionContext::new();
    for table in [
        "customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier",
    ] {
        let batches = session
            .sql(&format!(
                "SELECT data_file FROM ducklake_list_files('lake', '{table}')"
            ))
            .await
            .map_err(|e| format!("list the files of {table}: {e}"))?;
        let (_, rows) = common::canonical::render_batches(&batches).map_err(|e| e.to_string())?;
        let urls = rows
            .iter()
            .filter_map(|r| r.first())
            .map(|path| ListingTableUrl::parse(path).map_err(|e| format!("{path}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let options = ParquetReadOptions::default()
            .to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .infer_schema(&ctx.state())
            .await
            .map_err(|e| format!("{table}: {e}"))?;
        let provider = ListingTable::try_new(config).map_err(|e| format!("{table}: {e}"))?;
        ctx.register_table(table, std::sync::Arc::new(provider))
            .map_err(|e| format!("{table}: {e}"))?;
    }
    Ok(ctx)
}

/// DataFusion alone on the raw files: per query, the median of up to `cfg.runs` timed runs
/// after one checked run, or why not (an error, or an answer other than DuckDB's).
async fn raw_queries(
    session: &lakeq::Session,
    queries: &[(u32, String)],
    answers: &[DuckQuery],
    cfg: &Config,
) -> Vec<Result<Duration, String>> {
    let ctx = match raw_context(session).await {
        Ok(ctx) => ctx,
        Err(e) => return queries.iter().map(|_| Err(e.clone())).collect(),
    };
    let run = |sql: String| {
        let ctx = ctx.clone();
        async move {
            let df = ctx.sql(&sql).await.map_err(|e| e.to_string())?;
            df.collect().await.map_err(|e| e.to_string())
        }
    };
    let mut out = Vec::new();
    for ((nr, sql), answer) in queries.iter().zip(answers) {
        let checked = match run(sql.clone()).await {
            Ok(batches) => common::canonical::render_batches(&batches)
                .map_err(|e| e.to_string())
                .and_then(|(_, rows)| {
                    (rows == answer.rows).then_some(()).ok_or_else(|| {
                        format!("answer differs: {}", difference(&rows, &answer.rows))
                    })
                }),
            Err(e) => Err(e),
        };
        if let Err(e) = checked {
            println!("RAW q{nr:02} datafusion: {}", one_line(&e, 300));
            out.push(Err(e));
            continue;
        }
        let mut times = Vec::new();
        let timed = Instant::now();
        while times.len() < cfg.runs && (times.is_empty() || timed.elapsed() < cfg.budget) {
            let start = Instant::now();
            match run(sql.clone()).await {
                Ok(batches) => black_box(batches),
                Err(e) => panic!("DataFusion failed on q{nr:02} after succeeding once: {e}"),
            };
            times.push(start.elapsed());
        }
        out.push(Ok(median(times)));
    }
    out
}

/// Run `sql` in lakeq; a panic is reported like an error.
async fn lakeq_run(
    session: &lakeq::Session,
    sql: &str,
) -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>, String> {
    match AssertUnwindSafe(session.sql(sql)).catch_unwind().await {
        Ok(Ok(batches)) => Ok(batches),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(format!(
            "panic: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)")
        )),
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    let n = times.len();
    if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2
    }
}

fn one_line(s: &str, max: usize) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > max {
        format!("{}...", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

/// Where lakeq's rows differ from DuckDB's, in one line.
fn difference(ours: &[Vec<String>], theirs: &[Vec<String>]) -> String {
    if ours.len() != theirs.len() {
        return format!(
            "lakeq returned {} row(s), DuckDB {}",
            ours.len(),
            theirs.len()
        );
    }
    match ours.iter().zip(theirs).position(|(a, b)| a != b) {
        Some(i) => format!(
            "row {i}: lakeq {} vs DuckDB {}",
            one_line(&format!("{:?}", ours[i]), 300),
            one_line(&format!("{:?}", theirs[i]), 300)
        ),
        None => "same rows".into(),
    }
}

fn bench_lake(
    rt: &Runtime,
    duck: &Duck,
    lake: &Lake,
    queries: &[(u32, String)],
    cfg: &Config,
) -> Vec<(String, Vec<QueryResult>)> {
    let shape = duck.run(
        &lake.attach,
        0,
        &[(
            "shape",
            "SELECT (SELECT count(*) FROM lake.main.lineitem), \
             (SELECT count(*) FROM ducklake_list_files('lake', 'lineitem')), \
             (SELECT count(*) FROM lake.main.orders)",
        )],
    );
    if let Some(row) = shape.first().and_then(|q| q.rows.first()) {
        println!(
            "{}: lineitem {} rows in {} file(s), orders {} rows",
            lake.title,
            row.first().map_or("?", String::as_str),
            row.get(1).map_or("?", String::as_str),
            row.get(2).map_or("?", String::as_str),
        );
    }

    // DuckDB first: answers and timings on one warm connection.
    let labels: Vec<String> = queries.iter().map(|(nr, _)| format!("q{nr:02}")).collect();
    let duck_queries: Vec<(&str, &str)> = labels
        .iter()
        .zip(queries)
        .map(|(l, (_, sql))| (l.as_str(), sql.as_str()))
        .collect();
    let start = Instant::now();
    let answers = duck.run_with_setup(&lake.attach, &["USE lake"], cfg.runs, &duck_queries);
    println!(
        "DuckDB, {}: {} queries x (1 + {}) runs in {:.1} s",
        lake.title,
        queries.len(),
        cfg.runs,
        start.elapsed().as_secs_f64()
    );

    let mut out = Vec::new();
    for &views in &cfg.string_views {
        let variant = variant(cfg, views);
        let results = lakeq_queries(rt, lake, queries, &answers, cfg, views, &variant);
        out.push((variant, results));
    }
    out
}

/// The suffix of a string-views setting in ids (empty when only one is run).
fn variant(cfg: &Config, views: bool) -> String {
    match (cfg.string_views.len() > 1, views) {
        (false, _) => String::new(),
        (true, true) => "/views".into(),
        (true, false) => "/utf8".into(),
    }
}

/// lakeq's answers and timings of `queries` with `string_views` set to `views`.
fn lakeq_queries(
    rt: &Runtime,
    lake: &Lake,
    queries: &[(u32, String)],
    answers: &[DuckQuery],
    cfg: &Config,
    views: bool,
    variant: &str,
) -> Vec<QueryResult> {
    let id = |nr: u32| format!("tpch/{}{variant}/q{nr:02}", lake.backend);
    println!(
        "lakeq, {}: string_views = {views}, workers = {:?}",
        lake.title, cfg.workers
    );
    rt.block_on(async {
        let session = lakeq::Session::with_options(
            &lakeq::SessionOptions::default()
                .with_string_views(views)
                .with_cluster(lakeq::distributed::ClusterOptions {
                    workers: cfg.workers.clone(),
                    bytes_per_task: std::env::var("LAKEQ_TPCH_BYTES_PER_TASK")
                        .ok()
                        .and_then(|v| v.trim().parse().ok()),
                }),
        );
        for sql in [lake.attach.as_str(), "USE lake"] {
            session
                .sql(sql)
                .await
                .unwrap_or_else(|e| panic!("lakeq failed on {sql}: {e}"));
        }
        let mut results = Vec::new();
        for ((nr, sql), answer) in queries.iter().zip(answers.iter().cloned()) {
            let id = id(*nr);
            let first = Instant::now();
            let batches = match lakeq_run(&session, sql).await {
                Ok(b) => b,
                Err(error) => {
                    println!("FAIL {id} lakeq: {}", one_line(&error, 400));
                    results.push(QueryResult {
                        nr: *nr,
                        duck: answer,
                        outcome: Outcome::Failed { error },
                        raw: None,
                    });
                    continue;
                }
            };
            let first = first.elapsed();
            let ours = common::canonical::render_batches(&batches)
                .unwrap_or_else(|e| panic!("render lakeq's answer to {id}: {e}"))
                .1;
            let same = ours == answer.rows;
            if same {
                println!(
                    "CHECK {id} lakeq == duckdb ({} row(s)); first run {:.1} ms",
                    ours.len(),
                    common::ms(first)
                );
            } else {
                println!(
                    "MISMATCH {id} lakeq != duckdb: {}",
                    difference(&ours, &answer.rows)
                );
            }
            drop(batches);

            let mut times = Vec::new();
            let timed = Instant::now();
            while times.len() < cfg.runs && (times.is_empty() || timed.elapsed() < cfg.budget) {
                let start = Instant::now();
                let batches = lakeq_run(&session, sql)
                    .await
                    .unwrap_or_else(|e| panic!("lakeq failed on {id} after succeeding once: {e}"));
                times.push(start.elapsed());
                black_box(batches);
            }
            let n = times.len();
            let lakeq = median(times);
            let duck_ms = answer.median_s.unwrap_or(f64::NAN) * 1e3;
            println!(
                "{id}: lakeq {:.1} ms (n = {n}), duckdb {duck_ms:.1} ms (n = {}), lakeq/duckdb {:.2}",
                common::ms(lakeq),
                answer.times_s.len(),
                common::ms(lakeq) / duck_ms
            );
            results.push(QueryResult {
                nr: *nr,
                duck: answer,
                outcome: if same {
                    Outcome::Same { lakeq, n }
                } else {
                    Outcome::Mismatch { lakeq, n }
                },
                raw: None,
            });
        }
        if !cfg.workers.is_empty() {
            profile_queries(&session, lake, queries, variant).await;
        }
        if cfg.raw && cfg.workers.is_empty() {
            println!("DataFusion alone on the raw Parquet files, {}", lake.title);
            let raw = raw_queries(&session, queries, answers, cfg).await;
            for (r, raw) in results.iter_mut().zip(raw) {
                r.raw = Some(raw);
            }
        }
        results
    })
}

/// Machine counts the speed-up model is printed for.
const MODEL_MACHINES: [usize; 5] = [1, 2, 4, 8, 16];

/// With workers: run every query once more with its plan kept, read the per-stage, per-task
/// compute times datafusion-distributed collected ([`lakeq::distributed::QueryProfile`]) and
/// print the modeled time on 1, 2, 4, 8 and 16 machines of this machine's cores (10 Gbit/s
/// network), per query and summed over the queries.
async fn profile_queries(
    session: &lakeq::Session,
    lake: &Lake,
    queries: &[(u32, String)],
    variant: &str,
) {
    use lakeq::distributed::ClusterModel;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let model = |machines: usize| ClusterModel {
        machines,
        cores,
        bytes_per_second: 10e9 / 8.0,
    };
    println!(
        "\n==== tpch {}{variant}: per-stage compute on the workers and the modeled time on N machines \
         ({cores} cores each, 10 Gbit/s) ====",
        lake.title
    );
    println!(
        "{:<6} {:>8} {:>7} {:>11} {:>10}  {}",
        "query",
        "wall ms",
        "stages",
        "compute ms",
        "MB moved",
        MODEL_MACHINES
            .iter()
            .map(|n| format!("{:>9}", format!("N={n} ms")))
            .collect::<String>()
    );
    let mut totals = [0.0f64; MODEL_MACHINES.len()];
    let mut profiled = 0;
    for (nr, sql) in queries {
        let started = Instant::now();
        let executed = session.query_profiled(sql).await.map(|(batches, profile)| {
            black_box(batches);
            (started.elapsed(), profile)
        });
        let q = format!("q{nr:02}");
        let (wall, profile) = match executed {
            Ok((wall, Some(profile))) => (wall, profile),
            Ok((_, None)) => {
                println!("{q:<6} ran in this process alone (no distributed stage)");
                continue;
            }
            Err(e) => {
                println!("{q:<6} not profiled: {}", one_line(&e.to_string(), 200));
                continue;
            }
        };
        profiled += 1;
        let stages = profile
            .stages
            .iter()
            .map(|s| s.task_compute.len().to_string())
            .collect::<Vec<_>>()
            .join("+");
        let moved: u64 = profile.stages.iter().map(|s| s.bytes_received).sum();
        let mut modeled = String::new();
        for (i, n) in MODEL_MACHINES.iter().enumerate() {
            let t = common::ms(profile.modeled(model(*n)));
            totals[i] += t;
            modeled.push_str(&format!("{t:>9.1}"));
        }
        println!(
            "{q:<6} {:>8.1} {stages:>7} {:>11.1} {:>10.2}  {modeled}",
            common::ms(wall),
            common::ms(profile.total_compute()),
            moved as f64 / 1e6
        );
    }
    if profiled > 0 {
        let one = totals[0];
        println!(
            "sum of {profiled} queries, modeled: {}",
            MODEL_MACHINES
                .iter()
                .zip(totals)
                .map(|(n, t)| format!("N={n} {t:.0} ms (speed-up {:.2})", one / t))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// The table of one backend; returns the summary lines (geomean, RATIO, FAIL, MISMATCH).
fn report(lake: &Lake, variant: &str, cfg: &Config, results: &[QueryResult]) -> Vec<String> {
    println!(
        "\n==== tpch SF {}, {}{variant} (lakeq through the library vs DuckDB 1.5.5, medians, one run on this machine) ====",
        cfg.sf_name(),
        lake.title
    );
    println!(
        "{:<6} {:>12} {:>12} {:>8} {:>14} {:>10}  note",
        "query", "lakeq ms", "duckdb ms", "ratio", "datafusion ms", "lakeq/df"
    );
    let mut lines = Vec::new();
    let mut logs = Vec::new();
    let mut raw_logs = Vec::new();
    for r in results {
        let duck_ms = r.duck.median_s.unwrap_or(f64::NAN) * 1e3;
        let q = format!("q{:02}", r.nr);
        let id = format!("tpch/{}{variant}/{q}", lake.backend);
        match &r.outcome {
            Outcome::Same { lakeq, n } => {
                let ratio = common::ms(*lakeq) / duck_ms;
                let (raw_ms, raw_ratio, raw_note) = match &r.raw {
                    Some(Ok(raw)) => {
                        let raw_ratio = common::ms(*lakeq) / common::ms(*raw);
                        raw_logs.push(raw_ratio.ln());
                        (
                            format!("{:.1}", common::ms(*raw)),
                            format!("{raw_ratio:.2}"),
                            String::new(),
                        )
                    }
                    Some(Err(e)) => (
                        "-".into(),
                        "-".into(),
                        format!("; datafusion: {}", one_line(e, 80)),
                    ),
                    None => ("-".into(), "-".into(), String::new()),
                };
                println!(
                    "{q:<6} {:>12.1} {duck_ms:>12.1} {ratio:>8.2} {raw_ms:>14} {raw_ratio:>10}  n = {n}/{}{raw_note}",
                    common::ms(*lakeq),
                    r.duck.times_s.len()
                );
                logs.push(ratio.ln());
                lines.push(format!("RATIO {id} lakeq/duckdb = {ratio:.2}"));
            }
            Outcome::Mismatch { lakeq, n } => {
                println!(
                    "{q:<6} {:>12.1} {duck_ms:>12.1} {:>8}  MISMATCH (not in the geomean), n = {n}/{}",
                    common::ms(*lakeq),
                    "-",
                    r.duck.times_s.len()
                );
                lines.push(format!("MISMATCH {id} lakeq != duckdb"));
            }
            Outcome::Failed { error } => {
                println!(
                    "{q:<6} {:>12} {duck_ms:>12.1} {:>8}  FAIL: {}",
                    "-",
                    "-",
                    one_line(error, 200)
                );
                lines.push(format!("FAIL {id} lakeq: {}", one_line(error, 400)));
            }
        }
    }
    if logs.is_empty() {
        println!("geomean: no query with equal answers");
    } else {
        let geomean = (logs.iter().sum::<f64>() / logs.len() as f64).exp();
        println!(
            "geomean lakeq/duckdb over {} of {} queries: {geomean:.2}",
            logs.len(),
            results.len()
        );
        lines.push(format!(
            "RATIO tpch/{}{variant}/geomean lakeq/duckdb = {geomean:.2} ({} queries)",
            lake.backend,
            logs.len()
        ));
    }
    if !raw_logs.is_empty() {
        let geomean = (raw_logs.iter().sum::<f64>() / raw_logs.len() as f64).exp();
        println!(
            "geomean lakeq/datafusion (raw files) over {} queries: {geomean:.2}",
            raw_logs.len()
        );
        lines.push(format!(
            "RATIO tpch/{}{variant}/geomean lakeq/datafusion = {geomean:.2} ({} queries)",
            lake.backend,
            raw_logs.len()
        ));
    }
    lines
}

fn main() {
    if !common::benchmarking("tpch") {
        return;
    }
    let started = Instant::now();
    let cfg = Config::from_env();
    let rt = common::runtime();
    let duck = Duck::from_env();

    let mut queries = duck.tpch_queries();
    assert_eq!(
        queries.len(),
        22,
        "DuckDB's tpch_queries() should list 22 queries"
    );
    if let Some(subset) = &cfg.queries {
        for nr in subset {
            assert!(
                queries.iter().any(|(q, _)| q == nr),
                "LAKEQ_TPCH_QUERIES: no TPC-H query {nr}"
            );
        }
        queries.retain(|(nr, _)| subset.contains(nr));
    }
    println!(
        "tpch: SF {}, queries {:?}, {} timed run(s) per query and engine (lakeq budget {:.0} s per query)",
        cfg.sf_name(),
        queries.iter().map(|(nr, _)| *nr).collect::<Vec<_>>(),
        cfg.runs,
        cfg.budget.as_secs_f64()
    );

    let mut summary = Vec::new();
    let mut reports = Vec::new();
    for backend in &cfg.backends {
        let lake = match backend.as_str() {
            "sqlite" => sqlite_lake(&duck, &cfg),
            _ => postgres_lake(&rt, &duck, &cfg),
        };
        let results = bench_lake(&rt, &duck, &lake, &queries, &cfg);
        reports.push((lake, results));
    }
    for (lake, runs) in &reports {
        for (variant, results) in runs {
            summary.extend(report(lake, variant, &cfg, results));
        }
    }
    println!("\n==== tpch SF {} summary ====", cfg.sf_name());
    for line in &summary {
        println!("{line}");
    }
    println!("tpch: finished in {:.1} s", started.elapsed().as_secs_f64());
}
