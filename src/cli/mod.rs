//! The `lakeq` command line: a thin shell over the library.
