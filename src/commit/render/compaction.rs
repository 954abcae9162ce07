//! Compaction: files merged (`ducklake_merge_adjacent_files`) or rewritten
//! without their deleted rows (`ducklake_rewrite_data_files`).

use chrono::Utc;

use super::Renderer;
use super::stats::{
    file_stats_values, leaf_types, live_column_bounds, partition_values_sql,
    table_column_stats_values,
};
use crate::error::Result;
use crate::spec::changes::Change;
use crate::spec::{CatalogId, FileId};
use crate::store::Literal;
use crate::write::WrittenFile;

impl Renderer<'_> {
    /// Sources out (scheduled for deletion, or ended for a rewrite), the new
    /// file in. A merge leaves the table statistics as they are (the same rows,
    /// the same row ids); a rewrite recomputes the table's bounds from its live
    /// files.
    pub(super) async fn compact(&mut self) -> Result<()> {
        let (b, c, s) = (self.b, self.c, self.s);
        let lit = |v: Literal| b.literal(&v);
        let t = |name: &str| b.table(name);
        let mut merged_tables: Vec<CatalogId> = Vec::new();
        let mut rewritten_tables: Vec<CatalogId> = Vec::new();
        for m in &c.merges {
            let data_file_id = self.take_file_id();
            let ids = m
                .sources
                .iter()
                .map(|(id, _, _)| id.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            if m.rewrite {
                // The sources stay for time travel; the table's row count drops by the
                // deleted rows the new file leaves out (as DuckDB recomputes it).
                for table in ["ducklake_data_file", "ducklake_delete_file"] {
                    self.sql.push(format!(
                        "UPDATE {} SET end_snapshot = {s} WHERE data_file_id IN ({ids}) AND end_snapshot IS NULL",
                        t(table)
                    ));
                }
                self.sql.push(format!(
                    "UPDATE {} SET record_count = record_count - {} WHERE table_id = {}",
                    t("ducklake_table_stats"),
                    m.dropped_rows,
                    m.table_id
                ));
            } else {
                for table in [
                    "ducklake_data_file",
                    "ducklake_file_column_stats",
                    "ducklake_file_partition_value",
                    "ducklake_file_variant_stats",
                ] {
                    if table == "ducklake_file_variant_stats" && !b.table_exists(table).await? {
                        continue;
                    }
                    self.sql.push(format!(
                        "DELETE FROM {} WHERE data_file_id IN ({ids})",
                        t(table)
                    ));
                }
                let now = lit(Literal::Timestamp(Utc::now()));
                let scheduled: Vec<String> = m
                    .sources
                    .iter()
                    .map(|(id, path, relative)| {
                        format!(
                            "({id}, {}, {}, {now})",
                            lit(path.as_str().into()),
                            lit((*relative).into())
                        )
                    })
                    .collect();
                self.sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_files_scheduled_for_deletion"),
                    scheduled.join(", ")
                ));
            }
            if let Some((_, values)) = &m.partition {
                self.sql
                    .extend(partition_values_sql(b, data_file_id, m.table_id, values));
            }
            // A merged file keeps its sources' first snapshot and row ids; a rewritten
            // one begins now and carries its row ids in `_ducklake_internal_row_id`.
            let (begin, row_id_start, partial_max) = if m.rewrite {
                (s, "NULL".to_string(), "NULL".to_string())
            } else {
                (
                    m.begin_snapshot,
                    m.row_id_start.to_string(),
                    m.partial_max.to_string(),
                )
            };
            self.sql.push(format!(
                "INSERT INTO {} VALUES ({data_file_id}, {}, {begin}, NULL, NULL, {}, {}, 'parquet', {}, {}, {}, {row_id_start}, {}, NULL, NULL, {partial_max})",
                t("ducklake_data_file"),
                m.table_id,
                lit(m.file.file_name.as_str().into()),
                lit(true.into()),
                m.file.record_count,
                m.file.file_size_bytes,
                lit(m.file.footer_size.into()),
                lit(m.partition.as_ref().map(|p| p.0).into()),
            ));
            let stat_rows: Vec<String> = m
                .file
                .column_stats
                .iter()
                .map(|cs| file_stats_values(b, data_file_id, m.table_id, cs))
                .collect();
            if !stat_rows.is_empty() {
                self.sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_file_column_stats"),
                    stat_rows.join(", ")
                ));
            }
            let tables = if m.rewrite {
                &mut rewritten_tables
            } else {
                &mut merged_tables
            };
            if !tables.contains(&m.table_id) {
                tables.push(m.table_id);
            }
        }
        for table_id in merged_tables {
            self.changes.push(Change::MergeAdjacent(table_id));
        }
        for table_id in rewritten_tables {
            // The rewritten files' deleted values leave the table's bounds: they are
            // recomputed from the live files, as DuckDB does (its `min`/`max` answers
            // come from them).
            let removed: Vec<FileId> = c
                .merges
                .iter()
                .filter(|m| m.rewrite && m.table_id == table_id)
                .flat_map(|m| m.sources.iter().map(|(id, _, _)| *id))
                .collect();
            let added: Vec<&WrittenFile> = c
                .merges
                .iter()
                .filter(|m| m.rewrite && m.table_id == table_id)
                .map(|m| &m.file)
                .collect();
            let latest = self.latest.snapshot_id;
            let types = leaf_types(self.lake, c, table_id, &[], latest).await?;
            let rows = live_column_bounds(self.lake, table_id, latest, &types, &removed, &added)
                .await?
                .into_iter()
                .map(|(id, m)| table_column_stats_values(b, table_id, id, &m))
                .collect::<Vec<_>>();
            self.sql.push(format!(
                "DELETE FROM {} WHERE table_id = {table_id}",
                t("ducklake_table_column_stats")
            ));
            if !rows.is_empty() {
                self.sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_table_column_stats"),
                    rows.join(", ")
                ));
            }
            self.changes.push(Change::RewriteDelete(table_id));
        }
        Ok(())
    }
}
