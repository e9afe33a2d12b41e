"""A testimony document holding an identity is never ingested as an item (SPEC 6 and 9).

The YAML or JSON file given to ``testimony add`` holds the witness's identity in clear; as an
item, it would be stored in clear and exported in ``restricted`` and ``public`` bundles.
``ingest`` refuses it by its content (``testimony-identity``), naming the file and telling to
record it with ``testimony add``; the rest of the batch is ingested (exit code 1). A document
whose identity block is empty or absent, and the shipped template (fictional example values),
are ingested like any other file. Every name and value here is fictional.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from evidence import loaders
from evidence.loaders import held_identity
from evidence.verify import verify_case
from tests.conftest import CaseHandle, CliResult, write_corpus

Cli = Callable[..., CliResult]

NAME = "Zorvanka Qwyxlimoretti-Fictional"
BORN = "2011-07-23"
TEMPLATE = Path(loaders.__file__).with_name("testimony_template.yaml").read_text(encoding="utf-8")

HEAD = """\
witness_code: W-301
category: child-victim
interviewers: [Investigator A]
interview_date: 2023-03-01
interview_place: {name: Field office 1, country: UA}
languages: [uk]
statement: {language: uk, text: Invented statement.}
consent: {icc_proceedings: true, anonymised_publication: false, given_on: 2023-03-01}
"""
DOCUMENT = {
    "witness_code": "W-302",
    "category": "eyewitness",
    "interviewers": ["Investigator A"],
    "interview_date": "2023-03-01",
    "interview_place": {"name": "Field office 1", "country": "UA"},
    "languages": ["uk"],
    "statement": {"language": "uk", "text": "Invented statement."},
    "consent": {"icc_proceedings": True, "anonymised_publication": False, "given_on": "2023-03-01"},
}

# (case name, file name, content): each holds an identity in clear.
HOLDING: list[tuple[str, str, str]] = [
    (
        "yaml",
        "testimony-W-301.yaml",
        HEAD + f"identity:\n  name: {NAME}\n  date_of_birth: {BORN}\n",
    ),
    ("json", "W-302.json", json.dumps(DOCUMENT | {"identity": {"name": NAME}}, indent=2)),
    ("json-one-line", "W-302.txt", json.dumps(DOCUMENT | {"identity": {"contact": "+000 1"}})),
    ("flow-style", "t.yml", HEAD + f"identity: {{name: {NAME}}}\n"),
    ("year-of-birth-only", "t.yaml", HEAD + "identity:\n  date_of_birth: 2011\n"),
    ("identity-as-text", "t.yaml", HEAD + f"identity: {NAME}\n"),
    ("name-typed-as-key", "t.yaml", HEAD + f"identity:\n  {NAME}:\n"),
    ("crlf", "t.yaml", (HEAD + f"identity:\n  name: {NAME}\n").replace("\n", "\r\n")),
    ("bom", "t.yaml", "\ufeff" + HEAD + f"identity:\n  name: {NAME}\n"),
    ("template-filled-in", "W-017.yaml", TEMPLATE.replace("Example Name Fictional", NAME)),
    # Documents `testimony add` would refuse still hold the identity: judged by their words.
    ("undefined-alias", "t.yaml", HEAD + f"identity:\n  name: {NAME}\n  contact: *nowhere\n"),
    ("duplicate-identity", "t.yaml", HEAD + f"identity:\n  name: {NAME}\nidentity:\n"),
    ("bad-indent", "t.yaml", HEAD + f"identity:\n    name: {NAME}\n  contact: x\n"),
]

# (case name, content): documents that hold no identity value, ingested like any file.
NOT_HOLDING: list[tuple[str, str]] = [
    ("no-identity", HEAD),
    ("empty-block", HEAD + "identity:\n"),
    ("empty-mapping", HEAD + "identity: {}\n"),
    ("empty-fields", HEAD + "identity:\n  name:\n  contact: ''\n  current_address: '  '\n"),
    ("json-null", json.dumps(DOCUMENT | {"identity": None})),
    ("the-template", TEMPLATE),
    ("not-a-testimony", "identity:\n  name: Fictional Account Holder\n"),  # no witness_code
    ("capture-json", json.dumps({"user": {"identity": {"name": "Fictional Account"}}})),
    ("words-in-a-note", "Note: check the witness_code and the identity: done.\n"),
]


@pytest.mark.parametrize("content", [pytest.param(case[2], id=case[0]) for case in HOLDING])
def test_held_identity_recognises_a_testimony_holding_an_identity(content: str) -> None:
    assert held_identity(content.encode()) != "none"


@pytest.mark.parametrize("content", [pytest.param(v, id=k) for k, v in NOT_HOLDING])
def test_held_identity_lets_other_documents_through(content: str) -> None:
    assert held_identity(content.encode()) == "none"


def test_held_identity_survives_hostile_documents() -> None:
    aliases = "a: &a ['', '']\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(12)
    )
    bomb = f"witness_code: W-1\n{aliases}identity: [*m, *m]\n"
    assert held_identity(bomb.encode()) == "none"  # nothing but empty text, seen once each
    deep = "witness_code: W-1\nidentity: " + "[" * 5000 + "]" * 5000 + "\n"
    assert held_identity(deep.encode()) == "unparsed"
    assert held_identity(b"witness_code: W-1\nidentity:\n  name: \xff\xfe\n") == "held"
    assert held_identity(b"\x00\x01witness_code identity") == "none"


@pytest.mark.parametrize("documents", [3, 90], ids=["threads", "worker-processes"])
def test_a_testimony_holding_an_identity_is_refused_and_the_rest_ingested(
    cli: Cli, make_case: Callable[..., CaseHandle], tmp_path: Path, documents: int
) -> None:
    case = make_case()
    field = tmp_path / "field"
    refused_names: list[str] = []
    for number, (label, name, content) in enumerate(HOLDING):
        folder = field / f"{number:02d}-{label}"
        folder.mkdir(parents=True)
        (folder / name).write_bytes(content.encode())
        refused_names.append(f"{folder.name}/{name}")
    kept = field / "kept"
    kept.mkdir()
    for label, content in NOT_HOLDING:
        (kept / f"{label}.yaml").write_text(content, encoding="utf-8")
    write_corpus(field / "docs", documents)

    result = cli("ingest", "--case", case.root, "--recursive", field, "--json")

    # Refused inputs of a batch give exit code 1 (SPEC section 9); the rest is ingested.
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    refused = sorted(
        (str(Path(r["path"]).relative_to(field)), r["code"]) for r in report["refused"]
    )
    assert refused == [(name, "testimony-identity") for name in sorted(refused_names)]
    assert report["ingested"] == documents + len(NOT_HOLDING)
    first = field / refused_names[0]
    assert f"refused: {first}: is a testimony document whose identity block holds values" in (
        " ".join(result.stderr.split())
    )
    assert "`evidence testimony add FILE`" in result.stderr
    assert "not valid YAML or JSON" in " ".join(result.stderr.split())
    # Nothing of the identity is said, and no copy of a refused file is kept.
    assert NAME not in result.output and "Qwyxlimoretti" not in result.output
    assert BORN not in result.output
    for name in refused_names:
        assert not case.stores((field / name).read_bytes()), name
    stored = [p for p in (case.root / "objects").rglob("*") if p.is_file()]
    assert len(stored) == documents + len(NOT_HOLDING)
    assert not any(NAME.encode() in p.read_bytes() for p in stored)
    opened = case.open()
    try:
        assert verify_case(opened).ok
    finally:
        opened.close()
    # A rerun refuses them again, and ingests nothing twice.
    again = cli("ingest", "--case", case.root, "--recursive", field, "--json")
    assert again.exit_code == 1, again.output
    rerun = json.loads(again.stdout)
    assert len(rerun["refused"]) == len(HOLDING)
    assert rerun["ingested"] == 0


def test_testimony_add_still_seals_the_file_ingest_refuses(
    cli: Cli, make_case: Callable[..., CaseHandle], tmp_path: Path
) -> None:
    case = make_case()
    added = cli("keys", "recipient", "add", "prosecutor-a", "--case", case.root)
    assert added.exit_code == 0, added.output
    field = tmp_path / "field"
    field.mkdir()
    path = field / "testimony-W-301.yaml"
    path.write_text(HOLDING[0][2], encoding="utf-8")

    recorded = cli("testimony", "add", path, "--case", case.root)
    assert recorded.exit_code == 0, recorded.output
    assert "protected identity (sealed)" in recorded.stdout
    ingested = cli("ingest", "--case", case.root, "--recursive", field, "--json")
    assert ingested.exit_code == 1, ingested.output
    assert [r["code"] for r in json.loads(ingested.stdout)["refused"]] == ["testimony-identity"]
    stored = [p for p in (case.root / "objects").rglob("*") if p.is_file()]
    assert not any(NAME.encode() in p.read_bytes() for p in stored)


def test_a_large_text_file_is_not_parsed(
    cli: Cli, make_case: Callable[..., CaseHandle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Larger than `testimony add` reads: no testimony document, ingested as it is.
    monkeypatch.setattr("evidence.ingest.MAX_DOCUMENT_BYTES", 100)
    case = make_case()
    field = tmp_path / "field"
    field.mkdir()
    (field / "big.yaml").write_text(HOLDING[0][2], encoding="utf-8")
    result = cli("ingest", "--case", case.root, field, "--recursive", "--json")
    assert result.exit_code == 0, result.output
