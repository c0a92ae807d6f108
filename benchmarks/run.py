"""Benchmarks of the hourly job against floors measured in the same run (issue 12).

    .venv/bin/python benchmarks/run.py [--rounds N] [--only write,parse,hook,e2e]

Prints one table. Each timed figure is the median of its samples of ours beside the median of a
floor (the least the same job can cost), sampled in the same rounds with the order rotating every
round, each sample in its own process. Counted figures (Kalshi requests, warehouse round trips)
come last. benchmarks/RESULTS.md says what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import BENCH_DIR, REPO, RoundTripCounter, dags_test, load_average, machine, run_worker
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from kalshi_provider.pipelines.settings import HOURLY_DAG_ID
from kalshi_provider.pipelines.warehouse import prepare_tables
from kalshi_simulator import KalshiSimulator, generate_private_key, private_pem
from tests.fixtures.airflow import isolated_airflow_env, migrate_airflow_home
from tests.fixtures.mariadb import throwaway_mariadb
from tests.fixtures.postgres import throwaway_postgres

DAG_FILE = REPO / "dags" / f"{HOURLY_DAG_ID}.py"
SAME_SHAPE = BENCH_DIR / "floor_dags" / "same_shape.py"
ONE_TASK = BENCH_DIR / "floor_dags" / "one_task.py"
ENGINES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB"}
SECTIONS = ("write", "parse", "hook", "e2e")
Sample = dict[str, dict[str, float]]  # variant -> metric -> value


@dataclass(frozen=True)
class Row:
    """One timed line of the table: ``metric`` of variant ``ours`` against ``floor`` of measurement ``of``."""

    section: str
    label: str
    of: str
    metric: str
    unit: str
    target: float | None
    ours: str = "ours"
    floor: str = "floor"
    scale: float = 1000.0  # seconds -> ms


ROWS = [
    *(
        Row("write", f"Load task's write, one account-hour, {name}", f"write-{e}", "total", "ms", 1.5)
        for e, name in ENGINES.items()
    ),
    *(
        Row("write", f"First hour's write (creates the tables), {name}", f"first-{e}", "total", "ms", None)
        for e, name in ENGINES.items()
    ),
    Row(
        "parse",
        "DAG parse, against a no-op DAG of the same shape",
        "parse",
        "seconds",
        "ms",
        1.10,
        floor="same_shape",
    ),
    Row(
        "parse",
        "DAG shape: the same-shape no-op DAG against a one-task DAG",
        "parse",
        "seconds",
        "ms",
        None,
        ours="same_shape",
        floor="one_task",
    ),
    Row("hook", "Hook call (reused hook) against a bare signed requests call", "hook", "seconds", "ms", 1.15),
    Row("e2e", "airflow dags test, wall", "e2e", "wall", "s", 1.20, scale=1),
    Row("e2e", "airflow dags test, peak RSS of the process tree", "e2e", "peak_rss", "MiB", 1.20, scale=1),
    Row("e2e", "airflow dags test, CPU time (user + sys)", "e2e", "cpu", "s", None, scale=1),
]
#: Samples per round: a write is milliseconds in a process that takes most of a second to start.
REPEATS = {"write": 3}


def rotated(variants: dict[str, Callable[[int], dict[str, float]]]) -> Callable[[int], Sample]:
    """One sample of each variant, each in its own worker, the order rotating every round."""
    names = list(variants)

    def measure(round_: int) -> Sample:
        shift = round_ % len(names)
        return {name: variants[name](round_) for name in names[shift:] + names[:shift]}

    return measure


class Bench:
    """The servers, simulator and Airflow homes one run shares, and what it counted on the way."""

    def __init__(self, workdir: Path, stack: ExitStack) -> None:
        self.workdir, self.stack = workdir, stack
        self.urls: dict[str, str] = {}
        self.notes: list[str] = []
        self.counts: list[tuple[str, str, Any, Any]] = []  # label, unit, ours, floor
        self.signed_requests: list[int] = []
        self.simulator: KalshiSimulator | None = None
        self.kalshi_conn = ""

    def measurements(self, sections: set[str]) -> dict[str, Callable[[int], Sample]]:
        found: dict[str, Callable[[int], Sample]] = {}
        if "write" in sections:
            for engine in ENGINES:
                url = self.warehouse(engine)
                found[f"write-{engine}"] = rotated(
                    {
                        side: lambda r, url=url, side=side: run_worker(
                            "write", side=side, url=url, table=side, hour=1 + r
                        )
                        for side in ("ours", "floor")
                    }
                )
                found[f"first-{engine}"] = rotated(
                    {
                        side: lambda r, url=url, side=side: run_worker(
                            "write",
                            side=side,
                            url=url,
                            table=f"t{uuid.uuid4().hex[:12]}",
                            hour=0,
                            create=True,
                        )
                        for side in ("ours", "floor")
                    }
                )
        if "parse" in sections:
            env = isolated_airflow_env(self.workdir / "parse-home")
            files = {"ours": DAG_FILE, "same_shape": SAME_SHAPE, "one_task": ONE_TASK}
            found["parse"] = rotated(
                {
                    name: lambda r, path=path: self.parsed(run_worker("parse", env, path=str(path)), path)
                    for name, path in files.items()
                }
            )
        if sections & {"hook", "e2e"}:
            self.start_simulator()
        if "hook" in sections:
            env = isolated_airflow_env(self.workdir / "hook-home")
            env["AIRFLOW_CONN_KALSHI_BENCH"] = self.kalshi_conn

            def hook(round_: int) -> Sample:
                out = run_worker("hook", env, conn_id="kalshi_bench", calls=200, floor_first=round_ % 2 == 1)
                self.attempts = out["attempts"]
                return {"ours": {"seconds": out["ours"]}, "floor": {"seconds": out["floor"]}}

            found["hook"] = hook
        if "e2e" in sections:
            template = migrate_airflow_home(self.workdir / "e2e-template")
            ours, floor = self.dags_folder(DAG_FILE), self.dags_folder(SAME_SHAPE)
            found["e2e"] = rotated(
                {
                    "ours": lambda r: self.e2e_ours(template, ours),
                    "floor": lambda r: dags_test(template, self.workdir, floor, "benchmark_same_shape", {}),
                }
            )
        return found

    # -- what the measurements need ----------------------------------------------------------------

    def warehouse(self, engine: str) -> str:
        """A database with the tables of ours and of the floor already there (every hour after the first)."""
        if engine == "sqlite":
            url = f"sqlite:///{self.workdir / 'warehouse.db'}"
        else:
            url = self.stack.enter_context(
                throwaway_postgres() if engine == "postgresql" else throwaway_mariadb()
            )
        setup = create_engine(url)
        for table in ("ours", "floor"):
            prepare_tables(setup, table_name=table)
        setup.dispose()
        self.urls[engine] = url
        return url

    def start_simulator(self) -> None:
        self.simulator = self.stack.enter_context(KalshiSimulator())
        key, key_id = generate_private_key("rsa"), f"bench-{uuid.uuid4()}"
        self.simulator.add_account(key_id, key)
        self.kalshi_conn = json.dumps(
            {
                "conn_type": "kalshi",
                "login": key_id,
                "password": private_pem(key).decode(),
                "host": self.simulator.base_url,
            }
        )

    def dags_folder(self, source: Path) -> Path:
        """A folder holding only ``source``: ``airflow dags test`` parses its whole DAG folder."""
        folder = self.workdir / f"dags-{source.stem}"
        folder.mkdir()
        (folder / source.name).write_text(source.read_text())
        return folder

    def e2e_ours(self, template: Path, folder: Path) -> dict[str, float]:
        assert self.simulator is not None
        self.simulator.clear_requests()
        result = dags_test(
            template, self.workdir, folder, HOURLY_DAG_ID, {"kalshi_default": self.kalshi_conn}
        )
        self.signed_requests.append(sum(1 for r in self.simulator.requests if r.signature))
        return result

    def parsed(self, result: dict[str, Any], path: Path) -> dict[str, float]:
        self.shapes = getattr(self, "shapes", {}) | {path: result}
        return {"seconds": result["seconds"]}

    # -- counted, not timed ------------------------------------------------------------------------

    def count(self, sections: set[str], profile: bool) -> None:
        if "write" in sections:
            for engine, name in ENGINES.items():
                self.count_round_trips(engine, name)
                if profile:
                    found = run_worker(
                        "write", side="ours", url=self.urls[engine], table="ours", hour=200_000, profile=True
                    )
                    self.notes.append(
                        f"Profile of one load task's write, {name} (cProfile, ms; the profiler inflates "
                        "Python time): "
                        + "; ".join(f"{label.strip()} {ms:.1f}" for label, ms in found.items())
                    )
        if "e2e" in sections:
            runs = len(self.signed_requests)
            self.counts.append(
                (
                    f"Signed Kalshi requests per account per hourly run (median of {runs} runs)",
                    "requests",
                    f"{statistics.median(self.signed_requests):g}",
                    "-",
                )
            )
            retries = self.fetch_retries()
            attempts = getattr(self, "attempts", None)
            if attempts is None:
                env = isolated_airflow_env(self.workdir / "hook-home")
                env["AIRFLOW_CONN_KALSHI_BENCH"] = self.kalshi_conn
                attempts = run_worker("hook", env, conn_id="kalshi_bench", calls=1, floor_first=False)[
                    "attempts"
                ]
            self.counts.append(
                (
                    f"  worst case in an outage: {attempts} hook attempts x {retries + 1} task tries",
                    "requests",
                    attempts * (retries + 1),
                    "-",
                )
            )

    def count_round_trips(self, engine: str, name: str) -> None:
        url = self.urls[engine]
        counter = None if engine == "sqlite" else RoundTripCounter(make_url(url).port)
        if counter:
            url = make_url(url).set(port=counter.port).render_as_string(hide_password=False)
        found = {}
        for side in ("ours", "floor"):
            out = run_worker("write", side=side, url=url, table=side, hour=100_000, count=True)
            found[side] = out if counter is None else counter.take()
        what = "statements SQLite ran" if engine == "sqlite" else "round trips on the wire"
        self.counts.append(
            (
                f"Warehouse {what} per load task (per account per run), {name}",
                "(connections)",
                *(
                    f"{found[side]['round_trips']} ({found[side]['connections']})"
                    for side in ("ours", "floor")
                ),
            )
        )

    def fetch_retries(self) -> int:
        shape = getattr(self, "shapes", {}).get(DAG_FILE) or run_worker(
            "parse", isolated_airflow_env(self.workdir / "parse-home"), path=str(DAG_FILE)
        )
        (fetch,) = [task for task in shape["shape"]["tasks"] if task[0].endswith(".fetch")]
        return fetch[3][0]


# -- the table ---------------------------------------------------------------------------------------


def table(
    rows: list[Row], samples: dict[str, list[Sample]], loads: dict[str, list[float]], bench: Bench
) -> str:
    header = ("figure", "unit", "ours", "floor", "ratio", "target", "status", "n", "ours min-max", "load")
    lines = []
    for row in rows:
        ours = [s[row.ours][row.metric] * row.scale for s in samples.get(row.of, [])]
        floor = [s[row.floor][row.metric] * row.scale for s in samples.get(row.of, [])]
        if not ours:
            continue
        ratio = statistics.median(ours) / statistics.median(floor)
        status = "info" if row.target is None else ("met" if ratio <= row.target else "MISSED")
        lines.append(
            (
                row.label,
                row.unit,
                _fmt(statistics.median(ours)),
                _fmt(statistics.median(floor)),
                f"{ratio:.2f}",
                "-" if row.target is None else f"<= {row.target:.2f}",
                status,
                str(len(ours)),
                f"{_fmt(min(ours))}-{_fmt(max(ours))}",
                f"{max(loads[row.of]):.1f}",
            )
        )
    for label, unit, ours, floor in bench.counts:
        lines.append((label, unit, str(ours), str(floor), "-", "-", "count", "1", "-", "-"))
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    render = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join(
        [render(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(render, lines)]
    )


def _fmt(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def notes(samples: dict[str, list[Sample]], bench: Bench) -> list[str]:
    found = list(bench.notes)
    for engine, name in ENGINES.items():
        runs = samples.get(f"write-{engine}")
        if runs:
            phases = {
                side: ", ".join(
                    f"{p} {statistics.median(s[side][p] for s in runs) * 1000:.2f}"
                    for p in runs[0][side]
                    if p != "total"
                )
                for side in ("ours", "floor")
            }
            found.append(f"{name} write, medians in ms: ours {phases['ours']}; floor {phases['floor']}.")
    shapes = getattr(bench, "shapes", {})
    if {DAG_FILE, SAME_SHAPE, ONE_TASK} <= set(shapes):
        ours, floor, one_task = (shapes[path] for path in (DAG_FILE, SAME_SHAPE, ONE_TASK))
        same = ours["shape"] == floor["shape"]
        beyond = set(one_task["imported"])
        found.append(
            "DAG shape: the no-op DAG has "
            + ("the same shape" if same else "ANOTHER SHAPE (fix the floor)")
            + " (schedule, params and schemas, default_args, task ids, mapping, outlets, retries, "
            f"dependencies). Beyond what the one-task DAG imports, it imports "
            f"{sorted(set(floor['imported']) - beyond)} and the DAG file "
            f"{sorted(set(ours['imported']) - beyond)}."
        )
    if "hook" in samples:
        found.append("Hook: measured on this branch; re-run after the hook hardening is merged.")
    return found


def byte_compile() -> None:
    """Compile every module the workers import, as an installed Python has them: with
    PYTHONDONTWRITEBYTECODE set (some shells and CI images set it) each worker would otherwise compile
    Airflow's sources again, and parse and end-to-end times would measure that."""
    folders = [
        sysconfig.get_paths()["purelib"],
        *(REPO / d for d in ("plugins", "simulator", "dags", "benchmarks")),
    ]
    command = [sys.executable, "-m", "compileall", "-q", "-j", "0", *map(str, folders)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=900)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=7, help="rounds of samples (default 7; writes: 3 a round)"
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--profile", action="store_true", help="also profile one write per engine (cProfile)")
    args = parser.parse_args()
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    if not sections <= set(SECTIONS):
        parser.error(f"unknown section(s) {sorted(sections - set(SECTIONS))}; choose from {SECTIONS}")
    started = time.perf_counter()
    print(f"command: .venv/bin/python benchmarks/run.py {shlex.join(sys.argv[1:])}".rstrip())
    print(f"machine: {machine()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    byte_compile()
    samples: dict[str, list[Sample]] = {}
    loads: dict[str, list[float]] = {}
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kalshi-bench-")))
        bench = Bench(workdir, stack)
        measurements = bench.measurements(sections)
        for round_ in range(args.rounds):
            for name, measure in measurements.items():
                for _ in range(REPEATS.get(name.split("-")[0], 1)):
                    loads.setdefault(name, []).append(load_average())
                    taken = samples.setdefault(name, [])
                    taken.append(measure(len(taken)))  # the sample's index: it rotates the order
            print(
                f"round {round_ + 1}/{args.rounds} done at {time.perf_counter() - started:.0f} s, "
                f"load {load_average():.2f}",
                flush=True,
            )
        bench.count(sections, args.profile)
    print()
    print(table([row for row in ROWS if row.section in sections], samples, loads, bench))
    print()
    for note in notes(samples, bench):
        print(f"- {note}")
    print(
        f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"total {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
