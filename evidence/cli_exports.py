"""The ``export`` and ``audit`` commands of the ``evidence`` command line (SPEC sections 7, 8).

Thin like the rest of the command line: each command parses its options, calls one library
function (:func:`exports.bundle.export_bundle`, :func:`exports.audit.audit_bundle`) and renders
the result. ``audit`` needs no case directory.

The ``exports`` package is imported inside the commands: it loads Jinja2, pikepdf and (for the
PDF index) WeasyPrint, which ``evidence --help`` and every other command do not need.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from chain_of_custody import EXIT_PROBLEMS
from evidence import keystore
from evidence._cli_common import (
    Bar,
    CaseOpt,
    JsonOpt,
    KeyOpt,
    PassOpt,
    err,
    open_case_dir,
    out,
    print_json,
)
from evidence.errors import InputError
from evidence.models import MAX_FRACTION_DIGITS, MOMENT, moment_at
from evidence.recipients import read_public_key

if TYPE_CHECKING:
    from exports.audit import AuditReport
    from exports.bundle import ExportResult
    from exports.model import Profile

PROFILES: tuple[Profile, ...] = ("otp", "restricted", "public")

_CREATED_EXAMPLES = "e.g. 2026-11-24T03:20:00Z or 2026-11-24T05:20:00+02:00"


def created_in_utc(value: str) -> str:
    """The ``--created`` time ``value`` (RFC 3339, in UTC or with an offset) in UTC, as
    ``YYYY-MM-DDTHH:MM:SS[.fraction]Z``: the form bundles carry.

    A time with an offset comes back as the same instant in UTC, and a fraction of a second
    loses its trailing zeros (``.500`` is ``.5``, ``.0`` is nothing), so that the same instant
    gives the same bundle whichever way it is written. A time without a zone is refused: it
    names no instant.
    """
    # RFC 3339 lets "T" and "Z" be written in lower case; the digits are ASCII only.
    found = MOMENT.fullmatch(value.upper()) if value.isascii() else None
    if found is None:
        raise InputError(
            f"--created {value!r} is not an RFC 3339 date and time",
            f"write a date and time with Z (UTC) or an offset from UTC, {_CREATED_EXAMPLES}",
        )
    if found["zone"] is None:
        raise InputError(
            f"--created {value!r} has no time zone, so it names no instant",
            f"add Z for UTC or the offset from UTC, {_CREATED_EXAMPLES}",
        )
    if len(found["fraction"] or "") > 1 + MAX_FRACTION_DIGITS:
        raise InputError(
            f"--created {value!r} has more than {MAX_FRACTION_DIGITS} digits after the second",
            f"give at most {MAX_FRACTION_DIGITS} (nanoseconds), {_CREATED_EXAMPLES}",
        )
    try:
        in_utc = moment_at(found).astimezone(UTC)
    except (ValueError, OverflowError):
        # A day, an hour or an offset out of range, a leap second, or a year outside 1-9999
        # in UTC.
        raise InputError(
            f"--created {value!r} is not a valid date and time",
            f"check the month, day, hours, minutes, seconds and offset, {_CREATED_EXAMPLES}",
        ) from None
    # The fraction from its digits, not from the datetime (which keeps six of up to nine).
    whole = in_utc.replace(tzinfo=None, microsecond=0).isoformat()
    fraction = (found["fraction"] or "").rstrip("0").rstrip(".")
    return f"{whole}{fraction}Z"


@contextmanager
def _steps() -> Iterator[Callable[[str], None]]:
    """A one-line status on a terminal showing the current export step; nothing otherwise."""
    if not err.is_terminal:
        yield lambda _label: None
        return
    with err.status("export") as status:
        yield lambda label: status.update(f"export: {label}")


def export_cmd(
    incident: Annotated[
        list[str] | None,
        typer.Option("--incident", metavar="<id>", help="Incident id (repeatable)."),
    ] = None,
    facility: Annotated[
        list[str] | None,
        typer.Option("--facility", metavar="<id>", help="Facility id (repeatable)."),
    ] = None,
    perpetrator: Annotated[
        list[str] | None,
        typer.Option("--perpetrator", metavar="<id>", help="Alleged perpetrator id (repeatable)."),
    ] = None,
    everything: Annotated[bool, typer.Option("--all", help="Export every item.")] = False,
    profile: Annotated[
        str, typer.Option("--profile", help="otp, restricted or public.", show_default=False)
    ] = "",
    recipient: Annotated[
        Path | None,
        typer.Option(
            "--recipient",
            metavar="<file>",
            help="Public key file of the recipient of protected annexes (otp profile).",
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="<dir>", help="New directory for the bag.", show_default=False
        ),
    ] = None,
    make_zip: Annotated[bool, typer.Option("--zip", help="Also write DIR.zip.")] = False,
    created: Annotated[
        str | None,
        typer.Option(
            "--created",
            metavar="<time>",
            help="Bundle time, RFC 3339 with Z or an offset from UTC (e.g. 2026-11-24T03:20:00Z "
            "or 2026-11-24T05:20:00+02:00; the bundle gives it in UTC), not earlier than the "
            "latest event the bundle holds and not later than now; default: now. The same case "
            "state, selection, profile and time give a byte-identical bundle, however the time "
            "is written.",
        ),
    ] = None,
    case_dir: CaseOpt = Path(),
    key: KeyOpt = None,
    passphrase_file: PassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a submission bundle (BagIt bag, optionally zipped) and record the export."""
    from exports.bundle import export_bundle  # noqa: PLC0415 - see the module docstring
    from exports.model import Selection  # noqa: PLC0415

    chosen = next((p for p in PROFILES if p == profile), None)
    if chosen is None:
        raise InputError(
            f"--profile {profile!r} is not known" if profile else "--profile is required",
            "use --profile otp, restricted or public",
        )
    if out_dir is None:
        raise InputError("--out is required", "give a new directory for the bag with --out DIR")
    created_utc = created_in_utc(created) if created is not None else None
    selection = Selection(
        incidents=tuple(incident or ()),
        facilities=tuple(facility or ()),
        perpetrators=tuple(perpetrator or ()),
        all=everything,
    )
    public_key = read_public_key(recipient) if recipient is not None else None
    zip_path = out_dir.with_name(out_dir.name + ".zip") if make_zip else None
    with open_case_dir(case_dir) as case:
        signer = keystore.unlock(case, key, passphrase_file)
        with _steps() as step:
            result = export_bundle(
                case,
                signer,
                selection=selection,
                profile=chosen,
                out_dir=out_dir,
                zip_path=zip_path,
                created=created_utc,
                recipient=public_key,
                progress=step,
            )
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if as_json:
        print_json(result.as_json())
    else:
        _print_export(result)


def _print_export(result: ExportResult) -> None:
    out.print(f"Bundle {result.bundle_id} ({result.profile}) written to {escape(str(result.bag))}")
    if result.zip_path is not None:
        out.print(f"Zip: {escape(str(result.zip_path))}")
    out.print(
        f"{result.items} item(s), {result.testimonies} testimony(ies), "
        f"{result.new_erns} new ERN assignment(s); checkpoint size {result.checkpoint_size}; "
        f"recorded as seq {result.event_seq}"
    )


def audit_cmd(
    bundle: Annotated[Path, typer.Argument(help="The bundle: a bag directory or its zip.")],
    trust: Annotated[
        list[Path] | None,
        typer.Option(
            "--trust",
            metavar="<file>",
            help="Verifier key file you trust (`evidence keys export`, note or PEM; repeatable).",
        ),
    ] = None,
    since: Annotated[
        Path | None,
        typer.Option(
            "--since",
            metavar="<file>",
            help="An earlier signed checkpoint the bundle's log must extend.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a bundle offline: bag, signatures, events, proofs and checkpoint (exit 1 if not)."""
    from exports.audit import (  # noqa: PLC0415 - see the docstring
        audit_bundle,
        load_since_checkpoint,
        load_trusted_key,
        refuse_trust_inside,
    )

    refuse_trust_inside(bundle, trust or [])
    trusted = [load_trusted_key(path) for path in trust or []]
    earlier = load_since_checkpoint(since) if since is not None else None
    bar = Bar("audit")
    try:
        report = audit_bundle(bundle, trusted, since=earlier, progress=bar)
    finally:
        bar.close()
    for warning in report.warnings:
        err.print(f"[bold yellow]warning:[/] {escape(warning)}")
    if as_json:
        print_json(report.as_json())
    else:
        _print_audit(report, given_trust=bool(trust))
    if not report.ok:
        raise typer.Exit(EXIT_PROBLEMS)


def _print_audit(report: AuditReport, *, given_trust: bool) -> None:
    label = report.bundle_id or report.bundle
    if report.ok:
        out.print(
            f"[green]OK[/]: bundle {escape(label)}: {report.files} files, {report.originals} "
            f"originals, {report.leaves} events with {report.event_proofs} event proofs and "
            f"{report.proofs} item proofs verified against the checkpoint of size "
            f"{report.checkpoint_size}"
        )
        if report.since_size == report.checkpoint_size:
            out.print(
                f"The earlier checkpoint is the same as the bundle's (size {report.since_size}, "
                "same root): no event was added since."
            )
        elif report.since_size is not None:
            out.print(
                f"The log extends the earlier checkpoint of size {report.since_size} "
                "(consistency proof verified)."
            )
    else:
        out.print(f"[red]PROBLEMS[/]: bundle {escape(label)}: {len(report.findings)} finding(s)")
        for line in report.finding_lines():
            out.print(f"  {escape(line)}")
        out.print(
            "Until each finding is explained, do not rely on this copy: keep it unchanged for "
            "the record and, where a file differs or is missing, ask the exporting organisation "
            "for the bundle again by another channel and audit that copy."
        )
    # Which keys the result rests on, to compare with those the exporting organisation gave.
    whose = "Trusted key" if given_trust else "Key relied on (the bundle's own, see the warning)"
    for key in report.trusted_keys:
        out.print(f"{whose}: {escape(key.key_id)}, SHA-256 fingerprint {key.fingerprint}")


def register(app: typer.Typer) -> None:
    """Add ``export`` and ``audit`` to the ``evidence`` program."""
    app.command("export")(export_cmd)
    app.command("audit")(audit_cmd)
