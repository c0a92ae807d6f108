"""Generated keys come out in Kalshi's formats and load with the provider's own loader."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from kalshi_provider.signing import load_private_key, sign, signing_message, verify
from kalshi_simulator import generate_private_key, load_public_key, private_pem, public_pem


@pytest.fixture(scope="module")
def rsa_key():
    return generate_private_key("rsa")


def test_rsa_is_2048_bits(rsa_key):
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    assert rsa_key.key_size == 2048


@pytest.mark.parametrize(
    ("fmt", "header"),
    [(None, b"BEGIN RSA PRIVATE KEY"), ("pkcs1", b"BEGIN RSA PRIVATE KEY"), ("pkcs8", b"BEGIN PRIVATE KEY")],
)
def test_rsa_pem_formats_round_trip(rsa_key, fmt, header):
    pem = private_pem(rsa_key, fmt=fmt)
    assert header in pem
    assert load_private_key(pem).private_numbers() == rsa_key.private_numbers()


@pytest.mark.parametrize("fmt", ["pkcs1", "pkcs8"])
def test_encrypted_pem(rsa_key, fmt):
    pem = private_pem(rsa_key, passphrase="s3cret", fmt=fmt)
    assert b"ENCRYPTED" in pem
    assert load_private_key(pem, b"s3cret").private_numbers() == rsa_key.private_numbers()


def test_ed25519_is_pkcs8_only():
    key = generate_private_key("ed25519")
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert b"BEGIN PRIVATE KEY" in private_pem(key)
    assert isinstance(load_private_key(private_pem(key, passphrase=b"pw"), b"pw"), ed25519.Ed25519PrivateKey)
    with pytest.raises(ValueError, match="PKCS#1"):
        private_pem(key, fmt="pkcs1")


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_public_pem_round_trip_verifies(kind):
    key = generate_private_key(kind)
    pem = public_pem(key)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert public_pem(key.public_key()) == pem
    message = signing_message("1703123456789", "GET", "/trade-api/v2/portfolio/balance")
    assert verify(load_public_key(pem.decode()), message, sign(key, message))


def test_bad_inputs():
    with pytest.raises(ValueError):
        generate_private_key("dsa")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        load_public_key(b"nonsense")
    with pytest.raises(ValueError, match="RSA or Ed25519"):
        load_public_key(public_pem(ec.generate_private_key(ec.SECP256R1())))
