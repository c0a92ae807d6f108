"""The production wheel, built the way a release is (``uv build --wheel``), holds the product and
nothing else: the provider package with its licence, metadata and entry points, never the
simulator or the tests.

Installing that wheel into a fresh Airflow is tested with the Airflow version matrix; this file only
reads the archive.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from configparser import ConfigParser
from email.parser import Parser
from pathlib import Path

import pytest

import kalshi_provider
from tests.fixtures.checkout import REPO, copy_checkout

pytestmark = pytest.mark.process  # uv builds the wheel

DIST = "airflow-provider-kalshi"
PACKAGE = "kalshi_provider"


def _uv() -> str:
    """The uv that scripts/setup.sh used: the venv's own, else the one on PATH."""
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.is_file() else shutil.which("uv")
    if not found:
        pytest.fail("no uv in the venv or on PATH: run `bash scripts/setup.sh --test`")
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel built from a copy of this checkout (the build must not litter the checkout)."""
    root = tmp_path_factory.mktemp("wheel")
    source = copy_checkout(root / "src")
    done = subprocess.run(
        [_uv(), "build", "--wheel", "--quiet", "--out-dir", str(root / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [path] = (root / "dist").glob("*.whl")
    assert path.name == f"airflow_provider_kalshi-{kalshi_provider.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(path) as archive:
        yield archive


def _dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    return wheel.read(f"airflow_provider_kalshi-{kalshi_provider.__version__}.dist-info/{name}").decode()


def test_the_wheel_holds_the_package_and_nothing_else(wheel):
    names = wheel.namelist()
    package = {name for name in names if not name.split("/")[0].endswith(".dist-info")}
    source = REPO / "plugins" / PACKAGE
    expected = {
        path.relative_to(source.parent).as_posix()
        for path in source.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".typed")
    }
    assert package == expected
    assert f"{PACKAGE}/py.typed" in package
    # The development tools stay out: the simulator (it accepts any registered key and has an
    # unauthenticated control API), the tests, the benchmarks, the scripts.
    for name in names:
        top = name.split("/")[0]
        assert top == PACKAGE or top.endswith(".dist-info"), name
        assert "simulator" not in name and "tests" not in name.split("/"), name


def test_the_wheel_ships_the_apache_license(wheel):
    licence = _dist_info(wheel, "licenses/LICENSE")
    assert licence == (REPO / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence


def test_the_wheel_declares_the_provider_and_the_plugin_entry_points(wheel):
    entry_points = ConfigParser()
    entry_points.read_string(_dist_info(wheel, "entry_points.txt"))
    assert dict(entry_points["apache_airflow_provider"]) == {
        "provider_info": "kalshi_provider.get_provider_info:get_provider_info"
    }
    assert dict(entry_points["airflow.plugins"]) == {
        "kalshi_ui": "kalshi_provider.pipelines.ui.plugin:KalshiUIPlugin"
    }
    # The warehouse's command for Airflow 3.0/3.1 (the simulator's `kalshi-simulator` is not ours).
    assert dict(entry_points["console_scripts"]) == {
        "kalshi-warehouse": "kalshi_provider.pipelines.warehouse_cli:main"
    }


def test_the_wheel_metadata(wheel):
    meta = Parser().parsestr(_dist_info(wheel, "METADATA"))
    assert meta["Name"] == DIST
    assert meta["Version"] == kalshi_provider.__version__
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["License-File"] == "LICENSE"
    classifiers = meta.get_all("Classifier")
    assert "Framework :: Apache Airflow :: Provider" in classifiers
    assert "Framework :: Apache Airflow" in classifiers
    assert "Typing :: Typed" in classifiers
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL"))
    assert urls and all(url.startswith("https://") for url in urls.values()), urls
    requires = " ".join(meta.get_all("Requires-Dist"))
    assert "apache-airflow" in requires and "simulator" not in requires
    assert meta.get_payload().startswith("# airflow-provider-kalshi")  # the README is the long description
