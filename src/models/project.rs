//! Loading a model project from disk: the `models/**/*.sql` files, the YAML
//! files beside them (`_sources.yml`, `schema.yml`: sources, column docs and
//! data tests), singular tests (`tests/*.sql`) and the folder defaults of
//! `lakeq.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml_ng::Value as Yaml;

use super::{Materialized, ModelError};
use crate::config::Config;

/// A source table declared in a `_sources.yml` (`{{ source('saas', 'users') }}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceTable {
    /// Source name (`saas`).
    pub source: String,
    /// Table name within the source (`users`).
    pub name: String,
    /// The lake the source lives in (YAML `database`, default `raw`).
    pub lake: String,
    /// Schema in that lake (YAML `schema`, default the source name).
    pub schema: String,
    /// Table name in that schema (YAML `identifier`, default `name`).
    pub identifier: String,
    /// Whether the YAML names the lake (`database:`); a dbt project's
    /// sources default to the target's lake, a lakeq project's to `raw`.
    #[serde(skip)]
    pub explicit_lake: bool,
}

/// A model's effective configuration: folder defaults, then YAML, then the
/// model's own `{{ config(...) }}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelConfig {
    /// How the model is built.
    pub materialized: Materialized,
    /// Schema of the target lake.
    pub schema: String,
    /// Tags for selection (`-s tag:daily`).
    pub tags: Vec<String>,
    /// Key columns of `incremental` models (for `delete+insert`).
    pub unique_key: Vec<String>,
    /// `append` or `delete+insert` (incremental only).
    pub incremental_strategy: String,
    /// What an incremental run does when the query's columns differ from the
    /// table's: `ignore`, `fail`, `append_new_columns`, `sync_all_columns`.
    pub on_schema_change: String,
    /// Whether the model is built at all.
    pub enabled: bool,
    /// Table or view name when it differs from the model name (dbt's `alias`).
    pub alias: Option<String>,
    /// SQL templates run before the model is built (dbt's `pre_hook`).
    pub pre_hook: Vec<String>,
    /// SQL templates run after the model is built (dbt's `post_hook`).
    pub post_hook: Vec<String>,
    /// dbt's `contract: {enforced: true}`: the query's columns must match the
    /// declared `columns:` (names and `data_type`s) before anything is written.
    pub contract_enforced: bool,
    /// How a snapshot tracks its rows (snapshots only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<super::snapshot::SnapshotConfig>,
}

/// A documented column of a model (`schema.yml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ColumnDoc {
    /// Column name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its declared type (`data_type:`), checked when the model's contract is enforced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    /// The `type` of each of its `constraints:` (`not_null`, `unique`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
}

/// A generic data test from a `schema.yml` (`unique`, `not_null`,
/// `accepted_values`, `relationships`) or a singular test file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum TestKind {
    /// No two rows share a (non-null) value of `column`.
    Unique,
    /// `column` is never NULL.
    NotNull,
    /// Every non-null value of `column` is one of `values`.
    AcceptedValues {
        /// The allowed values (as SQL literals).
        values: Vec<String>,
    },
    /// Every non-null value of `column` exists in `to`.`field`.
    Relationships {
        /// The referenced model (`ref('x')`) or source (`source('s','t')`), as Jinja.
        to: String,
        /// The referenced column.
        field: String,
    },
    /// A SQL file (`tests/*.sql`) returning failing rows.
    Singular {
        /// Its raw (uncompiled) SQL.
        raw_sql: String,
    },
    /// A custom generic test: a `{% test name(model, ...) %}` macro of the project.
    Custom {
        /// The test's name as written (`is_positive`, `dbt_utils.expression_is_true`).
        test: String,
        /// Its arguments (`column_name` and `model` are added when it runs).
        args: BTreeMap<String, serde_json::Value>,
    },
}

/// How a test's failing rows turn into its status (dbt's test configs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TestConfig {
    /// `error` (a failure fails the run) or `warn` (it is reported only).
    pub severity: String,
    /// A filter on the tested relation (`where: "status != 'x'"`).
    pub where_clause: Option<String>,
    /// At most this many failing rows are counted.
    pub limit: Option<u64>,
    /// When the failure count is an error (`>0`, `>=10`, `!=0`, ...).
    pub error_if: String,
    /// When the failure count is a warning.
    pub warn_if: String,
    /// How failures are counted from the failing rows (dbt's `fail_calc`;
    /// `None`: `count(*)`).
    pub fail_calc: Option<String>,
    /// Whether the failing rows are kept (dbt's `store_failures`, or
    /// `store_failures_as` `table` / `view`, which wins over it as in dbt).
    pub store_failures: bool,
    /// dbt's `store_failures_as`: `table`, `view` or `ephemeral` (not stored).
    pub store_failures_as: Option<String>,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self {
            severity: "error".into(),
            where_clause: None,
            limit: None,
            error_if: "!=0".into(),
            warn_if: "!=0".into(),
            fail_calc: None,
            store_failures: false,
            store_failures_as: None,
        }
    }
}

impl TestConfig {
    /// Read `severity`, `where`, `limit`, `error_if`, `warn_if` from config settings.
    pub fn from_settings(settings: &BTreeMap<String, serde_json::Value>) -> Result<Self, String> {
        let mut c = Self::default();
        c.apply(settings)?;
        Ok(c)
    }

    /// Override with the test-config keys of `settings` (a test's `config(...)`).
    pub fn apply(&mut self, settings: &BTreeMap<String, serde_json::Value>) -> Result<(), String> {
        let c = self;
        let text = |k: &str| settings.get(k).and_then(|v| v.as_str()).map(str::to_string);
        if let Some(s) = text("severity") {
            let s = s.to_ascii_lowercase();
            if s != "error" && s != "warn" {
                return Err(format!("severity must be error or warn, not '{s}'"));
            }
            c.severity = s;
        }
        if let Some(w) = text("where") {
            c.where_clause = Some(w);
        }
        if let Some(f) = text("fail_calc") {
            c.fail_calc = Some(f);
        }
        match settings.get("store_failures") {
            None | Some(serde_json::Value::Null) => {}
            // store_failures_as, wherever set, decides (dbt's precedence).
            Some(serde_json::Value::Bool(_)) if c.store_failures_as.is_some() => {}
            Some(serde_json::Value::Bool(b)) => c.store_failures = *b,
            Some(other) => {
                return Err(format!("store_failures must be true or false, not {other}"));
            }
        }
        match text("store_failures_as").as_deref() {
            None => {}
            Some(kind @ ("table" | "view" | "ephemeral")) => {
                c.store_failures = kind != "ephemeral";
                c.store_failures_as = Some(kind.to_string());
            }
            Some(other) => {
                return Err(format!(
                    "store_failures_as '{other}' is not supported by lakeq (table, view, ephemeral)"
                ));
            }
        }
        if let Some(v) = settings.get("limit").filter(|v| !v.is_null()) {
            c.limit = Some(
                v.as_u64()
                    .ok_or_else(|| format!("limit must be a count, not {v}"))?,
            );
        }
        for (key, slot) in [("error_if", &mut c.error_if), ("warn_if", &mut c.warn_if)] {
            if let Some(cond) = text(key) {
                condition_holds(&cond, 0).ok_or_else(|| {
                    format!("{key} must be a comparison such as '>0' or '>=10', not '{cond}'")
                })?;
                *slot = cond;
            }
        }
        Ok(())
    }
}

/// Whether `failures` meets a dbt condition such as `>0`, `>= 10`, `!=0`, `=0`
/// (`None`: not a condition).
pub fn condition_holds(condition: &str, failures: u64) -> Option<bool> {
    let c = condition.trim();
    // Two-character operators first, so `>=` is not read as `>`.
    for op in [">=", "<=", "!=", "<>", "==", ">", "<", "="] {
        if let Some(rest) = c.strip_prefix(op) {
            let n = rest.trim().parse::<u64>().ok()?;
            return Some(match op {
                ">=" => failures >= n,
                "<=" => failures <= n,
                "!=" | "<>" => failures != n,
                ">" => failures > n,
                "<" => failures < n,
                _ => failures == n,
            });
        }
    }
    None
}

/// A data test declaration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DataTestDef {
    /// Unique name, e.g. `unique_stg_users_user_id`.
    pub name: String,
    /// The model it tests (generic tests), if any.
    pub model: Option<String>,
    /// The tested column (generic tests).
    pub column: Option<String>,
    /// What is tested.
    pub kind: TestKind,
    /// File it was declared in, relative to the project folder.
    pub path: String,
    /// Severity, filter and thresholds.
    pub config: TestConfig,
    /// dbt's short name (the relation name of its stored failures) is the
    /// name, or for a name of 64 characters or more this head, `_` and the MD5
    /// of the name in hex.
    pub alias_head: Option<String>,
}

/// A model file before compilation.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// Model name (file stem).
    pub name: String,
    /// Path relative to the project folder (`models/staging/stg_users.sql`).
    pub path: String,
    /// Folder relative to the models folder (`staging`).
    pub folder: String,
    /// The file's text.
    pub raw_sql: String,
    /// Description from `schema.yml`.
    pub description: String,
    /// Column docs from `schema.yml`.
    pub columns: Vec<ColumnDoc>,
    /// `config:` from `schema.yml`.
    pub yaml_config: BTreeMap<String, Yaml>,
    /// The `type` of each model-level constraint of `schema.yml`.
    pub constraints: Vec<String>,
    /// Whether this is a dbt snapshot (a `{% snapshot %}` block, or a YAML
    /// `snapshots:` entry with a `relation:`) rather than a model.
    pub snapshot: bool,
}

/// One file of a project: its path relative to the project folder and its text.
#[derive(Debug, Clone)]
struct ProjectText {
    path: String,
    text: String,
}

/// The bundled sample project: the repository's `models/` and `tests/*.sql`,
/// compiled into the binary (path relative to the project folder, text).
pub const BUNDLED: &[(&str, &str)] = &[
    (
        "models/staging/_sources.yml",
        include_str!("../../models/staging/_sources.yml"),
    ),
    (
        "models/staging/schema.yml",
        include_str!("../../models/staging/schema.yml"),
    ),
    (
        "models/staging/stg_users.sql",
        include_str!("../../models/staging/stg_users.sql"),
    ),
    (
        "models/staging/stg_events.sql",
        include_str!("../../models/staging/stg_events.sql"),
    ),
    (
        "models/staging/stg_invoices.sql",
        include_str!("../../models/staging/stg_invoices.sql"),
    ),
    (
        "models/staging/stg_tickets.sql",
        include_str!("../../models/staging/stg_tickets.sql"),
    ),
    (
        "models/intermediate/schema.yml",
        include_str!("../../models/intermediate/schema.yml"),
    ),
    (
        "models/intermediate/int_revenue_by_user.sql",
        include_str!("../../models/intermediate/int_revenue_by_user.sql"),
    ),
    (
        "models/intermediate/int_user_events_sessionized.sql",
        include_str!("../../models/intermediate/int_user_events_sessionized.sql"),
    ),
    (
        "models/marts/schema.yml",
        include_str!("../../models/marts/schema.yml"),
    ),
    (
        "models/marts/dim_users.sql",
        include_str!("../../models/marts/dim_users.sql"),
    ),
    (
        "models/marts/fct_daily_active_users.sql",
        include_str!("../../models/marts/fct_daily_active_users.sql"),
    ),
    (
        "models/marts/fct_revenue.sql",
        include_str!("../../models/marts/fct_revenue.sql"),
    ),
    (
        "tests/assert_revenue_reconciles.sql",
        include_str!("../../tests/assert_revenue_reconciles.sql"),
    ),
];

/// Everything read from disk.
#[derive(Debug, Clone)]
pub struct ProjectFiles {
    /// The project folder.
    pub root: PathBuf,
    /// Model files by name.
    pub models: BTreeMap<String, ModelFile>,
    /// Declared sources by (source, table).
    pub sources: BTreeMap<(String, String), SourceTable>,
    /// Declared data tests.
    pub tests: Vec<DataTestDef>,
    /// Seeds (`<seeds>/**/*.csv`) by name; `raw_sql` holds the CSV text and
    /// `folder` the folder relative to the seeds folder.
    pub seeds: BTreeMap<String, ModelFile>,
    /// Macro files (`<macros>/**/*.sql`, and `<tests>/generic/**/*.sql`): path and text.
    pub macros: Vec<(String, String)>,
    /// Macro files of packages: package name, path and text.
    pub package_macros: Vec<(String, String, String)>,
    /// Whether this is the bundled sample project (no models folder on disk).
    pub bundled: bool,
    /// The seeds folder relative to the project folder.
    pub seed_prefix: String,
    /// `unit_tests:` entries.
    pub unit_tests: Vec<UnitTestDef>,
}

#[derive(Debug, Deserialize)]
struct YamlFile {
    #[serde(default)]
    sources: Vec<YamlSource>,
    #[serde(default)]
    models: Vec<YamlModel>,
    #[serde(default)]
    seeds: Vec<YamlModel>,
    #[serde(default)]
    snapshots: Vec<YamlModel>,
    #[serde(default)]
    unit_tests: Vec<Yaml>,
}

#[derive(Debug, Deserialize)]
struct YamlSource {
    name: String,
    database: Option<String>,
    schema: Option<String>,
    #[serde(default)]
    tables: Vec<YamlSourceTable>,
}

#[derive(Debug, Deserialize)]
struct YamlSourceTable {
    name: String,
    identifier: Option<String>,
}

#[derive(Debug, Deserialize)]
struct YamlModel {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    config: BTreeMap<String, Yaml>,
    #[serde(default)]
    columns: Vec<YamlColumn>,
    #[serde(default, alias = "data_tests")]
    tests: Vec<Yaml>,
    /// Model-level constraints (`primary_key` over columns, ...).
    #[serde(default)]
    constraints: Vec<Yaml>,
    /// What a snapshot defined in YAML reads (`ref('x')`, `source('s', 't')`).
    relation: Option<String>,
}

#[derive(Debug, Deserialize)]
struct YamlColumn {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default, alias = "data_tests")]
    tests: Vec<Yaml>,
    data_type: Option<String>,
    #[serde(default)]
    constraints: Vec<Yaml>,
}

/// The `type` of each constraint of a `constraints:` list.
fn constraint_types(items: &[Yaml], rel: &str, what: &str) -> Result<Vec<String>, ModelError> {
    items
        .iter()
        .map(|c| {
            c.get("type")
                .and_then(Yaml::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    ModelError::Project(format!(
                        "{rel}: a constraint of {what} has no `type:` (not_null, unique, primary_key, ...)"
                    ))
                })
        })
        .collect()
}

/// The lake sources live in when their YAML names no `database`.
pub const DEFAULT_SOURCE_LAKE: &str = "raw";

impl ProjectFiles {
    /// Read the project under `root` as `config` describes it. Without a
    /// models folder, the bundled sample project is used (see [`BUNDLED`]), so
    /// `lakeq run` works in an empty folder and right after `lakeq init`.
    pub fn load(root: &Path, config: &Config) -> Result<Self, ModelError> {
        let models_dir = root.join(&config.project.models);
        if !models_dir.is_dir() {
            // A folder without models of its own (an empty folder, or one where
            // `lakeq init` just wrote lakeq.toml) runs the bundled sample project;
            // the command line says so.
            return Self::bundled(root);
        }
        let mut sql_files = Vec::new();
        let mut yaml_files = Vec::new();
        walk(&models_dir, &mut sql_files, &mut yaml_files)?;
        let mut texts = Vec::new();
        for path in sql_files.iter().chain(&yaml_files) {
            texts.push(ProjectText {
                path: relative(root, path),
                text: read(path)?,
            });
        }
        let seeds_dir = root.join(&config.project.seeds);
        let mut seed_texts = Vec::new();
        if seeds_dir.is_dir() {
            let mut files = Vec::new();
            walk_ext(&seeds_dir, &["csv", "yml", "yaml"], &mut files)?;
            for path in files {
                let t = ProjectText {
                    path: relative(root, &path),
                    text: read(&path)?,
                };
                if t.path.ends_with(".csv") {
                    seed_texts.push(t);
                } else {
                    texts.push(t);
                }
            }
        }
        let mut macros = Vec::new();
        let tests_dir = root.join(&config.project.tests);
        let mut macro_dirs = vec![root.join(&config.project.macros)];
        if config.dbt.is_some() {
            // dbt: tests/generic/ holds `{% test %}` definitions, the rest of tests/ singular tests.
            macro_dirs.push(tests_dir.join("generic"));
        }
        for dir in macro_dirs {
            if dir.is_dir() {
                let mut files = Vec::new();
                walk_ext(&dir, &["sql"], &mut files)?;
                for path in files {
                    macros.push((relative(root, &path), read(&path)?));
                }
            }
        }
        let mut package_macros = Vec::new();
        for package in config.dbt.iter().flat_map(|d| &d.packages) {
            for folder in &package.macro_paths {
                let dir = package.root.join(folder);
                if dir.is_dir() {
                    let mut files = Vec::new();
                    walk_ext(&dir, &["sql"], &mut files)?;
                    for path in files {
                        package_macros.push((
                            package.name.clone(),
                            relative(root, &path),
                            read(&path)?,
                        ));
                    }
                }
            }
        }
        if config.dbt.is_some() && tests_dir.is_dir() {
            let mut files = Vec::new();
            walk_ext(&tests_dir, &["sql"], &mut files)?;
            let generic = tests_dir.join("generic");
            for path in files.into_iter().filter(|p| !p.starts_with(&generic)) {
                texts.push(ProjectText {
                    path: relative(root, &path),
                    text: read(&path)?,
                });
            }
        } else if tests_dir.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&tests_dir)
                .map_err(|e| io_error(&tests_dir, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "sql") && p.is_file())
                .collect();
            entries.sort();
            for path in entries {
                texts.push(ProjectText {
                    path: relative(root, &path),
                    text: read(&path)?,
                });
            }
        }
        // dbt snapshots: `{% snapshot %}` blocks in <snapshot-paths>/**/*.sql, and the
        // YAML beside them (docs, tests, and dbt >= 1.9's snapshots defined in YAML).
        let mut snapshots = Vec::new();
        for folder in config
            .dbt
            .iter()
            .flat_map(|d| d.snapshot_paths.iter().take(1))
        {
            let dir = root.join(folder);
            if !dir.is_dir() {
                continue;
            }
            let mut files = Vec::new();
            walk_ext(&dir, &["sql", "yml", "yaml"], &mut files)?;
            for path in files {
                let rel = relative(root, &path);
                let text = read(&path)?;
                if !rel.ends_with(".sql") {
                    texts.push(ProjectText { path: rel, text });
                    continue;
                }
                let folder = path
                    .parent()
                    .and_then(|p| p.strip_prefix(&dir).ok())
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_default();
                for block in super::snapshot::blocks(&rel, &text)? {
                    snapshots.push(ModelFile {
                        name: block.name,
                        path: rel.clone(),
                        folder: folder.clone(),
                        raw_sql: block.body,
                        description: String::new(),
                        columns: Vec::new(),
                        yaml_config: BTreeMap::new(),
                        constraints: Vec::new(),
                        snapshot: true,
                    });
                }
            }
        }
        let models_prefix = relative(root, &models_dir);
        let mut files = Self::from_texts(
            root,
            &models_prefix,
            &texts,
            &seed_texts,
            snapshots,
            config.dbt.as_ref(),
        )?;
        files.macros = macros;
        files.package_macros = package_macros;
        files.seed_prefix = relative(root, &seeds_dir);
        Ok(files)
    }

    /// The bundled sample project (the repository's `models/` and `tests/*.sql`).
    pub fn bundled(root: &Path) -> Result<Self, ModelError> {
        let texts: Vec<ProjectText> = BUNDLED
            .iter()
            .map(|(path, text)| ProjectText {
                path: path.to_string(),
                text: text.to_string(),
            })
            .collect();
        let mut project = Self::from_texts(root, "models", &texts, &[], Vec::new(), None)?;
        project.bundled = true;
        Ok(project)
    }

    /// Build the project from file texts: `<models_prefix>/**/*.sql` are models,
    /// `*.yml`/`*.yaml` under it are sources and docs, other `*.sql` are singular tests.
    fn from_texts(
        root: &Path,
        models_prefix: &str,
        texts: &[ProjectText],
        seed_texts: &[ProjectText],
        snapshots: Vec<ModelFile>,
        dbt: Option<&crate::config::dbt::DbtProject>,
    ) -> Result<Self, ModelError> {
        let prefix = format!("{}/", models_prefix.trim_end_matches('/'));
        // Same order whatever the source (disk walk or BUNDLED): by path.
        let mut texts: Vec<&ProjectText> = texts.iter().collect();
        texts.sort_by(|a, b| a.path.cmp(&b.path));
        let mut models = BTreeMap::new();
        let mut yaml_files = Vec::new();
        let mut singular = Vec::new();
        for t in texts {
            if t.path.ends_with(".yml") || t.path.ends_with(".yaml") {
                yaml_files.push(t);
            }
            let Some(inside) = t.path.strip_prefix(&prefix) else {
                if t.path.ends_with(".sql") {
                    singular.push(t);
                }
                continue;
            };
            if t.path.ends_with(".yml") || t.path.ends_with(".yaml") {
                continue;
            }
            if !t.path.ends_with(".sql") {
                continue;
            }
            let rel = t.path.clone();
            let name = stem(Path::new(&rel));
            let folder = inside
                .rsplit_once('/')
                .map(|(f, _)| f.to_string())
                .unwrap_or_default();
            let file = ModelFile {
                name: name.clone(),
                path: rel.clone(),
                folder,
                raw_sql: t.text.clone(),
                description: String::new(),
                columns: Vec::new(),
                yaml_config: BTreeMap::new(),
                constraints: Vec::new(),
                snapshot: false,
            };
            if let Some(other) = models.insert(name.clone(), file) {
                return Err(ModelError::Project(format!(
                    "two models are called '{name}': {} and {rel}",
                    other.path
                )));
            }
        }
        for file in snapshots {
            if let Some(other) = models.insert(file.name.clone(), file.clone()) {
                return Err(ModelError::Project(format!(
                    "a snapshot and a {} are both called '{}': {} and {}",
                    if other.snapshot { "snapshot" } else { "model" },
                    file.name,
                    other.path,
                    file.path
                )));
            }
        }
        let mut seeds = BTreeMap::new();
        for t in seed_texts {
            let name = stem(Path::new(&t.path));
            let file = ModelFile {
                name: name.clone(),
                path: t.path.clone(),
                folder: String::new(),
                raw_sql: t.text.clone(),
                description: String::new(),
                columns: Vec::new(),
                yaml_config: BTreeMap::new(),
                constraints: Vec::new(),
                snapshot: false,
            };
            if let Some(other) = seeds.insert(name.clone(), file) {
                return Err(ModelError::Project(format!(
                    "two seeds are called '{name}': {} and {}",
                    other.path, t.path
                )));
            }
            if let Some(m) = models.get(&name) {
                return Err(ModelError::Project(format!(
                    "a seed and a model are both called '{name}': {} and {}",
                    t.path, m.path
                )));
            }
        }
        let mut sources = BTreeMap::new();
        let mut tests = Vec::new();
        let mut unit_tests = Vec::new();
        for file in yaml_files {
            let rel = file.path.clone();
            let parsed: YamlFile = serde_yaml_ng::from_str(&file.text)
                .map_err(|e| ModelError::Project(format!("{rel}: {e}")))?;
            for s in parsed.sources {
                for t in s.tables {
                    let table = SourceTable {
                        source: s.name.clone(),
                        identifier: t.identifier.unwrap_or_else(|| t.name.clone()),
                        name: t.name,
                        lake: s
                            .database
                            .clone()
                            .unwrap_or_else(|| DEFAULT_SOURCE_LAKE.into()),
                        schema: s.schema.clone().unwrap_or_else(|| s.name.clone()),
                        explicit_lake: s.database.is_some(),
                    };
                    sources.insert((table.source.clone(), table.name.clone()), table);
                }
            }
            for m in parsed.models {
                let Some(file) = models.get_mut(&m.name) else {
                    return Err(ModelError::Project(format!(
                        "{rel} describes model '{}', but there is no models/**/{}.sql",
                        m.name, m.name
                    )));
                };
                file.description = m.description;
                file.yaml_config = m.config;
                file.constraints =
                    constraint_types(&m.constraints, &rel, &format!("model '{}'", m.name))?;
                for t in &m.tests {
                    tests.push(generic_test(&m.name, None, t, &rel, dbt)?);
                }
                for c in m.columns {
                    for t in &c.tests {
                        tests.push(generic_test(&m.name, Some(&c.name), t, &rel, dbt)?);
                    }
                    let constraints = constraint_types(
                        &c.constraints,
                        &rel,
                        &format!("column '{}' of model '{}'", c.name, m.name),
                    )?;
                    file.columns.push(ColumnDoc {
                        name: c.name,
                        description: c.description,
                        data_type: c.data_type,
                        constraints,
                    });
                }
            }
            for m in parsed.snapshots {
                if let Some(relation) = &m.relation {
                    // dbt >= 1.9: a snapshot defined in YAML selects everything from its relation.
                    let file = ModelFile {
                        name: m.name.clone(),
                        path: rel.clone(),
                        folder: String::new(),
                        raw_sql: format!("select * from {{{{ {} }}}}", relation.trim()),
                        description: String::new(),
                        columns: Vec::new(),
                        yaml_config: BTreeMap::new(),
                        constraints: Vec::new(),
                        snapshot: true,
                    };
                    if let Some(other) = models.insert(m.name.clone(), file) {
                        return Err(ModelError::Project(format!(
                            "{rel} defines snapshot '{}', but {} defines it too",
                            m.name, other.path
                        )));
                    }
                }
                let Some(file) = models.get_mut(&m.name).filter(|f| f.snapshot) else {
                    return Err(ModelError::Project(format!(
                        "{rel} describes snapshot '{}', but there is no {{% snapshot {} %}} block \
                         (and the entry has no `relation:`)",
                        m.name, m.name
                    )));
                };
                file.description = m.description;
                file.yaml_config = m.config;
                for t in &m.tests {
                    tests.push(generic_test(&m.name, None, t, &rel, dbt)?);
                }
                for c in m.columns {
                    for t in &c.tests {
                        tests.push(generic_test(&m.name, Some(&c.name), t, &rel, dbt)?);
                    }
                    file.columns.push(ColumnDoc {
                        name: c.name,
                        description: c.description,
                        data_type: c.data_type,
                        constraints: Vec::new(),
                    });
                }
            }
            for u in &parsed.unit_tests {
                unit_tests.push(unit_test(u, &rel)?);
            }
            for m in parsed.seeds {
                let Some(file) = seeds.get_mut(&m.name) else {
                    return Err(ModelError::Project(format!(
                        "{rel} describes seed '{}', but there is no seeds/**/{}.csv",
                        m.name, m.name
                    )));
                };
                file.description = m.description;
                file.yaml_config = m.config;
                for t in &m.tests {
                    tests.push(generic_test(&m.name, None, t, &rel, dbt)?);
                }
                for c in m.columns {
                    for t in &c.tests {
                        tests.push(generic_test(&m.name, Some(&c.name), t, &rel, dbt)?);
                    }
                    file.columns.push(ColumnDoc {
                        name: c.name,
                        description: c.description,
                        data_type: c.data_type,
                        constraints: Vec::new(),
                    });
                }
            }
        }
        for t in singular {
            tests.push(DataTestDef {
                name: stem(Path::new(&t.path)),
                alias_head: None,
                model: None,
                column: None,
                kind: TestKind::Singular {
                    raw_sql: t.text.clone(),
                },
                path: t.path.clone(),
                config: match dbt {
                    Some(d) => TestConfig::from_settings(&crate::config::dbt::tree_config(
                        &d.data_tests,
                        &d.name,
                        &[],
                        &stem(Path::new(&t.path)),
                    ))
                    .map_err(|e| ModelError::Project(format!("{}: {e}", t.path)))?,
                    None => TestConfig::default(),
                },
            });
        }
        let mut seen = BTreeMap::new();
        for t in &tests {
            if let Some(other) = seen.insert(t.name.clone(), t.path.clone()) {
                return Err(ModelError::Project(format!(
                    "two data tests are called '{}' ({other} and {})",
                    t.name, t.path
                )));
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            models,
            sources,
            tests,
            seeds,
            macros: Vec::new(),
            package_macros: Vec::new(),
            seed_prefix: String::new(),
            unit_tests,
            bundled: false,
        })
    }
}

/// A dbt unit test: the model run on fixed input rows, its output compared with `expect`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UnitTestDef {
    /// Its name (`totals_add_up`).
    pub name: String,
    /// The model under test.
    pub model: String,
    /// Input rows by input: `ref('x')` / `source('s', 't')` as written, and its rows.
    pub given: Vec<(String, Vec<BTreeMap<String, serde_json::Value>>)>,
    /// The expected rows (only their columns are compared).
    pub expect: Vec<BTreeMap<String, serde_json::Value>>,
    /// The YAML file.
    pub path: String,
}

/// Parse one `unit_tests:` entry (`rows` as dicts, or `format: csv` text).
fn unit_test(entry: &Yaml, path: &str) -> Result<UnitTestDef, ModelError> {
    let name = entry
        .get("name")
        .and_then(Yaml::as_str)
        .unwrap_or("?")
        .to_string();
    let bad = |why: String| ModelError::Project(format!("{path}: unit test '{name}': {why}"));
    let model = entry
        .get("model")
        .and_then(Yaml::as_str)
        .ok_or_else(|| bad("`model:` is missing".into()))?
        .to_string();
    for key in ["overrides"] {
        if entry.get(key).is_some() {
            return Err(bad(format!("`{key}:` is not supported by lakeq yet")));
        }
    }
    let rows_of = |block: &Yaml,
                   what: &str|
     -> Result<Vec<BTreeMap<String, serde_json::Value>>, ModelError> {
        let format = block.get("format").and_then(Yaml::as_str).unwrap_or("dict");
        match (format, block.get("rows")) {
            (_, None | Some(Yaml::Null)) => Ok(Vec::new()),
            ("dict", Some(Yaml::Sequence(rows))) => rows
                .iter()
                .map(|r| {
                    serde_json::to_value(r)
                        .ok()
                        .and_then(|v| match v {
                            serde_json::Value::Object(o) => Some(o.into_iter().collect()),
                            _ => None,
                        })
                        .ok_or_else(|| {
                            bad(format!("{what}: each row must be a map of column: value"))
                        })
                })
                .collect(),
            ("csv", Some(Yaml::String(text))) => {
                let csv = super::seed::parse(path, text, b',')?;
                Ok(csv
                    .rows
                    .iter()
                    .map(|r| {
                        csv.header
                            .iter()
                            .zip(r)
                            .map(|(h, v)| {
                                (
                                    h.clone(),
                                    v.clone()
                                        .map_or(serde_json::Value::Null, serde_json::Value::String),
                                )
                            })
                            .collect()
                    })
                    .collect())
            }
            (f, _) => Err(bad(format!(
                "{what}: rows in format '{f}' are not supported (dict, csv)"
            ))),
        }
    };
    let mut given = Vec::new();
    if let Some(Yaml::Sequence(inputs)) = entry.get("given") {
        for g in inputs {
            let input = g
                .get("input")
                .and_then(Yaml::as_str)
                .ok_or_else(|| bad("each `given` needs `input: ref('...')`".into()))?;
            given.push((input.to_string(), rows_of(g, input)?));
        }
    }
    let expect = rows_of(
        entry
            .get("expect")
            .ok_or_else(|| bad("`expect:` is missing".into()))?,
        "expect",
    )?;
    Ok(UnitTestDef {
        name,
        model,
        given,
        expect,
        path: path.to_string(),
    })
}

/// Keys of a generic test entry that configure it rather than pass arguments
/// (dbt accepts them beside the arguments, or under `config:`).
const TEST_CONFIG_KEYS: &[&str] = &[
    "severity",
    "where",
    "limit",
    "error_if",
    "warn_if",
    "enabled",
    "tags",
    "store_failures",
    "store_failures_as",
    "meta",
    "alias",
    "schema",
    "database",
    "fail_calc",
];

/// Parse one entry of a `tests:` list: `name`, or `name: {arguments}`, or
/// dbt ≥ 1.10's `name: {arguments: {...}, config: {...}}`. `dbt` (a dbt
/// project) gives dbt's test names and the `data_tests:` config tree, and makes
/// an unknown test a custom generic test (a `{% test %}` macro) instead of an error.
fn generic_test(
    model: &str,
    column: Option<&str>,
    test: &Yaml,
    path: &str,
    dbt: Option<&crate::config::dbt::DbtProject>,
) -> Result<DataTestDef, ModelError> {
    let bad = |why: &str| {
        ModelError::Project(format!(
            "{path}: test on {model}{}: {why}",
            column.map(|c| format!(".{c}")).unwrap_or_default()
        ))
    };
    let (name, entry) = match test {
        Yaml::String(s) => (s.clone(), None),
        Yaml::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().ok_or_else(|| bad("empty test"))?;
            let k = k.as_str().ok_or_else(|| bad("test name must be text"))?;
            (k.to_string(), Some(v))
        }
        _ => return Err(bad("expected a test name or `name: {arguments}`")),
    };
    // Split the entry into arguments and config.
    let mut args: BTreeMap<String, Yaml> = BTreeMap::new();
    let mut settings: BTreeMap<String, serde_json::Value> = match dbt {
        Some(d) => crate::config::dbt::tree_config(&d.data_tests, &d.name, &[], &name),
        None => BTreeMap::new(),
    };
    let mut custom_name = None;
    if let Some(Yaml::Mapping(m)) = entry {
        for (k, v) in m {
            let k = k.as_str().ok_or_else(|| bad("test keys must be text"))?;
            match k {
                "arguments" => {
                    let Yaml::Mapping(a) = v else {
                        return Err(bad("`arguments:` must be a map"));
                    };
                    for (ak, av) in a {
                        let ak = ak
                            .as_str()
                            .ok_or_else(|| bad("argument names must be text"))?;
                        args.insert(ak.to_string(), av.clone());
                    }
                }
                "config" => {
                    let Yaml::Mapping(c) = v else {
                        return Err(bad("`config:` must be a map"));
                    };
                    for (ck, cv) in c {
                        let ck = ck.as_str().ok_or_else(|| bad("config keys must be text"))?;
                        let json = serde_json::to_value(cv).map_err(|e| bad(&e.to_string()))?;
                        settings.insert(ck.to_string(), json);
                    }
                }
                "name" => custom_name = v.as_str().map(str::to_string),
                "description" => {}
                k if TEST_CONFIG_KEYS.contains(&k) => {
                    let json = serde_json::to_value(v).map_err(|e| bad(&e.to_string()))?;
                    settings.insert(k.to_string(), json);
                }
                k => {
                    args.insert(k.to_string(), v.clone());
                }
            }
        }
    } else if let Some(v) = entry
        && !v.is_null()
    {
        return Err(bad(&format!("the arguments of '{name}' must be a map")));
    }
    let arg = |key: &str| args.get(key);
    let column_needed = || column.ok_or_else(|| bad(&format!("'{name}' must be under a column")));
    let kind = match name.as_str() {
        "unique" => TestKind::Unique,
        "not_null" => TestKind::NotNull,
        "accepted_values" => {
            let values = arg("values")
                .and_then(Yaml::as_sequence)
                .ok_or_else(|| bad("accepted_values needs `values: [...]`"))?;
            let quote = arg("quote").and_then(Yaml::as_bool).unwrap_or(true);
            let values = values
                .iter()
                .map(|v| literal(v, quote).ok_or_else(|| bad("accepted value must be a scalar")))
                .collect::<Result<Vec<_>, _>>()?;
            TestKind::AcceptedValues { values }
        }
        "relationships" => {
            let to = arg("to")
                .and_then(Yaml::as_str)
                .ok_or_else(|| bad("relationships needs `to: ref('model')`"))?;
            let field = arg("field")
                .and_then(Yaml::as_str)
                .ok_or_else(|| bad("relationships needs `field: column`"))?;
            TestKind::Relationships {
                to: to.to_string(),
                field: field.to_string(),
            }
        }
        other if dbt.is_some() => TestKind::Custom {
            test: other.to_string(),
            args: args
                .iter()
                .map(|(k, v)| {
                    serde_json::to_value(v)
                        .map(|j| (k.clone(), j))
                        .map_err(|e| bad(&e.to_string()))
                })
                .collect::<Result<_, _>>()?,
        },
        other => {
            return Err(bad(&format!(
                "unknown test '{other}' (lakeq knows unique, not_null, accepted_values, relationships)"
            )));
        }
    };
    let column = match kind {
        TestKind::Unique
        | TestKind::NotNull
        | TestKind::AcceptedValues { .. }
        | TestKind::Relationships { .. } => Some(column_needed()?.to_string()),
        TestKind::Custom { .. } => column.map(str::to_string),
        TestKind::Singular { .. } => None,
    };
    let identifier = format!("{}_{model}", name.replace('.', "_"));
    let test_name = match (custom_name, dbt) {
        (Some(n), _) => n,
        (None, Some(_)) => dbt_test_name(&name, model, column.as_deref(), &args),
        (None, None) => {
            let mut n = format!("{name}_{model}");
            if let Some(c) = &column {
                n.push('_');
                n.push_str(c);
            }
            n
        }
    };
    Ok(DataTestDef {
        alias_head: dbt_test_alias(&identifier, &test_name),
        name: test_name,
        model: Some(model.to_string()),
        column,
        kind,
        path: path.to_string(),
        config: TestConfig::from_settings(&settings).map_err(|e| bad(&e))?,
    })
}

/// dbt's name of a generic test: `<test>_<model>_<arguments>`, the arguments
/// (with `column_name`) sorted by name, flattened and joined with `__`, each
/// with characters other than letters, digits and `_` replaced by `_`
/// (`accepted_values_orders_status__placed__shipped`). A namespace is kept
/// with `_` (`dbt_utils.at_least_one` → `dbt_utils_at_least_one_...`), as
/// dbt 1.11 names it.
fn dbt_test_name(
    test: &str,
    model: &str,
    column: Option<&str>,
    args: &BTreeMap<String, Yaml>,
) -> String {
    let test = test.replace('.', "_");
    let mut all: BTreeMap<&str, Yaml> = args.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    if let Some(c) = column {
        all.insert("column_name", Yaml::String(c.to_string()));
    }
    let mut flat = Vec::new();
    for (k, v) in &all {
        if *k == "model" {
            continue;
        }
        match v {
            Yaml::Sequence(items) => flat.extend(items.iter().map(python_str)),
            Yaml::Mapping(m) => flat.extend(m.values().map(python_str)),
            other => flat.push(python_str(other)),
        }
    }
    let clean: Vec<String> = flat
        .iter()
        .map(|a| {
            let mut out = String::new();
            let mut in_run = false;
            for ch in a.chars() {
                if ch.is_ascii_alphanumeric() || ch == '_' {
                    out.push(ch);
                    in_run = false;
                } else if !in_run {
                    out.push('_');
                    in_run = true;
                }
            }
            out
        })
        .collect();
    format!("{test}_{model}_{}", clean.join("__"))
}

/// Where dbt's short name of a test (its file and relation name) differs from
/// its name: for a name of 64 characters or more, the first 30 characters of
/// `<test>_<model>`, to which dbt appends `_` and the MD5 of the name in hex
/// (see [`DataTestDef::alias_head`]).
fn dbt_test_alias(identifier: &str, name: &str) -> Option<String> {
    (name.chars().count() >= 64).then(|| identifier.chars().take(30).collect())
}

/// A YAML value as Python's `str()` spells it (what dbt puts into test names).
fn python_str(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Bool(true) => "True".into(),
        Yaml::Bool(false) => "False".into(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Null => "None".into(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// A YAML scalar as a SQL literal.
fn literal(v: &Yaml, quote: bool) -> Option<String> {
    let text = match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        _ => return None,
    };
    Some(if quote {
        format!("'{}'", text.replace('\'', "''"))
    } else {
        text
    })
}

fn walk(dir: &Path, sql: &mut Vec<PathBuf>, yaml: &mut Vec<PathBuf>) -> Result<(), ModelError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_error(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, sql, yaml)?;
        } else if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            match ext {
                "sql" => sql.push(path),
                "yml" | "yaml" => yaml.push(path),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Files under `dir` (recursively, sorted) whose extension is one of `exts`.
fn walk_ext(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) -> Result<(), ModelError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_error(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk_ext(&path, exts, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| exts.contains(&e))
        {
            out.push(path);
        }
    }
    Ok(())
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn read(path: &Path) -> Result<String, ModelError> {
    std::fs::read_to_string(path).map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, e: std::io::Error) -> ModelError {
    ModelError::Project(format!("cannot read '{}': {e}", path.display()))
}

/// Merge the folder defaults of `lakeq.toml` for a model in `folder`:
/// every ancestor folder applies, the most specific last.
pub fn folder_defaults(config: &Config, folder: &str) -> crate::config::FolderConfig {
    let mut out = crate::config::FolderConfig::default();
    let mut prefixes = vec![String::new()];
    let mut acc = String::new();
    for part in folder.split('/').filter(|p| !p.is_empty()) {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(part);
        prefixes.push(acc.clone());
    }
    for p in prefixes {
        let key = if p.is_empty() { "/" } else { p.as_str() };
        if let Some(f) = config.models.get(key) {
            if f.materialized.is_some() {
                out.materialized = f.materialized.clone();
            }
            if f.schema.is_some() {
                out.schema = f.schema.clone();
            }
            if f.enabled.is_some() {
                out.enabled = f.enabled;
            }
            out.tags.extend(f.tags.iter().cloned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `BUNDLED` must be exactly the repository's `models/` and `tests/*.sql`.
    #[test]
    fn bundled_project_matches_the_repository() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = Config::load(Path::new("/nonexistent-lakeq-project")).expect("default config");
        let on_disk = ProjectFiles::load(root, &config).expect("load models/");
        let bundled = ProjectFiles::bundled(root).expect("load the bundled project");
        let names = |p: &ProjectFiles| -> Vec<(String, String)> {
            p.models
                .values()
                .map(|m| (m.path.clone(), m.raw_sql.clone()))
                .collect()
        };
        assert_eq!(names(&on_disk), names(&bundled));
        assert_eq!(on_disk.tests, bundled.tests);
        assert_eq!(on_disk.sources, bundled.sources);
        assert_eq!(on_disk.models.len(), 9);
    }
}
