"""The layer library: for each node type, its parameters, its output shape and the module it builds.

Shape inference is written out per layer (not read off a dummy forward pass) so that a bad spec is refused
with a reason a student can act on, e.g. ``conv3: kernel 5×5 is larger than its 4×4 input``, rather than
an error from deep inside torch. Tests check every inferred shape against real tensors.

Parameters are named as torch's constructor arguments. Each has a *kind* (``param_kinds``) that says which
values are legal; the GUI's property editor reads kinds and defaults to pick its editors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Shape = tuple[int, ...]  # one sample's shape, without the batch dimension


class ShapeError(ValueError):
    """Raised by a layer's ``infer``; ``engine.graph.model`` adds the node's name."""


class InputShapeError(ShapeError):
    """The incoming tensor does not fit the layer; ``engine.graph.model`` adds which node it came from."""


def fmt(shape: Shape) -> str:
    return "×".join(str(d) for d in shape)


@dataclass(frozen=True)
class Window:
    """A sliding window's geometry per spatial axis: what shape rules, formulas and receptive fields read."""
    kernel: tuple[int, ...]
    stride: tuple[float, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    ceil_mode: bool = False
    same: bool = False  # padding "same": output size = input size
    transposed: bool = False  # transposed convolution / upsampling: the stride enlarges
    output_padding: tuple[int, ...] = ()


@dataclass(frozen=True)
class LayerType:
    name: str
    description: str
    defaults: dict[str, Any]  # every parameter the layer takes, with its default (None = required)
    infer: Callable[[dict[str, Any], list[Shape]], Shape]
    build: Callable[[dict[str, Any], list[Shape]], nn.Module]
    arity: int | None = 1  # number of incoming edges; 0 for the input node, None for merges (2 or more)
    kinds: dict[str, str] = field(default_factory=dict)  # parameter -> kind; others fall back to _KINDS_BY_NAME
    optional: tuple[str, ...] = ()  # parameters for which None is a legal value (a pool's stride: the window)
    docs: dict[str, str] = field(default_factory=dict)  # parameter -> one line for tooltips
    takes_ids: bool = False  # reads integer ids (an int64 input), not floats
    # (resolved params, input shape) -> the sliding window; lets engine.graph.analysis give formulas and receptive fields
    window: Callable[[dict[str, Any], Shape], Window] | None = None
    # (resolved params, input shapes, output shape) -> multiply-accumulates per sample; None counts 0
    macs: Callable[[dict[str, Any], list[Shape], Shape], int] | None = None

    def kind(self, key: str) -> str:
        return self.kinds.get(key) or _KINDS_BY_NAME.get(key, "any")

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """The node's params merged over the defaults, checked for unknown or missing keys and kinds."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ShapeError(f"unknown parameter {', '.join(unknown)} for {self.name} "
                             f"(it takes {', '.join(self.defaults) or 'none'})")
        merged = {**self.defaults, **params}
        for key in self.defaults:
            value = merged[key]
            if value is None and key in self.optional:
                continue
            if value is None and self.defaults[key] is None:
                raise ShapeError(f"{self.name} needs the parameter {key}")
            kind = self.kind(key)
            if not is_kind(value, kind):
                raise ShapeError(f"{key} must be {kind_words(kind)}, got {value!r}")
        return merged


# ---- parameter kinds ----------------------------------------------------------------------------

def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _pair_of(v: Any, test: Callable[[Any], bool]) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 2 and all(test(x) for x in v)


def _posint(v: Any) -> bool:
    return _whole(v) and v > 0


def _nonneg(v: Any) -> bool:
    return _whole(v) and v >= 0


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "posint": _posint,
    "nonneg": _nonneg,
    "int": _whole,
    "prob": lambda v: _real(v) and 0 <= v < 1,
    "float": _real,
    "posfloat": lambda v: _real(v) and v > 0,
    "bool": lambda v: isinstance(v, bool),
    "shape": lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(_posint(x) for x in v),
    "int_or_pair": lambda v: _posint(v) or _pair_of(v, _posint),
    "nonneg_or_pair": lambda v: _nonneg(v) or _pair_of(v, _nonneg),
    "int_or_same": lambda v: _nonneg(v) or v == "same",
    "pair_or_same": lambda v: _nonneg(v) or _pair_of(v, _nonneg) or v == "same",
    "any": lambda v: True,
}
_WORDS = {
    "posint": "a positive whole number", "nonneg": "a whole number ≥ 0", "int": "a whole number",
    "prob": "a number in [0, 1)", "float": "a number", "posfloat": "a number > 0", "bool": "true or false",
    "shape": "a list of positive whole numbers", "int_or_pair": "a positive whole number or a pair [h, w] of them",
    "nonneg_or_pair": "a whole number ≥ 0 or a pair [h, w] of them",
    "int_or_same": "a whole number ≥ 0 or \"same\"",
    "pair_or_same": "a whole number ≥ 0, a pair [h, w] of them, or \"same\"", "any": "any value",
}
# Kinds for parameters whose layer does not declare them (layer types registered by other modules).
_KINDS_BY_NAME = {"out_channels": "posint", "kernel_size": "posint", "stride": "posint", "padding": "nonneg",
                  "out_features": "posint", "in_features": "posint", "hidden_size": "posint",
                  "num_layers": "posint", "p": "prob", "dropout": "prob", "shape": "shape", "bias": "bool",
                  "bidirectional": "bool"}


def is_kind(value: Any, kind: str) -> bool:
    if kind.startswith("choice:"):
        return isinstance(value, str) and value in kind[len("choice:"):].split("|")
    return _CHECKS[kind](value)


def kind_words(kind: str) -> str:
    if kind.startswith("choice:"):
        return "one of " + ", ".join(f'"{c}"' for c in kind[len("choice:"):].split("|"))
    return _WORDS[kind]


def param_kinds(layer_type: LayerType | str) -> dict[str, str]:
    """{parameter: kind} for the property editor; kinds are the keys of ``_CHECKS`` or ``choice:a|b``."""
    layer = LAYERS[layer_type] if isinstance(layer_type, str) else layer_type
    return {key: layer.kind(key) for key in layer.defaults}


# ---- geometry shared by shape rules and engine.graph.analysis -------------------------------------------

def _tuple(value: Any, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * n


def _spatial_input(shape: Shape, n: int, layer: str) -> Shape:
    """Checks the input is channels × n spatial dims."""
    if len(shape) != n + 1:
        layout = "channels×length" if n == 1 else "channels×height×width"
        hint = "; a Flatten or Linear before it removed the image layout" if len(shape) == 1 and n == 2 else ""
        raise InputShapeError(f"{layer} expects a {layout} input, got {fmt(shape)}{hint}")
    return shape


def sliding_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1, ceil: bool = False) -> int:
    """torch's output length for a sliding window: ⌊(W − D(F − 1) − 1 + 2P)/S⌋ + 1 (⌈⌉ with ceil_mode)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:  # the last window would start inside the right padding
        out -= 1
    return out


def transposed_size(size: int, kernel: int, stride: int, padding: int, dilation: int, output_padding: int) -> int:
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def window_output(shape: Shape, w: Window, what: str) -> tuple[int, ...]:
    """Spatial output sizes of a window over ``shape`` (channels first); ShapeError says why it does not fit."""
    sizes = shape[1:]
    if w.transposed:
        return tuple(transposed_size(s, k, int(st), p, d, op) for s, k, st, p, d, op
                     in zip(sizes, w.kernel, w.stride, w.padding, w.dilation, w.output_padding))
    if w.same:
        return tuple(sizes)
    effective = tuple(d * (k - 1) + 1 for k, d in zip(w.kernel, w.dilation))
    if any(e > s + 2 * p for e, s, p in zip(effective, sizes, w.padding)):
        dilated = f" (dilated to {fmt(effective)})" if effective != w.kernel else ""
        pad = f" (padding {fmt(w.padding)})" if any(w.padding) else ""
        raise InputShapeError(f"{what} {fmt(w.kernel)}{dilated} is larger than its {fmt(sizes)} input{pad}")
    return tuple(sliding_size(s, k, int(st), p, d, w.ceil_mode) for s, k, st, p, d
                 in zip(sizes, w.kernel, w.stride, w.padding, w.dilation))


# ---- convolutions -------------------------------------------------------------------------------

def _conv_window(n: int) -> Callable[[dict, Shape], Window]:
    def window(p: dict, shape: Shape) -> Window:
        same = p["padding"] == "same"
        return Window(_tuple(p["kernel_size"], n), _tuple(p["stride"], n),
                      (0,) * n if same else _tuple(p["padding"], n), _tuple(p["dilation"], n), same=same)
    return window


def _check_groups(p: dict, in_channels: int) -> None:
    g = p["groups"]
    if in_channels % g or p["out_channels"] % g:
        raise ShapeError(f"groups {g} must divide both the {in_channels} input channels "
                         f"and the {p['out_channels']} output channels")


def _conv_infer(n: int) -> Callable[[dict, list[Shape]], Shape]:
    name = f"conv{n}d"

    def infer(p: dict, ins: list[Shape]) -> Shape:
        shape = _spatial_input(ins[0], n, name)
        _check_groups(p, shape[0])
        if p["padding"] == "same" and any(s != 1 for s in _tuple(p["stride"], n)):
            raise ShapeError("padding \"same\" needs stride 1 (a strided convolution cannot keep the size)")
        return (p["out_channels"], *window_output(shape, _conv_window(n)(p, shape), "kernel"))
    return infer


def _conv_build(n: int) -> Callable[[dict, list[Shape]], nn.Module]:
    cls = nn.Conv1d if n == 1 else nn.Conv2d

    def build(p: dict, ins: list[Shape]) -> nn.Module:
        pad = p["padding"] if p["padding"] == "same" else _tuple(p["padding"], n)
        return cls(ins[0][0], p["out_channels"], _tuple(p["kernel_size"], n), _tuple(p["stride"], n), pad,
                   _tuple(p["dilation"], n), p["groups"], bias=p["bias"])
    return build


def _conv_macs(p: dict, ins: list[Shape], out: Shape) -> int:
    # every output value is a dot product over (C_in / groups) × kernel
    return math.prod(out) * ins[0][0] // p["groups"] * math.prod(_tuple(p["kernel_size"], len(out) - 1))


def _conv_layer(n: int) -> LayerType:
    pair = "int_or_pair" if n == 2 else "posint"
    return LayerType(
        f"conv{n}d", f"{n}-D convolution (groups = input channels: depthwise)",
        {"out_channels": None, "kernel_size": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1,
         "bias": True}, _conv_infer(n), _conv_build(n),
        kinds={"out_channels": "posint", "kernel_size": pair, "stride": pair, "dilation": pair, "groups": "posint",
               "padding": "pair_or_same" if n == 2 else "int_or_same", "bias": "bool"},
        docs={"padding": "zeros added on each side, or \"same\" to keep the size (stride 1)",
              "dilation": "spacing between kernel taps", "groups": "input channels / groups per filter"},
        window=_conv_window(n), macs=_conv_macs)


def _tconv_window(p: dict, shape: Shape) -> Window:
    return Window(_tuple(p["kernel_size"], 2), _tuple(p["stride"], 2), _tuple(p["padding"], 2), (1, 1),
                  transposed=True, output_padding=_tuple(p["output_padding"], 2))


def _tconv_infer(p: dict, ins: list[Shape]) -> Shape:
    shape = _spatial_input(ins[0], 2, "conv_transpose2d")
    w = _tconv_window(p, shape)
    if any(op >= s for op, s in zip(w.output_padding, w.stride)):
        raise ShapeError(f"output_padding {fmt(w.output_padding)} must be smaller than the stride {fmt(w.stride)}")
    out = window_output(shape, w, "kernel")
    if any(s <= 0 for s in out):
        raise ShapeError(f"padding {fmt(w.padding)} crops the {fmt(shape[1:])} input to nothing ({fmt(out)})")
    return (p["out_channels"], *out)


def _tconv_macs(p: dict, ins: list[Shape], out: Shape) -> int:
    # every input value is scattered through the kernel into each output channel
    return math.prod(ins[0]) * p["out_channels"] * math.prod(_tuple(p["kernel_size"], 2))


# ---- pooling ------------------------------------------------------------------------------------

class MinPool2d(nn.Module):
    """Minimum over each window: −maxpool(−x) (torch has no min-pooling op); padding never wins the min."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.ceil_mode = kernel_size, stride, padding, ceil_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -F.max_pool2d(-x, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode)


class GlobalPool(nn.Module):
    """Average or maximum over every spatial position: C×H×W (or C×L) → C."""

    def __init__(self, reduce: str):
        super().__init__()
        self.reduce = reduce

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)
        return flat.mean(-1) if self.reduce == "mean" else flat.amax(-1)


def _pool_window(n: int) -> Callable[[dict, Shape], Window]:
    def window(p: dict, shape: Shape) -> Window:
        kernel = _tuple(p["kernel_size"], n)
        stride = kernel if p["stride"] is None else _tuple(p["stride"], n)
        return Window(kernel, stride, _tuple(p.get("padding", 0), n), (1,) * n, ceil_mode=p["ceil_mode"])
    return window


def _pool_infer(n: int, name: str) -> Callable[[dict, list[Shape]], Shape]:
    def infer(p: dict, ins: list[Shape]) -> Shape:
        shape = _spatial_input(ins[0], n, name)
        w = _pool_window(n)(p, shape)
        if any(2 * pad > k for pad, k in zip(w.padding, w.kernel)):
            raise ShapeError(f"padding {fmt(w.padding)} must be at most half the window ({fmt(w.kernel)})")
        return (shape[0], *window_output(shape, w, "window"))
    return infer


def _pool_layer(name: str, description: str, n: int, build: Callable[[dict, tuple], nn.Module],
                padding: bool = True, extra: dict | None = None, extra_kinds: dict | None = None) -> LayerType:
    pair = "int_or_pair" if n == 2 else "posint"
    defaults = {**(extra or {}), "kernel_size": None, "stride": None, **({"padding": 0} if padding else {}),
                "ceil_mode": False}
    kinds = {**(extra_kinds or {}), "kernel_size": pair, "stride": pair, "ceil_mode": "bool",
             "padding": "nonneg_or_pair" if n == 2 else "nonneg"}

    def make(p: dict, ins: list[Shape]) -> nn.Module:
        t = {k: _tuple(v, n) if k in ("kernel_size", "stride", "padding") and v is not None else v
             for k, v in p.items()}
        return build(t, ins)
    return LayerType(name, description, defaults, _pool_infer(n, name), make, kinds=kinds, optional=("stride",),
                     docs={"stride": "step between windows; empty = the window size",
                           "ceil_mode": "round the output size up (a last, partial window)"},
                     window=_pool_window(n))


def _global_infer(name: str) -> Callable[[dict, list[Shape]], Shape]:
    def infer(p: dict, ins: list[Shape]) -> Shape:
        if len(ins[0]) not in (2, 3):
            raise InputShapeError(f"{name} expects a channels×height×width (or channels×length) input, "
                                  f"got {fmt(ins[0])}")
        return (ins[0][0],)
    return infer


def _global_window(p: dict, shape: Shape) -> Window:
    n = len(shape) - 1
    return Window(tuple(shape[1:]), (1,) * n, (0,) * n, (1,) * n)


def _adaptive_window(p: dict, shape: Shape) -> Window:
    # exact when the input divides evenly; otherwise the largest window torch uses
    out = _tuple(p["output_size"], 2)
    sizes = list(zip(shape[1:], out))
    return Window(tuple(-(-s // o) for s, o in sizes), tuple(max(s // o, 1) for s, o in sizes), (0, 0), (1, 1))


def _adaptive_infer(name: str) -> Callable[[dict, list[Shape]], Shape]:
    def infer(p: dict, ins: list[Shape]) -> Shape:
        shape = _spatial_input(ins[0], 2, name)
        return (shape[0], *_tuple(p["output_size"], 2))
    return infer


# ---- reshaping, activations, normalisation, merges ----------------------------------------------

class Reshape(nn.Module):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Add(nn.Module):
    """Element-wise sum of its inputs (residual connections)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return sum(xs[1:], xs[0])


class Concat(nn.Module):
    """Concatenation along one sample dimension (``dim`` counts without the batch: 0 = channels)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim + 1)


def _sample_dim(dim: int, shape: Shape) -> int:
    """A sample-dimension index (negative counts from the end) made non-negative; ShapeError if out of range."""
    if not -len(shape) <= dim < len(shape):
        raise ShapeError(f"dim {dim} is outside the {fmt(shape)} input (dims 0..{len(shape) - 1}, "
                         f"or negative from the end; the batch is not counted)")
    return dim % len(shape)


def _linear_infer(p: dict, ins: list[Shape]) -> Shape:
    # A vector, or a sequence (steps × features: applied at every step, as torch's Linear does).
    if len(ins[0]) not in (1, 2):
        raise InputShapeError(f"linear expects a flat input but gets {fmt(ins[0])}; put a flatten node before it")
    return (*ins[0][:-1], p["out_features"])


def _linear_macs(p: dict, ins: list[Shape], out: Shape) -> int:
    return math.prod(out) * ins[0][-1]


def _reshape_infer(p: dict, ins: list[Shape]) -> Shape:
    target = tuple(p["shape"])
    if math.prod(target) != math.prod(ins[0]):
        raise InputShapeError(f"cannot reshape {fmt(ins[0])} ({math.prod(ins[0])} values) to {fmt(target)} "
                              f"({math.prod(target)} values)")
    return target


def _batchnorm_infer(n: int) -> Callable[[dict, list[Shape]], Shape]:
    def infer(p: dict, ins: list[Shape]) -> Shape:
        if n == 1 and len(ins[0]) not in (1, 2):
            raise InputShapeError(f"batchnorm1d expects features or channels×length, got {fmt(ins[0])}"
                                  + ("; use batchnorm2d for images" if len(ins[0]) == 3 else ""))
        if n == 2:
            _spatial_input(ins[0], 2, "batchnorm2d")
        return ins[0]
    return infer


def _batchnorm_layer(n: int) -> LayerType:
    cls = nn.BatchNorm1d if n == 1 else nn.BatchNorm2d
    return LayerType(f"batchnorm{n}d", "Batch normalisation: per channel, subtract the batch mean, divide by "
                     "the standard deviation, then scale and shift",
                     {"eps": 1e-5, "momentum": 0.1, "affine": True}, _batchnorm_infer(n),
                     lambda p, ins: cls(ins[0][0], p["eps"], p["momentum"], p["affine"]),
                     kinds={"eps": "posfloat", "momentum": "prob", "affine": "bool"})


def _lrn_infer(p: dict, ins: list[Shape]) -> Shape:
    if len(ins[0]) < 2:
        raise InputShapeError(f"lrn normalises across channels and expects channels×…, got {fmt(ins[0])}")
    return ins[0]


def _softmax_build(p: dict, ins: list[Shape]) -> nn.Module:
    return nn.Softmax(dim=_sample_dim(p["dim"], ins[0]) + 1)


def _softmax_infer(p: dict, ins: list[Shape]) -> Shape:
    _sample_dim(p["dim"], ins[0])
    return ins[0]


def _add_infer(p: dict, ins: list[Shape]) -> Shape:
    for shape in ins[1:]:
        if shape != ins[0]:
            raise ShapeError(f"inputs {fmt(ins[0])} and {fmt(shape)} differ")
    return ins[0]


def _concat_infer(p: dict, ins: list[Shape]) -> Shape:
    first = ins[0]
    dim = _sample_dim(p["dim"], first)
    for shape in ins[1:]:
        if len(shape) != len(first) or any(a != b for i, (a, b) in enumerate(zip(first, shape)) if i != dim):
            raise ShapeError(f"inputs {fmt(first)} and {fmt(shape)} differ outside dim {p['dim']}, "
                             f"the one they are concatenated along")
    return (*first[:dim], sum(s[dim] for s in ins), *first[dim + 1:])


def _upsample_infer(p: dict, ins: list[Shape]) -> Shape:
    shape = _spatial_input(ins[0], 2, "upsample")
    out = tuple(math.floor(s * p["scale_factor"]) for s in shape[1:])
    if any(s <= 0 for s in out):
        raise ShapeError(f"scale_factor {p['scale_factor']} shrinks the {fmt(shape[1:])} input to nothing")
    return (shape[0], *out)


def _upsample_window(p: dict, shape: Shape) -> Window:
    # each output pixel copies one input pixel (nearest) or mixes two neighbours per axis (bilinear)
    s = p["scale_factor"]
    k = 1 if p["mode"] == "nearest" else max(2, math.ceil(2 * s))
    return Window((k, k), (s, s), (0, 0), (1, 1), transposed=True, output_padding=(0, 0))


def _embedding_build(p: dict, ins: list[Shape]) -> nn.Module:
    return nn.Embedding(p["num_embeddings"], p["embedding_dim"])


def _input_infer(p: dict, ins: list[Shape]) -> Shape:
    return tuple(p["shape"])


def _same(p: dict, ins: list[Shape]) -> Shape:
    return ins[0]


def _elementwise(name: str, description: str, module: Callable[..., nn.Module], **params: tuple[str, Any]
                 ) -> LayerType:
    """A layer that keeps the shape; ``params`` maps a torch argument name to (kind, default)."""
    return LayerType(name, description, {k: d for k, (_, d) in params.items()}, _same,
                     lambda p, ins: module(**p), kinds={k: kind for k, (kind, _) in params.items()})


LAYERS: dict[str, LayerType] = {layer.name: layer for layer in [
    LayerType("input", "The model's input; shape is channels×height×width (images), steps×features "
              "(sequences) or features; dtype int64 for token ids", {"shape": None, "dtype": "float32"},
              _input_infer, lambda p, ins: nn.Identity(), arity=0,
              kinds={"shape": "shape", "dtype": "choice:float32|int64"}),
    # convolutions and decoders
    _conv_layer(1),
    _conv_layer(2),
    LayerType("conv_transpose2d", "Transposed 2-D convolution (upsamples: decoders)",
              {"out_channels": None, "kernel_size": None, "stride": 1, "padding": 0, "output_padding": 0,
               "bias": True}, _tconv_infer,
              lambda p, ins: nn.ConvTranspose2d(ins[0][0], p["out_channels"], _tuple(p["kernel_size"], 2),
                                                _tuple(p["stride"], 2), _tuple(p["padding"], 2),
                                                _tuple(p["output_padding"], 2), bias=p["bias"]),
              kinds={"out_channels": "posint", "kernel_size": "int_or_pair", "stride": "int_or_pair",
                     "padding": "nonneg_or_pair", "output_padding": "nonneg_or_pair", "bias": "bool"},
              window=_tconv_window, macs=_tconv_macs),
    LayerType("upsample", "Enlarges images by a scale factor (nearest or bilinear interpolation)",
              {"scale_factor": 2, "mode": "nearest"}, _upsample_infer,
              lambda p, ins: nn.Upsample(scale_factor=float(p["scale_factor"]), mode=p["mode"]),
              kinds={"scale_factor": "posfloat", "mode": "choice:nearest|bilinear"}, window=_upsample_window),
    # pooling
    _pool_layer("maxpool2d", "Max pooling", 2,
                lambda p, ins: nn.MaxPool2d(p["kernel_size"], p["stride"], p["padding"], ceil_mode=p["ceil_mode"])),
    _pool_layer("avgpool2d", "Average pooling", 2,
                lambda p, ins: nn.AvgPool2d(p["kernel_size"], p["stride"], p["padding"], ceil_mode=p["ceil_mode"])),
    _pool_layer("minpool2d", "Min pooling: the smallest value in each window, −maxpool(−x)", 2,
                lambda p, ins: MinPool2d(p["kernel_size"], p["stride"], p["padding"], p["ceil_mode"])),
    _pool_layer("lppool2d", "Power-average pooling: (Σ xᵖ)^(1/p) over each window; p = 2 is L2-norm pooling", 2,
                lambda p, ins: nn.LPPool2d(p["norm_type"], p["kernel_size"], p["stride"], p["ceil_mode"]),
                padding=False, extra={"norm_type": 2}, extra_kinds={"norm_type": "posfloat"}),
    _pool_layer("maxpool1d", "Max pooling along a sequence", 1,
                lambda p, ins: nn.MaxPool1d(p["kernel_size"], p["stride"], p["padding"], ceil_mode=p["ceil_mode"])),
    _pool_layer("avgpool1d", "Average pooling along a sequence", 1,
                lambda p, ins: nn.AvgPool1d(p["kernel_size"], p["stride"], p["padding"], ceil_mode=p["ceil_mode"])),
    LayerType("global_avgpool", "Average of each channel over all positions: C×H×W → C", {},
              _global_infer("global_avgpool"), lambda p, ins: GlobalPool("mean"), window=_global_window),
    LayerType("global_maxpool", "Maximum of each channel over all positions: C×H×W → C", {},
              _global_infer("global_maxpool"), lambda p, ins: GlobalPool("max"), window=_global_window),
    LayerType("adaptive_avgpool2d", "Average pooling to a fixed output size", {"output_size": 1},
              _adaptive_infer("adaptive_avgpool2d"),
              lambda p, ins: nn.AdaptiveAvgPool2d(_tuple(p["output_size"], 2)),
              kinds={"output_size": "int_or_pair"}, window=_adaptive_window),
    LayerType("adaptive_maxpool2d", "Max pooling to a fixed output size", {"output_size": 1},
              _adaptive_infer("adaptive_maxpool2d"),
              lambda p, ins: nn.AdaptiveMaxPool2d(_tuple(p["output_size"], 2)),
              kinds={"output_size": "int_or_pair"}, window=_adaptive_window),
    # activations
    _elementwise("relu", "max(0, x)", nn.ReLU),
    _elementwise("relu6", "min(max(0, x), 6)", nn.ReLU6),
    _elementwise("leaky_relu", "x if x > 0, else negative_slope·x", nn.LeakyReLU,
                 negative_slope=("float", 0.01)),
    _elementwise("sigmoid", "Logistic sigmoid", nn.Sigmoid),
    _elementwise("tanh", "Hyperbolic tangent", nn.Tanh),
    _elementwise("gelu", "Gaussian error linear unit, x·Φ(x)", nn.GELU),
    LayerType("softmax", "Exponentials normalised to sum to 1 along dim (no batch; -1 = last)", {"dim": -1},
              _softmax_infer, _softmax_build, kinds={"dim": "int"}),
    # fully connected, reshaping, regularisation, normalisation
    LayerType("linear", "Fully connected layer (applied at every step of a sequence)",
              {"out_features": None, "bias": True}, _linear_infer,
              lambda p, ins: nn.Linear(ins[0][-1], p["out_features"], bias=p["bias"]),
              kinds={"out_features": "posint", "bias": "bool"}, macs=_linear_macs),
    LayerType("flatten", "Flattens each sample to a vector", {},
              lambda p, ins: (math.prod(ins[0]),), lambda p, ins: nn.Flatten()),
    LayerType("reshape", "Reshapes each sample (same number of values)", {"shape": None}, _reshape_infer,
              lambda p, ins: Reshape(p["shape"]), kinds={"shape": "shape"}),
    LayerType("dropout", "Zeroes a fraction p of activations while training", {"p": 0.5}, _same,
              lambda p, ins: nn.Dropout(p["p"]), kinds={"p": "prob"}),
    _batchnorm_layer(1),
    _batchnorm_layer(2),
    LayerType("lrn", "Local response normalisation across nearby channels (AlexNet, ZFNet)",
              {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0}, _lrn_infer,
              lambda p, ins: nn.LocalResponseNorm(p["size"], p["alpha"], p["beta"], p["k"]),
              kinds={"size": "posint", "alpha": "float", "beta": "float", "k": "float"},
              docs={"size": "number of neighbouring channels summed"}),
    LayerType("embedding", "Looks up a learned vector for each integer id: T → T×D",
              {"num_embeddings": None, "embedding_dim": None},
              lambda p, ins: (*ins[0], p["embedding_dim"]), _embedding_build,
              kinds={"num_embeddings": "posint", "embedding_dim": "posint"}, takes_ids=True,
              docs={"num_embeddings": "vocabulary size: ids run from 0 to num_embeddings − 1"}),
    # merges
    LayerType("add", "Element-wise sum of inputs of equal shape (residual connections)", {}, _add_infer,
              lambda p, ins: Add(), arity=None),
    LayerType("concat", "Concatenates inputs along dim (no batch; 0 = channels or features)", {"dim": 0},
              _concat_infer, lambda p, ins: Concat(_sample_dim(p["dim"], ins[0])), arity=None,
              kinds={"dim": "int"}),
]}


def register(*layers: LayerType) -> None:
    """Add layer types to the library (used by the modules that define recurrent and generative layers)."""
    for layer in layers:
        if layer.name in LAYERS:
            raise ValueError(f"layer type {layer.name!r} is defined twice")
        LAYERS[layer.name] = layer


# The recurrent and generative libraries register their types on import; importing them here makes every
# user of LAYERS see the whole library. They import this module, which is complete by this line.
from engine import layers_generative, layers_sequence  # noqa: E402,F401
