"""Turn an Airflow Connection into validated Kalshi client settings.

Kept apart from the hook so the rules (which host, which key, which limits) read in one place and
so the connection form's metadata and the hook cannot disagree about field names. Import-light:
the provider info imports it for the extra names.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from kalshi_provider.display import shown
from kalshi_provider.exceptions import KalshiConfigError
from kalshi_provider.limits import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    MAX_HOST_LENGTH,
    MAX_KEY_ID_LENGTH,
    MAX_KEY_PATH_LENGTH,
    MAX_PEM_BYTES,
    MAX_RETRIES_LIMIT,
    MAX_TIMEOUT_SECONDS,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from kalshi_provider.signing import PrivateKey

CONN_TYPE = "kalshi"
API_PATH = "/trade-api/v2"
#: Kalshi's recommended hosts, dedicated to the external Trade API. The shared hosts
#: (https://api.elections.kalshi.com, https://demo-api.kalshi.co) still work as a custom Base URL.
BASE_URLS = {
    "production": "https://external-api.kalshi.com" + API_PATH,
    "demo": "https://external-api.demo.kalshi.co" + API_PATH,
}

# Names of the connection extras; provider metadata (the UI form) uses the same constants.
EXTRA_PRIVATE_KEY = "private_key"
EXTRA_PRIVATE_KEY_PATH = "private_key_path"
EXTRA_PASSPHRASE = "private_key_passphrase"
EXTRA_ENVIRONMENT = "environment"
EXTRA_TIMEOUT = "timeout"
EXTRA_MAX_RETRIES = "max_retries"

DEFAULT_TIMEOUT = DEFAULT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class ValidatedConnection:
    """Everything the hook needs, checked once. ``repr`` never shows the key."""

    conn_id: str
    key_id: str
    base_url: str
    environment: str
    timeout: float
    max_retries: int


def validate_connection(conn: Connection) -> ValidatedConnection:
    """Validate the non-secret parts of a Kalshi connection."""
    _check_type(conn)
    extras = _extras(conn)
    environment = _environment(conn.conn_id, extras)
    return ValidatedConnection(
        conn_id=conn.conn_id,
        key_id=_key_id(conn.conn_id, conn.login),
        base_url=resolve_base_url(conn.conn_id, conn.host, conn.port, environment),
        environment=environment,
        timeout=_positive_float(conn.conn_id, extras, EXTRA_TIMEOUT, DEFAULT_TIMEOUT, MAX_TIMEOUT_SECONDS),
        max_retries=_retry_count(conn.conn_id, extras),
    )


def _check_type(conn: Connection) -> None:
    """Refuse another kind of connection (SSH, SFTP, HTTP...) named where a Kalshi one belongs:
    its key and host were never meant for Kalshi."""
    conn_type = conn.conn_type or ""
    if conn_type != CONN_TYPE:
        raise _config_error(
            conn.conn_id,
            f"is of type {_echo(conn_type) if conn_type else 'none'}, not {CONN_TYPE!r}: the Kalshi hook "
            "only uses Kalshi connections. Create one with Connection Type 'Kalshi' and name that one "
            "(e.g. in the DAG's kalshi_conn_ids)",
        )


def _key_id(conn_id: str, login: str | None) -> str:
    """The API key ID: printable ASCII without spaces, of bounded length. Never echoed: a value
    that fails these rules is often a secret pasted into the wrong field."""
    key_id = (login or "").strip()
    if not key_id:
        raise _config_error(conn_id, "has no API key ID: put the key ID in the 'API key ID' (login) field")
    if len(key_id) > MAX_KEY_ID_LENGTH or not all("!" <= ch <= "~" for ch in key_id):
        raise _config_error(
            conn_id,
            "has an API key ID (login) that cannot be one (it is not shown here): a key ID is printable "
            f"ASCII without spaces or line breaks, at most {MAX_KEY_ID_LENGTH} characters; Kalshi's are "
            "UUIDs such as a952bcbe-ec3b-4b5b-b8f9-11dae589608c. Put the key ID in the 'API key ID' "
            "field and the private key in its own field",
        )
    return key_id


def private_key_from_connection(conn: Connection) -> PrivateKey:
    """Load the signing key from exactly one place: the key field, the password, or a key file.

    The UI form stores the PEM in the ``private_key`` extra (a multi-line secret field); URIs,
    environment variables and the CLI usually put it in the password.
    """
    # Imported here: the provider info (read at every CLI call) imports this module for the names.
    from kalshi_provider.signing import KeyLoadError, load_private_key

    _check_type(conn)
    extras = _extras(conn)
    inline_field = _text_extra(conn.conn_id, extras, EXTRA_PRIVATE_KEY).strip()
    password = (conn.password or "").strip()
    path = _text_extra(conn.conn_id, extras, EXTRA_PRIVATE_KEY_PATH).strip()
    given = [
        name
        for name, value in (
            (f"the '{EXTRA_PRIVATE_KEY}' field", inline_field),
            ("the password field", password),
            (f"'{EXTRA_PRIVATE_KEY_PATH}'", path),
        )
        if value
    ]
    if not given:
        raise _config_error(
            conn.conn_id,
            "has no private key: paste the PEM into the private key field, or set "
            f"'{EXTRA_PRIVATE_KEY_PATH}' to a PEM file readable by the workers",
        )
    if len(given) > 1:
        raise _config_error(conn.conn_id, f"has a key in {' and '.join(given)}: keep only one of them")
    if path:
        pem, source = _read_key_file(conn.conn_id, path), f"the key file {_shown_path(path)}"
    else:
        pem, source = _unescape_newlines(inline_field or password).encode(), given[0]
    passphrase = _text_extra(conn.conn_id, extras, EXTRA_PASSPHRASE) or None
    try:
        return load_private_key(pem, passphrase.encode() if passphrase else None)
    except KeyLoadError as err:
        raise _config_error(conn.conn_id, f"cannot use {source}: {err}") from None


def resolve_base_url(conn_id: str, host: str | None, port: int | None, environment: str) -> str:
    """Apply the host rules: default per environment, https only (plain http on loopback)."""
    host = (host or "").strip()
    if not host:
        return BASE_URLS[environment]
    if len(host) > MAX_HOST_LENGTH:
        raise _config_error(conn_id, f"has a host longer than {MAX_HOST_LENGTH} characters: {_BASE_URL_HINT}")
    try:
        parts = urlsplit(host if "://" in host else f"https://{host}")
    except ValueError:  # e.g. an unbalanced '[' of an IPv6 address
        raise _config_error(conn_id, f"has an unusable host {_shown(host)!r}: {_BASE_URL_HINT}") from None
    scheme = parts.scheme.lower()
    try:
        hostname, parsed_port = parts.hostname, parts.port
    except ValueError:
        raise _config_error(conn_id, f"has a host with an invalid port: {_shown(host)!r}") from None
    if port is not None and not 0 < port <= 65535:
        raise _config_error(conn_id, f"has port {port}: give a port from 1 to 65535")
    if (
        scheme not in ("https", "http")
        or not hostname
        or any(ch.isspace() or not ch.isprintable() for ch in hostname)
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise _config_error(conn_id, f"has an unusable host {_shown(host)!r}: {_BASE_URL_HINT}")
    if scheme == "http" and not _is_loopback(hostname):
        raise _config_error(
            conn_id,
            f"uses plain http for {hostname}: Kalshi requests carry account data and must use https "
            "(plain http is allowed only on loopback, for the local simulator)",
        )
    effective_port = parsed_port or port
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if effective_port:
        netloc += f":{effective_port}"
    path = parts.path.rstrip("/") or API_PATH
    return urlunsplit((scheme, netloc, path, "", ""))


_BASE_URL_HINT = f"give a base URL such as {BASE_URLS['production']}"


def _shown(host: str) -> str:
    """The host as typed, minus any ``user:password@`` part, for error messages."""
    scheme, sep, rest = host.rpartition("://")
    authority, slash, path = rest.partition("/")
    authority = authority.rpartition("@")[2]
    text = f"{scheme}{sep}{authority}{slash}{path}"
    if len(text) > 120 or "-----" in text or any(ch.isspace() for ch in text):
        # Not a URL as typed, maybe a secret pasted into the wrong field: describe, don't repeat.
        return f"(a value of {len(host)} characters, not shown)"
    return shown(text)


def _shown_path(path: str) -> str:
    """A key path as typed, unless it cannot be a path (a PEM pasted into the path field)."""
    if len(path) <= 256 and path.isprintable() and "-----" not in path:
        return path
    return f"(a value of {len(path)} characters, not shown)"


def _echo(value: Any) -> str:
    """A short setting as typed, for a message; anything longer is described, not repeated
    (a long value in a settings field is often a secret pasted into the wrong one)."""
    text = str(value)
    if len(text) <= 24 and text.isprintable():
        return repr(value)
    return f"(a {type(value).__name__} of {len(text)} characters, not shown)"


def _extras(conn: Connection) -> dict[str, Any]:
    extras = conn.extra_dejson
    if not isinstance(extras, dict):
        raise _config_error(conn.conn_id, "has an 'extra' that is not a JSON object")
    return extras


def _text_extra(conn_id: str, extras: dict[str, Any], name: str) -> str:
    """A string extra; any other JSON type is a config error (its value is never echoed)."""
    value = extras.get(name)
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise _config_error(conn_id, f"has a {type(value).__name__} in '{name}': give it as a string")
    return value


def _environment(conn_id: str, extras: dict[str, Any]) -> str:
    raw = extras.get(EXTRA_ENVIRONMENT) or "production"
    environment = raw.strip().lower() if isinstance(raw, str) else ""
    if environment not in BASE_URLS:
        raise _config_error(conn_id, f"has environment {_echo(raw)}: use 'production' or 'demo'")
    return environment


def _positive_float(conn_id: str, extras: dict[str, Any], name: str, default: float, limit: float) -> float:
    raw = extras.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw) if isinstance(raw, (int, float, str)) and len(str(raw)) <= 32 else -1.0
    except ValueError:
        value = -1.0
    if not 0 < value <= limit:  # also refuses NaN
        raise _config_error(
            conn_id, f"has {name}={_echo(raw)}: give a number of seconds above 0 and at most {limit:g}"
        )
    return value


def _retry_count(conn_id: str, extras: dict[str, Any]) -> int:
    raw = extras.get(EXTRA_MAX_RETRIES)
    if raw in (None, ""):
        return DEFAULT_MAX_RETRIES
    try:
        value = int(str(raw)) if len(str(raw)) <= 8 else -1
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_RETRIES_LIMIT:
        raise _config_error(
            conn_id,
            f"has {EXTRA_MAX_RETRIES}={_echo(raw)}: give a whole number from 0 to {MAX_RETRIES_LIMIT}",
        )
    return value


def _read_key_file(conn_id: str, path: str) -> bytes:
    """The key file's bytes: a regular file of at most MAX_PEM_BYTES, read without blocking.

    This runs in the API server too (the Test button), so a path to a FIFO, a device or a huge
    file must cost nothing. Every way the path can be unusable gets the same message, so the
    message does not tell which files exist on the machine.
    """
    unusable = _config_error(
        conn_id,
        f"names the key file {_shown_path(path)} in '{EXTRA_PRIVATE_KEY_PATH}', which cannot be used: "
        f"it must be a regular file of at most {MAX_PEM_BYTES // 1024} KiB holding the PEM, readable "
        "by the workers and the API server",
    )
    if len(path) > MAX_KEY_PATH_LENGTH or "\0" in path:
        raise unusable
    try:
        # stat() first, so a FIFO or device is never even opened; fstat() after open() checks
        # what was opened (the path may have changed in between). O_NONBLOCK: opening a FIFO
        # must not wait for a writer.
        if not stat.S_ISREG(os.stat(os.path.expanduser(path)).st_mode):
            raise unusable
        fd = os.open(
            os.path.expanduser(path), os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
        )
    except (OSError, ValueError):
        raise unusable from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_PEM_BYTES:
            raise unusable
        data = os.read(fd, MAX_PEM_BYTES + 1)
        while data and len(data) <= MAX_PEM_BYTES:
            more = os.read(fd, MAX_PEM_BYTES + 1 - len(data))
            if not more:
                break
            data += more
    except OSError:
        raise unusable from None
    finally:
        os.close(fd)
    if len(data) > MAX_PEM_BYTES:
        raise unusable
    return data


def _unescape_newlines(pem: str) -> str:
    """Accept a PEM whose line breaks arrived as literal ``\\n`` (common in env vars and JSON)."""
    return pem.replace("\\n", "\n") if "\n" not in pem else pem


def is_loopback_url(url: str) -> bool:
    """True for an http(s) URL whose host is loopback (the simulator, a local test receiver)."""
    try:
        hostname = urlsplit(url).hostname
    except ValueError:
        return False
    return bool(hostname) and _is_loopback(hostname)


def _is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _config_error(conn_id: str, problem: str) -> KalshiConfigError:
    return KalshiConfigError(f"Kalshi connection {conn_id!r} {problem}.")
