"""Encrypted key files: PKCS#8 with PBES2, scrypt and AES-256-CBC, checked independently.

The encryption is taken apart here with a DER reader of the test's own, decrypted with
``hashlib.scrypt`` and AES-CBC, and read by OpenSSL's command line, so that neither the
structure nor the stated scrypt cost rests on the code under test alone.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, NoReturn

import pytest
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from chain_of_custody.errors import KeyFileError, PassphraseError
from chain_of_custody.keys import Signer, load_signer, save_signer
from chain_of_custody.secretfile import (
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    encrypt_private_key,
    write_secret_file,
)
from evidence.protected import RecipientKey, load_recipient, save_recipient

PASSPHRASE = b"correct horse battery staple"

# Object identifiers as DER encodes them (tag, length, value), from RFC 8018 and RFC 7914.
PBES2 = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
SCRYPT = bytes.fromhex("06092b06010401da47040b")  # 1.3.6.1.4.1.11591.4.11
AES256_CBC = bytes.fromhex("060960864801650304012a")  # 2.16.840.1.101.3.4.1.42


def _tlv(data: bytes) -> tuple[int, bytes, bytes]:
    """The first DER element of ``data``: its tag, its content and the rest of ``data``."""
    tag, first = data[0], data[1]
    if first < 0x80:
        start, size = 2, first
    else:
        count = first & 0x7F
        start, size = 2 + count, int.from_bytes(data[2 : 2 + count], "big")
    assert len(data) >= start + size, "truncated DER"
    return tag, data[start : start + size], data[start + size :]


def _children(content: bytes) -> list[tuple[int, bytes]]:
    children = []
    while content:
        tag, inner, content = _tlv(content)
        children.append((tag, inner))
    return children


def _der_of_pem(pem: bytes) -> bytes:
    lines = pem.decode("ascii").strip().splitlines()
    assert lines[0] == "-----BEGIN ENCRYPTED PRIVATE KEY-----"
    assert lines[-1] == "-----END ENCRYPTED PRIVATE KEY-----"
    return base64.b64decode("".join(lines[1:-1]), validate=True)


class Encrypted(NamedTuple):
    """The parts of an EncryptedPrivateKeyInfo with PBES2, scrypt and AES-256-CBC."""

    salt: bytes
    cost: tuple[int, int, int]  # scrypt N, r, p
    iv: bytes
    ciphertext: bytes


def _take_apart(pem: bytes) -> Encrypted:
    tag, info, rest = _tlv(_der_of_pem(pem))
    assert (tag, rest) == (0x30, b"")
    (alg_tag, algorithm), (data_tag, ciphertext) = _children(info)
    assert (alg_tag, data_tag) == (0x30, 0x04)
    oid, params = _children(algorithm)
    assert _element(oid) == PBES2
    kdf, scheme = _children(params[1])
    kdf_oid, kdf_params = _children(kdf[1])
    assert _element(kdf_oid) == SCRYPT
    salt, n, r, p = _children(kdf_params[1])  # no keyLength: AES-256 says 32 bytes
    assert salt[0] == 0x04
    assert {n[0], r[0], p[0]} == {0x02}
    scheme_oid, iv = _children(scheme[1])
    assert _element(scheme_oid) == AES256_CBC
    assert iv[0] == 0x04
    n_value, r_value, p_value = (int.from_bytes(value, "big") for _, value in (n, r, p))
    return Encrypted(salt[1], (n_value, r_value, p_value), iv[1], ciphertext)


def _element(child: tuple[int, bytes]) -> bytes:
    tag, content = child
    return bytes([tag, len(content)]) + content


def _decrypt_independently(pem: bytes, passphrase: bytes) -> bytes:
    """The PKCS#8 PrivateKeyInfo inside ``pem``, decrypted without the code under test."""
    parts = _take_apart(pem)
    n, r, p = parts.cost
    secret = hashlib.scrypt(passphrase, salt=parts.salt, n=n, r=r, p=p, maxmem=64 << 20, dklen=32)
    decryptor = Cipher(algorithms.AES(secret), modes.CBC(parts.iv)).decryptor()
    padded = decryptor.update(parts.ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _plain_pkcs8(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_of_key_file(path: Path) -> bytes:
    data = path.read_bytes()
    return data[data.index(b"-----BEGIN") :]


def _signer_file(tmp_path: Path) -> tuple[Path, PrivateKeyTypes]:
    signer = Signer("investigator-a", Ed25519PrivateKey.generate())
    path = tmp_path / "investigator-a.key"
    save_signer(signer, path, PASSPHRASE)
    return path, signer._private  # test reaches in to compare the key material


def _recipient_file(tmp_path: Path) -> tuple[Path, PrivateKeyTypes]:
    key = RecipientKey("prosecutor-a", X25519PrivateKey.generate())
    path = tmp_path / "prosecutor-a.key"
    save_recipient(key, path, PASSPHRASE)
    return path, key._private  # test reaches in to compare the key material


KEY_FILES: list[Callable[[Path], tuple[Path, PrivateKeyTypes]]] = [_signer_file, _recipient_file]


@pytest.mark.parametrize("make", KEY_FILES, ids=["signing key", "recipient key"])
def test_key_files_are_scrypt_pbes2_with_the_stated_cost(
    tmp_path: Path, make: Callable[[Path], tuple[Path, PrivateKeyTypes]]
) -> None:
    path, key = make(tmp_path)
    pem = _pem_of_key_file(path)
    assert _decrypt_independently(pem, PASSPHRASE) == _plain_pkcs8(key)
    assert _take_apart(pem).cost == (SCRYPT_N, SCRYPT_R, SCRYPT_P)


def test_each_encryption_has_its_own_salt_and_iv() -> None:
    key = Ed25519PrivateKey.generate()
    first = _take_apart(encrypt_private_key(key, PASSPHRASE))
    second = _take_apart(encrypt_private_key(key, PASSPHRASE))
    assert len(first.salt) == len(second.salt) == 16
    assert len(first.iv) == len(second.iv) == 16
    assert first.salt != second.salt
    assert first.iv != second.iv
    assert first.ciphertext != second.ciphertext


def test_the_key_comes_from_the_passphrase() -> None:
    key = Ed25519PrivateKey.generate()
    pem = encrypt_private_key(key, PASSPHRASE)
    try:
        wrong: bytes | None = _decrypt_independently(pem, b"correct horse battery stapler")
    except ValueError:
        wrong = None  # the padding came out wrong, as it does for all but 1 in 256 keys
    assert wrong != _plain_pkcs8(key)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")
@pytest.mark.parametrize("make", KEY_FILES, ids=["signing key", "recipient key"])
def test_openssl_reads_the_key_files(
    tmp_path: Path, make: Callable[[Path], tuple[Path, PrivateKeyTypes]]
) -> None:
    path, key = make(tmp_path)
    pem_only = tmp_path / "only.pem"
    pem_only.write_bytes(_pem_of_key_file(path))
    result = subprocess.run(
        ["openssl", "pkey", "-in", str(pem_only), "-passin", "env:KEY_PASSPHRASE", "-pubout"],
        env={**os.environ, "KEY_PASSPHRASE": PASSPHRASE.decode()},
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    expected = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert result.stdout == expected


def test_key_files_of_the_earlier_encryption_still_load(tmp_path: Path) -> None:
    # Key files made before scrypt: cryptography's default PKCS#8 encryption (PBKDF2).
    signer = Signer("investigator-a", Ed25519PrivateKey.generate())
    recipient = RecipientKey("prosecutor-a", X25519PrivateKey.generate())
    old = serialization.BestAvailableEncryption(PASSPHRASE)
    signer_pem = signer._private.private_bytes(  # test reaches in to write an old file
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, old
    )
    recipient_pem = recipient._private.private_bytes(  # test reaches in to write an old file
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, old
    )
    signer_path = tmp_path / "old-signer.key"
    recipient_path = tmp_path / "old-recipient.key"
    write_secret_file(
        signer_path,
        b"Key-Name: investigator-a\n"
        + f"Public-Key: {signer.verifier.to_note_text()}\n".encode()
        + signer_pem,
    )
    write_secret_file(
        recipient_path,
        b"Recipient-Name: prosecutor-a\n"
        + f"Public-Key: {recipient.public.to_text()}\n".encode()
        + recipient_pem,
    )
    assert load_signer(signer_path, PASSPHRASE).verifier == signer.verifier
    assert load_recipient(recipient_path, PASSPHRASE).public == recipient.public
    with pytest.raises(PassphraseError):
        load_signer(signer_path, b"not the passphrase")


@pytest.mark.parametrize(
    ("make", "load"),
    [(_signer_file, load_signer), (_recipient_file, load_recipient)],
    ids=["signing key", "recipient key"],
)
def test_a_key_file_with_a_damaged_scrypt_cost_is_refused_as_damaged(
    tmp_path: Path,
    make: Callable[[Path], tuple[Path, PrivateKeyTypes]],
    load: Callable[[Path, bytes], object],
) -> None:
    path, _ = make(tmp_path)
    data = path.read_bytes()
    pem = _pem_of_key_file(path)
    der = _der_of_pem(pem)
    # N = 2^14 as DER writes it, and N + 1, which is not a power of two: scrypt cannot use it.
    assert der.count(bytes.fromhex("02024000")) == 1
    damaged_der = der.replace(bytes.fromhex("02024000"), bytes.fromhex("02024001"))
    body = base64.encodebytes(damaged_der)
    damaged = (
        data[: data.index(b"-----BEGIN")]
        + b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        + body
        + b"-----END ENCRYPTED PRIVATE KEY-----\n"
    )
    damaged_path = tmp_path / "damaged.key"
    write_secret_file(damaged_path, damaged)
    with pytest.raises(KeyFileError, match=r"damaged|cannot be read") as raised:
        load(damaged_path, PASSPHRASE)
    assert str(damaged_path) in raised.value.message
    assert PASSPHRASE.decode() not in raised.value.message + raised.value.hint


# --- a key file that asks for too much work is refused before any of it is done -------------

# More object identifiers (RFC 8018, RFC 7292) for key files built by hand below.
PBKDF2 = bytes.fromhex("06092a864886f70d01050c")  # 1.2.840.113549.1.5.12
HMAC_SHA256 = bytes.fromhex("06082a864886f70d0209")  # 1.2.840.113549.2.9
PKCS12_3DES = bytes.fromhex("060a2a864886f70d010c0103")  # 1.2.840.113549.1.12.1.3


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _seq(*parts: bytes) -> bytes:
    return _der(0x30, b"".join(parts))


def _int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _salt() -> bytes:
    return _der(0x04, bytes(range(16)))


def _scrypt(n: int, r: int, p: int) -> bytes:
    """A PBES2 AlgorithmIdentifier with scrypt of this cost and AES-256-CBC."""
    kdf = _seq(SCRYPT, _seq(_salt(), _int(n), _int(r), _int(p)))
    return _seq(PBES2, _seq(kdf, _seq(AES256_CBC, _der(0x04, bytes(16)))))


def _pbkdf2(rounds: int) -> bytes:
    """A PBES2 AlgorithmIdentifier with PBKDF2-HMAC-SHA256 of this many rounds."""
    kdf = _seq(PBKDF2, _seq(_salt(), _int(rounds), _seq(HMAC_SHA256, b"\x05\x00")))
    return _seq(PBES2, _seq(kdf, _seq(AES256_CBC, _der(0x04, bytes(16)))))


def _pkcs12_3des(rounds: int) -> bytes:
    """A PKCS#12 pbeWithSHAAnd3-KeyTripleDES-CBC AlgorithmIdentifier (not PBES2)."""
    return _seq(PKCS12_3DES, _seq(_salt(), _int(rounds)))


def _with_algorithm(path: Path, algorithm: bytes, name: str) -> Path:
    """A copy of the key file ``path`` whose encryption names ``algorithm`` (its ciphertext is
    random: nothing ever gets as far as decrypting it)."""
    data = path.read_bytes()
    der = _seq(algorithm, _der(0x04, os.urandom(48)))
    body = base64.encodebytes(der)
    crafted = path.parent / name
    write_secret_file(
        crafted,
        data[: data.index(b"-----BEGIN")]
        + b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        + body
        + b"-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    return crafted


@pytest.fixture
def decryptions(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every attempt to decrypt a private key with a passphrase, recorded instead of made
    (as a wrong passphrase): a refused file must never get that far."""
    attempts: list[bytes] = []
    real_pem = serialization.load_pem_private_key

    def attempt(data: bytes, password: bytes | None, *args: object, **kwargs: object) -> NoReturn:
        attempts.append(data)
        raise ValueError("recorded, not decrypted")

    def pem_attempt(data: bytes, password: bytes | None, *args: object, **kwargs: object) -> object:
        if password is None:
            # Without a passphrase nothing is derived: the recipient loader's shape check.
            return real_pem(data, None)
        attempt(data, password)

    monkeypatch.setattr(serialization, "load_pem_private_key", pem_attempt)
    monkeypatch.setattr(serialization, "load_der_private_key", attempt)
    return attempts


COSTLY = [
    pytest.param(_scrypt(2**14, 8, 2**20), id="scrypt p=2^20 (days)"),
    pytest.param(_scrypt(2**14, 8, 2**30 - 1), id="scrypt p=2^30-1"),
    pytest.param(_scrypt(2**16, 8, 64), id="scrypt N*r*p=2^25"),
    pytest.param(_scrypt(2**18, 8, 1), id="scrypt N=2^18 r=8 (256 MiB and more)"),
    pytest.param(_scrypt(2**20, 8, 1), id="scrypt N=2^20 (1 GiB)"),
    pytest.param(_scrypt(2**40, 8, 1), id="scrypt N=2^40"),
    pytest.param(_scrypt(2, 1, 2**23), id="scrypt p=2^23 with r=1 (1 GiB of lanes)"),
    pytest.param(_pbkdf2(2**31 - 1), id="PBKDF2 2^31-1 rounds"),
]


@pytest.mark.parametrize("algorithm", COSTLY)
@pytest.mark.parametrize(
    ("make", "load"),
    [(_signer_file, load_signer), (_recipient_file, load_recipient)],
    ids=["signing key", "recipient key"],
)
def test_a_key_file_asking_for_too_much_work_is_refused_before_deriving(
    tmp_path: Path,
    make: Callable[[Path], tuple[Path, PrivateKeyTypes]],
    load: Callable[[Path, bytes], object],
    algorithm: bytes,
    decryptions: list[bytes],
) -> None:
    path, _ = make(tmp_path)
    crafted = _with_algorithm(path, algorithm, "costly.key")
    with pytest.raises(KeyFileError) as raised:
        load(crafted, PASSPHRASE)
    assert decryptions == [], "the key derivation was started"
    message = raised.value.message
    assert str(crafted) in message
    assert "beyond what this toolkit accepts" in message
    assert "restore the key file" in raised.value.hint
    assert PASSPHRASE.decode() not in message + raised.value.hint


@pytest.mark.parametrize(
    "algorithm",
    [
        pytest.param(_scrypt(SCRYPT_N, SCRYPT_R, SCRYPT_P), id="the toolkit's own cost"),
        pytest.param(_scrypt(2**14, 8, 128), id="scrypt at the work ceiling"),
        pytest.param(_scrypt(2**17, 8, 1), id="scrypt N=2^17 r=8 (128 MiB)"),
        pytest.param(_pbkdf2(2048), id="PBKDF2 2048 rounds (earlier files)"),
        pytest.param(_pbkdf2(10_000_000), id="PBKDF2 at the ceiling"),
    ],
)
def test_a_key_file_within_the_ceilings_is_decrypted(
    tmp_path: Path, algorithm: bytes, decryptions: list[bytes]
) -> None:
    path, _ = _signer_file(tmp_path)
    crafted = _with_algorithm(path, algorithm, "within.key")
    with pytest.raises(PassphraseError):
        load_signer(crafted, PASSPHRASE)
    assert len(decryptions) == 1


def test_a_key_file_of_another_scheme_is_refused_before_deriving(
    tmp_path: Path, decryptions: list[bytes]
) -> None:
    # PKCS#12's 3DES scheme, which cryptography reads, with an iteration count of its own.
    path, _ = _signer_file(tmp_path)
    crafted = _with_algorithm(path, _pkcs12_3des(2**31 - 1), "pkcs12.key")
    with pytest.raises(KeyFileError, match="scheme this toolkit does not read") as raised:
        load_signer(crafted, PASSPHRASE)
    assert decryptions == []
    assert str(crafted) in raised.value.message
