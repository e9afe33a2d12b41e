"""Dates a court would not accept are refused when they are typed in.

Two kinds of rule, each tested over a table of named bad inputs:

- dates that contradict each other (an end before its start, a child taken before the year of
  birth, an age at the events the witness had not reached by the interview) are refused by the
  models always; dates with a precision (2022, 2022-05) are refused only when wrong whatever
  day they stand for;
- dates after today (UTC, one day of tolerance) and moments after now (a few minutes of clock
  skew) are refused at input only: loaders, command-line options, ``withdraw-consent --on``. A
  record read back, or a case recorded on a machine whose clock was ahead, still validates,
  verifies, is corrected and exports.

"Today" and "now" are fixed (:data:`TODAY`, :data:`NOW`), so none of these tests changes its
answer as the years pass.
All data is fictional.
"""

# Tables of named cases read best one case per line, however long.
# ruff: noqa: E501

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from evidence import entities, models
from evidence.errors import InputError
from evidence.ingest import ingest
from evidence.links import make_links
from evidence.loaders import (
    ModelInputError,
    load_entity,
    load_testimony,
    parse_entity_options,
    parse_options,
)
from evidence.models import (
    Child,
    Facility,
    Incident,
    ItemOptions,
    ProtectedIdentity,
    input_context,
)
from evidence.models import Testimony as WitnessTestimony  # pytest would collect Test*
from evidence.testimony import record_testimony
from evidence.verify import verify_case
from exports.bundle import export_bundle
from exports.model import Selection
from tests.conftest import CaseHandle, CliResult
from tests.evidence.test_loaders import TEMPLATE, TEMPLATE_PATH, line_of, replace_line, write
from tests.evidence.test_models import BASES, with_change
from tests.evidence.test_testimony import make_testimony, write_testimony

TODAY = date(2024, 6, 15)
"""The fixed "today" of these tests; with the one day of tolerance, 2024-06-16 is accepted."""

NOW = datetime(2024, 6, 15, 21, 30, tzinfo=UTC)
"""The fixed "now" of these tests, late on :data:`TODAY`."""

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
SAMPLE_RECORDS = REPO / "sample-data" / "records"
FUTURE = "is in the future (today is 2024-06-15 UTC)"
FUTURE_PATTERN = re.escape(FUTURE)
LATER = "is later than now (2024-06-15 21:30 UTC)"

IDENTITY_BASE: dict[str, Any] = {"name": "Fictional Witness Name"}
ALL_BASES: dict[type[BaseModel], dict[str, Any]] = {**BASES, ProtectedIdentity: IDENTITY_BASE}


def changed(model: type[BaseModel], changes: dict[str, Any]) -> dict[str, Any]:
    """The example data of ``model`` with each dotted path set (``...`` deletes it)."""
    data = ALL_BASES[model]
    for path, value in changes.items():
        data = with_change(data, path, value)
    return data


def locations(error: ValidationError) -> dict[str, str]:
    """Each error's dotted location and message."""
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in error.errors()}


@pytest.fixture
def frozen_today(monkeypatch: pytest.MonkeyPatch) -> date:
    """Make :data:`NOW` the instant, and so :data:`TODAY` the date, the input checks take."""
    monkeypatch.setattr(models, "utc_now", lambda: NOW)
    return TODAY


# ---------------------------------------------------------------------------------------------
# Dates against each other: refused always, and only when certainly wrong
# ---------------------------------------------------------------------------------------------

# (case name, model, changes to its example, field refused, message part)
CONTRADICTIONS: list[tuple[str, type[BaseModel], dict[str, Any], str, str]] = [
    ("incident-ends-the-day-before-it-starts", Incident, {"start": "2022-05-14", "end": "2022-05-13"}, "end", "before start"),
    ("incident-ends-the-year-before-it-starts", Incident, {"start": "2022", "end": "2021-12"}, "end", "before start"),
    ("facility-dates-of-use-reversed", Facility, {"used_from": "2022-06", "used_to": "2022-05-31"}, "used_to", "before used_from"),
    ("placement-ends-before-it-starts", Child, {"placements": [{"facility": "FAC-0001", "start": "2022-06", "end": "2022-05"}]}, "placements.0.end", "before start"),
    ("consent-withdrawn-before-it-was-given", WitnessTestimony, {"consent.withdrawn_on": "2023-02-28"}, "consent.withdrawn_on", "before given_on"),
    ("child-taken-before-year-of-birth", Child, {"birth_year": 2015, "taken_on": "2014-12-31"}, "taken_on", "before birth_year (2015)"),
    ("child-taken-the-year-before-birth", Child, {"birth_year": 2015, "taken_on": "2014"}, "taken_on", "before birth_year (2015)"),
    ("child-placed-before-year-of-birth", Child, {"birth_year": 2015, "placements": [{"facility": "FAC-0001", "start": "2014-06"}]}, "placements", "[0].start 2014-06 is before birth_year (2015)"),
    ("child-placement-ended-before-birth", Child, {"birth_year": 2015, "placements": [{"facility": "FAC-0001", "start": "2015", "end": "2016"}, {"facility": "FAC-0002", "end": "2014"}]}, "placements", "[1].end 2014 is before birth_year (2015)"),
    ("child-placed-the-day-before-taken", Child, {"taken_on": "2022-05-14", "placements": [{"facility": "FAC-0001", "start": "2022-05-13"}]}, "placements", "[0].start 2022-05-13 is before taken_on (2022-05-14); check both dates"),
    ("child-placed-the-month-before-taken", Child, {"taken_on": "2022-05-14", "placements": [{"facility": "FAC-0001", "start": "2022-04"}]}, "placements", "[0].start 2022-04 is before taken_on (2022-05-14)"),
    ("child-placed-the-year-before-taken", Child, {"taken_on": "2022-05", "placements": [{"facility": "FAC-0001", "start": "2021"}]}, "placements", "[0].start 2021 is before taken_on (2022-05)"),
    ("child-placement-ended-before-taken", Child, {"taken_on": "2022-05", "placements": [{"facility": "FAC-0001", "start": "2022-06", "end": "2022-07"}, {"facility": "FAC-0002", "end": "2022-04-30"}]}, "placements", "[1].end 2022-04-30 is before taken_on (2022-05)"),
    ("child-placed-before-taken-and-born", Child, {"birth_year": 2012, "taken_on": "2022", "placements": [{"facility": "FAC-0001", "start": "2011"}]}, "placements", "[0].start 2011 is before birth_year (2012)"),
    ("interviewed-before-being-born", WitnessTestimony, {"identity.date_of_birth": "2023-05", "age_at_events": ...}, "identity", "date_of_birth is after interview_date (2023-03-01)"),
    ("age-at-events-not-reached-by-the-interview", WitnessTestimony, {"identity.date_of_birth": "2011-03-02", "age_at_events": 12}, "identity", "date_of_birth does not fit age_at_events (12)"),
    ("age-at-events-against-year-of-birth", WitnessTestimony, {"identity.date_of_birth": "2012", "age_at_events": 12}, "identity", "date_of_birth does not fit age_at_events (12)"),
    ("adult-age-for-a-recent-birth", WitnessTestimony, {"identity.date_of_birth": "2010-04", "age_at_events": 38}, "identity", "does not fit age_at_events (38)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "changes", "field", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in CONTRADICTIONS],
)
@pytest.mark.parametrize("context", [None, input_context(TODAY)], ids=["read-back", "input"])
def test_contradicting_dates_are_refused_naming_the_field(
    model: type[BaseModel],
    changes: dict[str, Any],
    field: str,
    fragment: str,
    context: dict[str, date] | None,
) -> None:
    data = changed(model, changes)
    with pytest.raises(ValidationError) as info:
        model.model_validate(data, context=context)
    found = locations(info.value)
    assert field in found, found
    assert fragment in found[field]
    # A witness's date of birth is protected: no message may quote it.
    birth = changes.get("identity.date_of_birth")
    if birth is not None:
        assert str(birth) not in str(info.value)
        assert str(birth) not in " ".join(found.values())


# (case name, model, changes to its example): certainly right, or possibly right
CONSISTENT: list[tuple[str, type[BaseModel], dict[str, Any]]] = [
    ("incident-of-one-day", Incident, {"start": "2022-05-14", "end": "2022-05-14"}),
    ("incident-end-known-to-the-year", Incident, {"start": "2022-05-14", "end": "2022"}),
    ("incident-end-known-to-the-month", Incident, {"start": "2022-05-14", "end": "2022-05"}),
    ("incident-start-known-to-the-year", Incident, {"start": "2022", "end": "2022-01-01"}),
    ("facility-used-within-a-year", Facility, {"used_from": "2022", "used_to": "2022-01"}),
    ("child-taken-in-year-of-birth", Child, {"birth_year": 2015, "taken_on": "2015"}),
    ("child-taken-on-new-years-day-of-birth", Child, {"birth_year": 2015, "taken_on": "2015-01-01"}),
    ("child-placed-in-year-of-birth", Child, {"birth_year": 2015, "placements": [{"facility": "FAC-0001", "start": "2015", "end": "2015-01"}]}),
    ("child-placed-the-day-taken", Child, {"taken_on": "2022-05-14", "placements": [{"facility": "FAC-0001", "start": "2022-05-14", "end": "2022-05-14"}]}),
    ("child-placed-in-the-month-taken", Child, {"taken_on": "2022-05-14", "placements": [{"facility": "FAC-0001", "start": "2022-05"}]}),
    ("child-taken-in-the-month-placed", Child, {"taken_on": "2022-05", "placements": [{"facility": "FAC-0001", "start": "2022-05-01"}]}),
    ("child-placed-in-the-year-taken", Child, {"taken_on": "2022-05-14", "placements": [{"facility": "FAC-0001", "start": "2022", "end": "2022"}]}),
    ("child-placed-without-dates", Child, {"taken_on": "2022-05-14", "placements": [{"facility": "FAC-0001"}]}),
    ("child-placed-after-taken", Child, {"birth_year": 2012, "taken_on": "2022-05-14", "placements": [{"facility": "FAC-0001", "start": "2022-06", "end": "2023"}, {"facility": "FAC-0002", "end": "2022-05-20"}]}),
    ("child-year-of-birth-unknown", Child, {"taken_on": "1999", "placements": [{"facility": "FAC-0001", "start": "1999"}]}),
    ("child-dates-unknown-but-placements", Child, {"placements": [{"facility": "FAC-0001", "start": "1999"}]}),
    ("consent-withdrawn-the-day-it-was-given", WitnessTestimony, {"consent.withdrawn_on": "2023-03-01"}),
    ("age-reached-on-the-interview-day", WitnessTestimony, {"identity.date_of_birth": "2011-03-01", "age_at_events": 12}),
    ("age-with-year-of-birth-only", WitnessTestimony, {"identity.date_of_birth": "2011", "age_at_events": 12}),
    ("age-with-month-of-birth-only", WitnessTestimony, {"identity.date_of_birth": "2011-03", "age_at_events": 12}),
    ("age-younger-than-at-interview", WitnessTestimony, {"identity.date_of_birth": "1985-02-11", "age_at_events": 12}),
    ("born-on-29-february", WitnessTestimony, {"identity.date_of_birth": "2008-02-29", "age_at_events": 15, "interview_date": "2023-02-28", "consent.given_on": "2023-02-28"}),
    ("interviewed-in-month-of-birth", WitnessTestimony, {"identity.date_of_birth": "2023-03", "age_at_events": 0}),
    ("age-without-date-of-birth", WitnessTestimony, {"identity.date_of_birth": ..., "age_at_events": 99}),
    ("date-of-birth-without-age", WitnessTestimony, {"identity.date_of_birth": "1940", "age_at_events": ...}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "changes"), [pytest.param(*case[1:], id=case[0]) for case in CONSISTENT]
)
def test_dates_that_may_be_right_are_accepted(
    model: type[BaseModel], changes: dict[str, Any]
) -> None:
    model.model_validate(changed(model, changes), context=input_context(TODAY))


# ---------------------------------------------------------------------------------------------
# Dates against the clock: refused at input only
# ---------------------------------------------------------------------------------------------

# (case name, model, changes to its example, field refused); each change is consistent
# otherwise, so that without the input context it is accepted.
IN_THE_FUTURE: list[tuple[str, type[BaseModel], dict[str, Any], str]] = [
    ("incident-starts-in-two-days", Incident, {"start": "2024-06-17", "end": ...}, "start"),
    ("incident-starts-next-month", Incident, {"start": "2024-07", "end": ...}, "start"),
    ("incident-starts-next-year", Incident, {"start": "2025", "end": ...}, "start"),
    ("incident-dated-2099", Incident, {"start": "2099", "end": ...}, "start"),
    ("incident-ends-next-year", Incident, {"end": "2025"}, "end"),
    ("facility-used-from-next-month", Facility, {"used_from": "2024-07"}, "used_from"),
    ("facility-used-until-2030", Facility, {"used_to": "2030"}, "used_to"),
    ("child-born-next-year", Child, {"birth_year": 2025}, "birth_year"),
    ("child-taken-next-week", Child, {"taken_on": "2024-06-22"}, "taken_on"),
    ("placement-starts-in-august", Child, {"placements": [{"facility": "FAC-0001", "start": "2024-08"}]}, "placements.0.start"),
    ("placement-ends-in-december", Child, {"placements": [{"facility": "FAC-0001", "start": "2024-05", "end": "2024-12"}]}, "placements.0.end"),
    ("interview-dated-2099", WitnessTestimony, {"interview_date": "2099-03-01"}, "interview_date"),
    ("consent-given-in-two-days", WitnessTestimony, {"consent.given_on": "2024-06-17"}, "consent.given_on"),
    ("consent-withdrawn-next-month", WitnessTestimony, {"consent.withdrawn_on": "2024-07-01"}, "consent.withdrawn_on"),
    ("date-of-birth-next-month", ProtectedIdentity, {"date_of_birth": "2024-07"}, "date_of_birth"),
    ("collected-on-a-future-day", ItemOptions, {"collected_at": "2024-06-17"}, "collected_at"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "changes", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in IN_THE_FUTURE],
)
def test_future_dates_are_refused_at_input(
    model: type[BaseModel], changes: dict[str, Any], field: str
) -> None:
    data = changed(model, changes)
    with pytest.raises(ValidationError) as info:
        model.model_validate(data, context=input_context(TODAY))
    found = locations(info.value)
    assert field in found, found
    assert found[field].startswith(FUTURE)
    assert "check the year" in found[field]
    if model is ProtectedIdentity:
        assert changes["date_of_birth"] not in str(info.value)


@pytest.mark.parametrize(
    ("model", "changes"),
    [pytest.param(*case[1:3], id=case[0]) for case in IN_THE_FUTURE],
)
def test_future_dates_are_not_judged_when_read_back(
    model: type[BaseModel], changes: dict[str, Any]
) -> None:
    # Records read from the log or the catalog are built without the input context: a case
    # recorded when the clock (or the calendar) said otherwise still opens.
    built = model.model_validate(changed(model, changes))
    if isinstance(built, ProtectedIdentity):
        return  # sealed, never read back through the model
    if isinstance(built, WitnessTestimony):
        built = built.public_view()  # as the testimony document stores it
    assert model.model_validate(built.model_dump(mode="json")) == built


# (case name, model, changes to its example): today, and the day of tolerance
NOT_IN_THE_FUTURE: list[tuple[str, type[BaseModel], dict[str, Any]]] = [
    ("incident-starts-today", Incident, {"start": "2024-06-15", "end": ...}),
    ("incident-starts-tomorrow", Incident, {"start": "2024-06-16", "end": ...}),
    ("incident-this-month", Incident, {"start": "2024-06", "end": ...}),
    ("incident-this-year", Incident, {"start": "2024", "end": ...}),
    ("child-born-this-year", Child, {"birth_year": 2024, "taken_on": "2024-06"}),
    ("interview-today", WitnessTestimony, {"interview_date": "2024-06-15", "consent.given_on": "2024-06-16"}),
    ("date-of-birth-this-year", ProtectedIdentity, {"date_of_birth": "2024"}),
    ("collected-tomorrow-as-a-day", ItemOptions, {"collected_at": "2024-06-16"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "changes"), [pytest.param(*case[1:], id=case[0]) for case in NOT_IN_THE_FUTURE]
)
def test_today_and_tomorrow_are_accepted(model: type[BaseModel], changes: dict[str, Any]) -> None:
    model.model_validate(changed(model, changes), context=input_context(TODAY))


# A moment (a date with a time of day) says when it was to the second, with its offset: it is
# compared with now, not given the day of tolerance a bare date needs.
# (case name, collected_at, refused by the context of NOW)
MOMENTS: list[tuple[str, str, bool]] = [
    ("now", "2024-06-15T21:30:00Z", False),
    ("earlier-today", "2024-06-15T08:00:00Z", False),
    ("within-the-clock-skew", "2024-06-15T21:39:59Z", False),
    ("now-east-of-utc", "2024-06-16T11:30:00+14:00", False),
    ("now-west-of-utc", "2024-06-15T11:30:00-10:00", False),
    ("with-nanoseconds", "2024-06-15T23:30:00.123456789+02:00", False),
    ("beyond-the-clock-skew", "2024-06-15T21:41:00Z", True),
    ("late-tomorrow-utc", "2024-06-16T23:59:59Z", True),
    ("next-utc-midnight", "2024-06-16T00:00:00Z", True),
    ("an-hour-ahead-east-of-utc", "2024-06-16T12:30:00+14:00", True),
    ("tomorrow-evening-west-of-utc", "2024-06-16T20:00:00-10:00", True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("collected_at", "refused"), [pytest.param(*case[1:], id=case[0]) for case in MOMENTS]
)
def test_moments_are_compared_with_now(collected_at: str, refused: bool) -> None:
    data = {"collected_at": collected_at}
    if not refused:
        ItemOptions.model_validate(data, context=input_context(now=NOW))
        return
    with pytest.raises(ValidationError) as info:
        ItemOptions.model_validate(data, context=input_context(now=NOW))
    message = locations(info.value)["collected_at"]
    assert message.startswith(LATER), message
    # Read back, the moment is not judged against the clock.
    assert ItemOptions.model_validate(data).collected_at == collected_at


# (case name, collected_at, refused): with only a day known, now is the end of that day.
MOMENTS_ON_A_GIVEN_DAY: list[tuple[str, str, bool]] = [
    ("end-of-the-day", "2024-06-15T23:59:59Z", False),
    ("next-midnight-within-the-skew", "2024-06-16T00:05:00Z", False),
    ("next-morning", "2024-06-16T08:00:00Z", True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("collected_at", "refused"),
    [pytest.param(*case[1:], id=case[0]) for case in MOMENTS_ON_A_GIVEN_DAY],
)
def test_moments_with_only_today_given(collected_at: str, refused: bool) -> None:
    data = {"collected_at": collected_at}
    if not refused:
        ItemOptions.model_validate(data, context=input_context(TODAY))
        return
    with pytest.raises(
        ValidationError, match=re.escape("is later than now (2024-06-16 00:00 UTC)")
    ):
        ItemOptions.model_validate(data, context=input_context(TODAY))


def test_today_and_now_default_to_the_system_clock(frozen_today: date) -> None:
    assert input_context() == input_context(now=NOW)
    assert input_context() == input_context(TODAY, now=NOW)
    with pytest.raises(ValidationError, match="today is 2024-06-15 UTC"):
        Incident.model_validate({**BASES[Incident], "end": "2024-07"}, context=input_context())
    with pytest.raises(ValidationError, match=re.escape(LATER)):
        ItemOptions.model_validate(
            {"collected_at": "2024-06-16T00:00:00Z"}, context=input_context()
        )


# ---------------------------------------------------------------------------------------------
# Files: the field path and line as written
# ---------------------------------------------------------------------------------------------

# (case name, needle in the template, replacement, field, shown value or None when protected,
#  needle of the line the problem is reported on)
BAD_TESTIMONY_DATES: list[tuple[str, str, str, str, str | None, str]] = [
    ("interview-dated-2099", "interview_date:", "interview_date: 2099-03-01", "interview_date", "'2099-03-01'", "interview_date:"),
    ("consent-given-in-the-future", "  given_on:", "given_on: 2024-06-20", "consent.given_on", "'2024-06-20'", "  given_on:"),
    ("consent-withdrawn-in-the-future", "  # withdrawn_on:", "withdrawn_on: 2024-07-01", "consent.withdrawn_on", "'2024-07-01'", "  withdrawn_on:"),
    ("born-in-the-future", "  date_of_birth:", "date_of_birth: 2025-01", "identity.date_of_birth", None, "  date_of_birth:"),
    ("born-in-a-future-year-unquoted", "  date_of_birth:", "date_of_birth: 2025", "identity.date_of_birth", None, "  date_of_birth:"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("needle", "new", "field", "shown", "line_needle"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_TESTIMONY_DATES],
)
def test_future_date_in_a_testimony_file_names_file_line_and_field(
    tmp_path: Path, needle: str, new: str, field: str, shown: str | None, line_needle: str
) -> None:
    text = replace_line(TEMPLATE, needle, new)
    path = write(tmp_path, text)
    with pytest.raises(ModelInputError) as info:
        load_testimony(path, today=TODAY)
    error = info.value
    (problem,) = error.problems
    assert problem.field == field
    assert problem.line == line_of(text, line_needle)
    expected = f"{path}:{problem.line}: {field}: {FUTURE}"
    assert error.message.startswith(expected), error.message
    if shown is None:
        typed = new.partition(": ")[2]
        assert typed not in error.message and "(got" not in error.message
    else:
        assert error.message.endswith(f"(got {shown})")
    assert error.exit_code == 2


def test_age_that_contradicts_date_of_birth_in_a_testimony_file(tmp_path: Path) -> None:
    # The template's witness is 38 at the events, born 1985-02-11, interviewed 2023-03-01.
    text = replace_line(TEMPLATE, "  date_of_birth:", "date_of_birth: 1985-03-02")
    path = write(tmp_path, text)
    with pytest.raises(ModelInputError) as info:
        load_testimony(path, today=TODAY)
    (problem,) = info.value.problems
    assert problem.field == "identity"
    assert problem.line == line_of(text, "identity:")
    assert "date_of_birth does not fit age_at_events (38)" in problem.message
    assert "1985-03-02" not in info.value.message
    assert info.value.exit_code == 2


def test_future_date_in_an_entity_file(tmp_path: Path) -> None:
    text = (DATA / "incident.yaml").read_text(encoding="utf-8")
    path = write(tmp_path, replace_line(text, "start:", "start: 2099-05"), "incident.yaml")
    with pytest.raises(ModelInputError) as info:
        load_entity(path, "incident", today=TODAY)
    assert [p.field for p in info.value.problems] == ["start"]
    assert f"start: {FUTURE}" in info.value.message
    assert "(got '2099-05')" in info.value.message


def shipped_documents() -> Iterator[Any]:
    yield pytest.param(TEMPLATE_PATH, "testimony", id="testimony-template")
    for path in sorted(SAMPLE_RECORDS.glob("*.yaml")):
        kind = "testimony" if path.stem.startswith("testimony") else path.stem
        yield pytest.param(path, kind, id=f"sample-data-{path.stem}")
    for path in sorted(DATA.glob("*.*")):
        yield pytest.param(path, path.stem, id=f"test-data-{path.stem}")


@pytest.mark.parametrize(("path", "kind"), list(shipped_documents()))
@pytest.mark.parametrize("today", [TODAY, None], ids=["fixed-today", "system-clock"])
def test_shipped_templates_and_samples_load(path: Path, kind: str, today: date | None) -> None:
    if kind == "testimony":
        load_testimony(path, today=today)
    else:
        # The sample records leave the id to the case, as `evidence incident add` allows.
        load_entity(path, kind, default_id=entities.placeholder_id(kind), today=today)


# ---------------------------------------------------------------------------------------------
# Options: the command line's values, and corrections of what the case holds
# ---------------------------------------------------------------------------------------------

INCIDENT_OPTIONS: dict[str, Any] = {
    "id": "INC-0001",
    "title": "Transfer (fictional)",
    "start": "2022-05",
    "place.name": "Example Town",
}


def test_future_option_is_refused_naming_the_option_field() -> None:
    with pytest.raises(ModelInputError) as info:
        parse_entity_options("incident", {**INCIDENT_OPTIONS, "start": "2024-07"}, today=TODAY)
    assert (
        info.value.message
        == f"start: {FUTURE}; check the year and give the date it happened (got '2024-07')"
    )
    assert info.value.exit_code == 2
    with pytest.raises(ModelInputError, match=f"collected_at: {re.escape(LATER)}"):
        parse_options(ItemOptions, {"collected_at": "2024-06-20T08:00:00Z"}, today=NOW)


# (case name, recorded values, new values, fields refused)
CORRECTIONS: list[tuple[str, dict[str, Any], dict[str, Any], list[str]]] = [
    ("recorded-future-start-kept", {"start": "2099", "end": "2099-02"}, {"start": "2099", "end": "2099-02"}, []),
    ("recorded-future-start-changed", {"start": "2098"}, {"start": "2099"}, ["start"]),
    ("future-end-added-to-recorded-future-start", {"start": "2099"}, {"start": "2099", "end": "2099-02"}, ["end"]),
    ("recorded-future-start-hides-reversed-end", {"start": "2099", "end": "2099-02"}, {"start": "2099", "end": "2098"}, ["end"]),
    ("recorded-future-end-kept-new-start-refused", {"start": "2022", "end": "2099"}, {"start": "2025", "end": "2099"}, ["start"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("recorded", "new", "refused"),
    [pytest.param(*case[1:], id=case[0]) for case in CORRECTIONS],
)
def test_a_correction_judges_only_new_dates_against_the_clock(
    recorded: dict[str, Any], new: dict[str, Any], refused: list[str]
) -> None:
    stored = {"id": "INC-0001", "title": "T", "place": {"name": "Example Town"}, **recorded}
    values = {"id": "INC-0001", "title": "T", "place": {"name": "Example Town"}, **new}
    if not refused:
        entity = parse_entity_options("incident", values, today=TODAY, recorded=stored)
        assert isinstance(entity, Incident)
        return
    with pytest.raises(ModelInputError) as info:
        parse_entity_options("incident", values, today=TODAY, recorded=stored)
    assert [p.field for p in info.value.problems] == refused


CHILD_OPTION_NAMES = {"birth_year": "--birth-year", "taken_on": "--taken-on", "placements": "--placement"}  # fmt: skip
STORED_CHILD: dict[str, Any] = {"id": "CH-0001", "code": "C-042", "status": "located", "birth_year": 2012, "taken_on": "2022-05-14", "placements": [{"facility": "FAC-0001", "start": "2022-06", "end": "2022-09"}]}  # fmt: skip

# (case name, changes to the stored child, the problem reported)
CHILD_CORRECTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("taken-after-the-recorded-placement", {"taken_on": "2022-07"}, "--taken-on: must not be after --placement (1st value, start), recorded as 2022-06 (got '2022-07')"),
    ("born-after-the-recorded-taking", {"birth_year": "2023"}, "--birth-year: must not be after --taken-on, recorded as 2022-05-14 (got '2023')"),
    ("placement-before-the-recorded-taking", {"placements": [{"facility": "FAC-0001", "start": "2022-04"}]}, "--placement (1st value, start): must not be before --taken-on (2022-05-14) (got '2022-04')"),
    ("placement-reversed", {"placements": [{"facility": "FAC-0001", "start": "2022-10", "end": "2022-09"}]}, "--placement (1st value, end): must not be before start (2022-10) (got '2022-09')"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "expected"), [pytest.param(*case[1:], id=case[0]) for case in CHILD_CORRECTIONS]
)
def test_a_child_correction_names_the_date_just_typed(
    changes: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ModelInputError) as info:
        parse_entity_options(
            "child",
            {**STORED_CHILD, **changes},
            recorded=STORED_CHILD,
            option_names=CHILD_OPTION_NAMES,
            today=TODAY,
        )
    # Each date the typed one contradicts is a problem of its own; the first is the nearest.
    assert info.value.message.splitlines()[0] == expected
    assert all(p.field == expected.partition(":")[0] for p in info.value.problems)


# ---------------------------------------------------------------------------------------------
# A case: recorded with a clock that was ahead, then read, verified, corrected and exported
# ---------------------------------------------------------------------------------------------

AHEAD = date(2100, 1, 1)
"""The date a machine with a wrong clock took for today."""


def test_a_case_recorded_with_a_clock_ahead_still_verifies_is_corrected_and_exports(
    make_case: Callable[..., CaseHandle], tmp_path: Path, frozen_today: date
) -> None:
    handle = make_case()
    opened = handle.open()
    signer = handle.signer
    try:
        incident = parse_entity_options(
            "incident",
            {**INCIDENT_OPTIONS, "id": entities.placeholder_id("incident"), "start": "2099-05"},
            today=AHEAD,
        )
        added = entities.add_entity(opened, signer, incident)
        note = tmp_path / "note.txt"
        note.write_text("fictional field note\n", encoding="utf-8")
        options = parse_options(ItemOptions, {"collected_at": "2099-05-02T10:00:00Z"}, today=AHEAD)
        (item,) = ingest(opened, signer, [note], options=options).files
        make_links(opened, signer, item.sha256, {"incident": [added.id]}, "field note of it")
        future_interview = make_testimony(
            "W-040", interview_date="2099-05-03", identity=None,
            consent={"icc_proceedings": True, "anonymised_publication": False, "given_on": "2099-05-03"},
        )  # fmt: skip
        record_testimony(opened, signer, write_testimony(tmp_path, future_interview), today=AHEAD)

        # By the clock of this machine (frozen_today) all of that lies in the future.
        assert verify_case(opened, workers=1).ok
        corrected = entities.edit_entity(
            opened, signer, added.id, changes={"title": "Transfer (corrected)"}, reason="typo"
        )
        assert corrected.data["start"] == "2099-05"
        size = opened.log.size()
        with pytest.raises(ModelInputError, match=f"end: {FUTURE_PATTERN}"):
            entities.edit_entity(
                opened, signer, added.id, changes={"end": "2099-06"}, reason="new end"
            )
        assert opened.log.size() == size
        result = export_bundle(
            opened,
            signer,
            selection=Selection(incidents=(added.id,)),
            profile="restricted",
            out_dir=tmp_path / "bundle",
        )
        assert result.items == 1
        assert verify_case(opened, workers=1).ok
    finally:
        opened.close()


def test_testimony_with_a_future_interview_is_not_recorded(
    make_case: Callable[..., CaseHandle], tmp_path: Path
) -> None:
    handle = make_case()
    opened = handle.open()
    try:
        size = opened.log.size()
        path = write_testimony(tmp_path, make_testimony(interview_date="2024-06-20"))
        with pytest.raises(ModelInputError, match=f"interview_date: {FUTURE_PATTERN}"):
            record_testimony(opened, handle.signer, path, today=TODAY)
        assert opened.log.size() == size
    finally:
        opened.close()


# ---------------------------------------------------------------------------------------------
# The command line: exit code 2 and the field named
# ---------------------------------------------------------------------------------------------


def test_command_line_refuses_future_dates(
    make_case: Callable[..., CaseHandle],
    cli: Callable[..., CliResult],
    tmp_path: Path,
    frozen_today: date,
) -> None:
    case = make_case()
    c = ("--case", case.root)
    note = tmp_path / "note.txt"
    note.write_text("fictional field note\n", encoding="utf-8")
    testimony_path = write_testimony(tmp_path, make_testimony(identity=None))
    assert cli("testimony", "add", testimony_path, *c).exit_code == 0
    future_testimony = write_testimony(
        tmp_path, make_testimony("W-041", interview_date="2099-03-01", identity=None)
    )
    refusals = [
        (("incident", "add", "--title", "T", "--start", "2024-07", "--place", "X"), "--start: ", "'2024-07'"),
        (("facility", "add", "--name", "N", "--type", "camp", "--used-to", "2030"), "--used-to: ", "'2030'"),
        (("child", "add", "--code", "C-042", "--status", "missing", "--birth-year", "2025"), "--birth-year: ", "2025"),
        (("ingest", note, "--collected-at", "2024-06-20"), "--collected-at: ", "'2024-06-20'"),
        (("testimony", "add", future_testimony), "interview_date: ", "'2099-03-01'"),
        (("testimony", "withdraw-consent", "W-017", "--reason", "r", "--on", "2024-07-01"), "--on: ", "'2024-07-01'"),
    ]  # fmt: skip
    size = case.log_size()
    for args, field, shown in refusals:
        result = cli(*args, *c)
        assert result.exit_code == 2, (args, result.output)
        assert f"{field}{FUTURE}" in result.stderr, result.stderr
        assert shown in result.stderr
    assert case.log_size() == size
    # A date that contradicts another is refused the same way.
    result = cli("child", "add", "--code", "C-042", "--status", "missing", "--birth-year", "2015", "--taken-on", "2014", *c)  # fmt: skip
    assert result.exit_code == 2
    assert "--taken-on: must not be before --birth-year (2015)" in result.stderr


def test_withdrawal_defaults_to_the_injected_today(
    make_case: Callable[..., CaseHandle], tmp_path: Path
) -> None:
    from evidence import testimony

    handle = make_case()
    opened = handle.open()
    try:
        path = write_testimony(tmp_path, make_testimony(identity=None))
        record_testimony(opened, handle.signer, path, today=TODAY)
        testimony.withdraw_consent(opened, handle.signer, "W-017", "asked", today=TODAY)
        assert testimony.show_testimony(opened, "W-017")["consent"]["withdrawn_on"] == "2024-06-15"
        with pytest.raises(InputError, match="already withdrawn"):
            testimony.withdraw_consent(opened, handle.signer, "W-017", "again", today=TODAY)
    finally:
        opened.close()


def test_command_line_compares_a_collection_moment_with_now(
    make_case: Callable[..., CaseHandle],
    cli: Callable[..., CliResult],
    tmp_path: Path,
    frozen_today: date,
) -> None:
    case = make_case()
    note = tmp_path / "note.txt"
    note.write_text("fictional field note\n", encoding="utf-8")
    size = case.log_size()
    # A full day ahead of now, though only the day after today by the calendar.
    result = cli("ingest", note, "--collected-at", "2024-06-16T23:59:59Z", "--case", case.root)
    assert result.exit_code == 2, result.output
    assert f"--collected-at: {LATER}" in result.stderr
    assert case.log_size() == size
    # A few minutes ahead: a clock running fast.
    result = cli("ingest", note, "--collected-at", "2024-06-15T21:35:00Z", "--case", case.root)
    assert result.exit_code == 0, result.output


@pytest.fixture
def kiritimati() -> Iterator[None]:
    """The local time zone UTC+14, where the UTC date is often still yesterday."""
    if not hasattr(time, "tzset"):
        pytest.skip("the time zone cannot be changed on this platform")
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Pacific/Kiritimati"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_withdrawal_defaults_to_the_local_date(
    make_case: Callable[..., CaseHandle],
    tmp_path: Path,
    frozen_today: date,
    kiritimati: None,
) -> None:
    from evidence import testimony

    handle = make_case()
    opened = handle.open()
    try:
        path = write_testimony(tmp_path, make_testimony(identity=None))
        record_testimony(opened, handle.signer, path)
        # 21:30 UTC on 2024-06-15 is 11:30 on 2024-06-16 in Kiritimati.
        testimony.withdraw_consent(opened, handle.signer, "W-017", "asked")
        assert testimony.show_testimony(opened, "W-017")["consent"]["withdrawn_on"] == "2024-06-16"
    finally:
        opened.close()
