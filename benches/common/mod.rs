//! Shared pieces of lakeq's benchmarks: the DuckDB 1.5.5 side (`tests/oracle/bench_duckdb.py`),
//! lakes built once under `target/bench-lakes/` and reused, per-run PostgreSQL databases,
//! answer checks against DuckDB, and per-iteration timings for medians and lakeq/DuckDB ratios.
//!
//! Benchmarks run only under `cargo bench` (criterion's `--bench` flag): `cargo test
//! --all-targets` builds them but skips the heavy fixtures.

// Each benchmark binary uses a different subset of these helpers.
#![allow(dead_code)]

#[path = "../../tests/it/common/canonical.rs"]
pub mod canonical;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use criterion::Criterion;
use serde::Deserialize;

/// Error type of the canonical renderer shared with the integration tests.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Warm-up time of every benchmark (criterion's `--warm-up-time` overrides it).
pub const WARM_UP: Duration = Duration::from_secs(1);

/// True when run by `cargo bench` (criterion's `--bench` flag) and not just listing benchmarks.
/// `cargo test --all-targets` runs bench binaries without `--bench`: they then skip the fixtures.
pub fn benchmarking(name: &str) -> bool {
    let args: Vec<String> = std::env::args().collect();
    let run = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list");
    if !run {
        println!("{name}: not run by `cargo bench`; skipping the benchmark fixtures");
    }
    run
}

/// The tokio runtime the benchmarks drive lakeq with (built outside every measured closure).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("build the tokio runtime")
}

/// Criterion with short runs (10 samples, 1 s warm-up, `measurement` per benchmark); command line
/// options (`--quick`, `--sample-size`, `--measurement-time`, filters) override these.
pub fn criterion(measurement: Duration) -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(WARM_UP)
        .measurement_time(measurement)
        .configure_from_args()
}

/// `<repo>/target/bench-lakes/<name>`.
pub fn lake_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-lakes")
        .join(name)
}

/// Make sure `dir` holds the fixture identified by `key`: reuse it when its marker file says `key`,
/// else wipe the directory and call `build`. Returns true when it was built now.
pub fn reuse_or_build(dir: &Path, key: &str, build: impl FnOnce(&Path)) -> bool {
    let marker = dir.join(".lakeq-bench-key");
    if std::fs::read_to_string(&marker).is_ok_and(|k| k == key) {
        println!("reusing {} ({key})", dir.display());
        return false;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).expect("remove the stale benchmark lake");
    }
    std::fs::create_dir_all(dir).expect("create the benchmark lake directory");
    println!("building {} ({key}) ...", dir.display());
    let start = Instant::now();
    build(dir);
    std::fs::write(&marker, key).expect("write the benchmark lake marker");
    println!(
        "built {} in {:.1} s",
        dir.display(),
        start.elapsed().as_secs_f64()
    );
    true
}

/// One query as answered (and timed) by DuckDB.
#[derive(Debug, Clone, Deserialize)]
pub struct DuckQuery {
    pub label: String,
    pub sql: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Median of the timed runs, seconds (`None` with zero runs).
    pub median_s: Option<f64>,
    pub times_s: Vec<f64>,
}

#[derive(Debug, Deserialize)]
struct RunOutput {
    queries: Vec<DuckQuery>,
}

/// The DuckDB 1.5.5 side: `tests/oracle/bench_duckdb.py` run with the oracle venv's python.
#[derive(Debug, Clone)]
pub struct Duck {
    python: String,
    ext_dir: String,
    script: PathBuf,
}

impl Duck {
    /// From `LAKEQ_DUCKDB_PYTHON` / `LAKEQ_DUCKDB_EXT_DIR` (`source scripts/test-env.sh`), else the repo's
    /// `.venv`; panics with instructions when missing.
    pub fn from_env() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let venv = root.join(".venv");
        let python = std::env::var("LAKEQ_DUCKDB_PYTHON")
            .unwrap_or_else(|_| venv.join("bin/python").display().to_string());
        let ext_dir = std::env::var("LAKEQ_DUCKDB_EXT_DIR")
            .unwrap_or_else(|_| venv.join("duckdb_extensions").display().to_string());
        assert!(
            Path::new(&python).exists() && Path::new(&ext_dir).exists(),
            "the DuckDB 1.5.5 oracle is missing ({python}, {ext_dir}): run `source scripts/test-env.sh` first"
        );
        Self {
            python,
            ext_dir,
            script: root.join("tests/oracle/bench_duckdb.py"),
        }
    }

    /// Run one subcommand of bench_duckdb.py and return its stdout (JSON). Its stderr (progress)
    /// goes to ours.
    fn call(&self, subcommand: &str, args: &[&str]) -> Vec<u8> {
        let out = Command::new(&self.python)
            .arg(&self.script)
            .arg(subcommand)
            .arg("--ext-dir")
            .arg(&self.ext_dir)
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .expect("start the DuckDB benchmark helper (tests/oracle/bench_duckdb.py)");
        assert!(
            out.status.success(),
            "bench_duckdb.py {subcommand} failed ({}); args: {args:?}",
            out.status
        );
        out.stdout
    }

    /// Answer each `(label, sql)` after `attach` (one warm-up run), then time `runs` more runs.
    pub fn run(&self, attach: &str, runs: usize, queries: &[(&str, &str)]) -> Vec<DuckQuery> {
        self.run_with_setup(attach, &[], runs, queries)
    }

    /// [`Duck::run`] with `setup` statements (e.g. `USE lake`) run after `attach`.
    pub fn run_with_setup(
        &self,
        attach: &str,
        setup: &[&str],
        runs: usize,
        queries: &[(&str, &str)],
    ) -> Vec<DuckQuery> {
        let runs = runs.to_string();
        let mut args = vec!["--attach", attach, "--runs", &runs];
        for sql in setup {
            args.extend(["--setup", sql]);
        }
        for (label, sql) in queries {
            args.extend(["--query", label, sql]);
        }
        let out: RunOutput = serde_json::from_slice(&self.call("run", &args))
            .expect("parse the JSON of bench_duckdb.py run");
        out.queries
    }

    /// Write the scan benchmark's table `lake.main.big` with `rows` rows.
    pub fn build_scan(&self, attach: &str, rows: u64) {
        self.call(
            "build-scan",
            &["--attach", attach, "--rows", &rows.to_string()],
        );
    }

    /// Write the TPC-H benchmark's lake: `CALL dbgen(sf)` in DuckDB, then the 8 tables copied into
    /// `lake.main` (see bench_duckdb.py build-tpch).
    pub fn build_tpch(&self, attach: &str, sf: f64) {
        self.call("build-tpch", &["--attach", attach, "--sf", &sf.to_string()]);
    }

    /// The 22 TPC-H query texts of DuckDB's tpch extension (`tpch_queries()`), as `(number, sql)`.
    pub fn tpch_queries(&self) -> Vec<(u32, String)> {
        #[derive(Deserialize)]
        struct Query {
            nr: u32,
            sql: String,
        }
        #[derive(Deserialize)]
        struct Queries {
            queries: Vec<Query>,
        }
        let out: Queries = serde_json::from_slice(&self.call("tpch-queries", &[]))
            .expect("parse the JSON of bench_duckdb.py tpch-queries");
        out.queries.into_iter().map(|q| (q.nr, q.sql)).collect()
    }

    /// DuckDB's side of `lakeq ingest`: one transaction of `INSERT INTO lake.saas.<t> SELECT * FROM
    /// read_parquet('<landing>/<t>/*.parquet')` per table into the (fresh) lake of `attach`.
    pub fn ingest(&self, attach: &str, landing: &Path, tables: &[&str]) -> DuckIngest {
        let landing = landing.display().to_string();
        let mut args = vec!["--attach", attach, "--landing", &landing];
        for t in tables {
            args.extend(["--table", t]);
        }
        serde_json::from_slice(&self.call("ingest", &args))
            .expect("parse the JSON of bench_duckdb.py ingest")
    }

    /// Build the planning benchmark's lake (see bench_duckdb.py build-planning).
    pub fn build_planning(&self, spec: &PlanningLakeSpec<'_>) {
        let (files, per, rows) = (
            spec.files.to_string(),
            spec.files_per_snapshot.to_string(),
            spec.rows_per_file.to_string(),
        );
        self.call(
            "build-planning",
            &[
                "--attach",
                spec.attach,
                "--backend",
                spec.backend,
                "--meta-attach",
                spec.meta_attach,
                "--meta-prefix",
                spec.meta_prefix,
                "--files",
                &files,
                "--files-per-snapshot",
                &per,
                "--rows-per-file",
                &rows,
            ],
        );
    }
}

/// One timed `bench_duckdb.py ingest`.
#[derive(Debug, Clone, Deserialize)]
pub struct DuckIngest {
    /// Connect, load the extensions, attach, transaction, commit.
    pub seconds: f64,
    /// The transaction alone.
    pub insert_seconds: f64,
    /// Rows inserted per table.
    pub rows: std::collections::BTreeMap<String, u64>,
}

/// Arguments of `bench_duckdb.py build-planning`.
#[derive(Debug, Clone)]
pub struct PlanningLakeSpec<'a> {
    /// DuckDB ATTACH of the lake as `lake`, with `DATA_INLINING_ROW_LIMIT 0`.
    pub attach: &'a str,
    /// `sqlite` or `postgres`.
    pub backend: &'a str,
    /// DuckDB ATTACH of the raw catalog database as `meta`.
    pub meta_attach: &'a str,
    /// Qualifier of the `ducklake_*` tables in DuckDB, e.g. `meta` or `meta.lakeq_meta`.
    pub meta_prefix: &'a str,
    pub files: u64,
    pub files_per_snapshot: u64,
    pub rows_per_file: u64,
}

/// The PostgreSQL server (`LAKEQ_PG_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).
pub fn pg_url() -> String {
    std::env::var("LAKEQ_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Create `lakeq_bench_<name>_<random>` and return its name.
pub async fn create_pg_database(name: &str) -> String {
    use sqlx::Connection;
    let url = pg_url();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {url} is required (source scripts/test-env.sh): {e}")
    });
    let db = format!(
        "lakeq_bench_{name}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE for the benchmark");
    db
}

/// Whether the database `db` exists on the PostgreSQL server.
pub async fn pg_database_exists(db: &str) -> bool {
    use sqlx::Connection;
    let url = pg_url();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {url} is required (source scripts/test-env.sh): {e}")
    });
    sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(db)
        .fetch_optional(&mut conn)
        .await
        .expect("look up the benchmark database")
        .is_some()
}

/// Drop `db` if it exists and create it empty (a reusable benchmark lake's catalog database).
pub async fn recreate_pg_database(db: &str) {
    use sqlx::Connection;
    drop_pg_database(db)
        .await
        .unwrap_or_else(|e| panic!("drop the benchmark database {db}: {e}"));
    let url = pg_url();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {url} is required (source scripts/test-env.sh): {e}")
    });
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {db} for the benchmark: {e}"));
}

/// Drop a database made by [`create_pg_database`] (closing its remaining connections).
pub async fn drop_pg_database(db: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&pg_url())
        .await
        .map_err(|e| e.to_string())?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// lakeq's answer to `sql`, rows rendered canonically (like the oracle's).
pub async fn lakeq_rows(session: &lakeq::Session, sql: &str) -> Vec<Vec<String>> {
    let batches = session
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("lakeq failed on {sql}: {e}"));
    canonical::render_batches(&batches)
        .unwrap_or_else(|e| panic!("render lakeq's answer to {sql}: {e}"))
        .1
}

/// Panic unless lakeq answers every DuckDB query exactly as DuckDB did.
pub async fn assert_same_answers(what: &str, session: &lakeq::Session, duck: &[DuckQuery]) {
    for q in duck {
        let ours = lakeq_rows(session, &q.sql).await;
        assert_eq!(
            ours, q.rows,
            "{what} [{}]: lakeq's answer (left) differs from DuckDB's (right)\n  sql: {}",
            q.label, q.sql
        );
        println!("CHECK {what} [{}] lakeq == duckdb: {:?}", q.label, q.rows);
    }
}

/// Per-iteration durations recorded inside criterion's `iter_custom`, for medians.
#[derive(Debug, Default)]
pub struct Timings {
    samples: Mutex<Vec<Duration>>,
}

impl Timings {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn record(&self, d: Duration) {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(d);
    }

    /// Median of the recorded iterations, without the first (cold) one; and how many there were.
    pub fn median(&self) -> Option<(Duration, usize)> {
        let mut all = self
            .samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if all.len() > 1 {
            all.remove(0);
        }
        all.sort();
        let n = all.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some((all[n / 2], n)),
            _ => Some(((all[n / 2 - 1] + all[n / 2]) / 2, n)),
        }
    }
}

/// Milliseconds of a duration, for reports.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Summary lines, printed together after all benchmarks (criterion's own output is interleaved).
#[derive(Debug, Default)]
pub struct Summary {
    lines: Vec<String>,
}

impl Summary {
    /// Add a line (also printed right away).
    pub fn line(&mut self, line: String) {
        println!("{line}");
        self.lines.push(line);
    }

    /// `MEDIAN <id> lakeq = x ms (n = ..)`; returns the median.
    pub fn median(&mut self, id: &str, timings: &Timings) -> Option<Duration> {
        let m = timings.median();
        self.line(match m {
            Some((m, n)) => format!("MEDIAN {id} lakeq = {:.3} ms (n = {n})", ms(m)),
            None => format!("MEDIAN {id} lakeq = not measured (filtered out?)"),
        });
        m.map(|(m, _)| m)
    }

    /// DuckDB's median and the ratio lakeq/duckdb.
    pub fn ratio(&mut self, id: &str, lakeq: Option<Duration>, duck: &DuckQuery) {
        let (Some(ours), Some(theirs)) = (lakeq, duck.median_s) else {
            return;
        };
        self.line(format!(
            "MEDIAN {id} duckdb = {:.3} ms (n = {})",
            theirs * 1e3,
            duck.times_s.len()
        ));
        self.line(format!(
            "RATIO {id} lakeq/duckdb = {:.2}",
            ours.as_secs_f64() / theirs
        ));
    }

    /// Print every line again under a header.
    pub fn print(&self, title: &str) {
        println!("\n==== {title} ====");
        for l in &self.lines {
            println!("{l}");
        }
    }
}
