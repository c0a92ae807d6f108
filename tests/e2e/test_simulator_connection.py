"""``kalshi-simulator --print-connection`` prints a line that points a real Airflow at the simulator.

The line is run as a user would paste it, in a fresh Airflow home; ``airflow connections test``
then has the hook sign a request with that connection against the running simulator. The flags that
start the simulator and the command that tests the connection are the ones the README and
docs/connection.md show, taken from the pages.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading

import pytest

from tests.fixtures.airflow import AirflowHome
from tests.fixtures.docs import REPO, code_blocks

pytestmark = pytest.mark.slow


def documented_test_command() -> str:
    """The ``airflow connections test`` line the README and docs/connection.md show (one line)."""
    [line] = {
        line
        for block in code_blocks("bash")
        for line in block.splitlines()
        if line.startswith("AIRFLOW__CORE__TEST_CONNECTION=Enabled airflow connections test")
    }
    return line


def documented_simulator_flags() -> list[str]:
    """The simulator's flags as the README and docs/connection.md start it (one way)."""
    [line] = {
        line
        for block in code_blocks("bash")
        for line in block.splitlines()
        if line.startswith(".venv/bin/kalshi-simulator --print-connection")
    }
    return line.split()[1:]


@pytest.fixture
def printed(tmp_path):
    """The simulator's two lines: its JSON line and the ``airflow connections add`` command."""
    env = dict(os.environ, HOME=str(tmp_path / "home"), XDG_STATE_HOME=str(tmp_path / "state"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kalshi_simulator", *documented_simulator_flags(), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        first, second = (lines.get(timeout=20).rstrip("\n") for _ in range(2))
        yield json.loads(first), second
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
        assert "PRIVATE KEY" not in err


def test_the_printed_line_makes_a_connection_airflow_can_test(printed, airflow_home: AirflowHome):
    info, command = printed
    assert command.startswith("airflow connections add kalshi_default --conn-json ")
    assert "PRIVATE KEY" not in command and info["private_key_path"] in command  # the path, not the key
    airflow_home.env["PATH"] = f"{airflow_home.bin}{os.pathsep}{airflow_home.env['PATH']}"
    run = dict(env=airflow_home.env, capture_output=True, text=True, timeout=300, cwd=REPO)

    added = subprocess.run(["bash", "-c", command], **run)
    assert added.returncode == 0, added.stdout[-2000:] + added.stderr[-2000:]

    # Airflow leaves connection testing off unless the CLI's own environment turns it on.
    refused = subprocess.run(["bash", "-c", "airflow connections test kalshi_default"], **run)
    assert refused.returncode != 0
    assert "disabled" in (refused.stdout + refused.stderr).lower()

    tested = subprocess.run(["bash", "-c", documented_test_command()], **run)
    output = tested.stdout + tested.stderr
    assert tested.returncode == 0, output[-3000:]
    assert "Connection success!" in output  # the hook signed a balance request the simulator accepted
