"""Verification of a whole custody log: every event, every checkpoint, and earlier checkpoints.

:func:`verify_log` streams the stored leaves once, in order. Worker processes do what each leaf
allows on its own (hash, parse, signature check) over chunks; the main process then checks each
event against the ones before it (seq, prev chain, case, time, the actor key's standing). Only a
bounded number of chunks is in flight, so memory does not grow with the log. The Merkle roots at
every checkpointed size are recomputed from the streamed leaf hashes with a right-edge frontier
(O(log n) hashes), never from the stored interior nodes, which are checked against them.
"""

from __future__ import annotations

import enum
import hmac
import re
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice, pairwise
from typing import TYPE_CHECKING

from chain_of_custody.checkpoint import Checkpoint, open_checkpoint
from chain_of_custody.errors import CustodyError, Finding, InputError, VerificationError
from chain_of_custody.events import (
    KEY_ENROLLED,
    KEY_REVOKED,
    Event,
    Leaf,
    parse_event_time,
    parse_leaf,
)
from chain_of_custody.keys import VerifierKey
from chain_of_custody.merkle import EMPTY_ROOT, leaf_hash, node_hash, verify_consistency
from chain_of_custody.note import Note, parse_note, verified_signers

if TYPE_CHECKING:
    from chain_of_custody.store import LogStore

__all__ = [
    "KeyRecord",
    "KeyStatus",
    "Keyring",
    "LogReport",
    "NamedCheckpoint",
    "node_leaves",
    "verify_consistency_with",
    "verify_log",
]

_CHUNK = 1000


class KeyStatus(enum.Enum):
    """Whether a key may sign the event at a given seq."""

    VALID = "valid"
    UNKNOWN = "unknown"
    NOT_YET_ENROLLED = "not-yet-enrolled"
    REVOKED = "revoked"


@dataclass(frozen=True)
class KeyRecord:
    """A key as the log knows it: enrolled at one seq, perhaps revoked at a later one."""

    key: VerifierKey
    enrolled_at: int
    role: str = ""
    revoked_at: int | None = None

    def status(self, seq: int) -> KeyStatus:
        """The key's standing for signing event ``seq``.

        A key enrolled at seq s signs from s + 1 on (the first key also signs its own enrolment
        at seq 0); a key revoked at seq r signs nothing after r.
        """
        valid_from = 0 if self.enrolled_at == 0 else self.enrolled_at + 1
        if seq < valid_from:
            return KeyStatus.NOT_YET_ENROLLED
        if self.revoked_at is not None and seq > self.revoked_at:
            return KeyStatus.REVOKED
        return KeyStatus.VALID


class Keyring:
    """The keys of a case, built from its ``key.enrolled`` and ``key.revoked`` events."""

    def __init__(self) -> None:
        self._records: dict[str, KeyRecord] = {}

    @classmethod
    def from_leaves(cls, leaves: Iterable[Leaf]) -> Keyring:
        """Build a keyring from parsed leaves in log order, applying only authorised key events.

        This does not check signatures or the chain; use :func:`verify_log` for that.
        """
        keyring = cls()
        for leaf in leaves:
            event = leaf.event
            if event.action not in (KEY_ENROLLED, KEY_REVOKED):
                continue
            if event.seq == 0 or keyring.status(event.actor, event.seq) is KeyStatus.VALID:
                keyring.apply(event)
        return keyring

    @classmethod
    def from_store(cls, store: LogStore) -> Keyring:
        """Build a keyring from a stored log (unverified; see :meth:`from_leaves`)."""

        def leaves() -> Iterator[Leaf]:
            for _, raw, _ in store.iter_leaves():
                try:
                    yield parse_leaf(raw)
                except InputError:
                    continue

        return cls.from_leaves(leaves())

    def apply(self, event: Event) -> list[Finding]:
        """Record a key event; return findings for a malformed or impossible one.

        The caller has checked that the actor may sign at this seq (or that this is seq 0).
        """
        if event.action == KEY_ENROLLED:
            return self._enrol(event)
        if event.action == KEY_REVOKED:
            return self._revoke(event)
        return []

    def _enrol(self, event: Event) -> list[Finding]:
        seq = event.seq
        verifier_text = event.data.get("verifier")
        if not isinstance(verifier_text, str):
            return [Finding("enrolment-invalid", "key enrolment has no verifier key", seq=seq)]
        try:
            key = VerifierKey.from_note_text(verifier_text)
        except InputError as exc:
            return [Finding("enrolment-invalid", f"enrolled key: {exc.message}", seq=seq)]
        if key.key_id != event.subject:
            return [
                Finding(
                    "enrolment-invalid",
                    f"enrolment subject {event.subject} is not the enrolled key {key.key_id}",
                    seq=seq,
                )
            ]
        if seq == 0 and event.actor != key.key_id:
            return [Finding("genesis-invalid", "the first key must enrol itself at seq 0", seq=seq)]
        if key.key_id in self._records:
            return [
                Finding(
                    "key-already-enrolled",
                    f"key {key.key_id} is enrolled again (first at seq "
                    f"{self._records[key.key_id].enrolled_at})",
                    seq=seq,
                    subject=key.key_id,
                )
            ]
        role = event.data.get("role")
        self._records[key.key_id] = KeyRecord(key, seq, role if isinstance(role, str) else "")
        return []

    def _revoke(self, event: Event) -> list[Finding]:
        record = self._records.get(event.subject)
        if record is None:
            return [
                Finding(
                    "revocation-invalid",
                    f"revocation of key {event.subject}, which was never enrolled",
                    seq=event.seq,
                )
            ]
        if record.revoked_at is not None:
            return [
                Finding(
                    "revocation-invalid",
                    f"key {event.subject} was already revoked at seq {record.revoked_at}",
                    seq=event.seq,
                )
            ]
        self._records[event.subject] = KeyRecord(
            record.key, record.enrolled_at, record.role, event.seq
        )
        return []

    def record(self, key_id: str) -> KeyRecord | None:
        """What the log says about ``key_id``, or None if it was never enrolled."""
        return self._records.get(key_id)

    def status(self, key_id: str, seq: int) -> KeyStatus:
        """Whether ``key_id`` may sign event ``seq``."""
        record = self._records.get(key_id)
        return KeyStatus.UNKNOWN if record is None else record.status(seq)

    def enrolled_keys(self) -> list[VerifierKey]:
        """Every key ever enrolled (revoked or not), in enrolment order."""
        return [record.key for record in self._records.values()]

    def keys_valid_at(self, seq: int) -> list[VerifierKey]:
        """The keys that may sign event ``seq`` (or a checkpoint ending with it)."""
        return [r.key for r in self._records.values() if r.status(seq) is KeyStatus.VALID]

    def __len__(self) -> int:
        return len(self._records)


@dataclass(frozen=True)
class LogReport:
    """What :func:`verify_log` found: the log size and every finding, each naming its seq."""

    size: int
    findings: list[Finding] = field(default_factory=list)
    checkpoints_checked: int = 0

    @property
    def ok(self) -> bool:
        """True if nothing was found."""
        return not self.findings

    def raise_for_findings(self) -> None:
        """Raise :class:`VerificationError` with all findings, if there are any."""
        if self.findings:
            raise VerificationError(
                self.findings,
                hint="the custody log does not verify; keep a copy of the case as it is and "
                "report it",
            )


class _RightEdge:
    """The roots of the complete subtrees on the right edge of a growing tree.

    Enough to give the RFC 9162 root at the current size, in O(log n) memory.
    """

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []
        # Every complete subtree closed so far and not yet compared with the stored nodes:
        # (level, index, hash), as the log store keeps them.
        self.closed: list[tuple[int, int, bytes]] = []

    def append(self, hashed: bytes) -> None:
        self._stack.append(hashed)
        self.size += 1
        self.closed.append((0, self.size - 1, hashed))
        carry = self.size
        level = 0
        # Each trailing one bit of the new size closes a complete subtree: merge its halves.
        while carry & 1 == 0:
            right = self._stack.pop()
            self._stack[-1] = node_hash(self._stack[-1], right)
            carry >>= 1
            level += 1
            self.closed.append((level, (self.size >> level) - 1, self._stack[-1]))

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        result = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            result = node_hash(left, result)
        return result


_NODE_SUBJECT = re.compile(r"node (\d+)/(\d+)")


def _node_subject(level: int, index: int) -> str:
    return f"node {level}/{index}"


def node_leaves(finding: Finding) -> tuple[int, int] | None:
    """The first and last seq under the stored node a ``node-mismatch`` or ``node-missing``
    finding names, or None for a finding that names no single node (the count of further
    ones)."""
    match = _NODE_SUBJECT.fullmatch(finding.subject or "")
    if match is None:
        return None
    level, index = int(match.group(1)), int(match.group(2))
    return index << level, ((index + 1) << level) - 1


class _NodeCheck:
    """Compares every stored interior hash with the one the log's events give.

    The store hands out proofs from these nodes; one changed behind the toolkit's back would
    make it hand out proofs that fail, so it is reported by its level, index and first seq.
    """

    LIMIT = 50

    def __init__(self, store: LogStore, *, readable: bool = True) -> None:
        self.store = store
        # A table that cannot be read (reported by the table check) is not compared.
        self.readable = readable
        self.bad: list[Finding] = []
        self.count = 0

    def compare(self, closed: Sequence[tuple[int, int, bytes]]) -> None:
        if not self.readable:
            return
        by_level: dict[int, dict[int, bytes]] = {}
        for level, index, hashed in closed:
            by_level.setdefault(level, {})[index] = hashed
        for level, expected in by_level.items():
            stored = self.store.stored_nodes(level, min(expected), max(expected))
            for index, hashed in expected.items():
                if not hmac.compare_digest(stored.get(index, b""), hashed):
                    self._report(level, index, missing=index not in stored)

    def _report(self, level: int, index: int, *, missing: bool) -> None:
        self.count += 1
        if self.count > self.LIMIT:
            return
        what = "is missing" if missing else "differs from the hash of the log's events"
        self.bad.append(
            Finding(
                "node-missing" if missing else "node-mismatch",
                f"stored Merkle node (level {level}, index {index}) {what}",
                seq=index << level,
                subject=_node_subject(level, index),
            )
        )

    def findings(self) -> list[Finding]:
        found = list(self.bad)
        if self.count > self.LIMIT:
            found.append(
                Finding(
                    "node-mismatch",
                    f"{self.count - self.LIMIT} more stored Merkle nodes differ or are missing",
                )
            )
        return found


_Row = tuple[int, bytes, bytes]
"""``(seq, leaf bytes, stored leaf hash)`` as streamed from the store."""


class _Signature(enum.Enum):
    """Outcome of checking a leaf's signature by its actor's key."""

    VALID = "valid"
    BAD = "bad"
    MISSING = "missing"
    UNCHECKED = "unchecked"  # the actor's key was not known when the chunk was sent


@dataclass(frozen=True)
class _Examined:
    """What can be learnt about one leaf on its own, without the events before it."""

    seq: int
    leaf_hash: bytes
    hash_ok: bool
    event: Event | None
    problem: str
    signature: _Signature
    checked_with: VerifierKey | None


def _examine_leaf(row: _Row, keys: dict[str, VerifierKey]) -> _Examined:
    seq, raw, stored_hash = row
    hashed = leaf_hash(raw)
    hash_ok = hmac.compare_digest(hashed, stored_hash)
    try:
        leaf = parse_leaf(raw)
    except InputError as exc:
        return _Examined(seq, hashed, hash_ok, None, exc.message, _Signature.UNCHECKED, None)
    event = leaf.event
    key = keys.get(event.actor)
    examined = _Examined(seq, hashed, hash_ok, event, "", _signature_of(leaf, key), key)
    if event.action == KEY_ENROLLED and event.subject not in keys:
        # Learn keys enrolled inside the chunk, so that their first events are checked here
        # too; whether the enrolment was authorised is for the main process to decide.
        try:
            new_key = VerifierKey.from_note_text(str(event.data.get("verifier", "")))
        except InputError:
            return examined
        if new_key.key_id == event.subject:
            keys[new_key.key_id] = new_key
    return examined


def _signature_of(leaf: Leaf, key: VerifierKey | None) -> _Signature:
    if key is None:
        return _Signature.UNCHECKED
    signatures = leaf.signatures_by(key)
    if not signatures:
        return _Signature.MISSING
    if all(key.verify(sig.signature, leaf.note.text) for sig in signatures):
        return _Signature.VALID
    return _Signature.BAD


def _examine_chunk(rows: list[_Row], keys: Mapping[str, VerifierKey]) -> list[_Examined]:
    """Worker: hash, parse and signature-check each leaf of a chunk.

    ``keys`` maps key ids to the keys enrolled when the chunk was sent. Each result names the
    key its signature was checked with; the main process, which alone knows each key's
    standing at each seq, accepts the result only if that is the actor's enrolled key.
    """
    known = dict(keys)
    return [_examine_leaf(row, known) for row in rows]


class _Walk:
    """The in-order checks of each event against those before it."""

    def __init__(self, case_id: str, tolerance: timedelta) -> None:
        self.case_id = case_id
        self.tolerance = tolerance
        self.keyring = Keyring()
        self.findings: list[Finding] = []
        self.expected_seq = 0
        self.last_hash = b""
        self.latest_time: datetime | None = None

    def add(self, code: str, message: str, seq: int, subject: str | None = None) -> None:
        self.findings.append(Finding(code, message, seq=seq, subject=subject))

    def known_keys(self) -> dict[str, VerifierKey]:
        return {key.key_id: key for key in self.keyring.enrolled_keys()}

    def step(self, examined: _Examined, raw: bytes) -> None:
        """Check one examined leaf against the events before it."""
        seq = examined.seq
        if not examined.hash_ok:
            self.add("leaf-hash-mismatch", "stored leaf hash is not the hash of the leaf", seq)
        if seq != self.expected_seq:
            if seq > self.expected_seq:
                self.add(
                    "seq-gap",
                    f"events {self.expected_seq} to {seq - 1} are missing from the log",
                    self.expected_seq,
                )
            else:
                self.add("seq-duplicate", f"seq {seq} appears again", seq)
        self.expected_seq = seq + 1
        previous_hash, self.last_hash = self.last_hash, examined.leaf_hash
        if examined.event is None:
            self.add("leaf-malformed", f"leaf cannot be read: {examined.problem}", seq)
            return
        self._check_event(seq, examined.event, previous_hash)
        self._check_actor(seq, examined, raw)

    def _check_event(self, seq: int, event: Event, previous_hash: bytes) -> None:
        if event.seq != seq:
            code = "seq-duplicate" if event.seq < seq else "seq-mismatch"
            self.add(code, f"event says seq {event.seq} but is stored at position {seq}", seq)
        if seq > 0 and event.prev != previous_hash.hex():
            self.add("prev-broken", "prev is not the leaf hash of the previous event", seq)
        if event.case != self.case_id:
            self.add("case-mismatch", f"event belongs to case {event.case!r}", seq)
        moment = parse_event_time(event.time)
        if self.latest_time is not None and moment < self.latest_time - self.tolerance:
            self.add(
                "time-backwards",
                f"time {event.time} is more than {self.tolerance.total_seconds():.0f} s before "
                "an earlier event",
                seq,
            )
        if self.latest_time is None or moment > self.latest_time:
            self.latest_time = moment

    def _check_actor(self, seq: int, examined: _Examined, raw: bytes) -> None:
        event = examined.event
        if event is None:
            return
        if seq == 0:
            if event.action != KEY_ENROLLED or event.actor != event.subject:
                self.add(
                    "genesis-invalid",
                    "the first event must be the self-signed enrolment of the first key",
                    seq,
                )
            else:
                # The first key is trusted on first use: it vouches for itself.
                self.findings.extend(self.keyring.apply(event))
        status = self.keyring.status(event.actor, seq)
        record = self.keyring.record(event.actor)
        if status is not KeyStatus.VALID or record is None:
            self._report_actor(seq, event.actor, status)
            return
        signature = examined.signature
        if signature is _Signature.UNCHECKED or examined.checked_with != record.key:
            # The key was enrolled in a chunk still in flight when this one was sent.
            signature = _signature_of(parse_leaf(raw), record.key)
        if signature is _Signature.MISSING:
            self.add(
                "signature-missing", f"event carries no signature by its actor {event.actor}", seq
            )
        elif signature is _Signature.BAD:
            self.add(
                "bad-signature",
                f"signature by {event.actor} does not verify over the stored event",
                seq,
                subject=event.actor,
            )
        elif seq > 0 and event.action in (KEY_ENROLLED, KEY_REVOKED):
            # Only a validly signed key event by a key in good standing changes the keyring.
            self.findings.extend(self.keyring.apply(event))

    def _report_actor(self, seq: int, actor: str, status: KeyStatus) -> None:
        if status is KeyStatus.REVOKED:
            record = self.keyring.record(actor)
            revoked = record.revoked_at if record else None
            self.add(
                "key-revoked", f"signed by {actor}, revoked at seq {revoked}", seq, subject=actor
            )
        elif status is KeyStatus.NOT_YET_ENROLLED:
            self.add("key-not-yet-enrolled", f"signed by {actor} before its enrolment", seq, actor)
        else:
            self.add("unknown-key", f"signed by {actor}, a key the log never enrolled", seq, actor)


class NamedCheckpoint(bytes):
    """The bytes of a signed checkpoint with the name its findings give it: the file it was
    read from, say. :func:`verify_log` calls an ``extra_checkpoint`` that is not named
    ``extra checkpoint N``."""

    name: str

    def __new__(cls, note: bytes, name: str) -> NamedCheckpoint:
        made = super().__new__(cls, note)
        made.name = name
        return made

    def __reduce__(self) -> tuple[type[NamedCheckpoint], tuple[bytes, str]]:
        return (NamedCheckpoint, (bytes(self), self.name))


@dataclass(frozen=True)
class _ParsedCheckpoint:
    label: str
    checkpoint: Checkpoint
    note: Note


def _parse_checkpoint(label: str, data: bytes) -> _ParsedCheckpoint | Finding:
    try:
        note = parse_note(data)
        checkpoint = Checkpoint.from_text(note.text)
    except InputError as exc:
        return Finding("checkpoint-malformed", f"{label}: {exc.message}", subject=label)
    return _ParsedCheckpoint(label, checkpoint, note)


def _same_root(computed: bytes | None, claimed: bytes) -> bool:
    # No computed root means rows are missing below that size (already reported as a gap):
    # the log's events cannot produce the claimed root.
    return computed is not None and hmac.compare_digest(computed, claimed)


def _last_seq(size: int) -> int | None:
    return size - 1 if size > 0 else None


def verify_log(
    store: LogStore,
    *,
    workers: int = 2,
    tolerance_seconds: float = 300,
    extra_checkpoints: Sequence[bytes] = (),
    progress: Callable[[int], None] | None = None,
    chunk_size: int = _CHUNK,
    on_event: Callable[[Event], None] | None = None,
) -> LogReport:
    """Check every event and checkpoint of ``store``; return a report of all findings.

    ``extra_checkpoints`` are signed checkpoints obtained earlier (from a bundle, a colleague,
    a witness): one of the same size with another root shows a fork, one larger than the log a
    rollback, one the log does not extend a rewritten history. Findings name each by its
    :class:`NamedCheckpoint` name, else as ``extra checkpoint N``. ``progress`` is called with the
    number of events checked so far. ``on_event`` is given every readable event, in log order,
    once it has been checked (so that a caller can build what the log implies without parsing
    the leaves again); what was found about it is in the report.
    """
    # The tables as stored first: a table that lacks a column it is read by is not read, and
    # the values of the wrong type or out of range are named by table, column and row.
    tables = store.check_tables()
    unreadable = tables.unreadable
    # Checkpoints are read before the size: appends running meanwhile can only make the log
    # larger than what the checkpoints show, never smaller.
    stored = [
        (size, root, _parse_checkpoint(f"checkpoint {size}", note))
        for size, root, note in (() if "checkpoints" in unreadable else store.iter_checkpoints())
    ]
    size = 0 if "log" in unreadable else store.size()
    extras = [
        _parse_checkpoint(
            note.name if isinstance(note, NamedCheckpoint) else f"extra checkpoint {number}", note
        )
        for number, note in enumerate(extra_checkpoints, 1)
    ]
    wanted = {size}
    wanted.update(p.checkpoint.size for _, _, p in stored if isinstance(p, _ParsedCheckpoint))
    wanted.update(p.checkpoint.size for p in extras if isinstance(p, _ParsedCheckpoint))
    roots: dict[int, bytes] = {0: EMPTY_ROOT}

    walk = _Walk(store.case_id, timedelta(seconds=tolerance_seconds))
    edge = _RightEdge()
    nodes = _NodeCheck(store, readable="log_nodes" not in unreadable)
    checked = 0
    # Every key the log's enrolments name, authorised or not, so that workers can check
    # signatures from the first chunk on. Only the walk decides which key may sign what: it
    # accepts a worker's check only if made with the key it holds for the actor.
    candidates = _enrolled_candidates(store, size)

    def keys_for_chunk() -> dict[str, VerifierKey]:
        return candidates | walk.known_keys()

    def settle(rows: list[_Row], results: list[_Examined]) -> None:
        nonlocal checked
        for (_, raw, _), examined in zip(rows, results, strict=True):
            walk.step(examined, raw)
            edge.append(examined.leaf_hash)
            if edge.size in wanted:
                roots[edge.size] = edge.root()
            if on_event is not None and examined.event is not None:
                on_event(examined.event)
        checked += len(rows)
        nodes.compare(edge.closed)
        edge.closed.clear()
        if progress is not None:
            progress(checked)

    leaves = store.iter_leaves(0, size, batch=chunk_size)
    if workers <= 1:
        while chunk := list(islice(leaves, chunk_size)):
            settle(chunk, _examine_chunk(chunk, keys_for_chunk()))
    else:
        # At most 2 * workers chunks are in flight, so memory stays bounded however long the
        # log is; results are settled strictly in log order.
        pending: deque[tuple[list[_Row], Future[list[_Examined]]]] = deque()
        with ProcessPoolExecutor(max_workers=workers) as pool:
            while chunk := list(islice(leaves, chunk_size)):
                pending.append((chunk, pool.submit(_examine_chunk, chunk, keys_for_chunk())))
                while len(pending) >= 2 * workers:
                    rows, future = pending.popleft()
                    settle(rows, future.result())
            while pending:
                rows, future = pending.popleft()
                settle(rows, future.result())

    findings = tables.findings + walk.findings
    findings.extend(nodes.findings())
    findings.extend(
        _check_stored_checkpoints(
            store, stored, size, roots, walk.keyring, nodes_readable="log_nodes" not in unreadable
        )
    )
    findings.extend(_check_extra_checkpoints(store, extras, size, roots, walk.keyring))
    return LogReport(size=size, findings=findings, checkpoints_checked=len(stored) + len(extras))


def _enrolled_candidates(store: LogStore, size: int) -> dict[str, VerifierKey]:
    """The keys named by the log's enrolment events (by the stored action column, which is
    not trusted: a wrong or missing candidate only means a check is made again in order)."""
    found: dict[str, VerifierKey] = {}
    if size == 0:
        return found
    try:
        rows = store.conn.execute(
            "SELECT leaf FROM log WHERE action = ? AND seq <= ? AND typeof(leaf) = 'blob' "
            "ORDER BY seq",
            (KEY_ENROLLED, size - 1),
        ).fetchall()
    except sqlite3.OperationalError:
        # A log table without its action column (reported by the table check): no candidate.
        return found
    for (raw,) in rows:
        try:
            event = parse_leaf(raw).event
            key = VerifierKey.from_note_text(str(event.data.get("verifier", "")))
        except InputError:
            continue
        if key.key_id == event.subject:
            # The first enrolment of an id wins, as in the walk; a later one is refused there.
            found.setdefault(key.key_id, key)
    return found


def _check_stored_checkpoints(
    store: LogStore,
    stored: list[tuple[int, bytes, _ParsedCheckpoint | Finding]],
    size: int,
    roots: dict[int, bytes],
    keyring: Keyring,
    *,
    nodes_readable: bool = True,
) -> list[Finding]:
    findings: list[Finding] = []
    good: list[Checkpoint] = []
    for row_size, row_root, parsed in stored:
        if isinstance(parsed, Finding):
            findings.append(parsed)
            continue
        label = parsed.label
        cp = parsed.checkpoint
        seq = _last_seq(cp.size)
        if cp.size != row_size or cp.root != row_root:
            findings.append(
                Finding(
                    "checkpoint-row-mismatch",
                    f"{label}: the signed note says size {cp.size}, the table row another "
                    "size or root",
                    seq=seq,
                    subject=label,
                )
            )
        if cp.origin != store.origin:
            findings.append(
                Finding(
                    "checkpoint-origin",
                    f"{label} is for log {cp.origin!r}, not {store.origin!r}",
                    seq=seq,
                    subject=label,
                )
            )
        findings.extend(_checkpoint_signature(parsed, keyring.keys_valid_at(seq or 0), seq))
        if cp.size > size:
            findings.append(
                Finding(
                    "checkpoint-rollback",
                    f"{label} covers {cp.size} events but the log holds only {size}: events "
                    "were removed",
                    seq=size,
                    subject=label,
                )
            )
            continue
        if not _same_root(roots.get(cp.size), cp.root):
            findings.append(
                Finding(
                    "checkpoint-root-mismatch",
                    f"{label}: the log's events do not produce the signed root",
                    seq=seq,
                    subject=label,
                )
            )
            continue
        good.append(cp)
    if nodes_readable:
        # In the order of the sizes they sign (a row may give another size than its note).
        good.sort(key=lambda checkpoint: checkpoint.size)
        findings.extend(_check_stored_nodes(store, good, size, roots))
    return findings


def _check_stored_nodes(
    store: LogStore, good: list[Checkpoint], size: int, roots: dict[int, bytes]
) -> list[Finding]:
    """Check the stored interior nodes: the root and the proofs the log would hand out."""
    findings: list[Finding] = []
    try:
        # From the view, at the size checked: the log may have grown since (and its size is
        # not read again from a table that may not give it).
        stored_root = store.view.root(size)
    except (LookupError, CustodyError) as exc:
        return [Finding("nodes-damaged", f"stored Merkle nodes cannot be read: {exc}")]
    if not _same_root(roots.get(size), stored_root):
        findings.append(
            Finding(
                "nodes-mismatch",
                "the stored Merkle nodes give another root than the log's events",
                seq=_last_seq(size),
            )
        )
    for older, newer in pairwise(good):
        if older.size == 0:
            continue
        label = f"checkpoints {older.size} and {newer.size}"
        try:
            proof = store.view.consistency_proof(older.size, newer.size)
            verify_consistency(older.size, newer.size, proof, older.root, newer.root)
        except VerificationError:
            findings.append(
                Finding(
                    "checkpoint-inconsistent",
                    f"{label}: the stored nodes give no valid consistency proof",
                    seq=_last_seq(newer.size),
                    subject=label,
                )
            )
        except (LookupError, CustodyError) as exc:
            findings.append(
                Finding(
                    "nodes-damaged",
                    f"{label}: stored Merkle nodes cannot be read: {exc}",
                    seq=_last_seq(newer.size),
                    subject=label,
                )
            )
    return findings


def _checkpoint_signature(
    parsed: _ParsedCheckpoint, keys: Sequence[VerifierKey], seq: int | None
) -> list[Finding]:
    try:
        signed_by = verified_signers(parsed.note, keys)
    except VerificationError:
        return [
            Finding(
                "checkpoint-bad-signature",
                f"{parsed.label}: a signature by an enrolled key does not verify",
                seq=seq,
                subject=parsed.label,
            )
        ]
    if not signed_by:
        return [
            Finding(
                "checkpoint-unsigned",
                f"{parsed.label} carries no signature by a key enrolled and not revoked at "
                "that size",
                seq=seq,
                subject=parsed.label,
            )
        ]
    return []


def _check_extra_checkpoints(
    store: LogStore,
    extras: list[_ParsedCheckpoint | Finding],
    size: int,
    roots: dict[int, bytes],
    keyring: Keyring,
) -> list[Finding]:
    findings: list[Finding] = []
    for parsed in extras:
        if isinstance(parsed, Finding):
            findings.append(parsed)
            continue
        cp = parsed.checkpoint
        label = f"{parsed.label} (size {cp.size})"
        seq = _last_seq(cp.size)
        if cp.origin != store.origin:
            findings.append(
                Finding(
                    "checkpoint-origin",
                    f"{label} is for log {cp.origin!r}, not {store.origin!r}",
                    seq=seq,
                    subject=label,
                )
            )
            continue
        # When an outside checkpoint was signed is unknown: any key the case ever enrolled
        # may have signed it.
        signature_problems = _checkpoint_signature(parsed, keyring.enrolled_keys(), seq)
        if signature_problems:
            findings.extend(signature_problems)
            continue
        if cp.size > size:
            findings.append(
                Finding(
                    "rollback",
                    f"{label} covers {cp.size} events but the log holds only {size}: the log "
                    "was rolled back",
                    seq=size,
                    subject=label,
                )
            )
        elif not _same_root(roots.get(cp.size), cp.root):
            same = cp.size == size
            findings.append(
                Finding(
                    "fork" if same else "inconsistent-history",
                    f"{label}: "
                    + (
                        "the log has another root at the same size (a fork)"
                        if same
                        else "the log does not extend it; its first events were rewritten (a fork)"
                    ),
                    seq=seq,
                    subject=label,
                )
            )
    return findings


def verify_consistency_with(
    store: LogStore, old_checkpoint_note: bytes, trusted: Sequence[VerifierKey]
) -> None:
    """Check that the log extends an earlier signed checkpoint; raise on failure.

    Verifies the old checkpoint's signature against ``trusted`` and its origin, then an RFC 9162
    consistency proof from its size to the log's current size, built from the stored nodes.
    """
    old = open_checkpoint(old_checkpoint_note, trusted, origin=store.origin)
    size = store.size()
    if old.size > size:
        raise VerificationError(
            Finding(
                "rollback",
                f"the earlier checkpoint covers {old.size} events but the log holds only {size}",
                seq=size,
                subject=f"checkpoint {old.size}",
            ),
            hint="events were removed from the log; keep the earlier checkpoint as evidence",
        )
    try:
        proof = store.consistency_proof(old.size, size)
        new_root = store.root(size)
    except LookupError as exc:
        raise VerificationError(
            Finding("nodes-damaged", f"stored Merkle nodes cannot be read: {exc}"),
            hint="run 'evidence verify' on the case",
        ) from exc
    verify_consistency(old.size, size, proof, old.root, new_root)
