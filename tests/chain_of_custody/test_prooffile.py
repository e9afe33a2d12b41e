"""Proof files: C2SP tlog-proof text carrying the leaf, checked against a signed checkpoint."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain_of_custody.checkpoint import Checkpoint, sign_checkpoint
from chain_of_custody.errors import InputError, VerificationError
from chain_of_custody.keys import Signer, signer_from_seed
from chain_of_custody.merkle import MemoryTree
from chain_of_custody.prooffile import ProofFile, format_proof, parse_proof, verify_proof

ORIGIN = "evidence.example/UA-DEP-2026-001"
LOG_KEY = signer_from_seed("case-log", b"\x11" * 32)
LEAVES = [f"leaf {i}\n\n— fake\n".encode() for i in range(7)]


def build(index: int, signer: Signer = LOG_KEY) -> ProofFile:
    tree = MemoryTree()
    for leaf in LEAVES:
        tree.append(leaf)
    size = tree.size
    note = sign_checkpoint(Checkpoint(ORIGIN, size, tree.root()), [signer])
    path = tuple(tree.view.inclusion_proof(index, size))
    return ProofFile(LEAVES[index], index, path, note)


GOOD = format_proof(build(5))


def test_format_follows_tlog_proof() -> None:
    proof = build(5)
    lines = format_proof(proof).decode().split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "extra " + base64.b64encode(LEAVES[5]).decode()
    assert lines[2] == "index 5"
    assert len(proof.path) == 3
    assert lines[3:6] == [base64.b64encode(h).decode() for h in proof.path]
    assert lines[6] == ""
    assert "\n".join(lines[7:]).encode() == proof.checkpoint


@pytest.mark.parametrize("index", range(len(LEAVES)))
def test_round_trip_and_verify_every_index(index: int) -> None:
    proof = build(index)
    parsed = parse_proof(format_proof(proof))
    assert parsed == proof
    checkpoint = verify_proof(parsed, [LOG_KEY.verifier])
    assert checkpoint.size == len(LEAVES)


def test_single_leaf_tree_has_no_hash_lines() -> None:
    tree = MemoryTree()
    tree.append(b"only\n")
    note = sign_checkpoint(Checkpoint(ORIGIN, 1, tree.root()), [LOG_KEY])
    proof = ProofFile(b"only\n", 0, (), note)
    data = format_proof(proof)
    assert b"index 0\n\n" in data
    assert verify_proof(parse_proof(data), [LOG_KEY.verifier]).size == 1


def test_altered_leaf_fails_inclusion() -> None:
    proof = build(2)
    forged = ProofFile(b"leaf 2 altered\n", proof.index, proof.path, proof.checkpoint)
    with pytest.raises(VerificationError) as caught:
        verify_proof(forged, [LOG_KEY.verifier])
    assert caught.value.findings[0].code == "inclusion-proof-invalid"


def test_wrong_index_fails_inclusion() -> None:
    proof = build(2)
    with pytest.raises(VerificationError):
        verify_proof(ProofFile(proof.leaf, 3, proof.path, proof.checkpoint), [LOG_KEY.verifier])


def test_untrusted_checkpoint_fails(outsider: Signer) -> None:
    with pytest.raises(VerificationError):
        verify_proof(build(1, signer=outsider), [LOG_KEY.verifier])


def test_altered_path_fails() -> None:
    proof = build(4)
    path = (bytes(32), *proof.path[1:])
    with pytest.raises(VerificationError):
        verify_proof(ProofFile(proof.leaf, 4, path, proof.checkpoint), [LOG_KEY.verifier])


LINES = GOOD.split(b"\n")
BAD_PROOFS: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("wrong header", GOOD.replace(b"tlog-proof@v1", b"tlog-proof@v2", 1)),
    ("no extra line", b"\n".join([LINES[0], *LINES[2:]])),
    ("empty extra", GOOD.replace(LINES[1], b"extra ", 1)),
    ("extra not base64", GOOD.replace(LINES[1], b"extra !!!", 1)),
    ("index leading zero", GOOD.replace(b"index 5", b"index 05", 1)),
    ("index negative", GOOD.replace(b"index 5", b"index -5", 1)),
    ("index missing", GOOD.replace(b"index 5\n", b"", 1)),
    ("hash too short", GOOD.replace(LINES[3], b"AAAA", 1)),
    ("hash not base64", GOOD.replace(LINES[3], b"%" * 44, 1)),
    ("no blank line", GOOD.replace(b"\n\n", b"\n", 1)),
    ("checkpoint missing", GOOD[: GOOD.index(b"\n\n") + 2]),
    ("checkpoint unsigned", GOOD[: GOOD.rindex(b"\n\n") + 2]),
    ("checkpoint truncated", GOOD[:-5]),
    ("checkpoint with extension", GOOD.replace(b"=\n\n", b"=\next\n\n")),
    ("non-ascii header", GOOD.replace(b"index", "índex".encode(), 1)),
    ("too many hashes", GOOD.replace(LINES[3], b"\n".join([LINES[3]] * 65), 1)),
]


@pytest.mark.parametrize("data", [d for _, d in BAD_PROOFS], ids=[n for n, _ in BAD_PROOFS])
def test_malformed_proof_files_are_refused(data: bytes) -> None:
    with pytest.raises(InputError):
        parse_proof(data)


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_random_bytes_give_input_error_only(data: bytes) -> None:
    with contextlib.suppress(InputError):
        parse_proof(data)


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=len(GOOD) - 1))
def test_every_truncation_is_refused_or_fails(end: int) -> None:
    with pytest.raises((InputError, VerificationError)):
        verify_proof(parse_proof(GOOD[:end]), [LOG_KEY.verifier])


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=len(GOOD) - 1), st.integers(min_value=1, max_value=255))
def test_every_byte_flip_is_refused_or_fails(position: int, flip: int) -> None:
    data = bytearray(GOOD)
    data[position] ^= flip
    with pytest.raises((InputError, VerificationError)):
        verify_proof(parse_proof(bytes(data)), [LOG_KEY.verifier])
