"""Ingest of files and folders into a case (SPEC sections 3, 5 and 9).

Each file is read once: the read computes SHA-256 and SHA-512 and writes the store copy
(``ObjectStore.put_file``). Copies are staged and made durable a batch at a time
(``ObjectStore.flush``: two file-system syncs per batch rather than two fsyncs per file), always
before the events that name them commit; the flush of a batch runs while its events are signed.
Two files are stored at a time, by two worker processes when there are many inputs (from while
the scan is still going on) and by two threads otherwise (see ``_Storage``); each copy is
classified (libmagic) from the staged file, as ``file`` would classify it. Events are appended
and projected in batched transactions by this process alone, in input order; one checkpoint is
signed at the end.

A batch is never lost because one input is bad: refused inputs are reported with their reason
and the rest are ingested. The case's own folder and the investigator's private keys are never
ingested, whatever the inputs: each is refused once, with its reason (see :func:`never_ingested`).
Nor is a private key of the case met anywhere else (on a stick, say): a key file written by this
toolkit whose public key is enrolled in the case or is one of its recipients (see
:func:`case_key_material`). A private key seized as evidence is not one of those, and is
ingested like any other file. Nor is a testimony document (the YAML or JSON file given to
``testimony add``) whose identity block holds values (``testimony-identity``): as an item, the
identity would be kept and exported in clear, where ``testimony add`` seals it (see
:func:`_testimony_identity`).

A file reached through a followed symbolic link is recorded at the path it was met at under the
given inputs (the link's path: SPEC 5, the path as given), with the resolved file that was read
beside it (``resolved_path``); only that file, checked to lie inside the inputs, is opened.

The same content met at several paths is one item: the first path met, in the order of
:func:`~evidence.acquire.scan_inputs` (inputs as given, each folder's entries in byte order of
their names, depth first, never the order the file system lists them in), is recorded as the
item (``item.ingested``) and each later one as a sighting of it (``item.sighted``, a duplicate).
This holds for a file and a followed link to it as for two copies: with ``a.jpg`` and
``z.jpg -> a.jpg`` the item is recorded at ``a.jpg`` and the link's path ``z.jpg`` is a sighting
(with ``resolved_path`` ``a.jpg``); with ``a.jpg -> z.jpg`` and ``z.jpg`` the item is recorded
at the link's path ``a.jpg`` (with ``resolved_path`` ``z.jpg``) and ``z.jpg`` is a sighting.
Either way both paths are recorded, and the same names give the same record whatever order the
file system lists them in.

Each symbolic link met is recorded once (``symlink.recorded``, with its target). A re-run
reports a link already recorded at the same absolute path with the same target as already
recorded (``symlinks_already_recorded``), as it reports a file already in the case, and records
nothing for it; a link whose target changed since is recorded again.

Re-running a command records only what is missing. A file already sighted at the same absolute
path (as met) with the same size and modification time is skipped without being read again,
provided its status change time (ctime) is earlier than the event that recorded the sighting:
copying with ``cp -p``, ``touch -r``, tar or rsync keeps a file's size and modification time but
not its ctime, which no user command can set back, so a file changed that way is read again (and
is then a new item, or recorded as already seen by its content).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import itertools
import mmap
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from chain_of_custody import EventDraft, Signer, VerifierKey, parse_event_time
from chain_of_custody.keys import KEY_NAME_HEADER, PUBLIC_KEY_HEADER
from chain_of_custody.secretfile import MAX_SECRET_FILE
from evidence.acquire import (
    Candidate,
    Excluded,
    Reason,
    Refusal,
    SourceError,
    SymlinkRecord,
    detect_mime,
    display_name,
    scan_inputs,
    source_error,
)
from evidence.errors import EnvironmentProblem, InputError
from evidence.keystore import KEY_ENV, key_dir
from evidence.loaders import MAX_DOCUMENT_BYTES, HeldIdentity, held_identity
from evidence.metadata import extract_metadata
from evidence.models import ItemOptions
from evidence.objects import ObjectStore, StoredObject, read_ahead
from evidence.progress import Progress
from evidence.protected import RECIPIENT_NAME_HEADER, RecipientPublicKey
from evidence.recipients import recipient_dir
from evidence.stops import StopDeferral
from evidence.workspace import Case, Recorder

BATCH_EVENTS = 1000
# Near the end of a run a batch is committed once it holds as many inputs as are still to
# come, so batches halve down to this size: the last commit, which nothing overlaps, is short.
LAST_BATCH_EVENTS = 50
WORKERS = 2
# Inputs stored at a time by threads: enough that the workers never wait for a commit.
FILES_IN_FLIGHT = 64
# From this many inputs on, worker processes store them, a few per task.
PROCESS_MIN_FILES = 64
FILES_PER_TASK = 32
# A worker asks the kernel to read this many of its chunks ahead of the one it stores.
READ_AHEAD_CHUNKS = 2
WORKER_NICENESS = 5
_EMPTY_REASON = "empty file (0 bytes); there is nothing to preserve"
# How the key files this toolkit writes begin: a signing key's (``save_signer``) or a recipient
# key's (``save_recipient``) name line, then a ``Public-Key:`` line, then the encrypted PEM.
_SIGNING_KEY_HEAD = KEY_NAME_HEADER.encode()
_RECIPIENT_KEY_HEAD = RECIPIENT_NAME_HEADER.encode()
_PUBLIC_KEY_HEAD = PUBLIC_KEY_HEADER.encode()
# Enough for both header lines (a name is at most 64 characters) and the PEM's first line.
_KEY_HEAD_BYTES = 1024
# A testimony document is text (YAML, or JSON that libmagic may name as such) no larger than
# `testimony add` reads, and holds both of these words; only such a file is parsed.
_DOCUMENT_MIMES = frozenset({"application/json", "application/x-yaml", "application/yaml"})
_TESTIMONY_WORDS = (b"witness_code", b"identity")
_UNPARSED_DETAIL = "it is not valid YAML or JSON, but has a witness_code and an identity block"
# On Windows st_ctime is the creation time, which a copy over an existing file keeps: every
# file sighted before is read again there.
_CTIME_IS_CHANGE_TIME = sys.platform != "win32"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The last sighting of a path: sha256, size, mtime_ns (as recorded) and its event's time. Plain
# tuples: a rerun on a large case reads one per file of the case.
_Sighting = tuple[str, int, str, str]
# Worker processes are forked: they start at once, with everything imported. Elsewhere than
# Linux (fork is unsafe on macOS), threads store every input.
_FORK: BaseContext | None = (
    multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None
)


@dataclass(frozen=True)
class IngestedFile:
    """One input and what became of it: ingested, duplicate (a second sighting) or skipped."""

    status: str
    sha256: str
    size: int
    path: str
    seq: int | None
    mime: str = ""


@dataclass(frozen=True)
class RefusedInput:
    """An input that was not ingested, with the reason."""

    path: str
    code: str
    reason: str


@dataclass
class IngestReport:
    """The outcome of one ingest run.

    ``symlinks`` holds the links this run recorded, ``symlinks_already_recorded`` the links met
    that the case already held with the same target (recorded by an earlier run, or met twice
    in this one); each is the link's path as shown.
    """

    files: list[IngestedFile] = field(default_factory=list)
    refused: list[RefusedInput] = field(default_factory=list)
    symlinks: list[str] = field(default_factory=list)
    symlinks_already_recorded: list[str] = field(default_factory=list)
    checkpoint: bytes | None = None

    def count(self, status: str) -> int:
        """How many inputs ended with ``status``."""
        return sum(1 for f in self.files if f.status == status)

    @property
    def ok(self) -> bool:
        """True when no input was refused."""
        return not self.refused

    def as_json(self) -> dict[str, Any]:
        """A machine-readable summary for ``--json``."""
        return {
            "ingested": self.count("ingested"),
            "duplicates": self.count("duplicate"),
            "skipped": self.count("skipped"),
            "refused": [{"path": r.path, "code": r.code, "reason": r.reason} for r in self.refused],
            "symlinks": self.symlinks,
            "symlinks_already_recorded": self.symlinks_already_recorded,
            "files": [
                {
                    "status": f.status,
                    "sha256": f.sha256,
                    "size": f.size,
                    "path": f.path,
                    "seq": f.seq,
                    "mime": f.mime,
                }
                for f in self.files
            ],
            "checkpoint": self.checkpoint.decode() if self.checkpoint else None,
        }


@dataclass(frozen=True)
class _Stored:
    candidate: Candidate
    obj: StoredObject
    mime: str
    metadata: dict[str, Any]


def path_key(raw_path: bytes) -> str:
    """A fixed-size key for an absolute path (raw bytes), used to recognise a rerun."""
    return hashlib.sha256(raw_path).hexdigest()


def ingest(
    case: Case,
    signer: Signer,
    paths: Sequence[Path],
    *,
    options: ItemOptions,
    recursive: bool = False,
    follow_symlinks: bool = False,
    progress: Progress | None = None,
    derivation: dict[str, Any] | None = None,
    private_keys: Sequence[Path] = (),
) -> IngestReport:
    """Ingest ``paths`` into ``case``; see the module docstring for the guarantees.

    ``private_keys`` names key files kept elsewhere than in the key folders (the ``--key`` of
    the command): like those, they are refused if met.
    """
    report = IngestReport()
    # A store folder that is missing, a file, a link or read-only stops the run here, before
    # any input is read or any event recorded.
    case.objects.check_writable()
    case.objects.remove_stale_temp()
    # Read before anything is recorded: a sighting whose event time is later than this was
    # stamped by a clock that was ahead, and cannot tell that a file is unchanged since.
    started_ns = time.time_ns()
    seen = _known_sightings(case)
    # Metadata is extracted for content the case does not know yet. Deciding by the catalog,
    # not by whether the object file is new, keeps the metadata of a file whose object an
    # interrupted run stored without logging it.
    known_items = frozenset(row[0] for row in case.db.execute("SELECT sha256 FROM items"))
    case_keys = case_key_material(case)
    links: list[SymlinkRecord] = []
    # The scan opens nothing: the workers open every file anyway, and refuse one they cannot
    # read with the same reason as a scan would.
    scanned = scan_inputs(
        list(paths),
        recursive=recursive,
        follow_symlinks=follow_symlinks,
        probe=False,
        excluded=never_ingested(case, private_keys),
    )
    # Storing starts while the scan goes on (see _Storage); events are recorded once it is over.
    # Held from before the workers are forked until they are stopped: another ingest's
    # clean-up, even in another pid namespace, then leaves this run's temporary files alone.
    with case.objects.hold_temp_lock(), _Storage(case, known_items, case_keys) as storage:
        for entry in scanned:
            if isinstance(entry, Refusal):
                code = str(entry.reason_code)
                report.refused.append(RefusedInput(entry.display, code, entry.reason))
            elif isinstance(entry, SymlinkRecord):
                links.append(entry)
            elif not _skipped_as_seen(entry, seen, started_ns, report):
                storage.add(entry)
        if progress is not None:
            progress.start(storage.count, storage.size)
        pending: list[_Stored] = []
        base = _option_data(options)
        to_come = storage.count
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="flush") as flusher:
            stored = storage.outcomes()
            try:
                for cand, outcome in stored:
                    to_come -= 1
                    if outcome.obj is None:
                        refused = RefusedInput(cand.display, outcome.code, outcome.reason)
                        report.refused.append(refused)
                    else:
                        pending.append(_Stored(cand, outcome.obj, outcome.mime, outcome.metadata))
                    if progress is not None:
                        progress.advance(1, cand.size)
                    if len(pending) >= min(BATCH_EVENTS, max(to_come, LAST_BATCH_EVENTS)):
                        _commit(case, signer, pending, base, derivation, report, flusher)
                        pending.clear()
            finally:
                stored.close()
            _commit(case, signer, pending, base, derivation, report, flusher)
    _record_links(case, signer, links, report)
    if any(f.seq is not None for f in report.files) or report.symlinks:
        report.checkpoint = case.checkpoint(signer)
    return report


def never_ingested(case: Case, private_keys: Sequence[Path] = ()) -> list[Excluded]:
    """What an ingest into ``case`` refuses whatever its inputs.

    The case's own folder: its catalog, log and objects change with every run, so ingesting
    them would add a new item each time. The investigator's key folders (signing and recipient
    keys): private keys must never leave in a bundle. Each key file in them, the key named by
    ``EVIDENCE_KEY`` and ``private_keys`` are also refused as files, wherever they are met
    (through a hard or a symbolic link, say). Paths that do not exist exclude nothing.

    A copy of a private key of the case elsewhere is refused too, by its content, when it is
    stored (see :func:`case_key_material`).
    """
    excluded = [Excluded(case.root, Reason.CASE_FOLDER)]
    try:
        folders = [key_dir(), recipient_dir()]
    except RuntimeError:
        folders = []  # no EVIDENCE_HOME and no home folder: no key folder there either
    for folder in folders:
        excluded.append(Excluded(folder, Reason.KEY_FOLDER))
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            excluded += [Excluded(Path(e.path), Reason.PRIVATE_KEY) for e in entries if e.is_file()]
    named = os.environ.get(KEY_ENV)
    keys = [*private_keys, Path(named)] if named else list(private_keys)
    excluded += [Excluded(key, Reason.PRIVATE_KEY) for key in keys]
    return excluded


def case_key_material(case: Case) -> frozenset[bytes]:
    """The public keys of ``case`` whose private key files an ingest refuses wherever they are.

    Every signing key ever enrolled (revoked ones too) and every recipient, each as its kind
    (``ed25519:`` or ``x25519:``) followed by the raw public key. A key file names its public
    key in a header line readable without the passphrase (:func:`key_file_public`).
    """
    material: set[bytes] = set()
    for (verifier,) in case.db.execute("SELECT verifier FROM keys"):
        with contextlib.suppress(InputError, TypeError, AttributeError):
            material.add(b"ed25519:" + VerifierKey.from_note_text(verifier).public_key)
    for (text,) in case.db.execute("SELECT public_key FROM recipients"):
        with contextlib.suppress(InputError, TypeError, AttributeError):
            material.add(b"x25519:" + RecipientPublicKey.from_text(text).public_key)
    return frozenset(material)


def key_file_public(head: bytes) -> bytes | None:
    """The public key named by a key file of this toolkit that begins with ``head``, in the
    form of :func:`case_key_material`; ``None`` for anything else.

    A key file starts with a name line (``Key-Name:`` for a signing key, ``Recipient-Name:``
    for a recipient key), then ``Public-Key: <public key text>``, then an encrypted PEM block:
    no passphrase is needed to tell whose key it is.
    """
    if head.startswith(_SIGNING_KEY_HEAD):
        kind = b"ed25519:"
    elif head.startswith(_RECIPIENT_KEY_HEAD):
        kind = b"x25519:"
    else:
        return None
    lines = head.split(b"\n", 3)
    if len(lines) < 4 or not lines[1].startswith(_PUBLIC_KEY_HEAD):
        return None
    pem = lines[2].strip()
    if not (pem.startswith(b"-----BEGIN ") and pem.endswith(b"PRIVATE KEY-----")):
        return None
    try:
        text = lines[1][len(_PUBLIC_KEY_HEAD) :].decode("ascii").strip()
        if kind == b"ed25519:":
            return kind + VerifierKey.from_note_text(text).public_key
        return kind + RecipientPublicKey.from_text(text).public_key
    except (UnicodeDecodeError, InputError):
        return None


def _is_case_key(path: Path, mime: str, size: int, case_keys: AbstractSet[bytes]) -> bool:
    """Whether the stored copy at ``path`` is a private key file of the case.

    Only a small text file (libmagic classifies key files as text) is opened again, for its
    first kilobyte, from the page cache the copy was just written to; only one that begins
    as a key file is parsed further.
    """
    if not case_keys or size > MAX_SECRET_FILE or not mime.startswith("text/"):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        head = os.read(fd, _KEY_HEAD_BYTES)
    except OSError:
        return False
    finally:
        os.close(fd)
    if not head.startswith((_SIGNING_KEY_HEAD, _RECIPIENT_KEY_HEAD)):
        return False
    return key_file_public(head) in case_keys


def _testimony_identity(path: Path, mime: str, size: int) -> HeldIdentity:
    """Whether the stored copy at ``path`` is a testimony document holding identity values
    (see :func:`evidence.loaders.held_identity`), which must be recorded with ``testimony add``
    so that the identity is sealed, never kept in clear as an item.

    Only a text file that `testimony add` would read (at most ``MAX_DOCUMENT_BYTES``) is looked
    at, from the page cache the copy was just written to, and only one holding the words
    ``witness_code`` and ``identity`` is parsed. A document that spells those keys with escapes
    (``"identit\\u0079"``) is not recognised.
    """
    if size > MAX_DOCUMENT_BYTES or not (mime.startswith("text/") or mime in _DOCUMENT_MIMES):
        return "none"
    try:
        with (
            path.open("rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view,
        ):
            if any(view.find(word) < 0 for word in _TESTIMONY_WORDS):
                return "none"
            raw = view[:]
    except (OSError, ValueError):
        return "none"  # a copy just written that cannot be read back (a failing disk): as for keys
    return held_identity(raw)


def _skipped_as_seen(
    cand: Candidate, seen: dict[str, _Sighting], started_ns: int, report: IngestReport
) -> bool:
    """Report ``cand`` as skipped if it was sighted at the same path, size and modification
    time before, and has not changed since: see the module docstring."""
    prior = seen.get(path_key(_abs_raw(cand)))
    if prior is None or not _CTIME_IS_CHANGE_TIME:
        return False
    sha256, size, mtime_ns, event_time = prior
    if size != cand.size or mtime_ns != str(cand.mtime_ns):
        return False
    recorded_ns = _event_time_ns(event_time)
    if recorded_ns is None or recorded_ns > started_ns:
        return False
    if cand.ctime_ns + _ctime_allowance(cand.ctime_ns) >= recorded_ns:
        return False
    report.files.append(IngestedFile("skipped", sha256, cand.size, cand.display, None))
    return True


def _ctime_allowance(ctime_ns: int) -> int:
    """How much later than its ctime a file may have changed.

    File systems that keep times in whole seconds (ext3, HFS+; FAT's in two seconds) or in
    hundredths (exFAT) round the time of a change down, so a change made just after an event
    could be stamped before it. A finer stamp is taken as it is: the kernel may stamp it up to
    a clock tick early, a narrower gap than the one that remains between reading a file and
    recording its event (a change in either that keeps size and mtime goes unseen).
    """
    if ctime_ns % 1_000_000_000 == 0:
        return 2_000_000_000
    if ctime_ns % 10_000_000 == 0:
        return 10_000_000
    return 0


def _event_time_ns(text: str) -> int | None:
    """An event time (RFC 3339 UTC, at most microseconds) in nanoseconds since the epoch,
    exactly; ``None`` for a time that is not of that form."""
    try:
        moment = parse_event_time(text)
    except ValueError:
        return None
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


@dataclass(frozen=True)
class _Outcome:
    """What became of one input in a worker: stored (``obj``) or refused (``code``, ``reason``).

    Crosses from worker processes by pickling, so it holds only plain values. An outcome that
    crossed carries the staged copy's temporary file in ``staged`` rather than in ``obj``.
    """

    obj: StoredObject | None
    mime: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    code: str = ""
    reason: str = ""
    staged: str | None = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Flat plain values pickle several times faster than the dataclasses and the path.
        obj = self.obj
        if obj is None:
            return _refused_outcome, (self.code, self.reason)
        staged = None if obj.staged is None else os.fspath(obj.staged)
        fields = (obj.sha256, obj.sha512, obj.size, obj.created, staged)
        return _stored_outcome, (*fields, self.mime, self.metadata)

    def hand_to(self, objects: ObjectStore) -> None:
        """Give the staged copy to ``objects``: it flushes it before any event names it."""
        if self.obj is None:
            return
        if self.staged is not None:
            objects.adopt_staged(self.staged, self.obj.sha256)
        else:
            objects.adopt(self.obj)


def _refused_outcome(code: str, reason: str) -> _Outcome:
    return _Outcome(None, code=code, reason=reason)


def _stored_outcome(
    sha256: str,
    sha512: str,
    size: int,
    created: bool,
    staged: str | None,
    mime: str,
    metadata: dict[str, Any],
) -> _Outcome:
    obj = StoredObject(sha256, sha512, size, created)
    return _Outcome(obj, mime, metadata, staged=staged)


class _Storage:
    """Stores the inputs the scan gives it; :meth:`outcomes` yields them in input order.

    Many files are stored by two worker processes: storing a small file is a dozen system
    calls, a libmagic classification and some Python around them, and threads of one process
    would spend most of their time handing the interpreter lock to each other. The workers
    start as soon as the scan has found enough inputs and are given chunks of them as it goes
    on, so the storing of a large tree does not wait for its scan. A few files (each large, as
    a rule) are stored by two threads once the scan is over; they hash in parallel as well and
    keep the memory of one process.
    """

    def __init__(
        self, case: Case, known_items: frozenset[str], case_keys: frozenset[bytes]
    ) -> None:
        self._case = case
        self._known_items = known_items
        self._case_keys = case_keys
        self._held: list[Candidate] = []  # not given to a worker yet
        self._chunks: list[list[Candidate]] = []  # given to the workers, in order
        self._workers: _Workers | None = None
        self._finished = False
        self.count = 0  # inputs taken
        self.size = 0  # their bytes, as the scan saw them

    def __enter__(self) -> _Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._workers is not None:
            self._workers.stop(self._finished)

    def add(self, cand: Candidate) -> None:
        """Take the next input (in input order)."""
        self.count += 1
        self.size += cand.size
        self._held.append(cand)
        if self._workers is None:
            if len(self._held) < PROCESS_MIN_FILES or _FORK is None:
                return
            # Forked while this process runs no other thread (the flusher starts later).
            self._workers = _Workers(_FORK, self._case.objects, self._known_items, self._case_keys)
        while len(self._held) >= FILES_PER_TASK:
            self._give(self._workers, self._held[:FILES_PER_TASK])
            del self._held[:FILES_PER_TASK]

    def _give(self, workers: _Workers, chunk: list[Candidate]) -> None:
        workers.give([cand.raw_path for cand in chunk])
        self._chunks.append(chunk)

    def outcomes(self) -> Generator[tuple[Candidate, _Outcome], None, None]:
        """Every input taken, with its outcome, in input order; call once, after the last add."""
        workers = self._workers
        if workers is None:
            yield from _store_in_threads(self._case, self._held, self._known_items, self._case_keys)
            return
        if self._held:
            self._give(workers, self._held)
            self._held = []
        workers.no_more()
        for number, chunk in enumerate(self._chunks):
            outcomes = workers.outcomes(number)
            for outcome in outcomes:
                outcome.hand_to(self._case.objects)
            yield from zip(chunk, outcomes, strict=True)
        self._finished = True


def _store_in_threads(
    case: Case,
    todo: list[Candidate],
    known_items: AbstractSet[str],
    case_keys: AbstractSet[bytes],
) -> Iterator[tuple[Candidate, _Outcome]]:
    local = threading.local()

    def store(path: Path) -> _Outcome:
        private: ObjectStore | None = getattr(local, "store", None)
        if private is None:
            private = local.store = ObjectStore(case.objects.root)
        outcome = _store_one(private, path, known_items, case_keys)
        outcome.hand_to(case.objects)
        return outcome

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="ingest") as pool:
        window: deque[tuple[Candidate, Future[_Outcome]]] = deque()
        try:
            for cand in todo:
                window.append((cand, pool.submit(store, cand.path)))
                if len(window) >= FILES_IN_FLIGHT:
                    done, future = window.popleft()
                    yield done, future.result()
            while window:
                done, future = window.popleft()
                yield done, future.result()
        finally:
            for _, future in window:
                future.cancel()


class _Workers:
    """Forked worker processes, each storing every ``WORKERS``-th chunk of the inputs in order.

    A worker receives its chunks through a pipe of its own (a thread of the worker takes them
    as they come, so giving a chunk never waits for a worker that is busy sending) and writes
    its outcomes, a message per chunk, to another; this process reads the outcome pipes in
    turn, which gives the chunks in input order. No helper thread runs here, so the process
    that signs and records the events shares its interpreter with nothing. A full outcome pipe
    holds a worker back: it never runs more than a pipe's worth ahead.
    """

    def __init__(
        self,
        context: BaseContext,
        objects: ObjectStore,
        known_items: frozenset[str],
        case_keys: frozenset[bytes],
    ) -> None:
        self._tasks: list[Connection] = []
        self._pipes: list[Connection] = []
        self._processes: list[BaseProcess] = []
        self._given = 0
        try:
            for number in range(WORKERS):
                task_reader, task_writer = context.Pipe(duplex=False)
                reader, writer = context.Pipe(duplex=False)
                _widen_pipe(writer)
                _widen_pipe(task_writer)
                # The ends a worker must not keep: with this process's end of its own task pipe
                # open, it would never see that pipe close if this process died.
                foreign = [task_writer, reader, *self._tasks, *self._pipes]
                process = context.Process(  # type: ignore[attr-defined]
                    target=_worker_main,
                    args=(task_reader, writer, foreign, str(objects.root), os.getpid()),
                    kwargs={"known_items": known_items, "case_keys": case_keys},
                    name=f"ingest-worker-{number}",
                    daemon=True,
                )
                process.start()
                task_reader.close()
                writer.close()
                self._tasks.append(task_writer)
                self._pipes.append(reader)
                self._processes.append(process)
        except BaseException:
            self.stop()
            raise

    def give(self, paths: list[bytes]) -> None:
        """Give the next chunk of inputs to the worker whose turn it is."""
        try:
            self._tasks[self._given % WORKERS].send(paths)
        except OSError:
            raise _worker_stopped() from None
        self._given += 1

    def no_more(self) -> None:
        """Tell every worker that all chunks were given."""
        try:
            for tasks in self._tasks:
                tasks.send(None)
        except OSError:
            raise _worker_stopped() from None

    def outcomes(self, number: int) -> list[_Outcome]:
        """The outcomes of chunk ``number``; chunks must be asked for in order."""
        try:
            kind, payload = self._pipes[number % WORKERS].recv()
        except (EOFError, OSError):
            raise _worker_stopped() from None
        if kind == "problem":
            message, hint = payload
            raise EnvironmentProblem(message, hint=hint)
        outcomes: list[_Outcome] = payload
        return outcomes

    def stop(self, finished: bool = False) -> None:
        """Let workers that sent everything exit; stop the others (an error or an interrupt)."""
        for process in self._processes:
            if not finished:
                process.terminate()
            process.join()
        for pipe in [*self._tasks, *self._pipes]:
            pipe.close()


def _worker_stopped() -> EnvironmentProblem:
    return EnvironmentProblem(
        "a worker process stopped while storing files (killed, or out of memory)",
        hint="re-run the same command: what was recorded is kept, the rest is stored",
    )


def _widen_pipe(connection: Connection) -> None:
    """Let a worker run further ahead (Linux: 1 MiB pipes instead of 64 KiB); a hint only."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        fcntl.fcntl(connection.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)


def _worker_main(
    tasks: Connection,
    pipe: Connection,
    foreign: list[Connection],
    root: str,
    owner_pid: int,
    *,
    known_items: frozenset[str],
    case_keys: frozenset[bytes],
) -> None:
    """Worker process: store each chunk of inputs it is given, in order, and send its outcomes.

    Temporary files carry the pid of the process that will flush them, so that no other ingest
    takes them for a crash's. Interrupts are left to that process, which stops the workers.
    """
    for end in foreign:
        end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent signs and records every event, one after the other: it is the one that must
    # never wait for a core. The workers take what it leaves.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    store = ObjectStore(Path(root), owner_pid=owner_pid)
    inbox = _Inbox(tasks, owner_pid)
    try:
        while (paths := inbox.take()) is not None:
            # The kernel reads the next chunks while this one is stored (a cold cache otherwise
            # makes the worker wait for each file in turn).
            for chunk in inbox.not_hinted(READ_AHEAD_CHUNKS):
                for path in chunk:
                    read_ahead(path, source=True)
            try:
                outcomes = [_store_one(store, path, known_items, case_keys) for path in paths]
            except EnvironmentProblem as exc:
                pipe.send(("problem", (exc.message, exc.hint)))
                return
            pipe.send(("stored", outcomes))
    except BrokenPipeError:
        return  # the parent is gone; what was staged is its leftover, cleared by the next run
    finally:
        pipe.close()


class _Inbox:
    """A worker's chunks of inputs, received by a thread as soon as they are sent."""

    def __init__(self, tasks: Connection, owner_pid: int) -> None:
        # The chunk being stored first (once taken), then the chunks received after it.
        self._chunks: deque[list[bytes]] = deque()
        self._taken = False
        self._hinted = 0  # how many chunks at the front were returned by not_hinted
        self._ended = False
        self._ready = threading.Condition()
        receiver = threading.Thread(
            target=self._receive, args=(tasks, owner_pid), name="inbox", daemon=True
        )
        receiver.start()

    def _receive(self, tasks: Connection, owner_pid: int) -> None:
        try:
            while True:
                # Checked every second: a parent killed outright never says there is no more.
                if not tasks.poll(1.0):
                    if os.getppid() != owner_pid:
                        return
                    continue
                paths: list[bytes] | None = tasks.recv()
                if paths is None:
                    return
                with self._ready:
                    self._chunks.append(paths)
                    self._ready.notify()
        except (EOFError, OSError):
            return
        finally:
            tasks.close()
            with self._ready:
                self._ended = True
                self._ready.notify()

    def take(self) -> list[bytes] | None:
        """The next chunk, once received; ``None`` when there is no more."""
        with self._ready:
            if self._taken:
                self._chunks.popleft()
                self._hinted = max(self._hinted - 1, 0)
            while not self._chunks and not self._ended:
                self._ready.wait()
            self._taken = bool(self._chunks)
            return self._chunks[0] if self._chunks else None

    def not_hinted(self, ahead: int) -> list[list[bytes]]:
        """Of the chunk taken and the ``ahead`` chunks after it, those received and not yet
        returned here: each chunk is returned once, to be read ahead once."""
        with self._ready:
            upto = min(1 + ahead, len(self._chunks))
            fresh = list(itertools.islice(self._chunks, self._hinted, upto))
            self._hinted = max(self._hinted, upto)
        return fresh


def _store_one(
    store: ObjectStore,
    path: Path | bytes,
    known_items: AbstractSet[str],
    case_keys: AbstractSet[bytes] = frozenset(),
) -> _Outcome:
    """Stage one input on ``store`` and hand the copy over; classify it and read its metadata.

    A private key file of the case (one of ``case_keys``) is refused and its copy dropped.
    """
    raw = os.fsencode(path)
    try:
        obj = store.put_file(path, defer=True)
    except SourceError as exc:
        return _Outcome(None, code=str(exc.reason_code), reason=exc.reason)
    except OSError as exc:
        error = source_error(raw, exc)
        return _Outcome(None, code=str(error.reason_code), reason=error.reason)
    store.hand_over(obj)
    if obj.size == 0:
        # Emptied after the scan. An empty object holds nothing to preserve and no event will
        # name it; verify would report it as unexpected, so it is not kept.
        store.discard(obj)
        return _Outcome(None, code=str(Reason.EMPTY), reason=_EMPTY_REASON)
    stored_path = obj.staged or store.path_for(obj.sha256)
    # Classified from the copy, not from the bytes just read: libmagic reads a file through
    # its descriptor beyond the start (rules counted from the end, an ELF's dynamic section,
    # an OLE2 directory), so a buffer can give another type than `file` gives for the object.
    mime = detect_mime(stored_path)
    if _is_case_key(stored_path, mime, obj.size, case_keys):
        store.discard(obj)
        refused = SourceError(raw, Reason.CASE_PRIVATE_KEY)
        return _Outcome(None, code=str(refused.reason_code), reason=refused.reason)
    held = _testimony_identity(stored_path, mime, obj.size)
    if held != "none":
        store.discard(obj)
        detail = _UNPARSED_DETAIL if held == "unparsed" else ""
        refused = SourceError(raw, Reason.TESTIMONY_IDENTITY, detail)
        return _Outcome(None, code=str(refused.reason_code), reason=refused.reason)
    metadata = {} if obj.sha256 in known_items else extract_metadata(stored_path, mime)
    return _Outcome(obj, mime, metadata)


def _commit(
    case: Case,
    signer: Signer,
    stored: Iterable[_Stored],
    base: dict[str, Any],
    derivation: dict[str, Any] | None,
    report: IngestReport,
    flusher: ThreadPoolExecutor,
) -> None:
    batch = list(stored)
    if not batch:
        return
    # The flush (two file-system syncs and the links) runs while the events are signed; the
    # transaction commits only after it: objects are durable under their names before any
    # event that names them is. Once the flush has begun, a stop (Ctrl-C, SIGTERM, SIGHUP)
    # waits for the commit: stopping then would leave named objects that no event records,
    # which only a re-run with the same sources could record (SPEC 9). A stop while waiting
    # for the catalog's lock still stops at once: the copies are only staged then, and are
    # cleared as a stopped run's temporary files.
    flushed: Future[None] | None = None
    with StopDeferral() as deferral:
        try:
            with case.transaction() as rec:
                deferral.hold()
                flushed = flusher.submit(case.objects.flush)
                planned = _plan(rec, batch, base, derivation)
                drafts = [draft for _, draft in planned if draft is not None]
                seqs = iter([appended.seq for appended in rec.append_many(drafts, signer)])
                for file, draft in planned:
                    report.files.append(file if draft is None else replace(file, seq=next(seqs)))
                flushed.result()
        finally:
            # Never leave a flush running behind a failed transaction.
            if flushed is not None:
                wait([flushed])


def _plan(
    rec: Recorder,
    batch: list[_Stored],
    base: dict[str, Any],
    derivation: dict[str, Any] | None,
) -> list[tuple[IngestedFile, EventDraft | None]]:
    """What to record for each stored input, in order: its report line and its event (none
    for an input already sighted at the same path). Reads inside the write transaction, so
    that a concurrent ingest of the same content is seen."""
    known = _items_among(rec, {item.obj.sha256 for item in batch})
    sighted: set[tuple[str, str]] = set()
    planned: list[tuple[IngestedFile, EventDraft | None]] = []
    for item in batch:
        cand, obj = item.candidate, item.obj
        key = path_key(_abs_raw(cand))
        given = cand.given_path
        sighting = {
            "name": display_name(os.path.basename(given)),
            "name_b64": base64.b64encode(os.path.basename(given)).decode(),
            "path": cand.display,
            "path_b64": base64.b64encode(given).decode(),
            "path_key": key,
            "size": str(obj.size),
            "mtime_ns": str(cand.mtime_ns),
        }
        if cand.reached_as is not None:
            # Reached through a followed symbolic link: recorded at the path as given (SPEC
            # 5), with the file actually read beside it.
            sighting["resolved_path"] = display_name(cand.raw_path)
            sighting["resolved_path_b64"] = base64.b64encode(cand.raw_path).decode()
        if obj.sha256 in known:
            if (obj.sha256, key) in sighted or _sighted_before(rec, obj.sha256, key):
                skipped = IngestedFile(
                    "skipped", obj.sha256, obj.size, cand.display, None, item.mime
                )
                planned.append((skipped, None))
                continue
            sighted.add((obj.sha256, key))
            draft = EventDraft(action="item.sighted", subject=obj.sha256, data=sighting | base)
            status = "duplicate"
        else:
            known.add(obj.sha256)
            sighted.add((obj.sha256, key))
            data = (
                sighting
                | base
                | {
                    "sha512": obj.sha512,
                    "mime": item.mime,
                    "kind": "file",
                    "metadata": item.metadata,
                }
            )
            action = "item.ingested"
            if derivation is not None:
                data["derived_from"] = derivation["derived_from"]
                data["derivation"] = {k: v for k, v in derivation.items() if k != "derived_from"}
                action = "item.derived"
            draft = EventDraft(action=action, subject=obj.sha256, data=data)
            status = "ingested"
        planned.append(
            (IngestedFile(status, obj.sha256, obj.size, cand.display, None, item.mime), draft)
        )
    return planned


def _items_among(rec: Recorder, shas: set[str]) -> set[str]:
    """Which of ``shas`` the catalog holds as items."""
    wanted = sorted(shas)
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        marks = ", ".join("?" for _ in part)
        rows = rec.db.execute(
            f"SELECT sha256 FROM items WHERE sha256 IN ({marks})",  # noqa: S608 - placeholders
            part,
        ).fetchall()
        found.update(row[0] for row in rows)
    return found


def _sighted_before(rec: Recorder, sha256: str, key: str) -> bool:
    row = rec.db.execute(
        "SELECT 1 FROM sightings WHERE sha256 = ? AND path_key = ?", [sha256, key]
    ).fetchone()
    return row is not None


def _record_links(
    case: Case, signer: Signer, links: Sequence[SymlinkRecord], report: IngestReport
) -> None:
    """Record each link the case does not hold yet at its absolute path with the same target;
    report the others as already recorded."""
    if not links:
        return
    with case.transaction() as rec:
        # The last target recorded at each path, read once inside the write transaction (so a
        # concurrent ingest's records are seen): the symlinks table has no index on path_key,
        # and a lookup per link would scan it once per link. The catalog keeps the target as
        # shown, which tells raw targets apart exactly (display_name is one-to-one); a link
        # changed back to an earlier target has still changed since it was last recorded.
        recorded: dict[str, str] = {
            row[0]: row[1]
            for row in rec.db.execute("SELECT path_key, target FROM symlinks ORDER BY seq")
        }
        for link in links:
            raw_abs = os.path.abspath(link.raw_path)
            key = path_key(raw_abs)
            if recorded.get(key) == link.target_display:
                report.symlinks_already_recorded.append(link.display)
                continue
            recorded[key] = link.target_display
            report.symlinks.append(link.display)
            rec.append(
                EventDraft(
                    action="symlink.recorded",
                    subject=f"path:{key}",
                    data={
                        "path": link.display,
                        "path_b64": base64.b64encode(link.raw_path).decode(),
                        "path_key": key,
                        "target": link.target_display,
                        "target_b64": base64.b64encode(link.target).decode(),
                    },
                ),
                signer,
            )


def _abs_raw(cand: Candidate) -> bytes:
    return cand.absolute


def _known_sightings(case: Case) -> dict[str, _Sighting]:
    """The last sighting of each path, by path key."""
    # The time is the log's own (that of the signed event), not the catalog's copy of it.
    rows = case.db.execute(
        "SELECT s.path_key, s.sha256, s.size, s.mtime_ns, l.time "
        "FROM sightings AS s JOIN log AS l ON l.seq = s.seq ORDER BY s.seq"
    ).fetchall()
    return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}


def _option_data(options: ItemOptions) -> dict[str, Any]:
    data = options.model_dump(mode="json", exclude_none=True)
    data["tags"] = sorted(data.get("tags", []))
    return data
