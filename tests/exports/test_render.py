"""The HTML index, the PDF/A index and VERIFY.md."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pikepdf
import pytest
from pikepdf.models.metadata import decode_pdf_date

from exports.render import render_html, render_pdf, render_verify_md
from tests.exports.conftest import Fixture
from tests.exports.pdftext import page_texts


def test_html_is_self_contained(bundle: Fixture) -> None:
    html = render_html(bundle.content)
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:|//|file:)""", html, re.I)
    assert "@import" not in html
    assert "url(" not in html
    assert "<style>" in html
    assert "@media print" in html


def test_html_lists_every_record_with_hash_source_and_custody(bundle: Fixture) -> None:
    html = render_html(bundle.content)
    for item in bundle.content.items:
        assert item.ern_range in html
        assert item.sha256 in html
        assert f'href="originals/{item.bag_name}"' in html
        for entry in item.custody:
            assert entry.time in html
    assert "Example Documentation Group" in html
    assert "Investigator A (exporter-a)" in html
    assert 'href="stamped/UKR-DEP-000010_transfer_list_scan.pdf"' in html
    testimony = bundle.content.testimonies[0]
    assert testimony.witness_code in html
    assert "The bus left at night." in html
    assert "Translator B" in html


def test_html_groups_are_nested_incident_facility_perpetrator(bundle: Fixture) -> None:
    html = render_html(bundle.content)
    incident = html.index('id="group-incident-INC-1"')
    facility = html.index('id="group-facility-FAC-2"')
    perpetrator = html.index('id="group-perpetrator-PER-3"')
    ungrouped = html.index('id="group-ungrouped"')
    assert incident < facility < perpetrator < ungrouped
    # The text note is in no group and shows in the ungrouped section.
    assert html.index('href="#UKR-DEP-000014"', ungrouped) > ungrouped


def test_html_escapes_record_text(bundle: Fixture) -> None:
    html = render_html(bundle.content)
    assert "<b>not markup</b>" not in html
    assert "&lt;b&gt;not markup&lt;/b&gt;" in html


def test_html_is_deterministic(bundle: Fixture) -> None:
    assert render_html(bundle.content) == render_html(bundle.content)


@pytest.fixture
def pdf_path(bundle: Fixture, tmp_path: Path) -> Path:
    path = tmp_path / "index.pdf"
    path.write_bytes(render_pdf(bundle.content))
    return path


def test_pdf_shows_every_ern_and_hash(bundle: Fixture, pdf_path: Path) -> None:
    text = "".join(page_texts(pdf_path))
    compact = re.sub(r"\s+", "", text)
    for item in bundle.content.items:
        assert item.ern in text
        assert item.ern_end in text
        assert item.sha256 in compact
    testimony = bundle.content.testimonies[0]
    assert testimony.ern in text
    assert testimony.sha256 in compact
    assert "W-017" in text
    assert "Автобус поїхав уночі." in text


def test_pdf_is_pdfa_with_dates_from_the_bundle(pdf_path: Path) -> None:
    with pikepdf.open(pdf_path) as pdf:
        xmp = pdf.Root.Metadata.read_bytes()
        assert b'pdfaid:part="3"' in xmp
        assert b'pdfaid:conformance="B"' in xmp
        assert "/OutputIntents" in pdf.Root
        assert str(pdf.docinfo["/CreationDate"]) == "D:20261124032000Z"
        assert str(pdf.docinfo["/ModDate"]) == "D:20261124032000Z"


# Document information entries and the XMP properties PDF/A requires them to equal.
_INFO_TO_XMP = {
    "/Title": "dc:title",
    "/Author": "dc:creator",
    "/Subject": "dc:description",
    "/Keywords": "pdf:Keywords",
    "/Creator": "xmp:CreatorTool",
    "/Producer": "pdf:Producer",
}
_DATES_TO_XMP = {"/CreationDate": "xmp:CreateDate", "/ModDate": "xmp:ModifyDate"}


def test_pdf_document_info_equals_its_xmp_metadata(bundle: Fixture, pdf_path: Path) -> None:
    """PDF/A validators refuse a document whose information dictionary and XMP disagree."""
    # The fixture's bundle time has a fraction of a second, which PDF dates cannot hold.
    assert "." in bundle.content.info.created
    with pikepdf.open(pdf_path) as pdf:
        info = {str(key): str(value) for key, value in pdf.docinfo.items()}
        # Read only: opened this way pikepdf changes neither the XMP nor the dictionary.
        xmp = pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False)
        assert xmp.pdfa_status == "3B"
        assert xmp["pdfaid:part"] == "3"
        assert xmp["pdfaid:conformance"] == "B"
        assert {"/Title", "/Producer", "/Creator", "/CreationDate", "/ModDate"} <= set(info)
        for key, name in _INFO_TO_XMP.items():
            value = xmp.get(name)
            if isinstance(value, list):  # dc:creator is an ordered list of authors
                value = ", ".join(value)
            assert info.get(key) == value, (key, name)
        for key, name in _DATES_TO_XMP.items():
            assert key in info and name in xmp, (key, name)
            written = datetime.fromisoformat(xmp[name])
            assert decode_pdf_date(info[key]) == written, (key, name)
            assert written == datetime(2026, 11, 24, 3, 20, tzinfo=UTC)


def test_pdf_is_deterministic(bundle: Fixture) -> None:
    assert render_pdf(bundle.content) == render_pdf(bundle.content)


def test_verify_md_names_the_standard_tools_and_the_exporter_key(bundle: Fixture) -> None:
    text = render_verify_md(bundle.content)
    assert "sha256sum -c manifest-sha256.txt" in text
    assert "sha512sum -c manifest-sha512.txt" in text
    assert (
        "openssl pkeyutl -verify -pubin -inkey data/custody/keys/exporter-a_ad496b3a.pem -rawin "
        "-in tagmanifest-sha256.txt -sigfile tagmanifest-sha256.txt.sig"
    ) in text
    assert "evidence audit" in text
    for record in bundle.content.records():
        assert record.sha256 in text


def test_verify_md_says_where_the_proof_of_each_event_is(bundle: Fixture) -> None:
    text = render_verify_md(bundle.content)
    first = bundle.content.custody_events[0].seq
    assert "`event-proofs/<seq>.proof`" in text
    assert (
        f"`data/custody/event-proofs/{first:012d}.proof` proves\n"
        f"  `data/custody/events/{first:012d}.leaf`"
    ) in text
