"""Benchmarks of the toolkit against standard tools: ``python -m tests.benchmarks.run``.

Generates its corpora (random bytes, fixed seed) in a temporary folder, runs the toolkit and the
reference tool alternately over several rounds, prints a table of medians, ratios, throughput and
peak memory, and optionally writes the same as JSON. See tests/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.benchmarks import reference
from tests.benchmarks.corpora import SEED, Sizes
from tests.benchmarks.measure import CachePolicy
from tests.benchmarks.rows import (
    ROW_KEYS,
    Context,
    RowResult,
    big_rows,
    export_row,
    log_rows,
    memory_row,
    small_rows,
    verify_row,
)
from tests.benchmarks.toolkit import Toolkit, force_rmtree


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.run",
        description="Benchmark the evidence toolkit against sha256sum, hashdeep and bagit.py.",
    )
    parser.add_argument(
        "--rows",
        default=",".join(ROW_KEYS),
        help=f"comma-separated rows to run (default: all): {','.join(ROW_KEYS)}",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per row (default 3)")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="shrink the corpora for a quick run, e.g. 0.05 (default 1: the sizes of the targets)",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="profile one extra ingest per corpus under pyinstrument; HTML and text go to DIR",
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="do not drop the page cache before timed runs (default: drop it when allowed)",
    )
    parser.add_argument("--evidence", type=Path, help="the evidence program (default: installed)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (its path is printed)"
    )
    args = parser.parse_args(argv)
    rows = [key.strip() for key in args.rows.split(",") if key.strip()]
    unknown = sorted(set(rows) - set(ROW_KEYS))
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; choose from {', '.join(ROW_KEYS)}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not 0 < args.scale <= 1:
        parser.error("--scale must be greater than 0 and at most 1")
    args.rows = rows
    return args


def run_rows(ctx: Context, rows: Sequence[str]) -> list[RowResult]:
    """Run the chosen rows in table order; a row that crashes becomes a row with a note."""
    results: list[RowResult] = []
    steps: list[tuple[str, Any]] = []
    if "big" in rows:
        steps.append(("big", lambda: big_rows(ctx)))
    if "small" in rows or "bag" in rows:
        steps.append(("small", lambda: small_rows(ctx, "small" in rows, "bag" in rows)))
    if "verify" in rows:
        steps.append(("verify", lambda: [verify_row(ctx)]))
    if "memory" in rows:
        steps.append(("memory", lambda: [memory_row(ctx)]))
    if "log" in rows:
        steps.append(("log", lambda: log_rows(ctx)))
    if "export" in rows:
        steps.append(("export", lambda: [export_row(ctx)]))
    for key, step in steps:
        _say(f"== {key}")
        try:
            results.extend(step())
        except Exception as exc:
            # The harness reports a broken row and goes on with the others.
            results.append(RowResult(key, key, "-", "-", notes=(f"harness error: {exc!r}",)))
    return results


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 0.1:
        return f"{value * 1000:.3f} ms"
    return f"{value:.2f}"


def _number(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{(' ' + unit) if unit else ''}"


def _met(value: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[value]


def format_table(results: Sequence[RowResult]) -> str:
    """The results as a plain-text table, followed by one line of details per row."""
    header = ("row", "toolkit s", "ref s", "ratio", "throughput", "RSS MiB", "target", "met")
    lines = [
        (
            r.row,
            _seconds(r.toolkit_median),
            _seconds(r.reference_median),
            _number(r.ratio, digits=2),
            _number(r.throughput, r.throughput_unit),
            _number(r.toolkit_peak_rss_mib, digits=0),
            r.target.text if r.target else "(information)",
            _met(r.met),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    right = {1, 2, 3, 4, 5}

    def render(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [render(header), render(["-" * w for w in widths])]
    out.extend(render(line) for line in lines)
    out.append("")
    for r in results:
        runs = ", ".join(_seconds(s) for s in r.toolkit_runs) or "-"
        ref_runs = ", ".join(_seconds(s) for s in r.reference_runs) or "-"
        out.append(f"{r.row}: {r.corpus}; reference {r.reference}")
        out.append(f"    toolkit runs: {runs}; reference runs: {ref_runs}")
        if r.reference_peak_rss_mib is not None:
            out.append(f"    reference peak RSS: {r.reference_peak_rss_mib:.0f} MiB")
        out.extend(f"    note: {note}" for note in r.notes)
    return "\n".join(out)


def environment(args: argparse.Namespace, cache: CachePolicy, toolkit: Toolkit) -> dict[str, Any]:
    """What the figures depend on: machine, tools and their versions, settings."""
    tools = {}
    for ref in (reference.SHA256SUM, reference.HASHDEEP, reference.BAGIT_MAKE):
        path = ref.path()
        flag = "-V" if ref.tool == "hashdeep" else "--version"
        tools[ref.tool] = f"{path} ({reference.tool_version(path, flag)})" if path else "missing"
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "python": platform.python_version(),
        "evidence": str(toolkit.evidence) if toolkit.evidence else "missing",
        "reference_tools": tools,
        "cache": cache.describe(),
        "rounds": args.rounds,
        "scale": args.scale,
        "seed": SEED,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; exit 0 whether or not the targets are met (the table says)."""
    args = parse_args(argv)
    base = Path(os.environ.get("BENCH_TMP") or tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="evidence-bench-", dir=base))
    cache = CachePolicy(want_cold=not args.warm)
    try:
        toolkit = Toolkit(work, args.evidence)
        env = environment(args, cache, toolkit)
        for key, value in env.items():
            _say(f"{key}: {value}")
        ctx = Context(
            work=work,
            sizes=Sizes(args.scale),
            rounds=args.rounds,
            cache=cache,
            toolkit=toolkit,
            profile_dir=args.profile.resolve() if args.profile else None,
            say=_say,
        )
        if ctx.toolkit_problem:
            _say(f"toolkit not available: {ctx.toolkit_problem}")
        results = run_rows(ctx, args.rows)
    finally:
        if args.keep:
            _say(f"kept {work}")
        else:
            force_rmtree(work)
    print()
    print(f"cache: {env['cache']}; rounds: {args.rounds}; scale: {args.scale:g}")
    print(format_table(results))
    if args.json:
        document = {"environment": env, "rows": [r.as_json() for r in results]}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        _say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
