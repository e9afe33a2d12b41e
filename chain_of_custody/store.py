"""The custody log in SQLite: append-only leaves, stored Merkle nodes and signed checkpoints.

Three insert-only tables (``log``, ``log_nodes``, ``checkpoints``) live in the case catalog;
triggers refuse UPDATE and DELETE, a leaf whose seq does not follow the last one, and a second
row for an existing node or checkpoint size, so that not even ``INSERT OR REPLACE`` can rewrite
history. Appends run inside ``BEGIN IMMEDIATE`` transactions, so that concurrent writers
(several investigators' processes on one case) are serialised by SQLite and every event gets the
next seq and the previous leaf hash.
"""

from __future__ import annotations

import hmac
import os
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from chain_of_custody.checkpoint import Checkpoint, sign_checkpoint
from chain_of_custody.errors import EnvironmentProblem, Finding, InputError, VerificationError
from chain_of_custody.events import Event, EventDraft, format_event_time, make_leaf
from chain_of_custody.keys import Signer
from chain_of_custody.merkle import (
    NodeKey,
    TreeView,
    leaf_hash,
    new_nodes_for_append,
)

__all__ = ["AppendedEvent", "LogStore", "LogTransaction", "ReadOnlyDatabase", "open_database"]

BUSY_TIMEOUT_MS = 60_000
# Upper bound of each connection's page cache.
CACHE_KIB = 32 * 1024
# SQLite copies its write-ahead log into the database once the log holds this many pages.
CHECKPOINT_PAGES = 4000

Clock = Callable[[], datetime]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS log (
        seq INTEGER PRIMARY KEY CHECK (seq >= 0),
        leaf BLOB NOT NULL,
        leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32),
        time TEXT NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        subject TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS log_nodes (
        level INTEGER NOT NULL CHECK (level >= 0),
        idx INTEGER NOT NULL CHECK (idx >= 0),
        hash BLOB NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        size INTEGER PRIMARY KEY CHECK (size >= 0),
        root BLOB NOT NULL CHECK (length(root) = 32),
        note BLOB NOT NULL,
        made_at TEXT NOT NULL
    )""",
    # A gap or a reused seq would break the chain; refuse it whoever writes.
    """CREATE TRIGGER IF NOT EXISTS log_seq_follows BEFORE INSERT ON log
    WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), -1) + 1 FROM log)
    BEGIN SELECT RAISE(ABORT, 'custody log: seq must follow the last event'); END""",
    # BEFORE INSERT triggers run ahead of conflict resolution, so these also stop INSERT OR
    # REPLACE, which would otherwise delete silently when recursive_triggers is off.
    """CREATE TRIGGER IF NOT EXISTS log_nodes_insert_only BEFORE INSERT ON log_nodes
    WHEN EXISTS (SELECT 1 FROM log_nodes WHERE level = NEW.level AND idx = NEW.idx)
    BEGIN SELECT RAISE(ABORT, 'custody log: a Merkle node is never replaced'); END""",
    """CREATE TRIGGER IF NOT EXISTS checkpoints_insert_only BEFORE INSERT ON checkpoints
    WHEN EXISTS (SELECT 1 FROM checkpoints WHERE size = NEW.size)
    BEGIN SELECT RAISE(ABORT, 'custody log: a checkpoint is never replaced'); END""",
]
for _table in ("log", "log_nodes", "checkpoints"):
    for _verb in ("UPDATE", "DELETE"):
        _SCHEMA.append(
            f"CREATE TRIGGER IF NOT EXISTS {_table}_no_{_verb.lower()} BEFORE {_verb} ON {_table} "
            f"BEGIN SELECT RAISE(ABORT, 'custody log is append-only: {_verb} of {_table} is "
            "refused'); END"
        )


def _made_by(statement: str) -> tuple[str, str]:
    """``(kind, name)`` of what a schema statement creates: ``("table", "log")`` ..."""
    match = re.match(r"CREATE (TABLE|TRIGGER) IF NOT EXISTS (\w+)", statement)
    if match is None:
        raise ValueError(f"not a schema statement: {statement[:40]!r}")
    return match.group(1).lower(), match.group(2)


_INSERT_LEAF = (
    "INSERT INTO log (seq, leaf, leaf_hash, time, action, actor, subject) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_NODE = "INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)"
_LAST_EVENT = "SELECT seq, leaf_hash, time FROM log ORDER BY seq DESC LIMIT 1"


class ReadOnlyDatabase(Database):
    """A catalog opened for reading only: nothing is written to it.

    What :func:`open_database` returns for a catalog that cannot be written (a case on a
    write-protected stick, a read-only mount, a copy without write permission). A
    :class:`LogStore` on it refuses every write transaction with an :class:`EnvironmentProblem`.
    """


def open_database(path: Path | str, *, read_only: bool | None = None) -> Database:
    """Open (or create) a catalog database for concurrent, durable use.

    Explicit transactions (``isolation_level=None``), WAL journal, a 60 s busy timeout so that
    writers queue instead of failing, and ``synchronous=FULL`` so a commit survives power loss.

    By default (``read_only=None``) a catalog that exists but cannot be written (a case on a
    write-protected medium, say) is opened for reading only, as a :class:`ReadOnlyDatabase`;
    ``read_only=True`` opens any existing catalog so, ``read_only=False`` refuses one that
    cannot be written. See :func:`_open_read_only` for what reading only takes.
    """
    path = Path(path)
    if read_only:
        return _open_read_only(path)
    try:
        db = _open_writable(path)
    except _CannotWriteError as refused:
        if read_only is None:
            return _open_read_only(path)
        raise EnvironmentProblem(
            f"the case catalog {path} is read-only ({_error_name(refused.error)})",
            hint=_READ_ONLY_HINT,
        ) from refused.error
    if read_only is None and not _writable(path):
        # A read-only catalog file in a writable folder: SQLite opens it all the same (and
        # refuses the first write); said at once, a command refuses before it writes anything.
        db.conn.close()
        return _open_read_only(path)
    return db


def _writable(path: Path) -> bool:
    """Whether this process may write the file: what SQLite's own open finds out."""
    if os.access in os.supports_effective_ids:
        return os.access(path, os.W_OK, effective_ids=True)
    return os.access(path, os.W_OK)


_READ_ONLY_HINT = (
    "make catalog.sqlite and the case folder writable for your user (SQLite writes "
    "catalog.sqlite-wal and -shm beside it), or copy the whole case folder to a writable place "
    "and run the command on the copy"
)
# Primary result codes of SQLite that say a file could not be written or made beside the
# catalog (its -wal and -shm files): SQLITE_READONLY_DIRECTORY, ..._CANTINIT and the others
# share the first, SQLITE_CANTOPEN comes from a -wal that cannot be created.
_CANNOT_WRITE_CODES = frozenset({sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN})


class _CannotWriteError(Exception):
    """The catalog exists but cannot be opened for writing; ``error`` is SQLite's."""

    def __init__(self, error: sqlite3.Error) -> None:
        super().__init__(str(error))
        self.error = error


def _primary_code(exc: sqlite3.Error) -> int:
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF


def _open_writable(path: Path) -> Database:
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous = FULL")
        # Items and sightings are keyed by digests, so a batch inserts all over the indexes;
        # with SQLite's default 2 MiB cache a large case reads the same pages back again and
        # again, and with its default checkpoints every 4 MiB of log writes them again and
        # again. The cache grows only as far as it is used.
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        if _primary_code(exc) in _CANNOT_WRITE_CODES and path.is_file():
            raise _CannotWriteError(exc) from exc
        raise EnvironmentProblem(
            f"cannot open database {path}: {exc}",
            hint="check that the case directory exists, is writable and is not on a network share",
        ) from exc
    if str(mode).lower() != "wal":
        conn.close()
        raise EnvironmentProblem(
            f"database {path} cannot use write-ahead logging (journal mode {mode})",
            hint="keep the case on a local file system",
        )
    return Database(conn)


def _open_read_only(path: Path) -> ReadOnlyDatabase:
    """Open the catalog at ``path`` for reading only: nothing is written to it.

    SQLite reads a WAL database through its ``-shm`` index and its ``-wal`` file, which it
    creates when they are missing. Where it can (a read-only catalog in a writable folder, or
    a copy that came with both files), the catalog is opened with ``mode=ro``, which reads
    what the -wal holds and sees the commits of writers working meanwhile. Where it cannot (a
    folder that cannot be written), the catalog is read as ``immutable``, which writes nothing
    anywhere but ignores any -wal: that is right only when there is no -wal with content (a
    case whose last writer closed it cleanly, as every command does), so a catalog with such a
    -wal and no usable -shm is refused rather than shown as it was before its last commits.
    """
    if not path.is_file():
        raise EnvironmentProblem(
            f"cannot open database {path}: there is no such file",
            hint="check the case directory",
        )
    # A URI keeps the path as given (no symbolic link resolved), percent-encoded.
    uri = path.absolute().as_uri()
    try:
        return _connect_read_only(f"{uri}?mode=ro")
    except sqlite3.Error as exc:
        if _primary_code(exc) not in _CANNOT_WRITE_CODES:
            raise _unreadable(path, exc) from exc
    wal = path.with_name(path.name + "-wal")
    try:
        unmerged = wal.stat().st_size > 0
    except FileNotFoundError:
        unmerged = False
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot read {wal}, the write-ahead log of the case catalog: {exc.strerror}",
            hint="copy the whole case folder to a writable place and run the command there",
        ) from exc
    if unmerged:
        raise EnvironmentProblem(
            f"the case catalog {path} is read-only and its write-ahead log {wal.name} holds "
            "changes not yet merged into it, which SQLite cannot read without writing beside it",
            hint="copy the whole case folder (with catalog.sqlite-wal) to a writable place "
            "and run the command on the copy; opening it there merges the changes",
        )
    try:
        return _connect_read_only(f"{uri}?mode=ro&immutable=1")
    except sqlite3.Error as exc:
        raise _unreadable(path, exc) from exc


def _connect_read_only(uri: str) -> ReadOnlyDatabase:
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        # The first read opens the -wal and -shm files, or fails for want of them.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return ReadOnlyDatabase(conn)


def _unreadable(path: Path, exc: sqlite3.Error) -> EnvironmentProblem:
    return EnvironmentProblem(
        f"cannot open database {path} for reading: {exc}",
        hint="check that the case folder can be read; restore the catalog from a backup "
        "of the case if it is damaged",
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AppendedEvent:
    """An event as appended: its seq, the signed leaf bytes, the leaf hash and the event."""

    seq: int
    leaf: bytes
    leaf_hash: bytes
    event: Event


class _SqliteNodes:
    """The ``log_nodes`` table as a batch :class:`~chain_of_custody.merkle.NodeReader`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def get_node(self, level: int, index: int) -> bytes:
        return self.get_nodes([(level, index)])[(level, index)]

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        if not keys:
            return {}
        values = ",".join("(?, ?)" for _ in keys)
        params = [number for key in keys for number in key]
        # CROSS JOIN keeps the key list as the outer loop, so each key is one primary-key
        # search; a row-value IN list would scan the whole table instead.
        query = (
            f"SELECT n.level, n.idx, n.hash FROM (VALUES {values}) AS k "  # noqa: S608 - placeholders
            "CROSS JOIN log_nodes AS n ON n.level = k.column1 AND n.idx = k.column2"
        )
        rows = self._conn.execute(query, params).fetchall()
        found = {(level, idx): bytes(value) for level, idx, value in rows}
        missing = [key for key in keys if key not in found]
        if missing:
            raise LookupError(f"custody log is missing Merkle node(s) {missing[:3]}")
        return found


class _Frontier:
    """The complete subtrees at the right edge of the tree: all that an append reads."""

    def __init__(self, nodes: Mapping[NodeKey, bytes]) -> None:
        self._by_level = {level: (index, value) for (level, index), value in nodes.items()}

    def get_node(self, level: int, index: int) -> bytes:
        stored_index, value = self._by_level[level]
        if stored_index != index:
            raise LookupError(f"Merkle node ({level}, {index}) is not on the right edge")
        return value

    def add(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        top_level, top_index, top_hash = nodes[-1]
        for level in range(top_level):
            self._by_level.pop(level, None)
        self._by_level[top_level] = (top_index, top_hash)


class LogStore:
    """The custody log of one case, stored in the case catalog."""

    def __init__(self, db: Database, case_id: str, origin: str, clock: Clock | None = None) -> None:
        self.db = db
        self.case_id = case_id
        self.origin = origin
        self._clock: Clock = clock or _utc_now
        self._nodes = _SqliteNodes(db.conn)
        self.view = TreeView(self._nodes)
        self._ensure_schema()

    @property
    def conn(self) -> sqlite3.Connection:
        """The underlying connection (explicit transactions)."""
        return self.db.conn

    @property
    def read_only(self) -> bool:
        """Whether the catalog was opened for reading only (:class:`ReadOnlyDatabase`)."""
        return isinstance(self.db, ReadOnlyDatabase)

    def require_writable(self) -> None:
        """Raise :class:`EnvironmentProblem` if the catalog was opened for reading only."""
        if self.read_only:
            raise EnvironmentProblem(
                f"the case catalog {self._catalog_path()} is read-only: the case is in a "
                "folder or on a medium that cannot be written, so nothing can be recorded in it",
                hint="copy the whole case folder to a writable place and run the command on the "
                "copy; the read-only case can still be read and checked with `evidence verify`",
            )

    def _ensure_schema(self) -> None:
        """Create the log's tables and triggers that the catalog lacks.

        Nothing is written when none is missing, as in every case made by the toolkit: opening
        a case to read it takes no write lock. A read-only catalog gets each missing table as an
        empty temporary one (in memory, never in the catalog), which is what a writable opening
        would create; its triggers are not needed where nothing can be written.
        """
        present = {
            (str(kind), str(name))
            for kind, name in self.conn.execute(
                "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'trigger')"
            )
        }
        missing = [statement for statement in _SCHEMA if _made_by(statement) not in present]
        if not missing:
            return
        if self.read_only:
            for statement in missing:
                if _made_by(statement)[0] == "table":
                    self.conn.execute(statement.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))
            return
        with self._immediate():
            for statement in missing:
                self.conn.execute(statement)

    def now(self) -> str:
        """The clock's current time as an RFC 3339 UTC string."""
        return format_event_time(self._clock())

    @contextmanager
    def _immediate(self) -> Iterator[None]:
        conn = self.conn
        if conn.in_transaction:
            raise RuntimeError("a custody log transaction is already open on this connection")
        self.require_writable()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise self._write_problem(exc) or EnvironmentProblem(
                f"cannot lock the case catalog {self._catalog_path()} for writing "
                f"({_error_name(exc)})",
                hint="check the case folder's disk and permissions, then run the command again",
            ) from exc
        try:
            yield
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            problem = (
                self._write_problem(exc) if isinstance(exc, sqlite3.OperationalError) else None
            )
            if problem is None:
                raise
            raise problem from exc

    def _write_problem(self, exc: sqlite3.OperationalError) -> EnvironmentProblem | None:
        """What stopped a write to the catalog, for the causes that lie outside the toolkit
        (a read-only catalog, a full disk, another writer, a failing disk); ``None`` for others.
        The transaction is rolled back: nothing of it was recorded.

        Told from SQLite's error code, never from its message, which can quote the data of a
        statement.
        """
        code = _primary_code(exc)
        path = self._catalog_path()
        if code == sqlite3.SQLITE_READONLY:
            return EnvironmentProblem(f"the case catalog {path} is read-only", hint=_READ_ONLY_HINT)
        if code == sqlite3.SQLITE_FULL:
            return EnvironmentProblem(
                f"the disk holding the case catalog {path} is full",
                hint="free disk space where the case is kept, then run the command again",
            )
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return EnvironmentProblem(
                f"cannot lock the case catalog {path} for writing: another process holds it",
                hint="wait for it to finish and try again",
            )
        if code == sqlite3.SQLITE_IOERR:
            return EnvironmentProblem(
                f"the case catalog {path} could not be written (input/output error)",
                hint="check the disk holding the case, then run `evidence verify`",
            )
        return None

    def _catalog_path(self) -> str:
        try:
            row = self.conn.execute("PRAGMA database_list").fetchone()
        except sqlite3.Error:
            row = None
        return str(row[2]) if row and row[2] else "(in memory)"

    @contextmanager
    def transaction(self) -> Iterator[LogTransaction]:
        """A write transaction (``BEGIN IMMEDIATE``): commit on success, roll back on error."""
        with self._immediate():
            tx = LogTransaction(self)
            try:
                yield tx
            finally:
                tx.closed = True

    # Reads. Each is correct outside a transaction too: rows are never changed once written.

    def size(self) -> int:
        """Number of events in the log."""
        row = self.conn.execute("SELECT max(seq) FROM log").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def leaf(self, seq: int) -> bytes:
        """The leaf bytes of event ``seq``."""
        row = self.conn.execute("SELECT leaf FROM log WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            raise InputError(
                f"event seq {seq} is not in the custody log (size {self.size()})",
                hint="list the log with 'evidence log show' to find the event",
            )
        return bytes(row[0])

    def iter_leaves(
        self, start: int = 0, stop: int | None = None, batch: int = 2000
    ) -> Iterator[tuple[int, bytes, bytes]]:
        """Stream ``(seq, leaf, leaf_hash)`` for seq in ``[start, stop)``, ``batch`` rows a query.

        Without ``stop`` the log is read up to its size when iteration begins, so that events
        appended meanwhile do not make the stream endless.
        """
        end = self.size() if stop is None else stop
        position = max(start, 0)
        while position < end:
            rows = self.conn.execute(
                "SELECT seq, leaf, leaf_hash FROM log WHERE seq >= ? AND seq < ? "
                "ORDER BY seq LIMIT ?",
                (position, end, batch),
            ).fetchall()
            if not rows:
                return
            for seq, leaf, hashed in rows:
                yield int(seq), bytes(leaf), bytes(hashed)
            position = int(rows[-1][0]) + 1

    def _size_or_current(self, size: int | None, what: str) -> int:
        current = self.size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise InputError(
                f"{what} {size} is beyond the custody log size {current}",
                hint=f"give a {what} between 0 and {current}",
            )
        return size

    def stored_nodes(self, level: int, first: int, last: int) -> dict[int, bytes]:
        """The stored interior hashes of one level with index in ``[first, last]``, by index."""
        rows = self.conn.execute(
            "SELECT idx, hash FROM log_nodes WHERE level = ? AND idx BETWEEN ? AND ?",
            (level, first, last),
        ).fetchall()
        return {int(idx): bytes(value) for idx, value in rows}

    def root(self, size: int | None = None) -> bytes:
        """The Merkle root of the first ``size`` events (default: the whole log)."""
        return self.view.root(self._size_or_current(size, "tree size"))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The inclusion proof of event ``index`` in the tree of ``size`` (default: whole log)."""
        return self.view.inclusion_proof(index, self._size_or_current(size, "tree size"))

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """The consistency proof from tree size ``old`` to ``new`` (default: whole log)."""
        return self.view.consistency_proof(old, self._size_or_current(new, "new tree size"))

    def checkpoint(self, signer: Signer) -> bytes:
        """Sign and store the checkpoint of the current size, or return the one stored for it."""
        with self.transaction() as tx:
            return tx.checkpoint(signer)

    def latest_checkpoint(self) -> bytes | None:
        """The signed checkpoint of the largest size stored, or ``None``."""
        row = self.conn.execute(
            "SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else bytes(row[0])

    def iter_checkpoints(self) -> Iterator[tuple[int, bytes, bytes]]:
        """``(size, root, note)`` of every stored checkpoint, smallest size first."""
        rows = self.conn.execute(
            "SELECT size, root, note FROM checkpoints ORDER BY size"
        ).fetchall()
        for size, root, note in rows:
            yield int(size), bytes(root), bytes(note)


def _error_name(exc: sqlite3.Error) -> str:
    return getattr(exc, "sqlite_errorname", None) or "SQLite error"


class LogTransaction:
    """An open write transaction on the log; ``db`` is the same connection for projections.

    The size, last leaf hash, last time and right edge of the tree are read once and then kept
    here, so a batch of appends costs one insert of the leaf and of its new nodes each.
    """

    def __init__(self, store: LogStore) -> None:
        self.store = store
        self.db = store.db
        self.closed = False
        row = store.conn.execute(_LAST_EVENT).fetchone()
        if row is None:
            self._size, self._last_hash, self._last_time = 0, b"", ""
        else:
            self._size = int(row[0]) + 1
            self._last_hash, self._last_time = bytes(row[1]), str(row[2])
        self._frontier: _Frontier | None = None

    @property
    def size(self) -> int:
        """The log size including this transaction's appends."""
        return self._size

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("the custody log transaction is already closed")

    def _load_frontier(self) -> _Frontier:
        if self._frontier is None:
            size = self._size
            keys: list[NodeKey] = []
            start = 0
            # The right edge is one complete subtree per set bit of size, largest first.
            for level in range(size.bit_length() - 1, -1, -1):
                if size >> level & 1:
                    keys.append((level, start >> level))
                    start += 1 << level
            self._frontier = _Frontier(self.store._nodes.get_nodes(keys))
        return self._frontier

    def append(self, draft: EventDraft, signer: Signer) -> AppendedEvent:
        """Sign ``draft`` as the next event and append it; return what was appended."""
        return self.append_many([draft], signer)[0]

    def append_many(self, drafts: Sequence[EventDraft], signer: Signer) -> list[AppendedEvent]:
        """Sign the drafts as the next events, in order, and append them; return them.

        The same as appending each in turn, with the rows written by one statement per table.
        If any draft is refused, none is appended.
        """
        self._check_open()
        frontier = self._load_frontier()
        store = self.store
        seq, last_hash, last_time = self._size, self._last_hash, self._last_time
        appended: list[AppendedEvent] = []
        leaf_rows: list[tuple[Any, ...]] = []
        node_rows: list[tuple[int, int, bytes]] = []
        try:
            for draft in drafts:
                # Times never go backwards in the log, even if the system clock does.
                moment = max(store.now(), last_time)
                # Not validated again: every field is made here or comes from a validated
                # draft (measured: validation took about 8% of an append).
                event = Event.model_construct(
                    seq=seq,
                    time=moment,
                    case=store.case_id,
                    action=draft.action,
                    actor=signer.verifier.key_id,
                    subject=draft.subject,
                    data=draft.data,
                    prev=last_hash.hex() if seq else "",
                )
                leaf = make_leaf(event, signer)
                hashed = leaf_hash(leaf)
                nodes = new_nodes_for_append(seq, hashed, frontier)
                frontier.add(nodes)
                leaf_rows.append(
                    (seq, leaf, hashed, moment, event.action, event.actor, event.subject)
                )
                node_rows.extend(nodes)
                appended.append(AppendedEvent(seq=seq, leaf=leaf, leaf_hash=hashed, event=event))
                seq, last_hash, last_time = seq + 1, hashed, moment
            conn = store.conn
            conn.executemany(_INSERT_LEAF, leaf_rows)
            conn.executemany(_INSERT_NODE, node_rows)
        except BaseException:
            # The right edge may hold nodes that were never written: read it again if needed.
            self._frontier = None
            raise
        self._size, self._last_hash, self._last_time = seq, last_hash, last_time
        return appended

    def checkpoint(self, signer: Signer) -> bytes:
        """Sign and store the checkpoint of the current size, or return the stored one.

        A stored checkpoint whose root differs from the tree's is reported, never replaced:
        the case never signs two roots for one size.
        """
        self._check_open()
        size = self._size
        root = self.store.view.root(size)
        row = self.store.conn.execute(
            "SELECT root, note FROM checkpoints WHERE size = ?", (size,)
        ).fetchone()
        if row is not None:
            if not hmac.compare_digest(bytes(row[0]), root):
                raise VerificationError(
                    Finding(
                        code="checkpoint-root-mismatch",
                        message=f"stored checkpoint of size {size} has a root that the log "
                        "does not produce",
                        subject=f"checkpoint {size}",
                    ),
                    hint="the catalog was changed behind the toolkit's back; run "
                    "'evidence verify' and keep the checkpoints already given out",
                )
            return bytes(row[1])
        note = sign_checkpoint(Checkpoint(self.store.origin, size, root), [signer])
        self.store.conn.execute(
            "INSERT INTO checkpoints (size, root, note, made_at) VALUES (?, ?, ?, ?)",
            (size, root, note, self.store.now()),
        )
        return note
