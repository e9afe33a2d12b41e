"""Concurrency: four processes ingest 250 files each into one case while ``evidence verify`` runs.

Writers are serialised by SQLite (``BEGIN IMMEDIATE``, busy timeout), so the log must come out
with every item once and seqs contiguous, and verify clean at the end.

What a verify running meanwhile must print: it checks the log, checkpoints and catalog as one
snapshot, so it must never report a log or catalog problem and never crash (exit 0 or 1, valid
JSON). The one finding it may make is ``object-unexpected``: a writer publishes a batch's
objects just before the transaction that logs them, and an object in that window is not yet
named by any event. Such findings must all be gone once the writers are done.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import (
    PASSPHRASE,
    build_case,
    evidence_command,
    run_evidence,
    sha256_of,
    start_evidence,
    write_corpus,
)

WRITERS = 4
FILES_EACH = 250
ALLOWED_WHILE_WRITING = {"object-unexpected"}


@pytest.mark.slow
def test_four_writers_and_a_verifier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("EVIDENCE_HOME", str(home))
    monkeypatch.setenv("EVIDENCE_PASSPHRASE", PASSPHRASE)
    case = build_case(tmp_path / "case", home).root
    folders = []
    inputs: list[Path] = []
    for number in range(WRITERS):
        folder = tmp_path / f"inbox-{number}"
        inputs += write_corpus(folder, FILES_EACH, seed=7000 + number, folders=5, max_size=1200)
        folders.append(folder)

    writers = [start_evidence("ingest", "--case", case, "-r", folder) for folder in folders]
    verifications: list[subprocess.CompletedProcess[str]] = []
    # Verify over and over while any writer runs (at least once).
    while not verifications or any(w.poll() is None for w in writers):
        verifications.append(
            subprocess.run(
                [*evidence_command(), "verify", "--case", str(case), "--json"],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        )
    for writer in writers:
        _, stderr = writer.communicate(timeout=300)
        assert writer.returncode == 0, stderr.decode()

    for done in verifications:
        assert done.returncode in (0, 1), done.stderr
        assert "Traceback" not in done.stderr
        report = json.loads(done.stdout)
        codes = {f["code"] for f in report["findings"]}
        assert codes <= ALLOWED_WHILE_WRITING, report["findings"]
        assert report["ok"] is (done.returncode == 0)

    conn = sqlite3.connect(f"file:{case / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        seqs = [r[0] for r in conn.execute("SELECT seq FROM log ORDER BY seq")]
        shas = [r[0] for r in conn.execute("SELECT sha256 FROM items")]
        paths = Counter(r[0] for r in conn.execute("SELECT path FROM sightings"))
        actions = Counter(r[0] for r in conn.execute("SELECT action FROM log"))
    finally:
        conn.close()
    assert seqs == list(range(len(seqs)))
    assert actions["item.ingested"] == WRITERS * FILES_EACH
    assert sorted(shas) == sorted(sha256_of(p) for p in inputs)
    assert set(paths.values()) == {1}
    assert sorted(paths) == sorted(str(p) for p in inputs)

    final = run_evidence("verify", "--case", case, "--json")
    assert final.returncode == 0, final.stdout + final.stderr
    assert json.loads(final.stdout)["findings"] == []
    print(f"{len(verifications)} verify run(s) during the writes")
