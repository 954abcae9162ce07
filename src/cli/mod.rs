//! The `lakeq` command line: clap structs without logic, resolved into calls of
//! the public library API (the same one an embedder uses).

pub mod format;
pub mod generate;
pub mod ingest;
pub mod sql;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::Result;
pub use format::OutputFormat;

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
    /// the ones that exist are attached at start.
    #[arg(long, default_value = "lake")]
    pub lake_dir: PathBuf,
}

/// Run a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Sql(args) => sql::run(args).await,
        Command::Generate(args) => generate::run(args).await,
        Command::Ingest(args) => ingest::run(args).await,
    }
}
