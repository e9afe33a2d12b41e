"""Evidence Registration Numbers: stable numbers for everything a case ever exports.

An ERN is ``<ern prefix of the case>-<number of at least six digits>``. A paged document (a
PDF with a known page count) gets one number per page, so that the stamped copy can carry one
on every page; everything else gets one number. The first export that includes an item
records an ``ern.assigned`` event for it (data ``first``, ``last``, ``number_first``,
``number_last``); every later export reads the ``erns`` table and reuses the same numbers, so
an item keeps its ERN across bundles and a court can cite it.

Numbers are allocated inside the write transaction that records them: the highest number used
is read on the same connection under ``BEGIN IMMEDIATE``, so two exports running at once never
hand out the same number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlite_utils

from chain_of_custody import EventDraft, Signer
from evidence.errors import InputError
from evidence.workspace import Case

ERN_ASSIGNED = "ern.assigned"
ERN_DIGITS = 6


@dataclass(frozen=True)
class ErnRequest:
    """A subject (item sha256 or testimony document sha256) and how many numbers it needs."""

    subject: str
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise InputError(f"{self.subject}: an ERN range needs at least one number")


@dataclass(frozen=True)
class ErnRange:
    """The numbers of one subject: ``first`` to ``last`` inclusive."""

    prefix: str
    number_first: int
    number_last: int

    @property
    def erns(self) -> tuple[str, ...]:
        """Every ERN of the range, in order."""
        return tuple(
            format_ern(self.prefix, n) for n in range(self.number_first, self.number_last + 1)
        )

    @property
    def first(self) -> str:
        """The first ERN."""
        return format_ern(self.prefix, self.number_first)

    @property
    def last(self) -> str:
        """The last ERN."""
        return format_ern(self.prefix, self.number_last)


def format_ern(prefix: str, number: int) -> str:
    """``<prefix>-<number>`` with at least six digits, e.g. ``UADEMO-000012``."""
    if number < 1:
        raise ValueError("ERN numbers start at 1")
    return f"{prefix}-{number:0{ERN_DIGITS}d}"


def assigned_erns(case: Case) -> dict[str, ErnRange]:
    """Every ERN range recorded in the case, by subject."""
    return _read(case.db, case.config.ern_prefix)


def _read(db: sqlite_utils.Database, prefix: str) -> dict[str, ErnRange]:
    rows = db.execute("SELECT subject, number_first, number_last FROM erns").fetchall()
    return {str(s): ErnRange(prefix, int(first), int(last)) for s, first, last in rows}


def assign_erns(case: Case, signer: Signer, requests: Sequence[ErnRequest]) -> dict[str, ErnRange]:
    """The ERN range of each requested subject, recording ``ern.assigned`` for new ones.

    Subjects that already have a range keep it (even if the count asked for now differs: an ERN
    once given out is never changed). New subjects are numbered in the order given, after the
    highest number the case has used. Nothing is appended when every subject is known.
    """
    prefix = case.config.ern_prefix
    known = assigned_erns(case)
    wanted = _unique(requests)
    if all(r.subject in known for r in wanted):
        return {r.subject: known[r.subject] for r in wanted}
    with case.transaction() as rec:
        # Read again under the write lock: another process may have assigned some meanwhile.
        known = _read(rec.db, prefix)
        row = rec.db.execute("SELECT MAX(number_last) FROM erns").fetchone()
        next_number = (int(row[0]) if row and row[0] is not None else 0) + 1
        for request in wanted:
            if request.subject in known:
                continue
            span = ErnRange(prefix, next_number, next_number + request.count - 1)
            rec.append(
                EventDraft(
                    action=ERN_ASSIGNED,
                    subject=request.subject,
                    data={
                        "first": span.first,
                        "last": span.last,
                        "number_first": str(span.number_first),
                        "number_last": str(span.number_last),
                    },
                ),
                signer,
            )
            known[request.subject] = span
            next_number = span.number_last + 1
    return {r.subject: known[r.subject] for r in wanted}


def _unique(requests: Sequence[ErnRequest]) -> list[ErnRequest]:
    seen: dict[str, ErnRequest] = {}
    for request in requests:
        seen.setdefault(request.subject, request)
    return list(seen.values())


def erns_by_subject(ranges: Mapping[str, ErnRange]) -> dict[str, tuple[str, ...]]:
    """The ERN tuples of each subject."""
    return {subject: span.erns for subject, span in ranges.items()}
