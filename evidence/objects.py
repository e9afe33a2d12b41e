"""The content-addressed store of originals (SPEC section 3).

An original is stored once, under its SHA-256, at ``<root>/sha256/<2 hex>/<62 hex>``. It is
written to a temporary file in ``<root>/tmp`` (same file system), fsynced, made read-only, linked
to its final name and the directory fsynced: an object name never shows a half-written file, and
an existing object is never replaced or modified. An interrupted run leaves at most temporary
files and the lock file of its process, which :meth:`ObjectStore.remove_stale_temp` clears.

Several processes may write to one store at once, from other PID namespaces (containers) or
other machines too: a process holds an exclusive lock (``flock``) on a lock file in ``tmp``
while it has temporary files there, and names them after that lock; only files whose lock is
free are a crashed run's (see :class:`_TempLock`).

Each file is read once, in 1 MiB chunks into reused buffers; SHA-256, SHA-512 and the copy are
fed from the same buffer (a file of at most 1 MiB staged for a batch is read with one call).
Files of 16 MiB and more are read past the page cache, a few chunks ahead of the hashing, and
their copies written past it, all but the two ends that libmagic reads back to classify them.
Hashing runs in a pipeline: SHA-512 (the slowest step) in a worker thread while the main thread
reads the next chunk, hashes SHA-256 and writes; ``hashlib`` releases the GIL for large updates,
so the two cores work at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import hashlib
import itertools
import mmap
import os
import re
import secrets
import stat
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain_of_custody.errors import (
    EnvironmentProblem,
    Finding,
    InputError,
    VerificationError,
    kind_of_mode,
)
from chain_of_custody.secretfile import fsync_directory
from evidence.acquire import (
    Reason,
    SourceError,
    classified_span,
    display_name,
    source_error,
    unsupported_kind,
)
from evidence.claims import process_alive

__all__ = ["ObjectStore", "StoredObject", "read_ahead", "rename_noreplace"]

CHUNK_SIZE = 1 << 20
# Reads that bypass the page cache run this many chunks ahead of the hashing (_direct_chunks).
_READS_AHEAD = 3
# The chunk being hashed and written, the one before it (its SHA-512 may still run), and the
# chunks read ahead.
_BUFFERS = _READS_AHEAD + 2
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_SOURCE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
_TEMP_SUFFIX = ".part"
_LOCK_SUFFIX = ".lock"
# <pid>-<16 hex>: the owner of a lock file, and of the temporary files named after it.
_LOCK_OWNER = re.compile(r"\d+-[0-9a-f]{16}")
# <owner>-<hex>.part, as opposed to <pid>-<hex>.part (no lock: the system keeps none there, or
# a version that took none).
_LOCKED_TEMP = re.compile(r"(\d+-[0-9a-f]{16})-[0-9a-f]+")
_LOCK_ATTEMPTS = 5
_LOCK_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# What flock gives on a file system that keeps no such locks.
_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS})
_READ_ONLY = 0o444
_FLUSH_EVERY = 16 * CHUNK_SIZE
# Files up to this size are read whole with one read, hashed and staged in a few calls.
SMALL_FILE = CHUNK_SIZE


@dataclass(frozen=True)
class StoredObject:
    """The result of storing one original: its digests (lowercase hex), size and novelty.

    ``staged`` is set for a deferred write (``put_file(..., defer=True)``): the bytes are in
    that temporary file, read-only, until :meth:`ObjectStore.flush` gives them their name.
    """

    sha256: str
    sha512: str
    size: int
    created: bool
    staged: Path | None = None


class _StoreWriteError(Exception):
    """Internal: an OSError on the store side (not the source), turned into EnvironmentProblem."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(str(exc))
        self.exc = exc


@functools.cache
def _sha512_worker() -> ThreadPoolExecutor:
    # One worker for each of the two files an ingest stores at a time (evidence/ingest.py);
    # _pump keeps the updates of one digest in order.
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="sha512")


@functools.cache
def _flush_worker() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="flush")


class _FlushBehind:
    """Writes to ``fd`` and starts writeback every few MiB in the background.

    The final fsync then has little left to do, and the kernel never holds a large backlog of
    dirty pages that would stall the writes (measured: about a quarter off a 256 MiB ingest).

    Bytes in the ``uncached`` range (start, end) are written past the page cache when the
    system allows (``O_DIRECT``, aligned chunks only): nothing reads them back soon, while
    filling the cache with them costs a copy and fresh memory for every page.
    """

    def __init__(self, fd: int, uncached: tuple[int, int] = (0, 0)) -> None:
        self.fd = fd
        self.unflushed = 0
        self.flushing: Future[None] | None = None
        self.offset = 0
        self.uncached = uncached
        self.direct = False

    def write(self, chunk: memoryview) -> None:
        self._choose_path(len(chunk))
        try:
            _write_all(self.fd, chunk)
        except _StoreWriteError as exc:
            if not (self.direct and exc.exc.errno == errno.EINVAL):
                raise
            # An alignment this file system does not take: through the cache from here on,
            # from wherever the refused write stopped.
            self.uncached = (0, 0)
            self._choose_path(len(chunk))
            if self.direct:
                raise
            _write_all(self.fd, chunk[os.lseek(self.fd, 0, os.SEEK_CUR) - self.offset :])
        self.offset += len(chunk)
        self.unflushed += len(chunk)
        if self.unflushed >= _FLUSH_EVERY and (self.flushing is None or self.flushing.done()):
            self._wait()
            self.unflushed = 0
            self.flushing = _flush_worker().submit(_datasync, self.fd)

    def _choose_path(self, size: int) -> None:
        """Turn ``O_DIRECT`` on for a write of ``size`` bytes inside the uncached range, off
        for any other; where the system cannot turn it on, write through the cache."""
        start, end = self.uncached
        offset = self.offset
        direct = start <= offset and offset + size <= end and (offset | size) % _DIRECT_ALIGN == 0
        if direct == self.direct:
            return
        if _bypass_cache(self.fd, direct):
            self.direct = direct
        elif direct:
            self.uncached = (0, 0)

    def settle(self) -> None:
        """Wait for the background writeback, then start writing the rest without waiting.

        Durability comes from a later flush, which then finds the bytes on their way already
        (measured: the last flush of a 1 GiB ingest went from about 0.14 s to under 0.01 s).
        """
        self._wait()
        if self.unflushed:
            _start_writeback(self.fd)

    def finish(self) -> None:
        """Wait for the background writeback, then fsync: the bytes are on disk on return."""
        self._wait()
        os.fsync(self.fd)

    def abandon(self) -> None:
        """Wait for the background writeback of a copy that failed; its errors no longer matter."""
        with contextlib.suppress(OSError):
            self._wait()

    def _wait(self) -> None:
        if self.flushing is not None:
            flushing, self.flushing = self.flushing, None
            flushing.result()


class _Digests:
    """SHA-256 in the calling thread and SHA-512 in the worker, fed the same buffers."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.sha512 = hashlib.sha512()
        self.size = 0

    def hex(self) -> tuple[str, str]:
        return self.sha256.hexdigest(), self.sha512.hexdigest()


_LOCAL = threading.local()


def _thread_buffers() -> list[memoryview]:
    """This thread's reusable read buffers: allocating 2 MiB per file costs more than a small
    file's whole copy. A thread runs one ``_pump`` at a time, so reuse is safe. Anonymous maps
    start on a page boundary, as reads that bypass the page cache require."""
    buffers: list[memoryview] | None = getattr(_LOCAL, "buffers", None)
    if buffers is None:
        buffers = [memoryview(mmap.mmap(-1, CHUNK_SIZE)) for _ in range(_BUFFERS)]
        _LOCAL.buffers = buffers
    return buffers


def _read_chunks(read_into: Callable[[memoryview], int]) -> Generator[memoryview, None, None]:
    """The chunks ``read_into`` fills, in turn in this thread's buffers, until it gives 0."""
    for buffer in itertools.cycle(_thread_buffers()):
        count = read_into(buffer)
        if not count:
            return
        yield buffer[:count]


@functools.cache
def _read_worker() -> ThreadPoolExecutor:
    # Every read ahead of the two files an ingest stores at a time can be under way at once
    # (measured: half the time spent waiting for reads, against a reader per file).
    return ThreadPoolExecutor(max_workers=2 * _READS_AHEAD, thread_name_prefix="read")


def _direct_chunks(source: int, raw: bytes, expected: int) -> Generator[memoryview, None, None]:
    """The chunks of a big source file, read with ``O_DIRECT`` (:func:`_bypass_cache`) a few
    chunks ahead by reader threads, so that the device works while this thread hashes and writes.

    A read into a buffer starts only once :func:`_pump` is done with that buffer's last chunk
    (``held``). Reads stop at the ``expected`` size, as :meth:`ObjectStore._store_stream`
    does. Where the kernel refuses a direct read (``EINVAL``: an alignment this file system
    does not take), the file is read through the cache from that point on.
    """
    reader = _read_worker()

    def read(buffer: memoryview, offset: int) -> int:
        try:
            return os.preadv(source, [buffer], offset)
        except OSError as exc:
            if exc.errno != errno.EINVAL or not _bypass_cache(source, False):
                raise
            return os.preadv(source, [buffer], offset)

    free = deque(_thread_buffers())
    # The last two chunks handed out: _pump may still hash the one before the last.
    held: deque[memoryview] = deque()
    reads: deque[tuple[memoryview, Future[int]]] = deque()
    offset = 0  # of the next byte to hand out
    ahead = 0  # of the next read to start

    def start_reads() -> None:
        nonlocal ahead
        while free and len(reads) < _READS_AHEAD and ahead < expected:
            buffer = free.popleft()
            reads.append((buffer, reader.submit(read, buffer, ahead)))
            ahead += len(buffer)

    def cancel_reads() -> None:
        while reads:
            buffer, future = reads.popleft()
            with contextlib.suppress(OSError):
                future.result()
            free.append(buffer)

    try:
        start_reads()
        while reads:
            buffer, future = reads.popleft()
            try:
                count = future.result()
            except OSError as exc:
                raise source_error(raw, exc) from exc
            if not count:
                return
            offset += count
            if count < len(buffer) and reads:
                # A short read (a file that shrank, a network file system): the reads after
                # it started at the wrong places.
                cancel_reads()
                ahead = offset
            held.append(buffer)
            if len(held) > 2:
                free.append(held.popleft())
            start_reads()
            yield buffer[:count]
    finally:
        # Never leave a read writing into a buffer the next file will use.
        cancel_reads()


# Files at least this big are read past the page cache (see _bypass_cache).
_DIRECT_FROM = 16 * CHUNK_SIZE
# Offsets and sizes of writes past the page cache are multiples of this (a page, and at least
# the logical block size of common devices).
_DIRECT_ALIGN = 4096


def _bypass_cache(fd: int, on: bool = True) -> bool:
    """Turn ``O_DIRECT`` on (or off) for an open file; False where the system cannot.

    Reading a big original through the page cache costs a copy out of the cache on top of
    the copy into the store, and filling the cache with both costs more again: in alternating
    cold ingests of 1 GiB, the ingest's system time fell from 1.7-2.2 s to 0.5-0.8 s, and its
    wall time by about a sixth. It also leaves the machine's cache to what it held, rather
    than to hours of video read once.
    """
    if not hasattr(os, "O_DIRECT"):
        return False
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, (flags | os.O_DIRECT) if on else (flags & ~os.O_DIRECT))
    except OSError:
        return False
    return True


def _pump(
    chunks: Generator[memoryview, None, None],
    digests: _Digests,
    sink: Callable[[memoryview], None] | None,
) -> None:
    """Hash each chunk and pass it to ``sink``; ``chunks`` is closed on the way out.

    SHA-512 of a chunk runs in a worker while the next chunk is read, hashed with SHA-256 and
    written; it is done before the chunk after that is read, so a chunk source may refill a
    buffer two chunks on.
    """
    previous: Future[None] | None = None
    worker = _sha512_worker()
    try:
        for chunk in chunks:
            if digests.size == 0 and len(chunk) < CHUNK_SIZE:
                # A small file in one chunk: a thread hand-off would cost more than it saves.
                digests.sha512.update(chunk)
            else:
                # Updates of one digest must run in order; the pool has a worker per ingest
                # thread, so the previous chunk's update must end before this one starts.
                if previous is not None:
                    previous.result()
                previous = worker.submit(digests.sha512.update, chunk)
            digests.sha256.update(chunk)
            digests.size += len(chunk)
            if sink is not None:
                sink(chunk)
    finally:
        if previous is not None:
            previous.result()
        # A source with a read in flight waits for it before anything reuses the buffer.
        chunks.close()


def _read_whole(source: int, raw: bytes, expected: int) -> bytes:
    """Read the ``expected`` bytes of an open source file (fewer if it shrank meanwhile)."""
    try:
        data = os.read(source, expected)
        if len(data) < expected:
            parts = [data]
            got = len(data)
            while got < expected:
                more = os.read(source, expected - got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
    except OSError as exc:
        raise source_error(raw, exc) from exc
    return data


# fdatasync skips the metadata flush; platforms without it (macOS) fall back to fsync.
_datasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


def _unlink_if_present(path: str | Path) -> None:
    Path(path).unlink(missing_ok=True)


def _write_all(fd: int, chunk: memoryview) -> None:
    try:
        while chunk:
            written = os.write(fd, chunk)
            chunk = chunk[written:]
    except OSError as exc:
        raise _StoreWriteError(exc) from exc


def _syncfs(path: Path) -> None:
    """Flush the whole file system holding ``path`` (Linux ``syncfs``; ``sync`` elsewhere)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _SYNCFS is not None and _SYNCFS(fd) == 0:
            return
        os.sync()
    finally:
        os.close(fd)


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def rename_noreplace(temp: str | Path, final: Path) -> bool | str | None:
    """Rename ``temp`` to ``final`` unless ``final`` exists (Linux ``renameat2``).

    True when renamed, False when ``final`` exists (``temp`` is left), None when a directory
    is missing, and ``"unsupported"`` where the system or file system cannot do it. One call
    does what a link and an unlink do, and like the link it never replaces an existing name:
    two processes storing the same content at once cannot overwrite each other's object.
    """
    if _RENAMEAT2 is None:
        return "unsupported"
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(temp), _AT_FDCWD, os.fsencode(final), _RENAME_NOREPLACE):
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            return False
        if code == errno.ENOENT:
            return None
        if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            return "unsupported"
        raise OSError(code, os.strerror(code), os.fspath(final))
    return True


def _libc_function(name: str, argtypes: list[Any]) -> Callable[..., int] | None:
    """The C library's function ``name`` (returning an int), or None where there is none."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    function = getattr(libc, name, None)
    if function is None:
        return None
    function.argtypes = argtypes
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_SYNCFS = _libc_function("syncfs", [ctypes.c_int])
_RENAMEAT2 = _libc_function(
    "renameat2", [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
)
_SYNC_FILE_RANGE = _libc_function(
    "sync_file_range", [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
)
_SYNC_FILE_RANGE_WRITE = 2


def _start_writeback(fd: int) -> None:
    """Ask the kernel to start writing the file's dirty pages now, without waiting for them
    (Linux ``sync_file_range``). A hint only: it makes nothing durable and its errors are moot.
    """
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


class ObjectStore:
    """Content-addressed, write-once storage of originals under ``root``."""

    def __init__(self, root: Path, *, owner_pid: int | None = None) -> None:
        """The store under ``root``.

        ``owner_pid`` is the process whose lock (or, failing one, pid) names the temporary
        files: a worker process that stages copies for its parent passes the parent's, so
        that the copies count as the parent's until it has flushed them (see
        :meth:`hold_temp_lock` and :meth:`remove_stale_temp`).
        """
        self.root = Path(root)
        self.owner_pid = owner_pid
        self.objects_dir = self.root / "sha256"
        self.tmp_dir = self.root / "tmp"
        self._lock = threading.Lock()
        # Staged copies as (temporary file, sha256): plain strings, made by the thousand.
        self._staged: list[tuple[str, str]] = []
        self._tmp_ready = False
        self._dirs: set[Path] = set()

    def check_writable(self) -> None:
        """Raise :class:`~chain_of_custody.errors.EnvironmentProblem` unless the store can be
        written: its folder exists, and it and the ``sha256`` and ``tmp`` folders in it (where
        present) are real folders, not symbolic links, that this user can write.

        A command that stores originals calls this before it reads an input or records an
        event, so that a damaged case (the folder replaced by a file, removed, linked elsewhere
        or made read-only) stops it with a message that names the folder and says what to do,
        rather than with a failure halfway through.
        """
        problem = self._layout_problem(must_exist=True)
        if problem is not None:
            raise problem

    def _layout_problem(self, *, must_exist: bool) -> EnvironmentProblem | None:
        """What is wrong with the store's folders, if anything (see :meth:`check_writable`).

        Without ``must_exist`` a missing store folder is no problem: it is made on first use.
        """
        problem = _folder_problem(self.root, "the object store", must_exist=must_exist)
        if problem is not None or not os.path.lexists(self.root):
            return problem
        problem = _folder_problem(self.objects_dir, "the object store folder", must_exist=False)
        if problem is not None:
            return problem
        return _folder_problem(
            self.tmp_dir, "the object store folder", must_exist=False, replaced=_TMP_REPLACED_HINT
        )

    def path_for(self, sha256: str) -> Path:
        """Where the object with this SHA-256 (64 lowercase hex digits) lives."""
        if not _SHA256_HEX.fullmatch(sha256):
            raise InputError(
                f"object name {sha256!r} is not a SHA-256 digest",
                hint="give the 64 lowercase hexadecimal digits of the item's sha256",
            )
        return self._object_path(sha256)

    def _object_path(self, sha256: str) -> Path:
        # For digests this module computed itself: no check of the form.
        return self.objects_dir / sha256[:2] / sha256[2:]

    def has(self, sha256: str) -> bool:
        """Whether an object with this SHA-256 is stored."""
        return os.path.lexists(self.path_for(sha256))

    def put_file(self, path: Path | bytes, *, defer: bool = False) -> StoredObject:
        """Store the regular file at ``path`` (never following a final symbolic link).

        With ``defer``, the copy is left staged (not yet fsynced, not yet named) and
        :meth:`flush` makes every staged copy durable and names it, with two file-system syncs
        for the whole batch instead of two fsyncs per file; the caller must flush before it
        records anything that names the object.

        Raises :class:`~evidence.acquire.SourceError` when the source cannot be read as a
        regular file or changes while it is read (the caller refuses that input and goes on),
        and :class:`~chain_of_custody.errors.EnvironmentProblem` when the store cannot be
        written.
        """
        raw = os.fsencode(path)
        try:
            source = os.open(raw, _SOURCE_FLAGS)
        except OSError as exc:
            raise source_error(raw, exc) from exc
        try:
            before = os.fstat(source)
            if not stat.S_ISREG(before.st_mode):
                raise SourceError(raw, unsupported_kind(before.st_mode))
            if defer and 0 < before.st_size <= SMALL_FILE:
                stored = self._store_small(_read_whole(source, raw, before.st_size))
            else:
                stored = self._store_stream(source, raw, before.st_size, defer)
            after = os.fstat(source)
        finally:
            os.close(source)
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or (
            stored.size != before.st_size
        ):
            # The stored bytes match their name but may not be the file the user meant to give:
            # refuse the input rather than record a moving target. A staged copy goes at once;
            # a named object stays (another process may already rely on it); unreferenced, it
            # is harmless.
            self.discard(stored)
            raise SourceError(raw, Reason.CHANGED_WHILE_READING)
        return stored

    def _store_stream(self, source: int, raw: bytes, expected: int, defer: bool) -> StoredObject:
        """Copy an open source file in chunks (:meth:`_store`); ``expected`` is its size."""
        if expected >= _DIRECT_FROM and _bypass_cache(source):
            # The copy is classified from its two ends (detect_mime): only those go through
            # the page cache, where libmagic finds them.
            ends = classified_span()
            return self._store(
                _direct_chunks(source, raw, expected),
                defer=defer,
                uncached=(ends, expected - ends),
            )
        if expected > CHUNK_SIZE and hasattr(os, "posix_fadvise"):
            # Reads ahead more aggressively on a cold cache; a hint only, failures are moot.
            with contextlib.suppress(OSError):
                os.posix_fadvise(source, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        consumed = 0

        def read_into(buffer: memoryview) -> int:
            nonlocal consumed
            if 0 < expected <= consumed:
                # All the bytes fstat announced are read: no read for the end of the file.
                # A file that grew meanwhile is refused by the caller's second fstat.
                return 0
            try:
                count = os.readv(source, [buffer])
            except OSError as exc:
                raise source_error(raw, exc) from exc
            consumed += count
            return count

        return self._store(_read_chunks(read_into), defer=defer)

    def _store_small(self, data: bytes) -> StoredObject:
        """Stage a small file read whole: what :meth:`_store` does with ``defer``, minus the
        chunk pipeline, and with no copy at all when the object is already stored."""
        sha256 = hashlib.sha256(data).hexdigest()
        sha512 = hashlib.sha512(data).hexdigest()
        if os.path.lexists(self._object_path(sha256)):
            return StoredObject(sha256, sha512, len(data), created=False)
        temp, fd = self._open_temp()
        try:
            try:
                _write_all(fd, memoryview(data))
                os.fchmod(fd, _READ_ONLY)
            finally:
                os.close(fd)
        except BaseException as exc:
            temp.unlink(missing_ok=True)
            _TEMP_LOCKS.done([os.fspath(temp)])
            if isinstance(exc, _StoreWriteError):
                raise self._store_problem(exc.exc) from exc.exc
            if isinstance(exc, OSError):
                raise self._store_problem(exc) from exc
            raise
        self.adopt_staged(os.fspath(temp), sha256)
        return StoredObject(sha256, sha512, len(data), created=True, staged=temp)

    def put_bytes(self, data: bytes) -> StoredObject:
        """Store ``data`` (a canonical document made by the toolkit) as an object."""
        view = memoryview(data)
        return self._store(
            view[start : start + CHUNK_SIZE] for start in range(0, len(view), CHUNK_SIZE)
        )

    def iter_objects(self) -> Iterator[str]:
        """The SHA-256 of every stored object, in sorted order; temporary files are not objects."""
        try:
            prefixes = sorted(entry.name for entry in self.objects_dir.iterdir())
        except FileNotFoundError:
            return
        for prefix in prefixes:
            directory = self.objects_dir / prefix
            if len(prefix) != 2 or not directory.is_dir():
                continue
            for rest in sorted(entry.name for entry in directory.iterdir()):
                name = prefix + rest
                if _SHA256_HEX.fullmatch(name):
                    yield name

    def rehash(self, sha256: str) -> tuple[str, str]:
        """Hash a stored object again (streaming): its actual SHA-256 and SHA-512, hex.

        Raises :class:`~chain_of_custody.errors.VerificationError` when the object is missing
        or cannot be read. Comparing the result with the name is the caller's check.
        """
        path = self.path_for(sha256)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise self._unreadable_object(sha256, path, exc) from exc
        digests = _Digests()
        try:
            _pump(_read_chunks(lambda buffer: os.readv(fd, [buffer])), digests, None)
        except OSError as exc:
            raise self._unreadable_object(sha256, path, exc) from exc
        finally:
            os.close(fd)
        return digests.hex()

    # The name DESIGN.md gives for the same operation.
    hash_object = rehash

    def remove_stale_temp(self) -> int:
        """Delete temporary files left by interrupted runs; returns how many were removed.

        A temporary file is named ``<owner>-<random>.part``, where ``<owner>.lock`` is the lock
        file its process holds while it has temporary files (:class:`_TempLock`): the files of
        an owner whose lock is free are removed, then its lock file; those of a live writer
        (another investigator writing to the same case, from a container or another machine
        too) are left alone. A file named ``<pid>-<random>.part`` (written without a lock, or
        whose lock file is gone) is kept while a process of that pid runs here. Nothing is
        removed from a ``tmp`` that is not a folder of the store (a link leads elsewhere).
        """
        problem = self._layout_problem(must_exist=False)
        if problem is not None:
            raise problem
        try:
            names = sorted(entry.name for entry in self.tmp_dir.iterdir())
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise self._layout_problem(must_exist=False) or self._store_problem(exc) from exc
        # The temporary files of each lock file (or lock named in a file's name), and the others.
        locked: dict[str, list[str]] = {}
        unlocked: list[str] = []
        for name in names:
            if name.endswith(_LOCK_SUFFIX) and _LOCK_OWNER.fullmatch(name[: -len(_LOCK_SUFFIX)]):
                locked.setdefault(name[: -len(_LOCK_SUFFIX)], [])
            elif name.endswith(_TEMP_SUFFIX):
                match = _LOCKED_TEMP.fullmatch(name[: -len(_TEMP_SUFFIX)])
                if match is None:
                    unlocked.append(name)
                else:
                    locked.setdefault(match[1], []).append(name)
        # This process's own locks are never tried: it holds them (a forked worker, through the
        # descriptor it inherited), and where flock is emulated with fcntl locks (NFS), its own
        # lock would not stop it and closing another descriptor of the file would let it go.
        # Asked after the listing: a lock file listed is registered by then (it is made and
        # registered under one guard).
        own = _TEMP_LOCKS.owners()
        removed = 0
        for owner, temps in locked.items():
            if owner in own:
                continue
            lock_path = self.tmp_dir / (owner + _LOCK_SUFFIX)
            fd = _take_stale_lock(lock_path)
            if fd == _NO_LOCK_FILE:
                # Its process ended normally with files left, or the lock file was removed by
                # hand: told apart by the pid, as files written without a lock are.
                unlocked.extend(temps)
                continue
            if fd is None:
                continue  # a live writer's
            try:
                # The files first: a clean-up interrupted here leaves the lock file to say
                # whose the rest are.
                removed += self._remove_temp(temps)
                try:
                    lock_path.unlink(missing_ok=True)
                except OSError as exc:
                    raise self._store_problem(exc) from exc
            finally:
                os.close(fd)
        dead = [name for name in unlocked if not _named_by_live_pid(name)]
        return removed + self._remove_temp(dead)

    def _remove_temp(self, names: Iterable[str]) -> int:
        """Delete these temporary files (names in ``tmp``); returns how many were there."""
        removed = 0
        for name in names:
            try:
                (self.tmp_dir / name).unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._store_problem(exc) from exc
            removed += 1
        return removed

    @contextlib.contextmanager
    def hold_temp_lock(self) -> Generator[None, None, None]:
        """Hold this process's lock on the store's temporary files for the ``with`` block.

        The lock is otherwise taken with the first temporary file and let go (its lock file
        removed) once this process has none left. A process that forks workers staging copies
        for it (``owner_pid``) holds it from before the fork until it has flushed what they
        staged: they inherit it with its descriptor and name their copies after it, so that
        :meth:`remove_stale_temp` of any other process, wherever it runs, leaves them alone.
        A worker forked outside such a block names its copies after its owner's pid only.
        """
        for attempt in range(2):
            self._prepare_tmp()
            try:
                lock = _TEMP_LOCKS.hold(os.fspath(self.tmp_dir))
                break
            except OSError as exc:
                if not isinstance(exc, FileNotFoundError) or attempt:
                    raise self._store_problem(exc) from exc
                self._tmp_ready = False  # the folder was removed meanwhile: made again
        try:
            yield
        finally:
            if lock is not None:
                _TEMP_LOCKS.unhold(lock)

    def hand_over(self, obj: StoredObject) -> None:
        """Stop tracking the staged copy of ``obj`` here: another store flushes it.

        A worker (thread or process) stages copies on its own store and hands each over; the
        store that records the events takes them with :meth:`adopt`.
        """
        if obj.staged is not None:
            with self._lock:
                self._staged.remove((os.fspath(obj.staged), obj.sha256))

    def adopt(self, obj: StoredObject) -> None:
        """Take the staged copy of ``obj``, made by another store on this root: :meth:`flush`
        will make it durable and name it."""
        if obj.staged is not None:
            self.adopt_staged(os.fspath(obj.staged), obj.sha256)

    def adopt_staged(self, temp: str, sha256: str) -> None:
        """:meth:`adopt` for a copy known by the path of its temporary file and its sha256."""
        with self._lock:
            self._staged.append((temp, sha256))

    def discard(self, obj: StoredObject) -> None:
        """Drop the staged copy of ``obj`` (an input refused after it was read); never touches
        a named object."""
        if obj.staged is None:
            return
        with self._lock, contextlib.suppress(ValueError):
            self._staged.remove((os.fspath(obj.staged), obj.sha256))
        with contextlib.suppress(OSError):
            obj.staged.unlink(missing_ok=True)
            _TEMP_LOCKS.done([os.fspath(obj.staged)])

    def flush(self) -> None:
        """Make every staged copy durable, then give each its object name, durably.

        Data first (one sync of the file system), then the names (links, and the two-hex
        directories they need), then a second sync for those directory entries: an object name
        never points at bytes that a crash could lose.
        """
        with self._lock:
            staged, self._staged = self._staged, []
        if not staged:
            return
        done: list[str] = []  # temporary files renamed or removed
        try:
            _syncfs(self.root)
            for temp, sha256 in staged:
                try:
                    published = self._publish(temp, sha256, sync_dir=False)
                except BaseException:
                    _unlink_if_present(temp)
                    done.append(temp)
                    raise
                if not published:
                    # The object existed already; a successful publish used the file up.
                    _unlink_if_present(temp)
                done.append(temp)
            _syncfs(self.root)
        except OSError as exc:
            raise self._store_problem(exc) from exc
        finally:
            _TEMP_LOCKS.done(done)

    def _store(
        self,
        chunks: Generator[memoryview, None, None],
        *,
        defer: bool = False,
        uncached: tuple[int, int] = (0, 0),
    ) -> StoredObject:
        """Copy the input to a temporary file while hashing it, then publish it by name.

        The bytes in the ``uncached`` range of offsets are written past the page cache where
        the system allows (:class:`_FlushBehind`).
        """
        temp, fd = self._open_temp()
        keep_temp = False
        try:
            digests = _Digests()
            writer = _FlushBehind(fd, uncached)
            try:
                try:
                    _pump(chunks, digests, writer.write)
                except BaseException:
                    # Never close the descriptor under a background fdatasync.
                    writer.abandon()
                    raise
                if defer:
                    writer.settle()
                else:
                    writer.finish()
                # Created read-only, but the umask may have taken read bits away.
                os.fchmod(fd, _READ_ONLY)
            except OSError as exc:
                raise self._store_problem(exc) from exc
            except _StoreWriteError as exc:
                raise self._store_problem(exc.exc) from exc.exc
            finally:
                os.close(fd)
            sha256, sha512 = digests.hex()
            if defer:
                final = self._object_path(sha256)
                if os.path.lexists(final):
                    return StoredObject(sha256, sha512, digests.size, created=False)
                self.adopt_staged(os.fspath(temp), sha256)
                keep_temp = True  # flush owns the staged file from now on
                return StoredObject(sha256, sha512, digests.size, created=True, staged=temp)
            try:
                created = self._publish(temp, sha256)
            except OSError as exc:
                raise self._store_problem(exc) from exc
            return StoredObject(sha256=sha256, sha512=sha512, size=digests.size, created=created)
        finally:
            # Gone already when published by link or rename; left when the object existed.
            if not keep_temp:
                temp.unlink(missing_ok=True)
                _TEMP_LOCKS.done([os.fspath(temp)])

    def _publish(self, temp: str | Path, sha256: str, *, sync_dir: bool = True) -> bool:
        """Give the temporary file its object name unless that name exists; True if it did."""
        final = self.path_for(sha256)
        self._make_dir(final.parent, sync=sync_dir)
        moved = rename_noreplace(temp, final)
        if moved is None:
            # The directory was removed since it was made (a restore, a cleanup): again.
            self._dirs.discard(final.parent)
            self._make_dir(final.parent, sync=sync_dir)
            moved = rename_noreplace(temp, final)
        if moved is False:
            return False
        if moved is True:
            if sync_dir:
                fsync_directory(final.parent)
            return True
        return self._publish_by_link(temp, final, sync_dir=sync_dir)

    def _publish_by_link(self, temp: str | Path, final: Path, *, sync_dir: bool) -> bool:
        """:meth:`_publish` where the system cannot rename without replacing."""
        if os.path.lexists(final):
            return False
        try:
            # A hard link never replaces an existing name, so two processes storing the same
            # content at once cannot overwrite each other's object (rename would).
            try:
                os.link(temp, final)
            except FileNotFoundError:
                # The directory was removed since it was made (a restore, a cleanup): again.
                self._dirs.discard(final.parent)
                self._make_dir(final.parent, sync=sync_dir)
                os.link(temp, final)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # File systems without hard links (FAT, exFAT): rename after the check above; the
            # only replacement possible is by identical bytes from a concurrent writer.
            Path(temp).rename(final)
        else:
            Path(temp).unlink()
        if sync_dir:
            fsync_directory(final.parent)
        return True

    def _make_dir(self, directory: Path, *, sync: bool = True) -> None:
        """Create the two-hex directory (and ``sha256/``) if they are missing.

        With ``sync`` they are made durable at once; without it the caller syncs the file
        system afterwards (:meth:`flush`), before anything names an object inside them.
        """
        if directory in self._dirs:
            return
        # Never through a link, nor into a folder this user cannot write: named as such.
        for folder in (self.objects_dir, directory):
            problem = _folder_problem(folder, "the object store folder", must_exist=False)
            if problem is not None:
                raise problem
        if directory.is_dir():
            self._dirs.add(directory)
            return
        for path in (self.objects_dir, directory):
            try:
                path.mkdir()
            except FileExistsError:
                continue
            if sync:
                # The new directory entry must reach the disk before the object inside it does.
                fsync_directory(path)
                fsync_directory(path.parent)
        self._dirs.add(directory)

    def _open_temp(self) -> tuple[Path, int]:
        """Create a new temporary file for writing; return its path and descriptor.

        It is created read-only (the mode applies to later opens, not to this descriptor), so
        that an object is never visible writable, not even for a moment.
        """
        for attempt in range(3):
            temp: Path | None = None
            try:
                temp = self._new_temp_path()
                fd = os.open(temp, _TEMP_FLAGS, _READ_ONLY)
            except OSError as exc:
                if temp is not None:
                    _TEMP_LOCKS.done([os.fspath(temp)])
                if not isinstance(exc, FileExistsError | FileNotFoundError):
                    raise self._store_problem(exc) from exc
                # A name taken by another process, or the folder removed meanwhile: again.
                self._tmp_ready = False
                if attempt == 2:
                    raise self._store_problem(exc) from exc
            else:
                return temp, fd
        raise AssertionError("unreachable")

    def _new_temp_path(self) -> Path:
        self._prepare_tmp()
        # Named after this process's lock (or its owner's, in a forked worker), so that
        # remove_stale_temp tells a live writer's file from a crashed run's; a random part per
        # process and a counter keep names apart without a system call each.
        return _TEMP_LOCKS.new_temp(self.tmp_dir, self.owner_pid)

    def _prepare_tmp(self) -> None:
        """Make the ``tmp`` folder unless this store made (or found) it already."""
        if self._tmp_ready:
            return
        # A store folder that is a file, a link or read-only is named as such, rather than
        # by the error of the first write that meets it.
        problem = self._layout_problem(must_exist=False)
        if problem is not None:
            raise problem
        try:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._layout_problem(must_exist=False) or self._store_problem(exc) from exc
        self._tmp_ready = True

    def _store_problem(self, exc: OSError) -> EnvironmentProblem:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        where = display_name(os.fsencode(self.root))
        if isinstance(exc.filename, str | bytes) and exc.filename:
            where += f" ({display_name(os.fsencode(exc.filename))})"
        if exc.errno in _REPLACED_ERRNOS:
            hint = _REPLACED_HINT
        elif exc.errno == errno.ENOENT:
            hint = _MISSING_HINT
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = _UNWRITABLE_HINT
        else:
            hint = "check free disk space and the permissions of the case directory, then re-run"
        return EnvironmentProblem(f"cannot write to the object store {where}: {reason}", hint=hint)

    def _unreadable_object(self, sha256: str, path: Path, exc: OSError) -> VerificationError:
        missing = exc.errno in (errno.ENOENT, errno.ENOTDIR)
        return VerificationError(
            Finding(
                code="object-missing" if missing else "object-unreadable",
                message=(
                    "object is missing from the store"
                    if missing
                    else f"object cannot be read: {os.strerror(exc.errno or 0)}"
                ),
                subject=sha256,
                path=str(path),
            ),
            hint="restore the case directory from a backup; originals are never re-created",
        )


# Errors of a write that meets a store folder replaced by something else, or removed.
_REPLACED_ERRNOS = frozenset({errno.ENOTDIR, errno.EEXIST, errno.ELOOP})
_REPLACED_HINT = (
    "the case's originals are kept in that folder: move what is there aside (delete nothing), "
    "run `evidence verify` to see what the case lacks, restore the objects folder from a backup "
    "of the case, then run the command again"
)
_TMP_REPLACED_HINT = (
    "that folder holds only copies not yet stored, never an original: move what is there aside "
    "(delete nothing) and run the command again; the folder is made again"
)
_MISSING_HINT = (
    "the case's originals are kept in that folder: run `evidence verify` to see what the case "
    "lacks, restore the objects folder from a backup of the case (a case without items needs "
    "only an empty folder there), then run the command again"
)
_UNWRITABLE_HINT = (
    "make the objects folder of the case, the sha256 and tmp folders in it and the folders "
    "in sha256 writable for your user (or run as the user who owns the case), then run the "
    "command again"
)


def _folder_problem(
    path: Path, what: str, *, must_exist: bool, replaced: str = _REPLACED_HINT
) -> EnvironmentProblem | None:
    """Why ``path`` cannot serve as a folder of the store (``what`` names it), if it cannot:
    missing (when it ``must_exist``), not a folder, a symbolic link, or not writable.
    ``replaced`` is the hint for something else standing there."""
    shown = display_name(os.fsencode(path))
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        if not must_exist:
            return None
        return EnvironmentProblem(f"{what} {shown} is missing", hint=_MISSING_HINT)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return EnvironmentProblem(f"{what} {shown} cannot be looked at: {reason}", _REPLACED_HINT)
    if stat.S_ISLNK(mode):
        return EnvironmentProblem(
            f"{what} {shown} is a symbolic link; the case's originals must be kept in a folder "
            "inside the case, never reached through a link",
            hint="replace the link by the folder it leads to (move that folder into the case), "
            "run `evidence verify`, then run the command again",
        )
    if not stat.S_ISDIR(mode):
        return EnvironmentProblem(
            f"{what} {shown} is not a folder but {kind_of_mode(mode)}", hint=replaced
        )
    if not os.access(path, os.W_OK | os.X_OK):
        return EnvironmentProblem(
            f"{what} {shown} cannot be written by this user (no write permission, or a "
            "read-only file system)",
            hint=_UNWRITABLE_HINT,
        )
    return None


_TEMP_NAMES = itertools.count()
_TEMP_PREFIX: list[str] = []


def _temp_token() -> str:
    """A part of a temporary file name unique within this process (and, by chance, beyond)."""
    if not _TEMP_PREFIX:
        _TEMP_PREFIX.append(secrets.token_hex(4))
    return f"{_TEMP_PREFIX[0]}{next(_TEMP_NAMES):08x}"


class _TempLock:
    """A process's exclusive ``flock`` on ``<tmp>/<owner>.lock``, where ``owner`` is
    ``<pid>-<random>``: while it is held, the temporary files named ``<owner>-<random>.part``
    are in use, and :meth:`ObjectStore.remove_stale_temp` leaves them alone.

    Unlike a pid, the lock is seen from every process that sees the folder: from another PID
    namespace (a container) and, on file systems that share locks, another machine; it is
    never reused by another process, and the kernel lets it go when its holders end, however
    they end. Forked workers inherit the descriptor, and so hold the lock with the process
    that took it (``pid``) until the last of them ends: they name the files they stage for it
    after it (``owner_pid``). One lock per process and folder, not per file: the small-file
    path makes thousands of temporary files a second.
    """

    __slots__ = ("fd", "folder", "holds", "live", "owner", "path", "pid")

    def __init__(self, fd: int, folder: str, owner: str, pid: int) -> None:
        self.fd = fd
        self.folder = folder
        self.owner = owner
        self.path = Path(folder, owner + _LOCK_SUFFIX).absolute()
        self.pid = pid
        self.holds = 0  # hold_temp_lock blocks under way
        self.live = 0  # temporary files made and not yet renamed or removed


class _TempLocks:
    """The temporary-file locks of this process: each is taken when first needed and let go,
    its lock file removed, once it has neither temporary files nor holds."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        # By (temporary folder, pid of the process that took it): a forked worker finds its
        # owner's here.
        self.locks: dict[tuple[str, int], _TempLock] = {}
        # The lock of each temporary file this process made and has not renamed or removed.
        self.live: dict[str, _TempLock] = {}
        # Folders where flock is refused: their files are named by pid alone.
        self.unlockable: set[str] = set()

    def new_temp(self, tmp_dir: Path, owner_pid: int | None) -> Path:
        """A new temporary file name in ``tmp_dir``, counted as in use until :meth:`done`."""
        folder = os.fspath(tmp_dir)
        pid = os.getpid()
        owner = owner_pid or pid
        with self.guard:
            lock = self.locks.get((folder, owner))
            if lock is None and owner == pid and folder not in self.unlockable:
                lock = _take_temp_lock(folder, pid)
                if lock is None:
                    self.unlockable.add(folder)
                else:
                    self.locks[(folder, pid)] = lock
            if lock is None:
                # A worker whose owner held no lock when it forked, or no locks on this system.
                return tmp_dir / f"{owner}-{_temp_token()}{_TEMP_SUFFIX}"
            temp = tmp_dir / f"{lock.owner}-{_temp_token()}{_TEMP_SUFFIX}"
            if lock.pid == pid:
                lock.live += 1
                self.live[os.fspath(temp)] = lock
            return temp

    def done(self, temps: Iterable[str]) -> None:
        """These temporary files are renamed or removed: their lock may go."""
        with self.guard:
            for temp in temps:
                lock = self.live.pop(temp, None)
                if lock is not None:
                    lock.live -= 1
                    self._release_if_unused(lock)

    def hold(self, folder: str) -> _TempLock | None:
        """This process's lock on ``folder``, taken if need be and held until :meth:`unhold`;
        None where the system keeps no locks."""
        pid = os.getpid()
        with self.guard:
            lock = self.locks.get((folder, pid))
            if lock is None:
                if folder in self.unlockable:
                    return None
                lock = _take_temp_lock(folder, pid)
                if lock is None:
                    self.unlockable.add(folder)
                    return None
                self.locks[(folder, pid)] = lock
            lock.holds += 1
            return lock

    def unhold(self, lock: _TempLock) -> None:
        with self.guard:
            lock.holds -= 1
            self._release_if_unused(lock)

    def owners(self) -> set[str]:
        """The owners of the locks this process holds (its own, and one it inherited)."""
        with self.guard:
            return {lock.owner for lock in self.locks.values()}

    def _release_if_unused(self, lock: _TempLock) -> None:
        # Only the process that took a lock lets it go: its forked workers merely share it.
        if lock.holds or lock.live or lock.pid != os.getpid():
            return
        if self.locks.get((lock.folder, lock.pid)) is lock:
            del self.locks[(lock.folder, lock.pid)]
        # The file first, while the lock still says that it is in use.
        with contextlib.suppress(OSError):
            lock.path.unlink()
        with contextlib.suppress(OSError):
            os.close(lock.fd)

    def after_fork_in_child(self) -> None:
        # The locks stay (a worker names its files after its owner's); the parent's temporary
        # files are not the child's to count, and the guard may have been held by a thread
        # that does not exist here.
        self.guard = threading.Lock()
        self.live = {}


_TEMP_LOCKS = _TempLocks()


def _take_temp_lock(folder: str, pid: int) -> _TempLock | None:
    """Create a lock file in ``folder`` and lock it; None where the file system refuses locks.

    A clean-up in another process may open the new file before it is locked, take the lock
    and remove the file as a crashed run's: then the lock is refused, or the name no longer
    leads to the locked file, and another name is drawn.
    """
    for _ in range(_LOCK_ATTEMPTS):
        owner = f"{pid}-{secrets.token_hex(8)}"
        path = Path(folder, owner + _LOCK_SUFFIX)
        try:
            fd = os.open(path, _LOCK_FLAGS | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return _TempLock(fd, folder, owner, pid)
        except (BlockingIOError, FileNotFoundError):
            pass  # taken by a clean-up, which removes the file
        except OSError as exc:
            os.close(fd)
            _unlink_if_present(path)
            if exc.errno in _NO_LOCKS:
                return None
            raise
        os.close(fd)
    raise OSError(errno.EAGAIN, "every new lock file was taken by a clean-up", folder)


def _named_by_live_pid(name: str) -> bool:
    """Whether a temporary file name starts with the pid of a process running here."""
    pid = name.split("-", 1)[0]
    return pid.isdigit() and process_alive(int(pid))


# _take_stale_lock: there is no such lock file.
_NO_LOCK_FILE = -1


def _take_stale_lock(path: Path) -> int | None:
    """A descriptor holding the lock of the lock file at ``path`` when its holders are gone
    (the caller removes their files, then the lock file, then closes it); ``None`` while it is
    held or when that cannot be told (nothing is removed); :data:`_NO_LOCK_FILE` when there
    is no lock file."""
    try:
        fd = os.open(path, _LOCK_FLAGS)
    except FileNotFoundError:
        return _NO_LOCK_FILE
    except PermissionError:
        # Another user's lock file: flock needs no write access (its NFS emulation does).
        try:
            fd = os.open(path, _LOCK_FLAGS & ~os.O_RDWR | os.O_RDONLY)
        except FileNotFoundError:
            return _NO_LOCK_FILE
        except OSError:
            return None
    except OSError:
        return None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
    except OSError:
        pass  # held (BlockingIOError), or no locks here
    os.close(fd)
    return None


def _after_fork_in_child() -> None:
    # A forked worker shares neither the parent's threads nor, to be safe, its name prefix:
    # the thread pools are made again when first used and a new random prefix is drawn.
    _sha512_worker.cache_clear()
    _flush_worker.cache_clear()
    _TEMP_PREFIX.clear()
    _TEMP_LOCKS.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def read_ahead(path: str | bytes, *, source: bool = False) -> None:
    """Ask the kernel to start reading a whole file now, in the background; a hint only.

    On a cold cache, files asked for a little before they are read are then found in memory
    instead of being waited for one after the other. Nothing is reported: the real read
    reports what is wrong. Opened as sources are, never blocking and never following a link.
    With ``source`` (an input :meth:`ObjectStore.put_file` will store), a file big enough to
    be read past the cache is left alone: the hint would have the device read it twice.
    """
    if not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(path, _SOURCE_FLAGS)
    except OSError:
        return
    try:
        if not source or os.fstat(fd).st_size < _DIRECT_FROM:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass  # not a regular file: the real read refuses it
    finally:
        os.close(fd)
