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
//!   cli       `lakeq sql` and friends: a thin shell over the library
//! ```
//!
//! Embedding:
//!
//! ```no_run
//! # async fn demo() -> lakeq::Result<()> {
//! let session = lakeq::Session::new();
//! session
//!     .sql("ATTACH 'ducklake:sqlite:/tmp/meta.sqlite' AS lake (DATA_PATH '/tmp/data/')")
//!     .await?;
//! let batches = session.sql("SELECT count(*) FROM lake.main.t").await?;
//! # let _ = batches; Ok(()) }
//! ```
#![warn(missing_docs)]
// No panic reachable from input: slicing, indexing and unwrap are denied outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::string_slice, clippy::indexing_slicing, clippy::unwrap_used)
)]

pub mod catalog;
pub mod cli;
pub mod commit;
pub mod config;
pub mod dialect;
pub mod error;
pub mod generate;
pub mod ingest;
pub mod lake;
pub mod models;
pub mod ops;
pub mod provider;
pub mod spec;
pub mod storage;
pub mod store;
pub mod write;

pub use error::{Error, Result};
pub use lake::{Lake, LakeOptions};
pub use provider::session::Session;
