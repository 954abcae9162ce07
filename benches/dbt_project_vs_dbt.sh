#!/usr/bin/env bash
# Whole-command benchmark of a generated dbt project (issue: existing dbt projects run unchanged):
# `lakeq build` against dbt-core + dbt-duckdb (`dbt seed && dbt build`) on the same project folder, each
# writing a fresh DuckLake (SQLite catalog, local Parquet), as a ratio in one run; then the two lakes are
# compared table by table in DuckDB (tests/dbt/compare_lakes.py: same relations, columns and rows).
#
# The project: one seed (2,000 rows) and MODELS models (default 100) in a DAG: model i refs model i-1 and,
# every third, model i/2 too (a join); every tenth a table, the rest views; a `not_null` and a `unique`
# test on every model (2 x MODELS tests). Per-model overhead = wall time / MODELS.
#
# Usage: benches/dbt_project_vs_dbt.sh [MODELS] [RUNS]   (defaults 100 and 3)
#   LAKEQ_BIN=target/debug/lakeq to time a binary already built (default: a release build).
# Scratch: target/bench-dbt/ (kept for inspection).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODELS="${1:-100}"
RUNS="${2:-3}"
# shellcheck source=../scripts/test-env.sh
source scripts/test-env.sh
if [[ -z "${LAKEQ_BIN:-}" ]]; then
    echo "building lakeq (release) ..." >&2
    cargo build --release --quiet --bin lakeq
    LAKEQ_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/lakeq"
fi
WORK="$ROOT/target/bench-dbt"
rm -rf "$WORK"
mkdir -p "$WORK"
cp "$LAKEQ_BIN" "$WORK/lakeq"

# --- the project ------------------------------------------------------------------------------------------
PROJECT="$WORK/project"
"$LAKEQ_DUCKDB_PYTHON" - "$PROJECT" "$MODELS" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{root}/models", exist_ok=True)
os.makedirs(f"{root}/seeds", exist_ok=True)
open(f"{root}/dbt_project.yml", "w").write("""name: bench
version: '1.0.0'
config-version: 2
profile: bench
model-paths: ["models"]
seed-paths: ["seeds"]
models:
  bench:
    +materialized: view
""")
open(f"{root}/profiles.yml", "w").write("""bench:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: ":memory:"
      config_options:
        extension_directory: "{{ env_var('DBT_DUCKDB_EXTENSION_DIRECTORY', '.duckdb_extensions') }}"
      attach:
        - path: "ducklake:sqlite:bench.sqlite"
          alias: bench_lake
          options:
            data_path: "bench_data/"
      database: bench_lake
      schema: main
      threads: 4
""")
with open(f"{root}/seeds/base.csv", "w") as f:
    f.write("id,grp,amount\n")
    for i in range(2000):
        f.write(f"{i},{i % 37},{(i * 7919) % 10000}\n")
tests = ["version: 2", "models:"]
for i in range(1, n + 1):
    prev = "{{ ref('base') }}" if i == 1 else f"{{{{ ref('m{i - 1:03}') }}}}"
    config = "{{ config(materialized='table') }}\n" if i % 10 == 0 else ""
    if i % 3 == 0 and i // 2 >= 1:
        other = f"{{{{ ref('m{i // 2:03}') }}}}"
        sql = (f"{config}select a.id, a.grp, a.amount + coalesce(b.amount, 0) % 1000 as amount\n"
               f"from {prev} as a left join {other} as b on a.id = b.id")
    else:
        sql = f"{config}select id, grp, amount + {i} as amount from {prev}"
    open(f"{root}/models/m{i:03}.sql", "w").write(sql + "\n")
    tests += [f"  - name: m{i:03}", "    columns:", "      - name: id",
              "        data_tests: [not_null, unique]"]
open(f"{root}/models/schema.yml", "w").write("\n".join(tests) + "\n")
EOF
cp -r "$PROJECT" "$WORK/with_dbt"
cp -r "$PROJECT" "$WORK/with_lakeq"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
export DBT_DUCKDB_EXTENSION_DIRECTORY="$LAKEQ_DBT_EXT_DIR" DBT_SEND_ANONYMOUS_USAGE_STATS=false

dbt_times=() lakeq_times=()
for run in $(seq 1 "$RUNS"); do
    for tool in dbt lakeq; do
        dir="$WORK/with_$tool"
        rm -rf "$dir/bench.sqlite" "$dir/bench_data" "$dir/target" "$dir/logs"
        start=$(now)
        if [[ $tool == dbt ]]; then
            (cd "$dir" && "$LAKEQ_DBT" seed --profiles-dir . >"$WORK/dbt.log" 2>&1 &&
                "$LAKEQ_DBT" build --profiles-dir . >>"$WORK/dbt.log" 2>&1) ||
                { cat "$WORK/dbt.log"; exit 1; }
            dbt_times+=("$(elapsed "$start" "$(now)")")
        else
            (cd "$dir" && "$WORK/lakeq" build >"$WORK/lakeq.log" 2>&1) || { cat "$WORK/lakeq.log"; exit 1; }
            lakeq_times+=("$(elapsed "$start" "$(now)")")
        fi
    done
    echo "run $run: dbt-duckdb ${dbt_times[-1]} s, lakeq ${lakeq_times[-1]} s" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
d=$(median "${dbt_times[@]}")
l=$(median "${lakeq_times[@]}")

# --- the same lakes ---------------------------------------------------------------------------------------
report=$("$LAKEQ_DUCKDB_PYTHON" tests/dbt/compare_lakes.py "$LAKEQ_DUCKDB_EXT_DIR" \
    "ducklake:sqlite:$WORK/with_dbt/bench.sqlite" "$WORK/with_dbt/bench_data/" \
    "ducklake:sqlite:$WORK/with_lakeq/bench.sqlite" "$WORK/with_lakeq/bench_data/" '{}')
"$LAKEQ_DUCKDB_PYTHON" - "$report" "$((MODELS + 1))" <<'EOF'
import json, sys
r = json.loads(sys.argv[1]); want = int(sys.argv[2])
tables = r["tables"]
bad = [t for t, v in tables.items()
       if v["rows_a"] != v["rows_b"] or v["only_a"] != v["only_b"]]
if r["a"] != r["b"] or len(tables) != want or bad:
    sys.exit(f"the lakes differ: {len(tables)} relations (want {want}), differing: {bad[:5]}")
print(f"same relations ({len(tables)}) and rows in both lakes", file=sys.stderr)
EOF

printf 'dbt project, %s models + 1 seed + %s tests, median of %s runs:\n' "$MODELS" "$((2 * MODELS))" "$RUNS"
printf '  dbt-duckdb (dbt seed && dbt build)  %8.2f s  (%.1f ms per model)\n' "$d" "$(awk -v t="$d" -v n="$MODELS" 'BEGIN { print 1000 * t / n }')"
printf '  lakeq build                          %8.2f s  (%.1f ms per model)\n' "$l" "$(awk -v t="$l" -v n="$MODELS" 'BEGIN { print 1000 * t / n }')"
awk -v l="$l" -v d="$d" -v n="$MODELS" 'BEGIN { printf "RATIO dbt_project/%s lakeq/dbt-duckdb = %.3f\n", n, l / d }'
