"""What long work (ingest, verify, audit) reports while it runs; the command line draws a bar."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Counts of files and bytes: the totals once known, then each file as it is done."""

    def start(self, files: int, total_bytes: int) -> None:
        """Called once the files to process are known; work in stages (verify: the events of
        the log, then the objects) calls it again at the start of each stage."""

    def advance(self, files: int, nbytes: int) -> None:
        """Called after each file."""
