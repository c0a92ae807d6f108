"""Kalshi's request signature: one place that builds, signs and verifies the message.

Kalshi signs ``timestamp_ms + METHOD + path`` where the path is the full URL path (with
``/trade-api/v2``) and without the query string. RSA keys sign with PSS (SHA-256, MGF1-SHA-256,
salt = digest length); Ed25519 keys sign the same message plainly. The simulator verifies with
the same functions, so the two cannot drift apart.
"""

from __future__ import annotations

import base64
import re
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from requests.auth import AuthBase

from kalshi_provider.key_encryption import CostlyKeyError, check_key_derivation
from kalshi_provider.limits import MAX_PEM_BYTES

if TYPE_CHECKING:
    from requests import PreparedRequest

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey

KEY_HEADER = "KALSHI-ACCESS-KEY"
TIMESTAMP_HEADER = "KALSHI-ACCESS-TIMESTAMP"
SIGNATURE_HEADER = "KALSHI-ACCESS-SIGNATURE"

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
_MIN_RSA_BITS = 2048
# Linear-time pieces of a PEM: one bounded label, one character class. Never a pattern with
# nested or adjacent unbounded repeats over the same characters (the old one-regex version
# backtracked for minutes on a header followed by thousands of spaces).
_PEM_HEAD = re.compile(rb"-----BEGIN [A-Z0-9 ]{1,60}-----")
_PEM_TAIL = re.compile(rb"-----END [A-Z0-9 ]{1,60}-----")
_BASE64_AND_SPACE = re.compile(rb"[A-Za-z0-9+/=\s]*")


class KeyLoadError(ValueError):
    """The PEM could not be turned into a usable signing key. Never carries key material."""


def load_private_key(pem: bytes, passphrase: bytes | None = None) -> PrivateKey:
    """Parse a PEM private key (PKCS#1 or PKCS#8 RSA, or PKCS#8 Ed25519), at most 8 KiB."""
    if len(pem) > MAX_PEM_BYTES:
        raise KeyLoadError(
            f"it is larger than {MAX_PEM_BYTES // 1024} KiB, far more than a private key PEM "
            "(a Kalshi key is about 2 KiB): paste only the '-----BEGIN ... PRIVATE KEY-----' block"
        )
    pem = _rewrap_flattened_pem(pem.strip())
    if b"-----BEGIN" not in pem:
        raise KeyLoadError("it is not a PEM private key (no '-----BEGIN ... PRIVATE KEY-----' line)")
    if b"PUBLIC KEY-----" in pem and b"PRIVATE KEY-----" not in pem:
        raise KeyLoadError("it is a public key; Kalshi requests are signed with the private key")
    try:
        # Before anything is decrypted: the key names the work its decryption costs.
        check_key_derivation(pem)
    except CostlyKeyError as err:
        raise KeyLoadError(str(err)) from None
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase)
    except TypeError:
        # cryptography raises TypeError both for "encrypted but no passphrase" and the reverse.
        if passphrase is None:
            raise KeyLoadError("it is encrypted: set the connection extra 'private_key_passphrase'") from None
        raise KeyLoadError(
            "a passphrase was given but the key is not encrypted: remove 'private_key_passphrase'"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        if passphrase is not None and b"ENCRYPTED" in pem:
            raise KeyLoadError("the passphrase is wrong, or the encrypted key is damaged") from None
        raise KeyLoadError("the PEM is damaged or truncated, or not a supported key type") from None
    except Exception as err:  # noqa: BLE001 - any other failure of the parser is still a bad key
        raise KeyLoadError(f"the crypto library could not parse it ({type(err).__name__})") from None
    except BaseException as err:
        # A Rust panic in cryptography (e.g. a PBKDF2 count of 2**32 or more) is a BaseException
        # (pyo3's PanicException), which nothing above catches. Timeouts, interrupts and exits
        # are BaseExceptions too, and go on.
        if not _is_library_panic(err):
            raise
        raise KeyLoadError("the crypto library failed on it (its parameters are out of range)") from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < _MIN_RSA_BITS:
            raise KeyLoadError(f"it is a {key.key_size}-bit RSA key; Kalshi keys are 2048 bits or more")
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise KeyLoadError(f"it is a {type(key).__name__.lstrip('_')}; Kalshi keys are RSA or Ed25519")


def _is_library_panic(err: BaseException) -> bool:
    """pyo3's PanicException: not importable (its module, ``pyo3_runtime``, is not in sys.modules)."""
    kind = type(err)
    return kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"


def _rewrap_flattened_pem(pem: bytes) -> bytes:
    """Restore a PEM whose line breaks became spaces (a paste into a one-line field)."""
    head = _PEM_HEAD.match(pem)
    tail_at = pem.rfind(b"-----END ")
    if head is None or tail_at < head.end() or not _PEM_TAIL.fullmatch(pem, tail_at):
        return pem
    body = pem[head.end() : tail_at]
    if b"\n" in body.strip() or not _BASE64_AND_SPACE.fullmatch(body):
        return pem
    body = b"".join(body.split())
    if not body:
        return pem
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"\n".join([head.group(), *lines, pem[tail_at:]]) + b"\n"


def signing_message(timestamp_ms: str, method: str, url_or_path: str) -> bytes:
    """The exact bytes Kalshi signs: timestamp, upper-case method, path without query."""
    path = urlsplit(url_or_path).path or "/"
    return f"{timestamp_ms}{method.upper()}{path}".encode()


def sign(key: PrivateKey, message: bytes) -> str:
    """Sign ``message`` and return the standard-base64 signature Kalshi expects."""
    if isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(message, _PSS, hashes.SHA256())
    else:
        raw = key.sign(message)
    return base64.b64encode(raw).decode("ascii")


def verify(public_key: PublicKey, message: bytes, signature_b64: str) -> bool:
    """True when ``signature_b64`` is a valid Kalshi signature of ``message``."""
    try:
        raw = base64.b64decode(signature_b64, validate=True)
        if isinstance(public_key, rsa.RSAPublicKey):
            # Kalshi requires the salt to be exactly the digest length, not "any" length.
            public_key.verify(raw, message, _PSS, hashes.SHA256())
        else:
            public_key.verify(raw, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def now_ms() -> str:
    return str(time.time_ns() // 1_000_000)


class KalshiAuth(AuthBase):
    """``requests`` auth that signs each request as it is sent.

    requests calls this once per prepared request, and the hook prepares a new request for
    every attempt, so a retry never resends an old timestamp or signature.
    """

    def __init__(self, key_id: str, key: PrivateKey) -> None:
        self.key_id = key_id
        self._key = key

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        timestamp = now_ms()
        message = signing_message(timestamp, request.method or "GET", request.url or "/")
        request.headers[KEY_HEADER] = self.key_id
        request.headers[TIMESTAMP_HEADER] = timestamp
        request.headers[SIGNATURE_HEADER] = sign(self._key, message)
        return request

    def __repr__(self) -> str:  # never show the key, even in a debugger or a log of locals
        return f"KalshiAuth(key_id={self.key_id!r})"
