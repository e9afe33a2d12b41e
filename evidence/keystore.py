"""Where investigators' private keys live and how a command finds and unlocks one.

Private keys are kept outside the case directory by default, in ``$EVIDENCE_HOME/keys``
(``~/.evidence/keys`` when ``EVIDENCE_HOME`` is unset), one ``<name>.key`` file each, so that a
copied or seized case directory carries no signing key. The passphrase comes from
``--passphrase-file``, the ``EVIDENCE_PASSPHRASE`` variable or a prompt on a terminal; never from
a command-line argument.

A new key's files appear whole or not at all (:func:`new_key_files`): they are written under
temporary names and given their names only once the key is made, and, for a key recorded in a
case, only inside the transaction that records it; a failure removes them again, so that
running the same command again works.

A command signs with the key named by ``--key`` or ``EVIDENCE_KEY``, or else with the one key
of the key folder enrolled in the case. There is no default among several: when the folder
holds more than one enrolled key, the command names them and asks which one to use.

A key file's passphrase is changed (:func:`change_passphrase`) by writing the key again, under
the new passphrase, to a temporary file beside it, which one rename puts in its place: the
file is the old one or the new one, whole, whenever the machine stops.
"""

from __future__ import annotations

import contextlib
import getpass
import hmac
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from chain_of_custody import Signer, load_signer, save_signer
from chain_of_custody.keys import KEY_NAME_HEADER
from chain_of_custody.secretfile import (
    fsync_directory,
    publish_without_replacing,
    read_secret_file,
    replace_secret_file,
)
from evidence.claims import Claim, ClaimLost, abandoned, claim
from evidence.errors import EnvironmentProblem, InputError, KeyFileError, PassphraseError
from evidence.protected import RECIPIENT_NAME_HEADER, load_recipient, save_recipient
from evidence.workspace import CASE_FILE, Case

PASSPHRASE_ENV = "EVIDENCE_PASSPHRASE"  # noqa: S105 - the name of a variable, not a secret
KEY_ENV = "EVIDENCE_KEY"
HOME_ENV = "EVIDENCE_HOME"
MIN_PASSPHRASE = 8

_Key = TypeVar("_Key")


def key_dir() -> Path:
    """The folder of private key files."""
    home = os.environ.get(HOME_ENV)
    base = Path(home) if home else Path.home() / ".evidence"
    return base / "keys"


def default_key_path(name: str) -> Path:
    """Where the key of ``name`` is written by ``init`` and ``keys generate``."""
    return key_dir() / f"{name}.key"


def new_key_path(name: str, out: str | os.PathLike[str] | None) -> Path:
    """Where ``keys generate`` writes the key of ``name``: ``out`` (a ``.key`` file, or a
    folder to write ``<name>.key`` in), else the key folder.

    ``out`` is a folder if it is one or ends in a slash (created, mode 0700, if it does not
    exist), the key file itself if its name ends in ``.key``; any other ``out`` is refused,
    since ``--out keys-for-b`` could mean either. Refuses a file that exists already, and a
    place inside a case folder: keys are kept outside cases, so that a copied or seized case
    carries none.
    """
    if out is None:
        path = default_key_path(name)
    else:
        text = os.fspath(out)
        given = Path(text)
        folder = text.endswith(("/", os.sep)) or given.is_dir()
        path = given / f"{name}.key" if folder else given
        if not folder and path.suffix not in (".key", ".pub") and not os.path.lexists(path):
            raise InputError(
                f"--out {text} names neither a folder nor a .key file",
                f"for a folder (made if needed) end it with a slash: --out {text}/ ; for the "
                f"key file itself end its name in .key: --out {text}.key",
            )
    case_root = _case_holding(path.parent)
    if case_root is not None:
        raise InputError(
            f"{path} would be inside the case folder {case_root}; keys are kept outside cases, "
            "so that a copied or seized case carries no private key",
            "choose a place outside any case with --out (a folder of yours, or a USB stick to "
            "hand over), or drop --out to use your key folder",
        )
    if path.suffix == ".pub":
        raise InputError(
            f"{path} ends in .pub, the name of the public key file written beside the key",
            "name the private key file with another ending, e.g. .key",
        )
    if os.path.lexists(path):
        raise InputError(f"{path} exists already", "choose another --name or --out")
    return path


def _case_holding(folder: Path) -> Path | None:
    """The case folder that ``folder`` is or lies inside (it need not exist), if any: the
    nearest folder among it and its ancestors that holds a case file."""
    resolved = folder.resolve()
    for candidate in (resolved, *resolved.parents):
        with contextlib.suppress(OSError):
            if (candidate / CASE_FILE).is_file():
                return candidate
    return None


def create_key(signer: Signer, path: Path, passphrase: bytes) -> Path:
    """Write ``signer`` to a new key file at ``path`` and its public key beside it (``.pub``),
    all or nothing; return the public key file."""
    with new_key_files(
        path, lambda temp: save_signer(signer, temp, passphrase), signer.verifier.to_note_text()
    ) as staged:
        staged.publish()
    return staged.public_path


def other_keys_in_folder(path: Path) -> list[Path]:
    """The key files of the key folder other than ``path``, if ``path`` is in that folder:
    each one a command of this machine could find instead of it (see :func:`find_key_file`)."""
    folder = key_dir()
    if path.parent != folder:
        return []
    with contextlib.suppress(OSError):
        return sorted(p for p in folder.glob("*.key") if p.name != path.name and p.is_file())
    return []


_PENDING = ".pending"


@dataclass
class StagedKey:
    """A new key's files, written under temporary names (see :func:`new_key_files`).

    ``path`` is the private key file to be, ``public_path`` the public key file beside it.
    """

    path: Path
    temp: Path
    public_temp: Path
    published: list[Path] = field(default_factory=list)

    @property
    def public_path(self) -> Path:
        """The public key file: ``path`` with the ``.pub`` ending."""
        return self.path.with_suffix(".pub")

    def publish(self) -> None:
        """Give both files their names, durably: the public key first (it may replace a stale
        public key file), then the private key, which never replaces a file."""
        try:
            self.public_temp.replace(self.public_path)
            self.published.append(self.public_path)
            publish_without_replacing(self.temp, self.path)
            self.published.append(self.path)
            fsync_directory(self.path.parent)
        except OSError as exc:
            raise KeyFileError(
                f"cannot write key file {self.path}: {exc.strerror}",
                hint="check that the folder is writable and has space, then run the command again",
            ) from exc

    def keep(self) -> None:
        """The published files are recorded now (the case enrolling the key is in place):
        no later failure removes them."""
        self.published.clear()

    def discard(self) -> None:
        """Remove what :meth:`publish` named: the key was not recorded after all."""
        for path in reversed(self.published):
            with contextlib.suppress(OSError):
                path.unlink()
        self.published.clear()
        with contextlib.suppress(OSError):
            fsync_directory(self.path.parent)


@contextmanager
def new_key_files(
    path: Path, write_private: Callable[[Path], None], public_text: str
) -> Iterator[StagedKey]:
    """Write a new key's files under temporary names beside ``path`` and yield them.

    ``write_private`` writes the encrypted private key to the file it is given (which must not
    exist); ``public_text`` is the public key's text form. The caller calls
    :meth:`StagedKey.publish` once the key is wanted (for a key recorded in a case: inside the
    transaction that records it, before it commits). If the block fails, whatever was
    published is removed again; the temporary files are removed in any case. A crash leaves at
    most temporary files (``.<name>.<pid>-<random>.pending``), which the next call for the
    same file clears, or a key file that nothing recorded, which the user is told about.
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot create the key folder {folder}: {exc.strerror}",
            "check that its parent folder exists and is writable, or choose another with --out",
        ) from None
    _remove_stale_pending(path)
    staged, held = _write_pending(path, write_private, public_text)
    try:
        yield staged
    except BaseException:
        staged.discard()
        raise
    finally:
        _remove_pending(staged, held)


_PENDING_ATTEMPTS = 5


def _write_pending(
    path: Path, write_private: Callable[[Path], None], public_text: str
) -> tuple[StagedKey, list[Claim]]:
    """Write both files under new temporary names and claim them (:mod:`evidence.claims`), so
    that a run for the same key file elsewhere leaves them alone; written again under other
    names while such a run takes them as a killed run's."""
    for _ in range(_PENDING_ATTEMPTS):
        token = f"{os.getpid()}-{secrets.token_hex(6)}"
        staged = StagedKey(
            path=path,
            temp=path.parent / f".{path.name}.{token}{_PENDING}",
            public_temp=path.parent / f".{path.with_suffix('.pub').name}.{token}{_PENDING}",
        )
        held: list[Claim] = []
        try:
            write_private(staged.temp)
            held.append(_claim_pending(staged.temp))
            _write_public(staged.public_temp, public_text)
            held.append(_claim_pending(staged.public_temp))
        except ClaimLost:
            _remove_pending(staged, held)
        except BaseException:
            _remove_pending(staged, held)
            raise
        else:
            return staged, held
    raise KeyFileError(
        f"cannot write a new key file in {path.parent}: other runs kept taking its temporary files",
        hint="run the command again once other key commands on this folder have finished",
    )


def _claim_pending(temp: Path) -> Claim:
    try:
        return claim(temp)
    except OSError as exc:
        raise KeyFileError(
            f"cannot lock the new key file {temp}: {exc.strerror}",
            hint="check the folder's permissions, then run the command again",
        ) from exc


def _remove_pending(staged: StagedKey, held: list[Claim]) -> None:
    for temp in (staged.temp, staged.public_temp):
        with contextlib.suppress(OSError):
            temp.unlink()
    for each in held:
        each.release()


def _write_public(path: Path, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, (text + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise KeyFileError(
            f"cannot write a public key file in {path.parent}: {exc.strerror}",
            hint="check that the folder is writable and has space, then run the command again",
        ) from exc


def _remove_stale_pending(path: Path) -> None:
    """Remove the temporary files of earlier runs for ``path`` that have ended (killed): keys
    that were never published (or published already, through another link)."""
    for name in (path.name, path.with_suffix(".pub").name):
        for leftover in path.parent.glob(f".{_glob_escape(name)}.*{_PENDING}"):
            held = abandoned(leftover, leftover.name[len(name) + 2 :].split("-", 1)[0])
            if held is not None:
                with contextlib.suppress(OSError):
                    leftover.unlink()
                held.release()


def _glob_escape(text: str) -> str:
    return "".join(f"[{ch}]" if ch in "*?[]" else ch for ch in text)


def read_passphrase(
    passphrase_file: Path | None, *, new: bool = False, option: str = "--passphrase-file"
) -> bytes:
    """The passphrase from a file, the environment or a terminal prompt, as bytes.

    ``option`` is the option that gave ``passphrase_file``, which messages name.
    """
    if passphrase_file is not None:
        value = _passphrase_from_file(passphrase_file, option)
    elif os.environ.get(PASSPHRASE_ENV):
        value = os.environ[PASSPHRASE_ENV].encode()
    elif sys.stdin.isatty():
        value = _typed_passphrase("Key passphrase: ", "Repeat the passphrase: " if new else None)
    else:
        raise EnvironmentProblem(
            "no passphrase for the key: not on a terminal, no --passphrase-file, "
            f"no {PASSPHRASE_ENV}",
            f"give --passphrase-file FILE or set {PASSPHRASE_ENV}",
        )
    return _checked_passphrase(value, new=new, option=option if passphrase_file else None)


def read_new_passphrase(new_passphrase_file: Path | None) -> bytes:
    """The new passphrase of a key file: from ``new_passphrase_file``, else typed twice on a
    terminal. Never from the environment, whose ``EVIDENCE_PASSPHRASE`` is the current one."""
    option = "--new-passphrase-file"
    if new_passphrase_file is not None:
        value = _passphrase_from_file(new_passphrase_file, option)
    elif sys.stdin.isatty():
        value = _typed_passphrase("New key passphrase: ", "Repeat the new passphrase: ")
    else:
        raise EnvironmentProblem(
            f"no new passphrase for the key: not on a terminal and no {option} "
            f"({PASSPHRASE_ENV} gives the current passphrase only)",
            f"give {option} FILE (a file only you can read; remove it afterwards), or run the "
            "command on a terminal to type the new passphrase",
        )
    return _checked_passphrase(value, new=True, option=option if new_passphrase_file else None)


# A byte order mark: UTF-8's is dropped from a passphrase file (editors on Windows write it);
# those of UTF-16 and UTF-32 mean a file in an encoding that is refused (NUL bytes too).
_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def _passphrase_from_file(path: Path, option: str) -> bytes:
    """The passphrase in the file ``path`` (given with ``option``): its UTF-8 text without a
    leading byte order mark and without the line break(s) that end it."""
    try:
        data = path.read_bytes()
    except PermissionError as exc:
        raise EnvironmentProblem(
            f"cannot read the passphrase file {path} ({option}): {exc.strerror}",
            f"make the file readable by you (only you: chmod 600 {path}), or give {option} "
            "a file you may read",
        ) from None
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot read the passphrase file {path} ({option}): {exc.strerror}",
            f"check the path given to {option}",
        ) from None
    save_as = (
        "save the passphrase as plain UTF-8 text (in Notepad: Save as, Encoding UTF-8; in "
        "PowerShell: Set-Content -Encoding UTF8) and run the command again"
    )
    if data.startswith(_WIDE_BOMS) or b"\x00" in data:
        raise InputError(
            f"the passphrase file {path} ({option}) is not UTF-8 text: it holds NUL bytes or "
            "begins with a UTF-16 or UTF-32 byte order mark",
            save_as,
        )
    data = data.removeprefix(_UTF8_BOM)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"the passphrase file {path} ({option}) is not UTF-8 text", save_as
        ) from None
    return data.rstrip(b"\r\n")


def unlock_with(load: Callable[[bytes], _Key], passphrase: bytes, path: Path | None) -> _Key:
    """``load(passphrase)``: the key of the key file ``path`` (or of the one ``load`` finds),
    opened with ``passphrase``.

    Passphrase files saved with a UTF-8 byte order mark once gave the mark as part of the
    passphrase, so that a key made then opens only with it: such a key is opened with the
    mark put back, and the user told on stderr to give it a new passphrase. Only a
    :class:`PassphraseError` leads to the second try, and it is the first error that is raised.
    """
    key, used = _unlock_with(load, passphrase)
    if used != passphrase:
        where = f"key file {path}" if path is not None else "the key file"
        print(
            f"note: {where} was opened with the passphrase preceded by an invisible byte order "
            "mark, which earlier versions of the toolkit took from a passphrase file saved as "
            "'UTF-8 with BOM'; give the key a new passphrase with `evidence keys passphrase "
            f"{path or 'KEYFILE'}`",
            file=sys.stderr,
        )
    return key


def _unlock_with(load: Callable[[bytes], _Key], passphrase: bytes) -> tuple[_Key, bytes]:
    """:func:`unlock_with` without the note: the key, and the passphrase that opened it."""
    try:
        return load(passphrase), passphrase
    except PassphraseError as first:
        if passphrase.startswith(_UTF8_BOM):
            raise
        legacy = _UTF8_BOM + passphrase
        try:
            return load(legacy), legacy
        except PassphraseError:
            raise first from None


def _typed_passphrase(prompt: str, repeat_prompt: str | None) -> bytes:
    value = getpass.getpass(prompt).encode()
    if repeat_prompt is not None and getpass.getpass(repeat_prompt).encode() != value:
        raise InputError("the two passphrases differ", "run the command again")
    return value


def _checked_passphrase(value: bytes, *, new: bool, option: str | None) -> bytes:
    """``value``, refused if empty or, for a new passphrase, too short (``option`` is the
    option of the file it came from, if any)."""
    if new and len(value) < MIN_PASSPHRASE:
        raise InputError(
            f"the passphrase is too short (at least {MIN_PASSPHRASE} characters; from {option})"
            if option is not None
            else f"the passphrase is too short (at least {MIN_PASSPHRASE} characters)",
            "choose a longer passphrase",
        )
    if not value:
        raise InputError("the passphrase is empty", "give the key's passphrase")
    return value


@dataclass(frozen=True)
class ChangedPassphrase:
    """A key file that :func:`change_passphrase` encrypted again.

    ``path`` is the file rewritten (symbolic links followed), ``kind`` ``signing key`` or
    ``recipient key``, and ``key_id`` its key id or recipient id, which did not change.
    """

    path: Path
    kind: str
    key_id: str


# How the key files of this toolkit begin: a signing key's (save_signer) and a recipient
# key's (save_recipient) name line.
_SIGNING_KEY_HEAD = KEY_NAME_HEADER.encode()
_RECIPIENT_KEY_HEAD = RECIPIENT_NAME_HEADER.encode()


def change_passphrase(
    path: Path, passphrase_file: Path | None, new_passphrase_file: Path | None
) -> ChangedPassphrase:
    """Encrypt the private key in the key file ``path`` again, under a new passphrase.

    The file is a signing key's or a recipient key's. The current passphrase is read as for
    :func:`unlock` and must unlock the file before the new one is asked for
    (:func:`read_new_passphrase`). The key, and so its public key and id, stay the same. The
    new file is written beside the old one (mode 0600, fsynced), read back with the new
    passphrase, then renamed over the old one and the folder fsynced; a failure or a crash
    before the rename leaves the old file as it was, and after it the new one, whole.
    """
    if path.suffix == ".pub":
        raise InputError(
            f"{path} is a public key file, which has no passphrase",
            f"give the private key file beside it, {path.with_suffix('.key')}",
        )
    path = _key_file_itself(path)
    previous = read_secret_file(path)
    if not previous.startswith((_SIGNING_KEY_HEAD, _RECIPIENT_KEY_HEAD)):
        raise KeyFileError(
            f"{path} is not a key file of this toolkit: it starts with neither "
            "'Key-Name:' (a signing key) nor 'Recipient-Name:' (a recipient key)",
            hint="give the .key file written by `evidence init`, `evidence keys generate` or "
            "`evidence keys recipient add`",
        )
    passphrase = read_passphrase(passphrase_file)
    rewrite: Callable[[Path, bytes], str]
    if previous.startswith(_SIGNING_KEY_HEAD):
        kind = "signing key"
        signer, passphrase = _unlock_with(lambda given: load_signer(path, given), passphrase)
        key_id = signer.key_id

        def rewrite(target: Path, new: bytes) -> str:
            save_signer(signer, target, new)
            return load_signer(target, new).key_id

    else:
        kind = "recipient key"
        recipient, passphrase = _unlock_with(lambda given: load_recipient(path, given), passphrase)
        key_id = recipient.recipient_id

        def rewrite(target: Path, new: bytes) -> str:
            save_recipient(recipient, target, new)
            return load_recipient(target, new).recipient_id

    new = read_new_passphrase(new_passphrase_file)
    if hmac.compare_digest(new, passphrase):
        raise InputError(
            f"the new passphrase of key file {path} is the same as the current one",
            "choose another passphrase: the current one is to stop unlocking the key",
        )
    _rewrite_key_file(path, previous, key_id, new, rewrite)
    return ChangedPassphrase(path=path, kind=kind, key_id=key_id)


def _rewrite_key_file(
    path: Path,
    previous: bytes,
    key_id: str,
    new: bytes,
    rewrite: Callable[[Path, bytes], str],
) -> None:
    """Write the key of ``path`` (``key_id``) under ``new`` beside it with ``rewrite`` (which
    returns the key id read back) and rename that over ``path``, which held ``previous``."""
    _remove_stale_pending(path)
    temp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}{_PENDING}"
    try:
        if rewrite(temp, new) != key_id:
            raise KeyFileError(
                f"the re-encrypted key file {temp} does not read back as key {key_id}; "
                f"key file {path} was left as it is",
                hint="check the disk, then run the command again",
            )
        replace_secret_file(temp, path, previous)
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()


def _key_file_itself(path: Path) -> Path:
    """The key file ``path`` names, with symbolic links followed, refused if it has other
    names: a rename over a link, or over one name of several, would leave the file under its
    other names as it was, still opened by the old passphrase."""
    real = Path(os.path.realpath(path))
    try:
        names = real.stat().st_nlink
    except OSError:
        return real  # reading it says what is wrong
    if names > 1:
        raise KeyFileError(
            f"key file {real} has {names - 1} other name(s) (hard links), which would keep "
            "the old passphrase",
            hint=f"find them with `find / -xdev -samefile {real}` and remove them (keeping "
            "this one), then run the command again",
        )
    return real


def find_key_file(case: Case, key: Path | None) -> Path:
    """The key file to sign with: ``--key``, ``EVIDENCE_KEY``, or the one enrolled key found.

    Keys are looked for in the key folder under their names (``<name>.key``). Several found is
    an error that lists them and says how to choose: a key is never picked among several.
    """
    if key is not None:
        return key
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    rows = case.db.execute(
        "SELECT key_id, name FROM keys WHERE revoked_seq IS NULL ORDER BY enrolled_seq"
    ).fetchall()
    # By file: the key ids enrolled under each name (a rotated key keeps its name).
    found: dict[Path, list[str]] = {}
    for key_id, name in rows:
        path = default_key_path(name)
        if path.is_file():
            found.setdefault(path, []).append(key_id)
    if len(found) == 1:
        return next(iter(found))
    if not found:
        raise EnvironmentProblem(
            f"no key enrolled in case {case.config.case_id} was found in {key_dir()}",
            "name your key file with --key FILE or EVIDENCE_KEY, "
            "or have it enrolled with `evidence keys enrol`",
        )
    listed = ", ".join(f"{' or '.join(ids)} ({path.name})" for path, ids in found.items())
    first = next(iter(found))
    raise InputError(
        f"several keys enrolled in case {case.config.case_id} are in {key_dir()}: {listed}; "
        "which one signs is never guessed",
        f"name yours for this command with --key FILE (e.g. --key {first}), or for every "
        f"command of this shell with `export {KEY_ENV}=FILE`; a key made for a colleague "
        f"belongs with them: move it out of {key_dir()} (`evidence keys generate --out` writes "
        "a new key elsewhere)",
    )


def unlock(case: Case, key: Path | None, passphrase_file: Path | None) -> Signer:
    """Find and unlock the signing key for a command that records events."""
    # A read-only case is refused before a passphrase is asked for or anything is written.
    case.require_writable()
    path = find_key_file(case, key)
    signer = unlock_with(
        lambda given: load_signer(path, given), read_passphrase(passphrase_file), path
    )
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
