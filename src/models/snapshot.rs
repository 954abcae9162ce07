//! dbt snapshots: type-2 slowly changing dimensions, built as dbt-duckdb
//! builds them.
//!
//! A snapshot is declared by a `{% snapshot name %} ... {% endsnapshot %}`
//! block in `snapshots/**/*.sql`, or (dbt ≥ 1.9) by a `snapshots:` YAML entry
//! with a `relation:` (`ref('x')` or `source('s', 't')`). It is loaded as a
//! [`Model`](super::Model) materialized as [`Materialized::Snapshot`](super::Materialized),
//! so `ref()`, selection and the DAG treat it like any model.
//!
//! The SQL is dbt's own (`dbt/include/global_project/macros/materializations/snapshots`
//! and dbt-duckdb's `snapshot_helper.sql`), generated here instead of being
//! rendered from those macros:
//!
//! ```text
//!   first run   CREATE TABLE t AS SELECT *, dbt_scd_id, dbt_updated_at, dbt_valid_from,
//!               dbt_valid_to [, dbt_is_deleted] FROM (<query>)
//!   later runs  one transaction (one snapshot of the lake):
//!               CREATE TEMP TABLE staging AS <insertions ∪ updates ∪ deletes ∪ deletion records>
//!               ALTER TABLE t ADD COLUMN ...      (columns new in the query)
//!               UPDATE t SET dbt_valid_to = ... FROM staging ...   (rows that changed or went)
//!               INSERT INTO t (...) SELECT ... FROM staging WHERE dbt_change_type = 'insert'
//! ```
//!
//! The snapshot time (dbt-duckdb's `now()::timestamp`) is one literal for the
//! whole run, so every statement of it sees the same instant.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ModelError, ident};

/// How a snapshot detects changed rows, and what it does with deleted ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotConfig {
    /// `timestamp` (a row changed when its `updated_at` is newer) or `check`
    /// (when one of `check_cols` differs).
    pub strategy: String,
    /// The `updated_at` column (required by `timestamp`; optional for `check`,
    /// where the snapshot time is used without it).
    pub updated_at: Option<String>,
    /// The columns `check` compares; `None` for `all`.
    pub check_cols: Option<Vec<String>>,
    /// `ignore`, `invalidate` (also `invalidate_hard_deletes: true`) or
    /// `new_record`: what becomes of a row the query no longer returns.
    pub hard_deletes: String,
    /// `dbt_valid_to_current`: the `dbt_valid_to` of current rows (an SQL
    /// expression; NULL when unset).
    pub dbt_valid_to_current: Option<String>,
    /// Names of the meta columns (`snapshot_meta_column_names`).
    pub columns: MetaColumns,
}

/// The names of a snapshot's meta columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetaColumns {
    /// `dbt_scd_id`: a hash of the key and the version's time.
    pub dbt_scd_id: String,
    /// `dbt_updated_at`.
    pub dbt_updated_at: String,
    /// `dbt_valid_from`.
    pub dbt_valid_from: String,
    /// `dbt_valid_to` (NULL, or `dbt_valid_to_current`, while current).
    pub dbt_valid_to: String,
    /// `dbt_is_deleted` (`hard_deletes: new_record` only).
    pub dbt_is_deleted: String,
}

impl Default for MetaColumns {
    fn default() -> Self {
        Self {
            dbt_scd_id: "dbt_scd_id".into(),
            dbt_updated_at: "dbt_updated_at".into(),
            dbt_valid_from: "dbt_valid_from".into(),
            dbt_valid_to: "dbt_valid_to".into(),
            dbt_is_deleted: "dbt_is_deleted".into(),
        }
    }
}

/// Config keys of snapshots lakeq acts on, beyond those of models.
pub const SNAPSHOT_KEYS: &[&str] = &[
    "strategy",
    "updated_at",
    "check_cols",
    "invalidate_hard_deletes",
    "hard_deletes",
    "dbt_valid_to_current",
    "snapshot_meta_column_names",
    "target_schema",
];

impl SnapshotConfig {
    /// Read a snapshot's merged settings (dbt's checks and messages).
    /// `unique_key` is the already parsed key.
    pub fn from_settings(
        settings: &BTreeMap<String, serde_json::Value>,
        unique_key: &[String],
    ) -> Result<Self, String> {
        let text = |key: &str| -> Result<Option<String>, String> {
            match settings.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!("config {key} must be text, not {other}")),
            }
        };
        let strategy = text("strategy")?.ok_or(
            "a snapshot needs a strategy (config strategy: 'timestamp' or 'check'), as in dbt",
        )?;
        if unique_key.is_empty() {
            return Err("a snapshot needs a unique_key, as in dbt".into());
        }
        let updated_at = text("updated_at")?;
        let check_cols = match settings.get("check_cols") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) if s == "all" => Some(None),
            Some(serde_json::Value::Array(cols)) if !cols.is_empty() => Some(Some(
                cols.iter()
                    .map(|c| {
                        c.as_str().map(str::to_string).ok_or_else(|| {
                            format!("check_cols must be 'all' or a list of column names, not {c}")
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            Some(other) => {
                return Err(format!(
                    "Invalid value for 'check_cols': {other} ('all' or a list of column names)"
                ));
            }
        };
        let check_cols = match strategy.as_str() {
            "timestamp" => {
                if updated_at.is_none() {
                    return Err("the timestamp strategy needs config updated_at, as in dbt".into());
                }
                None
            }
            "check" => check_cols
                .ok_or("the check strategy needs config check_cols ('all' or a list), as in dbt")?,
            other => {
                return Err(format!(
                    "unknown snapshot strategy '{other}' (timestamp, check)"
                ));
            }
        };
        let invalidate = match settings.get("invalidate_hard_deletes") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Bool(b)) => Some(*b),
            Some(other) => {
                return Err(format!(
                    "config invalidate_hard_deletes must be true or false, not {other}"
                ));
            }
        };
        let hard_deletes = text("hard_deletes")?;
        // dbt's get_hard_deletes_behavior.
        let hard_deletes = match (invalidate, hard_deletes.as_deref()) {
            (Some(_), Some(_)) => {
                return Err("You cannot set both the invalidate_hard_deletes and hard_deletes \
                     config properties on the same snapshot."
                    .into());
            }
            (Some(true), None) | (None, Some("invalidate")) => "invalidate",
            (None, Some("new_record")) => "new_record",
            (Some(false) | None, None) | (None, Some("ignore")) => "ignore",
            (None, Some(other)) => {
                return Err(format!(
                    "Invalid setting for property hard_deletes: '{other}' (ignore, invalidate, new_record)"
                ));
            }
        }
        .to_string();
        let mut columns = MetaColumns::default();
        match settings.get("snapshot_meta_column_names") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(names)) => {
                for (k, v) in names {
                    let Some(name) = v.as_str() else {
                        return Err(format!(
                            "snapshot_meta_column_names.{k} must be a column name"
                        ));
                    };
                    let slot = match k.as_str() {
                        "dbt_scd_id" => &mut columns.dbt_scd_id,
                        "dbt_updated_at" => &mut columns.dbt_updated_at,
                        "dbt_valid_from" => &mut columns.dbt_valid_from,
                        "dbt_valid_to" => &mut columns.dbt_valid_to,
                        "dbt_is_deleted" => &mut columns.dbt_is_deleted,
                        other => {
                            return Err(format!(
                                "snapshot_meta_column_names: unknown column '{other}' (dbt_scd_id, \
                                 dbt_updated_at, dbt_valid_from, dbt_valid_to, dbt_is_deleted)"
                            ));
                        }
                    };
                    *slot = name.to_string();
                }
            }
            Some(other) => {
                return Err(format!(
                    "config snapshot_meta_column_names must be a map, not {other}"
                ));
            }
        }
        Ok(Self {
            strategy,
            updated_at,
            check_cols,
            hard_deletes,
            dbt_valid_to_current: text("dbt_valid_to_current")?,
            columns,
        })
    }

    /// The expression of a version's time: `updated_at`, else the snapshot time.
    fn updated_at_expr(&self, now: &str) -> String {
        self.updated_at.clone().unwrap_or_else(|| now.to_string())
    }

    /// dbt's `snapshot_hash_arguments(scd_args(unique_key, updated_at))`.
    fn scd_id(&self, unique_key: &[String], now: &str) -> String {
        let mut args: Vec<String> = unique_key.to_vec();
        args.push(self.updated_at_expr(now));
        hash(&args)
    }

    /// `coalesce(nullif(u, u), <current>)`: a NULL (or `dbt_valid_to_current`) of `u`'s type.
    fn valid_to_current(&self, now: &str) -> String {
        let u = self.updated_at_expr(now);
        format!(
            "coalesce(nullif({u}, {u}), {})",
            self.dbt_valid_to_current.as_deref().unwrap_or("null")
        )
    }

    /// Whether a row is current: its `dbt_valid_to` is NULL (or `dbt_valid_to_current`).
    fn is_current(&self) -> String {
        let to = &self.columns.dbt_valid_to;
        match &self.dbt_valid_to_current {
            Some(c) => format!("( ({to} = {c}) or {to} is null )"),
            None => format!("{to} is null"),
        }
    }
}

/// dbt's `default__snapshot_hash_arguments`.
fn hash(args: &[String]) -> String {
    let parts: Vec<String> = args
        .iter()
        .map(|a| format!("coalesce(cast({a} as varchar ), '')"))
        .collect();
    format!("md5({})", parts.join(" || '|' || "))
}

/// The snapshot time as an SQL literal (dbt-duckdb: `now()::timestamp`, the
/// local time of the session).
pub fn now_literal() -> String {
    format!(
        "TIMESTAMP '{}'",
        chrono::Local::now()
            .naive_local()
            .format("%Y-%m-%d %H:%M:%S%.6f")
    )
}

/// The query of a snapshot's first run (dbt's `default__build_snapshot_table`).
pub fn build_sql(cfg: &SnapshotConfig, unique_key: &[String], sql: &str, now: &str) -> String {
    let c = &cfg.columns;
    let u = cfg.updated_at_expr(now);
    let deleted = if cfg.hard_deletes == "new_record" {
        format!(",\n    'False' as {}", c.dbt_is_deleted)
    } else {
        String::new()
    };
    format!(
        "select *,\n    {scd} as {scd_col},\n    {u} as {upd},\n    {u} as {from},\n    {to_expr} as {to}{deleted}\nfrom (\n{sql}\n) sbq",
        scd = cfg.scd_id(unique_key, now),
        scd_col = c.dbt_scd_id,
        upd = c.dbt_updated_at,
        from = c.dbt_valid_from,
        to_expr = cfg.valid_to_current(now),
        to = c.dbt_valid_to,
    )
}

fn unique_key_fields(unique_key: &[String]) -> String {
    match unique_key {
        [one] => format!("{one} as dbt_unique_key"),
        keys => keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} as dbt_unique_key_{}", i + 1))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn unique_key_join_on(unique_key: &[String], left: &str, right: &str) -> String {
    match unique_key {
        [_] => format!("{left}.dbt_unique_key = {right}.dbt_unique_key"),
        keys => (1..=keys.len())
            .map(|i| format!("({left}.dbt_unique_key_{i} = {right}.dbt_unique_key_{i})"))
            .collect::<Vec<_>>()
            .join(" and "),
    }
}

fn unique_key_is(unique_key: &[String], rel: &str, null: bool) -> String {
    let col = match unique_key {
        [_] => "dbt_unique_key",
        _ => "dbt_unique_key_1",
    };
    format!("{rel}.{col} is {}null", if null { "" } else { "not " })
}

/// The changed-row condition (dbt's `row_changed` of the strategy).
/// `query_columns` are the query's columns and `target_columns` the table's.
fn row_changed(
    cfg: &SnapshotConfig,
    query_columns: &[String],
    target_columns: &[String],
) -> String {
    if cfg.strategy == "timestamp" {
        return format!(
            "(snapshotted_data.{} < source_data.{})",
            cfg.columns.dbt_valid_from,
            cfg.updated_at.as_deref().unwrap_or_default()
        );
    }
    // check: the checked columns the table has; a checked column it lacks means "changed".
    let checked: Vec<String> = match &cfg.check_cols {
        None => query_columns.to_vec(),
        Some(cols) => cols.clone(),
    };
    let mut present = Vec::new();
    let mut added = false;
    for col in &checked {
        if target_columns.contains(col) {
            present.push(format!("\"{}\"", col.replace('"', "\"\"")));
        } else {
            added = true;
        }
    }
    if added {
        return "(TRUE)".into();
    }
    let parts: Vec<String> = present
        .iter()
        .map(|col| {
            format!(
                "snapshotted_data.{col} != source_data.{col}\n        or\n        (\n            \
                 ((snapshotted_data.{col} is null) and not (source_data.{col} is null))\n            \
                 or\n            ((not snapshotted_data.{col} is null) and (source_data.{col} is null))\n        )"
            )
        })
        .collect();
    format!("({})", parts.join(" or "))
}

/// The staging query of a later run (dbt's `default__snapshot_staging_table`):
/// one row per change, `dbt_change_type` `insert`, `update` or `delete`.
pub fn staging_sql(
    cfg: &SnapshotConfig,
    unique_key: &[String],
    sql: &str,
    target: &str,
    now: &str,
    query_columns: &[String],
    target_columns: &[String],
) -> String {
    let c = &cfg.columns;
    let u = cfg.updated_at_expr(now);
    let new_record = cfg.hard_deletes == "new_record";
    let with_deletes = cfg.hard_deletes == "invalidate" || new_record;
    let fields = unique_key_fields(unique_key);
    let join = unique_key_join_on(unique_key, "snapshotted_data", "source_data");
    let changed = row_changed(cfg, query_columns, target_columns);
    let or_deleted = if new_record {
        format!(" or snapshotted_data.{} = 'True'", c.dbt_is_deleted)
    } else {
        String::new()
    };
    let latest = match &cfg.dbt_valid_to_current {
        Some(v) => format!("snapshotted_data.{} = {v}", c.dbt_valid_to),
        None => format!("snapshotted_data.{} is null", c.dbt_valid_to),
    };
    let not_deleted_current = format!(
        "not (\n            snapshotted_data.{} = 'True'\n            and\n            {latest}\n        )",
        c.dbt_is_deleted,
    );
    let mut out = format!(
        "with snapshot_query as (\n\n{sql}\n\n),\n\n\
         snapshotted_data as (\n    select *, {fields}\n    from {target}\n    where {current}\n),\n\n\
         insertions_source_data as (\n    select *, {fields},\n        {u} as {upd},\n        {u} as {from},\n        \
         {to_expr} as {to},\n        {scd} as {scd_col}\n    from snapshot_query\n),\n\n\
         updates_source_data as (\n    select *, {fields},\n        {u} as {upd},\n        {u} as {from},\n        \
         {u} as {to}\n    from snapshot_query\n),\n\n",
        current = cfg.is_current(),
        upd = c.dbt_updated_at,
        from = c.dbt_valid_from,
        to = c.dbt_valid_to,
        to_expr = cfg.valid_to_current(now),
        scd = cfg.scd_id(unique_key, now),
        scd_col = c.dbt_scd_id,
    );
    if with_deletes {
        out.push_str(&format!(
            "deletes_source_data as (\n    select *, {fields}\n    from snapshot_query\n),\n\n"
        ));
    }
    out.push_str(&format!(
        "insertions as (\n    select\n        'insert' as dbt_change_type,\n        source_data.*{is_deleted}\n    \
         from insertions_source_data as source_data\n    left outer join snapshotted_data\n        on {join}\n        \
         where {key_null}\n        or ({key_not_null} and (\n           {changed}{or_deleted}\n        ))\n),\n\n\
         updates as (\n    select\n        'update' as dbt_change_type,\n        source_data.*,\n        \
         snapshotted_data.{scd_col}{snap_is_deleted}\n    from updates_source_data as source_data\n    \
         join snapshotted_data\n        on {join}\n    where (\n        {changed}{or_deleted}\n    )\n)",
        is_deleted = if new_record {
            format!(",\n        'False' as {}", c.dbt_is_deleted)
        } else {
            String::new()
        },
        key_null = unique_key_is(unique_key, "snapshotted_data", true),
        key_not_null = unique_key_is(unique_key, "snapshotted_data", false),
        scd_col = c.dbt_scd_id,
        snap_is_deleted = if new_record {
            format!(",\n        snapshotted_data.{}", c.dbt_is_deleted)
        } else {
            String::new()
        },
    ));
    if with_deletes {
        out.push_str(&format!(
            ",\n\ndeletes as (\n    select\n        'delete' as dbt_change_type,\n        source_data.*,\n        \
             {now} as {from},\n        {now} as {upd},\n        {now} as {to},\n        snapshotted_data.{scd_col}{snap_is_deleted}\n    \
             from snapshotted_data\n    left join deletes_source_data as source_data\n        on {join}\n        \
             where {source_key_null}{skip_deleted}\n)",
            from = c.dbt_valid_from,
            upd = c.dbt_updated_at,
            to = c.dbt_valid_to,
            scd_col = c.dbt_scd_id,
            snap_is_deleted = if new_record {
                format!(",\n        snapshotted_data.{}", c.dbt_is_deleted)
            } else {
                String::new()
            },
            source_key_null = unique_key_is(unique_key, "source_data", true),
            skip_deleted = if new_record {
                format!("\n        and {not_deleted_current}")
            } else {
                String::new()
            },
        ));
    }
    if new_record {
        let mut cols = Vec::new();
        for col in query_columns {
            let side = if target_columns.contains(col) {
                "snapshotted_data"
            } else {
                "source_data"
            };
            cols.push(format!("{side}.\"{}\"", col.replace('"', "\"\"")));
        }
        match unique_key {
            [_] => cols.push("snapshotted_data.dbt_unique_key as dbt_unique_key".into()),
            keys => {
                for (i, k) in keys.iter().enumerate() {
                    cols.push(format!("snapshotted_data.{k} as dbt_unique_key_{}", i + 1));
                }
            }
        }
        let new_scd_id = hash(&[c.dbt_scd_id.clone(), now.to_string()]);
        out.push_str(&format!(
            ",\n\ndeletion_records as (\n    select\n        'insert' as dbt_change_type,\n        {cols},\n        \
             {now} as {from},\n        {now} as {upd},\n        snapshotted_data.{to} as {to},\n        \
             {new_scd_id} as {scd_col},\n        'True' as {is_deleted}\n    from snapshotted_data\n    \
             left join deletes_source_data as source_data\n        on {join}\n    where {source_key_null}\n    \
             and {not_deleted_current}\n)",
            cols = cols.join(",\n        "),
            from = c.dbt_valid_from,
            upd = c.dbt_updated_at,
            to = c.dbt_valid_to,
            scd_col = c.dbt_scd_id,
            is_deleted = c.dbt_is_deleted,
            source_key_null = unique_key_is(unique_key, "source_data", true),
        ));
    }
    out.push_str("\n\nselect * from insertions\nunion all\nselect * from updates");
    if with_deletes {
        out.push_str("\nunion all\nselect * from deletes");
    }
    if new_record {
        out.push_str("\nunion all\nselect * from deletion_records");
    }
    out
}

/// The columns a later run inserts, in the staging table's order: the
/// query's, then the meta columns (dbt's staging columns without
/// `dbt_change_type` and `dbt_unique_key*`).
pub fn insert_columns(cfg: &SnapshotConfig, query_columns: &[String]) -> Vec<String> {
    let c = &cfg.columns;
    let mut out: Vec<String> = query_columns.to_vec();
    for meta in [
        &c.dbt_updated_at,
        &c.dbt_valid_from,
        &c.dbt_valid_to,
        &c.dbt_scd_id,
    ] {
        if !out.contains(meta) {
            out.push(meta.clone());
        }
    }
    if cfg.hard_deletes == "new_record" && !out.contains(&c.dbt_is_deleted) {
        out.push(c.dbt_is_deleted.clone());
    }
    out
}

/// The statements of a later run, in one transaction: stage the changes, add
/// the columns the table lacks (`added`: name and SQL type), close the changed
/// and deleted versions, insert the new ones (dbt-duckdb's
/// `duckdb__snapshot_merge_sql`).
pub fn merge_statements(
    cfg: &SnapshotConfig,
    target: &str,
    staging_name: &str,
    staging_query: &str,
    added: &[(String, String)],
    insert_columns: &[String],
) -> Vec<String> {
    let c = &cfg.columns;
    let staging = ident(staging_name);
    let mut out = vec![format!("CREATE TEMP TABLE {staging} AS\n{staging_query}")];
    for (name, ty) in added {
        out.push(format!(
            "ALTER TABLE {target} ADD COLUMN {} {ty}",
            quote(name)
        ));
    }
    let current = match &cfg.dbt_valid_to_current {
        Some(v) => format!(
            "(DBT_INTERNAL_TARGET.{to} = {v} or DBT_INTERNAL_TARGET.{to} is null)",
            to = c.dbt_valid_to
        ),
        None => format!("DBT_INTERNAL_TARGET.{} is null", c.dbt_valid_to),
    };
    out.push(format!(
        "update {target} as DBT_INTERNAL_TARGET\n\
         set {to} = DBT_INTERNAL_SOURCE.{to}\n\
         from {staging} as DBT_INTERNAL_SOURCE\n\
         where DBT_INTERNAL_SOURCE.{scd}::text = DBT_INTERNAL_TARGET.{scd}::text\n  \
         and DBT_INTERNAL_SOURCE.dbt_change_type::text in ('update'::text, 'delete'::text)\n  \
         and {current}",
        to = c.dbt_valid_to,
        scd = c.dbt_scd_id,
    ));
    let cols: Vec<String> = insert_columns.iter().map(|n| quote(n)).collect();
    out.push(format!(
        "insert into {target} ({})\nselect {}\nfrom {staging} as DBT_INTERNAL_SOURCE\n\
         where DBT_INTERNAL_SOURCE.dbt_change_type::text = 'insert'::text",
        cols.join(", "),
        cols.iter()
            .map(|c| format!("DBT_INTERNAL_SOURCE.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out
}

/// `adapter.quote`: always double-quoted.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A `{% snapshot name %} ... {% endsnapshot %}` block of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The snapshot's name.
    pub name: String,
    /// The template between the tags, preceded by as many newlines as lines
    /// come before it in the file (so template errors name the file's line).
    pub body: String,
}

/// The snapshot blocks of `text` (the file `path`); text outside them is
/// ignored, as dbt ignores it. A file without one, a block left open or a
/// nested block is an error naming the file and line.
pub fn blocks(path: &str, text: &str) -> Result<Vec<Block>, ModelError> {
    let line_of = |offset: usize| {
        text.get(..offset)
            .map_or(1, |t| t.matches('\n').count() + 1)
    };
    let bad = |offset: usize, message: &str| ModelError::Jinja {
        path: path.to_string(),
        line: Some(line_of(offset)),
        message: message.to_string(),
    };
    let mut out = Vec::new();
    let mut open: Option<(String, usize, usize)> = None; // name, tag offset, body start
    let mut pos = 0;
    while let Some(found) = text.get(pos..).and_then(|t| t.find("{%")) {
        let start = pos + found;
        let Some(end) = text.get(start..).and_then(|t| t.find("%}")) else {
            break;
        };
        let tag_end = start + end + 2;
        let inner = text
            .get(start + 2..start + end)
            .unwrap_or_default()
            .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        let mut words = inner.split_whitespace();
        match words.next() {
            Some("snapshot") => {
                if open.is_some() {
                    return Err(bad(start, "a {% snapshot %} block inside another one"));
                }
                let name = words.next().unwrap_or_default().to_string();
                let valid = !name.is_empty()
                    && words.next().is_none()
                    && name.chars().all(|c| c.is_alphanumeric() || c == '_');
                if !valid {
                    return Err(bad(
                        start,
                        "a snapshot block is opened as {% snapshot <name> %}",
                    ));
                }
                open = Some((name, start, tag_end));
            }
            Some("endsnapshot") => {
                let Some((name, _, body_start)) = open.take() else {
                    return Err(bad(start, "{% endsnapshot %} without a {% snapshot %}"));
                };
                let body = text.get(body_start..start).unwrap_or_default();
                let lines = line_of(body_start) - 1;
                out.push(Block {
                    name,
                    body: format!("{}{body}", "\n".repeat(lines)),
                });
            }
            _ => {}
        }
        pos = tag_end;
    }
    if let Some((name, offset, _)) = open {
        return Err(bad(
            offset,
            &format!("{{% snapshot {name} %}} is not closed by {{% endsnapshot %}}"),
        ));
    }
    if out.is_empty() {
        return Err(ModelError::Project(format!(
            "{path}: a file under the snapshot folder holds no {{% snapshot <name> %}} ... {{% endsnapshot %}} block"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: serde_json::Value) -> BTreeMap<String, serde_json::Value> {
        match json {
            serde_json::Value::Object(m) => m.into_iter().collect(),
            _ => BTreeMap::new(),
        }
    }

    #[test]
    fn blocks_keep_the_file_lines() {
        let text = "-- history\n{% snapshot a %}\n{{ config(strategy='check') }}\nselect 1\n{%- endsnapshot %}\n\n{% snapshot b -%} select 2 {% endsnapshot %}";
        let b = blocks("snapshots/s.sql", text).expect("blocks");
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].name, "a");
        assert_eq!(b[0].body, "\n\n{{ config(strategy='check') }}\nselect 1\n");
        assert_eq!(b[1].name, "b");
        assert_eq!(b[1].body, "\n\n\n\n\n\n select 2 ");
    }

    #[test]
    fn bad_blocks_name_file_and_line() {
        for (text, want) in [
            (
                "\n{% snapshot a %}\nselect 1",
                "line 2: {% snapshot a %} is not closed",
            ),
            (
                "select 1\n{% endsnapshot %}",
                "line 2: {% endsnapshot %} without",
            ),
            (
                "{% snapshot %}x{% endsnapshot %}",
                "line 1: a snapshot block is opened as",
            ),
            (
                "{% snapshot a %}{% snapshot b %}",
                "line 1: a {% snapshot %} block inside",
            ),
            ("select 1", "holds no {% snapshot <name> %}"),
        ] {
            let err = blocks("snapshots/s.sql", text).expect_err(text).to_string();
            assert!(
                err.starts_with("snapshots/s.sql") && err.contains(want),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn config_checks_as_dbt_does() {
        let key = vec!["id".to_string()];
        let ok = SnapshotConfig::from_settings(
            &settings(serde_json::json!({"strategy": "check", "check_cols": "all", "invalidate_hard_deletes": true})),
            &key,
        )
        .expect("valid");
        assert_eq!(
            (ok.check_cols, ok.hard_deletes.as_str()),
            (None, "invalidate")
        );
        for (json, want) in [
            (
                serde_json::json!({"strategy": "timestamp"}),
                "needs config updated_at",
            ),
            (serde_json::json!({"updated_at": "u"}), "needs a strategy"),
            (
                serde_json::json!({"strategy": "check"}),
                "needs config check_cols",
            ),
            (
                serde_json::json!({"strategy": "check", "check_cols": 3}),
                "Invalid value for 'check_cols'",
            ),
            (
                serde_json::json!({"strategy": "sometimes"}),
                "unknown snapshot strategy 'sometimes'",
            ),
            (
                serde_json::json!({"strategy": "timestamp", "updated_at": "u", "hard_deletes": "new_record", "invalidate_hard_deletes": true}),
                "cannot set both",
            ),
            (
                serde_json::json!({"strategy": "timestamp", "updated_at": "u", "hard_deletes": "purge"}),
                "Invalid setting for property hard_deletes",
            ),
        ] {
            let err =
                SnapshotConfig::from_settings(&settings(json.clone()), &key).expect_err("bad");
            assert!(err.contains(want), "{json}: {err}");
        }
        let err = SnapshotConfig::from_settings(
            &settings(serde_json::json!({"strategy": "timestamp", "updated_at": "u"})),
            &[],
        )
        .expect_err("no key");
        assert!(err.contains("unique_key"), "{err}");
    }

    #[test]
    fn scd_id_is_dbts_hash() {
        let cfg = SnapshotConfig::from_settings(
            &settings(serde_json::json!({"strategy": "timestamp", "updated_at": "updated_at"})),
            &["id".to_string()],
        )
        .expect("valid");
        let sql = build_sql(&cfg, &["id".to_string()], "select 1", "NOW");
        assert!(
            sql.contains(
                "md5(coalesce(cast(id as varchar ), '') || '|' || coalesce(cast(updated_at as varchar ), '')) as dbt_scd_id"
            ) && sql.contains("coalesce(nullif(updated_at, updated_at), null) as dbt_valid_to"),
            "{sql}"
        );
    }

    #[test]
    fn check_strategy_sees_a_new_checked_column_as_a_change() {
        let cfg = SnapshotConfig::from_settings(
            &settings(serde_json::json!({"strategy": "check", "check_cols": "all"})),
            &["id".to_string()],
        )
        .expect("valid");
        let query = ["id".to_string(), "x".to_string()];
        assert_eq!(row_changed(&cfg, &query, &["id".to_string()]), "(TRUE)");
        let both = row_changed(&cfg, &query, &query);
        assert!(
            both.contains("snapshotted_data.\"x\" != source_data.\"x\""),
            "{both}"
        );
    }
}
