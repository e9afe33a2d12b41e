"""A stop (Ctrl-C, SIGTERM) while an ingest names its copies waits for their events to commit.

Every file here is invented bytes.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from chain_of_custody.keys import signer_from_seed
from evidence.errors import Stopped
from evidence.ingest import ingest
from evidence.models import ItemOptions
from evidence.objects import ObjectStore
from evidence.stops import StopDeferral, deferred_stop
from evidence.verify import verify_case
from evidence.workspace import init_case

SIGNER = signer_from_seed("investigator-a", bytes(range(32)))


@pytest.fixture
def sigterm_stops() -> Iterator[None]:
    """SIGTERM raises Stopped, as the installed program sets it up (evidence._entry)."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.usefixtures("sigterm_stops")
@pytest.mark.parametrize(
    ("signum", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Stopped)]
)
def test_a_stop_during_the_flush_waits_for_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int, raised: type[BaseException]
) -> None:
    card = tmp_path / "card"
    card.mkdir()
    for number in range(3):
        (card / f"IMG_{number:04d}.JPG").write_bytes(f"fictional photo {number} ".encode() * 50)
    case = init_case(tmp_path / "case", case_id="UA-TEST-0001", title="Stop", signer=SIGNER)
    flush = ObjectStore.flush

    def flush_then_stop(store: ObjectStore) -> None:
        flush(store)  # the copies are named now
        os.kill(os.getpid(), signum)

    monkeypatch.setattr(ObjectStore, "flush", flush_then_stop)
    with pytest.raises(raised):
        ingest(case, SIGNER, [card], options=ItemOptions(), recursive=True)
    monkeypatch.undo()
    # The stop came once the events naming the copies had committed.
    assert case.db.execute("SELECT count(*) FROM items").fetchone()[0] == 3
    assert verify_case(case, workers=1).ok
    # With the card gone, the case still holds and records every copy.
    for path in card.iterdir():
        path.unlink()
    assert verify_case(case, workers=1).ok


def test_a_held_stop_is_acted_on_when_the_block_ends() -> None:
    reached = False
    with pytest.raises(KeyboardInterrupt), deferred_stop():
        os.kill(os.getpid(), signal.SIGINT)
        reached = True
    assert reached
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_stop_held_until_a_completed_block_ends_says_what_was_done() -> None:
    with pytest.raises(KeyboardInterrupt) as stopped, deferred_stop() as stops:
        os.kill(os.getpid(), signal.SIGINT)
        stops.completed("the fictional work was done")
    assert stopped.value.done == "the fictional work was done"  # type: ignore[attr-defined]


def test_a_block_that_failed_after_saying_it_completed_claims_nothing() -> None:
    with pytest.raises(KeyboardInterrupt) as stopped, deferred_stop() as stops:
        os.kill(os.getpid(), signal.SIGINT)
        stops.completed("the fictional work was done")
        raise ValueError("fictional failure after it")
    assert getattr(stopped.value, "done", None) is None


def test_a_stop_held_by_an_inner_block_is_the_outer_blocks_to_report() -> None:
    with pytest.raises(KeyboardInterrupt) as stopped, deferred_stop() as outer:
        with deferred_stop() as inner:
            os.kill(os.getpid(), signal.SIGINT)
            inner.completed("only the first step")
        outer.completed("every step")
    assert stopped.value.done == "every step"  # type: ignore[attr-defined]


def test_nothing_is_held_before_hold() -> None:
    reached = False
    with pytest.raises(KeyboardInterrupt), StopDeferral():
        os.kill(os.getpid(), signal.SIGINT)
        reached = True
    assert not reached


def test_a_block_without_a_stop_ends_as_it_would() -> None:
    with deferred_stop():
        pass
    with pytest.raises(ValueError, match="fictional"), deferred_stop():
        raise ValueError("fictional")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
