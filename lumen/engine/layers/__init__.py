"""The layer library: every layer type Lumen knows, by name (``LAYERS``).

Each family is a module here that exports a plain list, ``LAYER_TYPES``; this file builds the registry from
those lists, so importing a leaf registers nothing. A new layer type is an entry in its family's list (and,
if torch has no module for it, a class in ``engine/modules``); a new family is a module here plus one line
in ``_FAMILY_MODULES``. Leaves import ``engine.layers.base`` and ``engine.layers.geometry``, never this file.
"""

from __future__ import annotations

from lumen.engine.layers import (
    activation,
    autoencoder,
    boltzmann,
    conv,
    dense,
    merge,
    model_input,
    norm,
    opaque,
    pool,
    recurrent,
    reshape,
)
from lumen.engine.layers.base import FAMILIES, LayerType, domain_words, in_domain
from lumen.engine.layers.geometry import Window, sliding_size

__all__ = ["FAMILIES", "LAYERS", "LayerType", "Window", "domain_words", "in_domain", "param_domains", "sliding_size"]

# One module per family; the builder orders its palette by FAMILIES (engine.layers.base), not by this list.
_FAMILY_MODULES = [
    model_input,
    conv,
    pool,
    dense,
    reshape,
    activation,
    norm,
    merge,
    recurrent,
    autoencoder,
    boltzmann,
    opaque,
]


def _registry(lists: list[list[LayerType]]) -> dict[str, LayerType]:
    layers: dict[str, LayerType] = {}
    for layer_types in lists:
        for layer in layer_types:
            if layer.name in layers:
                raise ValueError(f"layer type {layer.name!r} is defined twice")
            layers[layer.name] = layer
    return layers


LAYERS: dict[str, LayerType] = _registry([module.LAYER_TYPES for module in _FAMILY_MODULES])


def param_domains(layer_type: LayerType | str) -> dict[str, str]:
    """{parameter: domain} in the order of the layer's defaults; domains are ``choice:a|b`` or a word such as
    ``posint`` (``engine.layers.base.domain_words`` says what each allows)."""
    layer = LAYERS[layer_type] if isinstance(layer_type, str) else layer_type
    return {key: layer.domains[key] for key in layer.defaults}
