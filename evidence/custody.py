"""Custody actions and read-only views of items: list, show, transfer, open, keys, proofs.

Every action that changes who holds what, or who may sign, is a signed event; reading records
nothing, except ``open_item``, which copies an original out and records the access.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain_of_custody import (
    Checkpoint,
    EventDraft,
    Finding,
    ProofFile,
    Signer,
    VerificationError,
    VerifierKey,
    format_proof,
    open_checkpoint,
    parse_leaf,
    parse_note,
    verify_consistency,
)
from evidence.errors import EnvironmentProblem, InputError, UnknownId
from evidence.workspace import Case

_HEX = re.compile(r"^[0-9a-f]{4,64}$")


def resolve_item(case: Case, ref: str) -> str:
    """The sha256 of the item named by ``ref``: a full or unique prefix of its sha256."""
    ref = ref.strip().lower().removeprefix("sha256:")
    if not _HEX.match(ref):
        raise InputError(
            f"{ref!r} is not an item reference",
            "give the item's sha256 or a unique prefix of at least 4 hex digits "
            "(see `evidence list`)",
        )
    rows = case.db.execute(
        "SELECT sha256 FROM items WHERE sha256 LIKE ? ORDER BY sha256 LIMIT 2", [ref + "%"]
    ).fetchall()
    if not rows:
        raise UnknownId("item", ref, "list the items with `evidence list`")
    if len(rows) > 1:
        raise InputError(
            f"the prefix {ref!r} names more than one item", "give more digits of the sha256"
        )
    return str(rows[0][0])


def list_items(case: Case, *, links: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """Items in ingest order, optionally only those linked to every id in ``links``."""
    query = "SELECT * FROM items"
    params: list[Any] = []
    targets = [t for ids in (links or {}).values() for t in ids]
    if targets:
        clauses = []
        for target in targets:
            clauses.append("sha256 IN (SELECT subject FROM links WHERE target = ?)")
            params.append(target)
        query += " WHERE " + " AND ".join(clauses)
    query += " ORDER BY ingested_seq"
    cursor = case.db.execute(query, params)
    names = [d[0] for d in cursor.description]
    return [_item_row(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]


def show_item(case: Case, sha256: str) -> dict[str, Any]:
    """Everything known of an item: metadata, derived metadata, sightings, custody, links."""
    cursor = case.db.execute("SELECT * FROM items WHERE sha256 = ?", [sha256])
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    if row is None:
        raise UnknownId("item", sha256)
    item = _item_row(dict(zip(names, row, strict=True)))
    item["sightings"] = [
        {"seq": r[0], "path": r[1], "actor": r[2], "time": r[3], "duplicate": bool(r[4])}
        for r in case.db.execute(
            "SELECT seq, path, actor, time, duplicate FROM sightings WHERE sha256 = ? ORDER BY seq",
            [sha256],
        ).fetchall()
    ]
    item["custody"] = custody_history(case, sha256)
    item["links"] = [
        {"target": r[0], "kind": r[1], "reason": r[2], "seq": r[3]}
        for r in case.db.execute(
            "SELECT target, target_kind, reason, seq FROM links WHERE subject = ? ORDER BY seq",
            [sha256],
        ).fetchall()
    ]
    item["derivatives"] = [
        r[0]
        for r in case.db.execute(
            "SELECT sha256 FROM items WHERE derived_from = ? ORDER BY ingested_seq", [sha256]
        ).fetchall()
    ]
    item["store_path"] = str(case.objects.path_for(sha256))
    return item


def custody_history(case: Case, subject: str) -> list[dict[str, Any]]:
    """The events about ``subject`` in log order, as short records."""
    history = []
    for seq in [
        r[0]
        for r in case.db.execute(
            "SELECT seq FROM log WHERE subject = ? ORDER BY seq", [subject]
        ).fetchall()
    ]:
        event = parse_leaf(case.log.leaf(seq)).event
        history.append(
            {
                "seq": event.seq,
                "time": event.time,
                "action": event.action,
                "actor": event.actor,
                "summary": summarise(event.action, event.data),
            }
        )
    return history


def summarise(action: str, data: dict[str, Any]) -> str:
    """One line about an event for custody histories (no protected data is ever in events)."""
    if action in ("item.ingested", "item.sighted"):
        # The name only: the full path (kept in the event) can show a person's folders.
        return f"as {data.get('name', '?')}"
    if action == "item.derived":
        derivation = data.get("derivation") or {}
        return f"{derivation.get('kind', 'derivative')} of {data.get('derived_from', '?')[:12]}"
    if action == "custody.transferred":
        return f"to {data.get('to')}: {data.get('reason', '')}"
    if action == "item.accessed":
        return f"copied out: {data.get('purpose', '')}"
    if action == "export.made":
        return f"in bundle {data.get('bundle_id', '')} ({data.get('profile', '')})"
    if action in ("link.made", "link.removed"):
        return f"{data.get('target', '')}: {data.get('reason', '')}"
    return ", ".join(f"{k}={v}" for k, v in sorted(data.items()) if isinstance(v, str))[:120]


def transfer(case: Case, signer: Signer, items: list[str], to: str, reason: str) -> list[int]:
    """Record a hand-over of custody of ``items`` to the key ``to``; returns the seqs."""
    if not reason.strip():
        raise InputError("--reason is empty", "say why custody is handed over")
    row = case.db.execute("SELECT revoked_seq FROM keys WHERE key_id = ?", [to]).fetchone()
    if row is None:
        raise UnknownId("key", to, "list enrolled keys with `evidence keys list`")
    if row[0] is not None:
        raise InputError(f"the key {to} was revoked at seq {row[0]}", "transfer to a valid key")
    shas = [resolve_item(case, ref) for ref in items]
    drafts = [
        EventDraft(action="custody.transferred", subject=sha, data={"to": to, "reason": reason})
        for sha in shas
    ]
    appended = case.record(drafts, signer)
    case.checkpoint(signer)
    return [a.event.seq for a in appended]


def open_item(case: Case, signer: Signer, ref: str, dest: Path, purpose: str) -> Path:
    """Copy an original out to ``dest`` (a folder or file name) and record the access."""
    sha = resolve_item(case, ref)
    row = case.db.execute("SELECT name FROM items WHERE sha256 = ?", [sha]).fetchone()
    target = dest / _safe_name(str(row[0]) if row else sha) if dest.is_dir() else dest
    if target.exists():
        raise InputError(f"{target} exists", "choose another destination; nothing is overwritten")
    try:
        shutil.copyfile(case.objects.path_for(sha), target)
        target.chmod(0o644)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot copy to {target}: {exc.strerror}") from None
    case.record(
        [
            EventDraft(
                action="item.accessed",
                subject=sha,
                data={"purpose": purpose, "copied_to": str(target)},
            )
        ],
        signer,
    )
    case.checkpoint(signer)
    return target


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._ -]", "_", name).strip(" .") or "item"
    return cleaned[:150]


@dataclass(frozen=True)
class KeyInfo:
    """An enrolled key as the catalog shows it."""

    key_id: str
    name: str
    role: str
    enrolled_seq: int
    enrolled_by: str
    revoked_seq: int | None


def list_keys(case: Case) -> list[KeyInfo]:
    """Every key ever enrolled in the case."""
    return [
        KeyInfo(*row)
        for row in case.db.execute(
            "SELECT key_id, name, role, enrolled_seq, enrolled_by, revoked_seq FROM keys "
            "ORDER BY enrolled_seq"
        ).fetchall()
    ]


def enrol_key(case: Case, signer: Signer, verifier: VerifierKey, role: str) -> int:
    """Enrol another investigator's public key, signed by an enrolled key."""
    known = case.db.execute(
        "SELECT revoked_seq FROM keys WHERE key_id = ?", [verifier.key_id]
    ).fetchone()
    if known is not None:
        raise InputError(
            f"the key {verifier.key_id} is already enrolled",
            "a revoked key cannot be enrolled again; generate a new key",
        )
    [appended] = case.record(
        [
            EventDraft(
                action="key.enrolled",
                subject=verifier.key_id,
                data={"verifier": verifier.to_note_text(), "role": role},
            )
        ],
        signer,
    )
    case.checkpoint(signer)
    return appended.event.seq


def revoke_key(case: Case, signer: Signer, key_id: str, reason: str) -> int:
    """Revoke an enrolled key from now on; its earlier signatures stay valid."""
    row = case.db.execute("SELECT revoked_seq FROM keys WHERE key_id = ?", [key_id]).fetchone()
    if row is None:
        raise UnknownId("key", key_id, "list enrolled keys with `evidence keys list`")
    if row[0] is not None:
        raise InputError(f"the key {key_id} was already revoked at seq {row[0]}")
    if not reason.strip():
        raise InputError("--reason is empty", "say why the key is revoked")
    [appended] = case.record(
        [EventDraft(action="key.revoked", subject=key_id, data={"reason": reason})], signer
    )
    # The revoked key may be the one signing: the checkpoint must be signed before it counts.
    case.checkpoint(signer)
    return appended.event.seq


def item_proof(case: Case, sha256: str) -> ProofFile:
    """The proof file of an item's ingest event against the latest checkpoint."""
    row = case.db.execute("SELECT ingested_seq FROM items WHERE sha256 = ?", [sha256]).fetchone()
    if row is None:
        raise UnknownId("item", sha256)
    note = case.log.latest_checkpoint()
    if note is None:
        raise EnvironmentProblem("the case has no checkpoint yet", "run `evidence log checkpoint`")
    size = _checkpoint_size(note)
    seq = int(row[0])
    return ProofFile(
        leaf=case.log.leaf(seq),
        index=seq,
        path=tuple(case.log.inclusion_proof(seq, size)),
        checkpoint=note,
    )


def proof_text(case: Case, sha256: str) -> bytes:
    """The proof file bytes of an item."""
    return format_proof(item_proof(case, sha256))


def _checkpoint_size(note: bytes) -> int:
    return Checkpoint.from_text(parse_note(note).text).size


def case_verifiers(case: Case) -> list[VerifierKey]:
    """Every key ever enrolled in the case, to check the case's own checkpoints."""
    return [
        VerifierKey.from_note_text(row[0])
        for row in case.db.execute("SELECT verifier FROM keys ORDER BY enrolled_seq").fetchall()
    ]


def check_consistency(case: Case, old_note: bytes) -> str:
    """Prove that today's log extends the checkpoint ``old_note``; raise if it does not."""
    old = open_checkpoint(old_note, case_verifiers(case))
    if old.origin != case.config.origin:
        raise InputError(
            f"the checkpoint is of another log ({old.origin!r}, not {case.config.origin!r})",
            "give a checkpoint of this case",
        )
    size = case.log.size()
    if old.size > size:
        raise VerificationError(
            Finding(
                "log-rollback",
                f"the log has {size} events, fewer than the {old.size} of the earlier checkpoint",
            ),
            "the case was rolled back or restored from an older copy; find the newer copy",
        )
    if old.size == 0:
        raise InputError("a checkpoint of size 0 proves nothing", "give a later checkpoint")
    new_root = case.log.root(size)
    proof = case.log.consistency_proof(old.size, size) if old.size < size else []
    if old.size == size:
        if new_root != old.root:
            raise VerificationError(
                Finding("log-fork", "the log has another root at the checkpoint's size", seq=size)
            )
    else:
        verify_consistency(old.size, size, proof, old.root, new_root)
    return (
        f"consistent: the log of {size} events extends the checkpoint of {old.size} events "
        f"({len(proof)} proof hashes)"
    )


def _item_row(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("tags", "metadata", "derivation"):
        if row.get(key):
            row[key] = json.loads(row[key])
    return row
