"""Derived items: working copies (redaction, translation, transcription, transcode).

A derived item is ingested like any file, by an ``item.derived`` event whose data names the
original (``derived_from``) and how the copy was made (kind, reason, tool, redaction codes).
The original is never touched; ``evidence show`` lists its derivatives and the copy's origin.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from chain_of_custody import Signer
from evidence.custody import resolve_item
from evidence.errors import EnvironmentProblem, InputError
from evidence.ingest import ingest
from evidence.loaders import parse_options
from evidence.models import ItemOptions
from evidence.workspace import Case

DERIVATION_KINDS: Final = ("redaction", "translation", "transcription", "transcode")
_INHERITED: Final = (
    "source",
    "collected_by",
    "collected_at",
    "method",
    "device",
    "language",
    "confidentiality",
)


@dataclass(frozen=True)
class DerivedItem:
    """A derived item as recorded."""

    sha256: str
    derived_from: str
    kind: str
    seq: int

    def as_json(self) -> dict[str, Any]:
        """A machine-readable form for ``--json``."""
        return {
            "sha256": self.sha256,
            "derived_from": self.derived_from,
            "kind": self.kind,
            "seq": self.seq,
        }


def derive_item(
    case: Case,
    signer: Signer,
    original_ref: str,
    *,
    kind: str,
    file: Path,
    reason: str,
    tool: str = "unspecified",
    language: str | None = None,
    redaction_codes: tuple[str, ...] = (),
    description: str | None = None,
) -> DerivedItem:
    """Ingest ``file`` as a working copy of the item ``original_ref``."""
    if kind not in DERIVATION_KINDS:
        raise InputError(
            f"--kind: {kind!r} is not a kind of derivative",
            f"use one of: {', '.join(DERIVATION_KINDS)}",
        )
    if not reason.strip():
        raise InputError("--reason: is empty", "say why the working copy was made")
    if not tool.strip():
        raise InputError("--tool: is empty", "name the tool and version that made the copy")
    if redaction_codes and kind != "redaction":
        raise InputError("--redaction-code: only a redaction carries redaction codes")
    original = resolve_item(case, original_ref)
    row = case.db.execute(
        "SELECT source, collected_by, collected_at, method, device, language, confidentiality, "
        "tags FROM items WHERE sha256 = ?",
        [original],
    ).fetchone()
    inherited = {k: v for k, v in zip(_INHERITED, row[:7], strict=True) if v is not None}
    if language is not None:
        inherited["language"] = language
    if description is not None:
        inherited["description"] = description
    inherited["tags"] = (f"derived:{kind}",)
    # What the original recorded is not judged again against today's date.
    options = parse_options(
        ItemOptions, inherited, option_names={"language": "--language"}, recorded=inherited
    )
    sha = _hash_file(file)
    if case.db.execute("SELECT 1 FROM items WHERE sha256 = ?", [sha]).fetchone() is not None:
        raise InputError(
            f"--file: {file} is already an item of the case ({sha[:12]})",
            "a working copy must differ from every item; nothing was recorded",
        )
    derivation: dict[str, Any] = {
        "derived_from": original,
        "kind": kind,
        "reason": reason,
        "tool": tool,
    }
    if redaction_codes:
        derivation["redaction_codes"] = list(redaction_codes)
    report = ingest(case, signer, [file], options=options, derivation=derivation)
    if report.refused:
        refused = report.refused[0]
        raise InputError(f"--file: {refused.path}: {refused.reason}", "give a readable file")
    done = [f for f in report.files if f.status == "ingested" and f.seq is not None]
    if not done or done[0].seq is None:
        raise EnvironmentProblem(
            f"--file: {file} was not recorded", "run the command again; the case is unchanged"
        )
    return DerivedItem(done[0].sha256, original, kind, done[0].seq)


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        raise InputError(f"--file: {path}: no such file", "check the path") from None
    except IsADirectoryError:
        raise InputError(f"--file: {path} is a directory", "name one file") from None
    except OSError as exc:
        raise InputError(f"--file: cannot read {path}: {exc.strerror}") from None
    return digest.hexdigest()
