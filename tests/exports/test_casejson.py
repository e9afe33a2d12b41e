"""CASE/UCO JSON-LD: valid under case_validate and carrying ERNs, hashes and custody."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from exports.casejson import case_jsonld
from tests.exports.conftest import Fixture

CASE_VALIDATE = Path(sys.executable).parent / "case_validate"


def _nodes(data: bytes) -> list[dict]:
    return json.loads(data)["@graph"]


def test_case_validate_accepts_the_document(bundle: Fixture, tmp_path: Path) -> None:
    path = tmp_path / "case.jsonld"
    path.write_bytes(case_jsonld(bundle.content))
    result = subprocess.run(
        [str(CASE_VALIDATE), str(path)], check=False, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Conforms: True" in result.stdout


def test_case_validate_rejects_a_broken_document(bundle: Fixture, tmp_path: Path) -> None:
    # The check above must be able to fail: a hash value that is not hexBinary is refused.
    text = case_jsonld(bundle.content).decode()
    sha = bundle.content.items[0].sha256.upper()
    path = tmp_path / "case.jsonld"
    path.write_text(text.replace(sha, "NOT-HEX"))
    result = subprocess.run(
        [str(CASE_VALIDATE), str(path)], check=False, capture_output=True, text=True, timeout=600
    )
    assert result.returncode != 0


def test_exhibit_numbers_hashes_and_custody_actions(bundle: Fixture) -> None:
    nodes = _nodes(case_jsonld(bundle.content))
    records = [n for n in nodes if n["@type"] == "case-investigation:ProvenanceRecord"]
    assert sorted(r["case-investigation:exhibitNumber"] for r in records) == [
        "UKR-DEP-000010-UKR-DEP-000012",
        "UKR-DEP-000013",
        "UKR-DEP-000014",
        "UKR-DEP-000020",
    ]
    text = json.dumps(nodes)
    for record in bundle.content.records():
        assert record.sha256.upper() in text
        assert record.sha512.upper() in text
    actions = [n for n in nodes if n["@type"] == "case-investigation:InvestigativeAction"]
    custody_count = sum(len(r.custody) for r in bundle.content.records())
    assert len(actions) == custody_count + 1  # plus the export itself
    ids = {n["@id"] for n in nodes}
    for action in actions:
        assert action["uco-action:performer"]["@id"] in ids
        assert action["uco-action:startTime"]["@type"] == "xsd:dateTime"


def test_document_is_deterministic(bundle: Fixture) -> None:
    assert case_jsonld(bundle.content) == case_jsonld(bundle.content)
