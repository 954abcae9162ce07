#!/usr/bin/env bash
# Whole-command benchmark of `lakeq ingest` against DuckDB 1.5.5, one run of each, on this machine:
#
#   1. `lakeq generate --batches $BATCHES` into a fresh landing zone (wall time; target < 2 s for 10);
#   2. `lakeq ingest` of that landing zone into a fresh embedded lake (SQLite catalog, local Parquet),
#      wall time of the process;
#   3. DuckDB (tests/oracle/bench_duckdb.py ingest): connect, LOAD the extensions from the venv, ATTACH a
#      fresh SQLite-catalog DuckLake, then in one transaction CREATE TABLE + INSERT INTO lake.saas.<t>
#      SELECT * FROM read_parquet('<landing>/<t>/*.parquet') for the four tables, COMMIT;
#   4. the answer check: DuckDB counts the rows of both lakes, per table; they must equal the landing rows;
#   5. peak memory (max RSS, GNU time) of `lakeq ingest` of $MEM_BATCHES batches (target < 1 GiB).
#
# lakeq does more work than DuckDB here: it also writes the lineage columns (_lakeq_load_id, _lakeq_id,
# _lakeq_source_file), one raw data file per landing file, and the _lakeq_files/_lakeq_loads bookkeeping.
#
# Usage: benches/ingest_vs_duckdb.sh            (BATCHES=10 MEM_BATCHES=100 by default)
#        BATCHES=20 MEM_BATCHES=0 benches/ingest_vs_duckdb.sh   (MEM_BATCHES=0 skips step 5)
#        BUILD=0 benches/ingest_vs_duckdb.sh      (use target/release/lakeq as it is)
# Scratch data goes to target/bench-ingest/ (removed at the start of each run, kept for inspection).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BATCHES="${BATCHES:-10}"
MEM_BATCHES="${MEM_BATCHES:-100}"
TABLES=(users events invoices support_tickets)

# shellcheck source=../scripts/test-env.sh
source scripts/test-env.sh
PY="$LAKEQ_DUCKDB_PYTHON"
DUCK=(tests/oracle/bench_duckdb.py)
[[ -x /usr/bin/time ]] || { echo "GNU time (/usr/bin/time) is missing: apt-get install time" >&2; exit 1; }

if [[ "${BUILD:-1}" != 0 ]]; then
    echo "building lakeq (release) ..." >&2
    cargo build --release --quiet --bin lakeq
fi
LAKEQ="$ROOT/target/release/lakeq"

WORK="$ROOT/target/bench-ingest"
rm -rf "$WORK"
mkdir -p "$WORK"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# json FILE EXPR: evaluate a Python expression over the JSON object `j` read from FILE
json() { "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

# --- 1. generate -------------------------------------------------------------------------------
LANDING="$WORK/landing"
t0=$(now)
"$LAKEQ" generate --batches "$BATCHES" --landing "$LANDING" --json >"$WORK/generate.json"
t1=$(now)
GEN_S=$(elapsed "$t0" "$t1")
ROWS=$(json "$WORK/generate.json" "sum(j['rows'].values())")

# --- 2. lakeq ingest ----------------------------------------------------------------------------
mkdir -p "$WORK/lakeq"
t0=$(now)
"$LAKEQ" ingest --project "$WORK/lakeq" --landing "$LANDING" --json >"$WORK/ingest.json"
t1=$(now)
LAKEQ_S=$(elapsed "$t0" "$t1")
LAKEQ_ROWS=$(json "$WORK/ingest.json" "sum(j['rows'].values())")

# --- 3. DuckDB ------------------------------------------------------------------------------------
mkdir -p "$WORK/duckdb"
table_args=()
for t in "${TABLES[@]}"; do table_args+=(--table "$t"); done
"$PY" "${DUCK[@]}" ingest --ext-dir "$LAKEQ_DUCKDB_EXT_DIR" \
    --attach "ATTACH 'ducklake:sqlite:$WORK/duckdb/meta.sqlite' AS lake (DATA_PATH '$WORK/duckdb/data/')" \
    --landing "$LANDING" "${table_args[@]}" >"$WORK/duckdb.json"
DUCK_S=$(json "$WORK/duckdb.json" "'%.3f' % j['seconds']")
DUCK_TX_S=$(json "$WORK/duckdb.json" "'%.3f' % j['insert_seconds']")

# --- 4. check the answers: both lakes hold every landing row ------------------------------------
count_args=()
for t in "${TABLES[@]}"; do count_args+=(--query "$t" "SELECT count(*) FROM lake.saas.$t"); done
for side in lakeq duckdb; do
    case $side in
        lakeq) attach="ATTACH 'ducklake:sqlite:$WORK/lakeq/lake/raw.sqlite' AS lake (READ_ONLY)" ;;
        duckdb) attach="ATTACH 'ducklake:sqlite:$WORK/duckdb/meta.sqlite' AS lake (READ_ONLY)" ;;
    esac
    "$PY" "${DUCK[@]}" run --ext-dir "$LAKEQ_DUCKDB_EXT_DIR" --attach "$attach" --runs 0 "${count_args[@]}" \
        >"$WORK/count-$side.json"
done
"$PY" - "$WORK" <<'EOF'
import json, sys
work = sys.argv[1]
want = json.load(open(f"{work}/generate.json"))["rows"]
want = {"users": want["users"], "events": want["events"], "invoices": want["invoices"],
        "support_tickets": want["support_tickets"]}
for side in ("lakeq", "duckdb"):
    got = {q["label"]: int(q["rows"][0][0]) for q in json.load(open(f"{work}/count-{side}.json"))["queries"]}
    if got != want:
        sys.exit(f"CHECK FAILED: DuckDB counts {got} in the {side} lake, the landing zone has {want}")
print(f"CHECK both lakes hold the landing rows (DuckDB counts them): {want}")
EOF

# --- 5. peak memory of a bigger ingest -------------------------------------------------------------
if [[ "$MEM_BATCHES" -gt 0 ]]; then
    MEM_LANDING="$WORK/landing-$MEM_BATCHES"
    "$LAKEQ" generate --batches "$MEM_BATCHES" --landing "$MEM_LANDING" --json >"$WORK/generate-mem.json"
    MEM_ROWS=$(json "$WORK/generate-mem.json" "sum(j['rows'].values())")
    mkdir -p "$WORK/lakeq-mem"
    t0=$(now)
    /usr/bin/time -f "%M" -o "$WORK/ingest-mem.rss" \
        "$LAKEQ" ingest --project "$WORK/lakeq-mem" --landing "$MEM_LANDING" --json >"$WORK/ingest-mem.json"
    t1=$(now)
    MEM_S=$(elapsed "$t0" "$t1")
    RSS_KB=$(tail -n 1 "$WORK/ingest-mem.rss")
fi

# --- report ----------------------------------------------------------------------------------------
rate() { awk -v r="$1" -v s="$2" 'BEGIN { printf "%.2f", r / s / 1e6 }'; }
echo
echo "==== ingest vs DuckDB 1.5.5 ($BATCHES batches, $ROWS rows, $(nproc) cores) ===="
echo "GENERATE $BATCHES batches: $GEN_S s (target < 2 s)"
echo "INGEST lakeq  = $LAKEQ_S s, $(rate "$LAKEQ_ROWS" "$LAKEQ_S") M rows/s (whole process)"
echo "INGEST duckdb = $DUCK_S s, $(rate "$ROWS" "$DUCK_S") M rows/s (connect..commit; transaction alone $DUCK_TX_S s)"
echo "RATIO ingest lakeq/duckdb time = $(awk -v a="$LAKEQ_S" -v b="$DUCK_S" 'BEGIN { printf "%.2f", a / b }')"
if [[ "$MEM_BATCHES" -gt 0 ]]; then
    echo "PEAK RSS lakeq ingest of $MEM_BATCHES batches ($MEM_ROWS rows) = $(awk -v k="$RSS_KB" 'BEGIN { printf "%.0f", k / 1024 }') MiB (target < 1024 MiB); $MEM_S s, $(rate "$MEM_ROWS" "$MEM_S") M rows/s"
fi
