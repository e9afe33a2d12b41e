"""C2SP checkpoints (https://c2sp.org/tlog-checkpoint): signed statements of a tree head.

The checkpoint text is three lines: the origin (which log), the tree size in decimal and the
base64 root hash. We write no extension lines and refuse notes that carry them, so that one tree
head has exactly one text form.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from chain_of_custody.canonical import strict_b64decode
from chain_of_custody.errors import Finding, InputError, VerificationError
from chain_of_custody.keys import Signer, VerifierKey
from chain_of_custody.note import sign_note, verify_note

__all__ = ["Checkpoint", "open_checkpoint", "sign_checkpoint"]

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_MAX_SIZE = 2**63 - 1  # SQLite's largest integer; no log grows near it


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin line, its size and its RFC 9162 root hash."""

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        if not self.origin or not self.origin.isprintable() or self.origin != self.origin.strip():
            raise InputError(
                f"checkpoint origin {self.origin!r} must be a non-empty printable line "
                "without leading or trailing spaces",
                hint="check the origin line in the case file",
            )
        if isinstance(self.size, bool) or not 0 <= self.size <= _MAX_SIZE:
            raise InputError(f"checkpoint size {self.size!r} is not a valid tree size")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise InputError("checkpoint root hash must be 32 bytes (SHA-256)")

    def to_text(self) -> str:
        """The checkpoint note text: origin, size, base64 root, each ending in a newline."""
        root = base64.b64encode(self.root).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\n"

    @classmethod
    def from_text(cls, text: str | bytes) -> Checkpoint:
        """Parse checkpoint text strictly (no extension lines, canonical numbers and base64)."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError("checkpoint text is not valid UTF-8") from exc
        if not text.endswith("\n"):
            raise InputError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise InputError(
                "checkpoint text must have three lines: origin, tree size, root hash",
                hint="the checkpoint is truncated or not a checkpoint",
            )
        if len(lines) > 3:
            raise InputError(
                "checkpoint carries extension lines, which this toolkit does not accept",
                hint="use a checkpoint written by this toolkit",
            )
        origin, size_text, root_text = lines
        if not _DECIMAL.fullmatch(size_text):
            raise InputError(
                f"checkpoint tree size {size_text!r} is not a decimal number without leading zeros"
            )
        root = strict_b64decode(root_text)
        if root is None or len(root) != 32:
            raise InputError("checkpoint root hash is not base64 of 32 bytes")
        return cls(origin, int(size_text), root)


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[Signer]) -> bytes:
    """The checkpoint as a signed note, signed by each of ``signers``."""
    return sign_note(checkpoint.to_text(), signers)


def open_checkpoint(
    note: bytes, trusted: Sequence[VerifierKey], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint against ``trusted`` keys and return its tree head.

    With ``origin``, a checkpoint of another log is refused too. Raises
    :class:`VerificationError` for signature problems, :class:`InputError` for malformed notes.
    """
    opened = verify_note(note, trusted)
    checkpoint = Checkpoint.from_text(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(
            Finding(
                "checkpoint-origin",
                f"checkpoint is for log {checkpoint.origin!r}, expected {origin!r}",
            ),
            hint="the checkpoint belongs to another case",
        )
    return checkpoint
