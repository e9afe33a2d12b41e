"""Benchmark corpora: random bytes from a fixed seed, written to a temporary folder."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.measure import MIB

KIB = 1024
GIB = 1024 * MIB
SEED = 20261124
_CHUNK = 4 * MIB
# Small files go into sub-folders of this many, as a real collection would be organised.
_PER_FOLDER = 1000


@dataclass(frozen=True)
class Corpus:
    """A generated folder of files."""

    name: str
    root: Path
    files: tuple[Path, ...]
    total_bytes: int

    def describe(self) -> str:
        """E.g. '40 files, 1024.0 MiB'."""
        return f"{len(self.files):,} files, {self.total_bytes / MIB:.1f} MiB"


@dataclass(frozen=True)
class Sizes:
    """Corpus sizes for a given scale factor (1.0 = the sizes the targets are set for)."""

    scale: float

    @property
    def big_count(self) -> int:
        """Number of big files (fixed: the scale shrinks each file instead)."""
        return 40

    @property
    def big_size(self) -> int:
        """Bytes per big file: 25 MiB at full scale, at least 64 KiB, whole 4 KiB blocks."""
        return max(64 * KIB, int(25 * MIB * self.scale) // (4 * KIB) * (4 * KIB))

    @property
    def small_count(self) -> int:
        """Number of small files: 20,000 at full scale."""
        return max(100, round(20_000 * self.scale))

    @property
    def sparse_size(self) -> int:
        """Size of the one sparse file of the memory row: 4 GiB at full scale."""
        return max(16 * MIB, int(4 * GIB * self.scale) // MIB * MIB)

    @property
    def log_events(self) -> int:
        """Events appended by the log row: 1,000,000 at full scale."""
        return max(1_000, round(1_000_000 * self.scale))

    @property
    def export_items(self) -> int:
        """Items of the export case: 1,000 at full scale."""
        return max(20, round(1_000 * self.scale))

    @property
    def export_incidents(self) -> int:
        """Incidents of the export case: 20."""
        return min(20, self.export_items)


def _write_random(path: Path, size: int, rng: random.Random) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        left = size
        while left:
            step = min(left, _CHUNK)
            out.write(rng.randbytes(step))
            left -= step


def big_files(base: Path, sizes: Sizes) -> Corpus:
    """40 files of 25 MiB each (scaled)."""
    rng = random.Random(SEED)
    root = base / "big"
    files = []
    for number in range(sizes.big_count):
        path = root / f"recording-{number:03d}.bin"
        _write_random(path, sizes.big_size, rng)
        files.append(path)
    return Corpus("big", root, tuple(files), sizes.big_count * sizes.big_size)


def small_files(base: Path, count: int, name: str = "small", seed: int = SEED + 1) -> Corpus:
    """``count`` files of 1-16 KiB, a thousand per sub-folder."""
    rng = random.Random(seed)
    root = base / name
    files = []
    total = 0
    for number in range(count):
        size = rng.randint(1 * KIB, 16 * KIB)
        path = root / f"batch-{number // _PER_FOLDER:03d}" / f"photo-{number:05d}.bin"
        _write_random(path, size, rng)
        files.append(path)
        total += size
    return Corpus(name, root, tuple(files), total)


def sparse_file(base: Path, sizes: Sizes) -> Corpus:
    """One sparse file (reads as zeros) of 4 GiB (scaled): memory must not grow with file size."""
    root = base / "sparse"
    root.mkdir(parents=True)
    path = root / "disk-image.raw"
    with path.open("wb") as out:
        # A few random bytes at the start so that the file is not all zeros (nor zero-length).
        out.write(random.Random(SEED + 2).randbytes(4 * KIB))
        out.truncate(sizes.sparse_size)
    return Corpus("sparse", root, (path,), sizes.sparse_size)
