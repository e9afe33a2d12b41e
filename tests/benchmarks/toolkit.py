"""How the benchmarks drive the toolkit: the installed ``evidence`` command, fresh cases."""

from __future__ import annotations

import itertools
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.measure import run_setup

CASE_ID = "UA-BENCH-0001"
KEY_NAME = "bench"
# A fictional passphrase for throw-away keys made in the temporary folder.
PASSPHRASE = "bench-passphrase-not-secret"


class ToolkitUnavailable(Exception):
    """The toolkit command is missing, or a preparation step of a row failed."""


@dataclass(frozen=True)
class CaseDir:
    """A case made for one round, with the environment its commands need."""

    path: Path
    env: dict[str, str]


class Toolkit:
    """Runs ``evidence`` with throw-away keys, each case with its own EVIDENCE_HOME."""

    def __init__(self, work: Path, evidence: Path | None = None) -> None:
        self.work = work
        self.evidence = evidence or _default_evidence()
        self.passphrase_file = work / "passphrase.txt"
        self.passphrase_file.write_text(PASSPHRASE + "\n")
        self.passphrase_file.chmod(0o600)
        self._numbers = itertools.count(1)

    def available(self) -> str | None:
        """None when ``evidence --help`` works, else why not."""
        if self.evidence is None:
            return "the evidence command is not installed"
        done = run_setup([str(self.evidence), "--help"], timeout=120)
        if done.returncode != 0:
            return f"evidence --help failed: {_last_line(done.stderr)}"
        return None

    def command(self, *args: str) -> list[str]:
        """``evidence ARGS``."""
        if self.evidence is None:
            raise ToolkitUnavailable("the evidence command is not installed")
        return [str(self.evidence), *args]

    def new_case(self, label: str) -> CaseDir:
        """``evidence init`` a fresh case (untimed) with a fresh key folder."""
        number = next(self._numbers)
        folder = self.work / "cases" / f"{label}-{number:03d}"
        home = folder / "home"
        home.mkdir(parents=True)
        env = {
            **os.environ,
            # init refuses an existing key name, so each case has its own key folder.
            "EVIDENCE_HOME": str(home),
            "EVIDENCE_PASSPHRASE": PASSPHRASE,
        }
        path = folder / "case"
        done = run_setup(
            self.command(
                "init",
                str(path),
                "--case-id",
                CASE_ID,
                "--title",
                "Benchmark case",
                "--key-name",
                KEY_NAME,
                "--passphrase-file",
                str(self.passphrase_file),
            ),
            env=env,
        )
        if done.returncode != 0:
            raise ToolkitUnavailable(f"evidence init failed: {_last_line(done.stderr)}")
        return CaseDir(path, env)

    def ingest_argv(self, case: CaseDir, root: Path) -> list[str]:
        """The full ingest command (hash, store, sign, log, checkpoint) of a folder."""
        return self.command(
            "ingest",
            "--case",
            str(case.path),
            "--recursive",
            str(root),
            "--passphrase-file",
            str(self.passphrase_file),
        )

    def verify_argv(self, case: CaseDir) -> list[str]:
        """``evidence verify`` of the whole case."""
        return self.command("verify", "--case", str(case.path))

    def profile_argv(self, argv: list[str], session: Path) -> list[str]:
        """The same ``evidence`` command run under pyinstrument, saving a session file."""
        return [
            sys.executable,
            "-m",
            "pyinstrument",
            "--renderer",
            "pyisession",
            "--outfile",
            str(session),
            "-m",
            "evidence._entry",
            *argv[1:],
        ]

    def remove(self, case: CaseDir) -> None:
        """Set a case and its key folder aside for deletion at the end of the run."""
        self.set_aside(case.path.parent)

    def set_aside(self, path: Path) -> None:
        """Move ``path`` into the work folder's trash; it is deleted with the work folder.

        Deleting thousands of files right before a timed run slows the file creations of that
        run on some file systems (ext4 without a journal does not reuse recently freed inodes),
        and only the toolkit creates files in the timed runs; a rename frees nothing.
        """
        if not path.exists():
            return
        trash = self.work / "trash"
        trash.mkdir(exist_ok=True)
        path.rename(trash / f"{next(self._numbers):04d}-{path.name}")


def force_rmtree(path: Path) -> None:
    """Delete a tree even where the toolkit made folders read-only."""
    if not path.exists():
        return
    for folder, _, _ in os.walk(path):
        Path(folder).chmod(0o700)
    shutil.rmtree(path, ignore_errors=True)


def _default_evidence() -> Path | None:
    beside = Path(sys.executable).parent / "evidence"
    if beside.exists():
        return beside
    found = shutil.which("evidence")
    return Path(found) if found else None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"
