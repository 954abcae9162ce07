//! Data: name mappings of registered files, new data files with their
//! statistics and partition values, inlined inserts, and the tables'
//! statistics (`ducklake_table_stats`, `ducklake_table_column_stats`) after them.

use std::collections::HashMap;

use super::Renderer;
use super::stats::{
    Bound, ColumnBounds, file_stats_values, leaf_types, merge_column_stats, partition_values_sql,
    table_column_stats_values,
};
use crate::commit::{AddedFile, check_counters};
use crate::error::Result;
use crate::spec::changes::Change;
use crate::spec::rows::TableStatsRow;
use crate::spec::values::parse_stat;
use crate::spec::{CatalogId, ColumnId};
use crate::store::Literal;

impl Renderer<'_> {
    /// The `map_by_name` mappings of registered files: their ids come from
    /// `next_file_id` before the files'.
    pub(super) fn name_mappings(&mut self) {
        let (b, c) = (self.b, self.c);
        let lit = |v: Literal| b.literal(&v);
        let t = |name: &str| b.table(name);
        self.mapping_ids = Vec::with_capacity(c.name_mappings.len());
        for m in &c.name_mappings {
            let mapping_id = self.take_file_id();
            self.mapping_ids.push(mapping_id);
            self.sql.push(format!(
                "INSERT INTO {} VALUES ({mapping_id}, {}, 'map_by_name')",
                t("ducklake_column_mapping"),
                m.table_id
            ));
            let rows: Vec<String> = m
                .rows(mapping_id)
                .iter()
                .map(|r| {
                    format!(
                        "({mapping_id}, {}, {}, {}, {}, {})",
                        r.column_id,
                        lit(r.source_name.as_str().into()),
                        r.target_field_id,
                        lit(r.parent_column.into()),
                        lit(r.is_partition.into())
                    )
                })
                .collect();
            if !rows.is_empty() {
                self.sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_name_mapping"),
                    rows.join(", ")
                ));
            }
        }
    }

    /// New data files and inlined inserts, table by table (in id order), each
    /// table's statistics updated with what they add.
    pub(super) async fn insert_data(&mut self) -> Result<()> {
        let (b, c, s) = (self.b, self.c, self.s);
        let store = self.lake.store();
        let lit = |v: Literal| b.literal(&v);
        let t = |name: &str| b.table(name);
        let mut files_by_table: HashMap<CatalogId, Vec<&AddedFile>> = HashMap::new();
        for f in &c.added_files {
            files_by_table
                .entry(self.table_id_of(f.table)?)
                .or_default()
                .push(f);
        }
        for ins in &c.inlined_inserts {
            files_by_table
                .entry(self.table_id_of(ins.table)?)
                .or_default();
        }
        let all_stats: HashMap<CatalogId, TableStatsRow> = if files_by_table.is_empty() {
            HashMap::new()
        } else {
            store
                .table_stats()
                .await?
                .into_iter()
                .map(|r| (r.table_id, r))
                .collect()
        };
        let mut by_table: Vec<(&CatalogId, &Vec<&AddedFile>)> = files_by_table.iter().collect();
        by_table.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (&table_id, files) in by_table {
            let mut stats = all_stats.get(&table_id).cloned().unwrap_or(TableStatsRow {
                table_id,
                record_count: 0,
                next_row_id: 0,
                file_size_bytes: 0,
            });
            check_counters(
                &format!("table {table_id}'s statistics"),
                &[
                    ("record_count", stats.record_count),
                    ("next_row_id", stats.next_row_id),
                    ("file_size_bytes", stats.file_size_bytes),
                ],
            )?;
            let types = leaf_types(
                self.lake,
                c,
                table_id,
                &self.new_table_ids,
                self.latest.snapshot_id,
            )
            .await?;
            let had_rows = stats.record_count > 0;
            let mut merged: HashMap<ColumnId, ColumnBounds> = HashMap::new();
            for row in store.table_column_stats(table_id).await? {
                let dt = types.get(&row.column_id);
                let parse = |v: &Option<String>| {
                    v.as_deref()
                        .and_then(|t| dt.and_then(|dt| parse_stat(t, dt)))
                };
                let bounds = match (parse(&row.min_value), parse(&row.max_value)) {
                    (Some(min), Some(max)) => Bound::Known(min, max),
                    _ => Bound::Unknown,
                };
                merged.insert(
                    row.column_id,
                    ColumnBounds {
                        contains_null: row.contains_null,
                        contains_nan: row.contains_nan,
                        bounds,
                    },
                );
            }
            for added in files {
                let file = &added.file;
                let data_file_id = self.take_file_id();
                if let Some((_, values)) = &added.partition {
                    self.sql
                        .extend(partition_values_sql(b, data_file_id, table_id, values));
                }
                let mapping_id = self.mapping_of(added.mapping)?;
                // A registered file keeps its absolute path, as DuckDB stores it.
                let (path, relative) = match mapping_id {
                    Some(_) => (file.url.as_str(), false),
                    None => (file.file_name.as_str(), true),
                };
                self.sql.push(format!(
                    "INSERT INTO {} VALUES ({data_file_id}, {table_id}, {s}, NULL, NULL, {}, {}, 'parquet', {}, {}, {}, {}, {}, NULL, {}, NULL)",
                    t("ducklake_data_file"),
                    lit(path.into()),
                    lit(relative.into()),
                    file.record_count,
                    file.file_size_bytes,
                    lit(file.footer_size.into()),
                    stats.next_row_id,
                    lit(added.partition.as_ref().map(|p| p.0).into()),
                    lit(mapping_id.into()),
                ));
                stats.next_row_id += file.record_count;
                stats.record_count += file.record_count;
                stats.file_size_bytes += file.file_size_bytes;
                let mut stat_rows = Vec::new();
                for cs in &file.column_stats {
                    stat_rows.push(file_stats_values(b, data_file_id, table_id, cs));
                    merge_column_stats(&mut merged, &types, had_rows, cs);
                }
                if !stat_rows.is_empty() {
                    self.sql.push(format!(
                        "INSERT INTO {} VALUES {}",
                        t("ducklake_file_column_stats"),
                        stat_rows.join(", ")
                    ));
                }
            }
            self.insert_inlined(
                table_id,
                files.is_empty(),
                &mut stats,
                &mut merged,
                &types,
                had_rows,
            )
            .await?;
            self.sql.push(format!(
                "DELETE FROM {} WHERE table_id = {table_id}",
                t("ducklake_table_stats")
            ));
            self.sql.push(format!(
                "INSERT INTO {} VALUES ({table_id}, {}, {}, {})",
                t("ducklake_table_stats"),
                stats.record_count,
                stats.next_row_id,
                stats.file_size_bytes
            ));
            self.sql.push(format!(
                "DELETE FROM {} WHERE table_id = {table_id}",
                t("ducklake_table_column_stats")
            ));
            let mut by_column: Vec<(&ColumnId, &ColumnBounds)> = merged.iter().collect();
            by_column.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let rows: Vec<String> = by_column
                .into_iter()
                .map(|(id, m)| table_column_stats_values(b, table_id, *id, m))
                .collect();
            if !rows.is_empty() {
                self.sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_table_column_stats"),
                    rows.join(", ")
                ));
            }
            if !files.is_empty() {
                self.changes.push(Change::InsertedIntoTable(table_id));
            }
        }
        Ok(())
    }
}
