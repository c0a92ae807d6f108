"""Benchmarks of the hourly job against floors measured in the same run (issue 12).

    .venv/bin/python benchmarks/run.py [--rounds N] [--only write,parse,hook,e2e]
    .venv/bin/python benchmarks/run.py --only chart --rounds 3

Prints one table. Each timed figure is the median of its samples of ours beside the median of a
floor (the least the same job can cost), sampled in the same rounds with the order rotating every
sample, each sample in a fresh process (the hook's pair shares one, call by call). Counted figures
(Kalshi requests, warehouse round trips) come last, then the notes: each write's phases and a
profile of it. The chart section prints a second table, of the chart's answers (no floor: its
figures are absolute). benchmarks/RESULTS.md says what each figure means.
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

from harness import BENCH_DIR, REPO, RoundTripCounter, machine, run_worker
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from kalshi_provider.pipelines.settings import HOURLY_DAG_ID
from kalshi_provider.pipelines.warehouse import upgrade_warehouse
from kalshi_simulator import KalshiSimulator, generate_private_key, private_pem
from tests.fixtures.airflow import AirflowHome
from tests.fixtures.mariadb import throwaway_mariadb
from tests.fixtures.postgres import throwaway_postgres

DAG_FILE = REPO / "dags" / f"{HOURLY_DAG_ID}.py"
SAME_SHAPE = BENCH_DIR / "floor_dags" / "same_shape.py"
ONE_TASK = BENCH_DIR / "floor_dags" / "one_task.py"
ENGINES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB"}
SIDES = ("ours", "floor")
SECTIONS = ("write", "parse", "hook", "e2e", "chart")
#: What runs without --only: the chart's section (about 6 minutes more for 3 rounds) is asked for.
DEFAULT_SECTIONS = ("write", "parse", "hook", "e2e")
#: The chart's cases: (accounts in the warehouse, hours asked for), the windows and the range of
#: accounts a risk team reads. Each warehouse holds 91 days of hourly rows, 4 shards an account.
CHART_CASES = ((1, 24), (1, 24 * 90), (50, 24), (50, 24 * 7), (50, 24 * 30), (50, 24 * 90))
CHART_SEEDED_HOURS, CHART_SHARDS = 24 * 91, 4
Sample = dict[str, dict[str, float]]  # variant -> metric -> value


@dataclass(frozen=True)
class Row:
    """A timed line: median ``metric`` of variant ``ours`` over that of ``floor``, of measurement ``of``."""

    label: str
    of: str
    metric: str
    unit: str
    target: float | None
    ours: str = "ours"
    floor: str = "floor"
    scale: float = 1000.0  # seconds -> ms


# fmt: off
ROWS = [
    *(row for e, name in ENGINES.items() for row in (
        Row(f"Load task's write, one account-hour, {name}", f"write-{e}", "total", "ms", 1.5),
        Row("  the same, CPU time of the process", f"write-{e}", "cpu", "ms", None))),
    *(Row(f"First hour's write (creates the tables), {name}", f"first-{e}", "total", "ms", None)
      for e, name in ENGINES.items()),
    Row("DAG parse, against a no-op DAG of the same shape", "parse", "seconds", "ms", 1.10,
        floor="same_shape"),
    Row("DAG shape: the same-shape no-op DAG against a one-task DAG", "parse", "seconds", "ms", None,
        ours="same_shape", floor="one_task"),
    Row("Hook call (reused hook) against a bare signed requests call", "hook", "seconds", "ms", 1.15),
    Row("airflow dags test, wall", "e2e", "wall", "s", 1.20, scale=1),
    Row("airflow dags test, peak RSS of the process tree", "e2e", "peak_rss", "MiB", 1.20, scale=1),
    Row("airflow dags test, CPU time (user + sys)", "e2e", "cpu", "s", None, scale=1),
]
# fmt: on
#: Samples per round where one is cheap and noisy (a write is milliseconds in a process that takes
#: most of a second to start).
REPEATS = {"write": 3, "first": 1, "parse": 2, "hook": 1, "e2e": 1, "chart": 1}


def rotated(variants: dict[str, Callable[[int], dict[str, float]]]) -> Callable[[int], Sample]:
    """One sample of each variant, each in its own worker, the order rotating with the sample index."""
    names = list(variants)

    def measure(index: int) -> Sample:
        shift = index % len(names)
        return {name: variants[name](index) for name in names[shift:] + names[:shift]}

    return measure


class Bench:
    """The servers, simulator and Airflow homes one run shares, and what it counts on the way."""

    def __init__(self, workdir: Path, stack: ExitStack) -> None:
        self.workdir, self.stack = workdir, stack
        self.urls: dict[str, str] = {}
        self.shapes: dict[Path, dict[str, Any]] = {}  # the last parse of each DAG file
        self.signed_requests: list[int] = []  # per end-to-end run of ours
        self.counts: list[tuple[str, str, str, str]] = []  # label, unit, ours, floor
        self.notes: list[str] = []
        self.simulator: KalshiSimulator | None = None
        self.kalshi_conn = ""

    def measurements(self, sections: set[str]) -> dict[str, Callable[[int], Sample]]:
        found: dict[str, Callable[[int], Sample]] = {}
        if "write" in sections:
            for engine in ENGINES:
                url = self.warehouse(engine)
                self.check_floor(ENGINES[engine], url)
                for kind, first in (("write", False), ("first", True)):
                    found[f"{kind}-{engine}"] = rotated(
                        {side: self.writer(url, side, first) for side in SIDES}
                    )
        if "parse" in sections:
            env = AirflowHome(self.workdir / "parse-home").env
            files = {"ours": DAG_FILE, "same_shape": SAME_SHAPE, "one_task": ONE_TASK}
            found["parse"] = rotated(
                {name: lambda i, path=path: self.parse(env, path) for name, path in files.items()}
            )
        if sections & {"hook", "e2e"}:
            self.start_simulator()
        if "hook" in sections:
            env = AirflowHome(self.workdir / "hook-home").env
            env["AIRFLOW_CONN_KALSHI_BENCH"] = self.kalshi_conn
            found["hook"] = lambda i: self.hook(env, floor_first=i % 2 == 1)
        if "e2e" in sections:
            template = AirflowHome(self.workdir / "e2e-template").migrate()
            ours, floor = self.dags_folder(DAG_FILE), self.dags_folder(SAME_SHAPE)
            found["e2e"] = rotated(
                {
                    "ours": lambda i: self.e2e_ours(template, ours),
                    "floor": lambda i: self.dags_test(template, floor, "benchmark_same_shape"),
                }
            )
        if "chart" in sections:
            env = AirflowHome(self.workdir / "chart-home").env
            for accounts, hours in CHART_CASES:
                conn = self.chart_warehouse(accounts)
                found[f"chart-{accounts}x{hours}"] = lambda i, conn=conn, hours=hours: run_worker(
                    "chart", env, conn=conn, hours=hours
                )
        return found

    # -- the measurements and what they need -------------------------------------------------------

    def warehouse(self, engine: str) -> str:
        """A database where the tables of ours and of the floor exist (as every hour after the first)."""
        if engine == "sqlite":
            url = f"sqlite:///{self.workdir / 'warehouse.db'}"
        else:
            server = throwaway_postgres() if engine == "postgresql" else throwaway_mariadb()
            url = self.stack.enter_context(server)
        setup = create_engine(url)
        for table in ("ours", "floor"):
            upgrade_warehouse(setup, table_name=table)
        setup.dispose()
        self.urls[engine] = url
        return url

    def chart_warehouse(self, accounts: int) -> str:
        """A SQLite warehouse holding ``CHART_SEEDED_HOURS`` of ``accounts`` accounts, as the Airflow
        connection the chart reads (made once per number of accounts)."""
        path = self.workdir / f"chart-{accounts}.db"
        if not path.exists():
            rows = run_worker(
                "seed_chart",
                url=f"sqlite:///{path}",
                accounts=accounts,
                hours=CHART_SEEDED_HOURS,
                shards=CHART_SHARDS,
            )
            self.notes.append(
                f"Chart warehouse of {accounts} account(s): "
                + ", ".join(f"{table} {count:,} rows" for table, count in rows.items())
                + f" ({path.stat().st_size / 2**20:.0f} MiB SQLite file)."
            )
        return json.dumps({"conn_type": "sqlite", "host": str(path)})

    def check_floor(self, name: str, url: str) -> None:
        """Both sides write one hour into fresh tables, which must then hold the same rows."""
        rows = run_worker("check", url=url)
        self.notes.append(
            f"{name}: the floor's write left the same rows as ours (instants and ids aside): "
            + ", ".join(f"{suffix.strip('_')} {count}" for suffix, count in rows.items())
            + "."
        )

    @staticmethod
    def writer(url: str, side: str, first: bool) -> Callable[[int], dict[str, float]]:
        """One write of a new hour into the side's existing tables, or (``first``) the first hour's
        write, into tables that do not exist yet."""

        def write(index: int) -> dict[str, float]:
            table = f"t{uuid.uuid4().hex[:12]}" if first else side
            return run_worker("write", side=side, url=url, table=table, hour=1 + index, create=first)

        return write

    def parse(self, env: dict[str, str], path: Path) -> dict[str, float]:
        self.shapes[path] = run_worker("parse", env, path=str(path))
        return {"seconds": self.shapes[path]["seconds"]}

    def start_simulator(self) -> None:
        """The Kalshi simulator on loopback, in this process (the workers are the clients)."""
        self.simulator = self.stack.enter_context(KalshiSimulator())
        key, key_id = generate_private_key("rsa"), f"bench-{uuid.uuid4()}"
        self.simulator.add_account(key_id, key)
        conn = {"conn_type": "kalshi", "login": key_id, "password": private_pem(key).decode()}
        self.kalshi_conn = json.dumps(conn | {"host": self.simulator.base_url})

    def hook(self, env: dict[str, str], floor_first: bool) -> Sample:
        out = run_worker("hook", env, conn_id="kalshi_bench", calls=200, floor_first=floor_first)
        return {"ours": {"seconds": out["ours"]}, "floor": {"seconds": out["floor"]}}

    def dags_folder(self, source: Path) -> Path:
        """A folder holding only ``source``: ``airflow dags test`` parses its whole DAG folder."""
        folder = self.workdir / f"dags-{source.stem}"
        folder.mkdir()
        (folder / source.name).write_text(source.read_text())
        return folder

    def e2e_ours(self, template: AirflowHome, folder: Path) -> dict[str, float]:
        assert self.simulator is not None
        self.simulator.clear_requests()
        conns = {"kalshi_default": self.kalshi_conn}  # no warehouse connection: the embedded SQLite file
        result = self.dags_test(template, folder, HOURLY_DAG_ID, conns)
        self.signed_requests.append(sum(1 for request in self.simulator.requests if request.signature))
        return result

    def dags_test(
        self, template: AirflowHome, folder: Path, dag_id: str, conns: dict[str, str] | None = None
    ) -> dict[str, float]:
        """``airflow dags test DAG_ID`` in a fresh copy of a migrated home: wall time, CPU time and
        the peak summed RSS of the process tree."""
        home = template.copy(self.workdir / f"home-{time.monotonic_ns()}", dags_folder=folder)
        home.env.update(
            {f"AIRFLOW_CONN_{conn_id.upper()}": value for conn_id, value in (conns or {}).items()}
        )
        run = home.dags_test(dag_id, measure_memory=True)
        if run.returncode != 0 or run.state != "success":
            raise RuntimeError(f"airflow dags test {dag_id}: {run.state}\n{run.command.tail(3000)}")
        return {"wall": run.seconds, "cpu": run.command.cpu_seconds, "peak_rss": run.command.peak_rss_mib}

    # -- counted, not timed ------------------------------------------------------------------------

    def count(self, sections: set[str]) -> None:
        if "write" in sections:
            for engine, name in ENGINES.items():
                self.count_round_trips(engine, name)
                self.profile(engine, name)
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
            shape = self.shapes.get(DAG_FILE) or run_worker(
                "parse", AirflowHome(self.workdir / "parse-home").env, path=str(DAG_FILE)
            )
            attempts, calls, tries = shape["outage"]
            label = f"  worst case in an outage: {attempts} attempts x {calls} calls x {tries} task tries"
            self.counts.append((label, "requests", str(attempts * calls * tries), "-"))

    def count_round_trips(self, engine: str, name: str) -> None:
        """One write of each side of a new hour, counted: on the wire through a relay (PostgreSQL,
        MariaDB), or by SQLite's trace callback (it has no wire)."""
        url = self.urls[engine]
        relay = None if engine == "sqlite" else RoundTripCounter(make_url(url).port)
        if relay:
            url = make_url(url).set(port=relay.port).render_as_string(hide_password=False)
        found = {}
        for side in SIDES:
            counted = run_worker("write", side=side, url=url, table=side, hour=100_000, count=True)
            found[side] = counted if relay is None else relay.take()
        what = "statements SQLite ran" if engine == "sqlite" else "round trips on the wire"
        self.counts.append(
            (
                f"Warehouse {what} per load task (= per account per run), {name}",
                "(connections)",
                *(f"{found[side]['round_trips']} ({found[side]['connections']})" for side in SIDES),
            )
        )

    def profile(self, engine: str, name: str) -> None:
        found = run_worker(
            "write", side="ours", url=self.urls[engine], table="ours", hour=200_000, profile=True
        )
        self.notes.append(
            f"Profile of one load task's write, {name} (cProfile, cumulative ms; the profiler inflates "
            "Python time): " + "; ".join(f"{label.strip()} {ms:.1f}" for label, ms in found.items())
        )


# -- the table ---------------------------------------------------------------------------------------


def table(samples: dict[str, list[Sample]], loads: dict[str, list[float]], counts: list) -> str:
    header = ("figure", "unit", "ours", "floor", "ratio", "target", "status", "n", "ours min-max", "load max")
    lines = []
    for row in ROWS:
        ours = [sample[row.ours][row.metric] * row.scale for sample in samples.get(row.of, [])]
        floor = [sample[row.floor][row.metric] * row.scale for sample in samples.get(row.of, [])]
        if not ours:
            continue
        ratio = statistics.median(ours) / statistics.median(floor)
        target = "-" if row.target is None else f"<= {row.target:.2f}"
        status = "info" if row.target is None else ("met" if ratio <= row.target else "MISSED")
        spread = f"{_fmt(min(ours))}-{_fmt(max(ours))}"
        medians = (_fmt(statistics.median(ours)), _fmt(statistics.median(floor)))
        lines.append(
            (
                row.label,
                row.unit,
                *medians,
                f"{ratio:.2f}",
                target,
                status,
                str(len(ours)),
                spread,
                f"{max(loads[row.of]):.1f}",
            )
        )
    lines += [
        (label, unit, ours, floor, "-", "-", "count", "1", "-", "-") for label, unit, ours, floor in counts
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]

    def render(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    return "\n".join(
        [render(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(render, lines)]
    )


def chart_table(samples: dict[str, list[Sample]]) -> str:
    """One line per chart case and route: medians over the rounds."""
    header = (
        "chart answer",
        "status",
        "resolution",
        "points",
        "bytes",
        "ms",
        "CPU ms",
        "traced peak MiB",
        "RSS growth MiB",
        "n",
    )
    lines = []
    for accounts, hours in CHART_CASES:
        runs = samples.get(f"chart-{accounts}x{hours}", [])
        for route in ("data", "chart"):
            if not runs:
                continue
            found = [run[route] for run in runs]

            def median(metric: str, found: list = found) -> float:
                return statistics.median(sample.get(metric, 0) for sample in found)

            resolution = found[0].get("resolution_hours")
            lines.append(
                (
                    f"/kalshi/{route}?hours={hours}, {accounts} account(s) x {CHART_SHARDS} shards",
                    "/".join(sorted({str(int(sample["status"])) for sample in found})),
                    "-" if route == "chart" or resolution is None else f"{resolution:g} h",
                    "-" if route == "chart" else f"{median('points'):,.0f}",
                    f"{median('bytes'):,.0f}",
                    _fmt(median("ms")),
                    _fmt(median("cpu_ms")),
                    _fmt(median("traced_peak_mib")),
                    _fmt(median("rss_growth_mib")),
                    str(len(found)),
                )
            )
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]

    def render(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    return "\n".join(
        [render(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(render, lines)]
    )


def _fmt(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def notes(samples: dict[str, list[Sample]], bench: Bench) -> list[str]:
    found = []
    for engine, name in ENGINES.items():
        runs = samples.get(f"write-{engine}")
        if runs:
            median = {
                side: {
                    phase: statistics.median(run[side][phase] for run in runs) * 1000
                    for phase in runs[0][side]
                }
                for side in SIDES
            }
            phases = {
                side: ", ".join(f"{p} {ms:.2f}" for p, ms in median[side].items() if p != "total")
                for side in SIDES
            }
            fixed = sum(median["ours"][phase] for phase in ("engine", "connect", "dispose"))
            found.append(
                f"{name} write, medians in ms: ours {phases['ours']}; floor {phases['floor']}. A fresh "
                f"engine's creation, first connection and dispose alone take {fixed:.1f}, against a 1.5x "
                f"budget of {1.5 * median['floor']['total']:.1f} for the whole write."
            )
    found += bench.notes
    if {DAG_FILE, SAME_SHAPE, ONE_TASK} <= set(bench.shapes):
        ours, floor, one_task = (bench.shapes[path] for path in (DAG_FILE, SAME_SHAPE, ONE_TASK))
        beyond = set(one_task["imported"])
        found.append(
            "DAG shape: the no-op DAG has "
            + ("the same shape" if ours["shape"] == floor["shape"] else "ANOTHER SHAPE (fix the floor)")
            + " (schedule, params and their schemas, default_args, task ids, mapping, outlets, retries, "
            "execution timeouts, dependencies). Beyond what the one-task DAG imports, it imports "
            f"{sorted(set(floor['imported']) - beyond)} and the DAG file "
            f"{sorted(set(ours['imported']) - beyond)}."
        )
    return found


def byte_compile() -> None:
    """Compile every module the workers import, as an installed Python has them: with
    PYTHONDONTWRITEBYTECODE set (some shells and CI images set it) each worker would compile
    Airflow's sources again, and the parse and end-to-end times would measure that."""
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
        "--rounds", type=int, default=7, help=f"rounds (default 7); samples a round: {REPEATS}"
    )
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT_SECTIONS),
        help=f"comma-separated subset of {SECTIONS} (default: all but chart)",
    )
    args = parser.parse_args()
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    if not sections <= set(SECTIONS):
        parser.error(f"unknown section(s) {sorted(sections - set(SECTIONS))}; choose from {SECTIONS}")
    started = time.perf_counter()
    load = lambda: " ".join(f"{x:.2f}" for x in os.getloadavg())  # noqa: E731
    print(f"command: .venv/bin/python benchmarks/run.py {shlex.join(sys.argv[1:])}".rstrip())
    print(f"machine: {machine()}")
    print(f"load average at start: {load()}", flush=True)
    byte_compile()
    samples: dict[str, list[Sample]] = {}
    loads: dict[str, list[float]] = {}
    with ExitStack() as stack:
        bench = Bench(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kalshi-bench-"))), stack)
        measurements = bench.measurements(sections)
        for round_ in range(args.rounds):
            for name, measure in measurements.items():
                for _ in range(REPEATS[name.split("-")[0]]):
                    loads.setdefault(name, []).append(os.getloadavg()[0])
                    taken = samples.setdefault(name, [])
                    taken.append(measure(len(taken)))
            print(
                f"round {round_ + 1}/{args.rounds} at {time.perf_counter() - started:.0f} s, load {load()}",
                flush=True,
            )
        bench.count(sections)
    if sections - {"chart"}:
        print()
        print(table(samples, loads, bench.counts))
    if "chart" in sections:
        print()
        print(chart_table(samples))
    print()
    for note in notes(samples, bench):
        print(f"- {note}")
    print(f"\nload average at end: {load()}; total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
