"""The BagIt bag and zip: valid, complete, signed, deterministic and never half-written."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import bagit
import pytest

from chain_of_custody.errors import InputError, VerificationError
from exports.bag import SIGNATURE_B64_FILE, SIGNATURE_FILE, WrittenBag, write_bag, write_zip
from exports.model import BundleContent
from tests.exports.conftest import CREATED, Fixture, build_content, fixed_key


def _write(fixture: Fixture, out: Path, content: BundleContent | None = None) -> WrittenBag:
    return write_bag(
        content or fixture.content,
        out,
        sign_tagmanifest=fixture.key.sign,
        signer_key_id=fixture.key.key_id,
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def written(bundle: Fixture, tmp_path: Path) -> WrittenBag:
    (tmp_path / "out").mkdir()
    return _write(bundle, tmp_path / "out" / "UKR-TEST-1-B0001")


def test_bag_validates_with_the_bagit_library(written: WrittenBag) -> None:
    bag = bagit.Bag(str(written.path))
    bag.validate()
    info = bag.info
    assert info["Source-Organization"] == "Example Documentation Group"
    assert info["External-Identifier"] == "UKR-TEST-1-B0001"
    assert info["Bagging-Date"] == "2026-11-24"
    assert info["Signing-Key-Id"] == fixed_key().key_id
    octets, count = info["Payload-Oxum"].split(".")
    files = [p for p in (written.path / "data").rglob("*") if p.is_file()]
    assert int(count) == len(files)
    assert int(octets) == sum(p.stat().st_size for p in files)
    assert set(bag.algorithms) == {"sha256", "sha512"}


def test_bagit_validation_catches_a_changed_payload_file(written: WrittenBag) -> None:
    target = written.path / "data" / "originals" / "UKR-DEP-000014_notes_ü.txt"
    target.write_bytes(target.read_bytes() + b"tampered")
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(written.path)).validate()


def test_layout_of_spec_section_7(bundle: Fixture, written: WrittenBag) -> None:
    root = written.path
    for name in (
        "bagit.txt",
        "bag-info.txt",
        "manifest-sha256.txt",
        "manifest-sha512.txt",
        "tagmanifest-sha256.txt",
        SIGNATURE_FILE,
        SIGNATURE_B64_FILE,
        "data/index.html",
        "data/index.pdf",
        "data/metadata/items.json",
        "data/metadata/items.csv",
        "data/metadata/case.jsonld",
        "data/custody/checkpoint.txt",
        "data/custody/VERIFY.md",
        "data/custody/keys/exporter-a_ad496b3a.pub",
        "data/custody/keys/exporter-a_ad496b3a.pem",
        "data/protected/UKR-DEP-000020.sealed",
    ):
        assert (root / name).is_file(), name
    assert (root / "bagit.txt").read_text() == (
        "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    )
    content = bundle.content
    for record in content.records():
        copy = root / "data" / "originals" / record.bag_name
        source = record.original_path if hasattr(record, "original_path") else record.document_path
        assert copy.read_bytes() == source.read_bytes()
        assert (
            root / "data/custody/proofs" / f"{record.ern}.proof"
        ).read_text() == record.proof_text
    assert sorted(p.name for p in (root / "data/originals").iterdir()) == sorted(
        r.bag_name for r in content.records()
    )
    for leaf in content.custody_events:
        assert (root / f"data/custody/events/{leaf.seq:012d}.leaf").read_bytes() == leaf.leaf
        proof = root / f"data/custody/event-proofs/{leaf.seq:012d}.proof"
        assert proof.read_text() == leaf.proof_text
    assert len(list((root / "data/custody/event-proofs").iterdir())) == len(content.custody_events)
    assert (root / "data/custody/checkpoint.txt").read_bytes() == content.checkpoint_note
    assert (root / "data/custody/keys/exporter-a_ad496b3a.pub").read_text().strip() == (
        bundle.key.note_text()
    )
    assert written.stamped == ("UKR-DEP-000010",)
    assert [p.name for p in (root / "data/stamped").iterdir()] == [content.items[0].bag_name]


def test_an_item_in_several_groups_is_stored_once(written: WrittenBag) -> None:
    # UKR-DEP-000010 is listed under the incident and under the perpetrator.
    originals = list((written.path / "data/originals").glob("UKR-DEP-000010_*"))
    assert len(originals) == 1
    html = (written.path / "data/index.html").read_text()
    # One group-table row per group, one full record.
    assert html.count('<tr><td><a href="#UKR-DEP-000010">') == 2
    assert html.count('<div class="record" id="UKR-DEP-000010">') == 1


def test_manifests_are_sorted_and_sha256sum_accepts_them(written: WrittenBag) -> None:
    for manifest, tool in (
        ("manifest-sha256.txt", "sha256sum"),
        ("manifest-sha512.txt", "sha512sum"),
    ):
        lines = (written.path / manifest).read_text().splitlines()
        paths = [line.split("  ", 1)[1] for line in lines]
        assert paths == sorted(paths)
        result = subprocess.run(
            [tool, "-c", manifest], cwd=written.path, check=False, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(
        ["sha256sum", "-c", "tagmanifest-sha256.txt"],
        cwd=written.path,
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _openssl_command(root: Path) -> list[str]:
    verify_md = (root / "data/custody/VERIFY.md").read_text()
    line = next(line.strip() for line in verify_md.splitlines() if "openssl pkeyutl" in line)
    return line.split()


def test_openssl_verifies_the_tag_manifest_signature_as_verify_md_says(written: WrittenBag) -> None:
    command = _openssl_command(written.path)
    result = subprocess.run(command, cwd=written.path, check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Signature Verified Successfully" in result.stdout
    raw = (written.path / SIGNATURE_FILE).read_bytes()
    b64 = (written.path / SIGNATURE_B64_FILE).read_text()
    import base64

    assert base64.b64decode(b64) == raw
    assert len(raw) == 64


def test_openssl_refuses_a_changed_tag_manifest(written: WrittenBag) -> None:
    manifest = written.path / "tagmanifest-sha256.txt"
    manifest.write_bytes(manifest.read_bytes().replace(b"bagit.txt", b"bagit.txx"))
    result = subprocess.run(
        _openssl_command(written.path), cwd=written.path, check=False, capture_output=True
    )
    assert result.returncode != 0


def test_index_links_point_at_files_in_the_bag(written: WrittenBag) -> None:
    data = written.path / "data"
    html = (data / "index.html").read_text()
    links = re.findall(r'href="([^"#][^"]*)"', html)
    assert links
    for link in links:
        assert (data / link).is_file(), link


def test_same_content_gives_byte_identical_bag_and_zip(tmp_path: Path) -> None:
    results = []
    for run in ("one", "two"):
        fixture = build_content(tmp_path / run / "case")
        bag = _write(fixture, tmp_path / run / "UKR-TEST-1-B0001")
        zipped = write_zip(bag.path, tmp_path / run / "bundle.zip", created=CREATED)
        results.append((_tree(bag.path), zipped.read_bytes(), bag.path))
    (tree_a, zip_a, path_a), (tree_b, zip_b, _) = results
    assert tree_a == tree_b
    assert zip_a == zip_b
    mtimes = {p.stat().st_mtime for p in [path_a, *path_a.rglob("*")]}
    assert len(mtimes) == 1


def test_zip_holds_the_bag_with_fixed_times_and_modes(written: WrittenBag, tmp_path: Path) -> None:
    zip_path = write_zip(written.path, tmp_path / "bundle.zip", created=CREATED)
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert names == sorted(names, key=str.encode)
        for info in archive.infolist():
            assert info.date_time == (2026, 11, 24, 3, 20, 0)
            assert (info.external_attr >> 16) & 0o777 == 0o644
            assert info.compress_type == zipfile.ZIP_DEFLATED
        archive.extractall(tmp_path / "unzipped")
    assert _tree(tmp_path / "unzipped" / written.path.name) == _tree(written.path)
    bagit.Bag(str(tmp_path / "unzipped" / written.path.name)).validate()


def test_zip_refuses_an_existing_file_and_a_non_bag(written: WrittenBag, tmp_path: Path) -> None:
    existing = tmp_path / "exists.zip"
    existing.write_bytes(b"keep")
    with pytest.raises(InputError, match="already exists"):
        write_zip(written.path, existing, created=CREATED)
    assert existing.read_bytes() == b"keep"
    with pytest.raises(InputError, match="not a bag"):
        write_zip(tmp_path, tmp_path / "other.zip", created=CREATED)


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir())


def test_existing_output_directory_is_refused(bundle: Fixture, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    with pytest.raises(InputError, match="already exists"):
        _write(bundle, out)
    assert _leftovers(out) == ["keep.txt"]


def test_failure_at_the_last_step_leaves_no_bundle_and_no_partial(
    bundle: Fixture, tmp_path: Path
) -> None:
    parent = tmp_path / "exports"
    parent.mkdir()
    calls = []

    def failing_signer(message: bytes) -> bytes:
        calls.append(message)
        # Everything else is written by now: the crash happens in the middle of the work.
        partials = [p for p in parent.iterdir() if p.name.startswith(".bundle.partial-")]
        assert len(partials) == 1
        assert (partials[0] / "data/index.pdf").is_file()
        raise RuntimeError("signing device removed")

    with pytest.raises(RuntimeError, match="signing device removed"):
        write_bag(
            bundle.content,
            parent / "bundle",
            sign_tagmanifest=failing_signer,
            signer_key_id=bundle.key.key_id,
        )
    assert calls
    assert _leftovers(parent) == []


def test_bad_signature_length_is_refused(bundle: Fixture, tmp_path: Path) -> None:
    parent = tmp_path / "exports"
    parent.mkdir()
    with pytest.raises(ValueError, match="64-byte"):
        write_bag(
            bundle.content,
            parent / "bundle",
            sign_tagmanifest=lambda message: b"short",
            signer_key_id=bundle.key.key_id,
        )
    assert _leftovers(parent) == []


def test_signer_must_be_the_exporter_key(bundle: Fixture, tmp_path: Path) -> None:
    other = fixed_key(bytes(32), "someone-else")
    with pytest.raises(InputError, match="not the bundle's exporter key"):
        write_bag(
            bundle.content,
            tmp_path / "bundle",
            sign_tagmanifest=other.sign,
            signer_key_id=other.key_id,
        )
    assert not (tmp_path / "bundle").exists()


def _change_original(fixture: Fixture) -> None:
    path = fixture.content.items[2].original_path
    path.write_bytes(path.read_bytes().replace(b"Field", b"Yield"))


def _remove_original(fixture: Fixture) -> None:
    fixture.content.items[1].original_path.unlink()


@pytest.mark.parametrize(
    ("damage", "code", "ern"),
    [
        pytest.param(_change_original, "original-hash-mismatch", "UKR-DEP-000014", id="changed"),
        pytest.param(_remove_original, "original-missing", "UKR-DEP-000013", id="missing"),
    ],
)
def test_an_original_that_is_not_its_record_stops_the_export(
    tmp_path: Path, damage, code: str, ern: str
) -> None:
    fixture = build_content(tmp_path / "case")
    damage(fixture)
    parent = tmp_path / "exports"
    parent.mkdir()
    with pytest.raises(VerificationError) as info:
        _write(fixture, parent / "bundle")
    finding = info.value.findings[0]
    assert finding.code == code
    assert finding.subject == ern
    assert _leftovers(parent) == []


def test_an_unstampable_pdf_keeps_its_original_and_gets_a_warning(tmp_path: Path) -> None:
    fixture = build_content(tmp_path / "case")
    item = fixture.content.items[0]
    # A damaged PDF whose recorded hashes match its (damaged) bytes.
    broken = tmp_path / "case" / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\nthis is not really a PDF\n")
    data = broken.read_bytes()
    item = item.model_copy(
        update={
            "original_path": broken,
            "sha256": hashlib.sha256(data).hexdigest(),
            "sha512": hashlib.sha512(data).hexdigest(),
            "size": len(data),
        }
    )
    content = fixture.content.model_copy(update={"items": (item, *fixture.content.items[1:])})
    written = _write(fixture, tmp_path / "bundle", content)
    assert written.stamped == ()
    assert len(written.warnings) == 1
    assert "UKR-DEP-000010: no stamped copy" in written.warnings[0]
    assert not (written.path / "data/stamped").exists()
    assert (written.path / "data/originals" / item.bag_name).read_bytes() == data
    html = (written.path / "data/index.html").read_text()
    assert "stamped/" not in html
    items = json.loads((written.path / "data/metadata/items.json").read_bytes())
    assert "stamped" not in items["items"][0]["files"]
    bagit.Bag(str(written.path)).validate()


def test_public_bundle_has_no_protected_folder(tmp_path: Path) -> None:
    fixture = build_content(tmp_path / "case", profile="public")
    written = _write(fixture, tmp_path / "bundle")
    assert not (written.path / "data/protected").exists()
    assert ".sealed" not in (written.path / "data/index.html").read_text()
    assert ".sealed" not in (written.path / "data/metadata/items.json").read_text()
    bagit.Bag(str(written.path)).validate()


def test_bag_dir_is_not_left_when_parent_is_missing(bundle: Fixture, tmp_path: Path) -> None:
    from chain_of_custody.errors import EnvironmentProblem

    with pytest.raises(EnvironmentProblem, match="not a directory"):
        _write(bundle, tmp_path / "missing" / "bundle")


def test_copying_a_bag_keeps_it_valid(written: WrittenBag, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(written.path, copy)
    bagit.Bag(str(copy)).validate()


def test_bag_info_names_the_toolkit_and_its_version(written: WrittenBag) -> None:
    # The same case state gives the same bundle from the same version of the toolkit.
    agent = bagit.Bag(str(written.path)).info["Bag-Software-Agent"]
    assert agent == f"evidence-locker {importlib.metadata.version('evidence-locker')}"
