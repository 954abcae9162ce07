//! Bad input gets a clear error naming the object, and never a panic.

use crate::common::{Backend, TestLake, TestResult, duckdb_sql_queries, scratch_dir};

async fn err_of(session: &lakeq::Session, sql: &str) -> String {
    match session.sql(sql).await {
        Ok(_) => panic!("expected an error from: {sql}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn sqlite_file_that_is_not_a_ducklake_is_refused() -> TestResult {
    let dir = scratch_dir("not_a_ducklake");
    let path = dir.join("other.sqlite");
    {
        use sqlx::Connection;
        let mut c =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
                .await?;
        sqlx::raw_sql("CREATE TABLE people(id INTEGER)")
            .execute(&mut c)
            .await?;
    }
    let session = lakeq::Session::new();
    let msg = err_of(
        &session,
        &format!(
            "ATTACH 'ducklake:sqlite:{}' AS x (DATA_PATH '{}/d/')",
            path.display(),
            dir.display()
        ),
    )
    .await;
    assert!(msg.contains("is not a DuckLake catalog"), "{msg}");
    assert!(msg.contains("other.sqlite"), "{msg}");
    Ok(())
}

#[tokio::test]
async fn unsupported_catalog_version_names_the_version() -> TestResult {
    let lake = TestLake::new(Backend::Sqlite, "old_version").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let path = lake.location.trim_start_matches("ducklake:sqlite:");
    {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{path}")).await?;
        sqlx::raw_sql("UPDATE ducklake_metadata SET value = '0.3' WHERE key = 'version'")
            .execute(&mut c)
            .await?;
    }
    let msg = err_of(&lakeq::Session::new(), &lake.attach_sql("lake")).await;
    assert!(msg.contains("'0.3'") && msg.contains("1.0"), "{msg}");
    assert!(msg.contains("AUTOMATIC_MIGRATION"), "{msg}");

    // DuckLake 1.1 (DuckDB 2.0, after its opt-in migration): refused whole, never misread,
    // and nothing is written to it.
    {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{path}")).await?;
        sqlx::raw_sql("UPDATE ducklake_metadata SET value = '1.1' WHERE key = 'version'")
            .execute(&mut c)
            .await?;
    }
    let before = std::fs::read(path)?;
    let session = lakeq::Session::new();
    let msg = err_of(&session, &lake.attach_sql("lake")).await;
    assert!(
        msg.contains("'1.1'") && msg.contains("newer DuckLake"),
        "{msg}"
    );
    assert!(!msg.contains("AUTOMATIC_MIGRATION"), "{msg}");
    let msg = err_of(&session, "SELECT * FROM lake.main.t").await;
    assert!(msg.to_lowercase().contains("lake"), "{msg}");
    assert_eq!(
        std::fs::read(path)?,
        before,
        "a refused catalog must stay untouched"
    );
    Ok(())
}

#[tokio::test]
async fn malformed_attach_and_unknown_objects_are_named() -> TestResult {
    let session = lakeq::Session::new();
    let msg = err_of(&session, "ATTACH 'sqlite:/tmp/x.db' AS x").await;
    assert!(msg.contains("ducklake:sqlite:"), "{msg}");
    let msg = err_of(
        &session,
        "ATTACH 'ducklake:sqlite:/tmp/x.db' AS x (COLOUR 'blue')",
    )
    .await;
    assert!(msg.contains("COLOUR"), "{msg}");

    let lake = TestLake::new(Backend::Sqlite, "unknown_objects").await?;
    session.sql(&lake.attach_sql("lake")).await?;
    let msg = err_of(&session, "SELECT * FROM lake.main.nope").await;
    assert!(msg.contains("nope"), "{msg}");
    let msg = err_of(&session, "USE lake.nope").await;
    assert!(msg.contains("lake.nope"), "{msg}");
    let msg = err_of(&session, "SELECT * FROM lake.main.nope AT (VERSION => 99)").await;
    assert!(msg.contains("nope") || msg.contains("99"), "{msg}");
    Ok(())
}

#[tokio::test]
async fn data_path_mismatch_is_reported() -> TestResult {
    let lake = TestLake::new(Backend::Sqlite, "data_path").await?;
    lakeq::Session::new().sql(&lake.attach_sql("lake")).await?;
    let msg = err_of(
        &lakeq::Session::new(),
        &format!(
            "ATTACH '{}' AS lake (DATA_PATH '/somewhere/else/')",
            lake.location
        ),
    )
    .await;
    assert!(
        msg.contains("/somewhere/else/") && msg.contains(&lake.data_path),
        "{msg}"
    );
    Ok(())
}

/// Snapshot count and data files on disk: what "the lake is exactly as before" means.
async fn lake_state(lake: &TestLake) -> TestResult<(usize, usize)> {
    let opened = lake.open().await?;
    let snapshots = opened.store().snapshots().await?.len();
    let files = crate::common::files_under(std::path::Path::new(&lake.data_path));
    Ok((snapshots, files))
}

#[tokio::test]
async fn failed_writes_leave_the_lake_unchanged() -> TestResult {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let lake = TestLake::new(backend, "bad_writes").await?;
        let session = lakeq::Session::new();
        session.sql(&lake.attach_sql("lake")).await?;
        session
            .sql("CREATE TABLE lake.main.t (a INT NOT NULL, s VARCHAR)")
            .await?;
        session
            .sql("INSERT INTO lake.main.t VALUES (1, 'x')")
            .await?;
        let before = lake_state(&lake).await?;

        let msg = err_of(
            &session,
            "INSERT INTO lake.main.t VALUES ('not a number', 'y')",
        )
        .await;
        assert!(
            msg.contains("not a number") || msg.to_lowercase().contains("cast"),
            "{msg}"
        );
        let msg = err_of(&session, "INSERT INTO lake.main.t VALUES (NULL, 'y')").await;
        assert!(
            msg.contains("NOT NULL") && msg.contains("lake.main.t.a"),
            "{msg}"
        );
        let msg = err_of(&session, "INSERT INTO lake.main.missing VALUES (1)").await;
        assert!(msg.contains("missing"), "{msg}");
        let msg = err_of(&session, "CREATE TABLE lake.main.t (b INT)").await;
        assert!(
            msg.contains("already exists") && msg.contains("lake.main.t"),
            "{msg}"
        );
        let msg = err_of(&session, "ALTER TABLE lake.main.t RENAME COLUMN nope TO x").await;
        assert!(msg.contains("nope"), "{msg}");
        let msg = err_of(&session, "DROP TABLE lake.main.nope").await;
        assert!(msg.contains("nope"), "{msg}");
        // What DuckDB refuses on a lake, lakeq refuses too (DuckLake's own suite).
        let refused = [
            ("CREATE TABLE lake.main.r (row_id INT)", "reserved"),
            ("ALTER TABLE lake.t ADD COLUMN end_snapshot INT", "reserved"),
            (
                "ALTER TABLE lake.t RENAME COLUMN s TO begin_snapshot",
                "reserved",
            ),
            (
                "CREATE TABLE lake.c (s VARCHAR COLLATE NOCASE)",
                "collation",
            ),
            ("CREATE TABLE lake.g (a INT, b INT AS (a + 1))", "generated"),
            (
                "ALTER TABLE lake.t ADD COLUMN r DOUBLE DEFAULT random()",
                "non-literal",
            ),
            (
                "ALTER TABLE lake.t ALTER s SET NOT NULL",
                "NOT NULL constraint failed",
            ),
            ("DROP VIEW lake.t", "is a table"),
        ];
        assert_eq!(lake_state(&lake).await?, before, "({backend:?})");
        session
            .sql("INSERT INTO lake.main.t VALUES (2, NULL)")
            .await?;
        let before = lake_state(&lake).await?;
        for (sql, expected) in refused {
            let msg = err_of(&session, sql).await;
            assert!(msg.contains(expected), "{sql}: {msg}");
        }
        assert_eq!(
            lake_state(&lake).await?,
            before,
            "lake changed after failed writes ({backend:?})"
        );

        // A read-only attachment refuses writes.
        let ro = lakeq::Session::new();
        let mut opts = vec![
            format!("DATA_PATH '{}'", lake.data_path),
            "READ_ONLY".to_string(),
        ];
        if let Some(s) = &lake.metadata_schema {
            opts.push(format!("METADATA_SCHEMA '{s}'"));
        }
        ro.sql(&format!(
            "ATTACH '{}' AS lake ({})",
            lake.location,
            opts.join(", ")
        ))
        .await?;
        let msg = err_of(&ro, "INSERT INTO lake.main.t VALUES (2, 'z')").await;
        assert!(msg.contains("READ_ONLY"), "{msg}");
        assert_eq!(lake_state(&lake).await?, before);
    }
    Ok(())
}

#[tokio::test]
async fn unwritable_data_path_fails_cleanly() -> TestResult {
    let lake = TestLake::new(Backend::Sqlite, "unwritable").await?;
    let session = lakeq::Session::new();
    session
        .sql(&lake.attach_sql_without_inlining("lake"))
        .await?;
    session.sql("CREATE TABLE lake.main.t (a INT)").await?;
    // A regular file where the table directory should be: nothing can be written below it.
    std::fs::create_dir_all(format!("{}main", lake.data_path))?;
    std::fs::write(format!("{}main/t", lake.data_path), b"not a directory")?;
    let before = lake_state(&lake).await?;
    let msg = err_of(&session, "INSERT INTO lake.main.t VALUES (1)").await;
    assert!(msg.contains("main/t"), "{msg}");
    assert_eq!(lake_state(&lake).await?, before);
    Ok(())
}

/// A reader holding the SQLite catalog (as a DuckDB session with an unread
/// result does) makes a lakeq write fail after the busy timeout with an error
/// that names the cause and the remedies, and leaves the lake as it was.
#[tokio::test]
async fn a_locked_sqlite_catalog_fails_fast_and_says_why() -> TestResult {
    use sqlx::Connection;
    let lake = TestLake::new(Backend::Sqlite, "locked").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session.sql("CREATE TABLE lake.main.t (a INT)").await?;
    let before = lake_state(&lake).await?;
    let path = lake
        .location
        .trim_start_matches("ducklake:sqlite:")
        .to_string();
    let mut reader = sqlx::SqliteConnection::connect(&format!("sqlite://{path}")).await?;
    sqlx::raw_sql("BEGIN; SELECT count(*) FROM ducklake_snapshot;")
        .execute(&mut reader)
        .await?;
    let script = format!(
        "{}; INSERT INTO lake.main.t VALUES (1)",
        lake.attach_sql("lake")
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lakeq"))
        .args(["sql", "-c", &script])
        .env("LAKEQ_SQLITE_BUSY_TIMEOUT_MS", "300")
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the write succeeded under a lock");
    assert!(
        stderr.contains("locked by another process") && stderr.contains("PostgreSQL"),
        "{stderr}"
    );
    sqlx::raw_sql("COMMIT").execute(&mut reader).await?;
    drop(reader);
    assert_eq!(
        lake_state(&lake).await?,
        before,
        "the failed write changed the lake"
    );
    session.sql("INSERT INTO lake.main.t VALUES (1)").await?;
    Ok(())
}

#[tokio::test]
async fn geometry_columns_are_read_but_not_written() -> TestResult {
    let lake = TestLake::new(Backend::Sqlite, "geometry_refused").await?;
    duckdb_sql_queries(
        &lake,
        "statement ok\nCREATE TABLE lake.main.g (id INT, g GEOMETRY)\n\n\
         statement ok\nINSERT INTO lake.main.g SELECT i, ('POINT (' || i || ' 1)')::GEOMETRY FROM range(20) r(i)\n",
    )?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let before = lake_state(&lake).await?;
    for sql in [
        "INSERT INTO lake.main.g VALUES (99, 'POINT (1 1)')",
        "UPDATE lake.main.g SET g = 'POINT (0 0)' WHERE id = 1",
        "UPDATE lake.main.g SET id = 100 WHERE id = 1",
    ] {
        let msg = err_of(&session, sql).await;
        assert!(
            msg.contains("'g'") && msg.contains("GEOMETRY"),
            "{sql}: {msg}"
        );
    }
    assert_eq!(lake_state(&lake).await?, before, "lake changed");
    // Reads still work, with DuckDB's text.
    let batches = session
        .sql("SELECT g FROM lake.main.g WHERE id = 3")
        .await?;
    let text = lakeq::dialect::render::value_text(batches[0].column(0).as_ref(), 0);
    assert_eq!(text.as_deref(), Some("POINT (3 1)"));
    // DuckDB orders and compares geometries by their binary form: as text that
    // would be a different answer, so it is an error.
    for sql in [
        "SELECT * FROM lake.main.g ORDER BY ALL",
        "SELECT id FROM lake.main.g WHERE g = 'POINT(3 1)'",
        "SELECT max(g) FROM lake.main.g",
    ] {
        let msg = err_of(&session, sql).await;
        assert!(msg.contains("GEOMETRY column 'g'"), "{sql}: {msg}");
    }
    Ok(())
}

/// Inlined rows DuckDB wrote (inserts, an update and a delete) are flushed by
/// lakeq to Parquet in one snapshot: lakeq and DuckDB read the same rows after,
/// and before it by time travel.
#[tokio::test]
async fn flushing_inlined_data_duckdb_wrote() -> TestResult {
    let lake = TestLake::new(Backend::Sqlite, "flush_duckdb").await?;
    duckdb_sql_queries(
        &lake,
        "statement ok\nCREATE TABLE lake.main.small (id INT, s VARCHAR)\n\n\
         statement ok\nINSERT INTO lake.main.small VALUES (1, 'a'), (2, 'b'), (3, 'c')\n\n\
         statement ok\nUPDATE lake.main.small SET s = 'B' WHERE id = 2\n\n\
         statement ok\nDELETE FROM lake.main.small WHERE id = 3\n",
    )?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let before = rows_of(&session, "SELECT id, s FROM lake.main.small ORDER BY id").await?;
    assert_eq!(before, [["1", "a"], ["2", "B"]]);
    let flushed = rows_of(
        &session,
        "SELECT table_name, rows_flushed FROM ducklake_flush_inlined_data('lake')",
    )
    .await?;
    // DuckDB counts every row version it moves: 3 inserted, 1 updated.
    assert_eq!(flushed, [["small", "4"]]);
    assert_eq!(
        rows_of(&session, "SELECT id, s FROM lake.main.small ORDER BY id").await?,
        before
    );
    assert_eq!(
        rows_of(
            &session,
            "SELECT count(*) FROM lake.main.small AT (VERSION => 2)"
        )
        .await?,
        [["3"]]
    );
    assert_eq!(
        rows_of(
            &session,
            "SELECT count(*) FROM ducklake_list_files('lake', 'small')"
        )
        .await?,
        [["1"]]
    );
    let again = rows_of(
        &session,
        "SELECT * FROM ducklake_flush_inlined_data('lake')",
    )
    .await?;
    assert!(again.is_empty(), "{again:?}");
    let duck = duckdb_sql_queries(
        &lake,
        "query IT\nSELECT id, s FROM lake.main.small ORDER BY id\n\n\
         query I\nSELECT count(*) FROM lake.main.small AT (VERSION => 3)\n",
    )?;
    assert_eq!(duck[0].rows, [["1", "a"], ["2", "B"]]);
    assert_eq!(duck[1].rows, [["3"]]);
    Ok(())
}

/// Every value of a query's result as text, row by row.
async fn rows_of(session: &lakeq::Session, sql: &str) -> Result<Vec<Vec<String>>, lakeq::Error> {
    let batches = session.sql(sql).await?;
    let mut out = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            out.push(
                (0..b.num_columns())
                    .map(|c| {
                        lakeq::dialect::render::value_text(b.column(c).as_ref(), r)
                            .unwrap_or_else(|| "NULL".into())
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}
