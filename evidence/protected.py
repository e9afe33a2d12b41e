"""Protected identity fields: X25519 recipients, sealed envelopes and salted commitments.

Identity details of a witness or a child (name, date of birth, contact, current address) are
never written in clear. They are sealed to the case's recipients and only two values derived
from them leave this module for the log and the catalog:

- ``ciphertext_sha256``: the SHA-256 of the whole sealed envelope, which is what the content
  store keeps; it says nothing about the plaintext because every envelope uses a fresh key.
- ``commitment_digest``: HMAC-SHA256 keyed with a fresh 32-byte random salt over the canonical
  JSON of the fields. Later, disclosing the fields and the salt proves that they are the ones
  recorded at the time.

The salt lives only inside the sealed annex, never in the log or catalog. A commitment whose
salt is public is no better than a plain hash for short, guessable values such as a name or a
date of birth: anyone could try a dictionary of names against it. Keeping the salt under
encryption makes the digest useless to an attacker without a recipient key, while a recipient
can still disclose salt and fields to a court to prove the link.

Envelope format, version 1 (all integers big-endian)::

    magic     4 bytes   b"ELPA"
    version   1 byte    0x01
    suite     1 byte    0x01 = X25519, HKDF-SHA256, AES-256-GCM
    count     2 bytes   number of recipient stanzas, at least 1
    stanza    100 bytes per recipient:
                recipient id (8) | ephemeral X25519 public key (32) |
                wrap nonce (12) | wrapped data key with GCM tag (48)
    nonce     12 bytes  payload nonce
    length    4 bytes   payload length, at least 16
    payload   AES-256-GCM(data key, nonce, padded plaintext, aad = header || caller aad)

The header (everything before the payload) is authenticated as part of the payload's associated
data, so changing any stanza, even one for another recipient, is detected. For each recipient
an ephemeral X25519 key agreement feeds HKDF-SHA256 (salt = ephemeral public key || recipient
public key, info = ``HKDF_INFO``) to get the key that wraps the data key. The plaintext is
prefixed with its length and padded with zeros to a multiple of 256 bytes so that the envelope's
size does not reveal the exact length of a name.

Raw ``cryptography`` objects stay in this module; the rest of the code sees ``RecipientKey``,
``RecipientPublicKey``, ``Commitment`` and ``SealedAnnex``.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import rfc8785
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import constant_time, hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chain_of_custody.errors import (
    EnvironmentProblem,
    Finding,
    InputError,
    KeyFileError,
    PassphraseError,
    VerificationError,
)
from chain_of_custody.keys import KEY_NAME_HEADER
from chain_of_custody.secretfile import (
    decrypt_private_key,
    encrypt_private_key,
    read_secret_file,
    write_secret_file,
)

__all__ = [
    "COMMITMENT_DOMAIN",
    "HKDF_INFO",
    "PUBLIC_KEY_FILE_HINT",
    "RECIPIENT_ID_DOMAIN",
    "Commitment",
    "EnvelopeError",
    "NotARecipient",
    "RecipientKey",
    "RecipientPublicKey",
    "RevealedAnnex",
    "SealedAnnex",
    "check_commitment",
    "commit",
    "generate_recipient",
    "load_recipient",
    "open_annex",
    "open_sealed",
    "protect",
    "recipients_of",
    "reveal",
    "save_recipient",
    "seal",
]

RECIPIENT_ID_DOMAIN = b"evidence-recipient-v1"
HKDF_INFO = b"evidence-locker protected annex v1"
COMMITMENT_DOMAIN = b"evidence-locker commitment v1"

MAGIC = b"ELPA"
VERSION = 1
SUITE_X25519_HKDF_AESGCM = 1

_RECIPIENT_ID_LEN = 8
_KEY_LEN = 32
_NONCE_LEN = 12
_TAG_LEN = 16
_WRAPPED_LEN = _KEY_LEN + _TAG_LEN
_STANZA_LEN = _RECIPIENT_ID_LEN + _KEY_LEN + _NONCE_LEN + _WRAPPED_LEN
_PREFIX = struct.Struct(">4sBBH")
_TRAILER = struct.Struct(">12sI")
_PAD_BLOCK = 256
_LENGTH_PREFIX = struct.Struct(">I")
_MAX_PLAINTEXT = 2**31
_SALT_LEN = 32
_PUBLIC_HEADER = "Public-Key: "
RECIPIENT_NAME_HEADER = "Recipient-Name: "
_ANNEX_VERSION = 1


class EnvelopeError(InputError):
    """A sealed envelope is malformed, damaged, or opened with different associated data."""


class NotARecipient(EnvironmentProblem):
    """The key at hand is not one of the recipients an envelope was sealed to."""


def _check_name(name: str, what: str = "recipient name") -> str:
    # The same rules as signed-note key names: the name goes in a header line and in the text
    # form "<name>+<id>+<key>", so it may hold neither whitespace nor '+'.
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 128
        or not name.isprintable()
        or any(ch.isspace() for ch in name)
        or "+" in name
    ):
        raise InputError(
            f"{what} {name!r} is not allowed",
            hint="use 1 to 128 printable characters without spaces or '+', e.g. otp-unit-1",
        )
    return name


PUBLIC_KEY_FILE_HINT = (
    "give the recipient's public key file (NAME.pub, written beside its private key NAME.key "
    "by `evidence keys recipient add`), or save the public key that "
    "`evidence keys recipient list` shows to a file"
)
_COPY_AGAIN_HINT = (
    "the text was altered or copied incompletely: copy the recipient's .pub file again, or "
    "the public key that `evidence keys recipient list` shows"
)
_HEX = frozenset("0123456789abcdef")


def _is_name(name: str) -> bool:
    try:
        _check_name(name)
    except InputError:
        return False
    return True


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and set(text) <= _HEX


_RECIPIENT_KEY_FILE = "a private recipient key file"


def _private_key_kind(text: str) -> str | None:
    """What private key file ``text`` is the content of, if it is one (judged by its start)."""
    if text.startswith(RECIPIENT_NAME_HEADER):
        return _RECIPIENT_KEY_FILE
    if text.startswith(KEY_NAME_HEADER):
        return "the private key file of a signing key (an investigator's)"
    first = text.split("\n", 1)[0].strip()
    if first.startswith("-----BEGIN") and first.endswith("PRIVATE KEY-----"):
        return "a private key (PEM)"
    return None


def _recipient_id(public_key: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(RECIPIENT_ID_DOMAIN)
    digest.update(public_key)
    return digest.finalize()[:_RECIPIENT_ID_LEN]


@dataclass(frozen=True)
class RecipientPublicKey:
    """The public half of a recipient: a name and a 32-byte X25519 public key."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.public_key, bytes) or len(self.public_key) != _KEY_LEN:
            raise InputError(
                f"public key of recipient {self.name} must be 32 bytes",
                hint=PUBLIC_KEY_FILE_HINT,
            )

    @property
    def recipient_id(self) -> str:
        """Short hex fingerprint: the first 8 bytes of SHA-256(domain || public key)."""
        return _recipient_id(self.public_key).hex()

    def to_text(self) -> str:
        """Text form ``<name>+<recipient id>+<base64 public key>``."""
        encoded = base64.b64encode(self.public_key).decode("ascii")
        return f"{self.name}+{self.recipient_id}+{encoded}"

    @classmethod
    def from_text(cls, text: str, *, source: str | Path | None = None) -> RecipientPublicKey:
        """Parse the text form, checking that the recipient id matches the key.

        ``source`` names where the text comes from (the file given) in messages. Messages never
        quote the text: a file given by mistake can hold anything, a witness's identity
        included.
        """
        where = f"{source}: " if source is not None else ""
        expected = "expected one line <name>+<recipient id>+<base64 key>"
        line = text.strip()
        private = _private_key_kind(line)
        if private is not None:
            hint = PUBLIC_KEY_FILE_HINT
            if private == _RECIPIENT_KEY_FILE and source is not None:
                hint = f"give the .pub file beside it ({Path(source).with_suffix('.pub')})"
            raise InputError(
                f"{where}is {private}, not a recipient's public key; a private key is never "
                "given to anyone",
                hint=hint,
            )
        parts = line.split("+", 2)
        if len(parts) != 3 or "\n" in line:
            raise InputError(f"{where}not a recipient public key: {expected}", PUBLIC_KEY_FILE_HINT)
        name, rid, encoded = parts
        if not _is_name(name) or not _is_hex(rid, _RECIPIENT_ID_LEN * 2):
            signing = _is_name(name) and _is_hex(rid, 8)
            raise InputError(
                f"{where}"
                + (
                    "is the public key of a signing key (an investigator's), not of a recipient"
                    if signing
                    else f"not a recipient public key: {expected}"
                ),
                PUBLIC_KEY_FILE_HINT,
            )
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise InputError(
                f"{where}recipient public key: the key after the second '+' is not valid base64",
                hint=_COPY_AGAIN_HINT,
            ) from None
        if len(raw) != _KEY_LEN:
            raise InputError(
                f"{where}recipient public key: the key is {len(raw)} bytes long, not {_KEY_LEN}",
                hint=_COPY_AGAIN_HINT,
            )
        key = cls(name, raw)
        if key.recipient_id != rid:
            raise InputError(
                f"{where}recipient public key: the recipient id does not match the key",
                hint=_COPY_AGAIN_HINT,
            )
        return key

    def to_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM, readable by OpenSSL."""
        public = X25519PublicKey.from_public_bytes(self.public_key)
        return public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_pem(cls, name: str, pem: bytes) -> RecipientPublicKey:
        """Read an X25519 SubjectPublicKeyInfo PEM and give it a name."""
        try:
            public = serialization.load_pem_public_key(pem)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise InputError(
                f"public key PEM of recipient {name!r} cannot be read",
                hint="expected a '-----BEGIN PUBLIC KEY-----' block of an X25519 key",
            ) from exc
        if not isinstance(public, X25519PublicKey):
            raise InputError(
                f"public key PEM of recipient {name!r} is not an X25519 key",
                hint="recipients use X25519 keys made by 'evidence keys recipient add'",
            )
        return cls(name, public.public_bytes_raw())


class RecipientKey:
    """A recipient's X25519 private key with its name; opens envelopes sealed to it."""

    __slots__ = ("_name", "_private", "_public")

    def __init__(self, name: str, private_key: X25519PrivateKey) -> None:
        self._name = _check_name(name)
        self._private = private_key
        self._public = RecipientPublicKey(name, private_key.public_key().public_bytes_raw())

    @classmethod
    def from_private_bytes(cls, name: str, raw: bytes) -> RecipientKey:
        """Build a key from 32 raw private bytes (fixed keys in tests and fixtures)."""
        if len(raw) != _KEY_LEN:
            raise InputError(f"private key of recipient {name!r} must be 32 bytes")
        return cls(name, X25519PrivateKey.from_private_bytes(raw))

    @property
    def name(self) -> str:
        """The recipient's name (no whitespace, no '+')."""
        return self._name

    @property
    def public(self) -> RecipientPublicKey:
        """The public half, to hand to those who seal."""
        return self._public

    @property
    def recipient_id(self) -> str:
        """The recipient id of the public half."""
        return self._public.recipient_id

    def _agree(self, ephemeral_public: bytes) -> bytes:
        return self._private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))

    def __repr__(self) -> str:
        # Never show key material, even in debug output.
        return f"RecipientKey(name={self.name!r}, recipient_id={self.recipient_id!r})"


def generate_recipient(name: str) -> RecipientKey:
    """A new random recipient key."""
    return RecipientKey(name, X25519PrivateKey.generate())


def save_recipient(key: RecipientKey, path: Path, passphrase: bytes) -> None:
    """Write the key as passphrase-encrypted PKCS#8 PEM, mode 0600; never replace a file."""
    path = Path(path)
    if not passphrase:
        raise InputError(
            f"no passphrase given for key file {path}",
            hint="choose a passphrase; the key file is always encrypted",
        )
    pem = encrypt_private_key(key._private, passphrase)
    # The public key beside the ciphertext lets load_recipient detect a damaged file: PKCS#8
    # encryption has no integrity check and could decrypt to another valid key.
    data = (
        f"{RECIPIENT_NAME_HEADER}{key.name}\n{_PUBLIC_HEADER}{key.public.to_text()}\n".encode()
        + pem
    )
    write_secret_file(path, data)


def load_recipient(path: Path, passphrase: bytes) -> RecipientKey:
    """Read a key file written by :func:`save_recipient`, refusing files open to others."""
    path = Path(path)
    data = read_secret_file(path)
    first, sep, pem = data.partition(b"\n")
    header = first.decode("utf-8", errors="replace").rstrip("\r")
    public_line = ""
    if pem.startswith(_PUBLIC_HEADER.encode()):
        line, _, pem = pem.partition(b"\n")
        public_line = line[len(_PUBLIC_HEADER) :].decode("ascii", errors="replace").strip()
    if not sep or not header.startswith(RECIPIENT_NAME_HEADER):
        raise KeyFileError(
            f"key file {path} does not start with a '{RECIPIENT_NAME_HEADER.strip()}' line",
            hint="this is not a recipient key file written by 'evidence keys recipient add'",
        )
    try:
        name = _check_name(header[len(RECIPIENT_NAME_HEADER) :])
    except InputError as exc:
        raise KeyFileError(f"key file {path}: {exc.message}", hint=exc.hint) from exc
    if not passphrase:
        raise PassphraseError(
            f"no passphrase given for key file {path}", hint="give the key's passphrase"
        )
    # Loading without a passphrase first tells a damaged file apart from a wrong passphrase:
    # a well-formed encrypted key refuses with TypeError, a damaged one with ValueError.
    try:
        serialization.load_pem_private_key(pem, None)
    except TypeError:
        pass
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(
            f"key file {path} is damaged or not a PEM private key",
            hint="restore the key file from its backup",
        ) from exc
    else:
        raise KeyFileError(
            f"key file {path} is not encrypted",
            hint="key files must be passphrase-protected; make a new key",
        )
    private = decrypt_private_key(pem, passphrase, path)
    if not isinstance(private, X25519PrivateKey):
        raise KeyFileError(
            f"key file {path} does not hold an X25519 recipient key",
            hint="recipient keys are X25519; signing keys are a different kind of file",
        )
    key = RecipientKey(name, private)
    if not constant_time.bytes_eq(public_line.encode(), key.public.to_text().encode()):
        raise KeyFileError(
            f"key file {path} is damaged: the decrypted key does not match its Public-Key line",
            hint="restore the key file from its backup",
        )
    return key


def _wrap_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=_KEY_LEN,
        salt=ephemeral_public + recipient_public,
        info=HKDF_INFO,
    ).derive(shared)


def _pad(plaintext: bytes) -> bytes:
    body = _LENGTH_PREFIX.pack(len(plaintext)) + plaintext
    return body + bytes(-len(body) % _PAD_BLOCK)


def seal(plaintext: bytes, recipients: Sequence[RecipientPublicKey], *, aad: bytes) -> bytes:
    """Encrypt ``plaintext`` so that any one of ``recipients`` can open it with the same aad.

    The same recipient listed twice is sealed to once.
    """
    if not recipients:
        raise InputError(
            "no recipients to seal the protected annex to",
            hint="enrol at least one recipient key for the case",
        )
    if len(plaintext) > _MAX_PLAINTEXT:
        raise InputError("protected annex is too large to seal (over 2 GiB)")
    unique: dict[bytes, RecipientPublicKey] = {}
    for recipient in recipients:
        unique.setdefault(_recipient_id(recipient.public_key), recipient)
    if len(unique) > 0xFFFF:
        raise InputError("too many recipients for one envelope (at most 65535)")

    data_key = AESGCM.generate_key(bit_length=256)
    prefix = _PREFIX.pack(MAGIC, VERSION, SUITE_X25519_HKDF_AESGCM, len(unique))
    stanzas = []
    for rid, recipient in unique.items():
        ephemeral = X25519PrivateKey.generate()
        ephemeral_public = ephemeral.public_key().public_bytes_raw()
        try:
            shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient.public_key))
        except ValueError as exc:
            # A low-order point gives an all-zero secret; OpenSSL refuses it, and so do we.
            raise InputError(
                f"public key of recipient {recipient.name} ({recipient.recipient_id}) is unusable",
                hint="export the recipient's public key again",
            ) from exc
        wrap_nonce = secrets.token_bytes(_NONCE_LEN)
        wrapped = AESGCM(_wrap_key(shared, ephemeral_public, recipient.public_key)).encrypt(
            wrap_nonce, data_key, prefix + rid
        )
        stanzas.append(rid + ephemeral_public + wrap_nonce + wrapped)

    padded = _pad(plaintext)
    nonce = secrets.token_bytes(_NONCE_LEN)
    header = prefix + b"".join(stanzas) + _TRAILER.pack(nonce, len(padded) + _TAG_LEN)
    payload = AESGCM(data_key).encrypt(nonce, padded, header + aad)
    return header + payload


@dataclass(frozen=True)
class _Stanza:
    recipient_id: bytes
    ephemeral_public: bytes
    nonce: bytes
    wrapped: bytes


@dataclass(frozen=True)
class _Envelope:
    prefix: bytes
    stanzas: tuple[_Stanza, ...]
    header: bytes
    nonce: bytes
    payload: bytes


def _parse_envelope(envelope: bytes, source: str) -> _Envelope:
    # Parse strictly by fixed sizes: every length is checked before it is used and nothing may
    # follow the payload, so a truncated or extended envelope is refused before any decryption.
    if not isinstance(envelope, bytes | bytearray | memoryview):
        raise EnvelopeError(f"{source} is not bytes")
    data = bytes(envelope)
    if len(data) < _PREFIX.size:
        raise EnvelopeError(
            f"{source} is truncated ({len(data)} bytes)", hint="restore it from the object store"
        )
    magic, version, suite, count = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise EnvelopeError(
            f"{source} is not a protected annex envelope",
            hint="the file does not start with the envelope marker; check which file was given",
        )
    if version != VERSION:
        raise EnvelopeError(
            f"{source} has envelope version {version}; this toolkit reads version {VERSION}",
            hint="use a toolkit version that reads it",
        )
    if suite != SUITE_X25519_HKDF_AESGCM:
        raise EnvelopeError(f"{source} uses unknown cipher suite {suite}")
    if count == 0:
        raise EnvelopeError(f"{source} names no recipients")
    header_len = _PREFIX.size + count * _STANZA_LEN + _TRAILER.size
    if len(data) < header_len:
        raise EnvelopeError(
            f"{source} is truncated ({len(data)} bytes, header needs {header_len})",
            hint="restore it from the object store",
        )
    stanzas = []
    offset = _PREFIX.size
    for _ in range(count):
        raw = data[offset : offset + _STANZA_LEN]
        rid_end = _RECIPIENT_ID_LEN
        epk_end = rid_end + _KEY_LEN
        nonce_end = epk_end + _NONCE_LEN
        stanzas.append(
            _Stanza(raw[:rid_end], raw[rid_end:epk_end], raw[epk_end:nonce_end], raw[nonce_end:])
        )
        offset += _STANZA_LEN
    nonce, payload_len = _TRAILER.unpack_from(data, offset)
    payload = data[header_len:]
    if payload_len < _TAG_LEN + _LENGTH_PREFIX.size or len(payload) != payload_len:
        raise EnvelopeError(
            f"{source} has {len(payload)} payload bytes where its header says {payload_len}",
            hint="the envelope was truncated or extended; restore it from the object store",
        )
    return _Envelope(data[: _PREFIX.size], tuple(stanzas), data[:header_len], nonce, payload)


def recipients_of(envelope: bytes, *, source: str = "protected annex") -> list[str]:
    """The recipient ids an envelope names (unauthenticated until it is opened)."""
    return [s.recipient_id.hex() for s in _parse_envelope(envelope, source).stanzas]


def open_sealed(
    envelope: bytes, key: RecipientKey, *, aad: bytes, source: str = "protected annex"
) -> bytes:
    """Decrypt an envelope with one recipient's key; ``source`` names it in error messages.

    Raises :class:`NotARecipient` if the key is not among the recipients and
    :class:`EnvelopeError` if the envelope is damaged or ``aad`` differs from the sealing one.
    Messages never contain any plaintext.
    """
    parsed = _parse_envelope(envelope, source)
    rid = bytes.fromhex(key.recipient_id)
    candidates = [s for s in parsed.stanzas if constant_time.bytes_eq(s.recipient_id, rid)]
    if not candidates:
        named = ", ".join(s.recipient_id.hex() for s in parsed.stanzas)
        raise NotARecipient(
            f"{source} is not sealed to recipient {key.name} ({key.recipient_id}); "
            f"it is sealed to {named}",
            hint="open it with the key of one of the recipients it names",
        )
    data_key = None
    for stanza in candidates:
        try:
            shared = key._agree(stanza.ephemeral_public)
            wrap = _wrap_key(shared, stanza.ephemeral_public, key.public.public_key)
            data_key = AESGCM(wrap).decrypt(stanza.nonce, stanza.wrapped, parsed.prefix + rid)
            break
        except (ValueError, InvalidTag):
            continue
    if data_key is None:
        raise EnvelopeError(
            f"{source}: the data key wrapped for recipient {key.recipient_id} does not "
            "authenticate",
            hint="the envelope was altered; restore it from the object store",
        )
    try:
        padded = AESGCM(data_key).decrypt(parsed.nonce, parsed.payload, parsed.header + aad)
    except InvalidTag as exc:
        raise EnvelopeError(
            f"{source} does not authenticate: it was altered, or it is being opened for a "
            "different record than it was sealed for",
            hint="restore it from the object store and open it from the record it belongs to",
        ) from exc
    (length,) = _LENGTH_PREFIX.unpack_from(padded)
    end = _LENGTH_PREFIX.size + length
    if end > len(padded) or any(padded[end:]):
        # Authenticated but not made by seal(): refuse rather than guess.
        raise EnvelopeError(f"{source} has inconsistent padding")
    return padded[_LENGTH_PREFIX.size : end]


@dataclass(frozen=True)
class Commitment:
    """A salted commitment: the salt (secret, kept in the annex) and the digest (logged)."""

    salt_hex: str
    digest_hex: str

    def __post_init__(self) -> None:
        for name, value in (("salt", self.salt_hex), ("digest", self.digest_hex)):
            if (
                not isinstance(value, str)
                or len(value) != 64
                or value.strip("0123456789abcdef") != ""
            ):
                raise InputError(
                    f"commitment {name} must be 64 lowercase hex characters",
                    hint="copy the value exactly as recorded",
                )

    def __repr__(self) -> str:
        # The salt is what keeps the digest from being brute-forced; keep it out of logs.
        return f"Commitment(digest_hex={self.digest_hex!r})"


def _commitment_digest(salt: bytes, plaintext: bytes) -> bytes:
    mac = hmac.HMAC(salt, hashes.SHA256())
    mac.update(COMMITMENT_DOMAIN)
    mac.update(plaintext)
    return mac.finalize()


def commit(plaintext: bytes, salt: bytes | None = None) -> Commitment:
    """Commit to ``plaintext`` with a fresh 32-byte salt (or the given one)."""
    if salt is None:
        salt = secrets.token_bytes(_SALT_LEN)
    if len(salt) != _SALT_LEN:
        raise InputError(f"commitment salt must be {_SALT_LEN} bytes, not {len(salt)}")
    return Commitment(salt.hex(), _commitment_digest(salt, plaintext).hex())


def check_commitment(commitment: Commitment, plaintext: bytes) -> bool:
    """Whether ``plaintext`` is the value committed to (constant-time comparison)."""
    expected = _commitment_digest(bytes.fromhex(commitment.salt_hex), plaintext)
    return constant_time.bytes_eq(expected, bytes.fromhex(commitment.digest_hex))


@dataclass(frozen=True)
class SealedAnnex:
    """A sealed annex and the values that may go in the log and catalog."""

    envelope: bytes = field(repr=False)
    ciphertext_sha256: str
    commitment_digest: str
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class RevealedAnnex:
    """The opened annex: its fields and the full commitment (with salt) for disclosure."""

    fields: Mapping[str, str] = field(repr=False)
    commitment: Commitment


def _fields_bytes(fields: Mapping[str, str]) -> bytes:
    if not isinstance(fields, Mapping) or not fields:
        raise InputError("no protected fields given", hint="give at least one field, e.g. name=...")
    for name, value in fields.items():
        if not isinstance(name, str) or not name:
            raise InputError("a protected field has an empty or non-text name")
        if not isinstance(value, str):
            # The value's type only; the value itself may be an identity.
            raise InputError(f"protected field {name!r} must be text, not {type(value).__name__}")
    try:
        return rfc8785.dumps(dict(fields))
    except rfc8785.CanonicalizationError as exc:
        raise InputError(
            "a protected field holds characters that are not valid Unicode text",
            hint="re-enter the field; lone surrogate characters cannot be stored",
        ) from exc


def protect(
    fields: Mapping[str, str], recipients: Sequence[RecipientPublicKey], *, aad: bytes
) -> SealedAnnex:
    """Seal identity fields to the recipients and compute the values the log may hold.

    The committed bytes are the RFC 8785 JSON of ``fields``; the salt is sealed with them.
    """
    committed = _fields_bytes(fields)
    commitment = commit(committed)
    plaintext = rfc8785.dumps(
        {"fields": dict(fields), "salt": commitment.salt_hex, "v": _ANNEX_VERSION}
    )
    envelope = seal(plaintext, recipients, aad=aad)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(envelope)
    return SealedAnnex(
        envelope=envelope,
        ciphertext_sha256=digest.finalize().hex(),
        commitment_digest=commitment.digest_hex,
        recipients=tuple(recipients_of(envelope)),
    )


def open_annex(
    envelope: bytes, key: RecipientKey, *, aad: bytes, source: str = "protected annex"
) -> RevealedAnnex:
    """Open an annex and return its fields with the commitment recomputed from them."""
    plaintext = open_sealed(envelope, key, aad=aad, source=source)
    try:
        document = json.loads(plaintext)
    except ValueError:
        document = None
    if (
        not isinstance(document, dict)
        or document.get("v") != _ANNEX_VERSION
        or set(document) != {"fields", "salt", "v"}
        or not isinstance(document["fields"], dict)
        or not all(isinstance(v, str) for v in document["fields"].values())
        or not isinstance(document["salt"], str)
    ):
        # Never echo the content: it is the protected identity.
        raise EnvelopeError(f"{source} opens but does not hold a protected annex of version 1")
    fields: dict[str, str] = document["fields"]
    try:
        salt = bytes.fromhex(document["salt"])
        commitment = commit(_fields_bytes(fields), salt)
    except (ValueError, InputError):
        raise EnvelopeError(f"{source} holds a malformed commitment salt") from None
    return RevealedAnnex(MappingProxyType(dict(fields)), commitment)


def reveal(
    envelope: bytes,
    key: RecipientKey,
    *,
    aad: bytes,
    commitment_digest: str,
    source: str = "protected annex",
) -> dict[str, str]:
    """Open an annex and check it against the commitment digest recorded in the log.

    Raises :class:`VerificationError` if the opened fields do not match the recorded digest.
    """
    revealed = open_annex(envelope, key, aad=aad, source=source)
    if not constant_time.bytes_eq(
        revealed.commitment.digest_hex.encode(), commitment_digest.lower().encode()
    ):
        raise VerificationError(
            Finding(
                code="protected.commitment_mismatch",
                message="protected annex does not match the commitment recorded in the log",
                subject=source,
            ),
            hint="the annex was replaced by another validly sealed one; check the object store",
        )
    return dict(revealed.fields)
