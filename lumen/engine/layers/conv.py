"""Convolutions and the layers that enlarge images (transposed convolution, upsampling)."""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn

from lumen.engine.layers.base import LayerType, Params, choice
from lumen.engine.layers.geometry import Window, as_tuple, spatial_input, window_output
from lumen.engine.spec.shapes import Shape, ShapeError, fmt


def _conv_window(n: int) -> Callable[[Params, Shape], Window]:
    def window(params: Params, shape: Shape) -> Window:
        same = params["padding"] == "same"
        return Window(
            as_tuple(params["kernel_size"], n),
            as_tuple(params["stride"], n),
            (0,) * n if same else as_tuple(params["padding"], n),
            as_tuple(params["dilation"], n),
            same=same,
        )

    return window


def _check_groups(params: Params, in_channels: int) -> None:
    groups = params["groups"]
    if in_channels % groups or params["out_channels"] % groups:
        raise ShapeError(
            f"groups {groups} must divide both the {in_channels} input channels "
            f"and the {params['out_channels']} output channels"
        )


def _conv_infer(n: int) -> Callable[[Params, list[Shape]], Shape]:
    name = f"conv{n}d"

    def infer(params: Params, in_shapes: list[Shape]) -> Shape:
        shape = spatial_input(in_shapes[0], n, name)
        _check_groups(params, shape[0])
        if params["padding"] == "same" and any(s != 1 for s in as_tuple(params["stride"], n)):
            raise ShapeError('padding "same" needs stride 1 (a strided convolution cannot keep the size)')
        return (params["out_channels"], *window_output(shape, _conv_window(n)(params, shape), "kernel"))

    return infer


def _conv_kwargs(n: int) -> Callable[[Params, list[Shape]], Params]:
    def kwargs(params: Params, in_shapes: list[Shape]) -> Params:
        padding = params["padding"]
        return {
            "in_channels": in_shapes[0][0],
            "out_channels": params["out_channels"],
            "kernel_size": as_tuple(params["kernel_size"], n),
            "stride": as_tuple(params["stride"], n),
            "padding": padding if padding == "same" else as_tuple(padding, n),
            "dilation": as_tuple(params["dilation"], n),
            "groups": params["groups"],
            "bias": params["bias"],
        }

    return kwargs


def _conv_macs(params: Params, in_shapes: list[Shape], out: Shape) -> int:
    # every output value is a dot product over (C_in / groups) × kernel
    return (
        math.prod(out) * in_shapes[0][0] // params["groups"] * math.prod(as_tuple(params["kernel_size"], len(out) - 1))
    )


def _conv_layer(n: int) -> LayerType:
    pair = "int_or_pair" if n == 2 else "posint"
    return LayerType(
        name=f"conv{n}d",
        family="conv",
        description=f"{n}-D convolution (groups = input channels: depthwise)",
        defaults={
            "out_channels": None,
            "kernel_size": None,
            "stride": 1,
            "padding": 0,
            "dilation": 1,
            "groups": 1,
            "bias": True,
        },
        domains={
            "out_channels": "posint",
            "kernel_size": pair,
            "stride": pair,
            "dilation": pair,
            "groups": "posint",
            "padding": "pair_or_same" if n == 2 else "int_or_same",
            "bias": "bool",
        },
        infer=_conv_infer(n),
        module=nn.Conv1d if n == 1 else nn.Conv2d,
        kwargs=_conv_kwargs(n),
        docs={
            "padding": 'zeros added on each side, or "same" to keep the size (stride 1)',
            "dilation": "spacing between kernel taps",
            "groups": "input channels / groups per filter",
        },
        window=_conv_window(n),
        macs=_conv_macs,
    )


def _tconv_window(params: Params, shape: Shape) -> Window:
    return Window(
        as_tuple(params["kernel_size"], 2),
        as_tuple(params["stride"], 2),
        as_tuple(params["padding"], 2),
        (1, 1),
        transposed=True,
        output_padding=as_tuple(params["output_padding"], 2),
    )


def _tconv_infer(params: Params, in_shapes: list[Shape]) -> Shape:
    shape = spatial_input(in_shapes[0], 2, "conv_transpose2d")
    w = _tconv_window(params, shape)
    if any(op >= s for op, s in zip(w.output_padding, w.stride)):
        raise ShapeError(f"output_padding {fmt(w.output_padding)} must be smaller than the stride {fmt(w.stride)}")
    out = window_output(shape, w, "kernel")
    if any(s <= 0 for s in out):
        raise ShapeError(f"padding {fmt(w.padding)} crops the {fmt(shape[1:])} input to nothing ({fmt(out)})")
    return (params["out_channels"], *out)


def _tconv_kwargs(params: Params, in_shapes: list[Shape]) -> Params:
    return {
        "in_channels": in_shapes[0][0],
        "out_channels": params["out_channels"],
        "kernel_size": as_tuple(params["kernel_size"], 2),
        "stride": as_tuple(params["stride"], 2),
        "padding": as_tuple(params["padding"], 2),
        "output_padding": as_tuple(params["output_padding"], 2),
        "bias": params["bias"],
    }


def _tconv_macs(params: Params, in_shapes: list[Shape], out: Shape) -> int:
    # every input value is scattered through the kernel into each output channel
    return math.prod(in_shapes[0]) * params["out_channels"] * math.prod(as_tuple(params["kernel_size"], 2))


def _upsample_infer(params: Params, in_shapes: list[Shape]) -> Shape:
    shape = spatial_input(in_shapes[0], 2, "upsample")
    out = tuple(math.floor(s * params["scale_factor"]) for s in shape[1:])
    if any(s <= 0 for s in out):
        raise ShapeError(f"scale_factor {params['scale_factor']} shrinks the {fmt(shape[1:])} input to nothing")
    return (shape[0], *out)


def _upsample_window(params: Params, shape: Shape) -> Window:
    # each output pixel copies one input pixel (nearest) or mixes two neighbours per axis (bilinear)
    s = params["scale_factor"]
    k = 1 if params["mode"] == "nearest" else max(2, math.ceil(2 * s))
    return Window((k, k), (s, s), (0, 0), (1, 1), transposed=True, output_padding=(0, 0))


LAYER_TYPES = [
    _conv_layer(1),
    _conv_layer(2),
    LayerType(
        name="conv_transpose2d",
        family="conv",
        description="Transposed 2-D convolution (upsamples: decoders)",
        defaults={
            "out_channels": None,
            "kernel_size": None,
            "stride": 1,
            "padding": 0,
            "output_padding": 0,
            "bias": True,
        },
        domains={
            "out_channels": "posint",
            "kernel_size": "int_or_pair",
            "stride": "int_or_pair",
            "padding": "nonneg_or_pair",
            "output_padding": "nonneg_or_pair",
            "bias": "bool",
        },
        infer=_tconv_infer,
        module=nn.ConvTranspose2d,
        kwargs=_tconv_kwargs,
        window=_tconv_window,
        macs=_tconv_macs,
    ),
    LayerType(
        name="upsample",
        family="conv",
        description="Enlarges images by a scale factor (nearest or bilinear interpolation)",
        defaults={"scale_factor": 2, "mode": "nearest"},
        domains={"scale_factor": "posfloat", "mode": choice("nearest", "bilinear")},
        infer=_upsample_infer,
        module=nn.Upsample,
        kwargs=lambda params, in_shapes: {"scale_factor": float(params["scale_factor"]), "mode": params["mode"]},
        window=_upsample_window,
    ),
]
