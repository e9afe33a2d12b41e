"""A naive, literal transcription of RFC 9162 2.1.1-2.1.4 used to cross-check merkle.py.

It recomputes every subtree from the leaves (slow, but obviously right) so the stored-node
implementation is compared with the text of the RFC rather than with itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def mth(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 2.1.1 over already hashed leaves."""
    n = len(leaf_hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hashes[0]
    k = largest_power_of_two_below(n)
    return hashlib.sha256(b"\x01" + mth(leaf_hashes[:k]) + mth(leaf_hashes[k:])).digest()


def largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def path(m: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1."""
    n = len(leaf_hashes)
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return [*path(m, leaf_hashes[:k]), mth(leaf_hashes[k:])]
    return [*path(m - k, leaf_hashes[k:]), mth(leaf_hashes[:k])]


def proof(m: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 2.1.4.1."""
    return subproof(m, leaf_hashes, True)


def subproof(m: int, leaf_hashes: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 2.1.4.1."""
    n = len(leaf_hashes)
    if m == n:
        return [] if b else [mth(leaf_hashes)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return [*subproof(m, leaf_hashes[:k], b), mth(leaf_hashes[k:])]
    return [*subproof(m - k, leaf_hashes[k:], False), mth(leaf_hashes[:k])]
