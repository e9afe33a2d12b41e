"""Long work shows a progress bar on a terminal and none when stderr is not one (SPEC 8)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from chain_of_custody.keys import signer_from_seed
from evidence import _cli_common
from evidence.ingest import ingest
from evidence.models import ItemOptions
from evidence.verify import verify_case
from evidence.workspace import init_case


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


def test_bar_in_stages_shows_each_stage_label(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = io.StringIO()
    monkeypatch.setattr(_cli_common, "err", Console(file=sink, force_terminal=True, width=100))
    bar = _cli_common.Bar("log", "objects")
    bar.start(2, 0)
    bar.advance(2, 0)
    bar.start(1, 10)  # a second stage replaces the first bar instead of failing
    bar.advance(1, 10)
    bar.close()
    assert "log" in sink.getvalue() and "objects" in sink.getvalue()


def _drawn(bar_labels: tuple[str, ...], stages: list[tuple[int, int]]) -> str:
    """What a bar draws on a terminal for ``stages`` of (files, bytes), each done in full."""
    sink = io.StringIO()
    console = Console(file=sink, force_terminal=True, width=140)
    bar = _cli_common.Bar(*bar_labels)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_cli_common, "err", console)
        for files, nbytes in stages:
            bar.start(files, nbytes)
            bar.progress.refresh()  # type: ignore[union-attr]
            for _ in range(files):
                bar.advance(1, nbytes // files)
            bar.progress.refresh()  # type: ignore[union-attr]
        bar.close()
    return sink.getvalue()


def test_bar_counts_files_as_files_and_bytes_as_bytes() -> None:
    drawn = _drawn(("ingest",), [(3000, 3_000_000)])
    assert "3000/3000 files" in drawn
    assert "3.0/3.0 MB" in drawn
    assert "3.0/3.0 kB" not in drawn  # the count of files is never shown as bytes


def test_bar_without_bytes_shows_the_count_alone() -> None:
    drawn = _drawn(("log",), [(250, 0)])
    assert "250/250" in drawn
    assert "bytes" not in drawn and "B/s" not in drawn and "files" not in drawn


class _Stages:
    """A Progress that records what each stage was told."""

    def __init__(self) -> None:
        self.stages: list[list[int]] = []

    def start(self, files: int, total_bytes: int) -> None:
        self.stages.append([files, total_bytes, 0, 0])

    def advance(self, files: int, nbytes: int) -> None:
        self.stages[-1][2] += files
        self.stages[-1][3] += nbytes


def test_verify_counts_the_events_then_the_objects(tmp_path: Path) -> None:
    signer = signer_from_seed("investigator-a", bytes(range(32)))
    case = init_case(tmp_path / "case", case_id="UA-TEST-0001", title="Stages", signer=signer)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for number in range(3):
        (corpus / f"f{number}.bin").write_bytes(bytes([number]) * (number + 1) * 100)
    ingest(case, signer, [corpus], options=ItemOptions(), recursive=True)
    stages = _Stages()
    assert verify_case(case, progress=stages).ok
    events = case.log.size()
    assert stages.stages == [[events, 0, events, 0], [3, 600, 3, 600]]


@pytest.mark.parametrize("files", [3, 70], ids=["threads", "processes"])
def test_ingest_counts_what_it_stores_and_not_what_it_skips(tmp_path: Path, files: int) -> None:
    signer = signer_from_seed("investigator-a", bytes(range(32)))
    case = init_case(tmp_path / "case", case_id="UA-TEST-0001", title="Stages", signer=signer)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for number in range(files):
        (corpus / f"f{number:03d}.bin").write_bytes(number.to_bytes(2, "big") * (number + 1))
    size = sum(2 * (number + 1) for number in range(files))
    stages = _Stages()
    ingest(case, signer, [corpus], options=ItemOptions(), recursive=True, progress=stages)
    assert stages.stages == [[files, size, files, size]]
    # A second run skips what it sighted before: only the new file is counted.
    (corpus / "new.bin").write_bytes(b"new" * 10)
    stages = _Stages()
    ingest(case, signer, [corpus], options=ItemOptions(), recursive=True, progress=stages)
    assert stages.stages == [[1, 30, 1, 30]]
