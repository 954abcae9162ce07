//! [`LakeTable`]: a DuckLake table at one snapshot as a DataFusion table.
//!
//! `scan` works in this order, all before any data file is read:
//! 1. list the data files visible at the snapshot (with their delete files);
//! 2. drop files whose catalog statistics cannot match the filters;
//! 3. turn deletions (delete files, inlined deletions, rows of later snapshots in
//!    merged files) into a Parquet row selection per file;
//! 4. scan the files with DataFusion's Parquet source (projection, row-group and
//!    page pruning, filter pushdown), mapping columns by field id;
//! 5. union the inlined rows kept in the catalog.
//!
//! Filters are reported as `Inexact`: DataFusion re-applies them above the scan.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session as DFSession;
use datafusion::common::stats::Precision;
use datafusion::common::{DFSchema, Result as DFResult, ScalarValue, Statistics};
use datafusion::datasource::TableProvider;
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::ParquetRowSelection;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::parquet::arrow::RowNumber;
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use futures::{StreamExt, TryStreamExt};

use super::adapter::FieldIdAdapterFactory;
use super::deletes::{delete_file_positions, rows_after_snapshot, selection_without};
use super::inlined::{initial_default, read_inlined_rows};
use super::pruning::{CatalogFileStats, pruning_columns};
use super::statistics::ScanStatistics;
use crate::catalog::TableEntry;
use crate::catalog::files::TableFiles;
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::spec::paths::resolve;
use crate::spec::rows::{DataFileRow, NameMappingRow};
use crate::spec::{ColumnId, FileId, SNAPSHOT_ID_COLUMN, SnapshotId};
use crate::storage::{FileLocation, locate};

/// How many delete files are read at once while planning.
const DELETE_FILE_CONCURRENCY: usize = 16;

/// Extra column of a positions scan: the data file id (`-1` for inlined rows).
pub const FILE_ID_COLUMN: &str = "__lakeq_data_file_id";
/// Extra column of a positions scan: the row's 0-based position in its data file
/// (the `row_id` for inlined rows).
pub const ROW_POSITION_COLUMN: &str = "__lakeq_row_position";
/// [`FILE_ID_COLUMN`] value of inlined rows.
pub const INLINED_FILE_ID: i64 = -1;
/// DuckDB's virtual row-id column (`SELECT rowid, * FROM t`).
pub const ROWID_COLUMN: &str = "rowid";
/// DuckDB's virtual column with the snapshot that inserted each row.
pub const SNAPSHOT_COLUMN: &str = "snapshot_id";
/// DuckDB's virtual column with the data file a row is read from (its full path).
pub const FILENAME_COLUMN: &str = "filename";
/// DuckDB's virtual column with a row's 0-based position in its data file.
pub const FILE_ROW_NUMBER_COLUMN: &str = "file_row_number";
/// Partition column of a row-id scan: the file's `begin_snapshot`.
const FILE_SNAPSHOT_COLUMN: &str = "__lakeq_file_snapshot";
/// Column of a change-feed scan: the row's data file id (`-1` for inlined rows).
pub const ROW_FILE_COLUMN: &str = "__lakeq_row_file";
/// The first `rowid` DuckDB gives the rows a transaction inserted, until it
/// commits (DuckDB's `TRANSACTION_LOCAL_ROW_ID_START`).
pub const TRANSACTION_LOCAL_ROW_ID: i64 = 1_000_000_000_000_000_000;
/// The row ids DuckDB keeps inside files it rewrote (flushed inlined data,
/// compaction), read by name when present.
const INTERNAL_ROW_ID_COLUMN: &str = "_ducklake_internal_row_id";

/// What the position columns of a scan hold.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Positions {
    /// No position columns.
    None,
    /// [`FILE_ID_COLUMN`] and [`ROW_POSITION_COLUMN`] (DELETE/UPDATE).
    FileIds,
    /// What `rowid` and `snapshot_id` are made of: the file's internal row and
    /// snapshot ids (when DuckDB wrote them), its `row_id_start` (under
    /// [`FILE_ID_COLUMN`]) and `begin_snapshot`, and [`ROW_POSITION_COLUMN`].
    RowIds,
}

/// A DuckLake table pinned at a snapshot.
#[derive(Debug)]
pub struct LakeTable {
    lake: Arc<Lake>,
    entry: Arc<TableEntry>,
    snapshot: SnapshotId,
    /// Which position columns the scan adds.
    positions: Positions,
    /// Expose DuckDB's `rowid` as a last column.
    rowid: bool,
    /// Show the rows of an open transaction with transaction-local `rowid` and
    /// `snapshot_id`, as DuckDB does (queries; writers need the real ids).
    local_ids: bool,
    /// Also expose each row's data file id and position (the change feed).
    row_origin: bool,
    /// Read these files instead of the table's at its snapshot (the change feed).
    chosen_files: Option<Arc<TableFiles>>,
    /// Name mappings to use instead of the catalog's (files being registered
    /// by `ducklake_add_data_files`, read before their mapping is committed).
    name_mappings: Option<Arc<Vec<NameMappingRow>>>,
    schema: SchemaRef,
    /// The table's columns as the scan returns them: `entry.arrow_schema`, or with
    /// [`Self::with_string_views`] its top-level text and blob columns as
    /// `Utf8View`/`BinaryView`.
    base: SchemaRef,
    /// Column defaults for INSERTs that leave columns out.
    defaults: HashMap<String, Expr>,
}

impl LakeTable {
    /// The table `entry` as of `snapshot`.
    pub fn new(lake: Arc<Lake>, entry: Arc<TableEntry>, snapshot: SnapshotId) -> Self {
        let schema = Arc::clone(&entry.arrow_schema);
        let defaults = super::defaults::column_defaults(&entry);
        Self {
            base: Arc::clone(&schema),
            defaults,
            lake,
            entry,
            snapshot,
            positions: Positions::None,
            rowid: false,
            local_ids: false,
            row_origin: false,
            chosen_files: None,
            name_mappings: None,
            schema,
        }
    }

    /// The same table returning its top-level VARCHAR and BLOB columns as Arrow
    /// `Utf8View` and `BinaryView` (decoded from Parquet without copying the bytes,
    /// as DataFusion's own Parquet tables do). Geometry columns stay `Utf8` (WKT made
    /// from the files' WKB). Call it before the other `with_*` builders.
    pub fn with_string_views(mut self) -> Self {
        let geometry = self.geometry_columns();
        let fields: Vec<_> = self
            .entry
            .arrow_schema
            .fields()
            .iter()
            .map(|f| {
                let view = match f.data_type() {
                    _ if geometry.contains(f.name()) => None,
                    DataType::Utf8 => Some(DataType::Utf8View),
                    DataType::Binary => Some(DataType::BinaryView),
                    _ => None,
                };
                match view {
                    Some(t) => Arc::new(f.as_ref().clone().with_data_type(t)),
                    None => Arc::clone(f),
                }
            })
            .collect();
        self.base = Arc::new(Schema::new_with_metadata(
            fields,
            self.entry.arrow_schema.metadata().clone(),
        ));
        self.schema = Arc::clone(&self.base);
        self
    }

    /// The same table mapping name-mapped files by `rows` instead of the
    /// catalog's `ducklake_name_mapping`.
    pub fn with_name_mappings(mut self, rows: Vec<NameMappingRow>) -> Self {
        self.name_mappings = Some(Arc::new(rows));
        self
    }

    /// The same table reading `files` (and their inlined rows) instead of the
    /// table's files at its snapshot.
    pub fn with_files(mut self, files: Arc<TableFiles>) -> Self {
        self.chosen_files = Some(files);
        self
    }

    /// With [`Self::with_rowid`]: also [`ROW_FILE_COLUMN`] and
    /// [`ROW_POSITION_COLUMN`] last (data file id, `-1` for inlined rows, and the
    /// position in the file, the row id for inlined rows).
    pub fn with_row_origin(mut self) -> Self {
        self = self.with_rowid();
        let mut fields: Vec<_> = self.schema.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(
            ROW_FILE_COLUMN,
            DataType::Int64,
            false,
        )));
        fields.push(Arc::new(Field::new(
            ROW_POSITION_COLUMN,
            DataType::Int64,
            true,
        )));
        self.schema = Arc::new(Schema::new(fields));
        self.row_origin = true;
        self
    }

    /// The files a scan reads.
    async fn files(&self) -> Result<Arc<TableFiles>> {
        match &self.chosen_files {
            Some(f) => Ok(Arc::clone(f)),
            None => self.lake.table_files(self.entry.id(), self.snapshot).await,
        }
    }

    /// The same table with DuckDB's virtual columns `rowid` and `snapshot_id`
    /// appended (each unless the table has a column of that name).
    pub fn with_rowid(mut self) -> Self {
        let mut fields: Vec<_> = self.base.fields().iter().cloned().collect();
        // Nullable as the scan computes them (a CASE over nullable parts): a
        // non-nullable field here failed aggregates (`MIN(rowid)`) on the
        // physical-versus-logical schema check.
        for name in Self::all_virtual_columns(&self.entry) {
            let t = if name == FILENAME_COLUMN {
                DataType::Utf8
            } else {
                DataType::Int64
            };
            fields.push(Arc::new(Field::new(name, t, true)));
        }
        self.schema = Arc::new(Schema::new(fields));
        self.rowid = true;
        self
    }

    /// [`Self::with_rowid`] for a user's query: inside a transaction, the rows
    /// it wrote show DuckDB's transaction-local `rowid` and `snapshot_id`.
    pub fn with_query_rowid(mut self) -> Self {
        self.local_ids = true;
        self.with_rowid()
    }

    /// The virtual columns a table exposes: those of `rowid` and `snapshot_id`
    /// no real column shadows.
    pub fn virtual_columns(entry: &TableEntry) -> Vec<&'static str> {
        [ROWID_COLUMN, SNAPSHOT_COLUMN]
            .into_iter()
            .filter(|v| entry.arrow_schema.field_with_name(v).is_err())
            .collect()
    }

    /// All virtual columns a `with_rowid` table exposes: [`Self::virtual_columns`],
    /// then DuckDB's `filename` and `file_row_number` (each unless a real column
    /// has that name).
    fn all_virtual_columns(entry: &TableEntry) -> Vec<&'static str> {
        let mut out = Self::virtual_columns(entry);
        out.extend(
            [FILENAME_COLUMN, FILE_ROW_NUMBER_COLUMN]
                .into_iter()
                .filter(|v| entry.arrow_schema.field_with_name(v).is_err()),
        );
        out
    }

    /// The columns a positions scan reads from files: the table's, plus the
    /// internal row and snapshot ids for the virtual columns.
    fn file_columns(&self) -> SchemaRef {
        if self.positions != Positions::RowIds {
            return Arc::clone(&self.base);
        }
        let mut fields: Vec<_> = self.base.fields().iter().cloned().collect();
        for name in [INTERNAL_ROW_ID_COLUMN, SNAPSHOT_ID_COLUMN] {
            fields.push(Arc::new(Field::new(name, DataType::Int64, true)));
        }
        Arc::new(Schema::new(fields))
    }

    /// The partition columns of a positions scan.
    fn partition_columns(&self) -> Vec<Arc<Field>> {
        let mut out = vec![Arc::new(Field::new(FILE_ID_COLUMN, DataType::Int64, false))];
        if self.positions == Positions::RowIds {
            out.push(Arc::new(Field::new(
                FILE_SNAPSHOT_COLUMN,
                DataType::Int64,
                true,
            )));
            out.push(Arc::new(Field::new(
                ROW_FILE_COLUMN,
                DataType::Int64,
                false,
            )));
        }
        out
    }

    /// The same table with the position columns appended (for DELETE/UPDATE).
    pub fn with_positions(self) -> Self {
        self.with_position_columns(Positions::FileIds)
    }

    fn with_position_columns(mut self, positions: Positions) -> Self {
        self.positions = positions;
        let mut fields: Vec<_> = self.file_columns().fields().iter().cloned().collect();
        fields.extend(self.partition_columns());
        fields.push(Arc::new(Field::new(
            ROW_POSITION_COLUMN,
            DataType::Int64,
            true,
        )));
        self.schema = Arc::new(Schema::new(fields));
        self
    }

    /// Scan with the virtual columns: the table scanned with their parts, then
    /// `rowid = coalesce(_ducklake_internal_row_id, row_id_start + position)` and
    /// `snapshot_id = coalesce(_ducklake_internal_snapshot_id, begin_snapshot)`.
    async fn scan_with_rowid(
        &self,
        state: &dyn DFSession,
        projection: Option<&Vec<usize>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        use datafusion::logical_expr::{col, when};
        use datafusion::physical_plan::projection::ProjectionExec;
        let n = self.entry.arrow_schema.fields().len();
        let virtuals = Self::all_virtual_columns(&self.entry);
        let mut inner = LakeTable::new(
            Arc::clone(&self.lake),
            Arc::clone(&self.entry),
            self.snapshot,
        );
        inner.base = Arc::clone(&self.base);
        let mut inner = inner.with_position_columns(Positions::RowIds);
        inner.chosen_files = self.chosen_files.clone();
        let wanted: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let mut inner_projection: Vec<usize> = wanted.iter().copied().filter(|&i| i < n).collect();
        // internal row id, internal snapshot id, row_id_start, begin_snapshot, data file
        // id, position
        inner_projection.extend(n..n + 6);
        let exec = inner
            .scan(state, Some(&inner_projection), &[], None)
            .await?;
        let exec_schema = exec.schema();
        let df_schema = DFSchema::try_from(exec_schema.as_ref().clone())?;
        let rowid = when(
            col(INTERNAL_ROW_ID_COLUMN).is_not_null(),
            col(INTERNAL_ROW_ID_COLUMN),
        )
        .otherwise(col(FILE_ID_COLUMN) + col(ROW_POSITION_COLUMN))?;
        let snapshot = when(
            col(SNAPSHOT_ID_COLUMN).is_not_null(),
            col(SNAPSHOT_ID_COLUMN),
        )
        .otherwise(col(FILE_SNAPSHOT_COLUMN))?;
        let (rowid, snapshot) = self.transaction_local(rowid, snapshot)?;
        // `filename` / `file_row_number` of Parquet rows; inlined rows (data file id
        // -1) have DuckDB names lakeq does not give, so reading them is an error.
        let wants_file = wanted
            .iter()
            .any(|&i| i >= n && virtuals.get(i - n) == Some(&FILENAME_COLUMN));
        let file_names: BTreeMap<i64, String> = if wants_file {
            inner
                .files()
                .await?
                .files
                .iter()
                .map(|f| (f.data_file_id, self.file_url(&f.path, f.path_is_relative)))
                .collect()
        } else {
            BTreeMap::new()
        };
        let origin = |column: &'static str| {
            datafusion::logical_expr::ScalarUDF::from(RowOrigin {
                column,
                file_names: Arc::new(file_names.clone()),
                signature: datafusion::logical_expr::Signature::any(
                    2,
                    datafusion::logical_expr::Volatility::Immutable,
                ),
            })
            .call(vec![col(ROW_FILE_COLUMN), col(ROW_POSITION_COLUMN)])
        };
        let mut exprs = Vec::with_capacity(wanted.len());
        for i in wanted {
            if i < n {
                let name = self.entry.arrow_schema.field(i).name();
                let pos = inner_projection.iter().position(|&x| x == i).unwrap_or(0);
                exprs.push((
                    Arc::new(datafusion::physical_expr::expressions::Column::new(
                        name, pos,
                    )) as Arc<dyn datafusion::physical_expr::PhysicalExpr>,
                    name.clone(),
                ));
            } else {
                let name = match virtuals.get(i - n) {
                    Some(v) => *v,
                    None if i - n == virtuals.len() => ROW_FILE_COLUMN,
                    None => ROW_POSITION_COLUMN,
                };
                let expr = match name {
                    ROWID_COLUMN => rowid.clone(),
                    SNAPSHOT_COLUMN => snapshot.clone(),
                    FILENAME_COLUMN => origin(FILENAME_COLUMN),
                    FILE_ROW_NUMBER_COLUMN => origin(FILE_ROW_NUMBER_COLUMN),
                    other => col(other),
                };
                exprs.push((
                    state.create_physical_expr(expr, &df_schema)?,
                    name.to_string(),
                ));
            }
        }
        Ok(Arc::new(ProjectionExec::try_new(exprs, exec)?))
    }

    /// Inside a transaction, `rowid` and `snapshot_id` as DuckDB shows them
    /// before `COMMIT`: rows the transaction inserted are numbered from
    /// [`TRANSACTION_LOCAL_ROW_ID`] in insertion order (rows it updated keep
    /// their ids), and every row version it wrote has a NULL `snapshot_id`.
    /// Outside a transaction both are returned unchanged.
    fn transaction_local(&self, rowid: Expr, snapshot: Expr) -> DFResult<(Expr, Expr)> {
        use datafusion::logical_expr::{lit, when};
        if !self.local_ids {
            return Ok((rowid, snapshot));
        }
        let (Some(base), Some(first)) = (
            self.lake.transaction_base(),
            self.lake.transaction_first_row_id(self.entry.id()),
        ) else {
            return Ok((rowid, snapshot));
        };
        let local_rowid = when(
            rowid.clone().gt_eq(lit(first)),
            rowid.clone() - lit(first) + lit(TRANSACTION_LOCAL_ROW_ID),
        )
        .otherwise(rowid)?;
        let local_snapshot = when(
            snapshot.clone().gt(lit(base)),
            lit(ScalarValue::Int64(None)),
        )
        .otherwise(snapshot)?;
        Ok((local_rowid, local_snapshot))
    }

    /// Names of the table's `geometry` columns (WKB in files, WKT in lakeq).
    fn geometry_columns(&self) -> std::collections::HashSet<String> {
        self.entry
            .columns
            .iter()
            .filter(|c| c.ty == crate::spec::types::DuckLakeType::Geometry)
            .map(|c| c.row.column_name.clone())
            .collect()
    }

    /// The catalog entry.
    pub fn entry(&self) -> &Arc<TableEntry> {
        &self.entry
    }

    /// The lake.
    pub fn lake(&self) -> &Arc<Lake> {
        &self.lake
    }

    /// The pinned snapshot.
    pub fn snapshot(&self) -> SnapshotId {
        self.snapshot
    }

    /// Full path of a data or delete file.
    fn file_url(&self, path: &str, relative: bool) -> String {
        resolve(&self.entry.dir, Some(path), relative)
    }

    /// Whether [`Self::with_string_views`] changed some column's type.
    fn has_views(&self) -> bool {
        !Arc::ptr_eq(&self.base, &self.entry.arrow_schema)
    }

    /// `stats` (the catalog's, typed as the table's columns) with the bounds of
    /// `Utf8View`/`BinaryView` columns as values of those types.
    fn viewed_statistics(&self, mut stats: Statistics) -> Statistics {
        if !self.has_views() {
            return stats;
        }
        for (column, field) in stats.column_statistics.iter_mut().zip(self.base.fields()) {
            let to = field.data_type();
            if !matches!(to, DataType::Utf8View | DataType::BinaryView) {
                continue;
            }
            let cast = |p: Precision<ScalarValue>| match p {
                Precision::Exact(v) => v.cast_to(to).map_or(Precision::Absent, Precision::Exact),
                Precision::Inexact(v) => {
                    v.cast_to(to).map_or(Precision::Absent, Precision::Inexact)
                }
                Precision::Absent => Precision::Absent,
            };
            column.min_value = cast(std::mem::replace(&mut column.min_value, Precision::Absent));
            column.max_value = cast(std::mem::replace(&mut column.max_value, Precision::Absent));
        }
        stats
    }

    /// `batch` (inlined rows in the table's types) with the columns of
    /// [`Self::with_string_views`] as views.
    fn viewed_batch(&self, batch: RecordBatch) -> DFResult<RecordBatch> {
        if !self.has_views() {
            return Ok(batch);
        }
        let columns = batch
            .columns()
            .iter()
            .zip(self.base.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(Arc::clone(c))
                } else {
                    datafusion::arrow::compute::cast(c, f.data_type())
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(Arc::clone(&self.base), columns)?)
    }

    /// Values of `initial_default` per column name (for files older than a column).
    fn initial_defaults(&self) -> Result<HashMap<String, ScalarValue>> {
        let mut out = HashMap::new();
        for (node, field) in self.entry.columns.iter().zip(self.base.fields()) {
            if node
                .row
                .initial_default
                .as_deref()
                .is_some_and(|d| d != "NULL")
            {
                let v = initial_default(&self.entry, node.row.column_id, field.data_type())?;
                out.insert(field.name().clone(), v);
            }
        }
        Ok(out)
    }

    /// Refuse columns whose Parquet encoding lakeq cannot decode faithfully,
    /// rather than return wrong values.
    fn check_readable_from_parquet(&self, projection: Option<&Vec<usize>>) -> Result<()> {
        let schema = &self.entry.arrow_schema;
        let all: Vec<usize> = (0..schema.fields().len()).collect();
        for &i in projection.unwrap_or(&all) {
            let Some(field) = schema.fields().get(i) else {
                continue;
            };
            if matches!(field.data_type(), DataType::Interval(_)) {
                return Err(Error::Unsupported(format!(
                    "column '{}' of table '{}': INTERVAL values stored in Parquet files cannot be read \
                     by lakeq yet (the Parquet reader drops their months); exclude the column or cast it \
                     in DuckDB",
                    field.name(),
                    self.entry.qualified_name()
                )));
            }
        }
        Ok(())
    }

    /// Files that may hold rows matching `filters`, judged by catalog statistics.
    async fn candidate_files<'a>(
        &self,
        state: &dyn DFSession,
        filters: &[Expr],
        files: &'a TableFiles,
    ) -> Result<Vec<&'a DataFileRow>> {
        let all = || files.files.iter().collect();
        let Some(predicate) = conjunction(filters.iter().cloned()) else {
            return Ok(all());
        };
        // Only the columns the filters use, and only those whose statistics can prune.
        let columns = pruning_columns(&self.entry, &predicate);
        if files.files.len() < 2 || columns.is_empty() {
            return Ok(all());
        }
        let schema: SchemaRef = Arc::clone(&self.base);
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let Ok(physical) = state.create_physical_expr(predicate, &df_schema) else {
            return Ok(all());
        };
        let Some(pruning) = PruningPredicateBuilder::new()
            .with_file_schema(Arc::clone(&schema))
            .build(physical)
        else {
            return Ok(all());
        };
        let stats = CatalogFileStats::load(self.lake.store(), &self.entry, files, &columns).await?;
        let keep = pruning.prune(&stats)?;
        Ok(files
            .files
            .iter()
            .zip(keep)
            .filter_map(|(f, k)| k.then_some(f))
            .collect())
    }

    /// For each file registered with a name mapping: its file column names and Hive
    /// partition values (`None` for files that map by field id).
    /// Per file of `files`: whether a float column of it may hold NaN (its catalog
    /// statistics say so, or say nothing). Such files are read without Parquet
    /// pruning: Parquet bounds leave NaN out.
    async fn maybe_nan_files(
        &self,
        table_files: &TableFiles,
        files: &[&DataFileRow],
    ) -> Result<Vec<bool>> {
        let float_columns: Vec<ColumnId> = self
            .entry
            .columns
            .iter()
            .zip(self.entry.arrow_schema.fields())
            .filter(|(_, f)| {
                matches!(
                    f.data_type(),
                    DataType::Float16 | DataType::Float32 | DataType::Float64
                )
            })
            .map(|(c, _)| c.row.column_id)
            .collect();
        if float_columns.is_empty() || files.is_empty() {
            return Ok(vec![false; files.len()]);
        }
        let maybe_nan = table_files
            .maybe_nan
            .get_or_try_init(|| async {
                let (Some(first), Some(last)) =
                    (table_files.files.first(), table_files.files.last())
                else {
                    return Ok::<_, crate::error::Error>(HashSet::new());
                };
                let rows = self
                    .lake
                    .store()
                    .file_column_stats(
                        self.entry.id(),
                        &float_columns,
                        first.data_file_id..=last.data_file_id,
                    )
                    .await?;
                // A file is safe when every float column says `contains_nan = false`.
                let mut safe: HashMap<FileId, usize> = HashMap::new();
                for row in rows.iter().filter(|r| r.contains_nan == Some(false)) {
                    *safe.entry(row.data_file_id).or_default() += 1;
                }
                Ok(table_files
                    .files
                    .iter()
                    .map(|f| f.data_file_id)
                    .filter(|id| safe.get(id).copied().unwrap_or(0) < float_columns.len())
                    .collect())
            })
            .await?;
        Ok(files
            .iter()
            .map(|f| maybe_nan.contains(&f.data_file_id))
            .collect())
    }

    async fn mapping_keys(&self, files: &[&DataFileRow]) -> Result<Vec<Option<MappingKey>>> {
        if files.iter().all(|f| f.mapping_id.is_none()) {
            return Ok(vec![None; files.len()]);
        }
        let rows = match &self.name_mappings {
            Some(rows) => rows.as_ref().clone(),
            None => self.lake.store().name_mappings(self.entry.id()).await?,
        };
        let name_of: HashMap<i64, &str> = self
            .entry
            .columns
            .iter()
            .map(|c| (c.row.column_id, c.row.column_name.as_str()))
            .collect();
        let mut out = Vec::with_capacity(files.len());
        for file in files {
            let Some(mapping) = file.mapping_id else {
                out.push(None);
                continue;
            };
            let url = self.file_url(&file.path, file.path_is_relative);
            let hive = hive_values(&url);
            let mut key = MappingKey::default();
            for row in rows.iter().filter(|r| r.mapping_id == mapping) {
                if row.parent_column.is_some() {
                    // Nested fields keep their names inside a mapped struct; a rename
                    // there would need a field-level mapping lakeq does not do yet.
                    continue;
                }
                let Some(column) = name_of.get(&row.target_field_id) else {
                    continue;
                };
                if row.is_partition {
                    let value = hive
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(&row.source_name))
                        .map(|(_, v)| Some(v.clone()));
                    let Some(value) = value else {
                        return Err(Error::Corrupt(format!(
                            "data file '{url}' of table '{}' has no Hive path segment \
                             '{}=...' for column '{column}'",
                            self.entry.qualified_name(),
                            row.source_name
                        )));
                    };
                    key.constants.push((column.to_string(), value));
                } else {
                    key.file_names
                        .push((column.to_string(), row.source_name.clone()));
                }
            }
            key.file_names.sort();
            key.constants.sort();
            out.push(Some(key));
        }
        Ok(out)
    }

    /// A Hive partition value (raw path text, `None` for NULL) as a value of `column`.
    fn hive_value(&self, column: &str, text: Option<&str>) -> Result<ScalarValue> {
        let field = self.base.field_with_name(column)?;
        let Some(text) = text else {
            return Ok(ScalarValue::try_from(field.data_type())?);
        };
        hive_scalar(text, field.data_type()).ok_or_else(|| {
            Error::Corrupt(format!(
                "Hive partition value '{text}' of column '{column}' in table '{}' is not a {}",
                self.entry.qualified_name(),
                field.data_type()
            ))
        })
    }

    /// Build the `PartitionedFile`s with their row selections, in the order of `files`.
    /// Only files with a delete file or with rows of later snapshots are read (a few at a
    /// time); the others are described from the catalog alone, without a future each
    /// (planning a full scan of 10,000 files took 35 ms when every file had one).
    async fn partitioned_files(
        &self,
        state: &dyn DFSession,
        table_files: &TableFiles,
        files: Vec<&DataFileRow>,
        statistics: &ScanStatistics,
    ) -> Result<Vec<(String, PartitionedFile, usize)>> {
        let s = self.snapshot;
        let runtime = state.runtime_env().clone();
        let mut planned: Vec<Option<(String, PartitionedFile, usize)>> =
            Vec::with_capacity(files.len());
        let mut reads = Vec::new();
        // Every store is checked at planning time, once.
        let mut stores: Vec<ObjectStoreUrl> = Vec::new();
        for (i, file) in files.into_iter().enumerate() {
            let url = self.file_url(&file.path, file.path_is_relative);
            if file.encryption_key.is_some() {
                return Err(Error::Unsupported(format!(
                    "reading encrypted data file '{url}'"
                )));
            }
            let loc = locate(&url)?;
            if !stores.contains(&loc.store_url) {
                runtime.object_store(&loc.store_url)?;
                stores.push(loc.store_url.clone());
            }
            if let Some(only) = &table_files.only_positions {
                // The change feed's deleted rows: exactly these positions.
                let keep = only.get(&file.data_file_id).cloned().unwrap_or_default();
                planned.push(Some(self.partitioned_file_at(file, loc, &keep, statistics)));
                continue;
            }
            let deleted = table_files
                .inlined_deletions
                .get(&file.data_file_id)
                .cloned()
                .unwrap_or_default();
            if file.delete_file.is_some() || file.partial_max.is_some_and(|m| m > s) {
                reads.push((i, file, url, loc, deleted));
                planned.push(None);
            } else {
                planned.push(Some(self.partitioned_file(file, loc, &deleted, statistics)));
            }
        }
        // Collected first: a lazy `map` over borrowed rows trips the compiler's `Send`
        // check of the scan future (higher-ranked lifetimes).
        let reads: Vec<_> = reads
            .into_iter()
            .map(|(i, file, url, loc, mut deleted)| {
                let runtime = runtime.clone();
                async move {
                    let object_store = runtime.object_store(&loc.store_url)?;
                    if let Some(d) = &file.delete_file {
                        let delete_url = self.file_url(&d.path, d.path_is_relative);
                        if d.format != "parquet" {
                            return Err(Error::Unsupported(format!(
                                "delete file '{delete_url}' has format '{}' (deletion vectors)",
                                d.format
                            )));
                        }
                        deleted.extend(delete_file_positions(&object_store, &delete_url, s).await?);
                    }
                    if file.partial_max.is_some_and(|m| m > s) {
                        deleted.extend(rows_after_snapshot(&object_store, &url, s).await?);
                    }
                    Ok::<_, Error>((i, self.partitioned_file(file, loc, &deleted, statistics)))
                }
            })
            .collect();
        let read = futures::stream::iter(reads)
            .buffered(DELETE_FILE_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        for (i, p) in read {
            if let Some(slot) = planned.get_mut(i) {
                *slot = Some(p);
            }
        }
        Ok(planned.into_iter().flatten().collect())
    }

    /// One file to scan at the positions `keep` only.
    fn partitioned_file_at(
        &self,
        file: &DataFileRow,
        loc: FileLocation,
        keep: &BTreeSet<i64>,
        statistics: &ScanStatistics,
    ) -> (String, PartitionedFile, usize) {
        let rows = usize::try_from(file.record_count).unwrap_or(0);
        let all: BTreeSet<i64> = (0..i64::try_from(rows).unwrap_or(0))
            .filter(|p| !keep.contains(p))
            .collect();
        self.partitioned_file(file, loc, &all, statistics)
    }

    /// One file to scan without the rows `deleted` (positions), described by its
    /// catalog `statistics`: (store URL, file, live rows).
    fn partitioned_file(
        &self,
        file: &DataFileRow,
        loc: FileLocation,
        deleted: &BTreeSet<i64>,
        statistics: &ScanStatistics,
    ) -> (String, PartitionedFile, usize) {
        let rows = usize::try_from(file.record_count).unwrap_or(0);
        let mut pf = PartitionedFile::new(
            loc.path.to_string(),
            u64::try_from(file.file_size_bytes).unwrap_or(0),
        );
        // `new` parses the text again and percent-encodes it: a `%` in a file name
        // (DuckDB's hive folders `category=home%20appliances`) became `%25`.
        pf.object_meta.location = loc.path;
        // The catalog knows the footer's length: the first read fetches exactly the
        // footer and its 8-byte trailer, not DataFusion's default guess.
        if let Some(footer) = file.footer_size.and_then(|n| usize::try_from(n).ok())
            && footer > 0
        {
            pf = pf.with_metadata_size_hint(footer.saturating_add(8));
        }
        let live_rows = rows.saturating_sub(deleted.len());
        match self.positions {
            Positions::FileIds => {
                pf = pf.with_partition_values(vec![ScalarValue::Int64(Some(file.data_file_id))]);
            }
            Positions::RowIds => {
                pf = pf.with_partition_values(vec![
                    ScalarValue::Int64(Some(file.row_id_start)),
                    ScalarValue::Int64(Some(file.begin_snapshot)),
                    ScalarValue::Int64(Some(file.data_file_id)),
                ]);
            }
            Positions::None => {}
        }
        if !deleted.is_empty() {
            pf = pf.with_extension(ParquetRowSelection::new(selection_without(rows, deleted)));
        }
        let stats = self.viewed_statistics(statistics.file(
            file.data_file_id,
            live_rows,
            deleted.is_empty(),
        ));
        pf = pf.with_statistics(Arc::new(stats));
        (loc.store_url.as_str().to_string(), pf, live_rows)
    }
}

/// How one name-mapped file maps to the table: (table column, file column) and
/// (table column, Hive path value) pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct MappingKey {
    file_names: Vec<(String, String)>,
    constants: Vec<(String, Option<String>)>,
}

/// The `key=value` directory segments of a path, as DuckDB's
/// `HivePartitioning::Parse` finds them: only directories (not the file name),
/// a segment with more than one `=` or a `?` is none, a key's first segment
/// wins. Values are raw text (see [`hive_scalar`]).
pub(crate) fn hive_values(path: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut segments: Vec<&str> = path.split(['/', '\\']).collect();
    // The last piece is the file name, not a directory.
    segments.pop();
    for segment in segments {
        if segment.contains(['?', '\n']) {
            continue;
        }
        let mut parts = segment.splitn(3, '=');
        if let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next())
            && !key.is_empty()
            && !out.iter().any(|(k, _)| k == key)
        {
            out.push((key.to_string(), value.to_string()));
        }
    }
    out
}

/// A Hive path value as a value of `data_type`, as DuckDB's
/// `HivePartitioning::GetValue` reads it: `NULL` (any case) and
/// `__HIVE_DEFAULT_PARTITION__` are NULL, strings are percent-decoded, an empty value of another type is NULL, anything else
/// is cast (`None`: it does not cast).
pub(crate) fn hive_scalar(text: &str, data_type: &DataType) -> Option<ScalarValue> {
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if b == b'%'
                && let Some(hex) = text.get(i + 1..i + 3)
                && let Ok(v) = u8::from_str_radix(hex, 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(b);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    let null = || ScalarValue::try_from(data_type).ok();
    if text.eq_ignore_ascii_case("NULL") || text == "__HIVE_DEFAULT_PARTITION__" {
        return null();
    }
    let string = matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    );
    if text.is_empty() && !string {
        return null();
    }
    ScalarValue::Utf8(Some(decode(text)))
        .cast_to(data_type)
        .ok()
        .filter(|v| !v.is_null())
}

/// `schema` with the `geometry` columns as the Binary (WKB) the files hold, so the
/// Parquet reader does not read them as strings.
fn with_wkb(schema: SchemaRef, geometry: &std::collections::HashSet<String>) -> SchemaRef {
    if geometry.is_empty() {
        return schema;
    }
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| {
            if geometry.contains(f.name()) {
                Arc::new(f.as_ref().clone().with_data_type(DataType::Binary))
            } else {
                Arc::clone(f)
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `scan` with its `geometry` columns turned from WKB into WKT text.
fn wkb_as_wkt(
    scan: Arc<dyn ExecutionPlan>,
    geometry: &std::collections::HashSet<String>,
) -> DFResult<Arc<dyn ExecutionPlan>> {
    use datafusion::physical_expr::expressions::Column as ColumnExpr;
    use datafusion::physical_plan::projection::ProjectionExec;
    let output = scan.schema();
    if !output.fields().iter().any(|f| geometry.contains(f.name())) {
        return Ok(scan);
    }
    let exprs: Vec<(Arc<dyn datafusion::physical_expr::PhysicalExpr>, String)> = output
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let column = Arc::new(ColumnExpr::new(f.name(), i)) as _;
            let expr = if geometry.contains(f.name()) {
                Arc::new(super::adapter::WkbToWkt::new(column)) as _
            } else {
                column
            };
            (expr, f.name().clone())
        })
        .collect();
    Ok(Arc::new(ProjectionExec::try_new(exprs, scan)?))
}

#[async_trait]
impl TableProvider for LakeTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.defaults.get(column)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        let how = if self.rowid {
            TableProviderFilterPushDown::Unsupported
        } else {
            TableProviderFilterPushDown::Inexact
        };
        Ok(vec![how; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn DFSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        if self.rowid {
            return self.scan_with_rowid(state, projection).await;
        }
        let schema = self.schema();
        let table_files = self.files().await?;
        let files = self.candidate_files(state, filters, &table_files).await?;
        if !files.is_empty() {
            self.check_readable_from_parquet(projection)?;
        }
        let mapping_keys = self.mapping_keys(&files).await?;
        // Parquet statistics leave NaN out of min/max, so row-group, page and bloom
        // filter pruning would drop rows where a float column is NaN (`f = 'NaN'`,
        // `f > 10`, a TopK's dynamic filter). Files whose catalog statistics do not
        // rule NaN out are read without them; the others keep every pruning.
        let maybe_nan = self.maybe_nan_files(&table_files, &files).await?;
        let first_file_snapshot = files.iter().map(|f| f.begin_snapshot).min();
        // Geometry columns are WKB in the files and WKT above the scan: filters on
        // them are applied above the scan only (they are Inexact), and the catalog's
        // statistics of them are not given to the planner.
        let geometry = self.geometry_columns();
        let statistics = if self.positions == Positions::None && !files.is_empty() {
            ScanStatistics::load(
                self.lake.store(),
                &self.entry,
                &table_files,
                projection,
                &geometry,
            )
            .await?
        } else {
            ScanStatistics::row_counts_only(self.file_columns().fields().len())
        };
        let planned = self
            .partitioned_files(state, &table_files, files, &statistics)
            .await?;
        let inlined = table_files
            .inlined_rows
            .get_or_try_init(|| read_inlined_rows(self.lake.store(), &self.entry, self.snapshot))
            .await?;
        // A small scan reads its files in order, in one partition, and its inlined
        // rows before or after them, so rows come back in insertion order as in
        // DuckDB. (Above a batch, DataFusion repartitions anyway.)
        let scanned_rows = planned.iter().map(|(_, _, rows)| *rows).sum::<usize>()
            + inlined.as_ref().map_or(0, |(b, _, _)| b.num_rows());
        let in_order = scanned_rows <= state.config().batch_size();
        let defaults = FieldIdAdapterFactory {
            field_ids: self
                .entry
                .columns
                .iter()
                .map(|c| (c.row.column_name.clone(), c.row.column_id))
                .collect(),
            initial_defaults: self.initial_defaults()?,
            file_names: HashMap::new(),
            constants: HashMap::new(),
            nested: self
                .entry
                .columns
                .iter()
                .filter(|c| !c.children.is_empty())
                .map(|c| (c.row.column_name.clone(), Arc::new(c.clone())))
                .collect(),
            defaulted_nested: {
                let mut nodes = Vec::new();
                for c in &self.entry.columns {
                    for child in &c.children {
                        child.walk(&mut nodes);
                    }
                }
                nodes
                    .into_iter()
                    .filter(|n| {
                        n.row
                            .initial_default
                            .as_deref()
                            .is_some_and(|d| d != "NULL")
                    })
                    .map(|n| n.row.column_id)
                    .collect()
            },
        };
        let predicate = conjunction(
            filters
                .iter()
                .filter(|f| {
                    geometry.is_empty()
                        || !f
                            .column_refs()
                            .iter()
                            .any(|c| geometry.contains(c.name.as_str()))
                })
                .cloned(),
        )
        .map(|p| {
            let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
            state.create_physical_expr(p, &df_schema)
        })
        .transpose()?;
        let target_partitions = state.config().target_partitions().max(1);

        // Sized up front: growing vectors of 10,000 `PartitionedFile`s was a visible cost.
        let file_count = planned.len();
        // One scan per object store and name mapping (files registered by
        // `ducklake_add_data_files` map columns by name, Hive values by path).
        let mut by_store: BTreeMap<(String, usize, bool), Vec<(PartitionedFile, usize)>> =
            BTreeMap::new();
        let mut adapters: Vec<Arc<FieldIdAdapterFactory>> = vec![Arc::new(defaults.clone())];
        let mut adapter_of: HashMap<MappingKey, usize> = HashMap::new();
        for (((store_url, pf, rows), key), nan) in
            planned.into_iter().zip(mapping_keys).zip(maybe_nan)
        {
            let adapter = match key {
                None => 0,
                Some(key) => match adapter_of.get(&key) {
                    Some(i) => *i,
                    None => {
                        let mut factory = defaults.clone();
                        factory.file_names = key.file_names.iter().cloned().collect();
                        for (column, text) in &key.constants {
                            factory
                                .constants
                                .insert(column.clone(), self.hive_value(column, text.as_deref())?);
                        }
                        adapters.push(Arc::new(factory));
                        adapter_of.insert(key, adapters.len() - 1);
                        adapters.len() - 1
                    }
                },
            };
            // The mapping also rides on each file: a distributed plan carries it to
            // the workers (see `crate::distributed::scan`).
            let mut pf = pf;
            if let Some(factory) = adapters.get(adapter) {
                pf.extensions.insert_arc(Arc::clone(factory));
            }
            // A distributed plan keeps such a scan in one task (see
            // `crate::distributed`): tasks would return their shares in any order.
            if in_order {
                pf.extensions.insert_arc(Arc::new(InsertionOrder));
            }
            by_store
                .entry((store_url, adapter, nan))
                .or_insert_with(|| Vec::with_capacity(file_count))
                .push((pf, rows));
        }
        // DataFusion pushes the filters it keeps above the scan (they are Inexact) into
        // the Parquet source itself, through projections and unions: giving it the
        // predicate here too would evaluate `p AND p`. Only a [`ConcatExec`] (several
        // inputs read in order) stops that pushdown, so only then is it given here.
        let concatenated = in_order && by_store.len() + usize::from(inlined.is_some()) > 1;
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        for ((store_url, adapter, maybe_nan), files) in by_store {
            let defaults = adapters.get(adapter).cloned().unwrap_or_default();
            let total_rows: usize = files.iter().map(|(_, r)| r).sum();
            // Round-robin files into groups so every core gets work.
            let group_count = if in_order {
                1
            } else {
                target_partitions.min(files.len())
            };
            let per_group = files.len().div_ceil(group_count);
            let mut groups: Vec<Vec<PartitionedFile>> = Vec::with_capacity(group_count);
            for (i, (pf, _)) in files.into_iter().enumerate() {
                match groups.get_mut(i % group_count) {
                    Some(group) => group.push(pf),
                    // The first round opens the groups.
                    None => {
                        let mut group = Vec::with_capacity(per_group);
                        group.push(pf);
                        groups.push(group);
                    }
                }
            }
            let table_schema = if self.positions != Positions::None {
                TableSchema::builder(with_wkb(self.file_columns(), &geometry))
                    .with_table_partition_cols(self.partition_columns())
                    .with_virtual_columns(vec![Arc::new(
                        Field::new(ROW_POSITION_COLUMN, DataType::Int64, true)
                            .with_extension_type(RowNumber),
                    )])
                    .build()
            } else {
                TableSchema::builder(with_wkb(Arc::clone(&self.base), &geometry)).build()
            };
            let mut source = ParquetSource::new(table_schema)
                .with_pushdown_filters(false)
                .with_enable_page_index(!maybe_nan);
            if maybe_nan {
                let mut options = source.table_parquet_options().clone();
                options.global.pruning = false;
                options.global.bloom_filter_on_read = false;
                source = source.with_table_parquet_options(options);
            }
            if let Some(p) = predicate.as_ref().filter(|_| concatenated) {
                source = source.with_predicate(Arc::clone(p));
            }
            // Each group's statistics merged from its files', the table's from the
            // groups' (positions scans: row counts only).
            let mut file_groups: Vec<FileGroup> = groups.into_iter().map(FileGroup::new).collect();
            let mut stats = None;
            if self.positions == Positions::None {
                for group in &mut file_groups {
                    let merged = ScanStatistics::merge(
                        group.iter().filter_map(|f| f.statistics.as_deref()),
                        &self.base,
                    );
                    if let Some(merged) = merged {
                        *group = std::mem::take(group).with_statistics(Arc::new(merged));
                    }
                }
                stats = ScanStatistics::merge(
                    file_groups.iter().filter_map(|g| g.file_statistics(None)),
                    &self.base,
                )
                .filter(|s| s.num_rows == Precision::Exact(total_rows));
            }
            let stats = stats.unwrap_or_else(|| {
                let mut stats = Statistics::new_unknown(&schema);
                stats.num_rows = Precision::Exact(total_rows);
                stats
            });
            let config =
                FileScanConfigBuilder::new(ObjectStoreUrl::parse(&store_url)?, Arc::new(source))
                    .with_file_groups(file_groups)
                    .with_projection_indices(projection.cloned())?
                    .with_limit(if filters.is_empty() { limit } else { None })
                    .with_statistics(stats)
                    .with_expr_adapter(Some(defaults))
                    .build();
            inputs.push(wkb_as_wkt(
                DataSourceExec::from_data_source(config),
                &geometry,
            )?);
        }
        let mut inlined_first = false;
        if let Some((batch, row_ids, snapshots)) = inlined.clone() {
            let batch = self.viewed_batch(batch)?;
            inlined_first = match (snapshots.iter().min(), first_file_snapshot) {
                (Some(i), Some(f)) => *i < f,
                _ => false,
            };
            let batch = if self.positions != Positions::None {
                let mut columns = batch.columns().to_vec();
                let rows = batch.num_rows();
                if self.positions == Positions::RowIds {
                    // The row id is the position itself; the snapshot is the row's own.
                    columns.push(Arc::new(Int64Array::from(vec![None; rows])));
                    columns.push(Arc::new(Int64Array::from(snapshots)));
                    columns.push(Arc::new(Int64Array::from(vec![0; rows])));
                    columns.push(Arc::new(Int64Array::from(vec![None; rows])));
                    columns.push(Arc::new(Int64Array::from(vec![INLINED_FILE_ID; rows])));
                } else {
                    columns.push(Arc::new(Int64Array::from(vec![INLINED_FILE_ID; rows])));
                }
                columns.push(Arc::new(Int64Array::from(row_ids)));
                RecordBatch::try_new(Arc::clone(&schema), columns)?
            } else {
                batch
            };
            inputs.push(MemorySourceConfig::try_new_exec(
                &[vec![batch]],
                Arc::clone(&schema),
                projection.cloned(),
            )?);
        }
        if inputs.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(schema.project(p)?),
                None => schema,
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        if in_order && inputs.len() > 1 {
            if inlined_first {
                inputs.rotate_right(1);
            }
            let projected = match projection {
                Some(p) => Arc::new(schema.project(p)?),
                None => schema,
            };
            return Ok(Arc::new(super::concat::ConcatExec::new(inputs, projected)));
        }
        UnionExec::try_new(inputs)
    }
}

/// Marks the files of a scan read in insertion order (a small scan: its files
/// in one partition, in order, and its inlined rows before or after them), as
/// DuckDB returns rows without ORDER BY.
#[derive(Debug)]
pub struct InsertionOrder;

/// Name of the function computing the `filename` virtual column (it holds the
/// table's file paths).
pub const ROW_FILENAME_FUNCTION: &str = "lakeq_row_filename";
/// Name of the function computing the `file_row_number` virtual column.
pub const ROW_FILE_ROW_NUMBER_FUNCTION: &str = "lakeq_row_file_row_number";

/// The function computing `file_row_number` from a row's data file id and
/// position (an error for inlined rows). It holds no state: a worker rebuilds
/// it by name.
pub fn file_row_number_function() -> datafusion::logical_expr::ScalarUDF {
    datafusion::logical_expr::ScalarUDF::from(RowOrigin {
        column: FILE_ROW_NUMBER_COLUMN,
        file_names: Arc::new(BTreeMap::new()),
        signature: datafusion::logical_expr::Signature::any(
            2,
            datafusion::logical_expr::Volatility::Immutable,
        ),
    })
}

/// DuckDB's `filename` / `file_row_number` of a row from its data file id and
/// position; an error for inlined rows.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RowOrigin {
    /// [`FILENAME_COLUMN`] or [`FILE_ROW_NUMBER_COLUMN`].
    column: &'static str,
    /// Full paths by data file id.
    file_names: Arc<BTreeMap<i64, String>>,
    signature: datafusion::logical_expr::Signature,
}

impl datafusion::logical_expr::ScalarUDFImpl for RowOrigin {
    fn name(&self) -> &str {
        if self.column == FILENAME_COLUMN {
            ROW_FILENAME_FUNCTION
        } else {
            ROW_FILE_ROW_NUMBER_FUNCTION
        }
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(if self.column == FILENAME_COLUMN {
            DataType::Utf8
        } else {
            DataType::Int64
        })
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> DFResult<datafusion::logical_expr::ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray, StringArray};
        use datafusion::arrow::datatypes::Int64Type;
        let rows = args.number_rows;
        let [file, position] = args.args.as_slice() else {
            return datafusion::common::plan_err!("{}: takes (file, position)", self.name());
        };
        let file = file.to_array(rows)?;
        let position = position.to_array(rows)?;
        let (file, position) = (
            file.as_primitive::<Int64Type>(),
            position.as_primitive::<Int64Type>(),
        );
        let inlined = || {
            datafusion::common::exec_err!(
                "{} of inlined rows (not yet in a Parquet file): lakeq does not give DuckDB's \
                 names for them",
                self.column
            )
        };
        let out: Arc<dyn Array> = if self.column == FILENAME_COLUMN {
            let mut values = Vec::with_capacity(rows);
            for i in 0..rows {
                if file.is_null(i) {
                    values.push(None);
                    continue;
                }
                let id = file.value(i);
                if id == INLINED_FILE_ID {
                    return inlined();
                }
                match self.file_names.get(&id) {
                    Some(name) => values.push(Some(name.as_str())),
                    None => {
                        return datafusion::common::exec_err!(
                            "filename: data file {id} is not among the table's files"
                        );
                    }
                }
            }
            Arc::new(StringArray::from(values))
        } else {
            let mut values = Vec::with_capacity(rows);
            for i in 0..rows {
                if !file.is_null(i) && file.value(i) == INLINED_FILE_ID {
                    return inlined();
                }
                values.push(position.is_valid(i).then(|| position.value(i)));
            }
            Arc::new(Int64Array::from(values))
        };
        Ok(datafusion::logical_expr::ColumnarValue::Array(out))
    }
}
