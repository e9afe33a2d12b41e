"""``evidence export`` and ``evidence audit`` through the command line, with their exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult, save_key
from tests.exports.casebuilder import CREATED, BuiltCase, build_case, investigator_signer

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


def _export(cli: Cli, case_dir: Path, out: Path, *extra: str) -> CliResult:
    return cli(
        "export", "--case", case_dir, "--incident", "INC-0001", "--profile", "restricted",
        "--out", out, "--created", CREATED, *extra,
    )  # fmt: skip


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
