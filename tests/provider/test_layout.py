"""The provider (hook, operators, signing, ...) stands apart from the pipeline built on it."""

from __future__ import annotations

import ast
from pathlib import Path

import kalshi_provider

PACKAGE = Path(kalshi_provider.__file__).parent
PIPELINES = "kalshi_provider.pipelines"


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function (lazy imports count too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update([node.module] + [f"{node.module}.{alias.name}" for alias in node.names])
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; the package uses absolute imports")
    return names


def test_the_provider_imports_nothing_from_the_pipelines():
    provider_files = [
        path for path in PACKAGE.rglob("*.py") if "pipelines" not in path.relative_to(PACKAGE).parts
    ]
    assert len(provider_files) > 10  # the hooks, operators, signing, ... were found
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            name for name in _imported_modules(path) if name.startswith(PIPELINES)
        )
        for path in provider_files
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def _dotted_names(value: object) -> set[str]:
    """Every string in the provider info that names something in this package."""
    if isinstance(value, dict):
        return set().union(*map(_dotted_names, value.values()), *map(_dotted_names, value.keys()))
    if isinstance(value, (list, tuple)):
        return set().union(*map(_dotted_names, value))
    return {value} if isinstance(value, str) and value.startswith("kalshi_provider.") else set()


#: The one pipelines name the provider info may hold: Airflow 3.2+ add a distribution's CLI commands
#: only from the provider info's ``cli`` key (no entry point exists for them), and issue 18 asks for
#: the warehouse's command there. Airflow imports it to build its CLI, never for the provider.
CLI_COMMANDS = "kalshi_provider.pipelines.warehouse_cli.get_cli_commands"


def test_the_provider_info_names_only_provider_modules():
    """Airflow imports what the provider info names on the provider's behalf: a pipeline module named
    there would be an import of the pipelines by the provider, spelt as a string. The one exception
    is the ``cli`` key's command, which has no other way in."""
    from kalshi_provider.get_provider_info import get_provider_info

    info = get_provider_info()
    names = _dotted_names(info)
    assert any(name.startswith("kalshi_provider.hooks.") for name in names)  # the strings were found
    assert info["cli"] == [CLI_COMMANDS]
    assert sorted(name for name in names - {CLI_COMMANDS} if name.startswith(PIPELINES)) == []


def test_the_provider_entry_point_is_the_provider_and_the_pipelines_arrive_by_their_own():
    """The distribution carries both parts; each entry point names the part it belongs to: Airflow's
    provider discovery the provider, the chart plugin (and commands) the pipelines."""
    from importlib import metadata

    entry_points = {
        (point.group, point.name): point.value
        for point in metadata.distribution("airflow-provider-kalshi").entry_points
    }
    provider = entry_points[("apache_airflow_provider", "provider_info")]
    assert provider.startswith("kalshi_provider.") and not provider.startswith(PIPELINES)
    others = {key: value for key, value in entry_points.items() if key[0] != "apache_airflow_provider"}
    assert others and all(value.startswith(PIPELINES + ".") for value in others.values()), others


def test_no_two_modules_share_a_name():
    """A module's name says what it holds across the provider and the pipelines, so a reader never
    meets two ``errors.py``. Airflow's own convention is the one exception: ``hooks/kalshi.py`` and
    ``operators/kalshi.py`` are named for the service, as every provider names them."""
    by_name: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if path.name == "__init__.py" or "versions" in relative.parts:  # Alembic's revision files
            continue
        by_name.setdefault(path.stem, []).append(str(relative))
    assert len(by_name) > 20  # the modules were found
    shared = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert shared == {"kalshi": ["hooks/kalshi.py", "operators/kalshi.py"]} or shared == {
        "kalshi": ["operators/kalshi.py", "hooks/kalshi.py"]
    }
