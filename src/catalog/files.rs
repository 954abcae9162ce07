//! The data files of one table at one snapshot, with what planning a scan needs to
//! know about them, loaded from the catalog once and then shared by every scan of the
//! table at that snapshot.
//!
//! A committed snapshot's file list, deletions and statistics do not change when later
//! snapshots append or delete. Maintenance can rewrite history, though: compaction or a
//! flush of inlined data commits a new snapshot and replaces the files older snapshots
//! see. A [`FilesCache`] therefore keeps an entry only while the lake's latest snapshot is
//! the one it was when the entry was loaded; every refresh that finds a new snapshot
//! retires all entries. The cache holds a few tables, least recently used first out.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::arrow::array::{ArrayRef, RecordBatch};

use crate::error::Result;
use crate::spec::rows::DataFileRow;
use crate::spec::{CatalogId, ColumnId, FileId, SnapshotId};
use crate::store::MetadataStore;

/// Tables whose files a [`FilesCache`] keeps.
const CACHED_TABLES: usize = 8;

/// Per-file bounds of one column, aligned with [`TableFiles::files`].
#[derive(Debug, Clone)]
pub struct ColumnBounds {
    /// Minimum per file (null when unknown).
    pub min: ArrayRef,
    /// Maximum per file (null when unknown).
    pub max: ArrayRef,
    /// Null count per file (`UInt64`, null when unknown).
    pub null_counts: ArrayRef,
    /// Bytes the column takes in each file, when the catalog records it.
    pub byte_sizes: Vec<Option<u64>>,
}

/// Inlined rows of a table at a snapshot, with their row ids.
pub type InlinedRows = Option<(RecordBatch, Vec<i64>, Vec<i64>)>;

/// The files of a table visible at one snapshot.
#[derive(Debug)]
pub struct TableFiles {
    /// Visible data files with their visible delete file, by ascending `data_file_id`.
    pub files: Vec<DataFileRow>,
    /// Inlined deletions of Parquet rows in effect: positions per data file id.
    pub inlined_deletions: HashMap<FileId, BTreeSet<i64>>,
    /// Column bounds loaded so far, by column id (filled as filters need them).
    bounds: Mutex<HashMap<ColumnId, Arc<ColumnBounds>>>,
    /// The table's inlined rows, read by the first scan that needs them.
    pub inlined_rows: tokio::sync::OnceCell<InlinedRows>,
    /// Data files a float column of which may hold NaN (catalog `contains_nan`
    /// not false), read by the first scan of a table with float columns.
    pub maybe_nan: tokio::sync::OnceCell<HashSet<FileId>>,
    /// When set, a scan reads only these positions of each listed file (the
    /// change feed's deleted rows) and ignores delete files.
    pub only_positions: Option<HashMap<FileId, BTreeSet<i64>>>,
}

impl TableFiles {
    /// Load the files of table `table_id` visible at `s`.
    pub async fn load(store: &MetadataStore, table_id: CatalogId, s: SnapshotId) -> Result<Self> {
        let (files, deletions) = tokio::try_join!(
            store.data_files(table_id, s),
            store.inlined_deletions(table_id, s)
        )?;
        let mut inlined_deletions: HashMap<FileId, BTreeSet<i64>> = HashMap::new();
        for (file_id, pos) in deletions {
            inlined_deletions.entry(file_id).or_default().insert(pos);
        }
        Ok(Self {
            files,
            inlined_deletions,
            bounds: Mutex::new(HashMap::new()),
            inlined_rows: tokio::sync::OnceCell::new(),
            maybe_nan: tokio::sync::OnceCell::new(),
            only_positions: None,
        })
    }

    /// A chosen set of files and inlined rows (the change feed): `files` are read
    /// whole, or only at `only_positions` when given; no deletions apply.
    pub fn chosen(
        files: Vec<DataFileRow>,
        only_positions: Option<HashMap<FileId, BTreeSet<i64>>>,
        inlined_rows: InlinedRows,
    ) -> Self {
        Self {
            files,
            inlined_deletions: HashMap::new(),
            bounds: Mutex::new(HashMap::new()),
            inlined_rows: tokio::sync::OnceCell::new_with(Some(inlined_rows)),
            maybe_nan: tokio::sync::OnceCell::new(),
            only_positions,
        }
    }

    fn bounds_map(&self) -> MutexGuard<'_, HashMap<ColumnId, Arc<ColumnBounds>>> {
        self.bounds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bounds of `column` if loaded already.
    pub fn bounds(&self, column: ColumnId) -> Option<Arc<ColumnBounds>> {
        self.bounds_map().get(&column).cloned()
    }

    /// Remember the bounds of `column`.
    pub fn set_bounds(&self, column: ColumnId, bounds: Arc<ColumnBounds>) {
        self.bounds_map().insert(column, bounds);
    }
}

/// One cached table: its files and the latest snapshot of the lake when they were read.
#[derive(Debug)]
struct Entry {
    key: (CatalogId, SnapshotId),
    latest: SnapshotId,
    files: Arc<TableFiles>,
}

/// [`TableFiles`] of the most recently scanned tables of one lake.
#[derive(Debug, Default)]
pub struct FilesCache {
    /// The lake's latest snapshot as last seen, and the entries, most recent first.
    state: Mutex<(Option<SnapshotId>, VecDeque<Entry>)>,
}

impl FilesCache {
    fn state(&self) -> MutexGuard<'_, (Option<SnapshotId>, VecDeque<Entry>)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drop every entry (a transaction amended its snapshot without a new id).
    pub fn clear(&self) {
        let mut state = self.state();
        state.0 = None;
        state.1.clear();
    }

    /// Record the lake's latest snapshot; entries loaded under another one are dropped.
    pub fn saw_latest(&self, latest: SnapshotId) {
        let mut state = self.state();
        if state.0 != Some(latest) {
            state.0 = Some(latest);
            state.1.retain(|e| e.latest == latest);
        }
    }

    /// The files of `table_id` at `s`, from the cache or loaded from `store`.
    pub async fn get(
        &self,
        store: &MetadataStore,
        table_id: CatalogId,
        s: SnapshotId,
    ) -> Result<Arc<TableFiles>> {
        let key = (table_id, s);
        let latest = {
            let mut state = self.state();
            let latest = state.0;
            if let Some(i) = state
                .1
                .iter()
                .position(|e| e.key == key && Some(e.latest) == latest)
                && let Some(hit) = state.1.remove(i)
            {
                let files = Arc::clone(&hit.files);
                state.1.push_front(hit);
                return Ok(files);
            }
            latest
        };
        let files = Arc::new(TableFiles::load(store, table_id, s).await?);
        // Keep it only if no refresh saw a newer snapshot while it was loading.
        if let Some(latest) = latest {
            let mut state = self.state();
            if state.0 == Some(latest) {
                state.1.retain(|e| e.key != key);
                state.1.push_front(Entry {
                    key,
                    latest,
                    files: Arc::clone(&files),
                });
                state.1.truncate(CACHED_TABLES);
            }
        }
        Ok(files)
    }
}
