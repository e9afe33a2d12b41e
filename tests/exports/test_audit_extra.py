"""``evidence audit`` through the command line: the exit code and message of each bad input.

The library tests (test_audit.py) name the findings; these check what an auditor sees: exit 1
with the file named for a bad bundle, exit 2 for a wrong argument, never exit 3.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult, run_unprivileged
from tests.exports.casebuilder import (
    investigator_signer,
)
from tests.exports.test_audit import rebag

Cli = Callable[..., CliResult]


@pytest.fixture
def trust_file(tmp_path: Path) -> Path:
    """The exporter's verifier key line, as the organisation would publish it."""
    path = tmp_path / "investigator-a.pub"
    path.write_text(investigator_signer().verifier.to_note_text() + "\n", encoding="utf-8")
    return path


def test_clean_bag_exits_0(cli: Cli, bag: Path, trust_file: Path) -> None:
    result = cli("audit", bag, "--trust", trust_file)
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout
    events = len(list((bag / "data" / "custody" / "events").iterdir()))
    items = len(list((bag / "data" / "custody" / "proofs").iterdir()))
    said = f"{events} events with {events} event proofs and {items} item proofs verified"
    assert said in result.stdout


@pytest.mark.parametrize("rel", ["extra/evil.txt", "Data/evil.txt", "datax/evil.txt"])
def test_file_outside_payload_exits_1_naming_it(
    cli: Cli, bag: Path, trust_file: Path, rel: str
) -> None:
    (bag / rel).parent.mkdir()
    (bag / rel).write_text("invented\n", encoding="utf-8")
    result = cli("audit", bag, "--trust", trust_file)
    assert result.exit_code == 1, result.output
    assert "file-outside-payload" in result.stdout
    assert rel in result.stdout


@pytest.mark.parametrize(
    "rel",
    [
        "data/custody/events/999.leaf",
        "data/custody/proofs/UATEST-999999.proof",
        "data/custody/consistency/1.proof",
    ],
)
def test_folder_named_like_a_custody_file_exits_1_naming_it(
    cli: Cli, bag: Path, trust_file: Path, rel: str
) -> None:
    (bag / rel).mkdir(parents=True)
    result = cli("audit", bag, "--trust", trust_file)
    assert result.exit_code == 1, result.output
    assert "unexpected error" not in result.output
    assert "not-a-file" in result.stdout
    assert rel in result.stdout


def test_checkpoint_replaced_by_a_folder_exits_1(cli: Cli, bag: Path, trust_file: Path) -> None:
    checkpoint = bag / "data/custody/checkpoint.txt"
    checkpoint.unlink()
    checkpoint.mkdir()
    result = cli("audit", bag, "--trust", trust_file)
    assert result.exit_code == 1, result.output
    assert "data/custody/checkpoint.txt" in result.stdout


@pytest.mark.parametrize("name", ["own copy.pem", "investigator-a_key.pem"])
def test_trusted_pem_under_any_name_exits_0(cli: Cli, bag: Path, tmp_path: Path, name: str) -> None:
    pem = tmp_path / name
    pem.write_bytes(investigator_signer().verifier.to_pem())
    result = cli("audit", bag, "--trust", pem)
    assert result.exit_code == 0, result.output


def test_key_file_of_the_audited_bundle_is_refused_as_trust(
    cli: Cli, bag: Path, tmp_path: Path
) -> None:
    # Trusting the bundle's own key would show only what an audit without --trust shows.
    pem = next((bag / "data/custody/keys").glob("*.pem"))
    link = tmp_path / "exporter.pem"
    link.symlink_to(pem)
    for given in (pem, link):
        result = cli("audit", bag, "--trust", given)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(
            f"error: --trust {given} is a file of the bundle being audited"
        )
        assert "VERIFY.md, step 3" in result.stderr
    # A copy taken out of the bundle and compared, as VERIFY.md says, is the auditor's own.
    copy = tmp_path / "compared.pem"
    copy.write_bytes(pem.read_bytes())
    assert cli("audit", bag, "--trust", copy).exit_code == 0


def test_audit_names_the_keys_it_relied_on(cli: Cli, bag: Path, trust_file: Path) -> None:
    verifier = investigator_signer().verifier
    # RFC 8410: an Ed25519 SubjectPublicKeyInfo is this fixed prefix and the 32-byte key.
    der = bytes.fromhex("302a300506032b6570032100") + verifier.public_key
    fingerprint = hashlib.sha256(der).hexdigest()
    trusted = cli("audit", bag, "--trust", trust_file)
    assert trusted.stdout.splitlines()[1:] == [
        f"Trusted key: {verifier.key_id}, SHA-256 fingerprint {fingerprint}"
    ]
    assert json.loads(cli("audit", bag, "--trust", trust_file, "--json").stdout)[
        "trusted_key_fingerprints"
    ] == {verifier.key_id: fingerprint}
    own = cli("audit", bag)
    assert own.stdout.splitlines()[1:] == [
        f"Key relied on (the bundle's own, see the warning): {verifier.key_id}, SHA-256 "
        f"fingerprint {fingerprint}"
    ]
    (bag / "bag-info.txt").write_text("changed", encoding="utf-8")
    problems = cli("audit", bag, "--trust", trust_file)
    assert problems.exit_code == 1
    assert problems.stdout.splitlines()[-1].startswith(f"Trusted key: {verifier.key_id}")


def test_missing_base64_signature_exits_1(cli: Cli, bag: Path, trust_file: Path) -> None:
    (bag / "tagmanifest-sha256.txt.sig.b64").unlink()
    result = cli("audit", bag, "--trust", trust_file)
    assert result.exit_code == 1, result.output
    assert "tagmanifest-sha256.txt.sig.b64" in result.stdout


@pytest.mark.parametrize(
    "content", [pytest.param(b"", id="empty"), pytest.param(bytes(range(256)), id="binary")]
)
def test_since_that_is_not_a_checkpoint_exits_2(
    cli: Cli, bag: Path, trust_file: Path, tmp_path: Path, content: bytes
) -> None:
    since = tmp_path / "earlier.txt"
    since.write_bytes(content)
    result = cli("audit", bag, "--trust", trust_file, "--since", since)
    assert result.exit_code == 2, result.output
    assert "not a signed checkpoint" in result.stderr
    assert "checkpoint.txt" in result.stderr  # the hint says what to give
    assert "(-)" not in result.output


def test_symlink_to_the_bag_exits_0(cli: Cli, bag: Path, trust_file: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(bag, target_is_directory=True)
    result = cli("audit", link, "--trust", trust_file)
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout


def test_original_and_proof_renamed_to_another_ern_exits_1_naming_both(
    cli: Cli, bag: Path, trust_file: Path
) -> None:
    # An insider holding the exporting key renames the photo to an ERN never assigned to it.
    original = next((bag / "data/originals").glob("*_bus_photo.png"))
    ern = original.name.split("_", 1)[0]
    original.rename(original.with_name(f"UATEST-000042_{original.name.split('_', 1)[1]}"))
    (bag / f"data/custody/proofs/{ern}.proof").rename(
        bag / "data/custody/proofs/UATEST-000042.proof"
    )
    rebag(bag, investigator_signer())
    result = cli("audit", bag, "--trust", trust_file)
    assert result.exit_code == 1, result.output
    assert "ern-mismatch" in result.stdout
    assert "data/originals/UATEST-000042_bus_photo.png" in result.stdout
    assert "data/custody/proofs/UATEST-000042.proof" in result.stdout
    assert f"expected {ern}" in result.stdout
    report = cli("audit", bag, "--trust", trust_file, "--json")
    assert report.exit_code == 1
    assert '"code": "ern-mismatch"' in report.stdout


def test_since_the_same_checkpoint_says_so(cli: Cli, bag: Path, trust_file: Path) -> None:
    same = bag / "data/custody/checkpoint.txt"
    result = cli("audit", bag, "--trust", trust_file, "--since", same)
    assert result.exit_code == 0, result.output
    assert "The earlier checkpoint is the same as the bundle's (size " in result.stdout


def test_a_line_break_in_a_planted_name_stays_on_its_line(
    cli: Cli, bag: Path, trust_file: Path
) -> None:
    forged = "OK: bundle X: 50 files verified"
    (bag / "data" / f"a\n{forged}\tb").write_bytes(b"planted")
    result = cli("audit", bag, "--trust", trust_file)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("OK")]
    assert f"  [file-unlisted] data/a\\n{forged}\\tb is not listed in manifest-sha256.txt" in lines
    # What to do comes after the findings, before the keys relied on.
    assert lines[-2].startswith("Until each finding is explained, do not rely on this copy")


def test_json_of_a_name_that_is_not_utf8_loads(cli: Cli, bag: Path, trust_file: Path) -> None:
    name = b"bad\xffname.txt"
    with open(os.path.join(os.fsencode(bag), b"data", name), "wb") as planted:
        planted.write(b"planted")
    result = cli("audit", bag, "--trust", trust_file, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    paths = {f["path"] for f in report["findings"] if f["code"] == "file-unlisted"}
    # The exact name comes back: the escape reads as the byte that was not UTF-8.
    assert paths == {"data/" + os.fsdecode(name)}


@pytest.mark.parametrize("option", ["--trust", "--since"])
def test_an_unreadable_key_or_checkpoint_is_an_environment_error(
    bag: Path, trust_file: Path, tmp_path: Path, option: str
) -> None:
    given = tmp_path / "given.txt"
    source = trust_file if option == "--trust" else bag / "data/custody/checkpoint.txt"
    given.write_bytes(source.read_bytes())
    given.chmod(0)
    done = run_unprivileged("audit", bag, option, given)
    said = " ".join(done.stderr.split())
    assert done.returncode == 3, done.stderr
    assert f"cannot read {given}: Permission denied" in said
    assert "hint: give the auditing account read access to it" in said
