"""Tests of the YAML/JSON loaders: field-level messages with lines, and no identity leaks."""

# Tables of named cases read best one case per line, however long.
# ruff: noqa: E501

from __future__ import annotations

import contextlib
import json
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import evidence.loaders as loaders
from chain_of_custody.errors import InputError
from evidence.loaders import (
    FieldProblem,
    ModelInputError,
    field_name,
    load_entity,
    load_model,
    load_testimony,
    parse_entity_options,
    parse_options,
)
from evidence.models import (
    ENTITY_MODELS,
    Child,
    Facility,
    Incident,
    ItemOptions,
    Link,
    Perpetrator,
    RomeStatuteProvision,
)
from evidence.models import Testimony as WitnessTestimony  # pytest would collect Test*

DATA = Path(__file__).parent / "data"
TEMPLATE_PATH = Path(loaders.__file__).with_name("testimony_template.yaml")
TEMPLATE = TEMPLATE_PATH.read_text(encoding="utf-8")

MARKERS = (
    "Olena Testname-Protected",
    "+380-00-PROTECTED-0000",
    "Protectedstrasse 17, Hiddenville",
)


def template_document() -> dict[str, Any]:
    """The template as plain data (dates as text, as the toolkit's own reader gives them)."""
    document: dict[str, Any] = json.loads(json.dumps(yaml.safe_load(TEMPLATE), default=str))
    return document


def line_of(text: str, needle: str) -> int:
    """The 1-based number of the first line of ``text`` that starts with ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(needle):
            return number
    raise AssertionError(f"{needle!r} not in text")


def write(tmp_path: Path, text: str, name: str = "testimony.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def replace_line(text: str, needle: str, new: str) -> str:
    """Replace the first line starting with ``needle`` by ``new`` (indented alike; "" deletes)."""
    lines = text.splitlines()
    index = line_of(text, needle) - 1
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    lines[index : index + 1] = [indent + part for part in new.splitlines()] if new else []
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The template
# ---------------------------------------------------------------------------------------------


def test_template_is_the_shipped_file() -> None:
    assert loaders.testimony_template() == TEMPLATE


def test_template_loads() -> None:
    testimony = load_testimony(TEMPLATE_PATH)
    assert testimony.witness_code == "W-017"
    assert testimony.interview_place.lat == "50.4501"
    assert testimony.identity is not None
    assert set(testimony.identity.reveal()) == {
        "name",
        "date_of_birth",
        "contact",
        "current_address",
    }


def _field_names(model: Any) -> set[str]:
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        inner = loaders._inner_model(info.annotation)
        if inner is not None:
            names |= _field_names(inner)
    return names


def test_template_mentions_every_field() -> None:
    for name in _field_names(WitnessTestimony):
        assert re.search(rf"^\s*(# )?-? ?{name}:", TEMPLATE, re.MULTILINE), name


def test_template_round_trip_through_yaml(tmp_path: Path) -> None:
    original = load_testimony(TEMPLATE_PATH)
    assert original.identity is not None
    document = original.model_dump(mode="json", exclude_none=True)
    document["identity"] = original.identity.reveal()
    path = write(tmp_path, yaml.safe_dump(document, allow_unicode=True))
    again = load_testimony(path)
    assert again == original
    assert again.identity is not None
    assert again.identity.reveal() == original.identity.reveal()


# ---------------------------------------------------------------------------------------------
# Example entity files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(ENTITY_MODELS))
def test_entity_files_load(kind: str) -> None:
    entity = load_entity(DATA / f"{kind}.yaml", kind)
    assert isinstance(entity, ENTITY_MODELS[kind])


def test_incident_file_values() -> None:
    incident = load_entity(DATA / "incident.yaml", "incident")
    assert isinstance(incident, Incident)
    assert incident.start == "2022-05"  # not turned into a date
    assert incident.place.lat == "46.6354"  # unquoted number kept as written
    assert RomeStatuteProvision.ART_8_2_B_VIII in incident.crimes


def test_json_testimony_loads() -> None:
    testimony = load_testimony(DATA / "testimony.json")
    assert testimony.interview_place.lat == "50.45"
    assert testimony.identity is None


def test_default_id_is_used_only_when_missing(tmp_path: Path) -> None:
    text = (DATA / "facility.yaml").read_text(encoding="utf-8")
    without_id = write(tmp_path, replace_line(text, "id: FAC-0001", ""), "f.yaml")
    facility = load_entity(without_id, "facility", default_id="FAC-0042")
    assert facility.id == "FAC-0042"
    assert load_entity(DATA / "facility.yaml", "facility", default_id="FAC-0042").id == "FAC-0001"


def test_unknown_entity_kind() -> None:
    with pytest.raises(InputError, match="unknown entity kind 'witness'"):
        load_entity(DATA / "incident.yaml", "witness")


def test_generic_load_model(tmp_path: Path) -> None:
    path = write(tmp_path, "subject: W-017\nincidents: [INC-0001]\nreason: same bus\n", "l.yml")
    assert load_model(path, Link).incidents == ("INC-0001",)
    sniffed = write(tmp_path, '{"source": "Example NGO", "tags": ["a"]}', "options.txt")
    assert load_model(sniffed, ItemOptions).tags == ("a",)


# ---------------------------------------------------------------------------------------------
# Narrow YAML
# ---------------------------------------------------------------------------------------------

# (case name, YAML line replacing the template's line, needle, attribute path, expected value)
YAML_VALUES: list[tuple[str, str, str, str, Any]] = [
    ("country-no-stays-norway", "  country: NO", "  country: UA", "interview_place.country", "NO"),
    ("leading-zero-is-decimal", "age_at_events: 012", "age_at_events:", "age_at_events", 12),
    ("date-stays-text", "interview_date: 2023-03-01", "interview_date:", "interview_date", "2023-03-01"),
    ("unquoted-lat-exact", "  lat: 50.45010", '  lat: "50.4501"', "interview_place.lat", "50.45010"),
    ("true-capitalised", "support_person_present: True", "support_person_present:", "support_person_present", True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("new", "needle", "attribute", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in YAML_VALUES],
)
def test_yaml_values(tmp_path: Path, new: str, needle: str, attribute: str, expected: Any) -> None:
    path = write(tmp_path, replace_line(TEMPLATE, needle, new.strip()))
    value: Any = load_testimony(path)
    for part in attribute.split("."):
        value = getattr(value, part)
    assert value == expected


# (case name, the template's date of birth line, the date of birth as sealed)
UNQUOTED_BIRTH_DATES: list[tuple[str, str, str]] = [
    ("year", "date_of_birth: 1985", "1985"),
    ("month", "date_of_birth: 1985-02", "1985-02"),
    ("day", "date_of_birth: 1985-02-11", "1985-02-11"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("new", "expected"), [pytest.param(*case[1:], id=case[0]) for case in UNQUOTED_BIRTH_DATES]
)
def test_unquoted_date_of_birth_is_a_date(tmp_path: Path, new: str, expected: str) -> None:
    # YAML reads an unquoted year as an integer; it is a year, as in an incident's start.
    path = write(tmp_path, replace_line(TEMPLATE, "  date_of_birth:", new))
    identity = load_testimony(path).identity
    assert identity is not None
    assert identity.reveal()["date_of_birth"] == expected


# (case name, the template's date of birth line, message part); the value is never shown
BAD_UNQUOTED_BIRTH_DATES: list[tuple[str, str, str]] = [
    ("year-out-of-range", "date_of_birth: 1850", "a date like 2022"),
    ("year-with-a-fraction", "date_of_birth: 1985.5", "a date like 2022"),
    ("true-is-not-a-year", "date_of_birth: true", "a date like 2022"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("new", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_UNQUOTED_BIRTH_DATES],
)
def test_bad_unquoted_date_of_birth_is_not_shown(tmp_path: Path, new: str, fragment: str) -> None:
    path = write(tmp_path, replace_line(TEMPLATE, "  date_of_birth:", new))
    with pytest.raises(ModelInputError) as info:
        load_testimony(path)
    (problem,) = info.value.problems
    assert problem.field == "identity.date_of_birth"
    assert fragment in problem.message
    typed = new.partition(": ")[2]
    assert typed not in info.value.message
    assert "(got" not in info.value.message


def test_control_characters_accepted_nul_refused(tmp_path: Path) -> None:
    document = template_document()
    document["statement"]["text"] = "a\tb\x07c"
    good = write(tmp_path, json.dumps(document), "good.json")
    assert load_testimony(good).statement.text == "a\tb\x07c"
    document["statement"]["text"] = "a\x00b"
    bad = write(tmp_path, json.dumps(document), "bad.json")
    with pytest.raises(ModelInputError) as info:
        load_testimony(bad)
    assert [p.field for p in info.value.problems] == ["statement.text"]
    assert "NUL" in info.value.message
    assert info.value.problems[0].line == 1  # all of it is on one line


# ---------------------------------------------------------------------------------------------
# Bad documents: every problem names the file, line and field
# ---------------------------------------------------------------------------------------------

# (case name, needle in the template, replacement ("" deletes the line), field, message part,
#  needle whose line the problem must be reported on)
BAD_TESTIMONIES: list[tuple[str, str, str, str, str, str]] = [
    ("missing-required-field", "witness_code:", "", "witness_code", "required", "category:"),
    ("bad-witness-code", "witness_code:", "witness_code: W17", "witness_code", "W-017", "witness_code:"),
    ("wrong-date-format", "interview_date:", "interview_date: 01.03.2023", "interview_date", "2022-05-14", "interview_date:"),
    ("month-only-interview-date", "interview_date:", "interview_date: 2023-03", "interview_date", "full date", "interview_date:"),
    ("unknown-field", "referral:", "referal: x", "referal", "did you mean 'referral'", "referal:"),
    ("bad-enum-value", "category:", "category: victim", "category", "child-victim", "category:"),
    ("negative-age", "age_at_events:", "age_at_events: -4", "age_at_events", "at least 0", "age_at_events:"),
    ("fractional-age", "age_at_events:", "age_at_events: 12.5", "age_at_events", "whole number", "age_at_events:"),
    ("age-as-text", "age_at_events:", "age_at_events: twelve", "age_at_events", "whole number", "age_at_events:"),
    ("yes-is-not-a-boolean", "support_person_present:", "support_person_present: yes", "support_person_present", "true or false", "support_person_present:"),
    ("role-without-presence", "support_person_present:", "support_person_present: false", "support_person_role", "support_person_present is true", "support_person_role:"),
    ("latitude-out-of-range", '  lat: "50.4501"', 'lat: "95"', "interview_place.lat", "between -90 and 90", '  lat: "95"'),
    ("latitude-degrees-minutes", '  lat: "50.4501"', "lat: 50°27'", "interview_place.lat", "decimal latitude", "  lat: 50°27'"),
    ("lon-without-lat", '  lat: "50.4501"', "", "interview_place", "both lat and lon", "interview_place:"),
    ("country-name", "  country: UA", "country: Ukraine", "interview_place.country", "ISO 3166", "  country: Ukraine"),
    ("language-bad", "  - uk", "- Ukrainian language", "languages[0]", "BCP 47", "  - Ukrainian language"),
    ("translator-missing", "    translator:", "", "translations[0].translator", "required", "  - language: en"),
    ("consent-missing-date", "  given_on:", "", "consent.given_on", "required", "consent:"),
    ("consent-withdrawn-before-given", "  # withdrawn_on:", "withdrawn_on: 2023-01-01", "consent.withdrawn_on", "before given_on", "  withdrawn_on:"),
    ("special-measures-number", "  - voice distortion", "- 42", "special_measures[0]", "must be text", "  - 42"),
    ("recording-with-space", "  - recordings/W-017-interview.ogg", "- my recording.ogg", "recordings[0]", "without spaces", "  - my recording.ogg"),
    ("identity-unknown-field", "  contact:", "telephone: 0", "identity", "unknown field", "identity:"),
    ("unknown-field-like-a-name", "referral:", "Olena Petrenko: x", "(unknown field)", "not a known field", "Olena Petrenko:"),
    ("identity-bad-birth-date", "  date_of_birth:", "date_of_birth: 11/02/1985", "identity.date_of_birth", "2022-05", "  date_of_birth:"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("needle", "new", "field", "fragment", "line_needle"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_TESTIMONIES],
)
def test_bad_testimony_names_file_line_and_field(
    tmp_path: Path, needle: str, new: str, field: str, fragment: str, line_needle: str
) -> None:
    text = replace_line(TEMPLATE, needle, new)
    path = write(tmp_path, text)
    with pytest.raises(ModelInputError) as info:
        load_testimony(path)
    error = info.value
    problem = next((p for p in error.problems if p.field == field), None)
    assert problem is not None, error.problems
    assert fragment in problem.message
    assert problem.line == line_of(text, line_needle)
    assert f"{path}:{problem.line}: {field}: " in error.message
    assert error.exit_code == 2
    assert "template" in error.hint


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    text = replace_line(TEMPLATE, "witness_code:", "witness_code: W1")
    text = replace_line(text, "category:", "category: bystander")
    text = replace_line(text, "interview_date:", "interview_date: yesterday")
    with pytest.raises(ModelInputError) as info:
        load_testimony(write(tmp_path, text))
    assert [p.field for p in info.value.problems] == [
        "witness_code",
        "category",
        "interview_date",
    ]
    assert len(info.value.message.splitlines()) == 3


# (case name, dotted path in the template's data, new value, field, message part)
WRONG_TYPES: list[tuple[str, str, Any, str, str]] = [
    ("interviewers-not-a-list", "interviewers", "Investigator A", "interviewers", "must be a list"),
    ("statement-as-text", "statement", "I saw buses", "statement", "mapping of fields"),
    ("consent-as-list", "consent", [True], "consent", "mapping of fields"),
    ("place-name-number", "interview_place.name", 7, "interview_place.name", "must be text"),
    ("languages-nested", "languages", [["uk"]], "languages[0]", "must be text"),
    ("translations-mapping", "translations", {"language": "en"}, "translations", "must be a list"),
    ("age-as-boolean", "age_at_events", True, "age_at_events", "whole number"),
    ("age-too-old", "age_at_events", 200, "age_at_events", "at most 130"),
    ("share-with-empty-name", "consent.share_with", [""], "consent.share_with[0]", "must not be empty"),
    ("identity-as-list", "identity", ["x"], "identity", "mapping of identity fields"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "value", "field", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in WRONG_TYPES],
)
def test_wrong_types_name_field_and_line(
    tmp_path: Path, path: str, value: Any, field: str, fragment: str
) -> None:
    document = template_document()
    *parents, leaf = path.split(".")
    target = document
    for part in parents:
        target = target[part]
    target[leaf] = value
    text = json.dumps(document, indent=2, ensure_ascii=False)
    json_path = write(tmp_path, text, "t.json")
    with pytest.raises(ModelInputError) as info:
        load_testimony(json_path)
    (problem,) = info.value.problems
    assert problem.field == field
    assert fragment in problem.message
    indent = "  " * len(path.split("."))
    key_line = line_of(text, f'{indent}"{leaf}":')
    # A problem with a list item is reported on the item's own line.
    assert problem.line == (key_line + 1 if field.endswith("[0]") else key_line)
    assert f"{json_path}:{problem.line}: {field}: " in info.value.message


def test_value_is_quoted_escaped(tmp_path: Path) -> None:
    document = template_document()
    document["witness_code"] = "W\x1b[31m"
    with pytest.raises(ModelInputError) as info:
        load_testimony(write(tmp_path, json.dumps(document), "t.json"))
    assert "\x1b" not in info.value.message
    assert "got 'W\\x1b[31m'" in info.value.message


# (case name, file name, content, message part)
BAD_FILES: list[tuple[str, str, str | bytes, str]] = [
    ("empty", "t.yaml", "", "is empty"),
    ("only-comments", "t.yaml", "# nothing\n", "is empty"),
    ("list-root", "t.yaml", "- a\n- b\n", "mapping of fields, not a list"),
    ("scalar-root", "t.yaml", "hello\n", "mapping of fields, not a single value"),
    ("yaml-syntax", "t.yaml", "witness_code: W-017\ncategory: [eyewitness\n", "not valid YAML"),
    ("yaml-bad-indent", "t.yaml", "a:\n  b: 1\n c: 2\n", "not valid YAML"),
    ("yaml-tab-indent", "t.yaml", "a:\n\tb: 1\n", "not valid YAML"),
    ("yaml-two-documents", "t.yaml", "a: 1\n---\nb: 2\n", "not valid YAML"),
    ("yaml-python-tag", "t.yaml", "a: !!python/object:os.system x\n", "tags are not accepted"),
    ("yaml-binary-tag", "t.yaml", "a: !!binary aGVsbG8=\n", "tags are not accepted"),
    ("yaml-timestamp-tag", "t.yaml", "a: !!timestamp 2001-12-14\n", "tags are not accepted"),
    ("yaml-hex-int-tag", "t.yaml", "a: !!int 0x1F\n", "decimal digits"),
    ("yaml-bad-bool-tag", "t.yaml", "a: !!bool maybe\n", "true or false"),
    ("yaml-unhashable-key", "t.yaml", "? [a, b]\n: 1\n", "not valid YAML"),
    ("yaml-nul-byte", "t.yaml", "a: 1\nb: x\x00y\n", "U+0000"),
    ("yaml-undefined-alias", "t.yaml", "a: *nowhere\n", "not valid YAML"),
    ("duplicate-key", "t.yaml", "witness_code: W-017\nwitness_code: W-018\n", "duplicate key 'witness_code'"),
    ("not-utf8", "t.yaml", b"witness_code: W-017\nname: \xff\xfe\n", "not UTF-8"),
    ("json-syntax", "t.json", '{\n  "witness_code": "W-017",\n}\n', "not valid JSON"),
    ("json-duplicate-key", "t.json", '{"category": "expert", "category": "insider"}', "duplicate key 'category'"),
    ("json-nan", "t.json", '{"age_at_events": NaN}', "NaN"),
    ("json-huge-int", "t.json", '{"age_at_events": ' + "9" * 5000 + "}", "not valid JSON"),
    ("json-list-root", "t.json", "[1, 2]", "not a list"),
    ("deeply-nested", "t.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_FILES],
)
def test_bad_file_is_an_input_error(
    tmp_path: Path, name: str, content: str | bytes, fragment: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_testimony(path)
    assert fragment in info.value.message
    assert info.value.message.startswith(str(path))
    assert info.value.hint


# (case name, content, expected "line:column" or "line")
POSITIONS: list[tuple[str, str, str]] = [
    ("yaml-unclosed-flow", "witness_code: W-017\ncategory: [eyewitness\n", ":3:1:"),
    ("yaml-bad-indent", "a:\n  b: 1\n c: 2\n", ":3:2:"),
    ("yaml-nul", "a: 1\nb: x\x00y\n", ":2:5:"),
    ("yaml-duplicate", "a: 1\nb: 2\na: 3\n", ":3:"),
]


@pytest.mark.parametrize(("content", "where"), [pytest.param(*c[1:], id=c[0]) for c in POSITIONS])
def test_syntax_errors_name_line_and_column(tmp_path: Path, content: str, where: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(InputError) as info:
        load_testimony(path)
    assert info.value.message.startswith(f"{path}{where}")


def test_json_syntax_error_position(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "witness_code": "W-017",\n}\n', "t.json")
    with pytest.raises(InputError, match=re.escape(f"{path}:3:1: not valid JSON")):
        load_testimony(path)


def test_json_problems_have_lines(tmp_path: Path) -> None:
    text = (DATA / "testimony.json").read_text(encoding="utf-8").replace('"W-018"', '"W18"')
    with pytest.raises(ModelInputError) as info:
        load_testimony(write(tmp_path, text, "t.json"))
    (problem,) = info.value.problems
    assert problem == FieldProblem(
        "witness_code", problem.message, line_of(text, '  "witness_code"')
    )


def test_file_problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_testimony(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="is a directory"):
        load_testimony(tmp_path)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        load_testimony(fifo)  # refused without opening: opening would block
    monkeypatch.setattr(loaders, "MAX_DOCUMENT_BYTES", 100)
    with pytest.raises(InputError, match="larger than"):
        load_testimony(write(tmp_path, "a: " + "x" * 200))


# ---------------------------------------------------------------------------------------------
# Protected identity never echoed
# ---------------------------------------------------------------------------------------------

NAME, CONTACT, ADDRESS = MARKERS

# (case name, replacement for the template's whole identity block)
IDENTITY_BLOCKS: list[tuple[str, str]] = [
    ("name-as-list", f"identity:\n  name: [{NAME}]"),
    ("name-as-mapping", f"identity:\n  name: {{first: {NAME}}}"),
    ("marker-as-key", f"identity:\n  {NAME}: x"),
    ("marker-as-key-and-value", f"identity:\n  {NAME}: {CONTACT}"),
    ("identity-as-text", f"identity: {NAME}"),
    ("identity-as-list", f"identity:\n  - {NAME}\n  - {ADDRESS}"),
    ("date-of-birth-wrong", f"identity:\n  date_of_birth: {ADDRESS}"),
    ("nul-in-contact", f'identity:\n  contact: "{CONTACT}\\0"'),
    ("duplicate-marker-key", f"identity:\n  {NAME}: 1\n  {NAME}: 2"),
    ("unclosed-quote", f'identity:\n  name: "{NAME}\n  contact: x'),
    ("bad-indent-after-name", f"identity:\n  name: {NAME}\n contact: {CONTACT}"),
    ("tab-in-name-line", f"identity:\n\tname: {NAME}"),
    ("control-char-in-name", f"identity:\n  name: {NAME}\x07"),
    ("tag-on-name", f"identity:\n  name: !!python/str {NAME}"),
    ("alias-to-name", f"identity:\n  name: &{NAME.replace(' ', '_')} x\n  contact: *nothing"),
    ("name-as-number-list", f"identity:\n  name: [1, 2]\n  contact: [{CONTACT}]"),
    # A value typed without quotes that YAML reads as an alias, an anchor or a tag.
    ("undefined-alias-is-contact", f"identity:\n  name: x\n  contact: *{NAME.replace(' ', '_')}"),
    (
        "duplicate-anchor-is-name",
        f"identity:\n  name: &{NAME.replace(' ', '_')} a\n  contact: &{NAME.replace(' ', '_')} b",
    ),
    ("tag-handle-is-name", f"identity:\n  name: !{NAME.replace(' ', '_')}!x y"),
    ("local-tag-is-name", f"identity:\n  name: !{NAME.replace(' ', '_')} x"),
    ("escape-in-name", f'identity:\n  name: "{NAME}\\q"'),
    ("anchor-then-symbol", f"identity:\n  name: &@{NAME}"),
]


def _without_identity(text: str) -> str:
    return text[: text.index("\nidentity:") + 1]


@pytest.mark.parametrize("block", [pytest.param(v, id=k) for k, v in IDENTITY_BLOCKS])
def test_identity_values_never_in_errors(tmp_path: Path, block: str) -> None:
    path = write(tmp_path, _without_identity(TEMPLATE) + block + "\n")
    with pytest.raises(InputError) as info:
        load_testimony(path)
    error = info.value
    shown = " ".join(
        [error.diagnostics(), str(error), repr(error), repr(getattr(error, "problems", ()))]
    )
    for marker in MARKERS:
        assert marker not in shown
        assert marker.replace(" ", "_") not in shown
    # Nothing that holds the input is kept on the error for a traceback to print.
    assert error.__cause__ is None
    assert error.__context__ is None


# (case name, the identity block, its problem's line and column after the block's first line,
# the fixed phrase said)
YAML_TOKEN_ERRORS: list[tuple[str, str, str, str]] = [
    (
        "undefined-alias",
        "identity:\n  name: x\n  contact: *Secret-Token-17",
        "2:12",
        "found an alias (a value that starts with '*') that no anchor defines; "
        "put a value that starts with '*' in quotes",
    ),
    (
        "duplicate-anchor",
        "identity:\n  name: &Secret-Token-17 a\n  contact: &Secret-Token-17 b",
        "2:12",
        "found the same anchor (a value that starts with '&') twice; "
        "put a value that starts with '&' in quotes",
    ),
    (
        "undefined-tag-handle",
        "identity:\n  name: !Secret!Token-17 x",
        "1:9",
        "while parsing a node; found an undefined tag handle (a value that starts with '!'); "
        "put a value that starts with '!' in quotes",
    ),
    (
        "character-cannot-start",
        "identity:\n  name: `Secret-Token-17",
        "1:9",
        "while scanning for the next token; found a character that cannot start a value (such "
        "as '@', '`' or a tab); put the value in quotes",
    ),
    (
        "flow-grammar-kept",
        "identity:\n  name: [Secret-Token-17 }",
        "1:26",
        "while parsing a flow sequence; expected ',' or ']', but got '}'",
    ),
]


@pytest.mark.parametrize(
    ("block", "where", "phrase"), [pytest.param(*c[1:], id=c[0]) for c in YAML_TOKEN_ERRORS]
)
def test_yaml_syntax_errors_say_a_fixed_phrase_at_line_and_column(
    tmp_path: Path, block: str, where: str, phrase: str
) -> None:
    head = _without_identity(TEMPLATE)
    path = write(tmp_path, head + block + "\n")
    line, column = (int(n) for n in where.split(":"))
    with pytest.raises(InputError) as info:
        load_testimony(path)
    first = head.count("\n") + 1  # the line of "identity:"
    assert info.value.message == f"{path}:{first + line}:{column}: not valid YAML: {phrase}"
    assert "Secret" not in info.value.diagnostics()


# (case name, raw JSON text of the identity value)
IDENTITY_JSON: list[tuple[str, str]] = [
    ("name-as-list", f'{{"name": ["{NAME}"]}}'),
    ("marker-as-key", f'{{"{NAME}": "x"}}'),
    ("identity-as-text", f'"{NAME}"'),
    ("bad-date-of-birth", f'{{"date_of_birth": "{ADDRESS}"}}'),
    ("nul-in-contact", f'{{"contact": "{CONTACT}\\u0000"}}'),
    ("duplicate-marker-key", f'{{"{NAME}": 1, "{NAME}": 2}}'),
    ("surrogate-in-name", f'{{"name": "{NAME}\\ud800"}}'),
    ("name-as-number", f'{{"name": 1.5, "contact": ["{CONTACT}"]}}'),
    ("syntax-error-after-name", f'{{"name": "{NAME}",, }}'),
]


@pytest.mark.parametrize("value", [pytest.param(v, id=k) for k, v in IDENTITY_JSON])
def test_identity_values_never_in_json_errors(tmp_path: Path, value: str) -> None:
    document = template_document()
    del document["identity"]
    text = json.dumps(document, indent=2)[:-2] + f',\n  "identity": {value}\n}}'
    with pytest.raises(InputError) as info:
        load_testimony(write(tmp_path, text, "t.json"))
    for marker in MARKERS:
        assert marker not in f"{info.value.diagnostics()} {info.value!r}"
    assert info.value.__context__ is None


# ---------------------------------------------------------------------------------------------
# Command-line options
# ---------------------------------------------------------------------------------------------


def test_parse_entity_options_nests_dotted_keys() -> None:
    incident = parse_entity_options(
        "incident",
        {
            "id": "INC-0003",
            "title": "Transfer",
            "start": "2022-05",
            "end": None,
            "place.name": "Example Town",
            "place.country": "ua",
            "crimes": ("art. 7(1)(d)",),
            "description": None,
        },
    )
    assert isinstance(incident, Incident)
    assert incident.place.country == "UA"
    assert incident.end is None


def test_parse_options_errors_name_fields_without_file() -> None:
    with pytest.raises(ModelInputError) as info:
        parse_entity_options(
            "child",
            {"id": "CH-1", "code": "C-1", "status": "gone", "birth_year": "2012.5", "tags": []},
        )
    lines = info.value.message.splitlines()
    assert lines[0].startswith("id: must look like CH-0001")
    assert lines[1] == "birth_year: must be a whole number (got '2012.5')"
    assert lines[2].startswith("status: must be one of")
    assert len(lines) == 3
    assert all(p.line is None for p in info.value.problems)
    assert "--help" in info.value.hint


def test_parse_options_conflicting_keys() -> None:
    with pytest.raises(InputError, match="both as a value and with sub-fields"):
        parse_options(Incident, {"place": "x", "place.name": "y"})
    with pytest.raises(InputError, match="both as a value and with sub-fields"):
        parse_options(Incident, {"place.name": "y", "place": "x"})


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("facility", {"id": "FAC-0002", "name": "Camp", "type": "Boarding school"}),
        ("perpetrator", {"id": "PER-0002", "name": "Unit Z", "kind": "unit", "aliases": ["Z"]}),
        ("child", {"id": "CH-0002", "code": "C-7", "status": "located"}),
    ],
)
def test_parse_entity_options_kinds(kind: str, options: dict[str, Any]) -> None:
    entity = parse_entity_options(kind, options)
    assert isinstance(entity, (Facility, Perpetrator, Child))
    assert type(entity) is ENTITY_MODELS[kind]


# Options as the command line names them (a part of each entity's table, evidence.cli_records).
INCIDENT_OPTION_NAMES = {
    "title": "--title",
    "start": "--start",
    "end": "--end",
    "place.name": "--place",
    "place.lat": "--lat",
    "place.lon": "--lon",
    "crimes": "--crime",
    "children_count": "--children-count",
}
CHILD_OPTION_NAMES = {
    "code": "--code",
    "birth_year": "--birth-year",
    "hometown.name": "--hometown",
    "taken_on": "--taken-on",
    "status": "--status",
    "placements": "--placement",
}

# (case name, location, field path, with the child's or incident's options)
FIELD_NAMES: list[tuple[str, tuple[int | str, ...], str, str]] = [
    ("field", ("children_count",), "children_count", "--children-count"),
    ("field-of-a-nested-record", ("place", "lat"), "place.lat", "--lat"),
    ("nested-record-by-its-first-option", ("place",), "place", "--place"),
    ("first-value", ("crimes", 0), "crimes[0]", "--crime (1st value)"),
    ("second-value", ("crimes", 1), "crimes[1]", "--crime (2nd value)"),
    ("third-value", ("crimes", 2), "crimes[2]", "--crime (3rd value)"),
    ("fourth-value", ("crimes", 3), "crimes[3]", "--crime (4th value)"),
    ("eleventh-value", ("crimes", 10), "crimes[10]", "--crime (11th value)"),
    ("twelfth-value", ("crimes", 11), "crimes[11]", "--crime (12th value)"),
    ("thirteenth-value", ("crimes", 12), "crimes[12]", "--crime (13th value)"),
    ("twenty-first-value", ("crimes", 20), "crimes[20]", "--crime (21st value)"),
    ("hundred-twelfth-value", ("crimes", 111), "crimes[111]", "--crime (112th value)"),
    ("part-of-a-value", ("placements", 1, "start"), "placements[1].start", "--placement (2nd value, start)"),
    ("field-of-no-option", ("id",), "id", "id"),
    ("the-options-as-a-whole", (), "(document)", ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("loc", "path", "option"), [pytest.param(*case[1:], id=case[0]) for case in FIELD_NAMES]
)
def test_field_name_is_the_option_typed(loc: tuple[int | str, ...], path: str, option: str) -> None:
    assert field_name(loc) == path
    assert field_name(loc, INCIDENT_OPTION_NAMES | CHILD_OPTION_NAMES) == option


def test_option_problems_name_the_options() -> None:
    values = {"id": "INC-0000", "title": "x", "start": "2022-05", "children_count": "abc"}
    with pytest.raises(ModelInputError) as info:
        parse_entity_options("incident", values, option_names=INCIDENT_OPTION_NAMES)
    assert info.value.message.splitlines() == [
        "--place: is required but missing",
        "--children-count: must be a whole number (got 'abc')",
    ]
    assert info.value.hint == "correct the options named above; see --help"
    # Without the names, the fields as before.
    with pytest.raises(ModelInputError) as info:
        parse_entity_options("incident", values)
    assert info.value.message.splitlines() == [
        "place: is required but missing",
        "children_count: must be a whole number (got 'abc')",
    ]


INCIDENT_VALUES: dict[str, Any] = {"id": "INC-0001", "title": "T", "start": "2022-03", "place.name": "Example Town"}  # fmt: skip

# (case name, model, option values, option names, message with the names, message without)
MESSAGES_NAMING_FIELDS: list[tuple[str, type[BaseModel], dict[str, Any], dict[str, str], str, str]] = [
    ("end-before-start", Incident, {**INCIDENT_VALUES, "end": "2022-02"}, INCIDENT_OPTION_NAMES,
     "--end: must not be before --start (2022-03) (got '2022-02')",
     "end: must not be before start (got '2022-02')"),
    ("latitude-without-longitude", Incident, {**INCIDENT_VALUES, "place.lat": "46.6354"}, INCIDENT_OPTION_NAMES,
     "--place: give both --lat and --lon, or neither",
     "place: give both lat and lon, or neither"),
    ("taken-before-birth", Child, {"id": "CH-0001", "code": "C-7", "status": "missing", "birth_year": "2015", "taken_on": "2014"}, CHILD_OPTION_NAMES,
     "--taken-on: must not be before --birth-year (2015) (got '2014')",
     "taken_on: must not be before birth_year (2015); check the year of both (got '2014')"),
    ("placed-before-taken", Child, {"id": "CH-0001", "code": "C-7", "status": "missing", "taken_on": "2022-05-14", "placements": [{"facility": "FAC-0001", "start": "2022-06"}, {"facility": "FAC-0001", "start": "2022-04"}]}, CHILD_OPTION_NAMES,
     "--placement (2nd value, start): must not be before --taken-on (2022-05-14) (got '2022-04')",
     "placements: [1].start 2022-04 is before taken_on (2022-05-14); check both dates"),
    ("placement-ends-before-it-starts", Child, {"id": "CH-0001", "code": "C-7", "status": "missing", "placements": [{"facility": "FAC-0001", "start": "2022-06", "end": "2022-05"}]}, CHILD_OPTION_NAMES,
     "--placement (1st value, end): must not be before start (2022-06) (got '2022-05')",
     "placements[0].end: must not be before start (got '2022-05')"),
    ("link-without-target", Link, {"subject": "W-017", "reason": "r"}, {"incidents": "--incident", "facilities": "--facility", "perpetrators": "--perpetrator", "children": "--child"},
     "link needs at least one target in --incident, --facility, --perpetrator or --child",
     "(document): link needs at least one target in incidents, facilities, perpetrators or children"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "values", "names", "named", "plain"),
    [pytest.param(*case[1:], id=case[0]) for case in MESSAGES_NAMING_FIELDS],
)
def test_a_message_naming_another_field_names_its_option(
    model: type[BaseModel], values: dict[str, Any], names: dict[str, str], named: str, plain: str
) -> None:
    with pytest.raises(ModelInputError) as info:
        parse_options(model, values, option_names=names)
    assert info.value.message == named
    with pytest.raises(ModelInputError) as info:
        parse_options(model, values)
    assert info.value.message == plain


STORED_INCIDENT: dict[str, Any] = {"id": "INC-0001", "title": "T", "start": "2022-03", "end": "2022-06", "place": {"name": "Example Town"}}  # fmt: skip

# (case name, values of the correction, message with the options named, message without)
CORRECTED_DATES: list[tuple[str, dict[str, Any], str, str]] = [
    ("start-moved-after-the-recorded-end", {"start": "2023-01"},
     "--start: must not be after --end, recorded as 2022-06 (got '2023-01')",
     "start: must not be after end, recorded as 2022-06 (got '2023-01')"),
    ("end-moved-before-the-recorded-start", {"end": "2022-01"},
     "--end: must not be before --start (2022-03) (got '2022-01')",
     "end: must not be before start (got '2022-01')"),
    ("both-changed", {"start": "2023-01", "end": "2022-12"},
     "--end: must not be before --start (2023-01) (got '2022-12')",
     "end: must not be before start (got '2022-12')"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "named", "plain"), [pytest.param(*case[1:], id=case[0]) for case in CORRECTED_DATES]
)
def test_a_correction_blames_the_date_just_changed(
    changes: dict[str, Any], named: str, plain: str
) -> None:
    values = {**STORED_INCIDENT, **changes}
    with pytest.raises(ModelInputError) as info:
        parse_entity_options(
            "incident", values, recorded=STORED_INCIDENT, option_names=INCIDENT_OPTION_NAMES
        )
    assert info.value.message == named
    with pytest.raises(ModelInputError) as info:
        parse_entity_options("incident", values, recorded=STORED_INCIDENT)
    assert info.value.message == plain


def test_corrected_identity_dates_are_never_quoted() -> None:
    # The witness of the template is 38 at the events and was interviewed on 2023-03-01.
    stored = template_document()
    corrected = {**stored, "identity": {**stored["identity"], "date_of_birth": "1987-06-02"}}
    names = {"identity.date_of_birth": "--date-of-birth", "age_at_events": "--age-at-events"}
    for option_names in (names, None):
        with pytest.raises(ModelInputError) as info:
            parse_options(WitnessTestimony, corrected, recorded=stored, option_names=option_names)
        text = f"{info.value.diagnostics()} {info.value!r}"
        assert "1987" not in text and "06-02" not in text
        assert str(stored["identity"]["date_of_birth"]) not in text
        assert "does not fit age_at_events (38)" in info.value.message


def test_file_problems_keep_field_and_line(tmp_path: Path) -> None:
    text = (DATA / "incident.yaml").read_text(encoding="utf-8")
    path = write(tmp_path, replace_line(text, "end:", "end: 2022-04"), "incident.yaml")
    with pytest.raises(ModelInputError) as info:
        load_entity(path, "incident")
    line = line_of(replace_line(text, "end:", "end: 2022-04"), "end:")
    assert info.value.message == f"{path}:{line}: end: must not be before start (got '2022-04')"


# ---------------------------------------------------------------------------------------------
# Property: no document makes the loaders fail other than with InputError
# ---------------------------------------------------------------------------------------------

_FIELD_KEYS = sorted(_field_names(WitnessTestimony) | set().union(*map(_field_names, ENTITY_MODELS.values())))  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    st.text(max_size=30),
    st.sampled_from(["W-017", "INC-0001", "2022-05", "uk", "UA", "child-victim", "true"]),
)
keys = st.one_of(st.sampled_from(_FIELD_KEYS), st.text(max_size=10))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=6)
    ),
    max_leaves=25,
)


def _check_outcome(path: Path) -> None:
    """Loading as a testimony and as each entity kind gives a model or an InputError."""
    with contextlib.suppress(InputError):
        load_testimony(path)
    for kind in ENTITY_MODELS:
        with contextlib.suppress(InputError):
            load_entity(path, kind)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=documents, as_json=st.booleans())
def test_random_documents_raise_only_input_errors(
    tmp_path: Path, document: Any, as_json: bool
) -> None:
    if as_json:
        path = write(tmp_path, json.dumps(document), "doc.json")
    else:
        path = write(tmp_path, yaml.safe_dump(document, allow_unicode=True), "doc.yaml")
    _check_outcome(path)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_random_bytes_raise_only_input_errors(tmp_path: Path, raw: bytes) -> None:
    for name in ("doc.yaml", "doc.json", "doc"):
        path = tmp_path / name
        path.write_bytes(raw)
        _check_outcome(path)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(field=st.sampled_from(sorted(yaml.safe_load(TEMPLATE))), value=documents)
def test_template_with_one_random_field(tmp_path: Path, field: str, value: Any) -> None:
    document = template_document()
    document[field] = value
    path = write(tmp_path, yaml.safe_dump(document, allow_unicode=True, default_flow_style=False))
    try:
        load_testimony(path)
    except ModelInputError as exc:
        # Whatever went wrong is reported at the changed field, on a real line.
        assert any(p.field.split(".")[0].split("[")[0] == field for p in exc.problems) or any(
            p.field in {"support_person_role", "(document)"} for p in exc.problems
        )
        assert all(p.line is not None and p.line >= 1 for p in exc.problems)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lat=st.decimals(min_value=-90, max_value=90, places=7, allow_nan=False))
def test_unquoted_coordinates_keep_their_digits(tmp_path: Path, lat: Decimal) -> None:
    text = replace_line(TEMPLATE, '  lat: "50.4501"', f"lat: {lat}")
    loaded = load_testimony(write(tmp_path, text)).interview_place.lat
    assert loaded is not None
    assert Decimal(loaded) == lat
