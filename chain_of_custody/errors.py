"""The error root of the toolkit.

Every error a user can cause or meet derives from :class:`CustodyError`: it carries a message
that says what happened (naming the file, field or event) and a hint that says what to do. The
command line catches this base only, prints ``message`` and ``hint`` to stderr and exits with
``exit_code``. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3


def kind_of_mode(mode: int) -> str:
    """The words a message uses for a file system entry of this ``st_mode``: ``a regular
    file``, ``a folder``, ``a symbolic link``, ``a named pipe``, ``a socket``, ``a device`` or
    ``a special file``."""
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    )
    return next((words for test, words in kinds if test(mode)), "a special file")


class CustodyError(Exception):
    """Base of every error meant for a user: a message, a hint and an exit code."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """The text shown to the user: what happened, then what to do."""
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message


class InputError(CustodyError):
    """Bad input from the user: a malformed file, a wrong option, an unknown id."""

    exit_code = EXIT_USAGE


class EnvironmentProblem(CustodyError):
    """The environment does not allow the work: missing case, locked key, permission."""

    exit_code = EXIT_ENVIRONMENT


class KeyFileError(EnvironmentProblem):
    """A key file is missing, unreadable, corrupt, of the wrong type or too open."""


class PassphraseError(EnvironmentProblem):
    """The passphrase does not unlock the key."""


_LINE_BREAKS = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


@dataclass(frozen=True)
class Finding:
    """One problem found by a verifier, located by event seq, item, file or checkpoint."""

    code: str
    message: str
    seq: int | None = None
    subject: str | None = None
    path: str | None = None

    def where(self) -> str:
        """A short location for reports: ``seq 12``, ``item <sha>``, ``file x``."""
        parts = []
        if self.seq is not None:
            parts.append(f"seq {self.seq}")
        if self.subject:
            parts.append(self.subject)
        if self.path:
            parts.append(self.path)
        return ", ".join(parts) or "-"

    def describe(self) -> str:
        """``[code] location: message`` for a person, each location named once.

        Many messages already name their file, item or event (``data/originals/X: sha256 is
        ...``), which :meth:`where` would name again; the location keeps only what the message
        does not say. ``--json`` keeps every field.
        """
        message = self.message
        parts: list[str] = []
        if self.seq is not None and not re.search(rf"\b(?:event|seq) {self.seq}\b", message):
            parts.append(f"seq {self.seq}")
        for named in (self.subject, self.path):
            if named and named not in message and named not in parts:
                parts.append(named)
        where = ", ".join(parts)
        line = f"[{self.code}] {where}: {message}" if where else f"[{self.code}] {message}"
        # One line, whatever a file name of the bundle or case holds: a line break in a name
        # must not start a line that reads like the tool's own.
        return line.translate(_LINE_BREAKS)

    def as_json(self) -> dict[str, str | int | None]:
        """The finding as a JSON object (``--json`` reports of verify and audit)."""
        return {
            "code": self.code,
            "message": self.message,
            "seq": self.seq,
            "subject": self.subject,
            "path": self.path,
        }


class VerificationError(CustodyError):
    """A verifier found one or more problems; ``findings`` lists each."""

    exit_code = EXIT_PROBLEMS

    def __init__(self, findings: Sequence[Finding] | Finding, hint: str = "") -> None:
        items = [findings] if isinstance(findings, Finding) else list(findings)
        if not items:
            raise ValueError("VerificationError needs at least one finding")
        self.findings: tuple[Finding, ...] = tuple(items)
        first = items[0]
        where = first.where()
        text = first.message if where == "-" else f"{first.message} ({where})"
        if len(items) > 1:
            text += f" and {len(items) - 1} more finding(s)"
        super().__init__(text, hint)
