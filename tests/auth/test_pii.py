from __future__ import annotations

import base64

import pytest

from auth.pii import CIPHERS, Keyring, SealBroken, Sm4Gcm

AES_V1 = ("v1", b"\x01" * 32)
AES_V2 = ("v2", b"\x02" * 32)
SM4_V1 = ("v1", b"\x03" * 16)
ID = "44010319850612301X"
ROW = {"table": "person", "column": "id_number", "row_id": 7}


@pytest.fixture(params=["aes-256-gcm", "sm4-gcm"])
def ring(request: pytest.FixtureRequest) -> Keyring:
    key = AES_V1 if request.param == "aes-256-gcm" else SM4_V1
    return Keyring.build(request.param, [key])


def test_sealed_value_opens_in_its_own_row_and_hides_the_plaintext(ring: Keyring) -> None:
    sealed = ring.seal(ID, **ROW)
    assert sealed.startswith("v1:")
    assert ID not in sealed
    assert ID.encode() not in base64.b64decode(sealed[3:])
    assert ring.open(sealed, **ROW) == ID
    # A fresh nonce every time: equal plaintexts do not give equal ciphertexts.
    assert ring.seal(ID, **ROW) != sealed


@pytest.mark.parametrize(
    "elsewhere",
    [
        {"table": "person", "column": "id_number", "row_id": 8},
        {"table": "person", "column": "phone", "row_id": 7},
        {"table": "grant", "column": "id_number", "row_id": 7},
    ],
)
def test_a_ciphertext_moved_to_another_row_or_column_does_not_open(
    ring: Keyring, elsewhere: dict[str, object]
) -> None:
    sealed = ring.seal(ID, **ROW)
    with pytest.raises(SealBroken):
        ring.open(sealed, **elsewhere)  # type: ignore[arg-type]


def test_tampered_or_malformed_values_do_not_open(ring: Keyring) -> None:
    sealed = ring.seal(ID, **ROW)
    raw = bytearray(base64.b64decode(sealed[3:]))
    raw[-1] ^= 1
    for bad in (
        "v1:" + base64.b64encode(bytes(raw)).decode(),
        "v9:" + sealed[3:],
        "no-version",
        "v1:%%%",
        "v1:",
    ):
        with pytest.raises(SealBroken):
            ring.open(bad, **ROW)


def test_rotation_opens_old_values_and_seals_with_the_newest_key() -> None:
    old = Keyring.build("aes-256-gcm", [AES_V1])
    sealed_v1 = old.seal(ID, **ROW)
    rotated = Keyring.build("aes-256-gcm", [AES_V1, AES_V2])
    assert rotated.open(sealed_v1, **ROW) == ID
    assert rotated.needs_reseal(sealed_v1)
    resealed = rotated.seal(rotated.open(sealed_v1, **ROW), **ROW)
    assert resealed.startswith("v2:")
    assert not rotated.needs_reseal(resealed)
    # Blind indexes survive rotation: they hang on the first key.
    assert old.blind_index(ID, purpose="id_number") == rotated.blind_index(ID, purpose="id_number")
    with pytest.raises(SealBroken):
        old.open(resealed, **ROW)


def test_sm4_gcm_agrees_with_the_rfc_8998_test_vector() -> None:
    # RFC 8998, Appendix A.1.
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    iv = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plaintext = bytes.fromhex(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    )
    expected = bytes.fromhex(
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
        "83DE3541E4C2B58177E065A9BF7B62EC"  # the tag
    )
    sm4 = Sm4Gcm()
    assert sm4.seal(key, iv, plaintext, aad) == expected
    assert sm4.open(key, iv, expected, aad) == plaintext


def test_blind_index_is_stable_keyed_and_separated_by_purpose(ring: Keyring) -> None:
    index = ring.blind_index(ID, purpose="id_number")
    assert index == ring.blind_index(ID, purpose="id_number")
    assert ring.matches_index(ID, index, purpose="id_number")
    assert index != ring.blind_index(ID, purpose="phone")
    assert ID not in index
    other_key = Keyring.build(ring.cipher.name, [("v1", b"\x09" * ring.cipher.key_bytes)])
    assert other_key.blind_index(ID, purpose="id_number") != index


def test_blind_index_uses_sm3_under_sm4() -> None:
    sm4 = Keyring.build("sm4-gcm", [SM4_V1])
    assert sm4.cipher.index_hash().name == "sm3"
    assert CIPHERS["aes-256-gcm"].index_hash().name == "sha256"


def test_keyring_refuses_bad_keys() -> None:
    with pytest.raises(ValueError, match="not 32 bytes"):
        Keyring.build("aes-256-gcm", [("v1", b"short")])
    with pytest.raises(ValueError, match="unknown PII cipher"):
        Keyring.build("rot13", [AES_V1])
    with pytest.raises(ValueError, match="at least one key"):
        Keyring.build("aes-256-gcm", [])
