"""Crash safety: an ingest killed with SIGKILL over and over, then run to completion.

At least 20 ``evidence ingest`` processes on one case are killed at seeded random points: after
a delay, once some copies are staged, or just after a batch of events committed. Afterwards one
run completes the work, and then: ``evidence verify`` is clean, every input is in the case
exactly once (one item, one sighting, no duplicate events) and no temporary file is left in the
store.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import (
    PASSPHRASE,
    build_case,
    run_evidence,
    sha256_of,
    start_evidence,
    write_corpus,
)

KILLS = 20
MAX_ROUNDS = 40
INITIAL_FILES = 600
FILES_PER_ROUND = 10


def _log_size(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(seq) FROM log").fetchone()
    return -1 if row[0] is None else int(row[0])


def _staged(case: Path) -> int:
    try:
        return sum(1 for _ in os.scandir(case / "objects" / "tmp"))
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_repeated_sigkill_then_rerun_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("EVIDENCE_HOME", str(home))
    monkeypatch.setenv("EVIDENCE_PASSPHRASE", PASSPHRASE)
    case = build_case(tmp_path / "case", home).root
    corpus = tmp_path / "corpus"
    inputs = write_corpus(corpus / "initial", INITIAL_FILES, seed=500, folders=12, max_size=1500)
    rng = random.Random(20261124)
    reader = sqlite3.connect(f"file:{case / 'catalog.sqlite'}?mode=ro", uri=True, timeout=60)
    kills: Counter[str] = Counter()
    completed = 0
    rounds = 0
    try:
        while sum(kills.values()) < KILLS:
            rounds += 1
            assert rounds <= MAX_ROUNDS, f"only {dict(kills)} kills in {rounds} rounds"
            # Each round brings some new files, so that every run has work left to do.
            inputs += write_corpus(
                corpus / f"round-{rounds:02d}", FILES_PER_ROUND, seed=600 + rounds
            )
            kind = rng.choice(["delay", "staged", "committed"])
            delay = rng.uniform(0.3, 1.3)
            staged = rng.randint(1, FILES_PER_ROUND - 2)
            size_before = _log_size(reader)
            process = start_evidence("ingest", "--case", case, "-r", corpus)
            start = time.monotonic()
            while process.poll() is None:
                if kind == "delay":
                    due = time.monotonic() - start >= delay
                elif kind == "staged":
                    due = _staged(case) >= staged
                else:
                    due = _log_size(reader) > size_before
                if due:
                    process.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.001)
            process.wait()
            if process.returncode == -signal.SIGKILL:
                kills[kind] += 1
            else:
                assert process.returncode == 0, process.stderr.read() if process.stderr else ""
                completed += 1
            if process.stderr:
                process.stderr.close()
    finally:
        reader.close()

    final = run_evidence("ingest", "--case", case, "-r", corpus, "--json")
    assert final.returncode == 0, final.stderr
    report = json.loads(final.stdout)
    assert report["refused"] == []
    assert report["ingested"] + report["skipped"] == len(inputs)

    conn = sqlite3.connect(f"file:{case / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        paths = [r[0] for r in conn.execute("SELECT path FROM sightings")]
        shas = [r[0] for r in conn.execute("SELECT sha256 FROM items")]
        actions = Counter(r[0] for r in conn.execute("SELECT action FROM log"))
    finally:
        conn.close()
    # Nothing lost, nothing duplicated: one item and one sighting per input.
    assert sorted(paths) == sorted(str(p) for p in inputs)
    assert sorted(shas) == sorted(sha256_of(p) for p in inputs)
    assert actions["item.ingested"] == len(inputs)
    assert actions["item.sighted"] == 0
    # No temporary file visible in the store, and nothing but objects under sha256/.
    assert list((case / "objects" / "tmp").iterdir()) == []
    for path in (case / "objects" / "sha256").rglob("*"):
        assert path.is_dir() or len(path.parent.name + path.name) == 64, path
    verify = run_evidence("verify", "--case", case, "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["ok"] is True
    print(f"kills by trigger: {dict(kills)}; runs that completed first: {completed}")
