//! Commits: one [`ChangeSet`] becomes one DuckLake snapshot, written in one
//! catalog transaction.
//!
//! The protocol (SPEC §12, §14):
//! 1. Data and delete files are written to storage first (not yet referenced).
//! 2. Read the latest snapshot `L`. If other writers committed since the change
//!    set's base snapshot, parse their change lists and refuse on a logical
//!    conflict ([`conflict::check`]).
//! 3. Allocate ids from `L` (catalog ids, file ids, row ids), render every row
//!    of the change with `begin_snapshot = L + 1`, and run it as one transaction
//!    whose first statement inserts snapshot `L + 1`. The primary key on
//!    `ducklake_snapshot.snapshot_id` is the serialisation point: if another
//!    writer took `L + 1`, the transaction fails as a whole and we go back to 2
//!    (bounded retries with jittered backoff).
//! 4. On final failure the caller removes the files of step 1; nothing in the
//!    catalog references them, so a crash at any point leaves a lake that
//!    readers open (at worst with orphaned files, which DuckDB's
//!    `ducklake_delete_orphaned_files` removes).

mod changeset;
pub mod conflict;
pub mod inline;
mod render;

use std::time::Duration;

pub use changeset::{
    AddedFile, Alter, ChangeSet, Comment, CommentTarget, FlushedFile, InlinedFlush, MappingRef,
    MergedFile, NameMapEntry, NewColumn, NewDeleteFile, NewMacro, NewMacroImpl, NewMacroParameter,
    NewNameMapping, NewTable, NewView, RenamedView, SortKey, TableRef,
};
pub(crate) use render::new_column_rows;
use render::{Target, render};

use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::spec::changes::parse_changes;
use crate::spec::rows::DataFileRow;
use crate::spec::{CatalogId, ColumnId, SnapshotId};
use crate::write::{WrittenFile, discard, write_delete_file};

/// How long a commit keeps retrying after losing the race for a snapshot id.
/// Bounded by time, not by a count: with 8 writer processes committing at
/// once, 10 retries (waits growing to 1 s, 3.5 s in all) starved some writers.
const RETRY_FOR: Duration = Duration::from_secs(60);
/// The longest wait between two attempts (before jitter), in milliseconds.
const MAX_WAIT_MS: f64 = 500.0;

/// What a successful commit produced.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The new snapshot id.
    pub snapshot_id: SnapshotId,
    /// Ids given to the change set's new tables, in order.
    pub new_table_ids: Vec<CatalogId>,
}

/// DuckDB's refusal of a commit without `set_commit_message` when the lake's
/// `require_commit_message` option is on (its wording, so scripts match it).
pub(crate) fn commit_message_required(lake: &str) -> Error {
    Error::Transaction(format!(
        "lake '{lake}': Commit Information for the snapshot is required but has not been provided. \
         Provide it with CALL <lake>.set_commit_message('author', 'message') inside BEGIN ... COMMIT, \
         or turn the requirement off with CALL <lake>.set_option('require_commit_message', false); \
         nothing was committed"
    ))
}

/// Commit `changes` as one snapshot, retrying when another writer wins the race.
pub async fn commit(lake: &Lake, changes: &ChangeSet) -> Result<Committed> {
    if lake.read_only() {
        return Err(Error::Unsupported(format!(
            "the lake '{}' is attached READ_ONLY (or at a fixed SNAPSHOT_VERSION)",
            lake.store().location()
        )));
    }
    // Inside a transaction the check waits for COMMIT, where
    // `set_commit_message` may have given the information.
    if lake.transaction_base().is_none() && lake.requires_commit_message().await? {
        return Err(commit_message_required(lake.store().location()));
    }
    let store = lake.store();
    let backend = store.backend();
    let mut attempt = 0u32;
    let started = std::time::Instant::now();
    loop {
        let latest = store.latest_snapshot().await?;
        check_counters(
            "snapshot",
            &[
                ("snapshot_id", latest.snapshot_id),
                ("next_catalog_id", latest.next_catalog_id),
                ("next_file_id", latest.next_file_id),
                ("schema_version", latest.schema_version),
            ],
        )?;
        if latest.snapshot_id > changes.base_snapshot {
            let theirs = store.changes_since(changes.base_snapshot).await?;
            let parsed = theirs
                .iter()
                .map(|c| parse_changes(c))
                .collect::<Result<Vec<_>>>()?
                .concat();
            conflict::check(changes, &parsed)?;
        }
        // In a transaction's fork, the second and later commits amend the
        // transaction's one snapshot instead of adding another.
        let amend = lake
            .transaction_base()
            .is_some_and(|base| latest.snapshot_id > base);
        let s = latest.snapshot_id + i64::from(!amend);
        let delete_files = write_delete_files(lake, changes, s).await?;
        let target = Target { s, amend };
        let rendered = match render(
            lake,
            backend.as_ref(),
            changes,
            &latest,
            target,
            &delete_files,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                discard(&delete_files).await;
                return Err(e);
            }
        };
        let outcome = backend.execute_batch(&rendered.sql).await;
        if outcome.is_err() {
            discard(&delete_files).await;
        }
        match outcome {
            Ok(()) => {
                if lake.transaction_base().is_some() {
                    lake.forget_files();
                }
                return Ok(Committed {
                    snapshot_id: s,
                    new_table_ids: rendered.new_table_ids,
                });
            }
            Err(e) if is_retryable(&e) && started.elapsed() < RETRY_FOR => {
                attempt += 1;
                let jitter = 0.5 + f64::from(uuid::Uuid::new_v4().as_bytes()[0]) / 512.0;
                let wait = (20.0 * 1.5f64.powi(attempt.min(20) as i32)).min(MAX_WAIT_MS) * jitter;
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
            Err(e) if is_retryable(&e) => {
                return Err(Error::CommitConflict {
                    message: format!(
                        "gave up after {attempt} retries in {} s: {e}",
                        started.elapsed().as_secs()
                    ),
                    retryable: true,
                });
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether a catalog error means "another writer took the snapshot id" (or a
/// serialisation failure, or a busy SQLite file): then the commit is re-planned on
/// the new latest snapshot. Decided by error code, never by message text (a
/// PostgreSQL server may speak another language): unique violations (SQLSTATE
/// 23505, SQLite's constraint codes), serialisation failures and deadlocks
/// (40001, 40P01), lock timeouts (55P03) and SQLite's BUSY / LOCKED (5, 6 and
/// their extended codes).
fn is_retryable(e: &Error) -> bool {
    let Error::Catalog { source, .. } = e else {
        return false;
    };
    let Some(db) = source.as_database_error() else {
        return false;
    };
    if matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation) {
        return true;
    }
    let Some(code) = db.code() else {
        return false;
    };
    retryable_code(&code)
}

/// [`is_retryable`] on a PostgreSQL SQLSTATE or a SQLite (extended) result code.
fn retryable_code(code: &str) -> bool {
    match code {
        "23505" | "40001" | "40P01" | "55P03" => true,
        // SQLite: the primary result code is the low byte of the extended one.
        other => other
            .parse::<i64>()
            .is_ok_and(|c| matches!(c & 0xff, 5 | 6) || c == 1555 || c == 2067),
    }
}

/// Write the change set's delete files for snapshot `s`.
async fn write_delete_files(lake: &Lake, c: &ChangeSet, s: SnapshotId) -> Result<Vec<WrittenFile>> {
    let mut out = Vec::with_capacity(c.delete_files.len());
    for d in &c.delete_files {
        let store = lake.object_store(&d.data_file_url)?;
        let mut entries: Vec<(i64, SnapshotId)> = d.previous.clone();
        entries.extend(d.new_positions.iter().map(|p| (*p, s)));
        entries.sort_unstable();
        entries.dedup_by_key(|e| e.0);
        let positions: Vec<i64> = entries.iter().map(|e| e.0).collect();
        // A replacing (cumulative) file needs per-row snapshots for time travel.
        let snapshots: Option<Vec<i64>> =
            (d.replaces.is_some() || d.flushed).then(|| entries.iter().map(|e| e.1).collect());
        match write_delete_file(
            &store,
            &d.table_dir,
            &d.data_file_url,
            &positions,
            snapshots.as_deref(),
        )
        .await
        {
            Ok(f) => out.push(f),
            Err(e) => {
                discard(&out).await;
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// The first column id a new column of `table_id` may use: ids are never reused,
/// so it is one above every id of every version (dropped columns included).
pub async fn next_column_id(lake: &Lake, table_id: CatalogId) -> Result<ColumnId> {
    let max = lake
        .store()
        .all_column_versions(table_id)
        .await?
        .iter()
        .map(|r| r.column_id)
        .max()
        .unwrap_or(0);
    check_counters(
        &format!("table {table_id}'s columns"),
        &[("column_id", max)],
    )?;
    Ok(max + 1)
}

/// Catalog counters above this are corrupt (no lake counts that far) and would
/// overflow as a commit numbers what it adds.
const MAX_COUNTER: i64 = i64::MAX / 2;

/// Refuse to commit on top of counters (ids, row counts, sizes) a damaged
/// catalog holds near `i64::MAX`, naming them, instead of overflowing.
fn check_counters(what: &str, counters: &[(&str, i64)]) -> Result<()> {
    match counters.iter().find(|(_, v)| *v > MAX_COUNTER) {
        Some((name, value)) => Err(Error::Corrupt(format!(
            "the catalog's {what} has {name} = {value}, beyond what a lake can count to"
        ))),
        None => Ok(()),
    }
}

/// The data files of a table at a snapshot (re-exported for writers).
pub async fn live_files(
    lake: &Lake,
    table_id: CatalogId,
    s: SnapshotId,
) -> Result<Vec<DataFileRow>> {
    lake.store().data_files(table_id, s).await
}

#[cfg(test)]
mod retry_tests {
    use super::retryable_code;

    #[test]
    fn retries_are_decided_by_error_code() {
        // PostgreSQL: unique violation, serialisation failure, deadlock, lock timeout.
        for code in ["23505", "40001", "40P01", "55P03"] {
            assert!(retryable_code(code), "{code}");
        }
        // SQLite: BUSY, LOCKED and their extended codes, primary key / unique.
        for code in ["5", "6", "261", "517", "262", "1555", "2067"] {
            assert!(retryable_code(code), "{code}");
        }
        // Not retryable: syntax errors, missing tables, NOT NULL, disk I/O.
        for code in ["42601", "42P01", "23502", "1", "10", "1299"] {
            assert!(!retryable_code(code), "{code}");
        }
    }
}
