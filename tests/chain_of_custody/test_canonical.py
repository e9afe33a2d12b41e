"""Canonical JSON: RFC 8785 bytes and refusal of values that cannot be kept exact."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from chain_of_custody.canonical import MAX_SAFE_INTEGER, canonical_json, strict_b64decode
from chain_of_custody.errors import InputError


def test_keys_are_sorted_and_whitespace_removed() -> None:
    assert canonical_json({"b": 1, "a": [True, None, "x"]}) == b'{"a":[true,null,"x"],"b":1}'


def test_rfc8785_string_escaping_and_utf16_key_order() -> None:
    # RFC 8785 3.2.3: keys sort by UTF-16 code units; "\u20ac" (euro) sorts before an
    # astral character whose surrogates start with 0xD8.
    value = {"\U0001f600": 1, "\u20ac": 2, "\n": 3, "a": "\u00e9\u0007"}
    assert canonical_json(value) == (
        '{"\\n":3,"a":"\u00e9\\u0007","\u20ac":2,"\U0001f600":1}'.encode()
    )


def test_model_is_encoded_by_field_name() -> None:
    class Sample(BaseModel):
        size: str
        count: int

    assert canonical_json(Sample(size="9007199254740993", count=2)) == (
        b'{"count":2,"size":"9007199254740993"}'
    )


def test_largest_safe_integer_is_accepted() -> None:
    assert canonical_json({"n": MAX_SAFE_INTEGER, "m": -MAX_SAFE_INTEGER}) == (
        b'{"m":-9007199254740991,"n":9007199254740991}'
    )


BAD_VALUES: list[tuple[str, Any, str]] = [
    ("float", {"a": 1.5}, "$.a"),
    ("integral float", {"a": 2.0}, "$.a"),
    ("nan", {"a": float("nan")}, "$.a"),
    ("int beyond 2^53-1", {"size": 2**53}, "$.size"),
    ("negative int beyond", {"size": -(2**53)}, "$.size"),
    ("nested int in list", {"data": {"sizes": [1, 2**60]}}, "$.data.sizes[1]"),
    ("bytes", {"blob": b"\x00"}, "$.blob"),
    ("bytearray", {"blob": bytearray(b"x")}, "$.blob"),
    ("non-str key", {"data": {1: "x"}}, "$.data"),
    ("set", {"tags": {"a"}}, "$.tags"),
    ("object", {"when": object()}, "$.when"),
]


@pytest.mark.parametrize(
    ("value", "path"), [(v, p) for _, v, p in BAD_VALUES], ids=[n for n, _, _ in BAD_VALUES]
)
def test_refused_values_name_their_path(value: Any, path: str) -> None:
    with pytest.raises(InputError) as caught:
        canonical_json(value)
    assert path in caught.value.message
    assert caught.value.hint


def test_big_int_hint_says_decimal_string() -> None:
    with pytest.raises(InputError) as caught:
        canonical_json({"size": 2**64})
    assert "decimal string" in caught.value.hint


def test_bytes_in_model_are_refused() -> None:
    class Holder(BaseModel):
        data: dict[str, Any]

    with pytest.raises(InputError, match=r"\$\.data\.raw"):
        canonical_json(Holder(data={"raw": b"abc"}))


def test_float_in_model_is_refused() -> None:
    class Holder(BaseModel):
        ratio: float

    with pytest.raises(InputError, match=r"\$\.ratio"):
        canonical_json(Holder(ratio=0.5))


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(InputError):
        canonical_json({"a": "\ud800"})


def test_top_level_must_be_an_object() -> None:
    with pytest.raises(InputError):
        canonical_json([1, 2])  # type: ignore[arg-type]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_round_trip_and_idempotence(value: dict[str, Any]) -> None:
    encoded = canonical_json(value)
    decoded = json.loads(encoded)
    assert decoded == value
    assert canonical_json(decoded) == encoded


@given(st.binary(max_size=64))
def test_strict_base64_round_trip(raw: bytes) -> None:
    import base64

    assert strict_b64decode(base64.b64encode(raw).decode()) == raw


@pytest.mark.parametrize(
    "text",
    ["AAE", "AAE=\n", "AA E=", "AAF=", "AA-_", "AAE==", "é"],
    ids=["no padding", "newline", "space", "nonzero trailing bits", "urlsafe", "extra pad", "utf8"],
)
def test_strict_base64_refuses_other_spellings(text: str) -> None:
    assert strict_b64decode(text) is None


ascii_key_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(st.characters(max_codepoint=127), max_size=8), children, max_size=4
        )
    ),
    max_leaves=20,
)


@given(
    st.dictionaries(st.text(max_size=8), json_values, max_size=6)
    | st.dictionaries(
        st.text(st.characters(max_codepoint=127), max_size=8), ascii_key_values, max_size=6
    )
)
def test_agrees_with_the_reference_implementation(value: dict[str, Any]) -> None:
    """The fast path for ASCII keys writes exactly what the rfc8785 package writes."""
    import rfc8785

    assert canonical_json(value) == rfc8785.dumps(value)


def test_keys_beyond_the_basic_plane_sort_by_utf16() -> None:
    # U+10000 sorts before U+FFFF in UTF-16 code units, after it in code points.
    value = {"\U00010000": 1, "\uffff": 2}
    assert canonical_json(value) == '{"\U00010000":1,"\uffff":2}'.encode()
