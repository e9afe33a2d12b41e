"""ERN stamping: every page carries its ERN, the source is untouched, bad PDFs are refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pikepdf
import pytest

from chain_of_custody.errors import InputError
from exports.stamp import stamp_pdf, text_width
from tests.exports.conftest import make_pdf
from tests.exports.pdftext import page_texts

ERNS = ("UKR-DEP-000010", "UKR-DEP-000011", "UKR-DEP-000012")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_every_page_carries_its_ern_and_source_is_untouched(tmp_path: Path, rotate: int) -> None:
    src = tmp_path / "in.pdf"
    make_pdf(src, pages=3, rotate=rotate)
    before = _digest(src)
    dst = tmp_path / "out.pdf"
    stamp_pdf(src, dst, ERNS)
    assert _digest(src) == before
    texts = page_texts(dst)
    assert len(texts) == 3
    for n, (text, ern) in enumerate(zip(texts, ERNS, strict=True)):
        assert ern in text
        assert f"Transfer list page {n + 1}" in text
        assert all(other not in text for other in ERNS if other != ern)


def test_stamp_sits_inside_the_visible_page(tmp_path: Path) -> None:
    src = tmp_path / "in.pdf"
    make_pdf(src, pages=1, rotate=90)
    dst = tmp_path / "out.pdf"
    stamp_pdf(src, dst, ERNS[:1])
    with pikepdf.open(dst) as pdf:
        page = pdf.pages[0]
        ops = pikepdf.parse_content_stream(page)
        # The stamp is drawn last: its cm and Td are the last ones on the page.
        cm = [o for o in ops if str(o.operator) == "cm"][-1]
        td = [o for o in ops if str(o.operator) == "Td"][-1]
        a, b, c, d, e, f = (float(v) for v in cm.operands)
        u, v = (float(x) for x in td.operands)
        x, y = a * u + c * v + e, b * u + d * v + f
        x0, y0, x1, y1 = (float(v) for v in page.mediabox)
        assert x0 <= x <= x1
        assert y0 <= y <= y1
        # Rotated 90 degrees clockwise, the shown bottom edge is the user-space right edge.
        assert x > (x1 - x0) * 0.9


def test_stamping_is_deterministic(tmp_path: Path) -> None:
    src = tmp_path / "in.pdf"
    make_pdf(src, pages=3)
    stamp_pdf(src, tmp_path / "a.pdf", ERNS)
    stamp_pdf(src, tmp_path / "b.pdf", ERNS)
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()


def test_inherited_resources_are_kept(tmp_path: Path) -> None:
    src = tmp_path / "in.pdf"
    make_pdf(src, pages=1)
    with pikepdf.open(src, allow_overwriting_input=True) as pdf:
        page = pdf.pages[0]
        pdf.Root.Pages.Resources = page.obj.Resources
        del page.obj["/Resources"]
        pdf.save(src)
    dst = tmp_path / "out.pdf"
    stamp_pdf(src, dst, ERNS[:1])
    text = page_texts(dst)[0]
    assert "Transfer list page 1" in text
    assert ERNS[0] in text


def test_width_table_covers_ern_characters() -> None:
    assert text_width("UKR-DEP-000010") > 0
    with pytest.raises(KeyError):
        text_width("a")


def _not_a_pdf(path: Path) -> None:
    path.write_bytes(b"this is not a PDF at all\n" * 20)


def _user_password(path: Path) -> None:
    make_pdf(path, pages=3)
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        pdf.save(path, encryption=pikepdf.Encryption(user="secret", owner="owner"))


def _owner_password_only(path: Path) -> None:
    make_pdf(path, pages=3)
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        pdf.save(path, encryption=pikepdf.Encryption(user="", owner="owner"))


def _wrong_page_count(path: Path) -> None:
    make_pdf(path, pages=2)


def _empty_file(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(_not_a_pdf, "cannot be read", id="not-a-pdf"),
        pytest.param(_empty_file, "cannot be read", id="empty-file"),
        pytest.param(_user_password, "encrypted", id="user-password"),
        pytest.param(_owner_password_only, "encrypted", id="owner-password-only"),
        pytest.param(_wrong_page_count, "2 pages but 3 ERNs", id="page-count-mismatch"),
    ],
)
def test_bad_pdfs_are_refused_with_a_clear_error(tmp_path: Path, make, message: str) -> None:
    src = tmp_path / "bad.pdf"
    make(src)
    before = _digest(src)
    dst = tmp_path / "out.pdf"
    with pytest.raises(InputError, match=message) as info:
        stamp_pdf(src, dst, ERNS)
    assert "bad.pdf" in info.value.message
    assert not dst.exists()
    assert _digest(src) == before


@pytest.mark.parametrize(
    "ern",
    [
        pytest.param("ukr-dep-1", id="lower-case"),
        pytest.param("UKR DEP 1", id="spaces"),
        pytest.param("UKR-DEP-1) Tj (X", id="pdf-string-injection"),
        pytest.param("", id="empty"),
    ],
)
def test_bad_erns_are_refused(tmp_path: Path, ern: str) -> None:
    src = tmp_path / "in.pdf"
    make_pdf(src, pages=1)
    with pytest.raises(InputError, match="is not an ERN"):
        stamp_pdf(src, tmp_path / "out.pdf", [ern])


def test_existing_destination_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "in.pdf"
    make_pdf(src, pages=1)
    dst = tmp_path / "out.pdf"
    dst.write_bytes(b"keep me")
    with pytest.raises(InputError, match="already exists"):
        stamp_pdf(src, dst, ERNS[:1])
    assert dst.read_bytes() == b"keep me"
