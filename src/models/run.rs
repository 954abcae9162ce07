//! Running models and data tests along the DAG.
//!
//! Every model write is one statement and therefore one snapshot of the target
//! lake (a `CREATE OR REPLACE VIEW`, a `CREATE OR REPLACE TABLE ... AS`, an
//! `INSERT`, or a delete+insert), so a model that fails leaves its previous
//! version intact. Independent nodes run concurrently (`threads`); a failed
//! node marks everything downstream of it as skipped and the rest goes on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{Int64Type, UInt64Type};
use serde::Serialize;
use tokio::task::JoinSet;

use super::{Materialized, Project, relation};
use crate::error::{Error, Result};
use crate::{Session, SessionOptions};

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// Build models (`lakeq transform`).
    Models,
    /// Run data tests (`lakeq test`).
    Tests,
    /// Seeds, models and tests in DAG order; a failed test stops its model's descendants (`lakeq build`).
    Build,
    /// Load seeds (`lakeq seed`).
    Seeds,
    /// Take the snapshots (`lakeq snapshot`).
    Snapshots,
}

/// Options of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Nodes run at once.
    pub threads: usize,
    /// Rebuild incremental models from scratch.
    pub full_refresh: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            threads: 4,
            full_refresh: false,
        }
    }
}

/// Outcome of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A model was built.
    Success,
    /// A model or test could not run (SQL error, missing table, ...).
    Error,
    /// Not run because something upstream failed.
    Skipped,
    /// A test found no failing rows.
    Pass,
    /// A test found failing rows.
    Fail,
    /// A test found failing rows, but its severity (or `warn_if`/`error_if`) makes it a warning.
    Warn,
}

impl Status {
    /// Whether the node's descendants may run.
    pub fn ok(self) -> bool {
        matches!(self, Status::Success | Status::Pass | Status::Warn)
    }
}

/// The result of one model or test, as written to `run_results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeResult {
    /// `model.<project>.<name>` or `test.<project>.<name>`.
    pub unique_id: String,
    /// Model or test name.
    pub name: String,
    /// `model` or `test`.
    pub resource_type: &'static str,
    /// Outcome.
    pub status: Status,
    /// Error text, failing-row count or skip reason.
    pub message: Option<String>,
    /// Rows written (tables and incremental models).
    pub rows_affected: Option<u64>,
    /// Failing rows (tests).
    pub failures: Option<u64>,
    /// Seconds spent.
    pub execution_time: f64,
    /// Materialization (models).
    pub materialized: Option<Materialized>,
    /// The relation written (models).
    pub relation: Option<String>,
    /// The SQL that ran.
    pub compiled_sql: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Work {
    Model(String),
    Test(usize),
    Seed(String),
    Unit(usize),
}

/// A node of the run graph.
#[derive(Debug, Clone)]
struct PlannedNode {
    unique_id: String,
    work: Work,
    deps: BTreeSet<String>,
}

/// The nodes of a run and their dependencies, in a valid order.
#[derive(Debug, Clone)]
pub struct RunPlan {
    nodes: Vec<PlannedNode>,
}

impl RunPlan {
    /// Plan `kind` for the selected models (and, for tests/build, their tests).
    pub fn new(project: &Project, models: &BTreeSet<String>, kind: RunKind) -> Result<Self> {
        let proj = &project.config.project.name;
        let run_seeds = matches!(kind, RunKind::Seeds | RunKind::Build);
        let is_snapshot = |m: &str| {
            project
                .models
                .get(m)
                .is_some_and(|m| m.config.materialized == Materialized::Snapshot)
        };
        // Seeds are nodes only in runs that load them; snapshots only in `build` and
        // `snapshot` (as in dbt, whose `run` leaves them alone), and `snapshot` runs nothing else.
        let models: &BTreeSet<String> = &models
            .iter()
            .filter(|m| run_seeds || !project.is_seed(m))
            .filter(|m| match kind {
                RunKind::Models => !is_snapshot(m),
                RunKind::Snapshots => is_snapshot(m),
                _ => true,
            })
            .cloned()
            .collect();
        let model_id = |m: &str| {
            if project.is_seed(m) {
                format!("seed.{proj}.{m}")
            } else if is_snapshot(m) {
                format!("snapshot.{proj}.{m}")
            } else {
                format!("model.{proj}.{m}")
            }
        };
        let test_id = |t: &str| format!("test.{proj}.{t}");
        let mut nodes: Vec<PlannedNode> = Vec::new();
        if run_seeds {
            for name in project.seeds.keys().filter(|s| models.contains(*s)) {
                nodes.push(PlannedNode {
                    unique_id: model_id(name),
                    work: Work::Seed(name.clone()),
                    deps: BTreeSet::new(),
                });
            }
        }
        let run_models = matches!(kind, RunKind::Models | RunKind::Build | RunKind::Snapshots);
        // Parents of a model within the selection, looking through unselected ones.
        fn selected_parents(
            project: &Project,
            name: &str,
            models: &BTreeSet<String>,
            out: &mut BTreeSet<String>,
            seen: &mut BTreeSet<String>,
        ) {
            let Some(m) = project.models.get(name) else {
                return;
            };
            for r in &m.refs {
                if !seen.insert(r.clone()) {
                    continue;
                }
                if models.contains(r) {
                    out.insert(r.clone());
                } else {
                    selected_parents(project, r, models, out, seen);
                }
            }
        }
        let selected_tests: Vec<(usize, &super::DataTest)> =
            if matches!(kind, RunKind::Models | RunKind::Seeds | RunKind::Snapshots) {
                Vec::new()
            } else {
                project
                    .tests
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| {
                        if t.depends_on.is_empty() {
                            project.models.keys().all(|m| models.contains(m))
                        } else {
                            t.depends_on.iter().any(|m| models.contains(m))
                        }
                    })
                    .collect()
            };
        if run_models {
            let deps: BTreeMap<String, Vec<String>> = project
                .models
                .iter()
                .map(|(k, m)| (k.clone(), m.refs.clone()))
                .collect();
            for name in super::graph::topological_order(&deps)? {
                if !models.contains(&name) {
                    continue;
                }
                let mut parents = BTreeSet::new();
                selected_parents(project, &name, models, &mut parents, &mut BTreeSet::new());
                let mut deps: BTreeSet<String> = parents.iter().map(|p| model_id(p)).collect();
                if kind == RunKind::Build {
                    let ancestors = super::graph::upstream(project, &name);
                    for (_, t) in &selected_tests {
                        let on_parent = t.def.model.as_ref().is_some_and(|m| parents.contains(m));
                        if on_parent && t.depends_on.iter().all(|d| ancestors.contains(d)) {
                            deps.insert(test_id(&t.def.name));
                        }
                    }
                }
                nodes.push(PlannedNode {
                    unique_id: model_id(&name),
                    work: Work::Model(name),
                    deps,
                });
            }
        }
        // Unit tests run before their model (in build, the model waits for them) and
        // after the model's parents (their columns type the given rows).
        let unit_id =
            |u: &super::project::UnitTestDef| format!("unit_test.{proj}.{}.{}", u.model, u.name);
        if !matches!(kind, RunKind::Models | RunKind::Seeds | RunKind::Snapshots) {
            for (i, u) in project.unit_tests.iter().enumerate() {
                if !models.contains(&u.model) {
                    continue;
                }
                let mut deps = BTreeSet::new();
                if run_models || run_seeds {
                    let mut parents = BTreeSet::new();
                    selected_parents(
                        project,
                        &u.model,
                        models,
                        &mut parents,
                        &mut BTreeSet::new(),
                    );
                    deps.extend(parents.iter().map(|p| model_id(p)));
                }
                if kind == RunKind::Build {
                    let id = model_id(&u.model);
                    if let Some(n) = nodes.iter_mut().find(|n| n.unique_id == id) {
                        n.deps.insert(unit_id(u));
                    }
                }
                nodes.push(PlannedNode {
                    unique_id: unit_id(u),
                    work: Work::Unit(i),
                    deps,
                });
            }
        }
        for (i, t) in selected_tests {
            let deps = if run_models || run_seeds {
                t.depends_on
                    .iter()
                    .filter(|m| models.contains(*m))
                    .map(|m| model_id(m))
                    .collect()
            } else {
                BTreeSet::new()
            };
            nodes.push(PlannedNode {
                unique_id: test_id(&t.def.name),
                work: Work::Test(i),
                deps,
            });
        }
        // Order so that every node comes after its dependencies (tests may precede models in build).
        let deps: BTreeMap<String, Vec<String>> = nodes
            .iter()
            .map(|n| (n.unique_id.clone(), n.deps.iter().cloned().collect()))
            .collect();
        let order = super::graph::topological_order(&deps)?;
        let mut by_id: BTreeMap<String, PlannedNode> = nodes
            .into_iter()
            .map(|n| (n.unique_id.clone(), n))
            .collect();
        let nodes = order
            .into_iter()
            .filter_map(|id| by_id.remove(&id))
            .collect();
        Ok(Self { nodes })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// Attach the lakes a project needs (target and sources) to a new session,
/// whose query operators share the project's memory pool
/// ([`crate::config::Config::memory_limit`]).
pub async fn open_session(project: &Project) -> Result<Session> {
    let options = SessionOptions::default().with_memory_limit(project.config.memory_limit()?);
    open_session_with(project, &options).await
}

/// [`open_session`] with the host's session options (memory limit, partitions).
pub async fn open_session_with(project: &Project, options: &SessionOptions) -> Result<Session> {
    let session = Session::with_options(options);
    for name in project.lakes() {
        let lake = project.config.lake(&name, &project.files.root);
        session.attach(&name, &lake.catalog, lake.options()).await?;
    }
    Ok(session)
}

/// dbt's `--defer`: every model, seed and snapshot that is not `selected` and
/// whose relation does not exist in this target (or every one, with
/// `favor_state`, dbt's `--favor-state`) is read from its relation in the
/// `--state` manifest instead: `ref()` to it resolves there. The lakes those
/// relations live in are attached when the project configures them (or their
/// embedded catalog file exists). Returns the deferred (name, relation) pairs.
pub async fn defer_to_state(
    project: &mut Project,
    selected: &BTreeSet<String>,
    session: &Session,
    favor_state: bool,
) -> Result<Vec<(String, String)>> {
    let Some(state) = project.state.clone() else {
        return Err(Error::Models(super::ModelError::Selection(
            "--defer needs --state <folder> (the target/ of a run of the environment to defer to)"
                .into(),
        )));
    };
    let mut from_state: BTreeMap<String, String> = BTreeMap::new();
    if let Some(nodes) = state.get("nodes").and_then(|n| n.as_object()) {
        for node in nodes.values() {
            let kind = node.get("resource_type").and_then(|v| v.as_str());
            let name = node.get("name").and_then(|v| v.as_str());
            let rel = node.get("relation_name").and_then(|v| v.as_str());
            if let (Some("model" | "seed" | "snapshot"), Some(name), Some(rel)) = (kind, name, rel)
            {
                from_state.insert(name.to_string(), rel.to_string());
            }
        }
    }
    let candidates: Vec<String> = project
        .models
        .values()
        .filter(|m| m.config.materialized != Materialized::Ephemeral)
        .map(|m| m.name.clone())
        .chain(project.seeds.keys().cloned())
        .filter(|n| !selected.contains(n))
        .collect();
    // The relations of each lake, listed once (not one catalog query per node).
    let mut existing: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    let mut deferred = Vec::new();
    for name in candidates {
        let Some((lake, schema, table)) =
            from_state.get(&name).and_then(|t| super::split_relation(t))
        else {
            continue;
        };
        let state_relation = relation(&lake, &schema, &table);
        let here = match project.models.get(&name) {
            Some(m) => m.relation.clone(),
            None => project
                .seeds
                .get(&name)
                .map(|s| s.relation.clone())
                .unwrap_or_default(),
        };
        if state_relation == here {
            continue;
        }
        if !favor_state
            && let Some((here_lake, here_schema, here_table)) = super::split_relation(&here)
        {
            if !existing.contains_key(&here_lake) {
                let listed = relations_of(session, &here_lake).await;
                existing.insert(here_lake.clone(), listed);
            }
            if existing
                .get(&here_lake)
                .is_some_and(|set| set.contains(&(here_schema, here_table)))
            {
                continue;
            }
        }
        if session.lake(&lake).is_err() {
            let config = project.config.lake(&lake, &project.files.root);
            let configured = project.config.lakes.contains_key(&lake);
            let embedded = project
                .files
                .root
                .join("lake")
                .join(format!("{lake}.sqlite"))
                .is_file();
            if !configured && !embedded {
                return Err(Error::Models(super::ModelError::Selection(format!(
                    "--defer: '{name}' is in lake '{lake}' in the --state manifest \
                     ({state_relation}), which this project does not configure"
                ))));
            }
            session
                .attach(&lake, &config.catalog, config.options())
                .await?;
        }
        project.defer(&name, state_relation.clone());
        deferred.push((name, state_relation));
    }
    Ok(deferred)
}

/// The (schema, name) of every table and view of `lake` (none when it cannot be
/// listed: a lake that is not attached holds nothing of this target).
async fn relations_of(session: &Session, lake: &str) -> BTreeSet<(String, String)> {
    let sql = format!(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = {}",
        crate::store::quote_text(lake)
    );
    let mut out = BTreeSet::new();
    if let Ok(batches) = session.sql(&sql).await {
        for batch in &batches {
            for row in 0..batch.num_rows() {
                let cell = |c: usize| {
                    crate::dialect::render::value_text(batch.column(c).as_ref(), row)
                        .unwrap_or_default()
                };
                out.insert((cell(0), cell(1)));
            }
        }
    }
    out
}

/// Run a plan. `on_result` sees each node's result as it finishes (for progress
/// output); the results come back in completion order. Nodes share the session's
/// memory pool: a node that runs out of memory while others run beside it is run
/// again alone (it committed nothing), holding back the nodes still waiting.
pub async fn execute(
    project: Arc<Project>,
    session: Arc<Session>,
    plan: RunPlan,
    options: &RunOptions,
    on_result: &(dyn Fn(&NodeResult, usize, usize) + Send + Sync),
) -> Result<Vec<NodeResult>> {
    create_schemas(&project, &session, &plan).await?;
    let total = plan.nodes.len();
    let mut waiting: Vec<PlannedNode> = plan.nodes;
    let mut done: BTreeMap<String, Status> = BTreeMap::new();
    let mut results = Vec::new();
    let mut running = JoinSet::new();
    // Per running node: whether another node ran beside it at any time.
    let mut overlapped: BTreeMap<String, bool> = BTreeMap::new();
    // Nodes that ran out of memory beside others, to run again with nothing beside them.
    let mut alone: Vec<PlannedNode> = Vec::new();
    let threads = options.threads.max(1);
    loop {
        // Skip nodes with a failed dependency (first in plan order, until none is left).
        while let Some((pos, failed)) = waiting.iter().enumerate().find_map(|(pos, node)| {
            node.deps
                .iter()
                .find(|d| done.get(*d).is_some_and(|s| !s.ok()))
                .map(|d| (pos, d.clone()))
        }) {
            let node = waiting.remove(pos);
            let r = skipped(&project, &node, &failed);
            done.insert(node.unique_id.clone(), Status::Skipped);
            on_result(&r, results.len() + 1, total);
            results.push(r);
        }
        // Start nodes whose dependencies all succeeded, in plan order; a node to run
        // alone waits for the running ones to finish and holds back the others.
        while running.len() < threads {
            let (node, retry) = if alone.is_empty() {
                let Some(pos) = waiting
                    .iter()
                    .position(|n| n.deps.iter().all(|d| done.contains_key(d)))
                else {
                    break;
                };
                (waiting.remove(pos), false)
            } else if running.is_empty() {
                (alone.remove(0), true)
            } else {
                break;
            };
            let beside = !running.is_empty();
            for flag in overlapped.values_mut() {
                *flag |= beside;
            }
            overlapped.insert(node.unique_id.clone(), beside);
            let (p, s, full_refresh) = (
                Arc::clone(&project),
                Arc::clone(&session),
                options.full_refresh,
            );
            running.spawn(async move {
                let mut r = run_node(&p, &s, &node, full_refresh).await;
                if retry {
                    let note = "run again alone after running out of memory beside other nodes";
                    r.message = Some(match r.message.take() {
                        Some(m) => format!("{m} ({note})"),
                        None => note.to_string(),
                    });
                }
                (node, r, retry)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (node, result, retried) =
            joined.map_err(|e| Error::NodeFailed(format!("a model task failed: {e}")))?;
        let beside = overlapped.remove(&node.unique_id).unwrap_or(false);
        if !retried && beside && out_of_memory(&result) {
            // The memory pool is shared: beside other models this one did not fit.
            // Models commit all or nothing, so running it again alone is safe.
            alone.push(node);
            continue;
        }
        done.insert(node.unique_id, result.status);
        on_result(&result, results.len() + 1, total);
        results.push(result);
    }
    Ok(results)
}

/// Whether a node failed because the session's memory pool was exhausted.
fn out_of_memory(result: &NodeResult) -> bool {
    result.status == Status::Error
        && result
            .message
            .as_deref()
            .is_some_and(|m| m.contains("Resources exhausted"))
}

/// `CREATE SCHEMA IF NOT EXISTS` for every schema the plan writes (before any
/// model runs, so concurrent models never race to create one).
pub async fn create_schemas(project: &Project, session: &Session, plan: &RunPlan) -> Result<()> {
    let mut schemas = BTreeSet::new();
    for n in &plan.nodes {
        if let Work::Model(name) = &n.work
            && let Some(m) = project.models.get(name)
            && m.config.materialized != Materialized::Ephemeral
        {
            schemas.insert(m.config.schema.clone());
        }
        if let Work::Seed(name) = &n.work
            && let Some(s) = project.seeds.get(name)
        {
            schemas.insert(s.config.schema.clone());
        }
        if let Work::Test(i) = &n.work
            && project
                .tests
                .get(*i)
                .is_some_and(|t| t.def.config.store_failures)
        {
            schemas.insert(project.audit_schema.clone());
        }
    }
    let lake = session.lake(&project.target_lake)?;
    lake.refresh().await?;
    let existing = lake.current();
    for s in schemas {
        if !existing.schemas.contains_key(&s) {
            session
                .sql(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {}.{}",
                    super::ident(&project.target_lake),
                    super::ident(&s)
                ))
                .await?;
        }
    }
    Ok(())
}

fn skipped(project: &Project, node: &PlannedNode, failed: &str) -> NodeResult {
    let (name, resource_type) = describe(project, &node.work);
    NodeResult {
        unique_id: node.unique_id.clone(),
        name,
        resource_type,
        status: Status::Skipped,
        message: Some(format!("skipped because {failed} did not succeed")),
        rows_affected: None,
        failures: None,
        execution_time: 0.0,
        materialized: None,
        relation: None,
        compiled_sql: None,
    }
}

fn describe(project: &Project, work: &Work) -> (String, &'static str) {
    match work {
        Work::Model(m) => (
            m.clone(),
            project
                .models
                .get(m)
                .map_or("model", super::Model::resource_type),
        ),
        Work::Seed(m) => (m.clone(), "seed"),
        Work::Unit(i) => (
            project
                .unit_tests
                .get(*i)
                .map(|u| format!("{}::{}", u.model, u.name))
                .unwrap_or_default(),
            "unit_test",
        ),
        Work::Test(i) => (
            project
                .tests
                .get(*i)
                .map(|t| t.def.name.clone())
                .unwrap_or_default(),
            "test",
        ),
    }
}

async fn run_node(
    project: &Project,
    session: &Session,
    node: &PlannedNode,
    full_refresh: bool,
) -> NodeResult {
    let started = Instant::now();
    let (name, resource_type) = describe(project, &node.work);
    let mut result = NodeResult {
        unique_id: node.unique_id.clone(),
        name,
        resource_type,
        status: Status::Success,
        message: None,
        rows_affected: None,
        failures: None,
        execution_time: 0.0,
        materialized: None,
        relation: None,
        compiled_sql: None,
    };
    let outcome = match &node.work {
        Work::Model(m) => run_model(project, session, m, full_refresh, &mut result).await,
        Work::Test(i) => run_test(project, session, *i, &mut result).await,
        Work::Seed(s) => run_seed(project, session, s, &mut result).await,
        Work::Unit(i) => run_unit_test(project, session, *i, &mut result).await,
    };
    if let Err(e) = outcome {
        result.status = Status::Error;
        result.message = Some(e.to_string());
    }
    result.execution_time = started.elapsed().as_secs_f64();
    result
}

async fn run_model(
    project: &Project,
    session: &Session,
    name: &str,
    full_refresh: bool,
    result: &mut NodeResult,
) -> Result<()> {
    let model = project.model(name)?;
    let cfg = &model.config;
    result.materialized = Some(cfg.materialized);
    if cfg.materialized == Materialized::Ephemeral {
        result.message = Some("ephemeral: inlined into the models that use it".into());
        return Ok(());
    }
    let rel = relation(&project.target_lake, &cfg.schema, model.table());
    result.relation = Some(rel.clone());
    let lake = session.lake(&project.target_lake)?;
    lake.refresh().await?;
    let snapshot = lake.current();
    let existing = snapshot.table(&cfg.schema, model.table()).ok().cloned();
    let incremental =
        cfg.materialized == Materialized::Incremental && existing.is_some() && !full_refresh;
    let sql = project.compile(name, incremental)?;
    result.compiled_sql = Some(sql.clone());
    let context = |e: Error| model_error(model, e);
    run_hooks(project, session, &cfg.pre_hook, Some(name), "pre_hook")
        .await
        .map_err(context)?;
    // dbt checks an enforced contract after the pre-hooks, before the model's statement.
    let contract = if cfg.contract_enforced {
        Some(
            check_contract(session, model, &sql)
                .await
                .map_err(context)?,
        )
    } else {
        None
    };
    match (cfg.materialized, existing) {
        (Materialized::View, _) => {
            let statement = format!("CREATE OR REPLACE VIEW {rel} AS\n{sql}");
            if view_unchanged(&snapshot, project, model.table(), &cfg.schema, &statement) {
                // Same SQL: no new snapshot; still plan it, so a broken upstream is reported.
                session.refresh().await.map_err(context)?;
                session
                    .context()
                    .sql(&sql)
                    .await
                    .map_err(|e| context(e.into()))?;
                result.message = Some("view unchanged".into());
            } else {
                session
                    .sql_replacing_any_kind(&statement)
                    .await
                    .map_err(context)?;
            }
        }
        (Materialized::Incremental, Some(_)) if incremental && cfg.on_schema_change != "ignore" => {
            let change = schema_change(session, &rel, &sql).await.map_err(context)?;
            let rows = incremental_with_schema_change(project, model, &rel, &sql, &change)
                .await
                .map_err(context)?;
            result.rows_affected = Some(rows);
            if !change.is_empty() {
                result.message = Some(change.describe());
            }
        }
        (Materialized::Incremental, Some(table)) if incremental => {
            let columns: Vec<String> = table
                .arrow_schema
                .fields()
                .iter()
                .map(|f| super::ident(f.name()))
                .collect();
            let columns = columns.join(", ");
            if cfg.incremental_strategy == "delete+insert" {
                let query = format!("SELECT {columns} FROM (\n{sql}\n) AS new_rows");
                let (deleted, inserted) = session
                    .delete_insert(&rel, &query, &cfg.unique_key)
                    .await
                    .map_err(context)?;
                result.rows_affected = Some(inserted);
                result.message = Some(format!("{deleted} rows replaced, {inserted} rows written"));
            } else {
                let batches = session
                    .sql(&format!(
                        "INSERT INTO {rel} ({columns}) SELECT {columns} FROM (\n{sql}\n) AS new_rows"
                    ))
                    .await
                    .map_err(context)?;
                result.rows_affected = Some(count(&batches));
            }
        }
        (Materialized::Table | Materialized::Incremental, _) if contract.is_some() => {
            let columns = contract.as_deref().unwrap_or_default();
            let rows = build_contracted(project, &snapshot, model, &rel, &sql, columns)
                .await
                .map_err(context)?;
            result.rows_affected = Some(rows);
        }
        (Materialized::Table | Materialized::Incremental, _) => {
            let batches = session
                .sql_replacing_any_kind(&format!("CREATE OR REPLACE TABLE {rel} AS\n{sql}"))
                .await
                .map_err(context)?;
            result.rows_affected = Some(count(&batches));
        }
        (Materialized::Snapshot, existing) => {
            let rows = take_snapshot(project, session, model, &rel, &sql, existing.as_deref())
                .await
                .map_err(context)?;
            result.rows_affected = Some(rows);
        }
        (Materialized::Ephemeral, _) => {}
    }
    run_hooks(project, session, &cfg.post_hook, Some(name), "post_hook")
        .await
        .map_err(context)?;
    Ok(())
}

/// Take a snapshot as dbt-duckdb takes it (see [`super::snapshot`]): the
/// first time, the table of the query's rows with their meta columns; later,
/// the changes, closed versions and new versions in one transaction (one
/// snapshot of the lake). Returns the rows written.
async fn take_snapshot(
    project: &Project,
    session: &Session,
    model: &super::Model,
    rel: &str,
    sql: &str,
    existing: Option<&crate::catalog::TableEntry>,
) -> Result<u64> {
    let cfg = model.config.snapshot.as_ref().ok_or_else(|| {
        Error::NodeFailed("a snapshot without its snapshot config (strategy, ...)".into())
    })?;
    let keys = &model.config.unique_key;
    let now = super::snapshot::now_literal();
    let Some(table) = existing else {
        let select = super::snapshot::build_sql(cfg, keys, sql, &now);
        let batches = session
            .sql(&format!("CREATE TABLE {rel} AS\n{select}"))
            .await?;
        return Ok(count(&batches));
    };
    let target_columns: Vec<String> = table
        .arrow_schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let query = columns_of(
        session,
        &format!("SELECT * FROM (\n{sql}\n) AS snapshot_query"),
    )
    .await?;
    let query_names: Vec<String> = query.iter().map(|(n, _)| n.clone()).collect();
    let staging =
        super::snapshot::staging_sql(cfg, keys, sql, rel, &now, &query_names, &target_columns);
    let insert = super::snapshot::insert_columns(cfg, &query_names);
    // Columns new in the query (or dbt_is_deleted, new with hard_deletes: new_record) are added.
    let mut added = Vec::new();
    for name in insert.iter().filter(|n| !target_columns.contains(n)) {
        let ty = query
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, t)| t.clone())
            .or_else(|| (*name == cfg.columns.dbt_is_deleted).then(|| "VARCHAR".to_string()))
            .ok_or_else(|| {
                Error::NodeFailed(format!(
                    "lakeq cannot name the type of the new column '{name}' to add it to {rel}"
                ))
            })?;
        added.push((name.clone(), ty));
    }
    let statements = super::snapshot::merge_statements(
        cfg,
        rel,
        &format!("{}__dbt_tmp", model.table()),
        &staging,
        &added,
        &insert,
    );
    in_one_transaction_retrying(project, &statements).await
}

/// How the columns of an incremental model's query differ from its table's.
#[derive(Debug, Default)]
struct SchemaChange {
    /// Columns of the query (name, SQL type), in order.
    query: Vec<(String, Option<String>)>,
    /// Query columns the table lacks.
    added: Vec<(String, Option<String>)>,
    /// Table columns the query lacks.
    removed: Vec<String>,
}

impl SchemaChange {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    fn describe(&self) -> String {
        let names = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let added: Vec<String> = self.added.iter().map(|(n, _)| n.clone()).collect();
        format!(
            "columns new in the query: {}; columns the query lacks: {}",
            names(&added),
            names(&self.removed)
        )
    }
}

async fn schema_change(session: &Session, rel: &str, sql: &str) -> Result<SchemaChange> {
    let table = columns_of(session, &format!("SELECT * FROM {rel}")).await?;
    let query = columns_of(session, &format!("SELECT * FROM (\n{sql}\n) AS new_rows")).await?;
    let has = |cols: &[(String, Option<String>)], name: &str| {
        cols.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    Ok(SchemaChange {
        added: query
            .iter()
            .filter(|(n, _)| !has(&table, n))
            .cloned()
            .collect(),
        removed: table
            .iter()
            .filter(|(n, _)| !has(&query, n))
            .map(|(n, _)| n.clone())
            .collect(),
        query,
    })
}

/// An incremental run under `on_schema_change` `fail`, `append_new_columns` or
/// `sync_all_columns`: the table's columns change as dbt changes them, and the
/// column changes and the new rows are one snapshot (one transaction of a
/// session of its own). Returns the rows written.
async fn incremental_with_schema_change(
    project: &Project,
    model: &super::Model,
    rel: &str,
    sql: &str,
    change: &SchemaChange,
) -> Result<u64> {
    let cfg = &model.config;
    if cfg.on_schema_change == "fail" && !change.is_empty() {
        return Err(Error::NodeFailed(format!(
            "on_schema_change 'fail': the columns of the query and of {rel} differ ({}); \
             rebuild it with --full-refresh or set another on_schema_change",
            change.describe()
        )));
    }
    let mut statements = Vec::new();
    for (name, ty) in &change.added {
        let ty = ty.as_deref().ok_or_else(|| {
            Error::NodeFailed(format!(
                "on_schema_change: lakeq cannot name the type of the new column '{name}' to add it to {rel}"
            ))
        })?;
        statements.push(format!(
            "ALTER TABLE {rel} ADD COLUMN {} {ty}",
            super::ident(name)
        ));
    }
    if cfg.on_schema_change == "sync_all_columns" {
        for name in &change.removed {
            statements.push(format!(
                "ALTER TABLE {rel} DROP COLUMN {}",
                super::ident(name)
            ));
        }
    }
    let columns = change
        .query
        .iter()
        .map(|(n, _)| super::ident(n))
        .collect::<Vec<_>>()
        .join(", ");
    if cfg.incremental_strategy == "delete+insert" {
        let [key] = cfg.unique_key.as_slice() else {
            return Err(Error::NodeFailed(format!(
                "on_schema_change '{}' with a unique_key of {} columns is not supported by lakeq yet \
                 (one column, or on_schema_change 'ignore')",
                cfg.on_schema_change,
                cfg.unique_key.len()
            )));
        };
        let key = super::ident(key);
        statements.push(format!(
            "DELETE FROM {rel} WHERE {key} IN (SELECT {key} FROM (\n{sql}\n) AS new_rows)"
        ));
    }
    statements.push(format!(
        "INSERT INTO {rel} ({columns}) SELECT {columns} FROM (\n{sql}\n) AS new_rows"
    ));
    in_one_transaction_retrying(project, &statements).await
}

/// [`in_one_transaction`], run again on a retryable conflict: a transaction of
/// lakeq's does not yet merge with commits made meanwhile (by models running
/// beside this one), so it is retried a bounded number of times.
async fn in_one_transaction_retrying(project: &Project, statements: &[String]) -> Result<u64> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match in_one_transaction(project, statements).await {
            Err(Error::CommitConflict {
                retryable: true, ..
            }) if attempts < MAX_ATTEMPTS => continue,
            other => return other,
        }
    }
}

/// A column of an enforced contract, checked against the query: its name,
/// DuckDB's name of its type, and whether it is `not_null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractColumn {
    /// The column name, as the YAML spells it.
    pub name: String,
    /// DuckDB's name of its type (`INTEGER`, `DECIMAL(10,2)`, `VARCHAR`).
    pub data_type: String,
    /// Whether it has a `not_null` constraint.
    pub not_null: bool,
}

/// dbt's `assert_columns_equivalent`: the query's columns and the contract's
/// (YAML `columns:` with `data_type`) have the same names (exactly, as dbt
/// compares them) and types (both as lakeq types them, compared by DuckDB's
/// type name), in any order. A mismatch is an error listing every difference;
/// nothing has been written then. Returns the contract's columns in YAML order.
async fn check_contract(
    session: &Session,
    model: &super::Model,
    sql: &str,
) -> Result<Vec<ContractColumn>> {
    use crate::dialect::render::duckdb_type_name;
    let query = session
        .query(&format!("SELECT * FROM (\n{sql}\n) AS model_subq"))
        .await?;
    let actual: Vec<(String, String)> = query
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), duckdb_type_name(f.data_type())))
        .collect();
    let mut declared = Vec::new();
    for c in &model.columns {
        let written = c.data_type.as_deref().unwrap_or_default();
        // The declared type as lakeq's SQL reads it (`int` -> INTEGER, `text` -> VARCHAR).
        let typed = session
            .query(&format!(
                "SELECT CAST(NULL AS {written}) AS {}",
                super::ident(&c.name)
            ))
            .await
            .map_err(|e| {
                Error::NodeFailed(format!(
                    "contract: column '{}' has data_type '{written}', which is not a type lakeq knows: {e}",
                    c.name
                ))
            })?;
        let data_type = typed
            .schema()
            .fields()
            .first()
            .map(|f| duckdb_type_name(f.data_type()))
            .unwrap_or_default();
        declared.push((c, written, data_type));
    }
    let mut problems = Vec::new();
    for (name, ty) in &actual {
        match declared.iter().find(|(c, _, _)| &c.name == name) {
            None => problems.push(format!(
                "column '{name}' ({ty}) is returned by the query but missing from the contract"
            )),
            Some((_, written, declared_ty)) if declared_ty != ty => problems.push(format!(
                "column '{name}' is declared '{written}' ({declared_ty}) but the query returns {ty}"
            )),
            Some(_) => {}
        }
    }
    for (c, written, _) in &declared {
        if !actual.iter().any(|(n, _)| n == &c.name) {
            problems.push(format!(
                "column '{}' ('{written}') is in the contract but not returned by the query",
                c.name
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::NodeFailed(format!(
            "its enforced contract does not match its query, so nothing was written \
             (the name, data_type and number of columns in the YAML must match the query's):\n  {}",
            problems.join("\n  ")
        )));
    }
    // DuckLake tables hold NOT NULL and nothing else (DuckDB refuses the others there too).
    let mut unsupported: Vec<String> = model
        .constraints
        .iter()
        .map(|t| format!("'{t}' (model-level)"))
        .collect();
    for c in &model.columns {
        for t in c.constraints.iter().filter(|t| t.as_str() != "not_null") {
            unsupported.push(format!("'{t}' on column '{}'", c.name));
        }
    }
    if model.config.materialized != super::Materialized::View && !unsupported.is_empty() {
        return Err(Error::NodeFailed(format!(
            "constraints {} are not supported on DuckLake tables (only not_null is; \
             dbt-duckdb fails on them too); nothing was written",
            unsupported.join(", ")
        )));
    }
    Ok(declared
        .into_iter()
        .map(|(c, _, data_type)| ContractColumn {
            name: c.name.clone(),
            data_type,
            not_null: c.constraints.iter().any(|t| t == "not_null"),
        })
        .collect())
}

/// A table (or the first build of an incremental model) under an enforced
/// contract, as dbt-duckdb builds it: created with the contract's columns, in
/// the YAML's order, with their types and `NOT NULL` constraints, then filled
/// from the query; one transaction, one snapshot. A row that breaks a
/// constraint fails the model and leaves the previous table.
async fn build_contracted(
    project: &Project,
    snapshot: &crate::catalog::CatalogSnapshot,
    model: &super::Model,
    rel: &str,
    sql: &str,
    columns: &[ContractColumn],
) -> Result<u64> {
    let mut statements = Vec::new();
    if snapshot
        .schemas
        .get(&model.config.schema)
        .is_some_and(|s| s.views.contains_key(model.table()))
    {
        statements.push(format!("DROP VIEW {rel}"));
    }
    let definitions = columns
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                super::ident(&c.name),
                c.data_type,
                if c.not_null { " NOT NULL" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    statements.push(format!("CREATE OR REPLACE TABLE {rel} ({definitions})"));
    let names = columns
        .iter()
        .map(|c| super::ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    statements.push(format!(
        "INSERT INTO {rel} ({names}) SELECT {names} FROM (\n{sql}\n) AS model_subq"
    ));
    in_one_transaction_retrying(project, &statements).await
}

/// Tries of a transaction that keeps meeting concurrent commits.
const MAX_ATTEMPTS: usize = 20;

/// Run `statements` in one transaction of a session of their own (one
/// snapshot); returns the row count of the last one.
async fn in_one_transaction(project: &Project, statements: &[String]) -> Result<u64> {
    let session = open_session(project).await?;
    session.sql("BEGIN TRANSACTION").await?;
    let mut rows = 0;
    for statement in statements {
        match session.sql(statement).await {
            Ok(batches) => rows = count(&batches),
            Err(e) => {
                // The error is what matters; a failed rollback leaves nothing committed either.
                let _ = session.sql("ROLLBACK").await;
                return Err(e);
            }
        }
    }
    session.sql("COMMIT").await?;
    Ok(rows)
}

/// Render and run hooks in order (each may hold several statements): a
/// model's `pre_hook`/`post_hook`, or the project's `on-run-start`/`on-run-end`
/// (`model` none). Each statement that changes the lake is its own snapshot, as
/// in dbt, where hooks run outside the model's own statement.
pub async fn run_hooks(
    project: &Project,
    session: &Session,
    hooks: &[String],
    model: Option<&str>,
    what: &str,
) -> Result<()> {
    run_hooks_with(project, session, hooks, model, what, &BTreeMap::new()).await
}

/// [`run_hooks`] with more names for the hooks' templates (`results` and
/// `schemas` in `on-run-end`: see [`end_of_run_globals`]).
pub async fn run_hooks_with(
    project: &Project,
    session: &Session,
    hooks: &[String],
    model: Option<&str>,
    what: &str,
    globals: &BTreeMap<String, serde_json::Value>,
) -> Result<()> {
    for (i, hook) in hooks.iter().enumerate() {
        let failed = |e: &dyn std::fmt::Display| {
            Error::NodeFailed(format!("{what} {} of {}: {e}", i + 1, hooks.len()))
        };
        let sql = project
            .render_hook_with(hook, model, globals.clone())
            .map_err(|e| failed(&e))?;
        for statement in
            crate::dialect::lake_statements::split_statements(&sql).map_err(|e| failed(&e))?
        {
            session.sql(&statement).await.map_err(|e| failed(&e))?;
        }
    }
    Ok(())
}

/// What dbt's `on-run-end` hooks see besides the usual context: `results`
/// (one per node: `status` as dbt spells it, `node` with `name`, `unique_id`,
/// `resource_type`, `execution_time`, `message`, `failures`,
/// `adapter_response.rows_affected`), `schemas` (the schemas the run built
/// into) and `database_schemas` (`[lake, schema]` pairs).
pub fn end_of_run_globals(
    project: &Project,
    results: &[NodeResult],
) -> BTreeMap<String, serde_json::Value> {
    let list: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "status": r.status,
                "node": {
                    "name": r.name,
                    "unique_id": r.unique_id,
                    "resource_type": r.resource_type,
                    "relation_name": r.relation,
                },
                "unique_id": r.unique_id,
                "execution_time": r.execution_time,
                "message": r.message,
                "failures": r.failures,
                "adapter_response": { "rows_affected": r.rows_affected },
            })
        })
        .collect();
    let mut schemas = BTreeSet::new();
    for r in results {
        let schema = match r.resource_type {
            "model" | "snapshot" => project
                .models
                .get(&r.name)
                .filter(|m| m.config.materialized != Materialized::Ephemeral)
                .map(|m| m.config.schema.clone()),
            "seed" => project.seeds.get(&r.name).map(|s| s.config.schema.clone()),
            _ => None,
        };
        schemas.extend(schema);
    }
    let database_schemas: Vec<serde_json::Value> = schemas
        .iter()
        .map(|s| serde_json::json!([project.target_lake, s]))
        .collect();
    BTreeMap::from([
        ("results".to_string(), serde_json::Value::Array(list)),
        ("schemas".to_string(), serde_json::json!(schemas)),
        (
            "database_schemas".to_string(),
            serde_json::Value::Array(database_schemas),
        ),
    ])
}

/// Column names and SQL types of a query's result (`DESCRIBE`); a type lakeq
/// cannot name in SQL is `None` (its values are left uncast).
async fn columns_of(session: &Session, query: &str) -> Result<Vec<(String, Option<String>)>> {
    let batches = session.sql(&format!("DESCRIBE {query}")).await?;
    let mut out = Vec::new();
    for b in &batches {
        let (Some(names), Some(types)) = (
            b.column(0).as_string_opt::<i32>(),
            b.column(1).as_string_opt::<i32>(),
        ) else {
            return Err(Error::NodeFailed(
                "DESCRIBE returned no column names".into(),
            ));
        };
        for i in 0..b.num_rows() {
            out.push((names.value(i).to_string(), sql_type(types.value(i))));
        }
    }
    Ok(out)
}

/// An Arrow type name (as DESCRIBE prints it) as a SQL type.
fn sql_type(arrow: &str) -> Option<String> {
    Some(
        match arrow {
            "Utf8" | "LargeUtf8" | "Utf8View" => "VARCHAR",
            "Int8" => "TINYINT",
            "Int16" => "SMALLINT",
            "Int32" => "INTEGER",
            "Int64" => "BIGINT",
            "Float32" => "FLOAT",
            "Float64" => "DOUBLE",
            "Boolean" => "BOOLEAN",
            "Date32" => "DATE",
            t if t.starts_with("Timestamp(") && t.ends_with("None)") => "TIMESTAMP",
            t if t.starts_with("Timestamp(") => "TIMESTAMPTZ",
            t if t.starts_with("Decimal128(") => {
                return Some(format!(
                    "DECIMAL{}",
                    t.trim_start_matches("Decimal128").replace(' ', "")
                ));
            }
            _ => return None,
        }
        .to_string(),
    )
}

/// A query of `rows` with the given columns (name, type): each value cast to
/// its column's type, missing values NULL, no rows when `rows` is empty.
fn rows_query(
    columns: &[(String, Option<String>)],
    rows: &[BTreeMap<String, serde_json::Value>],
) -> String {
    let cell = |value: Option<&serde_json::Value>, ty: &Option<String>| {
        let lit = match value {
            None | Some(serde_json::Value::Null) => "NULL".to_string(),
            Some(serde_json::Value::String(s)) => format!("'{}'", s.replace('\'', "''")),
            Some(serde_json::Value::Bool(b)) => b.to_string(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(other) => format!("'{}'", other.to_string().replace('\'', "''")),
        };
        match ty {
            Some(t) => format!("CAST({lit} AS {t})"),
            None => lit,
        }
    };
    let select = |row: Option<&BTreeMap<String, serde_json::Value>>| {
        columns
            .iter()
            .map(|(name, ty)| {
                format!(
                    "{} AS {}",
                    cell(row.and_then(|r| r.get(name)), ty),
                    super::ident(name)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if rows.is_empty() {
        return format!("SELECT {} WHERE false", select(None));
    }
    rows.iter()
        .map(|r| format!("SELECT {}", select(Some(r))))
        .collect::<Vec<_>>()
        .join("\nUNION ALL ")
}

/// `ref('x')` / `ref("x")` / `source('s', 't')` as `ref:x` / `source:s.t`.
fn input_key(input: &str) -> String {
    let compact: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\'' && *c != '"')
        .collect();
    if let Some(args) = compact
        .strip_prefix("ref(")
        .and_then(|a| a.strip_suffix(')'))
    {
        return format!("ref:{}", args.rsplit(',').next().unwrap_or(args));
    }
    if let Some(args) = compact
        .strip_prefix("source(")
        .and_then(|a| a.strip_suffix(')'))
    {
        return format!("source:{}", args.replacen(',', ".", 1));
    }
    compact
}

/// Run a unit test: the model on the given rows, its output compared with
/// `expect` (only the expected columns, as a multiset).
async fn run_unit_test(
    project: &Project,
    session: &Session,
    index: usize,
    result: &mut NodeResult,
) -> Result<()> {
    let test = project
        .unit_tests
        .get(index)
        .ok_or_else(|| Error::not_found("unit test", index.to_string()))?;
    let fail = |what: String| {
        Error::NodeFailed(format!("unit test '{}' ({}): {what}", test.name, test.path))
    };
    let model = project.model(&test.model)?;
    let given: BTreeMap<String, &Vec<BTreeMap<String, serde_json::Value>>> = test
        .given
        .iter()
        .map(|(input, rows)| (input_key(input), rows))
        .collect();
    let keys: Vec<String> = model
        .refs
        .iter()
        .map(|r| format!("ref:{r}"))
        .chain(model.sources.iter().map(|(s, t)| format!("source:{s}.{t}")))
        .collect();
    for k in given.keys() {
        if !keys.contains(k) {
            return Err(fail(format!(
                "given input {k} is not read by model '{}' (it reads {})",
                model.name,
                keys.join(", ")
            )));
        }
    }
    let mut fixtures = BTreeMap::new();
    for key in &keys {
        let rel = project.input_relation(key)?;
        let columns = columns_of(session, &format!("SELECT * FROM {rel}"))
            .await
            .map_err(|e| fail(format!("the columns of input {key} ({rel}): {e}")))?;
        let rows = given.get(key).map(|r| r.as_slice()).unwrap_or_default();
        for r in rows {
            if let Some(c) = r.keys().find(|c| !columns.iter().any(|(n, _)| n == *c)) {
                return Err(fail(format!("given input {key} has no column '{c}'")));
            }
        }
        fixtures.insert(key.clone(), rows_query(&columns, rows));
    }
    let sql = project.compile_unit_test(test, &fixtures)?;
    result.compiled_sql = Some(sql.clone());
    let actual = columns_of(session, &sql)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut wanted: Vec<String> = Vec::new();
    for r in &test.expect {
        for c in r.keys() {
            if !wanted.contains(c) {
                wanted.push(c.clone());
            }
        }
    }
    if wanted.is_empty() {
        wanted = actual.iter().map(|(n, _)| n.clone()).collect();
    }
    let mut columns = Vec::new();
    for w in &wanted {
        let c = actual.iter().find(|(n, _)| n == w).ok_or_else(|| {
            fail(format!(
                "expect names column '{w}', which the model does not return"
            ))
        })?;
        columns.push(c.clone());
    }
    let expected = rows_query(&columns, &test.expect);
    let cols = columns
        .iter()
        .map(|(n, _)| super::ident(n))
        .collect::<Vec<_>>()
        .join(", ");
    let diff = format!(
        "SELECT count(*) FROM (\n(SELECT {cols} FROM (\n{sql}\n) AS actual_rows EXCEPT ALL SELECT {cols} FROM ({expected}) AS expected_rows)\nUNION ALL\n(SELECT {cols} FROM ({expected}) AS expected_rows EXCEPT ALL SELECT {cols} FROM (\n{sql}\n) AS actual_rows)\n) AS differences"
    );
    let batches = session.sql(&diff).await.map_err(|e| fail(e.to_string()))?;
    let differences = count(&batches);
    result.failures = Some(differences);
    if differences == 0 {
        result.status = Status::Pass;
    } else {
        result.status = Status::Fail;
        result.message = Some(format!(
            "{differences} rows differ between the model's output and expect (lakeq compile shows the model; {})",
            test.path
        ));
    }
    Ok(())
}

/// Load a seed: one `CREATE OR REPLACE TABLE ... AS SELECT`, one snapshot.
async fn run_seed(
    project: &Project,
    session: &Session,
    name: &str,
    result: &mut NodeResult,
) -> Result<()> {
    let seed = project
        .seeds
        .get(name)
        .ok_or_else(|| Error::not_found("seed", name.to_string()))?;
    result.relation = Some(seed.relation.clone());
    let sql = super::seed::load_statement(seed)?;
    let failed = |e: Error| Error::NodeFailed(format!("seed '{}' ({}): {e}", seed.name, seed.path));
    // dbt runs a seed's pre-hooks before it loads and its post-hooks after, `this` the seed's table.
    run_hooks(
        project,
        session,
        &seed.config.pre_hook,
        Some(name),
        "pre_hook",
    )
    .await
    .map_err(failed)?;
    let batches = session.sql_replacing_any_kind(&sql).await.map_err(failed)?;
    result.rows_affected = Some(count(&batches));
    run_hooks(
        project,
        session,
        &seed.config.post_hook,
        Some(name),
        "post_hook",
    )
    .await
    .map_err(failed)?;
    Ok(())
}

/// Whether the lake already holds this view with exactly this SQL.
fn view_unchanged(
    snapshot: &crate::catalog::CatalogSnapshot,
    project: &Project,
    name: &str,
    schema: &str,
    statement: &str,
) -> bool {
    let Some(existing) = snapshot.schemas.get(schema).and_then(|s| s.views.get(name)) else {
        return false;
    };
    crate::dialect::lake_statements::view_query(statement, &project.target_lake, schema)
        .is_ok_and(|(query, aliases)| existing.sql == query && existing.column_aliases == aliases)
}

async fn run_test(
    project: &Project,
    session: &Session,
    index: usize,
    result: &mut NodeResult,
) -> Result<()> {
    let test = project
        .tests
        .get(index)
        .ok_or_else(|| Error::not_found("test", index.to_string()))?;
    let (sql, fail_calc) = project.compile_test_with_calc(test)?;
    result.compiled_sql = Some(sql.clone());
    let limited = match test.def.config.limit {
        Some(n) => format!("SELECT * FROM (\n{sql}\n) AS limited_rows LIMIT {n}"),
        None => sql,
    };
    let failed = |e: Error| {
        Error::NodeFailed(format!(
            "test '{}' ({}): {}",
            test.def.name,
            test.def.path,
            shift_lines(&e.to_string())
        ))
    };
    let counted = if test.def.config.store_failures {
        // dbt's store_failures: the failing rows become a table or view (one snapshot), counted from there.
        // (create_schemas made its schema.)
        let alias = match &test.def.alias_head {
            None => test.def.name.clone(),
            Some(head) => {
                let hash = session
                    .sql(&format!(
                        "SELECT md5({})",
                        crate::store::quote_text(&test.def.name)
                    ))
                    .await
                    .map_err(failed)?;
                let hash = hash
                    .first()
                    .filter(|b| b.num_rows() > 0)
                    .and_then(|b| crate::dialect::render::value_text(b.column(0).as_ref(), 0))
                    .unwrap_or_default();
                format!("{head}_{hash}")
            }
        };
        let stored = relation(&project.target_lake, &project.audit_schema, &alias);
        // store_failures_as: view keeps the failing rows' query, as dbt-duckdb does.
        let kind = match test.def.config.store_failures_as.as_deref() {
            Some("view") => "VIEW",
            _ => "TABLE",
        };
        session
            .sql_replacing_any_kind(&format!("CREATE OR REPLACE {kind} {stored} AS\n{limited}"))
            .await
            .map_err(failed)?;
        stored
    } else {
        format!("(\n{limited}\n)")
    };
    let batches = session
        .sql(&format!(
            "SELECT CAST(coalesce({fail_calc}, 0) AS BIGINT) AS failures FROM {counted} AS test_rows"
        ))
        .await
        .map_err(failed)?;
    let failures = count(&batches);
    result.failures = Some(failures);
    // dbt: an error when severity is error and error_if holds; else a warning when warn_if holds.
    let c = &test.def.config;
    let holds =
        |cond: &str| super::project::condition_holds(cond, failures).unwrap_or(failures != 0);
    result.status = if c.severity == "error" && holds(&c.error_if) {
        Status::Fail
    } else if holds(&c.warn_if) {
        Status::Warn
    } else {
        Status::Pass
    };
    if result.status != Status::Pass {
        result.message = Some(format!("{failures} failing rows"));
    }
    Ok(())
}

/// The first value of a one-row count result.
fn count(batches: &[datafusion::arrow::record_batch::RecordBatch]) -> u64 {
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return 0;
    };
    let c = b.column(0);
    if let Some(a) = c.as_primitive_opt::<UInt64Type>() {
        return a.value(0);
    }
    if let Some(a) = c.as_primitive_opt::<Int64Type>() {
        return u64::try_from(a.value(0)).unwrap_or(0);
    }
    0
}

/// Name the model and its file; positions refer to the compiled SQL
/// (`lakeq compile -s <model>`).
fn model_error(model: &super::Model, e: Error) -> Error {
    Error::NodeFailed(format!(
        "model '{}' ({}): {}",
        model.name,
        model.path,
        shift_lines(&e.to_string())
    ))
}

/// The statement wrapped around compiled SQL adds one line before it: make
/// "Line: N" positions in parser errors refer to the compiled SQL.
fn shift_lines(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some((before, after)) = rest.split_once("Line: ") {
        out.push_str(before);
        out.push_str("Line: ");
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        match digits.parse::<u64>() {
            Ok(n) if n > 1 => out.push_str(&(n - 1).to_string()),
            _ => out.push_str(&digits),
        }
        rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_positions_refer_to_the_compiled_sql() {
        assert_eq!(
            shift_lines("Expected: end of statement, found: x at Line: 3, Column: 7"),
            "Expected: end of statement, found: x at Line: 2, Column: 7"
        );
    }
}
