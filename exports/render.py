"""The human-readable parts of a bundle: the HTML index, its PDF/A twin and VERIFY.md.

All three come from the Jinja2 templates shipped in the ``templates`` package. The HTML page is
self-contained (inline CSS, no scripts, no external resources) and links to files by paths
relative to ``data/``. The PDF is rendered by WeasyPrint from the same template as PDF/A-3b,
with its dates and file identifier taken from the bundle, so the same content gives the same
bytes. Its document information dictionary and its XMP metadata come from the same values
(title, author, subject, creator, producer and whole-second dates), as PDF/A requires.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jinja2

from exports.model import (
    BundleContent,
    annex_href,
    event_proof_href,
    key_href,
    leaf_href,
    original_href,
    parse_time,
    proof_href,
    stamped_href,
)

PDF_VARIANT = "pdf/a-3b"

KIND_LABELS = {"incident": "Incident", "facility": "Facility", "perpetrator": "Alleged perpetrator"}


_EPOCH_LOCK = threading.Lock()


@contextmanager
def _source_date_epoch(seconds: int) -> Iterator[None]:
    """Set ``SOURCE_DATE_EPOCH`` while rendering.

    WeasyPrint subsets fonts with fontTools, which stamps each subset font's ``head`` table
    with the current time unless ``SOURCE_DATE_EPOCH`` is set; without this the PDF would differ
    on every run. The variable is restored afterwards and a lock keeps threads from mixing.
    """
    with _EPOCH_LOCK:
        previous = os.environ.get("SOURCE_DATE_EPOCH")
        os.environ["SOURCE_DATE_EPOCH"] = str(seconds)
        try:
            yield
        finally:
            if previous is None:
                del os.environ["SOURCE_DATE_EPOCH"]
            else:
                os.environ["SOURCE_DATE_EPOCH"] = previous


# HTML templates (*.html.j2) are autoescaped; VERIFY.md.j2 is Markdown and is not.
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("templates", "."),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def _context(content: BundleContent) -> dict[str, Any]:
    stamped = {item.ern for item in content.items if item.stamped}
    return {
        "content": content,
        "info": content.info,
        "items": content.item_by_ern(),
        "testimonies": content.testimony_by_ern(),
        "ungrouped": content.ungrouped_erns(),
        "stamped": stamped,
        "exporter": content.exporter_key(),
        "kind_labels": KIND_LABELS,
        "original_href": original_href,
        "stamped_href": stamped_href,
        "proof_href": proof_href,
        "annex_href": annex_href,
        "key_href": key_href,
        "leaf_example": leaf_href(content.custody_events[0].seq),
        "event_proof_example": event_proof_href(content.custody_events[0].seq),
    }


def render_html(content: BundleContent) -> str:
    """The self-contained ``data/index.html`` page (links are relative to ``data/``)."""
    template = _ENV.get_template("index.html.j2")
    return template.render(**_context(content))


def pdf_time(created: str) -> str:
    """The bundle time in whole seconds, as the PDF index's creation and modification date.

    WeasyPrint writes the date given to it twice: into the XMP metadata as given, and into the
    document information dictionary, whose date form has no fraction of a second. PDF/A
    requires the two to be equal, so the fraction is left out of both.
    """
    return parse_time(created).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_pdf(content: BundleContent) -> bytes:
    """The ``data/index.pdf`` document: the index as PDF/A-3b, deterministic for the content."""
    # Imported here: WeasyPrint loads Pango and fonts, which the rest of the package and the
    # command line's start-up do not need.
    import weasyprint  # noqa: PLC0415

    # WeasyPrint logs every CSS property it ignores; the messages would name bundle fields.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    template = _ENV.get_template("index_pdf.html.j2")
    html = template.render(**_context(content), pdf_time=pdf_time(content.info.created))
    identifier = hashlib.sha256(
        b"evidence-locker index.pdf\x00" + content.info.bundle_id.encode()
    ).digest()[:16]
    document = weasyprint.HTML(string=html, base_url=None)
    with _source_date_epoch(int(parse_time(content.info.created).timestamp())):
        result = document.write_pdf(
            pdf_variant=PDF_VARIANT,
            pdf_identifier=identifier,
            uncompressed_pdf=False,
        )
    if not isinstance(result, bytes):  # pragma: no cover - write_pdf without target returns bytes
        raise TypeError("WeasyPrint returned no PDF bytes")
    return result


def render_verify_md(content: BundleContent) -> str:
    """The ``data/custody/VERIFY.md`` instructions for checking the bundle with standard tools."""
    template = _ENV.get_template("VERIFY.md.j2")
    return template.render(**_context(content), key_roles=content.key_roles())
