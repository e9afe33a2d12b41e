"""Fuzzing of every parser that reads untrusted bytes, and of file names at ingest.

Random bytes, truncations and bit flips of valid inputs must end in a clear ``CustodyError``
(or a successful parse), never in another exception. A file may be named with any bytes Linux
allows; its stored ``name_b64`` gives those bytes back exactly.
"""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain_of_custody import (
    Checkpoint,
    CustodyError,
    ProofFile,
    VerifierKey,
    format_proof,
    load_signer,
    make_leaf,
    open_checkpoint,
    parse_leaf,
    parse_note,
    parse_proof,
    save_signer,
    sign_checkpoint,
    verify_note,
    verify_proof,
)
from chain_of_custody.events import Event
from chain_of_custody.merkle import MemoryTree
from evidence.acquire import display_name
from evidence.ingest import ingest
from evidence.models import ItemOptions
from evidence.workspace import open_case
from tests.conftest import PASSPHRASE, build_case, fixed_signer

SIGNER = fixed_signer("investigator-a")
KEY = SIGNER.verifier
ORIGIN = "evidence-locker/UA-TEST-0001"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _leaf(seq: int, prev: str) -> bytes:
    event = Event(
        seq=seq,
        time="2025-03-01T09:00:00.000000Z",
        case="UA-TEST-0001",
        action="item.ingested" if seq else "key.enrolled",
        actor=KEY.key_id,
        subject=KEY.key_id if seq == 0 else "ab" * 32,
        data={"verifier": KEY.to_note_text(), "role": "investigator"} if seq == 0 else {"n": seq},
        prev=prev,
    )
    return make_leaf(event, SIGNER)


def _valid_inputs() -> dict[str, bytes]:
    tree = MemoryTree()
    leaves = []
    prev = ""
    for seq in range(5):
        leaf = _leaf(seq, prev)
        leaves.append(leaf)
        tree.append(leaf)
        prev = parse_leaf(leaf).leaf_hash.hex()
    body = Checkpoint(ORIGIN, 5, tree.root())
    checkpoint = sign_checkpoint(body, [SIGNER])
    proof = format_proof(
        ProofFile(
            leaf=leaves[3],
            index=3,
            path=tuple(tree.view.inclusion_proof(3, 5)),
            checkpoint=checkpoint,
        )
    )
    return {
        "leaf": leaves[3],
        "checkpoint": checkpoint,
        "checkpoint-body": body.to_text().encode(),
        "proof": proof,
        "key-note": KEY.to_note_text().encode(),
        "key-pem": KEY.to_pem(),
    }


VALID = _valid_inputs()


def _parse_leaf(data: bytes) -> object:
    return parse_leaf(data)


def _parse_checkpoint(data: bytes) -> object:
    return open_checkpoint(data, [KEY])


def _parse_checkpoint_text(data: bytes) -> object:
    return Checkpoint.from_text(data)


def _parse_note(data: bytes) -> object:
    note = parse_note(data)
    return verify_note(note, [KEY])


def _parse_proof(data: bytes) -> object:
    return verify_proof(parse_proof(data), [KEY])


def _parse_key_note(data: bytes) -> object:
    return VerifierKey.from_note_text(data.decode("utf-8", "surrogateescape"))


def _parse_key_pem(data: bytes) -> object:
    return VerifierKey.from_pem("investigator-a", data)


PARSERS: dict[str, tuple[Callable[[bytes], object], str]] = {
    "leaf": (_parse_leaf, "leaf"),
    "checkpoint": (_parse_checkpoint, "checkpoint"),
    "checkpoint-text": (_parse_checkpoint_text, "checkpoint-body"),
    "signed-note": (_parse_note, "checkpoint"),
    "proof": (_parse_proof, "proof"),
    "key-note": (_parse_key_note, "key-note"),
    "key-pem": (_parse_key_pem, "key-pem"),
}


def _only_custody_errors(parse: Callable[[bytes], object], data: bytes) -> None:
    try:
        parse(data)
    except CustodyError as exc:
        assert exc.message, "a CustodyError must say what is wrong"
        assert isinstance(exc.hint, str)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_valid_input_parses(name: str) -> None:
    parse, valid = PARSERS[name]
    parse(VALID[valid])


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes(name: str, data: bytes) -> None:
    _only_custody_errors(PARSERS[name][0], data)


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(choice=st.data())
def test_truncations(name: str, choice: st.DataObject) -> None:
    parse, valid = PARSERS[name]
    data = VALID[valid]
    cut = choice.draw(st.integers(min_value=0, max_value=len(data) - 1))
    _only_custody_errors(parse, data[:cut])


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(choice=st.data())
def test_bit_flips(name: str, choice: st.DataObject) -> None:
    parse, valid = PARSERS[name]
    data = bytearray(VALID[valid])
    flips = choice.draw(st.lists(st.integers(0, len(data) * 8 - 1), min_size=1, max_size=3))
    for bit in flips:
        data[bit // 8] ^= 1 << (bit % 8)
    _only_custody_errors(parse, bytes(data))


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(choice=st.data())
def test_spliced_lines(name: str, choice: st.DataObject) -> None:
    # Lines dropped, repeated or swapped: the structural edits a hand-edited file shows.
    parse, valid = PARSERS[name]
    lines = VALID[valid].split(b"\n")
    edited = choice.draw(st.lists(st.sampled_from(lines), max_size=len(lines) + 2))
    _only_custody_errors(parse, b"\n".join(edited))


def test_a_flip_in_a_signed_input_never_verifies() -> None:
    # Stronger than "no crash": a changed byte of a checkpoint or proof is never accepted.
    for valid in ("checkpoint", "proof"):
        data = VALID[valid]
        for position in range(0, len(data), max(1, len(data) // 97)):
            changed = bytearray(data)
            changed[position] ^= 0x20
            parse = _parse_checkpoint if valid == "checkpoint" else _parse_proof
            with pytest.raises(CustodyError):
                parse(bytes(changed))


# --- key files -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("keyfile") / "a.key"
    save_signer(SIGNER, path, PASSPHRASE.encode())
    return path.read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(choice=st.data())
def test_damaged_key_files(
    key_file: bytes, tmp_path_factory: pytest.TempPathFactory, choice: Any
) -> None:
    data = bytearray(key_file)
    kind = choice.draw(st.sampled_from(["truncate", "flip", "random"]))
    if kind == "truncate":
        data = data[: choice.draw(st.integers(0, len(data) - 1))]
    elif kind == "flip":
        bit = choice.draw(st.integers(0, len(data) * 8 - 1))
        data[bit // 8] ^= 1 << (bit % 8)
    else:
        data = bytearray(choice.draw(st.binary(max_size=400)))
    path = tmp_path_factory.mktemp("damaged") / "k.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, bytes(data))
    os.close(fd)
    try:
        signer = load_signer(path, PASSPHRASE.encode())
    except CustodyError as exc:
        assert PASSPHRASE not in exc.message + exc.hint
    else:
        # A flip in the PEM armour can leave the key intact; anything that decrypts to another
        # key or name no longer matches the Public-Key line and is refused.
        assert signer.verifier.to_note_text() in key_file.decode("ascii", "replace")


def test_a_damaged_key_file_is_never_taken_for_another_key(key_file: bytes, tmp_path: Path) -> None:
    name_line, public_line, pem = key_file.split(b"\n", 2)
    header = name_line + b"\n" + public_line
    body = b"".join(pem.split(b"\n")[1:-2])
    der = bytearray(base64.b64decode(body))
    # The encrypted 48-byte PKCS#8 Ed25519 key plus padding is the last 64 bytes (4 blocks);
    # a flip in block 1 garbles block 1 and flips one bit of block 2: both are seed bytes.
    der[-48] ^= 0x01
    lines = base64.encodebytes(bytes(der)).replace(b"\n", b"")
    armour = b"\n".join(lines[i : i + 64] for i in range(0, len(lines), 64))
    damaged = (
        header
        + b"\n-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        + armour
        + b"\n-----END ENCRYPTED PRIVATE KEY-----\n"
    )
    path = tmp_path / "damaged.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, damaged)
    os.close(fd)
    with pytest.raises(CustodyError):
        load_signer(path, PASSPHRASE.encode())


# --- file names ----------------------------------------------------------------------------

_COUNTER = itertools.count()

# Any bytes but "/" and NUL, at most 255 of them, other than "." and "..".
FILE_NAMES = st.binary(min_size=1, max_size=255).filter(
    lambda b: b"/" not in b and b"\x00" not in b and b not in (b".", b"..")
)


@pytest.fixture(scope="module")
def name_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    top = tmp_path_factory.mktemp("names")
    handle = build_case(top / "case", top / "home")
    return handle.root


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=FILE_NAMES)
def test_any_file_name_round_trips(name_case: Path, raw: bytes) -> None:
    folder = os.path.join(os.fsencode(name_case.parent), b"in-%d" % next(_COUNTER))
    os.mkdir(folder)
    path = os.path.join(folder, raw)
    content = b"file named " + base64.b64encode(raw) + b" " + folder
    with open(path, "wb") as handle:
        handle.write(content)
    case = open_case(name_case)
    try:
        report = ingest(case, SIGNER, [Path(os.fsdecode(folder))], options=ItemOptions(),
                        recursive=True)  # fmt: skip
        assert report.ok, report.refused
        [stored] = [f for f in report.files if f.status == "ingested"]
        row = case.db.execute(
            "SELECT name, name_b64, path FROM items WHERE sha256 = ?", [stored.sha256]
        ).fetchone()
    finally:
        case.close()
    name, name_b64, shown_path = row
    assert base64.b64decode(name_b64) == raw
    assert name == display_name(raw)
    assert name.isprintable()
    assert shown_path.endswith(name)
