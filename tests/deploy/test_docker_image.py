"""Dockerfile and .dockerignore: Airflow 3.3.2 plus the pinned requirements and this provider,
built from a context that holds no key, no .env and no local state."""

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
]


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    return dockerfile_instructions()


@pytest.fixture(scope="module")
def ignore() -> DockerIgnore:
    return DockerIgnore.from_file()


def _copies(instructions) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY, flags dropped."""
    copies = []
    for keyword, arguments in instructions:
        if keyword == "COPY":
            words = [word for word in shlex.split(arguments) if not word.startswith("--")]
            copies.append((words[:-1], words[-1]))
    return copies


def test_base_image_is_airflow_3_3_2_and_matches_requirements(instructions):
    froms = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    assert froms == ["apache/airflow:3.3.2"]
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert pinned and froms[0].endswith(":" + pinned.group(1))


def test_installs_requirements_txt(instructions):
    copies = _copies(instructions)
    [destination] = [dest for sources, dest in copies if sources == ["requirements.txt"]]
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    assert any(
        "pip install" in run and f"-r {destination}" in run and '"apache-airflow==${AIRFLOW_VERSION}"' in run
        for run in runs
    ), runs


def test_installs_this_provider_as_a_distribution(instructions):
    """pyproject.toml and the package are copied together and pip-installed from that folder."""
    copies = _copies(instructions)
    [project_dir] = [dest for sources, dest in copies if "pyproject.toml" in sources]
    project_dir = project_dir.rstrip("/")
    assert any(
        sources == ["plugins/kalshi_provider"] and dest == f"{project_dir}/plugins/kalshi_provider"
        for sources, dest in copies
    ), copies
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    install = [run for run in runs if re.search(rf"pip install [^&]*{re.escape(project_dir)}(\s|$)", run)]
    assert install and "--no-deps" in install[0] and "-e " not in install[0]
    assert "apache_airflow_provider" in install[0]  # the build checks the entry point is there


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


def test_build_context_of_this_checkout_is_only_the_package(ignore):
    context = sorted(ignore.context())
    assert {"requirements.txt", "pyproject.toml", "README.md"} <= set(context)
    outside = [path for path in context if not path.startswith("plugins/kalshi_provider/")]
    assert sorted(outside) == ["README.md", "pyproject.toml", "requirements.txt"]
    for path in context:
        assert path.endswith((".py", ".txt", ".toml", ".md", ".typed")), path


def test_a_key_dropped_into_the_package_stays_out(ignore, tmp_path):
    """The context walk itself, on a copy of the layout with keys where someone might leave one."""
    root = tmp_path / "repo"
    for path in ["requirements.txt", "pyproject.toml", "README.md", "plugins/kalshi_provider/__init__.py"] + [
        p for p in SENSITIVE if not p.startswith((".git/", ".venv/"))
    ]:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("-----BEGIN RSA PRIVATE KEY-----\n" if "key" in path or "pem" in path else "x")
    context = sorted(ignore.context(root))
    assert context == [
        "README.md",
        "plugins/kalshi_provider/__init__.py",
        "pyproject.toml",
        "requirements.txt",
    ]


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


def test_folders_docker_compose_mounts_exist():
    for folder in ("dags", "plugins"):
        assert (REPO / folder).is_dir()
