//! `ducklake_view` rows: views dropped, created and renamed.

use super::Renderer;
use crate::spec::changes::Change;
use crate::store::Literal;

impl Renderer<'_> {
    /// DROP VIEW: the view's row ends.
    pub(super) fn drop_views(&mut self) {
        let (b, c, s) = (self.b, self.c, self.s);
        let t = |name: &str| b.table(name);
        for id in &c.dropped_views {
            self.sql.push(format!(
                "UPDATE {} SET end_snapshot = {s} WHERE view_id = {id} AND end_snapshot IS NULL",
                t("ducklake_view")
            ));
            self.changes.push(Change::DroppedView(*id));
        }
    }

    /// CREATE VIEW: a row with a new catalog id.
    pub(super) fn create_views(&mut self) {
        let (b, c, s) = (self.b, self.c, self.s);
        let lit = |v: Literal| b.literal(&v);
        let t = |name: &str| b.table(name);
        for v in &c.new_views {
            let id = self.take_catalog_id();
            self.sql.push(format!(
                "INSERT INTO {} VALUES ({id}, {}, {s}, NULL, {}, {}, 'duckdb', {}, {})",
                t("ducklake_view"),
                lit(uuid::Uuid::new_v4().to_string().into()),
                v.schema_id,
                lit(v.name.as_str().into()),
                lit(v.sql.as_str().into()),
                lit(v.column_aliases.as_str().into())
            ));
            self.changes
                .push(Change::CreatedView(v.schema_name.clone(), v.name.clone()));
        }
    }

    /// ALTER VIEW ... RENAME TO: a new version of the row, same id and uuid.
    pub(super) fn rename_views(&mut self) {
        let (b, c, s) = (self.b, self.c, self.s);
        let lit = |v: Literal| b.literal(&v);
        let t = |name: &str| b.table(name);
        for v in &c.renamed_views {
            // The current row is marked (end_snapshot -1, never seen outside this
            // catalog transaction), copied under the new name, then ended: the
            // current row may itself begin at `s` (a transaction's amended snapshot).
            let view = t("ducklake_view");
            let id = v.view_id;
            self.sql.push(format!(
                "UPDATE {view} SET end_snapshot = -1 WHERE view_id = {id} AND end_snapshot IS NULL"
            ));
            self.sql.push(format!(
                "INSERT INTO {view} SELECT view_id, view_uuid, {s}, NULL, schema_id, {}, dialect, sql, \
                 column_aliases FROM {view} WHERE view_id = {id} AND end_snapshot = -1",
                lit(v.new_name.as_str().into()),
            ));
            self.sql.push(format!(
                "UPDATE {view} SET end_snapshot = {s} WHERE view_id = {id} AND end_snapshot = -1"
            ));
            self.changes.push(Change::CreatedView(
                v.schema_name.clone(),
                v.new_name.clone(),
            ));
        }
    }
}
