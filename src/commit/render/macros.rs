//! `ducklake_macro`, `ducklake_macro_impl` and `ducklake_macro_parameters` rows:
//! macros dropped and created.

use super::Renderer;
use crate::spec::changes::Change;
use crate::store::Literal;

impl Renderer<'_> {
    /// DROP MACRO: the macro's row ends.
    pub(super) fn drop_macros(&mut self) {
        let (b, c, s) = (self.b, self.c, self.s);
        let t = |name: &str| b.table(name);
        for (id, table) in &c.dropped_macros {
            self.sql.push(format!(
                "UPDATE {} SET end_snapshot = {s} WHERE macro_id = {id} AND end_snapshot IS NULL",
                t("ducklake_macro")
            ));
            self.changes.push(if *table {
                Change::DroppedTableMacro(*id)
            } else {
                Change::DroppedScalarMacro(*id)
            });
        }
    }

    /// CREATE MACRO: the macro's row, one row per implementation and one per
    /// parameter, as DuckDB stores them.
    pub(super) fn create_macros(&mut self) {
        let (b, c, s) = (self.b, self.c, self.s);
        let lit = |v: Literal| b.literal(&v);
        let t = |name: &str| b.table(name);
        for m in &c.new_macros {
            let id = self.take_catalog_id();
            self.sql.push(format!(
                "INSERT INTO {} VALUES ({}, {id}, {}, {s}, NULL)",
                t("ducklake_macro"),
                m.schema_id,
                lit(m.name.as_str().into())
            ));
            let kind = if m.table { "table" } else { "scalar" };
            for (impl_id, imp) in m.impls.iter().enumerate() {
                self.sql.push(format!(
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
                    self.sql.push(format!(
                        "INSERT INTO {} VALUES ({id}, {impl_id}, {column_id}, {}, {}, {}, {})",
                        t("ducklake_macro_parameters"),
                        lit(name.as_str().into()),
                        lit(type_name.as_str().into()),
                        lit(value.as_str().into()),
                        lit(value_type.as_str().into())
                    ));
                }
            }
            self.changes.push(if m.table {
                Change::CreatedTableMacro(m.schema_name.clone(), m.name.clone())
            } else {
                Change::CreatedScalarMacro(m.schema_name.clone(), m.name.clone())
            });
        }
    }
}
