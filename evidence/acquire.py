"""Walking the inputs of an ingest: which paths become candidates and which are refused.

SPEC section 9 lists the bad inputs a batch must survive. :func:`scan_inputs` turns the paths a
user gave into a deterministic stream of results, one per file system entry met:

- :class:`Candidate`: a readable, non-empty regular file to store;
- :class:`Refusal`: an entry that is not ingested, with a reason code and a text saying why and
  what to do (directories without ``--recursive``, FIFOs, sockets, devices, empty or unreadable
  files, symlinks leading outside the given roots or into a loop, vanished entries, and what is
  :class:`Excluded` whatever the inputs: the case's own folder, the investigator's key folders
  and key files);
- :class:`SymlinkRecord`: a symbolic link that was met; the caller records it as a sighting of a
  link, and it is followed only with ``follow_symlinks``.

A link given as an input is told apart from one met in a walk (the distinction ``find``,
``cp`` and ``du`` make with ``-H``): it names what the user meant to ingest. Like any link, and
like a command-line link to ``find``, ``tar`` or ``cp -R`` by default, it is recorded and not
followed without ``follow_symlinks`` (SPEC section 9): a link on seized media may lead anywhere.
Since nothing it leads to is then ingested, it is also refused
(:attr:`Reason.SYMLINK_NOT_FOLLOWED`), with a reason naming what it leads to and how to ingest
that, so that recording the link alone never looks as if the folder or file behind it had been
preserved. A link met in a walk is only recorded.

The order is fixed by the inputs and their names, never by the order in which a file system
lists a folder: inputs in the order given, each folder's entries in byte order of their names,
depth first, and what a followed link leads to walked where the link is met. So a file and a
link to it (or a folder and a link to it) are met in the byte order of their paths as met: for
``photos/a.jpg`` and ``photos/z.jpg -> a.jpg`` the file comes first, for ``photos/a.jpg ->
z.jpg`` and ``photos/z.jpg`` the link does. Which of them the ingest makes the item follows
from this order (see :mod:`evidence.ingest`).

File names are kept as the raw bytes the file system gave (they need not be valid UTF-8) and are
shown through :func:`display_name`, which escapes what cannot be shown safely.
"""

# Paths are handled as the raw bytes the file system gives (os functions on bytes): pathlib
# would decode them, and names that are not UTF-8 must be kept exactly.
# ruff: noqa: PTH115, PTH118, PTH120

from __future__ import annotations

import errno
import functools
import os
import stat
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

import magic

from chain_of_custody.errors import InputError

__all__ = [
    "Candidate",
    "Excluded",
    "Reason",
    "Refusal",
    "ScanResult",
    "SourceError",
    "SymlinkRecord",
    "detect_mime",
    "display_name",
    "scan_inputs",
    "source_error",
    "unsupported_kind",
]

UNKNOWN_MIME = "application/octet-stream"

# O_NONBLOCK matters: opening a FIFO for reading would otherwise wait for a writer forever.
_PROBE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW


class Reason(StrEnum):
    """Why an input was refused; the value is the stable code shown in reports and JSON."""

    NOT_FOUND = "not-found"
    VANISHED = "vanished"
    UNREADABLE = "unreadable"
    EMPTY = "empty-file"
    DIRECTORY = "directory"
    FIFO = "fifo"
    SOCKET = "socket"
    DEVICE = "device"
    UNSUPPORTED_TYPE = "unsupported-file-type"
    SYMLINK_OUTSIDE_ROOTS = "symlink-outside-roots"
    SYMLINK_LOOP = "symlink-loop"
    SYMLINK_DANGLING = "symlink-dangling"
    SYMLINK_REPLACED = "symlink-replaced"
    SYMLINK_NOT_FOLLOWED = "symlink-not-followed"
    DIRECTORY_LOOP = "directory-loop"
    CHANGED_WHILE_READING = "changed-while-reading"
    NAME_TOO_LONG = "name-too-long"
    IO_ERROR = "io-error"
    CASE_FOLDER = "case-folder"
    KEY_FOLDER = "key-folder"
    PRIVATE_KEY = "private-key"
    CASE_PRIVATE_KEY = "case-private-key"
    TESTIMONY_IDENTITY = "testimony-identity"


_REASON_TEXT: dict[Reason, str] = {
    Reason.NOT_FOUND: "does not exist; check the path",
    Reason.VANISHED: "disappeared while the batch ran; re-run the command to pick it up",
    Reason.UNREADABLE: "cannot be read (permission denied); fix the permissions and re-run",
    Reason.EMPTY: "empty file (0 bytes); there is nothing to preserve",
    Reason.DIRECTORY: "is a directory; use --recursive",
    Reason.FIFO: "is a named pipe (FIFO); only regular files are ingested",
    Reason.SOCKET: "is a socket; only regular files are ingested",
    Reason.DEVICE: "is a device; only regular files are ingested (image the device first)",
    Reason.UNSUPPORTED_TYPE: "is not a regular file; only regular files are ingested",
    Reason.SYMLINK_OUTSIDE_ROOTS: (
        "is a symbolic link leading outside the given inputs; give its target explicitly"
    ),
    Reason.SYMLINK_LOOP: "is a symbolic link that leads into a loop; it was not followed",
    Reason.SYMLINK_DANGLING: "is a symbolic link whose target does not exist",
    Reason.SYMLINK_REPLACED: (
        "was replaced by a symbolic link after it was scanned; check who is changing the files"
    ),
    Reason.SYMLINK_NOT_FOLLOWED: (
        "is a symbolic link given as an input; it is recorded as a link and was not followed, "
        "so nothing it leads to was ingested: to ingest that, re-run with --follow-symlinks, or "
        "give the path it leads to"
    ),
    Reason.DIRECTORY_LOOP: "is a directory that contains itself (a mount loop); not walked again",
    Reason.CHANGED_WHILE_READING: (
        "changed while it was being read; make sure nothing writes to it and re-run"
    ),
    Reason.NAME_TOO_LONG: "has a path too long for the file system to open",
    Reason.IO_ERROR: "could not be read because of an input/output error",
    Reason.CASE_FOLDER: (
        "is the folder of the case being ingested into, or inside it; the case's own folder is "
        "never ingested (keep the material to ingest outside it)"
    ),
    Reason.KEY_FOLDER: (
        "is the folder of the investigator's private keys, or inside it; a private key is never "
        "ingested as evidence"
    ),
    Reason.PRIVATE_KEY: (
        "is one of the investigator's private key files; a private key is never ingested as "
        "evidence"
    ),
    Reason.CASE_PRIVATE_KEY: (
        "is a private key of this case (its public key is enrolled in the case or is one of "
        "its recipients); a private key of the case is never evidence: keep it safe, and move "
        "it off the folder being ingested"
    ),
    Reason.TESTIMONY_IDENTITY: (
        "is a testimony document whose identity block holds values, which an item would keep "
        "and export in clear; record it with `evidence testimony add FILE` if not done yet (that "
        "seals the identity), and keep the file out of the folders you ingest"
    ),
}


def display_name(raw: bytes) -> str:
    """Show a raw file name safely and unambiguously.

    Bytes that are not valid UTF-8 become ``\\xNN``; characters Python does not consider
    printable (controls, zero-width and other format characters, separators other than the
    plain space, unassigned code points) become ``\\uNNNN`` or ``\\UNNNNNNNN``; a backslash
    becomes ``\\\\``. Because the backslash itself is escaped, distinct names always give
    distinct displays, and the raw bytes can be recovered from the display.
    """
    text = raw.decode("utf-8", "surrogateescape")
    if text.isprintable() and "\\" not in text:
        return text
    parts: list[str] = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            # surrogateescape maps each undecodable byte 0xNN to U+DCNN; strict UTF-8 never
            # decodes to a surrogate, so this range only ever holds raw bytes.
            parts.append(f"\\x{code - 0xDC00:02x}")
        elif char == "\\":
            parts.append("\\\\")
        elif not char.isprintable():
            parts.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            parts.append(char)
    return "".join(parts)


class SourceError(InputError):
    """An input file could not be read as a regular file; it is refused, the batch goes on."""

    def __init__(self, raw_path: bytes, reason_code: Reason, detail: str = "") -> None:
        self.raw_path = raw_path
        self.reason_code = reason_code
        self.reason = _REASON_TEXT[reason_code] + (f" ({detail})" if detail else "")
        super().__init__(
            f"{display_name(raw_path)}: {self.reason}",
            hint="the other inputs of the batch are not affected",
        )


def source_error(
    raw_path: bytes, exc: OSError, *, vanished: Reason = Reason.VANISHED
) -> SourceError:
    """Classify an ``OSError`` met while reading an input into a :class:`SourceError`.

    ``vanished`` is the reason used for a missing entry: :attr:`Reason.VANISHED` for an entry
    that was seen before (the default), :attr:`Reason.NOT_FOUND` for a path as given.
    """
    code = exc.errno
    if code in (errno.ENOENT, errno.ENOTDIR):
        return SourceError(raw_path, vanished)
    if code in (errno.EACCES, errno.EPERM):
        return SourceError(raw_path, Reason.UNREADABLE)
    if code == errno.ELOOP:
        # With O_NOFOLLOW an ELOOP means the last component is now a link.
        return SourceError(raw_path, Reason.SYMLINK_REPLACED)
    if code == errno.ENAMETOOLONG:
        return SourceError(raw_path, Reason.NAME_TOO_LONG)
    if code == errno.ENXIO:
        # A socket or a device without a driver, opened for reading.
        return SourceError(raw_path, Reason.UNSUPPORTED_TYPE)
    return SourceError(raw_path, Reason.IO_ERROR, os.strerror(code) if code else type(exc).__name__)


@dataclass(frozen=True)
class Candidate:
    """A readable, non-empty regular file to ingest.

    ``path`` (``raw_path``) is what to open: for a file reached through a followed symbolic
    link it is the resolved target, checked to lie inside the given inputs, and
    ``is_symlink_target_of`` holds the raw path of a link that names the file itself.
    ``given_path`` is the path as met under the given inputs (through the link), the one
    recorded, shown in ``display`` and keyed for reruns (``absolute``); ``reached_as`` holds
    it when it differs from ``raw_path``. ``size``, ``mtime_ns`` and ``ctime_ns`` are those of
    the scan's stat (``ctime_ns``: the last change of content or metadata, which no user
    command can set back).
    """

    raw_path: bytes
    display: str
    size: int
    mtime_ns: int
    ctime_ns: int
    is_symlink_target_of: bytes | None = None
    reached_as: bytes | None = None

    @property
    def given_path(self) -> bytes:
        """The path as met under the given inputs (raw bytes): what is recorded."""
        return self.raw_path if self.reached_as is None else self.reached_as

    # Made on first use: an ingest of many files needs neither for most of them.
    @functools.cached_property
    def path(self) -> Path:
        """The path to open, as a :class:`~pathlib.Path`."""
        return Path(os.fsdecode(self.raw_path))

    @functools.cached_property
    def absolute(self) -> bytes:
        """The absolute form of ``given_path`` (raw bytes), which reruns recognise."""
        return os.path.abspath(self.given_path)


@dataclass(frozen=True)
class Refusal:
    """An input that is not ingested, with a stable reason code and a text for the user."""

    raw_path: bytes
    display: str
    reason_code: Reason
    reason: str

    @property
    def path(self) -> Path:
        """The refused path (raw bytes decoded losslessly with ``os.fsdecode``)."""
        return Path(os.fsdecode(self.raw_path))

    @classmethod
    def of(cls, raw_path: bytes, reason_code: Reason, detail: str = "") -> Refusal:
        """Refuse ``raw_path`` with the standard text for ``reason_code``."""
        reason = _REASON_TEXT[reason_code] + (f" ({detail})" if detail else "")
        return cls(raw_path, display_name(raw_path), reason_code, reason)

    @classmethod
    def from_error(cls, error: SourceError) -> Refusal:
        """The refusal for an input that failed when it was read (vanished, unreadable ...)."""
        return cls(error.raw_path, display_name(error.raw_path), error.reason_code, error.reason)

    def message(self) -> str:
        """One line for the user: the escaped path and the reason."""
        return f"{self.display}: {self.reason}"


@dataclass(frozen=True)
class SymlinkRecord:
    """A symbolic link met while scanning; recorded by the caller as a sighting of a link.

    ``followed`` says whether its target was scanned; when it is false because the target is
    outside the roots, dangling or in a loop, a :class:`Refusal` for the link follows.
    """

    path: Path
    raw_path: bytes
    display: str
    target: bytes
    target_display: str
    followed: bool


ScanResult = Candidate | Refusal | SymlinkRecord


@dataclass(frozen=True)
class Excluded:
    """A folder or a file that is never ingested, whatever the inputs, with the reason.

    Recognised by device and inode, never by the path's text, so that ``..``, symbolic links,
    hard links and bind mounts lead to the same answer. A folder is never walked into, and an
    input given inside it is refused; a file is refused wherever it is met. A path that does
    not exist when the scan starts excludes nothing.
    """

    path: Path
    reason_code: Reason


def scan_inputs(
    paths: Sequence[Path],
    recursive: bool,
    follow_symlinks: bool,
    *,
    probe: bool = True,
    excluded: Sequence[Excluded] = (),
) -> Iterator[ScanResult]:
    """Scan the given inputs, yielding a result for every entry met, in a deterministic order.

    Inputs are taken in the order given; directories (only with ``recursive``) are walked
    depth-first with entries in byte order of their names, whatever order the file system
    lists them in. Symbolic links are always reported as :class:`SymlinkRecord`; they are
    followed only with ``follow_symlinks`` and only to targets inside the given inputs. A link
    given as an input and not followed is also refused, saying what it leads to and what to do
    (see the module docstring). Nothing other than regular files is ever opened, and
    those only to check that they can be read. Without ``probe`` nothing is opened at all: an
    ingest opens every file anyway and refuses one it cannot read with the same reason. What is
    ``excluded`` is refused with its reason, once however often it is met.
    """
    raw_inputs = [os.fsencode(p) for p in paths]
    scanner = _Scanner(
        _roots(raw_inputs),
        recursive=recursive,
        follow_symlinks=follow_symlinks,
        probe=probe,
        excluded=_identify(excluded),
    )
    for raw in raw_inputs:
        yield from scanner.scan_given(raw)


def detect_mime(path: Path) -> str:
    """The MIME type of a regular file from its content (libmagic); never raises.

    Anything that is not a readable regular file, or that libmagic cannot classify, gives
    ``application/octet-stream``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return UNKNOWN_MIME
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return UNKNOWN_MIME
        # The descriptor form reads from the file we checked, so a FIFO swapped in after the
        # check cannot make libmagic block.
        mime = _magic().from_descriptor(fd)
    except (magic.MagicException, OSError, ValueError):
        return UNKNOWN_MIME
    finally:
        os.close(fd)
    return mime if isinstance(mime, str) and mime else UNKNOWN_MIME


def classified_span() -> int:
    """How many bytes :func:`detect_mime` reads at each end of a file: libmagic reads that
    much from the start, and as much again from the end for rules that count from there."""
    try:
        span = _magic().getparam(magic.MAGIC_PARAM_BYTES_MAX)
    except (magic.MagicException, AttributeError, OSError):
        return _LIBMAGIC_BYTES_MAX
    return span if isinstance(span, int) and span > 0 else _LIBMAGIC_BYTES_MAX


# What libmagic reads by default (file 5.44), for a libmagic that cannot tell.
_LIBMAGIC_BYTES_MAX = 7 << 20

_MAGIC = threading.local()


def _magic() -> magic.Magic:
    """This thread's libmagic handle.

    A handle serialises its calls with a lock (libmagic handles are not thread-safe), so one
    shared handle would let only one ingest thread classify at a time; each thread gets its
    own, set up as python-magic sets up its shared one.
    """
    handle: magic.Magic | None = getattr(_MAGIC, "handle", None)
    if handle is None:
        handle = _MAGIC.handle = magic.Magic(mime=True)
    return handle


def _roots(raw_inputs: Sequence[bytes]) -> tuple[bytes, ...]:
    """Resolved forms of the given inputs; followed links must lead inside one of them."""
    roots = []
    for raw in raw_inputs:
        try:
            os.stat(raw)
        except OSError:
            continue
        roots.append(os.path.realpath(raw))
    return tuple(roots)


# (st_dev, st_ino): what a file system entry is, whatever the path that leads to it.
_FileKey = tuple[int, int]


@dataclass(frozen=True)
class _Exclusions:
    """Internal: the excluded folders and files by (device, inode), each with its reason."""

    folders: dict[_FileKey, Reason]
    files: dict[_FileKey, Reason]


def _identify(excluded: Sequence[Excluded]) -> _Exclusions:
    """One stat of each excluded path, when the scan starts."""
    folders: dict[_FileKey, Reason] = {}
    files: dict[_FileKey, Reason] = {}
    for entry in excluded:
        try:
            st = os.stat(entry.path)
        except OSError:
            continue
        kind = folders if stat.S_ISDIR(st.st_mode) else files
        kind.setdefault((st.st_dev, st.st_ino), entry.reason_code)
    return _Exclusions(folders, files)


def _inside(real: bytes, roots: Sequence[bytes]) -> bool:
    return any(real == root or real.startswith(root.rstrip(b"/") + b"/") for root in roots)


def _kind_refusal(raw: bytes, mode: int) -> Refusal | None:
    """The refusal for an entry that is neither a regular file, a directory nor a link."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
        return None
    return Refusal.of(raw, unsupported_kind(mode))


def unsupported_kind(mode: int) -> Reason:
    """Why an entry of this kind (``st_mode``), not a regular file, is not ingested."""
    if stat.S_ISFIFO(mode):
        return Reason.FIFO
    if stat.S_ISSOCK(mode):
        return Reason.SOCKET
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return Reason.DEVICE
    return Reason.UNSUPPORTED_TYPE


@dataclass(frozen=True)
class _Descend:
    """Internal: walk this directory next (``ancestors`` include it, for loop detection).

    ``raw`` is the directory to list (resolved, when reached through a followed link) and
    ``shown`` the path as met under the given inputs, under which its entries are reported.
    """

    raw: bytes
    shown: bytes
    ancestors: frozenset[_FileKey]


class _Scanner:
    def __init__(
        self,
        roots: tuple[bytes, ...],
        *,
        recursive: bool,
        follow_symlinks: bool,
        probe: bool,
        excluded: _Exclusions,
    ):
        self.roots = roots
        self.recursive = recursive
        self.follow_symlinks = follow_symlinks
        self.probe = probe
        self.excluded = excluded
        self._reported: set[_FileKey] = set()  # excluded entries already refused
        # Whether a folder is an excluded one or inside one: by (device, inode) for each folder
        # looked at, and by path for the folders of the inputs given.
        self._enclosed: dict[_FileKey, Reason | None] = {}
        self._enclosed_by_path: dict[bytes, Reason | None] = {}

    def scan_given(self, raw: bytes) -> Iterator[ScanResult]:
        yield from self._walk(raw, given=True)

    def _walk(self, raw: bytes, *, given: bool) -> Iterator[ScanResult]:
        # An explicit stack rather than recursion: a hostile tree can be deeper than Python's
        # recursion limit.
        stack: list[tuple[bytes, bytes, Iterator[bytes], frozenset[_FileKey]]] = []
        visit = self._visit(raw, raw, frozenset(), given=given)
        while True:
            for item in visit:
                if isinstance(item, _Descend):
                    listing = self._list(item.raw, item.shown)
                    if isinstance(listing, Refusal):
                        yield listing
                    else:
                        stack.append((item.raw, item.shown, iter(listing), item.ancestors))
                else:
                    yield item
            while stack:
                parent, shown_parent, names, ancestors = stack[-1]
                name = next(names, None)
                if name is not None:
                    break
                stack.pop()
            else:
                return
            visit = self._visit(
                os.path.join(parent, name),
                os.path.join(shown_parent, name),
                ancestors,
                given=False,
            )

    def _list(self, raw_dir: bytes, shown: bytes) -> list[bytes] | Refusal:
        try:
            with os.scandir(raw_dir) as entries:
                return sorted(entry.name for entry in entries)
        except OSError as exc:
            return Refusal.from_error(source_error(shown, exc))

    def _visit(
        self, raw: bytes, shown: bytes, ancestors: frozenset[_FileKey], *, given: bool
    ) -> Iterator[ScanResult | _Descend]:
        """Results for one entry; a directory to walk is always the last thing yielded.

        ``raw`` is where the entry is (below the resolved target of a followed link) and
        ``shown`` the path it was met at under the given inputs: the one reported.
        """
        missing = Reason.NOT_FOUND if given else Reason.VANISHED
        try:
            st = os.lstat(raw)
        except OSError as exc:
            yield Refusal.from_error(source_error(shown, exc, vanished=missing))
            return
        if given and self.excluded.folders and (st.st_dev, st.st_ino) not in self.excluded.files:
            # Entries met in a walk need no such look upwards: the walk refuses an excluded
            # folder before it enters it. An excluded file is refused for what it is, below.
            folder = raw if stat.S_ISDIR(st.st_mode) else os.path.dirname(raw)
            reason = self._enclosing_exclusion(folder or b".")
            if reason is not None:
                yield from self._refuse_excluded(shown, (st.st_dev, st.st_ino), reason)
                return
        if stat.S_ISLNK(st.st_mode):
            yield from self._visit_link(raw, shown, ancestors, given=given)
            return
        yield from self._visit_target(raw, shown, st, ancestors, link=None)

    def _visit_link(
        self, raw: bytes, shown: bytes, ancestors: frozenset[_FileKey], *, given: bool
    ) -> Iterator[ScanResult | _Descend]:
        try:
            target = os.readlink(raw)
        except OSError as exc:
            yield Refusal.from_error(source_error(shown, exc))
            return

        def record(followed: bool) -> SymlinkRecord:
            return SymlinkRecord(
                path=Path(os.fsdecode(shown)),
                raw_path=shown,
                display=display_name(shown),
                target=target,
                target_display=display_name(target),
                followed=followed,
            )

        if not self.follow_symlinks:
            yield record(followed=False)
            if given:
                yield self._unfollowed_given_link(raw, shown, target)
            return
        try:
            st = os.stat(raw)
        except OSError as exc:
            yield record(followed=False)
            if exc.errno == errno.ELOOP:
                yield Refusal.of(shown, Reason.SYMLINK_LOOP)
            elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
                yield Refusal.of(shown, Reason.SYMLINK_DANGLING)
            else:
                yield Refusal.from_error(source_error(shown, exc))
            return
        real = os.path.realpath(raw)
        if not _inside(real, self.roots):
            yield record(followed=False)
            yield Refusal.of(shown, Reason.SYMLINK_OUTSIDE_ROOTS)
            return
        if self.excluded.folders and (st.st_dev, st.st_ino) not in self.excluded.files:
            # A link may lead into an excluded folder that the walk itself never enters.
            reason = self._enclosing_exclusion(
                real if stat.S_ISDIR(st.st_mode) else os.path.dirname(real)
            )
            if reason is not None:
                yield record(followed=False)
                yield Refusal.of(shown, reason)
                return
        if stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) in ancestors:
            yield record(followed=False)
            yield Refusal.of(shown, Reason.SYMLINK_LOOP)
            return
        yield record(followed=True)
        # Read at the resolved target, checked above to lie inside the roots, so that what is
        # read is what was checked; recorded at the path the link was met at (SPEC 5: the path
        # as given).
        yield from self._visit_target(real, shown, st, ancestors, link=shown)

    def _unfollowed_given_link(self, raw: bytes, shown: bytes, target: bytes) -> Refusal:
        """The refusal of a link given as an input and not followed: what it leads to (or why
        it leads nowhere) and how to ingest that.

        One ``stat`` and one ``realpath`` per such input, never per entry of a walk. What a
        followed link would be refused for (a dangling target, a loop, the case's folder, a
        private key) is said at once rather than a re-run being advised that would only be
        refused again.
        """
        try:
            st = os.stat(raw)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return Refusal.of(shown, Reason.SYMLINK_LOOP)
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return Refusal.of(shown, Reason.SYMLINK_DANGLING)
            return Refusal.from_error(source_error(shown, exc))
        real = os.path.realpath(raw)
        is_dir = stat.S_ISDIR(st.st_mode)
        excluded = self.excluded.files.get((st.st_dev, st.st_ino))
        if excluded is None and self.excluded.folders:
            excluded = self._enclosing_exclusion(real if is_dir else os.path.dirname(real))
        if excluded is not None:
            return Refusal.of(shown, excluded)
        real_shown = display_name(real)
        if not is_dir:
            what, lost = "a file", "that file was not ingested"
            how = f"re-run with --follow-symlinks, or give the file's own path ({real_shown})"
        elif self.recursive:
            what, lost = "a folder", "nothing in that folder was ingested"
            how = f"re-run with --follow-symlinks, or give the folder's own path ({real_shown})"
        else:
            what, lost = "a folder", "nothing in that folder was ingested"
            how = (
                "re-run with --recursive --follow-symlinks, or with --recursive and the "
                f"folder's own path ({real_shown})"
            )
        reason = (
            f"is a symbolic link to {display_name(target)} ({what}); it is recorded as a link "
            f"and was not followed, so {lost}: to ingest it, {how}"
        )
        return Refusal(shown, display_name(shown), Reason.SYMLINK_NOT_FOLLOWED, reason)

    def _visit_target(
        self,
        raw: bytes,
        shown: bytes,
        st: os.stat_result,
        ancestors: frozenset[_FileKey],
        *,
        link: bytes | None,
    ) -> Iterator[ScanResult | _Descend]:
        """Results for a non-link entry ``raw`` (reached as ``shown``, a link when ``link``)."""
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            key = (st.st_dev, st.st_ino)
            excluded = self.excluded.folders.get(key)
            if excluded is not None:
                yield from self._refuse_excluded(shown, key, excluded)
                return
            if not self.recursive:
                yield Refusal.of(shown, Reason.DIRECTORY)
                return
            if key in ancestors:
                # A bind mount or similar can loop without any symbolic link.
                yield Refusal.of(shown, Reason.SYMLINK_LOOP if link else Reason.DIRECTORY_LOOP)
                return
            yield _Descend(raw, shown, ancestors | {key})
            return
        refusal = _kind_refusal(shown, mode)
        if refusal is not None:
            yield refusal
            return
        if self.excluded.files:
            excluded = self.excluded.files.get((st.st_dev, st.st_ino))
            if excluded is not None:
                yield from self._refuse_excluded(shown, (st.st_dev, st.st_ino), excluded)
                return
        if st.st_size == 0:
            yield Refusal.of(shown, Reason.EMPTY)
            return
        problem = _probe_readable(raw) if self.probe else None
        if problem is not None:
            # Named by the path it was met at, as every other result is.
            yield replace(problem, raw_path=shown, display=display_name(shown))
            return
        yield Candidate(
            raw_path=raw,
            display=display_name(shown),
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            ctime_ns=st.st_ctime_ns,
            is_symlink_target_of=link,
            reached_as=None if shown == raw else shown,
        )

    def _refuse_excluded(self, shown: bytes, key: _FileKey, reason: Reason) -> Iterator[Refusal]:
        """The refusal of an excluded entry, the first time it is met."""
        if key not in self._reported:
            self._reported.add(key)
            yield Refusal.of(shown, reason)

    def _enclosing_exclusion(self, folder: bytes) -> Reason | None:
        """Why ``folder`` is never ingested, if it is an excluded folder or inside one.

        Goes up through ``..`` rather than through the path's text, so that the answer is that
        of the folders really above it; each folder is looked at once per scan.
        """
        if folder in self._enclosed_by_path:
            return self._enclosed_by_path[folder]
        walked: list[_FileKey] = []
        reason: Reason | None = None
        path = folder
        try:
            st = os.stat(path)
            while True:
                key = (st.st_dev, st.st_ino)
                if key in self._enclosed:
                    reason = self._enclosed[key]
                    break
                if key in walked:
                    break  # a file system whose ``..`` leads round in a circle
                walked.append(key)
                reason = self.excluded.folders.get(key)
                if reason is not None:
                    break
                path = os.path.join(path, b"..")
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == key:
                    break  # the root of the file system is its own parent
        except OSError:
            # A folder above that cannot be looked at: nothing known about it excludes this.
            return None
        for key in walked:
            self._enclosed[key] = reason
        self._enclosed_by_path[folder] = reason
        return reason


def _probe_readable(raw: bytes) -> Refusal | None:
    """Open a regular file for reading and close it again: the permission check that counts."""
    try:
        fd = os.open(raw, _PROBE_FLAGS)
    except OSError as exc:
        return Refusal.from_error(source_error(raw, exc))
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    if not stat.S_ISREG(mode):
        return Refusal.of(raw, unsupported_kind(mode))
    return None
