"""Reading models from YAML and JSON files and from command-line options.

A bad document is refused with one :class:`InputError` that lists every problem as
``<file>:<line>: <field.path>: <message>``, so a testimony with three mistakes needs one
correction round, not three. Values typed under ``identity`` are never quoted back: not in a
message, not in a syntax error, not as an unknown key.

Command-line options are refused the same way, each problem naming the option that was typed
(``--children-count: must be a whole number``, ``--placement (2nd value, start): ...``), and a
message that names another field names that field's option too (``--end: must not be before
--start``). When a record is corrected and a date contradicts one the record holds unchanged,
the problem is put on the value just typed: ``--start: must not be after --end, recorded as
2022-06``, not ``--end: must not be before --start``.

The YAML reader is deliberately narrower than YAML 1.1: only ``true``/``false`` are booleans
(``NO`` stays the country code of Norway), integers are decimal (``012`` is twelve, not ten),
dates stay the text that was written, numbers with a fraction become :class:`~decimal.Decimal`
(never ``float``), duplicate keys and tags such as ``!!python/object`` are refused.

Everything read here is input typed by a person, so it is validated with
:func:`evidence.models.input_context`: a date later than today (UTC, plus one day), or a
date and time later than now (plus a few minutes), is refused with its field, like any other
mistake. ``today`` (a day, or a date and time for "now") can be given for tests. When a
record of the case is corrected, the values it already holds (``recorded``) are not judged
against the clock again: a case recorded on a machine whose clock was wrong can still be
corrected.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import stat
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from chain_of_custody.errors import EnvironmentProblem, InputError
from evidence.models import (
    ENTITY_MODELS,
    PROTECTED_FIELDS,
    Entity,
    EntityModel,
    Testimony,
    input_context,
)

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "FieldProblem",
    "HeldIdentity",
    "Loc",
    "ModelInputError",
    "field_name",
    "held_identity",
    "load_entity",
    "load_model",
    "load_testimony",
    "parse_entity_options",
    "parse_options",
    "testimony_template",
]

M = TypeVar("M", bound=BaseModel)

MAX_DOCUMENT_BYTES: Final = 16 * 1024 * 1024
"""Largest testimony or entity file read; a statement of this size is already a book."""

_PROTECTED_ROOT: Final = "identity"
_TEMPLATE_NAME: Final = "testimony_template.yaml"
_TESTIMONY_HINT: Final = (
    "correct the fields named above; `evidence testimony template` prints a commented example"
)
_GENERIC_HINT: Final = "correct the fields named above and run the command again"


# ---------------------------------------------------------------------------------------------
# Problems and the error that carries them
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldProblem:
    """One refused field: where it is (file line, field path) and what is wrong with it.

    For command-line input ``field`` is the option typed; it is empty for a problem of the
    options as a whole (no link target given).
    """

    field: str
    message: str
    line: int | None = None

    def format(self, source: str | None) -> str:
        """``<file>:<line>: <field>: <message>``, leaving out what is not known."""
        where = ""
        if source is not None:
            where = f"{source}:{self.line}: " if self.line is not None else f"{source}: "
        return f"{where}{self.field}: {self.message}" if self.field else where + self.message


class ModelInputError(InputError):
    """A document or a set of options was refused; ``problems`` lists each refused field."""

    def __init__(self, problems: list[FieldProblem], source: str | None, hint: str) -> None:
        self.problems: tuple[FieldProblem, ...] = tuple(problems)
        self.source = source
        super().__init__("\n".join(p.format(source) for p in self.problems), hint)


# ---------------------------------------------------------------------------------------------
# A narrow, safe YAML reader
# ---------------------------------------------------------------------------------------------


class _Resolver(BaseResolver):
    """YAML 1.2 core-schema style plain scalars, without timestamps or sexagesimal numbers."""


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Resolver.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])

_DECIMAL_INT = re.compile(r"[-+]?[0-9]{1,30}")
_DECIMAL_NUMBER = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]{1,4})?")


class _Constructor(SafeConstructor):
    """Builds plain values only; any other tag (``!!python/...``, ``!!binary``) is refused."""

    def construct_plain_bool(self, node: Node) -> bool:
        value = str(self.construct_scalar(node))  # type: ignore[arg-type]
        if value.lower() not in {"true", "false"}:
            raise ConstructorError(None, None, "a !!bool must be true or false", node.start_mark)
        return value.lower() == "true"

    def construct_plain_int(self, node: Node) -> int:
        value = str(self.construct_scalar(node))  # type: ignore[arg-type]
        if not _DECIMAL_INT.fullmatch(value):
            raise ConstructorError(
                None, None, "integers must be written in decimal digits", node.start_mark
            )
        return int(value)

    def construct_plain_decimal(self, node: Node) -> Decimal:
        # Decimal keeps the digits as written; a float would round them.
        value = str(self.construct_scalar(node))  # type: ignore[arg-type]
        if not _DECIMAL_NUMBER.fullmatch(value):
            raise ConstructorError(
                None, None, "numbers must be written as decimal digits", node.start_mark
            )
        return Decimal(value)

    def construct_refused(self, node: Node) -> Any:
        raise ConstructorError(
            None,
            None,
            "YAML tags are not accepted here; write plain values",
            node.start_mark,
        )

    # A fresh table, not SafeConstructor's: timestamps, !!binary, !!set, !!omap are left out.
    yaml_constructors: typing.ClassVar[dict[Any, Any]] = {
        "tag:yaml.org,2002:null": SafeConstructor.construct_yaml_null,
        "tag:yaml.org,2002:bool": construct_plain_bool,
        "tag:yaml.org,2002:int": construct_plain_int,
        "tag:yaml.org,2002:float": construct_plain_decimal,
        "tag:yaml.org,2002:str": SafeConstructor.construct_yaml_str,
        "tag:yaml.org,2002:seq": SafeConstructor.construct_yaml_seq,
        "tag:yaml.org,2002:map": SafeConstructor.construct_yaml_map,
        None: construct_refused,
    }


class _Loader(Reader, Scanner, Parser, Composer, _Constructor, _Resolver):
    """The pure-Python pipeline: its marks give the line and column of every node."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Constructor.__init__(self)
        _Resolver.__init__(self)


@functools.cache
def _known_field_names() -> frozenset[str]:
    names: set[str] = set()
    seen: set[type[BaseModel]] = set()
    todo: list[type[BaseModel]] = [Testimony, *ENTITY_MODELS.values()]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            names.add(name)
            inner = _inner_model(info.annotation)
            if inner is not None:
                todo.append(inner)
    return frozenset(names)


def _safe_key(key: object) -> str:
    # A key typed by mistake can be a protected value (a name under identity): quote only keys
    # that are field names of some model.
    if isinstance(key, str) and key in _known_field_names():
        return repr(key)
    return "(a key that is not a field name)"


def _check_duplicate_keys(root: Node, source: str) -> None:
    # PyYAML keeps the last of two equal keys without a word; in evidence that hides a mistake.
    seen: set[int] = set()
    todo: list[Node] = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            keys: set[tuple[str, str]] = set()
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode):
                    marker = (key_node.tag, key_node.value)
                    if marker in keys:
                        raise InputError(
                            f"{source}:{key_node.start_mark.line + 1}: duplicate key "
                            f"{_safe_key(key_node.value)}",
                            hint="give each field once",
                        )
                    keys.add(marker)
                todo.extend((key_node, value_node))
        elif isinstance(node, SequenceNode):
            todo.extend(node.value)


# PyYAML's messages quote what they stumbled on: an alias, anchor or tag handle name, or a
# character, any of which can be (part of) an identity value typed without quotes. Each kind is
# told by the fixed start of its message and said again in a fixed phrase of ours.
_YAML_PHRASES: Final = (
    (
        "found undefined alias",
        "found an alias (a value that starts with '*') that no anchor defines; "
        "put a value that starts with '*' in quotes",
    ),
    (
        "found duplicate anchor",
        "found the same anchor (a value that starts with '&') twice; "
        "put a value that starts with '&' in quotes",
    ),
    (
        "found undefined tag handle",
        "found an undefined tag handle (a value that starts with '!'); "
        "put a value that starts with '!' in quotes",
    ),
    ("duplicate tag handle", "found a %TAG directive given twice"),
    (
        "found character",
        "found a character that cannot start a value (such as '@', '`' or a tab); "
        "put the value in quotes",
    ),
    (
        "expected alphabetic or numeric character",
        "an alias or anchor ('*' or '&') must be followed by letters or digits; "
        "put a value that starts with '*' or '&' in quotes",
    ),
    (
        "found unknown escape character",
        "found an unknown escape (a backslash) in a double-quoted value; "
        "write \\\\ for a backslash, or use single quotes",
    ),
    ("expected escape sequence", "found an incomplete escape in a double-quoted value"),
    ("expected URI", "found a character that a tag cannot hold"),
    ("expected '!'", "found a tag that is not closed with '!'"),
    ("expected '>'", "found a verbatim tag that is not closed with '>'"),
    ("expected a comment or a line break", "expected a comment or the end of the line here"),
    (
        "expected chomping or indentation indicators",
        "expected '+', '-', a digit or the end of the line after '|' or '>'",
    ),
    ("expected ' '", "expected a space here"),
    ("expected a digit", "expected a version number in the %YAML directive"),
)
# What the grammar's own messages quote: token names (``'<block end>'``) and punctuation.
_YAML_TOKEN_QUOTE = re.compile(r"'(?:<[a-z ]+>|[-,:?\[\]{}!>.| ])'")
_ANY_QUOTE = re.compile(r"'[^']*'|\"[^\"]*\"")


def _grammar_only(message: str | None) -> str | None:
    """A PyYAML ``problem`` or ``context`` without any token of the document in it."""
    if not message:
        return None
    for start, phrase in _YAML_PHRASES:
        if message.startswith(start):
            return phrase
    if message == "second occurrence":
        return None  # said by the duplicate anchor's phrase
    # A message this table does not know keeps the grammar's words; any other quoted text
    # (a value of the document, perhaps) is left out.
    kept = _YAML_TOKEN_QUOTE.sub(lambda m: m.group(0).replace("'", "\x00"), message)
    return _ANY_QUOTE.sub("(text of the file)", kept).replace("\x00", "'")


def _yaml_problem(exc: yaml.YAMLError, source: str, text: str) -> InputError:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        # exc.problem and exc.context describe the grammar, but may quote a token (an alias
        # name, say) that is an identity value; str(exc) would quote the line.
        parts = dict.fromkeys(_grammar_only(p) for p in (exc.context, exc.problem))
        what = "; ".join(p for p in parts if p)
        return InputError(
            f"{source}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {what}",
            hint="check the indentation, the colons and the quoting near that line",
        )
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = exc.character
        code = ord(char) if isinstance(char, str) and len(char) == 1 else int(char or 0)
        return InputError(
            f"{source}:{line}:{column}: not valid YAML: character U+{code:04X} is not allowed",
            hint="remove the control character, or write it as an escape in a quoted string",
        )
    return InputError(f"{source}: not valid YAML", hint="check the file is a YAML document")


def _parse_yaml(text: str, source: str) -> tuple[Any, Node | None]:
    problem: InputError | None = None
    data: Any = None
    node: Node | None = None
    try:
        # The reader checks for unprintable characters as soon as it is made.
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_duplicate_keys(node, source)
                data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        problem = _yaml_problem(exc, source, text)
    # Raised outside the handler so that the YAML error, whose text quotes the offending line
    # (perhaps an identity line), is not kept as the context of the error shown to the user.
    if problem is not None:
        raise problem
    return data, node


def _line_map_for_json(text: str) -> Node | None:
    # JSON is (almost) YAML: composing it gives line numbers for the messages. When the
    # composer disagrees with the JSON parser, messages go without line numbers.
    try:
        loader = _Loader(text)
        try:
            node: Node | None = loader.get_single_node()
        finally:
            loader.dispose()
    except (yaml.YAMLError, RecursionError):
        return None
    return node


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number this toolkit accepts")


def _parse_json(text: str, source: str) -> tuple[Any, Node | None]:
    problem: InputError | None = None
    duplicate = False
    data: Any = None
    try:
        data = json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_no_duplicates,
        )
    except _DuplicateKeyError as exc:
        duplicate = True
        problem = InputError(
            f"{source}: duplicate key {_safe_key(exc.key)}", hint="give each field once"
        )
    except json.JSONDecodeError as exc:
        problem = InputError(
            f"{source}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}",
            hint="check the brackets, commas and quotes near that line",
        )
    except ValueError as exc:
        # Out-of-range integers (more than 4300 digits) and NaN/Infinity.
        problem = InputError(f"{source}: not valid JSON: {exc}", hint="check the numbers")
    root = _line_map_for_json(text)
    # Raised outside the handler: the parser's exception may hold a protected key.
    if problem is not None:
        if duplicate and root is not None:
            _check_duplicate_keys(root, source)  # the same refusal, naming the line
        raise problem
    return data, root


def _read_text(path: Path) -> str:
    source = str(path)
    try:
        mode = path.stat().st_mode
        # Opening a FIFO or a device would block or read without end: regular files only.
        if stat.S_ISDIR(mode):
            raise InputError(f"{source}: is a directory, not a file", hint="name a file")
        if not stat.S_ISREG(mode):
            raise InputError(
                f"{source}: is not a regular file (a FIFO, socket or device)",
                hint="save the document to a file and name that file",
            )
        with path.open("rb") as handle:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{source}: no such file", hint="check the path") from None
    except PermissionError:
        raise EnvironmentProblem(
            f"{source}: permission denied", hint="check you may read the file"
        ) from None
    except OSError as exc:
        raise EnvironmentProblem(
            f"{source}: cannot be read ({exc.strerror or type(exc).__name__})",
            hint="check the file and the disk",
        ) from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InputError(
            f"{source}: larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB",
            hint="keep long statements and recordings as items and attach them",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{source}:{line}: not UTF-8 text (byte {exc.start})",
            hint="save the file as UTF-8",
        ) from None


def _is_json(path: Path, text: str) -> bool:
    suffix = path.suffix.lower()
    if suffix in {".yaml", ".yml"}:
        return False
    if suffix == ".json":
        return True
    return text.lstrip()[:1] in {"{", "["}


def _read_document(path: Path) -> tuple[dict[str, Any], Node | None]:
    source = str(path)
    text = _read_text(path)
    try:
        data, root = (
            _parse_json(text, source) if _is_json(path, text) else _parse_yaml(text, source)
        )
    except RecursionError:
        raise InputError(f"{source}: nested too deeply", hint="check the structure") from None
    if data is None:
        raise InputError(f"{source}: the document is empty", hint="fill in the fields")
    if not isinstance(data, dict):
        line = root.start_mark.line + 1 if root is not None else 1
        raise InputError(
            f"{source}:{line}: the document must be a mapping of fields, not a {_kind_of(data)}",
            hint="start each line with `field: value`",
        )
    return data, root


# ---------------------------------------------------------------------------------------------
# Turning pydantic errors into field problems
# ---------------------------------------------------------------------------------------------


def _kind_of(value: object) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return "single value"


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``X``, ``X | None``, ``tuple[X, ...]`` or ``Annotated[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _inner_model(typing.get_args(annotation)[0])
    if origin in {typing.Union, types.UnionType, tuple}:
        for arg in typing.get_args(annotation):
            inner = _inner_model(arg)
            if inner is not None:
                return inner
    return None


def _model_at(model_cls: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    current: type[BaseModel] | None = model_cls
    for part in loc:
        if isinstance(part, int):
            continue
        if current is None or part not in current.model_fields:
            return None
        current = _inner_model(current.model_fields[part].annotation)
    return current


_FIELD_LIKE = re.compile(r"[a-z][a-z0-9_]{0,39}")

Loc = tuple[int | str, ...]
"""Where a value sits in a document: field names and list indices, as pydantic gives them."""


def _key_shown(part: str) -> str:
    # An unknown key is shown only if it looks like a field name: a key such as
    # "Olena Petrenko:" is someone's name typed at the wrong indentation.
    if part not in _known_field_names() and not _FIELD_LIKE.fullmatch(part):
        return "(unknown field)"
    return part


def _field_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        shown = _key_shown(part)
        out += f".{shown}" if out else shown
    return out or "(document)"


_ORDINAL_SUFFIXES: Final = {1: "st", 2: "nd", 3: "rd"}


def _ordinal(number: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ... ``11th``, ... ``21st``."""
    teen = 10 <= number % 100 <= 20
    return f"{number}{'th' if teen else _ORDINAL_SUFFIXES.get(number % 10, 'th')}"


def _within(rest: Loc) -> str:
    """`` (2nd value, start)`` for the part ``(1, "start")`` of what an option holds."""
    if not rest:
        return ""
    parts = [f"{_ordinal(p + 1)} value" if isinstance(p, int) else _key_shown(p) for p in rest]
    return f" ({', '.join(parts)})"


def _option_at(loc: Loc, options: Mapping[str, str]) -> str | None:
    """The option that sets the value at ``loc``, if one does."""
    for cut in range(len(loc), 0, -1):
        head = loc[:cut]
        if all(isinstance(p, str) for p in head):
            flag = options.get(".".join(str(p) for p in head))
            if flag is not None:
                return flag + _within(loc[cut:])
    if loc and all(isinstance(p, str) for p in loc):
        # A nested record (a place) is filled by several options; the first one (the name,
        # --place) is the one that makes it.
        prefix = ".".join(str(p) for p in loc) + "."
        return next((flag for key, flag in options.items() if key.startswith(prefix)), None)
    return None


def field_name(loc: Loc, options: Mapping[str, str] | None = None) -> str:
    """How a message names the value at ``loc``: its field path (``placements[1].start``) or,
    given ``options`` (each dotted field with the command-line option that sets it), the
    option (``--placement (2nd value, start)``).

    A field no option sets keeps its path; the options as a whole are named by nothing.
    """
    if options is not None:
        flag = _option_at(loc, options)
        if flag is not None:
            return flag
        if not loc:
            return ""
    return _field_path(loc)


def _line_for(root: Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The line of the deepest node along ``loc`` (the key's line for a mapping entry)."""
    if root is None:
        return None
    node: Node = root
    line = root.start_mark.line + 1
    for part in loc:
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode) and key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                break
        elif isinstance(node, SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


_MESSAGES: Final = {
    "missing": "is required but missing",
    "string_type": "must be text (put it in quotes if it looks like a number)",
    "tuple_type": "must be a list (in YAML, one `- value` per line)",
    "model_type": "must be a mapping of fields",
    "model_attributes_type": "must be a mapping of fields",
    "dict_type": "must be a mapping of fields",
    "string_too_short": "must not be empty",
    "too_short": "must list at least {min_length} item(s)",
    "string_too_long": "must be at most {max_length} characters",
    "too_long": "must list at most {max_length} items",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "enum": "must be one of {expected}",
    "int_type": "must be a whole number",
    "bool_type": "must be true or false",
    "invalid_key": "field names must be text",
    "string_unicode": "must be valid Unicode text",
}

# For these the input is not a value of the field (the parent mapping, an unknown field's
# content), so quoting it would not help.
_NO_INPUT: Final = frozenset(
    {"missing", "extra_forbidden", "model_type", "dict_type", "invalid_key"}
)
_MAX_SHOWN: Final = 60


def _message(error: ErrorDetails, model_cls: type[BaseModel]) -> str:
    kind = error["type"]
    loc = tuple(error["loc"])
    if kind == "extra_forbidden":
        message = "is not a known field"
        known = _model_at(model_cls, loc[:-1])
        if known is not None and loc and isinstance(loc[-1], str):
            close = difflib.get_close_matches(loc[-1], list(known.model_fields), n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
            else:
                message += f" (known: {', '.join(known.model_fields)})"
        return message
    template = _MESSAGES.get(kind)
    if template is not None:
        try:
            return template.format(**error.get("ctx", {}))
        except (KeyError, IndexError):
            return error["msg"]
    return error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _shown(value: object) -> str | None:
    if isinstance(value, bool | int | Decimal | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, str):
        # repr escapes control characters, so nothing typed can steer the terminal.
        if len(value) > _MAX_SHOWN:
            return repr(value[:_MAX_SHOWN]) + "..."
        return repr(value)
    return None


def _got(value: object) -> str:
    shown = _shown(value)
    return f" (got {shown})" if shown is not None else ""


@dataclass(frozen=True)
class _Given:
    """What was validated, for naming its problems: the values, the lines of the document or
    the options they were typed as, and the record they correct."""

    model_cls: type[BaseModel]
    data: Mapping[str, Any]
    root: Node | None = None
    options: Mapping[str, str] | None = None
    recorded: Mapping[str, Any] | None = None

    def name(self, loc: Loc) -> str:
        """The field path at ``loc``, or the option typed for it."""
        return field_name(loc, self.options)


def _is_protected(loc: Loc) -> bool:
    return bool(loc) and loc[0] == _PROTECTED_ROOT


def _reference(loc: Loc, name: str, model_cls: type[BaseModel]) -> Loc:
    """Where the field ``name`` that a message at ``loc`` mentions is: a field of the record
    at ``loc`` (a check of the record as a whole), else one beside the refused field."""
    record = _model_at(model_cls, loc)
    if record is not None and name in record.model_fields:
        return (*loc, name)
    return (*loc[:-1], name)


def _options_named(message: str, error: ErrorDetails, given: _Given) -> str:
    """``message`` with the fields it mentions (its ``*_field`` context) named as options."""
    if given.options is None:
        return message
    context = error.get("ctx") or {}
    loc = tuple(error["loc"])
    names = {
        str(value): given.name(_reference(loc, str(value), given.model_cls))
        for key, value in context.items()
        if key.endswith("_field")
    }
    if not names:
        return message
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")
    return pattern.sub(lambda match: names[match.group(1)], message)


def _same(first: Any, second: Any) -> bool:
    # A year typed as text ("2015") is the year the record holds as a number.
    return first is not _MISSING and second is not _MISSING and str(first) == str(second)


def _parts_of_one_value(first: Loc, second: Loc) -> bool:
    """Whether two locations are fields of one item of a list (the start and the end of one
    placement): typed together, as one value."""
    return first[:-1] == second[:-1] and any(isinstance(p, int) for p in first[:-1])


def _changed_alone(changed: Loc, kept: Loc, given: _Given) -> bool:
    """Whether a correction changed the value at ``changed`` and kept the one at ``kept``."""
    if given.recorded is None:
        return False
    data, recorded = given.data, given.recorded
    return _same(_value_at(data, kept), _value_at(recorded, kept)) and not _same(
        _value_at(data, changed), _value_at(recorded, changed)
    )


def _order_problem(error: ErrorDetails, given: _Given) -> FieldProblem | None:
    """A date that contradicts another (models' ``date_order``), named for what was typed.

    When a correction changed one date and the record holds the other unchanged, the problem
    is the changed one's, whichever of the two the model refused. From options, both are named
    as options. Otherwise (a file; input not of a correction) ``None``: the model's message is
    right as it is.
    """
    context = error.get("ctx") or {}
    loc = tuple(error["loc"])
    if error["type"] != "date_order" or "earlier_field" not in context:
        return None
    later_loc = (*loc, context["index"], context["part"]) if "index" in context else loc
    earlier_loc = _reference(loc, str(context["earlier_field"]), given.model_cls)
    if _is_protected(later_loc) or _is_protected(earlier_loc):
        return None
    later = context.get("later", error.get("input"))
    one_value = _parts_of_one_value(later_loc, earlier_loc)
    if not one_value and _changed_alone(earlier_loc, later_loc, given):
        return FieldProblem(
            given.name(earlier_loc),
            f"must not be after {given.name(later_loc)}, recorded as {later}"
            + _got(_value_at(given.data, earlier_loc)),
        )
    if given.options is None:
        return None
    earlier = str(earlier_loc[-1]) if one_value else given.name(earlier_loc)
    return FieldProblem(
        given.name(later_loc),
        f"must not be before {earlier} ({context['earlier']})" + _got(later),
    )


def _problems(errors: list[ErrorDetails], given: _Given) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    item_locs = {tuple(e["loc"][:-1]) for e in errors if e["loc"] and isinstance(e["loc"][-1], int)}
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "too_short" and loc in item_locs:
            # pydantic counts only the valid items; the bad item is already reported.
            continue
        protected = _is_protected(loc)
        if protected:
            # Under identity, a location beyond the known fields would be a typed key.
            loc = tuple(p for p in loc[:2] if p == _PROTECTED_ROOT or p in PROTECTED_FIELDS)
        order = None if protected else _order_problem(error, given)
        if order is not None:
            problems.append(order)
            continue
        message = _options_named(_message(error, given.model_cls), error, given)
        if not protected and error["type"] not in _NO_INPUT:
            message += _got(error.get("input"))
        problems.append(FieldProblem(given.name(loc), message, _line_for(given.root, loc)))
    return problems


_MISSING: Final = object()


def _value_at(data: Any, loc: tuple[int | str, ...]) -> Any:
    for part in loc:
        if isinstance(part, int):
            found = isinstance(data, list | tuple) and 0 <= part < len(data)
        else:
            found = isinstance(data, Mapping) and part in data
        if not found:
            return _MISSING
        data = data[part]
    return data


def _recorded_already(error: ErrorDetails, recorded: Mapping[str, Any] | None) -> bool:
    """Whether ``error`` is a future date that the record being corrected holds already."""
    if recorded is None or error["type"] != "date_future":
        return False
    return bool(_value_at(recorded, tuple(error["loc"])) == error.get("input", _MISSING))


def _attempt(
    model_cls: type[M], data: Mapping[str, Any], context: dict[str, date] | None
) -> M | list[ErrorDetails]:
    try:
        return model_cls.model_validate(data, context=context)
    except ValidationError as exc:
        return exc.errors(include_url=False)


def _validate(
    model_cls: type[M],
    data: Mapping[str, Any],
    source: str | None,
    root: Node | None,
    hint: str,
    *,
    today: date | None = None,
    recorded: Mapping[str, Any] | None = None,
    option_names: Mapping[str, str] | None = None,
) -> M:
    result = _attempt(model_cls, data, input_context(today))
    if isinstance(result, list) and all(_recorded_already(e, recorded) for e in result):
        # Only dates the record held before lie after today: validate without the clock, which
        # may still find an order problem hidden behind them (a refused start is not compared
        # with the end).
        result = _attempt(model_cls, data, None)
    if isinstance(result, list):
        errors = [e for e in result if not _recorded_already(e, recorded)]
        given = _Given(model_cls, data, root, option_names, recorded)
        # Raised with no ValidationError in flight: it keeps every input, identity included.
        raise ModelInputError(_problems(errors, given), source, hint)
    return result


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------


def load_model(path: Path, model_cls: type[M], *, today: date | None = None) -> M:
    """Read a YAML or JSON document (by extension, else by its first character) into a model.

    Raises :class:`InputError` naming the file, line and field of every problem; a date later
    than ``today`` (default: the UTC date of the system clock) is one.
    """
    data, root = _read_document(path)
    hint = _TESTIMONY_HINT if issubclass(model_cls, Testimony) else _GENERIC_HINT
    return _validate(model_cls, data, str(path), root, hint, today=today)


def load_testimony(path: Path, *, today: date | None = None) -> Testimony:
    """Read a testimony file (see ``evidence testimony template``)."""
    return load_model(path, Testimony, today=today)


def _entity_model(kind: str) -> EntityModel:
    try:
        return ENTITY_MODELS[kind]
    except KeyError:
        raise InputError(
            f"unknown entity kind {kind!r}",
            hint=f"use one of: {', '.join(ENTITY_MODELS)}",
        ) from None


def load_entity(
    path: Path, kind: str, *, default_id: str | None = None, today: date | None = None
) -> Entity:
    """Read an incident, facility, perpetrator or child file.

    ``default_id`` is used when the document has no ``id`` (the case allocates ids).
    """
    model_cls = _entity_model(kind)
    data, root = _read_document(path)
    if default_id is not None and "id" not in data:
        data = {"id": default_id, **data}
    entity: Entity = _validate(model_cls, data, str(path), root, _GENERIC_HINT, today=today)
    return entity


def _expand_options(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Nest dotted keys (``place.name``) and drop options that were not given."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if value is None or (isinstance(value, list | tuple) and not value):
            continue
        target = out
        *parents, leaf = key.split(".")
        for parent in parents:
            nested = target.setdefault(parent, {})
            if not isinstance(nested, dict):
                raise InputError(
                    f"{parent}: given both as a value and with sub-fields ({key})",
                    hint="give either the value or its sub-fields",
                )
            target = nested
        if isinstance(target.get(leaf), dict):
            raise InputError(
                f"{key}: given both as a value and with sub-fields",
                hint="give either the value or its sub-fields",
            )
        target[leaf] = list(value) if isinstance(value, tuple) else value
    return out


def parse_options(
    model_cls: type[M],
    mapping: Mapping[str, Any],
    *,
    option_names: Mapping[str, str] | None = None,
    today: date | None = None,
    recorded: Mapping[str, Any] | None = None,
) -> M:
    """Build a model from command-line option values; ``None`` and empty lists mean not given.

    Keys may be dotted (``place.country``). Problems are listed as ``<field>: <message>``;
    ``option_names`` maps (dotted) fields to the options that set them (``{"place.name":
    "--place"}``), and problems then name the options (see :func:`field_name`).
    A date later than ``today`` (default: the UTC date of the system clock) is refused, unless
    ``recorded`` (the record being corrected, as stored) holds the same value at the same field.
    """
    hint = "correct the options named above; see --help"
    return _validate(
        model_cls,
        _expand_options(mapping),
        None,
        None,
        hint,
        today=today,
        recorded=recorded,
        option_names=option_names,
    )


def parse_entity_options(
    kind: str,
    mapping: Mapping[str, Any],
    *,
    option_names: Mapping[str, str] | None = None,
    today: date | None = None,
    recorded: Mapping[str, Any] | None = None,
) -> Entity:
    """Build an incident, facility, perpetrator or child from command-line option values."""
    entity: Entity = parse_options(
        _entity_model(kind), mapping, option_names=option_names, today=today, recorded=recorded
    )
    return entity


def testimony_template() -> str:
    """The commented YAML template of a testimony, with fictional example values."""
    return resources.files("evidence").joinpath(_TEMPLATE_NAME).read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Recognising a testimony document that holds an identity (for ingest)
# ---------------------------------------------------------------------------------------------

HeldIdentity = typing.Literal["none", "held", "unparsed"]
"""What :func:`held_identity` found: no identity value, identity values in a document it read,
or a document it could not read that has a ``witness_code`` and an ``identity`` key."""

# A key as a document types it: at the start of a line, or after '{' or ',' (flow style, JSON).
_WITNESS_CODE_KEY = re.compile(r"""(?:^[ \t]*|[{,]\s*)["']?witness_code["']?[ \t]*:""", re.M)
_IDENTITY_KEY = re.compile(r"""(?:^[ \t]*|[{,]\s*)["']?identity["']?[ \t]*:""", re.M)


def held_identity(raw: bytes) -> HeldIdentity:
    """Whether ``raw`` is a testimony document (YAML or JSON) whose identity block holds a value.

    A testimony document is a mapping with a ``witness_code`` (or a list of such mappings). Its
    identity block holds a value when any field under ``identity`` is set to something other
    than nothing or blank text, or when it is a value itself (text typed as ``identity:``, a
    key typed as the name). An absent or empty block (``identity:``, ``identity: {}``, fields
    left empty) holds nothing, and neither does the block of the shipped template, whose
    values are fictional examples (:func:`testimony_template`).

    Bytes that are not UTF-8 are read as replacement characters. A document that cannot be
    read (a syntax error, a duplicate key) is judged by its keys: with a ``witness_code:`` and
    an ``identity:`` key (each at the start of a line, or after ``{`` or ``,``) it is
    ``"unparsed"``. Never raises: ingest asks this of text files, and
    a question must not stop a batch.
    """
    text = raw.decode("utf-8-sig", errors="replace")
    try:
        data = _document_of(text)
    except Exception:  # noqa: BLE001 - any failure to read is judged by the words below
        if _WITNESS_CODE_KEY.search(text) and _IDENTITY_KEY.search(text):
            return "unparsed"
        return "none"
    documents = data if isinstance(data, list) else [data]
    for document in documents:
        if not isinstance(document, dict) or "witness_code" not in document:
            continue
        block = document.get(_PROTECTED_ROOT)
        if _holds_value(block, set()) and not _is_template_identity(block):
            return "held"
    return "none"


def _document_of(text: str) -> Any:
    """The document in ``text``, read with the narrow YAML reader (or as JSON).

    Raises on a document :func:`load_testimony` would refuse to read, duplicate keys included:
    with one of two ``identity`` keys empty, the values of the other would go unseen.
    """
    if text.lstrip()[:1] in {"{", "["}:
        try:
            return json.loads(text, parse_float=Decimal, object_pairs_hook=_no_duplicates)
        except ValueError:
            pass  # not JSON after all; YAML may still read it (JSON with comments, say)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_duplicate_keys(node, "")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _holds_value(value: object, seen: set[int]) -> bool:
    """Whether ``value`` holds anything: text that is not blank, a number, or a container
    holding such; a key that is not a field of the identity block counts as a value typed.

    ``seen`` holds the containers already looked at: YAML aliases can make one list appear many
    times (a document of nested aliases would otherwise take exponential time)."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, dict | list):
        if id(value) in seen:
            return False
        seen.add(id(value))
        if isinstance(value, list):
            return any(_holds_value(item, seen) for item in value)
        return any(
            key not in PROTECTED_FIELDS or _holds_value(item, seen) for key, item in value.items()
        )
    return True  # a number, a flag, a date: all typed values


def _is_template_identity(block: object) -> bool:
    """Whether ``block`` holds only the template's fictional example values."""
    if not isinstance(block, dict):
        return False
    examples = _template_identity()
    return all(
        key in examples and (item is None or str(item).strip() == examples[key])
        for key, item in block.items()
    )


@functools.cache
def _template_identity() -> dict[str, str]:
    document = _document_of(testimony_template())
    block = document[_PROTECTED_ROOT] if isinstance(document, dict) else None
    if not isinstance(block, dict):
        return {}
    return {str(key): str(value).strip() for key, value in block.items()}
