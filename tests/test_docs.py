"""Every command is documented: it has help text, and the README names it."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from evidence.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _commands() -> list[tuple[str, object]]:
    root = typer.main.get_command(app)
    found: list[tuple[str, object]] = []

    def walk(prefix: str, command: object) -> None:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            path = f"{prefix} {name}".strip()
            found.append((path, sub))
            walk(path, sub)

    walk("", root)
    return found


def test_there_are_commands_to_check() -> None:
    names = {path for path, _ in _commands()}
    assert {"init", "ingest", "verify", "export", "audit", "log proof"} <= names


def test_every_command_has_help_text() -> None:
    missing = [path for path, cmd in _commands() if not (getattr(cmd, "help", None) or "").strip()]
    assert not missing, f"commands without help text: {missing}"


def test_every_top_level_command_is_in_the_readme() -> None:
    top = {path for path, _ in _commands() if " " not in path}
    missing = sorted(name for name in top if not re.search(rf"`[^`]*\b{name}\b[^`]*`", README))
    assert not missing, f"README.md does not mention: {missing}"
