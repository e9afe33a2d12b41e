"""The command line starts without loading the exports package and its heavy libraries.

``evidence --help`` and every command other than ``export`` and ``audit`` must not pay for
Jinja2, pikepdf or WeasyPrint (Pango and fonts); ``evidence.cli_exports`` imports ``exports``
inside its commands.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("exports", "templates", "weasyprint", "jinja2")


def _loaded_after(statement: str) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(  # a fixed interpreter and program, no shell
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    modules: list[str] = json.loads(done.stdout)
    return modules


def test_importing_the_command_line_loads_no_exports_module() -> None:
    loaded = _loaded_after("import evidence.cli")
    assert "evidence.cli_exports" in loaded
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert heavy == []
