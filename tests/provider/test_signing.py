"""Kalshi's signature scheme, checked with public keys against known messages."""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from kalshi_provider.signing import (
    KalshiAuth,
    KeyLoadError,
    load_private_key,
    sign,
    signing_message,
    verify,
)


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key, fmt=serialization.PrivateFormat.PKCS8, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption)


def test_message_is_timestamp_method_and_full_path_without_query():
    message = signing_message(
        "1703123456789", "get", "https://api.elections.kalshi.com/trade-api/v2/portfolio/balance?limit=5"
    )
    assert message == b"1703123456789GET/trade-api/v2/portfolio/balance"


def test_rsa_signature_is_pss_sha256_with_digest_length_salt(rsa_key):
    message = b"1703123456789GET/trade-api/v2/portfolio/balance"
    signature = base64.b64decode(sign(rsa_key, message))
    # Verifying with the exact parameters Kalshi uses, independently of our verify().
    rsa_key.public_key().verify(
        signature,
        message,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    assert verify(rsa_key.public_key(), message, sign(rsa_key, message))
    assert not verify(rsa_key.public_key(), message + b"x", sign(rsa_key, message))


def test_pss_signatures_are_randomised_but_all_verify(rsa_key):
    message = b"1GET/trade-api/v2/x"
    first, second = sign(rsa_key, message), sign(rsa_key, message)
    assert first != second
    assert verify(rsa_key.public_key(), message, first) and verify(rsa_key.public_key(), message, second)


def test_verify_rejects_pkcs1v15_and_other_salt_lengths(rsa_key):
    message = b"1703123456789GET/trade-api/v2/portfolio/balance"
    v15 = rsa_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    max_salt = rsa_key.sign(
        message,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH),
        hashes.SHA256(),
    )
    assert not verify(rsa_key.public_key(), message, base64.b64encode(v15).decode())
    assert not verify(rsa_key.public_key(), message, base64.b64encode(max_salt).decode())
    assert not verify(rsa_key.public_key(), message, "not base64!")


def test_ed25519_signs_the_same_message_plainly():
    key = ed25519.Ed25519PrivateKey.generate()
    message = b"1703123456789GET/trade-api/v2/portfolio/balance"
    key.public_key().verify(base64.b64decode(sign(key, message)), message)


@pytest.mark.parametrize(
    ("fmt", "header"),
    [
        (serialization.PrivateFormat.TraditionalOpenSSL, b"-----BEGIN RSA PRIVATE KEY-----"),
        (serialization.PrivateFormat.PKCS8, b"-----BEGIN PRIVATE KEY-----"),
    ],
    ids=["pkcs1", "pkcs8"],
)
def test_loads_pkcs1_and_pkcs8_rsa(rsa_key, fmt, header):
    text = pem(rsa_key, fmt)
    assert text.startswith(header)
    assert load_private_key(text).private_numbers() == rsa_key.private_numbers()


def test_loads_encrypted_key_with_passphrase(rsa_key):
    text = pem(rsa_key, password=b"correct horse")
    assert load_private_key(text, b"correct horse").private_numbers() == rsa_key.private_numbers()


@pytest.mark.parametrize(
    ("passphrase", "expected"),
    [
        (None, "is encrypted: set the connection extra 'private_key_passphrase'"),
        (b"wrong", "passphrase is wrong"),
    ],
)
def test_encrypted_key_errors_say_what_to_do(rsa_key, passphrase, expected):
    with pytest.raises(KeyLoadError, match=expected):
        load_private_key(pem(rsa_key, password=b"correct horse"), passphrase)


def test_passphrase_for_unencrypted_key_is_refused(rsa_key):
    with pytest.raises(KeyLoadError, match="not encrypted"):
        load_private_key(pem(rsa_key), b"unneeded")


def test_pem_flattened_to_one_line_is_restored(rsa_key):
    text = pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL)
    flattened = b" ".join(text.split(b"\n"))
    assert load_private_key(flattened).private_numbers() == rsa_key.private_numbers()


@pytest.mark.parametrize(
    ("make_pem", "expected"),
    [
        (lambda k: b"hello", "not a PEM private key"),
        (lambda k: pem(k)[:200], "damaged or truncated"),
        (
            lambda k: k.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "public key",
        ),
        (lambda k: pem(ec.generate_private_key(ec.SECP256R1())), "Kalshi keys are RSA or Ed25519"),
        (
            lambda k: pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
            "1024-bit RSA key",
        ),
    ],
    ids=["garbage", "truncated", "public-key", "ec-key", "short-rsa"],
)
def test_malformed_keys_get_clear_errors_without_key_material(rsa_key, make_pem, expected):
    text = make_pem(rsa_key)
    with pytest.raises(KeyLoadError, match=expected) as caught:
        load_private_key(text)
    body_lines = [line for line in text.decode(errors="replace").splitlines() if "-----" not in line]
    assert not any(line and line in str(caught.value) for line in body_lines)
    # No chained cryptography error either: its traceback would be logged with the task.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_auth_repr_hides_the_key(rsa_key):
    auth = KalshiAuth("key-123", rsa_key)
    assert repr(auth) == "KalshiAuth(key_id='key-123')"


# -- pathological text: linear time, bounded size ---------------------------------------------------

HEAD = b"-----BEGIN RSA PRIVATE KEY-----"
TAIL = b"-----END RSA PRIVATE KEY-----"
#: Each one made the old one-regex rewrap backtrack for minutes (header + thousands of spaces).
PATHOLOGICAL = {
    "spaces-then-a-letter": HEAD + b" " * 7000 + b"A",
    "space-letter-pairs": HEAD + b" A" * 3500,
    "spaces-then-a-bad-tail": HEAD + b" \t" * 2000 + TAIL + b" trailing",
    "spaces-before-a-stray-char": HEAD + b" " * 4000 + b"!" + b" " * 3000 + TAIL,
    "labels-of-spaces": b"-----BEGIN " + b" " * 4000 + b"-----" + b" " * 4000,
}


@pytest.mark.process
def test_pathological_pems_are_refused_in_linear_time():
    """Run in a subprocess with a generous bound: a backtracking parse would blow it by minutes.

    Not a speed assertion: linear-time code finishes these in milliseconds; the bound only keeps
    a regression from hanging the suite.
    """
    script = textwrap.dedent(
        f"""
        from kalshi_provider.signing import KeyLoadError, load_private_key
        for name, pem in {PATHOLOGICAL!r}.items():
            try:
                load_private_key(pem)
            except KeyLoadError as err:
                print(name, "refused:", err)
            else:
                print(name, "ACCEPTED")
        """
    )
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("parsing pathological PEM text did not finish within 60 s: it backtracks")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(PATHOLOGICAL)
    assert all(" refused: " in line for line in lines), lines


def test_a_pem_larger_than_the_cap_is_refused_before_parsing(rsa_key):
    padded = pem(rsa_key) + b"\n" * 8192
    with pytest.raises(KeyLoadError, match="larger than 8 KiB"):
        load_private_key(padded)


def test_a_4096_bit_key_fits_the_cap():
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    encrypted = pem(key, password=b"a passphrase")
    assert len(encrypted) < 8 * 1024
    assert load_private_key(encrypted, b"a passphrase").key_size == 4096
