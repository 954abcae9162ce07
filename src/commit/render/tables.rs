//! `ducklake_table`, partition and sort rows: tables dropped, created and
//! renamed, their partitioning and sort order set.

use super::Renderer;
use super::columns::column_rows;
use crate::commit::Alter;
use crate::spec::changes::Change;
use crate::store::Literal;

impl Renderer<'_> {
    /// DROP TABLE: every current row of the table ends.
    pub(super) fn drop_tables(&mut self) {
        let (b, c, s) = (self.b, self.c, self.s);
        let t = |name: &str| b.table(name);
        for id in &c.dropped_tables {
            for table in [
                "ducklake_table",
                "ducklake_partition_info",
                "ducklake_column",
                "ducklake_column_tag",
                "ducklake_data_file",
                "ducklake_delete_file",
                "ducklake_sort_info",
            ] {
                self.sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {id} AND end_snapshot IS NULL",
                    t(table)
                ));
            }
            self.sql.push(format!(
                "UPDATE {} SET end_snapshot = {s} WHERE object_id = {id} AND end_snapshot IS NULL",
                t("ducklake_tag")
            ));
            self.changes.push(Change::DroppedTable(*id));
        }
    }

    /// CREATE TABLE: the table's row (a new catalog id) and its columns.
    pub(super) fn create_tables(&mut self) {
        let (b, c, s) = (self.b, self.c, self.s);
        let lit = |v: Literal| b.literal(&v);
        let t = |name: &str| b.table(name);
        for nt in &c.new_tables {
            let id = self.take_catalog_id();
            self.new_table_ids.push(id);
            self.sql.push(format!(
                "INSERT INTO {} VALUES ({id}, {}, {s}, NULL, {}, {}, {}, {})",
                t("ducklake_table"),
                lit(nt.uuid.as_str().into()),
                nt.schema_id,
                lit(nt.name.as_str().into()),
                lit(nt.path.as_str().into()),
                lit(true.into())
            ));
            let rows = column_rows(b, id, s, None, &nt.columns);
            if !rows.is_empty() {
                self.sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_column"),
                    rows.join(", ")
                ));
            }
            self.layout_changed.push(id);
            self.changes.push(Change::CreatedTable(
                nt.schema_name.clone(),
                nt.name.clone(),
            ));
        }
    }

    /// SET/RESET PARTITIONED BY, SET SORTED BY and RENAME TABLE (the column
    /// changes are [`Renderer::alter_column`]'s).
    pub(super) fn alter_table(&mut self, a: &Alter) {
        let (b, s) = (self.b, self.s);
        let lit = |v: Literal| b.literal(&v);
        let t = |name: &str| b.table(name);
        match a {
            Alter::SetPartition { table_id, keys } => {
                self.sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {table_id} AND end_snapshot IS NULL",
                    t("ducklake_partition_info")
                ));
                let partition_id = self.take_catalog_id();
                self.sql.push(format!(
                    "INSERT INTO {} VALUES ({partition_id}, {table_id}, {s}, NULL)",
                    t("ducklake_partition_info")
                ));
                let rows: Vec<String> = keys
                    .iter()
                    .enumerate()
                    .map(|(i, (column_id, transform))| {
                        format!(
                            "({partition_id}, {table_id}, {i}, {column_id}, {})",
                            lit(transform.as_str().into())
                        )
                    })
                    .collect();
                if !rows.is_empty() {
                    self.sql.push(format!(
                        "INSERT INTO {} VALUES {}",
                        t("ducklake_partition_column"),
                        rows.join(", ")
                    ));
                }
                self.layout_changed.push(*table_id);
            }
            Alter::SetSort { table_id, keys } => {
                self.sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {table_id} AND end_snapshot IS NULL",
                    t("ducklake_sort_info")
                ));
                if !keys.is_empty() {
                    let sort_id = self.take_catalog_id();
                    self.sql.push(format!(
                        "INSERT INTO {} VALUES ({sort_id}, {table_id}, {s}, NULL)",
                        t("ducklake_sort_info")
                    ));
                    let rows: Vec<String> = keys
                        .iter()
                        .enumerate()
                        .map(|(i, k)| {
                            format!(
                                "({sort_id}, {table_id}, {i}, {}, 'duckdb', {}, {})",
                                lit(k.expression.as_str().into()),
                                lit(if k.descending { "DESC" } else { "ASC" }.into()),
                                lit(if k.nulls_first {
                                    "NULLS_FIRST"
                                } else {
                                    "NULLS_LAST"
                                }
                                .into())
                            )
                        })
                        .collect();
                    self.sql.push(format!(
                        "INSERT INTO {} VALUES {}",
                        t("ducklake_sort_expression"),
                        rows.join(", ")
                    ));
                }
            }
            Alter::RenameTable {
                row,
                new_name,
                schema_name,
            } => {
                self.sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {} AND end_snapshot IS NULL",
                    t("ducklake_table"),
                    row.table_id
                ));
                self.sql.push(format!(
                    "INSERT INTO {} VALUES ({}, {}, {s}, NULL, {}, {}, {}, {})",
                    t("ducklake_table"),
                    row.table_id,
                    lit(row.table_uuid.as_str().into()),
                    row.schema_id,
                    lit(new_name.as_str().into()),
                    lit(row.path.clone().into()),
                    lit(row.path_is_relative.into())
                ));
                self.layout_changed.push(row.table_id);
                self.changes
                    .push(Change::CreatedTable(schema_name.clone(), new_name.clone()));
            }
            Alter::AddColumn { .. } | Alter::DropColumn { .. } | Alter::ReplaceColumn { .. } => {
                self.alter_column(a);
            }
        }
    }
}
