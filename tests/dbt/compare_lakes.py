"""Compare two DuckLakes table by table in DuckDB 1.5.5: the one dbt-duckdb built and the one lakeq built
from the same dbt project (tests/it/dbt.rs).

usage: compare_lakes.py EXT_DIR CATALOG_A DATA_A CATALOG_B DATA_B [MASKS]

MASKS (JSON, optional): {"schema.name": {"column": "rank" | "notnull"}} for columns whose values depend on
when the build ran (a snapshot's times and the hashes of them): "rank" compares each value's rank among the
column's distinct values in its own lake (so the first run's time is 1 in both), "notnull" only whether it is
NULL.

Prints one JSON object: {"a": [[schema, name, kind], ...], "b": [...], "tables": {"schema.name":
{"columns_a": [[name, type, null], ...], "columns_b": [...], "rows_a": n, "rows_b": n, "only_a": [...],
"only_b": [...]}}}; rows are compared as multisets of their Python reprs (values and their Python types).
"""
import collections
import json
import sys

import duckdb

ext_dir, cat_a, data_a, cat_b, data_b = sys.argv[1:6]
masks = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
con = duckdb.connect()
for name in ("sqlite_scanner", "ducklake"):
    con.execute(f"LOAD '{ext_dir}/{name}.duckdb_extension'")
for alias, cat, data in (("a", cat_a, data_a), ("b", cat_b, data_b)):
    # dbt stores the data path as the profile spells it (relative): point both at the real folder.
    con.execute(f"ATTACH '{cat}' AS {alias} (DATA_PATH '{data}', OVERRIDE_DATA_PATH TRUE)")


def relations(alias):
    return [
        list(r)
        for r in con.execute(
            "SELECT schema_name, table_name, 'table' FROM duckdb_tables() WHERE database_name = ? "
            "UNION ALL SELECT schema_name, view_name, 'view' FROM duckdb_views() "
            "WHERE database_name = ? AND NOT internal ORDER BY ALL",
            [alias, alias],
        ).fetchall()
    ]


out = {"a": relations("a"), "b": relations("b"), "tables": {}}
for schema, name, kind in out["a"]:
    if [schema, name] not in [r[:2] for r in out["b"]]:
        continue
    t = {}
    for alias in ("a", "b"):
        rel = f'{alias}."{schema}"."{name}"'
        # name, type and (for tables) whether NULL is allowed: contracts' not_null constraints.
        t["columns_" + alias] = [
            [c[0], c[1]] + ([c[2]] if kind == "table" else [])
            for c in con.execute(f"DESCRIBE {rel}").fetchall()
        ]
        cursor = con.execute(f"SELECT * FROM {rel}")
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        for col, how in masks.get(f"{schema}.{name}", {}).items():
            i = names.index(col)
            ranks = {v: n for n, v in enumerate(sorted({r[i] for r in rows if r[i] is not None}), 1)}
            value = (lambda v: None if v is None else ranks[v]) if how == "rank" else (lambda v: v is not None)
            rows = [r[:i] + (value(r[i]),) + r[i + 1 :] for r in rows]
        t["rows_" + alias] = len(rows)
        t["bag_" + alias] = collections.Counter(repr(r) for r in rows)
    t["only_a"] = sorted((t["bag_a"] - t["bag_b"]).elements())
    t["only_b"] = sorted((t["bag_b"] - t["bag_a"]).elements())
    del t["bag_a"], t["bag_b"]
    out["tables"][f"{schema}.{name}"] = t
print(json.dumps(out))
