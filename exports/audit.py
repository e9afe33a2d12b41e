"""``evidence audit``: check a submission bundle offline, with nothing but the bundle and keys.

The bundle is untrusted input. It is checked from the outside in, and every problem becomes a
:class:`~chain_of_custody.Finding` naming the file or ERN:

1. a zip is unpacked into a fresh temporary folder, entry by entry, refusing absolute paths,
   ``..``, symlinks, duplicate names, too many entries, and sizes or compression ratios of a
   zip bomb; nothing is ever written outside that folder, and it is removed afterwards. A bag
   directory is read in place; a symlink given as the bundle itself is followed to the folder
   it names, and inside the bag nothing is followed through a symlink;
2. the bag: ``bagit.txt``, every payload manifest (each listed file present with its hash, no
   file unlisted, no path leading out of the bag), ``Payload-Oxum`` and the tag manifest; every
   file is either under ``data/`` or a tag file at the top of the bag. A file the audit reads
   must be a regular file: a folder, symlink or special file in its place is a finding and is
   never opened;
3. the Ed25519 signature of the tag manifest by the exporting key, which must be trusted, and
   its base64 copy;
4. the signed checkpoint, by a trusted key;
5. each custody event (leaf): its signature by its actor's key;
6. each custody event's proof file ``data/custody/event-proofs/<name>.proof``, named like its
   ``data/custody/events/<name>.leaf``: its leaf byte-identical to the leaf file, its index the
   event's seq, and the inclusion of that leaf in the bundle's checkpoint. A signature shows
   only who made an event; the proof shows that it is in the log the checkpoint commits to. A
   proof file of no event in the bundle is a finding too;
7. each item's proof file ``data/custody/proofs/<ERN>.proof``: inclusion of its leaf in the
   bundle's checkpoint;
8. each original against the event that recorded it (SHA-256 and SHA-512);
9. each ERN that names a proof, an original or a stamped copy against the ``ern.assigned``
   event that gave it: a validly signed and proven event of the bundle (5 and 6) for the same
   subject (the item's sha256, or the testimony document's) whose range starts at that ERN
   (files are named by the first ERN of their range); an assignment event not signed or not
   proven counts for nothing, and a malformed assignment, a second assignment of one subject
   and ranges of two subjects that overlap are findings too;
10. each consistency proof file ``data/custody/consistency/<old size>.proof``
    (:mod:`exports.consistency`): well formed, named for its old size, leading to the
    checkpoint's size (it can only be checked against roots with ``since``);
11. with ``since``: an earlier checkpoint, signed by a trusted key, of the same log and no larger
    than the bundle's; equal sizes must have equal roots, and a smaller one needs the bundle's
    consistency proof from its size, without which the audit reports that consistency could not
    be shown.

Without trusted keys the audit trusts the keys shipped in the bundle and says so in a warning:
that shows the bundle is intact and self-consistent, not who made it. A trusted key is either a
named verifier key (a signed-note line, or a PEM with a ``Key-Name:`` line) or bare key material
(:class:`KeyMaterial`, from a PEM without a name), which trusts the bundle's keys that have that
key material under the names the bundle gives them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from chain_of_custody import (
    Checkpoint,
    Finding,
    InputError,
    Leaf,
    ProofFile,
    VerificationError,
    VerifierKey,
    leaf_hash,
    open_checkpoint,
    parse_leaf,
    parse_note,
    parse_proof,
    strict_b64decode,
    verify_consistency,
    verify_inclusion,
    verify_leaf_signature,
)
from chain_of_custody.errors import EnvironmentProblem, kind_of_mode
from evidence.progress import Progress
from exports.consistency import format_consistency_proof, parse_consistency_proof
from exports.ern import ERN_ASSIGNED, format_ern

# The proof file functions live in exports.consistency; they are re-exported here because the
# audit is where an auditor looks for them.
__all__ = [
    "CONSISTENCY_FOLDER",
    "AuditReport",
    "KeyMaterial",
    "TrustedKey",
    "ZipLimits",
    "audit_bundle",
    "format_consistency_proof",
    "load_since_checkpoint",
    "load_trusted_key",
    "parse_consistency_proof",
    "refuse_trust_inside",
]

TAG_MANIFEST = "tagmanifest-sha256.txt"
CHECKPOINT_FILE = "data/custody/checkpoint.txt"
LISTING_FILE = "data/metadata/items.json"
SIGNATURE_FILE = "tagmanifest-sha256.txt.sig"
SIGNATURE_B64_FILE = "tagmanifest-sha256.txt.sig.b64"
REQUIRED_TAG_FILES = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sha512.txt")
_ALGORITHMS = ("sha256", "sha512")
_HEX = {"sha256": 64, "sha512": 128}
_CHUNK = 1 << 20
_ORIGINAL = re.compile(r"([A-Z0-9]+(?:-[A-Z0-9]+)*)_.+")
_PEM_BEGIN = "-----BEGIN PUBLIC KEY-----"
_SINCE_HINT = (
    "give data/custody/checkpoint.txt of an earlier bundle of this case, or a checkpoint "
    "printed by `evidence log checkpoint`"
)
KEYS_FOLDER = "data/custody/keys"


def _untrusted(what: str, key_ids: Sequence[str], shipped: Mapping[str, VerifierKey]) -> str:
    """The finding message for ``what``, signed by ``key_ids`` and by no trusted key: which
    keys those are, and how to trust one if the auditor does."""
    if not key_ids:
        return f"{what} carries no signature"
    copies = [f"{KEYS_FOLDER}/{k.replace('+', '_')}.pem" for k in key_ids if k in shipped]
    where = f" (the bundle's copy: {', '.join(copies)})" if copies else ""
    which = "its key file" if len(key_ids) == 1 else "the key file of one of them"
    return (
        f"{what} is signed by {' and '.join(key_ids)}, not by a trusted key: if it is a key "
        f"of the exporting organisation, pass {which} with --trust KEYFILE, a copy you "
        f"obtained by another channel and compared as VERIFY.md says{where}"
    )


def _note_signers(note: bytes) -> list[str]:
    """The key ids on the signature lines of a signed note (none if it cannot be parsed)."""
    try:
        signatures = parse_note(note).signatures
    except InputError:
        return []
    return list(dict.fromkeys(f"{sig.name}+{sig.key_hash.hex()}" for sig in signatures))


@dataclass(frozen=True)
class ZipLimits:
    """Bounds on what a zip may unpack to (a zip bomb is refused before it is inflated)."""

    max_entries: int = 200_000
    max_total_bytes: int = 64 * 1024**3
    max_ratio: int = 200
    """Largest uncompressed/compressed ratio of an entry bigger than ``ratio_floor``."""
    ratio_floor: int = 1024**2


@dataclass
class AuditReport:
    """The outcome of an audit: findings (problems) and warnings (limits of what was shown)."""

    bundle: str
    bundle_id: str = ""
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: int = 0
    originals: int = 0
    leaves: int = 0
    proofs: int = 0
    """Proof files of items and testimonies (``data/custody/proofs/``) that could be read."""
    event_proofs: int = 0
    """Proof files of events (``data/custody/event-proofs/``) that could be read."""
    consistency_proofs: int = 0
    checkpoint_size: int | None = None
    since_size: int | None = None
    """The size of the earlier checkpoint shown to be extended by the bundle's (or to be the
    same checkpoint), if any."""
    trusted_keys: tuple[VerifierKey, ...] = ()
    """The keys the audit relied on: those given with ``--trust``, or the bundle's own."""

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    def add(
        self,
        code: str,
        message: str,
        *,
        path: str | None = None,
        subject: str | None = None,
        seq: int | None = None,
    ) -> None:
        """Record one finding."""
        self.findings.append(Finding(code, message, seq=seq, subject=subject, path=path))

    def as_json(self) -> dict[str, Any]:
        """A machine-readable form for ``--json``."""
        return {
            "bundle": self.bundle,
            "bundle_id": self.bundle_id,
            "ok": self.ok,
            "files": self.files,
            "originals": self.originals,
            "leaves": self.leaves,
            "proofs": self.proofs,
            "event_proofs": self.event_proofs,
            "consistency_proofs": self.consistency_proofs,
            "checkpoint_size": self.checkpoint_size,
            "since_size": self.since_size,
            "trusted_keys": [key.key_id for key in self.trusted_keys],
            "trusted_key_fingerprints": {key.key_id: key.fingerprint for key in self.trusted_keys},
            "warnings": list(self.warnings),
            "findings": [finding.as_json() for finding in self.findings],
        }

    def finding_lines(self) -> list[str]:
        """Each finding as one line for a person (:meth:`Finding.describe`)."""
        return [finding.describe() for finding in self.findings]


# --- trusted keys -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyMaterial:
    """A trusted Ed25519 public key without a name: what a PEM file holds.

    A signed-note key is a name and a key, and its key id hashes both, but a PEM carries only
    the key. Trusting the material trusts each key of the bundle that has it, under the name the
    bundle gives it: whoever holds the private key made those signatures, whatever the name.
    """

    public_key: bytes


TrustedKey = VerifierKey | KeyMaterial
"""What ``--trust`` gives: a named verifier key, or key material from a PEM."""


def load_trusted_key(path: Path) -> TrustedKey:
    """Read a trusted key file: the signed-note line (``evidence keys export``) or a PEM.

    A PEM with a ``Key-Name: <name>`` line before its block is the verifier key of that name
    only. A PEM without one is :class:`KeyMaterial`: its file name says nothing about the key
    (the bundle's own ``<name>_<key hash>.pem``, or any name an auditor saved it under).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except PermissionError as exc:
        raise _not_permitted(path, exc) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read the trusted key file {path}: {exc}",
            "give a file written by `evidence keys export`",
        ) from None
    if _PEM_BEGIN in text:
        names = [
            line.split(":", 1)[1].strip()
            for line in text.splitlines()
            if line.startswith("Key-Name:")
        ]
        pem = text[text.index(_PEM_BEGIN) :].encode("ascii", errors="replace")
        try:
            # Without a Key-Name the name is a placeholder: only the key material is kept.
            key = VerifierKey.from_pem(names[-1] if names else "pem", pem)
        except InputError as exc:
            message = exc.message if names else "does not hold an Ed25519 public key PEM"
            raise InputError(f"{path}: {message}", exc.hint) from None
        return key if names else KeyMaterial(key.public_key)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise InputError(
            f"{path} does not hold one verifier key line",
            "give the output of `evidence keys export KEY_ID --format note`",
        )
    try:
        return VerifierKey.from_note_text(lines[0])
    except InputError as exc:
        raise InputError(f"{path}: {exc.message}", exc.hint) from None


def _not_permitted(path: Path, exc: PermissionError) -> EnvironmentProblem:
    """A file the auditing account may not read: a problem of the environment (SPEC 8)."""
    return EnvironmentProblem(
        f"cannot read {path}: {exc.strerror}", "give the auditing account read access to it"
    )


def refuse_trust_inside(bundle: Path, trust_files: Sequence[Path]) -> None:
    """Refuse a ``--trust`` file that lies in the bundle folder being audited.

    The bundle's own key files show only that the bundle is intact and consistent, which the
    audit shows without ``--trust``; trusting them would say nothing about who made it.
    """
    if not bundle.is_dir():
        return
    inside = bundle.resolve()
    for path in trust_files:
        if Path(path).resolve().is_relative_to(inside):
            raise InputError(
                f"--trust {path} is a file of the bundle being audited: a key the bundle "
                "brings cannot show who made it",
                "give the key file you obtained from the exporting organisation by another "
                "channel (VERIFY.md, step 3), or leave out --trust to check only that the "
                "bundle is intact",
            )


def load_since_checkpoint(path: Path) -> bytes:
    """Read the earlier checkpoint for ``--since``: the bytes of a signed checkpoint note.

    A file that is not a signed note at all (empty, binary, unsigned) is an :class:`InputError`
    naming it. Its signature is checked by the audit, against the trusted keys, and only then
    its text as a checkpoint.
    """
    try:
        note = Path(path).read_bytes()
    except PermissionError as exc:
        raise _not_permitted(path, exc) from None
    except OSError as exc:
        raise InputError(
            f"cannot read the earlier checkpoint {path}: {exc.strerror}", _SINCE_HINT
        ) from None
    _check_since_form(note, str(path))
    return note


def _check_since_form(note: bytes, source: str) -> None:
    """Refuse ``note`` unless it is a signed note (empty, binary or unsigned files are not).

    Its text is parsed as a checkpoint only after its signature is checked (:func:`_check_since`):
    a checkpoint altered after signing is a finding, not a wrong file.
    """
    try:
        parse_note(note)
    except InputError as exc:
        raise InputError(
            f"{source} is not a signed checkpoint: {exc.message}", _SINCE_HINT
        ) from None


# --- unpacking --------------------------------------------------------------------------------


class _Unsafe(Exception):
    """An unsafe or unusable bundle container; becomes one finding."""

    def __init__(self, code: str, message: str, path: str) -> None:
        super().__init__(message)
        self.code, self.message, self.path = code, message, path


def _safe_member_path(name: str) -> PurePosixPath:
    if not name or "\x00" in name or "\\" in name:
        raise _Unsafe("zip-bad-name", "entry name is empty or holds a NUL or backslash", name)
    path = PurePosixPath(name)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name):
        raise _Unsafe("zip-absolute-path", "entry has an absolute path", name)
    if any(part in ("..", "") for part in name.rstrip("/").split("/")) or "." in path.parts:
        raise _Unsafe("zip-path-traversal", "entry path leads out of the bundle ('..')", name)
    return path


def _unpack_zip(source: Path, target: Path, limits: ZipLimits) -> None:
    """Extract ``source`` into the empty folder ``target``, checking every entry first."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _Unsafe("zip-unreadable", f"not a readable zip file: {exc}", str(source)) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise _Unsafe(
                "zip-too-many-entries",
                f"{len(infos)} entries, more than the limit of {limits.max_entries}",
                str(source),
            )
        total, seen = 0, set()
        files: dict[str, str] = {}  # entry name of each file, by its key
        folders: set[str] = set()  # every folder the entries lie in
        for info in infos:
            path = _safe_member_path(info.filename)
            mode = info.external_attr >> 16
            if info.create_system == 3 and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise _Unsafe(
                    "zip-special-entry", "entry is a symlink or special file", info.filename
                )
            key = path.as_posix().rstrip("/").lower()
            if key in seen:
                raise _Unsafe("zip-duplicate-entry", "entry name appears twice", info.filename)
            seen.add(key)
            folders.update(parent.as_posix().lower() for parent in PurePosixPath(key).parents)
            if not info.is_dir():
                files[key] = info.filename
            total += info.file_size
            if total > limits.max_total_bytes:
                raise _Unsafe(
                    "zip-too-large",
                    f"entries declare more than {limits.max_total_bytes} bytes in total",
                    info.filename,
                )
            if info.file_size > limits.ratio_floor and (
                info.compress_size == 0 or info.file_size / info.compress_size > limits.max_ratio
            ):
                raise _Unsafe(
                    "zip-bomb",
                    f"entry inflates {info.file_size} bytes from {info.compress_size} "
                    f"(ratio above {limits.max_ratio})",
                    info.filename,
                )
        conflicts = sorted(folders.intersection(files))
        if conflicts:
            raise _Unsafe(
                "zip-path-conflict",
                "entry is a file, and other entries lie inside it as in a folder",
                files[conflicts[0]],
            )
        for info in infos:
            path = _safe_member_path(info.filename)
            dest = target.joinpath(*path.parts)
            try:
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(dest, _EXTRACT_FLAGS, 0o600)
            except OSError as exc:
                raise _Unsafe(
                    "zip-entry-unpackable",
                    f"entry cannot be unpacked here: {exc.strerror}",
                    info.filename,
                ) from None
            _extract_one(archive, info, fd)


_EXTRACT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def _extract_one(archive: zipfile.ZipFile, info: zipfile.ZipInfo, fd: int) -> None:
    written = 0
    try:
        with os.fdopen(fd, "wb") as out, archive.open(info) as src:
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                # The declared size was checked against the limits; never inflate beyond it.
                if written > info.file_size:
                    raise _Unsafe(
                        "zip-size-lie",
                        "entry inflates to more bytes than it declares",
                        info.filename,
                    )
                out.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise _Unsafe("zip-corrupt-entry", f"entry cannot be read: {exc}", info.filename) from None


def _find_bag_root(folder: Path) -> Path:
    if (folder / "bagit.txt").is_file():
        return folder
    children = [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()]
    others = [p for p in folder.iterdir() if p not in children]
    if len(children) == 1 and not others and (children[0] / "bagit.txt").is_file():
        return children[0]
    raise _Unsafe("bag-not-found", "no bagit.txt at the top or in a single top folder", folder.name)


@contextmanager
def _opened(bundle: Path, limits: ZipLimits) -> Iterator[Path]:
    if bundle.is_dir():
        # The auditor named this path: a symlink to the bag is followed once, here. Symlinks
        # inside the bag are still findings of the bag walk.
        yield _find_bag_root(bundle.resolve())
        return
    if not bundle.is_file():
        raise InputError(
            f"{bundle} is neither a bag directory nor a zip file",
            "give the bundle directory or its .zip",
        )
    scratch = Path(tempfile.mkdtemp(prefix="evidence-audit-"))
    try:
        unpacked = scratch / "bundle"
        unpacked.mkdir()
        _unpack_zip(bundle, unpacked, limits)
        yield _find_bag_root(unpacked)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- the bag ----------------------------------------------------------------------------------


def _walk_files(root: Path, report: AuditReport) -> tuple[dict[str, Path], set[str]]:
    """Every regular file under ``root`` by bag-relative path, and the paths that could not be
    read (folders and entries); those, symlinks and special files become findings.

    A folder the auditor cannot list could hold a file no manifest names, so an audit that
    cannot read the whole bag says so rather than vouching for the part it saw.
    """
    found: dict[str, Path] = {}
    unreadable: set[str] = set()

    def cannot_read(path: Path, exc: OSError) -> None:
        _cannot_read(path.relative_to(root).as_posix(), exc, report, unreadable)

    def walk_error(exc: OSError) -> None:
        cannot_read(Path(exc.filename), exc)

    for dirpath, dirnames, filenames in os.walk(root, onerror=walk_error, followlinks=False):
        base = Path(dirpath)
        for name in sorted([*dirnames, *filenames]):
            path = base / name
            rel = path.relative_to(root).as_posix()
            try:
                mode = path.lstat().st_mode
            except OSError as exc:
                cannot_read(path, exc)
                if name in dirnames:
                    dirnames.remove(name)
                continue
            if stat.S_ISLNK(mode):
                report.add("bag-symlink", "the bag holds a symlink; it is not followed", path=rel)
                if name in dirnames:
                    dirnames.remove(name)
            elif stat.S_ISREG(mode):
                found[rel] = path
            elif not stat.S_ISDIR(mode):
                report.add("bag-special-file", "the bag holds a special file", path=rel)
    return found, unreadable


def _under(rel: str, folders: set[str]) -> bool:
    """Whether ``rel`` is one of ``folders`` or lies in one of them."""
    return any(rel == folder or rel.startswith(folder + "/") for folder in folders)


def _read_bag_file(
    root: Path,
    rel: str,
    report: AuditReport,
    *,
    missing_code: str = "file-missing",
    missing: str = "",
) -> bytes | None:
    """The bytes of the regular file ``rel`` of the bag, or None after a finding naming it.

    Every part of ``rel`` is checked with ``lstat`` before anything is opened: a folder named
    like a file cannot be read, a FIFO would block the audit, and a symlink (here or in a
    folder above) would lead out of the bag. Those are reported as ``not-a-file``; a missing
    file as ``missing_code`` with the ``missing`` message (by default "<rel> is missing").
    """
    parts = rel.split("/")
    path = root
    for depth, part in enumerate(parts, 1):
        path = path / part
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            report.add(missing_code, missing or f"{rel} is missing", path=rel)
            return None
        except OSError as exc:
            report.add("file-unreadable", f"{rel} cannot be read: {exc.strerror}", path=rel)
            return None
        last = depth == len(parts)
        if stat.S_ISDIR(mode) and not last:
            continue
        if stat.S_ISREG(mode) and last:
            break
        if last:
            message = f"{rel} is {kind_of_mode(mode)}, where the audit expects a file"
        else:
            above = "/".join(parts[:depth])
            message = f"{rel} cannot be read: {above} is {kind_of_mode(mode)}, not a folder"
        report.add("not-a-file", message, path=rel)
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        report.add("file-unreadable", f"{rel} cannot be read: {exc.strerror}", path=rel)
        return None


def _decode_manifest_path(raw: str) -> str:
    return raw.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")


def _read_manifest(
    root: Path, name: str, algorithm: str, report: AuditReport, *, payload: bool
) -> dict[str, str]:
    entries: dict[str, str] = {}
    raw = _read_bag_file(root, name, report, missing_code="manifest-missing")
    if raw is None:
        return entries
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        report.add("manifest-unreadable", f"{name} is not UTF-8: {exc}", path=name)
        return entries
    for number, line in enumerate(text.splitlines(), 1):
        digest, sep, rel = line.partition(" ")
        rel = _decode_manifest_path(rel.lstrip(" *"))
        where = f"{name} line {number}"
        if not sep or len(digest) != _HEX[algorithm] or digest.strip("0123456789abcdef"):
            report.add("manifest-malformed", f"{where} is not '<{algorithm}>  <path>'", path=name)
            continue
        pure = PurePosixPath(rel)
        if (
            not rel
            or "\\" in rel
            or pure.is_absolute()
            or any(part in ("..", ".", "") for part in rel.split("/"))
            or (payload and pure.parts[0] != "data")
            or (not payload and len(pure.parts) != 1)
        ):
            report.add(
                "manifest-path-outside",
                f"{where} names {rel!r}, a path outside the "
                f"{'payload (data/)' if payload else 'bag top folder'}",
                path=name,
            )
            continue
        if rel in entries:
            report.add("manifest-duplicate", f"{where} lists {rel} a second time", path=name)
            continue
        entries[rel] = digest
    return entries


def _hash_file(path: Path) -> tuple[str, str, int]:
    sha256, sha512, size = hashlib.sha256(), hashlib.sha512(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha256.update(chunk)
            sha512.update(chunk)
            size += len(chunk)
    return sha256.hexdigest(), sha512.hexdigest(), size


def _hash_readable(
    path: Path, rel: str, report: AuditReport, unreadable: set[str]
) -> tuple[str, str, int] | None:
    """:func:`_hash_file`, or None after a finding when the file cannot be read."""
    try:
        return _hash_file(path)
    except OSError as exc:
        _cannot_read(rel, exc, report, unreadable)
        return None


def _cannot_read(rel: str, exc: OSError, report: AuditReport, unreadable: set[str]) -> None:
    unreadable.add(rel)
    report.add(
        "file-unreadable",
        f"{rel} cannot be read ({exc.strerror}), so it is not checked: give the auditing "
        "account read access to the whole bundle and run the audit again",
        path=rel,
    )


def _bag_info(root: Path, report: AuditReport) -> dict[str, str]:
    info: dict[str, str] = {}
    raw = _read_bag_file(root, "bag-info.txt", report, missing_code="bag-info-missing")
    if raw is None:
        return info
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        report.add("bag-info-unreadable", f"bag-info.txt is not UTF-8: {exc}", path="bag-info.txt")
        return info
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        if sep and label and not label[0].isspace():
            info.setdefault(label.strip(), value.strip())
    return info


def _check_bag(
    root: Path, report: AuditReport, progress: Progress | None
) -> tuple[dict[str, Path], dict[str, tuple[str, str, int]], dict[str, str]]:
    """Check the bag layer; return its regular files, the payload's hashes and bag-info."""
    files, unreadable = _walk_files(root, report)
    bagit = _read_bag_file(root, "bagit.txt", report, missing_code="bagit-missing")
    if bagit is not None and b"BagIt-Version: 1.0" not in bagit.splitlines():
        report.add(
            "bagit-version", "bagit.txt does not declare BagIt-Version: 1.0", path="bagit.txt"
        )

    payload_files = {rel: p for rel, p in files.items() if rel.startswith("data/")}
    # A bag is its payload under data/ and tag files at its top; the manifests cover nothing
    # else, so a file anywhere else would ride along unsigned.
    for rel in sorted(files):
        if "/" in rel and rel not in payload_files:
            report.add(
                "file-outside-payload",
                f"{rel} is neither under data/ nor a tag file at the top of the bag",
                path=rel,
            )
    manifests = {
        alg: _read_manifest(root, f"manifest-{alg}.txt", alg, report, payload=True)
        for alg in _ALGORITHMS
    }
    if progress is not None:
        progress.start(len(payload_files), sum(p.stat().st_size for p in payload_files.values()))
    hashed: dict[str, tuple[str, str, int]] = {}
    for rel, path in sorted(payload_files.items()):
        digests = _hash_readable(path, rel, report, unreadable)
        if digests is not None:
            hashed[rel] = digests
        if progress is not None:
            progress.advance(1, digests[2] if digests else 0)
    report.files = len(hashed)
    for index, alg in enumerate(_ALGORITHMS):
        listed = manifests[alg]
        for rel, digest in sorted(listed.items()):
            if _under(rel, unreadable):
                continue  # Reported as unreadable.
            if rel not in hashed:
                report.add(
                    "file-missing", f"{rel} is listed in manifest-{alg}.txt but missing", path=rel
                )
            elif hashed[rel][index] != digest:
                report.add(
                    "file-hash-mismatch",
                    f"{rel}: {alg} is {hashed[rel][index]}, manifest-{alg}.txt says {digest}",
                    path=rel,
                )
        for rel in sorted(set(hashed) - set(listed)):
            report.add("file-unlisted", f"{rel} is not listed in manifest-{alg}.txt", path=rel)

    info = _bag_info(root, report)
    report.bundle_id = info.get("External-Identifier", "")
    oxum = info.get("Payload-Oxum", "")
    octets = sum(h[2] for h in hashed.values())
    if oxum != f"{octets}.{len(hashed)}" and not any(_under(r, {"data"}) for r in unreadable):
        report.add(
            "payload-oxum",
            f"Payload-Oxum says {oxum or '(none)'}, the payload has {octets} bytes in "
            f"{len(hashed)} files",
            path="bag-info.txt",
        )

    tags = _read_manifest(root, TAG_MANIFEST, "sha256", report, payload=False)
    for name in REQUIRED_TAG_FILES:
        if name not in tags:
            report.add(
                "tagmanifest-incomplete", f"{TAG_MANIFEST} does not list {name}", path=TAG_MANIFEST
            )
    for name, digest in sorted(tags.items()):
        if _under(name, unreadable):
            continue
        if name not in files:
            report.add(
                "tag-file-missing", f"{name} is listed in {TAG_MANIFEST} but missing", path=name
            )
            continue
        digests = _hash_readable(files[name], name, report, unreadable)
        if digests is not None and digests[0] != digest:
            report.add("tag-file-hash-mismatch", f"{name} does not match {TAG_MANIFEST}", path=name)
    top = {rel for rel in files if "/" not in rel}
    extra = top - set(tags) - {TAG_MANIFEST, SIGNATURE_FILE, SIGNATURE_B64_FILE}
    for name in sorted(extra):
        report.add("tag-file-unlisted", f"{name} is not listed in {TAG_MANIFEST}", path=name)
    return files, hashed, info


# --- custody ----------------------------------------------------------------------------------


def _bundle_keys(root: Path, report: AuditReport) -> dict[str, VerifierKey]:
    keys: dict[str, VerifierKey] = {}
    folder = root / KEYS_FOLDER
    if not folder.is_dir():
        report.add("keys-missing", f"{KEYS_FOLDER}/ is missing", path=KEYS_FOLDER)
        return keys
    for path in sorted(folder.glob("*.pub")):
        rel = path.relative_to(root).as_posix()
        raw = _read_bag_file(root, rel, report)
        if raw is None:
            continue
        try:
            key = VerifierKey.from_note_text(raw.decode("utf-8"))
        except (InputError, UnicodeDecodeError) as exc:
            report.add("key-malformed", f"{rel} is not a verifier key: {exc}", path=rel)
            continue
        keys[key.key_id] = key
        pem = path.with_suffix(".pem")
        if not os.path.lexists(pem):
            continue
        pem_rel = pem.relative_to(root).as_posix()
        pem_bytes = _read_bag_file(root, pem_rel, report)
        if pem_bytes is None:
            continue
        try:
            same = VerifierKey.from_pem(key.name, pem_bytes) == key
        except InputError:
            same = False
        if not same:
            report.add(
                "key-pem-mismatch",
                f"{pem.name} does not hold the same public key as {path.name}",
                path=pem_rel,
            )
    return keys


def _resolve_trust(
    trusted: Sequence[TrustedKey],
    shipped: dict[str, VerifierKey],
    info: dict[str, str],
    checkpoint_note: bytes | None,
) -> list[VerifierKey]:
    """The keys to trust: the named keys given, and given key material under the bundle's names.

    The names come from the bundle's key files, the ``Signing-Key-Id`` of ``bag-info.txt`` and
    the signature lines of the checkpoint; a name is kept for the material only where the key
    id the bundle claims is the one that name and material make. The bundle cannot add trust
    this way: a key counts only if it has the trusted material.
    """
    keys = [key for key in trusted if isinstance(key, VerifierKey)]
    materials = [key.public_key for key in trusted if isinstance(key, KeyMaterial)]
    if not materials:
        return keys
    claimed: set[tuple[str, str]] = set()
    for key_id in [*shipped, info.get("Signing-Key-Id", "")]:
        name, _sep, key_hash = key_id.partition("+")
        claimed.add((name, key_hash))
    if checkpoint_note is not None:
        try:
            signatures = parse_note(checkpoint_note).signatures
        except InputError:
            signatures = ()  # reported when the checkpoint is opened
        claimed.update((sig.name, sig.key_hash.hex()) for sig in signatures)
    for name, key_hash in sorted(claimed):
        for material in materials:
            try:
                key = VerifierKey(name, material)
            except InputError:
                continue  # not a usable key name: no key of the bundle can have it
            if key.note_key_hash.hex() == key_hash and key not in keys:
                keys.append(key)
    return keys


def _check_signature(
    root: Path,
    files: dict[str, Path],
    info_key_id: str,
    trusted: Sequence[VerifierKey],
    shipped: Mapping[str, VerifierKey],
    report: AuditReport,
) -> None:
    signature = _read_bag_file(
        root,
        SIGNATURE_FILE,
        report,
        missing_code="signature-missing",
        missing=f"{SIGNATURE_FILE} is missing: the tag manifest is not signed",
    )
    # Every bundle carries both copies (VERIFY.md names both), so either one missing is a finding.
    b64 = _read_bag_file(
        root,
        SIGNATURE_B64_FILE,
        report,
        missing_code="signature-copy-missing",
        missing=f"{SIGNATURE_B64_FILE}, the base64 copy of {SIGNATURE_FILE}, is missing",
    )
    if (
        signature is not None
        and b64 is not None
        and strict_b64decode(b64.strip().decode("ascii", "replace")) != signature
    ):
        report.add(
            "signature-copies-differ",
            f"{SIGNATURE_B64_FILE} is not the same signature as {SIGNATURE_FILE}",
            path=SIGNATURE_B64_FILE,
        )
    # A missing or unreadable tag manifest is already a finding of the bag check.
    manifest = (root / TAG_MANIFEST).read_bytes() if TAG_MANIFEST in files else None
    if signature is None or manifest is None:
        return
    key = next((k for k in trusted if k.key_id == info_key_id), None)
    if key is None:
        message = (
            _untrusted("the tag manifest", [info_key_id], shipped)
            if info_key_id
            else "the tag manifest's signer is not named: bag-info.txt has no Signing-Key-Id"
        )
        report.add("signer-untrusted", message, path=SIGNATURE_FILE)
        return
    if not key.verify(signature, manifest):
        report.add(
            "tagmanifest-bad-signature",
            f"the signature of {TAG_MANIFEST} by {key.key_id} does not verify",
            path=SIGNATURE_FILE,
        )


def _open_bundle_checkpoint(
    note: bytes | None,
    trusted: Sequence[VerifierKey],
    shipped: Mapping[str, VerifierKey],
    info: dict[str, str],
    report: AuditReport,
) -> tuple[bytes, Checkpoint] | None:
    rel = CHECKPOINT_FILE
    if note is None:
        return None
    try:
        checkpoint = Checkpoint.from_text(parse_note(note).text)
    except InputError as exc:
        report.add("checkpoint-malformed", f"the checkpoint is malformed: {exc.message}", path=rel)
        return None
    try:
        open_checkpoint(note, trusted)
    except VerificationError as exc:
        for finding in exc.findings:
            message = (
                _untrusted("the checkpoint", _note_signers(note), shipped)
                if finding.code == "note-untrusted"
                else f"checkpoint: {finding.message}"
            )
            report.add(f"checkpoint-{finding.code}", message, path=rel)
    stated = info.get("Custody-Checkpoint")
    actual = f"{checkpoint.origin} {checkpoint.size} {checkpoint.root.hex()}"
    if stated is not None and stated != actual:
        report.add(
            "checkpoint-bag-info-mismatch",
            f"bag-info.txt names checkpoint {stated!r}, the file holds {actual!r}",
            path="bag-info.txt",
        )
    report.checkpoint_size = checkpoint.size
    return note, checkpoint


EVENTS_FOLDER = "data/custody/events"
EVENT_PROOFS_FOLDER = "data/custody/event-proofs"


def _check_leaves(
    root: Path, keys: dict[str, VerifierKey], checkpoint: Checkpoint | None, report: AuditReport
) -> tuple[dict[int, bytes], list[tuple[str, Leaf]], list[tuple[str, Leaf]]]:
    """Parse and check every event of ``data/custody/events``.

    Returns the bytes of each event by seq, every event that could be parsed and those of them
    whose signature verified with their actor's key, each event with its file.
    """
    leaves: dict[int, bytes] = {}
    parsed: list[tuple[str, Leaf]] = []
    signed: list[tuple[str, Leaf]] = []
    folder = root / EVENTS_FOLDER
    for path in sorted(folder.glob("*.leaf")) if folder.is_dir() else []:
        rel = path.relative_to(root).as_posix()
        raw = _read_bag_file(root, rel, report)
        if raw is None:
            continue
        try:
            leaf = parse_leaf(raw)
        except InputError as exc:
            report.add("leaf-malformed", f"{rel}: {exc.message}", path=rel)
            continue
        seq = leaf.event.seq
        report.leaves += 1
        parsed.append((rel, leaf))
        if not path.stem.isdigit() or int(path.stem) != seq:
            report.add("leaf-misnamed", f"{rel} holds event seq {seq}", path=rel, seq=seq)
        if checkpoint is not None and seq >= checkpoint.size:
            report.add(
                "leaf-beyond-checkpoint",
                f"event {seq} is not covered by the checkpoint of size {checkpoint.size}",
                path=rel,
                seq=seq,
            )
        key = keys.get(leaf.event.actor)
        if key is None:
            report.add(
                "leaf-unknown-actor",
                f"event {seq} is signed by {leaf.event.actor}, whose key is neither in "
                f"{KEYS_FOLDER}/ nor trusted: if it is the exporting organisation's, pass its "
                "key file with --trust",
                path=rel,
                seq=seq,
            )
        else:
            try:
                verify_leaf_signature(leaf, key)
            except VerificationError as exc:
                for finding in exc.findings:
                    report.add(f"leaf-{finding.code}", finding.message, path=rel, seq=seq)
            else:
                signed.append((rel, leaf))
        leaves[seq] = raw
    return leaves, parsed, signed


def _check_event_proofs(
    root: Path,
    bundle: tuple[bytes, Checkpoint] | None,
    events: Sequence[tuple[str, Leaf]],
    report: AuditReport,
) -> set[str]:
    """Check the proof file of each event against its leaf file and the bundle's checkpoint.

    ``events/<name>.leaf`` needs ``event-proofs/<name>.proof``, in the format of the items'
    proof files, whose leaf is the leaf file byte for byte and whose index is the event's seq;
    its path must lead from that leaf at that index to the root of the bundle's checkpoint.
    Returns the leaf files so proven: without a checkpoint, none is.
    """
    proven: set[str] = set()
    for rel, leaf in events:
        seq = leaf.event.seq
        proof_rel = f"{EVENT_PROOFS_FOLDER}/{PurePosixPath(rel).stem}.proof"
        if not os.path.lexists(root / proof_rel):
            report.add(
                "event-unproven",
                f"event {seq} ({rel}) has no proof file {proof_rel}: nothing shows that it is "
                "in the log the checkpoint commits to",
                path=rel,
                seq=seq,
            )
            continue
        raw = _read_bag_file(root, proof_rel, report)
        if raw is None:
            continue
        try:
            proof = parse_proof(raw)
        except InputError as exc:
            report.add(
                "event-proof-malformed",
                f"{proof_rel}, the proof of event {seq}: {exc.message}",
                path=proof_rel,
                seq=seq,
            )
            continue
        report.event_proofs += 1
        before = len(report.findings)
        if proof.leaf != leaf.raw:
            report.add(
                "event-proof-leaf-differs",
                f"{proof_rel} proves other leaf bytes than {rel} (event {seq}): the event in "
                "the bundle is not the one the proof shows in the log",
                path=proof_rel,
                seq=seq,
            )
        if proof.index != seq:
            report.add(
                "event-proof-index-mismatch",
                f"{proof_rel} gives index {proof.index} for event {seq} ({rel}): an event's "
                "index in the log is its seq",
                path=proof_rel,
                seq=seq,
            )
        if bundle is None or len(report.findings) != before:
            continue
        name = f"{proof_rel}, the proof of event {seq} ({rel}),"
        _check_reaches(proof, bundle, "event-proof", name, report, proof_rel, None, seq)
        if len(report.findings) == before:
            proven.add(rel)
    _check_unmatched_event_proofs(root, report)
    return proven


def _check_reaches(
    proof: ProofFile,
    bundle: tuple[bytes, Checkpoint],
    code: str,
    name: str,
    report: AuditReport,
    path: str,
    subject: str | None,
    seq: int,
) -> None:
    """Report (as ``<code>-checkpoint-differs``, ``<code>-inclusion``) a proof file, called
    ``name`` in messages, that names another checkpoint than the bundle's or whose path does
    not lead from its leaf, at its index, to the root of the bundle's checkpoint."""
    note, checkpoint = bundle
    if proof.checkpoint != note:
        report.add(
            f"{code}-checkpoint-differs",
            f"{name} leads to another checkpoint than the bundle's",
            path=path,
            subject=subject,
            seq=seq,
        )
    try:
        verify_inclusion(
            leaf_hash(proof.leaf), proof.index, checkpoint.size, proof.path, checkpoint.root
        )
    except VerificationError as exc:
        for finding in exc.findings:
            report.add(
                f"{code}-inclusion",
                f"{name} does not show its event in the bundle's checkpoint of size "
                f"{checkpoint.size}: {finding.message}",
                path=path,
                subject=subject,
                seq=seq,
            )


def _check_unmatched_event_proofs(root: Path, report: AuditReport) -> None:
    """Report each entry of ``data/custody/event-proofs`` that is the proof of no leaf file."""
    folder, events = root / EVENT_PROOFS_FOLDER, root / EVENTS_FOLDER
    if not folder.is_dir() or folder.is_symlink():
        return
    leaf_names = (
        {path.stem for path in events.glob("*.leaf")}
        if events.is_dir() and not events.is_symlink()
        else set()
    )
    for path in sorted(folder.iterdir()):
        if path.suffix == ".proof" and path.stem in leaf_names:
            continue
        rel = path.relative_to(root).as_posix()
        report.add(
            "event-proof-unmatched",
            f"{rel} is the proof of no event: {EVENTS_FOLDER} has no {path.stem}.leaf",
            path=rel,
        )


def _event_hashes(leaf: Leaf) -> tuple[str, str]:
    """The sha256 and sha512 an ingest or testimony event records for its object."""
    data = leaf.event.data
    document = data.get("document")
    if isinstance(document, dict) and document.get("sha256") == leaf.event.subject:
        return str(document.get("sha256")), str(document.get("sha512", ""))
    return leaf.event.subject, str(data.get("sha512", ""))


@dataclass(frozen=True)
class _ProvenRecord:
    """An item or testimony of the bundle as its file names give it."""

    ern: str
    """The ERN in the names of its proof file and original."""
    leaf: Leaf
    """The event that recorded it, from its proof file."""
    proof: str
    """The bag path of its proof file."""
    original: str | None
    """The bag path of its original, if it has one."""


def _check_proofs_and_originals(
    root: Path,
    bundle: tuple[bytes, Checkpoint] | None,
    leaves: dict[int, bytes],
    hashed: dict[str, tuple[str, str, int]],
    report: AuditReport,
) -> list[_ProvenRecord]:
    """Check each proof file and each original against each other and the checkpoint.

    Returns the records whose proof file could be read, for the ERN check.
    """
    proofs: dict[str, Leaf] = {}
    proof_paths: dict[str, str] = {}
    folder = root / "data" / "custody" / "proofs"
    for path in sorted(folder.glob("*.proof")) if folder.is_dir() else []:
        rel = path.relative_to(root).as_posix()
        ern = path.stem
        raw = _read_bag_file(root, rel, report)
        if raw is None:
            continue
        try:
            proof = parse_proof(raw)
            leaf = parse_leaf(proof.leaf)
        except InputError as exc:
            report.add("proof-malformed", f"{rel}: {exc.message}", path=rel, subject=ern)
            continue
        report.proofs += 1
        proofs[ern] = leaf
        proof_paths[ern] = rel
        seq = leaf.event.seq
        if proof.index != seq:
            report.add(
                "proof-index-mismatch",
                f"proof of {ern} gives index {proof.index} for event {seq}",
                path=rel,
                subject=ern,
                seq=seq,
            )
        if seq in leaves and leaves[seq] != proof.leaf:
            report.add(
                "proof-leaf-differs",
                f"the leaf in the proof of {ern} differs from data/custody/events",
                path=rel,
                subject=ern,
                seq=seq,
            )
        elif seq not in leaves:
            report.add(
                "leaf-missing",
                f"event {seq} of {ern} is not in data/custody/events",
                path=rel,
                subject=ern,
                seq=seq,
            )
        if bundle is not None:
            _check_reaches(proof, bundle, "proof", f"the proof of {ern}", report, rel, ern, seq)

    originals = {rel: h for rel, h in hashed.items() if _in_folder(rel, "data/originals")}
    with_original: dict[str, str] = {}
    for rel, (sha256, sha512, _size) in sorted(originals.items()):
        match = _ORIGINAL.fullmatch(rel.rsplit("/", 1)[1])
        ern = match.group(1) if match else ""
        report.originals += 1
        recorded = proofs.get(ern)
        if recorded is None:
            report.add(
                "original-unproven",
                f"{rel} has no proof file data/custody/proofs/{ern or '?'}.proof",
                path=rel,
                subject=ern or None,
            )
            continue
        with_original[ern] = rel
        want256, want512 = _event_hashes(recorded)
        if sha256 != want256 or sha512 != want512:
            report.add(
                "original-leaf-mismatch",
                f"{ern}: the file's sha256 {sha256} does not match the event that recorded it "
                f"(seq {recorded.event.seq}: {want256})"
                if sha256 != want256
                else f"{ern}: the file's sha512 does not match event {recorded.event.seq}",
                path=rel,
                subject=ern,
                seq=recorded.event.seq,
            )
    for ern in sorted(set(proofs) - set(with_original)):
        report.add(
            "original-missing", f"{ern} has a proof but no file in data/originals/", subject=ern
        )
    return [
        _ProvenRecord(ern, leaf, proof_paths[ern], with_original.get(ern))
        for ern, leaf in sorted(proofs.items())
    ]


# --- the listing ------------------------------------------------------------------------------


def _check_listing(root: Path, records: Sequence[_ProvenRecord], report: AuditReport) -> None:
    """Check that ``data/metadata/items.json``, the bundle's list of its records that the
    index and the e-Court files are made from, lists exactly the records the bundle proves,
    with the hashes of the events that recorded them and the files that hold them.

    A record taken out of the bag, or one put in, with the bag signed again, shows here unless
    the listing and the indexes were rewritten too.
    """
    raw = _read_bag_file(
        root,
        LISTING_FILE,
        report,
        missing_code="listing-missing",
        missing=f"the bundle has no {LISTING_FILE}, the list of its records",
    )
    if raw is None:
        return
    listed = _listed_records(raw)
    if listed is None:
        report.add(
            "listing-malformed",
            f"{LISTING_FILE} is not a listing of items and testimonies, each with its ERN",
            path=LISTING_FILE,
        )
        return
    folder = root / "data" / "custody" / "proofs"
    # A proof file that could not be read is reported already: its record is not "unproven".
    proof_files = {p.stem for p in folder.glob("*.proof")} if folder.is_dir() else set()
    for record in records:
        entry = listed.pop(record.ern, None)
        seq = record.leaf.event.seq
        if entry is None:
            report.add(
                "listing-omits",
                f"{record.ern} is in the bundle ({record.proof}), but {LISTING_FILE} does not "
                "list it",
                path=LISTING_FILE,
                subject=record.ern,
                seq=seq,
            )
            continue
        differs = _listing_differences(entry, record)
        if differs:
            report.add(
                "listing-mismatch",
                f"{LISTING_FILE} gives {record.ern} another {', '.join(differs)} than the "
                f"bundle's files and event {seq}",
                path=LISTING_FILE,
                subject=record.ern,
                seq=seq,
            )
    for ern in sorted(set(listed) - proof_files):
        report.add(
            "listing-unproven",
            f"{LISTING_FILE} lists {ern}, which has no proof file in the bundle "
            f"(data/custody/proofs/{ern}.proof)",
            path=LISTING_FILE,
            subject=ern,
        )


def _listed_records(raw: bytes) -> dict[str, dict[str, Any]] | None:
    """The items and testimonies of a listing by ERN; None if it is not one."""
    try:
        document = json.loads(raw)
        entries = [*document["items"], *document["testimonies"]]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    listed: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("ern"), str):
            return None
        listed[entry["ern"]] = entry
    return listed


def _listing_differences(entry: dict[str, Any], record: _ProvenRecord) -> list[str]:
    """What the listing's entry says otherwise than the record's event and files."""
    sha256, sha512 = _event_hashes(record.leaf)
    files = entry.get("files")
    files = files if isinstance(files, dict) else {}
    differs = []
    if entry.get("sha256") != sha256:
        differs.append("sha256")
    if entry.get("sha512") != sha512:
        differs.append("sha512")
    if files.get("proof") != record.proof.removeprefix("data/"):
        differs.append("proof file")
    original = files.get("original", files.get("statement_record"))
    # A record without its original is reported as original-missing already.
    if record.original is not None and original != record.original.removeprefix("data/"):
        differs.append("original file")
    return differs


# --- ERNs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ErnAssignment:
    """The ERN range an ``ern.assigned`` event gives its subject, and where the event is."""

    seq: int
    path: str
    subject: str
    prefix: str
    number_first: int
    number_last: int

    @property
    def span(self) -> str:
        """``the ERN <first>``, or ``the range <first> to <last>``, for messages."""
        if self.number_last == self.number_first:
            return f"the ERN {self.first}"
        return f"the range {self.first} to {format_ern(self.prefix, self.number_last)}"

    @property
    def first(self) -> str:
        """The first ERN: the one the bundle names the subject's files by."""
        return format_ern(self.prefix, self.number_first)


def _parse_ern(ern: str) -> tuple[str, int] | None:
    """The prefix and number of ``ern`` if :func:`~exports.ern.format_ern` writes it so."""
    prefix, dash, digits = ern.rpartition("-")
    if not (prefix and dash and digits.isascii() and digits.isdigit()):
        return None
    number = int(digits)
    if number < 1 or format_ern(prefix, number) != ern:
        return None
    return prefix, number


def _ern_number(value: Any) -> int | None:
    """A number of an ``ern.assigned`` event: a decimal string as the toolkit writes it (an
    integer is taken too), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and value == str(int(value)):
        return int(value)
    return None


def _read_assignment(rel: str, leaf: Leaf) -> _ErnAssignment | str:
    """The range an ``ern.assigned`` event gives, or what is wrong with its data."""
    data = leaf.event.data
    first, last = data.get("first"), data.get("last")
    number_first = _ern_number(data.get("number_first"))
    number_last = _ern_number(data.get("number_last"))
    if number_first is None or number_last is None:
        return (
            f"number_first {data.get('number_first')!r} and number_last "
            f"{data.get('number_last')!r} must both be decimal numbers"
        )
    if not 1 <= number_first <= number_last:
        return f"its range runs from number {number_first} to number {number_last}"
    parsed = _parse_ern(first) if isinstance(first, str) else None
    if parsed is None:
        return f"first {first!r} is not an ERN"
    prefix = parsed[0]
    expected = (format_ern(prefix, number_first), format_ern(prefix, number_last))
    if (first, last) != expected:
        return (
            f"first {first!r} and last {last!r} do not agree with number_first and "
            f"number_last, which give {expected[0]} and {expected[1]}"
        )
    return _ErnAssignment(
        leaf.event.seq, rel, leaf.event.subject, prefix, number_first, number_last
    )


def _ern_assignments(
    proven: Sequence[tuple[str, Leaf]], report: AuditReport
) -> dict[str, _ErnAssignment]:
    """The ERN range the bundle's validly signed and proven events assign to each subject.

    The log assigns a subject its range once (:func:`exports.ern.assign_erns`): a second
    ``ern.assigned`` event for one subject is a finding and the first one counts. Ranges of two
    subjects must not share an ERN.
    """
    assigned: dict[str, _ErnAssignment] = {}
    for rel, leaf in sorted(proven, key=lambda pair: pair[1].event.seq):
        event = leaf.event
        if event.action != ERN_ASSIGNED:
            continue
        found = _read_assignment(rel, leaf)
        if isinstance(found, str):
            report.add(
                "ern-assignment-malformed",
                f"event {event.seq} (ern.assigned to {event.subject}): {found}",
                path=rel,
                seq=event.seq,
            )
            continue
        earlier = assigned.get(event.subject)
        if earlier is not None:
            report.add(
                "ern-reassigned",
                f"event {event.seq} gives {found.span} to {event.subject}, but event "
                f"{earlier.seq} already gave it {earlier.span}: an ERN, once given, is never "
                "changed",
                path=rel,
                seq=event.seq,
            )
            continue
        assigned[event.subject] = found
    # Sorted by their first number, a range overlaps an earlier one exactly when it starts
    # before the furthest end reached so far.
    furthest: _ErnAssignment | None = None
    for this in sorted(assigned.values(), key=lambda a: (a.prefix, a.number_first, a.seq)):
        if furthest is None or furthest.prefix != this.prefix:
            furthest = this
            continue
        if this.number_first <= furthest.number_last:
            report.add(
                "ern-overlap",
                f"event {this.seq} gives {this.span} to {this.subject}, which overlaps "
                f"{furthest.span} that event {furthest.seq} gave to {furthest.subject}: "
                "one ERN would cite two records",
                path=this.path,
                seq=this.seq,
            )
        if this.number_last > furthest.number_last:
            furthest = this
    return assigned


def _check_erns(
    records: Sequence[_ProvenRecord],
    proven: Sequence[tuple[str, Leaf]],
    hashed: Mapping[str, tuple[str, str, int]],
    report: AuditReport,
) -> None:
    """Check the ERN of each record against the range the log assigned to it.

    A court cites a record by its ERN, and the bundle names the record's files by it; only the
    ``ern.assigned`` event ties that number to the record's bytes (its subject is the sha256
    of the item or of the testimony document, as is the subject of the event that recorded
    it). ``proven`` holds the events whose signature verified and whose proof file shows them
    in the checkpoint (:func:`_check_event_proofs`): a signature alone would let whoever holds
    an enrolled key assign numbers in an event the log never held. A stamped copy must carry
    the name, and so the ERN, of an original.
    """
    assigned = _ern_assignments(proven, report)
    for record in records:
        subject = _event_hashes(record.leaf)[0]
        seq = record.leaf.event.seq
        files = " and ".join(f for f in (record.original, record.proof) if f)
        files += " name" if record.original else " names"
        assignment = assigned.get(subject)
        if assignment is None:
            report.add(
                "ern-unassigned",
                f"{files} ERN {record.ern}, but {EVENTS_FOLDER} holds no validly signed "
                f"and proven ern.assigned event for the item recorded by event {seq} (sha256 "
                f"{subject}): expected one whose range starts at {record.ern}",
                path=record.proof,
                subject=record.ern,
                seq=seq,
            )
        elif record.ern != assignment.first:
            report.add(
                "ern-mismatch",
                f"{files} ERN {record.ern}, but event {assignment.seq} gave {assignment.span} "
                f"to the item recorded by event {seq} (sha256 {subject}): expected "
                f"{assignment.first}",
                path=record.proof,
                subject=record.ern,
                seq=assignment.seq,
            )
    originals = {rel.rsplit("/", 1)[1] for rel in hashed if _in_folder(rel, "data/originals")}
    for rel in sorted(rel for rel in hashed if _in_folder(rel, "data/stamped")):
        if rel.rsplit("/", 1)[1] not in originals:
            report.add(
                "stamped-unmatched",
                f"{rel} has no original of the same name in data/originals/: a stamped copy "
                "carries the name and ERN of its original",
                path=rel,
            )


def _in_folder(rel: str, folder: str) -> bool:
    """True when the bag path ``rel`` is a file directly in ``folder``."""
    return rel.startswith(f"{folder}/") and rel.count("/") == folder.count("/") + 1


CONSISTENCY_FOLDER = "data/custody/consistency"


def _check_consistency_files(
    root: Path, bundle: tuple[bytes, Checkpoint] | None, report: AuditReport
) -> dict[int, list[bytes]]:
    """Parse every consistency proof the bundle carries: ``{old size: hashes}``.

    Without an earlier checkpoint there is no old root to check a proof against, so this only
    makes sure each file is well formed, named for its old size and leads to the bundle's size.
    """
    proofs: dict[int, list[bytes]] = {}
    folder = root / CONSISTENCY_FOLDER
    for path in sorted(folder.iterdir()) if folder.is_dir() and not folder.is_symlink() else []:
        rel = path.relative_to(root).as_posix()
        if path.suffix != ".proof":
            report.add("consistency-misnamed", f"{rel} is not named <old size>.proof", path=rel)
            continue
        raw = _read_bag_file(root, rel, report)
        if raw is None:
            continue
        try:
            old, new, hashes = parse_consistency_proof(raw)
        except InputError as exc:
            report.add("consistency-malformed", f"{rel}: {exc.message}", path=rel)
            continue
        if path.name != f"{old}.proof":
            report.add("consistency-misnamed", f"{rel} holds a proof from size {old}", path=rel)
            continue
        if bundle is not None and new != bundle[1].size:
            report.add(
                "consistency-wrong-size",
                f"{rel} leads to size {new}, not to the checkpoint's size {bundle[1].size}",
                path=rel,
            )
            continue
        if not 1 <= old < new:
            report.add("consistency-malformed", f"{rel} goes from size {old} to {new}", path=rel)
            continue
        proofs[old] = hashes
        report.consistency_proofs += 1
    return proofs


def _check_since(
    since: bytes,
    trusted: Sequence[VerifierKey],
    shipped: Mapping[str, VerifierKey],
    bundle: tuple[bytes, Checkpoint] | None,
    proofs: dict[int, list[bytes]],
    report: AuditReport,
) -> None:
    """Check that the bundle's checkpoint extends the earlier checkpoint ``since``.

    The earlier checkpoint is untrusted input like the bundle: its signature must be by a
    trusted key before its size or root mean anything.
    """
    try:
        old = open_checkpoint(since, trusted)
    except VerificationError as exc:
        # Each finding's own message: the error's message ends with its (empty) location.
        for finding in exc.findings:
            message = (
                _untrusted("the earlier checkpoint", _note_signers(since), shipped)
                if finding.code == "note-untrusted"
                else f"the earlier checkpoint: {finding.message}"
            )
            report.add("since-untrusted", message, subject="--since")
        return
    except InputError as exc:
        # Signed by a trusted key, yet not a checkpoint: the wrong file was given.
        raise InputError(
            f"the earlier checkpoint given with --since is not a checkpoint: {exc.message}",
            _SINCE_HINT,
        ) from None
    if bundle is None:
        return
    _note, new = bundle
    if old.origin != new.origin:
        report.add(
            "since-other-log",
            f"the earlier checkpoint is of log {old.origin!r}, the bundle's of {new.origin!r}",
            subject="--since",
        )
        return
    if old.size > new.size:
        report.add(
            "since-rollback",
            f"the earlier checkpoint has {old.size} events, more than "
            f"the bundle's {new.size}: the log was rolled back",
            subject="--since",
        )
        return
    if old.size == new.size:
        if old.root != new.root:
            report.add(
                "since-fork",
                f"two different roots for log size {old.size}: the log was forked",
                subject="--since",
            )
        else:
            report.since_size = old.size  # The same log: nothing was added since.
        return
    rel = f"{CONSISTENCY_FOLDER}/{old.size}.proof"
    hashes = proofs.get(old.size)
    if hashes is None:
        report.add(
            "since-unproven",
            f"the bundle carries no usable consistency proof from size {old.size} to "
            f"{new.size} ({rel}); check the log itself with `evidence log consistency`",
            subject="--since",
        )
        return
    try:
        verify_consistency(old.size, new.size, hashes, old.root, new.root)
    except VerificationError as exc:
        for finding in exc.findings:
            report.add(
                "since-inconsistent",
                f"the earlier checkpoint (size {old.size}) is not extended by the bundle's "
                f"(size {new.size}): {finding.message}",
                path=rel,
                subject="--since",
            )
    else:
        report.since_size = old.size


def audit_bundle(
    bundle: Path,
    trusted: Sequence[TrustedKey],
    *,
    since: bytes | None = None,
    progress: Progress | None = None,
    limits: ZipLimits | None = None,
) -> AuditReport:
    """Audit a bag directory or zip; see the module docstring for what is checked.

    Raises :class:`InputError` only when ``bundle`` is neither a directory nor a file, or when
    ``since`` is not a checkpoint at all: not a signed note, or a note signed by a trusted key
    whose text is not a checkpoint (:func:`load_since_checkpoint` names the file). Everything
    wrong inside the bundle is a finding in the report, and so is an earlier checkpoint that is
    not signed by a trusted key or is not extended by the bundle's.
    """
    bundle = Path(bundle)
    if since is not None:
        _check_since_form(since, "the earlier checkpoint given with --since")
    report = AuditReport(bundle=str(bundle))
    try:
        with _opened(bundle, limits or ZipLimits()) as root:
            _audit_bag(root, trusted, since, progress, report)
    except _Unsafe as exc:
        report.add(exc.code, f"refused: {exc.message}", path=exc.path)
    return report


def _audit_bag(
    root: Path,
    trusted: Sequence[TrustedKey],
    since: bytes | None,
    progress: Progress | None,
    report: AuditReport,
) -> None:
    files, hashed, info = _check_bag(root, report, progress)
    if any(f.code == "file-unreadable" for f in report.findings):
        # What follows would only repeat, file by file, that what cannot be read is missing.
        report.warnings.append(
            "the signatures, proofs and custody events were not checked, as part of the "
            "bundle cannot be read"
        )
        return
    shipped = _bundle_keys(root, report)
    checkpoint_note = _read_bag_file(
        root,
        CHECKPOINT_FILE,
        report,
        missing_code="checkpoint-missing",
        missing="the bundle has no checkpoint",
    )
    if trusted:
        trust = _resolve_trust(trusted, shipped, info, checkpoint_note)
    else:
        trust = list(shipped.values())
        report.warnings.append(
            "no --trust key given: trusting the bundle's own keys. This shows that the bundle "
            "is intact and self-consistent, not who made it; give --trust KEYFILE with a key "
            "you obtained from the exporting organisation"
        )
    report.trusted_keys = tuple(trust)
    _check_signature(root, files, info.get("Signing-Key-Id", ""), trust, shipped, report)
    opened = _open_bundle_checkpoint(checkpoint_note, trust, shipped, info, report)
    actors = dict(shipped) | {k.key_id: k for k in trust}
    leaves, parsed, signed = _check_leaves(root, actors, opened[1] if opened else None, report)
    proven = _check_event_proofs(root, opened, parsed, report)
    records = _check_proofs_and_originals(root, opened, leaves, hashed, report)
    _check_listing(root, records, report)
    _check_erns(records, [(rel, leaf) for rel, leaf in signed if rel in proven], hashed, report)
    consistency = _check_consistency_files(root, opened, report)
    if since is not None:
        _check_since(since, trust, shipped, opened, consistency, report)
