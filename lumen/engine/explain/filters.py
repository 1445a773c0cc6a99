"""Convolution filters as pictures: a first layer that reads RGB as colour patches, any other as tiles.

A filter bank of ``out × in × kh × kw`` weights becomes one mosaic: for 3 input channels (and the ``colour``
choice) one RGB patch per output channel, scaled together so that grey is zero; otherwise one row per
output channel and one column per input channel, each tile a kernel, with 1-pixel NaN gaps (drawn
transparent) and symmetric levels. Deep layers have thousands of kernels: only the first ``max_out`` ×
``max_in`` are shown, and the picture says so; ``weights`` keeps every kernel, as the layer holds them, for export.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lumen.engine.errors import LumenError

MAX_OUT = 64
MAX_IN = 32


@dataclass(frozen=True)
class FilterImage:
    node: str
    shape: tuple[int, int, int, int]  # out channels, in channels (per group), kernel height, kernel width
    shown: tuple[int, int]  # how many output and input channels the mosaic holds
    colour: bool  # True: mosaic is H×W×3 in [0, 1] (0.5 is zero); False: H×W with NaN gaps
    mosaic: np.ndarray
    levels: tuple[float, float]  # the weights' min and max
    weights: np.ndarray  # out×in×kh×kw float32: the layer's weights at this moment, every kernel (a copy)


def conv_layers(model: nn.Module) -> list[str]:
    """The names of the model's 2-D convolutions, in registration order."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d) and name]


def filter_image(
    model: nn.Module, node: str, *, colour: bool = True, max_out: int = MAX_OUT, max_in: int = MAX_IN
) -> FilterImage:
    modules = dict(model.named_modules())
    module = modules.get(node)
    if not isinstance(module, nn.Conv2d):
        known = ", ".join(conv_layers(model)[:12]) or "none"
        raise LumenError(f"{node!r} is not a 2-D convolution, so it has no filters to show (conv layers: {known})")
    with torch.no_grad():
        weights = module.weight.detach().float().cpu().numpy().copy()  # a copy: training moves the parameter
    out_ch, in_ch, kh, kw = weights.shape
    levels = (float(weights.min()), float(weights.max()))
    if colour and in_ch == 3:
        shown = weights[:max_out]
        return FilterImage(node, (out_ch, in_ch, kh, kw), (len(shown), 3), True, colour_mosaic(shown), levels, weights)
    shown = weights[:max_out, :max_in]
    return FilterImage(node, (out_ch, in_ch, kh, kw), shown.shape[:2], False, kernel_mosaic(shown), levels, weights)


def colour_mosaic(weights: np.ndarray) -> np.ndarray:
    """out×3×kh×kw weights as a near-square grid of RGB patches (white gaps), one scale for all: 0.5 is zero."""
    out_ch, _, kh, kw = weights.shape
    reach = float(np.abs(weights).max()) or 1.0
    patches = np.moveaxis(weights, 1, 3) / (2 * reach) + 0.5  # out×kh×kw×3
    cols = math.ceil(math.sqrt(out_ch))
    rows = math.ceil(out_ch / cols)
    mosaic = np.ones((rows * (kh + 1) - 1, cols * (kw + 1) - 1, 3), np.float32)
    for i in range(out_ch):
        r, c = divmod(i, cols)
        mosaic[r * (kh + 1) : r * (kh + 1) + kh, c * (kw + 1) : c * (kw + 1) + kw] = patches[i]
    return np.ascontiguousarray(np.clip(mosaic, 0.0, 1.0))


def kernel_mosaic(weights: np.ndarray) -> np.ndarray:
    """out×in×kh×kw weights as a grid: a row per output channel, a column per input channel, NaN gaps. A layer
    reading one channel (a grey picture) has one kernel per output: those are tiled near-square instead, so six
    filters are not drawn as one narrow column beside an empty pane."""
    out_ch, in_ch, kh, kw = weights.shape
    if in_ch == 1:
        cols = math.ceil(math.sqrt(out_ch))
        rows = math.ceil(out_ch / cols)
        grid = np.full((rows * (kh + 1) - 1, cols * (kw + 1) - 1), np.nan, np.float32)
        for o in range(out_ch):
            r, c = divmod(o, cols)
            grid[r * (kh + 1) : r * (kh + 1) + kh, c * (kw + 1) : c * (kw + 1) + kw] = weights[o, 0]
        return grid
    mosaic = np.full((out_ch * (kh + 1) - 1, in_ch * (kw + 1) - 1), np.nan, np.float32)
    for o in range(out_ch):
        for i in range(in_ch):
            mosaic[o * (kh + 1) : o * (kh + 1) + kh, i * (kw + 1) : i * (kw + 1) + kw] = weights[o, i]
    return mosaic
