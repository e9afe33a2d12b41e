"""Regenerate the invented sample files in ``sample-data/files/``.

Every person, child code, facility and event in these files is invented for testing and
demonstration. Run from the repository root::

    .venv/bin/python sample-data/make_samples.py

The output is deterministic (fixed times, no randomness); JPEG and PDF bytes can still differ
between Pillow, libjpeg or qpdf versions, which is why the files themselves are committed.
"""

from __future__ import annotations

import json
import math
import struct
import wave
from pathlib import Path

import pikepdf
from PIL import ExifTags, Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

OUT = Path(__file__).resolve().parent / "files"

CAMERA_MAKE = "Fictional Optics"
CAMERA_MODEL = "FO-100 Field Camera"


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    """Degrees, minutes, seconds as EXIF rationals (seconds to 1/100)."""
    degrees = int(value)
    minutes_float = (value - degrees) * 60
    minutes = int(minutes_float)
    hundredths = round((minutes_float - minutes) * 60 * 100)
    return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(hundredths, 100)


def _exif(taken: str, offset: str, lat: float, lon: float) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = CAMERA_MAKE
    exif[ExifTags.Base.Model] = CAMERA_MODEL
    exif[ExifTags.Base.Software] = "sample-data/make_samples.py"
    exif[ExifTags.Base.DateTime] = taken
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    exif_ifd[ExifTags.Base.DateTimeOriginal] = taken
    exif_ifd[ExifTags.Base.OffsetTimeOriginal] = offset
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSVersionID] = b"\x02\x03\x00\x00"
    gps[ExifTags.GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
    gps[ExifTags.GPS.GPSLatitude] = _dms(abs(lat))
    gps[ExifTags.GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
    gps[ExifTags.GPS.GPSLongitude] = _dms(abs(lon))
    return exif


def make_bus_photo(path: Path) -> None:
    """A drawn 'photo' of a bus at a departure point (shapes only)."""
    image = Image.new("RGB", (320, 240), (150, 190, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 170, 320, 240), fill=(90, 90, 90))
    draw.rectangle((40, 100, 260, 180), fill=(230, 200, 40), outline=(40, 40, 40), width=3)
    for x in range(55, 245, 40):
        draw.rectangle((x, 112, x + 28, 140), fill=(200, 225, 240), outline=(40, 40, 40))
    for cx in (85, 215):
        draw.ellipse((cx - 18, 165, cx + 18, 201), fill=(30, 30, 30))
    exif = _exif("2022:10:14 09:12:30", "+03:00", 50.4501, 30.5234)
    image.save(path, "JPEG", quality=80, exif=exif.tobytes())


def make_gate_photo(path: Path) -> None:
    """A drawn 'photo' of a facility gate (shapes only)."""
    image = Image.new("RGB", (320, 240), (170, 200, 220))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 180, 320, 240), fill=(110, 140, 80))
    draw.rectangle((20, 60, 60, 190), fill=(120, 110, 100))
    draw.rectangle((260, 60, 300, 190), fill=(120, 110, 100))
    for x in range(70, 255, 12):
        draw.line((x, 80, x, 185), fill=(50, 50, 60), width=3)
    draw.line((60, 80, 260, 80), fill=(50, 50, 60), width=4)
    exif = _exif("2022:11:02 16:45:05", "+03:00", 46.6400, 32.6100)
    image.save(path, "JPEG", quality=80, exif=exif.tobytes())


def make_sketch_map(path: Path) -> None:
    """A hand-drawn style route sketch (PNG, no EXIF)."""
    image = Image.new("RGB", (240, 160), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    draw.line((20, 140, 80, 90, 150, 100, 220, 30), fill=(200, 30, 30), width=3)
    draw.ellipse((12, 132, 28, 148), outline=(0, 0, 0), width=2)
    draw.rectangle((210, 20, 230, 40), outline=(0, 0, 0), width=2)
    image.save(path, "PNG", optimize=False)


TRANSFER_ROWS = [
    ("CH-0001", "2011", "Town A", "2022-10-14"),
    ("CH-0002", "2013", "Town A", "2022-10-14"),
    ("CH-0003", "2009", "Village B", "2022-10-14"),
    ("CH-0004", "2015", "Village B", "2022-10-15"),
]


def make_transfer_list(path: Path) -> None:
    """A one-page 'transfer list' PDF with invented child codes and a fictional facility."""
    lines = [
        "FICTIONAL SAMPLE - NOT A REAL DOCUMENT",
        "Transfer list No. 17/2022 - destination: Facility Sunflower",
        "Issued by: Administration of Facility Sunflower (invented)",
        "",
        "Code      Born   From          Date of transfer",
    ]
    lines += [f"{code:<9} {born:<6} {town:<13} {date}" for code, born, town, date in TRANSFER_ROWS]
    lines += ["", "Escort: Official X (invented)     Received: Official Y (invented)"]
    commands = ["BT", "/F1 11 Tf", "14 TL", "50 780 Td"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        commands.append(f"({escaped}) Tj T*")
    commands.append("ET")
    content = "\n".join(commands).encode("ascii")

    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.Type1,
            BaseFont=pikepdf.Name.Courier,
            Encoding=pikepdf.Name.WinAnsiEncoding,
        )
    )
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page,
        MediaBox=[0, 0, 595, 842],
        Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)),
        Contents=pdf.make_stream(content),
    )
    pdf.pages.append(pikepdf.Page(page))
    pdf.docinfo["/Title"] = "Transfer list 17/2022 (fictional sample)"
    pdf.docinfo["/Author"] = "Administration of Facility Sunflower (invented)"
    pdf.docinfo["/Producer"] = "sample-data/make_samples.py"
    pdf.docinfo["/CreationDate"] = "D:20221013180000+03'00'"
    pdf.save(path, deterministic_id=True)


NOTE = """\
FIELD NOTE (fictional sample; every name, code and place is invented)

Interview logistics, 2023-03-02, by Investigator A.

Witness W-017 (parent) reports that CH-0002 was taken by bus on 2022-10-14
from the school in Town A to "Facility Sunflower". A second bus left the
same day for "Camp Pinewood". W-017 kept a photo of the bus and a copy of a
transfer list; both were handed over on 2023-03-02.

Follow-up: ask W-021 (eyewitness) about the escort. Interpreter: Interpreter B.

Нотатка українською (вигадана): свідок W-017 передав фото та список.
"""


def make_note(path: Path) -> None:
    """A UTF-8 text note of an investigator."""
    path.write_text(NOTE, encoding="utf-8", newline="\n")


def make_tone(path: Path) -> None:
    """Two seconds of a 440 Hz sine tone, 8 kHz mono 16-bit WAV (a stand-in for a recording)."""
    rate, seconds, frequency = 8000, 2, 440.0
    frames = b"".join(
        struct.pack("<h", round(12000 * math.sin(2 * math.pi * frequency * n / rate)))
        for n in range(rate * seconds)
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)


CAPTURED_POST = {
    "platform": "social.example",
    "url": "https://social.example/@fictional_channel/1234",
    "author_handle": "@fictional_channel",
    "published_at": "2022-10-15T08:00:00Z",
    "captured_at": "2023-01-20T12:30:00Z",
    "captured_by": "Investigator A",
    "capture_method": "manual copy of the public post text",
    "language": "ru",
    "text": (
        "Fictional post: 'Another group of children from Town A arrived at Facility Sunflower "
        "for rest and recovery.'"
    ),
    "media": [{"type": "photo", "description": "children leaving a bus (not included)"}],
}


def make_captured_post(path: Path) -> None:
    """A social-media capture as JSON."""
    text = json.dumps(CAPTURED_POST, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8", newline="\n")


SAMPLES = {
    "photo-bus-departure.jpg": make_bus_photo,
    "photo-facility-gate.jpg": make_gate_photo,
    "sketch-route.png": make_sketch_map,
    "transfer-list-17-2022.pdf": make_transfer_list,
    "field-note-W-017.txt": make_note,
    "recording-tone.wav": make_tone,
    "captured-post-1234.json": make_captured_post,
}


def main() -> None:
    """Write every sample file into ``files/``."""
    OUT.mkdir(exist_ok=True)
    for name, make in SAMPLES.items():
        make(OUT / name)
    total = sum((OUT / name).stat().st_size for name in SAMPLES)
    print(f"wrote {len(SAMPLES)} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
