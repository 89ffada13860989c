"""What a synthetic condensation computes, for the cost model (``amrbench.cost``): its
forward passes of the matching network, which do not scale with the dataset the way a
training run does. ``SyntheticCondenser.work_estimate`` returns a :class:`CondensationWork`.
"""
from __future__ import annotations

from typing import Optional

from amrbench.cost import FORWARD_TO_TRAINING


def matching_loops(cls, params: dict, spc: int) -> tuple:
    """(outer matching steps, inner training epochs) of one gradient-matching iteration:
    ``loops`` when given, else the condenser's ``reference_loops(spc)``."""
    loops = params.get("loops")
    if isinstance(loops, (list, tuple)) and len(loops) == 2:
        return int(loops[0]), int(loops[1])
    return tuple(cls.reference_loops(spc))


class CondensationWork:
    """Forward passes of the matching network (in units of one signal's forward pass; a
    backward counts ``FORWARD_TO_TRAINING - 1`` more) that a synthetic condensation does.

    Distribution matching (DM; MDM twice, one per domain: ``matching_domains``): per
    iteration the real batch (``batch_real`` signals of every class, at most the class)
    goes forward, the synthetic set forward and backward. Gradient matching (a condenser
    whose network is trained, DC): per outer step, for every class, the real batch
    forward and backward to the weights, the synthetic signals through a double backward
    (twice a training pass), ``bn_batch`` real signals of every class forward to fix
    batch norm; between outer steps, ``inner`` training epochs on the synthetic set."""

    def __init__(self, cls, cell: dict, n_classes: int, n_train: int):
        p = cell["method"].get("params") or {}
        self.p, self.k, self.spc = p, n_classes, int(cell["budget"]["spc"])
        self.class_size = max(1, n_train // max(1, n_classes))
        self.gradient = bool(cls.trainable_net)
        self.domains = cls.matching_domains if p.get("alpha", 1) != 0 else 1
        self.outer, self.inner = matching_loops(cls, p, self.spc) if self.gradient else (1, 0)
        net = p.get("net", "source")
        self.net = cell["model"]["source"] if net in (None, "source") else str(net)

    def _real(self, fraction: float = 1.0) -> int:
        return min(int(self.p.get("batch_real", 256)), max(1, int(fraction * self.class_size)))

    def matching(self, real: int, backward: bool = True) -> float:
        """One matching loss over every class (with the backward to the synthetic set)."""
        t = FORWARD_TO_TRAINING
        if self.gradient:
            bn = min(int(self.p.get("bn_batch", 16)), self.class_size)
            return self.k * (t * real + (2 * t if backward else t) * self.spc + bn)
        return self.domains * self.k * (real + (t if backward else 1) * self.spc)

    def iteration(self, real: Optional[int] = None) -> float:
        real = self._real() if real is None else real
        training = (self.outer - 1) * self.inner * FORWARD_TO_TRAINING * self.k * self.spc
        return self.outer * self.matching(real) + training

    def search(self) -> float:
        """The ``lr: search`` policy: the gradient scale at S_0 and the held-out scores
        (initial + one per candidate) over ``search_nets`` networks, and every
        candidate's probe iterations on the fit part (80 % of the split by default)."""
        if self.p.get("lr", "search") != "search":
            return 0.0
        nets, steps = int(self.p.get("search_nets", 8)), len(self.p.get("search_steps") or [0] * 5)
        holdout = float(self.p.get("search_holdout", 0.2))
        scale = nets * self.matching(self._real(1 - holdout))
        scores = (steps + 1) * nets * self.matching(self._real(holdout), backward=False)
        probes = steps * int(self.p.get("search_iterations", 20)) * self.iteration(self._real(1 - holdout))
        return scale + scores + probes

    def calibration(self) -> float:
        """MDM's domain weight (``fd_scale: init``): both losses of S_0 over the networks."""
        if self.domains < 2 or self.p.get("fd_scale", "init") == "none":
            return 0.0
        return int(self.p.get("search_nets", 8)) * self.matching(self._real(), backward=False)

    def total(self) -> float:
        return int(self.p.get("iterations", 0)) * self.iteration() + self.search() + self.calibration()
