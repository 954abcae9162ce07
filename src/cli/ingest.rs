//! `lakeq ingest`: load new landing files into the raw lake (one snapshot per load).

use std::path::PathBuf;

use crate::config::Config;
use crate::error::Result;
use crate::ingest::{IngestOptions, IngestReport, RAW_LAKE, SchemaChange, ingest};

/// Arguments of `lakeq ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Project folder (holding `lakeq.toml`, or the embedded default `lake/`).
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    /// Landing zone (local folder or s3://bucket/prefix); overrides lakeq.toml.
    #[arg(long)]
    pub landing: Option<String>,
    /// What to do with new or widened columns.
    #[arg(long, value_enum, default_value_t = SchemaChange::Evolve)]
    pub schema_change: SchemaChange,
    /// Record bad files as rejected in `_lakeq_files` and load the rest.
    #[arg(long)]
    pub skip_bad_files: bool,
    /// Print a machine-readable JSON summary.
    #[arg(long)]
    pub json: bool,
    /// Landing files read at once.
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
}

/// Resolve the options of `lakeq ingest` from its arguments and the project config.
pub fn options(args: &IngestArgs) -> Result<IngestOptions> {
    let config = Config::load(&args.project)?;
    Ok(IngestOptions {
        landing: args.landing.clone().unwrap_or(config.landing.clone()),
        raw: config.lake(RAW_LAKE, &args.project),
        schema_change: args.schema_change,
        skip_bad_files: args.skip_bad_files,
        concurrency: args.concurrency,
    })
}

/// Print a load's summary.
pub fn print_report(report: &IngestReport, json: bool) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string(report)
                .map_err(|e| crate::error::Error::Unsupported(e.to_string()))?
        );
        return Ok(());
    }
    let rows: u64 = report.rows.values().sum();
    match report.snapshot_id {
        Some(s) => println!(
            "ingest: load {} committed snapshot {s}: {} files, {rows} rows in {:.2}s",
            report.load_id, report.files, report.seconds
        ),
        None => println!("ingest: nothing new to load ({:.2}s)", report.seconds),
    }
    for (table, n) in &report.rows {
        println!("  raw.saas.{table}: {n} rows");
    }
    for (path, reason) in &report.rejected {
        println!("  rejected {path}: {reason}");
    }
    for path in &report.changed {
        println!("  warning: {path} changed after it was loaded; it is not reloaded");
    }
    Ok(())
}

/// Run `lakeq ingest`.
pub async fn run(args: IngestArgs) -> Result<()> {
    let report = ingest(&options(&args)?).await?;
    print_report(&report, args.json)
}
