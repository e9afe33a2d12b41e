"""New key files appear whole or not at all, and several keys on one machine are never guessed.

``keys recipient add`` keeps the recipient's new private key only if the recipient is recorded;
``keys generate`` leaves no private key without its public key. A key made for a colleague can
be written elsewhere (``--out``), and when the key folder holds several keys enrolled in a case
the commands that sign list them (key id and file) and say how to choose one. Every name, key
and case here is fictional.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlite_utils

from chain_of_custody import VerifierKey, signer_from_seed
from evidence import keystore
from evidence.errors import EnvironmentProblem
from evidence.protected import generate_recipient
from tests.conftest import CaseHandle, CliResult, folder_names, run_killed, seed_for

Cli = Callable[..., CliResult]


def _read_only_catalog(path: Path | str) -> sqlite_utils.Database:
    # What SQLite does with a catalog the user may not write (tests may run as root).
    return sqlite_utils.Database(sqlite3.connect(f"file:{path}?mode=ro", uri=True))


# --- keys recipient add: all or nothing -----------------------------------------------------


def test_recipient_key_is_not_kept_when_the_catalog_cannot_be_written(
    cli: Cli,
    make_case: Callable[..., CaseHandle],
    evidence_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = make_case()
    recipients = evidence_home / "recipients"
    with monkeypatch.context() as patch:
        patch.setattr("evidence.workspace.open_database", _read_only_catalog)
        refused = cli("keys", "recipient", "add", "prosecutor-z", "--case", case.root)
    assert refused.exit_code == 3, refused.output
    assert "read-only" in refused.stderr
    assert folder_names(recipients) == []
    # The same command works once the catalog can be written.
    added = cli("keys", "recipient", "add", "prosecutor-z", "--case", case.root, "--json")
    assert added.exit_code == 0, added.output
    info = json.loads(added.stdout)
    assert folder_names(recipients) == ["prosecutor-z.key", "prosecutor-z.pub"]
    assert info["private_key"] == str(recipients / "prosecutor-z.key")
    assert (recipients / "prosecutor-z.pub").read_text().strip() == info["public_key"]


def test_recipient_key_is_not_kept_when_the_name_is_taken_in_the_case(
    cli: Cli, make_case: Callable[..., CaseHandle], evidence_home: Path, tmp_path: Path
) -> None:
    # A recipient of that name was added from a public key made on another machine.
    case = make_case()
    public = tmp_path / "prosecutor-y.pub"
    public.write_text(generate_recipient("prosecutor-y").public.to_text() + "\n")
    first = cli(
        "keys", "recipient", "add", "prosecutor-y", "--public-key", public, "--case", case.root
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    size = case.log_size()
    again = cli("keys", "recipient", "add", "prosecutor-y", "--case", case.root)
    assert again.exit_code == 2, again.output
    assert "a recipient named 'prosecutor-y' already" in again.stderr
    assert folder_names(evidence_home / "recipients") == []
    assert case.log_size() == size


def test_recipient_key_named_before_a_commit_that_fails_is_removed(
    cli: Cli,
    make_case: Callable[..., CaseHandle],
    evidence_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The key files get their names inside the transaction; a commit that then fails (a full
    # disk, say) takes them away again.
    case = make_case()
    size = case.log_size()
    publish = keystore.StagedKey.publish

    def publish_then_fail(self: keystore.StagedKey) -> None:
        publish(self)
        assert self.path.is_file() and self.public_path.is_file()
        raise EnvironmentProblem("the disk of the case is full (fictional)")

    with monkeypatch.context() as patch:
        patch.setattr(keystore.StagedKey, "publish", publish_then_fail)
        failed = cli("keys", "recipient", "add", "prosecutor-v", "--case", case.root)
    assert failed.exit_code == 3, failed.output
    assert "disk of the case is full" in failed.stderr
    assert folder_names(evidence_home / "recipients") == []
    assert case.log_size() == size
    assert cli("keys", "recipient", "add", "prosecutor-v", "--case", case.root).exit_code == 0


def test_recipient_key_is_not_written_when_the_signing_key_is_locked(
    cli: Cli, make_case: Callable[..., CaseHandle], evidence_home: Path, tmp_path: Path
) -> None:
    case = make_case()
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the fictional passphrase\n")
    result = cli(
        "keys", "recipient", "add", "prosecutor-x", "--case", case.root,
        "--passphrase-file", wrong,
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert folder_names(evidence_home / "recipients") == []


def test_interrupted_recipient_add_leaves_nothing_that_stops_a_rerun(
    cli: Cli, make_case: Callable[..., CaseHandle], evidence_home: Path
) -> None:
    """A run killed after writing the key, before recording it: the key is under a temporary
    name only, the rerun works and clears what the dead run left."""
    case = make_case()
    recipients = evidence_home / "recipients"
    run_killed(_KILLED_BEFORE_COMMIT, case.root)
    left = folder_names(recipients)
    assert left and all(name.endswith(".pending") for name in left), left
    assert case.log_size() == 2
    added = cli("keys", "recipient", "add", "prosecutor-w", "--case", case.root)
    assert added.exit_code == 0, added.output
    assert folder_names(recipients) == ["prosecutor-w.key", "prosecutor-w.pub"]


# Records through the library as the command does, and is killed inside the transaction,
# just before the key files would be given their names.
_KILLED_BEFORE_COMMIT = """
import os, signal, sys
from pathlib import Path
from evidence import keystore, recipients
from evidence.workspace import open_case

case = open_case(Path(sys.argv[1]))
signer = keystore.unlock(case, None, None)

def killed(self):
    os.kill(os.getpid(), signal.SIGKILL)

keystore.StagedKey.publish = killed
recipients.add_new_recipient(case, signer, "prosecutor-w", b"fictional recipient pass")
"""


# --- keys generate: whole or nothing, and --out for a colleague -----------------------------


def test_keys_generate_leaves_no_private_key_without_its_public_key(
    cli: Cli, evidence_home: Path
) -> None:
    keys = evidence_home / "keys"
    # Something that is not a file where the public key must go.
    (keys / "investigator-b.pub").mkdir(parents=True)
    result = cli("keys", "generate", "--name", "investigator-b")
    assert result.exit_code == 3, result.output
    assert "unexpected" not in result.stderr
    assert folder_names(keys) == ["investigator-b.pub"]
    (keys / "investigator-b.pub").rmdir()
    again = cli("keys", "generate", "--name", "investigator-b")
    assert again.exit_code == 0, again.output
    assert folder_names(keys) == ["investigator-b.key", "investigator-b.pub"]


def test_keys_generate_for_a_colleague_into_a_folder(
    cli: Cli, evidence_home: Path, tmp_path: Path
) -> None:
    stick = tmp_path / "usb-stick"
    stick.mkdir()
    result = cli("keys", "generate", "--name", "colleague-b", "--out", stick)
    assert result.exit_code == 0, result.output
    assert folder_names(stick) == ["colleague-b.key", "colleague-b.pub"]
    assert not (evidence_home / "keys").exists()
    verifier = VerifierKey.from_note_text((stick / "colleague-b.pub").read_text().strip())
    assert result.stdout.strip() == verifier.to_note_text()
    # A file named .pub would clash with the public key written beside it.
    clash = cli("keys", "generate", "--name", "colleague-c", "--out", stick / "c.pub")
    assert clash.exit_code == 2 and ".pub" in clash.stderr
    assert folder_names(stick) == ["colleague-b.key", "colleague-b.pub"]


def test_keys_generate_out_that_names_neither_a_folder_nor_a_key_file_is_refused(
    cli: Cli, evidence_home: Path, tmp_path: Path
) -> None:
    # `--out keys-for-b` could be a folder to make or the key file itself: never guessed.
    out = tmp_path / "keys-for-b"
    refused = cli("keys", "generate", "--name", "colleague-b", "--out", out)
    assert refused.exit_code == 2, refused.output
    text = " ".join(refused.stderr.split())
    assert f"--out {out} names neither a folder nor a .key file" in text
    assert f"--out {out}/" in text and f"--out {out}.key" in text
    assert folder_names(tmp_path) == ["home"]
    as_folder = cli("keys", "generate", "--name", "colleague-b", "--out", f"{out}/")
    assert as_folder.exit_code == 0, as_folder.output
    assert folder_names(out) == ["colleague-b.key", "colleague-b.pub"]
    as_file = cli("keys", "generate", "--name", "colleague-c", "--out", f"{out}-c.key")
    assert as_file.exit_code == 0, as_file.output
    assert (tmp_path / "keys-for-b-c.key").is_file()
    # An existing folder needs no slash.
    again = cli("keys", "generate", "--name", "colleague-d", "--out", out)
    assert again.exit_code == 0, again.output
    assert "colleague-d.key" in folder_names(out)


def test_keys_generate_help_says_where_a_colleagues_key_goes(cli: Cli) -> None:
    result = cli("keys", "generate", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "colleague" in text and "--out" in text and "folder" in text
    assert "ending in /" in text and "ending in .key" in text


# --- choosing among several keys ------------------------------------------------------------


def test_a_colleagues_key_in_the_key_folder_is_never_guessed_and_is_named(
    cli: Cli, make_case: Callable[..., CaseHandle], evidence_home: Path
) -> None:
    case = make_case()
    generated = cli("keys", "generate", "--name", "colleague-b")
    assert generated.exit_code == 0, generated.output
    assert "note:" in generated.stderr and "--out" in generated.stderr
    colleague = VerifierKey.from_note_text(generated.stdout.strip())
    keys = evidence_home / "keys"
    enrolled = cli(
        "keys", "enrol", keys / "colleague-b.pub", "--case", case.root, "--key", case.key_path
    )
    assert enrolled.exit_code == 0, enrolled.output
    size = case.log_size()

    ambiguous = cli("log", "checkpoint", "--sign", "--case", case.root)
    assert ambiguous.exit_code == 2, ambiguous.output
    said = " ".join(ambiguous.stderr.split())
    for key_id, file in (
        (case.signer.verifier.key_id, "investigator-a.key"),
        (colleague.key_id, "colleague-b.key"),
    ):
        assert f"{key_id} ({file})" in said
    assert "--key" in said and "EVIDENCE_KEY" in said
    assert case.log_size() == size

    chosen = cli("log", "checkpoint", "--sign", "--case", case.root, "--key", case.key_path)
    assert chosen.exit_code == 0, chosen.output


def test_a_rotated_key_of_the_same_name_is_one_file_not_several(
    cli: Cli, make_case: Callable[..., CaseHandle], tmp_path: Path
) -> None:
    # A second key named like the first (made elsewhere, enrolled, not yet revoked): the key
    # folder still holds one file of that name, which is the one to sign with.
    case = make_case()
    rotated = signer_from_seed("investigator-a", seed_for("investigator-a, rotated"))
    pub = tmp_path / "new.pub"
    pub.write_text(rotated.verifier.to_note_text() + "\n")
    enrolled = cli("keys", "enrol", pub, "--case", case.root, "--key", case.key_path)
    assert enrolled.exit_code == 0, enrolled.output
    signed = cli("log", "checkpoint", "--sign", "--case", case.root)
    assert signed.exit_code == 0, signed.output
