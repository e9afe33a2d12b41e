"""A fictional case for the export tests, built through the library with fixed keys and times.

Everything is invented: the case, "Example Documentation NGO", "Investigator A", witness W-017,
"Example Town". The protected identity of W-017 uses values that appear nowhere else, so a test
can search every byte of a bundle for them.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pikepdf
from PIL import Image

from chain_of_custody import Signer, signer_from_seed
from evidence.entities import add_entity
from evidence.ingest import ingest
from evidence.links import make_links
from evidence.models import Facility, Incident, ItemOptions, Perpetrator
from evidence.protected import RecipientKey
from evidence.recipients import add_recipient
from evidence.testimony import record_testimony
from evidence.workspace import Case, init_case, open_case

CASE_ID = "UA-TEST-0001"
SEED = bytes(range(32))
RECIPIENT_SEED = bytes(range(100, 132))
CREATED = "2026-11-24T03:20:00Z"
# Protected values: long, unusual strings so that a search finds any leak, however encoded.
SECRET_NAME = "Zorianna Protectedname-Quixwell"
SECRET_ADDRESS = "17 Hiddenlane Secretstreet, Undisclosedtown"
SECRET_CONTACT = "+000-555-0199-PROTECTED"
SECRETS = (SECRET_NAME, SECRET_ADDRESS, SECRET_CONTACT)


def fixed_clock(start: datetime | None = None) -> Callable[[], datetime]:
    """A clock that starts at a fixed time and moves one millisecond per call."""
    state = {"now": start or datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)}

    def clock() -> datetime:
        state["now"] += timedelta(milliseconds=1)
        return state["now"]

    return clock


def investigator_signer() -> Signer:
    """The fixed investigator key."""
    return signer_from_seed("investigator-a", SEED)


def recipient_key() -> RecipientKey:
    """The fixed recipient (the prosecutor's registry) of protected annexes."""
    return RecipientKey.from_private_bytes("otp-registry", RECIPIENT_SEED)


def make_pdf(path: Path, pages: int) -> None:
    """A small PDF with a line of text on each page."""
    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Courier
        )
    )
    for n in range(pages):
        page = pdf.add_blank_page(page_size=(595, 842))
        page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
        page.obj.Contents = pdf.make_stream(
            f"BT /F1 14 Tf 72 760 Td (Transfer list page {n + 1}) Tj ET".encode()
        )
    pdf.save(path, deterministic_id=True)


def make_png(path: Path, colour: tuple[int, int, int]) -> None:
    """A tiny PNG of one colour."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), colour).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())


@dataclass(frozen=True)
class BuiltCase:
    """The case and the sha256 of each of its items, by role."""

    root: Path
    items: dict[str, str]
    witness_document: str

    def open(self) -> Case:
        """Open the case with the fixed clock."""
        return open_case(self.root, clock=fixed_clock(datetime(2026, 3, 3, tzinfo=UTC)))


def _ingest_one(case: Case, signer: Signer, path: Path, level: str) -> str:
    report = ingest(
        case,
        signer,
        [path],
        options=ItemOptions(
            source="Example Documentation NGO field team",
            collected_by="Investigator A",
            collected_at="2026-03-01",
            method="handed-over",
            language="uk",
            description=f"Invented test file ({level})",
            confidentiality=level,
        ),
    )
    assert report.ok, report.refused
    return report.files[0].sha256


def build_case(root: Path, *, with_testimony: bool = True) -> BuiltCase:
    """A case with four items, an incident, a facility, a perpetrator and a testimony.

    - ``transfer_list`` (3-page PDF, restricted): incident and facility;
    - ``bus_photo`` (PNG, public): incident, facility and perpetrator;
    - ``field_notes`` (text, strictly-confidential): incident;
    - ``other_photo`` (PNG, public): facility only;
    - ``unlinked`` (text, public): no link;
    - W-017's testimony (with a sealed identity): incident and facility.
    """
    signer = investigator_signer()
    src = root / "sources"
    src.mkdir(parents=True)
    case = init_case(
        root / "case",
        case_id=CASE_ID,
        title="Transfers of children (fictional test case)",
        signer=signer,
        ern_prefix="UATEST",
        organisation="Example Documentation NGO",
        clock=fixed_clock(),
    )
    try:
        make_pdf(src / "transfer list.pdf", 3)
        make_png(src / "bus_photo.png", (120, 80, 40))
        make_png(src / "other photo.png", (10, 200, 30))
        (src / "field notes.txt").write_text("Field notes, invented.\n", encoding="utf-8")
        (src / "unlinked.txt").write_text("Not linked to anything.\n", encoding="utf-8")
        items = {
            "transfer_list": _ingest_one(case, signer, src / "transfer list.pdf", "restricted"),
            "bus_photo": _ingest_one(case, signer, src / "bus_photo.png", "public"),
            "field_notes": _ingest_one(
                case, signer, src / "field notes.txt", "strictly-confidential"
            ),
            "other_photo": _ingest_one(case, signer, src / "other photo.png", "public"),
            "unlinked": _ingest_one(case, signer, src / "unlinked.txt", "public"),
        }
        place = {"name": "Example Town", "region": "Example Region", "country": "UA"}
        incident = add_entity(
            case,
            signer,
            Incident(
                id="INC-0000",
                title="Transfer from a care home",
                start="2022-05",
                end="2022-05-14",
                place=place,
                crimes=("art. 8(2)(a)(vii)",),
            ),
        )
        facility = add_entity(
            case,
            signer,
            Facility(id="FAC-0000", name="Camp in the forest", type="camp", place=place),
        )
        perpetrator = add_entity(
            case,
            signer,
            Perpetrator(
                id="PER-0000", name="Unit 00000 (fictional)", kind="unit", role="transport"
            ),
        )
        inc, fac, per = incident.id, facility.id, perpetrator.id
        links = {
            "transfer_list": {"incident": [inc], "facility": [fac]},
            "bus_photo": {"incident": [inc], "facility": [fac], "perpetrator": [per]},
            "field_notes": {"incident": [inc]},
            "other_photo": {"facility": [fac]},
        }
        for role, targets in links.items():
            make_links(case, signer, items[role], targets, "shows the transfer (test)")
        document = ""
        if with_testimony:
            add_recipient(case, signer, recipient_key().public)
            path = src / "w-017.json"
            path.write_text(json.dumps(_testimony()), encoding="utf-8")
            recorded = record_testimony(case, signer, path)
            document = recorded.document
            make_links(
                case,
                signer,
                "W-017",
                {"incident": [inc], "facility": [fac]},
                "witness of the transfer",
            )
    finally:
        case.close()
    return BuiltCase(root=root / "case", items=items, witness_document=document)


def _testimony() -> dict[str, object]:
    return {
        "witness_code": "W-017",
        "category": "child-victim",
        "age_at_events": 12,
        "interviewers": ["Investigator A"],
        "interview_date": "2024-03-02",
        "interview_place": {"name": "Field office 2", "country": "UA"},
        "languages": ["uk", "en"],
        "statement": {"language": "uk", "text": "Автобус поїхав уночі (вигадано)."},
        "translations": [
            {"language": "en", "text": "The bus left at night (invented).", "translator": "T-B"}
        ],
        "consent": {
            "icc_proceedings": True,
            "anonymised_publication": False,
            "given_on": "2024-03-02",
        },
        "identity": {
            "name": SECRET_NAME,
            "current_address": SECRET_ADDRESS,
            "contact": SECRET_CONTACT,
        },
    }


def copy_case(built: BuiltCase, target: Path) -> BuiltCase:
    """A byte-for-byte copy of the case directory (what ``cp -a`` makes)."""
    shutil.copytree(built.root, target, symlinks=True)
    return BuiltCase(root=target, items=built.items, witness_document=built.witness_document)


def bag_files(root: Path) -> dict[str, bytes]:
    """Every file of a bag (or any folder) by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def pdf_stream_bytes(path: Path) -> bytes:
    """Every stream of a PDF, decompressed, concatenated (to search text the PDF carries)."""
    chunks = []
    with pikepdf.open(path) as pdf:
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Stream):
                try:
                    chunks.append(obj.read_bytes())
                except pikepdf.PdfError:
                    chunks.append(obj.read_raw_bytes())
    return b"\n".join(chunks)
