"""The case's recipients: X25519 public keys that protected annexes are sealed to.

Adding a recipient is a ``recipient.added`` event holding the public key's text form; the
catalog's ``recipients`` table is its projection. Private recipient keys are kept outside the
case, like signing keys: ``$EVIDENCE_HOME/recipients/<name>.key`` (passphrase-encrypted PKCS#8,
mode 0600), so that a copied case directory opens no annex.

A new recipient key pair is kept only if it is recorded (:func:`add_new_recipient`): its files
are given their names inside the transaction that records it, and removed again if that fails.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain_of_custody import EventDraft, Signer
from evidence.errors import EnvironmentProblem, InputError
from evidence.keystore import key_dir, new_key_files
from evidence.protected import (
    PUBLIC_KEY_FILE_HINT,
    RecipientKey,
    RecipientPublicKey,
    generate_recipient,
    load_recipient,
    save_recipient,
)
from evidence.workspace import Case, Recorder

# A public key file is one line of about 80 characters (or a PEM of about 110).
_MAX_PUBLIC_KEY_FILE = 64 * 1024


def recipient_dir() -> Path:
    """The folder of private recipient key files (beside the signing keys' folder)."""
    return key_dir().parent / "recipients"


def default_recipient_path(name: str) -> Path:
    """Where the private key of recipient ``name`` is kept."""
    return recipient_dir() / f"{name}.key"


@dataclass(frozen=True)
class RecipientInfo:
    """A recipient of the case as the catalog holds it."""

    recipient_id: str
    name: str
    public_key: str
    added_seq: int

    def as_json(self) -> dict[str, object]:
        """A machine-readable form for ``--json``."""
        return {
            "recipient_id": self.recipient_id,
            "name": self.name,
            "public_key": self.public_key,
            "added_seq": self.added_seq,
        }


def read_public_key(path: Path, name: str | None = None) -> RecipientPublicKey:
    """A recipient public key from a file: the text form ``name+id+base64`` or a PEM.

    Messages name the file and never quote what it holds: a file given by mistake (a
    testimony, say) can hold protected text. A private key file is refused as such.
    """
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise InputError(f"{path}: not a file", PUBLIC_KEY_FILE_HINT)
        with path.open("rb") as handle:
            raw = handle.read(_MAX_PUBLIC_KEY_FILE + 1)
    except PermissionError:
        raise EnvironmentProblem(
            f"{path}: permission denied", "check you may read the recipient public key file"
        ) from None
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read the recipient public key ({exc.strerror or type(exc).__name__})",
            "check the path and that you may read the file",
        ) from None
    if len(raw) > _MAX_PUBLIC_KEY_FILE:
        raise InputError(f"{path}: too large to be a recipient public key", PUBLIC_KEY_FILE_HINT)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(
            f"{path}: not a recipient public key (not text)", PUBLIC_KEY_FILE_HINT
        ) from None
    stripped = text.lstrip()
    if stripped.startswith("-----BEGIN") and "PRIVATE KEY-----" not in stripped.split("\n", 1)[0]:
        if not name:
            raise InputError(
                f"{path} is a PEM key without a name", "give the recipient's name with --name"
            )
        return RecipientPublicKey.from_pem(name, raw)
    return RecipientPublicKey.from_text(text, source=path)


def check_new_recipient(case: Case, name: str) -> Path:
    """Refuse a new key pair for ``name`` if its key file exists or the case has a recipient
    of that name; else return where its private key will be kept. Checked before anything is
    asked for or written (:func:`add_new_recipient` checks again)."""
    path = default_recipient_path(name)
    if path.exists() or path.is_symlink():
        raise InputError(
            f"a recipient key named {name!r} exists already at {path}",
            "if it is not yet a recipient of this case (an earlier run was interrupted), add it "
            f"with --public-key {path.with_suffix('.pub')}; otherwise choose another name",
        )
    _check_name_free(case.db.execute, name)
    return path


def add_new_recipient(
    case: Case, signer: Signer, name: str, passphrase: bytes
) -> tuple[RecipientInfo, Path]:
    """Make a recipient key pair, keep its private key in the recipients folder (encrypted
    under ``passphrase``) and record the recipient: all or nothing.

    The key files are written under temporary names and given their names inside the
    transaction that records the recipient, just before it commits; if anything fails (the
    name is in use, the catalog cannot be written) they are removed, and running the same
    command again works. Returns the recipient and its private key file.
    """
    path = check_new_recipient(case, name)
    key = generate_recipient(name)
    with (
        new_key_files(
            path, lambda temp: save_recipient(key, temp, passphrase), key.public.to_text()
        ) as staged,
        case.transaction() as rec,
    ):
        _append_recipient(rec, signer, key.public)
        staged.publish()
    case.checkpoint(signer)
    return _info(case, key.public.recipient_id), path


def add_recipient(case: Case, signer: Signer, public: RecipientPublicKey) -> RecipientInfo:
    """Record a new recipient of the case's protected annexes."""
    with case.transaction() as rec:
        _append_recipient(rec, signer, public)
    case.checkpoint(signer)
    return _info(case, public.recipient_id)


def _append_recipient(rec: Recorder, signer: Signer, public: RecipientPublicKey) -> None:
    """Append the ``recipient.added`` event, refusing a key or a name the case has already."""
    known = rec.db.execute(
        "SELECT added_seq FROM recipients WHERE recipient_id = ?", [public.recipient_id]
    ).fetchone()
    if known is not None:
        raise InputError(
            f"the recipient key {public.recipient_id} was added already at seq {known[0]}",
            "list the recipients with `evidence keys recipient list`",
        )
    _check_name_free(rec.db.execute, public.name)
    rec.append(
        EventDraft(
            action="recipient.added",
            subject=public.recipient_id,
            data={"name": public.name, "public_key": public.to_text()},
        ),
        signer,
    )


def _check_name_free(execute: Callable[..., Any], name: str) -> None:
    """Refuse a name another recipient key of the case has: names tell recipients apart."""
    row = execute(
        "SELECT recipient_id, added_seq FROM recipients WHERE name = ?", [name]
    ).fetchone()
    if row is not None:
        raise InputError(
            f"the case has a recipient named {name!r} already ({row[0]}, added at seq {row[1]})",
            "choose another name; list the recipients with `evidence keys recipient list`",
        )


def _info(case: Case, recipient_id: str) -> RecipientInfo:
    return next(r for r in list_recipients(case) if r.recipient_id == recipient_id)


def list_recipients(case: Case) -> list[RecipientInfo]:
    """The case's recipients in the order they were added."""
    return [
        RecipientInfo(row[0], row[1], row[2], int(row[3]))
        for row in case.db.execute(
            "SELECT recipient_id, name, public_key, added_seq FROM recipients ORDER BY added_seq"
        ).fetchall()
    ]


def case_recipients(case: Case) -> list[RecipientPublicKey]:
    """The public keys annexes of this case are sealed to."""
    return [RecipientPublicKey.from_text(r.public_key) for r in list_recipients(case)]


def find_recipient_key(case: Case, path: Path | None, passphrase: bytes) -> RecipientKey:
    """Unlock a private recipient key of this case: ``path``, or the one found in the folder."""
    known = {r.recipient_id for r in list_recipients(case)}
    if path is None:
        candidates = sorted(recipient_dir().glob("*.key")) if recipient_dir().is_dir() else []
        found = [p for p in candidates if _public_id(p) in known]
        if not found:
            raise EnvironmentProblem(
                f"no private key of a recipient of case {case.config.case_id} in {recipient_dir()}",
                "name the recipient key file with --recipient-key FILE",
            )
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise InputError(
                f"several recipient keys of this case are on this machine ({names})",
                "choose one with --recipient-key FILE",
            )
        path = found[0]
    key = load_recipient(path, passphrase)
    if key.recipient_id not in known:
        raise EnvironmentProblem(
            f"the recipient key {key.recipient_id} ({path}) is not a recipient of case "
            f"{case.config.case_id}",
            "use a key listed by `evidence keys recipient list`",
        )
    return key


def _public_id(private_path: Path) -> str | None:
    # The .pub file written beside the key names it without unlocking it.
    try:
        text = private_path.with_suffix(".pub").read_text(encoding="utf-8").strip()
        return RecipientPublicKey.from_text(text).recipient_id
    except (OSError, UnicodeDecodeError, InputError):
        return None
