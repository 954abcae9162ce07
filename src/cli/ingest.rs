//! `lakeq ingest`: load new landing files into the raw lake (one snapshot per load).
//!
//! On a terminal, a live line on stderr shows the files and rows written so far;
//! stdout only ever gets the summary (pure JSON with `--json`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lakeq::config::Config;
use lakeq::error::Result;
use lakeq::ingest::{
    IngestOptions, IngestProgress, IngestReport, ProgressSnapshot, RAW_LAKE, SchemaChange,
    default_concurrency, ingest_with_progress,
};

/// Arguments of `lakeq ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Project folder (holding `lakeq.toml`, or the embedded default `lake/`).
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    /// Landing zone (local folder or s3://bucket/prefix); overrides lakeq.toml.
    #[arg(long)]
    pub landing: Option<String>,
    /// What to do with new or widened columns.
    #[arg(long, value_enum, default_value_t = SchemaChange::Evolve)]
    pub schema_change: SchemaChange,
    /// Record bad files as rejected in `_lakeq_files` and load the rest.
    #[arg(long)]
    pub skip_bad_files: bool,
    /// Print a machine-readable JSON summary.
    #[arg(long)]
    pub json: bool,
    /// Landing files loaded at once, each on its own task (default: the number of
    /// cores, at least 2 and at most 8).
    #[arg(long, default_value_t = default_concurrency())]
    pub concurrency: usize,
}

/// Resolve the options of `lakeq ingest` from its arguments and the project config.
pub fn options(args: &IngestArgs) -> Result<IngestOptions> {
    let config = Config::load(&args.project)?;
    Ok(IngestOptions {
        landing: args.landing.clone().unwrap_or(config.landing.clone()),
        raw: config.lake(RAW_LAKE, &args.project),
        schema_change: args.schema_change,
        skip_bad_files: args.skip_bad_files,
        concurrency: args.concurrency,
        session: super::run_session_options(&config)?,
    })
}

/// Print a load's summary.
pub fn print_report(report: &IngestReport, json: bool) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string(report)
                .map_err(|e| lakeq::error::Error::Unsupported(e.to_string()))?
        );
        return Ok(());
    }
    let rows: u64 = report.rows.values().sum();
    match report.snapshot_id {
        Some(s) => println!(
            "ingest: load {} committed snapshot {s}: {} files, {rows} rows in {:.2}s",
            report.load_id, report.files, report.seconds
        ),
        None => println!("ingest: nothing new to load ({:.2}s)", report.seconds),
    }
    for (table, n) in &report.rows {
        println!("  raw.saas.{table}: {n} rows");
    }
    for (path, reason) in &report.rejected {
        println!("  rejected {path}: {reason}");
    }
    for path in &report.changed {
        println!("  warning: {path} changed after it was loaded; it is not reloaded");
    }
    Ok(())
}

/// Run `lakeq ingest`.
pub async fn run(args: IngestArgs) -> Result<()> {
    let options = options(&args)?;
    let progress = Arc::new(IngestProgress::default());
    let line = std::io::stderr()
        .is_terminal()
        .then(|| ProgressLine::start(Arc::clone(&progress)));
    let report = ingest_with_progress(&options, &progress).await;
    if let Some(line) = line {
        line.stop();
    }
    print_report(&report?, args.json)
}

/// The text of the progress line.
pub fn progress_text(p: ProgressSnapshot, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    if p.files_total == 0 {
        return format!("ingest: listing and planning ({seconds:.1}s)");
    }
    let rate = if seconds > 0.0 {
        p.rows as f64 / seconds / 1e6
    } else {
        0.0
    };
    format!(
        "ingest: {}/{} files, {} rows, {rate:.2}M rows/s ({seconds:.1}s)",
        p.files_done, p.files_total, p.rows
    )
}

/// A one-line progress display on stderr, redrawn in place with `\r` by a
/// plain thread (a progress-bar crate would be a dependency for ten lines).
struct ProgressLine {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressLine {
    /// Redraw interval: fast enough to look live, slow enough to cost nothing.
    const TICK: Duration = Duration::from_millis(100);

    fn start(progress: Arc<IngestProgress>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            let mut last = String::new();
            while !flag.load(Ordering::Relaxed) {
                let text = progress_text(progress.snapshot(), started.elapsed());
                if text != last {
                    // `\x1b[K` clears what a longer previous line left behind.
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r{text}\x1b[K");
                    let _ = err.flush();
                    last = text;
                }
                std::thread::sleep(Self::TICK);
            }
            if !last.is_empty() {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[K");
                let _ = err.flush();
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stop redrawing and clear the line (the summary follows on stdout).
    fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_text_shows_files_rows_and_rate() {
        let planning = progress_text(ProgressSnapshot::default(), Duration::from_millis(300));
        assert_eq!(planning, "ingest: listing and planning (0.3s)");
        let p = ProgressSnapshot {
            files_total: 40,
            files_done: 12,
            rows: 3_000_000,
        };
        assert_eq!(
            progress_text(p, Duration::from_secs(2)),
            "ingest: 12/40 files, 3000000 rows, 1.50M rows/s (2.0s)"
        );
    }
}
