//! Landing zone and lake data on S3: a real S3-compatible server (moto's server
//! mode, from the test venv) on 127.0.0.1; `lakeq generate` writes to it,
//! `lakeq ingest` loads it into a lake whose data path is on it, lakeq queries
//! it, and DuckDB 1.5.5 (httpfs + an S3 secret) reads the same lake.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    TestResult, compare_with_oracle, create_pg_database, duckdb_run, oracle_python, scratch_dir,
};
use crate::models::{MODEL_QUERIES, copy_bundled_models};

/// A moto S3 server, killed on drop.
struct S3Server {
    child: Child,
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
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot start moto's S3 server with {python} (run scripts/test.sh): {e}")
            })?;
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("moto's S3 server did not start within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn create_bucket(&self, bucket: &str) -> TestResult {
        let (python, _) = oracle_python()?;
        let status = Command::new(python)
            .args([
                "-c",
                &format!(
                    "import urllib.request; urllib.request.urlopen(urllib.request.Request('{}/{bucket}', method='PUT'))",
                    self.endpoint()
                ),
            ])
            .status()?;
        if !status.success() {
            return Err(format!("cannot create bucket {bucket}").into());
        }
        Ok(())
    }

    /// A `lakeq` command with the AWS environment pointing at this server.
    fn lakeq(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakeq"));
        cmd.current_dir(dir)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "lakeq-test")
            .env("AWS_SECRET_ACCESS_KEY", "lakeq-test-secret")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_ALLOW_HTTP", "true");
        cmd
    }
}

fn ok(mut cmd: Command) -> TestResult<String> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_ingest_and_models_on_s3_and_duckdb_reads_the_lakes() -> TestResult {
    let s3 = S3Server::start()?;
    s3.create_bucket("lakeq")?;
    let dir = scratch_dir("s3");
    std::fs::write(
        dir.join("lakeq.toml"),
        "landing = \"s3://lakeq/landing\"\n[lakes.raw]\ncatalog = \"ducklake:sqlite:lake/raw.sqlite\"\ndata_path = \"s3://lakeq/raw/\"\n",
    )?;
    ok(s3.lakeq(
        &dir,
        &[
            "generate",
            "--landing",
            "s3://lakeq/landing",
            "--batches",
            "2",
            "--users",
            "100",
            "--events",
            "2000",
            "--invoices",
            "200",
            "--tickets",
            "50",
        ],
    ))?;
    let out = ok(s3.lakeq(&dir, &["ingest", "--json"]))?;
    assert!(out.contains("\"files\":8"), "{out}");
    let out = ok(s3.lakeq(&dir, &["ingest"]))?;
    assert!(out.contains("nothing new"), "{out}");
    let csv = ok(s3.lakeq(
        &dir,
        &[
            "sql",
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM raw.saas.events",
        ],
    ))?;
    assert_eq!(csv, "n\n4000\n");

    // DuckDB reads the same lake from S3 (httpfs with a secret for the endpoint).
    let meta = dir.join("lake/raw.sqlite");
    let script = dir.join("q.slt");
    std::fs::write(
        &script,
        format!(
            "# data lives on s3://lakeq/raw/\nstatement ok\nCREATE SECRET (TYPE s3, KEY_ID 'lakeq-test', SECRET 'lakeq-test-secret', REGION 'us-east-1', ENDPOINT '127.0.0.1:{}', URL_STYLE 'path', USE_SSL false)\n\n\
             query events\nSELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM raw.saas.events\n\n\
             query invoices\nSELECT status, count(*) AS n, sum(amount) AS total FROM raw.saas.invoices GROUP BY status ORDER BY status\n",
            s3.port
        ),
    )?;
    let attach = format!("ATTACH 'ducklake:sqlite:{}' AS raw", meta.display());
    let expected = duckdb_run(std::slice::from_ref(&attach), &script)?;
    // lakeq in-process reads S3 settings from the environment, like the CLI.
    // SAFETY: no other test of this binary reads or writes the AWS_* variables.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "lakeq-test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "lakeq-test-secret");
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_ENDPOINT_URL", s3.endpoint());
        std::env::set_var("AWS_ALLOW_HTTP", "true");
    }
    let session = lakeq::Session::new();
    session.sql(&attach).await?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The bundled models on top: raw on SQLite + S3, dev_analytics on PostgreSQL + S3.
    let db = create_pg_database("s3_models").await?;
    let analytics = format!("ducklake:postgres:dbname={db} host=127.0.0.1 user=postgres");
    std::fs::write(
        dir.join("lakeq.toml"),
        format!(
            "landing = \"s3://lakeq/landing\"\n[lakes.raw]\ncatalog = \"ducklake:sqlite:lake/raw.sqlite\"\ndata_path = \"s3://lakeq/raw/\"\n\
             [lakes.dev_analytics]\ncatalog = \"{analytics}\"\nmetadata_schema = \"analytics\"\ndata_path = \"s3://lakeq/dev_analytics/\"\n"
        ),
    )?;
    copy_bundled_models(&dir)?;
    let out = ok(s3.lakeq(&dir, &["run", "0"]))?;
    assert!(out.contains("9 models built"), "{out}");
    let attach_analytics =
        format!("ATTACH '{analytics}' AS dev_analytics (METADATA_SCHEMA 'analytics')");
    let mut text = format!(
        "# data lives on s3://lakeq/\nstatement ok\nCREATE SECRET (TYPE s3, KEY_ID 'lakeq-test', SECRET 'lakeq-test-secret', REGION 'us-east-1', ENDPOINT '127.0.0.1:{}', URL_STYLE 'path', USE_SSL false)\n\n",
        s3.port
    );
    for (label, sql) in MODEL_QUERIES {
        text.push_str(&format!("query {label}\n{sql}\n\n"));
    }
    std::fs::write(&script, text)?;
    let expected = duckdb_run(&[attach, attach_analytics.clone()], &script)?;
    assert_eq!(expected.len(), MODEL_QUERIES.len());
    session.sql(&attach_analytics).await?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}
