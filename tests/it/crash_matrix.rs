//! The crash matrix: `lakeq` processes killed with SIGKILL at random moments
//! in UPDATE, CREATE TABLE AS, `lakeq ingest`, `lakeq transform` and
//! `lakeq maintain`, on SQLite and PostgreSQL catalogs, one project per backend.
//!
//! Each operation first runs once to the end (its duration spreads the kill
//! points over its lifetime), then [`KILLS`] times killed at a random moment
//! (seeded; the seed is printed, and `LAKEQ_CRASH_SEED` replays a run). The
//! phase each kill hit is read from what it left and printed: `starting`
//! (nothing written yet), `writing` (new files on disk, nothing committed) or
//! `committed` (a new snapshot, the process still running: between the commits
//! of a transform, an ingest or a maintenance run, or on its way out). At
//! least a third of the kills must land in `writing` or `committed`.
//!
//! After every kill DuckDB 1.5.5 opens the lakes first (meeting whatever the
//! kill left, a hot SQLite journal included) and reads the same rows as lakeq,
//! reading every data file of the tables involved (so none is missing), and:
//! an UPDATE of every row is applied to all rows or none, once per committed
//! snapshot; a CREATE TABLE AS either exists whole or not at all; each landing
//! file is loaded at most once and whole; every model reads exactly what the
//! uninterrupted transform built; maintenance changes no row. At the end a
//! clean ingest loads each landing file exactly once, and
//! `ducklake_delete_orphaned_files` removes every file the kills left (partial
//! uploads included) while DuckDB still reads everything.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    Backend, OracleQuery, TestResult, canonical, create_pg_database, duckdb_run, scratch_dir,
};
use crate::models::{MODEL_QUERIES, copy_bundled_models};

/// Kills per operation and backend (5 operations: 25 per backend, 50 in all).
const KILLS: usize = 5;
/// Rows of the UPDATE and CREATE TABLE AS tables: enough for a write that lasts.
const ROWS: u64 = 300_000;
/// Landing rows per generated batch.
const BATCH: [(&str, u64); 4] = [
    ("events", 2000),
    ("invoices", 200),
    ("support_tickets", 60),
    ("users", 100),
];

/// Where a kill landed, read from what it left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Running, nothing written yet (start-up, planning, reading).
    Starting,
    /// Running, new files on disk, no new snapshot.
    Writing,
    /// Running, at least one new snapshot committed.
    Committed,
    /// The process had already exited.
    Finished,
}

/// A small seeded generator (xorshift64*): reproducible kill moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A fraction of `d` between 5% and 100%.
    fn within(&mut self, d: Duration) -> Duration {
        let permille = 50 + self.next() % 951;
        d.mul_f64(permille as f64 / 1000.0)
    }
}

/// One project (a `raw` and a `dev_analytics` lake) and what the test knows it holds.
struct Project {
    backend: Backend,
    dir: PathBuf,
    attach: Vec<String>,
    rng: Rng,
    kills: Vec<(&'static str, Duration, Phase)>,
    /// UPDATE snapshots committed (every row of `raw.crash.u` has `v` = this).
    updates: u64,
    /// CREATE TABLE AS tables committed.
    ctas: Vec<usize>,
    /// Landing batches generated.
    batches: u64,
    /// Rows in `raw.crash.m` (maintenance's table) and their sum of `k`.
    m_rows: u64,
    /// What every model read after the uninterrupted transform.
    models: Vec<OracleQuery>,
}

impl Project {
    async fn new(backend: Backend, seed: u64) -> TestResult<Self> {
        let dir = scratch_dir("crash");
        copy_bundled_models(&dir)?;
        std::fs::create_dir_all(dir.join("tmp"))?;
        let mut toml = "landing = \"lake/landing\"\n".to_string();
        let mut attach = Vec::new();
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(create_pg_database("crash").await?),
        };
        for l in ["raw", "dev_analytics"] {
            let data = format!("{}/lake/{l}/", dir.display());
            let (catalog, schema) = match &db {
                None => (
                    format!("ducklake:sqlite:{}/lake/{l}.sqlite", dir.display()),
                    String::new(),
                ),
                Some(db) => (
                    format!("ducklake:postgres:dbname={db} host=127.0.0.1 user=postgres"),
                    format!("metadata_schema = \"{l}\"\n"),
                ),
            };
            toml.push_str(&format!(
                "[lakes.{l}]\ncatalog = \"{catalog}\"\n{schema}data_path = \"{data}\"\n"
            ));
            let schema_opt = if db.is_some() {
                format!(", METADATA_SCHEMA '{l}'")
            } else {
                String::new()
            };
            attach.push(format!(
                "ATTACH '{catalog}' AS {l} (DATA_PATH '{data}'{schema_opt})"
            ));
        }
        toml.push_str(
            "[project]\nname = \"saas\"\n[targets.dev]\nlake = \"dev_analytics\"\n\
             [maintenance]\nexpire_older_than = \"1 second\"\nkeep_snapshots = 3\n",
        );
        std::fs::write(dir.join("lakeq.toml"), toml)?;
        Ok(Self {
            backend,
            dir,
            attach,
            rng: Rng(seed | 1),
            kills: Vec::new(),
            updates: 0,
            ctas: Vec::new(),
            batches: 0,
            m_rows: 0,
            models: Vec::new(),
        })
    }

    fn lakeq(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakeq"));
        cmd.current_dir(&self.dir)
            .env("TMPDIR", self.dir.join("tmp"))
            .args(args);
        cmd
    }

    /// Run `lakeq args` to the end; returns how long it took.
    fn run(&self, args: &[&str]) -> TestResult<Duration> {
        let started = Instant::now();
        let out = self.lakeq(args).output()?;
        if !out.status.success() {
            return Err(format!(
                "lakeq {args:?} failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(started.elapsed())
    }

    fn sql(&self, sql: &str) -> TestResult<Duration> {
        self.run(&["sql", "-c", sql])
    }

    /// The newest snapshot id of each lake (0 before it exists).
    async fn snapshots(&self) -> TestResult<[i64; 2]> {
        let mut out = [0; 2];
        for (slot, l) in out.iter_mut().zip(["raw", "dev_analytics"]) {
            let session = self.session().await?;
            let rows = canonical::render_batches(
                &session
                    .sql(&format!(
                        "SELECT max(snapshot_id) FROM ducklake_snapshots('{l}')"
                    ))
                    .await?,
            )?
            .1;
            *slot = rows
                .first()
                .and_then(|r| r.first())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
        Ok(out)
    }

    async fn session(&self) -> TestResult<lakeq::Session> {
        let s = lakeq::Session::new();
        for a in &self.attach {
            s.sql(a).await?;
        }
        Ok(s)
    }

    /// Every file under both data paths.
    fn files(&self) -> Vec<PathBuf> {
        let mut out = list_files(&self.dir.join("lake/raw"));
        out.extend(list_files(&self.dir.join("lake/dev_analytics")));
        out
    }

    /// Start `lakeq args`, SIGKILL it at a random moment within `duration`,
    /// and record the phase the kill hit. Returns the number of new snapshots
    /// in `raw` and `dev_analytics`.
    async fn kill(
        &mut self,
        op: &'static str,
        args: &[&str],
        duration: Duration,
    ) -> TestResult<[i64; 2]> {
        let before_snapshots = self.snapshots().await?;
        let before_files = self.files();
        let delay = self.rng.within(duration);
        let mut child = self
            .lakeq(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        std::thread::sleep(delay);
        child.kill()?; // SIGKILL (a no-op on a process that has exited)
        let status = child.wait()?;
        // DuckDB opens the lakes first: it meets a hot journal as the kill left it.
        let after_snapshots = duckdb_snapshots(&self.attach)?;
        let new_files = self
            .files()
            .into_iter()
            .filter(|f| !before_files.contains(f))
            .count();
        let committed = [
            after_snapshots[0] - before_snapshots[0],
            after_snapshots[1] - before_snapshots[1],
        ];
        let phase = if status.signal() != Some(9) {
            Phase::Finished
        } else if committed.iter().any(|n| *n > 0) {
            Phase::Committed
        } else if new_files > 0 {
            Phase::Writing
        } else {
            Phase::Starting
        };
        println!(
            "{:?} {op}: killed at {delay:?} of {duration:?}: {phase:?} ({new_files} new files, \
             {committed:?} new snapshots)",
            self.backend
        );
        self.kills.push((op, delay, phase));
        assert_eq!(
            self.snapshots().await?,
            after_snapshots,
            "lakeq and DuckDB see the same newest snapshots"
        );
        Ok(committed)
    }

    /// Queries run in DuckDB (first) and lakeq; they must agree. Returns
    /// lakeq's rows per query.
    async fn agree(&self, queries: &[(&str, String)]) -> TestResult<Vec<Vec<Vec<String>>>> {
        let mut script = String::new();
        for (label, sql) in queries {
            script.push_str(&format!("query {label}\n{sql}\n\n"));
        }
        let path = self
            .dir
            .join(format!("q-{}.slt", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, script)?;
        let expected = duckdb_run(&self.attach, &path)?;
        let session = self.session().await?;
        let problems = crate::common::compare_with_oracle(&session, &expected).await;
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        Ok(expected.into_iter().map(|q| q.rows).collect())
    }

    /// `raw.crash.u`: every row updated equally often, once per committed UPDATE.
    async fn check_update(&self) -> TestResult {
        let rows = self
            .agree(&[(
                "update",
                "SELECT count(*) AS n, count(DISTINCT v) AS d, min(v) AS lo, max(v) AS hi, \
                 sum(k) AS s FROM raw.crash.u"
                    .into(),
            )])
            .await?;
        let u = self.updates.to_string();
        let expected = vec![vec![
            ROWS.to_string(),
            "1".into(),
            u.clone(),
            u,
            (ROWS * (ROWS - 1) / 2).to_string(),
        ]];
        assert_eq!(
            rows,
            vec![expected],
            "raw.crash.u after {} UPDATEs",
            self.updates
        );
        Ok(())
    }

    /// Every committed CREATE TABLE AS is whole.
    async fn check_ctas(&self) -> TestResult {
        let queries: Vec<(String, String)> = self
            .ctas
            .iter()
            .map(|i| {
                (
                    format!("c{i}"),
                    format!("SELECT count(*) AS n, sum(k) AS s, sum(g) AS g FROM raw.crash.c{i}"),
                )
            })
            .collect();
        let refs: Vec<(&str, String)> = queries
            .iter()
            .map(|(l, q)| (l.as_str(), q.clone()))
            .collect();
        let g: u64 = (0..ROWS).map(|k| k % 7).sum();
        for rows in self.agree(&refs).await? {
            assert_eq!(
                rows,
                vec![vec![
                    ROWS.to_string(),
                    (ROWS * (ROWS - 1) / 2).to_string(),
                    g.to_string()
                ]]
            );
        }
        Ok(())
    }

    /// Each landing file loaded at most once and whole; returns the files loaded.
    async fn check_ingest(&self) -> TestResult<u64> {
        let mut queries = vec![(
            "loaded",
            "SELECT split_part(path, '/', 1) AS t, count(*) AS files, count(DISTINCT path) AS d \
             FROM raw.saas._lakeq_files WHERE status = 'loaded' GROUP BY 1 ORDER BY 1"
                .to_string(),
        )];
        for (t, _) in BATCH {
            queries.push((
                t,
                format!("SELECT count(*) AS n, count(DISTINCT _lakeq_id) AS d FROM raw.saas.{t}"),
            ));
        }
        let rows = self.agree(&queries).await?;
        let loaded = rows.first().ok_or("no loaded files")?;
        let mut total = 0;
        for (i, (t, per_file)) in BATCH.iter().enumerate() {
            let files: u64 = loaded
                .iter()
                .find(|r| r.first().map(String::as_str) == Some(*t))
                .and_then(|r| r.get(1))
                .map_or(Ok(0), |v| v.parse())?;
            let distinct = loaded
                .iter()
                .find(|r| r.first().map(String::as_str) == Some(*t))
                .and_then(|r| r.get(2).cloned());
            assert_eq!(
                distinct,
                Some(files.to_string()),
                "{t}: a file loaded twice"
            );
            assert!(files <= self.batches, "{t}: more files than batches");
            let n = (files * per_file).to_string();
            assert_eq!(
                rows.get(i + 1),
                Some(&vec![vec![n.clone(), n]]),
                "raw.saas.{t}: {files} files of {per_file} rows, each row once"
            );
            total += files;
        }
        Ok(total)
    }

    /// Every model reads what the uninterrupted transform built.
    async fn check_models(&self) -> TestResult {
        let queries: Vec<(&str, String)> = MODEL_QUERIES
            .iter()
            .map(|(l, q)| (*l, (*q).to_string()))
            .collect();
        let rows = self.agree(&queries).await?;
        for (q, got) in self.models.iter().zip(rows) {
            assert!(
                got == q.rows,
                "{}: differs from the uninterrupted transform",
                q.label
            );
        }
        Ok(())
    }

    /// `raw.crash.m` holds exactly the rows inserted into it.
    async fn check_maintained(&self) -> TestResult {
        let rows = self
            .agree(&[(
                "m",
                "SELECT count(*) AS n, count(DISTINCT k) AS d, sum(k) AS s FROM raw.crash.m".into(),
            )])
            .await?;
        let n = self.m_rows;
        assert_eq!(
            rows,
            vec![vec![vec![
                n.to_string(),
                n.to_string(),
                (n * n.saturating_sub(1) / 2).to_string()
            ]]]
        );
        Ok(())
    }

    fn generate(&mut self) -> TestResult {
        let mut args = vec!["generate".to_string(), "--batches".into(), "1".into()];
        for (t, n) in BATCH {
            let flag = match t {
                "support_tickets" => "--tickets",
                other => &format!("--{other}"),
            };
            args.push(flag.to_string());
            args.push(n.to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args)?;
        self.batches += 1;
        Ok(())
    }

    /// Small files for maintenance to merge: four inserts of 500 rows.
    fn small_inserts(&mut self) -> TestResult {
        let mut sql = String::new();
        for _ in 0..4 {
            sql.push_str(&format!(
                "INSERT INTO raw.crash.m SELECT range + {} AS k FROM range(500);\n",
                self.m_rows
            ));
            self.m_rows += 500;
        }
        self.sql(&sql)?;
        Ok(())
    }
}

/// DuckDB's newest snapshot id of `raw` and `dev_analytics` (0 before it has one).
fn duckdb_snapshots(attach: &[String]) -> TestResult<[i64; 2]> {
    let dir = scratch_dir("crash-oracle");
    let path = dir.join("s.slt");
    std::fs::write(
        &path,
        "query raw\nSELECT coalesce(max(snapshot_id), 0) AS s FROM raw.snapshots()\n\n\
         query dev_analytics\nSELECT coalesce(max(snapshot_id), 0) AS s FROM dev_analytics.snapshots()\n",
    )?;
    let out = duckdb_run(attach, &path)?;
    let _ = std::fs::remove_dir_all(&dir);
    let mut ids = [0; 2];
    for (slot, q) in ids.iter_mut().zip(&out) {
        *slot = q
            .rows
            .first()
            .and_then(|r| r.first())
            .ok_or("no snapshot id")?
            .parse()?;
    }
    Ok(ids)
}

/// Every file under `dir`, recursively.
fn list_files(dir: &Path) -> Vec<PathBuf> {
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

fn seed() -> u64 {
    std::env::var("LAKEQ_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

async fn crash_matrix(backend: Backend) -> TestResult {
    let seed = seed();
    println!("{backend:?}: LAKEQ_CRASH_SEED={seed}");
    let mut p = Project::new(backend, seed).await?;

    // UPDATE of every row: all rows or none, once per committed snapshot.
    p.sql(&format!(
        "CREATE SCHEMA raw.crash; CREATE TABLE raw.crash.u AS SELECT range AS k, 0::BIGINT AS v \
         FROM range({ROWS}); CREATE TABLE raw.crash.m (k BIGINT)"
    ))?;
    let update = "UPDATE raw.crash.u SET v = v + 1";
    let d = p.sql(update)?;
    p.updates += 1;
    for _ in 0..KILLS {
        let [raw, _] = p.kill("update", &["sql", "-c", update], d).await?;
        assert!(raw <= 1, "an UPDATE made {raw} snapshots");
        p.updates += raw as u64;
        p.check_update().await?;
    }

    // CREATE TABLE AS: whole or absent.
    let ctas = |i: usize| {
        format!(
            "CREATE TABLE raw.crash.c{i} AS SELECT range AS k, range % 7 AS g FROM range({ROWS})"
        )
    };
    let d = p.sql(&ctas(0))?;
    p.ctas.push(0);
    for i in 1..=KILLS {
        let [raw, _] = p.kill("ctas", &["sql", "-c", &ctas(i)], d).await?;
        assert!(raw <= 1, "a CREATE TABLE AS made {raw} snapshots");
        let session = p.session().await?;
        let exists = session
            .sql(&format!("SELECT count(*) FROM raw.crash.c{i}"))
            .await
            .is_ok();
        assert_eq!(
            exists,
            raw == 1,
            "c{i} exists exactly when its snapshot committed"
        );
        if exists {
            p.ctas.push(i);
        }
        p.check_ctas().await?;
    }

    // Ingest: each landing file loaded at most once, whole; then exactly once.
    p.generate()?;
    let d = p.run(&["ingest"])?;
    for _ in 0..KILLS {
        p.generate()?;
        p.kill("ingest", &["ingest"], d).await?;
        p.check_ingest().await?;
    }
    p.run(&["ingest"])?;
    let loaded = p.check_ingest().await?;
    assert_eq!(
        loaded,
        4 * p.batches,
        "every landing file loaded exactly once"
    );

    // Transform: every model reads what the uninterrupted run built.
    let d = p.run(&["transform"])?;
    let session = p.session().await?;
    for (label, sql) in MODEL_QUERIES {
        p.models.push(OracleQuery {
            label: (*label).into(),
            sql: (*sql).into(),
            columns: Vec::new(),
            rows: canonical::render_batches(&session.sql(sql).await?)?.1,
        });
    }
    p.check_models().await?;
    for _ in 0..KILLS {
        p.kill("transform", &["transform"], d).await?;
        p.check_models().await?;
    }
    p.run(&["transform"])?;
    p.check_models().await?;

    // Maintenance (flush, merge, expire, cleanup): no row changes.
    for l in ["raw", "dev_analytics"] {
        p.sql(&format!(
            "CALL {l}.set_option('delete_older_than', '1 second')"
        ))?;
    }
    p.small_inserts()?;
    let d = p.run(&["maintain"])?;
    for _ in 0..KILLS {
        p.small_inserts()?;
        std::thread::sleep(Duration::from_millis(1100)); // old enough to expire
        p.kill("maintain", &["maintain"], d).await?;
        p.check_maintained().await?;
        p.check_update().await?;
        p.check_ingest().await?;
    }
    p.check_models().await?;

    // The kills' leftovers: orphans (partial uploads included) removed, and
    // nothing any snapshot references.
    let leftovers_before = p.files().len();
    for l in ["raw", "dev_analytics"] {
        p.sql(&format!(
            "CALL ducklake_delete_orphaned_files('{l}', cleanup_all => true)"
        ))?;
    }
    let partial = p
        .files()
        .into_iter()
        .filter(|f| f.to_string_lossy().contains(".parquet#"))
        .count();
    println!(
        "{backend:?}: {} files before the orphan sweep, {} after, {partial} partial uploads left",
        leftovers_before,
        p.files().len()
    );
    assert_eq!(partial, 0, "partial uploads are removed as orphans");
    p.check_update().await?;
    p.check_ctas().await?;
    p.check_ingest().await?;
    p.check_models().await?;
    p.check_maintained().await?;

    let mid_work = p
        .kills
        .iter()
        .filter(|(_, _, ph)| matches!(ph, Phase::Writing | Phase::Committed))
        .count();
    let count = |phase| p.kills.iter().filter(|(_, _, ph)| *ph == phase).count();
    println!(
        "{backend:?}: {} kills: {} starting, {} writing, {} committed, {} finished; 0 rows lost",
        p.kills.len(),
        count(Phase::Starting),
        count(Phase::Writing),
        count(Phase::Committed),
        count(Phase::Finished)
    );
    assert!(
        mid_work * 3 >= p.kills.len(),
        "only {mid_work} of {} kills hit a process writing or between commits",
        p.kills.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_matrix_on_sqlite() -> TestResult {
    crash_matrix(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_matrix_on_postgres() -> TestResult {
    crash_matrix(Backend::Postgres).await
}
