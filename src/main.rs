//! The `lakeq` binary: parse the command line, run it, map errors to an exit code.

#![cfg_attr(
    not(test),
    deny(clippy::string_slice, clippy::indexing_slicing, clippy::unwrap_used)
)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// Stack of the thread that parses and plans statements, and of the runtime's
/// workers. Planning recurses once per level of expression nesting; the
/// parser refuses expressions deeper than DuckDB's 1,000 levels, and a
/// 1,000-level expression needs more than the default 8 MiB main thread in a
/// debug build. Only the pages a thread touches are ever committed.
const STACK_SIZE: usize = 256 << 20;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let main = std::thread::Builder::new()
        .name("lakeq-main".into())
        .stack_size(STACK_SIZE)
        .spawn(move || run(cli));
    match main.map(|thread| thread.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(e) => {
            eprintln!("Error: cannot start the main thread: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(STACK_SIZE / 4)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(lakeq::Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            let mut last = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !last.contains(&text) {
                    eprintln!("  caused by: {text}");
                }
                last = text;
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
