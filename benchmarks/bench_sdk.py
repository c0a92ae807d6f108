"""Worker for a separate venv: Kalshi's official SDK making the hook's call against the simulator.

Runs with the SDK venv's interpreter (``kalshi-python-sync`` or ``kalshi_python`` installed, not
the project's packages) and prints one JSON line: mean wall and CPU seconds per call per sample,
like bench_hook.py, or ``{"error": ...}`` saying why the SDK could not make the call.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from importlib.metadata import PackageNotFoundError, version

EXPECTED = 123456
CANDIDATES = (("kalshi_python_sync", "kalshi-python-sync"), ("kalshi_python", "kalshi-python"))


def load_sdk():
    for module_name, dist in CANDIDATES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        try:
            dist_version = version(dist)
        except PackageNotFoundError:
            dist_version = getattr(module, "__version__", "?")
        return module, f"{dist} {dist_version}"
    raise SystemExit(json.dumps({"error": "neither kalshi_python_sync nor kalshi_python is importable"}))


def make_call(sdk, ready: dict):
    config = sdk.Configuration(host=ready["base_url"])
    config.api_key_id = ready["key_id"]
    with open(ready["private_key_path"]) as handle:
        config.private_key_pem = handle.read()
    client = sdk.KalshiClient(config)
    method = getattr(client, "get_portfolio_resting_order_total_value", None)
    if method is None:
        raise SystemExit(
            json.dumps({"error": "this SDK version has no get_portfolio_resting_order_total_value"})
        )

    def call() -> int:
        return method().total_resting_order_value

    return call


def count_signatures(sdk, call) -> int:
    """How many RSA signatures the SDK computes for one request."""
    auth_class = sdk.KalshiAuth
    original = auth_class.create_auth_headers
    count = 0

    def counting(self, *args, **kwargs):
        nonlocal count
        count += 1
        return original(self, *args, **kwargs)

    auth_class.create_auth_headers = counting
    try:
        call()
    finally:
        auth_class.create_auth_headers = original
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ready", required=True)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--samples", type=int, default=7)
    args = parser.parse_args()
    ready = json.loads(open(args.ready).read())
    sdk, label = load_sdk()
    call = make_call(sdk, ready)
    try:
        value = call()
    except Exception as err:  # the point is to report why, not to crash
        print(json.dumps({"sdk": label, "error": f"{type(err).__name__}: {str(err)[:300]}"}))
        return
    if value != EXPECTED:
        print(json.dumps({"sdk": label, "error": f"unexpected value {value!r}"}))
        return
    for _ in range(max(10, args.calls // 10)):
        call()
    walls, cpus = [], []
    for _ in range(args.samples):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(args.calls):
            call()
        walls.append((time.perf_counter() - wall0) / args.calls)
        cpus.append((time.process_time() - cpu0) / args.calls)
    print(
        json.dumps(
            {
                "sdk": label,
                "wall": walls,
                "cpu": cpus,
                "signatures_per_request": count_signatures(sdk, call),
            }
        )
    )


if __name__ == "__main__":
    main()
