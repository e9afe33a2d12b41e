"""Testimonies: canonical document, sealed identity, recordings, consent and its withdrawal.

Every testimony here is invented; the identity values are obviously fictional markers.
"""

from __future__ import annotations

import hashlib
import json
import signal
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from chain_of_custody import canonical_json, parse_leaf
from evidence import models, recipients, testimony
from evidence.derive import derive_item
from evidence.errors import InputError, Stopped
from evidence.ingest import ingest
from evidence.loaders import ModelInputError
from evidence.protected import NotARecipient, RecipientKey, open_annex
from evidence.verify import verify_case
from evidence.workspace import Recorder
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


# ---------------------------------------------------------------------------------------------
# An identity value typed again in a field kept in clear is refused (SPEC 6)
# ---------------------------------------------------------------------------------------------

NAME = IDENTITY["name"]
ADDRESS = IDENTITY["current_address"]


def _with(field: str, value: Any) -> dict[str, Any]:
    """The fictional testimony with ``value`` put at the dotted ``field``."""
    data = make_testimony()
    target: Any = data
    *parents, leaf = field.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(leaf) if leaf.isdigit() else leaf] = value
    return data


# (case name, where the value is typed again, what is typed there, the message's field, the
# identity field named)
REPEATED: list[tuple[str, str, Any, str, str]] = [
    ("referral", "referral", f"{NAME} referred to a psychologist", "referral", "identity.name"),
    (
        "place-is-home",
        "interview_place.name",
        ADDRESS,
        "interview_place.name",
        "identity.current_address",
    ),
    ("statement", "statement.text", f"Я, {NAME}, бачила.", "statement.text", "identity.name"),
    (
        "translation",
        "translations.0.text",
        f"I live at {ADDRESS}.",
        "translations[0].text",
        "identity.current_address",
    ),
    ("interviewer", "interviewers", ["Investigator A", NAME], "interviewers[1]", "identity.name"),
    (
        "measures-contact",
        "special_measures",
        [f"call only {IDENTITY['contact']}"],
        "special_measures[0]",
        "identity.contact",
    ),
    (
        "date-of-birth",
        "statement.text",
        f"Born {IDENTITY['date_of_birth']}.",
        "statement.text",
        "identity.date_of_birth",
    ),
    (
        "recording-path",
        "recordings",
        [f"rec/{IDENTITY['date_of_birth']}.ogg"],
        "recordings[0]",
        "identity.date_of_birth",
    ),
    # Compared after NFKC normalisation, case folding and collapsing whitespace.
    ("case-and-spaces", "referral", "TESTNAME   protected-identity-MARKER.", "referral", "name"),
    (
        "fullwidth",
        "referral",
        "Ｔｅｓｔｎａｍｅ Protected-Identity-Marker",
        "referral",
        "identity.name",
    ),
    (
        "line-break",
        "statement.text",
        "Testname\nProtected-Identity-Marker",
        "statement.text",
        "name",
    ),
]


@pytest.mark.parametrize(
    ("where", "value", "field", "repeats"),
    [pytest.param(*case[1:], id=case[0]) for case in REPEATED],
)
def test_an_identity_value_repeated_in_a_clear_field_is_refused(
    sealed_case: Any, tmp_path: Path, where: str, value: Any, field: str, repeats: str
) -> None:
    opened, signer = sealed_case
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / f"{IDENTITY['date_of_birth']}.ogg").write_bytes(b"fictional audio " * 40)
    path = write_testimony(tmp_path, _with(where, value))
    size = opened.log.size()
    with pytest.raises(ModelInputError) as caught:
        testimony.record_testimony(opened, signer, path)
    error = caught.value
    assert [p.field for p in error.problems] == [field]
    assert repeats in error.problems[0].message
    assert error.message.startswith(f"{path}: {field}: repeats identity.")
    shown = f"{error.diagnostics()} {error!r} {error.problems!r}".casefold()
    assert all(v.casefold() not in shown for v in IDENTITY.values())
    assert "marker" not in shown
    # Refused before anything is written: no event, no object (not even a recording).
    assert opened.log.size() == size
    assert list(opened.objects.iter_objects()) == []


def test_every_repeating_field_is_named_with_every_value_it_repeats(
    sealed_case: Any, tmp_path: Path
) -> None:
    opened, signer = sealed_case
    data = make_testimony(referral=f"{NAME}, {ADDRESS}")
    data["interview_place"]["name"] = ADDRESS
    with pytest.raises(ModelInputError) as caught:
        testimony.record_testimony(opened, signer, write_testimony(tmp_path, data))
    assert [(p.field, p.message.split(",")[0]) for p in caught.value.problems] == [
        ("interview_place.name", "repeats identity.current_address"),
        ("referral", "repeats identity.name and identity.current_address"),
    ]
    assert f"{testimony.MIN_REPEATED_LENGTH} characters" in (caught.value.hint or "")


# (case name, identity, a text that holds no identity value as a whole)
NOT_REPEATED: list[tuple[str, dict[str, str], str]] = [
    ("short-first-name", {"name": "Ivan"}, "Ivan, the driver, took us."),
    ("year-of-birth", {"name": NAME, "date_of_birth": "2011"}, "In 2011 the school closed."),
    ("longer-word", {"name": "Ivan Petrenko"}, "Ivan Petrenkov was the driver."),
    ("inside-a-word", {"name": "Petro Marker"}, "Ospetro Marker came."),
    ("date-inside-a-date", {"date_of_birth": "2011-07"}, "It was on 2011-07-15."),
    ("day-inside-a-date", {"date_of_birth": "2011-07-15"}, "On 12.2011-07-15.3 nothing."),
]


@pytest.mark.parametrize(
    ("identity", "text"), [pytest.param(*case[1:], id=case[0]) for case in NOT_REPEATED]
)
def test_values_short_or_inside_longer_words_are_not_refused(
    sealed_case: Any, tmp_path: Path, identity: dict[str, str], text: str
) -> None:
    opened, signer = sealed_case
    data = make_testimony(identity=identity, statement={"language": "en", "text": text})
    recorded = testimony.record_testimony(opened, signer, write_testimony(tmp_path, data))
    assert recorded.annex is not None


def test_the_template_is_not_refused_for_repetition(sealed_case: Any, tmp_path: Path) -> None:
    opened, signer = sealed_case
    template = Path(testimony.__file__).with_name("testimony_template.yaml").read_text("utf-8")
    (tmp_path / "recordings").mkdir()
    (tmp_path / "recordings" / "W-017-interview.ogg").write_bytes(b"fictional audio " * 40)
    path = tmp_path / "W-017.yaml"
    path.write_text(template, encoding="utf-8")
    assert testimony.record_testimony(opened, signer, path).annex is not None


# ---------------------------------------------------------------------------------------------
# A recording attached by `testimony add` is strictly confidential, whenever it was ingested
# ---------------------------------------------------------------------------------------------


def _ingest_recording(opened: Any, signer: Any, path: Path, level: str) -> str:
    report = ingest(
        opened,
        signer,
        [path],
        options=models.ItemOptions(
            source="Example Documentation NGO field team",
            collected_by="Investigator A",
            collected_at="2023-03-01",
            method="handed-over",
            confidentiality=level,
        ),
    )
    assert report.ok
    return report.files[0].sha256


def _level(opened: Any, sha: str) -> str:
    row = opened.db.execute("SELECT confidentiality FROM items WHERE sha256 = ?", [sha]).fetchone()
    return str(row[0])


@pytest.mark.parametrize("by", ["path", "sha256"])
@pytest.mark.parametrize("level", ["public", "restricted", "confidential"])
def test_a_recording_ingested_before_at_a_lower_level_is_raised(
    sealed_case: Any, tmp_path: Path, level: str, by: str
) -> None:
    opened, signer = sealed_case
    (tmp_path / "rec").mkdir()
    recording = tmp_path / "rec" / "interview.ogg"
    recording.write_bytes(b"fictional audio bytes " * 40)
    sha = _ingest_recording(opened, signer, recording, level)
    ref = "rec/interview.ogg" if by == "path" else sha
    data = make_testimony(recordings=[ref])
    recorded = testimony.record_testimony(opened, signer, write_testimony(tmp_path, data))

    assert _level(opened, sha) == "strictly-confidential"
    (raised,) = recorded.raised
    assert (raised.sha256, raised.previous, raised.confidentiality) == (
        sha,
        level,
        "strictly-confidential",
    )
    assert f"raised from {level} to strictly-confidential" in raised.describe()
    assert recorded.as_json()["raised"] == [raised.as_json()]
    event = parse_leaf(opened.log.leaf(raised.seq)).event
    assert (event.action, event.subject) == ("metadata.corrected", sha)
    assert event.data["changes"] == {"confidentiality": "strictly-confidential"}
    assert event.data["previous"] == {"confidentiality": level}
    assert "W-017" in event.data["reason"]
    # The catalog is the log's projection: verify rebuilds the same level.
    assert verify_case(opened, workers=1).ok


def test_working_copies_of_a_recording_are_raised_with_it(sealed_case: Any, tmp_path: Path) -> None:
    """A transcode took the recording's level when `derive` made it, and a transcription of
    that transcode took the transcode's: both carry the witness's voice or words, and are
    raised with the recording. An unrelated item at the same level is left as it is."""
    opened, signer = sealed_case
    (tmp_path / "rec").mkdir()
    recording = tmp_path / "rec" / "interview.ogg"
    recording.write_bytes(b"fictional audio bytes " * 40)
    sha = _ingest_recording(opened, signer, recording, "restricted")
    transcode = tmp_path / "interview.webm"
    transcode.write_bytes(b"fictional transcoded audio " * 40)
    made = derive_item(opened, signer, sha, kind="transcode", file=transcode,
                       reason="playable copy", tool="fictional-encoder 1.0")  # fmt: skip
    text = tmp_path / "interview.txt"
    text.write_text("Fictional transcription of the interview.\n")
    written = derive_item(opened, signer, made.sha256, kind="transcription", file=text,
                          reason="for the analysts", tool="by hand")  # fmt: skip
    other = tmp_path / "rec" / "street.jpg"
    other.write_bytes(b"fictional photo bytes " * 40)
    unrelated = _ingest_recording(opened, signer, other, "restricted")
    assert {_level(opened, s) for s in (made.sha256, written.sha256)} == {"restricted"}

    recorded = testimony.record_testimony(
        opened, signer, write_testimony(tmp_path, make_testimony(recordings=[sha]))
    )

    assert [(r.sha256, r.derived_from, r.previous) for r in recorded.raised] == [
        (sha, None, "restricted"),
        (made.sha256, sha, "restricted"),
        (written.sha256, made.sha256, "restricted"),
    ]
    for each in (sha, made.sha256, written.sha256):
        assert _level(opened, each) == "strictly-confidential"
    assert _level(opened, unrelated) == "restricted"
    assert f"working copy {made.sha256} (made from {sha})" in recorded.raised[1].describe()
    event = parse_leaf(opened.log.leaf(recorded.raised[2].seq)).event
    assert (event.action, event.subject) == ("metadata.corrected", written.sha256)
    assert event.data["reason"].startswith("working copy made from the recording of the interview")
    assert recorded.as_json()["raised"][1]["derived_from"] == sha
    assert verify_case(opened, workers=1).ok


def test_a_recording_is_never_lowered_nor_raised_twice(sealed_case: Any, tmp_path: Path) -> None:
    opened, signer = sealed_case
    (tmp_path / "rec").mkdir()
    recording = tmp_path / "rec" / "interview.ogg"
    recording.write_bytes(b"fictional audio bytes " * 40)
    first = testimony.record_testimony(
        opened, signer, write_testimony(tmp_path, make_testimony(recordings=["rec/interview.ogg"]))
    )
    assert first.raised == ()  # ingested by `testimony add`: strictly confidential already
    (sha,) = first.recordings
    again = make_testimony("W-018", recordings=[sha])
    second = testimony.record_testimony(opened, signer, write_testimony(tmp_path, again))
    assert second.raised == ()
    assert _level(opened, sha) == "strictly-confidential"
    actions = [a for (a,) in opened.db.execute("SELECT action FROM log ORDER BY seq")]
    assert "metadata.corrected" not in actions


def test_a_refused_testimony_raises_nothing(sealed_case: Any, tmp_path: Path) -> None:
    opened, signer = sealed_case
    (tmp_path / "rec").mkdir()
    recording = tmp_path / "rec" / "interview.ogg"
    recording.write_bytes(b"fictional audio bytes " * 40)
    sha = _ingest_recording(opened, signer, recording, "restricted")
    testimony.record_testimony(opened, signer, write_testimony(tmp_path, make_testimony()))
    with pytest.raises(InputError, match="already recorded"):
        testimony.record_testimony(
            opened, signer, write_testimony(tmp_path, make_testimony(recordings=[sha]))
        )
    assert _level(opened, sha) == "restricted"


@pytest.mark.parametrize(
    "other", [{}, {"interviewers": ["Investigator B"]}], ids=["same-document", "other-document"]
)
def test_a_code_recorded_meanwhile_leaves_no_unrecorded_object(
    sealed_case: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other: dict[str, Any]
) -> None:
    # Another session records W-017 after this one's first check (_refuse_known) passed: the
    # loser is refused inside the transaction, and removes the annex it sealed and a document
    # it stored, never the winner's (the same testimony gives the same document).
    opened, signer = sealed_case
    winner = testimony.record_testimony(opened, signer, write_testimony(tmp_path, make_testimony()))
    stored = set(opened.objects.iter_objects())
    assert stored == {winner.document, winner.annex}
    monkeypatch.setattr(testimony, "_refuse_known", lambda _case, _code: None)
    (tmp_path / "loser").mkdir()
    loser = write_testimony(tmp_path / "loser", make_testimony(**other))
    with pytest.raises(InputError, match="W-017 was recorded meanwhile by another session"):
        testimony.record_testimony(opened, signer, loser)
    assert set(opened.objects.iter_objects()) == stored
    assert verify_case(opened, workers=1).ok


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), Stopped(15)], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("calls_before", [0, 1], ids=["first-event", "second-event"])
def test_a_stop_inside_the_transaction_leaves_verify_clean_and_a_rerun_records(
    sealed_case: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stop: KeyboardInterrupt,
    calls_before: int,
) -> None:
    opened, signer = sealed_case
    (tmp_path / "rec").mkdir()
    recording = tmp_path / "rec" / "interview.ogg"
    recording.write_bytes(b"fictional audio bytes " * 40)
    sha = _ingest_recording(opened, signer, recording, "restricted")
    path = write_testimony(tmp_path, make_testimony(recordings=[sha]))
    before = set(opened.objects.iter_objects())
    size = opened.log.size()
    append = Recorder.append
    calls = 0

    def interrupted(self: Recorder, draft: Any, signer: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > calls_before:
            raise stop
        return append(self, draft, signer)

    monkeypatch.setattr(Recorder, "append", interrupted)
    with pytest.raises(KeyboardInterrupt):
        testimony.record_testimony(opened, signer, path)
    monkeypatch.undo()
    assert opened.log.size() == size
    # The recording, stored before, stays; the document and the annex are gone.
    assert set(opened.objects.iter_objects()) == before
    assert verify_case(opened, workers=1).ok

    recorded = testimony.record_testimony(opened, signer, path)
    assert set(opened.objects.iter_objects()) == before | {recorded.document, recorded.annex}
    assert _level(opened, sha) == "strictly-confidential"
    assert verify_case(opened, workers=1).ok


def test_a_stop_signal_once_the_catalog_is_locked_waits_and_says_it_was_recorded(
    sealed_case: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C while the events are appended is held until they commit and the log is
    # checkpointed; the stop then says the testimony was recorded, as a re-run is refused.
    opened, signer = sealed_case
    path = write_testimony(tmp_path, make_testimony())
    size = opened.log.size()
    append = Recorder.append

    def ctrl_c_meanwhile(self: Recorder, draft: Any, signer: Any) -> Any:
        signal.raise_signal(signal.SIGINT)
        return append(self, draft, signer)

    monkeypatch.setattr(Recorder, "append", ctrl_c_meanwhile)
    with pytest.raises(KeyboardInterrupt) as stopped:
        testimony.record_testimony(opened, signer, path)
    monkeypatch.undo()
    assert opened.log.size() == size + 1
    assert stopped.value.done == (  # type: ignore[attr-defined]
        f"the testimony of W-017 was recorded as seq {size}"
    )
    assert max(checkpoint[0] for checkpoint in opened.log.iter_checkpoints()) == size + 1
    assert verify_case(opened, workers=1).ok
    with pytest.raises(InputError, match="W-017 is already recorded"):
        testimony.record_testimony(opened, signer, path)
