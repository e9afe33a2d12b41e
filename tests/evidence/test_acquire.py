"""Scanning inputs: one named case per bad input of SPEC section 9, display names, MIME types."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import magic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evidence import acquire
from evidence.acquire import (
    Candidate,
    Excluded,
    Reason,
    Refusal,
    ScanResult,
    SourceError,
    SymlinkRecord,
    detect_mime,
    display_name,
    scan_inputs,
)
from evidence.objects import ObjectStore
from tests.conftest import ListedInReverse

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample-data" / "files"
IS_ROOT = os.geteuid() == 0
ROOT_SKIP = pytest.mark.skipif(
    IS_ROOT,
    reason="root can read files and directories of mode 000; "
    "test_unreadable_inputs_as_unprivileged_user covers this case when running as root",
)


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """Fail instead of hanging forever if anything opens a FIFO for reading."""

    def timeout(signum: int, frame: object) -> None:
        raise TimeoutError("scan blocked (a FIFO was opened for reading?)")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def write(path: Path, data: bytes = b"content\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def summary(results: list[ScanResult], base: Path) -> list[tuple[object, ...]]:
    """Results in a comparable form, paths relative to ``base``."""
    prefix = os.fsencode(base) + b"/"

    def rel(raw: bytes) -> bytes:
        return raw.removeprefix(prefix)

    out: list[tuple[object, ...]] = []
    for result in results:
        if isinstance(result, Candidate):
            via = rel(result.is_symlink_target_of) if result.is_symlink_target_of else None
            out.append(("file", rel(result.raw_path), via))
        elif isinstance(result, Refusal):
            out.append(("refused", rel(result.raw_path), result.reason_code))
        else:
            out.append(("link", rel(result.raw_path), result.followed))
    return out


# Each builder makes the input in a fresh directory and returns (paths, recursive, follow).
Build = Callable[[Path], tuple[list[Path], bool, bool]]


def fifo_given(tmp: Path) -> tuple[list[Path], bool, bool]:
    os.mkfifo(tmp / "pipe")
    return [tmp / "pipe"], False, False


def fifo_in_directory(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "d" / "a.txt")
    os.mkfifo(tmp / "d" / "pipe")
    return [tmp / "d"], True, False


def device_given(tmp: Path) -> tuple[list[Path], bool, bool]:
    return [Path("/dev/null")], False, False


def socket_given(tmp: Path) -> tuple[list[Path], bool, bool]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(tmp / "sock"))
    return [tmp / "sock"], False, False


def zero_byte_file(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "empty.txt", b"")
    return [tmp / "empty.txt"], False, False


def unreadable_file(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "secret.txt").chmod(0o000)
    return [tmp / "secret.txt"], False, False


def unreadable_directory(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "d" / "locked" / "a.txt")
    (tmp / "d" / "locked").chmod(0o000)
    return [tmp / "d"], True, False


def symlink_not_followed(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "d" / "a.txt")
    (tmp / "d" / "link").symlink_to("a.txt")
    return [tmp / "d"], True, False


def symlink_given_not_followed(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "a.txt")
    (tmp / "link").symlink_to("a.txt")
    return [tmp / "link"], False, False


def symlink_to_folder_given_not_followed(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "elsewhere" / "photos" / "a.jpg")
    (tmp / "photos").symlink_to("elsewhere/photos")
    return [tmp / "photos"], True, False


def symlink_dangling_given_not_followed(tmp: Path) -> tuple[list[Path], bool, bool]:
    (tmp / "gone").symlink_to("nothing-here")
    return [tmp / "gone"], False, False


def symlink_loop_given_not_followed(tmp: Path) -> tuple[list[Path], bool, bool]:
    (tmp / "x").symlink_to("y")
    (tmp / "y").symlink_to("x")
    return [tmp / "x"], False, False


def symlink_inside_roots(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "d" / "a.txt")
    (tmp / "d" / "link").symlink_to("a.txt")
    return [tmp / "d"], True, True


def symlink_dir_inside_roots(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "d" / "sub" / "a.txt")
    (tmp / "d" / "alias").symlink_to("sub")
    return [tmp / "d"], True, True


def symlink_outside_roots(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "outside.txt")
    write(tmp / "d" / "a.txt")
    (tmp / "d" / "link").symlink_to(tmp / "outside.txt")
    return [tmp / "d"], True, True


def symlink_dir_outside_roots(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "elsewhere" / "x.txt")
    (tmp / "d").mkdir()
    (tmp / "d" / "up").symlink_to("../elsewhere")
    return [tmp / "d"], True, True


def symlink_dotdot_prefix_is_outside(tmp: Path) -> tuple[list[Path], bool, bool]:
    # "d-other" starts with "d" but is not inside "d".
    write(tmp / "d-other" / "x.txt")
    (tmp / "d").mkdir()
    (tmp / "d" / "sib").symlink_to("../d-other/x.txt")
    return [tmp / "d"], True, True


def symlink_loop(tmp: Path) -> tuple[list[Path], bool, bool]:
    (tmp / "d").mkdir()
    (tmp / "d" / "x").symlink_to("y")
    (tmp / "d" / "y").symlink_to("x")
    return [tmp / "d"], True, True


def symlink_self_loop(tmp: Path) -> tuple[list[Path], bool, bool]:
    (tmp / "self").symlink_to("self")
    return [tmp / "self"], False, True


def symlink_directory_loop(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "d" / "sub" / "a.txt")
    (tmp / "d" / "sub" / "top").symlink_to("..")
    return [tmp / "d"], True, True


def symlink_dangling(tmp: Path) -> tuple[list[Path], bool, bool]:
    (tmp / "gone").symlink_to("nothing-here")
    return [tmp / "gone"], False, True


def invalid_utf8_name(tmp: Path) -> tuple[list[Path], bool, bool]:
    raw = os.fsencode(tmp) + b"/bad-\xff\xfe.txt"
    with open(raw, "wb") as handle:
        handle.write(b"x")
    return [tmp], True, False


def control_char_name(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "line\nbreak\x07.txt")
    return [tmp], True, False


def zero_width_name(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "zero\u200bwidth\ufeff.txt")
    return [tmp], True, False


def very_long_name(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / ("n" * 251 + ".txt"))
    return [tmp], True, False


def directory_without_recursive(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "d" / "a.txt")
    return [tmp / "d"], False, False


def symlink_to_directory_without_recursive(tmp: Path) -> tuple[list[Path], bool, bool]:
    write(tmp / "d" / "a.txt")
    (tmp / "link").symlink_to("d")
    return [tmp / "link"], False, True


def missing_path(tmp: Path) -> tuple[list[Path], bool, bool]:
    return [tmp / "no-such-file"], False, False


LONG = b"n" * 251 + b".txt"
CASES: list[tuple[str, Build, list[tuple[object, ...]]]] = [
    ("fifo", fifo_given, [("refused", b"pipe", Reason.FIFO)]),
    (
        "fifo-in-directory",
        fifo_in_directory,
        [("file", b"d/a.txt", None), ("refused", b"d/pipe", Reason.FIFO)],
    ),
    ("device", device_given, [("refused", b"/dev/null", Reason.DEVICE)]),
    ("socket", socket_given, [("refused", b"sock", Reason.SOCKET)]),
    ("zero-byte", zero_byte_file, [("refused", b"empty.txt", Reason.EMPTY)]),
    ("unreadable", unreadable_file, [("refused", b"secret.txt", Reason.UNREADABLE)]),
    ("unreadable-directory", unreadable_directory, [("refused", b"d/locked", Reason.UNREADABLE)]),
    (
        "symlink-not-followed",
        symlink_not_followed,
        [("file", b"d/a.txt", None), ("link", b"d/link", False)],
    ),
    # A link given as an input is recorded and, not followed, refused: nothing it leads to
    # was ingested. A link met in a walk (above) is only recorded.
    (
        "symlink-given-not-followed",
        symlink_given_not_followed,
        [("link", b"link", False), ("refused", b"link", Reason.SYMLINK_NOT_FOLLOWED)],
    ),
    (
        "symlink-to-folder-given-not-followed",
        symlink_to_folder_given_not_followed,
        [("link", b"photos", False), ("refused", b"photos", Reason.SYMLINK_NOT_FOLLOWED)],
    ),
    (
        "symlink-dangling-given-not-followed",
        symlink_dangling_given_not_followed,
        [("link", b"gone", False), ("refused", b"gone", Reason.SYMLINK_DANGLING)],
    ),
    (
        "symlink-loop-given-not-followed",
        symlink_loop_given_not_followed,
        [("link", b"x", False), ("refused", b"x", Reason.SYMLINK_LOOP)],
    ),
    (
        "symlink-inside-roots",
        symlink_inside_roots,
        [("file", b"d/a.txt", None), ("link", b"d/link", True), ("file", b"d/a.txt", b"d/link")],
    ),
    (
        "symlink-dir-inside-roots",
        symlink_dir_inside_roots,
        [
            ("link", b"d/alias", True),
            ("file", b"d/sub/a.txt", None),
            ("file", b"d/sub/a.txt", None),
        ],
    ),
    (
        "symlink-outside-roots",
        symlink_outside_roots,
        [
            ("file", b"d/a.txt", None),
            ("link", b"d/link", False),
            ("refused", b"d/link", Reason.SYMLINK_OUTSIDE_ROOTS),
        ],
    ),
    (
        "symlink-dir-outside-roots",
        symlink_dir_outside_roots,
        [("link", b"d/up", False), ("refused", b"d/up", Reason.SYMLINK_OUTSIDE_ROOTS)],
    ),
    (
        "symlink-prefix-sibling-outside",
        symlink_dotdot_prefix_is_outside,
        [("link", b"d/sib", False), ("refused", b"d/sib", Reason.SYMLINK_OUTSIDE_ROOTS)],
    ),
    (
        "symlink-loop",
        symlink_loop,
        [
            ("link", b"d/x", False),
            ("refused", b"d/x", Reason.SYMLINK_LOOP),
            ("link", b"d/y", False),
            ("refused", b"d/y", Reason.SYMLINK_LOOP),
        ],
    ),
    (
        "symlink-self-loop",
        symlink_self_loop,
        [("link", b"self", False), ("refused", b"self", Reason.SYMLINK_LOOP)],
    ),
    (
        "symlink-directory-loop",
        symlink_directory_loop,
        [
            ("file", b"d/sub/a.txt", None),
            ("link", b"d/sub/top", False),
            ("refused", b"d/sub/top", Reason.SYMLINK_LOOP),
        ],
    ),
    (
        "symlink-dangling",
        symlink_dangling,
        [("link", b"gone", False), ("refused", b"gone", Reason.SYMLINK_DANGLING)],
    ),
    (
        "symlink-to-directory-without-recursive",
        symlink_to_directory_without_recursive,
        [("link", b"link", True), ("refused", b"link", Reason.DIRECTORY)],
    ),
    ("invalid-utf8-name", invalid_utf8_name, [("file", b"bad-\xff\xfe.txt", None)]),
    ("control-char-name", control_char_name, [("file", b"line\nbreak\x07.txt", None)]),
    ("zero-width-name", zero_width_name, [("file", "zero\u200bwidth\ufeff.txt".encode(), None)]),
    ("very-long-name", very_long_name, [("file", LONG, None)]),
    (
        "directory-without-recursive",
        directory_without_recursive,
        [("refused", b"d", Reason.DIRECTORY)],
    ),
    ("missing-path", missing_path, [("refused", b"no-such-file", Reason.NOT_FOUND)]),
]
NEEDS_NON_ROOT = {"unreadable", "unreadable-directory"}


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        pytest.param(build, expected, id=name, marks=[ROOT_SKIP] if name in NEEDS_NON_ROOT else [])
        for name, build, expected in CASES
    ],
)
def test_bad_input(tmp_path: Path, build: Build, expected: list[tuple[object, ...]]) -> None:
    paths, recursive, follow = build(tmp_path)
    try:
        results = list(scan_inputs(paths, recursive=recursive, follow_symlinks=follow))
    finally:
        # Let pytest clean up directories made unreadable.
        for path in tmp_path.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
    assert summary(results, tmp_path) == expected


def test_directory_refusal_tells_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    [refusal] = scan_inputs([tmp_path / "d"], recursive=False, follow_symlinks=False)
    assert isinstance(refusal, Refusal)
    assert refusal.reason == "is a directory; use --recursive"
    assert refusal.message().endswith("/d: is a directory; use --recursive")


def test_empty_file_reason_text(tmp_path: Path) -> None:
    write(tmp_path / "e", b"")
    [refusal] = scan_inputs([tmp_path / "e"], recursive=False, follow_symlinks=False)
    assert isinstance(refusal, Refusal)
    assert "empty file" in refusal.reason


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        pytest.param(b"bad-\xff\xfe.txt", "bad-\\xff\\xfe.txt", id="invalid-utf8"),
        pytest.param(b"line\nbreak\x07.txt", "line\\u000abreak\\u0007.txt", id="control-chars"),
        pytest.param("zero\u200bwidth\ufeff".encode(), "zero\\u200bwidth\\ufeff", id="zero-width"),
        pytest.param("rtl\u202eexe.txt".encode(), "rtl\\u202eexe.txt", id="bidi-override"),
        pytest.param(b"back\\slash", "back\\\\slash", id="backslash"),
        pytest.param("Фото W-017.jpg".encode(), "Фото W-017.jpg", id="cyrillic-kept"),
        pytest.param(b"tab\there", "tab\\u0009here", id="tab"),
        pytest.param("nbsp\u00a0x".encode(), "nbsp\\u00a0x", id="non-breaking-space"),
        pytest.param("tag\U000e0041".encode(), "tag\\U000e0041", id="astral-format-char"),
        pytest.param(b"\xed\xa0\x80", "\\xed\\xa0\\x80", id="encoded-surrogate"),
    ],
)
def test_display_name_escapes(raw: bytes, shown: str) -> None:
    assert display_name(raw) == shown


def test_odd_names_are_kept_exactly_and_readable(tmp_path: Path) -> None:
    raws = [b"bad-\xff.txt", b"line\nbreak.txt", "zero\u200bwidth.txt".encode(), LONG]
    base = os.fsencode(tmp_path)
    for index, raw in enumerate(raws):
        with open(base + b"/" + raw, "wb") as handle:
            handle.write(bytes([index]) * 3)
    results = list(scan_inputs([tmp_path], recursive=True, follow_symlinks=False))
    candidates = {
        r.raw_path.removeprefix(base + b"/"): r for r in results if isinstance(r, Candidate)
    }
    assert sorted(candidates) == sorted(raws)
    for index, raw in enumerate(raws):
        candidate = candidates[raw]
        # The Path form opens the very same file, and the display is printable.
        assert candidate.path.read_bytes() == bytes([index]) * 3
        assert os.fsencode(candidate.path) == candidate.raw_path
        assert candidate.display.isprintable()
        assert candidate.size == 3


def test_walk_order_is_sorted_bytes_depth_first(tmp_path: Path) -> None:
    base = os.fsencode(tmp_path)
    for raw in [
        b"b.txt",
        b"a/z.txt",
        b"a/b/c.txt",
        b"B.txt",
        b"\xff.bin",
        b"a/a.txt",
        b"c/d/e.txt",
    ]:
        path = base + b"/" + raw
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(b"1")
    first = summary(list(scan_inputs([tmp_path], recursive=True, follow_symlinks=False)), tmp_path)
    again = summary(list(scan_inputs([tmp_path], recursive=True, follow_symlinks=False)), tmp_path)
    assert first == again
    assert [entry[1] for entry in first] == [
        b"B.txt",
        b"a/a.txt",
        b"a/b/c.txt",
        b"a/z.txt",
        b"b.txt",
        b"c/d/e.txt",
        b"\xff.bin",
    ]


def _file_and_link(folder: Path, *, link_name: str, file_name: str) -> None:
    write(folder / file_name, b"a fictional statement\n")
    (folder / link_name).symlink_to(file_name)


@pytest.mark.parametrize("listing", ["as-listed", "listed-in-reverse"])
def test_file_and_link_to_it_are_met_in_byte_order_of_their_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listing: str
) -> None:
    """Which of a file and a followed link to it comes first follows from their names, never
    from the order the file system lists the folder in."""
    _file_and_link(tmp_path / "link-first", link_name="a.txt", file_name="z.txt")
    _file_and_link(tmp_path / "file-first", link_name="z.txt", file_name="a.txt")
    if listing == "listed-in-reverse":
        monkeypatch.setattr(os, "scandir", ListedInReverse)
    results = list(scan_inputs([tmp_path], recursive=True, follow_symlinks=True))
    assert summary(results, tmp_path) == [
        ("file", b"file-first/a.txt", None),
        ("link", b"file-first/z.txt", True),
        ("file", b"file-first/a.txt", b"file-first/z.txt"),
        ("link", b"link-first/a.txt", True),
        ("file", b"link-first/z.txt", b"link-first/a.txt"),
        ("file", b"link-first/z.txt", None),
    ]


def test_inputs_keep_given_order(tmp_path: Path) -> None:
    write(tmp_path / "z.txt")
    write(tmp_path / "a.txt")
    results = list(scan_inputs([tmp_path / "z.txt", tmp_path / "a.txt"], False, False))
    assert summary(results, tmp_path) == [("file", b"z.txt", None), ("file", b"a.txt", None)]


def test_followed_link_given_explicitly_reads_target(tmp_path: Path) -> None:
    target = write(tmp_path / "elsewhere" / "photo.jpg", b"jpeg")
    (tmp_path / "link.jpg").symlink_to(target)
    results = list(scan_inputs([tmp_path / "link.jpg"], recursive=False, follow_symlinks=True))
    assert isinstance(results[0], SymlinkRecord)
    assert results[0].target == os.fsencode(target)
    assert isinstance(results[1], Candidate)
    assert results[1].path == target
    assert results[1].is_symlink_target_of == os.fsencode(tmp_path / "link.jpg")


def test_folder_link_given_without_follow_says_what_to_do(tmp_path: Path) -> None:
    """A root folder that is a link: the refusal names the link, what it leads to, that
    nothing in it was ingested, and both ways to ingest it."""
    write(tmp_path / "elsewhere" / "photos" / "a.jpg")
    link = tmp_path / "stick" / "photos"
    link.parent.mkdir()
    link.symlink_to("../elsewhere/photos")
    real = tmp_path / "elsewhere" / "photos"
    results = list(scan_inputs([link], recursive=True, follow_symlinks=False))
    assert [type(r) for r in results] == [SymlinkRecord, Refusal]
    refusal = results[1]
    assert isinstance(refusal, Refusal)
    assert refusal.message() == (
        f"{link}: is a symbolic link to ../elsewhere/photos (a folder); it is recorded as a "
        "link and was not followed, so nothing in that folder was ingested: to ingest it, "
        f"re-run with --follow-symlinks, or give the folder's own path ({real})"
    )
    [_, without_recursive] = scan_inputs([link], recursive=False, follow_symlinks=False)
    assert isinstance(without_recursive, Refusal)
    assert without_recursive.reason.endswith(
        "to ingest it, re-run with --recursive --follow-symlinks, or with --recursive and the "
        f"folder's own path ({real})"
    )
    # Followed when asked: the folder's contents, at the path met through the link.
    followed = list(scan_inputs([link], recursive=True, follow_symlinks=True))
    assert summary(followed, tmp_path) == [
        ("link", b"stick/photos", True),
        ("file", b"elsewhere/photos/a.jpg", None),
    ]
    candidate = followed[1]
    assert isinstance(candidate, Candidate)
    assert candidate.given_path == os.fsencode(link / "a.jpg")


def test_file_link_given_without_follow_says_what_to_do(tmp_path: Path) -> None:
    target = write(tmp_path / "statement.txt")
    (tmp_path / "latest.txt").symlink_to("statement.txt")
    [record, refusal] = scan_inputs([tmp_path / "latest.txt"], False, False)
    assert isinstance(record, SymlinkRecord)
    assert not record.followed
    assert isinstance(refusal, Refusal)
    assert refusal.reason_code == Reason.SYMLINK_NOT_FOLLOWED
    assert str(refusal.reason_code) == "symlink-not-followed"
    assert refusal.reason == (
        "is a symbolic link to statement.txt (a file); it is recorded as a link and was not "
        "followed, so that file was not ingested: to ingest it, re-run with --follow-symlinks, "
        f"or give the file's own path ({target})"
    )


def test_link_target_with_odd_bytes_is_shown_escaped(tmp_path: Path) -> None:
    base = os.fsencode(tmp_path)
    with open(base + b"/caf\xe9\n.txt", "wb") as handle:
        handle.write(b"x")
    os.symlink(b"caf\xe9\n.txt", base + b"/link")
    [_, refusal] = scan_inputs([tmp_path / "link"], False, False)
    assert isinstance(refusal, Refusal)
    assert "a symbolic link to caf\\xe9\\u000a.txt (a file)" in refusal.reason
    assert refusal.reason.isprintable()


def test_deep_tree_does_not_hit_recursion_limit(tmp_path: Path) -> None:
    depth = sys.getrecursionlimit() + 50
    try:
        # One level at a time: os.makedirs and Path.mkdir recurse and would hit the limit.
        directory = str(tmp_path)
        for _ in range(depth):
            directory += "/d"
            os.mkdir(directory)
        Path(directory, "leaf.txt").write_bytes(b"x")
        results = list(scan_inputs([tmp_path], recursive=True, follow_symlinks=False))
        assert summary(results, tmp_path) == [("file", b"d/" * depth + b"leaf.txt", None)]
    finally:
        # shutil.rmtree recurses in Python and would itself hit the limit.
        subprocess.run(["rm", "-rf", str(tmp_path / "d")], check=True)


def test_vanished_after_scan_becomes_refusal(tmp_path: Path) -> None:
    write(tmp_path / "a.txt")
    [candidate] = scan_inputs([tmp_path / "a.txt"], recursive=False, follow_symlinks=False)
    assert isinstance(candidate, Candidate)
    (tmp_path / "a.txt").unlink()
    store = ObjectStore(tmp_path / "store")
    with pytest.raises(SourceError) as caught:
        store.put_file(candidate.path)
    refusal = Refusal.from_error(caught.value)
    assert refusal.reason_code == Reason.VANISHED
    assert refusal.raw_path == candidate.raw_path
    assert "re-run" in refusal.reason


def test_probe_names_the_kind_of_what_replaced_a_file(tmp_path: Path) -> None:
    # What the probe meets when a regular file was swapped after the scan's lstat.
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "d").mkdir()
    fifo = acquire._probe_readable(os.fsencode(tmp_path / "pipe"))
    folder = acquire._probe_readable(os.fsencode(tmp_path / "d"))
    assert fifo is not None and fifo.reason_code == Reason.FIFO
    assert folder is not None and folder.reason_code == Reason.UNSUPPORTED_TYPE
    assert acquire._probe_readable(os.fsencode(write(tmp_path / "a.txt"))) is None


def test_scan_without_probe_opens_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "a.txt")
    write(tmp_path / "d" / "b.txt")
    probed: list[bytes] = []

    def probe(raw: bytes) -> None:
        probed.append(raw)

    monkeypatch.setattr(acquire, "_probe_readable", probe)
    quiet = list(scan_inputs([tmp_path], recursive=True, follow_symlinks=False, probe=False))
    assert [type(r) for r in quiet] == [Candidate, Candidate]
    assert probed == []
    checked = list(scan_inputs([tmp_path], recursive=True, follow_symlinks=False))
    assert checked == quiet
    assert sorted(probed) == sorted(r.raw_path for r in quiet)


def test_unreadable_inputs_as_unprivileged_user() -> None:
    """Root reads everything, so check permission refusals in a child running as nobody."""
    if not IS_ROOT:
        pytest.skip("runs only as root; the table cases cover unprivileged runs")
    base = Path(tempfile.mkdtemp(prefix="evidence-acquire-"))
    try:
        base.chmod(0o755)
        write(base / "secret.txt").chmod(0o000)
        write(base / "d" / "locked" / "a.txt")
        (base / "d" / "locked").chmod(0o000)
        # The child imports everything as root (the interpreter may live under /root), then
        # drops to nobody for good before it scans.
        code = (
            "import json, os, sys\n"
            "from pathlib import Path\n"
            "from evidence.acquire import scan_inputs\n"
            "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
            "rs = scan_inputs([Path(p) for p in sys.argv[1:]], recursive=True, "
            "follow_symlinks=False)\n"
            "print(json.dumps([[r.display, getattr(r, 'reason_code', None)] for r in rs]))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, str(base / "secret.txt"), str(base / "d")],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if "PermissionError" in done.stderr and "setuid" in done.stderr:
            pytest.skip("cannot switch to an unprivileged user here")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == [
            [str(base / "secret.txt"), "unreadable"],
            [str(base / "d" / "locked"), "unreadable"],
        ]
    finally:
        (base / "d" / "locked").chmod(0o755)
        shutil.rmtree(base)


# --- what is never ingested -------------------------------------------------------------------

# A fictional key file: only its place and identity matter, never its bytes.
FICTIONAL_KEY = (
    b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nZmljdGlvbmFs\n-----END ENCRYPTED PRIVATE KEY-----\n"
)


def locker(tmp: Path) -> list[Excluded]:
    """A folder ``root`` holding evidence, a case and a key folder; what the scan excludes."""
    root = tmp / "root"
    write(root / "a.txt")
    write(root / "case" / "case.toml", b'case_id = "UA-TEST-0001"\n')
    write(root / "case" / "catalog.sqlite", b"not really a database")
    write(root / "case" / "objects" / "sha256" / "ab" / "cdef", b"stored")
    key = write(root / "home" / "keys" / "investigator-a.key", FICTIONAL_KEY)
    return [
        Excluded(root / "case", Reason.CASE_FOLDER),
        Excluded(root / "home" / "keys", Reason.KEY_FOLDER),
        Excluded(key, Reason.PRIVATE_KEY),
    ]


def folder_holding_case_and_keys(tmp: Path) -> tuple[list[Path], bool, bool]:
    return [tmp / "root"], True, False


def case_given_again(tmp: Path) -> tuple[list[Path], bool, bool]:
    return [tmp / "root", tmp / "root" / "case"], True, False


def case_folder_given(tmp: Path) -> tuple[list[Path], bool, bool]:
    return [tmp / "root" / "case"], True, False


def case_folder_given_without_recursive(tmp: Path) -> tuple[list[Path], bool, bool]:
    return [tmp / "root" / "case"], False, False


def file_inside_case_given(tmp: Path) -> tuple[list[Path], bool, bool]:
    return [tmp / "root" / "case" / "catalog.sqlite"], False, False


def folder_inside_case_given_through_dotdot(tmp: Path) -> tuple[list[Path], bool, bool]:
    (tmp / "root" / "sub").mkdir()
    return [tmp / "root" / "sub" / ".." / "case" / "objects"], True, False


def folder_inside_case_given_through_a_link(tmp: Path) -> tuple[list[Path], bool, bool]:
    # The link is not the last component: no follow option is needed to pass through it.
    (tmp / "alias").symlink_to(tmp / "root" / "case")
    return [tmp / "alias" / "objects"], True, False


def link_into_case_followed(tmp: Path) -> tuple[list[Path], bool, bool]:
    (tmp / "root" / "shortcut").symlink_to("case/objects")
    return [tmp / "root"], True, True


def private_key_given(tmp: Path) -> tuple[list[Path], bool, bool]:
    return [tmp / "root" / "home" / "keys" / "investigator-a.key"], False, False


def hard_link_to_key_elsewhere(tmp: Path) -> tuple[list[Path], bool, bool]:
    os.link(tmp / "root" / "home" / "keys" / "investigator-a.key", tmp / "root" / "b.bin")
    return [tmp / "root"], True, False


def link_to_case_given_not_followed(tmp: Path) -> tuple[list[Path], bool, bool]:
    (tmp / "to-case").symlink_to(tmp / "root" / "case")
    return [tmp / "to-case"], True, False


def link_to_key_given_not_followed(tmp: Path) -> tuple[list[Path], bool, bool]:
    (tmp / "k").symlink_to(tmp / "root" / "home" / "keys" / "investigator-a.key")
    return [tmp / "k"], False, False


def link_to_key_followed(tmp: Path) -> tuple[list[Path], bool, bool]:
    (tmp / "root" / "k").symlink_to("home/keys/investigator-a.key")
    return [tmp / "root"], True, True


CASE_FOLDER = ("refused", b"root/case", Reason.CASE_FOLDER)
KEY_FOLDER = ("refused", b"root/home/keys", Reason.KEY_FOLDER)
EXCLUSION_CASES: list[tuple[str, Build, list[tuple[object, ...]]]] = [
    (
        "folder-holding-case-and-keys",
        folder_holding_case_and_keys,
        [("file", b"root/a.txt", None), CASE_FOLDER, KEY_FOLDER],
    ),
    (
        "case-given-again-is-refused-once",
        case_given_again,
        [("file", b"root/a.txt", None), CASE_FOLDER, KEY_FOLDER],
    ),
    ("case-folder-given", case_folder_given, [CASE_FOLDER]),
    ("case-folder-given-without-recursive", case_folder_given_without_recursive, [CASE_FOLDER]),
    (
        "file-inside-case-given",
        file_inside_case_given,
        [("refused", b"root/case/catalog.sqlite", Reason.CASE_FOLDER)],
    ),
    (
        "folder-inside-case-given-through-dotdot",
        folder_inside_case_given_through_dotdot,
        [("refused", b"root/sub/../case/objects", Reason.CASE_FOLDER)],
    ),
    (
        "folder-inside-case-given-through-a-link",
        folder_inside_case_given_through_a_link,
        [("refused", b"alias/objects", Reason.CASE_FOLDER)],
    ),
    (
        "link-into-case-followed",
        link_into_case_followed,
        [
            ("file", b"root/a.txt", None),
            CASE_FOLDER,
            KEY_FOLDER,
            ("link", b"root/shortcut", False),
            ("refused", b"root/shortcut", Reason.CASE_FOLDER),
        ],
    ),
    (
        "private-key-given",
        private_key_given,
        [("refused", b"root/home/keys/investigator-a.key", Reason.PRIVATE_KEY)],
    ),
    (
        "hard-link-to-key-elsewhere",
        hard_link_to_key_elsewhere,
        [
            ("file", b"root/a.txt", None),
            ("refused", b"root/b.bin", Reason.PRIVATE_KEY),
            CASE_FOLDER,
            KEY_FOLDER,
        ],
    ),
    # A link given and not followed that leads to what is never ingested says so, rather
    # than advising --follow-symlinks, which would only be refused again.
    (
        "link-to-case-given-not-followed",
        link_to_case_given_not_followed,
        [("link", b"to-case", False), ("refused", b"to-case", Reason.CASE_FOLDER)],
    ),
    (
        "link-to-key-given-not-followed",
        link_to_key_given_not_followed,
        [("link", b"k", False), ("refused", b"k", Reason.PRIVATE_KEY)],
    ),
    (
        "link-to-key-followed",
        link_to_key_followed,
        [
            ("file", b"root/a.txt", None),
            CASE_FOLDER,
            KEY_FOLDER,
            ("link", b"root/k", True),
            ("refused", b"root/k", Reason.PRIVATE_KEY),
        ],
    ),
]


@pytest.mark.parametrize(
    ("build", "expected"),
    [pytest.param(build, expected, id=name) for name, build, expected in EXCLUSION_CASES],
)
def test_never_ingested(tmp_path: Path, build: Build, expected: list[tuple[object, ...]]) -> None:
    excluded = locker(tmp_path)
    paths, recursive, follow = build(tmp_path)
    results = list(
        scan_inputs(paths, recursive=recursive, follow_symlinks=follow, excluded=excluded)
    )
    assert summary(results, tmp_path) == expected


def test_never_ingested_says_why(tmp_path: Path) -> None:
    excluded = locker(tmp_path)
    root = tmp_path / "root"
    given = [root, root / "home" / "keys" / "investigator-a.key"]
    refusals = [
        r for r in scan_inputs(given, True, False, excluded=excluded) if isinstance(r, Refusal)
    ]
    assert [(r.reason_code, r.message()) for r in refusals] == [
        (
            Reason.CASE_FOLDER,
            f"{root / 'case'}: is the folder of the case being ingested into, or inside it; the "
            "case's own folder is never ingested (keep the material to ingest outside it)",
        ),
        (
            Reason.KEY_FOLDER,
            f"{root / 'home' / 'keys'}: is the folder of the investigator's private keys, or "
            "inside it; a private key is never ingested as evidence",
        ),
        (
            Reason.PRIVATE_KEY,
            f"{root / 'home' / 'keys' / 'investigator-a.key'}: is one of the investigator's "
            "private key files; a private key is never ingested as evidence",
        ),
    ]
    # The codes are stable: reports and --json show them.
    assert [str(r.reason_code) for r in refusals] == ["case-folder", "key-folder", "private-key"]


def test_bind_mount_of_the_case_is_refused(tmp_path: Path) -> None:
    excluded = locker(tmp_path)
    view = tmp_path / "elsewhere" / "view"
    view.mkdir(parents=True)
    write(tmp_path / "elsewhere" / "b.txt")
    mount = shutil.which("mount")
    if not IS_ROOT or mount is None:
        pytest.skip("needs root and mount(8) to make a bind mount")
    bound = subprocess.run(
        [mount, "--bind", str(tmp_path / "root" / "case"), str(view)],
        capture_output=True,
        check=False,
    )
    if bound.returncode != 0:
        pytest.skip("bind mounts are not allowed here")
    try:
        results = list(scan_inputs([tmp_path / "elsewhere"], True, False, excluded=excluded))
        inside = list(scan_inputs([view / "objects"], True, False, excluded=excluded))
    finally:
        subprocess.run(["umount", str(view)], check=True)
    assert summary(results, tmp_path) == [
        ("file", b"elsewhere/b.txt", None),
        ("refused", b"elsewhere/view", Reason.CASE_FOLDER),
    ]
    assert summary(inside, tmp_path) == [("refused", b"elsewhere/view/objects", Reason.CASE_FOLDER)]


def test_exclusions_that_do_not_exist_exclude_nothing(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.txt")
    gone = [
        Excluded(tmp_path / "no-case", Reason.CASE_FOLDER),
        Excluded(tmp_path / "no-keys" / "a.key", Reason.PRIVATE_KEY),
    ]
    results = list(scan_inputs([tmp_path / "d"], True, False, excluded=gone))
    assert summary(results, tmp_path) == [("file", b"d/a.txt", None)]


def test_scan_records_the_status_change_time(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt")
    [candidate] = scan_inputs([path], recursive=False, follow_symlinks=False)
    assert isinstance(candidate, Candidate)
    assert candidate.ctime_ns == path.stat().st_ctime_ns


# --- display_name properties ------------------------------------------------------------------


def undisplay(text: str) -> bytes:
    """Reference inverse of display_name, to show that no two names share a display."""
    out = bytearray()
    for match in re.finditer(
        r"\\\\|\\x([0-9a-f]{2})|\\u([0-9a-f]{4})|\\U([0-9a-f]{8})|(.)", text, re.S
    ):
        if match.group(0) == "\\\\":
            out += b"\\"
        elif match.group(1):
            out.append(int(match.group(1), 16))
        elif match.group(2) or match.group(3):
            out += chr(int(match.group(2) or match.group(3), 16)).encode()
        else:
            out += match.group(4).encode()
    return bytes(out)


@given(st.binary(max_size=300))
def test_display_name_is_printable_and_reversible(raw: bytes) -> None:
    shown = display_name(raw)
    assert shown.isprintable()
    assert undisplay(shown) == raw


@given(st.binary(max_size=40), st.binary(max_size=40))
def test_display_name_is_injective(first: bytes, second: bytes) -> None:
    if first != second:
        assert display_name(first) != display_name(second)


@given(st.text(max_size=100))
def test_display_name_keeps_printable_text(text: str) -> None:
    try:
        raw = text.encode()
    except UnicodeEncodeError:
        return  # lone surrogates cannot be file names on disk
    if text.isprintable() and "\\" not in text:
        assert display_name(raw) == text
    assert undisplay(display_name(raw)) == raw


# --- MIME types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("photo-bus-departure.jpg", "image/jpeg"),
        ("sketch-route.png", "image/png"),
        ("transfer-list-17-2022.pdf", "application/pdf"),
        ("field-note-W-017.txt", "text/plain"),
        ("captured-post-1234.json", "application/json"),
    ],
)
def test_detect_mime_from_content(tmp_path: Path, name: str, mime: str) -> None:
    # Under a misleading name: the type comes from the bytes, not the extension.
    copy = tmp_path / "renamed.dat"
    shutil.copyfile(SAMPLES / name, copy)
    assert detect_mime(copy) == mime


def test_detect_mime_of_wav() -> None:
    assert detect_mime(SAMPLES / "recording-tone.wav") in {"audio/x-wav", "audio/wav"}


class _Handle:
    """A libmagic handle that reads ``span`` bytes at each end, or cannot say."""

    def __init__(self, span: int | None) -> None:
        self.span = span

    def getparam(self, param: int) -> int:
        assert param == magic.MAGIC_PARAM_BYTES_MAX
        if self.span is None:
            raise magic.MagicException("cannot get parameter")
        return self.span


@pytest.mark.parametrize(("span", "expected"), [(1 << 20, 1 << 20), (None, 7 << 20), (0, 7 << 20)])
def test_classified_span_is_what_libmagic_reads(
    monkeypatch: pytest.MonkeyPatch, span: int | None, expected: int
) -> None:
    monkeypatch.setattr(acquire, "_magic", lambda: _Handle(span))
    assert acquire.classified_span() == expected


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda tmp: fifo_given(tmp)[0][0], id="fifo"),
        pytest.param(lambda tmp: tmp / "missing", id="missing"),
        pytest.param(lambda tmp: tmp, id="directory"),
        pytest.param(lambda tmp: Path("/dev/null"), id="device"),
    ],
)
def test_detect_mime_never_blocks_or_raises(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    assert detect_mime(make(tmp_path)) == "application/octet-stream"
