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
        if s.trim_start_matches('+').starts_with("state:") && project.state.is_none() {
            // As in dbt: a state selector without a manifest to compare with is an error.
            return Err(ModelError::Selection(format!(
                "'{s}' compares with an earlier run: give --state <folder holding its manifest.json>"
            )));
        }
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

/// Select as dbt does with `selectors.yml`: `--selector NAME` uses that
/// selector's definition (`--select`/`--exclude` are then ignored, as in dbt,
/// with a warning); without any of the three, the selector marked `default:
/// true` is used if there is one; otherwise [`select_nodes`].
pub fn select_nodes_with_selector(
    project: &Project,
    selector: Option<&str>,
    select: &[String],
    exclude: &[String],
) -> Result<(BTreeSet<String>, Vec<String>), ModelError> {
    let selectors = Selectors::load(&project.files.root)?;
    let mut warnings = Vec::new();
    let name = match selector {
        Some(name) => {
            if !select.is_empty() || !exclude.is_empty() {
                warnings.push(format!(
                    "--selector {name} is used; --select and --exclude are ignored, as in dbt"
                ));
            }
            Some(name.to_string())
        }
        None if select.is_empty() && exclude.is_empty() => selectors
            .as_ref()
            .and_then(|s| s.default.clone())
            .inspect(|d| {
                warnings.push(format!("using the default selector '{d}' of selectors.yml"))
            }),
        None => None,
    };
    let Some(name) = name else {
        return select_nodes(project, select, exclude);
    };
    let Some(selectors) = selectors else {
        return Err(ModelError::Selection(format!(
            "--selector {name}: there is no selectors.yml in {}",
            project.files.root.display()
        )));
    };
    let definition = selectors.definitions.get(&name).ok_or_else(|| {
        let known: Vec<String> = selectors.definitions.keys().cloned().collect();
        ModelError::Selection(format!(
            "selectors.yml has no selector '{name}'{}",
            super::jinja::did_you_mean(&name, &known)
        ))
    })?;
    let mut eval = SelectorEval {
        project,
        selectors: &selectors,
        warnings: &mut warnings,
        using: vec![name.clone()],
    };
    let chosen = eval.definition(definition, &name)?;
    Ok((chosen, warnings))
}

/// The selectors of `selectors.yml`: definitions by name, and the default one.
struct Selectors {
    definitions: BTreeMap<String, serde_yaml_ng::Value>,
    /// Names in file order (a `method: selector` may name only earlier ones, as in dbt).
    order: Vec<String>,
    default: Option<String>,
}

impl Selectors {
    fn load(root: &std::path::Path) -> Result<Option<Self>, ModelError> {
        let path = root.join("selectors.yml");
        if !path.is_file() {
            return Ok(None);
        }
        let bad = |m: String| ModelError::Project(format!("selectors.yml: {m}"));
        let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let Some(serde_yaml_ng::Value::Sequence(items)) = yaml.get("selectors") else {
            return Err(bad("expected `selectors:` with a list of selectors".into()));
        };
        let mut out = Selectors {
            definitions: BTreeMap::new(),
            order: Vec::new(),
            default: None,
        };
        for item in items {
            let name = item
                .get("name")
                .and_then(serde_yaml_ng::Value::as_str)
                .ok_or_else(|| bad("a selector has no `name:`".into()))?
                .to_string();
            let definition = item
                .get("definition")
                .cloned()
                .ok_or_else(|| bad(format!("selector '{name}' has no `definition:`")))?;
            if let Some(m) = definition.as_mapping()
                && m.len() > 1
                && (definition.get("union").is_some() || definition.get("intersection").is_some())
            {
                return Err(bad(format!(
                    "selector '{name}': only a single 'union' or 'intersection' key is allowed at the top of a definition"
                )));
            }
            if item
                .get("default")
                .is_some_and(|d| d.as_bool() == Some(true))
            {
                if let Some(other) = &out.default {
                    return Err(bad(format!(
                        "selectors '{other}' and '{name}' are both `default: true`"
                    )));
                }
                out.default = Some(name.clone());
            }
            if out.definitions.insert(name.clone(), definition).is_some() {
                return Err(bad(format!("two selectors are called '{name}'")));
            }
            out.order.push(name);
        }
        Ok(Some(out))
    }
}

/// Evaluates one selector definition (dbt's `parse_from_definition`).
struct SelectorEval<'a> {
    project: &'a Project,
    selectors: &'a Selectors,
    warnings: &'a mut Vec<String>,
    /// The selectors being evaluated (the outermost first), for `method: selector`.
    using: Vec<String>,
}

impl SelectorEval<'_> {
    fn bad(&self, name: &str, message: String) -> ModelError {
        ModelError::Project(format!("selectors.yml: selector '{name}': {message}"))
    }

    /// A definition: a CLI-style string, `union:`/`intersection:` lists, or one criterion.
    fn definition(
        &mut self,
        definition: &serde_yaml_ng::Value,
        name: &str,
    ) -> Result<BTreeSet<String>, ModelError> {
        use serde_yaml_ng::Value as Y;
        match definition {
            Y::String(spec) => self.spec(spec),
            Y::Mapping(_) if definition.get("union").is_some() => {
                let (parts, excluded) = self.parts(definition.get("union"), name)?;
                let mut out: BTreeSet<String> = parts.into_iter().flatten().collect();
                out.retain(|n| !excluded.contains(n));
                Ok(out)
            }
            Y::Mapping(_) if definition.get("intersection").is_some() => {
                let (parts, excluded) = self.parts(definition.get("intersection"), name)?;
                let mut iter = parts.into_iter();
                let mut out = iter.next().unwrap_or_default();
                for p in iter {
                    out.retain(|n| p.contains(n));
                }
                out.retain(|n| !excluded.contains(n));
                Ok(out)
            }
            Y::Mapping(m) => self.criterion(m, name),
            other => Err(self.bad(
                name,
                format!("expected union, intersection, text or a map, not {other:?}"),
            )),
        }
    }

    /// The members of a `union:`/`intersection:` list and what its `exclude:` entry removes.
    fn parts(
        &mut self,
        list: Option<&serde_yaml_ng::Value>,
        name: &str,
    ) -> Result<(Vec<BTreeSet<String>>, BTreeSet<String>), ModelError> {
        let Some(serde_yaml_ng::Value::Sequence(items)) = list else {
            return Err(self.bad(name, "union and intersection take a list".into()));
        };
        let mut parts = Vec::new();
        let mut excluded: Option<BTreeSet<String>> = None;
        self.collect_parts(items, name, &mut parts, &mut excluded)?;
        Ok((parts, excluded.unwrap_or_default()))
    }

    fn collect_parts(
        &mut self,
        items: &[serde_yaml_ng::Value],
        name: &str,
        parts: &mut Vec<BTreeSet<String>>,
        excluded: &mut Option<BTreeSet<String>>,
    ) -> Result<(), ModelError> {
        for item in items {
            if let Some(ex) = item.get("exclude") {
                if let Some(m) = item.as_mapping().filter(|m| m.len() > 1) {
                    // dbt reads the whole entry as the list's exclusion: say so.
                    let others: Vec<&str> = m
                        .keys()
                        .filter_map(serde_yaml_ng::Value::as_str)
                        .filter(|k| *k != "exclude")
                        .collect();
                    self.warnings.push(format!(
                        "selectors.yml: selector '{name}': an entry of a union or intersection \
                         with `exclude:` is that list's exclusion, as in dbt; its other keys \
                         ({}) select nothing",
                        others.join(", ")
                    ));
                }
                if excluded.is_some() {
                    return Err(self.bad(
                        name,
                        "only one exclude: is allowed in the same union or intersection".into(),
                    ));
                }
                *excluded = Some(self.exclusions(ex, name)?);
            } else {
                parts.push(self.definition(item, name)?);
            }
        }
        Ok(())
    }

    /// An `exclude:` list: the union of its definitions.
    fn exclusions(
        &mut self,
        list: &serde_yaml_ng::Value,
        name: &str,
    ) -> Result<BTreeSet<String>, ModelError> {
        let serde_yaml_ng::Value::Sequence(items) = list else {
            return Err(self.bad(name, "exclude: takes a list".into()));
        };
        let mut out = BTreeSet::new();
        for item in items {
            out.extend(self.definition(item, name)?);
        }
        Ok(out)
    }

    /// A selection in the command line's syntax (`tag:nightly+`).
    fn spec(&mut self, spec: &str) -> Result<BTreeSet<String>, ModelError> {
        let (chosen, warnings) = select_nodes(self.project, &[spec.to_string()], &[])?;
        self.warnings.extend(warnings);
        Ok(chosen)
    }

    /// `{method: tag, value: x, parents: true, ...}` or the shorthand `{tag: x}`.
    fn criterion(
        &mut self,
        m: &serde_yaml_ng::Mapping,
        name: &str,
    ) -> Result<BTreeSet<String>, ModelError> {
        use serde_yaml_ng::Value as Y;
        let text = |v: &Y| match v {
            Y::String(s) => Some(s.clone()),
            Y::Number(n) => Some(n.to_string()),
            Y::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        let (method, value) = if m.len() == 1 {
            let Some((k, v)) = m.iter().next() else {
                return Err(self.bad(name, "an empty criterion".into()));
            };
            (k.as_str().map(str::to_string), text(v))
        } else {
            (
                m.get("method").and_then(Y::as_str).map(str::to_string),
                m.get("value").and_then(text),
            )
        };
        let (Some(method), Some(value)) = (method, value) else {
            return Err(self.bad(
                name,
                format!(
                    "expected one key or `method:` and `value:`, got {}",
                    m.keys()
                        .filter_map(Y::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        for (key, v) in m {
            let key = key.as_str().unwrap_or_default();
            let unsupported = match key {
                "method" | "value" | "exclude" => false,
                "parents" | "children" => v.as_bool().is_none(),
                "indirect_selection" => v.as_str() != Some("eager"),
                _ => m.len() > 1,
            };
            if unsupported {
                return Err(self.bad(
                    name,
                    format!(
                        "'{key}: {}' is not supported by lakeq (parents/children: true or false; \
                         indirect_selection: eager)",
                        text(v).unwrap_or_default()
                    ),
                ));
            }
        }
        let flag = |k: &str| m.get(k).and_then(Y::as_bool).unwrap_or(false);
        let base = self.method(&method, &value, name)?;
        let mut out = base.clone();
        for n in &base {
            if flag("parents") {
                out.extend(upstream(self.project, n));
            }
            if flag("children") {
                out.extend(downstream(self.project, n));
            }
        }
        if let Some(ex) = m.get("exclude") {
            let excluded = self.exclusions(ex, name)?;
            out.retain(|n| !excluded.contains(n));
        }
        Ok(out)
    }

    /// The nodes one method selects.
    fn method(
        &mut self,
        method: &str,
        value: &str,
        name: &str,
    ) -> Result<BTreeSet<String>, ModelError> {
        let project = self.project;
        let all = || {
            project
                .models
                .keys()
                .chain(project.seeds.keys())
                .cloned()
                .collect::<BTreeSet<String>>()
        };
        Ok(match method {
            "fqn" if value == "*" => all(),
            "fqn" => self.spec(value)?,
            "tag" | "path" => self.spec(&format!("{method}:{value}"))?,
            "file" => project
                .models
                .values()
                .filter(|m| {
                    let file = m.path.rsplit('/').next().unwrap_or(&m.path);
                    file == value || file.strip_suffix(".sql") == Some(value)
                })
                .map(|m| m.name.clone())
                .collect(),
            "resource_type" => match value {
                "model" | "snapshot" => project
                    .models
                    .values()
                    .filter(|m| m.resource_type() == value)
                    .map(|m| m.name.clone())
                    .collect(),
                "seed" => project.seeds.keys().cloned().collect(),
                other => {
                    return Err(self.bad(
                        name,
                        format!(
                            "resource_type '{other}' is not supported by lakeq (model, seed, snapshot)"
                        ),
                    ));
                }
            },
            "config.materialized" => project
                .models
                .values()
                .filter(|m| m.config.materialized.to_string() == value)
                .map(|m| m.name.clone())
                .collect(),
            "selector" => {
                if self.using.iter().any(|u| u == value) {
                    return Err(self.bad(name, format!("selector '{value}' uses itself")));
                }
                // As in dbt, only a selector defined earlier in the file may be named.
                let position = |n: &str| self.selectors.order.iter().position(|o| o == n);
                let definition = match (position(value), position(name)) {
                    (Some(v), Some(n)) if v < n => self.selectors.definitions.get(value),
                    _ => None,
                }
                .ok_or_else(|| {
                    self.bad(
                        name,
                        format!("no selector '{value}' is defined before it in selectors.yml"),
                    )
                })?;
                self.using.push(value.to_string());
                let out = self.definition(definition, value);
                self.using.pop();
                out?
            }
            other => {
                return Err(self.bad(
                    name,
                    format!(
                        "method '{other}' is not supported by lakeq (fqn, tag, path, file, \
                         resource_type, config.materialized, selector)"
                    ),
                ));
            }
        })
    }
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

/// dbt's `state:` method against the manifest of `--state`: `new` (nodes the
/// manifest lacks), `modified` (new, or their SQL, CSV or config changed),
/// `modified.body`, `modified.configs` (new, or that change; a config changed
/// together with the body counts as a body change, as a `config()` in it does in
/// dbt). Changes of macros they call, of descriptions and of contracts are not
/// considered.
fn state_matches(project: &Project, which: &str) -> Result<BTreeSet<String>, ModelError> {
    let (new, body, configs) = match which {
        "new" => (true, false, false),
        "modified" => (true, true, true),
        // As in dbt, a new node counts as modified in every way.
        "modified.body" => (true, true, false),
        "modified.configs" => (true, false, true),
        other => {
            return Err(ModelError::Selection(format!(
                "state:{other} is not supported by lakeq (new, modified, modified.body, modified.configs)"
            )));
        }
    };
    let nodes = project
        .state
        .as_ref()
        .and_then(|s| s.get("nodes"))
        .cloned()
        .unwrap_or_default();
    let proj = &project.config.project.name;
    // dbt leaves tags out of the comparison.
    let compared = |config: serde_json::Value| match config {
        serde_json::Value::Object(mut c) => {
            c.remove("tags");
            serde_json::Value::Object(c)
        }
        other => other,
    };
    let mut out = BTreeSet::new();
    let mut check = |name: &str,
                     id: String,
                     code_changed: &dyn Fn(&serde_json::Value) -> bool,
                     config: serde_json::Value| {
        match nodes.get(&id) {
            None => {
                if new {
                    out.insert(name.to_string());
                }
            }
            Some(prev) => {
                // As in dbt, a config() inside a changed body is a body change only.
                let changed_body = code_changed(prev);
                let before = prev.get("config").cloned().map(compared);
                let changed_config = before.as_ref() != Some(&config) && !changed_body;
                if (body && changed_body) || (configs && changed_config) {
                    out.insert(name.to_string());
                }
            }
        }
    };
    for m in project.models.values() {
        let config = compared(serde_json::to_value(&m.config).unwrap_or_default());
        check(
            &m.name,
            format!("{}.{proj}.{}", m.resource_type(), m.name),
            &|prev| prev.get("raw_code").and_then(|c| c.as_str()) != Some(m.raw_sql.as_str()),
            config,
        );
    }
    for s in project.seeds.values() {
        let config = compared(serde_json::to_value(&s.config).unwrap_or_default());
        let sum = checksum(&s.text);
        check(
            &s.name,
            format!("seed.{proj}.{}", s.name),
            &|prev| prev.get("checksum").and_then(|c| c.as_str()) != Some(sum.as_str()),
            config,
        );
    }
    Ok(out)
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
    } else if let Some(which) = core.strip_prefix("state:") {
        state_matches(project, which)?
    } else if let Some(kind) = core.strip_prefix("resource_type:") {
        // dbt's resource_type method: model, snapshot or seed.
        match kind {
            "seed" => project.seeds.keys().cloned().collect(),
            "model" | "snapshot" => project
                .models
                .values()
                .filter(|m| m.resource_type() == kind)
                .map(|m| m.name.clone())
                .collect(),
            other => {
                return Err(ModelError::Selection(format!(
                    "resource_type '{other}' is not supported by lakeq (model, seed, snapshot)"
                )));
            }
        }
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

/// A stable checksum of a file's text (64-bit FNV-1a, hex): how `state:modified`
/// sees that a seed changed.
pub fn checksum(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
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
