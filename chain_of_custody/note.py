"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures.

A signed note is a UTF-8 text ending in a newline, a blank line, and one or more signature lines
``— <key name> <base64(4-byte key hash || signature)>``. The signature covers the text bytes
exactly as stored, including the final newline and excluding the blank line. Both the leaves of
the custody log and its checkpoints are signed notes.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from chain_of_custody.canonical import strict_b64decode
from chain_of_custody.errors import Finding, InputError, VerificationError
from chain_of_custody.keys import Signer, VerifierKey

__all__ = [
    "MAX_NOTE_SIGNATURES",
    "Note",
    "NoteSignature",
    "parse_note",
    "sign_note",
    "verify_note",
]

#: Notes with more signature lines are refused (C2SP asks verifiers to accept at least 16).
MAX_NOTE_SIGNATURES = 100
_SIG_PREFIX = "— "  # em dash U+2014 and a space
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")
_CONTROL_CODES = bytes(range(0x20)).replace(b"\n", b"")


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the key name, the 4-byte key hash and the signature bytes."""

    name: str
    key_hash: bytes
    signature: bytes

    def line(self) -> str:
        """The signature line, with its final newline."""
        blob = base64.b64encode(self.key_hash + self.signature).decode("ascii")
        return f"{_SIG_PREFIX}{self.name} {blob}\n"

    def is_by(self, key: VerifierKey) -> bool:
        """True if name and key hash both match ``key`` (C2SP: both must match)."""
        return self.name == key.name and self.key_hash == key.note_key_hash


@dataclass(frozen=True)
class Note:
    """A parsed signed note: the signed text bytes and its signature lines (not yet verified)."""

    text: bytes
    signatures: tuple[NoteSignature, ...]

    @property
    def text_str(self) -> str:
        """The text as a string (it was checked to be UTF-8 when parsed)."""
        return self.text.decode("utf-8")

    def to_bytes(self) -> bytes:
        """The note as written: text, blank line, signature lines."""
        return self.text + b"\n" + "".join(s.line() for s in self.signatures).encode("utf-8")


def sign_note(text: bytes | str, signers: Sequence[Signer]) -> bytes:
    """Sign ``text`` with each signer and return the signed note bytes."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    _check_text(raw, what="note text")
    if not signers:
        raise InputError("a signed note needs at least one signer", hint="pass a signing key")
    lines = []
    for signer in signers:
        key = signer.verifier
        lines.append(NoteSignature(key.name, key.note_key_hash, signer.sign(raw)).line())
    return raw + b"\n" + "".join(lines).encode("utf-8")


def parse_note(data: bytes) -> Note:
    """Parse a signed note strictly; raise :class:`InputError` saying what is malformed.

    Signatures are not checked here: see :func:`verify_note`.
    """
    if not isinstance(data, bytes | bytearray):
        raise InputError("a signed note must be given as bytes")
    data = bytes(data)
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"signed note is not valid UTF-8 (byte {exc.start})",
            hint="the note is damaged; use the original file",
        ) from exc
    if _has_controls(data):
        _check_controls(decoded, what="signed note")
    if not data.endswith(b"\n"):
        raise InputError(
            "signed note does not end with a newline (it may be truncated)",
            hint="the note is damaged or truncated; use the original file",
        )
    # C2SP: the text is separated from the signatures by the last empty line.
    split = data.rfind(b"\n\n")
    if split < 0:
        raise InputError(
            "signed note has no blank line before its signatures",
            hint="the note is unsigned, damaged or truncated",
        )
    text = data[: split + 1]
    _check_text(text, what="signed note text")
    sig_lines = data[split + 2 :].decode("utf-8").split("\n")[:-1]
    if not sig_lines:
        raise InputError(
            "signed note has no signature lines", hint="the note is unsigned or truncated"
        )
    if len(sig_lines) > MAX_NOTE_SIGNATURES:
        raise InputError(f"signed note has more than {MAX_NOTE_SIGNATURES} signatures")
    signatures = tuple(
        _parse_signature_line(line, number) for number, line in enumerate(sig_lines, 1)
    )
    return Note(text, signatures)


def verify_note(data: bytes | Note, trusted: Sequence[VerifierKey]) -> Note:
    """Parse ``data`` and check its signatures against ``trusted`` keys; return the note.

    Signatures by keys not in ``trusted`` are ignored. A signature whose name and key hash match
    a trusted key but does not verify rejects the whole note, and so does a note without any
    valid signature by a trusted key (both raise :class:`VerificationError`).
    """
    note = data if isinstance(data, Note) else parse_note(data)
    verified = verified_signers(note, trusted)
    if not verified:
        names = ", ".join(sorted({s.name for s in note.signatures}))
        raise VerificationError(
            Finding(
                "note-untrusted",
                f"signed note carries no signature by a trusted key (signed by: {names})",
            ),
            hint="add the signer's verifier key to the trusted keys if you trust it",
        )
    return note


def verified_signers(note: Note, trusted: Sequence[VerifierKey]) -> list[VerifierKey]:
    """The trusted keys whose signatures on ``note`` verify.

    Raises :class:`VerificationError` if a signature of a trusted key fails to verify.
    """
    found: list[VerifierKey] = []
    for sig in note.signatures:
        for key in trusted:
            if not sig.is_by(key):
                continue
            if not key.verify(sig.signature, note.text):
                raise VerificationError(
                    Finding(
                        "note-bad-signature",
                        f"signature by {key.key_id} does not verify over the note text",
                        subject=key.key_id,
                    ),
                    hint="the note was altered after signing, or the signature is forged",
                )
            if key not in found:
                found.append(key)
    return found


def _parse_signature_line(line: str, number: int) -> NoteSignature:
    where = f"signature line {number}"
    if not line.startswith(_SIG_PREFIX):
        raise InputError(
            f"{where} of signed note does not start with an em dash and a space",
            hint="the note is damaged; use the original file",
        )
    fields = line[len(_SIG_PREFIX) :].split(" ")
    if len(fields) != 2 or not fields[0] or not fields[1]:
        raise InputError(
            f"{where} of signed note is not '— <key name> <base64 signature>'",
            hint="the note is damaged; use the original file",
        )
    name, blob_text = fields
    if "+" in name or any(ch.isspace() for ch in name):
        raise InputError(f"{where} of signed note has an invalid key name {name!r}")
    blob = strict_b64decode(blob_text)
    if blob is None or len(blob) < 5:
        raise InputError(
            f"{where} of signed note has a malformed base64 signature",
            hint="the note is damaged; use the original file",
        )
    return NoteSignature(name, blob[:4], blob[4:])


def _check_text(raw: bytes, *, what: str) -> None:
    if not raw:
        raise InputError(f"{what} is empty")
    if raw.isascii():
        # The common case, checked on the bytes: ASCII is valid UTF-8, and a signature line
        # cannot start inside it (the em dash is not ASCII).
        if not raw.endswith(b"\n"):
            raise InputError(f"{what} must end with a newline")
        if _has_controls(raw):
            _check_controls(raw.decode("ascii"), what=what)
        return
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not valid UTF-8 (byte {exc.start})") from exc
    if not raw.endswith(b"\n"):
        raise InputError(f"{what} must end with a newline")
    if _has_controls(raw):
        _check_controls(decoded, what=what)
    # A signature line inside the text would make the split ambiguous for lax parsers.
    if decoded.startswith(_SIG_PREFIX) or "\n" + _SIG_PREFIX in decoded:
        raise InputError(f"{what} contains a line that looks like a signature line")


def _has_controls(raw: bytes) -> bool:
    """Whether UTF-8 ``raw`` holds a control character other than newline: what
    :func:`_check_controls` looks for, found at C speed (in UTF-8 these are single bytes that
    never occur inside another character)."""
    return len(raw.translate(None, _CONTROL_CODES)) != len(raw)


def _check_controls(text: str, *, what: str) -> None:
    found = _CONTROL.search(text)
    if found:
        raise InputError(
            f"{what} contains control character U+{ord(found.group()):04X} "
            f"at position {found.start()}",
            hint="signed notes may contain no control characters other than newline",
        )
