"""``log show`` ranges, and checkpoint files given to ``log consistency`` and ``verify --since``.

A range that is no part of the log is an input error naming the option and the seqs the log
holds, not an empty answer. A checkpoint file that is not one (truncated, empty, another file)
is refused by name with a hint, with the same exit code from both commands and from
``audit --since``; what is found about a good one names the file too. Every case is fictional.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from chain_of_custody import sign_note
from evidence.errors import EXIT_PROBLEMS, EXIT_USAGE
from tests.conftest import CaseHandle, CliResult, fixed_signer

Cli = Callable[..., CliResult]


@pytest.fixture
def case(make_case: Callable[..., CaseHandle]) -> CaseHandle:
    """A fictional case of 2 events (seq 0 and 1): the key enrolled, the case created."""
    return make_case()


def _seqs(result: CliResult) -> list[int]:
    return [json.loads(line)["seq"] for line in result.stdout.splitlines()]


# --- log show --from / --to -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "seqs"),
    [
        pytest.param((), [0, 1], id="all"),
        pytest.param(("--from", "1"), [1], id="from-last"),
        pytest.param(("--to", "0"), [0], id="to-first"),
        pytest.param(("--from", "1", "--to", "1"), [1], id="one"),
        pytest.param(("--to", "99"), [0, 1], id="to-beyond-the-end"),
    ],
)
def test_log_show_prints_the_range_asked_for(
    cli: Cli, case: CaseHandle, args: tuple[str, ...], seqs: list[int]
) -> None:
    result = cli("log", "show", "--json", *args, "--case", case.root)
    assert result.exit_code == 0, result.output
    assert _seqs(result) == seqs


@pytest.mark.parametrize(
    ("args", "said"),
    [
        pytest.param(("--from", "-1"), "--from -1 is not a seq", id="negative-from"),
        pytest.param(("--to", "-3"), "--to -3 is not a seq", id="negative-to"),
        pytest.param(("--from", "1", "--to", "0"), "--from 1 is after --to 0", id="reversed"),
        pytest.param(("--from", "999"), "--from 999 is beyond the last event", id="beyond"),
        pytest.param(("--from", "2"), "--from 2 is beyond the last event", id="just-beyond"),
    ],
)
def test_log_show_refuses_a_range_outside_the_log(
    cli: Cli, case: CaseHandle, args: tuple[str, ...], said: str
) -> None:
    result = cli("log", "show", *args, "--case", case.root)
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.stdout == ""
    assert said in result.stderr
    assert "seq 0 to 1" in result.stderr or "between 0 and 1" in result.stderr
    assert "hint: give --from and --to between 0 and 1" in result.stderr


# --- checkpoint files --------------------------------------------------------------------------


def _checkpoint_file(cli: Cli, case: CaseHandle, path: Path) -> Path:
    printed = cli("log", "checkpoint", "--case", case.root)
    assert printed.exit_code == 0, printed.output
    path.write_text(printed.stdout)
    return path


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        pytest.param(lambda text: text[:-1], "does not end with a newline", id="truncated"),
        pytest.param(lambda text: "", "", id="empty"),
        pytest.param(lambda text: text.split("\n\n")[0] + "\n", "", id="unsigned"),
        pytest.param(lambda text: "fictional notes of a meeting\n", "", id="another-file"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [("log", "consistency"), ("verify", "--since"), ("audit", "{bundle}", "--since")],
    ids=["log-consistency", "verify-since", "audit-since"],
)
def test_a_file_that_is_no_checkpoint_is_refused_by_name_alike_everywhere(
    cli: Cli,
    case: CaseHandle,
    tmp_path: Path,
    damage: Callable[[str], str],
    said: str,
    command: tuple[str, ...],
) -> None:
    good = _checkpoint_file(cli, case, tmp_path / "good-checkpoint.txt")
    bad = tmp_path / "damaged-checkpoint.txt"
    bad.write_text(damage(good.read_text()))
    if command[0] == "audit":
        # The earlier checkpoint is read before the bundle: no bundle is needed to refuse it.
        result = cli("audit", tmp_path / "bundle", "--since", bad)
    else:
        result = cli(*command, bad, "--case", case.root)
    text = " ".join(result.stderr.split())
    assert result.exit_code == EXIT_USAGE, result.output
    assert f"{bad} is not a signed checkpoint" in text
    assert said in text
    assert "hint: give " in text and "`evidence log checkpoint`" in text
    assert "extra checkpoint" not in result.output


def test_findings_about_a_checkpoint_file_name_the_file(
    cli: Cli, case: CaseHandle, tmp_path: Path
) -> None:
    # Well formed, signed by a key the case never enrolled: a finding, exit 1, named by file.
    good = _checkpoint_file(cli, case, tmp_path / "good-checkpoint.txt")
    text = good.read_text().split("\n\n")[0] + "\n"
    stranger = tmp_path / "stranger-checkpoint.txt"
    stranger.write_bytes(sign_note(text, [fixed_signer("stranger-x")]))
    verified = cli("verify", "--json", "--since", stranger, "--case", case.root)
    assert verified.exit_code == EXIT_PROBLEMS, verified.output
    findings = json.loads(verified.stdout)["findings"]
    assert findings and all(str(stranger) in (f["subject"] or "") for f in findings)
    shown = cli("verify", "--since", stranger, "--case", case.root)
    assert str(stranger) in shown.stdout and "extra checkpoint" not in shown.stdout
    consistency = cli("log", "consistency", stranger, "--case", case.root)
    assert consistency.exit_code == EXIT_PROBLEMS, consistency.output
    assert str(stranger) in " ".join(consistency.stderr.split())


def test_a_good_checkpoint_file_is_consistent(cli: Cli, case: CaseHandle, tmp_path: Path) -> None:
    good = _checkpoint_file(cli, case, tmp_path / "good-checkpoint.txt")
    consistency = cli("log", "consistency", good, "--case", case.root)
    assert consistency.exit_code == 0, consistency.output
    assert "consistent" in consistency.stdout
    verified = cli("verify", "--since", good, "--case", case.root)
    assert verified.exit_code == 0, verified.output
