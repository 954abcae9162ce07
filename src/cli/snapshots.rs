//! `lakeq snapshots [LAKE]`: a lake's history, as DuckDB's `lake.snapshots()` shows it.

use std::path::PathBuf;

use super::OutputFormat;
use super::format::write_batches;
use super::sql::attach_default_lakes;
use lakeq::error::{Error, Result};
use lakeq::session::Session;

/// Arguments of `lakeq snapshots`.
#[derive(Debug, clap::Args)]
pub struct SnapshotsArgs {
    /// The lake (an embedded lake under --lake-dir); default `raw`.
    #[arg(default_value = "raw")]
    pub lake: String,
    /// Or a DuckLake location to attach (`ducklake:sqlite:...`, `ducklake:postgres:...`).
    #[arg(long)]
    pub location: Option<String>,
    /// How to print the snapshots.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Folder of the embedded default lakes.
    #[arg(long, default_value = "lake")]
    pub lake_dir: PathBuf,
}

/// Run `lakeq snapshots`.
pub async fn run(args: SnapshotsArgs) -> Result<()> {
    let session = Session::with_options(&super::session_options());
    match &args.location {
        Some(location) => {
            session
                .attach(&args.lake, location, lakeq::lake::LakeOptions::default())
                .await?;
        }
        None => {
            super::sql::attach_project_lakes(&session, std::path::Path::new(".")).await?;
            attach_default_lakes(&session, &args.lake_dir).await?
        }
    }
    if session.lake(&args.lake).is_err() {
        return Err(Error::NotFound {
            kind: "lake",
            name: args.lake.clone(),
            hint: format!(
                " under {} (pass --location 'ducklake:...' for another lake)",
                args.lake_dir.display()
            ),
        });
    }
    let name = args.lake.replace('\'', "''");
    let batches = session
        .sql(&format!(
            "SELECT snapshot_id, snapshot_time, schema_version, changes, author, commit_message \
             FROM ducklake_snapshots('{name}') ORDER BY snapshot_id"
        ))
        .await?;
    write_batches(&mut std::io::stdout().lock(), &batches, args.format)
}
