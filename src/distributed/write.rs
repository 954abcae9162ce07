//! Writes on the workers: the data files of an `INSERT ... SELECT` or `CREATE
//! TABLE AS` written where its rows are computed, committed once by the
//! coordinator.
//!
//! The coordinator wraps the statement's input in a [`LakeWriteNode`]; the
//! [`LakeQueryPlanner`] plans it as `CoalescePartitionsExec(LakeWriteExec(input))`,
//! so datafusion-distributed makes the coalesce a network boundary and runs the
//! [`LakeWriteExec`] stage in the input's tasks on the workers. Each task writes
//! its rows as DuckLake data files (Parquet with field ids, the table's
//! partitioning and the lake's write options, exactly as the coordinator would)
//! and answers one row per file: the file's catalog facts as JSON
//! ([`WrittenFileRow`]). The coordinator collects those rows and commits all
//! files in one snapshot, or removes them when the statement fails.
//!
//! Contract:
//! - a task that fails removes the files it wrote ([`crate::write::write_all`])
//!   and answers an error row instead of failing, so the other tasks finish and
//!   report theirs, and the coordinator removes them all and returns the error
//!   (see [`written_files_schema`]);
//! - every file of the statement carries its tag in its name
//!   ([`WriteTarget::name_tag`]), and when the statement fails the coordinator
//!   removes the tagged files under the table's folder: those of tasks that
//!   finished, were cancelled when another failed, or whose worker was killed
//!   after a file was complete (a worker killed in the middle of a multipart
//!   upload leaves only the store's incomplete upload);
//! - `NOT NULL` columns are checked where the rows are written, naming the table
//!   and column.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::catalog::Session as SessionTrait;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DFSchemaRef, Result as DFResult};
use datafusion::error::DataFusionError;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::parquet::basic::Compression;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::provider::partition::{PartitionSpec, PartitionedWriter};
use crate::spec::CatalogId;
use crate::write::{WriteOptions, WrittenFile, conform, write_all};

/// What a distributed write writes: new data files of one table.
#[derive(Debug, Clone)]
pub struct WriteTarget {
    /// The table's qualified name, for errors (`lake.main.orders`).
    pub table_name: String,
    /// The table's data directory (path or URL).
    pub table_dir: String,
    /// The file schema: the table's columns with their field ids.
    pub schema: SchemaRef,
    /// Indexes of the columns declared NOT NULL.
    pub not_null: Vec<usize>,
    /// The table's current partitioning, if any.
    pub partition: Option<PartitionSpec>,
    /// File size, row group size and compression (the lake's options).
    pub options: WriteOptions,
    /// In every written file's name ([`crate::write::tagged_uuid`]): the
    /// coordinator removes the files of a failed statement by it, whether or
    /// not their task reported them (cancelled, or its worker killed).
    pub name_tag: u64,
}

/// One written data file, as a [`LakeWriteExec`] reports it to the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenFileRow {
    /// The file and its catalog facts.
    pub file: WrittenFile,
    /// Its partition (spec id and values), if the table is partitioned.
    pub partition: Option<(CatalogId, Vec<Option<String>>)>,
}

/// The schema of a [`LakeWriteExec`]'s output: one row per file written (its
/// [`WrittenFileRow`] as JSON) and the rows the task wrote (on its first file's
/// row; 0 on the others), so a task that wrote no file still reports 0 rows.
///
/// A task whose write fails (bad input, a NULL into a NOT NULL column, a
/// failed upload) removes its files and answers one row with `error` set
/// instead of failing its stream: the other tasks then finish and report
/// their files, so the coordinator removes every file of the statement; a
/// failed stream would cancel them while they may still be writing.
pub fn written_files_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("file", DataType::Utf8, true),
        Field::new("rows", DataType::Int64, false),
        Field::new("error", DataType::Utf8, true),
    ]))
}

/// What the tasks of a [`LakeWriteExec`] answered.
#[derive(Debug, Default)]
pub struct WriteReport {
    /// The files written.
    pub files: Vec<WrittenFileRow>,
    /// The rows written.
    pub rows: u64,
    /// The first task's error, if any task failed.
    pub error: Option<Error>,
}

/// [`error_batch`]'s marker of a constraint error (kept as one on the coordinator).
const CONSTRAINT: &str = "constraint: ";

/// The report in the output batches of a [`LakeWriteExec`].
pub fn written_files(batches: &[RecordBatch]) -> Result<WriteReport> {
    let mut report = WriteReport::default();
    for batch in batches {
        let (Some(file), Some(count), Some(error)) = (
            batch
                .column_by_name("file")
                .and_then(|c| c.as_string_opt::<i32>()),
            batch
                .column_by_name("rows")
                .and_then(|c| c.as_primitive_opt::<Int64Type>()),
            batch
                .column_by_name("error")
                .and_then(|c| c.as_string_opt::<i32>()),
        ) else {
            return Err(Error::Corrupt(
                "a distributed write answered without its file list".into(),
            ));
        };
        for i in 0..batch.num_rows() {
            report.rows += u64::try_from(count.value(i)).unwrap_or(0);
            if error.is_valid(i) && report.error.is_none() {
                let text = error.value(i);
                report.error = Some(match text.strip_prefix(CONSTRAINT) {
                    Some(message) => Error::Constraint(message.to_string()),
                    None => Error::DataFusion(DataFusionError::Execution(text.to_string())),
                });
            }
            if file.is_valid(i) {
                let row: WrittenFileRow = serde_json::from_str(file.value(i)).map_err(|e| {
                    Error::Corrupt(format!("a distributed write's file entry: {e}"))
                })?;
                report.files.push(row);
            }
        }
    }
    Ok(report)
}

/// The answer of a task whose write failed with `e` (its files removed).
fn error_batch(e: &Error) -> Result<RecordBatch> {
    let text = match e {
        Error::Constraint(message) => format!("{CONSTRAINT}{message}"),
        other => other.to_string(),
    };
    Ok(RecordBatch::try_new(
        written_files_schema(),
        vec![
            Arc::new(StringArray::from(vec![None::<&str>])),
            Arc::new(Int64Array::from(vec![0])),
            Arc::new(StringArray::from(vec![Some(text)])),
        ],
    )?)
}

/// `written` as one output batch of a [`LakeWriteExec`].
fn written_batch(written: &[WrittenFileRow], rows: u64) -> Result<RecordBatch> {
    let mut files = Vec::with_capacity(written.len().max(1));
    for row in written {
        files.push(Some(serde_json::to_string(row).map_err(|e| {
            Error::Corrupt(format!("encoding a written file's entry: {e}"))
        })?));
    }
    if files.is_empty() {
        files.push(None);
    }
    let counts_len = files.len();
    let counts: Vec<i64> = (0..files.len())
        .map(|i| if i == 0 { rows as i64 } else { 0 })
        .collect();
    Ok(RecordBatch::try_new(
        written_files_schema(),
        vec![
            Arc::new(StringArray::from(files)),
            Arc::new(Int64Array::from(counts)),
            Arc::new(StringArray::from(vec![None::<&str>; counts_len])),
        ],
    )?)
}

/// The logical form of a distributed write: `input`'s rows written as data
/// files of `target` (see the module docs).
#[derive(Debug, Clone)]
pub struct LakeWriteNode {
    input: LogicalPlan,
    target: Arc<WriteTarget>,
    schema: DFSchemaRef,
}

impl LakeWriteNode {
    /// Write `input`'s rows (the table's columns, in order) to `target`.
    pub fn new(input: LogicalPlan, target: WriteTarget) -> Result<Self> {
        let schema = Arc::new(DFSchema::try_from(written_files_schema())?);
        Ok(Self {
            input,
            target: Arc::new(target),
            schema,
        })
    }

    /// As a logical plan.
    pub fn into_plan(self) -> LogicalPlan {
        LogicalPlan::Extension(datafusion::logical_expr::Extension {
            node: Arc::new(self),
        })
    }
}

impl PartialEq for LakeWriteNode {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.target, &other.target) && self.input == other.input
    }
}

impl Eq for LakeWriteNode {}

impl Hash for LakeWriteNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.target.table_dir.hash(state);
        self.input.hash(state);
    }
}

impl PartialOrd for LakeWriteNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        if self == other {
            return Some(Ordering::Equal);
        }
        match self.target.table_dir.cmp(&other.target.table_dir) {
            Ordering::Equal => self.input.partial_cmp(&other.input),
            unequal => Some(unequal),
        }
    }
}

impl UserDefinedLogicalNodeCore for LakeWriteNode {
    fn name(&self) -> &str {
        "LakeWrite"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "LakeWrite: {}", self.target.table_name)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> DFResult<Self> {
        let [input]: [LogicalPlan; 1] = inputs
            .try_into()
            .map_err(|_| DataFusionError::Internal("LakeWrite takes one input".into()))?;
        Ok(Self {
            input,
            target: Arc::clone(&self.target),
            schema: Arc::clone(&self.schema),
        })
    }
}

/// Plans a [`LakeWriteNode`] as `CoalescePartitionsExec(LakeWriteExec(input))`.
#[derive(Debug, Default)]
struct LakeWritePlanner;

#[async_trait]
impl ExtensionPlanner for LakeWritePlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn SessionTrait,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> DFResult<Option<Arc<dyn ExecutionPlan>>> {
        let Some(write) = node.as_any().downcast_ref::<LakeWriteNode>() else {
            return Ok(None);
        };
        let [input] = physical_inputs else {
            return Err(DataFusionError::Internal(
                "LakeWrite takes one input".into(),
            ));
        };
        let exec = LakeWriteExec::new(Arc::clone(input), Arc::clone(&write.target));
        Ok(Some(Arc::new(CoalescePartitionsExec::new(Arc::new(exec)))))
    }
}

/// Prefix of the columns [`carry_order_keys`] adds.
const ORDER_KEY_PREFIX: &str = "__lakeq_order_";

/// `plan` (the rows of a write) with the keys of its `ORDER BY` carried up
/// through the projections above the sort as trailing columns
/// (`__lakeq_order_<n>`), when the sort sits under projections only.
///
/// A sort by a key the projections drop (`SELECT i + 4 AS id ... ORDER BY i`)
/// leaves no ordering the write node can see, and the physical optimizer
/// removes a sort no operator above requires: the rows were written, and got
/// their row ids, in another order than one process writes them. With the keys
/// as columns, [`LakeWriteExec`] requires their order of its input, and writes
/// the target's columns only. Any other plan is returned as it is.
pub fn carry_order_keys(plan: LogicalPlan) -> DFResult<LogicalPlan> {
    Ok(with_order_keys(&plan)?.map_or(plan, |(carried, _)| carried))
}

/// `plan` rebuilt to carry its sort keys (see [`carry_order_keys`]), with
/// their column names; `None` when there is no sort under projections.
fn with_order_keys(plan: &LogicalPlan) -> DFResult<Option<(LogicalPlan, Vec<String>)>> {
    use datafusion::logical_expr::{Expr, LogicalPlanBuilder, SortExpr, col};
    match plan {
        LogicalPlan::Sort(sort) => {
            let input = sort.input.as_ref().clone();
            let mut exprs: Vec<Expr> = input
                .schema()
                .columns()
                .into_iter()
                .map(Expr::Column)
                .collect();
            let mut names = Vec::with_capacity(sort.expr.len());
            let mut keys = Vec::with_capacity(sort.expr.len());
            for (i, key) in sort.expr.iter().enumerate() {
                let name = format!("{ORDER_KEY_PREFIX}{i}");
                exprs.push(key.expr.clone().alias(&name));
                keys.push(SortExpr::new(col(&name), key.asc, key.nulls_first));
                names.push(name);
            }
            let carried = LogicalPlanBuilder::from(input)
                .project(exprs)?
                .sort_with_limit(keys, sort.fetch)?
                .build()?;
            Ok(Some((carried, names)))
        }
        LogicalPlan::Projection(projection) => {
            let Some((input, names)) = with_order_keys(&projection.input)? else {
                return Ok(None);
            };
            let mut exprs = projection.expr.clone();
            exprs.extend(names.iter().map(col));
            let carried = LogicalPlanBuilder::from(input).project(exprs)?.build()?;
            Ok(Some((carried, names)))
        }
        _ => Ok(None),
    }
}

/// DataFusion's query planner, plus lakeq's distributed write node.
#[derive(Debug, Default)]
pub struct LakeQueryPlanner;

#[async_trait]
impl QueryPlanner for LakeQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn SessionTrait,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(LakeWritePlanner)])
            .create_physical_plan(logical_plan, session)
            .await
    }
}

/// Writes its input's rows as data files of one table, each partition its own
/// files (the coalesce above it is the network boundary that makes the tasks
/// of its stage write in parallel; a node of one partition would have no
/// coalesce above it and run on the coordinator), and answers one row per file
/// written (see [`written_files_schema`]).
///
/// Its partition count is the one the coordinator planned (the network
/// boundary above asks each task for that many). A worker's share of the input
/// may have another count: partition `p` then writes every input partition `j`
/// with `j % partitions == p`, so that no input partition goes unwritten.
#[derive(Debug)]
pub struct LakeWriteExec {
    input: Arc<dyn ExecutionPlan>,
    target: Arc<WriteTarget>,
    properties: Arc<PlanProperties>,
    /// Decoded on a worker: the partition count is the coordinator's, kept
    /// when the input is replaced.
    fixed: bool,
    /// The order the statement gave its rows (`INSERT ... ORDER BY`), when it
    /// gave one: required of the input, in one partition, so that the
    /// optimizer keeps the sort (it drops a sort no operator above needs) and
    /// the rows are written, and get their row ids, in that order.
    ordering: Option<datafusion::physical_expr::LexOrdering>,
}

impl LakeWriteExec {
    /// Write `input` to `target`, one output partition per input partition.
    pub fn new(input: Arc<dyn ExecutionPlan>, target: Arc<WriteTarget>) -> Self {
        let partitions = input.output_partitioning().partition_count();
        let ordering = input.output_ordering().cloned();
        let mut exec = Self::with_partitions(input, target, partitions, false);
        exec.ordering = ordering;
        exec
    }

    /// Write `input` to `target` in `partitions` output partitions (as planned
    /// on the coordinator), whatever the input's count.
    pub fn with_fixed_partitions(
        input: Arc<dyn ExecutionPlan>,
        target: Arc<WriteTarget>,
        partitions: usize,
    ) -> Self {
        Self::with_partitions(input, target, partitions.max(1), true)
    }

    fn with_partitions(
        input: Arc<dyn ExecutionPlan>,
        target: Arc<WriteTarget>,
        partitions: usize,
        fixed: bool,
    ) -> Self {
        let schema = written_files_schema();
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Self {
            input,
            target,
            properties,
            fixed,
            ordering: None,
        }
    }

    /// The number of output partitions.
    pub fn partitions(&self) -> usize {
        self.properties.output_partitioning().partition_count()
    }

    /// Where it writes.
    pub fn target(&self) -> &WriteTarget {
        &self.target
    }
}

impl DisplayAs for LakeWriteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "LakeWriteExec: table={}", self.target.table_name)
    }
}

impl ExecutionPlan for LakeWriteExec {
    fn name(&self) -> &'static str {
        "LakeWriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn required_input_ordering(
        &self,
    ) -> Vec<Option<datafusion::physical_expr::OrderingRequirements>> {
        vec![self.ordering.clone().map(Into::into)]
    }

    fn required_input_distribution(&self) -> Vec<datafusion::physical_plan::Distribution> {
        vec![match self.ordering {
            Some(_) => datafusion::physical_plan::Distribution::SinglePartition,
            None => datafusion::physical_plan::Distribution::UnspecifiedDistribution,
        }]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![self.ordering.is_some()]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DFResult<TreeNodeRecursion>,
    ) -> DFResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let [input]: [Arc<dyn ExecutionPlan>; 1] = children
            .try_into()
            .map_err(|_| DataFusionError::Internal("LakeWriteExec takes one input".into()))?;
        let target = Arc::clone(&self.target);
        let mut exec = if self.fixed {
            Self::with_fixed_partitions(input, target, self.partitions())
        } else {
            let partitions = input.output_partitioning().partition_count();
            Self::with_partitions(input, target, partitions, false)
        };
        exec.ordering = self.ordering.clone();
        Ok(Arc::new(exec))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let partitions = self.partitions();
        let inputs = (partition..self.input.output_partitioning().partition_count())
            .step_by(partitions)
            .map(|j| self.input.execute(j, Arc::clone(&context)))
            .collect::<DFResult<Vec<_>>>()?;
        let input = futures::stream::iter(inputs).flatten();
        let target = Arc::clone(&self.target);
        let location = crate::storage::locate(&target.table_dir)?;
        let store = context.runtime_env().object_store(&location.store_url)?;
        let written = async move {
            let writer = PartitionedWriter::new(
                store,
                &target.table_dir,
                Arc::clone(&target.schema),
                target.partition.clone(),
                target.options,
            )
            .with_name_tag(target.name_tag);
            let mut rows = 0u64;
            // Trailing columns beyond the table's carry an ORDER BY's keys
            // (`carry_order_keys`): not written.
            let width: Vec<usize> = (0..target.schema.fields().len()).collect();
            let batches = input.map(|batch| {
                let batch = batch?;
                let batch = if batch.num_columns() > width.len() {
                    batch.project(&width)?
                } else {
                    batch
                };
                let batch = checked(&target, &batch)?;
                rows += batch.num_rows() as u64;
                Ok(batch)
            });
            let writer = write_all(writer, batches).await?;
            let files: Vec<WrittenFileRow> = writer
                .finish()
                .await?
                .into_iter()
                .map(|(file, partition)| WrittenFileRow { file, partition })
                .collect();
            written_batch(&files, rows)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            written_files_schema(),
            futures::stream::once(async move {
                match written.await {
                    Ok(batch) => Ok(batch),
                    Err(e) => error_batch(&e).map_err(DataFusionError::from),
                }
            }),
        )))
    }
}

/// `batch` cast to the table's file schema, its NOT NULL columns checked.
pub fn checked(target: &WriteTarget, batch: &RecordBatch) -> Result<RecordBatch> {
    let batch = conform(batch, &target.schema)?;
    for &i in &target.not_null {
        if batch.column(i).null_count() > 0 {
            return Err(Error::Constraint(format!(
                "NOT NULL constraint failed: {}.{}",
                target.table_name,
                target.schema.field(i).name()
            )));
        }
    }
    Ok(batch)
}

/// A compression codec as text the other side parses (`zstd(3)`).
pub fn compression_text(c: Compression) -> Result<String> {
    Ok(match c {
        Compression::UNCOMPRESSED => "uncompressed".into(),
        Compression::SNAPPY => "snappy".into(),
        Compression::ZSTD(level) => format!("zstd({})", level.compression_level()),
        Compression::GZIP(level) => format!("gzip({})", level.compression_level()),
        other => {
            return Err(Error::Unsupported(format!(
                "a distributed write with {other} compression"
            )));
        }
    })
}

/// [`compression_text`] read back.
pub fn compression_from_text(text: &str) -> Result<Compression> {
    text.parse()
        .map_err(|e| Error::Corrupt(format!("compression '{text}': {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sort by a key the projection drops is carried up as a trailing column,
    /// under the projection's own columns; a plan without a sort is unchanged.
    #[tokio::test]
    async fn order_keys_are_carried_above_the_projection() -> DFResult<()> {
        use datafusion::prelude::SessionContext;
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t AS VALUES (1, 10), (2, 5), (3, 7)")
            .await?
            .collect()
            .await?;
        let sorted = ctx
            .sql("SELECT column1 + 4 AS id FROM t ORDER BY column2 DESC")
            .await?
            .into_unoptimized_plan();
        let carried = carry_order_keys(sorted)?;
        let names: Vec<String> = carried
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            vec!["id".to_string(), format!("{ORDER_KEY_PREFIX}0")]
        );
        let batches = ctx.execute_logical_plan(carried).await?.collect().await?;
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string();
        let ids: Vec<&str> = text
            .lines()
            .skip(3)
            .filter_map(|l| l.split('|').nth(1).map(str::trim))
            .filter(|v| !v.is_empty())
            .collect();
        assert_eq!(ids, vec!["5", "7", "6"], "{text}");
        let plain = ctx
            .sql("SELECT column1 FROM t")
            .await?
            .into_unoptimized_plan();
        let unchanged = carry_order_keys(plain.clone())?;
        assert_eq!(unchanged, plain);
        Ok(())
    }
}
