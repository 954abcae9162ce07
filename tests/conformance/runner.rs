//! Running one suite file in one mode on one catalog backend.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use lakeq::Session;
use lakeq::dialect::render::{duckdb_type_name, value_text};

use crate::compare::{TextResult, check, same_values};
use crate::duckdb::{Duck, DuckResult};
use crate::script::{Expect, Record, parse};

/// Who writes the lake.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// DuckDB writes, lakeq reads.
    Read,
    /// lakeq writes; lakeq and DuckDB read.
    Write,
    /// As `Write`, with every lakeq session the coordinator of `lakeq worker`
    /// processes on loopback (`--workers`): the suite on a cluster.
    Cluster,
}

impl Mode {
    /// `read` / `write`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "cluster" => Some(Self::Cluster),
            _ => None,
        }
    }

    /// The mode's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Cluster => "cluster",
        }
    }
}

/// The catalog database.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backend {
    /// SQLite file per test.
    Sqlite,
    /// A fresh PostgreSQL database per test.
    Postgres,
}

impl Backend {
    /// `sqlite` / `postgres`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sqlite" => Some(Self::Sqlite),
            "postgres" => Some(Self::Postgres),
            _ => None,
        }
    }

    /// The backend's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// How one query (or write-mode statement) went.
#[derive(Debug, Clone)]
pub enum Status {
    /// lakeq gave the expected answer (and in write mode, so did DuckDB on lakeq's lake).
    Pass,
    /// DuckDB itself does not pass it here: not counted.
    DuckdbFails(String),
    /// About DuckDB rather than the lake: not counted, with the reason.
    NotMeaningful(String),
    /// The file is skipped (suite config, missing extension): not counted.
    Skipped(String),
    /// lakeq (or DuckDB reading lakeq's lake) failed with an error: the
    /// grouped reason and the full message.
    Error(String, String),
    /// A different answer without an error: the worst outcome.
    Mismatch(String),
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pass => write!(f, "pass"),
            Self::DuckdbFails(r) => write!(f, "duckdb fails: {r}"),
            Self::NotMeaningful(r) => write!(f, "not meaningful: {r}"),
            Self::Skipped(r) => write!(f, "skipped: {r}"),
            Self::Error(_, m) => write!(f, "error: {m}"),
            Self::Mismatch(r) => write!(f, "MISMATCH: {r}"),
        }
    }
}

/// One counted record.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Suite-relative path.
    pub file: String,
    /// Header line.
    pub line: usize,
    /// The SQL after substitution.
    pub sql: String,
    /// `query` or `statement`.
    pub statement: bool,
    /// What happened.
    pub status: Status,
}

/// The venv's python and DuckDB extension folder.
pub fn oracle_paths() -> Result<(String, String), String> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv");
    let python = std::env::var("LAKEQ_DUCKDB_PYTHON")
        .unwrap_or_else(|_| venv.join("bin/python").display().to_string());
    let ext = std::env::var("LAKEQ_DUCKDB_EXT_DIR")
        .unwrap_or_else(|_| venv.join("duckdb_extensions").display().to_string());
    if !Path::new(&python).exists() || !Path::new(&ext).exists() {
        return Err(format!(
            "the DuckDB 1.5.5 oracle is missing ({python}, {ext}): run scripts/test.sh, which creates it"
        ));
    }
    Ok((python, ext))
}

const METADATA_REASON: &str =
    "reads the metadata tables through DuckDB's attachment of the metadata database";

/// Extensions whose `require` a run satisfies (loaded or built in).
const AVAILABLE: &[&str] = &[
    "ducklake",
    "parquet",
    "icu",
    "json",
    "notwindows",
    "no_alternative_verify",
    "sqlite_scanner",
    "postgres_scanner",
    "httpfs",
    "core_functions",
];

/// Runs suite files in one mode on one backend.
pub struct Runner {
    duck: Duck,
    mode: Mode,
    backend: Backend,
    skip: HashMap<String, String>,
    tmp_root: PathBuf,
    pg_url: String,
    counter: usize,
    /// Which of the run's parallel shards this runner is (in PostgreSQL database names).
    shard: usize,
    /// Queries DuckDB passes in read mode, by (file, line, occurrence): the
    /// write mode's denominator on the same backend.
    duck_passes: Arc<DuckPasses>,
    /// The workers lakeq's sessions coordinate (cluster mode).
    cluster: Option<lakeq::distributed::ClusterOptions>,
}

/// Queries DuckDB passes in read mode, per backend: (file, line, occurrence).
type DuckPasses = std::sync::Mutex<HashMap<&'static str, HashSet<(String, usize, usize)>>>;

static DUCK_PASSES: std::sync::OnceLock<Arc<DuckPasses>> = std::sync::OnceLock::new();

/// A lakeq session per DuckDB connection name.
struct Sessions {
    by_conn: HashMap<Option<String>, Arc<Session>>,
    attaches: Vec<String>,
    cluster: Option<lakeq::distributed::ClusterOptions>,
}

impl Sessions {
    fn new(cluster: Option<lakeq::distributed::ClusterOptions>) -> Self {
        Self {
            by_conn: HashMap::new(),
            attaches: Vec::new(),
            cluster,
        }
    }

    async fn get(&mut self, conn: &Option<String>) -> Arc<Session> {
        if let Some(s) = self.by_conn.get(conn) {
            return Arc::clone(s);
        }
        let session = Arc::new(match &self.cluster {
            Some(cluster) => Session::with_options(
                &lakeq::SessionOptions::default().with_cluster(cluster.clone()),
            ),
            None => Session::new(),
        });
        for attach in &self.attaches {
            let _ = session.sql(attach).await;
        }
        self.by_conn.insert(conn.clone(), Arc::clone(&session));
        session
    }
}

fn config_skips(root: &Path, backend: Backend) -> HashMap<String, String> {
    let path = root.join(format!("test/configs/{}.json", backend.name()));
    let mut out = HashMap::new();
    let Ok(text) = std::fs::read_to_string(&path) else {
        return out;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return out;
    };
    for group in json["skip_tests"].as_array().into_iter().flatten() {
        let reason = group["reason"].as_str().unwrap_or("skipped").to_string();
        for p in group["paths"].as_array().into_iter().flatten() {
            if let Some(p) = p.as_str() {
                out.insert(p.to_string(), reason.clone());
            }
        }
    }
    out
}

/// What kind of session-level statement `sql` is, if any.
fn session_kind(sql: &str) -> Option<&'static str> {
    let l = sql.trim_start().to_ascii_lowercase();
    let first = l
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default();
    match first {
        "attach" => Some("attach"),
        "detach" => Some("detach"),
        "use" => Some("use"),
        "set" | "reset" if l.split_whitespace().nth(1) == Some("variable") => Some("variable"),
        "set" | "reset" | "pragma" => Some("setting"),
        "prepare" | "deallocate" => Some("prepare"),
        "begin" | "start" => Some("begin"),
        "commit" | "end" => Some("commit"),
        "rollback" | "abort" => Some("rollback"),
        _ => None,
    }
}

/// Words of a statement: identifiers (unquoted, lower-cased) and `.`, `(`.
fn words(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            let mut w = String::new();
            for d in chars.by_ref() {
                if d == '"' {
                    break;
                }
                w.push(d);
            }
            out.push(w.to_ascii_lowercase());
        } else if c.is_alphanumeric() || c == '_' {
            let mut w = String::from(c);
            while let Some(&d) = chars.peek() {
                if d.is_alphanumeric() || d == '_' {
                    w.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(w.to_ascii_lowercase());
        } else if c == '.' || c == '(' {
            out.push(c.to_string());
        } else if c == '\'' {
            // skip string literals
            for d in chars.by_ref() {
                if d == '\'' {
                    break;
                }
            }
            out.push("'".into());
        }
    }
    out
}

/// The object a DDL/DML statement writes (name parts), and whether it is TEMP.
fn statement_target(sql: &str) -> Option<(Vec<String>, bool)> {
    let w = words(sql);
    let mut i;
    let at = |i: usize| w.get(i).map(String::as_str).unwrap_or_default();
    let mut temp = false;
    match at(0) {
        "create" => {
            i = 1;
            if at(i) == "or" && at(i + 1) == "replace" {
                i += 2;
            }
            if at(i) == "temp" || at(i) == "temporary" {
                temp = true;
                i += 1;
            }
            if !matches!(
                at(i),
                "table" | "view" | "macro" | "sequence" | "type" | "function"
            ) {
                return None;
            }
            i += 1;
            if at(i) == "if" && at(i + 1) == "not" && at(i + 2) == "exists" {
                i += 3;
            }
        }
        "insert" => {
            i = 1;
            while i < w.len() && at(i) != "into" {
                i += 1;
            }
            i += 1;
        }
        "update" => i = 1,
        "delete" if at(1) == "from" => i = 2,
        "truncate" => i = if at(1) == "table" { 2 } else { 1 },
        "drop" | "alter" => {
            if !matches!(
                at(1),
                "table" | "view" | "macro" | "sequence" | "type" | "function"
            ) {
                return None;
            }
            i = 2;
            if at(i) == "if" && at(i + 1) == "exists" {
                i += 2;
            }
        }
        _ => return None,
    }
    let mut parts = vec![w.get(i)?.clone()];
    while at(i + 1) == "." {
        parts.push(w.get(i + 2)?.clone());
        i += 2;
    }
    Some((parts, temp))
}

/// What the runner knows of the names DuckDB resolves: the attached lakes,
/// DuckDB's names for their metadata catalogs, and the current catalog.
#[derive(Default)]
struct Names {
    lakes: HashSet<String>,
    metadata_catalogs: HashSet<String>,
    current: Option<String>,
}

impl Names {
    fn observe(&mut self, sql: &str) {
        let w = words(sql);
        match w.first().map(String::as_str) {
            Some("attach") => {
                let is_lake = sql.contains("ducklake:");
                let name = w
                    .iter()
                    .position(|x| x == "as")
                    .and_then(|p| w.get(p + 1))
                    .cloned();
                let Some(name) = name else { return };
                if is_lake {
                    self.lakes.insert(name.clone());
                    let meta = w
                        .iter()
                        .position(|x| x == "metadata_catalog")
                        .map(|_| {
                            let l = sql.to_ascii_lowercase();
                            l.split("metadata_catalog")
                                .nth(1)
                                .and_then(|r| r.split('\'').nth(1))
                                .unwrap_or_default()
                                .to_string()
                        })
                        .unwrap_or_else(|| format!("__ducklake_metadata_{name}"));
                    self.metadata_catalogs.insert(meta);
                } else {
                    // A plain database attached by DuckDB (DuckDB file, SQLite, PostgreSQL):
                    // the suite uses these to look at metadata tables directly.
                    self.metadata_catalogs.insert(name);
                }
            }
            Some("detach") => {
                if let Some(name) = w
                    .iter()
                    .rev()
                    .find(|x| *x != "database" && *x != "if" && *x != "exists")
                {
                    self.lakes.remove(name);
                }
            }
            Some("use") => self.current = w.get(1).cloned(),
            _ => {}
        }
    }

    fn current_is_lake(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|c| self.lakes.contains(c))
    }

    /// A statement DuckDB runs on its in-memory database, not on a lake.
    fn writes_memory(&self, sql: &str) -> bool {
        let Some((parts, temp)) = statement_target(sql) else {
            return false;
        };
        if temp {
            return true;
        }
        let first = parts.first().cloned().unwrap_or_default();
        if parts.len() >= 2
            && (self.lakes.contains(&first) || self.metadata_catalogs.contains(&first))
        {
            return false;
        }
        if parts.len() == 3 {
            return first == "memory";
        }
        !self.current_is_lake()
    }

    /// Does the query read DuckDB's attachment of a lake's metadata database?
    fn reads_metadata(&self, sql: &str) -> bool {
        let w = words(sql);
        w.iter().enumerate().any(|(i, x)| {
            self.metadata_catalogs.contains(x) && w.get(i + 1).is_some_and(|n| n == ".")
        })
    }
}

/// Queries that change the lake (so only the writing engine may run them).
fn writes(sql: &str) -> bool {
    let l = sql.trim_start().to_ascii_lowercase();
    let first = l
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default();
    matches!(
        first,
        "insert"
            | "update"
            | "delete"
            | "call"
            | "copy"
            | "create"
            | "drop"
            | "alter"
            | "checkpoint"
            | "merge"
            | "truncate"
    ) || [
        "ducklake_flush_inlined_data",
        "ducklake_merge_adjacent_files",
        "ducklake_expire_snapshots",
        "ducklake_cleanup_old_files",
        "ducklake_delete_orphaned_files",
        "ducklake_rewrite_data_files",
        "ducklake_add_data_files",
        "ducklake_set_option",
        "set_option(",
        "set_commit_message",
        // The per-lake spellings (`ducklake.merge_adjacent_files()`).
        "merge_adjacent_files(",
        "expire_snapshots(",
        "cleanup_old_files(",
        "delete_orphaned_files(",
        "flush_inlined_data(",
        "rewrite_data_files(",
    ]
    .iter()
    .any(|f| l.contains(f))
}

/// Why a query is about DuckDB rather than the lake, if it is.
fn internal_reason(sql: &str) -> Option<&'static str> {
    let l = sql.to_ascii_lowercase();
    let t = l.trim_start();
    if t.starts_with("explain") {
        return Some("EXPLAIN output is DuckDB's plan text");
    }
    if t.starts_with("pragma") {
        return Some("PRAGMA is DuckDB-specific");
    }
    if l.contains("duckdb_") {
        return Some("duckdb_*() system functions describe DuckDB's own catalog");
    }
    if l.contains("stats(") && !l.contains("_stats(") {
        return Some("stats() shows DuckDB's optimizer statistics of an expression");
    }
    if l.contains("current_setting(") || l.contains("which_secret") {
        return Some("DuckDB settings and secrets");
    }
    if l.contains("__ducklake_metadata_") {
        return Some("reads DuckDB's attachment of the metadata database");
    }
    if l.contains("sqlite_master")
        || l.contains("sqlite_scan")
        || l.contains("postgres_query")
        || l.contains("postgres_scan")
    {
        return Some("reads the metadata database through DuckDB's scanner extensions");
    }
    None
}

/// A result that does not match: a mismatch, unless only the row order of a
/// query without ORDER BY differs (DuckDB returns insertion order; SQL leaves
/// it open), which is reported as its own failure reason.
fn differs(
    result: &TextResult,
    expected: &[String],
    columns: usize,
    sql: &str,
    e: String,
) -> Status {
    let ordered = sql.to_ascii_lowercase().contains("order by");
    let _ = columns;
    if !ordered && crate::compare::same_rows_any_order(result, expected) {
        return error(
            "row order differs from DuckDB's insertion order (the query has no ORDER BY)",
        );
    }
    Status::Mismatch(e)
}

/// In write mode, a wrong result after a statement lakeq failed is that
/// statement's failure (reported as an error), not a mismatch of its own.
fn after_divergence(status: Status, diverged: Option<&str>) -> Status {
    match (status, diverged) {
        (Status::Mismatch(m), Some(why)) => error(&format!(
            "differs after an earlier statement lakeq did not run as DuckDB does ({why}): {m}"
        )),
        (status, _) => status,
    }
}

fn error(message: &str) -> Status {
    Status::Error(reason_of(message), message.to_string())
}

/// Group an error message into a reason: quoted names and numbers elided.
pub fn reason_of(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let mut out = String::new();
    let mut in_quote: Option<char> = None;
    for c in first.chars() {
        match in_quote {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                in_quote = None;
            }
            Some(_) => {}
            None if c == '\'' || c == '"' || c == '`' => {
                out.push(c);
                in_quote = Some(c);
            }
            None if c.is_ascii_digit() => {
                if !out.ends_with('N') {
                    out.push('N');
                }
            }
            None => out.push(c),
        }
    }
    out.chars().take(140).collect()
}

fn to_text(batches: &[RecordBatch]) -> TextResult {
    let types = batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| duckdb_type_name(f.data_type()))
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    for batch in batches {
        for r in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| value_text(c.as_ref(), r))
                    .collect(),
            );
        }
    }
    TextResult { types, rows }
}

enum LakeqAnswer {
    Rows(TextResult),
    Error(String),
}

async fn lakeq_run(session: &Arc<Session>, sql: &str) -> LakeqAnswer {
    let session = Arc::clone(session);
    let sql = sql.to_string();
    let mut task = tokio::spawn(async move { session.run_script(&sql).await });
    match tokio::time::timeout(Duration::from_secs(60), &mut task).await {
        Err(_) => {
            task.abort();
            LakeqAnswer::Error("timeout after 60 s".into())
        }
        Ok(Err(join)) if join.is_panic() => {
            let msg = join
                .into_panic()
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "panic".into());
            LakeqAnswer::Error(format!("PANIC: {msg}"))
        }
        Ok(Err(join)) => LakeqAnswer::Error(format!("task failed: {join}")),
        Ok(Ok(Err(e))) => LakeqAnswer::Error(e.to_string()),
        Ok(Ok(Ok(results))) => LakeqAnswer::Rows(
            results
                .last()
                .map(|r| to_text(&r.batches))
                .unwrap_or(TextResult {
                    types: Vec::new(),
                    rows: Vec::new(),
                }),
        ),
    }
}

fn duck_text(result: &DuckResult) -> Option<TextResult> {
    match result {
        DuckResult::Rows { types, rows } => Some(TextResult {
            types: types.clone(),
            rows: rows.clone(),
        }),
        DuckResult::Done => Some(TextResult {
            types: Vec::new(),
            rows: Vec::new(),
        }),
        DuckResult::Error(_) => None,
    }
}

/// Records with loops unrolled, each with the loop variables in scope.
fn flatten(
    records: &[Record],
    vars: &[(String, String)],
    out: &mut Vec<(Record, Vec<(String, String)>)>,
) {
    for r in records {
        match r {
            Record::Loop { var, values, body } => {
                for v in values {
                    let mut inner = vars.to_vec();
                    inner.push((var.clone(), v.clone()));
                    flatten(body, &inner, out);
                }
            }
            other => out.push((other.clone(), vars.to_vec())),
        }
    }
}

/// `skipif i=0`, `i<25`, `i>25`, or an engine name (`duckdb` conditions hold).
fn condition_holds(cond: &str, vars: &[(String, String)]) -> bool {
    for op in ['=', '<', '>'] {
        if let Some((name, value)) = cond.split_once(op) {
            let Some((_, current)) = vars.iter().rev().find(|(n, _)| n == name.trim()) else {
                return false;
            };
            let (a, b) = (current.parse::<i64>(), value.trim().parse::<i64>());
            return match (op, a, b) {
                ('=', _, _) => current == value.trim(),
                ('<', Ok(a), Ok(b)) => a < b,
                ('>', Ok(a), Ok(b)) => a > b,
                _ => false,
            };
        }
    }
    cond.trim() == "duckdb"
}

impl Runner {
    /// A runner with its own DuckDB server; `shard` tells the runners of one
    /// mode and backend that run side by side apart.
    pub fn new(
        python: &str,
        ext_dir: &str,
        (mode, backend, shard): (Mode, Backend, usize),
        root: &Path,
        out_dir: &Path,
    ) -> Result<Self, String> {
        let duck = Duck::start(python, ext_dir)?;
        Ok(Self {
            duck,
            mode,
            backend,
            skip: config_skips(root, backend),
            tmp_root: out_dir.join(format!("tmp-{}-{}", mode.name(), backend.name())),
            pg_url: std::env::var("LAKEQ_PG_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            counter: 0,
            shard,
            duck_passes: Arc::clone(DUCK_PASSES.get_or_init(Default::default)),
            cluster: None,
        })
    }

    /// This runner's lakeq sessions coordinate `cluster`'s workers.
    pub fn with_cluster(mut self, cluster: Option<lakeq::distributed::ClusterOptions>) -> Self {
        self.cluster = cluster;
        self
    }

    async fn pg_admin(&self, sql: &str) -> Result<(), String> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.pg_url)
            .await
            .map_err(|e| format!("PostgreSQL at {}: {e}", self.pg_url))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
        Ok(())
    }

    /// Run one file; one outcome per counted record (or one `Skipped`).
    pub async fn run_file(&mut self, path: &Path, rel: &str) -> Vec<Outcome> {
        let skipped = |reason: String| {
            vec![Outcome {
                file: rel.to_string(),
                line: 0,
                sql: String::new(),
                statement: false,
                status: Status::Skipped(reason),
            }]
        };
        if let Some(reason) = self.skip.get(rel) {
            return skipped(format!(
                "DuckLake's {} config: {reason}",
                self.backend.name()
            ));
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return skipped(format!("unreadable: {e}")),
        };
        let records = match parse(&text) {
            Ok(r) => r,
            Err(e) => return skipped(format!("cannot parse: {e}")),
        };
        let mut flat = Vec::new();
        flatten(&records, &[], &mut flat);
        for (r, _) in &flat {
            match r {
                Record::Require(what) => {
                    let name = what.split_whitespace().next().unwrap_or_default();
                    if !AVAILABLE.contains(&name) {
                        return skipped(format!("requires {name}"));
                    }
                }
                Record::RequireEnv(name) if std::env::var_os(name).is_none() => {
                    return skipped(format!("requires environment variable {name}"));
                }
                _ => {}
            }
        }
        self.counter += 1;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let tmp = self.tmp_root.join(rel.replace(['/', '.'], "_"));
        let _ = std::fs::remove_dir_all(&tmp);
        if let Err(e) = std::fs::create_dir_all(&tmp) {
            return skipped(format!("cannot create {}: {e}", tmp.display()));
        }
        let test_dir = tmp.display().to_string();
        let mut env: HashMap<String, String> = HashMap::new();
        let mut pg_db = None;
        match self.backend {
            Backend::Sqlite => {
                env.insert(
                    "DUCKLAKE_CONNECTION".into(),
                    format!("sqlite:{test_dir}/{stem}.db"),
                );
            }
            Backend::Postgres => {
                // Unique per process: runs from other worktrees share the server.
                let db = format!(
                    "lakeq_cf_{}_{}_{}_{}",
                    std::process::id(),
                    self.mode.name(),
                    self.shard,
                    self.counter
                );
                let _ = self
                    .pg_admin(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .await;
                if let Err(e) = self.pg_admin(&format!("CREATE DATABASE {db}")).await {
                    return skipped(e);
                }
                env.insert(
                    "DUCKLAKE_CONNECTION".into(),
                    format!("postgres:dbname={db} host=127.0.0.1 user=postgres"),
                );
                pg_db = Some(db);
            }
        }
        if let Err(e) = self.duck.reset() {
            return skipped(e);
        }
        let outcomes = self.run_records(rel, &flat, &mut env, &test_dir).await;
        // Close DuckDB's connections before the database goes.
        let _ = self.duck.reset();
        if let Some(db) = pg_db {
            let _ = self
                .pg_admin(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .await;
        }
        if std::env::var("LAKEQ_CONFORMANCE_KEEP").is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        outcomes
    }

    async fn run_records(
        &mut self,
        rel: &str,
        flat: &[(Record, Vec<(String, String)>)],
        env: &mut HashMap<String, String>,
        test_dir: &str,
    ) -> Vec<Outcome> {
        let mut out = Vec::new();
        let mut sessions = Sessions::new(self.cluster.clone());
        let mut skip_level = 0i32;
        let mut skip_next = false;
        let mut duck_broken: Option<String> = None;
        let mut in_txn: HashSet<Option<String>> = HashSet::new();
        let mut labels: HashMap<String, TextResult> = HashMap::new();
        let mut occurrences: HashMap<usize, usize> = HashMap::new();
        let mut names = Names::default();
        // An ATTACH lakeq refused: the queries after it are not answerable.
        let mut attach_failed: Option<String> = None;
        // Write mode: the first statement lakeq did not run as DuckDB would; the lake
        // differs from the suite's from then on, so a wrong result after it is that
        // statement's failure, not a mismatch of its own.
        let mut write_diverged: Option<String> = None;
        let key = self.backend.name();
        let substitute = |text: &str, vars: &[(String, String)], env: &HashMap<String, String>| {
            let mut s = text.to_string();
            for (name, value) in vars.iter().rev() {
                s = s.replace(&format!("${{{name}}}"), value);
            }
            for (name, value) in env {
                s = s.replace(&format!("${{{name}}}"), value);
            }
            // A few suite files write `'{DATA_PATH}/...'` or `ducklake:{DUCKLAKE_CONNECTION}`
            // (typos for `${DATA_PATH}`, `${DUCKLAKE_CONNECTION}`):
            // DuckDB takes it as a path relative to its working directory; both
            // engines get the test's own directory instead, so no run writes
            // into the checkout.
            s.replace("__TEST_DIR__", test_dir)
                .replace("{DATA_PATH}", test_dir)
                .replace(
                    "{DUCKLAKE_CONNECTION}",
                    &format!("{test_dir}/literal_ducklake_connection.db"),
                )
        };
        for (record, vars) in flat {
            match record {
                Record::TestEnv(name, value) if !env.contains_key(name) => {
                    let v = value
                        .replace("{UUID}", &uuid::Uuid::new_v4().simple().to_string())
                        .replace("__TEST_DIR__", test_dir);
                    env.insert(name.clone(), v);
                }
                Record::Mode(m) if m == "skip" => skip_level += 1,
                Record::Mode(m) if m == "unskip" => skip_level -= 1,
                Record::Condition { skip, cond } => {
                    let holds = condition_holds(cond, vars);
                    skip_next = if *skip { holds } else { !holds };
                }
                Record::Restart => {
                    let _ = self.duck.reset();
                    sessions = Sessions::new(self.cluster.clone());
                    in_txn.clear();
                }
                Record::Statement {
                    line,
                    conn,
                    sql,
                    expect,
                } => {
                    if std::mem::take(&mut skip_next) || skip_level > 0 {
                        continue;
                    }
                    let sql = substitute(sql, vars, env);
                    let kind = session_kind(&sql);
                    match kind {
                        Some("begin") => {
                            in_txn.insert(conn.clone());
                        }
                        Some("commit" | "rollback") => {
                            in_txn.remove(conn);
                        }
                        _ => {}
                    }
                    match self.mode {
                        Mode::Read => {
                            let result = match self.duck.exec(&sql, conn.as_deref()) {
                                Ok(r) => r,
                                Err(e) => {
                                    out.push(Outcome {
                                        file: rel.to_string(),
                                        line: *line,
                                        sql: sql.clone(),
                                        statement: false,
                                        status: Status::DuckdbFails(e),
                                    });
                                    break;
                                }
                            };
                            let duck_ok = match (&result, expect) {
                                (DuckResult::Error(_), Expect::Error(_) | Expect::Maybe) => true,
                                (DuckResult::Error(_), Expect::Ok) => false,
                                (_, Expect::Error(_)) => false,
                                _ => true,
                            };
                            if !duck_ok && duck_broken.is_none() {
                                duck_broken = Some(format!(
                                    "DuckDB: statement at line {line} {}",
                                    match &result {
                                        DuckResult::Error(e) => format!("failed: {}", reason_of(e)),
                                        _ => "succeeded where an error is expected".to_string(),
                                    }
                                ));
                            }
                            if matches!(result, DuckResult::Error(_)) {
                                continue;
                            }
                            names.observe(&sql);
                            if let Some(k) = kind {
                                if let Some(e) =
                                    self.mirror_to_lakeq(k, &sql, conn, &mut sessions).await
                                {
                                    attach_failed = Some(e);
                                }
                            } else if names.writes_memory(&sql) {
                                // DuckDB's own in-memory tables, which the queries compare
                                // lake tables with: lakeq makes its own copy.
                                let s = sessions.get(conn).await;
                                let _ = lakeq_run(&s, &sql).await;
                            }
                        }
                        Mode::Write | Mode::Cluster => {
                            names.observe(&sql);
                            let session = sessions.get(conn).await;
                            if kind == Some("attach") {
                                sessions.attaches.push(sql.clone());
                                for (c, s) in &sessions.by_conn {
                                    if c != conn {
                                        let _ = s.sql(&sql).await;
                                    }
                                }
                            }
                            let answer = lakeq_run(&session, &sql).await;
                            if kind == Some("attach")
                                && let LakeqAnswer::Error(e) = &answer
                            {
                                attach_failed = Some(e.clone());
                            }
                            let status = match (&answer, expect) {
                                (LakeqAnswer::Error(_), Expect::Error(_) | Expect::Maybe) => {
                                    Status::Pass
                                }
                                (LakeqAnswer::Error(e), Expect::Ok) => error(e),
                                (LakeqAnswer::Rows(_), Expect::Error(msg)) => {
                                    Status::Mismatch(format!(
                                        "lakeq accepted a statement DuckDB refuses ({})",
                                        msg.as_deref().unwrap_or("an error")
                                    ))
                                }
                                _ => Status::Pass,
                            };
                            let status = after_divergence(status, write_diverged.as_deref());
                            if write_diverged.is_none()
                                && let Status::Error(reason, _) | Status::Mismatch(reason) = &status
                            {
                                write_diverged = Some(format!("line {line}: {reason}"));
                            }
                            out.push(Outcome {
                                file: rel.to_string(),
                                line: *line,
                                sql: sql.clone(),
                                statement: true,
                                status,
                            });
                            if matches!(answer, LakeqAnswer::Rows(_))
                                && (matches!(
                                    kind,
                                    Some("attach" | "detach" | "use" | "variable" | "prepare")
                                ) || names.writes_memory(&sql))
                            {
                                // Session state and DuckDB's own in-memory tables (which
                                // the queries compare lake tables with) exist in both
                                // engines, so DuckDB can check what lakeq answers.
                                let _ = self.duck.exec(&sql, conn.as_deref());
                            }
                        }
                    }
                }
                Record::Query {
                    line,
                    conn,
                    sql,
                    columns,
                    sort,
                    label,
                    expected,
                } => {
                    if std::mem::take(&mut skip_next) || skip_level > 0 {
                        continue;
                    }
                    let sql = substitute(sql, vars, env);
                    let expected: Vec<String> =
                        expected.iter().map(|e| substitute(e, vars, env)).collect();
                    let occurrence = {
                        let n = occurrences.entry(*line).or_insert(0);
                        *n += 1;
                        *n
                    };
                    let outcome = |status: Status| Outcome {
                        file: rel.to_string(),
                        line: *line,
                        sql: sql.clone(),
                        statement: false,
                        status,
                    };
                    let is_write = writes(&sql);
                    match self.mode {
                        Mode::Read => {
                            if let Some(b) = &duck_broken {
                                out.push(outcome(Status::DuckdbFails(b.clone())));
                                continue;
                            }
                            let duck = match self.duck.exec(&sql, conn.as_deref()) {
                                Ok(r) => r,
                                Err(e) => {
                                    out.push(outcome(Status::DuckdbFails(e)));
                                    break;
                                }
                            };
                            let Some(duck_result) = duck_text(&duck) else {
                                let DuckResult::Error(e) = &duck else {
                                    continue;
                                };
                                out.push(outcome(Status::DuckdbFails(reason_of(e))));
                                continue;
                            };
                            if let Err(e) = check(&duck_result, &expected, *columns, *sort) {
                                out.push(outcome(Status::DuckdbFails(format!(
                                    "wrong result: {e}"
                                ))));
                                continue;
                            }
                            self.duck_passes
                                .lock()
                                .map(|mut m| {
                                    m.entry(key).or_default().insert((
                                        rel.to_string(),
                                        *line,
                                        occurrence,
                                    ))
                                })
                                .ok();
                            let label_ref = label.as_ref().map(|l| {
                                labels
                                    .entry(l.clone())
                                    .or_insert_with(|| duck_result.clone())
                                    .clone()
                            });
                            if is_write {
                                out.push(outcome(Status::NotMeaningful(
                                    "writes the lake (in read mode DuckDB is the writer)".into(),
                                )));
                                continue;
                            }
                            if let Some(reason) = internal_reason(&sql) {
                                out.push(outcome(Status::NotMeaningful(reason.into())));
                                continue;
                            }
                            if names.reads_metadata(&sql) {
                                out.push(outcome(Status::NotMeaningful(METADATA_REASON.into())));
                                continue;
                            }
                            if let Some(e) = &attach_failed {
                                out.push(outcome(if e.contains("DuckDB-file catalogs") {
                                    Status::NotMeaningful(
                                        "the lake's catalog is a DuckDB database file, which only DuckDB reads".into(),
                                    )
                                } else {
                                    error(&format!("ATTACH failed in lakeq: {e}"))
                                }));
                                continue;
                            }
                            if !in_txn.is_empty() {
                                out.push(outcome(Status::NotMeaningful(
                                    "inside an open DuckDB transaction (uncommitted changes are invisible to other engines)".into(),
                                )));
                                continue;
                            }
                            let session = sessions.get(conn).await;
                            let status = match lakeq_run(&session, &sql).await {
                                LakeqAnswer::Error(e) => error(&e),
                                LakeqAnswer::Rows(r) => match check(&r, &expected, *columns, *sort)
                                {
                                    Err(e) => differs(&r, &expected, *columns, &sql, e),
                                    Ok(()) => match &label_ref {
                                        Some(l) if !same_values(&r, l, *sort) => Status::Mismatch(
                                            "differs from the labelled result".into(),
                                        ),
                                        _ => Status::Pass,
                                    },
                                },
                            };
                            out.push(outcome(status));
                        }
                        Mode::Write | Mode::Cluster => {
                            let session = sessions.get(conn).await;
                            let answer = lakeq_run(&session, &sql).await;
                            let counted = self
                                .duck_passes
                                .lock()
                                .map(|m| {
                                    m.get(key).is_none_or(|s| {
                                        s.is_empty()
                                            || s.contains(&(rel.to_string(), *line, occurrence))
                                    })
                                })
                                .unwrap_or(true);
                            if !counted {
                                out.push(outcome(Status::DuckdbFails(
                                    "DuckDB does not pass it in read mode".into(),
                                )));
                                continue;
                            }
                            if let Some(reason) = internal_reason(&sql) {
                                out.push(outcome(Status::NotMeaningful(reason.into())));
                                continue;
                            }
                            if names.reads_metadata(&sql) {
                                out.push(outcome(Status::NotMeaningful(METADATA_REASON.into())));
                                continue;
                            }
                            if let Some(e) = &attach_failed
                                && e.contains("DuckDB-file catalogs")
                            {
                                out.push(outcome(Status::NotMeaningful(
                                    "the lake's catalog is a DuckDB database file, which only DuckDB reads".into(),
                                )));
                                continue;
                            }
                            let lakeq_status = match &answer {
                                LakeqAnswer::Error(e) => error(e),
                                LakeqAnswer::Rows(r) => {
                                    match check(r, &expected, *columns, *sort) {
                                        Err(e) => differs(r, &expected, *columns, &sql, e),
                                        Ok(()) => Status::Pass,
                                    }
                                }
                            };
                            let lakeq_status = self.cluster_layout(lakeq_status, &sql);
                            if !matches!(lakeq_status, Status::Pass) || is_write {
                                let status =
                                    after_divergence(lakeq_status, write_diverged.as_deref());
                                // A writing query (`UPDATE ... FROM` returning its count) that
                                // failed leaves the lake unlike the suite's, as a statement would.
                                if is_write
                                    && write_diverged.is_none()
                                    && let Status::Error(reason, _) | Status::Mismatch(reason) =
                                        &status
                                {
                                    write_diverged = Some(format!("line {line}: {reason}"));
                                }
                                out.push(outcome(status));
                                continue;
                            }
                            if !in_txn.is_empty() {
                                // lakeq's transaction is not committed yet: DuckDB
                                // cannot see what it reads.
                                out.push(outcome(after_divergence(
                                    Status::Pass,
                                    write_diverged.as_deref(),
                                )));
                                continue;
                            }
                            // DuckDB reads the lake lakeq wrote.
                            let status = match self.duck.exec(&sql, conn.as_deref()) {
                                Err(e) => error(&format!("DuckDB server: {e}")),
                                Ok(DuckResult::Error(e)) => {
                                    error(&format!("DuckDB on lakeq's lake: {e}"))
                                }
                                Ok(d) => match duck_text(&d)
                                    .map(|t| check(&t, &expected, *columns, *sort))
                                {
                                    Some(Err(e)) => {
                                        Status::Mismatch(format!("DuckDB on lakeq's lake: {e}"))
                                    }
                                    _ => Status::Pass,
                                },
                            };
                            let status = self.cluster_layout(status, &sql);
                            out.push(outcome(after_divergence(status, write_diverged.as_deref())));
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// In cluster mode, a different answer to a query about the lake's data
    /// files (how many there are, what a merge or rewrite of them did) is the
    /// cluster's file layout, not a wrong answer: each write task on a worker
    /// writes its own files (the suite runs with one task per input file), so
    /// there are more, smaller files than one process writes. Such a query is
    /// counted as not meaningful, with that reason; every other status stands.
    fn cluster_layout(&self, status: Status, sql: &str) -> Status {
        const LAYOUT: [&str; 5] = [
            "glob(",
            "ducklake_merge_adjacent_files",
            "ducklake_rewrite_data_files",
            "files_created",
            "files_processed",
        ];
        let lower = sql.to_ascii_lowercase();
        if self.mode == Mode::Cluster
            && matches!(status, Status::Mismatch(_))
            && LAYOUT.iter().any(|l| lower.contains(l))
        {
            return Status::NotMeaningful(
                "counts or merges data files: on a cluster each write task writes its own files"
                    .into(),
            );
        }
        status
    }

    /// Run a session-level statement DuckDB ran in lakeq too; an ATTACH lakeq
    /// refuses is returned (the queries after it cannot be answered).
    async fn mirror_to_lakeq(
        &mut self,
        kind: &str,
        sql: &str,
        conn: &Option<String>,
        sessions: &mut Sessions,
    ) -> Option<String> {
        match kind {
            "attach" => {
                // The connection's session first: a new one replays the earlier
                // attaches, not this one (attaching a name twice is an error).
                let _ = sessions.get(conn).await;
                sessions.attaches.push(sql.to_string());
                let mut failure = None;
                for s in sessions.by_conn.values() {
                    if let Err(e) = s.sql(sql).await {
                        failure = Some(e.to_string());
                    }
                }
                return failure;
            }
            "detach" => {
                sessions.attaches.retain(|a| a != sql);
                for s in sessions.by_conn.values() {
                    let _ = s.sql(sql).await;
                }
            }
            "use" | "variable" | "setting" | "prepare" => {
                let s = sessions.get(conn).await;
                let _ = s.sql(sql).await;
            }
            _ => {}
        }
        None
    }
}

/// Counts of one mode on one backend.
pub struct Summary {
    /// `read` / `write`.
    pub mode: &'static str,
    /// `sqlite` / `postgres`.
    pub backend: &'static str,
    /// Queries lakeq passes.
    pub pass: usize,
    /// Queries counted (DuckDB passes them, meaningful for another engine).
    pub counted: usize,
    /// Queries with an error.
    pub errors: usize,
    /// Mismatches, as `file:line detail`.
    pub mismatches: Vec<String>,
    /// Queries DuckDB itself fails here.
    pub duckdb_fails: usize,
    /// Queries classified as not meaningful, by reason.
    pub not_meaningful: BTreeMap<String, usize>,
    /// Files skipped.
    pub skipped_files: usize,
    /// Statements run by lakeq (write mode) and how many went as expected.
    pub statements: (usize, usize),
    /// Failure reasons by count, descending.
    pub top_failures: Vec<(String, usize)>,
    /// Wall time.
    pub elapsed: Duration,
}

impl Summary {
    /// The one summary line.
    pub fn line(&self) -> String {
        let pct = if self.counted == 0 {
            0.0
        } else {
            100.0 * self.pass as f64 / self.counted as f64
        };
        let statements = if self.mode != "read" {
            format!(
                ", statements {}/{} as expected",
                self.statements.1, self.statements.0
            )
        } else {
            String::new()
        };
        format!(
            "conformance {}/{}: lakeq passes {} of {} queries DuckDB passes ({pct:.1}%); {} errors, {} mismatches; {} not meaningful for another engine, {} DuckDB fails itself, {} files skipped{statements} [{:.0} s]",
            self.mode,
            self.backend,
            self.pass,
            self.counted,
            self.errors,
            self.mismatches.len(),
            self.not_meaningful.values().sum::<usize>(),
            self.duckdb_fails,
            self.skipped_files,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Count outcomes.
pub fn summarize(mode: Mode, backend: Backend, outcomes: &[Outcome], elapsed: Duration) -> Summary {
    let mut s = Summary {
        mode: mode.name(),
        backend: backend.name(),
        pass: 0,
        counted: 0,
        errors: 0,
        mismatches: Vec::new(),
        duckdb_fails: 0,
        not_meaningful: BTreeMap::new(),
        skipped_files: 0,
        statements: (0, 0),
        top_failures: Vec::new(),
        elapsed,
    };
    let mut reasons: HashMap<String, usize> = HashMap::new();
    for o in outcomes {
        if o.statement {
            s.statements.0 += 1;
            if matches!(o.status, Status::Pass) {
                s.statements.1 += 1;
            }
            if let Status::Mismatch(m) = &o.status {
                s.mismatches.push(format!(
                    "{}:{} (statement) {m}: {}",
                    o.file,
                    o.line,
                    one_line(&o.sql)
                ));
            }
            continue;
        }
        match &o.status {
            Status::Pass => {
                s.pass += 1;
                s.counted += 1;
            }
            Status::Error(r, _) => {
                s.errors += 1;
                s.counted += 1;
                *reasons.entry(r.clone()).or_default() += 1;
            }
            Status::Mismatch(m) => {
                s.counted += 1;
                s.mismatches
                    .push(format!("{}:{} {m}: {}", o.file, o.line, one_line(&o.sql)));
            }
            Status::DuckdbFails(_) => s.duckdb_fails += 1,
            Status::NotMeaningful(r) => *s.not_meaningful.entry(r.clone()).or_default() += 1,
            Status::Skipped(_) => s.skipped_files += 1,
        }
    }
    let mut top: Vec<(String, usize)> = reasons.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    s.top_failures = top;
    s
}

fn one_line(sql: &str) -> String {
    let joined = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.chars().take(160).collect()
}

/// The whole run as JSON: per mode and backend, the summary and every outcome.
pub fn report_json(runs: &[(Summary, Vec<Outcome>)]) -> String {
    let runs: Vec<serde_json::Value> = runs
        .iter()
        .map(|(s, outcomes)| {
            let outcomes: Vec<serde_json::Value> = outcomes
                .iter()
                .map(|o| {
                    serde_json::json!({"file": o.file, "line": o.line, "statement": o.statement,
                        "status": o.status.to_string(), "sql": o.sql})
                })
                .collect();
            serde_json::json!({
                "mode": s.mode, "backend": s.backend, "pass": s.pass, "counted": s.counted,
                "errors": s.errors, "mismatches": s.mismatches, "duckdb_fails": s.duckdb_fails,
                "not_meaningful": s.not_meaningful, "skipped_files": s.skipped_files,
                "statements": [s.statements.0, s.statements.1],
                "top_failures": s.top_failures.iter().take(60).collect::<Vec<_>>(),
                "outcomes": outcomes,
            })
        })
        .collect();
    serde_json::to_string_pretty(&runs).unwrap_or_default()
}
