"""Warehouses written by release 0.2.0 itself: its own code, taken from git, run in a subprocess.

Release 0.2.0 is the commit whose schema the migrations' baseline froze (``RELEASE_0_2_0``). Its
package is extracted once per session with ``git archive`` and run with ``PYTHONPATH`` pointing at
it, so the rows are written by 0.2.0's ``store_reading`` (its keep-earliest rule, its breakdowns,
its free margin, its history), not by a fixture imitating it.

The readings (``_PLAN``): three accounts over four hours, each total and balance split over
exchange shards 0-3; an account without FCM access; a breakdown left out; a balance breakdown left
out; a balance answer left out; a re-run whose later reading the hour does not keep; and an hour
first written at :30 and then taken over by an earlier reading at :03, with fewer shards.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
#: main when issue 18 began: the schema of release 0.2.0, which the baseline revision froze.
RELEASE_0_2_0 = "ffd29942639c14e06e9149de26ce47b769d55bfb"
#: The first hour of the plan (hours 0-3 follow it).
HOUR_0 = "2026-09-01T10:00:00+00:00"

_SCRIPT = r"""
import json, sys
from datetime import datetime, timedelta
from decimal import Decimal
from sqlalchemy import create_engine
import kalshi_provider
from kalshi_provider.pipelines.warehouse import store_reading
from kalshi_provider.readings import AccountReading, Balance, BalanceReading, RestingOrderValue, ShardAmount

spec = json.load(sys.stdin)
assert kalshi_provider.__file__.startswith(spec["release"]), kalshi_provider.__file__
assert kalshi_provider.__version__ == "0.2.0", kalshi_provider.__version__
hour_0 = datetime.fromisoformat(spec["hour_0"])
engine = create_engine(spec["url"])

def shards(amounts):
    return tuple(ShardAmount(int(index), Decimal(dollars)) for index, dollars in amounts.items())

for load in spec["plan"]:
    hour = hour_0 + timedelta(hours=load["hour"])
    observed = hour + timedelta(minutes=load["minute"])
    total = None
    if "cents" in load:
        split = shards(load.get("resting", {}))
        total = RestingOrderValue(load["cents"], split, breakdown_problem=load.get("problem"))
    balance = None
    if "balance" in load or "balance_left_out" in load:
        value = None
        if "balance" in load:
            cents, dollars, split = load["balance"]
            value = Balance(
                cents, cents // 2, Decimal(dollars), int(observed.timestamp()) - 7, shards(split),
                load.get("balance_problem"),
            )
        balance = BalanceReading(observed + timedelta(milliseconds=40), value, load.get("balance_left_out"))
    reading = AccountReading(
        load["account"], observed, total, balance, not_permitted=load.get("refused"),
        try_number=load.get("try_", 1), source="https://external-api.kalshi.com/trade-api/v2",
    )
    store_reading(
        engine, reading, snapshot_hour=hour, dag_run_id=load["run"], table_name=spec["table"],
        schema=spec["schema"], try_number=1,
    )
engine.dispose()
"""

_RESTING = {"0": "493.84", "1": "370.36", "2": "246.91", "3": "123.45"}  # $1,234.56
_BALANCE = (500000, "5000.00", {"0": "2000.004", "1": "1500", "2": "1000", "3": "499.996"})
#: Not ASCII, but in latin1: a warehouse whose text columns are latin1 holds it (and so must the
#: migration that converts them).
_REFUSED = "Kalshi API error 403 (permission_denied): only for FCM members (réservé)"


def _load(account: str, hour: int, minute: int, run: str, **fields: object) -> dict:
    return {"account": account, "hour": hour, "minute": minute, "run": run, **fields}


_PLAN: list[dict] = [
    # fcm_a: every hour, both breakdowns complete.
    *(
        _load("fcm_a", h, 2, f"scheduled__h{h}", cents=123456, resting=_RESTING, balance=_BALANCE)
        for h in range(3)
    ),
    # A re-run of hour 1 at :40: the hour keeps its :02 reading (the history says earlier_kept).
    _load(
        "fcm_a",
        1,
        40,
        "manual__rerun",
        cents=1,
        resting={"0": "0.01"},
        balance=(7, "0.07", {"0": "0.07"}),
        try_=2,
    ),
    # Hour 3: the breakdown left out (a _problems row), the balance's breakdown too.
    _load(
        "fcm_a",
        3,
        5,
        "scheduled__h3",
        cents=5000,
        problem="7 decimal places in shard 2",
        balance=(900, "9.000001", {}),
        balance_problem="repeats exchange_index 1",
    ),
    # fcm_b: extreme exact values; a balance breakdown that does not add up; a balance left out.
    _load(
        "fcm_b",
        0,
        1,
        "scheduled__h0",
        cents=2**62,
        resting={"0": "999999999999999999.999999", "1": "-0.000001"},
        balance=(-5, "-0.05", {"0": "-0.05"}),
    ),
    _load("fcm_b", 1, 20, "scheduled__h1", cents=0, resting={}, balance=(1, "0.01", {"1": "0.004"})),
    _load(
        "fcm_b", 2, 1, "scheduled__h2", cents=100, resting={"3": "1"}, balance_left_out="no 'balance_dollars'"
    ),
    # fcm_c: hour 2 written at :30, then taken over by an earlier reading at :03 (one shard fewer).
    _load(
        "fcm_c",
        2,
        30,
        "late",
        cents=300,
        resting={"0": "2", "1": "1"},
        balance=(3000, "30.00", {"0": "20", "1": "10"}),
    ),
    _load("fcm_c", 2, 3, "cleared", cents=200, resting={"1": "2"}, balance=(2000, "20.00", {"1": "20"})),
    # An account without FCM access: its balance every hour, no total.
    *(
        _load("no_fcm", h, 4, f"scheduled__h{h}", refused=_REFUSED, balance=(4200, "42.00", {"0": "42"}))
        for h in range(3)
    ),
]


def _release_package(root: Path) -> Path:
    """0.2.0's ``plugins/`` folder, extracted under ``root`` (once)."""
    plugins = root / "plugins"
    if plugins.is_dir():
        return plugins
    done = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", RELEASE_0_2_0, "plugins/kalshi_provider"],
        capture_output=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"cannot take release 0.2.0 ({RELEASE_0_2_0}) out of git: {done.stderr.decode()[-500:]}. "
            "These tests need the repository's history (a full clone, not a shallow one)."
        )
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        archive.extractall(root, filter="data")
    return plugins


def write_with_release_0_2_0(root: Path, url: str, *, schema: str | None, table: str) -> None:
    """Write ``_PLAN`` into the warehouse at ``url`` with 0.2.0's own ``store_reading``.

    :param root: Where the release is extracted (a session-wide temporary folder).
    """
    plugins = _release_package(root)
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW__")}
    env["PYTHONPATH"] = str(plugins)
    spec = {"url": url, "schema": schema, "table": table, "plan": _PLAN, "hour_0": HOUR_0}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        input=json.dumps(spec | {"release": str(plugins)}),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"release 0.2.0 failed to write its rows:\n{done.stderr[-3000:]}")
