//! `lakeq docs generate | serve`: dbt's documentation commands.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lakeq::error::{Error, Result};
use lakeq::models::introspect::SessionDatabase;
use lakeq::models::run::open_session_with;
use lakeq::models::{artifacts, docs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Arguments of `lakeq docs`.
#[derive(Debug, clap::Args)]
pub struct DocsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DocsCommand,
}

/// `lakeq docs` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DocsCommand {
    /// Write target/catalog.json (the built relations and their columns), target/manifest.json
    /// and target/index.html, a self-contained documentation page (dbt's `docs generate`).
    Generate(super::models::ProjectArgs),
    /// Serve the project's target/ folder over HTTP (dbt's `docs serve`); Ctrl-C stops it.
    Serve(ServeArgs),
}

/// Arguments of `lakeq docs serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Project folder (its `target/` is served).
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
}

/// Run `lakeq docs ...`.
pub async fn run(args: DocsArgs) -> Result<()> {
    match args.command {
        DocsCommand::Generate(args) => generate(args).await,
        DocsCommand::Serve(args) => serve(args).await,
    }
}

async fn generate(args: super::models::ProjectArgs) -> Result<()> {
    let mut project = args.load()?;
    let session =
        Arc::new(open_session_with(&project, &super::run_session_options(&project.config)?).await?);
    project.set_database(
        Arc::new(SessionDatabase::new(Arc::clone(&session))),
        "compile",
    );
    let manifest = artifacts::manifest(&project);
    let catalog = docs::catalog(&project, &session).await?;
    let page = docs::index_html(&project.config.project.name, &manifest, &catalog)?;
    let count = |key: &str| {
        catalog
            .get(key)
            .and_then(|v| v.as_object())
            .map_or(0, |n| n.len())
    };
    let built = count("nodes") + count("sources");
    artifacts::write(&project, "manifest.json", &manifest)?;
    let catalog_path = artifacts::write(&project, "catalog.json", &catalog)?;
    let index = artifacts::target_dir(&project).join("index.html");
    std::fs::write(&index, page)?;
    println!(
        "wrote {} ({built} relations found in the lakes), manifest.json and {}",
        catalog_path.display(),
        index.display()
    );
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<()> {
    let dir = args.project.join("target");
    if !dir.join("index.html").is_file() {
        return Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "{} has no index.html: run `lakeq docs generate` first",
                dir.display()
            ),
        )));
    }
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on {}:{}: {e}", args.host, args.port),
            )
        })?;
    let addr = listener.local_addr()?;
    println!(
        "Serving {} at http://{addr}/ (Ctrl-C to stop)",
        dir.display()
    );
    use std::io::Write;
    std::io::stdout().flush()?;
    let dir = Arc::new(dir);
    loop {
        let (stream, _) = listener.accept().await?;
        let dir = Arc::clone(&dir);
        tokio::spawn(async move {
            let _ = answer(stream, &dir).await;
        });
    }
}

/// Answer one HTTP/1.x request on `stream` with a file of `dir`, then close.
async fn answer(mut stream: tokio::net::TcpStream, dir: &Path) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or("/"),
    );
    let (status, content_type, body) = if method != "GET" && method != "HEAD" {
        (
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n".to_vec(),
        )
    } else {
        match file_for(dir, target) {
            Some(path) => match tokio::fs::read(&path).await {
                Ok(bytes) => ("200 OK", content_type(&path), bytes),
                Err(_) => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
            },
            None => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
        }
    };
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(&body).await?;
    }
    stream.shutdown().await
}

/// The file of `dir` a request target names (`/` is `index.html`); `None` for
/// anything outside `dir` (`..`, absolute or backslash paths).
fn file_for(dir: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() {
        "index.html"
    } else {
        relative
    };
    if relative.contains('\\')
        || relative.contains('%')
        || relative
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return None;
    }
    let file = dir.join(relative);
    file.is_file().then_some(file)
}

/// The `Content-Type` of a served file.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_inside_the_target_folder_are_served() {
        let dir = std::env::temp_dir().join(format!("lakeq-docs-serve-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).expect("dir");
        std::fs::write(dir.join("index.html"), "x").expect("file");
        std::fs::write(dir.join("sub/a.json"), "{}").expect("file");
        assert_eq!(file_for(&dir, "/"), Some(dir.join("index.html")));
        assert_eq!(file_for(&dir, "/?x=1"), Some(dir.join("index.html")));
        assert_eq!(file_for(&dir, "/sub/a.json"), Some(dir.join("sub/a.json")));
        for bad in [
            "/../etc/passwd",
            "/sub/../index.html",
            "/%2e%2e/x",
            "//etc/passwd",
            "/sub",
            "/nope.json",
            "/a\\b",
        ] {
            assert_eq!(file_for(&dir, bad), None, "{bad}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
