"""Shared fixtures: fixed Ed25519 keys from fixed seeds and a frozen clock.

Every key and time in these tests is fixed so that generated leaves, checkpoints and proofs are
the same on every run and can be compared byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from chain_of_custody.keys import Signer, signer_from_seed

CASE_ID = "UA-DEP-2026-001"
ORIGIN = "evidence.example/UA-DEP-2026-001"
START = datetime(2026, 11, 24, 3, 20, 0, 123456, tzinfo=UTC)


def seed_for(label: str) -> bytes:
    """A fixed 32-byte seed derived from a label (not a secret; for tests only)."""
    return hashlib.sha256(b"evidence-locker test seed: " + label.encode()).digest()


class FrozenClock:
    """A clock that returns a fixed start time and moves one second per reading."""

    def __init__(self, start: datetime = START, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        current = self.now
        self.now = current + self.step
        return current


@pytest.fixture
def investigator_a() -> Signer:
    """The case's first key (enrols itself at seq 0)."""
    return signer_from_seed("investigator-a", seed_for("investigator-a"))


@pytest.fixture
def investigator_b() -> Signer:
    """A second investigator, enrolled by investigator A."""
    return signer_from_seed("investigator-b", seed_for("investigator-b"))


@pytest.fixture
def outsider() -> Signer:
    """A key that is never enrolled in any test case."""
    return signer_from_seed("outsider", seed_for("outsider"))


@pytest.fixture
def clock() -> FrozenClock:
    """A frozen clock starting at 2026-11-24T03:20:00.123456Z, one second per reading."""
    return FrozenClock()


@pytest.fixture
def make_clock() -> Iterator[Callable[..., FrozenClock]]:
    """Factory for clocks with another start or step."""
    yield FrozenClock
