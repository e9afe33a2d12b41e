"""Errors of the case layer, all rooted in :class:`chain_of_custody.errors.CustodyError`."""

from __future__ import annotations

from chain_of_custody.errors import (
    EXIT_ENVIRONMENT,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    CustodyError,
    EnvironmentProblem,
    Finding,
    InputError,
    KeyFileError,
    PassphraseError,
    VerificationError,
)

__all__ = [
    "EXIT_ENVIRONMENT",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "CaseNotFound",
    "CustodyError",
    "EnvironmentProblem",
    "Finding",
    "InputError",
    "KeyFileError",
    "PassphraseError",
    "Stopped",
    "UnknownId",
    "VerificationError",
]


class CaseNotFound(EnvironmentProblem):
    """No case workspace at the given directory."""

    def __init__(self, directory: str) -> None:
        super().__init__(
            f"no case found at {directory} (case.toml is missing)",
            "create one with `evidence init DIR`, or point to it with --case DIR or EVIDENCE_CASE",
        )


class UnknownId(InputError):
    """An item, entity, testimony or key id that the case does not know."""

    def __init__(self, kind: str, ident: str, hint: str = "") -> None:
        super().__init__(
            f"unknown {kind} {ident!r}",
            hint or f"list the known ones with `evidence {kind} list` or `evidence list`",
        )


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a closed terminal, a dropped connection, a service stop) while a
    command runs: the command stops as on Ctrl-C, undoing what it has not committed, and
    exits with 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
