//! Embedding lakeq in a Rust program, end to end:
//! `cargo run --example embed -- <folder>`.
//!
//! 1. Bring your own DataFusion `SessionContext` (here with a batch size of
//!    your choosing) and hand it to lakeq with `Session::with_context`.
//! 2. Attach the lake `<folder>/meta.sqlite` (data under `<folder>/data/`),
//!    created if it does not exist. If DuckDB wrote it and it has a table
//!    `main.duck` with a BIGINT column `i`, its row count and sum are printed:
//!    lakeq reads DuckDB's lakes as they are.
//! 3. Write: a table `main.events` of 1,000 rows, then 1,000 more; each
//!    statement is one snapshot.
//! 4. Stream a query batch by batch (`Session::query` returns a DataFusion
//!    `DataFrame`), and travel back to the snapshot before the second write.
//! 5. Plain `ctx.sql()` on the same context sees the lake too (DataFusion's
//!    dialect, the snapshot of the session's last statement).
//!
//! It prints one `key: value` line per finding (tests/it/examples.rs checks them
//! against DuckDB).

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let folder = std::env::args()
        .nth(1)
        .ok_or("usage: embed <folder> (the lake is <folder>/meta.sqlite)")?;
    tokio::runtime::Runtime::new()?.block_on(run(&folder))
}

/// The first column of the first row of a one-row result, as an i64.
fn single_i64(batches: &[datafusion::arrow::array::RecordBatch]) -> Result<i64, String> {
    let batch = batches.first().ok_or("no result")?;
    let column = datafusion::arrow::compute::cast(
        batch.column(0),
        &datafusion::arrow::datatypes::DataType::Int64,
    )
    .map_err(|e| e.to_string())?;
    let values = column.as_primitive::<Int64Type>();
    if values.is_empty() || values.is_null(0) {
        return Err("NULL or empty result".into());
    }
    Ok(values.value(0))
}

async fn run(folder: &str) -> Result<(), Box<dyn std::error::Error>> {
    // 1. Your context, your settings; lakeq adds its catalogs and functions to it.
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_batch_size(4096));
    let session = lakeq::Session::with_context(ctx.clone());

    // 2. Attach (DuckDB's ATTACH syntax), and read what DuckDB wrote, if anything.
    session
        .sql(&format!(
            "ATTACH 'ducklake:sqlite:{folder}/meta.sqlite' AS lake (DATA_PATH '{folder}/data/')"
        ))
        .await?;
    // The lake is a DataFusion catalog on your context.
    let has_duck = ctx
        .catalog("lake")
        .and_then(|catalog| catalog.schema("main"))
        .is_some_and(|schema| schema.table_exist("duck"));
    if has_duck {
        // `lake.duck`: DuckDB's name resolution (the lake's default schema).
        let rows = session.sql("SELECT count(*) FROM lake.duck").await?;
        let sum = session.sql("SELECT sum(i) FROM lake.duck").await?;
        println!("duck rows: {}", single_i64(&rows)?);
        println!("duck sum: {}", single_i64(&sum)?);
    }

    // 3. Write: every statement is one snapshot.
    session
        .sql(
            "CREATE OR REPLACE TABLE lake.main.events AS \
             SELECT range AS id, 'event ' || range AS name FROM range(1000)",
        )
        .await?;
    let before = single_i64(
        &session
            .sql("SELECT max(snapshot_id) FROM lake.snapshots()")
            .await?,
    )?;
    session
        .sql("INSERT INTO lake.main.events SELECT range + 1000, 'event ' || (range + 1000) FROM range(1000)")
        .await?;

    // 4. Stream, then travel back.
    let mut stream = session
        .query("SELECT id FROM lake.main.events WHERE id % 2 = 0")
        .await?
        .execute_stream()
        .await?;
    let (mut rows, mut batches) = (0usize, 0usize);
    while let Some(batch) = stream.next().await {
        rows += batch?.num_rows();
        batches += 1;
    }
    println!("streamed rows: {rows}");
    println!("streamed batches: {batches}");
    let then = session
        .sql(&format!(
            "SELECT count(*) FROM lake.main.events AT (VERSION => {before})"
        ))
        .await?;
    println!("rows at snapshot {before}: {}", single_i64(&then)?);

    // 5. The context you passed in sees the lake as of the session's last statement.
    let plain = ctx
        .sql("SELECT count(*) FROM lake.main.events")
        .await?
        .collect()
        .await?;
    println!("rows via ctx.sql: {}", single_i64(&plain)?);
    Ok(())
}
