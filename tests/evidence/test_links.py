"""Links between evidence and entities, timelines, and derived working copies."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence import custody, derive, entities, links, recipients, testimony
from evidence.errors import InputError, UnknownId
from evidence.ingest import ingest
from evidence.models import ItemOptions
from evidence.verify import verify_case
from tests.conftest import CaseHandle
from tests.evidence.test_testimony import make_testimony, recipient_key, write_testimony


@pytest.fixture
def world(make_case: Callable[..., CaseHandle], tmp_path: Path) -> Any:
    """A case with three dated items, a testimony, an incident and two facilities."""
    handle = make_case()
    opened = handle.open()
    signer = handle.signer
    shas = []
    for name, day in (("late.txt", "2022-09-01"), ("early.txt", "2022-05-14"), ("none.txt", None)):
        path = tmp_path / name
        path.write_bytes(f"fictional note {name}\n".encode())
        ingest(opened, signer, [path], options=ItemOptions(collected_at=day))
        shas.append(hashlib.sha256(path.read_bytes()).hexdigest())
    recipients.add_recipient(opened, signer, recipient_key().public)
    testimony.record_testimony(opened, signer, write_testimony(tmp_path, make_testimony()))
    for kind, values in (
        ("incident", {"title": "Transfer", "start": "2022-05", "place.name": "Example Town"}),
        ("facility", {"name": "Camp Example", "type": "camp"}),
        ("facility", {"name": "Boarding School Example", "type": "boarding-school"}),
    ):
        entities.add_entity(opened, signer, entities.parse_new_entity(kind, values))
    yield opened, signer, shas
    opened.close()


def test_links_filter_lists_and_order_timelines(world: Any) -> None:
    opened, signer, (late, early, undated) = world
    for sha in (late, early, undated):
        links.make_links(opened, signer, sha[:10], {"facility": ["FAC-0001"]}, "seen there")
    links.make_links(
        opened, signer, "W-017", {"facility": ["FAC-0001"], "incident": ["INC-0001"]}, "told"
    )
    listed = custody.list_items(opened, links={"incident": ["INC-0001"]})
    assert [i["kind"] for i in listed] == ["testimony"]
    both = custody.list_items(opened, links={"facility": ["FAC-0001"], "incident": ["INC-0001"]})
    assert len(both) == 1
    line = links.timeline(opened, "facility", "FAC-0001")
    assert [(e["date"], e["kind"]) for e in line] == [
        ("2022-05-14", "file"),
        ("2022-09-01", "file"),
        ("2023-03-01", "testimony"),
        (None, "file"),
    ]
    assert line[-1]["subject"] == undated
    assert verify_case(opened, workers=1).ok


def test_linking_again_records_nothing(world: Any) -> None:
    opened, signer, (late, _early, _undated) = world
    made = links.make_links(opened, signer, late, {"facility": ["FAC-0001"]}, "seen there")
    size = opened.log.size()
    again = links.make_links(opened, signer, late, {"facility": ["FAC-0001"]}, "seen there")
    assert made[0].seq is not None and again[0].seq is None
    assert opened.log.size() == size


@pytest.mark.parametrize(
    ("subject", "targets", "reason", "error", "message"),
    [
        pytest.param("LATE", {"facility": ["FAC-0099"]}, "r", InputError, "--facility FAC-0099",
                     id="unknown-target"),
        pytest.param("LATE", {"incident": ["FAC-0001"]}, "r", InputError, "--incident",
                     id="id-of-another-kind"),
        pytest.param("LATE", {"child": ["Child 1"]}, "r", InputError, "--child", id="malformed-id"),
        pytest.param("LATE", {}, "r", InputError, "at least one target", id="no-target"),
        pytest.param("LATE", {"facility": ["FAC-0001"]}, "", InputError, "--reason",
                     id="empty-reason"),
        pytest.param("W-099", {"facility": ["FAC-0001"]}, "r", UnknownId, "W-099",
                     id="unknown-testimony"),
        pytest.param("ffff0000", {"facility": ["FAC-0001"]}, "r", UnknownId, "ffff0000",
                     id="unknown-item"),
    ],
)  # fmt: skip
def test_bad_links_are_refused_and_record_nothing(
    world: Any,
    subject: str,
    targets: dict[str, list[str]],
    reason: str,
    error: type[Exception],
    message: str,
) -> None:
    opened, signer, (late, _early, _undated) = world
    size = opened.log.size()
    ref = late if subject == "LATE" else subject
    with pytest.raises(error, match=message):
        links.make_links(opened, signer, ref, targets, reason)
    assert opened.log.size() == size


def test_unlink_removes_the_row_and_keeps_the_history(world: Any) -> None:
    opened, signer, (late, _early, _undated) = world
    links.make_links(opened, signer, late, {"facility": ["FAC-0001", "FAC-0002"]}, "seen")
    links.remove_links(opened, signer, late, {"facility": ["FAC-0002"]}, "wrong camp")
    assert [r["target"] for r in custody.show_item(opened, late)["links"]] == ["FAC-0001"]
    actions = [h["action"] for h in custody.custody_history(opened, late)]
    assert actions.count("link.made") == 2 and actions.count("link.removed") == 1
    size = opened.log.size()
    with pytest.raises(InputError, match="not linked"):
        links.remove_links(opened, signer, late, {"facility": ["FAC-0002"]}, "again")
    assert opened.log.size() == size
    assert verify_case(opened, workers=1).ok


def test_verify_reports_changed_and_deleted_link_rows(world: Any) -> None:
    opened, signer, (late, early, _undated) = world
    links.make_links(opened, signer, late, {"facility": ["FAC-0001"]}, "seen")
    links.make_links(opened, signer, early, {"facility": ["FAC-0001"]}, "seen")
    opened.db.execute("UPDATE links SET reason = 'other' WHERE subject = ?", [late])
    opened.db.execute("DELETE FROM links WHERE subject = ?", [early])
    found = {(f.code, f.subject) for f in verify_case(opened, workers=1).findings}
    assert found == {
        ("catalog-row-changed", f"links[{late}, FAC-0001]"),
        ("catalog-row-missing", f"links[{early}, FAC-0001]"),
    }


def test_a_derived_item_points_to_its_untouched_original(world: Any, tmp_path: Path) -> None:
    opened, signer, (late, _early, _undated) = world
    original_path = opened.objects.path_for(late)
    before = original_path.read_bytes()
    row_before = opened.db.execute("SELECT * FROM items WHERE sha256 = ?", [late]).fetchone()
    copy = tmp_path / "redacted.txt"
    copy.write_bytes(b"fictional note [REDACTED]\n")
    derived = derive.derive_item(
        opened,
        signer,
        late[:12],
        kind="redaction",
        file=copy,
        reason="names removed",
        tool="example-redactor 1.0",
        redaction_codes=("identity",),
    )
    shown = custody.show_item(opened, derived.sha256)
    assert shown["derived_from"] == late
    assert shown["derivation"] == {
        "kind": "redaction",
        "reason": "names removed",
        "tool": "example-redactor 1.0",
        "redaction_codes": ["identity"],
    }
    assert shown["collected_at"] == "2022-09-01"  # inherited from the original
    assert custody.show_item(opened, late)["derivatives"] == [derived.sha256]
    assert original_path.read_bytes() == before
    row_after = opened.db.execute("SELECT * FROM items WHERE sha256 = ?", [late]).fetchone()
    assert row_after == row_before
    assert verify_case(opened, workers=1).ok


@pytest.mark.parametrize(
    ("kind", "file", "reason", "message"),
    [
        pytest.param("summary", "new", "r", "--kind", id="unknown-kind"),
        pytest.param("translation", "missing", "r", "no such file", id="missing-file"),
        pytest.param("translation", "same", "r", "already an item", id="same-bytes"),
        pytest.param("translation", "new", " ", "--reason", id="empty-reason"),
    ],
)
def test_bad_derivations_are_refused(
    world: Any, tmp_path: Path, kind: str, file: str, reason: str, message: str
) -> None:
    opened, signer, (late, _early, _undated) = world
    paths = {
        "new": tmp_path / "new.txt",
        "missing": tmp_path / "missing.txt",
        "same": tmp_path / "late.txt",
    }
    paths["new"].write_bytes(b"fictional translation\n")
    size = opened.log.size()
    with pytest.raises(InputError, match=message):
        derive.derive_item(opened, signer, late, kind=kind, file=paths[file], reason=reason)
    assert opened.log.size() == size
