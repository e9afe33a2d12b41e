"""The record commands through typer's CliRunner: entities, testimonies, recipients, links,
timelines and derived items, each with its bad input (exit 2, the field named, nothing recorded).

Everything is fictional; the case uses the fixed test key of tests/conftest.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer

from evidence.cli import app
from evidence.loaders import load_testimony
from tests.conftest import CaseHandle, CliResult
from tests.evidence.test_testimony import make_testimony, recipient_key, write_testimony

Cli = Callable[..., CliResult]
DATA = Path(__file__).parent.parent / "evidence" / "data"


def _json(result: CliResult) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _ok(result: CliResult) -> CliResult:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def world(make_case: Callable[..., CaseHandle], cli: Cli, tmp_path: Path) -> Any:
    """A case with a recipient, an item, an incident, a facility and testimony W-017."""
    case = make_case()
    c = ("--case", case.root)
    _ok(cli("keys", "recipient", "add", "prosecutor-a", *c))
    note = tmp_path / "note.txt"
    note.write_text("fictional field note\n", encoding="utf-8")
    ingested = _json(cli("ingest", note, "--collected-at", "2022-05-20", "--json", *c))
    sha = ingested["files"][0]["sha256"]
    _ok(cli("incident", "add", "--from", DATA / "incident.yaml", *c))
    _ok(cli("facility", "add", "--from", DATA / "facility.yaml", *c))
    _ok(cli("testimony", "add", write_testimony(tmp_path, make_testimony()), *c))
    return case, sha, c


def test_every_record_command_exists() -> None:
    group = typer.main.get_command(app)
    names = set()
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        names.add(name)
        for sub, subcommand in getattr(command, "commands", {}).items():
            names.add(f"{name} {sub}")
            for leaf in getattr(subcommand, "commands", {}):
                names.add(f"{name} {sub} {leaf}")
    expected = {"link", "unlink", "timeline", "derive", "keys recipient add", "keys recipient list"}
    for kind in ("incident", "facility", "perpetrator", "child"):
        expected |= {f"{kind} {verb}" for verb in ("add", "list", "show", "edit")}
    expected |= {f"testimony {v}" for v in ("template", "add", "list", "show", "withdraw-consent")}
    assert expected <= names


def test_entities_by_options_and_by_file(make_case: Callable[..., CaseHandle], cli: Cli) -> None:
    case = make_case()
    c = ("--case", case.root)
    added = _json(
        cli(
            "incident", "add", "--title", "Transfer (fictional)", "--start", "2022-05",
            "--place", "Example Town", "--country", "ua", "--lat", "46.6354", "--lon", "32.6169",
            "--crime", "Art. 8(2)(a)(vii)", "--crime", "art. 7(1)(d)", "--children-count", "12",
            "--json", *c,
        )
    )  # fmt: skip
    assert added["id"] == "INC-0001"
    assert added["data"]["place"] == {
        "name": "Example Town",
        "country": "UA",
        "lat": "46.6354",
        "lon": "32.6169",
    }
    assert added["data"]["crimes"] == ["art. 8(2)(a)(vii)", "art. 7(1)(d)"]
    _ok(cli("facility", "add", "--name", "Camp Example", "--type", "camp", *c))
    _ok(cli("perpetrator", "add", "--from", DATA / "perpetrator.yaml", *c))
    child = _json(
        cli(
            "child", "add", "--code", "C-042", "--status", "located", "--birth-year", "2012",
            "--hometown", "Example Town", "--placement", "FAC-0001:2022-06:2022-09-30",
            "--json", *c,
        )
    )  # fmt: skip
    assert child["id"] == "CH-0001"
    assert child["data"]["placements"] == [
        {"facility": "FAC-0001", "start": "2022-06", "end": "2022-09-30"}
    ]
    listed = _json(cli("perpetrator", "list", "--json", *c))
    assert [(p["id"], p["title"]) for p in listed] == [("PER-0001", "Official X")]
    assert "Camp Example" in _ok(cli("facility", "list", *c)).stdout


def test_edit_appends_and_show_history_keeps_old_values(world: Any, cli: Cli) -> None:
    _case, _sha, c = world
    _ok(cli("incident", "edit", "INC-0001", "--children-count", "14", "--reason", "new list", *c))
    _ok(cli("incident", "edit", "INC-0001", "--unset", "description", "--reason", "unsure", *c))
    shown = _json(cli("incident", "show", "INC-0001", "--history", "--json", *c))
    assert shown["data"]["children_count"] == 14
    assert "description" not in shown["data"]
    history = shown["history"]
    assert [h["entity"].get("children_count") for h in history] == [12, 14, 14]
    assert history[1]["reason"] == "new list"
    text = _ok(cli("incident", "show", "INC-0001", "--history", *c)).stdout
    assert "new list" in text and "entity.edited" in text
    assert _json(cli("verify", "--json", *c))["ok"] is True


def test_edit_adds_and_removes_single_list_values(world: Any, cli: Cli) -> None:
    _case, _sha, c = world
    _ok(cli("incident", "edit", "INC-0001", "--add-crime", "8(2)(b)(xv)",
            "--reason", "a second act", *c))  # fmt: skip
    crimes = _json(cli("incident", "show", "INC-0001", "--json", *c))["data"]["crimes"]
    assert crimes == ["art. 8(2)(a)(vii)", "art. 8(2)(b)(viii)", "art. 7(1)(d)", "art. 8(2)(b)(xv)"]
    _ok(cli("incident", "edit", "INC-0001", "--remove-crime", "Art. 8(2)(b)(viii)",
            "--reason", "not shown", *c))  # fmt: skip
    crimes = _json(cli("incident", "show", "INC-0001", "--json", *c))["data"]["crimes"]
    assert crimes == ["art. 8(2)(a)(vii)", "art. 7(1)(d)", "art. 8(2)(b)(xv)"]
    # The list option itself sets the whole list, as its help says.
    _ok(cli("incident", "edit", "INC-0001", "--crime", "art. 6(e)", "--reason", "requalified", *c))
    crimes = _json(cli("incident", "show", "INC-0001", "--json", *c))["data"]["crimes"]
    assert crimes == ["art. 6(e)"]
    _ok(cli("facility", "edit", "FAC-0001", "--add-alias", "Camp No. 1",
            "--remove-transliteration", "Lager Primer", "--reason", "checked", *c))  # fmt: skip
    data = _json(cli("facility", "show", "FAC-0001", "--json", *c))["data"]
    assert data["aliases"] == ["Summer camp No. 1", "Camp No. 1"]
    assert data["transliterations"] == []
    _ok(cli("child", "add", "--code", "C-042", "--status", "located",
            "--placement", "FAC-0001:2022-06", *c))  # fmt: skip
    _ok(cli("child", "edit", "CH-0001", "--add-placement", "FAC-0001:2022-10:2023-01",
            "--remove-placement", "FAC-0001:2022-06", "--reason", "dates", *c))  # fmt: skip
    placements = _json(cli("child", "show", "CH-0001", "--json", *c))["data"]["placements"]
    assert placements == [{"facility": "FAC-0001", "start": "2022-10", "end": "2023-01"}]
    assert _json(cli("verify", "--json", *c))["ok"] is True


def test_edit_help_says_a_list_option_replaces_the_list(cli: Cli) -> None:
    text = " ".join(_ok(cli("incident", "edit", "--help")).stdout.split())
    assert "--crime replaces the whole list" in text
    assert "--add-crime" in text and "--remove-crime" in text


def _help_of(kind: str, verb: str, name: str) -> str:
    """The help text of the option or argument ``name`` (``--flag`` or a parameter name)."""
    group: Any = typer.main.get_command(app)
    command = group.commands[kind].commands[verb]
    for param in command.params:
        if name in param.opts or name == param.name:
            return str(getattr(param, "help", None) or "")
    raise AssertionError(f"{kind} {verb} has no {name}")


# (case name, kind, verb, option or argument, help part)
HELP_TEXTS: list[tuple[str, str, str, str, str]] = [
    ("child-add-hometown-lat", "child", "add", "--hometown-lat", "(with --hometown-lon)"),
    ("child-add-hometown-lon", "child", "add", "--hometown-lon", "(with --hometown-lat)"),
    ("child-edit-hometown-lat", "child", "edit", "--hometown-lat", "(with --hometown-lon)"),
    ("incident-add-lat", "incident", "add", "--lat", "(with --lon)"),
    ("facility-edit-lon", "facility", "edit", "--lon", "(with --lat)"),
    ("incident-edit-id", "incident", "edit", "entity_id", "e.g. INC-0001"),
    ("facility-edit-id", "facility", "edit", "entity_id", "e.g. FAC-0001"),
    ("perpetrator-edit-id", "perpetrator", "edit", "entity_id", "e.g. PER-0001"),
    ("child-edit-id", "child", "edit", "entity_id", "e.g. CH-0001"),
    ("incident-edit-unset", "incident", "edit", "--unset", "e.g. end or place.lat"),
    ("facility-edit-unset", "facility", "edit", "--unset", "e.g. used-to or place.lat"),
    ("perpetrator-edit-unset", "perpetrator", "edit", "--unset", "e.g. role or warrant-reference"),
    ("child-edit-unset", "child", "edit", "--unset", "e.g. taken-on or hometown.lat"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "verb", "name", "part"), [pytest.param(*c[1:], id=c[0]) for c in HELP_TEXTS]
)
def test_option_help_names_the_options_of_its_own_kind(
    kind: str, verb: str, name: str, part: str
) -> None:
    assert part in _help_of(kind, verb, name)


def test_unset_takes_the_option_spelling_and_names_unknown_fields(world: Any, cli: Cli) -> None:
    case, _sha, c = world
    _ok(cli("incident", "edit", "INC-0001", "--unset", "children-count", "--reason", "x", *c))
    assert "children_count" not in _json(cli("incident", "show", "INC-0001", "--json", *c))["data"]
    size = case.log_size()
    result = cli("incident", "edit", "INC-0001", "--unset", "foo", "--reason", "x", *c)
    assert result.exit_code == 2, result.output
    text = " ".join(result.stderr.split())
    assert "--unset foo: incident records have no such field" in text
    assert "fields that can be unset: end," in text and "children-count" in text
    assert case.log_size() == size


def test_testimony_template_is_a_valid_testimony(cli: Cli, tmp_path: Path) -> None:
    text = _ok(cli("testimony", "template")).stdout
    path = tmp_path / "template.yaml"
    path.write_text(text, encoding="utf-8")
    loaded = load_testimony(path)
    assert loaded.witness_code == "W-017"
    assert loaded.identity is not None and loaded.identity.present_fields()


def test_testimony_show_list_reveal_and_withdraw(world: Any, cli: Cli) -> None:
    case, _sha, c = world
    shown = _json(cli("testimony", "show", "W-017", "--json", *c))
    assert shown["testimony"]["statement"]["text"] == "Вигадані показання."
    assert shown["protected_annex"]["fields"] == [
        "contact",
        "current_address",
        "date_of_birth",
        "name",
    ]
    assert "identity" not in shown
    text = _ok(cli("testimony", "show", "W-017", *c)).stdout
    assert "sealed" in text and "Protected-Identity-Marker" not in text
    size = case.log_size()
    revealed = _json(cli("testimony", "show", "W-017", "--reveal", "--json", *c))
    assert revealed["identity"]["name"] == "Testname Protected-Identity-Marker"
    assert case.log_size() == size + 1  # the opening is recorded
    _ok(
        cli("testimony", "withdraw-consent", "W-017", "--reason", "asked", "--on", "2023-06-01", *c)
    )
    listed = _json(cli("testimony", "list", "--json", *c))
    assert listed[0]["consent_withdrawn"] is True
    shown_text = _ok(cli("testimony", "show", "W-017", *c)).stdout
    assert "consent withdrawn on 2023-06-01: left out of bundles" in shown_text
    assert "interview_date" in shown_text and "interviewers" in shown_text


def test_a_recipient_key_with_its_own_passphrase_reveals(
    world: Any, cli: Cli, evidence_home: Path, tmp_path: Path
) -> None:
    """A prosecutor's recipient key need not share the investigator's passphrase."""
    _case, _sha, c = world
    own = tmp_path / "recipient-pass.txt"
    own.write_text("another fictional phrase 8\n", encoding="utf-8")
    _ok(cli("keys", "recipient", "add", "prosecutor-b", "--recipient-passphrase-file", own, *c))
    w018 = make_testimony("W-018", age_at_events=11, referral="Referred to a counsellor")
    _ok(cli("testimony", "add", write_testimony(tmp_path, w018), *c))
    shown_text = _ok(cli("testimony", "show", "W-018", *c)).stdout
    assert "age_at_events: 11" in shown_text and "Referred to a counsellor" in shown_text
    rkey = evidence_home / "recipients" / "prosecutor-b.key"
    reveal = ("testimony", "show", "W-018", "--reveal", "--recipient-key", rkey, "--json", *c)
    refused = cli(*reveal)
    assert refused.exit_code == 3
    assert "--recipient-passphrase-file" in refused.stderr
    assert "Protected-Identity-Marker" not in refused.output
    revealed = _json(cli(*reveal, "--recipient-passphrase-file", own))
    assert revealed["identity"]["name"] == "Testname Protected-Identity-Marker"


def test_recipient_passphrase_file_problems_name_that_option(
    world: Any, cli: Cli, tmp_path: Path
) -> None:
    _case, _sha, c = world
    add = ("keys", "recipient", "add", "prosecutor-c", "--recipient-passphrase-file")
    missing = cli(*add, tmp_path / "no-such-file.txt", *c)
    assert missing.exit_code == 3, missing.output
    assert "(--recipient-passphrase-file)" in missing.stderr
    assert "check the path given to --recipient-passphrase-file" in missing.stderr
    short = tmp_path / "short.txt"
    short.write_text("short\n", encoding="utf-8")
    refused = cli(*add, short, *c)
    assert refused.exit_code == 2, refused.output
    assert "too short" in refused.stderr and "from --recipient-passphrase-file" in refused.stderr


def test_recipients_list_and_add_a_public_key(world: Any, cli: Cli, evidence_home: Path) -> None:
    case, _sha, c = world
    listed = _json(cli("keys", "recipient", "list", "--json", *c))
    assert [r["name"] for r in listed] == ["prosecutor-a"]
    private = evidence_home / "recipients" / "prosecutor-a.key"
    assert private.is_file() and (private.stat().st_mode & 0o077) == 0
    assert not any(p.suffix == ".key" for p in case.root.rglob("*"))
    # Another recipient's public key (text form) can be added; the same one twice cannot.
    other = evidence_home / "other.pub"
    other.write_text(recipient_key("prosecutor-b").public.to_text() + "\n", encoding="utf-8")
    _ok(cli("keys", "recipient", "add", "prosecutor-b", "--public-key", other, *c))
    again = cli("keys", "recipient", "add", "prosecutor-b", "--public-key", other, *c)
    assert again.exit_code == 2 and "added already" in again.stderr


def test_link_list_timeline_unlink(world: Any, cli: Cli) -> None:
    _case, sha, c = world
    _ok(
        cli(
            "link",
            sha[:10],
            "--incident",
            "INC-0001",
            "--facility",
            "FAC-0001",
            "--reason",
            "r",
            *c,
        )
    )
    _ok(cli("link", "W-017", "--facility", "FAC-0001", "--reason", "the witness names it", *c))
    listed = _json(cli("list", "--incident", "INC-0001", "--json", *c))
    assert [i["sha256"] for i in listed] == [sha]
    # An unknown or mistyped entity is an input error, not an empty list.
    for option, wrong in [("--incident", "INC-9999"), ("--facility", "INC-0001")]:
        refused = cli("list", option, wrong, *c)
        assert refused.exit_code == 2, refused.output
        assert wrong in refused.stderr and "Traceback" not in refused.stderr
    line = _json(cli("timeline", "--facility", "FAC-0001", "--json", *c))
    assert [(e["date"], e["kind"]) for e in line] == [
        ("2022-05-20", "file"),
        ("2023-03-01", "testimony"),
    ]
    assert "W-017" in _ok(cli("timeline", "--facility", "FAC-0001", *c)).stdout
    _ok(cli("unlink", sha, "--facility", "FAC-0001", "--reason", "wrong place", *c))
    assert len(_json(cli("timeline", "--facility", "FAC-0001", "--json", *c))) == 1
    assert _json(cli("verify", "--json", *c))["ok"] is True


def test_link_several_subjects_at_once_or_none(world: Any, cli: Cli) -> None:
    case, sha, c = world
    size = case.log_size()
    refused = cli("link", sha[:10], "W-099", "--incident", "INC-0001", "--reason", "r", *c)
    assert refused.exit_code == 2 and "W-099" in refused.stderr
    assert case.log_size() == size  # nothing is recorded when one subject is unknown
    made = _json(
        cli("link", sha[:10], "W-017", "--incident", "INC-0001", "--reason", "r", "--json", *c)
    )
    assert [(m["target"], m["seq"] is not None) for m in made] == [
        ("INC-0001", True),
        ("INC-0001", True),
    ]
    again = _ok(cli("link", sha, "W-017", "--incident", "INC-0001", "--reason", "r", *c))
    assert "W-017 is already linked to INC-0001" in again.stdout
    assert f"{sha} is already linked to INC-0001" in again.stdout


def test_derive_shows_both_items(world: Any, cli: Cli, tmp_path: Path) -> None:
    _case, sha, c = world
    copy = tmp_path / "translation.txt"
    copy.write_text("fictional translation\n", encoding="utf-8")
    derived = _json(
        cli(
            "derive", sha[:12], "--kind", "translation", "--file", copy, "--reason", "for court",
            "--language", "en", "--tool", "Translator D (manual)", "--json", *c,
        )
    )  # fmt: skip
    original = _json(cli("show", sha, "--json", *c))
    assert original["derivatives"] == [derived["sha256"]]
    copy_shown = _json(cli("show", derived["sha256"], "--json", *c))
    assert copy_shown["derived_from"] == sha
    assert copy_shown["language"] == "en"
    assert copy_shown["derivation"]["kind"] == "translation"


BAD_INPUT = [
    pytest.param(
        ["incident", "add", "--start", "2022", "--place", "X"], "title", id="missing-title"
    ),
    pytest.param(
        ["incident", "add", "--title", "T", "--start", "14/05/2022", "--place", "X"],
        "start",
        id="wrong-date-format",
    ),
    pytest.param(["facility", "add", "--name", "N", "--type", "palace"], "type", id="bad-enum"),
    pytest.param(["incident", "show", "INC-0042"], "INC-0042", id="unknown-entity"),
    pytest.param(
        ["incident", "edit", "INC-0042", "--title", "X", "--reason", "r"],
        "INC-0042",
        id="edit-unknown-entity",
    ),
    pytest.param(
        ["incident", "edit", "INC-0001", "--end", "2022-13", "--reason", "r"],
        "end",
        id="edit-wrong-date",
    ),
    pytest.param(
        ["incident", "edit", "INC-0001", "--from", "OTHER_ID", "--reason", "r"],
        "id: the file describes INC-0002",
        id="edit-from-file-of-another-id",
    ),
    pytest.param(
        ["incident", "edit", "INC-0001", "--remove-crime", "art. 6(e)", "--reason", "r"],
        "--remove-crime: 'art. 6(e)' is not in the list of INC-0001",
        id="edit-remove-a-crime-not-listed",
    ),
    pytest.param(
        ["incident", "edit", "INC-0001", "--crime", "6(e)", "--add-crime", "6(b)", "--reason", "r"],
        "--crime: give either the whole new list or values to add and remove",
        id="edit-set-and-add-one-list",
    ),
    pytest.param(
        ["facility", "edit", "FAC-0001", "--remove-alias", "Camp X", "--reason", "r"],
        "--remove-alias: 'Camp X' is not in the list of FAC-0001",
        id="edit-remove-an-alias-not-listed",
    ),
    pytest.param(
        ["child", "add", "--code", "C-1", "--status", "missing", "--placement", "FAC-0099"],
        "--placement: unknown facility FAC-0099",
        id="placement-unknown-facility",
    ),
    pytest.param(
        ["child", "add", "--code", "Olena", "--status", "missing"], "code", id="child-name"
    ),
    pytest.param(
        ["link", "SHA", "--incident", "INC-0099", "--reason", "r"],
        "--incident INC-0099",
        id="link-unknown-incident",
    ),
    pytest.param(
        ["link", "W-099", "--incident", "INC-0001", "--reason", "r"], "W-099", id="link-unknown-w"
    ),
    pytest.param(["link", "SHA", "--reason", "r"], "at least one target", id="link-no-target"),
    pytest.param(
        ["unlink", "SHA", "--facility", "FAC-0001", "--reason", "r"], "not linked", id="unlink"
    ),
    pytest.param(["testimony", "add", "DUPLICATE"], "witness_code", id="duplicate-witness"),
    pytest.param(["testimony", "add", "NO_CONSENT"], "consent", id="missing-consent"),
    pytest.param(["testimony", "add", "BAD_DATE"], "interview_date", id="testimony-bad-date"),
    pytest.param(["testimony", "show", "W-099"], "W-099", id="unknown-testimony"),
    pytest.param(
        ["testimony", "withdraw-consent", "W-017", "--reason", "r", "--on", "1.6.2023"],
        "--on",
        id="withdraw-bad-date",
    ),
    pytest.param(
        ["timeline", "--facility", "FAC-0001", "--incident", "INC-0001"],
        "exactly one",
        id="timeline-two-entities",
    ),
    pytest.param(["timeline", "--child", "CH-0003"], "CH-0003", id="timeline-unknown"),
    pytest.param(
        ["derive", "SHA", "--kind", "summary", "--file", "NEW", "--reason", "r"],
        "--kind",
        id="derive-bad-kind",
    ),
]


@pytest.mark.parametrize(("args", "field"), BAD_INPUT)
def test_bad_input_is_refused_naming_the_field(
    world: Any, cli: Cli, tmp_path: Path, args: list[str], field: str
) -> None:
    case, sha, c = world
    new = tmp_path / "new.txt"
    new.write_text("fictional new file\n", encoding="utf-8")
    files = {
        "SHA": sha,
        "NEW": str(new),
        "DUPLICATE": str(write_testimony(tmp_path, make_testimony())),
        "NO_CONSENT": str(write_testimony(tmp_path, make_testimony("W-020", consent=None))),
        "BAD_DATE": str(
            write_testimony(tmp_path, make_testimony("W-021", interview_date="01.03.2023"))
        ),
    }
    other = tmp_path / "other.yaml"
    text = (DATA / "incident.yaml").read_text(encoding="utf-8")
    other.write_text(text.replace("INC-0001", "INC-0002"), encoding="utf-8")
    files["OTHER_ID"] = str(other)
    size = case.log_size()
    result = cli(*[files.get(a, a) for a in args], *c)
    assert result.exit_code == 2, result.output
    assert field in result.stderr
    assert result.exception is None
    assert case.log_size() == size


def test_identity_without_recipient_is_refused_with_a_hint(
    make_case: Callable[..., CaseHandle], cli: Cli, tmp_path: Path
) -> None:
    case = make_case()
    size = case.log_size()
    result = cli(
        "testimony", "add", write_testimony(tmp_path, make_testimony()), "--case", case.root
    )
    assert result.exit_code == 2
    assert "identity" in result.stderr and "evidence keys recipient add" in result.stderr
    assert case.log_size() == size


def test_typed_text_with_terminal_controls_is_shown_escaped(world: Any, cli: Cli) -> None:
    """A title or reason holding escape sequences reaches the screen as text (SPEC 9)."""
    _case, sha, c = world
    title = "Bus \x1b[2J\x1b]0;renamed\x07depot"
    _ok(cli("incident", "add", "--title", title, "--start", "2022-05", "--place", "Depot", *c))
    _ok(cli("link", sha[:10], "--incident", "INC-0002", "--reason", "seen \x1b[31mred", *c))
    for args in (("incident", "list"), ("incident", "show", "INC-0002"), ("show", sha[:10])):
        shown = _ok(cli(*args, *c)).stdout
        assert "\x1b" not in shown and "\x07" not in shown, args
    assert "Bus \\u001b[2J\\u001b]0;renamed\\u0007depot" in _ok(cli("incident", "list", *c)).stdout
    assert "seen \\u001b[31mred" in _ok(cli("show", sha[:10], *c)).stdout
    # The record keeps the text exactly; only its display is escaped.
    assert _json(cli("incident", "show", "INC-0002", "--json", *c))["title"] == title
