//! Logical conflict checks between a change set and the snapshots other writers
//! committed since it was built (SPEC §14.2). Lakeq is stricter than DuckDB where
//! DuckDB is wrong: two deletes on one table never both commit (§14.4).

use super::ChangeSet;
use crate::error::Error;
use crate::spec::changes::Change;

/// Return a conflict error if `theirs` (changes committed since our base
/// snapshot) invalidates `ours`.
pub fn check(ours: &ChangeSet, theirs: &[Change]) -> Result<(), Error> {
    let conflict = |what: String| {
        Err(Error::CommitConflict {
            message: what,
            retryable: false,
        })
    };
    for change in theirs {
        use Change::*;
        if let InsertedIntoTable(t) | InlinedInsert(t) = change
            && ours.exclusive_tables.contains(t)
        {
            return Err(Error::CommitConflict {
                message: format!("a concurrent transaction inserted into table {t}"),
                retryable: true,
            });
        }
        match change {
            DroppedTable(t) if ours.touches_table(*t) => {
                return conflict(format!("table {t} was dropped by a concurrent transaction"));
            }
            AlteredTable(t) if ours.touches_table(*t) => {
                return conflict(format!("table {t} was altered by a concurrent transaction"));
            }
            DeletedFromTable(t) | InlinedDelete(t) if ours.writes_table(*t) => {
                return conflict(format!(
                    "a concurrent transaction deleted from table {t}, which this one writes"
                ));
            }
            InsertedIntoTable(t) | InlinedInsert(t) | InlineFlush(t) | MergeAdjacent(t)
            | RewriteDelete(t) | CompactedTable(t)
                if ours.deletes_from(*t) =>
            {
                return conflict(format!(
                    "a concurrent transaction changed the files of table {t}, which this one deletes from"
                ));
            }
            CreatedTable(s, n) | CreatedView(s, n) if ours.creates(s, n) => {
                return conflict(format!(
                    "\"{s}\".\"{n}\" was created by a concurrent transaction"
                ));
            }
            CreatedSchema(s) if ours.new_schemas.iter().any(|x| x == s) => {
                return conflict(format!(
                    "schema \"{s}\" was created by a concurrent transaction"
                ));
            }
            DroppedSchema(id) if ours.uses_schema(*id) => {
                return conflict(format!(
                    "schema {id} was dropped by a concurrent transaction"
                ));
            }
            DroppedView(v) if ours.dropped_views.contains(v) => {
                return conflict(format!("view {v} was dropped by a concurrent transaction"));
            }
            _ => {}
        }
    }
    Ok(())
}
