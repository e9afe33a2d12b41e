"""Testimonies: canonical document, sealed identity, recordings, consent and its withdrawal.

Every testimony here is invented; the identity values are obviously fictional markers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from chain_of_custody import canonical_json, parse_leaf
from evidence import models, recipients, testimony
from evidence.errors import InputError
from evidence.protected import NotARecipient, RecipientKey, open_annex
from evidence.verify import verify_case
from tests.conftest import CaseHandle

IDENTITY = {
    "name": "Testname Protected-Identity-Marker",
    "date_of_birth": "1985-02-11",
    "contact": "+000 00 000 0017",
    "current_address": "Example Street 17, Example City",
}


def recipient_key(label: str = "prosecutor-a") -> RecipientKey:
    """A fixed X25519 recipient key (tests only)."""
    return RecipientKey.from_private_bytes(label, hashlib.sha256(label.encode()).digest())


def make_testimony(code: str = "W-017", **overrides: Any) -> dict[str, Any]:
    """A fictional testimony as a testimony file would hold it."""
    data: dict[str, Any] = {
        "witness_code": code,
        "category": "parent-or-guardian",
        "interviewers": ["Investigator A"],
        "interview_date": "2023-03-01",
        "interview_place": {"name": "Field office 1", "country": "UA"},
        "languages": ["uk", "en"],
        "statement": {"language": "uk", "text": "Вигадані показання."},
        "translations": [
            {"language": "en", "text": "Invented statement.", "translator": "Translator D"}
        ],
        "consent": {
            "icc_proceedings": True,
            "anonymised_publication": False,
            "given_on": "2023-03-01",
        },
        "identity": dict(IDENTITY),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def write_testimony(directory: Path, data: dict[str, Any]) -> Path:
    path = directory / f"testimony-{data.get('witness_code', 'x')}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def case(make_case: Callable[..., CaseHandle]) -> Any:
    handle = make_case()
    opened = handle.open()
    yield opened, handle.signer
    opened.close()


@pytest.fixture
def sealed_case(case: Any) -> Any:
    opened, signer = case
    recipients.add_recipient(opened, signer, recipient_key().public)
    return opened, signer


def test_a_testimony_is_a_canonical_document_and_a_sealed_annex(
    sealed_case: Any, tmp_path: Path
) -> None:
    opened, signer = sealed_case
    data = make_testimony()
    recorded = testimony.record_testimony(opened, signer, write_testimony(tmp_path, data))

    document = opened.objects.path_for(recorded.document).read_bytes()
    expected = (
        models.Testimony.model_validate(data)
        .public_view()
        .model_dump(mode="json", exclude_none=True)
    )
    assert document == canonical_json(
        {"case": opened.config.case_id, "format": testimony.DOCUMENT_FORMAT, "testimony": expected}
    )
    assert hashlib.sha256(document).hexdigest() == recorded.document

    assert recorded.annex is not None
    envelope = opened.objects.path_for(recorded.annex).read_bytes()
    aad = testimony.annex_aad(opened.config.case_id, "W-017")
    opened_annex = open_annex(envelope, recipient_key(), aad=aad)
    assert dict(opened_annex.fields) == IDENTITY
    row = opened.db.execute(
        "SELECT annex_sha256, commitment, consent_withdrawn FROM testimonies"
    ).fetchone()
    assert row == (recorded.annex, opened_annex.commitment.digest_hex, 0)
    kinds = dict(opened.db.execute("SELECT sha256, kind FROM items").fetchall())
    assert kinds == {recorded.document: "testimony", recorded.annex: "protected-annex"}
    # The event carries neither the identity nor the statement texts.
    event = parse_leaf(opened.log.leaf(recorded.seq)).event
    text = json.dumps(event.data, ensure_ascii=False)
    assert "Вигадані" not in text and "Invented statement" not in text
    assert all(value not in text for value in IDENTITY.values())
    assert verify_case(opened, workers=1).ok


def test_reveal_opens_the_identity_for_a_recipient_and_records_it(
    sealed_case: Any, tmp_path: Path
) -> None:
    opened, signer = sealed_case
    testimony.record_testimony(opened, signer, write_testimony(tmp_path, make_testimony()))
    size = opened.log.size()
    fields = testimony.reveal_identity(opened, signer, "W-017", recipient_key(), "court request")
    assert fields == IDENTITY
    assert opened.log.size() == size + 1
    assert parse_leaf(opened.log.leaf(size)).event.action == "annex.opened"
    with pytest.raises(NotARecipient):
        testimony.reveal_identity(opened, signer, "W-017", recipient_key("stranger"), "curious")


def test_an_identity_without_a_recipient_is_refused(case: Any, tmp_path: Path) -> None:
    opened, signer = case
    size = opened.log.size()
    with pytest.raises(InputError, match="identity: the case has no recipient key") as caught:
        testimony.record_testimony(opened, signer, write_testimony(tmp_path, make_testimony()))
    assert "recipient add" in (caught.value.hint or "")
    assert opened.log.size() == size
    assert list(opened.objects.iter_objects()) == []


def test_a_testimony_without_identity_needs_no_recipient(case: Any, tmp_path: Path) -> None:
    opened, signer = case
    path = write_testimony(tmp_path, make_testimony(identity=None))
    recorded = testimony.record_testimony(opened, signer, path)
    assert recorded.annex is None
    assert testimony.show_testimony(opened, "W-017")["protected_annex"] is None


def test_a_duplicate_witness_code_is_refused(sealed_case: Any, tmp_path: Path) -> None:
    opened, signer = sealed_case
    testimony.record_testimony(opened, signer, write_testimony(tmp_path, make_testimony()))
    size = opened.log.size()
    with pytest.raises(InputError, match="witness_code: W-017 is already recorded"):
        testimony.record_testimony(opened, signer, write_testimony(tmp_path, make_testimony()))
    assert opened.log.size() == size


def test_recordings_are_ingested_and_linked(sealed_case: Any, tmp_path: Path) -> None:
    opened, signer = sealed_case
    (tmp_path / "rec").mkdir()
    recording = tmp_path / "rec" / "interview.ogg"
    recording.write_bytes(b"fictional audio bytes " * 40)
    data = make_testimony(recordings=["rec/interview.ogg"])
    recorded = testimony.record_testimony(opened, signer, write_testimony(tmp_path, data))
    sha = hashlib.sha256(recording.read_bytes()).hexdigest()
    assert recorded.recordings == (sha,)
    assert opened.db.execute(
        "SELECT target, target_kind FROM links WHERE subject = ?", [sha]
    ).fetchall() == [("W-017", "testimony")]
    shown = testimony.show_testimony(opened, "W-017")
    assert shown["testimony"]["recordings"] == [sha]
    # A second testimony may name the same recording by its sha256.
    again = make_testimony("W-018", recordings=[sha])
    assert testimony.record_testimony(
        opened, signer, write_testimony(tmp_path, again)
    ).recordings == (sha,)


@pytest.mark.parametrize(
    ("recordings", "message"),
    [
        pytest.param(["missing.ogg"], r"recordings\[0\]: no such file", id="missing-file"),
        pytest.param(["ab" * 32], r"recordings\[0\]: no item", id="unknown-sha256"),
    ],
)
def test_bad_recordings_are_refused_before_anything_is_recorded(
    sealed_case: Any, tmp_path: Path, recordings: list[str], message: str
) -> None:
    opened, signer = sealed_case
    size = opened.log.size()
    with pytest.raises(InputError, match=message):
        testimony.record_testimony(
            opened, signer, write_testimony(tmp_path, make_testimony(recordings=recordings))
        )
    assert opened.log.size() == size


def test_consent_withdrawal_is_recorded_once(sealed_case: Any, tmp_path: Path) -> None:
    opened, signer = sealed_case
    testimony.record_testimony(opened, signer, write_testimony(tmp_path, make_testimony()))
    assert testimony.consent_covers_icc(opened, "W-017")
    testimony.withdraw_consent(opened, signer, "W-017", "asked to stop", on="2023-06-15")
    assert not testimony.consent_covers_icc(opened, "W-017")
    shown = testimony.show_testimony(opened, "W-017")
    assert shown["consent"]["withdrawn_on"] == "2023-06-15"
    assert shown["consent_withdrawn"] is True
    size = opened.log.size()
    with pytest.raises(InputError, match="already withdrawn"):
        testimony.withdraw_consent(opened, signer, "W-017", "again", on="2023-06-16")
    assert opened.log.size() == size
    assert verify_case(opened, workers=1).ok


@pytest.mark.parametrize(
    ("on", "reason", "message"),
    [
        pytest.param("15.06.2023", "asked", "--on", id="wrong-date-format"),
        pytest.param("2023-02-01", "asked", "before consent was given", id="before-consent"),
        pytest.param("2023-06-15", "  ", "--reason", id="empty-reason"),
        pytest.param(
            "2024-06-20", "asked", r"--on: is in the future \(today is 2024-06-15", id="future"
        ),
        pytest.param("2099-01-01", "asked", r"--on: is in the future", id="dated-2099"),
    ],
)
def test_bad_withdrawals_are_refused(
    sealed_case: Any, tmp_path: Path, on: str, reason: str, message: str
) -> None:
    opened, signer = sealed_case
    testimony.record_testimony(opened, signer, write_testimony(tmp_path, make_testimony()))
    size = opened.log.size()
    with pytest.raises(InputError, match=message):
        testimony.withdraw_consent(opened, signer, "W-017", reason, on=on, today=date(2024, 6, 15))
    assert opened.log.size() == size


def test_consent_without_icc_use_is_not_exportable(sealed_case: Any, tmp_path: Path) -> None:
    opened, signer = sealed_case
    consent = {"icc_proceedings": False, "anonymised_publication": True, "given_on": "2023-03-01"}
    path = write_testimony(tmp_path, make_testimony(consent=consent))
    testimony.record_testimony(opened, signer, path)
    assert not testimony.consent_covers_icc(opened, "W-017")


def test_verify_reports_a_changed_testimony_row(sealed_case: Any, tmp_path: Path) -> None:
    opened, signer = sealed_case
    testimony.record_testimony(opened, signer, write_testimony(tmp_path, make_testimony()))
    assert verify_case(opened, workers=1).ok
    opened.db.execute("UPDATE testimonies SET consent_withdrawn = 0, consent = '{}'")
    findings = verify_case(opened, workers=1).findings
    assert [(f.code, f.subject) for f in findings] == [
        ("catalog-row-changed", "testimonies[W-017]")
    ]
