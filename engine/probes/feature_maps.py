"""What the model does to one input: feature maps of every conv layer and the top predictions."""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.runtime.events import FeatureMapFrame, LayerMaps
from engine.graph.model import GraphModel

FEATURE_MAP_TYPES = ("conv2d",)


def tile(maps: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """C×H×W maps as one near-square mosaic with 1-pixel NaN gaps (drawn transparent)."""
    channels, h, w = maps.shape
    cols = math.ceil(math.sqrt(channels))
    rows = math.ceil(channels / cols)
    mosaic = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan, dtype=np.float32)
    for c in range(channels):
        r, k = divmod(c, cols)
        mosaic[r * (h + 1):r * (h + 1) + h, k * (w + 1):k * (w + 1) + w] = maps[c]
    return mosaic, (rows, cols)


@torch.no_grad()
def feature_map_frame(model: GraphModel, x: torch.Tensor, classes: tuple[str, ...], *, step: int, source: str,
                      label: str | None = None, top_k: int = 5) -> FeatureMapFrame:
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
        layers.append(LayerMaps(node, tuple(maps.shape), grid, mosaic,
                                (float(maps.min()), float(maps.max()))))
    predictions: tuple[tuple[str, float], ...] = ()
    if out.dim() == 2 and out.shape[1] == len(classes):
        probs = torch.softmax(out[0].float(), 0)
        top = torch.topk(probs, min(top_k, len(classes)))
        predictions = tuple((classes[i], float(p)) for p, i in zip(top.values, top.indices))
    image = x[0].mean(0).float().numpy()  # channels averaged for display
    return FeatureMapFrame(step, source, np.ascontiguousarray(image), tuple(layers), predictions, label)
