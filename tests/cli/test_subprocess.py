"""The installed ``evidence`` program in subprocesses: exit codes, SIGKILL, writers, permissions.

These run what a user runs. Permission tests need a process that file modes apply to: when the
tests run as root, the program is started with ``setpriv`` without the capabilities that bypass
file modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import (
    CASE_ID,
    PASSPHRASE,
    CaseHandle,
    run_evidence,
    run_unprivileged,
    sha256_of,
    start_evidence,
)


def _catalog(case: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{case / 'catalog.sqlite'}?mode=ro", uri=True, timeout=60)


def _logged_paths(case: Path) -> list[str]:
    with _catalog(case) as conn:
        return [row[0] for row in conn.execute("SELECT path FROM sightings ORDER BY seq")]


def _actions(case: Path) -> list[str]:
    with _catalog(case) as conn:
        return [row[0] for row in conn.execute("SELECT action FROM log ORDER BY seq")]


def _verify_json(case: Path) -> dict[str, object]:
    done = run_evidence("verify", "--case", case, "--json")
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def test_the_installed_program_runs_a_whole_session(
    evidence_home: Path, tmp_path: Path, make_corpus: Callable[..., Path]
) -> None:
    case = tmp_path / "case"
    corpus = make_corpus(5, seed=21)
    init = run_evidence("init", case, "--case-id", CASE_ID, "--title", "Fictional")
    assert init.returncode == 0, init.stderr
    ingest = run_evidence("ingest", "--case", case, "-r", corpus)
    assert ingest.returncode == 0, ingest.stderr
    # Not a terminal: no progress bar, no escape sequences in either stream.
    assert "\x1b[" not in ingest.stdout + ingest.stderr
    listed = run_evidence("list", "--case", case, "--json")
    assert {i["sha256"] for i in json.loads(listed.stdout)} == {
        sha256_of(p) for p in corpus.iterdir()
    }
    verify = run_evidence("verify", "--case", case)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith(f"OK: case {CASE_ID}")


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        pytest.param(("verify", "--case", "{missing}"), 3, "no case found", id="missing-case-3"),
        pytest.param(("list", "--bogus"), 2, "No such option", id="usage-error-2"),
        pytest.param(("lst",), 2, "No such command", id="unknown-command-2"),
        pytest.param(("--debug", "keys", "lst"), 2, "No such command", id="unknown-subcommand-2"),
        pytest.param(("show", "zz", "--case", "{case}"), 2, "not an item reference", id="input-2"),
        pytest.param(("verify", "--case", "{case}"), 1, "PROBLEMS", id="problems-1"),
        pytest.param(("--help",), 0, "Usage", id="help-0"),
    ],
)
def test_exit_codes_of_the_installed_program(
    make_case: Callable[..., CaseHandle],
    tmp_path: Path,
    args: tuple[str, ...],
    code: int,
    text: str,
) -> None:
    case = make_case()
    # An object that no event names: a verification problem.
    stray = case.root / "objects" / "sha256" / "00" / ("0" * 62)
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"stray")
    filled = [a.format(case=case.root, missing=tmp_path / "missing") for a in args]
    done = run_evidence(*filled)
    assert done.returncode == code, done.stdout + done.stderr
    assert text in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_wrong_passphrase_in_the_installed_program(
    make_case: Callable[..., CaseHandle], make_corpus: Callable[..., Path]
) -> None:
    case = make_case()
    before = _actions(case.root)
    done = run_evidence(
        "ingest", "--case", case.root, "-r", make_corpus(3), env={"EVIDENCE_PASSPHRASE": "wrong!!!"}
    )
    assert done.returncode == 3
    assert "passphrase does not unlock" in done.stderr
    assert "wrong!!!" not in done.stdout + done.stderr
    assert PASSPHRASE not in done.stdout + done.stderr
    assert _actions(case.root) == before


# --- SIGKILL part-way ----------------------------------------------------------------------


def _wait_for(
    condition: Callable[[], bool], process: subprocess.Popen[bytes], limit: float
) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.005)
    return False


def _staged_or_stored(case: Path) -> int:
    count = 0
    for folder in (case / "objects" / "tmp", case / "objects" / "sha256"):
        if folder.is_dir():
            count += sum(1 for _ in folder.rglob("*") if _.is_file())
    return count


def test_sigkill_during_ingest_then_rerun_completes(
    make_case: Callable[..., CaseHandle], make_corpus: Callable[..., Path]
) -> None:
    case = make_case()
    corpus = make_corpus(400, seed=31, folders=8)
    inputs = sorted(p for p in corpus.rglob("*") if p.is_file())
    process = start_evidence("ingest", "--case", case.root, "-r", corpus)
    try:
        part_way = _wait_for(lambda: _staged_or_stored(case.root) >= 40, process, 60)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert part_way, "the ingest ended before it could be killed part-way"
    assert process.returncode == -signal.SIGKILL
    logged_before = len(_logged_paths(case.root))
    assert logged_before < len(inputs)

    rerun = run_evidence("ingest", "--case", case.root, "-r", corpus, "--json")
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["ingested"] + report["skipped"] == len(inputs)
    assert report["skipped"] == logged_before

    paths = _logged_paths(case.root)
    assert sorted(paths) == sorted(str(p) for p in inputs)  # each input once, none lost
    with _catalog(case.root) as conn:
        shas = [row[0] for row in conn.execute("SELECT sha256 FROM items")]
    assert sorted(shas) == sorted(sha256_of(p) for p in inputs)
    assert not list((case.root / "objects" / "tmp").glob("*"))
    verify = _verify_json(case.root)
    assert verify["ok"] is True, verify


# --- two writers at once -------------------------------------------------------------------


def test_two_processes_ingesting_at_once_give_one_consistent_log(
    make_case: Callable[..., CaseHandle], make_corpus: Callable[..., Path]
) -> None:
    case = make_case()
    first = make_corpus(120, seed=41, name="first")
    second = make_corpus(120, seed=42, name="second")
    processes = [
        start_evidence("ingest", "--case", case.root, "-r", folder) for folder in (first, second)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()
    with _catalog(case.root) as conn:
        seqs = [row[0] for row in conn.execute("SELECT seq FROM log ORDER BY seq")]
        shas = [row[0] for row in conn.execute("SELECT sha256 FROM items")]
    assert seqs == list(range(len(seqs)))
    expected = [sha256_of(p) for p in [*first.iterdir(), *second.iterdir()]]
    assert sorted(shas) == sorted(expected)
    assert _actions(case.root).count("item.ingested") == 240
    verify = _verify_json(case.root)
    assert verify["ok"] is True, verify


# --- permissions (exit 1 for unreadable inputs, exit 3 for the environment) ---------------


# With many inputs, worker processes open them (the scan does not) and refuse what they cannot.
@pytest.mark.parametrize("others", [0, 80], ids=["few", "many"])
def test_unreadable_file_and_folder_are_refused(
    make_case: Callable[..., CaseHandle], tmp_path: Path, others: int
) -> None:
    case = make_case()
    inbox = tmp_path / "inbox"
    (inbox / "closed").mkdir(parents=True)
    (inbox / "good.txt").write_bytes(b"readable")
    for number in range(others):
        (inbox / f"other-{number:03d}.txt").write_bytes(f"readable {number}".encode())
    (inbox / "locked.txt").write_bytes(b"no permission to read")
    (inbox / "closed" / "inside.txt").write_bytes(b"behind a closed folder")
    (inbox / "locked.txt").chmod(0)
    (inbox / "closed").chmod(0)
    try:
        done = run_unprivileged("ingest", "--case", case.root, "-r", inbox, "--json")
    finally:
        (inbox / "closed").chmod(0o755)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert sorted((Path(r["path"]).name, r["code"]) for r in report["refused"]) == [
        ("closed", "unreadable"),
        ("locked.txt", "unreadable"),
    ]
    assert report["ingested"] == 1 + others
    assert _verify_json(case.root)["ok"] is True


def test_case_that_cannot_be_written_exits_3(
    make_case: Callable[..., CaseHandle], make_corpus: Callable[..., Path]
) -> None:
    case = make_case()
    corpus = make_corpus(3)
    before = _actions(case.root)
    objects = case.root / "objects"
    objects.chmod(0o555)
    try:
        done = run_unprivileged("ingest", "--case", case.root, "-r", corpus)
    finally:
        objects.chmod(0o755)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "object store" in done.stderr
    assert "permission" in done.stderr.lower()
    assert "Traceback" not in done.stderr
    assert _actions(case.root) == before


def test_unreadable_key_file_exits_3(make_case: Callable[..., CaseHandle]) -> None:
    case = make_case()
    case.key_path.chmod(0)
    done = run_unprivileged("log", "checkpoint", "--sign", "--case", case.root)
    assert done.returncode == 3, done.stdout + done.stderr
    assert str(case.key_path) in done.stderr


# --- SIGTERM and SIGHUP stop a command as Ctrl-C does --------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_during_ingest_is_undone_and_said(
    make_case: Callable[..., CaseHandle], make_corpus: Callable[..., Path], signum: int
) -> None:
    case = make_case()
    corpus = make_corpus(400, seed=33, folders=8)
    inputs = sorted(p for p in corpus.rglob("*") if p.is_file())
    process = start_evidence("ingest", "--case", case.root, "-r", corpus)
    try:
        part_way = _wait_for(lambda: _staged_or_stored(case.root) >= 40, process, 60)
    finally:
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    assert part_way, "the ingest ended before it could be stopped part-way"
    # SPEC 8: what happened is in the exit status (128 + the signal) and on stderr.
    assert process.returncode == 128 + signum, stderr.decode()
    assert "interrupted" in stderr.decode()
    # What was recorded is consistent, and the same command completes the batch; the
    # temporary copies the stopped run left are removed by it.
    assert _verify_json(case.root)["ok"] is True
    rerun = run_evidence("ingest", "--case", case.root, "-r", corpus, "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(_logged_paths(case.root)) == sorted(str(p) for p in inputs)
    assert not list((case.root / "objects" / "tmp").iterdir())
    assert _verify_json(case.root)["ok"] is True


def test_sigterm_while_an_export_waits_for_the_catalog_leaves_nothing(
    make_case: Callable[..., CaseHandle], make_corpus: Callable[..., Path], tmp_path: Path
) -> None:
    case = make_case()
    corpus = make_corpus(5, seed=35)
    assert run_evidence("ingest", "--case", case.root, "-r", corpus).returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    writer = sqlite3.connect(case.root / "catalog.sqlite", timeout=60, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another session writing: the export waits
    try:
        process = start_evidence(
            "export", "--case", case.root, "--all", "--profile", "restricted",
            "--out", out / "bundle", "--zip",
        )  # fmt: skip
        try:
            time.sleep(1.5)
            waiting = process.poll() is None
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=60)
    finally:
        writer.rollback()
        writer.close()
    assert waiting, stderr.decode()
    assert process.returncode == 128 + signal.SIGTERM, stderr.decode()
    assert "interrupted" in stderr.decode()
    assert list(out.iterdir()) == []
    assert "export.made" not in _actions(case.root)
