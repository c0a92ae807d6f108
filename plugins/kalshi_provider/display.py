"""Make text from outside (a server's answer, a header, a connection field) safe to show.

Whatever reaches an exception message or a log line goes through :func:`shown`: line breaks and
other whitespace collapse to one space (no forged log lines), control and format characters
become U+FFFD (no terminal escapes), and the result is bounded in length.
"""

from __future__ import annotations

from typing import Any

DEFAULT_LIMIT = 200


def shown(text: Any, limit: int = DEFAULT_LIMIT) -> str:
    """``text`` on one printable line of at most ``limit`` characters."""
    raw = str(text)[: limit * 8]  # enough to fill ``limit`` after whitespace collapses
    one_line = " ".join(raw.split())
    printable = "".join(ch if ch.isprintable() else "\ufffd" for ch in one_line)
    return printable if len(printable) <= limit else printable[: limit - 1] + "…"
