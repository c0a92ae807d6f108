"""Scripted failures: the errors, stalls and dropped connections a real Kalshi can give.

A test queues fault dicts; each request to a Kalshi path consumes the first queued fault whose
``path`` filter matches it. Fault dicts are validated when queued, so a typo fails the test
that made it instead of silently doing nothing.
"""

from __future__ import annotations

import functools
import gzip
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

_KEYS = frozenset(
    {"status", "json", "body", "headers", "delay", "path", "drop", "times", "trickle", "gzip_bomb_mib"}
)
_MANAGED_HEADERS = frozenset({"content-length", "connection", "transfer-encoding", "content-encoding"})
#: Most MiB a gzip bomb inflates to (its compressed size is about 1/1000 of that).
MAX_BOMB_MIB = 4096


@dataclass
class Fault:
    """One validated fault; ``remaining`` counts down with each request it answers."""

    status: int | None = None
    has_json: bool = False
    json: Any = None
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    path: str | None = None
    drop: bool = False
    #: Seconds between the bytes of the answer (status line and headers included); 0: all at once.
    trickle: float = 0.0
    #: Answer with a gzip body that inflates to this many MiB of zero bytes; 0: no bomb.
    gzip_bomb_mib: int = 0
    remaining: int = 1

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Fault:
        if not isinstance(spec, Mapping):
            raise ValueError(f"a fault must be a dict, got {type(spec).__name__}")
        unknown = set(spec) - _KEYS
        if unknown:
            raise ValueError(f"unknown fault keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
        status = spec.get("status")
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599
        ):
            raise ValueError(f"fault 'status' must be an HTTP status code, got {status!r}")
        if "json" in spec and "body" in spec:
            raise ValueError("a fault takes 'json' or 'body', not both")
        body = spec.get("body")
        if body is not None and not isinstance(body, str):
            raise ValueError("fault 'body' must be a string (use 'json' for JSON values)")
        if "json" in spec:
            json.dumps(spec["json"])  # fail now, not inside the server thread
        headers = spec.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise ValueError("fault 'headers' must be a dict")
        for name in headers:
            if str(name).lower() in _MANAGED_HEADERS:
                raise ValueError(f"fault header {name!r} is set by the simulator itself")
        delay = spec.get("delay", 0) or 0
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise ValueError(f"fault 'delay' must be a number of seconds >= 0, got {delay!r}")
        path = spec.get("path")
        if path is not None and (not isinstance(path, str) or not path):
            raise ValueError("fault 'path' must be a non-empty string")
        drop = spec.get("drop", False)
        if not isinstance(drop, bool):
            raise ValueError("fault 'drop' must be true or false")
        if drop and (status is not None or "json" in spec or body is not None or headers):
            raise ValueError("a 'drop' fault sends nothing: it takes no status, json, body or headers")
        trickle = spec.get("trickle", 0) or 0
        if isinstance(trickle, bool) or not isinstance(trickle, (int, float)) or not 0 <= trickle <= 10:
            raise ValueError(f"fault 'trickle' must be seconds between bytes, 0 to 10, got {trickle!r}")
        bomb = spec.get("gzip_bomb_mib", 0) or 0
        if isinstance(bomb, bool) or not isinstance(bomb, int) or not 0 <= bomb <= MAX_BOMB_MIB:
            raise ValueError(f"fault 'gzip_bomb_mib' must be an integer, 0 to {MAX_BOMB_MIB}, got {bomb!r}")
        if bomb and ("json" in spec or body is not None):
            raise ValueError("a 'gzip_bomb_mib' fault is its own body: it takes no 'json' or 'body'")
        if drop and (trickle or bomb):
            raise ValueError("a 'drop' fault sends nothing: it takes no 'trickle' or 'gzip_bomb_mib'")
        times = spec.get("times", 1)
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError(f"fault 'times' must be an integer >= 1, got {times!r}")
        return cls(
            status=status,
            has_json="json" in spec,
            json=spec.get("json"),
            body=body,
            headers={str(k): str(v) for k, v in headers.items()},
            delay=float(delay),
            path=path,
            drop=drop,
            trickle=float(trickle),
            gzip_bomb_mib=bomb,
            remaining=times,
        )

    def matches(self, path: str) -> bool:
        return self.path is None or path.endswith(self.path)

    @property
    def replaces_answer(self) -> bool:
        """False for a pure delay (or headers-only) fault: the normal answer follows."""
        return self.status is not None or self.has_json or self.body is not None or bool(self.gzip_bomb_mib)

    def answer(self) -> tuple[int, bytes, str]:
        """Status, body and content type of the answer that replaces the normal one.

        With a status but no body, the body is what Kalshi tends to send for that status.
        """
        status = self.status if self.status is not None else 200
        if self.gzip_bomb_mib:
            return status, gzip_bomb(self.gzip_bomb_mib), "application/json"
        if self.has_json:
            return status, json.dumps(self.json).encode(), "application/json"
        if self.body is not None:
            kind = "text/html" if self.body.lstrip().startswith("<") else "text/plain"
            return status, self.body.encode(), f"{kind}; charset=utf-8"
        return status, json.dumps(default_error_body(status)).encode(), "application/json"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"times": self.remaining}
        for name in ("status", "body", "path"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.has_json:
            out["json"] = self.json
        if self.headers:
            out["headers"] = dict(self.headers)
        if self.delay:
            out["delay"] = self.delay
        if self.drop:
            out["drop"] = True
        if self.trickle:
            out["trickle"] = self.trickle
        if self.gzip_bomb_mib:
            out["gzip_bomb_mib"] = self.gzip_bomb_mib
        return out


@functools.cache
def _gzip_member() -> bytes:
    return gzip.compress(b"\0" * (1 << 20), compresslevel=9)


def gzip_bomb(mib: int) -> bytes:
    """A gzip body of ``mib`` members of 1 MiB of zeros each: about 1 KiB per MiB it inflates to.

    gzip allows members back to back, so the bomb is built without ever holding the inflated data.
    """
    return _gzip_member() * mib


def default_error_body(status: int) -> Any:
    """Kalshi's own shapes: a bare string for 429, the wrapped error otherwise (for 403 the live
    refusal's, ``permission_denied`` without ``details``)."""
    if status == 429:
        return {"error": "too many requests"}
    if status == 403:
        return {"error": {"code": "permission_denied", "message": "permission denied"}}
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    code = phrase.lower().replace(" ", "_").replace("-", "_")
    return {"error": {"code": code, "message": phrase.lower(), "details": ""}}


class FaultQueue:
    """Thread-safe FIFO of faults shared by all handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def push(self, specs: Iterable[Mapping[str, Any]]) -> int:
        """Validate every spec, then queue them all (or none). Returns how many were queued."""
        if isinstance(specs, Mapping):
            raise ValueError("push a list of fault dicts, not a single dict")
        faults = [Fault.from_dict(spec) for spec in specs]
        with self._lock:
            self._faults.extend(faults)
        return len(faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str) -> Fault | None:
        """Consume one use of the first fault that matches ``path``."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        del self._faults[index]
                    return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_dict() for fault in self._faults]

    def __len__(self) -> int:
        with self._lock:
            return sum(fault.remaining for fault in self._faults)
