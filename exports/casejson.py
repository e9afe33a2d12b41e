"""The bundle described in CASE/UCO JSON-LD (``data/metadata/case.jsonld``).

Each original (item or testimony statement record) is a ``uco-observable:File`` with a
``FileFacet`` (bag file name, size) and a ``ContentDataFacet`` holding its SHA-256 and SHA-512
as ``uco-types:Hash``; a ``case-investigation:ProvenanceRecord`` gives it its exhibit number
(the ERN); each custody event is a ``case-investigation:InvestigativeAction`` with its performer
and start time, and the export itself is one more action whose results are the provenance
records. Node identifiers are UUIDs derived from the bundle and the record, so the same content
always gives the same document. The output conforms to CASE 1.x as checked by ``case_validate``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from exports.model import BundleContent, BundleItem, BundleTestimony, CustodyEntry

CONTEXT = {
    "kb": "urn:uuid:",
    "case-investigation": "https://ontology.caseontology.org/case/investigation/",
    "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
    "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
    "uco-identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
    "uco-observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
    "uco-types": "https://ontology.unifiedcyberontology.org/uco/types/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}

# Fixed namespace for the deterministic node identifiers of this toolkit's CASE documents.
_NAMESPACE = uuid.UUID("6f1d3c0e-5b8a-5d7e-9a4b-2c1e0f9d8a71")


class _Ids:
    """Deterministic ``kb:<uuid>`` identifiers, one per (kind, key) within a bundle."""

    def __init__(self, bundle_id: str) -> None:
        self._base = uuid.uuid5(_NAMESPACE, bundle_id)

    def __call__(self, kind: str, key: str) -> str:
        name = f"{kind}\x00{key}"
        return f"kb:{uuid.uuid5(self._base, name)}"


def _typed(datatype: str, value: str) -> dict[str, str]:
    return {"@type": datatype, "@value": value}


def _ref(node_id: str) -> dict[str, str]:
    return {"@id": node_id}


def _file_nodes(
    ids: _Ids, key: str, name: str, size: int, sha256: str, sha512: str, mime: str
) -> tuple[str, dict[str, Any]]:
    file_id = ids("file", key)
    node = {
        "@id": file_id,
        "@type": "uco-observable:File",
        "uco-core:name": name,
        "uco-core:hasFacet": [
            {
                "@id": ids("file-facet", key),
                "@type": "uco-observable:FileFacet",
                "uco-observable:fileName": name,
                "uco-observable:sizeInBytes": _typed("xsd:integer", str(size)),
            },
            {
                "@id": ids("content-data-facet", key),
                "@type": "uco-observable:ContentDataFacet",
                "uco-observable:mimeType": mime,
                "uco-observable:sizeInBytes": _typed("xsd:integer", str(size)),
                "uco-observable:hash": [
                    {
                        "@id": ids("hash-sha256", key),
                        "@type": "uco-types:Hash",
                        "uco-types:hashMethod": "SHA256",
                        "uco-types:hashValue": _typed("xsd:hexBinary", sha256.upper()),
                    },
                    {
                        "@id": ids("hash-sha512", key),
                        "@type": "uco-types:Hash",
                        "uco-types:hashMethod": "SHA512",
                        "uco-types:hashValue": _typed("xsd:hexBinary", sha512.upper()),
                    },
                ],
            },
        ],
    }
    return file_id, node


def _action(
    ids: _Ids, entry: CustodyEntry, performer_id: str, object_id: str, record_key: str
) -> dict[str, Any]:
    node: dict[str, Any] = {
        "@id": ids("action", f"{entry.seq}\x00{record_key}"),
        "@type": "case-investigation:InvestigativeAction",
        "uco-core:name": entry.action,
        "uco-action:startTime": _typed("xsd:dateTime", entry.time),
        "uco-action:performer": _ref(performer_id),
        "uco-action:object": [_ref(object_id)],
    }
    if entry.summary:
        node["uco-core:description"] = entry.summary
    return node


def case_jsonld(content: BundleContent) -> bytes:
    """The CASE/UCO JSON-LD document of the bundle, UTF-8, keys sorted, two-space indent."""
    info = content.info
    ids = _Ids(info.bundle_id)
    graph: list[dict[str, Any]] = []
    identities: dict[str, str] = {}

    def identity(name: str) -> str:
        if name not in identities:
            identities[name] = ids("identity", name)
        return identities[name]

    organisation_id = ids("organisation", info.organisation)
    graph.append(
        {
            "@id": organisation_id,
            "@type": "uco-identity:Organization",
            "uco-core:name": info.organisation,
        }
    )

    records: list[tuple[BundleItem | BundleTestimony, str, str]] = []
    for item in content.items:
        file_id, node = _file_nodes(
            ids, item.ern, item.bag_name, item.size, item.sha256, item.sha512, item.mime
        )
        node["uco-core:description"] = item.title
        graph.append(node)
        records.append((item, file_id, item.ern_range))
    for testimony in content.testimonies:
        file_id, node = _file_nodes(
            ids,
            testimony.ern,
            testimony.bag_name,
            testimony.size,
            testimony.sha256,
            testimony.sha512,
            testimony.mime,
        )
        node["uco-core:description"] = testimony.title
        graph.append(node)
        records.append((testimony, file_id, testimony.ern))

    provenance_ids: list[str] = []
    file_ids: list[str] = []
    for record, file_id, exhibit in records:
        provenance_id = ids("provenance-record", record.ern)
        provenance_ids.append(provenance_id)
        file_ids.append(file_id)
        graph.append(
            {
                "@id": provenance_id,
                "@type": "case-investigation:ProvenanceRecord",
                "case-investigation:exhibitNumber": exhibit,
                "uco-core:description": record.title,
                "uco-core:object": [_ref(file_id)],
            }
        )
        for entry in record.custody:
            graph.append(_action(ids, entry, identity(entry.actor), file_id, record.ern))

    export_id = ids("export", info.bundle_id)
    export_action: dict[str, Any] = {
        "@id": export_id,
        "@type": "case-investigation:InvestigativeAction",
        "uco-core:name": "export",
        "uco-core:description": (
            f"Submission bundle {info.bundle_id} ({info.profile} profile): "
            f"{info.selection.describe()}"
        ),
        "uco-action:startTime": _typed("xsd:dateTime", info.created),
        "uco-action:performer": _ref(identity(info.exporter_key_id)),
        "uco-action:object": [_ref(file_id) for file_id in file_ids],
        "uco-action:result": [_ref(p) for p in provenance_ids],
    }
    graph.append(export_action)
    graph.extend(
        {"@id": node_id, "@type": "uco-identity:Identity", "uco-core:name": name}
        for name, node_id in sorted(identities.items())
    )
    graph.append(
        {
            "@id": ids("investigation", info.case_id),
            "@type": "case-investigation:Investigation",
            "uco-core:name": f"{info.case_id}: {info.case_title}",
            "case-investigation:investigationForm": "case",
            "uco-core:object": [
                _ref(organisation_id),
                _ref(export_id),
                *(_ref(p) for p in provenance_ids),
            ],
        }
    )
    document = {"@context": CONTEXT, "@graph": graph}
    return (json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()
