"""A private key of the case is never ingested, wherever it lies; a seized key may be evidence.

A key file of this toolkit names its public key in a header line, readable without the
passphrase: a copy of an enrolled signing key (active or revoked) or of a recipient key of the
case, met on a stick among the material, is refused by its content (``case-private-key``) and
the rest of the batch is ingested. A private key the case does not know (one seized from a
suspect's device, say) and the public key files are ingested like any other file. ``keys
generate --out`` writes into a folder when the path ends in a slash, and never into a case.
Every name, key and case here is fictional.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chain_of_custody import signer_from_seed
from evidence.ingest import key_file_public
from evidence.verify import verify_case
from tests.conftest import CaseHandle, CliResult, seed_for, write_corpus

Cli = Callable[..., CliResult]


def _generate(cli: Cli, name: str, out: Path | str) -> str:
    """Make a key with ``keys generate --out``; return its key id."""
    made = cli("keys", "generate", "--name", name, "--out", out)
    assert made.exit_code == 0, made.output
    return "+".join(made.stdout.strip().split("+")[:2])


def _seized_pem() -> bytes:
    # An unencrypted Ed25519 key of a fictional suspect, as found on a seized laptop.
    private = Ed25519PrivateKey.from_private_bytes(seed_for("suspect-laptop"))
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize("documents", [3, 90], ids=["threads", "worker-processes"])
def test_private_keys_of_the_case_are_refused_wherever_they_are(
    cli: Cli,
    make_case: Callable[..., CaseHandle],
    evidence_home: Path,
    tmp_path: Path,
    documents: int,
) -> None:
    case = make_case()
    usb = tmp_path / "usb"
    usb.mkdir()
    # A colleague's key, made on the stick and enrolled; another enrolled, then revoked.
    _generate(cli, "inv-b", usb)
    enrolled = cli("keys", "enrol", usb / "inv-b.pub", "--case", case.root)
    assert enrolled.exit_code == 0, enrolled.output
    revoked_id = _generate(cli, "inv-c", f"{tmp_path}/elsewhere/")
    enrolled = cli("keys", "enrol", tmp_path / "elsewhere" / "inv-c.pub", "--case", case.root)
    assert enrolled.exit_code == 0, enrolled.output
    revoked = cli("keys", "revoke", revoked_id, "--reason", "laptop lost", "--case", case.root)
    assert revoked.exit_code == 0, revoked.output
    shutil.copy2(tmp_path / "elsewhere" / "inv-c.key", usb / "old-inv-c.key")
    # The case's recipient key and the investigator's own key, copied to the stick.
    added = cli("keys", "recipient", "add", "prosecutor-z", "--case", case.root)
    assert added.exit_code == 0, added.output
    shutil.copy2(evidence_home / "recipients" / "prosecutor-z.key", usb / "recipient-copy.key")
    shutil.copy2(case.key_path, usb / "backup.key")
    # Keys the case does not know: seized material, ingested like any other file.
    _generate(cli, "suspect-k", f"{usb}/seized/")
    (usb / "seized" / "id_ed25519").write_bytes(_seized_pem())
    write_corpus(usb / "docs", documents)

    result = cli("ingest", "--case", case.root, "--recursive", usb, "--json")

    # Refused inputs of a batch give exit code 1 (SPEC section 9); the rest is ingested.
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    refused = sorted((Path(r["path"]).name, r["code"]) for r in report["refused"])
    assert refused == [
        ("backup.key", "case-private-key"),
        ("inv-b.key", "case-private-key"),
        ("old-inv-c.key", "case-private-key"),
        ("recipient-copy.key", "case-private-key"),
    ]
    names = sorted(Path(f["path"]).name for f in report["files"] if f["status"] == "ingested")
    assert "inv-b.pub" in names
    assert {"suspect-k.key", "suspect-k.pub", "id_ed25519"} <= set(names)
    assert len(names) == documents + 4
    message = f"refused: {usb / 'inv-b.key'}: is a private key of this case"
    assert message in result.stderr
    assert "a private key of the case is never evidence: keep it safe" in result.stderr
    for name in ["inv-b.key", "old-inv-c.key", "recipient-copy.key", "backup.key"]:
        assert not case.stores((usb / name).read_bytes()), name
    assert case.stores((usb / "seized" / "suspect-k.key").read_bytes())
    # No copy of a refused key was left behind in the store, staged or named.
    leftovers = [p for p in (case.root / "objects").rglob("*") if p.is_file()]
    assert len(leftovers) == documents + 4
    opened = case.open()
    try:
        assert verify_case(opened).ok
    finally:
        opened.close()


def test_key_file_public_reads_only_key_files_of_this_toolkit(tmp_path: Path) -> None:
    signer = signer_from_seed("inv-d", seed_for("inv-d"))
    note = signer.verifier.to_note_text()
    pem = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
    head = f"Key-Name: inv-d\nPublic-Key: {note}\n".encode() + pem
    assert key_file_public(head) == b"ed25519:" + signer.verifier.public_key
    # Carried through a system that ends lines with CR LF, it is still recognised.
    assert key_file_public(head.replace(b"\n", b"\r\n")) == b"ed25519:" + signer.verifier.public_key
    # A note quoting the header lines, a public key file and a damaged key line are not keys.
    assert (
        key_file_public(f"Key-Name: inv-d\nPublic-Key: {note}\nseen on a stick\n".encode()) is None
    )
    assert key_file_public(f"{note}\n".encode()) is None
    assert key_file_public(f"Key-Name: inv-d\nPublic-Key: {note[:-4]}\n".encode() + pem) is None


# --- keys generate --out ----------------------------------------------------------------------


def test_out_ending_in_a_slash_is_a_folder_created_for_the_key(cli: Cli, tmp_path: Path) -> None:
    usb = tmp_path / "usb"
    usb.mkdir()
    made = cli("keys", "generate", "--name", "inv-b", "--out", f"{usb}/newdir/")
    assert made.exit_code == 0, made.output
    assert sorted(p.name for p in usb.iterdir()) == ["newdir"]
    folder = usb / "newdir"
    assert folder.is_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == ["inv-b.key", "inv-b.pub"]
    assert f"private key: {folder / 'inv-b.key'}" in made.stderr


def test_out_inside_a_case_folder_is_refused(
    cli: Cli,
    make_case: Callable[..., CaseHandle],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = make_case()
    before = sorted(os.fspath(p) for p in case.root.rglob("*"))
    outs: list[Path | str] = [
        case.root,
        case.root / "objects",
        case.root / "inv-b.key",
        f"{case.root}/keys/new/",
        tmp_path / "link-to-case" / "inv-b.key",
    ]
    (tmp_path / "link-to-case").symlink_to(case.root)
    for out in outs:
        refused = cli("keys", "generate", "--name", "inv-b", "--out", out)
        assert refused.exit_code == 2, (out, refused.output)
        assert f"inside the case folder {case.root}" in refused.stderr, out
        assert "keys are kept outside cases" in refused.stderr
    # From inside the case, as commands find their case by the current folder.
    monkeypatch.chdir(case.root / "objects")
    refused = cli("keys", "generate", "--name", "inv-b", "--out", ".")
    assert refused.exit_code == 2, refused.output
    assert sorted(os.fspath(p) for p in case.root.rglob("*")) == before
