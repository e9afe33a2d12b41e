"""``evidence export``: select, number, prove and write a submission bundle (SPEC section 7).

The steps, in order:

1. choose the items and testimonies (``exports.selection``);
2. give ERNs to those that have none yet (``exports.ern``: ``ern.assigned`` events, appended
   only when needed, so a second export of the same state appends nothing);
3. sign (or reuse) the checkpoint of the log at its current size: everything in the bundle is
   read at that size and proven against that checkpoint. A reused checkpoint may be signed by
   another key of the case than the exporting one: checkpoints are stored once per size, and
   making a new size only to sign it would record an event whose time differs on every run,
   so the same state would no longer give the same bundle. VERIFY.md names every key the
   bundle relies on instead (:meth:`~exports.model.BundleContent.key_roles`);
4. build the frozen :class:`~exports.model.BundleContent`, with an inclusion proof of every
   event it carries (not only of the events that recorded its records: an ``ern.assigned``
   event or a custody transfer is shown to be in the log only by its own proof), consistency
   proofs from the log sizes that readers of earlier bundles may hold, and hand it to the
   writers (``exports.bag``);
5. record ``export.made`` and sign the checkpoint that includes it.

``created`` may not precede the latest event the bundle holds (it defaults to now, or to that
event's time if the clock is behind the log); a ``created`` before ERN assignments the export
would record is refused before anything is recorded.

Determinism: the bundle id is a digest of the case id, selection, profile, ``created`` time,
recipient and the checkpoint, and nothing in the bundle reads the log beyond the checkpoint.
So the same case state, selection, profile and ``--created`` give a byte-identical bag (and
zip, for the same bag directory name). The ``export.made`` event comes after and is not in the
bundle it records.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from chain_of_custody import (
    Checkpoint,
    EventDraft,
    ProofFile,
    Signer,
    VerifierKey,
    canonical_json,
    format_proof,
    parse_leaf,
    parse_note,
)
from evidence.custody import summarise
from evidence.errors import EnvironmentProblem, InputError
from evidence.protected import RecipientPublicKey
from evidence.stops import StopDeferral
from evidence.workspace import Case, format_time, utc_now
from exports.bag import Staged, stage_bag, stage_zip
from exports.ern import ErnRequest, assign_erns, assigned_erns
from exports.model import (
    BundleContent,
    BundleInfo,
    BundleItem,
    BundleTestimony,
    ConsistencyProofFile,
    CustodyEntry,
    Group,
    GroupFacility,
    GroupIncident,
    GroupPerpetrator,
    LinkedEntity,
    LogLeaf,
    Profile,
    Selection,
    Statement,
    Translation,
    VerifierKeyText,
    parse_time,
    safe_file_name,
)
from exports.selection import (
    EntityRef,
    GroupNode,
    SelectedItem,
    SelectedTestimony,
    SelectionResult,
    select,
)

EXPORT_MADE = "export.made"
PDF = "application/pdf"

Progress = Callable[[str], None]
"""Called with a short description of each step as it starts (for a progress display)."""


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and recorded."""

    bundle_id: str
    bag: Path
    zip_path: Path | None
    profile: Profile
    items: int
    testimonies: int
    new_erns: int
    checkpoint_size: int
    event_seq: int
    stamped: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        """A machine-readable summary for ``--json``."""
        return {
            "bundle_id": self.bundle_id,
            "bag": str(self.bag),
            "zip": str(self.zip_path) if self.zip_path else None,
            "profile": self.profile,
            "items": self.items,
            "testimonies": self.testimonies,
            "new_erns": self.new_erns,
            "checkpoint_size": self.checkpoint_size,
            "event_seq": self.event_seq,
            "stamped": list(self.stamped),
            "warnings": list(self.warnings),
        }


def export_bundle(
    case: Case,
    signer: Signer,
    *,
    selection: Selection,
    profile: Profile,
    out_dir: Path,
    zip_path: Path | None = None,
    created: str | None = None,
    recipient: RecipientPublicKey | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the bundle of ``selection`` with ``profile`` to ``out_dir`` (and ``zip_path``).

    ``created`` is the bundle's time (RFC 3339 UTC, e.g. ``2026-11-24T03:20:00Z``), not
    earlier than the latest event the bundle holds; it defaults to now. Raises
    :class:`InputError` for a bad selection, an existing output, a ``created`` before the
    bundle's events or a recipient the protected annexes are not sealed to.
    """
    step = progress or (lambda _label: None)
    out_dir, zip_path = Path(out_dir), Path(zip_path) if zip_path else None
    for target in (out_dir, zip_path):
        if target is not None and (target.exists() or target.is_symlink()):
            raise InputError(
                f"{target} already exists",
                "choose a new --out; a bundle is never written over another file or directory",
            )
    for target in (out_dir, zip_path):
        if target is not None:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise EnvironmentProblem(
                    f"cannot create {target.parent}: {exc.strerror}",
                    "choose an --out in a writable place",
                ) from None
    if created is not None:
        _check_created(created)
        _check_created_not_ahead(case, created)

    step("selecting")
    chosen = select(case, selection, profile, recipient=recipient)
    requests = _ern_requests(chosen)
    if created is not None:
        _check_created_before_new_erns(case, created, requests)
    step("assigning ERNs")
    before = case.log.size()
    ranges = assign_erns(case, signer, requests)
    new_erns = case.log.size() - before
    step("signing the checkpoint")
    note = case.checkpoint(signer)
    checkpoint = Checkpoint.from_text(parse_note(note).text)
    if created is None:
        # Now, or the last event's time if a clock behind the log's made that later.
        latest = _event_time(case, checkpoint.size - 1)
        created = max(format_time(utc_now()), latest, key=parse_time)

    step("collecting custody records")
    erns = {subject: span.erns for subject, span in ranges.items()}
    content = build_content(
        case,
        chosen,
        erns=erns,
        checkpoint_note=note,
        checkpoint=checkpoint,
        exporter=signer.verifier,
        created=created,
        recipient=recipient,
    )
    _check_created_after_events(created, content)
    data: dict[str, Any] = {
        "bundle_id": content.info.bundle_id,
        "profile": profile,
        "selection": selection.model_dump(mode="json"),
        "items": list(chosen.subjects),
        "checkpoint_size": str(checkpoint.size),
        "created": created,
    }
    if recipient is not None and any(t.annex for t in chosen.testimonies):
        data["recipient"] = recipient.recipient_id

    step("writing the bag")
    # A finished leftover of an export this case records is kept, not cleared (bag.py).
    recorded = functools.partial(_export_recorded, case)
    try:
        staged, written = stage_bag(
            content,
            out_dir,
            sign_tagmanifest=signer.sign,
            signer_key_id=signer.key_id,
            recorded=recorded,
        )
    except OSError as exc:
        raise _cannot_write(out_dir, exc) from exc
    # Both are written under hidden names and given theirs only once the export is recorded:
    # a bundle that can be seen is one that the log records. A stop (Ctrl-C, SIGTERM, SIGHUP)
    # before the catalog is locked removes them; from then on it waits until they have their
    # names, and then says the export is done. Killed in between (SIGKILL, power loss), the
    # export is recorded and its files stay hidden; the next export of the same name keeps
    # them, and its warnings say where they are.
    hidden = [staged]
    with StopDeferral() as stops:
        try:
            if zip_path is not None:
                step("writing the zip")
                try:
                    hidden.append(
                        stage_zip(
                            staged.temp,
                            zip_path,
                            created=created,
                            top=out_dir.name,
                            recorded=recorded,
                        )
                    )
                except OSError as exc:
                    raise _cannot_write(zip_path, exc) from exc
            for each in hidden:
                each.check_target_free()
            step("recording the export")
            with case.transaction() as rec:
                stops.hold()
                appended = rec.append(
                    EventDraft(action=EXPORT_MADE, subject=content.info.bundle_id, data=data),
                    signer,
                )
        except BaseException:
            for each in hidden:
                each.discard()
            raise
        for each in hidden:
            try:
                each.place()
            except (OSError, InputError) as exc:
                # Recorded: the next export of the same name keeps them (and says so).
                for left in hidden:
                    left.claim.release()
                why = exc.message if isinstance(exc, InputError) else exc.strerror
                raise EnvironmentProblem(
                    f"the export is recorded as seq {appended.event.seq}, but {each.target} "
                    f"could not be given its name ({why}); the finished bundle is {each.temp}",
                    f"move {each.temp} to where you want it, under a name not starting with a dot",
                ) from exc
        case.checkpoint(signer)
        stops.completed(
            f"the export was recorded as seq {appended.event.seq} and written to "
            + " and ".join(str(each.target) for each in hidden)
        )
    return ExportResult(
        bundle_id=content.info.bundle_id,
        bag=written.path,
        zip_path=zip_path,
        profile=profile,
        items=len(chosen.items),
        testimonies=len(chosen.testimonies),
        new_erns=new_erns,
        checkpoint_size=checkpoint.size,
        event_seq=appended.event.seq,
        stamped=written.stamped,
        warnings=(*chosen.warnings, *written.warnings, *_kept_warnings(hidden)),
    )


def _export_recorded(case: Case, bundle_id: str) -> bool:
    """Whether this case's log records the export of ``bundle_id``."""
    row = case.db.execute("SELECT 1 FROM exports WHERE bundle_id = ?", [bundle_id]).fetchone()
    return row is not None


def _kept_warnings(hidden: Sequence[Staged]) -> list[str]:
    """One warning for each finished bag or zip of an earlier, recorded export of the same
    name that was found under its hidden name and left there."""
    warnings = []
    for each in hidden:
        for path in each.kept:
            warnings.append(
                f"{path} holds the finished files of an earlier export of {each.target.name}, "
                "recorded in the log but never given their name; they were left there: move "
                "them where you want them, under a name not starting with a dot"
            )
    return warnings


def _cannot_write(target: Path, exc: OSError) -> EnvironmentProblem:
    return EnvironmentProblem(
        f"cannot write the bundle to {target}: {exc.strerror or exc}",
        "check the free space and permissions where --out points, then run the export again",
    )


def _check_created(created: str) -> None:
    try:
        parse_time(created)
    except ValueError:
        raise InputError(
            f"--created {created!r} is not an RFC 3339 UTC time",
            "write it like 2026-11-24T03:20:00Z",
        ) from None


# How far ahead of the clock --created may be: clocks of two machines differ a little.
CREATED_AHEAD_ALLOWANCE = timedelta(minutes=10)


def _check_created_not_ahead(case: Case, created: str) -> None:
    """Refuse a ``created`` later than now (the system clock, or the log's own if it is
    ahead): the bundle would claim a time after the export that the log records for it."""
    now = max(format_time(utc_now()), case.log.now(), key=parse_time)
    if parse_time(created) > parse_time(now) + CREATED_AHEAD_ALLOWANCE:
        raise InputError(
            f"--created {created} is later than now ({now}): the log records the export at the "
            "time it is made, and the bundle may not claim a later one",
            "give the time the bundle is made, or leave --created out to use the current time",
        )


def _event_time(case: Case, seq: int) -> str:
    row = case.db.execute("SELECT time FROM log WHERE seq = ?", [seq]).fetchone()
    return str(row[0])


def _created_too_early(created: str, what: str, moment: str) -> InputError:
    return InputError(
        f"--created {created} is earlier than {what} at {moment}, which the bundle includes: "
        "a bundle cannot be made before the events it holds",
        f"give a --created at or after {moment}, or leave --created out to use the current time",
    )


def _check_created_before_new_erns(
    case: Case, created: str, requests: Sequence[ErnRequest]
) -> None:
    """Refuse ``created`` before anything is recorded if the ERN assignments this export is
    about to record, which the bundle includes, would be later than it."""
    known = assigned_erns(case)
    new = [request for request in requests if request.subject not in known]
    if not new or case.log.size() == 0:
        return
    # The log never records a time before its last one, even when the clock is behind.
    upcoming = max(case.log.now(), _event_time(case, case.log.size() - 1), key=parse_time)
    if parse_time(created) < parse_time(upcoming):
        raise _created_too_early(
            created, f"the ERN assignment of {len(new)} selected record(s), recorded now", upcoming
        )


def _check_created_after_events(created: str, content: BundleContent) -> None:
    """Refuse ``created`` if it is earlier than the latest custody event the bundle holds.

    Every event is looked at: the log tolerates a time a little behind the one before it, so
    the event of the highest seq need not be the latest.
    """
    events = [parse_leaf(leaf.leaf).event for leaf in content.custody_events]
    if not events:
        return
    event = max(events, key=lambda e: (parse_time(e.time), e.seq))
    if parse_time(created) < parse_time(event.time):
        raise _created_too_early(created, f"event {event.seq} ({event.action})", event.time)


def _pages(item: SelectedItem) -> int | None:
    """The page count of a PDF whose metadata was read without error, else ``None``."""
    if item.row.get("mime") != PDF:
        return None
    metadata = _json(item.row.get("metadata"))
    pages = metadata.get("pages")
    if isinstance(pages, int) and pages >= 1 and "error" not in metadata:
        return pages
    return None


def _ern_requests(chosen: SelectionResult) -> list[ErnRequest]:
    requests = [ErnRequest(item.sha256, _pages(item) or 1) for item in chosen.items]
    requests += [ErnRequest(t.document) for t in chosen.testimonies]
    return requests


def bundle_id_for(
    case_id: str,
    selection: Selection,
    profile: Profile,
    created: str,
    checkpoint_note: bytes,
    recipient: RecipientPublicKey | None,
) -> str:
    """The bundle id: the case id and a digest of what determines the bundle's content."""
    basis = canonical_json(
        {
            "case": case_id,
            "selection": selection.model_dump(mode="json"),
            "profile": profile,
            "created": created,
            "checkpoint": parse_note(checkpoint_note).text_str,
            "recipient": recipient.recipient_id if recipient else "",
        }
    )
    return f"{case_id}-B{hashlib.sha256(basis).hexdigest()[:16].upper()}"


def build_content(
    case: Case,
    chosen: SelectionResult,
    *,
    erns: dict[str, tuple[str, ...]],
    checkpoint_note: bytes,
    checkpoint: Checkpoint,
    exporter: VerifierKey,
    created: str,
    recipient: RecipientPublicKey | None,
) -> BundleContent:
    """The frozen bundle model of a selection, read from the log at the checkpoint's size."""
    size = checkpoint.size
    first_ern = {subject: values[0] for subject, values in erns.items()}
    leaves: dict[int, bytes] = {}

    def history(subjects: Sequence[str]) -> tuple[CustodyEntry, ...]:
        entries = []
        marks = ",".join("?" for _ in subjects)
        rows = case.db.execute(
            f"SELECT seq FROM log WHERE subject IN ({marks}) AND seq < ? ORDER BY seq",  # noqa: S608
            [*subjects, size],
        ).fetchall()
        for (seq,) in rows:
            raw = leaves.setdefault(int(seq), case.log.leaf(int(seq)))
            event = parse_leaf(raw).event
            entries.append(
                CustodyEntry(
                    seq=event.seq,
                    time=event.time,
                    action=event.action,
                    actor=event.actor,
                    summary=summarise(event.action, event.data),
                )
            )
        return tuple(entries)

    proofs: dict[int, str] = {}

    def proof(seq: int) -> str:
        # Once per event: the proof of the event that recorded a record is also its event's.
        if seq not in proofs:
            raw = leaves.setdefault(seq, case.log.leaf(seq))
            path = tuple(case.log.inclusion_proof(seq, size))
            proofs[seq] = format_proof(ProofFile(raw, seq, path, checkpoint_note)).decode("utf-8")
        return proofs[seq]

    derived_in_bundle: dict[str, list[str]] = {}
    for item in chosen.items:
        origin = item.row.get("derived_from")
        if origin in first_ern:
            derived_in_bundle.setdefault(str(origin), []).append(item.sha256)

    items = []
    for item in chosen.items:
        row = item.row
        metadata = _json(row.get("metadata"))
        pages = _pages(item)
        origin = row.get("derived_from")
        related = [first_ern[origin]] if origin in first_ern else []
        related += [first_ern[d] for d in derived_in_bundle.get(item.sha256, [])]
        name = str(row.get("name") or item.sha256[:16])
        item_erns = erns[item.sha256]
        if pages is not None and len(item_erns) != pages:
            pages = None  # the range was given when the page count was not known
        items.append(
            BundleItem(
                item_id=item.sha256,
                erns=item_erns,
                title=str(row.get("title") or name),
                date=_document_date(metadata, row),
                mime=str(row.get("mime") or "application/octet-stream"),
                kind=_kind(str(row.get("mime") or "")),
                source=_text(row.get("source")),
                collector=_text(row.get("collected_by")),
                language=_text(row.get("language")),
                confidentiality=_text(row.get("confidentiality")) or "confidential",
                sha256=item.sha256,
                sha512=str(row["sha512"]),
                size=int(row["size"]),
                pages=pages,
                duration=_text(metadata.get("duration")) or None,
                description=_text(row.get("description")),
                original_path=case.objects.path_for(item.sha256),
                bag_name=safe_file_name(item_erns[0], name),
                stamped=pages is not None,
                linked=_linked(item.links),
                related_erns=tuple(dict.fromkeys(related)),
                derived_from=first_ern.get(str(origin)) if origin else None,
                custody=history([item.sha256]),
                leaf_seq=item.seq,
                proof_text=proof(item.seq),
            )
        )

    testimonies = [
        _testimony(
            case,
            t,
            first_ern[t.document],
            history([t.document, t.witness_code]),
            proof(t.seq),
        )
        for t in chosen.testimonies
    ]

    keys = _verifier_keys(case)
    key_ids = [k.key_id for k in keys]
    marks = ",".join("?" for _ in key_ids)
    for (seq,) in case.db.execute(
        f"SELECT seq FROM log WHERE subject IN ({marks}) AND action LIKE 'key.%' AND seq < ?",  # noqa: S608
        [*key_ids, size],
    ).fetchall():
        leaves.setdefault(int(seq), case.log.leaf(int(seq)))

    testimony_subjects = {t.document for t in chosen.testimonies}
    config = case.config
    info = BundleInfo(
        bundle_id=bundle_id_for(
            config.case_id, chosen.selection, chosen.profile, created, checkpoint_note, recipient
        ),
        case_id=config.case_id,
        case_title=config.title,
        organisation=config.organisation or "(organisation not set in the case)",
        profile=chosen.profile,
        created=created,
        selection=chosen.selection,
        checkpoint_origin=checkpoint.origin,
        checkpoint_size=checkpoint.size,
        checkpoint_root=checkpoint.root.hex(),
        exporter_key_id=exporter.key_id,
    )
    return BundleContent(
        info=info,
        items=tuple(items),
        testimonies=tuple(testimonies),
        groups=tuple(_group(node, first_ern, testimony_subjects) for node in chosen.groups),
        custody_events=tuple(
            LogLeaf(seq=s, leaf=leaves[s], proof_text=proof(s)) for s in sorted(leaves)
        ),
        verifier_keys=tuple(keys),
        checkpoint_note=checkpoint_note,
        consistency_proofs=_consistency_proofs(case, size),
    )


def _consistency_proofs(case: Case, size: int) -> tuple[ConsistencyProofFile, ...]:
    """Proofs to ``size`` from the earlier checkpoints that someone outside may hold.

    Those are, for each earlier export, the checkpoint in its bundle and the one signed right
    after its ``export.made`` event. Both sizes come from events before ``size``, so the same
    log state gives the same proofs. A checkpoint of any other size is checked against the log
    itself (``evidence log consistency``).
    """
    sizes: set[int] = set()
    for checkpoint_size, seq in case.db.execute(
        "SELECT checkpoint_size, seq FROM exports WHERE seq < ?", [size]
    ).fetchall():
        for earlier in (checkpoint_size, int(seq) + 1):
            if earlier is not None and 1 <= int(earlier) < size:
                sizes.add(int(earlier))
    return tuple(
        ConsistencyProofFile(
            old_size=old, new_size=size, hashes=tuple(case.log.consistency_proof(old, size))
        )
        for old in sorted(sizes)
    )


def _verifier_keys(case: Case) -> list[VerifierKeyText]:
    """Every key ever enrolled: revoked ones too, since they signed earlier events."""
    found = []
    for (text,) in case.db.execute("SELECT verifier FROM keys ORDER BY enrolled_seq").fetchall():
        key = VerifierKey.from_note_text(str(text))
        found.append(
            VerifierKeyText(
                key_id=key.key_id, note_text=key.to_note_text(), pem=key.to_pem().decode("ascii")
            )
        )
    return found


def _testimony(
    case: Case,
    chosen: SelectedTestimony,
    ern: str,
    custody: tuple[CustodyEntry, ...],
    proof_text: str,
) -> BundleTestimony:
    data, row = chosen.data, chosen.document_row
    statement = data.get("statement") or {}
    consent = data.get("consent") or {}
    name = str(row.get("name") or f"statement-{chosen.witness_code}.json")
    return BundleTestimony(
        witness_code=chosen.witness_code,
        ern=ern,
        category=_text(data.get("category")) or "unknown",
        interview_date=_text(data.get("interview_date")) or None,
        languages=tuple(str(lang) for lang in data.get("languages") or ()),
        statement=Statement(
            language=_text(statement.get("language")) or "und",
            text=_text(statement.get("text")),
        ),
        translations=tuple(
            Translation(
                language=_text(t.get("language")) or "und",
                text=_text(t.get("text")),
                translator=_text(t.get("translator")),
            )
            for t in data.get("translations") or ()
            if isinstance(t, dict)
        ),
        consent=_consent_text(consent),
        confidentiality=_text(row.get("confidentiality")) or "confidential",
        linked=_linked(chosen.links),
        custody=custody,
        mime=str(row.get("mime") or "application/json"),
        document_path=case.objects.path_for(chosen.document),
        bag_name=safe_file_name(ern, name),
        sha256=chosen.document,
        sha512=str(row["sha512"]),
        size=int(row["size"]),
        leaf_seq=chosen.seq,
        proof_text=proof_text,
        protected_annex=chosen.annex,
    )


def _consent_text(consent: dict[str, Any]) -> str:
    parts = []
    if consent.get("icc_proceedings") is True:
        parts.append("use in ICC proceedings")
    shared = consent.get("share_with") or []
    if shared:
        parts.append("sharing with " + ", ".join(str(s) for s in shared))
    if consent.get("anonymised_publication") is True:
        parts.append("anonymised publication")
    if consent.get("given_on"):
        parts.append(f"given {consent['given_on']}")
    return "; ".join(parts)


def _linked(links: Sequence[EntityRef]) -> tuple[LinkedEntity, ...]:
    return tuple(
        LinkedEntity(kind=ref.kind, id=ref.id, title=ref.title)
        for ref in links
        if ref.kind in ("incident", "facility", "perpetrator", "child")
    )


def _group(node: GroupNode, first_ern: dict[str, str], testimonies: set[str]) -> Group:
    """The model group of a selection group, with ERNs in place of subjects."""
    entity, data = node.entity, node.entity.data
    common: dict[str, Any] = {
        "id": entity.id,
        "title": entity.title,
        "description": _text(data.get("description")),
        "item_erns": tuple(first_ern[s] for s in node.subjects if s not in testimonies),
        "testimony_erns": tuple(first_ern[s] for s in node.subjects if s in testimonies),
    }
    facilities: list[GroupFacility] = []
    perpetrators: list[GroupPerpetrator] = []
    for child in node.children:
        group = _group(child, first_ern, testimonies)
        if isinstance(group, GroupFacility):
            facilities.append(group)
        elif isinstance(group, GroupPerpetrator):
            perpetrators.append(group)
    if entity.kind == "incident":
        return GroupIncident(
            **common,
            start_date=_text(data.get("start")),
            end_date=_text(data.get("end")),
            place=_place(data.get("place")),
            crimes=tuple(str(c) for c in data.get("crimes") or ()),
            facilities=tuple(facilities),
            perpetrators=tuple(perpetrators),
        )
    if entity.kind == "facility":
        used = " – ".join(_text(data.get(k)) for k in ("used_from", "used_to") if data.get(k))
        return GroupFacility(
            **common,
            facility_type=_text(data.get("type")),
            place=_place(data.get("place")),
            dates=used,
            perpetrators=tuple(perpetrators),
        )
    return GroupPerpetrator(
        **common,
        role=_text(data.get("role")),
        affiliation=_text(data.get("affiliation")),
        liability="; ".join(str(x) for x in data.get("liability") or ()),
    )


def _place(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    return ", ".join(_text(value.get(k)) for k in ("name", "region", "country") if value.get(k))


def _document_date(metadata: dict[str, Any], row: dict[str, Any]) -> str | None:
    """The item's own date where its content gives one (camera time, PDF creation date),
    else the date it was collected: e-Court lists documents by their date, not ours."""
    for key in ("datetime_original", "creation_date"):
        value = _text(metadata.get(key))
        if value:
            return value
    return _text(row.get("collected_at")) or None


def _kind(mime: str) -> str:
    if mime == PDF:
        return "Document"
    for prefix, label in (
        ("image/", "Photograph"),
        ("video/", "Video recording"),
        ("audio/", "Audio recording"),
        ("text/", "Text"),
    ):
        if mime.startswith(prefix):
            return label
    return "File"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _json(value: Any) -> dict[str, Any]:
    if not value:
        return {}
    loaded = json.loads(value) if isinstance(value, str) else value
    return loaded if isinstance(loaded, dict) else {}
