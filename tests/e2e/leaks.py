"""Find secrets in text: PEM bodies (also re-wrapped or with escaped line breaks), passphrases, signatures."""

from __future__ import annotations

import re
import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization

CHUNK = 24  # 24 base64 characters (18 bytes of key): never there by chance
_BASE64_LINE = re.compile(r"^[A-Za-z0-9+/=]+$")
_ESCAPES = re.compile(r"(\\+[nrt]|\s)+")

#: A private key block with a body: a header line, optional RFC 1421 headers, base64 lines.
PRIVATE_KEY_BLOCK = re.compile(
    rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----\s*(?:\\n)*\s*"
    rb"(?:(?:Proc-Type|DEK-Info):[^\n]*\n\s*)*\s*[A-Za-z0-9+/=]{40,}"
)


def pem_body_lines(pem: str | bytes) -> list[str]:
    text = pem.decode() if isinstance(pem, bytes) else pem
    lines = [line.strip() for line in text.replace("\\n", "\n").splitlines()]
    return [line for line in lines if len(line) >= 16 and _BASE64_LINE.match(line)]


def pem_body_chunks(pem: str | bytes) -> list[str]:
    """Every full body line, and the body cut into CHUNK-sized pieces (catches other wrappings)."""
    lines = pem_body_lines(pem)
    body = "".join(lines)
    return lines + [body[i : i + CHUNK] for i in range(0, len(body) - CHUNK + 1, CHUNK)]


def every_serialisation(key) -> list[bytes]:
    """The key as PKCS#1 (RSA only) and PKCS#8, unencrypted: how it could leak if re-serialised."""
    formats = [serialization.PrivateFormat.PKCS8]
    if hasattr(key, "private_numbers") and hasattr(key.private_numbers(), "p"):
        formats.append(serialization.PrivateFormat.TraditionalOpenSSL)
    return [
        key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()) for fmt in formats
    ]


_BASE64_RUN = re.compile(rf"[A-Za-z0-9+/=]{{{CHUNK},}}")


@dataclass
class Secrets:
    """What must never appear, by name, so a failure says which secret leaked where.

    Key material and signatures are base64: every CHUNK-long window of them (at any offset) is
    indexed, and every base64 run of the searched text (once whitespace and escaped newlines
    are gone, so any re-wrapping is seen through) is slid over that index. Passphrases and
    passwords are searched for as they are.
    """

    windows: dict[str, str] = field(default_factory=dict)
    plain: dict[str, str] = field(default_factory=dict)

    def add_base64(self, name: str, text: str) -> None:
        body = "".join(text.split())
        assert len(body) >= CHUNK, f"{name} is too short to search for"
        for i in range(len(body) - CHUNK + 1):
            self.windows.setdefault(body[i : i + CHUNK], name)

    def add_pem(self, name: str, pem: str | bytes) -> None:
        self.add_base64(name, "".join(pem_body_lines(pem)))

    def add_key(self, name: str, key, *pems: str | bytes) -> None:
        for pem in [*pems, *every_serialisation(key)]:
            self.add_pem(name, pem)

    def add(self, name: str, secret: str | None) -> None:
        if secret:
            assert len(secret) >= 8, f"{name} is too short to search for without false alarms"
            self.plain.setdefault(secret, name)

    def find(self, text: str) -> list[str]:
        found = {name for needle, name in self.plain.items() if needle in text}
        for run in _BASE64_RUN.findall(_ESCAPES.sub("", text)):
            for i in range(len(run) - CHUNK + 1):
                name = self.windows.get(run[i : i + CHUNK])
                if name:
                    found.add(name)
                    break
        return sorted(found)

    def __len__(self) -> int:
        return len(self.windows) + len(self.plain)


@dataclass
class Haystack:
    """Every place a secret could end up, each under a label for the failure message."""

    places: dict[str, str] = field(default_factory=dict)

    def add(self, label: str, text: str) -> None:
        self.places[label] = self.places.get(label, "") + "\n" + text

    def add_tree(self, root: Path, label: str) -> None:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                for variant, text in _file_texts(path):
                    self.add(f"{label}/{path.relative_to(root)}{variant}", text)

    def add_sqlite(self, db: Path, label: str) -> dict[str, int]:
        """Every value of every table, decompressed where it is zlib; returns the row count per table."""
        counts = {}
        with sqlite3.connect(db) as conn:
            tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
                counts[table] = len(rows)
                self.add(f"{label}:{table}", "\n".join(_value_text(value) for row in rows for value in row))
        return counts

    def leaks(self, secrets: Secrets) -> dict[str, list[str]]:
        return {label: found for label, text in self.places.items() if (found := secrets.find(text))}

    def __len__(self) -> int:
        return sum(len(text) for text in self.places.values())


def _value_text(value: object) -> str:
    if isinstance(value, (bytes, memoryview)):
        raw = bytes(value)
        texts = [raw.decode("latin-1")]
        try:
            texts.append(zlib.decompress(raw).decode("latin-1"))
        except zlib.error:
            pass
        return "\n".join(texts)
    return "" if value is None else str(value)


def _file_texts(path: Path) -> Iterator[tuple[str, str]]:
    raw = path.read_bytes()
    yield "", raw.decode("latin-1")
    if path.suffix in (".gz", ".zlib"):
        try:
            yield " (decompressed)", zlib.decompress(raw, 47).decode("latin-1")
        except zlib.error:
            pass


def find_private_key_blocks(paths: Iterable[Path]) -> list[Path]:
    """Files holding a PEM private key with its body (not just the words in a docstring)."""
    found = []
    for path in paths:
        try:
            if path.stat().st_size > 20_000_000:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if PRIVATE_KEY_BLOCK.search(data):
            found.append(path)
    return found
