"""scripts/setup.sh on a machine like a new user's: a system Python that refuses ``pip install``
outside a venv (PEP 668, as Debian 12 and Homebrew ship it) and no uv on PATH.

The run is a copy of this checkout with only that Python and the system tools on PATH; uv's and
pip's download caches are shared with the test venv's install, which keeps it to seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.checkout import copy_checkout

pytestmark = pytest.mark.slow

SYSTEM_DIRS = ["/usr/local/bin", "/usr/bin", "/bin"]
#: In the test venv only: the job command must not install them.
TEST_ONLY = ["pytest", "playwright", "hypothesis", "ruff", "aiosmtpd", "check_jsonschema"]


def _stdlib_of(python: str) -> Path | None:
    done = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return Path(done.stdout.strip()) if done.returncode == 0 else None


def externally_managed_python() -> str | None:
    """A system python3 whose stdlib holds PEP 668's EXTERNALLY-MANAGED marker (Debian's on CI)."""
    for folder in SYSTEM_DIRS:
        python = Path(folder) / "python3"
        if not python.is_file():
            continue
        stdlib = _stdlib_of(str(python))
        if stdlib and (stdlib / "EXTERNALLY-MANAGED").is_file():
            return str(python)
    return None


@pytest.fixture(scope="module")
def system_python() -> str:
    python = externally_managed_python()
    if python is None:
        pytest.skip("no system python3 marked EXTERNALLY-MANAGED (PEP 668) on this machine")
    return python


@pytest.fixture
def system_env(tmp_path, system_python) -> dict[str, str]:
    """The environment minus every venv and user tool: PATH is the system Python and system dirs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(system_python)
    path = os.pathsep.join([str(bin_dir), *SYSTEM_DIRS])
    assert shutil.which("uv", path=path) is None, "uv is installed system-wide: the test needs it absent"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "UV_"))}
    env["PATH"] = path
    return env


def test_the_system_python_refuses_pip_install(system_python, system_env):
    """Control: the interpreter really is externally managed, so a pass below means something."""
    done = subprocess.run(
        [system_python, "-m", "pip", "install", "--dry-run", "uv==0.13.9"],
        env=system_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "externally-managed-environment" in done.stdout + done.stderr or "No module named pip" in (
        done.stderr
    )


def test_setup_bootstraps_everything_inside_the_venv_and_the_job_gets_runtime_only(tmp_path, system_env):
    checkout = copy_checkout(tmp_path / "checkout")

    def setup(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "scripts/setup.sh", *args],
            cwd=checkout,
            env=system_env,
            capture_output=True,
            text=True,
            timeout=900,
        )

    done = setup()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    venv = checkout / ".venv"
    assert (venv / "bin" / "uv").is_file()  # the bootstrap went into the venv
    python = str(venv / "bin" / "python")
    imports = "import airflow, kalshi_provider, kalshi_simulator; print(kalshi_provider.__file__)"
    checked = subprocess.run([python, "-c", imports], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert checked.stdout.strip().startswith(str(checkout))  # this checkout's provider, editable
    found = f"import importlib.util as u; print([m for m in {TEST_ONLY!r} if u.find_spec(m)])"
    test_tools = subprocess.run([python, "-c", found], capture_output=True, text=True, timeout=60)
    assert test_tools.stdout.strip() == "[]", "the job's venv holds test tools"

    again = setup()  # nothing changed: the stamp makes it a no-op
    assert again.returncode == 0 and again.stdout == again.stderr == ""
    assert [p.name for p in venv.glob(".installed-*")] == [p.name for p in venv.glob(".installed-runtime-*")]
