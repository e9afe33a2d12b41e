"""Commands for what a case records beside files: entities, testimonies, links, recipients.

``register(app, keys_app)`` mounts them: ``incident``/``facility``/``perpetrator``/``child``
(``add``, ``list``, ``show``, ``edit``), ``testimony`` (``template``, ``add``, ``list``, ``show``,
``withdraw-consent``), ``keys recipient`` (``add``, ``list``), and ``link``, ``unlink``,
``timeline`` and ``derive``. Each command parses its options, calls one library function and
renders the result.

The entity commands have one option per field of the model (SPEC section 5); they are built
from the table ``ENTITY_OPTIONS`` so that ``add`` and ``edit`` always offer the same fields, and
so that a refused value is reported under the option it was typed as.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from evidence import derive, entities, keystore, links, recipients, testimony
from evidence._cli_common import (
    CaseOpt,
    JsonOpt,
    KeyOpt,
    PassOpt,
    err,
    open_case_dir,
    out,
    print_json,
)
from evidence.errors import InputError, PassphraseError
from evidence.loaders import testimony_template


@dataclass(frozen=True)
class FieldOption:
    """One command-line option of an entity field (``key`` may be dotted: ``place.name``)."""

    flag: str
    key: str
    help: str
    repeat: bool = False
    metavar: str = "<text>"
    """What the option takes, as help shows it."""

    def edit_flag(self, verb: str) -> str:
        """The ``edit`` option adding (``verb`` "add") or removing ("remove") one value of a
        list field: ``--add-crime``, ``--remove-crime``."""
        return f"--{verb}-{self.flag.removeprefix('--')}"


def _place(prefix: str, key: str, what: str) -> list[FieldOption]:
    dash = f"{prefix}-" if prefix else ""
    name_flag = f"--{prefix}" if prefix else "--place"
    return [
        FieldOption(name_flag, f"{key}.name", f"Name of the {what}."),
        FieldOption(f"--{dash}region", f"{key}.region", f"Region of the {what}."),
        FieldOption(
            f"--{dash}country",
            f"{key}.country",
            "ISO 3166 alpha-2 code, e.g. UA.",
            metavar="<code>",
        ),
        FieldOption(
            f"--{dash}lat",
            f"{key}.lat",
            f"Latitude, decimal degrees (with --{dash}lon).",
            metavar="<degrees>",
        ),
        FieldOption(
            f"--{dash}lon",
            f"{key}.lon",
            f"Longitude, decimal degrees (with --{dash}lat).",
            metavar="<degrees>",
        ),
    ]


_DATE = "2022, 2022-05 or 2022-05-14"
ENTITY_OPTIONS: dict[str, list[FieldOption]] = {
    "incident": [
        FieldOption("--title", "title", "Title of the incident."),
        FieldOption("--start", "start", f"When it started: {_DATE}.", metavar="<date>"),
        FieldOption("--end", "end", f"When it ended: {_DATE}.", metavar="<date>"),
        *_place("", "place", "place"),
        FieldOption("--description", "description", "What happened."),
        FieldOption(
            "--crime", "crimes", "Rome Statute provision, e.g. 'art. 8(2)(a)(vii)'.", repeat=True
        ),
        FieldOption(
            "--children-count",
            "children_count",
            "Number of children concerned.",
            metavar="<number>",
        ),
    ],
    "facility": [
        FieldOption("--name", "name", "Name of the facility."),
        FieldOption("--transliteration", "transliterations", "A transliteration.", repeat=True),
        FieldOption("--alias", "aliases", "Another name it is known by.", repeat=True),
        FieldOption(
            "--type",
            "type",
            "camp, orphanage, boarding-school, hospital, rehabilitation-centre, "
            "filtration-point, foster-placement or other.",
        ),
        *_place("", "place", "place"),
        FieldOption("--operator", "operator", "Who runs it."),
        FieldOption("--used-from", "used_from", f"In use from: {_DATE}.", metavar="<date>"),
        FieldOption("--used-to", "used_to", f"In use until: {_DATE}.", metavar="<date>"),
        FieldOption("--description", "description", "Description."),
    ],
    "perpetrator": [
        FieldOption("--name", "name", "Name of the person, unit or organisation."),
        FieldOption("--kind", "kind", "person, unit or organisation."),
        FieldOption("--role", "role", "Role or position."),
        FieldOption("--affiliation", "affiliation", "Affiliation."),
        FieldOption(
            "--liability", "liability", "Mode of liability, e.g. 'art. 25(3)(a)'.", repeat=True
        ),
        FieldOption("--warrant-reference", "warrant_reference", "Reference of a warrant."),
        FieldOption("--alias", "aliases", "Another name.", repeat=True),
        FieldOption("--description", "description", "Description."),
    ],
    "child": [
        FieldOption("--code", "code", "Pseudonym, e.g. C-042 (never a name)."),
        FieldOption("--birth-year", "birth_year", "Year of birth.", metavar="<year>"),
        *_place("hometown", "hometown", "hometown"),
        FieldOption(
            "--taken-on", "taken_on", f"When the child was taken: {_DATE}.", metavar="<date>"
        ),
        FieldOption("--status", "status", "missing, located, returned or deceased."),
        FieldOption(
            "--placement",
            "placements",
            "A stay at a facility: FAC-0001[:START[:END]], e.g. FAC-0001:2022-06:2022-09.",
            repeat=True,
            metavar="<placement>",
        ),
    ],
}

_ARTICLE = {"incident": "an", "facility": "a", "perpetrator": "an alleged", "child": "a"}
_ID_EXAMPLES = {
    "incident": "INC-0001",
    "facility": "FAC-0001",
    "perpetrator": "PER-0001",
    "child": "CH-0001",
}
_UNSET_EXAMPLES = {
    "incident": "end or place.lat",
    "facility": "used-to or place.lat",
    "perpetrator": "role or warrant-reference",
    "child": "taken-on or hometown.lat",
}
_HELP = {
    "incident": "Alleged incidents: what happened, when, where (INC-0001, ...).",
    "facility": "Facilities where children were taken or held (FAC-0001, ...).",
    "perpetrator": "Alleged perpetrators: persons, units, organisations (PER-0001, ...).",
    "child": "Children, by pseudonym only (CH-0001, ...).",
}


def _option_names(kind: str) -> entities.OptionNames:
    """The options of each field of ``kind``, for messages that name what was typed."""
    specs = ENTITY_OPTIONS[kind]
    return entities.OptionNames(
        fields={spec.key: spec.flag for spec in specs},
        additions={spec.key: spec.edit_flag("add") for spec in specs if spec.repeat},
        removals={spec.key: spec.edit_flag("remove") for spec in specs if spec.repeat},
    )


def _placement(text: str, flag: str) -> dict[str, str]:
    parts = text.split(":")
    if not 1 <= len(parts) <= 3 or not parts[0]:
        raise InputError(
            f"{flag}: {text!r} is not FAC-0001[:START[:END]]",
            f"e.g. {flag} FAC-0001:2022-06:2022-09-30",
        )
    placement = {"facility": parts[0]}
    for key, value in zip(("start", "end"), parts[1:], strict=False):
        if value:
            placement[key] = value
    return placement


def _values(kind: str, given: dict[str, Any]) -> dict[str, Any]:
    """Option values keyed by (dotted) field name; options not given are left out."""
    values: dict[str, Any] = {}
    for index, spec in enumerate(ENTITY_OPTIONS[kind]):
        value = given.get(f"f{index}")
        if value is None or value == []:
            continue
        if spec.key == "placements":
            value = [_placement(v, spec.flag) for v in value]
        values[spec.key] = value
    return values


def _field_params(kind: str) -> list[inspect.Parameter]:
    params = []
    for index, spec in enumerate(ENTITY_OPTIONS[kind]):
        annotation: Any
        if spec.repeat:
            annotation = Annotated[
                list[str] | None,
                typer.Option(spec.flag, metavar=spec.metavar, help=spec.help + " Repeatable."),
            ]
        else:
            annotation = Annotated[
                str | None, typer.Option(spec.flag, metavar=spec.metavar, help=spec.help)
            ]
        params.append(
            inspect.Parameter(
                f"f{index}", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
            )
        )
    return params


_CASE = inspect.Parameter(
    "case_dir", inspect.Parameter.KEYWORD_ONLY, default=Path(), annotation=CaseOpt
)
_JSON = inspect.Parameter(
    "as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOpt
)
_COMMON = [
    _CASE,
    inspect.Parameter("key", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=KeyOpt),
    inspect.Parameter(
        "passphrase_file", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=PassOpt
    ),
    _JSON,
]


def _id_param(kind: str) -> inspect.Parameter:
    """The id argument of an entity command, with an example id of ``kind``."""
    return inspect.Parameter(
        "entity_id",
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=Annotated[str, typer.Argument(help=f"The id, e.g. {_ID_EXAMPLES[kind]}.")],
    )


FromOpt = Annotated[
    Path | None,
    typer.Option(
        "--from",
        metavar="<file>",
        help="Read the fields from a YAML or JSON file.",
        show_default=False,
    ),
]


def _with_signature(
    func: Callable[..., None], params: list[inspect.Parameter], doc: str
) -> Callable[..., None]:
    # Typer reads a command's options from its signature; the entity commands build theirs
    # from ENTITY_OPTIONS.
    func.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    func.__annotations__ = {p.name: p.annotation for p in params}
    func.__doc__ = doc
    return func


def _entity_add(kind: str) -> Callable[..., None]:
    def command(**given: Any) -> None:
        source: Path | None = given.pop("from_file")
        values = _values(kind, given)
        if source is not None and values:
            raise InputError(
                "--from: give the fields either in the file or as options, not both",
                "put every field in the file",
            )
        names = None if source is not None else _option_names(kind)
        entity = (
            entities.read_new_entity(kind, source)
            if source is not None
            else entities.parse_new_entity(kind, values, option_names=names)
        )
        with open_case_dir(given["case_dir"]) as case:
            signer = keystore.unlock(case, given["key"], given["passphrase_file"])
            record = entities.add_entity(case, signer, entity, option_names=names)
        if given["as_json"]:
            print_json(record.as_json())
        else:
            out.print(
                f"Added {kind} {record.id}: {escape(record.title)} (seq {record.created_seq})"
            )

    params = [
        *_field_params(kind),
        inspect.Parameter(
            "from_file", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=FromOpt
        ),
        *_COMMON,
    ]
    return _with_signature(
        command,
        params,
        f"Add {_ARTICLE[kind]} {kind}: give every field as an option or --from FILE. "
        "The id is allocated by the case.",
    )


def _edit_field_params(kind: str) -> list[inspect.Parameter]:
    """The field options of ``edit``. A list field has three: its own flag (``--crime``) sets
    the whole list, ``--add-crime`` and ``--remove-crime`` change single values; the values
    are read by ``_values`` and ``_list_edits``."""
    params: list[inspect.Parameter] = []
    for index, spec in enumerate(ENTITY_OPTIONS[kind]):
        options: list[tuple[str, str, str, Any]]  # parameter, flag, help, value type
        if not spec.repeat:
            options = [(f"f{index}", spec.flag, spec.help, str | None)]
        else:
            add, remove = spec.edit_flag("add"), spec.edit_flag("remove")
            options = [
                (
                    f"f{index}",
                    spec.flag,
                    f"{spec.help} Replaces the whole list: repeat it for every value to keep, "
                    f"the others are dropped ({add} and {remove} change one value). Repeatable.",
                    list[str] | None,
                ),
                (
                    f"add{index}",
                    add,
                    f"{spec.help} Added to those recorded, which stay. Repeatable.",
                    list[str] | None,
                ),
                (
                    f"remove{index}",
                    remove,
                    f"{spec.help} Removed from those recorded; it must be one of them. Repeatable.",
                    list[str] | None,
                ),
            ]
        params.extend(
            inspect.Parameter(
                param,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[
                    annotation, typer.Option(flag, metavar=spec.metavar, help=text)
                ],
            )
            for param, flag, text, annotation in options
        )
    return params


def _list_edits(kind: str, given: dict[str, Any], verb: str) -> dict[str, list[Any]]:
    """Values of the ``--add-*`` (``verb`` "add") or ``--remove-*`` ("remove") options by
    field."""
    edits: dict[str, list[Any]] = {}
    for index, spec in enumerate(ENTITY_OPTIONS[kind]):
        value = given.get(f"{verb}{index}")
        if value and spec.key == "placements":
            value = [_placement(v, spec.edit_flag(verb)) for v in value]
        if value:
            edits[spec.key] = value
    return edits


def _entity_edit(kind: str) -> Callable[..., None]:
    def command(**given: Any) -> None:
        source: Path | None = given.pop("from_file")
        entity_id: str = given.pop("entity_id")
        values = _values(kind, given)
        additions, removals = _list_edits(kind, given, "add"), _list_edits(kind, given, "remove")
        replacement = None
        if source is not None:
            if values or additions or removals:
                raise InputError("--from: give the fields either in the file or as options")
            replacement = entities.read_new_entity(kind, source)
        with open_case_dir(given["case_dir"]) as case:
            entities.get_entity(case, entity_id, kind)
            signer = keystore.unlock(case, given["key"], given["passphrase_file"])
            record = entities.edit_entity(
                case,
                signer,
                entity_id,
                changes=values,
                unset=tuple(given["unset"] or ()),
                additions=additions,
                removals=removals,
                replacement=replacement,
                reason=given["reason"],
                option_names=_option_names(kind),
            )
        if given["as_json"]:
            print_json(record.as_json())
        else:
            out.print(f"Corrected {record.id} (seq {record.updated_seq})")

    params = [
        _id_param(kind),
        *_edit_field_params(kind),
        inspect.Parameter(
            "unset",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                list[str] | None,
                typer.Option(
                    "--unset",
                    metavar="<field>",
                    help=f"Clear a field, e.g. {_UNSET_EXAMPLES[kind]}. Repeatable.",
                ),
            ],
        ),
        inspect.Parameter(
            "reason",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[
                str, typer.Option("--reason", help="Why the record is corrected.")
            ],
        ),
        inspect.Parameter(
            "from_file", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=FromOpt
        ),
        *_COMMON,
    ]
    lists = [spec for spec in ENTITY_OPTIONS[kind] if spec.repeat]
    flags = ", ".join(spec.flag for spec in lists)
    doc = (
        f"Correct {_ARTICLE[kind]} {kind}: a new event with the changed fields; "
        "the old values stay in `show --history`."
    )
    if lists:
        which = (
            f"{lists[0].flag} replaces the whole list"
            if len(lists) == 1
            else f"Each list option ({flags}) replaces its whole list"
        )
        doc += (
            f"\n\n{which} with the values given; {lists[-1].edit_flag('add')} and "
            f"{lists[-1].edit_flag('remove')}"
            f"{'' if len(lists) == 1 else ' (and so for each list)'} add or remove single "
            "values and keep the others. A value to remove that is not in the list is refused."
        )
    return _with_signature(command, params, doc)


def _entity_list(kind: str) -> Callable[..., None]:
    def command(case_dir: CaseOpt = Path(), as_json: JsonOpt = False) -> None:
        with open_case_dir(case_dir) as case:
            records = entities.list_entities(case, kind)
        if as_json:
            print_json([r.as_json() for r in records])
            return
        table = Table("id", "title", "created (seq)", "updated (seq)")
        for r in records:
            table.add_row(r.id, escape(r.title), str(r.created_seq), str(r.updated_seq))
        out.print(table)
        err.print(f"{len(records)} {kind} record(s)")

    command.__doc__ = f"List the {kind} records of the case."
    return command


def _entity_show(kind: str) -> Callable[..., None]:
    def command(**given: Any) -> None:
        with open_case_dir(given["case_dir"]) as case:
            shown = entities.show_entity(
                case, given["entity_id"], kind=kind, history=given["history"]
            )
        if given["as_json"]:
            print_json(shown)
            return
        out.print(f"[bold]{shown['id']}[/] {escape(shown['title'])}")
        for field, value in shown["data"].items():
            if field != "id":
                out.print(f"  [bold]{field}[/]: {escape(_plain(value))}")
        out.print(f"[bold]linked evidence[/] ({len(shown['linked'])}):")
        for link in shown["linked"]:
            out.print(
                f"  {link['subject'][:16]}  {escape(link['name'] or link['kind'])}  "
                f"{escape(link['reason'])}"
            )
        for entry in shown.get("history", []):
            out.print(
                f"[bold]seq {entry['seq']}[/] {entry['time']} {entry['action']} by {entry['actor']}"
            )
            if "changes" in entry:
                out.print(f"  reason: {escape(entry['reason'])}")
                out.print(f"  changed: {escape(_plain(entry['changes']))}")
            else:
                out.print(f"  values: {escape(_plain(entry['entity']))}")

    history = inspect.Parameter(
        "history",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool, typer.Option("--history", help="Show every version with who and why.")
        ],
    )
    return _with_signature(
        command,
        [_id_param(kind), history, _CASE, _JSON],
        f"Show {_ARTICLE[kind]} {kind}, what is linked to it and (--history) its versions.",
    )


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# --- testimony ---------------------------------------------------------------------------

testimony_app = typer.Typer(help="Testimonies of witnesses.", no_args_is_help=True)


@testimony_app.command("template")
def testimony_template_cmd() -> None:
    """Print a commented YAML template with every field of a testimony."""
    sys.stdout.write(testimony_template())


@testimony_app.command("add")
def testimony_add(
    file: Annotated[Path, typer.Argument(help="The testimony, YAML or JSON (see `template`).")],
    case_dir: CaseOpt = Path(),
    key: KeyOpt = None,
    passphrase_file: PassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate and record a testimony: document, sealed identity, recordings."""
    with open_case_dir(case_dir) as case:
        signer = keystore.unlock(case, key, passphrase_file)
        recorded = testimony.record_testimony(case, signer, file)
    if as_json:
        print_json(recorded.as_json())
        return
    out.print(f"Recorded testimony {recorded.witness_code} (seq {recorded.seq})")
    out.print(f"  document: {recorded.document}")
    if recorded.annex:
        out.print(f"  protected identity (sealed): {recorded.annex}")
    for sha in recorded.recordings:
        out.print(f"  recording: {sha}")
    for raised in recorded.raised:
        out.print(f"  {raised.describe()}")


@testimony_app.command("list")
def testimony_list(case_dir: CaseOpt = Path(), as_json: JsonOpt = False) -> None:
    """List the testimonies (pseudonyms, dates and consent; never identities)."""
    with open_case_dir(case_dir) as case:
        rows = testimony.list_testimonies(case)
    if as_json:
        print_json(rows)
        return
    table = Table("witness", "category", "interview", "ICC consent", "withdrawn", "document")
    for row in rows:
        table.add_row(
            row["witness_code"],
            str(row["category"]),
            str(row["interview_date"]),
            "yes" if row["consent"].get("icc_proceedings") else "no",
            "yes" if row["consent_withdrawn"] else "",
            row["document"][:16],
        )
    out.print(table)


RecipientPassOpt = Annotated[
    Path | None,
    typer.Option(
        "--recipient-passphrase-file",
        metavar="<file>",
        help="Read the recipient key's passphrase from this file (default: the signing key's).",
        show_default=False,
    ),
]


@testimony_app.command("show")
def testimony_show(
    witness: Annotated[str, typer.Argument(help="Witness code, e.g. W-017.")],
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Open the sealed identity (needs a recipient key).")
    ] = False,
    recipient_key: Annotated[
        Path | None,
        typer.Option(
            "--recipient-key",
            metavar="<file>",
            help="Private recipient key file.",
            show_default=False,
        ),
    ] = None,
    purpose: Annotated[
        str, typer.Option("--purpose", help="Why the identity is revealed (recorded).")
    ] = "identity shown with `evidence testimony show --reveal`",
    case_dir: CaseOpt = Path(),
    key: KeyOpt = None,
    passphrase_file: PassOpt = None,
    recipient_passphrase_file: RecipientPassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a testimony; with --reveal also its identity, to a holder of a recipient key."""
    with open_case_dir(case_dir) as case:
        shown = testimony.show_testimony(case, witness)
        if reveal:
            passphrase = keystore.read_passphrase(
                recipient_passphrase_file or passphrase_file,
                option=_passphrase_option(recipient_passphrase_file),
            )
            try:
                rkey = keystore.unlock_with(
                    lambda given: recipients.find_recipient_key(case, recipient_key, given),
                    passphrase,
                    recipient_key,
                )
            except PassphraseError as exc:
                if recipient_passphrase_file is not None:
                    raise
                raise PassphraseError(
                    exc.message,
                    "a recipient key with a passphrase of its own needs "
                    "--recipient-passphrase-file; otherwise check the passphrase",
                ) from None
            signer = keystore.unlock(case, key, passphrase_file)
            shown["identity"] = testimony.reveal_identity(case, signer, witness, rkey, purpose)
    if as_json:
        print_json(shown)
        return
    body = shown["testimony"]
    out.print(f"[bold]Testimony {shown['witness_code']}[/] ({escape(str(body.get('category')))})")
    for field in (
        "age_at_events",
        "support_person_present",
        "support_person_role",
        "interview_date",
        "interviewers",
        "interpreter",
        "languages",
        "special_measures",
        "referral",
        "recordings",
    ):
        if body.get(field) not in (None, "", [], False):
            out.print(f"  [bold]{field}[/]: {escape(_plain(body[field]))}")
    place = body.get("interview_place", {})
    out.print(f"  [bold]interview_place[/]: {escape(_plain(place))}")
    statement = body.get("statement", {})
    out.print(f"[bold]statement[/] ({statement.get('language')}):")
    out.print(escape(str(statement.get("text") or "(document missing; run `evidence verify`)")))
    for translation in body.get("translations", []):
        out.print(
            f"[bold]translation[/] ({translation['language']}, by "
            f"{escape(translation['translator'])}):"
        )
        out.print(escape(translation["text"]))
    consent = shown["consent"]
    out.print(f"[bold]consent[/]: {escape(_plain(consent))}")
    if consent.get("withdrawn_on"):
        out.print(f"[yellow]consent withdrawn on {consent['withdrawn_on']}: left out of bundles[/]")
    elif not shown["consent_covers_icc"]:
        out.print("[yellow]consent does not cover ICC use: left out of bundles[/]")
    annex = shown["protected_annex"]
    if annex is None:
        out.print("[bold]identity[/]: none recorded")
    elif "identity" in shown:
        out.print("[bold]identity[/] (revealed; the opening was recorded):")
        for field, value in shown["identity"].items():
            out.print(f"  {field}: {escape(value)}")
    else:
        out.print(
            f"[bold]identity[/]: sealed ({', '.join(annex['fields'])}) in {annex['sha256'][:16]}; "
            "use --reveal with a recipient key"
        )
    for link in shown["links"]:
        out.print(f"[bold]linked to[/] {link['target']}: {escape(link['reason'])}")


@testimony_app.command("withdraw-consent")
def testimony_withdraw(
    witness: Annotated[str, typer.Argument(help="Witness code, e.g. W-017.")],
    reason: Annotated[str, typer.Option("--reason", help="What the witness asked for.")],
    on: Annotated[
        str | None,
        typer.Option("--on", metavar="<date>", help="Day of the withdrawal (default: today)."),
    ] = None,
    case_dir: CaseOpt = Path(),
    key: KeyOpt = None,
    passphrase_file: PassOpt = None,
) -> None:
    """Record that a witness withdrew consent; the testimony is left out of bundles."""
    with open_case_dir(case_dir) as case:
        testimony.resolve_testimony(case, witness)
        signer = keystore.unlock(case, key, passphrase_file)
        seq = testimony.withdraw_consent(case, signer, witness, reason, on)
    out.print(f"Recorded the withdrawal of consent of {witness} (seq {seq})")


# --- recipients --------------------------------------------------------------------------

recipient_app = typer.Typer(
    help="Recipient keys (X25519) that protected identities are sealed to.", no_args_is_help=True
)


def _passphrase_option(recipient_passphrase_file: Path | None) -> str:
    """The option a recipient key's passphrase file came from, for messages."""
    return "--recipient-passphrase-file" if recipient_passphrase_file else "--passphrase-file"


@recipient_app.command("add")
def recipient_add(
    name: Annotated[str, typer.Argument(help="Recipient name (no spaces or '+').")],
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            metavar="<file>",
            help="Add this recipient public key (text form or PEM) instead of making a new key.",
            show_default=False,
        ),
    ] = None,
    case_dir: CaseOpt = Path(),
    key: KeyOpt = None,
    passphrase_file: PassOpt = None,
    recipient_passphrase_file: RecipientPassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a recipient; without --public-key, make a new key pair kept outside the case."""
    with open_case_dir(case_dir) as case:
        signer = keystore.unlock(case, key, passphrase_file)
        path = None
        if public_key is not None:
            info = recipients.add_recipient(
                case, signer, recipients.read_public_key(public_key, name)
            )
        else:
            recipients.check_new_recipient(case, name)
            passphrase = keystore.read_passphrase(
                recipient_passphrase_file or passphrase_file,
                new=True,
                option=_passphrase_option(recipient_passphrase_file),
            )
            # The key files are kept only if the recipient is recorded.
            info, path = recipients.add_new_recipient(case, signer, name, passphrase)
    if as_json:
        print_json(info.as_json() | {"private_key": str(path) if path else None})
        return
    out.print(f"Added recipient {info.name} ({info.recipient_id}) at seq {info.added_seq}")
    if path is not None:
        err.print(f"private recipient key: {path} (keep it safe; it opens identities)")


@recipient_app.command("list")
def recipient_list(case_dir: CaseOpt = Path(), as_json: JsonOpt = False) -> None:
    """List the case's recipient keys."""
    with open_case_dir(case_dir) as case:
        rows = recipients.list_recipients(case)
    if as_json:
        print_json([r.as_json() for r in rows])
        return
    table = Table("recipient id", "name", "added (seq)", "public key")
    for r in rows:
        table.add_row(r.recipient_id, r.name, str(r.added_seq), r.public_key)
    out.print(table)


# --- link, unlink, timeline, derive ------------------------------------------------------

IncidentOpt = Annotated[
    list[str] | None, typer.Option("--incident", metavar="<id>", help="Incident id.")
]
FacilityOpt = Annotated[
    list[str] | None, typer.Option("--facility", metavar="<id>", help="Facility id.")
]
PerpetratorOpt = Annotated[
    list[str] | None, typer.Option("--perpetrator", metavar="<id>", help="Alleged perpetrator id.")
]
ChildOpt = Annotated[list[str] | None, typer.Option("--child", metavar="<id>", help="Child id.")]
SubjectArg = Annotated[
    str, typer.Argument(help="An item (sha256 or unique prefix) or a testimony (witness code).")
]


def _target_map(
    incident: list[str] | None,
    facility: list[str] | None,
    perpetrator: list[str] | None,
    child: list[str] | None,
) -> dict[str, list[str]]:
    return {
        "incident": incident or [],
        "facility": facility or [],
        "perpetrator": perpetrator or [],
        "child": child or [],
    }


SubjectsArg = Annotated[
    list[str],
    typer.Argument(
        help="Items (sha256 or unique prefix) or testimonies (witness code): one or more."
    ),
]


def link_cmd(
    subjects: SubjectsArg,
    reason: Annotated[str, typer.Option("--reason", help="Why they are linked.")],
    incident: IncidentOpt = None,
    facility: FacilityOpt = None,
    perpetrator: PerpetratorOpt = None,
    child: ChildOpt = None,
    case_dir: CaseOpt = Path(),
    key: KeyOpt = None,
    passphrase_file: PassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Link items or testimonies to incidents, facilities, perpetrators and children.

    Several subjects are linked in one go: all are checked first, then recorded together.
    """
    targets = _target_map(incident, facility, perpetrator, child)
    with open_case_dir(case_dir) as case:
        labels: dict[str, str] = {}
        for ref in subjects:
            subject, _ = links.resolve_subject(case, ref)
            labels.setdefault(subject, ref)
        signer = keystore.unlock(case, key, passphrase_file)
        changes = links.make_links_many(case, signer, subjects, targets, reason)
    if as_json:
        print_json([c.as_json() for c in changes])
        return
    for change in changes:
        shown = labels.get(change.subject, change.subject)
        if change.seq is None:
            out.print(f"{shown} is already linked to {change.target}")
        else:
            out.print(f"Linked {shown} to {change.target} (seq {change.seq})")


def unlink_cmd(
    subject: SubjectArg,
    reason: Annotated[str, typer.Option("--reason", help="Why the link is taken back.")],
    incident: IncidentOpt = None,
    facility: FacilityOpt = None,
    perpetrator: PerpetratorOpt = None,
    child: ChildOpt = None,
    case_dir: CaseOpt = Path(),
    key: KeyOpt = None,
    passphrase_file: PassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Take links back (recorded with the reason; the earlier link stays in the log)."""
    targets = _target_map(incident, facility, perpetrator, child)
    with open_case_dir(case_dir) as case:
        links.resolve_subject(case, subject)
        signer = keystore.unlock(case, key, passphrase_file)
        changes = links.remove_links(case, signer, subject, targets, reason)
    if as_json:
        print_json([c.as_json() for c in changes])
        return
    for change in changes:
        out.print(f"Unlinked {subject} from {change.target} (seq {change.seq})")


def timeline_cmd(
    incident: Annotated[
        str | None, typer.Option("--incident", metavar="<id>", help="Incident id.")
    ] = None,
    facility: Annotated[
        str | None, typer.Option("--facility", metavar="<id>", help="Facility id.")
    ] = None,
    perpetrator: Annotated[
        str | None, typer.Option("--perpetrator", metavar="<id>", help="Alleged perpetrator id.")
    ] = None,
    child: Annotated[str | None, typer.Option("--child", metavar="<id>", help="Child id.")] = None,
    case_dir: CaseOpt = Path(),
    as_json: JsonOpt = False,
) -> None:
    """List the evidence linked to one entity in date order."""
    chosen = [
        (kind, value)
        for kind, value in (
            ("incident", incident),
            ("facility", facility),
            ("perpetrator", perpetrator),
            ("child", child),
        )
        if value is not None
    ]
    if len(chosen) != 1:
        raise InputError(
            "timeline: give exactly one of --incident, --facility, --perpetrator, --child",
            "e.g. evidence timeline --facility FAC-0001",
        )
    kind, entity_id = chosen[0]
    with open_case_dir(case_dir) as case:
        entries = links.timeline(case, kind, entity_id)
    if as_json:
        print_json(entries)
        return
    table = Table("date", "kind", "evidence", "sha256", "why linked")
    for entry in entries:
        table.add_row(
            str(entry["date"] or "(undated)"),
            entry["kind"],
            escape(entry["name"]),
            entry["subject"][:16],
            escape(entry["reason"]),
        )
    out.print(table)
    err.print(f"{len(entries)} linked record(s)")


def derive_cmd(
    item: Annotated[str, typer.Argument(help="The original item (sha256 or unique prefix).")],
    kind: Annotated[
        str, typer.Option("--kind", help="redaction, translation, transcription or transcode.")
    ],
    file: Annotated[
        Path, typer.Option("--file", metavar="<file>", help="The working copy to ingest.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why the copy was made.")],
    tool: Annotated[
        str, typer.Option("--tool", help="Tool and version that made the copy.")
    ] = "unspecified",
    language: Annotated[
        str | None, typer.Option("--language", help="Language of a translation.")
    ] = None,
    redaction_code: Annotated[
        list[str] | None,
        typer.Option("--redaction-code", help="Reason code of one redaction. Repeatable."),
    ] = None,
    case_dir: CaseOpt = Path(),
    key: KeyOpt = None,
    passphrase_file: PassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest a working copy linked to its original; the original stays untouched."""
    with open_case_dir(case_dir) as case:
        signer = keystore.unlock(case, key, passphrase_file)
        derived = derive.derive_item(
            case,
            signer,
            item,
            kind=kind,
            file=file,
            reason=reason,
            tool=tool,
            language=language,
            redaction_codes=tuple(redaction_code or ()),
        )
    if as_json:
        print_json(derived.as_json())
        return
    out.print(
        f"Recorded {derived.kind} {derived.sha256} of {derived.derived_from} (seq {derived.seq})"
    )


def register(app: typer.Typer, keys_app: typer.Typer) -> None:
    """Mount the record commands on the root app and ``keys recipient`` on ``keys_app``."""
    for kind in entities.KINDS:
        sub = typer.Typer(help=_HELP[kind], no_args_is_help=True)
        sub.command("add")(_entity_add(kind))
        sub.command("list")(_entity_list(kind))
        sub.command("show")(_entity_show(kind))
        sub.command("edit")(_entity_edit(kind))
        app.add_typer(sub, name=kind)
    app.add_typer(testimony_app, name="testimony")
    keys_app.add_typer(recipient_app, name="recipient")
    app.command("link")(link_cmd)
    app.command("unlink")(unlink_cmd)
    app.command("timeline")(timeline_cmd)
    app.command("derive")(derive_cmd)
