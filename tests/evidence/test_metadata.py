"""Derived metadata: values from real files, failures recorded (never raised), no floats."""

from __future__ import annotations

import hashlib
import io
import shutil
import wave
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

from evidence.metadata import extract_metadata

SAMPLES = Path(__file__).resolve().parents[2] / "sample-data" / "files"


def assert_json_safe(value: Any, where: str = "$") -> None:
    """Only what the canonical encoding of the log accepts: no floats, small ints, str keys."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), f"{where}: key {key!r}"
            assert_json_safe(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_json_safe(item, f"{where}[{index}]")
    else:
        assert value is None or isinstance(value, str | bool | int), f"{where}: {value!r}"
        if isinstance(value, int) and not isinstance(value, bool):
            assert abs(value) <= 2**53 - 1, where


def jpeg_with_exif(
    path: Path,
    *,
    lat: tuple[Any, ...] | None = None,
    lat_ref: str = "N",
    lon: tuple[Any, ...] | None = None,
    lon_ref: str = "E",
    taken: str | None = "2023:03:02 10:20:30",
    make: str | None = "Fictional Optics",
    model: str | None = "FO-7",
) -> Path:
    exif = Image.Exif()
    if make:
        exif[ExifTags.Base.Make] = make
    if model:
        exif[ExifTags.Base.Model] = model
    if taken:
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = taken
    if lat is not None and lon is not None:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps[ExifTags.GPS.GPSLatitudeRef] = lat_ref
        gps[ExifTags.GPS.GPSLatitude] = lat
        gps[ExifTags.GPS.GPSLongitudeRef] = lon_ref
        gps[ExifTags.GPS.GPSLongitude] = lon
    Image.new("RGB", (16, 8), (10, 20, 30)).save(path, "JPEG", exif=exif.tobytes())
    return path


def r(numerator: int, denominator: int = 1) -> IFDRational:
    return IFDRational(numerator, denominator)


# --- the committed samples ------------------------------------------------------------------

SAMPLE_EXPECTATIONS = [
    (
        "photo-bus-departure.jpg",
        "image/jpeg",
        {
            "width": 320,
            "height": 240,
            "device": "Fictional Optics FO-100 Field Camera",
            "datetime_original": "2022-10-14T09:12:30+03:00",
            "gps": {"lat": "50.4501", "lon": "30.5234"},
        },
    ),
    (
        "photo-facility-gate.jpg",
        "image/jpeg",
        {"datetime_original": "2022-11-02T16:45:05+03:00", "gps": {"lat": "46.64", "lon": "32.61"}},
    ),
    ("sketch-route.png", "image/png", {"width": 240, "height": 160, "image_format": "PNG"}),
    (
        "transfer-list-17-2022.pdf",
        "application/pdf",
        {
            "pages": 1,
            "encrypted": False,
            "title": "Transfer list 17/2022 (fictional sample)",
            "creation_date": "2022-10-13T18:00:00+03:00",
        },
    ),
    (
        "recording-tone.wav",
        "audio/x-wav",
        {"format": "WAVE", "duration_ms": 2000, "duration": "2.000", "sample_rate": 8000},
    ),
    ("field-note-W-017.txt", "text/plain", {}),
    ("captured-post-1234.json", "application/json", {}),
]


@pytest.mark.parametrize(("name", "mime", "expected"), SAMPLE_EXPECTATIONS)
def test_sample_metadata(name: str, mime: str, expected: dict[str, Any]) -> None:
    path = SAMPLES / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    mtime = path.stat().st_mtime_ns
    result = extract_metadata(path, mime)
    assert {key: result.get(key) for key in expected} == expected
    assert "error" not in result
    if not expected:
        assert result == {}
    assert_json_safe(result)
    # Read-only: neither bytes nor modification time change.
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert path.stat().st_mtime_ns == mtime


def test_sample_folder_is_small() -> None:
    assert sum(p.stat().st_size for p in SAMPLES.iterdir()) < 1024 * 1024


# --- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat", "lat_ref", "lon", "lon_ref", "gps"),
    [
        pytest.param(
            (r(50), r(27), r(36, 100)), "N", (r(30), r(31), r(2424, 100)), "E",
            {"lat": "50.4501", "lon": "30.5234"}, id="north-east",
        ),
        pytest.param(
            (r(33), r(52), r(0)), "S", (r(151), r(12), r(36)), "W",
            {"lat": "-33.866667", "lon": "-151.21"}, id="south-west",
        ),
        pytest.param(
            (r(0), r(0), r(0)), "S", (r(0), r(0), r(0)), "W", {"lat": "0", "lon": "0"},
            id="zero-no-negative-zero",
        ),
        pytest.param(
            (r(50), r(0, 0), r(0)), "N", (r(30), r(0), r(0)), "E",
            {"error": "GPS position present but incomplete or malformed"}, id="zero-denominator",
        ),
        pytest.param(
            (r(95), r(0), r(0)), "N", (r(30), r(0), r(0)), "E",
            {"error": "GPS position out of range"}, id="latitude-out-of-range",
        ),
    ],
)  # fmt: skip
def test_gps_as_decimal_strings(
    tmp_path: Path,
    lat: tuple[Any, ...],
    lat_ref: str,
    lon: tuple[Any, ...],
    lon_ref: str,
    gps: dict[str, str],
) -> None:
    path = jpeg_with_exif(tmp_path / "p.jpg", lat=lat, lat_ref=lat_ref, lon=lon, lon_ref=lon_ref)
    result = extract_metadata(path, "image/jpeg")
    assert result["gps"] == gps
    # A bad GPS block does not hide the rest.
    assert result["datetime_original"] == "2023-03-02T10:20:30"
    assert_json_safe(result)


def test_image_without_exif_gives_dimensions_only(tmp_path: Path) -> None:
    path = tmp_path / "plain.jpg"
    Image.new("RGB", (33, 21)).save(path, "JPEG")
    assert extract_metadata(path, "image/jpeg") == {
        "width": 33,
        "height": 21,
        "image_format": "JPEG",
    }


def test_device_does_not_repeat_make(tmp_path: Path) -> None:
    path = jpeg_with_exif(tmp_path / "p.jpg", make="Fictional", model="Fictional X2")
    assert extract_metadata(path, "image/jpeg")["device"] == "Fictional X2"


def test_malformed_exif_time_is_kept_raw(tmp_path: Path) -> None:
    path = jpeg_with_exif(tmp_path / "p.jpg", taken="sometime in spring")
    result = extract_metadata(path, "image/jpeg")
    assert "datetime_original" not in result
    assert result["datetime_original_raw"] == "sometime in spring"


# --- bad inputs: recorded, never raised -------------------------------------------------------


def encrypted_pdf(tmp: Path) -> Path:
    path = tmp / "locked.pdf"
    shutil.copyfile(SAMPLES / "transfer-list-17-2022.pdf", tmp / "plain.pdf")
    with pikepdf.open(tmp / "plain.pdf") as pdf:
        pdf.save(path, encryption=pikepdf.Encryption(owner="owner-pw", user="user-pw"))
    return path


def write(tmp: Path, name: str, data: bytes) -> Path:
    (tmp / name).write_bytes(data)
    return tmp / name


def truncated_jpeg(tmp: Path) -> Path:
    return write(tmp, "t.jpg", (SAMPLES / "photo-bus-departure.jpg").read_bytes()[:40])


def wav_header_only(tmp: Path) -> Path:
    return write(tmp, "h.wav", b"RIFF\x24\x00\x00\x00WAVEjunkjunkjunk")


BAD_FILES = [
    ("encrypted-pdf", encrypted_pdf, "application/pdf", "encrypted PDF"),
    ("corrupt-pdf", lambda t: write(t, "c.pdf", b"%PDF-1.7\nnot a pdf\n"), "application/pdf",
     "corrupt PDF"),
    ("empty-pdf", lambda t: write(t, "e.pdf", b""), "application/pdf", "corrupt PDF"),
    ("truncated-jpeg", truncated_jpeg, "image/jpeg", "image"),
    ("not-an-image", lambda t: write(t, "n.png", b"plain text"), "image/png",
     "not a readable image"),
    ("corrupt-wav", wav_header_only, "audio/x-wav", "media"),
    ("not-audio", lambda t: write(t, "n.mp3", b"\x00" * 64), "audio/mpeg", "media"),
    ("missing-file", lambda t: t / "gone.jpg", "image/jpeg", "cannot open file"),
    ("missing-pdf", lambda t: t / "gone.pdf", "application/pdf", "cannot open file"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "mime", "message"),
    [pytest.param(make, mime, message, id=name) for name, make, mime, message in BAD_FILES],
)
def test_bad_file_gives_error_entry(tmp_path: Path, make: Any, mime: str, message: str) -> None:
    path = make(tmp_path)
    result = extract_metadata(path, mime)
    assert set(result) == {"error"}
    assert message in str(result["error"])
    assert str(tmp_path) not in str(result["error"])


def test_pdf_with_empty_user_password_is_read_and_flagged(tmp_path: Path) -> None:
    path = tmp_path / "owner-only.pdf"
    with pikepdf.open(SAMPLES / "transfer-list-17-2022.pdf") as pdf:
        pdf.save(path, encryption=pikepdf.Encryption(owner="owner-pw", user=""))
    result = extract_metadata(path, "application/pdf")
    assert result["encrypted"] is True
    assert result["pages"] == 1


@pytest.mark.parametrize(
    ("mime", "expected"),
    [
        ("text/plain", {}),
        ("application/octet-stream", {}),
        ("image/svg+xml", {}),
        ("application/zip", {}),
    ],
)
def test_unhandled_types_give_nothing(tmp_path: Path, mime: str, expected: dict[str, Any]) -> None:
    assert extract_metadata(write(tmp_path, "f", b"<svg/>"), mime) == expected


def test_wav_duration_in_milliseconds(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 9877)  # 1.234625 s
    result = extract_metadata(path, "audio/x-wav")
    assert result["duration_ms"] == 1235
    assert result["duration"] == "1.235"


MIMES = [
    "image/jpeg",
    "image/png",
    "image/tiff",
    "application/pdf",
    "audio/mpeg",
    "audio/x-wav",
    "video/mp4",
]
PREFIXES = [
    b"",
    b"\xff\xd8\xff\xe1",
    b"\x89PNG\r\n\x1a\n",
    b"%PDF-1.4\n",
    b"ID3\x03\x00",
    b"RIFF",
    b"II*\x00",
]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(MIMES), st.sampled_from(PREFIXES), st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(tmp_path: Path, mime: str, prefix: bytes, body: bytes) -> None:
    path = tmp_path / "fuzz.bin"
    path.write_bytes(prefix + body)
    result = extract_metadata(path, mime)
    assert isinstance(result, dict)
    assert_json_safe(result)


def test_jpeg_written_in_memory_has_exif(tmp_path: Path) -> None:
    # A guard that the helper really writes EXIF (otherwise the GPS tests would prove nothing).
    path = jpeg_with_exif(tmp_path / "p.jpg", lat=(r(1), r(0), r(0)), lon=(r(2), r(0), r(0)))
    with Image.open(io.BytesIO(path.read_bytes())) as image:
        assert image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
