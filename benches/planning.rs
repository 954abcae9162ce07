//! Planning cost on a big catalog: `SELECT count(*) FROM lake.main.t WHERE id = 42` on a table of
//! 10,000 data files added by 1,000 snapshots, with a SQLite and with a PostgreSQL catalog.
//!
//! The lake: DuckDB 1.5.5 creates it and the table and inserts one real file; the other 9,999 files
//! are small real Parquet files written by DuckDB, registered by catalog rows synthesised with SQL
//! (`tests/oracle/bench_duckdb.py build-planning`). File `k` holds ids `10k .. 10k+9`, so catalog
//! statistics prune the query to one file. DuckDB must attach the result and answer like lakeq.
//!
//! Measured per catalog (medians in ms are printed at the end, target < 20 ms):
//! * `attach_plan`: a fresh `Session`, `ATTACH`, plan (what one CLI invocation pays before executing);
//! * `plan`: plan only, in a session that already attached
//!   (`session.context().sql(..)` then `create_physical_plan()`);
//! * `query`: `Session::sql` (refresh, plan, execute) in an attached session, against DuckDB
//!   running the same query on the same lake (`RATIO` line).
//!
//! Also printed (issue 13): planning as a coordinator of `lakeq worker`s and the codec round trip of
//! the plan, for the point query and a full scan of the 10,000 files (`DISTRIBUTED` lines).
//!
//! Run: `source scripts/test-env.sh && cargo bench --bench planning` (add `-- --quick` for a shorter
//! run). The SQLite lake is kept under `target/bench-lakes/planning-sqlite/` and reused while its
//! key matches; the PostgreSQL lake is built in a fresh database every run and dropped afterwards.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Duck, PlanningLakeSpec, Summary, Timings};
use criterion::{Criterion, SamplingMode};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;
use std::hint::black_box;
use tokio::runtime::Runtime;

const FILES: u64 = 10_000;
const FILES_PER_SNAPSHOT: u64 = 10;
const ROWS_PER_FILE: u64 = 10;
/// Identifies the reusable SQLite lake; change it when the fixture changes.
const LAKE_KEY: &str =
    "planning-v2 files=10000 files_per_snapshot=10 rows_per_file=10 duckdb=1.5.5";
const QUERY: &str = "SELECT count(*) FROM lake.main.t WHERE id = 42";
/// Timed DuckDB runs of QUERY (after one warm-up).
const DUCK_RUNS: usize = 20;
const TARGET_MS: f64 = 20.0;

/// One catalog to benchmark.
struct Fixture {
    backend: &'static str,
    /// `ATTACH ... AS lake (...)` for lakeq and DuckDB.
    attach: String,
}

/// The per-run PostgreSQL database and data directory, removed on drop (also after a panic).
struct PgRun {
    db: String,
    dir: PathBuf,
}

impl Drop for PgRun {
    fn drop(&mut self) {
        let dropped = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(common::drop_pg_database(&self.db)));
        if let Err(e) = dropped {
            eprintln!(
                "warning: could not drop benchmark database {}: {e}",
                self.db
            );
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("warning: could not remove {}: {e}", self.dir.display());
        }
    }
}

fn spec<'a>(
    attach: &'a str,
    backend: &'a str,
    meta_attach: &'a str,
    meta_prefix: &'a str,
) -> PlanningLakeSpec<'a> {
    PlanningLakeSpec {
        attach,
        backend,
        meta_attach,
        meta_prefix,
        files: FILES,
        files_per_snapshot: FILES_PER_SNAPSHOT,
        rows_per_file: ROWS_PER_FILE,
    }
}

fn sqlite_fixture(duck: &Duck) -> Fixture {
    let dir = common::lake_dir("planning-sqlite");
    let meta = dir.join("meta.sqlite");
    let data = dir.join("data");
    let attach = format!(
        "ATTACH 'ducklake:sqlite:{}' AS lake (DATA_PATH '{}/')",
        meta.display(),
        data.display()
    );
    common::reuse_or_build(&dir, LAKE_KEY, |_| {
        let build_attach = format!(
            "{}, DATA_INLINING_ROW_LIMIT 0)",
            attach.trim_end_matches(')')
        );
        let meta_attach = format!("ATTACH '{}' AS meta (TYPE sqlite)", meta.display());
        duck.build_planning(&spec(&build_attach, "sqlite", &meta_attach, "meta"));
    });
    Fixture {
        backend: "sqlite",
        attach,
    }
}

fn postgres_fixture(rt: &Runtime, duck: &Duck) -> (Fixture, PgRun) {
    let db = rt.block_on(common::create_pg_database("planning"));
    let run = PgRun {
        dir: common::lake_dir("planning-postgres").join(&db),
        db,
    };
    let conninfo = format!("dbname={} host=127.0.0.1 user=postgres", run.db);
    let attach = format!(
        "ATTACH 'ducklake:postgres:{conninfo}' AS lake (DATA_PATH '{}/data/', METADATA_SCHEMA 'lakeq_meta')",
        run.dir.display()
    );
    println!(
        "building the PostgreSQL planning lake in database {} ...",
        run.db
    );
    let start = Instant::now();
    let build_attach = format!(
        "{}, DATA_INLINING_ROW_LIMIT 0)",
        attach.trim_end_matches(')')
    );
    let meta_attach = format!("ATTACH '{conninfo}' AS meta (TYPE postgres)");
    duck.build_planning(&spec(
        &build_attach,
        "postgres",
        &meta_attach,
        "meta.lakeq_meta",
    ));
    println!("built in {:.1} s", start.elapsed().as_secs_f64());
    (
        Fixture {
            backend: "postgres",
            attach,
        },
        run,
    )
}

/// How many data files the plan's file scans read.
fn scanned_files(plan: &Arc<dyn ExecutionPlan>) -> usize {
    let own = plan
        .downcast_ref::<DataSourceExec>()
        .and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>())
        .map_or(0, |config| config.file_groups.iter().map(|g| g.len()).sum());
    own + plan
        .children()
        .into_iter()
        .map(scanned_files)
        .sum::<usize>()
}

async fn attached_session(attach: &str) -> lakeq::Session {
    let session = lakeq::Session::new();
    session
        .sql(attach)
        .await
        .unwrap_or_else(|e| panic!("lakeq failed to attach ({attach}): {e}"));
    session
}

async fn plan(session: &lakeq::Session) -> Arc<dyn ExecutionPlan> {
    session
        .context()
        .sql(QUERY)
        .await
        .expect("lakeq: logical plan of the planning query")
        .create_physical_plan()
        .await
        .expect("lakeq: physical plan of the planning query")
}

/// Check the fixture and lakeq's answers against DuckDB; returns DuckDB's timing of QUERY.
fn check(rt: &Runtime, duck: &Duck, fx: &Fixture) -> common::DuckQuery {
    let what = format!("planning/{}", fx.backend);
    // Fixture shape, as DuckDB sees it.
    let shape = duck.run(
        &fx.attach,
        0,
        &[
            (
                "files",
                "SELECT count(*) FROM ducklake_list_files('lake', 't')",
            ),
            ("snapshots", "SELECT count(*) FROM lake.snapshots()"),
        ],
    );
    let expect = [
        FILES.to_string(),
        (FILES / FILES_PER_SNAPSHOT + 2).to_string(),
    ];
    for (q, want) in shape.iter().zip(expect) {
        assert_eq!(
            q.rows,
            vec![vec![want]],
            "{what}: the synthetic lake is malformed ({})",
            q.sql
        );
    }
    // Same answers from both engines (the full scan reads all 10,000 files).
    let answers = duck.run(
        &fx.attach,
        0,
        &[
            ("count", "SELECT count(*) FROM lake.main.t"),
            (
                "full_scan",
                "SELECT count(*), sum(id), min(v), max(v) FROM lake.main.t",
            ),
            ("point", QUERY),
        ],
    );
    rt.block_on(async {
        let session = attached_session(&fx.attach).await;
        common::assert_same_answers(&what, &session, &answers).await;
        let files = scanned_files(&plan(&session).await);
        println!("CHECK {what} plan of `{QUERY}` scans {files} of {FILES} files");
        assert_eq!(
            files, 1,
            "{what}: catalog statistics should prune `{QUERY}` to one file"
        );
    });
    let mut timed = duck.run(&fx.attach, DUCK_RUNS, &[("point", QUERY)]);
    timed.pop().expect("DuckDB timing of the planning query")
}

/// Scale-out overhead on this lake (issue 13; printed, not benchmarked by criterion): for the point
/// query (one file after pruning) and a full scan (all 10,000 files), the median over 5 runs of
/// planning in one process, planning as a coordinator (datafusion-distributed's stage cutting; the
/// worker addresses are only listed, nothing is contacted), and a round trip of the plan through
/// lakeq's codec (what each task's stage costs to ship), with the plan's size.
fn distributed_overhead(rt: &Runtime, fx: &Fixture) {
    use datafusion::physical_optimizer::PhysicalOptimizerRule;
    use datafusion_proto::bytes::{
        physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
    };
    const FULL_SCAN: &str = "SELECT count(*), sum(id), min(v), max(v) FROM lake.main.t";
    rt.block_on(async {
        let local = attached_session(&fx.attach).await;
        let cluster = lakeq::distributed::ClusterOptions {
            workers: vec!["127.0.0.1:9".into(), "127.0.0.1:10".into()],
            bytes_per_task: None,
        };
        let coordinator =
            lakeq::Session::with_options(&lakeq::SessionOptions::default().with_cluster(cluster));
        coordinator
            .sql(&fx.attach)
            .await
            .expect("lakeq: attach as a coordinator");
        let codec = lakeq::distributed::LakeCodec::default();
        for (name, query) in [("point", QUERY), ("full_scan", FULL_SCAN)] {
            let (mut local_ms, mut coordinator_ms, mut codec_ms) =
                (Vec::new(), Vec::new(), Vec::new());
            let mut bytes = 0;
            for _ in 0..5 {
                let start = Instant::now();
                let plan = local
                    .query(query)
                    .await
                    .expect("lakeq: plan")
                    .create_physical_plan()
                    .await
                    .expect("lakeq: physical plan");
                local_ms.push(start.elapsed().as_secs_f64() * 1000.0);
                let start = Instant::now();
                let distributed = coordinator
                    .query(query)
                    .await
                    .expect("lakeq: plan as a coordinator")
                    .create_physical_plan()
                    .await
                    .expect("lakeq: physical plan as a coordinator");
                coordinator_ms.push(start.elapsed().as_secs_f64() * 1000.0);
                black_box(distributed);
                let wrapped = lakeq::distributed::WrapLakeScans
                    .optimize(plan, &Default::default())
                    .expect("lakeq: wrap the scans");
                let start = Instant::now();
                let encoded =
                    physical_plan_to_bytes_with_extension_codec(Arc::clone(&wrapped), &codec)
                        .expect("lakeq: encode the plan");
                let back = physical_plan_from_bytes_with_extension_codec(
                    &encoded,
                    &local.context().task_ctx(),
                    &codec,
                )
                .expect("lakeq: decode the plan");
                codec_ms.push(start.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(back.schema(), wrapped.schema());
                bytes = encoded.len();
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
            };
            println!(
                "DISTRIBUTED planning/{}/{name}: plan {:.1} ms in one process, {:.1} ms as a \
                 coordinator; codec round trip {:.1} ms ({bytes} bytes)",
                fx.backend,
                median(&mut local_ms),
                median(&mut coordinator_ms),
                median(&mut codec_ms)
            );
        }
    });
}

/// Benchmark one catalog, adding its medians and ratio to `summary`.
fn bench_fixture(
    c: &mut Criterion,
    rt: &Runtime,
    duck: &Duck,
    fx: &Fixture,
    summary: &mut Summary,
) {
    let duck_query = check(rt, duck, fx);
    distributed_overhead(rt, fx);
    let id = |name: &str| format!("planning/{}/{name}", fx.backend);
    let (t_attach, t_plan, t_query) = (Timings::new(), Timings::new(), Timings::new());
    let attached = rt.block_on(attached_session(&fx.attach));
    let (session, attach) = (&attached, fx.attach.as_str());

    let mut group = c.benchmark_group(format!("planning/{}", fx.backend));
    // Iterations take ~50-150 ms: flat sampling keeps a run within the measurement time.
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("attach_plan", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let timings = Arc::clone(&t_attach);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let fresh = attached_session(attach).await;
                    let physical = plan(&fresh).await;
                    let elapsed = start.elapsed();
                    black_box(physical);
                    timings.record(elapsed);
                    total += elapsed;
                    drop(fresh);
                }
                total
            }
        })
    });
    group.bench_function("plan", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let timings = Arc::clone(&t_plan);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let physical = plan(session).await;
                    let elapsed = start.elapsed();
                    black_box(physical);
                    timings.record(elapsed);
                    total += elapsed;
                }
                total
            }
        })
    });
    group.bench_function("query", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let timings = Arc::clone(&t_query);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let batches = session
                        .sql(QUERY)
                        .await
                        .expect("lakeq: run the planning query");
                    let elapsed = start.elapsed();
                    black_box(batches);
                    timings.record(elapsed);
                    total += elapsed;
                }
                total
            }
        })
    });
    group.finish();
    drop(attached);

    for (name, timings) in [("attach_plan", &t_attach), ("plan", &t_plan)] {
        if let Some(m) = summary.median(&id(name), timings) {
            let verdict = if common::ms(m) < TARGET_MS {
                "met"
            } else {
                "MISSED"
            };
            summary.line(format!("TARGET {} < {TARGET_MS} ms: {verdict}", id(name)));
        }
    }
    let query = summary.median(&id("query"), &t_query);
    summary.ratio(&id("query"), query, &duck_query);
}

fn main() {
    if !common::benchmarking("planning") {
        return;
    }
    let rt = common::runtime();
    let duck = Duck::from_env();
    let mut c = common::criterion(Duration::from_secs(3));
    let mut summary = Summary::default();

    let sqlite = sqlite_fixture(&duck);
    bench_fixture(&mut c, &rt, &duck, &sqlite, &mut summary);

    let (postgres, pg_run) = postgres_fixture(&rt, &duck);
    bench_fixture(&mut c, &rt, &duck, &postgres, &mut summary);
    drop(pg_run);

    c.final_summary();
    summary.print(&format!(
        "planning: `{QUERY}`, {FILES} files in {} snapshots; medians on this machine",
        FILES / FILES_PER_SNAPSHOT
    ));
}
