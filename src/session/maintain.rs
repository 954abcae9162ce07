//! `lakeq maintain` and the maintenance step of `lakeq run`: keep a lake's file
//! and snapshot counts bounded by policy.
//!
//! In DuckDB's `CHECKPOINT` order: flush inlined data to Parquet, merge
//! adjacent small files, rewrite files most of whose rows are deleted, expire snapshots by policy, delete the files expiry and
//! merging scheduled once they are old enough (`delete_older_than`, default 2
//! days, so readers still on an old snapshot keep their files), and delete
//! orphaned files (left by writers killed before committing) under the same
//! age rule. Every step goes through the same calls a user can run
//! (`ducklake_merge_adjacent_files`, ...), so DuckDB reads the result.

use serde::Deserialize;

use crate::error::Result;
use crate::ops::cleanup::before_now;
use crate::session::Session;

/// How much history to keep (`[maintenance]` in lakeq.toml).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenancePolicy {
    /// Merge adjacent small files (default true).
    #[serde(default = "yes")]
    pub merge: bool,
    /// Expire snapshots older than this interval (`'7 days'`; default: the
    /// lake's `expire_older_than` option, else 7 days).
    #[serde(default)]
    pub expire_older_than: Option<String>,
    /// Always keep at least the newest N snapshots (default 10).
    #[serde(default = "default_keep")]
    pub keep_snapshots: usize,
    /// Delete the files merging and expiry released, and orphaned files, once
    /// old enough (default true).
    #[serde(default = "yes")]
    pub cleanup: bool,
}

fn yes() -> bool {
    true
}

fn default_keep() -> usize {
    10
}

impl Default for MaintenancePolicy {
    fn default() -> Self {
        Self {
            merge: true,
            expire_older_than: None,
            keep_snapshots: default_keep(),
            cleanup: true,
        }
    }
}

/// What maintaining one lake did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Inlined rows moved to Parquet (`ducklake_flush_inlined_data`).
    pub rows_flushed: i64,
    /// Source files merged, and files they became.
    pub files_merged: i64,
    /// Files written by merging.
    pub files_created: i64,
    /// Files rewritten without their deleted rows (`ducklake_rewrite_data_files`,
    /// by the lake's `rewrite_delete_threshold`, default 95% deleted).
    pub files_rewritten: i64,
    /// Snapshots expired.
    pub snapshots_expired: usize,
    /// Files deleted from storage (released by merge/expiry, or orphaned).
    pub files_deleted: usize,
}

impl std::fmt::Display for MaintenanceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.rows_flushed > 0 {
            write!(f, "{} inlined rows flushed, ", self.rows_flushed)?;
        }
        write!(
            f,
            "{} files merged into {}, {} files rewritten without deleted rows, {} snapshots \
             expired, {} files deleted",
            self.files_merged,
            self.files_created,
            self.files_rewritten,
            self.snapshots_expired,
            self.files_deleted
        )
    }
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Count the rows of every batch.
fn rows(batches: &[datafusion::arrow::array::RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

/// Maintain the lake attached as `lake` in `session` under `policy`.
pub async fn maintain(
    session: &Session,
    lake: &str,
    policy: &MaintenancePolicy,
) -> Result<MaintenanceReport> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    let name = quote(lake);
    let mut report = MaintenanceReport::default();
    if policy.merge {
        for batch in session
            .sql(&format!(
                "SELECT rows_flushed FROM ducklake_flush_inlined_data({name})"
            ))
            .await?
        {
            let flushed = batch.column(0).as_primitive::<Int64Type>();
            report.rows_flushed += flushed.iter().flatten().sum::<i64>();
        }
        for batch in session
            .sql(&format!(
                "SELECT files_processed, files_created FROM ducklake_merge_adjacent_files({name})"
            ))
            .await?
        {
            let processed = batch.column(0).as_primitive::<Int64Type>();
            let created = batch.column(1).as_primitive::<Int64Type>();
            report.files_merged += processed.iter().flatten().sum::<i64>();
            report.files_created += created.iter().flatten().sum::<i64>();
        }
        for batch in session
            .sql(&format!(
                "SELECT files_processed FROM ducklake_rewrite_data_files({name})"
            ))
            .await?
        {
            let processed = batch.column(0).as_primitive::<Int64Type>();
            report.files_rewritten += processed.iter().flatten().sum::<i64>();
        }
    }
    // Expire what is older than the policy allows, keeping the newest N.
    let older_than = match &policy.expire_older_than {
        Some(text) => text.clone(),
        None => session
            .lake(lake)?
            .lake()
            .store()
            .metadata()
            .await?
            .rows
            .iter()
            .find(|(k, v, s, _)| k == "expire_older_than" && s.is_none() && !v.trim().is_empty())
            .map_or_else(|| "7 days".to_string(), |(_, v, _, _)| v.clone()),
    };
    let cutoff = before_now(&older_than)?;
    let snapshots = session.lake(lake)?.lake().store().snapshots().await?;
    let keep_from = snapshots.len().saturating_sub(policy.keep_snapshots.max(1));
    let versions: Vec<String> = snapshots
        .iter()
        .take(keep_from)
        .filter(|s| s.snapshot_time < cutoff)
        .map(|s| s.snapshot_id.to_string())
        .collect();
    if !versions.is_empty() {
        report.snapshots_expired = rows(
            &session
                .sql(&format!(
                    "SELECT snapshot_id FROM ducklake_expire_snapshots({name}, versions => [{}])",
                    versions.join(", ")
                ))
                .await?,
        );
    }
    if policy.cleanup {
        report.files_deleted += rows(
            &session
                .sql(&format!(
                    "SELECT path FROM ducklake_cleanup_old_files({name})"
                ))
                .await?,
        );
        report.files_deleted += rows(
            &session
                .sql(&format!(
                    "SELECT path FROM ducklake_delete_orphaned_files({name})"
                ))
                .await?,
        );
    }
    Ok(report)
}
