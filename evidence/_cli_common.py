"""What every command module of the ``evidence`` command line shares: consoles, options, helpers.

Results go to ``out`` (stdout), progress and diagnostics to ``err`` (stderr).
"""

from __future__ import annotations

import json
import re
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
from rich.text import Text

# typer ships its own copy of click and exports neither name.
from typer._click.core import ParameterSource

from evidence.errors import EnvironmentProblem, InputError
from evidence.workspace import Case, open_case


def shown(text: str) -> str:
    """``text`` with every character that is not printable, other than a line break or a tab,
    written as ``\\uNNNN``: text a user typed (a title, a reason, a source) can hold terminal
    escape sequences, which must reach the screen as text and never act on the terminal."""
    if text.isprintable():
        return text
    return "".join(
        char
        if char.isprintable() or char in "\n\t"
        else (f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
        for char in text
    )


class _Console(Console):
    """A console that shows the characters of every string it prints (:func:`shown`)."""

    def render_str(self, text: str, *args: Any, **kwargs: Any) -> Text:
        return super().render_str(shown(text), *args, **kwargs)


# No emoji codes: a file name and line such as "t.yaml:100:" would print a picture.
out = _Console(
    highlight=False, emoji=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160
)
err = _Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)

# Where the root command keeps a ``--case`` given before the command (``evidence --case DIR
# list``); ``ctx.meta`` is shared by the contexts of the root, its groups and their commands.
ROOT_CASE = "evidence.root_case"


def _case_given_anywhere(ctx: typer.Context, param: typer.CallbackParam, value: Path) -> Path:
    """A command's case directory: its own ``--case``, else one given before the command, else
    ``EVIDENCE_CASE``, else the current directory (the command line wins over the
    environment, and the option nearer the command over the one further from it)."""
    if ctx.get_parameter_source(param.name or "") is ParameterSource.COMMANDLINE:
        return value
    before = ctx.meta.get(ROOT_CASE)
    return before if isinstance(before, Path) else value


CaseOpt = Annotated[
    Path,
    typer.Option(
        "--case",
        metavar="<dir>",
        envvar="EVIDENCE_CASE",
        help="The case directory (default: the current directory).",
        show_default=False,
        callback=_case_given_anywhere,
    ),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--key",
        metavar="<file>",
        envvar="EVIDENCE_KEY",
        help="Private key file to sign with.",
        show_default=False,
    ),
]
PassOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        metavar="<file>",
        help="Read the key passphrase from this file (or set EVIDENCE_PASSPHRASE).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@contextmanager
def open_case_dir(directory: Path, *, read_only: bool | None = None) -> Iterator[Case]:
    """The case in ``directory``, closed on exit; ``read_only`` as for :func:`open_case`."""
    case = open_case(directory, read_only=read_only)
    try:
        yield case
    finally:
        case.close()


def print_json(value: Any) -> None:
    """``value`` as JSON on stdout, in UTF-8 that any JSON reader loads.

    A name that is not UTF-8 reaches Python as lone surrogates, which UTF-8 cannot encode:
    each is written as its JSON escape (``\\udcff``), which reads back as the same string.
    """
    text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)
    sys.stdout.write(_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")


_SURROGATE = re.compile("[\ud800-\udfff]")


class Bar:
    """A rich progress bar on stderr, only when stderr is a terminal.

    The bar follows bytes when the work has a byte total (with speed and time left) and shows
    the count of files beside it; work without one (the events of the log) shows the count
    alone. Work in stages (verify: the log, then the objects) starts the bar once per stage;
    each stage takes the next of ``labels`` and replaces the bar of the stage before.
    """

    def __init__(self, *labels: str) -> None:
        self.labels = labels or ("working",)
        self.stage = 0
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.by_bytes = False
        self.done = 0

    def start(self, files: int, total_bytes: int) -> None:
        label = self.labels[min(self.stage, len(self.labels) - 1)]
        self.stage += 1
        self.close()
        if not err.is_terminal or files == 0:
            return
        self.by_bytes, self.done = total_bytes > 0, 0
        columns = (
            (
                TextColumn("{task.fields[done]}/{task.fields[files]} files"),
                DownloadColumn(),
                TransferSpeedColumn(),
            )
            if self.by_bytes
            else (MofNCompleteColumn(),)
        )
        self.progress = Progress(
            TextColumn(label),
            BarColumn(),
            *columns,
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task(
            label, total=total_bytes if self.by_bytes else files, done=0, files=files
        )

    def advance(self, files: int, nbytes: int) -> None:
        if self.progress is None or self.task is None:
            return
        self.done += files
        self.progress.update(self.task, advance=nbytes if self.by_bytes else files, done=self.done)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
            self.task = None


def read_file(path: Path, what: str = "the file", hint: str = "check the path") -> bytes:
    """The bytes of the file ``path``, which a message calls ``what`` (``the checkpoint file
    given with --since``).

    A path that names no file is an input error (exit 2, with ``hint``); a file the user may
    not read, or that cannot be read, is one of the environment (exit 3), as SPEC section 8
    has it. Nothing is checked before (click's checks are off, see ``cli._Group``): the
    reading says what is wrong.
    """
    try:
        return path.read_bytes()
    except PermissionError as exc:
        raise EnvironmentProblem(
            f"cannot read {what} {path}: {exc.strerror}",
            "make the file readable by you (e.g. chmod u+r FILE) or copy it to a place "
            "where you may read it, then run the command again",
        ) from None
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}", hint) from None
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot read {what} {path}: {exc.strerror}", "check the file and the disk holding it"
        ) from None
