"""Bag file names in the users' own script: Ukrainian names stay readable, the bag stays valid.

The files and their names are invented (an order, a list of children's transfers); only the
names matter here.
"""

from __future__ import annotations

import unicodedata
import zipfile
from pathlib import Path

import bagit
import pikepdf
import pytest

from evidence.ingest import ingest
from evidence.links import make_links
from evidence.models import ItemOptions
from exports.audit import audit_bundle
from exports.bundle import ExportResult, export_bundle
from exports.model import MAX_NAME_BYTES, Selection
from tests.exports.casebuilder import (
    CREATED,
    BuiltCase,
    bag_files,
    build_case,
    copy_case,
    investigator_signer,
)

ORDER = "Наказ_про_переміщення.pdf"
# Two different files of one name, from two folders: both go into the bundle.
LIST = "Список дітей (табір «Сонечко»).pdf"
LIST_IN_BAG = "Список_дітей_табір_Сонечко.pdf"
LONG = ("Розпорядження щодо вивезення дітей " * 3).strip() + ".pdf"  # 199 bytes
UTF8_FLAG = 0x800  # general purpose bit 11: the entry name is UTF-8


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltCase:
    return build_case(tmp_path_factory.mktemp("names"), with_testimony=False)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The invented Ukrainian-named PDFs (ingest records their paths, so they are made once)."""
    src = tmp_path_factory.mktemp("sources")
    paths = []
    for number, (folder, name, pages) in enumerate(
        (("a", ORDER, 2), ("a", LIST, 1), ("b", LIST, 2), ("c", LONG, 1))
    ):
        path = src / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        _make_pdf(path, pages, f"Invented document {number}")
        paths.append(path)
    return paths


def _make_pdf(path: Path, pages: int, label: str) -> None:
    """A small PDF whose text makes its bytes differ from every other test file's."""
    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Courier
        )
    )
    for page_number in range(pages):
        page = pdf.add_blank_page(page_size=(595, 842))
        page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
        page.obj.Contents = pdf.make_stream(
            f"BT /F1 14 Tf 72 760 Td ({label}, page {page_number + 1}) Tj ET".encode()
        )
    pdf.save(path, deterministic_id=True)


def _export(built: BuiltCase, sources: list[Path], out: Path) -> ExportResult:
    """Copy the case, ingest ``sources`` linked to the incident, and export it."""
    case = copy_case(built, out / "case").open()
    try:
        signer = investigator_signer()
        report = ingest(
            case,
            signer,
            sources,
            options=ItemOptions(
                source="Example Documentation NGO field team",
                collected_by="Investigator A",
                collected_at="2026-03-01",
                language="uk",
                confidentiality="restricted",
            ),
        )
        assert report.ok, report.refused
        for stored in report.files:
            make_links(case, signer, stored.sha256, {"incident": ["INC-0001"]}, "order (test)")
        return export_bundle(
            case,
            signer,
            selection=Selection(incidents=("INC-0001",)),
            profile="restricted",
            out_dir=out / "bundle",
            zip_path=out / "bundle.zip",
            created=CREATED,
        )
    finally:
        case.close()


@pytest.fixture(scope="module")
def exported(
    built: BuiltCase, sources: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> ExportResult:
    return _export(built, sources, tmp_path_factory.mktemp("exported"))


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_ukrainian_names_stay_readable_in_originals_and_stamped(exported: ExportResult) -> None:
    originals = _names(exported.bag / "data" / "originals")
    order = [n for n in originals if n.endswith("_" + ORDER)]
    assert len(order) == 1, originals
    lists = [n for n in originals if n.endswith("_" + LIST_IN_BAG)]
    assert len(lists) == 2 and lists[0] != lists[1]  # same name, two ERNs, both kept
    long_name = next(n for n in originals if "_Розпорядження_щодо_вивезення_дітей_" in n)
    assert long_name.endswith(".pdf")
    assert len(long_name.encode()) <= MAX_NAME_BYTES
    assert all(unicodedata.is_normalized("NFC", n) for n in originals)
    stamped = _names(exported.bag / "data" / "stamped")
    assert order[0] in stamped and set(lists) <= set(stamped)
    html = (exported.bag / "data" / "index.html").read_text(encoding="utf-8")
    assert f'href="originals/{order[0]}"' in html
    verify_md = (exported.bag / "data" / "custody" / "VERIFY.md").read_text(encoding="utf-8")
    assert f"`data/originals/{order[0]}`" in verify_md
    manifest = (exported.bag / "manifest-sha256.txt").read_text(encoding="utf-8")
    assert f"  data/originals/{order[0]}\n" in manifest


def test_bag_with_ukrainian_names_validates_and_audits(exported: ExportResult) -> None:
    bagit.Bag(str(exported.bag)).validate()
    assert exported.zip_path is not None
    trusted = [investigator_signer().verifier]
    for target in (exported.bag, exported.zip_path):
        report = audit_bundle(target, trusted)
        assert report.ok, report.findings
        assert report.originals == 6  # the transfer list, the bus photo and the four PDFs


def test_zip_records_the_names_as_utf8(exported: ExportResult, tmp_path: Path) -> None:
    assert exported.zip_path is not None
    with zipfile.ZipFile(exported.zip_path) as archive:
        infos = archive.infolist()
        ukrainian = [i for i in infos if not i.filename.isascii()]
        assert len(ukrainian) >= 8  # four originals and four stamped copies
        for info in infos:
            # Without the flag, readers decode non-ASCII names as CP437 and garble them.
            assert bool(info.flag_bits & UTF8_FLAG) is not info.filename.isascii(), info
        archive.extractall(tmp_path / "unzipped")
    unzipped = tmp_path / "unzipped" / exported.bag.name
    assert bag_files(unzipped) == bag_files(exported.bag)
    bagit.Bag(str(unzipped)).validate()


def test_same_state_gives_a_byte_identical_bundle_with_ukrainian_names(
    built: BuiltCase, sources: list[Path], exported: ExportResult, tmp_path: Path
) -> None:
    one, two = exported, _export(built, sources, tmp_path)
    assert one.bundle_id == two.bundle_id
    assert bag_files(one.bag) == bag_files(two.bag)
    assert one.zip_path is not None and two.zip_path is not None
    assert one.zip_path.read_bytes() == two.zip_path.read_bytes()
