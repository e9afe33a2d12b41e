"""Entry point of the installed ``evidence`` program, kept apart to keep start-up fast."""

from __future__ import annotations

import gc
import sys


def main() -> None:
    """Run the command line."""
    # sqlite-utils imports pandas and numpy when they are installed, only to offer DataFrame
    # helpers the toolkit never uses; the import costs about 0.4 s at every start of a command
    # that investigators run thousands of times. Marking them absent makes that import fail
    # fast (sqlite-utils expects it may). Only this process is affected, never a library user.
    for name in ("pandas", "numpy"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    # The imports make some fifty thousand objects (modules, classes, validators) that live
    # until the process ends. Collecting while they are made finds no garbage, and once they
    # are frozen no later collection, nor the one at exit, walks them again: together about
    # 0.1 s of every command.
    gc.disable()
    from evidence.cli import main as cli_main  # noqa: PLC0415 - after the guard above
    from evidence.stops import stop_on_term_and_hup  # noqa: PLC0415 - as above

    stop_on_term_and_hup()

    gc.freeze()
    gc.enable()
    cli_main()


if __name__ == "__main__":
    main()
