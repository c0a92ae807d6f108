#!/usr/bin/env bash
# Create ./.venv with the pinned dependencies, this provider and the simulator (idempotent, quiet).
#
#   bash scripts/setup.sh          runtime only: what scripts/run-job.sh needs
#   bash scripts/setup.sh --test   plus the test and lint tools: what scripts/test.sh needs
#
# Installs nothing outside ./.venv, so it works with a Python that refuses `pip install` outside a
# venv (PEP 668 "externally managed": Debian 12, Ubuntu 24.04, Homebrew). PYTHON picks the
# interpreter (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."

kind=runtime
case "${1:-}" in
    "") ;;
    --test) kind=test ;;
    *)
        echo "usage: bash scripts/setup.sh [--test]" >&2
        exit 2
        ;;
esac

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "setup: Python 3.10 or newer is needed (found: $("$python" --version 2>&1))." >&2
    exit 1
fi

# The venv first; every tool goes inside it.
if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv; then
        rm -rf .venv
        echo "setup: '$python -m venv' failed. On Debian/Ubuntu: sudo apt-get install python3-venv" >&2
        exit 1
    fi
fi

# uv resolves Airflow's ~300 dependencies in seconds where pip takes minutes: the uv on PATH, else a
# pinned one installed into the venv.
uv=$(command -v uv || true)
if [ -z "$uv" ]; then
    if [ ! -x .venv/bin/uv ]; then
        .venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip --default-pip >/dev/null
        .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
    fi
    uv=.venv/bin/uv
fi

requirements=(-r requirements.txt)
inputs=(requirements.txt constraints.txt pyproject.toml simulator/pyproject.toml)
if [ "$kind" = test ]; then
    requirements+=(-r requirements-test.txt)
    inputs+=(requirements-test.txt requirements-kalshi-sdk.txt)
fi
# A stamp per kind of install, named after its inputs' hash (hashlib: older macOS has no sha256sum).
digest=$(.venv/bin/python -c '
import hashlib, sys
digest = hashlib.sha256()
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        digest.update(f.read())
print(digest.hexdigest()[:16])' "${inputs[@]}")
stamp=.venv/.installed-$kind-$digest
if [ ! -f "$stamp" ]; then
    # constraints.txt pins every transitive version CI passed with (as Airflow's own constraint
    # files do): a fresh resolve once picked celery 5.7, which Airflow's Celery provider can't load.
    # The simulator (simulator/, a development distribution) serves the demo run and the tests.
    # --compile-bytecode: every `airflow` process (the demo run, each DAG test) imports ~1,000
    # modules, and where PYTHONDONTWRITEBYTECODE is set Python would compile them all again each
    # time: about 6 s of CPU instead of 2.5 s per `airflow version` on this project's CI machine.
    "$uv" pip install --quiet --compile-bytecode --python .venv/bin/python \
        "${requirements[@]}" -c constraints.txt -e . -e simulator
    if [ "$kind" = test ]; then
        # Kalshi's SDK, unpacked beside the venv for its models only (see the file's comment).
        rm -rf .venv/kalshi-sdk
        "$uv" pip install --quiet --compile-bytecode --python .venv/bin/python --target .venv/kalshi-sdk \
            --python-version 3.13 --no-deps --only-binary :all: --require-hashes -r requirements-kalshi-sdk.txt
    fi
    rm -f .venv/.installed-"$kind"-* && touch "$stamp"
fi
