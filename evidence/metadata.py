"""Derived metadata of an original: EXIF, GPS and device of images, PDF document info, durations.

The result is recorded beside the item, never written into it: files are opened read-only and
only their headers are parsed. Values are JSON-safe for the canonical encoding of the custody log,
which refuses floats: coordinates are decimal strings (``"50.4501"``), durations are integer
milliseconds plus a decimal string of seconds (``"12.345"``). Extraction never raises: a corrupt,
encrypted or unsupported file gives ``{"error": "<short reason>"}``, and the item is still
ingested as bytes (SPEC section 9).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["JsonValue", "extract_metadata"]

JsonValue = str | int | bool | None | list["JsonValue"] | dict[str, "JsonValue"]

# Six decimals of a degree are about 0.1 m: finer than any phone GPS, so nothing is lost.
_COORDINATE_PLACES = Decimal("0.000001")
_MAX_TEXT = 1000
_EXIF_DATETIME = re.compile(r"(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"[+-]\d{2}:\d{2}")
_PDF_DATE = re.compile(
    r"D?:?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(Z|[+-]\d{2}'?\d{2}'?|[+-]\d{2}'?)?"
)
_PDF_INFO_FIELDS = {
    "/Title": "title",
    "/Author": "author",
    "/Subject": "subject",
    "/Keywords": "keywords",
    "/Creator": "creator",
    "/Producer": "producer",
}
_PDF_DATE_FIELDS = {"/CreationDate": "creation_date", "/ModDate": "modification_date"}


def extract_metadata(path: Path, mime: str) -> dict[str, JsonValue]:
    """Derived metadata of the file at ``path`` of type ``mime``; failures are recorded, not raised.

    Images give ``width``, ``height``, ``image_format`` and, from EXIF, ``datetime_original``,
    ``gps`` (``{"lat", "lon"}``), ``make``, ``model`` and ``device``. PDFs give ``pages``,
    ``encrypted`` and the document info (``title``, ``author``, ``producer``,
    ``creation_date`` ...). Audio and video give ``duration_ms``, ``duration`` and ``format``.
    Other types give ``{}``.
    """
    extractor = _extractor_for(mime)
    if extractor is None:
        return {}
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        return {"error": f"cannot open file: {exc.strerror or type(exc).__name__}"}
    try:
        # Parsers warn about damaged headers on stderr; the outcome is recorded here instead.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return extractor(path)
    except Exception as exc:  # noqa: BLE001
        # Parsers of hostile files fail in ways no list of exception types covers; a failure
        # here must never stop an ingest, so it is recorded instead.
        return {"error": f"metadata extraction failed: {type(exc).__name__}"}


def _extractor_for(mime: str) -> Callable[[Path], dict[str, JsonValue]] | None:
    kind = mime.split(";", 1)[0].strip().lower()
    if kind == "application/pdf":
        return _pdf_metadata
    if kind == "image/svg+xml":
        return None
    if kind.startswith("image/"):
        return _image_metadata
    if kind.startswith(("audio/", "video/")):
        return _media_metadata
    return None


# --- images -----------------------------------------------------------------------------------


# The parsers are imported when a file of their kind is met: together they take about a tenth
# of a second to import, at every start of a command, and most files need none of them.


def _image_metadata(path: Path) -> dict[str, JsonValue]:
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 - see above

    try:
        # Image.open reads the header only; pixels are never decoded.
        with Image.open(path) as image:
            result: dict[str, JsonValue] = {
                "width": image.width,
                "height": image.height,
                "image_format": image.format or "unknown",
            }
            try:
                result.update(_exif_metadata(image.getexif()))
            except Exception as exc:  # noqa: BLE001
                # Corrupt EXIF must not hide the dimensions that were read.
                result["exif_error"] = f"unreadable EXIF: {type(exc).__name__}"
            return result
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        return {"error": f"not a readable image: {type(exc).__name__}"}
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncated or malformed headers as OSError or SyntaxError.
        return {"error": f"corrupt image: {type(exc).__name__}"}


def _exif_metadata(exif: Image.Exif) -> dict[str, JsonValue]:
    from PIL import ExifTags  # noqa: PLC0415 - imported with Image

    result: dict[str, JsonValue] = {}
    if not exif:
        return result
    make = _text(exif.get(ExifTags.Base.Make))
    model = _text(exif.get(ExifTags.Base.Model))
    if make:
        result["make"] = make
    if model:
        result["model"] = model
    if make or model:
        # Many models repeat the make ("Canon" / "Canon EOS 5D"); do not say it twice.
        device = model if make and model and model.startswith(make) else f"{make} {model}"
        result["device"] = device.strip()
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    original = _text(exif_ifd.get(ExifTags.Base.DateTimeOriginal))
    if original:
        offset = _text(exif_ifd.get(ExifTags.Base.OffsetTimeOriginal))
        match = _EXIF_DATETIME.fullmatch(original)
        if match:
            year, month, day, hour, minute, second = match.groups()
            stamp = f"{year}-{month}-{day}T{hour}:{minute}:{second}"
            # EXIF time is the camera's local time; an offset is added only when recorded.
            if offset and _EXIF_OFFSET.fullmatch(offset):
                stamp += offset
            result["datetime_original"] = stamp
        else:
            result["datetime_original_raw"] = original
    gps = _gps(exif.get_ifd(ExifTags.IFD.GPSInfo))
    if gps is not None:
        result["gps"] = gps
    return result


def _gps(gps_ifd: Mapping[int, Any]) -> dict[str, JsonValue] | None:
    from PIL import ExifTags  # noqa: PLC0415 - imported with Image

    if not gps_ifd:
        return None
    latitude = _coordinate(
        gps_ifd.get(ExifTags.GPS.GPSLatitude), gps_ifd.get(ExifTags.GPS.GPSLatitudeRef), "S"
    )
    longitude = _coordinate(
        gps_ifd.get(ExifTags.GPS.GPSLongitude), gps_ifd.get(ExifTags.GPS.GPSLongitudeRef), "W"
    )
    if latitude is None or longitude is None:
        return {"error": "GPS position present but incomplete or malformed"}
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return {"error": "GPS position out of range"}
    return {"lat": _decimal_text(latitude), "lon": _decimal_text(longitude)}


def _coordinate(value: Any, reference: Any, negative: str) -> Decimal | None:
    """Degrees, minutes and seconds (EXIF rationals) as a signed decimal, exactly."""
    if not isinstance(value, tuple | list) or len(value) != 3:
        return None
    parts = [_fraction(part) for part in value]
    if any(part is None for part in parts):
        return None
    degrees, minutes, seconds = (part for part in parts if part is not None)
    total = degrees + minutes / 60 + seconds / 3600
    decimal = (Decimal(total.numerator) / Decimal(total.denominator)).quantize(_COORDINATE_PLACES)
    ref = _text(reference).upper()
    return -decimal if ref == negative else decimal


def _fraction(value: Any) -> Fraction | None:
    """An EXIF rational as an exact fraction; ``None`` for a zero denominator or junk."""
    numerator = getattr(value, "numerator", None)
    denominator = getattr(value, "denominator", None)
    if isinstance(numerator, int) and isinstance(denominator, int):
        return Fraction(numerator, denominator) if denominator else None
    if isinstance(value, int):
        return Fraction(value)
    return None


def _decimal_text(value: Decimal) -> str:
    """``50.450100`` -> ``"50.4501"``; ``-30.000000`` -> ``"-30"``: short and deterministic."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


# --- PDF --------------------------------------------------------------------------------------


def _pdf_metadata(path: Path) -> dict[str, JsonValue]:
    import pikepdf  # noqa: PLC0415 - see _image_metadata

    try:
        with pikepdf.open(path) as pdf:
            result: dict[str, JsonValue] = {
                "pages": len(pdf.pages),
                "encrypted": bool(pdf.is_encrypted),
                "pdf_version": str(pdf.pdf_version),
            }
            info = pdf.docinfo
            for key, name in _PDF_INFO_FIELDS.items():
                text = _text(info.get(key))
                if text:
                    result[name] = text
            for key, name in _PDF_DATE_FIELDS.items():
                raw = _text(info.get(key))
                if raw:
                    result[name] = _pdf_date(raw)
            return result
    except pikepdf.PasswordError:
        return {"error": "encrypted PDF: a password is needed to read it"}
    except (pikepdf.PdfError, OSError, ValueError) as exc:
        return {"error": f"corrupt PDF: {type(exc).__name__}"}


def _pdf_date(raw: str) -> str:
    """A PDF date (``D:20240517102030+03'00'``) in RFC 3339 form; unparseable ones kept as given."""
    match = _PDF_DATE.fullmatch(raw.strip())
    if not match:
        return raw
    year, month, day, hour, minute, second, zone = match.groups()
    stamp = f"{year}-{month or '01'}-{day or '01'}T{hour or '00'}:{minute or '00'}:{second or '00'}"
    if zone == "Z":
        return stamp + "Z"
    if zone:
        digits = zone[1:].replace("'", "")
        return f"{stamp}{zone[0]}{digits[:2]}:{digits[2:4] or '00'}"
    return stamp


# --- audio and video --------------------------------------------------------------------------


def _media_metadata(path: Path) -> dict[str, JsonValue]:
    import mutagen  # noqa: PLC0415 - see _image_metadata

    try:
        media = mutagen.File(path)
    except (mutagen.MutagenError, OSError, ValueError) as exc:
        return {"error": f"corrupt media file: {type(exc).__name__}"}
    if media is None:
        return {"error": "unrecognised audio or video format"}
    result: dict[str, JsonValue] = {"format": type(media).__name__}
    info = getattr(media, "info", None)
    length = getattr(info, "length", None)
    if isinstance(length, int | float) and length >= 0:
        milliseconds = _milliseconds(length)
        if milliseconds is not None:
            result["duration_ms"] = milliseconds
            result["duration"] = f"{milliseconds // 1000}.{milliseconds % 1000:03d}"
    for attribute in ("sample_rate", "channels", "bitrate", "bits_per_sample"):
        value = getattr(info, attribute, None)
        # bool is an int; none of these is a flag.
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            result[attribute] = value
    return result


def _milliseconds(seconds: float) -> int | None:
    try:
        # Decimal of the float's exact value, rounded once: no binary rounding surprises.
        return int((Decimal(seconds) * 1000).to_integral_value())
    except (InvalidOperation, OverflowError, ValueError):
        return None


# --- shared -----------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """A metadata value as clean text: NULs and surrounding blanks removed, length bounded."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).replace("\x00", "").strip()
    return text[:_MAX_TEXT]
