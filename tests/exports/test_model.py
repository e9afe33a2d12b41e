"""The bundle model refuses inconsistent content, naming the field or record."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from exports.model import BagName, BundleContent, Selection, parse_time, safe_file_name
from tests.exports.conftest import Fixture, build_content


def _item(content: BundleContent, index: int, **changes: Any) -> dict[str, Any]:
    data = content.model_dump()
    data["items"][index].update(changes)
    return data


def _set_info(**changes: Any) -> Callable[[BundleContent], dict[str, Any]]:
    def change(content: BundleContent) -> dict[str, Any]:
        data = content.model_dump()
        data["info"].update(changes)
        return data

    return change


def _annex_in_public(content: BundleContent) -> dict[str, Any]:
    data = content.model_dump()
    data["info"]["profile"] = "public"
    return data


def _duplicate_ern(content: BundleContent) -> dict[str, Any]:
    return _item(content, 2, erns=("UKR-DEP-000013",), bag_name="UKR-DEP-000013_x.txt")


def _group_unknown_ern(content: BundleContent) -> dict[str, Any]:
    data = content.model_dump()
    data["groups"][0]["item_erns"] = ("UKR-DEP-999999",)
    return data


def _missing_leaf(content: BundleContent) -> dict[str, Any]:
    return _item(content, 1, leaf_seq=999)


def _unknown_related(content: BundleContent) -> dict[str, Any]:
    return _item(content, 1, related_erns=("UKR-DEP-888888",))


def _no_exporter_key(content: BundleContent) -> dict[str, Any]:
    return _set_info(exporter_key_id="someone+00000000")(content)


BAD = [
    pytest.param(lambda c: _item(c, 0, erns=("ukr-dep-1",)), "ERN", id="lower-case-ern"),
    pytest.param(lambda c: _item(c, 0, erns=()), "erns", id="no-ern"),
    pytest.param(lambda c: _item(c, 0, sha256="AB" * 32), "hex", id="upper-case-sha256"),
    pytest.param(lambda c: _item(c, 0, sha512="ab" * 32), "128", id="short-sha512"),
    pytest.param(lambda c: _item(c, 0, size=-1), "size", id="negative-size"),
    pytest.param(lambda c: _item(c, 0, bag_name="../escape.pdf"), "safe", id="path-in-name"),
    pytest.param(lambda c: _item(c, 0, bag_name=".hidden"), "safe", id="hidden-name"),
    pytest.param(lambda c: _item(c, 0, bag_name="UKR-DEP-000099_x.pdf"), "ERN", id="name-ern"),
    pytest.param(lambda c: _item(c, 1, stamped=True), "only PDFs", id="stamped-image"),
    pytest.param(lambda c: _item(c, 0, pages=2), "page ERNs", id="pages-vs-erns"),
    pytest.param(_set_info(created="2026-11-24 03:20:00"), "RFC 3339", id="bad-created"),
    pytest.param(_set_info(profile="press"), "profile", id="unknown-profile"),
    pytest.param(_set_info(checkpoint_root="00"), "hex", id="short-root"),
    pytest.param(_annex_in_public, "protected annex", id="annex-in-public-bundle"),
    pytest.param(_duplicate_ern, "used twice", id="duplicate-ern"),
    pytest.param(_group_unknown_ern, "not in the bundle", id="group-lists-unknown-ern"),
    pytest.param(_missing_leaf, "not in custody_events", id="leaf-missing"),
    pytest.param(_unknown_related, "related ERN", id="related-unknown"),
    pytest.param(_no_exporter_key, "exporter key", id="exporter-key-missing"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_content_is_refused(bundle: Fixture, change, message: str) -> None:
    data = change(bundle.content)
    with pytest.raises(ValidationError, match=message):
        BundleContent.model_validate(data)


def test_good_content_round_trips(bundle: Fixture) -> None:
    again = BundleContent.model_validate(bundle.content.model_dump())
    assert again == bundle.content


def test_models_are_frozen(bundle: Fixture) -> None:
    with pytest.raises(ValidationError):
        bundle.content.items[0].title = "changed"  # type: ignore[misc]


def test_ungrouped_and_ranges(tmp_path: Path) -> None:
    content = build_content(tmp_path).content
    assert content.ungrouped_erns() == ("UKR-DEP-000014",)
    assert content.items[0].ern_range == "UKR-DEP-000010-UKR-DEP-000012"
    assert content.items[1].ern_range == "UKR-DEP-000013"


def test_parse_time() -> None:
    moment = parse_time("2026-11-24T03:20:00.123456789Z")
    assert (moment.year, moment.month, moment.day, moment.hour) == (2026, 11, 24, 3)
    assert moment.microsecond == 123456
    offset = moment.utcoffset()
    assert offset is not None and offset.total_seconds() == 0
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time("2026-11-24T03:20:00+01:00")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("transfer list (scan).pdf", "E-1_transfer_list_scan.pdf", id="spaces"),
        pytest.param("../../etc/passwd", "E-1_passwd", id="path"),
        pytest.param("C:\\temp\\order.docx", "E-1_order.docx", id="windows-path"),
        pytest.param(".bashrc", "E-1_bashrc", id="hidden"),
        pytest.param("фото.jpg", "E-1_file.jpg", id="cyrillic"),
        pytest.param("a\u200bb.txt", "E-1_a_b.txt", id="zero-width"),
        pytest.param("", "E-1_file", id="empty"),
    ],
)
def test_safe_file_name_examples(name: str, expected: str) -> None:
    assert safe_file_name("E-1", name) == expected


@given(st.text(max_size=400))
def test_safe_file_name_always_gives_a_valid_bag_name(name: str) -> None:
    result = safe_file_name("UKR-DEP-000001", name)
    assert result.startswith("UKR-DEP-000001_")
    assert len(result.encode()) <= 200
    assert "/" not in result and "\\" not in result
    assert TypeAdapter(BagName).validate_python(result) == result


def test_a_selection_is_a_set_of_ids_in_number_order() -> None:
    """Options given in another order, or twice, select the same bundle (SPEC section 7)."""
    one = Selection(incidents=("INC-0010", "INC-0002", "INC-0010"), facilities=("FAC-0001",))
    two = Selection(incidents=("INC-0002", "INC-0010"), facilities=("FAC-0001", "FAC-0001"))
    assert one == two
    assert one.incidents == ("INC-0002", "INC-0010")
    assert Selection(perpetrators=("PER-10000", "PER-9999")).perpetrators == (
        "PER-9999",
        "PER-10000",
    )
    assert one.describe() == "incidents INC-0002, INC-0010; facilities FAC-0001"
