"""Custody actions and read-only views of items: list, show, transfer, open, keys, proofs.

Every action that changes who holds what, or who may sign, is a signed event; reading records
nothing, except ``open_item``, which copies an original out and records the access.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import stat
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

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
from chain_of_custody.verify import NamedCheckpoint
from evidence.claims import Claim, abandoned, claim_new
from evidence.errors import CustodyError, EnvironmentProblem, InputError, UnknownId
from evidence.objects import rename_noreplace
from evidence.stops import StopDeferral
from evidence.workspace import Case, Recorder

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
        # Transfers recorded before holders were checked name only the receiving key.
        source = f"from {data['from']} " if data.get("from") else ""
        if data.get("from_revoked_seq"):
            source = (
                f"taken over from {data.get('from')}, revoked at seq {data['from_revoked_seq']}, "
            )
        return f"{source}to {data.get('to')}: {data.get('reason', '')}"
    if action == "item.accessed":
        return f"copied out: {data.get('purpose', '')}"
    if action == "export.made":
        return f"in bundle {data.get('bundle_id', '')} ({data.get('profile', '')})"
    if action in ("link.made", "link.removed"):
        return f"{data.get('target', '')}: {data.get('reason', '')}"
    return ", ".join(f"{k}={v}" for k, v in sorted(data.items()) if isinstance(v, str))[:120]


TransferStatus = Literal["transferred", "already-held", "refused"]


@dataclass(frozen=True)
class TransferOutcome:
    """What :func:`transfer` did with one item.

    ``status`` is ``transferred`` (an event was recorded, ``seq``), ``already-held`` (the item
    is held by the receiving key already; nothing recorded) or ``refused`` (the signer does not
    hold the item; nothing recorded). ``holder`` is the key that held the item before the
    command (for a refused item, the key that still holds it), ``by`` the signing key;
    ``holder_revoked_seq`` is set when the holder was revoked and custody was taken over from
    it.
    """

    sha256: str
    status: TransferStatus
    holder: str
    to: str
    by: str
    seq: int | None = None
    holder_revoked_seq: int | None = None

    def message(self) -> str:
        """One line for the user about this item."""
        short = self.sha256[:12]
        if self.status == "already-held":
            return f"{short} is already held by {self.to}; nothing recorded"
        if self.status == "refused":
            return (
                f"{short} is held by {self.holder}, not by {self.by}; only the holder can hand "
                f"it over: {self.holder} must run the transfer with its own key"
            )
        taken = (
            f", taken over from {self.holder} (revoked at seq {self.holder_revoked_seq})"
            if self.holder_revoked_seq is not None
            else ""
        )
        return f"Transferred {short} to {self.to}{taken} (seq {self.seq})"

    def as_json(self) -> dict[str, Any]:
        """A machine-readable form."""
        return {
            "sha256": self.sha256,
            "status": self.status,
            "holder": self.holder,
            "to": self.to,
            "by": self.by,
            "seq": self.seq,
            "holder_revoked_seq": self.holder_revoked_seq,
            "message": self.message(),
        }


@dataclass(frozen=True)
class TransferReport:
    """The outcome of one transfer command, one entry per item in the order given."""

    to: str
    outcomes: tuple[TransferOutcome, ...]

    def with_status(self, status: TransferStatus) -> list[TransferOutcome]:
        """The outcomes with ``status``."""
        return [o for o in self.outcomes if o.status == status]

    @property
    def seqs(self) -> list[int]:
        """The seqs of the recorded transfers."""
        return [o.seq for o in self.outcomes if o.seq is not None]

    @property
    def ok(self) -> bool:
        """True when no item was refused."""
        return not self.with_status("refused")

    def as_json(self) -> dict[str, Any]:
        """A machine-readable summary for ``--json``."""
        return {
            "to": self.to,
            "transferred": len(self.with_status("transferred")),
            "already_held": len(self.with_status("already-held")),
            "refused": len(self.with_status("refused")),
            "items": [o.as_json() for o in self.outcomes],
        }


def transfer(case: Case, signer: Signer, items: list[str], to: str, reason: str) -> TransferReport:
    """Record a hand-over of custody of ``items`` to the key ``to``.

    Custody starts with the key that ingested (or derived, or recorded) an item and moves with
    each ``custody.transferred`` event. Only the holder may hand an item over; an item held by
    another key is refused (reported, nothing recorded for it) while the other items are
    transferred. An item whose holder was revoked may be taken over by any key that is not: the
    event then names the revoked holder (``from``, ``from_revoked_seq``). An item held by ``to``
    already is left as it is, so running the same transfer again records nothing.

    Every reference is resolved before anything is recorded: an unknown or ambiguous one is an
    :class:`InputError` for the whole command, as are an empty reason and an unknown or revoked
    ``to``.
    """
    if not reason.strip():
        raise InputError("--reason is empty", "say why custody is handed over")
    row = case.db.execute("SELECT revoked_seq FROM keys WHERE key_id = ?", [to]).fetchone()
    if row is None:
        raise UnknownId("key", to, "list enrolled keys with `evidence keys list`")
    if row[0] is not None:
        raise InputError(f"the key {to} was revoked at seq {row[0]}", "transfer to a valid key")
    shas = list(dict.fromkeys(resolve_item(case, ref) for ref in items))
    with case.transaction() as rec:
        # Decided inside the write transaction: a transfer by another investigator cannot slip
        # in between the look at the holder and the event.
        outcomes = tuple(_transfer_one(rec, signer, sha, to, reason) for sha in shas)
    report = TransferReport(to, outcomes)
    if report.seqs:
        case.checkpoint(signer)
    return report


def _transfer_one(rec: Recorder, signer: Signer, sha: str, to: str, reason: str) -> TransferOutcome:
    """Hand one item over if the signer may; say what was done."""
    by = signer.verifier.key_id
    holder = str(rec.db.execute("SELECT holder FROM items WHERE sha256 = ?", [sha]).fetchone()[0])
    if holder == to:
        return TransferOutcome(sha, "already-held", holder, to, by)
    data: dict[str, Any] = {"to": to, "reason": reason, "from": holder}
    revoked = None
    if holder != by:
        revoked = _revoked_seq(rec, holder)
        if revoked is None:
            return TransferOutcome(sha, "refused", holder, to, by)
        # The holder can sign nothing any more: without a take-over the item would stay
        # with a key nobody may use.
        data["from_revoked_seq"] = str(revoked)
    appended = rec.append(EventDraft(action="custody.transferred", subject=sha, data=data), signer)
    return TransferOutcome(
        sha, "transferred", holder, to, by, seq=appended.event.seq, holder_revoked_seq=revoked
    )


def _revoked_seq(rec: Recorder, key_id: str) -> int | None:
    """The seq at which ``key_id`` was revoked; None while it is valid (or is not known)."""
    row = rec.db.execute("SELECT revoked_seq FROM keys WHERE key_id = ?", [key_id]).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def open_item(case: Case, signer: Signer, ref: str, dest: Path, purpose: str) -> Path:
    """Copy an original out to ``dest`` (a folder or a new file name) and record the access.

    The bytes are copied to a hidden temporary file beside the destination and checked against
    the item's sha256 and size on the way; the ``item.accessed`` event is committed, and only
    then does the copy take its name (never replacing a file, never through a link). No copy
    is ever visible without its event: a failure or a stop before the commit leaves neither,
    and Ctrl-C, SIGTERM or SIGHUP after it is held until the copy is named. A killed run may
    leave its hidden temporary file, which the next open to the same folder removes. Raises
    :class:`VerificationError` when the store object is missing or does not match the item.
    """
    if not purpose.strip():
        raise InputError("--purpose is empty", "say why the original is accessed")
    sha = resolve_item(case, ref)
    row = case.db.execute("SELECT name, size FROM items WHERE sha256 = ?", [sha]).fetchone()
    name, size = (row[0], row[1]) if row else (None, None)
    try:
        into_folder = dest.is_dir()
    except OSError as exc:
        raise _destination_problem(dest, exc) from exc
    target = dest / _safe_name(str(name) if name else sha) if into_folder else dest
    _check_destination(target)
    _remove_stale_parts(target.parent)
    source = case.objects.path_for(sha)
    temp, held = _copy_checked(source, sha, None if size is None else int(size), target)
    try:
        _record_and_place(case, signer, sha, purpose, temp, target)
    finally:
        # Gone already when the copy was renamed into place; an extra name when it was linked.
        temp.unlink(missing_ok=True)
        held.release()
    return target


_COPY_CHUNK = 1 << 20
_SOURCE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_PART_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_TEMP_PREFIX = ".evidence-open-"
# A working copy is the investigator's to annotate; the original stays read-only in the store.
_COPY_MODE = 0o644


def _check_destination(target: Path) -> None:
    try:
        info = target.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise _destination_problem(target, exc) from exc
    if stat.S_ISLNK(info.st_mode):
        raise InputError(
            f"{target} is a symbolic link",
            "give a new file name or a folder; a copy is never written through a link",
        )
    raise _destination_exists(target)


def _destination_exists(target: Path) -> InputError:
    return InputError(
        f"{target} exists",
        "choose another destination (a new file name or another folder); nothing is overwritten",
    )


def _destination_problem(target: Path, exc: OSError) -> CustodyError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return InputError(
            f"cannot copy to {target}: {reason}",
            "give an existing folder, or a new file name inside one",
        )
    return EnvironmentProblem(
        f"cannot copy to {target}: {reason}",
        "check the free space and permissions where --to points, then run the command again",
    )


def _store_finding(sha: str, source: Path, code: str, message: str) -> VerificationError:
    return VerificationError(
        Finding(code, message, subject=sha, path=str(source)),
        "nothing was copied or recorded; restore the object from a backup copy of the case, "
        "then run `evidence verify` to check the whole store",
    )


def _copy_checked(source: Path, sha: str, size: int | None, target: Path) -> tuple[Path, Claim]:
    """Copy the store object to a new temporary file beside ``target``, hashing it on the way.

    The temporary file is returned, with this process's claim on it (:mod:`evidence.claims`),
    only when its bytes are the item's (sha256 and size); it is fsynced, so the name it later
    takes never shows a half-written copy, even after a crash.
    """
    try:
        src = os.open(source, _SOURCE_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise _store_finding(
                sha, source, "object-missing", "the item's original is missing from the store"
            ) from exc
        if exc.errno == errno.ELOOP:
            raise _store_finding(
                sha, source, "object-corrupt", "the store object is a symbolic link"
            ) from exc
        raise EnvironmentProblem(
            f"cannot read the store object {source}: {exc.strerror}",
            "check the permissions of the case directory, then run `evidence verify`",
        ) from exc
    try:
        if not stat.S_ISREG(os.fstat(src).st_mode):
            raise _store_finding(
                sha, source, "object-corrupt", "the store object is not a regular file"
            )
        try:
            temp, held = claim_new(lambda: _new_part(target.parent))
        except OSError as exc:
            raise _destination_problem(target, exc) from exc
        try:
            dst = os.open(temp, _PART_FLAGS)
        except OSError as exc:
            _remove_part(temp, held)
            raise _destination_problem(target, exc) from exc
        try:
            digest, copied = _pump(src, dst, source)
            os.fchmod(dst, _COPY_MODE)
            os.fsync(dst)
        except OSError as exc:
            os.close(dst)
            _remove_part(temp, held)
            raise _destination_problem(target, exc) from exc
        except BaseException:
            os.close(dst)
            _remove_part(temp, held)
            raise
        os.close(dst)
    finally:
        os.close(src)
    if digest != sha or (size is not None and copied != size):
        _remove_part(temp, held)
        expected = "" if size is None else f", the item has {size}"
        raise _store_finding(
            sha,
            source,
            "object-corrupt",
            f"the store object was altered: its bytes hash to sha256 {digest[:16]}…, not to "
            f"the item's ({copied} bytes read{expected})",
        )
    return temp, held


def _new_part(folder: Path) -> Path:
    """A new empty working copy file in ``folder``, hidden, readable by its owner only."""
    temp = folder / f"{_TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}.part"
    os.close(os.open(temp, _TEMP_FLAGS, 0o600))
    return temp


def _remove_part(temp: Path, held: Claim) -> None:
    temp.unlink(missing_ok=True)
    held.release()


def _pump(src: int, dst: int, source: Path) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` to the end; return the sha256 (hex) and size of what was read."""
    hasher = hashlib.sha256()
    copied = 0
    while True:
        try:
            chunk = os.read(src, _COPY_CHUNK)
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot read the store object {source}: {exc.strerror}",
                "check the disk holding the case, then run `evidence verify`",
            ) from exc
        if not chunk:
            return hasher.hexdigest(), copied
        hasher.update(chunk)
        copied += len(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]


def _record_and_place(
    case: Case, signer: Signer, sha: str, purpose: str, temp: Path, target: Path
) -> None:
    """Commit the access, then give the checked copy its name.

    The name is taken only after the commit: a copy with its event, named a moment late, is
    the safe way round; a copy named before its event commits would stay unrecorded if the
    process were killed in between. The stop signals are held from the moment the catalog is
    locked until the copy is named and the log checkpointed, so that a stop does not come
    between the two; one held then says the work was done. A stop while waiting for the lock
    stops at once.
    """
    draft = EventDraft(
        action="item.accessed", subject=sha, data={"purpose": purpose, "copied_to": str(target)}
    )
    with StopDeferral() as stops:
        # A catalog that cannot be written (read-only, disk full) is an environment error of
        # the transaction itself.
        with case.transaction() as rec:
            stops.hold()
            rec.append(draft, signer)
        try:
            _place(temp, target)
        except CustodyError as exc:
            # Only a name taken (or a folder gone) since it was checked: the access is
            # recorded, the verified copy is not where the event says.
            problem = InputError if isinstance(exc, InputError) else EnvironmentProblem
            raise problem(
                f"{exc.message}; the access was recorded, but the copy was not placed",
                "run the command again with another destination for the copy",
            ) from exc
        case.checkpoint(signer)
        stops.completed(f"the access was recorded and the copy placed at {target}")


def _remove_stale_parts(folder: Path) -> None:
    """Remove the hidden temporary copies that killed runs of `open` left in ``folder``
    (``.evidence-open-<pid>-<random>.part`` of a run that has ended)."""
    with contextlib.suppress(OSError):
        for leftover in folder.glob(f"{_TEMP_PREFIX}*.part"):
            held = abandoned(leftover, leftover.name[len(_TEMP_PREFIX) :].split("-", 1)[0])
            if held is not None:
                with contextlib.suppress(OSError):
                    leftover.unlink()
                held.release()


def _place(temp: Path, target: Path) -> None:
    """Give the finished copy its name; an existing file or link of that name is never replaced."""
    try:
        # A hard link fails on any existing name, a dangling link included, and follows none.
        os.link(temp, target)
    except FileExistsError:
        raise _destination_exists(target) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise _destination_problem(target, exc) from exc
        # File systems without hard links (FAT and exFAT memory sticks): rename, not replacing.
        _rename_into_place(temp, target)
    with contextlib.suppress(OSError):
        # Makes the name last through a power cut; a folder that cannot be synced (some
        # network shares) still holds the complete copy.
        fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _rename_into_place(temp: Path, target: Path) -> None:
    """Rename the copy to ``target`` unless that name exists, with the object store's
    no-replace rename (Linux ``renameat2``), shared rather than written a second time."""
    try:
        moved = rename_noreplace(temp, target)
        if moved == "unsupported":
            # No atomic way is left: the name was free a moment ago and is checked again.
            if os.path.lexists(target):
                moved = False
            else:
                temp.rename(target)
                moved = True
    except OSError as exc:
        raise _destination_problem(target, exc) from exc
    if moved is None:
        raise _destination_problem(target, FileNotFoundError(errno.ENOENT, "No such folder"))
    if moved is False:
        raise _destination_exists(target)


# Characters that Windows, macOS or Linux refuse in a file name, or read as a path.
_UNSAFE_IN_NAME = frozenset('<>:"/\\|?*')
# Device names Windows reserves whatever the extension: the copy may go to a memory stick.
_RESERVED_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{n}" for n in range(1, 10)}
    | {f"LPT{n}" for n in range(1, 10)}
)
# UTF-8 bytes of a name: file systems allow 255; a Cyrillic letter takes two.
_NAME_BYTES = 200
_SUFFIX_CHARS = 16


def _safe_name(name: str) -> str:
    """A file name for a copy in a folder: the item's name with its letters and digits in any
    script, and with separators, controls, invisible formatting characters (bidirectional
    overrides that could disguise the extension, zero-width marks) and characters that some
    file system refuses replaced by ``_``. Too long a name is shortened, keeping the extension.
    """
    cleaned = "".join(
        "_" if ch in _UNSAFE_IN_NAME or not ch.isprintable() else ch for ch in name
    ).strip(" .")
    if not cleaned:
        return "item"
    stem, dot, suffix = cleaned.rpartition(".")
    if not dot or not stem or len(suffix) > _SUFFIX_CHARS:
        stem, suffix = cleaned, ""
    else:
        suffix = "." + suffix
    if stem.split(".")[0].upper().rstrip(" ") in _RESERVED_NAMES:
        stem = "_" + stem
    budget = _NAME_BYTES - len(suffix.encode())
    if len(stem.encode()) > budget:
        cut = len(stem)
        while len(stem[:cut].encode()) > budget:
            cut -= 1
        # A letter and the accents combined with it are kept or dropped together.
        while cut and unicodedata.category(stem[cut]).startswith("M"):
            cut -= 1
        stem = stem[:cut].rstrip(" .") or "item"
    return stem + suffix


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
        if known[0] is None:
            raise InputError(f"the key {verifier.key_id} is already enrolled")
        raise InputError(
            f"the key {verifier.key_id} was revoked at seq {known[0]}",
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
    others = case.db.execute(
        "SELECT COUNT(*) FROM keys WHERE revoked_seq IS NULL AND key_id != ?", [key_id]
    ).fetchone()[0]
    if not others:
        # Every later event must be signed by an enrolled key, and only an enrolled key can
        # enrol another: with none left, nothing could ever be recorded in the case again.
        raise InputError(
            f"{key_id} is the last key of the case that is not revoked",
            "enrol another key first (`evidence keys generate`, then `evidence keys enrol`), "
            "then revoke this one",
        )
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


# What to give where a checkpoint file of the case is asked for (as `audit --since` says).
CHECKPOINT_FILE_HINT = (
    "give a checkpoint printed by `evidence log checkpoint` (kept from before), or "
    "data/custody/checkpoint.txt of an earlier bundle of this case"
)


def checked_checkpoint_file(note: bytes, source: str) -> NamedCheckpoint:
    """``note``, the bytes of the file ``source``, refused with an :class:`InputError` naming
    the file unless it is a signed note at all (an empty, truncated, binary or unsigned file
    is the wrong file). Its signatures and its text as a checkpoint are checked by the
    command that uses it, which names it by ``source`` too."""
    try:
        parse_note(note)
    except InputError as exc:
        raise InputError(
            f"{source} is not a signed checkpoint: {exc.message}", CHECKPOINT_FILE_HINT
        ) from None
    return NamedCheckpoint(note, source)


def check_consistency(case: Case, old_note: bytes, source: str = "the checkpoint") -> str:
    """Prove that today's log extends the checkpoint ``old_note``; raise if it does not.

    ``source`` names the checkpoint (its file) in every message and finding.
    """
    try:
        return _check_consistency(case, old_note, source)
    except VerificationError as exc:
        located = [replace(f, path=f.path or source) for f in exc.findings]
        raise VerificationError(located, exc.hint) from None


def _check_consistency(case: Case, old_note: bytes, source: str) -> str:
    note = checked_checkpoint_file(old_note, source)
    try:
        old = open_checkpoint(note, case_verifiers(case))
    except InputError as exc:
        raise InputError(f"{source}: {exc.message}", exc.hint or CHECKPOINT_FILE_HINT) from None
    if old.origin != case.config.origin:
        raise InputError(
            f"{source} is a checkpoint of another log ({old.origin!r}, not {case.config.origin!r})",
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
        raise InputError(
            f"{source} is a checkpoint of size 0, which proves nothing", "give a later checkpoint"
        )
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


def log_range(case: Case, start: int, stop: int | None) -> range:
    """The seqs that ``evidence log show --from start --to stop`` prints: ``start`` to
    ``stop`` (inclusive; by default, and at most, the last event).

    A range that is no part of the log (a negative seq, ``--from`` after ``--to`` or beyond
    the last event) is an :class:`InputError` naming the option and the seqs the log holds,
    not an empty answer.
    """
    size = case.log.size()
    held = f"the log holds seq 0 to {size - 1}" if size else "the log holds no event"
    hint = (
        f"give --from and --to between 0 and {size - 1}, --from not after --to"
        if size
        else "record something first; the log is empty"
    )
    for option, value in (("--from", start), ("--to", stop)):
        if value is not None and value < 0:
            raise InputError(f"{option} {value} is not a seq: seqs count from 0; {held}", hint)
    if stop is not None and start > stop:
        raise InputError(f"--from {start} is after --to {stop}", hint)
    if start > 0 and start >= size:
        raise InputError(f"--from {start} is beyond the last event: {held}", hint)
    return range(start, size if stop is None else min(stop + 1, size))


def _item_row(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("tags", "metadata", "derivation"):
        if row.get(key):
            row[key] = json.loads(row[key])
    return row
