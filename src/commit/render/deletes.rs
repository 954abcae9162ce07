//! Deletions: data files ended whole, delete files written or replaced, and
//! deletions recorded in the catalog (inlined rows, inlined positions of
//! Parquet rows).

use chrono::Utc;

use super::Renderer;
use crate::spec::changes::Change;
use crate::spec::{CatalogId, FileId};
use crate::store::Literal;
use crate::write::WrittenFile;

impl Renderer<'_> {
    /// Data files whose every row is deleted end (with their delete files).
    pub(super) fn end_files(&mut self) {
        let (b, c, s) = (self.b, self.c, self.s);
        let t = |name: &str| b.table(name);
        for (table_id, file_id) in &c.ended_files {
            self.sql.push(format!(
                "UPDATE {} SET end_snapshot = {s} WHERE data_file_id = {file_id} AND end_snapshot IS NULL",
                t("ducklake_data_file")
            ));
            self.sql.push(format!(
                "UPDATE {} SET end_snapshot = {s} WHERE data_file_id = {file_id} AND table_id = {table_id} AND end_snapshot IS NULL",
                t("ducklake_delete_file")
            ));
        }
    }

    /// The delete files written for this snapshot (`written`, in the order of
    /// the change set's), each replacing the data file's previous one (which is
    /// scheduled for deletion).
    pub(super) fn replace_delete_files(&mut self, written: &[WrittenFile]) {
        let (b, c, s) = (self.b, self.c, self.s);
        let lit = |v: Literal| b.literal(&v);
        let t = |name: &str| b.table(name);
        for (d, file) in c.delete_files.iter().zip(written) {
            let id = self.take_file_id();
            let earliest = d.previous.iter().map(|e| e.1).min();
            let begin = match &d.replaces {
                Some((old_id, old_path, old_begin)) => {
                    self.sql.push(format!(
                        "DELETE FROM {} WHERE delete_file_id = {old_id}",
                        t("ducklake_delete_file")
                    ));
                    self.sql.push(format!(
                        "INSERT INTO {} VALUES ({old_id}, {}, {}, {})",
                        t("ducklake_files_scheduled_for_deletion"),
                        lit(old_path.as_str().into()),
                        lit(true.into()),
                        lit(Literal::Timestamp(Utc::now()))
                    ));
                    *old_begin
                }
                None => s,
            };
            let (begin, partial_max) = if d.flushed {
                let latest_entry = d.previous.iter().map(|e| e.1).max().unwrap_or(begin);
                (
                    earliest.map_or(begin, |e| e.min(begin)),
                    latest_entry.to_string(),
                )
            } else if d.replaces.is_some() {
                (begin, s.to_string())
            } else {
                (begin, "NULL".to_string())
            };
            self.sql.push(format!(
                "INSERT INTO {} VALUES ({id}, {}, {begin}, NULL, {}, {}, {}, 'parquet', {}, {}, {}, NULL, {partial_max})",
                t("ducklake_delete_file"),
                d.table_id,
                d.data_file_id,
                lit(file.file_name.as_str().into()),
                lit(true.into()),
                file.record_count,
                file.file_size_bytes,
                lit(file.footer_size.into()),
            ));
        }
    }

    /// Inlined rows deleted: their versions end.
    pub(super) fn delete_inlined_rows(&mut self) {
        let (b, c, s) = (self.b, self.c, self.s);
        let t = |name: &str| b.table(name);
        for (_, inlined_table, row_ids) in &c.inlined_row_deletes {
            let ids = row_ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            self.sql.push(format!(
                "UPDATE {} SET end_snapshot = {s} WHERE row_id IN ({ids}) AND end_snapshot IS NULL",
                t(inlined_table)
            ));
        }
    }

    /// Inlined deletions of Parquet rows: positions in
    /// `ducklake_inlined_delete_<table>` (created when missing).
    pub(super) fn delete_inlined_file_rows(&mut self) {
        let (b, c, s) = (self.b, self.c, self.s);
        let t = |name: &str| b.table(name);
        let mut by_table: Vec<&(CatalogId, FileId, Vec<i64>)> =
            c.inlined_file_deletes.iter().collect();
        by_table.sort_by_key(|(t, f, _)| (*t, *f));
        let mut created_delete_tables: Vec<CatalogId> = Vec::new();
        for (table_id, file_id, positions) in by_table {
            let name = format!("ducklake_inlined_delete_{table_id}");
            if !created_delete_tables.contains(table_id) {
                created_delete_tables.push(*table_id);
                self.sql.push(format!(
                    "CREATE TABLE IF NOT EXISTS {}(file_id BIGINT, row_id BIGINT, begin_snapshot BIGINT)",
                    t(&name)
                ));
            }
            let values: Vec<String> = positions
                .iter()
                .map(|p| format!("({file_id}, {p}, {s})"))
                .collect();
            if !values.is_empty() {
                self.sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t(&name),
                    values.join(", ")
                ));
            }
        }
    }

    /// The change list's deletions: `deleted_from_table` for files, inlined
    /// deletions noted for the end of the list.
    pub(super) fn log_deletes(&mut self) {
        let c = self.c;
        let mut deleted = c.deleted_tables();
        deleted.retain(|t| !c.dropped_tables.contains(t));
        for table_id in deleted {
            if (c.delete_files.iter().any(|d| d.table_id == table_id)
                || c.ended_files.iter().any(|(t, _)| *t == table_id))
                && !self.changes.contains(&Change::DeletedFromTable(table_id))
            {
                self.changes.push(Change::DeletedFromTable(table_id));
            }
            if c.inlined_row_deletes.iter().any(|(t, _, _)| *t == table_id)
                || c.inlined_file_deletes
                    .iter()
                    .any(|(t, _, _)| *t == table_id)
            {
                self.inlined_deleted.push(table_id);
            }
        }
    }
}
