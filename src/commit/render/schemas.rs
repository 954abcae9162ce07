//! `ducklake_schema` rows: schemas dropped and created.

use super::Renderer;
use crate::spec::changes::Change;
use crate::store::Literal;

impl Renderer<'_> {
    /// DROP SCHEMA: the schema's row ends.
    pub(super) fn drop_schemas(&mut self) {
        let (b, c, s) = (self.b, self.c, self.s);
        let t = |name: &str| b.table(name);
        for id in &c.dropped_schemas {
            self.sql.push(format!(
                "UPDATE {} SET end_snapshot = {s} WHERE schema_id = {id} AND end_snapshot IS NULL",
                t("ducklake_schema")
            ));
            self.changes.push(Change::DroppedSchema(*id));
        }
    }

    /// CREATE SCHEMA: a row with a new catalog id, uuid and directory.
    pub(super) fn create_schemas(&mut self) {
        let (b, c, s) = (self.b, self.c, self.s);
        let lit = |v: Literal| b.literal(&v);
        let t = |name: &str| b.table(name);
        for name in &c.new_schemas {
            let id = self.take_catalog_id();
            let uuid = uuid::Uuid::now_v7().to_string();
            let path = crate::spec::paths::default_dir_name(name, &uuid);
            self.sql.push(format!(
                "INSERT INTO {} VALUES ({id}, {}, {s}, NULL, {}, {}, {})",
                t("ducklake_schema"),
                lit(uuid.into()),
                lit(name.as_str().into()),
                lit(path.into()),
                lit(true.into())
            ));
            self.changes.push(Change::CreatedSchema(name.clone()));
        }
    }
}
