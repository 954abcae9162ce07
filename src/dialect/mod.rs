//! DuckDB's SQL dialect on DataFusion: the layer that makes the same SQL give the
//! same answer in lakeq and in DuckDB, or an error that says why not.
//!
//! A statement goes: [`parser`] (sqlparser's DuckDB dialect plus DuckLake's
//! `AT (...)`) → [`rewrite`] (DuckDB's name resolution, FROM-first, `ORDER BY
//! ALL`, time travel, variables) → [`plan`] (DataFusion's planner, with
//! [`semantics`] deciding DuckDB's arithmetic). [`render`] prints values as
//! DuckDB does.

pub mod copy;
pub mod dml;
pub mod files;
pub mod functions;
pub mod keywords;
pub mod lake_functions;
pub mod lake_statements;
pub mod macros;
pub mod naming;
pub mod parser;
pub mod plan;
pub mod render;
pub mod rewrite;
pub mod semantics;
pub mod statements;
pub mod sugar;
