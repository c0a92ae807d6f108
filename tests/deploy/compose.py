"""Read docker-compose.yaml, Dockerfile and .dockerignore the way Docker does, without Docker.

No Docker engine runs where these tests run, so the two pieces of Docker behaviour the tests rely
on are reimplemented here, small and to the documented rules:

- Compose's variable interpolation (``$$``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
  ``${VAR:?error}``, ``${VAR?error}``, ``${VAR:+alt}``, ``${VAR+alt}``), applied to every string
  of the file, with values from an env file such as .env.example.
- The .dockerignore matcher of Docker's builder (moby/patternmatcher): patterns cleaned like
  paths, ``*`` and ``?`` within one path segment, ``**`` across segments, ``!`` re-includes, the
  last matching pattern wins, and a pattern that matches a folder matches everything in it.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENV_EXAMPLE = REPO / ".env.example"

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    """A required variable (``${VAR:?message}``) is missing, as ``docker compose`` would report."""


def load_raw(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The file as YAML (anchors and ``<<`` merges resolved), variables left as written."""
    return yaml.safe_load(path.read_text())


def load(env: Mapping[str, str], path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The file as ``docker compose config`` would see it with ``env`` as the .env file."""
    return interpolate(load_raw(path), env)


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _VARIABLE.sub(lambda match: _substitute(match, env), value)
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    return value


def _substitute(match: re.Match[str], env: Mapping[str, str]) -> str:
    if match.group("escaped"):
        return "$"
    name = match.group("braced") or match.group("named")
    op, arg = match.group("op"), match.group("arg") or ""
    value = env.get(name)
    is_set = value is not None
    is_nonempty = bool(value)
    if op in (":-", "-"):
        return value if (is_nonempty if op == ":-" else is_set) else arg  # type: ignore[return-value]
    if op in (":?", "?"):
        if not (is_nonempty if op == ":?" else is_set):
            raise InterpolationError(f"required variable {name} is missing a value: {arg}")
        return value  # type: ignore[return-value]
    if op in (":+", "+"):
        return arg if (is_nonempty if op == ":+" else is_set) else ""
    return value or ""


def variables(path: Path = COMPOSE_FILE) -> dict[str, str | None]:
    """Every variable the file interpolates -> its operator (``None`` for a plain ``${VAR}``)."""
    found: dict[str, str | None] = {}

    def walk(value: Any) -> None:
        if isinstance(value, str):
            for match in _VARIABLE.finditer(value):
                name = match.group("braced") or match.group("named")
                if name and (found.get(name) is None):
                    found[name] = match.group("op")
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(load_raw(path))
    return found


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """A Compose .env file: ``NAME=value`` lines, ``#`` comments, optional quotes around values."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name.strip()):
            raise ValueError(f"{path.name}:{number}: not a NAME=value line: {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def service_environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a dict, whichever of the two forms the file uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


# --- .dockerignore ------------------------------------------------------------------------------


class DockerIgnore:
    """Docker's build-context filter for one .dockerignore file."""

    def __init__(self, text: str) -> None:
        self.patterns: list[tuple[bool, str, re.Pattern[str]]] = []
        for line in text.splitlines():
            pattern = line.strip()
            if not pattern or pattern.startswith("#"):
                continue
            exclusion = pattern.startswith("!")
            if exclusion:
                pattern = pattern[1:].strip()
            pattern = posixpath.normpath(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
            self.patterns.append((exclusion, pattern, _pattern_regex(pattern)))

    @classmethod
    def from_file(cls, path: Path = DOCKERIGNORE) -> DockerIgnore:
        return cls(path.read_text())

    def excluded(self, path: str) -> bool:
        """Whether ``path`` (relative to the context, with ``/``) stays out of the build context."""
        path = posixpath.normpath(path)
        segments = path.split("/")
        # The path itself and each folder above it (patternmatcher's MatchesOrParentMatches).
        candidates = [path] + ["/".join(segments[:depth]) for depth in range(1, len(segments))]
        excluded = False
        for exclusion, _, regex in self.patterns:
            if any(regex.match(candidate) for candidate in candidates):
                excluded = not exclusion
        return excluded

    def may_include_below(self, folder: str) -> bool:
        """Whether some ``!`` pattern could re-include something inside an excluded folder."""
        folder = posixpath.normpath(folder)
        for exclusion, pattern, _ in self.patterns:
            if exclusion and (pattern.startswith(folder + "/") or "*" in pattern.split("/")[0]):
                return True
        return False

    def context(self, root: Path = REPO) -> Iterator[str]:
        """The files of ``root`` that Docker would send as the build context."""
        for folder, subfolders, files in os.walk(root):
            rel_folder = Path(folder).relative_to(root).as_posix()
            prefix = "" if rel_folder == "." else rel_folder + "/"
            subfolders[:] = [
                name
                for name in subfolders
                if not self.excluded(prefix + name) or self.may_include_below(prefix + name)
            ]
            for name in files:
                if not self.excluded(prefix + name):
                    yield prefix + name


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """moby/patternmatcher's translation of one pattern into a regular expression."""
    out, i = "^", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            if pattern[i + 1 : i + 2] == "*":
                i += 1
                if pattern[i + 1 : i + 2] == "/":
                    i += 1
                out += ".*" if i + 1 == len(pattern) else "(.*/)?"
            else:
                out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif char in ".+()|{}$^":
            out += "\\" + char
        else:
            out += char
        i += 1
    return re.compile(out + "$")


# --- Dockerfile ---------------------------------------------------------------------------------


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
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
