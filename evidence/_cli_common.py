"""What every command module of the ``evidence`` command line shares: consoles, options, helpers.

Results go to ``out`` (stdout), progress and diagnostics to ``err`` (stderr).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from evidence.errors import InputError
from evidence.workspace import Case, open_case

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)

CaseOpt = Annotated[
    Path,
    typer.Option(
        "--case",
        envvar="EVIDENCE_CASE",
        help="The case directory (default: the current directory).",
        show_default=False,
    ),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--key", envvar="EVIDENCE_KEY", help="Private key file to sign with.", show_default=False
    ),
]
PassOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="Read the key passphrase from this file (or set EVIDENCE_PASSPHRASE).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@contextmanager
def open_case_dir(directory: Path) -> Iterator[Case]:
    case = open_case(directory)
    try:
        yield case
    finally:
        case.close()


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n")


class Bar:
    """A rich progress bar on stderr, only when stderr is a terminal.

    Work in stages (verify: the log, then the objects) starts the bar once per stage; each
    stage takes the next of ``labels`` and replaces the bar of the stage before.
    """

    def __init__(self, *labels: str) -> None:
        self.labels = labels or ("working",)
        self.stage = 0
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def start(self, files: int, total_bytes: int) -> None:
        label = self.labels[min(self.stage, len(self.labels) - 1)]
        self.stage += 1
        self.close()
        if not err.is_terminal or files == 0:
            return
        self.progress = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        self.progress.start()
        self.files_task = self.progress.add_task(label, total=files)
        self.task = self.progress.add_task("bytes", total=total_bytes, visible=False)

    def advance(self, files: int, nbytes: int) -> None:
        if self.progress is not None:
            self.progress.advance(self.files_task, files)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
