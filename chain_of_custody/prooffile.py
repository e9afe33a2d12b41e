"""Proof files: one leaf, its inclusion proof and the signed checkpoint it leads to.

The format is C2SP ``tlog-proof`` (https://c2sp.org/tlog-proof), with the leaf bytes carried in
the optional ``extra`` line that the format provides for data needed to rebuild the record hash.
As the format says, the extra data is not trusted by itself: verification hashes it and checks
the hash against the signed checkpoint. ::

    c2sp.org/tlog-proof@v1
    extra <base64 leaf bytes>
    index <decimal>
    <base64 hash>            (zero or more, leaf sibling first)

    <signed checkpoint note>
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from chain_of_custody.canonical import strict_b64decode
from chain_of_custody.checkpoint import Checkpoint, open_checkpoint
from chain_of_custody.errors import InputError
from chain_of_custody.keys import VerifierKey
from chain_of_custody.merkle import leaf_hash, verify_inclusion
from chain_of_custody.note import parse_note

__all__ = ["PROOF_HEADER", "ProofFile", "format_proof", "parse_proof", "verify_proof"]

#: First line of every proof file.
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
_MAX_PATH = 64  # an inclusion path of a tree below 2^64 leaves is at most 64 hashes
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True)
class ProofFile:
    """The parts of a proof file: leaf bytes, leaf index, inclusion path, signed checkpoint."""

    leaf: bytes
    index: int
    path: tuple[bytes, ...]
    checkpoint: bytes

    def __post_init__(self) -> None:
        if not self.leaf:
            raise InputError("proof file needs the leaf bytes")
        if isinstance(self.index, bool) or self.index < 0:
            raise InputError(f"proof file leaf index {self.index!r} is not valid")
        if len(self.path) > _MAX_PATH or any(len(h) != 32 for h in self.path):
            raise InputError("proof file inclusion path must be at most 64 hashes of 32 bytes")


def format_proof(proof: ProofFile) -> bytes:
    """The proof file bytes."""
    lines = [
        PROOF_HEADER,
        "extra " + base64.b64encode(proof.leaf).decode("ascii"),
        f"index {proof.index}",
        *(base64.b64encode(h).decode("ascii") for h in proof.path),
        "",
    ]
    return "\n".join(lines).encode("ascii") + b"\n" + proof.checkpoint


def parse_proof(data: bytes) -> ProofFile:
    """Parse a proof file strictly; anything malformed raises :class:`InputError`."""
    hint = "the proof file is damaged or truncated; export it again"
    if not isinstance(data, bytes | bytearray):
        raise InputError("a proof file must be given as bytes")
    data = bytes(data)
    head, sep, checkpoint = data.partition(b"\n\n")
    if not sep:
        raise InputError("proof file has no blank line before its checkpoint", hint=hint)
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError as exc:
        raise InputError("proof file header is not ASCII text", hint=hint) from exc
    if lines[0] != PROOF_HEADER:
        raise InputError(f"proof file does not start with {PROOF_HEADER!r}", hint=hint)
    if len(lines) < 3 or not lines[1].startswith("extra "):
        raise InputError(
            "proof file carries no leaf bytes (no 'extra' line)",
            hint="proof files of this toolkit carry the leaf; export it again",
        )
    leaf = strict_b64decode(lines[1][len("extra ") :])
    if not leaf:
        raise InputError("proof file 'extra' line is not base64 leaf bytes", hint=hint)
    if not lines[2].startswith("index ") or not _DECIMAL.fullmatch(lines[2][len("index ") :]):
        raise InputError(
            "proof file third line must be 'index <decimal without leading zeros>'", hint=hint
        )
    index = int(lines[2][len("index ") :])
    path = []
    for number, line in enumerate(lines[3:], 1):
        value = strict_b64decode(line)
        if value is None or len(value) != 32:
            raise InputError(f"proof file hash line {number} is not base64 of 32 bytes", hint=hint)
        path.append(value)
    if len(path) > _MAX_PATH:
        raise InputError(f"proof file has more than {_MAX_PATH} hash lines", hint=hint)
    # Check the checkpoint's form now so a damaged file fails at parse, not at verification.
    Checkpoint.from_text(parse_note(checkpoint).text)
    return ProofFile(leaf, index, tuple(path), checkpoint)


def verify_proof(proof: ProofFile, trusted: Sequence[VerifierKey]) -> Checkpoint:
    """Check the checkpoint signature, then the leaf's inclusion in it; return the checkpoint.

    Raises :class:`~chain_of_custody.errors.VerificationError` on failure.
    """
    checkpoint = open_checkpoint(proof.checkpoint, trusted)
    verify_inclusion(
        leaf_hash(proof.leaf), proof.index, checkpoint.size, proof.path, checkpoint.root
    )
    return checkpoint
