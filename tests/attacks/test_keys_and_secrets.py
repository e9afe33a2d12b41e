"""Private keys and passphrases: file modes, clean refusals, and never a passphrase in sight.

Passphrases come from a prompt, ``--passphrase-file`` or ``EVIDENCE_PASSPHRASE``; no option
takes one as a value (it would show in ``ps`` and shell history). A wrong passphrase changes
nothing in the case. No output, error or key file shows the passphrase.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography.hazmat.primitives import serialization

from chain_of_custody import KeyFileError, PassphraseError, load_signer, save_signer
from evidence.cli import app
from tests.conftest import CaseHandle, CliResult, fixed_signer, seed_for, sha256_of

Cli = Callable[..., CliResult]
SECRET = "Unmistakable-Secret-Phrase-4242"


def _all_options() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []

    def walk(command: Any, path: str) -> None:
        for param in command.params:
            found.append((path, param))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return found


def test_no_option_takes_a_passphrase_as_a_value() -> None:
    passphrase_options = []
    for path, param in _all_options():
        for name in getattr(param, "opts", []):
            lowered = name.lower()
            if any(word in lowered for word in ("pass", "secret", "pin", "password")):
                passphrase_options.append((path, name))
    assert passphrase_options, "the --passphrase-file option should exist"
    # Passphrases come from files (or the environment or a prompt), never as a value.
    assert {name for _, name in passphrase_options} == {
        "--passphrase-file",
        "--new-passphrase-file",
        "--recipient-passphrase-file",
    }


@pytest.mark.parametrize("option", ["--passphrase", "--password", "--pass"])
def test_a_passphrase_option_is_refused(
    cli: Cli, make_case: Callable[..., CaseHandle], option: str
) -> None:
    case = make_case()
    result = cli("log", "checkpoint", "--sign", "--case", case.root, option, SECRET)
    assert result.exit_code == 2
    assert SECRET not in result.output


# --- key files -----------------------------------------------------------------------------


def test_key_files_are_written_0600_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        path = tmp_path / "a.key"
        save_signer(fixed_signer(), path, SECRET.encode())
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in content
    assert SECRET.encode() not in content
    assert seed_for("investigator-a") not in content
    assert not [p for p in tmp_path.iterdir() if p.name != "a.key"], "temporary file left"


def test_cli_key_files_are_0600(cli: Cli, tmp_path: Path, evidence_home: Path) -> None:
    previous = os.umask(0)
    try:
        assert cli("init", tmp_path / "c", "--case-id", "C-1", "--title", "T").exit_code == 0
        assert cli("keys", "generate", "--name", "investigator-b").exit_code == 0
    finally:
        os.umask(previous)
    keys = evidence_home / "keys"
    for name in ("investigator.key", "investigator-b.key"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.stat().st_mode) & 0o077 == 0
    # The case directory carries no private key, so a seized or copied case signs nothing.
    for path in (tmp_path / "c").rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("mode", "accepted"),
    [
        pytest.param(0o600, True, id="0600"),
        pytest.param(0o400, True, id="0400"),
        pytest.param(0o640, False, id="0640-group-read"),
        pytest.param(0o620, False, id="0620-group-write"),
        pytest.param(0o604, False, id="0604-world-read"),
        pytest.param(0o644, False, id="0644"),
        pytest.param(0o660, False, id="0660"),
        pytest.param(0o666, False, id="0666"),
        pytest.param(0o601, False, id="0601-world-execute"),
    ],
)
def test_key_file_modes(tmp_path: Path, mode: int, accepted: bool) -> None:
    path = tmp_path / "a.key"
    save_signer(fixed_signer(), path, SECRET.encode())
    path.chmod(mode)
    if accepted:
        assert load_signer(path, SECRET.encode()).key_id == fixed_signer().key_id
    else:
        with pytest.raises(KeyFileError) as caught:
            load_signer(path, SECRET.encode())
        assert f"{mode:04o}" in caught.value.message
        assert "chmod 600" in caught.value.hint


def test_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    save_signer(fixed_signer(), path, SECRET.encode())
    before = path.read_bytes()
    with pytest.raises(KeyFileError):
        save_signer(fixed_signer("investigator-b"), path, SECRET.encode())
    assert path.read_bytes() == before


def _with_scrypt_cost_raised(content: bytes) -> bytes:
    """A toolkit key file altered to ask scrypt for r = 127 and p = 127 (its own are 8 and 5):
    some 400 times the work, over a minute to unlock, or a minute per guess."""
    head, pem = content.split(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    der = base64.b64decode(pem.split(b"-----END")[0])
    # N = 2^14, r = 8, p = 5 as DER writes them; the same lengths keep the structure intact.
    toolkit_cost = bytes.fromhex("02024000 020108 020105")
    assert der.count(toolkit_cost) == 1
    der = der.replace(toolkit_cost, bytes.fromhex("02024000 02017f 02017f"))
    return (
        head
        + b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        + base64.encodebytes(der)
        + b"-----END ENCRYPTED PRIVATE KEY-----\n"
    )


def test_a_key_file_handed_over_with_a_ruinous_scrypt_cost_is_refused_at_once(
    cli: Cli,
    make_case: Callable[..., CaseHandle],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    case = make_case()
    handed_over = tmp_path / "handed-over.key"
    fd = os.open(handed_over, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(_with_scrypt_cost_raised(case.key_path.read_bytes()))
    before = _snapshot(case.root)
    derived: list[bytes] = []

    def recorded(data: bytes, password: bytes | None, *args: object, **kwargs: object) -> None:
        derived.append(data)
        raise ValueError("recorded instead of derived")

    monkeypatch.setattr(serialization, "load_pem_private_key", recorded)
    monkeypatch.setattr(serialization, "load_der_private_key", recorded)
    monkeypatch.setenv("EVIDENCE_PASSPHRASE", SECRET)
    new = tmp_path / "new-passphrase.txt"
    new.write_text("Another-" + SECRET)
    for args in (
        ("log", "checkpoint", "--sign", "--case", case.root, "--key", handed_over),
        ("keys", "passphrase", handed_over, "--new-passphrase-file", new),
    ):
        result = cli(*args)
        assert result.exit_code == 3, result.output
        said = " ".join(result.stderr.split())
        assert str(handed_over) in said
        assert "beyond what this toolkit accepts" in said
        assert "restore the key file from a backup" in said
        assert "Traceback" not in result.output
        assert SECRET not in result.output
    assert derived == [], "scrypt was started on the altered key file"
    assert _snapshot(case.root) == before


def test_wrong_passphrase_is_a_passphrase_error(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    save_signer(fixed_signer(), path, SECRET.encode())
    with pytest.raises(PassphraseError) as caught:
        load_signer(path, b"Wrong-" + SECRET.encode())
    assert SECRET not in caught.value.message + caught.value.hint


# --- a wrong passphrase writes nothing -----------------------------------------------------


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


SIGNING_COMMANDS = [
    pytest.param(("ingest", "-r", "{corpus}"), id="ingest"),
    pytest.param(("transfer", "{item}", "--to", "{key}", "--reason", "r"), id="transfer"),
    pytest.param(("open", "{item}", "--to", "{out}", "--purpose", "p"), id="open"),
    pytest.param(("keys", "revoke", "{key}", "--reason", "r"), id="keys-revoke"),
    pytest.param(("log", "checkpoint", "--sign"), id="log-checkpoint-sign"),
]


@pytest.mark.parametrize("args", SIGNING_COMMANDS)
def test_wrong_passphrase_fails_cleanly_with_no_partial_write(
    cli: Cli,
    make_case: Callable[..., CaseHandle],
    make_corpus: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: tuple[str, ...],
) -> None:
    case = make_case()
    corpus = make_corpus(4)
    assert cli("ingest", "--case", case.root, "-r", corpus).exit_code == 0
    item = sha256_of(sorted(corpus.iterdir())[0])
    out = tmp_path / "out"
    out.mkdir()
    filled = [
        a.format(corpus=make_corpus(3, seed=8), item=item, key=case.signer.key_id, out=out)
        for a in args
    ]
    before = _snapshot(case.root)
    monkeypatch.setenv("EVIDENCE_PASSPHRASE", SECRET)
    result = cli(*filled, "--case", case.root)
    assert result.exit_code == 3, result.output
    assert "passphrase does not unlock" in result.stderr
    assert SECRET not in result.output
    assert _snapshot(case.root) == before
    assert list(out.iterdir()) == []


# --- the passphrase never shows --------------------------------------------------------------


def test_passphrase_never_appears_in_any_output(
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_corpus: Callable[..., Path],
) -> None:
    monkeypatch.setenv("EVIDENCE_PASSPHRASE", SECRET)
    case = tmp_path / "case"
    corpus = make_corpus(3)
    secret_file = tmp_path / "pass.txt"
    secret_file.write_text(SECRET + "\n")
    outputs = [
        cli("init", case, "--case-id", "C-1", "--title", "T"),
        cli("ingest", "--case", case, "-r", corpus, "--json"),
        cli("--debug", "ingest", "--case", case, "-r", corpus),
        cli("log", "show", "--case", case, "--json"),
        cli("verify", "--case", case, "--json"),
        cli("keys", "list", "--case", case, "--json"),
        cli("log", "checkpoint", "--sign", "--case", case, "--passphrase-file", secret_file),
    ]
    monkeypatch.setenv("EVIDENCE_PASSPHRASE", "Wrong-" + SECRET)
    outputs += [
        cli("log", "checkpoint", "--sign", "--case", case),
        cli("--debug", "log", "checkpoint", "--sign", "--case", case),
    ]
    secret_file.write_text("Wrong-" + SECRET)
    outputs.append(
        cli("--debug", "ingest", "--case", case, "-r", corpus, "--passphrase-file", secret_file)
    )
    assert [r.exit_code for r in outputs] == [0, 0, 0, 0, 0, 0, 0, 3, 3, 3]
    for result in outputs:
        assert SECRET not in result.output
    # Nor is it anywhere in the case directory.
    for path in case.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
