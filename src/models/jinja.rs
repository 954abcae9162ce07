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

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Rest, Value};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};

use super::ModelError;
use super::introspect::{Database, Introspection, Relation};

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
    /// Schema of the target (dbt's `target.schema`).
    pub target_schema: String,
    /// The project's macros (with dbt's built-ins), defined in every render.
    pub macros: Arc<Macros>,
    /// Where `run_query`, `statement` and `adapter.get_columns_in_relation`
    /// run in the compile pass (none: they answer as in dbt's parse pass).
    pub database: Option<Arc<dyn Database>>,
    /// The command (`flags.WHICH`): `run`, `build`, `test`, `compile`, ...
    pub which: String,
    /// dbt's `graph`: `nodes` (models, snapshots, seeds, tests by unique id)
    /// and `sources` (empty in the parse pass, as in dbt).
    pub graph: Option<Value>,
}

/// dbt's built-in macros as dbt-duckdb renders them (`dbt.date_trunc`, ...).
const BUILTIN_MACROS: &str = r#"{% macro date_trunc(datepart, date) -%}
date_trunc('{{ datepart }}', {{ date }})
{%- endmacro %}
{% macro dateadd(datepart, interval, from_date_or_timestamp) -%}
{%- set unit = datepart | lower -%}
{#- dbt-duckdb writes `n * interval 1 unit`; `interval (n) unit` is the same value in DuckDB, and lakeq runs it. -#}
{%- if unit == 'quarter' -%}
({{ from_date_or_timestamp }} + interval (cast({{ interval }} as bigint) * 3) month)
{%- elif unit == 'week' -%}
({{ from_date_or_timestamp }} + interval (cast({{ interval }} as bigint) * 7) day)
{%- else -%}
({{ from_date_or_timestamp }} + interval (cast({{ interval }} as bigint)) {{ unit }})
{%- endif -%}
{%- endmacro %}
{% macro datediff(first_date, second_date, datepart) -%}
{#- dbt-duckdb: date_diff(part, a::timestamp, b::timestamp), the number of part boundaries
    between a and b. Written with the date parts lakeq has (DuckDB gives the same numbers). -#}
{%- set part = datepart | lower -%}
{%- set part = {'years': 'year', 'quarters': 'quarter', 'months': 'month', 'weeks': 'week', 'days': 'day',
    'hours': 'hour', 'minutes': 'minute', 'seconds': 'second', 'milliseconds': 'millisecond',
    'microseconds': 'microsecond'}.get(part, part) -%}
{%- set a = '(' ~ first_date ~ ')::timestamp' -%}
{%- set b = '(' ~ second_date ~ ')::timestamp' -%}
{%- set days = '(cast(' ~ b ~ ' as date) - cast(' ~ a ~ ' as date))' -%}
{%- if datepart == 'week' -%}
{#- dbt-duckdb's own formula for 'week' (exactly that spelling). -#}
({{ days }} // 7 + case when date_part('dow', ({{ first_date }})::timestamp) <= date_part('dow', ({{ second_date }})::timestamp) then case when {{ first_date }} <= {{ second_date }} then 0 else -1 end else case when {{ first_date }} <= {{ second_date }} then 1 else 0 end end)
{%- elif part == 'day' -%}
{{ days }}
{%- elif part == 'week' -%}
{#- date_diff('weeks', ...): whole weeks of the day difference, toward zero (`//` truncates as DuckDB's does). -#}
({{ days }} // 7)
{%- elif part == 'year' -%}
(year({{ b }}) - year({{ a }}))
{%- elif part == 'quarter' -%}
((year({{ b }}) * 4 + quarter({{ b }})) - (year({{ a }}) * 4 + quarter({{ a }})))
{%- elif part == 'month' -%}
((year({{ b }}) * 12 + month({{ b }})) - (year({{ a }}) * 12 + month({{ a }})))
{%- elif part == 'hour' -%}
({{ days }} * 24 + hour({{ b }}) - hour({{ a }}))
{%- elif part == 'minute' -%}
({{ days }} * 1440 + (hour({{ b }}) * 60 + minute({{ b }})) - (hour({{ a }}) * 60 + minute({{ a }})))
{%- elif part == 'second' -%}
({{ days }} * 86400 + (hour({{ b }}) * 3600 + minute({{ b }}) * 60 + second({{ b }})) - (hour({{ a }}) * 3600 + minute({{ a }}) * 60 + second({{ a }})))
{%- elif part == 'millisecond' -%}
({{ days }} * 86400000 + (hour({{ b }}) * 3600000 + minute({{ b }}) * 60000 + millisecond({{ b }})) - (hour({{ a }}) * 3600000 + minute({{ a }}) * 60000 + millisecond({{ a }})))
{%- elif part == 'microsecond' -%}
({{ days }} * 86400000000 + (hour({{ b }}) * 3600000000 + minute({{ b }}) * 60000000 + microsecond({{ b }})) - (hour({{ a }}) * 3600000000 + minute({{ a }}) * 60000000 + microsecond({{ a }})))
{%- else -%}
{{ exceptions.raise_compiler_error("dbt.datediff: date part '" ~ datepart ~ "' is not supported by lakeq (year, quarter, month, week, day, hour, minute, second, millisecond, microsecond)") }}
{%- endif -%}
{%- endmacro %}
{% macro safe_cast(field, type) -%}
cast({{ field }} as {{ type }})
{%- endmacro %}
{% macro cast(field, type) -%}
cast({{ field }} as {{ type }})
{%- endmacro %}
{% macro concat(fields) -%}
{{ fields | join(' || ') }}
{%- endmacro %}
{% macro hash(field) -%}
md5(cast({{ field }} as TEXT))
{%- endmacro %}
{% macro cast_bool_to_text(field) -%}
cast({{ field }} as TEXT)
{%- endmacro %}
{% macro current_timestamp() -%}
now()
{%- endmacro %}
{% macro any_value(expression) -%}
arbitrary({{ expression }})
{%- endmacro %}
{% macro bool_or(expression) -%}
bool_or({{ expression }})
{%- endmacro %}
{% macro split_part(string_text, delimiter_text, part_number) -%}
string_split({{ string_text }}, {{ delimiter_text }})[ {{ part_number }} ]
{%- endmacro %}
{% macro replace(field, old_chars, new_chars) -%}
replace({{ field }}, {{ old_chars }}, {{ new_chars }})
{%- endmacro %}
{% macro length(expression) -%}
length({{ expression }})
{%- endmacro %}
{% macro right(string_text, length_expression) -%}
right({{ string_text }}, {{ length_expression }})
{%- endmacro %}
{% macro position(substring_text, string_text) -%}
position({{ substring_text }} in {{ string_text }})
{%- endmacro %}
{% macro escape_single_quotes(expression) -%}
{{ expression | replace("'", "''") }}
{%- endmacro %}
{% macro string_literal(value) -%}
'{{ value }}'
{%- endmacro %}
{% macro type_string() %}{{ return("TEXT") }}{% endmacro %}
{% macro type_timestamp() %}{{ return("timestamp") }}{% endmacro %}
{% macro type_float() %}{{ return("float") }}{% endmacro %}
{% macro type_numeric() %}{{ return("numeric(28,6)") }}{% endmacro %}
{% macro type_bigint() %}{{ return("bigint") }}{% endmacro %}
{% macro type_int() %}{{ return("integer") }}{% endmacro %}
{% macro type_boolean() %}{{ return("boolean") }}{% endmacro %}
{% macro should_store_failures() %}{{ return(config.get('store_failures', false) == true) }}{% endmacro %}
"#;

/// Names of [`BUILTIN_MACROS`], reachable as `dbt.<name>` (and bare).
const BUILTIN_NAMES: &[&str] = &[
    "date_trunc",
    "dateadd",
    "datediff",
    "safe_cast",
    "cast",
    "concat",
    "hash",
    "cast_bool_to_text",
    "current_timestamp",
    "any_value",
    "bool_or",
    "split_part",
    "replace",
    "length",
    "right",
    "position",
    "escape_single_quotes",
    "string_literal",
    "type_string",
    "type_timestamp",
    "type_float",
    "type_numeric",
    "type_bigint",
    "type_int",
    "type_boolean",
];

/// Names lakeq defines itself; a project macro of that name is not installed.
const RESERVED: &[&str] = &[
    "ref",
    "source",
    "config",
    "var",
    "env_var",
    "is_incremental",
    "return",
    "log",
    "adapter",
    "dbt",
    "exceptions",
    "this",
    "target",
    "execute",
    "model",
    "run_query",
    "statement",
    "load_result",
    "load_relation",
    "api",
    "flags",
    "modules",
    "graph",
];

/// The macros of a project (`macros/**/*.sql`, `{% test %}` definitions),
/// prepared to be defined in front of every template: each `{% macro m %}` is
/// renamed `__lakeq_macro_m` and registered after its definition, so that `m`
/// (a global function) can give `return(...)` values and `adapter.dispatch`
/// can find it.
#[derive(Debug, Clone, Default)]
pub struct Macros {
    /// The rewritten text of every macro file, built-ins first.
    text: String,
    /// Lines of `text`.
    lines: usize,
    /// (first line in `text`, file) of each macro file.
    files: Vec<(usize, String)>,
    /// Macro names (a later definition of a name replaces an earlier one).
    names: Vec<String>,
    /// Macro names of each package (`pkg.m` calls the package's `m`).
    packages: BTreeMap<String, Vec<String>>,
}

impl Macros {
    /// Prepare the built-ins, the macros of packages (package, path, text) and
    /// the project's `files` (path, text), in that order (later ones win).
    pub fn new(
        packages: &[(String, String, String)],
        files: &[(String, String)],
    ) -> Result<Self, ModelError> {
        let mut m = Macros::default();
        m.add("<dbt built-in macros>", BUILTIN_MACROS, None)?;
        for (package, path, text) in packages {
            m.add(path, text, Some(package))?;
        }
        for (path, text) in files {
            m.add(path, text, None)?;
        }
        Ok(m)
    }

    /// Whether the project defines a macro `name` (built-ins included).
    pub fn contains(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    fn add(&mut self, path: &str, text: &str, package: Option<&str>) -> Result<(), ModelError> {
        let mut names = Vec::new();
        let rewritten = rewrite_macro_file(path, &mutable_containers(text), &mut names, package)?;
        for name in names {
            self.names.retain(|n| n != &name);
            self.names.push(name.clone());
            if let Some(p) = package {
                self.packages.entry(p.to_string()).or_default().push(name);
            }
        }
        self.files.push((self.lines + 1, path.to_string()));
        self.lines += rewritten.split('\n').count() - 1;
        self.text.push_str(&rewritten);
        if !rewritten.ends_with('\n') {
            self.text.push('\n');
            self.lines += 1;
        }
        Ok(())
    }

    /// The file and line a line of the combined template belongs to.
    fn locate(&self, line: usize) -> (String, usize) {
        let (start, path) = self
            .files
            .iter()
            .rev()
            .find(|(start, _)| *start <= line)
            .cloned()
            .unwrap_or((1, String::new()));
        (path, line + 1 - start)
    }
}

/// Rename `{% macro m(...) %}` to `__lakeq_macro_m`, turn `{% test t(...) %}`
/// into the macro `test_t`, and register each after its `{% endmacro %}`.
/// Line breaks stay where they are (error lines map back to the file).
fn rewrite_macro_file(
    path: &str,
    text: &str,
    names: &mut Vec<String>,
    package: Option<&str>,
) -> Result<String, ModelError> {
    let mut out = String::with_capacity(text.len() + 256);
    let mut rest = text;
    let mut open: Vec<String> = Vec::new();
    let mut line = 1;
    while let Some(start) = rest.find("{%") {
        let (before, tag_and_after) = rest.split_at(start);
        out.push_str(before);
        line += before.matches('\n').count();
        let Some(end) = tag_and_after.find("%}") else {
            out.push_str(tag_and_after);
            rest = "";
            break;
        };
        let (tag, after) = tag_and_after.split_at(end + 2);
        let inner = tag
            .trim_start_matches("{%")
            .trim_end_matches("%}")
            .trim_start_matches(['-', '+'])
            .trim_end_matches(['-', '+'])
            .trim();
        let keyword = inner.split_whitespace().next().unwrap_or("");
        let name_of = |decl: &str| -> String {
            decl.trim()
                .split(|c: char| c == '(' || c.is_whitespace())
                .next()
                .unwrap_or("")
                .to_string()
        };
        match keyword {
            "macro" | "test" => {
                let decl = inner.get(keyword.len()..).unwrap_or("").trim_start();
                let mut name = name_of(decl);
                if name.is_empty() {
                    return Err(ModelError::Jinja {
                        path: path.to_string(),
                        line: Some(line),
                        message: format!("a {{% {keyword} %}} without a name"),
                    });
                }
                if keyword == "test" {
                    name = format!("test_{name}");
                }
                let params = decl.get(name_of(decl).len()..).unwrap_or("");
                let head = tag.split("macro").next().unwrap_or("{%");
                let head = if keyword == "test" {
                    tag.split("test").next().unwrap_or("{%")
                } else {
                    head
                };
                let tail = if tag.ends_with("-%}") { "-%}" } else { "%}" };
                out.push_str(&format!("{head}macro __lakeq_macro_{name}{params} {tail}"));
                open.push(name);
            }
            "endmacro" | "endtest" => {
                let head = tag.split("end").next().unwrap_or("{%");
                let tail = if tag.ends_with("-%}") { "-%}" } else { "%}" };
                out.push_str(&format!("{head}endmacro {tail}"));
                if let Some(name) = open.pop()
                    && open.is_empty()
                {
                    out.push_str(&format!(
                        "{{{{ __lakeq_register('{name}', __lakeq_macro_{name}) }}}}"
                    ));
                    if let Some(p) = package {
                        out.push_str(&format!(
                            "{{{{ __lakeq_register('{p}.{name}', __lakeq_macro_{name}) }}}}"
                        ));
                    }
                    names.retain(|n| n != &name);
                    names.push(name);
                }
            }
            _ => out.push_str(tag),
        }
        line += tag.matches('\n').count();
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

/// A string as a Jinja string literal.
pub fn quote_str(s: &str) -> String {
    literal(&serde_json::Value::String(s.to_string()))
}

/// A JSON value as a Jinja literal.
pub fn literal(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "none".into(),
        serde_json::Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(literal).collect::<Vec<_>>().join(", ")
            )
        }
        serde_json::Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", quote_str(k), literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        // JSON's string, number and boolean spellings are Jinja's.
        other => other.to_string(),
    }
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
    /// The model's resolved config, for `config.get()`.
    pub config: BTreeMap<String, serde_json::Value>,
    /// More names the template sees (`results` and `schemas` in `on-run-end`;
    /// `model`, the node being rendered, replacing the default `{name: ...}`).
    pub globals: BTreeMap<String, serde_json::Value>,
}

/// The placeholder relation of `ref('m')` in the parse pass.
fn placeholder(name: &str) -> String {
    format!("__lakeq_ref_{name}")
}

/// [`placeholder`] as a relation object (not a CTE: dbt_utils checks that).
fn placeholder_relation(name: &str) -> Value {
    Relation {
        identifier: name.to_string(),
        text: placeholder(name),
        ..Default::default()
    }
    .value()
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
    // As dbt's Jinja: an undefined value prints as nothing and is false, but
    // reading an attribute of it or calling it is an error.
    // dbt parses with an undefined that chains (`graph.nodes['x'].name` is no error before
    // `execute`); the compile pass prints an undefined value as nothing but fails on its attributes.
    env.set_undefined_behavior(if input.parse {
        UndefinedBehavior::Chainable
    } else {
        UndefinedBehavior::Lenient
    });
    env.set_keep_trailing_newline(true);

    let (r, c, parse) = (Arc::clone(resolver), Arc::clone(&captured), input.parse);
    env.add_function(
        "ref",
        move |first: String, second: Option<String>| -> Result<Value, minijinja::Error> {
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
                return Ok(placeholder_relation(&name));
            }
            r.relations
                .get(&name)
                .map(|text| Relation::from_text(text).value())
                .ok_or_else(|| {
                    jinja_error(format!(
                        "model '{name}' is disabled or not selected for compilation"
                    ))
                })
        },
    );
    let (r, c) = (Arc::clone(resolver), Arc::clone(&captured));
    env.add_function(
        "source",
        move |source: String, table: String| -> Result<Value, minijinja::Error> {
            lock(&c).sources.push((source.clone(), table.clone()));
            match r.sources.get(&(source.clone(), table.clone())) {
                Some(rel) => Ok(Relation::from_text(rel).value()),
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
    env.add_global(
        "config",
        Value::from_object(ConfigObject {
            captured: Arc::clone(&captured),
            model: input.config.clone(),
        }),
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
        placeholder_relation(input.name)
    } else {
        Relation::from_text(&input.this).value()
    };
    let target = BTreeMap::from([
        ("name", resolver.target.clone()),
        ("lake", resolver.target_lake.clone()),
        ("database", resolver.target_lake.clone()),
        ("schema", resolver.target_schema.clone()),
        ("type", "duckdb".to_string()),
    ]);
    env.add_global("this", this.clone());
    env.add_global("target", Value::from_serialize(&target));
    env.add_global("execute", Value::from(!input.parse));
    let which = if resolver.which.is_empty() {
        "run"
    } else {
        resolver.which.as_str()
    };
    env.add_global(
        "flags",
        Value::from_serialize(serde_json::json!({
            "WHICH": which, "FULL_REFRESH": false, "EMPTY": false, "STORE_FAILURES": false,
        })),
    );
    env.add_global("modules", super::introspect::modules());
    env.add_global(
        "model",
        Value::from_serialize(BTreeMap::from([("name", input.name)])),
    );
    env.add_global(
        "graph",
        resolver.graph.clone().unwrap_or_else(|| {
            Value::from_serialize(serde_json::json!({
                "nodes": {}, "sources": {}, "exposures": {}, "metrics": {}, "groups": {},
                "semantic_models": {}, "saved_queries": {},
            }))
        }),
    );
    for (name, value) in &input.globals {
        env.add_global(name.clone(), Value::from_serialize(value));
    }
    env.add_function("__lakeq_relation", |text: String| {
        Relation::from_text(&text).value()
    });
    let database = if input.parse {
        None
    } else {
        resolver.database.clone()
    };
    let introspection = Arc::new(Introspection::new(database));
    install_macro_support(&mut env, &resolver.macros, &introspection);
    let ctx = minijinja::context! { this => this, target => target };
    let macros = &resolver.macros;
    // The marker on a line of its own: the model's lines keep their length (see MAX_LINE_CHARS).
    let source = format!(
        "{}{{{{ __lakeq_begin() }}}}\n{}",
        macros.text,
        mutable_containers(input.source)
    );
    let rendered = env
        .template_from_named_str(input.path, &source)
        .and_then(|t| t.render(ctx))
        .map_err(|e| {
            let mut err = from_jinja(input.path, &e);
            if let ModelError::Jinja {
                path,
                line,
                message,
            } = &mut err
                && let Some(l) = *line
            {
                if l > macros.lines + 1 {
                    *line = Some(l - macros.lines - 1);
                } else {
                    // In a macro: its file and line, and the file that called it.
                    let (file, at) = macros.locate(l);
                    *path = file;
                    *line = Some(at);
                    message.push_str(&format!(" (called from {})", input.path));
                }
            }
            err
        })?;
    let rendered = rendered
        .split_once(BEGIN_MARKER)
        .map_or(rendered.as_str(), |(_, model)| {
            model.strip_prefix('\n').unwrap_or(model)
        })
        .to_string();
    let captured = lock(&captured).clone();
    Ok((rendered, captured))
}

/// dbt's `config`: `config(key=value, ...)` records settings;
/// `config.get(key, default)` and `config.require(key)` read them (the
/// template's own `config()` calls first, then the model's resolved config).
#[derive(Debug)]
struct ConfigObject {
    captured: Arc<Mutex<Captured>>,
    model: BTreeMap<String, serde_json::Value>,
}

impl ConfigObject {
    fn lookup(&self, key: &str) -> Option<Value> {
        lock(&self.captured)
            .config
            .get(key)
            .or_else(|| self.model.get(key))
            .map(Value::from_serialize)
    }
}

impl Object for ConfigObject {
    fn call(
        self: &Arc<Self>,
        _state: &minijinja::State<'_, '_>,
        args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        let (kwargs,): (Kwargs,) = minijinja::value::from_args(args)?;
        let mut guard = lock(&self.captured);
        for key in kwargs.args().map(str::to_string).collect::<Vec<_>>() {
            let value: Value = kwargs.get(&key)?;
            let json = serde_json::to_value(&value)
                .map_err(|e| jinja_error(format!("config({key}=...): {e}")))?;
            guard.config.insert(key, json);
        }
        kwargs.assert_all_used()?;
        Ok(Value::from(""))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &minijinja::State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        let key = args.first().and_then(|k| k.as_str()).unwrap_or_default();
        match method {
            "get" => Ok(self
                .lookup(key)
                .unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::from(())))),
            "require" => self
                .lookup(key)
                .ok_or_else(|| jinja_error(format!("config.require('{key}'): '{key}' is not set"))),
            _ => Err(minijinja::Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// Where the model's own output starts (the macro definitions before it print whitespace).
const BEGIN_MARKER: &str = "\u{1}lakeq-model-begins\u{1}";

/// The per-render state of macro calls: the defined macros and the
/// `return(...)` slot of each macro call in progress.
#[derive(Debug, Default)]
struct MacroCalls {
    defined: Mutex<BTreeMap<String, Value>>,
    returns: Mutex<Vec<Option<Value>>>,
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The global function that calls macro `name`: its `return(...)` value if it
/// gave one, else its rendered text.
fn macro_function(calls: &Arc<MacroCalls>, name: &str) -> Value {
    let (calls, name) = (Arc::clone(calls), name.to_string());
    Value::from_function(
        move |state: &minijinja::State<'_, '_>,
              args: Rest<Value>|
              -> Result<Value, minijinja::Error> {
            let Some(m) = guard(&calls.defined).get(&name).cloned() else {
                return Err(jinja_error(format!(
                    "macro '{name}' is used before its definition"
                )));
            };
            guard(&calls.returns).push(None);
            let out = m.call(state, &args.0);
            // return() ends the macro with an error once it has filled the slot.
            match (guard(&calls.returns).pop().flatten(), out) {
                (Some(returned), _) => Ok(returned),
                (None, out) => out,
            }
        },
    )
}

/// A list a template can change (`{% do xs.append(x) %}`, as dbt macros do):
/// `{% set xs = [] %}` in a macro file or model makes one of these.
#[derive(Debug, Default)]
struct MutableList(Mutex<Vec<Value>>);

impl Object for MutableList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = guard(&self.0);
        let i = key.as_i64()?;
        let i = if i < 0 {
            i64::try_from(items.len()).ok()? + i
        } else {
            i
        };
        items.get(usize::try_from(i).ok()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(guard(&self.0).clone())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &minijinja::State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        let mut items = guard(&self.0);
        match (method, args) {
            ("append", [v]) => items.push(v.clone()),
            ("extend", [vs]) => items.extend(vs.try_iter()?),
            ("insert", [i, v]) => {
                let i = i.as_usize().unwrap_or(items.len()).min(items.len());
                items.insert(i, v.clone());
            }
            ("pop", []) => return Ok(items.pop().unwrap_or_default()),
            ("pop", [i]) => {
                let i = i.as_usize().filter(|i| *i < items.len());
                return Ok(i.map(|i| items.remove(i)).unwrap_or_default());
            }
            _ => return Err(minijinja::Error::from(ErrorKind::UnknownMethod)),
        }
        Ok(Value::from(()))
    }
}

/// A dict a template can change (`{% do d.update({...}) %}`): `{% set d = {} %}`.
/// Keys keep their insertion order (as Python's dicts do), and a list stored in
/// it can be changed in place (`{% do d[k].append(x) %}`, as dbt_utils does).
#[derive(Debug, Default)]
struct MutableMap(Mutex<Vec<(Value, Value)>>);

/// A plain list stored into a mutable container becomes a [`MutableList`].
fn mutable(v: Value) -> Value {
    if v.kind() == minijinja::value::ValueKind::Seq
        && v.downcast_object_ref::<MutableList>().is_none()
    {
        let items: Vec<Value> = v.try_iter().map(Iterator::collect).unwrap_or_default();
        return Value::from_object(MutableList(Mutex::new(items)));
    }
    v
}

impl MutableMap {
    fn insert(map: &mut Vec<(Value, Value)>, k: Value, v: Value) {
        let v = mutable(v);
        match map.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => map.push((k, v)),
        }
    }
}

impl Object for MutableMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        guard(&self.0)
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(guard(&self.0).iter().map(|(k, _)| k.clone()).collect())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &minijinja::State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        let mut map = guard(&self.0);
        match (method, args) {
            ("update", [other]) => {
                for k in other.try_iter()? {
                    let v = other.get_item(&k)?;
                    Self::insert(&mut map, k, v);
                }
            }
            ("pop", [k, rest @ ..]) => {
                let found = map.iter().position(|(key, _)| key == k);
                return Ok(found
                    .map(|i| map.remove(i).1)
                    .or_else(|| rest.first().cloned())
                    .unwrap_or_default());
            }
            ("setdefault", [k, v]) => {
                if let Some((_, existing)) = map.iter().find(|(key, _)| key == k) {
                    return Ok(existing.clone());
                }
                Self::insert(&mut map, k.clone(), v.clone());
                return Ok(map.last().map(|(_, v)| v.clone()).unwrap_or_default());
            }
            _ => return Err(minijinja::Error::from(ErrorKind::UnknownMethod)),
        }
        Ok(Value::from(()))
    }
}

/// `{% set x = [] %}` / `{% set x = {} %}` become mutable containers, so the
/// `append`/`extend`/`update` idiom of dbt macros works. Line breaks are kept.
pub fn mutable_containers(text: &str) -> String {
    if !text.contains("{%") || !text.contains("set") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{%") {
        let (before, tag_and_after) = rest.split_at(start);
        out.push_str(before);
        let Some(end) = tag_and_after.find("%}") else {
            out.push_str(tag_and_after);
            return out;
        };
        let (tag, after) = tag_and_after.split_at(end + 2);
        let compact: String = tag.chars().filter(|c| !c.is_whitespace()).collect();
        let rewritten = ["[]", "{}"].iter().find_map(|empty| {
            let body = compact
                .trim_start_matches("{%")
                .trim_start_matches(['-', '+'])
                .strip_prefix("set")?;
            let (name, value) = body.split_once('=')?;
            let value = value.trim_end_matches("%}").trim_end_matches(['-', '+']);
            (value == *empty
                && !name.is_empty()
                && name.chars().all(|c| c.is_alphanumeric() || c == '_'))
            .then(|| {
                let ctor = if *empty == "[]" {
                    "__lakeq_list()"
                } else {
                    "__lakeq_dict()"
                };
                tag.replacen(*empty, ctor, 1)
            })
        });
        out.push_str(rewritten.as_deref().unwrap_or(tag));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Python's methods that dbt macros call on strings, lists and dicts
/// (`'x'.upper()`, `d.items()`, ...), for values minijinja has no method for.
fn python_methods(
    _state: &minijinja::State<'_, '_>,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, minijinja::Error> {
    use minijinja::value::ValueKind;
    if let Some(s) = value.as_str() {
        let arg = |i: usize| args.get(i).and_then(|a| a.as_str()).unwrap_or("");
        return Ok(match method {
            "upper" => Value::from(s.to_uppercase()),
            "lower" => Value::from(s.to_lowercase()),
            "strip" => Value::from(s.trim()),
            "lstrip" => Value::from(s.trim_start()),
            "rstrip" => Value::from(s.trim_end()),
            "startswith" => Value::from(s.starts_with(arg(0))),
            "endswith" => Value::from(s.ends_with(arg(0))),
            "replace" => Value::from(s.replace(arg(0), arg(1))),
            "split" if args.is_empty() => {
                Value::from(s.split_whitespace().map(Value::from).collect::<Vec<_>>())
            }
            "split" => Value::from(s.split(arg(0)).map(Value::from).collect::<Vec<_>>()),
            "join" => Value::from(
                args.first()
                    .map(|a| {
                        a.try_iter()
                            .map(|it| it.map(|v| v.to_string()).collect::<Vec<_>>())
                    })
                    .transpose()?
                    .unwrap_or_default()
                    .join(s),
            ),
            _ => return Err(minijinja::Error::from(ErrorKind::UnknownMethod)),
        });
    }
    if value.kind() == ValueKind::Map {
        let keys: Vec<Value> = value.try_iter()?.collect();
        return Ok(match method {
            "items" => Value::from(
                keys.iter()
                    .map(|k| Ok(Value::from(vec![k.clone(), value.get_item(k)?])))
                    .collect::<Result<Vec<_>, minijinja::Error>>()?,
            ),
            "keys" => Value::from(keys),
            "values" => Value::from(
                keys.iter()
                    .map(|k| value.get_item(k))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            "get" => {
                let v = value.get_item(args.first().unwrap_or(&Value::UNDEFINED))?;
                if v.is_undefined() {
                    args.get(1).cloned().unwrap_or(Value::from(()))
                } else {
                    v
                }
            }
            _ => return Err(minijinja::Error::from(ErrorKind::UnknownMethod)),
        });
    }
    Err(minijinja::Error::from(ErrorKind::UnknownMethod))
}

/// `__lakeq_register`, `__lakeq_begin`, one global per macro, `return`,
/// `log`, `adapter.dispatch`, `dbt.*` and `exceptions.*`.
fn install_macro_support(env: &mut Environment<'_>, macros: &Macros, intro: &Arc<Introspection>) {
    let calls = Arc::new(MacroCalls::default());
    env.add_function(
        "__lakeq_list",
        || Value::from_object(MutableList::default()),
    );
    env.add_function("__lakeq_dict", || Value::from_object(MutableMap::default()));
    env.set_unknown_method_callback(python_methods);
    let c = Arc::clone(&calls);
    env.add_function("__lakeq_register", move |name: String, m: Value| {
        guard(&c.defined).insert(name, m);
        String::new()
    });
    env.add_function("__lakeq_begin", || BEGIN_MARKER.to_string());
    for name in &macros.names {
        if !RESERVED.contains(&name.as_str()) {
            env.add_global(name.clone(), macro_function(&calls, name));
        }
    }
    let c = Arc::clone(&calls);
    env.add_function(
        "return",
        move |value: Value| -> Result<String, minijinja::Error> {
            match guard(&c.returns).last_mut() {
                // As in dbt, return() ends the macro at once: the error unwinds to
                // the macro's call, which answers with the value.
                Some(slot) => {
                    *slot = Some(value);
                    Err(jinja_error("return() ends the macro".into()))
                }
                None => Err(jinja_error("return() outside of a macro".into())),
            }
        },
    );
    env.add_function(
        "log",
        |msg: Value, kwargs: Kwargs| -> Result<String, minijinja::Error> {
            let info: Option<bool> = kwargs.get("info")?;
            if info.unwrap_or(false) {
                eprintln!("{msg}");
            }
            Ok(String::new())
        },
    );
    let (c, names) = (Arc::clone(&calls), macros.names.clone());
    let dispatch = Value::from_function(
        move |name: String, _namespace: Option<Value>| -> Result<Value, minijinja::Error> {
            for candidate in [
                format!("duckdb__{name}"),
                format!("default__{name}"),
                name.clone(),
            ] {
                if names.contains(&candidate) {
                    return Ok(macro_function(&c, &candidate));
                }
            }
            Err(jinja_error(format!(
                "adapter.dispatch('{name}'): no macro duckdb__{name} or default__{name}"
            )))
        },
    );
    let quote = Value::from_function(|name: String| format!("\"{}\"", name.replace('"', "\"\"")));
    let mut adapter = BTreeMap::from([("dispatch", dispatch), ("quote", quote)]);
    adapter.extend(super::introspect::install(env, intro));
    env.add_global("adapter", Value::from(adapter));
    let dbt: BTreeMap<&str, Value> = BUILTIN_NAMES
        .iter()
        .map(|n| (*n, macro_function(&calls, n)))
        .collect();
    env.add_global("dbt", Value::from(dbt));
    for (package, names) in &macros.packages {
        if RESERVED.contains(&package.as_str()) {
            continue;
        }
        let namespace: BTreeMap<&str, Value> = names
            .iter()
            .map(|n| {
                (
                    n.as_str(),
                    macro_function(&calls, &format!("{package}.{n}")),
                )
            })
            .collect();
        env.add_global(package.clone(), Value::from(namespace));
    }
    let raise = Value::from_function(|msg: String| -> Result<String, minijinja::Error> {
        Err(jinja_error(msg))
    });
    let warn = Value::from_function(|msg: String| {
        eprintln!("warning: {msg}");
        String::new()
    });
    env.add_global(
        "exceptions",
        Value::from(BTreeMap::from([
            ("raise_compiler_error", raise),
            ("warn", warn),
        ])),
    );
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
            target_schema: "main".into(),
            macros: Arc::new(
                Macros::new(&[], &[(
                    "macros/m.sql".to_string(),
                    "{% macro cents(col, scale=2) %}({{ col }} / 100)::numeric(16, {{ scale }}){% endmacro %}\n\
                     {% macro pick(xs) %}{% set out = [] %}{% for x in xs %}{% if not loop.first %}{% do out.append(x | upper) %}{% endif %}{% endfor %}{{ return(out) }}{% endmacro %}\n\
                     {% macro default__shout(x) %}upper({{ x }}){% endmacro %}\n\
                     {% macro bad() %}\n{{ exceptions.raise_compiler_error('no good') }}\n{% endmacro %}\n\
                     {% test positive(model, column_name) %}select * from {{ model }} where {{ column_name }} <= 0{% endtest %}\n"
                        .to_string(),
                )])
                .expect("macros"),
            ),
            ..Default::default()
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
    fn macros_return_values_dispatch_and_map_errors_to_their_file() {
        let input = RenderInput {
            name: "m",
            path: "models/m.sql",
            source: "select {{ cents('amount') }}, {{ cents('x', scale=4) }}, {{ pick(['a', 'b', 'c']) | join('+') }}, {{ adapter.dispatch('shout', 'p')('y') }}, {{ dbt.date_trunc('day', 'ts') }}, {{ dbt.type_string() }}\n{{ test_positive('t', 'c') }}",
            ..Default::default()
        };
        let (sql, _) = render(&resolver(), &input).expect("render");
        let dicts = RenderInput {
            name: "m",
            path: "models/m.sql",
            source: "{% set d = {} %}{% do d.update({'a': 1}) %}{% for k, v in d.items() %}{{ k }}={{ v }}{% endfor %} {{ 'X'.lower() }} {{ d.get('zz', 'none') }}",
            ..Default::default()
        };
        assert_eq!(render(&resolver(), &dicts).expect("dicts").0, "a=1 x none");
        assert_eq!(
            sql,
            "select (amount / 100)::numeric(16, 2), (x / 100)::numeric(16, 4), B+C, upper(y), date_trunc('day', ts), TEXT\nselect * from t where c <= 0"
        );
        let input = RenderInput {
            name: "m",
            path: "models/m.sql",
            source: "select 1\n{{ bad() }}",
            ..Default::default()
        };
        let err = render(&resolver(), &input).expect_err("raise").to_string();
        assert!(err.contains("no good"), "{err}");
        assert!(err.contains("macros/m.sql, line 5"), "{err}");
        let input = RenderInput {
            name: "m",
            path: "models/m.sql",
            source: "select 1\n\n{{ nope() }}",
            ..Default::default()
        };
        let err = render(&resolver(), &input)
            .expect_err("unknown")
            .to_string();
        assert!(err.contains("models/m.sql, line 3"), "{err}");
    }

    #[test]
    fn return_ends_the_macro_and_undefined_prints_nothing() {
        let macros = Macros::new(
            &[],
            &[(
                "macros/p.sql".to_string(),
                "{% macro first_power(n) %}{% for _ in range(1, 10) %}{% if n <= 2 ** loop.index %}{{ return(loop.index) }}{% endif %}{% endfor %}{% endmacro %}\n"
                    .to_string(),
            )],
        )
        .expect("macros");
        let r = Arc::new(Resolver {
            macros: Arc::new(macros),
            ..Default::default()
        });
        let input = RenderInput {
            name: "m",
            path: "models/m.sql",
            source: "{{ first_power(5) }}|{{ not_set }}|{{ modules.re.sub('[ -]+', '_', 'a b-c') }}|{{ config.get('materialized', 'view') }}",
            config: BTreeMap::from([("materialized".to_string(), serde_json::json!("table"))]),
            ..Default::default()
        };
        assert_eq!(render(&r, &input).expect("render").0, "3||a_b_c|table");
        let relation = RenderInput {
            name: "m",
            path: "models/m.sql",
            source: "{{ ref('stg_users').identifier }} {{ ref('stg_users').render() }} {{ ref('stg_users') is mapping }}",
            ..Default::default()
        };
        assert_eq!(
            render(&resolver(), &relation).expect("relation").0,
            "stg_users \"dev_analytics\".\"staging\".\"stg_users\" True"
        );
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
