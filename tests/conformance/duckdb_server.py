#!/usr/bin/env python3
"""DuckDB 1.5.5 as a line-oriented server for lakeq's conformance runner (tests/conformance/main.rs).

Usage: duckdb_server.py --ext-dir DIR

Reads one JSON request per line on stdin and writes one JSON response per line on stdout:

    {"op": "reset"}                       -> {"ok": true}
        a fresh in-memory DuckDB (SET TimeZone='UTC', extensions LOADed by path from DIR, autoloading off),
        as DuckDB's own sqllogictest runner starts every test file
    {"op": "exec", "sql": "...", "conn": null | "name"}
        -> {"ok": true, "kind": "rows", "types": ["INTEGER", ...], "rows": [["1", null], ...]}
        -> {"ok": true, "kind": "none"}
        -> {"ok": false, "error": "..."}

Results are rendered the way DuckDB's Python sqllogictest runner renders them (scripts/sqllogictest/result.py in
duckdb/duckdb): a statement whose result is a query result is wrapped as
`SELECT "c0"::VARCHAR, ... FROM (<statement>) t(c0, ...)`, so every value is DuckDB's own `CAST(x AS VARCHAR)`;
NULL stays null (the Rust side prints `NULL`). Statements that report changed rows (INSERT/UPDATE/DELETE without
RETURNING) return the count as one BIGINT row. `conn` names a cursor of the same database (the `connection`
label of `statement ok con1`); null is the main connection.
"""

import argparse
import json
import os
import sys

import duckdb

EXTENSIONS = ["ducklake", "sqlite_scanner", "postgres_scanner", "httpfs"]


class Server:
    def __init__(self, ext_dir):
        self.ext_dir = ext_dir
        self.db = None
        self.cursors = {}

    def reset(self):
        self.cursors = {}
        if self.db is not None:
            try:
                self.db.close()
            except duckdb.Error:
                pass
        self.db = duckdb.connect(
            ":memory:",
            config={
                "allow_unsigned_extensions": True,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
            },
        )
        for ext in EXTENSIONS:
            path = os.path.join(self.ext_dir, f"{ext}.duckdb_extension")
            if os.path.exists(path):
                self.db.execute(f"LOAD '{path}'")
        self.db.execute("SET TimeZone='UTC'")

    def conn(self, name):
        if name is None:
            return self.db
        if name not in self.cursors:
            self.cursors[name] = self.db.cursor()
        return self.cursors[name]

    def exec(self, sql, name):
        con = self.conn(name)
        statements = con.extract_statements(sql)
        if not statements:
            return {"ok": True, "kind": "none"}
        last = statements[-1]
        # Every statement but the last is executed for its effect.
        for stmt in statements[:-1]:
            con.execute(stmt)
        lowered = sql.lower()
        types = last.expected_result_type
        is_query = duckdb.ExpectedResultType.QUERY_RESULT in types and (
            (last.type in (duckdb.StatementType.DELETE, duckdb.StatementType.UPDATE, duckdb.StatementType.INSERT)
             and "returning" in lowered)
            or (last.type == duckdb.StatementType.COPY and "return_files" in lowered)
            or (last.type not in (duckdb.StatementType.DELETE, duckdb.StatementType.UPDATE,
                                  duckdb.StatementType.INSERT, duckdb.StatementType.COPY)
                and len(types) == 1)
        )
        if is_query:
            rel = con.query(last)
            if rel is None:
                return {"ok": True, "kind": "rows", "types": ["BIGINT"], "rows": [["0"]]}
            col_types = [str(t) for t in rel.types]
            aliases = [f"c{i}" for i in range(len(col_types))]
            exprs = ", ".join(f'"{a}"::VARCHAR' for a in aliases)
            rows = con.query(f"SELECT {exprs} FROM rel unnamed_subquery_lakeq({', '.join(aliases)})").fetchall()
            return {"ok": True, "kind": "rows", "types": col_types, "rows": [list(r) for r in rows]}
        con.execute(last)
        if duckdb.ExpectedResultType.CHANGED_ROWS in types:
            rows = con.fetchall()
            return {"ok": True, "kind": "rows", "types": ["BIGINT"], "rows": [[str(v) for v in r] for r in rows]}
        try:
            con.fetchall()
        except duckdb.Error:
            pass
        return {"ok": True, "kind": "none"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ext-dir", required=True)
    args = parser.parse_args()
    server = Server(args.ext_dir)
    server.reset()
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            if req["op"] == "reset":
                server.reset()
                resp = {"ok": True}
            elif req["op"] == "exec":
                resp = server.exec(req["sql"], req.get("conn"))
            else:
                resp = {"ok": False, "error": f"unknown op {req['op']}"}
        except duckdb.Error as e:
            resp = {"ok": False, "error": str(e)}
        except Exception as e:  # noqa: BLE001 - report, never die mid-run
            resp = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(resp) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
