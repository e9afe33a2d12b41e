"""Recordings of a testimony whose consent bars the export stay out of it, whatever their links.

The fictional case of ``casebuilder`` gets three more testimonies and their recordings (random
bytes from a fixed seed), every recording and working copy linked to the incident on its own:

- W-701 (recorded the interview ``w701``, and ``shared`` together with W-702), with working
  copies: a transcode of ``w701``, a redaction of that transcode and a translation of the
  testimony's document;
- W-702 (``shared`` and ``w702``; ``w702`` is public, W-702 did not agree to publication);
- W-703, who agreed to sharing with an organisation but not to use in ICC proceedings, linked to
  nothing itself (``w703``).

W-701 withdraws consent in each test that needs it, on a copy of the case.

``testimony add`` raises every recording it attaches to strictly-confidential (whatever level it
was ingested at), so recordings reach ``otp`` bundles only; the working copies made from the
testimony's document (its translation) reach ``restricted`` ones too.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from evidence.derive import derive_item
from evidence.ingest import ingest
from evidence.links import make_links
from evidence.models import ItemOptions
from evidence.testimony import record_testimony, withdraw_consent
from evidence.workspace import Case
from exports.audit import audit_bundle
from exports.bundle import export_bundle
from exports.model import Profile, Selection
from exports.selection import SelectionResult, select
from tests.exports.casebuilder import (
    CREATED,
    BuiltCase,
    bag_files,
    build_case,
    copy_case,
    investigator_signer,
    recipient_key,
)

INCIDENT = Selection(incidents=("INC-0001",))
# What W-701's withdrawal keeps out of every bundle.
WITHDRAWN = ("w701", "shared", "w701_transcode", "w701_redaction", "w701_translation")
# A protected value of W-701, and a distinctive part of it: neither may reach a warning or a
# bundle of any profile.
W701_NAME = "Ostap Neverprinted-Vellichor"
W701_PART = b"Neverprinted"


@dataclass(frozen=True)
class Recordings:
    """The case, and the sha256 of each recording and working copy by role."""

    built: BuiltCase
    shas: dict[str, str]

    def copy(self, target: Path) -> Case:
        return copy_case(self.built, target).open()


def _testimony(code: str, recordings: list[str], **consent: object) -> dict[str, object]:
    return {
        "witness_code": code,
        "category": "eyewitness",
        "interviewers": ["Investigator A"],
        "interview_date": "2024-03-05",
        "interview_place": {"name": "Field office 2", "country": "UA"},
        "languages": ["uk"],
        "statement": {"language": "uk", "text": f"Свідчення {code} (вигадано)."},
        "consent": {
            "icc_proceedings": True,
            "anonymised_publication": False,
            "given_on": "2024-03-05",
        }
        | consent,
        "recordings": recordings,
    }


def _ingest(case: Case, path: Path, level: str) -> str:
    report = ingest(
        case,
        investigator_signer(),
        [path],
        options=ItemOptions(
            source="Example Documentation NGO field team",
            collected_by="Investigator A",
            collected_at="2024-03-05",
            method="handed-over",
            confidentiality=level,
        ),
    )
    assert report.ok, report.refused
    return report.files[0].sha256


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recordings:
    root = tmp_path_factory.mktemp("recordings")
    built = build_case(root)
    src = root / "recordings"
    src.mkdir()
    noise = random.Random(701)
    levels = {"w701": "confidential", "shared": "confidential", "w702": "public"}
    levels |= {"w703": "confidential"}
    signer = investigator_signer()
    case = built.open()
    try:
        shas: dict[str, str] = {}
        for role, level in levels.items():
            path = src / f"{role}-interview.ogg"
            path.write_bytes(noise.randbytes(3000))
            shas[role] = _ingest(case, path, level)
        w701 = _testimony("W-701", [shas["w701"], shas["shared"]])
        w701["identity"] = {"name": W701_NAME}
        testimonies = {
            "W-701": w701,
            "W-702": _testimony("W-702", [shas["shared"], shas["w702"]]),
            "W-703": _testimony(
                "W-703",
                [shas["w703"]],
                icc_proceedings=False,
                share_with=["Example Partner NGO"],
            ),
        }
        documents = {}
        for code, testimony in testimonies.items():
            path = src / f"{code}.json"
            path.write_text(json.dumps(testimony), encoding="utf-8")
            documents[code] = record_testimony(case, signer, path).document
        copies = {
            "w701_transcode": ("w701", "transcode"),
            "w701_redaction": ("w701_transcode", "redaction"),
        }
        for role, (original, kind) in copies.items():
            path = src / f"{role}.bin"
            path.write_bytes(noise.randbytes(2000))
            shas[role] = derive_item(
                case, signer, shas[original], kind=kind, file=path, reason="test", tool="t 1.0"
            ).sha256
        translation = src / "W-701-en.txt"
        translation.write_text("Statement of W-701, translated (invented).\n", encoding="utf-8")
        shas["w701_translation"] = derive_item(
            case,
            signer,
            documents["W-701"],
            kind="translation",
            file=translation,
            reason="test",
            tool="t 1.0",
            language="en",
        ).sha256
        for sha in shas.values():
            make_links(case, signer, sha, {"incident": ["INC-0001"]}, "recording of the transfer")
        for code in ("W-701", "W-702"):
            make_links(case, signer, code, {"incident": ["INC-0001"]}, "witness of the transfer")
    finally:
        case.close()
    return Recordings(built, shas)


@pytest.fixture
def withdrawn(recorded: Recordings, tmp_path: Path) -> Iterator[Case]:
    """A copy of the case in which W-701 has withdrawn all consent."""
    case = recorded.copy(tmp_path / "case")
    try:
        withdraw_consent(
            case, investigator_signer(), "W-701", "withdrew all consent (test)", on="2025-01-10"
        )
        yield case
    finally:
        case.close()


def _select(case: Case, profile: Profile, selection: Selection = INCIDENT) -> SelectionResult:
    recipient = recipient_key().public if profile == "otp" else None
    return select(case, selection, profile, recipient=recipient)


def _warning_about(result: SelectionResult, sha: str) -> str:
    [warning] = [w for w in result.warnings if w.startswith(f"item {sha} left out: ")]
    return warning


# --- selection ------------------------------------------------------------------------------


def test_recordings_go_with_consent_in_place(recorded: Recordings, tmp_path: Path) -> None:
    case = recorded.copy(tmp_path / "case")
    try:
        result = _select(case, "otp")
    finally:
        case.close()
    selected = {i.sha256 for i in result.items}
    shas = recorded.shas
    assert set(shas.values()) - {shas["w703"]} <= selected
    assert {t.witness_code for t in result.testimonies} == {"W-017", "W-701", "W-702"}


@pytest.mark.parametrize("profile", ["restricted", "otp"])
@pytest.mark.parametrize("selection", [INCIDENT, Selection(all=True)], ids=["incident", "all"])
def test_recording_of_withdrawn_testimony_is_left_out(
    recorded: Recordings, withdrawn: Case, profile: Profile, selection: Selection
) -> None:
    result = _select(withdrawn, profile, selection)
    selected = {i.sha256 for i in result.items}
    shas = recorded.shas
    assert shas["w701"] not in selected
    # W-702's own recording still goes with W-702, where its level allows.
    assert (shas["w702"] in selected) == (profile == "otp")
    assert {t.witness_code for t in result.testimonies} == {"W-017", "W-702"}
    warning = _warning_about(result, shas["w701"])
    assert "W-701" in warning
    assert "consent was withdrawn" in warning
    assert any("W-701 left out: consent was withdrawn" in w for w in result.warnings)


def test_recording_shared_with_a_consenting_witness_is_left_out(
    recorded: Recordings, withdrawn: Case
) -> None:
    result = _select(withdrawn, "restricted")
    assert recorded.shas["shared"] not in {i.sha256 for i in result.items}
    warning = _warning_about(result, recorded.shas["shared"])
    assert "witness W-701 (consent was withdrawn)" in warning
    # The warning says why W-702's consent does not keep the recording in.
    assert "W-702" in warning
    assert "prevails" in warning


@pytest.mark.parametrize(
    ("role", "made_from"),
    [
        ("w701_transcode", "a transcode of recording {w701} of the interview of witness W-701"),
        ("w701_redaction", "a redaction of item {w701_transcode}, itself made from recording"),
        ("w701_translation", "a translation of the testimony of witness W-701"),
    ],
)
def test_working_copy_of_withdrawn_recording_or_testimony_is_left_out(
    recorded: Recordings, withdrawn: Case, role: str, made_from: str
) -> None:
    result = _select(withdrawn, "otp")
    sha = recorded.shas[role]
    assert sha not in {i.sha256 for i in result.items}
    warning = _warning_about(result, sha)
    assert f"it is {made_from.format(**recorded.shas)}" in warning
    assert warning.endswith("W-701 (consent was withdrawn)")


def test_recording_without_icc_consent_is_left_out_though_testimony_is_unlinked(
    recorded: Recordings, tmp_path: Path
) -> None:
    case = recorded.copy(tmp_path / "case")
    try:
        result = _select(case, "otp")
    finally:
        case.close()
    sha = recorded.shas["w703"]
    assert sha not in {i.sha256 for i in result.items}
    assert "witness W-703 (consent does not cover use in ICC proceedings)" in _warning_about(
        result, sha
    )


def test_public_recording_without_consent_to_publication_is_left_out(
    recorded: Recordings, tmp_path: Path
) -> None:
    case = recorded.copy(tmp_path / "case")
    try:
        result = _select(case, "public")
    finally:
        case.close()
    sha = recorded.shas["w702"]
    assert sha not in {i.sha256 for i in result.items}
    assert "witness W-702 (consent does not cover anonymised publication" in _warning_about(
        result, sha
    )


def test_warnings_name_codes_not_identities(withdrawn: Case) -> None:
    for profile in ("restricted", "otp"):
        result = _select(withdrawn, profile)
        assert result.warnings
        assert not any(W701_NAME in w or W701_PART.decode() in w for w in result.warnings)


# --- bundle ---------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["restricted", "otp"])
def test_bundle_holds_no_recording_of_withdrawn_testimony(
    recorded: Recordings, withdrawn: Case, tmp_path: Path, profile: Profile
) -> None:
    result = export_bundle(
        withdrawn,
        investigator_signer(),
        selection=INCIDENT,
        profile=profile,
        out_dir=tmp_path / "bundle",
        created=CREATED,
        recipient=recipient_key().public if profile == "otp" else None,
    )
    shas = recorded.shas
    barred = {shas[role] for role in WITHDRAWN}
    barred_bytes = {withdrawn.objects.path_for(s).read_bytes() for s in barred}
    originals = list((result.bag / "data" / "originals").iterdir())
    assert originals
    assert not any(p.read_bytes() in barred_bytes for p in originals)
    document = json.loads((result.bag / "data/metadata/items.json").read_bytes())
    listed = {i["sha256"] for i in document["items"]}
    assert (shas["w702"] in listed) == (profile == "otp")  # strictly-confidential: otp only
    present = shas["w702"] if profile == "otp" else min(listed)
    assert not barred & listed
    # Nothing of W-701 is left in any file: not the hashes, not the link reasons, not the code.
    files = bag_files(result.bag)
    for name in ("data/index.html", "data/metadata/items.json", "data/metadata/case.jsonld"):
        text = files[name].lower()  # case.jsonld writes hashes in upper case
        assert present.encode() in text, name  # the search finds what is there
        assert not any(sha.encode() in text for sha in barred), name
    assert any(b"W-702" in data for data in files.values())
    assert not any(b"W-701" in data for data in files.values())
    assert not any(W701_PART in data for data in files.values())
    assert any(shas["shared"] in w and "W-701" in w for w in result.warnings)
    assert audit_bundle(result.bag, [investigator_signer().verifier]).ok
