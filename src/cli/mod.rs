//! The `lakeq` command line: clap structs without logic, resolved into calls of
//! the public library API (the same one an embedder uses).

pub mod docs;
pub mod format;
pub mod generate;
pub mod ingest;
pub mod init;
pub mod maintain;
pub mod models;
pub mod pipeline;
pub mod snapshots;
pub mod sql;
pub mod worker;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use format::OutputFormat;
use lakeq::config::Config;
use lakeq::error::Result;
use lakeq::models::run::RunKind;

/// The session options of every command: `LAKEQ_MEMORY_LIMIT` (bytes, or with a
/// `KiB`/`MiB`/`GiB` suffix) caps the memory of query operators (sorts, joins and
/// aggregations spill to disk instead). The library itself never reads the
/// environment; this is where the binary does.
pub fn session_options() -> lakeq::SessionOptions {
    let limit = std::env::var("LAKEQ_MEMORY_LIMIT")
        .ok()
        .and_then(|v| lakeq::session::parse_bytes(&v));
    lakeq::SessionOptions::default().with_memory_limit(limit)
}

/// The session options of commands that run a project's work (`run`, `ingest`,
/// `transform`/`build`/`test`, `maintain`): `LAKEQ_MEMORY_LIMIT` if set, else
/// `memory_limit` in lakeq.toml, else the default pool
/// ([`lakeq::config::default_memory_limit`]).
pub fn run_session_options(config: &Config) -> Result<lakeq::SessionOptions> {
    let limit = match std::env::var("LAKEQ_MEMORY_LIMIT") {
        Ok(text) => lakeq::config::parse_memory_limit(&text, "LAKEQ_MEMORY_LIMIT")?,
        Err(_) => config.memory_limit()?,
    };
    Ok(lakeq::SessionOptions::default().with_memory_limit(limit))
}

/// Where queries run: `--workers` / `--bytes-per-task` when given, else
/// `[cluster]` of lakeq.toml (no workers: this process). Worker addresses are
/// checked here, before anything runs.
pub fn cluster_options(
    config: &Config,
    workers: &[String],
    bytes_per_task: Option<usize>,
) -> Result<lakeq::distributed::ClusterOptions> {
    let cluster = lakeq::distributed::ClusterOptions {
        workers: if workers.is_empty() {
            config.cluster.workers.clone()
        } else {
            workers.to_vec()
        },
        bytes_per_task: bytes_per_task.or(config.cluster.bytes_per_task),
    };
    lakeq::distributed::worker_urls(&cluster.workers)?;
    Ok(cluster)
}

/// lakeq: a DuckLake lakehouse in one binary.
#[derive(Debug, Parser)]
#[command(name = "lakeq", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run SQL against DuckLake lakes (ATTACH 'ducklake:...' AS name, USE, AT (VERSION => n)).
    Sql(SqlArgs),
    /// Write batches of the sample SaaS landing zone (deterministic Parquet files).
    Generate(generate::GenerateArgs),
    /// Load new landing files into the raw lake, exactly once (one snapshot per load).
    Ingest(ingest::IngestArgs),
    /// Write a commented lakeq.toml into the project folder (never overwrites one without --force).
    Init(init::InitArgs),
    /// The whole pipeline: generate BATCHES batches, ingest them, build the models and run their tests.
    Run(pipeline::PipelineArgs),
    /// Build the SQL models (views, tables, incremental models) along the DAG.
    Transform(models::RunArgs),
    /// Run the data tests of the models (schema.yml tests and tests/*.sql).
    Test(models::RunArgs),
    /// Load seeds, build models and run their tests in DAG order; a failed test stops its model's descendants.
    Build(models::RunArgs),
    /// Load the seeds (seeds/*.csv) into lake tables, one snapshot each.
    Seed(models::RunArgs),
    /// Take the dbt snapshots (snapshots/*.sql, YAML `snapshots:`): record changed rows as
    /// new versions (dbt's `dbt snapshot`; a lake's own history is `lakeq snapshots`).
    Snapshot(models::RunArgs),
    /// Print the compiled SQL of the selected models (and write target/manifest.json).
    Compile(models::ProjectArgs),
    /// List the selected models and their tests.
    Ls(models::ProjectArgs),
    /// Documentation as dbt's: `generate` writes target/catalog.json and target/index.html,
    /// `serve` serves target/ over HTTP.
    Docs(docs::DocsArgs),
    /// Show a lake's snapshots (its history) with the changes each made.
    Snapshots(snapshots::SnapshotsArgs),
    /// Keep lakes small: merge small files, expire old snapshots, delete released files.
    Maintain(maintain::MaintainArgs),
    /// Serve as a worker of distributed queries (`lakeq sql --workers host:port,...`).
    Worker(worker::WorkerArgs),
}

/// Arguments of `lakeq sql`.
#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    /// SQL to run (statements separated by `;`).
    #[arg(short = 'c', long = "command", conflicts_with = "file")]
    pub command: Option<String>,
    /// A file of SQL statements to run.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// How to print query results.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Folder of the embedded default lakes (`<dir>/<name>.sqlite` + `<dir>/<name>/`);
    /// the ones that exist are attached at start. Relative to `--project`.
    #[arg(long, default_value = "lake")]
    pub lake_dir: PathBuf,
    /// Project folder: the lakes its `lakeq.toml` (or dbt `profiles.yml`) configures are attached at start.
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    /// Run queries on these `lakeq worker`s (`host:port,host:port`); INSERT ... SELECT and
    /// CREATE TABLE AS write their data files there and commit here; UPDATE/DELETE run here.
    /// Default: `[cluster] workers` of lakeq.toml, else none (this process).
    #[arg(long, value_delimiter = ',')]
    pub workers: Vec<String>,
    /// Bytes of Parquet per distributed scan task (small values spread small
    /// tables over every worker). Default: `[cluster] bytes_per_task`, else the engine's.
    #[arg(long)]
    pub bytes_per_task: Option<usize>,
}

/// Run a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Sql(args) => sql::run(args).await,
        Command::Generate(args) => generate::run(args).await,
        Command::Ingest(args) => ingest::run(args).await,
        Command::Init(args) => init::run(args).await,
        Command::Run(args) => pipeline::run(args).await,
        Command::Transform(args) => models::run(args, RunKind::Models).await,
        Command::Test(args) => models::run(args, RunKind::Tests).await,
        Command::Build(args) => models::run(args, RunKind::Build).await,
        Command::Seed(args) => models::run(args, RunKind::Seeds).await,
        Command::Snapshot(args) => models::run(args, RunKind::Snapshots).await,
        Command::Compile(args) => models::compile(args).await,
        Command::Ls(args) => models::ls(args).await,
        Command::Docs(args) => docs::run(args).await,
        Command::Snapshots(args) => snapshots::run(args).await,
        Command::Maintain(args) => maintain::run(args).await,
        Command::Worker(args) => worker::run(args).await,
    }
}
