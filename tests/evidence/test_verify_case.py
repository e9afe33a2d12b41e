"""verify_case on logs the toolkit never writes: findings, never a crash."""

from __future__ import annotations

from pathlib import Path

from chain_of_custody.events import EventDraft
from chain_of_custody.keys import signer_from_seed
from evidence.ingest import ingest
from evidence.models import ItemOptions
from evidence.verify import verify_case
from evidence.workspace import init_case

SIGNER = signer_from_seed("investigator-a", bytes(range(32)))


def test_second_ingest_of_the_same_content_is_a_finding(tmp_path: Path) -> None:
    case = init_case(tmp_path / "case", case_id="UA-TEST-0001", title="Twice", signer=SIGNER)
    original = tmp_path / "photo.jpg"
    original.write_bytes(b"fictional photo bytes")
    report = ingest(case, SIGNER, [original], options=ItemOptions())
    sha256 = report.files[0].sha256
    sha512 = case.db.execute("SELECT sha512 FROM items").fetchone()[0]
    # Signed by the enrolled key, appended behind the toolkit's back (ingest would have
    # recorded a sighting): the catalog cannot hold the item twice.
    with case.log.transaction() as tx:
        again = tx.append(
            EventDraft(
                action="item.ingested",
                subject=sha256,
                data={"sha512": sha512, "size": "21", "name": "again.jpg", "path": "/x"},
            ),
            SIGNER,
        )
    checked = verify_case(case)
    assert not checked.ok
    refused = [f for f in checked.findings if f.code == "catalog-event-refused"]
    assert [(f.seq, f.subject) for f in refused] == [(again.seq, sha256)]
