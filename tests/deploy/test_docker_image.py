"""Dockerfile and .dockerignore: the official Airflow 3.3.2 image plus this provider's built wheel
and the DAG files, from a context that holds no key, no .env, no local state and no simulator."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.deploy.compose import REPO, DockerIgnore, dockerfile_instructions

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


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    return dockerfile_instructions()


@pytest.fixture(scope="module")
def ignore() -> DockerIgnore:
    return DockerIgnore.from_file()


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


def test_the_dag_files_are_in_the_image(instructions, ignore):
    _, final = _stages(instructions)
    copies = _copies(final)
    assert (["dags/"], "/opt/airflow/dags/") in copies
    context = set(ignore.context())
    dag_files = {path.relative_to(REPO).as_posix() for path in (REPO / "dags").glob("*.py")}
    assert dag_files and dag_files <= context


def test_nothing_copies_the_simulator_or_the_tests(instructions, ignore):
    for sources, _ in _copies(instructions):
        for source in sources:
            assert not source.startswith(("simulator", "tests", "benchmarks", "scripts")), source
    context = list(ignore.context())
    assert not [path for path in context if "simulator" in path or path.startswith("tests/")]


def test_no_secret_is_baked_into_the_image(instructions):
    for keyword, arguments in instructions:
        assert not re.search(r"\.pem|PRIVATE|/run/secrets|\.env\b", arguments), (keyword, arguments)
        if keyword in ("ENV", "ARG"):
            assert not re.search(r"KEY|SECRET|PASSWORD|TOKEN", arguments, re.I), (keyword, arguments)
    for sources, _ in _copies(instructions):
        assert "." not in sources and "secrets" not in " ".join(sources), sources


def test_everything_copied_is_in_the_build_context(instructions, ignore):
    context = set(ignore.context())
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


@pytest.mark.parametrize("path", SENSITIVE)
def test_dockerignore_keeps_keys_and_state_out(ignore, path):
    assert ignore.excluded(path), path


def test_build_context_of_this_checkout_is_the_package_and_the_dags(ignore):
    context = sorted(ignore.context())
    outside = [path for path in context if not path.startswith(("plugins/kalshi_provider/", "dags/"))]
    assert sorted(outside) == ["LICENSE", "README.md", "pyproject.toml"]
    for path in context:
        assert path.endswith((".py", ".toml", ".md", ".typed", "LICENSE")), path


def test_a_key_dropped_into_the_package_stays_out(ignore, tmp_path):
    """The context walk itself, on a copy of the layout with keys where someone might leave one."""
    root = tmp_path / "repo"
    kept = ["LICENSE", "README.md", "dags/hourly.py", "plugins/kalshi_provider/__init__.py", "pyproject.toml"]
    for path in kept + [p for p in SENSITIVE if not p.startswith((".git/", ".venv/"))]:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("-----BEGIN RSA PRIVATE KEY-----\n" if "key" in path or "pem" in path else "x")
    assert sorted(ignore.context(root)) == kept


def test_matcher_follows_docker_rules():
    rules = DockerIgnore("*\n!keep/\n**/*.pem\n/rooted.txt\n!keep/**/ok.pem\nsub/?.txt\n")
    assert rules.excluded("anything")
    assert rules.excluded("dir/below/file")  # "*" matches the top folder, so all below it
    assert not rules.excluded("keep/file.py")
    assert rules.excluded("keep/deep/key.pem")
    assert not rules.excluded("keep/deep/ok.pem")  # the last matching pattern wins
    assert rules.excluded("rooted.txt")
    only_pem = DockerIgnore("**/*.pem\nsub/?.txt\n")
    assert only_pem.excluded("top.pem") and only_pem.excluded("a/b/c.pem")
    assert only_pem.excluded("sub/a.txt") and not only_pem.excluded("sub/ab.txt")
    assert not only_pem.excluded("a/b/c.pem.txt")
