"""Files that hold secrets (encrypted private keys): written once, mode 0600, read with care.

Private keys are encrypted as PKCS#8 (RFC 5958) with PBES2 (RFC 8018): scrypt (RFC 7914) derives
a key from the passphrase, and that key encrypts the private key with AES-256-CBC. The scrypt
cost is one of OWASP's recommended settings, and within the 32 MiB that OpenSSL allows scrypt,
so ``openssl pkey`` opens the files too. Unlocking takes about 0.17 s and 16 MiB, and so does
each guess at the passphrase; ``cryptography``'s default PKCS#8 encryption (2,048 rounds of
PBKDF2, about 0.5 ms) made guessing some three hundred times cheaper, and needed no memory.

A secret file is written under a temporary name with mode 0600, fsynced, then hard-linked to its
name, which never replaces an existing file; the directory is fsynced after. Reading refuses a
file that is not regular, is open to group or others, or is too large to be a key file; the
checks are made on the opened file, so a swap between check and read cannot slip by.
"""

from __future__ import annotations

import base64
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

__all__ = [
    "MAX_SECRET_FILE",
    "SCRYPT_N",
    "SCRYPT_P",
    "SCRYPT_R",
    "decrypt_private_key",
    "encrypt_private_key",
    "read_secret_file",
    "write_secret_file",
]

_PBES2 = "1.2.840.113549.1.5.13"
_SCRYPT = "1.3.6.1.4.1.11591.4.11"
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
    :class:`KeyFileError` when the file is not an encrypted key this toolkit can read.
    """
    try:
        return serialization.load_pem_private_key(pem, password=passphrase)
    except ValueError as exc:
        # cryptography reports a failed decryption and a damaged ciphertext alike; a wrong
        # passphrase is by far the likelier cause.
        raise PassphraseError(
            f"the passphrase does not unlock key file {path}",
            hint="check the passphrase; if it is right, the key file is damaged",
        ) from exc
    except (TypeError, UnsupportedAlgorithm, InternalError) as exc:
        # OpenSSL fails without naming a reason (InternalError) on scrypt parameters it
        # refuses, such as a cost that is not a power of two; a wrong passphrase never does.
        raise KeyFileError(
            f"key file {path} cannot be read as an encrypted PKCS#8 key",
            hint="the file is damaged or not written by this toolkit",
        ) from exc


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
