"""The layer library: for each node type, its parameters, its output shape and the module it builds.

Shape inference is written out per layer (not read off a dummy forward pass) so that a bad spec is refused
with a reason a student can act on, e.g. ``conv3: kernel 5×5 is larger than its 4×4 input``, rather than
an error from deep inside torch. Tests check every inferred shape against real tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

Shape = tuple[int, ...]  # one sample's shape, without the batch dimension


class ShapeError(ValueError):
    """Raised by a layer's ``infer``; ``engine.graph`` adds the node's name."""


class InputShapeError(ShapeError):
    """The incoming tensor does not fit the layer; ``engine.graph`` adds which node it came from."""


def fmt(shape: Shape) -> str:
    return "×".join(str(d) for d in shape)


@dataclass(frozen=True)
class LayerType:
    name: str
    description: str
    defaults: dict[str, Any]  # every parameter the layer takes, with its default (None = required)
    infer: Callable[[dict[str, Any], list[Shape]], Shape]
    build: Callable[[dict[str, Any], list[Shape]], nn.Module]
    arity: int | None = 1  # number of incoming edges; 0 for the input node, None for merges (2 or more)

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """The node's params merged over the defaults, checked for unknown or missing keys and types."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ShapeError(f"unknown parameter {', '.join(unknown)} for {self.name} "
                             f"(it takes {', '.join(self.defaults) or 'none'})")
        merged = {**self.defaults, **params}
        for key, default in self.defaults.items():
            value = merged[key]
            if value is None and key in _REQUIRED.get(self.name, ()):
                raise ShapeError(f"{self.name} needs the parameter {key}")
            expected = _TYPES.get(key)
            if value is not None and expected and not _is(value, expected):
                raise ShapeError(f"{key} must be {_TYPE_WORDS[expected]}, got {value!r}")
        return merged


_REQUIRED = {"conv2d": ("out_channels", "kernel_size"), "maxpool2d": ("kernel_size",),
             "avgpool2d": ("kernel_size",), "linear": ("out_features",), "input": ("shape",)}
_TYPES = {"out_channels": "posint", "kernel_size": "posint", "stride": "posint", "padding": "nonneg",
          "out_features": "posint", "p": "prob", "shape": "shape", "bias": "bool"}
_TYPE_WORDS = {"posint": "a positive whole number", "nonneg": "a whole number ≥ 0",
               "prob": "a number in [0, 1)", "shape": "a list of positive whole numbers",
               "bool": "true or false"}


def _is(value: Any, kind: str) -> bool:
    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if kind == "posint":
        return whole(value) and value > 0
    if kind == "nonneg":
        return whole(value) and value >= 0
    if kind == "prob":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1
    if kind == "shape":
        return isinstance(value, list) and len(value) > 0 and all(whole(v) and v > 0 for v in value)
    if kind == "bool":
        return isinstance(value, bool)
    raise AssertionError(kind)


def _image(shape: Shape, layer: str) -> Shape:
    if len(shape) != 3:
        raise InputShapeError(f"{layer} expects a channels×height×width input, got {fmt(shape)}"
                         + ("; a Flatten or Linear before it removed the image layout" if len(shape) == 1 else ""))
    return shape


def _window(size: int, kernel: int, stride: int, padding: int) -> int:
    # W_out = floor((W − F + 2P) / S) + 1
    return (size - kernel + 2 * padding) // stride + 1


def _sliding(shape: Shape, kernel: int, stride: int, padding: int, what: str) -> tuple[int, int]:
    _, h, w = shape
    if kernel > h + 2 * padding or kernel > w + 2 * padding:
        pad = f" (padding {padding})" if padding else ""
        raise InputShapeError(f"{what} {kernel}×{kernel} is larger than its {h}×{w} input{pad}")
    return _window(h, kernel, stride, padding), _window(w, kernel, stride, padding)


# ---- the layers ---------------------------------------------------------------------------------

def _conv_infer(p: dict, ins: list[Shape]) -> Shape:
    shape = _image(ins[0], "conv2d")
    h, w = _sliding(shape, p["kernel_size"], p["stride"], p["padding"], "kernel")
    return (p["out_channels"], h, w)


def _conv_build(p: dict, ins: list[Shape]) -> nn.Module:
    return nn.Conv2d(ins[0][0], p["out_channels"], p["kernel_size"], p["stride"], p["padding"], bias=p["bias"])


def _pool_infer(p: dict, ins: list[Shape]) -> Shape:
    shape = _image(ins[0], "pooling")
    stride = p["stride"] or p["kernel_size"]
    if p["padding"] * 2 > p["kernel_size"]:
        raise ShapeError(f"padding {p['padding']} must be at most half the window ({p['kernel_size']})")
    h, w = _sliding(shape, p["kernel_size"], stride, p["padding"], "window")
    return (shape[0], h, w)


def _linear_infer(p: dict, ins: list[Shape]) -> Shape:
    # A vector, or a sequence (steps × features: applied at every step, as torch's Linear does).
    if len(ins[0]) not in (1, 2):
        raise InputShapeError(f"linear expects a flat input but gets {fmt(ins[0])}; put a flatten node before it")
    return (*ins[0][:-1], p["out_features"])


def _same(p: dict, ins: list[Shape]) -> Shape:
    return ins[0]


def _input_build(p: dict, ins: list[Shape]) -> nn.Module:
    return nn.Identity()


def _elementwise(name: str, description: str, module: Callable[[], nn.Module]) -> LayerType:
    return LayerType(name, description, {}, _same, lambda p, ins: module())


LAYERS: dict[str, LayerType] = {layer.name: layer for layer in [
    LayerType("input", "The model's input; shape is channels×height×width", {"shape": None},
              lambda p, ins: tuple(p["shape"]), _input_build, arity=0),
    LayerType("conv2d", "2-D convolution", {"out_channels": None, "kernel_size": None, "stride": 1,
                                            "padding": 0, "bias": True}, _conv_infer, _conv_build),
    LayerType("maxpool2d", "Max pooling", {"kernel_size": None, "stride": None, "padding": 0}, _pool_infer,
              lambda p, ins: nn.MaxPool2d(p["kernel_size"], p["stride"], p["padding"])),
    LayerType("avgpool2d", "Average pooling", {"kernel_size": None, "stride": None, "padding": 0}, _pool_infer,
              lambda p, ins: nn.AvgPool2d(p["kernel_size"], p["stride"], p["padding"])),
    LayerType("flatten", "Flattens each sample to a vector", {},
              lambda p, ins: (math.prod(ins[0]),), lambda p, ins: nn.Flatten()),
    LayerType("linear", "Fully connected layer", {"out_features": None, "bias": True}, _linear_infer,
              lambda p, ins: nn.Linear(ins[0][-1], p["out_features"], bias=p["bias"])),
    LayerType("dropout", "Zeroes a fraction p of activations while training", {"p": 0.5}, _same,
              lambda p, ins: nn.Dropout(p["p"])),
    _elementwise("relu", "max(0, x)", nn.ReLU),
    _elementwise("tanh", "Hyperbolic tangent", nn.Tanh),
    _elementwise("sigmoid", "Logistic sigmoid", nn.Sigmoid),
]}


def register(*layers: LayerType) -> None:
    """Add layer types to the library (used by the modules that define recurrent and generative layers)."""
    for layer in layers:
        if layer.name in LAYERS:
            raise ValueError(f"layer type {layer.name!r} is defined twice")
        LAYERS[layer.name] = layer
