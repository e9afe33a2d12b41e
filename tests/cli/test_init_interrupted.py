"""`evidence init` is all or nothing: a case folder appears complete or not at all, and an
init that was stopped or killed is completed by running it again (SPEC sections 8, 9)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from evidence import keystore, workspace
from tests.conftest import CliResult

Cli = Callable[..., CliResult]
CASE_ID = "TEST-0009"


def _init(cli: Cli, target: Path, key_name: str = "inv-a") -> CliResult:
    return cli("init", target, "--case-id", CASE_ID, "--title", "Fictional case",
               "--key-name", key_name)  # fmt: skip


def _stop_at_placing(*args: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("exists", [False, True], ids=["new-folder", "empty-folder"])
@pytest.mark.parametrize(
    "where",
    ["evidence.workspace.catalog.ensure_schema", "evidence.workspace._place_build"],
    ids=["while-building", "before-placing"],
)
def test_a_stopped_init_leaves_nothing_and_runs_again(
    cli: Cli, evidence_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    where: str, exists: bool,
) -> None:  # fmt: skip
    target = tmp_path / "case"
    if exists:
        target.mkdir()
    with monkeypatch.context() as patch:
        patch.setattr(where, _stop_at_placing)
        result = _init(cli, target)
    assert result.exit_code == 130, result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert (sorted(target.iterdir()) == []) if exists else not target.exists()
    assert sorted(p.name for p in keystore.key_dir().iterdir()) == []

    again = _init(cli, target)
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in target.iterdir()) == ["case.toml", "catalog.sqlite", "objects"]
    assert sorted(p.name for p in keystore.key_dir().iterdir()) == ["inv-a.key", "inv-a.pub"]
    assert cli("verify", "--case", target).exit_code == 0


def _killed_before_placing(cli: Cli, target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What kill -9 between naming the key file and placing the case leaves: the key file and
    the hidden build folder, which nothing removes."""
    with monkeypatch.context() as patch:
        patch.setattr("evidence.workspace._place_build", _stop_at_placing)
        patch.setattr("evidence.workspace.shutil.rmtree", lambda *a, **k: None)
        patch.setattr(keystore.StagedKey, "discard", lambda self: None)
        result = _init(cli, target)
    assert result.exit_code == 130, result.output
    assert not target.exists()
    assert (keystore.key_dir() / "inv-a.key").is_file()


def test_a_killed_init_is_completed_with_the_key_it_made(
    cli: Cli, evidence_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "case"
    _killed_before_placing(cli, target, monkeypatch)
    [build] = [p for p in tmp_path.iterdir() if p.name.startswith(".case.evidence-init-")]
    key_file = keystore.key_dir() / "inv-a.key"
    left = key_file.read_bytes()
    # The run that left them is gone.
    monkeypatch.setattr("evidence.claims.process_alive", lambda pid: False)

    again = _init(cli, target)
    assert again.exit_code == 0, again.output
    assert "interrupted run of this init" in again.stderr
    assert key_file.read_bytes() == left
    assert not build.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case", "home"]
    assert cli("verify", "--case", target).exit_code == 0


def test_a_key_no_interrupted_init_made_is_not_taken(
    cli: Cli, evidence_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A key of the same name that the killed run did not make stays the user's to choose.
    target = tmp_path / "case"
    _killed_before_placing(cli, target, monkeypatch)
    for made in keystore.key_dir().iterdir():
        made.unlink()
    assert cli("keys", "generate", "--name", "inv-a").exit_code == 0
    monkeypatch.setattr("evidence.claims.process_alive", lambda pid: False)
    result = _init(cli, target)
    assert result.exit_code == 2, result.output
    assert "a key named 'inv-a' exists already" in result.stderr
    assert not target.exists()


def test_a_build_of_a_killed_init_does_not_block_another(
    cli: Cli, evidence_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / ".case.evidence-init-999999-0123456789ab"
    stale.mkdir()
    (stale / "case.toml").write_text("# fictional leftover\n")
    monkeypatch.setattr("evidence.claims.process_alive", lambda pid: pid != 999999)
    result = _init(cli, tmp_path / "case")
    assert result.exit_code == 0, result.output
    assert not stale.exists()


def test_a_folder_filled_meanwhile_is_never_overwritten(
    cli: Cli, evidence_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "case"
    target.mkdir()
    place = workspace._place_build

    def filled_meanwhile(build: Path, directory: Path) -> None:
        (directory / "notes.txt").write_text("fictional notes of another program\n")
        place(build, directory)

    monkeypatch.setattr("evidence.workspace._place_build", filled_meanwhile)
    result = _init(cli, target)
    assert result.exit_code == 2, result.output
    assert "is not an empty directory" in result.stderr
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert sorted(p.name for p in keystore.key_dir().iterdir()) == []


def test_a_stop_held_while_placing_says_the_case_is_complete(
    cli: Cli, evidence_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C while the case is being placed is held until its key is kept too; it then stops
    # a command whose work is complete, which must not be run again (it would be refused).
    target = tmp_path / "case"
    place = workspace._place_build

    def ctrl_c_while_placing(build: Path, directory: Path) -> None:
        place(build, directory)
        os.kill(os.getpid(), signal.SIGINT)

    with monkeypatch.context() as patch:
        patch.setattr("evidence.workspace._place_build", ctrl_c_while_placing)
        result = _init(cli, target)
    assert result.exit_code == 130, result.output
    assert f"the case {CASE_ID} was created, complete, at {target}" in result.stderr
    assert "nothing needs to be run again" in result.stderr
    assert "run the command again" not in result.stderr
    assert sorted(p.name for p in keystore.key_dir().iterdir()) == ["inv-a.key", "inv-a.pub"]
    assert cli("verify", "--case", target).exit_code == 0
