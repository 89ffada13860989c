"""LSTM (Rajendran et al. 2018): two 128-unit LSTM layers on amplitude/phase samples.

Rajendran, Meert, Giustiniano, Lenders, Pollin, "Deep learning models for wireless signal
classification with distributed low-cost spectrum sensors", IEEE TCCN 2018; layer list as
in the public Keras reimplementation (AMR-Benchmark "LSTM2"), also the LSTM classifier of
the FoQuS cross-architecture table.

- input: the ``amp_phase`` view (amplitude / its per-example L2 norm, atan2(Q, I) / pi),
  read as a sequence of L steps with 2 features;
- LSTM 128 (full sequence) -> LSTM 128; the last step's hidden state of the second layer
  is the embedding (D = 128);
- Linear(classes) (softmax in the loss).

201,099 parameters at 11 classes (PyTorch/CuDNN LSTMs carry two bias vectors; Keras has
one: 200,075). The count does not depend on L.

Open choices: no dropout (the reimplementation has none; the paper's value is not
known); Keras initialisation (Glorot-uniform input weights, orthogonal recurrent weights,
zero biases with forget-gate bias 1, put in the input-side bias so the two PyTorch biases
sum to Keras's). ``last_conv`` is None: there is no convolution (use a mask-based
explainer, as the visualisation paper does).
"""
from __future__ import annotations

from torch import nn

from amrbench.api import AMRNet, Model
from amrbench.hookspecs import hookimpl


def keras_lstm_init(lstm: nn.LSTM) -> None:
    """Keras defaults on a PyTorch LSTM: Glorot input weights, orthogonal recurrent
    weights (per gate), zero biases, forget-gate bias 1."""
    hidden = lstm.hidden_size
    for name, param in lstm.named_parameters():
        if name.startswith("weight_ih"):
            for gate in param.data.split(hidden):
                nn.init.xavier_uniform_(gate)
        elif name.startswith("weight_hh"):
            for gate in param.data.split(hidden):
                nn.init.orthogonal_(gate)
        elif name.startswith("bias"):
            nn.init.zeros_(param)
            if name.startswith("bias_ih"):
                param.data[hidden:2 * hidden] = 1.0  # PyTorch gate order: input, forget, cell, output


class LSTMNet(AMRNet):
    last_conv = None

    def __init__(self, num_classes: int, length: int, hidden: int = 128, layers: int = 2):
        super().__init__()
        self.lstm = nn.LSTM(2, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)
        keras_lstm_init(self.lstm)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def embed(self, x):
        _, (h_n, _) = self.lstm(x.transpose(1, 2))
        return h_n[-1]


class LSTM(Model):
    """LSTM (Rajendran et al. 2018): 2 x LSTM-128 on amplitude/phase, last hidden state -> dense."""

    name = "lstm"
    input_format = "amp_phase"

    def build(self, num_classes: int, length: int) -> AMRNet:
        return LSTMNet(num_classes, length)


@hookimpl
def amrbench_register(registry):
    registry.add(LSTM)
