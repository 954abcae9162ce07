//! `lakeq maintain [LAKE...]`: merge small files, expire old snapshots and delete
//! released and orphaned files, by the policy of `[maintenance]` in lakeq.toml
//! (flags override it).

use std::path::{Path, PathBuf};
use std::time::Instant;

use lakeq::config::Config;
use lakeq::error::Result;
use lakeq::session::Session;
use lakeq::session::maintain::{MaintenancePolicy, maintain};

/// Arguments of `lakeq maintain`.
#[derive(Debug, clap::Args)]
pub struct MaintainArgs {
    /// Lakes to maintain (default: `raw` and the default target's lake).
    pub lakes: Vec<String>,
    /// Project folder (holding `lakeq.toml`; the embedded default without one).
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    /// Expire snapshots older than this (e.g. '7 days'); default from lakeq.toml,
    /// else the lake's `expire_older_than` option, else 7 days.
    #[arg(long)]
    pub older_than: Option<String>,
    /// Always keep the newest N snapshots.
    #[arg(long)]
    pub keep_snapshots: Option<usize>,
    /// Do not merge small files.
    #[arg(long)]
    pub no_merge: bool,
    /// Do not delete released or orphaned files.
    #[arg(long)]
    pub no_cleanup: bool,
}

/// The policy from lakeq.toml with the command line's overrides.
fn policy(config: &Config, args: &MaintainArgs) -> MaintenancePolicy {
    let mut policy = config.maintenance.clone();
    if let Some(o) = &args.older_than {
        policy.expire_older_than = Some(o.clone());
    }
    if let Some(k) = args.keep_snapshots {
        policy.keep_snapshots = k;
    }
    policy.merge &= !args.no_merge;
    policy.cleanup &= !args.no_cleanup;
    policy
}

/// Maintain `lakes` of the project in `dir`, printing one line per lake.
pub async fn maintain_lakes(
    config: &Config,
    dir: &Path,
    lakes: &[String],
    policy: &MaintenancePolicy,
) -> Result<()> {
    let session = Session::with_options(&super::run_session_options(config)?);
    for name in lakes {
        let lake = config.lake(name, dir);
        let started = Instant::now();
        session.attach(name, &lake.catalog, lake.options()).await?;
        let report = maintain(&session, name, policy).await?;
        println!(
            "maintain   {:>7.2}s  {name}: {report}",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Run `lakeq maintain`.
pub async fn run(args: MaintainArgs) -> Result<()> {
    let config = Config::load(&args.project)?;
    let lakes = if args.lakes.is_empty() {
        default_lakes(&config)
    } else {
        args.lakes.clone()
    };
    maintain_lakes(&config, &args.project, &lakes, &policy(&config, &args)).await
}

/// `raw` and the default target's lake.
pub fn default_lakes(config: &Config) -> Vec<String> {
    let target = &config.project.target;
    let analytics = config
        .targets
        .get(target)
        .map_or_else(|| format!("{target}_analytics"), |t| t.lake.clone());
    vec![lakeq::ingest::RAW_LAKE.to_string(), analytics]
}
