"""Layer families: how the palette groups layer types and which colour the canvas gives them."""

from __future__ import annotations

from engine.layers import LAYERS

# (family, colour, words in a type name that put it there); the first match wins, so order matters.
FAMILIES: list[tuple[str, str, tuple[str, ...]]] = [
    ("Input", "#546e7a", ("input",)),
    ("Merge", "#3a7d44", ("add", "concat", "merge", "sum", "mul")),
    ("Recurrent", "#b0476f", ("rnn", "lstm", "gru", "seq", "repeat", "last_step", "timestep", "time_", "decoder",
                              "encoder", "bidir")),
    ("Generative", "#a2612b", ("rbm", "dbn", "dbm", "bottleneck", "vae", "variational", "reparam", "boltzmann")),
    ("Convolution", "#2f67ad", ("conv", "upsample", "deconv")),
    ("Pooling", "#1f8a80", ("pool",)),
    ("Normalisation", "#6d7a99", ("norm", "dropout", "lrn")),
    ("Activation", "#c98a1b", ("relu", "tanh", "sigmoid", "softmax", "gelu", "elu", "swish", "silu", "activation")),
    ("Dense", "#6f4fa0", ("linear", "dense", "embedding", "fc")),
    ("Reshape", "#5f6b73", ("flatten", "reshape", "view", "permute", "squeeze", "identity")),
]
OTHER = ("Other", "#4a4a4a")


def family(layer_type: str) -> tuple[str, str]:
    """(family name, colour) of a layer type."""
    lowered = layer_type.lower()
    for name, colour, words in FAMILIES:
        if any(w in lowered for w in words):
            return name, colour
    if layer_type in LAYERS and LAYERS[layer_type].arity is None:
        return "Merge", FAMILIES[1][1]
    return OTHER


FAMILY_ORDER = [f[0] for f in FAMILIES] + [OTHER[0]]
