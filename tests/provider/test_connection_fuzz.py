"""Fuzz the Kalshi connection: every unusable key, passphrase or host is a KalshiConfigError.

The error must name the connection, must be the provider's own type (never a ValueError,
TypeError or AttributeError from deep inside), and must never carry key material or the
passphrase. A connection that *is* accepted must give a base URL ``requests`` can use.
"""

from __future__ import annotations

import base64
import json
import re
from functools import cache

import pytest
import requests
from airflow.sdk import Connection
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from kalshi_provider.connection import private_key_from_connection, validate_connection
from kalshi_provider.exceptions import KalshiConfigError
from kalshi_provider.signing import sign, signing_message
from kalshi_simulator import private_pem
from tests.e2e.leaks import pem_body_chunks

CI = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONN_ID = "kalshi_fuzzed"
PASSPHRASE = "fuzz-passphrase-0f4c2a9e7b"


@cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def good_pem() -> str:
    return private_pem(rsa_key()).decode()


@cache
def encrypted_pem() -> str:
    return private_pem(rsa_key(), PASSPHRASE, "pkcs8").decode()


def connection(
    *, password=None, extra=None, host=None, port=None, login="key-id", conn_id: str = CONN_ID
) -> Connection:
    return Connection(
        conn_id=conn_id,
        conn_type="kalshi",
        login=login,
        password=password,
        host=host,
        port=port,
        extra=extra if isinstance(extra, str) or extra is None else json.dumps(extra),
    )


def secrets_of(*pems: str, passphrases: tuple[str, ...] = ()) -> list[str]:
    needles = [chunk for pem in pems for chunk in pem_body_chunks(pem)]
    return needles + [p for p in passphrases if len(p) >= 6]


def assert_config_error(conn: Connection, *, secrets: list[str], match: str | None = None) -> str:
    """Loading the key and the settings either works or raises KalshiConfigError, and only that."""
    with pytest.raises(KalshiConfigError) as caught:
        validate_connection(conn)
        private_key_from_connection(conn)
    message = str(caught.value)
    assert repr(conn.conn_id) in message, message
    for secret in secrets:
        assert secret not in message, "the error message carries key material or a passphrase"
    if match:
        assert re.search(match, message), message
    return message


def _usable(key) -> bool:
    message = signing_message("1700000000000", "GET", "/trade-api/v2/portfolio/balance")
    return bool(base64.b64decode(sign(key, message)))


# -- malformed and truncated PEMs ------------------------------------------------------------------


def _mutate(pem: str, data) -> str:
    lines = pem.splitlines()
    kind = data.draw(
        st.sampled_from(
            ["truncate", "drop_line", "replace_char", "insert_text", "swap_header", "shuffle", "noise"]
        )
    )
    if kind == "truncate":
        return pem[: data.draw(st.integers(min_value=0, max_value=len(pem) - 1))]
    if kind == "drop_line":
        index = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
        return "\n".join(lines[:index] + lines[index + 1 :])
    if kind == "replace_char":
        index = data.draw(st.integers(min_value=0, max_value=len(pem) - 1))
        return pem[:index] + data.draw(st.characters()) + pem[index + 1 :]
    if kind == "insert_text":
        index = data.draw(st.integers(min_value=0, max_value=len(pem)))
        return pem[:index] + data.draw(st.text(min_size=1, max_size=20)) + pem[index:]
    if kind == "swap_header":
        label = data.draw(
            st.sampled_from(["EC PRIVATE KEY", "PRIVATE KEY", "PUBLIC KEY", "CERTIFICATE", "X"])
        )
        return re.sub(r"RSA PRIVATE KEY", label, pem)
    if kind == "shuffle":
        body = lines[1:-1]
        return "\n".join([lines[0], *data.draw(st.permutations(body)), lines[-1]])
    return data.draw(st.text(max_size=200))


@pytest.mark.slow
@CI
@given(data=st.data(), where=st.sampled_from(["password", "extra"]))
@example(data=None, where="password")
def test_a_damaged_pem_is_a_config_error_or_still_a_working_key(data, where):
    pem = good_pem() if data is None else _mutate(good_pem(), data)
    assume(pem.strip())
    conn = connection(password=pem) if where == "password" else connection(extra={"private_key": pem})
    try:
        key = private_key_from_connection(conn)
    except KalshiConfigError as err:
        message = str(err)
        assert repr(CONN_ID) in message
        assert not any(chunk in message for chunk in pem_body_chunks(good_pem()))
        return
    assert _usable(key)  # a harmless mutation (whitespace, a base64 padding bit) may still load


@pytest.mark.parametrize("cut", [1, 27, 64, 200, 800, 1600, -60, -2])
def test_a_truncated_key_is_a_config_error(cut):
    pem = good_pem()[:cut]
    assert_config_error(connection(password=pem), secrets=secrets_of(good_pem()))


# -- keys of the wrong type or size ----------------------------------------------------------------


def _pem(key, fmt=serialization.PrivateFormat.PKCS8) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def _wrong_keys() -> list[tuple[str, str, str]]:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    dsa_key = dsa.generate_private_key(1024)
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ed = ed25519.Ed25519PrivateKey.generate()
    unsupported = "Kalshi keys are RSA or Ed25519|not a supported key type"
    return [
        ("ec-pkcs8", _pem(ec_key), unsupported),
        ("ec-sec1", _pem(ec_key, serialization.PrivateFormat.TraditionalOpenSSL), unsupported),
        ("dsa", _pem(dsa_key), unsupported),
        ("dsa-traditional", _pem(dsa_key, serialization.PrivateFormat.TraditionalOpenSSL), unsupported),
        ("ed448", _pem(ed448.Ed448PrivateKey.generate()), unsupported),
        ("x25519", _pem(x25519.X25519PrivateKey.generate()), unsupported),
        ("x448", _pem(x448.X448PrivateKey.generate()), unsupported),
        ("rsa-1024", _pem(short, serialization.PrivateFormat.TraditionalOpenSSL), "1024-bit RSA key"),
        ("rsa-openssh", _pem(rsa_key(), serialization.PrivateFormat.OpenSSH), "not a supported key type"),
        ("ed25519-openssh", _pem(ed, serialization.PrivateFormat.OpenSSH), "not a supported key type"),
        (
            "rsa-public",
            rsa_key()
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode(),
            "it is a public key",
        ),
        (
            "rsa-public-pkcs1",
            rsa_key()
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
            .decode(),
            "it is a public key",
        ),
        ("not-pem", "just some text that is not a key", "not a PEM private key"),
        ("der-as-text", base64.b64encode(b"\x30\x82\x01\x00" * 20).decode(), "not a PEM private key"),
    ]


WRONG_KEYS = _wrong_keys()


@pytest.mark.parametrize("where", ["password", "extra", "file"])
@pytest.mark.parametrize(("name", "pem", "match"), WRONG_KEYS, ids=[name for name, _, _ in WRONG_KEYS])
def test_a_key_of_the_wrong_type_or_size_is_a_config_error(name, pem, match, where, tmp_path):
    if where == "password":
        conn = connection(password=pem)
    elif where == "extra":
        conn = connection(extra={"private_key": pem})
    else:
        path = tmp_path / "key.pem"
        path.write_text(pem)
        conn = connection(extra={"private_key_path": str(path)})
    assert_config_error(conn, secrets=secrets_of(pem), match=match)


# -- passphrases -----------------------------------------------------------------------------------


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=40).filter(lambda p: p != PASSPHRASE and p.strip()))
@example("fuzz-passphrase-0f4c2a9e7")  # one character short
@example(PASSPHRASE.upper())
def test_a_wrong_passphrase_is_a_config_error_that_does_not_echo_it(passphrase):
    conn = connection(extra={"private_key": encrypted_pem(), "private_key_passphrase": passphrase})
    assert_config_error(
        conn,
        secrets=secrets_of(encrypted_pem(), passphrases=(passphrase, PASSPHRASE)),
        match="passphrase is wrong",
    )


def test_the_right_passphrase_loads_the_key():
    conn = connection(extra={"private_key": encrypted_pem(), "private_key_passphrase": PASSPHRASE})
    assert _usable(private_key_from_connection(conn))


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"private_key": "ENCRYPTED"}, "it is encrypted"),
        ({"private_key": "PLAIN", "private_key_passphrase": PASSPHRASE}, "not encrypted"),
    ],
    ids=["encrypted-without-passphrase", "passphrase-for-a-plain-key"],
)
def test_a_passphrase_missing_or_superfluous_is_a_config_error(extra, match):
    extra = {**extra, "private_key": encrypted_pem() if extra["private_key"] == "ENCRYPTED" else good_pem()}
    assert_config_error(
        connection(extra=extra),
        secrets=secrets_of(good_pem(), encrypted_pem(), passphrases=(PASSPHRASE,)),
        match=match,
    )


# -- where the key is, and what the extras hold ----------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"password": "   "},
        {"password": "PEM", "extra": {"private_key": "PEM"}},
        {"password": "PEM", "extra": {"private_key_path": "/nonexistent/key.pem"}},
        {"extra": {"private_key_path": "/nonexistent/key.pem"}},
        {"extra": {"private_key_path": "/"}},
        {"login": "", "password": "PEM"},
        {"login": "   ", "password": "PEM"},
        {"password": "PEM", "extra": {"environment": "staging"}},
        {"password": "PEM", "extra": {"timeout": "soon"}},
        {"password": "PEM", "extra": {"timeout": 0}},
        {"password": "PEM", "extra": {"timeout": -1}},
        {"password": "PEM", "extra": {"timeout": 301}},
        {"password": "PEM", "extra": {"timeout": "nan"}},
        {"password": "PEM", "extra": {"timeout": [1]}},
        {"password": "PEM", "extra": {"max_retries": 11}},
        {"password": "PEM", "extra": {"max_retries": -1}},
        {"password": "PEM", "extra": {"max_retries": 2.5}},
        {"password": "PEM", "extra": {"max_retries": "many"}},
    ],
    ids=lambda fields: json.dumps(fields)[:60],
)
def test_an_unusable_connection_field_is_a_config_error(fields):
    fields = json.loads(json.dumps(fields).replace('"PEM"', json.dumps(good_pem())))
    assert_config_error(connection(**fields), secrets=secrets_of(good_pem()))


# -- hosts: schemes, ports and paths ---------------------------------------------------------------

schemes = st.sampled_from(
    ["https", "http", "HTTPS", "Http", "ftp", "file", "ws", "wss", "javascript", "gopher", ""]
)
hostnames = st.sampled_from(
    [
        "api.elections.kalshi.com",
        "external-api.kalshi.com",
        "localhost",
        "127.0.0.1",
        "127.8.9.10",
        "[::1]",
        "[2001:db8::1]",
        "10.0.0.5",
        "example.com.",
        "",
        "[::1",
        "::1",
        "user:secret@api.kalshi.com",
    ]
)
ports = st.one_of(
    st.just(""),
    st.integers(min_value=-5, max_value=70000).map(lambda port: f":{port}"),
    st.sampled_from([":", ":abc", ":８０", ": 443", ":443 ", ":0x1bb"]),
)
paths = st.one_of(
    st.sampled_from(
        ["", "/", "/trade-api/v2", "/trade-api/v2/", "//", "/a b", "/%zz", "/ü", "/x;y", "/..", "?q=1", "#f"]
    ),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12).map(lambda text: "/" + text),
)
port_fields = st.none() | st.integers(min_value=-10, max_value=70_000)


@CI
@given(scheme=schemes, hostname=hostnames, port=ports, path=paths, port_field=port_fields)
@example(scheme="https", hostname="api.elections.kalshi.com", port="", path="", port_field=None)
@example(scheme="http", hostname="10.0.0.5", port="", path="", port_field=None)
@example(scheme="https", hostname="localhost", port=":65536", path="", port_field=None)
@example(scheme="ftp", hostname="user:secret@api.kalshi.com", port="", path="", port_field=None)
def test_any_host_is_a_config_error_or_a_usable_base_url(scheme, hostname, port, path, port_field):
    host = f"{scheme}://{hostname}{port}{path}" if scheme else f"{hostname}{port}{path}"
    conn = connection(password=good_pem(), host=host, port=port_field)
    try:
        settings = validate_connection(conn)
    except KalshiConfigError as err:
        assert repr(CONN_ID) in str(err)
        return
    url = requests.compat.urlsplit(settings.base_url)
    assert url.scheme == "https" or (
        url.scheme == "http"
        and url.hostname in ("localhost", "127.0.0.1", "::1")
        or url.hostname.startswith("127.")
    )
    assert not url.query and not url.fragment and "@" not in url.netloc
    assert url.port is None or 1 <= url.port <= 65535
    requests.Request("GET", settings.base_url + "/portfolio/balance").prepare()  # requests can send it


@pytest.mark.parametrize(
    ("host", "match"),
    [
        ("ftp://api.elections.kalshi.com", "unusable host"),
        ("file:///etc/passwd", "unusable host"),
        ("javascript:alert(1)", "unusable host|invalid port"),
        ("ws://127.0.0.1:8765", "unusable host"),
        ("wss://api.elections.kalshi.com", "unusable host"),
        ("https://", "unusable host"),
        ("https://:443/trade-api/v2", "unusable host"),
        ("https://api.elections.kalshi.com/trade-api/v2?debug=1", "unusable host"),
        ("https://api.elections.kalshi.com/trade-api/v2#x", "unusable host"),
        ("https://api.elections.kalshi.com:65536", "invalid port"),
        ("https://api.elections.kalshi.com:-1", "invalid port"),
        ("https://api.elections.kalshi.com:https", "invalid port"),
        ("api.elections.kalshi.com:99999", "invalid port"),
        ("http://api.elections.kalshi.com", "plain http"),
        ("http://10.0.0.5:8765", "plain http"),
        ("http://localhost.evil.example", "plain http"),
        ("http://[2001:db8::1]", "plain http"),
    ],
)
def test_an_odd_scheme_port_or_path_is_a_config_error(host, match):
    assert_config_error(
        connection(password=good_pem(), host=host), secrets=secrets_of(good_pem()), match=match
    )


# -- found by the fuzzing above: ports, whitespace, brackets and extras of the wrong JSON type ----


@pytest.mark.parametrize("port", [-1, 65536, 99999])
def test_a_port_field_out_of_range_is_a_config_error(port):
    assert_config_error(
        connection(password=good_pem(), host="https://api.elections.kalshi.com", port=port), secrets=[]
    )


def test_a_hostname_with_a_space_is_a_config_error():
    assert_config_error(connection(password=good_pem(), host="https://api.kalshi .com"), secrets=[])


@pytest.mark.parametrize("host", ["https://[::1", "https://::1]/trade-api/v2", "[2001:db8::1"])
def test_an_unbalanced_ipv6_bracket_is_a_config_error(host):
    assert_config_error(connection(password=good_pem(), host=host), secrets=[])


@pytest.mark.parametrize(
    "extra",
    [
        {"private_key": "ENCRYPTED", "private_key_passphrase": 12345678},
        {"private_key": 12345},
        {"private_key_path": ["/a/key.pem"]},
    ],
    ids=["numeric-passphrase", "numeric-private-key", "list-key-path"],
)
def test_an_extra_of_the_wrong_json_type_is_a_config_error(extra):
    if extra.get("private_key") == "ENCRYPTED":
        extra = {**extra, "private_key": encrypted_pem()}
    assert_config_error(connection(extra=extra), secrets=secrets_of(encrypted_pem()))


@pytest.mark.parametrize("extra", ["[1, 2]", '"text"', "42"])
def test_an_extra_that_is_not_a_json_object_is_a_config_error(extra):
    assert_config_error(connection(password=good_pem(), extra=extra), secrets=secrets_of(good_pem()))


# -- through the hook, as a task meets them --------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"password": "WRONG-PASSPHRASE"},
        {"password": "TRUNCATED"},
        {"password": "EC"},
        {"password": "GOOD", "host": "http://api.elections.kalshi.com"},
        {"password": "GOOD", "host": "ftp://api.elections.kalshi.com"},
        {"password": "GOOD", "host": "https://api.elections.kalshi.com:99999"},
    ],
    ids=["wrong-passphrase", "truncated", "ec-key", "plain-http", "ftp", "port-out-of-range"],
)
def test_the_hook_reports_a_config_error_without_key_material(fields, set_connection):
    from kalshi_provider.hooks.kalshi import KalshiHook

    pems = {
        "GOOD": good_pem(),
        "TRUNCATED": good_pem()[:900],
        "EC": _pem(ec.generate_private_key(ec.SECP256R1())),
        "WRONG-PASSPHRASE": encrypted_pem(),
    }
    pem = pems[fields["password"]]
    extra = (
        {"private_key_passphrase": "not-the-" + PASSPHRASE}
        if fields["password"] == "WRONG-PASSPHRASE"
        else {}
    )
    set_connection(
        "kalshi_hooked", "kalshi", login="key-id", password=pem, host=fields.get("host"), extra=extra
    )
    hook = KalshiHook(kalshi_conn_id="kalshi_hooked")
    with pytest.raises(KalshiConfigError) as caught:
        hook.get_total_resting_order_value()
    ok, message = hook.test_connection()
    assert not ok and message == str(caught.value)
    for text in (message, repr(caught.value), repr(hook)):
        assert "'kalshi_hooked'" in message
        assert not any(secret in text for secret in secrets_of(pem, passphrases=(PASSPHRASE,)))
