"""Kalshi's signature check, written from Kalshi's documentation and nowhere else.

Deliberately independent of the provider's ``kalshi_provider.signing``: if both sides shared one
message builder, a mistake in it (say, signing the path without ``/trade-api/v2``) would sign and
verify alike and no test would notice. Kalshi signs ``timestamp_ms + METHOD + path`` with the
full URL path and no query string; RSA keys use PSS with SHA-256, MGF1-SHA-256 and a salt as long
as the digest, Ed25519 keys sign the same bytes plainly.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey

KEY_HEADER = "KALSHI-ACCESS-KEY"
TIMESTAMP_HEADER = "KALSHI-ACCESS-TIMESTAMP"
SIGNATURE_HEADER = "KALSHI-ACCESS-SIGNATURE"

# Kalshi requires the salt to be exactly the digest length, not "any" length.
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def signed_message(timestamp: str, method: str, target: str) -> bytes:
    """What Kalshi verifies for a request target as sent (path and query): the query is not signed."""
    return f"{timestamp}{method.upper()}{urlsplit(target).path}".encode()


def signature_is_valid(public_key: PublicKey, message: bytes, signature_b64: str) -> bool:
    """True when ``signature_b64`` (standard base64) signs ``message`` with ``public_key``."""
    try:
        raw = base64.b64decode(signature_b64, validate=True)
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(raw, message, _PSS, hashes.SHA256())
        else:
            public_key.verify(raw, message)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True
