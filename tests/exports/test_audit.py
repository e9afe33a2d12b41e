"""audit_bundle: a clean bundle passes; each tampering and each hostile zip is named."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from chain_of_custody import (
    Checkpoint,
    MemoryTree,
    Signer,
    VerifierKey,
    parse_note,
    sign_checkpoint,
    signer_from_seed,
    verify_consistency,
)
from evidence.workspace import Case
from exports.audit import (
    AuditReport,
    ZipLimits,
    audit_bundle,
    format_consistency_proof,
    load_trusted_key,
    parse_consistency_proof,
)
from exports.bundle import export_bundle
from exports.model import Selection
from tests.exports.casebuilder import (
    CREATED,
    BuiltCase,
    build_case,
    copy_case,
    investigator_signer,
)

STRANGER = signer_from_seed("investigator-a", bytes(range(1, 33)))  # same name, other key
OTHER = signer_from_seed("someone-else", bytes(range(2, 34)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes, bytes]:
    """A restricted bundle of INC-0001 (bag and zip), a checkpoint before it and the latest."""
    root = tmp_path_factory.mktemp("audit")
    built: BuiltCase = build_case(root / "built")
    case: Case = copy_case(built, root / "case").open()
    try:
        before = case.log.latest_checkpoint()
        result = export_bundle(
            case,
            investigator_signer(),
            selection=Selection(incidents=("INC-0001",)),
            profile="restricted",
            out_dir=root / "out" / "bundle",
            zip_path=root / "out" / "bundle.zip",
            created=CREATED,
        )
        after = case.log.latest_checkpoint()
    finally:
        case.close()
    assert result.zip_path is not None and before is not None and after is not None
    return result.bag, result.zip_path, before, after


@pytest.fixture
def bag(exported: tuple[Path, Path, bytes, bytes], tmp_path: Path) -> Path:
    """A private copy of the bag to tamper with."""
    target = tmp_path / "bundle"
    shutil.copytree(exported[0], target)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


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


def _leaf_of_other_case(root: Path) -> None:
    path = sorted((root / "data/custody/events").iterdir())[0]
    path.write_bytes(path.read_bytes().replace(b'"seq":0', b'"seq":1', 1))


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
    ("edited-leaf-rebagged", _edit_leaf, True, {"leaf-bad-signature"}),
    ("proof-for-another-leaf", _foreign_proof, True, {"original-leaf-mismatch"}),
    ("checkpoint-signed-by-untrusted-key", _untrusted_checkpoint, True,
     {"checkpoint-note-untrusted", "proof-checkpoint-differs"}),
    ("swapped-signature", _swap_signature, False, {"tagmanifest-bad-signature"}),
    ("bag-info-edited", _edit_bag_info, False, {"tag-file-hash-mismatch"}),
    ("manifest-names-file-outside", _manifest_outside, False, {"manifest-path-outside"}),
    ("symlink-in-bag", _symlink_in_bag, False, {"bag-symlink"}),
    ("leaf-renumbered-rebagged", _leaf_of_other_case, True, {"leaf-malformed"}),
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
    assert audit_bundle(bag, TRUSTED, since=same).ok


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
    assert load_trusted_key(pem) == key
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
