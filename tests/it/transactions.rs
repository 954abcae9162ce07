//! Explicit transactions (`BEGIN` ... `COMMIT` / `ROLLBACK`) as DuckDB runs them
//! on a DuckLake: the statements in between read their own changes, nobody else
//! sees them before `COMMIT`, and `COMMIT` makes them one snapshot that DuckDB
//! 1.5.5 reads identically; `ROLLBACK`, a failed statement or a concurrent
//! writer leave the lake (catalog and files) as it was. SQLite and PostgreSQL.

use std::path::Path;

use crate::common::{
    Backend, TestLake, TestResult, canonical::render_batches, compare_with_oracle,
    duckdb_sql_queries, files_under,
};

/// Rows of a query, rendered.
async fn rows(session: &lakeq::Session, sql: &str) -> TestResult<Vec<Vec<String>>> {
    Ok(render_batches(&session.sql(sql).await?)?.1)
}

async fn snapshot_count(session: &lakeq::Session) -> TestResult<String> {
    Ok(rows(session, "SELECT count(*) FROM lake.snapshots()").await?[0][0].clone())
}

async fn committed_transaction_is_one_snapshot(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "txn_commit").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    let other = lakeq::Session::new();
    other.sql(&lake.attach_sql("lake")).await?;
    session
        .sql("CREATE TABLE lake.kept (id INTEGER, name VARCHAR)")
        .await?;
    session
        .sql("INSERT INTO lake.kept VALUES (1, 'one'), (2, 'two'), (3, 'three')")
        .await?;
    let before = snapshot_count(&session).await?;

    session.sql("BEGIN TRANSACTION").await?;
    for stmt in [
        "CREATE TABLE lake.t (i INTEGER, s VARCHAR)",
        "INSERT INTO lake.t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
        "INSERT INTO lake.t VALUES (4, 'd')",
        "DELETE FROM lake.t WHERE i = 2",
        "UPDATE lake.kept SET name = 'TWO' WHERE id = 2",
        "DELETE FROM lake.kept WHERE id = 3",
        "CREATE VIEW lake.v AS SELECT i * 10 AS x FROM lake.t",
        "ALTER TABLE lake.kept ADD COLUMN flag BOOLEAN",
    ] {
        session
            .sql(stmt)
            .await
            .map_err(|e| format!("{stmt}: {e}"))?;
    }
    // The transaction reads its own changes ...
    assert_eq!(
        rows(&session, "SELECT i, s FROM lake.t ORDER BY i").await?,
        [["1", "a"], ["3", "c"], ["4", "d"]]
    );
    assert_eq!(rows(&session, "SELECT sum(x) FROM lake.v").await?, [["80"]]);
    // ... and nobody else does.
    assert!(other.sql("SELECT * FROM lake.t").await.is_err());
    assert_eq!(
        rows(&other, "SELECT id, name FROM lake.kept ORDER BY id").await?,
        [["1", "one"], ["2", "two"], ["3", "three"]]
    );
    assert_eq!(snapshot_count(&other).await?, before);
    session.sql("COMMIT").await?;

    let after: i64 = snapshot_count(&session).await?.parse()?;
    assert_eq!(
        after,
        before.parse::<i64>()? + 1,
        "one snapshot per transaction"
    );
    assert_eq!(
        rows(&other, "SELECT id, name, flag FROM lake.kept ORDER BY id").await?,
        [["1", "one", "NULL"], ["2", "TWO", "NULL"]]
    );
    assert!(matches!(
        session.sql("COMMIT").await,
        Err(lakeq::Error::Transaction(_))
    ));

    // DuckDB reads the committed transaction as lakeq does.
    let queries = "query t\nSELECT i, s FROM lake.t ORDER BY i\n\n\
                   query v\nSELECT sum(x) AS total FROM lake.v\n\n\
                   query kept\nSELECT id, name, flag FROM lake.kept ORDER BY id\n\n\
                   query last_snapshot\nSELECT snapshot_id, changes FROM lake.snapshots() ORDER BY snapshot_id DESC LIMIT 1\n\n";
    let expected = duckdb_sql_queries(&lake, queries)?;
    assert_eq!(expected.len(), 4);
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{backend:?}:\n{}", problems.join("\n"));
    Ok(())
}

async fn rolled_back_transaction_leaves_nothing(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "txn_rollback").await?;
    // File counts are part of what is checked: small inserts write files here.
    let session = lakeq::Session::new();
    session
        .sql(&lake.attach_sql_without_inlining("lake"))
        .await?;
    session.sql("CREATE TABLE lake.t (i INTEGER)").await?;
    session.sql("INSERT INTO lake.t VALUES (1), (2)").await?;
    let snapshots = snapshot_count(&session).await?;
    let files = files_under(Path::new(&lake.data_path));

    // ROLLBACK: nothing of the transaction stays, in the catalog or on disk.
    session.sql("BEGIN").await?;
    session.sql("INSERT INTO lake.t VALUES (3)").await?;
    session.sql("DELETE FROM lake.t WHERE i = 1").await?;
    session
        .sql("CREATE TABLE lake.gone AS SELECT 1 AS x")
        .await?;
    assert_eq!(rows(&session, "SELECT sum(i) FROM lake.t").await?, [["5"]]);
    session.sql("ROLLBACK").await?;
    assert_eq!(rows(&session, "SELECT sum(i) FROM lake.t").await?, [["3"]]);
    assert!(session.sql("SELECT * FROM lake.gone").await.is_err());
    assert_eq!(snapshot_count(&session).await?, snapshots);
    assert_eq!(files_under(Path::new(&lake.data_path)), files);

    // A statement that fails while running aborts the transaction: everything
    // but its end is refused, and COMMIT rolls it back, as in DuckDB.
    session.sql("BEGIN").await?;
    session.sql("INSERT INTO lake.t VALUES (10)").await?;
    assert!(
        session
            .sql("INSERT INTO lake.t VALUES ('x')")
            .await
            .is_err()
    );
    let refused = session.sql("SELECT 1").await.unwrap_err().to_string();
    assert!(refused.contains("aborted"), "{refused}");
    session.sql("COMMIT").await?;
    assert_eq!(rows(&session, "SELECT sum(i) FROM lake.t").await?, [["3"]]);
    assert_eq!(snapshot_count(&session).await?, snapshots);
    assert_eq!(files_under(Path::new(&lake.data_path)), files);

    // A writer that committed meanwhile: COMMIT applies nothing and says why.
    let other = lakeq::Session::new();
    other.sql(&lake.attach_sql_without_inlining("lake")).await?;
    session.sql("BEGIN").await?;
    session.sql("INSERT INTO lake.t VALUES (100)").await?;
    other.sql("INSERT INTO lake.t VALUES (7)").await?;
    let conflict = session.sql("COMMIT").await.unwrap_err().to_string();
    assert!(conflict.contains("another writer"), "{conflict}");
    assert_eq!(rows(&session, "SELECT sum(i) FROM lake.t").await?, [["10"]]);
    assert_eq!(files_under(Path::new(&lake.data_path)), files + 1);

    // A table created and dropped inside a transaction leaves no file even
    // before COMMIT, and a transaction that nets out to nothing no snapshot.
    let snapshots = snapshot_count(&session).await?;
    let files = files_under(Path::new(&lake.data_path));
    session.sql("BEGIN").await?;
    session
        .sql("CREATE TABLE lake.scratch AS SELECT range AS x FROM range(10)")
        .await?;
    assert_eq!(files_under(Path::new(&lake.data_path)), files + 1);
    session.sql("DROP TABLE lake.scratch").await?;
    assert_eq!(files_under(Path::new(&lake.data_path)), files);
    session.sql("COMMIT").await?;
    assert_eq!(snapshot_count(&session).await?, snapshots);

    // Misplaced transaction statements are errors.
    assert!(session.sql("ROLLBACK").await.is_err());
    session.sql("BEGIN").await?;
    assert!(session.sql("BEGIN").await.is_err());
    session.sql("ROLLBACK").await?;

    let expected = duckdb_sql_queries(&lake, "query t\nSELECT i FROM lake.t ORDER BY i\n\n")?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{backend:?}:\n{}", problems.join("\n"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_transaction_is_one_snapshot_on_sqlite() -> TestResult {
    committed_transaction_is_one_snapshot(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_transaction_is_one_snapshot_on_postgres() -> TestResult {
    committed_transaction_is_one_snapshot(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_transaction_leaves_nothing_on_sqlite() -> TestResult {
    rolled_back_transaction_leaves_nothing(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_transaction_leaves_nothing_on_postgres() -> TestResult {
    rolled_back_transaction_leaves_nothing(Backend::Postgres).await
}

/// `COMMENT ON` (what dbt's `persist_docs` issues): lakeq stores comments as
/// DuckDB does (the `comment` tag), so DuckDB shows them; one inside a
/// transaction, set twice, leaves only its last value.
async fn comments_read_by_duckdb(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "comments").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    for stmt in [
        "CREATE TABLE lake.t (a INTEGER, b VARCHAR)",
        "CREATE VIEW lake.v AS SELECT 1 AS x",
        "COMMENT ON TABLE lake.t IS 'first'",
        "COMMENT ON TABLE lake.t IS 'it''s the table'",
        "COMMENT ON COLUMN lake.t.a IS 'column a'",
        "COMMENT ON VIEW lake.v IS 'the view'",
        "BEGIN",
        "COMMENT ON COLUMN lake.t.b IS 'draft'",
        "COMMENT ON COLUMN lake.t.b IS 'column b'",
        "COMMIT",
    ] {
        session
            .sql(stmt)
            .await
            .map_err(|e| format!("{stmt}: {e}"))?;
    }
    assert!(
        session
            .sql("COMMENT ON COLUMN lake.t.nosuch IS 'x'")
            .await
            .is_err()
    );
    let answers = duckdb_sql_queries(
        &lake,
        "query tables\nSELECT table_name, comment FROM duckdb_tables() WHERE database_name = 'lake'\n\n\
         query views\nSELECT view_name, comment FROM duckdb_views() WHERE database_name = 'lake'\n\n\
         query columns\nSELECT column_name, comment FROM duckdb_columns() WHERE database_name = 'lake' AND table_name = 't' ORDER BY column_name\n\n",
    )?;
    let rows: Vec<Vec<Vec<String>>> = answers.into_iter().map(|q| q.rows).collect();
    assert_eq!(
        rows,
        [
            vec![vec!["t".to_string(), "it's the table".to_string()]],
            vec![vec!["v".to_string(), "the view".to_string()]],
            vec![
                vec!["a".to_string(), "column a".to_string()],
                vec!["b".to_string(), "column b".to_string()]
            ],
        ],
        "{backend:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_read_by_duckdb_on_sqlite() -> TestResult {
    comments_read_by_duckdb(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_read_by_duckdb_on_postgres() -> TestResult {
    comments_read_by_duckdb(Backend::Postgres).await
}

/// `set_commit_message` (DuckDB's audit trail): the author, message and extra
/// information given inside a transaction are written with its snapshot and
/// DuckDB reads them; outside a transaction the call has nothing to apply to;
/// with `require_commit_message` on, a commit without them is refused (on its
/// own or at COMMIT) and the lake keeps its rows and snapshots.
async fn commit_messages_read_by_duckdb(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "commit_messages").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    for stmt in [
        "CREATE TABLE lake.t (a INTEGER)",
        "BEGIN",
        "INSERT INTO lake.t VALUES (1)",
        "CALL lake.set_commit_message('Pedro', 'draft')",
        "CALL lake.set_commit_message('Pedro', 'Inserting one', extra_info => '{''k'': 1}')",
        "COMMIT",
        "CALL lake.set_commit_message('Nobody', 'outside a transaction')",
        "INSERT INTO lake.t VALUES (2)",
        "BEGIN",
        "CALL lake.set_commit_message(NULL, '')",
        "INSERT INTO lake.t VALUES (3)",
        "COMMIT",
        "CALL lake.set_option('require_commit_message', true)",
    ] {
        session
            .sql(stmt)
            .await
            .map_err(|e| format!("{stmt}: {e}"))?;
    }
    let refused = session
        .sql("INSERT INTO lake.t VALUES (4)")
        .await
        .err()
        .ok_or("an INSERT without a commit message was accepted")?;
    assert!(
        refused
            .to_string()
            .contains("Commit Information for the snapshot is required"),
        "{refused}"
    );
    session.sql("BEGIN").await?;
    session.sql("INSERT INTO lake.t VALUES (5)").await?;
    let refused = session
        .sql("COMMIT")
        .await
        .err()
        .ok_or("a transaction without a commit message committed")?;
    assert!(
        refused
            .to_string()
            .contains("Commit Information for the snapshot is required"),
        "{refused}"
    );
    let answers = duckdb_sql_queries(
        &lake,
        "query snapshots\nSELECT snapshot_id, author, commit_message, commit_extra_info FROM lake.snapshots() ORDER BY snapshot_id\n\n\
         query rows\nSELECT count(*), sum(a) FROM lake.t\n\n",
    )?;
    let rows: Vec<Vec<Vec<String>>> = answers.into_iter().map(|q| q.rows).collect();
    let row = |v: [&str; 4]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        rows,
        [
            vec![
                row(["0", "NULL", "NULL", "NULL"]),
                row(["1", "NULL", "NULL", "NULL"]),
                row(["2", "Pedro", "Inserting one", "{'k': 1}"]),
                row(["3", "NULL", "NULL", "NULL"]),
                row(["4", "NULL", "", "NULL"]),
            ],
            vec![vec!["3".to_string(), "6".to_string()]],
        ],
        "{backend:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_messages_read_by_duckdb_on_sqlite() -> TestResult {
    commit_messages_read_by_duckdb(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_messages_read_by_duckdb_on_postgres() -> TestResult {
    commit_messages_read_by_duckdb(Backend::Postgres).await
}

/// Inlined rows and column changes in one transaction: rows written before a
/// column change, or after the last one, commit and read the same in DuckDB; a
/// second column change over inlined rows written in the transaction's own new
/// layout is refused (DuckDB would rewrite those rows into the final layout at
/// COMMIT, which lakeq does not yet do) and the lake stays as it was.
async fn inlined_rows_and_column_changes_in_one_transaction(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "txn_inline_alter").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session.sql("CREATE TABLE lake.main.t (a INT)").await?;
    session.sql("INSERT INTO lake.main.t VALUES (0)").await?;

    session.sql("BEGIN").await?;
    session.sql("INSERT INTO lake.main.t VALUES (1)").await?;
    session
        .sql("ALTER TABLE lake.main.t ADD COLUMN b VARCHAR")
        .await?;
    session
        .sql("INSERT INTO lake.main.t VALUES (2, 'x')")
        .await?;
    session.sql("COMMIT").await?;

    session.sql("BEGIN").await?;
    session
        .sql("ALTER TABLE lake.main.t ADD COLUMN c INT")
        .await?;
    session.sql("ALTER TABLE lake.main.t DROP COLUMN a").await?;
    session
        .sql("INSERT INTO lake.main.t VALUES ('y', 3)")
        .await?;
    session.sql("COMMIT").await?;

    let before = snapshot_count(&session).await?;
    session.sql("BEGIN").await?;
    session
        .sql("ALTER TABLE lake.main.t ADD COLUMN d INT")
        .await?;
    session
        .sql("INSERT INTO lake.main.t VALUES ('z', 4, 5)")
        .await?;
    let err = session
        .sql("ALTER TABLE lake.main.t DROP COLUMN c")
        .await
        .err()
        .ok_or("a second column change over the transaction's inlined rows must be refused")?
        .to_string();
    assert!(
        err.contains("lake.main.t") && err.contains("inlined row"),
        "{err}"
    );
    // The failed statement aborts the transaction; COMMIT rolls it back, as DuckDB does.
    let _ = session.sql("COMMIT").await;
    assert_eq!(snapshot_count(&session).await?, before);

    let expected = duckdb_sql_queries(
        &lake,
        "query rows\nSELECT b, c FROM lake.main.t ORDER BY b NULLS FIRST, c\n\n\
         query columns\nSELECT column_name FROM information_schema.columns \
         WHERE table_catalog = 'lake' AND table_name = 't' ORDER BY ordinal_position\n",
    )?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        rows(&session, "SELECT count(*) FROM lake.main.t WHERE b = 'x'").await?,
        vec![vec!["1".to_string()]]
    );
    Ok(())
}

#[tokio::test]
async fn inlined_rows_and_column_changes_in_one_transaction_on_sqlite() -> TestResult {
    inlined_rows_and_column_changes_in_one_transaction(Backend::Sqlite).await
}

#[tokio::test]
async fn inlined_rows_and_column_changes_in_one_transaction_on_postgres() -> TestResult {
    inlined_rows_and_column_changes_in_one_transaction(Backend::Postgres).await
}

/// A column change, then a flush of the table's inlined rows, in one
/// transaction: the flush drops the inlined-data table of the old layout
/// inside the transaction (it failed with "no such table" on the next
/// statement), and COMMIT drops it from the catalog too; DuckDB reads the lake
/// as lakeq does, and new rows inline into the new layout's table.
async fn flush_after_column_change_in_one_transaction(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "txn_alter_flush").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session.sql("CREATE TABLE lake.main.t (i INT)").await?;
    session.sql("INSERT INTO lake.main.t VALUES (1)").await?;
    session.sql("INSERT INTO lake.main.t VALUES (2)").await?;
    session.sql("BEGIN").await?;
    session
        .sql("ALTER TABLE lake.main.t ADD COLUMN j INTEGER")
        .await?;
    assert_eq!(
        rows(
            &session,
            "SELECT rows_flushed FROM ducklake_flush_inlined_data('lake', table_name => 't')"
        )
        .await?,
        [["2"]]
    );
    assert_eq!(
        rows(&session, "SELECT rowid, i, j FROM lake.main.t ORDER BY i").await?,
        [["0", "1", "NULL"], ["1", "2", "NULL"]]
    );
    session.sql("COMMIT").await?;
    session.sql("INSERT INTO lake.main.t VALUES (3, 3)").await?;
    let store = lake.open().await?;
    let backend_ = store.store().backend();
    assert!(!backend_.table_exists("ducklake_inlined_data_1_1").await?);
    assert!(backend_.table_exists("ducklake_inlined_data_1_2").await?);
    let expected = duckdb_sql_queries(
        &lake,
        "query rows\nSELECT rowid, snapshot_id, i, j FROM lake.main.t ORDER BY i\n\n\
         query snapshots\nSELECT snapshot_id, changes FROM lake.snapshots() ORDER BY snapshot_id\n",
    )?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[tokio::test]
async fn flush_after_column_change_in_one_transaction_on_sqlite() -> TestResult {
    flush_after_column_change_in_one_transaction(Backend::Sqlite).await
}

#[tokio::test]
async fn flush_after_column_change_in_one_transaction_on_postgres() -> TestResult {
    flush_after_column_change_in_one_transaction(Backend::Postgres).await
}

/// A table created, given a column and filled in one transaction: the
/// transaction is one snapshot with the final layout, so the empty inlined-data
/// table lakeq made for the first layout must not stay registered (DuckDB reads
/// every registered inlined table with the columns it knows and failed with
/// "Referenced column b not found"). DuckDB reads what lakeq reads.
async fn created_and_altered_in_one_transaction(backend: Backend) -> TestResult {
    let lake = TestLake::new(backend, "txn_create_alter").await?;
    let session = lakeq::Session::new();
    session.sql(&lake.attach_sql("lake")).await?;
    session.sql("BEGIN").await?;
    session.sql("CREATE TABLE lake.main.t (a INTEGER)").await?;
    session
        .sql("ALTER TABLE lake.main.t ADD COLUMN b INTEGER")
        .await?;
    session
        .sql("INSERT INTO lake.main.t VALUES (10, 3), (20, 1), (30, 2)")
        .await?;
    session.sql("COMMIT").await?;
    let store = lake.open().await?;
    let backend_ = store.store().backend();
    let registered = backend_
        .query(&format!(
            "SELECT table_name FROM {} ORDER BY table_name",
            backend_.table("ducklake_inlined_data_tables")
        ))
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(registered, ["ducklake_inlined_data_1_2"]);
    assert!(!backend_.table_exists("ducklake_inlined_data_1_1").await?);
    let expected = duckdb_sql_queries(
        &lake,
        "query rows\nSELECT a, b FROM lake.main.t ORDER BY b\n",
    )?;
    let problems = compare_with_oracle(&session, &expected).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[tokio::test]
async fn created_and_altered_in_one_transaction_on_sqlite() -> TestResult {
    created_and_altered_in_one_transaction(Backend::Sqlite).await
}

#[tokio::test]
async fn created_and_altered_in_one_transaction_on_postgres() -> TestResult {
    created_and_altered_in_one_transaction(Backend::Postgres).await
}
