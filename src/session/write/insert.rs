//! The write loop: a plan's rows written as data files (partitioned and sorted
//! as the table says) or inlined into the catalog, the files removed again if
//! the statement fails.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::logical_expr::LogicalPlan;
use futures::StreamExt;

use super::{Target, Writer, quoted_name, with_table};
use crate::catalog::TableEntry;
use crate::commit::{AddedFile, ChangeSet, TableRef};
use crate::distributed::write::{LakeWriteNode, WriteTarget, written_files};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::provider::partition::{PartitionSpec, PartitionedWriter};
use crate::write::{WriteOptions, WrittenFile, conform, discard, write_all};

impl Writer<'_> {
    /// Execute `plan` and stream its rows into Parquet files under `table_dir`
    /// (split and tuned by `layout`), refusing NULLs in the `not_null` columns.
    /// When the plan yields at most `inline_limit` rows, nothing is written and
    /// the rows come back instead (for data inlining).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn write_plan(
        &self,
        table_name: &str,
        table_dir: &str,
        table_schema: &SchemaRef,
        not_null: &[usize],
        layout: FileLayout,
        plan: LogicalPlan,
        inline_limit: u64,
    ) -> Result<Written> {
        if self.on_workers && reads_tables(&plan) {
            let target = WriteTarget {
                table_name: table_name.to_string(),
                table_dir: table_dir.to_string(),
                schema: Arc::clone(table_schema),
                not_null: not_null.to_vec(),
                partition: layout.partition,
                options: layout.options,
                name_tag: crate::write::new_name_tag(),
            };
            return self.write_on_workers(target, plan, inline_limit).await;
        }
        let FileLayout { partition, options } = layout;
        let store = self.object_store(table_dir)?;
        let df = self.ctx.execute_logical_plan(plan).await?;
        let mut stream = in_input_order(df).await?;
        let writer = PartitionedWriter::new(
            store,
            table_dir,
            Arc::clone(table_schema),
            partition,
            options,
        );
        let check = |batch: datafusion::common::Result<RecordBatch>| {
            let batch = conform(&batch?, table_schema)?;
            for &i in not_null {
                if batch.column(i).null_count() > 0 {
                    return Err(Error::Constraint(format!(
                        "NOT NULL constraint failed: {table_name}.{}",
                        table_schema.field(i).name()
                    )));
                }
            }
            Ok(batch)
        };
        let mut rows = 0u64;
        // Rows held back while they may still be inlined; nothing is written yet.
        let mut held = Vec::new();
        if inline_limit > 0 {
            while let Some(batch) = stream.next().await {
                let batch = check(batch)?;
                rows += batch.num_rows() as u64;
                held.push(batch);
                if rows > inline_limit {
                    break;
                }
            }
            if rows <= inline_limit {
                return Ok(Written::Held(held, rows));
            }
        }
        let rest = stream.map(|batch| {
            let batch = check(batch)?;
            rows += batch.num_rows() as u64;
            Ok(batch)
        });
        let batches = futures::stream::iter(held.into_iter().map(Ok)).chain(rest);
        let writer = write_all(writer, batches).await?;
        Ok(Written::Files(writer.finish().await?, rows))
    }

    /// [`Self::write_plan`] on the workers of a coordinator: each task of the
    /// input writes the data files of its rows and reports them; nothing is
    /// committed here. A result of at most `inline_limit` rows is read back and
    /// its files removed, so that it is inlined as without workers (if it cannot
    /// be read back, the files stay: the same rows, another layout).
    async fn write_on_workers(
        &self,
        target: WriteTarget,
        plan: LogicalPlan,
        inline_limit: u64,
    ) -> Result<Written> {
        let table_schema = Arc::clone(&target.schema);
        let (table_dir, tag) = (target.table_dir.clone(), target.name_tag);
        let plan = crate::distributed::write::carry_order_keys(plan)?;
        let node = LakeWriteNode::new(plan, target)?.into_plan();
        let df = self.ctx.execute_logical_plan(node).await?;
        let mut stream = df.execute_stream().await?;
        let mut batches = Vec::new();
        let mut failure = None;
        while let Some(batch) = stream.next().await {
            match batch {
                Ok(batch) => batches.push(batch),
                Err(e) => {
                    failure = Some(Error::from(e));
                    break;
                }
            }
        }
        drop(stream);
        let report = written_files(&batches)?;
        let rows = report.rows;
        let files: Vec<PartitionedFile> = report
            .files
            .into_iter()
            .map(|f| (f.file, f.partition))
            .collect();
        let written: Vec<WrittenFile> = files.iter().map(|(f, _)| f.clone()).collect();
        if let Some(e) = failure.or(report.error) {
            // The files reported and those of tasks that never reported, by their tag;
            // the reported ones by name when the store or its listing fails.
            let removed = match self.object_store(&table_dir) {
                Ok(store) => crate::write::remove_tagged(&store, &table_dir, tag).await,
                Err(e) => Err(e),
            };
            if removed.is_err() {
                discard(&written).await;
            }
            return Err(e);
        }
        if inline_limit > 0
            && rows <= inline_limit
            && let Ok(batches) = self.read_back(&written, &table_schema).await
        {
            discard(&written).await;
            return Ok(Written::Held(batches, rows));
        }
        Ok(Written::Files(files, rows))
    }

    /// The rows of data files just written, in the table's file schema.
    async fn read_back(
        &self,
        files: &[WrittenFile],
        schema: &SchemaRef,
    ) -> Result<Vec<RecordBatch>> {
        use datafusion::error::DataFusionError;
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        use object_store::ObjectStoreExt;
        let mut batches = Vec::new();
        for file in files {
            let location = crate::storage::locate(&file.url)?;
            let store = self.ctx.runtime_env().object_store(&location.store_url)?;
            let bytes = store
                .get(&location.path)
                .await
                .map_err(DataFusionError::from)?
                .bytes()
                .await
                .map_err(DataFusionError::from)?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.build())
                .map_err(DataFusionError::from)?;
            for batch in reader {
                batches.push(conform(&batch?, schema)?);
            }
        }
        Ok(batches)
    }

    /// Write rows held back for inlining to Parquet after all (a value has no
    /// inlined form).
    pub(super) async fn write_held(
        &self,
        table_dir: &str,
        table_schema: &SchemaRef,
        layout: FileLayout,
        batches: Vec<RecordBatch>,
    ) -> Result<Vec<PartitionedFile>> {
        let FileLayout { partition, options } = layout;
        let writer = PartitionedWriter::new(
            self.object_store(table_dir)?,
            table_dir,
            Arc::clone(table_schema),
            partition,
            options,
        );
        let writer = write_all(writer, futures::stream::iter(batches.into_iter().map(Ok))).await?;
        writer.finish().await
    }

    /// Write the rows of `input` as new data files of `table` into `changes`.
    pub(super) async fn append(
        &self,
        target: &Target,
        table: &TableEntry,
        input: &LogicalPlan,
        changes: &mut ChangeSet,
    ) -> Result<u64> {
        self.append_rows(target, table, input, false, changes).await
    }

    /// [`Self::append`]; with `row_ids`, `input` ends with each row's existing
    /// row id, written as `_ducklake_internal_row_id`.
    pub(super) async fn append_rows(
        &self,
        target: &Target,
        table: &TableEntry,
        input: &LogicalPlan,
        row_ids: bool,
        changes: &mut ChangeSet,
    ) -> Result<u64> {
        let schema = if row_ids {
            let mut fields: Vec<_> = table.file_schema.fields().iter().cloned().collect();
            fields.push(Arc::new(
                Field::new(crate::spec::ROW_ID_COLUMN, DataType::Int64, true).with_metadata(
                    std::collections::HashMap::from([(
                        crate::catalog::FIELD_ID_KEY.to_string(),
                        crate::spec::ROW_ID_FIELD_ID.to_string(),
                    )]),
                ),
            ));
            Arc::new(Schema::new(fields))
        } else {
            Arc::clone(&table.file_schema)
        };
        let input = self.sorted_for_insert(target, table, input).await?;
        let layout = || async {
            Ok::<_, Error>(FileLayout {
                partition: PartitionSpec::of(table)?,
                options: write_options(target.lake(), table.row.schema_id, Some(table.id()))
                    .await?,
            })
        };
        let written = self
            .write_plan(
                &target.qualified(),
                &table.dir,
                &schema,
                &not_null_columns(table),
                layout().await?,
                input,
                inline_limit(target.lake(), table).await?,
            )
            .await
            .map_err(|e| with_table(e, target))?;
        let (files, rows) = match written {
            Written::Files(files, rows) => (files, rows),
            // No rows: no change, and no snapshot (as in DuckDB).
            Written::Held(_, 0) => return Ok(0),
            Written::Held(batches, rows) => {
                let inlined = inlined_insert(
                    target.lake(),
                    TableRef::Existing(table.id()),
                    &table.columns,
                    &table.file_schema,
                    &table.qualified_name(),
                    &schema,
                    &batches,
                    row_ids,
                )?;
                if let Some(inlined) = inlined {
                    changes.inlined_inserts.push(inlined);
                    return Ok(rows);
                }
                let files = self
                    .write_held(&table.dir, &schema, layout().await?, batches)
                    .await
                    .map_err(|e| with_table(e, target))?;
                (files, rows)
            }
        };
        changes
            .added_files
            .extend(files.into_iter().map(|(file, partition)| AddedFile {
                table: TableRef::Existing(table.id()),
                file,
                partition,
                mapping: None,
            }));
        Ok(rows)
    }

    /// `input` sorted by the table's `SET SORTED BY` keys, as DuckDB sorts the
    /// files it writes (unless the `sort_on_insert` option is false). Keys lakeq
    /// cannot evaluate (a DuckDB macro) leave the rows in their order: the sort
    /// order is a layout hint, never part of a query's answer.
    pub(super) async fn sorted_for_insert(
        &self,
        target: &Target,
        table: &TableEntry,
        input: &LogicalPlan,
    ) -> Result<LogicalPlan> {
        let store = target.lake().store();
        let keys = store
            .sort_keys(table.id(), target.snapshot.snapshot.snapshot_id)
            .await?;
        if keys.is_empty() {
            return Ok(input.clone());
        }
        let metadata = store.metadata().await?;
        if metadata
            .option("sort_on_insert", table.row.schema_id, table.id())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"))
        {
            return Ok(input.clone());
        }
        let mut exprs = Vec::with_capacity(keys.len());
        let qualified = quoted_name(target);
        for key in &keys {
            match crate::dialect::plan::sort_key(&self.ctx.state(), &qualified, &key.expression)
                .await?
            {
                Some(e) => exprs.push(e.sort(!key.descending, key.nulls_first)),
                None => return Ok(input.clone()),
            }
        }
        Ok(
            datafusion::logical_expr::LogicalPlanBuilder::from(input.clone())
                .sort(exprs)?
                .build()?,
        )
    }
}

/// How new data files of a table are laid out: split by partition, cut and
/// encoded by the lake's options.
pub(super) struct FileLayout {
    pub(super) partition: Option<PartitionSpec>,
    pub(super) options: WriteOptions,
}

/// The lake's write options for a table (`set_option`), read fresh: options are
/// not versioned, another session may have set one since the lake was attached.
pub(super) async fn write_options(
    lake: &Lake,
    schema_id: crate::spec::CatalogId,
    table_id: Option<crate::spec::CatalogId>,
) -> Result<WriteOptions> {
    let metadata = lake.store().metadata().await?;
    lake.write_options(&metadata, schema_id, table_id.unwrap_or(-1))
}

/// Indexes of top-level columns declared NOT NULL.
pub(super) fn not_null_columns(table: &TableEntry) -> Vec<usize> {
    table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.row.nulls_allowed)
        .map(|(i, _)| i)
        .collect()
}

/// The rows of `df` as a stream for writing. A `UNION ALL` of inputs of one
/// partition each (`VALUES`, constant selects) is read input after input, so
/// rows get their row ids in the order written, as in DuckDB (DataFusion
/// would interleave the inputs); anything else streams as DataFusion runs it.
pub(super) async fn in_input_order(
    df: datafusion::dataframe::DataFrame,
) -> Result<datafusion::physical_plan::SendableRecordBatchStream> {
    use datafusion::physical_plan::union::UnionExec;
    use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
    let task = Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await?;
    let mut node: &Arc<dyn ExecutionPlan> = &plan;
    let ordered_union = loop {
        let any: &dyn std::any::Any = node.as_ref();
        if let Some(union) = any.downcast_ref::<UnionExec>() {
            break union
                .inputs()
                .iter()
                .all(|i| i.output_partitioning().partition_count() == 1);
        }
        match (
            node.children().as_slice(),
            node.maintains_input_order().as_slice(),
        ) {
            ([child], [true])
                if child.output_partitioning().partition_count()
                    == node.output_partitioning().partition_count() =>
            {
                node = child;
            }
            _ => break false,
        }
    };
    if ordered_union && plan.output_partitioning().partition_count() > 1 {
        let schema = plan.schema();
        let streams = datafusion::physical_plan::execute_stream_partitioned(plan, task)?;
        let chained = futures::stream::iter(streams).flatten();
        return Ok(Box::pin(
            datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, chained),
        ));
    }
    Ok(datafusion::physical_plan::execute_stream(plan, task)?)
}

/// Whether `plan` reads a table (so that a write of its rows is worth
/// sending to workers; `VALUES` and constant selects are written here).
pub(crate) fn reads_tables(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::TreeNode;
    plan.exists(|p| Ok(matches!(p, LogicalPlan::TableScan(_))))
        .unwrap_or(false)
}

/// A written data file with its partition (spec id and values), if any.
pub(super) type PartitionedFile = (WrittenFile, Option<(i64, Vec<Option<String>>)>);

/// What [`Writer::write_plan`] did with the rows.
pub(super) enum Written {
    /// Written to these data files (with their partition values); row count.
    Files(Vec<PartitionedFile>, u64),
    /// Held back, few enough to inline; row count.
    Held(Vec<RecordBatch>, u64),
}

/// How many rows one statement may inline into `table` (0: none), as DuckDB
/// decides (SPEC §8.1): the lake's `data_inlining_row_limit` option (table,
/// then schema, then global scope), else `DATA_INLINING_ROW_LIMIT` given at
/// ATTACH, else 10; 0 for tables with a column that has no inlined form.
pub(super) async fn inline_limit(lake: &Lake, table: &TableEntry) -> Result<u64> {
    let dialect = lake.store().backend().dialect();
    if !crate::commit::inline::can_inline(dialect, &table.columns) {
        return Ok(0);
    }
    configured_inline_limit(lake, table).await
}

/// The lake's inlining row limit for `table`, whatever its columns (deleted
/// rows of its Parquet files are inlined up to it).
pub(super) async fn configured_inline_limit(lake: &Lake, table: &TableEntry) -> Result<u64> {
    crate::commit::inline::configured_limit(lake, table.row.schema_id, table.id()).await
}

/// The rows held back for a table as an inlined insert (`None`: a value has no
/// inlined form, so they go to Parquet). `columns` and `file_schema` are the
/// table's; with `row_ids`, the last column of `schema` (the batches') holds
/// each row's existing row id.
#[allow(clippy::too_many_arguments)]
pub(super) fn inlined_insert(
    lake: &Lake,
    table: TableRef,
    columns: &[crate::catalog::ColumnNode],
    file_schema: &SchemaRef,
    name: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    row_ids: bool,
) -> Result<Option<crate::commit::inline::InlinedInsert>> {
    use crate::commit::inline;
    let batch = datafusion::arrow::compute::concat_batches(schema, batches)?;
    let (batch, ids) = if row_ids {
        let last = batch.num_columns().saturating_sub(1);
        let ids = batch.column(last).as_primitive::<Int64Type>();
        if ids.null_count() > 0 {
            return Ok(None);
        }
        let ids: Vec<i64> = ids.values().to_vec();
        let mut kept = batch;
        kept.remove_column(last);
        (kept, Some(ids))
    } else {
        (batch, None)
    };
    let dialect = lake.store().backend().dialect();
    let Some(rows) = inline::render_rows(dialect, columns, &batch)? else {
        return Ok(None);
    };
    let mut stats = crate::write::StatsCollector::new(Arc::clone(file_schema), name)?;
    stats.add(&conform(&batch, file_schema)?)?;
    let (_, column_stats) = stats.finish()?;
    Ok(Some(inline::InlinedInsert {
        table,
        column_ids: columns.iter().map(|c| c.row.column_id).collect(),
        rows,
        row_ids: ids,
        column_stats,
    }))
}
