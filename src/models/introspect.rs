//! What a template learns from the lake while it renders, as dbt's built-ins
//! give it: `run_query`, `statement` / `load_result`,
//! `adapter.get_columns_in_relation`, `adapter.get_relation`, `load_relation`,
//! and the `Relation` and `Column` objects macros such as dbt_utils' `star`,
//! `union_relations` and `get_column_values` work with.
//!
//! Queries only run in the compile pass with a lake attached; the parse pass
//! (`execute` false) gets dbt's parse-time answers (`none`, no columns).

use crate::store::{quote_ident, quote_text};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value};
use minijinja::{ErrorKind, State};

use crate::Session;

/// The rows of a query, each value as JSON (numbers as numbers, other values as
/// DuckDB prints them).
#[derive(Debug, Clone, Default)]
pub struct QueryTable {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, one value per column.
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// Runs the queries of templates (`run_query`, `statement`, introspection).
pub trait Database: Send + Sync + fmt::Debug {
    /// Run one statement and return its rows; an error as text.
    fn query(&self, sql: &str) -> Result<QueryTable, String>;
}

/// A [`Database`] over a lakeq [`Session`]. Templates render synchronously
/// inside the async run, so a query blocks the current worker
/// (`block_in_place`); that needs tokio's multi-threaded runtime, which the
/// `lakeq` binary uses.
#[derive(Debug)]
pub struct SessionDatabase {
    session: Arc<Session>,
}

impl SessionDatabase {
    /// Templates query `session`.
    pub fn new(session: Arc<Session>) -> Self {
        Self { session }
    }
}

impl Database for SessionDatabase {
    fn query(&self, sql: &str) -> Result<QueryTable, String> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "run_query needs a tokio runtime".to_string())?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return Err("run_query needs tokio's multi-threaded runtime".into());
        }
        let batches = tokio::task::block_in_place(|| handle.block_on(self.session.sql(sql)))
            .map_err(|e| e.to_string())?;
        let mut table = QueryTable::default();
        if let Some(b) = batches.first() {
            table.columns = b
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
        }
        for b in &batches {
            for row in 0..b.num_rows() {
                let values = b
                    .columns()
                    .iter()
                    .map(|c| {
                        let text = crate::dialect::render::json_value(c.as_ref(), row);
                        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
                    })
                    .collect();
                table.rows.push(values);
            }
        }
        Ok(table)
    }
}

/// The per-render state of introspection: the lake (none in the parse pass)
/// and the results `statement(...)` stored for `load_result(...)`.
#[derive(Debug, Default)]
pub struct Introspection {
    /// Where queries run; `None` when they must not (parse pass, no lake).
    pub database: Option<Arc<dyn Database>>,
    results: Mutex<BTreeMap<String, Value>>,
}

impl Introspection {
    /// Introspection over `database`.
    pub fn new(database: Option<Arc<dyn Database>>) -> Self {
        Self {
            database,
            results: Mutex::default(),
        }
    }

    fn run(&self, sql: &str) -> Result<Option<QueryTable>, minijinja::Error> {
        match &self.database {
            None => Ok(None),
            Some(db) => db.query(sql).map(Some).map_err(|e| {
                minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "a query of the template failed: {e}\n  the query: {}",
                        sql.trim()
                    ),
                )
            }),
        }
    }

    /// Columns (name, DuckDB type) of a relation, in order; none when it does not exist.
    fn columns(&self, rel: &Relation) -> Result<Vec<(String, String)>, minijinja::Error> {
        if rel.identifier.is_empty() || rel.is_cte {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT column_name, data_type FROM information_schema.columns WHERE {} ORDER BY ordinal_position",
            rel.filter()
        );
        let Some(t) = self.run(&sql)? else {
            return Ok(Vec::new());
        };
        Ok(t.rows
            .iter()
            .filter_map(|r| match r.as_slice() {
                [serde_json::Value::String(n), serde_json::Value::String(t)] => {
                    Some((n.clone(), t.clone()))
                }
                _ => None,
            })
            .collect())
    }

    /// Whether a relation exists (true when nothing can be asked).
    fn exists(&self, rel: &Relation) -> Result<bool, minijinja::Error> {
        if rel.is_cte {
            return Ok(true);
        }
        let sql = format!(
            "SELECT count(*) FROM information_schema.tables WHERE {}",
            rel.filter()
        );
        Ok(match self.run(&sql)? {
            None => true,
            Some(t) => t
                .rows
                .first()
                .and_then(|r| r.first())
                .and_then(serde_json::Value::as_u64)
                .is_some_and(|n| n > 0),
        })
    }
}

/// A relation as dbt's templates see it: renders as lakeq's `lake.schema.name`,
/// with `database`, `schema`, `identifier`, `is_cte`, `render()` (dbt's quoted
/// form) and the `metadata.type` dbt_utils checks.
#[derive(Debug, Clone, Default)]
pub struct Relation {
    /// The lake.
    pub database: String,
    /// The schema.
    pub schema: String,
    /// The table or view name.
    pub identifier: String,
    /// What `{{ relation }}` prints.
    pub text: String,
    /// An ephemeral model's CTE.
    pub is_cte: bool,
}

impl Relation {
    /// The relation a compiled relation text names (`lake.schema.name`, quoted
    /// where needed); a text without three parts is a CTE or subquery.
    pub fn from_text(text: &str) -> Self {
        let parts = split_name(text);
        match parts.as_slice() {
            [d, s, i] => Relation {
                database: d.clone(),
                schema: s.clone(),
                identifier: i.clone(),
                text: text.to_string(),
                is_cte: false,
            },
            _ => Relation {
                identifier: text.to_string(),
                text: text.to_string(),
                is_cte: !text.starts_with('('),
                ..Default::default()
            },
        }
    }

    /// A relation from its parts.
    pub fn from_parts(database: &str, schema: &str, identifier: &str) -> Self {
        Relation {
            database: database.to_string(),
            schema: schema.to_string(),
            identifier: identifier.to_string(),
            text: super::relation(database, schema, identifier),
            is_cte: false,
        }
    }

    /// The relation as a template value.
    pub fn value(self) -> Value {
        Value::from_object(self)
    }

    fn filter(&self) -> String {
        let mut f = vec![format!("table_name = {}", quote_text(&self.identifier))];
        if !self.schema.is_empty() {
            f.push(format!("table_schema = {}", quote_text(&self.schema)));
        }
        if !self.database.is_empty() {
            f.push(format!("table_catalog = {}", quote_text(&self.database)));
        }
        f.join(" AND ")
    }

    /// dbt's rendering: every part double-quoted.
    fn dbt_render(&self) -> String {
        if self.database.is_empty() {
            return self.text.clone();
        }
        [&self.database, &self.schema, &self.identifier]
            .iter()
            .map(|p| quote_ident(p))
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// `a.b."c.d"` → `[a, b, c.d]`.
fn split_name(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c if !(quoted || c.is_alphanumeric() || c == '_') => return Vec::new(),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

const RELATION_KEYS: &[&str] = &[
    "database",
    "schema",
    "identifier",
    "name",
    "table",
    "is_cte",
    "type",
    "metadata",
];

impl Object for Relation {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "database" => Value::from(self.database.clone()),
            "schema" => Value::from(self.schema.clone()),
            "identifier" | "name" | "table" => Value::from(self.identifier.clone()),
            "is_cte" => Value::from(self.is_cte),
            "is_table" | "is_view" => Value::from(false),
            "type" => Value::from(()),
            "metadata" => Value::from_serialize(BTreeMap::from([("type", "DuckDBRelation")])),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(RELATION_KEYS)
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        match method {
            "get" => {
                let key = args.first().cloned().unwrap_or_default();
                Ok(self
                    .get_value(&key)
                    .unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::from(()))))
            }
            "render" => Ok(Value::from(self.dbt_render())),
            // Quoting and path policies do not change how lakeq names a relation.
            "include" | "quote" | "incorporate" => Ok(Value::from_object((**self).clone())),
            _ => Err(minijinja::Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }

    fn custom_cmp(
        self: &Arc<Self>,
        other: &minijinja::value::DynObject,
    ) -> Option<std::cmp::Ordering> {
        other
            .downcast_ref::<Relation>()
            .map(|o| self.text.cmp(&o.text))
    }
}

/// A column as dbt's `Column`: `name`/`column`, `dtype`, `data_type`,
/// `quoted`, `is_string()`, `string_size()`, `is_number()`, ...
#[derive(Debug, Clone)]
struct Column {
    name: String,
    dtype: String,
}

impl Column {
    fn lower(&self) -> String {
        self.dtype.to_lowercase()
    }

    fn is_string(&self) -> bool {
        matches!(
            self.lower().as_str(),
            "text" | "character varying" | "character" | "varchar"
        )
    }

    fn is_integer(&self) -> bool {
        matches!(
            self.lower().as_str(),
            "smallint"
                | "integer"
                | "bigint"
                | "smallserial"
                | "serial"
                | "bigserial"
                | "int2"
                | "int4"
                | "int8"
        )
    }

    fn is_float(&self) -> bool {
        matches!(
            self.lower().as_str(),
            "real" | "float4" | "float" | "double precision" | "float8" | "double"
        )
    }

    fn is_numeric(&self) -> bool {
        matches!(self.lower().as_str(), "numeric" | "decimal")
    }

    /// dbt's `Column.data_type`: strings as `character varying(256)` (DuckDB
    /// reports no length, and 256 is dbt's default), other types as reported.
    fn data_type(&self) -> String {
        if self.is_string() {
            "character varying(256)".into()
        } else {
            self.dtype.clone()
        }
    }
}

const COLUMN_KEYS: &[&str] = &["name", "column", "dtype", "data_type", "quoted"];

impl Object for Column {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "name" | "column" => Value::from(self.name.clone()),
            "dtype" => Value::from(self.dtype.clone()),
            "data_type" => Value::from(self.data_type()),
            "quoted" => Value::from(quote_ident(&self.name)),
            "char_size" | "numeric_precision" | "numeric_scale" => Value::from(()),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(COLUMN_KEYS)
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        Ok(Value::from(match method {
            "is_string" => self.is_string(),
            "is_integer" => self.is_integer(),
            "is_float" => self.is_float(),
            "is_numeric" => self.is_numeric(),
            "is_number" => self.is_integer() || self.is_float() || self.is_numeric(),
            "string_size" => return Ok(Value::from(256)),
            _ => return Err(minijinja::Error::from(ErrorKind::UnknownMethod)),
        }))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Column {} ({})>", self.name, self.dtype)
    }
}

/// A query result as agate's `Table` (what `run_query` returns): iterate its
/// rows, index them (`t[0][0]`), or read `t.rows`, `t.columns[i].values()`,
/// `t.column_names`.
#[derive(Debug)]
struct Table(QueryTable);

impl Table {
    fn rows(&self) -> Vec<Value> {
        self.0
            .rows
            .iter()
            .map(|r| Value::from(r.iter().map(Value::from_serialize).collect::<Vec<_>>()))
            .collect()
    }
}

impl Object for Table {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(i) = key.as_i64() {
            let len = i64::try_from(self.0.rows.len()).ok()?;
            let i = usize::try_from(if i < 0 { len + i } else { i }).ok()?;
            return self.rows().get(i).cloned();
        }
        Some(match key.as_str()? {
            "rows" => Value::from(self.rows()),
            "column_names" => Value::from(self.0.columns.clone()),
            "columns" => Value::from(
                (0..self.0.columns.len())
                    .map(|i| {
                        Value::from_object(TableColumn {
                            name: self.0.columns.get(i).cloned().unwrap_or_default(),
                            values: self
                                .0
                                .rows
                                .iter()
                                .map(|r| {
                                    r.get(i)
                                        .map(Value::from_serialize)
                                        .unwrap_or(Value::from(()))
                                })
                                .collect(),
                        })
                    })
                    .collect::<Vec<_>>(),
            ),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.rows())
    }
}

/// One column of a [`Table`]: `name` and `values()`.
#[derive(Debug)]
struct TableColumn {
    name: String,
    values: Vec<Value>,
}

impl Object for TableColumn {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(i) = key.as_usize() {
            return self.values.get(i).cloned();
        }
        (key.as_str() == Some("name")).then(|| Value::from(self.name.clone()))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.values.clone())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        match method {
            "values" => Ok(Value::from(self.values.clone())),
            _ => Err(minijinja::Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// A relation argument: a [`Relation`] object, or a relation's text.
fn relation_arg(v: &Value) -> Relation {
    match v.downcast_object_ref::<Relation>() {
        Some(r) => r.clone(),
        None => Relation::from_text(&v.to_string()),
    }
}

/// `run_query`, `statement`, `load_result`, `load_relation`, `api` and the
/// introspection methods of `adapter` (returned to be merged into it).
pub fn install(
    env: &mut minijinja::Environment<'_>,
    intro: &Arc<Introspection>,
) -> Vec<(&'static str, Value)> {
    let i = Arc::clone(intro);
    env.add_function(
        "run_query",
        move |sql: String| -> Result<Value, minijinja::Error> {
            Ok(i.run(&sql)?
                .map(|t| Value::from_object(Table(t)))
                .unwrap_or(Value::from(())))
        },
    );
    let i = Arc::clone(intro);
    env.add_function(
        "statement",
        move |state: &State<'_, '_>,
              name: Option<String>,
              kwargs: Kwargs|
              -> Result<String, minijinja::Error> {
            let caller: Value = kwargs.get("caller")?;
            let _: Option<Value> = kwargs.get("fetch_result")?;
            let _: Option<Value> = kwargs.get("auto_begin")?;
            let _: Option<Value> = kwargs.get("language")?;
            kwargs.assert_all_used()?;
            let sql = caller.call(state, &[])?.to_string();
            if let Some(t) = i.run(&sql)? {
                let data = Table(t.clone()).rows();
                let table = Value::from_object(Table(t));
                let result = Value::from(BTreeMap::from([
                    ("data", Value::from(data)),
                    ("table", table),
                    ("response", Value::from("OK")),
                ]));
                guard(&i.results).insert(name.unwrap_or_else(|| "main".into()), result);
            }
            Ok(String::new())
        },
    );
    let i = Arc::clone(intro);
    env.add_function("load_result", move |name: String| -> Value {
        guard(&i.results)
            .get(&name)
            .cloned()
            .unwrap_or(Value::from(()))
    });
    let i = Arc::clone(intro);
    let load_relation =
        Value::from_function(move |rel: Value| -> Result<Value, minijinja::Error> {
            let r = relation_arg(&rel);
            Ok(if i.exists(&r)? {
                r.value()
            } else {
                Value::from(())
            })
        });
    env.add_global("load_relation", load_relation.clone());
    let create = Value::from_function(|kwargs: Kwargs| -> Result<Value, minijinja::Error> {
        let part = |k: &str| -> Result<String, minijinja::Error> {
            Ok(kwargs.get::<Option<String>>(k)?.unwrap_or_default())
        };
        let mut r =
            Relation::from_parts(&part("database")?, &part("schema")?, &part("identifier")?);
        // dbt prints a relation it created with every part quoted.
        r.text = r.dbt_render();
        let _: Option<Value> = kwargs.get("type")?;
        kwargs.assert_all_used()?;
        Ok(r.value())
    });
    let prefix = Value::from_function(|name: String| format!("__lakeq_ephemeral_{name}"));
    env.add_global(
        "api",
        Value::from(BTreeMap::from([(
            "Relation",
            Value::from(BTreeMap::from([
                ("create", create),
                ("add_ephemeral_prefix", prefix),
            ])),
        )])),
    );
    let i = Arc::clone(intro);
    let columns = Value::from_function(move |rel: Value| -> Result<Value, minijinja::Error> {
        Ok(Value::from(
            i.columns(&relation_arg(&rel))?
                .into_iter()
                .map(|(name, dtype)| Value::from_object(Column { name, dtype }))
                .collect::<Vec<_>>(),
        ))
    });
    let i = Arc::clone(intro);
    let get_relation = Value::from_function(
        move |database: Option<String>,
              schema: Option<String>,
              identifier: Option<String>,
              kwargs: Kwargs|
              -> Result<Value, minijinja::Error> {
            // dbt calls it with keywords (database=..., schema=..., identifier=...) or positionally.
            let part = |given: Option<String>, key: &str| -> Result<String, minijinja::Error> {
                match given {
                    Some(v) => Ok(v),
                    None => Ok(kwargs.get::<Option<String>>(key)?.unwrap_or_default()),
                }
            };
            let (database, schema, identifier) = (
                part(database, "database")?,
                part(schema, "schema")?,
                part(identifier, "identifier")?,
            );
            kwargs.assert_all_used()?;
            let r = Relation::from_parts(&database, &schema, &identifier);
            Ok(if i.exists(&r)? {
                r.value()
            } else {
                Value::from(())
            })
        },
    );
    vec![
        ("get_columns_in_relation", columns),
        ("get_relation", get_relation),
        ("load_relation", load_relation),
    ]
}

/// dbt's `modules.re`: `sub`, `match`, `search`, `findall`, `escape` over
/// Rust's `regex` (Python's syntax for the patterns dbt packages use), and
/// `modules.datetime` (see [`super::pydatetime`]).
pub fn modules() -> Value {
    fn compile(pattern: &str) -> Result<regex::Regex, minijinja::Error> {
        regex::Regex::new(pattern).map_err(|e| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("modules.re: bad pattern '{pattern}': {e}"),
            )
        })
    }
    let sub = Value::from_function(
        |pattern: String, repl: String, text: String| -> Result<String, minijinja::Error> {
            // Python's \1 group references are $1 in Rust's replacement syntax.
            let repl = repl.replace('$', "$$");
            let repl = (1..10).fold(repl, |r, i| {
                r.replace(&format!("\\{i}"), &format!("${{{i}}}"))
            });
            Ok(compile(&pattern)?
                .replace_all(&text, repl.as_str())
                .into_owned())
        },
    );
    let search = Value::from_function(
        |pattern: String, text: String| -> Result<Value, minijinja::Error> {
            Ok(compile(&pattern)?
                .find(&text)
                .map(|m| Value::from(m.as_str()))
                .unwrap_or(Value::from(())))
        },
    );
    let is_match = Value::from_function(
        |pattern: String, text: String| -> Result<Value, minijinja::Error> {
            Ok(compile(&format!("^(?:{pattern})"))?
                .find(&text)
                .map(|m| Value::from(m.as_str()))
                .unwrap_or(Value::from(())))
        },
    );
    let findall = Value::from_function(
        |pattern: String, text: String| -> Result<Vec<String>, minijinja::Error> {
            Ok(compile(&pattern)?
                .find_iter(&text)
                .map(|m| m.as_str().to_string())
                .collect())
        },
    );
    let escape = Value::from_function(|text: String| regex::escape(&text));
    Value::from(BTreeMap::from([
        (
            "re",
            Value::from(BTreeMap::from([
                ("sub", sub),
                ("search", search),
                ("match", is_match),
                ("findall", findall),
                ("escape", escape),
            ])),
        ),
        ("datetime", super::pydatetime::module()),
    ]))
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relation_text_splits_into_parts() {
        let r = Relation::from_text("lake.\"My Schema\".t");
        assert_eq!(
            (
                r.database.as_str(),
                r.schema.as_str(),
                r.identifier.as_str()
            ),
            ("lake", "My Schema", "t")
        );
        assert_eq!(r.dbt_render(), "\"lake\".\"My Schema\".\"t\"");
        let cte = Relation::from_text("__lakeq_ephemeral_x");
        assert!(cte.is_cte);
        let sub = Relation::from_text("(SELECT * FROM a.b.c WHERE x)");
        assert!(!sub.is_cte && sub.database.is_empty());
    }
}
