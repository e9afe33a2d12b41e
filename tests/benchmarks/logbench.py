"""The log row, run in a child process: append synthetic events, time proofs, verify the log.

Usage: ``python -m tests.benchmarks.logbench --events N --db FILE --out RESULT.json``. It uses
the library directly (no command line) so that it measures the log alone. The result file holds
whichever figures could be measured, and ``unavailable`` for the parts whose module is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from chain_of_custody.events import EventDraft
from chain_of_custody.keys import signer_from_seed
from chain_of_custody.store import LogStore, open_database

BATCH = 10_000
PROOFS = 1_000
# Fixed seed: the benchmark's own throw-away signing key.
SEED = bytes(range(32))


def append_events(store: LogStore, events: int, batch: int = BATCH) -> float:
    """Append the enrolment and ``events`` - 1 synthetic events; return seconds taken."""
    signer = signer_from_seed("bench-log", SEED)
    verifier = signer.verifier
    start = time.perf_counter()
    with store.transaction() as tx:
        tx.append(
            EventDraft(
                action="key.enrolled",
                subject=verifier.key_id,
                data={"verifier": verifier.to_note_text(), "role": "investigator"},
            ),
            signer,
        )
        tx.checkpoint(signer)
    done = 1
    while done < events:
        step = min(batch, events - done)
        with store.transaction() as tx:
            # As ingest appends: a batch of drafts signed and written together.
            drafts = []
            for number in range(done, done + step):
                digest = hashlib.sha256(number.to_bytes(8, "big")).hexdigest()
                drafts.append(
                    EventDraft(
                        action="item.ingested",
                        subject=digest,
                        data={"name": f"photo-{number:07d}.jpg", "size": number, "sha256": digest},
                    )
                )
            tx.append_many(drafts, signer)
            # Every command of the toolkit ends with a signed checkpoint; so does each batch.
            tx.checkpoint(signer)
        done += step
    return time.perf_counter() - start


def time_proofs(store: LogStore, count: int = PROOFS) -> list[float]:
    """Seconds for each of ``count`` inclusion proofs of random events against the full tree."""
    size = store.size()
    rng = random.Random(7)
    timings = []
    for _ in range(count):
        index = rng.randrange(size)
        start = time.perf_counter()
        store.inclusion_proof(index, size)
        timings.append(time.perf_counter() - start)
    return timings


def verify_full(store: LogStore) -> dict[str, Any]:
    """Time ``verify_log(store, workers=2)``; say so when the verifier is not there yet."""
    try:
        from chain_of_custody.verify import verify_log
    except ImportError as exc:
        return {"unavailable": f"chain_of_custody.verify.verify_log: {exc}"}
    start = time.perf_counter()
    report = verify_log(store, workers=2)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "ok": report.ok,
        "findings": [f"{f.code}: {f.message}" for f in report.findings[:5]],
    }


def main() -> None:
    """Run the log benchmark and write its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    result: dict[str, Any] = {"events": args.events}
    db = open_database(args.db)
    store = LogStore(db, "UA-BENCH-0001", "example.org/bench/UA-BENCH-0001")
    try:
        result["append_seconds"] = append_events(store, args.events)
        proofs = time_proofs(store)
        result["proof_median_ms"] = statistics.median(proofs) * 1000
        result["proof_max_ms"] = max(proofs) * 1000
        result["verify"] = verify_full(store)
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        args.out.write_text(json.dumps(result, indent=2))
        db.conn.close()


if __name__ == "__main__":
    main()
