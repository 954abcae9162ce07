//! `lakeq generate`: write batches of the sample landing zone (see
//! [`lakeq::generate`]) and print a short summary, or the report as JSON.

use std::io::Write;
use std::time::Instant;

use lakeq::error::Result;
use lakeq::generate::{BatchSizes, DEFAULT_LANDING, DEFAULT_SEED, GenerateOptions, GenerateReport};

/// Arguments of `lakeq generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// How many new batches to write (numbered after the highest batch present).
    #[arg(long, default_value_t = 1)]
    pub batches: u32,
    /// Seed: the same seed and batch number give byte-identical files.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Landing root: a local folder or a URL (`s3://bucket/prefix`).
    #[arg(long, default_value = DEFAULT_LANDING)]
    pub landing: String,
    /// Users per batch (every user appears in every batch).
    #[arg(long, default_value_t = BatchSizes::default().users)]
    pub users: u32,
    /// Events per batch.
    #[arg(long, default_value_t = BatchSizes::default().events)]
    pub events: u32,
    /// Invoices per batch.
    #[arg(long, default_value_t = BatchSizes::default().invoices)]
    pub invoices: u32,
    /// Support tickets per batch.
    #[arg(long, default_value_t = BatchSizes::default().tickets)]
    pub tickets: u32,
    /// Print the report as JSON (batches, rows per table, files).
    #[arg(long)]
    pub json: bool,
}

impl GenerateArgs {
    /// The library options these arguments stand for.
    pub fn options(&self) -> GenerateOptions {
        GenerateOptions {
            landing: self.landing.clone(),
            batches: self.batches,
            seed: self.seed,
            sizes: BatchSizes {
                users: self.users,
                events: self.events,
                invoices: self.invoices,
                tickets: self.tickets,
            },
        }
    }
}

/// Run `lakeq generate`.
pub async fn run(args: GenerateArgs) -> Result<()> {
    let started = Instant::now();
    let report = lakeq::generate::generate(&args.options()).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        write_summary(&mut out, &report, elapsed)?;
    }
    out.flush()?;
    Ok(())
}

fn write_summary(out: &mut dyn Write, report: &GenerateReport, seconds: f64) -> Result<()> {
    let (Some(first), Some(last)) = (report.batches.first(), report.batches.last()) else {
        writeln!(out, "no batches written to {}", report.landing)?;
        return Ok(());
    };
    let range = if first == last {
        format!("batch {first}")
    } else {
        format!("batches {first}..{last}")
    };
    writeln!(
        out,
        "wrote {range} (seed {}) to {} in {seconds:.2} s",
        report.seed, report.landing
    )?;
    let rows = &report.rows;
    for (name, n) in [
        ("users", rows.users),
        ("events", rows.events),
        ("invoices", rows.invoices),
        ("support_tickets", rows.support_tickets),
    ] {
        writeln!(out, "  {name:<16} {n:>10} rows")?;
    }
    writeln!(
        out,
        "  {} files, {:.1} MB",
        report.files.len(),
        report.bytes as f64 / 1e6
    )?;
    Ok(())
}
