"""Verification of a whole case: log, catalog and content store (SPEC sections 3 and 4).

``verify_case`` collects every finding in a :class:`CaseReport`; it does not stop at the first.
The log is checked by ``chain_of_custody.verify_log``; the catalog is rebuilt from the log and
compared row by row; every object the log names is rehashed (over both cores) and the store is
compared with the log in both directions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain_of_custody import Finding, LogReport, verify_log
from evidence import catalog
from evidence.errors import CustodyError
from evidence.progress import Progress
from evidence.workspace import Case

READ_SIZE = 1 << 20


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
            "findings": [
                {
                    "code": f.code,
                    "message": f.message,
                    "seq": f.seq,
                    "subject": f.subject,
                    "path": f.path,
                }
                for f in self.findings
            ],
        }


def verify_case(
    case: Case,
    *,
    workers: int = 2,
    since: Sequence[bytes] = (),
    progress: Progress | None = None,
) -> CaseReport:
    """Check the case end to end and report every finding."""
    conn = case.db.conn
    # One read transaction: the log, its checkpoints and the catalog are checked as one
    # snapshot (a WAL reader sees the database as of its first read), so that processes
    # appending meanwhile cannot make them look inconsistent with each other.
    snapshot = not conn.in_transaction
    if snapshot:
        conn.execute("BEGIN")
    try:
        # The catalog is rebuilt from the events as the log check reads them: each leaf is
        # parsed once. Unreadable leaves give no event; the log check reports them by seq.
        rebuild = catalog.Rebuild()
        log_report: LogReport = verify_log(
            case.log, workers=workers, extra_checkpoints=since, on_event=rebuild.add
        )
        report = CaseReport(case.config.case_id, log_report.size, 0, list(log_report.findings))

        expected = rebuild.finish()
        report.findings.extend(catalog.compare(case.db, expected))

        named: dict[str, str] = {
            row[0]: row[1]
            for row in expected.execute("SELECT sha256, sha512 FROM items").fetchall()
        }
        expected.conn.close()
    finally:
        if snapshot:
            conn.execute("ROLLBACK")
    try:
        stored = set(case.objects.iter_objects())
    except OSError as exc:
        raise CustodyError(f"cannot read the content store: {exc}") from None
    if snapshot and stored - named.keys():
        # Objects logged by another process after the snapshot was taken are not unexpected.
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
    present = sorted(named.keys() & stored)
    report.objects = len(present)
    paths = [str(case.objects.path_for(sha)) for sha in present]
    if progress is not None:
        progress.start(len(paths), sum(_size(p) for p in paths))
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        results = pool.map(rehash, paths, chunksize=32)
        for sha, path, (got256, got512, size) in zip(present, paths, results, strict=True):
            if progress is not None:
                progress.advance(1, size)
            if got256 != sha or got512 != named[sha]:
                report.findings.append(
                    Finding(
                        "object-corrupt",
                        "the object's bytes do not hash to its name",
                        subject=sha,
                        path=path,
                    )
                )
    return report


def rehash(path: str) -> tuple[str, str, int]:
    """SHA-256 and SHA-512 of a file, read once; ``("", "", 0)`` when it cannot be read."""
    h256, h512 = hashlib.sha256(), hashlib.sha512()
    size = 0
    try:
        with Path(path).open("rb") as handle:
            while chunk := handle.read(READ_SIZE):
                h256.update(chunk)
                h512.update(chunk)
                size += len(chunk)
    except OSError:
        return "", "", 0
    return h256.hexdigest(), h512.hexdigest(), size


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0
