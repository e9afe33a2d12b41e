"""The catalog: a projection of the custody log into queryable SQLite tables.

The custody log is the source of truth. Each action has one projector here that applies an
event to the catalog tables; the same projectors run when an event is recorded and when
``evidence verify`` rebuilds the catalog from the log into a scratch database and compares the
two. A projector reads nothing but the event and the catalog built from earlier events, so the
rebuild is exact.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import sqlite_utils

from chain_of_custody import Event, Finding

Projector = Callable[[sqlite_utils.Database, Event], None]

# Table name -> (columns with SQLite types, primary key columns). Only these tables are the
# projection; the log's own tables belong to chain_of_custody.
SCHEMA: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "case_info": (
        {
            "case_id": "TEXT",
            "title": "TEXT",
            "origin": "TEXT",
            "ern_prefix": "TEXT",
            "organisation": "TEXT",
            "created_seq": "INTEGER",
        },
        ("case_id",),
    ),
    "keys": (
        {
            "key_id": "TEXT",
            "name": "TEXT",
            "verifier": "TEXT",
            "role": "TEXT",
            "enrolled_seq": "INTEGER",
            "enrolled_by": "TEXT",
            "revoked_seq": "INTEGER",
            "revoke_reason": "TEXT",
        },
        ("key_id",),
    ),
    "items": (
        {
            "sha256": "TEXT",
            "sha512": "TEXT",
            "size": "INTEGER",
            "mime": "TEXT",
            "kind": "TEXT",
            "name": "TEXT",
            "name_b64": "TEXT",
            "path": "TEXT",
            "title": "TEXT",
            "source": "TEXT",
            "collected_by": "TEXT",
            "collected_at": "TEXT",
            "method": "TEXT",
            "device": "TEXT",
            "language": "TEXT",
            "description": "TEXT",
            "confidentiality": "TEXT",
            "tags": "TEXT",
            "metadata": "TEXT",
            "derived_from": "TEXT",
            "derivation": "TEXT",
            "holder": "TEXT",
            "ingested_seq": "INTEGER",
            "ingested_by": "TEXT",
            "ingested_at": "TEXT",
            "updated_seq": "INTEGER",
        },
        ("sha256",),
    ),
    "sightings": (
        {
            "seq": "INTEGER",
            "sha256": "TEXT",
            "path_key": "TEXT",
            "name": "TEXT",
            "path": "TEXT",
            "size": "INTEGER",
            "mtime_ns": "TEXT",
            "actor": "TEXT",
            "time": "TEXT",
            "duplicate": "INTEGER",
        },
        ("seq",),
    ),
    "symlinks": (
        {
            "seq": "INTEGER",
            "path_key": "TEXT",
            "path": "TEXT",
            "target": "TEXT",
            "actor": "TEXT",
        },
        ("seq",),
    ),
    "entities": (
        {
            "id": "TEXT",
            "kind": "TEXT",
            "number": "INTEGER",
            "title": "TEXT",
            "data": "TEXT",
            "created_seq": "INTEGER",
            "updated_seq": "INTEGER",
        },
        ("id",),
    ),
    "testimonies": (
        {
            "witness_code": "TEXT",
            "document": "TEXT",
            "data": "TEXT",
            "annex": "TEXT",
            "annex_sha256": "TEXT",
            "commitment": "TEXT",
            "recipients": "TEXT",
            "consent": "TEXT",
            "consent_withdrawn": "INTEGER",
            "created_seq": "INTEGER",
            "updated_seq": "INTEGER",
        },
        ("witness_code",),
    ),
    "links": (
        {
            "subject": "TEXT",
            "target": "TEXT",
            "target_kind": "TEXT",
            "reason": "TEXT",
            "actor": "TEXT",
            "seq": "INTEGER",
        },
        ("subject", "target"),
    ),
    "recipients": (
        {
            "recipient_id": "TEXT",
            "name": "TEXT",
            "public_key": "TEXT",
            "added_seq": "INTEGER",
        },
        ("recipient_id",),
    ),
    "erns": (
        {
            "subject": "TEXT",
            "first": "TEXT",
            "last": "TEXT",
            "number_first": "INTEGER",
            "number_last": "INTEGER",
            "seq": "INTEGER",
        },
        ("subject",),
    ),
    "exports": (
        {
            "bundle_id": "TEXT",
            "profile": "TEXT",
            "selection": "TEXT",
            "items": "TEXT",
            "checkpoint_size": "INTEGER",
            "actor": "TEXT",
            "seq": "INTEGER",
        },
        ("bundle_id",),
    ),
}

_INDEXES = {
    "sightings": [("path_key",), ("sha256",)],
    "links": [("target",)],
    "entities": [("kind", "number")],
}

PROJECTORS: dict[str, Projector] = {}


def projector(*actions: str) -> Callable[[Projector], Projector]:
    """Register the projector of one or more actions."""

    def register(func: Projector) -> Projector:
        for action in actions:
            PROJECTORS[action] = func
        return func

    return register


def ensure_schema(db: sqlite_utils.Database) -> None:
    """Create the projection tables that are missing (idempotent)."""
    existing = set(db.table_names())
    missing = [name for name in SCHEMA if name not in existing]
    if not missing:
        return
    for name in missing:
        columns, pk = SCHEMA[name]
        cols = ", ".join(f'"{c}" {t}' for c, t in columns.items())
        keys = ", ".join(f'"{c}"' for c in pk)
        db.execute(f'CREATE TABLE IF NOT EXISTS "{name}" ({cols}, PRIMARY KEY ({keys}))')
        for index in _INDEXES.get(name, []):
            idx_name = f"idx_{name}_{'_'.join(index)}"
            idx_cols = ", ".join(f'"{c}"' for c in index)
            db.execute(f'CREATE INDEX IF NOT EXISTS "{idx_name}" ON "{name}" ({idx_cols})')


def project(db: sqlite_utils.Database, event: Event) -> None:
    """Apply one event to the catalog. Actions without a projector change no table."""
    func = PROJECTORS.get(event.action)
    if func is not None:
        func(db, event)


def rebuild(events: Iterable[Event]) -> sqlite_utils.Database:
    """Build the catalog a log produces, in memory."""
    db = sqlite_utils.Database(memory=True)
    ensure_schema(db)
    with db.conn:
        for event in events:
            project(db, event)
    return db


def compare(actual: sqlite_utils.Database, expected: sqlite_utils.Database) -> list[Finding]:
    """Name every catalog row that differs from what the log produces."""
    findings: list[Finding] = []
    for table, (columns, pk) in SCHEMA.items():
        have = dict(_rows(actual, table, columns, pk))
        want = dict(_rows(expected, table, columns, pk))
        for key in sorted(have.keys() | want.keys()):
            label = f"{table}[{', '.join(str(k) for k in key)}]"
            if key not in want:
                findings.append(
                    Finding(
                        "catalog-row-unexplained",
                        f"catalog row {label} is not produced by the log",
                        subject=label,
                    )
                )
            elif key not in have:
                findings.append(
                    Finding("catalog-row-missing", f"catalog row {label} is missing", subject=label)
                )
            elif have[key] != want[key]:
                changed = [c for c in columns if have[key][c] != want[key][c]]
                findings.append(
                    Finding(
                        "catalog-row-changed",
                        f"catalog row {label} differs from the log in {', '.join(changed)}",
                        subject=label,
                    )
                )
    return findings


def _rows(
    db: sqlite_utils.Database, table: str, columns: dict[str, str], pk: tuple[str, ...]
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    if table not in db.table_names():
        return
    names = ", ".join(f'"{c}"' for c in columns)
    for row in db.execute(f'SELECT {names} FROM "{table}"').fetchall():
        record = dict(zip(columns, row, strict=True))
        yield tuple(record[c] for c in pk), record


def dumps(value: Any) -> str:
    """Compact, sorted JSON for catalog columns."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


# --- projectors ---------------------------------------------------------------------------


@projector("case.created")
def _case_created(db: sqlite_utils.Database, event: Event) -> None:
    data = event.data
    db["case_info"].insert(
        {
            "case_id": event.subject,
            "title": data.get("title"),
            "origin": data.get("origin"),
            "ern_prefix": data.get("ern_prefix"),
            "organisation": data.get("organisation", ""),
            "created_seq": event.seq,
        }
    )


@projector("key.enrolled")
def _key_enrolled(db: sqlite_utils.Database, event: Event) -> None:
    verifier = str(event.data.get("verifier", ""))
    db["keys"].upsert(
        {
            "key_id": event.subject,
            "name": verifier.split("+", 1)[0],
            "verifier": verifier,
            "role": event.data.get("role", ""),
            "enrolled_seq": event.seq,
            "enrolled_by": event.actor,
            "revoked_seq": None,
            "revoke_reason": None,
        },
        pk="key_id",
    )


@projector("key.revoked")
def _key_revoked(db: sqlite_utils.Database, event: Event) -> None:
    db.execute(
        "UPDATE keys SET revoked_seq = ?, revoke_reason = ? WHERE key_id = ?",
        [event.seq, event.data.get("reason", ""), event.subject],
    )


_ITEM_FIELDS = (
    "source",
    "collected_by",
    "collected_at",
    "method",
    "device",
    "language",
    "description",
    "confidentiality",
    "title",
)


@projector("item.ingested", "item.derived")
def _item_ingested(db: sqlite_utils.Database, event: Event) -> None:
    data = event.data
    row: dict[str, Any] = {
        "sha256": event.subject,
        "sha512": data["sha512"],
        "size": _int(data["size"]),
        "mime": data.get("mime"),
        "kind": data.get("kind", "file"),
        "name": data.get("name"),
        "name_b64": data.get("name_b64"),
        "path": data.get("path"),
        "tags": dumps(data.get("tags", [])),
        "metadata": dumps(data.get("metadata", {})),
        "derived_from": data.get("derived_from"),
        "derivation": dumps(data["derivation"]) if data.get("derivation") else None,
        "holder": event.actor,
        "ingested_seq": event.seq,
        "ingested_by": event.actor,
        "ingested_at": event.time,
        "updated_seq": event.seq,
    }
    for field in _ITEM_FIELDS:
        row[field] = data.get(field)
    db["items"].insert(row)
    _sighting(db, event, duplicate=False)


@projector("item.sighted")
def _item_sighted(db: sqlite_utils.Database, event: Event) -> None:
    _sighting(db, event, duplicate=True)


def _sighting(db: sqlite_utils.Database, event: Event, *, duplicate: bool) -> None:
    data = event.data
    if "path_key" not in data:
        return
    db["sightings"].insert(
        {
            "seq": event.seq,
            "sha256": event.subject,
            "path_key": data["path_key"],
            "name": data.get("name"),
            "path": data.get("path"),
            "size": _int(data.get("size")),
            "mtime_ns": data.get("mtime_ns"),
            "actor": event.actor,
            "time": event.time,
            "duplicate": int(duplicate),
        }
    )


@projector("symlink.recorded")
def _symlink(db: sqlite_utils.Database, event: Event) -> None:
    db["symlinks"].insert(
        {
            "seq": event.seq,
            "path_key": event.data.get("path_key"),
            "path": event.data.get("path"),
            "target": event.data.get("target"),
            "actor": event.actor,
        }
    )


@projector("custody.transferred")
def _transferred(db: sqlite_utils.Database, event: Event) -> None:
    db.execute(
        "UPDATE items SET holder = ?, updated_seq = ? WHERE sha256 = ?",
        [event.data.get("to"), event.seq, event.subject],
    )


@projector("metadata.corrected")
def _corrected(db: sqlite_utils.Database, event: Event) -> None:
    changes = event.data.get("changes", {})
    for field, value in sorted(changes.items()):
        if field in _ITEM_FIELDS:
            db.execute(
                f'UPDATE items SET "{field}" = ?, updated_seq = ? WHERE sha256 = ?',  # noqa: S608
                [value, event.seq, event.subject],
            )
        elif field == "tags":
            db.execute(
                "UPDATE items SET tags = ?, updated_seq = ? WHERE sha256 = ?",
                [dumps(value), event.seq, event.subject],
            )


@projector("export.made")
def _export_made(db: sqlite_utils.Database, event: Event) -> None:
    data = event.data
    db["exports"].insert(
        {
            "bundle_id": event.subject,
            "profile": data.get("profile"),
            "selection": dumps(data.get("selection", {})),
            "items": dumps(data.get("items", [])),
            "checkpoint_size": _int(data.get("checkpoint_size")),
            "actor": event.actor,
            "seq": event.seq,
        }
    )


@projector("ern.assigned")
def _ern_assigned(db: sqlite_utils.Database, event: Event) -> None:
    data = event.data
    db["erns"].insert(
        {
            "subject": event.subject,
            "first": data["first"],
            "last": data["last"],
            "number_first": _int(data["number_first"]),
            "number_last": _int(data["number_last"]),
            "seq": event.seq,
        }
    )
