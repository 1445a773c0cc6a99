"""Recurrent layers (rnn, lstm, gru) and the sequence heads that give the four input/output types.

Sequences are steps×features (batch first, as every Lumen shape leaves the batch out). The I/O types are
built from these parts:

- many-to-one: recurrent layer with ``returns: "last"`` (or ``seq_pool``) → linear
- many-to-many, aligned: recurrent layer with ``returns: "sequence"`` → linear (applied at every step)
- one-to-many: ``repeat`` (a vector fed at every step) → recurrent layer → linear
- encoder–decoder: recurrent (``returns: "last"``) → ``repeat`` → recurrent (``"sequence"``) → linear

The modules (``engine.modules.recurrent``) keep torch's own RNN/LSTM/GRU as their child ``rnn``, so weights
interchange with plain torch.
"""

from __future__ import annotations

from collections.abc import Callable

from lumen.engine.layers.base import LayerType, Params, choice
from lumen.engine.modules.recurrent import LSTMLayer, Recurrent, Repeat, SequencePool
from lumen.engine.spec.shapes import InputShapeError, Shape, ShapeError, fmt


def _sequence(shape: Shape, layer: str) -> Shape:
    if len(shape) == 2:
        return shape
    hint = {
        1: "; a repeat node turns a vector into a sequence",
        3: "; an image must first be reshaped into steps×features (e.g. its rows)",
    }.get(len(shape), "")
    raise InputShapeError(f"{layer} expects a steps×features sequence, got {fmt(shape)}{hint}")


# ---- recurrent layers -----------------------------------------------------------------------------

_GATES = {"rnn": 1, "gru": 3, "lstm": 4}
_RECURRENT_DOMAINS = {
    "hidden_size": "posint",
    "num_layers": "posint",
    "bidirectional": "bool",
    "dropout": "prob",
    "combine": choice("concat", "sum"),
    "returns": choice("sequence", "last"),
    "nonlinearity": choice("tanh", "relu"),
    "forget_bias": "float",
    "input_bias": "float",
}
_RECURRENT_DOCS = {
    "hidden_size": "units in the hidden state h_t (per direction)",
    "num_layers": "recurrent layers stacked, each reading the sequence of the one below",
    "bidirectional": "also run the sequence backwards and combine the two directions",
    "dropout": "dropout between stacked layers (needs num_layers ≥ 2)",
    "combine": "bidirectional only: concat (2H features) or sum (p_t = p_t^f + p_t^b, H features)",
    "returns": "sequence: every step (T×H); last: one vector (forward's last step, backward's first)",
    "nonlinearity": "tanh or relu",
    "forget_bias": "lstm: the forget gates' initial bias (1 keeps the cell's contents from the start; 0 is torch's)",
    "input_bias": "lstm: the input gates' initial bias (negative: writes start mostly shut; 0 is torch's)",
}


def _recurrent_infer(cell: str) -> Callable[[Params, list[Shape]], Shape]:
    def infer(params: Params, in_shapes: list[Shape]) -> Shape:
        # Parameter domains are checked by LayerType.resolve before this runs.
        if params["dropout"] and params["num_layers"] == 1:
            raise ShapeError(
                "dropout acts between stacked layers, so it needs num_layers ≥ 2 "
                "(use a dropout node for a single layer)"
            )
        steps, _ = _sequence(in_shapes[0], cell)
        width = params["hidden_size"] * (2 if params["bidirectional"] and params["combine"] == "concat" else 1)
        return (width,) if params["returns"] == "last" else (steps, width)

    return infer


def _recurrent_kwargs(cell: str) -> Callable[[Params, list[Shape]], Params]:
    def kwargs(params: Params, in_shapes: list[Shape]) -> Params:
        # LSTMLayer is always an lstm; Recurrent is told its cell
        return {**({} if cell == "lstm" else {"cell": cell}), "input_size": in_shapes[0][-1], **params}

    return kwargs


def _recurrent_macs(cell: str) -> Callable[[Params, list[Shape], Shape], int]:
    def macs(params: Params, in_shapes: list[Shape], out: Shape) -> int:
        # Each step, each direction of each layer multiplies [x_t, h_{t−1}] by every gate's weights.
        steps, features = in_shapes[0]
        hidden, directions = params["hidden_size"], 2 if params["bidirectional"] else 1
        per_step = sum(
            _GATES[cell] * hidden * ((features if layer == 0 else directions * hidden) + hidden)
            for layer in range(params["num_layers"])
        )
        return steps * directions * per_step

    return macs


def _recurrent_type(cell: str, description: str) -> LayerType:
    defaults = {
        "hidden_size": None,
        "num_layers": 1,
        "bidirectional": False,
        "dropout": 0.0,
        "combine": "concat",
        "returns": "sequence",
    }
    if cell == "rnn":
        defaults["nonlinearity"] = "tanh"
    if cell == "lstm":
        defaults["forget_bias"] = 1.0
        defaults["input_bias"] = 0.0
    return LayerType(
        name=cell,
        family="recurrent",
        description=description,
        defaults=defaults,
        domains={key: _RECURRENT_DOMAINS[key] for key in defaults},
        infer=_recurrent_infer(cell),
        module=LSTMLayer if cell == "lstm" else Recurrent,
        kwargs=_recurrent_kwargs(cell),
        docs={key: _RECURRENT_DOCS[key] for key in defaults},
        macs=_recurrent_macs(cell),
    )


# ---- sequence heads -------------------------------------------------------------------------------


def _seq_pool_infer(params: Params, in_shapes: list[Shape]) -> Shape:
    return (_sequence(in_shapes[0], "seq_pool")[1],)


def _repeat_infer(params: Params, in_shapes: list[Shape]) -> Shape:
    if len(in_shapes[0]) != 1:
        raise InputShapeError(
            f"repeat expects a vector of features, got {fmt(in_shapes[0])}"
            + ("; it is already a sequence (return its last step first)" if len(in_shapes[0]) == 2 else "")
        )
    return (params["steps"], in_shapes[0][0])


LAYER_TYPES = [
    _recurrent_type("rnn", "Elman recurrent layer: h_t = tanh(W x_t + U h_{t−1} + b)"),
    _recurrent_type("lstm", "Long short-term memory: input, forget and output gates around a cell state"),
    _recurrent_type("gru", "Gated recurrent unit: update and reset gates, no separate cell state"),
    LayerType(
        name="seq_pool",
        family="recurrent",
        description="Steps×features → features: last step, mean or max over steps",
        defaults={"mode": "last"},
        domains={"mode": choice("last", "mean", "max")},
        infer=_seq_pool_infer,
        module=SequencePool,
        kwargs=lambda params, in_shapes: {"mode": params["mode"]},
        docs={"mode": "last, mean or max"},
    ),
    LayerType(
        name="repeat",
        family="recurrent",
        description="Features → steps×features: repeats a vector at every step (one-to-many)",
        defaults={"steps": None},
        domains={"steps": "posint"},
        infer=_repeat_infer,
        module=Repeat,
        kwargs=lambda params, in_shapes: {"steps": params["steps"]},
        docs={"steps": "length of the sequence to produce"},
    ),
]
