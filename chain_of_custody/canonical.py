"""Canonical encodings: the one function that produces the JSON bytes we hash and sign.

The bytes follow RFC 8785 (JSON Canonicalization Scheme) and are produced by the ``rfc8785``
package. Before handing a value over we walk it ourselves, because JCS would silently accept
values that another implementation could read differently: floats (rounding), integers beyond
2^53-1 (JavaScript loses precision), and we want the error to name the JSON path that is wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

import rfc8785
from pydantic import BaseModel

from chain_of_custody.errors import InputError

#: The largest integer every JSON reader represents exactly (IEEE 754 double precision).
MAX_SAFE_INTEGER = 2**53 - 1

__all__ = ["MAX_SAFE_INTEGER", "canonical_json", "strict_b64decode"]


def canonical_json(value: BaseModel | Mapping[str, Any]) -> bytes:
    """Return the RFC 8785 canonical JSON bytes of a pydantic model or a mapping.

    Raises :class:`InputError` naming the JSON path of a float, an integer beyond 2^53-1, a
    non-string key, a byte string or any other value JSON cannot hold.
    """
    if isinstance(value, BaseModel):
        # Check the Python view so that bytes and floats are refused even where pydantic's JSON
        # mode would quietly turn them into strings or keep them as floats. What passes holds
        # only JSON types or types that JSON mode writes as strings, with the same keys, so
        # the JSON view needs no second walk.
        python_view = value.model_dump(mode="python", by_alias=True)
        fast = canonical_json_if_plain(python_view)
        if fast is not None:
            # Plain JSON values only: the JSON mode dump would be the same value again.
            return fast
        ascii_keys = _check(python_view, "$", strict=False)
        plain: Any = value.model_dump(mode="json", by_alias=True)
    elif isinstance(value, Mapping):
        fast = canonical_json_if_plain(value)
        if fast is not None:
            return fast
        plain = value
        ascii_keys = _check(plain, "$", strict=True)
    else:
        raise InputError(
            f"canonical JSON needs an object at $, got {type(value).__name__}",
            hint="pass a mapping or a pydantic model",
        )
    if ascii_keys:
        # Every key is ASCII, so code-point order (Python) equals the UTF-16 order of RFC 8785;
        # for strings, integers within 2^53, booleans and null, the standard library writes the
        # same bytes as JCS (lowercase \u00xx escapes for controls only) and is much faster.
        # tests/chain_of_custody/test_canonical.py checks the two agree on arbitrary values.
        try:
            return json.dumps(
                plain, ensure_ascii=False, separators=(",", ":"), sort_keys=True
            ).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: let rfc8785 refuse it with its own message
    try:
        return rfc8785.dumps(plain)
    except rfc8785.CanonicalizationError as exc:
        # Reached only for what our walk cannot see, such as lone surrogates in strings.
        raise InputError(
            f"value cannot be written as canonical JSON: {exc}",
            hint="use valid Unicode text only",
        ) from exc


def canonical_json_if_plain(value: Mapping[str, Any]) -> bytes | None:
    """The canonical JSON of a mapping that holds plain JSON values only, else None.

    The fast path of :func:`canonical_json` (which gives the same bytes), for callers that
    have a fallback for anything else, such as the pydantic model the mapping was taken from.
    """
    if type(value) is not dict or _plain_json(value) is not True:
        return None
    # Every key is ASCII, so code-point order (Python) equals the UTF-16 order of RFC 8785;
    # for strings, integers within 2^53, booleans and null, the standard library writes the
    # same bytes as JCS (lowercase \u00xx escapes for controls only) and is much faster.
    # tests/chain_of_custody/test_canonical.py checks the two agree on arbitrary values.
    try:
        return _ENCODER.encode(value).encode("utf-8")
    except UnicodeEncodeError:
        return None  # a lone surrogate: the caller's slow path refuses it with its message


# What json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True) uses, made
# once rather than at every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _plain_json(value: Any) -> bool | None:
    """Fast walk of the common case: plain JSON types only, integers within 2^53-1.

    Returns whether every key is ASCII, or None for anything else; the caller then runs
    :func:`_check`, which refuses or accepts it with a message naming the JSON path.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return True if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else None
    if kind is dict:
        items: Any = value.items()
    elif kind is list:
        items = enumerate(value)
    else:
        return None
    ascii_keys = True
    for key, item in items:
        if kind is dict:
            if type(key) is not str:
                return None
            if ascii_keys and not key.isascii():
                ascii_keys = False
        # Scalars are checked here rather than by a call each: most values are.
        inner_kind = type(item)
        if inner_kind is str or inner_kind is bool or item is None:
            continue
        if inner_kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                return None
            continue
        inner = _plain_json(item)
        if inner is None:
            return None
        if not inner:
            ascii_keys = False
    return ascii_keys


def _check(value: Any, path: str, *, strict: bool) -> bool:
    """Walk ``value`` and refuse what canonical JSON must not carry.

    ``strict`` refuses every type that is not plain JSON; without it, unknown types (dates,
    enums in a model dump) are left for pydantic's JSON mode to convert. Returns whether every
    object key met is ASCII.
    """
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise InputError(
                f"integer at {path} is beyond 2^53-1 and cannot be kept exact in JSON",
                hint="write large numbers (sizes, nanosecond times) as decimal strings",
            )
        return True
    if isinstance(value, float):
        raise InputError(
            f"floating point number at {path} is not allowed in canonical JSON",
            hint="write the number as a decimal string, or as an integer in a smaller unit",
        )
    if isinstance(value, bytes | bytearray | memoryview):
        raise InputError(
            f"byte string at {path} cannot be written as JSON",
            hint="encode bytes as lowercase hex or base64 text first",
        )
    if isinstance(value, Mapping):
        ascii_keys = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(
                    f"key {key!r} at {path} is not a string; JSON object keys must be strings",
                    hint="convert keys to strings before recording them",
                )
            ascii_keys = _check(item, f"{path}.{key}", strict=strict) and ascii_keys
            ascii_keys = ascii_keys and key.isascii()
        return ascii_keys
    if isinstance(value, Sequence | set | frozenset):
        if isinstance(value, set | frozenset):
            raise InputError(
                f"set at {path} has no defined order and cannot be canonical JSON",
                hint="use a sorted list instead",
            )
        ascii_keys = True
        for index, item in enumerate(value):
            ascii_keys = _check(item, f"{path}[{index}]", strict=strict) and ascii_keys
        return ascii_keys
    if strict:
        raise InputError(
            f"value of type {type(value).__name__} at {path} cannot be written as JSON",
            hint="use strings, integers, booleans, null, lists and objects only",
        )
    return True


def strict_b64decode(text: str) -> bytes | None:
    """Decode standard padded base64 (RFC 4648 section 4) only in its one canonical spelling.

    Returns None for anything else (other alphabets, missing padding, whitespace, non-zero
    trailing bits), so that one value has exactly one text form in our formats.
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None
    if base64.b64encode(raw).decode("ascii") != text:
        return None
    return raw
