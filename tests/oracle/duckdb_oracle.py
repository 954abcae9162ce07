#!/usr/bin/env python3
"""DuckDB 1.5.5 as the test oracle for lakeq.

Usage (run with $LAKEQ_DUCKDB_PYTHON, see scripts/test-env.sh):

    duckdb_oracle.py run --ext-dir DIR --attach "ATTACH '...' AS lake (...)" [--attach ...]
                         --script FILE --out FILE.json

Starts an in-memory DuckDB, runs `SET TimeZone='UTC'`, LOADs ducklake, sqlite_scanner and postgres_scanner
from DIR by path (httpfs too when an ATTACH or the script mentions s3://), runs each ATTACH in order, then
the blocks of the script. `--out -` writes the JSON to stdout.

Script format (a tiny subset of sqllogictest, so the same files can drive lakeq): the file is a sequence of
blocks separated by blank lines. A block starts with a header line, `statement ok` or `query <label>`,
followed by the lines of exactly one SQL statement (a trailing `;` is allowed) up to the next blank line or
the end of the file. `statement ok` blocks are executed and must succeed; `query <label>` blocks are executed
and their result is recorded under <label> (labels are unique words). Lines starting with `#` are comments
(anywhere, also inside a block; a comment never ends a block). Nothing else is allowed: no expected results
(`----`), no `statement error`, no other directives.

Output: {"queries": [{"label", "sql", "columns", "rows"}], "error": null}; `sql` is the block's SQL lines
joined by "\\n", `rows` is a list of rows, each a list of canonical strings, in the order DuckDB returned
them (never sorted here: queries must use ORDER BY). If a statement fails, the statement and DuckDB's error
are printed to stderr, the JSON (queries recorded so far, "error": "<message>") is still written, and the
exit status is 1. A malformed script exits with status 2.

Canonical rendering of a value (the Rust side implements exactly the same; see CANONICAL.md):
  NULL (at any depth)      -> NULL
  BOOLEAN                  -> true / false
  integers (any width,
    signed or unsigned)    -> decimal digits, `-` for negatives
  FLOAT / DOUBLE           -> nan, inf, -inf, else '%.6f' % x (FLOAT widened to double first; -0.0 gives
                              -0.000000; exact ties round half to even)
  DECIMAL(p,s)             -> format(d, 'f'): plain notation with exactly s fractional digits (no point when
                              s = 0), e.g. 1.5 in DECIMAL(18,3) -> 1.500
  VARCHAR / JSON           -> the string as is
  BLOB                     -> lowercase hex of the bytes, no prefix (empty blob -> empty string)
  DATE                     -> YYYY-MM-DD
  TIMESTAMP                -> YYYY-MM-DD HH:MM:SS.ffffff (always 6 fractional digits)
  TIMESTAMPTZ              -> converted to UTC, YYYY-MM-DD HH:MM:SS.ffffff+00
  TIME                     -> HH:MM:SS.ffffff
  INTERVAL                 -> total microseconds as an integer, 1 month = 30 days, 1 day = 86400 s
  UUID                     -> lowercase 8-4-4-4-12 hex
  LIST / ARRAY             -> '[' + items joined by ', ' + ']'
  STRUCT / MAP             -> '{' + 'key: value' joined by ', ' + '}' in field / entry order, keys rendered
                              canonically too
Strings inside lists and structs are not quoted. Values DuckDB's Python client cannot return faithfully
(infinite dates/timestamps become year 9999 / year 1, TIMESTAMP_NS loses nanoseconds) must not be queried.
"""

import argparse
import datetime
import decimal
import json
import math
import os
import sys
import uuid

# Extensions loaded for every run, by file name (DuckDB derives the extension name from it).
BASE_EXTENSIONS = ["ducklake", "sqlite_scanner", "postgres_scanner"]


class ScriptError(Exception):
    """Malformed script file."""


class Block:
    def __init__(self, kind, label, sql, line):
        self.kind = kind  # "statement" or "query"
        self.label = label  # query label, None for statements
        self.sql = sql
        self.line = line  # line number of the header, for messages


def parse_script(text, name="<script>"):
    """Split a script into blocks (see the module docstring for the format)."""
    blocks, labels = [], set()
    header, header_line, sql_lines = None, 0, []

    def finish():
        if header is None:
            return
        if not sql_lines:
            raise ScriptError(f"{name}:{header_line}: '{header}' has no SQL")
        words = header.split()
        if words == ["statement", "ok"]:
            blocks.append(Block("statement", None, "\n".join(sql_lines), header_line))
        elif len(words) == 2 and words[0] == "query":
            label = words[1]
            if label in labels:
                raise ScriptError(f"{name}:{header_line}: duplicate query label '{label}'")
            labels.add(label)
            blocks.append(Block("query", label, "\n".join(sql_lines), header_line))
        else:
            raise ScriptError(f"{name}:{header_line}: expected 'statement ok' or 'query <label>', got '{header}'")

    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if line.lstrip().startswith("#"):
            continue
        if not line.strip():
            finish()
            header, sql_lines = None, []
        elif header is None:
            header, header_line = line.strip(), no
        elif line.strip() == "----":
            raise ScriptError(f"{name}:{no}: expected results ('----') are not supported")
        else:
            sql_lines.append(line)
    finish()
    return blocks


def _fmt_time(t):
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}"


def _fmt_date(d):
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def canonical(v):
    """Render one value returned by DuckDB's Python client canonically (see the module docstring)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):  # before int: bool is an int subclass
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return "%.6f" % v
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, datetime.datetime):  # before date: datetime is a date subclass
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc)
            return f"{_fmt_date(v)} {_fmt_time(v)}+00"
        return f"{_fmt_date(v)} {_fmt_time(v)}"
    if isinstance(v, datetime.date):
        return _fmt_date(v)
    if isinstance(v, datetime.time):
        return _fmt_time(v)
    if isinstance(v, datetime.timedelta):
        # DuckDB's client already folds months into days (30 days each)
        return str((v.days * 86400 + v.seconds) * 1_000_000 + v.microseconds)
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(canonical(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{canonical(k)}: {canonical(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no canonical rendering for {type(v).__name__}: {v!r}")


def connect(ext_dir, needs_httpfs):
    import duckdb  # imported late so `--help` and the parser work without DuckDB

    # Never try to download anything: everything comes from ext_dir.
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    con.execute("SET TimeZone='UTC'")
    for name in BASE_EXTENSIONS + (["httpfs"] if needs_httpfs else []):
        path = os.path.join(ext_dir, f"{name}.duckdb_extension")
        con.execute(f"LOAD '{path}'")
    return con


def fail(out, result, what, sql, err):
    """Report a failing statement on stderr, write the partial result and exit 1."""
    msg = f"{type(err).__name__}: {err}"
    print(f"duckdb_oracle: {what} failed:\n{sql}\n--- DuckDB error:\n{msg}", file=sys.stderr)
    result["error"] = f"{what}: {msg}"
    write_json(out, result)
    sys.exit(1)


def write_json(out, result):
    text = json.dumps(result, indent=1, ensure_ascii=False) + "\n"
    if out == "-":
        sys.stdout.write(text)
    else:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)


def cmd_run(args):
    with open(args.script, encoding="utf-8") as f:
        text = f.read()
    try:
        blocks = parse_script(text, args.script)
    except ScriptError as e:
        print(f"duckdb_oracle: {e}", file=sys.stderr)
        sys.exit(2)

    result = {"queries": [], "error": None}
    needs_httpfs = "s3://" in text or any("s3://" in a for a in args.attach)
    try:
        con = connect(args.ext_dir, needs_httpfs)
    except Exception as e:  # noqa: BLE001 - any DuckDB error is reported the same way
        fail(args.out, result, "setup (SET TimeZone / LOAD)", f"--ext-dir {args.ext_dir}", e)

    for attach in args.attach:
        try:
            con.execute(attach)
        except Exception as e:  # noqa: BLE001
            fail(args.out, result, "ATTACH", attach, e)

    for b in blocks:
        where = f"{args.script}:{b.line}" + (f" (query {b.label})" if b.label else "")
        try:
            cur = con.execute(b.sql)
            if b.kind == "query":
                columns = [d[0] for d in cur.description]
                rows = [[canonical(v) for v in row] for row in cur.fetchall()]
        except Exception as e:  # noqa: BLE001
            fail(args.out, result, where, b.sql, e)
        if b.kind == "query":
            result["queries"].append({"label": b.label, "sql": b.sql, "columns": columns, "rows": rows})

    write_json(args.out, result)


def main(argv=None):
    p = argparse.ArgumentParser(description="Run a script against DuckDB 1.5.5 and record query results.")
    sub = p.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run a script and write the results as JSON")
    run.add_argument("--ext-dir", required=True, help="directory holding <name>.duckdb_extension files")
    run.add_argument("--attach", action="append", default=[], help="an ATTACH statement (repeatable)")
    run.add_argument("--script", required=True, help="script file (format: see the module docstring)")
    run.add_argument("--out", required=True, help="output JSON file, or - for stdout")
    args = p.parse_args(argv)
    if args.cmd == "run":
        cmd_run(args)


if __name__ == "__main__":
    main()
