"""What a case records (SPEC section 5): validated models of items, testimonies and entities.

Every model is a frozen pydantic model validated when built: bad input is refused with a
message that names the field. There are no floats anywhere: coordinates are decimal strings,
ages, years and counts are integers, so nothing is rounded on its way into the custody log.

Identity details of a witness (:class:`ProtectedIdentity`) never show in ``repr``, ``str``,
``model_dump`` or a validation error; :meth:`ProtectedIdentity.reveal` is the one way to read
them, for sealing them to the case's recipients.

Dates are checked two ways. Against each other, always: an end before its start, a child taken
before the year of birth, a placement before the child was born or taken, an age at the events
the witness had not reached by the interview. Dates with a precision (``2022``, ``2022-05``) are
compared by the whole span they may mean, so only a date that is wrong whatever day it stands
for is refused. Against the clock, only for what a person types in: validated with
:func:`input_context`, a date later than today (UTC, plus :data:`FUTURE_TOLERANCE`) is refused,
and so is a moment (a date with a time of day) later than now (plus :data:`CLOCK_SKEW`).
Records read back from the log or the catalog are built without that context, so a case
recorded on a machine whose clock was wrong still opens, verifies and exports.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Final, NamedTuple, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

# ---------------------------------------------------------------------------------------------
# Base configuration
# ---------------------------------------------------------------------------------------------

# hide_input_in_errors: a ValidationError printed anywhere (a log, a traceback with --debug)
# must not echo what was typed; the loaders build their own messages field by field.
_CONFIG: Final = ConfigDict(
    frozen=True,
    extra="forbid",
    str_strip_whitespace=True,
    hide_input_in_errors=True,
)

MAX_TEXT_LENGTH: Final = 1_000_000
"""Longest free text accepted (a statement); longer input is refused, not truncated."""

MAX_SHORT_TEXT_LENGTH: Final = 1_000
"""Longest one-line value (names, titles, codes, tags)."""


def _error(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


# A message that names another field carries that field's name in its context, under a key
# ending in "_field" (relative to the record checked: a field beside the one refused, or of the
# record refused as a whole), so that a reader of command-line options can name the option
# instead (evidence.loaders).


def _order_error(
    message: str, earlier_field: str, earlier: object, **where: object
) -> PydanticCustomError:
    """A ``date_order`` error: the value checked lies wholly before ``earlier_field``.

    The context holds the other field and its value (``earlier_field``, ``earlier``); for a
    value inside a list field, ``where`` says which (``index``, ``part``) and holds it
    (``later``). ``message`` may use these as ``{placeholders}``.
    """
    return PydanticCustomError(
        "date_order", message, {"earlier_field": earlier_field, "earlier": earlier, **where}
    )


def _check_text(value: str) -> str:
    # NUL ends strings in C libraries, terminals and some SQLite paths. Other control
    # characters are kept: transcribed documents contain tabs and form feeds. (Lone
    # surrogates, which UTF-8 cannot encode, are already refused by pydantic's str.)
    if "\x00" in value:
        raise _error("text_nul", "must not contain a NUL character (\\x00)")
    return value


Text: TypeAlias = Annotated[
    str, Field(min_length=1, max_length=MAX_TEXT_LENGTH), AfterValidator(_check_text)
]
"""Free text (descriptions, statements): not empty, no NUL."""

ShortText: TypeAlias = Annotated[
    str, Field(min_length=1, max_length=MAX_SHORT_TEXT_LENGTH), AfterValidator(_check_text)
]
"""A name, title or label: not empty, at most 1000 characters, no NUL."""


# ---------------------------------------------------------------------------------------------
# Scalars: identifiers, dates, languages, places, numbers, flags
# ---------------------------------------------------------------------------------------------


def _pattern(regex: str, example: str, what: str) -> AfterValidator:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise _error("id_pattern", f"must look like {example} ({what})")
        return value

    return AfterValidator(check)


# The number of an entity id as format_entity_id writes it: four digits, zero-padded, or more
# without a leading zero (so INC-0001 and INC-00001 cannot both exist), below a billion (it is
# stored as an SQLite integer).
_NUMBER: Final = r"(?:[0-9]{4}|[1-9][0-9]{4,8})"

IncidentId: TypeAlias = Annotated[
    str, _pattern(rf"INC-{_NUMBER}", "INC-0001", "INC- and a number of four digits or more")
]
FacilityId: TypeAlias = Annotated[
    str, _pattern(rf"FAC-{_NUMBER}", "FAC-0001", "FAC- and a number of four digits or more")
]
PerpetratorId: TypeAlias = Annotated[
    str, _pattern(rf"PER-{_NUMBER}", "PER-0001", "PER- and a number of four digits or more")
]
ChildId: TypeAlias = Annotated[
    str, _pattern(rf"CH-{_NUMBER}", "CH-0001", "CH- and a number of four digits or more")
]
WitnessCode: TypeAlias = Annotated[
    str, _pattern(r"W-[0-9]{3,}", "W-017", "W- and at least three digits")
]
ChildCode: TypeAlias = Annotated[
    str,
    # A pseudonym must not be able to hold a name: upper-case letters and digits in dash-joined
    # groups, with at least one digit.
    _pattern(
        r"(?=.*[0-9])[A-Z0-9]{1,16}(?:-[A-Z0-9]{1,16}){0,3}",
        "C-042",
        "a pseudonym of upper-case letters and digits, never a name",
    ),
]
Identifier: TypeAlias = Annotated[
    str,
    _pattern(r"[^\s\x00-\x1f\x7f]{1,200}", "INC-0001", "an id without spaces"),
]
"""Any id a link may start from: an item's sha256, a testimony's witness code, an entity id."""


def _year_ok(year: int) -> bool:
    return 1900 <= year <= 2100


FUTURE_TOLERANCE: Final = timedelta(days=1)
"""How far past today (UTC) a date typed in may lie: somewhere it is already tomorrow."""

CLOCK_SKEW: Final = timedelta(minutes=10)
"""How far past now a moment typed in may lie: the clock it was read from may run ahead."""

_TODAY: Final = "evidence.today"
_NOW: Final = "evidence.now"


def utc_now() -> datetime:
    """The current instant in UTC, by the system clock."""
    return datetime.now(UTC)


def utc_today() -> date:
    """Today's date in UTC, by the system clock."""
    return utc_now().date()


def input_context(today: date | None = None, *, now: datetime | None = None) -> dict[str, date]:
    """The validation context of what a person typed in: with it, future dates are refused.

    Use it as ``Model.model_validate(data, context=input_context())``. Without arguments the
    context holds :func:`utc_now` and its date; tests give a fixed ``now`` or a fixed day
    (``today`` may also be a date and time, taken as ``now``). A date whose first possible
    day is later than ``today`` plus :data:`FUTURE_TOLERANCE`, or a moment later than ``now``
    plus :data:`CLOCK_SKEW`, is refused with the error type ``date_future``. When only a day
    is given, ``now`` is the end of that day (UTC), the latest it can be.
    """
    if isinstance(today, datetime):
        now = now if now is not None else today
        today = None
    if now is not None:
        now = now.astimezone(UTC) if now.tzinfo is not None else now.replace(tzinfo=UTC)
    if today is None:
        now = now if now is not None else utc_now()
        today = now.date()
    elif now is None:
        now = datetime.combine(today + timedelta(days=1), time(), UTC)
    return {_TODAY: today, _NOW: now}


def _today_in(info: ValidationInfo) -> date | None:
    today = _from_context(info, _TODAY)
    return today if isinstance(today, date) else None


def _now_in(info: ValidationInfo) -> datetime | None:
    now = _from_context(info, _NOW)
    return now if isinstance(now, datetime) else None


def _from_context(info: ValidationInfo, key: str) -> object:
    """What :func:`input_context` put under ``key``; None outside an input context."""
    context = info.context
    return context.get(key) if isinstance(context, dict) else None


def _refuse_future(first_day: date, info: ValidationInfo) -> None:
    # The message never quotes the value: the same check guards a witness's date of birth.
    today = _today_in(info)
    if today is not None and first_day > today + FUTURE_TOLERANCE:
        raise _error(
            "date_future",
            f"is in the future (today is {today.isoformat()} UTC); "
            "check the year and give the date it happened",
        )


_PARTIAL_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")
_DATE_HELP = "a date like 2022, 2022-05 or 2022-05-14"


def _date_input(value: Any) -> Any:
    # Python callers may hand in date objects; YAML years arrive as integers.
    if isinstance(value, datetime):
        raise _error("date_type", f"must be {_DATE_HELP}, not a date and time")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value
    raise _error("date_type", f"must be {_DATE_HELP}")


def _check_partial_date(value: str) -> str:
    match = _PARTIAL_DATE.fullmatch(value)
    if not match:
        raise _error("date_format", f"must be {_DATE_HELP}")
    year, month, day = match.groups()
    if not _year_ok(int(year)):
        raise _error("date_range", "year must be between 1900 and 2100")
    if month is not None and not 1 <= int(month) <= 12:
        raise _error("date_range", "month must be between 01 and 12")
    if day is not None:
        last = calendar.monthrange(int(year), int(month))[1]
        if not 1 <= int(day) <= last:
            raise _error("date_range", f"day must be between 01 and {last} for that month")
    return value


def _partial_not_future(value: str, info: ValidationInfo) -> str:
    _refuse_future(partial_date_range(value)[0], info)
    return value


PartialDate: TypeAlias = Annotated[
    str,
    BeforeValidator(_date_input),
    AfterValidator(_check_partial_date),
    AfterValidator(_partial_not_future),
]
"""A date with its precision: ``2022`` (year), ``2022-05`` (month) or ``2022-05-14`` (day)."""


class DatePrecision(StrEnum):
    """How precisely a :data:`PartialDate` is known."""

    YEAR = "year"
    MONTH = "month"
    DAY = "day"


def date_precision(value: str) -> DatePrecision:
    """The precision of a validated partial date."""
    return {4: DatePrecision.YEAR, 7: DatePrecision.MONTH, 10: DatePrecision.DAY}[len(value)]


def partial_date_range(value: str) -> tuple[date, date]:
    """The first and last day a validated partial date can mean."""
    parts = [int(p) for p in value.split("-")]
    year = parts[0]
    month_first, month_last = (parts[1], parts[1]) if len(parts) > 1 else (1, 12)
    day_first = parts[2] if len(parts) > 2 else 1
    day_last = parts[2] if len(parts) > 2 else calendar.monthrange(year, month_last)[1]
    return date(year, month_first, day_first), date(year, month_last, day_last)


def _check_day(value: str) -> str:
    _check_partial_date(value)
    if len(value) != 10:
        raise _error("date_format", "must be a full date like 2023-03-01")
    return value


Day: TypeAlias = Annotated[
    str,
    BeforeValidator(_date_input),
    AfterValidator(_check_day),
    AfterValidator(_partial_not_future),
]
"""A calendar day, ``YYYY-MM-DD``."""

MOMENT = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?P<fraction>\.[0-9]+)?(?P<zone>Z|(?P<sign>[+-])(?P<hours>[0-9]{2}):(?P<minutes>[0-9]{2}))?"
)
"""An RFC 3339 date and time (section 5.6, upper-case ``T`` and ``Z``), its zone optional here
so that a time without one can be told apart; see :func:`moment_at`."""
MAX_FRACTION_DIGITS = 9
"""Digits of a second that a time may carry (nanoseconds)."""

_WHEN_HELP = "an RFC 3339 date or date and time, like 2022-05-14 or 2022-05-14T10:30:00Z"


def _when_input(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise _error("datetime_tz", "must say its time zone offset, e.g. ...T10:30:00Z")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise _error("datetime_type", f"must be {_WHEN_HELP}")


def _check_when(value: str) -> str:
    if len(value) == 10:
        try:
            return _check_day(value)
        except PydanticCustomError:
            raise _error("datetime_format", f"must be {_WHEN_HELP}") from None
    found = MOMENT.fullmatch(value)
    if found is None or found["zone"] is None or _too_fine(found):
        raise _error("datetime_format", f"must be {_WHEN_HELP} (with Z or an offset)")
    try:
        parsed = moment_at(found)
    except ValueError:
        raise _error("datetime_range", f"must be a real date and time ({_WHEN_HELP})") from None
    if not _year_ok(parsed.year):
        raise _error("date_range", "year must be between 1900 and 2100")
    return value


def _too_fine(found: re.Match[str]) -> bool:
    return len(found["fraction"] or "") > 1 + MAX_FRACTION_DIGITS


def moment_at(found: re.Match[str]) -> datetime:
    """The instant a :data:`MOMENT` match with a zone names (to the microsecond).

    Raises :class:`ValueError` for a day, an hour or an offset out of range (a leap second
    too): ``datetime`` checks the calendar and clock values.
    """
    offset = timedelta(0)
    if found["sign"] is not None:
        hours, minutes = int(found["hours"]), int(found["minutes"])
        if hours > 23 or minutes > 59:
            raise ValueError("offset out of range")
        offset = timedelta(hours=hours, minutes=minutes) * (-1 if found["sign"] == "-" else 1)
    micro = (found["fraction"] or ".")[1:7].ljust(6, "0")
    moment = datetime.fromisoformat(f"{found['date']}T{found['time']}.{micro}")
    return moment.replace(tzinfo=timezone(offset))


def _when_not_future(value: str, info: ValidationInfo) -> str:
    # A day alone may be written where it is already tomorrow: it has the day of tolerance. A
    # moment carries its offset, so it is compared with now itself, less a little clock skew.
    if len(value) == 10:
        _refuse_future(date.fromisoformat(value), info)
        return value
    now = _now_in(info)
    found = MOMENT.fullmatch(value)
    if now is not None and found is not None and moment_at(found) > now + CLOCK_SKEW:
        raise _error(
            "date_future",
            f"is later than now ({now:%Y-%m-%d %H:%M} UTC); "
            "check the date, the time and the offset from UTC",
        )
    return value


DateOrDateTime: TypeAlias = Annotated[
    str,
    BeforeValidator(_when_input),
    AfterValidator(_check_when),
    AfterValidator(_when_not_future),
]
"""An RFC 3339 full date or date-time with offset, kept as written."""

_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")


def _check_language(value: str) -> str:
    if not _LANGUAGE.fullmatch(value):
        raise _error("language", "must be a BCP 47 language tag such as uk, ru, en-GB or crh")
    # Case is not significant in BCP 47; the conventional form keeps catalog queries simple.
    parts = value.split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            out.append(part.upper())
        else:
            out.append(part.lower())
    return "-".join(out)


LanguageTag: TypeAlias = Annotated[str, AfterValidator(_check_language)]
"""A BCP 47 language tag, normalised to its conventional case (``uk``, ``en-GB``)."""

ISO_3166_ALPHA2: Final = frozenset(
    re.findall(
        "[A-Z]{2}",
        """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """,
    )
)
"""The officially assigned ISO 3166-1 alpha-2 country codes."""


def _check_country(value: str) -> str:
    code = value.upper()
    if code not in ISO_3166_ALPHA2:
        raise _error("country", "must be an ISO 3166-1 alpha-2 country code such as UA, RU or BY")
    return code


CountryCode: TypeAlias = Annotated[str, AfterValidator(_check_country)]

_COORDINATE = re.compile(r"[+-]?[0-9]{1,3}(?:\.[0-9]{1,12})?")


def _coordinate(limit: int, name: str) -> BeforeValidator:
    help_text = f"a decimal {name} between -{limit} and {limit}, written as text such as '48.4647'"

    def convert(value: Any) -> str:
        # A float has already lost digits; Decimal and int are exact. YAML and JSON loaders
        # hand unquoted numbers in as Decimal, keeping the digits as written.
        if isinstance(value, float):
            raise _error("coordinate_float", f"must be {help_text}, not a floating-point number")
        if isinstance(value, int) and not isinstance(value, bool):
            value = Decimal(value)
        if isinstance(value, Decimal):
            if not value.is_finite() or abs(value) > limit:
                raise _error("coordinate_range", f"must be {help_text}")
            if value.as_tuple().exponent < -12:  # type: ignore[operator]
                raise _error("coordinate_format", "must have at most 12 decimal places")
            value = format(value, "f")
        if not isinstance(value, str):
            raise _error("coordinate_type", f"must be {help_text}")
        text = value.strip()
        if not _COORDINATE.fullmatch(text):
            raise _error("coordinate_format", f"must be {help_text}")
        if abs(Decimal(text)) > limit:
            raise _error("coordinate_range", f"must be {help_text}")
        return text

    return BeforeValidator(convert)


Latitude: TypeAlias = Annotated[str, _coordinate(90, "latitude")]
Longitude: TypeAlias = Annotated[str, _coordinate(180, "longitude")]

MAX_SAFE_INTEGER: Final = 2**53 - 1


def _whole_number(value: Any) -> Any:
    # Booleans are ints in Python and floats round silently; neither is a count or an age.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _error("whole_number", "must be a whole number")
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,16}", text):
            raise _error("whole_number", "must be a whole number")
        return int(text)
    return value


WholeNumber: TypeAlias = Annotated[int, BeforeValidator(_whole_number)]


def _flag(value: Any) -> Any:
    # Consent answers carry legal weight: only an explicit true or false is an answer.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise _error("flag", "must be true or false")


Flag: TypeAlias = Annotated[bool, BeforeValidator(_flag)]


def _enum_input(value: Any) -> Any:
    # "Child victim", "child_victim" and "child-victim" mean the same choice.
    if isinstance(value, str) and not isinstance(value, StrEnum):
        return re.sub(r"[\s_]+", "-", value.strip()).lower()
    return value


def _provision_input(value: Any) -> Any:
    # "Art. 8(2)(a)(vii)", "article 8(2)(a)(vii)" and "8(2)(a)(vii)" mean the same provision.
    if isinstance(value, str) and not isinstance(value, StrEnum):
        compact = re.sub(r"\s+", "", value).lower()
        compact = re.sub(r"^(?:article|art\.?)", "", compact)
        return f"art. {compact}"
    return value


def _unique(value: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(value))


def _nfc_at_input(value: str, info: ValidationInfo) -> str:
    # A word typed in decomposed form (e + combining accent) looks the same as the composed
    # one; in a list it must be the same value, not a second one. Only input is normalised:
    # a record read back keeps the characters it was logged with.
    return unicodedata.normalize("NFC", value) if _today_in(info) is not None else value


ListText: TypeAlias = Annotated[ShortText, AfterValidator(_nfc_at_input)]
"""A value of a list of names or labels: a :data:`ShortText`, in Unicode NFC when typed in."""


# ---------------------------------------------------------------------------------------------
# Enumerations
# ---------------------------------------------------------------------------------------------


class AcquisitionMethod(StrEnum):
    """How an item came into the organisation's hands."""

    HANDED_OVER = "handed-over"
    DOWNLOADED = "downloaded"
    CAPTURED = "captured"
    RECEIVED_BY_MAIL = "received-by-mail"
    SEIZED = "seized"


class Confidentiality(StrEnum):
    """Who may see an item; each level includes the ones before it in export profiles.

    - ``public``: may be published; included in every export profile.
    - ``restricted``: not for publication; shared with partner organisations and
      prosecutors; included in ``restricted`` and ``otp`` exports.
    - ``confidential``: for prosecutors and named partners under agreement; included in
      ``restricted`` and ``otp`` exports (SPEC section 6), never in ``public`` ones.
    - ``strictly-confidential``: could endanger a person if disclosed; included only in
      ``otp`` exports.
    """

    PUBLIC = "public"
    RESTRICTED = "restricted"
    CONFIDENTIAL = "confidential"
    STRICTLY_CONFIDENTIAL = "strictly-confidential"

    @property
    def rank(self) -> int:
        """0 for public up to 3 for strictly confidential, for comparisons."""
        return list(Confidentiality).index(self)


class RomeStatuteProvision(StrEnum):
    """Rome Statute provisions relevant to the deportation and transfer of children."""

    ART_6_B = "art. 6(b)"
    ART_6_E = "art. 6(e)"
    ART_7_1_D = "art. 7(1)(d)"
    ART_7_1_E = "art. 7(1)(e)"
    ART_7_1_F = "art. 7(1)(f)"
    ART_7_1_G = "art. 7(1)(g)"
    ART_7_1_H = "art. 7(1)(h)"
    ART_7_1_I = "art. 7(1)(i)"
    ART_7_1_K = "art. 7(1)(k)"
    ART_8_2_A_II = "art. 8(2)(a)(ii)"
    ART_8_2_A_III = "art. 8(2)(a)(iii)"
    ART_8_2_A_VII = "art. 8(2)(a)(vii)"
    ART_8_2_B_VIII = "art. 8(2)(b)(viii)"
    ART_8_2_B_XV = "art. 8(2)(b)(xv)"
    ART_8_2_B_XXI = "art. 8(2)(b)(xxi)"
    ART_8_2_B_XXII = "art. 8(2)(b)(xxii)"
    ART_8_2_B_XXVI = "art. 8(2)(b)(xxvi)"
    ART_8_2_C_I = "art. 8(2)(c)(i)"
    ART_8_2_C_II = "art. 8(2)(c)(ii)"
    ART_8_2_E_VI = "art. 8(2)(e)(vi)"
    ART_8_2_E_VII = "art. 8(2)(e)(vii)"
    ART_8_2_E_VIII = "art. 8(2)(e)(viii)"

    @property
    def label(self) -> str:
        """A short English description of the provision."""
        return _PROVISION_TITLES[self]


_PROVISION_TITLES: Final = {
    RomeStatuteProvision.ART_6_B: "genocide: causing serious bodily or mental harm",
    RomeStatuteProvision.ART_6_E: "genocide: forcibly transferring children of the group",
    RomeStatuteProvision.ART_7_1_D: "crime against humanity: deportation or forcible transfer",
    RomeStatuteProvision.ART_7_1_E: "crime against humanity: imprisonment or severe deprivation"
    " of liberty",
    RomeStatuteProvision.ART_7_1_F: "crime against humanity: torture",
    RomeStatuteProvision.ART_7_1_G: "crime against humanity: rape and other sexual violence",
    RomeStatuteProvision.ART_7_1_H: "crime against humanity: persecution",
    RomeStatuteProvision.ART_7_1_I: "crime against humanity: enforced disappearance",
    RomeStatuteProvision.ART_7_1_K: "crime against humanity: other inhumane acts",
    RomeStatuteProvision.ART_8_2_A_II: "war crime: torture or inhuman treatment",
    RomeStatuteProvision.ART_8_2_A_III: "war crime: wilfully causing great suffering",
    RomeStatuteProvision.ART_8_2_A_VII: "war crime: unlawful deportation or transfer",
    RomeStatuteProvision.ART_8_2_B_VIII: "war crime: deportation or transfer of the population"
    " of occupied territory",
    RomeStatuteProvision.ART_8_2_B_XV: "war crime: compelling nationals to take part in"
    " operations of war against their own country",
    RomeStatuteProvision.ART_8_2_B_XXI: "war crime: outrages upon personal dignity",
    RomeStatuteProvision.ART_8_2_B_XXII: "war crime: rape and other sexual violence",
    RomeStatuteProvision.ART_8_2_B_XXVI: "war crime: conscripting or enlisting children under 15",
    RomeStatuteProvision.ART_8_2_C_I: "war crime (non-international conflict): violence to life"
    " and person, cruel treatment, torture",
    RomeStatuteProvision.ART_8_2_C_II: "war crime (non-international conflict): outrages upon"
    " personal dignity",
    RomeStatuteProvision.ART_8_2_E_VI: "war crime (non-international conflict): rape and other"
    " sexual violence",
    RomeStatuteProvision.ART_8_2_E_VII: "war crime (non-international conflict): conscripting or"
    " enlisting children under 15",
    RomeStatuteProvision.ART_8_2_E_VIII: "war crime (non-international conflict): ordering the"
    " displacement of the civilian population",
}


class LiabilityMode(StrEnum):
    """Modes of individual criminal responsibility: Rome Statute art. 25(3) and art. 28."""

    COMMITTING = "art. 25(3)(a)"
    ORDERING_SOLICITING_INDUCING = "art. 25(3)(b)"
    AIDING_ABETTING = "art. 25(3)(c)"
    COMMON_PURPOSE = "art. 25(3)(d)"
    COMMON_PURPOSE_AIM = "art. 25(3)(d)(i)"
    COMMON_PURPOSE_KNOWLEDGE = "art. 25(3)(d)(ii)"
    INCITING_GENOCIDE = "art. 25(3)(e)"
    ATTEMPT = "art. 25(3)(f)"
    MILITARY_COMMANDER = "art. 28(a)"
    CIVILIAN_SUPERIOR = "art. 28(b)"


class FacilityType(StrEnum):
    """What a place holding children is (or is called)."""

    CAMP = "camp"
    ORPHANAGE = "orphanage"
    BOARDING_SCHOOL = "boarding-school"
    HOSPITAL = "hospital"
    REHABILITATION_CENTRE = "rehabilitation-centre"
    FILTRATION_POINT = "filtration-point"
    FOSTER_PLACEMENT = "foster-placement"
    OTHER = "other"


class PerpetratorKind(StrEnum):
    """Whether an alleged perpetrator is a person, a unit or an organisation."""

    PERSON = "person"
    UNIT = "unit"
    ORGANISATION = "organisation"


class ChildStatus(StrEnum):
    """What is known of a child's whereabouts."""

    MISSING = "missing"
    LOCATED = "located"
    RETURNED = "returned"
    DECEASED = "deceased"


class WitnessCategory(StrEnum):
    """The witness's relation to the events."""

    CHILD_VICTIM = "child-victim"
    PARENT_OR_GUARDIAN = "parent-or-guardian"
    EYEWITNESS = "eyewitness"
    INSIDER = "insider"
    EXPERT = "expert"


class EntityKind(StrEnum):
    """The kinds of entity an item or testimony can be linked to."""

    INCIDENT = "incident"
    FACILITY = "facility"
    PERPETRATOR = "perpetrator"
    CHILD = "child"


Method: TypeAlias = Annotated[AcquisitionMethod, BeforeValidator(_enum_input)]
Level: TypeAlias = Annotated[Confidentiality, BeforeValidator(_enum_input)]
Provision: TypeAlias = Annotated[RomeStatuteProvision, BeforeValidator(_provision_input)]
Liability: TypeAlias = Annotated[LiabilityMode, BeforeValidator(_provision_input)]
FacilityKind: TypeAlias = Annotated[FacilityType, BeforeValidator(_enum_input)]
PerpKind: TypeAlias = Annotated[PerpetratorKind, BeforeValidator(_enum_input)]
Status: TypeAlias = Annotated[ChildStatus, BeforeValidator(_enum_input)]
Category: TypeAlias = Annotated[WitnessCategory, BeforeValidator(_enum_input)]

# ---------------------------------------------------------------------------------------------
# Entity ids
# ---------------------------------------------------------------------------------------------

ENTITY_PREFIX: Final[dict[str, str]] = {
    "incident": "INC",
    "facility": "FAC",
    "perpetrator": "PER",
    "child": "CH",
}
"""The id prefix of each entity kind."""

_KIND_BY_PREFIX: Final = {prefix: kind for kind, prefix in ENTITY_PREFIX.items()}
_ENTITY_ID = re.compile(rf"(INC|FAC|PER|CH)-({_NUMBER})")


def format_entity_id(kind: str, number: int) -> str:
    """The id of entity ``number`` of ``kind``, e.g. ``INC-0001`` for incident 1."""
    if kind not in ENTITY_PREFIX:
        raise ValueError(f"unknown entity kind {kind!r}; expected one of {sorted(ENTITY_PREFIX)}")
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError("entity numbers start at 1")
    return f"{ENTITY_PREFIX[kind]}-{number:04d}"


def parse_entity_id(entity_id: str) -> tuple[EntityKind, int]:
    """The kind and number of an entity id; ``ValueError`` if it is not one."""
    match = _ENTITY_ID.fullmatch(entity_id)
    if not match:
        raise ValueError("not an entity id (expected INC-, FAC-, PER- or CH- and four digits)")
    return EntityKind(_KIND_BY_PREFIX[match.group(1)]), int(match.group(2))


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


class ItemOptions(BaseModel):
    """What the investigator says about a file at ingest (one set per batch)."""

    model_config = _CONFIG

    source: ShortText | None = None
    """Person (by pseudonym), organisation or URL the file came from."""
    collected_by: ShortText | None = None
    collected_at: DateOrDateTime | None = None
    method: Method | None = None
    device: ShortText | None = None
    """Device or capture details (camera, phone, capture tool and version)."""
    language: LanguageTag | None = None
    description: Text | None = None
    confidentiality: Level = Confidentiality.CONFIDENTIAL
    """Defaults to confidential: nothing becomes public unless someone says so."""
    tags: Annotated[tuple[ListText, ...], AfterValidator(_unique)] = ()


class Place(BaseModel):
    """A named place with optional region, country and coordinates (WGS 84, decimal degrees)."""

    model_config = _CONFIG

    name: ShortText
    region: ShortText | None = None
    country: CountryCode | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None

    @model_validator(mode="after")
    def _coordinates_in_pairs(self) -> Place:
        if (self.lat is None) != (self.lon is None):
            raise PydanticCustomError(
                "coordinates_pair",
                "give both {lat_field} and {lon_field}, or neither",
                {"lat_field": "lat", "lon_field": "lon"},
            )
        return self


def _wholly_before(later: str, earlier: str) -> bool:
    """Whether the partial date ``later`` ends before ``earlier`` begins: whatever days the two
    stand for, ``later`` is the earlier one."""
    return partial_date_range(later)[1] < partial_date_range(earlier)[0]


def _not_before(start_field: str) -> Any:
    """A field validator refusing an end that lies wholly before the start field."""

    def check(value: str | None, info: ValidationInfo) -> str | None:
        start = info.data.get(start_field)
        if value is not None and start is not None and _wholly_before(value, start):
            raise _order_error("must not be before {earlier_field}", start_field, start)
        return value

    return check


def _birth_year_not_future(value: int, info: ValidationInfo) -> int:
    _refuse_future(date(value, 1, 1), info)
    return value


def _years_later(day: date, years: int) -> date:
    """The day ``years`` after ``day``; a 29 February birthday falls on 28 February."""
    year = day.year + years
    return day.replace(year=year, day=min(day.day, calendar.monthrange(year, day.month)[1]))


class Incident(BaseModel):
    """An alleged incident: what happened, when and where, and which crimes it may amount to."""

    model_config = _CONFIG

    id: IncidentId
    title: ShortText
    start: PartialDate
    end: PartialDate | None = None
    """None while the incident is ongoing or its end is unknown."""
    place: Place
    description: Text | None = None
    crimes: Annotated[tuple[Provision, ...], AfterValidator(_unique)] = ()
    children_count: Annotated[WholeNumber, Field(ge=0, le=MAX_SAFE_INTEGER)] | None = None
    """Number of children concerned; None when not known."""

    _end_not_before_start = field_validator("end")(_not_before("start"))


class Facility(BaseModel):
    """A place where children were taken, held or placed."""

    model_config = _CONFIG

    id: FacilityId
    name: ShortText
    transliterations: tuple[ListText, ...] = ()
    aliases: tuple[ListText, ...] = ()
    type: FacilityKind
    place: Place | None = None
    operator: ShortText | None = None
    used_from: PartialDate | None = None
    used_to: PartialDate | None = None
    description: Text | None = None

    _used_to_not_before = field_validator("used_to")(_not_before("used_from"))


class Perpetrator(BaseModel):
    """An alleged perpetrator: a person, a military unit or an organisation."""

    model_config = _CONFIG

    id: PerpetratorId
    name: ShortText
    kind: PerpKind
    role: ShortText | None = None
    affiliation: ShortText | None = None
    liability: Annotated[tuple[Liability, ...], AfterValidator(_unique)] = ()
    warrant_reference: ShortText | None = None
    aliases: tuple[ListText, ...] = ()
    description: Text | None = None


class Placement(BaseModel):
    """A child's stay at a facility."""

    model_config = _CONFIG

    facility: FacilityId
    start: PartialDate | None = None
    end: PartialDate | None = None

    _end_not_before_start = field_validator("end")(_not_before("start"))


class Child(BaseModel):
    """A child, by pseudonym only: no name, no exact date of birth."""

    model_config = _CONFIG

    id: ChildId
    code: ChildCode
    birth_year: (
        Annotated[WholeNumber, Field(ge=1900, le=2100), AfterValidator(_birth_year_not_future)]
        | None
    ) = None
    hometown: Place | None = None
    taken_on: PartialDate | None = None
    status: Status
    placements: tuple[Placement, ...] = ()

    @field_validator("taken_on")
    @classmethod
    def _taken_after_birth(cls, value: str | None, info: ValidationInfo) -> str | None:
        birth = info.data.get("birth_year")
        if value is not None and birth is not None and _wholly_before(value, str(birth)):
            raise _order_error(
                "must not be before {earlier_field} ({earlier}); check the year of both",
                "birth_year",
                birth,
            )
        return value

    @field_validator("placements")
    @classmethod
    def _placements_after_birth_and_taking(
        cls, value: tuple[Placement, ...], info: ValidationInfo
    ) -> tuple[Placement, ...]:
        # A stay at a facility can begin no earlier than the child was born and was taken.
        earlier_dates = [
            (name, info.data[name], advice)
            for name, advice in (
                ("birth_year", "check the year of both"),
                ("taken_on", "check both dates"),
            )
            if info.data.get(name) is not None
        ]
        for index, placement in enumerate(value):
            for part in ("start", "end"):
                day: str | None = getattr(placement, part)
                for name, earlier, advice in earlier_dates:
                    if day is not None and _wholly_before(day, str(earlier)):
                        raise _order_error(
                            "[{index}].{part} {later} is before {earlier_field} ({earlier}); "
                            + advice,
                            name,
                            earlier,
                            index=index,
                            part=part,
                            later=day,
                        )
        return value


class Statement(BaseModel):
    """The statement in the language it was given in."""

    model_config = _CONFIG

    language: LanguageTag
    text: Text


class Translation(BaseModel):
    """A translation of the statement, with who made it."""

    model_config = _CONFIG

    language: LanguageTag
    text: Text
    translator: ShortText


class Consent(BaseModel):
    """What the witness agreed to, when, and whether it was withdrawn."""

    model_config = _CONFIG

    icc_proceedings: Flag
    """Use in proceedings before the International Criminal Court."""
    share_with: Annotated[tuple[ListText, ...], AfterValidator(_unique)] = ()
    """Organisations the witness agreed the testimony may be shared with."""
    anonymised_publication: Flag
    given_on: Day
    withdrawn_on: Day | None = None
    withdrawal_reason: Text | None = None

    _withdrawn_not_before_given = field_validator("withdrawn_on")(_not_before("given_on"))

    @field_validator("withdrawal_reason")
    @classmethod
    def _reason_needs_withdrawal(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("withdrawn_on") is None:
            raise _error("withdrawal", "is only given together with withdrawn_on")
        return value

    @property
    def withdrawn(self) -> bool:
        """Whether consent has been withdrawn."""
        return self.withdrawn_on is not None


PROTECTED_FIELDS: Final = ("name", "date_of_birth", "contact", "current_address")
"""The identity fields of a witness that are sealed and never shown (SPEC section 6)."""


def _protected_value(value: SecretStr | None) -> SecretStr | None:
    # Messages here must not quote the value: it is what they protect.
    if value is None:
        return None
    text = value.get_secret_value().strip()
    if not text:
        raise _error("protected_empty", "must not be empty; leave the field out instead")
    if len(text) > MAX_SHORT_TEXT_LENGTH:
        raise _error("protected_length", f"must be at most {MAX_SHORT_TEXT_LENGTH} characters")
    _check_text(text)
    return SecretStr(text)


class ProtectedIdentity(BaseModel):
    """Identity details of a witness. The values never appear in repr, str, dumps or errors.

    ``model_dump`` shows masked values; :meth:`reveal` gives the plain values for sealing.
    """

    model_config = _CONFIG

    name: SecretStr | None = None
    date_of_birth: SecretStr | None = None
    contact: SecretStr | None = None
    current_address: SecretStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_fields_only(cls, data: Any) -> Any:
        # With extra="forbid" pydantic would name an unknown key in the error location, and a
        # key typed by mistake can be the protected value itself; refuse without quoting it.
        if isinstance(data, ProtectedIdentity):
            return data
        if not isinstance(data, dict):
            raise _error("identity_type", "must be a mapping of identity fields")
        unknown = [key for key in data if key not in PROTECTED_FIELDS]
        if unknown:
            raise _error(
                "identity_unknown_field",
                f"holds {len(unknown)} unknown field(s); allowed: {', '.join(PROTECTED_FIELDS)}",
            )
        return data

    @field_validator("date_of_birth", mode="before")
    @classmethod
    def _date_of_birth_input(cls, value: Any) -> Any:
        # As for every other date, YAML hands an unquoted year (1985) in as an integer.
        if value is None or isinstance(value, SecretStr):
            return value
        return _date_input(value)

    @field_validator(*PROTECTED_FIELDS)
    @classmethod
    def _check_value(cls, value: SecretStr | None) -> SecretStr | None:
        return _protected_value(value)

    @field_validator("date_of_birth")
    @classmethod
    def _check_date_of_birth(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        if value is not None:
            try:
                _check_partial_date(value.get_secret_value())
            except PydanticCustomError:
                raise _error("date_format", f"must be {_DATE_HELP}") from None
            _refuse_future(partial_date_range(value.get_secret_value())[0], info)
        return value

    def earliest_birth(self) -> date | None:
        """The first day the date of birth can mean, if it is given (for consistency checks)."""
        if self.date_of_birth is None:
            return None
        return partial_date_range(self.date_of_birth.get_secret_value())[0]

    def present_fields(self) -> tuple[str, ...]:
        """The names of the fields that hold a value (names only, never values)."""
        return tuple(name for name in PROTECTED_FIELDS if getattr(self, name) is not None)

    def reveal(self) -> dict[str, str]:
        """The plain values of the fields that are set, for sealing to the case's recipients."""
        out: dict[str, str] = {}
        for name in PROTECTED_FIELDS:
            secret: SecretStr | None = getattr(self, name)
            if secret is not None:
                out[name] = secret.get_secret_value()
        return out

    def __repr__(self) -> str:
        return f"ProtectedIdentity(<protected: {', '.join(self.present_fields()) or 'empty'}>)"

    def __str__(self) -> str:
        return repr(self)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Used by pydantic's rich and debug representations.
        yield None, f"<protected: {', '.join(self.present_fields()) or 'empty'}>"


class Testimony(BaseModel):
    """A witness's testimony: who was interviewed how, what they said, what they agreed to.

    ``identity`` is excluded from ``model_dump``: a testimony serialised for the log or an
    export never carries it; seal ``identity.reveal()`` separately.
    """

    model_config = _CONFIG

    witness_code: WitnessCode
    category: Category
    age_at_events: Annotated[WholeNumber, Field(ge=0, le=130)] | None = None
    support_person_present: Flag = False
    """Whether a guardian or support person was present at the interview."""
    support_person_role: ShortText | None = None
    """Their role (parent, guardian, psychologist, social worker); not their name."""
    interviewers: Annotated[tuple[ListText, ...], Field(min_length=1)]
    interpreter: ShortText | None = None
    interview_date: Day
    interview_place: Place
    languages: Annotated[tuple[LanguageTag, ...], Field(min_length=1), AfterValidator(_unique)]
    statement: Statement
    translations: tuple[Translation, ...] = ()
    consent: Consent
    special_measures: tuple[ListText, ...] = ()
    """Protective measures taken or requested (e.g. voice distortion, closed session)."""
    referral: Text | None = None
    """Referral to support services (psychological, medical, legal), if any."""
    recordings: tuple[Identifier, ...] = ()
    """Attached recordings: item ids (sha256) or paths of files to ingest."""
    identity: ProtectedIdentity | None = Field(default=None, exclude=True, repr=False)

    @field_validator("support_person_role")
    @classmethod
    def _role_needs_presence(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("support_person_present") is False:
            raise _error("support_person", "is only given when support_person_present is true")
        return value

    @field_validator("identity")
    @classmethod
    def _born_before_interview(
        cls, value: ProtectedIdentity | None, info: ValidationInfo
    ) -> ProtectedIdentity | None:
        # The messages say which fields disagree, never the date of birth itself nor an age
        # worked out from it.
        born = value.earliest_birth() if value is not None else None
        interview: str | None = info.data.get("interview_date")
        if born is None or interview is None:
            return value
        interviewed = date.fromisoformat(interview)
        if interviewed < born:
            raise _error(
                "date_order",
                f"date_of_birth is after interview_date ({interview}); check both",
            )
        age: int | None = info.data.get("age_at_events")
        # The events came before the interview, so the witness was that old by then at the
        # latest; only an age that even the earliest day of birth cannot reach is refused.
        if age is not None and _years_later(born, age) > interviewed:
            raise _error(
                "age_order",
                f"date_of_birth does not fit age_at_events ({age}): the witness was not yet "
                f"{age} on interview_date ({interview}), after the events; check both",
            )
        return value

    def public_view(self) -> Testimony:
        """The same testimony without identity details."""
        return self.model_copy(update={"identity": None})


class LinkTarget(NamedTuple):
    """One entity a link points to."""

    kind: EntityKind
    id: str


class Link(BaseModel):
    """Links an item or testimony to entities, and says why (the event records who)."""

    model_config = _CONFIG

    subject: Identifier
    """The item (sha256) or testimony (witness code) being linked."""
    incidents: Annotated[tuple[IncidentId, ...], AfterValidator(_unique)] = ()
    facilities: Annotated[tuple[FacilityId, ...], AfterValidator(_unique)] = ()
    perpetrators: Annotated[tuple[PerpetratorId, ...], AfterValidator(_unique)] = ()
    children: Annotated[tuple[ChildId, ...], AfterValidator(_unique)] = ()
    reason: Text

    @model_validator(mode="after")
    def _at_least_one_target(self) -> Link:
        if not self.targets:
            raise PydanticCustomError(
                "link_target",
                "link needs at least one target in {incidents_field}, {facilities_field}, "
                "{perpetrators_field} or {children_field}",
                {
                    "incidents_field": "incidents",
                    "facilities_field": "facilities",
                    "perpetrators_field": "perpetrators",
                    "children_field": "children",
                },
            )
        return self

    @property
    def targets(self) -> tuple[LinkTarget, ...]:
        """Every target with its kind: incidents, facilities, perpetrators, then children."""
        return (
            *(LinkTarget(EntityKind.INCIDENT, i) for i in self.incidents),
            *(LinkTarget(EntityKind.FACILITY, i) for i in self.facilities),
            *(LinkTarget(EntityKind.PERPETRATOR, i) for i in self.perpetrators),
            *(LinkTarget(EntityKind.CHILD, i) for i in self.children),
        )


Entity: TypeAlias = Incident | Facility | Perpetrator | Child

EntityModel: TypeAlias = type[Incident] | type[Facility] | type[Perpetrator] | type[Child]

ENTITY_MODELS: Final[dict[str, EntityModel]] = {
    "incident": Incident,
    "facility": Facility,
    "perpetrator": Perpetrator,
    "child": Child,
}
"""The model of each entity kind."""
