"""Recurrent layers (rnn, lstm, gru) and the sequence heads that give the four input/output types.

Sequences are steps×features (batch first, as every Lumen shape leaves the batch out). The I/O types are
built from these parts:

- many-to-one: recurrent layer with ``returns: "last"`` (or ``seq_pool``) → linear
- many-to-many, aligned: recurrent layer with ``returns: "sequence"`` → linear (applied at every step)
- one-to-many: ``repeat`` (a vector fed at every step) → recurrent layer → linear
- encoder–decoder: recurrent (``returns: "last"``) → ``repeat`` → recurrent (``"sequence"``) → linear

Weights interchange with plain torch: the recurrent module keeps torch's own ``nn.RNN``/``nn.LSTM``/``nn.GRU``
as its child ``rnn``, so its state-dict keys are torch's with an ``rnn.`` prefix (a node ``lstm1`` holds
``lstm1.rnn.weight_ih_l0``), and ``layer.rnn.load_state_dict(plain_lstm.state_dict())`` loads directly.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.layers import InputShapeError, LayerType, Shape, ShapeError, fmt, register

_TORCH_RNNS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _sequence(shape: Shape, layer: str) -> Shape:
    if len(shape) == 2:
        return shape
    hint = {1: "; a repeat node turns a vector into a sequence",
            3: "; an image must first be reshaped into steps×features (e.g. its rows)"}.get(len(shape), "")
    raise InputShapeError(f"{layer} expects a steps×features sequence, got {fmt(shape)}{hint}")


# ---- recurrent layers -----------------------------------------------------------------------------

class Recurrent(nn.Module):
    """torch's RNN/LSTM/GRU (child ``rnn``, batch first) plus how directions combine and what it returns.

    ``combine``: "concat" gives 2H features per step, "sum" gives H (p_t = p_t^f + p_t^b).
    ``returns``: "sequence" (T×H') or "last": the forward direction's last step and, for a bidirectional
    layer, the backward direction's *first* step — the only steps that have seen the whole sequence.
    """

    def __init__(self, kind: str, input_size: int, p: dict):
        super().__init__()
        extra = {"nonlinearity": p["nonlinearity"]} if kind == "rnn" else {}
        self.rnn = _TORCH_RNNS[kind](input_size, p["hidden_size"], num_layers=p["num_layers"],
                                     dropout=p["dropout"], bidirectional=p["bidirectional"],
                                     batch_first=True, **extra)
        self.combine, self.returns = p["combine"], p["returns"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)  # B×T×(directions·H)
        if not self.rnn.bidirectional:
            return out[:, -1] if self.returns == "last" else out
        forward, backward = out.chunk(2, dim=-1)
        if self.returns == "last":
            forward, backward = forward[:, -1], backward[:, 0]
        return torch.cat([forward, backward], dim=-1) if self.combine == "concat" else forward + backward

    def extra_repr(self) -> str:
        return f"combine={self.combine}, returns={self.returns}"


class LSTMLayer(Recurrent):
    def __init__(self, input_size: int, p: dict):
        super().__init__("lstm", input_size, p)

    def lstm_trace(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gates and cell states of layer 0's forward direction at every step, each B×T×H.

        Unrolls torch's equations with the layer's own weights (gate order i, f, g, o as torch stores them):
        i, f, o = σ(·), g = tanh(·), c_t = f·c_{t−1} + i·g, h_t = o·tanh(c_t). Call it under
        ``torch.no_grad()`` unless gradients through the gates are wanted.
        """
        lstm = self.rnn
        weight_ih, weight_hh = lstm.weight_ih_l0, lstm.weight_hh_l0
        bias = lstm.bias_ih_l0 + lstm.bias_hh_l0 if lstm.bias else 0
        batch, hidden = x.shape[0], lstm.hidden_size
        h = x.new_zeros(batch, hidden)
        c = x.new_zeros(batch, hidden)
        steps: dict[str, list[torch.Tensor]] = {k: [] for k in
                                                ("input_gate", "forget_gate", "candidate", "output_gate",
                                                 "cell", "hidden")}
        for t in range(x.shape[1]):
            i, f, g, o = (x[:, t] @ weight_ih.T + h @ weight_hh.T + bias).chunk(4, dim=-1)
            i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
            c = f * c + i * g
            h = o * c.tanh()
            for key, value in zip(steps, (i, f, g, o, c, h)):
                steps[key].append(value)
        return {key: torch.stack(values, dim=1) for key, values in steps.items()}


def _recurrent_type(kind: str, description: str) -> LayerType:
    defaults = {"hidden_size": None, "num_layers": 1, "bidirectional": False, "dropout": 0.0,
                "combine": "concat", "returns": "sequence"}
    if kind == "rnn":
        defaults["nonlinearity"] = "tanh"

    def infer(p: dict, ins: list[Shape]) -> Shape:
        # Parameter kinds are checked by LayerType.resolve before this runs.
        if p["dropout"] and p["num_layers"] == 1:
            raise ShapeError("dropout acts between stacked layers, so it needs num_layers ≥ 2 "
                             "(use a dropout node for a single layer)")
        steps, _ = _sequence(ins[0], kind)
        width = p["hidden_size"] * (2 if p["bidirectional"] and p["combine"] == "concat" else 1)
        return (width,) if p["returns"] == "last" else (steps, width)

    def build(p: dict, ins: list[Shape]) -> nn.Module:
        return LSTMLayer(ins[0][-1], p) if kind == "lstm" else Recurrent(kind, ins[0][-1], p)

    def macs(p: dict, ins: list[Shape], out: Shape) -> int:
        # Each step, each direction of each layer multiplies [x_t, h_{t−1}] by every gate's weights.
        steps, features = ins[0]
        hidden, directions = p["hidden_size"], 2 if p["bidirectional"] else 1
        per_step = sum(_GATES[kind] * hidden * ((features if layer == 0 else directions * hidden) + hidden)
                       for layer in range(p["num_layers"]))
        return steps * directions * per_step

    kinds = {key: _RECURRENT_KINDS[key] for key in defaults}
    return LayerType(kind, description, defaults, infer, build, kinds=kinds, docs=_RECURRENT_DOCS, macs=macs)


_GATES = {"rnn": 1, "gru": 3, "lstm": 4}
_RECURRENT_KINDS = {"hidden_size": "posint", "num_layers": "posint", "bidirectional": "bool", "dropout": "prob",
                    "combine": "choice:concat|sum", "returns": "choice:sequence|last",
                    "nonlinearity": "choice:tanh|relu"}
_RECURRENT_DOCS = {
    "hidden_size": "units in the hidden state h_t (per direction)",
    "num_layers": "recurrent layers stacked, each reading the sequence of the one below",
    "bidirectional": "also run the sequence backwards and combine the two directions",
    "dropout": "dropout between stacked layers (needs num_layers ≥ 2)",
    "combine": "bidirectional only: concat (2H features) or sum (p_t = p_t^f + p_t^b, H features)",
    "returns": "sequence: every step (T×H); last: one vector (forward's last step, backward's first)",
    "nonlinearity": "tanh or relu",
}


# ---- sequence heads -------------------------------------------------------------------------------

class SequencePool(nn.Module):
    """steps×features → features: the last step, or the mean or maximum over steps."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "last":
            return x[:, -1]
        return x.mean(dim=1) if self.mode == "mean" else x.amax(dim=1)

    def extra_repr(self) -> str:
        return f"mode={self.mode}"


class Repeat(nn.Module):
    """features → steps×features: the same vector at every step (a one-to-many decoder's input)."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1).repeat(1, self.steps, 1)

    def extra_repr(self) -> str:
        return f"steps={self.steps}"


def _pool_infer(p: dict, ins: list[Shape]) -> Shape:
    return (_sequence(ins[0], "seq_pool")[1],)


def _repeat_infer(p: dict, ins: list[Shape]) -> Shape:
    if len(ins[0]) != 1:
        raise InputShapeError(f"repeat expects a vector of features, got {fmt(ins[0])}"
                              + ("; it is already a sequence (return its last step first)"
                                 if len(ins[0]) == 2 else ""))
    return (p["steps"], ins[0][0])


SEQUENCE_LAYERS = [
    _recurrent_type("rnn", "Elman recurrent layer: h_t = tanh(W x_t + U h_{t−1} + b)"),
    _recurrent_type("lstm", "Long short-term memory: input, forget and output gates around a cell state"),
    _recurrent_type("gru", "Gated recurrent unit: update and reset gates, no separate cell state"),
    LayerType("seq_pool", "Steps×features → features: last step, mean or max over steps", {"mode": "last"},
              _pool_infer, lambda p, ins: SequencePool(p["mode"]),
              kinds={"mode": "choice:last|mean|max"}, docs={"mode": "last, mean or max"}),
    LayerType("repeat", "Features → steps×features: repeats a vector at every step (one-to-many)",
              {"steps": None}, _repeat_infer, lambda p, ins: Repeat(p["steps"]),
              kinds={"steps": "posint"}, docs={"steps": "length of the sequence to produce"}),
]

register(*SEQUENCE_LAYERS)
