//! `lakeq init`: write a commented `lakeq.toml` into a project folder.
//!
//! The active part of the template is exactly the embedded default (SQLite
//! catalogs and data under `lake/`), spelled out so it can be edited; the
//! PostgreSQL + S3 set-up and the model-project sections are shown commented
//! out. An existing `lakeq.toml` is never overwritten without `--force`.

use std::io::Write;
use std::path::{Path, PathBuf};

use lakeq::error::{Error, Result};

/// Arguments of `lakeq init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Project folder to write `lakeq.toml` into (created if missing).
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    /// Overwrite an existing `lakeq.toml`.
    #[arg(long)]
    pub force: bool,
}

/// The `lakeq.toml` that `lakeq init` writes.
///
/// `Config::load` replaces `${NAME}` everywhere in the file, comments included,
/// and fails on an unset variable: so the template never spells a reference
/// with `$` directly followed by `{`, and shows it as `$ {NAME}` instead.
pub const TEMPLATE: &str = r#"# lakeq project configuration (written by `lakeq init`).
#
# As written, this file is the embedded default lakeq uses without any lakeq.toml:
# SQLite catalogs lake/<lake>.sqlite, data under lake/<lake>/, landing zone lake/landing.
# Relative paths (landing, SQLite catalog files, data_path) are taken from the folder holding
# this file, whatever folder lakeq runs in. Without a models/ folder of its own, the project
# runs lakeq's bundled sample models (`lakeq run` says so).
#
#   lakeq generate --batches 10     write sample landing files
#   lakeq ingest                    load them into raw.saas.<table>
#   lakeq sql -c "SELECT count(*) FROM raw.saas.events"

# Where `lakeq ingest` reads new Parquet files: {landing}/{table}/*.parquet.
landing = "lake/landing"

# The raw lake: `lakeq ingest` writes raw.saas.<table> here.
[lakes.raw]
catalog = "ducklake:sqlite:lake/raw.sqlite"   # DuckDB's ATTACH string
data_path = "lake/raw/"                       # local folder or s3://bucket/prefix/

# The analytics lakes the models are built into.
[lakes.dev_analytics]
catalog = "ducklake:sqlite:lake/dev_analytics.sqlite"
data_path = "lake/dev_analytics/"

[lakes.prod_analytics]
catalog = "ducklake:sqlite:lake/prod_analytics.sqlite"
data_path = "lake/prod_analytics/"

# --- PostgreSQL catalogs + S3 data ------------------------------------------------------
# Replace the sections above with these to keep the catalogs in one PostgreSQL database
# (one metadata schema per lake) and the data and landing zone in an S3 bucket:
#
# landing = "s3://bucket/landing"
#
# [lakes.raw]
# catalog = "ducklake:postgres:dbname=postgres host=127.0.0.1"
# metadata_schema = "raw"
# data_path = "s3://bucket/lake/raw/"
#
# [lakes.dev_analytics]
# catalog = "ducklake:postgres:dbname=postgres host=127.0.0.1"
# metadata_schema = "dev_analytics"
# data_path = "s3://bucket/lake/dev_analytics/"
#
# [lakes.prod_analytics]
# catalog = "ducklake:postgres:dbname=postgres host=127.0.0.1"
# metadata_schema = "prod_analytics"
# data_path = "s3://bucket/lake/prod_analytics/"
#
# PostgreSQL takes user, password, port, ... in the catalog string or from the usual
# PGUSER, PGPASSWORD, PGPORT, ... environment variables.
#
# S3 takes its credentials and endpoint from the standard environment variables:
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional), AWS_REGION,
#   AWS_ENDPOINT_URL (for MinIO and other S3-compatible stores, e.g. http://127.0.0.1:9000)
#   AWS_ALLOW_HTTP=true (to allow a plain-http endpoint)
#
# Any value may use environment variables, written as a dollar sign directly followed by
# {NAME} (shown here as "$ {NAME}" with a space, because references are replaced even in
# comments and an unset one is an error). They come from the environment, else from a
# .env file (NAME=value lines) next to this file, e.g.
#   catalog = "ducklake:postgres:dbname=lake host=$ {PGHOST} user=$ {PGUSER}"
#   data_path = "s3://$ {BUCKET}/lake/raw/"

# --- The SQL model project --------------------------------------------------------------
# [project]
# name = "saas"
# models = "models"        # folder of SQL models
# target = "dev"           # default target
# [targets.dev]
# lake = "dev_analytics"
# [targets.prod]
# lake = "prod_analytics"
# [models.staging]         # defaults for models/staging/**
# materialized = "view"
# [models.marts]
# materialized = "table"
# [vars]
# start_date = "2026-01-01"
"#;

/// Write [`TEMPLATE`] to `<project>/lakeq.toml`; refuse to replace an existing
/// file unless `force`. Returns the path written.
pub fn write_config(project: &Path, force: bool) -> Result<PathBuf> {
    std::fs::create_dir_all(project)?;
    let path = project.join("lakeq.toml");
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        // create_new: the check and the creation are one step, so two racing
        // `lakeq init`s cannot both write.
        options.create_new(true);
    }
    let mut file = match options.open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Io(std::io::Error::new(
                e.kind(),
                format!(
                    "{} already exists and was left unchanged; use --force to overwrite it",
                    path.display()
                ),
            )));
        }
        Err(e) => return Err(e.into()),
    };
    file.write_all(TEMPLATE.as_bytes())?;
    file.sync_all()?;
    Ok(path)
}

/// Run `lakeq init`.
pub async fn run(args: InitArgs) -> Result<()> {
    let path = write_config(&args.project, args.force)?;
    println!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_never_references_a_variable() {
        assert!(!TEMPLATE.contains("${"));
    }
}
