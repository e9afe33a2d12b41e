"""Selection of items and testimonies, profile filtering, consent and the group tree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evidence.entities import add_entity
from evidence.errors import InputError, UnknownId
from evidence.models import Incident
from evidence.protected import generate_recipient
from evidence.testimony import withdraw_consent
from evidence.workspace import Case
from exports.model import Profile, Selection
from exports.selection import GroupNode, allowed_in_profile, select
from tests.exports.casebuilder import (
    BuiltCase,
    build_case,
    copy_case,
    investigator_signer,
    recipient_key,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltCase:
    return build_case(tmp_path_factory.mktemp("selection"))


@pytest.fixture
def case(built: BuiltCase) -> Iterator[Case]:
    opened = built.open()
    yield opened
    opened.close()


def _roles(built: BuiltCase, shas: tuple[str, ...] | list[str]) -> list[str]:
    names = {sha: role for role, sha in built.items.items()}
    names[built.witness_document] = "W-017"
    return [names[s] for s in shas]


@pytest.mark.parametrize(
    ("level", "profile", "allowed"),
    [
        ("public", "public", True),
        ("restricted", "public", False),
        ("confidential", "public", False),
        ("strictly-confidential", "public", False),
        ("public", "restricted", True),
        ("confidential", "restricted", True),
        ("strictly-confidential", "restricted", False),
        ("strictly-confidential", "otp", True),
        (None, "public", False),
        ("garbled", "restricted", False),
        ("garbled", "otp", True),
    ],
)
def test_profile_allows(level: str | None, profile: Profile, allowed: bool) -> None:
    assert allowed_in_profile(level, profile) is allowed


def test_incident_otp_selects_linked_items_and_testimony(built: BuiltCase, case: Case) -> None:
    result = select(
        case, Selection(incidents=("INC-0001",)), "otp", recipient=recipient_key().public
    )
    assert _roles(built, [i.sha256 for i in result.items]) == [
        "transfer_list",
        "bus_photo",
        "field_notes",
    ]
    assert [t.witness_code for t in result.testimonies] == ["W-017"]
    assert result.testimonies[0].annex is not None
    assert result.warnings == ()


def test_restricted_leaves_out_strictly_confidential_and_annex(
    built: BuiltCase, case: Case
) -> None:
    result = select(case, Selection(incidents=("INC-0001",)), "restricted")
    assert _roles(built, [i.sha256 for i in result.items]) == ["transfer_list", "bus_photo"]
    assert result.testimonies[0].annex is None
    assert any("1 selected item(s) left out" in w for w in result.warnings)


def test_public_has_only_public_items_and_no_confidential_testimony(
    built: BuiltCase, case: Case
) -> None:
    result = select(case, Selection(incidents=("INC-0001",)), "public")
    assert _roles(built, [i.sha256 for i in result.items]) == ["bus_photo"]
    assert result.testimonies == ()
    assert any("W-017 left out" in w for w in result.warnings)


def _tree(node: GroupNode) -> tuple[str, int, tuple[object, ...]]:
    return (node.entity.id, len(node.subjects), tuple(_tree(c) for c in node.children))


def test_group_tree_incident_facility_perpetrator(built: BuiltCase, case: Case) -> None:
    result = select(
        case, Selection(incidents=("INC-0001",)), "otp", recipient=recipient_key().public
    )
    assert [_tree(g) for g in result.groups] == [
        ("INC-0001", 4, (("FAC-0001", 3, (("PER-0001", 1, ()),)),)),
    ]
    facility = result.groups[0].children[0]
    assert _roles(built, facility.subjects) == ["transfer_list", "bus_photo", "W-017"]


def test_item_in_several_groups_is_selected_once(built: BuiltCase, case: Case) -> None:
    result = select(
        case,
        Selection(incidents=("INC-0001",), facilities=("FAC-0001",)),
        "restricted",
    )
    shas = [i.sha256 for i in result.items]
    assert len(shas) == len(set(shas))
    assert _roles(built, shas) == ["transfer_list", "bus_photo", "other_photo"]
    # The facility is a root too: other_photo is linked to it but not to the incident.
    assert [g.entity.id for g in result.groups] == ["INC-0001", "FAC-0001"]
    listed = [s for root in result.groups for g in root.walk() for s in g.subjects]
    # incident; facility and perpetrator under it; facility root and its perpetrator
    assert listed.count(built.items["bus_photo"]) == 5


def test_all_includes_unlinked_items_and_roots_every_entity_needed(
    built: BuiltCase, case: Case
) -> None:
    result = select(case, Selection(all=True), "restricted")
    assert "unlinked" in _roles(built, [i.sha256 for i in result.items])
    assert [g.entity.id for g in result.groups] == ["INC-0001", "FAC-0001"]


def test_facility_selection_has_facility_root(built: BuiltCase, case: Case) -> None:
    result = select(case, Selection(facilities=("FAC-0001",)), "public")
    assert [_tree(g) for g in result.groups] == [
        ("FAC-0001", 2, (("PER-0001", 1, ()),)),
    ]


@pytest.mark.parametrize(
    ("selection", "error"),
    [
        pytest.param(Selection(), InputError, id="nothing-selected"),
        pytest.param(Selection(all=True, incidents=("INC-0001",)), InputError, id="all-and-ids"),
        pytest.param(Selection(incidents=("INC-0099",)), UnknownId, id="unknown-incident"),
        pytest.param(Selection(incidents=("FAC-0001",)), UnknownId, id="facility-as-incident"),
        pytest.param(Selection(perpetrators=("PER-0002",)), UnknownId, id="unknown-perpetrator"),
    ],
)
def test_bad_selections_are_refused(
    case: Case, selection: Selection, error: type[Exception]
) -> None:
    with pytest.raises(error):
        select(case, selection, "restricted")


def test_empty_result_is_refused(built: BuiltCase, tmp_path: Path) -> None:
    copy = copy_case(built, tmp_path / "case")
    case = copy.open()
    try:
        add_entity(
            case,
            investigator_signer(),
            Incident(id="INC-0000", title="No evidence yet", start="2022", place={"name": "X"}),
        )
        with pytest.raises(InputError, match="nothing to export"):
            select(case, Selection(incidents=("INC-0002",)), "restricted")
    finally:
        case.close()


def test_otp_needs_a_recipient_the_annex_is_sealed_to(case: Case) -> None:
    with pytest.raises(InputError, match="no --recipient"):
        select(case, Selection(incidents=("INC-0001",)), "otp")
    stranger = generate_recipient("someone-else").public
    with pytest.raises(InputError, match="not sealed to recipient someone-else"):
        select(case, Selection(incidents=("INC-0001",)), "otp", recipient=stranger)


def test_withdrawn_consent_leaves_testimony_out(built: BuiltCase, tmp_path: Path) -> None:
    copy = copy_case(built, tmp_path / "case")
    case = copy.open()
    try:
        withdraw_consent(
            case, investigator_signer(), "W-017", "asked to withdraw (test)", on="2025-01-01"
        )
        result = select(case, Selection(incidents=("INC-0001",)), "restricted")
    finally:
        case.close()
    assert result.testimonies == ()
    assert any("W-017 left out: consent was withdrawn" in w for w in result.warnings)
