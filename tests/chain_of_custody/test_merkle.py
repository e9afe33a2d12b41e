"""Unit tests of the Merkle tree: hashes, stored nodes, proofs and their refusals."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from chain_of_custody.errors import InputError, VerificationError
from chain_of_custody.merkle import (
    EMPTY_ROOT,
    BatchNodeReader,
    MemoryTree,
    NodeReader,
    TreeView,
    leaf_hash,
    new_nodes_for_append,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from tests.chain_of_custody import merkle_reference as ref

# The RFC 6962 test tree of 8 leaves, as used by transparency-dev/merkle.
RFC6962_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
# Roots of the first 1..8 leaves, published with those inputs.
RFC6962_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def _tree(size: int) -> MemoryTree:
    tree = MemoryTree()
    for i in range(size):
        tree.append(f"leaf {i}".encode())
    return tree


def test_hash_prefixes() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = b"L" * 32, b"R" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert node_hash(left, right) != node_hash(right, left)


def test_empty_tree_root() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert MemoryTree().root() == EMPTY_ROOT


def test_published_rfc6962_roots() -> None:
    tree = MemoryTree()
    for size, (data, expected) in enumerate(zip(RFC6962_LEAVES, RFC6962_ROOTS, strict=True), 1):
        tree.append(data)
        assert tree.root().hex() == expected
        hashes = [leaf_hash(d) for d in RFC6962_LEAVES[:size]]
        assert root_from_leaf_hashes(hashes).hex() == expected
    # Every earlier size stays answerable from the stored nodes.
    for size, expected in enumerate(RFC6962_ROOTS, 1):
        assert tree.view.root(size).hex() == expected


def test_new_nodes_for_append_stores_completed_parents() -> None:
    tree = _tree(7)
    new_leaf = leaf_hash(b"leaf 7")
    nodes = new_nodes_for_append(7, new_leaf, tree)
    assert [(level, index) for level, index, _ in nodes] == [(0, 7), (1, 3), (2, 1), (3, 0)]
    assert nodes[0][2] == new_leaf
    leaves = [leaf_hash(f"leaf {i}".encode()) for i in range(8)]
    assert nodes[-1][2] == ref.mth(leaves)
    assert nodes[1][2] == ref.mth(leaves[6:8])
    # An even index completes nothing.
    assert [(lv, ix) for lv, ix, _ in new_nodes_for_append(8, new_leaf, tree)] == [(0, 8)]


def test_memory_tree_nodes_are_subtree_hashes() -> None:
    size = 37
    tree = _tree(size)
    leaves = [leaf_hash(f"leaf {i}".encode()) for i in range(size)]
    level = 0
    while (1 << level) <= size:
        for index in range(size >> level):
            start = index << level
            assert tree.get_node(level, index) == ref.mth(leaves[start : start + (1 << level)])
        with pytest.raises(LookupError):
            tree.get_node(level, size >> level)
        level += 1


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64, 100])
def test_views_match_reference(size: int) -> None:
    tree = _tree(size)
    leaves = [leaf_hash(f"leaf {i}".encode()) for i in range(size)]
    for n in range(1, size + 1):
        assert tree.view.root(n) == ref.mth(leaves[:n])
        for m in range(n):
            assert tree.view.inclusion_proof(m, n) == ref.path(m, leaves[:n])
        for m in range(1, n + 1):
            assert tree.view.consistency_proof(m, n) == ref.proof(m, leaves[:n])


@pytest.mark.parametrize(
    ("index", "size"),
    [
        pytest.param(0, 0, id="empty-tree"),
        pytest.param(5, 5, id="index-equals-size"),
        pytest.param(9, 5, id="index-beyond-size"),
        pytest.param(-1, 5, id="negative-index"),
    ],
)
def test_inclusion_proof_refuses_bad_arguments(index: int, size: int) -> None:
    with pytest.raises(InputError):
        _tree(8).view.inclusion_proof(index, size)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(0, 4, id="from-size-zero"),
        pytest.param(0, 0, id="both-zero"),
        pytest.param(-1, 4, id="negative-old"),
        pytest.param(5, 4, id="old-larger-than-new"),
    ],
)
def test_consistency_proof_refuses_bad_arguments(old: int, new: int) -> None:
    with pytest.raises(InputError):
        _tree(8).view.consistency_proof(old, new)


def test_view_beyond_stored_size_is_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        _tree(4).view.root(5)


def test_root_refuses_negative_size() -> None:
    with pytest.raises(InputError):
        _tree(4).view.root(-1)


TREE = _tree(16)
VIEW = TREE.view


def _flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


InclusionArgs = tuple[bytes, int, int, list[bytes], bytes]


def _good_inclusion() -> InclusionArgs:
    return leaf_hash(b"leaf 6"), 6, 11, VIEW.inclusion_proof(6, 11), VIEW.root(11)


# A size is authenticated by the checkpoint that carries the root, so a "wrong size" attack pairs
# the claimed size with the root of that size; with the true root, a size giving the same proof
# shape (11 and 12 for leaf 6) computes the true root and is rightly accepted.
INCLUSION_CASES: dict[str, Callable[..., InclusionArgs]] = {
    "index-at-size": lambda h, i, n, p, r: (h, n, n, p, r),
    "negative-index": lambda h, i, n, p, r: (h, -1, n, p, r),
    "zero-size": lambda h, i, n, p, r: (h, 0, 0, p, r),
    "wrong-index": lambda h, i, n, p, r: (h, i + 1, n, p, r),
    "wrong-index-and-leaf": lambda h, i, n, p, r: (leaf_hash(b"leaf 7"), i + 1, n, p, r),
    "wrong-size-with-its-root": lambda h, i, n, p, r: (h, i, n + 1, p, VIEW.root(n + 1)),
    "double-size": lambda h, i, n, p, r: (h, i, 2 * n, p, r),
    "half-size": lambda h, i, n, p, r: (h, i, n // 2 + 1, p, r),
    "wrong-leaf": lambda h, i, n, p, r: (_flip(h), i, n, p, r),
    "short-leaf-hash": lambda h, i, n, p, r: (h[:31], i, n, p, r),
    "wrong-root": lambda h, i, n, p, r: (h, i, n, p, _flip(r)),
    "empty-root": lambda h, i, n, p, r: (h, i, n, p, b""),
    "empty-proof": lambda h, i, n, p, r: (h, i, n, [], r),
    "dropped-last": lambda h, i, n, p, r: (h, i, n, p[:-1], r),
    "extra-hash": lambda h, i, n, p, r: (h, i, n, [*p, p[0]], r),
    "flipped-proof-hash": lambda h, i, n, p, r: (h, i, n, [_flip(p[0]), *p[1:]], r),
    "swapped-proof-hashes": lambda h, i, n, p, r: (h, i, n, [p[1], p[0], *p[2:]], r),
    "truncated-proof-hash": lambda h, i, n, p, r: (h, i, n, [p[0][:16], *p[1:]], r),
    "long-proof-hash": lambda h, i, n, p, r: (h, i, n, [p[0] + b"\x00", *p[1:]], r),
}


def test_good_inclusion_passes() -> None:
    verify_inclusion(*_good_inclusion())


def test_same_shape_size_with_true_root_is_accepted() -> None:
    h, i, _, p, r = _good_inclusion()
    assert VIEW.inclusion_proof(6, 12)[:-1] == p[:-1]
    verify_inclusion(h, i, 12, p, r)


@pytest.mark.parametrize("case", sorted(INCLUSION_CASES))
def test_bad_inclusion_is_refused(case: str) -> None:
    args = INCLUSION_CASES[case](*_good_inclusion())
    with pytest.raises(VerificationError) as caught:
        verify_inclusion(*args)
    finding = caught.value.findings[0]
    assert finding.code == "inclusion-proof-invalid"
    assert caught.value.hint


ConsistencyArgs = tuple[int, int, list[bytes], bytes, bytes]


def _good_consistency() -> ConsistencyArgs:
    return 6, 13, VIEW.consistency_proof(6, 13), VIEW.root(6), VIEW.root(13)


CONSISTENCY_CASES: dict[str, Callable[..., ConsistencyArgs]] = {
    "from-size-zero": lambda m, n, p, r1, r2: (0, n, p, EMPTY_ROOT, r2),
    "negative-size": lambda m, n, p, r1, r2: (-1, n, p, r1, r2),
    "sizes-reversed": lambda m, n, p, r1, r2: (n, m, p, r2, r1),
    "roots-swapped": lambda m, n, p, r1, r2: (m, n, p, r2, r1),
    "wrong-old-root": lambda m, n, p, r1, r2: (m, n, p, _flip(r1), r2),
    "wrong-new-root": lambda m, n, p, r1, r2: (m, n, p, r1, _flip(r2)),
    "wrong-old-size": lambda m, n, p, r1, r2: (m + 1, n, p, r1, r2),
    "wrong-old-size-with-its-root": lambda m, n, p, r1, r2: (m + 1, n, p, VIEW.root(m + 1), r2),
    "wrong-new-size-with-its-root": lambda m, n, p, r1, r2: (m, n + 1, p, r1, VIEW.root(n + 1)),
    "double-new-size": lambda m, n, p, r1, r2: (m, 2 * n, p, r1, r2),
    "empty-proof": lambda m, n, p, r1, r2: (m, n, [], r1, r2),
    "dropped-first": lambda m, n, p, r1, r2: (m, n, p[1:], r1, r2),
    "extra-hash": lambda m, n, p, r1, r2: (m, n, [*p, p[0]], r1, r2),
    "flipped-proof-hash": lambda m, n, p, r1, r2: (m, n, [p[0], _flip(p[1]), *p[2:]], r1, r2),
    "truncated-proof-hash": lambda m, n, p, r1, r2: (m, n, [p[0][:8], *p[1:]], r1, r2),
    "equal-sizes-with-proof": lambda m, n, p, r1, r2: (n, n, p, r2, r2),
    "equal-sizes-different-roots": lambda m, n, p, r1, r2: (m, m, [], r1, r2),
}


def test_good_consistency_passes() -> None:
    m, n, p, r1, r2 = _good_consistency()
    verify_consistency(m, n, p, r1, r2)
    verify_consistency(n, n, [], r2, r2)


@pytest.mark.parametrize("case", sorted(CONSISTENCY_CASES))
def test_bad_consistency_is_refused(case: str) -> None:
    args = CONSISTENCY_CASES[case](*_good_consistency())
    with pytest.raises(VerificationError) as caught:
        verify_consistency(*args)
    assert caught.value.findings[0].code == "consistency-proof-invalid"


@dataclass
class SyntheticReader:
    """A reader of a huge tree whose node hashes are made up; it counts what is read.

    Values are arbitrary, so only the read pattern and speed are meaningful, not the hashes.
    """

    reads: list[tuple[int, int]] = field(default_factory=list)

    def get_node(self, level: int, index: int) -> bytes:
        self.reads.append((level, index))
        return hashlib.sha256(f"{level}/{index}".encode()).digest()


@dataclass
class SyntheticBatchReader(SyntheticReader):
    batches: int = 0

    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        self.batches += 1
        return {key: self.get_node(*key) for key in keys}


def test_protocols_are_recognised() -> None:
    assert isinstance(MemoryTree(), NodeReader)
    assert not isinstance(MemoryTree(), BatchNodeReader)
    assert isinstance(SyntheticBatchReader(), BatchNodeReader)


MILLION = 1_000_000


@pytest.mark.parametrize("index", [0, 1, 123_456, 524_288, MILLION - 1])
def test_proofs_of_a_million_leaves_read_log_n_nodes(index: int) -> None:
    reader = SyntheticBatchReader()
    view = TreeView(reader)
    proof = view.inclusion_proof(index, MILLION)
    assert len(proof) <= 20
    assert len(reader.reads) <= 2 * 20
    assert reader.batches == 1
    reader.reads.clear()
    view.consistency_proof(index + 1, MILLION)
    assert len(reader.reads) <= 3 * 20
    reader.reads.clear()
    view.root(MILLION)
    assert len(reader.reads) == bin(MILLION).count("1")


def test_proof_of_a_million_leaves_is_fast() -> None:
    view = TreeView(SyntheticReader())
    started = time.perf_counter()
    rounds = 200
    for i in range(rounds):
        view.inclusion_proof((i * 4999) % MILLION, MILLION)
    per_proof = (time.perf_counter() - started) / rounds
    # The budget for a proof from stored nodes is 2 ms; the tree walk itself is far below it.
    assert per_proof < 0.002
