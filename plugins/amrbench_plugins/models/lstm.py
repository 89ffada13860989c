"""LSTM (Rajendran et al. 2018): two 128-unit LSTM layers on amplitude/phase samples.

Rajendran, Meert, Giustiniano, Lenders, Pollin, "Deep learning models for wireless signal
classification with distributed low-cost spectrum sensors", IEEE TCCN 2018; layer list as
in the public Keras reimplementation (AMR-Benchmark "LSTM2"), also the LSTM classifier of
the FoQuS cross-architecture table.

- input: the ``amp_phase`` view (amplitude / its per-example L2 norm, atan2(Q, I) / pi),
  read as a sequence of L steps with 2 features;
- LSTM 128 (full sequence) -> Dropout -> LSTM 128; the last step's hidden state of the
  second layer -> Dropout is the embedding (D = 128);
- Linear(classes) (softmax in the loss).

201,099 parameters at 11 classes (PyTorch/CuDNN LSTMs carry two bias vectors; Keras has
one: 200,075). The count does not depend on L.

Dropout 0.5 (knob ``dropout``; 0 turns it off): the visualisation paper (Huang et al.,
Table I) trains its LSTM with dropout 0.5 but does not say where it sits (its text names
two LSTM layers and two fully connected layers, its Fig. 4 is not available; the public
Keras reimplementation has none). amrbench's reading: after each LSTM layer, as its LeNet
drops after each hidden layer -- between the two layers (``nn.LSTM``'s inter-layer
dropout on the first layer's output sequence) and on the last hidden state before the
classifier (``FastDropout``). Eval mode drops nothing, so embeddings and explanations are
deterministic. Version 2: dropout on by default (version 1 had none; its records are not
reused).

Open choices: Keras initialisation (Glorot-uniform input weights, orthogonal recurrent weights,
zero biases with forget-gate bias 1, put in the input-side bias so the two PyTorch biases
sum to Keras's). ``last_conv`` is None: there is no convolution (use a mask-based
explainer, as the visualisation paper does).
"""
from __future__ import annotations

from torch import nn

from amrbench.api import AMRNet, Model, Param
from amrbench.hookspecs import hookimpl
from amrbench_plugins.models.layers import FastDropout


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

    def __init__(self, num_classes: int, length: int, hidden: int = 128, layers: int = 2, dropout: float = 0.5):
        super().__init__()
        self.lstm = nn.LSTM(2, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.dropout = FastDropout(dropout)
        self.head = nn.Linear(hidden, num_classes)
        keras_lstm_init(self.lstm)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def embed(self, x):
        _, (h_n, _) = self.lstm(x.transpose(1, 2))
        return self.dropout(h_n[-1])


class LSTM(Model):
    """LSTM (Rajendran et al. 2018): 2 x LSTM-128 on amplitude/phase, dropout 0.5, last hidden state -> dense."""

    name = "lstm"
    input_format = "amp_phase"
    version = "2"  # 2: dropout 0.5 after each LSTM layer (1: no dropout)
    defaults = {"dropout": 0.5}
    types = {"dropout": Param(float, 0.0, 0.99)}

    def build(self, num_classes: int, length: int) -> AMRNet:
        return LSTMNet(num_classes, length, dropout=float(self.params["dropout"]))


@hookimpl
def amrbench_register(registry):
    registry.add(LSTM)
