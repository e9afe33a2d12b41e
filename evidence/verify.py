"""Verification of a whole case: log, catalog and content store (SPEC sections 3 and 4).

``verify_case`` collects every finding in a :class:`CaseReport`; it does not stop at the first.
The log is checked by ``chain_of_custody.verify_log``; the catalog is rebuilt from the log and
compared row by row; every stored object is rehashed (in worker processes, while the log is
checked) and the store is compared with the log in both directions.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chain_of_custody import Event, Finding, LogReport, verify_log
from evidence import catalog
from evidence.errors import CustodyError
from evidence.objects import read_ahead
from evidence.progress import Progress
from evidence.workspace import Case

READ_SIZE = 1 << 20
# Objects rehashed per task: enough to read ahead, few enough to spread over the workers.
REHASH_CHUNK = 32
REHASH_NICENESS = 10
# The events between two updates of the progress of the log check.
_EVENTS_PER_TICK = 500


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
    """
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
            conn.execute("SELECT seq FROM log ORDER BY seq DESC LIMIT 1").fetchall()
            stored = _list_store(case)
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
        _compare_store(case, report, named, stored, conn if snapshot else None)
        present = [sha in named for sha in stored]
        report.objects = sum(present)
        if progress is not None:
            # The sizes the log gives: no file is looked at twice for a progress bar.
            progress.start(report.objects, sum(named[sha][1] for sha in stored if sha in named))
        results = (result for future in rehashing for result in future.result())
        for sha, path, (got256, got512, size) in zip(stored, paths, results, strict=True):
            if sha not in named:
                continue  # reported as unexpected; its bytes are not the log's to judge
            if progress is not None:
                progress.advance(1, size)
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


def _list_store(case: Case) -> list[str]:
    try:
        return list(case.objects.iter_objects())
    except OSError as exc:
        raise CustodyError(f"cannot read the content store: {exc}") from None


def _check_log_and_catalog(
    case: Case, workers: int, since: Sequence[bytes], progress: Progress | None
) -> tuple[CaseReport, dict[str, tuple[str, int]]]:
    """Check the log and the catalog it produces; return the report and each logged object's
    SHA-512 and size by SHA-256. ``progress`` counts the events (first stage of a verify)."""
    # The catalog is rebuilt from the events as the log check reads them: each leaf is
    # parsed once. Unreadable leaves give no event; the log check reports them by seq.
    rebuild = catalog.Rebuild()
    on_event: Callable[[Event], None] = rebuild.add
    counted = [0]
    if progress is not None:
        progress.start(case.log.size(), 0)

        def on_event(event: Event) -> None:
            rebuild.add(event)
            counted[0] += 1
            if counted[0] % _EVENTS_PER_TICK == 0:
                progress.advance(_EVENTS_PER_TICK, 0)

    log_report: LogReport = verify_log(
        case.log, workers=workers, extra_checkpoints=since, on_event=on_event
    )
    if progress is not None:
        progress.advance(counted[0] % _EVENTS_PER_TICK, 0)
    report = CaseReport(case.config.case_id, log_report.size, 0, list(log_report.findings))
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


def _compare_store(
    case: Case,
    report: CaseReport,
    named: dict[str, tuple[str, int]],
    listed: list[str],
    conn: sqlite3.Connection | None,
) -> None:
    """Report objects the log names that the store lacks, and stored objects no event names.

    With ``conn`` (the check ran on a snapshot), objects that another process logged after
    the snapshot was taken are not unexpected.
    """
    stored = set(listed)
    if conn is not None and stored - named.keys():
        stored_later = stored - named.keys()
        logged_since = {
            row[0]
            for row in conn.execute("SELECT sha256 FROM items").fetchall()
            if row[0] in stored_later
        }
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
    for sha in sorted(stored - named.keys()):
        report.findings.append(
            Finding(
                "object-unexpected",
                "the store holds an object that no event names",
                subject=sha,
                path=str(case.objects.path_for(sha)),
            )
        )


def rehash_all(paths: list[str]) -> list[tuple[str, str, int]]:
    """:func:`rehash` of each file, having asked the kernel to read them all at once (on a
    cold cache the reads then overlap instead of waiting for each other)."""
    for path in paths:
        read_ahead(path)
    return [rehash(path) for path in paths]


def rehash(path: str) -> tuple[str, str, int]:
    """SHA-256 and SHA-512 of a file, read once; ``("", "", 0)`` when it cannot be read."""
    h256, h512 = hashlib.sha256(), hashlib.sha512()
    size = 0
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return "", "", 0
    try:
        while chunk := os.read(fd, READ_SIZE):
            h256.update(chunk)
            h512.update(chunk)
            size += len(chunk)
    except OSError:
        return "", "", 0
    finally:
        os.close(fd)
    return h256.hexdigest(), h512.hexdigest(), size


# Objects are regular files: never follow a link, never block on something else put there.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
