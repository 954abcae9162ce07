//! The model DAG: run order, cycle detection and node selection
//! (`-s name`, `+name`, `name+`, `tag:t`, `path:models/marts`, `--exclude`).

use std::collections::{BTreeMap, BTreeSet};

use super::{ModelError, Project};

/// Nodes in dependency order (parents first); a cycle is an error listing it.
/// `deps` maps every node to its parents.
pub fn topological_order(deps: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>, ModelError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        node: &str,
        deps: &BTreeMap<String, Vec<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<(), ModelError> {
        match marks.get(node) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                let start = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle: Vec<String> = stack.iter().skip(start).cloned().collect();
                cycle.push(node.to_string());
                return Err(ModelError::Cycle(cycle));
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Visiting);
        stack.push(node.to_string());
        for parent in deps.get(node).map(Vec::as_slice).unwrap_or_default() {
            if deps.contains_key(parent) {
                visit(parent, deps, marks, stack, out)?;
            }
        }
        stack.pop();
        marks.insert(node.to_string(), Mark::Done);
        out.push(node.to_string());
        Ok(())
    }
    let mut marks = BTreeMap::new();
    let mut out = Vec::new();
    for node in deps.keys() {
        visit(node, deps, &mut marks, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

/// Select models and seeds: the union of `select` (all when empty) minus `exclude`.
/// A selector that matches nothing is an error in a lakeq project; in a dbt
/// project it is a warning (returned), as in dbt.
pub fn select_nodes(
    project: &Project,
    select: &[String],
    exclude: &[String],
) -> Result<(BTreeSet<String>, Vec<String>), ModelError> {
    let mut chosen = BTreeSet::new();
    let mut warnings = Vec::new();
    if select.is_empty() {
        chosen.extend(project.models.keys().cloned());
        chosen.extend(project.seeds.keys().cloned());
    }
    let mut matched = |s: &str| -> Result<BTreeSet<String>, ModelError> {
        match matching(project, s) {
            Err(e) if project.config.dbt.is_some() => {
                warnings.push(format!(
                    "the selection criterion '{s}' does not match any enabled nodes ({e})"
                ));
                Ok(BTreeSet::new())
            }
            other => other,
        }
    };
    for s in split(select) {
        chosen.extend(matched(&s)?);
    }
    for s in split(exclude) {
        for m in matched(&s)? {
            chosen.remove(&m);
        }
    }
    Ok((chosen, warnings))
}

/// [`select_nodes`] without the warnings.
pub fn select_models(
    project: &Project,
    select: &[String],
    exclude: &[String],
) -> Result<BTreeSet<String>, ModelError> {
    Ok(select_nodes(project, select, exclude)?.0)
}

/// Selector arguments may hold several space-separated selectors.
fn split(args: &[String]) -> Vec<String> {
    args.iter()
        .flat_map(|a| a.split_whitespace().map(str::to_string))
        .collect()
}

/// The models one selector matches, with its `+` ancestors/descendants.
fn matching(project: &Project, selector: &str) -> Result<BTreeSet<String>, ModelError> {
    let ancestors = selector.starts_with('+');
    let descendants = selector.ends_with('+') && selector.len() > 1;
    let core = selector.trim_start_matches('+').trim_end_matches('+');
    let base: BTreeSet<String> = if let Some(tag) = core.strip_prefix("tag:") {
        project
            .models
            .values()
            .filter(|m| m.config.tags.iter().any(|t| t == tag))
            .map(|m| m.name.clone())
            .collect()
    } else if let Some(path) = core.strip_prefix("path:") {
        let path = path.trim_end_matches('/');
        project
            .models
            .values()
            .filter(|m| m.path == path || m.path.starts_with(&format!("{path}/")))
            .map(|m| m.name.clone())
            .collect()
    } else if project.models.contains_key(core) || project.is_seed(core) {
        BTreeSet::from([core.to_string()])
    } else {
        // dbt's default (fqn) method: `staging` or `marts.finance` selects the
        // models under that folder; the project name selects them all.
        let parts: Vec<&str> = core.split('.').collect();
        let project_name = &project.config.project.name;
        let found: BTreeSet<String> = project
            .models
            .values()
            .filter(|m| {
                let mut fqn: Vec<&str> = m.folder.split('/').filter(|p| !p.is_empty()).collect();
                fqn.push(&m.name);
                fqn.starts_with(&parts)
                    || (parts.first() == Some(&project_name.as_str())
                        && fqn.starts_with(parts.get(1..).unwrap_or_default()))
            })
            .map(|m| m.name.clone())
            .collect();
        if found.is_empty() {
            project.model(core)?;
        }
        found
    };
    if base.is_empty() {
        return Err(ModelError::Selection(format!(
            "selector '{selector}' matches no model"
        )));
    }
    let mut out = base.clone();
    if ancestors {
        for m in &base {
            out.extend(upstream(project, m));
        }
    }
    if descendants {
        for m in &base {
            out.extend(downstream(project, m));
        }
    }
    Ok(out)
}

/// Every model `name` depends on, transitively.
pub fn upstream(project: &Project, name: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(n) = todo.pop() {
        if let Some(m) = project.models.get(&n) {
            for r in &m.refs {
                if out.insert(r.clone()) {
                    todo.push(r.clone());
                }
            }
        }
    }
    out
}

/// Every model that depends on `name`, transitively.
pub fn downstream(project: &Project, name: &str) -> BTreeSet<String> {
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in project.models.values() {
        for r in &m.refs {
            children
                .entry(r.as_str())
                .or_default()
                .push(m.name.as_str());
        }
    }
    let mut out = BTreeSet::new();
    let mut todo = vec![name];
    while let Some(n) = todo.pop() {
        for c in children.get(n).map(Vec::as_slice).unwrap_or_default() {
            if out.insert(c.to_string()) {
                todo.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(edges: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(n, ps)| (n.to_string(), ps.iter().map(|p| p.to_string()).collect()))
            .collect()
    }

    #[test]
    fn orders_parents_first() {
        let order = topological_order(&deps(&[("c", &["b"]), ("b", &["a"]), ("a", &[])]))
            .expect("no cycle");
        assert_eq!(order, vec!["a", "b", "c"]);
    }

    #[test]
    fn reports_the_cycle() {
        let err = topological_order(&deps(&[
            ("a", &["c"]),
            ("b", &["a"]),
            ("c", &["b"]),
            ("d", &[]),
        ]))
        .expect_err("cycle");
        assert_eq!(err.to_string(), "the models form a cycle: a -> c -> b -> a");
    }
}
