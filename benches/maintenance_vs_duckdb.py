"""Whole-command benchmark of lake maintenance, lakeq against DuckDB 1.5.5 on the same work, in one run.

Called by benches/maintenance_vs_duckdb.sh (which builds lakeq and sets up the DuckDB venv). Steps, each timed
as wall time of the whole operation (process start included for lakeq's CLI; DuckDB's connect + LOAD + ATTACH
included too, so both pay their start-up):

  1. N small appends (ROWS rows each, one snapshot each) into a fresh SQLite-catalog lake, by lakeq (one
     `lakeq sql -f` script) and by DuckDB (one connection), both with data_inlining_row_limit 0 so both write
     Parquet (INLINING=1: both inline the appends, and step 3 flushes them);
  2. a scan (`count(*)`, `sum`) of the N-file table, best of 3, each engine on its own lake;
  3. `ducklake_merge_adjacent_files` by each engine on its own lake;
  4. the scan again, best of 3;
  5. the answer check: DuckDB reads lakeq's merged lake and lakeq reads DuckDB's; all four answers must agree;
  6. expiry of every snapshot but the latest (`ducklake_expire_snapshots(older_than => now())`, ~N snapshots)
     and `ducklake_cleanup_old_files(cleanup_all => true)` (the N files the merge replaced), by each engine on its
     own lake, then the answers again in both engines.

Prints one line per step with both times and the lakeq/DuckDB ratio.
"""

import os
import shutil
import subprocess
import sys
import time

import duckdb

LAKEQ = sys.argv[1]
WORK = sys.argv[2]
N = int(os.environ.get("APPENDS", "500"))
# INLINING=1: both engines keep small appends in the catalog (data inlining, the default of both) and step 3
# flushes them to Parquet; otherwise both write a Parquet file per append (data_inlining_row_limit 0).
INLINING = os.environ.get("INLINING", "0") == "1"
ROWS = int(os.environ.get("ROWS", "10"))
EXT = os.environ["LAKEQ_DUCKDB_EXT_DIR"]

SCAN = "SELECT count(*) AS n, sum(i) AS s FROM lake.main.t"


def attach(name):
    return f"ATTACH 'ducklake:sqlite:{WORK}/{name}.sqlite' AS lake (DATA_PATH '{WORK}/{name}/')"


def duck(name, statements, fetch=False):
    c = duckdb.connect()
    for e in ("sqlite_scanner", "ducklake"):
        c.execute(f"LOAD '{EXT}/{e}.duckdb_extension'")
    c.execute(attach(name) + (" " if False else ""))
    out = None
    for s in statements:
        r = c.execute(s)
        if fetch:
            out = r.fetchall()
    c.close()
    return out


def lakeq(name, sql):
    r = subprocess.run(
        [LAKEQ, "sql", "--format", "csv", "-c", f"{attach(name)}; {sql}"],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise SystemExit(f"lakeq failed: {r.stderr}")
    return r.stdout.strip().splitlines()


def timed(f):
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


def best(f, k=3):
    results = [timed(f) for _ in range(k)]
    return min(r[0] for r in results), results[0][1]


def line(what, lq, dk):
    print(f"{what:<34} lakeq {lq:8.3f}s   DuckDB {dk:8.3f}s   lakeq/DuckDB {lq / dk:5.2f}")


shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
inserts = [
    f"INSERT INTO lake.main.t SELECT i FROM range({k * ROWS}, {(k + 1) * ROWS}) r(i)" for k in range(N)
]

# 1. appends
script = os.path.join(WORK, "appends.sql")
with open(script, "w") as f:
    f.write(attach("lq") + ";\n")
    if not INLINING:
        f.write("CALL lake.set_option('data_inlining_row_limit', 0);\n")
    f.write("CREATE TABLE lake.main.t (i BIGINT);\n")
    f.write(";\n".join(inserts) + ";\n")
lq_t, _ = timed(lambda: subprocess.run([LAKEQ, "sql", "-f", script], check=True, capture_output=True))
dk_t, _ = timed(
    lambda: duck(
        "dk",
        ([] if INLINING else ["CALL lake.set_option('data_inlining_row_limit', 0)"])
        + ["CREATE TABLE lake.main.t (i BIGINT)"]
        + inserts,
    )
)
line(f"{N} appends of {ROWS} rows", lq_t, dk_t)

# 2. scan before
lq_t, lq_before = best(lambda: lakeq("lq", SCAN))
dk_t, dk_before = best(lambda: duck("dk", [SCAN], fetch=True))
line(f"scan of {N} inlined appends" if INLINING else f"scan of {N} files", lq_t, dk_t)

# 3. merge (with inlining: flush the inlined rows to Parquet)
call = "CALL ducklake_flush_inlined_data('lake')" if INLINING else "CALL ducklake_merge_adjacent_files('lake')"
lq_t, _ = timed(lambda: lakeq("lq", call))
dk_t, _ = timed(lambda: duck("dk", [call]))
line(f"flush of {N} inlined appends" if INLINING else f"merge_adjacent_files ({N} files)", lq_t, dk_t)

# 4. scan after
lq_t, lq_after = best(lambda: lakeq("lq", SCAN))
dk_t, dk_after = best(lambda: duck("dk", [SCAN], fetch=True))
line("scan after flush" if INLINING else "scan after merge", lq_t, dk_t)

# 5. answers: each engine on both lakes
expected = (N * ROWS, (N * ROWS - 1) * N * ROWS // 2)
answers = {
    "lakeq on lakeq's lake": tuple(int(x) for x in lq_after[1].split(",")),
    "lakeq on DuckDB's lake": tuple(int(x) for x in lakeq("dk", SCAN)[1].split(",")),
    "DuckDB on DuckDB's lake": tuple(dk_after[0]),
    "DuckDB on lakeq's lake": tuple(duck("lq", [SCAN], fetch=True)[0]),
}
files = duck("lq", ["SELECT count(*) FROM ducklake_list_files('lake', 't')"], fetch=True)[0][0]
for k, v in answers.items():
    if v != expected:
        raise SystemExit(f"wrong answer: {k} = {v}, expected {expected}")
print(f"answers agree: {expected[0]} rows, sum {expected[1]}; lakeq's table is {files} file(s) after the merge")

# 6. expire every snapshot but the latest, then delete the files only they referenced
def snapshots(name):
    return duck(name, ["SELECT count(*) FROM lake.snapshots()"], fetch=True)[0][0]


before = (snapshots("lq"), snapshots("dk"))
expire = "CALL ducklake_expire_snapshots('lake', older_than => now())"
cleanup = "CALL ducklake_cleanup_old_files('lake', cleanup_all => true)"
lq_t, _ = timed(lambda: lakeq("lq", expire))
dk_t, _ = timed(lambda: duck("dk", [expire]))
line(f"expire_snapshots ({before[0] - 1} snapshots)", lq_t, dk_t)
lq_t, _ = timed(lambda: lakeq("lq", cleanup))
dk_t, _ = timed(lambda: duck("dk", [cleanup]))
line("cleanup_old_files", lq_t, dk_t)
after = (snapshots("lq"), snapshots("dk"))
for name, engine, got in (
    ("lq", "DuckDB", tuple(duck("lq", [SCAN], fetch=True)[0])),
    ("dk", "lakeq", tuple(int(x) for x in lakeq("dk", SCAN)[1].split(","))),
    ("lq", "lakeq", tuple(int(x) for x in lakeq("lq", SCAN)[1].split(","))),
):
    if got != expected:
        raise SystemExit(f"wrong answer after expiry: {engine} on {name} = {got}, expected {expected}")
left = sum(len(fs) for _, _, fs in os.walk(os.path.join(WORK, "lq")))
print(
    f"after expiry: snapshots {before[0]} -> {after[0]} (lakeq's lake), {before[1]} -> {after[1]} (DuckDB's); "
    f"{left} data file(s) left in lakeq's lake; answers agree"
)
