//! Reading a large table through the library with and without collecting it:
//! `cargo run --release --example stream_rss -- <folder> build|stream|collect [rows]`.
//!
//! `build` writes a table of `rows` (default 10,000,000) rows of (BIGINT,
//! VARCHAR) into a SQLite-catalog lake in `<folder>`; `stream` reads it batch
//! by batch through `Session::query(..).execute_stream()`; `collect` reads it
//! into memory with `Session::sql`. Both print the rows and the sum they saw;
//! time them and compare their peak memory (e.g. `farm-bench`, or
//! `/usr/bin/time -v`).

use futures::StreamExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(folder), Some(mode)) = (args.get(1), args.get(2)) else {
        return Err("usage: stream_rss <folder> build|stream|collect [rows]".into());
    };
    let rows: u64 = args.get(3).map_or(Ok(10_000_000), |r| r.parse())?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let session = lakeq::Session::new();
        session
            .sql(&format!(
                "ATTACH 'ducklake:sqlite:{folder}/meta.sqlite' AS lake (DATA_PATH '{folder}/data/')"
            ))
            .await?;
        let sql = "SELECT i, s FROM lake.main.big";
        let (n, sum) = match mode.as_str() {
            "build" => {
                session
                    .sql(&format!(
                        "CREATE OR REPLACE TABLE lake.main.big AS \
                         SELECT range AS i, 'value ' || range AS s FROM range({rows})"
                    ))
                    .await?;
                (rows as usize, 0)
            }
            "stream" => {
                let mut stream = session.query(sql).await?.execute_stream().await?;
                let (mut n, mut sum) = (0usize, 0i64);
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    n += batch.num_rows();
                    sum += column_sum(&batch);
                }
                (n, sum)
            }
            "collect" => {
                let batches = session.sql(sql).await?;
                (
                    batches.iter().map(|b| b.num_rows()).sum(),
                    batches.iter().map(column_sum).sum(),
                )
            }
            other => return Err(format!("unknown mode '{other}'").into()),
        };
        println!("{mode}: {n} rows, sum {sum}");
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

fn column_sum(batch: &datafusion::arrow::array::RecordBatch) -> i64 {
    datafusion::arrow::array::cast::as_primitive_array::<datafusion::arrow::datatypes::Int64Type>(
        batch.column(0),
    )
    .iter()
    .flatten()
    .sum()
}
