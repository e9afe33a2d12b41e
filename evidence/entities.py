"""Incidents, facilities, alleged perpetrators and children: add, edit, list, show.

Each entity is created by an ``entity.created`` event holding the whole validated record, and
corrected by ``entity.edited`` events holding the changed fields, the reason and the whole new
record; earlier values stay in the log and are shown by :func:`entity_history`.

Ids are short and human-friendly (``INC-0001``, ``FAC-0003``, ``PER-0002``, ``CH-0015``). The
next number is chosen inside the write transaction (SQLite ``BEGIN IMMEDIATE``), so two
investigators adding incidents to one case at the same time get different ids.
"""

from __future__ import annotations

import json
import types
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from chain_of_custody import EventDraft, Signer, parse_leaf
from evidence.errors import InputError, UnknownId
from evidence.loaders import field_name, load_entity, parse_entity_options
from evidence.models import (
    ENTITY_MODELS,
    ENTITY_PREFIX,
    Child,
    Entity,
    format_entity_id,
    parse_entity_id,
)
from evidence.workspace import Case, Recorder

KINDS = tuple(ENTITY_MODELS)
"""The entity kinds, in the order commands list them."""


@dataclass(frozen=True)
class EntityRecord:
    """An entity as the catalog holds it."""

    id: str
    kind: str
    title: str
    data: dict[str, Any]
    created_seq: int
    updated_seq: int

    def as_json(self) -> dict[str, Any]:
        """A machine-readable form for ``--json``."""
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "data": self.data,
            "created_seq": self.created_seq,
            "updated_seq": self.updated_seq,
        }


@dataclass(frozen=True)
class OptionNames:
    """The command-line options of an entity's fields, for messages that name what was typed.

    ``fields`` maps each (dotted) field to the option that sets it (``place.name`` to
    ``--place``); ``additions`` and ``removals`` map each list field to the options of
    ``edit`` that add or remove single values (``crimes`` to ``--add-crime``).
    """

    fields: Mapping[str, str]
    additions: Mapping[str, str] = field(default_factory=dict)
    removals: Mapping[str, str] = field(default_factory=dict)


def _fields_of(names: OptionNames | None) -> Mapping[str, str] | None:
    return names.fields if names is not None else None


def check_kind(kind: str) -> str:
    """``kind`` if it is an entity kind; an :class:`InputError` otherwise."""
    if kind not in ENTITY_MODELS:
        raise InputError(f"unknown entity kind {kind!r}", f"use one of: {', '.join(KINDS)}")
    return kind


def placeholder_id(kind: str) -> str:
    """The id a new entity carries until the case allocates one: number 0, never allocated."""
    return f"{ENTITY_PREFIX[check_kind(kind)]}-0000"


def parse_new_entity(
    kind: str, options: Mapping[str, Any], *, option_names: OptionNames | None = None
) -> Entity:
    """Validate a new entity given as (dotted) option values; the id is allocated on add.

    With ``option_names`` a problem names the option typed rather than the field.
    """
    values = {k: v for k, v in options.items() if k != "id"}
    return parse_entity_options(
        kind,
        {"id": options.get("id") or placeholder_id(kind), **values},
        option_names=_fields_of(option_names),
    )


def read_new_entity(kind: str, path: Path) -> Entity:
    """Read a new entity from a YAML or JSON file; without an ``id`` one is allocated on add."""
    return load_entity(path, check_kind(kind), default_id=placeholder_id(kind))


def add_entity(
    case: Case, signer: Signer, entity: Entity, *, option_names: OptionNames | None = None
) -> EntityRecord:
    """Record a new entity under its own id if it has one, else under the next free number.

    ``option_names``: the entity was typed as these options, which messages name.
    """
    kind = _kind_of(entity)
    given_id = None if entity.id == placeholder_id(kind) else entity.id
    with case.transaction() as rec:
        if given_id is not None:
            entity_kind, number = _parse_id(given_id, "id")
            if entity_kind != kind:
                raise InputError(
                    f"id: {given_id} is not the id of a {kind}",
                    f"{kind} ids start with {ENTITY_PREFIX[kind]}-",
                )
            if _exists(rec, given_id):
                raise InputError(
                    f"id: {given_id} exists already in the case",
                    "leave the id out to have the next free one allocated",
                )
            entity_id = given_id
        else:
            row = rec.db.execute(
                "SELECT MAX(number) FROM entities WHERE kind = ?", [kind]
            ).fetchone()
            number = int(row[0] or 0) + 1
            entity_id = format_entity_id(kind, number)
        entity = entity.model_copy(update={"id": entity_id})
        _check_references(rec, entity, _fields_of(option_names))
        data = entity.model_dump(mode="json", exclude_none=True)
        appended = rec.append(
            EventDraft(
                action="entity.created",
                subject=entity_id,
                data={"kind": kind, "number": str(number), "entity": data},
            ),
            signer,
        )
    case.checkpoint(signer)
    return get_entity(case, appended.event.subject)


def edit_entity(
    case: Case,
    signer: Signer,
    entity_id: str,
    *,
    changes: Mapping[str, Any] | None = None,
    unset: tuple[str, ...] = (),
    additions: Mapping[str, Sequence[Any]] | None = None,
    removals: Mapping[str, Sequence[Any]] | None = None,
    replacement: Entity | None = None,
    reason: str,
    option_names: OptionNames | None = None,
) -> EntityRecord:
    """Correct an entity: a new event with the changed fields; old values stay in the log.

    ``changes`` maps (dotted) field names to new values; a list field given there (``crimes``,
    ``aliases`` ...) is replaced as a whole. ``additions`` and ``removals`` map list fields to
    values to add to or take out of the recorded list, the other values staying; a value to
    take out must be in the list. ``unset`` names fields to clear; ``replacement`` gives a whole
    new record instead (from a file). With ``option_names`` the problems of values given as
    options name the options; a date that contradicts one the record holds unchanged is the
    problem of the date just given.
    """
    if not reason.strip():
        raise InputError("--reason: is empty", "say why the entity is corrected")
    _parse_id(entity_id, "id")
    changes, additions, removals = changes or {}, additions or {}, removals or {}
    if replacement is not None and (additions or removals):
        raise InputError(
            "--from: give the fields either in the file or as options",
            "put the whole corrected record in the file",
        )
    replaced = {key for key, value in changes.items() if value not in (None, [], ())}
    unset_fields = {name.replace("-", "_") for name in unset}
    clash = sorted((set(additions) | set(removals)) & (replaced | unset_fields))
    if clash:
        raise InputError(
            f"{field_name((clash[0],), _fields_of(option_names))}: give either the whole new "
            "list or values to add and remove, not both",
            "set the list as a whole, or add and remove single values",
        )
    with case.transaction() as rec:
        current = _load(rec, entity_id)
        kind = current.kind
        if replacement is not None:
            if _kind_of(replacement) != kind:
                raise InputError(f"the file describes a {_kind_of(replacement)}, not a {kind}")
            if replacement.id not in (placeholder_id(kind), entity_id):
                raise InputError(
                    f"id: the file describes {replacement.id}, not {entity_id}",
                    "leave the id out of the file or give the id being corrected",
                )
            new_data = replacement.model_dump(mode="json", exclude_none=True)
            new_data["id"] = entity_id
            option_names = None  # the values are the file's, not options
        else:
            new_data = _merged(kind, current.data, changes, unset)
            _apply_list_edits(current, new_data, additions, removals, option_names)
        fields = _fields_of(option_names)
        entity = parse_entity_options(kind, new_data, recorded=current.data, option_names=fields)
        if entity.id != entity_id:
            raise InputError("id: an entity's id cannot be changed", "add a new entity instead")
        if "placements" in additions:
            # A placement added with --add-placement is named by that option.
            fields = _edit_names(option_names, "placements", removing=False)
        _check_references(rec, entity, fields)
        final = entity.model_dump(mode="json", exclude_none=True)
        changed = {
            key: final.get(key)
            for key in sorted(set(final) | set(current.data))
            if final.get(key) != current.data.get(key)
        }
        if not changed:
            raise InputError(
                f"{entity_id}: the correction changes nothing", "give at least one new value"
            )
        rec.append(
            EventDraft(
                action="entity.edited",
                subject=entity_id,
                data={"kind": kind, "changes": changed, "reason": reason, "entity": final},
            ),
            signer,
        )
    case.checkpoint(signer)
    return get_entity(case, entity_id)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a field holding one nested record (``place: Place | None``), if any."""
    if get_origin(annotation) in (Union, types.UnionType):
        found = [a for a in get_args(annotation) if a is not type(None)]
        annotation = found[0] if len(found) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _field_paths(kind: str) -> dict[str, bool]:
    """Each (dotted) field of a ``kind`` record, with whether it may be left out (unset)."""
    paths: dict[str, bool] = {}
    for name, info in ENTITY_MODELS[kind].model_fields.items():
        paths[name] = not info.is_required()
        nested = _nested_model(info.annotation)
        if nested is not None:
            for sub, sub_info in nested.model_fields.items():
                paths[f"{name}.{sub}"] = not sub_info.is_required()
    return paths


def _option_spelling(field: str) -> str:
    return field.replace("_", "-")


def _unset_field(kind: str, given: str) -> str:
    """The field ``--unset`` names, given as the option (``children-count``) or the field is."""
    field = given.replace("-", "_")
    paths = _field_paths(kind)
    if field == "id":
        raise InputError(f"--unset {given}: an entity's id cannot be removed")
    if field in paths and not paths[field]:
        raise InputError(
            f"--unset {given}: {field} is required and cannot be cleared",
            "give a new value instead",
        )
    if field not in paths:
        can = ", ".join(_option_spelling(path) for path, optional in paths.items() if optional)
        raise InputError(
            f"--unset {given}: {kind} records have no such field",
            f"fields that can be unset: {can}",
        )
    return field


def _merged(
    kind: str, current: dict[str, Any], changes: Mapping[str, Any], unset: tuple[str, ...]
) -> dict[str, Any]:
    merged: dict[str, Any] = json.loads(json.dumps(current))
    for given in unset:
        dotted = _unset_field(kind, given)
        *parents, leaf = dotted.split(".")
        target: Any = merged
        for parent in parents:
            target = target.get(parent) if isinstance(target, dict) else None
        if not isinstance(target, dict) or leaf not in target:
            raise InputError(f"--unset {given}: the field is not set", "name a field that is set")
        del target[leaf]
    for dotted, value in changes.items():
        if value is None or (isinstance(value, list | tuple) and not value):
            continue
        *parents, leaf = dotted.split(".")
        target = merged
        for parent in parents:
            nested = target.get(parent)
            if not isinstance(nested, dict):
                nested = {}
                target[parent] = nested
            target = nested
        target[leaf] = list(value) if isinstance(value, tuple) else value
    return merged


def _apply_list_edits(
    current: EntityRecord,
    merged: dict[str, Any],
    additions: Mapping[str, Sequence[Any]],
    removals: Mapping[str, Sequence[Any]],
    option_names: OptionNames | None = None,
) -> None:
    """Take ``removals`` out of and add ``additions`` to the list fields of ``merged``."""
    for key in sorted(set(additions) | set(removals)):
        _check_list_field(current.kind, key)
        present = list(merged.get(key) or [])
        removing = _edit_names(option_names, key, removing=True)
        # Compared in NFC: a value recorded in decomposed form before values were normalised
        # is the same word as the one typed now.
        for value in _normalised(current, key, removals.get(key, ()), removing):
            if _nfc(value) not in [_nfc(v) for v in present]:
                listed = ", ".join(_shown(v) for v in present) or "nothing"
                raise InputError(
                    f"{field_name((key,), removing)}: {_shown(value)} is not in the list of "
                    f"{current.id}, so it cannot be removed",
                    f"{current.id} lists: {listed}",
                )
            present = [v for v in present if _nfc(v) != _nfc(value)]
        adding = _edit_names(option_names, key, removing=False)
        for value in _normalised(current, key, additions.get(key, ()), adding):
            if _nfc(value) not in [_nfc(v) for v in present]:
                present.append(value)
        merged[key] = present


def _edit_names(names: OptionNames | None, key: str, *, removing: bool) -> dict[str, str] | None:
    """The options of the fields, with the list field ``key`` named by its option adding (or,
    ``removing``, taking out) single values."""
    if names is None:
        return None
    edit = names.removals if removing else names.additions
    return {**names.fields, **({key: edit[key]} if key in edit else {})}


def _nfc(value: Any) -> Any:
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


def _check_list_field(kind: str, key: str) -> None:
    info = ENTITY_MODELS[kind].model_fields.get(key)
    if info is None or get_origin(info.annotation) is not tuple:
        raise InputError(
            f"{key}: not a list field of a {kind}", "only list fields take values to add or remove"
        )


def _normalised(
    current: EntityRecord,
    key: str,
    values: Sequence[Any],
    option_names: Mapping[str, str] | None = None,
) -> list[Any]:
    """``values`` of the list field ``key`` as the record stores them ("8(2)(a)(vii)" is
    stored as "art. 8(2)(a)(vii)"), each once; a value the field refuses is an input error,
    named by ``option_names`` if they are given."""
    if not values:
        return []
    # Validated in place of the field in the current (valid) record, so that a problem found
    # is one of these values and is named as the field's.
    probe = parse_entity_options(
        current.kind,
        {**current.data, key: list(values)},
        recorded=current.data,
        option_names=option_names,
    )
    stored = [_nfc(v) for v in probe.model_dump(mode="json", exclude_none=True).get(key, [])]
    return [v for i, v in enumerate(stored) if v not in stored[:i]]


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        # A child's placement, in the FAC-0001[:START[:END]] form of --placement.
        parts = [str(value.get(k) or "") for k in ("facility", "start", "end")]
        return ":".join(parts).rstrip(":")
    return repr(value)


def list_entities(case: Case, kind: str) -> list[EntityRecord]:
    """Every entity of ``kind`` in id order."""
    check_kind(kind)
    rows = case.db.execute(
        "SELECT id, kind, title, data, created_seq, updated_seq FROM entities "
        "WHERE kind = ? ORDER BY number",
        [kind],
    ).fetchall()
    return [_record(row) for row in rows]


def get_entity(case: Case, entity_id: str, kind: str | None = None) -> EntityRecord:
    """The entity with this id (of ``kind`` if given); :class:`UnknownId` if there is none."""
    entity_kind, _ = _parse_id(entity_id, "id")
    if kind is not None and entity_kind != kind:
        raise InputError(
            f"{entity_id} is not the id of a {kind}",
            f"{kind} ids start with {ENTITY_PREFIX[kind]}-",
        )
    row = case.db.execute(
        "SELECT id, kind, title, data, created_seq, updated_seq FROM entities WHERE id = ?",
        [entity_id],
    ).fetchone()
    if row is None:
        raise UnknownId(entity_kind, entity_id, f"list them with `evidence {entity_kind} list`")
    return _record(row)


def show_entity(
    case: Case, entity_id: str, *, kind: str | None = None, history: bool = False
) -> dict[str, Any]:
    """An entity with what is linked to it and, with ``history``, every version of it."""
    record = get_entity(case, entity_id, kind)
    shown = record.as_json()
    shown["linked"] = [
        {"subject": r[0], "kind": r[1], "name": r[2], "reason": r[3], "seq": r[4]}
        for r in case.db.execute(
            "SELECT l.subject, COALESCE(i.kind, ''), COALESCE(i.name, ''), l.reason, l.seq "
            "FROM links l LEFT JOIN items i ON i.sha256 = l.subject "
            "WHERE l.target = ? ORDER BY l.seq",
            [entity_id],
        ).fetchall()
    ]
    if history:
        shown["history"] = entity_history(case, entity_id)
    return shown


def entity_history(case: Case, entity_id: str) -> list[dict[str, Any]]:
    """Every event that created or corrected the entity, oldest first, with its values."""
    history: list[dict[str, Any]] = []
    for (seq,) in case.db.execute(
        "SELECT seq FROM log WHERE subject = ? AND action IN ('entity.created', 'entity.edited') "
        "ORDER BY seq",
        [entity_id],
    ).fetchall():
        event = parse_leaf(case.log.leaf(seq)).event
        entry: dict[str, Any] = {
            "seq": event.seq,
            "time": event.time,
            "action": event.action,
            "actor": event.actor,
            "entity": event.data.get("entity", {}),
        }
        if event.action == "entity.edited":
            entry["changes"] = event.data.get("changes", {})
            entry["reason"] = event.data.get("reason", "")
        history.append(entry)
    return history


def entity_exists(case: Case, entity_id: str) -> bool:
    """Whether the case has an entity with this id."""
    row = case.db.execute("SELECT 1 FROM entities WHERE id = ?", [entity_id]).fetchone()
    return row is not None


def _exists(rec: Recorder, entity_id: str) -> bool:
    return rec.db.execute("SELECT 1 FROM entities WHERE id = ?", [entity_id]).fetchone() is not None


def _check_references(
    rec: Recorder, entity: Entity, option_names: Mapping[str, str] | None = None
) -> None:
    """Refuse a child code used by another child and a placement at a facility not recorded;
    messages name the fields, or with ``option_names`` the options."""
    if isinstance(entity, Child):
        # A pseudonym names one child: two children under one code could not be told apart.
        other = rec.db.execute(
            "SELECT id FROM entities WHERE kind = 'child' AND json_extract(data, '$.code') = ? "
            "AND id != ? ORDER BY number LIMIT 1",
            [entity.code, entity.id],
        ).fetchone()
        if other is not None:
            raise InputError(
                f"{field_name(('code',), option_names)}: {entity.code} is the code of "
                f"{other[0]} already",
                f"choose another code, or correct {other[0]} with `evidence child edit`",
            )
        for index, placement in enumerate(entity.placements):
            if not _exists(rec, placement.facility):
                # An option is named without the place of the value, which (after values
                # were added or removed) is not the place it was typed at; the id says which.
                where = ("placements",) if option_names else ("placements", index, "facility")
                raise InputError(
                    f"{field_name(where, option_names)}: unknown facility {placement.facility}",
                    "add the facility first with `evidence facility add`",
                )


def _load(rec: Recorder, entity_id: str) -> EntityRecord:
    row = rec.db.execute(
        "SELECT id, kind, title, data, created_seq, updated_seq FROM entities WHERE id = ?",
        [entity_id],
    ).fetchone()
    if row is None:
        kind, _ = _parse_id(entity_id, "id")
        raise UnknownId(kind, entity_id, f"list them with `evidence {kind} list`")
    return _record(row)


def _record(row: Any) -> EntityRecord:
    return EntityRecord(
        id=row[0],
        kind=row[1],
        title=row[2] or "",
        data=json.loads(row[3]),
        created_seq=int(row[4]),
        updated_seq=int(row[5]),
    )


def _parse_id(entity_id: str, field: str) -> tuple[str, int]:
    try:
        kind, number = parse_entity_id(entity_id)
    except ValueError:
        raise InputError(
            f"{field}: {entity_id!r} is not an entity id",
            "entity ids look like INC-0001, FAC-0001, PER-0001 or CH-0001",
        ) from None
    return str(kind), number


def _kind_of(entity: Entity) -> str:
    for kind, model in ENTITY_MODELS.items():
        if isinstance(entity, model):
            return kind
    raise InputError(f"not an entity: {type(entity).__name__}")
