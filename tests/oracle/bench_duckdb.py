#!/usr/bin/env python3
"""DuckDB 1.5.5 side of lakeq's benchmarks (benches/*.rs run this with $LAKEQ_DUCKDB_PYTHON).

Subcommands (all print one JSON object on stdout; progress goes to stderr):

    bench_duckdb.py run --ext-dir DIR --attach SQL [--setup SQL ...] --runs N --query LABEL SQL [--query LABEL SQL ...]
        Attach, run the --setup statements (e.g. `USE lake`), run each query once (warm-up; its rows are
        recorded, rendered canonically like duckdb_oracle.py), then N more times, timing each run
        (execute + fetchall).
        -> {"queries": [{"label", "sql", "columns", "rows", "median_s", "times_s"}]}
        With --runs 0 only the answers are recorded (median_s is null).

    bench_duckdb.py build-scan --ext-dir DIR --attach SQL --rows N
        CREATE TABLE lake.main.big (id, k, s, x, ts) with N rows (the scan benchmark's table).
        -> {"rows": N}

    bench_duckdb.py build-planning --ext-dir DIR --attach SQL --backend sqlite|postgres
                                   --meta-attach SQL --meta-prefix PREFIX
                                   --files F --files-per-snapshot P --rows-per-file R
        The planning benchmark's lake: DuckDB creates the lake and `lake.main.t(id BIGINT, v VARCHAR)` and
        inserts one real data file (ids 0..R-1). DuckDB then writes F-1 more small Parquet files next to it
        (file k holds ids k*R .. k*R+R-1, with DuckLake's field ids) and the catalog rows for them are
        synthesised with SQL directly in the catalog database (attached raw with --meta-attach, its tables
        named PREFIX.ducklake_*): `ducklake_data_file` rows, `ducklake_file_column_stats` (exact min/max, so
        the id ranges of the files are disjoint), one `ducklake_snapshot` + `ducklake_snapshot_changes` row
        per P files (the real insert's snapshot gets the first P files), and updated `ducklake_table_stats`
        and `ducklake_table_column_stats`; on PostgreSQL the catalog is then ANALYZEd (as autovacuum would
        have done by the time a lake grew that big). Result: F data files in F/P insert snapshots.
        -> {"files": F, "snapshots": F/P, "rows": F*R}

    bench_duckdb.py ingest --ext-dir DIR --attach SQL --landing DIR --table NAME [--table NAME ...]
        DuckDB's side of `lakeq ingest` (benches/ingest_vs_duckdb.sh, benches/ingest.rs), timed as a
        whole from connect to commit (the Python module already imported): load the extensions, attach
        the (fresh) lake, then in one transaction CREATE SCHEMA lake.saas and, per table, CREATE TABLE
        lake.saas.<t> (the files' columns) and INSERT INTO lake.saas.<t> SELECT * FROM
        read_parquet('<landing>/<t>/*.parquet').
        -> {"seconds": whole, "insert_seconds": transaction only, "rows": {table: n}}

    bench_duckdb.py build-tpch --ext-dir DIR --attach SQL --sf SF
        The TPC-H benchmark's lake: `CALL dbgen(sf=SF)` (DuckDB's tpch extension) into the in-memory
        database, then `CREATE TABLE lake.main.<t> AS SELECT * FROM memory.main.<t>` for the 8 tables.
        -> {"sf": SF, "tables": {table: {"rows": n, "files": f}}}

    bench_duckdb.py tpch-queries --ext-dir DIR
        The 22 TPC-H query texts as DuckDB's tpch extension has them (`tpch_queries()`), unqualified table
        names (run them after `USE lake`).
        -> {"queries": [{"nr": 1, "sql": "..."}, ...]}

The ATTACH statement given with --attach must name the lake `lake`.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from duckdb_oracle import canonical, connect  # noqa: E402


def log(msg):
    print(f"bench_duckdb: {msg}", file=sys.stderr, flush=True)


def cmd_run(args):
    con = connect(args.ext_dir, needs_httpfs=False)
    con.execute(args.attach)
    for sql in args.setup:
        con.execute(sql)
    out = []
    for label, sql in args.query:
        cur = con.execute(sql)
        columns = [d[0] for d in cur.description]
        rows = [[canonical(v) for v in row] for row in cur.fetchall()]
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            con.execute(sql).fetchall()
            times.append(time.perf_counter() - start)
        out.append(
            {
                "label": label,
                "sql": sql,
                "columns": columns,
                "rows": rows,
                "median_s": statistics.median(times) if times else None,
                "times_s": times,
            }
        )
    print(json.dumps({"queries": out}))


def cmd_build_scan(args):
    con = connect(args.ext_dir, needs_httpfs=False)
    con.execute(args.attach)
    start = time.perf_counter()
    con.execute(
        "CREATE TABLE lake.main.big AS SELECT i AS id, i % 1000 AS k, 'v' || (i % 97) AS s, i * 0.5 AS x, "
        f"TIMESTAMP '2024-01-01' + INTERVAL (i) SECOND AS ts FROM range({int(args.rows)}) t(i)"
    )
    log(f"wrote lake.main.big ({args.rows} rows) in {time.perf_counter() - start:.1f} s")
    print(json.dumps({"rows": args.rows}))


TPCH_TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]


def connect_tpch(ext_dir):
    con = connect(ext_dir, needs_httpfs=False)
    con.execute(f"LOAD '{os.path.join(ext_dir, 'tpch.duckdb_extension')}'")
    return con


def cmd_build_tpch(args):
    con = connect_tpch(args.ext_dir)
    start = time.perf_counter()
    con.execute(f"CALL dbgen(sf={float(args.sf)!r})")
    log(f"dbgen(sf={args.sf}) in {time.perf_counter() - start:.1f} s")
    con.execute(args.attach)
    tables = {}
    for t in TPCH_TABLES:
        begin = time.perf_counter()
        con.execute(f"CREATE TABLE lake.main.{t} AS SELECT * FROM memory.main.{t}")
        (rows,) = one(con, f"SELECT count(*) FROM lake.main.{t}")
        (files,) = one(con, f"SELECT count(*) FROM ducklake_list_files('lake', '{t}')")
        tables[t] = {"rows": rows, "files": files}
        log(f"lake.main.{t}: {rows} rows in {files} file(s), {time.perf_counter() - begin:.1f} s")
    con.execute("DETACH lake")
    log(f"TPC-H SF {args.sf} lake ready in {time.perf_counter() - start:.1f} s")
    print(json.dumps({"sf": args.sf, "tables": tables}))


def cmd_tpch_queries(args):
    con = connect_tpch(args.ext_dir)
    rows = con.execute("SELECT query_nr, query FROM tpch_queries() ORDER BY query_nr").fetchall()
    print(json.dumps({"queries": [{"nr": nr, "sql": sql} for nr, sql in rows]}))


def one(con, sql, params=None):
    row = con.execute(sql, params or []).fetchone()
    if row is None:
        raise SystemExit(f"bench_duckdb: no row from: {sql}")
    return row


def cmd_build_planning(args):
    files, per_snap, rows = args.files, args.files_per_snapshot, args.rows_per_file
    if files < 1 or per_snap < 1 or rows < 1 or files % per_snap != 0:
        raise SystemExit("bench_duckdb: --files must be a positive multiple of --files-per-snapshot")
    con = connect(args.ext_dir, needs_httpfs=False)
    start = time.perf_counter()

    # 1. DuckDB makes the lake, the table and one real data file (no inlining).
    if "DATA_INLINING_ROW_LIMIT 0" not in args.attach:
        raise SystemExit("bench_duckdb: the --attach of build-planning needs DATA_INLINING_ROW_LIMIT 0")
    con.execute(args.attach)
    con.execute("CREATE TABLE lake.main.t(id BIGINT, v VARCHAR)")
    con.execute(f"INSERT INTO lake.main.t SELECT i, 'v' || i FROM range({rows}) t(i)")
    (real_path,) = one(con, "SELECT data_file FROM ducklake_list_files('lake', 't')")
    table_dir = os.path.dirname(real_path)
    con.execute("DETACH lake")
    log(f"created the lake and its first data file in {time.perf_counter() - start:.1f} s")

    # 2. The other files, written by DuckDB with DuckLake's field ids (column ids 1 and 2), one COPY each:
    #    a partitioned COPY would be faster but leaves one directory per file, and removing 10,000
    #    directories took half a minute on the benchmark machine (rmdir ~3 ms each).
    for k in range(1, files):
        target = os.path.join(table_dir, f"bench-{k:05d}.parquet")
        con.execute(
            f"COPY (SELECT i AS id, 'v' || i AS v FROM range({k * rows}, {(k + 1) * rows}) t(i)) "
            f"TO '{target}' (FORMAT parquet, FIELD_IDS {{id: 1, v: 2}})"
        )
    log(f"wrote {files - 1} Parquet files in {time.perf_counter() - start:.1f} s")

    # 3. What the catalog needs to know about them: sizes, footers and exact column statistics.
    glob = os.path.join(table_dir, "bench-*.parquet")
    con.execute(
        f"""CREATE TEMP TABLE f AS
        SELECT CAST(regexp_extract(m.file_name, 'bench-(\\d+)\\.parquet', 1) AS BIGINT) AS k,
               m.file_name, m.file_size_bytes, m.footer_size, m.num_rows,
               c1.stats_min_value AS id_min, c1.stats_max_value AS id_max, c1.total_compressed_size AS id_bytes,
               c2.stats_min_value AS v_min, c2.stats_max_value AS v_max, c2.total_compressed_size AS v_bytes
        FROM parquet_file_metadata('{glob}') m
        JOIN parquet_metadata('{glob}') c1 ON c1.file_name = m.file_name AND c1.path_in_schema = 'id'
        JOIN parquet_metadata('{glob}') c2 ON c2.file_name = m.file_name AND c2.path_in_schema = 'v'"""
    )
    n, bad = one(con, f"SELECT count(*), count(*) FILTER (num_rows <> {rows}) FROM f")
    if n != files - 1 or bad:
        raise SystemExit(f"bench_duckdb: expected {files - 1} files of {rows} rows, got {n} ({bad} wrong)")

    # 4. The catalog rows, written straight into the catalog database.
    con.execute(args.meta_attach)
    m = args.meta_prefix
    (table_id,) = one(con, f"SELECT table_id FROM {m}.ducklake_table WHERE table_name = 't' AND end_snapshot IS NULL")
    real_id, base_snap, real_size = one(
        con, f"SELECT data_file_id, begin_snapshot, file_size_bytes FROM {m}.ducklake_data_file WHERE table_id = ?",
        [table_id])
    (last_snap,) = one(con, f"SELECT max(snapshot_id) FROM {m}.ducklake_snapshot")
    if last_snap != base_snap:
        raise SystemExit(f"bench_duckdb: the insert should be the last snapshot ({base_snap}), found {last_snap}")
    schema_version, next_catalog_id, snap_time = one(
        con,
        f"SELECT schema_version, next_catalog_id, CAST(snapshot_time AS VARCHAR) FROM {m}.ducklake_snapshot "
        "WHERE snapshot_id = ?",
        [base_snap])
    snapshots = files // per_snap
    # file k: data_file_id real_id + k, snapshot base_snap + k // per_snap, row ids k*rows ..
    con.execute(
        f"""INSERT INTO {m}.ducklake_data_file
        (data_file_id, table_id, begin_snapshot, end_snapshot, file_order, path, path_is_relative, file_format,
         record_count, file_size_bytes, footer_size, row_id_start, partition_id, encryption_key, mapping_id,
         partial_max)
        SELECT {real_id} + k, {table_id}, {base_snap} + k // {per_snap}, NULL, NULL,
               'bench-' || lpad(CAST(k AS VARCHAR), 5, '0') || '.parquet', 1, 'parquet',
               num_rows, file_size_bytes, footer_size, k * {rows}, NULL, NULL, NULL, NULL
        FROM f ORDER BY k"""
    )
    con.execute(
        f"""INSERT INTO {m}.ducklake_file_column_stats
        (data_file_id, table_id, column_id, column_size_bytes, value_count, null_count, min_value, max_value,
         contains_nan, extra_stats)
        SELECT {real_id} + k, {table_id}, 1, id_bytes, num_rows, 0, id_min, id_max, NULL, NULL FROM f
        UNION ALL
        SELECT {real_id} + k, {table_id}, 2, v_bytes, num_rows, 0, v_min, v_max, NULL, NULL FROM f"""
    )
    ts = "snap_ts" if args.backend == "postgres" else "strftime(snap_ts, '%Y-%m-%d %H:%M:%S.%f') || '+00'"
    con.execute(
        f"""INSERT INTO {m}.ducklake_snapshot
        (snapshot_id, snapshot_time, schema_version, next_catalog_id, next_file_id)
        SELECT s, {ts}, {schema_version}, {next_catalog_id}, {real_id} + (s - {base_snap} + 1) * {per_snap}
        FROM (SELECT s, CAST('{snap_time}' AS TIMESTAMPTZ) + INTERVAL (s - {base_snap}) MILLISECOND AS snap_ts
              FROM range({base_snap} + 1, {base_snap} + {snapshots}) r(s))"""
    )
    con.execute(
        f"UPDATE {m}.ducklake_snapshot SET next_file_id = {real_id + per_snap} WHERE snapshot_id = {base_snap}"
    )
    con.execute(
        f"""INSERT INTO {m}.ducklake_snapshot_changes
        (snapshot_id, changes_made, author, commit_message, commit_extra_info)
        SELECT s, 'inserted_into_table:{table_id}', NULL, NULL, NULL
        FROM range({base_snap} + 1, {base_snap} + {snapshots}) r(s)"""
    )
    (total_size,) = one(con, "SELECT sum(file_size_bytes) FROM f")
    con.execute(
        f"UPDATE {m}.ducklake_table_stats SET record_count = {files * rows}, next_row_id = {files * rows}, "
        f"file_size_bytes = {int(total_size) + int(real_size)} WHERE table_id = {table_id}"
    )
    v_min, v_max = one(
        con,
        f"SELECT least(min(v_min), (SELECT min_value FROM {m}.ducklake_file_column_stats "
        f"  WHERE data_file_id = {real_id} AND table_id = {table_id} AND column_id = 2)), "
        f"greatest(max(v_max), (SELECT max_value FROM {m}.ducklake_file_column_stats "
        f"  WHERE data_file_id = {real_id} AND table_id = {table_id} AND column_id = 2)) FROM f")
    con.execute(
        f"UPDATE {m}.ducklake_table_column_stats SET min_value = '0', max_value = '{files * rows - 1}' "
        f"WHERE table_id = {table_id} AND column_id = 1"
    )
    con.execute(
        f"UPDATE {m}.ducklake_table_column_stats SET min_value = ?, max_value = ? "
        f"WHERE table_id = {table_id} AND column_id = 2",
        [v_min, v_max])
    if args.backend == "postgres":
        # Refresh the planner statistics, as autovacuum would have done for a lake that grew over time:
        # right after a bulk load PostgreSQL believes the tables are nearly empty.
        con.execute("CALL postgres_execute('meta', 'ANALYZE')")
    con.execute("DETACH meta")
    log(f"planning lake ready ({files} files, {snapshots} insert snapshots) in {time.perf_counter() - start:.1f} s")
    print(json.dumps({"files": files, "snapshots": snapshots, "rows": files * rows}))


def cmd_ingest(args):
    import duckdb  # noqa: F401  (imported before the clock starts, like a running binary)

    start = time.perf_counter()
    con = connect(args.ext_dir, needs_httpfs=False)
    con.execute(args.attach)
    begin = time.perf_counter()
    con.execute("BEGIN")
    con.execute("CREATE SCHEMA IF NOT EXISTS lake.saas")
    rows = {}
    for table in args.table:
        files = os.path.join(args.landing, table, "*.parquet").replace("'", "''")
        con.execute(f"CREATE TABLE lake.saas.{table} AS SELECT * FROM read_parquet('{files}') LIMIT 0")
        rows[table] = one(con, f"INSERT INTO lake.saas.{table} SELECT * FROM read_parquet('{files}')")[0]
    con.execute("COMMIT")
    end = time.perf_counter()
    con.close()
    log(f"ingest: {sum(rows.values())} rows in {end - start:.2f} s")
    print(json.dumps({"seconds": end - start, "insert_seconds": end - begin, "rows": rows}))


def main(argv=None):
    p = argparse.ArgumentParser(description="DuckDB 1.5.5 side of lakeq's benchmarks.")
    sub = p.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="answer and time queries")
    run.add_argument("--ext-dir", required=True)
    run.add_argument("--attach", required=True)
    run.add_argument("--setup", action="append", default=[], metavar="SQL", help="run after the ATTACH")
    run.add_argument("--runs", type=int, default=5, help="timed runs after one warm-up (0: answers only)")
    run.add_argument("--query", nargs=2, action="append", default=[], metavar=("LABEL", "SQL"))

    scan = sub.add_parser("build-scan", help="write the scan benchmark's table")
    scan.add_argument("--ext-dir", required=True)
    scan.add_argument("--attach", required=True)
    scan.add_argument("--rows", type=int, required=True)

    plan = sub.add_parser("build-planning", help="build the planning benchmark's lake")
    plan.add_argument("--ext-dir", required=True)
    plan.add_argument("--attach", required=True)
    plan.add_argument("--backend", choices=["sqlite", "postgres"], required=True)
    plan.add_argument("--meta-attach", required=True, help="ATTACH of the raw catalog database AS meta")
    plan.add_argument("--meta-prefix", required=True, help="qualifier of the ducklake_* tables, e.g. meta")
    plan.add_argument("--files", type=int, default=10000)
    plan.add_argument("--files-per-snapshot", type=int, default=10)
    plan.add_argument("--rows-per-file", type=int, default=10)

    ing = sub.add_parser("ingest", help="time INSERT ... SELECT * FROM read_parquet of landing tables")
    ing.add_argument("--ext-dir", required=True)
    ing.add_argument("--attach", required=True)
    ing.add_argument("--landing", required=True, help="landing folder holding <table>/*.parquet")
    ing.add_argument("--table", action="append", required=True)

    tpch = sub.add_parser("build-tpch", help="build the TPC-H benchmark's lake (dbgen, then CREATE TABLE AS)")
    tpch.add_argument("--ext-dir", required=True)
    tpch.add_argument("--attach", required=True)
    tpch.add_argument("--sf", type=float, required=True, help="TPC-H scale factor, e.g. 1 or 0.1")

    tq = sub.add_parser("tpch-queries", help="print the 22 TPC-H queries of DuckDB's tpch extension")
    tq.add_argument("--ext-dir", required=True)

    args = p.parse_args(argv)
    commands = {
        "run": cmd_run,
        "build-scan": cmd_build_scan,
        "build-planning": cmd_build_planning,
        "ingest": cmd_ingest,
        "build-tpch": cmd_build_tpch,
        "tpch-queries": cmd_tpch_queries,
    }
    commands[args.cmd](args)


if __name__ == "__main__":
    main()
