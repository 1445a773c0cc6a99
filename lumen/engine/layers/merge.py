"""Layers that merge two or more inputs: element-wise sum and concatenation."""

from __future__ import annotations

from lumen.engine.layers.base import LayerType, Params, no_kwargs
from lumen.engine.layers.geometry import sample_dim
from lumen.engine.modules.merge import Add, Concat
from lumen.engine.spec.shapes import Shape, ShapeError, fmt


def _add_infer(params: Params, in_shapes: list[Shape]) -> Shape:
    for shape in in_shapes[1:]:
        if shape != in_shapes[0]:
            raise ShapeError(f"inputs {fmt(in_shapes[0])} and {fmt(shape)} differ")
    return in_shapes[0]


def _concat_infer(params: Params, in_shapes: list[Shape]) -> Shape:
    first = in_shapes[0]
    dim = sample_dim(params["dim"], first)
    for shape in in_shapes[1:]:
        if len(shape) != len(first) or any(a != b for i, (a, b) in enumerate(zip(first, shape)) if i != dim):
            raise ShapeError(
                f"inputs {fmt(first)} and {fmt(shape)} differ outside dim {params['dim']}, "
                f"the one they are concatenated along"
            )
    return (*first[:dim], sum(s[dim] for s in in_shapes), *first[dim + 1 :])


LAYER_TYPES = [
    LayerType(
        name="add",
        family="merge",
        description="Element-wise sum of inputs of equal shape (residual connections)",
        defaults={},
        domains={},
        infer=_add_infer,
        module=Add,
        kwargs=no_kwargs,
        arity=None,
    ),
    LayerType(
        name="concat",
        family="merge",
        description="Concatenates inputs along dim (no batch; 0 = channels or features)",
        defaults={"dim": 0},
        domains={"dim": "int"},
        infer=_concat_infer,
        module=Concat,
        kwargs=lambda params, in_shapes: {"dim": sample_dim(params["dim"], in_shapes[0])},
        arity=None,
    ),
]
