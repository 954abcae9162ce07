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

/// Select models: the union of `select` (all models when empty) minus `exclude`.
pub fn select_models(
    project: &Project,
    select: &[String],
    exclude: &[String],
) -> Result<BTreeSet<String>, ModelError> {
    let mut chosen = BTreeSet::new();
    if select.is_empty() {
        chosen.extend(project.models.keys().cloned());
    }
    for s in split(select) {
        chosen.extend(matching(project, &s)?);
    }
    for s in split(exclude) {
        for m in matching(project, &s)? {
            chosen.remove(&m);
        }
    }
    Ok(chosen)
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
    } else {
        project.model(core)?;
        BTreeSet::from([core.to_string()])
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
