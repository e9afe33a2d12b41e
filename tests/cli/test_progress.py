"""Long work shows a progress bar on a terminal and none when stderr is not one (SPEC 8)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from evidence import _cli_common


@pytest.mark.parametrize("terminal", [True, False])
def test_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch, terminal: bool) -> None:
    sink = io.StringIO()
    monkeypatch.setattr(_cli_common, "err", Console(file=sink, force_terminal=terminal, width=100))
    bar = _cli_common.Bar("ingest")
    bar.start(3, 3000)
    for _ in range(3):
        bar.advance(1, 1000)
    bar.close()
    if terminal:
        assert "ingest" in sink.getvalue()
    else:
        assert sink.getvalue() == ""


def test_ingest_through_a_pipe_prints_no_bar(cli, make_case, make_corpus) -> None:  # type: ignore[no-untyped-def]
    case = make_case()
    corpus = make_corpus(5)
    result = cli("ingest", "--case", case.root, "-r", corpus)
    assert result.exit_code == 0, result.output
    assert "━" not in result.stderr and "%" not in result.stderr
