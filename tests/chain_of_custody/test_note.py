"""Signed notes: exact bytes, strict parsing and the C2SP verification rules."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain_of_custody import note as note_module
from chain_of_custody.errors import InputError, VerificationError
from chain_of_custody.keys import Signer, VerifierKey, signer_from_seed
from chain_of_custody.note import Note, NoteSignature, parse_note, sign_note, verify_note

VECTOR: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "signed_note_vector.json").read_text("utf-8")
)

# golang.org/x/mod/sumdb/note example: key, text and the published signed note.
GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + (
        "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSN"
        "XgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    ).encode()
)


def test_sign_note_reproduces_the_go_reference_note() -> None:
    signer = signer_from_seed("PeterNeumann", GO_SEED)
    assert sign_note(GO_TEXT, [signer]) == GO_NOTE
    note = verify_note(GO_NOTE, [VerifierKey.from_note_text(GO_VKEY)])
    assert note.text == GO_TEXT


def test_go_note_with_altered_text_fails() -> None:
    tampered = GO_NOTE.replace(b"cryptography", b"cryptographY")
    with pytest.raises(VerificationError):
        verify_note(tampered, [VerifierKey.from_note_text(GO_VKEY)])


def test_own_vector_reproduces_byte_for_byte() -> None:
    signer = signer_from_seed(VECTOR["key_name"], bytes.fromhex(VECTOR["seed_hex"]))
    assert signer.verifier.public_key.hex() == VECTOR["public_key_hex"]
    assert signer.verifier.note_key_hash.hex() == VECTOR["key_hash_hex"]
    assert signer.key_id == VECTOR["key_id"]
    assert signer.verifier.to_note_text() == VECTOR["verifier_key"]
    signed = sign_note(VECTOR["note_text"], [signer])
    assert signed == VECTOR["signed_note"].encode()
    assert signed == (VECTOR["note_text"] + "\n" + VECTOR["signature_line"]).encode()
    assert verify_note(signed, [signer.verifier]).text_str == VECTOR["note_text"]


def test_signature_covers_the_text_bytes_exactly(investigator_a: Signer) -> None:
    text = b"line one\nline two\n"
    note = parse_note(sign_note(text, [investigator_a]))
    (sig,) = note.signatures
    assert sig.name == "investigator-a"
    assert sig.key_hash == investigator_a.verifier.note_key_hash
    assert investigator_a.verifier.verify(sig.signature, text)


def test_two_signers_and_round_trip(investigator_a: Signer, investigator_b: Signer) -> None:
    signed = sign_note("hello\n", [investigator_a, investigator_b])
    note = parse_note(signed)
    assert [s.name for s in note.signatures] == ["investigator-a", "investigator-b"]
    assert note.to_bytes() == signed
    assert verify_note(signed, [investigator_b.verifier]) == note


def test_text_with_empty_line_splits_at_last_blank_line(investigator_a: Signer) -> None:
    signed = sign_note("a\n\nb\n", [investigator_a])
    assert verify_note(signed, [investigator_a.verifier]).text == b"a\n\nb\n"


def test_unknown_key_signatures_are_ignored(
    investigator_a: Signer, investigator_b: Signer, outsider: Signer
) -> None:
    signed = sign_note("hello\n", [outsider, investigator_a])
    assert verify_note(signed, [investigator_a.verifier]).text == b"hello\n"
    # Same name but a different key: ignored, not failed (C2SP: both name and id must match).
    impostor = signer_from_seed("investigator-a", b"\x07" * 32)
    signed = sign_note("hello\n", [impostor, investigator_a])
    assert verify_note(signed, [investigator_a.verifier]).text == b"hello\n"


def test_only_unknown_signatures_fail(investigator_a: Signer, outsider: Signer) -> None:
    with pytest.raises(VerificationError) as caught:
        verify_note(sign_note("hello\n", [outsider]), [investigator_a.verifier])
    assert caught.value.findings[0].code == "note-untrusted"


def test_bad_signature_of_trusted_key_rejects_the_note(
    investigator_a: Signer, investigator_b: Signer
) -> None:
    signed = sign_note("hello\n", [investigator_a, investigator_b])
    forged_line = NoteSignature(
        "investigator-b", investigator_b.verifier.note_key_hash, bytes(64)
    ).line()
    lines = signed.decode().split("\n")
    lines[-2] = forged_line.rstrip("\n")
    forged = "\n".join(lines).encode()
    with pytest.raises(VerificationError) as caught:
        verify_note(forged, [investigator_a.verifier, investigator_b.verifier])
    assert caught.value.findings[0].code == "note-bad-signature"


def test_verify_accepts_a_parsed_note(investigator_a: Signer) -> None:
    note = parse_note(sign_note("hello\n", [investigator_a]))
    assert isinstance(verify_note(note, [investigator_a.verifier]), Note)


BAD_TEXTS: list[tuple[str, Any]] = [
    ("empty", b""),
    ("no final newline", b"hello"),
    ("control character", b"hel\x01lo\n"),
    ("carriage return", b"hello\r\n"),
    ("invalid utf-8", b"\xff\n"),
    ("looks like a signature", "— x y\n".encode()),
]


@pytest.mark.parametrize("text", [t for _, t in BAD_TEXTS], ids=[n for n, _ in BAD_TEXTS])
def test_sign_refuses_bad_text(text: bytes, investigator_a: Signer) -> None:
    with pytest.raises(InputError):
        sign_note(text, [investigator_a])


def test_sign_needs_a_signer() -> None:
    with pytest.raises(InputError):
        sign_note("hello\n", [])


BAD_NOTES: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("no blank line", GO_TEXT),
    ("no signatures", GO_TEXT + b"\n"),
    ("no final newline", GO_NOTE[:-1]),
    ("truncated signature", GO_NOTE[:-20] + b"\n"),
    ("hyphen not em dash", GO_NOTE.replace("—".encode(), b"-")),
    ("two spaces", GO_NOTE.replace(b"PeterNeumann ", b"PeterNeumann  ")),
    ("missing name", GO_NOTE.replace(b"PeterNeumann ", b"")),
    ("plus in name", GO_NOTE.replace(b"PeterNeumann ", b"Peter+Neumann ")),
    ("short signature", GO_TEXT + "\n— PeterNeumann AAAA\n".encode()),
    ("base64 without padding", GO_NOTE.replace(b"nAM=", b"nAM")),
    ("urlsafe base64", GO_NOTE.replace(b"x08go/", b"x08go_")),
    ("invalid utf-8", GO_NOTE.replace(b"cryptography", b"crypto\xffgraphy")),
    ("control character", GO_NOTE.replace(b"cryptography", b"crypto\x00graphy")),
    ("carriage returns", GO_NOTE.replace(b"\n", b"\r\n")),
    ("trailing blank line", GO_NOTE + b"\n"),
    ("too many signatures", GO_TEXT + b"\n" + GO_NOTE[len(GO_TEXT) + 1 :] * 101),
]


@pytest.mark.parametrize("data", [d for _, d in BAD_NOTES], ids=[n for n, _ in BAD_NOTES])
def test_malformed_notes_are_refused(data: bytes) -> None:
    with pytest.raises(InputError):
        parse_note(data)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_input_error(data: bytes) -> None:
    with contextlib.suppress(InputError):
        parse_note(data)


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=len(GO_NOTE) - 1))
def test_truncations_are_refused_or_fail_verification(end: int) -> None:
    key = VerifierKey.from_note_text(GO_VKEY)
    with pytest.raises((InputError, VerificationError)):
        verify_note(GO_NOTE[:end], [key])


@given(
    st.lists(
        st.text(
            alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20
        ).filter(lambda s: not s.startswith("— ")),
        min_size=1,
        max_size=5,
    )
)
def test_sign_parse_verify_round_trip(lines: list[str]) -> None:
    signer = signer_from_seed("round-trip", bytes(32))
    text = "\n".join(lines) + "\n"
    signed = sign_note(text, [signer])
    note = verify_note(signed, [signer.verifier])
    assert note.text == text.encode()


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_control_check_on_bytes_agrees_with_the_check_on_text(text: str) -> None:
    assert note_module._has_controls(text.encode("utf-8")) == bool(
        note_module._CONTROL.search(text)
    )
