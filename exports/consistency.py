"""The consistency proof files a bundle carries in ``data/custody/consistency/<old size>.proof``.

A bundle is proven against one checkpoint of the case's log. Someone who holds an earlier,
smaller checkpoint of the same log (from an earlier bundle, say) can check with such a proof
that the bundle's log only appended to theirs (RFC 9162 section 2.1.4): nothing they were given
before was removed or rewritten. The file is plain text, one hash a line::

    evidence-locker/consistency@v1
    old <decimal size>
    new <decimal size>
    <base64 hash>            (zero or more, RFC 9162 section 2.1.4 order)

The proof carries no roots: the old root comes from the earlier checkpoint the auditor holds and
the new one from the bundle's signed checkpoint, so a proof file cannot vouch for itself. C2SP
defines no text form for a consistency proof, so this small one is written by hand in the style
of ``c2sp.org/tlog-proof``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence

from chain_of_custody import InputError, strict_b64decode

CONSISTENCY_HEADER = "evidence-locker/consistency@v1"
MAX_HASHES = 128
"""More hashes than a tree of 2**64 leaves needs; a longer file is refused unread."""

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


def format_consistency_proof(old: int, new: int, hashes: Sequence[bytes]) -> bytes:
    """The consistency proof file bytes (format in the module docstring)."""
    lines = [CONSISTENCY_HEADER, f"old {old}", f"new {new}"]
    lines += [base64.b64encode(h).decode("ascii") for h in hashes]
    return ("\n".join(lines) + "\n").encode("ascii")


def parse_consistency_proof(data: bytes) -> tuple[int, int, list[bytes]]:
    """``(old, new, hashes)`` of a consistency proof file; :class:`InputError` if malformed.

    Only the one canonical spelling is accepted (no leading zeros, padded standard base64, one
    newline after each line), so that a proof has exactly one file form.
    """
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise InputError("consistency proof is not ASCII text") from None
    if not text.endswith("\n"):
        raise InputError("consistency proof does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or lines[0] != CONSISTENCY_HEADER:
        raise InputError(f"consistency proof does not start with {CONSISTENCY_HEADER!r}")
    if len(lines) - 3 > MAX_HASHES:
        raise InputError(f"consistency proof has more than {MAX_HASHES} hashes")
    sizes = []
    for line, label in ((lines[1], "old"), (lines[2], "new")):
        value = line.removeprefix(f"{label} ")
        if value == line or not _DECIMAL.fullmatch(value):
            raise InputError(f"consistency proof line {label!r} is not '{label} <decimal>'")
        sizes.append(int(value))
    hashes: list[bytes] = []
    for number, line in enumerate(lines[3:], 1):
        decoded = strict_b64decode(line)
        if decoded is None or len(decoded) != 32:
            raise InputError(f"consistency proof hash line {number} is not base64 of 32 bytes")
        hashes.append(decoded)
    return sizes[0], sizes[1], hashes
