//! [`Session`]: a DataFusion `SessionContext` that speaks DuckLake, and what it
//! runs: writes ([`write`](mod@write)), transactions ([`transaction`]), DuckLake's table
//! functions ([`functions`], [`changes`], [`ops`]) and maintenance
//! ([`maintain`]).
//!
//! It understands DuckDB's `ATTACH 'ducklake:...' AS name (DATA_PATH ...)`,
//! `DETACH`, `USE lake[.schema]` and `tbl AT (VERSION => n)`; every other
//! statement goes to DataFusion. Before each statement every attached lake moves
//! to its latest snapshot, so a statement sees one consistent snapshot per lake.

pub mod changes;
pub mod functions;
pub mod maintain;
pub mod ops;
pub mod transaction;
pub mod write;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::CatalogProvider;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::SessionConfig;

use self::transaction::{ForkedLake, Transaction};
use self::write::Writer;
use crate::dialect::lake_statements::{
    LakeStatement, parse_alter, parse_lake_statement, split_statements,
};
use crate::dialect::plan::{Variables, plan_sql};
use crate::dialect::semantics::DuckDbArithmetic;
use crate::error::{Error, Result};
use crate::lake::{Lake, LakeOptions};
use crate::provider::catalog::{LakeCatalog, SharedViewPlanner};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::LogicalPlan;

/// Plans the views of the session's lakes with DuckDB's dialect, in a copy of
/// the session's state (held weakly: a lake outliving its session plans none).
struct DuckDbViews {
    state: Box<dyn Fn() -> Option<datafusion::execution::context::SessionState> + Send + Sync>,
}

impl crate::provider::catalog::ViewPlanner for DuckDbViews {
    fn state(&self) -> Option<datafusion::execution::context::SessionState> {
        (self.state)()
    }

    fn plan<'a>(
        &'a self,
        state: &'a datafusion::execution::context::SessionState,
        sql: &'a str,
        at: Option<crate::spec::SnapshotId>,
    ) -> futures::future::BoxFuture<'a, Result<LogicalPlan>> {
        Box::pin(async move {
            let sql = match at {
                Some(s) => crate::dialect::rewrite::pin_tables_at(sql, s)?,
                None => sql.to_string(),
            };
            plan_sql(state, &sql, &Variables::default())
                .await
                .map(|(plan, _)| plan)
        })
    }
}

/// A query session with any number of attached lakes.
pub struct Session {
    ctx: SessionContext,
    lakes: Mutex<HashMap<String, Arc<LakeCatalog>>>,
    /// Names of detached lakes (shadowed by empty catalogs until attached again).
    detached: Mutex<std::collections::HashSet<String>>,
    /// Lakes the host attached on the user's behalf (the CLI's embedded default
    /// lakes): attaching one again at the same location is a no-op.
    auto_attached: Mutex<std::collections::HashSet<String>>,
    variables: Mutex<Variables>,
    /// The explicit transaction in progress (`BEGIN` ... `COMMIT`), if any.
    transaction: Mutex<Option<Transaction>>,
    /// Queries run on workers; writes of data files too (what their plans
    /// cannot carry, such as UPDATE and DELETE, runs here alone).
    workers: std::sync::OnceLock<Arc<crate::distributed::WorkerSet>>,
    /// DuckDB's session-wide lake settings (`SET ducklake_target_file_size`),
    /// given to every lake the session attaches.
    settings: Arc<crate::lake::SessionSettings>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

/// The result of one statement of a script.
#[derive(Debug)]
pub struct StatementResult {
    /// The statement text.
    pub sql: String,
    /// Its result batches (empty for statements without a result).
    pub batches: Vec<RecordBatch>,
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" => Ok(false),
        _ => Err(Error::Unsupported(format!(
            "ATTACH option {key} takes true or false, not '{value}'"
        ))),
    }
}

/// Turn ATTACH options into [`LakeOptions`], rejecting unknown ones.
pub fn lake_options(options: &BTreeMap<String, String>) -> Result<LakeOptions> {
    let mut out = LakeOptions::default();
    for (key, value) in options {
        match key.as_str() {
            "DATA_PATH" => out.data_path = Some(value.clone()),
            "METADATA_SCHEMA" => out.metadata_schema = Some(value.clone()),
            "OVERRIDE_DATA_PATH" => out.override_data_path = parse_bool(key, value)?,
            "CREATE_IF_NOT_EXISTS" => out.create_if_not_exists = Some(parse_bool(key, value)?),
            "READ_ONLY" => out.read_only = parse_bool(key, value)?,
            "SNAPSHOT_VERSION" => {
                out.snapshot_version = Some(value.parse().map_err(|_| {
                    Error::Unsupported(format!(
                        "SNAPSHOT_VERSION must be an integer, not '{value}'"
                    ))
                })?)
            }
            "SNAPSHOT_TIME" => {
                out.snapshot_time = Some(crate::store::parse_catalog_timestamp(value).map_err(|_| {
                    Error::Unsupported(format!(
                        "SNAPSHOT_TIME must be a timestamp such as '2026-01-01 00:00:00+00', not '{value}'"
                    ))
                })?)
            }
            "DATA_INLINING_ROW_LIMIT" => {
                out.data_inlining_row_limit = Some(value.parse().map_err(|_| {
                    Error::Unsupported(format!(
                        "DATA_INLINING_ROW_LIMIT must be a row count, not '{value}'"
                    ))
                })?)
            }
            "READONLY" => out.read_only = parse_bool(key, value)?,
            "READ_WRITE" => out.read_only = !parse_bool(key, value)?,
            "TYPE" if value.eq_ignore_ascii_case("ducklake") => {}
            // Accepted for DuckDB compatibility: names of DuckDB's own attachment of the
            // metadata database, its migration and connection settings, and writer
            // choices that do not change what lakeq reads.
            "METADATA_CATALOG" | "AUTOMATIC_MIGRATION" | "BUSY_TIMEOUT" | "META_TYPE" => {}
            "ENCRYPTED" | "WRITE_DELETION_VECTORS" if !parse_bool(key, value)? => {}
            "ENCRYPTED" => {
                return Err(Error::Unsupported(
                    "encrypted lakes (ATTACH ... ENCRYPTED): lakeq reads and writes unencrypted Parquet only".into(),
                ));
            }
            "WRITE_DELETION_VECTORS" => {
                return Err(Error::Unsupported(
                    "WRITE_DELETION_VECTORS: lakeq writes positional delete files (DuckDB reads them)".into(),
                ));
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "ATTACH option {other}; lakeq knows DATA_PATH, METADATA_SCHEMA, READ_ONLY, \
                     OVERRIDE_DATA_PATH, CREATE_IF_NOT_EXISTS, SNAPSHOT_VERSION, SNAPSHOT_TIME, \
                     DATA_INLINING_ROW_LIMIT, METADATA_CATALOG"
                )));
            }
        }
    }
    Ok(out)
}

/// `1073741824`, `1GiB`, `512MiB`, `64KiB` (also `GB`/`MB`/`KB`, as powers of 1024).
pub fn parse_bytes(text: &str) -> Option<usize> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits.parse().ok()?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "kb" | "k" => 1 << 10,
        "mib" | "mb" | "m" => 1 << 20,
        "gib" | "gb" | "g" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// The catalog name DuckDB would give an ATTACH without `AS`: the file stem.
fn default_name(location: &str) -> String {
    let tail = location.rsplit([':', '/']).next().unwrap_or(location);
    let stem = tail.split('.').next().unwrap_or(tail);
    if stem.is_empty() {
        "lake".into()
    } else {
        stem.to_string()
    }
}

/// How a [`Session`] runs queries. The host passes it in (the `lakeq` binary reads
/// `LAKEQ_MEMORY_LIMIT` and lakeq.toml into it); the library never reads the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    /// Bytes the query operators of the session may hold; sorts, joins and
    /// aggregations spill to disk beyond it. `None`: no limit.
    pub memory_limit: Option<usize>,
    /// Partitions a query is planned for (DataFusion's `target_partitions`).
    /// `None`: one per core.
    pub target_partitions: Option<usize>,
    /// Scans return VARCHAR and BLOB columns as Arrow `Utf8View` and `BinaryView`
    /// (read from Parquet without copying the bytes, as DataFusion's own Parquet
    /// tables do: DataFusion's `datafusion.execution.parquet.schema_force_view_types`,
    /// which this sets; lakes attached later follow that setting). `false`: `Utf8`
    /// and `Binary`. Default `true`. SQL types (`typeof`, `DESCRIBE`) are VARCHAR and
    /// BLOB either way, and the files and catalog rows lakeq writes are the same.
    pub string_views: bool,
    /// Workers to run queries on (`lakeq sql --workers`): see
    /// [`crate::distributed`]. Default: none, queries run in this process.
    pub cluster: crate::distributed::ClusterOptions,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            memory_limit: None,
            target_partitions: None,
            string_views: true,
            cluster: crate::distributed::ClusterOptions::default(),
        }
    }
}

impl SessionOptions {
    /// Options with scans returning VARCHAR/BLOB as views (`true`) or as plain
    /// `Utf8`/`Binary` (`false`); see [`Self::string_views`].
    pub fn with_string_views(mut self, on: bool) -> Self {
        self.string_views = on;
        self
    }

    /// Options with a memory limit of `bytes` (`None`: no limit).
    pub fn with_memory_limit(mut self, bytes: Option<usize>) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Options running queries, and the data files of `INSERT ... SELECT` and
    /// `CREATE TABLE AS`, on `cluster`'s workers (see [`crate::distributed`]).
    pub fn with_cluster(mut self, cluster: crate::distributed::ClusterOptions) -> Self {
        self.cluster = cluster;
        self
    }

    /// Options planning queries for `partitions` partitions.
    pub fn with_target_partitions(mut self, partitions: usize) -> Self {
        self.target_partitions = Some(partitions.max(1));
        self
    }
}

impl Session {
    /// A new session with DataFusion defaults, DuckDB's conventions
    /// (`memory.main` as the default catalog and schema, NULLs last, UTC) and
    /// `information_schema` enabled; no memory limit.
    pub fn new() -> Self {
        Self::with_options(&SessionOptions::default())
    }

    /// A new session whose query operators share a pool of `limit` bytes
    /// (spilling sorts and aggregations to disk); `None` = no limit.
    pub fn with_memory_limit(limit: Option<usize>) -> Self {
        Self::with_options(&SessionOptions::default().with_memory_limit(limit))
    }

    /// A new session configured by `options` (see [`SessionOptions`]).
    pub fn with_options(options: &SessionOptions) -> Self {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_create_default_catalog_and_schema(true)
            // DuckDB's names for the in-memory catalog and its schema.
            .with_default_catalog_and_schema("memory", "main");
        if let Some(partitions) = options.target_partitions {
            config = config.with_target_partitions(partitions);
        }
        // DuckDB sorts NULLs last in both directions, and `1.5` is a DECIMAL literal.
        config.options_mut().sql_parser.default_null_ordering = "nulls_last".into();
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        // DuckDB keeps the ORDER BY of a view or subquery (`CREATE VIEW v AS ...
        // ORDER BY ALL`, then `FROM v` gives the rows in that order); DataFusion
        // drops it unless a LIMIT follows.
        config
            .options_mut()
            .sql_parser
            .enable_subquery_sort_elimination = false;
        // Sessions are in UTC, as DuckDB's runner sets them (`TIMESTAMPTZ` literals keep it).
        config.options_mut().execution.time_zone = Some("UTC".into());
        config
            .options_mut()
            .execution
            .parquet
            .schema_force_view_types = options.string_views;
        let mut runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new();
        if let Some(bytes) = options.memory_limit {
            runtime = runtime.with_memory_pool(Arc::new(
                datafusion::execution::memory_pool::FairSpillPool::new(bytes),
            ));
        }
        let session = match runtime.build_arc() {
            Ok(rt) => Self::with_context(SessionContext::new_with_config_rt(config, rt)),
            Err(_) => Self::with_context(SessionContext::new_with_config(config)),
        };
        if options.cluster.is_distributed() {
            let workers = Arc::new(crate::distributed::WorkerSet::new(&options.cluster.workers));
            let state = session.ctx.state();
            *session.ctx.state_ref().write() =
                crate::distributed::coordinator_state(state, &options.cluster, &workers);
            let _ = session.workers.set(workers);
        }
        session
    }

    /// Wrap an existing DataFusion context (embedding). DuckDB's arithmetic
    /// (`/` on integers is DOUBLE, see [`crate::dialect::semantics`]) is
    /// registered on it.
    pub fn with_context(ctx: SessionContext) -> Self {
        use datafusion::execution::FunctionRegistry;
        let mut state = ctx.state_ref().write().clone();
        let _ = state.register_expr_planner(Arc::new(DuckDbArithmetic));
        // DuckDB's `s[1]` on an unnamed struct, before DataFusion's list indexing.
        let mut planners: Vec<Arc<dyn datafusion::logical_expr::planner::ExprPlanner>> =
            vec![Arc::new(crate::dialect::semantics::DuckDbStructIndex)];
        planners.extend(state.expr_planners().iter().cloned());
        let state = datafusion::execution::SessionStateBuilder::new_from_existing(state)
            .with_expr_planners(planners)
            // DuckDB's UUID, MAP(K, V), TIMESTAMP_S / _MS in column definitions.
            .with_type_planner(Arc::new(crate::provider::types::DuckDbTypes))
            .build();
        *ctx.state_ref().write() = state;
        // DuckDB's catalog of temporary tables (`CREATE TEMP TABLE`), searched first.
        if ctx.catalog("temp").is_none() {
            let temp = datafusion::catalog::MemoryCatalogProvider::new();
            let _ = temp.register_schema(
                "main",
                Arc::new(datafusion::catalog::MemorySchemaProvider::new()),
            );
            ctx.register_catalog("temp", Arc::new(temp));
        }
        ctx.add_analyzer_rule(Arc::new(crate::dialect::semantics::CheckedIntegerSums));
        ctx.add_analyzer_rule(Arc::new(crate::dialect::semantics::GeometryComparisons));
        self::functions::register(&ctx);
        self::ops::register(&ctx);
        crate::dialect::functions::register(&ctx);
        Self {
            ctx,
            lakes: Mutex::new(HashMap::new()),
            detached: Mutex::new(std::collections::HashSet::new()),
            auto_attached: Mutex::new(std::collections::HashSet::new()),
            variables: Mutex::new(Variables::new()),
            transaction: Mutex::new(None),
            workers: std::sync::OnceLock::new(),
            settings: Arc::default(),
        }
    }

    fn transaction(&self) -> std::sync::MutexGuard<'_, Option<Transaction>> {
        self.transaction.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an explicit transaction (`BEGIN`) is open.
    pub fn in_transaction(&self) -> bool {
        self.transaction().is_some()
    }

    /// Serve `catalog` under its name (swapping a lake and its transaction's fork).
    fn serve(&self, catalog: &Arc<LakeCatalog>) {
        self.ctx.register_catalog(
            catalog.name(),
            Arc::clone(catalog) as Arc<dyn CatalogProvider>,
        );
        match self.lakes.lock() {
            Ok(mut m) => m.insert(catalog.name().to_string(), Arc::clone(catalog)),
            Err(p) => p
                .into_inner()
                .insert(catalog.name().to_string(), Arc::clone(catalog)),
        };
    }

    /// `BEGIN`: fork every writable attached lake (see [`self::transaction`]).
    async fn begin(&self) -> Result<()> {
        if self.in_transaction() {
            return Err(Error::Transaction(
                "cannot start a transaction within a transaction".into(),
            ));
        }
        let mut txn = Transaction::default();
        for lake in self.lakes() {
            if let Err(e) = self.fork_into(&mut txn, lake).await {
                for forked in txn.forks {
                    forked.rollback().await;
                }
                return Err(e);
            }
        }
        for forked in &txn.forks {
            self.serve(&forked.work);
        }
        *self.transaction() = Some(txn);
        Ok(())
    }

    async fn fork_into(&self, txn: &mut Transaction, lake: Arc<LakeCatalog>) -> Result<()> {
        if lake.lake().read_only() {
            return Ok(());
        }
        lake.refresh().await?;
        txn.forks
            .push(ForkedLake::fork(lake, self.view_planner()).await?);
        Ok(())
    }

    /// `COMMIT` (`commit`) or `ROLLBACK`: end the transaction and serve the real
    /// lakes again. A transaction that failed is rolled back by `COMMIT` too, as
    /// in DuckDB.
    async fn end_transaction(&self, commit: bool) -> Result<()> {
        let Some(txn) = self.transaction().take() else {
            return Err(Error::Transaction(format!(
                "cannot {} - no transaction is active",
                if commit { "commit" } else { "rollback" }
            )));
        };
        for forked in &txn.forks {
            self.serve(&forked.real);
        }
        let commit = commit && txn.aborted.is_none();
        if !commit {
            for name in &txn.created_memory_tables {
                let _ = self.ctx.deregister_table(name.clone());
            }
        }
        let mut first_error = None;
        for forked in txn.forks {
            if commit && first_error.is_none() {
                if let Err(e) = forked.commit().await {
                    first_error = Some(e);
                }
            } else {
                forked.rollback().await;
            }
        }
        self.refresh().await?;
        first_error.map_or(Ok(()), Err)
    }

    /// Note a failed statement: an open transaction then accepts only its end.
    fn abort_transaction(&self, error: &Error) {
        if let Some(txn) = self.transaction().as_mut()
            && txn.aborted.is_none()
        {
            txn.aborted = Some(error.to_string());
        }
    }

    fn variables(&self) -> Variables {
        match self.variables.lock() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Plan one statement of DuckDB SQL (see [`crate::dialect`]); returns the plan
    /// and the rewritten SQL.
    async fn plan(&self, sql: &str) -> Result<(LogicalPlan, String)> {
        plan_sql(&self.ctx.state(), sql, &self.variables()).await
    }

    /// The DataFusion context.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    fn view_planner(&self) -> SharedViewPlanner {
        let weak = self.ctx.state_weak_ref();
        Arc::new(DuckDbViews {
            state: Box::new(move || weak.upgrade().map(|s| s.read().clone())),
        })
    }

    fn lakes(&self) -> Vec<Arc<LakeCatalog>> {
        match self.lakes.lock() {
            Ok(m) => m.values().cloned().collect(),
            Err(p) => p.into_inner().values().cloned().collect(),
        }
    }

    /// The attached lake called `name`.
    pub fn lake(&self, name: &str) -> Result<Arc<LakeCatalog>> {
        let lakes = match self.lakes.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        lakes.get(name).cloned().ok_or_else(|| Error::NotFound {
            kind: "lake",
            name: name.to_string(),
            hint: format!(
                "; attached lakes: {}",
                lakes.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// Attach a lake under `name` (the Rust form of `ATTACH`).
    pub async fn attach(
        &self,
        name: &str,
        location: &str,
        options: LakeOptions,
    ) -> Result<Arc<LakeCatalog>> {
        let detached = match self.detached.lock() {
            Ok(d) => d.contains(name),
            Err(p) => p.into_inner().contains(name),
        };
        if self.ctx.catalog(name).is_some() && !detached {
            return Err(Error::AlreadyExists {
                kind: "lake",
                name: name.to_string(),
            });
        }
        let options = LakeOptions {
            session: Arc::clone(&self.settings),
            ..options
        };
        let lake = Lake::open(location, options).await?;
        crate::storage::register_store(&self.ctx, lake.data_path())?;
        let string_views = self
            .ctx
            .state_ref()
            .read()
            .config_options()
            .execution
            .parquet
            .schema_force_view_types;
        let catalog = Arc::new(
            LakeCatalog::new(name, lake, self.view_planner())
                .await?
                .with_string_views(string_views),
        );
        self.ctx
            .register_catalog(name, Arc::clone(&catalog) as Arc<dyn CatalogProvider>);
        match self.lakes.lock() {
            Ok(mut m) => m.insert(name.to_string(), Arc::clone(&catalog)),
            Err(p) => p
                .into_inner()
                .insert(name.to_string(), Arc::clone(&catalog)),
        };
        match self.detached.lock() {
            Ok(mut d) => d.remove(name),
            Err(p) => p.into_inner().remove(name),
        };
        Ok(catalog)
    }

    /// Move every attached lake to its latest snapshot.
    pub async fn refresh(&self) -> Result<()> {
        for lake in self.lakes() {
            lake.refresh().await?;
        }
        Ok(())
    }

    /// Detach lake `name`; false if no lake has that name.
    pub fn detach(&self, name: &str) -> Result<bool> {
        let removed = match self.lakes.lock() {
            Ok(mut m) => m.remove(name),
            Err(p) => p.into_inner().remove(name),
        };
        if removed.is_none() {
            return Ok(false);
        }
        // DataFusion cannot unregister a catalog; shadow it with an empty one,
        // which a later ATTACH under the same name replaces.
        self.ctx.register_catalog(
            name,
            Arc::new(datafusion::catalog::MemoryCatalogProvider::new()),
        );
        match self.detached.lock() {
            Ok(mut d) => d.insert(name.to_string()),
            Err(p) => p.into_inner().insert(name.to_string()),
        };
        match self.auto_attached.lock() {
            Ok(mut a) => a.remove(name),
            Err(p) => p.into_inner().remove(name),
        };
        Ok(true)
    }

    /// Attach a lake on the user's behalf (as the CLI does with the embedded
    /// default lakes): a script's own `ATTACH` of the same location and name is
    /// then a no-op rather than a name clash.
    pub async fn attach_for_user(
        &self,
        name: &str,
        location: &str,
        options: LakeOptions,
    ) -> Result<Arc<LakeCatalog>> {
        let catalog = self.attach(name, location, options).await?;
        match self.auto_attached.lock() {
            Ok(mut a) => a.insert(name.to_string()),
            Err(p) => p.into_inner().insert(name.to_string()),
        };
        Ok(catalog)
    }

    async fn run_lake_statement(&self, stmt: LakeStatement) -> Result<()> {
        match stmt {
            LakeStatement::Attach {
                location,
                name,
                options,
                if_not_exists,
                or_replace,
            } => {
                let name = name.unwrap_or_else(|| default_name(&location));
                let mut options = options;
                for value in options.values_mut() {
                    let Some(var) =
                        value.strip_prefix(crate::dialect::lake_statements::ATTACH_VARIABLE)
                    else {
                        continue;
                    };
                    let scalar = self
                        .variables()
                        .get(&var.to_ascii_lowercase())
                        .cloned()
                        .unwrap_or(ScalarValue::Null);
                    let array = scalar.to_array()?;
                    *value =
                        crate::dialect::render::value_text(array.as_ref(), 0).ok_or_else(|| {
                            Error::Unsupported(format!(
                                "ATTACH option getvariable('{var}'): the variable is not set"
                            ))
                        })?;
                }
                if options
                    .get("METADATA_CATALOG")
                    .is_some_and(|m| m.eq_ignore_ascii_case(&name))
                {
                    return Err(Error::Unsupported(format!(
                        "ATTACH ... AS {name}: METADATA_CATALOG '{name}' would be the lake itself \
                         (a recursive metadata catalog); choose another name"
                    )));
                }
                if if_not_exists && self.ctx.catalog(&name).is_some() {
                    return Ok(());
                }
                if or_replace && self.lake(&name).is_ok() {
                    self.detach(&name)?;
                }
                // Attaching a lake the CLI attached itself (the embedded default
                // lakes), at the same location and name, is a no-op; any other
                // name already in use is an error, as in DuckDB.
                let auto = match self.auto_attached.lock() {
                    Ok(a) => a.contains(&name),
                    Err(p) => p.into_inner().contains(&name),
                };
                if auto
                    && let Ok(existing) = self.lake(&name)
                    && existing.lake().store().location()
                        == crate::store::CatalogLocation::parse(
                            &location,
                            options.get("METADATA_SCHEMA").map(String::as_str),
                        )?
                        .display()
                        .as_str()
                {
                    return Ok(());
                }
                let attached = self
                    .attach(&name, &location, lake_options(&options)?)
                    .await?;
                // A lake attached inside a transaction joins it.
                let txn = self.transaction().take();
                if let Some(mut txn) = txn {
                    let joined = self.fork_into(&mut txn, attached).await;
                    if let Some(forked) = txn.forks.iter().find(|f| f.name == name) {
                        self.serve(&forked.work);
                    }
                    *self.transaction() = Some(txn);
                    joined?;
                }
            }
            LakeStatement::SetSetting { name, value } => {
                crate::dialect::lake_statements::check_setting(&name, value.as_deref())?;
                let number = value
                    .as_deref()
                    .map(|v| crate::dialect::lake_statements::setting_value(&name, v))
                    .transpose();
                match name.as_str() {
                    "ducklake_target_file_size" => self.settings.set_target_file_size(number?),
                    "ducklake_default_data_inlining_row_limit" => {
                        self.settings.set_data_inlining_row_limit(number?);
                    }
                    _ => {}
                }
            }
            LakeStatement::Begin => self.begin().await?,
            LakeStatement::Commit => self.end_transaction(true).await?,
            LakeStatement::Rollback => self.end_transaction(false).await?,
            LakeStatement::Checkpoint(name) => {
                let explicit = name.is_some();
                let name = match name {
                    Some(n) => n,
                    None => self
                        .ctx
                        .state()
                        .config()
                        .options()
                        .catalog
                        .default_catalog
                        .clone(),
                };
                if self.lake(&name).is_err() {
                    if !explicit {
                        // DuckDB checkpoints its in-memory database: nothing to do here.
                        return Ok(());
                    }
                    return Err(Error::Unsupported(format!(
                        "CHECKPOINT of '{name}', which is not an attached DuckLake"
                    )));
                }
                // DuckDB's order: flush inlined data, expire by the lake's
                // expire_older_than option (nothing if unset), merge, rewrite,
                // cleanup, orphans.
                let lake = name.replace('\'', "''");
                for call in [
                    "ducklake_flush_inlined_data",
                    "ducklake_expire_snapshots",
                    "ducklake_merge_adjacent_files",
                    "ducklake_rewrite_data_files",
                    "ducklake_cleanup_old_files",
                    "ducklake_delete_orphaned_files",
                ] {
                    Box::pin(self.run_statement(&format!("SELECT * FROM {call}('{lake}')"), false))
                        .await?;
                }
            }
            LakeStatement::Detach { name, if_exists } => {
                // A lake detached inside a transaction leaves it, its changes undone.
                let left = self.transaction().as_mut().and_then(|txn| {
                    let i = txn.forks.iter().position(|f| f.name == name)?;
                    Some(txn.forks.remove(i))
                });
                if let Some(forked) = left {
                    forked.rollback().await;
                }
                if !self.detach(&name)? && !if_exists {
                    return Err(Error::not_found("lake", name));
                }
            }
            LakeStatement::SetVariable { name, expr } => {
                // Planned like any query (variables, names, functions as DuckDB has them).
                let batches =
                    Box::pin(self.run_statement(&format!("SELECT {expr}"), false)).await?;
                let value = match batches.iter().find(|b| b.num_rows() > 0) {
                    Some(b) if b.num_rows() == 1 && b.num_columns() == 1 => {
                        ScalarValue::try_from_array(b.column(0), 0)?
                    }
                    Some(_) => {
                        return Err(Error::Unsupported(format!(
                            "SET VARIABLE {name}: the value must be a single value, not several rows or columns"
                        )));
                    }
                    None => ScalarValue::Null,
                };
                match self.variables.lock() {
                    Ok(mut v) => v.insert(name.to_ascii_lowercase(), value),
                    Err(p) => p.into_inner().insert(name.to_ascii_lowercase(), value),
                };
            }
            LakeStatement::Prepare { name, statement } => {
                let key = crate::dialect::plan::prepared_key(&name);
                let value = ScalarValue::Utf8(Some(statement));
                match self.variables.lock() {
                    Ok(mut v) => v.insert(key, value),
                    Err(p) => p.into_inner().insert(key, value),
                };
            }
            LakeStatement::Deallocate { name } => {
                let key = crate::dialect::plan::prepared_key(&name);
                match self.variables.lock() {
                    Ok(mut v) => v.remove(&key),
                    Err(p) => p.into_inner().remove(&key),
                };
            }
            LakeStatement::ResetVariable { name } => {
                match self.variables.lock() {
                    Ok(mut v) => v.remove(&name.to_ascii_lowercase()),
                    Err(p) => p.into_inner().remove(&name.to_ascii_lowercase()),
                };
            }
            LakeStatement::Use(parts) => {
                let state = self.ctx.state_ref();
                let current_catalog = state
                    .read()
                    .config()
                    .options()
                    .catalog
                    .default_catalog
                    .clone();
                let (catalog, schema) = match parts.as_slice() {
                    [one] if self.ctx.catalog(one).is_some() => {
                        let schema = crate::dialect::plan::name_context(&self.ctx.state())
                            .catalogs
                            .get(&one.to_ascii_lowercase())
                            .map_or_else(|| "main".to_string(), |(_, s)| s.clone());
                        (one.clone(), schema)
                    }
                    [one] => (current_catalog, one.clone()),
                    [c, s] => (c.clone(), s.clone()),
                    _ => return Err(Error::Unsupported("USE takes lake or lake.schema".into())),
                };
                let provider = self
                    .ctx
                    .catalog(&catalog)
                    .ok_or_else(|| Error::not_found("lake", &catalog))?;
                if provider.schema(&schema).is_none() {
                    return Err(Error::NotFound {
                        kind: "schema",
                        name: format!("{catalog}.{schema}"),
                        hint: format!("; schemas: {}", provider.schema_names().join(", ")),
                    });
                }
                let mut guard = state.write();
                let opts = guard.config_mut().options_mut();
                opts.catalog.default_catalog = catalog;
                opts.catalog.default_schema = schema;
            }
        }
        Ok(())
    }

    /// Run one statement and collect its result.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.run_statement(sql, false).await
    }

    /// Run one statement and return its result as a DataFusion [`DataFrame`].
    ///
    /// A query is planned as [`Session::sql`] plans it (DuckDB's dialect, each
    /// lake's latest snapshot, `AT (...)`), but not run: stream it with
    /// [`DataFrame::execute_stream`] to read a result larger than memory, or
    /// [`DataFrame::collect`] it. Any other statement (`ATTACH`, DDL, writes,
    /// `CALL`, transactions) runs now, and its result rows (a count, or none)
    /// come back as a DataFrame.
    ///
    /// [`DataFrame`]: datafusion::dataframe::DataFrame
    /// [`DataFrame::execute_stream`]: datafusion::dataframe::DataFrame::execute_stream
    /// [`DataFrame::collect`]: datafusion::dataframe::DataFrame::collect
    pub async fn query(&self, sql: &str) -> Result<datafusion::dataframe::DataFrame> {
        let runs_now = sql
            .trim_start()
            .get(..5)
            .is_some_and(|w| w.eq_ignore_ascii_case("call "));
        let aborted = self
            .transaction()
            .as_ref()
            .is_some_and(|t| t.aborted.is_some());
        if !runs_now
            && !aborted
            && parse_lake_statement(sql)?.is_none()
            && parse_alter(sql)?.is_none()
            && crate::dialect::lake_statements::parse_comment(sql)?.is_none()
            && crate::dialect::macros::parse_macro_statement(sql)?.is_none()
        {
            self.refresh().await?;
            let (plan, _) = self.plan(sql).await?;
            if !matches!(
                plan,
                LogicalPlan::Ddl(_)
                    | LogicalPlan::Dml(_)
                    | LogicalPlan::Copy(_)
                    | LogicalPlan::Statement(_)
            ) {
                let df = datafusion::dataframe::DataFrame::new(self.ctx.state(), plan.clone());
                // With workers, a plan they cannot carry, or one that reads no
                // table (nothing to distribute; a union of constants keeps its
                // order here), is planned for this process alone (as
                // `Session::sql` runs it).
                if self.workers.get().is_some()
                    && (!crate::session::write::reads_tables(&plan)
                        || df
                            .clone()
                            .create_physical_plan()
                            .await
                            .is_err_and(|e| crate::distributed::needs_one_machine(&Error::from(e))))
                {
                    return Ok(datafusion::dataframe::DataFrame::new(
                        crate::distributed::local_state(self.ctx.state()),
                        plan,
                    ));
                }
                return Ok(df);
            }
        }
        let batches = self.run_statement(sql, false).await?;
        Ok(if batches.is_empty() {
            self.ctx.read_empty()?
        } else {
            self.ctx.read_batches(batches)?
        })
    }

    /// Run a query as [`Session::query`] plans it and collect its rows, with
    /// the per-stage, per-task profile of the run when it ran on workers
    /// (`None` when it ran in this process alone). No retry after a lost
    /// worker: a profile is of one run.
    pub async fn query_profiled(
        &self,
        sql: &str,
    ) -> Result<(Vec<RecordBatch>, Option<crate::distributed::QueryProfile>)> {
        let df = self.query(sql).await?;
        let task_ctx = Arc::new(df.task_ctx());
        let plan = df.create_physical_plan().await?;
        let batches = datafusion::physical_plan::collect(Arc::clone(&plan), task_ctx).await?;
        let profile = crate::distributed::QueryProfile::of_executed(&plan).await?;
        Ok((batches, profile))
    }

    /// Like [`Session::sql`], but `CREATE OR REPLACE VIEW` replaces a table of
    /// the same name (and `CREATE OR REPLACE TABLE` a view) in the same snapshot,
    /// as a model run needs when a model's materialization changes. Plain SQL
    /// refuses that, as DuckDB does.
    pub async fn sql_replacing_any_kind(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.run_statement(sql, true).await
    }

    async fn run_statement(&self, sql: &str, replace_other_kind: bool) -> Result<Vec<RecordBatch>> {
        let statement = parse_lake_statement(sql)?;
        match statement {
            Some(LakeStatement::Begin) => return self.begin().await.map(|()| Vec::new()),
            Some(LakeStatement::Commit) => {
                return self.end_transaction(true).await.map(|()| Vec::new());
            }
            Some(LakeStatement::Rollback) => {
                return self.end_transaction(false).await.map(|()| Vec::new());
            }
            _ => {}
        }
        if let Some(txn) = self.transaction().as_ref()
            && txn.aborted.is_some()
        {
            return Err(Error::Transaction(
                "Current transaction is aborted (please ROLLBACK)".into(),
            ));
        }
        // As in DuckDB, a statement that fails while it runs (not one that does
        // not parse or plan) aborts the transaction it is in.
        let mut running = false;
        let retry = statement.is_none();
        let mut result = self
            .execute_statement(statement, sql, replace_other_kind, &mut running, false)
            .await;
        if retry
            && let Err(e) = &result
            && let Some(workers) = self.workers.get()
            && crate::distributed::needs_one_machine(e)
        {
            // Planning refused it before anything ran: run it here alone.
            eprintln!(
                "note: this statement runs on this machine, not on the workers {} (its plan \
                 needs the filename column, geometry or another piece plans sent to workers do \
                 not carry yet)",
                workers.live().join(",")
            );
            running = false;
            result = self
                .execute_statement(None, sql, replace_other_kind, &mut running, true)
                .await;
        } else if retry && result.is_err() && self.worker_lost().await {
            running = false;
            result = self
                .execute_statement(None, sql, replace_other_kind, &mut running, false)
                .await;
        }
        if let Err(e) = &result
            && running
        {
            self.abort_transaction(e);
        }
        if result.is_ok()
            && let Err(e) = self.tidy_transaction().await
        {
            self.abort_transaction(&e);
            return Err(e);
        }
        result
    }

    /// After a statement failed on workers: whether a worker stopped answering
    /// while others still answer, so that the statement runs again on those
    /// (see [`crate::distributed::WorkerSet`]). Not inside an explicit
    /// transaction, whose earlier statements ran on the old set.
    async fn worker_lost(&self) -> bool {
        let Some(workers) = self.workers.get().cloned() else {
            return false;
        };
        if self.in_transaction() {
            return false;
        }
        let probed = Arc::clone(&workers);
        let Ok(lost) =
            tokio::task::spawn_blocking(move || probed.probe(std::time::Duration::from_secs(2)))
                .await
        else {
            return false;
        };
        let live = workers.live();
        if lost.is_empty() || live.is_empty() {
            return false;
        }
        eprintln!(
            "note: the worker(s) {} stopped answering; the statement runs again on {}",
            lost.join(","),
            live.join(",")
        );
        true
    }

    /// Net out an open transaction's forks after a statement (see
    /// [`ForkedLake::tidy`]).
    async fn tidy_transaction(&self) -> Result<()> {
        let Some(txn) = self.transaction().take() else {
            return Ok(());
        };
        let mut outcome = Ok(());
        for forked in &txn.forks {
            if let Err(e) = forked.tidy().await {
                outcome = Err(e);
                break;
            }
        }
        *self.transaction() = Some(txn);
        outcome
    }

    /// Run one statement. `here`: on this machine alone even with workers (a
    /// statement their plans cannot carry, see [`Self::local_context`]).
    async fn execute_statement(
        &self,
        statement: Option<LakeStatement>,
        sql: &str,
        replace_other_kind: bool,
        running: &mut bool,
        here: bool,
    ) -> Result<Vec<RecordBatch>> {
        if let Some(stmt) = statement {
            self.run_lake_statement(stmt).await?;
            return Ok(Vec::new());
        }
        self.refresh().await?;
        let lakes: HashMap<String, Arc<LakeCatalog>> = match self.lakes.lock() {
            Ok(m) => m.clone(),
            Err(p) => p.into_inner().clone(),
        };
        // With workers, a write reads its input and writes its data files on the
        // workers and commits here; UPDATE, DELETE and MERGE find their rows'
        // positions on the workers and write their delete files here.
        let distributed = self.workers.get().is_some();
        let (local, constant_local);
        let mut ctx = &self.ctx;
        if here && distributed {
            local = self.local_context();
            ctx = &local;
        }
        let mut writer = Writer::new(ctx, &lakes)
            .on_workers(distributed && !here)
            .replacing_other_kind(replace_other_kind);
        if let Some(alter) = parse_alter(sql)? {
            *running = true;
            return writer.alter(alter).await;
        }
        if let Some(comment) = crate::dialect::lake_statements::parse_comment(sql)? {
            *running = true;
            return writer.comment(comment).await;
        }
        if let Some(statement) = crate::dialect::macros::parse_macro_statement(sql)? {
            *running = true;
            return writer.macro_statement(statement).await?.ok_or_else(|| {
                Error::Unsupported(
                    "CREATE/DROP MACRO outside an attached DuckLake: lakeq keeps macros in a \
                     lake only (USE the lake or name it: lake.schema.macro)"
                        .into(),
                )
            });
        }
        // Writes get the statement as written: a view stores DuckDB SQL, not the
        // rewritten form (which names lakeq's internal functions).
        let (plan, _) = self.plan(sql).await?;
        if distributed && !here && !crate::session::write::reads_tables(&plan) {
            // Nothing to distribute (VALUES, a UNION ALL of constants, DDL), and
            // the order of its rows decides their row ids: planned for this
            // process, where the engine keeps a union's inputs in order.
            constant_local = self.local_context();
            ctx = &constant_local;
            writer = Writer::new(ctx, &lakes).replacing_other_kind(replace_other_kind);
        }
        *running = true;
        if let Some(result) = writer.execute(&plan, sql).await? {
            return Ok(result);
        }
        // A new session table (`CREATE TEMP TABLE t AS ...`) inside a transaction:
        // a ROLLBACK drops it again, as DuckDB's does.
        if let LogicalPlan::Ddl(datafusion::logical_expr::DdlStatement::CreateMemoryTable(c)) =
            &plan
            && self.in_transaction()
            && !ctx.table_exist(c.name.clone()).unwrap_or(true)
        {
            let name = c.name.clone();
            let df = ctx.execute_logical_plan(plan).await?;
            let result = df.collect().await?;
            if let Some(txn) = self.transaction().as_mut() {
                txn.created_memory_tables.push(name);
            }
            return Ok(result);
        }
        if self.in_transaction() && matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Dml(_)) {
            // DataFusion's own in-memory tables have no transactions: a ROLLBACK
            // could not undo this.
            return Err(Error::Unsupported(
                "changing a table or view outside the attached lakes inside a transaction \
                 (only lake changes are transactional in lakeq)"
                    .into(),
            ));
        }
        let plan = crate::dialect::copy::parquet_copy_types(plan)?;
        let df = ctx.execute_logical_plan(plan).await?;
        Ok(df.collect().await?)
    }

    /// This session's context without its workers: the same catalogs,
    /// functions, settings and runtime, planning for this process alone. A
    /// statement whose plan the workers cannot carry (the filename column, geometry)
    /// runs here instead (see [`crate::distributed::local_state`]).
    fn local_context(&self) -> SessionContext {
        SessionContext::new_with_state(crate::distributed::local_state(self.ctx.state()))
    }

    /// dbt's `delete+insert` in one snapshot: delete the rows of lake table
    /// `table` (`lake.schema.name`) whose `unique_key` columns match a row of
    /// `query`, then insert `query`'s rows. Returns (rows deleted, rows inserted).
    pub async fn delete_insert(
        &self,
        table: &str,
        query: &str,
        unique_key: &[String],
    ) -> Result<(u64, u64)> {
        self.refresh().await?;
        let lakes: HashMap<String, Arc<LakeCatalog>> = match self.lakes.lock() {
            Ok(m) => m.clone(),
            Err(p) => p.into_inner().clone(),
        };
        // The delete needs row positions: with workers, all of it runs here.
        let local;
        let mut ctx = &self.ctx;
        if self.workers.get().is_some() {
            local = self.local_context();
            ctx = &local;
        }
        let writer = Writer::new(ctx, &lakes);
        let (plan, _) = self.plan(query).await?;
        let table = datafusion::common::TableReference::parse_str(table);
        writer.delete_insert(&table, &plan, unique_key).await
    }

    /// Run a script of `;`-separated statements, stopping at the first error.
    pub async fn run_script(&self, script: &str) -> Result<Vec<StatementResult>> {
        let mut out = Vec::new();
        for stmt in split_statements(script)? {
            let batches = self.sql(&stmt).await?;
            out.push(StatementResult { sql: stmt, batches });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn options_reach_the_context() {
        let session = Session::with_options(&SessionOptions::default().with_target_partitions(3));
        assert_eq!(session.context().state().config().target_partitions(), 3);
        let limited = Session::with_memory_limit(Some(1 << 20));
        let pool = limited.context().runtime_env().memory_pool.memory_limit();
        assert!(matches!(
            pool,
            datafusion::execution::memory_pool::MemoryLimit::Finite(n) if n == 1 << 20
        ));
    }

    #[test]
    fn memory_limits_parse_with_units() {
        assert_eq!(parse_bytes("1GiB"), Some(1 << 30));
        assert_eq!(parse_bytes("512 MiB"), Some(512 << 20));
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("1TiB"), None);
    }

    /// Embedders run queries on `tokio::spawn`: the futures must be `Send`.
    #[test]
    fn session_futures_are_send() {
        let session = Session::new();
        let fut = session.sql("SELECT 1");
        assert_send(&fut);
        let script = session.run_script("SELECT 1; SELECT 2");
        assert_send(&script);
    }
}
