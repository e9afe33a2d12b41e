"""``evidence ingest`` into a case whose object store folder was damaged: exit 3, nothing recorded.

The store (``objects/`` in the case, with ``sha256/`` and ``tmp/`` in it) may be replaced by a
file, removed, made a symbolic link or made read-only behind the toolkit's back. An ingest then
stops before it reads an input or records an event, names the folder and says what to do
(``evidence verify``, restore from a backup); it never fails with an "unexpected error". The
cases and files are fictional.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence import catalog
from evidence import objects as objects_module
from tests.conftest import CaseHandle, CliResult
from tests.store_damage import file_instead, link_instead, removed

Cli = Callable[..., CliResult]


def _actions(case: CaseHandle) -> list[str]:
    opened = case.open()
    try:
        return [row[0] for row in opened.db.execute("SELECT action FROM log ORDER BY seq")]
    finally:
        opened.close()


@pytest.mark.parametrize(
    ("folder", "damage", "said"),
    [
        pytest.param("objects", file_instead, "is not a folder but a regular file", id="file"),
        pytest.param("objects", removed, "is missing", id="missing"),
        pytest.param("objects", link_instead, "is a symbolic link", id="symlink"),
        pytest.param("objects/tmp", file_instead, "is not a folder", id="tmp-is-a-file"),
        pytest.param("objects/sha256", file_instead, "is not a folder", id="sha256-is-a-file"),
        pytest.param("objects/sha256", link_instead, "is a symbolic link", id="sha256-symlink"),
    ],
)
@pytest.mark.parametrize("count", [3, 70], ids=["threads", "workers"])
def test_ingest_into_a_damaged_store_exits_3_and_records_nothing(
    cli: Cli,
    make_case: Callable[..., CaseHandle],
    make_corpus: Callable[..., Path],
    folder: str,
    damage: Callable[[Path], None],
    said: str,
    count: int,
) -> None:
    case = make_case()
    first = make_corpus(2, seed=1)
    assert cli("ingest", "--case", case.root, "-r", first).exit_code == 0
    before = _actions(case)
    damaged = case.root / folder
    damage(damaged)
    files = _store_files(case)
    corpus = make_corpus(count, seed=2)
    result = cli("ingest", "--case", case.root, "-r", corpus)
    assert result.exit_code == 3, result.output
    assert "unexpected" not in result.stderr
    assert f"{damaged} {said}" in result.stderr
    if folder == "objects/tmp":
        assert "never an original" in result.stderr  # nothing to restore there
    else:
        assert "evidence verify" in result.stderr
    assert _actions(case) == before
    # Nothing was written anywhere, not even through a link or into a folder made anew.
    assert _store_files(case) == files


def _store_files(case: CaseHandle) -> list[str]:
    """Every path in the case but the catalog's files, with what a link leads to."""
    return sorted(
        f"{p} -> {os.readlink(p)}" if p.is_symlink() else str(p)
        for p in case.root.rglob("*")
        if not p.name.startswith("catalog.sqlite")
    )


def test_read_only_store_exits_3_naming_it(
    cli: Cli,
    make_case: Callable[..., CaseHandle],
    make_corpus: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # File modes do not bind root, which the tests may run as: the system's answer to "may
    # this user write here" is replaced (test_subprocess.py drops the privilege instead).
    case = make_case()
    objects = case.root / "objects"
    real_access = os.access
    monkeypatch.setattr(
        objects_module.os,
        "access",
        lambda path, mode: Path(path) != objects and real_access(path, mode),
    )
    before = _actions(case)
    result = cli("ingest", "--case", case.root, "-r", make_corpus(3))
    assert result.exit_code == 3, result.output
    assert f"{objects} cannot be written by this user" in result.stderr
    assert "writable" in result.stderr
    assert _actions(case) == before


def test_store_failing_while_naming_objects_records_nothing(
    cli: Cli,
    make_case: Callable[..., CaseHandle],
    make_corpus: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A folder replaced after the check, while the copies are given their names: the batch's
    # events are never committed, and a rerun once the store is sound records everything.
    case = make_case()
    before = _actions(case)
    corpus = make_corpus(4)

    def replaced(temp: str | Path, final: Path) -> bool:
        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), os.fspath(final))

    with monkeypatch.context() as patch:
        patch.setattr(objects_module, "rename_noreplace", replaced)
        result = cli("ingest", "--case", case.root, "-r", corpus)
    assert result.exit_code == 3, result.output
    assert "unexpected" not in result.stderr
    assert "cannot write to the object store" in result.stderr
    assert "evidence verify" in result.stderr
    assert _actions(case) == before
    again = cli("ingest", "--case", case.root, "-r", corpus)
    assert again.exit_code == 0, again.output
    assert _actions(case).count("item.ingested") == 4
    assert cli("verify", "--case", case.root).exit_code == 0


@pytest.mark.parametrize(
    ("args", "damage"),
    [
        pytest.param(("log", "show"), "ALTER TABLE log RENAME COLUMN seq TO sq", id="log-show"),
        pytest.param(("keys", "list"), "ALTER TABLE keys RENAME COLUMN key_id TO k", id="keys"),
    ],
)
def test_a_catalog_changed_behind_the_toolkit_is_an_environment_error(
    cli: Cli, make_case: Callable[..., CaseHandle], args: tuple[str, ...], damage: str
) -> None:
    case = make_case()
    _on_catalog(case, damage)
    result = cli(*args, "--case", case.root)
    assert result.exit_code == 3, result.output
    assert "unexpected error" not in result.stderr
    assert "the case catalog cannot be used as the toolkit made it" in result.stderr
    assert "evidence verify" in result.stderr
    # Told from SQLite's error code: its message can quote the data of a statement.
    assert "no such column" not in result.stderr


# --- a table dropped behind the toolkit ---------------------------------------------------------


def _on_catalog(case: CaseHandle, *statements: str) -> list[Any]:
    """Run ``statements`` on the case's catalog, as someone holding the file could, and
    commit; the rows of the last one."""
    rows: list[Any] = []
    with contextlib.closing(sqlite3.connect(case.root / "catalog.sqlite")) as conn, conn:
        for statement in statements:
            rows = conn.execute(statement).fetchall()
    return rows


def _schema(case: CaseHandle) -> set[tuple[str, str]]:
    return {(str(t), str(n)) for t, n in _on_catalog(case, "SELECT type, name FROM sqlite_master")}


def _checkpoints(case: CaseHandle) -> int:
    return int(_on_catalog(case, "SELECT COUNT(*) FROM checkpoints")[0][0])


LOG_TABLES = ["log", "log_nodes", "checkpoints"]


@pytest.mark.parametrize("table", [*catalog.SCHEMA, *LOG_TABLES])
def test_a_dropped_table_is_refused_not_made_again_empty(
    cli: Cli, make_case: Callable[..., CaseHandle], tmp_path: Path, table: str
) -> None:
    # An empty table in its place would show a case without its items (or start the log again
    # from seq 0), and an ingest would then record content the log holds already, for good.
    case = make_case()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "statement.txt").write_bytes(b"fictional statement, test data\n")
    assert cli("ingest", "--case", case.root, inbox / "statement.txt").exit_code == 0
    (inbox / "copy of statement.txt").write_bytes(b"fictional statement, test data\n")
    _on_catalog(case, f'DROP TABLE "{table}"')
    before = _schema(case)
    checkpoints = None if table == "checkpoints" else _checkpoints(case)
    for args in [("list",), ("ingest", inbox / "copy of statement.txt")]:
        result = cli(*args, "--case", case.root)
        assert result.exit_code == 3, (args, result.output)
        assert f"has no {table} table" in result.stderr
        assert "changed outside the toolkit" in result.stderr
        assert "evidence verify" in result.stderr and "backup" in result.stderr
        assert "unexpected error" not in result.stderr
    assert _schema(case) == before
    if checkpoints is not None:
        assert _checkpoints(case) == checkpoints
    # verify reads it as it stands and says what is missing.
    result = cli("verify", "--case", case.root, "--json")
    assert result.exit_code == 1, result.output
    codes = {f["code"] for f in json.loads(result.stdout)["findings"]}
    assert codes & {"catalog-table-missing", "log-table-missing"}, codes


def test_a_dropped_trigger_is_put_back(cli: Cli, make_case: Callable[..., CaseHandle]) -> None:
    case = make_case()
    _on_catalog(case, "DROP TRIGGER log_no_update")
    assert ("trigger", "log_no_update") not in _schema(case)
    result = cli("list", "--case", case.root)
    assert result.exit_code == 0, result.output
    assert ("trigger", "log_no_update") in _schema(case)
