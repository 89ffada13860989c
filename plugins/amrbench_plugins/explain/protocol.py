"""Explainer protocol (Huang et al., "Visualizing deep learning-based radio modulation
classifier"): train a classifier, explain a sample of the test split with an explainer,
and measure how faithful the explanations are.

A cell is dataset x model x explainer x seed (no budget axis). The classifier is a
shared artifact (resource ``explain-classifier``): trained once per (dataset, model,
seed, training settings) on the train split and reused by every explainer of the grid.
``n_signals`` test signals are drawn at random (seeded by the cell's seed only, so every
explainer explains the same signals) and explained for the class the classifier predicts
(j* of the paper), band by SNR band, in chunks of ``batch_size``.

Settings (suite ``settings:``):
- ``n_signals`` (200): test signals explained per cell (all when larger than the split).
- ``batch_size`` (256): signals per explainer call.
- ``xi`` (0.01): deletion value of the metrics (Table II; the mask explainer has its own).
- ``curve_steps`` (20): points of the deletion / insertion curves (steps + 1 fractions).
- ``topk`` (0.1): fraction of samples masked for ``topk_drop`` / ``random_drop``.
- ``random_repeats`` (3): random masks averaged in ``random_drop``.
- ``snr_edges`` ([0, 10]): SNR band edges in dB (bands "<0", "0..<10", ">=10").
- ``sanity`` (true): run the model-randomisation check (explains the sample again for a
  freshly initialised network of the same architecture; doubles the explainer's cost).
- ``classifier`` ({}): training-setting overrides of the explained classifier (default:
  the suite's ``train``).
- ``figures`` (null): a folder; when set, each cell also writes its figures there (see
  ``amrbench_plugins.explain.plots``: one test signal per class, constellation + time domain,
  the class x model x input-format grid rebuilt from every cell's data so far, and the
  split experiment). ``figure_formats`` (["native"]): input formats the classifier is
  (re)trained with for the figures: "native" (the model's own), "iq", "amp_phase".
  ``split_figure`` (false): also train the model on the two halves of every signal
  (L/2 samples each) and draw the full-length vs split explanations (paper Figs. 16-17).

Metrics (flat scalars; the table reads them): ``deletion_auc`` (lower is better),
``insertion_auc``, ``topk_drop``, ``random_drop``, ``sanity_similarity`` (mean Spearman
correlation with the randomised model's explanations; lower is better),
``seconds_per_signal`` (explainer wall time / signals), ``mask_area`` (mean w),
``area_above_eta`` (fraction of w > 0.4), ``accuracy`` (the classifier's test accuracy),
``sample_accuracy``, ``format`` ("iq" or "amp_phase": the classifier's input), ``classes``
and ``confusion`` (its test confusion matrix, rows = true class), ``confusion_by_format``
({format: matrix} of the ``figure_formats`` classifiers; only with ``figures``),
``n_signals``, ``sanity_passed`` (similarity < 0.5), the mean
``deletion_curve`` / ``insertion_curve``, ``objective_first`` / ``objective_last``
(explainers that keep a ``history``), and ``per_snr_band``: {band: {the same metrics,
"n"}}. A cell whose explainer cannot explain the model (Grad-CAM on the LSTM) is ``ok``
with ``applicable: false``, its reason, and no faithfulness metrics (a "–" in tables).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from amrbench import transforms
from amrbench.api import AmrbenchError, Protocol, SignalSet, Stopwatch, copy_timings
from amrbench.hookspecs import hookimpl
from amrbench.train import classification_metrics, evaluate, fit, predict, validate_train_settings
from amrbench_plugins.explain import attribution as X

RESOURCE = "explain-classifier"
VIEWS = ("native", "iq", "amp_phase")
METRICS = ("deletion_auc", "insertion_auc", "topk_drop", "random_drop", "sanity_similarity", "seconds_per_signal",
           "mask_area", "area_above_eta")


# --------------------------------------------------------------------------- classifiers
def classifier_settings(cell: dict) -> dict:
    return validate_train_settings({**cell["train"], **(cell["settings"].get("classifier") or {})})


def canonical_view(native: str, view: str) -> str:
    """Views that equal the model's own format collapse to "native" (one cache entry)."""
    if view == "iq" and native in ("iq", "iq_2d"):
        return "native"
    if view == "amp_phase" and native == "amp_phase":
        return "native"
    return view


def view_input(native: str, view: str, x: torch.Tensor) -> torch.Tensor:
    """The network input of a model trained on ``view``: "iq" / "amp_phase" are given in
    the model's own layout (a 2-D model gets its (N, 1, 2, L) image of either)."""
    if view == "native":
        return transforms.apply(native, x)
    pre = transforms.amplitude_phase(x) if view == "amp_phase" else x
    return pre.unsqueeze(1) if native == "iq_2d" else pre


def split_halves(data: SignalSet, parts: int) -> SignalSet:
    """Each signal cut into ``parts`` consecutive pieces (labels and SNR repeated)."""
    if parts == 1:
        return data
    piece = data.length // parts
    xs = [data.x[..., i * piece:(i + 1) * piece] for i in range(parts)]
    return SignalSet(torch.cat(xs), data.y.repeat(parts), data.snr.repeat(parts), list(data.classes), data.name)


def classifier_config(ctx, model_name: str, view: str = "native", parts: int = 1) -> dict:
    cell = ctx.cell
    return {"dataset": cell["dataset"], "model": model_name,
            "model_version": ctx.registry.version_of("model", model_name), "seed": cell["seed"],
            "train": classifier_settings(cell), "view": view, "parts": int(parts)}


def _train_classifier(ctx, model_name: str, view: str, parts: int) -> dict:
    train, test = ctx.resource("dataset")
    train, test = split_halves(train, parts), split_halves(test, parts)
    model = ctx.registry.create("model", model_name)
    settings = classifier_settings(ctx.cell)
    fit_format = model.input_format if view == "native" else ("iq_2d" if model.input_format == "iq_2d" else "iq")

    def pre(data):
        if view == "amp_phase":
            return SignalSet(transforms.amplitude_phase(data.x), data.y, data.snr, list(data.classes), data.name)
        return data

    ctx.seed_torch("explain", "classifier", view, parts)
    net = model.build(train.num_classes, train.length)
    with Stopwatch() as training:
        fit(net, fit_format, pre(train), settings, ctx.torch_generator("explain", "classifier", view, parts), ctx.device)
    metrics = evaluate(net, fit_format, pre(test), settings, ctx.device)
    return {"state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}, "accuracy": metrics["accuracy"],
            "per_snr": metrics["per_snr"], **training.timings("train_time_s", 6), "length": train.length, "view": view,
            "parts": parts, "confusion": metrics["confusion"]}


def classifier(ctx, model_name: str, view: str = "native", parts: int = 1) -> dict:
    """The trained classifier artifact (cached; computed once per configuration)."""
    native = ctx.registry.get("model", model_name).input_format
    view = canonical_view(native, view)
    if view == "native" and parts == 1 and model_name == ctx.cell["model"]["source"]:
        return ctx.resource(RESOURCE)
    config = classifier_config(ctx, model_name, view, parts)
    key = (RESOURCE, repr(sorted(config.items(), key=str)))
    if key not in ctx.memo:
        ctx.memo[key] = ctx.cache.get_or_compute(RESOURCE, config,
                                                 lambda: _train_classifier(ctx, model_name, view, parts))
    return ctx.memo[key]


def load_network(ctx, model_name: str, artifact: dict, num_classes: int):
    model = ctx.registry.create("model", model_name)
    net = model.build(num_classes, int(artifact["length"]))
    net.load_state_dict(artifact["state_dict"])
    return net.to(ctx.device).eval()


def classifier_confusion(ctx, model_name: str, artifact: dict, test: SignalSet) -> list:
    """The classifier's test confusion matrix (rows: true class); an artifact cached before
    it was stored is evaluated again (whole-signal classifiers only)."""
    if artifact.get("confusion") is None:
        native = ctx.registry.get("model", model_name).input_format
        net = load_network(ctx, model_name, artifact, test.num_classes)
        z = view_input(native, canonical_view(native, artifact.get("view", "native")), test.x)
        logits = predict(net, "iq", z, classifier_settings(ctx.cell)["eval_batch_size"], ctx.device)
        artifact["confusion"] = classification_metrics(logits, test)["confusion"]
    return artifact["confusion"]


def _source_classifier_config(ctx) -> dict:
    return classifier_config(ctx, ctx.cell["model"]["source"])


def _train_source_classifier(ctx):
    return _train_classifier(ctx, ctx.cell["model"]["source"], "native", 1)


# --------------------------------------------------------------------------- measuring
def explain_in_chunks(explainer, net, z, target, batch_size: int):
    """Explanations (N, L) and the explainer's wall time; ``history`` of the chunks kept."""
    out, histories = [], []
    started = time.perf_counter()
    for start in range(0, z.shape[0], batch_size):
        w = explainer.explain(net, z[start:start + batch_size], target[start:start + batch_size])
        w = torch.as_tensor(w).detach().float().cpu()
        if w.shape != (min(batch_size, z.shape[0] - start), z.shape[-1]):
            raise AmrbenchError(f"explainer {explainer.name!r} returned shape {tuple(w.shape)}, expected (N, L) = "
                                f"({min(batch_size, z.shape[0] - start)}, {z.shape[-1]})")
        if not torch.isfinite(w).all() or w.min() < 0 or w.max() > 1:
            raise AmrbenchError(f"explainer {explainer.name!r} returned values outside [0, 1]")
        out.append(w)
        if explainer.history:
            histories.append(list(explainer.history))
    seconds = time.perf_counter() - started
    return torch.cat(out), seconds, histories


def measure(explainer, net, random_net, z, target, snr, settings: dict, generator: torch.Generator) -> dict:
    """Explain ``z`` band by band and compute every metric, overall and per SNR band."""
    xi, steps, topk = float(settings["xi"]), int(settings["curve_steps"]), float(settings["topk"])
    batch = int(settings["batch_size"])
    n = z.shape[0]
    w = torch.zeros(n, z.shape[-1])
    seconds = torch.zeros(n)
    histories = []
    bands = X.snr_bands(snr, settings["snr_edges"])
    for label, index in bands:
        w_band, s, h = explain_in_chunks(explainer, net, z[index], target[index], batch)
        w[index] = w_band
        seconds[index] = s / len(index)
        histories += h
    base = X.probabilities(net, z, target)
    per = {
        "deletion": X.perturbation_curve(net, z, w, target, xi, steps, False, generator),
        "insertion": X.perturbation_curve(net, z, w, target, xi, steps, True, generator),
    }
    values = {
        "deletion_auc": X.auc(per["deletion"]),
        "insertion_auc": X.auc(per["insertion"]),
        "topk_drop": X.topk_drop(net, z, w, target, topk, xi, generator, base=base),
        "random_drop": X.random_drop(net, z, target, topk, xi, generator, int(settings["random_repeats"]), base=base),
        "seconds_per_signal": seconds,
        "mask_area": w.mean(1),
        "area_above_eta": X.area_above(w, X.ETA),
    }
    if settings["sanity"]:
        w_random, _, _ = explain_in_chunks(explainer, random_net, z, target, batch)
        values["sanity_similarity"] = X.spearman(w, w_random)
    metrics = {k: X.mean_or_none(v) for k, v in values.items()}
    metrics.setdefault("sanity_similarity", None)
    metrics["sanity_passed"] = None if metrics["sanity_similarity"] is None else metrics["sanity_similarity"] < 0.5
    metrics["deletion_curve"] = [round(float(v), 5) for v in per["deletion"].mean(0)]
    metrics["insertion_curve"] = [round(float(v), 5) for v in per["insertion"].mean(0)]
    metrics["per_snr_band"] = {
        label: {**{k: X.mean_or_none(v[index]) for k, v in values.items()}, "n": int(len(index))}
        for label, index in bands}
    if histories:
        metrics["objective_first"] = float(np.mean([h[0] for h in histories]))
        metrics["objective_last"] = float(np.mean([h[-1] for h in histories]))
    metrics["_w"] = w
    return metrics


# --------------------------------------------------------------------------- protocol
class ExplainProtocol(Protocol):
    """Explainers: train a classifier, explain test signals, measure faithfulness (deletion/insertion AUC, sanity)."""

    name = "explain"
    version = "1"
    method_kind = "explainer"
    training_time = ("classifier_train_time_s", "source", None)
    budget_axis = None
    defaults = {"n_signals": 200, "batch_size": 256, "xi": 0.01, "curve_steps": 20, "topk": 0.1,
                "random_repeats": 3, "snr_edges": [0, 10], "sanity": True, "classifier": {}, "figures": None,
                "figure_formats": ["native"], "split_figure": False}
    train_settings = ("classifier",)

    @classmethod
    def cell_work(cls, cell: dict, budget_signals: int) -> float:
        """For cost estimates: the signals explained (twice with the sanity check)."""
        settings = cell["settings"]
        if isinstance(settings.get("n_signals"), int):
            return settings["n_signals"] * (2 if settings.get("sanity", True) else 1)
        return super().cell_work(cell, budget_signals)
    metrics = METRICS + ("accuracy", "classifier_per_snr", "classifier_train_time_s", "cpu_classifier_train_time_s",
                         "n_signals", "sample_accuracy", "backend", "format", "classes", "confusion", "applicable",
                         "reason", "sanity_passed", "deletion_curve", "insertion_curve", "per_snr_band", "objective_first", "objective_last",
                         "figures", "confusion_by_format")

    def __init__(self, **params):
        super().__init__(**params)
        p = self.params
        for key in ("n_signals", "batch_size", "curve_steps", "random_repeats"):
            if isinstance(p[key], bool) or not isinstance(p[key], int) or p[key] < 1:
                raise AmrbenchError(f"protocol 'explain': settings.{key} must be a positive integer, got {p[key]!r}")
        if not isinstance(p["topk"], (int, float)) or not 0 < p["topk"] <= 1:
            raise AmrbenchError("protocol 'explain': settings.topk must lie in (0, 1], e.g. 0.1 for 10%")
        if not isinstance(p["snr_edges"], list) or not all(isinstance(e, (int, float)) for e in p["snr_edges"]):
            raise AmrbenchError("protocol 'explain': settings.snr_edges must be a list of dB values, e.g. [0, 10]")
        if not isinstance(p["classifier"] or {}, dict):
            raise AmrbenchError("protocol 'explain': settings.classifier must be a mapping of training settings")
        formats = p["figure_formats"]
        if not isinstance(formats, list) or not formats or any(f not in VIEWS for f in formats):
            raise AmrbenchError(f"protocol 'explain': settings.figure_formats must be a list of {', '.join(VIEWS)}")
        if p["figures"] is not None and not isinstance(p["figures"], str):
            raise AmrbenchError("protocol 'explain': settings.figures must be a folder path (or null)")
        for key in ("sanity", "split_figure"):
            if not isinstance(p[key], bool):
                raise AmrbenchError(f"protocol 'explain': settings.{key} must be true or false")

    def needs(self, registry, cell):
        return [RESOURCE]

    def run_cell(self, ctx, cell):
        train, test = ctx.resource("dataset")
        settings = {**self.defaults, **cell["settings"]}
        model_name = cell["model"]["source"]
        model = ctx.registry.create("model", model_name)
        explainer = ctx.registry.create("explainer", cell["method"]["name"], cell["method"]["params"])
        artifact = classifier(ctx, model_name)
        net = load_network(ctx, model_name, artifact, test.num_classes)

        count = min(int(settings["n_signals"]), len(test))
        index = np.sort(ctx.rng("explain", "sample").choice(len(test), size=count, replace=False))
        sample = test.subset(index).to(ctx.device)
        z = transforms.apply(model.input_format, sample.x)
        logits = predict(net, model.input_format, sample.x, settings["batch_size"], ctx.device)
        target = logits.argmax(1).to(ctx.device)
        common = {"accuracy": artifact["accuracy"], "classifier_per_snr": artifact["per_snr"],
                  **copy_timings(artifact, classifier_train_time_s="train_time_s"), "n_signals": count,
                  "sample_accuracy": float((target.cpu() == sample.y.cpu()).float().mean()),
                  "backend": explainer.backend,
                  "format": self.format_of(model.input_format, "native"), "classes": list(test.classes),
                  "confusion": classifier_confusion(ctx, model_name, artifact, test)}
        ctx.seed_torch("explain", "random-init")
        random_net = model.build(test.num_classes, test.length).to(ctx.device).eval()
        try:
            metrics = measure(explainer, net, random_net, z, target, sample.snr.cpu(), settings,
                              ctx.torch_generator("explain", "metrics"))
        except X.NotApplicable as exc:
            return {**common, "applicable": False, "reason": str(exc), **{k: None for k in METRICS}}
        metrics.pop("_w")
        metrics.update(common, applicable=True)
        if settings.get("figures"):
            metrics["figures"] = self.write_figures(ctx, explainer, settings, test)
            if metrics["figures"]:  # the figure_formats classifiers are trained by now
                metrics["confusion_by_format"] = {
                    self.format_of(model.input_format, v): classifier_confusion(ctx, model_name,
                                                                                classifier(ctx, model_name, v), test)
                    for v in settings["figure_formats"]}
        return metrics

    # ------------------------------------------------------------------ figures
    @staticmethod
    def figure_indices(ctx, test: SignalSet) -> list:
        """One test signal per class, at the class's highest SNR, drawn at random (seeded by
        the cell's seed only: every model and explainer of a seed shows the same signals)."""
        rng = ctx.rng("explain", "figure")
        y, snr = test.y.numpy(), test.snr.numpy()
        out = []
        for c in range(test.num_classes):
            index = np.nonzero(y == c)[0]
            if not len(index):
                continue
            if not np.isnan(snr[index]).all():
                index = index[snr[index] == np.nanmax(snr[index])]
            out.append(int(rng.choice(index)))
        return out

    @staticmethod
    def explain_view(ctx, explainer, model_name: str, view: str, parts: int, x: torch.Tensor, num_classes: int):
        """Explain raw I/Q signals ``x`` (N, 2, L / parts) with the classifier of ``model_name``
        trained on ``view`` (and on signals cut into ``parts``): (w, predictions, artifact)."""
        native = ctx.registry.get("model", model_name).input_format
        view = canonical_view(native, view)
        artifact = classifier(ctx, model_name, view, parts)
        net = load_network(ctx, model_name, artifact, num_classes)
        z = view_input(native, view, x.to(ctx.device))
        with torch.no_grad():
            pred = net(z).argmax(1)
        w = explainer.explain(net, z, pred)
        return torch.as_tensor(w).detach().float().cpu(), pred.cpu(), artifact

    @staticmethod
    def format_of(native: str, view: str) -> str:
        view = canonical_view(native, view)
        return "amp_phase" if view == "amp_phase" or (view == "native" and native == "amp_phase") else "iq"

    def explain_signal(self, ctx, explainer, index: int):
        """One test signal explained by the cell's classifier (``amrbench explain``); None
        when the explainer cannot explain the model."""
        _, test = ctx.resource("dataset")
        if not 0 <= index < len(test):
            raise AmrbenchError(f"--signal {index}: the test split has {len(test)} signals (0..{len(test) - 1})")
        model_name = ctx.cell["model"]["source"]
        one = test.subset([index])
        try:
            w, pred, artifact = self.explain_view(ctx, explainer, model_name, "native", 1, one.x, test.num_classes)
        except X.NotApplicable:
            return None
        return {"x": one.x[0].numpy(), "w": w[0].numpy(), "truth": test.classes[int(one.y[0])],
                "pred": test.classes[int(pred[0])], "snr": float(one.snr[0]), "model": model_name,
                "method": explainer.name, "dataset": ctx.cell["dataset"]["name"], "accuracy": artifact["accuracy"]}

    def write_figures(self, ctx, explainer, settings: dict, test: SignalSet) -> list:
        """The cell's figure data and PNGs in ``settings.figures``; the grids rebuilt."""
        from pathlib import Path

        from amrbench_plugins.explain import plots as P

        cell = ctx.cell
        folder = Path(settings["figures"])
        model_name = cell["model"]["source"]
        native = ctx.registry.get("model", model_name).input_format
        spec = cell["dataset"]
        dataset = P.dataset_label(spec)
        sub = test.subset(self.figure_indices(ctx, test))
        common = {"kind": "cell", "x": sub.x.numpy(), "y": sub.y.numpy(), "snr": sub.snr.numpy(),
                  "classes": np.array(list(test.classes)), "dataset": dataset, "model": model_name,
                  "method": explainer.name, "seed": cell["seed"]}
        written, native_result = [], None
        for view in dict.fromkeys(canonical_view(native, v) for v in settings["figure_formats"]):
            try:
                w, pred, artifact = self.explain_view(ctx, explainer, model_name, view, 1, sub.x, test.num_classes)
            except X.NotApplicable:
                return []
            if view == "native":
                native_result = (w, pred, artifact)
            fmt = self.format_of(native, view)
            data = {**common, "w": w.numpy(), "pred": pred.numpy(), "view": view, "format": fmt,
                    "accuracy": artifact["accuracy"]}
            name = f"{P.safe(dataset)}__{P.safe(model_name)}__{P.safe(explainer.name)}__{fmt}__s{cell['seed']}"
            P.save_data(folder, name, **data)
            written.append(P.save_cell_figure(data, folder / f"{name}.png"))
        if settings["split_figure"]:
            if native_result is None:
                native_result = self.explain_view(ctx, explainer, model_name, "native", 1, sub.x, test.num_classes)
            w, pred, artifact = native_result
            parts = 2
            pieces = split_halves(sub, parts)
            w_p, pred_p, artifact_p = self.explain_view(ctx, explainer, model_name, "native", parts, pieces.x,
                                                        test.num_classes)
            c = len(sub)
            data = {**common, "kind": "split", "w": w.numpy(), "pred": pred.numpy(), "accuracy": artifact["accuracy"],
                    "w_parts": torch.stack([w_p[k * c:(k + 1) * c] for k in range(parts)], 1).numpy(),
                    "pred_parts": torch.stack([pred_p[k * c:(k + 1) * c] for k in range(parts)], 1).numpy(),
                    "accuracy_parts": artifact_p["accuracy"], "format": self.format_of(native, "native")}
            name = f"split__{P.safe(dataset)}__{P.safe(model_name)}__{P.safe(explainer.name)}__s{cell['seed']}"
            P.save_data(folder, name, **data)
            written.append(P.save_split_figure(data, folder / f"{name}.png"))
        written += P.rebuild_grids(folder)
        return [str(p) for p in written]


@hookimpl
def amrbench_register(registry):
    registry.add(ExplainProtocol)
    registry.add_resource(RESOURCE, _source_classifier_config, _train_source_classifier, words="classifier",
                          time_metric="classifier_train_time_s")
