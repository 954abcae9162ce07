//! `ducklake_column` rows: new columns (with their children) and new versions.

use super::super::{Alter, ChangeSet, NewColumn};
use super::Renderer;
use crate::spec::rows::ColumnRow;
use crate::spec::types::DuckLakeType;
use crate::spec::{CatalogId, ColumnId, SnapshotId};
use crate::store::{Literal, SqlBackend};

pub(super) fn column_rows(
    b: &dyn SqlBackend,
    table_id: CatalogId,
    s: SnapshotId,
    parent: Option<ColumnId>,
    columns: &[NewColumn],
) -> Vec<String> {
    new_column_rows(table_id, s, parent, columns)
        .iter()
        .map(|row| column_row_values(b, row, s))
        .collect()
}

/// The `ducklake_column` rows of new columns (and their children).
pub(crate) fn new_column_rows(
    table_id: CatalogId,
    s: SnapshotId,
    parent: Option<ColumnId>,
    columns: &[NewColumn],
) -> Vec<ColumnRow> {
    let mut all = Vec::new();
    for c in columns {
        c.walk(parent, &mut all);
    }
    all.into_iter()
        .map(|(parent, c)| ColumnRow {
            column_id: c.column_id,
            begin_snapshot: s,
            end_snapshot: None,
            table_id,
            column_order: c.column_id,
            column_name: c.name.clone(),
            column_type: c.ty.to_string(),
            initial_default: c.initial_default.clone(),
            default_value: Some(c.default_value.clone().unwrap_or_else(|| "NULL".into())),
            nulls_allowed: c.nulls_allowed,
            parent_column: parent,
            default_value_type: None,
        })
        .collect()
}

/// The columns of `table_id` once `c`'s changes to it apply (`current`: its
/// columns before; `new`: the columns of a table `c` creates).
pub(super) fn columns_after(
    c: &ChangeSet,
    table_id: CatalogId,
    s: SnapshotId,
    mut current: Vec<ColumnRow>,
) -> Vec<ColumnRow> {
    for a in &c.alters {
        match a {
            Alter::AddColumn {
                table_id: t,
                parent,
                column,
            } if *t == table_id => {
                current.extend(new_column_rows(
                    table_id,
                    s,
                    *parent,
                    std::slice::from_ref(column),
                ));
            }
            Alter::DropColumn {
                table_id: t,
                column_ids,
            } if *t == table_id => current.retain(|r| !column_ids.contains(&r.column_id)),
            Alter::ReplaceColumn { row } if row.table_id == table_id => {
                if let Some(old) = current.iter_mut().find(|r| r.column_id == row.column_id) {
                    *old = row.clone();
                }
            }
            _ => {}
        }
    }
    current
}

pub(super) fn column_row_values(b: &dyn SqlBackend, r: &ColumnRow, s: SnapshotId) -> String {
    let lit = |v: Literal| b.literal(&v);
    let nested = r
        .column_type
        .parse::<DuckLakeType>()
        .is_ok_and(|t| t.is_nested());
    format!(
        "({}, {s}, NULL, {}, {}, {}, {}, {}, {}, {}, {}, {}, 'duckdb')",
        r.column_id,
        r.table_id,
        r.column_order,
        lit(r.column_name.as_str().into()),
        lit(r.column_type.as_str().into()),
        lit(r.initial_default.clone().into()),
        lit(r.default_value.clone().into()),
        lit(r.nulls_allowed.into()),
        lit(r.parent_column.into()),
        lit(match &r.default_value_type {
            Some(kind) => kind.as_str(),
            None if nested => "",
            None => "literal",
        }
        .into()),
    )
}

impl Renderer<'_> {
    /// ADD COLUMN, DROP COLUMN and a new version of a column (the table-level
    /// changes are [`Renderer::alter_table`]'s).
    pub(super) fn alter_column(&mut self, a: &Alter) {
        let (b, s) = (self.b, self.s);
        let t = |name: &str| b.table(name);
        match a {
            Alter::AddColumn {
                table_id,
                parent,
                column,
            } => {
                let rows = column_rows(b, *table_id, s, *parent, std::slice::from_ref(column));
                self.sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_column"),
                    rows.join(", ")
                ));
                self.layout_changed.push(*table_id);
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
                self.sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {table_id} AND column_id IN ({ids}) AND end_snapshot IS NULL",
                    t("ducklake_column")
                ));
                self.layout_changed.push(*table_id);
            }
            Alter::ReplaceColumn { row } => {
                self.sql.push(format!(
                    "UPDATE {} SET end_snapshot = {s} WHERE table_id = {} AND column_id = {} AND end_snapshot IS NULL",
                    t("ducklake_column"),
                    row.table_id,
                    row.column_id
                ));
                self.sql.push(format!(
                    "INSERT INTO {} VALUES {}",
                    t("ducklake_column"),
                    column_row_values(b, row, s)
                ));
                self.layout_changed.push(row.table_id);
            }
            Alter::SetPartition { .. } | Alter::SetSort { .. } | Alter::RenameTable { .. } => {
                self.alter_table(a);
            }
        }
    }
}
