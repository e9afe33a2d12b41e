"""Passphrase files are UTF-8 text: a byte order mark at the start is not part of the passphrase,
a file in UTF-16, UTF-32 or another encoding is refused by name, and a key made while a mark was
taken for part of the passphrase still opens.

Every key, name and passphrase here is fictional.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chain_of_custody import PassphraseError, load_signer, save_signer
from evidence import keystore
from evidence.errors import InputError
from evidence.protected import generate_recipient, load_recipient, save_recipient
from tests.conftest import PASSPHRASE, CaseHandle, CliResult, fixed_signer

Cli = Callable[..., CliResult]
BOM = b"\xef\xbb\xbf"
NEW_PASSPHRASE = "fictional new pass phrase 9"


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- what is read from the file ----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(BOM + PASSPHRASE.encode() + b"\r\n", id="bom-crlf"),
        pytest.param(BOM + PASSPHRASE.encode(), id="bom"),
        pytest.param(PASSPHRASE.encode() + b"\n", id="plain-lf"),
    ],
)
def test_the_passphrase_is_the_text_without_a_byte_order_mark_or_line_break(
    tmp_path: Path, data: bytes
) -> None:
    path = _file(tmp_path, "pass.txt", data)
    assert keystore.read_passphrase(path) == PASSPHRASE.encode()
    assert keystore.read_new_passphrase(path) == PASSPHRASE.encode()


def test_only_one_leading_mark_is_dropped(tmp_path: Path) -> None:
    # A mark inside the text is a character of the passphrase like any other.
    path = _file(tmp_path, "pass.txt", BOM + PASSPHRASE.encode() + BOM + b"\n")
    assert keystore.read_passphrase(path) == PASSPHRASE.encode() + BOM


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xff\xfe" + PASSPHRASE.encode("utf-16-le"), id="utf-16-le-bom"),
        pytest.param(b"\xfe\xff" + PASSPHRASE.encode("utf-16-be"), id="utf-16-be-bom"),
        pytest.param(PASSPHRASE.encode("utf-16-le"), id="utf-16-le-no-bom"),
        pytest.param(b"\xff\xfe\x00\x00" + PASSPHRASE.encode("utf-32-le"), id="utf-32-le-bom"),
        pytest.param(b"\x00\x00\xfe\xff" + PASSPHRASE.encode("utf-32-be"), id="utf-32-be-bom"),
        pytest.param("fictional pässphrase 7\n".encode("latin-1"), id="latin-1"),
        pytest.param(b"fictional pass\x00phrase\n", id="nul-byte"),
    ],
)
def test_a_file_that_is_not_utf8_text_is_refused_by_name(tmp_path: Path, data: bytes) -> None:
    path = _file(tmp_path, "pass.txt", data)
    for read in (keystore.read_passphrase, keystore.read_new_passphrase):
        with pytest.raises(InputError) as caught:
            read(path)
        assert str(path) in caught.value.message
        assert "not UTF-8 text" in caught.value.message
        assert "UTF-8" in caught.value.hint


def test_init_with_a_bom_file_then_sign_with_the_same_passphrase_typed_or_plain(
    cli: Cli, tmp_path: Path, evidence_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Notepad's or PowerShell 5.1's UTF-8 with a byte order mark, and a Windows line end.
    bom_file = _file(tmp_path, "pass-bom.txt", BOM + PASSPHRASE.encode() + b"\r\n")
    plain_file = _file(tmp_path, "pass-plain.txt", PASSPHRASE.encode() + b"\n")
    monkeypatch.delenv("EVIDENCE_PASSPHRASE")
    made = cli(
        "init",
        tmp_path / "case",
        "--case-id",
        "UA-BOM-0001",
        "--title",
        "Fictional",
        "--key-name",
        "inv-b",
        "--passphrase-file",
        bom_file,
    )
    assert made.exit_code == 0, made.output
    key = evidence_home / "keys" / "inv-b.key"
    assert load_signer(key, PASSPHRASE.encode()).name == "inv-b"
    signed = cli(
        "log", "checkpoint", "--sign", "--case", tmp_path / "case", "--passphrase-file", plain_file
    )
    assert signed.exit_code == 0, signed.output
    monkeypatch.setenv("EVIDENCE_PASSPHRASE", PASSPHRASE)
    signed = cli("log", "checkpoint", "--sign", "--case", tmp_path / "case")
    assert signed.exit_code == 0, signed.output
    assert "byte order mark" not in signed.stderr


def test_a_utf16_passphrase_file_stops_init_before_any_key_is_made(
    cli: Cli, tmp_path: Path, evidence_home: Path
) -> None:
    wide = _file(tmp_path, "pass-utf16.txt", b"\xff\xfe" + PASSPHRASE.encode("utf-16-le"))
    made = cli(
        "init",
        tmp_path / "case",
        "--case-id",
        "UA-BOM-0002",
        "--title",
        "Fictional",
        "--key-name",
        "inv-w",
        "--passphrase-file",
        wide,
    )
    assert made.exit_code == 2, made.output
    assert str(wide) in made.stderr and "UTF-8" in made.stderr
    assert not (evidence_home / "keys" / "inv-w.key").exists()
    assert not (tmp_path / "case").exists()


# --- keys made while the mark was part of the passphrase -------------------------------------


@pytest.fixture
def legacy_case(make_case: Callable[..., CaseHandle]) -> CaseHandle:
    """A case whose key file was encrypted under the passphrase with a mark before it, as
    ``init --passphrase-file`` of a file saved with one did before the mark was dropped."""
    case = make_case()
    case.key_path.unlink()
    save_signer(case.signer, case.key_path, BOM + PASSPHRASE.encode())
    return case


def test_a_key_made_with_the_mark_still_opens_and_the_user_is_told(
    cli: Cli, legacy_case: CaseHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # From the environment, from a plain file, from the same file with its mark.
    signed = cli("log", "checkpoint", "--sign", "--case", legacy_case.root)
    assert signed.exit_code == 0, signed.output
    said = " ".join(signed.stderr.split())
    assert f"key file {legacy_case.key_path}" in said and "byte order mark" in said
    assert "evidence keys passphrase" in said
    monkeypatch.delenv("EVIDENCE_PASSPHRASE")
    for data in (PASSPHRASE.encode() + b"\n", BOM + PASSPHRASE.encode() + b"\r\n"):
        given = _file(tmp_path, "pass.txt", data)
        signed = cli(
            "log", "checkpoint", "--sign", "--case", legacy_case.root, "--passphrase-file", given
        )
        assert signed.exit_code == 0, signed.output


def test_a_wrong_passphrase_still_fails_with_its_own_message(
    cli: Cli, legacy_case: CaseHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVIDENCE_PASSPHRASE", "not the fictional passphrase")
    result = cli("log", "checkpoint", "--sign", "--case", legacy_case.root)
    assert result.exit_code == 3, result.output
    assert "passphrase does not unlock" in result.stderr
    assert "byte order mark" not in result.stderr


def test_keys_passphrase_gives_a_key_made_with_the_mark_the_plain_passphrase(
    cli: Cli, legacy_case: CaseHandle, tmp_path: Path
) -> None:
    # The passphrase the user knows, now without the mark: not "the same as the current one".
    plain = _file(tmp_path, "plain.txt", PASSPHRASE.encode() + b"\n")
    changed = cli("keys", "passphrase", legacy_case.key_path, "--new-passphrase-file", plain)
    assert changed.exit_code == 0, changed.output
    assert "byte order mark" not in changed.stderr
    reopened = load_signer(legacy_case.key_path, PASSPHRASE.encode())
    assert reopened.verifier == legacy_case.signer.verifier
    with pytest.raises(PassphraseError):
        load_signer(legacy_case.key_path, BOM + PASSPHRASE.encode())
    signed = cli("log", "checkpoint", "--sign", "--case", legacy_case.root)
    assert signed.exit_code == 0, signed.output
    assert "byte order mark" not in signed.stderr


def test_a_recipient_key_made_with_the_mark_gets_a_new_passphrase_too(
    tmp_path: Path, evidence_home: Path
) -> None:
    path = tmp_path / "recipient.key"
    recipient = generate_recipient("prosecutor-b")
    save_recipient(recipient, path, BOM + PASSPHRASE.encode())
    plain = _file(tmp_path, "plain.txt", NEW_PASSPHRASE.encode() + b"\n")
    changed = keystore.change_passphrase(path, None, plain)
    assert changed.kind == "recipient key"
    assert load_recipient(path, NEW_PASSPHRASE.encode()).public == recipient.public


def test_init_with_an_existing_key_made_with_the_mark(
    cli: Cli, tmp_path: Path, evidence_home: Path
) -> None:
    key = tmp_path / "inv-k.key"
    save_signer(fixed_signer("inv-k"), key, BOM + PASSPHRASE.encode())
    made = cli(
        "init", tmp_path / "case", "--case-id", "UA-BOM-0003", "--title", "Fictional", "--key", key
    )
    assert made.exit_code == 0, made.output
    assert "byte order mark" in made.stderr
