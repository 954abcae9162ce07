//! [`StatsCollector`]: the statistics a data file of some rows would get,
//! computed by the same encoder as [`DataFileWriter`](super::DataFileWriter)
//! without writing a file.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_writer::ArrowWriterOptions;

use super::file_error;
use super::floats::FloatLeafStats;
use super::plan::WritePlan;
use crate::error::Result;
use crate::write::{ColumnStats, WriteOptions};

/// The statistics a data file of some rows would get, without writing one: the
/// rows go through the same Parquet encoder as [`DataFileWriter`](super::DataFileWriter) into a sink,
/// and the footer it would have written gives the [`ColumnStats`]. For files
/// lakeq registers but did not write (`ducklake_add_data_files`): their own
/// footers may lack statistics, hold truncated bounds or bounds in the file's
/// type rather than the table's.
pub struct StatsCollector {
    plan: WritePlan,
    writer: ArrowWriter<std::io::Sink>,
    floats: Vec<FloatLeafStats>,
    rows: i64,
    /// The file the rows come from, for errors.
    path: String,
}

impl fmt::Debug for StatsCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatsCollector")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish()
    }
}

impl StatsCollector {
    /// A collector for batches of `schema` (fields carrying their column ids, as
    /// for [`DataFileWriter::new`](super::DataFileWriter::new)) read from the file `path`.
    pub fn new(schema: SchemaRef, path: &str) -> Result<Self> {
        let plan = WritePlan::new(schema).map_err(|reason| file_error(path, reason))?;
        let options = ArrowWriterOptions::new()
            .with_properties(plan.writer_properties(&WriteOptions::default()))
            .with_skip_arrow_metadata(true)
            .with_parquet_schema(plan.parquet_schema.clone());
        let writer = ArrowWriter::try_new_with_options(
            std::io::sink(),
            Arc::clone(&plan.write_schema),
            options,
        )
        .map_err(|e| file_error(path, e))?;
        Ok(Self {
            floats: vec![FloatLeafStats::default(); plan.leaves.len()],
            plan,
            writer,
            rows: 0,
            path: path.to_string(),
        })
    }

    /// Add `batch`'s rows.
    pub fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = self
            .plan
            .prepare(batch)
            .map_err(|reason| file_error(&self.path, reason))?;
        self.writer
            .write(&batch)
            .map_err(|e| file_error(&self.path, e))?;
        self.plan.scan_floats(&batch, &mut self.floats);
        self.rows += i64::try_from(batch.num_rows()).unwrap_or(i64::MAX);
        Ok(())
    }

    /// The number of rows added and one statistics row per leaf column.
    pub fn finish(self) -> Result<(i64, Vec<ColumnStats>)> {
        let Self {
            plan,
            writer,
            floats,
            rows,
            path,
        } = self;
        let metadata = writer.close().map_err(|e| file_error(&path, e))?;
        let stats = plan
            .column_stats(&metadata, &floats)
            .map_err(|reason| file_error(&path, reason))?;
        Ok((rows, stats))
    }
}
