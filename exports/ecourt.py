"""The machine-readable item lists of a bundle: an e-Court style CSV and a canonical JSON.

``items.csv`` has one row per item or testimony, in the columns an e-Court evidence list uses
(ERN range, title, date, type, author, source, language, confidentiality, pages or duration,
hash, related items). ``items.json`` holds the full bundle model as RFC 8785 canonical JSON,
so a re-export of the same state gives the same bytes and other tools can read it without
guessing.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import rfc8785

from exports.model import (
    BundleContent,
    BundleItem,
    BundleTestimony,
    Group,
    annex_href,
    leaf_href,
    original_href,
    proof_href,
    stamped_href,
)

CSV_COLUMNS = (
    "ERN Start",
    "ERN End",
    "Title",
    "Date",
    "Type",
    "Author",
    "Source",
    "Language",
    "Confidentiality",
    "Pages",
    "Duration",
    "SHA-256",
    "Related Items",
    "File",
)

# A cell starting with one of these is read as a formula by spreadsheet programs; a leading
# apostrophe keeps it text (the exact value stays in items.json).
_FORMULA_START = ("=", "+", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _item_row(item: BundleItem) -> list[str]:
    return [
        item.ern,
        item.ern_end,
        item.title,
        item.date or "",
        item.kind,
        item.author,
        item.source,
        item.language,
        item.confidentiality,
        str(item.pages) if item.pages is not None else "",
        item.duration or "",
        item.sha256,
        "; ".join(item.related_erns),
        original_href(item),
    ]


def _testimony_row(testimony: BundleTestimony) -> list[str]:
    return [
        testimony.ern,
        testimony.ern,
        testimony.title,
        testimony.interview_date or "",
        f"Testimony ({testimony.category})",
        testimony.witness_code,
        testimony.witness_code,
        ", ".join(testimony.languages),
        testimony.confidentiality,
        "",
        "",
        testimony.sha256,
        "; ".join(testimony.related_erns),
        original_href(testimony),
    ]


def items_csv(content: BundleContent) -> bytes:
    """The e-Court style evidence list: UTF-8, CRLF line ends, a header row, one row per record."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS)
    rows = [_item_row(i) for i in content.items] + [_testimony_row(t) for t in content.testimonies]
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return buffer.getvalue().encode("utf-8")


def _item_json(item: BundleItem) -> dict[str, Any]:
    data = item.model_dump(
        mode="json", exclude={"original_path", "proof_text", "bag_name", "stamped"}
    )
    data["ern"] = item.ern
    data["ern_end"] = item.ern_end
    data["files"] = {
        "original": original_href(item),
        "proof": proof_href(item),
        "leaf": leaf_href(item.leaf_seq),
        **({"stamped": stamped_href(item)} if item.stamped else {}),
    }
    return data


def _testimony_json(testimony: BundleTestimony) -> dict[str, Any]:
    data = testimony.model_dump(
        mode="json", exclude={"document_path", "proof_text", "bag_name", "protected_annex"}
    )
    files = {
        "statement_record": original_href(testimony),
        "proof": proof_href(testimony),
        "leaf": leaf_href(testimony.leaf_seq),
    }
    if testimony.protected_annex is not None:
        files["protected_annex"] = annex_href(testimony)
    data["files"] = files
    return data


def _group_json(group: Group) -> dict[str, Any]:
    data = group.model_dump(mode="json", exclude={"facilities", "perpetrators"})
    data["children"] = [_group_json(child) for child in group.children()]
    return data


def items_json(content: BundleContent) -> bytes:
    """The bundle's records as RFC 8785 canonical JSON followed by a newline."""
    document: dict[str, Any] = {
        "format": "evidence-locker/bundle-items@v1",
        "bundle": content.info.model_dump(mode="json"),
        "items": [_item_json(item) for item in content.items],
        "testimonies": [_testimony_json(t) for t in content.testimonies],
        "groups": [_group_json(group) for group in content.groups],
        "ungrouped": list(content.ungrouped_erns()),
    }
    return bytes(rfc8785.dumps(document)) + b"\n"
