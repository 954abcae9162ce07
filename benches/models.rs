//! Per-model fixed overhead (issue: SQL models and `lakeq run`): compile + plan + commit of a trivial
//! model with the session already open, for a `table` model (`select 1 as x`: one Parquet file and one
//! snapshot) and a `view` model whose SQL changes every time (one snapshot), on the embedded default
//! (SQLite catalog); `view_unchanged` is a re-run of an unchanged view (planned, no snapshot).
//! DuckDB's `CREATE OR REPLACE TABLE/VIEW ... AS SELECT 1 AS x` on the same kind of lake gives the ratio.
//!
//! Run: `source scripts/test-env.sh && cargo bench --bench models` (`-- --quick` for a short run).
//! The whole pipeline (`lakeq run 10` / `100`) is measured by `benches/run_pipeline.sh`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Duck, Summary, Timings};
use lakeq::config::Config;
use lakeq::models::Project;
use lakeq::models::run::{RunKind, RunOptions, RunPlan, Status, execute, open_session};

fn main() {
    if !common::benchmarking("models") {
        return;
    }
    let rt = common::runtime();
    let duck = Duck::from_env();
    let mut summary = Summary::default();
    let mut c = common::criterion(Duration::from_secs(5));

    let dir = common::lake_dir("models-trivial");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("models")).expect("create the project folder");
    std::fs::write(
        dir.join("models/trivial_table.sql"),
        "{{ config(materialized='table') }}\nselect 1 as x",
    )
    .expect("write a model");
    std::fs::write(
        dir.join("models/trivial_view.sql"),
        "select {{ env_var('LAKEQ_BENCH_VIEW_N', '0') }} as x",
    )
    .expect("write a model");
    let config = Config::load(&dir).expect("config");
    let project = Project::load(&dir, &config, None, BTreeMap::new()).expect("load the project");
    let session = Arc::new(rt.block_on(open_session(&project)).expect("open the lakes"));
    let project = Arc::new(project);
    let options = RunOptions::default();

    let duck_dir = common::lake_dir("models-trivial-duck");
    let _ = std::fs::remove_dir_all(&duck_dir);
    std::fs::create_dir_all(&duck_dir).expect("create the DuckDB lake folder");
    let duck_attach = format!(
        "ATTACH 'ducklake:sqlite:{0}/meta.sqlite' AS lake (DATA_PATH '{0}/data/')",
        duck_dir.display()
    );
    let duck_runs = duck.run(
        &duck_attach,
        30,
        &[
            (
                "table",
                "CREATE OR REPLACE TABLE lake.main.trivial_table AS SELECT 1 AS x",
            ),
            (
                "view",
                "CREATE OR REPLACE VIEW lake.main.trivial_view AS SELECT 1 AS x",
            ),
        ],
    );

    for (kind, model) in [
        ("table", "trivial_table"),
        ("view", "trivial_view"),
        ("view_unchanged", "trivial_view"),
    ] {
        let change_view = kind == "view";
        let plan = RunPlan::new(
            &project,
            &BTreeSet::from([model.to_string()]),
            RunKind::Models,
        )
        .expect("plan");
        let timings = Timings::new();
        {
            let mut group = c.benchmark_group("model_overhead");
            group.sample_size(30);
            let (project, session, plan, options, t) =
                (&project, &session, &plan, &options, &timings);
            group.bench_function(kind, |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let t = Arc::clone(t);
                    async move {
                        let mut total = Duration::ZERO;
                        for i in 0..iters {
                            if change_view {
                                // SAFETY: the benchmark's only reader of this variable is the
                                // model compiled right below, on this thread's turn.
                                unsafe { std::env::set_var("LAKEQ_BENCH_VIEW_N", i.to_string()) };
                            }
                            let start = Instant::now();
                            let results = execute(
                                Arc::clone(project),
                                Arc::clone(session),
                                plan.clone(),
                                options,
                                &|_, _, _| {},
                            )
                            .await
                            .expect("run the model");
                            let e = start.elapsed();
                            assert!(results.iter().all(|r| r.status == Status::Success));
                            t.record(e);
                            total += e;
                        }
                        total
                    }
                })
            });
            group.finish();
        }
        let id = format!("model_overhead/{kind}");
        let median = summary.median(&id, &timings);
        let duck_label = if kind == "table" { "table" } else { "view" };
        if let Some(d) = duck_runs.iter().find(|q| q.label == duck_label) {
            summary.ratio(&id, median, d);
        }
    }
    summary.print("models");
}
