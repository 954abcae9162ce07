//! `ducklake_add_data_files`: Parquet files written by another tool (DuckDB's
//! or lakeq's `COPY`, no DuckLake field ids) registered in a table without
//! copying. Both directions on SQLite and PostgreSQL: files lakeq registers
//! (columns in another order, an extra column ignored, a Hive directory
//! standing in for a missing column, inside a transaction) read the same in
//! DuckDB 1.5.5, whose statistics answers and pruning must agree; files DuckDB
//! registers read the same in lakeq. A refused file leaves the lake unchanged,
//! and a rolled-back transaction leaves the file where it was.

use std::path::Path;

use crate::common::{
    Backend, TestLake, TestResult, canonical::render_batches, compare_with_oracle, duckdb_run,
    duckdb_sql_queries,
};

async fn rows(session: &lakeq::Session, sql: &str) -> TestResult<Vec<Vec<String>>> {
    Ok(render_batches(&session.sql(sql).await?)?.1)
}

/// Write Parquet files with DuckDB (its own types, no field ids).
fn duckdb_copy(lake: &TestLake, statements: &[String]) -> TestResult {
    let script = lake
        .dir
        .join(format!("copy-{}.slt", uuid::Uuid::new_v4().simple()));
    let text: String = statements
        .iter()
        .map(|s| format!("statement ok\n{s}\n\n"))
        .collect();
    std::fs::write(&script, text)?;
    duckdb_run(&[], &script)?;
    Ok(())
}

async fn lakeq_adds_files_duckdb_reads_them(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "add_files").await?;
    let ext = lake.dir.join("external");
    std::fs::create_dir_all(ext.join("k=7"))?;
    let ext = ext.display().to_string();
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session
        .sql(
            "CREATE TABLE lake.t (id INTEGER, name VARCHAR, k INTEGER, \
             s STRUCT(x INTEGER, tags VARCHAR[]), amount DECIMAL(9,2), ts TIMESTAMP)",
        )
        .await?;
    session
        .sql(
            "INSERT INTO lake.t VALUES (1, 'lakeq', 1, {'x': 1, 'tags': ['a']}, 1.50, \
             TIMESTAMP '2024-01-01 00:00:00')",
        )
        .await?;
    duckdb_copy(
        &lake,
        &[
            // Columns in another order, struct fields too, narrower types.
            format!(
                "COPY (SELECT {{'tags': ['b', NULL], 'x': 20}}::STRUCT(tags VARCHAR[], x SMALLINT) AS s, \
                 'duck ' || i AS name, (100 + i)::INTEGER AS id, 2 AS k, \
                 (i / 4)::DECIMAL(6,2) AS amount, TIMESTAMP '2024-02-01' + INTERVAL (i) HOUR AS ts \
                 FROM range(3) r(i)) TO '{ext}/f1.parquet'"
            ),
            // The same layout again: its mapping is reused.
            format!(
                "COPY (SELECT {{'tags': [], 'x': NULL}}::STRUCT(tags VARCHAR[], x SMALLINT) AS s, \
                 NULL::VARCHAR AS name, 200::INTEGER AS id, 3 AS k, NULL::DECIMAL(6,2) AS amount, \
                 NULL::TIMESTAMP AS ts) TO '{ext}/f2.parquet'"
            ),
            // An extra column, and `k` only in the Hive directory.
            format!(
                "COPY (SELECT 300::INTEGER AS id, 'hive' AS name, {{'x': 3, 'tags': NULL}}::STRUCT(x INTEGER, tags VARCHAR[]) AS s, \
                 9.99::DECIMAL(9,2) AS amount, TIMESTAMP_NS '2024-03-01 12:00:00.123456789' AS ts, \
                 true AS extra) TO '{ext}/k=7/f3.parquet'"
            ),
            // BIGINT does not fit INTEGER: DuckDB refuses such a file.
            format!("COPY (SELECT 400::BIGINT AS id) TO '{ext}/wide.parquet'"),
        ],
    )?;
    let snapshots = rows(&session, "SELECT count(*) FROM lake.snapshots()").await?;

    // A refused file names itself and the column, and changes nothing.
    let err = session
        .sql(&format!(
            "CALL ducklake_add_data_files('lake', 't', '{ext}/wide.parquet', allow_missing => true)"
        ))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("wide.parquet") && err.contains("\"id\"") && err.contains("BIGINT"),
        "{err}"
    );
    let err = session
        .sql(&format!(
            "CALL ducklake_add_data_files('lake', 't', '{ext}/k=7/f3.parquet')"
        ))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("\"extra\""), "{err}");
    assert_eq!(
        rows(&session, "SELECT count(*) FROM lake.snapshots()").await?,
        snapshots
    );

    // A glob, then (inside a transaction) the Hive file with its extra column ignored.
    session
        .sql(&format!(
            "CALL ducklake_add_data_files('lake', 't', '{ext}/f*.parquet')"
        ))
        .await?;
    session.sql("BEGIN").await?;
    session
        .sql(&format!(
            "SELECT * FROM ducklake_add_data_files('lake', 't', '{ext}/k=7/f3.parquet', \
             ignore_extra_columns => true)"
        ))
        .await?;
    assert_eq!(
        rows(&session, "SELECT count(*) FROM lake.t").await?,
        [["6"]]
    );
    session.sql("COMMIT").await?;
    assert_eq!(
        rows(
            &session,
            "SELECT id, k, s.x FROM lake.t WHERE id >= 200 ORDER BY id"
        )
        .await?,
        [["200", "3", "NULL"], ["300", "7", "3"]]
    );

    // The catalog holds what DuckDB writes: two mappings (the Hive one differs),
    // absolute paths, ids from next_file_id.
    let catalog = lake.open().await?;
    let mappings = catalog.store().name_mappings(1).await?;
    let ids: std::collections::BTreeSet<i64> = mappings.iter().map(|m| m.mapping_id).collect();
    assert_eq!(ids.len(), 2, "{mappings:?}");
    assert!(
        mappings
            .iter()
            .any(|m| m.source_name == "k" && m.is_partition),
        "{mappings:?}"
    );
    // Table `t` has id 1.
    let files = catalog.store().data_files(1, i64::MAX / 4).await?;
    let registered: Vec<_> = files.iter().filter(|f| f.mapping_id.is_some()).collect();
    assert_eq!(registered.len(), 3);
    assert!(
        registered
            .iter()
            .all(|f| !f.path_is_relative && f.path.starts_with(&ext) && f.footer_size > Some(0))
    );

    // DuckDB reads the table as lakeq does, its statistics-based answers and
    // pruned scans included.
    let queries = "query all\nSELECT id, name, k, s, amount, ts FROM lake.t ORDER BY id\n\n\
                   query stats\nSELECT count(*), min(id), max(id), min(amount), max(ts), count(name) FROM lake.t\n\n\
                   query pruned\nSELECT id, name FROM lake.t WHERE id BETWEEN 101 AND 250 ORDER BY id\n\n\
                   query nulls\nSELECT id FROM lake.t WHERE amount IS NULL OR name IS NULL ORDER BY id\n\n\
                   query hive\nSELECT k, count(*) FROM lake.t WHERE k = 7 GROUP BY k\n\n\
                   query tags\nSELECT id, s.tags AS tags FROM lake.t WHERE s.x > 1 ORDER BY id\n\n\
                   query changes\nSELECT snapshot_id, changes FROM lake.snapshots() ORDER BY snapshot_id\n\n";
    let expected = duckdb_sql_queries(&lake, queries)?;
    assert_eq!(expected.len(), 7);
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{backend:?}:\n{}", problems.join("\n"));

    // A rolled-back registration leaves the file where it was (it is not lakeq's).
    let extra = format!("{ext}/f9.parquet");
    session
        .sql(&format!(
            "COPY (SELECT 900::INTEGER AS id, 'rolled back' AS name) TO '{extra}'"
        ))
        .await?;
    session.sql("BEGIN").await?;
    session
        .sql(&format!(
            "CALL ducklake_add_data_files('lake', 't', '{extra}', allow_missing => true)"
        ))
        .await?;
    assert_eq!(
        rows(&session, "SELECT count(*) FROM lake.t").await?,
        [["7"]]
    );
    session.sql("ROLLBACK").await?;
    assert!(Path::new(&extra).exists());
    assert_eq!(
        rows(&session, "SELECT count(*) FROM lake.t").await?,
        [["6"]]
    );
    Ok(())
}

async fn duckdb_adds_files_lakeq_reads_them(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "add_files_duckdb").await?;
    let ext = lake.dir.join("external");
    std::fs::create_dir_all(&ext)?;
    let ext = ext.display().to_string();
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session
        .sql("CREATE TABLE lake.u (id INTEGER, l INTEGER[], note VARCHAR)")
        .await?;
    // lakeq writes the file; DuckDB registers it.
    session
        .sql(&format!(
            "COPY (SELECT 5::INTEGER AS id, [1, 2]::INTEGER[] AS l) TO '{ext}/lakeq.parquet'"
        ))
        .await?;
    let script = lake.dir.join("duckdb-add.slt");
    std::fs::write(
        &script,
        format!(
            "statement ok\nCALL ducklake_add_data_files('lake', 'u', '{ext}/lakeq.parquet', \
             allow_missing => true)\n\n\
             query all\nSELECT id, l FROM lake.u ORDER BY id\n\n\
             query stats\nSELECT count(*), max(id) FROM lake.u\n\n"
        ),
    )?;
    let expected = duckdb_run(&[lake.attach_sql("lake")], &script)?;
    assert_eq!(expected.len(), 2);
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{backend:?}:\n{}", problems.join("\n"));
    Ok(())
}

#[tokio::test]
async fn add_files_lakeq_registers_duckdb_reads_sqlite() -> TestResult {
    lakeq_adds_files_duckdb_reads_them(Backend::Sqlite).await
}

#[tokio::test]
async fn add_files_lakeq_registers_duckdb_reads_postgres() -> TestResult {
    lakeq_adds_files_duckdb_reads_them(Backend::Postgres).await
}

#[tokio::test]
async fn add_files_duckdb_registers_lakeq_reads_sqlite() -> TestResult {
    duckdb_adds_files_lakeq_reads_them(Backend::Sqlite).await
}

#[tokio::test]
async fn add_files_duckdb_registers_lakeq_reads_postgres() -> TestResult {
    duckdb_adds_files_lakeq_reads_them(Backend::Postgres).await
}
