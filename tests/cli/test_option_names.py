"""Refused command-line values are named by the options that were typed (SPEC sections 8, 9).

``incident add --children-count abc`` is told ``--children-count: ...``, not the model's field
``children_count``; a value of a repeated option is named by its place (``--alias (2nd value)``);
a message that names another field names its option; a correction whose new date contradicts a
date the record holds is told about the date just typed. Values read with ``--from FILE`` keep
the file's field names and lines. The id argument of each entity command gives an example of
its own kind. Everything is fictional.
"""

# Tables of named cases read best one case per line, however long.
# ruff: noqa: E501

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer

from evidence.cli import app
from tests.conftest import CaseHandle, CliResult

Cli = Callable[..., CliResult]


def _ok(result: CliResult) -> CliResult:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def world(make_case: Callable[..., CaseHandle], cli: Cli, tmp_path: Path) -> Any:
    """A case with an item, INC-0001 (2022-03 to 2022-06), FAC-0001 (in use 2022-06 to 2022-09)
    and CH-0001 (born 2012, taken on 2022-05-14, at FAC-0001 from 2022-06 to 2022-09)."""
    case = make_case()
    c = ("--case", case.root)
    note = tmp_path / "note.txt"
    note.write_text("fictional field note\n", encoding="utf-8")
    ingested = json.loads(_ok(cli("ingest", note, "--json", *c)).stdout)
    _ok(cli("incident", "add", "--title", "Transfer (fictional)", "--start", "2022-03", "--end", "2022-06",
            "--place", "Example Town", "--crime", "art. 7(1)(d)", *c))  # fmt: skip
    _ok(cli("facility", "add", "--name", "Camp Example", "--type", "camp", "--alias", "Camp No. 1",
            "--used-from", "2022-06", "--used-to", "2022-09", *c))  # fmt: skip
    _ok(cli("child", "add", "--code", "C-042", "--status", "located", "--birth-year", "2012",
            "--taken-on", "2022-05-14", "--placement", "FAC-0001:2022-06:2022-09", *c))  # fmt: skip
    return case, ingested["files"][0]["sha256"], c


def _refused(case: CaseHandle, cli: Cli, args: list[str], c: tuple[str, ...]) -> str:
    """The message of a refused command, checking that nothing was recorded."""
    size = case.log_size()
    result = cli(*args, *c)
    assert result.exit_code == 2, result.output
    assert result.exception is None
    assert case.log_size() == size
    return result.stderr


# (case name, arguments, lines expected in the message)
ADD: list[tuple[str, list[str], list[str]]] = [
    ("missing-record-and-bad-count", ["incident", "add", "--title", "x", "--start", "2022-05", "--children-count", "abc"],
     ["error: --place: is required but missing", "--children-count: must be a whole number (got 'abc')"]),
    ("bad-second-crime", ["incident", "add", "--title", "T", "--start", "2022-05", "--place", "X", "--crime", "art. 7(1)(d)", "--crime", "art. 99"],
     ["error: --crime (2nd value): must be one of"]),
    ("end-before-start", ["incident", "add", "--title", "T", "--start", "2022-05", "--end", "2022-04", "--place", "X"],
     ["error: --end: must not be before --start (2022-05) (got '2022-04')"]),
    ("latitude-without-longitude", ["incident", "add", "--title", "T", "--start", "2022-05", "--place", "X", "--lat", "46.6354"],
     ["error: --place: give both --lat and --lon, or neither"]),
    ("hometown-coordinates-without-name", ["child", "add", "--code", "C-7", "--status", "missing", "--hometown-lat", "46.6", "--hometown-lon", "32.6"],
     ["error: --hometown: is required but missing"]),
    ("bad-month-in-second-placement", ["child", "add", "--code", "C-7", "--status", "missing", "--placement", "FAC-0001:2022-06", "--placement", "FAC-0001:2022-13"],
     ["error: --placement (2nd value, start): month must be between 01 and 12 (got '2022-13')"]),
    ("taken-before-birth", ["child", "add", "--code", "C-7", "--status", "missing", "--birth-year", "2015", "--taken-on", "2014"],
     ["error: --taken-on: must not be before --birth-year (2015) (got '2014')"]),
    ("placed-before-taken", ["child", "add", "--code", "C-7", "--status", "missing", "--taken-on", "2022-05-14", "--placement", "FAC-0001:2022-04"],
     ["error: --placement (1st value, start): must not be before --taken-on (2022-05-14) (got '2022-04')"]),
    ("placed-at-unknown-facility", ["child", "add", "--code", "C-7", "--status", "missing", "--placement", "FAC-0099"],
     ["error: --placement: unknown facility FAC-0099"]),
    ("code-of-another-child", ["child", "add", "--code", "C-042", "--status", "missing"],
     ["error: --code: C-042 is the code of CH-0001 already"]),
    ("empty-second-alias", ["facility", "add", "--name", "N", "--type", "camp", "--alias", "A", "--alias", " "],
     ["error: --alias (2nd value): must not be empty"]),
    ("used-to-before-used-from", ["facility", "add", "--name", "N", "--type", "camp", "--used-from", "2022-06", "--used-to", "2022-05"],
     ["error: --used-to: must not be before --used-from (2022-06) (got '2022-05')"]),
    ("bad-second-liability", ["perpetrator", "add", "--name", "Unit Z", "--kind", "unit", "--liability", "art. 25(3)(a)", "--liability", "art. 99"],
     ["error: --liability (2nd value): must be one of"]),
]  # fmt: skip

# (case name, arguments, lines expected in the message)
EDIT: list[tuple[str, list[str], list[str]]] = [
    ("bad-count", ["incident", "edit", "INC-0001", "--children-count", "many"],
     ["error: --children-count: must be a whole number (got 'many')"]),
    ("bad-second-crime-added", ["incident", "edit", "INC-0001", "--add-crime", "art. 6(e)", "--add-crime", "art. 99"],
     ["error: --add-crime (2nd value): must be one of"]),
    ("crime-to-remove-not-listed", ["incident", "edit", "INC-0001", "--remove-crime", "art. 6(e)"],
     ["error: --remove-crime: 'art. 6(e)' is not in the list of INC-0001"]),
    ("list-set-and-added", ["incident", "edit", "INC-0001", "--crime", "6(e)", "--add-crime", "6(b)"],
     ["error: --crime: give either the whole new list or values to add and remove, not both"]),
    ("alias-to-remove-not-listed", ["facility", "edit", "FAC-0001", "--remove-alias", "Camp X"],
     ["error: --remove-alias: 'Camp X' is not in the list of FAC-0001"]),
    ("bad-month-in-added-placement", ["child", "edit", "CH-0001", "--add-placement", "FAC-0001:2022-13"],
     ["error: --add-placement (1st value, start): month must be between 01 and 12 (got '2022-13')"]),
    ("added-placement-before-taken", ["child", "edit", "CH-0001", "--add-placement", "FAC-0001:2022-01"],
     ["error: --add-placement (1st value, start): must not be before --taken-on (2022-05-14) (got '2022-01')"]),
    ("added-placement-at-unknown-facility", ["child", "edit", "CH-0001", "--add-placement", "FAC-0099:2022-10"],
     ["error: --add-placement: unknown facility FAC-0099"]),
    ("added-placement-not-in-form", ["child", "edit", "CH-0001", "--add-placement", "FAC-0001:a:b:c"],
     ["error: --add-placement: 'FAC-0001:a:b:c' is not FAC-0001[:START[:END]]", "hint: e.g. --add-placement FAC-0001"]),
    # A correction blames the date just typed, not the one the record holds unchanged.
    ("start-after-the-recorded-end", ["incident", "edit", "INC-0001", "--start", "2023-01"],
     ["error: --start: must not be after --end, recorded as 2022-06 (got '2023-01')"]),
    ("end-before-the-recorded-start", ["incident", "edit", "INC-0001", "--end", "2022-01"],
     ["error: --end: must not be before --start (2022-03) (got '2022-01')"]),
    ("both-dates-typed", ["incident", "edit", "INC-0001", "--start", "2023-01", "--end", "2022-12"],
     ["error: --end: must not be before --start (2023-01) (got '2022-12')"]),
    ("used-from-after-the-recorded-used-to", ["facility", "edit", "FAC-0001", "--used-from", "2023"],
     ["error: --used-from: must not be after --used-to, recorded as 2022-09 (got '2023')"]),
    ("taken-after-the-recorded-placement", ["child", "edit", "CH-0001", "--taken-on", "2022-07"],
     ["error: --taken-on: must not be after --placement (1st value, start), recorded as 2022-06 (got '2022-07')"]),
    ("born-after-the-recorded-taking", ["child", "edit", "CH-0001", "--birth-year", "2023"],
     ["error: --birth-year: must not be after --taken-on, recorded as 2022-05-14 (got '2023')"]),
    ("placements-replaced-before-the-recorded-taking", ["child", "edit", "CH-0001", "--placement", "FAC-0001:2022-04"],
     ["error: --placement (1st value, start): must not be before --taken-on (2022-05-14) (got '2022-04')"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"), [pytest.param(*case[1:], id=case[0]) for case in ADD + EDIT]
)
def test_refused_values_are_named_by_their_options(
    world: Any, cli: Cli, args: list[str], expected: list[str]
) -> None:
    case, _sha, c = world
    if args[1] == "edit":
        args = [*args, "--reason", "checked"]
    text = _refused(case, cli, args, c)
    lines = text.splitlines()
    for part in expected:
        assert any(line.startswith(part) for line in lines), text
    # No line names a field the way the models spell it.
    for field in (
        "children_count",
        "birth_year",
        "taken_on",
        "used_from",
        "used_to",
        "placements",
        "crimes",
        "aliases",
    ):
        assert f"{field}:" not in text and f"{field}[" not in text, text


def test_a_file_keeps_the_field_names_and_lines(world: Any, cli: Cli, tmp_path: Path) -> None:
    case, _sha, c = world
    incident = tmp_path / "incident.yaml"
    incident.write_text(
        "title: Transfer (fictional)\nstart: 2022-05\nend: 2022-04\nplace:\n  name: Example Town\n",
        encoding="utf-8",
    )
    text = _refused(case, cli, ["incident", "add", "--from", str(incident)], c)
    assert f"{incident}:3: end: must not be before start (got '2022-04')" in text
    child = tmp_path / "child.yaml"
    child.write_text(
        "code: C-7\nstatus: missing\ntaken_on: 2022-05-14\nplacements:\n"
        "  - facility: FAC-0001\n    start: 2022-04\n",
        encoding="utf-8",
    )
    text = _refused(case, cli, ["child", "add", "--from", str(child)], c)
    assert f"{child}:4: placements: [0].start 2022-04 is before taken_on (2022-05-14)" in text
    text = _refused(
        case, cli, ["child", "edit", "CH-0001", "--from", str(child), "--reason", "r"], c
    )
    assert f"{child}:4: placements: [0].start 2022-04 is before taken_on (2022-05-14)" in text


# (case name, arguments, line expected in the message)
LINKS: list[tuple[str, list[str], str]] = [
    ("no-target", ["link", "SHA", "--reason", "r"], "error: link needs at least one target in --incident, --facility, --perpetrator or --child"),
    ("bad-second-incident", ["link", "SHA", "--incident", "INC-0001", "--incident", "INC-1", "--reason", "r"], "error: --incident (2nd value): must look like INC-0001"),
    ("empty-reason", ["link", "SHA", "--facility", "FAC-0001", "--reason", " "], "error: --reason: must not be empty"),
    ("unlink-bad-child", ["unlink", "SHA", "--child", "C-042", "--reason", "r"], "error: --child (1st value): must look like CH-0001"),
    ("derive-bad-language", ["derive", "SHA", "--kind", "translation", "--file", "NEW", "--reason", "r", "--language", "en_GB!"], "error: --language: must be a BCP 47 language tag"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"), [pytest.param(*case[1:], id=case[0]) for case in LINKS]
)
def test_link_and_derive_name_their_options(
    world: Any, cli: Cli, tmp_path: Path, args: list[str], expected: str
) -> None:
    case, sha, c = world
    new = tmp_path / "translation.txt"
    new.write_text("fictional translation\n", encoding="utf-8")
    text = _refused(case, cli, [{"SHA": sha, "NEW": str(new)}.get(a, a) for a in args], c)
    assert any(line.startswith(expected) for line in text.splitlines()), text
    assert "(document)" not in text
    for field in ("incidents", "children", "reason:", "language:"):
        assert not any(line.startswith(f"error: {field}") for line in text.splitlines()), text


ID_EXAMPLES = {"incident": "INC-0001", "facility": "FAC-0001", "perpetrator": "PER-0001", "child": "CH-0001"}  # fmt: skip


@pytest.mark.parametrize("verb", ["show", "edit"])
@pytest.mark.parametrize("kind", sorted(ID_EXAMPLES))
def test_the_id_argument_gives_an_example_of_its_own_kind(kind: str, verb: str) -> None:
    group: Any = typer.main.get_command(app)
    command = group.commands[kind].commands[verb]
    (argument,) = [p for p in command.params if p.name == "entity_id"]
    assert argument.help == f"The id, e.g. {ID_EXAMPLES[kind]}."


@pytest.mark.parametrize("kind", sorted(ID_EXAMPLES))
def test_show_help_and_show_work_for_each_kind(world: Any, cli: Cli, kind: str) -> None:
    _case, _sha, c = world
    text = " ".join(_ok(cli(kind, "show", "--help")).stdout.split())
    assert f"e.g. {ID_EXAMPLES[kind]}" in text
    if kind != "perpetrator":
        shown = json.loads(
            _ok(cli(kind, "show", ID_EXAMPLES[kind], "--history", "--json", *c)).stdout
        )
        assert shown["id"] == ID_EXAMPLES[kind] and len(shown["history"]) == 1


def test_ingest_names_its_options(
    make_case: Callable[..., CaseHandle], cli: Cli, tmp_path: Path
) -> None:
    case = make_case()
    note = tmp_path / "note.txt"
    note.write_text("fictional field note\n", encoding="utf-8")
    args = [
        "ingest",
        str(note),
        "--collected-at",
        "2022-99",
        "--method",
        "by-pigeon",
        "--tag",
        "bus",
        "--tag",
        "",
    ]
    message = _refused(case, cli, args, ("--case", str(case.root)))
    assert "--collected-at: " in message
    assert "--method: must be one of" in message
    assert "--tag (2nd value): " in message
    assert "collected_at" not in message
    assert "tags" not in message
