//! Data inlining: rows inserted into a table's inlined table, inlined tables
//! flushed to Parquet, and the inlined tables a new column layout needs.

use std::collections::HashMap;

use datafusion::arrow::datatypes::DataType;

use super::Renderer;
use super::columns::{columns_after, new_column_rows};
use super::stats::{ColumnBounds, file_stats_values, merge_column_stats, partition_values_sql};
use crate::commit::inline;
use crate::error::{Error, Result};
use crate::spec::changes::Change;
use crate::spec::rows::{ColumnRow, TableRow, TableStatsRow};
use crate::spec::{CatalogId, ColumnId};
use crate::store::Literal;

impl Renderer<'_> {
    /// The change set's inlined inserts into `table_id`: its inlined table
    /// created if needed (now), the rows queued for after the deletes, the
    /// table's statistics counted on. `no_files`: the commit writes the table
    /// no data file.
    pub(super) async fn insert_inlined(
        &mut self,
        table_id: CatalogId,
        no_files: bool,
        stats: &mut TableStatsRow,
        merged: &mut HashMap<ColumnId, ColumnBounds>,
        types: &HashMap<ColumnId, DataType>,
        had_rows: bool,
    ) -> Result<()> {
        let (b, c, s) = (self.b, self.c, self.s);
        let t = |name: &str| b.table(name);
        let inlined: Vec<&inline::InlinedInsert> = c
            .inlined_inserts
            .iter()
            .filter(|i| self.table_id_of(i.table).is_ok_and(|t| t == table_id))
            .collect();
        if inlined.is_empty() {
            return Ok(());
        }
        let created = self
            .new_table_ids
            .iter()
            .position(|id| *id == table_id)
            .and_then(|i| c.new_tables.get(i));
        let current = match created {
            Some(nt) => new_column_rows(table_id, s, None, &nt.columns),
            None => {
                self.lake
                    .store()
                    .table_columns(table_id, self.latest.snapshot_id)
                    .await?
            }
        };
        let mut top: Vec<&ColumnRow> = current
            .iter()
            .filter(|r| r.parent_column.is_none())
            .collect();
        top.sort_by_key(|r| r.column_order);
        let top: Vec<ColumnId> = top.iter().map(|r| r.column_id).collect();
        if inlined.iter().any(|i| i.column_ids != top) {
            return Err(Error::CommitConflict {
                message: format!(
                    "table {table_id} changed its columns in a concurrent commit while rows \
                     were being inserted into it; run the statement again"
                ),
                retryable: false,
            });
        }
        let (name, created_sql) = inline::ensure_table(
            self.lake,
            b,
            table_id,
            &current,
            s,
            &mut self.schema_version,
            self.prior_schema_version,
            created.is_none(),
        )
        .await?;
        // Created first (the rows go in after deletes, at the end).
        self.sql.extend(created_sql);
        self.inlined_ready.push(table_id);
        for ins in inlined {
            let n = i64::try_from(ins.rows.len()).unwrap_or(i64::MAX);
            let ids: Vec<i64> = match &ins.row_ids {
                Some(ids) => ids.clone(),
                None => {
                    let first = stats.next_row_id;
                    stats.next_row_id += n;
                    (first..first + n).collect()
                }
            };
            stats.record_count += n;
            let values: Vec<String> = ins
                .rows
                .iter()
                .zip(&ids)
                .map(|(row, id)| format!("({id}, {s}, NULL, {row})"))
                .collect();
            if !values.is_empty() {
                self.inlined_sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t(&name),
                    values.join(", ")
                ));
            }
            for cs in &ins.column_stats {
                merge_column_stats(merged, types, had_rows, cs);
            }
        }
        self.changes_inlined.push(table_id);
        // DuckDB signals "data changed" by taking a file id when a commit
        // inlines rows into a table without writing it a data file.
        if no_files {
            self.next_file_id += 1;
        }
        Ok(())
    }

    /// `ducklake_flush_inlined_data`: the flushed files in (with their delete
    /// files), the flushed rows out of the inlined table, a superseded inlined
    /// table dropped.
    pub(super) fn flush_inlined(&mut self) {
        let (b, c) = (self.b, self.c);
        let lit = |v: Literal| b.literal(&v);
        let t = |name: &str| b.table(name);
        for f in &c.inlined_flushes {
            let table_id = f.table_id;
            for file in &f.files {
                let data_file_id = self.take_file_id();
                let data = &file.data;
                if let Some((_, values)) = &file.partition {
                    self.sql
                        .extend(partition_values_sql(b, data_file_id, table_id, values));
                }
                self.sql.push(format!(
                    "INSERT INTO {} VALUES ({data_file_id}, {table_id}, {}, NULL, NULL, {}, {}, 'parquet', {}, {}, {}, {}, {}, NULL, NULL, {})",
                    t("ducklake_data_file"),
                    file.begin_snapshot,
                    lit(data.file_name.as_str().into()),
                    lit(true.into()),
                    data.record_count,
                    data.file_size_bytes,
                    lit(data.footer_size.into()),
                    file.row_id_start,
                    lit(file.partition.as_ref().map(|p| p.0).into()),
                    file.partial_max,
                ));
                let stat_rows: Vec<String> = data
                    .column_stats
                    .iter()
                    .map(|cs| file_stats_values(b, data_file_id, table_id, cs))
                    .collect();
                if !stat_rows.is_empty() {
                    self.sql.push(format!(
                        "INSERT INTO {} VALUES {}",
                        t("ducklake_file_column_stats"),
                        stat_rows.join(", ")
                    ));
                }
                self.sql.push(format!(
                    "UPDATE {} SET file_size_bytes = file_size_bytes + {} WHERE table_id = {table_id}",
                    t("ducklake_table_stats"),
                    data.file_size_bytes
                ));
                if let Some((deletes, begin)) = &file.deletes {
                    let id = self.take_file_id();
                    self.sql.push(format!(
                        "INSERT INTO {} VALUES ({id}, {table_id}, {begin}, NULL, {data_file_id}, {}, {}, 'parquet', {}, {}, {}, NULL, NULL)",
                        t("ducklake_delete_file"),
                        lit(deletes.file_name.as_str().into()),
                        lit(true.into()),
                        deletes.record_count,
                        deletes.file_size_bytes,
                        lit(deletes.footer_size.into()),
                    ));
                    if !self.changes.contains(&Change::DeletedFromTable(table_id)) {
                        self.changes.push(Change::DeletedFromTable(table_id));
                    }
                }
            }
            self.sql.push(format!(
                "DELETE FROM {} WHERE begin_snapshot <= {}",
                t(&f.inlined_table),
                f.upto
            ));
            if f.drop {
                self.sql.push(format!(
                    "DELETE FROM {} WHERE table_id = {table_id} AND schema_version = {}",
                    t("ducklake_inlined_data_tables"),
                    f.schema_version
                ));
                self.sql
                    .push(format!("DROP TABLE IF EXISTS {}", t(&f.inlined_table)));
            }
        }
    }

    /// Inlined deletions of Parquet rows flushed into delete files leave
    /// `ducklake_inlined_delete_<table>`.
    pub(super) fn flush_inlined_deletes(&mut self) {
        let (b, c) = (self.b, self.c);
        let t = |name: &str| b.table(name);
        for (table_id, upto) in &c.flushed_inlined_deletes {
            self.sql.push(format!(
                "DELETE FROM {} WHERE begin_snapshot <= {upto}",
                t(&format!("ducklake_inlined_delete_{table_id}"))
            ));
        }
    }

    /// A table whose column layout changed gets an inlined table for its new
    /// layout, as DuckDB creates one (DuckDB inserts into the newest inlined
    /// table of a table, so a stale one would take rows of another layout).
    pub(super) async fn inlined_tables_for_new_layouts(&mut self) -> Result<()> {
        let (b, c, s) = (self.b, self.c, self.s);
        let store = self.lake.store();
        self.layout_changed.sort_unstable();
        self.layout_changed.dedup();
        // The tables' rows, read once if an existing table's layout changed.
        let mut existing: Option<Vec<TableRow>> = None;
        for table_id in self.layout_changed.clone() {
            if c.dropped_tables.contains(&table_id) || self.inlined_ready.contains(&table_id) {
                continue;
            }
            let created = self
                .new_table_ids
                .iter()
                .position(|id| *id == table_id)
                .and_then(|i| c.new_tables.get(i));
            let (schema_id, wanted) = match created {
                Some(nt) => (
                    nt.schema_id,
                    new_column_rows(table_id, s, None, &nt.columns),
                ),
                None => {
                    if existing.is_none() {
                        existing = Some(store.tables(self.latest.snapshot_id).await?);
                    }
                    let Some(row) = existing.iter().flatten().find(|r| r.table_id == table_id)
                    else {
                        continue;
                    };
                    let current = store
                        .table_columns(table_id, self.latest.snapshot_id)
                        .await?;
                    (row.schema_id, columns_after(c, table_id, s, current))
                }
            };
            let tree = crate::catalog::build_column_tree(&wanted)?;
            if !inline::can_inline(b.dialect(), &tree)
                || inline::configured_limit(self.lake, schema_id, table_id).await? == 0
            {
                continue;
            }
            let (_, created) = inline::ensure_table(
                self.lake,
                b,
                table_id,
                &wanted,
                s,
                &mut self.schema_version,
                self.prior_schema_version,
                false,
            )
            .await?;
            self.sql.extend(created);
        }
        Ok(())
    }
}
