//! `lakeq init`: the written `lakeq.toml` is one `Config::load` accepts (and it
//! describes the embedded default), and an existing file is never overwritten
//! without `--force`.

use std::path::Path;
use std::process::{Command, Output};

use lakeq::config::{Config, LakeConfig, embedded_lake};

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
        // Taken from the project folder (lakeq run from there), the relative paths
        // are the embedded default's.
        let catalog = lake
            .catalog
            .strip_prefix("ducklake:sqlite:")
            .ok_or_else(|| format!("lake {name}: not a SQLite catalog: {}", lake.catalog))?;
        let resolved = LakeConfig {
            catalog: format!("ducklake:sqlite:{}", project.join(catalog).display()),
            data_path: format!(
                "{}/",
                project.join(lake.data_path.trim_end_matches('/')).display()
            ),
            metadata_schema: lake.metadata_schema.clone(),
        };
        assert_eq!(resolved, embedded_lake(&project, name), "lake {name}");
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
