//! `ducklake_expire_snapshots`: forget old snapshots and what only they needed.
//!
//! As DuckDB 1.5.5 does it (SPEC §15): the chosen snapshots (never the latest)
//! and their change rows are deleted; then every catalog row that no remaining
//! snapshot can see is removed: data and delete files whose `[begin, end)` range
//! holds no remaining snapshot (their paths go to
//! `ducklake_files_scheduled_for_deletion`, for `ducklake_cleanup_old_files`),
//! tables dropped before every remaining snapshot (with their columns, stats,
//! partitions and inlined tables), and ended schemas, views, tags and macros.
//! Old versions of live tables and columns are kept. Expiring creates no
//! snapshot; it is one catalog transaction.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::spec::paths::resolve;
use crate::spec::rows::SnapshotRow;
use crate::spec::{CatalogId, SnapshotId};
use crate::store::{Literal, quote_text};

/// Which snapshots to expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpireWhich {
    /// Snapshots committed before this time.
    OlderThan(DateTime<Utc>),
    /// These snapshot ids.
    Versions(Vec<SnapshotId>),
}

/// `a, b, c` for an `IN (...)` list.
pub(crate) fn id_list(ids: impl IntoIterator<Item = i64>) -> String {
    ids.into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether any of `remaining` (sorted) lies in `[begin, end)`.
fn seen(remaining: &BTreeSet<SnapshotId>, begin: SnapshotId, end: SnapshotId) -> bool {
    remaining.range(begin..end).next().is_some()
}

/// A file the catalog forgets, with its path as `ducklake_files_scheduled_for_deletion` stores it.
#[derive(Debug, Clone)]
pub(crate) struct ScheduledFile {
    pub id: i64,
    /// Relative to the data path when `relative`, else absolute.
    pub path: String,
    pub relative: bool,
}

/// Absolute path of a file in a table, from catalog rows.
pub(crate) struct PathResolver {
    data_path: String,
    /// table id → absolute table directory.
    table_dirs: HashMap<CatalogId, String>,
}

impl PathResolver {
    /// Read every schema and table path (all versions: dropped tables too).
    pub(crate) async fn load(lake: &Lake) -> Result<Self> {
        let store = lake.store();
        let backend = store.backend();
        let data_path = lake.data_path().to_string();
        let mut schema_dirs: HashMap<CatalogId, String> = HashMap::new();
        for r in backend
            .query(&format!(
                "SELECT schema_id, path, path_is_relative FROM {} ORDER BY begin_snapshot",
                backend.table("ducklake_schema")
            ))
            .await?
        {
            let dir = resolve(&data_path, r.opt_text(1)?.as_deref(), r.bool_or(2, true)?);
            schema_dirs.insert(r.i64(0)?, dir);
        }
        let mut table_dirs = HashMap::new();
        for r in backend
            .query(&format!(
                "SELECT table_id, schema_id, path, path_is_relative FROM {} ORDER BY begin_snapshot",
                backend.table("ducklake_table")
            ))
            .await?
        {
            let schema_dir = schema_dirs
                .get(&r.i64(1)?)
                .cloned()
                .unwrap_or_else(|| data_path.clone());
            let dir = resolve(&schema_dir, r.opt_text(2)?.as_deref(), r.bool_or(3, true)?);
            table_dirs.insert(r.i64(0)?, dir);
        }
        Ok(Self {
            data_path,
            table_dirs,
        })
    }

    /// The absolute path of a file row of table `table_id`.
    pub(crate) fn absolute(&self, table_id: CatalogId, path: &str, relative: bool) -> String {
        match self.table_dirs.get(&table_id) {
            Some(dir) => resolve(dir, Some(path), relative),
            None => resolve(&self.data_path, Some(path), relative),
        }
    }

    /// `path` relative to the data path if it lies under it.
    pub(crate) fn scheduled(&self, id: i64, absolute: &str) -> ScheduledFile {
        match absolute.strip_prefix(&self.data_path) {
            Some(rest) => ScheduledFile {
                id,
                path: rest.to_string(),
                relative: true,
            },
            None => ScheduledFile {
                id,
                path: absolute.to_string(),
                relative: false,
            },
        }
    }

    /// The absolute path of a scheduled file.
    pub(crate) fn scheduled_absolute(&self, path: &str, relative: bool) -> String {
        resolve(&self.data_path, Some(path), relative)
    }
}

/// The snapshots `which` selects (never the latest), oldest first.
pub async fn snapshots_to_expire(lake: &Lake, which: &ExpireWhich) -> Result<Vec<SnapshotRow>> {
    let all = lake.store().snapshots().await?;
    let latest = all.iter().map(|s| s.snapshot_id).max();
    Ok(all
        .into_iter()
        .filter(|s| Some(s.snapshot_id) != latest)
        .filter(|s| match which {
            ExpireWhich::OlderThan(t) => s.snapshot_time < *t,
            ExpireWhich::Versions(v) => v.contains(&s.snapshot_id),
        })
        .collect())
}

/// Expire `snapshots` (from [`snapshots_to_expire`]) in one catalog transaction.
pub async fn expire_snapshots(lake: &Lake, snapshots: &[SnapshotRow]) -> Result<()> {
    if snapshots.is_empty() {
        return Ok(());
    }
    if lake.read_only() {
        return Err(Error::Unsupported(
            "expiring snapshots of a lake attached read only".into(),
        ));
    }
    let store = lake.store();
    let backend = store.backend();
    let t = |name: &str| backend.table(name);
    let expired: BTreeSet<SnapshotId> = snapshots.iter().map(|s| s.snapshot_id).collect();
    let remaining: BTreeSet<SnapshotId> = store
        .snapshots()
        .await?
        .into_iter()
        .map(|s| s.snapshot_id)
        .filter(|id| !expired.contains(id))
        .collect();
    let paths = PathResolver::load(lake).await?;

    // Tables every version of which ended before any remaining snapshot.
    let mut table_versions: HashMap<CatalogId, bool> = HashMap::new();
    for r in backend
        .query(&format!(
            "SELECT table_id, begin_snapshot, end_snapshot FROM {}",
            t("ducklake_table")
        ))
        .await?
    {
        let visible = match r.opt_i64(2)? {
            None => true,
            Some(end) => seen(&remaining, r.i64(1)?, end),
        };
        *table_versions.entry(r.i64(0)?).or_insert(false) |= visible;
    }
    let dropped_tables: BTreeSet<CatalogId> = table_versions
        .into_iter()
        .filter(|(_, visible)| !visible)
        .map(|(id, _)| id)
        .collect();

    // Data files no remaining snapshot sees.
    let mut data_files = Vec::new();
    for r in backend
        .query(&format!(
            "SELECT data_file_id, table_id, path, path_is_relative, begin_snapshot, end_snapshot FROM {}",
            t("ducklake_data_file")
        ))
        .await?
    {
        let table_id = r.i64(1)?;
        let gone = dropped_tables.contains(&table_id)
            || r.opt_i64(5)?
                .is_some_and(|end| !seen(&remaining, r.i64(4).unwrap_or(0), end));
        if gone {
            let absolute = paths.absolute(table_id, &r.text(2)?, r.bool_or(3, true)?);
            data_files.push(paths.scheduled(r.i64(0)?, &absolute));
        }
    }
    let gone_data: BTreeSet<i64> = data_files.iter().map(|f| f.id).collect();
    let mut delete_files = Vec::new();
    for r in backend
        .query(&format!(
            "SELECT delete_file_id, table_id, data_file_id, path, path_is_relative, begin_snapshot, end_snapshot FROM {}",
            t("ducklake_delete_file")
        ))
        .await?
    {
        let table_id = r.i64(1)?;
        let gone = dropped_tables.contains(&table_id)
            || gone_data.contains(&r.i64(2)?)
            || r.opt_i64(6)?
                .is_some_and(|end| !seen(&remaining, r.i64(5).unwrap_or(0), end));
        if gone {
            let absolute = paths.absolute(table_id, &r.text(3)?, r.bool_or(4, true)?);
            delete_files.push(paths.scheduled(r.i64(0)?, &absolute));
        }
    }

    let mut sql = String::new();
    let expired_ids = id_list(expired.iter().copied());
    for table in ["ducklake_snapshot", "ducklake_snapshot_changes"] {
        sql.push_str(&format!(
            "DELETE FROM {} WHERE snapshot_id IN ({expired_ids});\n",
            t(table)
        ));
    }
    let now = backend.literal(&Literal::Timestamp(Utc::now()));
    let schedule = |files: &[ScheduledFile]| -> String {
        let values = files
            .iter()
            .map(|f| {
                format!(
                    "({}, {}, {}, {now})",
                    f.id,
                    quote_text(&f.path),
                    backend.literal(&Literal::Bool(f.relative))
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "INSERT INTO {} (data_file_id, path, path_is_relative, schedule_start) VALUES {values};\n",
            t("ducklake_files_scheduled_for_deletion")
        )
    };
    if !data_files.is_empty() {
        let ids = id_list(gone_data.iter().copied());
        for table in [
            "ducklake_data_file",
            "ducklake_file_column_stats",
            "ducklake_file_variant_stats",
            "ducklake_file_partition_value",
        ] {
            if backend.table_exists(table).await? {
                sql.push_str(&format!(
                    "DELETE FROM {} WHERE data_file_id IN ({ids});\n",
                    t(table)
                ));
            }
        }
        sql.push_str(&schedule(&data_files));
    }
    if !delete_files.is_empty() {
        let ids = id_list(delete_files.iter().map(|f| f.id));
        sql.push_str(&format!(
            "DELETE FROM {} WHERE delete_file_id IN ({ids});\n",
            t("ducklake_delete_file")
        ));
        sql.push_str(&schedule(&delete_files));
    }
    if !dropped_tables.is_empty() {
        let ids = id_list(dropped_tables.iter().copied());
        let mut inlined: Vec<String> = backend
            .query(&format!(
                "SELECT table_name FROM {} WHERE table_id IN ({ids})",
                t("ducklake_inlined_data_tables")
            ))
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<_>>()?;
        inlined.extend(
            dropped_tables
                .iter()
                .map(|id| format!("ducklake_inlined_delete_{id}")),
        );
        for table in [
            "ducklake_table",
            "ducklake_table_stats",
            "ducklake_table_column_stats",
            "ducklake_partition_info",
            "ducklake_partition_column",
            "ducklake_column",
            "ducklake_column_tag",
            "ducklake_sort_info",
            "ducklake_sort_expression",
            "ducklake_schema_versions",
            "ducklake_inlined_data_tables",
            "ducklake_column_mapping",
        ] {
            if backend.table_exists(table).await? {
                sql.push_str(&format!(
                    "DELETE FROM {} WHERE table_id IN ({ids});\n",
                    t(table)
                ));
            }
        }
        for table in inlined {
            sql.push_str(&format!("DROP TABLE IF EXISTS {};\n", t(&table)));
        }
    }
    let snapshot_table = t("ducklake_snapshot");
    for table in [
        "ducklake_schema",
        "ducklake_view",
        "ducklake_tag",
        "ducklake_macro",
    ] {
        if backend.table_exists(table).await? {
            sql.push_str(&format!(
                "DELETE FROM {} WHERE end_snapshot IS NOT NULL AND NOT EXISTS (\
                 SELECT snapshot_id FROM {snapshot_table} \
                 WHERE snapshot_id >= begin_snapshot AND snapshot_id < end_snapshot);\n",
                t(table)
            ));
        }
    }
    for table in ["ducklake_macro_impl", "ducklake_macro_parameters"] {
        if backend.table_exists(table).await? {
            sql.push_str(&format!(
                "DELETE FROM {tbl} WHERE NOT EXISTS (SELECT 1 FROM {m} m WHERE m.macro_id = {tbl}.macro_id);\n",
                tbl = t(table),
                m = t("ducklake_macro")
            ));
        }
    }
    if backend.table_exists("ducklake_name_mapping").await? {
        sql.push_str(&format!(
            "DELETE FROM {tbl} WHERE NOT EXISTS (SELECT 1 FROM {m} m WHERE m.mapping_id = {tbl}.mapping_id);\n",
            tbl = t("ducklake_name_mapping"),
            m = t("ducklake_column_mapping")
        ));
    }
    backend.execute_batch(&sql).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_seen_by_a_remaining_snapshot_inside_it() {
        let remaining: BTreeSet<SnapshotId> = [3, 7].into_iter().collect();
        assert!(seen(&remaining, 2, 4));
        assert!(!seen(&remaining, 4, 7), "end is exclusive");
        assert!(seen(&remaining, 7, 8));
        assert!(!seen(&remaining, 0, 3));
    }
}
