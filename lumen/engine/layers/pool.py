"""Pooling: windowed (max, average, min, power-average), global and adaptive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from lumen.engine.layers.base import LayerType, Params
from lumen.engine.layers.geometry import Window, as_tuple, spatial_input, window_output
from lumen.engine.modules.pool import GlobalPool, MinPool2d
from lumen.engine.spec.shapes import InputShapeError, Shape, ShapeError, fmt


def _pool_window(n: int) -> Callable[[Params, Shape], Window]:
    def window(params: Params, shape: Shape) -> Window:
        kernel = as_tuple(params["kernel_size"], n)
        stride = kernel if params["stride"] is None else as_tuple(params["stride"], n)
        return Window(kernel, stride, as_tuple(params.get("padding", 0), n), (1,) * n, ceil_mode=params["ceil_mode"])

    return window


def _pool_infer(n: int, name: str) -> Callable[[Params, list[Shape]], Shape]:
    def infer(params: Params, in_shapes: list[Shape]) -> Shape:
        shape = spatial_input(in_shapes[0], n, name)
        w = _pool_window(n)(params, shape)
        if any(2 * pad > k for pad, k in zip(w.padding, w.kernel)):
            raise ShapeError(f"padding {fmt(w.padding)} must be at most half the window ({fmt(w.kernel)})")
        return (shape[0], *window_output(shape, w, "window"))

    return infer


def _pool_kwargs(n: int) -> Callable[[Params, list[Shape]], Params]:
    """The parameters, with sizes as tuples (torch's pooling modules keep what they are given)."""

    def kwargs(params: Params, in_shapes: list[Shape]) -> Params:
        return {
            key: as_tuple(value, n) if key in ("kernel_size", "stride", "padding") and value is not None else value
            for key, value in params.items()
        }

    return kwargs


def _pool_layer(
    name: str,
    description: str,
    n: int,
    module: type[nn.Module],
    padding: bool = True,
    extra: dict[str, tuple[str, Any]] | None = None,
) -> LayerType:
    """A windowed pooling layer; ``extra`` maps a further torch argument to (domain, default)."""
    pair = "int_or_pair" if n == 2 else "posint"
    extra = extra or {}
    defaults = {
        **{key: default for key, (_, default) in extra.items()},
        "kernel_size": None,
        "stride": None,
        **({"padding": 0} if padding else {}),
        "ceil_mode": False,
    }
    domains = {
        **{key: domain for key, (domain, _) in extra.items()},
        "kernel_size": pair,
        "stride": pair,
        **({"padding": "nonneg_or_pair" if n == 2 else "nonneg"} if padding else {}),
        "ceil_mode": "bool",
    }
    return LayerType(
        name=name,
        family="pool",
        description=description,
        defaults=defaults,
        domains=domains,
        infer=_pool_infer(n, name),
        module=module,
        kwargs=_pool_kwargs(n),
        optional=("stride",),
        docs={
            "stride": "step between windows; empty = the window size",
            "ceil_mode": "round the output size up (a last, partial window)",
        },
        window=_pool_window(n),
    )


def _global_infer(name: str) -> Callable[[Params, list[Shape]], Shape]:
    def infer(params: Params, in_shapes: list[Shape]) -> Shape:
        if len(in_shapes[0]) not in (2, 3):
            raise InputShapeError(
                f"{name} expects a channels×height×width (or channels×length) input, got {fmt(in_shapes[0])}"
            )
        return (in_shapes[0][0],)

    return infer


def _global_window(params: Params, shape: Shape) -> Window:
    n = len(shape) - 1
    return Window(tuple(shape[1:]), (1,) * n, (0,) * n, (1,) * n)


def _global_layer(name: str, description: str, reduce: str) -> LayerType:
    return LayerType(
        name=name,
        family="pool",
        description=description,
        defaults={},
        domains={},
        infer=_global_infer(name),
        module=GlobalPool,
        kwargs=lambda params, in_shapes: {"reduce": reduce},
        window=_global_window,
    )


def _adaptive_window(params: Params, shape: Shape) -> Window:
    # exact when the input divides evenly; otherwise the largest window torch uses
    out = as_tuple(params["output_size"], 2)
    sizes = list(zip(shape[1:], out))
    return Window(tuple(-(-s // o) for s, o in sizes), tuple(max(s // o, 1) for s, o in sizes), (0, 0), (1, 1))


def _adaptive_infer(name: str) -> Callable[[Params, list[Shape]], Shape]:
    def infer(params: Params, in_shapes: list[Shape]) -> Shape:
        shape = spatial_input(in_shapes[0], 2, name)
        return (shape[0], *as_tuple(params["output_size"], 2))

    return infer


def _adaptive_layer(name: str, description: str, module: type[nn.Module]) -> LayerType:
    return LayerType(
        name=name,
        family="pool",
        description=description,
        defaults={"output_size": 1},
        domains={"output_size": "int_or_pair"},
        infer=_adaptive_infer(name),
        module=module,
        kwargs=lambda params, in_shapes: {"output_size": as_tuple(params["output_size"], 2)},
        window=_adaptive_window,
    )


LAYER_TYPES = [
    _pool_layer("maxpool2d", "Max pooling", 2, nn.MaxPool2d),
    _pool_layer("avgpool2d", "Average pooling", 2, nn.AvgPool2d),
    _pool_layer("minpool2d", "Min pooling: the smallest value in each window, −maxpool(−x)", 2, MinPool2d),
    _pool_layer(
        "lppool2d",
        "Power-average pooling: (Σ xᵖ)^(1/p) over each window; p = 2 is L2-norm pooling",
        2,
        nn.LPPool2d,
        padding=False,
        extra={"norm_type": ("posfloat", 2)},
    ),
    _pool_layer("maxpool1d", "Max pooling along a sequence", 1, nn.MaxPool1d),
    _pool_layer("avgpool1d", "Average pooling along a sequence", 1, nn.AvgPool1d),
    _global_layer("global_avgpool", "Average of each channel over all positions: C×H×W → C", "mean"),
    _global_layer("global_maxpool", "Maximum of each channel over all positions: C×H×W → C", "max"),
    _adaptive_layer("adaptive_avgpool2d", "Average pooling to a fixed output size", nn.AdaptiveAvgPool2d),
    _adaptive_layer("adaptive_maxpool2d", "Max pooling to a fixed output size", nn.AdaptiveMaxPool2d),
]
