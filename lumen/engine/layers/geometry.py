"""Sliding-window geometry shared by the shape rules and ``engine.graph.analysis``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lumen.engine.spec.shapes import InputShapeError, Shape, ShapeError, fmt


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


def as_tuple(value: Any, n: int) -> tuple[int, ...]:
    """``3`` → ``(3, 3)`` for n = 2; a list or tuple becomes a tuple."""
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * n


def spatial_input(shape: Shape, n: int, layer: str) -> Shape:
    """Checks the input is channels × n spatial dims."""
    if len(shape) != n + 1:
        layout = "channels×length" if n == 1 else "channels×height×width"
        hint = "; a Flatten or Linear before it removed the image layout" if len(shape) == 1 and n == 2 else ""
        raise InputShapeError(f"{layer} expects a {layout} input, got {fmt(shape)}{hint}")
    return shape


def flat_vector(shape: Shape, layer: str, what: str = "a flat vector") -> Shape:
    """Checks the input is one vector per sample."""
    if len(shape) != 1:
        raise InputShapeError(f"{layer} expects {what}, got {fmt(shape)}; put a flatten node before it")
    return shape


def sample_dim(dim: int, shape: Shape) -> int:
    """A sample-dimension index (negative counts from the end) made non-negative; ShapeError if out of range."""
    if not -len(shape) <= dim < len(shape):
        raise ShapeError(
            f"dim {dim} is outside the {fmt(shape)} input (dims 0..{len(shape) - 1}, "
            f"or negative from the end; the batch is not counted)"
        )
    return dim % len(shape)


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
        return tuple(
            transposed_size(s, k, int(st), p, d, op)
            for s, k, st, p, d, op in zip(sizes, w.kernel, w.stride, w.padding, w.dilation, w.output_padding)
        )
    if w.same:
        return tuple(sizes)
    effective = tuple(d * (k - 1) + 1 for k, d in zip(w.kernel, w.dilation))
    if any(e > s + 2 * p for e, s, p in zip(effective, sizes, w.padding)):
        dilated = f" (dilated to {fmt(effective)})" if effective != w.kernel else ""
        pad = f" (padding {fmt(w.padding)})" if any(w.padding) else ""
        raise InputShapeError(f"{what} {fmt(w.kernel)}{dilated} is larger than its {fmt(sizes)} input{pad}")
    return tuple(
        sliding_size(s, k, int(st), p, d, w.ceil_mode)
        for s, k, st, p, d in zip(sizes, w.kernel, w.stride, w.padding, w.dilation)
    )
