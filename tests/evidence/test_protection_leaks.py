"""No protected identity value leaves its sealed annex (SPEC section 6).

A fictional testimony with an obviously invented identity goes through every record command.
Then every byte of the case directory (SQLite file and its -wal, the content store), the
output of ``evidence log show --json``, every ``--json`` output and every error message are
searched for each protected plaintext; none may be found. Only ``testimony show --reveal``,
asked for by a recipient-key holder, prints the identity.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CaseHandle, CliResult
from tests.evidence.test_testimony import IDENTITY, make_testimony, write_testimony

Cli = Callable[..., CliResult]

# Each value, and the distinctive parts of it, must appear nowhere.
SECRETS = [
    *IDENTITY.values(),
    "Protected-Identity-Marker",
    "Example Street 17",
    "000 0017",
]


def _assert_clean(where: str, data: bytes | str) -> None:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    for secret in SECRETS:
        assert secret.encode("utf-8") not in raw, f"{secret!r} leaked into {where}"
        # JSON output may escape non-ASCII; the values are ASCII, but check the escaped form too.
        assert json.dumps(secret)[1:-1].encode() not in raw, f"{secret!r} leaked into {where}"


@pytest.fixture
def leaky_inputs(tmp_path: Path) -> dict[str, Path]:
    """Testimony files that are refused, each with the identity somewhere in the input."""
    marker = IDENTITY["name"]
    bad = tmp_path / "bad"
    bad.mkdir()
    files = {
        # The identity is valid but another field is not: the message names that field.
        "bad-date": write_testimony(bad, make_testimony("W-030", interview_date="01.03.2023")),
        # An identity value that is itself invalid (a date of birth that is not a date).
        "bad-birth-date": write_testimony(
            bad, make_testimony("W-031", identity={**IDENTITY, "date_of_birth": marker})
        ),
        # The name typed as a key under identity.
        "name-as-key": write_testimony(bad, make_testimony("W-032", identity={marker: "x"})),
        # The name typed as a key at the top level.
        "name-as-top-key": write_testimony(bad, {**make_testimony("W-033"), marker: "x"}),
    }
    broken = bad / "broken.yaml"
    broken.write_text(
        'witness_code: W-034\nidentity:\n  name: "' + marker + "\n  contact: [\n",
        encoding="utf-8",
    )
    files["yaml-syntax"] = broken
    empty_name = bad / "empty.json"
    empty_name.write_text(
        json.dumps(make_testimony("W-035", identity={"name": marker * 200})), encoding="utf-8"
    )
    files["too-long"] = empty_name
    return files


def test_no_protected_value_leaks_anywhere(
    make_case: Callable[..., CaseHandle],
    cli: Cli,
    tmp_path: Path,
    leaky_inputs: dict[str, Path],
) -> None:
    case = make_case()
    c = ("--case", case.root)
    outputs: list[tuple[str, CliResult]] = []

    def run(*args: object, expect: int = 0) -> CliResult:
        result = cli(*args, *c)
        assert result.exit_code == expect, result.output
        outputs.append((" ".join(str(a) for a in args), result))
        return result

    testimony_file = write_testimony(tmp_path, make_testimony())
    run("testimony", "add", testimony_file, expect=2)  # no recipient yet
    run("keys", "recipient", "add", "prosecutor-a", "--json")
    recording = tmp_path / "interview.ogg"
    recording.write_bytes(b"fictional recording bytes " * 20)
    with_recording = write_testimony(tmp_path, make_testimony("W-018", recordings=[recording.name]))
    run("testimony", "add", testimony_file, "--json")
    run("testimony", "add", with_recording, "--json")
    run("testimony", "add", testimony_file, expect=2)  # duplicate witness code
    for name, path in leaky_inputs.items():
        result = run("testimony", "add", path, expect=2)
        assert result.stderr, name
        run("--debug", "testimony", "add", path, expect=2)
    run("incident", "add", "--from", Path(__file__).parent / "data" / "incident.yaml", "--json")
    run("link", "W-017", "--incident", "INC-0001", "--reason", "the witness describes it", "--json")
    run("link", "W-017", "--incident", "INC-0099", "--reason", "r", expect=2)
    run("testimony", "withdraw-consent", "W-018", "--reason", "asked to stop")
    document = json.loads(run("testimony", "show", "W-017", "--json").stdout)
    run("testimony", "show", "W-017")
    run("testimony", "list", "--json")
    run("list", "--json")
    run("show", document["document"], "--json")
    run("show", document["protected_annex"]["sha256"], "--json")
    run("incident", "show", "INC-0001", "--history", "--json")
    run("timeline", "--incident", "INC-0001", "--json")
    run("keys", "recipient", "list", "--json")

    # The holder of the recipient key may see the identity; that output is the one exception.
    revealed = cli("testimony", "show", "W-017", "--reveal", "--json", *c)
    assert revealed.exit_code == 0, revealed.output
    assert json.loads(revealed.stdout)["identity"] == IDENTITY
    with pytest.raises(AssertionError, match="leaked"):
        _assert_clean("the revealed identity", revealed.stdout)  # the search does find it

    run("log", "show", "--json")
    run("log", "show")
    run("verify", "--json")

    for label, result in outputs:
        _assert_clean(f"`evidence {label}` stdout", result.stdout)
        _assert_clean(f"`evidence {label}` stderr", result.stderr)
    # With a connection open, the SQLite file has its -wal beside it: search both.
    opened = case.open()
    try:
        opened.db.execute("SELECT COUNT(*) FROM testimonies").fetchone()
        files = [p for p in case.root.rglob("*") if p.is_file()]
        assert case.root / "catalog.sqlite" in files
        assert case.root / "catalog.sqlite-wal" in files
        for path in files:
            _assert_clean(str(path.relative_to(case.root)), path.read_bytes())
    finally:
        opened.close()
