//! Project configuration: `lakeq.toml` in the project folder, with `${VAR}`
//! interpolation from the environment and a `.env` file. Without a `lakeq.toml`
//! lakeq uses the **embedded default**: everything under `./lake/` (SQLite
//! catalogs `lake/<name>.sqlite`, data in `lake/<name>/`, landing zone
//! `lake/landing/`).
//!
//! ```toml
//! landing = "s3://my-bucket/landing"          # or a local folder
//!
//! [lakes.raw]
//! catalog = "ducklake:postgres:dbname=lake host=127.0.0.1"
//! metadata_schema = "raw"
//! data_path = "s3://my-bucket/lake/raw/"
//! ```

pub mod dbt;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::lake::LakeOptions;

/// One lake of the project.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// The ATTACH location, e.g. `ducklake:sqlite:lake/raw.sqlite`.
    pub catalog: String,
    /// The data path (local folder or `s3://...`).
    pub data_path: String,
    /// PostgreSQL schema of the catalog tables.
    pub metadata_schema: Option<String>,
}

impl LakeConfig {
    /// The lake's ATTACH options.
    pub fn options(&self) -> LakeOptions {
        LakeOptions {
            data_path: Some(self.data_path.clone()),
            metadata_schema: self.metadata_schema.clone(),
            ..LakeOptions::default()
        }
    }
}

/// `lakeq.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The landing zone (local folder or `s3://bucket/prefix`).
    #[serde(default = "default_landing")]
    pub landing: String,
    /// Lakes by name (`raw`, `dev_analytics`, ...).
    #[serde(default)]
    pub lakes: BTreeMap<String, LakeConfig>,
    /// The SQL model project (`[project]`).
    #[serde(default)]
    pub project: ProjectConfig,
    /// Targets by name (`[targets.dev] lake = "dev_analytics"`).
    #[serde(default)]
    pub targets: BTreeMap<String, TargetConfig>,
    /// Defaults for the models under a folder, keyed by the folder relative to
    /// the models folder (`[models.staging] materialized = "view"`).
    #[serde(default)]
    pub models: BTreeMap<String, FolderConfig>,
    /// Project variables for `{{ var('name') }}`.
    #[serde(default)]
    pub vars: BTreeMap<String, toml::Value>,
    /// How `lakeq maintain` and `lakeq run` keep the lakes small (`[maintenance]`).
    #[serde(default)]
    pub maintenance: crate::session::maintain::MaintenancePolicy,
    /// The memory pool of a model run's query operators (`memory_limit = "1GiB"`,
    /// `"none"` for no limit); see [`Config::memory_limit`].
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// Workers `lakeq sql` runs queries on (`[cluster] workers = ["host:port"]`);
    /// `--workers` overrides it.
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// Where the file was read from (`None` = embedded default).
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// The dbt project of the folder (`dbt_project.yml`), if there is one: it
    /// sets `[project]`, and its profile's lakes and targets are added.
    #[serde(skip)]
    pub dbt: Option<dbt::DbtProject>,
}

/// `[cluster]`: the workers of distributed queries (see [`crate::distributed`]).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Worker addresses, `host:port`.
    #[serde(default)]
    pub workers: Vec<String>,
    /// Bytes of Parquet per scan task (see
    /// [`crate::distributed::ClusterOptions::bytes_per_task`]).
    #[serde(default)]
    pub bytes_per_task: Option<usize>,
}

/// `[project]`: where the models are and which target runs by default.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Project name (shown in artifacts).
    #[serde(default = "default_project_name")]
    pub name: String,
    /// Folder of the SQL models, relative to the project folder.
    #[serde(default = "default_models_dir")]
    pub models: String,
    /// Folder of singular data tests (`*.sql` returning failing rows).
    #[serde(default = "default_tests_dir")]
    pub tests: String,
    /// Folder of seeds (`*.csv` loaded by `lakeq seed`).
    #[serde(default = "default_seeds_dir")]
    pub seeds: String,
    /// Folder of Jinja macros (`*.sql` holding `{% macro %}` blocks).
    #[serde(default = "default_macros_dir")]
    pub macros: String,
    /// The target used when `--target` is not given.
    #[serde(default = "default_target")]
    pub target: String,
}

impl Default for ProjectConfig {
    fn default() -> Self {
        Self {
            name: default_project_name(),
            models: default_models_dir(),
            tests: default_tests_dir(),
            seeds: default_seeds_dir(),
            macros: default_macros_dir(),
            target: default_target(),
        }
    }
}

fn default_project_name() -> String {
    "lakeq".into()
}
fn default_models_dir() -> String {
    "models".into()
}
fn default_tests_dir() -> String {
    "tests".into()
}
fn default_seeds_dir() -> String {
    "seeds".into()
}
fn default_macros_dir() -> String {
    "macros".into()
}
fn default_target() -> String {
    "dev".into()
}

/// `[targets.<name>]`: the lake a target writes its models into.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Name of the lake (a `[lakes.<name>]` entry or an embedded default lake).
    pub lake: String,
}

/// `[models.<folder>]`: defaults for the models in a folder (the most specific
/// folder wins; a model's own `config(...)` wins over all).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FolderConfig {
    /// `view`, `table`, `incremental` or `ephemeral`.
    pub materialized: Option<String>,
    /// Schema of the target lake the models go to.
    pub schema: Option<String>,
    /// Tags added to the models.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Whether the models are built at all.
    pub enabled: Option<bool>,
}

fn default_landing() -> String {
    "lake/landing".into()
}

/// The embedded default's lake `name`: `lake/<name>.sqlite` + `lake/<name>/`.
pub fn embedded_lake(root: &Path, name: &str) -> LakeConfig {
    let root = clean_root(root);
    LakeConfig {
        catalog: format!(
            "ducklake:sqlite:{}",
            root.join("lake").join(format!("{name}.sqlite")).display()
        ),
        data_path: format!("{}/", root.join("lake").join(name).display()),
        metadata_schema: None,
    }
}

/// `root` as an absolute path without `.` segments, so the data path of an
/// embedded lake is spelled the same whichever way the project folder was given.
fn clean_root(root: &Path) -> PathBuf {
    let absolute = if root.is_absolute() {
        root.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(root))
            .unwrap_or_else(|_| root.to_path_buf())
    };
    absolute
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

impl Config {
    /// Load `<dir>/lakeq.toml` (and `<dir>/.env`), or the embedded default.
    pub fn load(dir: &Path) -> Result<Self> {
        let env_file = load_dotenv(&dir.join(".env"))?;
        let path = dir.join("lakeq.toml");
        let mut config = if path.exists() {
            let text = std::fs::read_to_string(&path)?;
            let text = interpolate(&text, &env_file).map_err(|e| invalid(&path, &e))?;
            let mut c: Config =
                toml::from_str(&text).map_err(|e| invalid(&path, &e.to_string()))?;
            c.source = Some(path);
            c
        } else {
            Config {
                landing: clean_root(dir)
                    .join("lake")
                    .join("landing")
                    .display()
                    .to_string(),
                lakes: BTreeMap::new(),
                project: ProjectConfig::default(),
                targets: BTreeMap::new(),
                models: BTreeMap::new(),
                vars: BTreeMap::new(),
                maintenance: crate::session::maintain::MaintenancePolicy::default(),
                memory_limit: None,
                cluster: ClusterConfig::default(),
                source: None,
                dbt: None,
            }
        };
        let mut profile_target = None;
        if let Some(dbt) = dbt::DbtProject::load(
            dir,
            &mut config.lakes,
            &mut config.targets,
            &mut profile_target,
        )? {
            config.project.name = dbt.name.clone();
            let first = |paths: &[String], default: &str| {
                paths
                    .first()
                    .cloned()
                    .unwrap_or_else(|| default.to_string())
            };
            config.project.models = first(&dbt.model_paths, "models");
            config.project.tests = first(&dbt.test_paths, "tests");
            config.project.seeds = first(&dbt.seed_paths, "seeds");
            config.project.macros = first(&dbt.macro_paths, "macros");
            if let Some(t) = profile_target {
                config.project.target = t;
            }
            config.dbt = Some(dbt);
        }
        if !config.landing.contains("://") && !Path::new(&config.landing).is_absolute() {
            config.landing = clean_root(dir).join(&config.landing).display().to_string();
        }
        config.resolve_lake_paths(dir);
        Ok(config)
    }

    /// Make the relative SQLite catalog files and local data paths of the
    /// configured lakes relative to the project folder `dir` (not to the folder
    /// lakeq happens to run in).
    pub fn resolve_lake_paths(&mut self, dir: &Path) {
        let root = clean_root(dir);
        for lake in self.lakes.values_mut() {
            if let Some(path) = lake.catalog.strip_prefix("ducklake:sqlite:")
                && !path.trim().is_empty()
                && path != ":memory:"
                && !Path::new(path).is_absolute()
            {
                lake.catalog = format!("ducklake:sqlite:{}", root.join(path).display());
            }
            if !lake.data_path.contains("://")
                && !lake.data_path.is_empty()
                && !Path::new(&lake.data_path).is_absolute()
            {
                let trailing = if lake.data_path.ends_with('/') {
                    "/"
                } else {
                    ""
                };
                let joined = root.join(lake.data_path.trim_end_matches('/'));
                lake.data_path = format!("{}{trailing}", joined.display());
            }
        }
    }

    /// The lake a target writes to: `[targets.<t>] lake`, or `<t>_analytics`
    /// for an unconfigured target (`dev` writes `dev_analytics`).
    pub fn target_lake(&self, target: &str) -> String {
        self.targets
            .get(target)
            .map(|t| t.lake.clone())
            .unwrap_or_else(|| format!("{target}_analytics"))
    }

    /// The lake called `name`: configured, or the embedded default's.
    pub fn lake(&self, name: &str, dir: &Path) -> LakeConfig {
        self.lakes
            .get(name)
            .cloned()
            .unwrap_or_else(|| embedded_lake(dir, name))
    }
}

/// The memory pool of model runs when neither `LAKEQ_MEMORY_LIMIT` nor
/// `lakeq.toml` sets one: 512 MiB, or a quarter of the machine's memory when
/// that is less. Sorts, aggregations and joins that outgrow it spill to disk
/// where DataFusion can spill them, or fail naming the model.
pub fn default_memory_limit() -> usize {
    const CAP: usize = 512 << 20;
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        });
    total.map_or(CAP, |t| CAP.min(t / 4))
}

/// Parse a memory limit: bytes with an optional unit (`512MiB`, `1GiB`), or
/// `none` (no limit).
pub fn parse_memory_limit(text: &str, from: &str) -> Result<Option<usize>> {
    if matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "none" | "unlimited"
    ) {
        return Ok(None);
    }
    match crate::session::parse_bytes(text) {
        Some(bytes) if bytes > 0 => Ok(Some(bytes)),
        _ => Err(Error::InvalidLocation {
            location: from.to_string(),
            reason: format!(
                "memory limit '{text}' is not a size such as '512MiB' or '1GiB' (or 'none')"
            ),
        }),
    }
}

impl Config {
    /// The memory pool of a project's runs: `memory_limit` in `lakeq.toml`,
    /// else [`default_memory_limit`]. `None`: no limit (`"none"`). (The `lakeq`
    /// binary lets `LAKEQ_MEMORY_LIMIT` override it; the library reads no
    /// environment.)
    pub fn memory_limit(&self) -> Result<Option<usize>> {
        match &self.memory_limit {
            Some(text) => {
                let from = self
                    .source
                    .as_ref()
                    .map_or("lakeq.toml".to_string(), |p| p.display().to_string());
                parse_memory_limit(text, &format!("{from}: memory_limit"))
            }
            None => Ok(Some(default_memory_limit())),
        }
    }
}

fn invalid(path: &Path, reason: &str) -> Error {
    Error::InvalidLocation {
        location: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Read `KEY=VALUE` lines of a `.env` file (missing file = empty).
fn load_dotenv(path: &Path) -> Result<BTreeMap<String, String>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().trim_matches('"').trim_matches('\'');
            out.insert(k.trim().to_string(), v.to_string());
        }
    }
    Ok(out)
}

/// Replace `${VAR}` with the environment's value (then the `.env` file's);
/// comment lines are left as they are.
fn interpolate(
    text: &str,
    env_file: &BTreeMap<String, String>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            out.push_str(&interpolate_line(line, env_file)?);
        }
    }
    Ok(out)
}

fn interpolate_line(
    text: &str,
    env_file: &BTreeMap<String, String>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((before, after)) = rest.split_once("${") {
        out.push_str(before);
        let (name, after) = after
            .split_once('}')
            .ok_or("unterminated ${ in lakeq.toml")?;
        let value = std::env::var(name)
            .ok()
            .or_else(|| env_file.get(name).cloned())
            .ok_or_else(|| format!("${{{name}}} is not set in the environment or .env"))?;
        out.push_str(&value);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limits_parse_or_name_where_they_came_from() -> Result<()> {
        assert_eq!(parse_memory_limit("512MiB", "x")?, Some(512 << 20));
        assert_eq!(parse_memory_limit("2GiB", "x")?, Some(2 << 30));
        assert_eq!(parse_memory_limit("none", "x")?, None);
        for bad in ["", "0", "lots", "1.5GiB", "-1GiB"] {
            let err = parse_memory_limit(bad, "lakeq.toml: memory_limit");
            let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                msg.contains("lakeq.toml: memory_limit") && msg.contains("memory limit"),
                "{bad}: {msg}"
            );
        }
        let default = default_memory_limit();
        assert!(default > 0 && default <= 512 << 20);
        Ok(())
    }

    #[test]
    fn interpolates_env_and_dotenv() {
        let env: BTreeMap<String, String> =
            [("LAKEQ_TEST_BUCKET".to_string(), "b1".to_string())].into();
        assert_eq!(
            interpolate("landing = \"s3://${LAKEQ_TEST_BUCKET}/x\"", &env).as_deref(),
            Ok("landing = \"s3://b1/x\"")
        );
        assert!(interpolate("x = \"${LAKEQ_SURELY_UNSET_VAR}\"", &BTreeMap::new()).is_err());
        let commented = "# catalog = \"${LAKEQ_SURELY_UNSET_VAR}\"\nx = 1\n";
        assert_eq!(
            interpolate(commented, &BTreeMap::new()).as_deref(),
            Ok(commented)
        );
    }

    #[test]
    fn parses_lakes() {
        let c: Config = toml::from_str(
            "landing = \"s3://b/landing\"\n[lakes.raw]\ncatalog = \"ducklake:postgres:dbname=x\"\ndata_path = \"s3://b/raw/\"\nmetadata_schema = \"raw\"\n",
        )
        .expect("parse");
        assert_eq!(c.lakes["raw"].metadata_schema.as_deref(), Some("raw"));
        assert!(toml::from_str::<Config>("bogus = 1").is_err());
    }
}
