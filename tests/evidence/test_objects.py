"""The content-addressed object store: byte-identical, read-only, write-once, crash-safe."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import random
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain_of_custody.errors import EnvironmentProblem, InputError, VerificationError
from evidence import objects as objects_module
from evidence.acquire import Reason, SourceError, classified_span, detect_mime
from evidence.objects import CHUNK_SIZE, SMALL_FILE, ObjectStore
from tests.conftest import ended_pid
from tests.store_damage import fifo_instead, file_instead, link_instead, removed

REPO = Path(__file__).resolve().parents[2]


def payload(size: int, seed: int = 17) -> bytes:
    return random.Random(seed).randbytes(size)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def visible_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "sha256").rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(1, id="one-byte"),
        pytest.param(CHUNK_SIZE - 1, id="chunk-minus-one"),
        pytest.param(CHUNK_SIZE, id="exactly-one-chunk"),
        pytest.param(3 * CHUNK_SIZE + 7, id="several-chunks"),
        pytest.param(17 * CHUNK_SIZE + 3, id="past-background-flush"),
    ],
)
def test_put_file_stores_byte_identical_read_only_copy(tmp_path: Path, size: int) -> None:
    data = payload(size)
    source = write(tmp_path / "in" / "photo.jpg", data)
    store = ObjectStore(tmp_path / "case" / "objects")
    stored = store.put_file(source)
    sha256 = hashlib.sha256(data).hexdigest()
    assert stored.sha256 == sha256
    assert stored.sha512 == hashlib.sha512(data).hexdigest()
    assert stored.size == size
    assert stored.created is True
    path = store.path_for(sha256)
    assert path == tmp_path / "case" / "objects" / "sha256" / sha256[:2] / sha256[2:]
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert store.has(sha256)
    # The source is untouched and no temporary file is left behind.
    assert source.read_bytes() == data
    assert list((tmp_path / "case" / "objects" / "tmp").iterdir()) == []


def test_put_again_is_idempotent_and_leaves_object_alone(tmp_path: Path) -> None:
    source = write(tmp_path / "a.bin", payload(5000))
    copy = write(tmp_path / "other-name.bin", payload(5000))
    store = ObjectStore(tmp_path / "objects")
    first = store.put_file(source)
    before = store.path_for(first.sha256).stat()
    second = store.put_file(copy)
    after = store.path_for(first.sha256).stat()
    assert second.created is False
    assert (second.sha256, second.sha512, second.size) == (first.sha256, first.sha512, first.size)
    assert (after.st_ino, after.st_mtime_ns, after.st_nlink) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_nlink,
    )
    assert list(store.iter_objects()) == [first.sha256]
    assert list((tmp_path / "objects" / "tmp").iterdir()) == []


def test_existing_object_is_never_replaced(tmp_path: Path) -> None:
    """Even a damaged object is left as found: verify reports it, ingest does not repair it."""
    data = payload(100)
    sha256 = hashlib.sha256(data).hexdigest()
    store = ObjectStore(tmp_path / "objects")
    damaged = write(store.path_for(sha256), b"not the original")
    damaged.chmod(0o444)
    stored = store.put_file(write(tmp_path / "a.bin", data))
    assert stored.created is False
    assert damaged.read_bytes() == b"not the original"
    assert store.rehash(sha256)[0] != sha256


def test_rehash_streams_the_stored_bytes(tmp_path: Path) -> None:
    data = payload(2 * CHUNK_SIZE + 11)
    store = ObjectStore(tmp_path / "objects")
    stored = store.put_file(write(tmp_path / "a.bin", data))
    assert store.rehash(stored.sha256) == (stored.sha256, stored.sha512)
    assert store.hash_object(stored.sha256) == (stored.sha256, stored.sha512)
    # Tamper behind the store's back (a root user or another tool could).
    path = store.path_for(stored.sha256)
    path.chmod(0o644)
    path.write_bytes(data[:-1] + b"\x00")
    assert store.rehash(stored.sha256)[0] != stored.sha256


def test_rehash_of_missing_object_is_a_finding(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    missing = "ab" * 32
    with pytest.raises(VerificationError) as caught:
        store.rehash(missing)
    [finding] = caught.value.findings
    assert finding.code == "object-missing"
    assert finding.subject == missing


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("AB" * 32, id="uppercase"),
        pytest.param("ab" * 31, id="too-short"),
        pytest.param("ab" * 33, id="too-long"),
        pytest.param("zz" * 32, id="not-hex"),
        pytest.param("../" + "a" * 61, id="path-traversal"),
        pytest.param("", id="empty"),
    ],
)
def test_path_for_refuses_what_is_not_a_digest(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="not a SHA-256 digest"):
        ObjectStore(tmp_path).path_for(name)


def test_iter_objects_lists_objects_only_in_order(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    names = sorted(store.put_bytes(bytes([i]) * (i + 1)).sha256 for i in range(6))
    write(tmp_path / "objects" / "tmp" / "123-abc.part", b"half")
    write(tmp_path / "objects" / "sha256" / "zz" / "stray", b"x")
    write(tmp_path / "objects" / "sha256" / "README", b"x")
    assert list(store.iter_objects()) == names
    assert list(ObjectStore(tmp_path / "empty").iter_objects()) == []


def test_put_bytes_matches_put_file(tmp_path: Path) -> None:
    data = payload(CHUNK_SIZE + 5)
    store = ObjectStore(tmp_path / "objects")
    from_bytes = store.put_bytes(data)
    from_file = store.put_file(write(tmp_path / "a.bin", data))
    assert from_bytes.created is True
    assert from_file.created is False
    assert from_bytes.sha512 == from_file.sha512


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=3000))
def test_put_bytes_round_trip(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = ObjectStore(Path(tmp))
        stored = store.put_bytes(data)
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        assert store.path_for(stored.sha256).read_bytes() == data
        assert store.rehash(stored.sha256) == (stored.sha256, stored.sha512)


# --- bad sources ------------------------------------------------------------------------------


@pytest.fixture
def alarm() -> Iterator[None]:
    def timeout(signum: int, frame: object) -> None:
        raise TimeoutError("put_file blocked on a non-regular file")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(20)
    yield None
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "pipe")
    return tmp / "pipe"


def symlink(tmp: Path) -> Path:
    write(tmp / "real.bin", b"x")
    (tmp / "link.bin").symlink_to("real.bin")
    return tmp / "link.bin"


def directory(tmp: Path) -> Path:
    (tmp / "dir").mkdir()
    return tmp / "dir"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(fifo, Reason.FIFO, id="fifo"),
        pytest.param(lambda tmp: Path("/dev/null"), Reason.DEVICE, id="device"),
        pytest.param(directory, Reason.UNSUPPORTED_TYPE, id="directory"),
        pytest.param(symlink, Reason.SYMLINK_REPLACED, id="symlink"),
        pytest.param(lambda tmp: tmp / "gone.bin", Reason.VANISHED, id="vanished"),
    ],
)
def test_put_file_refuses_bad_source_without_blocking(
    tmp_path: Path, alarm: object, make: object, reason: Reason
) -> None:
    store = ObjectStore(tmp_path / "objects")
    assert callable(make)
    with pytest.raises(SourceError) as caught:
        store.put_file(make(tmp_path))
    assert caught.value.reason_code == reason
    assert list(store.iter_objects()) == []
    assert list((tmp_path / "objects" / "tmp").glob("*")) == []


def test_store_that_cannot_be_written_is_an_environment_problem(tmp_path: Path) -> None:
    # A plain file where the store's directory should be: fails for root too.
    write(tmp_path / "objects", b"not a directory")
    store = ObjectStore(tmp_path / "objects")
    with pytest.raises(EnvironmentProblem, match="is not a folder but a regular file"):
        store.put_bytes(b"data")


# --- store folders replaced, removed, linked or read-only ---------------------------------------


STORE_DAMAGE = [
    pytest.param("", file_instead, "is not a folder but a regular file", id="root-is-a-file"),
    pytest.param("", link_instead, "is a symbolic link", id="root-is-a-link"),
    pytest.param("", removed, "is missing", id="root-missing"),
    pytest.param("sha256", file_instead, "is not a folder but a regular file", id="sha256-file"),
    pytest.param("sha256", link_instead, "is a symbolic link", id="sha256-is-a-link"),
    pytest.param("tmp", file_instead, "is not a folder but a regular file", id="tmp-is-a-file"),
    pytest.param("tmp", fifo_instead, "is not a folder but a named pipe", id="tmp-is-a-fifo"),
    pytest.param("tmp", link_instead, "is a symbolic link", id="tmp-is-a-link"),
]


def _damaged_store(tmp_path: Path, folder: str, damage: Callable[[Path], None]) -> ObjectStore:
    root = tmp_path / "case" / "objects"
    ObjectStore(root).put_bytes(b"an original stored before the damage")
    damage(root / folder if folder else root)
    return ObjectStore(root)


@pytest.mark.parametrize(("folder", "damage", "said"), STORE_DAMAGE)
def test_check_writable_names_the_damaged_folder_and_what_to_do(
    tmp_path: Path, folder: str, damage: Callable[[Path], None], said: str
) -> None:
    store = _damaged_store(tmp_path, folder, damage)
    with pytest.raises(EnvironmentProblem) as caught:
        store.check_writable()
    problem = caught.value
    assert problem.exit_code == 3
    assert said in problem.message
    assert str(store.root / folder if folder else store.root) in problem.message
    if folder == "tmp" and damage is not link_instead:
        # Only unfinished copies are kept there: nothing to restore.
        assert "never an original" in problem.hint
        assert "restore" not in problem.hint
        return
    assert "restore" in problem.hint or "move that folder into the case" in problem.hint
    assert "evidence verify" in problem.hint


@pytest.mark.parametrize(("folder", "damage", "said"), STORE_DAMAGE)
def test_every_write_to_a_damaged_store_is_an_environment_problem(
    tmp_path: Path, folder: str, damage: Callable[[Path], None], said: str
) -> None:
    # No OSError (an "unexpected error" of the command line) reaches the caller.
    root = _damaged_store(tmp_path, folder, damage).root
    source = write(tmp_path / "in" / "note.txt", b"a new fictional note\n")
    attempts: list[Callable[[ObjectStore], object]] = [
        lambda store: store.remove_stale_temp(),
        lambda store: store.put_file(source),
        lambda store: store.put_file(source, defer=True),
        lambda store: store.put_bytes(b"another canonical document"),
    ]
    for attempt in attempts:
        if said == "is missing":
            # The store makes a missing folder anew; refusing that is the case's check
            # (check_writable, which ingest runs first).
            attempt(ObjectStore(root))
            continue
        with pytest.raises(EnvironmentProblem) as caught:
            attempt(ObjectStore(root))
        assert said in caught.value.message


def test_read_only_store_is_named_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # File modes do not bind root: the system's answer is what is replaced here.
    root = tmp_path / "objects"
    ObjectStore(root).put_bytes(b"stored while writable")
    monkeypatch.setattr(objects_module.os, "access", lambda path, mode: Path(path) != root)
    with pytest.raises(EnvironmentProblem) as caught:
        ObjectStore(root).check_writable()
    assert "cannot be written by this user" in caught.value.message
    assert str(root) in caught.value.message
    assert "writable" in caught.value.hint


def test_healthy_store_passes_the_check(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    root.mkdir()
    ObjectStore(root).check_writable()  # sha256/ and tmp/ are made when first needed
    ObjectStore(root).put_bytes(b"data")
    ObjectStore(root).check_writable()


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        pytest.param(file_instead, "is not a folder but a regular file", id="file"),
        pytest.param(link_instead, "is a symbolic link", id="symlink"),
    ],
)
@pytest.mark.parametrize("defer", [False, True], ids=["put", "staged"])
def test_two_hex_folder_replaced_is_named_and_nothing_is_written_through_it(
    tmp_path: Path, damage: Callable[[Path], None], said: str, defer: bool
) -> None:
    store = ObjectStore(tmp_path / "objects")
    first = b"an original stored before the damage"
    data = bytes(reversed(first))
    sha256 = hashlib.sha256(data).hexdigest()
    # A folder of the same two hex digits as the next object, then damaged.
    folder = tmp_path / "objects" / "sha256" / sha256[:2]
    folder.mkdir(parents=True)
    damage(folder)
    source = write(tmp_path / "in" / "note.bin", data)
    with pytest.raises(EnvironmentProblem) as caught:
        store.put_file(source, defer=defer)
        store.flush()
    assert f"{folder} {said}" in caught.value.message
    assert "evidence verify" in caught.value.hint
    assert list((tmp_path / "objects" / "tmp").iterdir()) == []
    moved = folder.with_name(folder.name + ".moved")
    assert not moved.is_dir() or list(moved.iterdir()) == []


def test_store_write_error_names_the_path_and_a_fitting_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder replaced between the check and the rename: the system's error, explained.
    store = ObjectStore(tmp_path / "objects")
    data = b"its two-hex folder goes away at the last moment"
    sha256 = hashlib.sha256(data).hexdigest()

    def replaced(temp: str | Path, final: Path) -> bool:
        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), os.fspath(final))

    monkeypatch.setattr(objects_module, "rename_noreplace", replaced)
    with pytest.raises(EnvironmentProblem) as caught:
        store.put_bytes(data)
    assert "cannot write to the object store" in caught.value.message
    assert sha256[2:] in caught.value.message
    assert "evidence verify" in caught.value.hint
    assert list((tmp_path / "objects" / "tmp").iterdir()) == []


# --- crash safety -----------------------------------------------------------------------------

CRASH_SCRIPT = """
import os, signal, sys
from pathlib import Path
import evidence.objects as objects

point = sys.argv[3]
if point == "during-copy":
    real_write = objects._write_all
    def crash_after_first_chunk(fd, chunk):
        real_write(fd, chunk)
        os.kill(os.getpid(), signal.SIGKILL)
    objects._write_all = crash_after_first_chunk
elif point == "before-publish":
    def crash(self, temp, sha256):
        os.kill(os.getpid(), signal.SIGKILL)
    objects.ObjectStore._publish = crash
objects.ObjectStore(Path(sys.argv[1])).put_file(Path(sys.argv[2]))
"""


@pytest.mark.parametrize("point", ["during-copy", "before-publish"])
def test_interrupted_put_is_never_visible_and_rerun_completes(tmp_path: Path, point: str) -> None:
    data = payload(3 * CHUNK_SIZE + 1)
    source = write(tmp_path / "big.bin", data)
    root = tmp_path / "objects"
    done = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(root), str(source), point],
        cwd=REPO,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    store = ObjectStore(root)
    sha256 = hashlib.sha256(data).hexdigest()
    # Nothing half-written is visible under an object name; only a temporary file is left,
    # with the lock file the killed process held, which the clean-up finds free.
    assert not store.has(sha256)
    assert list(store.iter_objects()) == []
    assert visible_files(root) == []
    leftovers = sorted(path.name for path in (root / "tmp").iterdir())
    assert len(leftovers) == 2
    part, lock = leftovers
    assert lock.endswith(".lock")
    assert part.startswith(lock.removesuffix(".lock") + "-")
    assert part.endswith(".part")
    assert store.remove_stale_temp() == 1
    assert list((root / "tmp").iterdir()) == []
    stored = store.put_file(source)
    assert stored.created is True
    assert store.path_for(sha256).read_bytes() == data


def test_remove_stale_temp_keeps_files_of_live_writers(tmp_path: Path) -> None:
    dead_pid = ended_pid()
    store = ObjectStore(tmp_path / "objects")
    live = write(tmp_path / "objects" / "tmp" / f"{os.getpid()}-aaaa.part", b"in progress")
    stale = write(tmp_path / "objects" / "tmp" / f"{dead_pid}-bbbb.part", b"crashed")
    other = write(tmp_path / "objects" / "tmp" / "notes.txt", b"not ours")
    assert store.remove_stale_temp() == 1
    assert live.exists()
    assert not stale.exists()
    assert other.exists()


def test_object_name_never_shows_a_partial_file(tmp_path: Path) -> None:
    data = payload(24 * CHUNK_SIZE)
    sha256 = hashlib.sha256(data).hexdigest()
    source = write(tmp_path / "big.bin", data)
    store = ObjectStore(tmp_path / "objects")
    final = store.path_for(sha256)
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def watch() -> None:
        # One more look after the put returns, so the watcher sees the object at least once.
        while True:
            done = stop.is_set()
            try:
                info = final.stat()
            except FileNotFoundError:
                pass
            else:
                seen.append((info.st_size, stat.S_IMODE(info.st_mode)))
            if done:
                return

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        store.put_file(source)
    finally:
        stop.set()
        watcher.join()
    assert seen, "the watcher never saw the object"
    assert set(seen) == {(len(data), 0o444)}


def test_concurrent_puts_of_same_content_create_one_object(tmp_path: Path) -> None:
    data = payload(2 * CHUNK_SIZE + 3)
    sources = [write(tmp_path / f"copy-{i}.bin", data) for i in range(4)]
    store = ObjectStore(tmp_path / "objects")
    results = []
    lock = threading.Lock()

    def put(path: Path) -> None:
        stored = store.put_file(path)
        with lock:
            results.append(stored.created)

    threads = [threading.Thread(target=put, args=(p,)) for p in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    assert store.path_for(hashlib.sha256(data).hexdigest()).read_bytes() == data
    assert list((tmp_path / "objects" / "tmp").iterdir()) == []


@pytest.mark.parametrize("size", [1, 5000, SMALL_FILE, SMALL_FILE + 1, 3 * CHUNK_SIZE + 5])
def test_deferred_put_is_named_only_after_flush(tmp_path: Path, size: int) -> None:
    store = ObjectStore(tmp_path / "objects")
    data = os.urandom(size)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    obj = store.put_file(src, defer=True)
    assert obj.created and obj.staged is not None
    assert (obj.sha256, obj.sha512, obj.size) == (
        hashlib.sha256(data).hexdigest(),
        hashlib.sha512(data).hexdigest(),
        size,
    )
    assert obj.staged.read_bytes() == data
    assert not store.has(obj.sha256), "a staged copy must not be visible under its name"
    assert list(store.iter_objects()) == []
    store.flush()
    final = store.path_for(obj.sha256)
    assert final.read_bytes() == data
    assert stat.S_IMODE(final.stat().st_mode) == 0o444
    assert not obj.staged.exists()
    assert list((tmp_path / "objects" / "tmp").iterdir()) == []


@pytest.mark.parametrize(
    ("size", "defer", "started"),
    [
        pytest.param(3 * CHUNK_SIZE + 5, True, True, id="staged-tail"),
        pytest.param(16 * CHUNK_SIZE, True, False, id="staged-all-flushed-behind"),
        pytest.param(3 * CHUNK_SIZE + 5, False, False, id="fsynced-at-once"),
        pytest.param(SMALL_FILE, True, False, id="small-file"),
    ],
)
def test_staged_copy_starts_its_writeback_before_the_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, defer: bool, started: bool
) -> None:
    # A staged copy's last bytes start on their way to the disk as soon as it is written, so
    # that the batch's flush does not wait for them; nothing else asks for it.
    calls: list[tuple[int, int, int, int]] = []
    real = objects_module._SYNC_FILE_RANGE

    def record(fd: int, offset: int, nbytes: int, flags: int) -> int:
        calls.append((os.fstat(fd).st_ino, offset, nbytes, flags))
        return 0 if real is None else real(fd, offset, nbytes, flags)

    monkeypatch.setattr(objects_module, "_SYNC_FILE_RANGE", record)
    store = ObjectStore(tmp_path / "objects")
    data = payload(size)
    obj = store.put_file(write(tmp_path / "in.bin", data), defer=defer)
    if started:
        assert obj.staged is not None
        assert calls == [(obj.staged.stat().st_ino, 0, 0, objects_module._SYNC_FILE_RANGE_WRITE)]
    else:
        assert calls == []
    store.flush()
    assert store.path_for(obj.sha256).read_bytes() == data


def test_staging_works_without_sync_file_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(objects_module, "_SYNC_FILE_RANGE", None)
    store = ObjectStore(tmp_path / "objects")
    data = payload(2 * CHUNK_SIZE + 1)
    obj = store.put_file(write(tmp_path / "in.bin", data), defer=True)
    store.flush()
    assert store.path_for(obj.sha256).read_bytes() == data


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux system calls")
def test_linux_system_calls_are_found() -> None:
    for name in ("_SYNCFS", "_RENAMEAT2", "_SYNC_FILE_RANGE"):
        assert getattr(objects_module, name) is not None, name
    assert objects_module._libc_function("no_such_function_in_libc", []) is None


def test_deferred_put_of_known_content_stages_nothing(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    src = tmp_path / "in.bin"
    src.write_bytes(b"same bytes")
    store.put_file(src)
    again = store.put_file(src, defer=True)
    assert not again.created and again.staged is None
    store.flush()
    assert list((tmp_path / "objects" / "tmp").iterdir()) == []


def test_small_file_that_grows_while_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ObjectStore(tmp_path / "objects")
    src = tmp_path / "in.bin"
    src.write_bytes(b"first version")
    original = objects_module._read_whole

    def read_then_append(source: int, raw: bytes, expected: int) -> bytes:
        data = original(source, raw, expected)
        with src.open("ab") as handle:
            handle.write(b", then more")
        return data

    monkeypatch.setattr(objects_module, "_read_whole", read_then_append)
    with pytest.raises(SourceError) as caught:
        store.put_file(src, defer=True)
    assert caught.value.reason_code == Reason.CHANGED_WHILE_READING


def test_small_file_that_shrinks_before_it_is_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ObjectStore(tmp_path / "objects")
    src = tmp_path / "in.bin"
    src.write_bytes(b"x" * 4096)
    original = objects_module._read_whole

    def truncate_then_read(source: int, raw: bytes, expected: int) -> bytes:
        os.truncate(src, 100)
        return original(source, raw, expected)

    monkeypatch.setattr(objects_module, "_read_whole", truncate_then_read)
    with pytest.raises(SourceError) as caught:
        store.put_file(src, defer=True)
    assert caught.value.reason_code == Reason.CHANGED_WHILE_READING


# --- big sources read past the page cache -----------------------------------------------------

BIG = objects_module._DIRECT_FROM + 3 * CHUNK_SIZE + 5


@pytest.fixture
def direct_io(tmp_path: Path) -> None:
    """Skips the test where the file system of its temporary folder takes no O_DIRECT."""
    probe = write(tmp_path / "probe.bin", b"\0" * 4096)
    fd = os.open(probe, os.O_RDONLY)
    try:
        works = objects_module._bypass_cache(fd)
    finally:
        os.close(fd)
    if not works:
        pytest.skip("this file system takes no O_DIRECT")


def has_direct(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0))


class Reads:
    """Wraps ``os.preadv``: records each read, can change one, and counts reads under way."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real = os.preadv
        self.calls: list[tuple[int, bool]] = []
        self.running = 0
        self.lock = threading.Lock()
        # Called first with the read's arguments; a count it returns replaces the read.
        self.change: Callable[[int, list[memoryview], int], int | None] | None = None
        monkeypatch.setattr(os, "preadv", self)

    def __call__(self, fd: int, buffers: list[memoryview], offset: int) -> int:
        with self.lock:
            self.running += 1
            self.calls.append((offset, has_direct(fd)))
        try:
            if self.change is not None:
                changed = self.change(fd, buffers, offset)
                if changed is not None:
                    return changed
            return self.real(fd, buffers, offset)
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.parametrize("defer", [False, True], ids=["fsynced", "staged"])
@pytest.mark.usefixtures("direct_io")
def test_big_source_is_read_past_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, defer: bool
) -> None:
    reads = Reads(monkeypatch)
    data = payload(BIG)
    store = ObjectStore(tmp_path / "objects")
    obj = store.put_file(write(tmp_path / "video.mp4", data), defer=defer)
    store.flush()
    assert store.path_for(obj.sha256).read_bytes() == data
    assert (obj.sha256, obj.sha512, obj.size) == (
        hashlib.sha256(data).hexdigest(),
        hashlib.sha512(data).hexdigest(),
        BIG,
    )
    # Every chunk once, in whole chunks from the start, each bypassing the cache; no read past
    # the size fstat gave.
    assert sorted(reads.calls) == [(offset, True) for offset in range(0, BIG, CHUNK_SIZE)]


@pytest.mark.parametrize(
    ("size", "can_bypass"),
    [
        pytest.param(objects_module._DIRECT_FROM - 1, True, id="smaller-source"),
        pytest.param(BIG, False, id="o-direct-cannot-be-set"),
    ],
)
def test_source_is_read_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, can_bypass: bool
) -> None:
    if not can_bypass:
        monkeypatch.setattr(objects_module, "_bypass_cache", lambda fd, on=True: False)
    reads = Reads(monkeypatch)
    data = payload(size)
    store = ObjectStore(tmp_path / "objects")
    obj = store.put_file(write(tmp_path / "video.mp4", data))
    assert store.path_for(obj.sha256).read_bytes() == data
    assert reads.calls == []


@pytest.mark.usefixtures("direct_io")
def test_refused_direct_read_goes_on_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some file systems take the flag but not the alignment of a read: EINVAL.
    reads = Reads(monkeypatch)

    def refuse_direct(fd: int, buffers: list[memoryview], offset: int) -> int | None:
        if has_direct(fd) and offset >= 2 * CHUNK_SIZE:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return None

    reads.change = refuse_direct
    data = payload(BIG)
    store = ObjectStore(tmp_path / "objects")
    obj = store.put_file(write(tmp_path / "video.mp4", data))
    assert store.path_for(obj.sha256).read_bytes() == data
    assert obj.sha512 == hashlib.sha512(data).hexdigest()
    assert (0, True) in reads.calls
    assert (BIG // CHUNK_SIZE * CHUNK_SIZE, False) in reads.calls


@pytest.mark.usefixtures("direct_io")
def test_short_read_in_the_middle_is_read_on_from_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A network file system may return fewer bytes than asked before the end of a file; the
    # reads already started after it assumed a whole chunk.
    reads = Reads(monkeypatch)
    shortened: list[int] = []

    def short_once(fd: int, buffers: list[memoryview], offset: int) -> int | None:
        if offset == 2 * CHUNK_SIZE and not shortened:
            shortened.append(offset)
            return reads.real(fd, [buffers[0][:4096]], offset)
        return None

    reads.change = short_once
    data = payload(BIG)
    store = ObjectStore(tmp_path / "objects")
    obj = store.put_file(write(tmp_path / "video.mp4", data))
    assert shortened
    assert obj.size == BIG
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    assert store.path_for(obj.sha256).read_bytes() == data


def cached_pages(path: Path) -> list[bool]:
    """Which pages of ``path`` are in the page cache (``mincore`` over a mapping never read)."""
    libc = ctypes.CDLL(None, use_errno=True)
    size = path.stat().st_size
    count = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    vector = ctypes.create_string_buffer(count)
    with (
        path.open("rb") as handle,
        mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY) as view,
    ):
        start = ctypes.c_char.from_buffer(view)
        try:
            address = ctypes.c_void_p(ctypes.addressof(start))
            if libc.mincore(address, ctypes.c_size_t(size), vector) != 0:
                raise OSError(ctypes.get_errno(), "mincore failed")
        finally:
            del start  # the mapping cannot close while a pointer into it exists
    return [bool(flag & 1) for flag in vector.raw[:count]]


def cached_chunks(path: Path) -> list[tuple[bool, float, float]]:
    """Runs of cached and uncached pages, as (cached, from MiB, to MiB)."""
    pages = cached_pages(path)
    runs: list[tuple[bool, float, float]] = []
    for index, cached in enumerate(pages):
        if runs and runs[-1][0] == cached:
            runs[-1] = (cached, runs[-1][1], (index + 1) * mmap.PAGESIZE / CHUNK_SIZE)
        else:
            runs.append(
                (
                    cached,
                    index * mmap.PAGESIZE / CHUNK_SIZE,
                    (index + 1) * mmap.PAGESIZE / CHUNK_SIZE,
                )
            )
    return runs


@pytest.mark.parametrize("defer", [False, True], ids=["fsynced", "staged"])
@pytest.mark.usefixtures("direct_io")
def test_only_the_ends_of_a_big_copy_go_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, defer: bool
) -> None:
    monkeypatch.setattr(objects_module, "classified_span", lambda: 2 * CHUNK_SIZE)
    size = 20 * CHUNK_SIZE + 12_345
    data = payload(size)
    store = ObjectStore(tmp_path / "objects")
    obj = store.put_file(write(tmp_path / "video.mp4", data), defer=defer)
    store.flush()
    copy = store.path_for(obj.sha256)
    # The chunks wholly between the two ends were written past the cache; the last chunk
    # reaches into the end and went through it, as did the first two.
    last_page = -(-size // mmap.PAGESIZE) * mmap.PAGESIZE / CHUNK_SIZE
    assert cached_chunks(copy) == [(True, 0, 2), (False, 2, 18), (True, 18, last_page)]
    assert copy.read_bytes() == data
    assert obj.sha512 == hashlib.sha512(data).hexdigest()


@pytest.mark.usefixtures("direct_io")
def test_libmagic_finds_what_it_reads_of_a_big_copy_in_the_cache(tmp_path: Path) -> None:
    span = classified_span()
    size = 2 * span + 10 * CHUNK_SIZE + 5
    store = ObjectStore(tmp_path / "objects")
    obj = store.put_file(write(tmp_path / "video.mp4", payload(size)))
    copy = store.path_for(obj.sha256)
    before = cached_chunks(copy)
    assert before[1] == (False, span / CHUNK_SIZE, span / CHUNK_SIZE + 10)
    assert detect_mime(copy) == "application/octet-stream"
    # Had libmagic read more than the span at either end, it would have read the middle in.
    assert cached_chunks(copy) == before


@pytest.mark.usefixtures("direct_io")
def test_refused_direct_write_goes_on_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file system may take O_DIRECT on a descriptor and then refuse a write's alignment,
    # here after writing part of it: the copy goes on through the cache from where it stopped.
    monkeypatch.setattr(objects_module, "classified_span", lambda: CHUNK_SIZE)
    real_write = objects_module._write_all
    writes: list[tuple[int, bool]] = []

    def refuse_second_direct_write(fd: int, chunk: memoryview) -> None:
        direct = has_direct(fd)
        writes.append((len(chunk), direct))
        if direct and sum(d for _, d in writes) == 2:
            real_write(fd, chunk[:8192])
            raise objects_module._StoreWriteError(OSError(errno.EINVAL, "Invalid argument"))
        real_write(fd, chunk)

    monkeypatch.setattr(objects_module, "_write_all", refuse_second_direct_write)
    data = payload(BIG)
    store = ObjectStore(tmp_path / "objects")
    obj = store.put_file(write(tmp_path / "video.mp4", data))
    copy = store.path_for(obj.sha256)
    assert copy.read_bytes() == data
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    assert [direct for _, direct in writes[:4]] == [False, True, True, False]
    assert writes[3][0] == CHUNK_SIZE - 8192  # the rest of the refused chunk, once
    assert not any(direct for _, direct in writes[3:])
    assert all(cached_pages(copy)[2 * CHUNK_SIZE // mmap.PAGESIZE :])


@pytest.fixture
def ahead_reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    """Big sources read ahead by the reader thread on any file system (O_DIRECT is not set)."""
    monkeypatch.setattr(objects_module, "_bypass_cache", lambda fd, on=True: True)
    return Reads(monkeypatch)


def test_read_error_in_a_big_source_refuses_it_and_leaves_no_read_running(
    tmp_path: Path, ahead_reads: Reads
) -> None:
    reads = ahead_reads

    def fail_at_five(fd: int, buffers: list[memoryview], offset: int) -> int | None:
        if offset == 5 * CHUNK_SIZE:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        if offset > 5 * CHUNK_SIZE:
            time.sleep(0.2)  # still under way when the read before them fails
        return None

    reads.change = fail_at_five
    store = ObjectStore(tmp_path / "objects")
    with pytest.raises(SourceError) as caught:
        store.put_file(write(tmp_path / "video.mp4", payload(BIG)))
    assert caught.value.reason_code == Reason.IO_ERROR
    assert reads.running == 0
    assert list(store.iter_objects()) == []
    assert list((tmp_path / "objects" / "tmp").iterdir()) == []
    # The buffers are this thread's again: the next file is stored whole and right.
    reads.change = None
    other = payload(BIG, seed=3)
    obj = store.put_file(write(tmp_path / "other.mp4", other))
    assert store.path_for(obj.sha256).read_bytes() == other


def test_store_write_error_waits_for_the_reads_under_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ahead_reads: Reads
) -> None:
    reads = ahead_reads
    # The reads after the third chunk are still under way when its write fails.
    reads.change = lambda fd, buffers, offset: time.sleep(0.2 if offset > 2 * CHUNK_SIZE else 0)
    real_write = objects_module._write_all
    written: list[int] = []

    def disk_full_on_third_chunk(fd: int, chunk: memoryview) -> None:
        written.append(len(chunk))
        if len(written) == 3:
            raise objects_module._StoreWriteError(OSError(errno.ENOSPC, "No space left"))
        real_write(fd, chunk)

    monkeypatch.setattr(objects_module, "_write_all", disk_full_on_third_chunk)
    store = ObjectStore(tmp_path / "objects")
    with pytest.raises(EnvironmentProblem):
        store.put_file(write(tmp_path / "video.mp4", payload(BIG)))
    assert reads.running == 0
    assert len(reads.calls) > 3  # reads had started ahead of the failed write


def test_read_ahead_leaves_big_sources_to_direct_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hinted: list[int] = []
    monkeypatch.setattr(
        os, "posix_fadvise", lambda fd, offset, length, advice: hinted.append(os.fstat(fd).st_size)
    )
    small = write(tmp_path / "small.bin", b"x" * 100)
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        handle.truncate(objects_module._DIRECT_FROM)
    objects_module.read_ahead(big, source=True)
    objects_module.read_ahead(small, source=True)
    objects_module.read_ahead(big)
    assert hinted == [100, objects_module._DIRECT_FROM]
