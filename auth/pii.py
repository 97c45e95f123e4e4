"""Sealing personal data at rest (PIPL art. 51; GB/T 39786 level 3 under SM4).

A sealed value is ``"<key version>:<base64 of nonce + ciphertext + tag>"``. The associated data
binds it to its table, column and row, so a ciphertext copied into another row or column does
not open. The keyring seals with its newest key and opens with any of them, which is what makes
key rotation possible while the service runs.

Blind indexes (keyed HMACs) let us look a person up by ID number or phone without storing either
in the clear. Their key is derived from the keyring's *first* key, so rotation leaves every index
valid; retiring that first key means re-indexing.

Written here rather than taken from a library: ``cryptography`` provides the primitives (AES-GCM,
SM4 in GCM mode, HMAC with SHA-256 or SM3, HKDF) but no versioned, row-bound envelope around them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12
TAG_BYTES = 16


class SealBroken(Exception):
    """A sealed value does not open: wrong row or column, tampered, or an unknown key version."""


class AeadCipher(Protocol):
    name: str
    key_bytes: int

    def seal(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes: ...

    def open(self, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes: ...

    def index_hash(self) -> hashes.HashAlgorithm: ...


class AesGcm:
    name = "aes-256-gcm"
    key_bytes = 32

    def seal(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return AESGCM(key).encrypt(nonce, plaintext, aad)

    def open(self, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        return AESGCM(key).decrypt(nonce, sealed, aad)

    def index_hash(self) -> hashes.HashAlgorithm:
        return hashes.SHA256()


class Sm4Gcm:
    """SM4 in GCM mode (RFC 8998). ``cryptography`` has no AEAD class for SM4, so the mode is
    driven through ``Cipher`` with the tag appended, in the same layout as AESGCM's output."""

    name = "sm4-gcm"
    key_bytes = 16

    def seal(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(aad)
        body = encryptor.update(plaintext) + encryptor.finalize()
        return body + encryptor.tag

    def open(self, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) < TAG_BYTES:
            raise InvalidTag
        body, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
        decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(aad)
        return decryptor.update(body) + decryptor.finalize()

    def index_hash(self) -> hashes.HashAlgorithm:
        return hashes.SM3()


CIPHERS: dict[str, AeadCipher] = {c.name: c for c in (AesGcm(), Sm4Gcm())}


@dataclass(frozen=True)
class Keyring:
    """Keys by version, oldest first; the last one seals, all of them open."""

    cipher: AeadCipher
    keys: tuple[tuple[str, bytes], ...] = field(repr=False)
    _index_key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a keyring needs at least one key")
        for version, key in self.keys:
            if ":" in version or not version:
                raise ValueError(f"bad key version {version!r}")
            if len(key) != self.cipher.key_bytes:
                raise ValueError(f"key {version} is not {self.cipher.key_bytes} bytes")
        index_key = HKDF(
            algorithm=self.cipher.index_hash(),
            length=32,
            salt=None,
            info=b"suban blind index v1",
        ).derive(self.keys[0][1])
        object.__setattr__(self, "_index_key", index_key)

    @classmethod
    def build(cls, cipher_name: str, keys: Sequence[tuple[str, bytes]]) -> Keyring:
        try:
            cipher = CIPHERS[cipher_name]
        except KeyError:
            raise ValueError(f"unknown PII cipher {cipher_name!r}") from None
        return cls(cipher, tuple(keys))

    @property
    def newest_version(self) -> str:
        return self.keys[-1][0]

    def _key(self, version: str) -> bytes:
        for known, key in self.keys:
            if known == version:
                return key
        raise SealBroken(f"unknown key version {version!r}")

    def _aad(self, version: str, table: str, column: str, row_id: str) -> bytes:
        # Unit separators keep ("a", "bc") and ("ab", "c") apart.
        return "\x1f".join((self.cipher.name, version, table, column, row_id)).encode()

    def seal(self, plaintext: str, *, table: str, column: str, row_id: str | int) -> str:
        version, key = self.keys[-1]
        nonce = os.urandom(NONCE_BYTES)
        sealed = self.cipher.seal(
            key, nonce, plaintext.encode(), self._aad(version, table, column, str(row_id))
        )
        return f"{version}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def open(self, sealed: str, *, table: str, column: str, row_id: str | int) -> str:
        version, sep, encoded = sealed.partition(":")
        if not sep:
            raise SealBroken("not a sealed value")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SealBroken("not a sealed value") from exc
        nonce, body = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        if len(nonce) != NONCE_BYTES or len(body) < TAG_BYTES:
            raise SealBroken("sealed value is truncated")
        try:
            plain = self.cipher.open(
                self._key(version), nonce, body, self._aad(version, table, column, str(row_id))
            )
        except InvalidTag as exc:
            raise SealBroken("sealed value does not open here") from exc
        return plain.decode()

    def needs_reseal(self, sealed: str) -> bool:
        return sealed.partition(":")[0] != self.newest_version

    def blind_index(self, value: str, *, purpose: str) -> str:
        """A keyed hash for equality lookups; ``purpose`` keeps indexes of different kinds apart
        (the same digits as an ID number and as a phone give unrelated indexes)."""
        mac = crypto_hmac.HMAC(self._index_key, self.cipher.index_hash())
        mac.update(purpose.encode() + b"\x1f" + value.encode())
        return mac.finalize().hex()

    def matches_index(self, value: str, index: str, *, purpose: str) -> bool:
        return hmac.compare_digest(self.blind_index(value, purpose=purpose), index)
