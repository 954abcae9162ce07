//! Rendering: a [`ChangeSet`] becomes the SQL of one catalog transaction, every
//! row at the snapshot the commit takes.

mod columns;
mod stats;

use std::collections::HashMap;

use chrono::Utc;
use datafusion::common::ScalarValue;

pub(crate) use columns::new_column_rows;
use columns::{column_row_values, column_rows, columns_after};
use stats::{
    Bound, ColumnBounds, file_stats_values, leaf_types, live_column_bounds, merge_column_stats,
    partition_values_sql, table_column_stats_values,
};

use super::{
    AddedFile, Alter, ChangeSet, CommentTarget, MappingRef, TableRef, check_counters, inline,
};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::spec::changes::{Change, format_changes, parse_changes};
use crate::spec::rows::{ColumnRow, SnapshotRow, TableRow, TableStatsRow};
use crate::spec::values::parse_stat;
use crate::spec::{CatalogId, ColumnId, FileId, SnapshotId};
use crate::store::{Literal, SqlBackend};
use crate::write::WrittenFile;

pub(super) struct Rendered {
    pub(super) sql: String,
    pub(super) new_table_ids: Vec<CatalogId>,
}

/// The snapshot a commit writes: a new one (`latest + 1`), or, in a
/// transaction's fork, the transaction's snapshot amended (`latest`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Target {
    pub(super) s: SnapshotId,
    pub(super) amend: bool,
}

pub(super) async fn render(
    lake: &Lake,
    b: &dyn SqlBackend,
    c: &ChangeSet,
    latest: &SnapshotRow,
    target: Target,
    delete_files: &[WrittenFile],
) -> Result<Rendered> {
    let store = lake.store();
    let s = target.s;
    let mut next_catalog_id = latest.next_catalog_id;
    let mut next_file_id = latest.next_file_id;
    // A transaction's DDL statements raise the schema version once, as DuckDB's do.
    let prior_schema_version = if target.amend {
        store.snapshot(s - 1).await?.schema_version
    } else {
        latest.schema_version
    };
    let mut schema_version = if target.amend {
        latest
            .schema_version
            .max(prior_schema_version + i64::from(c.is_ddl()))
    } else {
        latest.schema_version + i64::from(c.is_ddl())
    };
    let lit = |v: Literal| b.literal(&v);
    let t = |name: &str| b.table(name);
    let mut sql: Vec<String> = Vec::new();
    let mut changes: Vec<Change> = Vec::new();
    let mut layout_changed: Vec<CatalogId> = Vec::new();

    // Drops first, as DuckDB does.
    for id in &c.dropped_schemas {
        sql.push(format!(
            "UPDATE {} SET end_snapshot = {s} WHERE schema_id = {id} AND end_snapshot IS NULL",
            t("ducklake_schema")
        ));
        changes.push(Change::DroppedSchema(*id));
    }
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
            sql.push(format!(
                "UPDATE {} SET end_snapshot = {s} WHERE table_id = {id} AND end_snapshot IS NULL",
                t(table)
            ));
        }
        sql.push(format!(
            "UPDATE {} SET end_snapshot = {s} WHERE object_id = {id} AND end_snapshot IS NULL",
            t("ducklake_tag")
        ));
        changes.push(Change::DroppedTable(*id));
    }
    for id in &c.dropped_views {
        sql.push(format!(
            "UPDATE {} SET end_snapshot = {s} WHERE view_id = {id} AND end_snapshot IS NULL",
            t("ducklake_view")
        ));
        changes.push(Change::DroppedView(*id));
    }
    for (id, table) in &c.dropped_macros {
        sql.push(format!(
            "UPDATE {} SET end_snapshot = {s} WHERE macro_id = {id} AND end_snapshot IS NULL",
            t("ducklake_macro")
        ));
        changes.push(if *table {
            Change::DroppedTableMacro(*id)
        } else {
            Change::DroppedScalarMacro(*id)
        });
    }
    for name in &c.new_schemas {
        let id = next_catalog_id;
        next_catalog_id += 1;
        let uuid = uuid::Uuid::now_v7().to_string();
        let path = crate::spec::paths::default_dir_name(name, &uuid);
        sql.push(format!(
            "INSERT INTO {} VALUES ({id}, {}, {s}, NULL, {}, {}, {})",
            t("ducklake_schema"),
            lit(uuid.into()),
            lit(name.as_str().into()),
            lit(path.into()),
            lit(true.into())
        ));
        changes.push(Change::CreatedSchema(name.clone()));
    }
    let mut new_table_ids = Vec::new();
    for nt in &c.new_tables {
        let id = next_catalog_id;
        next_catalog_id += 1;
        new_table_ids.push(id);
        sql.push(format!(
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
            sql.push(format!(
                "INSERT INTO {} VALUES {}",
                t("ducklake_column"),
                rows.join(", ")
            ));
        }
        layout_changed.push(id);
        changes.push(Change::CreatedTable(
            nt.schema_name.clone(),
            nt.name.clone(),
        ));
    }
    for v in &c.new_views {
        let id = next_catalog_id;
        next_catalog_id += 1;
        sql.push(format!(
            "INSERT INTO {} VALUES ({id}, {}, {s}, NULL, {}, {}, 'duckdb', {}, {})",
            t("ducklake_view"),
            lit(uuid::Uuid::new_v4().to_string().into()),
            v.schema_id,
            lit(v.name.as_str().into()),
            lit(v.sql.as_str().into()),
            lit(v.column_aliases.as_str().into())
        ));
        changes.push(Change::CreatedView(v.schema_name.clone(), v.name.clone()));
    }
    for m in &c.new_macros {
        let id = next_catalog_id;
        next_catalog_id += 1;
        sql.push(format!(
            "INSERT INTO {} VALUES ({}, {id}, {}, {s}, NULL)",
            t("ducklake_macro"),
            m.schema_id,
            lit(m.name.as_str().into())
        ));
        let kind = if m.table { "table" } else { "scalar" };
        for (impl_id, imp) in m.impls.iter().enumerate() {
            sql.push(format!(
                "INSERT INTO {} VALUES ({id}, {impl_id}, 'duckdb', {}, '{kind}')",
                t("ducklake_macro_impl"),
                lit(imp.sql.as_str().into())
            ));
            for (column_id, p) in imp.parameters.iter().enumerate() {
                let (name, type_name) = (&p.name, &p.type_name);
                let (value, value_type) = p
                    .default
                    .clone()
                    .unwrap_or_else(|| ("NULL".into(), "unknown".into()));
                sql.push(format!(
                    "INSERT INTO {} VALUES ({id}, {impl_id}, {column_id}, {}, {}, {}, {})",
                    t("ducklake_macro_parameters"),
                    lit(name.as_str().into()),
                    lit(type_name.as_str().into()),
                    lit(value.as_str().into()),
                    lit(value_type.as_str().into())
                ));
            }
        }
        changes.push(if m.table {
            Change::CreatedTableMacro(m.schema_name.clone(), m.name.clone())
        } else {
            Change::CreatedScalarMacro(m.schema_name.clone(), m.name.clone())
        });
    }
    for v in &c.renamed_views {
        // The current row is marked (end_snapshot -1, never seen outside this
        // catalog transaction), copied under the new name, then ended: the
        // current row may itself begin at `s` (a transaction's amended snapshot).
        let view = t("ducklake_view");
        let id = v.view_id;
        sql.push(format!(
            "UPDATE {view} SET end_snapshot = -1 WHERE view_id = {id} AND end_snapshot IS NULL"
        ));
        sql.push(format!(
            "INSERT INTO {view} SELECT view_id, view_uuid, {s}, NULL, schema_id, {}, dialect, sql, \
             column_aliases FROM {view} WHERE view_id = {id} AND end_snapshot = -1",
            lit(v.new_name.as_str().into()),
        ));
        sql.push(format!(
            "UPDATE {view} SET end_snapshot = {s} WHERE view_id = {id} AND end_snapshot = -1"
        ));
        changes.push(Change::CreatedView(
            v.schema_name.clone(),
            v.new_name.clone(),
        ));
    }
    for a in &c.alters {
        match a {
            Alter::AddColumn {
                table_id,
                parent,
                column,
            } => {
                let rows = column_rows(b, *table_id, s, *parent, std::slice::from_ref(column));
                sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_column"),
                    rows.join(", ")
                ));
                layout_changed.push(*table_id);
            }
            Alter::DropColumn {
                table_id,
                column_ids,
            } => {
                let ids = column_ids
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {table_id} AND column_id IN ({ids}) AND end_snapshot IS NULL",
                    t("ducklake_column")
                ));
                layout_changed.push(*table_id);
            }
            Alter::ReplaceColumn { row } => {
                sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {} AND column_id = {} AND end_snapshot IS NULL",
                    t("ducklake_column"),
                    row.table_id,
                    row.column_id
                ));
                sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_column"),
                    column_row_values(b, row, s)
                ));
                layout_changed.push(row.table_id);
            }
            Alter::SetPartition { table_id, keys } => {
                sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {table_id} AND end_snapshot IS NULL",
                    t("ducklake_partition_info")
                ));
                let partition_id = next_catalog_id;
                next_catalog_id += 1;
                sql.push(format!(
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
                    sql.push(format!(
                        "INSERT INTO {} VALUES {}",
                        t("ducklake_partition_column"),
                        rows.join(", ")
                    ));
                }
                layout_changed.push(*table_id);
            }
            Alter::SetSort { table_id, keys } => {
                sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {table_id} AND end_snapshot IS NULL",
                    t("ducklake_sort_info")
                ));
                if !keys.is_empty() {
                    let sort_id = next_catalog_id;
                    next_catalog_id += 1;
                    sql.push(format!(
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
                    sql.push(format!(
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
                sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {} AND end_snapshot IS NULL",
                    t("ducklake_table"),
                    row.table_id
                ));
                sql.push(format!(
                    "INSERT INTO {} VALUES ({}, {}, {s}, NULL, {}, {}, {}, {})",
                    t("ducklake_table"),
                    row.table_id,
                    lit(row.table_uuid.as_str().into()),
                    row.schema_id,
                    lit(new_name.as_str().into()),
                    lit(row.path.clone().into()),
                    lit(row.path_is_relative.into())
                ));
                layout_changed.push(row.table_id);
                changes.push(Change::CreatedTable(schema_name.clone(), new_name.clone()));
            }
        }
    }

    // Data: files, statistics, deletes.
    let table_id_of = |r: TableRef| -> Result<CatalogId> {
        match r {
            TableRef::Existing(id) => Ok(id),
            TableRef::New(i) => new_table_ids
                .get(i)
                .copied()
                .ok_or_else(|| Error::Corrupt(format!("change set refers to new table #{i}"))),
        }
    };
    // Name mappings first: their ids come from `next_file_id` before the files'.
    let mut mapping_ids = Vec::with_capacity(c.name_mappings.len());
    for m in &c.name_mappings {
        let mapping_id = next_file_id;
        next_file_id += 1;
        mapping_ids.push(mapping_id);
        sql.push(format!(
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
            sql.push(format!(
                "INSERT INTO {} VALUES {}",
                t("ducklake_name_mapping"),
                rows.join(", ")
            ));
        }
    }
    let mapping_of = |m: Option<MappingRef>| -> Result<Option<FileId>> {
        match m {
            None => Ok(None),
            Some(MappingRef::Existing(id)) => Ok(Some(id)),
            Some(MappingRef::New(i)) => mapping_ids
                .get(i)
                .copied()
                .map(Some)
                .ok_or_else(|| Error::Corrupt(format!("change set refers to new mapping #{i}"))),
        }
    };
    let mut files_by_table: HashMap<CatalogId, Vec<&AddedFile>> = HashMap::new();
    // Inlined rows go in after inlined rows are deleted (an UPDATE's new
    // version keeps the row id of the version it ends).
    let mut inlined_sql: Vec<String> = Vec::new();
    // Tables whose inlined table this commit has settled already.
    let mut inlined_ready: Vec<CatalogId> = Vec::new();
    let mut changes_inlined: Vec<CatalogId> = Vec::new();
    for f in &c.added_files {
        files_by_table
            .entry(table_id_of(f.table)?)
            .or_default()
            .push(f);
    }
    for ins in &c.inlined_inserts {
        files_by_table.entry(table_id_of(ins.table)?).or_default();
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
        let types = leaf_types(lake, c, table_id, &new_table_ids, latest.snapshot_id).await?;
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
            let data_file_id = next_file_id;
            next_file_id += 1;
            if let Some((_, values)) = &added.partition {
                sql.extend(partition_values_sql(b, data_file_id, table_id, values));
            }
            let mapping_id = mapping_of(added.mapping)?;
            // A registered file keeps its absolute path, as DuckDB stores it.
            let (path, relative) = match mapping_id {
                Some(_) => (file.url.as_str(), false),
                None => (file.file_name.as_str(), true),
            };
            sql.push(format!(
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
                sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_file_column_stats"),
                    stat_rows.join(", ")
                ));
            }
        }
        let inlined: Vec<&inline::InlinedInsert> = c
            .inlined_inserts
            .iter()
            .filter(|i| table_id_of(i.table).is_ok_and(|t| t == table_id))
            .collect();
        if !inlined.is_empty() {
            let created = new_table_ids
                .iter()
                .position(|id| *id == table_id)
                .and_then(|i| c.new_tables.get(i));
            let current = match created {
                Some(nt) => new_column_rows(table_id, s, None, &nt.columns),
                None => store.table_columns(table_id, latest.snapshot_id).await?,
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
                lake,
                b,
                table_id,
                &current,
                s,
                &mut schema_version,
                prior_schema_version,
                created.is_none(),
            )
            .await?;
            // Created first (the rows go in after deletes, at the end).
            sql.extend(created_sql);
            inlined_ready.push(table_id);
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
                    inlined_sql.push(format!(
                        "INSERT INTO {} VALUES {}",
                        t(&name),
                        values.join(", ")
                    ));
                }
                for cs in &ins.column_stats {
                    merge_column_stats(&mut merged, &types, had_rows, cs);
                }
            }
            changes_inlined.push(table_id);
            // DuckDB signals "data changed" by taking a file id when a commit
            // inlines rows into a table without writing it a data file.
            if files.is_empty() {
                next_file_id += 1;
            }
        }
        sql.push(format!(
            "DELETE FROM {} WHERE table_id = {table_id}",
            t("ducklake_table_stats")
        ));
        sql.push(format!(
            "INSERT INTO {} VALUES ({table_id}, {}, {}, {})",
            t("ducklake_table_stats"),
            stats.record_count,
            stats.next_row_id,
            stats.file_size_bytes
        ));
        sql.push(format!(
            "DELETE FROM {} WHERE table_id = {table_id}",
            t("ducklake_table_column_stats")
        ));
        let mut by_column: Vec<(&ColumnId, &ColumnBounds)> = merged.iter().collect();
        by_column.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let rows: Vec<String> = by_column
            .into_iter()
            .map(|(id, m)| {
                let text = |v: Option<&ScalarValue>| {
                    v.and_then(|v| crate::spec::values::format_duckdb_text(v).ok().flatten())
                };
                let (min, max) = match &m.bounds {
                    Bound::Known(min, max) => (text(Some(min)), text(Some(max))),
                    Bound::Empty | Bound::Unknown => (None, None),
                };
                format!(
                    "({table_id}, {id}, {}, {}, {}, {}, NULL)",
                    lit(m.contains_null.into()),
                    lit(m.contains_nan.into()),
                    lit(min.into()),
                    lit(max.into())
                )
            })
            .collect();
        if !rows.is_empty() {
            sql.push(format!(
                "INSERT INTO {} VALUES {}",
                t("ducklake_table_column_stats"),
                rows.join(", ")
            ));
        }
        if !files.is_empty() {
            changes.push(Change::InsertedIntoTable(table_id));
        }
    }

    // Compaction: sources out (scheduled for deletion), the merged file in. Table
    // statistics do not change: the same rows, the same row ids.
    let mut merged_tables: Vec<CatalogId> = Vec::new();
    let mut rewritten_tables: Vec<CatalogId> = Vec::new();
    for m in &c.merges {
        let data_file_id = next_file_id;
        next_file_id += 1;
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
                sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE data_file_id IN ({ids}) AND end_snapshot IS NULL",
                    t(table)
                ));
            }
            sql.push(format!(
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
                sql.push(format!(
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
            sql.push(format!(
                "INSERT INTO {} VALUES {}",
                t("ducklake_files_scheduled_for_deletion"),
                scheduled.join(", ")
            ));
        }
        if let Some((_, values)) = &m.partition {
            sql.extend(partition_values_sql(b, data_file_id, m.table_id, values));
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
        sql.push(format!(
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
            sql.push(format!(
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
        changes.push(Change::MergeAdjacent(table_id));
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
        let types = leaf_types(lake, c, table_id, &[], latest.snapshot_id).await?;
        let rows = live_column_bounds(lake, table_id, latest.snapshot_id, &types, &removed, &added)
            .await?
            .into_iter()
            .map(|(id, m)| table_column_stats_values(b, table_id, id, &m))
            .collect::<Vec<_>>();
        sql.push(format!(
            "DELETE FROM {} WHERE table_id = {table_id}",
            t("ducklake_table_column_stats")
        ));
        if !rows.is_empty() {
            sql.push(format!(
                "INSERT INTO {} VALUES {}",
                t("ducklake_table_column_stats"),
                rows.join(", ")
            ));
        }
        changes.push(Change::RewriteDelete(table_id));
    }

    for (table_id, file_id) in &c.ended_files {
        sql.push(format!(
            "UPDATE {} SET end_snapshot = {s} WHERE data_file_id = {file_id} AND end_snapshot IS NULL",
            t("ducklake_data_file")
        ));
        sql.push(format!(
            "UPDATE {} SET end_snapshot = {s} WHERE data_file_id = {file_id} AND table_id = {table_id} AND end_snapshot IS NULL",
            t("ducklake_delete_file")
        ));
    }
    for (d, file) in c.delete_files.iter().zip(delete_files) {
        let id = next_file_id;
        next_file_id += 1;
        let earliest = d.previous.iter().map(|e| e.1).min();
        let begin = match &d.replaces {
            Some((old_id, old_path, old_begin)) => {
                sql.push(format!(
                    "DELETE FROM {} WHERE delete_file_id = {old_id}",
                    t("ducklake_delete_file")
                ));
                sql.push(format!(
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
        sql.push(format!(
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
    for f in &c.inlined_flushes {
        let table_id = f.table_id;
        for file in &f.files {
            let data_file_id = next_file_id;
            next_file_id += 1;
            let data = &file.data;
            if let Some((_, values)) = &file.partition {
                sql.extend(partition_values_sql(b, data_file_id, table_id, values));
            }
            sql.push(format!(
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
                sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_file_column_stats"),
                    stat_rows.join(", ")
                ));
            }
            sql.push(format!(
                "UPDATE {} SET file_size_bytes = file_size_bytes + {} WHERE table_id = {table_id}",
                t("ducklake_table_stats"),
                data.file_size_bytes
            ));
            if let Some((deletes, begin)) = &file.deletes {
                let id = next_file_id;
                next_file_id += 1;
                sql.push(format!(
                    "INSERT INTO {} VALUES ({id}, {table_id}, {begin}, NULL, {data_file_id}, {}, {}, 'parquet', {}, {}, {}, NULL, NULL)",
                    t("ducklake_delete_file"),
                    lit(deletes.file_name.as_str().into()),
                    lit(true.into()),
                    deletes.record_count,
                    deletes.file_size_bytes,
                    lit(deletes.footer_size.into()),
                ));
                if !changes.contains(&Change::DeletedFromTable(table_id)) {
                    changes.push(Change::DeletedFromTable(table_id));
                }
            }
        }
        sql.push(format!(
            "DELETE FROM {} WHERE begin_snapshot <= {}",
            t(&f.inlined_table),
            f.upto
        ));
        if f.drop {
            sql.push(format!(
                "DELETE FROM {} WHERE table_id = {table_id} AND schema_version = {}",
                t("ducklake_inlined_data_tables"),
                f.schema_version
            ));
            sql.push(format!("DROP TABLE IF EXISTS {}", t(&f.inlined_table)));
        }
    }
    for (table_id, upto) in &c.flushed_inlined_deletes {
        sql.push(format!(
            "DELETE FROM {} WHERE begin_snapshot <= {upto}",
            t(&format!("ducklake_inlined_delete_{table_id}"))
        ));
    }
    for (_, inlined_table, row_ids) in &c.inlined_row_deletes {
        let ids = row_ids
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        sql.push(format!(
            "UPDATE {} SET end_snapshot = {s} WHERE row_id IN ({ids}) AND end_snapshot IS NULL",
            t(inlined_table)
        ));
    }
    let mut by_table: Vec<&(CatalogId, FileId, Vec<i64>)> = c.inlined_file_deletes.iter().collect();
    by_table.sort_by_key(|(t, f, _)| (*t, *f));
    let mut created_delete_tables: Vec<CatalogId> = Vec::new();
    for (table_id, file_id, positions) in by_table {
        let name = format!("ducklake_inlined_delete_{table_id}");
        if !created_delete_tables.contains(table_id) {
            created_delete_tables.push(*table_id);
            sql.push(format!(
                "CREATE TABLE IF NOT EXISTS {}(file_id BIGINT, row_id BIGINT, begin_snapshot BIGINT)",
                t(&name)
            ));
        }
        let values: Vec<String> = positions
            .iter()
            .map(|p| format!("({file_id}, {p}, {s})"))
            .collect();
        if !values.is_empty() {
            sql.push(format!(
                "INSERT INTO {} VALUES {}",
                t(&name),
                values.join(", ")
            ));
        }
    }
    sql.extend(inlined_sql);
    let mut inlined_deleted: Vec<CatalogId> = Vec::new();
    let mut deleted = c.deleted_tables();
    deleted.retain(|t| !c.dropped_tables.contains(t));
    for table_id in deleted {
        if (c.delete_files.iter().any(|d| d.table_id == table_id)
            || c.ended_files.iter().any(|(t, _)| *t == table_id))
            && !changes.contains(&Change::DeletedFromTable(table_id))
        {
            changes.push(Change::DeletedFromTable(table_id));
        }
        if c.inlined_row_deletes.iter().any(|(t, _, _)| *t == table_id)
            || c.inlined_file_deletes
                .iter()
                .any(|(t, _, _)| *t == table_id)
        {
            inlined_deleted.push(table_id);
        }
    }
    if !c.alters.is_empty() || !c.comments.is_empty() {
        for id in c.altered_tables() {
            changes.push(Change::AlteredTable(id));
        }
    }
    for comment in &c.comments {
        let value = lit(comment.value.clone().into());
        match comment.target {
            CommentTarget::Table(id) | CommentTarget::View(id) => {
                sql.push(format!(
                    "UPDATE {tag} SET end_snapshot = {s} WHERE object_id = {id} AND key = 'comment' \
                     AND end_snapshot IS NULL",
                    tag = t("ducklake_tag")
                ));
                sql.push(format!(
                    "INSERT INTO {} VALUES ({id}, {s}, NULL, 'comment', {value})",
                    t("ducklake_tag")
                ));
                if let CommentTarget::View(id) = comment.target
                    && !changes.contains(&Change::AlteredView(id))
                {
                    changes.push(Change::AlteredView(id));
                }
            }
            CommentTarget::Column(table, column) => {
                sql.push(format!(
                    "UPDATE {tag} SET end_snapshot = {s} WHERE table_id = {table} AND column_id = {column} \
                     AND key = 'comment' AND end_snapshot IS NULL",
                    tag = t("ducklake_column_tag")
                ));
                sql.push(format!(
                    "INSERT INTO {} VALUES ({table}, {column}, {s}, NULL, 'comment', {value})",
                    t("ducklake_column_tag")
                ));
            }
        }
    }
    // A table whose column layout changed gets an inlined table for its new
    // layout, as DuckDB creates one (DuckDB inserts into the newest inlined
    // table of a table, so a stale one would take rows of another layout).
    layout_changed.sort_unstable();
    layout_changed.dedup();
    // The tables' rows, read once if an existing table's layout changed.
    let mut existing: Option<Vec<TableRow>> = None;
    for &table_id in &layout_changed {
        if c.dropped_tables.contains(&table_id) || inlined_ready.contains(&table_id) {
            continue;
        }
        let created = new_table_ids
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
                    existing = Some(store.tables(latest.snapshot_id).await?);
                }
                let Some(row) = existing.iter().flatten().find(|r| r.table_id == table_id) else {
                    continue;
                };
                let current = store.table_columns(table_id, latest.snapshot_id).await?;
                (row.schema_id, columns_after(c, table_id, s, current))
            }
        };
        let tree = crate::catalog::build_column_tree(&wanted)?;
        if !inline::can_inline(b.dialect(), &tree)
            || inline::configured_limit(lake, schema_id, table_id).await? == 0
        {
            continue;
        }
        let (_, created) = inline::ensure_table(
            lake,
            b,
            table_id,
            &wanted,
            s,
            &mut schema_version,
            prior_schema_version,
            false,
        )
        .await?;
        sql.extend(created);
    }
    // DuckDB lists inlined changes after every other kind.
    changes.extend(changes_inlined.into_iter().map(Change::InlinedInsert));
    changes.extend(inlined_deleted.into_iter().map(Change::InlinedDelete));
    // (A flush of inlined deletions only is logged as a deletion, as by DuckDB.)
    let mut flushed: Vec<CatalogId> = c.inlined_flushes.iter().map(|f| f.table_id).collect();
    flushed.sort_unstable();
    flushed.dedup();
    changes.extend(flushed.into_iter().map(Change::InlineFlush));
    for table_id in layout_changed {
        if target.amend {
            sql.push(format!(
                "DELETE FROM {} WHERE begin_snapshot = {s} AND table_id = {table_id}",
                t("ducklake_schema_versions")
            ));
        }
        sql.push(format!(
            "INSERT INTO {} VALUES ({s}, {schema_version}, {table_id})",
            t("ducklake_schema_versions")
        ));
    }
    if target.amend {
        let mut all = match store.changes_since(s - 1).await?.first() {
            Some(earlier) => parse_changes(earlier)?,
            None => Vec::new(),
        };
        for change in changes {
            if !all.contains(&change) {
                all.push(change);
            }
        }
        sql.push(format!(
            "UPDATE {} SET changes_made = {} WHERE snapshot_id = {s}",
            t("ducklake_snapshot_changes"),
            lit(format_changes(&all).into())
        ));
        sql.insert(
            0,
            format!(
                "UPDATE {} SET snapshot_time = {}, schema_version = {schema_version}, \
                 next_catalog_id = {next_catalog_id}, next_file_id = {next_file_id} \
                 WHERE snapshot_id = {s}",
                t("ducklake_snapshot"),
                lit(Literal::Timestamp(Utc::now()))
            ),
        );
    } else {
        sql.push(format!(
            "INSERT INTO {} VALUES ({s}, {}, NULL, NULL, NULL)",
            t("ducklake_snapshot_changes"),
            lit(format_changes(&changes).into())
        ));
        // The snapshot row goes first: it is the serialisation point.
        sql.insert(
            0,
            format!(
                "INSERT INTO {} VALUES ({s}, {}, {schema_version}, {next_catalog_id}, {next_file_id})",
                t("ducklake_snapshot"),
                lit(Literal::Timestamp(Utc::now()))
            ),
        );
    }
    Ok(Rendered {
        sql: sql.join(";\n") + ";",
        new_table_ids,
    })
}
