"""The e-Court CSV and the canonical items.json."""

from __future__ import annotations

import csv
import io
import json

import rfc8785

from exports.ecourt import CSV_COLUMNS, items_csv, items_json
from tests.exports.conftest import Fixture


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def test_csv_has_one_row_per_item_and_testimony(bundle: Fixture) -> None:
    data = items_csv(bundle.content)
    assert data.startswith(",".join(CSV_COLUMNS).encode() + b"\r\n")
    rows = _rows(data)
    content = bundle.content
    assert len(rows) == len(content.items) + len(content.testimonies)
    pdf = rows[0]
    assert pdf["ERN Start"] == "UKR-DEP-000010"
    assert pdf["ERN End"] == "UKR-DEP-000012"
    assert pdf["Pages"] == "3"
    assert pdf["SHA-256"] == content.items[0].sha256
    assert pdf["Type"] == "Document"
    assert pdf["Author"] == "Unknown"
    assert pdf["Source"] == "Example Documentation Group"
    assert pdf["Language"] == "uk"
    assert pdf["Confidentiality"] == "restricted"
    assert rows[1]["Related Items"] == "UKR-DEP-000010"
    testimony = rows[-1]
    assert testimony["ERN Start"] == testimony["ERN End"] == "UKR-DEP-000020"
    assert testimony["Type"] == "Testimony (child victim)"
    assert testimony["Language"] == "uk, en"


def test_csv_cells_cannot_become_spreadsheet_formulas(bundle: Fixture) -> None:
    item = bundle.content.items[2].model_copy(update={"title": '=HYPERLINK("x","y")'})
    content = bundle.content.model_copy(update={"items": (*bundle.content.items[:2], item)})
    rows = _rows(items_csv(content))
    assert rows[2]["Title"] == '\'=HYPERLINK("x","y")'
    # The exact title stays in items.json.
    assert json.loads(items_json(content))["items"][2]["title"] == '=HYPERLINK("x","y")'


def test_csv_keeps_commas_quotes_and_line_breaks(bundle: Fixture) -> None:
    title = 'Order, "urgent"\nsecond line'
    item = bundle.content.items[2].model_copy(update={"title": title})
    content = bundle.content.model_copy(update={"items": (*bundle.content.items[:2], item)})
    assert _rows(items_csv(content))[2]["Title"] == title


def test_items_json_is_canonical_and_complete(bundle: Fixture) -> None:
    data = items_json(bundle.content)
    assert data.endswith(b"\n")
    document = json.loads(data)
    assert bytes(rfc8785.dumps(document)) + b"\n" == data
    assert [i["ern"] for i in document["items"]] == [i.ern for i in bundle.content.items]
    first = document["items"][0]
    assert first["erns"] == ["UKR-DEP-000010", "UKR-DEP-000011", "UKR-DEP-000012"]
    assert first["files"]["stamped"] == "stamped/UKR-DEP-000010_transfer_list_scan.pdf"
    assert first["files"]["leaf"].startswith("custody/events/")
    assert "original_path" not in first  # a path on the exporter's machine is not shared
    testimony = document["testimonies"][0]
    assert "protected_annex" not in testimony
    assert testimony["files"]["protected_annex"] == "protected/UKR-DEP-000020.sealed"
    incident = document["groups"][0]
    assert incident["kind"] == "incident"
    assert incident["children"][0]["kind"] == "facility"
    assert incident["children"][0]["children"][0]["kind"] == "perpetrator"
    assert document["ungrouped"] == ["UKR-DEP-000014"]
    assert str(bundle.sources) not in data.decode()


def test_outputs_are_deterministic(bundle: Fixture) -> None:
    assert items_csv(bundle.content) == items_csv(bundle.content)
    assert items_json(bundle.content) == items_json(bundle.content)
