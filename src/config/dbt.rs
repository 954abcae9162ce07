//! dbt project files: `dbt_project.yml` (paths, vars, the `models:` /
//! `seeds:` / `data_tests:` config trees) and `profiles.yml` (a dbt-duckdb
//! target whose `attach:` entries are DuckLake lakes), mapped onto lakeq's
//! [`Config`](crate::config::Config).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value as Yaml;

use super::{LakeConfig, TargetConfig};
use crate::error::{Error, Result};

/// What `dbt_project.yml` (and the `profiles.yml` it names) describe.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbtProject {
    /// The project name (`name:`).
    pub name: String,
    /// `model-paths` (default `models`).
    pub model_paths: Vec<String>,
    /// `seed-paths` (default `seeds`).
    pub seed_paths: Vec<String>,
    /// `macro-paths` (default `macros`).
    pub macro_paths: Vec<String>,
    /// `test-paths` (default `tests`).
    pub test_paths: Vec<String>,
    /// `snapshot-paths` (default `snapshots`).
    pub snapshot_paths: Vec<String>,
    /// `vars:` (global ones and those scoped to this project).
    pub vars: BTreeMap<String, serde_json::Value>,
    /// The `models:` config tree.
    pub models: Yaml,
    /// The `seeds:` config tree.
    pub seeds: Yaml,
    /// The `snapshots:` config tree.
    pub snapshots: Yaml,
    /// The `data_tests:` (or `tests:`) config tree.
    pub data_tests: Yaml,
    /// Schema of each target (`schema:` of the profile output; `main` by default).
    pub target_schemas: BTreeMap<String, String>,
    /// Nodes run at once for each target (`threads:` of the profile output).
    pub target_threads: BTreeMap<String, usize>,
    /// Things lakeq does not do, one line each (printed once per command).
    pub warnings: Vec<String>,
    /// `on-run-start`: SQL templates run before a run's first node.
    pub on_run_start: Vec<String>,
    /// `on-run-end`: SQL templates run after a run's last node.
    pub on_run_end: Vec<String>,
    /// Packages: `local:` entries of `packages.yml` / `dependencies.yml` and
    /// those `dbt deps` installed into `dbt_packages/`.
    pub packages: Vec<Package>,
}

/// A dbt package whose macros the project can call (`pkg.macro(...)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Its project name (`dbt_utils`).
    pub name: String,
    /// Its folder.
    pub root: PathBuf,
    /// Its macro folders, relative to `root`.
    pub macro_paths: Vec<String>,
}

/// Keys of `dbt_project.yml` lakeq reads or knowingly ignores without effect on what is built.
const PROJECT_KEYS: &[&str] = &[
    "name",
    "version",
    "config-version",
    "profile",
    "model-paths",
    "seed-paths",
    "macro-paths",
    "test-paths",
    "snapshot-paths",
    "vars",
    "models",
    "seeds",
    "snapshots",
    "data_tests",
    "tests",
    "target-path",
    "clean-targets",
    "log-path",
    "packages-install-path",
    "require-dbt-version",
    "analysis-paths",
    "docs-paths",
    "asset-paths",
    "flags",
    "quoting",
    "on-run-start",
    "on-run-end",
];

/// Config keys whose value is a map (so a map under them is not a sub-folder).
const MAP_VALUED_KEYS: &[&str] = &[
    "docs",
    "persist_docs",
    "meta",
    "column_types",
    "grants",
    "contract",
    "labels",
    "quoting",
    "snapshot_meta_column_names",
];

impl DbtProject {
    /// Read `<dir>/dbt_project.yml` (`None` when there is none) and the
    /// profile it names. Lakes and targets of the profile are added to `lakes`
    /// and `targets` where the caller has none of that name.
    pub fn load(
        dir: &Path,
        lakes: &mut BTreeMap<String, LakeConfig>,
        targets: &mut BTreeMap<String, TargetConfig>,
        default_target: &mut Option<String>,
    ) -> Result<Option<Self>> {
        let path = dir.join("dbt_project.yml");
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)?;
        let yaml: Yaml = serde_yaml_ng::from_str(&text).map_err(|e| invalid(&path, &e))?;
        let map = yaml
            .as_mapping()
            .ok_or_else(|| invalid(&path, &"expected a map of settings"))?;
        let text_of = |key: &str| map.get(key).and_then(Yaml::as_str).map(str::to_string);
        let name = text_of("name").ok_or_else(|| invalid(&path, &"`name:` is missing"))?;
        let paths = |key: &str, default: &str| -> Result<Vec<String>> {
            match map.get(key) {
                None | Some(Yaml::Null) => Ok(vec![default.to_string()]),
                Some(Yaml::String(s)) => Ok(vec![s.clone()]),
                Some(Yaml::Sequence(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_string).ok_or_else(|| {
                            invalid(&path, &format!("{key} must be a list of folders"))
                        })
                    })
                    .collect(),
                Some(_) => Err(invalid(&path, &format!("{key} must be a list of folders"))),
            }
        };
        let mut project = DbtProject {
            model_paths: paths("model-paths", "models")?,
            seed_paths: paths("seed-paths", "seeds")?,
            macro_paths: paths("macro-paths", "macros")?,
            test_paths: paths("test-paths", "tests")?,
            snapshot_paths: paths("snapshot-paths", "snapshots")?,
            models: map.get("models").cloned().unwrap_or(Yaml::Null),
            seeds: map.get("seeds").cloned().unwrap_or(Yaml::Null),
            snapshots: map.get("snapshots").cloned().unwrap_or(Yaml::Null),
            data_tests: map
                .get("data_tests")
                .or_else(|| map.get("tests"))
                .cloned()
                .unwrap_or(Yaml::Null),
            ..Default::default()
        };
        if let Some(Yaml::Mapping(vars)) = map.get("vars") {
            let mut scoped = BTreeMap::new();
            for (k, v) in vars {
                let Some(k) = k.as_str() else { continue };
                let json = serde_json::to_value(v).map_err(|e| invalid(&path, &e))?;
                if k == name && v.is_mapping() {
                    // vars: {my_project: {x: 1}}: scoped to this project, wins over global ones.
                    if let serde_json::Value::Object(o) = json {
                        scoped.extend(o);
                    }
                } else {
                    project.vars.insert(k.to_string(), json);
                }
            }
            project.vars.extend(scoped);
        }
        for (k, _) in map {
            let Some(k) = k.as_str() else { continue };
            if !PROJECT_KEYS.contains(&k) {
                project.warnings.push(format!(
                    "dbt_project.yml: '{k}' is not supported by lakeq and is ignored"
                ));
            }
        }
        for key in ["model-paths", "seed-paths", "test-paths", "snapshot-paths"] {
            let list = paths(key, "")?;
            if let [first, _, ..] = list.as_slice() {
                project.warnings.push(format!(
                    "dbt_project.yml: {key} lists {} folders; lakeq reads only the first, '{first}'",
                    list.len()
                ));
            }
        }
        for (key, slot) in [
            ("on-run-start", &mut project.on_run_start),
            ("on-run-end", &mut project.on_run_end),
        ] {
            if let Some(v) = map.get(key) {
                let json = serde_json::to_value(v).map_err(|e| invalid(&path, &e))?;
                *slot = hooks(&json).map_err(|e| invalid(&path, &format!("{key}: {e}")))?;
            }
        }
        let install = text_of("packages-install-path").unwrap_or_else(|| "dbt_packages".into());
        project.packages = load_packages(dir, &install, &mut project.warnings)?;
        let profile_name = text_of("profile").unwrap_or_else(|| name.clone());
        project.name = name;
        if let Some(profile) = find_profiles(dir) {
            project.read_profile(&profile, &profile_name, lakes, targets, default_target)?;
        }
        Ok(Some(project))
    }

    /// Map the profile's outputs onto lakes and targets.
    fn read_profile(
        &mut self,
        path: &Path,
        profile: &str,
        lakes: &mut BTreeMap<String, LakeConfig>,
        targets: &mut BTreeMap<String, TargetConfig>,
        default_target: &mut Option<String>,
    ) -> Result<()> {
        let text = std::fs::read_to_string(path)?;
        let text = render_env_vars(&text).map_err(|e| invalid(path, &e))?;
        let yaml: Yaml = serde_yaml_ng::from_str(&text).map_err(|e| invalid(path, &e))?;
        let Some(entry) = yaml.get(profile) else {
            return Err(invalid(
                path,
                &format!("there is no profile '{profile}' (dbt_project.yml names it)"),
            ));
        };
        if let Some(t) = entry.get("target").and_then(Yaml::as_str) {
            *default_target = Some(t.to_string());
        }
        let Some(Yaml::Mapping(outputs)) = entry.get("outputs") else {
            return Err(invalid(
                path,
                &format!("profile '{profile}' has no outputs"),
            ));
        };
        for (target, output) in outputs {
            let Some(target) = target.as_str() else {
                continue;
            };
            let kind = output.get("type").and_then(Yaml::as_str).unwrap_or("");
            if kind != "duckdb" {
                return Err(invalid(
                    path,
                    &format!(
                        "output '{target}' is of type '{kind}'; lakeq runs dbt-duckdb targets (type: duckdb) whose `attach:` holds DuckLake lakes"
                    ),
                ));
            }
            let mut ducklakes = Vec::new();
            if let Some(Yaml::Sequence(attach)) = output.get("attach") {
                for a in attach {
                    let Some(location) = a.get("path").and_then(Yaml::as_str) else {
                        continue;
                    };
                    let Some(catalog) = location.strip_prefix("ducklake:") else {
                        continue; // a plain DuckDB file: nothing lakeq can write
                    };
                    let alias = a
                        .get("alias")
                        .and_then(Yaml::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| alias_of(catalog));
                    let option = |key: &str| {
                        a.get("options")
                            .and_then(|o| o.get(key).or_else(|| o.get(key.to_uppercase())))
                            .or_else(|| a.get(key))
                            .and_then(yaml_text)
                    };
                    let Some(data_path) = option("data_path") else {
                        return Err(invalid(
                            path,
                            &format!(
                                "output '{target}': the DuckLake '{alias}' needs options: {{data_path: ...}}"
                            ),
                        ));
                    };
                    lakes.entry(alias.clone()).or_insert(LakeConfig {
                        catalog: location.to_string(),
                        data_path,
                        metadata_schema: option("metadata_schema"),
                    });
                    ducklakes.push(alias);
                }
            }
            let database = output.get("database").and_then(Yaml::as_str);
            let lake = match (database, ducklakes.as_slice()) {
                (Some(db), _) if lakes.contains_key(db) => Some(db.to_string()),
                (None, [only]) => Some(only.clone()),
                _ => None,
            };
            if let Some(lake) = lake {
                targets
                    .entry(target.to_string())
                    .or_insert(TargetConfig { lake });
            }
            let schema = output
                .get("schema")
                .and_then(Yaml::as_str)
                .unwrap_or("main");
            self.target_schemas
                .insert(target.to_string(), schema.to_string());
            match output.get("threads") {
                None | Some(Yaml::Null) => {}
                Some(t) => {
                    let n = t
                        .as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            invalid(
                                path,
                                &format!("output '{target}': threads must be a positive number"),
                            )
                        })?;
                    self.target_threads.insert(target.to_string(), n);
                }
            }
        }
        Ok(())
    }

    /// The schema of `target` (`main` when the profile does not say).
    pub fn target_schema(&self, target: &str) -> String {
        self.target_schemas
            .get(target)
            .cloned()
            .unwrap_or_else(|| "main".into())
    }
}

/// The packages of the project in `dir`: `local:` entries of `packages.yml`
/// (or `dependencies.yml`), and every package installed under `install`
/// (`dbt deps`). A hub or git package that is not installed is a warning:
/// lakeq downloads nothing.
fn load_packages(dir: &Path, install: &str, warnings: &mut Vec<String>) -> Result<Vec<Package>> {
    let mut out: Vec<Package> = Vec::new();
    let mut remote = Vec::new();
    for file in ["packages.yml", "dependencies.yml"] {
        let path = dir.join(file);
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let text = render_env_vars(&text).map_err(|e| invalid(&path, &e))?;
        let yaml: Yaml = serde_yaml_ng::from_str(&text).map_err(|e| invalid(&path, &e))?;
        let Some(Yaml::Sequence(entries)) = yaml.get("packages") else {
            continue;
        };
        for entry in entries {
            if let Some(local) = entry.get("local").and_then(Yaml::as_str) {
                let root = dir.join(local);
                let package = read_package(&root)
                    .map_err(|e| invalid(&path, &format!("local package '{local}': {e}")))?;
                out.push(package);
            } else {
                let spec = ["package", "git", "tarball", "private"]
                    .iter()
                    .find_map(|k| entry.get(*k).and_then(Yaml::as_str))
                    .unwrap_or("?")
                    .to_string();
                remote.push((file, spec));
            }
        }
    }
    let installed = dir.join(install);
    if installed.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&installed)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("dbt_project.yml").is_file())
            .collect();
        entries.sort();
        for root in entries {
            let package = read_package(&root).map_err(|e| invalid(&root, &e))?;
            if !out.iter().any(|p| p.name == package.name) {
                out.push(package);
            }
        }
    }
    for (file, spec) in remote {
        // dbt-labs/dbt_utils, https://github.com/dbt-labs/dbt-utils.git -> dbt_utils
        let guess = spec
            .trim_end_matches('/')
            .trim_end_matches(".git")
            .rsplit('/')
            .next()
            .unwrap_or(&spec)
            .replace('-', "_");
        if !out.iter().any(|p| p.name == guess) {
            warnings.push(format!(
                "{file}: package '{spec}' is not installed and lakeq does not download packages: \
                 run `dbt deps` once, or check it out and list it as `local:`"
            ));
        }
    }
    for p in &out {
        let models = p.root.join("models");
        if models.is_dir() && std::fs::read_dir(&models).is_ok_and(|mut d| d.next().is_some()) {
            warnings.push(format!(
                "package '{}': its macros are used, its models are not built by lakeq",
                p.name
            ));
        }
    }
    Ok(out)
}

/// A package's name and macro folders from its `dbt_project.yml`.
fn read_package(root: &Path) -> std::result::Result<Package, String> {
    let path = root.join("dbt_project.yml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let yaml: Yaml =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = yaml
        .get("name")
        .and_then(Yaml::as_str)
        .ok_or_else(|| format!("{}: `name:` is missing", path.display()))?
        .to_string();
    let macro_paths = match yaml.get("macro-paths") {
        Some(Yaml::Sequence(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => vec!["macros".to_string()],
    };
    Ok(Package {
        name,
        root: root.to_path_buf(),
        macro_paths,
    })
}

/// dbt's default `generate_schema_name`: the target's schema, or
/// `<target schema>_<custom>` for a model with a custom `schema`.
pub fn generate_schema_name(target_schema: &str, custom: Option<&str>) -> String {
    match custom.map(str::trim) {
        None | Some("") => target_schema.to_string(),
        Some(c) => format!("{target_schema}_{c}"),
    }
}

/// The name DuckDB gives an attached DuckLake without `AS`: the file stem.
fn alias_of(catalog: &str) -> String {
    let path = catalog.strip_prefix("sqlite:").unwrap_or(catalog);
    Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ducklake".into())
}

fn yaml_text(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `profiles.yml`: in the project folder, else `$DBT_PROFILES_DIR`, else `~/.dbt`.
fn find_profiles(dir: &Path) -> Option<PathBuf> {
    let mut candidates = vec![dir.join("profiles.yml")];
    if let Ok(d) = std::env::var("DBT_PROFILES_DIR") {
        candidates.push(PathBuf::from(d).join("profiles.yml"));
    }
    if let Ok(home) = std::env::var("HOME") {
        candidates.push(PathBuf::from(home).join(".dbt").join("profiles.yml"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// `{{ env_var('NAME') }}` / `{{ env_var('NAME', 'default') }}` in `profiles.yml`.
fn render_env_vars(text: &str) -> std::result::Result<String, String> {
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    let mut env = minijinja::Environment::new();
    env.add_function(
        "env_var",
        |name: String, default: Option<String>| -> std::result::Result<String, minijinja::Error> {
            match (std::env::var(&name), default) {
                (Ok(v), _) => Ok(v),
                (Err(_), Some(d)) => Ok(d),
                (Err(_), None) => Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("env_var('{name}'): the environment variable is not set and no default is given"),
                )),
            }
        },
    );
    env.render_str(text, ()).map_err(|e| {
        e.detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string())
    })
}

fn invalid(path: &Path, reason: &dyn std::fmt::Display) -> Error {
    Error::Models(crate::error::ModelError::Project(format!(
        "{}: {reason}",
        path.display()
    )))
}

/// One resource's settings from a `dbt_project.yml` config tree: the `+key`
/// entries at the top, under the project name, under each folder of `folders`
/// and under the resource's own name, the most specific last (tags add up).
/// Keys are returned without their `+`.
pub fn tree_config(
    tree: &Yaml,
    project: &str,
    folders: &[&str],
    name: &str,
) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    let mut level = Some(tree);
    apply(tree, &mut out);
    level = level.and_then(|l| l.get(project));
    if let Some(l) = level {
        apply(l, &mut out);
    }
    for f in folders.iter().chain(std::iter::once(&name)) {
        level = level.and_then(|l| l.get(*f)).filter(|l| l.is_mapping());
        match level {
            Some(l) => apply(l, &mut out),
            None => break,
        }
    }
    out
}

fn apply(level: &Yaml, out: &mut BTreeMap<String, serde_json::Value>) {
    let Some(map) = level.as_mapping() else {
        return;
    };
    for (k, v) in map {
        let Some(k) = k.as_str() else { continue };
        let key = match k.strip_prefix('+') {
            Some(key) => key,
            // Without `+`: a config key unless it is a sub-folder (a map).
            None if v.is_mapping() && !MAP_VALUED_KEYS.contains(&k) => continue,
            None => k,
        };
        let key = key.replace('-', "_");
        let Ok(json) = serde_json::to_value(v) else {
            continue;
        };
        if matches!(key.as_str(), "tags" | "pre_hook" | "post_hook") {
            let entry = out
                .entry(key)
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
            let mut tags: Vec<serde_json::Value> = match entry.take() {
                serde_json::Value::Array(a) => a,
                other => vec![other],
            };
            match json {
                serde_json::Value::Array(a) => tags.extend(a),
                other => tags.push(other),
            }
            *entry = serde_json::Value::Array(tags);
        } else {
            out.insert(key, json);
        }
    }
}

/// Collect `warning` once into `seen`/`out`.
pub fn warn_once(seen: &mut BTreeSet<String>, out: &mut Vec<String>, warning: String) {
    if seen.insert(warning.clone()) {
        out.push(warning);
    }
}

/// The SQL templates of a hook setting: a text, a `{sql: ...}` map, or a list of those.
pub fn hooks(v: &serde_json::Value) -> Result<Vec<String>, String> {
    Ok(hook_entries(v)?.into_iter().map(|(sql, _)| sql).collect())
}

/// [`hooks`] with each hook's `transaction:` (true unless a map says `transaction: false`).
pub(crate) fn hook_entries(v: &serde_json::Value) -> Result<Vec<(String, bool)>, String> {
    match v {
        serde_json::Value::Null => Ok(Vec::new()),
        serde_json::Value::String(s) => Ok(vec![(s.clone(), true)]),
        serde_json::Value::Object(m) => {
            if let Some(k) = m
                .keys()
                .find(|k| !matches!(k.as_str(), "sql" | "transaction"))
            {
                return Err(format!(
                    "a hook map has `sql:` and `transaction:`, not `{k}:`"
                ));
            }
            let transaction = match m.get("transaction") {
                None | Some(serde_json::Value::Null) => true,
                Some(serde_json::Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(format!(
                        "a hook's transaction must be true or false, not {other}"
                    ));
                }
            };
            match m.get("sql") {
                Some(serde_json::Value::String(s)) => Ok(vec![(s.clone(), transaction)]),
                _ => Err("a hook map needs `sql: <statement>`".into()),
            }
        }
        serde_json::Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(hook_entries(item)?);
            }
            Ok(out)
        }
        other => Err(format!("a hook is SQL text or a list of it, not {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_tree_applies_the_most_specific_last() {
        let tree: Yaml = serde_yaml_ng::from_str(
            "+tags: [all]\nshop:\n  +materialized: view\n  marts:\n    +materialized: table\n    tags: mart\n    finance:\n      +schema: fin\n      +enabled: false\n  staging:\n    +docs: {show: false}\n",
        )
        .expect("yaml");
        let c = tree_config(&tree, "shop", &["marts", "finance"], "orders");
        assert_eq!(c["materialized"], serde_json::json!("table"));
        assert_eq!(c["schema"], serde_json::json!("fin"));
        assert_eq!(c["enabled"], serde_json::json!(false));
        assert_eq!(c["tags"], serde_json::json!(["all", "mart"]));
        let c = tree_config(&tree, "shop", &["staging"], "stg");
        assert_eq!(c["materialized"], serde_json::json!("view"));
        assert_eq!(c["docs"], serde_json::json!({"show": false}));
        // Another project's subtree does not apply.
        let c = tree_config(&tree, "other", &["marts"], "x");
        assert!(!c.contains_key("materialized"));
    }

    #[test]
    fn schema_names_follow_dbt() {
        assert_eq!(generate_schema_name("main", None), "main");
        assert_eq!(generate_schema_name("dbt_me", Some(" fin ")), "dbt_me_fin");
    }
}
