"""Reference tools from the system, and the commands that run them on a corpus."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.corpora import Corpus

# bagit.py is installed with the test extra into the same virtual environment as this Python.
_VENV_BIN = Path(sys.executable).parent
_SEARCH_PATH = os.pathsep.join([str(_VENV_BIN), os.environ.get("PATH", "")])


def find_tool(name: str) -> Path | None:
    """The program ``name`` from this environment's bin folder or PATH, or None."""
    found = shutil.which(name, path=_SEARCH_PATH)
    return Path(found) if found else None


def tool_version(path: Path, flag: str = "--version") -> str:
    """First line of ``path --version`` (hashdeep uses -V), or '' if it does not answer."""
    try:
        done = subprocess.run(
            [str(path), flag], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else ""


@dataclass(frozen=True)
class Reference:
    """A reference command: its label, the tool it needs, and how it is run."""

    label: str
    tool: str
    missing_hint: str

    def path(self) -> Path | None:
        """Where the tool is, or None when it is not installed."""
        return find_tool(self.tool)

    def missing(self) -> str:
        """The note shown in place of figures when the tool is absent."""
        return f"reference {self.tool} not installed ({self.missing_hint})"


SHA256SUM = Reference("sha256sum", "sha256sum", "coreutils")
SHA256SUM_XARGS = Reference("sha256sum via xargs", "sha256sum", "coreutils")
HASHDEEP = Reference("hashdeep -c sha256", "hashdeep", "apt-get install hashdeep")
BAGIT_MAKE = Reference("bagit.py --processes 2 --sha256", "bagit.py", "pip install bagit")
# Not a tool from the system: the least an ingest must do, in plain Python (floor.py here).
MINIMAL_INGEST_LABEL = "minimal ingest (floor.py)"
_FLOOR_SCRIPT = Path(__file__).with_name("floor.py")
BAGIT_VALIDATE = Reference("bagit.py --validate --processes 2", "bagit.py", "pip install bagit")


def sha256sum_argv(tool: Path, corpus: Corpus) -> list[str]:
    """``sha256sum FILE...`` over every file (fine for a few dozen names)."""
    return [str(tool), *[str(p) for p in corpus.files]]


def xargs_file_list(corpus: Corpus, where: Path) -> Path:
    """A NUL-separated list of the corpus files, fed to ``xargs -0`` on stdin."""
    where.write_bytes(b"".join(os.fsencode(p) + b"\0" for p in corpus.files))
    return where


def sha256sum_xargs_argv(tool: Path) -> list[str]:
    """``xargs -0 sha256sum`` (file names on stdin): one process per few thousand files."""
    xargs = find_tool("xargs") or Path("xargs")
    return [str(xargs), "-0", str(tool)]


def minimal_ingest_argv(names: Path, store: Path) -> list[str]:
    """``python floor.py LIST STORE`` with this interpreter (it has python-magic and
    cryptography, as the toolkit does)."""
    return [sys.executable, str(_FLOOR_SCRIPT), str(names), str(store)]


def hashdeep_argv(tool: Path, corpus: Corpus) -> list[str]:
    """``hashdeep -c sha256 -r DIR`` (hashdeep's default: one hashing thread per CPU)."""
    return [str(tool), "-c", "sha256", "-r", str(corpus.root)]


def bagit_make_argv(tool: Path, copy: Path) -> list[str]:
    """Make a bag in place of ``copy`` with two processes, SHA-256 only."""
    return [str(tool), "--processes", "2", "--sha256", "--quiet", str(copy)]


def bagit_validate_argv(tool: Path, bag: Path) -> list[str]:
    """Validate every payload hash of ``bag`` with two processes."""
    return [str(tool), "--validate", "--processes", "2", "--quiet", str(bag)]
