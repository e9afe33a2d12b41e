"""Holding the signals that stop a command for the few steps that must not be cut.

``evidence._entry`` makes SIGTERM and SIGHUP stop a command as Ctrl-C does; a step that must
finish once begun (events naming objects already stored commit, a case is placed with its
key) holds them with :func:`deferred_stop` and acts on the first one when it ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

from evidence.errors import Stopped

__all__ = ["StopDeferral", "deferred_stop", "stop_on_term_and_hup"]

# The signals that stop a command (evidence._entry): Ctrl-C, SIGTERM and SIGHUP.
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class StopDeferral:
    """Holds the signals that stop a command from :meth:`hold` until the ``with`` block ends,
    then acts on the first one held as its own handler would have (Ctrl-C raises
    ``KeyboardInterrupt``, SIGTERM and SIGHUP ``Stopped``), whether the block ended well or not.

    For the few steps that must not be cut in the middle: events that name objects already
    stored commit (a stop would leave the objects unrecorded), and objects a failed command
    stored are removed. Only the main thread can change handlers: elsewhere it holds nothing.
    """

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._held: list[int] = []
        self._pid = os.getpid()
        self._done: str | None = None

    def __enter__(self) -> StopDeferral:
        return self

    def hold(self) -> None:
        """Hold the stop signals from now until the block ends."""
        if self._previous or threading.current_thread() is not threading.main_thread():
            return
        for signum in _STOP_SIGNALS:
            handler = signal.getsignal(signum)
            if handler is None or handler == signal.SIG_IGN:
                continue  # not set from Python, or ignored: left as it is
            self._previous[signum] = signal.signal(signum, self._hold)

    def completed(self, what: str) -> None:
        """Say what the block has done for good (``what``: "the case X was created at Y").

        A stop held until then is delivered with ``what`` as its ``done``, so that the user
        is told that the work is done instead of being asked to run the command again. Only
        a block that ends without an exception counts as done.
        """
        self._done = what

    def _hold(self, signum: int, _frame: object) -> None:
        if not _ended_if_forked(signum, self._pid):
            self._held.append(signum)

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if not self._held:
            return
        signum = self._held[0]
        handler = previous[signum]
        done = self._done if exc_type is None else None
        try:
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)
        except KeyboardInterrupt as stop:
            if done is not None and getattr(stop, "done", None) is None:
                stop.done = done  # type: ignore[attr-defined]
            raise


@contextlib.contextmanager
def deferred_stop() -> Iterator[StopDeferral]:
    """Hold the signals that stop a command for the whole block (see :class:`StopDeferral`);
    the block may say what it completed (:meth:`StopDeferral.completed`)."""
    with StopDeferral() as deferral:
        deferral.hold()
        yield deferral


def stop_on_term_and_hup() -> None:
    """Make SIGTERM and SIGHUP (a service stop, a closed terminal or connection) raise
    :class:`Stopped` in this process, so that a command undoes what it has not committed as
    on Ctrl-C."""
    command = os.getpid()

    def stop(signum: int, _frame: object) -> None:
        if not _ended_if_forked(signum, command):
            raise Stopped(signum)

    for signum in _STOP_SIGNALS:
        if signum != signal.SIGINT:  # Ctrl-C raises KeyboardInterrupt already
            signal.signal(signum, stop)


def _ended_if_forked(signum: int, command: int) -> bool:
    """In a worker forked by the process ``command`` (which gets the signal too and undoes
    what its workers began): end it as the signal ends any process."""
    if os.getpid() == command:
        return False
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return True
