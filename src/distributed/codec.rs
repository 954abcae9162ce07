//! [`LakeCodec`]: the `PhysicalExtensionCodec` for lakeq's own plan nodes and
//! expressions, used on the coordinator (encode) and on workers (decode).
//!
//! | lakeq piece | where it comes from | carried as |
//! |---|---|---|
//! | [`LakeScanExec`] (deleted rows, field-id mapping, footer hints) | every table scan | [`ScanProto`] |
//! | [`ConcatExec`] (insertion order of small scans) | small scans: files, then inlined rows | its schema |
//! | [`WkbToWkt`] | scans of `geometry` columns | its argument |
//! | [`LakeWriteExec`] (data files written on workers) | `INSERT ... SELECT`, `CREATE TABLE AS` with workers | [`WriteProto`] |
//! | `lakeq_checked_add/sub/mul` | integer `+ - *` | by name (registered on workers) |
//!
//! Everything else of a lakeq plan is DataFusion's own and serialized by
//! `datafusion-proto`: the Parquet `DataSourceExec` (files, partition values,
//! statistics, projection, predicate, Parquet options), the `MemorySourceConfig`
//! of inlined rows, projections, filters, joins, aggregates, and lakeq's DuckDB
//! functions, which are found by name in the worker's registry.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::ScalarUDF;
use datafusion::parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr_common::physical_expr::proto_decode::PhysicalExprDecodeCtx;
use datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use datafusion_proto::protobuf;
use prost::Message;

use super::scan::{FileExtras, LakeScanExec, ScanExtras};
use super::write::{LakeWriteExec, WriteTarget};
use crate::catalog::ColumnNode;
use crate::provider::adapter::{FieldIdAdapterFactory, WkbToWkt};
use crate::provider::concat::ConcatExec;
use crate::provider::partition::PartitionSpec;
use crate::spec::rows::ColumnRow;
use crate::write::WriteOptions;

/// What a lakeq plan node or expression is on the wire.
#[derive(Clone, PartialEq, Message)]
pub struct LakeNodeProto {
    /// [`KIND_SCAN`], [`KIND_CONCAT`] or [`KIND_WKB_TO_WKT`].
    #[prost(uint32, tag = "1")]
    pub kind: u32,
    /// The output schema ([`ConcatExec`]).
    #[prost(message, optional, tag = "2")]
    pub schema: Option<protobuf::Schema>,
    /// The scan's extras ([`LakeScanExec`]).
    #[prost(message, optional, tag = "3")]
    pub scan: Option<ScanProto>,
    /// Where a [`LakeWriteExec`] writes.
    #[prost(message, optional, tag = "4")]
    pub write: Option<WriteProto>,
}

/// A [`WriteTarget`].
#[derive(Clone, PartialEq, Message)]
pub struct WriteProto {
    /// The table's qualified name.
    #[prost(string, tag = "1")]
    pub table_name: String,
    /// The table's data directory.
    #[prost(string, tag = "2")]
    pub table_dir: String,
    /// The file schema (field ids in the field metadata).
    #[prost(message, optional, tag = "3")]
    pub schema: Option<protobuf::Schema>,
    /// NOT NULL column indexes.
    #[prost(uint64, repeated, tag = "4")]
    pub not_null: Vec<u64>,
    /// Whether the table is partitioned (then [`Self::partition_id`] and [`Self::keys`]).
    #[prost(bool, tag = "5")]
    pub partitioned: bool,
    /// `ducklake_partition_info.partition_id`.
    #[prost(int64, tag = "6")]
    pub partition_id: i64,
    /// The partition key parts.
    #[prost(message, repeated, tag = "7")]
    pub keys: Vec<PartitionKeyProto>,
    /// Target file size in bytes.
    #[prost(uint64, tag = "8")]
    pub target_file_size: u64,
    /// Rows per row group.
    #[prost(uint64, tag = "9")]
    pub row_group_size: u64,
    /// Compression ([`super::write::compression_text`]).
    #[prost(string, tag = "10")]
    pub compression: String,
    /// The node's output partitions as planned on the coordinator.
    #[prost(uint64, tag = "11")]
    pub partitions: u64,
    /// [`WriteTarget::name_tag`].
    #[prost(uint64, tag = "12")]
    pub name_tag: u64,
}

/// One part of a partition key.
#[derive(Clone, PartialEq, Message)]
pub struct PartitionKeyProto {
    /// Top-level column index.
    #[prost(uint64, tag = "1")]
    pub column: u64,
    /// Transform (`identity`, `year`, ...).
    #[prost(string, tag = "2")]
    pub transform: String,
    /// Directory key.
    #[prost(string, tag = "3")]
    pub key: String,
}

/// [`LakeNodeProto::kind`] of a [`LakeScanExec`].
pub const KIND_SCAN: u32 = 1;
/// [`LakeNodeProto::kind`] of a [`ConcatExec`].
pub const KIND_CONCAT: u32 = 2;
/// [`LakeNodeProto::kind`] of a [`WkbToWkt`] expression.
pub const KIND_WKB_TO_WKT: u32 = 3;
/// [`LakeNodeProto::kind`] of a [`LakeWriteExec`].
pub const KIND_WRITE: u32 = 4;

/// A write target in its wire form.
pub fn write_to_proto(target: &WriteTarget) -> DFResult<WriteProto> {
    let (partitioned, partition_id, keys) = match &target.partition {
        Some(spec) => (
            true,
            spec.partition_id,
            spec.keys
                .iter()
                .map(|(column, transform, key)| PartitionKeyProto {
                    column: *column as u64,
                    transform: transform.clone(),
                    key: key.clone(),
                })
                .collect(),
        ),
        None => (false, 0, Vec::new()),
    };
    Ok(WriteProto {
        table_name: target.table_name.clone(),
        table_dir: target.table_dir.clone(),
        schema: Some(
            target
                .schema
                .as_ref()
                .try_into()
                .map_err(|e| proto_err("write schema", e))?,
        ),
        not_null: target.not_null.iter().map(|&i| i as u64).collect(),
        partitioned,
        partition_id,
        keys,
        target_file_size: target.options.target_file_size,
        row_group_size: target.options.row_group_size as u64,
        compression: super::write::compression_text(target.options.compression)?,
        partitions: 0,
        name_tag: target.name_tag,
    })
}

/// A write target from its wire form.
pub fn write_from_proto(p: &WriteProto) -> DFResult<WriteTarget> {
    let index = |n: u64| usize::try_from(n).map_err(|e| proto_err("column index", e));
    let schema: Schema = p
        .schema
        .as_ref()
        .ok_or_else(|| proto_err("LakeWriteExec", "no schema"))?
        .try_into()
        .map_err(|e| proto_err("write schema", e))?;
    let partition = if p.partitioned {
        Some(PartitionSpec {
            partition_id: p.partition_id,
            keys: p
                .keys
                .iter()
                .map(|k| Ok((index(k.column)?, k.transform.clone(), k.key.clone())))
                .collect::<DFResult<_>>()?,
        })
    } else {
        None
    };
    Ok(WriteTarget {
        table_name: p.table_name.clone(),
        table_dir: p.table_dir.clone(),
        schema: Arc::new(schema),
        not_null: p
            .not_null
            .iter()
            .map(|&n| index(n))
            .collect::<DFResult<_>>()?,
        partition,
        options: WriteOptions {
            target_file_size: p.target_file_size,
            row_group_size: index(p.row_group_size)?,
            compression: super::write::compression_from_text(&p.compression)?,
        },
        name_tag: p.name_tag,
    })
}

/// The extras of a lakeq scan.
#[derive(Clone, PartialEq, Message)]
pub struct ScanProto {
    /// Per file.
    #[prost(message, repeated, tag = "1")]
    pub files: Vec<FileProto>,
    /// The column mapping.
    #[prost(message, optional, tag = "2")]
    pub adapter: Option<AdapterProto>,
}

/// The extras of one file.
#[derive(Clone, PartialEq, Message)]
pub struct FileProto {
    /// Object path.
    #[prost(string, tag = "1")]
    pub path: String,
    /// Footer size hint.
    #[prost(uint64, optional, tag = "2")]
    pub metadata_size_hint: Option<u64>,
    /// Whether [`Self::selectors`] is a row selection (an empty one selects nothing).
    #[prost(bool, tag = "3")]
    pub has_selection: bool,
    /// The row selection: runs of rows to read or skip.
    #[prost(message, repeated, tag = "4")]
    pub selectors: Vec<SelectorProto>,
}

/// A run of rows of a row selection.
#[derive(Clone, PartialEq, Message)]
pub struct SelectorProto {
    /// Rows in the run.
    #[prost(uint64, tag = "1")]
    pub row_count: u64,
    /// Skip them (`true`) or read them.
    #[prost(bool, tag = "2")]
    pub skip: bool,
}

/// A [`FieldIdAdapterFactory`].
#[derive(Clone, PartialEq, Message)]
pub struct AdapterProto {
    /// Column id by table column name.
    #[prost(message, repeated, tag = "1")]
    pub field_ids: Vec<NamedIdProto>,
    /// `initial_default` by table column name.
    #[prost(message, repeated, tag = "2")]
    pub initial_defaults: Vec<NamedValueProto>,
    /// File column name by table column name (name-mapped files).
    #[prost(message, repeated, tag = "3")]
    pub file_names: Vec<NamePairProto>,
    /// Hive constants by table column name.
    #[prost(message, repeated, tag = "4")]
    pub constants: Vec<NamedValueProto>,
    /// Nested column ids with a non-NULL `initial_default`.
    #[prost(int64, repeated, tag = "5")]
    pub defaulted_nested: Vec<i64>,
    /// Column trees of nested columns.
    #[prost(message, repeated, tag = "6")]
    pub nested: Vec<ColumnProto>,
}

/// A name and an id.
#[derive(Clone, PartialEq, Message)]
pub struct NamedIdProto {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Id.
    #[prost(int64, tag = "2")]
    pub id: i64,
}

/// A name and a value.
#[derive(Clone, PartialEq, Message)]
pub struct NamedValueProto {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(message, optional, tag = "2")]
    pub value: Option<protobuf::ScalarValue>,
}

/// Two names.
#[derive(Clone, PartialEq, Message)]
pub struct NamePairProto {
    /// Table column name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// File column name.
    #[prost(string, tag = "2")]
    pub other: String,
}

/// A column tree: what the field-id mapping reads of a [`ColumnNode`].
#[derive(Clone, PartialEq, Message)]
pub struct ColumnProto {
    /// Column id.
    #[prost(int64, tag = "1")]
    pub column_id: i64,
    /// Name.
    #[prost(string, tag = "2")]
    pub column_name: String,
    /// DuckLake type.
    #[prost(string, tag = "3")]
    pub column_type: String,
    /// `initial_default`.
    #[prost(string, optional, tag = "4")]
    pub initial_default: Option<String>,
    /// Children.
    #[prost(message, repeated, tag = "5")]
    pub children: Vec<ColumnProto>,
}

fn proto_err(what: &str, e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Internal(format!("lakeq codec: {what}: {e}"))
}

fn value_to_proto(value: &ScalarValue) -> DFResult<protobuf::ScalarValue> {
    value
        .try_into()
        .map_err(|e| proto_err("encoding a value", e))
}

fn value_from_proto(value: Option<&protobuf::ScalarValue>) -> DFResult<ScalarValue> {
    let value = value.ok_or_else(|| proto_err("decoding a value", "missing"))?;
    value
        .try_into()
        .map_err(|e| proto_err("decoding a value", e))
}

fn column_to_proto(node: &ColumnNode) -> ColumnProto {
    ColumnProto {
        column_id: node.row.column_id,
        column_name: node.row.column_name.clone(),
        column_type: node.row.column_type.clone(),
        initial_default: node.row.initial_default.clone(),
        children: node.children.iter().map(column_to_proto).collect(),
    }
}

fn column_from_proto(p: &ColumnProto) -> DFResult<ColumnNode> {
    let ty = p
        .column_type
        .parse()
        .map_err(|e| proto_err(&format!("column type '{}'", p.column_type), e))?;
    Ok(ColumnNode {
        row: ColumnRow {
            column_id: p.column_id,
            begin_snapshot: 0,
            end_snapshot: None,
            table_id: 0,
            column_order: 0,
            column_name: p.column_name.clone(),
            column_type: p.column_type.clone(),
            initial_default: p.initial_default.clone(),
            default_value: None,
            default_value_type: None,
            nulls_allowed: true,
            parent_column: None,
        },
        ty,
        children: p
            .children
            .iter()
            .map(column_from_proto)
            .collect::<DFResult<_>>()?,
    })
}

/// Sorted by name, so that one scan always encodes to the same bytes.
fn sorted<V>(map: &HashMap<String, V>) -> Vec<(&String, &V)> {
    let mut out: Vec<_> = map.iter().collect();
    out.sort_by(|a, b| a.0.cmp(b.0));
    out
}

fn adapter_to_proto(a: &FieldIdAdapterFactory) -> DFResult<AdapterProto> {
    let mut defaulted_nested: Vec<i64> = a.defaulted_nested.iter().copied().collect();
    defaulted_nested.sort_unstable();
    Ok(AdapterProto {
        field_ids: sorted(&a.field_ids)
            .into_iter()
            .map(|(name, id)| NamedIdProto {
                name: name.clone(),
                id: *id,
            })
            .collect(),
        initial_defaults: sorted(&a.initial_defaults)
            .into_iter()
            .map(|(name, v)| {
                Ok(NamedValueProto {
                    name: name.clone(),
                    value: Some(value_to_proto(v)?),
                })
            })
            .collect::<DFResult<_>>()?,
        file_names: sorted(&a.file_names)
            .into_iter()
            .map(|(name, other)| NamePairProto {
                name: name.clone(),
                other: other.clone(),
            })
            .collect(),
        constants: sorted(&a.constants)
            .into_iter()
            .map(|(name, v)| {
                Ok(NamedValueProto {
                    name: name.clone(),
                    value: Some(value_to_proto(v)?),
                })
            })
            .collect::<DFResult<_>>()?,
        defaulted_nested,
        nested: sorted(&a.nested)
            .into_iter()
            .map(|(_, node)| column_to_proto(node))
            .collect(),
    })
}

fn adapter_from_proto(p: &AdapterProto) -> DFResult<FieldIdAdapterFactory> {
    Ok(FieldIdAdapterFactory {
        field_ids: p.field_ids.iter().map(|f| (f.name.clone(), f.id)).collect(),
        initial_defaults: p
            .initial_defaults
            .iter()
            .map(|v| Ok((v.name.clone(), value_from_proto(v.value.as_ref())?)))
            .collect::<DFResult<_>>()?,
        file_names: p
            .file_names
            .iter()
            .map(|f| (f.name.clone(), f.other.clone()))
            .collect(),
        constants: p
            .constants
            .iter()
            .map(|v| Ok((v.name.clone(), value_from_proto(v.value.as_ref())?)))
            .collect::<DFResult<_>>()?,
        defaulted_nested: p.defaulted_nested.iter().copied().collect::<HashSet<_>>(),
        nested: p
            .nested
            .iter()
            .map(|c| Ok((c.column_name.clone(), Arc::new(column_from_proto(c)?))))
            .collect::<DFResult<_>>()?,
    })
}

/// The wire form of a scan's extras.
pub fn scan_to_proto(extras: &ScanExtras) -> DFResult<ScanProto> {
    let mut files: Vec<FileProto> = sorted(&extras.files)
        .into_iter()
        .map(|(path, f)| FileProto {
            path: path.clone(),
            metadata_size_hint: f.metadata_size_hint.map(|n| n as u64),
            has_selection: f.selection.is_some(),
            selectors: f
                .selection
                .iter()
                .flat_map(|s| s.iter())
                .map(|s| SelectorProto {
                    row_count: s.row_count as u64,
                    skip: s.skip,
                })
                .collect(),
        })
        .collect();
    files.shrink_to_fit();
    Ok(ScanProto {
        files,
        adapter: extras
            .adapter
            .as_deref()
            .map(adapter_to_proto)
            .transpose()?,
    })
}

/// A scan's extras from their wire form.
pub fn scan_from_proto(p: &ScanProto) -> DFResult<ScanExtras> {
    let mut files = HashMap::with_capacity(p.files.len());
    for f in &p.files {
        let selection = f.has_selection.then(|| {
            RowSelection::from(
                f.selectors
                    .iter()
                    .map(|s| {
                        let n = usize::try_from(s.row_count).unwrap_or(usize::MAX);
                        if s.skip {
                            RowSelector::skip(n)
                        } else {
                            RowSelector::select(n)
                        }
                    })
                    .collect::<Vec<_>>(),
            )
        });
        let metadata_size_hint = f
            .metadata_size_hint
            .map(|n| usize::try_from(n).map_err(|e| proto_err("footer size", e)))
            .transpose()?;
        files.insert(
            f.path.clone(),
            FileExtras {
                selection,
                metadata_size_hint,
            },
        );
    }
    Ok(ScanExtras {
        files,
        adapter: p
            .adapter
            .as_ref()
            .map(adapter_from_proto)
            .transpose()?
            .map(Arc::new),
    })
}

/// lakeq's [`PhysicalExtensionCodec`]. `log_scans`: print a line to stderr for
/// each lakeq scan decoded (a worker's record of the work it was given).
#[derive(Debug, Default, Clone)]
pub struct LakeCodec {
    /// A name for the log lines (`lakeq worker 127.0.0.1:50051`); `None`: no log.
    pub log_as: Option<String>,
}

impl LakeCodec {
    /// A codec that logs each scan it decodes under `name`.
    pub fn logging(name: impl Into<String>) -> Self {
        Self {
            log_as: Some(name.into()),
        }
    }
}

fn encode(node: &LakeNodeProto, buf: &mut Vec<u8>) -> DFResult<()> {
    node.encode(buf).map_err(|e| proto_err("encoding", e))
}

fn decode(buf: &[u8]) -> DFResult<LakeNodeProto> {
    LakeNodeProto::decode(buf).map_err(|e| proto_err("decoding", e))
}

impl PhysicalExtensionCodec for LakeCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let node = decode(buf)?;
        match node.kind {
            KIND_SCAN => {
                let [input] = inputs else {
                    return Err(proto_err("LakeScanExec", "takes one input"));
                };
                let extras = scan_from_proto(&node.scan.unwrap_or_default())?;
                let scan = LakeScanExec::with_extras(Arc::clone(input), extras)?;
                if let Some(name) = &self.log_as {
                    let (files, rows) = scan_size(scan.input());
                    let positions = if Arc::ptr_eq(scan.run_form(), scan.input()) {
                        ""
                    } else {
                        ", row positions"
                    };
                    eprintln!(
                        "{name}: scan task: {files} files ({} with deleted rows), {rows} inlined \
                         rows{positions}",
                        scan.extras().files_with_deletes()
                    );
                }
                Ok(Arc::new(scan))
            }
            KIND_CONCAT => {
                let schema: Schema = node
                    .schema
                    .as_ref()
                    .ok_or_else(|| proto_err("ConcatExec", "no schema"))?
                    .try_into()
                    .map_err(|e| proto_err("ConcatExec schema", e))?;
                Ok(Arc::new(ConcatExec::new(inputs.to_vec(), Arc::new(schema))))
            }
            KIND_WRITE => {
                let [input] = inputs else {
                    return Err(proto_err("LakeWriteExec", "takes one input"));
                };
                let proto = node
                    .write
                    .as_ref()
                    .ok_or_else(|| proto_err("LakeWriteExec", "no target"))?;
                let target = write_from_proto(proto)?;
                let partitions = usize::try_from(proto.partitions)
                    .map_err(|e| proto_err("LakeWriteExec partitions", e))?;
                if let Some(name) = &self.log_as {
                    eprintln!("{name}: write task: {}", target.table_name);
                }
                Ok(Arc::new(LakeWriteExec::with_fixed_partitions(
                    Arc::clone(input),
                    Arc::new(target),
                    partitions,
                )))
            }
            other => Err(proto_err("plan node", format!("unknown kind {other}"))),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DFResult<()> {
        let proto = if let Some(scan) = node.downcast_ref::<LakeScanExec>() {
            LakeNodeProto {
                kind: KIND_SCAN,
                schema: None,
                // A task's stage carries the extras of its own files only.
                scan: Some(scan_to_proto(&scan.extras().restricted_to(scan.input())?)?),
                write: None,
            }
        } else if node.downcast_ref::<ConcatExec>().is_some() {
            LakeNodeProto {
                kind: KIND_CONCAT,
                schema: Some(
                    node.schema()
                        .as_ref()
                        .try_into()
                        .map_err(|e| proto_err("ConcatExec schema", e))?,
                ),
                scan: None,
                write: None,
            }
        } else if let Some(write) = node.downcast_ref::<LakeWriteExec>() {
            LakeNodeProto {
                kind: KIND_WRITE,
                schema: None,
                scan: None,
                write: Some(WriteProto {
                    partitions: write.partitions() as u64,
                    ..write_to_proto(write.target())?
                }),
            }
        } else {
            return Err(DataFusionError::NotImplemented(format!(
                "lakeq --workers: the plan node {} cannot be sent to a worker",
                node.name()
            )));
        };
        encode(&proto, buf)
    }

    fn try_decode_udf(&self, name: &str, _buf: &[u8]) -> DFResult<Arc<ScalarUDF>> {
        if let Some(f) = crate::dialect::semantics::checked_arithmetic_functions()
            .into_iter()
            .find(|f| f.name() == name)
        {
            return Ok(Arc::new(f));
        }
        if name == crate::provider::table::ROW_FILE_ROW_NUMBER_FUNCTION {
            return Ok(Arc::new(crate::provider::table::file_row_number_function()));
        }
        Err(DataFusionError::NotImplemented(format!(
            "lakeq --workers: the function {name} is not known to the worker (a lakeq function \
             that depends on the coordinator's state, such as the filename virtual column, \
             runs on one machine only for now)"
        )))
    }

    fn try_decode_expr(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn PhysicalExpr>],
        _ctx: &PhysicalExprDecodeCtx<'_>,
    ) -> DFResult<Arc<dyn PhysicalExpr>> {
        let node = decode(buf)?;
        match (node.kind, inputs) {
            (KIND_WKB_TO_WKT, [wkb]) => Ok(Arc::new(WkbToWkt::new(Arc::clone(wkb)))),
            (kind, _) => Err(proto_err(
                "expression",
                format!("unknown kind {kind} with {} inputs", inputs.len()),
            )),
        }
    }

    fn try_encode_expr(
        &self,
        node: &Arc<dyn PhysicalExpr>,
        buf: &mut Vec<u8>,
        _ctx: &PhysicalExprEncodeCtx<'_>,
    ) -> DFResult<()> {
        let any: &dyn std::any::Any = node.as_ref();
        if any.downcast_ref::<WkbToWkt>().is_some() {
            return encode(
                &LakeNodeProto {
                    kind: KIND_WKB_TO_WKT,
                    schema: None,
                    scan: None,
                    write: None,
                },
                buf,
            );
        }
        Err(DataFusionError::NotImplemented(format!(
            "lakeq --workers: the expression {node} cannot be sent to a worker"
        )))
    }
}

/// Files and in-memory rows of the scans in `plan`.
fn scan_size(plan: &Arc<dyn ExecutionPlan>) -> (usize, usize) {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::datasource::physical_plan::FileScanConfig;
    use datafusion::datasource::source::DataSourceExec;
    let (mut files, mut rows) = (0, 0);
    let _ = plan.apply(|node| {
        if let Some(source) = node.downcast_ref::<DataSourceExec>() {
            if let Some(c) = source.data_source().downcast_ref::<FileScanConfig>() {
                files += c.file_groups.iter().map(|g| g.len()).sum::<usize>();
            }
            if let Some(m) = source.data_source().downcast_ref::<MemorySourceConfig>() {
                rows += m
                    .partitions()
                    .iter()
                    .flatten()
                    .map(|b| b.num_rows())
                    .sum::<usize>();
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    (files, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BinaryArray, Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::datasource::listing::PartitionedFile;
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::datasource::physical_plan::parquet::ParquetRowSelection;
    use datafusion::datasource::physical_plan::{
        FileGroup, FileScanConfig, FileScanConfigBuilder, ParquetSource,
    };
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::datasource::table_schema::TableSchema;
    use datafusion::execution::object_store::ObjectStoreUrl;
    use datafusion::physical_expr::expressions::Column;
    use datafusion::physical_optimizer::PhysicalOptimizerRule;
    use datafusion::physical_plan::projection::ProjectionExec;
    use datafusion::prelude::SessionContext;
    use datafusion_proto::bytes::{
        physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
    };

    fn round_trip(plan: Arc<dyn ExecutionPlan>) -> DFResult<Arc<dyn ExecutionPlan>> {
        let codec = LakeCodec::default();
        let bytes = physical_plan_to_bytes_with_extension_codec(plan, &codec)?;
        let ctx = SessionContext::new();
        physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &codec)
    }

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]))
    }

    fn memory(values: Vec<i64>) -> DFResult<Arc<dyn ExecutionPlan>> {
        let batch = RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(values))])?;
        Ok(MemorySourceConfig::try_new_exec(&[vec![batch]], schema(), None)? as _)
    }

    async fn rows(plan: Arc<dyn ExecutionPlan>) -> DFResult<Vec<String>> {
        let ctx = SessionContext::new();
        let batches = datafusion::physical_plan::collect(plan, ctx.task_ctx()).await?;
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?;
        Ok(text.to_string().lines().map(String::from).collect())
    }

    /// A lakeq-style scan: a file with deleted rows and a footer hint, marked
    /// with its column mapping.
    fn lake_scan() -> DFResult<Arc<dyn ExecutionPlan>> {
        let mut adapter = FieldIdAdapterFactory::default();
        adapter.field_ids.insert("id".into(), 1);
        adapter
            .initial_defaults
            .insert("id".into(), ScalarValue::Int64(Some(5)));
        let adapter = Arc::new(adapter);
        let mut file = PartitionedFile::new("lake/main/t/a.parquet", 4096)
            .with_metadata_size_hint(512)
            .with_extension(ParquetRowSelection::new(RowSelection::from(vec![
                RowSelector::select(2),
                RowSelector::skip(1),
                RowSelector::select(7),
            ])));
        file.extensions.insert_arc(Arc::clone(&adapter));
        let source = ParquetSource::new(TableSchema::builder(schema()).build());
        let config =
            FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source))
                .with_file_groups(vec![FileGroup::new(vec![file])])
                .with_expr_adapter(Some(adapter as _))
                .build();
        Ok(DataSourceExec::from_data_source(config) as _)
    }

    fn only_file_scan(plan: &Arc<dyn ExecutionPlan>) -> Option<FileScanConfig> {
        use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
        let mut found = None;
        let _ = plan.apply(|n| {
            if let Some(c) = n
                .downcast_ref::<DataSourceExec>()
                .and_then(|d| d.data_source().downcast_ref::<FileScanConfig>())
            {
                found = Some(c.clone());
            }
            Ok(TreeNodeRecursion::Continue)
        });
        found
    }

    #[test]
    fn plain_serialization_drops_deleted_rows_and_the_mapping() -> DFResult<()> {
        // Why LakeScanExec exists: datafusion-proto alone loses both.
        let back = round_trip(lake_scan()?)?;
        let config = only_file_scan(&back).ok_or_else(|| proto_err("test", "no scan"))?;
        let file = config
            .file_groups
            .first()
            .and_then(|g| g.iter().next())
            .ok_or_else(|| proto_err("test", "no file"))?;
        assert!(file.extension::<ParquetRowSelection>().is_none());
        assert!(config.expr_adapter_factory.is_none());
        Ok(())
    }

    #[test]
    fn lake_scan_round_trip_keeps_deleted_rows_mapping_and_hints() -> DFResult<()> {
        let wrapped = WrapLakeScansForTest::wrap(lake_scan()?)?;
        assert!(wrapped.downcast_ref::<LakeScanExec>().is_some());
        let back = round_trip(wrapped)?;
        let scan = back
            .downcast_ref::<LakeScanExec>()
            .ok_or_else(|| proto_err("test", "not a LakeScanExec"))?;
        assert_eq!(scan.extras().files_with_deletes(), 1);
        let config = only_file_scan(scan.input()).ok_or_else(|| proto_err("test", "no scan"))?;
        let file = config
            .file_groups
            .first()
            .and_then(|g| g.iter().next())
            .ok_or_else(|| proto_err("test", "no file"))?;
        let selection = file
            .extension::<ParquetRowSelection>()
            .ok_or_else(|| proto_err("test", "deleted rows lost"))?;
        assert_eq!(
            selection.selection(),
            &RowSelection::from(vec![
                RowSelector::select(2),
                RowSelector::skip(1),
                RowSelector::select(7),
            ])
        );
        assert_eq!(file.metadata_size_hint, Some(512));
        assert!(config.expr_adapter_factory.is_some(), "mapping lost");
        let adapter = scan
            .extras()
            .adapter
            .as_deref()
            .ok_or_else(|| proto_err("test", "no adapter"))?;
        assert_eq!(adapter.field_ids.get("id"), Some(&1));
        assert_eq!(
            adapter.initial_defaults.get("id"),
            Some(&ScalarValue::Int64(Some(5)))
        );
        Ok(())
    }

    /// A positions scan as `LakeTable` makes one: a Parquet file of ids 0..10
    /// with row 2 deleted, the data file id as a partition column and each
    /// row's position in its file as a `RowNumber` virtual column.
    fn positions_scan(dir: &std::path::Path) -> DFResult<Arc<dyn ExecutionPlan>> {
        use datafusion::parquet::arrow::{ArrowWriter, RowNumber};
        let path = dir.join("a.parquet");
        let batch = RecordBatch::try_new(
            schema(),
            vec![Arc::new(Int64Array::from((100..110).collect::<Vec<i64>>()))],
        )?;
        let file = std::fs::File::create(&path)?;
        let mut writer = ArrowWriter::try_new(file, schema(), None)?;
        writer.write(&batch)?;
        writer.close()?;
        let size = std::fs::metadata(&path)?.len();
        let mut adapter = FieldIdAdapterFactory::default();
        adapter.field_ids.insert("id".into(), 1);
        let adapter = Arc::new(adapter);
        let location = path.to_string_lossy().trim_start_matches('/').to_string();
        let mut file = PartitionedFile::new(location, size).with_extension(
            ParquetRowSelection::new(RowSelection::from(vec![
                RowSelector::select(2),
                RowSelector::skip(1),
                RowSelector::select(7),
            ])),
        );
        file.partition_values = vec![ScalarValue::Int64(Some(7))];
        file.extensions.insert_arc(Arc::clone(&adapter));
        let table_schema = TableSchema::builder(schema())
            .with_table_partition_cols(vec![Arc::new(Field::new(
                "file_id",
                DataType::Int64,
                false,
            ))])
            .with_virtual_columns(vec![Arc::new(
                Field::new("position", DataType::Int64, true).with_extension_type(RowNumber),
            )])
            .build();
        let config = FileScanConfigBuilder::new(
            ObjectStoreUrl::local_filesystem(),
            Arc::new(ParquetSource::new(table_schema)),
        )
        .with_file_groups(vec![FileGroup::new(vec![file])])
        .with_projection_indices(Some(vec![2, 0, 1]))?
        .with_expr_adapter(Some(adapter as _))
        .build();
        Ok(DataSourceExec::from_data_source(config) as _)
    }

    /// Row positions reach a worker: the wrapped positions scan survives the
    /// codec and reads the same rows, positions and file ids as before, where
    /// plain serialization cannot decode it at all.
    #[tokio::test]
    async fn positions_scan_round_trip_keeps_row_positions() -> DFResult<()> {
        let dir = scratch("positions");
        let scan = positions_scan(&dir)?;
        let expected = rows(Arc::clone(&scan)).await?;
        assert!(
            expected
                .iter()
                .any(|l| l.contains("| 3 ") && l.contains("| 103 ")),
            "position 3 holds 103 (row 2 deleted): {expected:?}"
        );
        assert!(!expected.iter().any(|l| l.contains("102")), "{expected:?}");
        assert!(
            round_trip(Arc::clone(&scan)).is_err(),
            "datafusion-proto alone cannot decode a projection over a virtual column"
        );
        // (A scan executes once: DataFusion hands its files out from a shared
        // queue. Each run below gets a scan of its own.)
        let wrapped = WrapLakeScansForTest::wrap(positions_scan(&dir)?)?;
        assert_eq!(rows(wrapped).await?, expected, "wrapped");
        let back = round_trip(WrapLakeScansForTest::wrap(positions_scan(&dir)?)?)?;
        let lake_scan = back
            .downcast_ref::<LakeScanExec>()
            .ok_or_else(|| proto_err("test", "not a LakeScanExec"))?;
        assert_eq!(lake_scan.extras().files_with_deletes(), 1);
        assert_eq!(rows(back).await?, expected, "decoded");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    /// A task's stage carries the extras of its own files: restricted to a plan
    /// without the file, the deleted rows are left out, the mapping kept.
    #[test]
    fn scan_extras_are_restricted_to_a_tasks_files() -> DFResult<()> {
        let scan = lake_scan()?;
        let extras = ScanExtras::of(&scan)?;
        assert_eq!(extras.restricted_to(&scan)?.files_with_deletes(), 1);
        let other = extras.restricted_to(&memory(vec![1])?)?;
        assert_eq!(other.files_with_deletes(), 0);
        assert!(other.files.is_empty());
        assert!(
            other.adapter.is_some(),
            "the mapping is the scan's, not a file's"
        );
        Ok(())
    }

    /// The coordinator's rule, applied to one plan.
    struct WrapLakeScansForTest;

    impl WrapLakeScansForTest {
        fn wrap(plan: Arc<dyn ExecutionPlan>) -> DFResult<Arc<dyn ExecutionPlan>> {
            super::super::WrapLakeScans.optimize(plan, &Default::default())
        }
    }

    #[tokio::test]
    async fn concat_round_trip_keeps_the_order() -> DFResult<()> {
        let plan: Arc<dyn ExecutionPlan> = Arc::new(ConcatExec::new(
            vec![memory(vec![3, 1])?, memory(vec![2])?],
            schema(),
        ));
        let expected = rows(Arc::clone(&plan)).await?;
        let back = round_trip(plan)?;
        assert!(back.downcast_ref::<ConcatExec>().is_some());
        assert_eq!(rows(back).await?, expected);
        Ok(())
    }

    #[tokio::test]
    async fn wkb_to_wkt_round_trip() -> DFResult<()> {
        let wkb_schema = Arc::new(Schema::new(vec![Field::new("g", DataType::Binary, true)]));
        // POINT(1 2), little-endian WKB.
        let mut point = vec![1u8, 1, 0, 0, 0];
        point.extend(1.0f64.to_le_bytes());
        point.extend(2.0f64.to_le_bytes());
        let batch = RecordBatch::try_new(
            Arc::clone(&wkb_schema),
            vec![Arc::new(BinaryArray::from(vec![
                Some(point.as_slice()),
                None,
            ]))],
        )?;
        let input = MemorySourceConfig::try_new_exec(&[vec![batch]], wkb_schema, None)?;
        let expr: Arc<dyn PhysicalExpr> = Arc::new(WkbToWkt::new(Arc::new(Column::new("g", 0))));
        let plan: Arc<dyn ExecutionPlan> = Arc::new(ProjectionExec::try_new(
            vec![(expr, "g".to_string())],
            input,
        )?);
        let expected = rows(Arc::clone(&plan)).await?;
        assert!(expected.iter().any(|l| l.contains("POINT")), "{expected:?}");
        let back = round_trip(plan)?;
        assert_eq!(rows(back).await?, expected);
        Ok(())
    }

    #[test]
    fn checked_arithmetic_is_decoded_by_name() -> DFResult<()> {
        let codec = LakeCodec::default();
        for name in [
            "lakeq_checked_add",
            "lakeq_checked_sub",
            "lakeq_checked_mul",
        ] {
            assert_eq!(codec.try_decode_udf(name, &[])?.name(), name);
        }
        assert!(codec.try_decode_udf("lakeq_row_filename", &[]).is_err());
        Ok(())
    }

    #[test]
    fn scan_extras_round_trip() -> DFResult<()> {
        let mut extras = ScanExtras::default();
        extras.files.insert(
            "lake/main/t/a.parquet".into(),
            FileExtras {
                selection: Some(RowSelection::from(vec![
                    RowSelector::select(3),
                    RowSelector::skip(1),
                    RowSelector::select(6),
                ])),
                metadata_size_hint: Some(1234),
            },
        );
        extras.files.insert(
            "lake/main/t/b.parquet".into(),
            FileExtras {
                selection: None,
                metadata_size_hint: Some(99),
            },
        );
        let mut adapter = FieldIdAdapterFactory::default();
        adapter.field_ids.insert("id".into(), 1);
        adapter.field_ids.insert("renamed".into(), 2);
        adapter
            .initial_defaults
            .insert("added".into(), ScalarValue::Int64(Some(42)));
        adapter
            .file_names
            .insert("renamed".into(), "old_name".into());
        adapter
            .constants
            .insert("region".into(), ScalarValue::Utf8(Some("eu".into())));
        adapter.defaulted_nested.insert(7);
        extras.adapter = Some(Arc::new(adapter));
        let bytes = scan_to_proto(&extras)?.encode_to_vec();
        let back = scan_from_proto(
            &ScanProto::decode(bytes.as_slice()).map_err(|e| proto_err("test", e))?,
        )?;
        assert_eq!(back.files, extras.files);
        let (a, b) = (
            back.adapter
                .as_deref()
                .ok_or_else(|| proto_err("test", "no adapter"))?,
            extras
                .adapter
                .as_deref()
                .ok_or_else(|| proto_err("test", "no adapter"))?,
        );
        assert_eq!(a.field_ids, b.field_ids);
        assert_eq!(a.initial_defaults, b.initial_defaults);
        assert_eq!(a.file_names, b.file_names);
        assert_eq!(a.constants, b.constants);
        assert_eq!(a.defaulted_nested, b.defaulted_nested);
        Ok(())
    }

    fn write_target(dir: &std::path::Path, not_null: Vec<usize>) -> DFResult<WriteTarget> {
        let field = Field::new("id", DataType::Int64, true).with_metadata(HashMap::from([(
            crate::catalog::FIELD_ID_KEY.to_string(),
            "1".to_string(),
        )]));
        Ok(WriteTarget {
            table_name: "lake.main.t".into(),
            table_dir: format!("{}/", dir.display()),
            schema: Arc::new(Schema::new(vec![field])),
            not_null,
            partition: Some(PartitionSpec {
                partition_id: 7,
                keys: vec![(0, "identity".into(), "id".into())],
            }),
            options: WriteOptions {
                target_file_size: 1 << 20,
                row_group_size: 1000,
                compression: datafusion::parquet::basic::Compression::ZSTD(
                    datafusion::parquet::basic::ZstdLevel::try_new(3)?,
                ),
            },
            name_tag: 0x2a,
        })
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lakeq-{name}-{}", uuid::Uuid::now_v7()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    fn files_in(dir: &std::path::Path) -> usize {
        fn walk(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| {
                            if e.path().is_dir() {
                                walk(&e.path())
                            } else {
                                1
                            }
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        walk(dir)
    }

    /// A write node survives the codec with its whole target (partitioning,
    /// options, NOT NULL columns), and the decoded node writes the files of a
    /// partitioned table and reports them.
    #[tokio::test]
    async fn a_write_node_round_trips_and_writes_reported_files() -> DFResult<()> {
        let dir = scratch("write-codec");
        let target = write_target(&dir, vec![0])?;
        let plan: Arc<dyn ExecutionPlan> = Arc::new(LakeWriteExec::new(
            memory(vec![1, 2, 2, 3])?,
            Arc::new(target.clone()),
        ));
        let back = round_trip(plan)?;
        let write = back
            .downcast_ref::<LakeWriteExec>()
            .ok_or_else(|| proto_err("test", "not a LakeWriteExec"))?;
        let decoded = write.target();
        assert_eq!(decoded.table_name, target.table_name);
        assert_eq!(decoded.table_dir, target.table_dir);
        assert_eq!(decoded.schema, target.schema);
        assert_eq!(decoded.not_null, vec![0]);
        assert_eq!(decoded.options, target.options);
        assert_eq!(decoded.name_tag, 0x2a);
        let spec = decoded
            .partition
            .as_ref()
            .map(|p| (p.partition_id, p.keys.clone()));
        assert_eq!(spec, Some((7, vec![(0, "identity".into(), "id".into())])));

        let ctx = SessionContext::new();
        let batches = datafusion::physical_plan::collect(back, ctx.task_ctx()).await?;
        let report = super::super::write::written_files(&batches)?;
        let (files, rows) = (report.files, report.rows);
        assert!(report.error.is_none());
        assert_eq!(rows, 4);
        assert_eq!(files.len(), 3, "one file per partition value");
        let mut keys: Vec<_> = files.iter().map(|f| f.partition.clone()).collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![
                Some((7, vec![Some("1".to_string())])),
                Some((7, vec![Some("2".to_string())])),
                Some((7, vec![Some("3".to_string())])),
            ]
        );
        assert_eq!(files.iter().map(|f| f.file.record_count).sum::<i64>(), 4);
        for f in &files {
            assert!(std::path::Path::new(&f.file.url).exists(), "{}", f.file.url);
            let name = f.file.url.rsplit('/').next().unwrap_or_default();
            assert!(crate::write::has_name_tag(name, 0x2a), "{name}");
            let id = name.get(9..45).and_then(|u| uuid::Uuid::parse_str(u).ok());
            assert_eq!(id.map(|u| u.get_version_num()), Some(7), "{name}");
            assert_eq!(f.file.column_stats.len(), 1);
        }
        assert_eq!(files_in(&dir), 3);
        // The tag finds them all again (as after a failed statement).
        let store: Arc<dyn object_store::ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new());
        let removed =
            crate::write::remove_tagged(&store, &format!("{}/", dir.display()), 0x2a).await?;
        assert_eq!((removed, files_in(&dir)), (3, 0));
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    /// A NULL in a NOT NULL column fails the write task, naming the column, and
    /// leaves no file behind.
    #[tokio::test]
    async fn a_write_task_refusing_a_null_leaves_no_file() -> DFResult<()> {
        let dir = scratch("write-null");
        let mut target = write_target(&dir, vec![0])?;
        target.partition = None;
        let batch = RecordBatch::try_new(
            schema(),
            vec![Arc::new(Int64Array::from(vec![Some(1), None]))],
        )?;
        let input = MemorySourceConfig::try_new_exec(&[vec![batch]], schema(), None)?;
        let plan = Arc::new(LakeWriteExec::new(input, Arc::new(target)));
        let ctx = SessionContext::new();
        let batches = datafusion::physical_plan::collect(plan, ctx.task_ctx()).await?;
        let report = super::super::write::written_files(&batches)?;
        assert!(report.files.is_empty());
        let err = report.error.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("NOT NULL constraint failed: lake.main.t.id"),
            "{err}"
        );
        assert_eq!(files_in(&dir), 0);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
