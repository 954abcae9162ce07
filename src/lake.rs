//! A DuckLake: its metadata store plus its data path. [`Lake::open`] attaches an
//! existing catalog (checking version and data path) or creates a new one with
//! the DDL in `catalog_schema/` and the same seed rows DuckDB writes.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;

use crate::catalog::CatalogSnapshot;
use crate::catalog::files::{FilesCache, TableFiles};
use crate::error::{Error, Result};
use crate::spec::rows::SnapshotRow;
use crate::spec::{CatalogId, SUPPORTED_VERSION, SnapshotId};
use crate::storage::absolute_data_path;
use crate::store::{CatalogLocation, Dialect, LakeMetadata, Literal, MetadataStore};

const SQLITE_DDL: &str = include_str!("../catalog_schema/sqlite.sql");
const POSTGRES_DDL: &str = include_str!("../catalog_schema/postgres.sql");

/// Options given at ATTACH.
#[derive(Debug, Clone, Default)]
pub struct LakeOptions {
    /// `DATA_PATH`: required to create a lake; checked against the stored one otherwise.
    pub data_path: Option<String>,
    /// `METADATA_SCHEMA` (PostgreSQL only).
    pub metadata_schema: Option<String>,
    /// `OVERRIDE_DATA_PATH`: use `data_path` instead of the stored one.
    pub override_data_path: bool,
    /// `CREATE_IF_NOT_EXISTS` (default true, as in DuckDB).
    pub create_if_not_exists: Option<bool>,
    /// `READ_ONLY`.
    pub read_only: bool,
    /// `SNAPSHOT_VERSION`: pin the lake at this snapshot (read only).
    pub snapshot_version: Option<SnapshotId>,
    /// `SNAPSHOT_TIME`: pin the lake at the last snapshot at or before this
    /// time (read only).
    pub snapshot_time: Option<chrono::DateTime<chrono::Utc>>,
    /// `DATA_INLINING_ROW_LIMIT` given at ATTACH (DuckDB's per-session setting).
    pub data_inlining_row_limit: Option<u64>,
    /// The session's DuckDB settings that stand in for lake options (shared by
    /// every lake a session attaches; a [`crate::Session`] sets its own).
    pub session: Arc<SessionSettings>,
}

/// DuckDB's session settings `ducklake_target_file_size` and
/// `ducklake_default_data_inlining_row_limit` (`SET` / `RESET`), shared by the
/// lakes of one session and by their transaction forks.
#[derive(Debug, Default)]
pub struct SessionSettings {
    values: std::sync::Mutex<SessionValues>,
}

#[derive(Debug, Clone, Copy, Default)]
struct SessionValues {
    target_file_size: Option<u64>,
    data_inlining_row_limit: Option<u64>,
}

impl SessionSettings {
    fn values(&self) -> std::sync::MutexGuard<'_, SessionValues> {
        self.values.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `SET ducklake_target_file_size`: overrides the lake's `target_file_size`
    /// option at every scope, as in DuckDB.
    pub fn target_file_size(&self) -> Option<u64> {
        self.values().target_file_size
    }

    /// Set (`None`: `RESET`) `ducklake_target_file_size`, in bytes.
    pub fn set_target_file_size(&self, bytes: Option<u64>) {
        self.values().target_file_size = bytes;
    }

    /// `SET ducklake_default_data_inlining_row_limit`: the inlining limit of
    /// tables without a `data_inlining_row_limit` option or ATTACH option.
    pub fn data_inlining_row_limit(&self) -> Option<u64> {
        self.values().data_inlining_row_limit
    }

    /// Set (`None`: `RESET`) `ducklake_default_data_inlining_row_limit`.
    pub fn set_data_inlining_row_limit(&self, rows: Option<u64>) {
        self.values().data_inlining_row_limit = rows;
    }
}

/// An open DuckLake.
#[derive(Debug)]
pub struct Lake {
    store: MetadataStore,
    metadata: LakeMetadata,
    options: LakeOptions,
    files: FilesCache,
    /// For a transaction's fork: the snapshot the transaction began at. Its
    /// commits all go into the one snapshot after it (see [`Lake::fork`]).
    transaction_base: Option<SnapshotId>,
    /// For a transaction's fork: each table's `next_row_id` at the base
    /// snapshot. Rows numbered from there on are the transaction's own.
    transaction_row_ids: HashMap<CatalogId, i64>,
    /// For a transaction's fork: what `set_commit_message` gave, written with
    /// the transaction's snapshot at `COMMIT`.
    commit_info: std::sync::Mutex<Option<CommitInfo>>,
}

/// The author, message and extra information of a commit
/// (`CALL lake.set_commit_message(author, message, extra_info => ...)`),
/// stored in `ducklake_snapshot_changes` as DuckDB stores them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitInfo {
    /// `author` (NULL when not given).
    pub author: Option<String>,
    /// `commit_message`.
    pub message: Option<String>,
    /// `commit_extra_info`.
    pub extra_info: Option<String>,
}

impl Lake {
    /// Open (or create) the lake behind an ATTACH string such as
    /// `ducklake:sqlite:/path/meta.sqlite`.
    pub async fn open(attach: &str, options: LakeOptions) -> Result<Arc<Self>> {
        let location = CatalogLocation::parse(attach, options.metadata_schema.as_deref())?;
        let store = MetadataStore::connect(&location).await?;
        if !store.is_initialized().await? {
            if options.create_if_not_exists == Some(false) || options.read_only {
                return Err(Error::NotADuckLakeCatalog {
                    location: location.display(),
                    schema_hint: match &location {
                        CatalogLocation::Postgres {
                            metadata_schema, ..
                        } => {
                            format!(" in schema '{metadata_schema}'")
                        }
                        CatalogLocation::Sqlite { .. } => String::new(),
                    },
                });
            }
            if Self::has_foreign_tables(&store).await? {
                // Another process may have created the catalog between the two checks.
                if !store.is_initialized().await? {
                    return Err(Error::NotADuckLakeCatalog {
                        location: location.display(),
                        schema_hint: " but other tables".into(),
                    });
                }
            } else {
                let data_path =
                    options
                        .data_path
                        .as_deref()
                        .ok_or_else(|| Error::InvalidLocation {
                            location: location.display(),
                            reason: "creating a new DuckLake needs a DATA_PATH".into(),
                        })?;
                if let Err(e) = Self::create(&store, &absolute_data_path(data_path)?).await {
                    // Another process may have created the catalog at the same moment.
                    if !store.is_initialized().await? {
                        return Err(e);
                    }
                }
            }
        }
        let mut metadata = store.metadata().await?;
        if metadata.data_path.is_empty() {
            return Err(Error::Corrupt(format!(
                "catalog '{}' has no data_path in ducklake_metadata",
                store.location()
            )));
        }
        if let Some(given) = &options.data_path {
            let given = absolute_data_path(given)?;
            if options.override_data_path {
                metadata.data_path = given;
            } else if given != metadata.data_path {
                return Err(Error::DataPathMismatch {
                    location: store.location().to_string(),
                    given,
                    stored: metadata.data_path,
                });
            }
        }
        Ok(Arc::new(Self {
            store,
            metadata,
            options,
            files: FilesCache::default(),
            transaction_base: None,
            transaction_row_ids: HashMap::new(),
            commit_info: std::sync::Mutex::new(None),
        }))
    }

    async fn has_foreign_tables(store: &MetadataStore) -> Result<bool> {
        // A SQLite file or PostgreSQL schema with unrelated tables is not ours to extend.
        let probe = match store.backend().dialect() {
            Dialect::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' LIMIT 1".to_string()
            }
            Dialect::Postgres => return Ok(false),
        };
        Ok(!store.backend().query(&probe).await?.is_empty())
    }

    /// Create the catalog tables and seed rows (snapshot 0, schema `main`).
    async fn create(store: &MetadataStore, data_path: &str) -> Result<()> {
        let backend = store.backend();
        let ddl = match backend.dialect() {
            Dialect::Sqlite => SQLITE_DDL.to_string(),
            Dialect::Postgres => {
                let schema_table = backend.table("x");
                let schema = schema_table.trim_end_matches(".\"x\"");
                POSTGRES_DDL.replace("{schema}", schema)
            }
        };
        let lit = |v: Literal| backend.literal(&v);
        let now = Utc::now();
        let seed = format!(
            "INSERT INTO {md} VALUES ('version', {version}, NULL, NULL), ('created_by', {by}, NULL, NULL), \
             ('data_path', {dp}, NULL, NULL), ('encrypted', 'false', NULL, NULL);\n\
             INSERT INTO {snap} VALUES (0, {now}, 0, 1, 0);\n\
             INSERT INTO {changes} VALUES (0, 'created_schema:\"main\"', NULL, NULL, NULL);\n\
             INSERT INTO {schema} VALUES (0, {uuid}, 0, NULL, 'main', 'main/', {t});",
            md = backend.table("ducklake_metadata"),
            snap = backend.table("ducklake_snapshot"),
            changes = backend.table("ducklake_snapshot_changes"),
            schema = backend.table("ducklake_schema"),
            version = lit(SUPPORTED_VERSION.into()),
            by = lit(format!("lakeq {}", env!("CARGO_PKG_VERSION")).into()),
            dp = lit(data_path.into()),
            now = lit(Literal::Timestamp(now)),
            uuid = lit(uuid::Uuid::new_v4().to_string().into()),
            t = lit(true.into()),
        );
        let ddl: String = ddl
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        backend.execute_batch(&format!("{ddl}\n{seed}")).await
    }

    /// This lake over a transaction's forked catalog (a working copy of the
    /// catalog taken at snapshot `base`): same data path and options; every
    /// commit goes into snapshot `base + 1`, which the first one creates and
    /// later ones amend, so the transaction becomes one snapshot.
    /// `next_row_ids` holds each table's `next_row_id` at `base`.
    pub fn fork(
        &self,
        work: Arc<dyn crate::store::SqlBackend>,
        base: SnapshotId,
        next_row_ids: HashMap<CatalogId, i64>,
    ) -> Arc<Lake> {
        Arc::new(Self {
            store: MetadataStore::from_backend(work),
            metadata: self.metadata.clone(),
            options: self.options.clone(),
            files: FilesCache::default(),
            transaction_base: Some(base),
            transaction_row_ids: next_row_ids,
            commit_info: std::sync::Mutex::new(None),
        })
    }

    /// For a transaction's fork: the first row id the transaction handed out in
    /// `table` (its `next_row_id` at the base snapshot; 0 for a table the
    /// transaction created). `None`: not a fork.
    pub fn transaction_first_row_id(&self, table: CatalogId) -> Option<i64> {
        self.transaction_base?;
        Some(self.transaction_row_ids.get(&table).copied().unwrap_or(0))
    }

    /// The snapshot a forked lake's transaction began at (`None`: not a fork).
    pub fn transaction_base(&self) -> Option<SnapshotId> {
        self.transaction_base
    }

    /// Record the commit information for a transaction's fork (the last call
    /// wins, as in DuckDB). Outside a transaction each statement commits on its
    /// own, so DuckDB's call has nothing to apply to: `false`, nothing kept.
    pub fn set_commit_info(&self, info: CommitInfo) -> bool {
        if self.transaction_base.is_none() {
            return false;
        }
        match self.commit_info.lock() {
            Ok(mut slot) => *slot = Some(info),
            Err(poisoned) => *poisoned.into_inner() = Some(info),
        }
        true
    }

    /// The commit information `set_commit_message` gave in this transaction.
    pub fn commit_info(&self) -> Option<CommitInfo> {
        match self.commit_info.lock() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether the lake's `require_commit_message` option is on (read fresh:
    /// `set_option` may have changed it since ATTACH).
    pub async fn requires_commit_message(&self) -> Result<bool> {
        let rows = self
            .store
            .backend()
            .query(&format!(
                "SELECT value FROM {} WHERE key = 'require_commit_message' AND scope IS NULL",
                self.store.backend().table("ducklake_metadata")
            ))
            .await?;
        Ok(match rows.first() {
            Some(r) => r
                .opt_text(0)?
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            None => false,
        })
    }

    /// Forget cached file lists (a fork's amended snapshot keeps its id).
    pub(crate) fn forget_files(&self) {
        self.files.clear();
    }

    /// The metadata store.
    pub fn store(&self) -> &MetadataStore {
        &self.store
    }

    /// `ducklake_metadata` as read at open.
    pub fn metadata(&self) -> &LakeMetadata {
        &self.metadata
    }

    /// The lake's data path (absolute, ends with `/`).
    pub fn data_path(&self) -> &str {
        &self.metadata.data_path
    }

    /// `DATA_INLINING_ROW_LIMIT` given at ATTACH, else the session's
    /// `ducklake_default_data_inlining_row_limit`, if any.
    pub fn data_inlining_row_limit(&self) -> Option<u64> {
        self.options
            .data_inlining_row_limit
            .or_else(|| self.options.session.data_inlining_row_limit())
    }

    /// The write options of a table: the lake's options
    /// ([`crate::write::WriteOptions::for_table`]) with the session's
    /// `ducklake_target_file_size` over them, as in DuckDB.
    pub fn write_options(
        &self,
        metadata: &LakeMetadata,
        schema_id: CatalogId,
        table_id: CatalogId,
    ) -> Result<crate::write::WriteOptions> {
        let mut options = crate::write::WriteOptions::for_table(metadata, schema_id, table_id)?;
        if let Some(bytes) = self.options.session.target_file_size() {
            options.target_file_size = bytes.max(1);
        }
        Ok(options)
    }

    /// Whether writes are refused.
    pub fn read_only(&self) -> bool {
        self.options.read_only
            || self.options.snapshot_version.is_some()
            || self.options.snapshot_time.is_some()
    }

    /// The snapshot a new query sees: the pinned one, or the latest.
    ///
    /// Either way it reads the latest snapshot id, which tells the file cache whether
    /// what it holds may still be used (see [`crate::catalog::files`]).
    pub async fn current_snapshot(&self) -> Result<SnapshotRow> {
        let (latest, pinned) = match (self.options.snapshot_version, self.options.snapshot_time) {
            (Some(v), _) => {
                let (latest, pinned) =
                    tokio::try_join!(self.store.latest_snapshot(), self.store.snapshot(v))?;
                (latest, Some(pinned))
            }
            (None, Some(t)) => {
                let (latest, pinned) =
                    tokio::try_join!(self.store.latest_snapshot(), self.store.snapshot_at(t))?;
                (latest, Some(pinned))
            }
            (None, None) => (self.store.latest_snapshot().await?, None),
        };
        self.files.saw_latest(latest.snapshot_id);
        Ok(pinned.unwrap_or(latest))
    }

    /// The files of a table visible at snapshot `s`, read from the catalog once while
    /// the lake's latest snapshot stays the same.
    pub async fn table_files(&self, table_id: CatalogId, s: SnapshotId) -> Result<Arc<TableFiles>> {
        self.files.get(&self.store, table_id, s).await
    }

    /// The object store holding a file of this lake (local or S3).
    pub fn object_store(&self, url: &str) -> Result<Arc<dyn object_store::ObjectStore>> {
        crate::storage::object_store_for(url)
    }

    /// Load the catalog as of `snapshot`.
    pub async fn pin(&self, snapshot: SnapshotRow) -> Result<CatalogSnapshot> {
        CatalogSnapshot::load(&self.store, &self.metadata, snapshot).await
    }
}
