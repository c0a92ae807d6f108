#!/usr/bin/env bash
# Create ./.venv with the pinned requirements and this provider installed (idempotent, quiet).
# Used by run-job.sh and test.sh; safe to run on its own.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "setup: Python 3.10 or newer is needed (found: $("$python" --version 2>&1))." >&2
    exit 1
fi

# uv resolves Airflow's ~300 dependencies in seconds where pip takes minutes.
if ! command -v uv >/dev/null 2>&1; then
    "$python" -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
fi

stamp=.venv/.installed-$(cat requirements.txt requirements-test.txt constraints.txt pyproject.toml simulator/pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    # Airflow's MySQL provider (a test requirement) needs mysqlclient, which PyPI has only as source
    # for Linux: it builds against MariaDB's client library, found through pkg-config.
    if ! pkg-config --exists mariadb 2>/dev/null; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        echo "setup: installing libmariadb-dev and pkg-config with apt-get (mysqlclient builds against them)" >&2
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            libmariadb-dev pkg-config >/dev/null
    fi
    [ -x .venv/bin/python ] || uv venv --quiet --python "$python" .venv
    # constraints.txt pins every transitive version CI passed with (as Airflow's own constraint
    # files do): a fresh resolve once picked celery 5.7, which Airflow's Celery provider can't load.
    uv pip install --quiet --python .venv/bin/python \
        -r requirements.txt -r requirements-test.txt -c constraints.txt -e . -e simulator
    rm -f .venv/.installed-* && touch "$stamp"
fi
