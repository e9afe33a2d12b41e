"""The tamper matrix: one named attack per test, each on a fresh copy of a 70-item case.

For each attack ``evidence verify`` must exit 1 and name the seq, item or file; the untouched
copy verifies clean. Rollbacks and forks that leave a self-consistent log are caught against a
checkpoint kept from before (``--since`` and ``evidence log consistency``). The table of attacks
and results is printed at the end of the run (see conftest.py).
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import timedelta
from typing import Any

import pytest

from chain_of_custody import leaf_hash, parse_leaf, sign_note, signer_from_seed
from evidence.ingest import ingest
from evidence.models import ItemOptions
from evidence.workspace import open_case
from tests.attacks.conftest import (
    Attacked,
    append_with_toolkit,
    drop_triggers,
    forge_append,
    record_attack,
    sign_checkpoint_now,
    truncate_log,
)
from tests.conftest import PASSPHRASE, run_cli, seed_for, write_corpus


def _finding(report: dict[str, Any], code: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [f for f in report["findings"] if f["code"] == code]
    assert found, f"no {code} finding in {report['findings']}"
    return found[0]


def _codes(report: dict[str, Any]) -> set[str]:
    return {f["code"] for f in report["findings"]}


def _assert_named_in_text(case: Attacked, *names: str) -> None:
    text = case.verify_text()
    assert text.exit_code == 1
    assert "PROBLEMS" in text.stdout
    for name in names:
        assert name in text.stdout, (name, text.stdout)


def test_untouched_case_verifies_clean(attacked: Attacked, request: pytest.FixtureRequest) -> None:
    result, report = attacked.verify()
    record_attack(request, "(none: untouched copy)", result, report)
    assert result.exit_code == 0
    assert report["ok"] is True
    assert report["objects"] == 70
    old = run_cli("verify", "--case", attacked.root, "--since", attacked.base.old_checkpoint)
    assert old.exit_code == 0, old.output


# --- the content store ---------------------------------------------------------------------


def test_flip_one_byte_of_a_stored_original(
    attacked: Attacked, request: pytest.FixtureRequest
) -> None:
    sha = attacked.item_shas()[10]
    path = attacked.object_path(sha)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    result, report = attacked.verify()
    record_attack(request, "flip one byte of an original", result, report)
    assert result.exit_code == 1
    finding = _finding(report, "object-corrupt")
    assert finding["subject"] == sha
    assert finding["path"] == str(path)
    _assert_named_in_text(attacked, sha)


def test_replace_an_original_and_its_name(
    attacked: Attacked, request: pytest.FixtureRequest
) -> None:
    sha = attacked.item_shas()[11]
    path = attacked.object_path(sha)
    forged = path.read_bytes() + b" (altered)"
    forged_sha = hashlib.sha256(forged).hexdigest()
    target = attacked.object_path(forged_sha)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(forged)
    target.chmod(0o444)
    path.unlink()
    result, report = attacked.verify()
    record_attack(request, "replace an original and its name", result, report)
    assert result.exit_code == 1
    assert _finding(report, "object-missing")["subject"] == sha
    assert _finding(report, "object-unexpected")["subject"] == forged_sha
    _assert_named_in_text(attacked, sha, forged_sha)


def test_delete_an_object(attacked: Attacked, request: pytest.FixtureRequest) -> None:
    sha = attacked.item_shas()[12]
    attacked.object_path(sha).unlink()
    result, report = attacked.verify()
    record_attack(request, "delete an object", result, report)
    assert result.exit_code == 1
    assert _finding(report, "object-missing")["subject"] == sha
    assert _codes(report) == {"object-missing"}
    _assert_named_in_text(attacked, sha)


def test_add_an_unexpected_object(attacked: Attacked, request: pytest.FixtureRequest) -> None:
    data = b"planted after the fact (fictional)"
    sha = hashlib.sha256(data).hexdigest()
    path = attacked.object_path(sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    result, report = attacked.verify()
    record_attack(request, "add an unexpected object", result, report)
    assert result.exit_code == 1
    finding = _finding(report, "object-unexpected")
    assert (finding["subject"], finding["path"]) == (sha, str(path))
    assert _codes(report) == {"object-unexpected"}


# --- the catalog ---------------------------------------------------------------------------

CATALOG_EDITS = [
    pytest.param(
        "UPDATE items SET source = 'someone else' WHERE sha256 = :sha",
        "catalog-row-changed",
        "items[{sha}]",
        id="change-item-source",
    ),
    pytest.param(
        "UPDATE items SET holder = 'investigator-z+00000000' WHERE sha256 = :sha",
        "catalog-row-changed",
        "items[{sha}]",
        id="change-item-holder",
    ),
    pytest.param(
        "DELETE FROM sightings WHERE sha256 = :sha",
        "catalog-row-missing",
        "sightings[",
        id="delete-sighting-row",
    ),
    pytest.param(
        "INSERT INTO links (subject, target, target_kind, reason, actor, seq) "
        "VALUES (:sha, 'INC-999', 'incident', 'planted', 'nobody', 9999)",
        "catalog-row-unexplained",
        "links[{sha}, INC-999]",
        id="insert-link-row",
    ),
    pytest.param(
        "UPDATE keys SET revoked_seq = NULL",
        "catalog-row-changed",
        "keys[",
        id="unrevoke-key-row",
    ),
]


@pytest.mark.parametrize(("sql", "code", "label"), CATALOG_EDITS)
def test_change_a_catalog_row(
    attacked: Attacked, request: pytest.FixtureRequest, sql: str, code: str, label: str
) -> None:
    sha = attacked.item_shas()[3]
    with attacked.db() as conn:
        conn.execute(sql, {"sha": sha})
    result, report = attacked.verify()
    record_attack(request, f"catalog: {request.node.callspec.id}", result, report)
    assert result.exit_code == 1
    finding = _finding(report, code)
    assert finding["subject"].startswith(label.format(sha=sha)), finding
    assert _codes(report) == {code}


# --- the log, triggers dropped -------------------------------------------------------------


def _middle_seq(case: Attacked) -> int:
    return case.base.old_size // 2


def test_edit_a_log_event(attacked: Attacked, request: pytest.FixtureRequest) -> None:
    seq = _middle_seq(attacked)
    with attacked.db() as conn:
        drop_triggers(conn)
        (leaf,) = conn.execute("SELECT leaf FROM log WHERE seq = ?", (seq,)).fetchone()
        edited = bytes(leaf).replace(b'"confidential"', b'"public"', 1)
        assert edited != bytes(leaf)
        conn.execute("UPDATE log SET leaf = ? WHERE seq = ?", (edited, seq))
    result, report = attacked.verify()
    record_attack(request, "edit a log event (stored hash kept)", result, report)
    assert result.exit_code == 1
    assert _finding(report, "leaf-hash-mismatch")["seq"] == seq
    assert _finding(report, "bad-signature")["seq"] == seq
    _assert_named_in_text(attacked, f"seq {seq}")


def test_edit_a_log_event_and_its_hash(attacked: Attacked, request: pytest.FixtureRequest) -> None:
    seq = _middle_seq(attacked) + 1
    with attacked.db() as conn:
        drop_triggers(conn)
        (leaf,) = conn.execute("SELECT leaf FROM log WHERE seq = ?", (seq,)).fetchone()
        edited = bytes(leaf).replace(b'"confidential"', b'"public"', 1)
        conn.execute(
            "UPDATE log SET leaf = ?, leaf_hash = ? WHERE seq = ?", (edited, leaf_hash(edited), seq)
        )
    result, report = attacked.verify()
    record_attack(request, "edit a log event and rehash it", result, report)
    assert result.exit_code == 1
    assert _finding(report, "bad-signature")["seq"] == seq
    assert _finding(report, "prev-broken")["seq"] == seq + 1
    _assert_named_in_text(attacked, f"seq {seq}")


def test_edit_a_log_event_with_sql_text_functions(
    attacked: Attacked, request: pytest.FixtureRequest
) -> None:
    # replace() on a blob gives text: the leaf is then stored with another SQLite type.
    seq = _middle_seq(attacked)
    with attacked.db() as conn:
        drop_triggers(conn)
        conn.execute(
            "UPDATE log SET leaf = replace(leaf, '\"confidential\"', '\"public\"') WHERE seq = ?",
            (seq,),
        )
        assert conn.execute("SELECT typeof(leaf) FROM log WHERE seq = ?", (seq,)).fetchone() == (
            "text",
        )
    result, report = attacked.verify()
    record_attack(request, "edit a log event with replace() (leaf stored as text)", result, report)
    assert result.exit_code == 1
    invalid = _finding(report, "log-value-invalid")
    assert (invalid["seq"], invalid["subject"]) == (seq, "log.leaf")
    assert _finding(report, "bad-signature")["seq"] == seq
    _assert_named_in_text(attacked, f"seq {seq}, log.leaf")


def test_store_a_merkle_node_as_text(attacked: Attacked, request: pytest.FixtureRequest) -> None:
    with attacked.db() as conn:
        drop_triggers(conn)
        # The length check counts characters of text, not bytes.
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute("UPDATE log_nodes SET hash = CAST(hash AS TEXT) WHERE level = 3 AND idx = 1")
    result, report = attacked.verify()
    record_attack(request, "store a Merkle node as text", result, report)
    assert result.exit_code == 1
    assert _finding(report, "log-value-invalid")["subject"] == "log_nodes.hash"
    _assert_named_in_text(attacked, "level 3, index 1")


def test_delete_a_log_event(attacked: Attacked, request: pytest.FixtureRequest) -> None:
    seq = _middle_seq(attacked)
    with attacked.db() as conn:
        drop_triggers(conn)
        conn.execute("DELETE FROM log WHERE seq = ?", (seq,))
    result, report = attacked.verify()
    record_attack(request, "delete a log event", result, report)
    assert result.exit_code == 1
    assert _finding(report, "seq-gap")["seq"] == seq
    _assert_named_in_text(attacked, f"seq {seq}")


def test_reorder_log_events(attacked: Attacked, request: pytest.FixtureRequest) -> None:
    seq = _middle_seq(attacked)
    with attacked.db() as conn:
        drop_triggers(conn)
        query = "SELECT seq, leaf, leaf_hash FROM log WHERE seq IN (?, ?)"
        rows = {r[0]: r[1:] for r in conn.execute(query, (seq, seq + 1))}
        for here, there in ((seq, seq + 1), (seq + 1, seq)):
            conn.execute(
                "UPDATE log SET leaf = ?, leaf_hash = ? WHERE seq = ?", (*rows[there], here)
            )
    result, report = attacked.verify()
    record_attack(request, "swap two log events", result, report)
    assert result.exit_code == 1
    seqs = {f["seq"] for f in report["findings"] if f["code"] == "seq-mismatch"}
    assert seq in seqs
    _assert_named_in_text(attacked, f"seq {seq}")


def test_insert_a_log_event(attacked: Attacked, request: pytest.FixtureRequest) -> None:
    seq = _middle_seq(attacked)
    with attacked.db() as conn:
        drop_triggers(conn)
        (prev,) = conn.execute("SELECT leaf FROM log WHERE seq = ?", (seq - 1,)).fetchone()
        # Make room at seq: shift every later event one place up (through a high offset, so
        # the primary key never collides).
        conn.execute("UPDATE log SET seq = seq + 1000000 WHERE seq >= ?", (seq,))
        conn.execute("UPDATE log SET seq = seq - 999999 WHERE seq >= 1000000")
        previous = parse_leaf(bytes(prev)).event
        from chain_of_custody import Event, make_leaf

        event = Event(
            seq=seq,
            time=previous.time,
            case=previous.case,
            action="item.accessed",
            actor=attacked.base.a.key_id,
            subject=previous.subject,
            data={"purpose": "inserted afterwards"},
            prev=leaf_hash(bytes(prev)).hex(),
        )
        leaf = make_leaf(event, attacked.base.a)
        conn.execute(
            "INSERT INTO log (seq, leaf, leaf_hash, time, action, actor, subject) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, leaf, leaf_hash(leaf), event.time, event.action, event.actor, event.subject),
        )
    result, report = attacked.verify()
    record_attack(request, "insert a signed event into the log", result, report)
    assert result.exit_code == 1
    named = {f["seq"] for f in report["findings"]}
    assert seq + 1 in named  # the displaced event: wrong position and broken prev
    assert _finding(report, "prev-broken")["seq"] == seq + 1
    assert "checkpoint-root-mismatch" in _codes(report)
    _assert_named_in_text(attacked, f"seq {seq + 1}")


# --- rollback, fork, restore ---------------------------------------------------------------


def test_rollback_caught_against_an_earlier_checkpoint(
    attacked: Attacked, request: pytest.FixtureRequest
) -> None:
    old = attacked.base.old_checkpoint
    cut = attacked.base.old_size - 7
    truncate_log(attacked.root, cut)
    sign_checkpoint_now(attacked.root, attacked.base.a)
    # Without an outside checkpoint, a log cut back cleanly (catalog rebuilt, checkpoint
    # re-signed) is indistinguishable from an older case: that is why checkpoints are kept.
    plain, plain_report = attacked.verify()
    assert plain.exit_code == 0, plain_report
    result, report = attacked.verify("--since", str(old))
    record_attack(request, "rollback (truncate + re-sign), --since OLD", result, report)
    assert result.exit_code == 1
    finding = _finding(report, "rollback")
    assert finding["seq"] == cut
    consistency = run_cli("log", "consistency", old, "--case", attacked.root)
    record_attack(request, "rollback, log consistency OLD", consistency, command="consistency")
    assert consistency.exit_code == 1
    assert f"{cut} events" in consistency.stderr


def test_fork_same_size_other_root(attacked: Attacked, request: pytest.FixtureRequest) -> None:
    old = attacked.base.old_checkpoint
    size = attacked.base.old_size
    truncate_log(attacked.root, size - 3)
    append_with_toolkit(attacked.root, attacked.base.a, 3)
    sign_checkpoint_now(attacked.root, attacked.base.a)
    result, report = attacked.verify("--since", str(old))
    record_attack(request, "fork (same size, other root), --since OLD", result, report)
    assert result.exit_code == 1
    assert _finding(report, "fork")["seq"] == size - 1
    consistency = run_cli("log", "consistency", old, "--case", attacked.root)
    record_attack(request, "fork, log consistency OLD", consistency, command="consistency")
    assert consistency.exit_code == 1
    assert "another root" in consistency.stderr


def test_fork_rewritten_history_longer_log(
    attacked: Attacked, request: pytest.FixtureRequest
) -> None:
    old = attacked.base.old_checkpoint
    size = attacked.base.old_size
    truncate_log(attacked.root, size - 3)
    append_with_toolkit(attacked.root, attacked.base.a, 10)
    sign_checkpoint_now(attacked.root, attacked.base.a)
    result, report = attacked.verify("--since", str(old))
    record_attack(request, "fork (rewritten, then longer), --since OLD", result, report)
    assert result.exit_code == 1
    assert _finding(report, "inconsistent-history")["seq"] == size - 1
    consistency = run_cli("log", "consistency", old, "--case", attacked.root)
    record_attack(request, "fork (longer), log consistency OLD", consistency, command="consistency")
    assert consistency.exit_code == 1


def test_restore_an_older_copy_of_the_whole_case(
    attacked: Attacked, request: pytest.FixtureRequest
) -> None:
    older = attacked.tmp / "older-copy"
    shutil.copytree(attacked.root, older, symlinks=True)
    files = write_corpus(attacked.tmp / "later", 4, seed=2024)
    case = open_case(attacked.root)
    try:
        ingest(case, attacked.base.a, files, options=ItemOptions())
        newer = case.log.latest_checkpoint()
    finally:
        case.close()
    assert newer is not None
    newer_file = attacked.tmp / "newer.checkpoint"
    newer_file.write_bytes(newer)
    shutil.rmtree(attacked.root)
    shutil.copytree(older, attacked.root, symlinks=True)
    plain, _ = attacked.verify()
    assert plain.exit_code == 0  # an older copy is internally consistent
    result, report = attacked.verify("--since", str(newer_file))
    record_attack(request, "restore an older case copy, --since NEW", result, report)
    assert result.exit_code == 1
    assert _finding(report, "rollback")["seq"] == attacked.base.size


# --- signatures and keys -------------------------------------------------------------------


def test_replace_a_signature(attacked: Attacked, request: pytest.FixtureRequest) -> None:
    seq = _middle_seq(attacked)
    # Same key name as the case's investigator, another private key.
    impostor = signer_from_seed("investigator-a", seed_for("impostor"))
    with attacked.db() as conn:
        drop_triggers(conn)
        (raw,) = conn.execute("SELECT leaf FROM log WHERE seq = ?", (seq,)).fetchone()
        leaf = parse_leaf(bytes(raw))
        forged = sign_note(leaf.note.text, [impostor])
        conn.execute(
            "UPDATE log SET leaf = ?, leaf_hash = ? WHERE seq = ?", (forged, leaf_hash(forged), seq)
        )
    result, report = attacked.verify()
    record_attack(request, "replace a signature (same key name)", result, report)
    assert result.exit_code == 1
    assert _finding(report, "signature-missing")["seq"] == seq
    _assert_named_in_text(attacked, f"seq {seq}")


def test_replace_a_signature_keeping_the_key_hash(
    attacked: Attacked, request: pytest.FixtureRequest
) -> None:
    seq = _middle_seq(attacked) + 2
    with attacked.db() as conn:
        drop_triggers(conn)
        (raw,) = conn.execute("SELECT leaf FROM log WHERE seq = ?", (seq,)).fetchone()
        raw = bytes(raw)
        # Flip one bit inside the base64 signature: key hash intact, signature wrong.
        line_start = raw.rindex(b"\n\xe2\x80\x94 ") + 1
        body = bytearray(raw)
        position = len(body) - 10
        assert position > line_start
        body[position] = ord("A") if body[position] != ord("A") else ord("B")
        forged = bytes(body)
        conn.execute(
            "UPDATE log SET leaf = ?, leaf_hash = ? WHERE seq = ?", (forged, leaf_hash(forged), seq)
        )
    result, report = attacked.verify()
    record_attack(request, "corrupt a signature", result, report)
    assert result.exit_code == 1
    assert _finding(report, "bad-signature")["seq"] == seq


def test_event_signed_by_a_revoked_key(attacked: Attacked, request: pytest.FixtureRequest) -> None:
    seq = forge_append(attacked.root, attacked.base.c, subject=attacked.item_shas()[0])
    sign_checkpoint_now(attacked.root, attacked.base.a)
    result, report = attacked.verify()
    record_attack(request, "sign an event with a revoked key", result, report)
    assert result.exit_code == 1
    finding = _finding(report, "key-revoked")
    assert finding["seq"] == seq
    assert finding["subject"] == attacked.base.c.key_id
    _assert_named_in_text(attacked, f"seq {seq}")


def test_event_signed_by_a_never_enrolled_key(
    attacked: Attacked, request: pytest.FixtureRequest
) -> None:
    stranger = signer_from_seed("investigator-x", seed_for("never-enrolled"))
    seq = forge_append(attacked.root, stranger, subject=attacked.item_shas()[0])
    sign_checkpoint_now(attacked.root, attacked.base.a)
    result, report = attacked.verify()
    record_attack(request, "sign an event with a never-enrolled key", result, report)
    assert result.exit_code == 1
    finding = _finding(report, "unknown-key")
    assert (finding["seq"], finding["subject"]) == (seq, stranger.key_id)


def test_key_enrolled_by_a_never_enrolled_key(
    attacked: Attacked, request: pytest.FixtureRequest
) -> None:
    stranger = signer_from_seed("investigator-y", seed_for("self-enrolled"))
    seq = forge_append(
        attacked.root,
        stranger,
        action="key.enrolled",
        subject=stranger.key_id,
        data={"verifier": stranger.verifier.to_note_text(), "role": "investigator"},
    )
    after = forge_append(attacked.root, stranger, subject=attacked.item_shas()[0])
    result, report = attacked.verify()
    record_attack(request, "a stranger key enrols itself", result, report)
    assert result.exit_code == 1
    seqs = {f["seq"] for f in report["findings"] if f["code"] == "unknown-key"}
    assert {seq, after} <= seqs


def test_move_an_event_time_backwards(attacked: Attacked, request: pytest.FixtureRequest) -> None:
    seq = forge_append(attacked.root, attacked.base.a, time_shift=-timedelta(days=2))
    sign_checkpoint_now(attacked.root, attacked.base.a)
    result, report = attacked.verify()
    record_attack(request, "move an event's time backwards (2 days)", result, report)
    assert result.exit_code == 1
    assert _finding(report, "time-backwards")["seq"] == seq
    _assert_named_in_text(attacked, f"seq {seq}")


def test_a_few_seconds_back_is_within_tolerance(attacked: Attacked) -> None:
    # Clocks of two laptops differ a little: that alone is not tampering.
    forge_append(attacked.root, attacked.base.a, time_shift=-timedelta(seconds=30))
    sign_checkpoint_now(attacked.root, attacked.base.a)
    result, report = attacked.verify()
    assert result.exit_code == 0, report


def test_attacks_never_leak_a_traceback(attacked: Attacked) -> None:
    with attacked.db() as conn:
        drop_triggers(conn)
        conn.execute("UPDATE log SET leaf = X'00' WHERE seq = 5")
        conn.execute("DELETE FROM log_nodes WHERE level = 1")
    text = attacked.verify_text()
    assert text.exit_code == 1, text.output
    assert "Traceback" not in text.output
    assert "unexpected error" not in text.output
    assert "seq 5" in text.stdout
    assert PASSPHRASE not in text.output
