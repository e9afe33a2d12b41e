"""verify_case on changes it once let pass: the log table's lookup columns, case.toml, and what
stands in the content store under (or beside) an object name. One test per named change."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chain_of_custody import Finding
from evidence.custody import custody_history
from evidence.ingest import ingest
from evidence.models import ItemOptions
from evidence.verify import StoreProblem, rehash_all, verify_case
from evidence.workspace import Case, CaseConfig, init_case, open_case
from tests.conftest import CASE_ID, CASE_TITLE, FrozenClock, fixed_signer, run_cli

SIGNER = fixed_signer("investigator-a")


def _case(tmp_path: Path, items: int = 3) -> tuple[Case, list[tuple[str, int]]]:
    """A fictional case with ``items`` ingested files; their sha256 and ingest seq, in order."""
    case = init_case(
        tmp_path / "case",
        case_id=CASE_ID,
        title=CASE_TITLE,
        signer=SIGNER,
        organisation="Fictional NGO",
        clock=FrozenClock(),
    )
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    files = []
    for number in range(items):
        path = inputs / f"photo-{number}.jpg"
        path.write_bytes(f"fictional photo number {number}".encode() * (number + 1))
        files.append(path)
    ingest(case, SIGNER, files, options=ItemOptions())
    rows = case.db.execute("SELECT sha256, ingested_seq FROM items ORDER BY ingested_seq")
    return case, [(row[0], row[1]) for row in rows.fetchall()]


def _found(case: Case) -> list[Finding]:
    return verify_case(case, workers=1).findings


def _codes(findings: list[Finding]) -> set[str]:
    return {finding.code for finding in findings}


def _object_path(case: Case, sha: str) -> Path:
    return case.objects.path_for(sha)


# --- the log table's lookup columns ------------------------------------------------------


def _edit_log_row(case: Case, column: str, value: str, seq: int) -> None:
    """Change one column of a log row, as someone holding the catalog file could, putting
    back the trigger that stood in the way (its loss would be a finding of its own)."""
    conn = sqlite3.connect(case.catalog_path, isolation_level=None)
    try:
        (guard,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'log_no_update'"
        ).fetchone()
        conn.execute("DROP TRIGGER log_no_update")
        # The column name comes from the test's own table.
        conn.execute(f"UPDATE log SET {column} = ? WHERE seq = ?", (value, seq))  # noqa: S608
        conn.execute(guard)
    finally:
        conn.close()


def test_a_log_row_pointed_at_another_item_is_a_finding(tmp_path: Path) -> None:
    case, items = _case(tmp_path)
    (x, _), (y, y_seq) = items[0], items[1]
    _edit_log_row(case, "subject", x, y_seq)
    # What `evidence show X` lists: Y's ingest appears in X's custody history.
    assert y_seq in [entry["seq"] for entry in custody_history(case, x)]
    findings = _found(case)
    assert [(f.code, f.seq, f.subject) for f in findings] == [
        ("log-column-mismatch", y_seq, "log.subject")
    ]
    assert f'"{x}"' in findings[0].message
    assert f'"{y}"' in findings[0].message
    case.close()
    result = run_cli("verify", "--case", tmp_path / "case")
    assert result.exit_code == 1
    assert f"seq {y_seq}, log.subject" in result.stdout


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("subject", "0" * 64),
        ("action", "item.accessed"),
        ("actor", "investigator-z+00000000"),
        ("time", "2020-01-01T00:00:00.000000Z"),
    ],
)
def test_an_edited_log_column_is_named_with_its_seq(
    tmp_path: Path, column: str, value: str
) -> None:
    case, items = _case(tmp_path)
    seq = items[2][1]
    signed = case.db.execute(f"SELECT {column} FROM log WHERE seq = ?", [seq]).fetchone()[0]  # noqa: S608
    _edit_log_row(case, column, value, seq)
    findings = _found(case)
    assert [(f.code, f.seq, f.subject) for f in findings] == [
        ("log-column-mismatch", seq, f"log.{column}")
    ]
    assert json.dumps(value) in findings[0].message
    assert json.dumps(signed) in findings[0].message


def test_log_rows_of_the_genesis_events_are_compared_too(tmp_path: Path) -> None:
    case, _ = _case(tmp_path, items=1)
    _edit_log_row(case, "action", "case.renamed", 1)
    findings = _found(case)
    assert [(f.code, f.seq, f.subject) for f in findings] == [
        ("log-column-mismatch", 1, "log.action")
    ]


# --- case.toml -----------------------------------------------------------------------------


def _edit_case_file(root: Path, field: str, value: Any) -> None:
    path = root / "case.toml"
    config = CaseConfig.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    path.write_text(config.model_copy(update={field: value}).to_toml(), encoding="utf-8")


@pytest.mark.parametrize(
    ("field", "value", "also"),
    [
        ("ern_prefix", "XYZ", set()),
        ("title", "Another title (fictional)", set()),
        ("organisation", "Another NGO (fictional)", set()),
        ("hash_algorithms", ("sha256",), set()),
        # The log check also reports every checkpoint, or every event, of another log.
        ("origin", "evidence-locker/ANOTHER", {"checkpoint-origin"}),
        ("case_id", "UA-TEST-9999", {"case-mismatch"}),
    ],
)
def test_an_edited_case_file_is_a_finding(
    tmp_path: Path, field: str, value: Any, also: set[str]
) -> None:
    case, _ = _case(tmp_path, items=1)
    was = getattr(case.config, field)
    case.close()
    _edit_case_file(tmp_path / "case", field, value)
    case = open_case(tmp_path / "case")
    findings = _found(case)
    assert _codes(findings) == {"case-file-mismatch"} | also
    (mismatch,) = [f for f in findings if f.code == "case-file-mismatch"]
    assert (mismatch.subject, mismatch.seq) == (field, 1)
    assert mismatch.path == str(tmp_path / "case" / "case.toml")
    shown = [list(v) if isinstance(v, tuple) else v for v in (value, was)]
    for text in shown:
        assert json.dumps(text) in mismatch.message
    assert "restore case.toml from a backup" in mismatch.message


def test_a_case_file_rewritten_unchanged_verifies_clean(tmp_path: Path) -> None:
    case, _ = _case(tmp_path, items=1)
    case.close()
    _edit_case_file(tmp_path / "case", "title", CASE_TITLE)
    case = open_case(tmp_path / "case")
    assert _found(case) == []


# --- what stands under an object name ------------------------------------------------------


def _replace_object(case: Case, sha: str, make: Callable[[Path], None]) -> Path:
    path = _object_path(case, sha)
    path.unlink()
    make(path)
    return path


def test_a_symlink_in_place_of_an_object_is_named_and_not_followed(tmp_path: Path) -> None:
    case, items = _case(tmp_path)
    sha = items[0][0]
    # The link leads to the very bytes of the object: following it would find nothing wrong.
    outside = tmp_path / "outside-copy"
    shutil.copyfile(_object_path(case, sha), outside)
    path = _replace_object(case, sha, lambda p: p.symlink_to(outside))
    findings = _found(case)
    assert [(f.code, f.subject, f.path) for f in findings] == [("object-symlink", sha, str(path))]
    assert "symbolic link" in findings[0].message


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda p: p.mkdir(), "a folder"),
        (os.mkfifo, "a named pipe"),
    ],
    ids=["folder", "fifo"],
)
def test_something_else_in_place_of_an_object_is_not_a_regular_file(
    tmp_path: Path, make: Callable[[Path], None], kind: str
) -> None:
    case, items = _case(tmp_path)
    sha = items[1][0]
    path = _replace_object(case, sha, make)
    findings = _found(case)
    assert [(f.code, f.subject, f.path) for f in findings] == [
        ("object-not-regular", sha, str(path))
    ]
    assert findings[0].message.startswith(kind)


def _readable(path: Path) -> bool:
    try:
        path.open("rb").close()
    except PermissionError:
        return False
    return True


def test_an_unreadable_object_is_named_with_the_reason(tmp_path: Path) -> None:
    case, items = _case(tmp_path)
    sha = items[2][0]
    path = _object_path(case, sha)
    path.chmod(0)
    try:
        if _readable(path):
            pytest.skip("this user reads files of mode 000 (root); see the rehash test below")
        findings = _found(case)
    finally:
        path.chmod(0o444)
    assert [(f.code, f.subject, f.path) for f in findings] == [
        ("object-unreadable", sha, str(path))
    ]
    assert os.strerror(errno.EACCES) in findings[0].message


def test_rehash_gives_the_reason_an_object_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same as a mode 000 file for a user other than root, in this process.
    unreadable = tmp_path / "unreadable"
    unreadable.write_bytes(b"fictional")
    real_open = os.open

    def refusing_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path) == str(unreadable):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    (result,) = rehash_all([str(unreadable)])
    assert isinstance(result, StoreProblem)
    assert result.code == "object-unreadable"
    assert os.strerror(errno.EACCES) in result.message


def test_an_object_no_event_names_says_how_to_record_it(tmp_path: Path) -> None:
    case, _ = _case(tmp_path, items=1)
    # An interrupted ingest: the object was made durable, its event never committed.
    late = tmp_path / "inputs" / "late.jpg"
    late.write_bytes(b"fictional photo whose ingest was interrupted")
    stored = case.objects.put_file(late)
    findings = _found(case)
    assert [(f.code, f.subject) for f in findings] == [("object-unexpected", stored.sha256)]
    assert "run the same ingest command again" in findings[0].message
    # ... and doing so records it.
    ingest(case, SIGNER, [late], options=ItemOptions())
    assert _found(case) == []


def test_a_folder_under_an_object_name_no_event_names_is_not_regular(tmp_path: Path) -> None:
    case, _ = _case(tmp_path, items=1)
    path = case.objects.objects_dir / "ab" / ("c" * 62)
    path.mkdir(parents=True)
    findings = _found(case)
    assert [(f.code, f.path) for f in findings] == [("object-not-regular", str(path))]


def test_stray_entries_of_the_store_are_each_named(tmp_path: Path) -> None:
    case, items = _case(tmp_path, items=1)
    sha = items[0][0]
    top = case.objects.objects_dir
    strays = [
        top / "notes.txt",
        top / "zz",
        top / sha[:2] / "partial.tmp",
        top / sha[:2] / sha[2:].upper(),
    ]
    strays[0].write_text("fictional note")
    strays[1].mkdir()
    strays[2].write_bytes(b"fictional")
    strays[3].write_bytes(b"fictional")
    findings = _found(case)
    assert _codes(findings) == {"store-unexpected-file"}
    assert sorted(f.path or "" for f in findings) == sorted(str(p) for p in strays)
    by_path = {f.path: f.message for f in findings}
    assert by_path[str(strays[1])].startswith("a folder")
    assert by_path[str(strays[2])].startswith("a regular file")


@pytest.mark.parametrize("replaced", ["objects", "objects/sha256"])
def test_a_file_in_place_of_the_store_folder_is_named_and_every_object_missing(
    tmp_path: Path, replaced: str
) -> None:
    case, items = _case(tmp_path, items=2)
    folder = case.root / replaced
    shutil.rmtree(folder)
    folder.write_bytes(b"fictional file standing where a folder was")
    findings = _found(case)
    assert sorted((f.code, f.path) for f in findings if f.code != "object-missing") == [
        ("store-unexpected-file", str(folder)),
    ]
    (replaced_finding,) = [f for f in findings if f.code == "store-unexpected-file"]
    assert replaced_finding.message.startswith("a regular file stands in place of a folder")
    missing = {f.subject or f.path for f in findings if f.code == "object-missing"}
    assert len(missing) == len(items)


@pytest.mark.parametrize("linked", ["objects", "objects/sha256"])
def test_a_store_folder_reached_through_a_link_is_a_finding(tmp_path: Path, linked: str) -> None:
    # The originals would be outside the case: a copy or a backup of it would not hold them.
    case, items = _case(tmp_path, items=2)
    folder = case.root / linked
    elsewhere = tmp_path / "elsewhere"
    shutil.move(folder, elsewhere)
    folder.symlink_to(elsewhere, target_is_directory=True)
    findings = _found(case)
    assert [(f.code, f.path) for f in findings if f.code != "object-missing"] == [
        ("store-unexpected-file", str(folder))
    ]
    assert len([f for f in findings if f.code == "object-missing"]) == len(items)


def test_a_linked_object_folder_is_not_followed(tmp_path: Path) -> None:
    case, items = _case(tmp_path, items=1)
    sha = items[0][0]
    folder = case.objects.objects_dir / sha[:2]
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(folder, elsewhere)
    shutil.rmtree(folder)
    folder.symlink_to(elsewhere, target_is_directory=True)
    findings = _found(case)
    assert sorted((f.code, f.path) for f in findings) == [
        ("object-missing", str(folder / sha[2:])),
        ("store-unexpected-file", str(folder)),
    ]
    (stray,) = [f for f in findings if f.code == "store-unexpected-file"]
    assert stray.message.startswith("a symbolic link")
