"""``amrbench condense ...`` and ``amrbench plot condensed ...``: export a condensed set as
HDF5 and draw it next to real signals (the MDM paper's Fig. 2).

Wiring into the main CLI is one call; each subcommand sets ``handler``, called as
``args.handler(args, registry)`` and returning an exit code::

    from amrbench_plugins.condense import commands as condense_cli
    condense_cli.add_parser(subparsers)      # adds `condense` and `plot condensed`

``amrbench condense SUITE.yaml --method MDM --spc 50 [--dataset LABEL] [--model alexnet]
[--seed 0] [--profile quick] --out mdm50.h5`` condenses (or loads from the artifact cache,
so a finished suite run is reused) the set one cell of the suite uses.
``amrbench condense DATASET --method mdm --spc 50 [--param alpha=0.5] [--data-param
per_class_per_snr=200] [--snr 10 18] [--model alexnet] --out mdm50.h5`` does the same for a
dataset plugin with the condense protocol's defaults.

HDF5 layout (the generic format the ``file`` dataset plugin reads): datasets ``x``
(N, 2, L) float32, ``y`` (N,) int64, ``snr`` (N,) float32 (NaN for synthetic signals),
optional ``weights`` (N,); attributes ``classes`` (strings), ``name``, ``format``
("amrbench-condensed/1"), ``method`` and ``method_params`` (JSON), ``spc``, ``dataset``
(the dataset spec as JSON), ``net``, ``seed``, ``condense_time_s``, ``amrbench_version``.
It prints (stderr) the condensation's learning rate and how it was chosen, the matching
loss first -> last, the movement ||S - S0|| / ||S0|| and whether it converged: the
figures of the condense protocol's record.

``amrbench plot condensed FILE.h5 [--real DATASET] [--snr LO HI] [--data-param K=V]
[--examples 1] --out fig.png``: one column per class; rows: real signals (time domain, I
solid and Q dashed; then |DFT(I)|, |DFT(Q)|), then the condensed ones likewise. Without
``--real`` the dataset spec stored in the file is used (if any).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from amrbench.basics import AmrbenchError
from amrbench.data.commands import parse_params
from amrbench.hookspecs import hookimpl

FORMAT = "amrbench-condensed/1"


# --------------------------------------------------------------------------- parser
def add_parser(subparsers) -> None:
    """Add ``condense`` and ``plot`` (with ``plot condensed``) to ``subparsers``."""
    p = subparsers.add_parser("condense", help="condense a dataset (or one cell of a suite) and export it as HDF5",
                              description="Condense a dataset plugin, or the set one cell of a condense suite uses "
                                          "(reused from the artifact cache when a run made it), and export it as HDF5 "
                                          "that the `file` dataset plugin reads. Draw it with `amrbench plot condensed`.")
    p.add_argument("source", metavar="SUITE_OR_DATASET", help="a suite YAML (condense protocol) or a dataset plugin name")
    p.add_argument("--method", help="suite: a method label or name; dataset: a condenser name (default mdm)")
    p.add_argument("--spc", type=int, help="signals per class (suite: one of its spc values)")
    p.add_argument("--model", help="condensation (source) model; suite: to pick a model pair; dataset: default alexnet")
    p.add_argument("--dataset", help="suite: a dataset label or name when the suite has several")
    p.add_argument("--seed", type=int, default=None, help="seed (suite: one of its seeds; dataset: default 0)")
    p.add_argument("--profile", help="suite: a profile of the suite")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset mode: a condenser parameter (VALUE parsed as JSON when it can be)")
    p.add_argument("--data-param", action="append", default=[], metavar="KEY=VALUE", help="dataset mode: a dataset parameter")
    p.add_argument("--snr", nargs=2, type=float, metavar=("LO", "HI"), help="dataset mode: keep LO <= SNR <= HI")
    p.add_argument("--test-fraction", type=float, default=0.2, help="dataset mode: test split fraction (default 0.2)")
    p.add_argument("--standardize", action="store_true",
                   help="dataset mode: scale I and Q by the training split's mean/std (as the MDM suites); "
                        "the export then holds standardised signals")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--cache", help="artifact cache directory (default $AMRBENCH_CACHE/artifacts)")
    p.add_argument("--out", required=True, help="HDF5 file to write")
    p.set_defaults(handler=cmd_condense)

    plot = subparsers.add_parser("plot", help="figures from exported files",
                                 description="Figures from files amrbench exported.")
    sub = plot.add_subparsers(dest="plot_command", metavar="{condensed}")
    sub.required = True
    c = sub.add_parser("condensed", help="condensed vs real signals per class, time domain and |DFT| (MDM Fig. 2)")
    c.add_argument("file", metavar="FILE.h5", help="a file written by `amrbench condense`")
    c.add_argument("--real", metavar="DATASET", help="dataset plugin for the real rows (default: the file's dataset)")
    c.add_argument("--snr", nargs=2, type=float, metavar=("LO", "HI"), help="SNR filter of the real dataset")
    c.add_argument("--data-param", action="append", default=[], metavar="KEY=VALUE", help="a real-dataset parameter")
    c.add_argument("--examples", type=int, default=1, help="signals drawn per class and row (default 1)")
    c.add_argument("--seed", type=int, default=0, help="which real and condensed signals are drawn")
    c.add_argument("--out", required=True, help="PNG file to write")
    c.set_defaults(handler=cmd_plot_condensed)


# --------------------------------------------------------------------------- condense
def _is_suite(source: str) -> bool:
    return source.endswith((".yaml", ".yml")) or Path(source).is_file()


def _suite_cell(args, registry) -> dict:
    from amrbench.suite import expand, load_suite

    if args.param or args.data_param or args.snr or args.standardize:
        raise AmrbenchError("--param, --data-param, --snr and --standardize apply to a dataset name; "
                            "edit the suite instead")
    suite = load_suite(args.source, profile=args.profile, seeds=[args.seed] if args.seed is not None else None,
                       registry=registry)
    if suite.protocol != "condense":
        raise AmrbenchError(f"{args.source}: protocol {suite.protocol!r}; `amrbench condense` needs a condense suite")
    cells = expand(suite, registry)

    def keep(cell) -> bool:
        c, labels = cell["config"], cell["labels"]
        if args.method and args.method not in (labels["method"], c["method"]["name"]):
            return False
        if args.spc is not None and c["budget"]["spc"] != args.spc:
            return False
        if args.dataset and args.dataset not in (labels["dataset"], c["dataset"]["name"]):
            return False
        if args.model and args.model not in (c["model"]["source"], labels["model"]):
            return False
        return True

    chosen = [c for c in cells if keep(c)]
    if not chosen:
        raise AmrbenchError(f"{args.source}: no cell matches; methods: {', '.join(m['label'] for m in suite.methods)}; "
                            f"spc: {', '.join(str(b.spc) for b in suite.budgets)}; datasets: "
                            f"{', '.join(d['label'] for d in suite.datasets)}")
    # cells that differ only in the target model share one condensed set
    distinct = {}
    for cell in chosen:
        c = cell["config"]
        distinct.setdefault(json.dumps([c["dataset"], c["method"], c["budget"], c["model"]["source"], c["seed"]],
                                       sort_keys=True), cell)
    if len(distinct) > 1:
        options = sorted({f"{c['labels']['dataset']} | {c['labels']['method']} | {c['labels']['budget']} | "
                          f"source {c['config']['model']['source']} | seed {c['labels']['seed']}" for c in distinct.values()})
        raise AmrbenchError(f"{args.source}: {len(distinct)} condensed sets match; narrow with --method, --spc, "
                            f"--dataset, --model, --seed: " + "; ".join(options[:8]) + (" ..." if len(options) > 8 else ""))
    return next(iter(distinct.values()))["config"]


def _dataset_cell(args, registry) -> dict:
    from amrbench.api import Budget
    from amrbench.suite import CellSpec, cell_config
    from amrbench.train import validate_train_settings

    if args.spc is None:
        raise AmrbenchError("--spc is required (signals per class)")
    if args.spc < 1:
        raise AmrbenchError(f"--spc {args.spc}: must be a positive integer")
    if not 0 < args.test_fraction < 1:
        raise AmrbenchError(f"--test-fraction {args.test_fraction}: must lie in (0, 1)")
    method = args.method or "mdm"
    model = args.model or "alexnet"
    condenser = registry.create("condenser", method, parse_params(args.param))
    dataset = registry.create("dataset", args.source, parse_params(args.data_param))
    registry.get("model", model)
    protocol = registry.get("protocol", "condense")
    seed = 0 if args.seed is None else args.seed
    spec = CellSpec(protocol="condense", budget=Budget(spc=int(args.spc)), seed=seed, train=validate_train_settings({}),
                    dataset={"name": args.source, "params": dataset.params, "snr": list(args.snr) if args.snr else None,
                             "test_fraction": float(args.test_fraction), "seed": 0,
                             **({"standardize": True} if args.standardize else {})},
                    method={"name": method, "params": condenser.params},
                    model={"source": model, "target": model}, settings=dict(protocol.defaults))
    return cell_config(spec, registry)


def condense_config(config: dict, device: str = "cpu", cache=None, registry=None) -> dict:
    """The condensed-set artifact of a condense cell config (computed or from the cache)."""
    from amrbench import runner
    from amrbench.resources import load_splits

    registry = registry or runner.default_registry()
    runner.resolve_device(device)
    # the condense protocol module registers the "condensed" resource when it loads
    registry.get("protocol", "condense")
    ctx = runner.make_context(config, {"device": device, "cache": cache})
    train, _ = load_splits(ctx.registry, config["dataset"])
    spc = int(config["budget"]["spc"])
    smallest = int(train.class_counts().min())
    if spc > smallest:
        raise AmrbenchError(f"--spc {spc} exceeds the smallest class ({smallest} training signals)")
    return ctx.resource("condensed")


def write_condensed(path, artifact: dict, config: dict) -> None:
    import h5py

    from amrbench import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("x", data=np.asarray(artifact["x"], dtype=np.float32))
        f.create_dataset("y", data=np.asarray(artifact["y"], dtype=np.int64))
        f.create_dataset("snr", data=np.asarray(artifact["snr"], dtype=np.float32))
        if artifact.get("weights") is not None:
            f.create_dataset("weights", data=np.asarray(artifact["weights"], dtype=np.float32))
        f.attrs.create("classes", list(artifact["classes"]), dtype=h5py.string_dtype())
        f.attrs["name"] = str(artifact.get("name") or "condensed")
        f.attrs["format"] = FORMAT
        f.attrs["method"] = config["method"]["name"]
        f.attrs["method_params"] = json.dumps(config["method"]["params"], sort_keys=True)
        f.attrs["spc"] = int(config["budget"]["spc"])
        f.attrs["dataset"] = json.dumps(config["dataset"], sort_keys=True)
        f.attrs["net"] = str(artifact.get("net") or "")
        f.attrs["seed"] = int(config["seed"])
        f.attrs["condense_time_s"] = float(artifact.get("condense_time_s") or 0.0)
        f.attrs["amrbench_version"] = __version__
    tmp.replace(path)


def read_condensed(path) -> dict:
    """x, y, snr, classes (and the stored attributes) of an exported file."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise AmrbenchError(f"{path}: file not found; write one with `amrbench condense ... --out {path}`")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("x", "y") if k not in f]
            if missing or "classes" not in f.attrs and "classes" not in f:
                raise AmrbenchError(f"{path}: not a condensed-set file (needs datasets x, y and attribute classes)")
            classes = f.attrs["classes"] if "classes" in f.attrs else f["classes"][()]
            out = {"x": f["x"][()], "y": f["y"][()], "snr": f["snr"][()] if "snr" in f else None,
                   "classes": [c.decode() if isinstance(c, bytes) else str(c) for c in classes],
                   "attrs": {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items() if k != "classes"}}
    except OSError as exc:
        raise AmrbenchError(f"{path}: unreadable HDF5 file ({exc})") from None
    if out["x"].ndim != 3 or out["x"].shape[1] != 2:
        raise AmrbenchError(f"{path}: x must have shape (N, 2, L), got {out['x'].shape}")
    return out


def cmd_condense(args, registry) -> int:
    import sys

    config = _suite_cell(args, registry) if _is_suite(args.source) else _dataset_cell(args, registry)
    artifact = condense_config(config, args.device, args.cache, registry)
    write_condensed(args.out, artifact, config)
    x = np.asarray(artifact["x"])
    print(f"wrote {args.out}: {x.shape[0]} signals ({config['budget']['spc']} per class, {len(artifact['classes'])} "
          f"classes, length {x.shape[2]}) by {config['method']['name']} in {artifact['condense_time_s']:.1f} s",
          file=sys.stderr)
    for line in convergence_lines(artifact):
        print(line, file=sys.stderr)
    return 0


def convergence_lines(artifact: dict) -> list:
    """The figures a condense record holds: lr (and how it was chosen), loss first -> last,
    movement, verdict, seconds per iteration; nothing for condensers without iterations."""
    from amrbench_plugins.condense.synthetic import convergence_text, search_edge

    summary = artifact.get("convergence")
    if not summary:
        return []
    search = (artifact.get("details") or {}).get("lr_search")
    how = (f" (searched: {len(search['lrs'])} candidates x {search['iterations']} iterations, held-out loss "
           f"{search['initial_heldout_loss']:.4g} at S0 -> {min(v for v in search['heldout_loss'] if v is not None):.4g})"
           if search else "")
    lines = [f"lr {artifact.get('lr'):.4g}{how}", convergence_text(summary)]
    edge = search_edge(search)
    if edge:
        lines.append(f"the search chose its {edge} candidate: the best rate may lie outside search_steps "
                     f"{search['steps']} (widen them to see; the choice is made on the held-out matching loss)")
    if artifact.get("seconds_per_iteration"):
        lines.append(f"{artifact['seconds_per_iteration']:.3g} s per iteration")
    return lines


# --------------------------------------------------------------------------- plot
def _real_spec(args, stored: dict, registry) -> dict | None:
    text = stored.get("dataset")
    spec = json.loads(text) if text else None
    if args.real:
        dataset = registry.create("dataset", args.real, parse_params(args.data_param))
        real = {"name": args.real, "params": dataset.params, "snr": list(args.snr) if args.snr else None,
                "test_fraction": 0.2, "seed": 0}
        # real rows on the scale of the condensed ones
        return {**real, "standardize": True} if spec and spec.get("standardize") else real
    return spec


def _pick(rng, labels: np.ndarray, c: int, k: int) -> np.ndarray:
    members = np.flatnonzero(labels == c)
    return rng.choice(members, size=min(k, len(members)), replace=False) if len(members) else members


def cmd_plot_condensed(args, registry) -> int:
    import sys

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from amrbench.resources import load_splits

    data = read_condensed(args.file)
    if args.examples < 1:
        raise AmrbenchError("--examples must be at least 1")
    classes = data["classes"]
    spec = _real_spec(args, data["attrs"], registry)
    real = None
    if spec is not None:
        train, _ = load_splits(registry, spec)
        missing = [c for c in classes if c not in train.classes]
        if missing:
            raise AmrbenchError(f"the real dataset {spec['name']!r} lacks classes {missing} of {args.file}")
        real = (train.x.numpy(), np.array([classes.index(train.classes[i]) for i in train.y.numpy()]))
    rng = np.random.default_rng(args.seed)
    groups = ([("real", *real)] if real is not None else []) + [("condensed", data["x"], np.asarray(data["y"]))]
    rows = 2 * len(groups)
    k = len(classes)
    fig, axes = plt.subplots(rows, k, figsize=(2.1 * k, 1.8 * rows), squeeze=False)
    for g, (label, x, y) in enumerate(groups):
        for c in range(k):
            picks = _pick(rng, y, c, args.examples)
            t_ax, f_ax = axes[2 * g, c], axes[2 * g + 1, c]
            for i in picks:
                sig = x[i]
                spec_mag = np.abs(np.fft.fft(sig, axis=-1))
                t_ax.plot(sig[0], lw=0.7, color="tab:blue")
                t_ax.plot(sig[1], lw=0.7, color="tab:orange", ls="--")
                f_ax.plot(spec_mag[0], lw=0.7, color="tab:blue")
                f_ax.plot(spec_mag[1], lw=0.7, color="tab:orange", ls="--")
            if g == 0:
                t_ax.set_title(classes[c], fontsize=8)
            if c == 0:
                t_ax.set_ylabel(f"{label}\ntime", fontsize=8)
                f_ax.set_ylabel(f"{label}\n|DFT|", fontsize=8)
            for ax in (t_ax, f_ax):
                ax.tick_params(labelsize=5)
    attrs = data["attrs"]
    fig.suptitle(f"{attrs.get('method', 'condensed')} · {attrs.get('spc', '?')} signals/class · "
                 f"{attrs.get('net', '')} (I solid, Q dashed)", fontsize=9)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}", file=sys.stderr)
    return 0


@hookimpl
def amrbench_add_commands(subparsers):
    add_parser(subparsers)
