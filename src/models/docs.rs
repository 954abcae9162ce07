//! `lakeq docs generate`: dbt's documentation artifacts for a project.
//!
//! - `target/catalog.json` in dbt's catalog shape: for every model, seed,
//!   snapshot and source that exists in a lake, its type (`BASE TABLE` or
//!   `VIEW`), lake, schema and name, and its columns with DuckDB's type names
//!   and positions — read from the lakes' `information_schema`, as
//!   dbt-duckdb reads DuckDB's;
//! - `target/manifest.json` ([`super::artifacts::manifest`]);
//! - `target/index.html`: one self-contained page (the two artifacts are
//!   embedded, so it opens from disk as well as from `lakeq docs serve`) with
//!   the nodes, their descriptions, columns, tests and SQL, and the DAG.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Project;
use crate::dialect::render::value_text;
use crate::error::Result;
use crate::session::Session;
use crate::store::quote_text;

/// The nodes the catalog describes: (unique id, lake, schema, name).
fn catalog_nodes(project: &Project) -> Vec<(String, String, String, String)> {
    let name = &project.config.project.name;
    let mut nodes = Vec::new();
    let mut push = |id: String, relation: &str| {
        if let Some((lake, schema, name)) = super::split_relation(relation) {
            nodes.push((id, lake, schema, name));
        }
    };
    for m in project.models.values() {
        if m.config.materialized != super::Materialized::Ephemeral {
            push(
                format!("{}.{name}.{}", m.resource_type(), m.name),
                &m.relation,
            );
        }
    }
    for s in project.seeds.values() {
        push(format!("seed.{name}.{}", s.name), &s.relation);
    }
    for s in project.files.sources.values() {
        nodes.push((
            format!("source.{name}.{}.{}", s.source, s.name),
            s.lake.clone(),
            s.schema.clone(),
            s.identifier.clone(),
        ));
    }
    nodes
}

/// dbt's `catalog.json`: every node of the project that exists in a lake, with
/// its columns as the lake has them. Nodes not built yet are left out, as in
/// dbt.
pub async fn catalog(project: &Project, session: &Session) -> Result<Value> {
    let wanted = catalog_nodes(project);
    let mut lakes: Vec<&str> = wanted.iter().map(|(_, lake, _, _)| lake.as_str()).collect();
    lakes.sort_unstable();
    lakes.dedup();
    // (lake, schema, name) -> (type, columns)
    type Columns = Vec<(String, String)>;
    let mut found: BTreeMap<(String, String, String), (String, Columns)> = BTreeMap::new();
    for lake in lakes.into_iter().filter(|l| session.lake(l).is_ok()) {
        let tables = session
            .sql(&format!(
                "SELECT table_schema, table_name, table_type FROM information_schema.tables \
                 WHERE table_catalog = {}",
                quote_text(lake)
            ))
            .await?;
        for batch in &tables {
            for row in 0..batch.num_rows() {
                let cell = |c: usize| value_text(batch.column(c).as_ref(), row).unwrap_or_default();
                found.insert((lake.to_string(), cell(0), cell(1)), (cell(2), Vec::new()));
            }
        }
        let columns = session
            .sql(&format!(
                "SELECT table_schema, table_name, column_name, data_type \
                 FROM information_schema.columns WHERE table_catalog = {} \
                 ORDER BY table_schema, table_name, ordinal_position",
                quote_text(lake)
            ))
            .await?;
        for batch in &columns {
            for row in 0..batch.num_rows() {
                let cell = |c: usize| value_text(batch.column(c).as_ref(), row).unwrap_or_default();
                if let Some((_, cols)) = found.get_mut(&(lake.to_string(), cell(0), cell(1))) {
                    cols.push((cell(2), cell(3)));
                }
            }
        }
    }
    let mut nodes = serde_json::Map::new();
    let mut sources = serde_json::Map::new();
    for (id, lake, schema, name) in wanted {
        let Some((kind, columns)) = found.get(&(lake.clone(), schema.clone(), name.clone())) else {
            continue;
        };
        let columns: serde_json::Map<String, Value> = columns
            .iter()
            .enumerate()
            .map(|(i, (column, ty))| {
                (
                    column.clone(),
                    json!({ "type": ty, "index": i + 1, "name": column, "comment": null }),
                )
            })
            .collect();
        let entry = json!({
            "metadata": {
                "type": kind, "schema": schema, "name": name, "database": lake,
                "comment": null, "owner": null,
            },
            "columns": columns,
            "stats": { "has_stats": {
                "id": "has_stats", "label": "Has Stats?", "value": false, "include": false,
                "description": "Indicates whether there are statistics for this table",
            }},
            "unique_id": id,
        });
        if id.starts_with("source.") {
            sources.insert(id, entry);
        } else {
            nodes.insert(id, entry);
        }
    }
    Ok(json!({
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/catalog/v1.json",
            "lakeq_version": env!("CARGO_PKG_VERSION"),
            "generated_at": chrono::Utc::now().to_rfc3339(),
            "env": {},
        },
        "nodes": nodes,
        "sources": sources,
        "errors": null,
    }))
}

/// The documentation page: `index.html` with the manifest and catalog
/// embedded, rendered in the browser by a small script (no network, no
/// external files).
pub fn index_html(title: &str, manifest: &Value, catalog: &Value) -> Result<String> {
    let data = json!({ "manifest": manifest, "catalog": catalog });
    let data = serde_json::to_string(&data).map_err(std::io::Error::other)?;
    // Inside <script>, "</" would end the element: JSON allows "<\/".
    let data = data.replace("</", "<\\/");
    Ok(PAGE
        .replace("{{TITLE}}", &html_escape(title))
        .replace("{{DATA}}", &data))
}

/// `s` with HTML's special characters escaped.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page template: `{{TITLE}}` and `{{DATA}}` are filled in.
const PAGE: &str = include_str!("docs_page.html");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_data_cannot_close_the_script_element() {
        let manifest = json!({ "nodes": { "model.x.y": { "raw_code": "select '</script><b>'" } } });
        let page = index_html("a<b", &manifest, &json!({})).expect("page");
        assert_eq!(
            page.matches("</script>").count(),
            PAGE.matches("</script>").count()
        );
        assert!(page.contains("<\\/script><b>"));
        assert!(page.contains("<title>a&lt;b"));
    }
}
