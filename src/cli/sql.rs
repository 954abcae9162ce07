//! `lakeq sql`: run `-c` SQL, a `-f` file, or an interactive prompt.

use std::io::{BufRead, IsTerminal, Write};

use super::SqlArgs;
use super::format::write_batches;
use lakeq::error::Result;
use lakeq::lake::LakeOptions;
use lakeq::session::Session;

/// Attach the embedded default lakes that exist under `dir`.
pub async fn attach_default_lakes(session: &Session, dir: &std::path::Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            (p.extension().is_some_and(|x| x == "sqlite"))
                .then(|| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .flatten()
        })
        .collect();
    names.sort();
    for name in names {
        if session.lake(&name).is_ok() {
            continue; // configured by the project, attached already
        }
        let meta = dir.join(format!("{name}.sqlite"));
        let options = LakeOptions {
            create_if_not_exists: Some(false),
            ..LakeOptions::default()
        };
        session
            .attach_for_user(
                &name,
                &format!("ducklake:sqlite:{}", meta.display()),
                options,
            )
            .await?;
    }
    Ok(())
}

/// Attach the lakes the project in `dir` configures (`lakeq.toml` or dbt's
/// `profiles.yml`). A lake that does not exist yet is left out with a note.
pub async fn attach_project_lakes(session: &Session, dir: &std::path::Path) -> Result<()> {
    let config = lakeq::config::Config::load(dir)?;
    for (name, lake) in &config.lakes {
        if let Some(file) = lake.catalog.strip_prefix("ducklake:sqlite:")
            && !std::path::Path::new(file).exists()
        {
            continue; // not created yet (and attaching must not create it)
        }
        let options = LakeOptions {
            create_if_not_exists: Some(false),
            ..lake.options()
        };
        if let Err(e) = session.attach_for_user(name, &lake.catalog, options).await {
            eprintln!("note: lake '{name}' is not attached: {e}");
        }
    }
    Ok(())
}

/// Run `lakeq sql`.
pub async fn run(args: SqlArgs) -> Result<()> {
    let config = lakeq::config::Config::load(&args.project)?;
    let cluster = super::cluster_options(&config, &args.workers, args.bytes_per_task)?;
    let workers = cluster.workers.join(", ");
    let session = Session::with_options(&super::session_options().with_cluster(cluster));
    attach_project_lakes(&session, &args.project).await?;
    attach_default_lakes(&session, &args.project.join(&args.lake_dir)).await?;
    let script = match (&args.command, &args.file) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(f)) => Some(std::fs::read_to_string(f).map_err(|e| {
            lakeq::error::Error::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", f.display()),
            ))
        })?),
        (None, None) => None,
    };
    let stdout = std::io::stdout();
    match script {
        Some(script) => {
            for stmt in lakeq::dialect::lake_statements::split_statements(&script)? {
                let batches = session.sql(&stmt).await.inspect_err(|_| {
                    if !workers.is_empty() {
                        eprintln!(
                            "note: the statement ran on the workers {workers} (once more if a \
                             worker stopped answering and another still answered); nothing of it \
                             was committed"
                        );
                    }
                })?;
                write_batches(&mut stdout.lock(), &batches, args.format)?;
            }
            Ok(())
        }
        None => repl(&session, args.format).await,
    }
}

/// A minimal prompt: statements end with `;`; errors are printed and the prompt goes on.
async fn repl(session: &Session, format: super::OutputFormat) -> Result<()> {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut buffer = String::new();
    let prompt = |continuation: bool| {
        if interactive {
            print!("{}", if continuation { "   ...> " } else { "lakeq> " });
            let _ = std::io::stdout().flush();
        }
    };
    prompt(false);
    let mut failed = false;
    for line in stdin.lock().lines() {
        let line = line?;
        buffer.push_str(&line);
        buffer.push('\n');
        if !line.trim_end().ends_with(';') {
            prompt(!buffer.trim().is_empty());
            continue;
        }
        for stmt in lakeq::dialect::lake_statements::split_statements(&buffer)? {
            match session.sql(&stmt).await {
                Ok(batches) => write_batches(&mut std::io::stdout().lock(), &batches, format)?,
                Err(e) => {
                    eprintln!("Error: {e}");
                    failed = true;
                }
            }
        }
        buffer.clear();
        prompt(false);
    }
    if !buffer.trim().is_empty() {
        let batches = session.sql(buffer.trim()).await?;
        write_batches(&mut std::io::stdout().lock(), &batches, format)?;
    }
    if failed && !interactive {
        return Err(lakeq::error::Error::Unsupported(
            "a statement failed (see above)".into(),
        ));
    }
    Ok(())
}
