"""The `conjugate` augmenter: every training signal with Q negated (its complex
conjugate, a mirrored spectrum), the same class."""
from amrbench.api import SignalSet
from amrbench.hookspecs import hookimpl

from amrbench_augment.protocol import Augmenter


class Conjugate(Augmenter):
    """Adds the complex conjugate of every training signal."""

    name = "conjugate"

    def augment(self, ctx, train):
        x = train.x.clone()
        x[:, 1] = -x[:, 1]
        return SignalSet(x=x, y=train.y, snr=train.snr, classes=train.classes)


@hookimpl
def amrbench_register(registry):
    registry.add(Conjugate)
