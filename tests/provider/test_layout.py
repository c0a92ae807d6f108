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
