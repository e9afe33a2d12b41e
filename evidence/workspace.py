"""The case workspace: one directory holding the case file, the catalog and the content store.

Layout (SPEC section 3)::

    case.toml            case id, title, origin line, ERN prefix, hash algorithms
    catalog.sqlite       custody log (append-only tables) and the catalog projection
    objects/sha256/..    content-addressed, read-only originals
    objects/tmp/         temporary files of writes in progress (never under an object name)

Every change of state goes through :meth:`Case.record`, which appends signed events and applies
their projection to the catalog in one SQLite transaction, so the catalog can never hold a row
that the log does not explain.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.metadata
import json
import os
import re
import secrets
import shutil
import sqlite3
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from chain_of_custody import (
    AppendedEvent,
    EventDraft,
    LogStore,
    LogTransaction,
    Signer,
    open_database,
)
from chain_of_custody.secretfile import fsync_directory
from chain_of_custody.store import CHANGED_CATALOG_HINT
from evidence import catalog
from evidence.claims import Claim, abandoned, claim_new
from evidence.errors import CaseNotFound, EnvironmentProblem, InputError
from evidence.objects import ObjectStore
from evidence.stops import deferred_stop

CASE_FILE = "case.toml"
CATALOG_FILE = "catalog.sqlite"
OBJECTS_DIR = "objects"
# The case format this toolkit writes and reads; a case of a later format is refused, since
# what a newer toolkit added to it could be missed here, or broken by a write.
FORMAT_VERSION = 1
DISTRIBUTION = "evidence-locker"

_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ERN_PREFIX = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")


class CaseConfig(BaseModel):
    """The case file: what identifies the case and how its log names itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = Field(default=FORMAT_VERSION, strict=True, ge=1, le=FORMAT_VERSION)
    case_id: str
    title: str = Field(min_length=1, max_length=500)
    origin: str
    ern_prefix: str
    organisation: str = ""
    hash_algorithms: tuple[str, ...] = ("sha256", "sha512")
    created: str

    @field_validator("case_id")
    @classmethod
    def _case_id(cls, value: str) -> str:
        if not _CASE_ID.match(value):
            raise ValueError(
                "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        return value

    @field_validator("ern_prefix")
    @classmethod
    def _ern_prefix(cls, value: str) -> str:
        if not _ERN_PREFIX.match(value):
            raise ValueError("use 2-16 capital letters or digits, starting with a letter")
        return value

    @field_validator("origin")
    @classmethod
    def _origin(cls, value: str) -> str:
        if not value or any(ch.isspace() for ch in value) or not value.isprintable():
            raise ValueError("the checkpoint origin must be one printable word without spaces")
        return value

    def to_toml(self) -> str:
        """The case file text. JSON string escapes are valid TOML basic strings."""
        lines = ["# Evidence case file. Written by `evidence init`; do not edit by hand."]
        for key, value in self.model_dump().items():
            if isinstance(value, int):
                lines.append(f"{key} = {value}")
            elif isinstance(value, tuple | list):
                lines.append(f"{key} = [{', '.join(json.dumps(v) for v in value)}]")
            else:
                lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
        return "\n".join(lines) + "\n"


def toolkit_version() -> str:
    """The version of the installed toolkit, from its package metadata (``0.1.0``), or
    ``unknown`` in a source tree that was never installed."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def utc_now() -> datetime:
    """The current time in UTC; the one clock of the case layer."""
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, as events carry it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Case:
    """An open case: its config, catalog connection, custody log and content store."""

    root: Path
    config: CaseConfig
    db: sqlite_utils.Database
    log: LogStore
    objects: ObjectStore

    @property
    def catalog_path(self) -> Path:
        """The SQLite file holding the log and the catalog."""
        return self.root / CATALOG_FILE

    @property
    def read_only(self) -> bool:
        """Whether the case was opened for reading only (its catalog cannot be written):
        every command that reads works, every one that records is refused."""
        return self.log.read_only

    def require_writable(self) -> None:
        """Raise :class:`EnvironmentProblem` (naming the catalog, saying to copy the case to a
        writable place) if the case was opened for reading only; for commands that write
        anything, before they write the first byte."""
        self.log.require_writable()

    @contextmanager
    def transaction(self) -> Iterator[Recorder]:
        """One write transaction: events appended through it are projected in the same commit."""
        with self.log.transaction() as tx:
            yield Recorder(tx)

    def record(self, drafts: Sequence[EventDraft], signer: Signer) -> list[AppendedEvent]:
        """Append the drafts as signed events and project them, atomically."""
        with self.transaction() as rec:
            return [rec.append(draft, signer) for draft in drafts]

    def checkpoint(self, signer: Signer) -> bytes:
        """Sign (or return the stored) checkpoint of the log at its current size."""
        return self.log.checkpoint(signer)

    def close(self) -> None:
        """Close the catalog connection."""
        self.db.conn.close()


@dataclass
class Recorder:
    """Appends events inside an open transaction and applies their projection."""

    tx: LogTransaction

    @property
    def db(self) -> sqlite_utils.Database:
        """The connection of the transaction, for reads that decide what to record."""
        return self.tx.db

    def append(self, draft: EventDraft, signer: Signer) -> AppendedEvent:
        """Append one event and project it into the catalog."""
        appended = self.tx.append(draft, signer)
        catalog.project(self.tx.db, appended.event)
        return appended

    def append_many(self, drafts: Sequence[EventDraft], signer: Signer) -> list[AppendedEvent]:
        """Append the events in order and project them: what :meth:`append` does for each,
        with the log rows written together."""
        appended = self.tx.append_many(drafts, signer)
        for one in appended:
            catalog.project(self.tx.db, one.event)
        return appended


def init_case(
    directory: Path,
    *,
    case_id: str,
    title: str,
    signer: Signer,
    ern_prefix: str | None = None,
    origin: str | None = None,
    organisation: str = "",
    clock: Callable[[], datetime] = utc_now,
    before_placing: Callable[[], None] | None = None,
    after_placing: Callable[[], None] | None = None,
) -> Case:
    """Create a case in ``directory`` (new or empty) and enrol ``signer`` as its first key.

    All or nothing (SPEC sections 8, 9): the case is built in a hidden folder beside
    ``directory`` and renamed into place only when complete; a failure or a stop removes the
    build, and one left by a killed run is removed by the next. ``before_placing`` and
    ``after_placing`` run just before and after the rename (the command publishes the new key
    file before, and keeps it after); the stop signals are held from the rename to the end of
    ``after_placing``, so that a stop never comes between the two.
    """
    directory = Path(directory)
    try:
        taken = directory.exists() and (not directory.is_dir() or any(directory.iterdir()))
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot look into {directory}: {exc.strerror}",
            "choose a new directory for the case, or one you may read and write",
        ) from None
    if taken:
        raise _taken(directory)
    prefix = ern_prefix or _derived_ern_prefix(case_id)
    try:
        config = CaseConfig(
            case_id=case_id,
            title=title,
            origin=origin or f"evidence-locker/{case_id}",
            ern_prefix=prefix,
            organisation=organisation,
            created=format_time(clock()),
        )
    except ValidationError as exc:
        raise _init_problem(exc, prefix if ern_prefix is None else None, case_id) from None
    _remove_stale_builds(directory)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        build, held = claim_new(lambda: _new_build(directory))
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot create the case at {directory}: {exc.strerror}",
            "check that the parent directory exists and is writable",
        ) from None
    try:
        _build_case(build, config, signer, clock)
        if before_placing is not None:
            before_placing()
        # Ctrl-C, SIGTERM and SIGHUP wait while the case is placed and its key kept: a stop
        # between the two would leave a case whose key was removed again. One held comes
        # once the case is complete, saying so: running the command again would be refused.
        with deferred_stop() as stops:
            _place_build(build, directory)
            if after_placing is not None:
                after_placing()
            stops.completed(f"the case {case_id} was created, complete, at {directory}")
    except BaseException:
        # Gone already when it took its place; a build that did not is never left behind.
        shutil.rmtree(build, ignore_errors=True)
        raise
    finally:
        held.release()
    return _open(directory, config, clock)


# A case is built in a hidden folder beside its own, ``.<name>.evidence-init-<pid>-<random>``,
# and given its name only when complete.
_BUILD_MARK = ".evidence-init-"


def _build_prefix(directory: Path) -> str:
    return f".{directory.name}{_BUILD_MARK}"


def _new_build(directory: Path) -> Path:
    build = directory.parent / f"{_build_prefix(directory)}{os.getpid()}-{secrets.token_hex(6)}"
    build.mkdir(mode=0o755)
    return build


def _build_case(
    build: Path, config: CaseConfig, signer: Signer, clock: Callable[[], datetime]
) -> None:
    """Make the whole case in ``build``: case file, store, catalog with the key enrolled as
    the first event and the case created as the second, and the first checkpoint."""
    try:
        (build / OBJECTS_DIR).mkdir()
        _write_atomic(build / CASE_FILE, config.to_toml().encode())
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot create the case in {build.parent}: {exc.strerror}",
            "check that the parent directory is writable and has space",
        ) from None
    case = _open(build, config, clock)
    try:
        catalog.ensure_schema(case.db)
        verifier = signer.verifier
        with case.transaction() as rec:
            rec.append(
                EventDraft(
                    action="key.enrolled",
                    subject=verifier.key_id,
                    data={"verifier": verifier.to_note_text(), "role": "investigator"},
                ),
                signer,
            )
            rec.append(
                EventDraft(
                    action="case.created",
                    subject=config.case_id,
                    data={
                        "title": config.title,
                        "origin": config.origin,
                        "ern_prefix": config.ern_prefix,
                        "organisation": config.organisation,
                        "hash_algorithms": list(config.hash_algorithms),
                    },
                ),
                signer,
            )
        case.checkpoint(signer)
    finally:
        # Closed before the folder is renamed: the last connection folds the WAL back in.
        case.close()


def _place_build(build: Path, directory: Path) -> None:
    """Rename the finished ``build`` to ``directory``, durably. A missing ``directory`` is
    created by the rename, and an empty one replaced (``rename(2)`` replaces an empty folder);
    one that something was put in meanwhile is refused, never overwritten."""
    try:
        build.rename(directory)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            raise _taken(directory) from None
        raise EnvironmentProblem(
            f"cannot create the case at {directory}: {exc.strerror}",
            "check that the parent directory is writable, then run the command again",
        ) from None
    with contextlib.suppress(OSError):
        fsync_directory(directory.parent)


def _taken(directory: Path) -> InputError:
    return InputError(
        f"{directory} exists and is not an empty directory",
        "choose a new directory for the case; an existing case is never overwritten",
    )


def _stale_builds(directory: Path) -> list[tuple[Path, Claim]]:
    """The hidden build folders of ``directory`` left by runs that have ended (killed), each
    with this process's claim on it (:mod:`evidence.claims`), for the caller to release."""
    prefix = _build_prefix(directory)
    found = []
    with contextlib.suppress(OSError):
        for entry in directory.parent.iterdir():
            if entry.name.startswith(prefix):
                held = abandoned(entry, entry.name[len(prefix) :].split("-", 1)[0])
                if held is not None:
                    found.append((entry, held))
    return found


def _remove_stale_builds(directory: Path) -> None:
    for build, held in _stale_builds(directory):
        shutil.rmtree(build, ignore_errors=True)
        held.release()


def interrupted_init_keys(directory: Path) -> frozenset[str]:
    """The keys (their ids) that killed runs of `init` for ``directory`` enrolled in
    cases they built but never placed: a key file of such a key signs nothing that exists,
    so a new run of the same `init` may use it."""
    found: set[str] = set()
    for build, held in _stale_builds(directory):
        try:
            found.update(_enrolled_keys(build / CATALOG_FILE))
        finally:
            held.release()
    return frozenset(found)


def _enrolled_keys(path: Path) -> list[str]:
    """The keys the catalog at ``path`` enrolled; none if it cannot be read."""
    if not path.is_file():
        return []
    try:
        db = open_database(path, read_only=True)
    except (OSError, sqlite3.Error):
        return []
    try:
        rows = db.execute("SELECT subject FROM log WHERE action = 'key.enrolled'").fetchall()
    except sqlite3.Error:
        return []
    finally:
        db.conn.close()
    return [str(row[0]) for row in rows]


# The option of `evidence init` that gives each field of the case file.
_INIT_OPTIONS = {
    "case_id": "--case-id",
    "title": "--title",
    "ern_prefix": "--ern-prefix",
    "organisation": "--organisation",
}


def _init_problem(exc: ValidationError, derived_prefix: str | None, case_id: str) -> InputError:
    """The error of :func:`init_case` for the fields refused in ``exc``, each named by the
    option that gives it. A field the user did not give but which was derived from
    ``--case-id`` (``derived_prefix``, the origin) is not named as an option they used."""
    errors = exc.errors(include_input=False)
    case_id_refused = any(error["loc"] == ("case_id",) for error in errors)
    given = [
        error
        for error in errors
        if error["loc"] != ("origin",)
        and (derived_prefix is None or error["loc"] != ("ern_prefix",))
    ]
    parts = [_describe_errors(given, _INIT_OPTIONS)] if given else []
    hint = "correct the option and run again"
    prefix_refused = any(error["loc"] == ("ern_prefix",) for error in errors)
    if derived_prefix is not None and prefix_refused and not case_id_refused:
        parts.append(
            f"the ERN prefix {derived_prefix!r} derived from --case-id {case_id!r} is not "
            "valid: an ERN prefix is 2-16 capital letters or digits, starting with a letter"
        )
        hint = "give the ERN prefix with --ern-prefix (e.g. --ern-prefix CASE1)"
    if not parts:
        parts = [_describe_errors(errors, _INIT_OPTIONS)]
    return InputError("; ".join(parts), hint)


def _derived_ern_prefix(case_id: str) -> str:
    """The ERN prefix of a case made without one: the capital letters and digits of its id,
    at most 12, starting with a letter (``UA-DEP-0001`` gives ``UADEP0001``)."""
    prefix = re.sub(r"[^A-Z0-9]", "", case_id.upper())[:12] or "EVD"
    return prefix if prefix[0].isalpha() else "E" + prefix[:11]


def open_case(
    directory: Path,
    clock: Callable[[], datetime] = utc_now,
    *,
    read_only: bool | None = None,
) -> Case:
    """Open an existing case; raise :class:`CaseNotFound` when there is none.

    A case whose catalog cannot be written (on a write-protected medium, a read-only mount or
    a copy without write permission) is opened for reading only (``Case.read_only``): it can
    be read and verified, and a command that would record in it is refused with an
    :class:`EnvironmentProblem`. ``read_only=True`` opens any case so, ``False`` refuses
    one that cannot be written.
    """
    directory = Path(directory)
    case_file = directory / CASE_FILE
    try:
        found = case_file.is_file()
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot look into the case directory {directory}: {exc.strerror}",
            "check that you may read the case directory (and the folders above it)",
        ) from None
    if not found:
        raise CaseNotFound(str(directory))
    try:
        raw = tomllib.loads(case_file.read_text(encoding="utf-8"))
        # Before the fields: a newer format may have fields this toolkit does not know.
        _check_format(case_file, raw.get("format", FORMAT_VERSION))
        config = CaseConfig.model_validate(raw)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EnvironmentProblem(
            f"{case_file} is not a readable case file: {exc}",
            "restore case.toml from a backup of the case",
        ) from None
    except ValidationError as exc:
        raise EnvironmentProblem(
            f"{case_file}: {_describe_validation(exc)}",
            "restore case.toml from a backup of the case",
        ) from None
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot read {case_file}: {exc.strerror}",
            "check that you may read the case directory and its files",
        ) from None
    if not (directory / CATALOG_FILE).is_file():
        raise EnvironmentProblem(
            f"{directory / CATALOG_FILE} is missing",
            "restore the catalog from a backup; without it the custody log is lost",
        )
    case = _open(directory, config, clock, read_only=read_only)
    # Nothing may be written to a read-only catalog: a projection table it lacks is read as
    # empty, so that the case can be verified. A writable one lacking a table was changed
    # outside the toolkit: an empty table in its place would show a case without its items,
    # and the next ingest would record again, for good, content the log holds already.
    if case.read_only:
        catalog.ensure_schema(case.db, temporary=True)
        return case
    lost = catalog.missing_tables(case.db)
    if lost:
        case.close()
        raise EnvironmentProblem(
            f"the case catalog {directory / CATALOG_FILE} has no {', '.join(lost)} table"
            f"{'s' if len(lost) > 1 else ''}: it was changed outside the toolkit, so the case "
            "is not opened for work",
            CHANGED_CATALOG_HINT,
        )
    return case


def _check_format(case_file: Path, value: object) -> None:
    """Refuse a case file whose ``format`` is not one this toolkit reads: a later one (the
    case was made by a newer toolkit) or one no toolkit writes (the file is damaged)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        raise EnvironmentProblem(
            f"{case_file}: format = {shown} is not a case format (a whole number, 1 or more): "
            "the case file is damaged",
            f"restore {CASE_FILE} from a backup of the case",
        )
    if value > FORMAT_VERSION:
        raise EnvironmentProblem(
            f"{case_file} says format = {value}: the case was made by a newer version of the "
            f"toolkit; this one ({DISTRIBUTION} {toolkit_version()}) knows case format "
            f"{FORMAT_VERSION} only, so it neither reads nor writes the case",
            f"upgrade {DISTRIBUTION} to a version that knows case format {value}, then run "
            "the command again",
        )


def _open(
    directory: Path,
    config: CaseConfig,
    clock: Callable[[], datetime],
    *,
    read_only: bool | None = None,
) -> Case:
    path = directory / CATALOG_FILE
    try:
        # By default for writing where it can be written, else for reading only.
        db = open_database(path) if read_only is None else open_database(path, read_only=read_only)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot open {directory / CATALOG_FILE}: {exc}",
            "check the permissions of the case directory",
        ) from None
    log = LogStore(db, case_id=config.case_id, origin=config.origin, clock=clock)
    return Case(
        root=directory,
        config=config,
        db=db,
        log=log,
        objects=ObjectStore(directory / OBJECTS_DIR),
    )


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _describe_validation(exc: ValidationError) -> str:
    return _describe_errors(exc.errors(include_input=False))


def _describe_errors(errors: Sequence[ErrorDetails], names: Mapping[str, str] | None = None) -> str:
    """Each error as ``field: what is wrong``, the field called by its name in ``names`` (an
    option, say) where it has one; a check of ours reads as its own words, without pydantic's
    ``Value error,`` before them."""
    parts = []
    for error in errors:
        field = ".".join(str(p) for p in error["loc"]) or "value"
        if names is not None:
            field = names.get(field, field)
        cause = error.get("ctx", {}).get("error")
        message = str(cause) if error["type"] == "value_error" and cause else error["msg"]
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


def json_dumps(value: Any) -> str:
    """Compact, sorted JSON for catalog columns."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
