"""Keys: key hashes and ids, text and PEM forms, encrypted key files."""

from __future__ import annotations

import base64
import hashlib
import os
import pickle
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chain_of_custody.errors import InputError, KeyFileError, PassphraseError
from chain_of_custody.keys import (
    Signer,
    VerifierKey,
    generate_signer,
    load_signer,
    note_key_hash,
    save_signer,
    signer_from_seed,
)
from chain_of_custody.secretfile import replace_secret_file

# The example key of golang.org/x/mod/sumdb/note: "PRIVATE+KEY+PeterNeumann+c74f20a3+<0x01||seed>"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
PASSPHRASE = b"correct horse battery staple"


def test_key_hash_matches_the_go_sumdb_note_example() -> None:
    signer = signer_from_seed("PeterNeumann", GO_SEED)
    assert signer.verifier.note_key_hash.hex() == "c74f20a3"
    assert signer.key_id == "PeterNeumann+c74f20a3"
    assert signer.verifier.to_note_text() == GO_VKEY


def test_key_hash_is_sha256_of_name_newline_type_and_key(investigator_a: Signer) -> None:
    pub = investigator_a.verifier.public_key
    expected = hashlib.sha256(b"investigator-a\n\x01" + pub).digest()[:4]
    assert note_key_hash("investigator-a", pub) == expected
    assert investigator_a.key_id == f"investigator-a+{expected.hex()}"


def test_note_text_round_trip(investigator_a: Signer) -> None:
    key = investigator_a.verifier
    assert VerifierKey.from_note_text(key.to_note_text()) == key
    assert VerifierKey.from_note_text(GO_VKEY).name == "PeterNeumann"


BAD_NOTE_KEYS = [
    ("two parts", "PeterNeumann+c74f20a3"),
    ("wrong hash", "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
    ("uppercase hash", "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
    ("short hash", "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
    ("wrong name", "PeterNeuman+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
    ("other type", "PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
    ("short key", "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10"),
    ("bad base64", "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T!"),
    ("empty name", "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
    ("empty", ""),
]


@pytest.mark.parametrize("text", [t for _, t in BAD_NOTE_KEYS], ids=[n for n, _ in BAD_NOTE_KEYS])
def test_bad_note_key_text_is_refused(text: str) -> None:
    with pytest.raises(InputError):
        VerifierKey.from_note_text(text)


def test_every_truncation_of_the_go_key_is_refused() -> None:
    for end in range(len(GO_VKEY)):
        with pytest.raises(InputError):
            VerifierKey.from_note_text(GO_VKEY[:end])


BAD_NAMES = [
    ("empty", ""),
    ("space", "investigator a"),
    ("tab", "investigator\ta"),
    ("plus", "investigator+a"),
    ("control", "investigator\x00"),
    ("nbsp", "investigator\u00a0a"),
    ("too long", "x" * 65),
]


@pytest.mark.parametrize("name", [n for _, n in BAD_NAMES], ids=[i for i, _ in BAD_NAMES])
def test_bad_key_names_are_refused(name: str) -> None:
    with pytest.raises(InputError):
        signer_from_seed(name, bytes(32))


def test_unicode_and_url_names_are_accepted() -> None:
    assert signer_from_seed("слідчий-1", bytes(32)).name == "слідчий-1"
    assert signer_from_seed("example.org/case-log", bytes(32)).name == "example.org/case-log"


def test_pem_round_trip(investigator_a: Signer) -> None:
    key = investigator_a.verifier
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert VerifierKey.from_pem("investigator-a", pem) == key


def test_pem_of_other_key_type_is_refused() -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InputError, match="not an Ed25519"):
        VerifierKey.from_pem("p256", pem)
    with pytest.raises(InputError):
        VerifierKey.from_pem("garbage", b"not a pem")


def test_sign_and_verify(investigator_a: Signer, investigator_b: Signer) -> None:
    sig = investigator_a.sign(b"message")
    assert investigator_a.verifier.verify(sig, b"message")
    assert not investigator_a.verifier.verify(sig, b"messagE")
    assert not investigator_b.verifier.verify(sig, b"message")
    assert not investigator_a.verifier.verify(sig[:-1], b"message")


def test_signer_is_not_picklable_and_repr_has_no_secret(investigator_a: Signer) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(investigator_a)
    assert repr(investigator_a) == f"Signer({investigator_a.key_id!r})"
    # A verifier key is a plain value and travels to worker processes.
    assert pickle.loads(pickle.dumps(investigator_a.verifier)) == investigator_a.verifier  # noqa: S301 - own bytes


def test_generated_signers_differ() -> None:
    assert generate_signer("a").verifier != generate_signer("a").verifier


# --- key files ---------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path: Path, investigator_a: Signer) -> None:
    path = tmp_path / "investigator-a.key"
    save_signer(investigator_a, path, PASSPHRASE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_bytes()
    assert content.startswith(b"Key-Name: investigator-a\nPublic-Key: investigator-a+")
    assert b"\n-----BEGIN ENCRYPTED PRIVATE KEY-----\n" in content
    assert PASSPHRASE not in content
    loaded = load_signer(path, PASSPHRASE)
    assert loaded.verifier == investigator_a.verifier
    assert loaded.name == "investigator-a"
    assert [p.name for p in tmp_path.iterdir()] == ["investigator-a.key"]  # no temp file left


def test_save_refuses_to_overwrite(tmp_path: Path, investigator_a: Signer) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(b"precious")
    with pytest.raises(KeyFileError, match="already exists"):
        save_signer(investigator_a, path, PASSPHRASE)
    assert path.read_bytes() == b"precious"


def test_save_refuses_empty_passphrase(tmp_path: Path, investigator_a: Signer) -> None:
    with pytest.raises(InputError):
        save_signer(investigator_a, tmp_path / "k.key", b"")
    assert not (tmp_path / "k.key").exists()


def test_save_into_missing_directory(tmp_path: Path, investigator_a: Signer) -> None:
    with pytest.raises(KeyFileError):
        save_signer(investigator_a, tmp_path / "missing" / "k.key", PASSPHRASE)


def test_save_ignores_a_permissive_umask(tmp_path: Path, investigator_a: Signer) -> None:
    old = os.umask(0)
    try:
        save_signer(investigator_a, tmp_path / "k.key", PASSPHRASE)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600


@pytest.fixture
def key_file(tmp_path: Path, investigator_a: Signer) -> Path:
    path = tmp_path / "investigator-a.key"
    save_signer(investigator_a, path, PASSPHRASE)
    return path


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660], ids=oct)
def test_load_refuses_open_permissions(key_file: Path, mode: int) -> None:
    key_file.chmod(mode)
    with pytest.raises(KeyFileError) as caught:
        load_signer(key_file, PASSPHRASE)
    assert str(key_file) in caught.value.message
    assert "chmod 600" in caught.value.hint


def test_wrong_passphrase(key_file: Path) -> None:
    with pytest.raises(PassphraseError) as caught:
        load_signer(key_file, b"wrong passphrase")
    text = caught.value.diagnostics()
    assert str(key_file) in text
    assert "wrong passphrase" not in text
    assert PASSPHRASE.decode() not in text


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_signer(tmp_path / "nope.key", PASSPHRASE)


def _corrupt(content: bytes, case: str) -> bytes:
    lines = content.split(b"\n")
    if case == "no name line":
        return b"\n".join(lines[1:])
    if case == "truncated":
        return content[: len(content) // 2]
    if case == "bad base64":
        lines[3] = b"!!!!" + lines[3][4:]
        return b"\n".join(lines)
    if case == "der length":
        body = base64.b64decode(b"".join(lines[2:-2]))
        return b"\n".join([*lines[:2], base64.b64encode(body[:-1]), *lines[-2:]])
    if case == "empty":
        return b""
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["no name line", "truncated", "bad base64", "der length", "empty"])
def test_corrupt_key_file(key_file: Path, case: str) -> None:
    key_file.write_bytes(_corrupt(key_file.read_bytes(), case))
    with pytest.raises(KeyFileError):
        load_signer(key_file, PASSPHRASE)


def _write_private(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)


def test_non_ed25519_key_file(tmp_path: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE),
    )
    path = tmp_path / "p256.key"
    _write_private(path, b"Key-Name: p256\n" + pem)
    with pytest.raises(KeyFileError, match="not an Ed25519 key"):
        load_signer(path, PASSPHRASE)


def test_unencrypted_key_file_is_refused(tmp_path: Path, investigator_a: Signer) -> None:
    pem = investigator_a._private.private_bytes(  # test reaches in to build the bad file
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "plain.key"
    _write_private(path, b"Key-Name: investigator-a\n" + pem)
    with pytest.raises(KeyFileError, match="unencrypted"):
        load_signer(path, PASSPHRASE)


def test_bad_name_in_key_file(key_file: Path) -> None:
    content = key_file.read_bytes().replace(b"Key-Name: investigator-a", b"Key-Name: a+b", 1)
    key_file.write_bytes(content)
    with pytest.raises(KeyFileError):
        load_signer(key_file, PASSPHRASE)


def test_key_file_without_public_key_line_is_refused(key_file: Path) -> None:
    lines = key_file.read_bytes().split(b"\n")
    key_file.write_bytes(b"\n".join(line for line in lines if not line.startswith(b"Public-Key:")))
    with pytest.raises(KeyFileError, match="Public-Key"):
        load_signer(key_file, PASSPHRASE)


# --- replacing a key file: one rename, and never over a file that changed -------------------------


def test_replace_puts_the_finished_file_in_place_in_one_rename(
    key_file: Path, investigator_a: Signer
) -> None:
    previous = key_file.read_bytes()
    finished = key_file.parent / ".investigator-a.key.new"
    save_signer(investigator_a, finished, b"another fictional passphrase")
    replacement = finished.read_bytes()
    inode = finished.stat().st_ino
    replace_secret_file(finished, key_file, previous)
    assert key_file.read_bytes() == replacement
    assert key_file.stat().st_ino == inode  # renamed, not copied
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not finished.exists()
    assert load_signer(key_file, b"another fictional passphrase").verifier == (
        investigator_a.verifier
    )


def test_replace_refuses_a_key_file_that_changed_meanwhile(
    key_file: Path, investigator_a: Signer
) -> None:
    previous = key_file.read_bytes()
    finished = key_file.parent / ".investigator-a.key.new"
    save_signer(investigator_a, finished, b"another fictional passphrase")
    with key_file.open("ab") as handle:
        handle.write(b"\n")
    with pytest.raises(KeyFileError, match="changed while") as caught:
        replace_secret_file(finished, key_file, previous)
    assert str(key_file) in caught.value.message
    assert key_file.read_bytes() == previous + b"\n"
    assert finished.exists()
