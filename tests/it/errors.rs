//! Bad input gets a clear error naming the object, and never a panic.

use crate::common::{Backend, TestLake, TestResult, scratch_dir};

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
