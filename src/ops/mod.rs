//! Operating a lake over time: options and maintenance, as DuckLake's own
//! functions do them (`set_option`, `ducklake_expire_snapshots`, ...).
//!
//! Each operation leaves a lake DuckDB opens with the same answers; those that
//! change the catalog's contents commit as one transaction.

pub mod add_files;
pub mod cleanup;
pub mod expire;
pub mod flush;
pub mod merge;
pub mod options;
pub mod rewrite;
