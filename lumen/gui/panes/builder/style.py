"""Layer families as the builder shows them: each family's palette group and canvas colour.

A layer type's family is data on its ``LayerType`` (``engine.layers.base.FAMILIES``); this table only says
how each family looks. The palette lists families in the order of this table.
"""

from __future__ import annotations

from lumen.engine.layers import LAYERS

# family -> (palette group, colour)
FAMILIES: dict[str, tuple[str, str]] = {
    "input": ("Input", "#546e7a"),
    "conv": ("Convolution", "#2f67ad"),
    "pool": ("Pooling", "#1f8a80"),
    "dense": ("Dense", "#6f4fa0"),
    "reshape": ("Reshape", "#5f6b73"),
    "activation": ("Activation", "#c98a1b"),
    "norm": ("Normalisation", "#6d7a99"),
    "merge": ("Merge", "#3a7d44"),
    "recurrent": ("Recurrent", "#b0476f"),
    "autoencoder": ("Autoencoder", "#a2612b"),
    "boltzmann": ("Boltzmann", "#7d5a3c"),
    "opaque": ("Opaque (ONNX ops)", "#8a3b3b"),
}
OTHER = ("Other", "#4a4a4a")  # a node whose type this Lumen does not know (from a newer file)


def family(layer_type: str) -> tuple[str, str]:
    """(palette group, colour) of a layer type."""
    layer = LAYERS.get(layer_type)
    return FAMILIES[layer.family] if layer is not None else OTHER


FAMILY_ORDER = [group for group, _ in FAMILIES.values()] + [OTHER[0]]
