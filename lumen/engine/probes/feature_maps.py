"""What the model does to one input: the feature maps of the chosen layers (every conv layer unless the user
picked others, before or after their activation) and the top predictions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lumen.engine.events import Frame, ModelInfo
from lumen.engine.explain.activations import activation_after, as_maps, layer_names, layer_type, record, top_k
from lumen.engine.probes.base import Probe, ProbeContext

FEATURE_MAP_TYPES = ("conv2d",)
NO_INPUT = "no input: drop a picture if the model takes images"


@dataclass(frozen=True)
class FeatureMapSettings:
    """Which layers' maps are shown (None: every conv layer), and whether after the activation that follows."""

    layers: tuple[str, ...] | None = None
    after_activation: bool = False


@dataclass(frozen=True)
class LayerMaps:
    """One layer's feature maps tiled into one image (so the GUI draws one item, not one per channel)."""

    node: str
    shape: tuple[int, int, int]  # channels, height, width of the real activation
    grid: tuple[int, int]  # rows, columns of the mosaic
    mosaic: np.ndarray  # float32, row-major; gaps between tiles are NaN
    levels: tuple[float, float]  # min and max of the activation, for the colour scale
    kind: str = "conv2d"  # the node's layer type
    recorded: str = ""  # the node whose output this is: ``node``, or the activation after it
    maps: np.ndarray | None = None  # the activation as C×H×W float32, untiled (for export and tile levels)


@dataclass(frozen=True)
class FeatureMapFrame(Frame):
    source: str  # what was fed in, e.g. "validation digit #17" or a file name
    image: np.ndarray  # the model's input as H×W float32 in [0, 1]
    layers: tuple[LayerMaps, ...]
    predictions: tuple[tuple[str, float], ...]  # top classes with probabilities, best first
    label: str | None = None  # the true class, when known
    layer_choices: tuple[tuple[str, str], ...] = ()  # every layer that can be shown: (node id, layer type)
    choice: FeatureMapSettings = FeatureMapSettings()  # the settings these maps follow
    classes: tuple[str, ...] = ()  # the dataset's class names, in output order (for class pickers)


class FeatureMaps(Probe):
    name = "feature maps"
    frame_type = FeatureMapFrame
    interval_s = 0.1
    budget = 0.25
    replayable = True
    Settings = FeatureMapSettings

    def applies(self, info: ModelInfo) -> bool:
        """Pictures through conv layers: maps are drawn as images (a sequence's or a vector's are not)."""
        return info.input_kind == "image" and bool(info.layer_types & set(FEATURE_MAP_TYPES))

    def frame(self, context: ProbeContext) -> FeatureMapFrame:
        if context.input is None:  # nothing fits this model: an empty frame, so the viewer shows no stale maps
            choices = tuple((n, layer_type(context.model, n)) for n in layer_names(context.model))
            return FeatureMapFrame(
                context.step,
                NO_INPUT,
                np.zeros((1, 1), np.float32),
                (),
                (),
                layer_choices=choices,
                choice=self.settings,
                classes=context.classes,
            )
        probe = context.input
        return feature_map_frame(
            context.model,
            probe.x,
            context.classes,
            step=context.step,
            source=probe.source,
            label=probe.label,
            choice=self.settings,
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


def shown_layers(model: nn.Module, choice: FeatureMapSettings) -> list[str]:
    """The nodes whose maps are shown: the user's pick (those the model has), else every conv layer."""
    known = set(layer_names(model))
    picked = [n for n in choice.layers or () if n in known]
    return picked or [n for n in layer_names(model) if layer_type(model, n) in FEATURE_MAP_TYPES]


def feature_map_frame(
    model: nn.Module,
    x: torch.Tensor,
    classes: tuple[str, ...],
    *,
    step: int,
    source: str,
    label: str | None = None,
    top_k_count: int = 5,
    choice: FeatureMapSettings | None = None,
) -> FeatureMapFrame:
    """x is one input, 1×C×H×W. Runs in eval mode through hooks that come off (``engine.explain.activations``)
    and restores the model's mode afterwards."""
    choice = choice or FeatureMapSettings()
    nodes = shown_layers(model, choice)
    recorded_as = {n: (activation_after(model, n) if choice.after_activation else None) or n for n in nodes}
    was_training = model.training
    model.eval()
    try:
        out, recorded = record(model, x, list(dict.fromkeys(recorded_as.values())))
    finally:
        model.train(was_training)
    layers = []
    for node in nodes:
        maps = np.ascontiguousarray(as_maps(recorded[recorded_as[node]][0].float().numpy()))
        mosaic, grid = tile(maps)
        layers.append(
            LayerMaps(
                node,
                (maps.shape[0], maps.shape[1], maps.shape[2]),
                grid,
                mosaic,
                (float(maps.min()), float(maps.max())),
                layer_type(model, node),
                recorded_as[node],
                maps,
            )
        )
    image = x[0].mean(0).float().numpy()  # channels averaged for display
    return FeatureMapFrame(
        step,
        source,
        np.ascontiguousarray(image),
        tuple(layers),
        top_k(out, classes, top_k_count),
        label,
        tuple((n, layer_type(model, n)) for n in layer_names(model)),
        choice,
        tuple(classes),
    )
