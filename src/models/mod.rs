//! SQL models: the dbt layer, rebuilt on DataFusion.
//!
//! ```text
//!   project   read models/**/*.sql, _sources.yml / schema.yml, tests/*.sql, lakeq.toml defaults
//!     │
//!   jinja     render with minijinja: parse pass (refs, sources, config) and compile pass
//!     │
//!   Project   configs merged, DAG checked for cycles, relations resolved, ephemerals inlined
//!     │
//!   graph     selection (-s / --exclude) and the run order
//!     │
//!   run       materialize views / tables / incremental models / dbt snapshots
//!             (`snapshot`) and run data tests, concurrently along the DAG,
//!             one lake snapshot per model
//!     │
//!   artifacts target/manifest.json and target/run_results.json
//! ```

pub mod artifacts;
pub mod docs;
pub mod graph;
pub mod introspect;
pub mod invoke;
pub mod jinja;
pub mod project;
pub mod pydatetime;
pub mod run;
pub mod seed;
pub mod snapshot;

use crate::config::dbt::{self, hook_entries};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::config::Config;
use jinja::{Captured, RenderInput, Resolver, render};
use project::{DataTestDef, ModelConfig, ProjectFiles, TestKind, folder_defaults};

/// How a model is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Materialized {
    /// A DuckLake view (its SQL runs on DuckDB too).
    View,
    /// A table, replaced atomically in one snapshot.
    Table,
    /// A table that only gets new rows (`append`) or replaced keys (`delete+insert`).
    Incremental,
    /// Not built: inlined as a CTE into the models that use it.
    Ephemeral,
    /// A dbt snapshot: a table keeping every version of its query's rows
    /// (see [`snapshot`]); only `{% snapshot %}` blocks and YAML snapshots are.
    Snapshot,
}

impl std::str::FromStr for Materialized {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "view" => Ok(Self::View),
            "table" => Ok(Self::Table),
            "incremental" => Ok(Self::Incremental),
            "ephemeral" => Ok(Self::Ephemeral),
            other => Err(format!(
                "unknown materialization '{other}' (view, table, incremental, ephemeral)"
            )),
        }
    }
}

impl std::fmt::Display for Materialized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::View => "view",
            Self::Table => "table",
            Self::Incremental => "incremental",
            Self::Ephemeral => "ephemeral",
            Self::Snapshot => "snapshot",
        })
    }
}

pub use crate::error::ModelError;

/// A model, parsed and configured.
#[derive(Debug, Clone, Serialize)]
pub struct Model {
    /// Name (the file stem).
    pub name: String,
    /// File relative to the project folder.
    pub path: String,
    /// Folder relative to the models folder.
    pub folder: String,
    /// Description from `schema.yml`.
    pub description: String,
    /// Documented columns.
    pub columns: Vec<project::ColumnDoc>,
    /// The types of its model-level `constraints:` (column ones are in `columns`).
    pub constraints: Vec<String>,
    /// Effective configuration.
    pub config: ModelConfig,
    /// Models this one refs (deduplicated, sorted).
    pub refs: Vec<String>,
    /// Sources this one reads.
    pub sources: Vec<(String, String)>,
    /// The template text.
    #[serde(skip)]
    pub raw_sql: String,
    /// `lake.schema.name` (or the CTE name of an ephemeral model).
    pub relation: String,
}

impl Model {
    /// The table or view name in the lake: the `alias`, else the model name.
    pub fn table(&self) -> &str {
        self.config.alias.as_deref().unwrap_or(&self.name)
    }

    /// dbt's resource type: `snapshot` for snapshots, else `model`.
    pub fn resource_type(&self) -> &'static str {
        if self.config.materialized == Materialized::Snapshot {
            "snapshot"
        } else {
            "model"
        }
    }
}

/// A seed: a CSV file loaded into a lake table by `lakeq seed`.
#[derive(Debug, Clone, Serialize)]
pub struct Seed {
    /// Name (the file stem).
    pub name: String,
    /// File relative to the project folder.
    pub path: String,
    /// Description from a `seeds:` YAML entry.
    pub description: String,
    /// Effective configuration.
    pub config: SeedConfig,
    /// `lake.schema.table`.
    pub relation: String,
    /// The CSV text.
    #[serde(skip)]
    pub text: String,
}

/// A seed's configuration (`dbt_project.yml` `seeds:`, then its YAML `config:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedConfig {
    /// Schema of the target lake.
    pub schema: String,
    /// Table name when it differs from the seed name.
    pub alias: Option<String>,
    /// Tags for selection.
    pub tags: Vec<String>,
    /// Whether the seed is loaded at all.
    pub enabled: bool,
    /// Column types that replace the inferred ones (`column_types: {id: bigint}`).
    pub column_types: BTreeMap<String, String>,
    /// Field delimiter (`,` by default).
    pub delimiter: u8,
    /// SQL templates run before the seed loads (dbt's `pre_hook`).
    pub pre_hook: Vec<String>,
    /// SQL templates run after the seed loads (dbt's `post_hook`).
    pub post_hook: Vec<String>,
}

/// A data test, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct DataTest {
    /// Its declaration.
    pub def: DataTestDef,
    /// Models the test reads.
    pub depends_on: Vec<String>,
}

/// A loaded, checked project for one target.
#[derive(Debug, Clone)]
pub struct Project {
    /// The files it came from.
    pub files: ProjectFiles,
    /// The configuration (`lakeq.toml` or the embedded default).
    pub config: Config,
    /// Target name.
    pub target: String,
    /// The lake the target writes.
    pub target_lake: String,
    /// Enabled models by name.
    pub models: BTreeMap<String, Model>,
    /// Data tests (of enabled models).
    pub tests: Vec<DataTest>,
    /// Enabled seeds by name.
    pub seeds: BTreeMap<String, Seed>,
    /// Unit tests (of enabled models).
    pub unit_tests: Vec<project::UnitTestDef>,
    /// Settings lakeq does not support and ignores, one line each.
    pub warnings: Vec<String>,
    /// Schema of the target lake where tests with `store_failures` keep their
    /// failing rows (dbt's `<target schema>_dbt_test__audit`).
    pub audit_schema: String,
    /// The manifest of an earlier run (`--state <folder>`), for the
    /// `state:modified` and `state:new` selectors.
    pub state: Option<serde_json::Value>,
    /// Nodes read from another environment's relation (`--defer`): name ->
    /// `lake.schema.name`.
    pub deferred: BTreeMap<String, String>,
    /// Name resolution for the compile pass.
    resolver: Arc<Resolver>,
}

/// Quote an identifier only when it needs it (the compiled SQL stays readable
/// and runs unchanged on DuckDB).
pub fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// `lake.schema.table`, quoted where needed.
pub fn relation(lake: &str, schema: &str, table: &str) -> String {
    format!("{}.{}.{}", ident(lake), ident(schema), ident(table))
}

/// The (lake, schema, name) of a relation text as [`relation`] writes it (or
/// dbt's quoted `"lake"."schema"."name"`); `None` unless all three are given.
pub fn split_relation(text: &str) -> Option<(String, String, String)> {
    match datafusion::common::TableReference::parse_str(text) {
        datafusion::common::TableReference::Full {
            catalog,
            schema,
            table,
        } => Some((catalog.to_string(), schema.to_string(), table.to_string())),
        _ => None,
    }
}

/// The CTE name an ephemeral model is inlined under.
fn ephemeral_cte(name: &str) -> String {
    format!("__lakeq_ephemeral_{name}")
}

impl Project {
    /// Load the project in `root` for `target` (default: `[project] target`),
    /// with `vars` overriding `[vars]`.
    pub fn load(
        root: &Path,
        config: &Config,
        target: Option<&str>,
        vars: BTreeMap<String, serde_json::Value>,
    ) -> Result<Self, ModelError> {
        let mut files = ProjectFiles::load(root, config)?;
        let target = target.unwrap_or(&config.project.target).to_string();
        let target_lake = config.target_lake(&target);
        let mut warnings = Vec::new();
        let mut warned = BTreeSet::new();
        let mut dbt = config.dbt.as_ref().map(|d| DbtContext {
            project: d,
            target_schema: d.target_schema(&target),
            schema_macro: None,
        });
        if let Some(d) = &dbt {
            for w in &d.project.warnings {
                dbt::warn_once(&mut warned, &mut warnings, w.clone());
            }
            // dbt sources without `database:` live in the target's database.
            for s in files.sources.values_mut() {
                if !s.explicit_lake {
                    s.lake = target_lake.clone();
                }
            }
        }
        let mut all_vars: BTreeMap<String, serde_json::Value> = config
            .vars
            .iter()
            .map(|(k, v)| {
                let json = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
                (k.clone(), json)
            })
            .collect();
        if let Some(d) = &dbt {
            all_vars.extend(d.project.vars.clone());
        }
        all_vars.extend(vars);
        let mut resolver = Resolver {
            relations: BTreeMap::new(),
            known_models: files
                .models
                .keys()
                .chain(files.seeds.keys())
                .cloned()
                .collect(),
            sources: files
                .sources
                .iter()
                .map(|(k, s)| (k.clone(), relation(&s.lake, &s.schema, &s.identifier)))
                .collect(),
            vars: all_vars,
            target: target.clone(),
            target_lake: target_lake.clone(),
            target_schema: dbt
                .as_ref()
                .map_or_else(|| "main".to_string(), |d| d.target_schema.clone()),
            macros: Arc::new(jinja::Macros::new(&files.package_macros, &files.macros)?),
            database: None,
            which: String::new(),
            graph: None,
        };
        // A project's own generate_schema_name macro replaces dbt's default naming.
        if let Some(d) = &mut dbt
            && resolver.macros.contains("generate_schema_name")
        {
            d.schema_macro = Some(Arc::new(resolver.clone()));
        }
        let mut seeds = BTreeMap::new();
        for file in files.seeds.values() {
            let seed_config = seed_config(dbt.as_ref(), &files.seed_prefix, file, &mut |w| {
                dbt::warn_once(&mut warned, &mut warnings, w)
            })?;
            if !seed_config.enabled {
                continue;
            }
            let table = seed_config
                .alias
                .clone()
                .unwrap_or_else(|| file.name.clone());
            seeds.insert(
                file.name.clone(),
                Seed {
                    name: file.name.clone(),
                    path: file.path.clone(),
                    description: file.description.clone(),
                    relation: relation(&target_lake, &seed_config.schema, &table),
                    config: seed_config,
                    text: file.raw_sql.clone(),
                },
            );
        }
        let parse_resolver = Arc::new(resolver.clone());

        // Parse pass: dependencies and config.
        let mut models = BTreeMap::new();
        for file in files.models.values() {
            let (_, captured) = render(
                &parse_resolver,
                &RenderInput {
                    name: &file.name,
                    path: &file.path,
                    source: &file.raw_sql,
                    parse: true,
                    ..Default::default()
                },
            )?;
            let model_config = merge_config(config, dbt.as_ref(), file, &captured, &mut |w| {
                dbt::warn_once(&mut warned, &mut warnings, w)
            })?;
            if !model_config.enabled {
                continue;
            }
            let refs: BTreeSet<String> = captured.refs.into_iter().collect();
            let sources: BTreeSet<(String, String)> = captured.sources.into_iter().collect();
            let relation_text = if model_config.materialized == Materialized::Ephemeral {
                ephemeral_cte(&file.name)
            } else {
                let table = model_config.alias.as_deref().unwrap_or(&file.name);
                relation(&target_lake, &model_config.schema, table)
            };
            models.insert(
                file.name.clone(),
                Model {
                    name: file.name.clone(),
                    path: file.path.clone(),
                    folder: file.folder.clone(),
                    description: file.description.clone(),
                    columns: file.columns.clone(),
                    constraints: file.constraints.clone(),
                    config: model_config,
                    refs: refs.into_iter().collect(),
                    sources: sources.into_iter().collect(),
                    raw_sql: file.raw_sql.clone(),
                    relation: relation_text,
                },
            );
        }
        for m in models.values() {
            check_contract_declaration(m)?;
            for r in &m.refs {
                if !models.contains_key(r) && !seeds.contains_key(r) {
                    return Err(ModelError::Config {
                        model: m.name.clone(),
                        path: m.path.clone(),
                        message: format!("refs model '{r}', which is disabled"),
                    });
                }
            }
        }
        let deps: BTreeMap<String, Vec<String>> = models
            .iter()
            .map(|(k, m)| (k.clone(), m.refs.clone()))
            .collect();
        graph::topological_order(&deps)?;

        resolver.relations = models
            .iter()
            .map(|(k, m)| (k.clone(), m.relation.clone()))
            .chain(seeds.iter().map(|(k, s)| (k.clone(), s.relation.clone())))
            .collect();
        resolver.known_models = models.keys().chain(seeds.keys()).cloned().collect();
        let mut resolver = Arc::new(resolver);

        let mut tests = Vec::new();
        for def in &files.tests {
            if let Some(m) = &def.model
                && !models.contains_key(m)
                && !seeds.contains_key(m)
            {
                continue; // the tested model is disabled
            }
            if let TestKind::Custom { test, .. } = &def.kind {
                let short = test.rsplit('.').next().unwrap_or(test);
                if !resolver.macros.contains(&format!("test_{short}")) {
                    return Err(ModelError::Project(format!(
                        "{}: unknown test '{test}' on {} (no {{% test {short} %}} macro in the project; \
                         lakeq knows unique, not_null, accepted_values, relationships)",
                        def.path,
                        def.model.as_deref().unwrap_or_default()
                    )));
                }
            }
            let mut depends_on: BTreeSet<String> = def.model.iter().cloned().collect();
            let template = match &def.kind {
                TestKind::Relationships { to, .. } => Some(format!("{{{{ {to} }}}}")),
                TestKind::Singular { raw_sql } => Some(raw_sql.clone()),
                // Arguments such as `to: ref('x')` make the test depend on x.
                TestKind::Custom { args, .. } => Some(
                    args.values()
                        .filter_map(|v| v.as_str().map(str::trim))
                        .filter(|t| t.starts_with("ref(") || t.starts_with("source("))
                        .map(|t| format!("{{{{ {t} }}}}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                _ => None,
            };
            if let Some(template) = template {
                let (_, captured) = render(
                    &resolver,
                    &RenderInput {
                        name: &def.name,
                        path: &def.path,
                        source: &template,
                        this: String::new(),
                        is_incremental: false,
                        parse: false,
                        ..Default::default()
                    },
                )?;
                depends_on.extend(captured.refs);
                if !captured.config.is_empty() {
                    // A singular test's {{ config(severity='warn', ...) }}.
                    let mut def = def.clone();
                    def.config
                        .apply(&captured.config)
                        .map_err(|e| ModelError::Project(format!("{}: {e}", def.path)))?;
                    tests.push(DataTest {
                        def,
                        depends_on: depends_on.into_iter().collect(),
                    });
                    continue;
                }
            }
            tests.push(DataTest {
                def: def.clone(),
                depends_on: depends_on.into_iter().collect(),
            });
        }
        let mut unit_tests = Vec::new();
        for u in &files.unit_tests {
            if !models.contains_key(&u.model) {
                if files.models.contains_key(&u.model) {
                    continue; // the model is disabled
                }
                return Err(ModelError::Project(format!(
                    "{}: unit test '{}' tests model '{}', which does not exist{}",
                    u.path,
                    u.name,
                    u.model,
                    jinja::did_you_mean(&u.model, &models.keys().cloned().collect::<Vec<_>>())
                )));
            }
            unit_tests.push(u.clone());
        }
        // dbt's `graph` for the compile pass: every node and source.
        let proj = config.project.name.as_str();
        let mut nodes = serde_json::Map::new();
        for m in models.values() {
            nodes.insert(
                node_id(proj, &models, &seeds, &m.name),
                node_json(proj, &target_lake, &models, &seeds, m),
            );
        }
        for s in seeds.values() {
            nodes.insert(
                node_id(proj, &models, &seeds, &s.name),
                serde_json::json!({
                    "unique_id": node_id(proj, &models, &seeds, &s.name),
                    "resource_type": "seed",
                    "name": s.name,
                    "alias": s.config.alias.as_deref().unwrap_or(&s.name),
                    "schema": s.config.schema,
                    "database": target_lake,
                    "package_name": proj,
                    "original_file_path": s.path,
                    "tags": s.config.tags,
                    "config": s.config,
                    "description": s.description,
                    "relation_name": s.relation,
                    "depends_on": {"nodes": [], "macros": []},
                }),
            );
        }
        for t in &tests {
            let id = format!("test.{proj}.{}", t.def.name);
            nodes.insert(
                id.clone(),
                serde_json::json!({
                    "unique_id": id,
                    "resource_type": "test",
                    "name": t.def.name,
                    "package_name": proj,
                    "original_file_path": t.def.path,
                    "column_name": t.def.column,
                    "attached_node": t.def.model.as_ref().map(|m| node_id(proj, &models, &seeds, m)),
                    "config": t.def.config,
                    "depends_on": {
                        "nodes": t.depends_on.iter().map(|d| node_id(proj, &models, &seeds, d)).collect::<Vec<_>>(),
                        "macros": [],
                    },
                }),
            );
        }
        let graph_sources: serde_json::Map<String, serde_json::Value> = files
            .sources
            .values()
            .map(|s| {
                let id = format!("source.{proj}.{}.{}", s.source, s.name);
                let value = serde_json::json!({
                    "unique_id": id,
                    "resource_type": "source",
                    "package_name": proj,
                    "source_name": s.source,
                    "name": s.name,
                    "identifier": s.identifier,
                    "schema": s.schema,
                    "database": s.lake,
                    "relation_name": relation(&s.lake, &s.schema, &s.identifier),
                });
                (id, value)
            })
            .collect();
        Arc::make_mut(&mut resolver).graph =
            Some(minijinja::Value::from_serialize(serde_json::json!({
                "nodes": nodes, "sources": graph_sources, "exposures": {}, "metrics": {},
                "groups": {}, "semantic_models": {}, "saved_queries": {},
            })));
        let audit_schema = match &dbt {
            Some(d) => d.schema(
                Some("dbt_test__audit"),
                "dbt_test__audit",
                "dbt_project.yml",
            )?,
            None => "main_dbt_test__audit".to_string(),
        };
        Ok(Self {
            audit_schema,
            files,
            config: config.clone(),
            target,
            target_lake,
            models,
            tests,
            seeds,
            unit_tests,
            warnings,
            state: None,
            deferred: BTreeMap::new(),
            resolver,
        })
    }

    /// The SQL of a unit test's model with its inputs replaced by `fixtures`
    /// (`ref:<name>` / `source:<source>.<table>` -> the query of its given rows).
    pub fn compile_unit_test(
        &self,
        test: &project::UnitTestDef,
        fixtures: &BTreeMap<String, String>,
    ) -> Result<String, ModelError> {
        let model = self.model(&test.model)?;
        let mut resolver = (*self.resolver).clone();
        let mut ctes = Vec::new();
        let keys = model
            .refs
            .iter()
            .map(|r| format!("ref:{r}"))
            .chain(model.sources.iter().map(|(s, t)| format!("source:{s}.{t}")));
        for (i, key) in keys.enumerate() {
            let cte = format!("__lakeq_given_{i}");
            let sql = fixtures.get(&key).ok_or_else(|| {
                ModelError::Project(format!(
                    "{}: unit test '{}': no rows for input {key}",
                    test.path, test.name
                ))
            })?;
            ctes.push(format!("{cte} AS (\n{sql}\n)"));
            if let Some(name) = key.strip_prefix("ref:") {
                resolver.relations.insert(name.to_string(), cte);
            } else if let Some((s, t)) = key.strip_prefix("source:").and_then(|k| k.split_once('.'))
            {
                resolver.sources.insert((s.to_string(), t.to_string()), cte);
            }
        }
        let (sql, _) = render(
            &Arc::new(resolver),
            &RenderInput {
                name: &model.name,
                path: &model.path,
                source: &model.raw_sql,
                this: model.relation.clone(),
                is_incremental: false,
                parse: false,
                ..Default::default()
            },
        )?;
        let sql = strip_terminator(&sql);
        Ok(if ctes.is_empty() {
            sql
        } else {
            with_ctes(&sql, &ctes.join(",\n"))
        })
    }

    /// The relation of a model, seed or source (`source:<s>.<t>`) a query reads.
    pub fn input_relation(&self, key: &str) -> Result<String, ModelError> {
        if let Some((s, t)) = key.strip_prefix("source:").and_then(|k| k.split_once('.')) {
            let src = self
                .files
                .sources
                .get(&(s.to_string(), t.to_string()))
                .ok_or_else(|| ModelError::Project(format!("unknown source '{s}.{t}'")))?;
            return Ok(relation(&src.lake, &src.schema, &src.identifier));
        }
        self.node_relation(key.strip_prefix("ref:").unwrap_or(key))
    }

    /// The relation a model or seed called `name` is built as.
    fn node_relation(&self, name: &str) -> Result<String, ModelError> {
        if let Some(s) = self.seeds.get(name) {
            return Ok(s.relation.clone());
        }
        Ok(self.model(name)?.relation.clone())
    }

    /// Whether `name` is a seed.
    pub fn is_seed(&self, name: &str) -> bool {
        self.seeds.contains_key(name)
    }

    /// The model called `name`, or an error listing the closest names.
    pub fn model(&self, name: &str) -> Result<&Model, ModelError> {
        self.models.get(name).ok_or_else(|| {
            let known: Vec<String> = self.models.keys().cloned().collect();
            ModelError::Selection(format!(
                "no model '{name}'{}",
                jinja::did_you_mean(name, &known)
            ))
        })
    }

    /// Lakes the project reads or writes: the target lake and every source lake.
    pub fn lakes(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .files
            .sources
            .values()
            .map(|s| s.lake.clone())
            .collect();
        out.insert(self.target_lake.clone());
        out
    }

    /// Resolve `ref('name')` to `relation` instead of the node's relation in
    /// this target (dbt's `--defer`, see [`run::defer_to_state`]).
    pub fn defer(&mut self, name: &str, relation: String) {
        Arc::make_mut(&mut self.resolver)
            .relations
            .insert(name.to_string(), relation.clone());
        self.deferred.insert(name.to_string(), relation);
    }

    /// Let templates query the lakes through `database` (`run_query`,
    /// `statement`, `adapter.get_columns_in_relation`, ...) when they compile;
    /// `which` is the command (dbt's `flags.WHICH`: `run`, `build`, `compile`, ...).
    pub fn set_database(&mut self, database: Arc<dyn introspect::Database>, which: &str) {
        let r = Arc::make_mut(&mut self.resolver);
        r.database = Some(database);
        r.which = which.to_string();
    }

    /// The SQL of a hook: `model`'s `pre_hook`/`post_hook` (with `this` its
    /// relation), or the project's `on-run-start`/`on-run-end` (`model` none).
    pub fn render_hook(&self, sql: &str, model: Option<&str>) -> Result<String, ModelError> {
        self.render_hook_with(sql, model, BTreeMap::new())
    }

    /// [`Project::render_hook`] with more names for the template (`results`
    /// and `schemas` in `on-run-end`).
    pub fn render_hook_with(
        &self,
        sql: &str,
        model: Option<&str>,
        globals: BTreeMap<String, serde_json::Value>,
    ) -> Result<String, ModelError> {
        let (name, path, this) = match model {
            Some(m) if self.is_seed(m) => {
                let seed = self
                    .seeds
                    .get(m)
                    .ok_or_else(|| ModelError::Selection(format!("no seed '{m}'")))?;
                (
                    seed.name.as_str(),
                    seed.path.as_str(),
                    seed.relation.clone(),
                )
            }
            Some(m) => {
                let model = self.model(m)?;
                (
                    model.name.as_str(),
                    model.path.as_str(),
                    relation(&self.target_lake, &model.config.schema, model.table()),
                )
            }
            None => ("hook", "dbt_project.yml", String::new()),
        };
        let (sql, _) = render(
            &self.resolver,
            &RenderInput {
                name,
                path,
                source: sql,
                this,
                globals,
                ..Default::default()
            },
        )?;
        Ok(sql)
    }

    /// The SQL a model runs (its `SELECT`), with ephemeral ancestors inlined as CTEs.
    pub fn compile(&self, name: &str, is_incremental: bool) -> Result<String, ModelError> {
        let model = self.model(name)?;
        let (sql, captured) = render(
            &self.resolver,
            &RenderInput {
                name: &model.name,
                path: &model.path,
                source: &model.raw_sql,
                this: relation(&self.target_lake, &model.config.schema, model.table()),
                is_incremental,
                parse: false,
                config: model_settings(&model.config),
                globals: BTreeMap::from([(
                    "model".to_string(),
                    node_json(
                        &self.config.project.name,
                        &self.target_lake,
                        &self.models,
                        &self.seeds,
                        model,
                    ),
                )]),
            },
        )?;
        Ok(self.inline_ephemerals(&sql, &captured))
    }

    /// The SQL of a data test: a query returning the failing rows.
    pub fn compile_test(&self, test: &DataTest) -> Result<String, ModelError> {
        self.compile_test_with_calc(test).map(|(sql, _)| sql)
    }

    /// [`Project::compile_test`] and the expression that counts its failures
    /// (dbt's `fail_calc`, set by `{{ config(fail_calc=...) }}` in the test;
    /// `count(*)` by default).
    pub fn compile_test_with_calc(&self, test: &DataTest) -> Result<(String, String), ModelError> {
        let mut fail_calc = test
            .def
            .config
            .fail_calc
            .clone()
            .unwrap_or_else(|| "count(*)".to_string());
        let def = &test.def;
        // The tested relation, filtered by the test's `where` as dbt does.
        let target = |m: &str| -> Result<String, ModelError> {
            let rel = if let Some(deferred) = self.deferred.get(m) {
                deferred.clone()
            } else if self.is_seed(m) {
                self.node_relation(m)?
            } else {
                let model = self.model(m)?;
                if model.config.materialized == Materialized::Ephemeral {
                    return Err(ModelError::Config {
                        model: m.to_string(),
                        path: def.path.clone(),
                        message: format!("test '{}' cannot run on an ephemeral model", def.name),
                    });
                }
                model.relation.clone()
            };
            Ok(match &def.config.where_clause {
                Some(w) => format!("(SELECT * FROM {rel} WHERE {w})"),
                None => rel,
            })
        };
        let col = def.column.as_deref().map(ident).unwrap_or_default();
        let sql = match &def.kind {
            TestKind::Unique => format!(
                "SELECT {col} AS unique_field, count(*) AS n_records FROM {} AS test_target WHERE {col} IS NOT NULL GROUP BY {col} HAVING count(*) > 1",
                target(def.model.as_deref().unwrap_or_default())?
            ),
            TestKind::NotNull => format!(
                "SELECT * FROM {} AS test_target WHERE {col} IS NULL",
                target(def.model.as_deref().unwrap_or_default())?
            ),
            TestKind::AcceptedValues { values } => format!(
                "SELECT {col} AS value_field, count(*) AS n_records FROM {} AS test_target WHERE {col} IS NOT NULL AND {col} NOT IN ({}) GROUP BY {col}",
                target(def.model.as_deref().unwrap_or_default())?,
                values.join(", ")
            ),
            TestKind::Relationships { to, field } => {
                let (parent, captured) = render(
                    &self.resolver,
                    &RenderInput {
                        name: &def.name,
                        path: &def.path,
                        source: &format!("{{{{ {to} }}}}"),
                        ..Default::default()
                    },
                )?;
                let sql = format!(
                    "SELECT child.{col} AS from_field FROM {} AS child LEFT JOIN {} AS parent ON child.{col} = parent.{f} WHERE child.{col} IS NOT NULL AND parent.{f} IS NULL",
                    target(def.model.as_deref().unwrap_or_default())?,
                    parent.trim(),
                    f = ident(field)
                );
                self.inline_ephemerals(&sql, &captured)
            }
            TestKind::Singular { raw_sql } => {
                let (sql, captured) = render(
                    &self.resolver,
                    &RenderInput {
                        name: &def.name,
                        path: &def.path,
                        source: raw_sql,
                        ..Default::default()
                    },
                )?;
                self.inline_ephemerals(&sql, &captured)
            }
            TestKind::Custom { test, args } => {
                let relation = target(def.model.as_deref().unwrap_or_default())?;
                let (sql, captured) = self.render_custom_test(def, test, args, &relation)?;
                if let Some(calc) = captured.config.get("fail_calc").and_then(|v| v.as_str()) {
                    fail_calc = calc.to_string();
                }
                self.inline_ephemerals(&sql, &captured)
            }
        };
        Ok((sql, fail_calc))
    }

    /// Render a custom generic test: call the project's `{% test name(...) %}` macro.
    fn render_custom_test(
        &self,
        def: &DataTestDef,
        test: &str,
        args: &BTreeMap<String, serde_json::Value>,
        relation: &str,
    ) -> Result<(String, Captured), ModelError> {
        let macro_name = format!("test_{}", test.rsplit('.').next().unwrap_or(test));
        let mut call_args: Vec<String> = vec![format!(
            "model=__lakeq_relation({})",
            jinja::quote_str(relation)
        )];
        if let Some(c) = &def.column {
            call_args.push(format!("column_name={}", jinja::quote_str(c)));
        }
        for (k, v) in args {
            // dbt renders test arguments: `to: ref('customers')` is the relation.
            let value = match v.as_str().map(str::trim) {
                Some(t) if t.starts_with("ref(") || t.starts_with("source(") => t.to_string(),
                _ => jinja::literal(v),
            };
            call_args.push(format!("{k}={value}"));
        }
        let source = format!("{{{{ {macro_name}({}) }}}}", call_args.join(", "));
        render(
            &self.resolver,
            &RenderInput {
                name: &def.name,
                path: &def.path,
                source: &source,
                // should_store_failures() reads it.
                config: BTreeMap::from([(
                    "store_failures".to_string(),
                    serde_json::Value::Bool(def.config.store_failures),
                )]),
                ..Default::default()
            },
        )
    }

    /// Prepend `WITH` clauses for the ephemeral models a query uses (transitively).
    fn inline_ephemerals(&self, sql: &str, captured: &Captured) -> String {
        let sql = strip_terminator(sql);
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        for r in &captured.refs {
            self.collect_ephemerals(r, &mut seen, &mut order);
        }
        if order.is_empty() {
            return sql;
        }
        let mut ctes = Vec::new();
        for name in order {
            // Each ephemeral is compiled on its own; its own ephemerals come first in `order`.
            let compiled = self
                .models
                .get(&name)
                .and_then(|m| {
                    render(
                        &self.resolver,
                        &RenderInput {
                            name: &m.name,
                            path: &m.path,
                            source: &m.raw_sql,
                            ..Default::default()
                        },
                    )
                    .ok()
                })
                .map(|(s, _)| strip_terminator(&s))
                .unwrap_or_default();
            ctes.push(format!("{} AS (\n{compiled}\n)", ephemeral_cte(&name)));
        }
        with_ctes(&sql, &ctes.join(",\n"))
    }

    fn collect_ephemerals(&self, name: &str, seen: &mut BTreeSet<String>, order: &mut Vec<String>) {
        let Some(m) = self.models.get(name) else {
            return;
        };
        if m.config.materialized != Materialized::Ephemeral || !seen.insert(name.to_string()) {
            return;
        }
        for r in &m.refs {
            self.collect_ephemerals(r, seen, order);
        }
        order.push(name.to_string());
    }
}

/// dbt's unique id of a model, snapshot or seed: `<resource type>.<project>.<name>`.
fn node_id(
    project: &str,
    models: &BTreeMap<String, Model>,
    seeds: &BTreeMap<String, Seed>,
    name: &str,
) -> String {
    let kind = match models.get(name) {
        Some(m) => m.resource_type(),
        None if seeds.contains_key(name) => "seed",
        None => "model",
    };
    format!("{kind}.{project}.{name}")
}

/// A model or snapshot as dbt's `model` and `graph.nodes` show it.
fn node_json(
    project: &str,
    lake: &str,
    models: &BTreeMap<String, Model>,
    seeds: &BTreeMap<String, Seed>,
    m: &Model,
) -> serde_json::Value {
    let mut fqn = vec![project.to_string()];
    fqn.extend(
        m.folder
            .split('/')
            .filter(|p| !p.is_empty())
            .map(str::to_string),
    );
    fqn.push(m.name.clone());
    let columns: serde_json::Map<String, serde_json::Value> = m
        .columns
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                serde_json::json!({
                    "name": c.name, "description": c.description, "data_type": c.data_type,
                }),
            )
        })
        .collect();
    serde_json::json!({
        "unique_id": node_id(project, models, seeds, &m.name),
        "resource_type": m.resource_type(),
        "name": m.name,
        "alias": m.table(),
        "schema": m.config.schema,
        "database": lake,
        "package_name": project,
        "original_file_path": m.path,
        "path": m.path.split_once('/').map_or(m.path.as_str(), |(_, p)| p),
        "fqn": fqn,
        "tags": m.config.tags,
        "config": m.config,
        "description": m.description,
        "columns": columns,
        "refs": m.refs.iter().map(|r| serde_json::json!({"name": r, "package": null, "version": null})).collect::<Vec<_>>(),
        "sources": m.sources.iter().map(|(s, t)| [s, t]).collect::<Vec<_>>(),
        "depends_on": {
            "nodes": m.refs.iter().map(|r| node_id(project, models, seeds, r))
                .chain(m.sources.iter().map(|(s, t)| format!("source.{project}.{s}.{t}")))
                .collect::<Vec<_>>(),
            "macros": [],
        },
        "raw_code": m.raw_sql,
        "relation_name": m.relation,
        "language": "sql",
    })
}

/// Drop trailing whitespace and `;` (a model is one query).
fn strip_terminator(sql: &str) -> String {
    sql.trim_end().trim_end_matches(';').trim_end().to_string()
}

/// Split leading whitespace and SQL comments from the statement.
/// `sql` with `ctes` added in front: merged into its own `WITH` if it has one.
fn with_ctes(sql: &str, ctes: &str) -> String {
    let (lead, body) = split_leading_comments(sql);
    // `get` rather than slicing: the model's text may start with multi-byte characters.
    if let (Some(head), Some(rest)) = (body.get(..4), body.get(4..))
        && head.eq_ignore_ascii_case("with")
        && rest.starts_with(|c: char| c.is_whitespace())
    {
        format!("{lead}WITH {ctes},\n{}", rest.trim_start())
    } else {
        format!("{lead}WITH {ctes}\n{body}")
    }
}

fn split_leading_comments(sql: &str) -> (&str, &str) {
    let mut rest = sql;
    loop {
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, next)| next);
        } else if let Some(after) = trimmed.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, next)| next);
        } else {
            rest = trimmed;
            break;
        }
    }
    // `rest` is a tail of `sql`.
    let lead = sql.strip_suffix(rest).unwrap_or_default();
    (lead, rest)
}

/// A dbt project and the schema of the target being built.
struct DbtContext<'a> {
    project: &'a dbt::DbtProject,
    target_schema: String,
    /// Set when the project defines `generate_schema_name`.
    schema_macro: Option<Arc<Resolver>>,
}

impl DbtContext<'_> {
    /// The schema of a model or seed with `custom` as its `schema` config:
    /// the project's `generate_schema_name` macro, else dbt's default.
    fn schema(&self, custom: Option<&str>, node: &str, path: &str) -> Result<String, ModelError> {
        let Some(resolver) = &self.schema_macro else {
            return Ok(dbt::generate_schema_name(&self.target_schema, custom));
        };
        let custom = custom.map_or_else(|| "none".to_string(), jinja::quote_str);
        let source = format!(
            "{{{{ generate_schema_name({custom}, {{'name': {}}}) }}}}",
            jinja::quote_str(node)
        );
        let (out, _) = render(
            resolver,
            &RenderInput {
                name: node,
                path,
                source: &source,
                ..Default::default()
            },
        )?;
        let schema = out.trim().to_string();
        if schema.is_empty() {
            return Err(ModelError::Config {
                model: node.to_string(),
                path: path.to_string(),
                message: "generate_schema_name returned an empty schema".into(),
            });
        }
        Ok(schema)
    }
}

/// What dbt checks when it parses a model with an enforced contract: it is not
/// ephemeral and every documented column has a `data_type`.
fn check_contract_declaration(m: &Model) -> Result<(), ModelError> {
    if !m.config.contract_enforced {
        return Ok(());
    }
    let bad = |message: String| ModelError::Config {
        model: m.name.clone(),
        path: m.path.clone(),
        message,
    };
    if m.config.materialized == Materialized::Ephemeral {
        return Err(bad(
            "an enforced contract needs a view, table or incremental model; ephemeral models have none".into(),
        ));
    }
    if m.config.materialized == Materialized::Incremental
        && !matches!(
            m.config.on_schema_change.as_str(),
            "append_new_columns" | "fail"
        )
    {
        return Err(bad(format!(
            "on_schema_change is '{}': an incremental model with an enforced contract must set \
             on_schema_change to 'append_new_columns' or 'fail' (as dbt requires)",
            m.config.on_schema_change
        )));
    }
    let untyped: Vec<&str> = m
        .columns
        .iter()
        .filter(|c| c.data_type.as_deref().is_none_or(|t| t.trim().is_empty()))
        .map(|c| c.name.as_str())
        .collect();
    if !untyped.is_empty() {
        return Err(bad(format!(
            "its contract is enforced, so every column of its YAML needs a data_type; \
             these have none: {}",
            untyped.join(", ")
        )));
    }
    Ok(())
}

/// Model config keys lakeq acts on.
const MODEL_KEYS: &[&str] = &[
    "materialized",
    "schema",
    "tags",
    "unique_key",
    "incremental_strategy",
    "on_schema_change",
    "enabled",
    "alias",
    "contract",
];

/// A model's resolved config as `config.get()` sees it.
fn model_settings(config: &ModelConfig) -> BTreeMap<String, serde_json::Value> {
    match serde_json::to_value(config) {
        Ok(serde_json::Value::Object(m)) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

/// Hooks in the order dbt runs them: pre-hooks with `transaction: false` before
/// the others, post-hooks with `transaction: false` after the others (each in
/// its declared order). lakeq runs every hook statement as its own snapshot,
/// so the option only orders them.
fn ordered_hooks(entries: Vec<(String, bool)>, pre: bool) -> Vec<String> {
    let (inside, outside): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(_, t)| *t);
    let (first, then) = if pre {
        (outside, inside)
    } else {
        (inside, outside)
    };
    first.into_iter().chain(then).map(|(sql, _)| sql).collect()
}

/// Folder defaults (`lakeq.toml` `[models.<folder>]`, or the `models:` tree of
/// `dbt_project.yml`), then `schema.yml` `config:`, then the model's `config(...)`.
/// In a dbt project an unsupported key is a warning (via `warn`); in a lakeq
/// project an error.
fn merge_config(
    config: &Config,
    dbt: Option<&DbtContext<'_>>,
    file: &project::ModelFile,
    captured: &Captured,
    warn: &mut dyn FnMut(String),
) -> Result<ModelConfig, ModelError> {
    let folder = folder_defaults(config, &file.folder);
    let mut settings: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut tree_tags = Vec::new();
    if let Some(d) = dbt {
        let folders: Vec<&str> = file.folder.split('/').filter(|p| !p.is_empty()).collect();
        // Snapshots take their defaults from the `snapshots:` tree, models from `models:`.
        let tree = if file.snapshot {
            &d.project.snapshots
        } else {
            &d.project.models
        };
        settings = dbt::tree_config(tree, &d.project.name, &folders, &file.name);
        if let Some(serde_json::Value::Array(tags)) = settings.remove("tags") {
            tree_tags = tags
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect();
        }
    }
    let bad = |message: String| ModelError::Config {
        model: file.name.clone(),
        path: file.path.clone(),
        message,
    };
    // Hooks add up over the levels (dbt_project.yml, schema.yml, config()), as in dbt.
    let (mut pre_hook, mut post_hook) = (Vec::new(), Vec::new());
    let mut take_hooks = |settings: &mut BTreeMap<String, serde_json::Value>| {
        for (keys, out) in [
            (["pre_hook", "pre-hook"], &mut pre_hook),
            (["post_hook", "post-hook"], &mut post_hook),
        ] {
            for key in keys {
                if let Some(v) = settings.remove(key) {
                    out.extend(hook_entries(&v).map_err(|e| bad(format!("config {key}: {e}")))?);
                }
            }
        }
        Ok::<(), ModelError>(())
    };
    take_hooks(&mut settings)?;
    let mut yaml_settings = BTreeMap::new();
    for (k, v) in &file.yaml_config {
        let json = serde_json::to_value(v).map_err(|e| bad(format!("config {k}: {e}")))?;
        yaml_settings.insert(k.clone(), json);
    }
    take_hooks(&mut yaml_settings)?;
    let mut own = captured.config.clone();
    take_hooks(&mut own)?;
    settings.extend(yaml_settings);
    settings.extend(own);
    let text = |key: &str| -> Result<Option<String>, ModelError> {
        match settings.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad(format!("config {key} must be text, not {other}"))),
        }
    };
    let list = |key: &str| -> Result<Vec<String>, ModelError> {
        match settings.get(key) {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(serde_json::Value::String(s)) => Ok(vec![s.clone()]),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("config {key} must be a list of text")))
                })
                .collect(),
            Some(other) => Err(bad(format!(
                "config {key} must be text or a list, not {other}"
            ))),
        }
    };
    let materialized = if file.snapshot {
        Materialized::Snapshot
    } else {
        text("materialized")?
            .or(folder.materialized.clone())
            .unwrap_or_else(|| "view".into())
            .parse::<Materialized>()
            .map_err(bad)?
    };
    let target_schema = if file.snapshot {
        text("target_schema")?
    } else {
        None
    };
    let schema = match dbt {
        // A snapshot's legacy `target_schema` is used as it is (dbt >= 1.9).
        Some(_) if target_schema.is_some() => target_schema.unwrap_or_default(),
        // dbt's generate_schema_name: the target schema, or <target schema>_<custom>.
        Some(d) => d.schema(text("schema")?.as_deref(), &file.name, &file.path)?,
        None => {
            // Default schema: the model's top folder (models/staging/x.sql -> staging), else main.
            let default_schema = file
                .folder
                .split('/')
                .find(|p| !p.is_empty())
                .unwrap_or("main")
                .to_string();
            text("schema")?
                .or(folder.schema.clone())
                .unwrap_or(default_schema)
        }
    };
    let alias = text("alias")?;
    let mut tags = folder.tags.clone();
    tags.extend(tree_tags);
    for t in list("tags")? {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let unique_key = list("unique_key")?;
    let mut incremental_strategy = text("incremental_strategy")?.unwrap_or_else(|| {
        if unique_key.is_empty() {
            "append".into()
        } else {
            "delete+insert".into()
        }
    });
    if !matches!(
        incremental_strategy.as_str(),
        "append" | "delete+insert" | "merge"
    ) {
        return Err(bad(format!(
            "unknown incremental_strategy '{incremental_strategy}' (append, delete+insert, merge)"
        )));
    }
    if incremental_strategy == "merge" {
        // dbt-duckdb's default merge (update matched rows by name, insert the others) replaces
        // the rows of each key: delete+insert on the key, one snapshot; no key: append.
        if let Some(key) = MERGE_KEYS.iter().find(|k| settings.contains_key(**k)) {
            return Err(bad(format!(
                "config '{key}' of the merge strategy is not supported by lakeq"
            )));
        }
        incremental_strategy = if unique_key.is_empty() {
            "append".into()
        } else {
            "delete+insert".into()
        };
    }
    let on_schema_change = text("on_schema_change")?.unwrap_or_else(|| "ignore".into());
    if !matches!(
        on_schema_change.as_str(),
        "ignore" | "fail" | "append_new_columns" | "sync_all_columns"
    ) {
        return Err(bad(format!(
            "unknown on_schema_change '{on_schema_change}' (ignore, fail, append_new_columns, sync_all_columns)"
        )));
    }
    if incremental_strategy == "delete+insert" && unique_key.is_empty() {
        return Err(bad(
            "incremental_strategy 'delete+insert' needs a unique_key".into(),
        ));
    }
    let enabled = match settings.get("enabled") {
        Some(serde_json::Value::Bool(b)) => *b,
        None => folder.enabled.unwrap_or(true),
        Some(other) => {
            return Err(bad(format!(
                "config enabled must be true or false, not {other}"
            )));
        }
    };
    let contract_enforced = match settings.get("contract") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Object(c)) => {
            for k in c.keys() {
                if !matches!(k.as_str(), "enforced" | "alias_types") {
                    warn(format!(
                        "model config 'contract.{k}' is not supported by lakeq and is ignored"
                    ));
                }
            }
            match c.get("enforced") {
                None | Some(serde_json::Value::Null) => false,
                Some(serde_json::Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(bad(format!(
                        "config contract.enforced must be true or false, not {other}"
                    )));
                }
            }
        }
        Some(other) => {
            return Err(bad(format!(
                "config contract must be a map ({{enforced: true}}), not {other}"
            )));
        }
    };
    let snapshot = if file.snapshot {
        Some(snapshot::SnapshotConfig::from_settings(&settings, &unique_key).map_err(bad)?)
    } else {
        None
    };
    for key in settings.keys() {
        let snapshot_key = file.snapshot && snapshot::SNAPSHOT_KEYS.contains(&key.as_str());
        if !MODEL_KEYS.contains(&key.as_str()) && !snapshot_key {
            if dbt.is_some() {
                let kind = if file.snapshot { "snapshot" } else { "model" };
                warn(format!(
                    "{kind} config '{key}' is not supported by lakeq and is ignored"
                ));
            } else {
                return Err(bad(format!(
                    "unknown config '{key}' ({})",
                    MODEL_KEYS.join(", ")
                )));
            }
        }
    }
    Ok(ModelConfig {
        pre_hook: ordered_hooks(pre_hook, true),
        post_hook: ordered_hooks(post_hook, false),
        materialized,
        schema,
        tags,
        unique_key,
        incremental_strategy,
        on_schema_change,
        enabled,
        alias,
        contract_enforced,
        snapshot,
    })
}

/// Settings of dbt-duckdb's merge strategy that change which columns or rows it
/// updates; lakeq's merge (delete+insert on the key) cannot honour them.
const MERGE_KEYS: &[&str] = &[
    "merge_update_columns",
    "merge_exclude_columns",
    "merge_update_condition",
    "merge_insert_condition",
    "merge_update_set_expressions",
    "merge_clauses",
    "merge_on_using_columns",
    "incremental_predicates",
];

/// Seed config keys lakeq acts on (`quote_columns` has no effect: column names
/// are always kept exactly as the header spells them).
const SEED_KEYS: &[&str] = &[
    "schema",
    "alias",
    "tags",
    "enabled",
    "column_types",
    "delimiter",
    "quote_columns",
];

/// A seed's configuration: the `seeds:` tree of `dbt_project.yml`, then its YAML `config:`.
fn seed_config(
    dbt: Option<&DbtContext<'_>>,
    seed_prefix: &str,
    file: &project::ModelFile,
    warn: &mut dyn FnMut(String),
) -> Result<SeedConfig, ModelError> {
    let folder = file
        .path
        .strip_prefix(seed_prefix)
        .unwrap_or(&file.path)
        .trim_start_matches('/')
        .rsplit_once('/')
        .map(|(f, _)| f.to_string())
        .unwrap_or_default();
    let mut settings = match dbt {
        Some(d) => {
            let folders: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
            dbt::tree_config(&d.project.seeds, &d.project.name, &folders, &file.name)
        }
        None => BTreeMap::new(),
    };
    let bad = |message: String| ModelError::Config {
        model: file.name.clone(),
        path: file.path.clone(),
        message,
    };
    // Hooks add up over the levels (dbt_project.yml, then the YAML), as for models.
    let (mut pre_hook, mut post_hook) = (Vec::new(), Vec::new());
    let mut take_hooks = |settings: &mut BTreeMap<String, serde_json::Value>| {
        for (keys, out) in [
            (["pre_hook", "pre-hook"], &mut pre_hook),
            (["post_hook", "post-hook"], &mut post_hook),
        ] {
            for key in keys {
                if let Some(v) = settings.remove(key) {
                    out.extend(hook_entries(&v).map_err(|e| bad(format!("config {key}: {e}")))?);
                }
            }
        }
        Ok::<(), ModelError>(())
    };
    take_hooks(&mut settings)?;
    let mut yaml_settings = BTreeMap::new();
    for (k, v) in &file.yaml_config {
        let json = serde_json::to_value(v).map_err(|e| bad(format!("config {k}: {e}")))?;
        yaml_settings.insert(k.clone(), json);
    }
    take_hooks(&mut yaml_settings)?;
    for (k, json) in yaml_settings {
        if k == "column_types"
            && let (Some(serde_json::Value::Object(existing)), serde_json::Value::Object(new)) =
                (settings.get_mut(&k), &json)
        {
            existing.extend(new.clone());
            continue;
        }
        settings.insert(k, json);
    }
    let text = |key: &str| -> Result<Option<String>, ModelError> {
        match settings.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad(format!("config {key} must be text, not {other}"))),
        }
    };
    let schema = match dbt {
        Some(d) => d.schema(text("schema")?.as_deref(), &file.name, &file.path)?,
        None => text("schema")?.unwrap_or_else(|| "main".into()),
    };
    let tags = match settings.get("tags") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(other) => return Err(bad(format!("config tags must be a list, not {other}"))),
    };
    let enabled = match settings.get("enabled") {
        None => true,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(other) => {
            return Err(bad(format!(
                "config enabled must be true or false, not {other}"
            )));
        }
    };
    let mut column_types = BTreeMap::new();
    match settings.get("column_types") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(o)) => {
            for (k, v) in o {
                let t = v
                    .as_str()
                    .ok_or_else(|| bad(format!("column_types.{k} must be a SQL type name")))?;
                column_types.insert(k.clone(), t.to_string());
            }
        }
        Some(other) => {
            return Err(bad(format!(
                "config column_types must be a map, not {other}"
            )));
        }
    }
    let delimiter = match text("delimiter")? {
        None => b',',
        Some(d) if d.len() == 1 => d.as_bytes().first().copied().unwrap_or(b','),
        Some(d) if d == "\\t" => b'\t',
        Some(d) => {
            return Err(bad(format!(
                "config delimiter must be one single-byte character, not '{d}'"
            )));
        }
    };
    for key in settings.keys() {
        if !SEED_KEYS.contains(&key.as_str()) {
            warn(format!(
                "seed config '{key}' is not supported by lakeq and is ignored"
            ));
        }
    }
    Ok(SeedConfig {
        schema,
        alias: text("alias")?,
        tags,
        enabled,
        column_types,
        delimiter,
        pre_hook: ordered_hooks(pre_hook, true),
        post_hook: ordered_hooks(post_hook, false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_comments_are_kept_before_injected_ctes() {
        let (lead, body) = split_leading_comments("-- a\n/* b */ with x as (select 1) select 1");
        assert_eq!(lead, "-- a\n/* b */ ");
        assert!(body.starts_with("with x"));
    }

    #[test]
    fn ctes_merge_without_slicing_characters() {
        assert_eq!(
            with_ctes("with a as (select 1) select * from a", "e AS (select 2)"),
            "WITH e AS (select 2),\na as (select 1) select * from a"
        );
        assert_eq!(with_ctes("select 1", "e AS (x)"), "WITH e AS (x)\nselect 1");
        // Multi-byte text where "with" would be: no panic.
        for sql in ["aéé select 1", "ééé", "é", "wit\u{e9}x"] {
            assert!(with_ctes(sql, "e AS (x)").starts_with("WITH e AS (x)\n"));
        }
    }

    #[test]
    fn identifiers_are_quoted_only_when_needed() {
        assert_eq!(ident("stg_users"), "stg_users");
        assert_eq!(ident("Users"), "\"Users\"");
        assert_eq!(
            relation("dev_analytics", "staging", "a b"),
            "dev_analytics.staging.\"a b\""
        );
    }
}
