"""Writing a submission bundle as a BagIt 1.0 bag (RFC 8493) and as a deterministic zip.

Layout (SPEC section 7)::

    bagit.txt  bag-info.txt  manifest-sha256.txt  manifest-sha512.txt
    tagmanifest-sha256.txt  tagmanifest-sha256.txt.sig  tagmanifest-sha256.txt.sig.b64
    data/index.html  data/index.pdf
    data/originals/<ERN>_<safe name>      byte-identical originals, hashes checked while copied
    data/stamped/<ERN>_<safe name>        PDFs with the ERN stamped on every page
    data/protected/<ERN>.sealed           otp bundles only: annexes encrypted to the recipient
    data/metadata/items.json  items.csv  case.jsonld
    data/custody/events/<seq>.leaf  checkpoint.txt  proofs/<ERN>.proof
    data/custody/event-proofs/<seq>.proof       the inclusion proof of each event (as its leaf)
    data/custody/consistency/<old size>.proof   from earlier log sizes to the checkpoint's
    data/custody/keys/<name>_<key hash>.pub|.pem  VERIFY.md

The signature files are tag files left out of the tag manifest on purpose: they sign it.

The bag is built in a hidden sibling directory, every file and directory fsynced, and renamed
to its final name only when complete, so a crash never leaves a partial bundle under the final
name. Files get fixed modes and the bundle's ``created`` time as mtime, and manifests are
sorted, so the same content gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chain_of_custody.errors import (
    EnvironmentProblem,
    Finding,
    InputError,
    VerificationError,
)
from chain_of_custody.secretfile import fsync_directory
from evidence.claims import Claim, abandoned, claim_new
from evidence.workspace import toolkit_version
from exports.casejson import case_jsonld
from exports.consistency import format_consistency_proof
from exports.ecourt import items_csv, items_json
from exports.model import (
    CUSTODY_DIR,
    METADATA_DIR,
    STAMPED_DIR,
    BundleContent,
    BundleItem,
    BundleTestimony,
    annex_href,
    consistency_href,
    event_proof_href,
    key_href,
    leaf_href,
    original_href,
    parse_time,
    proof_href,
    stamped_href,
)
from exports.render import render_html, render_pdf, render_verify_md
from exports.stamp import stamp_pdf

BAGIT_VERSION = "1.0"
SIGNATURE_FILE = "tagmanifest-sha256.txt.sig"
SIGNATURE_B64_FILE = "tagmanifest-sha256.txt.sig.b64"
TAG_MANIFEST = "tagmanifest-sha256.txt"
FILE_MODE = 0o644
DIR_MODE = 0o755
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WrittenBag:
    """A finished bag: where it is, which ERNs got a stamped copy, and what went wrong softly."""

    path: Path
    stamped: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass
class _Entry:
    sha256: str
    sha512: str
    size: int


def _manifest_path(relpath: str) -> str:
    # RFC 8493 section 2.1.3: CR, LF and % in a file path are percent-encoded.
    return relpath.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _bag_size(octets: int) -> str:
    size = float(octets)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{octets} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def _one_line(value: str) -> str:
    """A bag-info value on one line (a line break would start a new, forged label)."""
    return " ".join(value.split())


class _BagBuilder:
    """Writes the files of one bag under ``root`` and remembers the payload hashes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.payload: dict[str, _Entry] = {}

    def _target(self, relpath: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_tag(self, relpath: str, data: bytes) -> None:
        self._write(self._target(relpath), data)

    def write_payload(self, relpath: str, data: bytes) -> None:
        self._write(self._target(f"data/{relpath}"), data)
        self.payload[f"data/{relpath}"] = _Entry(
            hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest(), len(data)
        )

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        with path.open("xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())

    def copy_original(self, record: BundleItem | BundleTestimony, source: Path) -> None:
        """Copy an original byte for byte, refusing it if its bytes are not the recorded ones."""
        relpath = f"data/{original_href(record)}"
        target = self._target(relpath)
        sha256, sha512, size = hashlib.sha256(), hashlib.sha512(), 0
        try:
            with source.open("rb") as src, target.open("xb") as out:
                while chunk := src.read(_CHUNK):
                    sha256.update(chunk)
                    sha512.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except FileNotFoundError as exc:
            raise VerificationError(
                Finding(
                    code="original-missing",
                    message=f"the original of {record.ern} is missing from the store",
                    subject=record.ern,
                    path=str(source),
                ),
                hint="run `evidence verify` on the case and restore the object from a backup",
            ) from exc
        except PermissionError as exc:
            raise EnvironmentProblem(
                f"cannot read the original of {record.ern} at {source}: permission denied",
                hint="check the permissions of the case directory",
            ) from exc
        found = (sha256.hexdigest(), sha512.hexdigest(), size)
        if found != (record.sha256, record.sha512, record.size):
            raise VerificationError(
                Finding(
                    code="original-hash-mismatch",
                    message=(
                        f"the original of {record.ern} does not match its record: expected "
                        f"sha256 {record.sha256} ({record.size} bytes), found {found[0]} "
                        f"({found[2]} bytes)"
                    ),
                    subject=record.ern,
                    path=str(source),
                ),
                hint="run `evidence verify` on the case; do not submit until it is resolved",
            )
        self.payload[relpath] = _Entry(*found)

    def record_file(self, relpath: str) -> None:
        """Hash a payload file written by someone else (the stamper)."""
        sha256, sha512, size = hashlib.sha256(), hashlib.sha512(), 0
        with (self.root / relpath).open("rb") as src:
            while chunk := src.read(_CHUNK):
                sha256.update(chunk)
                sha512.update(chunk)
                size += len(chunk)
        self.payload[relpath] = _Entry(sha256.hexdigest(), sha512.hexdigest(), size)

    def manifest(self, algorithm: str) -> bytes:
        lines = [
            f"{getattr(self.payload[path], algorithm)}  {_manifest_path(path)}\n"
            for path in sorted(self.payload, key=lambda p: p.encode())
        ]
        return "".join(lines).encode()


def _stamp_items(builder: _BagBuilder, content: BundleContent) -> tuple[BundleContent, list[str]]:
    """Stamp each PDF marked for stamping; an unstampable PDF keeps only its original."""
    warnings: list[str] = []
    items: list[BundleItem] = []
    stamped_dir = builder.root / "data" / STAMPED_DIR
    for item in content.items:
        if not item.stamped:
            items.append(item)
            continue
        relpath = f"data/{stamped_href(item)}"
        target = builder.root / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Stamp from the verified copy in the bag, never from the store's original.
            stamp_pdf(builder.root / "data" / original_href(item), target, item.erns)
        except InputError as exc:
            warnings.append(f"{item.ern}: no stamped copy: {exc.message}")
            items.append(item.model_copy(update={"stamped": False}))
            continue
        builder.record_file(relpath)
        items.append(item)
    if stamped_dir.is_dir() and not any(stamped_dir.iterdir()):
        stamped_dir.rmdir()
    return content.model_copy(update={"items": tuple(items)}), warnings


def _bag_info(content: BundleContent, payload_octets: int, payload_files: int) -> bytes:
    info = content.info
    fields = [
        ("Source-Organization", info.organisation),
        *([("Contact-Name", info.contact_name)] if info.contact_name else []),
        *([("Contact-Email", info.contact_email)] if info.contact_email else []),
        (
            "External-Description",
            f"Submission bundle of case {info.case_id} ({info.case_title}): "
            f"{info.selection.describe()}; profile {info.profile}",
        ),
        ("Bagging-Date", info.created[:10]),
        ("External-Identifier", info.bundle_id),
        ("Internal-Sender-Identifier", info.case_id),
        # With the version: the same case state gives the same bundle from the same toolkit.
        ("Bag-Software-Agent", f"{info.software} {toolkit_version()}"),
        ("Payload-Oxum", f"{payload_octets}.{payload_files}"),
        ("Bag-Size", _bag_size(payload_octets)),
        ("Bundle-Created", info.created),
        ("Bundle-Profile", info.profile),
        (
            "Custody-Checkpoint",
            f"{info.checkpoint_origin} {info.checkpoint_size} {info.checkpoint_root}",
        ),
        ("Signing-Key-Id", info.exporter_key_id),
        ("Signature-File", f"{SIGNATURE_FILE} (Ed25519 over {TAG_MANIFEST})"),
    ]
    return "".join(f"{label}: {_one_line(value)}\n" for label, value in fields).encode()


def _write_contents(
    builder: _BagBuilder, content: BundleContent, sign: Callable[[bytes], bytes]
) -> WrittenBag:
    for item in content.items:
        builder.copy_original(item, item.original_path)
    for testimony in content.testimonies:
        builder.copy_original(testimony, testimony.document_path)
    content, warnings = _stamp_items(builder, content)

    for testimony in content.testimonies:
        if testimony.protected_annex is not None:
            builder.write_payload(annex_href(testimony), testimony.protected_annex)

    builder.write_payload(f"{METADATA_DIR}/items.json", items_json(content))
    builder.write_payload(f"{METADATA_DIR}/items.csv", items_csv(content))
    builder.write_payload(f"{METADATA_DIR}/case.jsonld", case_jsonld(content))

    for leaf in content.custody_events:
        builder.write_payload(leaf_href(leaf.seq), leaf.leaf)
        builder.write_payload(event_proof_href(leaf.seq), leaf.proof_text.encode())
    builder.write_payload(f"{CUSTODY_DIR}/checkpoint.txt", content.checkpoint_note)
    for record in content.records():
        builder.write_payload(proof_href(record), record.proof_text.encode())
    for consistency in content.consistency_proofs:
        builder.write_payload(
            consistency_href(consistency),
            format_consistency_proof(
                consistency.old_size, consistency.new_size, consistency.hashes
            ),
        )
    for key in content.verifier_keys:
        builder.write_payload(key_href(key, "pub"), (key.note_text.strip() + "\n").encode())
        builder.write_payload(key_href(key, "pem"), key.pem.encode())
    builder.write_payload(f"{CUSTODY_DIR}/VERIFY.md", render_verify_md(content).encode())

    builder.write_payload("index.html", render_html(content).encode())
    builder.write_payload("index.pdf", render_pdf(content))

    octets = sum(entry.size for entry in builder.payload.values())
    tags = {
        "bagit.txt": (
            f"BagIt-Version: {BAGIT_VERSION}\nTag-File-Character-Encoding: UTF-8\n"
        ).encode(),
        "bag-info.txt": _bag_info(content, octets, len(builder.payload)),
        "manifest-sha256.txt": builder.manifest("sha256"),
        "manifest-sha512.txt": builder.manifest("sha512"),
    }
    for name, data in tags.items():
        builder.write_tag(name, data)
    tag_manifest = "".join(
        f"{hashlib.sha256(tags[name]).hexdigest()}  {name}\n" for name in sorted(tags)
    ).encode()
    builder.write_tag(TAG_MANIFEST, tag_manifest)

    signature = sign(tag_manifest)
    if not isinstance(signature, bytes) or len(signature) != 64:
        raise ValueError("sign_tagmanifest must return a 64-byte Ed25519 signature")
    builder.write_tag(SIGNATURE_FILE, signature)
    builder.write_tag(SIGNATURE_B64_FILE, base64.b64encode(signature) + b"\n")
    stamped = tuple(item.ern for item in content.items if item.stamped)
    return WrittenBag(path=builder.root, stamped=stamped, warnings=tuple(warnings))


def _settle(root: Path, mtime: float) -> None:
    """Fix modes and times of everything under ``root`` and fsync every directory."""
    directories = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in filenames:
            path = base / name
            path.chmod(FILE_MODE)
            os.utime(path, (mtime, mtime), follow_symlinks=False)
        directories.extend(base / name for name in dirnames)
    # Deepest first: touching a file or subdirectory does not change a directory's mtime,
    # but being explicit about the order keeps it obvious.
    for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
        directory.chmod(DIR_MODE)
        os.utime(directory, (mtime, mtime), follow_symlinks=False)
        fsync_directory(directory)


def _refuse_existing(path: Path) -> None:
    if path.exists() or path.is_symlink():
        raise InputError(
            f"{path} already exists",
            hint="choose a new name; a bundle is never written over another file or directory",
        )


@dataclass(frozen=True)
class Staged:
    """A bag folder or zip written in full under a hidden name beside ``target``.

    :meth:`place` gives it its name; until then no one takes it for a finished bundle, and
    :meth:`discard` removes it. An export records itself in the log between the two, so that
    a bundle that can be seen is one that the log records.
    """

    temp: Path
    target: Path
    # Held until it is named or removed: a later export leaves it alone while this one runs.
    claim: Claim = field(default_factory=lambda: Claim(None), compare=False)
    # Finished files of earlier exports of ``target`` that are recorded but never took their
    # name (found beside it, and left there: see :func:`_remove_stale_partials`).
    kept: tuple[Path, ...] = ()

    def place(self) -> Path:
        """Rename it to ``target`` (refused if that name was taken meanwhile)."""
        self.check_target_free()
        self.temp.rename(self.target)
        self.claim.release()
        fsync_directory(self.target.parent)
        return self.target

    def check_target_free(self) -> None:
        """Refuse (``InputError``) if ``target`` exists: checked once more before an export
        is recorded, so that its files can then be given their names."""
        _refuse_existing(self.target)

    def discard(self) -> None:
        _remove(self.temp)
        self.claim.release()


def write_bag(
    content: BundleContent,
    out_dir: Path,
    *,
    sign_tagmanifest: Callable[[bytes], bytes],
    signer_key_id: str,
) -> WrittenBag:
    """Write the bundle as a BagIt bag at ``out_dir``, which must not exist yet
    (:func:`stage_bag`, then :meth:`Staged.place`)."""
    staged, written = stage_bag(
        content, out_dir, sign_tagmanifest=sign_tagmanifest, signer_key_id=signer_key_id
    )
    try:
        staged.place()
    except BaseException:
        staged.discard()
        raise
    return written


def stage_bag(
    content: BundleContent,
    out_dir: Path,
    *,
    sign_tagmanifest: Callable[[bytes], bytes],
    signer_key_id: str,
    recorded: Callable[[str], bool] | None = None,
) -> tuple[Staged, WrittenBag]:
    """Write the bundle as a BagIt bag under a hidden name beside ``out_dir``, which must not
    exist yet; :meth:`Staged.place` gives it that name.

    ``sign_tagmanifest`` returns the Ed25519 signature of the tag manifest bytes by the key
    ``signer_key_id``, which must be the bundle's exporter key. Raises ``InputError`` if
    ``out_dir`` exists, ``VerificationError`` if an original does not match its record;
    nothing is left behind unless the whole bag was written. What killed exports of
    ``out_dir`` left is removed, except the finished bags of bundles that ``recorded`` (given a
    bundle id) says the log records.
    """
    out_dir = Path(out_dir)
    if signer_key_id != content.info.exporter_key_id:
        raise InputError(
            f"the signing key {signer_key_id} is not the bundle's exporter key "
            f"{content.info.exporter_key_id}",
            hint="sign the bundle with the key named as exporter",
        )
    _refuse_existing(out_dir)
    parent = out_dir.parent
    if not parent.is_dir():
        raise EnvironmentProblem(
            f"cannot write the bundle: {parent} is not a directory",
            hint="create the parent directory first",
        )
    kept = _remove_stale_partials(parent, out_dir.name, recorded)
    try:
        partial, held = claim_new(
            lambda: Path(tempfile.mkdtemp(prefix=_partial_prefix(out_dir.name), dir=parent))
        )
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot create a working directory in {parent}: {exc.strerror}",
            hint="check that the directory is writable and has free space",
        ) from exc
    staged = Staged(partial, out_dir, held, kept)
    try:
        written = _write_contents(_BagBuilder(partial), content, sign_tagmanifest)
        _settle(partial, parse_time(content.info.created).timestamp())
        fsync_directory(parent)
    except BaseException:
        staged.discard()
        raise
    bag = WrittenBag(path=out_dir, stamped=written.stamped, warnings=written.warnings)
    return staged, bag


def _partial_prefix(name: str) -> str:
    # The pid and the claim (evidence.claims) tell a crashed run's leftovers from an export
    # still going.
    return f".{name}.partial-{os.getpid()}-"


def _remove_stale_partials(
    parent: Path, name: str, recorded: Callable[[str], bool] | None = None
) -> tuple[Path, ...]:
    """Remove what killed exports of ``name`` left behind (never a live export's work, from
    this machine or another), and return what was kept.

    Kept is a finished bag or zip whose bundle ``recorded`` says the log records: an export
    recorded whose files could not take their name (the error named them), or one killed
    between the two. Those are the files the log describes, for the user to move.
    """
    prefix = f".{name}.partial-"
    try:
        entries = [p for p in parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return ()
    kept = []
    for entry in entries:
        held = abandoned(entry, entry.name[len(prefix) :].split("-", 1)[0])
        if held is None:
            continue
        bundle_id = _finished_bundle_id(entry) if recorded is not None else None
        if bundle_id is not None and recorded is not None and recorded(bundle_id):
            kept.append(entry)
        else:
            _remove(entry)
        held.release()
    return tuple(sorted(kept))


# The bag-info.txt field that holds the bundle id.
_BUNDLE_ID_LABEL = b"External-Identifier: "


def _finished_bundle_id(entry: Path) -> str | None:
    """The bundle id of the bag folder or zip at ``entry`` if it was written to the end (its
    tag manifest is signed, and a zip's central directory is whole); else None."""
    if entry.is_symlink():
        return None
    try:
        if entry.is_dir():
            if not (entry / SIGNATURE_FILE).is_file():
                return None
            info = (entry / "bag-info.txt").read_bytes()
        else:
            with zipfile.ZipFile(entry) as archive:
                names = set(archive.namelist())
                tops = {name.split("/", 1)[0] for name in names}
                if len(tops) != 1:
                    return None
                [top] = tops
                if f"{top}/{SIGNATURE_FILE}" not in names:
                    return None
                info = archive.read(f"{top}/bag-info.txt")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    for line in info.splitlines():
        if line.startswith(_BUNDLE_ID_LABEL):
            return line[len(_BUNDLE_ID_LABEL) :].decode("utf-8", "replace").strip() or None
    return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _zip_time(created: str) -> tuple[int, int, int, int, int, int]:
    moment = parse_time(created)
    if moment.year < 1980:  # the earliest time a zip entry can hold
        return (1980, 1, 1, 0, 0, 0)
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)


def write_zip(bag_dir: Path, zip_path: Path, *, created: str) -> Path:
    """Write a deterministic zip of ``bag_dir`` to ``zip_path``, which must not exist yet
    (:func:`stage_zip`, then :meth:`Staged.place`)."""
    staged = stage_zip(bag_dir, zip_path, created=created)
    try:
        return staged.place()
    except BaseException:
        staged.discard()
        raise


def stage_zip(
    bag_dir: Path,
    zip_path: Path,
    *,
    created: str,
    top: str | None = None,
    recorded: Callable[[str], bool] | None = None,
) -> Staged:
    """Write a deterministic zip of ``bag_dir`` under a hidden name beside ``zip_path``, which
    must not exist yet; :meth:`Staged.place` gives it that name. Leftovers of killed exports
    of ``zip_path`` are removed, except finished zips of bundles ``recorded`` says the log
    records (as :func:`stage_bag`).

    Entries are ``<top>/<path>`` (by default the bag folder's name; a staged bag is zipped
    under the name it will have), sorted, with the ``created`` time, mode 0644 and deflate at
    zlib's default level, so the same bag and time give the same bytes. A name that is not
    ASCII (a Cyrillic file name) is stored as UTF-8 with the zip's UTF-8 flag (general purpose
    bit 11, which ``zipfile`` sets for such names), so that unzip tools show it as written.
    """
    bag_dir, zip_path = Path(bag_dir), Path(zip_path)
    top = top or bag_dir.name
    if not (bag_dir / "bagit.txt").is_file():
        raise InputError(f"{bag_dir} is not a bag (no bagit.txt)", hint="give the bag directory")
    _refuse_existing(zip_path)
    files: list[tuple[str, Path]] = []
    for dirpath, _dirnames, filenames in os.walk(bag_dir):
        for name in filenames:
            path = Path(dirpath) / name
            if not stat.S_ISREG(path.lstat().st_mode):
                raise InputError(
                    f"{path} is not a regular file", hint="a bag holds regular files only"
                )
            files.append((path.relative_to(bag_dir).as_posix(), path))
    files.sort(key=lambda entry: entry[0].encode())
    date_time = _zip_time(created)

    kept = _remove_stale_partials(zip_path.parent, zip_path.name, recorded)
    temp, held = claim_new(lambda: _new_file(zip_path))
    staged = Staged(temp, zip_path, held, kept)
    try:
        with temp.open("r+b") as raw:
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for relpath, path in files:
                    info = zipfile.ZipInfo(f"{top}/{relpath}", date_time=date_time)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.create_system = 3  # Unix, so that external_attr carries the mode
                    info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
                    info.file_size = path.stat().st_size
                    with path.open("rb") as src, archive.open(info, "w") as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
            raw.flush()
            os.fsync(raw.fileno())
        temp.chmod(FILE_MODE)
        fsync_directory(zip_path.parent)
    except BaseException:
        staged.discard()
        raise
    return staged


def _new_file(beside: Path) -> Path:
    """A new empty file under a hidden working name beside ``beside``."""
    fd, name = tempfile.mkstemp(prefix=_partial_prefix(beside.name), dir=beside.parent)
    os.close(fd)
    return Path(name)
