#!/usr/bin/env bash
# The whole test suite, from a fresh machine: system packages, the venv, lint, then pytest.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/provider -x`).
set -euo pipefail
cd "$(dirname "$0")/.."

# Servers and the browser the tests drive for real: PostgreSQL (warehouse and Airflow's metadata
# DB), PgBouncer (the warehouse through a pooler), MariaDB (warehouse, with the client library
# mysqlclient builds against), Redis (Celery broker), Debian's Chromium (the UI tests; test tools
# cannot download browsers), Debian's docker-compose (resolves docker-compose.yaml with `config`,
# which needs no Docker engine).
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
[ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null 2>&1 || missing+=(pgbouncer)
command -v mariadbd >/dev/null 2>&1 || missing+=(mariadb-server)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
pkg-config --exists mariadb 2>/dev/null || missing+=(libmariadb-dev)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "test: installing ${missing[*]} with apt-get" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash scripts/setup.sh --test

.venv/bin/ruff check .
# Two workers (pytest-xdist), a test file each at a time, so a module's fixtures start once: much of
# the suite waits on Airflow processes, servers and deadlines, and one worker left a core idle.
# KALSHI_TEST_WORKERS=0 runs it in one process.
.venv/bin/python -m pytest -n "${KALSHI_TEST_WORKERS:-2}" --dist loadfile "$@"
