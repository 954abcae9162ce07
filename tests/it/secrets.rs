//! Secrets never leave through an output: a whole pipeline (generate on S3,
//! ingest, `lakeq run` with models, tests and maintenance, compile, ls,
//! snapshots, sql) against PostgreSQL catalogs whose connection strings carry a
//! password (libpq `password=` and URL `user:password@` forms) and an S3 server
//! reached with access keys and a session token, every one a unique marker;
//! plus the error paths (an unreachable host, an unknown role, an unknown
//! database, a refused sslmode, a broken connection string, an unknown option,
//! a missing bucket). Every stdout and stderr, every file lakeq wrote under the
//! project (target/manifest.json, target/run_results.json, temporary files),
//! every row of the catalogs and every object on S3 is searched for the
//! markers: none may appear.
//!
//! The test PostgreSQL server trusts local connections, so a wrong password is
//! accepted there; a password sent to an unknown role or database exercises the
//! server's refusals instead.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestResult, create_pg_database, oracle_python, scratch_dir};
use crate::models::copy_bundled_models;

/// A moto S3 server, killed on drop.
struct S3Server {
    child: std::process::Child,
    port: u16,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    fn start() -> TestResult<Self> {
        let (python, _) = oracle_python()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = Self { child, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err("moto's S3 server did not start within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    /// Run Python with a boto3 client `c` for this server.
    fn boto(&self, code: &str) -> TestResult<String> {
        let (python, _) = oracle_python()?;
        let out = Command::new(python)
            .arg("-c")
            .arg(format!(
                "import boto3\nc = boto3.client('s3', endpoint_url='http://127.0.0.1:{}', \
                 aws_access_key_id='k', aws_secret_access_key='s', region_name='us-east-1')\n{code}",
                self.port
            ))
            .output()?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The secrets of one run, each unique.
struct Markers(Vec<(&'static str, String)>);

impl Markers {
    fn new() -> Self {
        let m = |what: &str| format!("{what}{}", uuid::Uuid::new_v4().simple());
        Self(vec![
            ("PostgreSQL password (libpq form)", m("pgpwkv")),
            ("PostgreSQL password (URL form)", m("pgpwurl")),
            ("AWS access key id", m("AKIAMARK")),
            ("AWS secret access key", m("awssecret")),
            ("AWS session token", m("awstoken")),
        ])
    }

    fn get(&self, i: usize) -> &str {
        &self.0[i].1
    }

    /// The markers found in `bytes` (as what they are).
    fn found_in(&self, bytes: &[u8]) -> Vec<&'static str> {
        let text = String::from_utf8_lossy(bytes);
        self.0
            .iter()
            .filter(|(_, m)| text.contains(m.as_str()))
            .map(|(what, _)| *what)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_any_output() -> TestResult {
    let markers = Markers::new();
    let s3 = S3Server::start()?;
    s3.boto("c.create_bucket(Bucket='secrets')")?;
    let raw_db = create_pg_database("secrets_raw").await?;
    let analytics_db = create_pg_database("secrets_analytics").await?;
    let raw = format!(
        "ducklake:postgres:dbname={raw_db} host=127.0.0.1 user=postgres password={}",
        markers.get(0)
    );
    let analytics = format!(
        "ducklake:postgres:postgres://postgres:{}@127.0.0.1:5432/{analytics_db}",
        markers.get(1)
    );
    let dir = scratch_dir("secrets");
    let config = format!(
        "landing = \"s3://secrets/landing\"\n\
         [lakes.raw]\ncatalog = \"{raw}\"\nmetadata_schema = \"raw\"\ndata_path = \"s3://secrets/raw/\"\n\
         [lakes.dev_analytics]\ncatalog = \"{analytics}\"\nmetadata_schema = \"analytics\"\ndata_path = \"s3://secrets/dev_analytics/\"\n"
    );
    // The search finds the markers where they are (the test's own lakeq.toml).
    assert_eq!(markers.found_in(config.as_bytes()).len(), 2);
    std::fs::write(dir.join("lakeq.toml"), &config)?;
    copy_bundled_models(&dir)?;
    // A second project whose raw lake is on a host nobody answers on.
    let broken = dir.join("broken");
    std::fs::create_dir_all(&broken)?;
    std::fs::write(
        broken.join("lakeq.toml"),
        config.replace("host=127.0.0.1", "host=127.0.0.1 port=1 connect_timeout=2"),
    )?;
    std::fs::create_dir_all(dir.join("tmp"))?;

    let lakeq = |args: &[&str]| -> TestResult<Output> {
        Ok(Command::new(env!("CARGO_BIN_EXE_lakeq"))
            .current_dir(&dir)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", markers.get(2))
            .env("AWS_SECRET_ACCESS_KEY", markers.get(3))
            .env("AWS_SESSION_TOKEN", markers.get(4))
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", s3.port))
            .env("AWS_ALLOW_HTTP", "true")
            .env("TMPDIR", dir.join("tmp"))
            .output()?)
    };
    let attach_raw =
        format!("ATTACH '{raw}' AS raw (METADATA_SCHEMA 'raw', DATA_PATH 's3://secrets/raw/')");
    let attach_analytics = format!(
        "ATTACH '{analytics}' AS dev_analytics (METADATA_SCHEMA 'analytics', DATA_PATH 's3://secrets/dev_analytics/')"
    );
    let sql = |stmts: &str| format!("{attach_raw}; {attach_analytics}; {stmts}");
    let bad_attach = |location: &str| format!("ATTACH '{location}' AS x; SELECT 1");

    // (arguments, whether the command succeeds)
    let runs: Vec<(Vec<String>, bool)> = vec![
        (
            vec![
                "generate",
                "--landing",
                "s3://secrets/landing",
                "--batches",
                "1",
                "--users",
                "100",
                "--events",
                "2000",
                "--invoices",
                "200",
                "--tickets",
                "50",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            true,
        ),
        (vec!["ingest".into(), "--json".into()], true),
        (vec!["run".into(), "0".into()], true),
        (vec!["test".into()], true),
        (vec!["compile".into()], true),
        (vec!["ls".into()], true),
        (vec!["maintain".into()], true),
        (
            vec![
                "sql".into(),
                "--format".into(),
                "json".into(),
                "-c".into(),
                sql(
                    "SELECT count(*) AS n FROM raw.saas.events; FROM raw.snapshots(); \
                     FROM dev_analytics.options(); SELECT * FROM information_schema.schemata; \
                     BEGIN; INSERT INTO raw.saas.events SELECT * FROM raw.saas.events LIMIT 1; \
                     SELECT count(*) FROM raw.saas.events; COMMIT",
                ),
            ],
            true,
        ),
        // Error paths.
        (
            vec![
                "sql".into(),
                "-c".into(),
                sql("SELECT * FROM raw.saas.nosuch"),
            ],
            false,
        ),
        (
            vec!["ingest".into(), "--project".into(), "broken".into()],
            false,
        ),
        (
            vec![
                "snapshots".into(),
                "--location".into(),
                raw.replace("host=127.0.0.1", "host=127.0.0.1 port=1 connect_timeout=2"),
            ],
            false,
        ),
        (
            vec![
                "run".into(),
                "0".into(),
                "--project".into(),
                "broken".into(),
            ],
            false,
        ),
        (
            vec![
                "sql".into(),
                "-c".into(),
                bad_attach(
                    &raw.replace("host=127.0.0.1", "host=127.0.0.1 port=1 connect_timeout=2"),
                ),
            ],
            false,
        ),
        (
            vec![
                "sql".into(),
                "-c".into(),
                bad_attach(&raw.replace("user=postgres", "user=nosuchrole")),
            ],
            false,
        ),
        (
            vec![
                "sql".into(),
                "-c".into(),
                bad_attach(&analytics.replace("//postgres:", "//nosuchrole:")),
            ],
            false,
        ),
        (
            vec![
                "sql".into(),
                "-c".into(),
                bad_attach(&raw.replace(&raw_db, "nosuchdb")),
            ],
            false,
        ),
        (
            vec![
                "sql".into(),
                "-c".into(),
                bad_attach(&format!("{raw} sslmode=require")),
            ],
            false,
        ),
        (
            vec![
                "sql".into(),
                "-c".into(),
                bad_attach(&raw.replace(
                    &format!("password={}", markers.get(0)),
                    &format!("password=''{}", markers.get(0)),
                )),
            ],
            false,
        ),
        (
            vec![
                "sql".into(),
                "-c".into(),
                format!("ATTACH '{raw}' AS x (NO_SUCH_OPTION 1)"),
            ],
            false,
        ),
        (
            vec![
                "sql".into(),
                "-c".into(),
                format!("{attach_raw}; ATTACH '{raw}' AS raw"),
            ],
            false,
        ),
        (
            vec![
                "generate".into(),
                "--landing".into(),
                "s3://nosuchbucket/landing".into(),
                "--batches".into(),
                "1".into(),
                "--users".into(),
                "10".into(),
            ],
            false,
        ),
    ];

    let mut leaks = Vec::new();
    let mut outputs = 0;
    for (args, succeeds) in &runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = lakeq(&args)?;
        let shown = format!("lakeq {}", args.join(" ").replace(markers.get(0), "<pw>"));
        assert_eq!(
            out.status.success(),
            *succeeds,
            "{shown}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if std::env::var_os("LAKEQ_SHOW_ERRORS").is_some() && !succeeds {
            eprintln!("{shown}\n  {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            outputs += 1;
            for what in markers.found_in(bytes) {
                leaks.push(format!(
                    "{what} in the {stream} of `{shown}`:\n{}",
                    String::from_utf8_lossy(bytes)
                ));
            }
        }
    }

    // Files lakeq wrote under the project (the two lakeq.toml are the test's).
    let files: Vec<PathBuf> = crate::common::list_files(&dir)
        .into_iter()
        .filter(|p| p.file_name().is_none_or(|n| n != "lakeq.toml"))
        .collect();
    for required in ["target/manifest.json", "target/run_results.json"] {
        assert!(files.contains(&dir.join(required)), "{required} missing");
    }
    for f in &files {
        for what in markers.found_in(&std::fs::read(f)?) {
            leaks.push(format!("{what} in {}", f.display()));
        }
    }

    // Every row of both catalogs.
    let mut catalog_rows = 0i64;
    for (db, schema) in [(&raw_db, "raw"), (&analytics_db, "analytics")] {
        use sqlx::Connection;
        let url = std::env::var("LAKEQ_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
        let mut conn = sqlx::PgConnection::connect(&format!("{base}/{db}")).await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
        )
        .bind(schema)
        .fetch_all(&mut conn)
        .await?;
        assert!(tables.len() > 20, "{schema}: {tables:?}");
        for t in tables {
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT t::text FROM \"{schema}\".\"{t}\" AS t"
            )))
            .fetch_all(&mut conn)
            .await?;
            catalog_rows += i64::try_from(rows.len())?;
            for what in markers.found_in(rows.join("\n").as_bytes()) {
                leaks.push(format!("{what} in catalog table {schema}.{t}"));
            }
        }
    }

    // Every object on S3.
    let objects = s3.boto(&format!(
        "n = 0\nfound = set()\nfor page in c.get_paginator('list_objects_v2').paginate(Bucket='secrets'):\n\
         \x20   for o in page.get('Contents', []):\n\
         \x20       n += 1\n\
         \x20       body = c.get_object(Bucket='secrets', Key=o['Key'])['Body'].read()\n\
         \x20       for m in {:?}:\n\
         \x20           if m.encode() in body or m in o['Key']:\n\
         \x20               found.add(o['Key'])\n\
         print(n)\nfor k in sorted(found):\n    print(k)\n",
        markers.0.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>()
    ))?;
    let mut lines = objects.lines();
    let object_count: usize = lines.next().ok_or("no object count")?.parse()?;
    assert!(object_count > 10, "{object_count} objects on S3");
    for key in lines {
        leaks.push(format!("a secret in S3 object {key}"));
    }

    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
    eprintln!(
        "{} commands ({} failing on purpose), {outputs} outputs, {} files, {catalog_rows} catalog \
         rows and {object_count} S3 objects searched for 5 secrets: none found",
        runs.len(),
        runs.iter().filter(|(_, ok)| !ok).count(),
        files.len()
    );
    Ok(())
}
