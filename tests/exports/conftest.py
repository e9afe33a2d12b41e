"""A fictional bundle for the exports writers: real files, real Ed25519 signatures, fixed time.

Everything here is invented: the case, the organisation ("Example Documentation Group"), the
people ("Investigator A", "Translator B") and the witness code W-017.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from evidence.workspace import Case
from exports.bundle import export_bundle
from exports.model import (
    BundleContent,
    BundleInfo,
    BundleItem,
    BundleTestimony,
    CustodyEntry,
    GroupFacility,
    GroupIncident,
    GroupPerpetrator,
    LinkedEntity,
    LogLeaf,
    Selection,
    Statement,
    Translation,
    VerifierKeyText,
    safe_file_name,
)
from tests.exports import casebuilder
from tests.exports.casebuilder import BuiltCase, build_case, copy_case, investigator_signer

CREATED = "2026-11-24T03:20:00.123456Z"
SEED = bytes(range(32))
KEY_NAME = "exporter-a"
ORIGIN = "example.org/case/UKR-TEST-1"


@dataclass(frozen=True)
class TestKey:
    """A fixed Ed25519 key in the forms the bundle needs."""

    private: Ed25519PrivateKey
    name: str

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def key_hash(self) -> bytes:
        return hashlib.sha256(self.name.encode() + b"\n\x01" + self.public).digest()[:4]

    @property
    def key_id(self) -> str:
        return f"{self.name}+{self.key_hash.hex()}"

    def note_text(self) -> str:
        encoded = base64.b64encode(b"\x01" + self.public).decode()
        return f"{self.key_id}+{encoded}"

    def pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    def signed_note(self, text: bytes) -> bytes:
        sig = base64.b64encode(self.key_hash + self.sign(text)).decode()
        return text + f"\n— {self.name} {sig}\n".encode()

    def verifier(self) -> VerifierKeyText:
        return VerifierKeyText(key_id=self.key_id, note_text=self.note_text(), pem=self.pem())


def fixed_key(seed: bytes = SEED, name: str = KEY_NAME) -> TestKey:
    return TestKey(Ed25519PrivateKey.from_private_bytes(seed), name)


def make_pdf(path: Path, pages: int, *, rotate: int = 0) -> None:
    """A small PDF with one line of text per page."""
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
        if rotate:
            page.obj.Rotate = rotate
    pdf.save(path, deterministic_id=True)


def make_png(path: Path) -> None:
    image = Image.new("RGB", (32, 24), (120, 80, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())


def _hashes(path: Path) -> tuple[str, str, int]:
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest(), len(data)


class LogBuilder:
    """Signed-note leaves and a signed checkpoint, as the custody log writes them."""

    def __init__(self, key: TestKey) -> None:
        self.key = key
        self.leaves: list[LogLeaf] = []

    def append(self, action: str, subject: str, data: dict[str, object]) -> int:
        seq = len(self.leaves)
        prev = hashlib.sha256(b"\x00" + self.leaves[-1].leaf).hexdigest() if self.leaves else ""
        event = {
            "v": 1,
            "seq": seq,
            "time": f"2026-11-2{seq % 3}T10:00:00.000000Z",
            "case": "UKR-TEST-1",
            "action": action,
            "actor": self.key.key_id,
            "subject": subject,
            "data": data,
            "prev": prev,
        }
        text = json.dumps(event, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        # The proof needs the final checkpoint: a placeholder until proven() fills it in.
        self.leaves.append(LogLeaf(seq=seq, leaf=self.key.signed_note(text), proof_text="-"))
        return seq

    def root(self) -> bytes:
        return hashlib.sha256(
            b"".join(hashlib.sha256(b"\x00" + leaf.leaf).digest() for leaf in self.leaves)
        ).digest()

    def checkpoint(self) -> bytes:
        text = f"{ORIGIN}\n{len(self.leaves)}\n{base64.b64encode(self.root()).decode()}\n"
        return self.key.signed_note(text.encode())

    def proven(self) -> tuple[LogLeaf, ...]:
        """The leaves, each with its proof file against the final checkpoint."""
        return tuple(
            leaf.model_copy(update={"proof_text": self.proof_text(leaf.seq)})
            for leaf in self.leaves
        )

    def proof_text(self, seq: int) -> str:
        leaf = self.leaves[seq].leaf
        return (
            "c2sp.org/tlog-proof@v1\n"
            f"index {seq}\n"
            f"leaf {base64.b64encode(leaf).decode()}\n"
            f"{base64.b64encode(hashlib.sha256(b'sibling').digest()).decode()}\n\n"
            + self.checkpoint().decode()
        )


INCIDENT_LINK = LinkedEntity(kind="incident", id="INC-1", title="Transfer from a school")


def _custody(seq: int, action: str, summary: str) -> CustodyEntry:
    return CustodyEntry(
        seq=seq,
        time=f"2026-11-2{seq % 3}T10:00:00.000000Z",
        action=action,
        actor="Investigator A (exporter-a)",
        summary=summary,
    )


@dataclass(frozen=True)
class Fixture:
    content: BundleContent
    key: TestKey
    sources: Path


def build_content(root: Path, *, extra_items: int = 0, profile: str = "otp") -> Fixture:
    """Write the source files under ``root`` and build the fictional bundle over them."""
    key = fixed_key()
    log = LogBuilder(key)
    log.append("key.enrolled", key.key_id, {"verifier": key.note_text(), "role": "exporter"})
    src = root / "sources"
    src.mkdir(parents=True, exist_ok=True)

    pdf_path = src / "transfer list (scan).pdf"
    make_pdf(pdf_path, pages=3)
    png_path = src / "bus_photo.png"
    make_png(png_path)
    txt_path = src / "notes ü.txt"
    txt_path.write_text("Field notes, invented for tests.\nSecond line.\n", encoding="utf-8")

    specs = [
        (
            pdf_path,
            "application/pdf",
            "Document",
            ("UKR-DEP-000010", "UKR-DEP-000011", "UKR-DEP-000012"),
            3,
        ),
        (png_path, "image/png", "Photograph", ("UKR-DEP-000013",), None),
        (txt_path, "text/plain", "Field notes", ("UKR-DEP-000014",), None),
    ]
    for n in range(extra_items):
        path = src / f"extra-{n:05d}.txt"
        path.write_text(f"Extra invented note {n}\n", encoding="utf-8")
        specs.append((path, "text/plain", "Field notes", (f"UKR-DEP-{100000 + n:06d}",), None))

    items = []
    for path, mime, kind, erns, pages in specs:
        sha256, sha512, size = _hashes(path)
        seq = log.append("item.ingested", sha256, {"name": path.name, "size": str(size)})
        seq2 = log.append("item.accessed", sha256, {"purpose": "review"})
        items.append(
            {
                "item_id": sha256,
                "erns": erns,
                "title": f"{kind}: {path.stem}",
                "date": "2022-05-14",
                "mime": mime,
                "kind": kind,
                "source": "Example Documentation Group",
                "collector": "Investigator A",
                "author": "Unknown",
                "language": "uk",
                "confidentiality": "restricted",
                "sha256": sha256,
                "sha512": sha512,
                "size": size,
                "pages": pages,
                "description": "Invented test material.",
                "original_path": path,
                "bag_name": safe_file_name(erns[0], path.name),
                "stamped": mime == "application/pdf",
                "linked": (INCIDENT_LINK,),
                "custody": (
                    _custody(seq, "item.ingested", f"ingested {path.name}"),
                    _custody(seq2, "item.accessed", "opened for review"),
                ),
                "leaf_seq": seq,
            }
        )
    items[1]["related_erns"] = ("UKR-DEP-000010",)
    items[1]["duration"] = None

    statement_doc = src / "W-017 statement.json"
    statement_doc.write_text(
        json.dumps({"witness": "W-017", "statement": "I saw the bus leave at night."}),
        encoding="utf-8",
    )
    t_sha256, t_sha512, t_size = _hashes(statement_doc)
    t_seq = log.append("testimony.recorded", t_sha256, {"witness_code": "W-017"})
    checkpoint = log.checkpoint()

    bundle_items = tuple(
        BundleItem(**spec, proof_text=log.proof_text(spec["leaf_seq"])) for spec in items
    )
    testimony = BundleTestimony(
        witness_code="W-017",
        ern="UKR-DEP-000020",
        category="child victim",
        interview_date="2024-03-02",
        languages=("uk", "en"),
        statement=Statement(language="uk", text="Автобус поїхав уночі. <b>not markup</b>"),
        translations=(
            Translation(language="en", text="The bus left at night.", translator="Translator B"),
        ),
        consent="use in ICC proceedings; sharing with named organisations",
        confidentiality="confidential",
        linked=(LinkedEntity(kind="facility", id="FAC-2", title="Camp in the forest"),),
        related_erns=("UKR-DEP-000013",),
        custody=(_custody(t_seq, "testimony.recorded", "statement recorded"),),
        document_path=statement_doc,
        bag_name=safe_file_name("UKR-DEP-000020", statement_doc.name),
        sha256=t_sha256,
        sha512=t_sha512,
        size=t_size,
        leaf_seq=t_seq,
        proof_text=log.proof_text(t_seq),
        protected_annex=b"sealed-envelope-bytes" if profile == "otp" else None,
    )
    perpetrator = GroupPerpetrator(
        id="PER-3",
        title="Unit 00000 (fictional)",
        role="transport",
        affiliation="fictional unit",
        liability="art. 25(3)(a)",
        item_erns=("UKR-DEP-000010",),
    )
    facility = GroupFacility(
        id="FAC-2",
        title="Camp in the forest",
        facility_type="camp",
        place="Region X",
        dates="2022-05 – 2022-09",
        item_erns=("UKR-DEP-000013",),
        testimony_erns=("UKR-DEP-000020",),
        perpetrators=(perpetrator,),
    )
    incident = GroupIncident(
        id="INC-1",
        title="Transfer from a school",
        start_date="2022-05-14",
        end_date="2022-05-15",
        place="Town Y, Region X, Ukraine",
        crimes=("art. 8(2)(a)(vii)", "art. 7(1)(d)"),
        item_erns=("UKR-DEP-000010", "UKR-DEP-000013"),
        facilities=(facility,),
    )
    info = BundleInfo(
        bundle_id="UKR-TEST-1-B0001",
        case_id="UKR-TEST-1",
        case_title="Transfers of children (test)",
        organisation="Example Documentation Group",
        profile=profile,
        created=CREATED,
        selection=Selection(incidents=("INC-1",)),
        checkpoint_origin=ORIGIN,
        checkpoint_size=len(log.leaves),
        checkpoint_root=log.root().hex(),
        exporter_key_id=key.key_id,
        contact_name="Investigator A",
    )
    content = BundleContent(
        info=info,
        items=bundle_items,
        testimonies=(testimony,),
        groups=(incident,),
        custody_events=log.proven(),
        verifier_keys=(key.verifier(),),
        checkpoint_note=checkpoint,
    )
    return Fixture(content=content, key=key, sources=src)


@pytest.fixture
def bundle(tmp_path: Path) -> Fixture:
    return build_content(tmp_path)


@pytest.fixture
def make_bundle(tmp_path: Path) -> Callable[..., Fixture]:
    def make(**kwargs: object) -> Fixture:
        return build_content(tmp_path / "case", **kwargs)  # type: ignore[arg-type]

    return make


# --- an exported bundle, for the audit tests ---------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes, bytes]:
    """A restricted bundle of INC-0001 (bag and zip), a checkpoint before it and the latest."""
    root = tmp_path_factory.mktemp("audit")
    built: BuiltCase = build_case(root / "built")
    case: Case = copy_case(built, root / "case").open()
    try:
        before = case.log.latest_checkpoint()
        result = export_bundle(
            case,
            investigator_signer(),
            selection=Selection(incidents=("INC-0001",)),
            profile="restricted",
            out_dir=root / "out" / "bundle",
            zip_path=root / "out" / "bundle.zip",
            created=casebuilder.CREATED,
        )
        after = case.log.latest_checkpoint()
    finally:
        case.close()
    assert result.zip_path is not None and before is not None and after is not None
    return result.bag, result.zip_path, before, after


@pytest.fixture
def bag(exported: tuple[Path, Path, bytes, bytes], tmp_path: Path) -> Path:
    """A private copy of the bag to tamper with."""
    target = tmp_path / "bundle"
    shutil.copytree(exported[0], target)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target
