//! Catalog forks: the private copy of a catalog that an explicit transaction
//! (`BEGIN` ... `COMMIT`) writes to.
//!
//! A fork is two copies of every `ducklake_*` table taken at one instant: a
//! *base* copy that never changes and a *working* copy that the transaction's
//! statements commit to (all into one snapshot, see [`crate::commit`]). Reads
//! inside the transaction see the working copy, so they see the transaction's
//! own changes and nobody else's. `COMMIT` applies the difference between the
//! working copy and the base to the real catalog in one database transaction
//! (`merge_sql`): rows of the working copy that the base lacks are inserted,
//! rows of the base that the working copy lacks are deleted. The new snapshot
//! row is inserted first, so a concurrent writer that took the same snapshot id
//! makes the whole merge fail on the primary key, and nothing is applied.
//!
//! Diffing against the base (not against the real catalog) applies exactly what
//! the transaction did: rows that maintenance removed from the real catalog
//! meanwhile (expired snapshots, cleaned-up files) are not brought back.
//!
//! A fork outlives its process only if the process is killed (a session that
//! ends inside a transaction rolls it back). On PostgreSQL the fork is a pair of
//! scratch schemas `lakeq_txn_<id>_base/_work`; the transaction holds a
//! session-level advisory lock keyed by its id (`lock_key`) on a connection of
//! its own, taken before the schemas are created, and every `BEGIN` drops the
//! scratch schemas whose lock it can take (their process is gone: PostgreSQL
//! releases a session's locks when its connection closes). On SQLite the fork is
//! two temporary files (`lakeq-txn-<id>-base.sqlite` / `-work.sqlite` in the
//! temporary directory), removed when the transaction ends. The transaction
//! holds an exclusive lock on a third file, `lakeq-txn-<id>.lock`, taken before
//! the copies are made ([`ForkLock`]); every SQLite `BEGIN` removes the forks
//! whose lock it can take ([`remove_abandoned_sqlite_forks`]): the operating
//! system releases a killed process's file locks, never a live one's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Dialect, SqlBackend, quote_ident};

/// A forked catalog (see the module docs).
#[derive(Debug, Clone)]
pub struct CatalogFork {
    /// The working copy, as a backend of its own.
    pub work: Arc<dyn SqlBackend>,
    /// Where the base copy lives: a SQLite file path, or a PostgreSQL schema.
    pub base_location: String,
    /// Where the working copy lives: a SQLite file path, or a PostgreSQL schema.
    pub work_location: String,
    /// The forked tables with their columns, as they were at the fork.
    pub tables: Vec<(String, Vec<String>)>,
    /// The lock that marks a SQLite fork as alive (`None` on PostgreSQL, whose
    /// forks are kept alive by an advisory lock).
    pub lock: Option<Arc<ForkLock>>,
}

/// The exclusive lock on `lakeq-txn-<id>.lock` that a SQLite fork's process
/// holds while the fork lives (see the module docs). The lock goes with the
/// open file: when the process ends, however it ends, the lock is released.
#[derive(Debug)]
pub struct ForkLock {
    /// The lock file.
    pub path: PathBuf,
    _file: std::fs::File,
}

/// The file name prefix of SQLite forks in the temporary directory.
const SQLITE_FORK_PREFIX: &str = "lakeq-txn-";

impl ForkLock {
    /// Take the lock of fork `stem` (`<dir>/lakeq-txn-<id>`): the file is created
    /// and locked under a temporary name, then renamed, so a `BEGIN` cleaning up
    /// never finds an unlocked lock file of a live transaction.
    pub fn take(stem: &Path) -> std::io::Result<Self> {
        let path = PathBuf::from(format!("{}.lock", stem.display()));
        let pending = PathBuf::from(format!("{}.lock-new", stem.display()));
        let file = std::fs::File::create(&pending)?;
        file.lock()?;
        std::fs::rename(&pending, &path)?;
        Ok(Self { path, _file: file })
    }

    /// Remove the lock file (after the fork's files are gone).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The files of the SQLite fork `stem` (`<dir>/lakeq-txn-<id>`): both copies and
/// their journals.
pub(crate) fn sqlite_fork_files(stem: &str) -> Vec<String> {
    let mut files = Vec::new();
    for copy in ["base", "work"] {
        let db = format!("{stem}-{copy}.sqlite");
        files.push(format!("{db}-journal"));
        files.push(format!("{db}-wal"));
        files.push(format!("{db}-shm"));
        files.push(db);
    }
    files
}

/// Remove the SQLite forks in `dir` whose process is gone: those whose lock file
/// this process can lock. A live transaction's lock cannot be taken, so its
/// fork stays; forks without a lock file (lakeq versions before the lock) are
/// left alone. Returns the forks removed (their `lakeq-txn-<id>` stems).
pub fn remove_abandoned_sqlite_forks(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name
            .strip_prefix(SQLITE_FORK_PREFIX)
            .and_then(|rest| rest.strip_suffix(".lock"))
        else {
            continue;
        };
        if lock_key(id).is_none() {
            continue; // not a transaction id: not ours
        }
        let Ok(file) = std::fs::OpenOptions::new().write(true).open(entry.path()) else {
            continue;
        };
        if file.try_lock().is_err() {
            continue; // a live transaction (or another BEGIN cleaning it up)
        }
        let stem = dir.join(format!("{SQLITE_FORK_PREFIX}{id}"));
        let stem = stem.display().to_string();
        for f in sqlite_fork_files(&stem) {
            let _ = std::fs::remove_file(f);
        }
        // Last, while still locked: a lock file without copies is harmless.
        let _ = std::fs::remove_file(entry.path());
        removed.push(stem);
    }
    removed
}

/// The advisory-lock key of transaction `id` (32 hex digits, a UUID): its first
/// 64 bits. Another application's lock on the same key only keeps a leftover
/// fork from being dropped, never the other way round.
pub(crate) fn lock_key(id: &str) -> Option<i64> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bits = u64::from_str_radix(id.get(..16)?, 16).ok()?;
    Some(i64::from_be_bytes(bits.to_be_bytes()))
}

/// Whether a transaction may drop catalog table `name`: the inlined-data tables
/// of older schema versions go when their rows are flushed.
pub fn may_be_dropped(name: &str) -> bool {
    name.starts_with("ducklake_inlined_data_") && name != "ducklake_inlined_data_tables"
}

/// The inlined-data tables of `tables` (the fork's base) that the working copy,
/// whose tables are `in_work`, no longer has: the transaction dropped them.
pub(crate) fn dropped_tables(tables: &[(String, Vec<String>)], in_work: &[String]) -> Vec<String> {
    tables
        .iter()
        .map(|(name, _)| name)
        .filter(|name| may_be_dropped(name) && !in_work.contains(name))
        .cloned()
        .collect()
}

/// The statements that apply a fork's changes to the real catalog, when the
/// tables named in `dropped` (see [`may_be_dropped`]) are gone from the working
/// copy: those are dropped from the real catalog.
pub(crate) fn merge_sql_dropping(
    dialect: Dialect,
    tables: &[(String, Vec<String>)],
    dropped: &[String],
    real: &dyn Fn(&str) -> String,
    base: &dyn Fn(&str) -> String,
    work: &dyn Fn(&str) -> String,
) -> String {
    let kept: Vec<(String, Vec<String>)> = tables
        .iter()
        .filter(|(name, _)| !dropped.contains(name))
        .cloned()
        .collect();
    let mut sql = merge_sql(dialect, &kept, real, base, work);
    for name in dropped {
        sql.push_str(&format!(
            "
DROP TABLE IF EXISTS {};",
            real(name)
        ));
    }
    sql
}

/// The statements that apply a fork's changes to the real catalog. `real`,
/// `base` and `work` qualify a catalog table name for each copy; `real_alias`
/// names the real table inside a correlated subquery.
pub(crate) fn merge_sql(
    dialect: Dialect,
    tables: &[(String, Vec<String>)],
    real: &dyn Fn(&str) -> String,
    base: &dyn Fn(&str) -> String,
    work: &dyn Fn(&str) -> String,
) -> String {
    let mut sql = Vec::new();
    // The snapshot table first: its primary key is the serialisation point.
    let mut ordered: Vec<&(String, Vec<String>)> = tables.iter().collect();
    ordered.sort_by_key(|(name, _)| name != "ducklake_snapshot");
    for (name, columns) in ordered {
        let cols = columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        let (target, correlated) = match dialect {
            Dialect::Sqlite => (real(name), real(name)),
            Dialect::Postgres => (format!("{} AS lq_real", real(name)), "lq_real".to_string()),
        };
        let same = match dialect {
            Dialect::Sqlite => "IS",
            Dialect::Postgres => "IS NOT DISTINCT FROM",
        };
        let matches = columns
            .iter()
            .map(|c| {
                let c = quote_ident(c);
                format!("lq_gone.{c} {same} {correlated}.{c}")
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        if name != "ducklake_snapshot" {
            sql.push(format!(
                "DELETE FROM {target} WHERE EXISTS (SELECT 1 FROM (SELECT {cols} FROM {b} EXCEPT \
                 SELECT {cols} FROM {w}) AS lq_gone WHERE {matches})",
                b = base(name),
                w = work(name),
            ));
        }
        sql.push(format!(
            "INSERT INTO {r} ({cols}) SELECT {cols} FROM {w} EXCEPT SELECT {cols} FROM {b}",
            r = real(name),
            b = base(name),
            w = work(name),
        ));
    }
    sql.join(";\n") + ";"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> Vec<(String, Vec<String>)> {
        vec![
            (
                "ducklake_table".into(),
                vec!["table_id".into(), "end_snapshot".into()],
            ),
            ("ducklake_snapshot".into(), vec!["snapshot_id".into()]),
        ]
    }

    #[test]
    fn snapshot_row_goes_first_and_is_only_inserted() {
        let sql = merge_sql(
            Dialect::Sqlite,
            &tables(),
            &|t| format!("main.{}", quote_ident(t)),
            &|t| format!("lq_base.{}", quote_ident(t)),
            &|t| format!("lq_work.{}", quote_ident(t)),
        );
        let statements: Vec<&str> = sql.split(";\n").collect();
        assert!(statements[0].starts_with("INSERT INTO main.\"ducklake_snapshot\""));
        assert!(!sql.contains("DELETE FROM main.\"ducklake_snapshot\""));
        assert!(statements[1].starts_with("DELETE FROM main.\"ducklake_table\" WHERE EXISTS"));
        assert!(
            statements[1]
                .contains("lq_gone.\"end_snapshot\" IS main.\"ducklake_table\".\"end_snapshot\"")
        );
        assert!(statements[2].contains("SELECT \"table_id\", \"end_snapshot\" FROM lq_work"));
    }

    #[test]
    fn abandoned_sqlite_forks_are_removed_and_live_ones_kept() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("lakeq-forks-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let fork = |id: &str| -> std::io::Result<PathBuf> {
            let stem = dir.join(format!("lakeq-txn-{id}"));
            for f in sqlite_fork_files(&stem.display().to_string()) {
                std::fs::write(f, b"copy")?;
            }
            Ok(stem)
        };
        let live_id = uuid::Uuid::new_v4().simple().to_string();
        let live = fork(&live_id)?;
        let lock = ForkLock::take(&live)?;
        // A dead process's fork: its lock file exists, nobody holds the lock.
        let dead_id = uuid::Uuid::new_v4().simple().to_string();
        let dead = fork(&dead_id)?;
        drop(ForkLock::take(&dead)?);
        // A fork of a lakeq version without locks, and someone else's file.
        let legacy = fork(&uuid::Uuid::new_v4().simple().to_string())?;
        std::fs::write(dir.join("lakeq-txn-notes.lock"), b"")?;

        let removed = remove_abandoned_sqlite_forks(&dir);
        assert_eq!(removed, vec![dead.display().to_string()]);
        let exists =
            |stem: &Path, suffix: &str| Path::new(&format!("{}{suffix}", stem.display())).exists();
        assert!(!exists(&dead, "-base.sqlite") && !exists(&dead, "-work.sqlite"));
        assert!(!exists(&dead, ".lock"));
        assert!(exists(&live, "-base.sqlite") && exists(&live, "-work.sqlite"));
        assert!(
            exists(&live, ".lock"),
            "a live transaction's lock file stays"
        );
        assert!(
            exists(&legacy, "-base.sqlite"),
            "forks without a lock are kept"
        );
        assert!(dir.join("lakeq-txn-notes.lock").exists());
        drop(lock);
        assert_eq!(
            remove_abandoned_sqlite_forks(&dir),
            vec![live.display().to_string()],
            "removable once its process lets go"
        );
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn lock_keys_come_from_the_transaction_id() {
        let id = uuid::Uuid::new_v4().simple().to_string();
        assert!(lock_key(&id).is_some());
        assert_eq!(
            lock_key("ffffffffffffffff0000000000000000"),
            Some(-1),
            "the top bit makes a negative bigint, as PostgreSQL takes it"
        );
        assert_eq!(lock_key("0000000000000001ffffffffffffffff"), Some(1));
        for bad in [
            "",
            "abc",
            "zzzzzzzzzzzzzzzz0000000000000000",
            "é0000000000000000000000000000000",
        ] {
            assert_eq!(lock_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn postgres_matches_nulls_with_is_not_distinct_from() {
        let sql = merge_sql(
            Dialect::Postgres,
            &tables(),
            &|t| format!("\"public\".{}", quote_ident(t)),
            &|t| format!("\"b\".{}", quote_ident(t)),
            &|t| format!("\"w\".{}", quote_ident(t)),
        );
        assert!(sql.contains("DELETE FROM \"public\".\"ducklake_table\" AS lq_real"));
        assert!(sql.contains("lq_gone.\"table_id\" IS NOT DISTINCT FROM lq_real.\"table_id\""));
    }
}
