"""Testimonies: record, show (revealing the identity only to a recipient), withdraw consent.

A testimony is stored as two objects in the content store, both logged by one
``testimony.recorded`` event and listed as items so that they travel with the case:

- the *document*: RFC 8785 canonical JSON of the testimony without its identity, statement
  and translations included (item kind ``testimony``);
- the *protected annex*: the identity details sealed to the case's recipients
  (:func:`evidence.protected.protect`; item kind ``protected-annex``). The log and the catalog
  hold only its SHA-256 and the salted commitment, never a protected value.

The event itself carries the testimony's metadata without the statement texts (those are only
in the document), so custody records in bundles do not repeat what a witness said. A testimony
that repeats an identity value in any other field (the place of interview is the witness's
home, the referral names the child) is refused before anything is written: that field would
put the value in clear into the document, the log or the path of a recording
(:func:`_refuse_repeated_identity`).

Attached recordings given as paths are ingested first and linked to the witness code. A
recording is ``ANNEX_CONFIDENTIALITY`` (strictly confidential: a voice or a face identifies the
witness): one ingested before at a lower level, or named by its sha256, is raised to it by a
``metadata.corrected`` event recorded with the testimony (never lowered), and the command says
so (:attr:`RecordedTestimony.raised`).

Consent is a first-class record: its scope and withdrawal are columns of the ``testimonies``
table, and ``consent.withdrawn`` events record a withdrawal; exports leave out a testimony whose
consent does not cover ICC proceedings or was withdrawn (:func:`consent_covers_icc`).
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from chain_of_custody import AppendedEvent, EventDraft, Signer, canonical_json
from chain_of_custody.secretfile import fsync_directory
from evidence import models
from evidence.custody import custody_history, resolve_item
from evidence.errors import InputError, UnknownId
from evidence.ingest import ingest
from evidence.loaders import FieldProblem, Loc, ModelInputError, field_name, load_testimony
from evidence.models import (
    Confidentiality,
    Day,
    ItemOptions,
    Testimony,
    input_context,
    partial_date_range,
)
from evidence.objects import StoredObject
from evidence.protected import RecipientKey, SealedAnnex, protect, reveal
from evidence.recipients import case_recipients
from evidence.stops import StopDeferral, deferred_stop
from evidence.workspace import Case, Recorder

DOCUMENT_FORMAT: Final = "evidence-testimony/1"
DOCUMENT_CONFIDENTIALITY: Final = Confidentiality.CONFIDENTIAL
ANNEX_CONFIDENTIALITY: Final = Confidentiality.STRICTLY_CONFIDENTIAL
_SHA256: Final = re.compile(r"[0-9a-fA-F]{64}")
MIN_REPEATED_LENGTH: Final = 6
"""Identity values shorter than this (after normalising) are not looked for in other fields.

A year of birth (``2011``) or a first name alone (``Ivan``, ``Olena``) is too common in a
statement to tell a repetition from a coincidence; a full name, a full or partial date of birth
(``2011-07``), a telephone number or an address is long enough."""
_NUMBER_JOINERS: Final = frozenset("-/.:")
_DAY: Final = TypeAdapter(Day)


@dataclass(frozen=True)
class RaisedRecording:
    """A recording already in the case at a lower level, or a working copy made from one
    (``derived_from``: the item it was made from), raised by ``testimony add``."""

    sha256: str
    previous: str | None
    confidentiality: str
    seq: int
    derived_from: str | None = None

    def describe(self) -> str:
        """One line for the command's output."""
        what = (
            f"recording {self.sha256}"
            if self.derived_from is None
            else f"working copy {self.sha256} (made from {self.derived_from})"
        )
        return (
            f"{what}: confidentiality raised from {self.previous or 'unset'} "
            f"to {self.confidentiality} (seq {self.seq}), as for a recording first ingested "
            "with the testimony; bundles made before keep what they hold"
        )

    def as_json(self) -> dict[str, Any]:
        """A machine-readable form for ``--json``."""
        return {
            "sha256": self.sha256,
            "previous": self.previous,
            "confidentiality": self.confidentiality,
            "seq": self.seq,
            "derived_from": self.derived_from,
        }


@dataclass(frozen=True)
class RecordedTestimony:
    """What ``testimony add`` recorded.

    ``raised`` lists the recordings that were in the case at a lower level than
    ``ANNEX_CONFIDENTIALITY`` and were raised to it (``metadata.corrected`` events).
    """

    witness_code: str
    document: str
    annex: str | None
    recordings: tuple[str, ...]
    seq: int
    ingested: tuple[str, ...] = field(default=())
    raised: tuple[RaisedRecording, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        """A machine-readable form for ``--json`` (hashes and codes only)."""
        return {
            "witness_code": self.witness_code,
            "document": self.document,
            "annex": self.annex,
            "recordings": list(self.recordings),
            "ingested": list(self.ingested),
            "raised": [r.as_json() for r in self.raised],
            "seq": self.seq,
        }


def annex_aad(case_id: str, witness_code: str) -> bytes:
    """The associated data binding an annex to its case and witness code."""
    return f"evidence-testimony-annex:{case_id}:{witness_code}".encode()


def record_testimony(
    case: Case, signer: Signer, path: Path, *, today: date | None = None
) -> RecordedTestimony:
    """Validate the testimony file at ``path`` and record it with its annex and recordings.

    A date in the file later than ``today`` (default: the UTC date of the system clock) is
    refused, naming its field.
    """
    testimony = load_testimony(path, today=today)
    code = testimony.witness_code
    identity = testimony.identity.reveal() if testimony.identity is not None else {}
    _refuse_repeated_identity(testimony, identity, path)
    _refuse_known(case, code)
    recipients = case_recipients(case)
    if identity and not recipients:
        raise InputError(
            f"{path}: identity: the case has no recipient key to seal the identity to",
            "add one with `evidence keys recipient add NAME`, then run the command again",
        )
    known, to_ingest = _split_recordings(case, testimony, path)

    ingested: list[str] = []
    if to_ingest:
        ingested = _ingest_recordings(case, signer, testimony, to_ingest)
    recordings = tuple(dict.fromkeys([*known.values(), *ingested]))

    public = testimony.public_view().model_copy(update={"recordings": recordings})
    public_data = public.model_dump(mode="json", exclude_none=True)
    document = canonical_json(
        {"case": case.config.case_id, "format": DOCUMENT_FORMAT, "testimony": public_data}
    )
    sealed = (
        protect(identity, recipients, aad=annex_aad(case.config.case_id, code))
        if identity
        else None
    )
    created: list[StoredObject] = []
    stored_annex: StoredObject | None = None
    # A stop (Ctrl-C, SIGTERM, SIGHUP) while waiting for the catalog stops at once. Once the
    # catalog is locked it waits for the end, then says the testimony was recorded: a stop
    # between the commit and the end would otherwise ask for a re-run that is refused.
    with StopDeferral() as stops:
        try:
            with case.transaction() as rec:
                stops.hold()
                # The objects are stored while the catalog is locked for writing, and removed
                # before it is let go if nothing is recorded: another `testimony add` storing
                # the same document (the same testimony gives the same bytes) stores it only
                # once this one has committed or removed it, so a removal never takes an
                # object it names.
                try:
                    stored_doc = _put(case, document, created)
                    stored_annex = None if sealed is None else _put(case, sealed.envelope, created)
                    data = _event_data(
                        testimony, public_data, stored_doc, stored_annex, sealed, sorted(identity)
                    )
                    appended, raised = _record(
                        rec, signer, code, stored_doc.sha256, data, recordings
                    )
                except BaseException:
                    # Rolled back next: no event would ever name what this call stored.
                    _remove_unrecorded(case, created)
                    created.clear()
                    raise
        except BaseException:
            # The commit failed. The annex is sealed afresh by each call, so no other call can
            # name it; the document may be named by a session that stores it now, and stays
            # (a re-run names it).
            if stored_annex in created:
                _remove_unrecorded(case, [o for o in created if o is stored_annex], recorded=True)
            raise
        case.checkpoint(signer)
        stops.completed(f"the testimony of {code} was recorded as seq {appended.event.seq}")
    return RecordedTestimony(
        witness_code=code,
        document=stored_doc.sha256,
        annex=None if stored_annex is None else stored_annex.sha256,
        recordings=recordings,
        seq=appended.event.seq,
        ingested=tuple(ingested),
        raised=tuple(raised),
    )


def _put(case: Case, data: bytes, created: list[StoredObject]) -> StoredObject:
    """Store ``data``; an object this call creates is added to ``created``.

    A stop waits for the end (a few milliseconds: a small file and two fsyncs), so that an
    object stored is always in ``created``, to be removed if nothing is recorded.
    """
    with deferred_stop():
        stored = case.objects.put_bytes(data)
        if stored.created:
            created.append(stored)
    return stored


def _event_data(
    testimony: Testimony,
    public_data: dict[str, Any],
    document: StoredObject,
    annex: StoredObject | None,
    sealed: SealedAnnex | None,
    fields: list[str],
) -> dict[str, Any]:
    """The data of the ``testimony.recorded`` event; ``fields`` names the sealed fields."""
    code = testimony.witness_code
    data: dict[str, Any] = {
        "witness_code": code,
        "document": {
            "sha256": document.sha256,
            "sha512": document.sha512,
            "size": str(document.size),
            "mime": "application/json",
            "kind": "testimony",
            "name": f"testimony-{code}.json",
            "title": f"Testimony of witness {code}",
            "language": testimony.statement.language,
            "confidentiality": str(DOCUMENT_CONFIDENTIALITY),
        },
        "testimony": _without_texts(public_data),
    }
    if annex is not None and sealed is not None:
        data["annex"] = {
            "sha256": annex.sha256,
            "sha512": annex.sha512,
            "size": str(annex.size),
            "mime": "application/octet-stream",
            "kind": "protected-annex",
            "name": f"identity-{code}.sealed",
            "title": f"Protected identity of witness {code}",
            "confidentiality": str(ANNEX_CONFIDENTIALITY),
            "commitment": sealed.commitment_digest,
            "recipients": list(sealed.recipients),
            # Which fields are sealed (names only) tells a reader what a reveal will give.
            "fields": fields,
        }
    return data


def _record(
    rec: Recorder,
    signer: Signer,
    code: str,
    document: str,
    data: dict[str, Any],
    recordings: tuple[str, ...],
) -> tuple[AppendedEvent, list[RaisedRecording]]:
    """Append the testimony's events inside the open transaction ``rec``."""
    if rec.db.execute("SELECT 1 FROM testimonies WHERE witness_code = ?", [code]).fetchone():
        raise InputError(f"witness_code: {code} was recorded meanwhile by another session")
    appended = rec.append(
        EventDraft(action="testimony.recorded", subject=document, data=data), signer
    )
    raised: list[RaisedRecording] = []
    for sha in recordings:
        raised.extend(_raise_recording(rec, signer, sha, code))
        rec.append(
            EventDraft(
                action="link.made",
                subject=sha,
                data={
                    "target": code,
                    "target_kind": "testimony",
                    "reason": f"recording of the interview of witness {code}",
                },
            ),
            signer,
        )
    return appended, raised


def _remove_unrecorded(
    case: Case, objects: Iterable[StoredObject], *, recorded: bool = False
) -> None:
    """Remove ``objects``, which this call created (``put_bytes`` reported them as created)
    and which no event names: nothing half-written stays in the store (SPEC 9).

    Called inside the transaction that was to record them, before it rolls back, or with
    ``recorded`` after it ended: then an object the catalog names (the commit went through
    before a stop) stays. A stop is held until the removal is over. An object that cannot be
    removed stays, and ``evidence verify`` reports it.

    The two-hex folder stays (empty, it is part of the store's layout, and another process may
    be about to name an object in it); the folder is fsynced, as the store does when it names
    an object, so that the removal is durable.
    """
    with deferred_stop():
        for obj in objects:
            if recorded:
                try:
                    named = case.db.execute(
                        "SELECT 1 FROM items WHERE sha256 = ?", [obj.sha256]
                    ).fetchone()
                except sqlite3.Error:
                    continue  # cannot tell: kept
                if named is not None:
                    continue
            path = case.objects.path_for(obj.sha256)
            try:
                path.unlink()
            except OSError:
                continue  # gone already, or kept: verify reports it
            with contextlib.suppress(OSError):
                fsync_directory(path.parent)


def _raise_recording(rec: Recorder, signer: Signer, sha: str, code: str) -> list[RaisedRecording]:
    """Raise the recording ``sha``, and every working copy made from it (a transcode, a
    transcription, a copy of a copy), to ``ANNEX_CONFIDENTIALITY`` where below it.

    A recording first ingested by ``testimony add`` gets that level (it can identify the witness
    by voice or face); one ingested before, or named by its sha256, keeps the level it was given
    then, and would travel in bundles its testimony's recording should not reach, and so would
    the copies `derive` made of it, which took its level then. Read inside the transaction that
    records the testimony, so that the raises and the testimony are one. A level is never
    lowered.
    """
    raised: list[RaisedRecording] = []
    reason = f"recording of the interview of witness {code}"
    pending: list[tuple[str, str | None]] = [(sha, None)]
    seen = {sha}
    while pending:
        item, made_from = pending.pop(0)
        lifted = _raise_item(
            rec,
            signer,
            item,
            reason if made_from is None else f"working copy made from the {reason}",
        )
        if lifted is not None:
            raised.append(
                RaisedRecording(item, lifted[0], str(ANNEX_CONFIDENTIALITY), lifted[1], made_from)
            )
        copies = rec.db.execute(
            "SELECT sha256 FROM items WHERE derived_from = ? ORDER BY sha256", [item]
        ).fetchall()
        for (copy,) in copies:
            if str(copy) not in seen:
                seen.add(str(copy))
                pending.append((str(copy), item))
    return raised


def _raise_item(
    rec: Recorder, signer: Signer, sha: str, reason: str
) -> tuple[str | None, int] | None:
    """Raise the item ``sha`` to ``ANNEX_CONFIDENTIALITY`` if it is below it: its previous
    level and the seq of the ``metadata.corrected`` event, or None if it was not below."""
    row = rec.db.execute("SELECT confidentiality FROM items WHERE sha256 = ?", [sha]).fetchone()
    previous = None if row is None or row[0] is None else str(row[0])
    try:
        rank = Confidentiality(previous).rank if previous is not None else -1
    except ValueError:
        rank = -1  # a level this toolkit does not know: raised, as the safe reading
    if rank >= ANNEX_CONFIDENTIALITY.rank:
        return None
    appended = rec.append(
        EventDraft(
            action="metadata.corrected",
            subject=sha,
            data={
                "changes": {"confidentiality": str(ANNEX_CONFIDENTIALITY)},
                "previous": {"confidentiality": previous},
                "reason": f"{reason}: raised to the level `testimony add` gives a recording",
            },
        ),
        signer,
    )
    return previous, appended.event.seq


def _refuse_repeated_identity(testimony: Testimony, identity: dict[str, str], path: Path) -> None:
    """Refuse a testimony that repeats an identity value in a field kept in clear.

    Only ``identity`` is sealed; every other field goes into the document item, and most into
    the ``testimony.recorded`` event of the append-only log (SPEC 6: no protected plaintext
    there). Values are compared after Unicode NFKC normalisation, case folding and collapsing
    whitespace, as whole words (``Ivan Petrenko`` is not found in ``Ivan Petrenkov``, a date
    of birth is not found inside a longer date), and only when at least
    :data:`MIN_REPEATED_LENGTH` characters long. The message names the fields, never a value.
    """
    wanted = {name: _normalised(value) for name, value in identity.items()}
    wanted = {name: text for name, text in wanted.items() if len(text) >= MIN_REPEATED_LENGTH}
    if not wanted:
        return
    problems: list[FieldProblem] = []
    # The recordings as given (paths too: an ingested file's path is logged).
    clear = testimony.public_view().model_dump(mode="json", exclude_none=True)
    for loc, text in _texts(clear, ()):
        seen = _normalised(text)
        repeated = [f"identity.{name}" for name, value in wanted.items() if _holds(seen, value)]
        if repeated:
            names = " and ".join(repeated)
            verb = "is" if len(repeated) == 1 else "are"
            problems.append(
                FieldProblem(
                    field_name(loc),
                    f"repeats {names}, which {verb} protected: this field is stored and "
                    "exported in clear",
                )
            )
    if problems:
        raise ModelInputError(
            problems,
            str(path),
            "keep identity details under identity: only (it is sealed) and take them out of "
            "the fields named above, e.g. write 'the witness' for the name; if a field names "
            "someone else of the same name, give the identity value in full (values shorter "
            f"than {MIN_REPEATED_LENGTH} characters are not compared)",
        )


def _texts(value: object, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """Every text in ``value`` (plain JSON data) with where it is."""
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _texts(item, (*loc, index))


def _normalised(text: str) -> str:
    """``text`` as compared: NFKC, case folded, whitespace runs as one space."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(folded.split())


def _holds(text: str, value: str) -> bool:
    """Whether ``value`` is in ``text`` as a whole: not inside a longer word or number."""
    start = text.find(value)
    while start >= 0:
        end = start + len(value)
        if _edge(text, start - 1, -1, value[0]) and _edge(text, end, 1, value[-1]):
            return True
        start = text.find(value, start + 1)
    return False


def _edge(text: str, index: int, step: int, inner: str) -> bool:
    """Whether a match whose end character is ``inner`` is whole at ``text[index]``, the
    character just outside that end: no letter or digit goes on with its word, no digit after
    a joiner goes on with its number."""
    if not 0 <= index < len(text) or not inner.isalnum():
        return True
    outer = text[index]
    if outer.isalnum():
        return False
    # 2011-07 within 2011-07-15, 12.05 within 12.05.2011: one number goes on.
    beyond = index + step
    return not (
        inner.isdigit()
        and outer in _NUMBER_JOINERS
        and 0 <= beyond < len(text)
        and text[beyond].isdigit()
    )


def _refuse_known(case: Case, code: str) -> None:
    row = case.db.execute(
        "SELECT created_seq FROM testimonies WHERE witness_code = ?", [code]
    ).fetchone()
    if row is not None:
        raise InputError(
            f"witness_code: {code} is already recorded in the case (seq {row[0]})",
            "give the testimony its own witness code; to correct consent use "
            "`evidence testimony withdraw-consent`",
        )


def _split_recordings(
    case: Case, testimony: Testimony, path: Path
) -> tuple[dict[str, str], list[Path]]:
    """Recordings that are items already (by sha256) and files still to ingest."""
    known: dict[str, str] = {}
    files: list[Path] = []
    for index, ref in enumerate(testimony.recordings):
        if _SHA256.fullmatch(ref):
            try:
                known[ref] = resolve_item(case, ref)
            except InputError:
                raise InputError(
                    f"{path}: recordings[{index}]: no item {ref} in the case",
                    "ingest the recording first, or give the path of its file",
                ) from None
            continue
        candidate = Path(ref)
        if not candidate.is_absolute():
            candidate = path.parent / candidate
        if not candidate.is_file():
            raise InputError(
                f"{path}: recordings[{index}]: no such file {candidate}",
                "give the path of the recording relative to the testimony file, or its sha256",
            )
        if candidate.stat().st_size == 0:
            raise InputError(f"{path}: recordings[{index}]: {candidate} is empty")
        files.append(candidate)
    return known, files


def _ingest_recordings(
    case: Case, signer: Signer, testimony: Testimony, files: list[Path]
) -> list[str]:
    options = ItemOptions(
        description=f"Recording of the interview of witness {testimony.witness_code}",
        collected_at=testimony.interview_date,
        language=testimony.statement.language,
        confidentiality=ANNEX_CONFIDENTIALITY,
        tags=(f"testimony:{testimony.witness_code}",),
    )
    report = ingest(case, signer, files, options=options)
    if report.refused:
        first = report.refused[0]
        raise InputError(
            f"recordings: {first.path} was refused: {first.reason}",
            "fix the recording file and run the command again",
        )
    return [f.sha256 for f in report.files]


def _without_texts(public_data: dict[str, Any]) -> dict[str, Any]:
    summary = dict(public_data)
    summary["statement"] = {"language": public_data["statement"]["language"]}
    summary["translations"] = [
        {"language": t["language"], "translator": t["translator"]}
        for t in public_data.get("translations", [])
    ]
    return summary


def resolve_testimony(case: Case, ref: str) -> str:
    """The witness code of a testimony named by its code or its document's sha256 (prefix)."""
    ref = ref.strip()
    row = case.db.execute(
        "SELECT witness_code FROM testimonies WHERE witness_code = ?", [ref]
    ).fetchone()
    if row is None and re.fullmatch(r"[0-9a-fA-F]{4,64}", ref):
        row = case.db.execute(
            "SELECT witness_code FROM testimonies WHERE document LIKE ?", [ref.lower() + "%"]
        ).fetchone()
    if row is None:
        raise UnknownId("testimony", ref, "list the testimonies with `evidence testimony list`")
    return str(row[0])


def list_testimonies(case: Case) -> list[dict[str, Any]]:
    """Every testimony: code, category, interview date, document, consent (no identity)."""
    rows = case.db.execute(
        "SELECT witness_code, document, data, consent, consent_withdrawn, annex_sha256, "
        "created_seq FROM testimonies ORDER BY created_seq"
    ).fetchall()
    out = []
    for code, document, data, consent, withdrawn, annex, seq in rows:
        summary = json.loads(data)
        out.append(
            {
                "witness_code": code,
                "category": summary.get("category"),
                "interview_date": summary.get("interview_date"),
                "document": document,
                "consent": json.loads(consent),
                "consent_withdrawn": bool(withdrawn),
                "protected_annex": annex,
                "created_seq": seq,
            }
        )
    return out


def show_testimony(case: Case, ref: str) -> dict[str, Any]:
    """A testimony with its statement, consent, annex hashes, links and history (no identity)."""
    code = resolve_testimony(case, ref)
    row = case.db.execute(
        "SELECT document, data, annex, consent, consent_withdrawn, created_seq, updated_seq "
        "FROM testimonies WHERE witness_code = ?",
        [code],
    ).fetchone()
    document_sha, data, annex, consent, withdrawn, created, updated = row
    try:
        document = json.loads(case.objects.path_for(document_sha).read_bytes())
        full = document["testimony"]
    except (OSError, ValueError, KeyError):
        # The catalog still shows the metadata; `evidence verify` names the missing object.
        full = json.loads(data)
        full["statement"] = {**full.get("statement", {}), "text": None}
    annex_data = json.loads(annex) if annex else None
    shown: dict[str, Any] = {
        "witness_code": code,
        "document": document_sha,
        "testimony": full,
        "consent": json.loads(consent),
        "consent_withdrawn": bool(withdrawn),
        "consent_covers_icc": _covers_icc(json.loads(consent), bool(withdrawn)),
        "protected_annex": None
        if annex_data is None
        else {
            "sha256": annex_data["sha256"],
            "commitment": annex_data["commitment"],
            "recipients": annex_data["recipients"],
            "fields": annex_data.get("fields", []),
        },
        "links": [
            {"target": r[0], "kind": r[1], "reason": r[2], "seq": r[3]}
            for r in case.db.execute(
                "SELECT target, target_kind, reason, seq FROM links WHERE subject = ? ORDER BY seq",
                [document_sha],
            ).fetchall()
        ],
        "created_seq": created,
        "updated_seq": updated,
        "history": custody_history(case, document_sha),
    }
    return shown


def reveal_identity(
    case: Case, signer: Signer, ref: str, key: RecipientKey, purpose: str
) -> dict[str, str]:
    """Open the testimony's protected annex with a recipient key; the opening is recorded."""
    if not purpose.strip():
        raise InputError("--purpose: is empty", "say why the identity is revealed")
    code = resolve_testimony(case, ref)
    row = case.db.execute(
        "SELECT annex_sha256, commitment FROM testimonies WHERE witness_code = ?", [code]
    ).fetchone()
    if row is None or row[0] is None:
        raise InputError(f"{code}: the testimony has no protected identity")
    annex_sha, commitment = str(row[0]), str(row[1])
    envelope = case.objects.path_for(annex_sha).read_bytes()
    fields = reveal(
        envelope,
        key,
        aad=annex_aad(case.config.case_id, code),
        commitment_digest=commitment,
        source=f"protected annex of {code}",
    )
    case.record(
        [
            EventDraft(
                action="annex.opened",
                subject=annex_sha,
                data={"witness_code": code, "recipient": key.recipient_id, "purpose": purpose},
            )
        ],
        signer,
    )
    case.checkpoint(signer)
    return fields


def withdraw_consent(
    case: Case,
    signer: Signer,
    ref: str,
    reason: str,
    on: str | None = None,
    *,
    today: date | None = None,
) -> int:
    """Record that the witness withdrew consent (on ``on``, default today); returns the seq.

    ``today`` defaults to the UTC date of the system clock; ``on`` may not be later (by more
    than the day of tolerance). Without ``on`` the day is ``today`` if given, else the local
    date (by the same clock): the day the person recording it sees on their calendar.
    """
    if not reason.strip():
        raise InputError("--reason: is empty", "say what the witness asked for")
    if on is not None:
        day = on
    elif today is not None:
        day = today.isoformat()
    else:
        # East of UTC the UTC date can still be yesterday there, which would record the
        # withdrawal a day early; the local date is at most a day ahead, which is tolerated.
        day = models.utc_now().astimezone().date().isoformat()
    if today is None:
        # Looked up when called: the one clock the input checks read (tests freeze it).
        today = models.utc_today()
    try:
        day = _DAY.validate_python(day, context=input_context(today))
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        hint = (
            "give the day the witness withdrew consent"
            if error["type"] == "date_future"
            else "write the day as YYYY-MM-DD"
        )
        raise InputError(f"--on: {error['msg']} (got {day!r})", hint) from None
    code = resolve_testimony(case, ref)
    with case.transaction() as rec:
        row = rec.db.execute(
            "SELECT document, consent, consent_withdrawn FROM testimonies WHERE witness_code = ?",
            [code],
        ).fetchone()
        document, consent, withdrawn = str(row[0]), json.loads(row[1]), bool(row[2])
        if withdrawn:
            raise InputError(
                f"{code}: consent was already withdrawn on {consent.get('withdrawn_on')}",
                "a withdrawal is recorded once",
            )
        given = consent.get("given_on")
        if given and partial_date_range(day)[1] < partial_date_range(given)[0]:
            raise InputError(f"--on: {day} is before consent was given ({given})")
        appended = rec.append(
            EventDraft(
                action="consent.withdrawn",
                subject=document,
                data={"witness_code": code, "withdrawn_on": day, "reason": reason},
            ),
            signer,
        )
    case.checkpoint(signer)
    return appended.event.seq


def _covers_icc(consent: dict[str, Any], withdrawn: bool) -> bool:
    return bool(consent.get("icc_proceedings")) and not withdrawn


def consent_covers_icc(case: Case, witness_code: str) -> bool:
    """Whether the testimony may go into an ICC bundle: consent given and not withdrawn."""
    row = case.db.execute(
        "SELECT consent, consent_withdrawn FROM testimonies WHERE witness_code = ?",
        [witness_code],
    ).fetchone()
    if row is None:
        raise UnknownId("testimony", witness_code)
    return _covers_icc(json.loads(row[0]), bool(row[1]))
