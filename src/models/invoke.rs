//! Running a project from Rust: what `lakeq build`, `transform`, `test`, `seed` and `snapshot` do,
//! as one call ([`run_project`]). The command line is a client of this and only prints the
//! [`RunEvent`]s; a program that embeds lakeq runs a project the same way.
//!
//! ```no_run
//! # async fn demo() -> lakeq::Result<()> {
//! use lakeq::config::Config;
//! use lakeq::models::Project;
//! use lakeq::models::invoke::{RunEvent, RunRequest, run_project};
//! use lakeq::models::run::RunKind;
//!
//! let dir = std::path::Path::new("my_project");
//! let project = Project::load(dir, &Config::load(dir)?, None, Default::default())?;
//! let outcome = run_project(project, &RunRequest::new(RunKind::Build), &|event| {
//!     if let RunEvent::Node { result, .. } = event {
//!         println!("{} {:?}", result.unique_id, result.status);
//!     }
//! })
//! .await?;
//! assert!(outcome.summary.ok());
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Instant;

use super::graph::select_nodes_with_selector;
use super::introspect::SessionDatabase;
use super::run::{
    NodeResult, RunKind, RunOptions, RunPlan, Status, create_schemas, defer_to_state,
    end_of_run_globals, execute, open_session_with, run_hooks, run_hooks_with,
};
use super::{Project, artifacts};
use crate::error::Result;
use crate::session::SessionOptions;

/// What to run of a project, and how.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Models, tests, both in DAG order (build), seeds or snapshots.
    pub kind: RunKind,
    /// Nodes to select (`name`, `+name`, `tag:t`, `path:...`, a folder); empty: all.
    pub select: Vec<String>,
    /// Nodes to leave out (same syntax).
    pub exclude: Vec<String>,
    /// A selector of the project's `selectors.yml`; `select` and `exclude` are then ignored.
    pub selector: Option<String>,
    /// Nodes run at once (default: the dbt profile's `threads:`, else 4).
    pub threads: Option<usize>,
    /// Rebuild incremental models from scratch.
    pub full_refresh: bool,
    /// Read unselected nodes from the project's `--state` manifest (dbt's `--defer`).
    pub defer: bool,
    /// With `defer`: every unselected node, built in this target or not (`--favor-state`).
    pub favor_state: bool,
    /// The session the models run in (memory limit, workers, ...).
    pub session: SessionOptions,
}

impl RunRequest {
    /// Run every node of `kind`, with the default session.
    pub fn new(kind: RunKind) -> Self {
        Self {
            kind,
            select: Vec::new(),
            exclude: Vec::new(),
            selector: None,
            threads: None,
            full_refresh: false,
            defer: false,
            favor_state: false,
            session: SessionOptions::default(),
        }
    }
}

/// What a run reports as it goes, in order.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// A selection warning (a name that matched nothing, ...).
    Warning(&'a str),
    /// Nothing is selected: the run does nothing (the manifest is still written).
    NothingSelected,
    /// The unselected nodes read from the state manifest: (node, relation).
    Deferred(&'a [(String, String)]),
    /// The project's `on-run-start` or `on-run-end` hooks ran.
    Hooks {
        /// `on-run-start` or `on-run-end`.
        which: &'static str,
        /// How many.
        count: usize,
    },
    /// One node finished (`index` of `total`, from 1).
    Node {
        /// Its result, as `run_results.json` records it.
        result: &'a NodeResult,
        /// Its place in the order of finishing, from 1.
        index: usize,
        /// Nodes in the run.
        total: usize,
    },
}

/// Counts of a finished run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunSummary {
    /// Models built.
    pub models_ok: usize,
    /// Models that failed.
    pub models_failed: usize,
    /// Seeds loaded.
    pub seeds_ok: usize,
    /// Seeds that failed to load.
    pub seeds_failed: usize,
    /// Snapshots taken.
    pub snapshots_ok: usize,
    /// Snapshots that failed.
    pub snapshots_failed: usize,
    /// Tests that passed.
    pub tests_passed: usize,
    /// Tests whose failures are warnings (`severity: warn`).
    pub tests_warned: usize,
    /// Tests that failed (or errored).
    pub tests_failed: usize,
    /// Nodes skipped.
    pub skipped: usize,
}

impl RunSummary {
    /// The counts of `results`.
    pub fn of(results: &[NodeResult]) -> Self {
        let mut s = Self::default();
        for r in results {
            match (r.resource_type, r.status) {
                (_, Status::Skipped) => s.skipped += 1,
                ("model", Status::Success) => s.models_ok += 1,
                ("model", _) => s.models_failed += 1,
                ("seed", Status::Success) => s.seeds_ok += 1,
                ("seed", _) => s.seeds_failed += 1,
                ("snapshot", Status::Success) => s.snapshots_ok += 1,
                ("snapshot", _) => s.snapshots_failed += 1,
                (_, Status::Pass) => s.tests_passed += 1,
                (_, Status::Warn) => s.tests_warned += 1,
                _ => s.tests_failed += 1,
            }
        }
        s
    }

    /// Whether everything that ran succeeded.
    pub fn ok(&self) -> bool {
        self.models_failed == 0
            && self.seeds_failed == 0
            && self.snapshots_failed == 0
            && self.tests_failed == 0
            && self.skipped == 0
    }
}

/// A finished run.
#[derive(Debug)]
pub struct RunOutcome {
    /// Every node's result, in the order they finished.
    pub results: Vec<NodeResult>,
    /// Their counts.
    pub summary: RunSummary,
    /// Wall time of the whole run, in seconds.
    pub elapsed_s: f64,
}

/// Run the nodes `request` selects of `project`: write `target/manifest.json`, open a session
/// on the project's lakes, run the `on-run-start` hooks, the nodes in DAG order (`threads` at
/// once; a failed node skips its descendants), the `on-run-end` hooks, and write
/// `target/run_results.json`. Failed nodes are in the outcome, not an error; an error is a run
/// that could not start or whose hooks failed.
pub async fn run_project(
    mut project: Project,
    request: &RunRequest,
    on_event: &(dyn Fn(RunEvent<'_>) + Send + Sync),
) -> Result<RunOutcome> {
    let started = Instant::now();
    let (selected, warnings) = select_nodes_with_selector(
        &project,
        request.selector.as_deref(),
        &request.select,
        &request.exclude,
    )?;
    for w in &warnings {
        on_event(RunEvent::Warning(w));
    }
    let plan = RunPlan::new(&project, &selected, request.kind)?;
    artifacts::write(&project, "manifest.json", &artifacts::manifest(&project))?;
    if plan.is_empty() {
        on_event(RunEvent::NothingSelected);
        return Ok(RunOutcome {
            results: Vec::new(),
            summary: RunSummary::default(),
            elapsed_s: started.elapsed().as_secs_f64(),
        });
    }
    let session = Arc::new(open_session_with(&project, &request.session).await?);
    let which = match request.kind {
        RunKind::Models => "run",
        RunKind::Tests => "test",
        RunKind::Build => "build",
        RunKind::Seeds => "seed",
        RunKind::Snapshots => "snapshot",
    };
    project.set_database(Arc::new(SessionDatabase::new(Arc::clone(&session))), which);
    if request.defer {
        let deferred =
            defer_to_state(&mut project, &selected, &session, request.favor_state).await?;
        if !deferred.is_empty() {
            on_event(RunEvent::Deferred(&deferred));
        }
    }
    let (on_start, on_end) = project
        .config
        .dbt
        .as_ref()
        .map(|d| (d.on_run_start.clone(), d.on_run_end.clone()))
        .unwrap_or_default();
    if !on_start.is_empty() {
        create_schemas(&project, &session, &plan).await?;
    }
    let project = Arc::new(project);
    run_hooks(
        &project,
        &session,
        &on_start,
        None,
        "dbt_project.yml: on-run-start hook",
    )
    .await?;
    if !on_start.is_empty() {
        on_event(RunEvent::Hooks {
            which: "on-run-start",
            count: on_start.len(),
        });
    }
    let options = RunOptions {
        threads: request
            .threads
            .or_else(|| {
                project
                    .config
                    .dbt
                    .as_ref()
                    .and_then(|d| d.target_threads.get(&project.target).copied())
            })
            .unwrap_or(4),
        full_refresh: request.full_refresh,
    };
    let results = execute(
        Arc::clone(&project),
        Arc::clone(&session),
        plan,
        &options,
        &|result, index, total| {
            on_event(RunEvent::Node {
                result,
                index,
                total,
            })
        },
    )
    .await?;
    // on-run-end runs whatever happened to the nodes, as in dbt.
    let ended = run_hooks_with(
        &project,
        &session,
        &on_end,
        None,
        "dbt_project.yml: on-run-end hook",
        &end_of_run_globals(&project, &results),
    )
    .await;
    if ended.is_ok() && !on_end.is_empty() {
        on_event(RunEvent::Hooks {
            which: "on-run-end",
            count: on_end.len(),
        });
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    artifacts::write(
        &project,
        "run_results.json",
        &artifacts::run_results(&project, &results, elapsed_s),
    )?;
    ended?;
    Ok(RunOutcome {
        summary: RunSummary::of(&results),
        results,
        elapsed_s,
    })
}
