"""Crash safety of export: ``evidence export`` killed with SIGKILL at random points.

Whatever the moment of the kill, the bundle's final name holds either nothing or a complete
bundle that ``evidence audit`` accepts; a run after the kills writes a bundle that audits clean,
and the case still verifies.
"""

from __future__ import annotations

import random
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, build_case, run_evidence, start_evidence, write_corpus

KILLS = 8


@pytest.mark.slow
def test_killed_exports_never_leave_a_partial_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("EVIDENCE_HOME", str(home))
    monkeypatch.setenv("EVIDENCE_PASSPHRASE", PASSPHRASE)
    handle = build_case(tmp_path / "case", home)
    case = handle.root
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 40, seed=77, max_size=4096)
    shutil.copy(
        Path(__file__).resolve().parents[2] / "sample-data/files/transfer-list-17-2022.pdf", corpus
    )
    ingested = run_evidence("ingest", "--case", case, "-r", corpus)
    assert ingested.returncode == 0, ingested.stderr
    key = run_evidence("keys", "list", "--case", case, "--json")
    key_id = key.stdout.split('"key_id": "', 1)[1].split('"', 1)[0]
    trust = tmp_path / "trusted.pub"
    trust.write_text(run_evidence("keys", "export", key_id, "--case", case).stdout)

    out = tmp_path / "bundles" / "bundle"
    rng = random.Random(4242)
    outcomes = []
    for _ in range(KILLS):
        process = start_evidence(
            "export", "--all", "--profile", "restricted", "--out", out, "--zip", "--case", case
        )
        time.sleep(rng.uniform(0.2, 2.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            outcomes.append("killed")
        else:
            outcomes.append("finished")
        process.wait()
        assert process.stderr is not None
        process.stderr.close()
        if out.exists():
            # Present under its final name means complete: it must audit clean.
            audit = run_evidence("audit", out, "--trust", trust)
            assert audit.returncode == 0, audit.stdout + audit.stderr
            shutil.rmtree(out)
        zipped = out.parent / (out.name + ".zip")
        if zipped.exists():
            audit = run_evidence("audit", zipped, "--trust", trust)
            assert audit.returncode == 0, audit.stdout + audit.stderr
            zipped.unlink()
        visible = [p.name for p in out.parent.iterdir() if not p.name.startswith(".")]
        assert visible == [], f"left under a final-looking name: {visible}"

    assert "killed" in outcomes, "no export was interrupted; the delays are too long"
    final = run_evidence(
        "export", "--all", "--profile", "restricted", "--out", out, "--zip", "--case", case
    )
    assert final.returncode == 0, final.stderr
    assert run_evidence("audit", out, "--trust", trust).returncode == 0
    assert run_evidence("audit", str(out) + ".zip", "--trust", trust).returncode == 0
    verify = run_evidence("verify", "--case", case)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    leftovers = [p.name for p in out.parent.iterdir() if ".partial-" in p.name]
    assert leftovers == [], f"work of killed exports was not cleared: {leftovers}"
