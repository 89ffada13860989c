"""DM: dataset condensation with distribution matching (Zhao & Bilen, WACV 2023).

Each iteration draws a network psi_theta with fresh random weights (the condensation
model, by default the suite's *source* model, e.g. AlexNet in the MDM paper), embeds a
real batch (``batch_real`` signals of every class) and the whole synthetic set, and
takes one SGD step (momentum 0.5) on the synthetic signals against

    L_TD = sum_c || mean_j psi(x_j^T, class c) - mean_m psi(x_m^S, class c) ||^2

(MDM Eq. 5). All classes go through one forward pass of the real batch and one of the
synthetic set; per-class means come from ``index_add`` (the reference loops over
classes with one forward each; same loss, see tests/benchmarks). The network is frozen:
gradients reach only the synthetic signals. Initialised from random real signals of
each class; ``augment`` (phase/shift/scale) applies Siamese I/Q augmentations.

Parameters: ``iterations`` (20,000), ``lr`` ("paper": the MDM paper's per-dataset, per-SPC
rates; or a number / SPC mapping / dataset mapping), ``momentum`` (0.5), ``batch_real``
(256 per class), ``init`` (real | noise), ``augment`` ([]), ``net`` ("source" or a model
name: the network used for matching), ``chunk`` ("auto": 128-signal slices on CPU).
"""
from __future__ import annotations

from amrbench.condense import IQAugment, SyntheticCondenser, mean_embedding_loss
from amrbench.hookspecs import hookimpl


class DM(SyntheticCondenser):
    """DM: match per-class mean embeddings of real and synthetic signals under random networks."""

    name = "dm"

    def matching_loss(self, real_x, real_y, syn_x, syn_y):
        return mean_embedding_loss(self.embedder, real_x, real_y, syn_x, syn_y, self.num_classes)

    def step(self, iteration: int) -> float:
        self.embedder.sample()
        index, real_y = self.sampler.sample()
        real_y = real_y.to(self.device)
        params = self.augment.draw(self.num_classes)
        real_x = IQAugment.apply(self.real_x[index.to(self.real_x.device)], real_y, params)
        syn_x = IQAugment.apply(self.syn_x, self.syn_y, params)
        loss = self.matching_loss(real_x, real_y, syn_x, self.syn_y)
        self.update(loss)
        return loss.item()


@hookimpl
def amrbench_register(registry):
    registry.add(DM)
