"""Fixtures for the attack suites: one fictional case built per session, copied per test.

The base case holds 70 items ingested with the library, three enrolled keys (investigator-a,
who created the case; investigator-b; investigator-c, revoked at the end), custody transfers,
and a checkpoint file kept from before the last events (``old.checkpoint``), as an auditor
would keep one. Every key comes from a fixed seed; every event time from a frozen clock.

Each attack test records what it did and what ``evidence verify`` answered with
:func:`record_attack`; :func:`print_attack_table` prints them as a table at the end of the run,
whatever the capture mode, and also under pytest-xdist (the records travel in the test reports'
``user_properties``).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chain_of_custody import (
    Event,
    EventDraft,
    Signer,
    format_event_time,
    leaf_hash,
    make_leaf,
    new_nodes_for_append,
    parse_event_time,
    parse_leaf,
)
from evidence import catalog, custody
from evidence.ingest import ingest
from evidence.models import ItemOptions
from evidence.workspace import open_case
from tests.conftest import (
    PASSPHRASE,
    CliResult,
    FrozenClock,
    build_case,
    fixed_signer,
    run_cli,
    save_key,
    write_corpus,
)

ATTACK_PROPERTY = "attack"
BASE_ITEMS = 70


@dataclass(frozen=True)
class BaseCase:
    """The session's untouched case and what tests need to know about it."""

    root: Path
    home: Path
    corpus: Path
    old_checkpoint: Path
    old_size: int
    size: int
    a: Signer
    b: Signer
    c: Signer


@dataclass(frozen=True)
class Attacked:
    """A fresh copy of the base case for one attack."""

    root: Path
    base: BaseCase
    tmp: Path

    def db(self) -> sqlite3.Connection:
        """A raw connection, as an attacker with file access would use."""
        return sqlite3.connect(self.root / "catalog.sqlite", isolation_level=None)

    def item_shas(self) -> list[str]:
        """Item sha256s in ingest order."""
        with self.db() as conn:
            return [r[0] for r in conn.execute("SELECT sha256 FROM items ORDER BY ingested_seq")]

    def object_path(self, sha: str) -> Path:
        """Where the store keeps the object ``sha``."""
        return self.root / "objects" / "sha256" / sha[:2] / sha[2:]

    def verify(self, *args: str | Path) -> tuple[CliResult, dict[str, Any]]:
        """``evidence verify --json`` on the copy, and the parsed report."""
        result = run_cli("verify", "--case", self.root, "--json", *args)
        assert result.exit_code in (0, 1), result.output
        return result, json.loads(result.stdout)

    def verify_text(self, *args: str | Path) -> CliResult:
        """``evidence verify`` (text) on the copy."""
        return run_cli("verify", "--case", self.root, *args)


def _build_base(root: Path, home: Path, corpus: Path) -> BaseCase:
    clock = FrozenClock()
    a, b, c = (fixed_signer(n) for n in ("investigator-a", "investigator-b", "investigator-c"))
    for signer in (b, c):
        save_key(home, signer)
    build_case(root, home, signer=a, clock=clock)
    files = write_corpus(corpus, BASE_ITEMS, seed=1001, folders=3)
    case = open_case(root, clock=clock)
    try:
        custody.enrol_key(case, a, b.verifier, "investigator")
        custody.enrol_key(case, a, c.verifier, "translator")
        first = sorted(p for p in files if "part-00" in str(p) or "part-01" in str(p))
        ingest(case, a, first, options=ItemOptions())
        shas = [r[0] for r in case.db.execute("SELECT sha256 FROM items ORDER BY ingested_seq")]
        custody.transfer(case, a, shas[:5], b.verifier.key_id, "hand-over to the field office")
        custody.transfer(case, b, shas[:2], c.verifier.key_id, "for translation")
        note = case.log.latest_checkpoint()
        assert note is not None
        old_size = case.log.size()
        rest = sorted(p for p in files if "part-02" in str(p))
        ingest(case, c, rest[:5], options=ItemOptions(source="Organisation X"))
        ingest(case, b, rest[5:], options=ItemOptions())
        custody.revoke_key(case, a, c.verifier.key_id, "device lost (fictional)")
        size = case.log.size()
    finally:
        case.close()
    old = root.parent / "old.checkpoint"
    old.write_bytes(note)
    return BaseCase(root, home, corpus, old, old_size, size, a, b, c)


@pytest.fixture(scope="session")
def base_case(tmp_path_factory: pytest.TempPathFactory) -> BaseCase:
    """The session's base case (never modified by tests)."""
    top = tmp_path_factory.mktemp("attack-base")
    home = top / "home"
    return _build_base(top / "case", home, top / "corpus")


@pytest.fixture
def attacked(
    base_case: BaseCase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Attacked]:
    """A fresh copy of the base case; the environment points at the base keys."""
    monkeypatch.setenv("EVIDENCE_HOME", str(base_case.home))
    monkeypatch.setenv("EVIDENCE_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("EVIDENCE_CASE", raising=False)
    monkeypatch.delenv("EVIDENCE_KEY", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    root = tmp_path / "case"
    shutil.copytree(base_case.root, root, symlinks=True)
    yield Attacked(root, base_case, tmp_path)


# --- forging, as an attacker holding the files (and sometimes a key) would ---------------


class _Nodes:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get_node(self, level: int, index: int) -> bytes:
        row = self.conn.execute(
            "SELECT hash FROM log_nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        if row is None:
            raise LookupError((level, index))
        return bytes(row[0])


def drop_triggers(conn: sqlite3.Connection) -> None:
    """Remove every trigger (the append-only guards) from the catalog."""
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
    for name in names:
        conn.execute(f'DROP TRIGGER "{name}"')


def forge_append(
    root: Path,
    signer: Signer,
    *,
    action: str = "item.accessed",
    subject: str = "forged",
    data: dict[str, Any] | None = None,
    time_shift: timedelta = timedelta(seconds=1),
) -> int:
    """Append a well-formed, chained event signed by ``signer``, bypassing the toolkit.

    Its time is the previous event's plus ``time_shift`` (negative to go backwards). The
    Merkle nodes are stored too, as the toolkit would; returns the new seq.
    """
    conn = sqlite3.connect(root / "catalog.sqlite", isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        seq, prev_hash, prev_leaf = conn.execute(
            "SELECT seq, leaf_hash, leaf FROM log ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        previous = parse_leaf(bytes(prev_leaf)).event
        moment = format_event_time(parse_event_time(previous.time) + time_shift)
        event = Event(
            seq=seq + 1,
            time=moment,
            case=previous.case,
            action=action,
            actor=signer.key_id,
            subject=subject,
            data=data or {"purpose": "forged access"},
            prev=bytes(prev_hash).hex(),
        )
        leaf = make_leaf(event, signer)
        hashed = leaf_hash(leaf)
        conn.execute(
            "INSERT INTO log (seq, leaf, leaf_hash, time, action, actor, subject) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event.seq, leaf, hashed, moment, action, event.actor, subject),
        )
        conn.executemany(
            "INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)",
            new_nodes_for_append(event.seq, hashed, _Nodes(conn)),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return int(event.seq)


def sign_checkpoint_now(root: Path, signer: Signer) -> bytes:
    """Sign a checkpoint of the log as it is now with ``signer`` (the attacker has the key)."""
    case = open_case(root)
    try:
        return case.log.checkpoint(signer)
    finally:
        case.close()


def truncate_log(root: Path, size: int) -> None:
    """Cut the log back to ``size`` events: rows, Merkle nodes and later checkpoints."""
    conn = sqlite3.connect(root / "catalog.sqlite", isolation_level=None)
    try:
        drop_triggers(conn)
        conn.execute("DELETE FROM log WHERE seq >= ?", (size,))
        conn.execute("DELETE FROM log_nodes WHERE (idx + 1) * (1 << level) > ?", (size,))
        conn.execute("DELETE FROM checkpoints WHERE size > ?", (size,))
    finally:
        conn.close()
    # A careful attacker rebuilds the catalog from the remaining events, so that nothing but
    # an outside checkpoint can show the cut. (Opening the case restores the triggers.)
    case = open_case(root)
    try:
        conn = case.db.conn
        conn.execute("BEGIN IMMEDIATE")
        for table in catalog.SCHEMA:
            conn.execute(f'DELETE FROM "{table}"')  # noqa: S608 - fixed table names
        for _seq, leaf, _hash in case.log.iter_leaves():
            catalog.project(case.db, parse_leaf(leaf).event)
        conn.execute("COMMIT")
        # ... and removes the originals that only the cut events named.
        named = {r[0] for r in conn.execute("SELECT sha256 FROM items").fetchall()}
        for sha in set(case.objects.iter_objects()) - named:
            case.objects.path_for(sha).unlink()
    finally:
        case.close()


def append_with_toolkit(root: Path, signer: Signer, count: int) -> None:
    """Append ``count`` ordinary events through the toolkit (after a rollback, say)."""
    case = open_case(root)
    try:
        drafts = [
            EventDraft(action="note.added", subject=f"note-{n}", data={"text": f"rewritten {n}"})
            for n in range(count)
        ]
        case.record(drafts, signer)
    finally:
        case.close()


# --- the table of attacks ----------------------------------------------------------------


def record_attack(
    request: pytest.FixtureRequest,
    attack: str,
    result: CliResult,
    report: dict[str, Any] | None = None,
    *,
    command: str = "verify",
) -> None:
    """Keep one row of the attack table with the test's report."""
    findings = (report or {}).get("findings", [])
    codes = sorted({f["code"] for f in findings})
    where = ""
    if findings:
        located = [f for f in findings if f.get("seq") is not None]
        first = (located or findings)[0]
        parts = [f"seq {first['seq']}"] if first.get("seq") is not None else []
        parts += [str(first[k])[:24] for k in ("subject", "path") if first.get(k)]
        where = ", ".join(parts)
    elif result.exit_code:
        where = result.stderr.strip().splitlines()[0][:60] if result.stderr.strip() else ""
    row = {
        "attack": attack,
        "command": command,
        "exit": result.exit_code,
        "codes": ", ".join(codes) if codes else "-",
        "where": where,
    }
    request.node.user_properties.append((ATTACK_PROPERTY, json.dumps(row)))


def print_attack_table(terminalreporter: Any) -> None:
    """Print the table of attacks and what verification answered (called from tests/conftest.py).

    The hook lives in the top-level conftest: under pytest-xdist the controller process loads
    only that one when the run starts from the ``tests`` folder.
    """
    rows: list[tuple[str, dict[str, Any]]] = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            for key, value in getattr(report, "user_properties", []):
                if key == ATTACK_PROPERTY and getattr(report, "when", "call") == "call":
                    rows.append((outcome, json.loads(value)))
    if not rows:
        return
    rows.sort(key=lambda r: (r[1]["attack"], r[1]["command"]))
    header = ("attack", "command", "exit", "findings", "names", "test")
    table = [header] + [
        (r["attack"], r["command"], str(r["exit"]), r["codes"], r["where"], outcome)
        for outcome, r in rows
    ]
    widths = [min(max(len(line[i]) for line in table), 48) for i in range(len(header))]
    terminalreporter.write_sep("=", "tamper matrix: attacks and what verification found")
    for number, line in enumerate(table):
        terminalreporter.write_line(
            "  ".join(cell[:48].ljust(width) for cell, width in zip(line, widths, strict=True))
        )
        if number == 0:
            terminalreporter.write_line("  ".join("-" * width for width in widths))


__all__ = [
    "Attacked",
    "BaseCase",
    "append_with_toolkit",
    "drop_triggers",
    "forge_append",
    "record_attack",
    "sign_checkpoint_now",
    "truncate_log",
]
