"""A case that cannot be written: a write-protected stick, a read-only mount, a copy without
write permission, as auditors often check a case.

Every command that only reads works on it and writes nothing; every command that records is
refused with exit 3, naming the catalog and saying to copy the case to a writable place;
``evidence verify`` still checks everything it checks on a writable case. The catalog is SQLite
in WAL mode: a read-only copy whose write-ahead log holds unmerged commits is refused, never
shown as it was before them.

Two ways in: ``open_database(..., read_only=True)`` put in place of the workspace's opener (for
any user, root included), and real file modes in a subprocess. File modes do not bind root, so
as root the subprocess runs without the capabilities that override them (``setpriv``); the
tests are skipped where that cannot be done. The cases are fictional (see tests/conftest.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import sqlite3
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chain_of_custody import EnvironmentProblem, EventDraft, open_database
from evidence.verify import verify_case
from evidence.workspace import open_case
from tests.conftest import CaseHandle, CliResult, run_unprivileged, unprivileged_prefix

Cli = Callable[..., CliResult]
WAL_FILES = ("catalog.sqlite-wal", "catalog.sqlite-shm")


@dataclass(frozen=True)
class Filled:
    """A fictional case with three items, one incident and one link; a checkpoint taken
    before the last two; a file not in the case; a writable, empty work folder."""

    case: CaseHandle
    sha: str
    old: Path
    spare: Path
    work: Path

    @property
    def catalog(self) -> Path:
        return self.case.root / "catalog.sqlite"


@pytest.fixture
def filled(
    make_case: Callable[..., CaseHandle],
    make_corpus: Callable[..., Path],
    cli: Cli,
    tmp_path: Path,
) -> Filled:
    case = make_case()
    corpus = make_corpus(3, seed=41)
    c = ("--case", case.root)
    assert cli("ingest", "-r", corpus, *c).exit_code == 0
    items = json.loads(cli("list", "--json", *c).stdout)
    sha = sorted(item["sha256"] for item in items)[0]
    old = tmp_path / "old.checkpoint"
    old.write_text(cli("log", "checkpoint", *c).stdout, encoding="utf-8")
    added = cli(
        "incident",
        "add",
        "--title",
        "Fictional transfer",
        "--start",
        "2022",
        "--place",
        "Generic town",
        *c,
    )
    assert added.exit_code == 0, added.output
    linked = cli("link", sha, "--incident", "INC-0001", "--reason", "test link", *c)
    assert linked.exit_code == 0, linked.output
    work = tmp_path / "work"
    work.mkdir()
    spare = work / "spare.txt"
    spare.write_bytes(b"a fictional working copy, not yet in the case\n")
    return Filled(case, sha, old, spare, work)


def _snapshot(root: Path, *, without: tuple[str, ...] = ()) -> dict[str, tuple[int, str]]:
    """Every entry under ``root``: its mode and, for a file, the SHA-256 of its bytes."""
    found: dict[str, tuple[int, str]] = {}
    for path in sorted(root.rglob("*")):
        if path.name in without:
            continue
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        found[str(path.relative_to(root))] = (stat.S_IMODE(info.st_mode), digest)
    return found


# --- read-only through the opener's parameter (any user) -----------------------------------


@pytest.fixture
def opened_read_only(filled: Filled, monkeypatch: pytest.MonkeyPatch) -> Filled:
    """``filled``, then every case the command line opens is opened for reading only."""
    monkeypatch.setattr(
        "evidence.workspace.open_database", functools.partial(open_database, read_only=True)
    )
    return filled


def test_open_case_read_only_reads_verifies_and_refuses_to_record(filled: Filled) -> None:
    before = _snapshot(filled.case.root, without=WAL_FILES)
    case = open_case(filled.case.root, read_only=True)
    try:
        assert case.read_only
        report = verify_case(case, workers=1)
        assert report.ok, report.findings
        assert report.events == case.log.size()
        with pytest.raises(EnvironmentProblem) as refused:
            case.record([EventDraft(action="note.added", subject="x", data={})], filled.case.signer)
        assert f"the case catalog {filled.catalog} is read-only" in refused.value.message
        assert "copy the whole case folder" in (refused.value.hint or "")
        with pytest.raises(EnvironmentProblem, match="read-only"):
            case.checkpoint(filled.case.signer)
        with pytest.raises(EnvironmentProblem, match="read-only"):
            case.require_writable()
    finally:
        case.close()
    assert _snapshot(filled.case.root, without=WAL_FILES) == before
    writable = open_case(filled.case.root)
    try:
        assert not writable.read_only
        writable.require_writable()
    finally:
        writable.close()


READING_COMMANDS: list[tuple[str, ...]] = [
    ("verify",),
    ("verify", "--json"),
    ("list",),
    ("list", "--json", "--incident", "INC-0001"),
    ("show", "{sha}"),
    ("show", "{sha}", "--json"),
    ("log", "show"),
    ("log", "checkpoint"),
    ("log", "proof", "{sha}"),
    ("log", "consistency", "{old}"),
    ("verify", "--since", "{old}"),
    ("keys", "list"),
    ("keys", "recipient", "list"),
    ("testimony", "list"),
    ("incident", "list"),
    ("incident", "show", "INC-0001"),
    ("timeline", "--incident", "INC-0001"),
]

# Commands that record: each stops at the catalog before it asks for a passphrase or writes
# anything, the object store included.
RECORDING_COMMANDS: list[tuple[str, tuple[str, ...]]] = [
    ("incident-add", ("incident", "add", "--title", "T", "--start", "2023", "--place", "P")),
    ("link", ("link", "{sha}", "--incident", "INC-0001", "--reason", "again")),
    ("unlink", ("unlink", "{sha}", "--incident", "INC-0001", "--reason", "wrong")),
    ("open", ("open", "{sha}", "--to", "{work}/copy.bin", "--purpose", "reading")),
    (
        "export",
        ("export", "--incident", "INC-0001", "--profile", "restricted", "--out", "{work}/b"),
    ),
    ("checkpoint-sign", ("log", "checkpoint", "--sign")),
    ("recipient-add", ("keys", "recipient", "add", "prosecutor-z")),
    ("ingest", ("ingest", "{spare}")),
    ("derive", ("derive", "{sha}", "--kind", "translation", "--file", "{spare}", "--reason", "r")),
]
RECORDING = [pytest.param(args, id=name) for name, args in RECORDING_COMMANDS]


def _args(filled: Filled, args: tuple[str, ...]) -> list[str]:
    given = {
        "sha": filled.sha,
        "old": str(filled.old),
        "work": str(filled.work),
        "spare": str(filled.spare),
    }
    return [arg.format(**given) for arg in args]


@pytest.mark.usefixtures("opened_read_only")
def test_reading_commands_work_on_a_case_opened_read_only(filled: Filled, cli: Cli) -> None:
    before = _snapshot(filled.case.root, without=WAL_FILES)
    for args in READING_COMMANDS:
        result = cli(*_args(filled, args), "--case", filled.case.root)
        assert result.exit_code == 0, (args, result.output)
    assert _snapshot(filled.case.root, without=WAL_FILES) == before


@pytest.mark.usefixtures("opened_read_only")
@pytest.mark.parametrize("args", RECORDING)
def test_recording_commands_on_a_case_opened_read_only_exit_3(
    filled: Filled, cli: Cli, args: tuple[str, ...]
) -> None:
    size = filled.case.log_size()
    before = _snapshot(filled.case.root, without=WAL_FILES)
    key = ("--key", filled.case.key_path)
    result = cli(*_args(filled, args), "--case", filled.case.root, *key)
    assert result.exit_code == 3, result.output
    assert f"the case catalog {filled.catalog} is read-only" in result.stderr
    assert "copy the whole case folder to a writable place" in result.stderr
    assert "unexpected" not in result.stderr
    assert _snapshot(filled.case.root, without=WAL_FILES) == before
    assert sorted(p.name for p in filled.work.iterdir()) == ["spare.txt"]
    assert filled.case.log_size() == size


@pytest.mark.usefixtures("opened_read_only")
def test_verify_of_a_case_opened_read_only_reports_a_changed_catalog(
    filled: Filled, cli: Cli
) -> None:
    conn = sqlite3.connect(filled.catalog)
    with conn:
        conn.execute(
            "UPDATE items SET title = 'edited behind its back' WHERE sha256 = ?", (filled.sha,)
        )
    conn.close()
    result = cli("verify", "--json", "--case", filled.case.root)
    assert result.exit_code == 1, result.output
    codes = {finding["code"] for finding in json.loads(result.stdout)["findings"]}
    assert codes == {"catalog-row-changed"}


def test_a_read_only_catalog_lacking_a_table_is_read_as_empty_and_left_as_it_is(
    filled: Filled, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = sqlite3.connect(filled.catalog)
    with conn:
        conn.execute("DROP TABLE exports")
    conn.close()
    monkeypatch.setattr(
        "evidence.workspace.open_database", functools.partial(open_database, read_only=True)
    )
    assert cli("list", "--case", filled.case.root).exit_code == 0
    # The log has no export to fill it, yet a catalog the toolkit made has the table.
    result = cli("verify", "--case", filled.case.root, "--json")
    assert result.exit_code == 1, result.output
    findings = json.loads(result.stdout)["findings"]
    assert [(f["code"], f["subject"]) for f in findings] == [("catalog-table-missing", "exports")]
    assert "the log produces no rows for it yet" in findings[0]["message"]
    conn = sqlite3.connect(filled.catalog)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert "exports" not in tables


# --- read-only by file modes (a subprocess that file modes bind) ---------------------------


def _chmod_tree(root: Path, *, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~0o222)


@pytest.fixture
def read_only(filled: Filled) -> Iterator[Filled]:
    """``filled`` made read-only as ``chmod -R a-w`` does (made writable again after)."""
    unprivileged_prefix()
    _chmod_tree(filled.case.root, writable=False)
    try:
        yield filled
    finally:
        _chmod_tree(filled.case.root, writable=True)


def test_reading_commands_work_on_a_read_only_case_folder(read_only: Filled) -> None:
    before = _snapshot(read_only.case.root)
    for args in READING_COMMANDS:
        done = run_unprivileged(*_args(read_only, args), "--case", read_only.case.root)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
    # Nothing written, not even SQLite's -wal and -shm files.
    assert _snapshot(read_only.case.root) == before


def test_verify_json_on_a_read_only_case_folder_counts_every_event(read_only: Filled) -> None:
    done = run_unprivileged("verify", "--json", "--case", read_only.case.root)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    # key, case, three items, incident, link
    assert (report["events"], report["objects"]) == (7, 3)


@pytest.mark.parametrize("args", RECORDING)
def test_recording_commands_on_a_read_only_case_folder_exit_3(
    read_only: Filled, args: tuple[str, ...]
) -> None:
    before = _snapshot(read_only.case.root)
    done = run_unprivileged(
        *_args(read_only, args), "--case", read_only.case.root, "--key", read_only.case.key_path
    )
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert "unexpected" not in done.stderr
    assert f"the case catalog {read_only.catalog} is read-only" in done.stderr
    assert "copy the whole case folder to a writable place" in done.stderr
    assert _snapshot(read_only.case.root) == before
    assert sorted(p.name for p in read_only.work.iterdir()) == ["spare.txt"]


def test_verify_reports_tampering_on_a_read_only_case_folder(filled: Filled) -> None:
    conn = sqlite3.connect(filled.catalog)
    with conn:
        conn.execute("UPDATE items SET holder = 'someone+00000000' WHERE sha256 = ?", (filled.sha,))
    conn.close()
    stored = filled.case.root / "objects" / "sha256" / filled.sha[:2] / filled.sha[2:]
    stored.chmod(0o644)
    stored.write_bytes(b"fictional bytes put in place of the original")
    unprivileged_prefix()
    _chmod_tree(filled.case.root, writable=False)
    try:
        done = run_unprivileged("verify", "--json", "--case", filled.case.root)
    finally:
        _chmod_tree(filled.case.root, writable=True)
    assert done.returncode == 1, done.stderr
    codes = {finding["code"] for finding in json.loads(done.stdout)["findings"]}
    assert codes == {"catalog-row-changed", "object-corrupt"}


# --- a read-only copy whose write-ahead log holds commits ----------------------------------


@pytest.mark.parametrize("with_shm", [True, False], ids=["with-shm", "without-shm"])
def test_a_read_only_copy_with_commits_in_its_wal_is_read_whole_or_refused(
    filled: Filled, cli: Cli, tmp_path: Path, with_shm: bool
) -> None:
    """A copy taken while the case was open: the last commits are in catalog.sqlite-wal only.

    With the -shm index beside it the copy is read whole; without it they cannot be read
    without writing, so the copy is refused (read as immutable it would look older than it
    is). A writable copy of it merges them.
    """
    size = filled.case.log_size()
    # An open connection keeps the closing command from merging the log into the catalog.
    holder = sqlite3.connect(filled.catalog)
    try:
        holder.execute("SELECT count(*) FROM log").fetchone()
        added = cli(
            "incident",
            "add",
            "--title",
            "Later",
            "--start",
            "2024",
            "--place",
            "P",
            "--case",
            filled.case.root,
        )
        assert added.exit_code == 0, added.output
        copy = tmp_path / "copy"
        shutil.copytree(filled.case.root, copy)
    finally:
        holder.close()
    assert (copy / "catalog.sqlite-wal").stat().st_size > 0
    if not with_shm:
        (copy / "catalog.sqlite-shm").unlink()
    unprivileged_prefix()
    _chmod_tree(copy, writable=False)
    try:
        before = _snapshot(copy)
        done = run_unprivileged("verify", "--json", "--case", copy)
        listed = run_unprivileged("incident", "list", "--case", copy)
        assert _snapshot(copy) == before
    finally:
        _chmod_tree(copy, writable=True)
    if with_shm:
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["events"] == size + 1
        assert "Later" in listed.stdout
        return
    for refused in (done, listed):
        assert refused.returncode == 3, (refused.stdout, refused.stderr)
        assert f"the case catalog {copy / 'catalog.sqlite'} is read-only" in refused.stderr
        assert "catalog.sqlite-wal" in refused.stderr
        assert "copy the whole case folder" in refused.stderr
        assert "Traceback" not in refused.stderr
    writable = tmp_path / "writable-copy"
    shutil.copytree(copy, writable)
    merged = run_unprivileged("verify", "--json", "--case", writable)
    assert merged.returncode == 0, merged.stderr
    assert json.loads(merged.stdout)["events"] == size + 1
