"""Files that hold secrets (encrypted private keys): written once, mode 0600, read with care.

Private keys are encrypted as PKCS#8 (RFC 5958) with PBES2 (RFC 8018): scrypt (RFC 7914) derives
a key from the passphrase, and that key encrypts the private key with AES-256-CBC. The scrypt
cost is one of OWASP's recommended settings, and within the 32 MiB that OpenSSL allows scrypt,
so ``openssl pkey`` opens the files too. Unlocking takes about 0.17 s and 16 MiB, and so does
each guess at the passphrase; ``cryptography``'s default PKCS#8 encryption (2,048 rounds of
PBKDF2, about 0.5 ms) made guessing some three hundred times cheaper, and needed no memory.

The cost of unlocking is written in the key file itself, so a key file handed to an
investigator could ask for hours of work or gigabytes of memory. Before anything is derived,
the cost a file asks for is read and refused above a ceiling (:data:`MAX_SCRYPT_WORK`,
:data:`MAX_SCRYPT_MEMORY`, :data:`MAX_PBKDF2_ITERATIONS`), and only the two schemes this
toolkit has written, PBES2 with scrypt or with PBKDF2, are read at all.

A secret file is written under a temporary name with mode 0600, fsynced, then hard-linked to its
name, which never replaces an existing file; the directory is fsynced after. Reading refuses a
file that is not regular, is open to group or others, or is too large to be a key file; the
checks are made on the opened file, so a swap between check and read cannot slip by.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import os
import secrets
import stat
import textwrap
from pathlib import Path

from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from chain_of_custody.errors import KeyFileError, PassphraseError

MAX_SECRET_FILE = 64 * 1024

#: scrypt cost of new key files: N = 2^14 (16 MiB with r = 8), r = 8, p = 5.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 5

# The ceilings on what a key file may ask for. scrypt's time grows with N * r * p (each of the
# p lanes mixes N blocks of 128 * r bytes, twice); this toolkit writes 2^14 * 8 * 5 = 655,360,
# about 0.17 s. 2^24 is 25 times that, about 5 s on a laptop, and twice the heaviest published
# setting (N = 2^20, r = 8, p = 1, RFC 7914's and scrypt's own for file encryption); beyond it a
# file costs minutes to hours and is refused. Memory is what OpenSSL allocates, 128 * r * (N + p)
# bytes: 16 MiB for the files written here. cryptography, unlike the openssl command (32 MiB),
# sets no limit of its own; 256 MiB is twice OWASP's largest setting (N = 2^17, r = 8, 128 MiB)
# and leaves a laptop room, where a crafted N = 2^30 would ask for 128 GiB.
#: The most scrypt work (N * r * p) a key file may ask for.
MAX_SCRYPT_WORK = 2**24
#: The most memory (bytes) scrypt may need to open a key file.
MAX_SCRYPT_MEMORY = 256 * 2**20
# PBKDF2 (key files made before scrypt: 2,048 rounds) takes about 0.25 s per million rounds of
# HMAC-SHA-256 and 0.6 s of HMAC-SHA-512; ten million is 16 times OWASP's 600,000, a few seconds.
#: The most PBKDF2 rounds a key file may ask for.
MAX_PBKDF2_ITERATIONS = 10_000_000

__all__ = [
    "MAX_PBKDF2_ITERATIONS",
    "MAX_SCRYPT_MEMORY",
    "MAX_SCRYPT_WORK",
    "MAX_SECRET_FILE",
    "SCRYPT_N",
    "SCRYPT_P",
    "SCRYPT_R",
    "decrypt_private_key",
    "encrypt_private_key",
    "read_secret_file",
    "replace_secret_file",
    "write_secret_file",
]

_PBES2 = "1.2.840.113549.1.5.13"
_SCRYPT = "1.3.6.1.4.1.11591.4.11"
_PBKDF2 = "1.2.840.113549.1.5.12"
_PEM_BEGIN = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
_PEM_END = b"-----END ENCRYPTED PRIVATE KEY-----"
_AES256_CBC = "2.16.840.1.101.3.4.1.42"


def encrypt_private_key(key: PrivateKeyTypes, passphrase: bytes) -> bytes:
    """The PEM of ``key`` as an encrypted PKCS#8 key: PBES2 with scrypt and AES-256-CBC.

    ``serialization.load_pem_private_key`` and ``openssl pkey`` read it back.
    """
    plain = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt = secrets.token_bytes(16)
    iv = secrets.token_bytes(16)
    secret = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase)
    padder = padding.PKCS7(algorithms.AES.block_size).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    scrypt_params = _sequence(
        _octets(salt), _integer(SCRYPT_N), _integer(SCRYPT_R), _integer(SCRYPT_P)
    )
    algorithm = _sequence(
        _oid(_PBES2),
        _sequence(
            _sequence(_oid(_SCRYPT), scrypt_params),
            _sequence(_oid(_AES256_CBC), _octets(iv)),
        ),
    )
    der = _sequence(algorithm, _octets(ciphertext))
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return (
        f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{body}\n-----END ENCRYPTED PRIVATE KEY-----\n"
    ).encode("ascii")


def decrypt_private_key(pem: bytes, passphrase: bytes, path: Path) -> PrivateKeyTypes:
    """The private key in the encrypted PKCS#8 ``pem`` read from key file ``path``.

    Reads what :func:`encrypt_private_key` writes and older files encrypted with PBKDF2.
    Raises :class:`PassphraseError` when the passphrase does not decrypt it, and
    :class:`KeyFileError` when the file is not an encrypted key this toolkit can read or asks
    for a key derivation beyond the ceilings above (refused before any of it is done).
    """
    der = _der_of_pem(pem, path)
    _check_derivation_cost(der, path)
    try:
        # The DER just checked, not the PEM again: what is decrypted is what was checked.
        return serialization.load_der_private_key(der, password=passphrase)
    except ValueError as exc:
        # cryptography reports a failed decryption and a damaged ciphertext alike; a wrong
        # passphrase is by far the likelier cause.
        raise PassphraseError(
            f"the passphrase does not unlock key file {path}",
            hint="check the passphrase; if it is right, the key file is damaged",
        ) from exc
    except (TypeError, UnsupportedAlgorithm, InternalError) as exc:
        # OpenSSL fails without naming a reason (InternalError) on scrypt parameters it
        # refuses; a wrong passphrase never does.
        raise _unreadable(path) from exc


def _unreadable(path: Path) -> KeyFileError:
    return KeyFileError(
        f"key file {path} cannot be read as an encrypted PKCS#8 key",
        hint="the file is damaged or not written by this toolkit",
    )


def _der_of_pem(pem: bytes, path: Path) -> bytes:
    """The DER inside the one ``ENCRYPTED PRIVATE KEY`` PEM block that ``pem`` is."""
    body = pem.strip()
    if not (body.startswith(_PEM_BEGIN) and body.endswith(_PEM_END)):
        raise _unreadable(path)
    try:
        return base64.b64decode(
            b"".join(body[len(_PEM_BEGIN) : -len(_PEM_END)].split()), validate=True
        )
    except binascii.Error as exc:
        raise _unreadable(path) from exc


def _check_derivation_cost(der: bytes, path: Path) -> None:
    """Refuse an encrypted key whose key derivation is not PBES2 with scrypt or PBKDF2, or
    would cost more than the ceilings allow."""
    try:
        derivation, numbers = _key_derivation(der)
    except ValueError as exc:
        raise _unreadable(path) from exc
    if derivation == _SCRYPT:
        n, r, p = numbers
        usable = n > 1 and n & (n - 1) == 0 and r > 0 and p > 0
        cost = f"scrypt N={n}, r={r}, p={p}"
        too_costly = n * r * p > MAX_SCRYPT_WORK or 128 * r * (n + p) > MAX_SCRYPT_MEMORY
    elif derivation == _PBKDF2:
        (rounds,) = numbers
        usable = rounds > 0
        cost = f"{rounds} rounds of PBKDF2"
        too_costly = rounds > MAX_PBKDF2_ITERATIONS
    else:
        # PBES1 and PKCS#12 schemes (DES, RC2, 3DES): never written by this toolkit, and each
        # has an iteration count of its own to abuse.
        raise KeyFileError(
            f"key file {path} is encrypted with a scheme this toolkit does not read "
            "(only PBES2 with scrypt or PBKDF2)",
            hint="use a key file written by this toolkit; make a new key with "
            "'evidence keys generate' if need be",
        )
    if not usable:
        raise _unreadable(path)
    if too_costly:
        raise KeyFileError(
            f"key file {path} asks for a key derivation ({cost}) beyond what this toolkit "
            f"accepts (scrypt: N*r*p at most 2^{MAX_SCRYPT_WORK.bit_length() - 1} and "
            f"{MAX_SCRYPT_MEMORY >> 20} MiB; PBKDF2: {MAX_PBKDF2_ITERATIONS:,} rounds; its own "
            f"key files use scrypt N=2^{SCRYPT_N.bit_length() - 1}, r={SCRYPT_R}, p={SCRYPT_P}); "
            "it was not unlocked",
            hint="this file was not written by this toolkit or was altered, and unlocking it "
            "could take hours: do not use it; restore the key file from a backup, or ask its "
            "owner for a new one",
        )


def _key_derivation(der: bytes) -> tuple[str, tuple[int, ...]]:
    """The key derivation of an EncryptedPrivateKeyInfo (RFC 5958) with its numbers:
    ``(_SCRYPT, (N, r, p))`` or ``(_PBKDF2, (rounds,))`` for PBES2 (RFC 8018, RFC 7914),
    ``("", ())`` for another scheme; ``ValueError`` when the DER is not of that shape."""
    info = _der_only(der, 0x30)
    algorithm, _ = _der_take(info, 0x30)
    scheme, scheme_params = _der_take(algorithm, 0x06)
    if scheme != _oid(_PBES2)[2:]:
        return "", ()
    kdf, _ = _der_take(_der_only(scheme_params, 0x30), 0x30)
    kdf_oid, kdf_params = _der_take(kdf, 0x06)
    _, fields = _der_take(_der_only(kdf_params, 0x30), 0x04)  # after the salt
    if kdf_oid == _oid(_SCRYPT)[2:]:
        n, fields = _der_integer(fields)
        r, fields = _der_integer(fields)
        p, _ = _der_integer(fields)  # an optional key length may follow: it costs nothing
        return _SCRYPT, (n, r, p)
    if kdf_oid == _oid(_PBKDF2)[2:]:
        rounds, _ = _der_integer(fields)  # then the key length and PRF, both optional
        return _PBKDF2, (rounds,)
    raise ValueError("PBES2 with neither scrypt nor PBKDF2")


# A DER reader for the few elements above: it refuses (ValueError) anything it does not expect.


def _der_take(data: bytes, tag: int) -> tuple[bytes, bytes]:
    """The content of the element of ``tag`` that ``data`` starts with, and what follows it."""
    if len(data) < 2 or data[0] != tag:
        raise ValueError("unexpected DER element")
    first = data[1]
    if first < 0x80:
        start, size = 2, first
    else:
        count = first & 0x7F
        if not 1 <= count <= 4 or len(data) < 2 + count:
            raise ValueError("bad DER length")
        start, size = 2 + count, int.from_bytes(data[2 : 2 + count], "big")
    if len(data) < start + size:
        raise ValueError("truncated DER element")
    return data[start : start + size], data[start + size :]


def _der_only(data: bytes, tag: int) -> bytes:
    """The content of the one element of ``tag`` that ``data`` is."""
    content, rest = _der_take(data, tag)
    if rest:
        raise ValueError("bytes after a DER element")
    return content


def _der_integer(data: bytes) -> tuple[int, bytes]:
    content, rest = _der_take(data, 0x02)
    if not content:
        raise ValueError("empty DER integer")
    return int.from_bytes(content, "big", signed=True), rest


# The few DER (X.690) encodings an EncryptedPrivateKeyInfo needs.


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _sequence(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _octets(data: bytes) -> bytes:
    return _tlv(0x04, data)


def _integer(value: int) -> bytes:
    # Non-negative only; a leading zero byte keeps the sign bit clear.
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _oid(dotted: str) -> bytes:
    first, second, *rest = (int(arc) for arc in dotted.split("."))
    encoded = bytearray([40 * first + second])
    for arc in rest:
        # Base 128, most significant group first; every group but the last has its top bit set.
        groups = [arc & 0x7F]
        higher = arc >> 7
        while higher:
            groups.append(0x80 | (higher & 0x7F))
            higher >>= 7
        encoded.extend(reversed(groups))
    return _tlv(0x06, bytes(encoded))


def write_secret_file(path: Path, data: bytes) -> None:
    """Create ``path`` holding ``data``, mode 0600; refuse if it exists."""
    directory = path.parent
    if path.exists() or path.is_symlink():
        raise KeyFileError(
            f"key file {path} already exists",
            hint="choose another file name; an existing key is never overwritten",
        )
    tmp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise KeyFileError(
            f"cannot create key file in {directory}: {exc.strerror}",
            hint="check that the directory exists and is writable",
        ) from exc
    try:
        try:
            # The umask may only narrow 0600, but set it explicitly so it does not depend on it.
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        publish_without_replacing(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_directory(directory)


def publish_without_replacing(tmp: Path, path: Path) -> None:
    """Give the finished file ``tmp`` the name ``path`` unless that exists (``tmp`` remains
    for the caller to remove); a :class:`KeyFileError` otherwise."""
    # A hard link fails if the target exists, so a key written by someone else between our check
    # and now is never replaced (rename would silently replace it).
    try:
        os.link(tmp, path)
    except FileExistsError as exc:
        raise KeyFileError(
            f"key file {path} already exists",
            hint="choose another file name; an existing key is never overwritten",
        ) from exc
    except OSError as exc:
        if exc.errno not in {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK}:
            raise KeyFileError(
                f"cannot write key file {path}: {exc.strerror}",
                hint="check that the directory is writable",
            ) from exc
        # Filesystems without hard links: fall back to a checked rename.
        if path.exists():
            raise KeyFileError(
                f"key file {path} already exists",
                hint="choose another file name; an existing key is never overwritten",
            ) from exc
        tmp.rename(path)


def replace_secret_file(finished: Path, path: Path, previous: bytes) -> None:
    """Put the secret file ``finished`` in the place of ``path``, which held ``previous``.

    ``finished`` is a complete file written beside ``path`` by :func:`write_secret_file`
    (mode 0600, fsynced). One rename replaces ``path``, so that it is the old file or the new
    one, never part of either, whenever the machine stops; the directory is fsynced after.
    A ``path`` that no longer holds ``previous`` (changed by another command meanwhile) is
    not replaced; ``finished`` remains for the caller to remove.
    """
    if read_secret_file(path) != previous:
        raise KeyFileError(
            f"key file {path} changed while it was being re-encrypted; it was left as it is",
            hint="run the command again",
        )
    try:
        finished.replace(path)
    except OSError as exc:
        raise KeyFileError(
            f"cannot replace key file {path}: {exc.strerror}; it was left as it is",
            hint="check that its folder is writable, then run the command again",
        ) from exc
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make the names in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_secret_file(path: Path) -> bytes:
    """The bytes of a secret file, refusing one that others could read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise KeyFileError(
            f"key file {path} does not exist", hint="check the path to the key file"
        ) from exc
    except OSError as exc:
        raise KeyFileError(
            f"cannot open key file {path}: {exc.strerror}",
            hint="check the file's owner and permissions",
        ) from exc
    try:
        # Check the opened file, not the path, so a swap between check and read cannot slip by.
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise KeyFileError(
                f"key file {path} is readable or writable by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o})",
                hint=f"run: chmod 600 {path}",
            )
        if info.st_size > MAX_SECRET_FILE:
            raise KeyFileError(f"key file {path} is too large to be a key file")
        chunks = []
        while chunk := os.read(fd, MAX_SECRET_FILE + 1):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
