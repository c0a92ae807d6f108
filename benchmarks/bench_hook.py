"""Worker: KalshiHook.get_total_resting_order_value() against the simulator vs a bare requests floor.

Prints one JSON line. Every sample times ``calls`` back-to-back calls and records the mean wall
and CPU time per call; hook and floor samples alternate (and swap order every round) so drifting
machine load hits both alike.

- ``hook``: one ``KalshiHook`` reused across calls (the steady state).
- ``floor``: one ``requests.Session`` reused, the hook's headers, one RSA-PSS signature
  (``kalshi_provider.signing.sign``) per request, status check and ``.json()``.
- diagnostics: a floor with ``trust_env=False``, a new hook per call, and signing alone.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests
import urllib3.connection

from kalshi_provider import signing as kalshi_signing
from kalshi_provider.hooks.kalshi import TOTAL_RESTING_ORDER_VALUE_PATH, KalshiHook
from kalshi_provider.signing import (
    KEY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    load_private_key,
    now_ms,
    sign,
)

CONN_ID = "kalshi_bench"
EXPECTED = 123456

_counts = {"tcp_connects": 0, "key_loads": 0}


def _count(name: str, func: Callable) -> Callable:
    def wrapper(*args, **kwargs):
        _counts[name] += 1
        return func(*args, **kwargs)

    return wrapper


urllib3.connection.HTTPConnection.connect = _count("tcp_connects", urllib3.connection.HTTPConnection.connect)
# connection.private_key_from_connection imports it from signing at each call.
kalshi_signing.load_private_key = _count("key_loads", kalshi_signing.load_private_key)


def conn_json(ready: dict) -> str:
    return json.dumps(
        {
            "conn_type": "kalshi",
            "login": ready["key_id"],
            "host": ready["base_url"],
            "extra": {"private_key_path": ready["private_key_path"]},
        }
    )


def make_floor(ready: dict, trust_env: bool = True) -> Callable[[], int]:
    key = load_private_key(open(ready["private_key_path"], "rb").read())
    url = ready["base_url"] + TOTAL_RESTING_ORDER_VALUE_PATH
    path = urlsplit(url).path
    session = requests.Session()
    session.trust_env = trust_env
    key_id = ready["key_id"]

    def floor() -> int:
        timestamp = now_ms()
        headers = {
            "Accept": "application/json",
            "User-Agent": "airflow-provider-kalshi",
            KEY_HEADER: key_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(key, f"{timestamp}GET{path}".encode()),
        }
        response = session.get(url, headers=headers, timeout=10)
        response.raise_for_status()
        return response.json()["total_resting_order_value"]

    return floor


def sign_only(ready: dict) -> Callable[[], None]:
    key = load_private_key(open(ready["private_key_path"], "rb").read())
    path = urlsplit(ready["base_url"]).path + TOTAL_RESTING_ORDER_VALUE_PATH

    def run() -> None:
        sign(key, f"{now_ms()}GET{path}".encode())

    return run


def fresh_hook_call() -> int:
    return KalshiHook(CONN_ID).get_total_resting_order_value()


def sample(func: Callable[[], object], calls: int) -> tuple[float, float]:
    """Mean wall and CPU seconds per call over ``calls`` calls."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        func()
    return (time.perf_counter() - wall0) / calls, (time.process_time() - cpu0) / calls


def measure(funcs: dict[str, Callable[[], object]], calls: int, samples: int) -> dict[str, dict]:
    out = {name: {"wall": [], "cpu": []} for name in funcs}
    names = list(funcs)
    for round_ in range(samples):
        for name in names if round_ % 2 == 0 else names[::-1]:
            wall, cpu = sample(funcs[name], calls)
            out[name]["wall"].append(wall)
            out[name]["cpu"].append(cpu)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ready", required=True, help="ready JSON of the simulator (Nagle off)")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--samples", type=int, default=7)
    args = parser.parse_args()
    ready = json.loads(open(args.ready).read())
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = conn_json(ready)

    hook = KalshiHook(CONN_ID)
    floor = make_floor(ready)
    for func in (hook.get_total_resting_order_value, floor):
        for _ in range(max(10, args.calls // 10)):  # warm up: connection, caches, branch predictors
            if func() != EXPECTED:
                raise SystemExit("unexpected value from the simulator")

    _counts.update(tcp_connects=0, key_loads=0)
    results = measure({"hook": hook.get_total_resting_order_value, "floor": floor}, args.calls, args.samples)
    counters = dict(_counts)  # over all measured calls, hook and floor

    diag_calls = max(20, args.calls // 4)
    diagnostics = measure(
        {
            "floor_trust_env_off": make_floor(ready, trust_env=False),
            "floor": floor,
            "hook_new_per_call": fresh_hook_call,
            "sign_only": sign_only(ready),
        },
        diag_calls,
        max(3, args.samples // 2),
    )
    _counts.update(tcp_connects=0, key_loads=0)
    fresh_hook_call()
    per_new_hook = dict(_counts)

    print(
        json.dumps(
            {
                "calls_per_sample": args.calls,
                "results": results,
                "diagnostics": diagnostics,
                "steady_counters": {**counters, "calls": 2 * args.calls * args.samples},
                "new_hook_counters": per_new_hook,
                "environ_size": len(os.environ),
            }
        )
    )


if __name__ == "__main__":
    main()
