"""Verification of a whole case: log, catalog, case file and content store (SPEC sections 3, 4).

``verify_case`` collects every finding in a :class:`CaseReport`; it does not stop at the first.
The log is checked by ``chain_of_custody.verify_log``; the lookup columns of each log row are
compared with the signed event of its leaf, the case file with what the log records for it, and
the catalog is rebuilt from the log and compared row by row; every stored object is rehashed (in
worker processes, while the log is checked) and the store is compared with the log in both
directions.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import hashlib
import json
import operator
import os
import re
import sqlite3
import stat
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chain_of_custody import Event, Finding, LogReport, verify_log
from chain_of_custody.errors import kind_of_mode
from chain_of_custody.store import UndecodableText, catalog_problem, describe_value, fetch_all
from chain_of_custody.verify import node_leaves
from evidence import catalog
from evidence.objects import read_ahead
from evidence.progress import Progress
from evidence.workspace import CASE_FILE, Case

READ_SIZE = 1 << 20
# Objects rehashed per task: enough to read ahead, few enough to spread over the workers.
REHASH_CHUNK = 32
REHASH_NICENESS = 10
# The events between two updates of the progress of the log check.
_EVENTS_PER_TICK = 500
# The event that records the settings case.toml holds (no later event changes them), and the
# settings it records besides the case id, its subject.
_CASE_CREATED = "case.created"
_CASE_SETTINGS = ("title", "origin", "ern_prefix", "organisation", "hash_algorithms")
# The log table's columns besides the leaf, each a field of the leaf's event. The seq and the
# leaf hash are checked by the log check.
_LOG_COLUMNS = ("time", "action", "actor", "subject")
# The largest integer SQLite stores: no seq follows it.
_LARGEST_SEQ = 2**63 - 1
# Objects are named objects/sha256/<2 hex>/<62 hex>, in lowercase.
_FOLDER_NAME = re.compile(r"[0-9a-f]{2}")
_OBJECT_NAME = re.compile(r"[0-9a-f]{62}")


@dataclass
class CaseReport:
    """All findings of one ``evidence verify`` run."""

    case_id: str
    events: int
    objects: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    def as_json(self) -> dict[str, Any]:
        """A machine-readable report for ``--json``."""
        return {
            "case": self.case_id,
            "ok": self.ok,
            "events": self.events,
            "objects": self.objects,
            "findings": [finding.as_json() for finding in self.findings],
        }

    def text_lines(self) -> list[str]:
        """The findings as lines for a person, causes first.

        One changed leaf makes every Merkle node, checkpoint root and chain link computed over
        it differ too. The findings that follow from others in the report (see
        :func:`knock_on_findings`) come after the causes, grouped by code, one line a code;
        the causes come one a line, in the report's order, except that findings about the
        log's own nodes and checkpoints are grouped likewise. ``--json`` lists every finding.
        """
        knock_ons = knock_on_findings(self.findings)
        causes = [f for f in self.findings if id(f) not in knock_ons]
        following = [f for f in self.findings if id(f) in knock_ons]
        lines = _report_lines(causes, lambda code: code in _STRUCTURE)
        if following:
            lines.append(
                f"{len(following)} more finding(s) follow from those above (grouped here; "
                "--json lists each):"
            )
            lines.extend(f"  {line}" for line in _report_lines(following, lambda _: True))
        return lines


# --- findings that follow from others ------------------------------------------------------

# What makes a leaf differ from the one hashed into the tree and signed: every node, checkpoint
# root and chain link computed over it then differs too.
_LEAF_CAUSES = frozenset(
    {
        "leaf-hash-mismatch",
        "bad-signature",
        "signature-missing",
        "leaf-malformed",
        "log-value-invalid",
        "log-row-duplicated",
    }
)
# What moves the leaves after it to other places of the tree.
_SHIFT_CAUSES = frozenset({"seq-gap", "seq-duplicate", "seq-mismatch"})
# The log table cannot be read at all when it, or one of these columns, is missing.
_LOG_LOST = frozenset({"log", "log.seq", "log.leaf", "log.leaf_hash"})
# What follows when the log cannot be read, or holds fewer events than a checkpoint: what the
# missing events would have produced is not found.
_LOST_CONSEQUENCES = frozenset(
    {
        "checkpoint-rollback",
        "checkpoint-unsigned",
        "checkpoint-bad-signature",
        "checkpoint-root-mismatch",
        "checkpoint-inconsistent",
        "rollback",
        "inconsistent-history",
        "fork",
        "node-mismatch",
        "node-missing",
        "nodes-mismatch",
        "nodes-damaged",
        "catalog-row-unexplained",
        "catalog-row-missing",
        "catalog-row-changed",
        "case-file-unrecorded",
        "object-unexpected",
    }
)
# What follows when the first event (the enrolment of the first key) is changed or missing:
# no key is known, so nothing is validly signed.
_NO_KEY_CONSEQUENCES = frozenset(
    {"unknown-key", "key-not-yet-enrolled", "checkpoint-unsigned", "checkpoint-bad-signature"}
)
# Findings about the log's own structure, which name no evidence: grouped in a report for a
# person even when nothing else explains them.
_STRUCTURE = frozenset(
    {
        "node-mismatch",
        "node-missing",
        "checkpoint-root-mismatch",
        "checkpoint-rollback",
        "checkpoint-unsigned",
        "checkpoint-bad-signature",
    }
)


@dataclass(frozen=True)
class _Causes:
    """What the causes in a report change: the seqs of changed leaves, the seqs where leaves
    are moved (each moves every leaf after it), and whether stored nodes differ."""

    changed: list[int]
    shifts: list[int]
    nodes_differ: bool

    def within(self, first: int, last: int) -> bool:
        """Whether a leaf from ``first`` to ``last`` is changed or moved."""
        if self.shifts and last >= self.shifts[0]:
            return True
        at = bisect.bisect_left(self.changed, first)
        return at < len(self.changed) and self.changed[at] <= last

    def breaks_link(self, seq: int) -> bool:
        """Whether the chain link of event ``seq`` is broken by a change before it: a changed
        previous leaf, or leaves moved just there (a gap, a duplicate)."""
        return seq - 1 in self.changed or seq in self.shifts or seq - 1 in self.shifts

    @property
    def first_leaf(self) -> int | None:
        firsts = self.changed[:1] + self.shifts[:1]
        return min(firsts) if firsts else None


def knock_on_findings(findings: Sequence[Finding]) -> set[int]:
    """The ``id`` of each finding of ``findings`` that follows from another one of them.

    - a chain link (``prev-broken``) right after a changed leaf;
    - a stored Merkle node over a changed or moved leaf (a gap or a duplicate seq moves every
      leaf after it), a checkpoint root or consistency proof over one, and the root the
      stored nodes give when a leaf or node differs;
    - when the first event is changed: every event and checkpoint signed by a key the log
      then does not know;
    - when the log table cannot be read (it, or its seq, leaf or leaf_hash column, is
      missing) or holds fewer events than a checkpoint: every further checkpoint, node,
      catalog row, case file and object finding (the first rollback is the cause).

    A changed leaf is one with a finding of the leaf itself (hash, signature, parse, stored
    value). What is left are the causes, to be read first.
    """
    lost = any(
        f.code in ("log-table-missing", "log-column-missing") and f.subject in _LOG_LOST
        for f in findings
    )
    rollbacks = [f for f in findings if f.code == "checkpoint-rollback"]
    following: set[int] = set()
    if lost or rollbacks:
        cause = None if lost else rollbacks[0]
        following.update(id(f) for f in findings if f.code in _LOST_CONSEQUENCES and f is not cause)
    causes = _Causes(
        changed=_seqs_of(f for f in findings if f.code in _LEAF_CAUSES and _of_the_log(f)),
        shifts=_seqs_of(f for f in findings if f.code in _SHIFT_CAUSES),
        nodes_differ=any(f.code in ("node-mismatch", "node-missing") for f in findings),
    )
    following.update(id(f) for f in findings if _follows(f, causes))
    return following


def _seqs_of(findings: Iterable[Finding]) -> list[int]:
    return sorted({f.seq for f in findings if f.seq is not None})


def _of_the_log(finding: Finding) -> bool:
    """Whether a finding is about a leaf (not about a value of a node or checkpoint row)."""
    subject = finding.subject or ""
    return finding.code not in ("log-value-invalid", "log-row-duplicated") or (
        subject == "log" or subject.startswith("log.")
    )


def _follows(finding: Finding, causes: _Causes) -> bool:
    code, seq = finding.code, finding.seq
    if code in ("nodes-mismatch", "nodes-damaged", "checkpoint-inconsistent") and (
        causes.nodes_differ or causes.first_leaf is not None
    ):
        return True
    first = causes.first_leaf
    if first is None:
        return False
    if code in _NO_KEY_CONSEQUENCES and first <= 0:
        return True
    if code == "prev-broken":
        return seq is not None and causes.breaks_link(seq)
    if code in ("node-mismatch", "node-missing"):
        leaves = node_leaves(finding)
        if leaves is None:
            return True  # The count of further nodes, beyond those named one by one.
        return causes.within(*leaves)
    if code == "checkpoint-root-mismatch":
        return seq is not None and first <= seq
    return False


def _report_lines(findings: Sequence[Finding], grouped: Callable[[str], bool]) -> list[str]:
    """One line per finding, in order, except that findings of a code ``grouped`` accepts
    make one line, where the first of them stands."""
    groups: dict[str, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(finding.code, []).append(finding)
    lines = []
    for finding in findings:
        group = groups[finding.code]
        if len(group) > 1 and grouped(finding.code):
            if finding is group[0]:
                lines.append(_group_line(finding.code, group))
        else:
            lines.append(finding.describe())
    return lines


def _group_line(code: str, group: list[Finding]) -> str:
    """One line for several findings of one code."""
    seqs = [f.seq for f in group if f.seq is not None]
    if code == "checkpoint-root-mismatch":
        sizes = _span([seq + 1 for seq in seqs])
        return f"[{code}] {len(group)} checkpoints ({sizes}) do not produce their signed roots"
    if code in ("node-mismatch", "node-missing"):
        named = [f.subject.removeprefix("node ") for f in group if f.subject]
        more = [f.message for f in group if not f.subject]
        listed = ", ".join(named[:6]) + (" ..." if len(named) > 6 else "")
        what = (
            "are missing" if code == "node-missing" else "differ from the hash of the log's events"
        )
        line = f"[{code}] {len(named)} stored Merkle nodes (level/index {listed}) {what}"
        return line + "".join(f"; {message}" for message in more)
    if code == "prev-broken":
        return f"[{code}] seq {_span(seqs)}: prev is not the leaf hash of the previous event"
    # By seq where each names its own, else by what they name (checkpoints, catalog rows).
    if len(set(seqs)) == len(group):
        where = f"seq {_span(seqs)}"
    else:
        where = ", ".join(_first_names([f.subject or f.path or "" for f in group]))
    return f"[{code}] {len(group)} findings ({where}), the first: {group[0].message}"


def _span(numbers: Sequence[int]) -> str:
    """``3``, ``3, 7, 9`` or ``9 .. 27``."""
    ordered = sorted(set(numbers))
    if len(ordered) <= 3:
        return ", ".join(str(n) for n in ordered)
    return f"{ordered[0]} .. {ordered[-1]}"


def _first_names(names: list[str], count: int = 3) -> list[str]:
    named = [name for name in names if name]
    return named[:count] + (["..."] if len(named) > count else [])


@dataclass(frozen=True)
class StoreProblem:
    """Why an entry of the store under an object name could not be rehashed: the code and
    message of its finding."""

    code: str
    message: str


class NotARegularFile(OSError):
    """An entry of the store under an object name is not a regular file; ``kind`` says what
    it is (``a folder``, say)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def verify_case(
    case: Case,
    *,
    workers: int = 2,
    since: Sequence[bytes] = (),
    progress: Progress | None = None,
) -> CaseReport:
    """Check the case end to end and report every finding.

    The store is rehashed while the log is checked: worker processes read and hash every
    stored object as this process checks the log and rebuilds the catalog, so that reading
    the disk and checking signatures overlap. The digests are compared with the log's after.

    Values and tables of the catalog changed behind the toolkit's back are findings; a
    catalog file that SQLite cannot read at all (a damaged page, not a database) raises
    :class:`EnvironmentProblem` (:func:`~chain_of_custody.store.catalog_problem`), as no
    check can then be made.
    """
    try:
        return _verify_case(case, workers, since, progress)
    except sqlite3.DatabaseError as exc:
        raise catalog_problem(exc, case.catalog_path) from exc


def _verify_case(
    case: Case, workers: int, since: Sequence[bytes], progress: Progress | None
) -> CaseReport:
    conn = case.db.conn
    # The whole catalog file is read: ask for all of it now, in the background, rather than
    # page by page as the checks come to each (on a cold cache most of the wait otherwise).
    catalog_file = case.catalog_path
    for name in (catalog_file.name, catalog_file.name + "-wal"):
        read_ahead(str(catalog_file.with_name(name)))
    # One read transaction: the log, its checkpoints and the catalog are checked as one
    # snapshot (a WAL reader sees the database as of its first read), so that processes
    # appending meanwhile cannot make them look inconsistent with each other.
    snapshot = not conn.in_transaction
    if snapshot:
        conn.execute("BEGIN")
    pool = ProcessPoolExecutor(max_workers=max(1, workers), initializer=_yield_to_the_log_check)
    try:
        try:
            # The snapshot is taken by this first read, before the store is listed: every
            # object an event of the snapshot names was stored before that event committed,
            # so the listing holds it.
            # (The schema is read: any table may be missing or damaged.)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            stored, strays = _list_store(case)
            # Text paths built directly: a Path per object costs more than hashing a small one.
            where = os.fspath(case.objects.objects_dir) + os.sep
            paths = [f"{where}{sha[:2]}{os.sep}{sha[2:]}" for sha in stored]
            rehashing = [
                pool.submit(rehash_all, paths[start : start + REHASH_CHUNK])
                for start in range(0, len(paths), REHASH_CHUNK)
            ]
            report, named = _check_log_and_catalog(case, workers, since, progress)
        finally:
            if snapshot:
                conn.execute("ROLLBACK")
        unexpected = _compare_store(case, report, named, stored, conn if snapshot else None)
        report.findings.extend(strays)
        if progress is not None:
            # The sizes the log gives: no file is looked at twice for a progress bar.
            progress.start(
                sum(sha in named for sha in stored),
                sum(named[sha][1] for sha in stored if sha in named),
            )
        results = (result for future in rehashing for result in future.result())
        for sha, path, result in zip(stored, paths, results, strict=True):
            if sha not in named:
                # Its bytes are not the log's to judge; what stands under its name is.
                if isinstance(result, StoreProblem):
                    report.findings.append(_store_finding(result, sha, path))
                elif sha in unexpected:
                    report.findings.append(_unexpected_object(sha, path))
                continue
            if isinstance(result, StoreProblem):
                if progress is not None:
                    progress.advance(1, named[sha][1])
                report.findings.append(_store_finding(result, sha, path))
                continue
            got256, got512, size = result
            if progress is not None:
                progress.advance(1, size)
            report.objects += 1
            if got256 != sha or got512 != named[sha][0]:
                report.findings.append(
                    Finding(
                        "object-corrupt",
                        "the object's bytes do not hash to its name",
                        subject=sha,
                        path=path,
                    )
                )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return report


def _yield_to_the_log_check() -> None:
    """Rehashing waits on the disk more than on a core: the log check, which this process
    runs one event after the other, gets the cores first."""
    with contextlib.suppress(OSError):
        os.nice(REHASH_NICENESS)


def _list_store(case: Case) -> tuple[list[str], list[Finding]]:
    """Every object name the store holds, sorted, whatever stands under it; and a finding for
    each other entry of ``objects/sha256/``. No link is followed."""
    top = os.fspath(case.objects.objects_dir)
    try:
        # objects/ and objects/sha256/: originals reached through a link would not be in a
        # copy or a backup of the case.
        for folder in (os.fspath(case.objects.root), top):
            if stat.S_ISLNK(os.lstat(folder).st_mode):
                linked = Finding(
                    "store-unexpected-file",
                    "a symbolic link stands in place of a folder of the object store (it is "
                    "not followed, and a copy of the case would not hold what it leads to); "
                    "move the folder it leads to back into the case",
                    path=folder,
                )
                return [], [linked]
        with os.scandir(top) as entries:
            folders = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in entries)
    except FileNotFoundError:
        return [], []
    except NotADirectoryError:
        # objects/ (or objects/sha256/) replaced by a file: every object is then missing.
        return [], [_store_replaced(case)]
    except OSError as exc:
        unreadable = Finding(
            "store-unreadable",
            f"the object store's folder cannot be read: {_reason(exc)}",
            path=top,
        )
        return [], [unreadable]
    stored: list[str] = []
    strays: list[Finding] = []
    for prefix, is_folder in folders:
        folder = f"{top}{os.sep}{prefix}"
        if not is_folder or not _FOLDER_NAME.fullmatch(prefix):
            strays.append(_stray(folder))
            continue
        try:
            with os.scandir(folder) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError as exc:
            strays.append(
                Finding(
                    "store-unreadable",
                    f"a folder of the object store cannot be read: {_reason(exc)}",
                    path=folder,
                )
            )
            continue
        for name in names:
            if _OBJECT_NAME.fullmatch(name):
                stored.append(prefix + name)
            else:
                strays.append(_stray(f"{folder}{os.sep}{name}"))
    return stored, strays


def _store_replaced(case: Case) -> Finding:
    """The finding for a file standing where a folder of the object store should be."""
    path = os.fspath(case.objects.objects_dir)
    for folder in (case.objects.objects_dir.parent, case.objects.objects_dir):
        if not folder.is_dir():
            path = os.fspath(folder)
            break
    return Finding(
        "store-unexpected-file",
        f"{_kind(path)} stands in place of a folder of the object store; move it aside and "
        "restore the folder from a backup of the case",
        path=path,
    )


def _stray(path: str) -> Finding:
    """The finding for an entry of the store that is not named as an object or its folder."""
    return Finding(
        "store-unexpected-file",
        f"{_kind(path)} in the object store that is not an object (objects are files named "
        "<2 hex>/<62 hex>, in lowercase); find out how it came there",
        path=path,
    )


def _kind(path: str) -> str:
    """What stands at ``path``, without following a link: ``a file``, ``a folder`` ..."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "an entry"
    return _kind_of_mode(mode)


def _kind_of_mode(mode: int) -> str:
    # Nothing in the store is followed: a link is said to be left alone.
    words = kind_of_mode(mode)
    return f"{words} (not followed)" if stat.S_ISLNK(mode) else words


def _check_log_and_catalog(
    case: Case, workers: int, since: Sequence[bytes], progress: Progress | None
) -> tuple[CaseReport, dict[str, tuple[str, int]]]:
    """Check the log, its table's columns, the case file and the catalog the log produces;
    return the report and each logged object's SHA-512 and size by SHA-256. ``progress``
    counts the events (first stage of a verify)."""
    # The catalog is rebuilt and the log table's columns compared as the log check reads the
    # events: each leaf is parsed once. Unreadable leaves give no event; the log check
    # reports them by seq.
    rebuild = catalog.Rebuild()
    columns = _LogColumns(case.log.conn)
    created: list[Event] = []

    def take(event: Event) -> None:
        rebuild.add(event)
        columns.compare(event)
        if event.action == _CASE_CREATED and not created:
            created.append(event)

    on_event: Callable[[Event], None] = take
    counted = [0]
    if progress is not None:
        try:
            total = case.log.size()
        except sqlite3.OperationalError:
            total = 0  # A log table without its seq column, which the log check names.
        progress.start(total, 0)

        def on_event(event: Event) -> None:
            take(event)
            counted[0] += 1
            if counted[0] % _EVENTS_PER_TICK == 0:
                progress.advance(_EVENTS_PER_TICK, 0)

    try:
        log_report: LogReport = verify_log(
            case.log, workers=workers, extra_checkpoints=since, on_event=on_event
        )
    finally:
        columns.close()
    if progress is not None:
        progress.advance(counted[0] % _EVENTS_PER_TICK, 0)
    report = CaseReport(case.config.case_id, log_report.size, 0, list(log_report.findings))
    report.findings.extend(columns.findings)
    report.findings.extend(_check_case_file(case, created[0] if created else None))
    report.findings.extend(rebuild.findings)
    expected = rebuild.finish()
    try:
        report.findings.extend(catalog.compare(case.db, expected))
        named: dict[str, tuple[str, int]] = {
            row[0]: (row[1], row[2] or 0)
            for row in expected.execute("SELECT sha256, sha512, size FROM items").fetchall()
        }
    finally:
        expected.conn.close()
    return report, named


class _LogColumns:
    """The log table's columns besides the leaf, read in seq order beside the log check and
    compared with the event of each row's leaf, as the log check hands it over.

    The toolkit looks events up by these columns (an item's custody history, the events a
    bundle carries) and takes the time of the next event from the last one, so a row edited
    behind its back must not pass for the signed event. Rows are read in batches, each by
    :func:`fetch_all`, so that text that is not valid UTF-8 is compared (and differs) rather
    than failing the read; a column the table lacks (reported by the log check) is left out.
    """

    BATCH = 2000

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        present = {str(row[1]) for row in conn.execute('PRAGMA table_info("log")')}
        self._columns = [column for column in _LOG_COLUMNS if column in present]
        names = ", ".join(["seq", *self._columns])
        # Only integer seqs are events; the log check names any other.
        self._query = (
            f"SELECT {names} FROM log WHERE typeof(seq) = 'integer' AND seq >= ? "  # noqa: S608
            "ORDER BY seq LIMIT ?"
        )
        self._signed = operator.attrgetter(*self._columns) if self._columns else None
        self._batch: list[tuple[Any, ...]] = []
        self._index = 0
        self._start: int | None = 0 if self._columns and "seq" in present else None
        self.findings: list[Finding] = []

    def _current(self) -> tuple[Any, ...] | None:
        """The next row not yet passed, reading the next batch when needed."""
        if self._index < len(self._batch):
            return self._batch[self._index]
        if self._start is None:
            return None
        self._batch = fetch_all(self._conn, self._query, (self._start, self.BATCH))
        self._index = 0
        if len(self._batch) < self.BATCH:
            self._start = None
        else:
            last = self._batch[-1][0]
            self._start = last + 1 if last < _LARGEST_SEQ else None
        return self._batch[0] if self._batch else None

    def compare(self, event: Event) -> None:
        """Compare the row of ``event`` with it; events come in log order."""
        seq = event.seq
        row = self._current()
        # Rows whose leaf gives no event (reported by the log check) are passed over.
        while row is not None and row[0] < seq:
            self._index += 1
            row = self._current()
        if row is None or row[0] != seq or self._signed is None:
            # An event stored out of its place, which the log check reports: which row it
            # came from is unknown here, and the rows its seq names were compared already.
            return
        signed = self._signed(event)
        if len(self._columns) == 1:
            signed = (signed,)
        if row[1:] != signed:
            self._report(row, signed)
        self._index += 1

    def _report(self, row: tuple[Any, ...], signed: tuple[Any, ...]) -> None:
        for column, stored, value in zip(self._columns, row[1:], signed, strict=True):
            if stored != value:
                self.findings.append(
                    Finding(
                        "log-column-mismatch",
                        f"the log table's {column} column holds {_shown(stored)}, but the "
                        f"signed event says {_shown(value)}: what is looked up by it (custody "
                        "history, bundles) is wrong; keep a copy of the case as it is and "
                        "report it",
                        seq=row[0],
                        subject=f"log.{column}",
                    )
                )

    def close(self) -> None:
        """Nothing is held between batches; kept for the callers' ``finally``."""
        self._batch = []


def _check_case_file(case: Case, created: Event | None) -> list[Finding]:
    """Compare the settings in case.toml with those the log records (exports read the file)."""
    path = str(case.root / CASE_FILE)
    if created is None:
        return [
            Finding(
                "case-file-unrecorded",
                f"the log holds no readable {_CASE_CREATED} event, so the settings in "
                f"{CASE_FILE} cannot be checked",
                path=path,
            )
        ]
    recorded: dict[str, Any] = {"case_id": created.subject}
    recorded.update((name, created.data[name]) for name in _CASE_SETTINGS if name in created.data)
    # As the catalog projects it: a case made without an organisation records none.
    recorded.setdefault("organisation", "")
    findings = []
    for name, logged in recorded.items():
        in_file = getattr(case.config, name)
        if isinstance(in_file, tuple):
            in_file = list(in_file)
        if in_file != logged:
            findings.append(
                Finding(
                    "case-file-mismatch",
                    f"{CASE_FILE} says {name} = {_shown(in_file)}, the log records "
                    f"{_shown(logged)} ({_CASE_CREATED} event): restore {CASE_FILE} from a "
                    "backup of the case; the log is the source of truth",
                    seq=created.seq,
                    subject=name,
                    path=path,
                )
            )
    return findings


def _shown(value: Any) -> str:
    """A value as a report shows it: JSON where it can be (as in case.toml); a value of a type
    that neither the log nor case.toml gives (a blob, NULL, text that is not valid UTF-8) by
    its type, and text with characters that are not printable escaped."""
    if value is None or isinstance(value, bytes | UndecodableText):
        return describe_value(value)
    if isinstance(value, str) and not value.isprintable():
        # Escaped, so that a stored value cannot reorder or recolour the auditor's terminal.
        return describe_value(value)
    return json.dumps(value, ensure_ascii=False, default=repr)


def _compare_store(
    case: Case,
    report: CaseReport,
    named: dict[str, tuple[str, int]],
    listed: list[str],
    conn: sqlite3.Connection | None,
) -> set[str]:
    """Report objects the log names that the store lacks; return the stored objects that no
    event names (reported with what their rehash tells).

    With ``conn`` (the check ran on a snapshot), objects that another process logged after
    the snapshot was taken are not unexpected.
    """
    stored = set(listed)
    if conn is not None and stored - named.keys():
        stored_later = stored - named.keys()
        try:
            rows = fetch_all(conn, "SELECT sha256 FROM items")
        except sqlite3.OperationalError:
            rows = []  # An items table without its key column, which the catalog check names.
        logged_since = {row[0] for row in rows if row[0] in stored_later}
        stored -= logged_since
    for sha in sorted(named.keys() - stored):
        report.findings.append(
            Finding(
                "object-missing",
                "the log names an object that the store lacks",
                subject=sha,
                path=str(case.objects.path_for(sha)),
            )
        )
    return stored - named.keys()


def _unexpected_object(sha: str, path: str) -> Finding:
    return Finding(
        "object-unexpected",
        "the store holds an object that no event names: an interrupted ingest leaves such "
        "objects (stored before its events were recorded); run the same ingest command again "
        "to record them (nothing is lost), otherwise find out how it came there",
        subject=sha,
        path=path,
    )


def _store_finding(problem: StoreProblem, sha: str, path: str) -> Finding:
    return Finding(problem.code, problem.message, subject=sha, path=path)


def rehash_all(paths: list[str]) -> list[tuple[str, str, int] | StoreProblem]:
    """:func:`rehash` of each file, having asked the kernel to read them all at once (on a
    cold cache the reads then overlap instead of waiting for each other); what stops a file
    from being read is given in place of its digests."""
    for path in paths:
        read_ahead(path)
    return [_rehash_or_problem(path) for path in paths]


def _rehash_or_problem(path: str) -> tuple[str, str, int] | StoreProblem:
    try:
        return rehash(path)
    except NotARegularFile as exc:
        return StoreProblem(
            "object-not-regular",
            f"{exc.kind} stands under the object's name, not a regular file; restore the "
            "object from a backup of the case",
        )
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return StoreProblem(
                "object-symlink",
                "a symbolic link stands under the object's name (it is not followed); restore "
                "the object from a backup of the case",
            )
        return StoreProblem(
            "object-unreadable",
            f"the object cannot be read: {_reason(exc)}; check its permissions (objects are "
            "read-only, mode 0444) or restore it from a backup of the case",
        )


def rehash(path: str) -> tuple[str, str, int]:
    """SHA-256, SHA-512 and size of a regular file, read once.

    Raises :class:`OSError` when it cannot be read: ``ELOOP`` for a symbolic link (never
    followed), :class:`NotARegularFile` for a folder or a special file.
    """
    h256, h512 = hashlib.sha256(), hashlib.sha512()
    size = 0
    fd = os.open(path, _READ_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(_kind_of_mode(mode))
        while chunk := os.read(fd, READ_SIZE):
            h256.update(chunk)
            h512.update(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return h256.hexdigest(), h512.hexdigest(), size


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


# Objects are regular files: never follow a link, never block on something else put there.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
