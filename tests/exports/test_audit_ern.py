"""audit_bundle: each ERN of a bundle must be the one the signed log assigned to its record.

A court cites an item by its ERN. The bundle names an item's original, stamped copy and proof
file by it, and the ``ern.assigned`` event of the log (subject: the item's sha256, or the
testimony document's) says which numbers belong to which bytes. Each attack here is what an
insider holding the exporting key could do to a bundle the toolkit wrote: rename files, drop or
rewrite assignment events, then write the manifests again and sign the tag manifest.

An event the insider writes is in no log the checkpoint commits to, so its proof file gives it
away (test_audit_event_proofs.py). The attacks that rewrite events here go one step further
(:func:`relog`): the insider, whose key also signs checkpoints, signs a checkpoint of a log of
their own making and proves every event of the bundle in it. Only ``--since`` with a checkpoint
of the real log shows that; the ERN checks must still find what the numbers say.

The restricted bundle of the ``bag`` fixture holds the 3-page transfer list (UATEST-000001 to
UATEST-000003, with a stamped copy), the bus photo (UATEST-000004) and W-017's statement record
(UATEST-000005).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from chain_of_custody import (
    Checkpoint,
    Event,
    Finding,
    MemoryTree,
    ProofFile,
    Signer,
    format_proof,
    make_leaf,
    parse_leaf,
    parse_note,
    parse_proof,
    sign_checkpoint,
)
from evidence.derive import derive_item
from evidence.links import make_links
from exports.audit import AuditReport, audit_bundle
from exports.bundle import export_bundle
from exports.model import Profile, Selection
from tests.exports.casebuilder import (
    CREATED,
    BuiltCase,
    build_case,
    investigator_signer,
    make_png,
    recipient_key,
)
from tests.exports.test_audit import OTHER, TRUSTED, codes, rebag

EVENTS = "data/custody/events"
EVENT_PROOFS = "data/custody/event-proofs"
PROOFS = "data/custody/proofs"
CHECKPOINT = "data/custody/checkpoint.txt"
PDF_ERN, PHOTO_ERN, STATEMENT_ERN = "UATEST-000001", "UATEST-000004", "UATEST-000005"


def _findings(report: AuditReport, code: str) -> list[Finding]:
    return [f for f in report.findings if f.code == code]


def _rename_record(bag: Path, old: str, new: str, *, stamped: bool = True) -> None:
    """Give the record named ``old`` the ERN ``new``: its original, proof and stamped copy."""
    folders = ["data/originals", *(["data/stamped"] if stamped else [])]
    for folder in folders:
        for path in (bag / folder).glob(f"{old}_*"):
            path.rename(path.with_name(new + path.name[len(old) :]))
    proof = bag / PROOFS / f"{old}.proof"
    proof.rename(proof.with_name(f"{new}.proof"))
    _relist_record(bag, old, new)


def _relist_record(bag: Path, old: str, new: str) -> None:
    """Rename the record in data/metadata/items.json too, as a careful insider would: the
    findings are then the ERN check's alone."""
    path = bag / "data/metadata/items.json"
    document = json.loads(path.read_bytes())
    for entry in (*document["items"], *document["testimonies"]):
        if entry["ern"] == old:
            entry["ern"] = new
            entry["files"] = {
                name: href.replace(f"/{old}", f"/{new}", 1) if name != "leaf" else href
                for name, href in entry["files"].items()
            }
    path.write_text(json.dumps(document), encoding="utf-8")


def _swap_records(bag: Path, one: str, other: str) -> None:
    _rename_record(bag, one, "UATEST-999999")
    _rename_record(bag, other, one)
    _rename_record(bag, "UATEST-999999", other)


def _leaf_path(bag: Path, seq: int) -> Path:
    return bag / EVENTS / f"{seq:012d}.leaf"


def _event(bag: Path, seq: int) -> Event:
    return parse_leaf(_leaf_path(bag, seq).read_bytes()).event


def _assignment_seq(bag: Path, ern: str) -> int:
    """The seq of the ``ern.assigned`` event whose range starts at ``ern``."""
    for path in sorted((bag / EVENTS).glob("*.leaf")):
        event = parse_leaf(path.read_bytes()).event
        if event.action == "ern.assigned" and event.data["first"] == ern:
            return event.seq
    raise AssertionError(f"no ern.assigned event starts at {ern}")


def _write_event(bag: Path, event: Event, signer: Signer) -> None:
    _leaf_path(bag, event.seq).write_bytes(make_leaf(event, signer))


def _remove_event(bag: Path, seq: int) -> None:
    """Drop an event from the bundle: its leaf and its proof file."""
    _leaf_path(bag, seq).unlink()
    (bag / EVENT_PROOFS / f"{seq:012d}.proof").unlink()


def relog(bag: Path, signer: Signer) -> None:
    """Prove the bundle's events, as they now are, in a log of the insider's making.

    The tree has the checkpoint's size, each event of the bundle at its seq and filler leaves
    between them; its checkpoint is signed by ``signer``, and every proof file (of the items
    and of the events) and the ``Custody-Checkpoint`` of bag-info.txt are written again for it.
    """
    old = Checkpoint.from_text(parse_note((bag / CHECKPOINT).read_bytes()).text)
    leaves = {}
    for path in (bag / EVENTS).glob("*.leaf"):
        raw = path.read_bytes()
        leaves[parse_leaf(raw).event.seq] = raw
    tree = MemoryTree()
    for seq in range(old.size):
        tree.append(leaves.get(seq, f"filler {seq}\n".encode()))
    checkpoint = Checkpoint(old.origin, old.size, tree.root())
    note = sign_checkpoint(checkpoint, [signer])
    (bag / CHECKPOINT).write_bytes(note)

    def proof(seq: int) -> bytes:
        path = tuple(tree.view.inclusion_proof(seq, old.size))
        return format_proof(ProofFile(leaves[seq], seq, path, note))

    for path in (bag / EVENT_PROOFS).glob("*.proof"):
        path.unlink()
    for seq in leaves:
        (bag / EVENT_PROOFS / f"{seq:012d}.proof").write_bytes(proof(seq))
    for path in (bag / PROOFS).glob("*.proof"):
        path.write_bytes(proof(parse_proof(path.read_bytes()).index))
    info = bag / "bag-info.txt"
    lines = [
        f"Custody-Checkpoint: {old.origin} {old.size} {checkpoint.root.hex()}"
        if line.startswith("Custody-Checkpoint:")
        else line
        for line in info.read_text(encoding="utf-8").splitlines()
    ]
    info.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _range(first: int, last: int) -> dict[str, str]:
    return {
        "first": f"UATEST-{first:06d}",
        "last": f"UATEST-{last:06d}",
        "number_first": str(first),
        "number_last": str(last),
    }


def _audit_resigned(bag: Path) -> AuditReport:
    """Sign the bag again as the insider would, then audit it with the exporter's key."""
    rebag(bag, investigator_signer())
    return audit_bundle(bag, TRUSTED)


def _audit_relogged(bag: Path) -> AuditReport:
    """Prove the bag's events in the insider's own log (:func:`relog`), sign the bag again
    and audit it with the exporter's key."""
    relog(bag, investigator_signer())
    return _audit_resigned(bag)


# --- bundles the toolkit writes audit clean ------------------------------------------------


@dataclass(frozen=True)
class Exported:
    """One bundle of the sequence below, and how many records it holds."""

    profile: Profile
    bag: Path
    records: int


@pytest.fixture(scope="module")
def exported_profiles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Exported]:
    """Three bundles of one case, each export numbering what earlier ones had not.

    The case has a redacted copy of the bus photo (a derived item with its own ERN) besides
    the items and the testimony of ``build_case``: the public bundle numbers the photo and its
    copy first, the otp bundle of everything numbers the rest (a 3-page PDF, the testimony),
    and the restricted bundle of the facility reuses the numbers of both.
    """
    root = tmp_path_factory.mktemp("ern-profiles")
    built: BuiltCase = build_case(root / "built")
    signer = investigator_signer()
    redacted = root / "bus_photo_blurred.png"
    make_png(redacted, (90, 90, 90))
    case = built.open()
    try:
        copy = derive_item(
            case,
            signer,
            built.items["bus_photo"],
            kind="redaction",
            file=redacted,
            reason="faces blurred (test)",
            tool="blur 1.0 (fictional)",
        ).sha256
        make_links(case, signer, copy, {"incident": ["INC-0001"]}, "copy for publication")
        runs: list[tuple[str, Profile, Selection]] = [
            ("public", "public", Selection(incidents=("INC-0001",))),
            ("otp", "otp", Selection(all=True)),
            ("restricted", "restricted", Selection(facilities=("FAC-0001",))),
        ]
        done = {}
        for name, profile, selection in runs:
            result = export_bundle(
                case,
                signer,
                selection=selection,
                profile=profile,
                out_dir=root / name,
                created=CREATED,
                recipient=recipient_key().public if profile == "otp" else None,
            )
            done[name] = Exported(profile, result.bag, result.items + result.testimonies)
    finally:
        case.close()
    return done


@pytest.mark.parametrize("name", ["public", "otp", "restricted"])
def test_bundles_of_each_profile_audit_clean(
    exported_profiles: dict[str, Exported], name: str
) -> None:
    exported = exported_profiles[name]
    report = audit_bundle(exported.bag, TRUSTED)
    assert report.ok, report.findings
    assert report.proofs == report.originals == exported.records
    # Every event the bundle carries has its proof, named like its leaf, and nothing else does.
    leaves = sorted(p.stem for p in (exported.bag / EVENTS).iterdir())
    assert sorted(p.stem for p in (exported.bag / EVENT_PROOFS).iterdir()) == leaves
    assert report.event_proofs == report.leaves == len(leaves)
    for stem in leaves:
        proof = parse_proof((exported.bag / EVENT_PROOFS / f"{stem}.proof").read_bytes())
        assert proof.leaf == (exported.bag / EVENTS / f"{stem}.leaf").read_bytes()
        assert proof.index == int(stem)
    # The proof of the event that recorded a record is its proof file, byte for byte.
    for path in (exported.bag / PROOFS).iterdir():
        index = parse_proof(path.read_bytes()).index
        assert (exported.bag / EVENT_PROOFS / f"{index:012d}.proof").read_bytes() == (
            path.read_bytes()
        )


def test_the_sequence_covers_testimonies_copies_and_stamped_pdfs(
    exported_profiles: dict[str, Exported],
) -> None:
    otp = exported_profiles["otp"].bag
    names = sorted(p.name for p in (otp / "data/originals").iterdir())
    assert any(n.endswith("_bus_photo_blurred.png") for n in names), names
    assert any("testimony" in n for n in names), names
    assert sorted(p.name for p in (otp / "data/stamped").iterdir()) == [
        n for n in names if n.endswith(".pdf")
    ]
    # The restricted bundle reuses numbers assigned by both earlier exports.
    public_erns = {p.stem for p in (exported_profiles["public"].bag / PROOFS).iterdir()}
    restricted_erns = {p.stem for p in (exported_profiles["restricted"].bag / PROOFS).iterdir()}
    assert public_erns & restricted_erns and restricted_erns - public_erns


def test_a_bundle_audits_clean_after_only_rebagging(bag: Path) -> None:
    assert _audit_resigned(bag).ok


def test_a_bundle_audits_clean_after_only_relogging(bag: Path) -> None:
    # The insider's log holds the same events: only a checkpoint of the real log tells.
    genuine = (bag / CHECKPOINT).read_bytes()
    assert _audit_relogged(bag).ok
    assert codes(audit_bundle(bag, TRUSTED, since=genuine)) == {"since-fork"}


# --- files renamed to another ERN ----------------------------------------------------------


def test_swapped_erns_are_found_for_both_records(bag: Path) -> None:
    _swap_records(bag, PHOTO_ERN, STATEMENT_ERN)
    report = _audit_resigned(bag)
    assert codes(report) == {"ern-mismatch"}, report.findings
    by_ern = {f.subject: f for f in _findings(report, "ern-mismatch")}
    assert set(by_ern) == {PHOTO_ERN, STATEMENT_ERN}
    photo = by_ern[STATEMENT_ERN]  # the photo's files now carry the statement's number
    assert photo.path == f"{PROOFS}/{STATEMENT_ERN}.proof"
    assert photo.seq == _assignment_seq(bag, PHOTO_ERN)
    assert f"data/originals/{STATEMENT_ERN}_bus_photo.png" in photo.message
    assert f"expected {PHOTO_ERN}" in photo.message
    gave = f"but event {photo.seq} gave the ERN {PHOTO_ERN} to the item recorded by event"
    assert gave in photo.message
    assert photo.message.endswith(f": expected {PHOTO_ERN}")


def test_renumbered_to_an_ern_never_assigned(bag: Path) -> None:
    _rename_record(bag, PHOTO_ERN, "UATEST-000042")
    report = _audit_resigned(bag)
    assert codes(report) == {"ern-mismatch"}, report.findings
    [finding] = report.findings
    assert finding.subject == "UATEST-000042"
    assert f"expected {PHOTO_ERN}" in finding.message


def test_renumbered_paged_pdf_names_its_whole_range(bag: Path) -> None:
    _rename_record(bag, PDF_ERN, "UATEST-000007")
    report = _audit_resigned(bag)
    assert codes(report) == {"ern-mismatch"}, report.findings
    [finding] = report.findings
    assert f"gave the range {PDF_ERN} to UATEST-000003 to the item" in finding.message
    assert finding.message.endswith(f": expected {PDF_ERN}")


def test_paged_pdf_renamed_to_a_later_page_of_its_own_range(bag: Path) -> None:
    # The second page's ERN is the PDF's, but the bundle names a record by its first ERN: a
    # file under a later one would be cited as the page it does not start with.
    _rename_record(bag, PDF_ERN, "UATEST-000002")
    report = _audit_resigned(bag)
    assert codes(report) == {"ern-mismatch"}, report.findings
    [finding] = report.findings
    assert finding.message.endswith(f": expected {PDF_ERN}")


@pytest.mark.parametrize(
    "ern",
    [
        pytest.param("UATEST-0000004", id="extra-leading-zero"),
        pytest.param("UATESTX-000004", id="other-prefix"),
        pytest.param("UATEST-4", id="too-few-digits"),
    ],
)
def test_renumbered_to_another_spelling_of_the_number(bag: Path, ern: str) -> None:
    _rename_record(bag, PHOTO_ERN, ern)
    report = _audit_resigned(bag)
    assert codes(report) == {"ern-mismatch"}, report.findings


def test_stamped_copy_left_under_the_old_ern(bag: Path) -> None:
    _rename_record(bag, PDF_ERN, "UATEST-000007", stamped=False)
    report = _audit_resigned(bag)
    assert codes(report) == {"ern-mismatch", "stamped-unmatched"}, report.findings
    [finding] = _findings(report, "stamped-unmatched")
    assert finding.path == f"data/stamped/{PDF_ERN}_transfer_list.pdf"


# --- the assignment events -----------------------------------------------------------------


def test_assignment_event_removed(bag: Path) -> None:
    _remove_event(bag, _assignment_seq(bag, PHOTO_ERN))
    report = _audit_resigned(bag)
    assert codes(report) == {"ern-unassigned"}, report.findings
    [finding] = report.findings
    assert finding.subject == PHOTO_ERN
    assert finding.path == f"{PROOFS}/{PHOTO_ERN}.proof"
    assert "no validly signed and proven ern.assigned event" in finding.message
    # The event that recorded the photo, and the photo's sha256.
    assert f"the item recorded by event {finding.seq} (sha256 " in finding.message


def test_assignment_event_edited_without_its_key(bag: Path) -> None:
    seq = _assignment_seq(bag, PHOTO_ERN)
    path = _leaf_path(bag, seq)
    path.write_bytes(path.read_bytes().replace(b'"number_last":"4"', b'"number_last":"9"', 1))
    report = _audit_resigned(bag)
    expected = {"leaf-bad-signature", "event-proof-leaf-differs", "ern-unassigned"}
    assert codes(report) == expected, report.findings


def test_assignment_event_signed_by_a_key_the_bundle_does_not_know(bag: Path) -> None:
    seq = _assignment_seq(bag, PHOTO_ERN)
    event = _event(bag, seq).model_copy(update={"actor": OTHER.key_id})
    _write_event(bag, event, OTHER)
    report = _audit_resigned(bag)
    expected = {"leaf-unknown-actor", "event-proof-leaf-differs", "ern-unassigned"}
    assert codes(report) == expected, report.findings


def test_assignment_rewritten_to_overlap_another(bag: Path) -> None:
    seq = _assignment_seq(bag, PHOTO_ERN)
    event = _event(bag, seq)
    _write_event(bag, event.model_copy(update={"data": _range(3, 4)}), investigator_signer())
    report = _audit_relogged(bag)
    # The photo's files keep their ERN, no longer the first of the range it was given.
    assert codes(report) == {"ern-overlap", "ern-mismatch"}, report.findings
    [finding] = [f for f in report.findings if f.code == "ern-overlap"]
    assert finding.seq == seq
    assert f"event {seq} gives the range UATEST-000003 to UATEST-000004 to " in finding.message
    pdf_seq = _assignment_seq(bag, PDF_ERN)
    overlapped = f"the range {PDF_ERN} to UATEST-000003 that event {pdf_seq} gave to"
    assert overlapped in finding.message


def test_swap_with_both_assignments_rewritten_to_the_same_range(bag: Path) -> None:
    # The insider renumbers the statement record as the photo and rewrites its assignment to
    # match: the photo's own assignment still holds that number.
    _rename_record(bag, STATEMENT_ERN, "UATEST-000006")
    _rename_record(bag, PHOTO_ERN, STATEMENT_ERN)
    _rename_record(bag, "UATEST-000006", PHOTO_ERN)
    seq = _assignment_seq(bag, STATEMENT_ERN)
    event = _event(bag, seq)
    _write_event(bag, event.model_copy(update={"data": _range(4, 4)}), investigator_signer())
    report = _audit_relogged(bag)
    assert {"ern-overlap", "ern-mismatch"} <= codes(report), report.findings
    assert [f.subject for f in _findings(report, "ern-mismatch")] == [STATEMENT_ERN]


@pytest.mark.parametrize(
    ("data", "said"),
    [
        pytest.param(_range(4, 4) | {"first": "UATEST-000009"}, "do not agree", id="first"),
        pytest.param(_range(4, 4) | {"last": "UATEST-000005"}, "do not agree", id="last"),
        pytest.param(_range(4, 4) | {"number_first": "04"}, "decimal numbers", id="zero"),
        pytest.param(_range(4, 4) | {"number_last": None}, "decimal numbers", id="missing"),
        pytest.param(_range(5, 4), "from number 5 to number 4", id="backwards"),
        pytest.param(_range(4, 4) | {"first": "not an ern"}, "is not an ERN", id="not-ern"),
    ],
)
def test_malformed_assignment_counts_for_nothing(
    bag: Path, data: dict[str, str | None], said: str
) -> None:
    seq = _assignment_seq(bag, PHOTO_ERN)
    _write_event(bag, _event(bag, seq).model_copy(update={"data": data}), investigator_signer())
    report = _audit_relogged(bag)
    assert codes(report) == {"ern-assignment-malformed", "ern-unassigned"}, report.findings
    [finding] = _findings(report, "ern-assignment-malformed")
    assert (finding.seq, finding.path) == (seq, f"{EVENTS}/{seq:012d}.leaf")
    assert said in finding.message


@pytest.mark.parametrize(
    ("numbers", "expected"),
    [
        pytest.param((4, 4), {"ern-reassigned"}, id="same-range"),
        pytest.param((9, 9), {"ern-reassigned", "ern-mismatch"}, id="other-range"),
    ],
)
def test_second_assignment_of_a_subject(
    bag: Path, numbers: tuple[int, int], expected: set[str]
) -> None:
    # A forged assignment at a seq the bundle does not otherwise carry, before the real one.
    real = _assignment_seq(bag, PHOTO_ERN)
    spare = next(s for s in range(real) if not _leaf_path(bag, s).exists())
    forged = _event(bag, real).model_copy(update={"seq": spare, "data": _range(*numbers)})
    _write_event(bag, forged, investigator_signer())
    report = _audit_relogged(bag)
    assert codes(report) == expected, report.findings
    # The earlier event counts, as in the case's catalog; the later one is the finding.
    [finding] = _findings(report, "ern-reassigned")
    assert (finding.seq, finding.path) == (real, f"{EVENTS}/{real:012d}.leaf")
    earlier = f"but event {spare} already gave it the ERN UATEST-{numbers[0]:06d}"
    assert earlier in finding.message


# --- assignment events that are not in the log ----------------------------------------------


def _forge_assignment_in_place(bag: Path, real: int, forged: Event) -> None:
    """Put ``forged`` where the real assignment was, with a proof made from the real one's:
    its leaf and index are the forged event's, its path and checkpoint the genuine ones."""
    _write_event(bag, forged, investigator_signer())
    path = bag / EVENT_PROOFS / f"{real:012d}.proof"
    genuine = parse_proof(path.read_bytes())
    leaf = _leaf_path(bag, forged.seq).read_bytes()
    path.write_bytes(format_proof(ProofFile(leaf, forged.seq, genuine.path, genuine.checkpoint)))


def _forge_assignment_elsewhere(bag: Path, real: int, forged: Event) -> None:
    """Drop the real assignment and put ``forged`` at a seq the bundle does not carry."""
    spare = next(s for s in range(real) if not _leaf_path(bag, s).exists())
    _remove_event(bag, real)
    _write_event(bag, forged.model_copy(update={"seq": spare}), investigator_signer())


@pytest.mark.parametrize(
    ("forge", "found"),
    [
        pytest.param(_forge_assignment_elsewhere, "event-unproven", id="without-proof"),
        pytest.param(_forge_assignment_in_place, "event-proof-inclusion", id="with-made-proof"),
    ],
)
def test_forged_assignment_not_in_the_log_counts_for_nothing(
    bag: Path, forge: Callable[[Path, int, Event], None], found: str
) -> None:
    # The insider renumbers the photo and signs an assignment of the new number to match: a
    # valid signature by an enrolled key, on an event the log never held.
    real = _assignment_seq(bag, PHOTO_ERN)
    forge(bag, real, _event(bag, real).model_copy(update={"data": _range(42, 42)}))
    _rename_record(bag, PHOTO_ERN, "UATEST-000042")
    report = _audit_resigned(bag)
    assert codes(report) == {found, "ern-unassigned"}, report.findings
    [finding] = _findings(report, "ern-unassigned")
    assert finding.subject == "UATEST-000042"
