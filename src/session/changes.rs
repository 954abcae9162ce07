//! DuckLake's change feed: `ducklake_table_insertions`, `ducklake_table_deletions`
//! and `ducklake_table_changes` (DuckDB's `lake.table_changes('t', from, to)`).
//!
//! The rows come from the catalog's history, as DuckDB's extension reads it:
//! - **insertions** in `[start, end]`: every row of the data files added in that
//!   range (and of multi-snapshot files whose `partial_max` reaches into it, by
//!   their per-row snapshot ids), deleted later or not, plus inlined rows
//!   inserted in the range; `snapshot_id` is the inserting snapshot;
//! - **deletions** in `[start, end]`: positions a delete file (or an inlined
//!   deletion) marks deleted in the range and not before it, every remaining
//!   row of a data file ended in the range, and inlined rows deleted in the
//!   range; `snapshot_id` is the deleting snapshot, the values are the row's;
//! - **changes**: both, joined on `(snapshot_id, rowid)` so that an UPDATE (a
//!   delete and an insert of the same row id in one snapshot) shows as
//!   `update_preimage` / `update_postimage`, as DuckDB's macro does.
//!
//! Rows carry the columns of the table as the session sees it now (DuckDB uses
//! the layout at the end snapshot; the two differ only when columns changed
//! since then).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DataFusionError, Result as DFResult, ScalarValue};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::execution::context::{SessionContext, SessionState};
use datafusion::logical_expr::{JoinType, LogicalPlanBuilder, col, lit};
use futures::future::BoxFuture;

use super::functions::{constant, lake_catalog, stateful_table, text_arg};
use crate::catalog::TableEntry;
use crate::catalog::files::TableFiles;
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::provider::inlined::{InlinedVisibility, read_inlined};
use crate::provider::table::{
    LakeTable, ROW_FILE_COLUMN, ROW_POSITION_COLUMN, ROWID_COLUMN, SNAPSHOT_COLUMN,
};
use crate::spec::paths::resolve;
use crate::spec::rows::DataFileRow;
use crate::spec::{FileId, SnapshotId};

/// What a change-feed function returns.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Feed {
    Insertions,
    Deletions,
    Changes,
}

/// A snapshot bound given as a version or a timestamp.
#[derive(Debug, Clone)]
enum Bound {
    Version(SnapshotId),
    Time(chrono::DateTime<chrono::Utc>),
}

fn bound(value: ScalarValue, what: &str) -> DFResult<Bound> {
    if value.is_null() {
        return Err(DataFusionError::Plan(format!(
            "{what} snapshot cannot be NULL"
        )));
    }
    if let DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 = value.data_type() {
        let ts = value.cast_to(&DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("UTC".into()),
        ))?;
        if let ScalarValue::TimestampMicrosecond(Some(us), _) = ts
            && let Some(t) = chrono::DateTime::from_timestamp_micros(us)
        {
            return Ok(Bound::Time(t));
        }
    }
    match value.cast_to(&DataType::Int64)? {
        ScalarValue::Int64(Some(v)) => Ok(Bound::Version(v)),
        other => Err(DataFusionError::Plan(format!(
            "{what} snapshot must be a version or a timestamp, not {other}"
        ))),
    }
}

/// The snapshot id of a bound: a version as given; a start time gives the
/// first snapshot at or after it, an end time the last at or before it.
async fn resolve_bound(lake: &Lake, b: &Bound, lower: bool) -> Result<SnapshotId> {
    match b {
        Bound::Version(v) => Ok(lake.store().snapshot(*v).await?.snapshot_id),
        Bound::Time(t) => {
            let all = lake.store().snapshots().await?;
            let found = if lower {
                all.iter()
                    .filter(|s| s.snapshot_time >= *t)
                    .min_by_key(|s| (s.snapshot_time, s.snapshot_id))
            } else {
                all.iter()
                    .filter(|s| s.snapshot_time <= *t)
                    .max_by_key(|s| (s.snapshot_time, s.snapshot_id))
            };
            found.map(|s| s.snapshot_id).ok_or_else(|| Error::NotFound {
                kind: "snapshot",
                name: t.to_rfc3339(),
                hint: if lower {
                    " at or after that time"
                } else {
                    " at or before that time"
                }
                .into(),
            })
        }
    }
}

/// The output schema: `snapshot_id`, `rowid` (and `change_type`), then the columns.
fn feed_schema(entry: &TableEntry, feed: Feed) -> SchemaRef {
    let mut fields = vec![
        Field::new(SNAPSHOT_COLUMN, DataType::Int64, true),
        Field::new(ROWID_COLUMN, DataType::Int64, true),
    ];
    if feed == Feed::Changes {
        fields.push(Field::new("change_type", DataType::Utf8, false));
    }
    fields.extend(
        entry
            .arrow_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_metadata(HashMap::new())),
    );
    Arc::new(Schema::new(fields))
}

async fn collect(
    state: &SessionState,
    plan: datafusion::logical_expr::LogicalPlan,
) -> Result<Vec<RecordBatch>> {
    let physical = state.create_physical_plan(&plan).await?;
    Ok(datafusion::physical_plan::collect(physical, state.task_ctx()).await?)
}

/// The table's columns first, then `snapshot_id`/`rowid`: the feed's column order.
fn feed_projection(
    entry: &TableEntry,
    snapshot: datafusion::logical_expr::Expr,
) -> Vec<datafusion::logical_expr::Expr> {
    let mut exprs = vec![snapshot.alias(SNAPSHOT_COLUMN), col(ROWID_COLUMN)];
    exprs.extend(entry.arrow_schema.fields().iter().map(|f| {
        datafusion::logical_expr::Expr::Column(datafusion::common::Column::from_name(f.name()))
    }));
    exprs
}

fn check_virtual_names(entry: &TableEntry) -> Result<()> {
    if LakeTable::virtual_columns(entry).len() < 2 {
        return Err(Error::Unsupported(format!(
            "the change feed of table '{}': it has a column named rowid or snapshot_id, which \
             the feed's own columns would hide",
            entry.qualified_name()
        )));
    }
    Ok(())
}

/// Rows inserted in `[start, end]`.
async fn insertions(
    state: &SessionState,
    lake: &Arc<Lake>,
    entry: &Arc<TableEntry>,
    start: SnapshotId,
    end: SnapshotId,
) -> Result<Vec<RecordBatch>> {
    check_virtual_names(entry)?;
    let files: Vec<DataFileRow> = lake
        .store()
        .data_file_history(entry.id())
        .await?
        .into_iter()
        .map(|(f, _)| f)
        .filter(|f| {
            f.begin_snapshot <= end
                && (f.begin_snapshot >= start || f.partial_max.is_some_and(|m| m >= start))
        })
        .collect();
    let inlined = read_inlined(
        lake.store(),
        entry,
        InlinedVisibility::InsertedBetween(start, end),
    )
    .await?;
    let chosen = Arc::new(TableFiles::chosen(files, None, inlined));
    let table = LakeTable::new(Arc::clone(lake), Arc::clone(entry), end)
        .with_files(chosen)
        .with_rowid();
    let plan = LogicalPlanBuilder::scan("feed", provider_as_source(Arc::new(table)), None)?
        .filter(
            col(SNAPSHOT_COLUMN)
                .gt_eq(lit(start))
                .and(col(SNAPSHOT_COLUMN).lt_eq(lit(end))),
        )?
        .project(feed_projection(entry, col(SNAPSHOT_COLUMN)))?
        .build()?;
    collect(state, plan).await
}

/// Rows deleted in `[start, end]`.
async fn deletions(
    state: &SessionState,
    lake: &Arc<Lake>,
    entry: &Arc<TableEntry>,
    start: SnapshotId,
    end: SnapshotId,
) -> Result<Vec<RecordBatch>> {
    use crate::provider::deletes::delete_file_entries;
    check_virtual_names(entry)?;
    let store = lake.store();
    let (files, delete_files, inlined_deletions) = tokio::try_join!(
        store.data_file_history(entry.id()),
        store.delete_file_history(entry.id()),
        store.inlined_deletion_history(entry.id()),
    )?;
    let mut deletes_by_file: HashMap<FileId, Vec<_>> = HashMap::new();
    for d in delete_files.into_iter().filter(|d| d.begin_snapshot <= end) {
        deletes_by_file.entry(d.data_file_id).or_default().push(d);
    }
    let mut inlined_by_file: HashMap<FileId, Vec<(i64, SnapshotId)>> = HashMap::new();
    for (file, pos, snap) in inlined_deletions {
        inlined_by_file.entry(file).or_default().push((pos, snap));
    }
    let object_store = |url: &str| lake.object_store(url);
    // (data file, position) -> deleting snapshot
    let mut deleted: BTreeMap<(FileId, i64), SnapshotId> = BTreeMap::new();
    let mut involved: Vec<DataFileRow> = Vec::new();
    for (file, file_end) in files {
        if file.begin_snapshot > end {
            continue;
        }
        // Positions deleted as of snapshot `at`, with their deleting snapshot.
        let dir = &entry.dir;
        let as_of = |at: SnapshotId| {
            let latest = deletes_by_file
                .get(&file.data_file_id)
                .and_then(|ds| {
                    ds.iter()
                        .filter(|d| d.begin_snapshot <= at)
                        .max_by_key(|d| d.begin_snapshot)
                })
                .cloned();
            let inlined: Vec<(i64, SnapshotId)> = inlined_by_file
                .get(&file.data_file_id)
                .map(|v| v.iter().copied().filter(|(_, s)| *s <= at).collect())
                .unwrap_or_default();
            let dir = dir.clone();
            async move {
                let mut out: BTreeMap<i64, SnapshotId> = BTreeMap::new();
                if let Some(d) = latest {
                    let url = resolve(&dir, Some(&d.path), d.path_is_relative);
                    if d.format != "parquet" {
                        return Err(Error::Unsupported(format!(
                            "delete file '{url}' has format '{}' (deletion vectors)",
                            d.format
                        )));
                    }
                    let store = object_store(&url)?;
                    for (pos, snap) in delete_file_entries(&store, &url, d.begin_snapshot).await? {
                        if snap <= at {
                            out.insert(pos, snap);
                        }
                    }
                }
                for (pos, snap) in inlined {
                    out.entry(pos).or_insert(snap);
                }
                Ok::<_, Error>(out)
            }
        };
        let before: BTreeSet<i64> = if start > 0 {
            as_of(start - 1).await?.into_keys().collect()
        } else {
            BTreeSet::new()
        };
        let mut here: Vec<(i64, SnapshotId)> = as_of(end)
            .await?
            .into_iter()
            .filter(|(pos, snap)| *snap >= start && !before.contains(pos))
            .collect();
        if let Some(e) = file_end
            && e >= start
            && e <= end
        {
            // The whole file was deleted: its rows not deleted before then.
            let earlier: BTreeSet<i64> = as_of(e - 1).await?.into_keys().collect();
            for pos in 0..file.record_count {
                if !earlier.contains(&pos) && !before.contains(&pos) {
                    here.push((pos, e));
                }
            }
        }
        if here.is_empty() {
            continue;
        }
        for (pos, snap) in here {
            deleted.insert((file.data_file_id, pos), snap);
        }
        involved.push(file);
    }
    // Inlined rows deleted in the range; their deleting snapshot is read with them
    // (several versions of one row id may be among them, so not through the keys).
    let inlined = read_inlined(store, entry, InlinedVisibility::DeletedBetween(start, end)).await?;
    let mut only: HashMap<FileId, BTreeSet<i64>> = HashMap::new();
    for (file, pos) in deleted.keys() {
        only.entry(*file).or_default().insert(*pos);
    }
    let chosen = Arc::new(TableFiles::chosen(involved, Some(only), inlined));
    let table = LakeTable::new(Arc::clone(lake), Arc::clone(entry), end)
        .with_files(chosen)
        .with_row_origin();
    let (files, positions, snaps): (Vec<i64>, Vec<i64>, Vec<i64>) =
        deleted.iter().map(|((f, p), s)| (*f, *p, *s)).fold(
            (Vec::new(), Vec::new(), Vec::new()),
            |(mut a, mut b, mut c), (f, p, s)| {
                a.push(f);
                b.push(p);
                c.push(s);
                (a, b, c)
            },
        );
    let keys_schema = Arc::new(Schema::new(vec![
        Field::new("__lakeq_del_file", DataType::Int64, false),
        Field::new("__lakeq_del_pos", DataType::Int64, false),
        Field::new("__lakeq_del_snapshot", DataType::Int64, false),
    ]));
    let keys = RecordBatch::try_new(
        Arc::clone(&keys_schema),
        vec![
            Arc::new(Int64Array::from(files)),
            Arc::new(Int64Array::from(positions)),
            Arc::new(Int64Array::from(snaps)),
        ],
    )?;
    let keys = MemTable::try_new(keys_schema, vec![vec![keys]])?;
    let keys_plan =
        LogicalPlanBuilder::scan("deleted", provider_as_source(Arc::new(keys)), None)?.build()?;
    let plan = LogicalPlanBuilder::scan("feed", provider_as_source(Arc::new(table)), None)?
        .join(
            keys_plan,
            JoinType::Left,
            (
                vec![ROW_FILE_COLUMN, ROW_POSITION_COLUMN],
                vec!["__lakeq_del_file", "__lakeq_del_pos"],
            ),
            None,
        )?
        .filter(
            col(ROW_FILE_COLUMN)
                .eq(lit(crate::provider::table::INLINED_FILE_ID))
                .or(col("__lakeq_del_snapshot").is_not_null()),
        )?
        .project(feed_projection(
            entry,
            datafusion::logical_expr::when(
                col(ROW_FILE_COLUMN).eq(lit(crate::provider::table::INLINED_FILE_ID)),
                col(SNAPSHOT_COLUMN),
            )
            .otherwise(col("__lakeq_del_snapshot"))?,
        ))?
        .build()?;
    collect(state, plan).await
}

/// DuckDB's `ducklake_table_changes` macro over the two feeds.
async fn changes(
    state: &SessionState,
    entry: &TableEntry,
    inserted: Vec<RecordBatch>,
    deleted: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>> {
    let schema = feed_schema(entry, Feed::Insertions);
    // A context of its own: the two feeds are its only tables.
    let _ = state;
    let ctx = SessionContext::new();
    let ins = MemTable::try_new(Arc::clone(&schema), vec![inserted])?;
    let del = MemTable::try_new(Arc::clone(&schema), vec![deleted])?;
    ctx.register_table("__lakeq_ins", Arc::new(ins))?;
    ctx.register_table("__lakeq_del", Arc::new(del))?;
    let columns = entry
        .arrow_schema
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name().replace('"', "\"\"")))
        .collect::<Vec<_>>();
    let of = |alias: &str| {
        columns
            .iter()
            .map(|c| format!("{alias}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sql = format!(
        "SELECT i.snapshot_id, i.rowid, CASE WHEN d.rowid IS NOT NULL THEN 'update_postimage' ELSE 'insert' END AS change_type{comma}{ins_cols} \
         FROM __lakeq_ins i LEFT JOIN __lakeq_del d ON i.snapshot_id = d.snapshot_id AND i.rowid = d.rowid \
         UNION ALL \
         SELECT d.snapshot_id, d.rowid, CASE WHEN i.rowid IS NOT NULL THEN 'update_preimage' ELSE 'delete' END AS change_type{comma}{del_cols} \
         FROM __lakeq_del d LEFT JOIN __lakeq_ins i ON d.snapshot_id = i.snapshot_id AND d.rowid = i.rowid",
        comma = if columns.is_empty() { "" } else { ", " },
        ins_cols = of("i"),
        del_cols = of("d"),
    );
    let plan = ctx.state().create_logical_plan(&sql).await?;
    collect(&ctx.state(), plan).await
}

/// `ducklake_table_insertions|deletions|changes(lake, schema, table, start, end)`.
#[derive(Debug)]
struct ChangeFeed {
    feed: Feed,
    name: &'static str,
}

impl TableFunctionImpl for ChangeFeed {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let session = args.session();
        let exprs = args.exprs();
        let usage = || {
            DataFusionError::Plan(format!(
                "{}(lake, schema, table, start_snapshot, end_snapshot)",
                self.name
            ))
        };
        let [_, _, _, start_expr, end_expr] = exprs else {
            return Err(usage());
        };
        let lake_name = text_arg(session, exprs, 0, "the lake name")?.ok_or_else(usage)?;
        let schema_name = text_arg(session, exprs, 1, "the schema name")?.ok_or_else(usage)?;
        let table_name = text_arg(session, exprs, 2, "the table name")?.ok_or_else(usage)?;
        let start = bound(constant(session, start_expr)?, "start")?;
        let end = bound(constant(session, end_expr)?, "end")?;
        let (lake, snapshot) = lake_catalog(session, &lake_name)?;
        let entry = Arc::clone(snapshot.table(&schema_name, &table_name).map_err(|_| {
            DataFusionError::Plan(format!(
                "table '{schema_name}.{table_name}' not found in lake '{lake_name}' (the change \
                 feed only supports tables)"
            ))
        })?);
        let schema = feed_schema(&entry, self.feed);
        let feed = self.feed;
        let out_schema = Arc::clone(&schema);
        Ok(stateful_table(
            schema,
            Arc::new(
                move |state: SessionState| -> BoxFuture<'static, Result<RecordBatch>> {
                    let (lake, entry, start, end, out_schema) = (
                        Arc::clone(&lake),
                        Arc::clone(&entry),
                        start.clone(),
                        end.clone(),
                        Arc::clone(&out_schema),
                    );
                    Box::pin(async move {
                        let s = resolve_bound(&lake, &start, true).await?;
                        let e = resolve_bound(&lake, &end, false).await?;
                        // DuckDB names the table as of the end snapshot: the same name must
                        // be the same table there.
                        let at_end = lake.pin(lake.store().snapshot(e).await?).await?;
                        let same = at_end
                            .table(&entry.schema_name, &entry.row.table_name)
                            .is_ok_and(|t| t.id() == entry.id());
                        if !same {
                            return Err(Error::NotFound {
                                kind: "table",
                                name: format!("{}.{}", entry.schema_name, entry.row.table_name),
                                hint: format!(
                                    " at snapshot {e}, the end of the change feed (the table is \
                                 named as of that snapshot, as in DuckDB)"
                                ),
                            });
                        }
                        let batches = match feed {
                            Feed::Insertions => insertions(&state, &lake, &entry, s, e).await?,
                            Feed::Deletions => deletions(&state, &lake, &entry, s, e).await?,
                            Feed::Changes => {
                                let ins = insertions(&state, &lake, &entry, s, e).await?;
                                let del = deletions(&state, &lake, &entry, s, e).await?;
                                changes(&state, &entry, ins, del).await?
                            }
                        };
                        let batches = batches
                            .into_iter()
                            .map(|b| {
                                RecordBatch::try_new(Arc::clone(&out_schema), b.columns().to_vec())
                            })
                            .collect::<std::result::Result<Vec<_>, _>>()?;
                        Ok(concat_batches(&out_schema, &batches)?)
                    })
                },
            ),
        ))
    }
}

/// Register the change-feed functions.
pub fn register(ctx: &SessionContext) {
    for (feed, name) in [
        (Feed::Insertions, "ducklake_table_insertions"),
        (Feed::Deletions, "ducklake_table_deletions"),
        (Feed::Changes, "ducklake_table_changes"),
    ] {
        ctx.register_udtf(name, Arc::new(ChangeFeed { feed, name }));
    }
}
