//! `lakeq worker --listen 127.0.0.1:50051`: a worker of distributed queries.

use std::net::SocketAddr;

use lakeq::error::{Error, Result};

/// Arguments of `lakeq worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Address to serve on (`host:port`; port 0 picks a free one, printed at start).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: String,
    /// Do not print a line per scan task received.
    #[arg(long)]
    pub quiet: bool,
}

/// Run `lakeq worker` until Ctrl-C (or SIGTERM).
pub async fn run(args: WorkerArgs) -> Result<()> {
    let listen: SocketAddr = args.listen.parse().map_err(|e| Error::InvalidLocation {
        location: args.listen.clone(),
        reason: format!("not a listen address (host:port): {e}"),
    })?;
    // Bind first, so that port 0 works and a taken port is an error here.
    let listener = std::net::TcpListener::bind(listen).map_err(|e| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("lakeq worker cannot listen on {listen}: {e}"),
        ))
    })?;
    let bound = listener.local_addr()?;
    drop(listener);
    eprintln!("lakeq worker listening on {bound}");
    lakeq::distributed::serve_worker(bound, !args.quiet, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
