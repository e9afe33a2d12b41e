"""Ingest of files and folders into a case (SPEC sections 3, 5 and 9).

Each file is read once: the read computes SHA-256 and SHA-512 and writes the store copy
(``ObjectStore.put_file``). Copies are staged and made durable a batch at a time
(``ObjectStore.flush``: two file-system syncs per batch rather than two fsyncs per file), always
before the events that name them commit. Two files
are stored at a time (hashing in ``hashlib`` releases the GIL); events are appended and projected
in batched transactions; one checkpoint is signed at the end.

A batch is never lost because one input is bad: refused inputs are reported with their reason
and the rest are ingested. Re-running a command records only what is missing: a file already
sighted at the same absolute path with the same size and modification time is skipped without
being read again.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from chain_of_custody import EventDraft, Signer
from evidence.acquire import (
    Candidate,
    Reason,
    Refusal,
    SourceError,
    SymlinkRecord,
    detect_mime,
    display_name,
    scan_inputs,
    source_error,
)
from evidence.metadata import extract_metadata
from evidence.models import ItemOptions
from evidence.objects import StoredObject
from evidence.workspace import Case, Recorder

BATCH_EVENTS = 500
IN_FLIGHT = 4


class IngestProgress(Protocol):
    """What ingest reports while it works (the command line draws a bar from it)."""

    def start(self, files: int, total_bytes: int) -> None:
        """Called once the inputs are scanned."""

    def advance(self, files: int, nbytes: int) -> None:
        """Called after each file is stored or skipped."""


@dataclass(frozen=True)
class IngestedFile:
    """One input and what became of it: ingested, duplicate (a second sighting) or skipped."""

    status: str
    sha256: str
    size: int
    path: str
    seq: int | None
    mime: str = ""


@dataclass(frozen=True)
class RefusedInput:
    """An input that was not ingested, with the reason."""

    path: str
    code: str
    reason: str


@dataclass
class IngestReport:
    """The outcome of one ingest run."""

    files: list[IngestedFile] = field(default_factory=list)
    refused: list[RefusedInput] = field(default_factory=list)
    symlinks: list[str] = field(default_factory=list)
    checkpoint: bytes | None = None

    def count(self, status: str) -> int:
        """How many inputs ended with ``status``."""
        return sum(1 for f in self.files if f.status == status)

    @property
    def ok(self) -> bool:
        """True when no input was refused."""
        return not self.refused

    def as_json(self) -> dict[str, Any]:
        """A machine-readable summary for ``--json``."""
        return {
            "ingested": self.count("ingested"),
            "duplicates": self.count("duplicate"),
            "skipped": self.count("skipped"),
            "refused": [{"path": r.path, "code": r.code, "reason": r.reason} for r in self.refused],
            "symlinks": self.symlinks,
            "files": [
                {
                    "status": f.status,
                    "sha256": f.sha256,
                    "size": f.size,
                    "path": f.path,
                    "seq": f.seq,
                    "mime": f.mime,
                }
                for f in self.files
            ],
            "checkpoint": self.checkpoint.decode() if self.checkpoint else None,
        }


@dataclass(frozen=True)
class _Stored:
    candidate: Candidate
    obj: StoredObject
    mime: str
    metadata: dict[str, Any]
    mtime_ns: int


def path_key(raw_path: bytes) -> str:
    """A fixed-size key for an absolute path (raw bytes), used to recognise a rerun."""
    return hashlib.sha256(raw_path).hexdigest()


def ingest(
    case: Case,
    signer: Signer,
    paths: Sequence[Path],
    *,
    options: ItemOptions,
    recursive: bool = False,
    follow_symlinks: bool = False,
    progress: IngestProgress | None = None,
    derivation: dict[str, Any] | None = None,
) -> IngestReport:
    """Ingest ``paths`` into ``case``; see the module docstring for the guarantees."""
    report = IngestReport()
    case.objects.remove_stale_temp()
    candidates: list[Candidate] = []
    links: list[SymlinkRecord] = []
    for entry in scan_inputs(list(paths), recursive=recursive, follow_symlinks=follow_symlinks):
        if isinstance(entry, Refusal):
            report.refused.append(RefusedInput(entry.display, str(entry.reason_code), entry.reason))
        elif isinstance(entry, SymlinkRecord):
            links.append(entry)
        else:
            candidates.append(entry)

    seen = _known_sightings(case)
    # Metadata is extracted for content the case does not know yet. Deciding by the catalog,
    # not by whether the object file is new, keeps the metadata of a file whose object an
    # interrupted run stored without logging it.
    known_items = {row[0] for row in case.db.execute("SELECT sha256 FROM items").fetchall()}
    todo: list[Candidate] = []
    for cand in candidates:
        key = path_key(_abs_raw(cand))
        prior = seen.get(key)
        if prior is not None and prior[1] == cand.size and prior[2] == str(cand.mtime_ns):
            report.files.append(IngestedFile("skipped", prior[0], cand.size, cand.display, None))
        else:
            todo.append(cand)
    if progress is not None:
        progress.start(len(todo), sum(c.size for c in todo))

    pending: list[_Stored] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ingest") as pool:
        window: deque[tuple[Candidate, Future[_Stored]]] = deque()

        def drain_one() -> None:
            cand, fut = window.popleft()
            try:
                pending.append(fut.result())
            except _Refused as refusal:
                report.refused.append(RefusedInput(cand.display, refusal.code, refusal.reason))
            if progress is not None:
                progress.advance(1, cand.size)
            if len(pending) >= BATCH_EVENTS:
                _commit(case, signer, pending, options, derivation, report)
                pending.clear()

        for cand in todo:
            window.append((cand, pool.submit(_store, case, cand, known_items)))
            if len(window) >= IN_FLIGHT:
                drain_one()
        while window:
            drain_one()
    _commit(case, signer, pending, options, derivation, report)
    _record_links(case, signer, links, report)
    if any(f.seq is not None for f in report.files) or report.symlinks:
        report.checkpoint = case.checkpoint(signer)
    return report


class _Refused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _store(case: Case, cand: Candidate, known_items: set[str]) -> _Stored:
    try:
        obj = case.objects.put_file(cand.path, defer=True)
    except SourceError as exc:
        raise _Refused(str(exc.reason_code), exc.reason) from None
    except OSError as exc:
        error = source_error(cand.raw_path, exc)
        raise _Refused(str(error.reason_code), error.reason) from None
    if obj.size == 0:
        # Emptied after the scan. An empty object holds nothing to preserve and no event will
        # name it; verify would report it as unexpected, so it is not kept.
        raise _Refused(str(Reason.EMPTY), "empty file (0 bytes); there is nothing to preserve")
    stored_path = obj.staged or case.objects.path_for(obj.sha256)
    mime = detect_mime(stored_path)
    metadata = {} if obj.sha256 in known_items else extract_metadata(stored_path, mime)
    return _Stored(cand, obj, mime, metadata, cand.mtime_ns)


def _commit(
    case: Case,
    signer: Signer,
    stored: Iterable[_Stored],
    options: ItemOptions,
    derivation: dict[str, Any] | None,
    report: IngestReport,
) -> None:
    batch = list(stored)
    if not batch:
        return
    base = _option_data(options)
    # The objects must be durable under their names before any event that names them commits.
    case.objects.flush()
    with case.transaction() as rec:
        for item in batch:
            report.files.append(_record_one(rec, signer, item, base, derivation))


def _record_one(
    rec: Recorder,
    signer: Signer,
    item: _Stored,
    base: dict[str, Any],
    derivation: dict[str, Any] | None,
) -> IngestedFile:
    cand, obj = item.candidate, item.obj
    raw_abs = _abs_raw(cand)
    key = path_key(raw_abs)
    sighting = {
        "name": display_name(os.path.basename(cand.raw_path)),
        "name_b64": base64.b64encode(os.path.basename(cand.raw_path)).decode(),
        "path": cand.display,
        "path_b64": base64.b64encode(cand.raw_path).decode(),
        "path_key": key,
        "size": str(obj.size),
        "mtime_ns": str(item.mtime_ns),
    }
    known = rec.db.execute("SELECT 1 FROM items WHERE sha256 = ?", [obj.sha256]).fetchone()
    if known is not None:
        again = rec.db.execute(
            "SELECT 1 FROM sightings WHERE sha256 = ? AND path_key = ?", [obj.sha256, key]
        ).fetchone()
        if again is not None:
            return IngestedFile("skipped", obj.sha256, obj.size, cand.display, None, item.mime)
        appended = rec.append(
            EventDraft(action="item.sighted", subject=obj.sha256, data=sighting | base), signer
        )
        return IngestedFile(
            "duplicate", obj.sha256, obj.size, cand.display, appended.event.seq, item.mime
        )
    data = (
        sighting
        | base
        | {
            "sha512": obj.sha512,
            "mime": item.mime,
            "kind": "file",
            "metadata": item.metadata,
        }
    )
    action = "item.ingested"
    if derivation is not None:
        data["derived_from"] = derivation["derived_from"]
        data["derivation"] = {k: v for k, v in derivation.items() if k != "derived_from"}
        action = "item.derived"
    appended = rec.append(EventDraft(action=action, subject=obj.sha256, data=data), signer)
    return IngestedFile(
        "ingested", obj.sha256, obj.size, cand.display, appended.event.seq, item.mime
    )


def _record_links(
    case: Case, signer: Signer, links: Sequence[SymlinkRecord], report: IngestReport
) -> None:
    if not links:
        return
    with case.transaction() as rec:
        for link in links:
            raw_abs = os.path.abspath(link.raw_path)
            key = path_key(raw_abs)
            report.symlinks.append(link.display)
            known = rec.db.execute("SELECT 1 FROM symlinks WHERE path_key = ?", [key]).fetchone()
            if known is not None:
                continue
            rec.append(
                EventDraft(
                    action="symlink.recorded",
                    subject=f"path:{key}",
                    data={
                        "path": link.display,
                        "path_b64": base64.b64encode(link.raw_path).decode(),
                        "path_key": key,
                        "target": link.target_display,
                    },
                ),
                signer,
            )


def _abs_raw(cand: Candidate) -> bytes:
    return os.path.abspath(cand.raw_path)


def _known_sightings(case: Case) -> dict[str, tuple[str, int, str]]:
    rows = case.db.execute(
        "SELECT path_key, sha256, size, mtime_ns FROM sightings ORDER BY seq"
    ).fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def _option_data(options: ItemOptions) -> dict[str, Any]:
    data = options.model_dump(mode="json", exclude_none=True)
    data["tags"] = sorted(data.get("tags", []))
    return data


ProgressFactory = Callable[[], IngestProgress]
