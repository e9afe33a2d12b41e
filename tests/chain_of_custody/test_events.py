"""Events and leaves: the signed, canonical form of each custody log entry."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from chain_of_custody.canonical import MAX_SAFE_INTEGER, canonical_json
from chain_of_custody.errors import InputError, VerificationError
from chain_of_custody.events import (
    Event,
    EventDraft,
    format_event_time,
    make_leaf,
    parse_event_time,
    parse_leaf,
    verify_leaf_signature,
)
from chain_of_custody.keys import Signer, signer_from_seed
from chain_of_custody.note import sign_note

PREV = hashlib.sha256(b"previous leaf").hexdigest()


def event_for(signer: Signer, **changes: Any) -> Event:
    fields: dict[str, Any] = {
        "seq": 3,
        "time": "2026-11-24T03:20:00.123456Z",
        "case": "UA-DEP-2026-001",
        "action": "item.ingested",
        "actor": signer.key_id,
        "subject": hashlib.sha256(b"transfer list").hexdigest(),
        "data": {"name": "transfer-list.pdf", "size": "9007199254740993", "pages": 4},
        "prev": PREV,
    }
    fields.update(changes)
    return Event(**fields)


def test_leaf_is_canonical_json_newline_then_signature(investigator_a: Signer) -> None:
    event = event_for(investigator_a)
    leaf = make_leaf(event, investigator_a)
    text = canonical_json(event) + b"\n"
    assert leaf.startswith(text + "\n— investigator-a ".encode())
    assert leaf == sign_note(text, [investigator_a])
    parsed = parse_leaf(leaf)
    assert parsed.event == event
    assert parsed.raw == leaf
    assert parsed.note.text == text
    assert parsed.leaf_hash == hashlib.sha256(b"\x00" + leaf).digest()
    verify_leaf_signature(parsed, investigator_a.verifier)


def test_vector_leaf_reproduces() -> None:
    vector = json.loads(
        (Path(__file__).parent / "vectors" / "signed_note_vector.json").read_text("utf-8")
    )
    signer = signer_from_seed(vector["key_name"], bytes.fromhex(vector["seed_hex"]))
    event = Event(**vector["event"])
    assert canonical_json(event).decode() == vector["event_canonical_json"]
    leaf = make_leaf(event, signer)
    assert leaf == vector["leaf"].encode()
    assert parse_leaf(leaf).leaf_hash.hex() == vector["leaf_hash_hex"]


def test_make_leaf_refuses_a_signer_that_is_not_the_actor(
    investigator_a: Signer, investigator_b: Signer
) -> None:
    with pytest.raises(InputError, match="actor"):
        make_leaf(event_for(investigator_a), investigator_b)


def test_signature_is_checked_against_stored_text(investigator_a: Signer) -> None:
    leaf = make_leaf(event_for(investigator_a), investigator_a)
    tampered = leaf.replace(b'"pages":4', b'"pages":5')
    parsed = parse_leaf(tampered)  # still well formed
    with pytest.raises(VerificationError) as caught:
        verify_leaf_signature(parsed, investigator_a.verifier)
    assert caught.value.findings[0].code == "bad-signature"
    assert caught.value.findings[0].seq == 3


def test_signature_by_another_key(investigator_a: Signer, investigator_b: Signer) -> None:
    parsed = parse_leaf(make_leaf(event_for(investigator_a), investigator_a))
    with pytest.raises(VerificationError) as caught:
        verify_leaf_signature(parsed, investigator_b.verifier)
    assert caught.value.findings[0].code == "actor-mismatch"
    # A leaf naming B as actor but signed only by A has no signature by B.
    event = event_for(investigator_b)
    leaf = sign_note(canonical_json(event) + b"\n", [investigator_a])
    with pytest.raises(VerificationError) as caught:
        verify_leaf_signature(parse_leaf(leaf), investigator_b.verifier)
    assert caught.value.findings[0].code == "signature-missing"


BAD_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("negative seq", {"seq": -1}),
    ("seq as string", {"seq": "3"}),
    ("local time", {"time": "2026-11-24T03:20:00+02:00"}),
    ("no zone", {"time": "2026-11-24T03:20:00"}),
    ("lowercase z", {"time": "2026-11-24T03:20:00z"}),
    ("date only", {"time": "2026-11-24"}),
    ("impossible date", {"time": "2026-02-30T03:20:00Z"}),
    ("nanoseconds", {"time": "2026-11-24T03:20:00.123456789Z"}),
    ("prev empty after seq 0", {"prev": ""}),
    ("prev uppercase", {"prev": PREV.upper()}),
    ("prev short", {"prev": PREV[:-1]}),
    ("prev at seq 0", {"seq": 0}),
    ("empty case", {"case": ""}),
    ("empty action", {"action": ""}),
    ("empty actor", {"actor": ""}),
    ("version 2", {"v": 2}),
    ("data not object", {"data": []}),
]


@pytest.mark.parametrize("changes", [c for _, c in BAD_EVENTS], ids=[n for n, _ in BAD_EVENTS])
def test_invalid_events_are_refused(changes: dict[str, Any], investigator_a: Signer) -> None:
    with pytest.raises(ValidationError):
        event_for(investigator_a, **changes)


def test_extra_fields_are_refused(investigator_a: Signer) -> None:
    with pytest.raises(ValidationError):
        event_for(investigator_a, note="x")


def test_big_numbers_in_data_are_refused_when_signing(investigator_a: Signer) -> None:
    event = event_for(investigator_a, data={"size": MAX_SAFE_INTEGER + 1})
    with pytest.raises(InputError, match=r"\$\.data\.size"):
        make_leaf(event, investigator_a)


def test_event_is_frozen(investigator_a: Signer) -> None:
    event = event_for(investigator_a)
    with pytest.raises(ValidationError):
        event.seq = 4  # type: ignore[misc]


def test_draft() -> None:
    draft = EventDraft(action="item.ingested", subject="x", data={})
    assert draft.action == "item.ingested"
    with pytest.raises(ValidationError):
        EventDraft(action="", subject="x", data={})


LEAF_SIGNER = signer_from_seed("leaf-tester", b"\x09" * 32)
GOOD_VALUE: dict[str, Any] = json.loads(canonical_json(event_for(LEAF_SIGNER)))
CANONICAL = canonical_json(GOOD_VALUE)

BAD_LEAF_TEXTS: list[tuple[str, bytes]] = [
    ("not json", b"hello\n"),
    ("json array", b"[1,2]\n"),
    ("two lines", CANONICAL + b"\n" + CANONICAL + b"\n"),
    ("spaces", json.dumps(GOOD_VALUE, sort_keys=True).encode() + b"\n"),
    (
        "unsorted keys",
        json.dumps(
            dict(reversed(GOOD_VALUE.items())), separators=(",", ":"), ensure_ascii=False
        ).encode()
        + b"\n",
    ),
    ("escaped ascii", CANONICAL.replace(b'"item.ingested"', b'"item\\u002eingested"') + b"\n"),
    ("duplicate key", CANONICAL.replace(b'{"action"', b'{"v":1,"action"', 1) + b"\n"),
    ("float", CANONICAL.replace(b'"pages":4', b'"pages":4.0') + b"\n"),
    ("exponent", CANONICAL.replace(b'"pages":4', b'"pages":4e0') + b"\n"),
    ("nan", CANONICAL.replace(b'"pages":4', b'"pages":NaN') + b"\n"),
    ("missing field", canonical_json({k: v for k, v in GOOD_VALUE.items() if k != "prev"}) + b"\n"),
    ("extra field", canonical_json({**GOOD_VALUE, "extra": 1}) + b"\n"),
    ("invalid event", canonical_json({**GOOD_VALUE, "seq": -1}) + b"\n"),
    ("seq as string", canonical_json({**GOOD_VALUE, "seq": "3"}) + b"\n"),
]


@pytest.mark.parametrize("text", [t for _, t in BAD_LEAF_TEXTS], ids=[n for n, _ in BAD_LEAF_TEXTS])
def test_malformed_leaves_are_refused(text: bytes) -> None:
    leaf = sign_note(text, [LEAF_SIGNER])
    with pytest.raises(InputError):
        parse_leaf(leaf)


def test_good_leaf_text_is_accepted() -> None:
    assert parse_leaf(sign_note(CANONICAL + b"\n", [LEAF_SIGNER])).event.seq == 3


def test_unsigned_or_truncated_leaf(investigator_a: Signer) -> None:
    leaf = make_leaf(event_for(investigator_a), investigator_a)
    for data in (canonical_json(event_for(investigator_a)) + b"\n", leaf[:-10], b""):
        with pytest.raises(InputError):
            parse_leaf(data)


def test_time_helpers() -> None:
    moment = datetime(2026, 11, 24, 5, 20, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_event_time(moment) == "2026-11-24T03:20:00.000000Z"
    assert parse_event_time("2026-11-24T03:20:00Z") == moment
    assert parse_event_time("2026-11-24T03:20:00.5Z") == moment + timedelta(milliseconds=500)
    with pytest.raises(InputError):
        format_event_time(datetime(2026, 11, 24))


@given(
    st.integers(min_value=1, max_value=MAX_SAFE_INTEGER),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    st.dictionaries(
        st.text(max_size=6),
        st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER) | st.text(),
        max_size=4,
    ),
)
def test_leaf_round_trip(seq: int, moment: datetime, data: dict[str, Any]) -> None:
    signer = signer_from_seed("round-trip", bytes(32))
    event = Event(
        seq=seq,
        time=format_event_time(moment),
        case="UA-DEP-2026-001",
        action="link.made",
        actor=signer.key_id,
        subject="incident-1",
        data=data,
        prev=PREV,
    )
    parsed = parse_leaf(make_leaf(event, signer))
    assert parsed.event == event
    assert parsed.event.moment == moment
    verify_leaf_signature(parsed, signer.verifier)
