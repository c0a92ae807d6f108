"""``python -m kalshi_simulator``: run the simulator as a process for demos and scripts.

Without a key it makes one and keeps it in a private state directory (never in the git
checkout, so a key can't be committed by accident), reusing it on later runs so a configured
Airflow connection keeps working. It prints one JSON line saying where to connect and, with
``--print-connection``, the ``airflow connections add`` command that points an Airflow at it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shlex
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from kalshi_simulator.keys import generate_private_key, load_private_key, load_public_key, private_pem
from kalshi_simulator.server import KalshiSimulator
from kalshi_simulator.signature import PrivateKey
from kalshi_simulator.state import check_restriction, make_subaccounts

log = logging.getLogger("kalshi_simulator")

_KEY_ID_NAMESPACE = uuid.UUID("6f1c1d1e-3c9b-4a53-9d55-8b0f6d1a2e11")


class CliError(Exception):
    """A problem the user fixes (bad path, key file, port in use): logged, exit status 2."""


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/kalshi-simulator``, else ``~/.local/state/kalshi-simulator``."""
    xdg = os.environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "kalshi-simulator"


def git_work_tree(path: Path) -> Path | None:
    """The enclosing git work tree of ``path`` (which need not exist yet), if any."""
    for parent in [path, *path.parents]:
        if (parent / ".git").exists():
            return parent
    return None


def prepare_state_dir(path: Path) -> Path:
    path = path.expanduser().resolve()
    tree = git_work_tree(path)
    if tree is not None:
        raise CliError(
            f"refusing to keep a private key in {path}: it is inside the git checkout {tree}. "
            "Choose a --state-dir outside any repository (the default is ~/.local/state/kalshi-simulator)."
        )
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def key_id_for(key: PrivateKey) -> str:
    """A stable UUID-shaped key ID derived from the public key, so a reused key keeps its ID."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return str(uuid.uuid5(_KEY_ID_NAMESPACE, hashlib.sha256(der).hexdigest()))


def load_or_create_key(state_dir: Path, kind: str) -> tuple[Path, PrivateKey]:
    """Reuse ``<state_dir>/<kind>-private-key.pem`` or write a new one with mode 0600."""
    path = state_dir / f"{kind}-private-key.pem"
    if path.exists():
        if path.stat().st_mode & 0o077:
            log.warning("tightening permissions of %s to 0600", path)
            path.chmod(0o600)
        try:
            key = load_private_key(path.read_bytes())
        except ValueError as exc:
            raise CliError(f"cannot use {path}: {exc}; delete it to have a new key generated") from None
        log.info("reusing the simulator key in %s", path)
        return path, key
    key = generate_private_key(kind)  # type: ignore[arg-type]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(private_pem(key))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("wrote a new %s simulator key to %s", kind, path)
    return path, key


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kalshi-simulator",
        description="Serve a local Kalshi Trade API v2 simulator on a loopback address.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--skew-seconds", type=float, default=5.0, help="accepted clock skew (default 5)")
    parser.add_argument("--key-id", help="key ID to register (default: derived from the key)")
    parser.add_argument("--public-key", type=Path, help="PEM public key file to register (needs --key-id)")
    parser.add_argument("--state-dir", type=Path, help="where a generated key is kept (never a git checkout)")
    parser.add_argument("--value", type=int, default=123456, help="total_resting_order_value in cents")
    parser.add_argument("--balance", type=int, default=500000, help="the account's balance in cents")
    parser.add_argument(
        "--subaccounts",
        nargs="+",
        type=_subaccount_balance,
        default=[],
        metavar="N=CENTS",
        help="numbered subaccounts (1-63) and their balances in cents, e.g. --subaccounts 1=250000 2=0",
    )
    parser.add_argument(
        "--restricted-subaccount",
        type=int,
        metavar="N",
        help="make the key subaccount-restricted, locked to subaccount N (0 or one of --subaccounts)",
    )
    parser.add_argument(
        "--maintenance",
        nargs="?",
        const="",
        metavar="RESUME_TIME",
        help="start with the exchange under maintenance (exchange_active false), optionally with "
        "Kalshi's estimated resume time as an RFC 3339 date-time, e.g. 2026-12-10T10:00:00Z",
    )
    parser.add_argument("--key-type", choices=("rsa", "ed25519"), default="rsa", help="generated key type")
    parser.add_argument("--ready-file", type=Path, help="also write the JSON line here once listening")
    parser.add_argument(
        "--print-connection",
        nargs="?",
        const="kalshi_default",
        metavar="CONN_ID",
        help="after the JSON line, print the `airflow connections add` command for a Kalshi connection "
        "CONN_ID (default kalshi_default) to this simulator; it names the generated key by its path",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
        help="stderr log level (DEBUG logs each request)",
    )
    return parser


def _subaccount_balance(text: str) -> tuple[int, int]:
    number, sep, cents = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return int(number), int(cents)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N=CENTS (e.g. 1=250000), got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    if args.public_key is not None and not args.key_id:
        log.error("--public-key needs --key-id")
        return 2
    if args.public_key is not None and args.print_connection:
        log.error("--print-connection needs a generated key: with --public-key there is no key file to name")
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # before starting: an early signal still exits 0
        signal.signal(signum, lambda *_: stop.set())
    try:
        simulator, info = _start(args)
    except (CliError, ValueError, OSError) as exc:
        log.error("cannot start the simulator: %s", exc)
        return 2
    line = json.dumps(info)
    try:
        if args.ready_file is not None:  # before stdout, so whoever reads the line finds the file
            write_atomically(args.ready_file, line + "\n")
        print(line, flush=True)
        if args.print_connection:
            print(airflow_connection_command(args.print_connection, info), flush=True)
        while not stop.wait(0.5):
            pass
    except OSError as exc:  # the ready file cannot be written, or stdout is closed
        log.error("cannot announce the simulator: %s", exc)
        return 2
    finally:
        simulator.stop()
        if args.ready_file is not None:
            args.ready_file.unlink(missing_ok=True)
    return 0


def airflow_connection_command(conn_id: str, info: dict[str, Any]) -> str:
    """A shell line that adds a Kalshi connection to this simulator to the Airflow it runs in.

    The connection names the key file by its path (``private_key_path``), so no key is printed.

    :param conn_id: The connection's ID.
    :param info: The simulator's JSON line, as a dict (``base_url``, ``key_id``, ``private_key_path``).
    """
    connection = {
        "conn_type": "kalshi",
        "login": info["key_id"],
        "host": info["base_url"],
        "extra": {"private_key_path": info["private_key_path"]},
    }
    return shlex.join(["airflow", "connections", "add", conn_id, "--conn-json", json.dumps(connection)])


def _start(args: argparse.Namespace) -> tuple[KalshiSimulator, dict[str, Any]]:
    # Built and scripted first so a bad --host, --subaccounts or --maintenance is refused before
    # any key is generated.
    simulator = KalshiSimulator(host=args.host, port=args.port, skew_seconds=args.skew_seconds)
    numbers = [number for number, _ in args.subaccounts]
    if len(set(numbers)) != len(numbers):
        raise CliError(f"--subaccounts names a subaccount twice: {numbers}")
    subaccounts = make_subaccounts(dict(args.subaccounts))
    check_restriction(args.restricted_subaccount, subaccounts)
    if args.maintenance is not None:
        simulator.exchange.start_maintenance(args.maintenance or None)
    private_key_path: Path | None = None
    if args.public_key is not None:
        try:
            public_key: Any = load_public_key(args.public_key.read_bytes())
        except ValueError as exc:
            raise CliError(f"{args.public_key}: {exc}") from None
        key_id = args.key_id
    else:
        state_dir = prepare_state_dir(args.state_dir or default_state_dir())
        private_key_path, private_key = load_or_create_key(state_dir, args.key_type)
        public_key = private_key.public_key()
        key_id = args.key_id or key_id_for(private_key)
    simulator.add_account(
        key_id,
        public_key,
        total_resting_order_value=args.value,
        balance=args.balance,
        subaccounts=dict(args.subaccounts),
        restricted_subaccount=args.restricted_subaccount,
    )
    simulator.start()
    info = {
        "base_url": simulator.base_url,
        "key_id": key_id,
        "private_key_path": str(private_key_path) if private_key_path else None,
        "control_url": simulator.control_url,
    }
    return simulator, info
