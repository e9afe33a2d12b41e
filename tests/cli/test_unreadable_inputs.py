"""A file or folder the user may not read is an environment error (exit 3, SPEC section 8) that
names it and says what to do, whichever option or argument gave it; never typer's usage error
(exit 2, "Invalid value ... is not readable") decided before the command runs.

File modes do not bind root: the commands run under ``setpriv`` without the capabilities that
pass them by (:func:`tests.conftest.run_unprivileged`). Every file here is fictional.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from evidence import custody
from evidence.cli import app, app_for
from tests.conftest import CaseHandle, CliResult, run_unprivileged

Cli = Callable[..., CliResult]


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    yield " ".join(path) or "evidence", command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


def _path_params(command: Any) -> Iterator[tuple[str, Any]]:
    for param in command.params:
        described = getattr(param, "type_descriptor", None)
        if described is not None and "Path" in str(described.annotation):
            yield param.name, described.parameter_info


def test_no_path_is_checked_before_the_command_reads_it() -> None:
    checked = []
    seen = 0
    for name, command in _commands(typer.main.get_command(app)):
        # The program builds only the command it runs (app_for): the same holds there.
        words = name.split()[:1]
        built = [command]
        if words and words != ["evidence"]:
            narrowed = typer.main.get_command(app_for(words))
            built.append(dict(_commands(narrowed)).get(name, command))
        for one in built:
            for param, info in _path_params(one):
                seen += 1
                if info.exists or info.readable or info.writable:
                    checked.append(f"{name} {param}")
    assert seen > 50  # --case, --key, --passphrase-file of every command, and more
    assert not checked, f"typer checks these paths before the command runs: {checked}"


# --- run as a user to whom file modes apply ----------------------------------------------------


@pytest.fixture
def case(make_case: Callable[..., CaseHandle]) -> CaseHandle:
    return make_case()


def _unreadable(path: Path, data: bytes = b"fictional content\n") -> Path:
    path.write_bytes(data)
    path.chmod(0)
    return path


def _checkpoint(case: CaseHandle) -> bytes:
    opened = case.open()
    try:
        note = opened.log.latest_checkpoint()
    finally:
        opened.close()
    assert note is not None
    return note


@pytest.mark.parametrize(
    ("args", "holds"),
    [
        pytest.param(("log", "checkpoint", "--sign", "--passphrase-file"), "text", id="passphrase"),
        pytest.param(("log", "checkpoint", "--sign", "--key"), "key", id="key"),
        pytest.param(("testimony", "add"), "text", id="testimony"),
        pytest.param(("incident", "add", "--from"), "text", id="record-from"),
        pytest.param(("log", "consistency"), "checkpoint", id="log-consistency"),
        pytest.param(("verify", "--since"), "checkpoint", id="verify-since"),
        pytest.param(("keys", "enrol"), "text", id="keys-enrol"),
        pytest.param(("keys", "passphrase"), "key", id="keys-passphrase"),
    ],
)
def test_an_unreadable_file_is_an_environment_error_naming_it(
    case: CaseHandle, tmp_path: Path, args: tuple[str, ...], holds: str
) -> None:
    # What the command could use, had it been readable: a key, a checkpoint, some text.
    content = {
        "key": case.key_path.read_bytes(),
        "checkpoint": _checkpoint(case),
        "text": b"fictional content\n",
    }[holds]
    unreadable = _unreadable(tmp_path / "given.txt", content)
    where = () if args == ("keys", "passphrase") else ("--case", case.root)
    done = run_unprivileged(*args, unreadable, *where)
    said = " ".join(done.stderr.split())
    assert done.returncode == 3, done.stderr
    assert str(unreadable) in said
    assert "ermission denied" in said
    assert "hint:" in said
    assert "Invalid value" not in said and "Usage:" not in said


def test_a_missing_checkpoint_file_is_an_input_error_with_a_hint(
    cli: Cli, case: CaseHandle, tmp_path: Path
) -> None:
    absent = tmp_path / "absent.txt"
    for args in (("log", "consistency", absent), ("verify", "--since", absent)):
        result = cli(*args, "--case", case.root)
        assert result.exit_code == 2, result.output
        assert "cannot read the checkpoint file" in result.stderr
        assert str(absent) in result.stderr
        assert "hint: give a checkpoint printed by `evidence log checkpoint`" in result.stderr


def test_an_unreadable_case_folder_is_an_environment_error_naming_it(
    case: CaseHandle,
) -> None:
    case.root.chmod(0)
    try:
        done = run_unprivileged("list", "--case", case.root)
    finally:
        case.root.chmod(0o755)
    assert done.returncode == 3, done.stderr
    assert f"cannot look into the case directory {case.root}" in " ".join(done.stderr.split())
    assert "unexpected error" not in done.stderr


def test_an_unreadable_file_given_to_ingest_is_one_refused_input(
    case: CaseHandle, tmp_path: Path
) -> None:
    # SPEC section 9: the batch goes on; typer's check would have stopped it before it began.
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    unreadable = _unreadable(inbox / "locked.txt", b"fictional locked note\n")
    readable = inbox / "open.txt"
    readable.write_bytes(b"fictional open note\n")
    done = run_unprivileged(
        "ingest", unreadable, readable, "--case", case.root, "--source", "Fictional source"
    )
    assert done.returncode == 1, done.stderr
    assert f"refused: {unreadable}" in done.stderr
    assert "Invalid value" not in done.stderr


def test_a_permission_problem_met_anywhere_is_an_environment_error_naming_the_file(
    cli: Cli, case: CaseHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/fictional/locked.db")

    monkeypatch.setattr(custody, "list_items", denied)
    result = cli("list", "--case", case.root)
    assert result.exit_code == 3, result.output
    assert "permission denied: /fictional/locked.db" in result.stderr
    assert "unexpected error" not in result.stderr
