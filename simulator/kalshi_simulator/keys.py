"""Key pairs shaped like the ones Kalshi issues, made at run time.

Tests and the demo need real keys, but key material must never be committed: these helpers
generate keys on the fly and serialise them in the formats Kalshi hands out (PKCS#1 PEM for
RSA, PKCS#8 for Ed25519) so the provider's key loading is exercised on realistic input.
"""

from __future__ import annotations

from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from kalshi_simulator.signature import PrivateKey, PublicKey

KeyKind = Literal["rsa", "ed25519"]
PemFormat = Literal["pkcs1", "pkcs8"]

RSA_BITS = 2048


def generate_private_key(kind: KeyKind = "rsa") -> PrivateKey:
    """A new 2048-bit RSA (public exponent 65537) or Ed25519 private key."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key kind {kind!r}: use 'rsa' or 'ed25519'")


def private_pem(
    key: PrivateKey,
    passphrase: bytes | str | None = None,
    fmt: PemFormat | None = None,
) -> bytes:
    """Serialise ``key`` as PEM, optionally encrypted with ``passphrase``.

    ``fmt`` defaults to what Kalshi issues: ``pkcs1`` (``BEGIN RSA PRIVATE KEY``) for RSA and
    ``pkcs8`` (``BEGIN PRIVATE KEY``) for Ed25519, which has no PKCS#1 form.
    """
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    if fmt is None:
        fmt = "pkcs1" if is_rsa else "pkcs8"
    if fmt == "pkcs1":
        if not is_rsa:
            raise ValueError("Ed25519 keys have no PKCS#1 form: use fmt='pkcs8'")
        encoding_format = serialization.PrivateFormat.TraditionalOpenSSL
    elif fmt == "pkcs8":
        encoding_format = serialization.PrivateFormat.PKCS8
    else:
        raise ValueError(f"unknown PEM format {fmt!r}: use 'pkcs1' or 'pkcs8'")
    if passphrase is None:
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    else:
        secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
        encryption = serialization.BestAvailableEncryption(secret)
    return key.private_bytes(serialization.Encoding.PEM, encoding_format, encryption)


def public_pem(key: PrivateKey | PublicKey) -> bytes:
    """The SubjectPublicKeyInfo PEM (``BEGIN PUBLIC KEY``) of a private or public key."""
    public = key.public_key() if hasattr(key, "private_bytes") else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: bytes | str) -> PublicKey:
    """Parse a PEM public key (SubjectPublicKeyInfo or PKCS#1 RSA); only RSA and Ed25519."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise ValueError("not a PEM public key (expected '-----BEGIN PUBLIC KEY-----')") from None
    if isinstance(key, (rsa.RSAPublicKey, ed25519.Ed25519PublicKey)):
        return key
    raise ValueError(f"unsupported public key type {type(key).__name__}: Kalshi keys are RSA or Ed25519")


def as_public_key(key: PrivateKey | PublicKey | bytes | str) -> PublicKey:
    """Accept a public key, a private key (its public half is used) or a PEM public key."""
    if isinstance(key, (bytes, str)):
        return load_public_key(key)
    if isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        return key.public_key()
    if isinstance(key, (rsa.RSAPublicKey, ed25519.Ed25519PublicKey)):
        return key
    raise TypeError(f"expected an RSA or Ed25519 key or a PEM public key, got {type(key).__name__}")


def load_private_key(pem: bytes) -> PrivateKey:
    """Parse an unencrypted PEM private key (PKCS#1 or PKCS#8); only RSA and Ed25519."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (TypeError, ValueError):
        raise ValueError("not an unencrypted PEM private key") from None
    if isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        return key
    raise ValueError(f"unsupported private key type {type(key).__name__}: Kalshi keys are RSA or Ed25519")
