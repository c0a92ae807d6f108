"""``private_key_path``: only a regular file of bounded size, opened without blocking.

The Test button reads it in the API server, so a path to /dev/zero (memory without end), a FIFO
(a read that never returns) or a directory must cost nothing there. Every unusable path gets
the same message, so the message does not tell which files exist on the server.
"""

from __future__ import annotations

import json
import os

import pytest
from airflow.sdk import Connection
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_provider.connection import private_key_from_connection
from kalshi_provider.exceptions import KalshiConfigError
from kalshi_provider.limits import MAX_PEM_BYTES


@pytest.fixture(scope="module")
def pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _connection(path: str) -> Connection:
    return Connection(
        conn_id="kalshi_file", conn_type="kalshi", login="k", extra=json.dumps({"private_key_path": path})
    )


def _make(kind: str, tmp_path, pem: bytes) -> str:
    target = tmp_path / "key.pem"
    if kind == "dev-zero":
        return "/dev/zero"
    if kind == "dev-urandom":
        return "/dev/urandom"
    if kind == "fifo":
        os.mkfifo(target)  # no writer ever opens it: a blocking open or read waits for ever
    elif kind == "directory":
        target.mkdir()
    elif kind == "missing":
        pass
    elif kind == "oversized":
        target.write_bytes(pem + b"\n" * (MAX_PEM_BYTES + 1 - len(pem)))
    elif kind == "huge":
        with open(target, "wb") as handle:
            handle.truncate(1 << 30)  # 1 GiB, sparse
    elif kind == "symlink-to-dev-zero":
        target.symlink_to("/dev/zero")
    elif kind == "symlink-to-fifo":
        os.mkfifo(tmp_path / "fifo")
        target.symlink_to(tmp_path / "fifo")
    elif kind == "dangling-symlink":
        target.symlink_to(tmp_path / "nowhere")
    elif kind == "nul-in-path":
        return str(target) + "\0.pem"
    elif kind == "overlong-path":
        return "/" + "a" * 5000
    return str(target)


KINDS = [
    "dev-zero",
    "dev-urandom",
    "fifo",
    "directory",
    "missing",
    "oversized",
    "huge",
    "symlink-to-dev-zero",
    "symlink-to-fifo",
    "dangling-symlink",
    "nul-in-path",
    "overlong-path",
]


@pytest.mark.timeout(60)  # a blocking FIFO read would otherwise hang the suite
@pytest.mark.parametrize("kind", KINDS)
def test_an_unusable_key_path_is_refused_at_once_with_one_message(kind, tmp_path, pem):
    path = _make(kind, tmp_path, pem)
    with pytest.raises(KalshiConfigError) as caught:
        private_key_from_connection(_connection(path))
    message = str(caught.value)
    shown_path = message.split("names the key file ")[1].split(" in 'private_key_path'")[0]
    assert message.replace(shown_path, "<path>") == (
        "Kalshi connection 'kalshi_file' names the key file <path> in 'private_key_path', which cannot "
        "be used: it must be a regular file of at most 8 KiB holding the PEM, readable by the workers "
        "and the API server."
    )
    assert len(message) < 600


def test_a_symlink_to_a_regular_key_file_works(tmp_path, pem):
    """Kubernetes mounts secrets as symlinks into a ..data directory: they must keep working."""
    data = tmp_path / "..data"
    data.mkdir()
    (data / "kalshi.pem").write_bytes(pem)
    (tmp_path / "kalshi.pem").symlink_to(data / "kalshi.pem")
    key = private_key_from_connection(_connection(str(tmp_path / "kalshi.pem")))
    assert key.key_size == 2048


def test_a_key_file_of_exactly_the_cap_is_read(tmp_path, pem):
    path = tmp_path / "padded.pem"
    path.write_bytes(pem + b"\n" * (MAX_PEM_BYTES - len(pem)))
    assert private_key_from_connection(_connection(str(path))).key_size == 2048
