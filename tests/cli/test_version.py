"""``evidence --version`` prints the version of the installed toolkit from its package metadata."""

from __future__ import annotations

import importlib.metadata
import subprocess
from collections.abc import Callable

from tests.conftest import CliResult, evidence_command

Cli = Callable[..., CliResult]
VERSION = importlib.metadata.version("evidence-locker")


def test_version_is_printed_and_nothing_else_runs(cli: Cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"evidence-locker {VERSION}\n"
    assert result.stderr == ""


def test_version_before_a_command_prints_the_version_only(cli: Cli) -> None:
    # Eager: the command after it is not run (it would need a case here).
    result = cli("--version", "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"evidence-locker {VERSION}\n"


def test_the_program_prints_its_version() -> None:
    done = subprocess.run(
        [*evidence_command(), "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"evidence-locker {VERSION}\n"


def test_root_help_names_version(cli: Cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    assert "--version" in result.stdout
