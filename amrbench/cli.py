"""Command line: ``amrbench run|table|list|leaderboard|datasets ...``.

User errors print one line ``amrbench: error: ...`` and exit 2 (``--debug`` shows the
traceback); a run with failed cells exits 1.
"""
from __future__ import annotations

import argparse
import importlib
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Optional

from amrbench import allocator, progress
from amrbench.basics import KINDS, AmrbenchError

DEFAULT_SUITE = "suites/quick.yaml"
# the core's own subcommand modules (add_parser(subparsers)); plugin families add theirs
# through the amrbench_add_commands hook of the amrbench.commands entry-point group
CORE_COMMAND_MODULES = ("amrbench.data.commands", "amrbench.cache_commands", "amrbench.report", "amrbench.agreement")
COMMANDS_GROUP = "amrbench.commands"
EXECUTOR_ALIASES = ("workers", "scheduler", "cluster", "retries")  # --workers N = --executor-param workers=N


def _seeds(text: str) -> list:
    """``--seeds``: a list 0,1,2 or an inclusive range 0-4 of distinct non-negative seeds."""
    usage = "give distinct non-negative integers like 0,1,2 or an ascending range like 0-4"
    try:
        if "-" in text and "," not in text:
            lo, hi = text.split("-")
            seeds = list(range(int(lo), int(hi) + 1))
            if not seeds:
                raise argparse.ArgumentTypeError(f"--seeds {text}: the range is empty ({lo.strip()} > {hi.strip()}); "
                                                 f"{usage}")
        else:
            seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: {usage}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: {usage}")
    return seeds


def _check_run_args(args) -> None:
    """Counts that must be positive, refused before anything is loaded or written."""
    for option in ("jobs", "threads"):
        value = getattr(args, option, None)
        if value is not None and value < 1:
            raise AmrbenchError(f"--{option} must be at least 1")


def _only(text: str) -> tuple:
    """``--only AXIS=VALUE[,VALUE]`` -> (axis, [text]); ``only_cells`` splits the text at
    commas unless it names a cell whole (a label may hold a comma)."""
    axis, sep, values = text.partition("=")
    if not sep or not axis.strip() or not values.replace(",", "").strip():
        raise argparse.ArgumentTypeError(f"--only {text!r}: give AXIS=VALUE[,VALUE], e.g. dataset=RML2016.10a")
    return axis.strip(), [values.strip()]


def _only_dict(pairs: list) -> dict:
    out = {}
    for axis, values in pairs:
        out.setdefault(axis, []).extend(values)
    return out


def _suite_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("suite", nargs="?", default=DEFAULT_SUITE, help="a suite YAML file, or a shipped suite by file "
                   f"name or name: (table1, mdm-table1; `amrbench suites` lists them; default {DEFAULT_SUITE})")
    p.add_argument("--profile", help="named overrides from the suite's profiles: block (e.g. quick)")
    p.add_argument("--results", help="this suite's results folder (default <root>/<suite name>/, "
                   "<root>/<suite name>-<profile>/ with --profile; the root being $AMRBENCH_RESULTS or ./results)")
    p.add_argument("--seeds", type=_seeds, help="override the suite's seeds: 0,1,2 or 0-4")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="amrbench", description="Benchmark data-efficiency methods for Automatic Modulation Recognition.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a suite (resumes: finished cells are skipped)")
    _suite_args(run)
    run.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    run.add_argument("--jobs", type=int, default=1, help="local worker processes (cells are independent)")
    run.add_argument("--executor", default="local", help="executor plugin (local, or dask with amrbench[dask])")
    run.add_argument("--executor-param", action="append", default=[], metavar="KEY=VALUE",
                     help="a parameter of the executor plugin (repeatable; `amrbench list executors` shows them), "
                     "e.g. --executor dask --executor-param workers=4")
    run.add_argument("--only", action="append", default=[], type=_only, metavar="AXIS=VALUE[,VALUE]",
                     help="run one block of the grid: the cells whose dataset, model, method or budget is one of "
                     "the values (label or plugin name; repeatable, e.g. --only dataset=RML2016.10a --only "
                     "model=cnn2d; a label holding a comma goes in an --only of its own); the table still shows "
                     "every stored cell")
    run.add_argument("--rerun", action="store_true",
                     help="run the selected cells (the suite, or its --only / --seeds block) again even when stored; "
                     "the new records supersede the old ones in tables, which stay in records.jsonl. It prints its "
                     "start time: a stopped rerun resumes with --rerun-before TIME")
    run.add_argument("--rerun-before", metavar="TIME",
                     help="run again the selected stored cells whose latest record started before TIME (ISO 8601, "
                     "as --rerun prints it): resumes a stopped --rerun")
    run.add_argument("--workers", type=int, help="dask: a local cluster of N single-threaded worker processes "
                     "(= --executor-param workers=N)")
    run.add_argument("--scheduler", help="dask: address of a running scheduler, e.g. tcp://host:8786 "
                     "(= --executor-param scheduler=ADDRESS)")
    run.add_argument("--cluster", help="dask: YAML of dask-jobqueue settings (kind: slurm|pbs|lsf|sge, ...; "
                     "= --executor-param cluster=FILE)")
    run.add_argument("--retries", type=int, help="reruns of a cell whose worker process died (--jobs N, dask; "
                     "default 2; = --executor-param retries=N)")
    run.add_argument("--threads", type=int, help="torch threads per cell (default 1, with any --jobs or executor: "
                     "the thread count changes a cell's numbers, so runs compare only at equal --threads)")
    run.add_argument("--cache", help="artifact cache directory (default $AMRBENCH_CACHE/artifacts)")
    run.add_argument("--dry-run", action="store_true", help="print the expanded grid, what is already done and the "
                     "estimated CPU-hours and wall time of the rest")
    run.add_argument("--yes", action="store_true", help="run a local grid estimated at more than 24 CPU-hours")
    run.add_argument("--format", default="markdown", help="format of the table printed at the end")
    run.add_argument("--reporter", action="append", default=[], help="turn on an opt-in reporter for this run "
                     "(repeatable): mlflow, with amrbench[mlflow] (docs/reporters.md)")
    run.add_argument("--tracking-uri", help="mlflow reporter: where to log (default $MLFLOW_TRACKING_URI, else "
                     "./mlruns); implies --reporter mlflow")

    table = sub.add_parser("table", help="re-render a suite's table from stored records")
    _suite_args(table)
    table.add_argument("--format", default="markdown", help="markdown, latex, csv or html")
    table.add_argument("--out", help="write to this file instead of stdout")
    table.add_argument("--write", action="store_true", help="also refresh table.md, the curves and the "
                       "critical-difference diagram in the results folder from the stored records")

    lst = sub.add_parser("list", help="list registered plugins by kind")
    lst.add_argument("kind", nargs="?", help="one kind: " + ", ".join([k + "s" for k in KINDS] + ["reporters"]))
    lst.add_argument("--refresh", action="store_true", help="import every plugin again instead of reading their "
                     "metadata cached in $AMRBENCH_CACHE (default ~/.cache/amrbench); the cache refreshes itself "
                     "when plugins are installed, upgraded or edited")

    board = sub.add_parser("leaderboard", help="rebuild results/LEADERBOARD.md from committed records")
    board.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    board.add_argument("--results-root", help="folder holding one results folder per suite; LEADERBOARD.md is "
                       "written there (default $AMRBENCH_RESULTS, else ./results)")
    board.add_argument("--suites", default="suites", help="folder of suite files")

    suites = sub.add_parser("suites", help="list the shipped suites: name, file, profiles and the CPU-hours their "
                            "stored records took")
    suites.add_argument("--cost", action="store_true", help="also estimate every profile's whole grid in CPU-hours "
                        "(fits the cost model on the stored records; loads the plugins, about a minute)")

    for module_name in CORE_COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(sub)
    _plugin_commands().hook.amrbench_add_commands(subparsers=sub)
    return parser


def _plugin_commands():
    """A plugin manager over the ``amrbench.commands`` entry points (each module alone:
    one that fails to import is reported on stderr and the others still load)."""
    import importlib.metadata

    import pluggy

    from amrbench import hookspecs

    manager = pluggy.PluginManager("amrbench")
    manager.add_hookspecs(hookspecs)
    for ep in sorted(importlib.metadata.entry_points(group=COMMANDS_GROUP), key=lambda e: (e.name, e.value)):
        try:
            module = ep.load()
            if not manager.is_registered(module):
                manager.register(module, name=f"{ep.name}:{ep.value}")
        except Exception as exc:
            print(f"amrbench: warning: the commands of {ep.value} ({ep.dist.name if ep.dist else '?'}) failed "
                  f"to load: {type(exc).__name__}: {exc}", file=sys.stderr)
    return manager


def _executor_params(args) -> dict:
    """The executor plugin's parameters: the aliases (--workers, ...) and --executor-param."""
    from amrbench.data.commands import parse_params

    params = {k: getattr(args, k) for k in EXECUTOR_ALIASES if getattr(args, k, None) is not None}
    return {**params, **parse_params(args.executor_param, "--executor-param")}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    allocator.tune()
    previous = _interrupt_on_sigterm()
    try:
        return _main(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt_on_sigterm():
    """SIGTERM (``kill``, a batch scheduler's time limit) stops a command as Ctrl-C does:
    the finished cells stay stored and the run says how to resume. Returns the previous
    handler, or None where none can be set (not the main thread)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except (AttributeError, ValueError):
        return None


def _main(args) -> int:
    try:
        return int(COMMANDS.get(args.command, _delegate)(args) or 0)
    except AmrbenchError as exc:
        if args.debug:
            raise
        progress.end_line()
        print(f"amrbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        progress.end_line(interrupted=True)  # close a progress bar first: the message gets its own line
        again = f" with --rerun-before {args.rerun_before}" if getattr(args, "rerun_before", None) else ""
        print(f"amrbench: interrupted; finished cells are stored, rerun{again} to resume", file=sys.stderr)
        return 130


def _delegate(args) -> int:
    """Call a subcommand module's handler with the loaded registry, or with None when
    its parser set ``loads_plugins=False`` (it reads the plugin catalogue instead)."""
    if not getattr(args, "loads_plugins", True):
        return args.handler(args, None)
    from amrbench.registry import default_registry

    return args.handler(args, default_registry())


def _load(args):
    """The suite ``args.suite`` names (a file, or a shipped suite by name); sets
    ``args.suite_path`` to the file read."""
    from amrbench.suite import load_suite, resolve_suite_path

    args.suite_path = resolve_suite_path(args.suite)
    return load_suite(args.suite_path, profile=args.profile, seeds=args.seeds)


def _meta_suite_path(path: Path) -> str:
    """How suite.json names the suite: ``suites/<file>`` for a shipped suite (it resolves
    from any folder and any installation), else the path as given."""
    from amrbench.suite import shipped_suites

    shipped = shipped_suites().get(path.stem)
    return f"suites/{path.name}" if shipped is not None and shipped.resolve() == path.resolve() else str(path)


def _note_shipped_name(suite, path: Path, results) -> None:
    """A suite file of one's own that takes a shipped suite's name would add its records
    to that suite's results folder: say so (its cells have other keys, nothing is lost)."""
    from amrbench.suite import declared_name, shipped_suites

    if results:
        return
    shipped = shipped_suites()
    taken = {declared_name(p): p for p in shipped.values()}
    other = taken.get(suite.name)
    if other is not None and other.resolve() != path.resolve():
        print(f"amrbench: note: {path}: name {suite.name!r} is the shipped suite {other.name}'s, so its records join "
              f"that suite's folder; give it a name: of its own (or leave name: out to use the file name)",
              file=sys.stderr)


def cmd_run(args) -> int:
    from amrbench import render, runner, tables
    from amrbench.runner import RunOptions

    _check_run_args(args)
    suite = _load(args)
    _note_shipped_name(suite, args.suite_path, args.results)
    runner.resolve_device(args.device)
    args.rerun_before = _rerun_before(args)
    options = RunOptions(results=args.results, device=args.device, jobs=args.jobs, executor=args.executor,
                         cache=args.cache, threads=args.threads, executor_params=_executor_params(args),
                         only=_only_dict(args.only), rerun_before=args.rerun_before)
    from amrbench.suite import expand, only_cells

    grid = expand(suite)
    cells = only_cells(grid, options.only)  # a typo in --only fails here, before anything is written
    if args.dry_run:
        from amrbench.store import RecordStore

        store = RecordStore(runner.results_dir(suite, options) / "records.jsonl")
        stored = store.latest_ok()
        done = runner.reused_keys(stored, args.rerun_before)
        todo = [c for c in cells if c["key"] not in done]
        runner.note_changed_data(todo, store.latest().values(), store.path)
        print(runner.dry_run_report(suite, cells, done, _estimate(todo, store.path.parent, cache=args.cache), args.jobs,
                                    stored=set(stored)))
        return 0
    from amrbench.store import write_suite_meta, write_text_file

    _enable_reporters(args)
    _ignore_file_size_signal()
    out_dir = runner.results_dir(suite, options)
    _confirm_cost(suite, cells, args, out_dir)
    if args.rerun_before:
        print(f"amrbench: --rerun: the selected stored cells that started before {args.rerun_before} run again; "
              f"a stopped rerun resumes with --rerun-before {args.rerun_before}", file=sys.stderr)
    write_suite_meta(out_dir, _meta_suite_path(args.suite_path), args.profile,  # also fails early on a read-only folder
                     runner.artifact_time_metrics(grid))
    summary = runner.run_suite(suite, options)
    suite = _whole_profile(args, suite, summary.store)  # the table shows every stored seed, not only this block's
    records = _suite_records(suite, summary.store)
    write_text_file(out_dir / "table.md", render.render(suite, records, "markdown"),
                    "make the results folder writable; the records are stored, `amrbench table` renders them")
    _write_figures(suite, records, out_dir)
    print(render.render(suite, records, args.format))
    for record in summary.failed:
        print(f"  failed {record['key'][:12]}: {record['error']}", file=sys.stderr)
    for line in tables.mark_warnings(suite, records):  # e.g. unconverged condensations
        print(f"amrbench: warning: {line}", file=sys.stderr)
    figures = sum(1 for p in Path(out_dir).glob("*") if p.suffix in (".png", ".svg", ".pdf"))
    print(summary.line(suite.name, out_dir, figures), file=sys.stderr)
    return 1 if summary.failed else 0


def _rerun_before(args) -> Optional[str]:
    """``--rerun-before TIME`` (checked), or with ``--rerun`` the next whole second, as
    records' ``started_at``: waiting for it puts every stored cell before it and every
    cell this run starts at or after it."""
    from amrbench import runner

    if args.rerun_before:
        runner.rerun_time(args.rerun_before)
        return args.rerun_before
    if not args.rerun:
        return None
    now = time.time()
    limit = int(now) + 1
    time.sleep(limit - now)
    return time.strftime(runner.RERUN_TIME, time.localtime(limit))


def _enable_reporters(args) -> None:
    """``--reporter NAME`` (and ``--tracking-uri``, which implies mlflow): turn on those
    opt-in reporters before anything runs, so that a missing extra fails first."""
    names = args.reporter + (["mlflow"] if args.tracking_uri else [])
    if names:
        from amrbench.registry import default_registry
        from amrbench.reporting import enable_reporters

        enable_reporters(default_registry(), names, {"tracking_uri": args.tracking_uri})


def _estimate(todo: list, *extra_roots, cache=None):
    """The cost estimate of the cells still to run (``amrbench.cost``); the shared
    artifacts already in the artifact cache (``--cache``) cost nothing."""
    from amrbench import cost
    from amrbench.store import ArtifactCache

    return cost.default_model(extra_roots).estimate(todo, cached=ArtifactCache(cache).stored_ids())


def _confirm_cost(suite, cells: list, args, out_dir) -> None:
    """A local grid (or ``--only`` block: ``cells``) estimated at more than a day of CPU
    time runs only with --yes."""
    from amrbench import cost, runner
    from amrbench.store import RecordStore

    if args.yes or args.executor != "local":
        return
    store = RecordStore(Path(out_dir) / "records.jsonl")
    stored = store.latest_ok() if store.path.exists() else {}
    done = runner.reused_keys(stored, args.rerun_before)
    todo = [c for c in cells if c["key"] not in done]
    if todo:
        cost.confirm_cost(_estimate(todo, out_dir.parent, cache=args.cache), args.jobs, args.executor, args.yes,
                          suite.name)


def _ignore_file_size_signal() -> None:
    """A file-size limit (ulimit -f) then fails a write with EFBIG, reported as one error
    line, instead of killing the run with SIGXFSZ mid-write."""
    try:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    except (AttributeError, ValueError):  # no such signal here, or not the main thread
        pass


def _write_figures(suite, records, out_dir) -> None:
    """Curves and the critical-difference diagram beside table.md; notes to stderr."""
    from amrbench.figures import write_figures

    for note in write_figures(suite, records, out_dir):
        print(note, file=sys.stderr)


def _whole_profile(args, suite, store):
    """The suite whose table a run writes: with ``--seeds``, the profile's own seeds, the
    block's and those of the folder's stored records, so running seed 2 alone does not
    leave a table of seed 2 alone."""
    from amrbench.suite import load_suite

    if args.seeds is None:
        return suite
    seeds = list(load_suite(args.suite_path, profile=args.profile).seeds)
    stored = sorted({r["labels"]["seed"] for r in store.latest().values()
                     if isinstance((r.get("labels") or {}).get("seed"), int)})
    seeds = list(dict.fromkeys(seeds + list(args.seeds) + stored))
    return load_suite(args.suite_path, profile=args.profile, seeds=seeds)


def _suite_records(suite, store) -> list:
    """The stored records of this suite's grid (latest per key)."""
    from amrbench.suite import expand

    keys = {c["key"] for c in expand(suite)}
    return [r for k, r in store.latest().items() if k in keys]


def cmd_table(args) -> int:
    from amrbench import render, runner
    from amrbench import suite as suite_module
    from amrbench.runner import RunOptions
    from amrbench.store import RecordStore

    suite = _load(args)
    store = RecordStore(runner.results_dir(suite, RunOptions(results=args.results)) / "records.jsonl")
    if not store.path.exists():
        command = ["amrbench", "run", args.suite] + (["--profile", args.profile] if args.profile else []) + \
            (["--results", args.results] if args.results else [])
        raise AmrbenchError(f"{store.path}: no records yet; run `{shlex.join(command)}` first")
    records = _suite_records(suite, store)
    suite_module.require_records(suite, records, set(store.latest()), store.path)
    text = render.render(suite, records, args.format)
    from amrbench.store import write_text_file

    if args.write:
        write_text_file(store.path.parent / "table.md", render.render(suite, records, "markdown"),
                        "make the results folder writable")
        _write_figures(suite, records, store.path.parent)
    if args.out:
        write_text_file(Path(args.out), text, "choose a writable --out path")
    else:
        print(text, end="")
    return 0


def cmd_list(args) -> int:
    from amrbench.catalog import load_catalog
    from amrbench.listing import list_plugins

    print(list_plugins(load_catalog(refresh=args.refresh), args.kind))
    return 0


def cmd_leaderboard(args) -> int:
    from amrbench.leaderboard import build_leaderboard

    from amrbench.shipped import results_root

    root = Path(args.results_root) if args.results_root else results_root()
    text = build_leaderboard(root, Path(args.suites))
    target = root / "LEADERBOARD.md"
    if args.check:
        if not target.exists() or target.read_text() != text:
            print(f"amrbench: {target} is stale; run `amrbench leaderboard` and commit it", file=sys.stderr)
            return 1
        print(f"{target} is up to date")
        return 0
    root.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(f"wrote {target}")
    return 0


def cmd_suites(args) -> int:
    if args.cost:
        from amrbench.cost import suites_table
    else:
        from amrbench.shipped import suites_table
    print(suites_table())
    return 0


COMMANDS = {"run": cmd_run, "table": cmd_table, "list": cmd_list, "leaderboard": cmd_leaderboard,
            "suites": cmd_suites}

if __name__ == "__main__":
    sys.exit(main())
