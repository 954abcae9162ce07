//! DataFusion's catalog, schema and table providers over a
//! [`crate::catalog::CatalogSnapshot`]: a pinned snapshot's tables as scans
//! (file pruning by catalog statistics, column mapping, delete files, inlined
//! rows, row ids) and its views. The statements that change a lake, and the
//! [`crate::session::Session`] that runs them, sit above this layer.

pub mod adapter;
pub mod catalog;
pub mod concat;
pub mod defaults;
pub mod deletes;
pub mod inlined;
pub mod partition;
pub mod pruning;
pub mod statistics;
pub mod table;
pub mod types;
