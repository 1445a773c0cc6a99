"""Weight and activation histograms of every layer with parameters, as numpy counts, for pictures over time.

Each layer's bins span a symmetric range that stays fixed while the values fit in it and doubles when they
outgrow it, so consecutive histograms of a layer share their edges and stack into an image (time × bins).
Weights: all of the layer's parameters. Activations: the layer's output for the probe input (one sample, the
one the viewer shows); none when there is no input that fits the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lumen.engine.events import Frame
from lumen.engine.explain.activations import layer_names, record
from lumen.engine.graph.model import GraphModel
from lumen.engine.probes.base import Probe, ProbeContext

BINS = 64
MAX_REMEMBERED = 512  # layer ranges kept across models before the oldest are forgotten


@dataclass(frozen=True)
class LayerHistogram:
    node: str
    limit: float  # the bins span [-limit, limit]
    counts: np.ndarray  # float32, BINS values (values beyond the range are counted in the end bins)


@dataclass(frozen=True)
class HistogramFrame(Frame):
    weights: tuple[LayerHistogram, ...]
    activations: tuple[LayerHistogram, ...]  # empty without a probe input


def histogram(values: torch.Tensor, limit: float, bins: int = BINS) -> np.ndarray:
    flat = values.detach().reshape(-1).float().clamp(-limit, limit)
    return torch.histc(flat, bins=bins, min=-limit, max=limit).cpu().numpy().astype(np.float32)


def parameterised_nodes(model: nn.Module) -> list[str]:
    return [node for node in layer_names(model) if next(model.get_submodule(node).parameters(), None) is not None]


class Histograms(Probe):
    name = "histograms"
    frame_type = HistogramFrame
    interval_s = 0.5
    budget = 0.05

    def __init__(self) -> None:
        super().__init__()
        self._limits: dict[tuple[int, str, str], float] = {}  # (model, node, "w"/"a") -> the range's half-width

    def _limit(self, model: nn.Module, node: str, kind: str, values: torch.Tensor) -> float:
        key = (id(model), node, kind)
        peak = float(values.detach().abs().max()) if values.numel() else 0.0
        limit = self._limits.get(key)
        if limit is None:
            if len(self._limits) >= MAX_REMEMBERED:
                self._limits.clear()
            limit = max(peak * 1.5, 1e-6)
        while peak > limit:
            limit *= 2.0
        self._limits[key] = limit
        return limit

    def frame(self, context: ProbeContext) -> HistogramFrame:
        model = context.model
        nodes = parameterised_nodes(model)
        weights = []
        with torch.no_grad():
            for node in nodes:
                flat = torch.cat([p.detach().reshape(-1) for p in model.get_submodule(node).parameters()])
                limit = self._limit(model, node, "w", flat)
                weights.append(LayerHistogram(node, limit, histogram(flat, limit)))
            activations = []
            if context.input is not None and nodes:
                was_training = model.training
                model.eval()
                try:
                    device = next(model.parameters()).device
                    x = context.input.x.to(device)
                    if isinstance(model, GraphModel):  # every node's output at once, no hooks or copies
                        _, outputs = model.forward_recording(x, nodes)
                    else:
                        _, outputs = record(model, x, nodes)
                finally:
                    model.train(was_training)
                for node in nodes:
                    out = outputs.get(node)
                    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
                        continue
                    limit = self._limit(model, node, "a", out)
                    activations.append(LayerHistogram(node, limit, histogram(out, limit)))
        return HistogramFrame(context.step, tuple(weights), tuple(activations))
