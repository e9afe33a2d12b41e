"""The RFC 6962 / RFC 9162 golden proof vectors (transparency-dev/merkle testdata).

The folder lives next to the repository (``../shared/vectors/rfc9162-merkle``); a fresh clone
does not have it, so the tests skip with a message then.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from chain_of_custody.errors import VerificationError
from chain_of_custody.merkle import verify_consistency, verify_inclusion

REPO_ROOT = Path(__file__).resolve().parents[2]
VECTORS = REPO_ROOT.parent / "shared" / "vectors" / "rfc9162-merkle"
EXPECTED_COUNT = 196


def _files(kind: str) -> list[Path]:
    folder = VECTORS / kind
    return sorted(folder.rglob("*.json")) if folder.is_dir() else []


def _id(path: Path) -> str:
    return str(path.relative_to(VECTORS))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _proof(data: dict[str, Any]) -> list[bytes]:
    return [_b64(item) for item in data["proof"] or []]


def _skip_if_absent() -> None:
    if not VECTORS.is_dir():
        pytest.skip(f"golden vectors not present at {VECTORS}")


def test_all_vectors_are_present() -> None:
    _skip_if_absent()
    assert len(_files("inclusion")) + len(_files("consistency")) == EXPECTED_COUNT


@pytest.mark.parametrize("path", _files("inclusion"), ids=_id)
def test_inclusion_vector(path: Path) -> None:
    data = _load(path)

    def check() -> None:
        verify_inclusion(
            _b64(data["leafHash"]),
            data["leafIdx"],
            data["treeSize"],
            _proof(data),
            _b64(data["root"]),
        )

    if data["wantErr"]:
        with pytest.raises(VerificationError) as caught:
            check()
        assert caught.value.findings[0].code == "inclusion-proof-invalid"
    else:
        check()


@pytest.mark.parametrize("path", _files("consistency"), ids=_id)
def test_consistency_vector(path: Path) -> None:
    data = _load(path)

    def check() -> None:
        verify_consistency(
            data["size1"],
            data["size2"],
            _proof(data),
            _b64(data["root1"]),
            _b64(data["root2"]),
        )

    if data["wantErr"]:
        with pytest.raises(VerificationError) as caught:
            check()
        assert caught.value.findings[0].code == "consistency-proof-invalid"
    else:
        check()
