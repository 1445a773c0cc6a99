"""The model's input node."""

from __future__ import annotations

from torch import nn

from lumen.engine.layers.base import LayerType, Params, choice, no_kwargs
from lumen.engine.spec.shapes import Shape


def _input_infer(params: Params, in_shapes: list[Shape]) -> Shape:
    return tuple(params["shape"])


LAYER_TYPES = [
    LayerType(
        name="input",
        family="input",
        description="The model's input; shape is channels×height×width (images), steps×features "
        "(sequences) or features; dtype int64 for token ids",
        defaults={"shape": None, "dtype": "float32"},
        domains={"shape": "shape", "dtype": choice("float32", "int64")},
        infer=_input_infer,
        module=nn.Identity,
        kwargs=no_kwargs,
        arity=0,
    ),
]
