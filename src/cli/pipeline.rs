//! `lakeq run [BATCHES]`: the whole pipeline in one command: generate BATCHES
//! batches into the landing zone, ingest them into the raw lake, then build the
//! models and run their tests, printing each step's time and a summary.

use std::path::PathBuf;
use std::time::Instant;

use super::models::{ProjectArgs, RunArgs, exit_status, run_nodes};
use lakeq::config::Config;
use lakeq::error::Result;
use lakeq::generate::{BatchSizes, DEFAULT_SEED, GenerateOptions, generate};
use lakeq::ingest::{IngestOptions, RAW_LAKE, SchemaChange, ingest};
use lakeq::models::run::RunKind;

/// Arguments of `lakeq run`.
#[derive(Debug, clap::Args)]
pub struct PipelineArgs {
    /// Batches to generate before ingesting (0: ingest and transform only).
    #[arg(default_value_t = 1)]
    pub batches: u32,
    /// Project folder (holding `lakeq.toml` and `models/`; the embedded default without one).
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    /// Target (`dev` writes `dev_analytics`).
    #[arg(long)]
    pub target: Option<String>,
    /// Generator seed.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Models run at once.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Rebuild incremental models from scratch.
    #[arg(long)]
    pub full_refresh: bool,
    /// Skip the maintenance step (merging small files, expiring old snapshots).
    #[arg(long)]
    pub no_maintain: bool,
    /// Run the models' queries on these `lakeq worker`s (`host:port,host:port`); generate,
    /// ingest and maintenance run here. Default: `[cluster] workers` of lakeq.toml.
    #[arg(long, value_delimiter = ',')]
    pub workers: Vec<String>,
    /// Bytes of Parquet per distributed scan task. Default: `[cluster] bytes_per_task`.
    #[arg(long)]
    pub bytes_per_task: Option<usize>,
}

/// Run `lakeq run`.
pub async fn run(args: PipelineArgs) -> Result<()> {
    let started = Instant::now();
    let config = Config::load(&args.project)?;

    let step = Instant::now();
    let generated = generate(&GenerateOptions {
        landing: config.landing.clone(),
        batches: args.batches,
        seed: args.seed,
        sizes: BatchSizes::default(),
    })
    .await?;
    let generated_rows = generated.rows.users
        + generated.rows.events
        + generated.rows.invoices
        + generated.rows.support_tickets;
    println!(
        "generate   {:>7.2}s  {} batches, {generated_rows} rows -> {}",
        step.elapsed().as_secs_f64(),
        generated.batches.len(),
        generated.landing
    );

    let step = Instant::now();
    let loaded = ingest(&IngestOptions {
        landing: config.landing.clone(),
        raw: config.lake(RAW_LAKE, &args.project),
        schema_change: SchemaChange::Evolve,
        skip_bad_files: false,
        concurrency: lakeq::ingest::default_concurrency(),
        session: super::run_session_options(&config)?,
    })
    .await?;
    let loaded_rows: u64 = loaded.rows.values().sum();
    println!(
        "ingest     {:>7.2}s  {} files, {loaded_rows} rows -> raw{}",
        step.elapsed().as_secs_f64(),
        loaded.files,
        loaded
            .snapshot_id
            .map(|s| format!(" (snapshot {s})"))
            .unwrap_or_default()
    );

    let step = Instant::now();
    let run_args = RunArgs {
        project: ProjectArgs {
            project: args.project.clone(),
            target: args.target.clone(),
            select: Vec::new(),
            exclude: Vec::new(),
            selector: None,
            vars: None,
            state: None,
            defer: false,
            favor_state: false,
        },
        threads: Some(args.threads),
        full_refresh: args.full_refresh,
        workers: args.workers.clone(),
        bytes_per_task: args.bytes_per_task,
    };
    let project = run_args.project.load()?;
    let lake = project.target_lake.clone();
    let summary = run_nodes(project, &run_args, RunKind::Build).await?;
    println!(
        "transform  {:>7.2}s  {} models built, {} tests passed -> {lake}",
        step.elapsed().as_secs_f64(),
        summary.models_ok,
        summary.tests_passed
    );
    if !args.no_maintain {
        // Merge what each run added in small files, expire by policy, clean up:
        // a lake fed many times stays as fast to plan and scan as one fed once.
        super::maintain::maintain_lakes(
            &config,
            &args.project,
            &[RAW_LAKE.to_string(), lake.clone()],
            &config.maintenance,
        )
        .await?;
    }
    println!(
        "lakeq run: {:.2}s total; {loaded_rows} rows loaded, {} models built, {} tests passed",
        started.elapsed().as_secs_f64(),
        summary.models_ok,
        summary.tests_passed
    );
    exit_status(summary)
}
