"""Tests of protected annexes: recipients, key files, sealed envelopes and commitments."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import struct
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from chain_of_custody.errors import (
    CustodyError,
    EnvironmentProblem,
    InputError,
    KeyFileError,
    PassphraseError,
    VerificationError,
)
from evidence.protected import (
    COMMITMENT_DOMAIN,
    RECIPIENT_ID_DOMAIN,
    Commitment,
    EnvelopeError,
    NotARecipient,
    RecipientKey,
    RecipientPublicKey,
    SealedAnnex,
    check_commitment,
    commit,
    generate_recipient,
    load_recipient,
    open_annex,
    open_sealed,
    protect,
    recipients_of,
    reveal,
    save_recipient,
    seal,
)

# Fixed keys: each recipient's private key is 32 repeated bytes.
OTP_1 = RecipientKey.from_private_bytes("otp-unit-1", bytes([0x11]) * 32)
OTP_2 = RecipientKey.from_private_bytes("otp-unit-2", bytes([0x22]) * 32)
OTP_3 = RecipientKey.from_private_bytes("otp-unit-3", bytes([0x33]) * 32)
OUTSIDER = RecipientKey.from_private_bytes("outsider", bytes([0x44]) * 32)

AAD = b"case UA-2026-001 testimony W-017 annex"
SECRET = b"Witness W-017: Invented Person Fictionalname, born 2011-04-09, Somewhere Street 1"
FIELDS = {
    "name": "Invented Child Fictionalname",
    "date_of_birth": "2011-04-09",
    "contact": "+00 000 000 000",
    "current_address": "Generic Street 1, Generic Town",
}
PASSPHRASE = b"correct horse battery staple for tests"

# Header layout, repeated here so that the tests check the format rather than trust the code.
PREFIX_LEN = 8
STANZA_LEN = 100
TRAILER_LEN = 16


def header_len(count: int) -> int:
    return PREFIX_LEN + count * STANZA_LEN + TRAILER_LEN


def everything_said(exc: BaseException) -> str:
    """All text an error could show: message, hint, repr and the chained traceback."""
    text = "".join(traceback.format_exception(exc))
    if isinstance(exc, CustodyError):
        text += exc.diagnostics() + repr(exc)
    return text


def assert_no_secret(exc: BaseException, *secrets: bytes | str) -> None:
    said = everything_said(exc)
    for secret in secrets:
        needle = secret.decode() if isinstance(secret, bytes) else secret
        assert needle not in said
        assert repr(needle)[1:-1] not in said


# --- recipients and their text forms ---------------------------------------------------------


def test_recipient_id_is_domain_separated_sha256_prefix() -> None:
    public = OTP_1.public.public_key
    expected = hashlib.sha256(RECIPIENT_ID_DOMAIN + public).digest()[:8].hex()
    assert OTP_1.recipient_id == expected
    assert len(expected) == 16


def test_public_key_text_round_trip() -> None:
    text = OTP_2.public.to_text()
    name, rid, _ = text.split("+", 2)
    assert (name, rid) == ("otp-unit-2", OTP_2.recipient_id)
    assert RecipientPublicKey.from_text(text) == OTP_2.public


def test_public_key_pem_round_trip() -> None:
    pem = OTP_3.public.to_pem()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert RecipientPublicKey.from_pem("otp-unit-3", pem) == OTP_3.public


def _swap_id(text: str) -> str:
    name, _, key = text.split("+", 2)
    return f"{name}+{OTP_1.recipient_id}+{key}"


BAD_TEXT_FORMS: dict[str, Callable[[str], str]] = {
    "missing parts": lambda t: t.split("+", 1)[0],
    "id of another key": _swap_id,
    "key not base64": lambda t: t.rsplit("+", 1)[0] + "+%%%%",
    "key truncated": lambda t: t[:-8],
    "name with space": lambda t: "otp unit" + t[len("otp-unit-2") :],
    "empty name": lambda t: t[len("otp-unit-2") :],
}


@pytest.mark.parametrize("case", list(BAD_TEXT_FORMS))
def test_public_key_text_refused(case: str) -> None:
    bad = BAD_TEXT_FORMS[case](OTP_2.public.to_text())
    with pytest.raises(InputError):
        RecipientPublicKey.from_text(bad)


def test_public_key_pem_of_wrong_type_refused() -> None:
    ed_pem = (
        Ed25519PrivateKey.from_private_bytes(bytes(32))
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(InputError, match="not an X25519 key"):
        RecipientPublicKey.from_pem("x", ed_pem)
    with pytest.raises(InputError, match="cannot be read"):
        RecipientPublicKey.from_pem("x", b"not a pem")


# A file given as a recipient's public key by mistake (a testimony, say): its text must never
# be quoted back, whatever part of it the parser stumbles on.
MARKER = "Fictional Protected-Name-MARKER"
WRONG_FILES: dict[str, str] = {
    "testimony-yaml": f'witness_code: W-555\nidentity:\n  name: {MARKER}\n  contact: "+000 11"\n',
    "one-line-with-plus": f"{MARKER}+{MARKER}+{MARKER}",
    "name-like-word": "Protected-Name-MARKER+0123456789abcdef+AAAA",
    "id-like-word": f"otp-unit-2+{MARKER.replace(' ', '')}+AAAA",
    "bad-base64": f"otp-unit-2+{OTP_2.recipient_id}+{MARKER.replace(' ', '')}",
    "signing-key-note": "inv-a+0123abcd+" + "A" * 44,
}


@pytest.mark.parametrize("case", list(WRONG_FILES))
def test_public_key_text_errors_never_quote_the_text(case: str) -> None:
    with pytest.raises(InputError) as caught:
        RecipientPublicKey.from_text(WRONG_FILES[case], source="/fictional/wrong-file.yaml")
    said = everything_said(caught.value)
    for part in (MARKER, "Protected-Name-MARKER", MARKER.replace(" ", ""), "W-555", "inv-a"):
        assert part not in said, part
    assert caught.value.message.startswith("/fictional/wrong-file.yaml: ")
    assert "keys export" not in said
    assert "keys recipient list" in said or ".pub" in said


def test_public_key_text_names_what_it_was_given() -> None:
    with pytest.raises(InputError, match="signing key") as caught:
        RecipientPublicKey.from_text(WRONG_FILES["signing-key-note"])
    assert "recipient" in caught.value.message
    with pytest.raises(InputError, match="the recipient id does not match the key"):
        RecipientPublicKey.from_text(_swap_id(OTP_2.public.to_text()))


def test_a_private_key_file_is_refused_as_such(tmp_path: Path) -> None:
    key = generate_recipient("otp-unit-8")
    path = tmp_path / "otp-unit-8.key"
    save_recipient(key, path, PASSPHRASE)
    text = path.read_text(encoding="utf-8")
    with pytest.raises(InputError) as caught:
        RecipientPublicKey.from_text(text, source=path)
    error = caught.value
    assert error.message == (
        f"{path}: is a private recipient key file, not a recipient's public key; a private key "
        "is never given to anyone"
    )
    assert str(tmp_path / "otp-unit-8.pub") in (error.hint or "")
    assert "ENCRYPTED" not in everything_said(error)
    signing = "Key-Name: inv-a\nPublic-Key: inv-a+0123abcd+AAAA\n-----BEGIN ENCRYPTED..."
    with pytest.raises(InputError, match="private key file of a signing key"):
        RecipientPublicKey.from_text(signing, source=tmp_path / "inv-a.key")
    pem = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    with pytest.raises(InputError, match=r"is a private key \(PEM\)"):
        RecipientPublicKey.from_text(pem.decode())


@pytest.mark.parametrize(
    "name", ["", "has space", "has+plus", "tab\there", "new\nline", "nul\x00", "x" * 129]
)
def test_bad_recipient_names_refused(name: str) -> None:
    with pytest.raises(InputError):
        generate_recipient(name)


def test_private_key_repr_shows_no_key_material() -> None:
    text = repr(OTP_1)
    assert OTP_1.recipient_id in text
    assert "11111111" not in text


# --- key files ---------------------------------------------------------------------------------


def test_key_file_round_trip_with_mode_0600(tmp_path: Path) -> None:
    key = generate_recipient("otp-unit-9")
    path = tmp_path / "otp.key"
    save_recipient(key, path, PASSPHRASE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_bytes()
    assert text.startswith(b"Recipient-Name: otp-unit-9\nPublic-Key: otp-unit-9+")
    assert b"\n-----BEGIN ENCRYPTED PRIVATE KEY-----\n" in text
    assert PASSPHRASE not in text
    loaded = load_recipient(path, PASSPHRASE)
    assert loaded.name == "otp-unit-9"
    assert loaded.public == key.public
    # No temporary files are left behind.
    assert [p.name for p in tmp_path.iterdir()] == ["otp.key"]


def test_key_file_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "otp.key"
    save_recipient(OTP_1, path, PASSPHRASE)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists") as info:
        save_recipient(OTP_2, path, PASSPHRASE)
    assert str(path) in info.value.message
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["otp.key"]


def test_save_refuses_empty_passphrase(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no passphrase"):
        save_recipient(OTP_1, tmp_path / "otp.key", b"")
    assert not (tmp_path / "otp.key").exists()


def test_save_into_missing_directory_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot create key file"):
        save_recipient(OTP_1, tmp_path / "missing" / "otp.key", PASSPHRASE)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_key_file_open_to_others_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "otp.key"
    save_recipient(OTP_1, path, PASSPHRASE)
    path.chmod(mode)
    with pytest.raises(KeyFileError) as info:
        load_recipient(path, PASSPHRASE)
    assert str(path) in info.value.message
    assert f"chmod 600 {path}" in info.value.hint


def test_wrong_passphrase_refused(tmp_path: Path) -> None:
    path = tmp_path / "otp.key"
    save_recipient(OTP_1, path, PASSPHRASE)
    wrong = b"wrong passphrase for tests"
    with pytest.raises(PassphraseError) as info:
        load_recipient(path, wrong)
    assert str(path) in info.value.message
    assert_no_secret(info.value, wrong, PASSPHRASE)


def _write_0600(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _saved_key_text(tmp_path: Path) -> bytes:
    path = tmp_path / "source.key"
    save_recipient(OTP_1, path, PASSPHRASE)
    return path.read_bytes()


def _ed25519_key_file(_: bytes) -> bytes:
    pem = Ed25519PrivateKey.from_private_bytes(bytes(32)).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE),
    )
    return b"Recipient-Name: signer\n" + pem


def _unencrypted_key_file(_: bytes) -> bytes:
    pem = RecipientKey.from_private_bytes("x", bytes(32))._private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return b"Recipient-Name: plain\n" + pem


def _damage_base64(text: bytes) -> bytes:
    lines = text.split(b"\n")
    lines[3] = b"!" * len(lines[3])
    return b"\n".join(lines)


BAD_KEY_FILES: dict[str, Callable[[bytes], bytes]] = {
    "no name line": lambda t: t.split(b"\n", 1)[1],
    "bad name": lambda t: t.replace(b"otp-unit-1", b"otp unit 1", 1),
    "empty file": lambda t: b"",
    "damaged base64": _damage_base64,
    "pem cut short": lambda t: t[: len(t) // 2],
    "ed25519 signing key": _ed25519_key_file,
    "not encrypted": _unencrypted_key_file,
}


@pytest.mark.parametrize("case", list(BAD_KEY_FILES))
def test_bad_key_file_refused(tmp_path: Path, case: str) -> None:
    path = tmp_path / "bad.key"
    _write_0600(path, BAD_KEY_FILES[case](_saved_key_text(tmp_path)))
    with pytest.raises(KeyFileError) as info:
        load_recipient(path, PASSPHRASE)
    assert str(path) in info.value.message
    assert_no_secret(info.value, PASSPHRASE)


def test_missing_key_file_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_recipient(tmp_path / "nope.key", PASSPHRASE)


# --- sealing and opening -----------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 3])
def test_round_trip_for_each_recipient(count: int) -> None:
    keys = [OTP_1, OTP_2, OTP_3][:count]
    envelope = seal(SECRET, [k.public for k in keys], aad=AAD)
    assert recipients_of(envelope) == [k.recipient_id for k in keys]
    for key in keys:
        assert open_sealed(envelope, key, aad=AAD) == SECRET


@settings(max_examples=60, deadline=None)
@given(plaintext=st.binary(max_size=2000), aad=st.binary(max_size=64))
def test_round_trip_any_bytes(plaintext: bytes, aad: bytes) -> None:
    envelope = seal(plaintext, [OTP_1.public, OTP_2.public], aad=aad)
    assert open_sealed(envelope, OTP_2, aad=aad) == plaintext
    assert open_sealed(envelope, OTP_1, aad=aad) == plaintext


def test_envelope_does_not_contain_plaintext() -> None:
    envelope = seal(SECRET, [OTP_1.public], aad=AAD)
    assert SECRET not in envelope
    for word in SECRET.split():
        if len(word) >= 6:
            assert word not in envelope


def test_envelope_is_fresh_each_time() -> None:
    one = seal(SECRET, [OTP_1.public], aad=AAD)
    two = seal(SECRET, [OTP_1.public], aad=AAD)
    assert one != two
    assert len(one) == len(two)


def test_envelope_size_hides_exact_length() -> None:
    short = seal(b"Ann", [OTP_1.public], aad=AAD)
    longer = seal(b"Annabella-Fictional", [OTP_1.public], aad=AAD)
    assert len(short) == len(longer) == header_len(1) + 256 + 16


def test_envelope_layout() -> None:
    envelope = seal(SECRET, [OTP_1.public, OTP_3.public], aad=AAD)
    magic, version, suite, count = struct.unpack_from(">4sBBH", envelope)
    assert (magic, version, suite, count) == (b"ELPA", 1, 1, 2)
    assert envelope[8:16].hex() == OTP_1.recipient_id
    assert envelope[108:116].hex() == OTP_3.recipient_id
    (payload_len,) = struct.unpack_from(">I", envelope, header_len(2) - 4)
    assert len(envelope) == header_len(2) + payload_len


def test_duplicate_recipient_sealed_once() -> None:
    envelope = seal(SECRET, [OTP_1.public, OTP_2.public, OTP_1.public], aad=AAD)
    assert recipients_of(envelope) == [OTP_1.recipient_id, OTP_2.recipient_id]


def test_seal_without_recipients_refused() -> None:
    with pytest.raises(InputError, match="no recipients"):
        seal(SECRET, [], aad=AAD)


def test_seal_to_low_order_point_refused() -> None:
    zero = RecipientPublicKey("broken", bytes(32))
    with pytest.raises(InputError, match="unusable") as info:
        seal(SECRET, [zero], aad=AAD)
    assert_no_secret(info.value, SECRET)


def test_wrong_recipient_refused() -> None:
    envelope = seal(SECRET, [OTP_1.public, OTP_2.public], aad=AAD)
    with pytest.raises(NotARecipient) as info:
        open_sealed(envelope, OUTSIDER, aad=AAD, source="annex of W-017")
    assert isinstance(info.value, EnvironmentProblem)
    message = info.value.message
    assert "annex of W-017" in message
    assert OUTSIDER.recipient_id in message
    assert OTP_1.recipient_id in message
    assert OTP_2.recipient_id in message
    assert_no_secret(info.value, SECRET)


@pytest.mark.parametrize("other", [b"", b"case UA-2026-001 testimony W-018 annex", AAD + b"x"])
def test_aad_mismatch_refused(other: bytes) -> None:
    envelope = seal(SECRET, [OTP_1.public], aad=AAD)
    with pytest.raises(EnvelopeError, match="does not authenticate") as info:
        open_sealed(envelope, OTP_1, aad=other)
    assert_no_secret(info.value, SECRET)


# A sample envelope sealed to three recipients, opened by the middle one so that changes to the
# stanzas of the others must be caught by the payload's authentication.
SAMPLE = seal(SECRET, [OTP_1.public, OTP_2.public, OTP_3.public], aad=AAD)
HEADER_3 = header_len(3)


def _set(offset: int, value: bytes) -> Callable[[bytes], bytes]:
    return lambda e: e[:offset] + value + e[offset + len(value) :]


def _flip(offset: int) -> Callable[[bytes], bytes]:
    return lambda e: e[:offset] + bytes([e[offset] ^ 0x01]) + e[offset + 1 :]


TAMPERED: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda e: b"",
    "magic only": lambda e: e[:4],
    "other magic": _set(0, b"AGE1"),
    "version 2": _set(4, b"\x02"),
    "unknown suite": _set(5, b"\x09"),
    "zero recipients": _set(6, b"\x00\x00"),
    "more recipients than stanzas": _set(6, b"\x00\x04"),
    "fewer recipients than stanzas": _set(6, b"\x00\x02"),
    "first recipient id changed": _flip(8),
    "first ephemeral key changed": _flip(8 + 8),
    "own ephemeral key changed": _flip(PREFIX_LEN + STANZA_LEN + 8 + 5),
    "own wrap nonce changed": _flip(PREFIX_LEN + STANZA_LEN + 40),
    "own wrapped key changed": _flip(PREFIX_LEN + STANZA_LEN + 60),
    "own wrap tag changed": _flip(PREFIX_LEN + 2 * STANZA_LEN - 1),
    "third wrapped key changed": _flip(PREFIX_LEN + 2 * STANZA_LEN + 70),
    "payload nonce changed": _flip(HEADER_3 - TRAILER_LEN),
    "payload length changed": _flip(HEADER_3 - 1),
    "payload byte changed": _flip(HEADER_3 + 3),
    "payload tag changed": _flip(len(SAMPLE) - 1),
    "header only": lambda e: e[:HEADER_3],
    "truncated by one": lambda e: e[:-1],
    "truncated tag": lambda e: e[:-16],
    "extended by one": lambda e: e + b"\x00",
    "extended by a block": lambda e: e + bytes(256),
    "payload swapped from another envelope": lambda e: (
        e[:HEADER_3] + seal(SECRET, [OTP_1.public, OTP_2.public, OTP_3.public], aad=AAD)[HEADER_3:]
    ),
    "own stanza removed": lambda e: (
        e[:6] + b"\x00\x02" + e[8 : 8 + STANZA_LEN] + e[8 + 2 * STANZA_LEN :]
    ),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_tampered_envelope_refused(case: str) -> None:
    bad = TAMPERED[case](SAMPLE)
    assert bad != SAMPLE
    with pytest.raises(CustodyError) as info:
        open_sealed(bad, OTP_2, aad=AAD)
    assert isinstance(info.value, EnvelopeError | NotARecipient)
    assert_no_secret(info.value, SECRET)


def test_every_byte_flipped_is_refused() -> None:
    for offset in range(len(SAMPLE)):
        bad = _flip(offset)(SAMPLE)
        try:
            open_sealed(bad, OTP_2, aad=AAD)
        except (EnvelopeError, NotARecipient) as exc:
            assert_no_secret(exc, SECRET)
        else:
            pytest.fail(f"flipping byte {offset} was not detected")


def test_every_truncation_is_refused() -> None:
    for length in range(len(SAMPLE)):
        with pytest.raises(EnvelopeError) as info:
            open_sealed(SAMPLE[:length], OTP_2, aad=AAD)
        assert_no_secret(info.value, SECRET)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_refused_cleanly(data: bytes) -> None:
    with pytest.raises(CustodyError):
        open_sealed(data, OTP_2, aad=AAD)


@pytest.mark.parametrize("case", ["empty", "other magic", "truncated by one", "extended by one"])
def test_recipients_of_refuses_malformed(case: str) -> None:
    with pytest.raises(EnvelopeError):
        recipients_of(TAMPERED[case](SAMPLE))


# --- commitments -------------------------------------------------------------------------------


def test_commitment_matches_independent_hmac() -> None:
    salt = bytes(range(32))
    made = commit(SECRET, salt)
    expected = hmac.new(salt, COMMITMENT_DOMAIN + SECRET, hashlib.sha256).hexdigest()
    assert made == Commitment(salt.hex(), expected)


def test_commitment_check() -> None:
    made = commit(SECRET)
    assert len(bytes.fromhex(made.salt_hex)) == 32
    assert check_commitment(made, SECRET)
    assert not check_commitment(made, SECRET + b" ")
    assert not check_commitment(made, b"")
    other_salt = commit(SECRET)
    assert other_salt.salt_hex != made.salt_hex
    assert other_salt.digest_hex != made.digest_hex
    assert not check_commitment(Commitment(other_salt.salt_hex, made.digest_hex), SECRET)


def test_commitment_repr_hides_salt() -> None:
    made = commit(SECRET)
    assert made.salt_hex not in repr(made)
    assert made.digest_hex in repr(made)


@pytest.mark.parametrize(
    ("salt_hex", "digest_hex"),
    [
        pytest.param("00" * 31, "00" * 32, id="short salt"),
        pytest.param("00" * 32, "00" * 33, id="long digest"),
        pytest.param("AB" * 32, "00" * 32, id="uppercase salt"),
        pytest.param("00" * 32, "zz" * 32, id="digest not hex"),
    ],
)
def test_malformed_commitment_refused(salt_hex: str, digest_hex: str) -> None:
    with pytest.raises(InputError):
        Commitment(salt_hex, digest_hex)


def test_commit_refuses_short_salt() -> None:
    with pytest.raises(InputError):
        commit(SECRET, b"short")


# --- protected annexes -------------------------------------------------------------------------


def test_protect_and_reveal() -> None:
    sealed = protect(FIELDS, [OTP_1.public, OTP_2.public], aad=AAD)
    assert sealed.ciphertext_sha256 == hashlib.sha256(sealed.envelope).hexdigest()
    assert sealed.recipients == (OTP_1.recipient_id, OTP_2.recipient_id)
    for key in (OTP_1, OTP_2):
        fields = reveal(sealed.envelope, key, aad=AAD, commitment_digest=sealed.commitment_digest)
        assert fields == FIELDS


def test_annex_commitment_can_be_disclosed() -> None:
    """A recipient can disclose fields and salt; anyone can check them against the log."""
    import rfc8785

    sealed = protect(FIELDS, [OTP_1.public], aad=AAD)
    opened = open_annex(sealed.envelope, OTP_1, aad=AAD)
    assert opened.commitment.digest_hex == sealed.commitment_digest
    assert check_commitment(opened.commitment, rfc8785.dumps(FIELDS))
    altered = dict(FIELDS, date_of_birth="2011-04-10")
    assert not check_commitment(opened.commitment, rfc8785.dumps(altered))


def test_sealed_annex_leaks_nothing() -> None:
    sealed = protect(FIELDS, [OTP_1.public], aad=AAD)
    opened = open_annex(sealed.envelope, OTP_1, aad=AAD)
    visible = repr(sealed) + repr(opened) + str(sealed) + str(opened)
    for value in FIELDS.values():
        assert value not in visible
        assert value.encode() not in sealed.envelope
    assert opened.commitment.salt_hex not in visible
    assert opened.commitment.salt_hex.encode() not in sealed.envelope
    loggable = (sealed.ciphertext_sha256, sealed.commitment_digest, *sealed.recipients)
    assert all(value not in " ".join(loggable) for value in FIELDS.values())


def test_reveal_refuses_other_commitment() -> None:
    sealed = protect(FIELDS, [OTP_1.public], aad=AAD)
    other = protect(FIELDS, [OTP_1.public], aad=AAD)
    with pytest.raises(VerificationError) as info:
        reveal(sealed.envelope, OTP_1, aad=AAD, commitment_digest=other.commitment_digest)
    assert info.value.findings[0].code == "protected.commitment_mismatch"
    assert_no_secret(info.value, *FIELDS.values())


def test_reveal_refuses_wrong_recipient_and_aad() -> None:
    sealed = protect(FIELDS, [OTP_1.public], aad=AAD)
    with pytest.raises(NotARecipient) as info:
        reveal(sealed.envelope, OTP_2, aad=AAD, commitment_digest=sealed.commitment_digest)
    assert_no_secret(info.value, *FIELDS.values())
    with pytest.raises(EnvelopeError) as info2:
        reveal(sealed.envelope, OTP_1, aad=b"other", commitment_digest=sealed.commitment_digest)
    assert_no_secret(info2.value, *FIELDS.values())


def test_open_annex_refuses_envelope_that_is_not_an_annex() -> None:
    envelope = seal(SECRET, [OTP_1.public], aad=AAD)
    with pytest.raises(EnvelopeError, match="does not hold a protected annex") as info:
        open_annex(envelope, OTP_1, aad=AAD)
    assert_no_secret(info.value, SECRET)


BAD_FIELDS: dict[str, object] = {
    "empty": {},
    "non-text value": {"name": 7},
    "empty name": {"": "x"},
    "lone surrogate": {"name": "Invented \ud800"},
}


@pytest.mark.parametrize("case", list(BAD_FIELDS))
def test_protect_refuses_bad_fields(case: str) -> None:
    with pytest.raises(InputError) as info:
        protect(BAD_FIELDS[case], [OTP_1.public], aad=AAD)  # type: ignore[arg-type]
    assert_no_secret(info.value, "Invented")


@settings(max_examples=40, deadline=None)
@given(
    fields=st.dictionaries(
        st.text(min_size=1, max_size=20), st.text(max_size=80), min_size=1, max_size=6
    )
)
def test_protect_reveal_round_trip(fields: dict[str, str]) -> None:
    sealed = protect(fields, [OTP_3.public], aad=AAD)
    assert isinstance(sealed, SealedAnnex)
    revealed = reveal(sealed.envelope, OTP_3, aad=AAD, commitment_digest=sealed.commitment_digest)
    assert revealed == fields


def test_key_file_whose_key_does_not_match_its_public_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "otp.key"
    save_recipient(generate_recipient("otp-unit-9"), path, PASSPHRASE)
    other = generate_recipient("otp-unit-9").public.to_text().encode()
    lines = path.read_bytes().split(b"\n")
    lines[1] = b"Public-Key: " + other
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(KeyFileError, match="damaged"):
        load_recipient(path, PASSPHRASE)
