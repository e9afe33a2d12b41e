"""The least an ingest can do per file, written as plainly as Python allows: a yardstick.

``python floor.py LIST STORE`` takes the NUL-separated file names in ``LIST``
(the list that ``xargs -0 sha256sum`` reads) and, for each file:

- reads it once, in one call;
- computes SHA-256 and SHA-512 of the bytes;
- asks libmagic (python-magic) for its MIME type from the same bytes;
- writes a read-only copy into ``STORE``, named by its SHA-256;
- signs a JSON record of the above with Ed25519.

Two threads do the per-file work (hashlib and libmagic release the GIL); the main thread signs
the records as they come. At the end one ``syncfs`` makes every copy durable, and one SQLite
transaction stores the records.

This is the work SPEC 5 asks of ingest for each item, and nothing more: no custody log, no
Merkle tree or checkpoint, no key unlocking, no checks of what is being ingested, no progress,
no recovery after a crash. The small-file row times it beside the toolkit and ``sha256sum``,
so that the table shows how much of the toolkit's time any ingest of these files would spend.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import sqlite3
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import magic
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

THREADS = 2
CHUNK = 100
_HANDLES = threading.local()


def _store_one(source: bytes, store: Path, number: int) -> dict[str, object]:
    fd = os.open(source, os.O_RDONLY)
    try:
        data = os.read(fd, os.fstat(fd).st_size + 1)
    finally:
        os.close(fd)
    sha256 = hashlib.sha256(data).hexdigest()
    sha512 = hashlib.sha512(data).hexdigest()
    handle = getattr(_HANDLES, "magic", None)
    if handle is None:
        handle = _HANDLES.magic = magic.Magic(mime=True)
    mime = handle.from_buffer(data)
    temp = store / f"tmp-{number}"
    out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        os.write(out, data)
    finally:
        os.close(out)
    folder = store / sha256[:2]
    folder.mkdir(exist_ok=True)
    with contextlib.suppress(FileExistsError):  # the same bytes are stored already
        os.link(temp, folder / sha256)
    os.unlink(temp)
    return {
        "path": os.fsdecode(source),
        "sha256": sha256,
        "sha512": sha512,
        "mime": mime,
        "size": len(data),
    }


def _store_chunk(chunk: list[tuple[int, bytes]], store: Path) -> list[dict[str, object]]:
    return [_store_one(source, store, number) for number, source in chunk]


def _sync(store: Path) -> None:
    fd = os.open(store, os.O_RDONLY)
    try:
        if ctypes.CDLL(None).syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python floor.py LIST STORE", file=sys.stderr)
        return 2
    names = [n for n in Path(argv[0]).read_bytes().split(b"\0") if n]
    store = Path(argv[1])
    store.mkdir(parents=True)
    key = Ed25519PrivateKey.generate()
    numbered = list(enumerate(names))
    chunks = [numbered[i : i + CHUNK] for i in range(0, len(numbered), CHUNK)]
    rows = []
    with ThreadPoolExecutor(THREADS) as pool:
        for records in pool.map(lambda chunk: _store_chunk(chunk, store), chunks):
            for record in records:
                text = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
                rows.append((text, key.sign(text)))
    _sync(store)
    catalog = sqlite3.connect(store / "records.sqlite")
    with catalog:
        catalog.execute("CREATE TABLE records (record BLOB, signature BLOB)")
        catalog.executemany("INSERT INTO records VALUES (?, ?)", rows)
    catalog.close()
    print(f"{len(rows)} files stored in {store}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
