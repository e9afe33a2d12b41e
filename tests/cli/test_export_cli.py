"""``evidence export`` and ``evidence audit`` through the command line, with their exit codes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from chain_of_custody import VerifierKey, parse_leaf, parse_note
from evidence.workspace import open_case
from exports.model import parse_time
from tests.conftest import CliResult, save_key
from tests.exports.casebuilder import BuiltCase, build_case, investigator_signer

Cli = Callable[..., CliResult]


@pytest.fixture
def case_dir(tmp_path: Path, evidence_home: Path) -> Path:
    built: BuiltCase = build_case(tmp_path / "built")
    save_key(evidence_home, investigator_signer())
    return built.root


@pytest.fixture
def trust_file(cli: Cli, case_dir: Path, tmp_path: Path) -> Path:
    key_id = investigator_signer().key_id
    result = cli("keys", "export", key_id, "--format", "note", "--case", case_dir)
    assert result.exit_code == 0, result.output
    path = tmp_path / "investigator-a.pub"
    path.write_text(result.stdout, encoding="utf-8")
    return path


def _export(cli: Cli, case_dir: Path, out: Path, *extra: str | Path) -> CliResult:
    # No --created: the command line runs on the real clock, so the ERNs it assigns carry the
    # current time and a fixed --created would precede them.
    return cli(
        "export", "--case", case_dir, "--incident", "INC-0001", "--profile", "restricted",
        "--out", out, *extra,
    )  # fmt: skip


def _log(case_dir: Path) -> list[tuple[int, str, str]]:
    """``(seq, time, action)`` of every event of the case."""
    case = open_case(case_dir)
    try:
        events = [parse_leaf(case.log.leaf(seq)).event for seq in range(case.log.size())]
    finally:
        case.close()
    return [(event.seq, event.time, event.action) for event in events]


def test_export_then_audit_bag_and_zip(
    cli: Cli, case_dir: Path, trust_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "bundle"
    result = _export(cli, case_dir, out, "--zip", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["bag"] == str(out)
    assert summary["zip"] == str(out) + ".zip"
    assert summary["items"] == 2 and summary["testimonies"] == 1
    assert "left out" in result.stderr  # the strictly-confidential item

    for target in (out, Path(summary["zip"])):
        audited = cli("audit", target, "--trust", trust_file)
        assert audited.exit_code == 0, audited.output
        assert "OK" in audited.stdout
        assert "trusting the bundle's own keys" not in audited.output

    report = cli("audit", out, "--trust", trust_file, "--json")
    assert report.exit_code == 0
    assert json.loads(report.stdout)["bundle_id"] == summary["bundle_id"]


def test_audit_without_trust_warns_loudly(cli: Cli, case_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    assert _export(cli, case_dir, out).exit_code == 0
    audited = cli("audit", out)
    assert audited.exit_code == 0
    assert "trusting the bundle's own keys" in audited.stderr


def test_audit_exits_1_naming_the_tampered_file(
    cli: Cli, case_dir: Path, trust_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    assert _export(cli, case_dir, out).exit_code == 0
    original = next((out / "data" / "originals").glob("*.png"))
    original.chmod(0o644)
    original.write_bytes(original.read_bytes() + b"\x00")
    audited = cli("audit", out, "--trust", trust_file)
    assert audited.exit_code == 1
    assert "PROBLEMS" in audited.stdout
    assert original.name in audited.stdout
    assert "file-hash-mismatch" in audited.stdout
    finding_lines = [line for line in audited.stdout.splitlines() if line.startswith("  [")]
    assert finding_lines
    for line in finding_lines:
        # Each finding names its file once, not once as location and again in the message.
        assert line.count(original.name) <= 1, line
    assert sum(original.name in line for line in finding_lines) >= 2  # sha256 and sha512


def test_audit_since(cli: Cli, case_dir: Path, trust_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    assert _export(cli, case_dir, out).exit_code == 0
    same = out / "data" / "custody" / "checkpoint.txt"
    assert cli("audit", out, "--trust", trust_file, "--since", same).exit_code == 0


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        pytest.param(("--profile", "secret"), 2, "--profile", id="unknown-profile"),
        pytest.param(("--profile", "otp"), 2, "--recipient", id="otp-without-recipient"),
        pytest.param((), 2, "--profile is required", id="no-profile"),
    ],
)
def test_export_usage_errors(
    cli: Cli, case_dir: Path, tmp_path: Path, args: tuple[str, ...], code: int, text: str
) -> None:
    result = cli(
        "export", "--case", case_dir, "--incident", "INC-0001", "--out", tmp_path / "b", *args
    )
    assert result.exit_code == code, result.output
    assert text in result.stderr
    assert not (tmp_path / "b").exists()


def test_export_unknown_incident(cli: Cli, case_dir: Path, tmp_path: Path) -> None:
    result = cli(
        "export", "--case", case_dir, "--incident", "INC-0042", "--profile", "restricted",
        "--out", tmp_path / "b",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "INC-0042" in result.stderr


def test_export_needs_a_case(cli: Cli, tmp_path: Path) -> None:
    result = cli(
        "export", "--case", tmp_path / "nowhere", "--all", "--profile", "public",
        "--out", tmp_path / "b",
    )  # fmt: skip
    assert result.exit_code == 3


def test_audit_of_missing_path_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("audit", tmp_path / "missing")
    assert result.exit_code == 2
    assert "neither a bag directory nor a zip" in result.stderr


def test_audit_hostile_zip_exits_1(cli: Cli, tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("bundle/../../evil.txt", b"x")
    result = cli("audit", path)
    assert result.exit_code == 1
    assert "zip-path-traversal" in result.stdout
    assert not (tmp_path.parent / "evil.txt").exists()


# --- --created ---------------------------------------------------------------------------


def test_created_before_new_erns_is_refused_before_anything_is_recorded(
    cli: Cli, case_dir: Path, tmp_path: Path
) -> None:
    before = _log(case_dir)
    result = _export(cli, case_dir, tmp_path / "b", "--created", "2001-01-01T00:00:00Z")
    assert result.exit_code == 2, result.output
    assert "--created 2001-01-01T00:00:00Z is earlier than" in result.stderr
    assert "ERN assignment" in result.stderr
    assert "at or after 20" in result.stderr and "leave --created out" in result.stderr
    assert _log(case_dir) == before
    assert not (tmp_path / "b").exists()


def test_created_before_the_latest_event_of_the_bundle_is_refused(
    cli: Cli, case_dir: Path, tmp_path: Path
) -> None:
    assert _export(cli, case_dir, tmp_path / "first").exit_code == 0
    events = _log(case_dir)
    # The second bundle holds the ERN assignments of the first export, made just now.
    latest = max(time for _seq, time, action in events if action == "ern.assigned")
    size = len(events)
    result = _export(cli, case_dir, tmp_path / "second", "--created", "2001-01-01T00:00:00Z")
    assert result.exit_code == 2, result.output
    assert "--created 2001-01-01T00:00:00Z is earlier than event" in result.stderr
    assert f"at or after {latest}" in result.stderr
    assert "leave --created out" in result.stderr
    assert not (tmp_path / "second").exists()
    assert "export.made" not in {action for _seq, _time, action in _log(case_dir)[size:]}


def test_created_after_every_event_is_kept(cli: Cli, case_dir: Path, tmp_path: Path) -> None:
    assert _export(cli, case_dir, tmp_path / "first").exit_code == 0
    latest = parse_time(max(time for _seq, time, _action in _log(case_dir)))
    later = (latest + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = _export(cli, case_dir, tmp_path / "second", "--created", later, "--json")
    assert result.exit_code == 0, result.output
    info = (tmp_path / "second" / "bag-info.txt").read_text(encoding="utf-8")
    assert f"Bundle-Created: {later}" in info


def test_created_later_than_now_is_refused(cli: Cli, case_dir: Path, tmp_path: Path) -> None:
    before = _log(case_dir)
    result = _export(cli, case_dir, tmp_path / "b", "--created", "2099-01-01T00:00:00Z")
    assert result.exit_code == 2, result.output
    assert "--created 2099-01-01T00:00:00Z is later than now" in result.stderr
    assert "leave --created out" in result.stderr
    assert _log(case_dir) == before
    assert not (tmp_path / "b").exists()


def test_default_created_is_not_before_the_bundles_events(
    cli: Cli, case_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    assert _export(cli, case_dir, out).exit_code == 0
    info = (out / "bag-info.txt").read_text(encoding="utf-8")
    created = next(line.split(": ", 1)[1] for line in info.splitlines() if "Created" in line)
    times = [
        parse_leaf(path.read_bytes()).event.time
        for path in (out / "data/custody/events").glob("*.leaf")
    ]
    assert times and created >= max(times)


# --- a bundle exported with a second key ---------------------------------------------------


@pytest.fixture
def second_key(cli: Cli, case_dir: Path, tmp_path: Path, evidence_home: Path) -> Path:
    """Investigator B's key, generated and enrolled by A: the private key file."""
    b_key = tmp_path / "investigator-b.key"
    generated = cli("keys", "generate", "--name", "investigator-b", "--out", b_key)
    assert generated.exit_code == 0, generated.output
    a_key = save_key(evidence_home, investigator_signer())
    enrolled = cli("keys", "enrol", b_key.with_suffix(".pub"), "--case", case_dir, "--key", a_key)
    assert enrolled.exit_code == 0, enrolled.output
    return b_key


def _pem_of(cli: Cli, case_dir: Path, key_id: str, target: Path) -> Path:
    exported = cli("keys", "export", key_id, "--case", case_dir, "--format", "pem")
    assert exported.exit_code == 0, exported.output
    target.write_text(exported.stdout, encoding="utf-8")
    return target


def _fingerprint(pem: Path) -> str:
    """SHA-256 of the DER form of a PEM public key (what ``openssl pkey ... | sha256sum`` says)."""
    key = serialization.load_pem_public_key(pem.read_bytes())
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def test_bundle_exported_with_a_second_key_names_every_key_it_relies_on(
    cli: Cli, case_dir: Path, second_key: Path, tmp_path: Path, evidence_home: Path
) -> None:
    """A made the checkpoint (its ERNs were assigned by an earlier export), B exports."""
    a_id = investigator_signer().key_id
    b_id = VerifierKey.from_note_text(second_key.with_suffix(".pub").read_text().strip()).key_id
    a_key = save_key(evidence_home, investigator_signer())
    assert _export(cli, case_dir, tmp_path / "by-a", "--key", a_key).exit_code == 0
    out = tmp_path / "by-b"
    exported = _export(cli, case_dir, out, "--key", second_key, "--zip")
    assert exported.exit_code == 0, exported.output
    custody = out / "data" / "custody"
    checkpoint_signers = {
        f"{sig.name}+{sig.key_hash.hex()}"
        for sig in parse_note((custody / "checkpoint.txt").read_bytes()).signatures
    }
    assert checkpoint_signers == {a_id}  # the situation of the defect: not the exporter's
    assert f"Signing-Key-Id: {b_id}" in (out / "bag-info.txt").read_text(encoding="utf-8")

    verify_md = (custody / "VERIFY.md").read_text(encoding="utf-8")
    stems = {key_id: key_id.replace("+", "_") for key_id in (a_id, b_id)}
    for key_id, stem in stems.items():
        # The keys folder holds both forms of each key, and VERIFY.md names it with the
        # fingerprint of its PEM and as a key to trust.
        assert (custody / "keys" / f"{stem}.pub").is_file()
        pem = custody / "keys" / f"{stem}.pem"
        assert f"`{key_id}`" in verify_md
        assert _fingerprint(pem) in verify_md
        assert f"--trust KEYS/{stem}.pem" in verify_md

    own = {
        f"KEYS/{stem}.pem": _pem_of(cli, case_dir, key_id, tmp_path / f"{stem}.pem")
        for key_id, stem in stems.items()
    }
    # Only the exporting key: the finding names the checkpoint's key and says what to do.
    only_b = cli("audit", out, "--trust", own[f"KEYS/{stems[b_id]}.pem"])
    assert only_b.exit_code == 1
    assert "checkpoint-note-untrusted" in only_b.stdout
    assert a_id in only_b.stdout and "--trust" in only_b.stdout
    # Following VERIFY.md: its audit command, with the auditor's own copies of the key files.
    command = next(
        line.split() for line in verify_md.splitlines() if line.startswith("    evidence audit")
    )
    trust = [arg for arg in command if arg.startswith("KEYS/")]
    assert sorted(trust) == sorted(own)
    args = [part for arg in trust for part in ("--trust", own[arg])]
    for target in (out, out.with_name("by-b.zip")):
        audited = cli("audit", target, *args)
        assert audited.exit_code == 0, audited.output
        assert "OK" in audited.stdout
