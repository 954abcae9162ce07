#!/usr/bin/env bash
# Whole-command benchmark of lake maintenance against DuckDB 1.5.5 (see benches/maintenance_vs_duckdb.py):
# N small appends, a scan of the N-file table, ducklake_merge_adjacent_files, the scan again, each by both
# engines on their own lake, with the answers cross-checked (each engine reads the other's merged lake).
#
# Usage: benches/maintenance_vs_duckdb.sh                 (APPENDS=500 ROWS=10)
#        APPENDS=1000 benches/maintenance_vs_duckdb.sh
#        BUILD=0 benches/maintenance_vs_duckdb.sh          (use target/release/lakeq as it is)
#        INLINING=1 benches/maintenance_vs_duckdb.sh       (appends inlined by both engines, then flushed)
# Scratch data goes to target/bench-maintenance/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=../scripts/test-env.sh
source scripts/test-env.sh
if [[ "${BUILD:-1}" != 0 ]]; then
    echo "building lakeq (release) ..." >&2
    cargo build --release --quiet --bin lakeq
fi
exec "$LAKEQ_DUCKDB_PYTHON" benches/maintenance_vs_duckdb.py "$ROOT/target/release/lakeq" "$ROOT/target/bench-maintenance"
