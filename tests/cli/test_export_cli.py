"""``evidence export`` and ``evidence audit`` through the command line, with their exit codes."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from chain_of_custody import VerifierKey, parse_leaf, parse_note
from evidence.cli_exports import created_in_utc
from evidence.errors import InputError
from evidence.workspace import open_case
from exports.model import parse_time
from tests.conftest import CliResult, save_key
from tests.exports.casebuilder import BuiltCase, bag_files, build_case, investigator_signer

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


def _refused_created(cli: Cli, case_dir: Path, out: Path, created: str) -> str:
    """What an export with ``--created`` refused says; nothing is recorded or written."""
    before = _log(case_dir)
    result = _export(cli, case_dir, out, "--created", created)
    assert result.exit_code == 2, result.output
    assert _log(case_dir) == before
    assert not out.exists()
    return result.stderr


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
    said = _refused_created(cli, case_dir, tmp_path / "b", "2001-01-01T00:00:00Z")
    assert "--created 2001-01-01T00:00:00Z is earlier than" in said
    assert "ERN assignment" in said
    assert "at or after 20" in said and "leave --created out" in said


def test_created_before_the_latest_event_of_the_bundle_is_refused(
    cli: Cli, case_dir: Path, tmp_path: Path
) -> None:
    assert _export(cli, case_dir, tmp_path / "first").exit_code == 0
    # The second bundle holds the ERN assignments of the first export, made just now.
    latest = max(time for _seq, time, action in _log(case_dir) if action == "ern.assigned")
    said = _refused_created(cli, case_dir, tmp_path / "second", "2001-01-01T00:00:00Z")
    assert "--created 2001-01-01T00:00:00Z is earlier than event" in said
    assert f"at or after {latest}" in said
    assert "leave --created out" in said


def test_created_after_every_event_is_kept(cli: Cli, case_dir: Path, tmp_path: Path) -> None:
    assert _export(cli, case_dir, tmp_path / "first").exit_code == 0
    latest = parse_time(max(time for _seq, time, _action in _log(case_dir)))
    later = (latest + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = _export(cli, case_dir, tmp_path / "second", "--created", later, "--json")
    assert result.exit_code == 0, result.output
    info = (tmp_path / "second" / "bag-info.txt").read_text(encoding="utf-8")
    assert f"Bundle-Created: {later}" in info


def test_created_later_than_now_is_refused(cli: Cli, case_dir: Path, tmp_path: Path) -> None:
    said = _refused_created(cli, case_dir, tmp_path / "b", "2099-01-01T00:00:00Z")
    assert "--created 2099-01-01T00:00:00Z is later than now" in said
    assert "leave --created out" in said


# Written in UTC or with an offset: the same instant, the same bundle.


@pytest.mark.parametrize(
    ("written", "in_utc"),
    [
        pytest.param("2026-03-02T10:00:00Z", "2026-03-02T10:00:00Z", id="utc"),
        pytest.param("2026-03-02T12:00:00+02:00", "2026-03-02T10:00:00Z", id="plus-two"),
        pytest.param("2026-03-02T05:00:00-05:00", "2026-03-02T10:00:00Z", id="minus-five"),
        pytest.param("2026-03-02T10:00:00+00:00", "2026-03-02T10:00:00Z", id="plus-zero"),
        pytest.param("2026-03-02T10:00:00-00:00", "2026-03-02T10:00:00Z", id="minus-zero"),
        pytest.param("2026-03-02T15:30:00+05:30", "2026-03-02T10:00:00Z", id="half-hour"),
        pytest.param("2026-03-02t10:00:00z", "2026-03-02T10:00:00Z", id="lower-case"),
        pytest.param("2026-03-01T23:00:00-11:00", "2026-03-02T10:00:00Z", id="day-before"),
        pytest.param("2024-02-29T01:00:00+02:00", "2024-02-28T23:00:00Z", id="leap-day"),
        pytest.param("2027-01-01T01:00:00+01:00", "2027-01-01T00:00:00Z", id="new-year"),
        pytest.param(
            "2026-03-02T12:00:00.123456789+02:00", "2026-03-02T10:00:00.123456789Z", id="fraction"
        ),
        pytest.param("2026-03-02T10:00:00.5Z", "2026-03-02T10:00:00.5Z", id="fraction-utc"),
        pytest.param("2026-03-02T10:00:00.500Z", "2026-03-02T10:00:00.5Z", id="trailing-zeros"),
        pytest.param("2026-03-02T10:00:00.0Z", "2026-03-02T10:00:00Z", id="zero-fraction"),
        pytest.param(
            "2026-03-02T12:00:00.000000000+02:00", "2026-03-02T10:00:00Z", id="zero-ns-offset"
        ),
        pytest.param("2026-03-02T10:00:00.050Z", "2026-03-02T10:00:00.05Z", id="inner-zero"),
    ],
)
def test_created_in_utc(written: str, in_utc: str) -> None:
    assert created_in_utc(written) == in_utc
    assert parse_time(in_utc)  # the form the bundle takes


@pytest.mark.parametrize(
    ("written", "message", "hint"),
    [
        pytest.param("2026-03-02T10:00:00", "has no time zone", "add Z", id="no-zone"),
        pytest.param("2026-03-02T10:00:00.250", "has no time zone", "add Z", id="no-zone-frac"),
        pytest.param("2026-03-02", "not an RFC 3339", "Z (UTC) or an offset", id="date-only"),
        pytest.param("2026-03-02T10:00Z", "not an RFC 3339", "offset", id="no-seconds"),
        pytest.param("2026-03-02 10:00:00Z", "not an RFC 3339", "offset", id="space"),
        pytest.param("2026-03-02T10:00:00+0200", "not an RFC 3339", "offset", id="offset-colon"),
        pytest.param("2026-03-02T10:00:00+02", "not an RFC 3339", "offset", id="offset-hours"),
        pytest.param("2026-03-02T10:00:00 +02:00", "not an RFC 3339", "offset", id="blank"),
        pytest.param("2026-061T10:00:00Z", "not an RFC 3339", "offset", id="ordinal-date"),
        pytest.param("2026-03-02T10:00:00EST", "not an RFC 3339", "offset", id="zone-name"),
        pytest.param("\u0662026-03-02T10:00:00Z", "not an RFC 3339", "offset", id="arabic-digit"),
        pytest.param("2026-02-30T10:00:00Z", "not a valid date", "day", id="february-30"),
        pytest.param("2026-13-02T10:00:00Z", "not a valid date", "month", id="month-13"),
        pytest.param("2026-03-02T24:00:00Z", "not a valid date", "hours", id="hour-24"),
        pytest.param("2026-12-31T23:59:60Z", "not a valid date", "seconds", id="leap-second"),
        pytest.param("2026-03-02T10:00:00+24:00", "not a valid date", "offset", id="offset-24"),
        pytest.param("2026-03-02T10:00:00+02:60", "not a valid date", "offset", id="offset-60"),
        pytest.param("0001-01-01T00:30:00+01:00", "not a valid date", "offset", id="before-1"),
        pytest.param("2026-03-02T10:00:00.1234567891Z", "more than 9 digits", "at most 9", id="ns"),
    ],
)
def test_created_in_utc_refuses(written: str, message: str, hint: str) -> None:
    with pytest.raises(InputError) as refused:
        created_in_utc(written)
    assert refused.value.message.startswith(f"--created {written!r} ")
    assert message in refused.value.message
    assert hint in refused.value.hint
    assert "2026-11-24T03:20:00Z" in refused.value.hint


@given(
    moment=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1),
    fraction=st.sampled_from(["", ".0", ".5", ".500", ".000001", ".000001000", ".123456789"]),
)
def test_the_same_instant_written_with_any_offset_is_the_same_time(
    moment: datetime, minutes: int, fraction: str
) -> None:
    moment = moment.replace(microsecond=0)
    local = moment.astimezone(timezone(timedelta(minutes=minutes)))
    sign = "-" if minutes < 0 else "+"
    offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    written = f"{local.replace(tzinfo=None).isoformat()}{fraction}{offset}"
    in_utc = f"{moment.replace(tzinfo=None).isoformat()}{fraction.rstrip('0').rstrip('.')}Z"
    assert created_in_utc(written) == in_utc
    assert created_in_utc(in_utc) == in_utc


def test_the_same_instant_written_another_way_gives_a_byte_identical_bundle(
    cli: Cli, case_dir: Path, tmp_path: Path
) -> None:
    # Items get their ERNs at their first export, at the time it is made: copies of the case
    # taken after it give the same bundle.
    assert _export(cli, case_dir, tmp_path / "first").exit_code == 0
    latest = parse_time(max(time for _seq, time, _action in _log(case_dir)))
    instant = (latest + timedelta(seconds=1)).replace(microsecond=0)
    written = {
        "utc": instant.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "plus": instant.astimezone(timezone(timedelta(hours=2))).isoformat(),
        "minus": instant.astimezone(timezone(timedelta(hours=-5))).isoformat(),
        "zeros": instant.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }
    assert written["plus"].endswith("+02:00") and written["minus"].endswith("-05:00")
    bags = {}
    for name, created in written.items():
        copy = tmp_path / f"case-{name}"
        shutil.copytree(case_dir, copy, symlinks=True)
        out = tmp_path / name / "bundle"
        result = _export(cli, copy, out, "--created", created, "--zip")
        assert result.exit_code == 0, result.output
        bags[name] = (bag_files(out), out.with_name("bundle.zip").read_bytes())
    assert bags["plus"] == bags["utc"]
    assert bags["minus"] == bags["utc"]
    assert bags["zeros"] == bags["utc"]
    info = bags["plus"][0]["bag-info.txt"].decode()
    assert f"Bundle-Created: {written['utc']}" in info


def test_created_without_a_zone_is_refused_before_anything_is_recorded(
    cli: Cli, case_dir: Path, tmp_path: Path
) -> None:
    said = _refused_created(cli, case_dir, tmp_path / "b", "2026-03-02T10:00:00")
    assert "--created '2026-03-02T10:00:00' has no time zone" in said
    assert "add Z for UTC or the offset from UTC" in said


def test_created_with_an_offset_keeps_the_checks(cli: Cli, case_dir: Path, tmp_path: Path) -> None:
    said = _refused_created(cli, case_dir, tmp_path / "b", "2099-01-01T01:00:00+02:00")
    assert "--created 2098-12-31T23:00:00Z is later than now" in said
    said = _refused_created(cli, case_dir, tmp_path / "b", "2001-01-01T05:00:00+05:00")
    assert "--created 2001-01-01T00:00:00Z is earlier than" in said


def test_created_a_few_minutes_ahead_with_an_offset_is_kept(
    cli: Cli, case_dir: Path, tmp_path: Path
) -> None:
    # Clocks of two machines differ a little: up to ten minutes ahead of now is allowed,
    # whichever way the time is written.
    assert _export(cli, case_dir, tmp_path / "first").exit_code == 0
    ahead = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
    local = ahead.astimezone(timezone(timedelta(hours=-3, minutes=-30)))
    result = _export(cli, case_dir, tmp_path / "second", "--created", local.isoformat())
    assert result.exit_code == 0, result.output
    info = (tmp_path / "second" / "bag-info.txt").read_text(encoding="utf-8")
    assert f"Bundle-Created: {ahead.strftime('%Y-%m-%dT%H:%M:%SZ')}" in info


def test_export_help_names_both_forms_of_created(cli: Cli, evidence_home: Path) -> None:
    result = cli("export", "--help")
    assert result.exit_code == 0
    # The help is drawn in a box: only the words of the option's column are compared.
    words = " ".join(
        line.split("│")[1] for line in result.stdout.splitlines() if line.count("│") == 2
    ).split()
    text = " ".join(words)
    assert "RFC 3339 with Z or an offset from UTC" in text
    assert "2026-11-24T05:20:00+02:00" in text


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
