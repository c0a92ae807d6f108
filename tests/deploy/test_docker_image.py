"""Dockerfile and .dockerignore: the official Airflow 3.3.2 image plus this provider's built wheel
and the DAG files, from a context that holds no key, no .env, no local state and no simulator.

No Docker engine runs here: the build context is listed by Docker's Python client (the ``docker``
package), which applies .dockerignore by Docker's rules when it packs a context for a build.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from docker.utils import exclude_paths

from tests.fixtures.checkout import REPO

#: Paths that must never reach the builder, wherever they are.
SENSITIVE = [
    ".env",
    "plugins/.env",
    "secrets/kalshi_private_key.pem",
    "secrets/kalshi_private_key",
    "kalshi_private_key",
    "kalshi.pem",
    "demo.key",
    "plugins/kalshi_provider/kalshi.pem",
    "plugins/kalshi_provider/simulator/test.key",
    "plugins/kalshi_provider/secrets/anything",
    "id_rsa",
    "id_ed25519.pub",
    ".venv/bin/python",
    ".git/config",
    "config/airflow.cfg",
    "logs/dag_id=x/attempt=1.log",
    ".airflow/airflow.db",
    ".simulator/kalshi-simulator.pem",
    "plugins/kalshi_provider/__pycache__/hooks.cpython-312.pyc",
    "plugins/airflow_provider_kalshi.egg-info/PKG-INFO",
    "tests/fixtures/simulator.py",
    "kalshi_warehouse.db",
    # The simulator accepts any registered key and has an unauthenticated control API.
    "simulator/pyproject.toml",
    "simulator/kalshi_simulator/control.py",
    "plugins/kalshi_simulator/__init__.py",
    "dags/__pycache__/x.pyc",
]
BASE_IMAGE = "apache/airflow:3.3.2"


def build_context(root: Path = REPO) -> set[str]:
    """The files of ``root`` that ``docker build`` sends to the builder, under this .dockerignore.

    Docker's client always adds the Dockerfile and the .dockerignore itself, when they exist.
    """
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    return {path for path in exclude_paths(str(root), patterns) if (root / path).is_file()}


def dockerfile_instructions(path: Path = REPO / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and ``\\`` continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    return dockerfile_instructions()


@pytest.fixture(scope="module")
def context() -> set[str]:
    return build_context()


def _copies(instructions) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY from the build context (not ``--from`` a stage), flags dropped."""
    copies = []
    for keyword, arguments in instructions:
        if keyword == "COPY" and "--from=" not in arguments:
            words = [word for word in shlex.split(arguments) if not word.startswith("--")]
            copies.append((words[:-1], words[-1]))
    return copies


def _stages(instructions) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, FROM first."""
    stages: list[list[tuple[str, str]]] = []
    for keyword, arguments in instructions:
        if keyword == "FROM":
            stages.append([])
        stages[-1].append((keyword, arguments))
    return stages


def test_both_stages_start_from_the_airflow_image_requirements_txt_pins(instructions):
    froms = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    assert froms == [f"{BASE_IMAGE} AS wheel", BASE_IMAGE]
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert pinned and BASE_IMAGE.endswith(":" + pinned.group(1))


def test_the_first_stage_builds_the_wheel_from_the_project(instructions):
    build, _ = _stages(instructions)
    copies = _copies(build)
    [project_dir] = [dest.rstrip("/") for sources, dest in copies if "pyproject.toml" in sources]
    [(sources, _)] = [(sources, dest) for sources, dest in copies if "pyproject.toml" in sources]
    assert {"pyproject.toml", "README.md", "LICENSE"} <= set(sources)  # what pyproject.toml reads
    assert (["plugins/kalshi_provider"], f"{project_dir}/plugins/kalshi_provider") in copies
    [run] = [arguments for keyword, arguments in build if keyword == "RUN"]
    assert re.search(rf"pip wheel .*--no-deps .*--wheel-dir (\S+) {re.escape(project_dir)}$", run), run


def test_the_image_installs_the_built_wheel_without_moving_airflow(instructions):
    """Airflow's "extend the image" way: the image's own Airflow version named, its constraints."""
    _, final = _stages(instructions)
    [(keyword, copied)] = [(k, a) for k, a in final if k == "COPY" and "--from=wheel" in a]
    wheel_dir = shlex.split(copied)[-1].rstrip("/")
    [install] = [arguments for keyword, arguments in final if keyword == "RUN"]
    assert install.startswith("pip install ")
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in install
    assert '--constraint "${HOME}/constraints.txt"' in install
    assert f"{wheel_dir}/airflow_provider_kalshi-*.whl" in install
    # Only the wheel: no requirements file, no source tree, no editable install.
    assert "-r " not in install and "-e " not in install and "--no-deps" not in install
    # The build checks both entry points are there: the connection type and the chart plugin.
    assert "apache_airflow_provider" in install and "airflow.plugins" in install


def test_the_dag_files_are_in_the_image(instructions, context):
    _, final = _stages(instructions)
    copies = _copies(final)
    assert (["dags/"], "/opt/airflow/dags/") in copies
    dag_files = {path.relative_to(REPO).as_posix() for path in (REPO / "dags").glob("*.py")}
    assert dag_files and dag_files <= context


def test_nothing_copies_the_simulator_or_the_tests(instructions, context):
    for sources, _ in _copies(instructions):
        for source in sources:
            assert not source.startswith(("simulator", "tests", "benchmarks", "scripts")), source
    assert not [path for path in context if "simulator" in path or path.startswith("tests/")]


def test_no_secret_is_baked_into_the_image(instructions):
    for keyword, arguments in instructions:
        assert not re.search(r"\.pem|PRIVATE|/run/secrets|\.env\b", arguments), (keyword, arguments)
        if keyword in ("ENV", "ARG"):
            assert not re.search(r"KEY|SECRET|PASSWORD|TOKEN", arguments, re.I), (keyword, arguments)
    for sources, _ in _copies(instructions):
        assert "." not in sources and "secrets" not in " ".join(sources), sources


def test_everything_copied_is_in_the_build_context(instructions, context):
    for sources, _ in _copies(instructions):
        for source in sources:
            path = REPO / source
            assert path.exists(), source
            if path.is_dir():
                wanted = {
                    p.relative_to(REPO).as_posix() for p in path.rglob("*.py") if "__pycache__" not in p.parts
                }
                assert wanted and wanted <= context, sorted(wanted - context)
            else:
                assert source in context, source


def test_build_context_of_this_checkout_is_the_package_and_the_dags(context):
    outside = [path for path in context if not path.startswith(("plugins/kalshi_provider/", "dags/"))]
    assert sorted(outside) == [".dockerignore", "Dockerfile", "LICENSE", "README.md", "pyproject.toml"]
    sent_by_the_client = ("Dockerfile", ".dockerignore")
    for path in context:
        assert path.endswith((".py", ".toml", ".md", ".typed", "LICENSE", *sent_by_the_client)), path


def test_keys_and_state_stay_out_wherever_they_are(tmp_path):
    """The context of a copy of the layout with keys, state and tools where someone might leave them."""
    kept = ["LICENSE", "README.md", "dags/hourly.py", "plugins/kalshi_provider/__init__.py", "pyproject.toml"]
    for path in kept + SENSITIVE:
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("-----BEGIN RSA PRIVATE KEY-----\n" if "key" in path or "pem" in path else "x")
    assert sorted(build_context(tmp_path)) == kept
