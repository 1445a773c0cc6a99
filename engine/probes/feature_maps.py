"""What the model does to one input: feature maps of every conv layer and the top predictions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from engine.graph.model import GraphModel
from engine.probes.base import Probe, ProbeContext
from engine.runtime.events import Frame

FEATURE_MAP_TYPES = ("conv2d",)
NO_INPUT = "no input: drop a picture if the model takes images"


@dataclass(frozen=True)
class LayerMaps:
    """One layer's feature maps tiled into one image (so the GUI draws one item, not one per channel)."""

    node: str
    shape: tuple[int, int, int]  # channels, height, width of the real activation
    grid: tuple[int, int]  # rows, columns of the mosaic
    mosaic: np.ndarray  # float32, row-major; gaps between tiles are NaN
    levels: tuple[float, float]  # min and max of the activation, for the colour scale


@dataclass(frozen=True)
class FeatureMapFrame(Frame):
    source: str  # what was fed in, e.g. "validation digit #17" or a file name
    image: np.ndarray  # the model's input as H×W float32 in [0, 1]
    layers: tuple[LayerMaps, ...]
    predictions: tuple[tuple[str, float], ...]  # top classes with probabilities, best first
    label: str | None = None  # the true class, when known


class FeatureMaps(Probe):
    name = "feature maps"
    frame_type = FeatureMapFrame
    interval_s = 0.1
    budget = 0.25

    def frame(self, context: ProbeContext) -> FeatureMapFrame:
        if context.input is None:  # nothing fits this model: an empty frame, so the viewer shows no stale maps
            return FeatureMapFrame(context.step, NO_INPUT, np.zeros((1, 1), np.float32), (), ())
        probe = context.input
        return feature_map_frame(
            context.model, probe.x, context.classes, step=context.step, source=probe.source, label=probe.label
        )


def tile(maps: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """C×H×W maps as one near-square mosaic with 1-pixel NaN gaps (drawn transparent)."""
    channels, h, w = maps.shape
    cols = math.ceil(math.sqrt(channels))
    rows = math.ceil(channels / cols)
    mosaic = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan, dtype=np.float32)
    for c in range(channels):
        r, k = divmod(c, cols)
        mosaic[r * (h + 1) : r * (h + 1) + h, k * (w + 1) : k * (w + 1) + w] = maps[c]
    return mosaic, (rows, cols)


@torch.no_grad()
def feature_map_frame(
    model: GraphModel,
    x: torch.Tensor,
    classes: tuple[str, ...],
    *,
    step: int,
    source: str,
    label: str | None = None,
    top_k: int = 5,
) -> FeatureMapFrame:
    """x is one input, 1×C×H×W. Runs in eval mode and restores the model's mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        nodes = model.nodes_of_type(*FEATURE_MAP_TYPES)
        out, recorded = model.forward_recording(x, nodes)
    finally:
        model.train(was_training)
    layers = []
    for node in nodes:
        maps = recorded[node][0].float().numpy()
        mosaic, grid = tile(maps)
        layers.append(
            LayerMaps(
                node,
                (maps.shape[0], maps.shape[1], maps.shape[2]),
                grid,
                mosaic,
                (float(maps.min()), float(maps.max())),
            )
        )
    predictions: tuple[tuple[str, float], ...] = ()
    if out.dim() == 2 and out.shape[1] == len(classes):
        probs = torch.softmax(out[0].float(), 0)
        top = torch.topk(probs, min(top_k, len(classes)))
        predictions = tuple((classes[i], float(p)) for p, i in zip(top.values, top.indices))
    image = x[0].mean(0).float().numpy()  # channels averaged for display
    return FeatureMapFrame(step, source, np.ascontiguousarray(image), tuple(layers), predictions, label)
