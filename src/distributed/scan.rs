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

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::common::Result as DFResult;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::parquet::ParquetRowSelection;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::parquet::arrow::arrow_reader::RowSelection;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};

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
/// docs). Executes its one child unchanged.
#[derive(Debug)]
pub struct LakeScanExec {
    input: Arc<dyn ExecutionPlan>,
    extras: Arc<ScanExtras>,
}

impl LakeScanExec {
    /// Wrap the lakeq scan `input`, taking its extras from it.
    pub fn try_new(input: Arc<dyn ExecutionPlan>) -> DFResult<Self> {
        let extras = Arc::new(ScanExtras::of(&input)?);
        Ok(Self { input, extras })
    }

    /// `input` (decoded without them) with `extras` put back on its scans.
    pub fn with_extras(input: Arc<dyn ExecutionPlan>, extras: ScanExtras) -> DFResult<Self> {
        let input = extras.apply_to(input)?;
        Ok(Self {
            input,
            extras: Arc::new(extras),
        })
    }

    /// The extras.
    pub fn extras(&self) -> &ScanExtras {
        &self.extras
    }

    /// The scan below.
    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
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
        self.input.properties()
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
            input,
            extras: Arc::clone(&self.extras),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

/// An error if `plan` reads `geometry` columns: datafusion-distributed 4.0's
/// codec chain has no hook for custom expressions (lakeq's `WkbToWkt`), so
/// such a plan cannot reach a worker.
fn refuse_geometry(plan: &Arc<dyn ExecutionPlan>) -> DFResult<()> {
    let mut found = false;
    plan.apply(|node| {
        node.apply_expressions(&mut |expr| {
            expr.apply(|e| {
                let any: &dyn std::any::Any = e.as_ref();
                if any
                    .downcast_ref::<crate::provider::adapter::WkbToWkt>()
                    .is_some()
                {
                    found = true;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    if found {
        return Err(datafusion::error::DataFusionError::NotImplemented(
            "lakeq --workers: a plan over geometry columns runs on one machine only for now (their \
             WKB-to-WKT conversion cannot be sent to a worker)"
                .into(),
        ));
    }
    Ok(())
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
        refuse_geometry(&plan)?;
        plan.transform_down(|node| {
            if node.downcast_ref::<LakeScanExec>().is_some() {
                return Ok(Transformed::new(node, false, TreeNodeRecursion::Jump));
            }
            if !is_lake_scan(&node) {
                return Ok(Transformed::no(node));
            }
            if let Some(config) = file_scan(&node)
                && !config
                    .file_source()
                    .table_schema()
                    .virtual_columns()
                    .is_empty()
            {
                return Err(datafusion::error::DataFusionError::NotImplemented(
                    "lakeq --workers: a scan with row positions (rowid, snapshot_id, filename, \
                     file_row_number, DELETE/UPDATE) runs on one machine only for now"
                        .into(),
                ));
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
