"""Where the overhead is: profiles and what-if measurements behind benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/investigate.py parse|hook [--samples N]

- ``parse``: ``-X importtime`` of what the DAG file imports beyond Airflow, and the time of
  ``DagBag(file)`` with every import done beforehand (so: DAG construction alone), for the DAG,
  the one-task floor and the same-shape no-op DAG.
- ``hook``: the cost of each step of a new hook (connection lookup, key load, first request), and
  the RSA key load with and without cryptography's key validation.
- The warehouse what-ifs that led to the driver path in ``warehouse/store.py`` were measured
  before that change; their figures are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import BENCH_DIR, PYTHON, REPO, base_env, kalshi_conn_json, simulator  # noqa: E402

DAG_FILE = REPO / "dags" / "kalshi_total_resting_order_value.py"


def _median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f} ms"


# -- parse -----------------------------------------------------------------------------------------

_PREIMPORTED_DAGBAG = """
import sys, time
from airflow.dag_processing.dagbag import DagBag
import airflow.sdk.definitions.retry_policy
from airflow.sdk import DAG, Asset, Param, task, task_group
import kalshi_provider.exceptions, kalshi_provider.operators.kalshi, kalshi_provider.pipelines.hours
try:
    import kalshi_provider.pipelines.assets
except ImportError:
    pass
t0 = time.perf_counter()
DagBag(dag_folder=sys.argv[1])
print(time.perf_counter() - t0)
"""

_IMPORTTIME = """
import sys
from airflow.dag_processing.dagbag import DagBag
print("MARK", file=sys.stderr, flush=True)
DagBag(dag_folder=sys.argv[1])
"""


def investigate_parse(samples: int) -> None:
    env = base_env(Path(tempfile.mkdtemp(prefix="investigate-home-")))
    files = {
        "ours": DAG_FILE,
        "one-task floor": BENCH_DIR / "floor_dags" / "parse_floor.py",
        "same-shape no-op": BENCH_DIR / "floor_dags" / "e2e_floor.py",
    }
    self_us: dict[str, list[int]] = {}
    for _ in range(3):  # one -X importtime run is noisy: keep the median per module
        done = subprocess.run(
            [PYTHON, "-X", "importtime", "-c", _IMPORTTIME, str(DAG_FILE)],
            env=env,
            capture_output=True,
            text=True,
        )
        for line in done.stderr.split("MARK", 1)[-1].splitlines():
            if line.startswith("import time:"):
                own, _, name = line.split(":", 1)[1].split("|")
                if "kalshi_provider" in name or "retry_policy" in name:
                    self_us.setdefault(name.strip(), []).append(int(own))
    print("Imports during DagBag(DAG file) that the one-task floor does not need (self time, median of 3):")
    for name, values in self_us.items():
        print(f"  {statistics.median(values) / 1000:6.2f} ms  {name}")
    total = sum(statistics.median(v) for v in self_us.values()) / 1000
    print(f"  {total:6.2f} ms  in all")
    print(f"\nDagBag(file) with all imports done first (DAG construction alone), median of {samples}:")
    times: dict[str, list[float]] = {name: [] for name in files}
    for _ in range(samples):
        for name, path in files.items():
            out = subprocess.run(
                [PYTHON, "-c", _PREIMPORTED_DAGBAG, str(path)], env=env, capture_output=True, text=True
            )
            times[name].append(float(out.stdout.strip().splitlines()[-1]))
    for name, values in times.items():
        print(f"  {name:18} {_median_ms(values)}")
    profile = subprocess.run(
        [
            PYTHON,
            "-c",
            _PREIMPORTED_DAGBAG.replace(
                "t0 = time.perf_counter()\nDagBag(dag_folder=sys.argv[1])",
                "import cProfile, pstats\nt0 = time.perf_counter()\npr = cProfile.Profile()\npr.enable()\n"
                "DagBag(dag_folder=sys.argv[1])\npr.disable()\n"
                "pstats.Stats(pr, stream=sys.stderr).sort_stats('cumulative').print_stats("
                "'_validate_params|apply_defaults|task_group.py|decorator.py')",
            ),
            str(DAG_FILE),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    print("\ncProfile of DAG construction (selected, cumulative):")
    for line in profile.stderr.splitlines():
        if "(" in line and ("validate_params" in line or "expand" in line or "__call__" in line):
            print("  " + line.strip()[:150])


# -- hook ------------------------------------------------------------------------------------------

_HOOK_STEPS = """
import json, os, statistics, sys, time
from cryptography.hazmat.primitives import serialization
from kalshi_provider.hooks.kalshi import KalshiHook
KalshiHook("kalshi_bench").get_total_resting_order_value()
rows = []
for _ in range(int(sys.argv[1])):
    hook = KalshiHook("kalshi_bench")
    marks = [time.perf_counter(), time.process_time()]
    stamps = []
    for step in (lambda: hook._connection, lambda: hook.settings, lambda: hook._session,
                 hook.get_total_resting_order_value, hook.get_total_resting_order_value):
        w, c = time.perf_counter(), time.process_time()
        step()
        stamps.append((time.perf_counter() - w, time.process_time() - c))
    rows.append(stamps)
names = ["get_connection", "settings", "session + key load", "1st request (new TCP)", "2nd request"]
for i, name in enumerate(names):
    wall = statistics.median(r[i][0] for r in rows) * 1000
    cpu = statistics.median(r[i][1] for r in rows) * 1000
    print(f"  {name:24} wall {wall:7.2f} ms   cpu {cpu:7.2f} ms")
pem = open(json.loads(os.environ["AIRFLOW_CONN_KALSHI_BENCH"])["extra"]["private_key_path"], "rb").read()
for skip in (False, True):
    t = time.process_time()
    for _ in range(10):
        serialization.load_pem_private_key(pem, None, unsafe_skip_rsa_key_validation=skip)
    print(f"  load_pem_private_key(unsafe_skip_rsa_key_validation={skip}): "
          f"{(time.process_time() - t) / 10 * 1000:.2f} ms CPU")
"""


_HOOK_IMPORT = """
import sys, time
import airflow.sdk.execution_time.task_runner  # what a task process has loaded before execute()
before = {m: m in sys.modules for m in ("requests", "urllib3", "tenacity", "cryptography", "httpx")}
t0 = time.perf_counter()
import kalshi_provider.hooks.kalshi
print(f"{(time.perf_counter() - t0) * 1000:.1f} {before}")
"""


def investigate_hook(samples: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="investigate-hook-"))
    with simulator(workdir=workdir) as ready:
        env = base_env(workdir)
        env["AIRFLOW_CONN_KALSHI_BENCH"] = kalshi_conn_json(ready)
        print(f"A new KalshiHook, step by step (median of {samples}):")
        done = subprocess.run(
            [PYTHON, "-c", _HOOK_STEPS, str(samples)], env=env, capture_output=True, text=True
        )
        print(done.stdout or done.stderr[-3000:])
        times, loaded = [], ""
        for _ in range(samples):
            out = subprocess.run([PYTHON, "-c", _HOOK_IMPORT], env=env, capture_output=True, text=True)
            value, loaded = out.stdout.strip().split(" ", 1)
            times.append(float(value))
        print(
            f"Importing kalshi_provider.hooks.kalshi in a process that has Airflow's task runner loaded: "
            f"median {statistics.median(times):.0f} ms (already loaded before it: {loaded})"
        )


# -- warehouse -------------------------------------------------------------------------------------


@contextmanager
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=("parse", "hook"))
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="investigate-home-"))
    {"parse": investigate_parse, "hook": investigate_hook}[args.what](args.samples)


if __name__ == "__main__":
    main()
