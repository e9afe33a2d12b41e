"""Ingest by worker processes and by threads: the same records, the same guarantees."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import shutil
import signal
import stat
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chain_of_custody.keys import signer_from_seed
from evidence import ingest as ingest_module
from evidence import objects as objects_module
from evidence.acquire import Candidate, detect_mime
from evidence.ingest import IngestReport, ingest
from evidence.models import ItemOptions
from evidence.objects import ObjectStore
from evidence.verify import verify_case
from evidence.workspace import Case, init_case

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample-data" / "files"
SIGNER = signer_from_seed("investigator-a", bytes(range(32)))
COLUMNS = "sha256, sha512, size, mime, name, path, metadata"


def _corpus(folder: Path, count: int) -> list[Path]:
    """Random small files, one duplicate pair, and every sample file (known types)."""
    rng = random.Random(20261124)
    paths = []
    for number in range(count):
        path = folder / f"batch-{number // 25:02d}" / f"file-{number:04d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(1, 3000)))
        paths.append(path)
    twin = folder / "twin.bin"
    twin.write_bytes(paths[0].read_bytes())
    for sample in sorted(SAMPLES.iterdir()):
        shutil.copy(sample, folder / sample.name)
    return paths


def _ingest(tmp_path: Path, name: str, corpus: Path) -> tuple[Case, IngestReport]:
    case = init_case(tmp_path / name, case_id="UA-TEST-0001", title="Workers", signer=SIGNER)
    report = ingest(case, SIGNER, [corpus], options=ItemOptions(), recursive=True)
    return case, report


def _items(case: Case) -> list[tuple[Any, ...]]:
    rows = case.db.execute(f"SELECT {COLUMNS} FROM items ORDER BY sha256").fetchall()  # noqa: S608
    return [tuple(row) for row in rows]


def _staging_left(case: Case) -> list[str]:
    return sorted(entry.name for entry in os.scandir(case.objects.tmp_dir))


def test_processes_and_threads_record_the_same_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "corpus"
    _corpus(corpus, 90)
    files = sum(1 for p in corpus.rglob("*") if p.is_file())
    assert files >= ingest_module.PROCESS_MIN_FILES  # the first run uses worker processes

    by_processes, report = _ingest(tmp_path, "processes", corpus)
    assert report.ok, report.refused
    assert report.count("ingested") == files - 1
    assert report.count("duplicate") == 1
    monkeypatch.setattr(ingest_module, "PROCESS_MIN_FILES", 10**9)
    by_threads, _ = _ingest(tmp_path, "threads", corpus)

    assert _items(by_processes) == _items(by_threads)
    for case in (by_processes, by_threads):
        assert verify_case(case).ok
        assert _staging_left(case) == []
        for sha in case.objects.iter_objects():
            mode = os.stat(case.objects.path_for(sha)).st_mode
            assert stat.S_IMODE(mode) & 0o222 == 0


def test_batches_shrink_towards_the_end_of_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "corpus"
    for number in range(300):
        (corpus / f"{number:03d}.bin").parent.mkdir(exist_ok=True)
        (corpus / f"{number:03d}.bin").write_bytes(number.to_bytes(2, "big") * 3)
    monkeypatch.setattr(ingest_module, "BATCH_EVENTS", 100)
    monkeypatch.setattr(ingest_module, "LAST_BATCH_EVENTS", 10)
    sizes: list[int] = []
    commit = ingest_module._commit

    def counting_commit(case: Case, signer: Any, stored: Any, *args: Any) -> None:
        batch = list(stored)
        if batch:
            sizes.append(len(batch))
        commit(case, signer, batch, *args)

    monkeypatch.setattr(ingest_module, "_commit", counting_commit)
    case, report = _ingest(tmp_path, "case", corpus)
    assert report.count("ingested") == 300
    # A batch is committed once it holds as many inputs as are still to come, and never less
    # than LAST_BATCH_EVENTS of them before the end: 100 + 100 + 50 + 25 + 13 + 10 + 2.
    assert sizes == [100, 100, 50, 25, 13, 10, 2]
    assert verify_case(case).ok


def test_storing_starts_during_the_scan_and_never_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pipes of the kernel's default size: the chunks given to each worker and the outcomes it
    # sends back both fill their pipe long before the scan is over, so a worker that took its
    # chunks only between two of its own sends would wait on this process, and it on them.
    monkeypatch.setattr(ingest_module, "_widen_pipe", lambda connection: None)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    long_name = "a-long-file-name-of-the-kind-phones-and-cameras-give-" * 3
    for number in range(1600):
        (corpus / f"{long_name}{number:04d}.bin").write_bytes(number.to_bytes(2, "big"))
    scanned_before_storing: list[int] = []
    add = ingest_module._Storage.add

    def watching_add(storage: Any, cand: Any) -> None:
        if storage._workers is None and len(storage._held) == ingest_module.PROCESS_MIN_FILES - 1:
            scanned_before_storing.append(len(storage._held) + 1)
        add(storage, cand)

    monkeypatch.setattr(ingest_module._Storage, "add", watching_add)

    def stuck(signum: int, frame: object) -> None:
        raise TimeoutError("ingest waited for its workers and they for it")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(60)
    try:
        case, report = _ingest(tmp_path, "case", corpus)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert report.ok, report.refused
    assert report.count("ingested") == 1600
    # The workers were started by the 64th input found, not after the 1,600th.
    assert scanned_before_storing == [ingest_module.PROCESS_MIN_FILES]
    assert multiprocessing.active_children() == []
    assert verify_case(case).ok
    assert _staging_left(case) == []


def test_a_worker_inbox_gives_each_chunk_once_to_store_and_once_to_read_ahead() -> None:
    reader, writer = multiprocessing.Pipe(duplex=False)
    inbox = ingest_module._Inbox(reader, os.getppid())
    for chunk in ([b"a"], [b"b"], [b"c"]):
        writer.send(chunk)
    writer.send(None)
    deadline = time.monotonic() + 30
    while not inbox._ended and time.monotonic() < deadline:
        time.sleep(0.01)  # the receiving thread takes the chunks from the pipe
    assert inbox.take() == [b"a"]
    assert inbox.not_hinted(1) == [[b"a"], [b"b"]]
    assert inbox.take() == [b"b"]
    assert inbox.not_hinted(1) == [[b"c"]]
    assert inbox.take() == [b"c"]
    assert inbox.not_hinted(1) == []
    assert inbox.take() is None
    writer.close()


def test_a_worker_inbox_ends_when_the_process_that_gives_chunks_is_gone() -> None:
    reader, writer = multiprocessing.Pipe(duplex=False)
    # Nothing is ever sent, and the pipe stays open; the inbox still ends once it sees that its
    # owner is not its parent (what a worker sees when the ingest was killed).
    inbox = ingest_module._Inbox(reader, owner_pid=-1)
    assert inbox.take() is None
    writer.close()


def test_every_input_is_named_by_its_content(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    paths = _corpus(corpus, 70)
    case, report = _ingest(tmp_path, "case", corpus)
    by_path = {f.path: f for f in report.files}
    for path in paths:
        data = path.read_bytes()
        recorded = by_path[str(path)]
        assert recorded.sha256 == hashlib.sha256(data).hexdigest()
        assert case.objects.path_for(recorded.sha256).read_bytes() == data
    assert [f.seq for f in report.files if f.seq is not None] == sorted(
        f.seq for f in report.files if f.seq is not None
    )


@pytest.mark.parametrize("workers", ["processes", "threads"])
def test_file_emptied_after_the_scan_is_refused_and_leaves_no_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    corpus = tmp_path / "corpus"
    _corpus(corpus, 70)
    victim = corpus / "batch-00" / "file-0003.bin"
    original = ObjectStore.put_file

    def emptying(self: ObjectStore, path: Path | bytes, **kwargs: Any) -> Any:
        if Path(os.fsdecode(path)) == victim:
            victim.write_bytes(b"")
        return original(self, path, **kwargs)

    monkeypatch.setattr(ObjectStore, "put_file", emptying)
    if workers == "threads":
        monkeypatch.setattr(ingest_module, "PROCESS_MIN_FILES", 10**9)
    case, report = _ingest(tmp_path, "case", corpus)
    assert [(r.path, r.code) for r in report.refused] == [(str(victim), "empty-file")]
    empty = hashlib.sha256(b"").hexdigest()
    assert not case.objects.has(empty)
    assert verify_case(case).ok
    assert _staging_left(case) == []


def _zip_told_by_its_end(path: Path) -> Path:
    # No signature at the start: only the end-of-central-directory record, found by a rule
    # that counts from the end of the file, says ZIP (an archive behind a stub, say).
    data = random.Random(7).randbytes(5000) + b"PK\x05\x06" + bytes(18)
    return _written(path, data)


@pytest.mark.parametrize("workers", ["processes", "threads"])
def test_ingest_records_the_type_libmagic_gives_for_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    corpus = tmp_path / "corpus"
    _corpus(corpus, 70)
    told_by_end = _zip_told_by_its_end(corpus / "stub-archive.bin")
    executable = Path(shutil.which("ls") or "/bin/ls")
    shutil.copy(executable, corpus / "program")
    if workers == "threads":
        monkeypatch.setattr(ingest_module, "PROCESS_MIN_FILES", 10**9)
    case, report = _ingest(tmp_path, "case", corpus)
    assert report.ok, report.refused
    recorded = {
        Path(row[0]).name: row[1]
        for row in case.db.execute(
            "SELECT s.path, i.mime FROM sightings s JOIN items i USING (sha256)"
        )
    }
    assert detect_mime(told_by_end) == "application/zip"
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        assert recorded[path.name] == detect_mime(path), path.name


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_publish_never_replaces_an_existing_object(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    source = _written(tmp_path / "a.bin", b"original bytes")
    first = store.put_file(source, defer=True)
    store.flush()
    named = store.path_for(first.sha256)
    inode = named.stat().st_ino
    again = ObjectStore(tmp_path / "objects").put_file(source, defer=True)
    assert again.created is False
    store.flush()
    assert named.stat().st_ino == inode
    assert named.read_bytes() == b"original bytes"
    assert list(store.tmp_dir.iterdir()) == []


# --- re-runs: what is skipped unread, what is read again ----------------------------------------


def _log_size(case: Case) -> int:
    return int(case.db.execute("SELECT count(*) FROM log").fetchone()[0])


@pytest.mark.parametrize("workers", ["processes", "threads"])
def test_file_rewritten_keeping_its_size_and_time_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    corpus = tmp_path / "corpus"
    paths = _corpus(corpus, 70)
    if workers == "threads":
        monkeypatch.setattr(ingest_module, "PROCESS_MIN_FILES", 10**9)
    case, first = _ingest(tmp_path, "case", corpus)
    assert first.ok, first.refused
    victim = paths[7]
    before = victim.stat()
    rewritten = bytes(byte ^ 0x5A for byte in victim.read_bytes())
    # Longer than a tick of the coarse clock some kernels stamp ctime from: the change is
    # stamped after the event that recorded the first sighting, as it would be in use.
    time.sleep(0.02)
    victim.write_bytes(rewritten)
    # What cp -p, touch -r, tar and rsync leave: new bytes, the old size and modification time.
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = victim.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    again = ingest(case, SIGNER, [corpus], options=ItemOptions(), recursive=True)

    assert again.ok, again.refused
    sha = hashlib.sha256(rewritten).hexdigest()
    news = [(f.status, f.path, f.sha256) for f in again.files if f.status != "skipped"]
    assert news == [("ingested", str(victim), sha)]
    assert case.objects.path_for(sha).read_bytes() == rewritten
    assert verify_case(case).ok
    assert _staging_left(case) == []


def test_unchanged_file_is_skipped_without_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "corpus"
    _corpus(corpus, 70)
    case, first = _ingest(tmp_path, "case", corpus)
    logged = _log_size(case)

    def reading(storage: Any, cand: Candidate) -> None:
        raise AssertionError(f"{cand.display} was read again")

    monkeypatch.setattr(ingest_module._Storage, "add", reading)

    again = ingest(case, SIGNER, [corpus], options=ItemOptions(), recursive=True)

    assert again.ok, again.refused
    assert [(f.status, f.path, f.sha256, f.seq) for f in again.files] == [
        ("skipped", f.path, f.sha256, None) for f in first.files
    ]
    assert again.checkpoint is None
    assert _log_size(case) == logged


EVENT_TIME = "2026-11-24T03:20:00.123457Z"
SECOND_NS = int(datetime(2026, 11, 24, 3, 20, tzinfo=UTC).timestamp()) * 10**9
EVENT_NS = SECOND_NS + 123_457_000
MTIME_NS = 1_700_000_000_123_456_789
HOUR = 3600 * 10**9
PRIOR = ("ab" * 32, 10, str(MTIME_NS), EVENT_TIME)


def _skipped(
    ctime_ns: int,
    *,
    size: int = 10,
    mtime_ns: int = MTIME_NS,
    prior: tuple[str, int, str, str] | None = PRIOR,
    started_ns: int = EVENT_NS + HOUR,
) -> bool:
    cand = Candidate(b"/evidence/a.bin", "/evidence/a.bin", size, mtime_ns, ctime_ns)
    seen = {} if prior is None else {ingest_module.path_key(b"/evidence/a.bin"): prior}
    report = IngestReport()
    skipped = ingest_module._skipped_as_seen(cand, seen, started_ns, report)
    assert [(f.status, f.sha256) for f in report.files] == ([("skipped", PRIOR[0])] * skipped)
    return skipped


@pytest.mark.parametrize(
    ("ctime_ns", "skipped"),
    [
        pytest.param(EVENT_NS - HOUR, True, id="unchanged"),
        pytest.param(EVENT_NS - 1, True, id="changed-just-before-the-event"),
        pytest.param(EVENT_NS, False, id="changed-at-the-event"),
        pytest.param(EVENT_NS + 1, False, id="changed-after-the-event"),
        # Whole seconds (FAT: two) and hundredths are rounded down by the file system.
        pytest.param(SECOND_NS - 3 * 10**9, True, id="whole-seconds-long-before"),
        pytest.param(SECOND_NS - 10**9, False, id="whole-seconds-within-two"),
        pytest.param(SECOND_NS + 110_000_000, True, id="hundredths-before"),
        pytest.param(SECOND_NS + 120_000_000, False, id="hundredths-within-one"),
    ],
)
def test_skip_unread_only_a_file_unchanged_since_its_sighting(ctime_ns: int, skipped: bool) -> None:
    assert _skipped(ctime_ns) is skipped


@pytest.mark.parametrize(
    "differs",
    [
        pytest.param({"size": 11}, id="size"),
        pytest.param({"mtime_ns": MTIME_NS + 1}, id="mtime"),
        pytest.param({"prior": None}, id="never-seen"),
        # An event stamped later than this run began: a clock that was once ahead.
        pytest.param({"started_ns": EVENT_NS - 1}, id="event-in-the-future"),
        pytest.param({"prior": (*PRIOR[:3], "24 Nov 2026 03:20")}, id="time-not-rfc3339"),
    ],
)
def test_skip_unread_only_the_same_size_and_mtime_at_a_trusted_time(
    differs: dict[str, Any],
) -> None:
    assert _skipped(EVENT_NS - HOUR) is True
    assert _skipped(EVENT_NS - HOUR, **differs) is False


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("2026-11-24T03:20:00.123457Z", EVENT_NS),
        ("2026-11-24T03:20:00Z", EVENT_NS - 123_457_000),
        ("2026-11-24T03:20:00.000001Z", EVENT_NS - 123_456_000),
        ("1970-01-01T00:00:00.5Z", 500_000_000),
    ],
)
def test_event_times_are_read_to_the_nanosecond(text: str, nanoseconds: int) -> None:
    assert ingest_module._event_time_ns(text) == nanoseconds


# --- inputs that change while they are read ----------------------------------------------------


@pytest.mark.parametrize("workers", ["processes", "threads"])
def test_file_changed_while_read_leaves_no_staged_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    corpus = tmp_path / "corpus"
    paths = _corpus(corpus, 70)
    victim = paths[3]
    read_whole = objects_module._read_whole

    def growing(source: int, raw: bytes, expected: int) -> bytes:
        data = read_whole(source, raw, expected)
        if raw == os.fsencode(victim):
            with victim.open("ab") as handle:
                handle.write(b"appended while it was read")
        return data

    monkeypatch.setattr(objects_module, "_read_whole", growing)
    if workers == "threads":
        monkeypatch.setattr(ingest_module, "PROCESS_MIN_FILES", 10**9)
    case, report = _ingest(tmp_path, "case", corpus)
    assert [(r.path, r.code) for r in report.refused] == [(str(victim), "changed-while-reading")]
    # Removed at once, not by the next ingest.
    assert _staging_left(case) == []
    assert verify_case(case).ok
