"""MDM: multi-domain distribution matching (Xu et al., "MDM: Advancing Multi-Domain
Distribution Matching for Automatic Modulation Recognition Dataset Synthesis", 2024).

DM in the time domain plus DM in the frequency domain, with the same random network
theta in each iteration (Algorithm 1):

    L = L_TD + alpha * L_FD,   L_FD = sum_c || mean psi(X^T_c) - mean psi(X^S_c) ||^2,
    X = [|DFT(I)|, |DFT(Q)|]   (Eqs. 6-11: per-channel DFT magnitude, all N bins)

computed for real and synthetic signals by ``torch.fft`` (differentiable), so the
gradient of L_FD flows back to the time-domain synthetic signals. Everything else
(network draw, real batches, batched classes, initialisation, optimiser, Siamese
augmentation applied before the DFT) is DM's; with ``alpha: 0`` MDM is exactly DM (the
frequency branch is skipped, same random streams).

``alpha``: the paper tunes it per dataset and does not publish it. Default 1.0 for every
dataset (a number, a mapping SPC -> number, or a mapping dataset -> value with keys
``name[lo,hi]``, ``name`` or ``default``). ``fft_norm``: "backward" (the paper's unscaled
sum) or "ortho" (divided by sqrt(N), same energy as the time domain). Other parameters
as DM (``iterations`` 20,000, ``lr`` "paper", ``momentum`` 0.5, ``batch_real`` 256,
``init`` real, ``augment`` [], ``net`` source).
"""
from __future__ import annotations

from amrbench.api import AmrbenchError
from amrbench.condense import SYNTHETIC_DEFAULTS, check_per_dataset, dft_magnitude, mean_embedding_loss, \
    resolve_per_dataset
from amrbench.hookspecs import hookimpl
from amrbench_plugins.condensers.dm import DM

FFT_NORMS = ("backward", "ortho")


class MDM(DM):
    """MDM: DM on time-domain signals plus alpha x DM on their per-channel |DFT| (same network)."""

    name = "mdm"
    defaults = {**SYNTHETIC_DEFAULTS, "alpha": 1.0, "fft_norm": "backward"}

    def __init__(self, **params):
        super().__init__(**params)
        try:
            check_per_dataset(self.params["alpha"], "alpha")
        except AmrbenchError as exc:
            raise AmrbenchError(f"condenser 'mdm': {exc}") from None
        if self.params["fft_norm"] not in FFT_NORMS:
            raise AmrbenchError(f"condenser 'mdm': fft_norm {self.params['fft_norm']!r}: allowed: {', '.join(FFT_NORMS)}")

    def setup(self, ctx, train, spc):
        self.alpha = resolve_per_dataset(self.params["alpha"], (ctx.cell or {}).get("dataset"), spc, "alpha")
        self.last_terms = (0.0, 0.0)

    def matching_loss(self, real_x, real_y, syn_x, syn_y):
        k = self.num_classes
        loss_td = mean_embedding_loss(self.embedder, real_x, real_y, syn_x, syn_y, k)
        if self.alpha == 0:
            self.last_terms = (loss_td.item(), 0.0)
            return loss_td
        norm = self.params["fft_norm"]
        loss_fd = mean_embedding_loss(self.embedder, dft_magnitude(real_x, norm), real_y,
                                      dft_magnitude(syn_x, norm), syn_y, k)
        self.last_terms = (loss_td.item(), loss_fd.item())
        return loss_td + self.alpha * loss_fd


@hookimpl
def amrbench_register(registry):
    registry.add(MDM)
