"""Ways to damage a folder of a case's object store, shared by the store and command tests.

Each moves the folder aside (to ``<name>.moved``, so nothing is lost) and leaves something else,
or nothing, in its place.
"""

from __future__ import annotations

import os
from pathlib import Path


def file_instead(folder: Path) -> None:
    """A regular file where the folder was."""
    folder.rename(folder.with_name(folder.name + ".moved"))
    folder.write_bytes(b"a file where a folder of the store should be\n")


def link_instead(folder: Path) -> None:
    """A symbolic link to the moved folder where the folder was."""
    moved = folder.with_name(folder.name + ".moved")
    folder.rename(moved)
    folder.symlink_to(moved)


def fifo_instead(folder: Path) -> None:
    """A named pipe where the folder was."""
    folder.rename(folder.with_name(folder.name + ".moved"))
    os.mkfifo(folder)


def removed(folder: Path) -> None:
    """Nothing where the folder was."""
    folder.rename(folder.with_name(folder.name + ".moved"))
