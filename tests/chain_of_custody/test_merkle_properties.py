"""Properties of proofs over all trees up to 128 leaves, against a literal RFC 9162 reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain_of_custody.errors import VerificationError
from chain_of_custody.merkle import MemoryTree, leaf_hash, verify_consistency, verify_inclusion
from tests.chain_of_custody import merkle_reference as ref

MAX_SIZE = 128
LEAVES = [leaf_hash(f"event {i}".encode()) for i in range(MAX_SIZE + 1)]


def _build() -> MemoryTree:
    tree = MemoryTree()
    for value in LEAVES:
        tree.append_hash(value)
    return tree


TREE = _build()
VIEW = TREE.view
ROOTS = [VIEW.root(n) for n in range(MAX_SIZE + 2)]


def test_every_root_matches_reference() -> None:
    for n in range(MAX_SIZE + 1):
        assert ROOTS[n] == ref.mth(LEAVES[:n])


def test_every_inclusion_proof_matches_reference_and_verifies() -> None:
    for n in range(1, MAX_SIZE + 1):
        for i in range(n):
            proof = VIEW.inclusion_proof(i, n)
            assert proof == ref.path(i, LEAVES[:n]), (i, n)
            verify_inclusion(LEAVES[i], i, n, proof, ROOTS[n])


def test_every_consistency_proof_matches_reference_and_verifies() -> None:
    for n in range(1, MAX_SIZE + 1):
        for m in range(1, n + 1):
            proof = VIEW.consistency_proof(m, n)
            assert proof == ref.proof(m, LEAVES[:n]), (m, n)
            verify_consistency(m, n, proof, ROOTS[m], ROOTS[n])


sizes = st.integers(min_value=1, max_value=MAX_SIZE)


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(sizes)
    return draw(st.integers(min_value=0, max_value=n - 1)), n


@st.composite
def size_pair(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(min_value=2, max_value=MAX_SIZE))
    return draw(st.integers(min_value=1, max_value=n - 1)), n


def _refuses_inclusion(h: bytes, i: int, n: int, proof: list[bytes], root: bytes) -> None:
    with pytest.raises(VerificationError):
        verify_inclusion(h, i, n, proof, root)


def _refuses_consistency(m: int, n: int, proof: list[bytes], r1: bytes, r2: bytes) -> None:
    with pytest.raises(VerificationError):
        verify_consistency(m, n, proof, r1, r2)


@settings(max_examples=300)
@given(index_and_size(), st.data())
def test_flipped_bit_in_inclusion_is_refused(case: tuple[int, int], data: st.DataObject) -> None:
    i, n = case
    proof = VIEW.inclusion_proof(i, n)
    parts = [LEAVES[i], ROOTS[n], *proof]
    target = data.draw(st.integers(0, len(parts) - 1))
    bit = data.draw(st.integers(0, 255))
    flipped = bytearray(parts[target])
    flipped[bit // 8] ^= 1 << (bit % 8)
    parts[target] = bytes(flipped)
    _refuses_inclusion(parts[0], i, n, parts[2:], parts[1])


@settings(max_examples=300)
@given(index_and_size(), st.data())
def test_dropped_or_added_inclusion_hash_is_refused(
    case: tuple[int, int], data: st.DataObject
) -> None:
    i, n = case
    proof = VIEW.inclusion_proof(i, n)
    at = data.draw(st.integers(0, len(proof)))
    extra = data.draw(st.sampled_from([*LEAVES[:4], ROOTS[n]]))
    _refuses_inclusion(LEAVES[i], i, n, [*proof[:at], extra, *proof[at:]], ROOTS[n])
    if proof:
        drop = data.draw(st.integers(0, len(proof) - 1))
        _refuses_inclusion(LEAVES[i], i, n, proof[:drop] + proof[drop + 1 :], ROOTS[n])


@settings(max_examples=300)
@given(index_and_size(), st.integers(min_value=-2, max_value=MAX_SIZE + 2))
def test_wrong_index_is_refused(case: tuple[int, int], other: int) -> None:
    i, n = case
    if other == i:
        return
    proof = VIEW.inclusion_proof(i, n)
    _refuses_inclusion(LEAVES[i], other, n, proof, ROOTS[n])
    if 0 <= other <= MAX_SIZE:
        _refuses_inclusion(LEAVES[other], other, n, proof, ROOTS[n])


@settings(max_examples=300)
@given(index_and_size(), st.integers(min_value=0, max_value=MAX_SIZE + 1))
def test_wrong_size_is_refused(case: tuple[int, int], other: int) -> None:
    i, n = case
    if other == n:
        return
    # The claimed size comes with the root signed for that size.
    _refuses_inclusion(LEAVES[i], i, other, VIEW.inclusion_proof(i, n), ROOTS[other])


@settings(max_examples=300)
@given(size_pair(), st.data())
def test_flipped_bit_in_consistency_is_refused(case: tuple[int, int], data: st.DataObject) -> None:
    m, n = case
    parts = [ROOTS[m], ROOTS[n], *VIEW.consistency_proof(m, n)]
    target = data.draw(st.integers(0, len(parts) - 1))
    bit = data.draw(st.integers(0, 255))
    flipped = bytearray(parts[target])
    flipped[bit // 8] ^= 1 << (bit % 8)
    parts[target] = bytes(flipped)
    _refuses_consistency(m, n, parts[2:], parts[0], parts[1])


@settings(max_examples=300)
@given(size_pair(), st.data())
def test_dropped_or_added_consistency_hash_is_refused(
    case: tuple[int, int], data: st.DataObject
) -> None:
    m, n = case
    proof = VIEW.consistency_proof(m, n)
    at = data.draw(st.integers(0, len(proof)))
    extra = data.draw(st.sampled_from([*LEAVES[:4], ROOTS[m], ROOTS[n]]))
    _refuses_consistency(m, n, [*proof[:at], extra, *proof[at:]], ROOTS[m], ROOTS[n])
    drop = data.draw(st.integers(0, len(proof) - 1))
    _refuses_consistency(m, n, proof[:drop] + proof[drop + 1 :], ROOTS[m], ROOTS[n])


@settings(max_examples=300)
@given(size_pair(), st.integers(min_value=0, max_value=MAX_SIZE + 1), st.booleans())
def test_wrong_consistency_size_is_refused(case: tuple[int, int], other: int, old: bool) -> None:
    m, n = case
    proof = VIEW.consistency_proof(m, n)
    if old and other != m:
        _refuses_consistency(other, n, proof, ROOTS[other], ROOTS[n])
    elif not old and other != n:
        _refuses_consistency(m, other, proof, ROOTS[m], ROOTS[other])


@given(size_pair())
def test_consistency_with_a_forked_tree_is_refused(case: tuple[int, int]) -> None:
    m, n = case
    fork = MemoryTree()
    for i, value in enumerate(LEAVES[:n]):
        fork.append_hash(leaf_hash(b"rewritten") if i == m - 1 else value)
    proof = fork.view.consistency_proof(m, n)
    _refuses_consistency(m, n, proof, ROOTS[m], fork.view.root(n))
