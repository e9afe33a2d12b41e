"""The import direction of SPEC section 2, checked on the source.

``chain_of_custody`` imports nothing else of the project (an auditor needs only it);
``evidence`` imports only ``chain_of_custody``; ``exports`` imports ``evidence`` and
``chain_of_custody``; only the command-line modules may import all three, and nothing imports
them but the program's entry point.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("chain_of_custody", "evidence", "exports", "templates")
CLI_MODULES = {
    "evidence.cli",
    "evidence._cli_common",
    "evidence.cli_records",
    "evidence.cli_exports",
}
ALLOWED = {
    "chain_of_custody": {"chain_of_custody"},
    "evidence": {"chain_of_custody", "evidence"},
    "exports": {"chain_of_custody", "evidence", "exports", "templates"},
    "templates": set(),
}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(p for p in parts if p != "__init__")
            found.append((name, path))
    return found


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in PACKAGES}


@pytest.mark.parametrize(("module", "path"), _modules(), ids=str)
def test_imports_follow_the_layout(module: str, path: Path) -> None:
    package = module.split(".", maxsplit=1)[0]
    imported = _imports(path)
    if module not in CLI_MODULES:
        wrong = {n for n in imported if n.split(".")[0] not in ALLOWED[package]}
        assert not wrong, f"{module} imports {sorted(wrong)} against SPEC section 2"
    cli_users = {n for n in imported if n in CLI_MODULES}
    if module not in CLI_MODULES and module != "evidence._entry":
        assert not cli_users, f"{module} imports the command line ({sorted(cli_users)})"


def test_every_package_is_checked() -> None:
    names = {m for m, _ in _modules()}
    assert {"chain_of_custody.merkle", "evidence.ingest", "exports.audit"} <= names
