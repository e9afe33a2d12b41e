"""What an ingest never takes, whatever its inputs: the case's own folder and private keys.

A folder given to ``ingest`` may hold the case being ingested into (its catalog, log and objects
change with every run) or the investigator's key folder (encrypted private keys, which must
never leave in a bundle). Each is refused once, with a stable code and a reason, and the rest of
the folder is ingested; a re-run records nothing new.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from evidence.ingest import IngestReport, ingest
from evidence.models import ItemOptions
from evidence.verify import verify_case
from evidence.workspace import Case
from tests.conftest import CaseHandle, CliResult, write_corpus

# Invented bytes in the form of a recipient's key file: only where it lies matters.
FICTIONAL_RECIPIENT_KEY = (
    b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nZmljdGlvbmFsIHJlY2lwaWVudA==\n"
    b"-----END ENCRYPTED PRIVATE KEY-----\n"
)


def _ingest(case: Case, handle: CaseHandle, paths: list[Path], **kwargs: object) -> IngestReport:
    return ingest(
        case,
        handle.signer,
        paths,
        options=ItemOptions(),
        recursive=True,
        **kwargs,  # type: ignore[arg-type]
    )


def _refused(report: IngestReport) -> list[tuple[str, str]]:
    return [(r.path, r.code) for r in report.refused]


def _log_size(case: Case) -> int:
    return int(case.db.execute("SELECT count(*) FROM log").fetchone()[0])


def _holds(case: Case, data: bytes) -> bool:
    return case.objects.has(hashlib.sha256(data).hexdigest())


def test_folder_holding_the_case_and_the_keys(
    tmp_path: Path, make_case: Callable[..., CaseHandle], evidence_home: Path
) -> None:
    # tmp_path holds the case, EVIDENCE_HOME (signing and recipient keys) and the material.
    handle = make_case("case")
    recipient_key = evidence_home / "recipients" / "registry.key"
    recipient_key.parent.mkdir(mode=0o700)
    recipient_key.write_bytes(FICTIONAL_RECIPIENT_KEY)
    material = write_corpus(tmp_path / "incoming", 5)
    expected_refusals = [
        (str(handle.root), "case-folder"),
        (str(evidence_home / "keys"), "key-folder"),
        (str(evidence_home / "recipients"), "key-folder"),
    ]
    case = handle.open()
    try:
        report = _ingest(case, handle, [tmp_path])
        assert _refused(report) == expected_refusals
        assert sorted(f.path for f in report.files) == sorted(str(p) for p in material)
        assert report.count("ingested") == len(material)
        assert not _holds(case, handle.key_path.read_bytes())
        assert not _holds(case, FICTIONAL_RECIPIENT_KEY)
        as_json = report.as_json()["refused"]
        assert [(r["path"], r["code"]) for r in as_json] == expected_refusals
        assert "the case's own folder is never ingested" in as_json[0]["reason"]
        assert "a private key is never ingested as evidence" in as_json[1]["reason"]

        # Idempotent: the case's catalog and log, changed by the first run, are not new items.
        logged = _log_size(case)
        again = _ingest(case, handle, [tmp_path])
        assert _refused(again) == expected_refusals
        assert again.count("skipped") == len(material)
        assert again.checkpoint is None
        assert _log_size(case) == logged
        assert verify_case(case).ok
    finally:
        case.close()


def test_case_folder_given_in_any_form(
    tmp_path: Path, make_case: Callable[..., CaseHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = make_case("case")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "alias").symlink_to(handle.root)
    case = handle.open()
    try:
        logged = _log_size(case)
        for given in [
            handle.root,
            tmp_path / "elsewhere" / ".." / "case",
            tmp_path / "alias" / "objects",
            handle.root / "catalog.sqlite",
            handle.root / "case.toml",
        ]:
            report = _ingest(case, handle, [given])
            assert _refused(report) == [(str(given), "case-folder")], given
            assert report.files == []
        # The command run from inside the case, as `--case` defaults to the current folder.
        monkeypatch.chdir(handle.root)
        assert _refused(_ingest(case, handle, [Path()])) == [(".", "case-folder")]
        assert _log_size(case) == logged
    finally:
        case.close()


def test_private_key_given_explicitly(
    tmp_path: Path, make_case: Callable[..., CaseHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = make_case("case")
    good = write_corpus(tmp_path / "incoming", 1)[0]
    # A key kept with the material (on the same stick, say), named by EVIDENCE_KEY or --key.
    stick = tmp_path / "stick"
    stick.mkdir()
    shutil.copy(handle.key_path, stick / "investigator-a.key")
    case = handle.open()
    try:
        report = _ingest(case, handle, [handle.key_path, good])
        assert _refused(report) == [(str(handle.key_path), "private-key")]
        assert [f.path for f in report.files] == [str(good)]

        report = _ingest(case, handle, [stick], private_keys=[stick / "investigator-a.key"])
        assert _refused(report) == [(str(stick / "investigator-a.key"), "private-key")]

        monkeypatch.setenv("EVIDENCE_KEY", str(stick / "investigator-a.key"))
        report = _ingest(case, handle, [stick])
        assert _refused(report) == [(str(stick / "investigator-a.key"), "private-key")]
        assert not _holds(case, handle.key_path.read_bytes())
    finally:
        case.close()


def test_command_reports_what_it_never_ingests(
    tmp_path: Path, make_case: Callable[..., CaseHandle], cli: Callable[..., CliResult]
) -> None:
    handle = make_case("case")
    write_corpus(tmp_path / "incoming", 2)
    result = cli("ingest", "--case", handle.root, "--recursive", tmp_path)
    # Refused inputs of a batch give exit code 1 (SPEC section 8), the rest is ingested.
    assert result.exit_code == 1, result.output
    assert f"refused: {handle.root}: is the folder of the case being ingested into" in (
        result.stderr
    )
    assert "a private key is never ingested as evidence" in result.stderr
