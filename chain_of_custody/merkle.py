"""The RFC 9162 (section 2.1) Merkle tree of the custody log: hashes, proofs and their checks.

Leaf hash = SHA-256(0x00 || leaf bytes), node hash = SHA-256(0x01 || left || right), and the
root of the empty tree is SHA-256 of the empty string.

Interior hashes are stored, never recomputed from the whole log: node ``(level, index)`` is the
hash of the complete aligned subtree over leaves ``[index * 2**level, (index + 1) * 2**level)``
(level 0 is the leaf hash). Every RFC 9162 subtree hash that a root or proof needs covers a range
``[a, b)`` whose start is aligned to a power of two at least ``b - a``; such a range splits into
at most ``log2(b - a) + 1`` stored nodes, so roots and proofs cost O(log n) node reads.

The verifiers follow RFC 9162 algorithms 2.1.3.2 and 2.1.4.2 step by step and raise
:class:`~chain_of_custody.errors.VerificationError` on any failure. They are written by hand
because no maintained Python library offers RFC 9162 proofs over externally stored nodes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from chain_of_custody.errors import Finding, InputError, VerificationError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

INCLUSION_INVALID = "inclusion-proof-invalid"
CONSISTENCY_INVALID = "consistency-proof-invalid"

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

NodeKey = tuple[int, int]
"""``(level, index)`` of a complete aligned subtree."""


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(leaf_hashes: Iterable[bytes]) -> bytes:
    """Return the tree head MTH over the given leaf hashes (one pass, O(log n) memory)."""
    # The stack holds the completed perfect subtrees, largest first, as append builds them.
    stack: list[tuple[int, bytes]] = []
    for value in leaf_hashes:
        level, current = 0, value
        while stack and stack[-1][0] == level:
            current = node_hash(stack.pop()[1], current)
            level += 1
        stack.append((level, current))
    if not stack:
        return EMPTY_ROOT
    root = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        root = node_hash(left, root)
    return root


@runtime_checkable
class NodeReader(Protocol):
    """Read access to stored complete subtree hashes (``level`` 0 is the leaf hash)."""

    def get_node(self, level: int, index: int) -> bytes:
        """Return the hash of node ``(level, index)``; raise ``LookupError`` if it is missing."""
        ...


@runtime_checkable
class BatchNodeReader(NodeReader, Protocol):
    """A :class:`NodeReader` that can also fetch many nodes in one round trip."""

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        """Return the hashes of all ``keys``; raise ``LookupError`` if one is missing."""
        ...


def new_nodes_for_append(
    index: int, leaf_hash_value: bytes, reader: NodeReader
) -> list[tuple[int, int, bytes]]:
    """Return the nodes to store when leaf ``index`` is appended: the leaf and completed parents.

    While the node index at a level is odd, its left sibling already exists and the parent is
    complete; ``reader`` supplies those left siblings (at most log2(index) reads).
    """
    if index < 0:
        raise ValueError(f"leaf index must not be negative, got {index}")
    nodes = [(0, index, leaf_hash_value)]
    level, position, current = 0, index, leaf_hash_value
    while position & 1:
        current = node_hash(reader.get_node(level, position - 1), current)
        level += 1
        position >>= 1
        nodes.append((level, position, current))
    return nodes


def _range_nodes(start: int, end: int) -> list[NodeKey]:
    """Split leaves ``[start, end)`` into stored nodes, largest (leftmost) first."""
    keys: list[NodeKey] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            # An aligned node cannot start at an offset finer than its own size.
            level = min(level, (start & -start).bit_length() - 1)
        keys.append((level, start >> level))
        start += 1 << level
    return keys


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Combine the hashes of a range split by :func:`_range_nodes` into its RFC 9162 hash."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def _inclusion_ranges(index: int, size: int, level: int = 0) -> list[tuple[int, int]]:
    """Leaf ranges of the audit path of node ``(level, index)`` in a tree of ``size`` leaves.

    ``index`` counts nodes of width ``2**level``; the ranges are in leaves, bottom-up (the order
    of RFC 9162 PATH). Only the highest right sibling can be incomplete, hence the clip at size.
    """
    last = (size - 1) >> level
    inner = (index ^ last).bit_length()
    ranges: list[tuple[int, int]] = []
    for height in range(inner):
        width = 1 << (height + level)
        start = ((index >> height) ^ 1) * width
        ranges.append((start, min(start + width, size)))
    height = inner
    while index >> height:
        if (index >> height) & 1:
            width = 1 << (height + level)
            start = ((index >> height) ^ 1) * width
            ranges.append((start, start + width))
        height += 1
    return ranges


def _inclusion_length(index: int, size: int) -> int:
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """Leaf ranges of the consistency proof from ``old`` to ``new`` (0 < old < new).

    The proof is the inclusion path, in the tree of ``new``, of the largest complete subtree
    ending at ``old``, preceded by that subtree itself unless ``old`` is a power of two (RFC 9162
    2.1.4.1: the verifier already knows it as the old root).
    """
    level = (old & -old).bit_length() - 1
    index = (old - 1) >> level
    ranges = _inclusion_ranges(index, new, level)
    if index:
        ranges.insert(0, (index << level, old))
    return ranges


def _consistency_length(old: int, new: int) -> int:
    level = (old & -old).bit_length() - 1
    index = (old - 1) >> level
    return _inclusion_length(index, ((new - 1) >> level) + 1) + (1 if index else 0)


class TreeView:
    """Roots and proofs of any tree size up to the size stored behind ``reader``."""

    def __init__(self, reader: NodeReader) -> None:
        self._reader = reader

    def _hashes_of(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        splits = [_range_nodes(start, end) for start, end in ranges]
        keys = list(dict.fromkeys(key for split in splits for key in split))
        if isinstance(self._reader, BatchNodeReader):
            found = self._reader.get_nodes(keys)
        else:
            found = {key: self._reader.get_node(*key) for key in keys}
        return [_fold([found[key] for key in split]) for split in splits]

    def root(self, size: int) -> bytes:
        """Return the root hash of the first ``size`` leaves."""
        if size < 0:
            raise InputError(f"tree size must not be negative, got {size}")
        if size == 0:
            return EMPTY_ROOT
        return self._hashes_of([(0, size)])[0]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Return the RFC 9162 inclusion proof (audit path) of leaf ``index`` in tree ``size``."""
        if not 0 <= index < size:
            raise InputError(
                f"leaf index {index} is not in a tree of size {size}",
                "ask for a leaf index below the tree size",
            )
        return self._hashes_of(_inclusion_ranges(index, size))

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """Return the RFC 9162 consistency proof from tree size ``old`` to ``new``."""
        if old <= 0:
            raise InputError(
                f"a consistency proof from tree size {old} is refused",
                "compare from a checkpoint of at least one leaf",
            )
        if old > new:
            raise InputError(
                f"old tree size {old} is larger than new tree size {new}",
                "give the earlier (smaller) tree size first",
            )
        if old == new:
            return []
        return self._hashes_of(_consistency_ranges(old, new))


class MemoryTree:
    """An append-only Merkle tree held in memory; a :class:`NodeReader` for tests and audits."""

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = [[]]

    @property
    def size(self) -> int:
        """Number of leaves appended."""
        return len(self._levels[0])

    @property
    def view(self) -> TreeView:
        """Roots and proofs over this tree."""
        return TreeView(self)

    def append(self, data: bytes) -> int:
        """Append a leaf given by its bytes; return its index."""
        return self.append_hash(leaf_hash(data))

    def append_hash(self, leaf_hash_value: bytes) -> int:
        """Append a leaf given by its leaf hash; return its index."""
        index = self.size
        for level, _, value in new_nodes_for_append(index, leaf_hash_value, self):
            if level == len(self._levels):
                self._levels.append([])
            # Nodes are completed in index order, so each lands at the end of its level.
            self._levels[level].append(value)
        return index

    def get_node(self, level: int, index: int) -> bytes:
        """Return the stored hash of node ``(level, index)``."""
        if level < 0 or index < 0 or level >= len(self._levels):
            raise LookupError(f"no Merkle node ({level}, {index})")
        nodes = self._levels[level]
        if index >= len(nodes):
            raise LookupError(f"no Merkle node ({level}, {index})")
        return nodes[index]

    def root(self) -> bytes:
        """Return the root of the whole tree."""
        return self.view.root(self.size)


def _fail(code: str, message: str, hint: str) -> VerificationError:
    return VerificationError(Finding(code=code, message=message), hint)


def _check_hash_sizes(code: str, what: str, hashes: Sequence[bytes]) -> None:
    for position, value in enumerate(hashes):
        if len(value) != HASH_SIZE:
            raise _fail(
                code,
                f"{what} hash {position} is {len(value)} bytes long, not {HASH_SIZE}",
                "the proof is corrupt; fetch it again from the log",
            )


def verify_inclusion(
    leaf_hash_value: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows leaf ``index`` in the tree of ``size`` leaves with ``root``.

    RFC 9162 algorithm 2.1.3.2; returns ``None`` or raises ``VerificationError``.
    """
    hint = "the leaf, proof and checkpoint do not belong together; do not rely on this proof"
    if index < 0 or size < 0 or index >= size:
        raise _fail(INCLUSION_INVALID, f"leaf index {index} is not in a tree of size {size}", hint)
    if len(leaf_hash_value) != HASH_SIZE:
        raise _fail(INCLUSION_INVALID, f"leaf hash is {len(leaf_hash_value)} bytes long", hint)
    _check_hash_sizes(INCLUSION_INVALID, "inclusion proof", proof)
    expected = _inclusion_length(index, size)
    if len(proof) != expected:
        raise _fail(
            INCLUSION_INVALID,
            f"inclusion proof of leaf {index} in a tree of size {size} has {len(proof)} "
            f"hashes, expected {expected}",
            hint,
        )
    fn, sn, r = index, size - 1, leaf_hash_value
    for p in proof:
        if sn == 0:
            raise _fail(INCLUSION_INVALID, "inclusion proof is longer than the tree is deep", hint)
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or not hmac.compare_digest(r, root):
        raise _fail(
            INCLUSION_INVALID,
            f"inclusion proof of leaf {index} does not lead to the root of tree size {size}",
            hint,
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the tree of ``size1``/``root1``.

    RFC 9162 algorithm 2.1.4.2; a proof from size 0 is refused (it proves nothing). Returns
    ``None`` or raises ``VerificationError``.
    """
    hint = "the two checkpoints are not of one append-only log: suspect a rollback or a fork"
    if size1 <= 0:
        raise _fail(
            CONSISTENCY_INVALID,
            f"a consistency proof from tree size {size1} is refused",
            "compare from a checkpoint of at least one leaf",
        )
    if size2 < size1:
        raise _fail(
            CONSISTENCY_INVALID, f"tree size {size2} is smaller than earlier size {size1}", hint
        )
    if size1 == size2:
        if proof:
            raise _fail(
                CONSISTENCY_INVALID, "a consistency proof between equal sizes must be empty", hint
            )
        if not hmac.compare_digest(root1, root2):
            raise _fail(CONSISTENCY_INVALID, f"two different roots for tree size {size1}", hint)
        return
    _check_hash_sizes(CONSISTENCY_INVALID, "consistency proof", proof)
    expected = _consistency_length(size1, size2)
    if len(proof) != expected:
        raise _fail(
            CONSISTENCY_INVALID,
            f"consistency proof from size {size1} to {size2} has {len(proof)} hashes, "
            f"expected {expected}",
            hint,
        )
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise _fail(CONSISTENCY_INVALID, "consistency proof is too long", hint)
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or not hmac.compare_digest(fr, root1) or not hmac.compare_digest(sr, root2):
        raise _fail(
            CONSISTENCY_INVALID,
            f"consistency proof does not link the roots of tree sizes {size1} and {size2}",
            hint,
        )
