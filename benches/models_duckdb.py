#!/usr/bin/env python3
"""DuckDB 1.5.5 side of the model benchmark (benches/run_pipeline.sh): build the models of a lakeq
project in DuckDB, as dbt-duckdb would, from lakeq's own compiled SQL (target/manifest.json).

    models_duckdb.py --ext-dir DIR --raw "ATTACH ... AS raw" --analytics "ATTACH ... AS dev_analytics"
                     --manifest target/manifest.json

Attaches the raw lake (read) and a fresh analytics lake under the same names lakeq uses, then runs every
model in dependency order: CREATE SCHEMA IF NOT EXISTS, CREATE OR REPLACE VIEW / TABLE ... AS <compiled SQL>
(ephemeral models are already inlined into their users). Prints one JSON object: seconds from the first
ATTACH to the last model, per-model seconds, and the row count of every table model (the answer check).
"""

import argparse
import json
import os
import sys
import time

import duckdb


def topo(nodes):
    order, done = [], set()

    def visit(uid):
        if uid in done:
            return
        done.add(uid)
        for dep in nodes[uid]["depends_on"]["nodes"]:
            if dep in nodes:
                visit(dep)
        order.append(uid)

    for uid in sorted(nodes):
        visit(uid)
    return order


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ext-dir", required=True)
    p.add_argument("--raw", required=True)
    p.add_argument("--analytics", required=True)
    p.add_argument("--manifest", required=True)
    args = p.parse_args()
    manifest = json.load(open(args.manifest))
    models = {k: v for k, v in manifest["nodes"].items() if v["resource_type"] == "model"}
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute("SET TimeZone = 'UTC'")
    for ext in ("ducklake", "sqlite_scanner", "postgres_scanner"):
        con.execute(f"LOAD '{os.path.join(args.ext_dir, ext + '.duckdb_extension')}'")
    start = time.perf_counter()
    con.execute(args.raw)
    con.execute(args.analytics)
    per_model, rows = {}, {}
    for uid in topo(models):
        m = models[uid]
        kind = m["config"]["materialized"]
        if kind == "ephemeral":
            continue
        rel = m["relation_name"]
        lake, schema, _ = rel.split(".")
        t = time.perf_counter()
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {lake}.{schema}")
        what = "VIEW" if kind == "view" else "TABLE"
        con.execute(f"CREATE OR REPLACE {what} {rel} AS\n{m['compiled_code']}")
        per_model[m["name"]] = time.perf_counter() - t
        if what == "TABLE":
            rows[m["name"]] = con.execute(f"SELECT count(*) FROM {rel}").fetchone()[0]
    total = time.perf_counter() - start
    json.dump({"seconds": total, "per_model": per_model, "rows": rows}, sys.stdout)


if __name__ == "__main__":
    main()
