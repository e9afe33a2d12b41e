"""Custody log events and the leaves that carry them.

An :class:`Event` is signed once, when it is appended: the leaf bytes are a signed note whose
text is the RFC 8785 canonical JSON of the event and a newline, signed by the actor's key. The
leaf is stored verbatim and everything later (signature checks, Merkle hashes) works on those
stored bytes; an event is never re-serialised to check a signature.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from chain_of_custody.canonical import canonical_json, canonical_json_if_plain
from chain_of_custody.errors import Finding, InputError, VerificationError
from chain_of_custody.keys import Signer, VerifierKey
from chain_of_custody.merkle import leaf_hash
from chain_of_custody.note import Note, NoteSignature, parse_note, sign_note, verified_signers

__all__ = [
    "EVENT_FORMAT_VERSION",
    "KEY_ENROLLED",
    "KEY_REVOKED",
    "Event",
    "EventDraft",
    "Leaf",
    "format_event_time",
    "make_leaf",
    "parse_event_time",
    "parse_leaf",
    "verify_leaf_signature",
]

#: The ``v`` of events written by this version of the toolkit.
EVENT_FORMAT_VERSION = 1
#: Action of the event that enrols a key; subject is the key id.
KEY_ENROLLED = "key.enrolled"
#: Action of the event that revokes a key; subject is the key id.
KEY_REVOKED = "key.revoked"

_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def format_event_time(moment: datetime) -> str:
    """An aware datetime as the event time form ``2026-11-24T03:20:00.123456Z`` (UTC)."""
    if moment.tzinfo is None:
        raise InputError("event time must carry a time zone", hint="use datetime.now(UTC)")
    # isoformat writes what strftime("%Y-%m-%dT%H:%M:%S.%fZ") does, several times faster.
    if moment.tzinfo is UTC:
        return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # less "+00:00"
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_event_time(text: str) -> datetime:
    """Parse an RFC 3339 UTC time with a ``Z`` (fraction optional, at most microseconds)."""
    if not _TIME.fullmatch(text):
        raise ValueError(f"time {text!r} is not RFC 3339 UTC such as 2026-11-24T03:20:00.123456Z")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


class EventDraft(BaseModel):
    """What a caller asks to record; the store fills in seq, time, case, actor and prev."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    action: str
    subject: str
    data: dict[str, Any]

    @field_validator("action")
    @classmethod
    def _action_not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("action must not be empty")
        return value


class Event(BaseModel):
    """One entry of the custody log, exactly as signed (SPEC section 4)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    v: int = EVENT_FORMAT_VERSION
    seq: int
    time: str
    case: str
    action: str
    actor: str
    subject: str
    data: dict[str, Any]
    prev: str

    @field_validator("v")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != EVENT_FORMAT_VERSION:
            raise ValueError(f"event format version {value} is not supported")
        return value

    @field_validator("seq")
    @classmethod
    def _seq_not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("seq must be 0 or more")
        return value

    @field_validator("time")
    @classmethod
    def _time_is_rfc3339_utc(cls, value: str) -> str:
        parse_event_time(value)
        return value

    @field_validator("case", "action", "actor")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _prev_matches_seq(self) -> Event:
        if self.seq == 0:
            if self.prev != "":
                raise ValueError("prev must be empty for the first event (seq 0)")
        elif not _HEX64.fullmatch(self.prev):
            raise ValueError(
                f"prev of seq {self.seq} must be the 64 lowercase hex digits of the previous "
                "leaf hash"
            )
        return self

    @property
    def moment(self) -> datetime:
        """The event time as an aware datetime."""
        return parse_event_time(self.time)


_EVENT_FIELDS = tuple(Event.model_fields)


def make_leaf(event: Event, signer: Signer) -> bytes:
    """The leaf bytes of ``event``: its canonical JSON and a newline, signed by ``signer``.

    The signer must be the event's actor.
    """
    if event.actor != signer.key_id:
        raise InputError(
            f"event seq {event.seq} names actor {event.actor!r} but is signed by {signer.key_id!r}",
            hint="sign an event with the key named as its actor",
        )
    # The fields as they are, without a model dump (a deep copy of ``data``): for plain JSON
    # values the dump is that same mapping. Anything else takes the model's own path.
    fields = {name: getattr(event, name) for name in _EVENT_FIELDS}
    text = canonical_json_if_plain(fields) or canonical_json(event)
    return sign_note(text + b"\n", [signer])


@dataclass(frozen=True)
class Leaf:
    """Stored leaf bytes with the event and note parsed from them."""

    raw: bytes
    event: Event
    note: Note

    @property
    def leaf_hash(self) -> bytes:
        """RFC 9162 leaf hash of the stored bytes."""
        return leaf_hash(self.raw)

    def signatures_by(self, key: VerifierKey) -> list[NoteSignature]:
        """The signature lines that name ``key`` (name and key hash)."""
        return [sig for sig in self.note.signatures if sig.is_by(key)]


def parse_leaf(raw: bytes) -> Leaf:
    """Parse stored leaf bytes strictly; raise :class:`InputError` naming what is wrong.

    Checks the signed-note form, that the text is one line of canonical JSON and that it is a
    valid event. Signatures are checked by :func:`verify_leaf_signature`.
    """
    note = parse_note(raw)
    text = note.text
    if text.count(b"\n") != 1:
        raise InputError("leaf text is not a single line of JSON")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_refuse_duplicate_keys,
            parse_float=_refuse_float,
            parse_constant=_refuse_float,
        )
    except (ValueError, RecursionError) as exc:
        raise InputError(f"leaf text is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InputError("leaf text is not a JSON object")
    # The text must be exactly the canonical form (SPEC section 4); comparing the parsed
    # value's canonical bytes to the stored text refuses any other spelling of the same event.
    if canonical_json(value) + b"\n" != text:
        raise InputError("leaf text is not RFC 8785 canonical JSON")
    try:
        event = Event.model_validate(value)
    except ValidationError as exc:
        raise InputError(f"leaf holds an invalid event: {_describe(exc)}") from exc
    return Leaf(raw, event, note)


def verify_leaf_signature(leaf: Leaf, key: VerifierKey) -> None:
    """Check that ``leaf`` is signed by ``key`` and that ``key`` is the event's actor.

    Raises :class:`VerificationError` with a finding naming the event seq.
    """
    seq = leaf.event.seq
    if leaf.event.actor != key.key_id:
        raise VerificationError(
            Finding(
                "actor-mismatch",
                f"event names actor {leaf.event.actor}, not {key.key_id}",
                seq=seq,
            )
        )
    try:
        ok = bool(verified_signers(leaf.note, [key]))
    except VerificationError as exc:
        raise VerificationError(
            Finding("bad-signature", f"signature by {key.key_id} does not verify", seq=seq),
            hint="the event was altered after it was signed, or the signature is forged",
        ) from exc
    if not ok:
        raise VerificationError(
            Finding("signature-missing", f"event carries no signature by {key.key_id}", seq=seq),
            hint="every event must be signed by its actor",
        )


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _refuse_float(text: str) -> Any:
    raise ValueError(f"number {text} is not an integer")


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(item) for item in error["loc"]) or "event"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)
