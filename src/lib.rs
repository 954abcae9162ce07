//! # lakeq
//!
//! A DuckLake lakehouse in one Rust library and binary: a from-scratch DuckLake
//! catalog (metadata in SQLite or PostgreSQL, data as Parquet on local disk or S3)
//! exposed to Apache DataFusion.
//!
//! ```text
//!   spec      DuckLake as types: type names, value/stat encodings, change sets, paths
//!    │
//!   store     MetadataStore: one trait, SQLite + PostgreSQL backends (rows in, rows out)
//!    │
//!   catalog   CatalogSnapshot: the catalog pinned at one snapshot, loaded in one go
//!    │
//!   provider  DataFusion CatalogProvider / SchemaProvider / TableProvider + ATTACH/USE/AT
//!    │
//!   (cli)     the `lakeq` binary's commands (`src/cli`, not part of the library):
//!             a thin client of this public API
//! ```
//!
//! Embedding: attach a lake (here a new one in a temporary folder), write,
//! stream a query, and travel back in time.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! use futures::StreamExt;
//!
//! let dir = std::env::temp_dir().join(format!("lakeq-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let session = lakeq::Session::new();
//! session
//!     .sql(&format!(
//!         "ATTACH 'ducklake:sqlite:{0}/meta.sqlite' AS lake (DATA_PATH '{0}/data/')",
//!         dir.display()
//!     ))
//!     .await?;
//! session.sql("CREATE TABLE lake.main.t AS SELECT range AS i FROM range(100000)").await?;
//! session.sql("DELETE FROM lake.main.t WHERE i % 2 = 0").await?;
//!
//! // A query as a DataFusion DataFrame: streamed batch by batch, never all in memory.
//! let mut stream = session.query("SELECT i FROM lake.main.t").await?.execute_stream().await?;
//! let mut rows = 0;
//! while let Some(batch) = stream.next().await {
//!     rows += batch?.num_rows();
//! }
//! assert_eq!(rows, 50000);
//!
//! // Every write is a snapshot; earlier ones stay readable.
//! let before = session.sql("SELECT count(*) FROM lake.main.t AT (VERSION => 1)").await?;
//! let count = datafusion::arrow::array::cast::as_primitive_array::<
//!     datafusion::arrow::datatypes::Int64Type,
//! >(before[0].column(0));
//! assert_eq!(count.value(0), 100000);
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```
#![deny(missing_docs)]
// No panic reachable from input: slicing, indexing and unwrap are denied outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::string_slice, clippy::indexing_slicing, clippy::unwrap_used)
)]

pub mod catalog;
pub mod commit;
pub mod config;
pub mod dialect;
pub mod distributed;
pub mod error;
pub mod generate;
pub mod ingest;
pub mod lake;
pub mod models;
pub mod ops;
pub mod provider;
pub mod session;
pub mod spec;
pub mod storage;
pub mod store;
pub mod write;

pub use error::{Error, Result};
pub use lake::{Lake, LakeOptions, SessionSettings};
pub use session::{Session, SessionOptions};

/// The README's Rust snippets, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
