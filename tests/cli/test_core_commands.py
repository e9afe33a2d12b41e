"""Each command of the ``evidence`` program through typer's CliRunner, and each exit code.

Exit codes (SPEC section 8): 0 success; 1 verification problems or some inputs refused; 2 usage
or input error; 3 environment error (missing case, locked key, permission). The cases are
fictional, made with a fixed key; see tests/conftest.py.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
import typer

from chain_of_custody import (
    VerifierKey,
    open_checkpoint,
    parse_leaf,
    parse_proof,
    verify_proof,
)
from evidence.cli import app
from tests.conftest import CASE_ID, PASSPHRASE, CaseHandle, CliResult, fixed_signer, sha256_of

Cli = Callable[..., CliResult]
Ingested = tuple[CaseHandle, Path, list[dict[str, Any]]]


def _json(result: CliResult) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def ingested(
    make_case: Callable[..., CaseHandle], make_corpus: Callable[..., Path], cli: Cli
) -> Ingested:
    """A case with 12 ingested files; returns (case, corpus folder, items as listed)."""
    case = make_case()
    corpus = make_corpus(12, seed=3)
    result = cli("ingest", "--case", case.root, "-r", corpus, "--json")
    assert result.exit_code == 0, result.output
    items: list[dict[str, Any]] = json.loads(cli("list", "--case", case.root, "--json").stdout)
    return case, corpus, items


# --- help and usage ------------------------------------------------------------------------


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # typer ships its own copy of click, so groups are recognised by their sub-commands.
    found = []
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        found.append(path)
        if hasattr(command, "commands"):
            found.extend(_commands(command, path))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_the_core_commands_exist() -> None:
    names = {" ".join(path) for path in COMMANDS}
    for expected in (
        "init",
        "keys generate",
        "keys list",
        "keys export",
        "keys enrol",
        "keys revoke",
        "ingest",
        "list",
        "show",
        "log show",
        "log checkpoint",
        "log proof",
        "log consistency",
        "transfer",
        "open",
        "verify",
    ):
        assert expected in names


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_has_help(cli: Cli, path: tuple[str, ...]) -> None:
    result = cli(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("no-such-command",), id="unknown-command"),
        pytest.param(("list", "--no-such-option"), id="unknown-option"),
        pytest.param(("show",), id="missing-argument"),
        pytest.param(("init", "somewhere"), id="missing-required-option"),
        pytest.param(("log", "show", "--from", "x"), id="not-an-integer"),
    ],
)
def test_usage_errors_exit_2(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


# --- init and keys -------------------------------------------------------------------------


def test_init_creates_a_case_and_a_private_key(
    cli: Cli, tmp_path: Path, evidence_home: Path
) -> None:
    result = cli("init", tmp_path / "new", "--case-id", CASE_ID, "--title", "Fictional")
    assert result.exit_code == 0, result.output
    assert "enrolled as seq 0" in result.stdout
    key = evidence_home / "keys" / "investigator.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "new" / "case.toml").is_file()
    keys = _json(cli("keys", "list", "--case", tmp_path / "new", "--json"))
    assert isinstance(keys, list)
    assert [k["enrolled_seq"] for k in keys] == [0]
    checkpoint = cli("log", "checkpoint", "--case", tmp_path / "new")
    assert checkpoint.exit_code == 0
    assert f"evidence-locker/{CASE_ID}\n2\n" in checkpoint.stdout


def test_init_with_an_existing_key(cli: Cli, tmp_path: Path, evidence_home: Path) -> None:
    from tests.conftest import save_key

    key = save_key(evidence_home, fixed_signer("investigator-b"))
    result = cli("init", tmp_path / "c", "--case-id", "C-2", "--title", "T", "--key", key)
    assert result.exit_code == 0, result.output
    assert fixed_signer("investigator-b").verifier.key_id in result.stdout


@pytest.mark.parametrize(
    ("args", "names"),
    [
        pytest.param(("--case-id", "bad id!", "--title", "T"), "--case-id", id="bad-case-id"),
        pytest.param(("--case-id", "C-1", "--title", ""), "--title", id="empty-title"),
        pytest.param(
            ("--case-id", "C-1", "--title", "T", "--ern-prefix", "x"),
            "--ern-prefix",
            id="bad-ern-prefix",
        ),
    ],
)
def test_init_refuses_bad_options(
    cli: Cli, tmp_path: Path, evidence_home: Path, args: tuple[str, ...], names: str
) -> None:
    result = cli("init", tmp_path / "c", *args)
    assert result.exit_code == 2, result.output
    # Each refused field is named by the option that gives it, in the toolkit's words.
    assert f"error: {names}: " in result.stderr
    assert "Value error" not in result.stderr
    # The key generated for the refused case is removed again, so a retry can reuse its name.
    assert not (evidence_home / "keys" / "investigator.key").exists()


@pytest.mark.parametrize("case_id", ["X", "x-", "x."])
def test_a_case_id_whose_derived_ern_prefix_is_not_valid_asks_for_ern_prefix(
    cli: Cli, tmp_path: Path, evidence_home: Path, case_id: str
) -> None:
    # A valid case id; the ERN prefix made from it (too short) is a field the user never gave.
    result = cli("init", tmp_path / "c", "--case-id", case_id, "--title", "Fictional")
    assert result.exit_code == 2, result.output
    text = " ".join(result.stderr.split())
    assert f"the ERN prefix 'X' derived from --case-id {case_id!r} is not valid" in text
    assert "hint: give the ERN prefix with --ern-prefix" in text
    assert "Value error" not in text and "ern_prefix" not in text
    assert "correct the option" not in text
    assert not (tmp_path / "c").exists()
    assert not (evidence_home / "keys" / "investigator.key").exists()
    given = cli(
        "init",
        tmp_path / "c",
        "--case-id",
        case_id,
        "--title",
        "Fictional",
        "--ern-prefix",
        "XCASE",
    )
    assert given.exit_code == 0, given.output


def test_an_invalid_case_id_is_named_alone(cli: Cli, tmp_path: Path, evidence_home: Path) -> None:
    # Its derived ERN prefix and origin are not named: the user gave neither.
    result = cli("init", tmp_path / "c", "--case-id", "x!", "--title", "Fictional")
    assert result.exit_code == 2, result.output
    assert "error: --case-id: use 1-64 letters" in result.stderr
    assert "ERN prefix" not in result.stderr and "origin" not in result.stderr


def test_init_never_overwrites_a_case(cli: Cli, make_case: Callable[..., CaseHandle]) -> None:
    case = make_case()
    before = (case.root / "catalog.sqlite").read_bytes()
    result = cli("init", case.root, "--case-id", "OTHER", "--title", "T", "--key-name", "other")
    assert result.exit_code == 2
    assert "not an empty directory" in result.stderr
    assert (case.root / "catalog.sqlite").read_bytes() == before


def test_init_refuses_a_short_new_passphrase(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVIDENCE_PASSPHRASE", "short")
    result = cli("init", tmp_path / "c", "--case-id", "C-1", "--title", "T")
    assert result.exit_code == 2
    assert "too short" in result.stderr
    assert not (tmp_path / "c").exists()


def test_keys_generate_enrol_export_revoke(
    cli: Cli, make_case: Callable[..., CaseHandle], tmp_path: Path
) -> None:
    case = make_case()
    out = tmp_path / "b.key"
    generated = cli("keys", "generate", "--name", "investigator-b", "--out", out)
    assert generated.exit_code == 0, generated.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    note_text = generated.stdout.strip()
    verifier = VerifierKey.from_note_text(note_text)
    pub = out.with_suffix(".pub")
    assert pub.read_text().strip() == note_text

    again = cli("keys", "generate", "--name", "investigator-b", "--out", out)
    assert again.exit_code == 2

    # The only key cannot be revoked: nothing could be recorded in the case after it.
    last = cli(
        "keys", "revoke", case.signer.verifier.key_id, "--reason", "test", "--case", case.root,
        "--key", case.key_path,
    )  # fmt: skip
    assert last.exit_code == 2 and "last key of the case" in last.stderr

    enrolled = cli("keys", "enrol", pub, "--case", case.root, "--key", case.key_path)
    assert enrolled.exit_code == 0, enrolled.output
    twice = cli("keys", "enrol", pub, "--case", case.root, "--key", case.key_path)
    assert twice.exit_code == 2
    assert "already enrolled" in twice.stderr and "revoked" not in twice.stderr

    keys = _json(cli("keys", "list", "--case", case.root, "--json"))
    assert isinstance(keys, list)
    assert [k["key_id"] for k in keys] == [case.signer.verifier.key_id, verifier.key_id]
    assert keys[1]["enrolled_by"] == case.signer.verifier.key_id

    exported = cli("keys", "export", verifier.key_id, "--case", case.root)
    assert exported.stdout.strip() == note_text
    pem = cli("keys", "export", verifier.key_id, "--case", case.root, "--format", "pem")
    assert VerifierKey.from_pem("investigator-b", pem.stdout.encode()) == verifier
    assert cli("keys", "export", "nobody+00000000", "--case", case.root).exit_code == 2
    bad_format = cli("keys", "export", verifier.key_id, "--case", case.root, "--format", "xml")
    assert bad_format.exit_code == 2

    revoked = cli(
        "keys", "revoke", verifier.key_id, "--reason", "laptop lost", "--case", case.root,
        "--key", case.key_path,
    )  # fmt: skip
    assert revoked.exit_code == 0, revoked.output
    keys = _json(cli("keys", "list", "--case", case.root, "--json"))
    assert isinstance(keys, list)
    assert keys[1]["revoked_seq"] is not None
    again_revoked = cli(
        "keys", "revoke", verifier.key_id, "--reason", "again", "--case", case.root,
        "--key", case.key_path,
    )  # fmt: skip
    assert again_revoked.exit_code == 2
    # The revoked key can no longer sign for the case.
    refused = cli("log", "checkpoint", "--sign", "--case", case.root, "--key", out)
    assert refused.exit_code == 3
    assert "revoked" in refused.stderr
    assert _json(cli("verify", "--case", case.root, "--json"))["ok"] is True  # type: ignore[index]


def test_keys_enrol_refuses_a_malformed_public_key(
    cli: Cli, make_case: Callable[..., CaseHandle], tmp_path: Path
) -> None:
    case = make_case()
    bad = tmp_path / "bad.pub"
    bad.write_text("investigator-b+00000000+AAAA\n")
    result = cli("keys", "enrol", bad, "--case", case.root)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    missing = cli("keys", "enrol", tmp_path / "missing.pub", "--case", case.root)
    assert missing.exit_code == 2
    assert "missing.pub" in missing.stderr and "[Errno" not in missing.stderr
    # The private key file given by mistake is named, and nothing of it is shown.
    private = cli("keys", "enrol", case.key_path, "--case", case.root)
    assert private.exit_code == 2
    assert "is a private key file, not a public key" in private.stderr
    assert "PRIVATE" not in private.output and "Public-Key" not in private.output


# --- ingest, list, show --------------------------------------------------------------------


def test_ingest_reports_counts_and_list_shows_every_item(ingested: Ingested, cli: Cli) -> None:
    case, corpus, items = ingested
    assert len(items) == 12
    assert {i["sha256"] for i in items} == {sha256_of(p) for p in corpus.iterdir()}
    assert [i["ingested_seq"] for i in items] == list(range(2, 14))
    text = cli("list", "--case", case.root)
    assert text.exit_code == 0
    assert "12 item(s)" in text.stderr
    assert items[0]["sha256"][:16] in text.stdout


def test_ingest_records_the_options_given(
    cli: Cli, make_case: Callable[..., CaseHandle], make_corpus: Callable[..., Path]
) -> None:
    case = make_case()
    corpus = make_corpus(2, seed=9)
    result = cli(
        "ingest", "--case", case.root, "-r", corpus, "--source", "Organisation X",
        "--collected-by", "Investigator A", "--collected-at", "2025-02-01", "--method", "seized",
        "--language", "uk", "--tag", "bus", "--tag", "convoy", "--confidentiality", "public",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    items = _json(cli("list", "--case", case.root, "--json"))
    assert isinstance(items, list)
    assert {i["source"] for i in items} == {"Organisation X"}
    assert {i["method"] for i in items} == {"seized"}
    assert items[0]["tags"] == ["bus", "convoy"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        pytest.param("--method", "stolen", id="unknown-method"),
        pytest.param("--collected-at", "yesterday", id="bad-date"),
        pytest.param("--confidentiality", "top-secret", id="unknown-level"),
    ],
)
def test_ingest_refuses_bad_options_before_touching_the_case(
    cli: Cli,
    make_case: Callable[..., CaseHandle],
    make_corpus: Callable[..., Path],
    option: str,
    value: str,
) -> None:
    case = make_case()
    corpus = make_corpus(2)
    size = case.log_size()
    result = cli("ingest", "--case", case.root, "-r", corpus, option, value)
    assert result.exit_code == 2, result.output
    assert f"{option}: " in result.stderr
    assert case.log_size() == size


def test_ingest_again_records_nothing(ingested: Ingested, cli: Cli) -> None:
    case, corpus, _ = ingested
    size = case.log_size()
    result = cli("ingest", "--case", case.root, "-r", corpus, "--json")
    report = _json(result)
    assert isinstance(report, dict)
    assert (report["ingested"], report["skipped"], report["refused"]) == (0, 12, [])
    assert case.log_size() == size


def test_show_item_by_prefix(ingested: Ingested, cli: Cli) -> None:
    case, _, items = ingested
    sha = items[3]["sha256"]
    details = _json(cli("show", sha[:10], "--case", case.root, "--json"))
    assert isinstance(details, dict)
    assert details["sha256"] == sha
    assert [c["action"] for c in details["custody"]] == ["item.ingested"]
    proof = parse_proof(details["proof"].encode())
    assert parse_leaf(proof.leaf).event.subject == sha
    text = cli("show", "sha256:" + sha[:12].upper(), "--case", case.root)
    assert text.exit_code == 0
    assert "custody history" in text.stdout
    assert "item.ingested" in text.stdout


def test_show_records_nothing(ingested: Ingested, cli: Cli) -> None:
    case, _, items = ingested
    size = case.log_size()
    cli("show", items[0]["sha256"], "--case", case.root)
    assert case.log_size() == size


@pytest.mark.parametrize(
    ("ref", "text"),
    [
        pytest.param("not-hex", "not an item reference", id="not-hex"),
        pytest.param("abc", "not an item reference", id="too-short"),
        pytest.param("0000000000", "unknown item", id="unknown"),
    ],
)
def test_show_refuses_bad_references(ingested: Ingested, cli: Cli, ref: str, text: str) -> None:
    case, _, _ = ingested
    result = cli("show", ref, "--case", case.root)
    assert result.exit_code == 2
    assert text in result.stderr
    assert "hint:" in result.stderr


# --- log -----------------------------------------------------------------------------------


def test_log_show_text_and_json(ingested: Ingested, cli: Cli) -> None:
    case, _, items = ingested
    lines = cli("log", "show", "--case", case.root, "--json").stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == list(range(len(records)))
    assert records[0]["event"]["action"] == "key.enrolled"
    for record in records:
        leaf = parse_leaf(base64.b64decode(record["leaf"]))
        assert leaf.event.seq == record["seq"]
        assert leaf.leaf_hash.hex() == record["leaf_hash"]
    part = cli("log", "show", "--case", case.root, "--from", "2", "--to", "4", "--json")
    assert [json.loads(line)["seq"] for line in part.stdout.splitlines()] == [2, 3, 4]
    text = cli("log", "show", "--case", case.root)
    assert text.exit_code == 0
    assert "item.ingested" in text.stdout
    assert items[0]["sha256"] in text.stdout


def test_log_checkpoint_prints_and_signs(ingested: Ingested, cli: Cli) -> None:
    case, _, _ = ingested
    latest = cli("log", "checkpoint", "--case", case.root)
    assert latest.exit_code == 0
    checkpoint = open_checkpoint(latest.stdout.encode(), [case.signer.verifier])
    assert checkpoint.size == case.log_size()
    signed = cli("log", "checkpoint", "--sign", "--case", case.root)
    assert signed.exit_code == 0, signed.output
    # Same size: the stored checkpoint is returned, never a second one for that size.
    assert signed.stdout == latest.stdout


def test_log_proof_verifies_with_the_case_key(ingested: Ingested, cli: Cli) -> None:
    case, _, items = ingested
    sha = items[5]["sha256"]
    result = cli("log", "proof", sha[:8], "--case", case.root)
    assert result.exit_code == 0
    proof = parse_proof(result.stdout.encode())
    checkpoint = verify_proof(proof, [case.signer.verifier])
    assert checkpoint.size == case.log_size()
    assert parse_leaf(proof.leaf).event.subject == sha


def test_log_consistency_with_an_earlier_checkpoint(
    ingested: Ingested, cli: Cli, make_corpus: Callable[..., Path], tmp_path: Path
) -> None:
    case, _, _ = ingested
    old = tmp_path / "old.checkpoint"
    old.write_text(cli("log", "checkpoint", "--case", case.root).stdout)
    more = make_corpus(3, seed=77)
    assert cli("ingest", "--case", case.root, "-r", more).exit_code == 0
    result = cli("log", "consistency", old, "--case", case.root)
    assert result.exit_code == 0, result.output
    assert "consistent" in result.stdout
    verified = cli("verify", "--case", case.root, "--since", old)
    assert verified.exit_code == 0, verified.output


@pytest.mark.parametrize(
    ("content", "code"),
    [
        pytest.param(None, 2, id="missing-file"),
        pytest.param(b"", 2, id="empty-file"),
        pytest.param(b"not a checkpoint\n", 2, id="garbage"),
        pytest.param(b"\xff\xfe\x00", 2, id="binary"),
    ],
)
def test_log_consistency_refuses_bad_checkpoint_files(
    ingested: Ingested, cli: Cli, tmp_path: Path, content: bytes | None, code: int
) -> None:
    case, _, _ = ingested
    path = tmp_path / "old.checkpoint"
    if content is not None:
        path.write_bytes(content)
    result = cli("log", "consistency", path, "--case", case.root)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert "unexpected error" not in result.output


# --- custody -------------------------------------------------------------------------------


def test_transfer_to_an_enrolled_key(ingested: Ingested, cli: Cli, tmp_path: Path) -> None:
    case, _, items = ingested
    cli("keys", "generate", "--name", "investigator-b", "--out", tmp_path / "b.key")
    cli("keys", "enrol", tmp_path / "b.pub", "--case", case.root, "--key", case.key_path)
    b_id = VerifierKey.from_note_text((tmp_path / "b.pub").read_text().strip()).key_id
    sha = items[0]["sha256"]
    result = cli(
        "transfer", sha[:8], items[1]["sha256"][:8], "--to", b_id, "--reason", "court hand-over",
        "--case", case.root, "--key", case.key_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Recorded 2 transfer(s)" in result.stdout
    details = _json(cli("show", sha, "--case", case.root, "--json"))
    assert isinstance(details, dict)
    assert details["holder"] == b_id
    assert details["custody"][-1]["action"] == "custody.transferred"
    assert _json(cli("verify", "--case", case.root, "--json"))["ok"] is True  # type: ignore[index]


@pytest.mark.parametrize(
    ("to", "reason", "text"),
    [
        pytest.param("nobody+00000000", "hand-over", "unknown key", id="unknown-key"),
        pytest.param(None, "  ", "--reason is empty", id="empty-reason"),
    ],
)
def test_transfer_refuses(
    ingested: Ingested, cli: Cli, to: str | None, reason: str, text: str
) -> None:
    case, _, items = ingested
    size = case.log_size()
    result = cli(
        "transfer", items[0]["sha256"], "--to", to or case.signer.verifier.key_id,
        "--reason", reason, "--case", case.root,
    )  # fmt: skip
    assert result.exit_code == 2
    assert text in result.stderr
    assert case.log_size() == size


def test_open_copies_the_original_and_records_the_access(
    ingested: Ingested, cli: Cli, tmp_path: Path
) -> None:
    case, corpus, items = ingested
    out = tmp_path / "work"
    out.mkdir()
    item = items[2]
    result = cli("open", item["sha256"][:8], "--to", out, "--purpose", "translation",
                 "--case", case.root)  # fmt: skip
    assert result.exit_code == 0, result.output
    copy = out / item["name"]
    assert copy.read_bytes() == (corpus / item["name"]).read_bytes()
    assert os.access(copy, os.W_OK)
    details = _json(cli("show", item["sha256"], "--case", case.root, "--json"))
    assert isinstance(details, dict)
    assert details["custody"][-1]["action"] == "item.accessed"
    again = cli("open", item["sha256"], "--to", out, "--purpose", "again", "--case", case.root)
    assert again.exit_code == 2
    assert "exists" in again.stderr
    assert copy.read_bytes() == (corpus / item["name"]).read_bytes()


def test_verify_clean_case(ingested: Ingested, cli: Cli) -> None:
    case, _, _ = ingested
    text = cli("verify", "--case", case.root)
    assert text.exit_code == 0
    assert text.stdout.startswith("OK: case " + CASE_ID)
    report = _json(cli("verify", "--case", case.root, "--json"))
    assert report == {
        "case": CASE_ID,
        "ok": True,
        "events": case.log_size(),
        "objects": 12,
        "findings": [],
    }


def test_verify_reports_a_problem_with_exit_1(ingested: Ingested, cli: Cli) -> None:
    case, _, items = ingested
    sha = items[0]["sha256"]
    obj = case.root / "objects" / "sha256" / sha[:2] / sha[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"changed")
    result = cli("verify", "--case", case.root)
    assert result.exit_code == 1
    assert "PROBLEMS" in result.stdout
    assert sha in result.stdout


def test_originals_in_the_store_are_byte_identical_and_read_only(ingested: Ingested) -> None:
    case, corpus, items = ingested
    for item in items:
        sha = item["sha256"]
        stored = case.root / "objects" / "sha256" / sha[:2] / sha[2:]
        assert stored.read_bytes() == (corpus / item["name"]).read_bytes()
        assert stat.S_IMODE(stored.stat().st_mode) & 0o222 == 0, stored
    assert not any((case.root / "objects" / "tmp").glob("*"))


# --- environment errors (exit 3) -----------------------------------------------------------


def test_missing_case_exits_3(cli: Cli, tmp_path: Path) -> None:
    result = cli("list", "--case", tmp_path / "nowhere")
    assert result.exit_code == 3
    assert "no case found" in result.stderr
    assert "evidence init" in result.stderr


def test_case_from_environment_variable(
    ingested: Ingested, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    case, _, _ = ingested
    monkeypatch.setenv("EVIDENCE_CASE", str(case.root))
    assert cli("verify").exit_code == 0
    monkeypatch.delenv("EVIDENCE_CASE")
    monkeypatch.chdir(case.root)
    assert cli("verify").exit_code == 0
    monkeypatch.chdir(tmp_path)
    assert cli("verify").exit_code == 3


def test_wrong_passphrase_exits_3_and_writes_nothing(
    ingested: Ingested, cli: Cli, monkeypatch: pytest.MonkeyPatch, make_corpus: Callable[..., Path]
) -> None:
    case, _, _ = ingested
    size = case.log_size()
    catalog = (case.root / "catalog.sqlite").read_bytes()
    monkeypatch.setenv("EVIDENCE_PASSPHRASE", "not the passphrase")
    result = cli("ingest", "--case", case.root, "-r", make_corpus(3, seed=5))
    assert result.exit_code == 3
    assert "passphrase does not unlock" in result.stderr
    assert "not the passphrase" not in result.output
    assert case.log_size() == size
    assert (case.root / "catalog.sqlite").read_bytes() == catalog
    assert not list((case.root / "objects" / "sha256").glob("*/*"))[12:]


def test_key_file_with_a_damaged_scrypt_cost_exits_3_and_writes_nothing(
    ingested: Ingested, cli: Cli, make_corpus: Callable[..., Path]
) -> None:
    case, _, _ = ingested
    size = case.log_size()
    catalog = (case.root / "catalog.sqlite").read_bytes()
    text = case.key_path.read_bytes()
    start = text.index(b"-----BEGIN")
    der = base64.b64decode(b"".join(text[start:].splitlines()[1:-1]))
    # scrypt's N = 2^14 as DER writes it, made 2^14 + 1: not a power of two, so OpenSSL
    # refuses it without naming a reason.
    assert der.count(bytes.fromhex("02024000")) == 1
    damaged = der.replace(bytes.fromhex("02024000"), bytes.fromhex("02024001"))
    case.key_path.write_bytes(
        text[:start]
        + b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        + base64.encodebytes(damaged)
        + b"-----END ENCRYPTED PRIVATE KEY-----\n"
    )
    result = cli("ingest", "--case", case.root, "-r", make_corpus(3, seed=5))
    assert result.exit_code == 3, result.output
    assert str(case.key_path) in result.stderr
    assert "cannot be read as an encrypted PKCS#8 key" in result.stderr
    assert "Traceback" not in result.output
    assert PASSPHRASE not in result.output
    assert case.log_size() == size
    assert (case.root / "catalog.sqlite").read_bytes() == catalog


def test_no_passphrase_off_a_terminal_exits_3(
    ingested: Ingested, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    case, _, _ = ingested
    monkeypatch.delenv("EVIDENCE_PASSPHRASE")
    result = cli("log", "checkpoint", "--sign", "--case", case.root)
    assert result.exit_code == 3
    assert "--passphrase-file" in result.stderr


def test_passphrase_file(
    ingested: Ingested, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    case, _, _ = ingested
    monkeypatch.delenv("EVIDENCE_PASSPHRASE")
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE + "\n")
    ok = cli("log", "checkpoint", "--sign", "--case", case.root, "--passphrase-file", secret)
    assert ok.exit_code == 0, ok.output
    missing = cli("log", "checkpoint", "--sign", "--case", case.root,
                  "--passphrase-file", tmp_path / "none.txt")  # fmt: skip
    assert missing.exit_code == 3


def test_key_file_readable_by_others_exits_3(ingested: Ingested, cli: Cli) -> None:
    case, _, _ = ingested
    case.key_path.chmod(0o644)
    result = cli("log", "checkpoint", "--sign", "--case", case.root)
    assert result.exit_code == 3
    assert "readable or writable by group or others" in result.stderr
    assert "chmod 600" in result.stderr


def test_no_enrolled_key_on_this_machine_exits_3(ingested: Ingested, cli: Cli) -> None:
    case, _, _ = ingested
    case.key_path.rename(case.key_path.with_suffix(".moved"))
    result = cli("log", "checkpoint", "--sign", "--case", case.root)
    assert result.exit_code == 3
    assert "--key" in result.stderr


def test_key_not_enrolled_in_the_case_exits_3(
    ingested: Ingested, cli: Cli, evidence_home: Path
) -> None:
    from tests.conftest import save_key

    case, _, _ = ingested
    stranger = save_key(evidence_home, fixed_signer("stranger"))
    result = cli("log", "checkpoint", "--sign", "--case", case.root, "--key", stranger)
    assert result.exit_code == 3
    assert "not enrolled" in result.stderr


def test_damaged_case_file_exits_3(ingested: Ingested, cli: Cli) -> None:
    case, _, _ = ingested
    (case.root / "case.toml").write_text("case_id = [\n")
    result = cli("list", "--case", case.root)
    assert result.exit_code == 3
    assert "case.toml" in result.stderr


def _read_only_catalog(path: Path | str) -> sqlite_utils.Database:
    # What SQLite does with a catalog.sqlite the user may not write (chmod a-w); the tests may
    # run as root, to whom file modes do not apply.
    return sqlite_utils.Database(sqlite3.connect(f"file:{path}?mode=ro", uri=True))


@pytest.mark.parametrize(
    "command",
    [
        ("ingest",),
        ("incident", "add", "--title", "T", "--start", "2022", "--place", "P"),
        ("keys", "recipient", "add", "prosecutor-z"),
    ],
    ids=["ingest", "incident-add", "recipient-add"],
)
def test_a_read_only_catalog_is_an_environment_error_naming_it(
    cli: Cli,
    make_case: Callable[..., CaseHandle],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
) -> None:
    """Every command that records says which catalog cannot be written, and why (exit 3)."""
    case = make_case()
    note = tmp_path / "note.txt"
    note.write_text("fictional note\n", encoding="utf-8")
    args = (*command, note) if command == ("ingest",) else command
    monkeypatch.setattr("evidence.workspace.open_database", _read_only_catalog)
    result = cli(*args, "--case", case.root, "--key", case.key_path)
    assert result.exit_code == 3, result.output
    assert f"the case catalog {case.root / 'catalog.sqlite'} is read-only" in result.stderr
    assert "unexpected" not in result.stderr
