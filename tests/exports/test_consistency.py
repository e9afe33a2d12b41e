"""Consistency proofs in bundles: ``audit --since`` shows that a later bundle extends an earlier.

The case exports three bundles with new evidence in between. The later bundles carry proofs
from the earlier bundles' checkpoint sizes (and from the checkpoint signed after each export),
so an auditor who holds an earlier checkpoint can check, offline, that nothing was removed or
rewritten. A forged, foreign or later checkpoint and a damaged proof are each named.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from chain_of_custody import (
    Checkpoint,
    InputError,
    MemoryTree,
    Signer,
    parse_note,
    sign_checkpoint,
    signer_from_seed,
    verify_consistency,
)
from evidence.ingest import ingest
from evidence.models import ItemOptions
from evidence.workspace import Case
from exports.audit import AuditReport, audit_bundle
from exports.bag import write_bag, write_zip
from exports.bundle import ExportResult, export_bundle
from exports.consistency import format_consistency_proof, parse_consistency_proof
from exports.model import BundleContent, ConsistencyProofFile, Selection
from tests.exports.casebuilder import (
    BuiltCase,
    bag_files,
    build_case,
    copy_case,
    investigator_signer,
)
from tests.exports.conftest import Fixture

TRUSTED = [investigator_signer().verifier]
OTHER = signer_from_seed("someone-else", bytes(range(2, 34)))
INCIDENT = Selection(incidents=("INC-0001",))


def codes(report: AuditReport) -> set[str]:
    return {f.code for f in report.findings}


def bundle_checkpoint(bag: Path) -> bytes:
    return (bag / "data" / "custody" / "checkpoint.txt").read_bytes()


def checkpoint_of(note: bytes) -> Checkpoint:
    return Checkpoint.from_text(parse_note(note).text)


@dataclass(frozen=True)
class History:
    """Three bundles of one case, the checkpoints signed after each, and the case copies."""

    first: ExportResult
    second: ExportResult
    third: ExportResult
    after_first: bytes
    after_third: bytes
    case_root: Path
    before_third: Path


def _add_note(case: Case, signer: Signer, path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    report = ingest(
        case,
        signer,
        [path],
        options=ItemOptions(
            source="Example Documentation NGO field team",
            collected_by="Investigator A",
            collected_at="2026-03-05",
            method="handed-over",
            description="Invented note added between exports",
            confidentiality="public",
        ),
    )
    assert report.ok, report.refused


def _export(case: Case, out: Path, created: str, selection: Selection) -> ExportResult:
    return export_bundle(
        case,
        investigator_signer(),
        selection=selection,
        profile="restricted",
        out_dir=out,
        created=created,
    )


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    root = tmp_path_factory.mktemp("consistency")
    built = build_case(root / "built")
    case = built.open()
    signer = investigator_signer()
    try:
        first = _export(case, root / "b1", "2026-11-22T03:20:00Z", INCIDENT)
        after_first = case.log.latest_checkpoint()
        _add_note(case, signer, root / "note-1.txt", "First invented note.\n")
        second = _export(case, root / "b2", "2026-11-23T03:20:00Z", Selection(all=True))
        _add_note(case, signer, root / "note-2.txt", "Second invented note.\n")
    finally:
        case.close()
    # A copy of the state just before the third export, to export it again for determinism.
    before_third = copy_case(built, root / "before-third").root
    case = built.open()
    try:
        third = _export(case, root / "b3", "2026-11-24T03:20:00Z", Selection(all=True))
        after_third = case.log.latest_checkpoint()
    finally:
        case.close()
    assert after_first is not None and after_third is not None
    return History(first, second, third, after_first, after_third, built.root, before_third)


@pytest.fixture
def third_bag(history: History, tmp_path: Path) -> Path:
    """A private, writable copy of the third bag to damage."""
    target = tmp_path / "bundle"
    shutil.copytree(history.third.bag, target)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


# --- what the bundles carry ---------------------------------------------------------------------


def test_first_bundle_carries_no_consistency_proofs(history: History) -> None:
    assert not (history.first.bag / "data" / "custody" / "consistency").exists()
    assert "no consistency proofs" in (
        history.first.bag / "data" / "custody" / "VERIFY.md"
    ).read_text(encoding="utf-8")


def test_later_bundles_carry_proofs_from_each_earlier_export(history: History) -> None:
    first, second, third = history.first, history.second, history.third
    # Each export's own checkpoint, and the one signed after its export.made event.
    expected_second = {first.checkpoint_size, first.event_seq + 1}
    expected_third = expected_second | {second.checkpoint_size, second.event_seq + 1}
    for result, expected in ((second, expected_second), (third, expected_third)):
        folder = result.bag / "data" / "custody" / "consistency"
        assert {int(p.stem) for p in folder.glob("*.proof")} == expected
        manifest = (result.bag / "manifest-sha256.txt").read_text(encoding="utf-8")
        for old in expected:
            assert f"  data/custody/consistency/{old}.proof\n" in manifest
            old_size, new_size, _ = parse_consistency_proof((folder / f"{old}.proof").read_bytes())
            assert (old_size, new_size) == (old, result.checkpoint_size)
        verify_md = (result.bag / "data" / "custody" / "VERIFY.md").read_text(encoding="utf-8")
        assert "--since" in verify_md
        for old in expected:
            assert f"`{old}`" in verify_md


def test_proofs_come_from_the_log_state_alone(history: History, tmp_path: Path) -> None:
    """The same case state gives the same bundle bytes, consistency proofs included."""
    case = copy_case_at(history.before_third, tmp_path / "case")
    try:
        again = _export(case, tmp_path / "b3", "2026-11-24T03:20:00Z", Selection(all=True))
    finally:
        case.close()
    assert bag_files(again.bag) == bag_files(history.third.bag)


def _first(h: History) -> bytes:
    """The checkpoint in the first bundle."""
    return bundle_checkpoint(h.first.bag)


def copy_case_at(source: Path, target: Path) -> Case:
    """Open a byte-for-byte copy of the case directory ``source``."""
    return copy_case(BuiltCase(root=source, items={}, witness_document=""), target).open()


# --- audit --since: passes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "earlier",
    [
        pytest.param(_first, id="first-bundle-checkpoint"),
        pytest.param(lambda h: h.after_first, id="checkpoint-after-first-export"),
        pytest.param(lambda h: bundle_checkpoint(h.second.bag), id="second-bundle-checkpoint"),
        pytest.param(lambda h: bundle_checkpoint(h.third.bag), id="same-checkpoint"),
    ],
)
def test_since_an_earlier_checkpoint_passes(
    history: History, earlier: Callable[[History], bytes]
) -> None:
    note = earlier(history)
    report = audit_bundle(history.third.bag, TRUSTED, since=note)
    assert report.ok, report.findings
    assert report.consistency_proofs == 4
    old = checkpoint_of(note)
    if old.size < history.third.checkpoint_size:
        assert report.since_size == old.size


def test_since_first_bundle_passes_on_the_zip_and_without_trust(
    history: History, tmp_path: Path
) -> None:
    zipped = write_zip(history.second.bag, tmp_path / "second.zip", created="2026-11-23T03:20:00Z")
    report = audit_bundle(zipped, TRUSTED, since=bundle_checkpoint(history.first.bag))
    assert report.ok, report.findings
    # Without --trust the bundle's own keys are trusted, with a warning saying so.
    report = audit_bundle(history.second.bag, [], since=bundle_checkpoint(history.first.bag))
    assert report.ok, report.findings
    assert any("no --trust key" in w for w in report.warnings)


# --- audit --since: fails, naming the problem ----------------------------------------------------


def _resigned(
    note: bytes,
    signer: Signer,
    *,
    origin: str | None = None,
    size: int | None = None,
    root: bytes | None = None,
) -> bytes:
    """The checkpoint of ``note`` with some fields changed, signed anew by ``signer``."""
    old = checkpoint_of(note)
    changed = Checkpoint(origin or old.origin, size or old.size, root or old.root)
    return sign_checkpoint(changed, [signer])


@pytest.mark.parametrize(
    ("make", "code", "words"),
    [
        pytest.param(
            lambda h: _resigned(_first(h), investigator_signer(), root=b"\x07" * 32),
            "since-inconsistent",
            "is not extended by",
            id="forged-root-trusted-signer",
        ),
        pytest.param(
            lambda h: _resigned(_first(h), investigator_signer(), origin="example.org/other-log"),
            "since-other-log",
            "example.org/other-log",
            id="other-log",
        ),
        pytest.param(
            lambda h: _resigned(_first(h), OTHER),
            "since-untrusted",
            "earlier checkpoint",
            id="signed-by-an-untrusted-key",
        ),
        pytest.param(
            lambda h: _first(h).replace(b"\n\n", b"\nx\n\n", 1),
            "since-untrusted",
            "earlier checkpoint",
            id="altered-after-signing",
        ),
        pytest.param(
            lambda h: h.after_third,
            "since-rollback",
            "rolled back",
            id="rollback-later-checkpoint",
        ),
        pytest.param(
            lambda h: _resigned(
                bundle_checkpoint(h.third.bag), investigator_signer(), root=b"\x01" * 32
            ),
            "since-fork",
            "forked",
            id="fork-same-size",
        ),
        pytest.param(
            lambda h: _resigned(
                _first(h),
                investigator_signer(),
                size=checkpoint_of(_first(h)).size - 1,
            ),
            "since-unproven",
            "evidence log consistency",
            id="size-without-proof",
        ),
    ],
)
def test_since_bad_checkpoint_is_named(
    history: History, make: Callable[[History], bytes], code: str, words: str
) -> None:
    note = make(history)
    report = audit_bundle(history.third.bag, TRUSTED, since=note)
    assert code in codes(report), report.findings
    assert codes(report) == {code}
    finding = next(f for f in report.findings if f.code == code)
    assert words in finding.message
    assert report.since_size is None


def test_since_real_checkpoint_without_proof_is_unproven(history: History, tmp_path: Path) -> None:
    """A genuine checkpoint of a size no earlier bundle had: the audit cannot prove it."""
    case = copy_case_at(history.case_root, tmp_path / "case")
    try:
        size = history.first.checkpoint_size - 2
        note = sign_checkpoint(
            Checkpoint(checkpoint_of(history.after_first).origin, size, case.log.root(size)),
            [investigator_signer()],
        )
    finally:
        case.close()
    report = audit_bundle(history.third.bag, TRUSTED, since=note)
    assert codes(report) == {"since-unproven"}


# --- damaged proof files -------------------------------------------------------------------------


def _proof_path(history: History, bag: Path) -> Path:
    old = checkpoint_of(bundle_checkpoint(history.first.bag)).size
    return bag / "data" / "custody" / "consistency" / f"{old}.proof"


def _wrong_hash(path: Path) -> None:
    old, new, hashes = parse_consistency_proof(path.read_bytes())
    path.write_bytes(format_consistency_proof(old, new, [bytes(32), *hashes[1:]]))


def _wrong_new_size(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(b"\nnew ", b"\nnew 1"))


def _garbage(path: Path) -> None:
    path.write_bytes(b"not a proof\n")


def _renamed(path: Path) -> None:
    path.rename(path.with_name("1.proof"))


def _removed(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(
    ("damage", "code", "bag_code"),
    [
        pytest.param(_wrong_hash, "since-inconsistent", "file-hash-mismatch", id="wrong-hash"),
        pytest.param(
            _wrong_new_size, "consistency-wrong-size", "file-hash-mismatch", id="wrong-new-size"
        ),
        pytest.param(_garbage, "consistency-malformed", "file-hash-mismatch", id="garbage"),
        pytest.param(_renamed, "consistency-misnamed", "file-unlisted", id="renamed"),
        pytest.param(_removed, "since-unproven", "file-missing", id="removed"),
    ],
)
def test_damaged_proof_file_is_named(
    history: History,
    third_bag: Path,
    damage: Callable[[Path], None],
    code: str,
    bag_code: str,
) -> None:
    damage(_proof_path(history, third_bag))
    report = audit_bundle(third_bag, TRUSTED, since=bundle_checkpoint(history.first.bag))
    assert code in codes(report), report.findings
    # The manifests catch the change as well: a proof cannot be swapped without breaking the bag.
    assert bag_code in codes(report), report.findings


# --- the model and the file format --------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        pytest.param({"old_size": 5, "new_size": 5, "hashes": ()}, "smaller size", id="equal"),
        pytest.param({"old_size": 6, "new_size": 5, "hashes": ()}, "smaller size", id="shrinks"),
        pytest.param({"old_size": 0, "new_size": 5, "hashes": ()}, "greater than", id="from-0"),
        pytest.param(
            {"old_size": 1, "new_size": 5, "hashes": (b"short",)}, "32 bytes", id="short-hash"
        ),
        pytest.param(
            {"old_size": 1, "new_size": 5, "hashes": (bytes(32),) * 129},
            "at most 128",
            id="too-many-hashes",
        ),
    ],
)
def test_bad_consistency_proof_model_is_refused(fields: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        ConsistencyProofFile.model_validate(fields)


def _proof(old: int, new: int) -> ConsistencyProofFile:
    return ConsistencyProofFile(old_size=old, new_size=new, hashes=(bytes(32),))


@pytest.mark.parametrize(
    ("proofs", "words"),
    [
        pytest.param(lambda n: (_proof(1, n + 1),), "not to the checkpoint size", id="wrong-new"),
        pytest.param(lambda n: (_proof(2, n), _proof(1, n)), "ordered by old_size", id="unordered"),
        pytest.param(lambda n: (_proof(1, n), _proof(1, n)), "each size once", id="duplicate"),
    ],
)
def test_bundle_content_refuses_bad_proof_lists(
    bundle: Fixture,
    proofs: Callable[[int], tuple[ConsistencyProofFile, ...]],
    words: str,
) -> None:
    size = bundle.content.info.checkpoint_size
    fields = dict(bundle.content) | {"consistency_proofs": proofs(size)}
    with pytest.raises(ValidationError, match=words):
        BundleContent(**fields)


def test_bag_writes_each_proof_in_its_file(bundle: Fixture, tmp_path: Path) -> None:
    size = bundle.content.info.checkpoint_size
    proofs = (_proof(1, size), _proof(3, size))
    content = bundle.content.model_copy(update={"consistency_proofs": proofs})
    written = write_bag(
        content,
        tmp_path / "bag",
        sign_tagmanifest=bundle.key.sign,
        signer_key_id=bundle.key.key_id,
    )
    folder = written.path / "data" / "custody" / "consistency"
    assert sorted(p.name for p in folder.iterdir()) == ["1.proof", "3.proof"]
    assert (folder / "3.proof").read_bytes() == format_consistency_proof(3, size, [bytes(32)])


@given(
    sizes=st.integers(min_value=1, max_value=200).flatmap(
        lambda new: st.tuples(st.integers(min_value=1, max_value=new), st.just(new))
    )
)
def test_consistency_proof_file_round_trip(sizes: tuple[int, int]) -> None:
    old, new = sizes
    tree = MemoryTree()
    for n in range(new):
        tree.append(f"leaf {n}".encode())
    hashes = tree.view.consistency_proof(old, new)
    data = format_consistency_proof(old, new, hashes)
    assert parse_consistency_proof(data) == (old, new, list(hashes))
    verify_consistency(
        old, new, parse_consistency_proof(data)[2], tree.view.root(old), tree.view.root(new)
    )


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"evidence-locker/consistency@v1\nold 1\nnew 2", id="no-final-newline"),
        pytest.param(b"evidence-locker/consistency@v2\nold 1\nnew 2\n", id="other-version"),
        pytest.param(b"evidence-locker/consistency@v1\nold -1\nnew 2\n", id="negative"),
        pytest.param(b"evidence-locker/consistency@v1\nnew 2\nold 1\n", id="swapped-lines"),
        pytest.param(
            b"evidence-locker/consistency@v1\nold 1\nnew 2\n" + b"AAAA\n", id="short-hash"
        ),
        pytest.param(
            b"evidence-locker/consistency@v1\nold 1\nnew 2\n"
            + b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" * 129,
            id="too-many-hashes",
        ),
        pytest.param("evidence-locker/consistency@v1\nold 1\nnew 2\né\n".encode(), id="non-ascii"),
    ],
)
def test_bad_consistency_proof_files_are_refused(data: bytes) -> None:
    with pytest.raises(InputError):
        parse_consistency_proof(data)
