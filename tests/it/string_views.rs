//! Issue 15, item 2: scans return VARCHAR and BLOB columns as Arrow `Utf8View` and
//! `BinaryView` (`SessionOptions::string_views`, on by default). The same statements
//! run with the option on and off must give the same answers and SQL types, and write
//! the same Parquet schemas and the same catalog rows: only the Arrow types of
//! scanned columns differ. Covers Parquet and inlined rows, a renamed column, an
//! added column with a default, INSERT ... SELECT, UPDATE, DELETE, CTAS and a view.

use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use sqlx::Connection;

use crate::common::{Backend, TestLake, TestResult, lakeq_query, list_files};

/// The statements both sessions run, after ATTACH ... AS l; USE l.
fn statements() -> Vec<String> {
    let rows: Vec<String> = (0..40)
        .map(|i| format!("({i}, 'row {i:02}', 'b{i}'::BLOB)"))
        .collect();
    vec![
        "CREATE TABLE t (id INTEGER, s VARCHAR, b BLOB)".into(),
        format!("INSERT INTO t VALUES {}", rows.join(", ")),
        // Small enough to be inlined into the catalog.
        "INSERT INTO t VALUES (100, 'inlined', '\\xAA'::BLOB), (101, NULL, NULL)".into(),
        "ALTER TABLE t RENAME COLUMN s TO s2".into(),
        "ALTER TABLE t ADD COLUMN c VARCHAR DEFAULT 'dflt'".into(),
        "INSERT INTO t SELECT id + 200, s2 || '!', b, c || '?' FROM t WHERE id < 5 OR id = 100 ORDER BY id"
            .into(),
        "UPDATE t SET s2 = upper(s2) WHERE id % 3 = 0".into(),
        "DELETE FROM t WHERE id % 7 = 1".into(),
        "CREATE TABLE t2 AS SELECT s2, b, c, id FROM t WHERE s2 > 'row 1' OR b IS NULL".into(),
        "CREATE VIEW v AS SELECT s2 || c AS sc, b FROM t".into(),
    ]
}

/// The queries whose answers both sessions must agree on.
const QUERIES: &[&str] = &[
    "SELECT * FROM t ORDER BY id",
    "SELECT typeof(s2), typeof(b), typeof(c) FROM t LIMIT 1",
    "DESCRIBE t",
    "DESCRIBE t2",
    "DESCRIBE v",
    "SELECT * FROM t2 ORDER BY id",
    "SELECT * FROM v ORDER BY sc NULLS FIRST, b",
    "SELECT s2, count(*), min(b), max(c) FROM t GROUP BY s2 ORDER BY s2 NULLS FIRST",
    "SELECT id FROM t WHERE s2 = 'row 05' OR s2 LIKE 'ROW%' OR b = 'b7'::BLOB ORDER BY id",
    "SELECT id, s2 FROM t WHERE c = 'dflt' AND s2 >= 'row 30' ORDER BY id",
    "SELECT rowid, s2 FROM t ORDER BY rowid",
];

struct Written {
    answers: Vec<(Vec<String>, Vec<Vec<String>>)>,
    /// Arrow types of `SELECT s2, b, c FROM t`.
    scan_types: Vec<DataType>,
    /// Each Parquet file's schema and key-value metadata, sorted.
    parquet: Vec<String>,
    /// The catalog's column and statistics rows. Byte sizes are left out: an UPDATE
    /// writes its rows in whatever order its plan's partitions finish, with either
    /// setting, and the compressed sizes follow the order.
    catalog: Vec<String>,
}

async fn write_and_read(views: bool) -> TestResult<Written> {
    let lake = TestLake::new(Backend::Sqlite, "string_views").await?;
    let session =
        lakeq::Session::with_options(&lakeq::SessionOptions::default().with_string_views(views));
    session.sql(&lake.attach_sql("l")).await?;
    session.sql("USE l").await?;
    for sql in statements() {
        session
            .sql(&sql)
            .await
            .map_err(|e| format!("{sql} (string_views = {views}): {e}"))?;
    }
    let mut answers = Vec::new();
    for q in QUERIES {
        answers.push(
            lakeq_query(&session, q)
                .await
                .map_err(|e| format!("{q} (string_views = {views}): {e}"))?,
        );
    }
    let batches = session.sql("SELECT s2, b, c FROM t").await?;
    let scan_types = batches
        .first()
        .ok_or("SELECT s2, b, c FROM t returned no batch")?
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();

    let mut parquet = Vec::new();
    for path in list_files(std::path::Path::new(&lake.data_path)) {
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let reader = SerializedFileReader::new(std::fs::File::open(&path)?)?;
        let meta = reader.metadata().file_metadata();
        let mut text = Vec::new();
        datafusion::parquet::schema::printer::print_schema(&mut text, meta.schema());
        parquet.push(format!(
            "{}\nkv: {:?}\nrows: {}",
            String::from_utf8(text)?,
            meta.key_value_metadata(),
            meta.num_rows()
        ));
    }
    parquet.sort();

    let db = lake
        .location
        .strip_prefix("ducklake:sqlite:")
        .ok_or("not a SQLite lake")?;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{db}")).await?;
    let mut catalog = Vec::new();
    for sql in [
        "SELECT table_id || ' ' || column_id || ' ' || column_name || ' ' || column_type || ' ' \
         || coalesce(initial_default, '-') || ' ' || coalesce(default_value, '-') \
         FROM ducklake_column ORDER BY table_id, column_id, begin_snapshot",
        "SELECT data_file_id || ' ' || column_id || ' ' || coalesce(min_value, '-') || ' ' \
         || coalesce(max_value, '-') || ' ' || coalesce(null_count, '-') || ' ' \
         || coalesce(value_count, '-') \
         FROM ducklake_file_column_stats ORDER BY data_file_id, column_id",
        "SELECT table_id || ' ' || column_id || ' ' || coalesce(min_value, '-') || ' ' \
         || coalesce(max_value, '-') || ' ' || coalesce(contains_null, '-') \
         FROM ducklake_table_column_stats ORDER BY table_id, column_id",
        "SELECT data_file_id || ' ' || record_count FROM ducklake_data_file ORDER BY data_file_id",
    ] {
        let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&mut conn).await?;
        catalog.extend(rows.into_iter().map(|(r,)| r));
    }
    Ok(Written {
        answers,
        scan_types,
        parquet,
        catalog,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn i15_string_views_change_only_the_arrow_types_of_scans() -> TestResult {
    let on = write_and_read(true).await?;
    let off = write_and_read(false).await?;
    assert_eq!(
        on.scan_types,
        vec![DataType::Utf8View, DataType::BinaryView, DataType::Utf8View],
        "string_views = true"
    );
    assert_eq!(
        off.scan_types,
        vec![DataType::Utf8, DataType::Binary, DataType::Utf8],
        "string_views = false"
    );
    for ((q, a), b) in QUERIES.iter().zip(&on.answers).zip(&off.answers) {
        assert_eq!(a, b, "{q}: views on (left) and off (right) differ");
    }
    let types = on
        .answers
        .get(1)
        .and_then(|(_, rows)| rows.first())
        .cloned();
    assert_eq!(
        types,
        Some(vec!["VARCHAR".into(), "BLOB".into(), "VARCHAR".into()]),
        "typeof"
    );
    assert!(
        on.parquet.len() >= 3,
        "expected several data files, got {}",
        on.parquet.len()
    );
    assert_eq!(on.parquet, off.parquet, "Parquet schemas differ");
    assert!(!on.catalog.is_empty(), "no catalog rows read");
    assert_eq!(on.catalog, off.catalog, "catalog rows differ");
    Ok(())
}
