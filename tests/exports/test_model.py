"""The bundle model refuses inconsistent content, naming the field or record."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from chain_of_custody import parse_note
from exports.model import (
    MAX_NAME_BYTES,
    BagName,
    BundleContent,
    Selection,
    parse_time,
    safe_file_name,
)
from tests.exports.conftest import Fixture, build_content, fixed_key


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


STRANGER = fixed_key(bytes(range(7, 39)), "investigator-b")


def _checkpoint_by_unknown_key(content: BundleContent) -> dict[str, Any]:
    data = content.model_dump()
    data["checkpoint_note"] = STRANGER.signed_note(parse_note(content.checkpoint_note).text)
    return data


def _event_by_unknown_key(content: BundleContent) -> dict[str, Any]:
    data = content.model_dump()
    leaf = content.custody_events[2]
    data["custody_events"][2]["leaf"] = STRANGER.signed_note(parse_note(leaf.leaf).text)
    return data


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
    pytest.param(_checkpoint_by_unknown_key, "checkpoint signer", id="checkpoint-key-missing"),
    pytest.param(_event_by_unknown_key, "event 2 is signed by", id="event-key-missing"),
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
        pytest.param("фото.jpg", "E-1_фото.jpg", id="cyrillic"),
        pytest.param(
            "Наказ_про_переміщення.pdf", "E-1_Наказ_про_переміщення.pdf", id="ukrainian-order"
        ),
        pytest.param("Ґанок і їжак.txt", "E-1_Ґанок_і_їжак.txt", id="ukrainian-letters"),
        pytest.param("Табір «Сонечко»: 2022?.pdf", "E-1_Табір_Сонечко_2022.pdf", id="punctuation"),
        pytest.param('a<b>c:d"e|f?g*h.txt', "E-1_a_b_c_d_e_f_g_h.txt", id="windows-unsafe"),
        pytest.param("a\u200bb.txt", "E-1_ab.txt", id="zero-width"),
        pytest.param("наказ\u202etxt.exe", "E-1_наказtxt.exe", id="bidi-override"),
        pytest.param("звіт\u2066.pdf\u2069", "E-1_звіт.pdf", id="bidi-isolate"),
        pytest.param("рядок\nдругий\t.txt", "E-1_рядок_другий.txt", id="controls"),
        pytest.param("звіт. . ", "E-1_звіт", id="trailing-dots-and-spaces"),
        pytest.param("..\u0301прихований", "E-1_прихований", id="leading-dot-and-mark"),
        pytest.param("", "E-1_file", id="empty"),
    ],
)
def test_safe_file_name_examples(name: str, expected: str) -> None:
    assert safe_file_name("E-1", name) == unicodedata.normalize("NFC", expected)


def test_safe_file_name_keeps_nfd_input_readable() -> None:
    decomposed = unicodedata.normalize("NFD", "Список дітей й ї.pdf")
    assert decomposed != unicodedata.normalize("NFC", decomposed)
    assert safe_file_name("E-1", decomposed) == unicodedata.normalize(
        "NFC", "E-1_Список_дітей_й_ї.pdf"
    )


@pytest.mark.parametrize("letter", ["ї", "ж", "a", "й"])
def test_a_long_name_is_cut_in_utf8_bytes_keeping_the_extension(letter: str) -> None:
    ern = "UKR-DEP-000001"
    result = safe_file_name(ern, letter * 300 + ".pdf")
    assert result.startswith(f"{ern}_{letter}") and result.endswith(".pdf")
    assert MAX_NAME_BYTES - len(letter.encode()) < len(result.encode()) <= MAX_NAME_BYTES
    assert set(result.removeprefix(f"{ern}_").removesuffix(".pdf")) == {letter}


def test_a_long_name_never_separates_a_letter_from_its_accent() -> None:
    # "ѝ" followed by a combining breve is one visible letter that NFC leaves as two code
    # points; with the leading "a" the byte budget ends between the two.
    letter = "ѝ\u0306"
    result = safe_file_name("E-1", "a" + letter * 100)
    assert len(result.encode()) <= MAX_NAME_BYTES
    assert result == "E-1_a" + letter * result.count("ѝ")
    assert result.endswith("\u0306")


@given(st.text(max_size=400))
def test_safe_file_name_always_gives_a_valid_bag_name(name: str) -> None:
    result = safe_file_name("UKR-DEP-000001", name)
    assert result.startswith("UKR-DEP-000001_")
    assert len(result.encode()) <= MAX_NAME_BYTES
    assert "/" not in result and "\\" not in result
    assert not set('<>:"|?*') & set(result)
    assert unicodedata.is_normalized("NFC", result)
    assert not result.endswith((".", " "))
    assert TypeAdapter(BagName).validate_python(result) == result


# The Hangul fillers are letters that show nothing: they are removed like zero-width spaces.
_VISIBLE_LETTERS = st.characters(
    categories=("L", "Nd"), exclude_characters="\u115f\u1160\u3164\uffa0"
)


@given(st.text(alphabet=_VISIBLE_LETTERS, min_size=1, max_size=40))
def test_letters_and_digits_of_any_script_are_kept(name: str) -> None:
    assert safe_file_name("E-1", name) == "E-1_" + unicodedata.normalize("NFC", name)


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


def test_key_roles_name_what_each_key_signs(bundle: Fixture) -> None:
    """An exporter who did not make the checkpoint: both keys are needed to trust the bundle."""
    content = bundle.content
    note = STRANGER.signed_note(parse_note(content.checkpoint_note).text)
    two_keys = content.model_copy(
        update={
            "checkpoint_note": note,
            "verifier_keys": (*content.verifier_keys, STRANGER.verifier()),
        }
    )
    two_keys = BundleContent.model_validate(two_keys.model_dump())
    exporter, checkpoint = two_keys.key_roles()
    assert exporter.key.key_id == bundle.key.key_id
    assert (exporter.tag_manifest, exporter.checkpoint) == (True, False)
    assert exporter.events == tuple(leaf.seq for leaf in content.custody_events)
    assert exporter.uses() == "the tag manifest (the exporting key); custody events 0-7"
    assert checkpoint.key.key_id == STRANGER.key_id
    assert (checkpoint.tag_manifest, checkpoint.checkpoint, checkpoint.events) == (
        False,
        True,
        (),
    )
    assert checkpoint.uses() == "the checkpoint"
    assert exporter.must_be_trusted and checkpoint.must_be_trusted


def test_a_key_fingerprint_is_the_sha256_of_its_der_form(bundle: Fixture) -> None:
    key = bundle.content.verifier_keys[0]
    der = bundle.key.private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key.fingerprint == hashlib.sha256(der).hexdigest()
