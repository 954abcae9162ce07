//! The one error type of lakeq.
//!
//! Every variant names the object it is about (lake, schema, table, column, file)
//! and, where there is one, what the user can do about it. Backend errors
//! (sqlx, object_store, parquet) are wrapped, never shown raw without context.

use datafusion::error::DataFusionError;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in lakeq.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ATTACH string or lake URL could not be understood.
    #[error("invalid lake location '{location}': {reason}")]
    InvalidLocation {
        /// The location as given by the user.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database exists but holds no DuckLake catalog.
    #[error(
        "'{location}' is not a DuckLake catalog (no ducklake_metadata table{schema_hint}); \
         attach an existing DuckLake or a new, empty database to create one"
    )]
    NotADuckLakeCatalog {
        /// Where we looked.
        location: String,
        /// Extra hint naming the metadata schema.
        schema_hint: String,
    },
    /// The catalog has a format version lakeq cannot read.
    #[error(
        "DuckLake catalog '{location}' has format version '{found}', lakeq supports '{supported}'; {}",
        version_remedy(found)
    )]
    UnsupportedVersion {
        /// Where the catalog is.
        location: String,
        /// Version found in `ducklake_metadata`.
        found: String,
        /// Version lakeq supports.
        supported: &'static str,
    },
    /// The DATA_PATH given at ATTACH differs from the one stored in the catalog.
    #[error(
        "DATA_PATH '{given}' does not match the data path '{stored}' stored in the catalog '{location}'; \
         omit DATA_PATH to use the stored one"
    )]
    DataPathMismatch {
        /// Catalog location.
        location: String,
        /// DATA_PATH the user gave.
        given: String,
        /// `data_path` in `ducklake_metadata`.
        stored: String,
    },
    /// A named object does not exist.
    #[error("{kind} '{name}' does not exist{hint}")]
    NotFound {
        /// "lake", "schema", "table", "column", "snapshot", ...
        kind: &'static str,
        /// Qualified name of the object.
        name: String,
        /// Extra text, e.g. the list of what does exist.
        hint: String,
    },
    /// A named object exists already.
    #[error("{kind} '{name}' already exists")]
    AlreadyExists {
        /// "lake", "schema", "table", ...
        kind: &'static str,
        /// Qualified name of the object.
        name: String,
    },
    /// The catalog holds something lakeq cannot interpret.
    #[error("corrupt or unsupported DuckLake catalog: {0}")]
    Corrupt(String),
    /// A feature of the format or of SQL lakeq does not implement (yet).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The data breaks a constraint of the table (NOT NULL); nothing was written.
    #[error("constraint error: {0}")]
    Constraint(String),
    /// Another writer committed a conflicting change.
    #[error("commit conflict: {message}")]
    CommitConflict {
        /// What conflicted.
        message: String,
        /// Whether retrying from the latest snapshot may succeed.
        retryable: bool,
    },
    /// A transaction statement out of place (`COMMIT` with no transaction, a
    /// statement after a failed one inside a transaction, ...).
    #[error("transaction error: {0}")]
    Transaction(String),
    /// A data or delete file could not be read or written.
    #[error("data file '{path}': {source}")]
    DataFile {
        /// Full path or URL of the file.
        path: String,
        /// Underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The metadata database failed.
    #[error("metadata catalog '{location}': {source}")]
    Catalog {
        /// Catalog location (without secrets).
        location: String,
        /// Underlying database error.
        #[source]
        source: sqlx::Error,
    },
    /// Another process holds the SQLite catalog's lock longer than the busy timeout.
    #[error(
        "the SQLite catalog '{location}' is locked by another process (waited {waited_ms} ms): \
         typically a DuckDB session holding a query result it has not read to the end, or a \
         long transaction. Close that session or read its result, raise \
         LAKEQ_SQLITE_BUSY_TIMEOUT_MS, or use a PostgreSQL catalog for several engines at once"
    )]
    CatalogBusy {
        /// Catalog location.
        location: String,
        /// How long lakeq waited.
        waited_ms: u64,
    },
    /// The model project is invalid (layout, YAML, Jinja, config, cycle, selection).
    #[error(transparent)]
    Models(#[from] ModelError),
    /// A model or data test failed to run; the text names it and its file.
    #[error("{0}")]
    NodeFailed(String),
    /// Object storage failed.
    #[error(transparent)]
    ObjectStore(#[from] object_store::Error),
    /// Query planning or execution failed.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// Local I/O failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Shorthand for [`Error::NotFound`] without hint.
    pub fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            name: name.into(),
            hint: String::new(),
        }
    }
}

impl From<datafusion::arrow::error::ArrowError> for Error {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        Error::DataFusion(e.into())
    }
}

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        match e {
            Error::DataFusion(inner) => inner,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

/// Errors of the model layer (`crate::models`); each names the model, file or
/// test it is about. Defined here, with the base error type that wraps it, so
/// that no layer below the models depends on them.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The project layout or a YAML file is wrong.
    #[error("{0}")]
    Project(String),
    /// A template failed to render.
    #[error("{path}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Jinja {
        /// The model or test file.
        path: String,
        /// Line of the template, when known.
        line: Option<usize>,
        /// What went wrong.
        message: String,
    },
    /// A model's configuration is invalid.
    #[error("model '{model}' ({path}): {message}")]
    Config {
        /// Model name.
        model: String,
        /// Its file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The models reference each other in a cycle.
    #[error("the models form a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// A selector matched nothing or could not be parsed.
    #[error("{0}")]
    Selection(String),
}

/// What to do about a catalog of another DuckLake format version: migrate an
/// older one with DuckDB 1.5.5; a newer one (DuckLake 1.1, DuckDB 2.0) is
/// refused whole rather than misread.
fn version_remedy(found: &str) -> &'static str {
    let parts: Vec<u32> = found.split('.').map_while(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [major, minor, ..] if (*major, *minor) > (1, 0) => {
            "it was written by a newer DuckLake (DuckDB 2.0 writes 1.1 after its opt-in migration); \
             lakeq reads and writes 1.0 and refuses newer catalogs rather than misread them: \
             use a lake that DuckDB 1.5 wrote, or keep this one on 1.0 (do not migrate it)"
        }
        [major, ..] if *major > 1 => {
            "it was written by a newer DuckLake; lakeq reads and writes 1.0 and refuses newer \
             catalogs rather than misread them"
        }
        _ => "migrate it with DuckDB 1.5.5 (ATTACH ... (AUTOMATIC_MIGRATION true))",
    }
}
