//! The crash matrix: `lakeq` processes killed with SIGKILL at random moments
//! in UPDATE, CREATE TABLE AS, `lakeq ingest`, `lakeq transform` and
//! `lakeq maintain`, on SQLite and PostgreSQL catalogs, one project per backend.
//!
//! Each operation first runs once to the end (half its duration is the kill
//! window), then [`KILLS`] times killed at a random moment of the window,
//! counted from the process's first new file on disk (seeded; the seed is
//! printed, and `LAKEQ_CRASH_SEED` replays a run). The phase each kill hit is
//! read from what it left and printed: `writing` (new files on disk, nothing
//! committed), `committed` (a new snapshot, the process still running: between
//! the commits of a transform, an ingest or a maintenance run, or on its way
//! out) or `finished` (the process had exited; the window then shrinks). At
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
use std::path::PathBuf;
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

    /// A random part of `d`.
    fn within(&mut self, d: Duration) -> Duration {
        let permille = self.next() % 1001;
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
    /// A narrower kill window, once a kill found the process finished.
    window: Option<Duration>,
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
        // Create both lakes (`lakeq sql` attaches the project's existing lakes).
        let session = lakeq::Session::new();
        for a in &attach {
            session.sql(a).await?;
        }
        drop(session);
        Ok(Self {
            backend,
            dir,
            attach,
            rng: Rng(seed | 1),
            kills: Vec::new(),
            window: None,
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

    /// The first, uninterrupted run of an operation: its duration is the
    /// window the kills are spread over.
    fn calibrate(&mut self, args: &[&str]) -> TestResult<Duration> {
        self.window = None;
        self.run(args)
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
        let mut out = crate::common::list_files(&self.dir.join("lake/raw"));
        out.extend(crate::common::list_files(
            &self.dir.join("lake/dev_analytics"),
        ));
        out
    }

    /// Start `lakeq args`; once it has written its first file, SIGKILL it at a
    /// random moment within `window`. DuckDB then opens the lakes first (it
    /// meets a hot journal as the kill left it) and runs `queries` with the
    /// newest snapshot ids, lakeq must read the same, and the phase the kill
    /// hit is recorded. Returns the new snapshots of `raw` and `dev_analytics`
    /// and the rows of `queries`.
    async fn kill(
        &mut self,
        op: &'static str,
        args: &[&str],
        window: Duration,
        queries: Vec<(String, String)>,
    ) -> TestResult<([i64; 2], Vec<Vec<Vec<String>>>)> {
        let before_snapshots = self.snapshots().await?;
        let before_files = self.files();
        // Half the uninterrupted run: the time after its first file.
        let window = self.window.map_or(window / 2, |w| w.min(window / 2));
        let delay = self.rng.within(window);
        let stderr = self.dir.join("killed.stderr");
        let mut child = self
            .lakeq(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()?;
        // The clock starts when the work has: the first new file on disk.
        let started = Instant::now();
        while child.try_wait()?.is_none() && self.files().iter().all(|f| before_files.contains(f)) {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{op}: no file written in 120 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(delay);
        child.kill()?; // SIGKILL (a no-op on a process that has exited)
        let status = child.wait()?;
        if status.signal().is_none() && !status.success() {
            return Err(format!(
                "{op}: lakeq {args:?} failed on its own: {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            )
            .into());
        }
        let new_files = self
            .files()
            .into_iter()
            .filter(|f| !before_files.contains(f))
            .count();
        let mut all = vec![
            (
                "raw_snapshot".to_string(),
                "SELECT coalesce(max(snapshot_id), 0) AS s FROM raw.snapshots()".to_string(),
            ),
            (
                "dev_snapshot".to_string(),
                "SELECT coalesce(max(snapshot_id), 0) AS s FROM dev_analytics.snapshots()"
                    .to_string(),
            ),
        ];
        all.extend(queries);
        let mut rows = self.agree(&all).await?;
        let mut after_snapshots = [0i64; 2];
        for (slot, r) in after_snapshots.iter_mut().zip(rows.drain(..2)) {
            *slot = r
                .first()
                .and_then(|r| r.first())
                .ok_or("no snapshot id")?
                .parse()?;
        }
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
            "{:?} {op}: killed {delay:?} after its first file (window {window:?}): {phase:?} \
             ({new_files} new files, {committed:?} new snapshots)",
            self.backend
        );
        self.kills.push((op, delay, phase));
        if phase == Phase::Finished {
            // Later runs of this operation are quicker than the first (which
            // created its tables): kill the next ones sooner.
            self.window = Some(delay);
        }
        Ok((committed, rows))
    }

    /// Queries run in DuckDB (first) and lakeq; they must agree. Returns the
    /// rows per query.
    async fn agree(&self, queries: &[(String, String)]) -> TestResult<Vec<Vec<Vec<String>>>> {
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

    fn update_queries() -> Vec<(String, String)> {
        vec![(
            "update".into(),
            "SELECT count(*) AS n, count(DISTINCT v) AS d, min(v) AS lo, max(v) AS hi, \
             sum(k) AS s FROM raw.crash.u"
                .into(),
        )]
    }

    /// `raw.crash.u`: every row updated equally often, once per committed UPDATE.
    fn check_update(&self, rows: &[Vec<Vec<String>>]) {
        let u = self.updates.to_string();
        let expected = vec![vec![
            ROWS.to_string(),
            "1".into(),
            u.clone(),
            u,
            (ROWS * (ROWS - 1) / 2).to_string(),
        ]];
        assert_eq!(
            rows.first(),
            Some(&expected),
            "raw.crash.u after {} UPDATEs",
            self.updates
        );
    }

    fn ctas_queries(&self) -> Vec<(String, String)> {
        self.ctas
            .iter()
            .map(|i| {
                (
                    format!("c{i}"),
                    format!("SELECT count(*) AS n, sum(k) AS s, sum(g) AS g FROM raw.crash.c{i}"),
                )
            })
            .collect()
    }

    /// Every committed CREATE TABLE AS is whole.
    fn check_ctas(rows: &[Vec<Vec<String>>]) {
        let g: u64 = (0..ROWS).map(|k| k % 7).sum();
        let whole = vec![vec![
            ROWS.to_string(),
            (ROWS * (ROWS - 1) / 2).to_string(),
            g.to_string(),
        ]];
        for r in rows {
            assert_eq!(r, &whole, "a CREATE TABLE AS table is whole");
        }
    }

    fn ingest_queries() -> Vec<(String, String)> {
        let mut queries = vec![(
            "loaded".to_string(),
            "SELECT split_part(path, '/', 1) AS t, count(*) AS files, count(DISTINCT path) AS d \
             FROM raw.saas._lakeq_files WHERE status = 'loaded' GROUP BY 1 ORDER BY 1"
                .to_string(),
        )];
        for (t, _) in BATCH {
            queries.push((
                t.to_string(),
                format!("SELECT count(*) AS n, count(DISTINCT _lakeq_id) AS d FROM raw.saas.{t}"),
            ));
        }
        queries
    }

    /// Each landing file loaded at most once and whole; returns the files loaded.
    fn check_ingest(&self, rows: &[Vec<Vec<String>>]) -> TestResult<u64> {
        let loaded = rows.first().ok_or("no loaded files")?;
        let mut total = 0;
        for (i, (t, per_file)) in BATCH.iter().enumerate() {
            let row = loaded
                .iter()
                .find(|r| r.first().map(String::as_str) == Some(*t));
            let files: u64 = row.and_then(|r| r.get(1)).map_or(Ok(0), |v| v.parse())?;
            let distinct = row.and_then(|r| r.get(2).cloned());
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

    fn model_queries() -> Vec<(String, String)> {
        MODEL_QUERIES
            .iter()
            .map(|(l, q)| ((*l).to_string(), (*q).to_string()))
            .collect()
    }

    /// Every model reads what the uninterrupted transform built.
    fn check_models(&self, rows: &[Vec<Vec<String>>]) {
        assert_eq!(rows.len(), self.models.len());
        for (q, got) in self.models.iter().zip(rows) {
            assert!(
                *got == q.rows,
                "{}: differs from the uninterrupted transform",
                q.label
            );
        }
    }

    fn maintained_queries() -> Vec<(String, String)> {
        vec![(
            "m".into(),
            "SELECT count(*) AS n, count(DISTINCT k) AS d, sum(k) AS s FROM raw.crash.m".into(),
        )]
    }

    /// `raw.crash.m` holds exactly the rows inserted into it.
    fn check_maintained(&self, rows: &[Vec<Vec<String>>]) {
        let n = self.m_rows;
        assert_eq!(
            rows.first(),
            Some(&vec![vec![
                n.to_string(),
                n.to_string(),
                (n * n.saturating_sub(1) / 2).to_string()
            ]])
        );
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
    let d = p.calibrate(&["sql", "-c", update])?;
    p.updates += 1;
    for _ in 0..KILLS {
        let ([raw, _], rows) = p
            .kill(
                "update",
                &["sql", "-c", update],
                d,
                Project::update_queries(),
            )
            .await?;
        assert!(raw <= 1, "an UPDATE made {raw} snapshots");
        p.updates += raw as u64;
        p.check_update(&rows);
    }

    // CREATE TABLE AS: whole or absent.
    let ctas = |i: usize| {
        format!(
            "CREATE TABLE raw.crash.c{i} AS SELECT range AS k, range % 7 AS g FROM range({ROWS})"
        )
    };
    let d = p.calibrate(&["sql", "-c", &ctas(0)])?;
    p.ctas.push(0);
    for i in 1..=KILLS {
        let queries = p.ctas_queries();
        let ([raw, _], rows) = p.kill("ctas", &["sql", "-c", &ctas(i)], d, queries).await?;
        Project::check_ctas(&rows);
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
            Project::check_ctas(&p.agree(&p.ctas_queries()).await?);
        }
    }

    // Ingest: each landing file loaded at most once, whole; then exactly once.
    p.generate()?;
    let d = p.calibrate(&["ingest"])?;
    for _ in 0..KILLS {
        p.generate()?;
        let (_, rows) = p
            .kill("ingest", &["ingest"], d, Project::ingest_queries())
            .await?;
        p.check_ingest(&rows)?;
    }
    p.run(&["ingest"])?;
    let loaded = p.check_ingest(&p.agree(&Project::ingest_queries()).await?)?;
    assert_eq!(
        loaded,
        4 * p.batches,
        "every landing file loaded exactly once"
    );

    // Transform: every model reads what the uninterrupted run built.
    let d = p.calibrate(&["transform"])?;
    let session = p.session().await?;
    for (label, sql) in MODEL_QUERIES {
        p.models.push(OracleQuery {
            label: (*label).into(),
            sql: (*sql).into(),
            columns: Vec::new(),
            rows: canonical::render_batches(&session.sql(sql).await?)?.1,
        });
    }
    for _ in 0..KILLS {
        let (_, rows) = p
            .kill("transform", &["transform"], d, Project::model_queries())
            .await?;
        p.check_models(&rows);
    }

    // Maintenance (flush, merge, expire, cleanup): no row changes.
    for l in ["raw", "dev_analytics"] {
        p.sql(&format!(
            "CALL {l}.set_option('delete_older_than', '1 second')"
        ))?;
    }
    p.small_inserts()?;
    let d = p.calibrate(&["maintain"])?;
    for _ in 0..KILLS {
        p.small_inserts()?;
        std::thread::sleep(Duration::from_millis(1100)); // old enough to expire
        let mut queries = Project::maintained_queries();
        queries.extend(Project::update_queries());
        let (_, rows) = p.kill("maintain", &["maintain"], d, queries).await?;
        p.check_maintained(&rows);
        p.check_update(rows.get(1..).unwrap_or_default());
    }

    // The kills' leftovers: orphans (partial uploads included) removed, and
    // nothing any snapshot references: both engines still read everything.
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
    let groups = [
        Project::update_queries(),
        p.ctas_queries(),
        Project::ingest_queries(),
        Project::model_queries(),
        Project::maintained_queries(),
    ];
    let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
    let rows = p.agree(&groups.concat()).await?;
    let mut rest = rows.as_slice();
    let mut parts = Vec::new();
    for n in sizes {
        let (part, tail) = rest.split_at(n);
        parts.push(part);
        rest = tail;
    }
    p.check_update(parts[0]);
    Project::check_ctas(parts[1]);
    assert_eq!(p.check_ingest(parts[2])?, 4 * p.batches);
    p.check_models(parts[3]);
    p.check_maintained(parts[4]);

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
