"""Activation functions: element-wise, and softmax along one dimension."""

from __future__ import annotations

from typing import Any

from torch import nn

from lumen.engine.layers.base import LayerType, Params, params_as_kwargs, same_shape
from lumen.engine.layers.geometry import sample_dim
from lumen.engine.spec.shapes import Shape


def _elementwise(name: str, description: str, module: type[nn.Module], **params: tuple[str, Any]) -> LayerType:
    """A layer that keeps the shape; ``params`` maps a torch argument name to (domain, default)."""
    return LayerType(
        name=name,
        family="activation",
        description=description,
        defaults={key: default for key, (_, default) in params.items()},
        domains={key: domain for key, (domain, _) in params.items()},
        infer=same_shape,
        module=module,
        kwargs=params_as_kwargs,
    )


def _softmax_infer(params: Params, in_shapes: list[Shape]) -> Shape:
    sample_dim(params["dim"], in_shapes[0])
    return in_shapes[0]


LAYER_TYPES = [
    _elementwise("relu", "max(0, x)", nn.ReLU),
    _elementwise("relu6", "min(max(0, x), 6)", nn.ReLU6),
    _elementwise("leaky_relu", "x if x > 0, else negative_slope·x", nn.LeakyReLU, negative_slope=("float", 0.01)),
    _elementwise("sigmoid", "Logistic sigmoid", nn.Sigmoid),
    _elementwise("tanh", "Hyperbolic tangent", nn.Tanh),
    _elementwise("gelu", "Gaussian error linear unit, x·Φ(x)", nn.GELU),
    LayerType(
        name="softmax",
        family="activation",
        description="Exponentials normalised to sum to 1 along dim (no batch; -1 = last)",
        defaults={"dim": -1},
        domains={"dim": "int"},
        infer=_softmax_infer,
        module=nn.Softmax,
        kwargs=lambda params, in_shapes: {"dim": sample_dim(params["dim"], in_shapes[0]) + 1},
    ),
]
