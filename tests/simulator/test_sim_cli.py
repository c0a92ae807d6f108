"""``python -m kalshi_simulator`` as a real subprocess: output, key file, signals."""

from __future__ import annotations

import json
import os
import select
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from kalshi_provider.signing import KalshiAuth, load_private_key
from kalshi_simulator import generate_private_key, public_pem

pytestmark = pytest.mark.process  # the simulator as a process

REPO = Path(__file__).resolve().parents[2]
TOTAL = "/portfolio/summary/total_resting_order_value"


@pytest.fixture
def cli_env(tmp_path):
    """HOME and XDG_STATE_HOME in a temporary directory, so no test touches the real home."""
    env = dict(os.environ, HOME=str(tmp_path / "home"), XDG_STATE_HOME=str(tmp_path / "state"))
    env.pop("PYTHONPATH", None)
    return env


class Cli:
    """One ``python -m kalshi_simulator`` process, run from a directory outside the repo."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kalshi_simulator", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        self._result: tuple[int, str, str] | None = None

    def first_line(self, timeout: float = 20) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, "the simulator printed nothing"
        line = self.proc.stdout.readline()
        assert line, f"the simulator exited: {self.finish()}"
        return json.loads(line)

    def finish(self, sig: int | None = None, timeout: float = 20) -> tuple[int, str, str]:
        """Send ``sig`` if still running (None: just wait); return (exit code, rest of stdout, stderr)."""
        if self._result is None:
            if sig is not None and self.proc.poll() is None:
                self.proc.send_signal(sig)
            out, err = self.proc.communicate(timeout=timeout)
            self._result = (self.proc.returncode, out.decode(), err.decode())
        return self._result

    def terminate(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        return self.finish(sig)


@pytest.fixture
def run_cli(cli_env, tmp_path):
    started: list[Cli] = []

    def run(*args: str) -> Cli:
        cli = Cli(list(args), cli_env, tmp_path)
        started.append(cli)
        return cli

    yield run
    for cli in started:
        cli.finish(signal.SIGKILL, timeout=5)


def test_generates_key_prints_json_serves_and_exits_on_sigterm(run_cli, cli_env, tmp_path):
    cli = run_cli("--value", "4321")
    info = cli.first_line()
    assert set(info) == {"base_url", "key_id", "private_key_path", "control_url"}
    assert info["base_url"].startswith("http://127.0.0.1:") and info["base_url"].endswith("/trade-api/v2")

    key_path = Path(info["private_key_path"])
    assert key_path.parent == tmp_path / "state" / "kalshi-simulator"
    assert REPO not in key_path.parents
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
    pem = key_path.read_bytes()
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")

    auth = KalshiAuth(info["key_id"], load_private_key(pem))
    response = requests.get(info["base_url"] + TOTAL, auth=auth, timeout=5)
    assert response.status_code == 200
    assert response.json()["total_resting_order_value"] == 4321

    code, out, err = cli.terminate()
    assert code == 0, err
    assert out == ""  # the JSON line (already read) is all that goes to stdout
    assert "PRIVATE KEY" not in err and "PRIVATE KEY" not in out


def test_reuses_the_key_on_the_next_run(run_cli):
    first_cli = run_cli()
    first = first_cli.first_line()
    assert first_cli.terminate()[0] == 0
    second = run_cli().first_line()
    assert second["private_key_path"] == first["private_key_path"]
    assert second["key_id"] == first["key_id"]


def test_sigint_also_exits_cleanly(run_cli):
    cli = run_cli()
    cli.first_line()
    code, _, err = cli.terminate(signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err


def test_ed25519_and_ready_file_and_state_dir(run_cli, tmp_path):
    ready = tmp_path / "ready.json"
    cli = run_cli(
        "--key-type", "ed25519", "--state-dir", str(tmp_path / "custom"), "--ready-file", str(ready)
    )
    info = cli.first_line()
    assert json.loads(ready.read_text()) == info
    key_path = Path(info["private_key_path"])
    assert key_path.parent == tmp_path / "custom"
    assert b"BEGIN PRIVATE KEY" in key_path.read_bytes()
    auth = KalshiAuth(info["key_id"], load_private_key(key_path.read_bytes()))
    assert requests.get(info["base_url"] + "/portfolio/balance", auth=auth, timeout=5).status_code == 200
    assert cli.terminate()[0] == 0
    assert not ready.exists()  # a stale ready file would mislead the next script


def test_given_public_key(run_cli, tmp_path):
    key = generate_private_key()
    pem_file = tmp_path / "pub.pem"
    pem_file.write_bytes(public_pem(key))
    cli = run_cli("--key-id", "my-key", "--public-key", str(pem_file))
    info = cli.first_line()
    assert info["key_id"] == "my-key"
    assert info["private_key_path"] is None
    auth = KalshiAuth("my-key", key)
    assert requests.get(info["base_url"] + TOTAL, auth=auth, timeout=5).status_code == 200
    assert cli.terminate()[0] == 0
    assert not (tmp_path / "state").exists()  # nothing generated


def test_control_api_of_the_process(run_cli):
    cli = run_cli()
    info = cli.first_line()
    requests.post(info["control_url"] + "/faults", json=[{"status": 503}], timeout=5)
    assert requests.get(info["base_url"] + "/exchange/status", timeout=5).status_code == 503
    recorded = requests.get(info["control_url"] + "/requests", timeout=5).json()["requests"]
    assert [r["status"] for r in recorded] == [503]


def test_subaccounts_restriction_and_maintenance_flags(run_cli):
    resume = "2026-12-10T10:00:00Z"
    cli = run_cli("--subaccounts", "1=250000", "2=0", "--restricted-subaccount", "1", "--maintenance", resume)
    info = cli.first_line()
    auth = KalshiAuth(info["key_id"], load_private_key(Path(info["private_key_path"]).read_bytes()))
    status = requests.get(info["base_url"] + "/exchange/status", timeout=5).json()
    assert (status["exchange_active"], status["exchange_estimated_resume_time"]) == (False, resume)
    assert requests.get(info["base_url"] + "/portfolio/balance", auth=auth, timeout=5).status_code == 503

    requests.delete(info["control_url"] + "/exchange", timeout=5)  # maintenance over
    balance = requests.get(info["base_url"] + "/portfolio/balance", auth=auth, timeout=5).json()
    assert (balance["balance"], "balance_breakdown" in balance) == (250000, False)  # the key's subaccount
    requests.patch(
        info["control_url"] + f"/accounts/{info['key_id']}", json={"restricted_subaccount": None}, timeout=5
    )
    rows = requests.get(info["base_url"] + "/portfolio/subaccounts/balances", auth=auth, timeout=5).json()
    assert sorted({row["subaccount_number"] for row in rows["subaccount_balances"]}) == [0, 1, 2]
    assert cli.terminate()[0] == 0


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--host", "0.0.0.0"], id="non-loopback"),
        pytest.param(["--subaccounts", "0=5"], id="subaccount-0"),
        pytest.param(["--subaccounts", "1=5", "1=6"], id="subaccount-twice"),
        pytest.param(["--subaccounts", "1=five"], id="subaccount-not-cents"),
        pytest.param(["--restricted-subaccount", "3"], id="restricted-to-a-missing-subaccount"),
        pytest.param(["--maintenance", "soon"], id="resume-time-not-rfc3339"),
        pytest.param(["--public-key", "/nonexistent.pem"], id="public-key-without-key-id"),
        pytest.param(["--key-id", "k", "--public-key", "/nonexistent.pem"], id="missing-public-key"),
        pytest.param(
            ["--key-id", "k", "--public-key", "/nonexistent.pem", "--print-connection"],
            id="print-connection-without-a-key-file",
        ),
    ],
)
def test_refusals_exit_2_without_writing(run_cli, tmp_path, args):
    code, out, err = run_cli(*args).finish()
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("via", ["--state-dir", "XDG_STATE_HOME"])
def test_state_dir_inside_a_git_checkout_is_refused(run_cli, cli_env, tmp_path, via):
    checkout = tmp_path / "checkout"
    (checkout / ".git").mkdir(parents=True)
    state = checkout / "sub" / ".simulator"
    if via == "XDG_STATE_HOME":
        cli_env["XDG_STATE_HOME"] = str(state)
        code, out, err = run_cli().finish()
    else:
        code, out, err = run_cli("--state-dir", str(state)).finish()
    assert code == 2
    assert out == ""
    assert "git checkout" in err
    assert not (checkout / "sub").exists()


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not running from a git checkout")
def test_this_checkout_is_refused(run_cli):
    code, _, err = run_cli("--state-dir", str(REPO / ".simulator")).finish()
    assert code == 2
    assert not (REPO / ".simulator").exists()


def test_port_in_use_exits_2(run_cli):
    first = run_cli().first_line()
    port = first["base_url"].split(":")[2].split("/")[0]
    code, _, err = run_cli("--port", port).finish()  # argparse keeps the last --port
    assert code == 2
    assert "cannot start" in err
