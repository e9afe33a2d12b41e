"""Start-up of the command line: only the command being run is built, and imports are frozen.

Every command pays for start-up, and investigators run thousands of them; these tests check
that the shortcuts taken there change nothing a user sees.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from typer.main import get_command

from evidence.cli import app, app_for


def _shape(command: Any) -> Any:
    """What a user can see of a click command: its options and help, and those of its commands."""
    params = [(p.name, tuple(p.opts), getattr(p, "help", None)) for p in command.params]
    children = getattr(command, "commands", {})
    return (
        command.name,
        command.help,
        params,
        {name: _shape(child) for name, child in sorted(children.items())},
    )


FULL = get_command(app)
NAMES = sorted(FULL.commands)  # type: ignore[attr-defined]


def test_every_command_and_group_is_found() -> None:
    assert {"ingest", "init", "verify", "export", "audit", "keys", "log", "incident"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_a_narrowed_app_builds_the_same_command(name: str) -> None:
    narrowed = get_command(app_for([name, "--help"]))
    assert sorted(narrowed.commands) == [name]  # type: ignore[attr-defined]
    assert _shape(narrowed.commands[name]) == _shape(FULL.commands[name])  # type: ignore[attr-defined]
    # The root keeps its own options and help.
    assert _shape(narrowed)[:3] == _shape(FULL)[:3]


@pytest.mark.parametrize(
    "args",
    [[], ["--help"], ["--debug"], ["--debug", "--help"], ["nope"], ["Ingest"], ["-x", "ingest"]],
)
def test_anything_but_a_known_command_gets_the_whole_app(args: list[str]) -> None:
    assert app_for(args) is app


def test_debug_before_the_command_still_narrows() -> None:
    narrowed = get_command(app_for(["--debug", "--debug", "log", "show"]))
    assert sorted(narrowed.commands) == ["log"]  # type: ignore[attr-defined]


def test_narrowing_leaves_the_app_whole() -> None:
    app_for(["ingest"])
    assert sorted(get_command(app).commands) == NAMES  # type: ignore[attr-defined]


def test_the_program_runs_commands_with_the_collector_on_and_its_imports_frozen() -> None:
    # The entry point turns collection off while it imports the command line; a command must
    # run with it on again (a long ingest makes garbage), with the imports frozen.
    code = (
        "import gc\n"
        "import evidence.cli as cli\n"
        "def probe(argv=None):\n"
        "    print(gc.isenabled(), gc.get_freeze_count() > 10_000)\n"
        "cli.main = probe\n"
        "from evidence._entry import main\n"
        "main()\n"
    )
    done = subprocess.run(  # a fixed interpreter and program, no shell
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["True", "True"]
