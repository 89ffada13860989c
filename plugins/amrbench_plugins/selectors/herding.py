"""Herding (Welling, ICML 2009; the coreset baseline of DeepCore, Guo et al. 2022).

Per class (or class x SNR with ``stratify: class_snr``), in the penultimate embedding
space of the selection model (the shared full-data scoring run): greedily add the signal
that brings the mean of the selected set closest to the stratum mean.

With s signals chosen, running sum r and stratum mean mu, the candidate i minimising
||(r + f_i) / (s + 1) - mu||^2 is the one minimising ||f_i||^2 + 2 f_i . (r - (s + 1) mu),
so each step is one matrix-vector product: O(budget * n * d) time, O(n * d) memory, no
n x n matrix and no per-step n x d temporaries.

Defaults: embeddings of the trained scoring model (as DeepCore, which trains the model
before embedding); ``embedding: input`` herds on the raw I/Q vectors instead.
"""
import torch

from amrbench.api import Selection, Selector
from amrbench.hookspecs import hookimpl
from amrbench.selection import STRATIFY, pick_per_stratum


def herd(features: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (into ``features``) of k rows chosen by herding, in selection order."""
    features = features.double()
    n = features.shape[0]
    k = min(k, n)
    mean = features.mean(0)
    square_norms = (features * features).sum(1)
    running = torch.zeros_like(mean)
    available = torch.ones(n, dtype=torch.bool)
    chosen = []
    for step in range(k):
        objective = torch.addmv(square_norms, features, running - (step + 1) * mean, alpha=2.0)
        objective[~available] = float("inf")
        best = int(torch.argmin(objective))
        chosen.append(best)
        available[best] = False
        running += features[best]
    return torch.tensor(chosen, dtype=torch.int64)


class Herding(Selector):
    """Herding: greedy per-class mean matching in the model's embedding space."""

    name = "herding"
    defaults = {"embedding": "model", "stratify": "class"}
    choices = {"embedding": ("model", "input"), "stratify": STRATIFY}
    needs = ("dynamics",)

    def select(self, ctx, train, budget):
        if self.params["embedding"] == "input":
            features = train.x.flatten(1)
        else:
            features = ctx.resource("dynamics")["embeddings"]

        def pick(_, members, quota):
            return members[herd(features[torch.from_numpy(members)], int(quota)).numpy()]

        return Selection(pick_per_stratum(train, budget, self.params["stratify"], pick))


@hookimpl
def amrbench_register(registry):
    registry.add(Herding)
