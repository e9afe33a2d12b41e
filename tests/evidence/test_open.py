"""``evidence open``: a checked copy of an original, recorded, or nothing at all.

Each named bad situation gets its test: a store object altered or missing, a destination that
exists or is a symbolic link, a catalog that cannot be written, a name taken or an interruption
between the copy and the commit, an empty purpose. The case, its key and the file names (a
fictional list of a group of children, a fictional photo) are invented test data.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from hypothesis import given
from hypothesis import strategies as st

from evidence import custody
from evidence.workspace import Recorder
from tests.conftest import CaseHandle, CliResult, ended_pid, sha256_of

Cli = Callable[..., CliResult]

# Two names of the same length in Cyrillic: once made ASCII-only, they became one name.
LIST_NAME = "список дітей.txt"
GROUP_NAME = "список групи.txt"
PHOTO_NAME = "фото автобуса.jpg"


@dataclass(frozen=True)
class Opened:
    """A case with three ingested files, their sha256 by name, and an empty work folder."""

    case: CaseHandle
    sha: dict[str, str]
    work: Path

    def object_path(self, name: str) -> Path:
        sha = self.sha[name]
        return self.case.root / "objects" / "sha256" / sha[:2] / sha[2:]


@pytest.fixture
def opened(make_case: Callable[..., CaseHandle], cli: Cli, tmp_path: Path) -> Opened:
    case = make_case()
    source = tmp_path / "source"
    source.mkdir()
    contents = {
        LIST_NAME: b"fictional list of a group, test data\n",
        GROUP_NAME: b"fictional group roster, other test data\n",
        PHOTO_NAME: b"\xff\xd8 fictional photo bytes, not an image",
    }
    for name, data in contents.items():
        (source / name).write_bytes(data)
    result = cli("ingest", "--case", case.root, "-r", source)
    assert result.exit_code == 0, result.output
    work = tmp_path / "work"
    work.mkdir()
    return Opened(case, {name: sha256_of(source / name) for name in contents}, work)


def _open(cli: Cli, opened: Opened, name: str, to: Path, purpose: str = "translation") -> CliResult:
    return cli("open", opened.sha[name][:12], "--to", to, "--purpose", purpose,
               "--case", opened.case.root)  # fmt: skip


def _listing(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


def _replace_object(path: Path, write: Callable[[Path], None]) -> None:
    path.chmod(0o644)
    path.unlink()
    write(path)


# --- names ---------------------------------------------------------------------------------


def test_open_into_a_folder_keeps_ukrainian_names_apart(opened: Opened, cli: Cli) -> None:
    for name in (LIST_NAME, GROUP_NAME, PHOTO_NAME):
        result = _open(cli, opened, name, opened.work)
        assert result.exit_code == 0, result.output
        assert sha256_of(opened.work / name) == opened.sha[name]
    assert _listing(opened.work) == sorted([LIST_NAME, GROUP_NAME, PHOTO_NAME])


SAFE_NAMES = [
    pytest.param("фото автобуса.jpg", "фото автобуса.jpg", id="cyrillic-kept"),
    pytest.param("наказ №12 (копія).pdf", "наказ №12 (копія).pdf", id="signs-kept"),
    pytest.param("ї\u0308жак.txt", "ї\u0308жак.txt", id="combining-mark-kept"),
    pytest.param("a/b\\c.txt", "a_b_c.txt", id="separators"),
    pytest.param("..", "item", id="dot-dot"),
    pytest.param("../../etc/passwd", "_.._etc_passwd", id="climbing-out"),
    pytest.param("nul\x00byte.txt", "nul_byte.txt", id="nul"),
    pytest.param("line\nbreak\t.txt", "line_break_.txt", id="controls"),
    pytest.param("фото\u202egpj.exe", "фото_gpj.exe", id="bidi-override"),
    pytest.param("зві\u200bт.pdf", "зві_т.pdf", id="zero-width"),
    pytest.param('a<b>c:d"e|f?g*h.txt', "a_b_c_d_e_f_g_h.txt", id="windows-forbidden"),
    pytest.param("CON.txt", "_CON.txt", id="windows-device"),
    pytest.param("lpt1", "_lpt1", id="windows-device-no-extension"),
    pytest.param(" .hidden. ", "hidden", id="dots-and-spaces"),
    pytest.param("", "item", id="empty"),
]


@pytest.mark.parametrize(("name", "expected"), SAFE_NAMES)
def test_safe_name(name: str, expected: str) -> None:
    assert custody._safe_name(name) == expected


def test_a_long_name_is_shortened_keeping_its_extension() -> None:
    name = "свідчення " * 40 + ".docx"
    safe = custody._safe_name(name)
    assert safe.endswith(".docx")
    assert len(safe.encode()) <= 200
    assert safe.startswith("свідчення свідчення")
    assert not safe.removesuffix(".docx").endswith((" ", "."))


def test_shortening_never_splits_a_letter_from_its_accent() -> None:
    safe = custody._safe_name("и\u0306" * 150 + ".txt")
    stem = safe.removesuffix(".txt")
    assert stem == "и\u0306" * (len(stem) // 2)
    assert len(safe.encode()) <= 200


@given(st.text(max_size=400))
def test_safe_name_is_always_one_plain_file_name(name: str) -> None:
    safe = custody._safe_name(name)
    assert safe
    assert safe not in (".", "..")
    assert len(safe.encode("utf-8")) <= 200
    assert not set(safe) & set('/\\\x00<>:"|?*')
    assert safe.isprintable()
    assert safe[0] not in " ." and safe[-1] not in " ."


# At most 4 UTF-8 bytes a letter: 45 of them stay within the length kept.
@given(st.text(st.characters(categories=["Lu", "Ll", "Lo", "Nd"]), min_size=1, max_size=45))
def test_letters_and_digits_of_any_script_are_kept(stem: str) -> None:
    name = stem + ".txt"
    assert custody._safe_name(name) in (name, "_" + name)


# --- the store object ----------------------------------------------------------------------


ALTERATIONS = [
    pytest.param(lambda p: p.write_bytes(b"X" * p.stat().st_size), id="overwritten-same-size"),
    pytest.param(lambda p: p.write_bytes(p.read_bytes()[:-5]), id="truncated"),
    pytest.param(lambda p: p.write_bytes(p.read_bytes() + b" appended"), id="extended"),
    pytest.param(lambda p: p.write_bytes(b""), id="emptied"),
]


@pytest.mark.parametrize("alter", ALTERATIONS)
def test_open_refuses_an_altered_store_object(
    opened: Opened, cli: Cli, alter: Callable[[Path], None]
) -> None:
    store_object = opened.object_path(LIST_NAME)
    store_object.chmod(0o644)
    alter(store_object)
    size = opened.case.log_size()
    result = _open(cli, opened, LIST_NAME, opened.work / "copy.txt")
    assert result.exit_code == 1, result.output
    assert str(store_object) in result.stderr
    assert "altered" in result.stderr
    assert "backup" in result.stderr and "evidence verify" in result.stderr
    assert _listing(opened.work) == []
    assert opened.case.log_size() == size


def test_open_refuses_a_store_object_replaced_by_a_link(
    opened: Opened, cli: Cli, tmp_path: Path
) -> None:
    # Even a link to the right bytes: the store holds originals, not pointers to elsewhere.
    store_object = opened.object_path(PHOTO_NAME)
    elsewhere = tmp_path / "elsewhere.jpg"
    elsewhere.write_bytes(store_object.read_bytes())
    _replace_object(store_object, lambda p: p.symlink_to(elsewhere))
    size = opened.case.log_size()
    result = _open(cli, opened, PHOTO_NAME, opened.work)
    assert result.exit_code == 1, result.output
    assert "symbolic link" in result.stderr
    assert str(store_object) in result.stderr
    assert _listing(opened.work) == []
    assert opened.case.log_size() == size


def test_open_refuses_a_store_object_replaced_by_a_folder(opened: Opened, cli: Cli) -> None:
    store_object = opened.object_path(PHOTO_NAME)
    _replace_object(store_object, Path.mkdir)
    result = _open(cli, opened, PHOTO_NAME, opened.work)
    assert result.exit_code == 1, result.output
    assert "not a regular file" in result.stderr
    assert _listing(opened.work) == []


def test_open_of_a_missing_store_object_names_the_object(opened: Opened, cli: Cli) -> None:
    store_object = opened.object_path(GROUP_NAME)
    store_object.chmod(0o644)
    store_object.unlink()
    size = opened.case.log_size()
    result = _open(cli, opened, GROUP_NAME, opened.work / "again.txt")
    assert result.exit_code == 1, result.output
    assert "missing from the store" in result.stderr
    assert str(store_object) in result.stderr
    assert "backup" in result.stderr and "evidence verify" in result.stderr
    assert "cannot copy to" not in result.stderr
    assert _listing(opened.work) == []
    assert opened.case.log_size() == size


# --- the destination -----------------------------------------------------------------------


def test_open_never_writes_through_a_dangling_link(
    opened: Opened, cli: Cli, tmp_path: Path
) -> None:
    outside = tmp_path / "outside" / "planted.txt"
    outside.parent.mkdir()
    link = opened.work / "notes.txt"
    link.symlink_to(outside)
    size = opened.case.log_size()
    result = _open(cli, opened, LIST_NAME, link)
    assert result.exit_code == 2, result.output
    assert "symbolic link" in result.stderr
    assert not os.path.lexists(outside)
    assert link.is_symlink() and os.readlink(link) == str(outside)
    assert _listing(opened.work) == ["notes.txt"]
    assert opened.case.log_size() == size


def test_open_into_a_folder_never_follows_a_link_of_the_items_name(
    opened: Opened, cli: Cli, tmp_path: Path
) -> None:
    outside = tmp_path / "planted.txt"
    (opened.work / LIST_NAME).symlink_to(outside)
    result = _open(cli, opened, LIST_NAME, opened.work)
    assert result.exit_code == 2, result.output
    assert not os.path.lexists(outside)


def test_open_never_replaces_a_file_or_what_a_link_points_to(
    opened: Opened, cli: Cli, tmp_path: Path
) -> None:
    kept = tmp_path / "kept.txt"
    kept.write_bytes(b"the investigator's own notes")
    (opened.work / "link.txt").symlink_to(kept)
    existing = opened.work / "existing.txt"
    existing.write_bytes(b"an earlier working copy")
    size = opened.case.log_size()
    via_link = _open(cli, opened, LIST_NAME, opened.work / "link.txt")
    over_file = _open(cli, opened, LIST_NAME, existing)
    assert (via_link.exit_code, over_file.exit_code) == (2, 2)
    assert "exists" in over_file.stderr
    assert kept.read_bytes() == b"the investigator's own notes"
    assert existing.read_bytes() == b"an earlier working copy"
    assert opened.case.log_size() == size


def test_open_into_a_missing_folder_is_an_input_error(opened: Opened, cli: Cli) -> None:
    result = _open(cli, opened, LIST_NAME, opened.work / "no-such-folder" / "copy.txt")
    assert result.exit_code == 2, result.output
    assert "no-such-folder" in result.stderr


# --- all or nothing ------------------------------------------------------------------------


def _read_only_catalog(path: Path | str) -> sqlite_utils.Database:
    # What SQLite does with a catalog.sqlite the user may not write (chmod a-w); the tests
    # may run as root, to whom file modes do not apply.
    uri = f"file:{path}?mode=ro"
    return sqlite_utils.Database(sqlite3.connect(uri, uri=True, isolation_level=None))


def test_a_read_only_catalog_leaves_no_copy_and_says_so(
    opened: Opened, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = opened.case.log_size()
    with monkeypatch.context() as patch:
        patch.setattr("evidence.workspace.open_database", _read_only_catalog)
        result = _open(cli, opened, LIST_NAME, opened.work)
    assert result.exit_code == 3, result.output
    assert "read-only" in result.stderr
    assert str(opened.case.root / "catalog.sqlite") in result.stderr
    assert "unexpected" not in result.stderr
    assert _listing(opened.work) == []
    assert opened.case.log_size() == size


def _no_hard_links(source: object, target: object) -> None:
    raise PermissionError(1, "Operation not permitted")


@pytest.mark.parametrize("hard_links", [True, False], ids=["hard-links", "no-hard-links"])
def test_a_name_taken_while_recording_is_never_overwritten(
    opened: Opened, cli: Cli, monkeypatch: pytest.MonkeyPatch, hard_links: bool
) -> None:
    # Without hard links (FAT and exFAT sticks) the copy is renamed into place instead, and
    # never over a name taken meanwhile either. The access was committed before the name is
    # taken (a copy is never visible without its event), so the error says it was recorded.
    if not hard_links:
        monkeypatch.setattr(os, "link", _no_hard_links)
    place = custody._place

    def taken_meanwhile(temp: Path, target: Path) -> None:
        target.write_bytes(b"written by another program meanwhile")
        place(temp, target)

    monkeypatch.setattr(custody, "_place", taken_meanwhile)
    size = opened.case.log_size()
    result = _open(cli, opened, LIST_NAME, opened.work / "copy.txt")
    assert result.exit_code == 2, result.output
    assert "exists" in result.stderr
    assert "the access was recorded, but the copy was not placed" in result.stderr
    assert (opened.work / "copy.txt").read_bytes() == b"written by another program meanwhile"
    assert _listing(opened.work) == ["copy.txt"]
    assert opened.case.log_size() == size + 1


def test_the_copy_takes_its_name_only_after_its_event_commits(
    opened: Opened, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed between the two, a run leaves an event whose copy is missing (and a hidden part
    # file, removed by the next open), never a copy that no event records.
    size = opened.case.log_size()
    place = custody._place
    seen: list[int] = []

    def after_the_commit(temp: Path, target: Path) -> None:
        assert not target.exists()
        seen.append(opened.case.log_size())  # read through a connection of its own
        place(temp, target)

    monkeypatch.setattr(custody, "_place", after_the_commit)
    result = _open(cli, opened, LIST_NAME, opened.work / "copy.txt")
    assert result.exit_code == 0, result.output
    assert seen == [size + 1]
    assert _listing(opened.work) == ["copy.txt"]


def test_an_interruption_before_the_commit_leaves_no_copy(
    opened: Opened, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Recorder, "append", interrupted)
    size = opened.case.log_size()
    result = _open(cli, opened, LIST_NAME, opened.work / "copy.txt")
    assert result.exit_code == 130, result.output
    assert _listing(opened.work) == []
    assert opened.case.log_size() == size


def test_ctrl_c_during_the_commit_is_held_until_the_copy_is_named(
    opened: Opened, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    append = Recorder.append

    def ctrl_c_meanwhile(self: Recorder, *args: Any) -> Any:
        signal.raise_signal(signal.SIGINT)
        return append(self, *args)

    monkeypatch.setattr(Recorder, "append", ctrl_c_meanwhile)
    size = opened.case.log_size()
    target = opened.work / "copy.txt"
    result = _open(cli, opened, LIST_NAME, target)
    assert result.exit_code == 130, result.output
    assert _listing(opened.work) == ["copy.txt"]
    assert sha256_of(target) == opened.sha[LIST_NAME]
    assert opened.case.log_size() == size + 1
    # The stop came with the work done: the user is not asked to run the command again.
    assert f"the access was recorded and the copy placed at {target}" in result.stderr
    assert "nothing needs to be run again" in result.stderr
    assert "run the command again" not in result.stderr
    assert cli("verify", "--case", opened.case.root).exit_code == 0


def test_the_part_file_of_a_killed_open_is_removed_by_the_next(opened: Opened, cli: Cli) -> None:
    dead = ended_pid()
    leftover = opened.work / f".evidence-open-{dead}-0123456789ab.part"
    leftover.write_bytes(b"fictional copy of a killed run")
    live = opened.work / f".evidence-open-{os.getpid()}-0123456789ab.part"
    live.write_bytes(b"fictional copy of a run still going")
    result = _open(cli, opened, LIST_NAME, opened.work)
    assert result.exit_code == 0, result.output
    assert _listing(opened.work) == [live.name, LIST_NAME]


def test_a_folder_without_hard_links_still_gets_the_copy(
    opened: Opened, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FAT and exFAT memory sticks refuse hard links: the copy is renamed into place instead.
    monkeypatch.setattr(os, "link", _no_hard_links)
    result = _open(cli, opened, PHOTO_NAME, opened.work)
    assert result.exit_code == 0, result.output
    assert _listing(opened.work) == [PHOTO_NAME]
    assert sha256_of(opened.work / PHOTO_NAME) == opened.sha[PHOTO_NAME]


def test_a_recorded_copy_is_complete_and_its_event_names_it(opened: Opened, cli: Cli) -> None:
    target = opened.work / "робоча копія.txt"
    size = opened.case.log_size()
    result = _open(cli, opened, GROUP_NAME, target, purpose="переклад англійською")
    assert result.exit_code == 0, result.output
    assert sha256_of(target) == opened.sha[GROUP_NAME]
    assert _listing(opened.work) == ["робоча копія.txt"]
    case = opened.case.open()
    try:
        assert case.log.size() == size + 1
        shown = custody.show_item(case, opened.sha[GROUP_NAME])
    finally:
        case.close()
    assert shown["custody"][-1]["action"] == "item.accessed"
    assert shown["custody"][-1]["summary"] == "copied out: переклад англійською"


def test_the_copy_name_is_printed_as_it_is(opened: Opened, cli: Cli) -> None:
    # A file name may hold square brackets: the console must not read them as markup.
    target = opened.work / "копія [draft] [bold].txt"
    result = _open(cli, opened, LIST_NAME, target)
    assert result.exit_code == 0, result.output
    assert f"Copied to {target}" in result.stdout


# --- the purpose ---------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", ["", "   ", "\t\n"], ids=["empty", "spaces", "whitespace"])
def test_open_refuses_an_empty_purpose(opened: Opened, cli: Cli, purpose: str) -> None:
    size = opened.case.log_size()
    result = _open(cli, opened, LIST_NAME, opened.work, purpose=purpose)
    assert result.exit_code == 2, result.output
    assert "--purpose" in result.stderr
    assert _listing(opened.work) == []
    assert opened.case.log_size() == size
