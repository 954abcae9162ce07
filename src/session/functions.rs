//! DuckLake's table functions, as DataFusion table functions over attached lakes:
//! `ducklake_snapshots`, `ducklake_current_snapshot`, `ducklake_table_info`,
//! `ducklake_list_files`, and DuckDB's `glob`.
//!
//! DuckDB's per-lake spellings (`lake.snapshots()`, `snapshots()` after `USE
//! lake`) and named arguments (`schema => 's'`) are turned into these calls by
//! [`crate::dialect::rewrite`]. Each function resolves its lake by name from the
//! session when the statement is planned (so the schema is known at once) and
//! reads the catalog when the plan runs.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, FixedSizeBinaryBuilder, Int64Builder, ListBuilder, MapBuilder,
    MapFieldNames, RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{
    Session as DFSession, TableFunctionArgs, TableFunctionImpl, TableProvider,
};
use datafusion::common::{DataFusionError, Result as DFResult, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::context::{SessionContext, SessionState};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_plan::ExecutionPlan;
use futures::future::BoxFuture;

use crate::catalog::CatalogSnapshot;
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::provider::catalog::LakeCatalog;
use crate::spec::changes::{Change, parse_changes};
use crate::spec::paths::resolve;

/// Produces a function's rows when the plan runs, given the session's state.
pub(crate) type Producer =
    Arc<dyn Fn(SessionState) -> BoxFuture<'static, Result<RecordBatch>> + Send + Sync>;

/// A table whose rows are computed when it is scanned.
struct FunctionTable {
    schema: SchemaRef,
    produce: Producer,
}

impl std::fmt::Debug for FunctionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionTable").finish_non_exhaustive()
    }
}

#[async_trait]
impl TableProvider for FunctionTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn DFSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .cloned()
            .ok_or_else(|| {
                DataFusionError::Plan("DuckLake functions need a lakeq session".into())
            })?;
        let batch = (self.produce)(state).await.map_err(DataFusionError::from)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            Arc::clone(&self.schema),
            projection.cloned(),
        )?)
    }
}

fn table(schema: SchemaRef, produce: Producer) -> Arc<dyn TableProvider> {
    Arc::new(FunctionTable { schema, produce })
}

/// A table computed by `produce` when scanned.
pub(crate) fn stateful_table(schema: SchemaRef, produce: Producer) -> Arc<dyn TableProvider> {
    table(schema, produce)
}

/// A constant argument's value (literals, casts, `now()` and the like folded).
pub(crate) fn constant(session: &dyn DFSession, expr: &Expr) -> DFResult<ScalarValue> {
    if let Expr::Literal(v, _) = expr {
        return Ok(v.clone());
    }
    let context = SimplifyContext::builder()
        .with_query_execution_start_time(Some(chrono::Utc::now()))
        .with_config_options(Arc::new(session.config_options().clone()))
        .build();
    match ExprSimplifier::new(context).simplify(expr.clone())? {
        Expr::Literal(v, _) => Ok(v),
        other => Err(DataFusionError::Plan(format!(
            "table function arguments must be constants, not {other}"
        ))),
    }
}

pub(crate) fn text_arg(
    session: &dyn DFSession,
    args: &[Expr],
    i: usize,
    what: &str,
) -> DFResult<Option<String>> {
    let Some(expr) = args.get(i) else {
        return Ok(None);
    };
    match constant(session, expr)? {
        v if v.is_null() => Ok(None),
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => Ok(s),
        other => Err(DataFusionError::Plan(format!(
            "{what} must be a string, not {other}"
        ))),
    }
}

/// The attached lake called `name` in the planning session.
pub(crate) fn lake_catalog(
    session: &dyn DFSession,
    name: &str,
) -> DFResult<(Arc<Lake>, Arc<CatalogSnapshot>)> {
    let state = session
        .as_any()
        .downcast_ref::<SessionState>()
        .ok_or_else(|| DataFusionError::Plan("DuckLake functions need a lakeq session".into()))?;
    let catalog = state
        .catalog_list()
        .catalog(name)
        .or_else(|| {
            let lower = name.to_ascii_lowercase();
            state
                .catalog_list()
                .catalog_names()
                .into_iter()
                .find(|n| n.to_ascii_lowercase() == lower)
                .and_then(|n| state.catalog_list().catalog(&n))
        })
        .ok_or_else(|| DataFusionError::Plan(format!("no attached lake named '{name}'")))?;
    let any: &dyn Any = catalog.as_ref();
    let lake = any
        .downcast_ref::<LakeCatalog>()
        .ok_or_else(|| DataFusionError::Plan(format!("'{name}' is not a DuckLake")))?;
    Ok((Arc::clone(lake.lake()), lake.current()))
}

fn lake_arg(
    args: &TableFunctionArgs,
    function: &str,
) -> DFResult<(Arc<Lake>, Arc<CatalogSnapshot>)> {
    let name = text_arg(args.session(), args.exprs(), 0, "the lake name")?.ok_or_else(|| {
        DataFusionError::Plan(format!("{function}(lake) needs the attached lake's name"))
    })?;
    lake_catalog(args.session(), &name)
}

fn field(name: &str, t: DataType) -> Field {
    Field::new(name, t, true)
}

fn batch(schema: &SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// `ducklake_snapshots(lake)`: every snapshot with DuckDB's `changes` map.
#[derive(Debug)]
struct Snapshots;

/// The columns of `ducklake_snapshots` (and of `ducklake_expire_snapshots`).
pub(crate) fn snapshots_schema() -> SchemaRef {
    let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", list, true),
        ])),
        false,
    );
    Arc::new(Schema::new(vec![
        field("snapshot_id", DataType::Int64),
        field(
            "snapshot_time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ),
        field("schema_version", DataType::Int64),
        field("changes", DataType::Map(Arc::new(entries), false)),
        field("author", DataType::Utf8),
        field("commit_message", DataType::Utf8),
        field("commit_extra_info", DataType::Utf8),
    ]))
}

/// A name as DuckDB writes it in `changes`: quoted only when it must be.
fn optionally_quoted(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain && !crate::dialect::keywords::is_duckdb_keyword(name) {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// DuckDB's `changes` map of one snapshot, key order as DuckDB builds it.
fn changes_map(changes: &[Change]) -> Vec<(&'static str, Vec<String>)> {
    use std::collections::BTreeSet;
    let mut created_schemas = Vec::new();
    let mut tables_created = Vec::new();
    let mut views_created = Vec::new();
    let mut scalar_macros = Vec::new();
    let mut table_macros = Vec::new();
    let mut ids: [BTreeSet<i64>; 14] = Default::default();
    for c in changes {
        match c {
            Change::CreatedSchema(s) => created_schemas.push(s.clone()),
            Change::CreatedTable(s, t) => {
                tables_created.push(format!("{}.{}", optionally_quoted(s), optionally_quoted(t)))
            }
            Change::CreatedView(s, t) => {
                views_created.push(format!("{}.{}", optionally_quoted(s), optionally_quoted(t)))
            }
            Change::CreatedScalarMacro(s, t) => {
                scalar_macros.push(format!("{}.{}", optionally_quoted(s), optionally_quoted(t)))
            }
            Change::CreatedTableMacro(s, t) => {
                table_macros.push(format!("{}.{}", optionally_quoted(s), optionally_quoted(t)))
            }
            Change::DroppedSchema(id) => {
                ids[0].insert(*id);
            }
            Change::DroppedTable(id) => {
                ids[1].insert(*id);
            }
            Change::AlteredTable(id) => {
                ids[2].insert(*id);
            }
            Change::InsertedIntoTable(id) => {
                ids[3].insert(*id);
            }
            Change::DeletedFromTable(id) => {
                ids[4].insert(*id);
            }
            Change::DroppedView(id) => {
                ids[5].insert(*id);
            }
            Change::DroppedScalarMacro(id) => {
                ids[6].insert(*id);
            }
            Change::DroppedTableMacro(id) => {
                ids[7].insert(*id);
            }
            Change::AlteredView(id) => {
                ids[8].insert(*id);
            }
            Change::InlinedInsert(id) => {
                ids[9].insert(*id);
            }
            Change::InlinedDelete(id) => {
                ids[10].insert(*id);
            }
            Change::InlineFlush(id) => {
                ids[11].insert(*id);
            }
            Change::MergeAdjacent(id) => {
                ids[12].insert(*id);
            }
            Change::RewriteDelete(id) => {
                ids[13].insert(*id);
            }
            Change::CompactedTable(_) => {}
        }
    }
    let mut out: Vec<(&'static str, Vec<String>)> = Vec::new();
    let ids_text = |s: &BTreeSet<i64>| s.iter().map(i64::to_string).collect::<Vec<_>>();
    if !created_schemas.is_empty() {
        out.push(("schemas_created", created_schemas));
    }
    if !ids[0].is_empty() {
        out.push(("schemas_dropped", ids_text(&ids[0])));
    }
    for (key, list) in [
        ("tables_created", tables_created),
        ("views_created", views_created),
        ("scalar_macros_created", scalar_macros),
        ("table_macros_created", table_macros),
    ] {
        if !list.is_empty() {
            out.push((key, list));
        }
    }
    let keyed = [
        ("tables_dropped", 1),
        ("tables_altered", 2),
        ("tables_inserted_into", 3),
        ("tables_deleted_from", 4),
        ("views_dropped", 5),
        ("scalar_macros_dropped", 6),
        ("table_macros_dropped", 7),
        ("views_altered", 8),
        ("inlined_insert", 9),
        ("inlined_delete", 10),
        ("flushed_inlined", 11),
        ("merge_adjacent", 12),
        ("rewrite_delete", 13),
    ];
    for (key, i) in keyed {
        if let Some(set) = ids.get(i)
            && !set.is_empty()
        {
            out.push((key, ids_text(set)));
        }
    }
    out
}

/// The snapshots of `lake` (only those in `only`, if given) as `ducklake_snapshots` rows.
pub(crate) async fn snapshots_batch(
    lake: Arc<Lake>,
    schema: SchemaRef,
    only: Option<std::collections::HashSet<i64>>,
) -> Result<RecordBatch> {
    let store = lake.store();
    let (snapshots, changes) = tokio::try_join!(store.snapshots(), store.snapshot_changes())?;
    let changes: std::collections::HashMap<i64, _> =
        changes.into_iter().map(|c| (c.snapshot_id, c)).collect();
    let mut id = Int64Builder::new();
    let mut time = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut version = Int64Builder::new();
    let mut map = MapBuilder::new(
        Some(MapFieldNames {
            entry: "entries".into(),
            key: "key".into(),
            value: "value".into(),
        }),
        StringBuilder::new(),
        ListBuilder::new(StringBuilder::new()),
    );
    let mut author = StringBuilder::new();
    let mut message = StringBuilder::new();
    let mut extra = StringBuilder::new();
    for s in snapshots
        .iter()
        .filter(|s| only.as_ref().is_none_or(|o| o.contains(&s.snapshot_id)))
    {
        id.append_value(s.snapshot_id);
        time.append_value(s.snapshot_time.timestamp_micros());
        version.append_value(s.schema_version);
        let info = changes.get(&s.snapshot_id);
        let parsed = match info.and_then(|c| c.changes_made.as_deref()) {
            Some(text) => parse_changes(text)?,
            None => Vec::new(),
        };
        for (key, values) in changes_map(&parsed) {
            map.keys().append_value(key);
            for v in values {
                map.values().values().append_value(v);
            }
            map.values().append(true);
        }
        map.append(true)?;
        author.append_option(info.and_then(|c| c.author.as_deref()));
        message.append_option(info.and_then(|c| c.commit_message.as_deref()));
        extra.append_option(info.and_then(|c| c.commit_extra_info.as_deref()));
    }
    batch(
        &schema,
        vec![
            Arc::new(id.finish()),
            Arc::new(time.finish()),
            Arc::new(version.finish()),
            Arc::new(map.finish()),
            Arc::new(author.finish()),
            Arc::new(message.finish()),
            Arc::new(extra.finish()),
        ],
    )
}

impl TableFunctionImpl for Snapshots {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let (lake, _) = lake_arg(&args, "ducklake_snapshots")?;
        let schema = snapshots_schema();
        let s = Arc::clone(&schema);
        Ok(table(
            schema,
            Arc::new(move |_| Box::pin(snapshots_batch(Arc::clone(&lake), Arc::clone(&s), None))),
        ))
    }
}

/// `ducklake_current_snapshot(lake)`: the snapshot a query sees.
#[derive(Debug)]
struct CurrentSnapshot;

impl TableFunctionImpl for CurrentSnapshot {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let (lake, snapshot) = lake_arg(&args, "ducklake_current_snapshot")?;
        let schema = Arc::new(Schema::new(vec![field("id", DataType::UInt64)]));
        let s = Arc::clone(&schema);
        // Inside a transaction: the committed snapshot it began at, as in DuckDB
        // (the transaction's own snapshot has no id before COMMIT).
        let current = lake
            .transaction_base()
            .unwrap_or(snapshot.snapshot.snapshot_id);
        let id = u64::try_from(current).unwrap_or_default();
        Ok(table(
            schema,
            Arc::new(move |_| {
                let s = Arc::clone(&s);
                Box::pin(async move {
                    batch(
                        &s,
                        vec![Arc::new(datafusion::arrow::array::UInt64Array::from(vec![
                            id,
                        ]))],
                    )
                })
            }),
        ))
    }
}

/// `__lakeq_not_null_columns()`: the NOT NULL columns of every attached lake's
/// tables (lakeq's Arrow fields are all nullable), for `information_schema.columns`.
#[derive(Debug)]
struct NotNullColumns;

impl TableFunctionImpl for NotNullColumns {
    fn call_with_args(&self, _args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let schema = Arc::new(Schema::new(vec![
            field("nn_catalog", DataType::Utf8),
            field("nn_schema", DataType::Utf8),
            field("nn_table", DataType::Utf8),
            field("nn_column", DataType::Utf8),
        ]));
        let s = Arc::clone(&schema);
        Ok(table(
            schema,
            Arc::new(move |state: SessionState| {
                let s = Arc::clone(&s);
                Box::pin(async move {
                    let mut rows: [Vec<String>; 4] = Default::default();
                    let catalogs = state.catalog_list();
                    for name in catalogs.catalog_names() {
                        let Some(catalog) = catalogs.catalog(&name) else {
                            continue;
                        };
                        let any: &dyn Any = catalog.as_ref();
                        let Some(lake) = any.downcast_ref::<LakeCatalog>() else {
                            continue;
                        };
                        let snapshot = lake.current();
                        for (schema_name, schema) in &snapshot.schemas {
                            for (table_name, table) in &schema.tables {
                                for c in table.columns.iter().filter(|c| !c.row.nulls_allowed) {
                                    rows[0].push(name.clone());
                                    rows[1].push(schema_name.clone());
                                    rows[2].push(table_name.clone());
                                    rows[3].push(c.row.column_name.clone());
                                }
                            }
                        }
                    }
                    let columns = rows
                        .into_iter()
                        .map(|v| {
                            Arc::new(datafusion::arrow::array::StringArray::from(v)) as ArrayRef
                        })
                        .collect();
                    batch(&s, columns)
                })
            }),
        ))
    }
}

/// `ducklake_table_info(lake)`: file counts and sizes per table.
#[derive(Debug)]
struct TableInfo;

impl TableFunctionImpl for TableInfo {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let (lake, snapshot) = lake_arg(&args, "ducklake_table_info")?;
        let schema = Arc::new(Schema::new(vec![
            field("table_name", DataType::Utf8),
            field("schema_id", DataType::Int64),
            field("table_id", DataType::Int64),
            field("table_uuid", DataType::FixedSizeBinary(16)),
            field("file_count", DataType::Int64),
            field("file_size_bytes", DataType::Int64),
            field("delete_file_count", DataType::Int64),
            field("delete_file_size_bytes", DataType::Int64),
        ]));
        let s = Arc::clone(&schema);
        Ok(table(
            schema,
            Arc::new(move |_| {
                let (lake, snapshot, s) =
                    (Arc::clone(&lake), Arc::clone(&snapshot), Arc::clone(&s));
                Box::pin(async move {
                    let mut name = StringBuilder::new();
                    let mut schema_id = Int64Builder::new();
                    let mut table_id = Int64Builder::new();
                    let mut uuid = FixedSizeBinaryBuilder::new(16);
                    let mut counts: [Int64Builder; 4] = Default::default();
                    let sid = snapshot.snapshot.snapshot_id;
                    for schema in snapshot.schemas.values() {
                        for entry in schema.tables.values() {
                            let files = lake.table_files(entry.id(), sid).await?;
                            let mut c = [0i64; 4];
                            // Saturating: sizes are the catalog's word, and a damaged
                            // catalog's may add up past i64::MAX.
                            for f in &files.files {
                                c[0] += 1;
                                c[1] = c[1].saturating_add(f.file_size_bytes);
                                if let Some(d) = &f.delete_file {
                                    c[2] += 1;
                                    c[3] = c[3].saturating_add(d.file_size_bytes);
                                }
                            }
                            name.append_value(&entry.row.table_name);
                            schema_id.append_value(entry.row.schema_id);
                            table_id.append_value(entry.id());
                            let bytes = uuid::Uuid::parse_str(&entry.row.table_uuid)
                                .map(|u| *u.as_bytes())
                                .unwrap_or_default();
                            uuid.append_value(bytes)?;
                            for (b, v) in counts.iter_mut().zip(c) {
                                b.append_value(v);
                            }
                        }
                    }
                    let [a, b, c, d] = counts;
                    let mut columns: Vec<ArrayRef> = vec![
                        Arc::new(name.finish()),
                        Arc::new(schema_id.finish()),
                        Arc::new(table_id.finish()),
                        Arc::new(uuid.finish()),
                    ];
                    for mut builder in [a, b, c, d] {
                        columns.push(Arc::new(builder.finish()));
                    }
                    batch(&s, columns)
                })
            }),
        ))
    }
}

/// `ducklake_list_files(lake, table, schema, snapshot_version, snapshot_time)`
/// (the dialect turns DuckDB's named arguments into these positions).
#[derive(Debug)]
struct ListFiles;

impl TableFunctionImpl for ListFiles {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let (lake, current) = lake_arg(&args, "ducklake_list_files")?;
        let session = args.session();
        let exprs = args.exprs();
        let table_name = text_arg(session, exprs, 1, "the table name")?.ok_or_else(|| {
            DataFusionError::Plan("ducklake_list_files(lake, table) needs a table name".into())
        })?;
        let schema_name = text_arg(session, exprs, 2, "schema")?;
        let version = match exprs.get(3).map(|e| constant(session, e)).transpose()? {
            Some(v) if !v.is_null() => Some(match v.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(Some(v)) => v,
                other => {
                    return Err(DataFusionError::Plan(format!(
                        "snapshot_version must be an integer, not {other}"
                    )));
                }
            }),
            _ => None,
        };
        let time = match exprs.get(4).map(|e| constant(session, e)).transpose()? {
            Some(v) if !v.is_null() => {
                let ts = v.cast_to(&DataType::Timestamp(
                    TimeUnit::Microsecond,
                    Some("UTC".into()),
                ))?;
                match ts {
                    ScalarValue::TimestampMicrosecond(Some(us), _) => {
                        chrono::DateTime::from_timestamp_micros(us)
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if version.is_some() && time.is_some() {
            return Err(DataFusionError::Plan(
                "either snapshot_version or snapshot_time, not both".into(),
            ));
        }
        let u64_list = DataType::UInt64;
        let schema = Arc::new(Schema::new(vec![
            field("data_file", DataType::Utf8),
            field("data_file_size_bytes", u64_list.clone()),
            field("data_file_footer_size", u64_list.clone()),
            field("data_file_encryption_key", DataType::Binary),
            field("delete_file", DataType::Utf8),
            field("delete_file_size_bytes", u64_list.clone()),
            field("delete_file_footer_size", u64_list),
            field("delete_file_encryption_key", DataType::Binary),
        ]));
        let s = Arc::clone(&schema);
        Ok(table(
            schema,
            Arc::new(move |_| {
                let (lake, current, s) = (Arc::clone(&lake), Arc::clone(&current), Arc::clone(&s));
                let (table_name, schema_name) = (table_name.clone(), schema_name.clone());
                Box::pin(async move {
                    let store = lake.store();
                    let snapshot = match (version, time) {
                        (Some(v), _) => Arc::new(lake.pin(store.snapshot(v).await?).await?),
                        (None, Some(t)) => Arc::new(lake.pin(store.snapshot_at(t).await?).await?),
                        (None, None) => current,
                    };
                    let schema_name = schema_name.unwrap_or_else(|| "main".into());
                    let entry = snapshot.table(&schema_name, &table_name)?;
                    let files = lake
                        .table_files(entry.id(), snapshot.snapshot.snapshot_id)
                        .await?;
                    let mut data = StringBuilder::new();
                    let mut data_size = UInt64Builder::new();
                    let mut data_footer = UInt64Builder::new();
                    let mut data_key = BinaryBuilder::new();
                    let mut del = StringBuilder::new();
                    let mut del_size = UInt64Builder::new();
                    let mut del_footer = UInt64Builder::new();
                    let mut del_key = BinaryBuilder::new();
                    let unsigned = |v: i64| u64::try_from(v).unwrap_or_default();
                    for f in &files.files {
                        data.append_value(resolve(&entry.dir, Some(&f.path), f.path_is_relative));
                        data_size.append_value(unsigned(f.file_size_bytes));
                        data_footer.append_option(f.footer_size.map(unsigned));
                        data_key.append_option(f.encryption_key.as_deref());
                        match &f.delete_file {
                            Some(d) => {
                                del.append_value(resolve(
                                    &entry.dir,
                                    Some(&d.path),
                                    d.path_is_relative,
                                ));
                                del_size.append_value(unsigned(d.file_size_bytes));
                                del_footer.append_null();
                                del_key.append_option(d.encryption_key.as_deref());
                            }
                            None => {
                                del.append_null();
                                del_size.append_null();
                                del_footer.append_null();
                                del_key.append_null();
                            }
                        }
                    }
                    batch(
                        &s,
                        vec![
                            Arc::new(data.finish()),
                            Arc::new(data_size.finish()),
                            Arc::new(data_footer.finish()),
                            Arc::new(data_key.finish()),
                            Arc::new(del.finish()),
                            Arc::new(del_size.finish()),
                            Arc::new(del_footer.finish()),
                            Arc::new(del_key.finish()),
                        ],
                    )
                })
            }),
        ))
    }
}

/// DuckDB's `glob(pattern)`: the local files matching a pattern (`*`, `?`, `[..]`,
/// `**` for any depth), as column `file`, sorted.
#[derive(Debug)]
struct Glob;

impl TableFunctionImpl for Glob {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let pattern = text_arg(args.session(), args.exprs(), 0, "the glob pattern")?
            .ok_or_else(|| DataFusionError::Plan("glob(pattern) needs a pattern".into()))?;
        if pattern.contains("://") && !pattern.starts_with("file://") {
            return Err(DataFusionError::Plan(format!(
                "glob('{pattern}'): lakeq lists local files only"
            )));
        }
        let schema = Arc::new(Schema::new(vec![field("file", DataType::Utf8)]));
        let s = Arc::clone(&schema);
        Ok(table(
            schema,
            Arc::new(move |_| {
                let (s, pattern) = (Arc::clone(&s), pattern.clone());
                Box::pin(async move {
                    let files =
                        tokio::task::spawn_blocking(move || crate::storage::glob_files(&pattern))
                            .await
                            .map_err(|e| Error::Unsupported(format!("glob: {e}")))?;
                    batch(
                        &s,
                        vec![Arc::new(datafusion::arrow::array::StringArray::from(files))],
                    )
                })
            }),
        ))
    }
}

/// Register the table functions on a session.
pub fn register(ctx: &SessionContext) {
    ctx.register_udtf("ducklake_snapshots", Arc::new(Snapshots));
    ctx.register_udtf("ducklake_current_snapshot", Arc::new(CurrentSnapshot));
    ctx.register_udtf("ducklake_table_info", Arc::new(TableInfo));
    ctx.register_udtf("ducklake_list_files", Arc::new(ListFiles));
    ctx.register_udtf("glob", Arc::new(Glob));
    ctx.register_udtf("__lakeq_not_null_columns", Arc::new(NotNullColumns));
    super::changes::register(ctx);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_duckdb() {
        assert!(crate::storage::glob_match("/a/*.parquet", "/a/x.parquet"));
        assert!(!crate::storage::glob_match(
            "/a/*.parquet",
            "/a/b/x.parquet"
        ));
        assert!(crate::storage::glob_match("/a/**", "/a/b/x.parquet"));
        assert!(crate::storage::glob_match(
            "/a/**/*.parquet",
            "/a/b/c/x.parquet"
        ));
        assert!(crate::storage::glob_match("/a/?.txt", "/a/x.txt"));
    }

    #[test]
    fn changes_map_in_duckdb_order() {
        let changes = vec![
            Change::InsertedIntoTable(3),
            Change::CreatedTable("main".into(), "T".into()),
            Change::InlinedInsert(1),
        ];
        assert_eq!(
            changes_map(&changes),
            vec![
                ("tables_created", vec!["main.\"T\"".to_string()]),
                ("tables_inserted_into", vec!["3".to_string()]),
                ("inlined_insert", vec!["1".to_string()]),
            ]
        );
    }
}
