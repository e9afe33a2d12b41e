"""``keys passphrase``: a key file is encrypted again under a new passphrase, and nothing else.

The key, its public key and its key id stay the same; the old passphrase stops unlocking the
file and the new one unlocks it. A wrong current passphrase, a refused new one or a failure on
the way leaves the file byte for byte as it was; a crash leaves the old file or the new one,
whole. The new passphrase never comes from the command line or the environment. Every key,
name and passphrase here is fictional.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer

from chain_of_custody import PassphraseError, VerifierKey, load_signer
from evidence import keystore
from evidence.cli import app
from evidence.errors import InputError
from evidence.protected import load_recipient
from tests.conftest import PASSPHRASE, CaseHandle, CliResult, folder_names, run_killed

Cli = Callable[..., CliResult]
NEW_PASSPHRASE = "fictional new pass phrase 8"


@pytest.fixture
def new_passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "new-passphrase.txt"
    path.write_text(NEW_PASSPHRASE + "\n")
    return path


@pytest.fixture
def key_file(cli: Cli, evidence_home: Path) -> Path:
    """A signing key made by ``keys generate`` under the test passphrase."""
    made = cli("keys", "generate", "--name", "investigator-p")
    assert made.exit_code == 0, made.output
    return evidence_home / "keys" / "investigator-p.key"


def test_the_passphrase_changes_and_the_key_does_not(
    cli: Cli, key_file: Path, new_passphrase_file: Path
) -> None:
    public = VerifierKey.from_note_text(key_file.with_suffix(".pub").read_text())
    public_file = key_file.with_suffix(".pub").read_bytes()
    before = key_file.read_bytes()

    result = cli("keys", "passphrase", key_file, "--new-passphrase-file", new_passphrase_file)

    assert result.exit_code == 0, result.output
    assert public.key_id in result.stdout
    assert "copies and backups of the old file" in " ".join(result.stderr.split())
    assert key_file.read_bytes() != before
    assert load_signer(key_file, NEW_PASSPHRASE.encode()).verifier == public
    with pytest.raises(PassphraseError):
        load_signer(key_file, PASSPHRASE.encode())
    assert key_file.read_bytes().startswith(before.split(b"-----BEGIN")[0])  # same header lines
    assert key_file.with_suffix(".pub").read_bytes() == public_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert folder_names(key_file.parent) == ["investigator-p.key", "investigator-p.pub"]
    assert PASSPHRASE not in result.output and NEW_PASSPHRASE not in result.output


def test_a_case_key_with_a_new_passphrase_still_signs_as_the_same_enrolled_key(
    cli: Cli,
    make_case: Callable[..., CaseHandle],
    new_passphrase_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = make_case()
    changed = cli("keys", "passphrase", case.key_path, "--new-passphrase-file", new_passphrase_file)
    assert changed.exit_code == 0, changed.output
    old = cli("log", "checkpoint", "--sign", "--case", case.root)
    assert old.exit_code == 3, old.output
    assert "passphrase does not unlock" in old.stderr
    monkeypatch.setenv("EVIDENCE_PASSPHRASE", NEW_PASSPHRASE)
    signed = cli("log", "checkpoint", "--sign", "--case", case.root)
    assert signed.exit_code == 0, signed.output


def test_a_recipient_key_file_gets_a_new_passphrase_too(
    cli: Cli, make_case: Callable[..., CaseHandle], evidence_home: Path, new_passphrase_file: Path
) -> None:
    case = make_case()
    added = cli("keys", "recipient", "add", "prosecutor-p", "--case", case.root)
    assert added.exit_code == 0, added.output
    path = evidence_home / "recipients" / "prosecutor-p.key"
    recipient = load_recipient(path, PASSPHRASE.encode())

    result = cli("keys", "passphrase", path, "--new-passphrase-file", new_passphrase_file)

    assert result.exit_code == 0, result.output
    assert "recipient key" in result.stdout and recipient.recipient_id in result.stdout
    assert load_recipient(path, NEW_PASSPHRASE.encode()).public == recipient.public
    with pytest.raises(PassphraseError):
        load_recipient(path, PASSPHRASE.encode())
    assert folder_names(path.parent) == ["prosecutor-p.key", "prosecutor-p.pub"]


def test_a_link_to_the_key_file_changes_the_file_and_stays_a_link(
    cli: Cli, key_file: Path, new_passphrase_file: Path, tmp_path: Path
) -> None:
    # Renaming over the link would leave the file it points to as it was: old passphrase.
    link = tmp_path / "my.key"
    link.symlink_to(key_file)
    result = cli("keys", "passphrase", link, "--new-passphrase-file", new_passphrase_file)
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert load_signer(key_file, NEW_PASSPHRASE.encode()).name == "investigator-p"


# --- refused: the file stays byte for byte as it was ------------------------------------------


def test_a_wrong_current_passphrase_changes_nothing_and_asks_for_no_new_one(
    cli: Cli, key_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = key_file.read_bytes()
    monkeypatch.setenv("EVIDENCE_PASSPHRASE", "not the fictional passphrase")
    # The new passphrase file does not exist: it is never read, the current one fails first.
    result = cli("keys", "passphrase", key_file, "--new-passphrase-file", tmp_path / "absent")
    assert result.exit_code == 3, result.output
    assert f"the passphrase does not unlock key file {key_file}" in " ".join(result.stderr.split())
    assert key_file.read_bytes() == before
    assert folder_names(key_file.parent) == ["investigator-p.key", "investigator-p.pub"]


@pytest.mark.parametrize(
    ("new", "said"),
    [
        pytest.param(PASSPHRASE, "the same as the current one", id="same as the current"),
        pytest.param("short", "too short", id="too short"),
        pytest.param("", "too short", id="empty"),
    ],
)
def test_a_refused_new_passphrase_changes_nothing(
    cli: Cli, key_file: Path, tmp_path: Path, new: str, said: str
) -> None:
    before = key_file.read_bytes()
    new_file = tmp_path / "new.txt"
    new_file.write_text(new + "\n")
    result = cli("keys", "passphrase", key_file, "--new-passphrase-file", new_file)
    assert result.exit_code == 2, result.output
    assert said in result.stderr
    assert key_file.read_bytes() == before
    assert PASSPHRASE not in result.output


def test_without_a_terminal_the_new_passphrase_must_come_from_a_file(
    cli: Cli, key_file: Path
) -> None:
    # EVIDENCE_PASSPHRASE is set (the fixture's): it gives the current passphrase only.
    before = key_file.read_bytes()
    result = cli("keys", "passphrase", key_file)
    assert result.exit_code == 3, result.output
    assert "--new-passphrase-file" in result.stderr
    assert key_file.read_bytes() == before


def test_a_public_key_file_is_not_taken_for_the_key(cli: Cli, key_file: Path) -> None:
    public = key_file.with_suffix(".pub")
    before = public.read_bytes()
    result = cli("keys", "passphrase", public, "--new-passphrase-file", public)
    assert result.exit_code == 2, result.output
    assert str(key_file) in " ".join(result.stderr.split())
    assert public.read_bytes() == before


def test_a_file_that_is_no_key_file_of_the_toolkit_is_refused(
    cli: Cli, tmp_path: Path, new_passphrase_file: Path
) -> None:
    other = tmp_path / "notes.key"
    other.write_text("fictional notes, not a key\n")
    other.chmod(0o600)
    result = cli("keys", "passphrase", other, "--new-passphrase-file", new_passphrase_file)
    assert result.exit_code == 3, result.output
    assert "not a key file of this toolkit" in " ".join(result.stderr.split())
    assert other.read_text() == "fictional notes, not a key\n"


def test_a_key_file_with_another_name_is_refused(
    cli: Cli, key_file: Path, new_passphrase_file: Path, tmp_path: Path
) -> None:
    # The other name would keep the old file, which the old passphrase still opens.
    other_name = tmp_path / "backup.key"
    os.link(key_file, other_name)
    before = key_file.read_bytes()
    result = cli("keys", "passphrase", key_file, "--new-passphrase-file", new_passphrase_file)
    assert result.exit_code == 3, result.output
    assert "other name" in result.stderr and "-samefile" in result.stderr
    assert key_file.read_bytes() == before
    assert os.path.samefile(key_file, other_name)


# --- failures and crashes on the way: the old file or the new one, whole -----------------------


def test_a_failed_rename_leaves_the_old_file_and_no_temporary_one(
    cli: Cli, key_file: Path, new_passphrase_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = key_file.read_bytes()

    def disk_full(self: Path, target: object) -> Path:
        raise OSError(28, "No space left on device (fictional)")

    monkeypatch.setattr(Path, "replace", disk_full)
    result = cli("keys", "passphrase", key_file, "--new-passphrase-file", new_passphrase_file)
    assert result.exit_code == 3, result.output
    assert "left as it is" in result.stderr
    assert key_file.read_bytes() == before
    assert folder_names(key_file.parent) == ["investigator-p.key", "investigator-p.pub"]


def test_a_key_file_changed_meanwhile_is_not_replaced(
    cli: Cli, key_file: Path, new_passphrase_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_new = keystore.read_new_passphrase

    def changed_while_asking(path: Path | None) -> bytes:
        # Another command writes the file while this one waits for the new passphrase.
        with key_file.open("ab") as handle:
            handle.write(b"\n")
        return read_new(path)

    monkeypatch.setattr(keystore, "read_new_passphrase", changed_while_asking)
    result = cli("keys", "passphrase", key_file, "--new-passphrase-file", new_passphrase_file)
    assert result.exit_code == 3, result.output
    assert "changed while" in result.stderr
    assert load_signer(key_file, PASSPHRASE.encode()).name == "investigator-p"


def test_a_run_killed_before_the_rename_leaves_the_old_file_and_a_rerun_completes(
    key_file: Path, new_passphrase_file: Path
) -> None:
    before = key_file.read_bytes()
    run_killed(_KILLED_BEFORE_RENAME, key_file, new_passphrase_file)
    assert key_file.read_bytes() == before
    left = [name for name in folder_names(key_file.parent) if name.endswith(".pending")]
    assert len(left) == 1, folder_names(key_file.parent)
    # What the dead run left is a complete new file, never the key file itself.
    assert load_signer(key_file.parent / left[0], NEW_PASSPHRASE.encode()).name == "investigator-p"

    changed = keystore.change_passphrase(key_file, None, new_passphrase_file)
    assert changed.path == key_file
    assert load_signer(key_file, NEW_PASSPHRASE.encode()).name == "investigator-p"
    assert folder_names(key_file.parent) == ["investigator-p.key", "investigator-p.pub"]


# Re-encrypts through the library as the command does, and is killed just before the rename.
_KILLED_BEFORE_RENAME = """
import os, signal, sys
from pathlib import Path
from evidence import keystore

def killed(finished, path, previous):
    os.kill(os.getpid(), signal.SIGKILL)

keystore.replace_secret_file = killed
keystore.change_passphrase(Path(sys.argv[1]), None, Path(sys.argv[2]))
"""


# --- the new passphrase on a terminal, and the help ----------------------------------------------


class _Terminal:
    def isatty(self) -> bool:
        return True


@pytest.fixture
def typed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What the user types at the prompts, in order; the prompts shown are kept in its place."""
    answers: list[str] = []
    monkeypatch.setattr(sys, "stdin", _Terminal())

    def prompt(text: str = "") -> str:
        answer = answers.pop(0)
        answers.append(text)
        return answer

    monkeypatch.setattr(getpass, "getpass", prompt)
    yield answers


def test_the_new_passphrase_is_typed_twice_on_a_terminal(typed: list[str]) -> None:
    typed.extend([NEW_PASSPHRASE, NEW_PASSPHRASE])
    assert keystore.read_new_passphrase(None) == NEW_PASSPHRASE.encode()
    assert typed == ["New key passphrase: ", "Repeat the new passphrase: "]


def test_two_different_new_passphrases_are_refused(typed: list[str]) -> None:
    typed.extend([NEW_PASSPHRASE, NEW_PASSPHRASE + "!"])
    with pytest.raises(InputError, match="differ"):
        keystore.read_new_passphrase(None)


def test_the_command_and_each_of_its_options_have_help() -> None:
    command = typer.main.get_command(app).commands["keys"].commands["passphrase"]  # type: ignore[attr-defined]
    assert command.help and "passphrase" in command.help
    for param in command.params:
        assert (getattr(param, "help", None) or "").strip(), param.name
    names = {name for param in command.params for name in getattr(param, "opts", [])}
    assert {"--passphrase-file", "--new-passphrase-file"} <= names
