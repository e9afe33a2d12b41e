"""Bad input for the testimony and entity loaders: huge strings, control characters, wrong types.

Whatever the document holds, loading it either gives a model or raises an ``InputError`` that
names the field; never another exception, and never a protected value in the message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain_of_custody.errors import InputError
from evidence import loaders
from evidence.models import ENTITY_MODELS

TEMPLATE = Path(loaders.__file__).with_name("testimony_template.yaml").read_text(encoding="utf-8")
TESTIMONY: dict[str, Any] = json.loads(json.dumps(yaml.safe_load(TEMPLATE), default=str))
SECRET = "Protected Marker Name"

nasty_text = st.one_of(
    st.text(min_size=0, max_size=50),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=50),
    st.sampled_from(["\u200b", "\u202e", "\ufeff", "\x00", "\x7f", "\udcff"]),
    st.integers(1_000, 300_000).map(lambda n: "x" * n),
)
wrong_types = st.one_of(
    st.none(), st.booleans(), st.integers(), st.lists(st.text(max_size=5), max_size=3), nasty_text
)


def _load(tmp_path: Path, document: Any, loader: Any) -> None:
    path = tmp_path / "doc.json"
    path.write_text(
        json.dumps(document, ensure_ascii=False), encoding="utf-8", errors="surrogatepass"
    )
    try:
        loader(path)
    except InputError as exc:
        assert SECRET not in exc.message + exc.hint


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(field=st.sampled_from(sorted(TESTIMONY)), value=st.one_of(nasty_text, wrong_types))
def test_testimony_fields_with_hostile_values(tmp_path: Path, field: str, value: Any) -> None:
    document = dict(TESTIMONY)
    document[field] = value
    document["identity"] = {"name": SECRET}
    _load(tmp_path, document, loaders.load_testimony)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(sorted(ENTITY_MODELS)),
    document=st.dictionaries(
        st.sampled_from(["id", "title", "name", "code", "place", "start", "end", "status", "type"]),
        st.one_of(nasty_text, wrong_types),
        max_size=6,
    ),
)
def test_entity_documents_with_hostile_values(
    tmp_path: Path, kind: str, document: dict[str, Any]
) -> None:
    _load(tmp_path, document, lambda path: loaders.load_entity(path, kind, default_id=None))


@pytest.mark.parametrize("size", [1 << 20, 8 << 20])
def test_a_huge_statement_is_handled(tmp_path: Path, size: int) -> None:
    document = dict(TESTIMONY)
    document["statement"] = dict(document["statement"], text="\u0416" * size)
    _load(tmp_path, document, loaders.load_testimony)
