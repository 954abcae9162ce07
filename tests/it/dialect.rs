//! DuckDB's semantics, checked against DuckDB 1.5.5: every statement of
//! `tests/dialect/semantics.sql` runs in DuckDB and in lakeq; both must give the
//! same values (each as DuckDB prints it) or both must fail.

use std::path::Path;

use lakeq::dialect::render::value_text;

use crate::common::{TestResult, oracle_python};

#[path = "../conformance/duckdb.rs"]
#[allow(dead_code)]
pub(crate) mod duckdb;

use duckdb::{Duck, DuckResult};

/// Every value of `batches` as DuckDB prints it (`None` = NULL), row by row.
fn duckdb_texts(batches: &[datafusion::arrow::array::RecordBatch]) -> Vec<Vec<Option<String>>> {
    batches
        .iter()
        .flat_map(|b| {
            (0..b.num_rows()).map(move |r| {
                b.columns()
                    .iter()
                    .map(|c| value_text(c.as_ref(), r))
                    .collect::<Vec<_>>()
            })
        })
        .collect()
}

#[tokio::test]
async fn duckdb_semantics_match_duckdb() -> TestResult {
    let (python, ext) = oracle_python()?;
    let mut duck = Duck::start(&python, &ext)?;
    let script = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialect/semantics.sql"),
    )?;
    let statements = lakeq::dialect::lake_statements::split_statements(&script)?;
    assert!(statements.len() > 40, "the script lost its statements");
    let session = lakeq::Session::new();
    let mut failures = Vec::new();
    for sql in &statements {
        let expected = duck.exec(sql, None)?;
        let got = session.sql(sql).await;
        let ours = got.map(|b| duckdb_texts(&b)).map_err(|e| e.to_string());
        match (&expected, &ours) {
            (DuckResult::Error(_), Err(_)) => {}
            (DuckResult::Rows { rows, .. }, Ok(mine)) if rows == mine => {}
            (DuckResult::Done, Ok(mine)) if mine.is_empty() => {}
            _ => failures.push(format!(
                "{sql}\n    DuckDB: {expected:?}\n    lakeq:  {ours:?}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} statements differ from DuckDB:\n{}",
        failures.len(),
        statements.len(),
        failures.join("\n")
    );
    Ok(())
}

/// Where lakeq cannot give DuckDB's answer it fails: DuckDB sums BIGINTs into a
/// HUGEINT; DataFusion's sum wraps around, lakeq's refuses an overflowing total
/// (and keeps exact totals, and the BIGINT type, below it).
#[tokio::test]
async fn an_integer_sum_never_wraps_around() -> TestResult {
    let session = lakeq::Session::new();
    let err = session
        .sql("SELECT sum(x) FROM (VALUES (9223372036854775807), (1)) t(x)")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("out of range"), "{err}");
    let batches = session
        .sql(
            "SELECT g, sum(x) AS s, typeof(sum(x)) AS t FROM (VALUES (1, 9223372036854775806), \
             (1, -5), (2, 3)) v(g, x) GROUP BY g ORDER BY g",
        )
        .await?;
    let (_, rows) = crate::common::canonical::render_batches(&batches)?;
    assert_eq!(
        rows,
        vec![
            vec![
                "1".to_string(),
                "9223372036854775801".into(),
                "BIGINT".into()
            ],
            vec!["2".to_string(), "3".into(), "BIGINT".into()],
        ]
    );
    Ok(())
}

/// DuckDB's COPY options and file reads: lakeq writes Parquet (Hive-partitioned)
/// and CSV files with DuckDB's option list, and both engines read them back,
/// in place, to the same values.
#[tokio::test]
async fn copy_options_and_file_reads_match_duckdb() -> TestResult {
    let (python, ext) = oracle_python()?;
    let mut duck = Duck::start(&python, &ext)?;
    let dir = crate::common::scratch_dir("copy_files");
    let d = dir.display();
    let session = lakeq::Session::new();
    for sql in [
        format!(
            "COPY (SELECT i AS id, i % 2 AS part, 'v' || i AS s FROM range(6) t(i)) \
             TO '{d}/parts' (FORMAT parquet, PARTITION_BY (part))"
        ),
        format!("COPY (SELECT 1 AS a, 'x|y' AS b) TO '{d}/one.csv' (HEADER, DELIMITER ';')"),
        format!("COPY (SELECT 2 AS a) TO '{d}/two.parquet' (FORMAT parquet)"),
        format!("COPY (SELECT 3 AS a) TO '{d}/plain/x/three.parquet' (FORMAT parquet)"),
        format!("COPY (SELECT 4 AS a) TO '{d}/plain/x/y/four.parquet' (FORMAT parquet)"),
        // Hive partition values typed as DuckDB types them (BIGINT, DATE, else VARCHAR).
        format!(
            "COPY (SELECT * FROM (VALUES (9, DATE '2024-01-02', '007', 'a b', 1), \
             (10, DATE '2024-01-03', '10', 'c', 2), (10, DATE '2024-01-03', '10', NULL, 3)) \
             t(y, dt, z, s, v)) TO '{d}/typed' (FORMAT parquet, PARTITION_BY (y, dt, z, s))"
        ),
        // Parquet has no seconds unit: DuckDB writes TIMESTAMP_S as microseconds
        // (arrow-rs alone wrote a plain INT64 that DuckDB read as a BIGINT).
        format!(
            "COPY (SELECT TIMESTAMP_S '2020-02-03 12:23:34' AS s, \
             TIMESTAMP_MS '2020-02-03 12:23:34.123' AS ms) TO '{d}/ts.parquet' (FORMAT parquet)"
        ),
    ] {
        if let Some(parent) = sql
            .split('\'')
            .nth(1)
            .and_then(|p| Path::new(p).parent())
            .filter(|p| p.ends_with("x") || p.ends_with("y"))
        {
            std::fs::create_dir_all(parent)?;
        }
        session.sql(&sql).await.map_err(|e| format!("{sql}: {e}"))?;
    }
    let refused = session
        .sql(&format!(
            "COPY (SELECT 1) TO '{d}/x.parquet' (FIELD_IDS {{a: 1}})"
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("FIELD_IDS"), "{refused}");
    let mut failures = Vec::new();
    for sql in [
        format!(
            "SELECT id, part, s FROM read_parquet('{d}/parts/*/*.parquet', hive_partitioning = true) ORDER BY id"
        ),
        format!("SELECT a, b FROM read_csv('{d}/one.csv', delim = ';', header = true)"),
        format!("SELECT a FROM '{d}/two.parquet'"),
        format!("SELECT s, ms, typeof(s) FROM '{d}/ts.parquet'"),
        format!(
            "SELECT typeof(y), typeof(dt), typeof(z), typeof(s), y, dt, z, s, v \
             FROM '{d}/typed/**/*.parquet' ORDER BY y, v"
        ),
        format!(
            "SELECT typeof(part), part, sum(id) FROM read_parquet('{d}/parts/*/*.parquet', \
             hive_partitioning = true) GROUP BY ALL ORDER BY ALL"
        ),
        // Globs over plain folders: `*` stays in a folder, `**` goes any depth.
        format!("SELECT a FROM '{d}/plain/*/*.parquet' ORDER BY a"),
        format!("SELECT a FROM '{d}/plain/**/*.parquet' ORDER BY a"),
        format!("SELECT a FROM read_parquet('{d}/plain/*/*/*.parquet')"),
        format!(
            "SELECT * FROM read_parquet('{d}/parts/*/*.parquet', hive_partitioning = false) ORDER BY ALL"
        ),
    ] {
        let expected = duck.exec(&sql, None)?;
        // lakeq reads a Hive-partitioned directory by its path (DuckDB's
        // `hive_partitioning` option is not taken).
        let lakeq_sql = sql.replace("/*/*.parquet', hive_partitioning = true)", "/')");
        let ours = session.sql(&lakeq_sql).await;
        let ours = ours.map(|b| duckdb_texts(&b)).map_err(|e| e.to_string());
        match (&expected, &ours) {
            (DuckResult::Rows { rows, .. }, Ok(mine)) if rows == mine && !rows.is_empty() => {}
            _ => failures.push(format!(
                "{sql}\n    DuckDB: {expected:?}\n    lakeq:  {ours:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// DuckLake's virtual `rowid` in aggregates: `MIN(rowid)` planned the virtual
/// column as non-nullable where the scan computes a nullable one, and DataFusion
/// refused the aggregate.
#[tokio::test]
async fn rowid_aggregates() -> TestResult {
    let dir = crate::common::scratch_dir("rowid_aggregates");
    let d = dir.display();
    let session = lakeq::Session::new();
    session
        .sql(&format!(
            "ATTACH 'ducklake:sqlite:{d}/meta.sqlite' AS l (DATA_PATH '{d}/data/')"
        ))
        .await?;
    session.sql("CREATE TABLE l.t(a INTEGER)").await?;
    session
        .sql("INSERT INTO l.t SELECT i FROM range(1, 201) r(i)")
        .await?;
    let batches = session
        .sql("SELECT MIN(rowid), MAX(rowid), count(DISTINCT rowid) FROM l.t")
        .await?;
    assert_eq!(
        duckdb_texts(&batches),
        vec![vec![
            Some("0".to_string()),
            Some("199".to_string()),
            Some("200".to_string())
        ]]
    );
    Ok(())
}

/// A lake DuckDB wrote, read by lakeq as DuckDB reads it: a scalar and a table
/// macro of the same name (two macros in the catalog), and data files added
/// from Hive folders whose names hold a `%` (`category=home%20appliances`).
#[tokio::test]
async fn duckdb_written_macros_and_hive_files() -> TestResult {
    let (python, ext) = oracle_python()?;
    let mut duck = Duck::start(&python, &ext)?;
    duck.reset()?;
    let dir = crate::common::scratch_dir("duckdb_macros_hive");
    let d = dir.display();
    let attach = format!("ATTACH 'ducklake:sqlite:{d}/meta.sqlite' AS l (DATA_PATH '{d}/data/')");
    for sql in [
        attach.clone(),
        "CREATE TABLE l.t(id INTEGER, name VARCHAR)".to_string(),
        "INSERT INTO l.t VALUES (1, 'tom'), (5, 'mungo'), (6, 'midge')".into(),
        "CREATE MACRO l.xt(a, n) AS TABLE SELECT * FROM l.t WHERE id >= a OR name = n".into(),
        "CREATE MACRO l.xt(a) AS a + 1".into(),
        "CREATE TABLE l.h(id INTEGER, category VARCHAR)".into(),
        format!(
            "COPY (SELECT 1 AS id, 'home appliances' AS category UNION ALL SELECT 2, 'tools') \
             TO '{d}/hive' (FORMAT parquet, PARTITION_BY (category))"
        ),
        format!(
            "CALL ducklake_add_data_files('l', 'h', '{d}/hive/*/*.parquet', hive_partitioning => true)"
        ),
        "DETACH l".into(),
    ] {
        if let DuckResult::Error(e) = duck.exec(&sql, None)? {
            return Err(format!("DuckDB: {sql}: {e}").into());
        }
    }
    let session = lakeq::Session::new();
    session.sql(&attach).await?;
    session.sql("USE l").await?;
    let mut failures = Vec::new();
    for (sql, expected) in [
        ("SELECT xt(41) AS x", vec![vec![Some("42".to_string())]]),
        (
            "FROM xt(5, 'tom') ORDER BY id",
            vec![
                vec![Some("1".to_string()), Some("tom".to_string())],
                vec![Some("5".to_string()), Some("mungo".to_string())],
                vec![Some("6".to_string()), Some("midge".to_string())],
            ],
        ),
        (
            "SELECT id, category FROM h ORDER BY id",
            vec![
                vec![Some("1".to_string()), Some("home appliances".to_string())],
                vec![Some("2".to_string()), Some("tools".to_string())],
            ],
        ),
    ] {
        match session.sql(sql).await {
            Ok(b) if duckdb_texts(&b) == expected => {}
            other => failures.push(format!(
                "{sql}: {:?}",
                other.map(|b| duckdb_texts(&b)).map_err(|e| e.to_string())
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// `ATTACH ... (SNAPSHOT_TIME getvariable('t'))`: the lake as of the variable's
/// timestamp, as DuckDB attaches it.
#[tokio::test]
async fn attach_snapshot_time_from_a_variable() -> TestResult {
    let dir = crate::common::scratch_dir("attach_snapshot_time_variable");
    let d = dir.display();
    let attach = format!("ATTACH 'ducklake:sqlite:{d}/meta.sqlite' AS l (DATA_PATH '{d}/data/')");
    let session = lakeq::Session::new();
    session.sql(&attach).await?;
    session.sql("CREATE TABLE l.t(a INTEGER)").await?;
    session.sql("INSERT INTO l.t VALUES (1), (2)").await?;
    session
        .sql("SET VARIABLE t1 = (SELECT max(snapshot_time) FROM l.snapshots())")
        .await?;
    session.sql("INSERT INTO l.t VALUES (3)").await?;
    session.sql("DETACH l").await?;
    session
        .sql(&format!(
            "ATTACH 'ducklake:sqlite:{d}/meta.sqlite' AS l (SNAPSHOT_TIME getvariable('t1'))"
        ))
        .await?;
    let batches = session.sql("SELECT count(*) FROM l.t").await?;
    assert_eq!(duckdb_texts(&batches), vec![vec![Some("2".to_string())]]);
    session.sql("DETACH l").await?;
    let unset = session
        .sql(&format!(
            "ATTACH 'ducklake:sqlite:{d}/meta.sqlite' AS l (SNAPSHOT_TIME getvariable('nope'))"
        ))
        .await;
    assert!(unset.is_err(), "an unset variable must not attach");
    Ok(())
}

/// A view read `AT (VERSION => n)` whose tables are in a schema dropped since:
/// the schema is resolved as of that snapshot, as DuckDB does.
#[tokio::test]
async fn time_travel_through_a_dropped_schema() -> TestResult {
    let dir = crate::common::scratch_dir("time_travel_dropped_schema");
    let d = dir.display();
    let session = lakeq::Session::new();
    session
        .sql(&format!(
            "ATTACH 'ducklake:sqlite:{d}/meta.sqlite' AS l (DATA_PATH '{d}/data/')"
        ))
        .await?;
    session.sql("USE l").await?;
    session.sql("CREATE SCHEMA s1").await?;
    session.sql("CREATE TABLE s1.t(i INTEGER)").await?;
    session
        .sql("CREATE VIEW s1_view AS SELECT * FROM s1.t")
        .await?;
    session.sql("INSERT INTO s1.t VALUES (42), (84)").await?;
    let version = session
        .sql("SELECT max(snapshot_id) FROM l.snapshots()")
        .await?;
    let version = duckdb_texts(&version)
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .ok_or("no snapshot")?;
    session.sql("DROP SCHEMA s1 CASCADE").await?;
    assert!(session.sql("SELECT * FROM s1_view").await.is_err());
    for sql in [
        format!("SELECT * FROM s1_view AT (VERSION => {version}) ORDER BY i"),
        format!("SELECT * FROM l.s1.t AT (VERSION => {version}) ORDER BY i"),
        format!("SELECT * FROM S1.t AT (VERSION => {version}) ORDER BY i"),
    ] {
        let batches = session.sql(&sql).await.map_err(|e| format!("{sql}: {e}"))?;
        assert_eq!(
            duckdb_texts(&batches),
            vec![vec![Some("42".to_string())], vec![Some("84".to_string())]],
            "{sql}"
        );
    }
    Ok(())
}

/// DuckDB's virtual columns `filename` and `file_row_number` on a lake table:
/// the same values in both engines; `*` leaves them out.
#[tokio::test]
async fn filename_and_file_row_number_match_duckdb() -> TestResult {
    let (python, ext) = oracle_python()?;
    let mut duck = Duck::start(&python, &ext)?;
    duck.reset()?;
    let dir = crate::common::scratch_dir("virtual_file_columns");
    let d = dir.display();
    // Parquet files only: DuckDB names inlined rows after their catalog table,
    // which lakeq refuses to imitate (an error, tested below).
    let attach = format!(
        "ATTACH 'ducklake:sqlite:{d}/meta.sqlite' AS l (DATA_PATH '{d}/data/', DATA_INLINING_ROW_LIMIT 0)"
    );
    let session = lakeq::Session::new();
    session.sql(&attach).await?;
    session.sql("CREATE TABLE l.t(i INTEGER)").await?;
    session
        .sql("INSERT INTO l.t VALUES (10), (11), (12)")
        .await?;
    session.sql("INSERT INTO l.t VALUES (20)").await?;
    if let DuckResult::Error(e) = duck.exec(&attach, None)? {
        return Err(format!("DuckDB: {e}").into());
    }
    let mut failures = Vec::new();
    for sql in [
        "SELECT i, file_row_number, filename FROM l.t ORDER BY i",
        "SELECT i FROM l.t WHERE file_row_number = 1 ORDER BY i",
        "SELECT count(DISTINCT filename) FROM l.t",
        "SELECT * FROM l.t ORDER BY ALL",
    ] {
        let expected = duck.exec(sql, None)?;
        let ours = session
            .sql(sql)
            .await
            .map(|b| duckdb_texts(&b))
            .map_err(|e| e.to_string());
        match (&expected, &ours) {
            (DuckResult::Rows { rows, .. }, Ok(mine)) if rows == mine && !rows.is_empty() => {}
            _ => failures.push(format!(
                "{sql}\n    DuckDB: {expected:?}\n    lakeq:  {ours:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Inlined rows have no file: an error, never a made-up name.
    session.sql("CREATE TABLE l.small(i INTEGER)").await?;
    session
        .sql("CALL l.set_option('data_inlining_row_limit', 10)")
        .await?;
    session.sql("INSERT INTO l.small VALUES (1)").await?;
    let err = session
        .sql("SELECT filename FROM l.small")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("inlined"), "{err}");
    Ok(())
}

/// `CREATE MACRO` / `DROP MACRO` run by lakeq store DuckDB's macros in the lake
/// (`tests/interop/dialect_lakeq.slt`, with a view bound in its lake): defaults, overloads, typed parameters,
/// `OR REPLACE`, a scalar and a table macro of one name, a subquery body; DuckDB
/// calls them with lakeq's answers, and lists the same snapshot changes. A macro
/// lakeq refuses (a default that is not a constant) and dropping an unknown one
/// leave the lake unchanged.
async fn dialect_writes_round_trip(backend: crate::common::Backend) -> TestResult {
    use crate::common::{TestLake, compare_with_oracle, duckdb_run, script_blocks};
    let lake = TestLake::new(backend, "dialect_lakeq").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/dialect_lakeq.slt");
    let (statements, queries) = script_blocks(&path)?;
    for stmt in &statements {
        session
            .sql(stmt)
            .await
            .map_err(|e| format!("lakeq failed on {backend:?}: {e}\n  statement: {stmt}"))?;
    }
    let snapshots = "SELECT count(*) AS n FROM lake.snapshots()";
    let (_, before) = crate::common::canonical::render_batches(&session.sql(snapshots).await?)?;
    for refused in [
        "CREATE MACRO lake.main.bad(a := now()) AS a",
        "CREATE MACRO lake.main.add_default(a) AS a",
        "DROP MACRO lake.main.never_created",
    ] {
        let err = session.sql(refused).await.err().map(|e| e.to_string());
        assert!(err.is_some(), "{refused} was accepted");
    }
    let (_, after) = crate::common::canonical::render_batches(&session.sql(snapshots).await?)?;
    assert_eq!(before, after, "a refused macro statement changed the lake");
    let queries_only = lake.dir.join("queries.slt");
    std::fs::write(&queries_only, &queries)?;
    let expected = duckdb_run(&[lake.attach_sql("lake")], &queries_only)?;
    assert_eq!(
        expected.len(),
        5,
        "the oracle answered {} queries",
        expected.len()
    );
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(
        problems.is_empty(),
        "{} macro queries differ on {backend:?}:\n{}",
        problems.len(),
        problems.join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn dialect_writes_read_alike_in_duckdb_on_sqlite() -> TestResult {
    dialect_writes_round_trip(crate::common::Backend::Sqlite).await
}

#[tokio::test]
async fn dialect_writes_read_alike_in_duckdb_on_postgres() -> TestResult {
    dialect_writes_round_trip(crate::common::Backend::Postgres).await
}

/// Run `tests/dialect/<name>.sql` statement by statement in DuckDB (on its own
/// lake) and in lakeq (on another, both attached as `lake`): each must give
/// DuckDB's rows, or fail where DuckDB fails. Returns DuckDB, lakeq's lake and
/// lakeq's session for further checks.
async fn script_matches_duckdb(
    backend: crate::common::Backend,
    name: &str,
    at_least: usize,
) -> TestResult<(Duck, crate::common::TestLake, lakeq::Session)> {
    use crate::common::TestLake;
    let (python, ext) = oracle_python()?;
    let mut duck = Duck::start(&python, &ext)?;
    let duck_lake = TestLake::new(backend, &format!("{name}_duckdb")).await?;
    let ours = TestLake::new(backend, &format!("{name}_lakeq")).await?;
    duck.exec(&duck_lake.attach_sql("lake"), None)?;
    let session = lakeq::Session::new();
    session.sql(&ours.attach_sql("lake")).await?;
    let script = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/dialect/{name}.sql")),
    )?;
    let statements = lakeq::dialect::lake_statements::split_statements(&script)?;
    assert!(
        statements.len() > at_least,
        "the script lost its statements"
    );
    let mut failures = Vec::new();
    for sql in &statements {
        let expected = duck.exec(sql, None)?;
        let got = session.sql(sql).await;
        let mine = got.map(|b| duckdb_texts(&b)).map_err(|e| e.to_string());
        match (&expected, &mine) {
            (DuckResult::Rows { rows, .. }, Ok(m)) if rows == m => {}
            (DuckResult::Done, Ok(m)) if m.is_empty() => {}
            (DuckResult::Error(_), Err(_)) => {}
            _ => failures.push(format!(
                "{sql}\n    DuckDB: {expected:?}\n    lakeq:  {mine:?}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} statements differ from DuckDB on {backend:?}:\n{}",
        failures.len(),
        statements.len(),
        failures.join("\n")
    );
    duck.exec("DETACH lake", None)?;
    Ok((duck, ours, session))
}

/// `UPDATE ... FROM`, `DELETE ... USING` and `UPDATE`/`DELETE ... WHERE rowid`
/// (`tests/dialect/joined_dml.sql`): each statement runs in DuckDB on its own
/// lake and in lakeq on another, with the same rows and counts (a table row
/// several source rows match is changed once); then DuckDB reads lakeq's lake
/// as lakeq does. Source rows that would give a row different values (DuckDB
/// keeps whichever its join produces first) are refused, changing nothing.
async fn joined_dml_round_trip(backend: crate::common::Backend) -> TestResult {
    let (mut duck, ours, session) = script_matches_duckdb(backend, "joined_dml", 15).await?;
    // Different values for one row: refused, nothing written.
    let snapshots = "SELECT count(*) FROM lake.snapshots()";
    let before = duckdb_texts(&session.sql(snapshots).await?);
    session.sql("INSERT INTO s VALUES (13, 1), (13, 2)").await?;
    let err = session
        .sql("UPDATE lake.t SET j = s.v FROM s WHERE t.i = s.i")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("different values"), "{err}");
    assert_eq!(before, duckdb_texts(&session.sql(snapshots).await?));

    // DuckDB reads the lake lakeq wrote as lakeq does.
    duck.exec(&ours.attach_sql("ours"), None)?;
    let query = "SELECT rowid, snapshot_id, i, j FROM ours.t ORDER BY rowid";
    let DuckResult::Rows { rows, .. } = duck.exec(query, None)? else {
        return Err(format!("DuckDB did not answer {query}").into());
    };
    let mine = duckdb_texts(
        &session
            .sql("SELECT rowid, snapshot_id, i, j FROM lake.t ORDER BY rowid")
            .await?,
    );
    assert_eq!(rows, mine, "DuckDB reads lakeq's lake differently");
    assert_eq!(rows.len(), 1, "{rows:?}");
    Ok(())
}

#[tokio::test]
async fn joined_dml_matches_duckdb_on_sqlite() -> TestResult {
    joined_dml_round_trip(crate::common::Backend::Sqlite).await
}

#[tokio::test]
async fn joined_dml_matches_duckdb_on_postgres() -> TestResult {
    joined_dml_round_trip(crate::common::Backend::Postgres).await
}

/// DuckDB's `SET ducklake_target_file_size` / `ducklake_default_data_inlining_row_limit`,
/// `SET SORTED BY` keys in files `ducklake_merge_adjacent_files` writes, and
/// `ORDER BY ALL` in a view's and a CTAS's query, a sort-key column renamed,
/// TIMESTAMP widened to TIMESTAMPTZ, INTEGER to DECIMAL (`tests/dialect/lake_settings.sql`):
/// each statement gives DuckDB's answer; then DuckDB reads the merged, sorted
/// file lakeq wrote in the same order, with the same row ids.
async fn lake_settings_round_trip(backend: crate::common::Backend) -> TestResult {
    let (mut duck, ours, session) = script_matches_duckdb(backend, "lake_settings", 30).await?;
    duck.exec(&ours.attach_sql("ours"), None)?;
    for (theirs, mine) in [
        // (files and inlined rows without ORDER BY may come in either order)
        (
            "SELECT rowid, i, k, s FROM ours.t ORDER BY rowid",
            "SELECT rowid, i, k, s FROM lake.t ORDER BY rowid",
        ),
        ("SELECT * FROM ours.v", "SELECT * FROM lake.v"),
        ("SELECT * FROM ours.w", "SELECT * FROM lake.w"),
        (
            "SELECT rowid, i, \"Key K\" FROM ours.r",
            "SELECT rowid, i, \"Key K\" FROM lake.r",
        ),
        (
            "SELECT c FROM ours.ts ORDER BY c",
            "SELECT c FROM lake.ts ORDER BY c",
        ),
        (
            "SELECT c FROM ours.d ORDER BY c",
            "SELECT c FROM lake.d ORDER BY c",
        ),
    ] {
        let DuckResult::Rows { rows, .. } = duck.exec(theirs, None)? else {
            return Err(format!("DuckDB did not answer {theirs}").into());
        };
        let mine = duckdb_texts(&session.sql(mine).await?);
        assert_eq!(
            rows, mine,
            "DuckDB reads lakeq's lake differently: {theirs}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn lake_settings_match_duckdb_on_sqlite() -> TestResult {
    lake_settings_round_trip(crate::common::Backend::Sqlite).await
}

#[tokio::test]
async fn lake_settings_match_duckdb_on_postgres() -> TestResult {
    lake_settings_round_trip(crate::common::Backend::Postgres).await
}
