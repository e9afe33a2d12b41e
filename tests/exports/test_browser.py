"""The bundle's ``data/index.html`` as a browser shows it: headless Chromium, no network.

Chromium loads the page from the bag with every host name mapped to nowhere and writes the
rendered DOM and a network log. The tests check that the rendered page names every ERN and
SHA-256, nests the groups incident -> facility -> perpetrator, links only to files the bag holds
and to anchors the page has, and asks the network for nothing. A control page with external
resources shows that the network check does see requests.

Needs Debian's ``chromium`` (``make test`` installs it); without it the tests are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from exports.bag import write_bag
from exports.bundle import export_bundle
from exports.model import BundleContent, BundleItem, Selection
from tests.exports.casebuilder import (
    CREATED,
    SECRETS,
    build_case,
    investigator_signer,
    recipient_key,
)
from tests.exports.conftest import build_content

CHROMIUM = os.environ.get("EVIDENCE_TEST_CHROMIUM") or shutil.which("chromium") or ""
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    # Every host name resolves to nothing: a page that tried to load anything from the
    # network would get an error, and the network log below records the attempt.
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
# Attributes through which a page can make the browser fetch or go somewhere.
URL_ATTRIBUTES = {
    "href",
    "src",
    "srcset",
    "action",
    "formaction",
    "poster",
    "data",
    "background",
    "cite",
    "longdesc",
    "manifest",
    "ping",
    "xlink:href",
}
FETCHING_TAGS = {"script", "link", "img", "iframe", "frame", "object", "embed", "video", "audio"}

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and Path(CHROMIUM).is_file()),
    reason="headless Chromium is not installed: `apt-get install chromium` (make test does it)",
)


@dataclass
class Element:
    """One element of the rendered DOM with the ids of the sections around it."""

    tag: str
    attrs: dict[str, str]
    sections: tuple[str, ...]


@dataclass
class Dom(HTMLParser):
    """The elements, ids and visible text of a page, from Chromium's ``--dump-dom``."""

    elements: list[Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    _open: list[tuple[str, str]] = field(default_factory=list)
    _in_style: bool = False

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        sections = tuple(i for t, i in self._open if t == "section")
        self.elements.append(Element(tag, values, sections))
        self._in_style = tag == "style"
        if tag not in {"meta", "br", "hr", "img", "link", "input", "col", "wbr"}:
            self._open.append((tag, values.get("id", "")))

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False
        for position in range(len(self._open) - 1, -1, -1):
            if self._open[position][0] == tag:
                del self._open[position:]
                break

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)

    @property
    def ids(self) -> set[str]:
        return {e.attrs["id"] for e in self.elements if "id" in e.attrs}

    @property
    def visible_text(self) -> str:
        return " ".join(" ".join(self.text).split())

    def section_of(self, element_id: str) -> tuple[str, ...]:
        """The ids of the sections around the element with ``element_id``, outermost first."""
        return next(e.sections for e in self.elements if e.attrs.get("id") == element_id)


@dataclass(frozen=True)
class Record:
    """What the page must show of one item or testimony: ERNs, SHA-256 and custody lines."""

    erns: tuple[str, ...]
    sha256: str
    custody: tuple[tuple[str, str], ...]
    """(time, summary) of each custody event."""


@dataclass(frozen=True)
class Rendered:
    """A bag, the records its page must show, and what Chromium made of the page."""

    bag: Path
    records: tuple[Record, ...]
    dom: Dom
    page_requests: tuple[str, ...]


def run_chromium(page: Path, work: Path, *extra: str) -> tuple[str, tuple[str, ...]]:
    """Load ``page`` in headless Chromium: the rendered DOM and the URLs the page requested."""
    work.mkdir(parents=True, exist_ok=True)
    net_log = work / "net-log.json"
    command = [
        CHROMIUM,
        *FLAGS,
        f"--user-data-dir={work / 'profile'}",
        f"--log-net-log={net_log}",
        *extra,
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    # A fixed program and fixed arguments, no shell.
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"
    assert "<html" in done.stdout, f"chromium printed no DOM: {done.stderr[-2000:]}"
    return done.stdout, page_requests(net_log)


def page_requests(net_log: Path) -> tuple[str, ...]:
    """URLs the page (not Chromium itself) asked the network stack for, from the net log.

    Chromium's own background requests (updates, accounts) carry no ``file://`` top frame; a
    request made for the page loaded from a file does.
    """
    log = json.loads(net_log.read_text(encoding="utf-8"))
    types = log["constants"]["logEventTypes"]
    start = types["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event.get("type") == start and "file://" in str(params.get("network_isolation_key")):
            urls.append(str(params["url"]))
    return tuple(dict.fromkeys(urls))


def _render(bag: Path, records: list[Record], work: Path) -> Rendered:
    html, requests = run_chromium(bag / "data" / "index.html", work)
    dom = Dom()
    dom.feed(html)
    dom.close()
    return Rendered(bag=bag, records=tuple(records), dom=dom, page_requests=requests)


def _records_of(content: BundleContent) -> list[Record]:
    """The records of a bundle model (first and last ERN of a page range)."""
    return [
        Record(
            (r.ern, r.ern_end) if isinstance(r, BundleItem) else (r.ern,),
            r.sha256,
            tuple((e.time, e.summary) for e in r.custody),
        )
        for r in content.records()
    ]


def _records_from_metadata(bag: Path) -> list[Record]:
    """The records of a bag, read from its ``items.json`` (written apart from the page)."""
    metadata = json.loads((bag / "data" / "metadata" / "items.json").read_text(encoding="utf-8"))
    return [
        Record(
            (str(r["ern"]), str(r.get("ern_end") or r["ern"])),
            str(r["sha256"]),
            tuple((str(e["time"]), str(e["summary"])) for e in r["custody"]),
        )
        for r in (*metadata["items"], *metadata["testimonies"])
    ]


@pytest.fixture(scope="module")
def fixture_bundle(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The fictional otp bundle of the writer tests, written as a bag."""
    root = tmp_path_factory.mktemp("browser-fixture")
    made = build_content(root)
    written = write_bag(
        made.content, root / "bag", sign_tagmanifest=made.key.sign, signer_key_id=made.key.key_id
    )
    return _render(written.path, _records_of(made.content), root / "chromium")


@pytest.fixture(scope="module")
def exported_bundle(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """An otp bundle exported from the fictional test case."""
    root = tmp_path_factory.mktemp("browser-export")
    built = build_case(root / "built")
    case = built.open()
    try:
        result = export_bundle(
            case,
            investigator_signer(),
            selection=Selection(all=True),
            profile="otp",
            out_dir=root / "bundle",
            created=CREATED,
            recipient=recipient_key().public,
        )
    finally:
        case.close()
    return _render(result.bag, _records_from_metadata(result.bag), root / "chromium")


@pytest.fixture(params=["fixture", "exported"])
def rendered(request: pytest.FixtureRequest) -> Rendered:
    """Each of the two rendered bundles in turn."""
    value = request.getfixturevalue(f"{request.param}_bundle")
    assert isinstance(value, Rendered)
    return value


def test_every_ern_and_sha256_is_shown(rendered: Rendered) -> None:
    text = rendered.dom.visible_text
    assert len(rendered.records) >= 4
    for record in rendered.records:
        for ern in record.erns:
            assert ern in text, f"{ern} is not shown on the page"
        assert record.sha256 in text, f"the SHA-256 of {record.erns[0]} is not shown"
        # Each record has its own block, anchored by its first ERN.
        assert record.erns[0] in rendered.dom.ids, f"no block with id {record.erns[0]}"


def test_custody_history_is_shown(rendered: Rendered) -> None:
    text = rendered.dom.visible_text
    for record in rendered.records:
        assert record.custody, f"{record.erns[0]} has no custody history to show"
        for time, summary in record.custody:
            assert time in text
            assert " ".join(summary.split()) in text


def test_the_page_requests_nothing_from_the_network(rendered: Rendered) -> None:
    assert rendered.page_requests == ()
    for element in rendered.dom.elements:
        assert element.tag not in FETCHING_TAGS, f"the page has a <{element.tag}> element"
        for name, value in element.attrs.items():
            if name in URL_ATTRIBUTES:
                parts = urlsplit(value)
                assert not parts.scheme, f"<{element.tag} {name}={value!r}> leaves the bundle"
                assert not value.startswith("//"), f"<{element.tag} {name}={value!r}>"
            assert not name.startswith("on"), f"<{element.tag}> has an event handler {name}"
    css = "".join(rendered.dom.styles)
    assert css.strip(), "the inline style sheet is missing"
    assert "url(" not in css and "@import" not in css


def test_every_link_points_into_the_bag_or_the_page(rendered: Rendered) -> None:
    data = (rendered.bag / "data").resolve()
    links = [e.attrs["href"] for e in rendered.dom.elements if e.tag == "a" and "href" in e.attrs]
    assert links
    for href in links:
        if href.startswith("#"):
            assert href[1:] in rendered.dom.ids, f"anchor {href} is not on the page"
            continue
        target = (data / unquote(urlsplit(href).path)).resolve()
        assert target.is_relative_to(data), f"{href} leads out of data/"
        assert target.is_file(), f"{href} names no file of the bag"


def test_ids_are_unique_and_every_group_is_in_the_contents(rendered: Rendered) -> None:
    ids = [e.attrs["id"] for e in rendered.dom.elements if "id" in e.attrs]
    assert len(ids) == len(set(ids)), (
        f"ids used twice: {sorted(i for i in ids if ids.count(i) > 1)}"
    )
    sections = {e.attrs["id"] for e in rendered.dom.elements if e.tag == "section"}
    assert sections
    toc = next(e for e in rendered.dom.elements if e.tag == "nav")
    assert toc.attrs.get("class") == "toc"
    linked = {e.attrs.get("href", "")[1:] for e in rendered.dom.elements if e.tag == "a"}
    assert sections <= linked, f"sections missing from the contents: {sections - linked}"


def test_groups_nest_incident_facility_perpetrator(fixture_bundle: Rendered) -> None:
    dom = fixture_bundle.dom
    assert dom.section_of("group-facility-FAC-2")[-1] == "group-incident-INC-1"
    assert dom.section_of("group-perpetrator-PER-3")[-2:] == (
        "group-incident-INC-1",
        "group-facility-FAC-2",
    )
    text = dom.visible_text
    assert "Camp in the forest" in text
    assert "Unit 00000 (fictional)" in text


def test_record_text_is_shown_as_text(fixture_bundle: Rendered) -> None:
    text = fixture_bundle.dom.visible_text
    assert "<b>not markup</b>" in text
    assert not any(e.tag == "b" for e in fixture_bundle.dom.elements)


def test_network_check_sees_a_page_that_loads_external_resources(tmp_path: Path) -> None:
    """Control: the same check on a page with external resources finds them."""
    page = tmp_path / "external.html"
    page.write_text(
        '<!DOCTYPE html><html><head><link rel="stylesheet" href="https://example.invalid/a.css">'
        '</head><body><img src="http://example.invalid/b.png"></body></html>',
        encoding="utf-8",
    )
    _html, requests = run_chromium(page, tmp_path / "chromium")
    assert set(requests) == {"https://example.invalid/a.css", "http://example.invalid/b.png"}


def test_no_protected_value_reaches_the_page(exported_bundle: Rendered) -> None:
    text = exported_bundle.dom.visible_text
    for secret in SECRETS:
        assert secret not in text
