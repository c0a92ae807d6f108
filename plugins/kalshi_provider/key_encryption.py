"""What a passphrase-encrypted key costs to open, read from the key before anything is decrypted.

An encrypted PKCS#8 key names its own key derivation (PBKDF2 iterations, scrypt's N, r, p, PKCS#5
v1 and PKCS#12 iterations), which the crypto library runs in one C call no task timeout interrupts
(scrypt N=2**20 takes 1 GiB, 2**31 PBKDF2 rounds take minutes, 2**32 crash it). So
:func:`check_key_derivation` reads only those parameters, with a small linear DER reader, and
refuses anything beyond :mod:`kalshi_provider.limits`. Traditional OpenSSL PEMs need no check.
"""

from __future__ import annotations

import base64
import binascii

from kalshi_provider.limits import (
    MAX_KEY_DERIVED_BYTES,
    MAX_KEY_KDF_ITERATIONS,
    MAX_KEY_SCRYPT_MEMORY_BYTES,
    MAX_KEY_SCRYPT_PARALLELISM,
    MAX_PEM_BYTES,
)

_BEGIN = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
_END = b"-----END ENCRYPTED PRIVATE KEY-----"

_SEQUENCE, _INTEGER, _OCTET_STRING, _OID = 0x30, 0x02, 0x04, 0x06

_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_SCRYPT = "1.3.6.1.4.1.11591.4.11"
#: Schemes whose parameters are SEQUENCE { salt, iterations }: PKCS#5 v1 (PBES1) and PKCS#12's.
_ITERATED_SCHEMES = {
    **{f"1.2.840.113549.1.5.{n}": "PBES1" for n in (1, 3, 4, 6, 10, 11)},
    **{f"1.2.840.113549.1.12.1.{n}": "PKCS#12 PBE" for n in range(1, 7)},
}

_REENCRYPT = (
    "re-encrypt it as OpenSSL does by default (`openssl pkcs8 -topk8 -v2 aes-256-cbc`: PBKDF2, "
    "2,048 iterations), or keep it unencrypted in a secrets backend"
)


class CostlyKeyError(ValueError):
    """The key asks for more work than any real key does, or cannot be read far enough to tell.
    The message names the parameter and the limit; it never holds key material."""


def check_key_derivation(pem: bytes) -> None:
    """Refuse ``pem`` if any encrypted PKCS#8 block in it asks for a key derivation beyond the limits.

    :raises CostlyKeyError: naming the parameter that is too large and its limit.
    """
    if len(pem) > MAX_PEM_BYTES:  # the caller refuses these first; a bound of its own all the same
        raise CostlyKeyError(f"it is larger than {MAX_PEM_BYTES // 1024} KiB")
    for der in _encrypted_blocks(pem):
        try:
            _check_encrypted_private_key_info(der)
        except _Malformed:
            raise CostlyKeyError(
                "its encryption parameters cannot be read (the encrypted key is damaged or truncated)"
            ) from None


def _encrypted_blocks(pem: bytes) -> list[bytes]:
    """The DER of every ``ENCRYPTED PRIVATE KEY`` block; a block that is not clean base64 (another
    BEGIN line inside it, say) is refused rather than skipped, so the library never sees one
    this check did not read."""
    blocks = []
    position = 0
    while (start := pem.find(_BEGIN, position)) >= 0:
        end = pem.find(_END, start + len(_BEGIN))
        if end < 0:
            break  # no complete block: the library finds nothing to decrypt either
        body = b"".join(pem[start + len(_BEGIN) : end].split())
        try:
            blocks.append(base64.b64decode(body, validate=True))
        except (binascii.Error, ValueError):
            raise CostlyKeyError(
                "its 'ENCRYPTED PRIVATE KEY' block is not valid base64 (the PEM is damaged)"
            ) from None
        position = end + len(_END)
    return blocks


def _check_encrypted_private_key_info(der: bytes) -> None:
    """EncryptedPrivateKeyInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING } (RFC 5208)."""
    info = _Der(der).take(_SEQUENCE)
    algorithm = info.take(_SEQUENCE)
    scheme = algorithm.oid()
    if scheme == _PBES2:  # RFC 8018: SEQUENCE { keyDerivationFunc, encryptionScheme }
        kdf = algorithm.take(_SEQUENCE).take(_SEQUENCE)
        function = kdf.oid()
        if function == _PBKDF2:
            _check_pbkdf2(kdf.take(_SEQUENCE))
        elif function == _SCRYPT:
            _check_scrypt(kdf.take(_SEQUENCE))
        else:
            raise CostlyKeyError(
                f"it is encrypted with a key derivation this provider cannot bound (OID {function}); "
                + _REENCRYPT
            )
    elif scheme in _ITERATED_SCHEMES:
        params = algorithm.take(_SEQUENCE)
        params.take(_OCTET_STRING)  # the salt
        _check_iterations(params.integer(), _ITERATED_SCHEMES[scheme])
    else:
        raise CostlyKeyError(
            f"it is encrypted with a scheme this provider cannot bound (OID {scheme}); " + _REENCRYPT
        )


def _check_pbkdf2(params: _Der) -> None:
    """PBKDF2-params ::= SEQUENCE { salt, iterationCount, keyLength OPTIONAL, prf DEFAULT sha1 }."""
    params.take()  # the salt: an OCTET STRING, or (never seen) an AlgorithmIdentifier
    _check_iterations(params.integer(), "PBKDF2")
    if params.next_tag() == _INTEGER:
        _check_key_length(params.integer(), "PBKDF2")


def _check_scrypt(params: _Der) -> None:
    """scrypt-params ::= SEQUENCE { salt, costParameter N, blockSize r, parallelization p,
    keyLength OPTIONAL } (RFC 7914)."""
    params.take(_OCTET_STRING)
    cost, block_size, parallelism = params.integer(), params.integer(), params.integer()
    memory = 128 * cost * block_size
    if memory > MAX_KEY_SCRYPT_MEMORY_BYTES:
        raise CostlyKeyError(
            f"its scrypt parameters N={_number(cost)} and r={_number(block_size)} need "
            f"{_mebibytes(memory)} of memory to open it; the limit is "
            f"{_mebibytes(MAX_KEY_SCRYPT_MEMORY_BYTES)} (N times r at most "
            f"{_number(MAX_KEY_SCRYPT_MEMORY_BYTES // 128)}; OpenSSL writes N=2^14, r=8): " + _REENCRYPT
        )
    if parallelism > MAX_KEY_SCRYPT_PARALLELISM:
        raise CostlyKeyError(
            f"its scrypt parallelism p={_number(parallelism)} is more than the limit of "
            f"{MAX_KEY_SCRYPT_PARALLELISM} (every tool writes 1): " + _REENCRYPT
        )
    if params.next_tag() == _INTEGER:
        _check_key_length(params.integer(), "scrypt")


def _check_iterations(iterations: int, kdf: str) -> None:
    if iterations > MAX_KEY_KDF_ITERATIONS:
        raise CostlyKeyError(
            f"its key derivation ({kdf}) asks for {_number(iterations)} iterations; the limit is "
            f"{MAX_KEY_KDF_ITERATIONS:,} (OpenSSL writes 2,048): " + _REENCRYPT
        )


def _check_key_length(length: int, kdf: str) -> None:
    if length > MAX_KEY_DERIVED_BYTES:
        raise CostlyKeyError(
            f"its key derivation ({kdf}) asks for a {_number(length)}-byte key; the limit is "
            f"{MAX_KEY_DERIVED_BYTES} (AES-256 takes 32): " + _REENCRYPT
        )


def _number(value: int) -> str:
    """A parameter for a message: exact when short, as a power of two when it is one, else its size
    (str() of a huge int is slow, and refused past 4300 digits)."""
    if value >= 1024 and value & (value - 1) == 0:
        return f"2^{value.bit_length() - 1}"
    if value.bit_length() <= 64:
        return f"{value:,}"
    return f"a {value.bit_length()}-bit number"


def _mebibytes(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MiB" if size.bit_length() <= 80 else f"2^{size.bit_length() - 1} bytes"


class _Malformed(Exception):
    """The DER does not have the shape this reader expects."""


class _Der:
    """A forward-only reader of DER TLVs over ``data[start:end]``: each call reads one element,
    so reading is linear in the input, and nested structures are read by hand, never recursively."""

    __slots__ = ("data", "position", "end")

    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        self.data, self.position, self.end = data, start, len(data) if end is None else end

    def next_tag(self) -> int | None:
        return self.data[self.position] if self.position < self.end else None

    def take(self, tag: int | None = None) -> _Der:
        """The next element (of ``tag``, if given) as a reader over its content."""
        if self.position + 2 > self.end:
            raise _Malformed
        found, first = self.data[self.position], self.data[self.position + 1]
        cursor = self.position + 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if count == 0 or count > 4 or cursor + count > self.end:  # indefinite, or absurd
                raise _Malformed
            length = int.from_bytes(self.data[cursor : cursor + count], "big")
            cursor += count
        if (tag is not None and found != tag) or cursor + length > self.end:
            raise _Malformed
        self.position = cursor + length
        return _Der(self.data, cursor, cursor + length)

    def integer(self) -> int:
        """A non-negative INTEGER (a negative one is malformed here: no parameter is negative)."""
        content = self.take(_INTEGER)
        raw = content.data[content.position : content.end]
        if not raw or raw[0] & 0x80:
            raise _Malformed
        return int.from_bytes(raw, "big")

    def oid(self) -> str:
        content = self.take(_OID)
        raw = content.data[content.position : content.end]
        if not 0 < len(raw) <= 64 or raw[-1] & 0x80:
            raise _Malformed
        arcs, value = [], 0
        for byte in raw:
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                arcs.append(value)
                value = 0
        first = min(arcs[0] // 40, 2)
        return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))
