"""Tests of the SPEC section 5 models: validation, field-named errors, protected identity."""

# Tables of named cases read best one case per line, however long.
# ruff: noqa: E501

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from evidence.models import (
    ENTITY_MODELS,
    ENTITY_PREFIX,
    ISO_3166_ALPHA2,
    PROTECTED_FIELDS,
    Child,
    Confidentiality,
    Consent,
    DatePrecision,
    EntityKind,
    Facility,
    Incident,
    ItemOptions,
    LiabilityMode,
    Link,
    LinkTarget,
    Perpetrator,
    Place,
    ProtectedIdentity,
    RomeStatuteProvision,
    WitnessCategory,
    date_precision,
    format_entity_id,
    input_context,
    parse_entity_id,
    partial_date_range,
)
from evidence.models import (
    Testimony as WitnessTestimony,  # not named Test* so pytest does not collect it
)

MARKERS = {
    "name": "Olena Testname-Protected",
    "date_of_birth": "2010-04-23",
    "contact": "+380-00-PROTECTED-0000",
    "current_address": "Protectedstrasse 17, Hiddenville",
}

TESTIMONY: dict[str, Any] = {
    "witness_code": "W-017",
    "category": "child-victim",
    "age_at_events": 12,
    "support_person_present": True,
    "support_person_role": "guardian",
    "interviewers": ["Investigator A"],
    "interpreter": "Interpreter C",
    "interview_date": "2023-03-01",
    "interview_place": {"name": "Field office 1", "country": "UA"},
    "languages": ["uk", "en"],
    "statement": {"language": "uk", "text": "Вигаданий текст."},
    "translations": [{"language": "en", "text": "Invented text.", "translator": "T. D"}],
    "consent": {
        "icc_proceedings": True,
        "share_with": ["Example Network"],
        "anonymised_publication": False,
        "given_on": "2023-03-01",
    },
    "special_measures": ["voice distortion"],
    "referral": "psychosocial partner",
    "recordings": ["recordings/W-017.ogg"],
    "identity": dict(MARKERS),
}

INCIDENT: dict[str, Any] = {
    "id": "INC-0001",
    "title": "Transfer from a care home",
    "start": "2022-05",
    "end": "2022-05-14",
    "place": {"name": "Example Town", "country": "UA", "lat": "46.6354", "lon": "32.6169"},
    "crimes": ["art. 8(2)(a)(vii)"],
    "children_count": 12,
}
FACILITY: dict[str, Any] = {
    "id": "FAC-0001",
    "name": "Camp Example",
    "type": "camp",
    "used_from": "2022-06",
}
PERPETRATOR: dict[str, Any] = {"id": "PER-0001", "name": "Unit Y", "kind": "unit"}
CHILD: dict[str, Any] = {"id": "CH-0001", "code": "C-042", "status": "missing"}
LINK: dict[str, Any] = {"subject": "W-017", "incidents": ["INC-0001"], "reason": "same bus"}
ITEM: dict[str, Any] = {"source": "Example NGO", "collected_at": "2023-03-01T10:00:00Z"}

BASES: dict[type[BaseModel], dict[str, Any]] = {
    WitnessTestimony: TESTIMONY,
    Incident: INCIDENT,
    Facility: FACILITY,
    Perpetrator: PERPETRATOR,
    Child: CHILD,
    Link: LINK,
    ItemOptions: ITEM,
}


def with_change(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with the dotted ``path`` set to ``value`` (``...`` deletes)."""
    data = copy.deepcopy(base)
    *parents, leaf = path.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is ...:
        target.pop(leaf, None)
    else:
        target[leaf] = value
    return data


def test_every_example_is_valid() -> None:
    for model, data in BASES.items():
        model.model_validate(data)


def test_models_are_frozen() -> None:
    incident = Incident.model_validate(INCIDENT)
    with pytest.raises(ValidationError):
        incident.title = "changed"


# (case name, model, dotted path, bad value, expected field location, expected message part)
BAD_FIELDS: list[tuple[str, type[BaseModel], str, Any, str, str]] = [
    ("missing-witness-code", WitnessTestimony, "witness_code", ..., "witness_code", "Field required"),
    ("bad-witness-code", WitnessTestimony, "witness_code", "W17", "witness_code", "W-017"),
    ("witness-code-two-digits", WitnessTestimony, "witness_code", "W-17", "witness_code", "W-017"),
    ("bad-category", WitnessTestimony, "category", "victim", "category", "child-victim"),
    ("negative-age", WitnessTestimony, "age_at_events", -1, "age_at_events", "greater than or equal"),
    ("float-age", WitnessTestimony, "age_at_events", 12.0, "age_at_events", "whole number"),
    ("bool-age", WitnessTestimony, "age_at_events", True, "age_at_events", "whole number"),
    ("no-interviewers", WitnessTestimony, "interviewers", [], "interviewers", "at least 1"),
    ("interviewers-not-list", WitnessTestimony, "interviewers", "A", "interviewers", "tuple"),
    ("empty-interviewer", WitnessTestimony, "interviewers", ["  "], "interviewers.0", "at least 1"),
    ("no-languages", WitnessTestimony, "languages", [], "languages", "at least 1"),
    ("bad-language", WitnessTestimony, "languages", ["Ukrainian!"], "languages.0", "BCP 47"),
    ("day-as-month", WitnessTestimony, "interview_date", "2023-03", "interview_date", "full date"),
    ("dotted-date", WitnessTestimony, "interview_date", "01.03.2023", "interview_date", "2022-05-14"),
    ("february-30", WitnessTestimony, "interview_date", "2023-02-30", "interview_date", "day must"),
    (
        "datetime-as-day",
        WitnessTestimony,
        "interview_date",
        datetime(2023, 3, 1, tzinfo=UTC),
        "interview_date",
        "not a date and time",
    ),
    ("statement-not-mapping", WitnessTestimony, "statement", "text", "statement", "dictionary"),
    ("statement-empty-text", WitnessTestimony, "statement.text", "   ", "statement.text", "at least 1"),
    ("statement-nul", WitnessTestimony, "statement.text", "a\x00b", "statement.text", "NUL"),
    ("statement-surrogate", WitnessTestimony, "statement.text", "a\ud800", "statement.text", "unicode"),
    ("unknown-field", WitnessTestimony, "intervewer", "x", "intervewer", "Extra inputs"),
    ("consent-maybe", WitnessTestimony, "consent.icc_proceedings", "maybe", "consent.icc_proceedings", "true or false"),
    ("consent-yes", WitnessTestimony, "consent.icc_proceedings", "yes", "consent.icc_proceedings", "true or false"),
    ("consent-one", WitnessTestimony, "consent.icc_proceedings", 1, "consent.icc_proceedings", "true or false"),
    ("consent-no-date", WitnessTestimony, "consent.given_on", ..., "consent.given_on", "Field required"),
    ("support-role-without-presence", WitnessTestimony, "support_person_present", False, "support_person_role", "support_person_present is true"),
    ("translation-no-translator", WitnessTestimony, "translations.0.translator", ..., "translations.0.translator", "Field required"),
    ("recording-with-space", WitnessTestimony, "recordings", ["a b"], "recordings.0", "without spaces"),
    ("bad-incident-id", Incident, "id", "INC-1", "id", "INC-0001"),
    ("facility-id-as-incident", Incident, "id", "FAC-0001", "id", "INC-0001"),
    ("incident-no-title", Incident, "title", ..., "title", "Field required"),
    ("incident-bad-start", Incident, "start", "May 2022", "start", "2022-05-14"),
    ("incident-month-13", Incident, "start", "2022-13", "start", "month"),
    ("incident-year-1066", Incident, "start", 1066, "start", "1900"),
    ("incident-end-before-start", Incident, "end", "2022-04-30", "end", "before start"),
    ("incident-bad-crime", Incident, "crimes", ["art. 99"], "crimes.0", "art. 6(e)"),
    ("incident-negative-count", Incident, "children_count", -3, "children_count", "greater than or equal"),
    ("incident-float-count", Incident, "children_count", 3.5, "children_count", "whole number"),
    ("incident-float-lat", Incident, "place.lat", 46.6354, "place.lat", "floating-point"),
    ("incident-lat-range", Incident, "place.lat", "91", "place.lat", "between -90 and 90"),
    ("incident-lon-range", Incident, "place.lon", "-180.5", "place.lon", "between -180 and 180"),
    ("incident-lat-text", Incident, "place.lat", "46°38'N", "place.lat", "decimal latitude"),
    ("incident-lat-without-lon", Incident, "place.lon", ..., "place", "both lat and lon"),
    ("incident-country-name", Incident, "place.country", "Ukraine", "place.country", "ISO 3166"),
    ("incident-country-uk", Incident, "place.country", "UK", "place.country", "ISO 3166"),
    ("incident-place-missing", Incident, "place", ..., "place", "Field required"),
    ("facility-bad-type", Facility, "type", "prison", "type", "filtration-point"),
    ("facility-dates-reversed", Facility, "used_to", "2021", "used_to", "before used_from"),
    ("perpetrator-bad-kind", Perpetrator, "kind", "group", "kind", "organisation"),
    ("perpetrator-bad-liability", Perpetrator, "liability", ["art. 25(3)(g)"], "liability.0", "art. 25(3)(a)"),
    ("child-name-as-code", Child, "code", "Olena", "code", "never a name"),
    ("child-bad-status", Child, "status", "found", "status", "returned"),
    ("child-birth-year-text", Child, "birth_year", "twenty", "birth_year", "whole number"),
    ("child-placement-bad-facility", Child, "placements", [{"facility": "INC-0001"}], "placements.0.facility", "FAC-0001"),
    ("link-no-target", Link, "incidents", [], "", "at least one target"),
    ("link-wrong-kind", Link, "incidents", ["FAC-0001"], "incidents.0", "INC-0001"),
    ("link-no-reason", Link, "reason", ..., "reason", "Field required"),
    ("item-bad-method", ItemOptions, "method", "stolen", "method", "handed-over"),
    ("item-datetime-no-zone", ItemOptions, "collected_at", "2023-03-01T10:00:00", "collected_at", "offset"),
    ("item-datetime-bad-hour", ItemOptions, "collected_at", "2023-03-01T25:00:00Z", "collected_at", "real date"),
    ("item-bad-confidentiality", ItemOptions, "confidentiality", "secret", "confidentiality", "strictly-confidential"),
    ("item-tags-nul", ItemOptions, "tags", ["a\x00"], "tags.0", "NUL"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "path", "value", "field", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_FIELDS],
)
def test_bad_field_is_refused_naming_the_field(
    model: type[BaseModel], path: str, value: Any, field: str, fragment: str
) -> None:
    data = with_change(BASES[model], path, value)
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    errors = info.value.errors()
    locations = [".".join(str(p) for p in e["loc"]) for e in errors]
    assert field in locations, locations
    message = next(e["msg"] for e in errors if ".".join(str(p) for p in e["loc"]) == field)
    assert fragment in message
    # The printed error names the field too.
    if field:
        assert field.split(".", maxsplit=1)[0] in str(info.value)


# (case name, model, dotted path, accepted value, attribute path, stored value)
GOOD_FIELDS: list[tuple[str, type[BaseModel], str, Any, str, Any]] = [
    ("category-spaced", WitnessTestimony, "category", "Child victim", "category", WitnessCategory.CHILD_VICTIM),
    ("category-underscore", WitnessTestimony, "category", "parent_or_guardian", "category", WitnessCategory.PARENT_OR_GUARDIAN),
    ("consent-text-true", WitnessTestimony, "consent.icc_proceedings", "TRUE", "consent.icc_proceedings", True),
    ("language-case", WitnessTestimony, "languages", ["EN-gb", "uk-latn-ua"], "languages", ("en-GB", "uk-Latn-UA")),
    ("date-object", WitnessTestimony, "interview_date", date(2023, 3, 1), "interview_date", "2023-03-01"),
    ("control-characters-kept", WitnessTestimony, "statement.text", "a\tb\x07c\nd", "statement.text", "a\tb\x07c\nd"),
    ("text-stripped", Incident, "title", "  Transfer  ", "title", "Transfer"),
    ("year-as-int", Incident, "start", 2022, "start", "2022"),
    ("end-same-month", Incident, "end", "2022-05", "end", "2022-05"),
    ("crime-capitalised", Incident, "crimes", ["Art. 8(2)(b)(viii)", "article 6(e)", "7(1)(d)"], "crimes", (RomeStatuteProvision.ART_8_2_B_VIII, RomeStatuteProvision.ART_6_E, RomeStatuteProvision.ART_7_1_D)),
    ("crimes-deduplicated", Incident, "crimes", ["art. 6(e)", "Art. 6(e)"], "crimes", (RomeStatuteProvision.ART_6_E,)),
    ("lat-decimal-kept", Incident, "place.lat", Decimal("46.6350"), "place.lat", "46.6350"),
    ("lat-int", Incident, "place.lat", -12, "place.lat", "-12"),
    ("lat-exponent", Incident, "place.lat", Decimal("4.66354E+1"), "place.lat", "46.6354"),
    ("country-lower", Incident, "place.country", "ua", "place.country", "UA"),
    ("count-zero", Incident, "children_count", 0, "children_count", 0),
    ("count-text", Incident, "children_count", "12", "children_count", 12),
    ("liability-spaced", Perpetrator, "liability", ["Art. 28 (a)"], "liability", (LiabilityMode.MILITARY_COMMANDER,)),
    ("confidentiality-default", ItemOptions, "confidentiality", ..., "confidentiality", Confidentiality.CONFIDENTIAL),
    ("item-date-only", ItemOptions, "collected_at", "2023-03-01", "collected_at", "2023-03-01"),
    ("item-datetime-offset", ItemOptions, "collected_at", "2023-03-01T10:00:00.123456789+02:00", "collected_at", "2023-03-01T10:00:00.123456789+02:00"),
    ("item-datetime-object", ItemOptions, "collected_at", datetime(2023, 3, 1, 10, tzinfo=UTC), "collected_at", "2023-03-01T10:00:00+00:00"),
    ("item-tags-unique", ItemOptions, "tags", ["b", "a", "b"], "tags", ("b", "a")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "path", "value", "attribute", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in GOOD_FIELDS],
)
def test_accepted_values_are_normalised(
    model: type[BaseModel], path: str, value: Any, attribute: str, expected: Any
) -> None:
    obj: Any = model.model_validate(with_change(BASES[model], path, value))
    for part in attribute.split("."):
        obj = getattr(obj, part)
    assert obj == expected


COMPOSED = "Caf\u00e9 Nord"
DECOMPOSED = "Cafe\u0301 Nord"
"""The same fictional name, with the accent as one character (NFC) or as two (NFD)."""

# (case name, model, dotted path of a list of names or labels, attribute path)
NAME_LISTS: list[tuple[str, type[BaseModel], str, str]] = [
    ("facility-aliases", Facility, "aliases", "aliases"),
    ("facility-transliterations", Facility, "transliterations", "transliterations"),
    ("perpetrator-aliases", Perpetrator, "aliases", "aliases"),
    ("item-tags", ItemOptions, "tags", "tags"),
    ("consent-share-with", WitnessTestimony, "consent.share_with", "consent.share_with"),
    ("interviewers", WitnessTestimony, "interviewers", "interviewers"),
    ("special-measures", WitnessTestimony, "special_measures", "special_measures"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "path", "attribute"), [pytest.param(*case[1:], id=case[0]) for case in NAME_LISTS]
)
def test_list_values_typed_in_are_normalised_to_nfc(
    model: type[BaseModel], path: str, attribute: str
) -> None:
    data = with_change(BASES[model], path, [DECOMPOSED])
    typed: Any = model.model_validate(data, context=input_context(date(2024, 6, 15)))
    read_back: Any = model.model_validate(data)
    for part in attribute.split("."):
        typed, read_back = getattr(typed, part), getattr(read_back, part)
    assert typed == (COMPOSED,)
    # A record read back keeps the characters it was logged with.
    assert read_back == (DECOMPOSED,)


def test_consent_withdrawal() -> None:
    consent = {
        "icc_proceedings": True,
        "anonymised_publication": False,
        "given_on": "2023-03-01",
    }
    assert not Consent.model_validate(consent).withdrawn
    withdrawn = Consent.model_validate(
        {**consent, "withdrawn_on": "2023-06-01", "withdrawal_reason": "asked"}
    )
    assert withdrawn.withdrawn
    with pytest.raises(ValidationError, match="withdrawn_on"):
        Consent.model_validate({**consent, "withdrawn_on": "2023-02-01"})
    with pytest.raises(ValidationError, match="withdrawal_reason"):
        Consent.model_validate({**consent, "withdrawal_reason": "asked"})


def test_partial_dates() -> None:
    assert date_precision("2022") is DatePrecision.YEAR
    assert date_precision("2022-05") is DatePrecision.MONTH
    assert date_precision("2022-05-14") is DatePrecision.DAY
    assert partial_date_range("2022") == (date(2022, 1, 1), date(2022, 12, 31))
    assert partial_date_range("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert partial_date_range("2022-05-14") == (date(2022, 5, 14), date(2022, 5, 14))


def test_entity_ids() -> None:
    assert format_entity_id("incident", 1) == "INC-0001"
    assert format_entity_id("child", 12345) == "CH-12345"
    assert parse_entity_id("FAC-0042") == (EntityKind.FACILITY, 42)
    assert set(ENTITY_PREFIX) == {k.value for k in EntityKind} == set(ENTITY_MODELS)
    for kind, model in ENTITY_MODELS.items():
        entity_id = format_entity_id(kind, 7)
        assert parse_entity_id(entity_id) == (EntityKind(kind), 7)
        # The id a kind formats is the id its model accepts.
        model.model_validate({**BASES[model], "id": entity_id})
        with pytest.raises(ValidationError, match="id"):
            model.model_validate({**BASES[model], "id": entity_id.replace("-", "-0")})
    # One id per number: no second spelling of INC-0001, no number SQLite cannot hold.
    for bad in (
        "INC-1",
        "XYZ-0001",
        "inc-0001",
        "INC-0001 ",
        "INC-00001",
        "INC-99999999999999999999",
    ):
        with pytest.raises(ValueError, match="not an entity id"):
            parse_entity_id(bad)
    with pytest.raises(ValueError, match="unknown entity kind"):
        format_entity_id("witness", 1)
    with pytest.raises(ValueError, match="start at 1"):
        format_entity_id("incident", 0)


def test_link_targets() -> None:
    link = Link.model_validate(
        {
            "subject": "a" * 64,
            "incidents": ["INC-0001", "INC-0001"],
            "facilities": ["FAC-0002"],
            "perpetrators": ["PER-0003"],
            "children": ["CH-0004"],
            "reason": "named in the transfer list",
        }
    )
    assert link.targets == (
        LinkTarget(EntityKind.INCIDENT, "INC-0001"),
        LinkTarget(EntityKind.FACILITY, "FAC-0002"),
        LinkTarget(EntityKind.PERPETRATOR, "PER-0003"),
        LinkTarget(EntityKind.CHILD, "CH-0004"),
    )


def test_confidentiality_rank_orders_levels() -> None:
    ranks = [level.rank for level in Confidentiality]
    assert ranks == sorted(ranks) == [0, 1, 2, 3]
    assert Confidentiality.PUBLIC.rank < Confidentiality.STRICTLY_CONFIDENTIAL.rank


def test_iso_country_list() -> None:
    assert len(ISO_3166_ALPHA2) == 249
    assert {"UA", "RU", "BY", "NO", "GB"} <= ISO_3166_ALPHA2
    assert "UK" not in ISO_3166_ALPHA2


def test_provisions_have_labels() -> None:
    for provision in RomeStatuteProvision:
        assert provision.label
        assert provision.value.startswith("art. ")
    # Non-international conflict, torture and the two forms of common purpose are accepted.
    incident = Incident.model_validate(
        {**BASES[Incident], "crimes": ["art. 8(2)(e)(viii)", "Art. 7(1)(f)", "8(2)(c)(ii)"]}
    )
    assert [c.value for c in incident.crimes] == [
        "art. 8(2)(e)(viii)",
        "art. 7(1)(f)",
        "art. 8(2)(c)(ii)",
    ]
    perpetrator = Perpetrator.model_validate(
        {**BASES[Perpetrator], "liability": ["art. 25(3)(d)(ii)"]}
    )
    assert perpetrator.liability == (LiabilityMode.COMMON_PURPOSE_KNOWLEDGE,)


def test_place_coordinates_come_in_pairs() -> None:
    assert Place(name="x").lat is None
    with pytest.raises(ValidationError, match="both lat and lon"):
        Place(name="x", lat="1")


# ---------------------------------------------------------------------------------------------
# Protected identity
# ---------------------------------------------------------------------------------------------


def assert_no_marker(text: str) -> None:
    for marker in MARKERS.values():
        assert marker not in text


def test_identity_values_are_kept_and_revealed() -> None:
    testimony = WitnessTestimony.model_validate(TESTIMONY)
    assert testimony.identity is not None
    assert testimony.identity.reveal() == MARKERS
    assert testimony.identity.present_fields() == PROTECTED_FIELDS


def test_identity_never_shown() -> None:
    testimony = WitnessTestimony.model_validate(TESTIMONY)
    identity = testimony.identity
    assert identity is not None
    for text in (
        repr(testimony),
        str(testimony),
        f"{testimony!r} {testimony} {identity} {identity!r}",
        repr(identity),
        str(identity),
        repr(testimony.model_dump()),
        testimony.model_dump_json(),
        repr(identity.model_dump()),
        identity.model_dump_json(),
        repr(vars(testimony)),
    ):
        assert_no_marker(text)
    assert "identity" not in testimony.model_dump()
    assert "name" in repr(identity)  # which fields are set may show, never their values


def test_identity_alone() -> None:
    identity = ProtectedIdentity.model_validate({"name": f"  {MARKERS['name']}  "})
    assert identity.reveal() == {"name": MARKERS["name"]}  # stripped like other text
    assert identity.present_fields() == ("name",)
    assert repr(identity) == "ProtectedIdentity(<protected: name>)"
    assert repr(ProtectedIdentity()) == "ProtectedIdentity(<protected: empty>)"
    assert_no_marker(
        f"{identity} {identity!r} {identity.model_dump()} {identity.model_dump_json()}"
    )


def test_public_view_drops_identity() -> None:
    testimony = WitnessTestimony.model_validate(TESTIMONY)
    public = testimony.public_view()
    assert public.identity is None
    assert public.model_dump() == testimony.model_dump()
    assert testimony.identity is not None  # the original is unchanged


# Each case puts a marker where a validation error could echo it.
IDENTITY_LEAKS: list[tuple[str, Any]] = [
    ("name-as-list", {"name": [MARKERS["name"]]}),
    ("name-as-mapping", {"name": {"first": MARKERS["name"]}}),
    ("marker-as-unknown-key", {MARKERS["name"]: "x"}),
    ("marker-as-unknown-key-and-value", {"nmae": MARKERS["name"]}),
    ("identity-as-string", MARKERS["name"]),
    ("identity-as-list", [MARKERS["name"], MARKERS["contact"]]),
    ("bad-date-of-birth", {"date_of_birth": MARKERS["current_address"]}),
    ("nul-in-name", {"name": MARKERS["name"] + "\x00"}),
    ("too-long-address", {"current_address": MARKERS["current_address"] * 100}),
    ("empty-name-with-contact", {"name": " ", "contact": MARKERS["contact"]}),
]


@pytest.mark.parametrize("identity", [pytest.param(v, id=k) for k, v in IDENTITY_LEAKS])
def test_identity_errors_do_not_echo_values(identity: Any) -> None:
    with pytest.raises(ValidationError) as info:
        WitnessTestimony.model_validate({**TESTIMONY, "identity": identity})
    assert any(e["loc"][:1] == ("identity",) for e in info.value.errors())
    assert_no_marker(str(info.value))
    assert_no_marker(repr(info.value))
    assert_no_marker(" ".join(e["msg"] for e in info.value.errors()))
    assert_no_marker(" ".join(str(e["loc"]) for e in info.value.errors()))


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------

texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=20,
)
days = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)).map(date.isoformat)
partial_dates = st.one_of(days, days.map(lambda d: d[:7]), days.map(lambda d: d[:4]))
coordinates = st.decimals(min_value=-90, max_value=90, places=6).map(lambda d: format(d, "f"))
places = st.builds(
    Place,
    name=texts,
    region=st.none() | texts,
    country=st.none() | st.sampled_from(sorted(ISO_3166_ALPHA2)),
)
testimonies = st.builds(
    WitnessTestimony,
    witness_code=st.integers(0, 99999).map(lambda n: f"W-{n:03d}"),
    category=st.sampled_from(WitnessCategory),
    age_at_events=st.none() | st.integers(0, 130),
    interviewers=st.lists(texts, min_size=1, max_size=3).map(tuple),
    interview_date=days,
    interview_place=places,
    languages=st.lists(st.sampled_from(["uk", "ru", "en", "crh", "en-GB"]), min_size=1).map(
        lambda xs: tuple(dict.fromkeys(xs))
    ),
    statement=st.builds(dict, language=st.just("uk"), text=texts),
    consent=st.builds(
        dict,
        icc_proceedings=st.booleans(),
        anonymised_publication=st.booleans(),
        given_on=days,
    ),
    special_measures=st.lists(texts, max_size=3).map(tuple),
)
incidents = st.builds(
    Incident,
    id=st.integers(1, 10**6).map(lambda n: format_entity_id("incident", n)),
    title=texts,
    start=partial_dates,
    place=st.builds(Place, name=texts, lat=coordinates, lon=coordinates),
    crimes=st.lists(st.sampled_from(RomeStatuteProvision), unique=True).map(tuple),
    children_count=st.none() | st.integers(0, 10**6),
)


@settings(max_examples=60, deadline=None)
@given(model=st.one_of(testimonies, incidents))
def test_json_round_trip(model: BaseModel) -> None:
    dumped = model.model_dump(mode="json")
    again = type(model).model_validate(dumped)
    assert again == model
    assert type(model).model_validate_json(model.model_dump_json()) == model
