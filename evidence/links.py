"""Links between evidence (items and testimonies) and entities; timelines of an entity.

A link is a ``link.made`` event whose subject is the item's sha256 (for a testimony: its
document's sha256) and whose data names the target entity, its kind and the reason; the event
records who made it. ``link.removed`` takes a link back, with a reason; the earlier event stays.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chain_of_custody import EventDraft, Signer
from evidence.custody import resolve_item
from evidence.errors import InputError, UnknownId
from evidence.loaders import ModelInputError, parse_options
from evidence.models import ENTITY_MODELS, Link
from evidence.workspace import Case, Recorder

# The field of models.Link that holds each kind of target.
_OPTION_OF = {
    "incident": "incidents",
    "facility": "facilities",
    "perpetrator": "perpetrators",
    "child": "children",
}
# The options of `evidence link` and `unlink` that give each field, for messages.
_OPTION_NAMES = {field: f"--{kind}" for kind, field in _OPTION_OF.items()} | {"reason": "--reason"}


@dataclass(frozen=True)
class LinkChange:
    """One link made or removed (or skipped because it already was so)."""

    subject: str
    target: str
    kind: str
    seq: int | None

    def as_json(self) -> dict[str, Any]:
        """A machine-readable form for ``--json``."""
        return {"subject": self.subject, "target": self.target, "kind": self.kind, "seq": self.seq}


def resolve_subject(case: Case, ref: str) -> tuple[str, str]:
    """The links subject (a sha256) of an item or testimony reference, and a label for it.

    ``ref`` is a witness code (``W-017``), an item's sha256 or a unique prefix of it.
    """
    ref = ref.strip()
    row = case.db.execute(
        "SELECT document FROM testimonies WHERE witness_code = ?", [ref]
    ).fetchone()
    if row is not None:
        return str(row[0]), ref
    if ref.upper().startswith("W-"):
        raise UnknownId("testimony", ref, "list the testimonies with `evidence testimony list`")
    sha = resolve_item(case, ref)
    return sha, sha[:12]


def _targets(
    targets: Mapping[str, Sequence[str]], subject: str, reason: str
) -> list[tuple[str, str]]:
    values: dict[str, Any] = {"subject": subject, "reason": reason}
    for kind, ids in targets.items():
        if kind not in ENTITY_MODELS:
            raise InputError(f"unknown entity kind {kind!r}")
        values[_OPTION_OF[kind]] = tuple(ids)
    try:
        link = parse_options(Link, values, option_names=_OPTION_NAMES)
    except ModelInputError as exc:
        raise ModelInputError(
            list(exc.problems),
            None,
            "give at least one of --incident, --facility, --perpetrator, --child and a --reason",
        ) from None
    return [(str(t.kind), t.id) for t in link.targets]


def make_links(
    case: Case,
    signer: Signer,
    ref: str,
    targets: Mapping[str, Sequence[str]],
    reason: str,
) -> list[LinkChange]:
    """Link an item or testimony to entities; links that exist already are left as they are."""
    return make_links_many(case, signer, [ref], targets, reason)


def make_links_many(
    case: Case,
    signer: Signer,
    refs: Sequence[str],
    targets: Mapping[str, Sequence[str]],
    reason: str,
) -> list[LinkChange]:
    """:func:`make_links` for several items or testimonies, in one transaction: every
    reference and target is checked before anything is recorded."""
    subjects = list(dict.fromkeys(resolve_subject(case, ref)[0] for ref in refs))
    wanted = {subject: _targets(targets, subject, reason) for subject in subjects}
    changes: list[LinkChange] = []
    with case.transaction() as rec:
        for kind, target in dict.fromkeys(pair for pairs in wanted.values() for pair in pairs):
            row = rec.db.execute("SELECT kind FROM entities WHERE id = ?", [target]).fetchone()
            if row is None:
                raise InputError(
                    f"--{kind} {target}: no such {kind} in the case",
                    f"add it first with `evidence {kind} add`, or see `evidence {kind} list`",
                )
        for subject, pairs in wanted.items():
            for kind, target in pairs:
                known = rec.db.execute(
                    "SELECT seq FROM links WHERE subject = ? AND target = ?", [subject, target]
                ).fetchone()
                if known is not None:
                    changes.append(LinkChange(subject, target, kind, None))
                    continue
                changes.append(
                    _record_link(rec, signer, "link.made", subject, kind, target, reason)
                )
    if any(c.seq is not None for c in changes):
        case.checkpoint(signer)
    return changes


def remove_links(
    case: Case,
    signer: Signer,
    ref: str,
    targets: Mapping[str, Sequence[str]],
    reason: str,
) -> list[LinkChange]:
    """Take links back; each removal is an event with its reason."""
    subject, _label = resolve_subject(case, ref)
    wanted = _targets(targets, subject, reason)
    changes: list[LinkChange] = []
    with case.transaction() as rec:
        for kind, target in wanted:
            known = rec.db.execute(
                "SELECT 1 FROM links WHERE subject = ? AND target = ?", [subject, target]
            ).fetchone()
            if known is None:
                raise InputError(
                    f"--{kind} {target}: {ref} is not linked to it",
                    f"see the links with `evidence show {subject[:12]}`",
                )
        changes.extend(
            _record_link(rec, signer, "link.removed", subject, kind, target, reason)
            for kind, target in wanted
        )
    case.checkpoint(signer)
    return changes


def _record_link(
    rec: Recorder, signer: Signer, action: str, subject: str, kind: str, target: str, reason: str
) -> LinkChange:
    """Append one ``link.made`` or ``link.removed`` event and say what it changed."""
    appended = rec.append(
        EventDraft(
            action=action,
            subject=subject,
            data={"target": target, "target_kind": kind, "reason": reason},
        ),
        signer,
    )
    return LinkChange(subject, target, kind, appended.event.seq)


def timeline(case: Case, kind: str, entity_id: str) -> list[dict[str, Any]]:
    """The evidence linked to an entity, in date order (undated evidence last, by seq).

    The date of a testimony is its interview date; of an item, the capture time found in its
    metadata, else when it was collected.
    """
    row = case.db.execute("SELECT kind FROM entities WHERE id = ?", [entity_id]).fetchone()
    if row is None or row[0] != kind:
        raise InputError(
            f"--{kind} {entity_id}: no such {kind} in the case",
            f"see `evidence {kind} list`",
        )
    entries: list[dict[str, Any]] = []
    for subject, reason, seq in case.db.execute(
        "SELECT subject, reason, seq FROM links WHERE target = ? ORDER BY seq", [entity_id]
    ).fetchall():
        entries.append(_entry(case, str(subject), str(reason), int(seq)))
    dated = sorted((e for e in entries if e["date"]), key=lambda e: (e["date"], e["link_seq"]))
    undated = [e for e in entries if not e["date"]]
    return dated + undated


def _entry(case: Case, subject: str, reason: str, seq: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "subject": subject,
        "kind": "",
        "name": "",
        "date": None,
        "date_source": None,
        "reason": reason,
        "link_seq": seq,
    }
    testimony = case.db.execute(
        "SELECT witness_code, data FROM testimonies WHERE document = ?", [subject]
    ).fetchone()
    if testimony is not None:
        data = json.loads(testimony[1])
        entry.update(
            kind="testimony",
            name=str(testimony[0]),
            date=data.get("interview_date"),
            date_source="interview date",
        )
        return entry
    item = case.db.execute(
        "SELECT kind, name, collected_at, metadata FROM items WHERE sha256 = ?", [subject]
    ).fetchone()
    if item is None:
        return entry
    entry.update(kind=item[0] or "file", name=item[1] or "")
    metadata = json.loads(item[3]) if item[3] else {}
    # When a photo was taken says more about the events than when it was handed over.
    if isinstance(metadata.get("datetime_original"), str):
        entry.update(date=metadata["datetime_original"], date_source="capture time (metadata)")
    elif item[2]:
        entry.update(date=item[2], date_source="collected at")
    return entry
