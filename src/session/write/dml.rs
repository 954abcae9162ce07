//! DML dispatch (`INSERT`, `DELETE`, `UPDATE`) and deletes: the positions of
//! matching rows per data file, written as positional delete files, and the
//! end snapshot of matching inlined rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Column, TableReference};
use datafusion::logical_expr::{DmlStatement, Expr, LogicalPlan, WriteOp};

use super::insert::configured_inline_limit;
use super::{Target, Writer, count_batch};
use crate::catalog::TableEntry;
use crate::commit::{ChangeSet, NewDeleteFile};
use crate::error::{Error, Result};
use crate::provider::table::LakeTable;
use crate::spec::paths::resolve;
use crate::write::discard;

impl Writer<'_> {
    pub(super) async fn dml(
        &self,
        dml: &DmlStatement,
        sql: &str,
    ) -> Result<Option<Vec<RecordBatch>>> {
        let Some(target) = self.resolve(&dml.table_name) else {
            return Ok(None);
        };
        let table = Arc::clone(target.table()?);
        match &dml.op {
            WriteOp::Insert(op) => {
                if !matches!(op, datafusion::logical_expr::dml::InsertOp::Append) {
                    return Err(Error::Unsupported(format!(
                        "INSERT {op} into DuckLake table '{}'",
                        target.qualified()
                    )));
                }
                let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
                let rows = self
                    .append(&target, &table, dml.input.as_ref(), &mut changes)
                    .await?;
                if !changes.is_empty() {
                    self.commit_or_clean(target.lake(), &changes).await?;
                }
                Ok(Some(vec![count_batch(rows)?]))
            }
            // TRUNCATE is a DELETE of every row (one snapshot, as in DuckDB).
            WriteOp::Delete | WriteOp::Truncate => {
                let predicate = match dml.op {
                    WriteOp::Truncate => None,
                    _ => filter_predicate(&dml.input),
                };
                let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
                let n = self
                    .plan_deletes(&target, &table, predicate, &mut changes)
                    .await?;
                if !changes.is_empty() {
                    self.commit_or_clean(target.lake(), &changes).await?;
                }
                Ok(Some(vec![count_batch(n)?]))
            }
            WriteOp::Update => {
                let predicate = filter_predicate(&dml.input);
                let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
                // Updated rows keep their row ids (in `_ducklake_internal_row_id`, as
                // DuckDB writes them), so the change feed shows an update.
                let rows = match updated_with_row_ids(&target, &table, dml.input.as_ref())? {
                    Some(input) => {
                        self.append_rows(&target, &table, &input, true, &mut changes)
                            .await?
                    }
                    None => {
                        self.append(&target, &table, dml.input.as_ref(), &mut changes)
                            .await?
                    }
                };
                let deleted = self
                    .plan_deletes(&target, &table, predicate, &mut changes)
                    .await?;
                if deleted != rows {
                    return Err(Error::Corrupt(format!(
                        "UPDATE of '{}' matched {deleted} rows to delete but produced {rows} new rows",
                        target.qualified()
                    )));
                }
                if !changes.is_empty() {
                    self.commit_or_clean(target.lake(), &changes).await?;
                }
                Ok(Some(vec![count_batch(rows)?]))
            }
            WriteOp::MergeInto(op) => {
                let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
                let joined = crate::dialect::dml::is_joined_dml(sql);
                let n = self
                    .merge(
                        &target,
                        &table,
                        &dml.table_name,
                        dml.input.as_ref(),
                        op,
                        joined,
                        &mut changes,
                    )
                    .await?;
                if !changes.is_empty() {
                    self.commit_or_clean(target.lake(), &changes).await?;
                }
                Ok(Some(vec![count_batch(n)?]))
            }
            other => Err(Error::Unsupported(format!(
                "{other} on DuckLake table '{}'",
                target.qualified()
            ))),
        }
    }

    /// dbt's `delete+insert`: delete the rows of `table` whose `unique_key`
    /// appears in `input`, then insert every row of `input`, in one snapshot.
    /// Returns (rows deleted, rows inserted).
    pub async fn delete_insert(
        &self,
        table: &TableReference,
        input: &LogicalPlan,
        unique_key: &[String],
    ) -> Result<(u64, u64)> {
        let target = self
            .resolve(table)
            .ok_or_else(|| Error::not_found("lake table", table.to_string()))?;
        let entry = Arc::clone(target.table()?);
        let key = |qualified: bool| -> Result<Expr> {
            let mut parts = Vec::new();
            for k in unique_key {
                if entry.arrow_schema.field_with_name(k).is_err() {
                    return Err(Error::not_found(
                        "column",
                        format!("{}.{k}", target.qualified()),
                    ));
                }
                let c = if qualified {
                    Expr::Column(Column::from_name(k))
                } else {
                    Expr::Column(Column::new_unqualified(k))
                };
                parts.push(cast_expr(c, DataType::Utf8));
            }
            Ok(match unique_key {
                [] => {
                    return Err(Error::Unsupported(
                        "delete+insert needs a unique_key".into(),
                    ));
                }
                [only] => Expr::Column(Column::new_unqualified(only)),
                _ => datafusion::functions::expr_fn::concat_ws(
                    datafusion::prelude::lit("\u{1f}"),
                    parts,
                ),
            })
        };
        let keys = datafusion::logical_expr::LogicalPlanBuilder::from(input.clone())
            .project(vec![key(true)?])?
            .build()?;
        let predicate = datafusion::logical_expr::expr_fn::in_subquery(key(false)?, Arc::new(keys));
        let mut changes = ChangeSet::new(target.snapshot.snapshot.snapshot_id);
        let inserted = self.append(&target, &entry, input, &mut changes).await?;
        let deleted = match self
            .plan_deletes(&target, &entry, Some(predicate), &mut changes)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                discard(&changes.written_files()).await;
                return Err(e);
            }
        };
        if !changes.is_empty() {
            self.commit_or_clean(target.lake(), &changes).await?;
        }
        Ok((deleted, inserted))
    }

    /// Find the rows matching `predicate` and record their deletion in `changes`.
    pub(super) async fn plan_deletes(
        &self,
        target: &Target,
        table: &Arc<TableEntry>,
        predicate: Option<Expr>,
        changes: &mut ChangeSet,
    ) -> Result<u64> {
        let s = target.snapshot.snapshot.snapshot_id;
        let positions_table = Arc::new(
            LakeTable::new(Arc::clone(target.lake()), Arc::clone(table), s).with_positions(),
        );
        let mut df = self.ctx.read_table(positions_table)?;
        if let Some(p) = predicate {
            df = df.filter(unqualify(p)?)?;
        }
        let df = df.select_columns(&[
            crate::provider::table::FILE_ID_COLUMN,
            crate::provider::table::ROW_POSITION_COLUMN,
        ])?;
        let batches = df.collect().await?;
        let mut by_file: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        let mut total = 0u64;
        for b in &batches {
            let files = b.column(0).as_primitive::<Int64Type>();
            let rows = b.column(1).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                if files.is_null(i) || rows.is_null(i) {
                    continue;
                }
                by_file
                    .entry(files.value(i))
                    .or_default()
                    .insert(rows.value(i));
                total += 1;
            }
        }
        self.delete_positions(target, table, by_file, changes)
            .await?;
        Ok(total)
    }

    /// Record the deletion of rows by (data file id, position) in `changes`;
    /// file id [`crate::provider::table::INLINED_FILE_ID`] holds inlined rows by row id.
    pub(super) async fn delete_positions(
        &self,
        target: &Target,
        table: &Arc<TableEntry>,
        mut by_file: BTreeMap<i64, BTreeSet<i64>>,
        changes: &mut ChangeSet,
    ) -> Result<()> {
        let s = target.snapshot.snapshot.snapshot_id;
        if by_file.is_empty() {
            return Ok(());
        }
        // Inlined rows (file id -1): end them in every inlined table of the table.
        if let Some(row_ids) = by_file.remove(&crate::provider::table::INLINED_FILE_ID) {
            let ids: Vec<i64> = row_ids.into_iter().collect();
            for it in target.lake().store().inlined_tables(table.id()).await? {
                changes
                    .inlined_row_deletes
                    .push((table.id(), it.table_name, ids.clone()));
            }
        }
        if by_file.is_empty() {
            return Ok(());
        }
        let files = target.lake().store().data_files(table.id(), s).await?;
        let files: HashMap<i64, _> = files.into_iter().map(|f| (f.data_file_id, f)).collect();
        let data_path = target.lake().data_path().to_string();
        let mut inlined_deleted: HashMap<i64, usize> = HashMap::new();
        for (file, _) in target
            .lake()
            .store()
            .inlined_deletions(table.id(), s)
            .await?
        {
            *inlined_deleted.entry(file).or_default() += 1;
        }
        let limit = configured_inline_limit(target.lake(), table).await?;
        for (file_id, positions) in by_file {
            let file = files.get(&file_id).ok_or_else(|| {
                Error::Corrupt(format!(
                    "data file {file_id} of '{}' vanished",
                    target.qualified()
                ))
            })?;
            let data_url = resolve(&table.dir, Some(&file.path), file.path_is_relative);
            let store = self.object_store(&data_url)?;
            let mut previous: Vec<(i64, i64)> = Vec::new();
            let mut replaces = None;
            if let Some(d) = &file.delete_file {
                let url = resolve(&table.dir, Some(&d.path), d.path_is_relative);
                let begin = d.begin_snapshot;
                previous =
                    crate::provider::deletes::delete_file_entries(&store, &url, begin).await?;
                let relative = url.strip_prefix(&data_path).unwrap_or(&url).to_string();
                replaces = Some((d.delete_file_id, relative, begin));
            }
            let already: usize = previous.len();
            let inlined = inlined_deleted.get(&file_id).copied().unwrap_or(0);
            if already + inlined + positions.len()
                >= usize::try_from(file.record_count).unwrap_or(0)
            {
                changes.ended_files.push((table.id(), file_id));
                continue;
            }
            // A few deleted rows of a file are recorded in the catalog (deletion
            // inlining), as DuckDB does, rather than in a new delete file.
            if (positions.len() as u64) <= limit {
                changes.inlined_file_deletes.push((
                    table.id(),
                    file_id,
                    positions.into_iter().collect(),
                ));
                continue;
            }
            changes.delete_files.push(NewDeleteFile {
                table_id: table.id(),
                data_file_id: file_id,
                data_file_url: data_url,
                table_dir: table.dir.clone(),
                new_positions: positions.into_iter().collect(),
                previous,
                replaces,
                flushed: false,
            });
        }
        Ok(())
    }
}

/// An UPDATE's input with each row's row id appended: the scan of the target
/// table reads DuckDB's `rowid` too, and the top projection passes it on. `None`
/// when the plan has another shape, or the table hides `rowid` behind a column.
pub(super) fn updated_with_row_ids(
    target: &Target,
    table: &Arc<TableEntry>,
    input: &LogicalPlan,
) -> Result<Option<LogicalPlan>> {
    use datafusion::datasource::provider_as_source;
    use datafusion::logical_expr::{Projection, TableScanBuilder};
    let LogicalPlan::Projection(top) = input else {
        return Ok(None);
    };
    if !crate::provider::table::LakeTable::virtual_columns(table)
        .contains(&crate::provider::table::ROWID_COLUMN)
    {
        return Ok(None);
    }
    let provider = crate::provider::table::LakeTable::new(
        Arc::clone(target.lake()),
        Arc::clone(table),
        target.snapshot.snapshot.snapshot_id,
    )
    .with_rowid();
    let source = provider_as_source(Arc::new(provider));
    let mut scans = 0;
    let mut qualifier = None;
    let rebuilt = top
        .input
        .as_ref()
        .clone()
        .transform_up(|plan| match plan {
            LogicalPlan::TableScan(scan) => {
                scans += 1;
                qualifier = Some(scan.table_name.clone());
                let replaced = TableScanBuilder::new(scan.table_name, Arc::clone(&source))
                    .with_filters(scan.filters)
                    .with_fetch(scan.fetch)
                    .build()?;
                Ok(Transformed::yes(LogicalPlan::TableScan(replaced)))
            }
            other => Ok(Transformed::yes(other.recompute_schema()?)),
        })
        .data()?;
    let (1, Some(qualifier)) = (scans, qualifier) else {
        return Ok(None);
    };
    let mut exprs = top.expr.clone();
    exprs.push(Expr::Column(Column::new(
        Some(qualifier),
        crate::provider::table::ROWID_COLUMN,
    )));
    Ok(Some(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(rebuilt),
    )?)))
}

/// The predicate of a DELETE/UPDATE input (the `Filter` above the scan), if any.
pub(super) fn filter_predicate(plan: &LogicalPlan) -> Option<Expr> {
    match plan {
        LogicalPlan::Filter(f) => Some(f.predicate.clone()),
        other => match other.inputs().as_slice() {
            [only] => filter_predicate(only),
            _ => None,
        },
    }
}

/// `CAST(expr AS type)`.
pub(super) fn cast_expr(expr: Expr, to: DataType) -> Expr {
    Expr::Cast(datafusion::logical_expr::Cast::new(Box::new(expr), to))
}

/// Drop table qualifiers so the predicate applies to the positions table.
pub(super) fn unqualify(expr: Expr) -> Result<Expr> {
    Ok(expr
        .transform(|e| match e {
            Expr::Column(c) if c.relation.is_some() => Ok(Transformed::yes(Expr::Column(
                Column::new_unqualified(c.name),
            ))),
            other => Ok(Transformed::no(other)),
        })
        .data()?)
}
