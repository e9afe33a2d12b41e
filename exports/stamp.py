"""ERN stamping of PDFs: a copy with each page's ERN printed at the bottom right.

The source is only read. The stamp is a small content stream in the standard Helvetica font
(no font is embedded, so the stamp adds a few hundred bytes per page), drawn on a white box
after the page's own content, wrapped in ``q``/``Q`` so the page's graphics state cannot
move or hide it. The copy is saved with a deterministic file identifier, so the same source
and ERNs always give the same bytes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pikepdf
from pikepdf import Array, Dictionary, Name, Operator, Pdf

from chain_of_custody.errors import InputError

FONT_SIZE = 9.0
MARGIN = 12.0
PADDING = 2.0

_ERN_RE = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)*")
# Advance widths (per 1000 em) of the standard Helvetica font (Adobe AFM) for the characters
# an ERN may hold; needed to right-align the stamp without embedding a font.
_HELVETICA_WIDTHS = {
    **dict.fromkeys("0123456789", 556),
    "-": 333,
    **dict(
        zip(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            (667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833,
             722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611),
            strict=True,
        )
    ),
}  # fmt: skip


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """The width in points of ``text`` set in Helvetica at ``size``."""
    return sum(_HELVETICA_WIDTHS[c] for c in text) * size / 1000


def stamp_pdf(src: Path, dst: Path, erns: Sequence[str]) -> None:
    """Write to ``dst`` a copy of the PDF ``src`` with ``erns[i]`` stamped on page ``i``.

    Raises :class:`InputError` if the PDF is corrupt, encrypted, or its page count differs
    from the number of ERNs; the caller then leaves the item without a stamped copy.
    ``dst`` must not exist; on failure nothing is left at ``dst``.
    """
    for ern in erns:
        if not _ERN_RE.fullmatch(ern):
            raise InputError(f"cannot stamp {src.name}: {ern!r} is not an ERN")
    if dst.exists():
        raise InputError(f"cannot stamp {src.name}: {dst} already exists")
    try:
        pdf = Pdf.open(src)
    except pikepdf.PasswordError as exc:
        raise InputError(
            f"cannot stamp {src.name}: the PDF is encrypted with a password",
            hint="the original is exported unchanged; no stamped copy is made",
        ) from exc
    except (pikepdf.PdfError, OSError) as exc:
        raise InputError(
            f"cannot stamp {src.name}: the PDF cannot be read ({_reason(exc, src)})",
            hint="the original is exported unchanged; no stamped copy is made",
        ) from exc
    with pdf:
        if pdf.is_encrypted:
            raise InputError(
                f"cannot stamp {src.name}: the PDF is encrypted",
                hint="the original is exported unchanged; no stamped copy is made",
            )
        if len(pdf.pages) != len(erns):
            raise InputError(
                f"cannot stamp {src.name}: it has {len(pdf.pages)} pages but "
                f"{len(erns)} ERNs were allocated",
                hint="re-run the export so that ERNs are allocated from the page count",
            )
        try:
            for page, ern in zip(pdf.pages, erns, strict=True):
                _stamp_page(pdf, page, ern)
            pdf.save(dst, deterministic_id=True)
        except (pikepdf.PdfError, ValueError, KeyError, TypeError) as exc:
            dst.unlink(missing_ok=True)
            raise InputError(
                f"cannot stamp {src.name}: the PDF structure is damaged ({_reason(exc, src)})",
                hint="the original is exported unchanged; no stamped copy is made",
            ) from exc
    with dst.open("rb") as written:
        os.fsync(written.fileno())


def _reason(exc: Exception, src: Path) -> str:
    """The library's reason without the full path (a working path means nothing to a user)."""
    return str(exc).replace(str(src), src.name)


def _inherited(page: pikepdf.Page, key: str) -> pikepdf.Object | None:
    """A page attribute, looked up through the page tree as the PDF specification says."""
    node: pikepdf.Object | None = page.obj
    depth = 0
    while node is not None and depth < 64:
        if key in node:
            return node[key]
        node = node.get("/Parent")
        depth += 1
    return None


def _stamp_page(pdf: Pdf, page: pikepdf.Page, ern: str) -> None:
    if "/Resources" not in page.obj:
        # Inherited resources are copied onto the page so that adding our font keeps them.
        inherited = _inherited(page, "/Resources")
        page.obj.Resources = (
            Dictionary(dict(inherited.items())) if inherited is not None else Dictionary()
        )
    font = pdf.make_indirect(
        Dictionary(
            Type=Name.Font,
            Subtype=Name.Type1,
            BaseFont=Name.Helvetica,
            Encoding=Name.WinAnsiEncoding,
        )
    )
    # A name chosen here, not by pikepdf (which adds a random suffix), so output is stable.
    fonts = page.obj.Resources.get("/Font")
    taken = set(fonts.keys()) if fonts is not None else set()
    font_name = next(name for n in range(len(taken) + 1) if (name := f"/ErnStamp{n}") not in taken)
    page.add_resource(font, Name.Font, name=Name(font_name))

    box = _inherited(page, "/CropBox") or _inherited(page, "/MediaBox")
    if box is None:
        box = Array([0, 0, 612, 792])
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    width, height = x1 - x0, y1 - y0
    rotate_obj = _inherited(page, "/Rotate")
    rotate = int(rotate_obj) % 360 if rotate_obj is not None else 0

    # Map the page as displayed (after /Rotate) to user space, so that the stamp sits at the
    # bottom right of what the reader sees.
    if rotate == 90:
        matrix = [0, 1, -1, 0, x0 + width, y0]
        shown_width = height
    elif rotate == 180:
        matrix = [-1, 0, 0, -1, x0 + width, y0 + height]
        shown_width = width
    elif rotate == 270:
        matrix = [0, -1, 1, 0, x0, y0 + height]
        shown_width = height
    else:
        matrix = [1, 0, 0, 1, x0, y0]
        shown_width = width

    label_width = text_width(ern)
    x = shown_width - MARGIN - label_width
    y = MARGIN
    instructions: list[tuple[list[Any], Operator]] = [
        ([], Operator("q")),
        (matrix, Operator("cm")),
        ([1, 1, 1], Operator("rg")),
        (
            [
                x - PADDING,
                y - PADDING - 2,
                label_width + 2 * PADDING,
                FONT_SIZE + 2 * PADDING + 1,
            ],
            Operator("re"),
        ),
        ([], Operator("f")),
        ([0, 0, 0], Operator("rg")),
        ([], Operator("BT")),
        ([Name(font_name), FONT_SIZE], Operator("Tf")),
        ([x, y], Operator("Td")),
        ([pikepdf.String(ern)], Operator("Tj")),
        ([], Operator("ET")),
        ([], Operator("Q")),
    ]
    stamp = pikepdf.unparse_content_stream(instructions)
    # Wrap the page's own content in q/Q first: an unbalanced graphics state in the original
    # content must not shift or clip the stamp.
    page.contents_add(pikepdf.Stream(pdf, b"q\n"), prepend=True)
    page.contents_add(pikepdf.Stream(pdf, b"\nQ\n" + stamp + b"\n"), prepend=False)
