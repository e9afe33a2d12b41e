"""Checkpoints: the C2SP tlog-checkpoint text, signing and opening."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain_of_custody.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from chain_of_custody.errors import InputError, VerificationError
from chain_of_custody.keys import Signer, signer_from_seed
from chain_of_custody.note import sign_note

ORIGIN = "evidence.example/UA-DEP-2026-001"
ROOT = hashlib.sha256(b"root").digest()


def test_text_form_of_the_c2sp_example() -> None:
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    example = Checkpoint.from_text(text)
    assert (example.origin, example.size) == ("example.com/behind-the-sofa", 20852163)
    assert example.to_text() == text
    cp = Checkpoint(ORIGIN, 20852163, ROOT)
    assert Checkpoint.from_text(cp.to_text()) == cp
    assert Checkpoint.from_text(cp.to_text().encode()) == cp


def test_vector_checkpoint_reproduces() -> None:
    vector = json.loads(
        (Path(__file__).parent / "vectors" / "signed_note_vector.json").read_text("utf-8")
    )
    signer = signer_from_seed(vector["key_name"], bytes.fromhex(vector["seed_hex"]))
    cp = Checkpoint.from_text(vector["checkpoint_text"])
    assert cp.root.hex() == vector["leaf_hash_hex"]  # a one-leaf tree's root is its leaf hash
    assert sign_checkpoint(cp, [signer]) == vector["checkpoint_note"].encode()


def test_sign_and_open(investigator_a: Signer) -> None:
    cp = Checkpoint(ORIGIN, 7, ROOT)
    note = sign_checkpoint(cp, [investigator_a])
    assert open_checkpoint(note, [investigator_a.verifier]) == cp
    assert open_checkpoint(note, [investigator_a.verifier], origin=ORIGIN) == cp


def test_open_refuses_another_origin(investigator_a: Signer) -> None:
    note = sign_checkpoint(Checkpoint("other.example/log", 7, ROOT), [investigator_a])
    with pytest.raises(VerificationError) as caught:
        open_checkpoint(note, [investigator_a.verifier], origin=ORIGIN)
    assert caught.value.findings[0].code == "checkpoint-origin"


def test_open_refuses_untrusted_signer(investigator_a: Signer, outsider: Signer) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), [outsider])
    with pytest.raises(VerificationError):
        open_checkpoint(note, [investigator_a.verifier])


def test_open_refuses_altered_size(investigator_a: Signer) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), [investigator_a])
    with pytest.raises(VerificationError):
        open_checkpoint(note.replace(b"\n7\n", b"\n8\n"), [investigator_a.verifier])


def test_open_refuses_signed_extension_lines(investigator_a: Signer) -> None:
    text = Checkpoint(ORIGIN, 7, ROOT).to_text() + "extension\n"
    with pytest.raises(InputError, match="extension"):
        open_checkpoint(sign_note(text, [investigator_a]), [investigator_a.verifier])


GOOD = Checkpoint(ORIGIN, 7, ROOT).to_text()
BAD_TEXTS = [
    ("empty", ""),
    ("no final newline", GOOD[:-1]),
    ("two lines", f"{ORIGIN}\n7\n"),
    ("extension line", GOOD + "x\n"),
    ("leading zero", GOOD.replace("\n7\n", "\n07\n")),
    ("negative size", GOOD.replace("\n7\n", "\n-7\n")),
    ("plus sign", GOOD.replace("\n7\n", "\n+7\n")),
    ("hex size", GOOD.replace("\n7\n", "\n0x7\n")),
    ("size with space", GOOD.replace("\n7\n", "\n 7\n")),
    ("short root", f"{ORIGIN}\n7\nAAAA\n"),
    ("unpadded root", GOOD.replace("=\n", "\n")),
    ("empty origin", GOOD.replace(ORIGIN, "")),
    ("origin with trailing space", GOOD.replace(ORIGIN, ORIGIN + " ")),
    ("huge size", GOOD.replace("\n7\n", "\n" + "9" * 25 + "\n")),
]


@pytest.mark.parametrize("text", [t for _, t in BAD_TEXTS], ids=[n for n, _ in BAD_TEXTS])
def test_malformed_checkpoint_text_is_refused(text: str) -> None:
    with pytest.raises(InputError):
        Checkpoint.from_text(text)


@pytest.mark.parametrize(
    ("origin", "size", "root"),
    [("", 1, ROOT), (ORIGIN, -1, ROOT), (ORIGIN, 1, b"short"), ("a\nb", 1, ROOT)],
    ids=["empty origin", "negative size", "short root", "newline in origin"],
)
def test_invalid_fields_are_refused(origin: str, size: int, root: bytes) -> None:
    with pytest.raises(InputError):
        Checkpoint(origin, size, root)


@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1)
    .map(str.strip)
    .filter(lambda s: bool(s) and s.isprintable()),
    st.integers(min_value=0, max_value=2**63 - 1),
    st.binary(min_size=32, max_size=32),
)
def test_text_round_trip(origin: str, size: int, root: bytes) -> None:
    cp = Checkpoint(origin, size, root)
    assert Checkpoint.from_text(cp.to_text()) == cp
