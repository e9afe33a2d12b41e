"""Verification of a whole custody log, with one named test per attack.

Tampering with the append-only tables is simulated the way an attacker with the database file
would do it: drop the triggers and edit rows with SQL, or insert crafted rows directly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chain_of_custody.canonical import canonical_json
from chain_of_custody.checkpoint import Checkpoint, sign_checkpoint
from chain_of_custody.errors import Finding, VerificationError
from chain_of_custody.events import (
    KEY_ENROLLED,
    KEY_REVOKED,
    Event,
    EventDraft,
    format_event_time,
    make_leaf,
    parse_leaf,
)
from chain_of_custody.keys import Signer
from chain_of_custody.merkle import leaf_hash, new_nodes_for_append
from chain_of_custody.note import sign_note
from chain_of_custody.store import LogStore, open_database
from chain_of_custody.verify import (
    Keyring,
    KeyStatus,
    LogReport,
    verify_consistency_with,
    verify_log,
)

CASE_ID = "UA-DEP-2026-001"
ORIGIN = "evidence.example/UA-DEP-2026-001"
FrozenClock = Callable[[], datetime]  # the conftest clock fixture

TRIGGERS = [
    f"{table}_no_{verb}"
    for table in ("log", "log_nodes", "checkpoints")
    for verb in ("update", "delete")
] + ["log_seq_follows"]


def enrol(signer: Signer, role: str = "investigator") -> EventDraft:
    return EventDraft(
        action=KEY_ENROLLED,
        subject=signer.key_id,
        data={"verifier": signer.verifier.to_note_text(), "role": role},
    )


def revoke(signer: Signer) -> EventDraft:
    return EventDraft(action=KEY_REVOKED, subject=signer.key_id, data={"reason": "device lost"})


def item(n: int) -> EventDraft:
    return EventDraft(action="item.ingested", subject=f"{n:064x}", data={"name": f"photo-{n}.jpg"})


def new_store(tmp_path: Path, clock: FrozenClock, name: str = "catalog.db") -> LogStore:
    return LogStore(open_database(tmp_path / name), CASE_ID, ORIGIN, clock=clock)


@pytest.fixture
def store(
    tmp_path: Path, clock: FrozenClock, investigator_a: Signer, investigator_b: Signer
) -> LogStore:
    """A clean log of 6 events: A enrols itself and B; A and B ingest; checkpoints at 2 and 6."""
    log = new_store(tmp_path, clock)
    with log.transaction() as tx:
        tx.append(enrol(investigator_a), investigator_a)
        tx.append(enrol(investigator_b), investigator_a)
    log.checkpoint(investigator_a)
    with log.transaction() as tx:
        tx.append(item(1), investigator_a)
        tx.append(item(2), investigator_b)
        tx.append(item(3), investigator_a)
        tx.append(item(4), investigator_b)
    log.checkpoint(investigator_a)
    return log


def damage(report: LogReport) -> list[Finding]:
    """The findings of ``report`` but those of the triggers that drop_triggers removed to
    damage the log (a trigger's loss has its own test: test_a_dropped_trigger_is_reported)."""
    return [f for f in report.findings if f.code != "log-guard-missing"]


def codes(report: LogReport) -> list[tuple[str, int | None]]:
    return [(f.code, f.seq) for f in damage(report)]


def drop_triggers(log: LogStore) -> None:
    for name in TRIGGERS:
        log.conn.execute(f"DROP TRIGGER IF EXISTS {name}")


def replace_leaf(log: LogStore, seq: int, leaf: bytes, *, keep_hash: bool = False) -> None:
    drop_triggers(log)
    if keep_hash:
        log.conn.execute("UPDATE log SET leaf = ? WHERE seq = ?", (leaf, seq))
    else:
        log.conn.execute(
            "UPDATE log SET leaf = ?, leaf_hash = ? WHERE seq = ?", (leaf, leaf_hash(leaf), seq)
        )


class _Nodes:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get_node(self, level: int, index: int) -> bytes:
        row = self.conn.execute(
            "SELECT hash FROM log_nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        if row is None:
            raise LookupError((level, index))
        return bytes(row[0])


def append_raw(log: LogStore, leaf: bytes) -> None:
    """Insert a crafted leaf and its Merkle nodes as a writer bypassing the toolkit would."""
    seq = log.size()
    hashed = leaf_hash(leaf)
    event = parse_leaf(leaf).event
    nodes = new_nodes_for_append(seq, hashed, _Nodes(log.conn))
    log.conn.execute(
        "INSERT INTO log (seq, leaf, leaf_hash, time, action, actor, subject) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, leaf, hashed, event.time, event.action, event.actor, event.subject),
    )
    log.conn.executemany("INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)


def next_event(log: LogStore, signer: Signer, **changes: Any) -> Event:
    """The event the store would append next, with ``changes``."""
    seq = log.size()
    last = parse_leaf(log.leaf(seq - 1))
    fields: dict[str, Any] = {
        "seq": seq,
        "time": format_event_time(last.event.moment + timedelta(seconds=1)),
        "case": CASE_ID,
        "action": "item.accessed",
        "actor": signer.key_id,
        "subject": "f" * 64,
        "data": {},
        "prev": last.leaf_hash.hex(),
    }
    fields.update(changes)
    return Event(**fields)


# --- clean logs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_clean_log_verifies(store: LogStore, workers: int) -> None:
    seen: list[int] = []
    report = verify_log(store, workers=workers, chunk_size=2, progress=seen.append)
    assert report.ok, report.findings
    assert report.size == 6
    assert report.checkpoints_checked == 2
    assert seen == [2, 4, 6]
    report.raise_for_findings()


def test_long_log_with_many_chunks_in_worker_processes(
    tmp_path: Path, clock: FrozenClock, investigator_a: Signer, investigator_b: Signer
) -> None:
    log = new_store(tmp_path, clock)
    with log.transaction() as tx:
        tx.append(enrol(investigator_a), investigator_a)
        for seq in range(1, 300):
            if seq == 90:  # enrolled while earlier chunks are still being checked
                tx.append(enrol(investigator_b), investigator_a)
            else:
                tx.append(
                    item(seq), investigator_b if seq > 90 and seq % 2 == 0 else investigator_a
                )
            if seq == 150:
                tx.checkpoint(investigator_a)
    log.checkpoint(investigator_a)
    for workers in (1, 2, 3):
        assert verify_log(log, workers=workers, chunk_size=16).ok
    # Forged signatures by either key, found whichever process checks them.
    for seq in (92, 200, 201):
        leaf = log.leaf(seq)
        forged = leaf[:-10] + (b"A" if leaf[-10:-9] != b"A" else b"B") + leaf[-9:]
        replace_leaf(log, seq, forged, keep_hash=True)
    for workers in (1, 3):
        found = codes(verify_log(log, workers=workers, chunk_size=16))
        assert [f for f in found if f[0] == "bad-signature"] == [
            ("bad-signature", 92),
            ("bad-signature", 200),
            ("bad-signature", 201),
        ]
        assert ("leaf-hash-mismatch", 92) in found  # the stored hash was left as it was


def test_empty_log_verifies(tmp_path: Path, clock: FrozenClock) -> None:
    report = verify_log(new_store(tmp_path, clock))
    assert report.ok
    assert report.size == 0


# --- named attacks ------------------------------------------------------------------------------


def test_wrong_leaf_hash(store: LogStore) -> None:
    drop_triggers(store)
    store.conn.execute("UPDATE log SET leaf_hash = ? WHERE seq = 3", (bytes(32),))
    assert codes(verify_log(store)) == [("leaf-hash-mismatch", 3)]


def test_broken_prev(store: LogStore, investigator_a: Signer) -> None:
    append_raw(store, make_leaf(next_event(store, investigator_a, prev="0" * 64), investigator_a))
    assert codes(verify_log(store)) == [("prev-broken", 6)]


def test_bad_signature(store: LogStore, investigator_a: Signer) -> None:
    leaf = make_leaf(next_event(store, investigator_a), investigator_a)
    forged = leaf.replace(b'"item.accessed"', b'"item.deleted"')
    append_raw(store, forged)
    assert codes(verify_log(store)) == [("bad-signature", 6)]


def test_event_edited_after_signing(store: LogStore) -> None:
    leaf = store.leaf(3)
    replace_leaf(store, 3, leaf.replace(b"photo-2.jpg", b"photo-9.jpg"))
    found = codes(verify_log(store))
    assert ("bad-signature", 3) in found
    assert ("prev-broken", 4) in found
    assert ("checkpoint-root-mismatch", 5) in found


def test_unknown_key_signature(store: LogStore, outsider: Signer) -> None:
    with store.transaction() as tx:
        tx.append(item(9), outsider)
    report = verify_log(store)
    assert codes(report) == [("unknown-key", 6)]
    assert outsider.key_id in report.findings[0].message


def test_signature_by_other_key_than_actor(
    store: LogStore, investigator_a: Signer, outsider: Signer
) -> None:
    event = next_event(store, investigator_a)
    append_raw(store, sign_note(canonical_json(event) + b"\n", [outsider]))
    assert codes(verify_log(store)) == [("signature-missing", 6)]


def test_signature_after_revocation(
    store: LogStore, investigator_a: Signer, investigator_b: Signer
) -> None:
    with store.transaction() as tx:
        tx.append(revoke(investigator_b), investigator_a)
        tx.append(item(7), investigator_a)
        tx.append(item(8), investigator_b)
    assert codes(verify_log(store)) == [("key-revoked", 8)]


def test_self_revocation_is_valid_but_ends_the_key(store: LogStore, investigator_b: Signer) -> None:
    with store.transaction() as tx:
        tx.append(revoke(investigator_b), investigator_b)
        tx.append(item(8), investigator_b)
    assert codes(verify_log(store)) == [("key-revoked", 7)]


def test_enrolment_by_a_revoked_key_is_refused(
    store: LogStore, investigator_a: Signer, investigator_b: Signer, outsider: Signer
) -> None:
    with store.transaction() as tx:
        tx.append(revoke(investigator_b), investigator_a)
        tx.append(enrol(outsider), investigator_b)
        tx.append(item(8), outsider)
    assert codes(verify_log(store)) == [("key-revoked", 7), ("unknown-key", 8)]


def test_key_signing_before_its_enrolment(
    tmp_path: Path, clock: FrozenClock, investigator_a: Signer, investigator_b: Signer
) -> None:
    log = new_store(tmp_path, clock)
    with log.transaction() as tx:
        tx.append(enrol(investigator_a), investigator_a)
        tx.append(enrol(investigator_b), investigator_b)  # B cannot enrol itself
    assert codes(verify_log(log)) == [("unknown-key", 1)]


def test_seq_gap(store: LogStore) -> None:
    drop_triggers(store)
    store.conn.execute("DELETE FROM log WHERE seq = 2")
    found = codes(verify_log(store))
    assert found[0] == ("seq-gap", 2)
    assert ("prev-broken", 3) in found


def test_seq_duplicate_by_replayed_leaf(store: LogStore) -> None:
    # The seq trigger lets a row with the next seq in, so a replayed old leaf needs no DROP.
    append_raw_leaf = store.leaf(2)
    store.conn.execute(
        "INSERT INTO log (seq, leaf, leaf_hash, time, action, actor, subject) "
        "VALUES (6, ?, ?, '', '', '', '')",
        (append_raw_leaf, leaf_hash(append_raw_leaf)),
    )
    found = codes(verify_log(store))
    assert ("seq-duplicate", 6) in found
    assert ("prev-broken", 6) in found


def test_seq_mismatch(store: LogStore, investigator_a: Signer) -> None:
    event = next_event(store, investigator_a, seq=9)
    drop_triggers(store)
    append_raw_leaf = make_leaf(event, investigator_a)
    store.conn.execute(
        "INSERT INTO log (seq, leaf, leaf_hash, time, action, actor, subject) "
        "VALUES (6, ?, ?, '', '', '', '')",
        (append_raw_leaf, leaf_hash(append_raw_leaf)),
    )
    assert ("seq-mismatch", 6) in codes(verify_log(store))


def test_time_backwards(store: LogStore, investigator_a: Signer) -> None:
    last = parse_leaf(store.leaf(5)).event.moment
    early = format_event_time(last - timedelta(seconds=301))
    append_raw(store, make_leaf(next_event(store, investigator_a, time=early), investigator_a))
    assert codes(verify_log(store)) == [("time-backwards", 6)]
    assert verify_log(store, tolerance_seconds=400).ok


def test_time_backwards_within_tolerance(store: LogStore, investigator_a: Signer) -> None:
    last = parse_leaf(store.leaf(5)).event.moment
    early = format_event_time(last - timedelta(seconds=299))
    append_raw(store, make_leaf(next_event(store, investigator_a, time=early), investigator_a))
    assert verify_log(store).ok


def test_case_mismatch(store: LogStore, investigator_a: Signer, clock: FrozenClock) -> None:
    other = LogStore(store.db, "UA-DEP-2026-999", ORIGIN, clock=clock)
    with other.transaction() as tx:
        tx.append(item(5), investigator_a)
    assert codes(verify_log(store)) == [("case-mismatch", 6)]


def test_malformed_leaf(store: LogStore) -> None:
    replace_leaf(store, 4, b"not a signed note")
    found = codes(verify_log(store))
    assert ("leaf-malformed", 4) in found
    assert ("prev-broken", 5) in found


def test_first_event_must_be_self_enrolment(
    tmp_path: Path, clock: FrozenClock, investigator_a: Signer
) -> None:
    log = new_store(tmp_path, clock)
    with log.transaction() as tx:
        tx.append(item(1), investigator_a)
        tx.append(item(2), investigator_a)
    assert codes(verify_log(log)) == [
        ("genesis-invalid", 0),
        ("unknown-key", 0),
        ("unknown-key", 1),
    ]


def test_enrolment_with_mismatched_subject(
    store: LogStore, investigator_a: Signer, outsider: Signer
) -> None:
    draft = EventDraft(
        action=KEY_ENROLLED,
        subject=investigator_a.key_id,
        data={"verifier": outsider.verifier.to_note_text()},
    )
    with store.transaction() as tx:
        tx.append(draft, investigator_a)
        tx.append(item(9), outsider)
    assert codes(verify_log(store)) == [("enrolment-invalid", 6), ("unknown-key", 7)]


def test_checkpoint_root_mismatch(store: LogStore, investigator_a: Signer) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 4, b"\x01" * 32), [investigator_a])
    store.conn.execute(
        "INSERT INTO checkpoints (size, root, note, made_at) VALUES (4, ?, ?, '')",
        (b"\x01" * 32, note),
    )
    assert codes(verify_log(store)) == [("checkpoint-root-mismatch", 3)]


def test_checkpoint_signed_by_unknown_key(store: LogStore, outsider: Signer) -> None:
    root = store.root(4)
    note = sign_checkpoint(Checkpoint(ORIGIN, 4, root), [outsider])
    store.conn.execute(
        "INSERT INTO checkpoints (size, root, note, made_at) VALUES (4, ?, ?, '')", (root, note)
    )
    assert codes(verify_log(store)) == [("checkpoint-unsigned", 3)]


def test_checkpoint_signed_by_revoked_key(
    store: LogStore, investigator_a: Signer, investigator_b: Signer
) -> None:
    with store.transaction() as tx:
        tx.append(revoke(investigator_b), investigator_a)
        tx.append(item(9), investigator_a)
    store.checkpoint(investigator_b)
    assert codes(verify_log(store)) == [("checkpoint-unsigned", 7)]


def test_stored_checkpoint_beyond_the_log_is_a_rollback(store: LogStore) -> None:
    drop_triggers(store)
    store.conn.execute("DELETE FROM log WHERE seq >= 4")
    found = codes(verify_log(store))
    assert ("checkpoint-rollback", 4) in found


def test_tampered_merkle_nodes(store: LogStore) -> None:
    drop_triggers(store)
    # Node (1, 2) covers leaves 4 and 5: part of the root of size 6 and of the 2 -> 6 proof.
    store.conn.execute("UPDATE log_nodes SET hash = ? WHERE level = 1 AND idx = 2", (bytes(32),))
    assert codes(verify_log(store)) == [
        ("node-mismatch", 4),
        ("nodes-mismatch", 5),
        ("checkpoint-inconsistent", 5),
    ]


def test_missing_merkle_nodes(store: LogStore) -> None:
    drop_triggers(store)
    store.conn.execute("DELETE FROM log_nodes WHERE level = 1")
    assert [c for c, _ in codes(verify_log(store))] == ["node-missing"] * 3 + ["nodes-damaged"]


def test_tampered_node_off_the_checked_paths(store: LogStore) -> None:
    # Leaf node (0, 3) is inside (1, 1): no root or consistency proof of the stored checkpoints
    # reads it, but an inclusion proof of event 2 would, so it must still be found.
    drop_triggers(store)
    store.conn.execute("UPDATE log_nodes SET hash = ? WHERE level = 0 AND idx = 3", (bytes(32),))
    assert codes(verify_log(store)) == [("node-mismatch", 3)]


def test_clean_log_has_no_node_findings(store: LogStore) -> None:
    assert codes(verify_log(store)) == []


# --- earlier checkpoints given from outside -----------------------------------------------------


def forked_store(
    tmp_path: Path, make_clock: Callable[..., FrozenClock], a: Signer, b: Signer, events: int
) -> LogStore:
    """The same case re-created with a different third event: another history."""
    log = new_store(tmp_path, make_clock(), name="fork.db")
    with log.transaction() as tx:
        tx.append(enrol(a), a)
        tx.append(enrol(b), a)
        tx.append(item(100), a)  # differs from the original's item(1)
        for n in range(3, events):
            tx.append(item(n), b)
    return log


def test_extra_checkpoint_of_the_same_log_is_consistent(
    store: LogStore, investigator_a: Signer
) -> None:
    earlier = store.latest_checkpoint()
    assert earlier is not None
    with store.transaction() as tx:
        tx.append(item(10), investigator_a)
    report = verify_log(store, extra_checkpoints=[earlier])
    assert report.ok
    assert report.checkpoints_checked == 3


def test_rollback_against_an_extra_checkpoint(store: LogStore, investigator_a: Signer) -> None:
    with store.transaction() as tx:
        tx.append(item(10), investigator_a)
        tx.append(item(11), investigator_a)
    handed_out = store.checkpoint(investigator_a)  # size 8, e.g. given to a prosecutor
    drop_triggers(store)
    store.conn.execute("DELETE FROM checkpoints WHERE size = 8")
    store.conn.execute("DELETE FROM log WHERE seq >= 6")
    report = verify_log(store, extra_checkpoints=[handed_out])
    assert codes(report) == [("rollback", 6)]
    assert "extra checkpoint 1" in (damage(report)[0].subject or "")


def test_fork_against_an_extra_checkpoint_of_the_same_size(
    tmp_path: Path,
    store: LogStore,
    make_clock: Callable[..., FrozenClock],
    investigator_a: Signer,
    investigator_b: Signer,
) -> None:
    fork = forked_store(tmp_path, make_clock, investigator_a, investigator_b, 6)
    other = fork.checkpoint(investigator_a)
    assert codes(verify_log(store, extra_checkpoints=[other])) == [("fork", 5)]


def test_earlier_history_rewritten_against_a_smaller_extra_checkpoint(
    tmp_path: Path,
    store: LogStore,
    make_clock: Callable[..., FrozenClock],
    investigator_a: Signer,
    investigator_b: Signer,
) -> None:
    fork = forked_store(tmp_path, make_clock, investigator_a, investigator_b, 4)
    other = fork.checkpoint(investigator_a)
    assert codes(verify_log(store, extra_checkpoints=[other])) == [("inconsistent-history", 3)]


def test_extra_checkpoint_problems(
    store: LogStore, investigator_a: Signer, outsider: Signer
) -> None:
    root = store.root(3)
    extras = [
        b"garbage",
        sign_checkpoint(Checkpoint("other.example/log", 3, root), [investigator_a]),
        sign_checkpoint(Checkpoint(ORIGIN, 3, root), [outsider]),
    ]
    report = verify_log(store, extra_checkpoints=extras)
    assert [f.code for f in report.findings] == [
        "checkpoint-malformed",
        "checkpoint-origin",
        "checkpoint-unsigned",
    ]


def test_every_finding_names_a_seq_or_checkpoint(store: LogStore, outsider: Signer) -> None:
    with store.transaction() as tx:
        tx.append(item(9), outsider)
    drop_triggers(store)
    store.conn.execute("UPDATE log SET leaf_hash = ? WHERE seq = 1", (bytes(32),))
    report = verify_log(store, extra_checkpoints=[b"junk"])
    assert report.findings
    assert all(isinstance(f, Finding) and f.where() != "-" for f in report.findings)
    with pytest.raises(VerificationError):
        report.raise_for_findings()


# --- consistency with an earlier checkpoint ----------------------------------------------------


def test_verify_consistency_with_an_earlier_checkpoint(
    store: LogStore, investigator_a: Signer
) -> None:
    earlier = store.latest_checkpoint()
    assert earlier is not None
    with store.transaction() as tx:
        tx.append(item(10), investigator_a)
    verify_consistency_with(store, earlier, [investigator_a.verifier])


def test_consistency_refuses_rollback(store: LogStore, investigator_a: Signer) -> None:
    earlier = store.latest_checkpoint()
    assert earlier is not None
    drop_triggers(store)
    store.conn.execute("DELETE FROM log WHERE seq = 5")
    with pytest.raises(VerificationError) as caught:
        verify_consistency_with(store, earlier, [investigator_a.verifier])
    assert caught.value.findings[0].code == "rollback"


def test_consistency_refuses_fork(
    tmp_path: Path,
    store: LogStore,
    make_clock: Callable[..., FrozenClock],
    investigator_a: Signer,
    investigator_b: Signer,
) -> None:
    fork = forked_store(tmp_path, make_clock, investigator_a, investigator_b, 4)
    with pytest.raises(VerificationError) as caught:
        verify_consistency_with(store, fork.checkpoint(investigator_a), [investigator_a.verifier])
    assert caught.value.findings[0].code == "consistency-proof-invalid"


def test_consistency_refuses_untrusted_checkpoint(store: LogStore, investigator_b: Signer) -> None:
    earlier = store.latest_checkpoint()
    assert earlier is not None
    with pytest.raises(VerificationError):
        verify_consistency_with(store, earlier, [investigator_b.verifier])


# --- keyring ------------------------------------------------------------------------------------


def test_keyring_from_store(
    store: LogStore, investigator_a: Signer, investigator_b: Signer, outsider: Signer
) -> None:
    with store.transaction() as tx:
        tx.append(revoke(investigator_b), investigator_a)
    keyring = Keyring.from_store(store)
    assert keyring.enrolled_keys() == [investigator_a.verifier, investigator_b.verifier]
    assert keyring.status(investigator_a.key_id, 0) is KeyStatus.VALID
    assert keyring.status(investigator_b.key_id, 1) is KeyStatus.NOT_YET_ENROLLED
    assert keyring.status(investigator_b.key_id, 2) is KeyStatus.VALID
    assert keyring.status(investigator_b.key_id, 6) is KeyStatus.VALID
    assert keyring.status(investigator_b.key_id, 7) is KeyStatus.REVOKED
    assert keyring.status(outsider.key_id, 3) is KeyStatus.UNKNOWN
    assert keyring.keys_valid_at(7) == [investigator_a.verifier]
    record = keyring.record(investigator_b.key_id)
    assert record is not None
    assert (record.enrolled_at, record.revoked_at, record.role) == (1, 6, "investigator")


# --- values of another SQLite type: findings by table, seq and column, never a crash --------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        pytest.param("leaf", "CAST(leaf AS TEXT)", id="leaf-text"),
        pytest.param("leaf", "CAST(X'ff00' AS TEXT)", id="leaf-invalid-utf8"),
        pytest.param("leaf", "12", id="leaf-integer"),
        pytest.param("leaf_hash", "CAST(leaf_hash AS TEXT)", id="leaf_hash-text"),
        pytest.param("leaf_hash", "X'0102'", id="leaf_hash-2-bytes"),
    ],
)
def test_a_log_value_of_another_type_is_named_by_seq_and_column(
    store: LogStore, column: str, value: str
) -> None:
    drop_triggers(store)
    store.conn.execute("PRAGMA ignore_check_constraints = ON")
    store.conn.execute(f"UPDATE log SET {column} = {value} WHERE seq = 3")  # noqa: S608
    first = damage(verify_log(store, workers=1))[0]
    assert first == Finding("log-value-invalid", first.message, seq=3, subject=f"log.{column}")
    assert f"the log table's {column} column holds" in first.message


def test_a_leaf_read_as_text_is_checked_as_its_bytes(store: LogStore) -> None:
    drop_triggers(store)
    store.conn.execute("UPDATE log SET leaf = CAST(leaf AS TEXT) WHERE seq = 3")
    assert [leaf for seq, leaf, _ in store.iter_leaves() if seq == 3] == [
        bytes(store.conn.execute("SELECT CAST(leaf AS BLOB) FROM log WHERE seq = 3").fetchone()[0])
    ]
    # The same bytes: the type is all that is wrong.
    assert codes(verify_log(store, workers=1)) == [("log-value-invalid", 3)]


@pytest.mark.parametrize(
    ("statement", "subject"),
    [
        pytest.param(
            "UPDATE log_nodes SET hash = CAST(hash AS TEXT) WHERE level = 1 AND idx = 0",
            "log_nodes.hash",
            id="node-hash-text",
        ),
        pytest.param(
            "UPDATE log_nodes SET idx = 0.5 WHERE level = 1 AND idx = 0",
            "log_nodes.idx",
            id="node-index-real",
        ),
        pytest.param(
            "UPDATE checkpoints SET note = CAST(note AS TEXT) WHERE size = 2",
            "checkpoints.note",
            id="checkpoint-note-text",
        ),
        pytest.param(
            "UPDATE checkpoints SET root = X'00' WHERE size = 2",
            "checkpoints.root",
            id="checkpoint-root-1-byte",
        ),
        pytest.param("UPDATE log SET seq = -1 WHERE seq = 5", "log.seq", id="seq-negative"),
    ],
)
def test_a_node_or_checkpoint_value_of_another_type_is_named(
    store: LogStore, statement: str, subject: str
) -> None:
    drop_triggers(store)
    store.conn.execute("PRAGMA ignore_check_constraints = ON")
    store.conn.execute(statement)
    report = verify_log(store, workers=1)
    assert subject in [f.subject for f in report.findings if f.code == "log-value-invalid"]


def test_a_seq_at_the_largest_integer_is_read_without_overflow(store: LogStore) -> None:
    drop_triggers(store)
    store.conn.execute("UPDATE log SET seq = 9223372036854775807 WHERE seq = 5")
    assert store.size() == 2**63
    assert [seq for seq, _, _ in store.iter_leaves()][-1] == 2**63 - 1
    found = codes(verify_log(store, workers=1))
    assert ("log-value-invalid", 2**63 - 1) in found
    assert ("seq-gap", 5) in found


def test_a_log_table_without_its_leaf_column_is_a_finding(store: LogStore) -> None:
    drop_triggers(store)
    store.conn.execute("ALTER TABLE log RENAME TO log_old")
    store.conn.execute("CREATE TABLE log (seq INTEGER PRIMARY KEY, leaf_hash, time)")
    report = verify_log(store, workers=1)
    assert report.size == 0
    assert ("log-column-missing", None) in codes(report)
    assert "checkpoint-rollback" in {f.code for f in report.findings}


def test_a_node_table_without_its_key_is_checked_for_duplicates(store: LogStore) -> None:
    drop_triggers(store)
    conn = store.conn
    conn.execute("ALTER TABLE log_nodes RENAME TO nodes_old")
    conn.execute("CREATE TABLE log_nodes (level, idx, hash)")
    conn.execute("INSERT INTO log_nodes SELECT * FROM nodes_old")
    conn.execute("INSERT INTO log_nodes SELECT level, idx, hash FROM nodes_old WHERE level = 2")
    report = verify_log(store, workers=1)
    assert [(f.code, f.subject) for f in damage(report)] == [("log-row-duplicated", "log_nodes")]


def test_a_dropped_trigger_is_reported(store: LogStore) -> None:
    assert verify_log(store).ok
    drop_triggers(store)
    report = verify_log(store)
    assert sorted(f.subject or "" for f in report.findings) == sorted(TRIGGERS)
    assert {f.code for f in report.findings} == {"log-guard-missing"}
    assert damage(report) == []
