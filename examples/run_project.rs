//! Running a model project from Rust: what `lakeq run 1` does, through the library.
//! `cargo run --example run_project -- <folder>`, where `<folder>` holds a model project
//! (`models/`, and `lakeq.toml` or `dbt_project.yml` if it has one; without `models/` the
//! bundled sample project is used, as by the command line).
//!
//! 1. Generate one batch of the sample data into the project's landing zone.
//! 2. Ingest it into the raw lake, exactly once.
//! 3. Load the project and build it ([`run_project`] with [`RunKind::Build`]): seeds, models
//!    and data tests in DAG order, `target/manifest.json` and `run_results.json` written.
//!
//! It prints one `key: value` line per finding (tests/it/examples.rs checks them against the
//! `lakeq run` command on the same data, and DuckDB reads the lake it built).

use std::path::PathBuf;

use lakeq::config::Config;
use lakeq::generate::{BatchSizes, DEFAULT_SEED, GenerateOptions, generate};
use lakeq::ingest::{IngestOptions, RAW_LAKE, SchemaChange, default_concurrency, ingest};
use lakeq::models::Project;
use lakeq::models::invoke::{RunEvent, RunRequest, run_project};
use lakeq::models::run::RunKind;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let folder = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: run_project <project folder>")?;
    tokio::runtime::Runtime::new()?.block_on(run(folder))
}

async fn run(dir: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load(&dir)?;

    let generated = generate(&GenerateOptions {
        landing: config.landing.clone(),
        batches: 1,
        seed: DEFAULT_SEED,
        sizes: BatchSizes::default(),
    })
    .await?;
    println!("batches generated: {}", generated.batches.len());

    let loaded = ingest(&IngestOptions {
        landing: config.landing.clone(),
        raw: config.lake(RAW_LAKE, &dir),
        schema_change: SchemaChange::Evolve,
        skip_bad_files: false,
        concurrency: default_concurrency(),
        session: lakeq::SessionOptions::default(),
    })
    .await?;
    println!("rows loaded: {}", loaded.rows.values().sum::<u64>());

    let project = Project::load(&dir, &config, None, Default::default())?;
    let lake = project.target_lake.clone();
    let outcome = run_project(project, &RunRequest::new(RunKind::Build), &|event| {
        if let RunEvent::Node { result, .. } = event {
            eprintln!("{} {:?}", result.unique_id, result.status);
        }
    })
    .await?;
    println!("target lake: {lake}");
    println!("models built: {}", outcome.summary.models_ok);
    println!("tests passed: {}", outcome.summary.tests_passed);
    println!("all ok: {}", outcome.summary.ok());
    Ok(())
}
