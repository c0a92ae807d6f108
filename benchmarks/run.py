"""Benchmarks of the Kalshi provider against their floors (issue 6).

    .venv/bin/python benchmarks/run.py [--quick] [--repeat N] [--only parse,hook,warehouse,e2e]
                                       [--json PATH] [--no-sdk] [--no-postgres]

For each figure: the median of repeated runs of our code, the median of a floor (the least the same
job can cost) measured in the same run, alternating with ours, their ratio and the target.
Every measurement runs in its own process; the Kalshi simulator runs as a separate process on
loopback. See benchmarks/RESULTS.md for the latest figures and what they mean.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import (  # noqa: E402
    BENCH_DIR,
    PYTHON,
    REPO,
    base_env,
    kalshi_conn_json,
    load_average,
    machine,
    median,
    run_json_worker,
    simulator,
    spread,
)

SECTIONS = ("parse", "hook", "warehouse", "e2e")
SDK_DISTS = ("kalshi-python-sync", "kalshi_python")
DEFAULT_SDK_VENV = Path(tempfile.gettempdir()) / "kalshi-sdk-bench-venv"


@dataclass
class Figure:
    name: str
    unit: str
    ours: list[float]
    floor: list[float]
    target: float | None  # None: shown for information, no target
    scale: float = 1.0  # multiply samples by this for display (e.g. 1000 for s -> ms)

    @property
    def ours_median(self) -> float:
        return median(self.ours) * self.scale

    @property
    def floor_median(self) -> float:
        return median(self.floor) * self.scale

    @property
    def ratio(self) -> float:
        return self.ours_median / self.floor_median if self.floor and self.ours else float("nan")

    @property
    def status(self) -> str:
        if self.target is None:
            return "info"
        if not self.ours or not self.floor:
            return "n/a"
        return "met" if self.ratio <= self.target else "MISSED"


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def print_table(figures: list[Figure]) -> str:
    header = (
        "figure",
        "unit",
        "ours (median)",
        "floor (median)",
        "ratio",
        "target",
        "status",
        "n",
        "ours range",
    )
    rows = [
        (
            f.name,
            f.unit,
            _fmt(f.ours_median),
            _fmt(f.floor_median),
            f"{f.ratio:.2f}" if f.ratio == f.ratio else "-",
            f"<= {f.target:.2f}" if f.target is not None else "-",
            f.status,
            f"{len(f.ours)}/{len(f.floor)}",
            spread([x * f.scale for x in f.ours]),
        )
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join(lines)


# -- DAG parse -------------------------------------------------------------------------------------


def bench_parse(workdir: Path, samples: int) -> tuple[list[Figure], list[str]]:
    home = workdir / "parse-home"
    home.mkdir()
    env = base_env(home)
    files = {
        "ours": REPO / "dags" / "kalshi_total_resting_order_value.py",
        "floor": BENCH_DIR / "floor_dags" / "parse_floor.py",
        "shape": BENCH_DIR / "floor_dags" / "e2e_floor.py",
    }
    dagbag: dict[str, list[float]] = {name: [] for name in files}
    process: dict[str, list[float]] = {name: [] for name in files}
    last: dict[str, dict[str, Any]] = {}
    names = list(files)
    for round_ in range(samples):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:  # rotate so no file always runs first
            t0 = time.perf_counter()
            result = run_json_worker([PYTHON, str(BENCH_DIR / "bench_parse.py"), str(files[name])], env)
            process[name].append(time.perf_counter() - t0)
            dagbag[name].append(result["dagbag_s"])
            last[name] = result
    figures = [
        Figure(
            "DAG parse: DagBag(file) in a fresh interpreter",
            "ms",
            dagbag["ours"],
            dagbag["floor"],
            1.10,
            1000,
        ),
        Figure(
            "DAG parse: same, floor = no-op DAG of the same shape",
            "ms",
            dagbag["ours"],
            dagbag["shape"],
            None,
            1000,
        ),
        Figure(
            "DAG parse: whole fresh process (incl. Airflow import)",
            "s",
            process["ours"],
            process["floor"],
            None,
        ),
    ]
    ours, floor = last["ours"], last["floor"]
    extra = sorted(set(ours["new_module_names"]) - set(floor["new_module_names"]))
    notes = [
        f"DAG parse: the DAG file imports {len(extra)} modules the one-task floor does not: "
        f"{', '.join(extra)}. Tasks: {ours['tasks']} (floor {floor['tasks']}; the same-shape no-op DAG has "
        f"{last['shape']['tasks']}, the same params, mapped task group and outlet, and imports only "
        "airflow.sdk)."
    ]
    return figures, notes


# -- hook call -------------------------------------------------------------------------------------


def sdk_python(venv: Path) -> tuple[str | None, str]:
    """The SDK venv's interpreter, creating the venv and installing the SDK when needed."""
    python = venv / "bin" / "python"
    probe = (
        "import importlib.util as u, sys; sys.exit(0 if any(u.find_spec(m) for m in "
        "('kalshi_python_sync', 'kalshi_python')) else 1)"
    )
    if python.exists() and subprocess.run([str(python), "-c", probe]).returncode == 0:
        return str(python), f"SDK venv {venv} (reused)"
    base = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable
    made = subprocess.run([base, "-m", "venv", str(venv)], capture_output=True, text=True)
    if made.returncode != 0:
        return None, f"could not create the SDK venv {venv}: {made.stderr.strip()[-300:]}"
    reasons = []
    for dist in SDK_DISTS:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", dist],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode == 0 and subprocess.run([str(python), "-c", probe]).returncode == 0:
            return str(python), f"SDK venv {venv} (installed {dist})"
        errors = [line for line in done.stderr.splitlines() if "ERROR" in line] or [done.stderr.strip()]
        reasons.append(f"{dist}: {errors[-1][-200:] if errors else 'not importable after install'}")
    return None, "the official SDK would not install: " + "; ".join(reasons)


def bench_hook(
    workdir: Path, samples: int, calls: int, sdk: bool, sdk_venv: Path
) -> tuple[list[Figure], list[str]]:
    home = workdir / "hook-home"
    home.mkdir()
    env = base_env(home)
    notes: list[str] = []
    with simulator(workdir=workdir) as ready:
        fast_file = workdir / "sim.json"
        fast_file.write_text(json.dumps(ready))
        hook = run_json_worker(
            [
                PYTHON,
                str(BENCH_DIR / "bench_hook.py"),
                "--ready",
                str(fast_file),
                "--calls",
                str(calls),
                "--samples",
                str(samples),
            ],
            env,
        )
        sdk_result: dict[str, Any] | None = None
        if sdk:
            python, how = sdk_python(sdk_venv)
            if python is None:
                notes.append(f"Official SDK: not measured; {how}.")
            else:
                try:
                    sdk_result = run_json_worker(
                        [
                            python,
                            str(BENCH_DIR / "bench_sdk.py"),
                            "--ready",
                            str(fast_file),
                            "--calls",
                            str(calls),
                            "--samples",
                            str(samples),
                        ],
                    )
                except RuntimeError as err:
                    notes.append(f"Official SDK: the worker failed: {str(err)[-400:]}")
                if sdk_result and "error" in sdk_result:
                    notes.append(
                        f"Official SDK ({sdk_result.get('sdk', '?')}): cannot make the call: "
                        f"{sdk_result['error']}"
                    )
                    sdk_result = None
        else:
            notes.append("Official SDK: skipped (--no-sdk).")
    res, diag = hook["results"], hook["diagnostics"]
    figures = [
        Figure(
            "Hook call: steady state, reused hook (wall)",
            "ms/call",
            res["hook"]["wall"],
            res["floor"]["wall"],
            1.15,
            1000,
        ),
        Figure("Hook call: client CPU", "ms/call", res["hook"]["cpu"], res["floor"]["cpu"], None, 1000),
    ]
    if sdk_result:
        figures.append(
            Figure(
                f"Hook call: official SDK {sdk_result['sdk']} (wall)",
                "ms/call",
                sdk_result["wall"],
                res["floor"]["wall"],
                None,
                1000,
            )
        )
        figures.append(
            Figure(
                "Hook call: official SDK, client CPU",
                "ms/call",
                sdk_result["cpu"],
                res["floor"]["cpu"],
                None,
                1000,
            )
        )
        notes.append(
            f"Official SDK ({sdk_result['sdk']}, separate venv, same simulator, not interleaved with ours): "
            f"signs {sdk_result['signatures_per_request']} times per request "
            "(once in update_params_for_auth, "
            "again in call_api); the floor signs once."
        )
    ms = lambda xs: f"{median(xs) * 1000:.2f} ms"  # noqa: E731
    counters = hook["steady_counters"]
    notes += [
        f"Hook call: over {counters['calls']} measured hook/floor calls, {counters['tcp_connects']} new TCP "
        f"connections and {counters['key_loads']} private-key parses (session and key are reused). "
        "A new hook "
        f"per call: {ms(diag['hook_new_per_call']['wall'])} wall, {ms(diag['hook_new_per_call']['cpu'])} CPU "
        f"(connection lookup, one RSA key load with cryptography's key validation, a new TCP connection).",
        f"Hook call: one RSA-PSS signature alone costs {ms(diag['sign_only']['cpu'])} CPU; the floor with "
        "Session.trust_env=False (no per-request proxy lookup in os.environ, "
        f"{hook['environ_size']} variables "
        f"here): {ms(diag['floor_trust_env_off']['wall'])} vs {ms(diag['floor']['wall'])} wall, "
        f"{ms(diag['floor_trust_env_off']['cpu'])} vs {ms(diag['floor']['cpu'])} CPU.",
    ]
    return figures, notes


# -- warehouse -------------------------------------------------------------------------------------


def bench_warehouse(samples: int, postgres: bool) -> tuple[list[Figure], list[str]]:
    argv = [PYTHON, str(BENCH_DIR / "bench_warehouse.py"), "--samples", str(samples)]
    if not postgres:
        argv.append("--no-postgres")
    env = base_env(Path(tempfile.mkdtemp(prefix="warehouse-home-")))
    result = run_json_worker(argv, env)
    rows = result["rows"]
    figures = [
        Figure(
            f"Warehouse: upsert {rows:,} account-hours, SQLite file",
            "ms",
            result["sqlite"]["ours"],
            result["sqlite"]["floor"],
            1.5,
            1000,
        ),
    ]
    notes = []
    if "postgres" in result:
        figures.append(
            Figure(
                f"Warehouse: upsert {rows:,} account-hours, PostgreSQL",
                "ms",
                result["postgres"]["ours"],
                result["postgres"]["floor"],
                1.5,
                1000,
            )
        )
    else:
        figures.append(
            Figure(f"Warehouse: upsert {rows:,} account-hours, PostgreSQL", "ms", [], [], 1.5, 1000)
        )
        notes.append(f"Warehouse, PostgreSQL: not measured: {result.get('postgres_error')}")
    figures.append(
        Figure(
            "Warehouse: same, totals only (no breakdown rows), SQLite",
            "ms",
            result["sqlite_totals_only"]["ours"],
            result["sqlite_totals_only"]["floor"],
            None,
            1000,
        )
    )
    if "postgres_totals_only" in result:
        figures.append(
            Figure(
                "Warehouse: same, totals only, PostgreSQL",
                "ms",
                result["postgres_totals_only"]["ours"],
                result["postgres_totals_only"]["floor"],
                None,
                1000,
            )
        )
    for key, label in (("sqlite_one_row", "SQLite"), ("postgres_one_row", "PostgreSQL")):
        if key in result:
            figures.append(
                Figure(
                    f"Warehouse: one account-hour per call (a load task's write), {label}",
                    "ms/call",
                    result[key]["ours"],
                    result[key]["floor"],
                    None,
                    1000,
                )
            )
    notes.append(
        "Warehouse: each snapshot carries one breakdown entry (as Kalshi sends); the floor inserts the "
        "same rows "
        f"into both tables with DBAPI executemany in one transaction. SQLite {result.get('sqlite_version')}, "
        f"PostgreSQL {result.get('postgres_version', '-')} (throwaway server, fsync off as in the tests)."
    )
    return figures, notes


# -- end to end ------------------------------------------------------------------------------------


def bench_e2e(workdir: Path, samples: int) -> tuple[list[Figure], list[str]]:
    import e2e

    with simulator(workdir=workdir) as ready:
        runs = e2e.measure(workdir, kalshi_conn_json(ready), samples)
    failed = [r for rs in runs.values() for r in rs if r["returncode"] != 0 or r["state"] != "success"]
    notes = []
    if failed:
        notes.append(f"End to end: {len(failed)} run(s) failed; last log:\n{failed[-1].get('log_tail', '')}")
    ours_rows = {r["warehouse_rows"] for r in runs["ours"]}
    notes.append(
        f"End to end: airflow dags test, simulator, embedded SQLite warehouse (rows written per run: "
        f"{sorted(ours_rows)}); largest single process (ru_maxrss) ours "
        f"{median([r['maxrss_mib'] for r in runs['ours']]):.0f} "
        f"MiB vs floor {median([r['maxrss_mib'] for r in runs['floor']]):.0f} MiB."
    )
    ok = {k: [r for r in v if r["state"] == "success"] for k, v in runs.items()}
    figures = [
        Figure(
            "End to end: airflow dags test, wall",
            "s",
            [r["wall_s"] for r in ok["ours"]],
            [r["wall_s"] for r in ok["floor"]],
            1.20,
        ),
        Figure(
            "End to end: CPU time (user + sys)",
            "s",
            [r["cpu_s"] for r in ok["ours"]],
            [r["cpu_s"] for r in ok["floor"]],
            None,
        ),
        Figure(
            "End to end: peak RSS of the process tree",
            "MiB",
            [r["peak_tree_rss_mib"] for r in ok["ours"]],
            [r["peak_tree_rss_mib"] for r in ok["floor"]],
            1.20,
        ),
    ]
    return figures, notes


# -- main ------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples and calls (a smoke run)")
    parser.add_argument("--repeat", type=int, help="samples per figure (default 7; --quick: 3, end to end 2)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--json", type=Path, help="also write every sample and note to this file")
    parser.add_argument("--no-sdk", action="store_true", help="skip the official SDK comparison")
    parser.add_argument("--sdk-venv", type=Path, default=DEFAULT_SDK_VENV, help="venv for the official SDK")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL warehouse figure")
    args = parser.parse_args()
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    repeat = args.repeat or (3 if args.quick else 7)
    e2e_repeat = args.repeat or (2 if args.quick else 7)
    calls = 50 if args.quick else 200

    info = machine()
    command = " ".join(
        shlex.quote(a)
        for a in [
            str(Path(PYTHON).relative_to(REPO)) if PYTHON.startswith(str(REPO)) else PYTHON,
            "benchmarks/run.py",
            *sys.argv[1:],
        ]
    )
    load_before = load_average()
    print(f"command: {command}")
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['os']}")
    print(f"python {info['python']}, Airflow {info['airflow']}; {info['libs']}")
    print(
        f"samples: {repeat} per figure ({e2e_repeat} end to end), {calls} calls per hook sample; "
        f"load average at start: {load_before}",
        flush=True,
    )

    figures: list[Figure] = []
    notes: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kalshi-bench-") as tmp:
        workdir = Path(tmp)
        steps = {
            "parse": lambda: bench_parse(workdir, repeat),
            "hook": lambda: bench_hook(workdir, repeat, calls, not args.no_sdk, args.sdk_venv),
            "warehouse": lambda: bench_warehouse(repeat, not args.no_postgres),
            "e2e": lambda: bench_e2e(workdir, e2e_repeat),
        }
        for section in sections:
            t0 = time.perf_counter()
            print(f"... {section}", end="", flush=True)
            try:
                new_figures, new_notes = steps[section]()
            except Exception as err:  # one broken section must not hide the others
                new_figures, new_notes = [], [f"{section}: FAILED: {type(err).__name__}: {str(err)[-1500:]}"]
            figures += new_figures
            notes += new_notes
            print(f" {time.perf_counter() - t0:.0f} s", flush=True)
    load_after = load_average()

    print()
    table = print_table(figures)
    print(table)
    print()
    print(
        "ratio = median(ours) / median(floor); samples alternate ours/floor. "
        f"Load average: {load_before} at start, {load_after} at end; "
        f"total {time.perf_counter() - started:.0f} s."
    )
    for note in notes:
        print(f"- {note}")
    missed = [f.name for f in figures if f.status == "MISSED"]
    print(
        f"\ntargets: {sum(f.status == 'met' for f in figures)} met, {len(missed)} missed"
        + (f" ({'; '.join(missed)})" if missed else "")
    )

    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command": command,
                    "machine": info,
                    "load_average": {"start": load_before, "end": load_after},
                    "figures": [
                        {
                            **asdict(f),
                            "ours_median": f.ours_median,
                            "floor_median": f.floor_median,
                            "ratio": f.ratio,
                            "status": f.status,
                        }
                        for f in figures
                    ],
                    "notes": notes,
                    "table": table,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
