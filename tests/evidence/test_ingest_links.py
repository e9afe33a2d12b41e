"""Symbolic links through ``evidence ingest``: re-runs, links given as inputs, and which of a
file and a link to it becomes the item (SPEC section 9: links are recorded as links, followed
only with ``--follow-symlinks``, and a re-run ingests only what is missing).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence.ingest import IngestReport, ingest
from evidence.models import ItemOptions
from tests.conftest import CaseHandle, CliResult, InboxSetup, ListedInReverse, sha256_of

Cli = Callable[..., CliResult]
STATEMENT = b"Field note W-031: a fictional statement kept on a fictional stick.\n"
PHOTO = b"\xff\xd8\xff\xe0 fictional photo bytes\n"


class Setup(InboxSetup):
    """A case, an inbox folder on a fictional stick holding links, and the command line."""

    def table(self, *args: str | os.PathLike[str]) -> CliResult:
        result = self.cli("ingest", "--case", self.case.root, *args)
        assert result.exit_code in (0, 1), result.output
        return result

    def events(self, action: str) -> list[dict[str, Any]]:
        shown = self.cli("log", "show", "--case", self.case.root, "--json")
        assert shown.exit_code == 0, shown.output
        events = [json.loads(line)["event"] for line in shown.stdout.splitlines()]
        return [e for e in events if e["action"] == action]

    def library_ingest(self, paths: list[Path], **kwargs: object) -> IngestReport:
        case = self.case.open()
        try:
            return ingest(
                case,
                self.case.signer,
                paths,
                options=ItemOptions(),
                recursive=True,
                **kwargs,  # type: ignore[arg-type]
            )
        finally:
            case.close()


@pytest.fixture
def setup(make_case: Callable[..., CaseHandle], cli: Cli, tmp_path: Path) -> Setup:
    inbox = tmp_path / "stick"
    (inbox / "notes").mkdir(parents=True)
    (inbox / "notes" / "statement.txt").write_bytes(STATEMENT)
    (inbox / "latest.txt").symlink_to("notes/statement.txt")
    (inbox / "all-notes").symlink_to("notes")
    return Setup(make_case(), inbox, cli)


def _table_row(output: str, label: str) -> str:
    """The count on the row of the ingest summary table that starts with ``label``."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│┃ ").split("│")]
        if cells and cells[0] == label:
            return cells[-1]
    raise AssertionError(f"no row {label!r} in:\n{output}")


# --- a re-run says the links were already recorded ------------------------------------------


def test_rerun_reports_links_as_already_recorded(setup: Setup) -> None:
    links = [str(setup.inbox / "all-notes"), str(setup.inbox / "latest.txt")]
    first, report = setup.ingest("-r", setup.inbox)
    assert first.exit_code == 0, first.output
    assert report["symlinks"] == links
    assert report["symlinks_already_recorded"] == []
    recorded = setup.events("symlink.recorded")
    assert [e["data"]["path"] for e in recorded] == links

    again, second = setup.ingest("-r", setup.inbox)
    assert again.exit_code == 0, again.output
    # As the file already in the case is "skipped", the links are already recorded: counted
    # apart from links recorded by this run, of which there are none.
    assert second["skipped"] == 1
    assert second["symlinks"] == []
    assert second["symlinks_already_recorded"] == links
    assert second["checkpoint"] is None
    assert setup.events("symlink.recorded") == recorded
    # The summary table counts only the links this run recorded.
    assert _table_row(setup.table("-r", setup.inbox).stdout, "symlinks recorded") == "0"
    setup.verify_clean()


def test_rerun_with_follow_symlinks_reports_links_as_already_recorded(setup: Setup) -> None:
    _, first = setup.ingest("-r", "--follow-symlinks", setup.inbox)
    assert len(first["symlinks"]) == 2
    _, second = setup.ingest("-r", "--follow-symlinks", setup.inbox)
    assert (second["ingested"], second["duplicates"], second["skipped"]) == (0, 0, 3)
    assert second["symlinks"] == []
    assert second["symlinks_already_recorded"] == first["symlinks"]
    assert len(setup.events("symlink.recorded")) == 2


def test_link_met_twice_in_one_run_is_recorded_once(setup: Setup) -> None:
    report = setup.library_ingest([setup.inbox, setup.inbox])
    assert report.symlinks == [str(setup.inbox / "all-notes"), str(setup.inbox / "latest.txt")]
    assert report.symlinks_already_recorded == report.symlinks
    assert report.as_json()["symlinks_already_recorded"] == report.symlinks
    assert len(setup.events("symlink.recorded")) == 2


def test_link_whose_target_changed_is_recorded_again(setup: Setup) -> None:
    setup.library_ingest([setup.inbox])
    latest = setup.inbox / "latest.txt"
    (setup.inbox / "notes" / "draft.txt").write_bytes(b"a fictional draft\n")
    latest.unlink()
    latest.symlink_to("notes/draft.txt")
    changed = setup.library_ingest([setup.inbox])
    assert changed.symlinks == [str(latest)]
    assert changed.symlinks_already_recorded == [str(setup.inbox / "all-notes")]
    assert changed.checkpoint is not None
    # Changed back: it has changed since it was last recorded.
    latest.unlink()
    latest.symlink_to("notes/statement.txt")
    back = setup.library_ingest([setup.inbox])
    assert back.symlinks == [str(latest)]
    targets = [e["data"]["target"] for e in setup.events("symlink.recorded")]
    assert targets == [
        "notes",
        "notes/statement.txt",
        "notes/draft.txt",
        "notes/statement.txt",
    ]
    setup.verify_clean()


def test_link_target_keeps_its_exact_bytes(setup: Setup) -> None:
    # A target that is not UTF-8 is shown escaped; the event keeps its bytes as well, as it
    # keeps those of the link's own path.
    target = b"notes/z\xe4hlung.txt"  # Latin-1, as an old stick may hold
    os.symlink(target, os.path.join(os.fsencode(setup.inbox), b"count.txt"))
    setup.library_ingest([setup.inbox])
    by_path = {e["data"]["path"]: e["data"] for e in setup.events("symlink.recorded")}
    data = by_path[str(setup.inbox / "count.txt")]
    assert data["target"] != target.decode("latin-1")
    assert base64.b64decode(data["target_b64"]) == target
    assert base64.b64decode(by_path[str(setup.inbox / "latest.txt")]["target_b64"]) == (
        b"notes/statement.txt"
    )
    setup.verify_clean()


# --- a link given as an input -----------------------------------------------------------------


@pytest.fixture
def photos_link(tmp_path: Path) -> tuple[Path, Path]:
    """``mnt/stick/photos`` -> ``elsewhere/photos``, which holds one fictional photo."""
    real = tmp_path / "elsewhere" / "photos"
    real.mkdir(parents=True)
    (real / "IMG_0001.jpg").write_bytes(PHOTO)
    link = tmp_path / "mnt" / "stick" / "photos"
    link.parent.mkdir(parents=True)
    link.symlink_to("../../elsewhere/photos")
    return link, real


def test_root_folder_that_is_a_link_is_not_ingested_silently(
    setup: Setup, photos_link: tuple[Path, Path]
) -> None:
    link, real = photos_link
    result = setup.table("-r", link)
    # Exit 1 and a message on stderr naming the link, what it leads to and what to do.
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"refused: {link}: is a symbolic link to ../../elsewhere/photos (a folder); it is "
        "recorded as a link and was not followed, so nothing in that folder was ingested: to "
        f"ingest it, re-run with --follow-symlinks, or give the folder's own path ({real})"
    ]
    assert _table_row(result.stdout, "ingested") == "0"
    assert _table_row(result.stdout, "refused") == "1"
    # SPEC 9: recorded as a link, not followed.
    assert [e["data"]["path"] for e in setup.events("symlink.recorded")] == [str(link)]
    assert setup.events("item.ingested") == []

    _, report = setup.ingest("-r", link)
    assert [(r["path"], r["code"]) for r in report["refused"]] == [
        (str(link), "symlink-not-followed")
    ]
    assert report["symlinks"] == []
    assert report["symlinks_already_recorded"] == [str(link)]


def test_root_folder_that_is_a_link_is_ingested_with_follow_symlinks(
    setup: Setup, photos_link: tuple[Path, Path]
) -> None:
    link, real = photos_link
    result, report = setup.ingest("-r", "--follow-symlinks", link)
    assert result.exit_code == 0, result.output
    assert report["refused"] == []
    assert [(f["path"], f["status"]) for f in report["files"]] == [
        (str(link / "IMG_0001.jpg"), "ingested")
    ]
    [event] = setup.events("item.ingested")
    assert event["data"]["path"] == str(link / "IMG_0001.jpg")
    assert event["data"]["resolved_path"] == str(real / "IMG_0001.jpg")
    setup.verify_clean()


def test_file_link_given_is_refused_with_what_to_do(setup: Setup) -> None:
    latest = setup.inbox / "latest.txt"
    result, report = setup.ingest(latest)
    assert result.exit_code == 1
    [refused] = report["refused"]
    assert refused["code"] == "symlink-not-followed"
    assert "--follow-symlinks" in refused["reason"]
    assert str(setup.inbox / "notes" / "statement.txt") in refused["reason"]
    followed, report = setup.ingest("--follow-symlinks", latest)
    assert followed.exit_code == 0, followed.output
    assert [f["status"] for f in report["files"]] == ["ingested"]


def test_link_met_in_a_walk_is_only_recorded(setup: Setup) -> None:
    result, report = setup.ingest("-r", setup.inbox)
    assert result.exit_code == 0
    assert report["refused"] == []
    assert result.stderr == ""


# --- a file and a link to it: which becomes the item ----------------------------------------


def _recorded(setup: Setup, folder: Path, sha: str) -> list[tuple[str, str, str | None]]:
    """(action, path under ``folder``, resolved path under ``folder``) of each event of ``sha``."""
    out = []
    for action in ("item.ingested", "item.sighted"):
        for event in setup.events(action):
            if event["subject"] != sha or not event["data"]["path"].startswith(f"{folder}/"):
                continue
            resolved = event["data"].get("resolved_path")
            out.append(
                (
                    action,
                    os.path.relpath(event["data"]["path"], folder),
                    None if resolved is None else os.path.relpath(resolved, folder),
                )
            )
    return out


@pytest.mark.parametrize(
    ("link_name", "file_name", "expected"),
    [
        pytest.param(
            "z.txt",
            "a.txt",
            [("item.ingested", "a.txt", None), ("item.sighted", "z.txt", "a.txt")],
            id="file-sorts-first",
        ),
        pytest.param(
            "a.txt",
            "z.txt",
            [("item.ingested", "a.txt", "z.txt"), ("item.sighted", "z.txt", None)],
            id="link-sorts-first",
        ),
    ],
)
def test_file_and_link_to_it_give_the_same_record_whatever_the_listing_order(
    setup: Setup,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    link_name: str,
    file_name: str,
    expected: list[tuple[str, str, str | None]],
) -> None:
    """The first path met in byte order is the item; the other path is a sighting. Two copies
    of the folder, one listed by the file system in the reverse order, give the same record."""
    copies = [tmp_path / "copy-1", tmp_path / "copy-2"]
    for copy in copies:
        copy.mkdir()
        (copy / file_name).write_bytes(STATEMENT + copy.name.encode())
        (copy / link_name).symlink_to(file_name)
    setup.ingest("-r", "--follow-symlinks", copies[0])
    with monkeypatch.context() as patched:
        patched.setattr(os, "scandir", ListedInReverse)
        setup.ingest("-r", "--follow-symlinks", copies[1])
    for copy in copies:
        assert _recorded(setup, copy, sha256_of(copy / file_name)) == expected
