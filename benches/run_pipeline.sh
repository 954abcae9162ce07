#!/usr/bin/env bash
# Whole-command benchmark of `lakeq run N` (issue: SQL models and `lakeq run`), on this machine:
#
#   1. for each N (default: 10 100): `lakeq run N` in a fresh project folder with the bundled models on the
#      embedded default (SQLite catalogs, local Parquet): wall time per step (generate, ingest, transform =
#      models + data tests) as lakeq prints them, total wall time and peak memory (max RSS, GNU time);
#   2. the transform step against DuckDB 1.5.5 on the same raw lake: `lakeq transform` (models only, whole
#      process) vs DuckDB building the same models from lakeq's compiled SQL (target/manifest.json) into a
#      fresh DuckLake, timed from the first ATTACH to the last model (benches/models_duckdb.py), as a ratio;
#      the mart row counts of both must be equal.
#
# Usage: benches/run_pipeline.sh [N ...]      Scratch data: target/bench-run/ (kept for inspection).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(10 100)

# shellcheck source=../scripts/test-env.sh
source scripts/test-env.sh
PY="$LAKEQ_DUCKDB_PYTHON"
[[ -x /usr/bin/time ]] || { echo "GNU time (/usr/bin/time) is missing: apt-get install time" >&2; exit 1; }
echo "building lakeq (release) ..." >&2
cargo build --release --quiet --bin lakeq
WORK="$ROOT/target/bench-run"
rm -rf "$WORK"
mkdir -p "$WORK"
# A private copy of the binary, so a concurrent build cannot swap it mid-benchmark.
cp "${CARGO_TARGET_DIR:-$ROOT/target}/release/lakeq" "$WORK/lakeq"
LAKEQ="$WORK/lakeq"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

for N in "${SIZES[@]}"; do
    dir="$WORK/run-$N"
    mkdir -p "$dir/tests"
    cp -r models "$dir/models"
    cp tests/*.sql "$dir/tests/"
    (
        cd "$dir"
        t0=$(now)
        /usr/bin/time -v "$LAKEQ" run "$N" >run.out 2>time.out || { cat run.out time.out >&2; exit 1; }
        t1=$(now)
        rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' time.out)
        echo "== lakeq run $N"
        grep -E '^(generate|ingest|transform|lakeq run)' run.out | sed 's/^/   /'
        echo "   wall $(elapsed "$t0" "$t1") s, peak RSS $((rss_kb / 1024)) MiB"

        # transform alone, lakeq vs DuckDB, on the same raw lake
        t0=$(now)
        "$LAKEQ" transform >transform.out 2>&1 || { cat transform.out >&2; exit 1; }
        t1=$(now)
        lakeq_s=$(elapsed "$t0" "$t1")
        mkdir -p duck
        "$PY" "$ROOT/benches/models_duckdb.py" --ext-dir "$LAKEQ_DUCKDB_EXT_DIR" \
            --raw "ATTACH 'ducklake:sqlite:$dir/lake/raw.sqlite' AS raw (READ_ONLY)" \
            --analytics "ATTACH 'ducklake:sqlite:$dir/duck/dev_analytics.sqlite' AS dev_analytics (DATA_PATH '$dir/duck/data/')" \
            --manifest target/manifest.json >duck.json
        duck_s=$("$PY" -c "import json; print('%.3f' % json.load(open('duck.json'))['seconds'])")
        ours=$("$LAKEQ" sql --format csv -c "SELECT (SELECT count(*) FROM dev_analytics.marts.dim_users) || '|' || (SELECT count(*) FROM dev_analytics.marts.fct_daily_active_users) || '|' || (SELECT count(*) FROM dev_analytics.marts.fct_revenue) AS n" | tail -1)
        theirs=$("$PY" -c "import json; r=json.load(open('duck.json'))['rows']; print('%d|%d|%d' % (r['dim_users'], r['fct_daily_active_users'], r['fct_revenue']))")
        [[ "$ours" == "$theirs" ]] || { echo "mart row counts differ: lakeq $ours, DuckDB $theirs" >&2; exit 1; }
        echo "   transform (9 models): lakeq $lakeq_s s (whole process), DuckDB $duck_s s (attach + models)," \
             "ratio lakeq/duckdb $(awk -v a="$lakeq_s" -v b="$duck_s" 'BEGIN { printf "%.2f", a / b }'); mart rows $ours"
    )
done
