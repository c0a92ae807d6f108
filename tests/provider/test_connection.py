"""How a Kalshi Airflow connection becomes settings: hosts, extras and where the key comes from."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from kalshi_provider.connection import (
    private_key_from_connection,
    resolve_base_url,
    settings_from_connection,
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
        (None, None, "production", "https://api.elections.kalshi.com/trade-api/v2"),
        ("", None, "demo", "https://demo-api.kalshi.co/trade-api/v2"),
        ("external-api.kalshi.com", None, "production", "https://external-api.kalshi.com/trade-api/v2"),
        (
            "https://external-api.demo.kalshi.co/",
            None,
            "demo",
            "https://external-api.demo.kalshi.co/trade-api/v2",
        ),
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
    settings = settings_from_connection(connection(login=" key-1 ", extra={"environment": "Demo"}))
    assert settings.key_id == "key-1"
    assert settings.environment == "demo"
    assert settings.base_url == "https://demo-api.kalshi.co/trade-api/v2"
    assert (settings.timeout, settings.max_retries) == (10.0, 4)
    tuned = settings_from_connection(connection(login="k", extra={"timeout": "2.5", "max_retries": "0"}))
    assert (tuned.timeout, tuned.max_retries) == (2.5, 0)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "has no API key ID"),
        ({"login": "k", "extra": {"environment": "staging"}}, "use 'production' or 'demo'"),
        ({"login": "k", "extra": {"timeout": "soon"}}, "timeout='soon'"),
        ({"login": "k", "extra": {"timeout": 0}}, "between 0 and 300"),
        ({"login": "k", "extra": {"max_retries": 11}}, "whole number from 0 to 10"),
        ({"login": "k", "extra": {"max_retries": "2.5"}}, "whole number from 0 to 10"),
    ],
)
def test_bad_settings_say_what_to_fix(fields, expected):
    with pytest.raises(KalshiConfigError, match=expected):
        settings_from_connection(connection(**fields))


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
        ({"extra": {"private_key_path": "/nonexistent/kalshi.pem"}}, "cannot be read"),
        ({"password": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"}, "damaged"),
    ],
)
def test_key_errors_name_the_connection_and_the_fix(fields, expected):
    with pytest.raises(KalshiConfigError, match=expected) as caught:
        private_key_from_connection(connection(login="k", **fields))
    assert "Kalshi connection 'kalshi_x'" in str(caught.value)
