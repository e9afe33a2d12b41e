"""The SQLite custody log: appends, chain, stored nodes, proofs, checkpoints, triggers, writers."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from chain_of_custody.checkpoint import open_checkpoint
from chain_of_custody.errors import EnvironmentProblem, InputError, VerificationError
from chain_of_custody.events import EventDraft, parse_event_time, parse_leaf, verify_leaf_signature
from chain_of_custody.keys import Signer, signer_from_seed
from chain_of_custody.merkle import (
    MemoryTree,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from chain_of_custody.store import LogStore, ReadOnlyDatabase, open_database
from tests.chain_of_custody.conftest import CASE_ID, ORIGIN, FrozenClock, seed_for


def _draft(n: int) -> EventDraft:
    return EventDraft(
        action="item.ingested",
        subject=f"{n:064x}",
        data={"original_name": f"photo-{n:03d}.jpg", "collected_by": "Investigator A"},
    )


@pytest.fixture
def store(tmp_path: Path, clock: FrozenClock) -> LogStore:
    return LogStore(open_database(tmp_path / "catalog.db"), CASE_ID, ORIGIN, clock)


def _fill(store: LogStore, signer: Signer, count: int) -> None:
    with store.transaction() as tx:
        for n in range(count):
            tx.append(_draft(n), signer)


def test_open_database_settings(tmp_path: Path) -> None:
    db = open_database(tmp_path / "catalog.db")
    conn = db.conn
    assert conn.isolation_level is None
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 60000
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA cache_size").fetchone()[0] == -32 * 1024  # KiB
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 4000


def test_open_database_in_missing_directory_names_the_path(tmp_path: Path) -> None:
    target = tmp_path / "no-such-case" / "catalog.db"
    with pytest.raises(EnvironmentProblem) as caught:
        open_database(target)
    assert str(target) in caught.value.message
    assert caught.value.hint


# --- opening without writing, and reading only --------------------------------------------


def test_opening_a_log_that_has_its_schema_writes_nothing(
    store: LogStore, investigator_a: Signer, tmp_path: Path
) -> None:
    """Opening a case to read it takes no write lock and changes nothing."""
    _fill(store, investigator_a, 3)
    store.db.conn.close()
    db = open_database(tmp_path / "catalog.db")
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    reopened = LogStore(db, CASE_ID, ORIGIN)
    assert reopened.size() == 3
    assert not reopened.read_only
    assert statements
    assert all(statement.lstrip().upper().startswith("SELECT") for statement in statements)


def test_a_log_opened_read_only_reads_and_refuses_every_write(
    store: LogStore, investigator_a: Signer, tmp_path: Path
) -> None:
    _fill(store, investigator_a, 5)
    store.checkpoint(investigator_a)
    root, proof = store.root(), store.inclusion_proof(2)
    store.db.conn.close()
    path = tmp_path / "catalog.db"
    before = path.read_bytes()
    db = open_database(path, read_only=True)
    assert isinstance(db, ReadOnlyDatabase)
    reader = LogStore(db, CASE_ID, ORIGIN)
    assert reader.read_only
    assert (reader.size(), reader.root()) == (5, root)
    assert reader.inclusion_proof(2) == proof
    assert reader.latest_checkpoint() is not None

    def append() -> None:
        with reader.transaction() as tx:
            tx.append(_draft(5), investigator_a)

    for write in (append, lambda: reader.checkpoint(investigator_a), reader.require_writable):
        with pytest.raises(EnvironmentProblem) as refused:
            write()
        assert f"the case catalog {path} is read-only" in refused.value.message
        assert "copy the whole case folder" in (refused.value.hint or "")
    # SQLite refuses a write that goes around the store, too.
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.conn.execute("INSERT INTO checkpoints VALUES (9, zeroblob(32), x'00', 't')")
    assert reader.size() == 5
    db.conn.close()
    assert path.read_bytes() == before


def test_a_read_only_catalog_lacking_the_log_tables_reads_as_an_empty_log(
    tmp_path: Path,
) -> None:
    path = tmp_path / "catalog.db"
    sqlite3.connect(path).close()
    reader = LogStore(open_database(path, read_only=True), CASE_ID, ORIGIN)
    assert (reader.size(), reader.latest_checkpoint(), list(reader.iter_checkpoints())) == (
        0,
        None,
        [],
    )
    reader.db.conn.close()
    check = sqlite3.connect(path)
    try:
        assert check.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    finally:
        check.close()


def test_read_only_opening_of_a_missing_catalog_is_an_environment_problem(
    tmp_path: Path,
) -> None:
    target = tmp_path / "catalog.db"
    with pytest.raises(EnvironmentProblem) as caught:
        open_database(target, read_only=True)
    assert str(target) in caught.value.message
    assert not target.exists()


_MODES_BIND = pytest.mark.skipif(
    os.geteuid() == 0,
    reason="root writes files whatever their mode (tests/cli/test_read_only_case.py "
    "covers this with the capabilities dropped)",
)


def _locked(folder: Path) -> None:
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)


@_MODES_BIND
def test_a_catalog_in_a_folder_that_cannot_be_written_is_opened_read_only(
    store: LogStore, investigator_a: Signer, tmp_path: Path
) -> None:
    _fill(store, investigator_a, 2)
    store.db.conn.close()
    folder = tmp_path
    _locked(folder)
    try:
        db = open_database(folder / "catalog.db")
        assert isinstance(db, ReadOnlyDatabase)
        assert LogStore(db, CASE_ID, ORIGIN).size() == 2
        db.conn.close()
        with pytest.raises(EnvironmentProblem, match="is read-only"):
            open_database(folder / "catalog.db", read_only=False)
        assert sorted(p.name for p in folder.iterdir()) == ["catalog.db"]
    finally:
        folder.chmod(0o755)


@_MODES_BIND
def test_a_read_only_copy_with_unmerged_commits_and_no_shm_is_refused(
    store: LogStore, investigator_a: Signer, tmp_path: Path
) -> None:
    _fill(store, investigator_a, 2)
    copy = tmp_path / "copy"
    copy.mkdir()
    # Copied while the store is open: its last commits are in the -wal file only.
    for name in ("catalog.db", "catalog.db-wal"):
        shutil.copyfile(tmp_path / name, copy / name)
    store.db.conn.close()
    assert (copy / "catalog.db-wal").stat().st_size > 0
    _locked(copy)
    try:
        with pytest.raises(EnvironmentProblem) as refused:
            open_database(copy / "catalog.db")
        assert "catalog.db-wal" in refused.value.message
        assert "copy the whole case folder" in (refused.value.hint or "")
    finally:
        copy.chmod(0o755)


def test_empty_log(store: LogStore) -> None:
    assert store.size() == 0
    assert store.root() == root_from_leaf_hashes([])
    assert list(store.iter_leaves()) == []
    assert store.latest_checkpoint() is None
    assert list(store.iter_checkpoints()) == []


def test_appended_events_form_a_signed_chain(
    store: LogStore, investigator_a: Signer, investigator_b: Signer
) -> None:
    with store.transaction() as tx:
        first = tx.append(_draft(0), investigator_a)
        second = tx.append(_draft(1), investigator_b)
        assert tx.size == 2
    assert (first.seq, second.seq) == (0, 1)
    assert first.event.prev == ""
    assert second.event.prev == first.leaf_hash.hex()
    assert first.event.time == "2026-11-24T03:20:00.123456Z"
    assert second.event.time == "2026-11-24T03:20:01.123456Z"
    assert first.event.case == CASE_ID
    assert first.event.actor == investigator_a.verifier.key_id
    assert second.event.actor == investigator_b.verifier.key_id
    for appended, signer in ((first, investigator_a), (second, investigator_b)):
        assert appended.leaf_hash == leaf_hash(appended.leaf)
        assert store.leaf(appended.seq) == appended.leaf
        parsed = parse_leaf(appended.leaf)
        assert parsed.event == appended.event
        verify_leaf_signature(parsed, signer.verifier)
    row = store.db.conn.execute(
        "SELECT time, action, actor, subject FROM log WHERE seq = 1"
    ).fetchone()
    assert row == (second.event.time, "item.ingested", second.event.actor, _draft(1).subject)


def test_time_never_goes_backwards(tmp_path: Path, investigator_a: Signer) -> None:
    clock = FrozenClock(step=timedelta(seconds=-5))
    store = LogStore(open_database(tmp_path / "catalog.db"), CASE_ID, ORIGIN, clock)
    _fill(store, investigator_a, 3)
    times = [parse_leaf(leaf).event.time for _, leaf, _ in store.iter_leaves()]
    assert times == ["2026-11-24T03:20:00.123456Z"] * 3


def test_chain_continues_across_transactions_and_connections(
    tmp_path: Path, investigator_a: Signer
) -> None:
    path = tmp_path / "catalog.db"
    memory = MemoryTree()
    for round_number, count in enumerate([1, 2, 5, 1, 8, 3, 13]):
        # A fresh connection each round: the right edge of the tree is read back from SQLite.
        store = LogStore(open_database(path), CASE_ID, ORIGIN, FrozenClock())
        with store.transaction() as tx:
            for n in range(count):
                appended = tx.append(_draft(round_number * 100 + n), investigator_a)
                memory.append(appended.leaf)
        assert store.size() == memory.size
        assert store.root() == memory.root()
    leaves = list(store.iter_leaves())
    for (seq, leaf, hashed), previous in zip(leaves[1:], leaves, strict=False):
        assert parse_leaf(leaf).event.prev == previous[2].hex()
        assert hashed == leaf_hash(leaf)
        assert seq == previous[0] + 1


def test_append_many_writes_what_appending_one_by_one_writes(
    tmp_path: Path, investigator_a: Signer
) -> None:
    one = LogStore(open_database(tmp_path / "one.db"), CASE_ID, ORIGIN, FrozenClock())
    many = LogStore(open_database(tmp_path / "many.db"), CASE_ID, ORIGIN, FrozenClock())
    _fill(one, investigator_a, 5)
    with one.transaction() as tx:
        for n in range(5, 37):
            tx.append(_draft(n), investigator_a)
    _fill(many, investigator_a, 5)
    with many.transaction() as tx:
        appended = tx.append_many([_draft(n) for n in range(5, 37)], investigator_a)
        assert tx.size == 37
    assert [a.seq for a in appended] == list(range(5, 37))
    for table in ("log", "log_nodes"):
        query = f"SELECT * FROM {table} ORDER BY 1, 2"  # noqa: S608 - fixed names
        assert one.conn.execute(query).fetchall() == many.conn.execute(query).fetchall()
    assert [leaf for _, leaf, _ in many.iter_leaves(5)] == [a.leaf for a in appended]


def test_append_many_with_a_refused_draft_appends_none(
    store: LogStore, investigator_a: Signer
) -> None:
    _fill(store, investigator_a, 3)
    bad = EventDraft(action="item.ingested", subject="x", data={"size": 1.5})
    with store.transaction() as tx:
        with pytest.raises(InputError):
            tx.append_many([_draft(3), _draft(4), bad], investigator_a)
        assert tx.size == 3
        # The transaction goes on from where it was: the right edge is read again.
        tx.append_many([_draft(3), _draft(4)], investigator_a)
    assert store.size() == 5
    memory = MemoryTree()
    for _, leaf, _ in store.iter_leaves():
        memory.append(leaf)
    assert store.root() == memory.root()


def test_stored_nodes_are_exactly_the_complete_subtrees(
    store: LogStore, investigator_a: Signer
) -> None:
    _fill(store, investigator_a, 45)
    memory = MemoryTree()
    for _, leaf, _ in store.iter_leaves():
        memory.append(leaf)
    rows = store.db.conn.execute("SELECT level, idx, hash FROM log_nodes").fetchall()
    expected = set()
    level = 0
    while 45 >> level:
        for index in range(45 >> level):
            expected.add((level, index, memory.get_node(level, index)))
        level += 1
    assert {(lv, ix, bytes(h)) for lv, ix, h in rows} == expected


def test_proofs_match_memory_tree_and_verify(store: LogStore, investigator_a: Signer) -> None:
    _fill(store, investigator_a, 21)
    memory = MemoryTree()
    for _, leaf, _ in store.iter_leaves():
        memory.append(leaf)
    for size in range(1, 22):
        root = store.root(size)
        assert root == memory.view.root(size)
        for index in range(size):
            proof = store.inclusion_proof(index, size)
            assert proof == memory.view.inclusion_proof(index, size)
            verify_inclusion(leaf_hash(store.leaf(index)), index, size, proof, root)
        for old in range(1, size + 1):
            proof = store.consistency_proof(old, size)
            assert proof == memory.view.consistency_proof(old, size)
            verify_consistency(old, size, proof, store.root(old), root)
    assert store.inclusion_proof(3) == memory.view.inclusion_proof(3, 21)
    assert store.consistency_proof(5) == memory.view.consistency_proof(5, 21)


@pytest.mark.parametrize(
    ("call", "args"),
    [
        pytest.param("root", (6,), id="root-beyond-size"),
        pytest.param("root", (-1,), id="root-negative-size"),
        pytest.param("inclusion_proof", (5, 5), id="index-equals-size"),
        pytest.param("inclusion_proof", (0, 6), id="size-beyond-log"),
        pytest.param("inclusion_proof", (7,), id="index-beyond-log"),
        pytest.param("consistency_proof", (0, 5), id="consistency-from-zero"),
        pytest.param("consistency_proof", (3, 9), id="consistency-beyond-log"),
        pytest.param("consistency_proof", (4, 2), id="consistency-backwards"),
        pytest.param("leaf", (5,), id="leaf-beyond-log"),
        pytest.param("leaf", (-1,), id="leaf-negative"),
    ],
)
def test_bad_read_arguments_are_refused(
    store: LogStore, investigator_a: Signer, call: str, args: tuple[int, ...]
) -> None:
    _fill(store, investigator_a, 5)
    with pytest.raises(InputError) as caught:
        getattr(store, call)(*args)
    assert caught.value.hint


def test_iter_leaves_streams_in_batches(store: LogStore, investigator_a: Signer) -> None:
    _fill(store, investigator_a, 23)
    everything = list(store.iter_leaves(batch=4))
    assert [seq for seq, _, _ in everything] == list(range(23))
    assert list(store.iter_leaves(start=5, stop=11, batch=2)) == everything[5:11]
    assert list(store.iter_leaves(start=20)) == everything[20:]
    assert list(store.iter_leaves(start=30)) == []


def test_iteration_stops_at_size_seen_when_it_began(
    store: LogStore, investigator_a: Signer
) -> None:
    _fill(store, investigator_a, 3)
    stream = store.iter_leaves(batch=1)
    next(stream)
    _fill(store, investigator_a, 2)
    assert [seq for seq, _, _ in stream] == [1, 2]


def test_failed_transaction_leaves_no_trace(store: LogStore, investigator_a: Signer) -> None:
    _fill(store, investigator_a, 2)
    root = store.root()
    store.db.conn.execute("CREATE TABLE projection (seq INTEGER)")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.transaction() as tx:
        appended = tx.append(_draft(7), investigator_a)
        tx.db.conn.execute("INSERT INTO projection VALUES (?)", (appended.seq,))
        raise Boom
    assert store.size() == 2
    assert store.root() == root
    assert store.db.conn.execute("SELECT count(*) FROM projection").fetchone()[0] == 0
    assert store.db.conn.execute("SELECT count(*) FROM log_nodes").fetchone()[0] == 3
    with store.transaction() as tx:
        assert tx.append(_draft(8), investigator_a).seq == 2


def test_transaction_misuse_is_refused(store: LogStore, investigator_a: Signer) -> None:
    with store.transaction() as tx, pytest.raises(RuntimeError), store.transaction():
        pass
    with pytest.raises(RuntimeError):
        tx.append(_draft(0), investigator_a)
    assert store.size() == 0


def test_checkpoints(store: LogStore, investigator_a: Signer, investigator_b: Signer) -> None:
    _fill(store, investigator_a, 4)
    note = store.checkpoint(investigator_a)
    checkpoint = open_checkpoint(note, [investigator_a.verifier], origin=ORIGIN)
    assert (checkpoint.size, checkpoint.root) == (4, store.root())
    # The same size gives back the stored note, whoever asks: one root per size, signed once.
    assert store.checkpoint(investigator_b) == note
    _fill(store, investigator_a, 3)
    with store.transaction() as tx:
        tx.append(_draft(99), investigator_b)
        later = tx.checkpoint(investigator_b)
    assert open_checkpoint(later, [investigator_b.verifier]).size == 8
    assert store.latest_checkpoint() == later
    assert list(store.iter_checkpoints()) == [(4, store.root(4), note), (8, store.root(8), later)]


def test_checkpoint_of_empty_log(store: LogStore, investigator_a: Signer) -> None:
    note = store.checkpoint(investigator_a)
    assert open_checkpoint(note, [investigator_a.verifier]).size == 0


def test_tampered_checkpoint_is_reported_not_replaced(
    store: LogStore, investigator_a: Signer
) -> None:
    _fill(store, investigator_a, 3)
    note = store.checkpoint(investigator_a)
    conn = store.db.conn
    # Someone with direct access removes the guard and rewrites the stored root.
    conn.execute("DROP TRIGGER checkpoints_no_update")
    conn.execute("UPDATE checkpoints SET root = zeroblob(32) WHERE size = 3")
    with pytest.raises(VerificationError) as caught:
        store.checkpoint(investigator_a)
    assert caught.value.findings[0].code == "checkpoint-root-mismatch"
    assert bytes(conn.execute("SELECT note FROM checkpoints").fetchone()[0]) == note


WRITES = {
    "update-log": "UPDATE log SET action = 'item.deleted' WHERE seq = 0",
    "delete-log": "DELETE FROM log WHERE seq = 1",
    "update-log_nodes": "UPDATE log_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 0",
    "delete-log_nodes": "DELETE FROM log_nodes",
    "update-checkpoints": "UPDATE checkpoints SET note = x'00' WHERE size = 2",
    "delete-checkpoints": "DELETE FROM checkpoints",
    "replace-log": "INSERT OR REPLACE INTO log SELECT 0, leaf, leaf_hash, time, action, actor, "
    "subject FROM log WHERE seq = 1",
    "replace-log_nodes": "INSERT OR REPLACE INTO log_nodes VALUES (0, 0, zeroblob(32))",
    "replace-checkpoints": "INSERT OR REPLACE INTO checkpoints SELECT size, root, x'00', "
    "made_at FROM checkpoints",
    "gap-in-seq": "INSERT INTO log SELECT 5, leaf, leaf_hash, time, action, actor, subject "
    "FROM log WHERE seq = 1",
}


SNAPSHOT = [
    "SELECT * FROM log ORDER BY seq",
    "SELECT * FROM log_nodes ORDER BY level, idx",
    "SELECT * FROM checkpoints ORDER BY size",
]


def _snapshot(conn: sqlite3.Connection) -> list[list[tuple[object, ...]]]:
    return [conn.execute(query).fetchall() for query in SNAPSHOT]


@pytest.mark.parametrize("recursive_triggers", ["on", "off"])
@pytest.mark.parametrize("case", sorted(WRITES))
def test_history_cannot_be_rewritten(
    store: LogStore, investigator_a: Signer, case: str, recursive_triggers: str
) -> None:
    _fill(store, investigator_a, 2)
    store.checkpoint(investigator_a)
    conn = store.db.conn
    before = _snapshot(conn)
    conn.execute(f"PRAGMA recursive_triggers = {recursive_triggers}")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(WRITES[case])
    assert _snapshot(conn) == before


def _append_in_process(path: str, key_label: str, count: int) -> None:
    """Worker: open the database anew and append ``count`` events, one transaction each."""
    signer = signer_from_seed(key_label, seed_for(key_label))
    store = LogStore(open_database(path), CASE_ID, ORIGIN)
    for n in range(count):
        with store.transaction() as tx:
            tx.append(_draft(n), signer)


@pytest.mark.slow
def test_two_processes_append_without_gaps_or_forks(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    LogStore(open_database(path), CASE_ID, ORIGIN)  # schema first, as `evidence init` does
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_append_in_process, args=(str(path), label, 200))
        for label in ("investigator-a", "investigator-b")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    store = LogStore(open_database(path), CASE_ID, ORIGIN)
    leaves = list(store.iter_leaves())
    assert [seq for seq, _, _ in leaves] == list(range(400))
    events = [parse_leaf(leaf).event for _, leaf, _ in leaves]
    assert [event.seq for event in events] == list(range(400))
    assert events[0].prev == ""
    for (_, _, previous_hash), event in zip(leaves, events[1:], strict=False):
        assert event.prev == previous_hash.hex()
    times = [parse_event_time(event.time) for event in events]
    assert times == sorted(times)
    actors = {event.actor for event in events}
    assert len(actors) == 2
    assert store.root() == root_from_leaf_hashes([leaf_hash(leaf) for _, leaf, _ in leaves])


@pytest.mark.parametrize(
    ("column", "value"),
    [
        pytest.param("leaf_hash", "hex(randomblob(16))", id="hash-as-text"),
        pytest.param("leaf_hash", "randomblob(32)", id="hash-of-another-leaf"),
        pytest.param("leaf", "CAST(leaf AS TEXT)", id="leaf-as-text"),
        pytest.param("time", "CAST(time AS BLOB)", id="time-as-blob"),
    ],
)
def test_nothing_is_appended_after_a_damaged_last_event(
    store: LogStore, investigator_a: Signer, column: str, value: str
) -> None:
    signer = investigator_a
    _fill(store, signer, 3)
    conn = store.conn
    conn.execute("DROP TRIGGER log_no_update")
    conn.execute(f"UPDATE log SET {column} = {value} WHERE seq = 2")  # noqa: S608 - test table
    with pytest.raises(EnvironmentProblem, match=r"seq 2\) is damaged") as caught:
        _fill(store, signer, 1)
    assert "evidence verify" in (caught.value.hint or "")
    assert store.size() == 3
