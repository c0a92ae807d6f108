#!/usr/bin/env bash
# Run the hourly DAG once, end to end, and print the rows it wrote. See README "Run the job".
# Installs the runtime dependencies only (scripts/test.sh adds the test tools).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/run_job.py "$@"
