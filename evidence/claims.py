"""Hidden work in progress, claimed by the process doing it.

Several commands build something under a hidden name and give it its real name only when it
is complete: `init` a case folder, `export` a bag and a zip, `keys generate` a key file,
`open` a working copy. A process killed on the way leaves that hidden thing behind, and the
next run of the same command removes it. It must never remove the work of a run still going,
which may be another investigator's, on another machine sharing the folder or in another
container, where its process id means nothing here.

So the process that makes such a thing holds an exclusive ``flock`` on it (:func:`claim`)
until it is named or removed, and a later run removes it only when it can take that lock
(:func:`abandoned`). The kernel lets the lock go when its holder ends, however it ends; file
systems that share locks (NFS, SMB) show it to every machine. The process id in the hidden
name stays as a second, local sign of life, and decides alone where the file system keeps no
locks.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["Claim", "ClaimLost", "abandoned", "claim", "claim_new", "process_alive"]

# Opening never follows a link and never waits (a FIFO given the name meanwhile).
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# flock is refused: no locks on this file system, or (EBADF) NFS, which emulates an exclusive
# flock with a write lock, on a descriptor not open for writing (a folder's, another user's).
_NO_LOCKS = frozenset(
    {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS, errno.EBADF}
)
_ATTEMPTS = 5


class ClaimLost(Exception):
    """What this process had just made was taken, as a crashed run's, by a clean-up in
    another process before it was claimed: make another."""


class Claim:
    """An exclusive lock held on a file or folder this process is working in; without a
    descriptor where the file system keeps no locks (its process id then speaks for it)."""

    __slots__ = ("fd",)

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def release(self) -> None:
        """Let the lock go (once the thing is named, or removed)."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


def claim(path: Path) -> Claim:
    """Lock what this process has just made at ``path``.

    Raises :class:`ClaimLost` when a clean-up in another process took it first (it removes
    it), and ``OSError`` when it cannot be opened at all.
    """
    try:
        fd = _open_to_lock(path)
    except FileNotFoundError:
        raise ClaimLost(path) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ClaimLost(path) from None
    except OSError as exc:
        os.close(fd)
        if exc.errno in _NO_LOCKS:
            return Claim(None)
        raise
    try:
        same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
    except OSError:
        same = False
    if not same:
        # Removed by a clean-up that had it locked, and perhaps made again by someone else.
        os.close(fd)
        raise ClaimLost(path)
    return Claim(fd)


def claim_new(make: Callable[[], Path]) -> tuple[Path, Claim]:
    """Make a new hidden thing with ``make`` (under a fresh random name each call) and claim
    it; made again, under another name, while clean-ups take what was made."""
    for _ in range(_ATTEMPTS):
        made = make()
        try:
            return made, claim(made)
        except ClaimLost:
            continue
    raise OSError(errno.EAGAIN, "every new working name was taken by a clean-up")


def abandoned(path: Path, pid_text: str) -> Claim | None:
    """A claim on the leftover at ``path`` when the run that made it has ended, for the caller
    to remove it and then release; ``None`` while that run may still be going.

    ``pid_text`` is the process id its name carries. The leftover is the caller's when no
    process of that id runs here and its lock can be taken (or, where the file system keeps
    no locks, on the process id alone). Anything that cannot be told is left alone.
    """
    if not pid_text.isdigit() or process_alive(int(pid_text)):
        return None
    try:
        fd = _open_to_lock(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        # A link under the name holds no lock of ours: its process id decides.
        return Claim(None) if exc.errno == errno.ELOOP else None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        # Held (BlockingIOError): a run still going, here or elsewhere.
        return Claim(None) if exc.errno in _NO_LOCKS else None
    return Claim(fd)


def _open_to_lock(path: Path) -> int:
    """A descriptor of ``path`` to lock: open for writing where it can be (a file of this
    user's), which NFS needs to lock it; else for reading (a folder, another user's file)."""
    try:
        return os.open(path, os.O_RDWR | _OPEN_FLAGS)
    except (IsADirectoryError, PermissionError):
        return os.open(path, os.O_RDONLY | _OPEN_FLAGS)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs here (this process counts)."""
    if pid == os.getpid():
        # Another thread of this process may be working on it right now.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
