"""The bad inputs of SPEC section 9, one named case each, through ``evidence ingest``.

A batch is never lost because one input is bad: each refused input is reported with its reason,
the rest are ingested and the exit code is 1. Names are kept exactly (``name_b64``) and shown
escaped. Unreadable files need an unprivileged user and are in test_subprocess.py.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from PIL import Image

from evidence import ingest as ingest_module
from evidence.objects import ObjectStore
from tests.conftest import CaseHandle, CliResult, InboxSetup, sha256_of

Cli = Callable[..., CliResult]
GOOD = b"Field note W-017: a bus left the generic town square at dawn (fictional).\n"


Setup = InboxSetup


@pytest.fixture
def setup(make_case: Callable[..., CaseHandle], cli: Cli, tmp_path: Path) -> Setup:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.txt").write_bytes(GOOD)
    return Setup(make_case(), inbox, cli)


def _refusal_codes(report: dict[str, Any]) -> list[str]:
    return [r["code"] for r in report["refused"]]


# --- refused inputs: reported with a reason, the rest ingested, exit 1 ---------------------


def _empty(inbox: Path) -> list[Path]:
    (inbox / "empty.txt").write_bytes(b"")
    return []


def _fifo(inbox: Path) -> list[Path]:
    os.mkfifo(inbox / "pipe")
    return []


def _socket(inbox: Path) -> list[Path]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Closed again at once: the socket file stays behind, which is all the scan sees.
    sock.bind(os.fspath(inbox / "sock"))
    sock.close()
    return []


def _device(inbox: Path) -> list[Path]:
    return [Path("/dev/null")]


def _not_found(inbox: Path) -> list[Path]:
    return [inbox.parent / "does-not-exist.txt"]


def _symlink_outside(inbox: Path) -> list[Path]:
    outside = inbox.parent / "outside.txt"
    outside.write_bytes(b"outside the given roots")
    (inbox / "link-out").symlink_to(outside)
    return []


def _symlink_dangling(inbox: Path) -> list[Path]:
    (inbox / "link-dangling").symlink_to(inbox / "gone.txt")
    return []


def _symlink_loop(inbox: Path) -> list[Path]:
    (inbox / "loop-a").symlink_to(inbox / "loop-b")
    (inbox / "loop-b").symlink_to(inbox / "loop-a")
    return []


def _directory_loop(inbox: Path) -> list[Path]:
    sub = inbox / "sub"
    sub.mkdir()
    (sub / "up").symlink_to(inbox)
    return []


REFUSED = [
    pytest.param(_empty, (), "empty-file", "empty.txt", id="zero-byte-file"),
    pytest.param(_fifo, (), "fifo", "pipe", id="fifo"),
    pytest.param(_socket, (), "socket", "sock", id="socket"),
    pytest.param(_device, (), "device", "/dev/null", id="device"),
    pytest.param(_not_found, (), "not-found", "does-not-exist.txt", id="path-not-found"),
    pytest.param(
        _symlink_outside,
        ("--follow-symlinks",),
        "symlink-outside-roots",
        "link-out",
        id="symlink-outside-roots",
    ),
    pytest.param(
        _symlink_dangling,
        ("--follow-symlinks",),
        "symlink-dangling",
        "link-dangling",
        id="symlink-dangling",
    ),
    pytest.param(
        _symlink_loop, ("--follow-symlinks",), "symlink-loop", "loop-a", id="symlink-loop"
    ),
    pytest.param(
        _directory_loop, ("--follow-symlinks",), "symlink-loop", "up", id="symlink-to-ancestor"
    ),
]


@pytest.mark.parametrize(("make", "options", "code", "shown"), REFUSED)
def test_refused_input_is_reported_and_the_rest_ingested(
    setup: Setup,
    make: Callable[[Path], list[Path]],
    options: tuple[str, ...],
    code: str,
    shown: str,
) -> None:
    extra = make(setup.inbox)
    text = setup.cli("ingest", "--case", setup.case.root, "-r", *options, setup.inbox, *extra)
    assert text.exit_code == 1, text.output
    # A rerun refuses the same input again, for the same reason; --json gives the codes.
    result, report = setup.ingest("-r", *options, setup.inbox, *extra)
    assert result.exit_code == 1, result.output
    assert code in _refusal_codes(report), report["refused"]
    refusal = next(r for r in report["refused"] if r["code"] == code)
    assert shown in refusal["path"]
    assert refusal["reason"]
    # The diagnostics on stderr name the file and the reason.
    assert f"refused: {refusal['path']}: {refusal['reason']}" in text.stderr
    assert [i["sha256"] for i in setup.items()] == [sha256_of(setup.inbox / "good.txt")]
    setup.verify_clean()


def test_directory_without_recursive_is_refused(setup: Setup) -> None:
    result, report = setup.ingest(setup.inbox)
    assert result.exit_code == 1
    assert _refusal_codes(report) == ["directory"]
    assert "--recursive" in report["refused"][0]["reason"]
    assert setup.items() == []


def test_only_bad_inputs_still_exits_1(setup: Setup) -> None:
    (setup.inbox / "good.txt").unlink()
    (setup.inbox / "empty.txt").write_bytes(b"")
    result, report = setup.ingest("-r", setup.inbox)
    assert result.exit_code == 1
    assert report["ingested"] == 0


# --- symbolic links: recorded, followed only when asked, never outside the roots -----------


def test_symlink_is_recorded_not_followed_by_default(setup: Setup) -> None:
    (setup.inbox / "sub").mkdir()
    (setup.inbox / "sub" / "target.txt").write_bytes(b"linked content")
    (setup.inbox / "alias").symlink_to(setup.inbox / "sub")
    result, report = setup.ingest("-r", setup.inbox)
    assert result.exit_code == 0, result.output
    assert [Path(p).name for p in report["symlinks"]] == ["alias"]
    assert report["ingested"] == 2
    log = setup.cli("log", "show", "--case", setup.case.root, "--json").stdout.splitlines()
    recorded = [json.loads(line)["event"] for line in log]
    links = [e for e in recorded if e["action"] == "symlink.recorded"]
    assert len(links) == 1
    assert links[0]["data"]["target"] == str(setup.inbox / "sub")
    # Rerun: the link is not recorded twice.
    again, _ = setup.ingest("-r", setup.inbox)
    assert again.exit_code == 0
    log_again = setup.cli("log", "show", "--case", setup.case.root, "--json").stdout
    assert log_again.count('"symlink.recorded"') == 1
    setup.verify_clean()


def test_symlink_outside_the_roots_is_not_followed(setup: Setup, tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere" / "private.txt"
    secret.parent.mkdir()
    secret.write_bytes(b"must not be ingested through a link")
    (setup.inbox / "escape").symlink_to(secret)
    result, report = setup.ingest("-r", setup.inbox)
    assert result.exit_code == 0
    assert sha256_of(secret) not in {i["sha256"] for i in setup.items()}
    followed, report = setup.ingest("-r", "--follow-symlinks", setup.inbox)
    assert followed.exit_code == 1
    assert _refusal_codes(report) == ["symlink-outside-roots"]
    assert sha256_of(secret) not in {i["sha256"] for i in setup.items()}


def test_symlink_inside_the_roots_is_followed_when_asked(setup: Setup) -> None:
    (setup.inbox / "sub").mkdir()
    (setup.inbox / "sub" / "target.txt").write_bytes(b"linked content")
    (setup.inbox / "alias.txt").symlink_to(setup.inbox / "sub" / "target.txt")
    other = setup.inbox.parent / "other"
    other.mkdir()
    (other / "via-link.txt").symlink_to(setup.inbox / "good.txt")
    result, report = setup.ingest("-r", "--follow-symlinks", setup.inbox, other)
    assert result.exit_code == 0, result.output
    assert sorted(Path(p).name for p in report["symlinks"]) == ["alias.txt", "via-link.txt"]
    # One object per content however many ways it was reached.
    assert len(setup.items()) == 2
    setup.verify_clean()


def test_followed_symlink_is_recorded_at_the_path_as_given(setup: Setup) -> None:
    """SPEC 5: the original path as given. A file reached through a link (to the file, or to a
    folder above it) is recorded at the link's path under the root, the file read beside it."""
    sub = setup.inbox / "sub"
    sub.mkdir()
    target = sub / "target.txt"
    target.write_bytes(b"a fictional statement reached through links\n")
    (setup.inbox / "alias.txt").symlink_to("sub/target.txt")
    (setup.inbox / "folder-link").symlink_to("sub")
    result, report = setup.ingest("-r", "--follow-symlinks", setup.inbox)
    assert result.exit_code == 0, result.output
    by_path = {f["path"]: f["status"] for f in report["files"]}
    alias, via_folder = setup.inbox / "alias.txt", setup.inbox / "folder-link" / "target.txt"
    # The walk meets alias.txt first: the item is ingested there, then sighted at each path.
    assert by_path == {
        str(alias): "ingested",
        str(via_folder): "duplicate",
        str(setup.inbox / "good.txt"): "ingested",
        str(target): "duplicate",
    }
    log = setup.cli("log", "show", "--case", setup.case.root, "--json").stdout.splitlines()
    events = [json.loads(line)["event"] for line in log]
    sightings = {
        e["data"]["path"]: e["data"]
        for e in events
        if e["action"] in ("item.ingested", "item.sighted") and e["subject"] == sha256_of(target)
    }
    assert sorted(sightings) == sorted([str(alias), str(via_folder), str(target)])
    for given in (alias, via_folder):
        data = sightings[str(given)]
        assert base64.b64decode(data["path_b64"]) == os.fsencode(given)
        assert data["name"] == given.name
        assert data["resolved_path"] == str(target)
        assert base64.b64decode(data["resolved_path_b64"]) == os.fsencode(target)
    assert "resolved_path" not in sightings[str(target)]
    # A rerun keys every file by the path it was met at: nothing is read or recorded again.
    again, second = setup.ingest("-r", "--follow-symlinks", setup.inbox)
    assert again.exit_code == 0
    assert (second["ingested"], second["duplicates"], second["skipped"]) == (0, 0, 4)
    assert setup.cli("log", "show", "--case", setup.case.root, "--json").stdout.splitlines() == log
    setup.verify_clean()


def test_followed_folder_link_still_stays_inside_the_roots(setup: Setup, tmp_path: Path) -> None:
    # A link inside a followed folder link that leads out of the roots is refused, named at
    # the path it was met at.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_bytes(b"not among the given inputs")
    sub = setup.inbox / "sub"
    sub.mkdir()
    (sub / "escape.txt").symlink_to(outside / "private.txt")
    (setup.inbox / "folder-link").symlink_to("sub")
    result, report = setup.ingest("-r", "--follow-symlinks", setup.inbox)
    assert result.exit_code == 1
    assert sorted((r["path"], r["code"]) for r in report["refused"]) == [
        (str(setup.inbox / "folder-link" / "escape.txt"), "symlink-outside-roots"),
        (str(sub / "escape.txt"), "symlink-outside-roots"),
    ]
    assert sha256_of(outside / "private.txt") not in {i["sha256"] for i in setup.items()}


# --- names: kept exactly, shown escaped ----------------------------------------------------

NAMES = [
    pytest.param(b"not-utf8-\xff\xfe.txt", "\\xff\\xfe", id="invalid-utf8"),
    pytest.param(b"latin1-caf\xe9.txt", "\\xe9", id="latin1-byte"),
    pytest.param(b"line\nbreak.txt", "\\u000a", id="newline"),
    pytest.param(b"tab\there.txt", "\\u0009", id="tab"),
    pytest.param(b"escape-\x1b[31mred.txt", "\\u001b", id="terminal-escape"),
    pytest.param(b"carriage\rreturn.txt", "\\u000d", id="carriage-return"),
    pytest.param("zero\u200bwidth.txt".encode(), "\\u200b", id="zero-width-space"),
    pytest.param("rtl-\u202egnp.exe".encode(), "\\u202e", id="right-to-left-override"),
    pytest.param("bom-\ufeff.txt".encode(), "\\ufeff", id="byte-order-mark"),
    pytest.param(b"back\\slash.txt", "\\\\", id="backslash"),
    pytest.param(
        "\u0421\u0432\u0456\u0434\u043e\u0446\u0442\u0432\u043e.txt".encode(), "", id="cyrillic"
    ),
    pytest.param(b"x" * 255, "", id="name-of-255-bytes"),
    pytest.param("\u0416".encode() * 127, "", id="name-of-254-bytes-cyrillic"),
]


@pytest.mark.parametrize(("raw", "escaped"), NAMES)
def test_names_are_kept_exactly_and_shown_escaped(setup: Setup, raw: bytes, escaped: str) -> None:
    content = b"content of a file with an unusual name: " + raw
    path = os.path.join(os.fsencode(setup.inbox), raw)
    with open(path, "wb") as handle:
        handle.write(content)
    result, _ = setup.ingest("-r", setup.inbox)
    assert result.exit_code == 0, result.output
    [item] = [i for i in setup.items() if i["name"] != "good.txt"]
    assert base64.b64decode(item["name_b64"]) == raw
    assert base64.b64decode(item["name_b64"]) == os.path.basename(path)
    if escaped:
        assert escaped in item["name"]
    # Shown without any raw control character, in JSON and in the table.
    assert item["name"].isprintable()
    table = setup.cli("list", "--case", setup.case.root)
    assert table.exit_code == 0
    assert "\x1b" not in table.stdout
    assert "\r" not in table.stdout
    assert "\u200b" not in table.stdout
    assert "\u202e" not in table.stdout
    # The stored original is the file's bytes, whatever its name.
    sha = item["sha256"]
    stored = setup.case.root / "objects" / "sha256" / sha[:2] / sha[2:]
    assert stored.read_bytes() == content
    setup.verify_clean()


def test_path_longer_than_path_max_is_refused_not_fatal(setup: Setup) -> None:
    # Built one level at a time relative to a directory descriptor: the kernel refuses
    # whole paths beyond PATH_MAX (4096 bytes), which is exactly what the ingest meets.
    fd = os.open(setup.inbox, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(20):
            name = f"level-{level:02d}-" + "d" * 200
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        leaf = os.open("deep.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, b"deep down")
        os.close(leaf)
    finally:
        os.close(fd)
    result, report = setup.ingest("-r", setup.inbox)
    assert result.exit_code == 1, result.output
    assert _refusal_codes(report) == ["name-too-long"]
    assert "level-19" in report["refused"][0]["path"]
    assert [i["name"] for i in setup.items()] == ["good.txt"]
    setup.verify_clean()


# --- duplicate content ---------------------------------------------------------------------


def test_duplicate_content_is_one_object_and_a_second_sighting(setup: Setup) -> None:
    (setup.inbox / "copy-of-good.txt").write_bytes(GOOD)
    result, report = setup.ingest("-r", setup.inbox)
    assert result.exit_code == 0
    assert (report["ingested"], report["duplicates"]) == (1, 1)
    [item] = setup.items()
    details = json.loads(
        setup.cli("show", item["sha256"], "--case", setup.case.root, "--json").stdout
    )
    assert [s["duplicate"] for s in details["sightings"]] == [False, True]
    assert [c["action"] for c in details["custody"]] == ["item.ingested", "item.sighted"]
    store = ObjectStore(setup.case.root / "objects")
    assert list(store.iter_objects()) == [item["sha256"]]
    setup.verify_clean()


def test_same_file_in_a_second_run_from_another_folder(setup: Setup, tmp_path: Path) -> None:
    setup.ingest("-r", setup.inbox)
    second = tmp_path / "second"
    second.mkdir()
    (second / "renamed.txt").write_bytes(GOOD)
    result, report = setup.ingest("-r", second)
    assert result.exit_code == 0
    assert (report["ingested"], report["duplicates"]) == (0, 1)
    assert len(setup.items()) == 1


# --- corrupt and encrypted documents: ingested as bytes, extraction failure recorded -------


def _encrypted_pdf() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    path = Path(os.environ["PYTEST_TMP_PDF"])
    pdf.save(path, encryption=pikepdf.Encryption(owner="owner-secret", user="user-secret"))
    return path.read_bytes()


DOCUMENTS = [
    pytest.param("corrupt.pdf", lambda: b"%PDF-1.7\n1 0 obj <<>> garbage\n", id="corrupt-pdf"),
    pytest.param("encrypted.pdf", _encrypted_pdf, id="encrypted-pdf"),
    pytest.param(
        "corrupt.jpg", lambda: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(40), id="corrupt-jpeg"
    ),
    pytest.param(
        "truncated.png", lambda: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", id="truncated-png"
    ),
    pytest.param("not-really.mp4", lambda: b"\x00\x00\x00\x18ftypmp42" + bytes(30), id="bad-mp4"),
]


@pytest.mark.parametrize(("name", "make"), DOCUMENTS)
def test_corrupt_documents_are_ingested_with_the_failure_recorded(
    setup: Setup,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    make: Callable[[], bytes],
) -> None:
    monkeypatch.setenv("PYTEST_TMP_PDF", str(tmp_path / "scratch.pdf"))
    data = make()
    (setup.inbox / name).write_bytes(data)
    result, report = setup.ingest("-r", setup.inbox)
    assert result.exit_code == 0, result.output
    assert report["ingested"] == 2
    [item] = [i for i in setup.items() if i["name"] == name]
    assert item["sha256"] == sha256_of(setup.inbox / name)
    if name != "not-really.mp4":
        assert "error" in item["metadata"], item["metadata"]
    setup.verify_clean()


# --- files that vanish or change during the run --------------------------------------------


@pytest.fixture
def sabotage(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str, Callable[[Path], None]], None]]:
    """Run an action on a named input just before the store reads it (a race made certain)."""
    original = ObjectStore.put_file

    def install(name: str, action: Callable[[Path], None]) -> None:
        def put_file(self: ObjectStore, path: Path, **kwargs: Any) -> Any:
            if Path(path).name == name:
                action(Path(path))
            return original(self, path, **kwargs)

        monkeypatch.setattr(ObjectStore, "put_file", put_file)

    yield install


def test_vanished_file_is_refused_and_picked_up_by_a_rerun(setup: Setup, sabotage: Any) -> None:
    (setup.inbox / "vanishing.txt").write_bytes(b"here at scan time only")
    kept = (setup.inbox / "vanishing.txt").read_bytes()
    sabotage("vanishing.txt", lambda p: p.unlink())
    result, report = setup.ingest("-r", setup.inbox)
    assert result.exit_code == 1, result.output
    assert _refusal_codes(report) == ["vanished"]
    assert "vanishing.txt" in report["refused"][0]["path"]
    assert report["ingested"] == 1
    setup.verify_clean()
    sabotage("none", lambda p: None)
    (setup.inbox / "vanishing.txt").write_bytes(kept)
    rerun, report = setup.ingest("-r", setup.inbox)
    assert rerun.exit_code == 0
    assert (report["ingested"], report["skipped"]) == (1, 1)


def test_file_replaced_by_a_fifo_after_the_scan_is_refused(setup: Setup, sabotage: Any) -> None:
    (setup.inbox / "swapped").write_bytes(b"a regular file at scan time")

    def swap(path: Path) -> None:
        path.unlink()
        os.mkfifo(path)

    sabotage("swapped", swap)
    result, report = setup.ingest("-r", setup.inbox)
    assert result.exit_code == 1
    assert len(report["refused"]) == 1
    assert report["ingested"] == 1
    setup.verify_clean()


def test_file_replaced_by_a_symlink_after_the_scan_is_not_followed(
    setup: Setup, sabotage: Any, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"outside the roots")
    (setup.inbox / "swapped.txt").write_bytes(b"a regular file at scan time")

    def swap(path: Path) -> None:
        path.unlink()
        path.symlink_to(secret)

    sabotage("swapped.txt", swap)
    result, report = setup.ingest("-r", setup.inbox)
    assert result.exit_code == 1
    assert _refusal_codes(report) == ["symlink-replaced"]
    assert sha256_of(secret) not in {i["sha256"] for i in setup.items()}


# --- an interrupted run --------------------------------------------------------------------


def test_interrupted_run_is_completed_by_a_rerun(
    setup: Setup, make_corpus: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = make_corpus(30, seed=11)
    monkeypatch.setattr(ingest_module, "BATCH_EVENTS", 8)
    original = ingest_module._commit
    calls = {"n": 0}

    def commit_then_interrupt(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        original(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "_commit", commit_then_interrupt)
    result = setup.cli("ingest", "--case", setup.case.root, "-r", corpus)
    assert result.exit_code == 130
    assert "run the command again" in result.stderr
    assert len(setup.items()) == 16
    monkeypatch.setattr(ingest_module, "_commit", original)
    rerun, report = setup.ingest("-r", corpus)
    assert rerun.exit_code == 0
    assert (report["ingested"], report["skipped"]) == (14, 16)
    items = setup.items()
    assert sorted(i["sha256"] for i in items) == sorted(sha256_of(p) for p in corpus.iterdir())
    setup.verify_clean()


def test_object_stored_by_an_interrupted_run_keeps_its_metadata(setup: Setup) -> None:
    image = setup.inbox / "photo.png"
    Image.new("RGB", (32, 24), (200, 120, 40)).save(image)
    # What a run killed after storing the object but before logging it leaves behind.
    ObjectStore(setup.case.root / "objects").put_file(image)
    result, _ = setup.ingest("-r", setup.inbox)
    assert result.exit_code == 0
    [item] = [i for i in setup.items() if i["name"] == "photo.png"]
    assert item["metadata"].get("width") == 32, item["metadata"]
    assert item["metadata"].get("height") == 24
    setup.verify_clean()


def test_emoji_codes_in_names_and_text_are_printed_as_typed(
    make_case: Callable[..., CaseHandle], cli: Cli, tmp_path: Path
) -> None:
    """Rich would turn ``:100:`` into a picture: a file name and line number, or typed text,
    must reach the screen as typed."""
    case = make_case()
    c = ("--case", case.root)
    title = "Transfer :100: children :bus:"
    added = cli("incident", "add", "--title", title, "--start", "2022-05", "--place", "Depot", *c)
    assert added.exit_code == 0, added.output
    listed = cli("incident", "list", *c)
    assert title in listed.stdout
    missing = tmp_path / "record:100:draft.yaml"
    refused = cli("incident", "add", "--from", missing, *c)
    assert refused.exit_code == 2
    assert "record:100:draft.yaml" in refused.stderr
    assert "\N{HUNDRED POINTS SYMBOL}" not in listed.stdout + refused.stderr
