//! `lakeq init`: the written `lakeq.toml` is one `Config::load` accepts (and it
//! describes the embedded default), and an existing file is never overwritten
//! without `--force`.

use std::path::Path;
use std::process::{Command, Output};

use lakeq::config::{Config, embedded_lake};

use crate::common::{TestResult, scratch_dir};

fn lakeq(dir: &Path, args: &[&str]) -> TestResult<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_lakeq"))
        .current_dir(dir)
        .args(args)
        .output()?)
}

#[test]
fn init_writes_a_config_that_loads_and_refuses_to_overwrite_it() -> TestResult {
    let dir = scratch_dir("init");
    let project = dir.join("project");
    let out = lakeq(&dir, &["init", "--project", "project"])?;
    assert!(
        out.status.success(),
        "lakeq init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = project.join("lakeq.toml");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "wrote {}",
            Path::new("project").join("lakeq.toml").display()
        )
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The file parses, and its active part is the embedded default.
    let config = Config::load(&project)?;
    assert_eq!(config.source.as_deref(), Some(path.as_path()));
    assert_eq!(
        Path::new(&config.landing),
        project.join("lake").join("landing")
    );
    let names: Vec<&str> = config.lakes.keys().map(String::as_str).collect();
    assert_eq!(names, ["dev_analytics", "prod_analytics", "raw"]);
    for (name, lake) in &config.lakes {
        // The relative paths are taken from the project folder: the embedded default's.
        assert_eq!(lake, &embedded_lake(&project, name), "lake {name}");
    }
    let text = std::fs::read_to_string(&path)?;
    for expected in [
        "ducklake:postgres:dbname=postgres host=127.0.0.1",
        "s3://bucket/landing",
        "AWS_ENDPOINT_URL",
        "AWS_ALLOW_HTTP",
        "# [targets.prod]",
    ] {
        assert!(text.contains(expected), "the template lacks {expected}");
    }

    // A second init fails, names the file and --force, and changes nothing.
    std::fs::write(&path, format!("{text}# my edit\n"))?;
    let out = lakeq(&dir, &["init", "--project", "project"])?;
    assert!(!out.status.success(), "a second init succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lakeq.toml already exists") && stderr.contains("--force"),
        "unclear error: {stderr}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(&path)?,
        format!("{text}# my edit\n")
    );

    // --force overwrites.
    let out = lakeq(&dir, &["init", "--project", "project", "--force"])?;
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(&path)?, text);
    Ok(())
}

/// `lakeq init` then `lakeq run` works: the folder has no models of its own, so
/// the bundled sample project runs (and the output says so); the lakes resolve
/// against the project folder whatever folder lakeq runs in, and `lakeq sql
/// --project` attaches the lakes lakeq.toml configures.
#[test]
fn init_then_run_uses_the_bundled_models_and_sql_sees_the_lakes() -> TestResult {
    let dir = scratch_dir("init-run");
    let out = lakeq(&dir, &["init", "--project", "project"])?;
    assert!(out.status.success());
    // Run from the parent folder: the lakes still land in project/lake/.
    let out = lakeq(&dir, &["run", "1", "--project", "project", "--no-maintain"])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "lakeq run failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("no models/ folder in project: using lakeq's bundled sample project"),
        "{stderr}"
    );
    assert!(stdout.contains("9 models built"), "{stdout}");
    assert!(dir.join("project/lake/dev_analytics.sqlite").is_file());
    assert!(
        !dir.join("lake").exists(),
        "lakes were written outside the project folder"
    );
    let out = lakeq(
        &dir,
        &[
            "sql",
            "--project",
            "project",
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM dev_analytics.marts.dim_users; SELECT count(*) AS n FROM raw.saas.users",
        ],
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: Vec<&str> = stdout.lines().filter(|l| *l != "n").collect();
    assert_eq!(counts.len(), 2, "{stdout}");
    assert_eq!(counts[0], counts[1], "one dim_users row per user: {stdout}");
    assert_ne!(counts[0], "0", "{stdout}");
    // No lake was created by merely attaching (prod was never built).
    assert!(!dir.join("project/lake/prod_analytics.sqlite").exists());
    Ok(())
}
