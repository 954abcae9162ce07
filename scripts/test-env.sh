#!/usr/bin/env bash
# Prepare everything lakeq's integration tests need, idempotently (a warm run takes well under a second):
#   * PostgreSQL answering on 127.0.0.1:5432 (started with pg_ctlcluster if it is down);
#   * the Python venv <repo>/.venv with the pinned DuckDB oracle wheels of tests/oracle/requirements.txt
#     (re-installed only when that file changes; a stamp file holds its checksum);
#   * <repo>/.venv/duckdb_extensions/ with ducklake, sqlite_scanner, postgres_scanner, httpfs and tpch
#     .duckdb_extension files (symlinks into the wheels, named the way DuckDB needs to LOAD them);
#   * the Python venv <repo>/.venv-dbt with dbt-core + dbt-duckdb (tests/oracle/dbt-requirements.txt) and
#     an extension directory in DuckDB's layout for it (dbt-duckdb cannot LOAD by path);
#   * Debian's chromium (headless) for the docs page test, installed with apt-get when missing.
#
# Usage:
#   source scripts/test-env.sh     prepares, then exports LAKEQ_DUCKDB_PYTHON, LAKEQ_DUCKDB_EXT_DIR, LAKEQ_DBT,
#                                  LAKEQ_DBT_EXT_DIR and LAKEQ_PG_URL (the latter only if unset) into the calling shell
#   scripts/test-env.sh            prepares, then prints the `export` lines (for `eval "$(...)"`)
#
# Progress messages go to stderr.

# When sourced: do the work in a child bash (so `set -e` there can never kill the caller's shell),
# then export the variables here.
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    _lakeq_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    bash "$_lakeq_root/scripts/test-env.sh" >/dev/null || return $?
    export LAKEQ_DUCKDB_PYTHON="$_lakeq_root/.venv/bin/python"
    export LAKEQ_DUCKDB_EXT_DIR="$_lakeq_root/.venv/duckdb_extensions"
    export LAKEQ_PG_URL="${LAKEQ_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
    export LAKEQ_DBT="$_lakeq_root/.venv-dbt/bin/dbt"
    export LAKEQ_DBT_EXT_DIR="$_lakeq_root/.venv-dbt/duckdb_extension_directory"
    unset _lakeq_root
    return 0
fi

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQ="$ROOT/tests/oracle/requirements.txt"
STAMP="$VENV/.lakeq-requirements.sha256"
EXT_DIR="$VENV/duckdb_extensions"
# extension name DuckDB must see -> name of the file inside the wheel (duckdb_extension_<wheel>/extensions/v*/)
EXTENSIONS=(ducklake:ducklake sqlite_scanner:sqlite postgres_scanner:postgres httpfs:httpfs tpch:tpch)

log() { echo "test-env: $*" >&2; }

# --- PostgreSQL -----------------------------------------------------------------------------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    log "PostgreSQL is not answering on 127.0.0.1:5432; starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
    for _ in $(seq 1 60); do
        pg_isready -q -h 127.0.0.1 -p 5432 && break
        sleep 0.5
    done
    pg_isready -h 127.0.0.1 -p 5432 >&2 || { log "PostgreSQL did not come up"; exit 1; }
fi

# --- Python venv with the pinned wheels ----------------------------------------------------------------------
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" || "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]]; then
    log "installing the DuckDB oracle into $VENV"
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ" >&2
    rm -rf "$EXT_DIR"  # rebuilt below against the freshly installed wheels
    echo "$want" >"$STAMP"
fi

# --- extension files, named the way DuckDB derives the extension name ------------------------------------------
for pair in "${EXTENSIONS[@]}"; do
    name="${pair%%:*}" wheel="${pair#*:}"
    [[ -e "$EXT_DIR/$name.duckdb_extension" ]] && continue
    # shellcheck disable=SC2206  # glob expansion wanted
    found=("$VENV"/lib/python3*/site-packages/duckdb_extension_"$wheel"/extensions/v*/"$wheel".duckdb_extension)
    if [[ ${#found[@]} -ne 1 || ! -f "${found[0]}" ]]; then
        log "cannot find $wheel.duckdb_extension in the venv (got: ${found[*]}); remove $STAMP and retry"
        exit 1
    fi
    mkdir -p "$EXT_DIR"
    # relative link, so the venv keeps working if the checkout moves
    ln -sfn "../${found[0]#"$VENV/"}" "$EXT_DIR/$name.duckdb_extension"
    log "linked $EXT_DIR/$name.duckdb_extension"
done

# --- dbt-core + dbt-duckdb (tests/it/dbt.rs) -------------------------------------------------------------------
DBT_VENV="$ROOT/.venv-dbt"
DBT_REQ="$ROOT/tests/oracle/dbt-requirements.txt"
DBT_STAMP="$DBT_VENV/.lakeq-requirements.sha256"
DBT_EXT_DIR="$DBT_VENV/duckdb_extension_directory"
want="$(sha256sum "$DBT_REQ" | cut -d' ' -f1)"
if [[ ! -x "$DBT_VENV/bin/dbt" || "$(cat "$DBT_STAMP" 2>/dev/null || true)" != "$want" ]]; then
    log "installing dbt-core and dbt-duckdb into $DBT_VENV"
    [[ -x "$DBT_VENV/bin/python" ]] || python3 -m venv "$DBT_VENV"
    "$DBT_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$DBT_REQ" >&2
    rm -rf "$DBT_EXT_DIR"
    echo "$want" >"$DBT_STAMP"
fi
# DuckDB's own extension-directory layout (<dir>/<version>/<platform>/<name>.duckdb_extension): dbt-duckdb's
# ATTACH 'ducklake:...' autoloads the extensions from there instead of downloading them.
if [[ ! -d "$DBT_EXT_DIR" ]]; then
    layout="$("$DBT_VENV/bin/python" -c 'import duckdb; print(duckdb.sql("select version()").fetchone()[0] + "/" + duckdb.sql("pragma platform").fetchone()[0])')"
    mkdir -p "$DBT_EXT_DIR/$layout"
    for name in ducklake sqlite_scanner postgres_scanner; do
        ln -sfn "$(readlink -f "$EXT_DIR/$name.duckdb_extension")" "$DBT_EXT_DIR/$layout/$name.duckdb_extension"
    done
    log "linked the DuckDB extensions into $DBT_EXT_DIR/$layout"
fi

# --- Chromium, for the screenshot test of `lakeq docs serve` (tests/it/dbt.rs) ---------------------------------
# Debian's package; installed once per machine (as root, where apt-get is at hand).
if ! command -v chromium >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing Debian's chromium (headless browser for the docs page test)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2 \
            || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2; } \
            || log "could not install chromium: the docs page test will fail and say so"
    else
        log "chromium is missing (install Debian's chromium package): the docs page test will fail and say so"
    fi
fi

echo "export LAKEQ_DUCKDB_PYTHON='$VENV/bin/python'"
echo "export LAKEQ_DUCKDB_EXT_DIR='$EXT_DIR'"
echo "export LAKEQ_PG_URL='${LAKEQ_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}'"
echo "export LAKEQ_DBT='$DBT_VENV/bin/dbt'"
echo "export LAKEQ_DBT_EXT_DIR='$DBT_EXT_DIR'"
