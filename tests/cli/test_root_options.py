"""Options of the root command, given before the command: ``evidence --case DIR list``.

SPEC section 8: the case comes from ``--case DIR`` or ``EVIDENCE_CASE``, defaulting to the
current directory. ``--case`` is taken before the command as well as after it; the one after
it wins, the command line wins over the environment, and a command that works in no case
refuses it rather than ignoring it. Also here: help shows flags without a type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer.main

from evidence.cli import ROOT_FLAGS, ROOT_VALUE_OPTIONS, app, app_for
from tests.conftest import CaseHandle, CliResult, run_evidence

Cli = Callable[..., CliResult]


@pytest.fixture
def two_cases(make_case: Callable[..., CaseHandle], tmp_path: Path, cli: Cli) -> tuple[Path, Path]:
    """Two cases told apart by their items: ``one`` holds one file, ``two`` none."""
    one, two = make_case("one").root, make_case("two").root
    source = tmp_path / "note.txt"
    source.write_text("A fictional note.\n", encoding="utf-8")
    assert cli("ingest", "--case", one, source).exit_code == 0
    return one, two


def _items(result: CliResult) -> int:
    assert result.exit_code == 0, result.output
    return len(json.loads(result.stdout))


# --- --case before the command ---------------------------------------------------------------


def test_case_before_the_command(two_cases: tuple[Path, Path], cli: Cli) -> None:
    one, two = two_cases
    assert _items(cli("--case", one, "list", "--json")) == 1
    assert _items(cli("--case", two, "list", "--json")) == 0


def test_case_before_the_command_with_an_equals_sign(
    two_cases: tuple[Path, Path], cli: Cli
) -> None:
    one, _ = two_cases
    assert _items(cli(f"--case={one}", "list", "--json")) == 1


def test_the_commands_own_case_wins(two_cases: tuple[Path, Path], cli: Cli) -> None:
    one, two = two_cases
    assert _items(cli("--case", two, "list", "--case", one, "--json")) == 1
    assert _items(cli("--case", one, "list", "--case", two, "--json")) == 0


def test_case_before_the_command_wins_over_the_environment(
    two_cases: tuple[Path, Path], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = two_cases
    monkeypatch.setenv("EVIDENCE_CASE", str(two))
    assert _items(cli("list", "--json")) == 0
    assert _items(cli("--case", one, "list", "--json")) == 1


def test_case_before_the_command_wins_over_the_current_directory(
    two_cases: tuple[Path, Path], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = two_cases
    monkeypatch.chdir(two)
    assert _items(cli("--case", one, "list", "--json")) == 1


def test_a_missing_case_before_the_command_is_an_environment_error(
    cli: Cli, tmp_path: Path, evidence_home: Path
) -> None:
    result = cli("--case", tmp_path / "nowhere", "list")
    assert result.exit_code == 3
    assert "no case found at" in result.stderr and "nowhere" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("keys", "list"), id="keys-list"),
        pytest.param(("log", "show"), id="log-show"),
        pytest.param(("incident", "list"), id="incident-list"),
        pytest.param(("testimony", "list"), id="testimony-list"),
        pytest.param(("keys", "recipient", "list"), id="keys-recipient-list"),
        pytest.param(("verify",), id="verify"),
    ],
)
def test_case_before_commands_of_groups_and_of_every_module(
    two_cases: tuple[Path, Path], cli: Cli, command: tuple[str, ...], tmp_path: Path
) -> None:
    one, _ = two_cases
    before = cli("--case", one, *command)
    after = cli(*command, "--case", one)
    assert before.exit_code == after.exit_code == 0, before.output
    assert before.stdout == after.stdout
    # Without a case anywhere the same command fails: the option before it was used.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(elsewhere)
        assert cli(*command).exit_code == 3


def test_the_program_takes_case_before_the_command(two_cases: tuple[Path, Path]) -> None:
    # The installed program narrows the app to the command being run: the root options
    # before it must not hide it.
    one, _ = two_cases
    done = run_evidence("--debug", "--case", one, "list", "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 1
    done = run_evidence(f"--case={one}", "keys", "list", "--json")
    assert done.returncode == 0, done.stderr


# --- commands that work in no case -----------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "name"),
    [
        pytest.param(
            ("init", "new-case", "--case-id", "UA-TEST-0002", "--title", "T"), "init", id="init"
        ),
        pytest.param(("keys", "generate", "--name", "colleague"), "keys generate", id="keys"),
        pytest.param(("audit", "bundle"), "audit", id="audit"),
        pytest.param(("testimony", "template"), "testimony template", id="template"),
    ],
)
def test_commands_without_a_case_refuse_case_before_them(
    two_cases: tuple[Path, Path],
    cli: Cli,
    command: tuple[str, ...],
    name: str,
    tmp_path: Path,
    evidence_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The option would do nothing there: refused (exit 2) as the same option after the
    # command is, never silently ignored, and before anything is asked or made.
    one, _ = two_cases
    monkeypatch.chdir(tmp_path)
    keys_before = sorted((evidence_home / "keys").iterdir())
    result = cli("--case", one, *command)
    assert result.exit_code == 2, result.output
    assert f"`evidence {name}` takes no --case" in result.stderr
    assert f"leave --case out; `evidence {name} --help`" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert not (tmp_path / "new-case").exists()
    assert sorted((evidence_home / "keys").iterdir()) == keys_before
    # After the command, the option is unknown to it: a usage error too.
    assert cli(*command, "--case", one).exit_code == 2


def test_commands_without_a_case_still_run_without_it(
    cli: Cli, tmp_path: Path, evidence_home: Path
) -> None:
    assert cli("testimony", "template").exit_code == 0
    result = cli("init", tmp_path / "new", "--case-id", "UA-TEST-0003", "--title", "T")
    assert result.exit_code == 0, result.output
    # --debug before the command stays a root option of every command.
    assert cli("--debug", "testimony", "template").exit_code == 0


def test_case_before_a_help_request_shows_the_help(two_cases: tuple[Path, Path], cli: Cli) -> None:
    one, _ = two_cases
    for command in (("init",), ("list",), ("keys", "generate")):
        result = cli("--case", one, *command, "--help")
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.stdout


def test_root_help_shows_case(cli: Cli, evidence_home: Path) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    assert "--case" in result.stdout
    assert "EVIDENCE_CASE" in result.stdout


def test_case_before_the_command_needs_a_value(cli: Cli, evidence_home: Path) -> None:
    result = cli("--case")
    assert result.exit_code == 2
    assert "--case" in result.stderr


# --- start-up narrowing with root options ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "name"),
    [
        pytest.param(["--case", "x", "list"], "list", id="case-first"),
        pytest.param(["--case=x", "list"], "list", id="case-equals"),
        pytest.param(["--debug", "--case", "x", "log", "show"], "log", id="debug-then-case"),
        pytest.param(["--case", "x", "--debug", "keys", "list"], "keys", id="case-then-debug"),
        pytest.param(["--case", "--debug", "verify"], "verify", id="case-named-like-an-option"),
    ],
)
def test_root_options_before_the_command_still_narrow(args: list[str], name: str) -> None:
    narrowed = typer.main.get_command(app_for(args))
    assert sorted(narrowed.commands) == [name]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "args",
    [["--case"], ["--case", "x"], ["--case", "list"], ["--case=x"], ["--case", "x", "--help"]],
)
def test_root_options_without_a_command_get_the_whole_app(args: list[str]) -> None:
    assert app_for(args) is app


def test_app_for_knows_every_root_option() -> None:
    # A root option app_for does not know would hide the command behind it (or its value).
    root = typer.main.get_command(app)
    flags: set[str] = set()
    valued: set[str] = set()
    for param in root.params:
        opts = set(param.opts) | set(param.secondary_opts)
        (flags if getattr(param, "is_flag", False) else valued).update(opts)
    assert flags - {"--help"} == ROOT_FLAGS
    assert valued == ROOT_VALUE_OPTIONS


# --- flags in help ---------------------------------------------------------------------------


def _paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # typer ships its own copy of click, so groups are recognised by their sub-commands.
    found = [prefix]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found.extend(_paths(sub, (*prefix, name)))
    return found


PATHS = _paths(typer.main.get_command(app))


def test_there_are_commands_and_groups_to_check() -> None:
    names = {" ".join(path) for path in PATHS}
    assert {"", "keys", "keys generate", "ingest", "incident add", "export", "audit"} <= names


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "evidence" for p in PATHS])
def test_help_shows_what_values_are_not_python_types(
    cli: Cli, evidence_home: Path, path: tuple[str, ...]
) -> None:
    result = cli(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    # A flag shows no type; a value shows what it is, never a Python type.
    for python_type in ["<bool>", "<str>", "<int>", "<list[", "<Path>"]:
        assert python_type not in result.stdout, python_type
    if path == ("export",):
        for option, label in [
            ("--case", "<dir>"),
            ("--recipient", "<file>"),
            ("--incident", "<id>"),
            ("--created", "<time>"),
            ("--profile", "<text>"),
        ]:
            assert re.search(rf"{option} +{label}", result.stdout), option
    if path == ("child", "edit"):
        for option, label in [
            ("--taken-on", "<date>"),
            ("--hometown-lat", "<degrees>"),
            ("--birth-year", "<year>"),
            ("--add-placement", "<placement>"),
            ("--unset", "<field>"),
        ]:
            assert re.search(rf"{option} +{label}", result.stdout), option
    if path == ("ingest",):
        assert re.search(r"paths\.\.\. +<path>", result.stdout)
        assert re.search(r"--collected-at +<time>", result.stdout)


def test_flags_keep_working(two_cases: tuple[Path, Path], cli: Cli) -> None:
    one, _ = two_cases
    assert _items(cli("list", "--case", one, "--json")) == 1
    result = cli("list", "--case", one, "--json=yes")
    assert result.exit_code == 2
    assert "--json" in result.stderr


def test_help_paragraphs_are_wrapped_as_paragraphs(cli: Cli, evidence_home: Path) -> None:
    # A docstring's own line breaks, at the width of the code, do not reach the terminal.
    for path in PATHS[1:]:
        command: Any = typer.main.get_command(app)
        for name in path:
            command = command.commands[name]
        paragraphs = (command.help or "").split("\n\n")
        assert not [p for p in paragraphs if "\n" in p], path
    result = cli("transfer", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "the last one it was transferred to; see `evidence show`" in text
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "transferred" not in lines
