//! Shared test fixtures: scratch directories, per-test PostgreSQL databases,
//! the DuckDB 1.5.5 oracle, and canonical rendering of query results.
//!
//! The oracle and PostgreSQL are required: a missing one is a test failure with
//! instructions, never a silent skip (`scripts/test.sh` sets everything up).

pub mod canonical;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A fresh scratch directory under `target/test-scratch/`.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("test-scratch")
        .join(format!("{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Every file under `dir`, recursively (empty when `dir` does not exist).
pub fn list_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() {
            out.extend(list_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// How many files are under `dir`, recursively (a lake's data path: what a change
/// wrote or removed).
pub fn files_under(dir: &Path) -> usize {
    list_files(dir).len()
}

/// Which catalog database a test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty catalog location plus data path.
#[derive(Debug, Clone)]
pub struct TestLake {
    /// The `ducklake:...` string.
    pub location: String,
    /// `METADATA_SCHEMA` (PostgreSQL).
    pub metadata_schema: Option<String>,
    pub data_path: String,
    pub dir: PathBuf,
}

impl TestLake {
    pub async fn new(backend: Backend, name: &str) -> TestResult<Self> {
        let dir = scratch_dir(name);
        let data_path = format!("{}/data/", dir.display());
        match backend {
            Backend::Sqlite => Ok(Self {
                location: format!("ducklake:sqlite:{}/meta.sqlite", dir.display()),
                metadata_schema: None,
                data_path,
                dir,
            }),
            Backend::Postgres => {
                let db = create_pg_database(name).await?;
                Ok(Self {
                    location: format!("ducklake:postgres:dbname={db} host=127.0.0.1 user=postgres"),
                    metadata_schema: Some("lakeq_meta".into()),
                    data_path,
                    dir,
                })
            }
        }
    }

    /// Open the lake directly through lakeq's library (catalog inspection).
    pub async fn open(&self) -> TestResult<std::sync::Arc<lakeq::Lake>> {
        let options = lakeq::LakeOptions {
            metadata_schema: self.metadata_schema.clone(),
            ..Default::default()
        };
        Ok(lakeq::Lake::open(&self.location, options).await?)
    }

    /// `ATTACH ... AS <alias> (...)` for both DuckDB and lakeq.
    /// [`Self::attach_sql`] with data inlining off (`DATA_INLINING_ROW_LIMIT 0`),
    /// for tests about the files small writes make.
    pub fn attach_sql_without_inlining(&self, alias: &str) -> String {
        let sql = self.attach_sql(alias);
        format!("{}, DATA_INLINING_ROW_LIMIT 0)", sql.trim_end_matches(')'))
    }

    pub fn attach_sql(&self, alias: &str) -> String {
        let mut opts = vec![format!("DATA_PATH '{}'", self.data_path)];
        if let Some(s) = &self.metadata_schema {
            opts.push(format!("METADATA_SCHEMA '{s}'"));
        }
        format!(
            "ATTACH '{}' AS {alias} ({})",
            self.location,
            opts.join(", ")
        )
    }
}

/// Create a uniquely named PostgreSQL database for one test.
pub async fn create_pg_database(name: &str) -> TestResult<String> {
    use sqlx::Connection;
    let url = std::env::var("LAKEQ_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let mut conn = sqlx::PgConnection::connect(&url).await.map_err(|e| {
        format!("PostgreSQL at {url} is required (start it, or run scripts/test.sh): {e}")
    })?;
    let db = format!(
        "lakeq_test_{}_{}",
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut conn)
        .await?;
    Ok(db)
}

/// One query result recorded by the oracle.
#[derive(Debug, Clone, Deserialize)]
pub struct OracleQuery {
    pub label: String,
    pub sql: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct OracleOutput {
    queries: Vec<OracleQuery>,
    error: Option<String>,
}

/// Path of the DuckDB venv's python and extension folder: from the environment
/// (`scripts/test-env.sh`), else the repo's `.venv`; a clear failure when missing.
pub fn oracle_python() -> TestResult<(String, String)> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv");
    let python = std::env::var("LAKEQ_DUCKDB_PYTHON")
        .unwrap_or_else(|_| venv.join("bin/python").display().to_string());
    let ext = std::env::var("LAKEQ_DUCKDB_EXT_DIR")
        .unwrap_or_else(|_| venv.join("duckdb_extensions").display().to_string());
    if !Path::new(&python).exists() || !Path::new(&ext).exists() {
        return Err(format!(
            "the DuckDB 1.5.5 oracle is missing ({python}, {ext}): run the tests with \
             scripts/test.sh, which creates it"
        )
        .into());
    }
    Ok((python, ext))
}

/// Run a script (oracle format) in DuckDB 1.5.5 with the given ATTACH statements.
pub fn duckdb_run(attach: &[String], script: &Path) -> TestResult<Vec<OracleQuery>> {
    let (python, ext) = oracle_python()?;
    let oracle = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/duckdb_oracle.py");
    let mut cmd = Command::new(python);
    cmd.arg(oracle).arg("run").arg("--ext-dir").arg(ext);
    for a in attach {
        cmd.arg("--attach").arg(a);
    }
    cmd.arg("--script").arg(script).arg("--out").arg("-");
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "DuckDB oracle failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let parsed: OracleOutput = serde_json::from_slice(&out.stdout)?;
    if let Some(e) = parsed.error {
        return Err(format!("DuckDB oracle error: {e}").into());
    }
    Ok(parsed.queries)
}

/// Run `sql` in lakeq and render the result canonically.
pub async fn lakeq_query(
    session: &lakeq::Session,
    sql: &str,
) -> TestResult<(Vec<String>, Vec<Vec<String>>)> {
    let batches = session.sql(sql).await?;
    canonical::render_batches(&batches)
}

/// Compare every oracle query with lakeq's answer; return a readable list of differences.
pub async fn compare_with_oracle(session: &lakeq::Session, queries: &[OracleQuery]) -> Vec<String> {
    let mut problems = Vec::new();
    if queries.is_empty() {
        // A comparison of nothing proves nothing.
        problems.push("the oracle answered no query".to_string());
    }
    for q in queries {
        match lakeq_query(session, &q.sql).await {
            Err(e) => problems.push(format!("[{}] lakeq failed: {e}\n  sql: {}", q.label, q.sql)),
            Ok((cols, rows)) => {
                if cols != q.columns {
                    problems.push(format!(
                        "[{}] columns differ\n  duckdb: {:?}\n  lakeq:  {:?}",
                        q.label, q.columns, cols
                    ));
                }
                if rows != q.rows {
                    let first_diff = rows
                        .iter()
                        .zip(&q.rows)
                        .position(|(a, b)| a != b)
                        .unwrap_or(rows.len().min(q.rows.len()));
                    problems.push(format!(
                        "[{}] rows differ (duckdb {} rows, lakeq {} rows), first difference at row {}:\n  duckdb: {:?}\n  lakeq:  {:?}\n  sql: {}",
                        q.label,
                        q.rows.len(),
                        rows.len(),
                        first_diff,
                        q.rows.get(first_diff),
                        rows.get(first_diff),
                        q.sql
                    ));
                }
            }
        }
    }
    problems
}

/// Split an oracle-format script into lakeq statements (`statement ok` blocks)
/// and the text of its `query` blocks (to run in both engines).
pub fn script_blocks(path: &Path) -> TestResult<(Vec<String>, String)> {
    let text = std::fs::read_to_string(path)?;
    let mut statements = Vec::new();
    let mut queries = String::new();
    for block in text.split("\n\n") {
        let lines: Vec<&str> = block
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .collect();
        let Some((header, body)) = lines.split_first() else {
            continue;
        };
        let sql = body.join("\n");
        if *header == "statement ok" {
            statements.push(sql);
        } else if header.starts_with("query ") {
            queries.push_str(&format!("{header}\n{sql}\n\n"));
        } else {
            return Err(format!("{}: unexpected block header '{header}'", path.display()).into());
        }
    }
    Ok((statements, queries))
}

/// Run oracle-format `query` blocks in DuckDB against the lake attached AS `lake`.
pub fn duckdb_sql_queries(lake: &TestLake, blocks: &str) -> TestResult<Vec<OracleQuery>> {
    let path = lake
        .dir
        .join(format!("oracle-{}.slt", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, blocks)?;
    duckdb_run(&[lake.attach_sql("lake")], &path)
}

/// Run the `lakeq` binary in `dir` with `args`.
pub fn lakeq_cli(dir: &std::path::Path, args: &[&str]) -> TestResult<std::process::Output> {
    Ok(std::process::Command::new(env!("CARGO_BIN_EXE_lakeq"))
        .current_dir(dir)
        .args(args)
        .output()?)
}

/// Run the `lakeq` binary, expecting it to fail; returns its stdout and stderr.
pub fn lakeq_cli_err(dir: &std::path::Path, args: &[&str]) -> TestResult<String> {
    let out = lakeq_cli(dir, args)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        return Err(format!("lakeq {args:?} should have failed:\n{text}").into());
    }
    Ok(text)
}

/// Copy a folder tree.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> TestResult {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        let target = to.join(path.file_name().ok_or("no file name")?);
        if path.is_dir() {
            copy_dir(&path, &target)?;
        } else {
            std::fs::copy(&path, &target)?;
        }
    }
    Ok(())
}
