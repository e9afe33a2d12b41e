"""Hidden work in progress is claimed with a lock by the run doing it, and a later run removes
only what no live run holds, whatever process id its name carries (evidence.claims).

A leftover whose name carries the id of a process that ended here, but whose lock is held,
stands for the work of a run on another machine sharing the folder, or in another container:
`init`, `export`, `keys generate` and `open` all leave it alone, and remove it once the lock
is let go.
"""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from evidence import claims
from evidence.claims import Claim, ClaimLost, abandoned, claim, claim_new
from tests.conftest import CaseHandle, CliResult, ended_pid, sha256_of

Cli = Callable[..., CliResult]


@pytest.fixture
def ended() -> str:
    return str(ended_pid())


@pytest.fixture
def held_elsewhere() -> Iterator[Callable[[Path], Claim]]:
    """Locks a leftover as the run that made it would (another open file, so the lock stands
    against this process's own attempts); let go at the end."""
    taken: list[Claim] = []

    def hold(path: Path) -> Claim:
        taken.append(claim(path))
        return taken[-1]

    yield hold
    for each in taken:
        each.release()


# --- the primitives ------------------------------------------------------------------------


def test_a_leftover_of_an_ended_run_is_abandoned(tmp_path: Path, ended: str) -> None:
    leftover = tmp_path / "work"
    leftover.mkdir()
    held = abandoned(leftover, ended)
    assert held is not None
    assert held.fd is not None
    # Claimed now by this caller: no one else takes it meanwhile.
    assert abandoned(leftover, ended) is None
    held.release()
    assert held.fd is None
    assert abandoned(leftover, ended) is not None


def test_a_held_leftover_is_not_abandoned_whatever_its_pid(
    tmp_path: Path, ended: str, held_elsewhere: Callable[[Path], Claim]
) -> None:
    leftover = tmp_path / "work.part"
    leftover.write_bytes(b"fictional work in progress")
    held = held_elsewhere(leftover)
    assert abandoned(leftover, ended) is None
    held.release()
    assert abandoned(leftover, ended) is not None


def test_a_leftover_locked_by_another_process_is_not_abandoned(tmp_path: Path, ended: str) -> None:
    leftover = tmp_path / "work"
    leftover.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_UNTIL_STDIN_CLOSES, str(leftover)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline() == b"locked\n"
    try:
        assert abandoned(leftover, ended) is None
    finally:
        holder.stdin.close()
        holder.wait()
        holder.stdout.close()
    assert abandoned(leftover, ended) is not None


_HOLD_UNTIL_STDIN_CLOSES = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("pid", ["this process", "", "12ab", "-1"])
def test_a_leftover_of_a_live_or_unknown_process_is_kept(tmp_path: Path, pid: str) -> None:
    leftover = tmp_path / "work"
    leftover.mkdir()
    assert abandoned(leftover, str(os.getpid()) if pid == "this process" else pid) is None


def test_a_leftover_gone_meanwhile_is_not_claimed(tmp_path: Path, ended: str) -> None:
    assert abandoned(tmp_path / "gone", ended) is None


def test_a_link_under_a_leftover_name_is_decided_by_its_pid(tmp_path: Path, ended: str) -> None:
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "work"
    link.symlink_to(tmp_path / "elsewhere")
    held = abandoned(link, ended)
    assert held is not None
    assert held.fd is None  # the link itself holds no lock; the target is never opened
    assert abandoned(link, str(os.getpid())) is None


def test_claim_refuses_what_a_clean_up_took(tmp_path: Path, ended: str) -> None:
    made = tmp_path / "work"
    made.mkdir()
    cleanup = abandoned(made, ended)
    assert cleanup is not None
    with pytest.raises(ClaimLost):
        claim(made)
    made.rmdir()
    cleanup.release()
    with pytest.raises(ClaimLost):
        claim(made)


def test_claim_refuses_a_name_given_to_something_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between the open and the check, the clean-up removed it and someone made it again.
    made = tmp_path / "work"
    made.write_bytes(b"first")
    flock = fcntl.flock

    def replaced_meanwhile(fd: int, operation: int) -> None:
        flock(fd, operation)
        made.unlink()
        made.write_bytes(b"second")

    monkeypatch.setattr(claims.fcntl, "flock", replaced_meanwhile)
    with pytest.raises(ClaimLost):
        claim(made)


def test_claim_new_makes_another_while_clean_ups_take_them(tmp_path: Path, ended: str) -> None:
    made: list[Path] = []
    taken: list[Claim] = []

    def make() -> Path:
        path = tmp_path / f"work-{len(made)}"
        path.mkdir()
        made.append(path)
        if len(made) < 3:
            # A clean-up elsewhere takes it before it is claimed.
            cleanup = abandoned(path, ended)
            assert cleanup is not None
            taken.append(cleanup)
        return path

    path, held = claim_new(make)
    assert path == tmp_path / "work-2"
    assert held.fd is not None
    assert abandoned(path, ended) is None
    for each in (*taken, held):
        each.release()


def test_claim_new_gives_up_after_a_few_tries(tmp_path: Path, ended: str) -> None:
    taken: list[Claim] = []

    def make() -> Path:
        path = tmp_path / f"work-{len(taken)}"
        path.mkdir()
        cleanup = abandoned(path, ended)
        assert cleanup is not None
        taken.append(cleanup)
        return path

    with pytest.raises(OSError, match="taken by a clean-up"):
        claim_new(make)
    assert 1 < len(taken) < 10
    for each in taken:
        each.release()


def _access_mode(fd: int) -> int:
    flags = Path(f"/proc/self/fdinfo/{fd}").read_text().split("flags:", 1)[1].split()[0]
    return int(flags, 8) & os.O_ACCMODE


def test_a_file_is_locked_open_for_writing_as_nfs_needs(tmp_path: Path, ended: str) -> None:
    made = tmp_path / "work.part"
    made.write_bytes(b"fictional")
    held = claim(made)
    assert held.fd is not None
    assert _access_mode(held.fd) == os.O_RDWR
    held.release()
    folder = tmp_path / "work"
    folder.mkdir()
    held = claim(folder)
    assert held.fd is not None
    assert _access_mode(held.fd) == os.O_RDONLY
    held.release()


@pytest.mark.parametrize(
    "refusal", [errno.ENOLCK, errno.EBADF], ids=["no-locks", "nfs-read-only-descriptor"]
)
def test_where_no_locks_are_kept_the_pid_decides(
    tmp_path: Path, ended: str, monkeypatch: pytest.MonkeyPatch, refusal: int
) -> None:
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(refusal, os.strerror(refusal))

    monkeypatch.setattr(claims.fcntl, "flock", no_locks)
    made = tmp_path / "work"
    made.mkdir()
    assert claim(made).fd is None
    assert abandoned(made, str(os.getpid())) is None
    held = abandoned(made, ended)
    assert held is not None
    assert held.fd is None


# --- the commands --------------------------------------------------------------------------


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_init_leaves_a_held_build_alone(
    cli: Cli, evidence_home: Path, tmp_path: Path, ended: str,
    held_elsewhere: Callable[[Path], Claim],
) -> None:  # fmt: skip
    build = tmp_path / f".case.evidence-init-{ended}-0123456789ab"
    build.mkdir()
    held = held_elsewhere(build)

    def init(name: str) -> CliResult:
        return cli("init", tmp_path / "case", "--case-id", "TEST-0031",
                   "--title", "Fictional case", "--key-name", name)  # fmt: skip

    first = init("inv-a")
    assert first.exit_code == 0, first.output
    assert build.is_dir()
    held.release()
    (tmp_path / "case").rename(tmp_path / "kept")
    second = init("inv-b")
    assert second.exit_code == 0, second.output
    assert not build.exists()


def test_export_leaves_a_held_partial_alone(
    cli: Cli, make_case: Callable[..., CaseHandle], make_corpus: Callable[..., Path],
    tmp_path: Path, ended: str, held_elsewhere: Callable[[Path], Claim],
) -> None:  # fmt: skip
    case = make_case()
    assert cli("ingest", "--case", case.root, "-r", make_corpus(count=3)).exit_code == 0
    out = tmp_path / "bundles"
    out.mkdir()
    partial = out / f".bundle.partial-{ended}-0123abcd"
    partial.mkdir()
    (partial / "bagit.txt").write_text("fictional bag in progress elsewhere\n")
    zipped = out / f".bundle.zip.partial-{ended}-4567efgh"
    zipped.write_bytes(b"fictional zip in progress elsewhere")
    held = [held_elsewhere(partial), held_elsewhere(zipped)]

    def export(name: str) -> CliResult:
        return cli("export", "--all", "--profile", "restricted", "--out", out / name, "--zip",
                   "--case", case.root)  # fmt: skip

    first = export("bundle")
    assert first.exit_code == 0, first.output
    assert _names(out) == sorted([partial.name, zipped.name, "bundle", "bundle.zip"])
    for each in held:
        each.release()
    for name in ("bundle", "bundle.zip"):
        (out / name).rename(out / f"kept-{name}")
    second = export("bundle")
    assert second.exit_code == 0, second.output
    assert _names(out) == ["bundle", "bundle.zip", "kept-bundle", "kept-bundle.zip"]


def test_keys_generate_leaves_held_pending_files_alone(
    cli: Cli, evidence_home: Path, tmp_path: Path, ended: str,
    held_elsewhere: Callable[[Path], Claim],
) -> None:  # fmt: skip
    folder = tmp_path / "keys"
    folder.mkdir()
    pending = [folder / f".inv-c.key.{ended}-0123456789ab.pending",
               folder / f".inv-c.pub.{ended}-0123456789ab.pending"]  # fmt: skip
    for path in pending:
        path.write_bytes(b"fictional key being written elsewhere")
    held = [held_elsewhere(path) for path in pending]
    first = cli("keys", "generate", "--name", "inv-c", "--out", folder / "inv-c.key")
    assert first.exit_code == 0, first.output
    assert _names(folder) == sorted([p.name for p in pending] + ["inv-c.key", "inv-c.pub"])
    for each in held:
        each.release()
    for name in ("inv-c.key", "inv-c.pub"):
        (folder / name).rename(folder / f"kept-{name}")
    second = cli("keys", "generate", "--name", "inv-c", "--out", folder / "inv-c.key")
    assert second.exit_code == 0, second.output
    assert _names(folder) == ["inv-c.key", "inv-c.pub", "kept-inv-c.key", "kept-inv-c.pub"]


def test_open_leaves_a_held_part_file_alone(
    cli: Cli, make_case: Callable[..., CaseHandle], make_corpus: Callable[..., Path],
    tmp_path: Path, ended: str, held_elsewhere: Callable[[Path], Claim],
) -> None:  # fmt: skip
    case = make_case()
    corpus = make_corpus(count=1)
    assert cli("ingest", "--case", case.root, "-r", corpus).exit_code == 0
    [original] = corpus.iterdir()
    work = tmp_path / "work"
    work.mkdir()
    part = work / f".evidence-open-{ended}-0123456789ab.part"
    part.write_bytes(b"fictional copy being made elsewhere")
    held = held_elsewhere(part)

    def open_copy(name: str) -> CliResult:
        return cli("open", sha256_of(original), "--case", case.root, "--purpose", "review",
                   "--to", work / name)  # fmt: skip

    first = open_copy("first")
    assert first.exit_code == 0, first.output
    assert _names(work) == [part.name, "first"]
    held.release()
    second = open_copy("second")
    assert second.exit_code == 0, second.output
    assert _names(work) == ["first", "second"]
