//! `lakeq generate`: the deterministic writer of the sample SaaS landing zone
//! (contract: `data-model.md` §1).
//!
//! A run writes batches `last + 1 ..= last + N`, where `last` is the highest
//! batch number found under any of the four table folders (0 for an empty
//! landing zone). Each batch is four Parquet files:
//!
//! ```text
//! {landing}/users/batch-000003.parquet
//! {landing}/events/batch-000003.parquet
//! {landing}/invoices/batch-000003.parquet
//! {landing}/support_tickets/batch-000003.parquet
//! ```
//!
//! # Determinism
//!
//! The content of a file is a pure function of `(seed, batch number, sizes)`:
//! the same inputs give byte-for-byte the same Parquet file, whichever run,
//! thread or machine writes it and however the batches are split into runs.
//! - Every table of every batch draws from its own random stream keyed by
//!   `(seed, table, batch)`; users' profiles are keyed by `(seed, user_id)` and
//!   their plan/activity walk by `(seed, user_id, batch)`. Nothing depends on
//!   thread scheduling, the clock or the OS random source.
//! - The generator is integer-only (no floating-point), and its PRNG
//!   (xoshiro256++ seeded by SplitMix64) is part of lakeq, so output does not
//!   move with a dependency upgrade or a platform's math library. Only the
//!   Parquet encoder (parquet-rs, whose version is written in the footer) is
//!   external.
//! - Row ids (`event_id`, `invoice_id`, `ticket_id`) are UUID-looking text
//!   derived from `(seed, table, batch, row)`; their low 62 bits are a
//!   bijection of `(table, batch, row)`, so they are unique across the whole
//!   landing zone (batch numbers never repeat there).
//!
//! # Atomicity
//!
//! Files are encoded in memory and stored with one `put` in create mode: on a
//! local folder object_store writes a staging file (`name#N`, which listings
//! skip) and links it into place; on S3 an object appears only once complete.
//! A concurrent reader (`lakeq ingest`) therefore sees a whole file or none,
//! and an existing file is never overwritten (two concurrent generators
//! targeting the same batch get [`Error::AlreadyExists`]). A run that fails
//! midway leaves only complete files; the next run continues after the
//! highest batch present.
//!
//! # Speed
//!
//! `(batch, table)` jobs are generated and encoded on the blocking thread pool,
//! as many at a time as there are cores; each job's output is stored as soon
//! as it is encoded.

mod population;
mod rng;
mod tables;
mod time;

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use serde::Serialize;

use crate::error::{Error, Result};
use population::{BatchState, Population};
use tables::BatchContext;
pub use tables::{BatchSizes, LandingTable};

/// Where `lakeq generate` writes when no `--landing` is given (relative to the
/// current directory, next to the embedded default lakes under `lake/`).
pub const DEFAULT_LANDING: &str = "lake/landing";
/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 42;
/// The highest batch number (file names have six digits).
pub const MAX_BATCH: u32 = 999_999;
/// Rows per Parquet row group (DuckDB's default; a default-size batch is one group per file).
pub const ROW_GROUP_ROWS: usize = 122_880;

/// What to generate and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Landing root: a local folder (relative paths are taken from the current
    /// directory) or a URL such as `s3://bucket/prefix`.
    pub landing: String,
    /// How many new batches to write.
    pub batches: u32,
    /// The seed; with the batch number it determines every byte written.
    pub seed: u64,
    /// Rows per table and batch.
    pub sizes: BatchSizes,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            landing: DEFAULT_LANDING.to_string(),
            batches: 1,
            seed: DEFAULT_SEED,
            sizes: BatchSizes::default(),
        }
    }
}

/// Rows written per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TableRows {
    /// Rows of `users`.
    pub users: u64,
    /// Rows of `events`.
    pub events: u64,
    /// Rows of `invoices`.
    pub invoices: u64,
    /// Rows of `support_tickets`.
    pub support_tickets: u64,
}

impl TableRows {
    fn add(&mut self, table: LandingTable, rows: u64) {
        let slot = match table {
            LandingTable::Users => &mut self.users,
            LandingTable::Events => &mut self.events,
            LandingTable::Invoices => &mut self.invoices,
            LandingTable::SupportTickets => &mut self.support_tickets,
        };
        *slot += rows;
    }
}

/// One file written by a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LandingFile {
    /// Table name (`users`, `events`, `invoices`, `support_tickets`).
    pub table: &'static str,
    /// Batch number.
    pub batch: u32,
    /// Path relative to the landing root, e.g. `events/batch-000003.parquet`.
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
    /// File size in bytes.
    pub bytes: u64,
}

/// The outcome of [`generate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenerateReport {
    /// The landing root, absolute (ends with `/`).
    pub landing: String,
    /// The seed used.
    pub seed: u64,
    /// Batch numbers written, ascending (empty when `batches` was 0).
    pub batches: Vec<u32>,
    /// Rows written per table, over all batches of the run.
    pub rows: TableRows,
    /// Every file written, ordered by batch then table.
    pub files: Vec<LandingFile>,
    /// Total bytes written.
    pub bytes: u64,
}

/// The path of a landing file relative to the landing root:
/// `{table}/batch-{NNNNNN}.parquet`.
pub fn landing_file_path(table: LandingTable, batch: u32) -> String {
    format!("{}/batch-{batch:06}.parquet", table.name())
}

/// The batch number of a landing file name (`batch-000003.parquet` → 3).
pub fn parse_batch_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("batch-")?.strip_suffix(".parquet")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The window of batch `batch` as `[start, end)` microseconds since the Unix
/// epoch: the 30 days starting at 2026-01-01T00:00:00 + 30·(batch−1) days.
/// `end` is also the batch's as-of time (`users.updated_at`).
pub fn batch_window_micros(batch: u32) -> (i64, i64) {
    time::batch_window(batch)
}

/// Generate one table of one batch in memory, exactly as [`generate`] writes it
/// (a pure function of its arguments). Cost grows with `users × batch` for the
/// plan history.
pub fn generate_table(
    seed: u64,
    batch: u32,
    sizes: &BatchSizes,
    table: LandingTable,
) -> Result<RecordBatch> {
    check_batch_range(batch, batch)?;
    check_sizes(sizes)?;
    let population = Population::new(seed, sizes.users);
    let states = population.states(batch, batch);
    let state = states
        .first()
        .ok_or_else(|| Error::Unsupported(format!("batch {batch}: batches start at 1")))?;
    BatchContext {
        seed,
        sizes: *sizes,
        population: &population,
        state,
    }
    .build(table)
}

/// The highest batch number present under the landing root (0 when none).
pub async fn latest_batch(landing: &str) -> Result<u32> {
    let (store, prefix, _) = open_landing(landing)?;
    latest_batch_in(store.as_ref(), &prefix).await
}

/// Write `options.batches` new batches of the four landing tables, numbered
/// after the highest batch already present.
pub async fn generate(options: &GenerateOptions) -> Result<GenerateReport> {
    check_sizes(&options.sizes)?;
    let (store, prefix, landing) = open_landing(&options.landing)?;
    let last = latest_batch_in(store.as_ref(), &prefix).await?;
    let batches: Vec<u32> = if options.batches == 0 {
        Vec::new()
    } else {
        let first = last.saturating_add(1);
        let end = last.saturating_add(options.batches);
        check_batch_range(first, end)?;
        (first..=end).collect()
    };
    let mut report = GenerateReport {
        landing,
        seed: options.seed,
        batches: batches.clone(),
        rows: TableRows::default(),
        files: Vec::new(),
        bytes: 0,
    };
    let (Some(&first), Some(&end)) = (batches.first(), batches.last()) else {
        return Ok(report);
    };

    let population = Arc::new(Population::new(options.seed, options.sizes.users));
    let mut jobs = Vec::with_capacity(batches.len() * LandingTable::ALL.len());
    for state in population.states(first, end) {
        let state = Arc::new(state);
        // Biggest first, so the small tables fill the gaps at the end.
        for table in [
            LandingTable::Events,
            LandingTable::Invoices,
            LandingTable::SupportTickets,
            LandingTable::Users,
        ] {
            jobs.push(Job {
                seed: options.seed,
                sizes: options.sizes,
                population: Arc::clone(&population),
                state: Arc::clone(&state),
                table,
            });
        }
    }

    let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut files: Vec<LandingFile> = futures::stream::iter(jobs)
        .map(|job| {
            let store = Arc::clone(&store);
            let prefix = prefix.clone();
            let root = report.landing.clone();
            async move { job.run(store.as_ref(), &prefix, &root).await }
        })
        .buffer_unordered(parallelism)
        .try_collect()
        .await?;
    files.sort_by_key(|f| (f.batch, f.table));
    for f in &files {
        if let Some(table) = LandingTable::ALL.iter().find(|t| t.name() == f.table) {
            report.rows.add(*table, f.rows);
        }
        report.bytes += f.bytes;
    }
    report.files = files;
    Ok(report)
}

/// One `(batch, table)` unit of work.
struct Job {
    seed: u64,
    sizes: BatchSizes,
    population: Arc<Population>,
    state: Arc<BatchState>,
    table: LandingTable,
}

impl Job {
    async fn run(
        self,
        store: &dyn ObjectStore,
        prefix: &ObjectPath,
        root: &str,
    ) -> Result<LandingFile> {
        let (table, batch) = (self.table, self.state.batch);
        let relative = landing_file_path(table, batch);
        let full = format!("{root}{relative}");
        let full_for_task = full.clone();
        let (bytes, rows) = tokio::task::spawn_blocking(move || -> Result<(Bytes, u64)> {
            let data = BatchContext {
                seed: self.seed,
                sizes: self.sizes,
                population: &self.population,
                state: &self.state,
            }
            .build(table)?;
            let rows = data.num_rows() as u64;
            Ok((encode_parquet(&data, &full_for_task)?, rows))
        })
        .await
        .map_err(|e| Error::DataFile {
            path: full.clone(),
            source: Box::new(e),
        })??;
        let size = bytes.len() as u64;
        let mut location = prefix.clone();
        location.extend(relative.split('/'));
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        store
            .put_opts(&location, PutPayload::from(bytes), options)
            .await
            .map_err(|e| match e {
                object_store::Error::AlreadyExists { .. } => Error::AlreadyExists {
                    kind: "landing file",
                    name: full.clone(),
                },
                other => Error::DataFile {
                    path: full.clone(),
                    source: Box::new(other),
                },
            })?;
        Ok(LandingFile {
            table: table.name(),
            batch,
            path: relative,
            rows,
            bytes: size,
        })
    }
}

/// Encode one table as a Parquet file in memory (Snappy, [`ROW_GROUP_ROWS`]-row groups).
fn encode_parquet(data: &RecordBatch, path: &str) -> Result<Bytes> {
    let wrap = |e: datafusion::parquet::errors::ParquetError| Error::DataFile {
        path: path.to_string(),
        source: Box::new(e),
    };
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut buffer = Vec::with_capacity(data.get_array_memory_size() / 2);
    let mut writer = ArrowWriter::try_new(&mut buffer, data.schema(), Some(props)).map_err(wrap)?;
    writer.write(data).map_err(wrap)?;
    writer.close().map_err(wrap)?;
    Ok(Bytes::from(buffer))
}

/// Resolve the landing root: store, object path prefix, and the absolute
/// location text (ending with `/`).
fn open_landing(landing: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath, String)> {
    if landing.trim().is_empty() {
        return Err(Error::InvalidLocation {
            location: landing.to_string(),
            reason: "the landing location is empty".into(),
        });
    }
    let absolute = crate::storage::absolute_data_path(landing)?;
    let store = crate::storage::object_store_for(&absolute)?;
    let prefix = crate::storage::locate(&absolute)?.path;
    Ok((store, prefix, absolute))
}

/// The highest batch number of any table under `prefix` (0 when none).
async fn latest_batch_in(store: &dyn ObjectStore, prefix: &ObjectPath) -> Result<u32> {
    let mut latest = 0;
    for table in LandingTable::ALL {
        let folder = prefix.clone().join(table.name());
        let mut listing = store.list(Some(&folder));
        while let Some(item) = listing.next().await {
            let meta = match item {
                Ok(meta) => meta,
                Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => return Err(e.into()),
            };
            // Only direct children of the table folder count.
            if meta.location.prefix_match(&folder).map(|p| p.count()) != Some(1) {
                continue;
            }
            if let Some(batch) = meta.location.filename().and_then(parse_batch_file_name) {
                latest = latest.max(batch);
            }
        }
    }
    Ok(latest)
}

fn check_batch_range(first: u32, last: u32) -> Result<()> {
    if first == 0 || last > MAX_BATCH {
        return Err(Error::Unsupported(format!(
            "batch numbers {first}..={last}: landing batches are numbered 1..={MAX_BATCH}"
        )));
    }
    Ok(())
}

fn check_sizes(sizes: &BatchSizes) -> Result<()> {
    if sizes.users == 0 && (sizes.events > 0 || sizes.invoices > 0 || sizes.tickets > 0) {
        return Err(Error::Unsupported(
            "events, invoices and tickets without users: pass --users 1 or more".into(),
        ));
    }
    Ok(())
}
