"""Normalisation (batch norm, local response norm) and dropout, which keep their input's shape."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from lumen.engine.layers.base import LayerType, Params, params_as_kwargs, same_shape
from lumen.engine.layers.geometry import spatial_input
from lumen.engine.spec.shapes import InputShapeError, Shape, fmt


def _batchnorm_infer(n: int) -> Callable[[Params, list[Shape]], Shape]:
    def infer(params: Params, in_shapes: list[Shape]) -> Shape:
        if n == 1 and len(in_shapes[0]) not in (1, 2):
            raise InputShapeError(
                f"batchnorm1d expects features or channels×length, got {fmt(in_shapes[0])}"
                + ("; use batchnorm2d for images" if len(in_shapes[0]) == 3 else "")
            )
        if n == 2:
            spatial_input(in_shapes[0], 2, "batchnorm2d")
        return in_shapes[0]

    return infer


def _batchnorm_kwargs(params: Params, in_shapes: list[Shape]) -> Params:
    return {
        "num_features": in_shapes[0][0],
        "eps": params["eps"],
        "momentum": params["momentum"],
        "affine": params["affine"],
    }


def _batchnorm_layer(n: int) -> LayerType:
    return LayerType(
        name=f"batchnorm{n}d",
        family="norm",
        description="Batch normalisation: per channel, subtract the batch mean, divide by "
        "the standard deviation, then scale and shift",
        defaults={"eps": 1e-5, "momentum": 0.1, "affine": True},
        domains={"eps": "posfloat", "momentum": "prob", "affine": "bool"},
        infer=_batchnorm_infer(n),
        module=nn.BatchNorm1d if n == 1 else nn.BatchNorm2d,
        kwargs=_batchnorm_kwargs,
    )


def _lrn_infer(params: Params, in_shapes: list[Shape]) -> Shape:
    if len(in_shapes[0]) < 2:
        raise InputShapeError(f"lrn normalises across channels and expects channels×…, got {fmt(in_shapes[0])}")
    return in_shapes[0]


LAYER_TYPES = [
    _batchnorm_layer(1),
    _batchnorm_layer(2),
    LayerType(
        name="lrn",
        family="norm",
        description="Local response normalisation across nearby channels (AlexNet, ZFNet)",
        defaults={"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0},
        domains={"size": "posint", "alpha": "float", "beta": "float", "k": "float"},
        infer=_lrn_infer,
        module=nn.LocalResponseNorm,
        kwargs=params_as_kwargs,
        docs={"size": "number of neighbouring channels summed"},
    ),
    LayerType(
        name="dropout",
        family="norm",
        description="Zeroes a fraction p of activations while training",
        defaults={"p": 0.5},
        domains={"p": "prob"},
        infer=same_shape,
        module=nn.Dropout,
        kwargs=lambda params, in_shapes: {"p": params["p"]},
    ),
]
