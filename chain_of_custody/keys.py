"""Ed25519 keys: signers, verifier keys and encrypted private key files.

A key has a signed-note name (``investigator-a``) and is identified everywhere by its key id
``<name>+<8 hex>``, where the hex is the C2SP signed-note key hash
SHA-256(name || 0x0A || 0x01 || public key)[:4]. Raw ``cryptography`` objects stay inside this
module; the rest of the code sees :class:`Signer` and :class:`VerifierKey`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from chain_of_custody.canonical import strict_b64decode
from chain_of_custody.errors import InputError, KeyFileError, PassphraseError
from chain_of_custody.secretfile import (
    decrypt_private_key,
    encrypt_private_key,
    read_secret_file,
    write_secret_file,
)

__all__ = [
    "ED25519_SIGNATURE_TYPE",
    "Signer",
    "VerifierKey",
    "check_key_name",
    "generate_signer",
    "load_signer",
    "note_key_hash",
    "save_signer",
    "signer_from_seed",
]

#: The signed-note signature type byte of Ed25519.
ED25519_SIGNATURE_TYPE = b"\x01"
_MAX_NAME_LENGTH = 64
KEY_NAME_HEADER = "Key-Name: "
# PKCS#8 encryption (PBES2, AES-CBC) has no integrity check: a damaged ciphertext can decrypt to
# another valid Ed25519 key. The public key beside it lets load_signer tell.
PUBLIC_KEY_HEADER = "Public-Key: "


def check_key_name(name: str) -> str:
    """Return ``name`` if it is a usable signed-note key name, else raise :class:`InputError`.

    Names are 1-64 printable characters with no whitespace and no ``+`` (the separator of the
    verifier key text form).
    """
    if not isinstance(name, str) or not 1 <= len(name) <= _MAX_NAME_LENGTH:
        raise InputError(
            f"key name must be 1 to {_MAX_NAME_LENGTH} characters",
            hint="choose a short name such as 'investigator-a' or 'example.org/case-log'",
        )
    if any(ch.isspace() for ch in name) or "+" in name or not name.isprintable():
        raise InputError(
            f"key name {name!r} contains whitespace, '+' or a control character",
            hint="use letters, digits and punctuation other than '+'",
        )
    return name


def note_key_hash(name: str, public_key: bytes) -> bytes:
    """The 4-byte C2SP signed-note key hash of an Ed25519 key."""
    material = name.encode("utf-8") + b"\n" + ED25519_SIGNATURE_TYPE + public_key
    return hashlib.sha256(material).digest()[:4]


@functools.lru_cache(maxsize=1024)
def _public_key_object(public_key: bytes) -> Ed25519PublicKey:
    # Cached by value: verifying a long log checks the same few keys thousands of times, and
    # VerifierKey itself stays a plain picklable value for worker processes.
    return Ed25519PublicKey.from_public_bytes(public_key)


@dataclass(frozen=True)
class VerifierKey:
    """A named Ed25519 public key, as written in signed notes and events."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if not isinstance(self.public_key, bytes) or len(self.public_key) != 32:
            raise InputError(
                f"public key of {self.name!r} must be 32 bytes (Ed25519)",
                hint="check the verifier key text or PEM file",
            )

    @functools.cached_property
    def note_key_hash(self) -> bytes:
        """First 4 bytes of SHA-256(name || 0x0A || 0x01 || public key)."""
        return note_key_hash(self.name, self.public_key)

    @functools.cached_property
    def key_id(self) -> str:
        """``<name>+<hex key hash>``: the ``actor`` of events and what users type as KEY_ID."""
        return f"{self.name}+{self.note_key_hash.hex()}"

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the key's DER form (SubjectPublicKeyInfo), in hex: what
        ``openssl pkey -pubin -in KEY.pem -outform DER | sha256sum`` prints for its PEM, so
        that a key file obtained elsewhere can be compared with this one."""
        der = _public_key_object(self.public_key).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).hexdigest()

    def to_note_text(self) -> str:
        """The signed-note verifier key form ``<name>+<hex>+<base64(0x01 || key)>``."""
        material = base64.b64encode(ED25519_SIGNATURE_TYPE + self.public_key).decode("ascii")
        return f"{self.key_id}+{material}"

    @classmethod
    def from_note_text(cls, text: str) -> VerifierKey:
        """Parse the signed-note verifier key form, checking the key hash."""
        text = text.strip()
        parts = text.split("+", 2)
        if len(parts) != 3:
            raise InputError(
                "verifier key must have the form <name>+<8 hex digits>+<base64 key>",
                hint="copy the whole line printed by 'evidence keys export'",
            )
        name, hash_hex, material_b64 = parts
        check_key_name(name)
        if len(hash_hex) != 8 or any(ch not in "0123456789abcdef" for ch in hash_hex):
            raise InputError(
                f"verifier key {name!r}: key hash {hash_hex!r} is not 8 lowercase hex digits",
                hint="copy the whole line printed by 'evidence keys export'",
            )
        material = strict_b64decode(material_b64)
        if material is None or len(material) != 33:
            raise InputError(
                f"verifier key {name!r}: key material is not base64 of 33 bytes",
                hint="copy the whole line printed by 'evidence keys export'",
            )
        if material[:1] != ED25519_SIGNATURE_TYPE:
            raise InputError(
                f"verifier key {name!r}: signature type 0x{material[0]:02x} is not Ed25519 (0x01)",
                hint="only Ed25519 keys are supported",
            )
        key = cls(name, material[1:])
        if key.note_key_hash.hex() != hash_hex:
            raise InputError(
                f"verifier key {name!r}: key hash {hash_hex} does not match the key material",
                hint="the key text is damaged or was edited; obtain it again from its owner",
            )
        return key

    def to_pem(self) -> bytes:
        """The public key as a SubjectPublicKeyInfo PEM (for ``openssl pkeyutl -verify``)."""
        return _public_key_object(self.public_key).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_pem(cls, name: str, pem: bytes) -> VerifierKey:
        """Read a SubjectPublicKeyInfo PEM holding an Ed25519 public key."""
        try:
            loaded = serialization.load_pem_public_key(pem)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise InputError(
                f"public key PEM for {name!r} cannot be read",
                hint="expected a '-----BEGIN PUBLIC KEY-----' block of an Ed25519 key",
            ) from exc
        if not isinstance(loaded, Ed25519PublicKey):
            raise InputError(
                f"public key PEM for {name!r} is not an Ed25519 key",
                hint="only Ed25519 keys are supported",
            )
        raw = loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(name, raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True if ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != 64:
            return False
        try:
            _public_key_object(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __str__(self) -> str:
        return self.key_id


class Signer:
    """An Ed25519 private key with its signed-note name. Never printed, never pickled."""

    __slots__ = ("_private", "_verifier", "name")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name = check_key_name(name)
        self._private = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._verifier = VerifierKey(name, raw)

    @property
    def verifier(self) -> VerifierKey:
        """The matching public key."""
        return self._verifier

    @property
    def key_id(self) -> str:
        """Shortcut for ``signer.verifier.key_id``."""
        return self._verifier.key_id

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"Signer({self.key_id!r})"

    def __reduce__(self) -> str | tuple[object, ...]:
        # A private key must not travel to worker processes or caches by accident.
        raise TypeError("Signer objects hold a private key and cannot be pickled")


def generate_signer(name: str) -> Signer:
    """A new random Ed25519 signer."""
    return Signer(name, Ed25519PrivateKey.generate())


def signer_from_seed(name: str, seed: bytes) -> Signer:
    """A signer from a 32-byte Ed25519 seed (RFC 8032 private key); for tests and vectors."""
    if len(seed) != 32:
        raise InputError("an Ed25519 seed must be 32 bytes", hint="pass exactly 32 bytes")
    return Signer(name, Ed25519PrivateKey.from_private_bytes(seed))


def save_signer(signer: Signer, path: Path | str, passphrase: bytes) -> None:
    """Write ``signer`` to a new file, PKCS#8-encrypted under ``passphrase``, mode 0600.

    The file is written under a temporary name, fsynced, then linked into place so that it
    appears complete or not at all; an existing file is never overwritten.
    """
    path = Path(path)
    if not isinstance(passphrase, bytes) or not passphrase:
        raise InputError(
            f"an empty passphrase cannot protect key file {path}",
            hint="give a passphrase by prompt, --passphrase-file or EVIDENCE_PASSPHRASE",
        )
    if path.exists() or path.is_symlink():
        raise KeyFileError(
            f"key file {path} already exists and will not be overwritten",
            hint="choose another file name, or move the old key away first",
        )
    pem = encrypt_private_key(signer._private, passphrase)
    content = (
        f"{KEY_NAME_HEADER}{signer.name}\n"
        f"{PUBLIC_KEY_HEADER}{signer.verifier.to_note_text()}\n".encode()
        + pem
    )
    write_secret_file(path, content)


def load_signer(path: Path | str, passphrase: bytes) -> Signer:
    """Read a key file written by :func:`save_signer`.

    Refuses a file readable by group or others, a wrong passphrase, a corrupt file and keys
    other than Ed25519.
    """
    path = Path(path)
    content = read_secret_file(path)
    name, public_line, pem = _split_key_file(path, content)
    if not isinstance(passphrase, bytes) or not passphrase:
        raise PassphraseError(
            f"no passphrase given for key file {path}",
            hint="give it by prompt, --passphrase-file or EVIDENCE_PASSPHRASE",
        )
    private = decrypt_private_key(pem, passphrase, path)
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(
            f"key file {path} holds a {type(private).__name__.lstrip('_')}, not an Ed25519 key",
            hint="only Ed25519 keys are supported; create one with 'evidence keys generate'",
        )
    try:
        signer = Signer(name, private)
    except InputError as exc:
        raise KeyFileError(f"key file {path}: {exc.message}", hint=exc.hint) from exc
    if public_line is None or not hmac.compare_digest(
        public_line.encode(), signer.verifier.to_note_text().encode()
    ):
        raise KeyFileError(
            f"key file {path} is damaged: the decrypted key does not match its Public-Key line",
            hint="restore the key file from a backup; do not sign with it",
        )
    return signer


def _split_key_file(path: Path, content: bytes) -> tuple[str, str | None, bytes]:
    """Split a key file into name, public key line and encrypted PEM block, checking its shape."""
    header, sep, pem = content.partition(b"\n")
    public_line: str | None = None
    if pem.startswith(PUBLIC_KEY_HEADER.encode()):
        line, _, pem = pem.partition(b"\n")
        public_line = line[len(PUBLIC_KEY_HEADER) :].decode("ascii", "replace").strip()
    try:
        header_text = header.decode("utf-8")
    except UnicodeDecodeError:
        header_text = ""
    if not sep or not header_text.startswith(KEY_NAME_HEADER):
        raise KeyFileError(
            f"key file {path} does not start with a 'Key-Name:' line",
            hint="the file is damaged or not written by this toolkit",
        )
    name = header_text[len(KEY_NAME_HEADER) :].strip()
    begin = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
    end = b"-----END ENCRYPTED PRIVATE KEY-----"
    body = pem.strip()
    if body.startswith(b"-----BEGIN PRIVATE KEY-----"):
        raise KeyFileError(
            f"key file {path} holds an unencrypted private key",
            hint="keys must be stored encrypted; import it with a passphrase",
        )
    if not (body.startswith(begin) and body.endswith(end)):
        raise KeyFileError(
            f"key file {path} holds no encrypted PKCS#8 PEM block",
            hint="the file is damaged or not written by this toolkit",
        )
    inner = body[len(begin) : -len(end)]
    try:
        der = base64.b64decode(b"".join(inner.split()), validate=True)
    except binascii.Error as exc:
        raise KeyFileError(
            f"key file {path} has a damaged PEM block",
            hint="restore the key file from a backup",
        ) from exc
    if not _is_der_sequence(der):
        raise KeyFileError(
            f"key file {path} has a damaged PEM block",
            hint="restore the key file from a backup",
        )
    return name, public_line, pem


def _is_der_sequence(der: bytes) -> bool:
    """True if ``der`` is exactly one DER SEQUENCE (the outer EncryptedPrivateKeyInfo)."""
    if len(der) < 2 or der[0] != 0x30:
        return False
    first = der[1]
    if first < 0x80:
        return len(der) == 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(der) < 2 + count:
        return False
    length = int.from_bytes(der[2 : 2 + count], "big")
    return len(der) == 2 + count + length
