"""``evidence transfer``: only the holder hands an item over; a re-run records nothing.

Custody starts with the key that ingested an item and moves with each transfer. Named
situations: a transfer by a key that does not hold the item (alone and in a batch), a re-run of
the same transfer, an item named twice, a holder whose key was revoked (any valid key may take
the item over), and the custody history that ``evidence show`` prints. The keys
(investigator-a, -b, -c) and the files are fictional test data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chain_of_custody import EventDraft, Signer, parse_leaf
from evidence import custody
from evidence.verify import verify_case
from tests.conftest import CaseHandle, CliResult, fixed_signer, save_key, sha256_of

Cli = Callable[..., CliResult]

FILES = {
    "list.txt": b"fictional list of children of a care home, test data\n",
    "order.txt": b"fictional order to move a group, test data\n",
    "photo.jpg": b"\xff\xd8 fictional photo bytes of a bus, not an image",
}


@dataclass(frozen=True)
class Custody:
    """A case created by investigator-a, who ingested three files and enrolled -b and -c."""

    case: CaseHandle
    a: Signer
    b: Signer
    c: Signer
    sha: dict[str, str]
    key_paths: dict[str, Path]

    def key_id(self, who: str) -> str:
        return {"a": self.a, "b": self.b, "c": self.c}[who].verifier.key_id

    def transfer(self, by: Signer, names: list[str], to: str) -> custody.TransferReport:
        opened = self.case.open()
        try:
            refs = [self.sha[n][:12] for n in names]
            return custody.transfer(opened, by, refs, self.key_id(to), "hand-over (test)")
        finally:
            opened.close()

    def holder(self, name: str) -> str:
        opened = self.case.open()
        try:
            return str(custody.show_item(opened, self.sha[name])["holder"])
        finally:
            opened.close()

    def events(self) -> list[Any]:
        opened = self.case.open()
        try:
            return [parse_leaf(leaf).event for _s, leaf, _h in opened.log.iter_leaves()]
        finally:
            opened.close()

    def cli_transfer(self, cli: Cli, by: str, names: list[str], to: str, *extra: str) -> CliResult:
        refs = [self.sha[n][:12] for n in names]
        return cli("transfer", *refs, "--to", self.key_id(to), "--reason", "hand-over (test)",
                   "--case", self.case.root, "--key", self.key_paths[by], *extra)  # fmt: skip


@pytest.fixture
def held(make_case: Callable[..., CaseHandle], cli: Cli, tmp_path: Path) -> Custody:
    case = make_case()
    source = tmp_path / "source"
    source.mkdir()
    for name, data in FILES.items():
        (source / name).write_bytes(data)
    assert cli("ingest", "--case", case.root, "-r", source).exit_code == 0
    b, c = fixed_signer("investigator-b"), fixed_signer("investigator-c")
    opened = case.open()
    try:
        custody.enrol_key(opened, case.signer, b.verifier, "investigator")
        custody.enrol_key(opened, case.signer, c.verifier, "translator")
    finally:
        opened.close()
    keys = {"a": case.key_path, "b": save_key(case.home, b), "c": save_key(case.home, c)}
    sha = {name: sha256_of(source / name) for name in FILES}
    return Custody(case, case.signer, b, c, sha, keys)


def test_custody_starts_with_the_key_that_ingested(held: Custody) -> None:
    assert {held.holder(name) for name in FILES} == {held.key_id("a")}


def test_a_key_that_does_not_hold_the_item_is_refused(held: Custody) -> None:
    held.transfer(held.a, ["list.txt"], "b")
    size = held.case.log_size()
    report = held.transfer(held.a, ["list.txt"], "c")
    [refused] = report.outcomes
    assert (refused.status, refused.holder, refused.seq) == ("refused", held.key_id("b"), None)
    assert not report.ok
    message = refused.message()
    assert held.sha["list.txt"][:12] in message
    assert f"held by {held.key_id('b')}" in message
    assert "must run the transfer" in message
    assert held.case.log_size() == size  # not even a checkpoint
    assert held.holder("list.txt") == held.key_id("b")


def test_the_holder_hands_on_and_the_earlier_holder_no_longer_can(held: Custody) -> None:
    held.transfer(held.a, ["list.txt"], "b")
    report = held.transfer(held.b, ["list.txt"], "c")
    assert [o.status for o in report.outcomes] == ["transferred"]
    assert held.holder("list.txt") == held.key_id("c")
    assert held.transfer(held.b, ["list.txt"], "a").with_status("refused")


def test_a_batch_transfers_what_the_signer_holds_and_reports_the_rest(held: Custody) -> None:
    held.transfer(held.a, ["order.txt"], "b")
    report = held.transfer(held.a, ["list.txt", "order.txt", "photo.jpg"], "c")
    assert [(o.sha256, o.status) for o in report.outcomes] == [
        (held.sha["list.txt"], "transferred"),
        (held.sha["order.txt"], "refused"),
        (held.sha["photo.jpg"], "transferred"),
    ]
    assert len(report.seqs) == 2
    assert not report.ok
    assert held.holder("list.txt") == held.holder("photo.jpg") == held.key_id("c")
    assert held.holder("order.txt") == held.key_id("b")


def test_running_the_same_transfer_again_records_nothing(held: Custody) -> None:
    first = held.transfer(held.a, ["list.txt", "order.txt"], "b")
    assert len(first.seqs) == 2
    size = held.case.log_size()
    again = held.transfer(held.a, ["list.txt", "order.txt"], "b")
    assert [o.status for o in again.outcomes] == ["already-held", "already-held"]
    assert again.ok
    assert again.seqs == []
    assert held.case.log_size() == size
    assert f"already held by {held.key_id('b')}" in again.outcomes[0].message()
    # The holder itself naming itself as the new custodian is no transfer either.
    assert held.transfer(held.a, ["photo.jpg"], "a").with_status("already-held")


def test_an_item_named_twice_is_transferred_once(held: Custody) -> None:
    opened = held.case.open()
    try:
        sha = held.sha["list.txt"]
        report = custody.transfer(opened, held.a, [sha, sha[:8]], held.key_id("b"), "twice")
    finally:
        opened.close()
    assert len(report.outcomes) == 1
    assert len(report.seqs) == 1


def test_an_item_of_a_revoked_holder_may_be_taken_over_by_a_valid_key(held: Custody) -> None:
    held.transfer(held.a, ["list.txt"], "c")
    opened = held.case.open()
    try:
        revoked_at = custody.revoke_key(opened, held.a, held.key_id("c"), "device lost (test)")
    finally:
        opened.close()
    report = held.transfer(held.b, ["list.txt"], "b")
    [taken] = report.outcomes
    assert (taken.status, taken.holder, taken.holder_revoked_seq) == (
        "transferred",
        held.key_id("c"),
        revoked_at,
    )
    assert f"taken over from {held.key_id('c')}" in taken.message()
    assert held.holder("list.txt") == held.key_id("b")
    event = held.events()[taken.seq or 0]
    assert event.actor == held.key_id("b")
    assert event.data["from"] == held.key_id("c")
    assert event.data["from_revoked_seq"] == str(revoked_at)
    # Once taken over, the item has a valid holder again: only that key may move it.
    assert held.transfer(held.a, ["list.txt"], "a").with_status("refused")


def test_custody_history_names_each_holder_and_verify_agrees(held: Custody) -> None:
    held.transfer(held.a, ["list.txt"], "b")
    held.transfer(held.b, ["list.txt"], "c")
    opened = held.case.open()
    try:
        history = custody.show_item(opened, held.sha["list.txt"])["custody"]
        summaries = [h["summary"] for h in history if h["action"] == "custody.transferred"]
        assert summaries == [
            f"from {held.key_id('a')} to {held.key_id('b')}: hand-over (test)",
            f"from {held.key_id('b')} to {held.key_id('c')}: hand-over (test)",
        ]
        assert verify_case(opened, workers=1).ok
    finally:
        opened.close()


def test_a_transfer_recorded_without_a_holder_still_reads() -> None:
    # Events written before the holder was recorded in them name only the receiving key.
    assert custody.summarise("custody.transferred", {"to": "k+1", "reason": "r"}) == "to k+1: r"


# --- through the command line ------------------------------------------------------------


def test_cli_a_single_refused_item_exits_1_naming_item_and_holder(held: Custody, cli: Cli) -> None:
    assert held.cli_transfer(cli, "a", ["list.txt"], "b").exit_code == 0
    size = held.case.log_size()
    result = held.cli_transfer(cli, "a", ["list.txt"], "c")
    assert result.exit_code == 1, result.output
    assert f"refused: {held.sha['list.txt'][:12]} is held by {held.key_id('b')}" in result.stderr
    assert "Recorded" not in result.stdout
    assert held.case.log_size() == size


def test_cli_batch_with_a_refused_item_transfers_the_rest(held: Custody, cli: Cli) -> None:
    held.cli_transfer(cli, "a", ["order.txt"], "b")
    result = held.cli_transfer(cli, "a", ["list.txt", "order.txt", "photo.jpg"], "c")
    assert result.exit_code == 1, result.output
    assert "Recorded 2 transfer(s)" in result.stdout
    assert held.sha["order.txt"][:12] in result.stderr
    assert held.holder("photo.jpg") == held.key_id("c")


def test_cli_json_says_why_an_item_was_refused(held: Custody, cli: Cli) -> None:
    held.cli_transfer(cli, "a", ["order.txt"], "b")
    result = held.cli_transfer(cli, "a", ["order.txt"], "c", "--json")
    assert result.exit_code == 1, result.output
    [refused] = json.loads(result.stdout)["items"]
    assert refused["status"] == "refused"
    assert refused["message"].startswith(
        f"{held.sha['order.txt'][:12]} is held by {held.key_id('b')}"
    )


def test_cli_rerun_is_a_no_op_reported_as_such(held: Custody, cli: Cli) -> None:
    assert held.cli_transfer(cli, "a", ["list.txt", "photo.jpg"], "b").exit_code == 0
    size = held.case.log_size()
    result = held.cli_transfer(cli, "a", ["list.txt", "photo.jpg"], "b")
    assert result.exit_code == 0, result.output
    assert result.stdout.count(f"is already held by {held.key_id('b')}") == 2
    assert "Recorded" not in result.stdout
    assert held.case.log_size() == size


def test_cli_json_and_show_after_a_take_over(held: Custody, cli: Cli) -> None:
    held.cli_transfer(cli, "a", ["list.txt"], "c")
    revoke = cli("keys", "revoke", held.key_id("c"), "--reason", "left the team (test)",
                 "--case", held.case.root, "--key", held.key_paths["a"])  # fmt: skip
    assert revoke.exit_code == 0, revoke.output
    result = cli("transfer", held.sha["list.txt"], "--to", held.key_id("b"), "--reason", "orphaned",
                 "--case", held.case.root, "--key", held.key_paths["b"], "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["transferred"], shown["refused"]) == (1, 0)
    assert shown["items"][0]["holder"] == held.key_id("c")
    text = cli("show", held.sha["list.txt"], "--case", held.case.root).stdout
    assert f"taken over from {held.key_id('c')}, revoked at seq" in text


# --- verify judges every transfer by the same rule --------------------------------------------


def _forge_transfer(held: Custody, by: Signer, name: str, data: dict[str, str]) -> int:
    """Record a transfer event as only a key holder with their own tools could: signed by an
    enrolled key, but never checked by :func:`custody.transfer`."""
    opened = held.case.open()
    try:
        draft = EventDraft(action="custody.transferred", subject=held.sha[name], data=data)
        [appended] = opened.record([draft], by)
        return appended.event.seq
    finally:
        opened.close()


def _verify_findings(held: Custody) -> list[tuple[str, int | None, str | None]]:
    opened = held.case.open()
    try:
        return [(f.code, f.seq, f.subject) for f in verify_case(opened, workers=1).findings]
    finally:
        opened.close()


def test_verify_finds_a_transfer_signed_by_a_key_that_did_not_hold_the_item(
    held: Custody,
) -> None:
    data = {"to": held.key_id("b"), "from": held.key_id("a"), "reason": "taken (test)"}
    seq = _forge_transfer(held, held.b, "list.txt", data)
    assert _verify_findings(held) == [("transfer-not-by-holder", seq, held.sha["list.txt"])]


def test_verify_finds_a_transfer_that_names_another_holder(held: Custody) -> None:
    data = {"to": held.key_id("c"), "from": held.key_id("b"), "reason": "mislabelled (test)"}
    seq = _forge_transfer(held, held.a, "order.txt", data)
    assert _verify_findings(held) == [("transfer-holder-mismatch", seq, held.sha["order.txt"])]


def test_verify_accepts_a_take_over_only_after_the_holder_was_revoked(held: Custody) -> None:
    held.transfer(held.a, ["list.txt"], "c")
    early = {"to": held.key_id("b"), "from": held.key_id("c"), "reason": "too early (test)"}
    seq = _forge_transfer(held, held.b, "list.txt", early)
    opened = held.case.open()
    try:
        custody.revoke_key(opened, held.a, held.key_id("b"), "device lost (test)")
    finally:
        opened.close()
    # The key -b took the item while -c still held it; its later revocation changes nothing.
    assert _verify_findings(held) == [("transfer-not-by-holder", seq, held.sha["list.txt"])]


def test_verify_judges_a_transfer_that_leaves_out_the_holder(held: Custody) -> None:
    seq = _forge_transfer(held, held.b, "photo.jpg", {"to": held.key_id("b"), "reason": "(test)"})
    assert _verify_findings(held) == [("transfer-not-by-holder", seq, held.sha["photo.jpg"])]


def test_verify_accepts_a_transfer_by_the_holder_that_leaves_out_the_holder(
    held: Custody,
) -> None:
    _forge_transfer(held, held.a, "photo.jpg", {"to": held.key_id("b"), "reason": "(test)"})
    assert _verify_findings(held) == []
