//! Removing files no snapshot needs: `ducklake_cleanup_old_files` (the files
//! expiry and compaction scheduled for deletion) and
//! `ducklake_delete_orphaned_files` (files under the data path the catalog does
//! not know, e.g. left by a writer killed before its commit).
//!
//! Both take DuckDB's arguments: `cleanup_all => true`, or `older_than => ts`,
//! else the lake's `delete_older_than` option (default 2 days); `dry_run =>
//! true` only lists. They return the absolute paths, and create no snapshot.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use super::expire::{PathResolver, id_list};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::storage::{locate, object_store_for};

/// Which files are old enough to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// Every candidate, however recent.
    All,
    /// Candidates scheduled (or last modified) before this time.
    OlderThan(DateTime<Utc>),
    /// The lake's `delete_older_than` option, default 2 days.
    Default,
}

/// Parse DuckDB interval text such as `'2 days'`, `'1 week'`, `'90 minutes'` or
/// `'1 day 12 hours'` (months count 30 days, years 365).
pub fn parse_interval(text: &str) -> Result<Duration> {
    let bad = || Error::Unsupported(format!("'{text}' is not an interval such as '2 days'"));
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(2) {
        return Err(bad());
    }
    let mut total = Duration::zero();
    for pair in words.chunks_exact(2) {
        let [number, unit] = pair else {
            return Err(bad());
        };
        let n: f64 = number.parse().map_err(|_| bad())?;
        let unit = unit.to_ascii_lowercase();
        let unit = unit.trim_end_matches('s');
        let micros_per: f64 = match unit {
            "microsecond" | "us" => 1.0,
            "millisecond" | "m" => 1e3,
            "second" | "sec" => 1e6,
            "minute" | "min" => 60e6,
            "hour" | "h" => 3600e6,
            "day" | "d" => 86_400e6,
            "week" => 7.0 * 86_400e6,
            "month" | "mon" => 30.0 * 86_400e6,
            "year" | "y" => 365.0 * 86_400e6,
            _ => return Err(bad()),
        };
        #[allow(clippy::cast_possible_truncation)]
        let micros = (n * micros_per) as i64;
        total = total
            .checked_add(&Duration::microseconds(micros))
            .ok_or_else(out_of_range(text))?;
    }
    Ok(total)
}

/// The time `interval` (interval text, see [`parse_interval`]) before now; an error
/// when that falls outside the dates lakeq can represent.
pub fn before_now(interval: &str) -> Result<DateTime<Utc>> {
    Utc::now()
        .checked_sub_signed(parse_interval(interval)?)
        .ok_or_else(out_of_range(interval))
}

fn out_of_range(interval: &str) -> impl FnOnce() -> Error {
    move || Error::Unsupported(format!("interval '{interval}' is out of range"))
}

/// The cut-off time for `age`, `None` for [`Age::All`].
async fn cutoff(lake: &Lake, age: Age) -> Result<Option<DateTime<Utc>>> {
    Ok(match age {
        Age::All => None,
        Age::OlderThan(t) => Some(t),
        Age::Default => {
            let metadata = lake.store().metadata().await?;
            let text = metadata
                .rows
                .iter()
                .find(|(k, v, scope, _)| {
                    k == "delete_older_than" && scope.is_none() && !v.trim().is_empty()
                })
                .map_or("2 days", |(_, v, _, _)| v.as_str());
            Some(before_now(text)?)
        }
    })
}

/// Delete a file; a file already gone counts as deleted.
pub(crate) async fn remove(path: &str) -> Result<()> {
    let store = object_store_for(path)?;
    match store.delete(&locate(path)?.path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(Error::ObjectStore(e)),
    }
}

/// `ducklake_cleanup_old_files`: delete the files scheduled for deletion (by
/// expiry or compaction) before the cut-off, then forget them. Returns their
/// absolute paths.
pub async fn cleanup_old_files(lake: &Lake, age: Age, dry_run: bool) -> Result<Vec<String>> {
    let cutoff = cutoff(lake, age).await?;
    let backend = lake.store().backend();
    let table = backend.table("ducklake_files_scheduled_for_deletion");
    let rows = backend
        .query(&format!(
            "SELECT data_file_id, path, path_is_relative, schedule_start FROM {table}"
        ))
        .await?;
    let paths = PathResolver::load(lake).await?;
    let mut ids = Vec::new();
    let mut out = Vec::new();
    for r in rows {
        let started = r.timestamp(3)?;
        if cutoff.is_some_and(|c| started >= c) {
            continue;
        }
        ids.push(r.i64(0)?);
        out.push(paths.scheduled_absolute(&r.text(1)?, r.bool_or(2, true)?));
    }
    if dry_run || out.is_empty() {
        return Ok(out);
    }
    if lake.read_only() {
        return Err(Error::Unsupported(
            "cleaning up files of a lake attached read only".into(),
        ));
    }
    // Files first: a crash in between leaves rows whose files are gone, which
    // the next cleanup removes (a missing file counts as deleted).
    for path in &out {
        remove(path).await?;
    }
    backend
        .execute_batch(&format!(
            "DELETE FROM {table} WHERE data_file_id IN ({});",
            id_list(ids)
        ))
        .await?;
    Ok(out)
}

/// `ducklake_delete_orphaned_files`: delete Parquet files under the data path
/// that no data file, delete file or scheduled deletion refers to, and (on a
/// local data path) the partial uploads of killed writers, last modified before
/// the cut-off. Returns their absolute paths.
pub async fn delete_orphaned_files(lake: &Lake, age: Age, dry_run: bool) -> Result<Vec<String>> {
    let cutoff = cutoff(lake, age).await?;
    let backend = lake.store().backend();
    let paths = PathResolver::load(lake).await?;
    let mut known: HashSet<String> = HashSet::new();
    for (table, id_column) in [
        ("ducklake_data_file", "data_file_id"),
        ("ducklake_delete_file", "delete_file_id"),
    ] {
        for r in backend
            .query(&format!(
                "SELECT {id_column}, table_id, path, path_is_relative FROM {}",
                backend.table(table)
            ))
            .await?
        {
            known.insert(paths.absolute(r.i64(1)?, &r.text(2)?, r.bool_or(3, true)?));
        }
    }
    for r in backend
        .query(&format!(
            "SELECT path, path_is_relative FROM {}",
            backend.table("ducklake_files_scheduled_for_deletion")
        ))
        .await?
    {
        known.insert(paths.scheduled_absolute(&r.text(0)?, r.bool_or(1, true)?));
    }
    let data_path = lake.data_path().to_string();
    let location = locate(&data_path)?;
    let store = object_store_for(&data_path)?;
    // What comes before the object path: nothing locally, `s3://bucket` on S3.
    let prefix = match data_path.split_once("://") {
        Some((scheme, rest)) if scheme != "file" => {
            format!("{scheme}://{}", rest.split('/').next().unwrap_or_default())
        }
        _ => String::new(),
    };
    let listing: Vec<object_store::ObjectMeta> =
        store.list(Some(&location.path)).try_collect().await?;
    let mut out = Vec::new();
    for meta in listing {
        let absolute = format!("{prefix}/{}", meta.location);
        if !absolute.ends_with(".parquet") || known.contains(&absolute) {
            continue;
        }
        if cutoff.is_some_and(|c| meta.last_modified >= c) {
            continue;
        }
        out.push(absolute);
    }
    if prefix.is_empty() {
        out.extend(partial_uploads(
            &std::path::Path::new("/").join(location.path.as_ref()),
            cutoff,
        ));
    }
    out.sort();
    if dry_run || out.is_empty() {
        return Ok(out);
    }
    if lake.read_only() {
        return Err(Error::Unsupported(
            "deleting files of a lake attached read only".into(),
        ));
    }
    for path in &out {
        let local = std::path::Path::new(path);
        let partial = prefix.is_empty()
            && local
                .file_name()
                .is_some_and(|n| is_partial_upload(&n.to_string_lossy()));
        if partial {
            // object_store does not address partial uploads: remove them directly.
            match std::fs::remove_file(local) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(
                        std::io::Error::new(e.kind(), format!("removing {path}: {e}")).into(),
                    );
                }
            }
        } else {
            remove(path).await?;
        }
    }
    Ok(out)
}

/// Whether `name` is a partial upload of a lakeq data file: object_store writes
/// a local file as `<name>#<n>` and renames it when complete, so a writer killed
/// in the middle leaves `ducklake-<uuid>.parquet#<n>` behind (object_store's own
/// listing hides such names).
fn is_partial_upload(name: &str) -> bool {
    name.split_once(".parquet#").is_some_and(|(stem, n)| {
        stem.starts_with("ducklake-") && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Partial uploads (see [`is_partial_upload`]) under the local folder `dir`,
/// last modified before the cut-off, as absolute paths. Unreadable folders
/// and files are skipped: they are not lakeq's to judge.
fn partial_uploads(dir: &std::path::Path, cutoff: Option<DateTime<Utc>>) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            if !kind.is_file() || !is_partial_upload(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(DateTime::<Utc>::from);
            let old_enough = match (cutoff, modified) {
                (None, _) => true,
                (Some(c), Ok(m)) => m < c,
                (Some(_), Err(_)) => false,
            };
            if old_enough {
                out.push(path.display().to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_like_duckdb_options() -> Result<()> {
        assert_eq!(parse_interval("2 days")?, Duration::days(2));
        assert_eq!(parse_interval("1 week")?, Duration::days(7));
        assert_eq!(parse_interval("1 millisecond")?, Duration::milliseconds(1));
        assert_eq!(parse_interval("1 day 12 hours")?, Duration::hours(36));
        assert!(parse_interval("soon").is_err());
        Ok(())
    }

    #[test]
    fn only_lakeqs_partial_uploads_match() {
        for yes in [
            "ducklake-0f3c.parquet#1",
            "ducklake-01234567-89ab-cdef-0123-456789abcdef.parquet#12",
        ] {
            assert!(is_partial_upload(yes), "{yes}");
        }
        for no in [
            "ducklake-0f3c.parquet",
            "ducklake-0f3c.parquet#",
            "ducklake-0f3c.parquet#1a",
            "other.parquet#1",
            "ducklake-0f3c.csv#1",
            "notes#1",
        ] {
            assert!(!is_partial_upload(no), "{no}");
        }
    }

    #[test]
    fn partial_uploads_respect_the_cutoff() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("lakeq-partial-{}", uuid::Uuid::new_v4()));
        let sub = dir.join("main").join("t");
        std::fs::create_dir_all(&sub)?;
        for name in ["ducklake-a.parquet#3", "ducklake-b.parquet", "x.parquet#3"] {
            std::fs::write(sub.join(name), b"partial")?;
        }
        let found = partial_uploads(&dir, None);
        assert_eq!(
            found,
            vec![sub.join("ducklake-a.parquet#3").display().to_string()]
        );
        let an_hour_ago = Utc::now() - Duration::hours(1);
        assert!(
            partial_uploads(&dir, Some(an_hour_ago)).is_empty(),
            "too recent"
        );
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn huge_intervals_are_errors_not_panics() -> Result<()> {
        assert!(before_now("2 days")? < Utc::now());
        for huge in ["300000 years", "-300000 years", "1e300 years", "inf days"] {
            assert!(before_now(huge).is_err(), "{huge}");
        }
        let many = "1e300 years ".repeat(2_000);
        assert!(parse_interval(&many).is_err());
        Ok(())
    }
}
