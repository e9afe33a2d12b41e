"""Shared fixtures: fictional cases with fixed keys, seeded corpora and ways to run the CLI.

Everything here is invented: the case "UA-TEST-0001", the investigators ("investigator-a" ...)
and the file contents, which are random bytes from fixed seeds. Keys come from fixed 32-byte
seeds, so key ids are the same on every run; the passphrase is a test value, not a secret.

The command line is run two ways: in-process through typer's ``CliRunner`` (fast, used by most
tests) and as the installed ``evidence`` program in a subprocess (what users run).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chain_of_custody import Signer, save_signer, signer_from_seed
from evidence.workspace import Case, init_case, open_case

CASE_ID = "UA-TEST-0001"
CASE_TITLE = "Fictional transfers from a generic town (test data)"
PASSPHRASE = "fictional pass phrase 7"
CLOCK_START = datetime(2025, 3, 1, 9, 0, 0, 0, tzinfo=UTC)


def seed_for(label: str) -> bytes:
    """A fixed 32-byte seed derived from a label (tests only; not a secret)."""
    return hashlib.sha256(b"evidence-locker cli test seed: " + label.encode()).digest()


def fixed_signer(name: str = "investigator-a") -> Signer:
    """The Ed25519 signer of ``name`` from its fixed seed."""
    return signer_from_seed(name, seed_for(name))


class FrozenClock:
    """A clock that starts at a fixed time and moves one millisecond per reading."""

    def __init__(self, start: datetime = CLOCK_START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        current = self.now
        self.now = current + timedelta(milliseconds=1)
        return current


@dataclass(frozen=True)
class CaseHandle:
    """A fictional case on disk and the key that created it."""

    root: Path
    home: Path
    key_path: Path
    signer: Signer

    def open(self) -> Case:
        """Open the case through the library (the caller closes it)."""
        return open_case(self.root)

    def log_size(self) -> int:
        """How many events the case's log holds."""
        opened = self.open()
        try:
            return opened.log.size()
        finally:
            opened.close()

    def stores(self, data: bytes) -> bool:
        """Whether the case's object store holds an object of these bytes."""
        opened = self.open()
        try:
            return opened.objects.has(hashlib.sha256(data).hexdigest())
        finally:
            opened.close()


def save_key(home: Path, signer: Signer, passphrase: str = PASSPHRASE) -> Path:
    """Save ``signer`` in ``home/keys/<name>.key`` (as ``evidence init`` would) unless there."""
    keys = home / "keys"
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = keys / f"{signer.name}.key"
    if not path.exists():
        save_signer(signer, path, passphrase.encode())
    return path


def build_case(
    root: Path,
    home: Path,
    *,
    signer: Signer | None = None,
    case_id: str = CASE_ID,
    clock: Callable[[], datetime] | None = None,
) -> CaseHandle:
    """Create a case at ``root`` with the library, its key saved under ``home``."""
    signer = signer or fixed_signer()
    key_path = save_key(home, signer)
    case = init_case(
        root, case_id=case_id, title=CASE_TITLE, signer=signer, clock=clock or FrozenClock()
    )
    case.close()
    return CaseHandle(root=root, home=home, key_path=key_path, signer=signer)


def write_corpus(
    directory: Path,
    count: int,
    *,
    seed: int = 0,
    min_size: int = 64,
    max_size: int = 2048,
    folders: int = 1,
    prefix: str = "doc",
) -> list[Path]:
    """Write ``count`` files of random bytes (from ``seed``) into ``folders`` sub-folders."""
    rng = random.Random(seed)
    paths = []
    for number in range(count):
        folder = directory / f"part-{number % folders:02d}" if folders > 1 else directory
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{prefix}-{seed}-{number:05d}.bin"
        path.write_bytes(rng.randbytes(rng.randint(min_size, max_size)))
        paths.append(path)
    return paths


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- environment ---------------------------------------------------------------------------


@pytest.fixture
def evidence_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private EVIDENCE_HOME with the test passphrase in the environment."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("EVIDENCE_HOME", str(home))
    monkeypatch.setenv("EVIDENCE_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("EVIDENCE_CASE", raising=False)
    monkeypatch.delenv("EVIDENCE_KEY", raising=False)
    # Rich would draw colours and boxes differently on a terminal; tests read plain text.
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "dumb")
    return home


@pytest.fixture
def make_case(tmp_path: Path, evidence_home: Path) -> Callable[..., CaseHandle]:
    """Factory of fictional cases (fixed key, frozen clock) inside the test's EVIDENCE_HOME."""

    def factory(name: str = "case", **kwargs: object) -> CaseHandle:
        return build_case(tmp_path / name, evidence_home, **kwargs)  # type: ignore[arg-type]

    return factory


@pytest.fixture
def make_corpus(tmp_path: Path) -> Callable[..., Path]:
    """Factory of folders of small random files: ``make_corpus(count, seed=..., name=...)``."""

    def factory(count: int, *, seed: int = 0, name: str | None = None, **kwargs: object) -> Path:
        directory = tmp_path / (name or f"corpus-{seed}")
        write_corpus(directory, count, seed=seed, **kwargs)  # type: ignore[arg-type]
        return directory

    return factory


# --- running the command line --------------------------------------------------------------


@dataclass(frozen=True)
class CliResult:
    """Exit code and the two output streams of one command."""

    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None

    @property
    def output(self) -> str:
        """Both streams, for assertions that do not care where a text went."""
        return self.stdout + self.stderr


def run_cli(*args: str | os.PathLike[str], input_text: str | None = None) -> CliResult:
    """Run ``evidence ARGS`` in-process with typer's CliRunner."""
    from evidence.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app, [os.fspath(a) for a in args], input=input_text, prog_name="evidence"
    )
    exception = result.exception
    if isinstance(exception, SystemExit):
        exception = None
    return CliResult(result.exit_code, result.stdout, result.stderr, exception)


@dataclass(frozen=True)
class InboxSetup:
    """A case, an inbox folder of fictional files to ingest, and the command line."""

    case: CaseHandle
    inbox: Path
    cli: Callable[..., CliResult]

    def ingest(self, *args: str | os.PathLike[str]) -> tuple[CliResult, dict[str, Any]]:
        """``evidence ingest --json`` with ``args``: the result and its report."""
        result = self.cli("ingest", "--case", self.case.root, "--json", *args)
        assert result.exit_code in (0, 1), result.output
        return result, json.loads(result.stdout)

    def items(self) -> list[dict[str, Any]]:
        """``evidence list --json``."""
        result = self.cli("list", "--case", self.case.root, "--json")
        assert result.exit_code == 0, result.output
        items: list[dict[str, Any]] = json.loads(result.stdout)
        return items

    def verify_clean(self) -> None:
        """``evidence verify`` finds nothing."""
        result = self.cli("verify", "--case", self.case.root)
        assert result.exit_code == 0, result.output


class ListedInReverse:
    """What ``os.scandir`` gives, in the reverse order: another file system's listing.

    Patched in for ``os.scandir`` to show that an outcome does not hang on listing order.
    """

    real_scandir = os.scandir

    def __init__(self, path: bytes) -> None:
        with ListedInReverse.real_scandir(path) as entries:
            self._entries = list(entries)[::-1]

    def __enter__(self) -> Iterator[os.DirEntry[bytes]]:
        return iter(self._entries)

    def __exit__(self, *exc_info: object) -> None:
        return None


@pytest.fixture
def cli(evidence_home: Path) -> Callable[..., CliResult]:
    """``cli("ingest", ...)``: run a command in-process in the test's environment."""
    return run_cli


def evidence_command() -> list[str]:
    """How to start the installed program: ``evidence`` beside this Python, else ``-m``."""
    script = Path(sys.executable).parent / "evidence"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "evidence.cli"]


def unprivileged_prefix() -> list[str]:
    """A command prefix under which file modes bind (root drops the capabilities that pass
    them by); skips the test where they cannot be dropped."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file modes cannot be tested")
    prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("cannot drop capabilities here: file modes cannot be tested as root")
    return prefix


def run_unprivileged(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """Run ``evidence`` with ``args`` under :func:`unprivileged_prefix`."""
    return subprocess.run(
        [*unprivileged_prefix(), *evidence_command(), *(os.fspath(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ),
    )


def run_killed(script: str, *args: str | os.PathLike[str]) -> None:
    """Run the Python ``script`` (which kills itself at the point a test studies) with
    ``args``, in the environment of the test; assert that it died of SIGKILL."""
    done = subprocess.run(
        [sys.executable, "-c", script, *(os.fspath(a) for a in args)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


def ended_pid() -> int:
    """The process id of a process that has run and ended (a killed run's leftovers name one)."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def folder_names(path: Path) -> list[str]:
    """Every entry of a folder, hidden ones too (temporary files are hidden); none if the
    folder is not there."""
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []


def run_evidence(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``evidence`` program in a subprocess (environment: os.environ + env)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [*evidence_command(), *(os.fspath(a) for a in args)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_evidence(
    *args: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start the installed ``evidence`` program without waiting (stdout discarded, stderr piped)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.Popen(
        [*evidence_command(), *(os.fspath(a) for a in args)],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """After the run: the table of the tamper matrix, if attack tests ran."""
    from tests.attacks.conftest import print_attack_table

    print_attack_table(terminalreporter)
