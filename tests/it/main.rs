//! The one integration-test binary. Each module is an area of behaviour; all of
//! them use real components: SQLite files, the PostgreSQL server on
//! 127.0.0.1:5432 and DuckDB 1.5.5 as the oracle (see `common`).

mod add_files;
mod common;
mod concurrency;
mod crash_matrix;
mod dbt;
mod dialect;
mod distributed;
mod errors;
mod examples;
mod faults;
mod generate;
mod ingest;
mod init;
mod inlining;
mod interop_lockstep;
mod interop_read;
mod interop_write;
mod maintenance;
mod maintenance_concurrency;
mod models;
mod pg_faults;
mod planning;
mod properties;
mod s3;
mod secrets;
mod string_views;
mod transactions;
mod txn_faults;
