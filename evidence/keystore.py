"""Where investigators' private keys live and how a command finds and unlocks one.

Private keys are kept outside the case directory by default, in ``$EVIDENCE_HOME/keys``
(``~/.evidence/keys`` when ``EVIDENCE_HOME`` is unset), one ``<name>.key`` file each, so that a
copied or seized case directory carries no signing key. The passphrase comes from
``--passphrase-file``, the ``EVIDENCE_PASSPHRASE`` variable or a prompt on a terminal; never from
a command-line argument.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from chain_of_custody import Signer, load_signer
from evidence.errors import EnvironmentProblem, InputError
from evidence.workspace import Case

PASSPHRASE_ENV = "EVIDENCE_PASSPHRASE"  # noqa: S105 - the name of a variable, not a secret
KEY_ENV = "EVIDENCE_KEY"
HOME_ENV = "EVIDENCE_HOME"
MIN_PASSPHRASE = 8


def key_dir() -> Path:
    """The folder of private key files."""
    home = os.environ.get(HOME_ENV)
    base = Path(home) if home else Path.home() / ".evidence"
    return base / "keys"


def default_key_path(name: str) -> Path:
    """Where the key of ``name`` is written by ``init`` and ``keys generate``."""
    return key_dir() / f"{name}.key"


def read_passphrase(passphrase_file: Path | None, *, new: bool = False) -> bytes:
    """The passphrase from a file, the environment or a terminal prompt, as bytes."""
    if passphrase_file is not None:
        try:
            text = passphrase_file.read_bytes()
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot read the passphrase file {passphrase_file}: {exc.strerror}",
                "check the path given to --passphrase-file",
            ) from None
        value = text.rstrip(b"\r\n")
    elif os.environ.get(PASSPHRASE_ENV):
        value = os.environ[PASSPHRASE_ENV].encode()
    elif sys.stdin.isatty():
        value = getpass.getpass("Key passphrase: ").encode()
        if new and getpass.getpass("Repeat the passphrase: ").encode() != value:
            raise InputError("the two passphrases differ", "run the command again")
    else:
        raise EnvironmentProblem(
            "no passphrase for the key: not on a terminal, no --passphrase-file, "
            f"no {PASSPHRASE_ENV}",
            f"give --passphrase-file FILE or set {PASSPHRASE_ENV}",
        )
    if new and len(value) < MIN_PASSPHRASE:
        raise InputError(
            f"the passphrase is too short (at least {MIN_PASSPHRASE} characters)",
            "choose a longer passphrase",
        )
    if not value:
        raise InputError("the passphrase is empty", "give the key's passphrase")
    return value


def find_key_file(case: Case, key: Path | None) -> Path:
    """The key file to sign with: ``--key``, ``EVIDENCE_KEY``, or the one enrolled key found."""
    if key is not None:
        return key
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    rows = case.db.execute(
        "SELECT name FROM keys WHERE revoked_seq IS NULL ORDER BY enrolled_seq"
    ).fetchall()
    found = [default_key_path(row[0]) for row in rows if default_key_path(row[0]).is_file()]
    if len(found) == 1:
        return found[0]
    if not found:
        raise EnvironmentProblem(
            f"no key enrolled in case {case.config.case_id} was found in {key_dir()}",
            "name your key file with --key FILE or EVIDENCE_KEY, "
            "or have it enrolled with `evidence keys enrol`",
        )
    names = ", ".join(p.name for p in found)
    raise InputError(
        f"several enrolled keys are on this machine ({names})",
        "choose one with --key FILE or EVIDENCE_KEY",
    )


def unlock(case: Case, key: Path | None, passphrase_file: Path | None) -> Signer:
    """Find and unlock the signing key for a command that records events."""
    # A read-only case is refused before a passphrase is asked for or anything is written.
    case.require_writable()
    path = find_key_file(case, key)
    signer = load_signer(path, read_passphrase(passphrase_file))
    row = case.db.execute(
        "SELECT revoked_seq FROM keys WHERE key_id = ?", [signer.verifier.key_id]
    ).fetchone()
    if row is None:
        raise EnvironmentProblem(
            f"the key {signer.verifier.key_id} ({path}) is not enrolled in case "
            f"{case.config.case_id}",
            "have an enrolled investigator run `evidence keys enrol` with your public key",
        )
    if row[0] is not None:
        raise EnvironmentProblem(
            f"the key {signer.verifier.key_id} was revoked at seq {row[0]}",
            "use another enrolled key",
        )
    return signer
