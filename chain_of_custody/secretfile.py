"""Files that hold secrets (encrypted private keys): written once, mode 0600, read with care.

A secret file is written under a temporary name with mode 0600, fsynced, then hard-linked to its
name, which never replaces an existing file; the directory is fsynced after. Reading refuses a
file that is not regular, is open to group or others, or is too large to be a key file; the
checks are made on the opened file, so a swap between check and read cannot slip by.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from chain_of_custody.errors import KeyFileError

MAX_SECRET_FILE = 64 * 1024

__all__ = ["MAX_SECRET_FILE", "read_secret_file", "write_secret_file"]


def write_secret_file(path: Path, data: bytes) -> None:
    """Create ``path`` holding ``data``, mode 0600; refuse if it exists."""
    directory = path.parent
    if path.exists() or path.is_symlink():
        raise KeyFileError(
            f"key file {path} already exists",
            hint="choose another file name; an existing key is never overwritten",
        )
    tmp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise KeyFileError(
            f"cannot create key file in {directory}: {exc.strerror}",
            hint="check that the directory exists and is writable",
        ) from exc
    try:
        try:
            # The umask may only narrow 0600, but set it explicitly so it does not depend on it.
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        _publish_without_replacing(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_directory(directory)


def _publish_without_replacing(tmp: Path, path: Path) -> None:
    # A hard link fails if the target exists, so a key written by someone else between our check
    # and now is never replaced (rename would silently replace it).
    try:
        os.link(tmp, path)
    except FileExistsError as exc:
        raise KeyFileError(
            f"key file {path} already exists",
            hint="choose another file name; an existing key is never overwritten",
        ) from exc
    except OSError as exc:
        if exc.errno not in {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP}:
            raise KeyFileError(
                f"cannot write key file {path}: {exc.strerror}",
                hint="check that the directory is writable",
            ) from exc
        # Filesystems without hard links: fall back to a checked rename.
        if path.exists():
            raise KeyFileError(
                f"key file {path} already exists",
                hint="choose another file name; an existing key is never overwritten",
            ) from exc
        tmp.rename(path)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_secret_file(path: Path) -> bytes:
    """The bytes of a secret file, refusing one that others could read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise KeyFileError(
            f"key file {path} does not exist", hint="check the path to the key file"
        ) from exc
    except OSError as exc:
        raise KeyFileError(
            f"cannot open key file {path}: {exc.strerror}",
            hint="check the file's owner and permissions",
        ) from exc
    try:
        # Check the opened file, not the path, so a swap between check and read cannot slip by.
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise KeyFileError(
                f"key file {path} is readable or writable by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o})",
                hint=f"run: chmod 600 {path}",
            )
        if info.st_size > MAX_SECRET_FILE:
            raise KeyFileError(f"key file {path} is too large to be a key file")
        chunks = []
        while chunk := os.read(fd, MAX_SECRET_FILE + 1):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
