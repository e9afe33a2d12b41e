"""The bundle model: everything a submission bundle shows, frozen and validated when built.

The selection (``exports.selection``) reads the case and fills a :class:`BundleContent`; the
writers in this package (``bag``, ``render``, ``ecourt``, ``casejson``) only read it. Nothing
here touches the case, the catalog or a key: the model is plain data, so the writers can be
tested with a fictional bundle and the same content always gives the same bytes.

Groups form a tree incident -> facility -> alleged perpetrator. Any level may be a root (a
bundle selected by facility has facility roots), a perpetrator may hang directly under an
incident, and each group lists the ERNs of its items and testimonies. An item linked to several
groups is listed in each and stored once; an item in no group is shown in its own section.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from chain_of_custody import InputError, VerifierKey, parse_note

Profile = Literal["otp", "restricted", "public"]
LinkKind = Literal["incident", "facility", "perpetrator", "child", "item", "testimony"]

_ERN_RE = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)*")
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z")
_KEY_ID_RE = re.compile(r"[^\s+]+\+[0-9a-f]{8}")
# Characters a bag file name keeps besides letters, marks and digits of any script. Everything
# else (space, punctuation, symbols, controls, and what Windows or a zip reader refuses or
# reads as a path: < > : " / \ | ? *) becomes "_", so that a name needs no quoting in a
# manifest line or a shell and opens on Windows, macOS and Linux alike.
_NAME_PUNCTUATION = frozenset("._-")
# Invisible characters that are not of category Cf (format: zero-width spaces and joiners,
# bidirectional marks, embeddings, overrides and isolates, the byte order mark, soft hyphens):
# variation selectors, the combining grapheme joiner and the Hangul fillers. They are removed,
# not replaced, like the Cf characters: the name keeps what a reader sees and nothing that
# could hide or reorder part of it (an extension disguised by a right-to-left override).
_INVISIBLE = frozenset(
    {0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0}
    | set(range(0x180B, 0x1810))
    | set(range(0xFE00, 0xFE10))
    | set(range(0xE0100, 0xE01F0))
)
# UTF-8 bytes of a whole bag file name ``<ERN>_<name>``: file systems allow 255 bytes per name
# (a Cyrillic letter takes two); the margin leaves room for the folders of the zip entry.
MAX_NAME_BYTES = 200
_MAX_EXTENSION_CHARS = 16


def _check_ern(value: str) -> str:
    if len(value) > 64 or not _ERN_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an ERN: use upper-case letters, digits and single hyphens, "
            "e.g. UKR-DEP-000012"
        )
    return value


def _check_hex(length: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) != length or any(c not in "0123456789abcdef" for c in value):
            raise ValueError(f"expected {length} lower-case hex digits, got {value!r}")
        return value

    return AfterValidator(check)


def _check_time(value: str) -> str:
    if not _TIME_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not an RFC 3339 UTC time such as 2026-11-24T03:20:00Z")
    return value


def _check_bag_name(value: str) -> str:
    if (
        not value
        or value.startswith(".")
        or value.endswith(".")
        or any(_name_char(ch) != ch for ch in value)
        or not unicodedata.is_normalized("NFC", value)
        or len(value.encode()) > MAX_NAME_BYTES
    ):
        raise ValueError(
            f"{value!r} is not a safe bag file name: build it with exports.model.safe_file_name"
        )
    return value


def _check_key_id(value: str) -> str:
    if not _KEY_ID_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a key id of the form <name>+<8 hex digits>")
    return value


Ern = Annotated[str, AfterValidator(_check_ern)]
Sha256Hex = Annotated[str, _check_hex(64)]
Sha512Hex = Annotated[str, _check_hex(128)]
Rfc3339 = Annotated[str, AfterValidator(_check_time)]
BagName = Annotated[str, AfterValidator(_check_bag_name)]
KeyId = Annotated[str, AfterValidator(_check_key_id)]


def parse_time(value: str) -> datetime:
    """The aware UTC datetime of an RFC 3339 ``...Z`` string (nanoseconds are truncated)."""
    _check_time(value)
    main, _, fraction = value[:-1].partition(".")
    micro = int((fraction + "000000")[:6]) if fraction else 0
    return datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(microsecond=micro, tzinfo=UTC)


def _name_char(char: str) -> str:
    """What ``char`` becomes in a bag file name: itself, ``""`` (removed) or ``"_"``."""
    if char in _NAME_PUNCTUATION:
        return char
    category = unicodedata.category(char)
    if category == "Cf" or ord(char) in _INVISIBLE:
        return ""
    if category[0] in "LMN":
        return char
    return "_"


def _without_leading(text: str, chars: str = "") -> str:
    """``text`` without the ``chars`` and the combining marks at its start (a mark there would
    sit on the "_" or "." written before it)."""
    start = 0
    while start < len(text) and (
        text[start] in chars or unicodedata.category(text[start]).startswith("M")
    ):
        start += 1
    return text[start:]


def _cut_to_bytes(text: str, budget: int) -> str:
    """The longest start of ``text`` within ``budget`` UTF-8 bytes that splits no character
    and separates no letter from the marks combined with it."""
    if len(text.encode()) <= budget:
        return text
    cut, used = 0, 0
    while cut < len(text) and used + len(text[cut].encode()) <= budget:
        used += len(text[cut].encode())
        cut += 1
    while cut and unicodedata.category(text[cut]).startswith("M"):
        cut -= 1
    return text[:cut]


def safe_file_name(ern: str, original_name: str) -> str:
    """The bag file name ``<ERN>_<safe name>`` of an original.

    The original name stays readable in any script (``Наказ_про_переміщення.pdf`` is kept as
    it is) and becomes portable: NFC-normalised; only its last path component kept; invisible
    characters (zero-width, bidirectional controls, variation selectors) removed; each run of
    anything but letters, marks, digits, ``.``, ``_`` and ``-`` (spaces, controls, symbols and
    the characters Windows and zip readers refuse, ``< > : " / \\ | ? *``) replaced by one
    ``_``; dots at its start and dots and underscores at its end removed; and shortened,
    keeping the extension and whole characters, so that the whole name stays within
    :data:`MAX_NAME_BYTES` bytes of UTF-8. Names in one bundle never collide: each starts
    with its record's ERN, and an ERN never holds ``_``.
    """
    _check_ern(ern)
    visible = "".join(char for char in original_name if _name_char(char))
    name = unicodedata.normalize("NFC", visible).replace("\\", "/").rsplit("/", 1)[-1]
    pieces: list[str] = []
    replacing = False
    for char in name:
        kept = _name_char(char)
        replaced = kept != char
        if not (replaced and replacing):
            pieces.append(kept)
        replacing = replaced
    name = "".join(pieces)
    name = _without_leading(name, ".").rstrip("._") or "file"
    stem, dot, ext = name.rpartition(".")
    ext = _without_leading(ext)
    if not dot or not stem or not ext or len(ext) > _MAX_EXTENSION_CHARS:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    room = MAX_NAME_BYTES - len(ern) - 1 - len(suffix.encode())
    stem = _cut_to_bytes(stem, room).rstrip("._") or "file"
    return unicodedata.normalize("NFC", f"{ern}_{stem}{suffix}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


def _id_set(ids: tuple[str, ...]) -> tuple[str, ...]:
    # The order and repetition of the options given change nothing in the bundle: the same
    # selection gives the same bytes (SPEC section 7). Ids in number order (INC-0002 before
    # INC-0010 before INC-10000).
    return tuple(sorted(set(ids), key=lambda ident: (len(ident), ident)))


IdSet = Annotated[tuple[str, ...], AfterValidator(_id_set)]


class Selection(_Frozen):
    """What the bundle was asked to contain: the ids given, or everything."""

    incidents: IdSet = ()
    facilities: IdSet = ()
    perpetrators: IdSet = ()
    all: bool = False

    def describe(self) -> str:
        """A one-line description for bag-info and the index page."""
        if self.all:
            return "all items of the case"
        parts = [
            f"{label} {', '.join(ids)}"
            for label, ids in (
                ("incidents", self.incidents),
                ("facilities", self.facilities),
                ("alleged perpetrators", self.perpetrators),
            )
            if ids
        ]
        return "; ".join(parts) or "no selection"


class BundleInfo(_Frozen):
    """Who made the bundle, when, from which case and log state, and for whom."""

    bundle_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    case_id: str = Field(min_length=1)
    case_title: str
    organisation: str = Field(min_length=1)
    profile: Profile
    created: Rfc3339
    selection: Selection
    checkpoint_origin: str = Field(min_length=1)
    checkpoint_size: int = Field(ge=1)
    checkpoint_root: Sha256Hex
    exporter_key_id: KeyId
    contact_name: str | None = None
    contact_email: str | None = None
    software: str = "evidence-locker"


class CustodyEntry(_Frozen):
    """One line of an item's custody history, taken from its log event."""

    seq: int = Field(ge=0)
    time: Rfc3339
    action: str = Field(min_length=1)
    actor: str = Field(min_length=1)
    summary: str = ""


class LinkedEntity(_Frozen):
    """An incident, facility, perpetrator or child an item or testimony is linked to."""

    kind: LinkKind
    id: str = Field(min_length=1)
    title: str


class LogLeaf(_Frozen):
    """The exact leaf bytes of one custody-log event, with its index in the log and its proof.

    ``proof_text`` is the proof file (:func:`chain_of_custody.format_proof`) of the leaf against
    the bundle's checkpoint: a signature shows who made the event, only the proof shows that it
    is in the log the checkpoint commits to. Written as ``data/custody/event-proofs/<seq>.proof``
    beside ``data/custody/events/<seq>.leaf``.
    """

    seq: int = Field(ge=0)
    leaf: bytes = Field(min_length=1)
    proof_text: str = Field(min_length=1)


class VerifierKeyText(_Frozen):
    """A verifier key in its two text forms: the signed-note line and PEM."""

    key_id: KeyId
    note_text: str = Field(min_length=1)
    pem: str = Field(min_length=1)

    @model_validator(mode="after")
    def _note_matches_id(self) -> VerifierKeyText:
        if not self.note_text.startswith(self.key_id + "+"):
            raise ValueError(f"verifier key note text does not start with {self.key_id}+")
        return self

    @property
    def file_stem(self) -> str:
        """The file name (without extension) of this key in ``data/custody/keys/``."""
        return self.key_id.replace("+", "_")

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the PEM's DER form (:attr:`VerifierKey.fingerprint`), in hex."""
        name = self.key_id.partition("+")[0]
        return VerifierKey.from_pem(name, self.pem.encode("ascii")).fingerprint


def _seq_ranges(seqs: tuple[int, ...]) -> str:
    """``0-3, 7, 9-12`` for the sorted event numbers ``seqs``."""
    runs: list[list[int]] = []
    for seq in seqs:
        if runs and seq == runs[-1][-1] + 1:
            runs[-1].append(seq)
        else:
            runs.append([seq])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


@dataclass(frozen=True)
class KeyRole:
    """A key a bundle relies on and what it signed there (see :meth:`BundleContent.key_roles`).

    An audit needs the keys that sign the tag manifest and the checkpoint among the keys it
    trusts; a custody event only needs the key that signed it, which the bundle carries.
    """

    key: VerifierKeyText
    tag_manifest: bool = False
    checkpoint: bool = False
    events: tuple[int, ...] = ()

    @property
    def must_be_trusted(self) -> bool:
        """True for the keys an auditor passes with ``--trust``."""
        return self.tag_manifest or self.checkpoint

    def uses(self) -> str:
        """What the key signed, for a person: ``the tag manifest; custody events 0-3, 7``."""
        parts = []
        if self.tag_manifest:
            parts.append("the tag manifest (the exporting key)")
        if self.checkpoint:
            parts.append("the checkpoint")
        if self.events:
            label = "custody event" if len(self.events) == 1 else "custody events"
            parts.append(f"{label} {_seq_ranges(self.events)}")
        return "; ".join(parts)


class BundleItem(_Frozen):
    """One original file in the bundle, with everything the index and metadata show.

    ``erns`` holds one ERN per page for a paged document (the stamped copy carries them) and a
    single ERN otherwise; ``ern`` and ``ern_end`` are its first and last.
    """

    item_id: Sha256Hex
    erns: tuple[Ern, ...] = Field(min_length=1)
    title: str
    date: str | None = None
    mime: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    source: str = ""
    collector: str = ""
    author: str = ""
    language: str = ""
    confidentiality: str = Field(min_length=1)
    sha256: Sha256Hex
    sha512: Sha512Hex
    size: int = Field(ge=0)
    pages: int | None = Field(default=None, ge=1)
    duration: str | None = None
    description: str = ""
    original_path: Path
    bag_name: BagName
    stamped: bool = False
    linked: tuple[LinkedEntity, ...] = ()
    related_erns: tuple[Ern, ...] = ()
    derived_from: Ern | None = None
    custody: tuple[CustodyEntry, ...] = ()
    leaf_seq: int = Field(ge=0)
    proof_text: str = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> BundleItem:
        if not self.bag_name.startswith(self.ern + "_"):
            raise ValueError(f"bag_name {self.bag_name!r} must start with the ERN {self.ern}_")
        if self.stamped and self.mime != "application/pdf":
            raise ValueError(f"item {self.ern}: only PDFs get a stamped copy, not {self.mime}")
        if self.stamped and self.pages is not None and self.pages != len(self.erns):
            raise ValueError(f"item {self.ern}: {self.pages} pages but {len(self.erns)} page ERNs")
        return self

    @property
    def ern(self) -> str:
        """The first (or only) ERN."""
        return self.erns[0]

    @property
    def ern_end(self) -> str:
        """The last ERN of the range (the same as ``ern`` for a one-ERN item)."""
        return self.erns[-1]

    @property
    def ern_range(self) -> str:
        """``ERN`` or ``FIRST-LAST`` as e-Court lists it."""
        return self.ern if len(self.erns) == 1 else f"{self.ern}-{self.ern_end}"


class Statement(_Frozen):
    """A statement text in one language."""

    language: str = Field(min_length=1)
    text: str


class Translation(_Frozen):
    """A translation of a statement, with who made it."""

    language: str = Field(min_length=1)
    text: str
    translator: str = ""


class BundleTestimony(_Frozen):
    """A testimony, by witness code only; identity details travel only in the sealed annex.

    ``document_path`` is the canonical statement document included in ``data/originals/``
    under ``bag_name``. ``protected_annex`` is the envelope encrypted to the recipient; it is
    allowed only in an ``otp`` bundle.
    """

    witness_code: str = Field(min_length=1)
    ern: Ern
    category: str = Field(min_length=1)
    interview_date: str | None = None
    languages: tuple[str, ...] = ()
    statement: Statement
    translations: tuple[Translation, ...] = ()
    consent: str = ""
    confidentiality: str = Field(min_length=1)
    linked: tuple[LinkedEntity, ...] = ()
    related_erns: tuple[Ern, ...] = ()
    custody: tuple[CustodyEntry, ...] = ()
    mime: str = "application/json"
    document_path: Path
    bag_name: BagName
    sha256: Sha256Hex
    sha512: Sha512Hex
    size: int = Field(ge=0)
    leaf_seq: int = Field(ge=0)
    proof_text: str = Field(min_length=1)
    protected_annex: bytes | None = None

    @model_validator(mode="after")
    def _consistent(self) -> BundleTestimony:
        if not self.bag_name.startswith(self.ern + "_"):
            raise ValueError(f"bag_name {self.bag_name!r} must start with the ERN {self.ern}_")
        return self

    @property
    def title(self) -> str:
        """The title used in lists: the statement of the witness code."""
        return f"Statement of witness {self.witness_code}"


class _Group(_Frozen):
    id: str = Field(min_length=1)
    title: str
    description: str = ""
    item_erns: tuple[Ern, ...] = ()
    testimony_erns: tuple[Ern, ...] = ()

    def details(self) -> tuple[tuple[str, str], ...]:
        """Label and value pairs shown under the group heading (empty values left out)."""
        return ()

    def children(self) -> tuple[GroupFacility | GroupPerpetrator, ...]:
        """The groups one level down."""
        return ()

    def walk(self) -> Iterator[GroupIncident | GroupFacility | GroupPerpetrator]:
        """This group and every group below it, depth first."""
        yield self  # type: ignore[misc]
        for child in self.children():
            yield from child.walk()


def _pairs(*pairs: tuple[str, str | None]) -> tuple[tuple[str, str], ...]:
    return tuple((label, value) for label, value in pairs if value)


class GroupPerpetrator(_Group):
    """An alleged perpetrator (person, unit or organisation) and the evidence under it."""

    kind: Literal["perpetrator"] = "perpetrator"
    role: str = ""
    affiliation: str = ""
    liability: str = ""

    def details(self) -> tuple[tuple[str, str], ...]:
        """Role, affiliation and mode of liability."""
        return _pairs(
            ("Role", self.role), ("Affiliation", self.affiliation), ("Liability", self.liability)
        )


class GroupFacility(_Group):
    """A facility and the evidence under it, with the perpetrators linked to it."""

    kind: Literal["facility"] = "facility"
    facility_type: str = ""
    place: str = ""
    dates: str = ""
    perpetrators: tuple[GroupPerpetrator, ...] = ()

    def details(self) -> tuple[tuple[str, str], ...]:
        """Type, place and dates of use."""
        return _pairs(("Type", self.facility_type), ("Place", self.place), ("Dates", self.dates))

    def children(self) -> tuple[GroupFacility | GroupPerpetrator, ...]:
        """The perpetrators linked to this facility."""
        return self.perpetrators


class GroupIncident(_Group):
    """An incident: its facilities, perpetrators not tied to a facility, and its evidence."""

    kind: Literal["incident"] = "incident"
    start_date: str = ""
    end_date: str = ""
    place: str = ""
    crimes: tuple[str, ...] = ()
    facilities: tuple[GroupFacility, ...] = ()
    perpetrators: tuple[GroupPerpetrator, ...] = ()

    def details(self) -> tuple[tuple[str, str], ...]:
        """Dates, place and alleged crimes."""
        dates = self.start_date
        if self.end_date and self.end_date != self.start_date:
            dates = f"{self.start_date} – {self.end_date}"
        return _pairs(("Dates", dates), ("Place", self.place), ("Crimes", "; ".join(self.crimes)))

    def children(self) -> tuple[GroupFacility | GroupPerpetrator, ...]:
        """Facilities first, then perpetrators linked to the incident directly."""
        return (*self.facilities, *self.perpetrators)


Group = GroupIncident | GroupFacility | GroupPerpetrator


class ConsistencyProofFile(_Frozen):
    """A consistency proof from an earlier log size to the bundle's checkpoint size.

    It lets whoever holds an earlier checkpoint of ``old_size`` (an earlier bundle's, say) check
    that the bundle's log extends it; the roots come from the two signed checkpoints, never
    from here. Written as ``data/custody/consistency/<old_size>.proof``.
    """

    old_size: int = Field(ge=1)
    new_size: int = Field(ge=2)
    hashes: tuple[bytes, ...] = Field(max_length=128)

    @model_validator(mode="after")
    def _consistent(self) -> ConsistencyProofFile:
        if self.old_size >= self.new_size:
            raise ValueError(
                f"a consistency proof goes from a smaller size to a larger one, not "
                f"{self.old_size} to {self.new_size}"
            )
        if any(len(h) != 32 for h in self.hashes):
            raise ValueError("each consistency proof hash is 32 bytes (SHA-256)")
        return self

    @property
    def href(self) -> str:
        """Path of the proof file relative to ``data/`` (for the index page's link)."""
        return consistency_href(self)


class BundleContent(_Frozen):
    """Everything one bundle holds; the writers produce its files from this alone.

    ``custody_events`` are every log event the bundle carries, each with its inclusion proof
    against ``checkpoint_note``; ``consistency_proofs`` go from earlier log sizes (smallest
    first) to the checkpoint's size.
    """

    info: BundleInfo
    items: tuple[BundleItem, ...] = ()
    testimonies: tuple[BundleTestimony, ...] = ()
    groups: tuple[Group, ...] = ()
    custody_events: tuple[LogLeaf, ...] = Field(min_length=1)
    verifier_keys: tuple[VerifierKeyText, ...] = Field(min_length=1)
    checkpoint_note: bytes = Field(min_length=1)
    consistency_proofs: tuple[ConsistencyProofFile, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> BundleContent:
        erns: set[str] = set()
        names: set[str] = set()
        for record in self.records():
            record_erns = record.erns if isinstance(record, BundleItem) else (record.ern,)
            for ern in record_erns:
                if ern in erns:
                    raise ValueError(f"ERN {ern} is used twice")
                erns.add(ern)
            # Case-insensitive file systems (Windows, macOS) would hold the two as one file.
            folded = record.bag_name.casefold()
            if folded in names:
                raise ValueError(f"bag file name {record.bag_name} is used twice")
            names.add(folded)
        first_erns = {item.ern for item in self.items} | {t.ern for t in self.testimonies}
        seqs = {leaf.seq for leaf in self.custody_events}
        if len(seqs) != len(self.custody_events):
            raise ValueError("custody_events holds the same seq twice")
        for record in self.records():
            if record.leaf_seq not in seqs:
                raise ValueError(f"{record.ern}: leaf {record.leaf_seq} is not in custody_events")
            for other in record.related_erns:
                if other not in first_erns:
                    raise ValueError(f"{record.ern}: related ERN {other} is not in the bundle")
        for testimony in self.testimonies:
            if testimony.protected_annex is not None and self.info.profile != "otp":
                raise ValueError(
                    f"testimony {testimony.ern}: a protected annex is allowed only in an otp "
                    f"bundle, not {self.info.profile}"
                )
        for root in self.groups:
            for group in root.walk():
                for ern in (*group.item_erns, *group.testimony_erns):
                    if ern not in first_erns:
                        raise ValueError(
                            f"group {group.id} lists {ern}, which is not in the bundle"
                        )
        old_sizes = [proof.old_size for proof in self.consistency_proofs]
        if old_sizes != sorted(set(old_sizes)):
            raise ValueError("consistency_proofs must be ordered by old_size, each size once")
        for proof in self.consistency_proofs:
            if proof.new_size != self.info.checkpoint_size:
                raise ValueError(
                    f"the consistency proof from size {proof.old_size} leads to size "
                    f"{proof.new_size}, not to the checkpoint size {self.info.checkpoint_size}"
                )
        if self.info.exporter_key_id not in {key.key_id for key in self.verifier_keys}:
            raise ValueError(
                f"the exporter key {self.info.exporter_key_id} is not among the verifier keys"
            )
        # An auditor checks every signature in the bundle with the keys it carries (or keys
        # they trust): a signer missing from data/custody/keys/ would leave that unprovable.
        carried = {key.key_id for key in self.verifier_keys}
        for key_id in self.checkpoint_signers():
            if key_id not in carried:
                raise ValueError(f"the checkpoint signer {key_id} is not among the verifier keys")
        for key_id, signed in self.event_signers().items():
            if key_id not in carried:
                raise ValueError(
                    f"custody event {signed[0]} is signed by {key_id}, which is not among the "
                    "verifier keys"
                )
        return self

    def checkpoint_signers(self) -> tuple[str, ...]:
        """The key ids that signed the checkpoint, in the order of its signature lines."""
        return _note_signers(self.checkpoint_note, "checkpoint_note")

    def event_signers(self) -> dict[str, tuple[int, ...]]:
        """The key id that signed each custody event, with the seqs it signed (ascending)."""
        signed: dict[str, list[int]] = {}
        for leaf in sorted(self.custody_events, key=lambda one: one.seq):
            for key_id in _note_signers(leaf.leaf, f"custody event {leaf.seq}"):
                signed.setdefault(key_id, []).append(leaf.seq)
        return {key_id: tuple(seqs) for key_id, seqs in signed.items()}

    def key_roles(self) -> tuple[KeyRole, ...]:
        """Every key the bundle relies on and what it signed: the exporting key first, then
        the checkpoint's signers, then the other signers of custody events by first event."""
        checkpoint = set(self.checkpoint_signers())
        events = self.event_signers()
        keys = {key.key_id: key for key in self.verifier_keys}
        order = [
            self.info.exporter_key_id,
            *self.checkpoint_signers(),
            *sorted(events, key=lambda key_id: events[key_id][0]),
        ]
        return tuple(
            KeyRole(
                key=keys[key_id],
                tag_manifest=key_id == self.info.exporter_key_id,
                checkpoint=key_id in checkpoint,
                events=events.get(key_id, ()),
            )
            for key_id in dict.fromkeys(order)
        )

    def records(self) -> tuple[BundleItem | BundleTestimony, ...]:
        """Items, then testimonies: every record that has an original, a leaf and a proof."""
        return (*self.items, *self.testimonies)

    def item_by_ern(self) -> dict[str, BundleItem]:
        """Items keyed by their first ERN."""
        return {item.ern: item for item in self.items}

    def testimony_by_ern(self) -> dict[str, BundleTestimony]:
        """Testimonies keyed by ERN."""
        return {t.ern: t for t in self.testimonies}

    def ungrouped_erns(self) -> tuple[str, ...]:
        """ERNs of items and testimonies that no group lists, in bundle order."""
        grouped: set[str] = set()
        for root in self.groups:
            for group in root.walk():
                grouped.update(group.item_erns, group.testimony_erns)
        return tuple(
            ern
            for ern in (*(i.ern for i in self.items), *(t.ern for t in self.testimonies))
            if ern not in grouped
        )

    def exporter_key(self) -> VerifierKeyText:
        """The verifier key of the exporting key (checked to be present when built)."""
        return next(k for k in self.verifier_keys if k.key_id == self.info.exporter_key_id)


def _note_signers(note: bytes, what: str) -> tuple[str, ...]:
    """The key ids (``<name>+<hex key hash>``) on the signature lines of a signed note."""
    try:
        signatures = parse_note(note).signatures
    except InputError as exc:
        raise ValueError(f"{what} is not a signed note: {exc.message}") from None
    return tuple(dict.fromkeys(f"{sig.name}+{sig.key_hash.hex()}" for sig in signatures))


# Where things live inside ``data/`` of a bag; the writers and the index page share these so
# that every link in the index points at a file the bag really holds.
ORIGINALS_DIR = "originals"
STAMPED_DIR = "stamped"
PROTECTED_DIR = "protected"
METADATA_DIR = "metadata"
CUSTODY_DIR = "custody"


def original_href(record: BundleItem | BundleTestimony) -> str:
    """Path of an original relative to ``data/``."""
    return f"{ORIGINALS_DIR}/{record.bag_name}"


def stamped_href(item: BundleItem) -> str:
    """Path of a stamped copy relative to ``data/``."""
    return f"{STAMPED_DIR}/{item.bag_name}"


def proof_href(record: BundleItem | BundleTestimony) -> str:
    """Path of a proof file relative to ``data/``."""
    return f"{CUSTODY_DIR}/proofs/{record.ern}.proof"


def leaf_href(seq: int) -> str:
    """Path of a leaf file relative to ``data/``."""
    return f"{CUSTODY_DIR}/events/{seq:012d}.leaf"


def event_proof_href(seq: int) -> str:
    """Path of the proof file of an event relative to ``data/``: named like its leaf file."""
    return f"{CUSTODY_DIR}/event-proofs/{seq:012d}.proof"


def annex_href(testimony: BundleTestimony) -> str:
    """Path of a sealed protected annex relative to ``data/``."""
    return f"{PROTECTED_DIR}/{testimony.ern}.sealed"


def consistency_href(proof: ConsistencyProofFile) -> str:
    """Path of a consistency proof file relative to ``data/``."""
    return f"{CUSTODY_DIR}/consistency/{proof.old_size}.proof"


def key_href(key: VerifierKeyText, suffix: Literal["pub", "pem"]) -> str:
    """Path of a verifier key file relative to ``data/``."""
    return f"{CUSTODY_DIR}/keys/{key.file_stem}.{suffix}"
