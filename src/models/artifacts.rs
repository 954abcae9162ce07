//! dbt-style artifacts in `<project>/target/`: `manifest.json` (nodes, their
//! dependencies and compiled SQL) and `run_results.json` (status, timing and
//! rows per node), so tooling habits carry over.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Project;
use super::run::NodeResult;
use crate::error::Result;

fn metadata(project: &Project) -> Value {
    json!({
        "lakeq_version": env!("CARGO_PKG_VERSION"),
        "project_name": project.config.project.name,
        "target": project.target,
        "target_lake": project.target_lake,
        "generated_at": chrono::Utc::now().to_rfc3339(),
    })
}

/// dbt's unique id of a model, snapshot or seed: `<resource type>.<project>.<name>`.
fn node_id(project: &Project, name: &str) -> String {
    let kind = match project.models.get(name) {
        Some(m) => m.resource_type(),
        None if project.is_seed(name) => "seed",
        None => "model",
    };
    format!("{kind}.{}.{name}", project.config.project.name)
}

/// The manifest: every model and snapshot (with compiled SQL), source and test.
pub fn manifest(project: &Project) -> Value {
    let name = &project.config.project.name;
    let mut nodes = serde_json::Map::new();
    for m in project.models.values() {
        let compiled = project.compile(&m.name, false).ok();
        nodes.insert(
            format!("{}.{name}.{}", m.resource_type(), m.name),
            json!({
                "resource_type": m.resource_type(),
                "name": m.name,
                "original_file_path": m.path,
                "description": m.description,
                "columns": m.columns,
                "config": m.config,
                "relation_name": m.relation,
                "depends_on": {
                    "nodes": m.refs.iter().map(|r| node_id(project, r)).collect::<Vec<_>>(),
                    "sources": m.sources.iter().map(|(s, t)| format!("source.{name}.{s}.{t}")).collect::<Vec<_>>(),
                },
                "raw_code": m.raw_sql,
                "compiled_code": compiled,
            }),
        );
    }
    for s in project.seeds.values() {
        nodes.insert(
            format!("seed.{name}.{}", s.name),
            json!({
                "resource_type": "seed",
                "name": s.name,
                "original_file_path": s.path,
                "description": s.description,
                "config": s.config,
                "relation_name": s.relation,
                "checksum": super::graph::checksum(&s.text),
            }),
        );
    }
    for t in &project.tests {
        nodes.insert(
            format!("test.{name}.{}", t.def.name),
            json!({
                "resource_type": "test",
                "name": t.def.name,
                "original_file_path": t.def.path,
                "test": t.def.kind,
                "column_name": t.def.column,
                "attached_node": t.def.model.as_ref().map(|m| node_id(project, m)),
                "depends_on": {
                    "nodes": t.depends_on.iter().map(|r| node_id(project, r)).collect::<Vec<_>>(),
                },
                "compiled_code": project.compile_test(t).ok(),
            }),
        );
    }
    let sources: serde_json::Map<String, Value> = project
        .files
        .sources
        .values()
        .map(|s| (format!("source.{name}.{}.{}", s.source, s.name), json!(s)))
        .collect();
    json!({ "metadata": metadata(project), "nodes": nodes, "sources": sources })
}

/// `run_results.json` for one run.
pub fn run_results(project: &Project, results: &[NodeResult], elapsed: f64) -> Value {
    json!({
        "metadata": metadata(project),
        "elapsed_time": elapsed,
        "results": results,
    })
}

/// The artifact folder of a project.
pub fn target_dir(project: &Project) -> PathBuf {
    project.files.root.join("target")
}

/// Write `value` as pretty JSON to `<project>/target/<file>`.
pub fn write(project: &Project, file: &str, value: &Value) -> Result<PathBuf> {
    let dir = target_dir(project);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(file);
    write_atomically(
        &path,
        &serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?,
    )?;
    Ok(path)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
