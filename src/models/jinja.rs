//! Jinja templating of models with `minijinja`: `ref`, `source`, `config`,
//! `var`, `env_var`, `this`, `target` and `is_incremental()`.
//!
//! A model is rendered twice. The *parse* pass learns what the model depends
//! on and how it is configured (`ref`/`source`/`config` calls are recorded,
//! relations are placeholders, `is_incremental()` is false). The *compile* pass
//! renders the SQL that runs, with every relation resolved to its lake-qualified
//! name.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};

use super::ModelError;

/// What a render recorded.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    /// Models named by `ref(...)`, in order of appearance.
    pub refs: Vec<String>,
    /// Sources named by `source(...)`.
    pub sources: Vec<(String, String)>,
    /// Keyword arguments of `config(...)` (later calls win).
    pub config: BTreeMap<String, serde_json::Value>,
}

/// How names resolve during a render.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    /// Model name → relation text (`lake.schema.name`, or an ephemeral's CTE name).
    /// Empty in the parse pass, where `known_models` is used instead.
    pub relations: BTreeMap<String, String>,
    /// All model names (for "did you mean" hints and the parse pass).
    pub known_models: Vec<String>,
    /// (source, table) → relation text.
    pub sources: BTreeMap<(String, String), String>,
    /// Project variables (`lakeq.toml` `[vars]`, overridden by `--vars`).
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Target name (`dev`).
    pub target: String,
    /// Lake the target writes to (`dev_analytics`).
    pub target_lake: String,
}

/// The per-render inputs.
#[derive(Debug, Clone, Default)]
pub struct RenderInput<'a> {
    /// Name of the model or test being rendered.
    pub name: &'a str,
    /// Its file (for error messages).
    pub path: &'a str,
    /// The template text.
    pub source: &'a str,
    /// `{{ this }}`: the model's own relation.
    pub this: String,
    /// What `is_incremental()` answers.
    pub is_incremental: bool,
    /// Parse pass: record calls, resolve relations to placeholders.
    pub parse: bool,
}

/// The placeholder relation of `ref('m')` in the parse pass.
fn placeholder(name: &str) -> String {
    format!("__lakeq_ref_{name}")
}

/// Longest template line, in characters: minijinja counts columns in 16 bits,
/// and a syntax error past column 65,535 overflows that counter (a panic in
/// debug builds, a wrong position otherwise).
const MAX_LINE_CHARS: usize = u16::MAX as usize - 1;

/// Render a model or test template.
pub fn render(
    resolver: &Arc<Resolver>,
    input: &RenderInput<'_>,
) -> Result<(String, Captured), ModelError> {
    if let Some((n, _)) = input
        .source
        .split('\n')
        .enumerate()
        .find(|(_, line)| line.chars().count() > MAX_LINE_CHARS)
    {
        return Err(ModelError::Jinja {
            path: input.path.to_string(),
            line: Some(n + 1),
            message: format!(
                "the line is longer than {MAX_LINE_CHARS} characters, the template engine's \
                 limit; break it into several lines"
            ),
        });
    }
    let captured = Arc::new(Mutex::new(Captured::default()));
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);

    let (r, c, parse) = (Arc::clone(resolver), Arc::clone(&captured), input.parse);
    env.add_function(
        "ref",
        move |first: String, second: Option<String>| -> Result<String, minijinja::Error> {
            // ref('model') or dbt's two-argument ref('project', 'model').
            let name = second.unwrap_or(first);
            lock(&c).refs.push(name.clone());
            if !r.known_models.contains(&name) {
                return Err(jinja_error(format!(
                    "unknown model '{name}' in ref(){}",
                    did_you_mean(&name, &r.known_models)
                )));
            }
            if parse {
                return Ok(placeholder(&name));
            }
            r.relations.get(&name).cloned().ok_or_else(|| {
                jinja_error(format!(
                    "model '{name}' is disabled or not selected for compilation"
                ))
            })
        },
    );
    let (r, c) = (Arc::clone(resolver), Arc::clone(&captured));
    env.add_function(
        "source",
        move |source: String, table: String| -> Result<String, minijinja::Error> {
            lock(&c).sources.push((source.clone(), table.clone()));
            match r.sources.get(&(source.clone(), table.clone())) {
                Some(rel) => Ok(rel.clone()),
                None => {
                    let known: Vec<String> =
                        r.sources.keys().map(|(s, t)| format!("{s}.{t}")).collect();
                    Err(jinja_error(format!(
                        "unknown source '{source}.{table}' (declare it in a _sources.yml){}",
                        did_you_mean(&format!("{source}.{table}"), &known)
                    )))
                }
            }
        },
    );
    let c = Arc::clone(&captured);
    env.add_function(
        "config",
        move |kwargs: Kwargs| -> Result<String, minijinja::Error> {
            let mut guard = lock(&c);
            for key in kwargs.args().map(str::to_string).collect::<Vec<_>>() {
                let value: Value = kwargs.get(&key)?;
                let json = serde_json::to_value(&value)
                    .map_err(|e| jinja_error(format!("config({key}=...): {e}")))?;
                guard.config.insert(key, json);
            }
            kwargs.assert_all_used()?;
            Ok(String::new())
        },
    );
    let r = Arc::clone(resolver);
    env.add_function(
        "var",
        move |name: String, default: Option<Value>| -> Result<Value, minijinja::Error> {
            match (r.vars.get(&name), default) {
                (Some(v), _) => Ok(Value::from_serialize(v)),
                (None, Some(d)) => Ok(d),
                (None, None) => Err(jinja_error(format!(
                    "var('{name}') is not set: add it to [vars] in lakeq.toml, pass --vars, or give a default"
                ))),
            }
        },
    );
    env.add_function(
        "env_var",
        |name: String, default: Option<String>| -> Result<String, minijinja::Error> {
            match (std::env::var(&name), default) {
                (Ok(v), _) => Ok(v),
                (Err(_), Some(d)) => Ok(d),
                (Err(_), None) => Err(jinja_error(format!(
                    "env_var('{name}'): the environment variable is not set and no default is given"
                ))),
            }
        },
    );
    let incremental = input.is_incremental;
    env.add_function("is_incremental", move || incremental);

    let this = if input.parse {
        placeholder(input.name)
    } else {
        input.this.clone()
    };
    let target = BTreeMap::from([
        ("name", resolver.target.clone()),
        ("lake", resolver.target_lake.clone()),
    ]);
    let ctx = minijinja::context! { this => this, target => target };
    let rendered = env
        .template_from_named_str(input.path, input.source)
        .and_then(|t| t.render(ctx))
        .map_err(|e| from_jinja(input.path, &e))?;
    let captured = lock(&captured).clone();
    Ok((rendered, captured))
}

fn lock(c: &Mutex<Captured>) -> std::sync::MutexGuard<'_, Captured> {
    match c.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn jinja_error(message: String) -> minijinja::Error {
    minijinja::Error::new(ErrorKind::InvalidOperation, message)
}

fn from_jinja(path: &str, e: &minijinja::Error) -> ModelError {
    let mut message = match e.detail() {
        Some(d) => d.to_string(),
        None => e.kind().to_string(),
    };
    // Errors raised inside our functions come back wrapped; show the innermost.
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        if let Some(j) = inner.downcast_ref::<minijinja::Error>()
            && let Some(d) = j.detail()
        {
            message = d.to_string();
        }
        source = inner.source();
    }
    ModelError::Jinja {
        path: path.to_string(),
        line: e.line(),
        message,
    }
}

/// ", did you mean 'x' or 'y'?" for the names closest to `name`, or nothing.
pub fn did_you_mean(name: &str, known: &[String]) -> String {
    let mut scored: Vec<(usize, &String)> = known
        .iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| *d <= (k.len().max(name.len()) / 2).max(2))
        .collect();
    scored.sort();
    let names: Vec<String> = scored
        .iter()
        .take(3)
        .map(|(_, k)| format!("'{k}'"))
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", names.join(" or "))
    }
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // `prev[j]`: the distance between the first `i` characters of `a` and the first `j` of `b`.
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut distance = b.len();
    for (i, ca) in a.chars().enumerate() {
        let mut left = i + 1;
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(left);
        for ((cb, diagonal), up) in b.iter().zip(&prev).zip(prev.iter().skip(1)) {
            let cost = usize::from(ca != *cb);
            left = (diagonal + cost).min(up + 1).min(left + 1);
            cur.push(left);
        }
        distance = left;
        prev = cur;
    }
    distance
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> Arc<Resolver> {
        Arc::new(Resolver {
            relations: BTreeMap::from([(
                "stg_users".into(),
                "dev_analytics.staging.stg_users".into(),
            )]),
            known_models: vec!["stg_users".into(), "stg_events".into()],
            sources: BTreeMap::from([(("saas".into(), "users".into()), "raw.saas.users".into())]),
            vars: BTreeMap::from([("limit".into(), serde_json::json!(5))]),
            target: "dev".into(),
            target_lake: "dev_analytics".into(),
        })
    }

    #[test]
    fn renders_refs_sources_config_and_vars() {
        let input = RenderInput {
            name: "m",
            path: "models/m.sql",
            source: "{{ config(materialized='table', tags=['a']) }}select * from {{ ref('stg_users') }} join {{ source('saas', 'users') }} limit {{ var('limit') }} -- {{ target.name }}",
            ..Default::default()
        };
        let (sql, cap) = render(&resolver(), &input).expect("render");
        assert_eq!(
            sql,
            "select * from dev_analytics.staging.stg_users join raw.saas.users limit 5 -- dev"
        );
        assert_eq!(cap.refs, vec!["stg_users"]);
        assert_eq!(cap.config["materialized"], serde_json::json!("table"));
        assert_eq!(cap.config["tags"], serde_json::json!(["a"]));
    }

    #[test]
    fn unknown_ref_suggests_names() {
        let input = RenderInput {
            name: "m",
            path: "models/m.sql",
            source: "select 1\nfrom {{ ref('stg_user') }}",
            parse: true,
            ..Default::default()
        };
        let err = render(&resolver(), &input)
            .expect_err("unknown ref")
            .to_string();
        assert!(err.contains("unknown model 'stg_user'"), "{err}");
        assert!(err.contains("did you mean 'stg_users'"), "{err}");
        assert!(err.contains("models/m.sql"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn bad_jinja_names_file_and_line() {
        let input = RenderInput {
            name: "m",
            path: "models/m.sql",
            source: "select 1\n{% if %}",
            parse: true,
            ..Default::default()
        };
        let err = render(&resolver(), &input).expect_err("syntax").to_string();
        assert!(
            err.contains("models/m.sql") && err.contains("line 2"),
            "{err}"
        );
    }
}
