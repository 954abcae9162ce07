//! `lakeq transform | test | build | seed | compile | ls`: the model project commands.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use lakeq::config::Config;
use lakeq::error::{Error, Result};
use lakeq::models::graph::select_nodes_with_selector;
use lakeq::models::introspect::SessionDatabase;
use lakeq::models::invoke::{RunEvent, RunRequest, RunSummary, run_project};
use lakeq::models::run::{NodeResult, RunKind, Status, defer_to_state, open_session_with};
use lakeq::models::{Project, artifacts};

/// Which project, target and models.
#[derive(Debug, Clone, clap::Args)]
pub struct ProjectArgs {
    /// Project folder (holding `lakeq.toml` and `models/`).
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    /// Target (`dev` writes `dev_analytics`, `prod` writes `prod_analytics`).
    #[arg(long)]
    pub target: Option<String>,
    /// Models to select: `name`, `+name` (with ancestors), `name+` (with
    /// descendants), `tag:t`, `path:models/marts`, a folder (`staging`, `marts.finance`);
    /// several after one `-s`, repeated, or space-separated for a union.
    #[arg(short = 's', long = "select", num_args = 1..)]
    pub select: Vec<String>,
    /// Models to leave out (same syntax as --select).
    #[arg(long, num_args = 1..)]
    pub exclude: Vec<String>,
    /// A selector of the project's `selectors.yml` (dbt's YAML selectors);
    /// --select and --exclude are then ignored, as in dbt.
    #[arg(long)]
    pub selector: Option<String>,
    /// Variables for `var()`, as a YAML or JSON map: `--vars '{start: 2026-01-01}'`.
    #[arg(long)]
    pub vars: Option<String>,
    /// A folder holding the `manifest.json` of an earlier run (its `target/`, copied), for
    /// `-s state:modified` / `state:new` (dbt's `--state`).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Read the models, seeds and snapshots that are not selected and not built in this
    /// target from their relations in the `--state` manifest (dbt's `--defer`).
    #[arg(long, requires = "state")]
    pub defer: bool,
    /// With --defer: read every unselected node from the `--state` manifest, built here
    /// or not (dbt's `--favor-state`).
    #[arg(long, requires = "defer")]
    pub favor_state: bool,
}

impl ProjectArgs {
    /// With `--defer`: point the refs to unselected nodes at the `--state`
    /// manifest's relations (see [`defer_to_state`]) and say which.
    async fn defer(
        &self,
        project: &mut Project,
        selected: &std::collections::BTreeSet<String>,
        session: &lakeq::Session,
    ) -> Result<()> {
        if !self.defer {
            return Ok(());
        }
        let deferred = defer_to_state(project, selected, session, self.favor_state).await?;
        if !deferred.is_empty() {
            let list: Vec<String> = deferred
                .iter()
                .map(|(name, relation)| format!("{name} ({relation})"))
                .collect();
            println!("  deferred to --state: {}", list.join(", "));
        }
        Ok(())
    }
}

/// Arguments of the commands that run models or tests.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Project, target and selection.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Models run at once (default: the dbt profile's `threads:`, else 4).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Rebuild incremental models from scratch.
    #[arg(long)]
    pub full_refresh: bool,
    /// Run the models' queries on these `lakeq worker`s (`host:port,host:port`), which also
    /// write the models' data files; each model's commit is made here. Default: `[cluster] workers` of
    /// lakeq.toml, else none (this process).
    #[arg(long, value_delimiter = ',')]
    pub workers: Vec<String>,
    /// Bytes of Parquet per distributed scan task. Default: `[cluster] bytes_per_task`.
    #[arg(long)]
    pub bytes_per_task: Option<usize>,
}

impl RunArgs {
    /// The session options of a model run: the memory pool and the cluster.
    fn session_options(&self, config: &Config) -> Result<lakeq::SessionOptions> {
        Ok(
            super::run_session_options(config)?.with_cluster(super::cluster_options(
                config,
                &self.workers,
                self.bytes_per_task,
            )?),
        )
    }
}

impl ProjectArgs {
    /// Load the project.
    pub fn load(&self) -> Result<Project> {
        let config = Config::load(&self.project)?;
        let vars = match &self.vars {
            None => BTreeMap::new(),
            Some(text) => serde_yaml_ng::from_str::<BTreeMap<String, serde_json::Value>>(text)
                .map_err(|e| Error::InvalidLocation {
                    location: "--vars".into(),
                    reason: format!("expected a YAML or JSON map: {e}"),
                })?,
        };
        let mut project = Project::load(&self.project, &config, self.target.as_deref(), vars)?;
        if let Some(dir) = &self.state {
            let path = dir.join("manifest.json");
            let text = std::fs::read_to_string(&path).map_err(|e| Error::InvalidLocation {
                location: format!("--state {}", dir.display()),
                reason: format!("cannot read {}: {e}", path.display()),
            })?;
            project.state =
                Some(
                    serde_json::from_str(&text).map_err(|e| Error::InvalidLocation {
                        location: format!("--state {}", dir.display()),
                        reason: format!("{} is not a manifest: {e}", path.display()),
                    })?,
                );
        }
        for w in &project.warnings {
            eprintln!("warning: {w}");
        }
        if project.files.bundled {
            eprintln!(
                "note: no {}/ folder in {}: using lakeq's bundled sample project",
                config.project.models.trim_end_matches('/'),
                self.project.display()
            );
        }
        Ok(project)
    }
}

fn print_result(r: &NodeResult, index: usize, total: usize) {
    let status = match r.status {
        Status::Success => "OK",
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Warn => "WARN",
        Status::Error => "ERROR",
        Status::Skipped => "SKIP",
    };
    let kind = match (r.resource_type, r.materialized) {
        ("model", Some(m)) => m.to_string(),
        (t, _) => t.to_string(),
    };
    let what = r.relation.clone().unwrap_or_else(|| r.name.clone());
    let rows = r
        .rows_affected
        .map(|n| format!(" {n} rows"))
        .unwrap_or_default();
    println!(
        "  {index:>3}/{total:<3} {status:<5} {kind:<11} {what}{rows} ({:.2}s)",
        r.execution_time
    );
    if let Some(m) = &r.message
        && (!r.status.ok() || r.status == Status::Warn)
    {
        for line in m.lines() {
            println!("            {line}");
        }
    }
}

/// Run models and/or tests of a loaded project ([`run_project`]), printing each
/// node as it finishes; writes the artifacts and returns the summary (an error
/// only when the run could not start).
pub async fn run_nodes(project: Project, args: &RunArgs, kind: RunKind) -> Result<RunSummary> {
    let request = RunRequest {
        kind,
        select: args.project.select.clone(),
        exclude: args.project.exclude.clone(),
        selector: args.project.selector.clone(),
        threads: args.threads,
        full_refresh: args.full_refresh,
        defer: args.project.defer,
        favor_state: args.project.favor_state,
        session: args.session_options(&project.config)?,
    };
    let outcome = run_project(project, &request, &print_event).await?;
    if outcome.results.is_empty() {
        return Ok(outcome.summary);
    }
    let s = outcome.summary;
    let seeds = if s.seeds_ok + s.seeds_failed > 0 {
        format!("{} seeds loaded, {} failed; ", s.seeds_ok, s.seeds_failed)
    } else {
        String::new()
    };
    let snapshots = if s.snapshots_ok + s.snapshots_failed > 0 {
        format!(
            "{} snapshots taken, {} failed; ",
            s.snapshots_ok, s.snapshots_failed
        )
    } else {
        String::new()
    };
    let warned = if s.tests_warned > 0 {
        format!(", {} warned", s.tests_warned)
    } else {
        String::new()
    };
    println!(
        "done in {:.2}s: {seeds}{snapshots}{} models built, {} failed; {} tests passed, {} failed{warned}; {} skipped",
        outcome.elapsed_s, s.models_ok, s.models_failed, s.tests_passed, s.tests_failed, s.skipped
    );
    Ok(s)
}

/// Print what a run reports, as the commands always have.
fn print_event(event: RunEvent<'_>) {
    match event {
        RunEvent::Warning(w) => eprintln!("warning: {w}"),
        RunEvent::NothingSelected => {
            println!("Nothing to do: no model, seed, snapshot or test is selected")
        }
        RunEvent::Deferred(list) => {
            let list: Vec<String> = list
                .iter()
                .map(|(name, relation)| format!("{name} ({relation})"))
                .collect();
            println!("  deferred to --state: {}", list.join(", "));
        }
        RunEvent::Hooks { which, count } => println!("  {which}: {count} hooks run"),
        RunEvent::Node {
            result,
            index,
            total,
        } => print_result(result, index, total),
    }
}

/// Turn a run's summary into the command's exit status.
pub fn exit_status(s: RunSummary) -> Result<()> {
    if s.ok() {
        Ok(())
    } else {
        Err(Error::NodeFailed(format!(
            "{} seeds failed, {} snapshots failed, {} models failed, {} tests failed, {} nodes skipped (details above and in target/run_results.json)",
            s.seeds_failed, s.snapshots_failed, s.models_failed, s.tests_failed, s.skipped
        )))
    }
}

/// `lakeq transform`, `lakeq test`, `lakeq build`.
pub async fn run(args: RunArgs, kind: RunKind) -> Result<()> {
    let project = args.project.load()?;
    exit_status(run_nodes(project, &args, kind).await?)
}

/// `lakeq compile`: print the compiled SQL of the selected models.
pub async fn compile(args: ProjectArgs) -> Result<()> {
    let mut project = args.load()?;
    // Macros that ask the lake (dbt_utils.star, get_column_values, ...) see it, as in `dbt compile`.
    let session =
        Arc::new(open_session_with(&project, &super::run_session_options(&project.config)?).await?);
    project.set_database(
        Arc::new(SessionDatabase::new(Arc::clone(&session))),
        "compile",
    );
    let (selected, warnings) = select_nodes_with_selector(
        &project,
        args.selector.as_deref(),
        &args.select,
        &args.exclude,
    )?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    args.defer(&mut project, &selected, &session).await?;
    artifacts::write(&project, "manifest.json", &artifacts::manifest(&project))?;
    for name in selected.iter().filter(|n| !project.is_seed(n)) {
        let sql = project.compile(name, false)?;
        println!("-- {} ({})\n{sql};\n", name, project.model(name)?.path);
    }
    Ok(())
}

/// `lakeq ls`: list the selected models (name, materialization, relation, tags).
pub async fn ls(args: ProjectArgs) -> Result<()> {
    let project = args.load()?;
    let (selected, warnings) = select_nodes_with_selector(
        &project,
        args.selector.as_deref(),
        &args.select,
        &args.exclude,
    )?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    for name in &selected {
        if let Some(seed) = project.seeds.get(name) {
            println!("{:<32} {:<11} {}", seed.name, "seed", seed.relation);
            continue;
        }
        let m = project.model(name)?;
        let tags = if m.config.tags.is_empty() {
            String::new()
        } else {
            format!("  tags: {}", m.config.tags.join(", "))
        };
        println!(
            "{:<32} {:<11} {}{tags}",
            m.name,
            m.config.materialized.to_string(),
            m.relation
        );
    }
    for t in &project.tests {
        if t.depends_on.iter().any(|m| selected.contains(m))
            || (t.depends_on.is_empty() && project.models.keys().all(|m| selected.contains(m)))
        {
            println!("{:<32} {:<11} {}", t.def.name, "test", t.def.path);
        }
    }
    Ok(())
}
