"""``evidence verify`` on a catalog damaged behind the toolkit's back: findings, never a crash.

A small fictional case is built once through the library, with a row in every table verify
reads: items (ingested, derived from a testimony and its sealed annex), a duplicate sighting, a
symbolic link, entities, a testimony with its recipient, links, ERNs and an export, two keys
(one revoked) and a custody transfer. Each test damages a copy of its ``catalog.sqlite`` with
SQL, as anyone holding the file could: a value of another SQLite type in every column verify
reads (text for a blob and the reverse, NULL, a real, text that is not valid UTF-8), integers
out of range, negative and huge seqs, hashes of the wrong length, duplicate rows, a dropped
table or column. ``evidence verify`` must then exit 1 with a finding that names the table and
column (and the row or seq), list every finding in ``--json`` and never fail with an
"unexpected error" or hang; a catalog file SQLite cannot read at all gives exit 3 with a
message that says what to do.

The damages to the projection tables are generated from ``catalog.SCHEMA``, so that a table or
column added later is damaged too.
"""

# Every SQL statement here is the test's own damage to a fictional catalog, built from fixed
# table and column names; the tables of damages read best one case per line, however long.
# ruff: noqa: S608, E501

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chain_of_custody import Finding
from evidence import catalog, custody
from evidence.ingest import ingest
from evidence.models import ItemOptions
from evidence.verify import CaseReport
from exports.bundle import export_bundle
from exports.selection import Selection
from tests.conftest import CliResult, fixed_signer, run_cli
from tests.exports.casebuilder import CREATED, build_case, investigator_signer

# Seconds a verify of the small case may take, damaged or not, before it counts as a hang.
TIME_LIMIT = 120
# The event of the first item ingested, whose leaf holds "handed-over".
ITEM_SEQ = 2


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The untouched case: every table verify reads holds at least one row."""
    root = tmp_path_factory.mktemp("damaged-catalog")
    built = build_case(root)
    a, b = investigator_signer(), fixed_signer("investigator-b")
    case = built.open()
    try:
        export_bundle(
            case,
            a,
            selection=Selection(incidents=("INC-0001",)),
            profile="restricted",
            out_dir=root / "bundle",
            created=CREATED,
        )
        custody.enrol_key(case, a, b.verifier, "investigator")
        custody.transfer(case, a, [built.items["unlinked"]], b.verifier.key_id, "hand-over")
        more = root / "more"
        more.mkdir()
        # The same bytes as an item already ingested (a second sighting), and a link to it.
        (more / "again.txt").write_text("Not linked to anything.\n", encoding="utf-8")
        (more / "link").symlink_to(more / "again.txt")
        ingest(case, b, [more], options=ItemOptions(), recursive=True)
        custody.revoke_key(case, a, b.verifier.key_id, "left the team (fictional)")
    finally:
        case.close()
    conn = sqlite3.connect(built.root / "catalog.sqlite")
    try:
        empty = [t for t in catalog.SCHEMA if not conn.execute(f'SELECT 1 FROM "{t}"').fetchone()]
    finally:
        conn.close()
    assert not empty, f"the base case leaves {empty} empty"
    return built.root


@pytest.fixture(autouse=True)
def _plain_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.delenv("EVIDENCE_CASE", raising=False)


# --- damaging a copy and verifying it ------------------------------------------------------


def _copy(base: Path, tmp_path: Path) -> Path:
    root = tmp_path / "case"
    shutil.copytree(base, root, symlinks=True)
    return root


def _damage(root: Path, statements: tuple[str, ...]) -> None:
    """Run ``statements`` on the copy's catalog, its append-only triggers dropped first and put
    back after (where their table is still there), so that the damage is all verify finds."""
    conn = sqlite3.connect(root / "catalog.sqlite", isolation_level=None)
    try:
        triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        saved = triggers.fetchall()
        for name, _sql in saved:
            conn.execute(f'DROP TRIGGER "{name}"')
        for statement in statements:
            conn.execute(statement)
        for _name, sql in saved:
            with contextlib.suppress(sqlite3.Error):
                conn.execute(sql)
    finally:
        conn.close()


@contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def hang(signum: int, frame: object) -> None:
        raise TimeoutError(f"verify took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _verify(root: Path, *args: str) -> CliResult:
    with _time_limit(TIME_LIMIT):
        result = run_cli("verify", "--case", root, *args)
    assert "unexpected error" not in result.output, result.output
    assert result.exception is None, repr(result.exception)
    return result


def _findings(root: Path) -> list[Finding]:
    """``evidence verify --json`` on the copy: exit 1, every finding, each readable."""
    result = _verify(root, "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False
    findings = [Finding(**finding) for finding in report["findings"]]
    assert findings
    # The report for a person: every line printable (no control or direction characters).
    for_a_person = CaseReport(report["case"], report["events"], report["objects"], findings)
    for line in for_a_person.text_lines():
        assert line.isprintable(), repr(line)
    return findings


def _assert_found(
    findings: list[Finding], code: str, subject: str | None, seq: int | None = None
) -> Finding:
    """The first finding of ``code`` whose subject starts with ``subject`` (and of ``seq``)."""
    for finding in findings:
        if finding.code != code:
            continue
        if subject is not None and not (finding.subject or "").startswith(subject):
            continue
        if seq is not None and finding.seq != seq:
            continue
        return finding
    shown = "\n".join(f.describe() for f in findings)
    raise AssertionError(f"no {code} finding for {subject} (seq {seq}) in:\n{shown}")


@dataclass(frozen=True)
class Damage:
    """SQL statements that damage the catalog, and the finding they must give."""

    statements: tuple[str, ...]
    code: str
    subject: str | None
    seq: int | None = None


def _loose(table: str, columns: str) -> tuple[str, ...]:
    """Recreate ``table`` with the same rows but untyped columns, no key and no NOT NULL, as a
    hand-made copy could: then any value of any type can stand in any column."""
    return (
        f'ALTER TABLE "{table}" RENAME TO "{table}_old"',
        f'CREATE TABLE "{table}" ({columns})',
        f'INSERT INTO "{table}" SELECT * FROM "{table}_old"',
        f'DROP TABLE "{table}_old"',
    )


LOG = "seq, leaf, leaf_hash, time, action, actor, subject"
NODES = "level, idx, hash"
CHECKPOINTS = "size, root, note, made_at"
# CHECK constraints (length of a hash, seq >= 0) are not enforced while this is on.
NO_CHECKS = "PRAGMA ignore_check_constraints = ON"
AT = f"WHERE seq = {ITEM_SEQ}"
NODE = "WHERE level = 1 AND idx = 1"
CHECKPOINT = "WHERE size = 10"


def _param(
    name: str, statements: tuple[str, ...], code: str, subject: str | None, seq: int | None = None
) -> Any:
    """One case of the matrix: ``statements`` must give a ``code`` finding naming ``subject``."""
    return pytest.param(Damage(statements, code, subject, seq), id=name)


def _log_column_damages() -> list[Any]:
    params = []
    for column in ("time", "action", "actor", "subject"):
        for kind, statements in (
            ("blob", (f"UPDATE log SET {column} = CAST({column} AS BLOB) {AT}",)),
            ("integer", (f"UPDATE log SET {column} = 5 {AT}",)),
            ("invalid-utf8", (f"UPDATE log SET {column} = CAST(X'61ff' AS TEXT) {AT}",)),
            ("null", (*_loose("log", LOG), f"UPDATE log SET {column} = NULL {AT}")),
        ):
            damage = Damage(statements, "log-column-mismatch", f"log.{column}", ITEM_SEQ)
            params.append(pytest.param(damage, id=f"log.{column}-{kind}"))
    return params


# fmt: off
LOG_DAMAGES = [
    # The crash this matrix started from: replace() gives text, not a blob.
    _param("log.leaf-text-edited", (f"UPDATE log SET leaf = replace(leaf, 'handed-over', 'handed-ovar') {AT}",), "log-value-invalid", "log.leaf", ITEM_SEQ),
    _param("log.leaf-text-same-bytes", (f"UPDATE log SET leaf = CAST(leaf AS TEXT) {AT}",), "log-value-invalid", "log.leaf", ITEM_SEQ),
    _param("log.leaf-integer", (f"UPDATE log SET leaf = 42 {AT}",), "log-value-invalid", "log.leaf", ITEM_SEQ),
    _param("log.leaf-real", (f"UPDATE log SET leaf = 4.5 {AT}",), "log-value-invalid", "log.leaf", ITEM_SEQ),
    _param("log.leaf-invalid-utf8", (f"UPDATE log SET leaf = CAST(X'ff00fe' AS TEXT) {AT}",), "log-value-invalid", "log.leaf", ITEM_SEQ),
    _param("log.leaf-null", (*_loose("log", LOG), f"UPDATE log SET leaf = NULL {AT}"), "log-value-invalid", "log.leaf", ITEM_SEQ),
    _param("log.leaf-empty", (f"UPDATE log SET leaf = X'' {AT}",), "leaf-malformed", None, ITEM_SEQ),
    _param("log.leaf-20-MB-of-zeros", (f"UPDATE log SET leaf = zeroblob(20000000) {AT}",), "leaf-malformed", None, ITEM_SEQ),
    _param("log.leaf_hash-text", (NO_CHECKS, f"UPDATE log SET leaf_hash = CAST(leaf_hash AS TEXT) {AT}"), "log-value-invalid", "log.leaf_hash", ITEM_SEQ),
    _param("log.leaf_hash-hex-text", (NO_CHECKS, f"UPDATE log SET leaf_hash = hex(leaf_hash) {AT}"), "log-value-invalid", "log.leaf_hash", ITEM_SEQ),
    _param("log.leaf_hash-1-byte", (NO_CHECKS, f"UPDATE log SET leaf_hash = X'00' {AT}"), "log-value-invalid", "log.leaf_hash", ITEM_SEQ),
    _param("log.leaf_hash-integer", (NO_CHECKS, f"UPDATE log SET leaf_hash = 7 {AT}"), "log-value-invalid", "log.leaf_hash", ITEM_SEQ),
    _param("log.leaf_hash-null", (*_loose("log", LOG), f"UPDATE log SET leaf_hash = NULL {AT}"), "log-value-invalid", "log.leaf_hash", ITEM_SEQ),
    _param("log.seq-negative", (NO_CHECKS, "UPDATE log SET seq = -5 WHERE seq = (SELECT max(seq) FROM log)"), "log-value-invalid", "log.seq", -5),
    _param("log.seq-negative-genesis", (NO_CHECKS, "UPDATE log SET seq = -1 WHERE seq = 0"), "log-value-invalid", "log.seq", -1),
    _param("log.seq-largest-integer", ("UPDATE log SET seq = 9223372036854775807 WHERE seq = (SELECT max(seq) FROM log)",), "log-value-invalid", "log.seq", 2**63 - 1),
    _param("log.seq-huge", ("UPDATE log SET seq = 1000000000000000 WHERE seq = (SELECT max(seq) FROM log)",), "seq-gap", None),
    _param("log.seq-text", (*_loose("log", LOG), f"UPDATE log SET seq = 'two' {AT}"), "seq-gap", None, 2),
    _param("log.seq-real", (*_loose("log", LOG), f"UPDATE log SET seq = 2.5 {AT}"), "log-value-invalid", "log.seq"),
    _param("log.seq-real-integral", (*_loose("log", LOG), f"UPDATE log SET seq = 2.0 {AT}"), "log-value-invalid", "log.seq"),
    _param("log.seq-null", (*_loose("log", LOG), f"UPDATE log SET seq = NULL {AT}"), "log-value-invalid", "log.seq"),
    _param("log.seq-blob", (*_loose("log", LOG), f"UPDATE log SET seq = X'02' {AT}"), "log-value-invalid", "log.seq"),
    _param("log-row-twice", (*_loose("log", LOG), f"INSERT INTO log SELECT * FROM log {AT}"), "log-row-duplicated", "log", ITEM_SEQ),
    *_log_column_damages(),
    _param("log.time-not-a-time", (f"UPDATE log SET time = 'yesterday' {AT}",), "log-column-mismatch", "log.time"),
    _param("log-dropped", ("DROP TABLE log",), "log-table-missing", "log"),
    _param("log-emptied", ("DELETE FROM log",), "checkpoint-rollback", None),
    _param("log-without-subject", ("ALTER TABLE log DROP COLUMN subject",), "log-column-missing", "log.subject"),
    *(
        _param(f"log-without-{column}", ("ALTER TABLE log RENAME TO log_old", f"CREATE TABLE log ({kept})", f"INSERT INTO log SELECT {kept} FROM log_old", "DROP TABLE log_old"), "log-column-missing", f"log.{column}")
        for column, kept in (
            ("seq", "leaf, leaf_hash, time, action, actor, subject"),
            ("leaf", "seq, leaf_hash, time, action, actor, subject"),
            ("leaf_hash", "seq, leaf, time, action, actor, subject"),
        )
    ),
]
# fmt: on

# fmt: off
NODE_DAMAGES = [
    _param("log_nodes.hash-text", (NO_CHECKS, f"UPDATE log_nodes SET hash = CAST(hash AS TEXT) {NODE}"), "log-value-invalid", "log_nodes.hash"),
    _param("log_nodes.hash-invalid-utf8", (NO_CHECKS, f"UPDATE log_nodes SET hash = CAST(X'ff' || hash AS TEXT) {NODE}"), "log-value-invalid", "log_nodes.hash"),
    _param("log_nodes.hash-1-byte", (NO_CHECKS, f"UPDATE log_nodes SET hash = X'01' {NODE}"), "log-value-invalid", "log_nodes.hash"),
    _param("log_nodes.hash-integer", (NO_CHECKS, f"UPDATE log_nodes SET hash = 3 {NODE}"), "log-value-invalid", "log_nodes.hash"),
    _param("log_nodes.hash-null", (*_loose("log_nodes", NODES), f"UPDATE log_nodes SET hash = NULL {NODE}"), "log-value-invalid", "log_nodes.hash"),
    _param("log_nodes.level-text", (f"UPDATE log_nodes SET level = 'one' {NODE}",), "log-value-invalid", "log_nodes.level"),
    _param("log_nodes.level-largest-integer", (f"UPDATE log_nodes SET level = 9223372036854775807 {NODE}",), "log-value-invalid", "log_nodes.level"),
    _param("log_nodes.level-null", (*_loose("log_nodes", NODES), f"UPDATE log_nodes SET level = NULL {NODE}"), "log-value-invalid", "log_nodes.level"),
    _param("log_nodes.idx-negative", (NO_CHECKS, f"UPDATE log_nodes SET idx = -1 {NODE}"), "log-value-invalid", "log_nodes.idx"),
    _param("log_nodes.idx-real", (f"UPDATE log_nodes SET idx = 1.5 {NODE}",), "log-value-invalid", "log_nodes.idx"),
    _param("log_nodes-row-twice", (*_loose("log_nodes", NODES), f"INSERT INTO log_nodes SELECT level, idx, zeroblob(32) FROM log_nodes {NODE}"), "log-row-duplicated", "log_nodes"),
    _param("log_nodes-dropped", ("DROP TABLE log_nodes",), "log-table-missing", "log_nodes"),
    _param("log_nodes-emptied", ("DELETE FROM log_nodes",), "node-missing", "node 0/0"),
    _param("log_nodes-without-hash", ("ALTER TABLE log_nodes RENAME TO nodes_old", "CREATE TABLE log_nodes (level, idx)", "INSERT INTO log_nodes SELECT level, idx FROM nodes_old", "DROP TABLE nodes_old"), "log-column-missing", "log_nodes.hash"),
]
# fmt: on

# fmt: off
CHECKPOINT_DAMAGES = [
    _param("checkpoints.root-text", (NO_CHECKS, f"UPDATE checkpoints SET root = CAST(root AS TEXT) {CHECKPOINT}"), "log-value-invalid", "checkpoints.root", 9),
    _param("checkpoints.root-1-byte", (NO_CHECKS, f"UPDATE checkpoints SET root = X'00' {CHECKPOINT}"), "log-value-invalid", "checkpoints.root", 9),
    _param("checkpoints.root-null", (*_loose("checkpoints", CHECKPOINTS), f"UPDATE checkpoints SET root = NULL {CHECKPOINT}"), "log-value-invalid", "checkpoints.root", 9),
    _param("checkpoints.note-text", (f"UPDATE checkpoints SET note = CAST(note AS TEXT) {CHECKPOINT}",), "log-value-invalid", "checkpoints.note", 9),
    _param("checkpoints.note-invalid-utf8", (f"UPDATE checkpoints SET note = CAST(X'ff' || note AS TEXT) {CHECKPOINT}",), "checkpoint-malformed", "checkpoint 10"),
    _param("checkpoints.note-integer", (f"UPDATE checkpoints SET note = 12 {CHECKPOINT}",), "log-value-invalid", "checkpoints.note", 9),
    _param("checkpoints.note-null", (*_loose("checkpoints", CHECKPOINTS), f"UPDATE checkpoints SET note = NULL {CHECKPOINT}"), "log-value-invalid", "checkpoints.note", 9),
    _param("checkpoints.made_at-blob", (f"UPDATE checkpoints SET made_at = X'00ff' {CHECKPOINT}",), "log-value-invalid", "checkpoints.made_at", 9),
    _param("checkpoints.size-negative", (NO_CHECKS, f"UPDATE checkpoints SET size = -10 {CHECKPOINT}"), "log-value-invalid", "checkpoints.size"),
    _param("checkpoints.size-largest-integer", (f"UPDATE checkpoints SET size = 9223372036854775807 {CHECKPOINT}",), "checkpoint-row-mismatch", None),
    _param("checkpoints.size-text", (*_loose("checkpoints", CHECKPOINTS), f"UPDATE checkpoints SET size = 'ten' {CHECKPOINT}"), "log-value-invalid", "checkpoints.size"),
    _param("checkpoints.size-null", (*_loose("checkpoints", CHECKPOINTS), f"UPDATE checkpoints SET size = NULL {CHECKPOINT}"), "log-value-invalid", "checkpoints.size"),
    _param("checkpoints-row-twice", (*_loose("checkpoints", CHECKPOINTS), f"INSERT INTO checkpoints SELECT * FROM checkpoints {CHECKPOINT}"), "log-row-duplicated", "checkpoints", 9),
    _param("checkpoints-dropped", ("DROP TABLE checkpoints",), "log-table-missing", "checkpoints"),
    _param("checkpoints-without-note", ("ALTER TABLE checkpoints RENAME TO checkpoints_old", "CREATE TABLE checkpoints (size INTEGER PRIMARY KEY, root, made_at)", "INSERT INTO checkpoints SELECT size, root, made_at FROM checkpoints_old", "DROP TABLE checkpoints_old"), "log-column-missing", "checkpoints.note"),
]
# fmt: on


def _projection_damages() -> list[Any]:
    """For every projection table: each kind of damage to a key column, a text column, an
    integer column, its rows, the table and a column."""
    params = []
    for table, (columns, pk) in catalog.SCHEMA.items():
        untyped = ", ".join(f'"{column}"' for column in columns)
        key = pk[0]
        first = f'WHERE rowid = (SELECT min(rowid) FROM "{table}")'
        text = next(c for c, kind in columns.items() if kind == "TEXT" and c not in pk)
        numbers = [c for c, kind in columns.items() if kind == "INTEGER" and c not in pk]
        row = f"{table}["

        def add(name: str, statements: tuple[str, ...], code: str, subject: str) -> None:
            params.append(_param(name, statements, code, subject))

        # A key of another type is another row: the log's row is missing, this one unexplained.
        for kind, value in (
            ("blob", f'CAST("{key}" AS BLOB)'),
            ("invalid-utf8", f"CAST(X'ff' || \"{key}\" AS TEXT)"),
            ("integer", "12345"),
            ("null", "NULL"),
        ):
            add(
                f"{table}.{key}-{kind}",
                (*_loose(table, untyped), f'UPDATE "{table}" SET "{key}" = {value} {first}'),
                "catalog-row-unexplained",
                row,
            )
        for kind, value in (
            ("blob", f'CAST("{text}" AS BLOB)'),
            ("invalid-utf8", "CAST(X'ff61' AS TEXT)"),
            ("integer", "7"),
        ):
            add(
                f"{table}.{text}-{kind}",
                (f'UPDATE "{table}" SET "{text}" = {value} {first}',),
                "catalog-row-changed",
                row,
            )
        add(
            f"{table}.{text}-null",
            (*_loose(table, untyped), f'UPDATE "{table}" SET "{text}" = NULL {first}'),
            "catalog-row-changed",
            row,
        )
        for number in numbers[:1]:
            for kind, value in (
                ("text", "'many'"),
                ("largest-integer", "9223372036854775807"),
                ("negative", "-1"),
                ("infinite", "1e308 * 10"),
            ):
                add(
                    f"{table}.{number}-{kind}",
                    (f'UPDATE "{table}" SET "{number}" = {value} {first}',),
                    "catalog-row-changed",
                    row,
                )
            add(
                f"{table}.{number}-real-integral",
                (
                    *_loose(table, untyped),
                    f'UPDATE "{table}" SET "{number}" = "{number}" + 0.0 {first}',
                ),
                "catalog-row-changed",
                row,
            )
        add(
            f"{table}-row-twice",
            (*_loose(table, untyped), f'INSERT INTO "{table}" SELECT * FROM "{table}" {first}'),
            "catalog-row-duplicated",
            row,
        )
        values = ", ".join("'zz-extra'" if columns[c] == "TEXT" else "999" for c in pk)
        add(
            f"{table}-row-added",
            (f'INSERT INTO "{table}" ({", ".join(pk)}) VALUES ({values})',),
            "catalog-row-unexplained",
            row,
        )
        add(f"{table}-dropped", (f'DROP TABLE "{table}"',), "catalog-table-missing", table)
        # Dropped through a copy: ALTER TABLE refuses to drop an indexed or key column.
        kept = ", ".join(f'"{c}"' for c in columns if c != text)
        add(
            f"{table}-without-{text}",
            (
                f'ALTER TABLE "{table}" RENAME TO "{table}_old"',
                f'CREATE TABLE "{table}" ({kept})',
                f'INSERT INTO "{table}" SELECT {kept} FROM "{table}_old"',
                f'DROP TABLE "{table}_old"',
            ),
            "catalog-column-missing",
            f"{table}.{text}",
        )
        kept = ", ".join(f'"{c}"' for c in columns if c != key)
        add(
            f"{table}-without-{key}",
            (
                f'ALTER TABLE "{table}" RENAME TO "{table}_old"',
                f'CREATE TABLE "{table}" ({kept})',
                f'INSERT INTO "{table}" SELECT {kept} FROM "{table}_old"',
                f'DROP TABLE "{table}_old"',
            ),
            "catalog-column-missing",
            f"{table}.{key}",
        )
    return params


@pytest.mark.parametrize(
    "damage", [*LOG_DAMAGES, *NODE_DAMAGES, *CHECKPOINT_DAMAGES, *_projection_damages()]
)
def test_a_damaged_catalog_is_a_finding(base: Path, tmp_path: Path, damage: Damage) -> None:
    root = _copy(base, tmp_path)
    _damage(root, damage.statements)
    _assert_found(_findings(root), damage.code, damage.subject, damage.seq)


# --- what the findings and the report say ----------------------------------------------------


def test_the_untouched_copy_verifies_clean(base: Path, tmp_path: Path) -> None:
    root = _copy(base, tmp_path)
    result = _verify(root)
    assert result.exit_code == 0, result.output


def test_a_leaf_stored_as_text_is_named_by_table_seq_and_column(base: Path, tmp_path: Path) -> None:
    root = _copy(base, tmp_path)
    _damage(root, (f"UPDATE log SET leaf = CAST(leaf AS TEXT) {AT}",))
    # The same bytes, only of another type: nothing else differs.
    findings = _findings(root)
    assert [(f.code, f.seq, f.subject) for f in findings] == [
        ("log-value-invalid", ITEM_SEQ, "log.leaf")
    ]
    assert "holds text of" in findings[0].message
    text = _verify(root)
    assert f"[log-value-invalid] seq {ITEM_SEQ}, log.leaf: the log table's leaf column" in (
        text.stdout
    )


def test_text_that_is_not_utf8_is_described_not_printed(base: Path, tmp_path: Path) -> None:
    root = _copy(base, tmp_path)
    _damage(
        root,
        (
            # Invalid UTF-8 and an escape sequence that would recolour the auditor's terminal.
            f"UPDATE log SET action = CAST(X'1b5b33316dff' AS TEXT) {AT}",
            "UPDATE entities SET title = CAST(X'1b5b33316d' AS TEXT)",
        ),
    )
    findings = _findings(root)
    column = _assert_found(findings, "log-column-mismatch", "log.action", ITEM_SEQ)
    assert "text that is not valid UTF-8 (6 bytes)" in column.message
    _assert_found(findings, "catalog-row-changed", "entities[")
    text = _verify(root)
    assert "\x1b" not in text.output
    assert text.exit_code == 1


def test_a_log_column_with_a_direction_override_is_shown_escaped(
    base: Path, tmp_path: Path
) -> None:
    root = _copy(base, tmp_path)
    # U+202E would show the rest of the line right to left.
    _damage(root, (f"UPDATE log SET actor = 'investigator-a' || char(8238) || 'x' {AT}",))
    finding = _assert_found(_findings(root), "log-column-mismatch", "log.actor", ITEM_SEQ)
    assert "\u202e" not in finding.message
    assert "the text 'investigator-a\\u202ex'" in finding.message


def test_a_text_key_that_is_not_printable_is_shown_escaped(base: Path, tmp_path: Path) -> None:
    root = _copy(base, tmp_path)
    _damage(root, ("INSERT INTO entities (id) VALUES ('INC-9' || char(27) || '[2J')",))
    findings = _findings(root)
    planted = _assert_found(findings, "catalog-row-unexplained", "entities[")
    assert planted.subject == "entities[the text 'INC-9\\x1b[2J']"


def test_a_real_where_the_log_gives_an_integer_says_so(base: Path, tmp_path: Path) -> None:
    root = _copy(base, tmp_path)
    untyped = ", ".join(f'"{c}"' for c in catalog.SCHEMA["erns"][0])
    _damage(root, (*_loose("erns", untyped), "UPDATE erns SET number_first = number_first + 0.0"))
    changed = _assert_found(_findings(root), "catalog-row-changed", "erns[")
    assert "number_first (the real number" in changed.message
    assert "where the log gives an integer" in changed.message


def test_a_dropped_table_is_one_finding_not_one_per_row(base: Path, tmp_path: Path) -> None:
    root = _copy(base, tmp_path)
    _damage(root, ("DROP TABLE items",))
    findings = _findings(root)
    assert [(f.code, f.subject) for f in findings] == [("catalog-table-missing", "items")]
    assert "the log produces 7 row(s) for it" in findings[0].message


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        pytest.param(
            lambda path: path.write_bytes(b"not a database at all, " * 200),
            "file is not a database",
            id="not-a-database",
        ),
        pytest.param(
            lambda path: _overwrite(path, 8192, b"\xff" * 4096),
            "is damaged: SQLite cannot read it",
            id="damaged-page",
        ),
        pytest.param(
            lambda path: _damage(
                path.parent,
                (
                    "PRAGMA writable_schema = ON",
                    "UPDATE sqlite_master SET sql = 'CREATE TABLE items (' WHERE name = 'items'",
                ),
            ),
            "malformed database schema",
            id="schema-garbled",
        ),
    ],
)
def test_a_catalog_sqlite_cannot_read_exits_3_and_says_what_to_do(
    base: Path, tmp_path: Path, damage: Any, said: str
) -> None:
    root = _copy(base, tmp_path)
    for name in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (root / name).unlink(missing_ok=True)
    damage(root / "catalog.sqlite")
    result = _verify(root)
    assert result.exit_code == 3, result.output
    assert said in result.stderr
    assert "backup" in result.stderr


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)


# --- the report for a person: causes first, consequences grouped -----------------------------


def test_one_changed_leaf_leads_with_its_cause_and_groups_what_follows(
    base: Path, tmp_path: Path
) -> None:
    root = _copy(base, tmp_path)
    _damage(root, (f"UPDATE log SET leaf = replace(leaf, 'handed-over', 'handed-ovar') {AT}",))
    findings = _findings(root)
    codes = [f.code for f in findings]
    checkpoints = codes.count("checkpoint-root-mismatch")
    nodes = codes.count("node-mismatch")
    assert checkpoints > 3
    assert nodes > 3
    report = CaseReport("UA-TEST-0001", 0, 0, findings)
    lines = report.text_lines()
    assert lines[0].startswith(f"[log-value-invalid] seq {ITEM_SEQ}, log.leaf:")
    assert lines[1].startswith(f"[leaf-hash-mismatch] seq {ITEM_SEQ}:")
    following = next(n for n, line in enumerate(lines) if "follow from those above" in line)
    causes, grouped = lines[:following], lines[following + 1 :]
    assert not any("checkpoint-root-mismatch" in line for line in causes)
    sizes = [f.seq + 1 for f in findings if f.code == "checkpoint-root-mismatch" and f.seq]
    assert [line for line in grouped if "[checkpoint-root-mismatch]" in line] == [
        f"  [checkpoint-root-mismatch] {checkpoints} checkpoints ({min(sizes)} .. {max(sizes)}) "
        "do not produce their signed roots"
    ]
    [node_line] = [line for line in grouped if "[node-mismatch]" in line]
    assert node_line.startswith(f"  [node-mismatch] {nodes} stored Merkle nodes (level/index 0/2")
    assert any(line.startswith(f"  [prev-broken] seq {ITEM_SEQ + 1}:") for line in grouped)
    assert lines[following].startswith(f"{len(findings) - len(causes)} more finding(s)")
    # --json keeps every one of them.
    assert len(findings) == len(causes) + checkpoints + nodes + 2  # prev-broken, nodes-mismatch


def test_a_log_that_cannot_be_read_is_the_one_cause(base: Path, tmp_path: Path) -> None:
    root = _copy(base, tmp_path)
    _damage(root, ("ALTER TABLE log RENAME TO events",))
    findings = _findings(root)
    lines = CaseReport("UA-TEST-0001", 0, 0, findings).text_lines()
    assert lines[0].startswith("[log-table-missing] the catalog has no log table")
    assert "follow from those above" in lines[1]
    assert len(lines) < 10 < len(findings)


@pytest.mark.parametrize("trigger", ["log_no_update", "log_seq_follows", "checkpoints_no_delete"])
def test_a_dropped_trigger_is_a_finding_of_its_own(
    base: Path, tmp_path: Path, trigger: str
) -> None:
    root = _copy(base, tmp_path)
    conn = sqlite3.connect(root / "catalog.sqlite", isolation_level=None)
    try:
        conn.execute(f'DROP TRIGGER "{trigger}"')
    finally:
        conn.close()
    findings = _findings(root)
    assert [(f.code, f.subject) for f in findings] == [("log-guard-missing", trigger)]
    assert "dropped behind the toolkit" in findings[0].message
