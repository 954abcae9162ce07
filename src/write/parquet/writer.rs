//! [`DataFileWriter`]: record batches streamed into Parquet data files under a
//! table directory, rolled over where DuckDB would cut them, each described
//! (size, footer, statistics) as the catalog needs it.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::arrow::arrow_writer::ArrowWriterOptions;
use datafusion::parquet::basic::Encoding;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;
use object_store::ObjectStore;

use super::floats::FloatLeafStats;
use super::plan::WritePlan;
use super::properties::{file_properties, writer_properties};
use super::upload::{Upload, delete_files, remove_all};
use super::{WRITE_CHUNK_ROWS, file_error};
use crate::error::Result;
use crate::spec::paths::normalize_dir;
use crate::storage::locate;
use crate::write::{ColumnStats, WriteOptions, WrittenFile};

/// DuckDB's default rows per row group (`parquet_row_group_size`).
const DUCKDB_ROW_GROUP_ROWS: usize = 122_880;

/// A file being written.
struct OpenFile {
    writer: AsyncArrowWriter<Upload>,
    url: String,
    file_name: String,
    rows: i64,
    /// Per leaf: what the file holds of a float leaf (unused for other leaves).
    floats: Vec<FloatLeafStats>,
}

/// Streams record batches into one or more Parquet files under a table directory.
///
/// Batches must have the table schema's columns in order (names are ignored,
/// types are cast to the schema's where they differ). A new file is started when
/// the current one reaches [`WriteOptions::target_file_size`]; memory stays
/// bounded by one row group plus the upload buffer. After an error from
/// [`DataFileWriter::write`], call [`DataFileWriter::abort`]; dropping the writer
/// without [`DataFileWriter::finish`] or `abort` leaves the files written so far.
pub struct DataFileWriter {
    store: Arc<dyn ObjectStore>,
    table_dir: String,
    plan: std::result::Result<Arc<WritePlan>, String>,
    options: WriteOptions,
    properties: WriterProperties,
    /// `""` for data files, `"-delete"` for delete files.
    name_suffix: &'static str,
    /// Whether [`WrittenFile::column_stats`] is filled.
    collect_stats: bool,
    current: Option<OpenFile>,
    done: Vec<WrittenFile>,
    /// Set in the random bits of every file name's UUIDv7 (see
    /// [`super::super::name_tag`]), so the files of one write can be found again.
    tag: Option<u64>,
}

impl fmt::Debug for DataFileWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataFileWriter")
            .field("table_dir", &self.table_dir)
            .field("options", &self.options)
            .field("finished_files", &self.done.len())
            .field("open_file", &self.current.as_ref().map(|c| c.url.as_str()))
            .finish()
    }
}

impl DataFileWriter {
    /// A writer of data files into `table_dir` (an absolute path or URL; a missing
    /// trailing `/` is added) for batches of `schema`, whose fields (nested ones
    /// too) carry their column ids as `PARQUET:field_id` metadata.
    ///
    /// A schema that cannot be written (missing field id, unsupported type) is
    /// reported by the first [`DataFileWriter::write`] or by
    /// [`DataFileWriter::finish`].
    pub fn new(
        store: Arc<dyn ObjectStore>,
        table_dir: &str,
        schema: SchemaRef,
        options: WriteOptions,
    ) -> Self {
        Self::with_kind(store, table_dir, schema, options, "", true)
    }

    pub(super) fn with_kind(
        store: Arc<dyn ObjectStore>,
        table_dir: &str,
        schema: SchemaRef,
        options: WriteOptions,
        name_suffix: &'static str,
        collect_stats: bool,
    ) -> Self {
        let plan = WritePlan::new(schema).map(Arc::new);
        let properties = match &plan {
            Ok(plan) => plan.writer_properties(&options),
            Err(_) => writer_properties(&options),
        };
        Self {
            store,
            table_dir: normalize_dir(table_dir),
            plan,
            properties,
            options,
            name_suffix,
            collect_stats,
            current: None,
            tag: None,
            done: Vec::new(),
        }
    }

    /// Name every file with `tag` in the random bits of its UUIDv7 (a name of
    /// DuckDB's form still), so that [`crate::write::remove_tagged`] finds the
    /// files of this write even when no report of them arrived.
    pub fn with_name_tag(mut self, tag: u64) -> Self {
        self.tag = Some(tag);
        self
    }

    /// Write the named top-level column with `encoding` instead of a dictionary
    /// (e.g. `DELTA_BYTE_ARRAY` for distinct strings sharing long prefixes).
    pub fn with_column_encoding(mut self, column: &str, encoding: Encoding) -> Self {
        let path = ColumnPath::from(vec![column.to_string()]);
        self.properties = self
            .properties
            .into_builder()
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, encoding)
            .build();
        self
    }

    fn plan(&self) -> Result<Arc<WritePlan>> {
        self.plan
            .as_ref()
            .map(Arc::clone)
            .map_err(|reason| file_error(&self.table_dir, reason.clone()))
    }

    /// Append `batch`, rolling over to a new file at the target size.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let plan = self.plan()?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = plan.prepare(batch).map_err(|reason| {
            let path = self
                .current
                .as_ref()
                .map_or(self.table_dir.as_str(), |c| &c.url);
            file_error(path, reason)
        })?;
        // Files are cut where DuckDB cuts them: at the end of a row group (of
        // DuckDB's size, see `roll_rows`) once the file reached its target.
        let roll = self.roll_rows();
        let mut offset = 0;
        while offset < batch.num_rows() {
            let in_file = self.current.as_ref().map_or(0, |f| f.rows.unsigned_abs());
            let to_boundary = roll - in_file % roll;
            let len = WRITE_CHUNK_ROWS
                .min(batch.num_rows() - offset)
                .min(usize::try_from(to_boundary).unwrap_or(usize::MAX));
            let chunk = batch.slice(offset, len);
            offset += len;
            let mut file = match self.current.take() {
                Some(file) => file,
                None => self.open(&plan, &chunk)?,
            };
            if let Err(e) = file.writer.write(&chunk).await {
                let error = file_error(&file.url, e);
                self.current = Some(file);
                return Err(error);
            }
            file.rows += i64::try_from(len).unwrap_or(i64::MAX);
            plan.scan_floats(&chunk, &mut file.floats);
            let size = file.writer.bytes_written() + file.writer.in_progress_size();
            if file.rows.unsigned_abs() % roll == 0 && size as u64 >= self.options.target_file_size
            {
                let written = self.close(&plan, file).await?;
                self.done.push(written);
            } else {
                self.current = Some(file);
            }
        }
        Ok(())
    }

    /// Rows per DuckDB row group: the lake's `parquet_row_group_size`, or DuckDB's
    /// default of 122880 where lakeq uses its own larger default. DuckDB starts a
    /// new file only after a row group, so a file of fewer rows is never split.
    fn roll_rows(&self) -> u64 {
        let rows = if self.options.row_group_size == crate::write::DEFAULT_ROW_GROUP_SIZE {
            DUCKDB_ROW_GROUP_ROWS
        } else {
            self.options.row_group_size
        };
        u64::try_from(rows.max(1)).unwrap_or(u64::MAX)
    }

    /// Close the current file and return every file written, in order. Writing
    /// nothing writes no file. On error, the files written so far are removed.
    pub async fn finish(mut self) -> Result<Vec<WrittenFile>> {
        let plan = match self.plan() {
            Ok(plan) => plan,
            Err(e) => {
                self.abort().await?;
                return Err(e);
            }
        };
        if let Some(file) = self.current.take() {
            match self.close(&plan, file).await {
                Ok(written) => self.done.push(written),
                Err(e) => {
                    delete_files(&self.store, &self.done).await;
                    return Err(e);
                }
            }
        }
        Ok(self.done)
    }

    /// Remove every file written so far (best effort: all removals are attempted;
    /// the first failure other than "not found" is returned). Never panics.
    pub async fn abort(mut self) -> Result<()> {
        let mut urls: Vec<String> = self.done.drain(..).map(|f| f.url).collect();
        if let Some(file) = self.current.take() {
            file.writer.into_inner().abort().await;
            // In case the upload had completed after all.
            urls.push(file.url);
        }
        remove_all(&self.store, &urls).await
    }

    /// Open a new file whose first rows are `first`.
    fn open(&self, plan: &WritePlan, first: &RecordBatch) -> Result<OpenFile> {
        let id = match self.tag {
            Some(tag) => super::super::tagged_uuid(uuid::Uuid::now_v7(), tag),
            None => uuid::Uuid::now_v7(),
        };
        let file_name = format!("ducklake-{id}{}.parquet", self.name_suffix);
        let url = format!("{}{file_name}", self.table_dir);
        let path = locate(&url)?.path;
        let options = ArrowWriterOptions::new()
            .with_properties(file_properties(&self.properties, first))
            .with_skip_arrow_metadata(true)
            .with_parquet_schema(plan.parquet_schema.clone());
        let upload = Upload::new(Arc::clone(&self.store), path);
        let writer =
            AsyncArrowWriter::try_new_with_options(upload, Arc::clone(&plan.write_schema), options)
                .map_err(|e| file_error(&url, e))?;
        Ok(OpenFile {
            writer,
            url,
            file_name,
            rows: 0,
            floats: vec![FloatLeafStats::default(); plan.leaves.len()],
        })
    }

    /// Finish `file`'s footer and upload and describe it. On failure nothing is
    /// left behind.
    async fn close(&mut self, plan: &WritePlan, file: OpenFile) -> Result<WrittenFile> {
        let OpenFile {
            mut writer,
            url,
            file_name,
            rows,
            floats,
        } = file;
        let metadata = match writer.finish().await {
            Ok(metadata) => metadata,
            Err(e) => {
                writer.into_inner().abort().await;
                let _ = remove_all(&self.store, std::slice::from_ref(&url)).await;
                return Err(file_error(&url, e));
            }
        };
        let upload = writer.into_inner();
        let described = describe(plan, &metadata, rows, &floats, &upload, self.collect_stats);
        match described {
            Ok((record_count, file_size_bytes, column_stats)) => Ok(WrittenFile {
                url,
                file_name,
                record_count,
                file_size_bytes,
                footer_size: upload.footer_size(),
                column_stats,
            }),
            Err(reason) => {
                let _ = remove_all(&self.store, std::slice::from_ref(&url)).await;
                Err(file_error(&url, reason))
            }
        }
    }
}

/// Record count, file size and column statistics of a finished file.
fn describe(
    plan: &WritePlan,
    metadata: &ParquetMetaData,
    rows: i64,
    floats: &[FloatLeafStats],
    upload: &Upload,
    collect_stats: bool,
) -> Result<(i64, i64, Vec<ColumnStats>), String> {
    let footer_rows = metadata.file_metadata().num_rows();
    if footer_rows != rows {
        return Err(format!(
            "the footer counts {footer_rows} rows, {rows} were written"
        ));
    }
    let column_stats = if collect_stats {
        plan.column_stats(metadata, floats)?
    } else {
        Vec::new()
    };
    let size = i64::try_from(upload.size).map_err(|e| e.to_string())?;
    Ok((rows, size, column_stats))
}
