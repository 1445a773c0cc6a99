"""Layers that rearrange each sample's values: flatten and reshape."""

from __future__ import annotations

import math

from torch import nn

from lumen.engine.layers.base import LayerType, Params, no_kwargs
from lumen.engine.modules.reshape import Reshape
from lumen.engine.spec.shapes import InputShapeError, Shape, fmt


def _reshape_infer(params: Params, in_shapes: list[Shape]) -> Shape:
    target = tuple(params["shape"])
    if math.prod(target) != math.prod(in_shapes[0]):
        raise InputShapeError(
            f"cannot reshape {fmt(in_shapes[0])} ({math.prod(in_shapes[0])} values) to "
            f"{fmt(target)} ({math.prod(target)} values)"
        )
    return target


LAYER_TYPES = [
    LayerType(
        name="flatten",
        family="reshape",
        description="Flattens each sample to a vector",
        defaults={},
        domains={},
        infer=lambda params, in_shapes: (math.prod(in_shapes[0]),),
        module=nn.Flatten,
        kwargs=no_kwargs,
    ),
    LayerType(
        name="reshape",
        family="reshape",
        description="Reshapes each sample (same number of values)",
        defaults={"shape": None},
        domains={"shape": "shape"},
        infer=_reshape_infer,
        module=Reshape,
        kwargs=lambda params, in_shapes: {"shape": tuple(params["shape"])},
    ),
]
