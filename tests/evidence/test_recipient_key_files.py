"""Reading a recipient's public key from a file: wrong files are named, never quoted.

``keys recipient add --public-key FILE`` and ``export --profile otp --recipient FILE`` read the
file with :func:`evidence.recipients.read_public_key`. A file given by mistake (a testimony with
an identity block, a private key) is refused with a message that names the file and says which
file to give, without quoting a word of it. Every name and value here is fictional.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from evidence.errors import InputError
from evidence.protected import RecipientKey, generate_recipient, save_recipient
from evidence.recipients import read_public_key
from tests.conftest import CaseHandle, CliResult

Cli = Callable[..., CliResult]

MARKER = "Fictional Protected-Name-MARKER"
TESTIMONY = f'witness_code: W-555\nidentity:\n  name: {MARKER}\n  contact: "+000 11 / +000 22"\n'
KEY = RecipientKey.from_private_bytes("otp-unit-5", bytes([0x55]) * 32)


def _said(error: InputError) -> str:
    return f"{error.diagnostics()} {error!r}"


def test_a_public_key_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "otp-unit-5.pub"
    path.write_text(KEY.public.to_text() + "\n", encoding="utf-8")
    assert read_public_key(path) == KEY.public
    pem = tmp_path / "otp-unit-5.pem"
    pem.write_bytes(KEY.public.to_pem())
    assert read_public_key(pem, "otp-unit-5") == KEY.public


def test_a_testimony_given_as_a_public_key_is_named_not_quoted(tmp_path: Path) -> None:
    path = tmp_path / "wrong-file.yaml"
    path.write_text(TESTIMONY, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_public_key(path)
    error = caught.value
    assert error.message.startswith(f"{path}: not a recipient public key")
    assert "Protected-Name-MARKER" not in _said(error)
    assert "W-555" not in _said(error)
    assert "keys export" not in _said(error)
    assert ".pub" in (error.hint or "")
    assert "evidence keys recipient list" in (error.hint or "")


def test_a_private_recipient_key_file_points_to_its_pub_file(tmp_path: Path) -> None:
    key = generate_recipient("otp-unit-6")
    path = tmp_path / "otp-unit-6.key"
    save_recipient(key, path, b"fictional passphrase for tests")
    with pytest.raises(InputError) as caught:
        read_public_key(path)
    assert caught.value.message.startswith(f"{path}: is a private recipient key file")
    assert str(tmp_path / "otp-unit-6.pub") in (caught.value.hint or "")


def test_a_private_pem_key_is_refused_as_such(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(InputError, match=r"is a private key \(PEM\)"):
        read_public_key(path, "otp-unit-7")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda p: p.mkdir(), "not a file", id="directory"),
        pytest.param(lambda p: None, "cannot read the recipient public key", id="missing"),
        pytest.param(lambda p: p.write_bytes(b"\xff\xfe\x00" * 10), "(not text)", id="binary"),
        pytest.param(lambda p: p.write_text(f"{MARKER}+x\n" * 5000), "too large", id="too-large"),
    ],
)
def test_other_wrong_files_are_named(
    tmp_path: Path, make: Callable[[Path], object], message: str
) -> None:
    path = tmp_path / "given"
    make(path)
    with pytest.raises(InputError) as caught:
        read_public_key(path)
    assert caught.value.message.startswith(f"{path}: ")
    assert message in caught.value.message
    assert "MARKER" not in _said(caught.value)


def test_recipient_add_with_a_wrong_file(
    cli: Cli, make_case: Callable[..., CaseHandle], tmp_path: Path
) -> None:
    case = make_case()
    wrong = tmp_path / "wrong-file.yaml"
    wrong.write_text(TESTIMONY, encoding="utf-8")
    size = case.log_size()
    result = cli("keys", "recipient", "add", "p-y", "--public-key", wrong, "--case", case.root)
    assert result.exit_code == 2, result.output
    assert f"{wrong}: not a recipient public key" in " ".join(result.stderr.split())
    assert "MARKER" not in result.output and "W-555" not in result.output
    assert case.log_size() == size
