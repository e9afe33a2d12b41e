"""Timing and memory of one child process: wall time, exit code, peak resident set."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

MIB = 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE")
_DROP_CACHES = Path("/proc/sys/vm/drop_caches")


@dataclass(frozen=True)
class Run:
    """One measured run of a command."""

    seconds: float
    returncode: int
    peak_rss_mib: float
    stderr_tail: str

    @property
    def ok(self) -> bool:
        """True when the command exited with status 0."""
        return self.returncode == 0


class CachePolicy:
    """Before each timed run: flush dirty pages, then drop the page cache when allowed.

    Flushing always happens, so that one run's delayed writes are not paid by the next. Dropping
    needs root and a writable /proc/sys; without it the runs alternate so that both tools see
    equally warm caches.
    """

    def __init__(self, want_cold: bool) -> None:
        self.cold = want_cold and _can_drop_caches()

    def describe(self) -> str:
        """One line for the report header."""
        if self.cold:
            return (
                "cold data: page cache dropped before every timed run, then the program "
                "itself warmed by an untimed --help run"
            )
        return "warm: page cache not dropped; toolkit and reference alternate so both see it warm"

    def prepare(self, warmup: Sequence[str] | None = None) -> None:
        """Flush; if cold, drop the cache and re-read the program (not its input).

        Without the warm-up a cold run would time loading the interpreter and libraries from
        disk, which says little about the tool and penalises the larger program.
        """
        os.sync()
        if self.cold:
            _DROP_CACHES.write_text("3\n")
            if warmup:
                subprocess.run(
                    list(warmup),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=300,
                    check=False,
                )


def _can_drop_caches() -> bool:
    try:
        os.sync()
        _DROP_CACHES.write_text("3\n")
    except OSError:
        return False
    return True


class TreeSampler:
    """Samples the summed resident set of a process and all its descendants.

    ``wait4`` gives the exact peak of the single largest process; a tool that forks workers uses
    more than that at once, which only sampling the whole tree can see.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, tree_rss_bytes(self.pid))
            self._stop.wait(self.interval)


def tree_rss_bytes(root: int) -> int:
    """Resident bytes of ``root`` and its descendants now (0 if it is gone)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        # The command name is in parentheses and may itself contain spaces or parentheses.
        fields = stat.rpartition(")")[2].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        rss[pid] = int(fields[21]) * _PAGE
    total = 0
    for pid, resident in rss.items():
        walker = pid
        while walker > 1 and walker != root:
            walker = parents.get(walker, 0)
        if walker == root:
            total += resident
    return total


def run_measured(
    argv: Sequence[str],
    *,
    cache: CachePolicy,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: Path | None = None,
    warmup: Sequence[str] | None = None,
) -> Run:
    """Run ``argv`` once with stdout discarded; time it and record its peak resident set.

    ``warmup`` (default ``argv[0] --help``) loads the program into the page cache after a drop.
    """
    cache.prepare([argv[0], "--help"] if warmup is None else warmup)
    stdin_cm: Any = stdin.open("rb") if stdin is not None else nullcontext(subprocess.DEVNULL)
    with tempfile.TemporaryFile() as errors, stdin_cm as source:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            stdin=source,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
        with TreeSampler(proc.pid) as sampler:
            # wait4 on this pid gives this child's own rusage (ru_maxrss in KiB on Linux, the
            # max over it and the descendants it waited for), not the max over all children.
            _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        tail = _tail(errors)
    peak = max(usage.ru_maxrss * 1024, sampler.peak_bytes) / MIB
    return Run(elapsed, proc.returncode, peak, tail)


def _tail(stream: IO[bytes], lines: int = 3) -> str:
    text = stream.read()[-4000:].decode("utf-8", "replace")
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def run_setup(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 3600
) -> subprocess.CompletedProcess[str]:
    """Run an untimed preparation step, capturing its output."""
    return subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else None,
        timeout=timeout,
        check=False,
    )


def median(values: Sequence[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(values) if values else None
