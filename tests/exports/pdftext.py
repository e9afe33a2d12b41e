"""Text of a PDF through its fonts' ToUnicode maps, for checking what an index PDF shows.

Small on purpose (no extra dependency): handles the simple and Type0 (two-byte) fonts that
WeasyPrint and our stamper write, which is all the tests need.
"""

from __future__ import annotations

import re
from pathlib import Path

import pikepdf

_HEX = re.compile(rb"<([0-9A-Fa-f]+)>")


def _utf16(hex_bytes: bytes) -> str:
    return bytes.fromhex(hex_bytes.decode()).decode("utf-16-be", errors="replace")


def _parse_cmap(data: bytes) -> dict[int, str]:
    mapping: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        codes = _HEX.findall(block)
        for src, dst in zip(codes[::2], codes[1::2], strict=False):
            mapping[int(src, 16)] = _utf16(dst)
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
        for line in block.strip().splitlines():
            codes = _HEX.findall(line)
            if len(codes) < 3:
                continue
            lo, hi = int(codes[0], 16), int(codes[1], 16)
            if b"[" in line:
                for offset, dst in enumerate(codes[2:]):
                    mapping[lo + offset] = _utf16(dst)
            else:
                start = bytes.fromhex(codes[2].decode())
                base = int.from_bytes(start, "big")
                for code in range(lo, hi + 1):
                    value = (base + code - lo).to_bytes(len(start), "big")
                    mapping[code] = value.decode("utf-16-be", errors="replace")
    return mapping


def page_texts(path: Path) -> list[str]:
    """The text shown on each page, strings joined without separators per text operator."""
    texts = []
    with pikepdf.open(path) as pdf:
        for page in pdf.pages:
            fonts: dict[str, tuple[int, dict[int, str] | None]] = {}
            resources = page.obj.get("/Resources", pikepdf.Dictionary())
            for name, font in resources.get("/Font", pikepdf.Dictionary()).items():
                width = 2 if font.get("/Subtype") == "/Type0" else 1
                cmap = _parse_cmap(font.ToUnicode.read_bytes()) if "/ToUnicode" in font else None
                fonts[name] = (width, cmap)
            parts: list[str] = []
            current: tuple[int, dict[int, str] | None] = (1, None)
            for instruction in pikepdf.parse_content_stream(page):
                op = str(instruction.operator)
                if op == "Tf":
                    current = fonts.get(str(instruction.operands[0]), (1, None))
                elif op in ("Tj", "TJ"):
                    operand = instruction.operands[0]
                    strings = (
                        [operand]
                        if op == "Tj"
                        else [x for x in operand if isinstance(x, pikepdf.String)]
                    )
                    for s in strings:
                        raw = bytes(s)
                        width, cmap = current
                        codes = [
                            int.from_bytes(raw[i : i + width], "big")
                            for i in range(0, len(raw), width)
                        ]
                        if cmap is None:
                            parts.append(raw.decode("latin-1"))
                        else:
                            parts.append("".join(cmap.get(c, "\ufffd") for c in codes))
                elif op in ("ET", "T*", "Td", "TD", "'", '"'):
                    parts.append(" ")
            texts.append("".join(parts))
    return texts
