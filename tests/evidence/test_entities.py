"""Incidents, facilities, perpetrators and children: ids, corrections, history, rebuild.

All records are fictional (tests/evidence/data); the case uses the fixed test key.
"""

# Tables of named cases read best one case per line, however long.
# ruff: noqa: E501

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain_of_custody import parse_leaf
from evidence import catalog, entities
from evidence.errors import InputError, UnknownId
from evidence.models import Facility, Incident
from evidence.verify import verify_case
from tests.conftest import CaseHandle

DATA = Path(__file__).parent / "data"

INCIDENT = {
    "title": "Transfer of children from a care home (fictional)",
    "start": "2022-05",
    "place.name": "Example Town",
    "place.country": "UA",
}


@pytest.fixture
def case(make_case: Callable[..., CaseHandle]) -> Any:
    handle = make_case()
    opened = handle.open()
    yield opened, handle.signer
    opened.close()


def test_ids_are_allocated_in_order_per_kind(case: Any) -> None:
    opened, signer = case
    first = entities.add_entity(opened, signer, entities.parse_new_entity("incident", INCIDENT))
    second = entities.add_entity(opened, signer, entities.parse_new_entity("incident", INCIDENT))
    facility = entities.add_entity(
        opened,
        signer,
        entities.parse_new_entity("facility", {"name": "Camp Example", "type": "camp"}),
    )
    assert (first.id, second.id, facility.id) == ("INC-0001", "INC-0002", "FAC-0001")
    assert [r.id for r in entities.list_entities(opened, "incident")] == ["INC-0001", "INC-0002"]


@pytest.mark.parametrize("kind", ["incident", "facility", "perpetrator"])
def test_files_with_their_own_id_keep_it(case: Any, kind: str) -> None:
    opened, signer = case
    entity = entities.read_new_entity(kind, DATA / f"{kind}.yaml")
    record = entities.add_entity(opened, signer, entity)
    assert record.id == entity.id
    assert record.data == entity.model_dump(mode="json", exclude_none=True)
    size = opened.log.size()
    with pytest.raises(InputError, match="exists already"):
        entities.add_entity(opened, signer, entity)
    assert opened.log.size() == size


def test_a_child_placement_must_name_a_known_facility(case: Any) -> None:
    opened, signer = case
    child = entities.read_new_entity("child", DATA / "child.yaml")
    size = opened.log.size()
    with pytest.raises(InputError, match=r"placements\[0\]\.facility"):
        entities.add_entity(opened, signer, child)
    assert opened.log.size() == size
    entities.add_entity(
        opened, signer, entities.read_new_entity("facility", DATA / "facility.yaml")
    )
    assert entities.add_entity(opened, signer, child).id == "CH-0001"


def test_a_child_code_names_one_child(case: Any) -> None:
    opened, signer = case
    add = entities.parse_new_entity
    first = entities.add_entity(
        opened, signer, add("child", {"code": "C-101", "status": "missing"})
    )
    other = entities.add_entity(
        opened, signer, add("child", {"code": "C-102", "status": "located"})
    )
    size = opened.log.size()
    with pytest.raises(InputError, match=f"code: C-101 is the code of {first.id} already"):
        entities.add_entity(opened, signer, add("child", {"code": "C-101", "status": "returned"}))
    with pytest.raises(InputError, match=f"code: C-101 is the code of {first.id} already"):
        entities.edit_entity(opened, signer, other.id, changes={"code": "C-101"}, reason="typo")
    assert opened.log.size() == size
    # A correction of a child that keeps its own code is not a clash.
    entities.edit_entity(opened, signer, first.id, changes={"status": "located"}, reason="found")
    assert opened.log.size() == size + 1


def test_two_investigators_adding_at_once_never_clash(
    make_case: Callable[..., CaseHandle],
) -> None:
    handle = make_case()
    made: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        # Each thread has its own connection, as two investigators' processes would.
        opened = handle.open()
        try:
            for _ in range(5):
                record = entities.add_entity(
                    opened, handle.signer, entities.parse_new_entity("incident", INCIDENT)
                )
                with lock:
                    made.append(record.id)
        finally:
            opened.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(made) == [f"INC-{n:04d}" for n in range(1, 11)]


def test_an_edit_is_a_new_event_and_history_keeps_the_old_values(case: Any) -> None:
    opened, signer = case
    record = entities.add_entity(
        opened, signer, entities.parse_new_entity("incident", {**INCIDENT, "children_count": "12"})
    )
    edited = entities.edit_entity(
        opened,
        signer,
        record.id,
        changes={"children_count": "14", "place.region": "Example Region"},
        reason="a second transfer list was found",
    )
    assert edited.data["children_count"] == 14
    assert edited.data["place"] == {
        "name": "Example Town",
        "country": "UA",
        "region": "Example Region",
    }
    history = entities.entity_history(opened, record.id)
    assert [h["action"] for h in history] == ["entity.created", "entity.edited"]
    assert history[0]["entity"]["children_count"] == 12
    assert history[1]["changes"]["children_count"] == 14
    assert history[1]["reason"] == "a second transfer list was found"
    unset = entities.edit_entity(opened, signer, record.id, unset=("place.region",), reason="wrong")
    assert "region" not in unset.data["place"]


@pytest.mark.parametrize(
    ("changes", "unset", "reason", "message"),
    [
        pytest.param({"start": "14/05/2022"}, (), "typo", "start", id="wrong-date-format"),
        pytest.param({"place.lat": "91"}, (), "typo", "place", id="lat-without-lon"),
        pytest.param({}, ("title",), "typo", "title", id="required-field-removed"),
        pytest.param({}, ("end",), "typo", "--unset end", id="unset-a-missing-field"),
        pytest.param({"title": INCIDENT["title"]}, (), "same", "changes nothing", id="no-change"),
        pytest.param({"title": "New"}, (), " ", "--reason", id="empty-reason"),
        pytest.param({"id": "INC-0002"}, (), "renumber", "id", id="id-change"),
    ],
)
def test_bad_edits_are_refused_and_record_nothing(
    case: Any, changes: dict[str, str], unset: tuple[str, ...], reason: str, message: str
) -> None:
    opened, signer = case
    record = entities.add_entity(opened, signer, entities.parse_new_entity("incident", INCIDENT))
    size = opened.log.size()
    with pytest.raises(InputError, match=message):
        entities.edit_entity(opened, signer, record.id, changes=changes, unset=unset, reason=reason)
    assert opened.log.size() == size


# (case name, kind, recorded values, --unset as given, field left out)
UNSETS: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("option-spelling", "incident", {**INCIDENT, "children_count": "12"}, "children-count", "children_count"),
    ("field-spelling", "incident", {**INCIDENT, "children_count": "12"}, "children_count", "children_count"),
    ("nested-field", "incident", {**INCIDENT, "place.region": "Example Region"}, "place.region", "region"),
    ("facility-option-spelling", "facility", {"name": "Camp Example", "type": "camp", "used_to": "2023"}, "used-to", "used_to"),
    ("perpetrator-option-spelling", "perpetrator", {"name": "Unit Y", "kind": "unit", "warrant_reference": "W-1"}, "warrant-reference", "warrant_reference"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "values", "given", "field"), [pytest.param(*c[1:], id=c[0]) for c in UNSETS]
)
def test_unset_takes_the_option_or_the_field_spelling(
    case: Any, kind: str, values: dict[str, Any], given: str, field: str
) -> None:
    opened, signer = case
    record = entities.add_entity(opened, signer, entities.parse_new_entity(kind, values))
    edited = entities.edit_entity(opened, signer, record.id, unset=(given,), reason="unknown")
    assert field not in edited.data and field not in edited.data.get("place", {})


# (case name, --unset as given, message part, hint part)
BAD_UNSETS: list[tuple[str, str, str, str]] = [
    ("unknown-field", "foo", "--unset foo: incident records have no such field", "unset: end, place.region, place.country, place.lat, place.lon, description, crimes, children-count"),
    ("unknown-nested-field", "place.height", "--unset place.height: incident records have no such", "place.lat"),
    ("field-of-another-kind", "used-to", "--unset used-to: incident records have no such field", "end, "),
    ("field-not-set", "end", "--unset end: the field is not set", "name a field that is set"),
    ("required-field", "title", "--unset title: title is required", "new value"),
    ("required-nested-field", "place.name", "--unset place.name: place.name is required", "new value"),
    ("the-id", "id", "--unset id: an entity's id cannot be removed", ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("given", "message", "hint"), [pytest.param(*c[1:], id=c[0]) for c in BAD_UNSETS]
)
def test_bad_unsets_say_what_is_wrong(case: Any, given: str, message: str, hint: str) -> None:
    opened, signer = case
    record = entities.add_entity(
        opened, signer, entities.parse_new_entity("incident", {**INCIDENT, "children_count": "3"})
    )
    size = opened.log.size()
    with pytest.raises(InputError) as info:
        entities.edit_entity(opened, signer, record.id, unset=(given,), reason="r")
    assert info.value.message.startswith(message), info.value.message
    assert hint in (info.value.hint or "")
    assert opened.log.size() == size


def test_unknown_and_malformed_ids_are_refused(case: Any) -> None:
    opened, signer = case
    with pytest.raises(UnknownId, match="INC-0042"):
        entities.get_entity(opened, "INC-0042")
    with pytest.raises(InputError, match="not an entity id"):
        entities.get_entity(opened, "incident-1")
    with pytest.raises(UnknownId):
        entities.edit_entity(opened, signer, "FAC-0007", changes={"name": "x"}, reason="r")


def test_verify_rebuilds_entities_and_reports_a_changed_row(case: Any) -> None:
    opened, signer = case
    record = entities.add_entity(opened, signer, entities.parse_new_entity("incident", INCIDENT))
    entities.edit_entity(opened, signer, record.id, changes={"end": "2022-06"}, reason="found")
    assert verify_case(opened, workers=1).ok
    opened.db.execute("UPDATE entities SET title = 'Something else' WHERE id = ?", [record.id])
    findings = verify_case(opened, workers=1).findings
    assert [(f.code, f.subject) for f in findings] == [
        ("catalog-row-changed", "entities[INC-0001]")
    ]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    title=st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
        min_size=1,
        max_size=40,
    ),
    count=st.integers(min_value=0, max_value=2**53 - 1),
)
def test_entities_round_trip_through_the_log(case: Any, title: str, count: int) -> None:
    opened, signer = case
    entity = entities.parse_new_entity(
        "incident", {**INCIDENT, "title": title, "children_count": str(count)}
    )
    assert isinstance(entity, Incident)
    record = entities.add_entity(opened, signer, entity)
    assert record.title == entity.title
    assert record.data["children_count"] == count
    rebuilt = catalog.rebuild(_events(opened))
    assert catalog.compare(opened.db, rebuilt) == []


def _events(opened: Any) -> list[Any]:
    return [parse_leaf(leaf).event for _s, leaf, _h in opened.log.iter_leaves()]


# --- list fields: set as a whole, or values added and removed one by one --------------------


def _incident_with_crimes(case: Any, *crimes: str) -> entities.EntityRecord:
    opened, signer = case
    return entities.add_entity(
        opened, signer, entities.parse_new_entity("incident", {**INCIDENT, "crimes": crimes})
    )


def test_values_added_to_a_list_keep_those_recorded(case: Any) -> None:
    opened, signer = case
    record = _incident_with_crimes(case, "art. 8(2)(a)(vii)")
    edited = entities.edit_entity(
        opened, signer, record.id, additions={"crimes": ["Art. 7(1)(d)"]}, reason="second act"
    )
    assert edited.data["crimes"] == ["art. 8(2)(a)(vii)", "art. 7(1)(d)"]
    history = entities.entity_history(opened, record.id)
    assert history[-1]["changes"] == {"crimes": ["art. 8(2)(a)(vii)", "art. 7(1)(d)"]}
    assert history[0]["entity"]["crimes"] == ["art. 8(2)(a)(vii)"]


def test_a_value_removed_from_a_list_is_matched_as_the_record_stores_it(case: Any) -> None:
    opened, signer = case
    record = _incident_with_crimes(case, "art. 8(2)(a)(vii)", "art. 7(1)(d)")
    edited = entities.edit_entity(
        opened, signer, record.id, removals={"crimes": ["8(2)(a)(vii)"]}, reason="not shown"
    )
    assert edited.data["crimes"] == ["art. 7(1)(d)"]
    both = entities.edit_entity(
        opened,
        signer,
        record.id,
        additions={"crimes": ["art. 6(e)"]},
        removals={"crimes": ["art. 7(1)(d)"]},
        reason="requalified",
    )
    assert both.data["crimes"] == ["art. 6(e)"]


def test_a_list_given_as_a_whole_still_replaces_it(case: Any) -> None:
    opened, signer = case
    record = _incident_with_crimes(case, "art. 8(2)(a)(vii)", "art. 7(1)(d)")
    edited = entities.edit_entity(
        opened, signer, record.id, changes={"crimes": ["art. 6(e)"]}, reason="requalified"
    )
    assert edited.data["crimes"] == ["art. 6(e)"]


def test_aliases_and_placements_are_added_and_removed_one_by_one(case: Any) -> None:
    opened, signer = case
    add = entities.parse_new_entity
    facility = entities.add_entity(
        opened,
        signer,
        add("facility", {"name": "Camp Example", "type": "camp", "aliases": ["Camp No. 1"]}),
    )
    edited = entities.edit_entity(
        opened,
        signer,
        facility.id,
        additions={"aliases": ["Summer camp"], "transliterations": ["Lager Primer"]},
        reason="names in a second list",
    )
    assert edited.data["aliases"] == ["Camp No. 1", "Summer camp"]
    assert edited.data["transliterations"] == ["Lager Primer"]
    child = entities.add_entity(
        opened,
        signer,
        add(
            "child",
            {
                "code": "C-042",
                "status": "located",
                "placements": [{"facility": facility.id, "start": "2022-06"}],
            },
        ),
    )
    second = {"facility": facility.id, "start": "2022-10", "end": "2023-01"}
    moved = entities.edit_entity(
        opened, signer, child.id, additions={"placements": [second]}, reason="moved back"
    )
    assert len(moved.data["placements"]) == 2
    kept = entities.edit_entity(
        opened,
        signer,
        child.id,
        removals={"placements": [{"facility": facility.id, "start": "2022-06"}]},
        reason="the first stay was another child's",
    )
    assert kept.data["placements"] == [second]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(
            {"removals": {"crimes": ["art. 8(2)(b)(viii)"]}},
            r"crimes: 'art. 8\(2\)\(b\)\(viii\)' is not in the list of INC-0001",
            id="remove-a-value-not-listed",
        ),
        pytest.param(
            {"changes": {"crimes": ["art. 6(e)"]}, "additions": {"crimes": ["art. 6(b)"]}},
            "crimes: give either the whole new list or values to add and remove",
            id="set-and-add-one-list",
        ),
        pytest.param(
            {"unset": ("crimes",), "removals": {"crimes": ["art. 8(2)(a)(vii)"]}},
            "crimes: give either",
            id="unset-and-remove-one-list",
        ),
        pytest.param({"additions": {"crimes": ["art. 99"]}}, r"crimes\[0\]", id="add-a-bad-value"),
        pytest.param(
            {"additions": {"title": ["Other"]}}, "title: not a list field", id="add-to-a-value"
        ),
        pytest.param(
            {"additions": {"crimes": ["8(2)(a)(vii)"]}}, "changes nothing", id="add-a-listed-value"
        ),
    ],
)
def test_bad_list_edits_are_refused_and_record_nothing(
    case: Any, edit: dict[str, Any], message: str
) -> None:
    opened, signer = case
    record = _incident_with_crimes(case, "art. 8(2)(a)(vii)")
    size = opened.log.size()
    with pytest.raises(InputError, match=message):
        entities.edit_entity(opened, signer, record.id, reason="r", **edit)
    assert opened.log.size() == size
    assert entities.get_entity(opened, record.id).data["crimes"] == ["art. 8(2)(a)(vii)"]


COMPOSED = "Caf\u00e9 Nord"
DECOMPOSED = "Cafe\u0301 Nord"
"""The same fictional name, with the accent as one character (NFC) or as two (NFD)."""


def test_an_alias_typed_decomposed_is_the_same_alias(case: Any) -> None:
    opened, signer = case
    add = entities.parse_new_entity
    facility = entities.add_entity(
        opened, signer, add("facility", {"name": "Camp", "type": "camp", "aliases": [DECOMPOSED]})
    )
    assert facility.data["aliases"] == [COMPOSED]
    size = opened.log.size()
    with pytest.raises(InputError, match="changes nothing"):
        entities.edit_entity(
            opened, signer, facility.id, additions={"aliases": [DECOMPOSED]}, reason="again"
        )
    assert opened.log.size() == size
    edited = entities.edit_entity(
        opened, signer, facility.id, removals={"aliases": [DECOMPOSED]}, reason="wrong camp"
    )
    assert edited.data.get("aliases", []) == []


@pytest.mark.parametrize("typed", [COMPOSED, DECOMPOSED], ids=["nfc", "nfd"])
def test_an_alias_recorded_decomposed_before_is_removed_as_typed(case: Any, typed: str) -> None:
    opened, signer = case
    # Built without the input context, as a record from before normalisation was stored.
    old = Facility.model_validate(
        {"id": "FAC-0001", "name": "Camp", "type": "camp", "aliases": [DECOMPOSED, "Lager"]}
    )
    record = entities.add_entity(opened, signer, old)
    assert record.data["aliases"] == [DECOMPOSED, "Lager"]
    edited = entities.edit_entity(
        opened, signer, record.id, removals={"aliases": [typed]}, reason="wrong camp"
    )
    assert edited.data["aliases"] == ["Lager"]


def test_an_alias_recorded_decomposed_before_is_not_added_twice(case: Any) -> None:
    opened, signer = case
    old = Facility.model_validate(
        {"id": "FAC-0001", "name": "Camp", "type": "camp", "aliases": [DECOMPOSED, "Lager"]}
    )
    record = entities.add_entity(opened, signer, old)
    edited = entities.edit_entity(
        opened, signer, record.id, additions={"aliases": [COMPOSED]}, reason="again"
    )
    # The correction records the list in NFC: one name, as it is shown.
    assert edited.data["aliases"] == [COMPOSED, "Lager"]
