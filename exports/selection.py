"""Which items and testimonies a bundle holds, and how they are grouped.

A selection names incidents, facilities and alleged perpetrators (each repeatable) or asks for
everything; an item or testimony is selected when it is linked to any named entity. The export
profile then decides what may leave the case (SPEC section 6):

- ``public``: only items whose confidentiality is ``public``. No testimony: its document is
  ``confidential`` (it names the interviewers, the interpreter and the place of interview),
  even when the witness agreed to anonymised publication (the warning says whether the consent
  or the confidentiality keeps a testimony out);
- ``restricted``: everything except ``strictly-confidential`` items (those could endanger a
  person and go only to the prosecutor, see ``evidence.models.Confidentiality``);
- ``otp``: everything, with the protected annexes of testimonies as sealed envelopes.

A testimony whose consent does not cover use in ICC proceedings, or was withdrawn, is left out
of every profile with a warning; so are its recordings and the working copies made from them or
from its document, whatever else they are linked to (a recording shared with a witness who did
consent stays out too: every witness recorded must consent). The groups form the tree incident
-> facility -> alleged perpetrator of ``exports.model``: an item linked to several groups is
listed in each and stored once.

This module reads the catalog only; it records nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from evidence.errors import InputError, UnknownId
from evidence.models import Confidentiality
from evidence.protected import RecipientPublicKey, recipients_of
from evidence.workspace import Case
from exports.model import Profile, Selection

GROUP_KINDS = ("incident", "facility", "perpetrator")


@dataclass(frozen=True)
class EntityRef:
    """An entity an item or testimony is linked to."""

    kind: str
    id: str
    title: str
    number: int
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class SelectedItem:
    """An item chosen for the bundle, as the catalog holds it."""

    sha256: str
    row: dict[str, Any] = field(compare=False, hash=False)
    links: tuple[EntityRef, ...] = ()

    @property
    def seq(self) -> int:
        """The seq of the event that recorded the item."""
        return int(self.row["ingested_seq"])


@dataclass(frozen=True)
class SelectedTestimony:
    """A testimony chosen for the bundle: its document and, in ``otp``, its sealed annex."""

    witness_code: str
    document: str
    seq: int
    data: dict[str, Any] = field(compare=False, hash=False)
    document_row: dict[str, Any] = field(compare=False, hash=False)
    links: tuple[EntityRef, ...] = ()
    annex: bytes | None = field(default=None, repr=False, compare=False, hash=False)


@dataclass(frozen=True)
class GroupNode:
    """One group of the tree: an entity, the subjects listed under it and its child groups.

    ``subjects`` are item sha256s and testimony document sha256s, in bundle order.
    """

    entity: EntityRef
    subjects: tuple[str, ...]
    children: tuple[GroupNode, ...] = ()

    def walk(self) -> Iterable[GroupNode]:
        """This group and all below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class SelectionResult:
    """What a bundle will hold, before ERNs are given."""

    selection: Selection
    profile: Profile
    items: tuple[SelectedItem, ...]
    testimonies: tuple[SelectedTestimony, ...]
    groups: tuple[GroupNode, ...]
    warnings: tuple[str, ...] = ()

    @property
    def subjects(self) -> tuple[str, ...]:
        """Item sha256s then testimony document sha256s, in bundle order."""
        return (*(i.sha256 for i in self.items), *(t.document for t in self.testimonies))


def allowed_in_profile(confidentiality: str | None, profile: Profile) -> bool:
    """Whether an item of ``confidentiality`` may go into a bundle of ``profile``.

    An unknown or missing level counts as ``strictly-confidential``: when in doubt, keep it in.
    """
    try:
        level = Confidentiality(confidentiality or "")
    except ValueError:
        level = Confidentiality.STRICTLY_CONFIDENTIAL
    if profile == "public":
        return level is Confidentiality.PUBLIC
    if profile == "restricted":
        return level is not Confidentiality.STRICTLY_CONFIDENTIAL
    return True


def select(
    case: Case,
    selection: Selection,
    profile: Profile,
    *,
    recipient: RecipientPublicKey | None = None,
) -> SelectionResult:
    """Choose the items and testimonies of a bundle and group them.

    Raises :class:`InputError` for an empty or contradictory selection, :class:`UnknownId` for
    an id the case does not have, and :class:`InputError` when an ``otp`` bundle would need a
    protected annex that is not sealed to ``recipient``.
    """
    _check_selection(selection)
    entities = _entities(case)
    named = [*selection.incidents, *selection.facilities, *selection.perpetrators]
    for kind, ids in (
        ("incident", selection.incidents),
        ("facility", selection.facilities),
        ("perpetrator", selection.perpetrators),
    ):
        for entity_id in ids:
            found = entities.get(entity_id)
            if found is None or found.kind != kind:
                raise UnknownId(kind, entity_id, f"list them with `evidence {kind} list`")
    targets = _links(case, entities)
    warnings: list[str] = []

    testimonies = _testimonies(case, targets)
    testimony_objects = {t.document for t in testimonies} | _annex_objects(case)
    recorded = _recorded_witnesses(case, testimonies)

    chosen: list[SelectedTestimony] = []
    for testimony in testimonies:
        if not _wanted(testimony.links, named, selection.all):
            continue
        reason = _consent_problem(testimony, profile)
        if not reason and not allowed_in_profile(
            testimony.document_row.get("confidentiality"), profile
        ):
            reason = f"its confidentiality does not allow a {profile} bundle"
        if reason:
            warnings.append(f"testimony of witness {testimony.witness_code} left out: {reason}")
            continue
        chosen.append(_with_annex(case, testimony, profile, recipient))
    # Recordings of a chosen testimony come with it, their own confidentiality and the consent
    # of every other witness they record permitting.
    chosen_codes = {t.witness_code for t in chosen}
    recordings = {sha for sha, codes in recorded.items() if codes & chosen_codes}
    rows = _rows(case, "SELECT * FROM items ORDER BY ingested_seq, sha256")
    withheld = _withheld(rows, testimonies, recorded, profile)

    items: list[SelectedItem] = []
    left_out = 0
    for row in rows:
        sha = str(row["sha256"])
        if sha in testimony_objects:
            continue  # a testimony's document or sealed annex: handled as a testimony
        links = targets.get(sha, ())
        if not (_wanted(links, named, selection.all) or sha in recordings):
            continue
        if sha in withheld:
            warnings.append(f"item {sha} left out: {withheld[sha]}")
            continue
        if not allowed_in_profile(row.get("confidentiality"), profile):
            left_out += 1
            continue
        items.append(SelectedItem(sha, row, links))
    if left_out:
        warnings.append(
            f"{left_out} selected item(s) left out: their confidentiality does not allow a "
            f"{profile} bundle"
        )

    if not items and not chosen:
        raise InputError(
            f"nothing to export: the selection ({selection.describe()}) holds no item or "
            f"testimony that the {profile} profile allows",
            "link items to the incident, facility or perpetrator with `evidence link`, "
            "or choose another profile",
        )
    order = [i.sha256 for i in items] + [t.document for t in chosen]
    subject_links = {i.sha256: i.links for i in items} | {t.document: t.links for t in chosen}
    groups = _group_tree(selection, entities, order, subject_links)
    return SelectionResult(
        selection=selection,
        profile=profile,
        items=tuple(items),
        testimonies=tuple(chosen),
        groups=groups,
        warnings=tuple(warnings),
    )


def _check_selection(selection: Selection) -> None:
    named = selection.incidents or selection.facilities or selection.perpetrators
    if selection.all and named:
        raise InputError(
            "--all cannot be combined with --incident, --facility or --perpetrator",
            "give either --all or the ids to export",
        )
    if not selection.all and not named:
        raise InputError(
            "nothing selected",
            "give --incident, --facility or --perpetrator (repeatable), or --all",
        )


def _wanted(links: Sequence[EntityRef], named: Sequence[str], everything: bool) -> bool:
    return everything or any(link.id in named for link in links)


def _rows(case: Case, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cursor = case.db.execute(query, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _entities(case: Case) -> dict[str, EntityRef]:
    found = {}
    for row in _rows(case, "SELECT id, kind, number, title, data FROM entities"):
        data = json.loads(row["data"]) if row["data"] else {}
        found[str(row["id"])] = EntityRef(
            kind=str(row["kind"]),
            id=str(row["id"]),
            title=str(row["title"] or row["id"]),
            number=int(row["number"] or 0),
            data=data if isinstance(data, dict) else {},
        )
    return found


def _sort_key(ref: EntityRef) -> tuple[int, int, str]:
    order = {"incident": 0, "facility": 1, "perpetrator": 2, "child": 3}
    return (order.get(ref.kind, 9), ref.number, ref.id)


def _links(case: Case, entities: dict[str, EntityRef]) -> dict[str, tuple[EntityRef, ...]]:
    """Each link subject's entities, sorted by kind and number."""
    by_subject: dict[str, set[str]] = {}
    for subject, target in case.db.execute("SELECT subject, target FROM links").fetchall():
        if target in entities:
            by_subject.setdefault(str(subject), set()).add(str(target))
    return {
        subject: tuple(sorted((entities[t] for t in found), key=_sort_key))
        for subject, found in by_subject.items()
    }


def _recorded_witnesses(
    case: Case, testimonies: Sequence[SelectedTestimony]
) -> dict[str, set[str]]:
    """The witness codes whose interview each item records.

    A testimony lists its recordings in its document, and ``testimony add`` links each of them
    to the witness code; either is enough to make an item a recording of that interview.
    """
    found: dict[str, set[str]] = {}
    for testimony in testimonies:
        listed = testimony.data.get("recordings")
        for sha in listed if isinstance(listed, list) else ():
            found.setdefault(str(sha), set()).add(testimony.witness_code)
    codes = {t.witness_code for t in testimonies}
    rows = case.db.execute(
        "SELECT subject, target FROM links WHERE target_kind = 'testimony'"
    ).fetchall()
    for subject, target in rows:
        if target in codes:
            found.setdefault(str(subject), set()).add(str(target))
    return found


def _withheld(
    rows: Sequence[dict[str, Any]],
    testimonies: Sequence[SelectedTestimony],
    recorded: dict[str, set[str]],
    profile: Profile,
) -> dict[str, str]:
    """Items that may not leave the case whatever they are linked to, each with the reason.

    Those are the recordings of a witness whose consent does not allow a bundle of ``profile``
    (that witness's refusal prevails over the consent of any other witness recorded with them)
    and the working copies made, at any remove, from such a recording or from the testimony's
    document. Reasons name witness codes and hashes only.
    """
    barred = {t.witness_code: why for t in testimonies if (why := _consent_problem(t, profile))}
    reasons: dict[str, str] = {}
    sources: dict[str, str] = {}  # what a working copy made from the item would be a copy of
    for sha, codes in recorded.items():
        refused = sorted(codes & barred.keys())
        if not refused:
            continue
        whose = " and ".join(f"witness {code} ({barred[code]})" for code in refused)
        sources[sha] = f"recording {sha} of the interview of {whose}"
        reasons[sha] = f"it is a recording of the interview of {whose}"
        consenting = sorted(codes - barred.keys())
        if consenting:
            others = "witness" if len(consenting) == 1 else "witnesses"
            reasons[sha] += (
                f"; it also records {others} {', '.join(consenting)}, whose consent allows it, "
                "but a withdrawal or lack of consent of any witness it records prevails"
            )
    for testimony in testimonies:
        code = testimony.witness_code
        if code in barred:
            for stored in (testimony.document, testimony.document_row.get("_annex_sha256")):
                if stored:
                    sources[str(stored)] = f"the testimony of witness {code} ({barred[code]})"
    if not sources:
        return reasons
    origin_of = {str(r["sha256"]): str(r["derived_from"]) for r in rows if r.get("derived_from")}
    for row in rows:
        sha = str(row["sha256"])
        origin = origin_of.get(sha)
        if origin is None or sha in reasons:
            continue
        root, seen = origin, {sha}
        while root not in sources and root in origin_of and root not in seen:
            seen.add(root)
            root = origin_of[root]
        if root not in sources:
            continue
        copy = f"a {_derivation_kind(row)} of"
        if root == origin:
            reasons[sha] = f"it is {copy} {sources[root]}"
        else:
            reasons[sha] = f"it is {copy} item {origin}, itself made from {sources[root]}"
    return reasons


def _derivation_kind(row: dict[str, Any]) -> str:
    try:
        derivation = json.loads(row.get("derivation") or "{}")
    except ValueError:
        derivation = {}
    kind = derivation.get("kind") if isinstance(derivation, dict) else None
    return str(kind) if kind else "working copy"


def _annex_objects(case: Case) -> set[str]:
    rows = case.db.execute(
        "SELECT annex_sha256 FROM testimonies WHERE annex_sha256 IS NOT NULL"
    ).fetchall()
    return {str(r[0]) for r in rows}


def _testimonies(case: Case, targets: dict[str, tuple[EntityRef, ...]]) -> list[SelectedTestimony]:
    found = []
    for row in _rows(case, "SELECT * FROM testimonies ORDER BY created_seq, witness_code"):
        code, document = str(row["witness_code"]), str(row["document"])
        docs = _rows(case, "SELECT * FROM items WHERE sha256 = ?", [document])
        if not docs:
            raise InputError(
                f"testimony of witness {code}: its document {document} is not in the catalog",
                "run `evidence verify` on the case",
            )
        # Links may name a testimony by its document or by its witness code.
        links = {*targets.get(document, ()), *targets.get(code, ())}
        data = _document_testimony(case, code, document)
        # Consent as it stands now (a withdrawal is a later event than the document).
        consent = json.loads(row["consent"]) if row["consent"] else {}
        data = data | {"consent": consent}
        found.append(
            SelectedTestimony(
                witness_code=code,
                document=document,
                seq=int(row["created_seq"]),
                data=data,
                document_row=docs[0] | {"_annex_sha256": row["annex_sha256"]},
                links=tuple(sorted(links, key=_sort_key)),
            )
        )
    return found


def _document_testimony(case: Case, code: str, document: str) -> dict[str, Any]:
    """The testimony as its stored document holds it (statement texts included)."""
    where = f"the document of witness {code} ({document})"
    try:
        loaded = json.loads(case.objects.path_for(document).read_bytes())
    except OSError as exc:
        raise InputError(
            f"{where} cannot be read from the object store: {exc.strerror}",
            "run `evidence verify` on the case",
        ) from None
    except ValueError:
        raise InputError(f"{where} is not JSON", "run `evidence verify` on the case") from None
    testimony = loaded.get("testimony") if isinstance(loaded, dict) else None
    if not isinstance(testimony, dict):
        raise InputError(f"{where} holds no testimony", "run `evidence verify` on the case")
    return testimony


def _consent_problem(testimony: SelectedTestimony, profile: Profile) -> str:
    consent = testimony.data.get("consent") or {}
    if consent.get("withdrawn_on"):
        return "consent was withdrawn"
    if consent.get("icc_proceedings") is not True:
        return "consent does not cover use in ICC proceedings"
    if profile == "public" and consent.get("anonymised_publication") is not True:
        return "consent does not cover anonymised publication (public profile)"
    return ""


def _with_annex(
    case: Case,
    testimony: SelectedTestimony,
    profile: Profile,
    recipient: RecipientPublicKey | None,
) -> SelectedTestimony:
    annex_sha = testimony.document_row.get("_annex_sha256")
    if profile != "otp" or not annex_sha:
        return testimony
    source = f"protected annex of witness {testimony.witness_code}"
    if recipient is None:
        raise InputError(
            f"the otp profile includes the {source}, but no --recipient was given",
            "name the recipient's public key file with --recipient KEYFILE",
        )
    try:
        envelope = case.objects.path_for(str(annex_sha)).read_bytes()
    except OSError as exc:
        raise InputError(
            f"the {source} ({annex_sha}) cannot be read from the object store: {exc.strerror}",
            "run `evidence verify` on the case",
        ) from None
    if recipient.recipient_id not in recipients_of(envelope, source=source):
        # Re-sealing would need a recipient's private key here; the annex is shipped only as
        # it was sealed, so the named recipient must be one it was sealed to.
        raise InputError(
            f"the {source} is not sealed to recipient {recipient.name} ({recipient.recipient_id})",
            "add the recipient to the case before recording the testimony, or choose a "
            "recipient the annex is sealed to",
        )
    return SelectedTestimony(
        witness_code=testimony.witness_code,
        document=testimony.document,
        seq=testimony.seq,
        data=testimony.data,
        document_row=testimony.document_row,
        links=testimony.links,
        annex=envelope,
    )


# --- the group tree -------------------------------------------------------------------------


def _group_tree(
    selection: Selection,
    entities: dict[str, EntityRef],
    order: Sequence[str],
    links: dict[str, tuple[EntityRef, ...]],
) -> tuple[GroupNode, ...]:
    """Build incident -> facility -> perpetrator groups over the selected subjects.

    Roots are the named incidents, then named facilities and perpetrators not already shown
    in full under an earlier root (with ``--all``: every linked entity, on the same rule).
    """
    ids_of = {s: {ref.id for ref in links.get(s, ())} for s in order}
    if selection.all:
        used = {ref.id for refs in links.values() for ref in refs}
        candidates = sorted(
            (entities[i] for i in used if entities[i].kind in GROUP_KINDS), key=_sort_key
        )
    else:
        candidates = [
            entities[i]
            for i in (*selection.incidents, *selection.facilities, *selection.perpetrators)
        ]
    roots: list[GroupNode] = []
    shown: dict[str, set[str]] = {}  # entity id -> subjects listed under it somewhere
    for entity in candidates:
        scope = [s for s in order if entity.id in ids_of[s]]
        if entity.kind != "incident" and roots and set(scope) <= shown.get(entity.id, set()):
            continue
        node = _node(entity, scope, entities, links, ids_of)
        roots.append(node)
        for group in node.walk():
            shown.setdefault(group.entity.id, set()).update(group.subjects)
    return tuple(roots)


def _node(
    entity: EntityRef,
    scope: Sequence[str],
    entities: dict[str, EntityRef],
    links: dict[str, tuple[EntityRef, ...]],
    ids_of: dict[str, set[str]],
) -> GroupNode:
    if entity.kind == "perpetrator":
        return GroupNode(entity, tuple(scope))
    facilities: list[GroupNode] = []
    perpetrators: list[GroupNode] = []
    if entity.kind == "incident":
        for facility in _linked(scope, links, "facility"):
            sub = [s for s in scope if facility.id in ids_of[s]]
            facilities.append(_node(facility, sub, entities, links, ids_of))
        # Perpetrators tied to the incident by evidence that names no facility hang directly
        # under the incident; the others appear under their facility.
        loose = [s for s in scope if not any(r.kind == "facility" for r in links.get(s, ()))]
        for perpetrator in _linked(loose, links, "perpetrator"):
            sub = [s for s in scope if perpetrator.id in ids_of[s]]
            perpetrators.append(GroupNode(perpetrator, tuple(sub)))
    elif entity.kind == "facility":
        for perpetrator in _linked(scope, links, "perpetrator"):
            sub = [s for s in scope if perpetrator.id in ids_of[s]]
            perpetrators.append(GroupNode(perpetrator, tuple(sub)))
    return GroupNode(entity, tuple(scope), (*facilities, *perpetrators))


def _linked(
    subjects: Sequence[str], links: dict[str, tuple[EntityRef, ...]], kind: str
) -> list[EntityRef]:
    found = {ref.id: ref for s in subjects for ref in links.get(s, ()) if ref.kind == kind}
    return sorted(found.values(), key=_sort_key)
