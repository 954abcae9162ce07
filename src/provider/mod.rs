//! DataFusion integration: catalog, schema and table providers over a
//! [`crate::catalog::CatalogSnapshot`], plus the [`session::Session`] that
//! understands DuckDB's `ATTACH`, `USE` and `AT (VERSION => n)`.

pub mod adapter;
pub mod catalog;
pub mod changes;
pub mod concat;
pub mod defaults;
pub mod deletes;
pub mod functions;
pub mod inlined;
pub mod ops;
pub mod partition;
pub mod pruning;
pub mod session;
pub mod sql;
pub mod statistics;
pub mod table;
pub mod transaction;
pub mod types;
pub mod write;
