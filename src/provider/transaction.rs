//! Explicit transactions: `BEGIN` ... `COMMIT` / `ROLLBACK`, as DuckDB runs them
//! on a DuckLake: everything in between becomes one snapshot, or nothing.
//!
//! `BEGIN` forks the catalog of every writable attached lake
//! ([`crate::store::fork`]) and serves the session from the forks, so the
//! transaction's statements read their own changes and nobody else's (snapshot
//! isolation from the moment of `BEGIN`). Their commits all amend the one
//! snapshot after the fork's base ([`crate::lake::Lake::fork`]). `COMMIT`
//! applies each fork's changes to its real catalog in one catalog transaction;
//! `ROLLBACK` removes the data and delete files the transaction wrote and drops
//! the forks. Either way the session is served from the real catalogs again.
//!
//! If another writer committed to a lake after `BEGIN`, `COMMIT` applies nothing
//! to it and says so: lakeq does not yet rebase a transaction onto concurrent
//! commits (DuckDB merges those that do not conflict).

use std::sync::Arc;

use super::catalog::{LakeCatalog, StateSource};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::ops::expire::PathResolver;
use crate::spec::rows::SnapshotRow;
use crate::store::fork::CatalogFork;

/// A transaction in progress.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    /// The lakes it forked.
    pub(crate) forks: Vec<ForkedLake>,
    /// The error of the first statement that failed: DuckDB then refuses
    /// everything but `ROLLBACK` (and `COMMIT`, which rolls back).
    pub(crate) aborted: Option<String>,
}

/// One attached lake inside a transaction.
#[derive(Debug)]
pub(crate) struct ForkedLake {
    /// The attached name.
    pub(crate) name: String,
    /// The real lake, served again after the transaction.
    pub(crate) real: Arc<LakeCatalog>,
    /// The lake over the fork, served during the transaction.
    pub(crate) work: Arc<LakeCatalog>,
    fork: CatalogFork,
    /// The snapshot the fork was taken at.
    base: SnapshotRow,
}

impl ForkedLake {
    /// Fork `real`'s catalog.
    pub(crate) async fn fork(real: Arc<LakeCatalog>, state_source: StateSource) -> Result<Self> {
        let backend = real.lake().store().backend();
        let fork = backend.fork().await?;
        let forked = async {
            let base = crate::store::MetadataStore::from_backend(Arc::clone(&fork.work))
                .latest_snapshot()
                .await?;
            let lake = real.lake().fork(Arc::clone(&fork.work), base.snapshot_id);
            let work = Arc::new(LakeCatalog::new(real.name(), lake, state_source).await?);
            Ok::<_, Error>((base, work))
        }
        .await;
        match forked {
            Ok((base, work)) => Ok(Self {
                name: real.name().to_string(),
                real,
                work,
                fork,
                base,
            }),
            Err(e) => {
                backend.drop_fork(&fork).await;
                Err(e)
            }
        }
    }

    fn work_lake(&self) -> &Arc<Lake> {
        self.work.lake()
    }

    /// Whether the transaction changed this lake.
    async fn changed(&self) -> Result<bool> {
        let latest = self.work_lake().store().latest_snapshot().await?;
        Ok(latest.snapshot_id > self.base.snapshot_id)
    }

    /// Apply the transaction's changes to the real catalog (one catalog
    /// transaction), then drop the fork. On failure the transaction's files are
    /// removed and the real lake is as it was.
    pub(crate) async fn commit(self) -> Result<()> {
        let outcome = self.merge().await;
        if outcome.is_err() {
            self.remove_written_files().await;
        }
        self.real
            .lake()
            .store()
            .backend()
            .drop_fork(&self.fork)
            .await;
        outcome
    }

    async fn merge(&self) -> Result<()> {
        if !self.changed().await? {
            return Ok(());
        }
        let real = self.real.lake().store();
        let conflict = |latest: &SnapshotRow| Error::CommitConflict {
            message: format!(
                "lake '{}' received snapshot {} from another writer after this transaction \
                 began at snapshot {}; lakeq does not merge a transaction with concurrent \
                 commits yet, so none of its changes to this lake were applied (run the \
                 transaction again)",
                self.name, latest.snapshot_id, self.base.snapshot_id
            ),
            retryable: true,
        };
        let latest = real.latest_snapshot().await?;
        if latest.snapshot_id != self.base.snapshot_id {
            return Err(conflict(&latest));
        }
        match real.backend().merge_fork(&self.fork).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Lost the race for the snapshot id (its primary key): a conflict.
                let latest = real.latest_snapshot().await?;
                if latest.snapshot_id != self.base.snapshot_id {
                    return Err(conflict(&latest));
                }
                Err(e)
            }
        }
    }

    /// Undo the transaction: remove its files, drop the fork.
    pub(crate) async fn rollback(self) {
        self.remove_written_files().await;
        self.real
            .lake()
            .store()
            .backend()
            .drop_fork(&self.fork)
            .await;
    }

    /// Remove the data and delete files the transaction wrote (file ids from
    /// the base snapshot's next id on). Best effort: a file left behind is an
    /// orphan, which `ducklake_delete_orphaned_files` removes.
    async fn remove_written_files(&self) {
        let lake = self.work_lake();
        let Ok(paths) = PathResolver::load(lake).await else {
            return;
        };
        let backend = lake.store().backend();
        for (table, id) in [
            ("ducklake_data_file", "data_file_id"),
            ("ducklake_delete_file", "delete_file_id"),
        ] {
            let Ok(rows) = backend
                .query(&format!(
                    "SELECT table_id, path, path_is_relative FROM {} WHERE {id} >= {}",
                    backend.table(table),
                    self.base.next_file_id
                ))
                .await
            else {
                continue;
            };
            for r in rows {
                if let (Ok(t), Ok(p), Ok(rel)) = (r.i64(0), r.text(1), r.bool_or(2, true)) {
                    let _ = crate::ops::cleanup::remove(&paths.absolute(t, &p, rel)).await;
                }
            }
        }
    }
}
