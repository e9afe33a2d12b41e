"""The benchmark rows: what each runs, against which reference, and the target it must meet."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tests.benchmarks import corpora, reference
from tests.benchmarks.corpora import Corpus, Sizes
from tests.benchmarks.measure import MIB, CachePolicy, Run, median, run_measured, run_setup
from tests.benchmarks.toolkit import CaseDir, Toolkit, ToolkitUnavailable, force_rmtree

ROW_KEYS = ("big", "small", "bag", "verify", "memory", "log", "export")

Kind = Literal["ratio", "rss", "rate", "seconds", "ms"]


@dataclass(frozen=True)
class Target:
    """A limit on one figure of a row: ``ratio <= 0.6``, ``rate >= 10000`` ..."""

    kind: Kind
    limit: float
    text: str

    def met(self, value: float | None) -> bool | None:
        """Whether ``value`` meets the target; None when there is no value."""
        if value is None:
            return None
        if self.kind == "rate":
            return value >= self.limit
        return value <= self.limit


@dataclass(frozen=True)
class RowResult:
    """The figures of one table row (times in seconds, memory in MiB)."""

    key: str
    row: str
    corpus: str
    reference: str
    toolkit_runs: tuple[float, ...] = ()
    reference_runs: tuple[float, ...] = ()
    throughput: float | None = None
    throughput_unit: str = ""
    toolkit_peak_rss_mib: float | None = None
    reference_peak_rss_mib: float | None = None
    target: Target | None = None
    # The figure the target is about, when it is not the ratio (e.g. a rate or a proof time).
    measured: float | None = None
    notes: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def toolkit_median(self) -> float | None:
        """Median toolkit wall time."""
        return median(self.toolkit_runs)

    @property
    def reference_median(self) -> float | None:
        """Median reference wall time."""
        return median(self.reference_runs)

    @property
    def ratio(self) -> float | None:
        """Toolkit median / reference median."""
        tk, ref = self.toolkit_median, self.reference_median
        if tk is None or not ref:
            return None
        return tk / ref

    @property
    def met(self) -> bool | None:
        """Whether the target is met (None: not measured, or no target)."""
        if self.target is None:
            return None
        value = self.ratio if self.target.kind == "ratio" else self.measured
        return self.target.met(value)

    def as_json(self) -> dict[str, Any]:
        """Everything, including each round's time."""
        return {
            "key": self.key,
            "row": self.row,
            "corpus": self.corpus,
            "reference": self.reference,
            "toolkit_seconds": list(self.toolkit_runs),
            "reference_seconds": list(self.reference_runs),
            "toolkit_median_seconds": self.toolkit_median,
            "reference_median_seconds": self.reference_median,
            "ratio": self.ratio,
            "throughput": self.throughput,
            "throughput_unit": self.throughput_unit,
            "toolkit_peak_rss_mib": self.toolkit_peak_rss_mib,
            "reference_peak_rss_mib": self.reference_peak_rss_mib,
            "target": self.target.text if self.target else None,
            "measured": self.measured,
            "met": self.met,
            "notes": list(self.notes),
            **({"extra": dict(self.extra)} if self.extra else {}),
        }


# --- jobs: one command measured per round, prepared (untimed) before each run -----------------


@dataclass(frozen=True)
class Prepared:
    """A command ready to be timed, and what to do with its output afterwards."""

    argv: list[str]
    env: Mapping[str, str] | None = None
    stdin: Path | None = None
    finish: Callable[[Run], None] = lambda run: None


@dataclass(frozen=True)
class Job:
    """A named command of a comparison; ``prepare`` runs untimed before each round."""

    name: str
    prepare: Callable[[], Prepared]


@dataclass
class Outcome:
    """The runs of one job, and why it stopped if it did."""

    runs: list[Run] = field(default_factory=list)
    problem: str | None = None

    def seconds(self) -> tuple[float, ...]:
        """Wall times of the successful runs."""
        return tuple(run.seconds for run in self.runs if run.ok)

    def peak_rss(self) -> float | None:
        """Largest resident set over the successful runs."""
        peaks = [run.peak_rss_mib for run in self.runs if run.ok]
        return max(peaks) if peaks else None


class Context:
    """Shared state of one benchmark session: folders, corpora, cases kept between rows."""

    def __init__(
        self,
        work: Path,
        sizes: Sizes,
        rounds: int,
        cache: CachePolicy,
        toolkit: Toolkit,
        profile_dir: Path | None,
        say: Callable[[str], None],
    ) -> None:
        self.work = work
        self.sizes = sizes
        self.rounds = rounds
        self.cache = cache
        self.toolkit = toolkit
        self.profile_dir = profile_dir
        self.say = say
        self.toolkit_problem = toolkit.available()
        self._corpora: dict[str, Corpus] = {}
        self.small_case: CaseDir | None = None
        self.small_bag: Path | None = None
        self._bag_numbers = 0
        self._minimal_numbers = 0

    def corpus(self, name: str) -> Corpus:
        """Generate a corpus the first time it is needed."""
        if name not in self._corpora:
            self.say(f"generating the {name} corpus ...")
            base = self.work / "corpora"
            if name == "big":
                made = corpora.big_files(base, self.sizes)
            elif name == "small":
                made = corpora.small_files(base, self.sizes.small_count)
            elif name == "sparse":
                made = corpora.sparse_file(base, self.sizes)
            elif name == "export-items":
                made = corpora.small_files(
                    base, self.sizes.export_items, name, seed=corpora.SEED + 3
                )
            else:
                raise KeyError(name)
            self.say(f"  {made.describe()} in {made.root}")
            self._corpora[name] = made
        return self._corpora[name]

    # Jobs shared by several rows.

    def ingest_job(self, corpus: Corpus, keep: Callable[[CaseDir], None] | None = None) -> Job:
        """Toolkit ingest of ``corpus`` into a fresh case each round."""

        def prepare() -> Prepared:
            case = self.toolkit.new_case(corpus.name)

            def finish(run: Run) -> None:
                if keep is not None and run.ok:
                    keep(case)
                else:
                    self.toolkit.remove(case)

            return Prepared(self.toolkit.ingest_argv(case, corpus.root), case.env, finish=finish)

        return Job("toolkit", prepare)

    def keep_small_case(self, case: CaseDir) -> None:
        """Keep the newest small-file case for the verify row; drop the previous one."""
        if self.small_case is not None:
            self.toolkit.remove(self.small_case)
        self.small_case = case

    def bag_job(self, corpus: Corpus, tool: Path) -> Job:
        """``bagit.py`` making a bag of a fresh copy of ``corpus`` each round."""

        def prepare() -> Prepared:
            self._bag_numbers += 1
            copy = self.work / "bags" / f"bag-{self._bag_numbers:03d}"
            shutil.copytree(corpus.root, copy)

            def finish(run: Run) -> None:
                if run.ok:
                    if self.small_bag is not None:
                        self.toolkit.set_aside(self.small_bag)
                    self.small_bag = copy
                else:
                    self.toolkit.set_aside(copy)

            return Prepared(reference.bagit_make_argv(tool, copy), finish=finish)

        return Job(reference.BAGIT_MAKE.label, prepare)

    def minimal_ingest_job(self, names: Path) -> Job:
        """``floor.py`` storing the files listed in ``names`` into a fresh folder each round."""

        def prepare() -> Prepared:
            self._minimal_numbers += 1
            store = self.work / "minimal" / f"store-{self._minimal_numbers:03d}"
            return Prepared(
                reference.minimal_ingest_argv(names, store),
                finish=lambda run: force_rmtree(store),
            )

        return Job(reference.MINIMAL_INGEST_LABEL, prepare)

    def compare(self, jobs: Sequence[Job]) -> dict[str, Outcome]:
        """Run ``jobs`` round after round, rotating their order; a failing job stops there."""
        outcomes = {job.name: Outcome() for job in jobs}
        for number in range(self.rounds):
            shift = number % len(jobs)
            for job in [*jobs[shift:], *jobs[:shift]]:
                outcome = outcomes[job.name]
                if outcome.problem is not None:
                    continue
                try:
                    prepared = job.prepare()
                except (ToolkitUnavailable, OSError, subprocess.SubprocessError) as exc:
                    outcome.problem = f"{job.name}: preparation failed: {exc}"
                    continue
                run = run_measured(
                    prepared.argv, cache=self.cache, env=prepared.env, stdin=prepared.stdin
                )
                prepared.finish(run)
                outcome.runs.append(run)
                self.say(
                    f"  round {number + 1}: {job.name}: {run.seconds:.3f} s, "
                    f"{run.peak_rss_mib:.0f} MiB"
                    + ("" if run.ok else f", exit {run.returncode}: {run.stderr_tail}")
                )
                if not run.ok:
                    outcome.problem = (
                        f"{job.name} failed (exit {run.returncode}): {run.stderr_tail}"
                    )
        return outcomes

    def profile_ingest(self, corpus: Corpus) -> str | None:
        """One extra ingest under pyinstrument; returns a note saying where the profile is."""
        if self.profile_dir is None or self.toolkit_problem is not None:
            return None
        try:
            import pyinstrument  # noqa: F401
        except ImportError:
            return "profile: pyinstrument is not installed (pip install pyinstrument)"
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        session = self.profile_dir / f"ingest-{corpus.name}.pyisession"
        try:
            case = self.toolkit.new_case(f"profile-{corpus.name}")
        except ToolkitUnavailable as exc:
            return f"profile of ingest {corpus.name} not made: {exc}"
        try:
            argv = self.toolkit.profile_argv(self.toolkit.ingest_argv(case, corpus.root), session)
            done = run_setup(argv, env=case.env)
        finally:
            self.toolkit.remove(case)
        if done.returncode != 0 or not session.exists():
            return f"profile of ingest {corpus.name} failed: {done.stderr.strip()[-300:]}"
        written = render_profile(session)
        return "profile of ingest " + corpus.name + ": " + ", ".join(written or [str(session)])


def render_profile(session: Path) -> list[str]:
    """Render a pyinstrument session file as HTML and as text beside it; the files written."""
    written = []
    for renderer, suffix in (("html", ".html"), ("text", ".txt")):
        target = session.with_suffix(suffix)
        extra = ["--no-color"] if renderer == "text" else []
        argv = [sys.executable, "-m", "pyinstrument", "--load", str(session)]
        run_setup([*argv, "--renderer", renderer, *extra, "--outfile", str(target)])
        if target.exists():
            written.append(str(target))
    return written


# --- the rows ----------------------------------------------------------------------------------


def _mib_per_s(corpus: Corpus, seconds: float | None) -> float | None:
    return corpus.total_bytes / MIB / seconds if seconds else None


def _notes(*items: str | bool | None) -> tuple[str, ...]:
    """The notes that apply: strings only (``cond and "text"`` gives False when not)."""
    return tuple(item for item in items if isinstance(item, str) and item)


def _comparison_row(
    key: str,
    row: str,
    corpus: Corpus,
    ref_label: str,
    toolkit: Outcome,
    ref: Outcome | None,
    missing: str | None,
    target: Target | None,
    extra_notes: Sequence[str | None] = (),
) -> RowResult:
    tk_seconds = toolkit.seconds()
    return RowResult(
        key=key,
        row=row,
        corpus=corpus.describe(),
        reference=ref_label,
        toolkit_runs=tk_seconds,
        reference_runs=ref.seconds() if ref else (),
        throughput=_mib_per_s(corpus, median(tk_seconds)),
        throughput_unit="MiB/s",
        toolkit_peak_rss_mib=toolkit.peak_rss(),
        reference_peak_rss_mib=ref.peak_rss() if ref else None,
        target=target,
        notes=_notes(toolkit.problem, ref.problem if ref else None, missing, *extra_notes),
    )


def _minimal_row(
    key: str,
    row: str,
    corpus: Corpus,
    toolkit: Outcome,
    outcomes: Mapping[str, Outcome],
    sha_label: str,
) -> RowResult:
    """The toolkit against the minimal ingest (for information), with a note giving the
    minimal ingest's own ratio to sha256sum: the least any ingest of the corpus pays."""
    minimal = outcomes.get(reference.MINIMAL_INGEST_LABEL)
    sha = outcomes.get(sha_label)
    floor = median(minimal.seconds()) if minimal else None
    ref = median(sha.seconds()) if sha else None
    note = (
        f"the minimal ingest alone is {floor / ref:.2f} x {sha_label} in this run"
        if floor is not None and ref
        else None
    )
    label = reference.MINIMAL_INGEST_LABEL
    return _comparison_row(key, row, corpus, label, toolkit, minimal, None, None, [note])


def _unavailable(key: str, row: str, corpus: str, why: str, target: Target | None) -> RowResult:
    return RowResult(key, row, corpus, "-", target=target, notes=(f"not available: {why}",))


def _toolkit_job_or_none(ctx: Context, make: Callable[[], Job]) -> tuple[Job | None, str | None]:
    if ctx.toolkit_problem is not None:
        return None, f"toolkit not available: {ctx.toolkit_problem}"
    return make(), None


def big_rows(ctx: Context) -> list[RowResult]:
    """Big files: toolkit ingest against sha256sum (target) and hashdeep (for information)."""
    corpus = ctx.corpus("big")
    tk_job, tk_problem = _toolkit_job_or_none(ctx, lambda: ctx.ingest_job(corpus))
    jobs: list[Job] = [tk_job] if tk_job else []
    sha = reference.SHA256SUM.path()
    deep = reference.HASHDEEP.path()
    if sha:
        argv = reference.sha256sum_argv(sha, corpus)
        jobs.append(Job(reference.SHA256SUM.label, lambda: Prepared(argv)))
    if deep:
        deep_argv = reference.hashdeep_argv(deep, corpus)
        jobs.append(Job(reference.HASHDEEP.label, lambda: Prepared(deep_argv)))
    jobs.append(ctx.minimal_ingest_job(reference.xargs_file_list(corpus, ctx.work / "big.list")))
    outcomes = ctx.compare(jobs) if jobs else {}
    toolkit = outcomes.get("toolkit", Outcome(problem=tk_problem))
    profile = ctx.profile_ingest(corpus) if tk_job else None
    sha_label = reference.SHA256SUM.label
    return [
        _comparison_row(
            "big",
            "big files",
            corpus,
            reference.SHA256SUM.label,
            toolkit,
            outcomes.get(reference.SHA256SUM.label),
            None if sha else reference.SHA256SUM.missing(),
            Target("ratio", 0.6, "ingest <= 0.6 x ref"),
            [profile],
        ),
        _comparison_row(
            "big",
            "big files (hashdeep)",
            corpus,
            reference.HASHDEEP.label,
            toolkit,
            outcomes.get(reference.HASHDEEP.label),
            None if deep else reference.HASHDEEP.missing(),
            None,
        ),
        _minimal_row("big", "big files (minimal ingest)", corpus, toolkit, outcomes, sha_label),
    ]


def small_rows(ctx: Context, want_small: bool, want_bag: bool) -> list[RowResult]:
    """Small files against sha256sum via xargs, and bag creation against bagit.py."""
    corpus = ctx.corpus("small")
    tk_job, tk_problem = _toolkit_job_or_none(
        ctx, lambda: ctx.ingest_job(corpus, keep=ctx.keep_small_case)
    )
    jobs: list[Job] = [tk_job] if tk_job else []
    sha = reference.SHA256SUM_XARGS.path() if want_small else None
    bagit = reference.BAGIT_MAKE.path() if want_bag else None
    names = reference.xargs_file_list(corpus, ctx.work / "small-files.list")
    if sha:
        argv = reference.sha256sum_xargs_argv(sha)
        jobs.append(Job(reference.SHA256SUM_XARGS.label, lambda: Prepared(argv, stdin=names)))
    if want_small:
        jobs.append(ctx.minimal_ingest_job(names))
    if bagit:
        jobs.append(ctx.bag_job(corpus, bagit))
    outcomes = ctx.compare(jobs) if jobs else {}
    toolkit = outcomes.get("toolkit", Outcome(problem=tk_problem))
    profile = ctx.profile_ingest(corpus) if tk_job else None
    rows = []
    if want_small:
        rows.append(
            _comparison_row(
                "small",
                "small files",
                corpus,
                reference.SHA256SUM_XARGS.label,
                toolkit,
                outcomes.get(reference.SHA256SUM_XARGS.label),
                None if sha else reference.SHA256SUM_XARGS.missing(),
                Target("ratio", 2.5, "ingest <= 2.5 x ref"),
                [profile],
            )
        )
        rows.append(
            _minimal_row(
                "small",
                "small files (minimal ingest)",
                corpus,
                toolkit,
                outcomes,
                reference.SHA256SUM_XARGS.label,
            )
        )
    if want_bag:
        rows.append(
            _comparison_row(
                "bag",
                "bag creation",
                corpus,
                reference.BAGIT_MAKE.label,
                toolkit,
                outcomes.get(reference.BAGIT_MAKE.label),
                None if bagit else reference.BAGIT_MAKE.missing(),
                Target("ratio", 0.5, "ingest <= 0.5 x ref"),
                [None if want_small else profile],
            )
        )
    return rows


def verify_row(ctx: Context) -> RowResult:
    """``evidence verify`` of the small-file case against ``bagit.py --validate`` of its bag."""
    corpus = ctx.corpus("small")
    target = Target("ratio", 1.5, "verify <= 1.5 x ref")
    notes: list[str | None] = []
    jobs: list[Job] = []
    if ctx.toolkit_problem is not None:
        notes.append(f"toolkit not available: {ctx.toolkit_problem}")
    else:
        if ctx.small_case is None:
            ctx.say("making the small-file case for the verify row ...")
            notes.append(_build_small_case(ctx, corpus))
        if ctx.small_case is not None:
            verify_argv = ctx.toolkit.verify_argv(ctx.small_case)
            env = ctx.small_case.env
            jobs.append(Job("toolkit", lambda: Prepared(verify_argv, env)))
    bagit = reference.BAGIT_VALIDATE.path()
    if bagit:
        if ctx.small_bag is None:
            ctx.say("making the bag for the verify row ...")
            notes.append(_build_small_bag(ctx, corpus, bagit))
        if ctx.small_bag is not None:
            argv = reference.bagit_validate_argv(bagit, ctx.small_bag)
            jobs.append(Job(reference.BAGIT_VALIDATE.label, lambda: Prepared(argv)))
    outcomes = ctx.compare(jobs) if jobs else {}
    toolkit = outcomes.get("toolkit", Outcome())
    return _comparison_row(
        "verify",
        "full verify",
        corpus,
        reference.BAGIT_VALIDATE.label,
        toolkit,
        outcomes.get(reference.BAGIT_VALIDATE.label),
        None if bagit else reference.BAGIT_VALIDATE.missing(),
        target,
        notes,
    )


def _build_small_case(ctx: Context, corpus: Corpus) -> str | None:
    try:
        case = ctx.toolkit.new_case(corpus.name)
    except ToolkitUnavailable as exc:
        return str(exc)
    done = run_setup(ctx.toolkit.ingest_argv(case, corpus.root), env=case.env)
    if done.returncode != 0:
        ctx.toolkit.remove(case)
        return f"ingest for the verify row failed: {done.stderr.strip()[-300:]}"
    ctx.small_case = case
    return None


def _build_small_bag(ctx: Context, corpus: Corpus, bagit: Path) -> str | None:
    copy = ctx.work / "bags" / "bag-verify"
    shutil.copytree(corpus.root, copy)
    done = run_setup(reference.bagit_make_argv(bagit, copy))
    if done.returncode != 0:
        force_rmtree(copy)
        return f"bagit.py could not make the bag: {done.stderr.strip()[-300:]}"
    ctx.small_bag = copy
    return None


def memory_row(ctx: Context) -> RowResult:
    """Peak resident set of ingesting one large (sparse) file."""
    corpus = ctx.corpus("sparse")
    target = Target("rss", 150, "peak RSS <= 150 MiB")
    if ctx.toolkit_problem is not None:
        return _unavailable("memory", "memory", corpus.describe(), ctx.toolkit_problem, target)
    outcome = ctx.compare([ctx.ingest_job(corpus)])["toolkit"]
    profile = ctx.profile_ingest(corpus)
    seconds = outcome.seconds()
    return RowResult(
        key="memory",
        row="memory",
        corpus=corpus.describe() + " (sparse)",
        reference="none",
        toolkit_runs=seconds,
        throughput=_mib_per_s(corpus, median(seconds)),
        throughput_unit="MiB/s",
        toolkit_peak_rss_mib=outcome.peak_rss(),
        target=target,
        measured=outcome.peak_rss(),
        notes=_notes(outcome.problem, profile),
    )


def log_rows(ctx: Context) -> list[RowResult]:
    """Append, proof and full-verify figures of a synthetic log, measured once."""
    events = ctx.sizes.log_events
    corpus = f"{events:,} synthetic events"
    scale = ctx.sizes.scale
    verify_limit = 150 * scale
    scaled = "" if scale == 1 else f" (150 s x {scale:g})"
    targets = {
        "append": Target("rate", 10_000, "append >= 10,000 ev/s"),
        "proof": Target("ms", 2, "proof <= 2 ms"),
        "verify": Target("seconds", verify_limit, f"verify <= {verify_limit:g} s{scaled}"),
    }
    folder = ctx.work / "log"
    folder.mkdir()
    out = folder / "result.json"
    ctx.say(f"log: appending {events:,} events ...")
    run = run_measured(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.logbench",
            "--events",
            str(events),
            "--db",
            str(folder / "log.db"),
            "--out",
            str(out),
        ],
        cache=ctx.cache,
        cwd=Path(__file__).resolve().parents[2],
        warmup=[sys.executable, "-c", "import tests.benchmarks.logbench"],
    )
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    failure = result.get("error") or (
        None if run.ok else f"log benchmark failed (exit {run.returncode}): {run.stderr_tail}"
    )
    append_s = result.get("append_seconds")
    rate = events / append_s if append_s else None
    proof_ms = result.get("proof_median_ms")
    verify = result.get("verify") or {}
    verify_s = verify.get("seconds")
    verify_notes = _notes(
        verify.get("unavailable") and f"not available: {verify['unavailable']}",
        verify.get("ok") is False
        and "verify_log reported findings: " + "; ".join(verify["findings"]),
    )
    common: dict[str, Any] = {
        "corpus": corpus,
        "reference": "none",
        "toolkit_peak_rss_mib": run.peak_rss_mib,
    }
    shutil.rmtree(folder, ignore_errors=True)
    profile = _profile_log(ctx, min(events, _LOG_PROFILE_EVENTS))
    return [
        RowResult(
            key="log",
            row="log append",
            toolkit_runs=(append_s,) if append_s else (),
            throughput=rate,
            throughput_unit="events/s",
            target=targets["append"],
            measured=rate,
            notes=_notes(failure, profile),
            **common,
        ),
        RowResult(
            key="log",
            row="log proof",
            toolkit_runs=(proof_ms / 1000,) if proof_ms is not None else (),
            target=targets["proof"],
            measured=proof_ms,
            notes=_notes(
                proof_ms is not None
                and f"inclusion proof: median {proof_ms:.3f} ms, max "
                f"{result['proof_max_ms']:.3f} ms over 1,000 random events"
            ),
            **common,
        ),
        RowResult(
            key="log",
            row="log verify",
            toolkit_runs=(verify_s,) if verify_s else (),
            throughput=events / verify_s if verify_s else None,
            throughput_unit="events/s",
            target=targets["verify"],
            measured=verify_s,
            notes=verify_notes,
            **common,
        ),
    ]


# The profiled log run is a smaller, separate one: profiling slows the timed run down.
_LOG_PROFILE_EVENTS = 50_000


def _profile_log(ctx: Context, events: int) -> str | None:
    """One extra, smaller log run under pyinstrument (main process only, not verify workers)."""
    if ctx.profile_dir is None:
        return None
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        return "profile: pyinstrument is not installed (pip install pyinstrument)"
    ctx.profile_dir.mkdir(parents=True, exist_ok=True)
    session = ctx.profile_dir / "log.pyisession"
    folder = ctx.work / "log-profile"
    folder.mkdir()
    argv = [sys.executable, "-m", "pyinstrument", "--renderer", "pyisession"]
    argv += ["--outfile", str(session), "-m", "tests.benchmarks.logbench"]
    argv += ["--events", str(events), "--db", str(folder / "log.db")]
    argv += ["--out", str(folder / "result.json")]
    done = run_setup(argv)
    shutil.rmtree(folder, ignore_errors=True)
    if done.returncode != 0 or not session.exists():
        return f"profile of the log failed: {done.stderr.strip()[-300:]}"
    written = render_profile(session)
    return f"profile of the log ({events:,} events): " + ", ".join(written or [str(session)])


# Each call of a command line costs a second or two of start-up, so items are linked in groups.
_LINK_GROUP = 50
_INCIDENT_ID = re.compile(r"\bINC-\d+\b")


def export_row(ctx: Context) -> RowResult:
    """Export of a case of 1,000 items in 20 incidents, with the HTML and PDF index."""
    sizes = ctx.sizes
    corpus_text = f"{sizes.export_items:,} items, {sizes.export_incidents} incidents"
    target = Target("seconds", 30, "export <= 30 s")
    if ctx.toolkit_problem is not None:
        return _unavailable("export", "export", corpus_text, ctx.toolkit_problem, target)
    tk = ctx.toolkit
    for command in ("export", "incident", "link"):
        done = run_setup(tk.command(command, "--help"), timeout=120)
        if done.returncode != 0:
            why = f"evidence {command} is missing or broken: {_last(done.stderr or done.stdout)}"
            return _unavailable("export", "export", corpus_text, why, target)
    try:
        case = _export_case(ctx)
    except ToolkitUnavailable as exc:
        return _unavailable("export", "export", corpus_text, str(exc), target)
    numbers = iter(range(1, 10_000))
    notes: list[str] = []

    def prepare() -> Prepared:
        out = ctx.work / "exports" / f"bundle-{next(numbers):03d}"
        out.parent.mkdir(exist_ok=True)
        argv = tk.command(
            "export",
            "--all",
            "--profile",
            "restricted",
            "--out",
            str(out),
            "--case",
            str(case.path),
        )

        def finish(run: Run) -> None:
            if run.ok:
                found = {p.name for p in out.rglob("index.*")}
                missing = {"index.html", "index.pdf"} - found
                if missing:
                    notes.append("bundle lacks " + ", ".join(sorted(missing)))
            tk.set_aside(out)

        return Prepared(argv, case.env, finish=finish)

    outcome = ctx.compare([Job("toolkit", prepare)])["toolkit"]
    tk.remove(case)
    seconds = outcome.seconds()
    tk_median = median(seconds)
    return RowResult(
        key="export",
        row="export",
        corpus=corpus_text,
        reference="none",
        toolkit_runs=seconds,
        throughput=sizes.export_items / tk_median if tk_median else None,
        throughput_unit="items/s",
        toolkit_peak_rss_mib=outcome.peak_rss(),
        target=target,
        measured=tk_median,
        notes=_notes(
            outcome.problem,
            *sorted(set(notes)),
            sizes.scale != 1 and "target is set for 1,000 items; this run is scaled down",
        ),
    )


def _export_case(ctx: Context) -> CaseDir:
    """Ingest the items, add the incidents and link every item to one of them (untimed)."""
    tk = ctx.toolkit
    corpus = ctx.corpus("export-items")
    case = tk.new_case("export")
    ctx.say("export: ingesting, adding incidents and linking (untimed) ...")
    done = run_setup(tk.ingest_argv(case, corpus.root), env=case.env)
    if done.returncode != 0:
        tk.remove(case)
        raise ToolkitUnavailable(f"ingest for the export case failed: {_last(done.stderr)}")
    incidents = []
    for number in range(1, ctx.sizes.export_incidents + 1):
        done = run_setup(
            tk.command(
                "incident",
                "add",
                "--title",
                f"Transfer of children, episode {number}",
                "--place",
                "Town A",
                "--start",
                "2022-05",
                "--case",
                str(case.path),
            ),
            env=case.env,
        )
        if done.returncode != 0:
            tk.remove(case)
            raise ToolkitUnavailable(f"evidence incident add failed: {_last(done.stderr)}")
        found = _INCIDENT_ID.findall(done.stdout)
        incidents.append(found[-1] if found else f"INC-{number:04d}")
    items = [hashlib.sha256(path.read_bytes()).hexdigest() for path in corpus.files]
    groups: dict[str, list[str]] = {incident: [] for incident in incidents}
    for position, item in enumerate(items):
        groups[incidents[position % len(incidents)]].append(item)
    group_size = _LINK_GROUP
    for incident, members in groups.items():
        start = 0
        while start < len(members):
            chunk = members[start : start + group_size]
            done = _link(tk, case, chunk, incident)
            if done.returncode != 0 and group_size > 1:
                # The command may take one item at a time: fall back to that.
                group_size = 1
                continue
            if done.returncode != 0:
                tk.remove(case)
                raise ToolkitUnavailable(f"evidence link failed: {_last(done.stderr)}")
            start += len(chunk)
    return case


def _link(
    tk: Toolkit, case: CaseDir, items: list[str], incident: str
) -> subprocess.CompletedProcess[str]:
    argv = tk.command(
        "link",
        *items,
        "--incident",
        incident,
        "--reason",
        "benchmark: items of this episode",
        "--case",
        str(case.path),
    )
    return run_setup(argv, env=case.env)


def _last(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"
