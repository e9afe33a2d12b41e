"""audit_bundle: a clean bundle passes; each tampering and each hostile zip is named."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import subprocess
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chain_of_custody import (
    Checkpoint,
    Finding,
    MemoryTree,
    Signer,
    VerifierKey,
    parse_note,
    sign_checkpoint,
    signer_from_seed,
    verify_consistency,
)
from exports.audit import (
    AuditReport,
    KeyMaterial,
    ZipLimits,
    audit_bundle,
    format_consistency_proof,
    load_since_checkpoint,
    load_trusted_key,
    parse_consistency_proof,
)
from tests.conftest import run_unprivileged
from tests.exports.casebuilder import (
    investigator_signer,
)

STRANGER = signer_from_seed("investigator-a", bytes(range(1, 33)))  # same name, other key
OTHER = signer_from_seed("someone-else", bytes(range(2, 34)))


TRUSTED = [investigator_signer().verifier]


def codes(report: AuditReport) -> set[str]:
    return {f.code for f in report.findings}


def rebag(root: Path, signer: Signer) -> None:
    """Rewrite manifests, tag manifest and signature as a forger holding ``signer`` would."""
    files = sorted(
        p.relative_to(root).as_posix() for p in (root / "data").rglob("*") if p.is_file()
    )
    for alg in ("sha256", "sha512"):
        lines = [f"{hashlib.new(alg, (root / f).read_bytes()).hexdigest()}  {f}\n" for f in files]
        (root / f"manifest-{alg}.txt").write_text("".join(lines), encoding="utf-8")
    size = sum((root / f).stat().st_size for f in files)
    info = (root / "bag-info.txt").read_text(encoding="utf-8").splitlines()
    info = [
        f"Payload-Oxum: {size}.{len(files)}" if i.startswith("Payload-Oxum:") else i for i in info
    ]
    (root / "bag-info.txt").write_text("\n".join(info) + "\n", encoding="utf-8")
    tags = ["bag-info.txt", "bagit.txt", "manifest-sha256.txt", "manifest-sha512.txt"]
    manifest = "".join(
        f"{hashlib.sha256((root / t).read_bytes()).hexdigest()}  {t}\n" for t in tags
    ).encode()
    (root / "tagmanifest-sha256.txt").write_bytes(manifest)
    signature = signer.sign(manifest)
    (root / "tagmanifest-sha256.txt.sig").write_bytes(signature)
    (root / "tagmanifest-sha256.txt.sig.b64").write_bytes(base64.b64encode(signature) + b"\n")


def _original(root: Path, suffix: str) -> Path:
    return next(p for p in (root / "data/originals").iterdir() if p.name.endswith(suffix))


def test_clean_bundle_passes(exported: tuple[Path, Path, bytes, bytes]) -> None:
    report = audit_bundle(exported[0], TRUSTED)
    assert report.ok, report.findings
    assert report.warnings == []
    assert report.originals == 3 and report.proofs == 3 and report.leaves > 3
    assert report.event_proofs == report.leaves


def test_clean_zip_passes(exported: tuple[Path, Path, bytes, bytes]) -> None:
    assert audit_bundle(exported[1], TRUSTED).ok


def test_without_trust_the_bundle_keys_are_used_and_said_so(
    exported: tuple[Path, Path, bytes, bytes],
) -> None:
    report = audit_bundle(exported[0], [])
    assert report.ok
    assert any("trusting the bundle's own keys" in w for w in report.warnings)


def _change_original_byte(root: Path) -> None:
    path = _original(root, ".png")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def _remove_original(root: Path) -> None:
    _original(root, ".png").unlink()


def _add_file(root: Path) -> None:
    (root / "data" / "originals" / "UATEST-999999_added.txt").write_text("added\n")


def _edit_manifest(root: Path) -> None:
    path = root / "manifest-sha256.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] = "0" * 64 + lines[0][64:]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _edit_leaf(root: Path) -> None:
    path = sorted((root / "data/custody/events").iterdir())[-1]
    path.write_bytes(path.read_bytes().replace(b'"action":"', b'"action":"x', 1))


def _foreign_proof(root: Path) -> None:
    proofs = sorted((root / "data/custody/proofs").iterdir())
    proofs[0].write_bytes(proofs[1].read_bytes())


def _untrusted_checkpoint(root: Path) -> None:
    path = root / "data/custody/checkpoint.txt"
    checkpoint = Checkpoint.from_text(parse_note(path.read_bytes()).text)
    path.write_bytes(sign_checkpoint(checkpoint, [STRANGER]))


def _swap_signature(root: Path) -> None:
    manifest = (root / "tagmanifest-sha256.txt").read_bytes()
    (root / "tagmanifest-sha256.txt.sig").write_bytes(STRANGER.sign(manifest))


def _edit_bag_info(root: Path) -> None:
    path = root / "bag-info.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("restricted", "otp"))


def _manifest_outside(root: Path) -> None:
    with (root / "manifest-sha256.txt").open("a", encoding="utf-8") as out:
        out.write(f"{'a' * 64}  data/../../outside.txt\n")


def _symlink_in_bag(root: Path) -> None:
    os.symlink("/etc/hostname", root / "data" / "link.txt")


def _renumber_original(root: Path) -> None:
    """Give the photo another ERN: its original and its proof file, as an insider would."""
    original = _original(root, ".png")
    ern = original.name.split("_", 1)[0]
    original.rename(original.with_name(original.name.replace(ern, "UATEST-000042", 1)))
    proof = root / "data/custody/proofs" / f"{ern}.proof"
    proof.rename(proof.with_name("UATEST-000042.proof"))


def _remove_ern_assignments(root: Path) -> None:
    for path in (root / "data/custody/events").iterdir():
        if b'"action":"ern.assigned"' in path.read_bytes():
            path.unlink()


def _leaf_of_other_case(root: Path) -> None:
    path = sorted((root / "data/custody/events").iterdir())[0]
    path.write_bytes(path.read_bytes().replace(b'"seq":0', b'"seq":1', 1))


def _drop_record(root: Path) -> None:
    """Take the photo out of the bundle, its original and its proof, as an insider would."""
    original = _original(root, ".png")
    ern = original.name.split("_", 1)[0]
    original.unlink()
    (root / "data/custody/proofs" / f"{ern}.proof").unlink()


def _edit_listing(root: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = root / "data/metadata/items.json"
    document = json.loads(path.read_bytes())
    edit(document)
    path.write_text(json.dumps(document), encoding="utf-8")


def _unlist_record(root: Path) -> None:
    _edit_listing(root, lambda document: document["items"].pop(0))


def _relist_hash(root: Path) -> None:
    def edit(document: dict[str, Any]) -> None:
        document["items"][0]["sha256"] = "0" * 64

    _edit_listing(root, edit)


def _listing_not_a_listing(root: Path) -> None:
    (root / "data/metadata/items.json").write_text('{"items": [{"title": "no ERN"}]}\n')


def _listing_removed(root: Path) -> None:
    (root / "data/metadata/items.json").unlink()


Tamper = Callable[[Path], None]

# name, tampering, re-sign the bag afterwards as a forger with the exporter key?, codes expected
TAMPERINGS: list[tuple[str, Tamper, bool, set[str]]] = [
    ("changed-byte-in-original", _change_original_byte, False,
     {"file-hash-mismatch", "original-leaf-mismatch"}),
    ("changed-byte-in-original-rebagged", _change_original_byte, True,
     {"original-leaf-mismatch"}),
    ("removed-file", _remove_original, False, {"file-missing", "original-missing"}),
    ("added-file", _add_file, False, {"file-unlisted", "original-unproven"}),
    ("added-file-rebagged", _add_file, True, {"original-unproven"}),
    ("edited-manifest", _edit_manifest, False, {"file-hash-mismatch", "tag-file-hash-mismatch"}),
    ("edited-leaf", _edit_leaf, False, {"file-hash-mismatch"}),
    ("edited-leaf-rebagged", _edit_leaf, True, {"leaf-bad-signature", "event-proof-leaf-differs"}),
    ("proof-for-another-leaf", _foreign_proof, True, {"original-leaf-mismatch"}),
    ("checkpoint-signed-by-untrusted-key", _untrusted_checkpoint, True,
     {"checkpoint-note-untrusted", "proof-checkpoint-differs"}),
    ("swapped-signature", _swap_signature, False, {"tagmanifest-bad-signature"}),
    ("bag-info-edited", _edit_bag_info, False, {"tag-file-hash-mismatch"}),
    ("manifest-names-file-outside", _manifest_outside, False, {"manifest-path-outside"}),
    ("symlink-in-bag", _symlink_in_bag, False, {"bag-symlink"}),
    ("leaf-renumbered-rebagged", _leaf_of_other_case, True, {"leaf-malformed"}),
    ("ern-renumbered-rebagged", _renumber_original, True, {"ern-mismatch"}),
    ("ern-assignments-removed-rebagged", _remove_ern_assignments, True, {"ern-unassigned"}),
    ("record-dropped-rebagged", _drop_record, True, {"listing-unproven"}),
    ("record-unlisted-rebagged", _unlist_record, True, {"listing-omits"}),
    ("listed-hash-edited-rebagged", _relist_hash, True, {"listing-mismatch"}),
    ("listing-malformed-rebagged", _listing_not_a_listing, True, {"listing-malformed"}),
    ("listing-removed-rebagged", _listing_removed, True, {"listing-missing"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("tamper", "resign", "expected"),
    [pytest.param(t, r, e, id=name) for name, t, r, e in TAMPERINGS],
)
def test_tampering_is_found(bag: Path, tamper: Tamper, resign: bool, expected: set[str]) -> None:
    tamper(bag)
    if resign:
        rebag(bag, investigator_signer())
    report = audit_bundle(bag, TRUSTED)
    assert not report.ok
    assert expected <= codes(report), report.findings
    assert all(f.where() != "-" for f in report.findings)


def test_rebagged_by_another_key_is_untrusted(bag: Path) -> None:
    rebag(bag, OTHER)
    bag_info = bag / "bag-info.txt"
    bag_info.write_text(
        bag_info.read_text(encoding="utf-8").replace(investigator_signer().key_id, OTHER.key_id),
        encoding="utf-8",
    )
    rebag(bag, OTHER)
    assert "signer-untrusted" in codes(audit_bundle(bag, TRUSTED))


def test_trusting_another_key_fails(exported: tuple[Path, Path, bytes, bytes]) -> None:
    report = audit_bundle(exported[0], [OTHER.verifier])
    assert {"signer-untrusted", "checkpoint-note-untrusted"} <= codes(report)


# --- hostile zips ----------------------------------------------------------------------------


def _zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return path


def _symlink_entry() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("bundle/data/link")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


HOSTILE: list[tuple[str, list[tuple[zipfile.ZipInfo | str, bytes]], str]] = [
    ("dot-dot", [("bundle/bagit.txt", b"x"), ("bundle/../../escape.txt", b"x")],
     "zip-path-traversal"),
    ("absolute", [("/tmp/escape-absolute.txt", b"x")], "zip-absolute-path"),
    ("windows-drive", [("C:/escape.txt", b"x")], "zip-absolute-path"),
    ("backslash", [("bundle\\..\\escape.txt", b"x")], "zip-bad-name"),
    ("symlink", [("bundle/bagit.txt", b"x"), (_symlink_entry(), b"/etc/passwd")],
     "zip-special-entry"),
    ("duplicate", [("bundle/bagit.txt", b"x"), ("bundle/bagit.txt", b"y")],
     "zip-duplicate-entry"),
    ("bomb", [("bundle/bagit.txt", b"x"), ("bundle/data/zeros", bytes(8 * 1024 * 1024))],
     "zip-bomb"),
    ("no-bag", [("something/else.txt", b"x")], "bag-not-found"),
    ("file-then-folder", [("bundle/data/x", b"a"), ("bundle/data/x/y", b"b")],
     "zip-path-conflict"),
    ("folder-then-file", [("bundle/data/x/y", b"b"), ("bundle/DATA/X", b"a")],
     "zip-path-conflict"),
    ("name-too-long", [("bundle/bagit.txt", b"x"), ("bundle/data/" + "n" * 300, b"x")],
     "zip-entry-unpackable"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("entries", "code"), [pytest.param(e, c, id=name) for name, e, c in HOSTILE]
)
def test_hostile_zip_is_refused(
    tmp_path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]], code: str
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    archive = _zip(folder / "hostile.zip", entries)
    report = audit_bundle(archive, TRUSTED)
    assert code in codes(report), report.findings
    assert sorted(p.name for p in folder.iterdir()) == ["hostile.zip"]
    assert not (tmp_path / "escape.txt").exists()
    assert not Path("/tmp/escape-absolute.txt").exists()


def test_not_a_zip_is_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    path.write_bytes(b"this is not a zip")
    assert "zip-unreadable" in codes(audit_bundle(path, TRUSTED))


def test_zip_limits_total_and_entries(
    exported: tuple[Path, Path, bytes, bytes],
) -> None:
    assert "zip-too-large" in codes(
        audit_bundle(exported[1], TRUSTED, limits=ZipLimits(max_total_bytes=1000))
    )
    assert "zip-too-many-entries" in codes(
        audit_bundle(exported[1], TRUSTED, limits=ZipLimits(max_entries=3))
    )


def test_unpacked_zip_is_removed_afterwards(
    exported: tuple[Path, Path, bytes, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert audit_bundle(exported[1], TRUSTED).ok
    assert list(tmp_path.iterdir()) == []


# --- --since ---------------------------------------------------------------------------------


def test_since_equal_checkpoint_passes(exported: tuple[Path, Path, bytes, bytes]) -> None:
    bag = exported[0]
    same = (bag / "data/custody/checkpoint.txt").read_bytes()
    report = audit_bundle(bag, TRUSTED, since=same)
    assert report.ok
    assert report.since_size == report.checkpoint_size  # said, as for a later checkpoint
    assert audit_bundle(bag, TRUSTED).since_size is None


def test_since_earlier_checkpoint_without_proof_is_unproven(
    exported: tuple[Path, Path, bytes, bytes],
) -> None:
    report = audit_bundle(exported[0], TRUSTED, since=exported[2])
    assert codes(report) == {"since-unproven"}


def test_since_later_checkpoint_is_a_rollback(exported: tuple[Path, Path, bytes, bytes]) -> None:
    assert "since-rollback" in codes(audit_bundle(exported[0], TRUSTED, since=exported[3]))


def test_since_fork_and_untrusted(exported: tuple[Path, Path, bytes, bytes]) -> None:
    bag = exported[0]
    note = (bag / "data/custody/checkpoint.txt").read_bytes()
    checkpoint = Checkpoint.from_text(parse_note(note).text)
    forked = Checkpoint(checkpoint.origin, checkpoint.size, bytes(32))
    fork_note = sign_checkpoint(forked, [investigator_signer()])
    assert "since-fork" in codes(audit_bundle(bag, TRUSTED, since=fork_note))
    stranger_note = sign_checkpoint(forked, [OTHER])
    assert "since-untrusted" in codes(audit_bundle(bag, TRUSTED, since=stranger_note))


def test_consistency_proof_round_trip_and_check() -> None:
    tree = MemoryTree()
    for n in range(13):
        tree.append(f"leaf {n}".encode())
    old_root = tree.view.root(5)
    proof = tree.view.consistency_proof(5, 13)
    text = format_consistency_proof(5, 13, proof)
    old, new, hashes = parse_consistency_proof(text)
    assert (old, new, hashes) == (5, 13, proof)
    verify_consistency(old, new, hashes, old_root, tree.root())


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"evidence-locker/consistency@v1\nold 1\n", id="truncated"),
        pytest.param(b"evidence-locker/consistency@v1\nold 01\nnew 2\n", id="leading-zero"),
        pytest.param(b"evidence-locker/consistency@v1\nold 1\nnew 2\nnot-base64\n", id="hash"),
        pytest.param(b"other@v1\nold 1\nnew 2\n", id="header"),
    ],
)
def test_bad_consistency_proofs_are_refused(data: bytes) -> None:
    from chain_of_custody import InputError

    with pytest.raises(InputError):
        parse_consistency_proof(data)


# --- trusted key files -----------------------------------------------------------------------


def test_trusted_key_from_note_and_pem(tmp_path: Path) -> None:
    key = investigator_signer().verifier
    note = tmp_path / "a.pub"
    note.write_text(key.to_note_text() + "\n", encoding="utf-8")
    pem = tmp_path / "investigator-a.pem"
    pem.write_bytes(key.to_pem())
    named = tmp_path / "named.pem"
    named.write_bytes(b"Key-Name: investigator-a\n" + key.to_pem())
    assert load_trusted_key(note) == key
    # A PEM carries no name: without a Key-Name line it is key material, whatever its file name.
    assert load_trusted_key(pem) == KeyMaterial(key.public_key)
    assert load_trusted_key(named) == key


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"two\nlines\n", id="two-lines"),
        pytest.param(b"name+00000000+AAAA\n", id="bad-note"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
    ],
)
def test_bad_trusted_key_files_are_refused(tmp_path: Path, content: bytes) -> None:
    from chain_of_custody import InputError

    path = tmp_path / "key.pub"
    path.write_bytes(content)
    with pytest.raises(InputError):
        load_trusted_key(path)


def test_verifier_key_is_what_signed(exported: tuple[Path, Path, bytes, bytes]) -> None:
    keys = list((exported[0] / "data/custody/keys").glob("*.pub"))
    assert [VerifierKey.from_note_text(p.read_text()) for p in keys] == TRUSTED


# --- files outside the payload and the tag files ---------------------------------------------


def _zip_folder(folder: Path, target: Path) -> Path:
    """A zip of ``folder`` under one top folder; only empty folders get an entry of their own."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            name = f"bundle/{path.relative_to(folder).as_posix()}"
            if path.is_dir() and not any(path.iterdir()):
                archive.write(path, name + "/")
            elif path.is_file():
                archive.write(path, name)
    return target


@pytest.mark.parametrize("as_zip", [False, True], ids=["bag", "zip"])
@pytest.mark.parametrize("rel", ["extra/evil.txt", "Data/evil.txt", "datax/evil.txt", "a/b/c.txt"])
def test_file_outside_payload_and_tag_files_is_found(bag: Path, rel: str, as_zip: bool) -> None:
    path = bag / rel
    path.parent.mkdir(parents=True)
    path.write_text("invented extra content\n", encoding="utf-8")
    target = _zip_folder(bag, bag.parent / "bundle.zip") if as_zip else bag
    report = audit_bundle(target, TRUSTED)
    assert not report.ok
    assert [f.path for f in report.findings if f.code == "file-outside-payload"] == [rel]


# --- a folder (or FIFO) where the audit reads a file -----------------------------------------


def _key_file(root: Path, suffix: str) -> str:
    found = next((root / "data/custody/keys").glob(f"*{suffix}"))
    return found.relative_to(root).as_posix()


def _proof_file(root: Path) -> str:
    found = sorted((root / "data/custody/proofs").glob("*.proof"))[0]
    return found.relative_to(root).as_posix()


def _event_proof_file(root: Path) -> str:
    found = sorted((root / "data/custody/event-proofs").glob("*.proof"))[-1]
    return found.relative_to(root).as_posix()


# Each names a file the audit reads; the test puts a folder in its place (or beside the others).
READ_FILES: list[tuple[str, Callable[[Path], str]]] = [
    ("new-leaf", lambda _root: "data/custody/events/999.leaf"),
    ("new-proof", lambda _root: "data/custody/proofs/UATEST-999999.proof"),
    ("proof", _proof_file),
    ("event-proof", _event_proof_file),
    ("checkpoint", lambda _root: "data/custody/checkpoint.txt"),
    ("key-note", lambda root: _key_file(root, ".pub")),
    ("key-pem", lambda root: _key_file(root, ".pem")),
    ("consistency-proof", lambda _root: "data/custody/consistency/2.proof"),
    ("signature", lambda _root: "tagmanifest-sha256.txt.sig"),
    ("signature-b64", lambda _root: "tagmanifest-sha256.txt.sig.b64"),
    ("tag-manifest", lambda _root: "tagmanifest-sha256.txt"),
    ("manifest", lambda _root: "manifest-sha256.txt"),
    ("bag-info", lambda _root: "bag-info.txt"),
]  # bagit.txt marks the top of the bag: a folder in its place is bag-not-found


@pytest.mark.parametrize("as_zip", [False, True], ids=["bag", "zip"])
@pytest.mark.parametrize("where", [pytest.param(w, id=name) for name, w in READ_FILES])
def test_folder_in_place_of_a_file_is_a_finding(
    bag: Path, where: Callable[[Path], str], as_zip: bool
) -> None:
    rel = where(bag)
    path = bag / rel
    if path.exists():
        path.unlink()
    path.mkdir(parents=True)
    target = _zip_folder(bag, bag.parent / "bundle.zip") if as_zip else bag
    report = audit_bundle(target, TRUSTED)
    assert not report.ok
    assert rel in [f.path for f in report.findings if f.code == "not-a-file"], report.findings


def test_fifo_named_like_a_leaf_does_not_block(bag: Path) -> None:
    fifo = bag / "data/custody/events/999.leaf"
    os.mkfifo(fifo)
    done: list[AuditReport] = []
    worker = threading.Thread(target=lambda: done.append(audit_bundle(bag, TRUSTED)))
    worker.start()
    worker.join(30)
    if worker.is_alive():
        # Open the FIFO for writing so that the blocked reader returns and the test can end.
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join()
        pytest.fail("the audit opened a FIFO and blocked on it")
    report = done[0]
    rel = "data/custody/events/999.leaf"
    assert {"bag-special-file", "not-a-file"} <= codes(report)
    assert rel in [f.path for f in report.findings if f.code == "not-a-file"]


def _unprivileged_findings(bag: Path) -> tuple[list[str], str]:
    """The finding lines and stderr of ``evidence audit`` run where file modes bind."""
    done = run_unprivileged("audit", bag)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("  [")], done.stderr


def test_unreadable_folder_fails_the_audit(bag: Path) -> None:
    # It could hold a file no manifest lists: what cannot be read is not vouched for.
    hidden = bag / "data/originals/hidden"
    hidden.mkdir()
    (hidden / "planted.txt").write_bytes(b"a fictional planted file")
    hidden.chmod(0)
    try:
        lines, stderr = _unprivileged_findings(bag)
    finally:
        hidden.chmod(0o755)
    assert lines == [
        "  [file-unreadable] data/originals/hidden cannot be read (Permission denied), so it is "
        "not checked: give the auditing account read access to the whole bundle and run the "
        "audit again"
    ]
    assert "were not checked, as part of the bundle cannot be read" in stderr


@pytest.mark.parametrize(
    "rel", ["data/unlisted.txt", "data/custody/event-proofs", "data/custody/events"]
)
def test_unreadable_file_or_folder_is_named(bag: Path, rel: str) -> None:
    path = bag / rel
    if not path.exists():
        path.write_bytes(b"a fictional unlisted file")
    path.chmod(0)
    try:
        lines, _stderr = _unprivileged_findings(bag)
    finally:
        path.chmod(0o755)
    assert len(lines) == 1
    assert lines[0].startswith(f"  [file-unreadable] {rel} cannot be read (Permission denied)")


def test_symlink_in_place_of_the_checkpoint_is_not_followed(bag: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside-checkpoint.txt"
    checkpoint = bag / "data/custody/checkpoint.txt"
    outside.write_bytes(checkpoint.read_bytes())
    checkpoint.unlink()
    checkpoint.symlink_to(outside)
    report = audit_bundle(bag, TRUSTED)
    assert {"bag-symlink", "not-a-file"} <= codes(report)
    assert report.checkpoint_size is None


# --- trusting a PEM by its key material ------------------------------------------------------


def test_bundle_pem_is_trusted_by_its_key_material(bag: Path) -> None:
    pem = bag / _key_file(bag, ".pem")
    assert pem.stem != "investigator-a"
    report = audit_bundle(bag, [load_trusted_key(pem)])
    assert report.ok, report.findings
    assert report.trusted_keys == (investigator_signer().verifier,)


def test_pem_under_any_file_name_is_trusted(bag: Path, tmp_path: Path) -> None:
    pem = tmp_path / "key from the NGO website.pem"
    pem.write_bytes(investigator_signer().verifier.to_pem())
    assert audit_bundle(bag, [load_trusted_key(pem)]).ok


def test_pem_of_another_key_is_not_trusted(bag: Path, tmp_path: Path) -> None:
    pem = tmp_path / "investigator-a.pem"
    pem.write_bytes(OTHER.verifier.to_pem())
    report = audit_bundle(bag, [load_trusted_key(pem)])
    assert {"signer-untrusted", "checkpoint-note-untrusted"} <= codes(report)
    assert report.trusted_keys == ()


def test_pem_with_key_name_is_trusted_under_that_name_only(bag: Path, tmp_path: Path) -> None:
    pem = investigator_signer().verifier.to_pem()
    right = tmp_path / "right.pem"
    right.write_bytes(b"Key-Name: investigator-a\n" + pem)
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(b"Key-Name: someone-else\n" + pem)
    assert audit_bundle(bag, [load_trusted_key(right)]).ok
    assert "signer-untrusted" in codes(audit_bundle(bag, [load_trusted_key(wrong)]))


def test_pem_trust_does_not_fall_back_to_the_bundle_keys(bag: Path, tmp_path: Path) -> None:
    rebag(bag, OTHER)  # a forger's bundle: its own key files would let it pass without --trust
    pem = tmp_path / "trusted.pem"
    pem.write_bytes(investigator_signer().verifier.to_pem())
    report = audit_bundle(bag, [load_trusted_key(pem)])
    assert "tagmanifest-bad-signature" in codes(report)
    assert report.warnings == []


def test_pem_that_is_not_ed25519_is_refused_naming_the_file(tmp_path: Path) -> None:
    from chain_of_custody import InputError

    path = tmp_path / "broken.pem"
    path.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(InputError, match=r"broken\.pem"):
        load_trusted_key(path)


# --- the base64 copy of the signature --------------------------------------------------------


def test_missing_base64_signature_copy_is_a_finding(bag: Path) -> None:
    (bag / "tagmanifest-sha256.txt.sig.b64").unlink()
    report = audit_bundle(bag, TRUSTED)
    assert codes(report) == {"signature-copy-missing"}
    assert report.findings[0].path == "tagmanifest-sha256.txt.sig.b64"


# --- --since that is not a checkpoint --------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(bytes(range(256)) * 3, id="binary"),
        pytest.param(b"just some text\n", id="text"),
        pytest.param(b"origin\n1\nAAAA\n\n", id="unsigned"),
    ],
)
def test_since_that_is_not_a_checkpoint_is_an_input_error(
    exported: tuple[Path, Path, bytes, bytes], tmp_path: Path, data: bytes
) -> None:
    from chain_of_custody import InputError

    with pytest.raises(InputError, match="--since"):
        audit_bundle(exported[0], TRUSTED, since=data)
    path = tmp_path / "earlier.txt"
    path.write_bytes(data)
    with pytest.raises(InputError, match=r"earlier\.txt") as raised:
        load_since_checkpoint(path)
    assert "checkpoint.txt" in raised.value.hint


def test_since_signed_note_that_is_not_a_checkpoint_is_an_input_error(
    exported: tuple[Path, Path, bytes, bytes],
) -> None:
    from chain_of_custody import InputError

    # A custody event is a signed note too, signed by the trusted key, but not a checkpoint.
    leaf = sorted((exported[0] / "data/custody/events").glob("*.leaf"))[0].read_bytes()
    with pytest.raises(InputError, match="is not a checkpoint"):
        audit_bundle(exported[0], TRUSTED, since=leaf)


def test_since_checkpoint_file_is_read(
    exported: tuple[Path, Path, bytes, bytes], tmp_path: Path
) -> None:
    from chain_of_custody import InputError

    path = tmp_path / "earlier.txt"
    path.write_bytes(exported[2])
    assert load_since_checkpoint(path) == exported[2]
    with pytest.raises(InputError, match=r"missing\.txt"):
        load_since_checkpoint(tmp_path / "missing.txt")


def test_since_untrusted_message_has_no_empty_location(
    exported: tuple[Path, Path, bytes, bytes],
) -> None:
    note = (exported[0] / "data/custody/checkpoint.txt").read_bytes()
    stranger_note = sign_checkpoint(Checkpoint.from_text(parse_note(note).text), [OTHER])
    report = audit_bundle(exported[0], TRUSTED, since=stranger_note)
    [finding] = report.findings
    assert finding.code == "since-untrusted"
    assert "(-)" not in finding.message
    assert f"signed by {OTHER.key_id}, not by a trusted key" in finding.message
    assert "--trust" in finding.message


# --- a symlink named as the bundle -----------------------------------------------------------


def test_symlink_to_the_bag_is_followed(
    exported: tuple[Path, Path, bytes, bytes], tmp_path: Path
) -> None:
    link = tmp_path / "link"
    link.symlink_to(exported[0], target_is_directory=True)
    report = audit_bundle(link, TRUSTED)
    assert report.ok, report.findings
    assert report.bundle == str(link)
    zip_link = tmp_path / "link.zip"
    zip_link.symlink_to(exported[1])
    assert audit_bundle(zip_link, TRUSTED).ok


def test_symlink_inside_a_linked_bag_is_still_a_finding(bag: Path, tmp_path: Path) -> None:
    _symlink_in_bag(bag)
    link = tmp_path / "link"
    link.symlink_to(bag, target_is_directory=True)
    assert "bag-symlink" in codes(audit_bundle(link, TRUSTED))


# --- VERIFY.md: checking the exporter key with standard tools --------------------------------


def _verify_md_step_2(root: Path) -> tuple[str, list[str]]:
    """The text of step 2 of the bundle's VERIFY.md and its commands (indented lines)."""
    text = (root / "data/custody/VERIFY.md").read_text(encoding="utf-8")
    step = text.split("\n## 2. ", 1)[1].split("\n## 3. ", 1)[0]
    commands = [line.strip() for line in step.splitlines() if line.startswith("    ")]
    return step, commands


def _sh(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", command], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )


def _openssl_or_skip(bag: Path) -> tuple[str, str]:
    """The key derivation and signature commands of step 2; skip without OpenSSL 3."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True, check=False)
    if not version.stdout.startswith("OpenSSL ") or int(version.stdout.split()[1][0]) < 3:
        pytest.skip(f"VERIFY.md needs OpenSSL 3.0 or later, found {version.stdout.strip()!r}")
    _step, commands = _verify_md_step_2(bag)
    derive = [c for c in commands if "openssl pkey " in c]
    verify = [c for c in commands if "openssl pkeyutl " in c]
    assert len(derive) == 1 and len(verify) == 1, commands
    return derive[0], verify[0]


def _trusted_key_field() -> str:
    """The third field of the verifier key line the auditor got from the NGO.

    Everything after the second '+': the name has no '+' and the key id is hex, but the base64
    may hold one (the fixed test key's does).
    """
    field = investigator_signer().verifier.to_note_text().split("+", 2)[2]
    assert "+" in field  # so that a split at the last '+' would fail this test
    return field


def test_verify_md_commands_check_the_key_the_auditor_trusts(bag: Path) -> None:
    derive, verify = _openssl_or_skip(bag)
    derived = _sh(derive, bag)
    assert derived.returncode == 0, derived.stderr
    assert derived.stdout.strip() == _trusted_key_field()
    verified = _sh(verify, bag)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Signature Verified Successfully" in verified.stdout


def test_verify_md_commands_expose_a_swapped_pem(bag: Path, tmp_path: Path) -> None:
    derive, verify = _openssl_or_skip(bag)
    # A forger replaces the exporter's key files with their own key and signs again.
    pem = bag / _key_file(bag, ".pem")
    pem.write_bytes(OTHER.verifier.to_pem())
    (bag / _key_file(bag, ".pub")).write_text(OTHER.verifier.to_note_text() + "\n")
    rebag(bag, OTHER)
    assert _sh(verify, bag).returncode == 0  # the bundle's own PEM proves nothing by itself
    derived = _sh(derive, bag)
    assert derived.returncode == 0, derived.stderr
    assert derived.stdout.strip() != _trusted_key_field()
    # With the auditor's own copy of the PEM, as step 2 also allows, the signature fails.
    own = tmp_path / "own.pem"
    own.write_bytes(investigator_signer().verifier.to_pem())
    bundle_pem = pem.relative_to(bag).as_posix()
    assert bundle_pem in verify
    refused = _sh(verify.replace(bundle_pem, str(own)), bag)
    assert refused.returncode != 0
    assert "Signature Verified Successfully" not in refused.stdout


def test_verify_md_says_what_the_signature_covers(bag: Path) -> None:
    step, _commands = _verify_md_step_2(bag)
    flat = " ".join(step.split())
    assert "covers every file of the bundle" not in flat
    assert "the files the manifests list" in flat
    assert "reports any file that no manifest lists" in flat
    assert "everything after its second `+`" in flat


# --- keys that are not trusted: named, with what to do ---------------------------------------


def test_untrusted_key_findings_name_the_key_and_say_to_pass_it_with_trust(
    exported: tuple[Path, Path, bytes, bytes],
) -> None:
    report = audit_bundle(exported[0], [OTHER.verifier])
    key_id = investigator_signer().key_id
    copy = f"data/custody/keys/{key_id.replace('+', '_')}.pem"
    by_code = {f.code: f for f in report.findings}
    for code, what in (
        ("signer-untrusted", "the tag manifest"),
        ("checkpoint-note-untrusted", "the checkpoint"),
    ):
        message = by_code[code].message
        assert message.startswith(f"{what} is signed by {key_id}, not by a trusted key"), message
        assert "pass its key file with --trust" in message
        assert copy in message


def test_an_unknown_event_signer_says_to_pass_its_key_with_trust(bag: Path) -> None:
    for path in (bag / "data/custody/keys").iterdir():
        path.unlink()
    rebag(bag, investigator_signer())
    report = audit_bundle(bag, [*TRUSTED, OTHER.verifier])
    unknown = [f for f in report.findings if f.code == "leaf-unknown-actor"]
    assert not unknown  # the trusted key signed every event: it is known without the files
    report = audit_bundle(bag, [OTHER.verifier])
    unknown = [f for f in report.findings if f.code == "leaf-unknown-actor"]
    assert unknown
    assert all(investigator_signer().key_id in f.message for f in unknown)
    assert all("--trust" in f.message for f in unknown)


# --- the human report: each location once ----------------------------------------------------


@pytest.mark.parametrize(
    ("finding", "line"),
    [
        pytest.param(
            Finding(
                "file-hash-mismatch",
                "data/originals/X_a.png: sha256 is 00",
                path="data/originals/X_a.png",
            ),
            "[file-hash-mismatch] data/originals/X_a.png: sha256 is 00",
            id="path-in-message",
        ),
        pytest.param(
            Finding("payload-oxum", "Payload-Oxum says 1.1", path="bag-info.txt"),
            "[payload-oxum] bag-info.txt: Payload-Oxum says 1.1",
            id="path-not-in-message",
        ),
        pytest.param(
            Finding(
                "original-leaf-mismatch",
                "UA-000004: the file's sha256 does not match event 3",
                seq=3,
                subject="UA-000004",
                path="data/originals/UA-000004_a.png",
            ),
            "[original-leaf-mismatch] data/originals/UA-000004_a.png: "
            "UA-000004: the file's sha256 does not match event 3",
            id="seq-and-subject-in-message",
        ),
        pytest.param(
            Finding("leaf-malformed", "bad text", seq=7, path="data/custody/events/7.leaf"),
            "[leaf-malformed] seq 7, data/custody/events/7.leaf: bad text",
            id="nothing-in-message",
        ),
        pytest.param(
            Finding("since-fork", "two roots for one size"),
            "[since-fork] two roots for one size",
            id="no-location",
        ),
    ],
)
def test_describe_finding_names_each_location_once(finding: Finding, line: str) -> None:
    assert finding.describe() == line


def test_each_finding_line_of_a_tampered_bag_names_its_file_once(bag: Path) -> None:
    original = next((bag / "data/originals").glob("*.png"))
    original.write_bytes(original.read_bytes() + b"\x00")
    report = audit_bundle(bag, TRUSTED)
    rel = original.relative_to(bag).as_posix()
    lines = [line for line in report.finding_lines() if rel in line]
    assert len(lines) >= 2  # sha256 and sha512 of the manifests
    assert all(line.count(rel) == 1 for line in lines), lines


# --- VERIFY.md: the keys the bundle relies on -----------------------------------------------


def test_verify_md_lists_each_key_with_the_fingerprint_openssl_prints(bag: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    text = (bag / "data/custody/VERIFY.md").read_text(encoding="utf-8")
    step = text.split("\n## 3. ", 1)[1].split("\n## 4. ", 1)[0]
    [command] = [line.strip() for line in step.splitlines() if "sha256sum" in line]
    key_id = investigator_signer().key_id
    pem = f"data/custody/keys/{key_id.replace('+', '_')}.pem"
    printed = _sh(command.replace("KEYFILE.pem", pem), bag)
    assert printed.returncode == 0, printed.stderr
    fingerprint = printed.stdout.split()[0]
    [row] = [line for line in step.splitlines() if line.startswith(f"| `{key_id}` |")]
    assert f"`{fingerprint}`" in row
    assert "the tag manifest" in row and "the checkpoint" in row
    assert f"--trust KEYS/{key_id.replace('+', '_')}.pem" in text
