"""audit_bundle: every event a bundle carries must be proven in the bundle's checkpoint.

A signature shows which key made an event; only the event's proof file
(``data/custody/event-proofs/<seq>.proof``) shows that the log the checkpoint commits to holds
it. Each attack here is what an insider holding the investigator's key could do to a bundle the
toolkit wrote: sign an event the log never held, or remove or alter a proof file, then write the
manifests again and sign the tag manifest.

The restricted bundle of the ``bag`` fixture carries, among others, the ``link.made`` events of
the transfer list and the ``ern.assigned`` events of its three records.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chain_of_custody import (
    Checkpoint,
    Event,
    ProofFile,
    format_proof,
    make_leaf,
    parse_leaf,
    parse_note,
    parse_proof,
    sign_checkpoint,
)
from exports.audit import AuditReport, audit_bundle
from tests.conftest import CliResult
from tests.exports.casebuilder import investigator_signer
from tests.exports.test_audit import OTHER, TRUSTED, codes, rebag

EVENTS = "data/custody/events"
EVENT_PROOFS = "data/custody/event-proofs"


def _leaf(bag: Path, seq: int) -> Path:
    return bag / EVENTS / f"{seq:012d}.leaf"


def _proof(bag: Path, seq: int) -> Path:
    return bag / EVENT_PROOFS / f"{seq:012d}.proof"


def _seq_of(bag: Path, action: str) -> int:
    """The seq of the first event of ``action`` the bundle carries."""
    for path in sorted((bag / EVENTS).glob("*.leaf")):
        event = parse_leaf(path.read_bytes()).event
        if event.action == action:
            return event.seq
    raise AssertionError(f"the bundle carries no {action} event")


def _event(bag: Path, seq: int) -> Event:
    return parse_leaf(_leaf(bag, seq).read_bytes()).event


def _spare_seq(bag: Path) -> int:
    """A seq below the checkpoint's size whose event the bundle does not carry."""
    return next(s for s in range(_seq_of(bag, "ern.assigned")) if not _leaf(bag, s).exists())


def _forged_link(bag: Path, seq: int) -> bytes:
    """A link event the log never held, signed with the investigator's key."""
    real = _event(bag, _seq_of(bag, "link.made"))
    data = dict(real.data) | {"reason": "invented link (forged)"}
    return make_leaf(real.model_copy(update={"seq": seq, "data": data}), investigator_signer())


def _rewrite_proof(
    bag: Path,
    seq: int,
    *,
    leaf: bytes | None = None,
    index: int | None = None,
    path: tuple[bytes, ...] | None = None,
    checkpoint: bytes | None = None,
) -> None:
    """Write the proof file of event ``seq`` again with the parts given changed."""
    proof = parse_proof(_proof(bag, seq).read_bytes())
    changed = ProofFile(
        proof.leaf if leaf is None else leaf,
        proof.index if index is None else index,
        proof.path if path is None else path,
        proof.checkpoint if checkpoint is None else checkpoint,
    )
    _proof(bag, seq).write_bytes(format_proof(changed))


# Each returns the seq of the event it leaves unproven.


def _proof_removed(bag: Path) -> int:
    seq = _seq_of(bag, "link.made")
    _proof(bag, seq).unlink()
    return seq


def _forged_event_without_proof(bag: Path) -> int:
    seq = _spare_seq(bag)
    _leaf(bag, seq).write_bytes(_forged_link(bag, seq))
    return seq


def _forged_event_with_made_proof(bag: Path) -> int:
    # The proof carries the forged leaf and its seq, with the path of a real event's proof.
    seq = _spare_seq(bag)
    real = parse_proof(_proof(bag, _seq_of(bag, "link.made")).read_bytes())
    leaf = _forged_link(bag, seq)
    _leaf(bag, seq).write_bytes(leaf)
    _proof(bag, seq).write_bytes(format_proof(ProofFile(leaf, seq, real.path, real.checkpoint)))
    return seq


def _forged_event_in_place_of_a_real_one(bag: Path) -> int:
    # The real event's proof, with the forged leaf in it: the path is the right one for the seq.
    seq = _seq_of(bag, "link.made")
    leaf = _forged_link(bag, seq)
    _leaf(bag, seq).write_bytes(leaf)
    _rewrite_proof(bag, seq, leaf=leaf)
    return seq


def _proof_of_another_leaf(bag: Path) -> int:
    seq, other = _seq_of(bag, "link.made"), _seq_of(bag, "ern.assigned")
    _rewrite_proof(bag, seq, leaf=_leaf(bag, other).read_bytes())
    return seq


def _proof_with_another_index(bag: Path) -> int:
    seq = _seq_of(bag, "link.made")
    _rewrite_proof(bag, seq, index=seq + 1)
    return seq


def _proof_with_a_wrong_path(bag: Path) -> int:
    seq = _seq_of(bag, "link.made")
    path = parse_proof(_proof(bag, seq).read_bytes()).path
    _rewrite_proof(bag, seq, path=(bytes(32), *path[1:]))
    return seq


def _proof_truncated(bag: Path) -> int:
    seq = _seq_of(bag, "link.made")
    _proof(bag, seq).write_bytes(_proof(bag, seq).read_bytes()[:40])
    return seq


Tamper = Callable[[Path], int]

# name, tampering, the finding and which file it names: the leaf or the proof file
TAMPERINGS: list[tuple[str, Tamper, str, Callable[[Path, int], Path]]] = [
    ("proof-removed", _proof_removed, "event-unproven", _leaf),
    ("forged-event-without-proof", _forged_event_without_proof, "event-unproven", _leaf),
    ("forged-event-with-made-proof", _forged_event_with_made_proof, "event-proof-inclusion",
     _proof),
    ("forged-event-in-place", _forged_event_in_place_of_a_real_one, "event-proof-inclusion",
     _proof),
    ("proof-of-another-leaf", _proof_of_another_leaf, "event-proof-leaf-differs", _proof),
    ("proof-with-another-index", _proof_with_another_index, "event-proof-index-mismatch", _proof),
    ("proof-with-a-wrong-path", _proof_with_a_wrong_path, "event-proof-inclusion", _proof),
    ("proof-truncated", _proof_truncated, "event-proof-malformed", _proof),
]  # fmt: skip


def _audit_resigned(bag: Path) -> AuditReport:
    rebag(bag, investigator_signer())
    return audit_bundle(bag, TRUSTED)


@pytest.mark.parametrize(
    ("tamper", "code", "named"),
    [pytest.param(t, c, n, id=name) for name, t, c, n in TAMPERINGS],
)
def test_unproven_event_is_found(
    bag: Path, tamper: Tamper, code: str, named: Callable[[Path, int], Path]
) -> None:
    seq = tamper(bag)
    report = _audit_resigned(bag)
    assert codes(report) == {code}, report.findings
    [finding] = report.findings
    rel = named(bag, seq).relative_to(bag).as_posix()
    assert (finding.path, finding.seq) == (rel, seq)
    assert f"event {seq}" in finding.message
    assert f"{seq:012d}." in finding.message


def test_a_fresh_bundle_proves_every_event(exported: tuple[Path, Path, bytes, bytes]) -> None:
    bag = exported[0]
    report = audit_bundle(bag, TRUSTED)
    assert report.ok, report.findings
    stems = sorted(p.stem for p in (bag / EVENTS).iterdir())
    assert sorted(p.stem for p in (bag / EVENT_PROOFS).iterdir()) == stems
    assert report.event_proofs == report.leaves == len(stems)
    assert report.as_json()["event_proofs"] == len(stems)


def test_proof_of_no_event_is_found(bag: Path) -> None:
    seq = _spare_seq(bag)
    real = _proof(bag, _seq_of(bag, "link.made"))
    _proof(bag, seq).write_bytes(real.read_bytes())
    report = _audit_resigned(bag)
    assert codes(report) == {"event-proof-unmatched"}, report.findings
    [finding] = report.findings
    assert finding.path == f"{EVENT_PROOFS}/{seq:012d}.proof"
    assert f"{seq:012d}.leaf" in finding.message


def test_proof_leading_to_another_checkpoint_is_found(bag: Path) -> None:
    # The same tree head signed by another key: the path still leads to the bundle's root, but
    # the proof file does not lead to the bundle's checkpoint.
    seq = _seq_of(bag, "link.made")
    note = parse_proof(_proof(bag, seq).read_bytes()).checkpoint
    other = sign_checkpoint(Checkpoint.from_text(parse_note(note).text), [OTHER])
    _rewrite_proof(bag, seq, checkpoint=other)
    report = _audit_resigned(bag)
    assert codes(report) == {"event-proof-checkpoint-differs"}, report.findings
    assert report.findings[0].path == f"{EVENT_PROOFS}/{seq:012d}.proof"


def test_folder_in_place_of_an_event_proof_is_a_finding(bag: Path) -> None:
    seq = _seq_of(bag, "link.made")
    _proof(bag, seq).unlink()
    _proof(bag, seq).mkdir()
    report = audit_bundle(bag, TRUSTED)
    rel = f"{EVENT_PROOFS}/{seq:012d}.proof"
    assert rel in [f.path for f in report.findings if f.code == "not-a-file"], report.findings


def test_forged_event_exits_1_naming_its_file_and_seq(
    cli: Callable[..., CliResult], bag: Path, tmp_path: Path
) -> None:
    seq = _forged_event_without_proof(bag)
    rebag(bag, investigator_signer())
    trust = tmp_path / "investigator-a.pub"
    trust.write_text(investigator_signer().verifier.to_note_text() + "\n", encoding="utf-8")
    result = cli("audit", bag, "--trust", trust)
    assert result.exit_code == 1, result.output
    assert "event-unproven" in result.stdout
    assert f"{EVENTS}/{seq:012d}.leaf" in result.stdout
    assert f"{EVENT_PROOFS}/{seq:012d}.proof" in result.stdout
