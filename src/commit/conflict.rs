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
            InlineFlush(t) | MergeAdjacent(t) | RewriteDelete(t) | CompactedTable(t)
                if ours.merged_tables().contains(t) =>
            {
                return conflict(format!(
                    "a concurrent transaction rewrote the files of table {t}, which this one compacts"
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::MergedFile;
    use crate::write::WrittenFile;

    fn merging(table: i64) -> ChangeSet {
        let mut c = ChangeSet::new(5);
        c.merges.push(MergedFile {
            table_id: table,
            sources: vec![
                (1, "t/a.parquet".into(), true),
                (2, "t/b.parquet".into(), true),
            ],
            file: WrittenFile {
                url: "/lake/t/c.parquet".into(),
                file_name: "c.parquet".into(),
                record_count: 2,
                file_size_bytes: 10,
                footer_size: Some(4),
                column_stats: Vec::new(),
            },
            begin_snapshot: 2,
            row_id_start: 0,
            partial_max: 3,
            partition: None,
            rewrite: false,
            dropped_rows: 0,
        });
        c
    }

    fn deleting(table: i64) -> ChangeSet {
        let mut c = ChangeSet::new(5);
        c.ended_files.push((table, 1));
        c
    }

    #[test]
    fn a_merge_loses_to_a_concurrent_delete_but_not_to_an_insert() {
        assert!(check(&merging(7), &[Change::DeletedFromTable(7)]).is_err());
        assert!(check(&merging(7), &[Change::InlinedDelete(7)]).is_err());
        assert!(check(&merging(7), &[Change::MergeAdjacent(7)]).is_err());
        assert!(check(&merging(7), &[Change::DroppedTable(7)]).is_err());
        assert!(check(&merging(7), &[Change::InsertedIntoTable(7)]).is_ok());
        assert!(check(&merging(7), &[Change::DeletedFromTable(8)]).is_ok());
    }

    #[test]
    fn a_delete_loses_to_a_concurrent_merge_of_its_table() {
        assert!(check(&deleting(7), &[Change::MergeAdjacent(7)]).is_err());
        assert!(check(&deleting(7), &[Change::DeletedFromTable(7)]).is_err());
        assert!(check(&deleting(7), &[Change::MergeAdjacent(8)]).is_ok());
    }
}
