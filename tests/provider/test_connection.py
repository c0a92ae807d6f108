"""How a Kalshi Airflow connection becomes settings: hosts, extras and where the key comes from."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from airflow.sdk import Connection
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from kalshi_provider.connection import (
    private_key_from_connection,
    resolve_base_url,
    validate_connection,
)
from kalshi_provider.exceptions import KalshiConfigError


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def connection(**fields) -> Connection:
    extra = fields.pop("extra", None)
    return Connection(
        conn_id="kalshi_x",
        conn_type="kalshi",
        extra=json.dumps(extra) if extra is not None else None,
        **fields,
    )


@pytest.mark.parametrize(
    ("host", "port", "environment", "expected"),
    [
        # Kalshi's recommended hosts are the defaults ...
        (None, None, "production", "https://external-api.kalshi.com/trade-api/v2"),
        ("", None, "demo", "https://external-api.demo.kalshi.co/trade-api/v2"),
        # ... and the older shared hosts still work as a custom Base URL.
        ("api.elections.kalshi.com", None, "production", "https://api.elections.kalshi.com/trade-api/v2"),
        ("https://demo-api.kalshi.co/", None, "demo", "https://demo-api.kalshi.co/trade-api/v2"),
        (
            "https://proxy.example.com:8443/kalshi/trade-api/v2/",
            None,
            "production",
            "https://proxy.example.com:8443/kalshi/trade-api/v2",
        ),
        ("proxy.example.com", 9443, "production", "https://proxy.example.com:9443/trade-api/v2"),
        ("http://127.0.0.1:8765", None, "production", "http://127.0.0.1:8765/trade-api/v2"),
        ("http://localhost:8765/trade-api/v2", None, "production", "http://localhost:8765/trade-api/v2"),
        ("http://[::1]:8765", None, "production", "http://[::1]:8765/trade-api/v2"),
    ],
)
def test_base_url_rules(host, port, environment, expected):
    assert resolve_base_url("kalshi_x", host, port, environment) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("http://api.elections.kalshi.com", "must use https"),
        ("http://10.0.0.5:8765", "must use https"),
        ("ftp://api.elections.kalshi.com", "unusable host"),
        ("https://api.elections.kalshi.com/trade-api/v2?x=1", "unusable host"),
        ("https://api.elections.kalshi.com:99999", "invalid port"),
        ("https://", "unusable host"),
    ],
)
def test_bad_hosts_are_refused_with_the_connection_id(host, expected):
    with pytest.raises(KalshiConfigError, match=expected) as caught:
        resolve_base_url("kalshi_x", host, None, "production")
    assert "'kalshi_x'" in str(caught.value)


def test_credentials_typed_into_the_host_are_refused_and_not_echoed():
    with pytest.raises(KalshiConfigError, match="unusable host") as caught:
        resolve_base_url("kalshi_x", "https://user:hunter2@api.elections.kalshi.com", None, "production")
    assert "hunter2" not in str(caught.value)
    assert "https://api.elections.kalshi.com" in str(caught.value)


def test_defaults_and_extras():
    settings = validate_connection(connection(login=" key-1 ", extra={"environment": "Demo"}))
    assert settings.key_id == "key-1"
    assert settings.environment == "demo"
    assert settings.base_url == "https://external-api.demo.kalshi.co/trade-api/v2"
    assert (settings.timeout, settings.max_retries) == (10.0, 2)
    tuned = validate_connection(connection(login="k", extra={"timeout": "2.5", "max_retries": "0"}))
    assert (tuned.timeout, tuned.max_retries) == (2.5, 0)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "has no API key ID"),
        ({"login": "k", "extra": {"environment": "staging"}}, "use 'production' or 'demo'"),
        ({"login": "k", "extra": {"timeout": "soon"}}, "timeout='soon'"),
        ({"login": "k", "extra": {"timeout": 0}}, "above 0 and at most 60"),
        ({"login": "k", "extra": {"timeout": 61}}, "above 0 and at most 60"),
        ({"login": "k", "extra": {"max_retries": 5}}, "whole number from 0 to 4"),
        ({"login": "k", "extra": {"max_retries": "2.5"}}, "whole number from 0 to 4"),
    ],
)
def test_bad_settings_say_what_to_fix(fields, expected):
    with pytest.raises(KalshiConfigError, match=expected):
        validate_connection(connection(**fields))


def test_key_from_password_field_extra_or_file(rsa_pem, tmp_path):
    key_file = tmp_path / "kalshi.pem"
    key_file.write_text(rsa_pem)
    sources = [
        connection(login="k", password=rsa_pem),
        connection(login="k", extra={"private_key": rsa_pem}),
        connection(login="k", extra={"private_key_path": str(key_file)}),
        # Line breaks escaped as \n, as they arrive through env vars and JSON more often than not.
        connection(login="k", password=rsa_pem.replace("\n", "\\n")),
    ]
    numbers = {private_key_from_connection(conn).private_numbers() for conn in sources}
    assert len(numbers) == 1


def test_ed25519_key_and_encrypted_key(tmp_path):
    ed_pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert isinstance(
        private_key_from_connection(connection(login="k", password=ed_pem.decode())),
        ed25519.Ed25519PrivateKey,
    )
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encrypted = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret-pass"),
    )
    loaded = private_key_from_connection(
        connection(login="k", password=encrypted.decode(), extra={"private_key_passphrase": "s3cret-pass"})
    )
    assert loaded.private_numbers() == rsa_key.private_numbers()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "has no private key"),
        ({"password": "PEM", "extra": {"private_key_path": "/x.pem"}}, "keep only one of them"),
        ({"extra": {"private_key_path": "/nonexistent/kalshi.pem"}}, "cannot be used"),
        ({"password": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"}, "damaged"),
    ],
)
def test_key_errors_name_the_connection_and_the_fix(fields, expected):
    with pytest.raises(KalshiConfigError, match=expected) as caught:
        private_key_from_connection(connection(login="k", **fields))
    assert "Kalshi connection 'kalshi_x'" in str(caught.value)


# -- the API key ID: checked up front, never echoed -------------------------------------------------


def test_a_uuid_key_id_is_accepted():
    key_id = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"
    assert validate_connection(connection(login=key_id)).key_id == key_id


@pytest.mark.parametrize(
    "login",
    [
        "PEM",  # the private key pasted into the key ID field
        "key id",
        "key\tid",
        "key\r\nX-Injected: 1",
        "key\x00id",
        "key\x7fid",
        "ключ-ид",  # not Latin-1: http.client could not even send it
        "clé",  # Latin-1 but not ASCII
        "a\u200bb",  # zero-width space
        "k" * 129,
    ],
    ids=lambda login: "pem" if login == "PEM" else repr(login)[:20],
)
def test_a_key_id_that_cannot_be_one_is_refused_without_repeating_it(login, rsa_pem):
    login = rsa_pem if login == "PEM" else login
    with pytest.raises(KalshiConfigError, match="has an API key ID") as caught:
        validate_connection(connection(login=login))
    message = str(caught.value)
    assert "not shown here" in message and "UUID" in message
    assert "BEGIN" not in message and "ключ" not in message and "k" * 20 not in message
    assert all(line not in message for line in rsa_pem.splitlines()[1:-1])


# -- only Kalshi connections --------------------------------------------------------------------------


@pytest.mark.parametrize("conn_type", ["ssh", "sftp", "http", "postgres", "generic", "", None])
def test_a_connection_of_another_type_is_refused(conn_type, rsa_pem):
    conn = Connection(
        conn_id="kalshi_x", conn_type=conn_type, login="k", password=rsa_pem, host="ssh.example"
    )
    for load in (validate_connection, private_key_from_connection):
        with pytest.raises(KalshiConfigError, match="not 'kalshi'") as caught:
            load(conn)
        assert (
            f"is of type {conn_type!r}" in str(caught.value)
            if conn_type
            else "type none" in str(caught.value)
        )
        assert "Connection Type 'Kalshi'" in str(caught.value)


# -- every field: bounded, linear, never echoed at length ---------------------------------------------


@pytest.mark.process
def test_huge_values_in_every_field_are_refused_quickly_and_not_echoed():
    """200 kB in each field, in a subprocess with a generous bound.

    Linear code refuses them in milliseconds (Airflow's own secrets masker, which compiles a
    regular expression from every secret extra it is shown, takes about a second); the old
    backtracking PEM parse needed hours for the same size. The bound only keeps a regression
    from hanging the suite.
    """
    script = textwrap.dedent(
        """
        import json
        from airflow.sdk import Connection
        from kalshi_provider.connection import private_key_from_connection, validate_connection
        from kalshi_provider.exceptions import KalshiConfigError

        size = 200_000
        big = "A" * size
        head = "-----BEGIN RSA PRIVATE KEY-----"
        cases = {
            "login": {"login": big},
            "host": {"login": "k", "host": "https://" + big},
            "host-with-path": {"login": "k", "host": "https://example.com/" + " /" * (size // 2)},
            "timeout": {"login": "k", "extra": {"timeout": "1" * size}},
            "max_retries": {"login": "k", "extra": {"max_retries": "9" * size}},
            "environment": {"login": "k", "extra": {"environment": big}},
            "password": {"login": "k", "password": head + " " * size + "A"},
            "private_key": {"login": "k", "extra": {"private_key": head + "\\\\n" * (size // 2)}},
            "private_key_path": {"login": "k", "extra": {"private_key_path": "/" + big}},
            "passphrase": {"login": "k", "password": head, "extra": {"private_key_passphrase": big}},
        }
        for name, fields in cases.items():
            extra = fields.pop("extra", None)
            extra = json.dumps(extra) if extra else None
            conn = Connection(conn_id="kalshi_big", conn_type="kalshi", extra=extra, **fields)
            try:
                validate_connection(conn)
                private_key_from_connection(conn)
            except KalshiConfigError as err:
                print(name, len(str(err)), "AAAAAAAAAAAAAAAAAAAA" in str(err))
            else:
                print(name, "ACCEPTED")
        """
    )
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("refusing the huge fields took more than 120 s: some parse is not linear")
    assert done.returncode == 0, done.stderr[-3000:]
    results = [line.split() for line in done.stdout.splitlines()]
    assert len(results) == 10, done.stdout
    for name, length, *echoed in results:
        assert length != "ACCEPTED", name
        assert int(length) < 800 and echoed == ["False"], (name, length)


def test_a_pem_pasted_into_the_host_field_is_not_repeated(rsa_pem):
    for host in (rsa_pem, rsa_pem.replace("\n", " "), "https://" + rsa_pem.replace("\n", "")):
        with pytest.raises(KalshiConfigError) as caught:
            validate_connection(connection(login="k", host=host))
        message = str(caught.value)
        assert "BEGIN" not in message
        assert not any(line[:16] in message for line in rsa_pem.splitlines()[1:-1])
