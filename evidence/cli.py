"""The ``evidence`` command line (SPEC section 8).

Thin by design: each command parses its options, calls one library function and renders the
result. Results go to stdout, progress and diagnostics to stderr. Errors derived from
``CustodyError`` are printed with their hint and turned into the exit codes of SPEC section 8 in
one place (:class:`_Group`); anything else is a bug and shows its traceback only with ``--debug``.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import inspect
import json
import os
import signal
import sqlite3
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

# typer ships its own copy of click and does not export the current context.
from typer._click.globals import get_current_context
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.main import get_command_name

from chain_of_custody import (
    EXIT_ENVIRONMENT,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    CustodyError,
    Signer,
    VerifierKey,
    generate_signer,
    load_signer,
    parse_leaf,
    save_signer,
)
from chain_of_custody.store import catalog_problem
from evidence import cli_exports, cli_records, custody, keystore
from evidence._cli_common import (
    ROOT_CASE,
    Bar,
    CaseOpt,
    JsonOpt,
    KeyOpt,
    PassOpt,
    err,
    open_case_dir,
    out,
    print_json,
    read_file,
)
from evidence.entities import get_entity
from evidence.errors import EnvironmentProblem, InputError
from evidence.ingest import IngestReport, ingest
from evidence.loaders import parse_options
from evidence.models import ItemOptions
from evidence.verify import CaseReport, verify_case
from evidence.workspace import (
    DISTRIBUTION,
    Case,
    init_case,
    interrupted_init_keys,
    toolkit_version,
)


class _Group(TyperGroup):
    """Root group: the one place where errors become messages and exit codes.

    It also sees every command of the program once it is built, which makes it the place for
    what holds for all of them, wherever they are declared: a ``--case`` given before a command
    that works in no case is refused (:func:`_refuse_case_before`), help shows what an option
    takes rather than its Python type (:func:`_show_what_options_take`) and wraps the
    paragraphs of a command's help as paragraphs (:func:`_reflowed`), and no path is checked
    before the command reads it (:func:`_paths_unchecked`).
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for command in _commands_under(self):
            _paths_unchecked(command)
            if command.help:
                command.help = _reflowed(command.help)
            if not isinstance(command, TyperGroup) and not _takes_a_case(command):
                _refuse_case_before(command)

    # The context is click's own (vendored by typer under a private name), hence Any.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # Help is written while the arguments are parsed (the root's, a group's or a
        # command's), so the options' labels are set before.
        _show_what_options_take(self, ctx)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CustodyError as exc:
            _fail(ctx, exc)
        except sqlite3.DatabaseError as exc:
            # The catalog is not as the toolkit made it (a table or column changed or dropped,
            # a damaged file): an environment problem to look into, not a crash to report.
            _fail(ctx, catalog_problem(exc))
        except PermissionError as exc:
            # A file or folder the toolkit may not read or write is a problem of the
            # environment (SPEC section 8), wherever the code met it without saying so.
            _fail(ctx, _permission_problem(exc))
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except BrokenPipeError:
            # The reader of stdout went away (`evidence log show | head`): not an error of ours.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(EXIT_OK) from None
        except KeyboardInterrupt as exc:
            # The terminal may be gone (SIGHUP): the exit status still says what happened.
            # A stop that came once the work was complete says what was done (``done``).
            done = getattr(exc, "done", None)
            with contextlib.suppress(OSError):
                err.print(
                    f"interrupted once the work was done: {escape(done)}; nothing needs to be "
                    "run again"
                    if done
                    else "interrupted: nothing half-written is left; run the command again"
                )
            raise typer.Exit(128 + getattr(exc, "signum", signal.SIGINT)) from None
        except Exception as exc:
            if _debug(ctx):
                raise
            # Only the type is shown: an unexpected message could carry input data.
            err.print(
                f"[bold red]unexpected error[/] ({type(exc).__name__}); "
                "run again with --debug for the traceback and report it"
            )
            raise typer.Exit(EXIT_ENVIRONMENT) from None


def _fail(ctx: typer.Context, exc: CustodyError) -> NoReturn:
    """Print ``exc`` as a message and its hint (and with --debug the traceback) and exit."""
    if _debug(ctx):
        traceback.print_exc()
    err.print(f"[bold red]error:[/] {escape(exc.message)}")
    if exc.hint:
        err.print(f"[dim]hint:[/] {escape(exc.hint)}")
    raise typer.Exit(exc.exit_code) from None


def _permission_problem(exc: PermissionError) -> EnvironmentProblem:
    named = exc.filename if exc.filename is not None else "a file or folder"
    return EnvironmentProblem(
        f"permission denied: {os.fsdecode(named) if isinstance(named, bytes) else named}",
        "check that you may read it (and, for a command that writes, write it), then run the "
        "command again",
    )


def _debug(ctx: typer.Context) -> bool:
    root = ctx.find_root()
    return bool(root.obj and root.obj.get("debug"))


def _commands_under(command: Any) -> Iterator[Any]:
    """``command`` and every group and command below it."""
    yield command
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            yield from _commands_under(sub)


def _reflowed(text: str) -> str:
    """A command's help (its docstring) with the line breaks inside each paragraph made spaces.

    typer's help keeps the line breaks of every paragraph after the first, so a docstring
    wrapped at the width of the code would show its breaks in the middle of the terminal's
    lines. A paragraph starting with ``\\b`` keeps its lines, as click documents.
    """
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        paragraph if paragraph.startswith("\b") else " ".join(paragraph.split("\n"))
        for paragraph in paragraphs
    )


def _paths_unchecked(command: Any) -> None:
    """Let typer check none of the paths ``command`` takes before it runs.

    typer checks by default that a path which exists may be read, and refuses one that may
    not with a usage error (exit 2) in its own words; a missing file would then be the
    toolkit's environment error (exit 3) and an unreadable one a usage error. The code that
    reads each file says what is wrong instead, with the exit code of SPEC section 8 (3 for a
    permission) and what to do; and an unreadable file given to ``ingest`` is one refused
    input of the batch, not the end of it.
    """
    for param in command.params:
        described = getattr(param, "type_descriptor", None)
        if described is not None:
            info = described.parameter_info
            info.exists = info.readable = info.writable = False


def _takes_a_case(command: Any) -> bool:
    return any("--case" in param.opts for param in command.params)


def _refuse_case_before(command: Any) -> None:
    """Make ``command``, which works in no case, refuse a ``--case`` given before it.

    The option would do nothing there (``evidence --case X init DIR`` makes the case in DIR,
    ``audit`` reads a bundle alone): refused, as the same option after the command is, rather
    than silently ignored.
    """
    run: Callable[..., Any] | None = command.callback
    if run is None:
        return

    @functools.wraps(run)
    def refusing(*args: Any, **kwargs: Any) -> Any:
        ctx = get_current_context()
        given = ctx.meta.get(ROOT_CASE)
        if given is not None:
            raise InputError(
                f"`{ctx.command_path}` takes no --case, so the --case {given} before it has no use",
                f"leave --case out; `{ctx.command_path} --help` shows what the command takes",
            )
        return run(*args, **kwargs)

    command.callback = refusing


# What an option's value is, shown in help instead of the Python type typer shows (``<str>``,
# ``<list[str]>``: a repeatable option says so in its help). Options that take a date, a file or
# an id say so with their own metavar.
_VALUE_LABELS = {
    "<str>": "<text>",
    "<list[str]>": "<text>",
    "<int>": "<number>",
    "<list[Path]>": "<path>",
}


@dataclass(frozen=True)
class _Label:
    """What an argument's help shows as the type of its value."""

    text: str

    def __call__(self, ctx: Any = None) -> str:
        return self.text


def _show_what_options_take(root: Any, ctx: Any) -> None:
    """Let help show flags (``--json``, ``--help``) bare, not as ``--json <bool>``, and a
    value that is text as ``<text>``, not ``<str>``.

    typer's help shows an option's metavar, else its type, and a flag's type is ``bool``,
    which reads as if the flag took a value. An empty metavar shows nothing. An argument's
    metavar would be its name, so its label replaces the type typer shows for it. Each
    command's ``--help`` is made here, with the names it would get from its own context (which
    inherits them from the root's), and kept by the command for its own help.
    """
    for command in _commands_under(root):
        help_option = command.get_help_option(ctx)
        for param in [*command.params, help_option]:
            if isinstance(param, TyperArgument):
                label = param.display_type(ctx)
                # typer asks the argument itself for the label (it has no setting for it).
                vars(param)["display_type_rich"] = _Label(_VALUE_LABELS.get(label, label))
            elif isinstance(param, TyperOption) and param.metavar is None:
                label = "" if param.is_flag else param.display_type(ctx)
                param.metavar = _VALUE_LABELS.get(label, label)


app = typer.Typer(
    cls=_Group,
    help="Evidence locker: ingest, sign, verify and export evidence for international courts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Manage investigators' signing keys.", no_args_is_help=True)
log_app = typer.Typer(
    help="Read the custody log: events, checkpoints, proofs.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(log_app, name="log")


def _print_version(value: bool) -> None:
    if value:
        out.print(f"{DISTRIBUTION} {toolkit_version()}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version of the toolkit and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
    case_dir: Annotated[
        Path | None,
        typer.Option(
            "--case",
            help="The case directory of the command, as its own --case (which wins if both "
            "are given); default: EVIDENCE_CASE, else the current directory.",
            show_default=False,
        ),
    ] = None,
) -> None:
    ctx.obj = {"debug": debug}
    if case_dir is not None:
        ctx.meta[ROOT_CASE] = case_dir


# --- init and keys ------------------------------------------------------------------------


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="New (or empty) directory for the case.")],
    case_id: Annotated[str, typer.Option("--case-id", help="Case identifier, e.g. UA-DEP-0001.")],
    title: Annotated[str, typer.Option("--title", help="Title of the case.")],
    key_name: Annotated[
        str, typer.Option("--key-name", help="Name of the investigator's new key.")
    ] = "investigator",
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="<file>",
            help="Use this existing private key instead of generating one.",
        ),
    ] = None,
    ern_prefix: Annotated[
        str | None, typer.Option("--ern-prefix", help="Prefix of evidence reference numbers.")
    ] = None,
    organisation: Annotated[
        str, typer.Option("--organisation", help="Organisation named in bundles.")
    ] = "",
    passphrase_file: PassOpt = None,
) -> None:
    """Create a case and enrol the investigator's key as its first event."""

    def make(signer: Signer, staged: keystore.StagedKey | None = None) -> Case:
        return init_case(
            directory,
            case_id=case_id,
            title=title,
            signer=signer,
            ern_prefix=ern_prefix,
            organisation=organisation,
            before_placing=None if staged is None else staged.publish,
            after_placing=None if staged is None else staged.keep,
        )

    if key is not None:
        signer = keystore.unlock_with(
            lambda given: load_signer(key, given), keystore.read_passphrase(passphrase_file), key
        )
        key_path = key
        case = make(signer)
    else:
        key_path = keystore.default_key_path(key_name)
        if key_path.exists():
            # Left by an init of this same case that was killed between naming the key file
            # and placing the case: the key signs nothing that exists, so it is used again.
            signer = _key_of_interrupted_init(directory, key_name, key_path, passphrase_file)
            case = make(signer)
        else:
            signer = generate_signer(key_name)
            passphrase = keystore.read_passphrase(passphrase_file, new=True)
            # The key file takes its name just before the case takes its own, and is removed
            # again if the case does not: a failed or stopped init leaves neither.
            with keystore.new_key_files(
                key_path,
                lambda temp: save_signer(signer, temp, passphrase),
                signer.verifier.to_note_text(),
            ) as staged:
                case = make(signer, staged)
    case.close()
    out.print(f"Created case {case_id} in {directory}")
    out.print(f"Signing key {signer.verifier.key_id} ({key_path}) enrolled as seq 0")


def _key_of_interrupted_init(
    directory: Path, key_name: str, key_path: Path, passphrase_file: Path | None
) -> Signer:
    """The key at ``key_path`` if a killed `init` of ``directory`` made it (and it opens with
    the passphrase); else the refusal of a key name that is taken."""
    taken = InputError(
        f"a key named {key_name!r} exists already at {key_path}",
        "use it with --key, or choose another --key-name",
    )
    left = interrupted_init_keys(directory)
    if not left:
        raise taken
    signer = keystore.unlock_with(
        lambda given: load_signer(key_path, given),
        keystore.read_passphrase(passphrase_file),
        key_path,
    )
    if signer.verifier.key_id not in left:
        raise taken
    err.print(f"note: using the key {key_path} made by an earlier, interrupted run of this init")
    return signer


@keys_app.command("generate")
def keys_generate(
    name: Annotated[str, typer.Option("--name", help="Key name (no spaces or '+').")],
    out_file: Annotated[
        str | None,
        typer.Option(
            "--out",
            metavar="<path>",
            help="Write the private key as NAME.key into this folder (an existing folder, "
            "or a path ending in /, created if needed), or to this file (a name ending in "
            ".key); never inside a case folder. Default: your key folder, $EVIDENCE_HOME/keys.",
            show_default=False,
        ),
    ] = None,
    passphrase_file: PassOpt = None,
) -> None:
    """Generate a new investigator key; prints its public key for enrolment.

    The public key is written beside the private key (NAME.pub). Commands that sign look for
    your key in your key folder: a key made there for a colleague is one more key to choose
    from, and they then ask which one with --key. Make a colleague's key with --out (a folder
    of theirs, such as a USB stick: --out /media/usb/; or a file: --out FILE.key) and hand it
    over.
    """
    path = keystore.new_key_path(name, out_file)
    signer = generate_signer(name)
    passphrase = keystore.read_passphrase(passphrase_file, new=True)
    pub = keystore.create_key(signer, path, passphrase)
    out.print(signer.verifier.to_note_text())
    err.print(f"private key: {path}\npublic key: {pub} (give it to an enrolled investigator)")
    others = keystore.other_keys_in_folder(path)
    if others:
        names = ", ".join(p.name for p in others)
        err.print(
            f"note: your key folder now holds other keys too ({names}); commands that sign "
            "will ask which key to use (--key FILE or EVIDENCE_KEY) when several are enrolled "
            "in a case. A key for a colleague belongs with them: make it with --out."
        )


@keys_app.command("list")
def keys_list(case_dir: CaseOpt = Path(), as_json: JsonOpt = False) -> None:
    """List the keys enrolled in the case."""
    with open_case_dir(case_dir) as case:
        keys = custody.list_keys(case)
    if as_json:
        print_json([k.__dict__ for k in keys])
        return
    table = Table("key id", "role", "enrolled (seq)", "by", "revoked (seq)")
    for k in keys:
        table.add_row(
            k.key_id,
            k.role,
            str(k.enrolled_seq),
            k.enrolled_by,
            "" if k.revoked_seq is None else str(k.revoked_seq),
        )
    out.print(table)


@keys_app.command("export")
def keys_export(
    key_id: Annotated[str, typer.Argument(help="Key id (name+hash) of an enrolled key.")],
    fmt: Annotated[str, typer.Option("--format", help="note or pem.")] = "note",
    case_dir: CaseOpt = Path(),
) -> None:
    """Print an enrolled key's public key in signed-note or PEM form."""
    with open_case_dir(case_dir) as case:
        row = case.db.execute("SELECT verifier FROM keys WHERE key_id = ?", [key_id]).fetchone()
    if row is None:
        raise InputError(f"unknown key {key_id!r}", "see `evidence keys list`")
    verifier = VerifierKey.from_note_text(row[0])
    if fmt == "pem":
        sys.stdout.write(verifier.to_pem().decode())
    elif fmt == "note":
        sys.stdout.write(verifier.to_note_text() + "\n")
    else:
        raise InputError(f"--format {fmt!r} is not known", "use note or pem")


@keys_app.command("enrol")
def keys_enrol(
    public_key: Annotated[Path, typer.Argument(help="The .pub file of the key to enrol.")],
    role: Annotated[str, typer.Option("--role", help="Role of the key holder.")] = "investigator",
    case_dir: CaseOpt = Path(),
    key: KeyOpt = None,
    passphrase_file: PassOpt = None,
) -> None:
    """Enrol another investigator's public key (signed by your enrolled key)."""
    give = "give the .pub file written by `evidence keys generate` or `evidence keys export`"
    try:
        text = read_file(public_key, "the public key file", give).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InputError(f"{public_key} is not a public key file (not text)", give) from None
    if "PRIVATE KEY" in text or text.startswith("Key-Name:"):
        # Never echo any of it: the file holds a private key.
        raise InputError(f"{public_key} is a private key file, not a public key", give)
    verifier = VerifierKey.from_note_text(text)
    with open_case_dir(case_dir) as case:
        signer = keystore.unlock(case, key, passphrase_file)
        seq = custody.enrol_key(case, signer, verifier, role)
    out.print(f"Enrolled {verifier.key_id} at seq {seq}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Key id to revoke.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the key is revoked.")],
    case_dir: CaseOpt = Path(),
    key: KeyOpt = None,
    passphrase_file: PassOpt = None,
) -> None:
    """Revoke an enrolled key: signatures made by it after this event are refused."""
    with open_case_dir(case_dir) as case:
        signer = keystore.unlock(case, key, passphrase_file)
        seq = custody.revoke_key(case, signer, key_id, reason)
    out.print(f"Revoked {key_id} at seq {seq}")


@keys_app.command("passphrase")
def keys_passphrase(
    key_file: Annotated[
        Path,
        typer.Argument(
            help="The private key file whose passphrase changes: a signing key (.key file of "
            "`init` or `keys generate`) or a recipient key (`keys recipient add`)."
        ),
    ],
    passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--passphrase-file",
            metavar="<file>",
            help="Read the current passphrase from this file (or set EVIDENCE_PASSPHRASE; "
            "else it is asked on a terminal).",
            show_default=False,
        ),
    ] = None,
    new_passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--new-passphrase-file",
            metavar="<file>",
            help="Read the new passphrase from this file (else it is asked twice on a "
            "terminal; EVIDENCE_PASSPHRASE never gives it).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Change the passphrase of a private key file, e.g. after the old one was exposed.

    The key stays the same: its public key and key id do not change, and nothing is recorded
    in any case. The file is written anew beside the old one and renamed over it, so it is
    always the old file or the new one, whole. A recipient key file has a passphrase of its
    own: change it with this command too. Copies and backups of the old file still open with
    the old passphrase.
    """
    changed = keystore.change_passphrase(key_file, passphrase_file, new_passphrase_file)
    out.print(
        f"Changed the passphrase of {changed.kind} file {changed.path} ({changed.key_id}); "
        "its public key is unchanged"
    )
    err.print(
        "note: copies and backups of the old file still open with the old passphrase: "
        "replace or destroy them"
    )


# --- ingest, list, show ------------------------------------------------------------------


@app.command("ingest")
def ingest_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to ingest.")],
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Walk folders.")] = False,
    follow_symlinks: Annotated[
        bool, typer.Option("--follow-symlinks", help="Follow symlinks inside the given roots.")
    ] = False,
    source: Annotated[str | None, typer.Option(help="Person, organisation or URL.")] = None,
    collected_by: Annotated[str | None, typer.Option(help="Who collected the files.")] = None,
    collected_at: Annotated[
        str | None,
        typer.Option(metavar="<time>", help="When they were collected (RFC 3339 date or time)."),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(help="handed-over, downloaded, captured, received-by-mail or seized."),
    ] = None,
    device: Annotated[str | None, typer.Option(help="Device or capture details.")] = None,
    language: Annotated[str | None, typer.Option(help="Language (e.g. uk, ru, en).")] = None,
    description: Annotated[str | None, typer.Option(help="What the files are.")] = None,
    confidentiality: Annotated[
        str | None, typer.Option(help="public, restricted, confidential, strictly-confidential.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    case_dir: CaseOpt = Path(),
    key: KeyOpt = None,
    passphrase_file: PassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest files into the case: hash, store read-only, sign and log each one."""
    raw: dict[str, Any] = {
        "source": source,
        "collected_by": collected_by,
        "collected_at": collected_at,
        "method": method,
        "device": device,
        "language": language,
        "description": description,
        "confidentiality": confidentiality,
        "tags": tuple(tag or ()),
    }
    names = {field: "--" + field.replace("_", "-") for field in raw}
    names["tags"] = "--tag"
    options = parse_options(ItemOptions, raw, option_names=names)
    bar = Bar("ingest")
    with open_case_dir(case_dir) as case:
        signer = keystore.unlock(case, key, passphrase_file)
        try:
            report = ingest(
                case,
                signer,
                paths,
                options=options,
                recursive=recursive,
                follow_symlinks=follow_symlinks,
                progress=bar,
                private_keys=[key] if key is not None else [],
            )
        finally:
            bar.close()
    if as_json:
        print_json(report.as_json())
    else:
        _print_ingest(report)
    for refusal in report.refused:
        err.print(f"refused: {escape(refusal.path)}: {escape(refusal.reason)}")
    if not report.ok:
        raise typer.Exit(EXIT_PROBLEMS)


def _print_ingest(report: IngestReport) -> None:
    table = Table("result", "count")
    for label, status in (
        ("ingested", "ingested"),
        ("duplicates", "duplicate"),
        ("already in the case", "skipped"),
    ):
        table.add_row(label, str(report.count(status)))
    table.add_row("symlinks recorded", str(len(report.symlinks)))
    table.add_row("symlinks already recorded", str(len(report.symlinks_already_recorded)))
    table.add_row("refused", str(len(report.refused)))
    out.print(table)


@app.command("list")
def list_cmd(
    incident: Annotated[
        list[str] | None, typer.Option("--incident", metavar="<id>", help="Linked to.")
    ] = None,
    facility: Annotated[
        list[str] | None, typer.Option("--facility", metavar="<id>", help="Linked to.")
    ] = None,
    perpetrator: Annotated[
        list[str] | None, typer.Option("--perpetrator", metavar="<id>", help="Linked to.")
    ] = None,
    child: Annotated[
        list[str] | None, typer.Option("--child", metavar="<id>", help="Linked to.")
    ] = None,
    case_dir: CaseOpt = Path(),
    as_json: JsonOpt = False,
) -> None:
    """List the items of the case, optionally filtered by linked entities."""
    links = {
        "incident": incident or [],
        "facility": facility or [],
        "perpetrator": perpetrator or [],
        "child": child or [],
    }
    with open_case_dir(case_dir) as case:
        for kind, ids in links.items():
            for entity_id in ids:
                # An unknown or mistyped id is an input error, not an empty list.
                get_entity(case, entity_id, kind)
        items = custody.list_items(case, links=links)
    if as_json:
        print_json(items)
        return
    table = Table("sha256", "name", "type", "size", "seq", "confidentiality")
    for item in items:
        table.add_row(
            item["sha256"][:16],
            escape(str(item["name"])),
            str(item["mime"]),
            str(item["size"]),
            str(item["ingested_seq"]),
            str(item["confidentiality"] or ""),
        )
    out.print(table)
    err.print(f"{len(items)} item(s)")


@app.command("show")
def show_cmd(
    item: Annotated[str, typer.Argument(help="Item sha256 or a unique prefix.")],
    case_dir: CaseOpt = Path(),
    as_json: JsonOpt = False,
) -> None:
    """Show an item: metadata, derived metadata, custody history and proof. Records nothing."""
    with open_case_dir(case_dir) as case:
        sha = custody.resolve_item(case, item)
        details = custody.show_item(case, sha)
        details["proof"] = custody.proof_text(case, sha).decode()
    if as_json:
        print_json(details)
        return
    skip = {
        "sightings",
        "custody",
        "links",
        "proof",
        "derivatives",
        "derived_from",
        "metadata",
        "name_b64",
    }
    for field, value in details.items():
        if field not in skip and value not in (None, "", [], {}):
            out.print(f"[bold]{field}[/]: {escape(str(value))}")
    if details.get("metadata"):
        out.print("[bold]derived metadata[/]:")
        for field, value in sorted(details["metadata"].items()):
            out.print(f"  {field}: {escape(str(value))}")
    out.print("[bold]custody history[/]:")
    for entry in details["custody"]:
        out.print(
            f"  seq {entry['seq']}  {entry['time']}  {entry['action']}  {entry['actor']}  "
            f"{escape(entry['summary'])}"
        )
    if details.get("derived_from"):
        out.print(f"[bold]derived from[/]: {details['derived_from']}")
    if details["derivatives"]:
        out.print("[bold]derived copies[/]:")
        for sha in details["derivatives"]:
            out.print(f"  {sha}")
    if details["links"]:
        out.print("[bold]links[/]:")
        for link in details["links"]:
            out.print(f"  {link['target']} ({escape(str(link['reason']))})")
    out.print("[bold]proof[/]:")
    out.print(escape(details["proof"]))


# --- log ---------------------------------------------------------------------------------


@log_app.command("show")
def log_show(
    start: Annotated[
        int, typer.Option("--from", metavar="<seq>", help="First seq (from 0, the first event).")
    ] = 0,
    stop: Annotated[
        int | None,
        typer.Option(
            "--to",
            metavar="<seq>",
            help="Last seq, inclusive (default, and at most: the last event).",
            show_default=False,
        ),
    ] = None,
    case_dir: CaseOpt = Path(),
    as_json: JsonOpt = False,
) -> None:
    """Print the events of the custody log."""

    with open_case_dir(case_dir) as case:
        seqs = custody.log_range(case, start, stop)
        for seq, leaf, leaf_hash in case.log.iter_leaves(seqs.start, seqs.stop):
            event = parse_leaf(leaf).event
            if as_json:
                record = {
                    "seq": seq,
                    "leaf_hash": leaf_hash.hex(),
                    "leaf": base64.b64encode(leaf).decode(),
                    "event": event.model_dump(mode="json"),
                }
                sys.stdout.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            else:
                out.print(
                    f"{seq:>6}  {event.time}  {event.action:<20} {event.actor}  "
                    f"{escape(event.subject)}"
                )


@log_app.command("checkpoint")
def log_checkpoint(
    sign: Annotated[bool, typer.Option("--sign", help="Sign a checkpoint now.")] = False,
    case_dir: CaseOpt = Path(),
    key: KeyOpt = None,
    passphrase_file: PassOpt = None,
) -> None:
    """Print the latest signed checkpoint (with --sign, make one of the current size)."""
    with open_case_dir(case_dir) as case:
        if sign:
            note = case.checkpoint(keystore.unlock(case, key, passphrase_file))
        else:
            latest = case.log.latest_checkpoint()
            if latest is None:
                raise InputError("the case has no checkpoint yet", "run with --sign")
            note = latest
    sys.stdout.write(note.decode())


@log_app.command("proof")
def log_proof(
    item: Annotated[str, typer.Argument(help="Item sha256 or a unique prefix.")],
    case_dir: CaseOpt = Path(),
) -> None:
    """Print the inclusion proof file of an item's ingest event."""
    with open_case_dir(case_dir) as case:
        text = custody.proof_text(case, custody.resolve_item(case, item))
    sys.stdout.write(text.decode())


@log_app.command("consistency")
def log_consistency(
    old_checkpoint: Annotated[Path, typer.Argument(help="A checkpoint file kept from before.")],
    case_dir: CaseOpt = Path(),
) -> None:
    """Prove that the log today extends an earlier checkpoint (no rollback, no fork)."""
    note = read_file(old_checkpoint, "the checkpoint file", custody.CHECKPOINT_FILE_HINT)
    with open_case_dir(case_dir) as case:
        result = custody.check_consistency(case, note, str(old_checkpoint))
    out.print(result)


# --- custody -----------------------------------------------------------------------------


@app.command("transfer")
def transfer_cmd(
    items: Annotated[list[str], typer.Argument(help="Items (sha256 or prefix).")],
    to: Annotated[
        str, typer.Option("--to", metavar="<key-id>", help="Key id of the new custodian.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why custody is handed over.")],
    case_dir: CaseOpt = Path(),
    key: KeyOpt = None,
    passphrase_file: PassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a hand-over of custody of items to another enrolled key.

    Only the key holding an item (the key that ingested it, or the last one it was transferred
    to; see `evidence show`) may hand it over: an item held by another key is refused and the
    others are transferred (exit 1). An item whose holder was revoked may be taken over by any
    key that is not revoked; the event names the revoked holder. An item the new custodian
    holds already is left as it is, so running the same transfer again records nothing. An
    unknown item reference stops the command before anything is recorded (exit 2).
    """
    with open_case_dir(case_dir) as case:
        signer = keystore.unlock(case, key, passphrase_file)
        report = custody.transfer(case, signer, items, to, reason)
    if as_json:
        print_json(report.as_json())
    else:
        for outcome in report.outcomes:
            if outcome.status != "refused":
                out.print(escape(outcome.message()))
        if report.seqs:
            seqs = ", ".join(map(str, report.seqs))
            out.print(f"Recorded {len(report.seqs)} transfer(s) to {to} (seq {seqs})")
    for outcome in report.with_status("refused"):
        err.print(f"refused: {escape(outcome.message())}")
    if not report.ok:
        raise typer.Exit(EXIT_PROBLEMS)


@app.command("open")
def open_cmd(
    item: Annotated[str, typer.Argument(help="Item sha256 or prefix.")],
    to: Annotated[Path, typer.Option("--to", help="Folder or file to copy the original to.")],
    purpose: Annotated[str, typer.Option("--purpose", help="Why the original is accessed.")],
    case_dir: CaseOpt = Path(),
    key: KeyOpt = None,
    passphrase_file: PassOpt = None,
) -> None:
    """Copy an original out to a working location and record the access."""
    with open_case_dir(case_dir) as case:
        signer = keystore.unlock(case, key, passphrase_file)
        target = custody.open_item(case, signer, item, to, purpose)
    out.print(f"Copied to {escape(str(target))}")


@app.command("verify")
def verify_cmd(
    since: Annotated[
        list[Path] | None,
        typer.Option(
            "--since", metavar="<file>", help="Earlier checkpoint file(s) the log must extend."
        ),
    ] = None,
    case_dir: CaseOpt = Path(),
    as_json: JsonOpt = False,
) -> None:
    """Verify the whole case: objects, log, signatures, checkpoints and catalog."""
    notes = [
        custody.checked_checkpoint_file(
            read_file(path, "the checkpoint file of --since", custody.CHECKPOINT_FILE_HINT),
            str(path),
        )
        for path in since or []
    ]
    bar = Bar("log", "objects")
    # Read-only, so that opening the case cannot mend (recreate a dropped table or trigger)
    # what verify is about to look at.
    with open_case_dir(case_dir, read_only=True) as case:
        try:
            report = verify_case(case, since=notes, progress=bar)
        finally:
            bar.close()
    if as_json:
        print_json(report.as_json())
    else:
        _print_verify(report)
    if not report.ok:
        raise typer.Exit(EXIT_PROBLEMS)


def _print_verify(report: CaseReport) -> None:
    if report.ok:
        out.print(
            f"[green]OK[/]: case {report.case_id}: {report.events} events and "
            f"{report.objects} objects verified"
        )
        return
    out.print(f"[red]PROBLEMS[/]: case {report.case_id}: {len(report.findings)} finding(s)")
    for line in report.text_lines():
        out.print(f"  {escape(line)}")


cli_records.register(app, keys_app)
cli_exports.register(app)


# The options of the root command (:func:`_root`), which :func:`app_for` steps over to find the
# command: flags, and options that take a value (``--case DIR`` or ``--case=DIR``).
ROOT_FLAGS = frozenset({"--debug", "--version"})
ROOT_VALUE_OPTIONS = frozenset({"--case"})


def _command_words(args: Sequence[str]) -> list[str]:
    """``args`` from the command name on: the root options before it are stepped over."""
    words = list(args)
    while words:
        word = words[0]
        if word in ROOT_FLAGS or word.partition("=")[0] in ROOT_VALUE_OPTIONS:
            # The option alone, or with its value after "=".
            skip = 2 if word in ROOT_VALUE_OPTIONS else 1
            del words[:skip]
        else:
            break
    return words


def app_for(args: Sequence[str]) -> typer.Typer:
    """The root app with only the command that ``args`` run, or the whole app.

    Typer turns the signature of every command into click options at each start, which costs
    more than the work of a small command; only the command being run needs it. ``args`` that
    do not start with a known command name (after the root options, :data:`ROOT_FLAGS` and
    :data:`ROOT_VALUE_OPTIONS` with their values) get the whole app, so the root help and the
    "no such command" message are unchanged.
    """
    words = _command_words(args)
    if not words or words[0].startswith("-"):
        return app
    name = words[0]
    commands = [
        info
        for info in app.registered_commands
        if (info.name or get_command_name(info.callback.__name__ if info.callback else "")) == name
    ]
    groups = [info for info in app.registered_groups if info.name == name]
    if not commands and not groups:
        return app
    narrowed = copy.copy(app)
    narrowed.registered_commands = commands
    narrowed.registered_groups = groups
    return narrowed


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``evidence`` program."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app_for(args)(args=args, prog_name="evidence")
    except SystemExit as exc:
        code = exc.code
        if code is not None and not isinstance(code, int):
            sys.exit(EXIT_USAGE)
        raise


if __name__ == "__main__":
    main()
