"""export_bundle: a valid bag, stable ERNs, byte-identical rebuilds, no protected plaintext."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bagit
import pytest

from chain_of_custody import EventDraft, parse_leaf
from evidence.errors import EnvironmentProblem, InputError
from evidence.workspace import Case, Recorder
from exports.audit import audit_bundle
from exports.bag import Staged
from exports.bundle import ExportResult, export_bundle
from exports.model import Profile, Selection, parse_time
from tests.conftest import ended_pid
from tests.exports.casebuilder import (
    CREATED,
    SECRETS,
    BuiltCase,
    bag_files,
    build_case,
    copy_case,
    investigator_signer,
    pdf_stream_bytes,
    recipient_key,
)
from tests.exports.pdftext import page_texts

INCIDENT = Selection(incidents=("INC-0001",))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltCase:
    return build_case(tmp_path_factory.mktemp("bundle"))


@pytest.fixture
def case(built: BuiltCase, tmp_path: Path) -> Iterator[Case]:
    opened = copy_case(built, tmp_path / "case").open()
    yield opened
    opened.close()


def _export(
    case: Case, out: Path, profile: Profile = "restricted", *, zip_file: bool = False, **kw: object
) -> ExportResult:
    return export_bundle(
        case,
        investigator_signer(),
        selection=kw.pop("selection", INCIDENT),  # type: ignore[arg-type]
        profile=profile,
        out_dir=out / "bundle",
        zip_path=out / "bundle.zip" if zip_file else None,
        created=CREATED,
        recipient=recipient_key().public if profile == "otp" else None,
    )


def test_bag_is_valid_and_holds_originals_byte_for_byte(
    built: BuiltCase, case: Case, tmp_path: Path
) -> None:
    result = _export(case, tmp_path / "out", "otp")
    bag = bagit.Bag(str(result.bag))
    bag.validate()  # raises on any problem
    originals = sorted((result.bag / "data" / "originals").iterdir())
    assert len(originals) == 4  # three items and the testimony document, each once
    for path in originals:
        sha = next(s for s in (*built.items.values(), built.witness_document)
                   if case.objects.path_for(s).read_bytes() == path.read_bytes())  # fmt: skip
        assert sha
    names = [p.name for p in originals]
    assert "UATEST-000001_transfer_list.pdf" in names  # three pages: 000001..000003
    assert (result.bag / "data" / "stamped" / "UATEST-000001_transfer_list.pdf").is_file()
    assert (result.bag / "data" / "protected" / "UATEST-000006.sealed").is_file()
    assert result.stamped == ("UATEST-000001",)
    assert audit_bundle(result.bag, [investigator_signer().verifier]).ok


def test_erns_are_stable_and_assigned_once(case: Case, tmp_path: Path) -> None:
    first = _export(case, tmp_path / "one", "otp")
    second = _export(case, tmp_path / "two", "restricted")
    assert first.new_erns == 4  # three items and the testimony, one event each
    assert second.new_erns == 0
    items_one = json.loads((first.bag / "data/metadata/items.json").read_bytes())
    items_two = json.loads((second.bag / "data/metadata/items.json").read_bytes())
    erns_one = {i["sha256"]: i["erns"] for i in items_one["items"]}
    erns_two = {i["sha256"]: i["erns"] for i in items_two["items"]}
    assert erns_two.items() <= erns_one.items()
    assert sorted(len(e) for e in erns_one.values()) == [1, 1, 3]
    rows = case.db.execute("SELECT subject, first, last FROM erns ORDER BY number_first").fetchall()
    assert rows[0][1:] == ("UATEST-000001", "UATEST-000003")


def test_export_is_recorded_after_the_bundle(case: Case, tmp_path: Path) -> None:
    result = _export(case, tmp_path / "out")
    leaf = parse_leaf(case.log.leaf(result.event_seq)).event
    assert leaf.action == "export.made"
    assert leaf.subject == result.bundle_id
    assert leaf.data["profile"] == "restricted"
    assert leaf.data["checkpoint_size"] == str(result.checkpoint_size)
    assert result.event_seq >= result.checkpoint_size  # not inside the bundle it records
    row = case.db.execute("SELECT profile FROM exports WHERE bundle_id = ?", [result.bundle_id])
    assert row.fetchone() == ("restricted",)
    assert case.log.latest_checkpoint() is not None
    assert case.log.size() == result.event_seq + 1


def test_same_state_gives_byte_identical_bag_and_zip(built: BuiltCase, tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        case = copy_case(built, tmp_path / f"case-{name}").open()
        try:
            outputs.append(_export(case, tmp_path / f"out-{name}", "otp", zip_file=True))
        finally:
            case.close()
    one, two = outputs
    assert one.bundle_id == two.bundle_id
    assert bag_files(one.bag) == bag_files(two.bag)
    assert one.zip_path is not None and two.zip_path is not None
    assert one.zip_path.read_bytes() == two.zip_path.read_bytes()


def test_another_created_time_gives_another_bundle_id(case: Case, tmp_path: Path) -> None:
    one = _export(case, tmp_path / "one")
    two = export_bundle(
        case,
        investigator_signer(),
        selection=INCIDENT,
        profile="restricted",
        out_dir=tmp_path / "two",
        created="2026-11-23T00:00:00Z",
    )
    assert one.bundle_id != two.bundle_id


@pytest.mark.parametrize("profile", ["restricted", "public", "otp"])
def test_no_protected_plaintext_in_any_bundle(case: Case, tmp_path: Path, profile: Profile) -> None:
    selection = Selection(all=True) if profile == "public" else INCIDENT
    result = _export(case, tmp_path / "out", profile, zip_file=True, selection=selection)
    assert result.zip_path is not None
    haystacks = [*bag_files(result.bag).values(), result.zip_path.read_bytes()]
    index_pdf = result.bag / "data" / "index.pdf"
    haystacks.append(pdf_stream_bytes(index_pdf))
    haystacks.append("\n".join(page_texts(index_pdf)).encode())
    for secret in SECRETS:
        for encoding in ("utf-8", "utf-16-be", "utf-16-le"):
            needle = secret.encode(encoding)
            assert not any(needle in data for data in haystacks), (secret, encoding)
        # Also a distinctive part of each value, in case of wrapping or escaping.
        assert not any(secret.split()[-1].encode() in data for data in haystacks)
    if profile != "public":
        # The search does find what a bundle does carry: the witness code, in files and PDF.
        assert any(b"W-017" in data for data in haystacks)
        assert "W-017" in "".join(page_texts(index_pdf))
    sealed = list((result.bag / "data").rglob("*.sealed"))
    assert bool(sealed) is (profile == "otp")


def test_public_bundle_holds_only_public_items(case: Case, tmp_path: Path) -> None:
    result = _export(case, tmp_path / "out", "public", selection=Selection(all=True))
    document = json.loads((result.bag / "data/metadata/items.json").read_bytes())
    assert {i["confidentiality"] for i in document["items"]} == {"public"}
    assert document["testimonies"] == []
    assert any("W-017 left out" in w for w in result.warnings)


@pytest.mark.parametrize("existing", ["bundle", "bundle.zip"])
def test_existing_output_is_refused_before_anything_is_recorded(
    case: Case, tmp_path: Path, existing: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / existing).write_text("keep me", encoding="utf-8")
    size = case.log.size()
    with pytest.raises(InputError, match="already exists"):
        _export(case, out, zip_file=True)
    assert case.log.size() == size
    assert (out / existing).read_text(encoding="utf-8") == "keep me"


@pytest.mark.parametrize("fails", ["zip", "record"])
def test_a_failed_zip_or_record_leaves_no_bundle_behind(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    """A full disk under the zip, or a catalog that refuses the event: nothing unrecorded
    is left under --out, the error names the file, and the same export then succeeds."""
    out = tmp_path / "out"
    append = Recorder.append
    if fails == "zip":

        def no_space(*_args: object, **_kw: object) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out / ".partial"))

        monkeypatch.setattr("exports.bundle.stage_zip", no_space)
    else:

        def refused(self: Recorder, draft: EventDraft, signer: Any) -> Any:
            if draft.action == "export.made":
                raise EnvironmentProblem("the catalog is read-only", "fix the permissions")
            return append(self, draft, signer)

        monkeypatch.setattr(Recorder, "append", refused)
    exported = case.log.size()
    with pytest.raises(EnvironmentProblem) as raised:
        _export(case, out, zip_file=True)
    if fails == "zip":
        assert str(out / "bundle.zip") in raised.value.message
        assert "No space left on device" in raised.value.message
    assert sorted(p.name for p in out.iterdir()) == []
    assert "export.made" not in {
        parse_leaf(case.log.leaf(seq)).event.action for seq in range(case.log.size())
    }
    assert case.log.size() >= exported  # ERNs given before writing stay given
    monkeypatch.undo()
    result = _export(case, out, zip_file=True)
    assert result.bag.is_dir() and (out / "bundle.zip").is_file()


def test_the_bundle_is_seen_only_once_the_export_is_recorded(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed while it records the export, an export leaves no bundle that the log does not
    record: until the event commits, the bag and zip have hidden names."""
    out = tmp_path / "out"
    append = Recorder.append
    seen: list[list[str]] = []

    def watched(self: Recorder, draft: EventDraft, signer: Any) -> Any:
        if draft.action == "export.made":
            seen.append(sorted(p.name for p in out.iterdir()))
        return append(self, draft, signer)

    monkeypatch.setattr(Recorder, "append", watched)
    result = _export(case, out, zip_file=True)
    [names] = seen
    assert len(names) == 2
    assert all(name.startswith((".bundle.partial-", ".bundle.zip.partial-")) for name in names)
    assert sorted(p.name for p in out.iterdir()) == ["bundle", "bundle.zip"]
    assert result.bag == out / "bundle"
    with zipfile.ZipFile(out / "bundle.zip") as archive:
        assert {name.split("/")[0] for name in archive.namelist()} == {"bundle"}

    def stopped(self: Recorder, draft: EventDraft, signer: Any) -> Any:
        if draft.action == "export.made":
            raise KeyboardInterrupt
        return append(self, draft, signer)

    monkeypatch.setattr(Recorder, "append", stopped)
    again = tmp_path / "again"
    with pytest.raises(KeyboardInterrupt):
        _export(case, again, zip_file=True)
    assert list(again.iterdir()) == []


def test_a_stop_signal_while_recording_waits_until_the_bundle_has_its_name(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C once the catalog is locked for the export's event is held until the bag and zip
    have their names and the log is checkpointed; the stop then says the export is done."""
    out = tmp_path / "out"
    append = Recorder.append

    def ctrl_c_meanwhile(self: Recorder, draft: EventDraft, signer: Any) -> Any:
        if draft.action == "export.made":
            signal.raise_signal(signal.SIGINT)
        return append(self, draft, signer)

    monkeypatch.setattr(Recorder, "append", ctrl_c_meanwhile)
    with pytest.raises(KeyboardInterrupt) as stopped:
        _export(case, out, zip_file=True)
    monkeypatch.undo()
    seq = case.log.size() - 1
    assert parse_leaf(case.log.leaf(seq)).event.action == "export.made"
    assert stopped.value.done == (  # type: ignore[attr-defined]
        f"the export was recorded as seq {seq} and written to {out / 'bundle'} and "
        f"{out / 'bundle.zip'}"
    )
    assert sorted(p.name for p in out.iterdir()) == ["bundle", "bundle.zip"]
    assert max(checkpoint[0] for checkpoint in case.log.iter_checkpoints()) == seq + 1
    assert bagit.Bag(str(out / "bundle")).is_valid()


def test_bad_created_time_is_refused(case: Case, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--created"):
        export_bundle(
            case,
            investigator_signer(),
            selection=INCIDENT,
            profile="restricted",
            out_dir=tmp_path / "b",
            created="yesterday",
        )


def _export_created(case: Case, out: Path, created: str) -> ExportResult:
    return export_bundle(
        case,
        investigator_signer(),
        selection=INCIDENT,
        profile="restricted",
        out_dir=out,
        created=created,
    )


def test_created_before_the_erns_it_would_assign_is_refused_before_recording(
    case: Case, tmp_path: Path
) -> None:
    # The case's events are of 2026-03-02; the ERNs would be given now (2026-03-03 here).
    size = case.log.size()
    with pytest.raises(InputError) as raised:
        _export_created(case, tmp_path / "b", "2026-03-02T12:00:00Z")
    message = raised.value.message
    assert message.startswith("--created 2026-03-02T12:00:00Z is earlier than the ERN assignment")
    assert "at or after 2026-03-03T00:00:00" in raised.value.hint
    assert "leave --created out" in raised.value.hint
    assert case.log.size() == size
    assert not (tmp_path / "b").exists()


def test_created_before_the_latest_event_of_the_bundle_is_refused(
    case: Case, tmp_path: Path
) -> None:
    _export_created(case, tmp_path / "first", CREATED)
    events = [parse_leaf(case.log.leaf(seq)).event for seq in range(case.log.size())]
    last_ern = max((e for e in events if e.action == "ern.assigned"), key=lambda e: e.seq)
    size = case.log.size()
    with pytest.raises(InputError) as raised:
        _export_created(case, tmp_path / "second", "2026-03-02T12:00:00Z")
    assert raised.value.message.startswith(
        f"--created 2026-03-02T12:00:00Z is earlier than event {last_ern.seq} (ern.assigned) "
        f"at {last_ern.time}"
    )
    assert f"at or after {last_ern.time}" in raised.value.hint
    assert case.log.size() == size
    assert not (tmp_path / "second").exists()
    # At the time of the latest event it is accepted.
    assert _export_created(case, tmp_path / "third", last_ern.time).bag.is_dir()


def test_default_created_is_not_before_any_event_of_the_bundle(case: Case, tmp_path: Path) -> None:
    result = export_bundle(
        case,
        investigator_signer(),
        selection=INCIDENT,
        profile="restricted",
        out_dir=tmp_path / "b",
    )
    info = (result.bag / "bag-info.txt").read_text(encoding="utf-8")
    created = parse_time(
        next(line.split(": ")[1] for line in info.splitlines() if "Bundle-Created" in line)
    )
    for path in (result.bag / "data/custody/events").glob("*.leaf"):
        assert parse_time(parse_leaf(path.read_bytes()).event.time) <= created


def test_the_next_export_keeps_the_hidden_files_of_a_recorded_one(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export recorded whose files could not take their name (or was killed just after
    the commit) leaves finished files under hidden names: the log describes them. The next
    export of the same name keeps them and says where they are; it removes only what killed
    runs left unfinished or unrecorded."""
    out = tmp_path / "out"

    def name_refused(self: Staged) -> Path:
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(self.target))

    monkeypatch.setattr(Staged, "place", name_refused)
    with pytest.raises(EnvironmentProblem, match="the export is recorded as seq"):
        _export(case, out, zip_file=True)
    monkeypatch.undo()
    # As a killed run leaves them: named with the id of a process that has ended.
    dead = ended_pid()
    recorded = sorted(
        p.rename(p.with_name(re.sub(r"\.partial-\d+-", f".partial-{dead}-", p.name)))
        for p in out.iterdir()
    )
    assert [p.name.split(".partial-")[0] for p in recorded] == [".bundle", ".bundle.zip"]
    unfinished = out / f".bundle.partial-{dead}-unfinished"
    shutil.copytree(recorded[0], unfinished)
    (unfinished / "tagmanifest-sha256.txt.sig").unlink()
    unrecorded = out / f".bundle.zip.partial-{dead}-unrecorded"
    with zipfile.ZipFile(recorded[1]) as source, zipfile.ZipFile(unrecorded, "w") as copy:
        for member in source.namelist():
            data = source.read(member)
            if member.endswith("/bag-info.txt"):
                data = re.sub(rb"External-Identifier: .*", b"External-Identifier: other", data)
            copy.writestr(member, data)

    result = _export(case, out, zip_file=True)
    assert sorted(out.iterdir()) == sorted([out / "bundle", out / "bundle.zip", *recorded])
    for path in recorded:
        assert any(w.startswith(f"{path} holds the finished files") for w in result.warnings)
    assert bagit.Bag(str(recorded[0])).is_valid()
