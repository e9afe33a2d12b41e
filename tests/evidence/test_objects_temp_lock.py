"""Temporary files of the object store are told from a crashed run's by a lock, not a pid.

Two ingests may write to one case at once, one of them from another PID namespace (a
container) or another machine: the pid in a temporary file's name means nothing there, and pids
are reused. A writer holds an exclusive ``flock`` on ``tmp/<owner>.lock`` while it has
temporary files named ``<owner>-<random>.part``; a clean-up removes them only when it can take
that lock itself. The writers here are fictional: child Python processes and forked workers.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from evidence.objects import ObjectStore
from tests.conftest import ended_pid

REPO = Path(__file__).resolve().parents[2]
OWNER = "4242-0123456789abcdef"

HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""

# A clean-up that sees none of the writer's processes, as from another PID namespace.
BLIND_CLEAN_UP = """
import sys
from pathlib import Path
import evidence.objects as objects
objects.process_alive = lambda pid: False
print(objects.ObjectStore(Path(sys.argv[1])).remove_stale_temp())
"""


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def tmp_names(root: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(root / "tmp"))


@contextmanager
def locked_by_another_process(lock_file: Path) -> Iterator[None]:
    """Hold the lock of ``lock_file`` in a child process for the block."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline() == "held\n"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()


def blind_clean_up(root: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", BLIND_CLEAN_UP, str(root)],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return int(done.stdout)


def test_files_of_a_held_lock_survive_whatever_their_pid(tmp_path: Path) -> None:
    """The defect: a clean-up that cannot see the writer's pid removed its live copies."""
    root = tmp_path / "objects"
    owner = f"{ended_pid()}-0123456789abcdef"
    lock_file = write(root / "tmp" / f"{owner}.lock", b"")
    staged = [
        write(root / "tmp" / f"{owner}-{n:016x}.part", b"a fictional copy in progress")
        for n in range(3)
    ]
    with locked_by_another_process(lock_file):
        assert ObjectStore(root).remove_stale_temp() == 0
        assert all(path.exists() for path in staged)
        assert lock_file.exists()
    # The writer is gone (however it ended): its files and its lock file go.
    assert ObjectStore(root).remove_stale_temp() == 3
    assert tmp_names(root) == []


def test_lock_file_of_a_crashed_run_is_removed_with_its_files(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    # The pid of this process, as a run in another PID namespace may well have had.
    mine = f"{os.getpid()}-fedcba9876543210"
    write(root / "tmp" / f"{mine}.lock", b"")
    write(root / "tmp" / f"{mine}-00000001.part", b"crashed")
    write(root / "tmp" / f"{OWNER}.lock", b"")  # crashed before its first file
    write(root / "tmp" / "notes.lock", b"not the store's")
    assert ObjectStore(root).remove_stale_temp() == 1
    assert tmp_names(root) == ["notes.lock"]


def test_without_a_lock_file_the_pid_decides(tmp_path: Path) -> None:
    """Files of a version that took no lock, or whose lock file was removed by hand."""
    root = tmp_path / "objects"
    gone = ended_pid()
    live = [
        write(root / "tmp" / f"{os.getpid()}-aaaa.part", b"old naming, live"),
        write(root / "tmp" / f"{os.getpid()}-0123456789abcdef-01.part", b"no lock file, live"),
    ]
    stale = [
        write(root / "tmp" / f"{gone}-bbbb.part", b"old naming, crashed"),
        write(root / "tmp" / f"{gone}-0123456789abcdef-01.part", b"no lock file, crashed"),
    ]
    assert ObjectStore(root).remove_stale_temp() == 2
    assert all(path.exists() for path in live)
    assert not any(path.exists() for path in stale)


def test_staged_copies_survive_a_clean_up_that_cannot_see_this_process(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = ObjectStore(root)
    sources = [
        write(tmp_path / "in" / f"note-{n}.txt", f"fictional note {n}\n".encode()) for n in range(3)
    ]
    staged = [store.put_file(source, defer=True) for source in sources]
    [lock] = [name for name in tmp_names(root) if name.endswith(".lock")]
    owner = lock.removesuffix(".lock")
    assert re.fullmatch(rf"{os.getpid()}-[0-9a-f]{{16}}", owner)
    # One lock for the process, not one per file.
    for obj in staged:
        assert obj.staged is not None
        assert obj.staged.name.startswith(f"{owner}-")
    assert blind_clean_up(root) == 0
    assert store.remove_stale_temp() == 0
    store.flush()
    for obj, source in zip(staged, sources, strict=True):
        assert store.path_for(obj.sha256).read_bytes() == source.read_bytes()
    # Nothing left behind: the lock file goes with the last temporary file.
    assert tmp_names(root) == []


def test_no_lock_file_is_left_by_any_way_a_temporary_file_ends(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = ObjectStore(root)
    store.put_bytes(b"a fictional canonical document")
    assert tmp_names(root) == []
    source = write(tmp_path / "in" / "a.bin", b"fictional bytes " * 100)
    store.put_file(source)  # published at once
    store.put_file(source, defer=True)  # known already: nothing staged
    store.flush()
    assert tmp_names(root) == []
    discarded = store.put_file(write(tmp_path / "in" / "b.bin", b"refused later"), defer=True)
    assert len(tmp_names(root)) == 2
    store.discard(discarded)
    assert tmp_names(root) == []


def _stage_for_owner(root: str, owner_pid: int, source: str, reply: Connection) -> None:
    """A forked worker: stage ``source`` for its owner, as evidence/ingest.py's workers do."""
    store = ObjectStore(Path(root), owner_pid=owner_pid)
    obj = store.put_file(Path(source), defer=True)
    store.hand_over(obj)
    assert obj.staged is not None
    reply.send((os.fspath(obj.staged), obj.sha256))
    reply.close()


def _staged_by_a_worker(root: Path, source: Path) -> tuple[str, str]:
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    worker = context.Process(
        target=_stage_for_owner, args=(str(root), os.getpid(), str(source), writer)
    )
    worker.start()
    writer.close()
    staged: tuple[str, str] = reader.recv()
    worker.join(timeout=60)
    assert worker.exitcode == 0
    return staged


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux")
def test_forked_worker_stages_under_its_owners_lock(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = ObjectStore(root)
    source = write(tmp_path / "in" / "report.txt", b"a fictional report\n")
    with store.hold_temp_lock():
        [lock] = tmp_names(root)
        temp, sha256 = _staged_by_a_worker(root, source)
        # The worker has ended; its copy waits for this process's flush, under its lock.
        assert Path(temp).name.startswith(lock.removesuffix(".lock") + "-")
        assert blind_clean_up(root) == 0
        assert Path(temp).exists()
        store.adopt_staged(temp, sha256)
        store.flush()
        assert tmp_names(root) == [lock]
    assert store.path_for(sha256).read_bytes() == source.read_bytes()
    assert tmp_names(root) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux")
def test_worker_forked_without_a_held_lock_names_its_copies_by_pid(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    source = write(tmp_path / "in" / "memo.txt", b"a fictional memo\n")
    temp, sha256 = _staged_by_a_worker(root, source)
    assert re.fullmatch(rf"{os.getpid()}-[0-9a-f]+\.part", Path(temp).name)
    assert ObjectStore(root).remove_stale_temp() == 0  # this process runs
    store = ObjectStore(root)
    store.adopt_staged(temp, sha256)
    store.flush()
    assert tmp_names(root) == []


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names open files by /proc")
@pytest.mark.parametrize("released", [False, True], ids=["lock-taken", "file-removed"])
def test_a_new_lock_file_taken_by_a_clean_up_is_given_up_for_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, released: bool
) -> None:
    """A clean-up may open a lock file between its creation and its lock, take the lock and
    remove the file as a crashed run's: the writer must not name files after that one."""
    real_flock: Callable[[int, int], None] = fcntl.flock
    raced: list[str] = []

    def clean_up_first(fd: int, operation: int) -> None:
        if not raced:
            path = os.readlink(f"/proc/self/fd/{fd}")
            raced.append(Path(path).name)
            other = os.open(path, os.O_RDWR)
            real_flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            Path(path).unlink()
            if released:
                os.close(other)
            else:
                try:
                    real_flock(fd, operation)
                finally:
                    os.close(other)
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", clean_up_first)
    root = tmp_path / "objects"
    store = ObjectStore(root)
    obj = store.put_file(write(tmp_path / "in" / "c.bin", b"fictional"), defer=True)
    monkeypatch.setattr(fcntl, "flock", real_flock)
    [lock] = [name for name in tmp_names(root) if name.endswith(".lock")]
    assert raced and lock != raced[0]
    assert obj.staged is not None
    assert obj.staged.name.startswith(lock.removesuffix(".lock") + "-")
    assert blind_clean_up(root) == 0
    store.flush()
    assert tmp_names(root) == []
