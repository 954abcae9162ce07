//! `COMMENT ON`: the `comment` tag's current row ended and a new one inserted.

use super::Renderer;
use crate::commit::CommentTarget;
use crate::spec::changes::Change;
use crate::store::Literal;

impl Renderer<'_> {
    /// COMMENT ON TABLE / VIEW (`ducklake_tag`) and COLUMN (`ducklake_column_tag`).
    pub(super) fn comments(&mut self) {
        let (b, c, s) = (self.b, self.c, self.s);
        let lit = |v: Literal| b.literal(&v);
        let t = |name: &str| b.table(name);
        for comment in &c.comments {
            let value = lit(comment.value.clone().into());
            match comment.target {
                CommentTarget::Table(id) | CommentTarget::View(id) => {
                    self.sql.push(format!(
                        "UPDATE {tag} SET end_snapshot = {s} WHERE object_id = {id} AND key = 'comment' \
                         AND end_snapshot IS NULL",
                        tag = t("ducklake_tag")
                    ));
                    self.sql.push(format!(
                        "INSERT INTO {} VALUES ({id}, {s}, NULL, 'comment', {value})",
                        t("ducklake_tag")
                    ));
                    if let CommentTarget::View(id) = comment.target
                        && !self.changes.contains(&Change::AlteredView(id))
                    {
                        self.changes.push(Change::AlteredView(id));
                    }
                }
                CommentTarget::Column(table, column) => {
                    self.sql.push(format!(
                        "UPDATE {tag} SET end_snapshot = {s} WHERE table_id = {table} AND column_id = {column} \
                         AND key = 'comment' AND end_snapshot IS NULL",
                        tag = t("ducklake_column_tag")
                    ));
                    self.sql.push(format!(
                        "INSERT INTO {} VALUES ({table}, {column}, {s}, NULL, 'comment', {value})",
                        t("ducklake_column_tag")
                    ));
                }
            }
        }
    }
}
