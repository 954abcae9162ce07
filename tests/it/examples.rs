//! The embedding examples (`examples/`) run as a user runs them, against lakes
//! DuckDB 1.5.5 wrote, and DuckDB reads what they wrote. `cargo build
//! --examples` builds them; scripts/test.sh runs it before the tests.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{TestResult, duckdb_run, scratch_dir};

/// The compiled example `name` beside this test binary (`target/<profile>/examples/`).
fn example(name: &str) -> TestResult<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("no target folder above the test binary")?;
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        return Err(format!(
            "{} is not built: run `cargo build --examples` first (scripts/test.sh does)",
            path.display()
        )
        .into());
    }
    Ok(path)
}

/// The value of the `key: value` line of an example's output.
fn line<'a>(output: &'a str, key: &str) -> TestResult<&'a str> {
    output
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(": ")))
        .ok_or_else(|| format!("no '{key}:' line in the example's output:\n{output}").into())
}

#[test]
fn embed_example_reads_a_duckdb_lake_writes_streams_and_time_travels() -> TestResult {
    let dir = scratch_dir("example-embed");
    let attach = format!(
        "ATTACH 'ducklake:sqlite:{0}/meta.sqlite' AS lake (DATA_PATH '{0}/data/')",
        dir.display()
    );
    let script = dir.join("duckdb-writes.slt");
    std::fs::write(
        &script,
        "statement ok\nCREATE TABLE lake.main.duck AS SELECT range AS i FROM range(100)\n\n\
         query I\nSELECT count(*) FROM lake.main.duck\n",
    )?;
    duckdb_run(std::slice::from_ref(&attach), &script)?;

    let out = Command::new(example("embed")?).arg(&dir).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "the example failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(line(&stdout, "duck rows")?, "100");
    assert_eq!(line(&stdout, "duck sum")?, "4950");
    assert_eq!(line(&stdout, "streamed rows")?, "1000");
    assert_eq!(line(&stdout, "rows via ctx.sql")?, "2000");
    let travelled = stdout
        .lines()
        .find(|l| l.starts_with("rows at snapshot "))
        .ok_or("no time-travel line")?;
    assert!(travelled.ends_with(": 1000"), "{travelled}");

    // DuckDB reads what the example wrote.
    let check = dir.join("duckdb-reads.slt");
    std::fs::write(
        &check,
        "query II\nSELECT count(*), sum(id) FROM lake.main.events\n",
    )?;
    let answers = duckdb_run(&[attach], &check)?;
    let rows = &answers.first().ok_or("DuckDB answered nothing")?.rows;
    assert_eq!(rows, &vec![vec!["2000".to_string(), "1999000".to_string()]]);
    Ok(())
}

/// The output of `lakeq <args>` run in `dir`, which must succeed.
fn cli_ok(dir: &std::path::Path, args: &[&str]) -> TestResult<String> {
    let out = crate::common::lakeq_cli(dir, args)?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!(
            "lakeq {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(stdout)
}

#[test]
fn run_project_example_builds_what_lakeq_run_builds() -> TestResult {
    // The same bundled project in two folders: one run by the example through the library,
    // one by the `lakeq run 1` command; same seed, so the same data and the same marts.
    let library = scratch_dir("example-run-project-library");
    let command = scratch_dir("example-run-project-command");
    for dir in [&library, &command] {
        crate::models::copy_bundled_models(dir)?;
    }
    let out = Command::new(example("run_project")?)
        .arg(&library)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "the example failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = cli_ok(&command, &["run", "1", "--no-maintain"])?;
    assert_eq!(line(&stdout, "all ok")?, "true");
    assert_eq!(line(&stdout, "models built")?, "9");
    let tests_passed = line(&stdout, "tests passed")?;
    assert!(
        printed.contains(&format!("9 models built, {tests_passed} tests passed")),
        "the example passed {tests_passed} tests; the command printed:\n{printed}"
    );
    assert!(library.join("target/run_results.json").exists());

    // Every mart, row for row, as `lakeq sql` reads it in each folder.
    let lake = line(&stdout, "target lake")?;
    for mart in ["dim_users", "fct_daily_active_users", "fct_revenue"] {
        let sql = format!("SELECT * FROM {lake}.marts.{mart} ORDER BY ALL");
        let args = ["sql", "--format", "csv", "-c", sql.as_str()];
        let ours = cli_ok(&library, &args)?;
        assert!(ours.lines().count() > 1, "{mart} is empty:\n{ours}");
        assert_eq!(ours, cli_ok(&command, &args)?, "{mart} differs");
    }
    Ok(())
}
