#!/usr/bin/env bash
# Run lakeq's whole test suite: environment (PostgreSQL, DuckDB oracle), format, lints, all tests.
# Exits non-zero on the first failure. Extra arguments are passed to `cargo test --all-targets`
# (e.g. `scripts/test.sh interop` to run only matching tests).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each section prints how long the run has taken so far: CI's time is spent where the jumps are.
section() { printf '\n==== %s ==== [%dm%02ds]\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }

section "test environment (scripts/test-env.sh)"
source scripts/test-env.sh
echo "LAKEQ_DUCKDB_PYTHON=$LAKEQ_DUCKDB_PYTHON"
echo "LAKEQ_DUCKDB_EXT_DIR=$LAKEQ_DUCKDB_EXT_DIR"
echo "LAKEQ_PG_URL=$LAKEQ_PG_URL"

section "cargo fmt --check"
cargo fmt --check

section "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

section "cargo doc --no-deps (no warnings: broken or private intra-doc links fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib

section "cargo build --examples (tests/it/examples.rs runs them as a user does)"
# `cargo test --all-targets` compiles examples as test harnesses under target/*/deps;
# the plain binaries the example tests run live in target/*/examples.
cargo build --examples

section "cargo test --all-targets"
cargo test --all-targets "$@"

section "cargo test --doc"
cargo test --doc

section "all checks passed"
