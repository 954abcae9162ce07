//! The DuckLake conformance runner: DuckLake's own sqllogictest suite
//! (`../shared/ducklake/suite/test/sql`, or `$LAKEQ_DUCKLAKE_SUITE`) run with
//! DuckDB 1.5.5 and lakeq side by side.
//!
//! - **read mode**: DuckDB runs the statements (it writes the lake); lakeq
//!   answers every query it can read, compared with the expected rows.
//! - **write mode**: lakeq runs the statements; each query is answered by lakeq
//!   and by DuckDB reading the lake lakeq wrote; both must give the expected rows.
//! - **cluster mode**: write mode with every lakeq session the coordinator of two
//!   `lakeq worker` processes on loopback, one scan task per input file (issue
//!   13: the suite's answers on a cluster are one process's). A different
//!   answer to a query about the data files themselves (GLOB counts, merge and
//!   rewrite results) is the cluster's file layout (a file per write task) and
//!   counted as not meaningful; every other difference counts as in write mode.
//!
//! Both modes run on SQLite and PostgreSQL catalogs (the suite's
//! `test/configs/{sqlite,postgres}.json`, including their skip lists). A query
//! counts when DuckDB itself passes it. Queries that are about DuckDB rather
//! than the lake (`duckdb_*()` functions, `EXPLAIN`, `PRAGMA`, settings, queries
//! inside an open DuckDB transaction) are classified with a reason, not dropped.
//! A result that differs from the expected one without an error is a
//! **mismatch**, the worst outcome; every one is listed.
//!
//! The summary goes to stdout and `target/conformance/report.json`. Without a
//! filter, the run fails when a pass count drops below, or the mismatch count
//! rises above, `tests/conformance/floor.toml` (a ratchet: raise it as lakeq
//! improves).
//!
//! Environment: `LAKEQ_CONFORMANCE=off` skips the run; `LAKEQ_CONFORMANCE_MODES`
//! (`read,write,cluster`), `LAKEQ_CONFORMANCE_BACKENDS` (`sqlite,postgres`),
//! `LAKEQ_CONFORMANCE_CLUSTER_BACKENDS` (`sqlite`: where cluster mode runs),
//! `LAKEQ_CONFORMANCE_VERBOSE=1` prints every failure,
//! `LAKEQ_CONFORMANCE_THREADS` (default: the cores) how many shards of the
//! files run side by side. A first free argument
//! filters test files by path substring (and disables the floor check).

mod compare;
mod duckdb;
mod runner;
mod script;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use runner::{Backend, Mode, Outcome, Status};

/// One mode's run on one backend: its summary and every query's outcome.
type Run = (Mode, runner::Summary, Vec<Outcome>);

/// One shard's part of a mode's run on a backend: its time and outcomes.
type ShardRun = (Mode, Backend, std::time::Duration, Vec<Outcome>);

fn suite_dir() -> PathBuf {
    std::env::var_os("LAKEQ_DUCKLAKE_SUITE").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/ducklake/suite"),
        PathBuf::from,
    )
}

fn test_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.join("test/sql")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "test") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Pass floors and mismatch ceilings per `mode.backend`.
fn read_floor(path: &Path) -> BTreeMap<String, (usize, usize)> {
    let mut out = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value: usize = value.trim().parse().unwrap_or(0);
        let entry = out.entry(section.clone()).or_insert((0, usize::MAX));
        match key.trim() {
            "pass" => entry.0 = value,
            "max_mismatches" => entry.1 = value,
            _ => {}
        }
    }
    out
}

/// A `lakeq worker` process on a free loopback port (killed when dropped).
struct Worker {
    child: std::process::Child,
    address: String,
}

impl Worker {
    fn start() -> Result<Self, String> {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lakeq"))
            .args(["worker", "--listen", "127.0.0.1:0"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("lakeq worker: {e}"))?;
        let stderr = child.stderr.take().ok_or("lakeq worker: no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let first = lines
            .next()
            .ok_or("lakeq worker exited before listening")?
            .map_err(|e| format!("lakeq worker: {e}"))?;
        let address = first
            .strip_prefix("lakeq worker listening on ")
            .ok_or_else(|| format!("lakeq worker said: {first}"))?
            .to_string();
        // Its log (a line per task) is drained, or the pipe would fill and stop it.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        for _ in 0..200 {
            if std::net::TcpStream::connect(&address).is_ok() {
                return Ok(Self { child, address });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(format!(
            "lakeq worker on {address} does not accept connections"
        ))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every name parsed by `parse`, or an error naming the first unknown `what`.
fn parse_all<T>(
    names: &[String],
    parse: fn(&str) -> Option<T>,
    what: &str,
) -> Result<Vec<T>, String> {
    names
        .iter()
        .map(|n| parse(n).ok_or_else(|| format!("unknown {what} {n}")))
        .collect()
}

fn main() -> ExitCode {
    if std::env::var("LAKEQ_CONFORMANCE").is_ok_and(|v| v == "off") {
        println!("conformance: skipped (LAKEQ_CONFORMANCE=off)");
        return ExitCode::SUCCESS;
    }
    if let Err(e) = script::self_check().and_then(|()| compare::self_check()) {
        eprintln!("conformance: {e}");
        return ExitCode::FAILURE;
    }
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let root = suite_dir();
    if !root.join("test/sql").is_dir() {
        println!(
            "conformance: DuckLake's test suite is not at {} — nothing to run. Get it from \
             github.com/duckdb/ducklake at the commit in ../shared/ducklake/suite/SOURCE.md \
             (d8a1881e22516ea3d186d73e83c65fe5bd1a1dc4: its test/ and data/ folders) and point \
             LAKEQ_DUCKLAKE_SUITE at the folder holding them.",
            root.display()
        );
        return ExitCode::SUCCESS;
    }
    let (python, ext_dir) = match runner::oracle_paths() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("conformance: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut files = test_files(&root);
    if let Some(f) = &filter {
        files.retain(|p| p.to_string_lossy().contains(f.as_str()));
        if files.is_empty() {
            println!("conformance: no suite file matches '{f}'");
            return ExitCode::SUCCESS;
        }
    }
    let list = |var: &str, default: &str| -> Vec<String> {
        std::env::var(var)
            .unwrap_or_else(|_| default.to_string())
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let modes = list("LAKEQ_CONFORMANCE_MODES", "read,write,cluster");
    // The cluster's answers do not depend on the catalog database: by default
    // cluster mode runs on SQLite only.
    let cluster_backends = list("LAKEQ_CONFORMANCE_CLUSTER_BACKENDS", "sqlite");
    let backends = list("LAKEQ_CONFORMANCE_BACKENDS", "sqlite,postgres");
    let verbose = std::env::var("LAKEQ_CONFORMANCE_VERBOSE").is_ok_and(|v| v == "1");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("conformance: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/conformance");
    let floor =
        read_floor(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/floor.toml"));
    let (parsed_modes, parsed_backends) = match (
        parse_all(&modes, Mode::parse, "mode"),
        parse_all(&backends, Backend::parse, "backend"),
    ) {
        (Ok(m), Ok(b)) => (m, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("conformance: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Cluster mode: two workers every shard's sessions coordinate (a stage goes
    // to either; workers hold no state between queries).
    let mut workers = Vec::new();
    if parsed_modes.contains(&Mode::Cluster) {
        for _ in 0..2 {
            match Worker::start() {
                Ok(w) => workers.push(w),
                Err(e) => {
                    eprintln!("conformance: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let cluster = (!workers.is_empty()).then(|| lakeq::distributed::ClusterOptions {
        workers: workers.iter().map(|w| w.address.clone()).collect(),
        // One task per file at most: the suite's tables are small, and a stage cut
        // into several tasks is where a distributed plan can go wrong.
        bytes_per_task: Some(1),
    });
    // The files are dealt round-robin to one shard per core (`LAKEQ_CONFORMANCE_THREADS`), each
    // a thread with its own DuckDB servers, catalogs and folders, running every backend and mode
    // over its files. Within a shard the modes run in order: write mode counts the queries DuckDB
    // passed in read mode on the same backend, for the same files.
    let shards = std::env::var("LAKEQ_CONFORMANCE_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 8)
        .min(files.len().max(1));
    let shard_runs: Vec<Result<Vec<ShardRun>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..shards)
            .map(|shard| {
                let (python, ext_dir, root, out_dir) = (&python, &ext_dir, &root, &out_dir);
                let (files, modes, backends, rt) = (&files, &parsed_modes, &parsed_backends, &rt);
                let (cluster, cluster_backends) = (&cluster, &cluster_backends);
                scope.spawn(move || {
                    let mut runs = Vec::new();
                    for &backend in backends {
                        for &mode in modes {
                            if mode == Mode::Cluster
                                && !cluster_backends.iter().any(|b| b == backend.name())
                            {
                                continue;
                            }
                            let started = std::time::Instant::now();
                            let mut run = runner::Runner::new(
                                python,
                                ext_dir,
                                (mode, backend, shard),
                                root,
                                out_dir,
                            )?
                            .with_cluster(cluster.clone().filter(|_| mode == Mode::Cluster));
                            let mut outcomes = Vec::new();
                            for file in files.iter().skip(shard).step_by(shards) {
                                let rel = file
                                    .strip_prefix(root)
                                    .unwrap_or(file)
                                    .to_string_lossy()
                                    .to_string();
                                let file_outcomes = rt.block_on(run.run_file(file, &rel));
                                if verbose {
                                    for o in &file_outcomes {
                                        if !matches!(o.status, Status::Pass) {
                                            println!("  {}:{} {}", o.file, o.line, o.status);
                                        }
                                    }
                                }
                                outcomes.extend(file_outcomes);
                            }
                            runs.push((mode, backend, started.elapsed(), outcomes));
                        }
                    }
                    Ok(runs)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a conformance thread panicked".into()))
            })
            .collect()
    });
    // One run per mode and backend, its shards' outcomes in file order; its time is the
    // longest shard's.
    let mut merged: Vec<ShardRun> = Vec::new();
    for shard in shard_runs {
        let shard = match shard {
            Ok(runs) => runs,
            Err(e) => {
                eprintln!("conformance: {e}");
                return ExitCode::FAILURE;
            }
        };
        for (mode, backend, elapsed, outcomes) in shard {
            match merged
                .iter_mut()
                .find(|(m, b, _, _)| *m == mode && *b == backend)
            {
                Some((_, _, longest, all)) => {
                    *longest = (*longest).max(elapsed);
                    all.extend(outcomes);
                }
                None => merged.push((mode, backend, elapsed, outcomes)),
            }
        }
    }
    let mut all_runs: Vec<Run> = merged
        .into_iter()
        .map(|(mode, backend, elapsed, mut outcomes)| {
            outcomes.sort_by(|a, b| a.file.cmp(&b.file));
            let summary = runner::summarize(mode, backend, &outcomes, elapsed);
            (mode, summary, outcomes)
        })
        .collect();
    // Report in the order the modes were asked for (read before write), backends within.
    all_runs.sort_by_key(|(mode, summary, _)| {
        (
            parsed_modes.iter().position(|m| m == mode),
            backends.iter().position(|b| b == summary.backend),
        )
    });
    let mut runs: Vec<(runner::Summary, Vec<Outcome>)> = Vec::new();
    let mut failed = false;
    for (mode, summary, outcomes) in all_runs {
        println!("{}", summary.line());
        for (reason, n) in summary.top_failures.iter().take(12) {
            println!("    {n:5}  {reason}");
        }
        if !summary.mismatches.is_empty() {
            println!("    mismatches (a different answer without an error):");
            for m in &summary.mismatches {
                println!("      {m}");
            }
        }
        let key = format!("{}.{}", mode.name(), summary.backend);
        if filter.is_none()
            && let Some((min_pass, max_mismatch)) = floor.get(&key)
        {
            if summary.pass < *min_pass {
                println!(
                    "conformance: {key} passes {} queries, below the floor of {min_pass} \
                     in tests/conformance/floor.toml",
                    summary.pass
                );
                failed = true;
            }
            if summary.mismatches.len() > *max_mismatch {
                println!(
                    "conformance: {key} has {} mismatches, above the ceiling of \
                     {max_mismatch} in tests/conformance/floor.toml",
                    summary.mismatches.len()
                );
                failed = true;
            }
        }
        runs.push((summary, outcomes));
    }
    let _ = std::fs::create_dir_all(&out_dir);
    let report = runner::report_json(&runs);
    let _ = std::fs::write(out_dir.join("report.json"), report);
    println!(
        "conformance: per-query outcomes in {}",
        out_dir.join("report.json").display()
    );
    for (s, _) in &runs {
        println!("{}", s.line());
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
