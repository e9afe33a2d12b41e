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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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

__all__ = [
    "AppendedEvent",
    "LogStore",
    "LogTransaction",
    "ReadOnlyDatabase",
    "StoredTables",
    "UndecodableText",
    "catalog_problem",
    "describe_value",
    "fetch_all",
    "open_database",
]

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


def _guarded_table(statement: str) -> str:
    """The table a trigger statement of the schema guards (``""`` for a table statement)."""
    match = re.search(r" ON (\w+)", statement)
    return match.group(1) if match else ""


def _made_by(statement: str) -> tuple[str, str]:
    """``(kind, name)`` of what a schema statement creates: ``("table", "log")`` ..."""
    match = re.match(r"CREATE (TABLE|TRIGGER) IF NOT EXISTS (\w+)", statement)
    if match is None:
        raise ValueError(f"not a schema statement: {statement[:40]!r}")
    return match.group(1).lower(), match.group(2)


# The columns of the log's tables, as _SCHEMA makes them, and the key of each table.
_LOG_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "log": (("seq", "leaf", "leaf_hash", "time", "action", "actor", "subject"), ("seq",)),
    "log_nodes": (("level", "idx", "hash"), ("level", "idx")),
    "checkpoints": (("size", "root", "note", "made_at"), ("size",)),
}
# The columns without which a table of the log cannot be read at all.
_NEEDED = {
    "log": ("seq", "leaf", "leaf_hash"),
    "log_nodes": ("level", "idx", "hash"),
    "checkpoints": ("size", "root", "note"),
}
# The largest seq an event can have: the largest integer that JSON numbers carry exactly.
_MAX_SEQ = 2**53 - 1
# A tree of at most _MAX_SEQ + 1 leaves has no node above this level.
_MAX_LEVEL = 53

_INSERT_LEAF = (
    "INSERT INTO log (seq, leaf, leaf_hash, time, action, actor, subject) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_NODE = "INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)"
# A blob column read as bytes whatever its stored type: text as its UTF-8 bytes (never decoded,
# so text that is not valid UTF-8 reads too), a number as its decimal text, NULL as no bytes.
# On a blob the cast and ifnull cost nothing measurable.
_BLOB = "ifnull(CAST({0} AS BLOB), X'')"
_LEAVES = (
    f"SELECT seq, {_BLOB.format('leaf')}, {_BLOB.format('leaf_hash')} FROM log "  # noqa: S608
    "WHERE seq >= ? AND seq <= ? AND typeof(seq) = 'integer' ORDER BY seq LIMIT ?"
)
_LAST_EVENT = "SELECT seq, leaf, leaf_hash, time FROM log ORDER BY seq DESC LIMIT 1"


# --- reading values of any type -----------------------------------------------------------
#
# The catalog is a file that anyone holding the case can edit: a column may hold a value of
# another type than the toolkit writes (text for a blob, NULL, a real), or text that is not
# valid UTF-8, which Python's sqlite3 refuses to read. What verifies the case reads such values
# without failing and reports them.


@dataclass(frozen=True)
class UndecodableText:
    """A TEXT value of the catalog that is not valid UTF-8, as :func:`fetch_all` reads it.

    It equals no ``str``, so it never passes for the text the log gives.
    """

    data: bytes

    def __str__(self) -> str:
        return f"text that is not valid UTF-8 ({len(self.data)} bytes)"


def _decode_text(data: bytes) -> str | UndecodableText:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return UndecodableText(data)


def fetch_all(
    conn: sqlite3.Connection, query: str, params: Sequence[Any] | Mapping[str, Any] = ()
) -> list[tuple[Any, ...]]:
    """Every row of ``query``; a TEXT value that is not valid UTF-8 is read as
    :class:`UndecodableText` instead of failing the read.

    Rows are read as usual first (Python's own decoding costs nothing extra); only when that
    fails is the query read again with each text decoded here. An error that is not about
    decoding occurs again and is raised.
    """
    try:
        return conn.execute(query, params).fetchall()
    except sqlite3.OperationalError:
        saved = conn.text_factory
        conn.text_factory = _decode_text
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.text_factory = saved


def describe_value(value: Any) -> str:
    """A stored value as a report names it: its SQLite type and, where short, the value.

    Text is shown escaped (``repr``), so that a value cannot put control characters on the
    auditor's terminal.
    """
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the real number {value!r}"
    if isinstance(value, bytes):
        return f"a blob of {len(value)} bytes"
    if isinstance(value, UndecodableText):
        return str(value)
    text = str(value)
    shown = repr(text) if len(text) <= 64 else repr(text[:64]) + " ..."
    return f"the text {shown}"


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


# SQLite's primary result codes for a file it cannot read: damaged pages, not a database, a
# read that failed on the disk.
_DAMAGED_FILE_CODES = frozenset(
    {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_IOERR}
)


def catalog_problem(exc: sqlite3.Error, path: object = None) -> EnvironmentProblem:
    """What to tell of an SQLite error met while using the catalog (at ``path``, if known)
    outside the expected ones: a file SQLite cannot read, or tables changed behind the
    toolkit's back (a column renamed, a table recreated).

    Told from SQLite's error code, never from its message, which can quote the data of a
    statement.
    """
    name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    catalog = "the case catalog" if path is None else f"the case catalog {path}"
    if _primary_code(exc) in _DAMAGED_FILE_CODES:
        return EnvironmentProblem(
            f"{catalog} is damaged: SQLite cannot read it ({name})",
            hint="keep a copy of the case as it is; `sqlite3 catalog.sqlite 'PRAGMA "
            "integrity_check'` lists the damage; restore catalog.sqlite from a backup of the "
            "case and run `evidence verify` again",
        )
    return EnvironmentProblem(
        f"{catalog} cannot be used as the toolkit made it ({name})",
        hint="keep a copy of the case as it is and run `evidence verify` to see what is "
        "damaged; restore catalog.sqlite from a backup of the case",
    )


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
class StoredTables:
    """What :meth:`LogStore.check_tables` found: findings, and the tables that cannot be read."""

    findings: list[Finding]
    unreadable: frozenset[str]


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
        # The hash is read as a blob whatever type it was stored as (reported by verify).
        query = (
            f"SELECT n.level, n.idx, {_BLOB.format('n.hash')} FROM (VALUES {values}) AS k "  # noqa: S608 - placeholders
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
        empty temporary one (in memory, never in the catalog), so that it can be read and
        verified; its triggers are not needed where nothing can be written.

        A writable catalog that holds tables already (a case's) but lacks one of the log's was
        changed outside the toolkit: it is refused (:class:`EnvironmentProblem`), for an empty
        table in its place would start the log again from seq 0 beside the checkpoints that
        were signed for the old one. A missing trigger, which only guards against changes, is
        put back.
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
        lost = [name for kind, name in map(_made_by, missing) if kind == "table"]
        if lost and any(kind == "table" for kind, _ in present):
            raise EnvironmentProblem(
                f"the case catalog {self._catalog_path()} has no "
                + " and no ".join(f"{name} table ({_WHAT_TABLES_HOLD[name]})" for name in lost)
                + ": it was changed outside the toolkit, and nothing can be recorded in it",
                hint=CHANGED_CATALOG_HINT,
            )
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
        """Number of events in the log: one more than its largest seq.

        Only integer seqs count; SQLite stores no other in the table the toolkit makes, and
        :meth:`check_tables` reports any other.
        """
        top = self.conn.execute("SELECT max(seq) FROM log").fetchone()[0]
        if top is not None and type(top) is not int:
            # Text and blobs sort after every number: the largest integer seq is asked for.
            top = self.conn.execute(
                "SELECT max(seq) FROM log WHERE typeof(seq) = 'integer'"
            ).fetchone()[0]
        return 0 if top is None else int(top) + 1

    def leaf(self, seq: int) -> bytes:
        """The leaf bytes of event ``seq``."""
        row = self.conn.execute(
            f"SELECT {_BLOB.format('leaf')} FROM log WHERE seq = ?",  # noqa: S608 - fixed text
            (seq,),
        ).fetchone()
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

        The leaf and its hash are read as bytes whatever type they were stored as (NULL as no
        bytes), and rows whose seq is not an integer are passed over: a table changed behind
        the toolkit's back is read without failing, and :meth:`check_tables` names what is
        wrong in it.
        """
        end = self.size() if stop is None else stop
        position = max(start, 0)
        while position < end:
            # The last seq rather than the size: a seq of 2^63 - 1 leaves no integer above it.
            rows = self.conn.execute(_LEAVES, (position, end - 1, batch)).fetchall()
            if not rows:
                return
            yield from rows
            position = rows[-1][0] + 1

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
            f"SELECT idx, {_BLOB.format('hash')} FROM log_nodes "  # noqa: S608 - fixed text
            "WHERE level = ? AND idx BETWEEN ? AND ? AND typeof(idx) = 'integer'",
            (level, first, last),
        ).fetchall()
        return dict(rows)

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
            f"SELECT {_BLOB.format('note')} FROM checkpoints "  # noqa: S608 - fixed text
            "WHERE typeof(size) = 'integer' ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else bytes(row[0])

    def iter_checkpoints(self) -> Iterator[tuple[int, bytes, bytes]]:
        """``(size, root, note)`` of every stored checkpoint, smallest size first.

        Read as :meth:`iter_leaves` reads the log: the root and note as bytes, rows whose size
        is not an integer passed over.
        """
        rows = self.conn.execute(
            f"SELECT size, {_BLOB.format('root')}, {_BLOB.format('note')} "  # noqa: S608
            "FROM checkpoints WHERE typeof(size) = 'integer' ORDER BY size"
        ).fetchall()
        yield from rows

    # Checks of the stored tables themselves, for verify: each value that the toolkit never
    # writes is named by its table, column and row.

    def check_tables(self) -> StoredTables:
        """Check the log's tables as stored in the catalog: that each is there with its
        columns, and that each value is one the toolkit writes (:meth:`_value_findings`).

        A table that is not there, or that lacks a column it is read by, is given in
        ``unreadable``: it is not to be read (one that is not there would read as empty, as the
        empty temporary table a read-only catalog stands in for it, or as the empty table a
        writable opening creates).
        """
        findings: list[Finding] = []
        unreadable: set[str] = set()
        readable: list[str] = []
        for table, (columns, _) in _LOG_TABLES.items():
            present = self._columns(table)
            if not present:
                findings.append(
                    Finding(
                        "log-table-missing",
                        f"the catalog has no {table} table, which holds "
                        f"{_WHAT_TABLES_HOLD[table]}: keep a copy of the case as it is and "
                        "restore catalog.sqlite from a backup of the case",
                        subject=table,
                    )
                )
                unreadable.add(table)
                continue
            lacking = [column for column in columns if column not in present]
            needed = set(lacking) & set(_NEEDED[table])
            for column in lacking:
                effect = (
                    "the table cannot be read without it" if needed else "the column is not checked"
                )
                findings.append(
                    Finding(
                        "log-column-missing",
                        f"the catalog's {table} table has no {column} column ({effect}); keep a "
                        "copy of the case as it is and restore catalog.sqlite from a backup of "
                        "the case",
                        subject=f"{table}.{column}",
                    )
                )
            if needed:
                unreadable.add(table)
            else:
                readable.append(table)
        findings.extend(self._value_findings(readable))
        findings.extend(self._guard_findings(unreadable))
        return StoredTables(findings, frozenset(unreadable))

    def _guard_findings(self, unreadable: set[str]) -> list[Finding]:
        """A finding for each trigger of the log's tables that the catalog lacks.

        The triggers refuse any change to a stored event, node or checkpoint; one is missing
        only if it was dropped behind the toolkit (a writable opening puts it back). The tables
        are then checked as they are, so the finding says what is lost, not that data changed.
        A table that is not there is reported as such, without its triggers.
        """
        present = {
            str(row[0])
            for row in self.conn.execute(
                "SELECT name FROM main.sqlite_master WHERE type = 'trigger'"
            )
        }
        findings = []
        for statement in _SCHEMA:
            kind, name = _made_by(statement)
            table = _guarded_table(statement)
            if kind != "trigger" or name in present or table in unreadable:
                continue
            findings.append(
                Finding(
                    "log-guard-missing",
                    f"the catalog lacks the trigger {name}, which guards the {table} table "
                    "against changes: it was dropped behind the toolkit; the table's values "
                    "are checked as they stand, so compare the case with a backup to see "
                    "whether anything else was done",
                    subject=name,
                )
            )
        return findings

    def _columns(self, table: str) -> set[str]:
        """The columns of ``table`` in the catalog itself (not a temporary stand-in)."""
        return {str(row[1]) for row in self.conn.execute(f'PRAGMA main.table_info("{table}")')}

    def _value_findings(self, tables: Iterable[str]) -> list[Finding]:
        """A finding for each value of the log's ``tables`` that the toolkit never writes: a
        type other than the column's (text for a blob, NULL, a real for an integer), a hash
        that is not 32 bytes, a seq, level, index or size out of range, a key stored twice.

        One SQL scan per table selects only the rows at fault, so a sound log costs a pass over
        the table's pages inside SQLite and no Python object per row. Give only tables that
        have their key columns (see :meth:`check_tables`); a column a table lacks is not
        checked.
        """
        findings: list[Finding] = []
        for table in tables:
            present = self._columns(table)
            checked = [column for column in _SOUND[table] if column in present]
            key = _LOG_TABLES[table][1]
            tests = [
                f"ifnull({_SOUND[table][column][0].format(c=column)}, 0)" for column in checked
            ]
            described = [
                f"{test}, typeof({column}), length(CAST({column} AS BLOB))"
                for column, test in zip(checked, tests, strict=True)
            ]
            query = (
                f"SELECT {', '.join(key)}, {', '.join(described)} "  # noqa: S608 - fixed names
                f"FROM main.{table} WHERE NOT ({' AND '.join(tests)})"
            )
            for row in fetch_all(self.conn, query, {"max_seq": _MAX_SEQ, "top": _MAX_LEVEL}):
                keys, rest = row[: len(key)], row[len(key) :]
                for number, column in enumerate(checked):
                    sound, kind, length = rest[3 * number : 3 * number + 3]
                    if not sound:
                        findings.append(_value_finding(table, column, keys, kind, length))
            if not self._keyed(table):
                findings.extend(self._duplicates(table))
        return findings

    def _keyed(self, table: str) -> bool:
        """Whether the table's key is its primary key, as the toolkit makes it: no key can then
        be stored twice."""
        info = self.conn.execute(f'PRAGMA main.table_info("{table}")').fetchall()
        key = tuple(row[1] for row in sorted(info, key=lambda row: row[5]) if row[5])
        return key == _LOG_TABLES[table][1]

    def _duplicates(self, table: str) -> list[Finding]:
        names = ", ".join(_LOG_TABLES[table][1])
        rows = fetch_all(
            self.conn,
            f"SELECT {names}, count(*) FROM main.{table} "  # noqa: S608 - fixed names
            f"GROUP BY {names} HAVING count(*) > 1",
        )
        return [
            Finding(
                "log-row-duplicated",
                f"the {table} table holds {row[-1]} rows for {_row_name(table, row[:-1])}, "
                "where the toolkit writes one: keep a copy of the case as it is and report it",
                seq=_row_seq(table, row[:-1]),
                subject=table,
            )
            for row in rows
        ]


# For each column of the log's tables that verify reads: the SQL test of a value the toolkit
# writes (``{c}`` stands for the column) and what it writes, in words.
_SOUND: dict[str, dict[str, tuple[str, str]]] = {
    "log": {
        "seq": (
            "typeof({c}) = 'integer' AND {c} BETWEEN 0 AND :max_seq",
            "an integer from 0 to 2^53 - 1",
        ),
        "leaf": ("typeof({c}) = 'blob'", "the signed leaf as a blob"),
        "leaf_hash": (
            "typeof({c}) = 'blob' AND length({c}) = 32",
            "the 32-byte leaf hash as a blob",
        ),
    },
    "log_nodes": {
        "level": ("typeof({c}) = 'integer' AND {c} BETWEEN 0 AND :top", "an integer from 0 to 53"),
        "idx": (
            "typeof({c}) = 'integer' AND {c} BETWEEN 0 AND :max_seq",
            "an integer from 0 to 2^53 - 1",
        ),
        "hash": ("typeof({c}) = 'blob' AND length({c}) = 32", "the 32-byte node hash as a blob"),
    },
    "checkpoints": {
        "size": ("typeof({c}) = 'integer' AND {c} >= 0", "a whole number of events"),
        "root": ("typeof({c}) = 'blob' AND length({c}) = 32", "the 32-byte root hash as a blob"),
        "note": ("typeof({c}) = 'blob'", "the signed checkpoint as a blob"),
        "made_at": ("typeof({c}) = 'text'", "the time it was made as text"),
    },
}
_TYPE_WORDS = {
    "null": "NULL",
    "integer": "an integer",
    "real": "a real number",
    "text": "text",
    "blob": "a blob",
}
_WHAT_ROWS_ARE = {"log": "an event", "log_nodes": "a Merkle node", "checkpoints": "a checkpoint"}
#: What to do about a catalog that lacks a table the toolkit made.
CHANGED_CATALOG_HINT = (
    "keep a copy of the case as it is; `evidence verify` reads it and lists what differs "
    "from the custody log; restore catalog.sqlite from a backup of the case"
)

_WHAT_TABLES_HOLD = {
    "log": "the events of the custody log",
    "log_nodes": "the Merkle nodes that proofs are made of",
    "checkpoints": "the signed checkpoints",
}


def _value_finding(
    table: str, column: str, keys: Sequence[Any], kind: str, length: int | None
) -> Finding:
    key = _LOG_TABLES[table][1]
    if column in key:
        # A key out of range or of another type: the row is not read as what it stands for.
        value = keys[key.index(column)]
        if type(value) is int:
            shown = str(value)
            # The log is read from seq 0 and nodes by their place in the tree; checkpoints
            # are read whatever their integer size, and compared with their signed note.
            unread = table == "log_nodes" or (table == "log" and value < 0)
        else:
            shown, unread = describe_value(value), True
        effect = f"the row is not read as {_WHAT_ROWS_ARE[table]}; " if unread else ""
        message = (
            f"a row of the {table} table has {column} {shown}, where the toolkit writes "
            f"{_SOUND[table][column][1]}: {effect}keep a copy of the case as it is and report it"
        )
    else:
        found = _TYPE_WORDS.get(kind, kind)
        if kind in ("text", "blob"):
            found += f" of {length} bytes"
        # A log row is named by the finding's seq; a node or checkpoint in the message.
        named_by_seq = table == "log" and _row_seq(table, keys) is not None
        row = "" if named_by_seq else f" for {_row_name(table, keys)}"
        message = (
            f"the {table} table's {column} column holds {found}{row}, where the toolkit "
            f"writes {_SOUND[table][column][1]}: keep a copy of the case as it is and report it"
        )
    return Finding(
        "log-value-invalid", message, seq=_row_seq(table, keys), subject=f"{table}.{column}"
    )


def _row_name(table: str, keys: Sequence[Any]) -> str:
    """How a report names a row of a log table by its key: ``event seq 3``, ``the Merkle node
    of level 1, index 4``."""
    shown = [str(value) if type(value) is int else describe_value(value) for value in keys]
    if table == "log":
        return f"event seq {shown[0]}"
    if table == "log_nodes":
        return f"the Merkle node of level {shown[0]}, index {shown[1]}"
    return f"the checkpoint of size {shown[0]}"


def _row_seq(table: str, keys: Sequence[Any]) -> int | None:
    """The seq a finding about a row names: the event's, or the last one a checkpoint covers."""
    if not keys or type(keys[0]) is not int:
        return None
    if table == "log":
        return int(keys[0])
    if table == "checkpoints" and keys[0] > 0:
        return int(keys[0]) - 1
    return None


def _error_name(exc: sqlite3.Error) -> str:
    return getattr(exc, "sqlite_errorname", None) or "SQLite error"


def _check_last_event(seq: Any, leaf: Any, hashed: Any, time: Any) -> None:
    """Refuse to append after a last event that is not as the toolkit wrote it.

    The next event names the last one's leaf hash as ``prev``; chained to a damaged row it
    would carry the damage forward under a new signature. One leaf is hashed per transaction.
    """
    intact = (
        type(seq) is int
        and isinstance(leaf, bytes)
        and isinstance(hashed, bytes)
        and isinstance(time, str)
        and hmac.compare_digest(leaf_hash(leaf), hashed)
    )
    if not intact:
        shown = seq if type(seq) is int else describe_value(seq)
        raise EnvironmentProblem(
            f"the last event of the custody log (seq {shown}) is damaged in the catalog, so "
            "nothing can be appended after it",
            hint="keep a copy of the case as it is and run `evidence verify` to see the damage; "
            "restore catalog.sqlite from a backup of the case",
        )


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
            seq, leaf, hashed, time = row
            _check_last_event(seq, leaf, hashed, time)
            self._size = seq + 1
            self._last_hash, self._last_time = hashed, time
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
