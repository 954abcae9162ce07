//! `MERGE INTO`: the matched and not-matched clauses of one statement turned
//! into deletes and inserts of one snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Column, ScalarValue, TableReference};
use datafusion::logical_expr::{Expr, LogicalPlan};

use super::{Target, Writer};
use crate::catalog::TableEntry;
use crate::commit::ChangeSet;
use crate::error::{Error, Result};
use crate::provider::table::LakeTable;

impl Writer<'_> {
    /// `MERGE INTO target USING source ON cond WHEN ...`: the target (with each
    /// row's file, position and row id) joined with the source; every row gets
    /// the index of the first WHEN clause it satisfies; then updated and deleted
    /// rows are deleted by position, updated rows are written again with their
    /// row ids (as an UPDATE does) and inserted rows appended, all in one change
    /// set. Returns the rows affected. A target row that more than one source
    /// row matches (for an UPDATE or DELETE) is an error, unless `once`: the
    /// MERGE is DuckDB's `UPDATE ... FROM` or `DELETE ... USING` (see
    /// [`crate::dialect::dml`]), which changes such a row once; lakeq then
    /// refuses only an update whose source rows give the row different values
    /// (DuckDB keeps whichever its join produced first).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn merge(
        &self,
        target: &Target,
        table: &Arc<TableEntry>,
        target_ref: &TableReference,
        source: &LogicalPlan,
        op: &datafusion::logical_expr::dml::MergeIntoOp,
        once: bool,
        changes: &mut ChangeSet,
    ) -> Result<u64> {
        use datafusion::common::JoinType;
        use datafusion::datasource::provider_as_source;
        use datafusion::logical_expr::dml::{MergeIntoAction, MergeIntoClauseKind};
        use datafusion::logical_expr::{LogicalPlanBuilder, cast, col, lit, when};
        const IN_TARGET: &str = "__lakeq_merge_target";
        const IN_SOURCE: &str = "__lakeq_merge_source";
        const ACTION: &str = "__lakeq_merge_action";
        let s = target.snapshot.snapshot.snapshot_id;
        let scan =
            LakeTable::new(Arc::clone(target.lake()), Arc::clone(table), s).with_row_origin();
        let has_rowid =
            LakeTable::virtual_columns(table).contains(&crate::provider::table::ROWID_COLUMN);
        let target_col = |name: &str| col(Column::new(Some(target_ref.clone()), name));
        let with_marker = |b: LogicalPlanBuilder, marker: &str| -> Result<LogicalPlanBuilder> {
            let mut exprs: Vec<Expr> = b.schema().columns().into_iter().map(Expr::Column).collect();
            exprs.push(lit(true).alias(marker));
            Ok(b.project(exprs)?)
        };
        let tgt = with_marker(
            LogicalPlanBuilder::scan(target_ref.clone(), provider_as_source(Arc::new(scan)), None)?,
            IN_TARGET,
        )?
        .build()?;
        let src = with_marker(LogicalPlanBuilder::from(source.clone()), IN_SOURCE)?.build()?;
        if crate::provider::catalog::table_options(target_ref.table())
            .1
            .rowid
        {
            self.refuse_transaction_local_ids(target, table, &tgt, target_ref)
                .await?;
        }
        let unmatched_source = op.clauses.iter().any(|c| {
            matches!(
                c.kind,
                MergeIntoClauseKind::NotMatched | MergeIntoClauseKind::NotMatchedByTarget
            )
        });
        let unmatched_target = op
            .clauses
            .iter()
            .any(|c| matches!(c.kind, MergeIntoClauseKind::NotMatchedBySource));
        let join = match (unmatched_target, unmatched_source) {
            (true, true) => JoinType::Full,
            (true, false) => JoinType::Left,
            (false, true) => JoinType::Right,
            (false, false) => JoinType::Inner,
        };
        let in_target = col(IN_TARGET).is_not_null();
        let in_source = col(IN_SOURCE).is_not_null();
        let mut action: Option<datafusion::logical_expr::conditional_expressions::CaseBuilder> =
            None;
        for (i, clause) in op.clauses.iter().enumerate() {
            let mut condition = match clause.kind {
                MergeIntoClauseKind::Matched => in_target.clone().and(in_source.clone()),
                MergeIntoClauseKind::NotMatched | MergeIntoClauseKind::NotMatchedByTarget => {
                    in_source.clone().and(col(IN_TARGET).is_null())
                }
                MergeIntoClauseKind::NotMatchedBySource => {
                    in_target.clone().and(col(IN_SOURCE).is_null())
                }
            };
            if let Some(p) = &clause.predicate {
                condition = condition.and(p.clone());
            }
            let index = lit(i64::try_from(i).unwrap_or(i64::MAX));
            action = Some(match action {
                None => when(condition, index),
                Some(mut b) => b.when(condition, index),
            });
        }
        let Some(mut action) = action else {
            return Err(Error::Unsupported("MERGE without WHEN clauses".into()));
        };
        let joined = LogicalPlanBuilder::from(tgt).join_on(src, join, vec![op.on.clone()])?;
        let mut exprs: Vec<Expr> = joined
            .schema()
            .columns()
            .into_iter()
            .map(Expr::Column)
            .collect();
        exprs.push(action.otherwise(lit(-1i64))?.alias(ACTION));
        let classified = joined.project(exprs)?.build()?;
        let indices = |pick: &dyn Fn(&MergeIntoAction) -> bool| -> Vec<Expr> {
            op.clauses
                .iter()
                .enumerate()
                .filter(|(_, c)| pick(&c.action))
                .map(|(i, _)| lit(i64::try_from(i).unwrap_or(i64::MAX)))
                .collect()
        };
        let updates = indices(&|a| matches!(a, MergeIntoAction::Update(_)));
        let deletes = indices(&|a| matches!(a, MergeIntoAction::Delete));
        let inserts = indices(&|a| matches!(a, MergeIntoAction::Insert { .. }));
        let chosen = |wanted: &[Expr]| col(ACTION).in_list(wanted.to_vec(), false);

        // Rows leaving their place: updated and deleted ones, by file and position.
        let mut by_file: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        let mut removed = 0u64;
        let mut deleted_only = 0u64;
        let mut updated_rows = 0u64;
        let mut delete_matches = 0u64;
        let leaving: Vec<Expr> = updates.iter().chain(&deletes).cloned().collect();
        if !leaving.is_empty() {
            let plan = LogicalPlanBuilder::from(classified.clone())
                .filter(chosen(&leaving))?
                .project(vec![
                    target_col(crate::provider::table::ROW_FILE_COLUMN),
                    target_col(crate::provider::table::ROW_POSITION_COLUMN),
                    chosen(&deletes),
                ])?
                .build()?;
            let batches = self.ctx.execute_logical_plan(plan).await?.collect().await?;
            for b in &batches {
                let files = b.column(0).as_primitive::<Int64Type>();
                let rows = b.column(1).as_primitive::<Int64Type>();
                let is_delete = b.column(2).as_boolean();
                for i in 0..b.num_rows() {
                    if files.is_null(i) || rows.is_null(i) {
                        continue;
                    }
                    if !by_file
                        .entry(files.value(i))
                        .or_default()
                        .insert(rows.value(i))
                    {
                        if once {
                            // DuckDB counts every source row of a DELETE ... USING.
                            if is_delete.value(i) {
                                delete_matches += 1;
                            }
                            continue;
                        }
                        return Err(Error::Unsupported(format!(
                            "MERGE INTO '{}': a target row is matched by more than one source \
                             row; lakeq refuses to pick one of them",
                            target.qualified()
                        )));
                    }
                    removed += 1;
                    if is_delete.value(i) {
                        deleted_only += 1;
                        delete_matches += 1;
                    } else {
                        updated_rows += 1;
                    }
                }
            }
        }

        // Updated rows, written again with their row ids.
        let columns: Vec<(String, DataType)> = table
            .arrow_schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        let mut updated = 0u64;
        if !updates.is_empty() {
            let mut exprs = Vec::with_capacity(columns.len() + 1);
            for (name, dt) in &columns {
                let mut value = target_col(name);
                for (i, clause) in op.clauses.iter().enumerate() {
                    if let MergeIntoAction::Update(assignments) = &clause.action
                        && let Some((_, v)) = assignments.iter().find(|(c, _)| c == name)
                    {
                        value = when(
                            col(ACTION).eq(lit(i64::try_from(i).unwrap_or(i64::MAX))),
                            v.clone(),
                        )
                        .otherwise(value)?;
                    }
                }
                exprs.push(cast(value, dt.clone()).alias(name));
            }
            if has_rowid {
                exprs.push(
                    target_col(crate::provider::table::ROWID_COLUMN)
                        .alias(crate::provider::table::ROWID_COLUMN),
                );
            }
            let mut plan = LogicalPlanBuilder::from(classified.clone())
                .filter(chosen(&updates))?
                .project(exprs.clone())?
                .build()?;
            if once {
                plan = self
                    .updated_once(target, &classified, &chosen(&updates), exprs, updated_rows)
                    .await?;
            }
            updated = self
                .append_rows(target, table, &plan, has_rowid, changes)
                .await?;
        }
        if updated + deleted_only != removed {
            return Err(Error::Corrupt(format!(
                "MERGE INTO '{}' removed {removed} rows but rewrote {updated} and deleted {deleted_only}",
                target.qualified()
            )));
        }
        self.delete_positions(target, table, by_file, changes)
            .await?;

        // Inserted rows: the clause's values, defaults for columns it leaves out.
        let mut inserted = 0u64;
        if !inserts.is_empty() {
            let defaults = crate::provider::defaults::column_defaults(table);
            let mut exprs = Vec::with_capacity(columns.len());
            for (position, (name, dt)) in columns.iter().enumerate() {
                let default = defaults
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| lit(ScalarValue::Null));
                let mut value = default.clone();
                for (i, clause) in op.clauses.iter().enumerate() {
                    let MergeIntoAction::Insert {
                        columns: listed,
                        values,
                    } = &clause.action
                    else {
                        continue;
                    };
                    let given = if listed.is_empty() {
                        values.get(position).cloned()
                    } else {
                        listed
                            .iter()
                            .position(|c| c == name)
                            .and_then(|k| values.get(k).cloned())
                    };
                    value = when(
                        col(ACTION).eq(lit(i64::try_from(i).unwrap_or(i64::MAX))),
                        given.unwrap_or_else(|| default.clone()),
                    )
                    .otherwise(value)?;
                }
                exprs.push(cast(value, dt.clone()).alias(name));
            }
            let plan = LogicalPlanBuilder::from(classified)
                .filter(chosen(&inserts))?
                .project(exprs)?
                .build()?;
            inserted = self.append(target, table, &plan, changes).await?;
        }
        Ok(updated + delete_matches + inserted)
    }

    /// The rows an `UPDATE ... FROM` writes: one per target row. `exprs` are
    /// the new row's columns over `classified` (the target joined with the
    /// source), `rows` the number of distinct target rows to update. Several
    /// source rows that give a target row the same values update it once, as
    /// in DuckDB; if they give it different values, DuckDB keeps the first its
    /// join produced, and lakeq refuses the statement rather than guess which.
    pub(super) async fn updated_once(
        &self,
        target: &Target,
        classified: &LogicalPlan,
        chosen: &Expr,
        exprs: Vec<Expr>,
        rows: u64,
    ) -> Result<LogicalPlan> {
        use datafusion::functions_aggregate::count::count_all;
        use datafusion::logical_expr::{LogicalPlanBuilder, col};
        const FILE: &str = "__lakeq_update_file";
        const POSITION: &str = "__lakeq_update_position";
        let names: Vec<String> = exprs.iter().map(|e| e.schema_name().to_string()).collect();
        let mut keyed = exprs;
        keyed.push(
            col(Column::new_unqualified(
                crate::provider::table::ROW_FILE_COLUMN,
            ))
            .alias(FILE),
        );
        keyed.push(
            col(Column::new_unqualified(
                crate::provider::table::ROW_POSITION_COLUMN,
            ))
            .alias(POSITION),
        );
        let distinct = LogicalPlanBuilder::from(classified.clone())
            .filter(chosen.clone())?
            .project(keyed)?
            .distinct()?
            .build()?;
        let counted = LogicalPlanBuilder::from(distinct.clone())
            .aggregate(Vec::<Expr>::new(), vec![count_all()])?
            .build()?;
        let batches = self
            .ctx
            .execute_logical_plan(counted)
            .await?
            .collect()
            .await?;
        let versions = batches
            .first()
            .filter(|b| b.num_rows() == 1)
            .map(|b| b.column(0).as_primitive::<Int64Type>().value(0))
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| Error::Corrupt("UPDATE ... FROM: no row count".into()))?;
        if versions != rows {
            return Err(Error::Unsupported(format!(
                "UPDATE '{}' ... FROM: a row of the table is matched by several source rows \
                 that give it different values; DuckDB keeps the first its join produces, \
                 which lakeq cannot reproduce: make the source give one value per row \
                 (SELECT DISTINCT, or aggregate it)",
                target.qualified()
            )));
        }
        let columns: Vec<Expr> = names
            .iter()
            .map(|n| col(Column::new_unqualified(n.as_str())))
            .collect();
        Ok(LogicalPlanBuilder::from(distinct)
            .project(columns)?
            .build()?)
    }

    /// `UPDATE`/`DELETE ... WHERE rowid ...` inside a transaction that wrote
    /// rows of the table: DuckDB numbers those rows from 10^18 and gives them no
    /// `snapshot_id` until `COMMIT`, while the writer reads the rows' real ids;
    /// refused rather than matched against other ids than DuckDB's.
    pub(super) async fn refuse_transaction_local_ids(
        &self,
        target: &Target,
        table: &Arc<TableEntry>,
        scan: &LogicalPlan,
        target_ref: &TableReference,
    ) -> Result<()> {
        use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
        let lake = target.lake();
        let (Some(base), Some(first)) = (
            lake.transaction_base(),
            lake.transaction_first_row_id(table.id()),
        ) else {
            return Ok(());
        };
        let column = |name: &str| col(Column::new(Some(target_ref.clone()), name));
        let mut local = column(crate::provider::table::ROWID_COLUMN).gt_eq(lit(first));
        if LakeTable::virtual_columns(table).contains(&crate::provider::table::SNAPSHOT_COLUMN) {
            local = local.or(column(crate::provider::table::SNAPSHOT_COLUMN).gt(lit(base)));
        }
        let plan = LogicalPlanBuilder::from(scan.clone())
            .filter(local)?
            .limit(0, Some(1))?
            .build()?;
        let batches = self.ctx.execute_logical_plan(plan).await?.collect().await?;
        if batches.iter().any(|b| b.num_rows() > 0) {
            return Err(Error::Unsupported(format!(
                "UPDATE/DELETE of '{}' naming rowid or snapshot_id inside a transaction that \
                 wrote rows of the table: DuckDB gives those rows transaction-local ids until \
                 COMMIT; COMMIT first",
                target.qualified()
            )));
        }
        Ok(())
    }
}
