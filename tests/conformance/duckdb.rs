//! DuckDB 1.5.5 as a subprocess (`duckdb_server.py`), one JSON request per line.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use serde_json::{Value, json};

/// A statement's outcome in DuckDB.
#[derive(Debug, Clone)]
pub enum DuckResult {
    /// Rows (values are DuckDB's VARCHAR text, `None` = NULL) with column types.
    Rows {
        /// DuckDB type names.
        types: Vec<String>,
        /// Values.
        rows: Vec<Vec<Option<String>>>,
    },
    /// Success without a result.
    Done,
    /// DuckDB's error message.
    Error(String),
}

/// How long one DuckDB request may take before the server is restarted (a lock
/// wait on a catalog file, a runaway query).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A running DuckDB server.
pub struct Duck {
    child: Child,
    stdin: ChildStdin,
    /// Lines from the server's stdout, read by a thread (so a request can time out).
    lines: Receiver<String>,
    python: String,
    ext_dir: String,
}

impl Duck {
    /// Start the server with the venv's python and extension folder.
    pub fn start(python: &str, ext_dir: &str) -> Result<Self, String> {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/duckdb_server.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg("--ext-dir")
            .arg(ext_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start DuckDB ({python}): {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            lines,
            python: python.to_string(),
            ext_dir: ext_dir.to_string(),
        })
    }

    fn request(&mut self, req: &Value) -> Result<Value, String> {
        writeln!(self.stdin, "{req}").map_err(|e| format!("DuckDB server gone: {e}"))?;
        self.stdin
            .flush()
            .map_err(|e| format!("DuckDB server gone: {e}"))?;
        let line = match self.lines.recv_timeout(REQUEST_TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                // Start over with a fresh server; the caller gives up on this file.
                let _ = self.child.kill();
                let _ = self.child.wait();
                if let Ok(fresh) = Self::start(&self.python, &self.ext_dir) {
                    *self = fresh;
                }
                return Err(format!(
                    "DuckDB did not answer within {} s (a lock wait?)",
                    REQUEST_TIMEOUT.as_secs()
                ));
            }
            Err(RecvTimeoutError::Disconnected) => return Err("DuckDB server exited".into()),
        };
        serde_json::from_str(&line).map_err(|e| format!("bad DuckDB response {line}: {e}"))
    }

    /// A fresh in-memory database.
    pub fn reset(&mut self) -> Result<(), String> {
        let resp = self.request(&json!({"op": "reset"}))?;
        if resp["ok"].as_bool() == Some(true) {
            Ok(())
        } else {
            Err(format!("DuckDB reset failed: {resp}"))
        }
    }

    /// Run `sql` on connection `conn`.
    pub fn exec(&mut self, sql: &str, conn: Option<&str>) -> Result<DuckResult, String> {
        let resp = self.request(&json!({"op": "exec", "sql": sql, "conn": conn}))?;
        if resp["ok"].as_bool() != Some(true) {
            return Ok(DuckResult::Error(
                resp["error"].as_str().unwrap_or("?").to_string(),
            ));
        }
        if resp["kind"] == "rows" {
            let types = resp["types"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|t| t.as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default();
            let rows = resp["rows"]
                .as_array()
                .map(|rows| {
                    rows.iter()
                        .map(|r| {
                            r.as_array()
                                .map(|vals| {
                                    vals.iter()
                                        .map(|v| v.as_str().map(str::to_string))
                                        .collect()
                                })
                                .unwrap_or_default()
                        })
                        .collect()
                })
                .unwrap_or_default();
            return Ok(DuckResult::Rows { types, rows });
        }
        Ok(DuckResult::Done)
    }
}

impl Drop for Duck {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
