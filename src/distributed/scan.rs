//! [`LakeScanExec`]: what a lakeq table scan needs beyond what DataFusion's plan
//! serialization carries, kept next to the scan so it reaches the workers.
//!
//! A lakeq scan is DataFusion's `DataSourceExec` over a `ParquetSource`, plus
//! three things `datafusion-proto` 55 does not serialize (it drops them without
//! an error, so a worker would silently return deleted rows or read renamed
//! columns as NULL):
//! - each file's deleted rows, a `ParquetRowSelection` file extension;
//! - the field-id column mapping, the scan's [`FieldIdAdapterFactory`]
//!   (renames, `initial_default`s, name-mapped files, Hive constants, nested fields);
//! - the footer size hint of each file.
//!
//! [`WrapLakeScans`] (a physical optimizer rule, coordinator only) puts a
//! [`LakeScanExec`] above each such scan. It executes its child unchanged; the
//! codec ([`super::codec::LakeCodec`]) writes the extras with it, and on a
//! worker puts them back on the scan(s) below it.
//!
//! A positions scan (`rowid`, `snapshot_id`, `file_row_number`, the row
//! positions of DELETE, UPDATE and MERGE) reads each row's position in its file
//! as a `RowNumber` virtual column. datafusion-proto 55 serializes a scan's
//! file and partition columns only, and decoding a projection over a virtual
//! column fails. So the child a [`LakeScanExec`] shows (what the engine plans
//! around and sends) is the scan in its *wire form*, the virtual column moved
//! to the end of the file columns, while it executes the scan in its *run
//! form*, rebuilt from the wire form wherever it is (coordinator or worker):
//! [`to_wire_form`] and [`to_run_form`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{FieldRef, Schema};
use datafusion::common::Result as DFResult;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::parquet::ParquetRowSelection;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileSource, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::parquet::arrow::RowNumber;
use datafusion::parquet::arrow::arrow_reader::RowSelection;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::projection::{ProjectionExpr, ProjectionExprs};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion_distributed::DistributedLeafExec;

use crate::provider::adapter::FieldIdAdapterFactory;

/// Per-file extras of a scan, by object path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileExtras {
    /// The rows to read (deleted rows skipped), when some are deleted.
    pub selection: Option<RowSelection>,
    /// Bytes of the footer (and its trailer), when the catalog knows them.
    pub metadata_size_hint: Option<usize>,
}

/// What a lakeq scan carries beyond DataFusion's serialized plan.
#[derive(Debug, Clone, Default)]
pub struct ScanExtras {
    /// By object path (`PartitionedFile::object_meta.location`).
    pub files: HashMap<String, FileExtras>,
    /// The scan's field-id column mapping.
    pub adapter: Option<Arc<FieldIdAdapterFactory>>,
}

impl ScanExtras {
    /// The extras of the lakeq scans in `plan` (all `DataSourceExec`s below it).
    pub fn of(plan: &Arc<dyn ExecutionPlan>) -> DFResult<Self> {
        let mut out = Self::default();
        plan.apply(|node| {
            if let Some(config) = file_scan(node) {
                if out.adapter.is_none() {
                    out.adapter = lakeq_adapter(config);
                }
                for group in &config.file_groups {
                    for file in group.iter() {
                        let extras = FileExtras {
                            selection: file
                                .extension::<ParquetRowSelection>()
                                .map(|s| s.selection().clone()),
                            metadata_size_hint: file.metadata_size_hint,
                        };
                        if extras != FileExtras::default() {
                            out.files
                                .insert(file.object_meta.location.to_string(), extras);
                        }
                    }
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(out)
    }

    /// These extras for the files the scans of `plan` read only: a task's
    /// share of a scan needs its own files' extras, not the whole table's.
    pub fn restricted_to(&self, plan: &Arc<dyn ExecutionPlan>) -> DFResult<Self> {
        fn collect(
            plan: &Arc<dyn ExecutionPlan>,
            all: &HashMap<String, FileExtras>,
            out: &mut HashMap<String, FileExtras>,
        ) -> DFResult<()> {
            plan.apply(|node| {
                if let Some(leaf) = node.downcast_ref::<DistributedLeafExec>() {
                    // The engine's per-task variants hide their scans from `apply`.
                    for inner in std::iter::once(leaf.original()).chain(leaf.variants()) {
                        collect(inner, all, out)?;
                    }
                }
                if let Some(config) = file_scan(node) {
                    for file in config.file_groups.iter().flat_map(|g| g.iter()) {
                        let path = file.object_meta.location.as_ref();
                        if let Some(extras) = all.get(path) {
                            out.insert(path.to_string(), extras.clone());
                        }
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
            Ok(())
        }
        let mut files = HashMap::new();
        collect(plan, &self.files, &mut files)?;
        Ok(Self {
            files,
            adapter: self.adapter.clone(),
        })
    }

    /// Files with deleted rows.
    pub fn files_with_deletes(&self) -> usize {
        self.files
            .values()
            .filter(|f| f.selection.is_some())
            .count()
    }

    /// `plan` with these extras put back on every `DataSourceExec` in it.
    pub fn apply_to(&self, plan: Arc<dyn ExecutionPlan>) -> DFResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(config) = file_scan(&node) else {
                return Ok(Transformed::no(node));
            };
            let mut config = config.clone();
            if let Some(adapter) = &self.adapter {
                config.expr_adapter_factory = Some(Arc::clone(adapter) as _);
            }
            for group in &mut config.file_groups {
                let statistics = group.file_statistics(None).cloned();
                let files = std::mem::take(group)
                    .into_inner()
                    .into_iter()
                    .map(|mut file| {
                        if let Some(extras) = self.files.get(file.object_meta.location.as_ref()) {
                            if let Some(selection) = &extras.selection {
                                file = file
                                    .with_extension(ParquetRowSelection::new(selection.clone()));
                            }
                            if extras.metadata_size_hint.is_some() {
                                file.metadata_size_hint = extras.metadata_size_hint;
                            }
                        }
                        file
                    })
                    .collect();
                let mut rebuilt = FileGroup::new(files);
                if let Some(s) = statistics {
                    rebuilt = rebuilt.with_statistics(Arc::new(s));
                }
                *group = rebuilt;
            }
            Ok(Transformed::yes(
                DataSourceExec::from_data_source(config) as Arc<dyn ExecutionPlan>
            ))
        })
        .map(|t| t.data)
    }
}

/// The file scan configuration of `plan`, if it is a `DataSourceExec` over files.
fn file_scan(plan: &Arc<dyn ExecutionPlan>) -> Option<&FileScanConfig> {
    plan.downcast_ref::<DataSourceExec>()?
        .data_source()
        .downcast_ref::<FileScanConfig>()
}

/// lakeq's column mapping of a scan, if it has one: a lakeq scan marks each of
/// its files with it (DataFusion's adapter factory trait cannot be downcast).
fn lakeq_adapter(config: &FileScanConfig) -> Option<Arc<FieldIdAdapterFactory>> {
    config
        .file_groups
        .iter()
        .flat_map(|g| g.iter())
        .find_map(|f| f.extensions.get_arc::<FieldIdAdapterFactory>())
}

/// Whether `plan` is a scan lakeq made (it maps columns by field id).
fn is_lake_scan(plan: &Arc<dyn ExecutionPlan>) -> bool {
    file_scan(plan).is_some_and(|c| lakeq_adapter(c).is_some())
}

/// A lakeq table scan with the extras its serialized form needs (see the module
/// docs). Executes its one child, in its run form.
#[derive(Debug)]
pub struct LakeScanExec {
    /// The scan in its wire form: the child the engine plans with and sends.
    input: Arc<dyn ExecutionPlan>,
    /// The scan in its run form: what executes (`input` itself unless it reads
    /// row positions).
    run: Arc<dyn ExecutionPlan>,
    extras: Arc<ScanExtras>,
}

impl LakeScanExec {
    /// Wrap the lakeq scan `input`, taking its extras from it.
    pub fn try_new(input: Arc<dyn ExecutionPlan>) -> DFResult<Self> {
        let extras = Arc::new(ScanExtras::of(&input)?);
        Ok(Self {
            input: to_wire_form(Arc::clone(&input))?,
            run: input,
            extras,
        })
    }

    /// `input` (decoded without them) with `extras` put back on its scans.
    pub fn with_extras(input: Arc<dyn ExecutionPlan>, extras: ScanExtras) -> DFResult<Self> {
        let input = extras.apply_to(input)?;
        Ok(Self {
            run: to_run_form(Arc::clone(&input))?,
            input,
            extras: Arc::new(extras),
        })
    }

    /// The extras.
    pub fn extras(&self) -> &ScanExtras {
        &self.extras
    }

    /// The scan below, in its wire form.
    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    /// The scan below as it runs.
    pub fn run_form(&self) -> &Arc<dyn ExecutionPlan> {
        &self.run
    }
}

impl DisplayAs for LakeScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "LakeScanExec: files_with_deletes={}",
            self.extras.files_with_deletes()
        )
    }
}

impl ExecutionPlan for LakeScanExec {
    fn name(&self) -> &'static str {
        "LakeScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.run.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
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
        let [input]: [Arc<dyn ExecutionPlan>; 1] = children.try_into().map_err(|_| {
            datafusion::error::DataFusionError::Internal("LakeScanExec takes one input".into())
        })?;
        Ok(Arc::new(Self {
            run: to_run_form(Arc::clone(&input))?,
            input,
            extras: Arc::clone(&self.extras),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        self.run.execute(partition, context)
    }

    fn metrics(&self) -> Option<datafusion::physical_plan::metrics::MetricsSet> {
        // A positions scan runs a rebuilt copy of the child the plan shows: its
        // metrics (rows, Parquet decoding time) are reported here.
        if Arc::ptr_eq(&self.run, &self.input) {
            return None;
        }
        let mut out = datafusion::physical_plan::metrics::MetricsSet::new();
        let _ = self.run.apply(|node| {
            if let Some(metrics) = node.metrics() {
                for m in metrics.iter() {
                    out.push(Arc::clone(m));
                }
            }
            Ok(TreeNodeRecursion::Continue)
        });
        Some(out)
    }
}

/// Whether `field` is a virtual `RowNumber` column (a row's position in its file).
fn is_row_number(field: &FieldRef) -> bool {
    // (arrow's `ExtensionType` trait, which names it, is not re-exported by DataFusion.)
    let marked = datafusion::arrow::datatypes::Field::new(
        "",
        datafusion::arrow::datatypes::DataType::Int64,
        true,
    )
    .with_extension_type(RowNumber);
    field.extension_type_name().is_some()
        && field.extension_type_name() == marked.extension_type_name()
}

/// A positions scan's Parquet source and configuration, if `plan` is one.
fn parquet_scan(plan: &Arc<dyn ExecutionPlan>) -> Option<(&FileScanConfig, &ParquetSource)> {
    let config = file_scan(plan)?;
    let source = config.file_source().downcast_ref::<ParquetSource>()?;
    Some((config, source))
}

/// `expr` with each column found again by name in `schema` (its index there).
fn columns_by_name(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> DFResult<Arc<dyn PhysicalExpr>> {
    Arc::clone(expr)
        .transform(|e| {
            let Some(column) = e.downcast_ref::<Column>() else {
                return Ok(Transformed::no(e));
            };
            let index = schema.index_of(column.name())?;
            Ok(if index == column.index() {
                Transformed::no(e)
            } else {
                Transformed::yes(Arc::new(Column::new(column.name(), index)) as _)
            })
        })
        .map(|t| t.data)
}

/// The scan `config` over `source` with its columns rearranged: `file` as the
/// file columns and `virtual_columns` as the virtual ones (the partition
/// columns and the file schema's metadata kept); options, reader, predicate
/// and projection kept, their columns found again by name.
fn rearranged(
    config: &FileScanConfig,
    source: &ParquetSource,
    file: Vec<FieldRef>,
    virtual_columns: Vec<FieldRef>,
) -> DFResult<Arc<dyn ExecutionPlan>> {
    let current = source.table_schema();
    let file_schema =
        Arc::new(Schema::new(file).with_metadata(current.file_schema().metadata().clone()));
    let table_schema = TableSchema::builder(file_schema)
        .with_table_partition_cols(current.table_partition_cols().clone())
        .with_virtual_columns(virtual_columns)
        .build();
    let columns = Arc::clone(table_schema.table_schema());
    let mut rebuilt = ParquetSource::new(table_schema)
        .with_table_parquet_options(source.table_parquet_options().clone());
    if let Some(reader) = source.parquet_file_reader_factory() {
        rebuilt = rebuilt.with_parquet_file_reader_factory(Arc::clone(reader));
    }
    if let Some(predicate) = source.filter() {
        rebuilt = rebuilt.with_predicate(columns_by_name(&predicate, &columns)?);
    }
    let file_source: Arc<dyn FileSource> = match source.projection() {
        Some(projection) => {
            let exprs = projection
                .iter()
                .map(|p| {
                    Ok(ProjectionExpr::new(
                        columns_by_name(&p.expr, &columns)?,
                        p.alias.clone(),
                    ))
                })
                .collect::<DFResult<Vec<_>>>()?;
            let projected = rebuilt.try_pushdown_projection(&ProjectionExprs::new(exprs))?;
            match projected {
                Some(p) => p,
                None => Arc::new(rebuilt),
            }
        }
        None => Arc::new(rebuilt),
    };
    let mut config = config.clone();
    config.file_source = file_source;
    Ok(DataSourceExec::from_data_source(config) as Arc<dyn ExecutionPlan>)
}

/// A positions scan in its wire form: the `RowNumber` virtual column moved to
/// the end of the file columns (it keeps its extension type, which marks it).
/// Any other plan is returned as it is.
pub fn to_wire_form(plan: Arc<dyn ExecutionPlan>) -> DFResult<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some((config, source)) = parquet_scan(&node) else {
            return Ok(Transformed::no(node));
        };
        let schema = source.table_schema();
        if schema.virtual_columns().is_empty() {
            return Ok(Transformed::no(node));
        }
        if !schema.virtual_columns().iter().all(is_row_number) {
            return Err(datafusion::error::DataFusionError::NotImplemented(format!(
                "lakeq --workers: a scan with the virtual columns {:?} {}",
                schema
                    .virtual_columns()
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>(),
                super::ONE_MACHINE_ONLY
            )));
        }
        let file = schema
            .file_schema()
            .fields()
            .iter()
            .chain(schema.virtual_columns().iter())
            .cloned()
            .collect();
        Ok(Transformed::yes(rearranged(
            config,
            source,
            file,
            Vec::new(),
        )?))
    })
    .map(|t| t.data)
}

/// A plan whose scans may be in their wire form ([`to_wire_form`]) with those
/// scans in their run form again: file columns marked `RowNumber` back among
/// the virtual columns. Looks into the per-task variants of the engine's
/// `DistributedLeafExec`.
pub fn to_run_form(plan: Arc<dyn ExecutionPlan>) -> DFResult<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        if let Some(leaf) = node.downcast_ref::<DistributedLeafExec>() {
            let original = to_run_form(Arc::clone(leaf.original()))?;
            if Arc::ptr_eq(&original, leaf.original()) {
                return Ok(Transformed::no(node));
            }
            let variants = leaf
                .variants()
                .iter()
                .map(|v| to_run_form(Arc::clone(v)))
                .collect::<DFResult<Vec<_>>>()?;
            return Ok(Transformed::yes(
                Arc::new(DistributedLeafExec::try_new(original, variants)?) as _,
            ));
        }
        let Some((config, source)) = parquet_scan(&node) else {
            return Ok(Transformed::no(node));
        };
        let schema = source.table_schema();
        let (positions, file_fields): (Vec<FieldRef>, Vec<FieldRef>) = schema
            .file_schema()
            .fields()
            .iter()
            .cloned()
            .partition(is_row_number);
        if positions.is_empty() {
            return Ok(Transformed::no(node));
        }
        let virtual_columns = schema
            .virtual_columns()
            .iter()
            .cloned()
            .chain(positions)
            .collect();
        Ok(Transformed::yes(rearranged(
            config,
            source,
            file_fields,
            virtual_columns,
        )?))
    })
    .map(|t| t.data)
}

/// An error if `plan` holds an expression a worker cannot rebuild:
/// - lakeq's `WkbToWkt` over `geometry` columns: datafusion-distributed 4.0's
///   codec chain has no hook for custom expressions;
/// - the `filename` virtual column's function, which holds the coordinator's
///   map of data file ids to paths (datafusion-distributed's own codec answers
///   every function's encoding first, by name only).
fn refuse_what_workers_cannot_run(plan: &Arc<dyn ExecutionPlan>) -> DFResult<()> {
    let mut found = None;
    plan.apply(|node| {
        node.apply_expressions(&mut |expr| {
            expr.apply(|e| {
                let any: &dyn std::any::Any = e.as_ref();
                if any
                    .downcast_ref::<crate::provider::adapter::WkbToWkt>()
                    .is_some()
                {
                    found = Some(
                        "a plan over geometry columns runs on one machine only for now (their \
                         WKB-to-WKT conversion cannot be sent to a worker)",
                    );
                } else if any
                    .downcast_ref::<datafusion::physical_expr::ScalarFunctionExpr>()
                    .is_some_and(|f| f.name() == crate::provider::table::ROW_FILENAME_FUNCTION)
                {
                    found = Some(
                        "the filename virtual column runs on one machine only for now (the \
                         names of the table's files stay on the coordinator)",
                    );
                }
                Ok(if found.is_some() {
                    TreeNodeRecursion::Stop
                } else {
                    TreeNodeRecursion::Continue
                })
            })
        })?;
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    match found {
        Some(why) => Err(datafusion::error::DataFusionError::NotImplemented(format!(
            "lakeq --workers: {why}"
        ))),
        None => Ok(()),
    }
}

/// Puts a [`LakeScanExec`] above every lakeq scan of a plan (run last, on a
/// coordinator only: a local plan does not need it).
#[derive(Debug, Default)]
pub struct WrapLakeScans;

impl PhysicalOptimizerRule for WrapLakeScans {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        if plan.downcast_ref::<LakeScanExec>().is_some() {
            // Already wrapped (the rule ran before on this plan).
            return Ok(plan);
        }
        refuse_what_workers_cannot_run(&plan)?;
        plan.transform_down(|node| {
            if node.downcast_ref::<LakeScanExec>().is_some() {
                return Ok(Transformed::new(node, false, TreeNodeRecursion::Jump));
            }
            if !is_lake_scan(&node) {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::new(
                Arc::new(LakeScanExec::try_new(node)?) as Arc<dyn ExecutionPlan>,
                true,
                TreeNodeRecursion::Jump,
            ))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "lakeq_wrap_lake_scans"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
