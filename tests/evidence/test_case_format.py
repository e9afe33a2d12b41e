"""The ``format`` of case.toml: a case of a later format is refused as made by a newer toolkit,
one no toolkit writes as a damaged case file; never opened, written to or verified as OK.

Every case, name and value here is fictional.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from evidence.errors import EXIT_ENVIRONMENT, EnvironmentProblem
from evidence.workspace import FORMAT_VERSION, open_case, toolkit_version
from tests.conftest import CaseHandle, CliResult

Cli = Callable[..., CliResult]


def _set_format(case: CaseHandle, line: str | None) -> None:
    """Put ``line`` in place of the ``format`` line of case.toml (``None``: remove it)."""
    path = case.root / "case.toml"
    text = path.read_text(encoding="utf-8")
    assert re.search(r"^format = 1$", text, flags=re.MULTILINE)
    path.write_text(
        re.sub(r"^format = 1\n", "" if line is None else line + "\n", text, flags=re.MULTILINE),
        encoding="utf-8",
    )


def test_the_toolkit_writes_and_reads_its_own_format(make_case: Callable[..., CaseHandle]) -> None:
    case = make_case()
    assert f"format = {FORMAT_VERSION}\n" in (case.root / "case.toml").read_text()
    opened = case.open()
    assert opened.config.format == FORMAT_VERSION
    opened.close()


def test_a_case_file_without_a_format_is_of_the_first(
    make_case: Callable[..., CaseHandle],
) -> None:
    case = make_case()
    _set_format(case, None)
    opened = case.open()
    assert opened.config.format == 1
    opened.close()


@pytest.mark.parametrize("newer", [FORMAT_VERSION + 1, 99])
def test_a_newer_format_is_refused_as_made_by_a_newer_toolkit(
    make_case: Callable[..., CaseHandle], newer: int
) -> None:
    case = make_case()
    _set_format(case, f"format = {newer}")
    with pytest.raises(EnvironmentProblem) as caught:
        open_case(case.root)
    error = caught.value
    assert error.exit_code == EXIT_ENVIRONMENT
    assert str(case.root / "case.toml") in error.message
    assert f"format = {newer}" in error.message
    assert f"case format {FORMAT_VERSION}" in error.message
    assert "newer version of the toolkit" in error.message
    assert toolkit_version() in error.message
    assert "upgrade" in error.hint


def test_a_newer_format_with_fields_unknown_here_is_still_a_newer_case(
    make_case: Callable[..., CaseHandle],
) -> None:
    # What a newer toolkit adds to the case file must not read as damage.
    case = make_case()
    _set_format(case, 'format = 2\nretention_policy = "fictional"')
    with pytest.raises(EnvironmentProblem, match="newer version of the toolkit"):
        open_case(case.root)


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        pytest.param("format = 0", "0", id="zero"),
        pytest.param("format = -7", "-7", id="negative"),
        pytest.param("format = 1.5", "1.5", id="fraction"),
        pytest.param("format = 1.0", "1.0", id="float"),
        pytest.param('format = "1"', "'1'", id="text"),
        pytest.param("format = true", "True", id="boolean"),
        pytest.param("format = [1]", "[1]", id="list"),
    ],
)
def test_an_impossible_format_is_a_damaged_case_file(
    make_case: Callable[..., CaseHandle], line: str, shown: str
) -> None:
    case = make_case()
    _set_format(case, line)
    with pytest.raises(EnvironmentProblem) as caught:
        open_case(case.root)
    error = caught.value
    assert error.message.startswith(f"{case.root / 'case.toml'}: format = {shown} ")
    assert "damaged" in error.message
    assert "newer" not in error.message
    assert "restore case.toml from a backup" in error.hint


@pytest.mark.parametrize(
    ("line", "words"),
    [("format = 99", "newer version of the toolkit"), ("format = -7", "damaged")],
    ids=["newer", "impossible"],
)
@pytest.mark.parametrize(
    "command",
    [
        ("verify",),
        ("list",),
        ("log", "show"),
        ("log", "checkpoint", "--sign"),
        ("ingest", "{file}", "--source", "Fictional source", "--method", "handed-over"),
    ],
    ids=["verify", "list", "log-show", "sign", "ingest"],
)
def test_no_command_works_in_a_case_of_a_format_it_does_not_know(
    cli: Cli,
    make_case: Callable[..., CaseHandle],
    tmp_path: Path,
    line: str,
    words: str,
    command: tuple[str, ...],
) -> None:
    case = make_case()
    note = tmp_path / "note.txt"
    note.write_text("fictional note\n")
    _set_format(case, line)
    catalog = (case.root / "catalog.sqlite").read_bytes()
    args = [note if word == "{file}" else word for word in command]
    result = cli(*args, "--case", case.root)
    assert result.exit_code == EXIT_ENVIRONMENT, result.output
    assert "OK" not in result.stdout
    assert "case.toml" in result.stderr and words in result.stderr
    assert (case.root / "catalog.sqlite").read_bytes() == catalog
