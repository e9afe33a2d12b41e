"""The catalog: a projection of the custody log into queryable SQLite tables.

The custody log is the source of truth. Each action has one projector here that applies an
event to the catalog tables; the same projectors run when an event is recorded and when
``evidence verify`` rebuilds the catalog from the log into a scratch database and compares the
two. A projector reads nothing but the event and the catalog built from earlier events, so the
rebuild is exact.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from chain_of_custody import Event, Finding
from chain_of_custody.store import describe_value, fetch_all

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

_INDEXES: dict[str, list[tuple[str, ...]]] = {
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


def ensure_schema(
    db: sqlite_utils.Database, *, indexes: bool = True, temporary: bool = False
) -> None:
    """Create the projection tables that are missing (idempotent); ``indexes=False`` leaves
    out the secondary indexes, which only queries by other columns than the key need.

    ``temporary`` makes them empty temporary tables, without indexes, that live only as long
    as the connection: for a catalog opened for reading only, where nothing may be written.
    """
    missing = missing_tables(db)
    if not missing:
        return
    create = "CREATE TEMP TABLE" if temporary else "CREATE TABLE"
    for name in missing:
        columns, pk = SCHEMA[name]
        cols = ", ".join(f'"{c}" {t}' for c, t in columns.items())
        keys = ", ".join(f'"{c}"' for c in pk)
        db.execute(f'{create} IF NOT EXISTS "{name}" ({cols}, PRIMARY KEY ({keys}))')
        for index in _INDEXES.get(name, []) if indexes and not temporary else []:
            idx_name = f"idx_{name}_{'_'.join(index)}"
            idx_cols = ", ".join(f'"{c}"' for c in index)
            db.execute(f'CREATE INDEX IF NOT EXISTS "{idx_name}" ON "{name}" ({idx_cols})')


def missing_tables(db: sqlite_utils.Database) -> list[str]:
    """The projection tables ``db`` lacks, in :data:`SCHEMA` order."""
    existing = set(db.table_names())
    return [name for name in SCHEMA if name not in existing]


def project(db: sqlite_utils.Database, event: Event) -> None:
    """Apply one event to the catalog. Actions without a projector change no table."""
    func = PROJECTORS.get(event.action)
    if func is not None:
        func(db, event)


class Rebuild:
    """The catalog a log produces, built in memory one event at a time, in log order."""

    def __init__(self) -> None:
        self.db = sqlite_utils.Database(memory=True)
        # Projectors look rows up by their primary key and the comparison reads whole tables:
        # the secondary indexes would only slow every insert down.
        ensure_schema(self.db, indexes=False)
        self.findings: list[Finding] = []

    def add(self, event: Event) -> None:
        """Apply the next event of the log.

        An event the catalog cannot take (a second ``item.ingested`` of the same content, say:
        signed, yet never written by the toolkit) is a finding, not a failure of the check; so
        is a hand-over of custody by a key that did not hold the item.
        """
        if event.action == "custody.transferred":
            self.findings.extend(_transfer_findings(self.db, event))
        try:
            project(self.db, event)
        except sqlite3.Error as exc:
            self.findings.append(
                Finding(
                    "catalog-event-refused",
                    f"the catalog cannot apply this {event.action} event: {exc}",
                    seq=event.seq,
                    subject=event.subject,
                )
            )

    def finish(self) -> sqlite_utils.Database:
        """The rebuilt catalog, committed."""
        self.db.conn.commit()
        return self.db


def _transfer_findings(db: sqlite_utils.Database, event: Event) -> list[Finding]:
    """What is wrong with a hand-over of custody, judged by the catalog built so far.

    Only the holder may hand an item over, or any key once the holder's key was revoked (see
    :func:`evidence.custody.transfer`). Every transfer is judged by that rule, whether or not
    it names the holder (``from``): leaving the name out must not be a way around it. A
    transfer that names one is also checked to name the holder the log gives.
    """
    row = db.execute("SELECT holder FROM items WHERE sha256 = ?", [event.subject]).fetchone()
    if row is None:
        return []  # No such item: the projection's own finding says so.
    holder, named = row[0], event.data.get("from")
    findings = []
    if named is not None and named != holder:
        findings.append(
            Finding(
                "transfer-holder-mismatch",
                f"the transfer names {named} as the holder, but the log before it gives {holder}",
                seq=event.seq,
                subject=event.subject,
            )
        )
    if event.actor != holder:
        revoked = db.execute("SELECT revoked_seq FROM keys WHERE key_id = ?", [holder]).fetchone()
        if revoked is None or revoked[0] is None or revoked[0] >= event.seq:
            findings.append(
                Finding(
                    "transfer-not-by-holder",
                    f"custody was handed over by {event.actor}, but the item was held by "
                    f"{holder}, whose key was not revoked: only the holder may hand it over",
                    seq=event.seq,
                    subject=event.subject,
                )
            )
    return findings


def rebuild(events: Iterable[Event]) -> sqlite_utils.Database:
    """Build the catalog a log produces, in memory."""
    built = Rebuild()
    for event in events:
        built.add(event)
    return built.finish()


def compare(actual: sqlite_utils.Database, expected: sqlite_utils.Database) -> list[Finding]:
    """Name every catalog row that differs from what the log produces.

    The catalog is read as it stands, whatever was done to it: a table it lacks is one finding
    (even one the log has no rows for yet), a column it lacks is one finding and the other
    columns are compared, a key stored twice is a finding, and values of another type than
    the log gives (a blob for text, text that is not valid UTF-8) differ from the log's.
    """
    findings: list[Finding] = []
    for table, (columns, pk) in SCHEMA.items():
        want_rows = _rows(expected, table, list(columns), pk)
        present = _columns_in(actual, table)
        if not present:
            # Every catalog the toolkit makes has every table, filled or not: one that is not
            # there was dropped behind it (and a writable opening refuses the case).
            produced = (
                f"the log produces {len(want_rows)} row(s) for it"
                if want_rows
                else "the log produces no rows for it yet"
            )
            findings.append(
                Finding(
                    "catalog-table-missing",
                    f"the catalog has no {table} table; {produced}: restore catalog.sqlite "
                    "from a backup of the case",
                    subject=table,
                )
            )
            continue
        lacking = [column for column in columns if column not in present]
        if lacking and want_rows:
            findings.extend(
                Finding(
                    "catalog-column-missing",
                    f"the catalog's {table} table has no {column} column, which the log fills: "
                    "restore catalog.sqlite from a backup of the case",
                    subject=f"{table}.{column}",
                )
                for column in lacking
            )
        if set(lacking) & set(pk):
            continue  # Rows cannot be matched without their key.
        kept = [column for column in columns if column in present]
        if lacking:
            want_rows = _rows(expected, table, kept, pk)
        have_rows = _rows(actual, table, kept, pk)
        # A column declared INTEGER stores 2.0 as 2; one declared otherwise may keep a real.
        loose = [c for c in kept if columns[c] == "INTEGER" and "INT" not in present[c].upper()]
        if _has_reals(actual, table, loose):
            # Python takes 2.0 for 2: a real where the log gives an integer is made to differ.
            have_rows = [(key, _reals_marked(row)) for key, row in have_rows]
        findings.extend(_compare_rows(table, kept, have_rows, want_rows))
    return findings


@dataclass(frozen=True)
class _Real:
    """A real number stored where the catalog holds integers: equal to no value the log
    gives."""

    value: float


def _has_reals(db: sqlite_utils.Database, table: str, columns: list[str]) -> bool:
    """Whether any of ``columns`` holds a real number (one scan inside SQLite)."""
    if not columns:
        return False
    tests = " OR ".join(f"typeof(\"{c}\") = 'real'" for c in columns)
    query = f'SELECT 1 FROM main."{table}" WHERE {tests} LIMIT 1'  # noqa: S608 - SCHEMA names
    return db.execute(query).fetchone() is not None


def _reals_marked(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_Real(value) if isinstance(value, float) else value for value in row)


_Row = tuple[tuple[Any, ...], tuple[Any, ...]]
"""``(primary key, row)`` of a catalog row, the row's values in SCHEMA order."""


def _compare_rows(
    table: str, columns: list[str], have_rows: list[_Row], want_rows: list[_Row]
) -> list[Finding]:
    have, want = dict(have_rows), dict(want_rows)
    findings: list[Finding] = []
    if len(have) < len(have_rows):
        counts: dict[tuple[Any, ...], int] = {}
        for key, _ in have_rows:
            counts[key] = counts.get(key, 0) + 1
        for key in sorted((k for k, n in counts.items() if n > 1), key=_sort_key):
            label = _label(table, key)
            findings.append(
                Finding(
                    "catalog-row-duplicated",
                    f"catalog row {label} is stored {counts[key]} times, where the log "
                    "produces one",
                    subject=label,
                )
            )
    if have == want:
        return findings
    for key in sorted(have.keys() | want.keys(), key=_sort_key):
        label = _label(table, key)
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
            changed = [
                _changed(column, mine, theirs)
                for column, mine, theirs in zip(columns, have[key], want[key], strict=True)
                if mine != theirs or type(mine) is not type(theirs)
            ]
            findings.append(
                Finding(
                    "catalog-row-changed",
                    f"catalog row {label} differs from the log in {', '.join(changed)}",
                    subject=label,
                )
            )
    return findings


def _changed(column: str, mine: Any, theirs: Any) -> str:
    """A changed column as a finding names it; with the types when they differ (a value of
    another type can look the same as the log's, as a blob of the same text does)."""
    if isinstance(mine, _Real):
        mine = mine.value
    if type(mine) is type(theirs):
        return column
    return f"{column} ({describe_value(mine)} where the log gives {_kind_of(theirs)})"


def _kind_of(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a real number"
    if isinstance(value, bytes):
        return "a blob"
    return "text"


def _sort_key(key: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
    """Orders keys of any stored types (text, numbers, blobs, NULL) without comparing values
    of different types, which Python refuses."""
    return tuple(_value_order(value) for value in key)


def _value_order(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, _Real):
        return (1, value.value)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, bytes):
        return (3, value)
    return (4, repr(value))


def _label(table: str, key: tuple[Any, ...]) -> str:
    """``table[key, ...]``: text keys as they are when printable, other values described."""
    return f"{table}[{', '.join(_key_text(value) for value in key)}]"


def _key_text(value: Any) -> str:
    if type(value) is int:
        return str(value)
    if isinstance(value, str) and value.isprintable() and value.strip() == value and value:
        return value
    return describe_value(value)


def _columns_in(db: sqlite_utils.Database, table: str) -> dict[str, str]:
    """The columns of ``table`` in the catalog itself, with their declared types; none when it
    is only a temporary stand-in (see :func:`ensure_schema`) or not there at all."""
    info = db.execute(f'PRAGMA main.table_info("{table}")').fetchall()
    return {str(row[1]): str(row[2]) for row in info}


def _rows(
    db: sqlite_utils.Database, table: str, columns: list[str], pk: tuple[str, ...]
) -> list[_Row]:
    """``(primary key, row)`` of every row of ``table`` in the catalog itself, the row's
    ``columns`` in order; text that is not valid UTF-8 is read as
    :class:`~chain_of_custody.store.UndecodableText`."""
    if not _columns_in(db, table):
        return []
    names = ", ".join(f'"{c}"' for c in columns)
    positions = [columns.index(c) for c in pk]
    # Table and column names come from SCHEMA above, never from input.
    query = f'SELECT {names} FROM main."{table}"'  # noqa: S608
    return [(tuple(row[i] for i in positions), tuple(row)) for row in fetch_all(db.conn, query)]


@functools.lru_cache(maxsize=256)
def _insert_sql(table: str, columns: tuple[str, ...], verb: str) -> str:
    if table not in SCHEMA or not set(columns) <= SCHEMA[table][0].keys():
        raise ValueError(f"no projection column for {table}{columns}")
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    return f'{verb} INTO "{table}" ({names}) VALUES ({marks})'


def _insert(db: sqlite_utils.Database, table: str, row: dict[str, Any], **_: Any) -> None:
    """Insert one projection row (plain SQL: this runs once per event on the ingest path)."""
    columns = tuple(row)
    db.conn.execute(_insert_sql(table, columns, "INSERT"), [row[c] for c in columns])


def _upsert(db: sqlite_utils.Database, table: str, row: dict[str, Any], **_: Any) -> None:
    """Insert or replace one projection row by its primary key."""
    columns = tuple(row)
    db.conn.execute(_insert_sql(table, columns, "INSERT OR REPLACE"), [row[c] for c in columns])


def dumps(value: Any) -> str:
    """Compact, sorted JSON for catalog columns."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


# --- projectors ---------------------------------------------------------------------------


@projector("case.created")
def _case_created(db: sqlite_utils.Database, event: Event) -> None:
    data = event.data
    _insert(
        db,
        "case_info",
        {
            "case_id": event.subject,
            "title": data.get("title"),
            "origin": data.get("origin"),
            "ern_prefix": data.get("ern_prefix"),
            "organisation": data.get("organisation", ""),
            "created_seq": event.seq,
        },
    )


@projector("key.enrolled")
def _key_enrolled(db: sqlite_utils.Database, event: Event) -> None:
    verifier = str(event.data.get("verifier", ""))
    _upsert(
        db,
        "keys",
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
    _insert(db, "items", row)
    _sighting(db, event, duplicate=False)


@projector("item.sighted")
def _item_sighted(db: sqlite_utils.Database, event: Event) -> None:
    _sighting(db, event, duplicate=True)


def _sighting(db: sqlite_utils.Database, event: Event, *, duplicate: bool) -> None:
    data = event.data
    if "path_key" not in data:
        return
    _insert(
        db,
        "sightings",
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
        },
    )


@projector("symlink.recorded")
def _symlink(db: sqlite_utils.Database, event: Event) -> None:
    _insert(
        db,
        "symlinks",
        {
            "seq": event.seq,
            "path_key": event.data.get("path_key"),
            "path": event.data.get("path"),
            "target": event.data.get("target"),
            "actor": event.actor,
        },
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
    _insert(
        db,
        "exports",
        {
            "bundle_id": event.subject,
            "profile": data.get("profile"),
            "selection": dumps(data.get("selection", {})),
            "items": dumps(data.get("items", [])),
            "checkpoint_size": _int(data.get("checkpoint_size")),
            "actor": event.actor,
            "seq": event.seq,
        },
    )


@projector("ern.assigned")
def _ern_assigned(db: sqlite_utils.Database, event: Event) -> None:
    data = event.data
    _insert(
        db,
        "erns",
        {
            "subject": event.subject,
            "first": data["first"],
            "last": data["last"],
            "number_first": _int(data["number_first"]),
            "number_last": _int(data["number_last"]),
            "seq": event.seq,
        },
    )


# --- records: entities, testimonies, links, recipients -----------------------------------


@projector("entity.created")
def _entity_created(db: sqlite_utils.Database, event: Event) -> None:
    data = event.data
    entity = data["entity"]
    _insert(
        db,
        "entities",
        {
            "id": event.subject,
            "kind": data["kind"],
            "number": _int(data["number"]),
            "title": _entity_title(entity),
            "data": dumps(entity),
            "created_seq": event.seq,
            "updated_seq": event.seq,
        },
    )


@projector("entity.edited")
def _entity_edited(db: sqlite_utils.Database, event: Event) -> None:
    entity = event.data["entity"]
    db.execute(
        "UPDATE entities SET title = ?, data = ?, updated_seq = ? WHERE id = ?",
        [_entity_title(entity), dumps(entity), event.seq, event.subject],
    )


def _entity_title(entity: dict[str, Any]) -> str:
    # Incidents have a title, facilities and perpetrators a name, children only a pseudonym.
    for key in ("title", "name", "code"):
        if entity.get(key):
            return str(entity[key])
    return ""


@projector("testimony.recorded")
def _testimony_recorded(db: sqlite_utils.Database, event: Event) -> None:
    data = event.data
    code = data["witness_code"]
    testimony = data["testimony"]
    _insert(db, "items", _record_item_row(event, data["document"], code))
    annex = data.get("annex")
    if annex:
        _insert(db, "items", _record_item_row(event, annex, code))
    consent = testimony.get("consent", {})
    _insert(
        db,
        "testimonies",
        {
            "witness_code": code,
            "document": event.subject,
            "data": dumps(testimony),
            "annex": dumps(annex) if annex else None,
            "annex_sha256": annex["sha256"] if annex else None,
            "commitment": annex["commitment"] if annex else None,
            "recipients": dumps(annex["recipients"]) if annex else dumps([]),
            "consent": dumps(consent),
            "consent_withdrawn": int(consent.get("withdrawn_on") is not None),
            "created_seq": event.seq,
            "updated_seq": event.seq,
        },
    )


def _record_item_row(event: Event, obj: dict[str, Any], code: str) -> dict[str, Any]:
    """The items row of an object a testimony stores (its document or its sealed annex)."""
    row: dict[str, Any] = dict.fromkeys(SCHEMA["items"][0])
    row.update(
        {
            "sha256": obj["sha256"],
            "sha512": obj["sha512"],
            "size": _int(obj["size"]),
            "mime": obj["mime"],
            "kind": obj["kind"],
            "name": obj["name"],
            "title": obj.get("title"),
            "description": obj.get("description"),
            "language": obj.get("language"),
            "confidentiality": obj.get("confidentiality"),
            "tags": dumps([f"testimony:{code}"]),
            "metadata": dumps({"witness_code": code}),
            "holder": event.actor,
            "ingested_seq": event.seq,
            "ingested_by": event.actor,
            "ingested_at": event.time,
            "updated_seq": event.seq,
        }
    )
    return row


@projector("consent.withdrawn")
def _consent_withdrawn(db: sqlite_utils.Database, event: Event) -> None:
    code = event.data["witness_code"]
    row = db.execute("SELECT consent FROM testimonies WHERE witness_code = ?", [code]).fetchone()
    consent = json.loads(row[0]) if row and row[0] else {}
    consent["withdrawn_on"] = event.data["withdrawn_on"]
    consent["withdrawal_reason"] = event.data["reason"]
    db.execute(
        "UPDATE testimonies SET consent = ?, consent_withdrawn = 1, updated_seq = ? "
        "WHERE witness_code = ?",
        [dumps(consent), event.seq, code],
    )


@projector("link.made")
def _link_made(db: sqlite_utils.Database, event: Event) -> None:
    _upsert(
        db,
        "links",
        {
            "subject": event.subject,
            "target": event.data["target"],
            "target_kind": event.data["target_kind"],
            "reason": event.data.get("reason", ""),
            "actor": event.actor,
            "seq": event.seq,
        },
        pk=("subject", "target"),
    )


@projector("link.removed")
def _link_removed(db: sqlite_utils.Database, event: Event) -> None:
    db.execute(
        "DELETE FROM links WHERE subject = ? AND target = ?",
        [event.subject, event.data["target"]],
    )


@projector("recipient.added")
def _recipient_added(db: sqlite_utils.Database, event: Event) -> None:
    _insert(
        db,
        "recipients",
        {
            "recipient_id": event.subject,
            "name": event.data["name"],
            "public_key": event.data["public_key"],
            "added_seq": event.seq,
        },
    )
