"""Per-layer gradient norms: the vanishing / exploding-gradient picture, read between batches.

The probe runs after a batch's ``backward()`` and ``optimizer.step()`` and before the next batch's
``zero_grad``: each parameter's ``.grad`` still holds that batch's gradient. For every node with parameters
it reports the L2 norm of all its parameters' gradients together (and of the weights, for the relative
size of an update), and the ratio of the first such layer's norm to the last's: far below 1, the early
layers learn much more slowly than the late ones (vanishing); far above, the reverse (exploding).

It is listed before the attribution probe in ``PROBES`` so that it reads the training gradients before a probe
runs a backward pass of its own (feature maps, listed first, run without gradients).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lumen.engine.events import Frame, ModelInfo
from lumen.engine.explain.activations import layer_names
from lumen.engine.probes.base import Probe, ProbeContext


@dataclass(frozen=True)
class GradientNormFrame(Frame):
    layers: tuple[str, ...]  # nodes with parameters that received a gradient, in the model's order
    norms: np.ndarray  # float64, one per layer: ‖∂loss/∂θ‖₂ over the layer's parameters
    weight_norms: np.ndarray  # float64, one per layer: ‖θ‖₂
    ratio: float  # norms[0] / norms[-1] (first over last layer); NaN with fewer than two layers or a zero norm


def gradient_norms(model: nn.Module) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """The layers whose parameters hold a gradient now, their gradient norms and weight norms (one sync)."""
    layers: list[str] = []
    grads: list[torch.Tensor] = []
    weights: list[torch.Tensor] = []
    with torch.no_grad():
        for node in layer_names(model):
            params = [p for p in model.get_submodule(node).parameters() if p.grad is not None]
            if not params:
                continue
            layers.append(node)
            grads.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params])))
            weights.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p) for p in params])))
        if not layers:
            return (), np.zeros(0), np.zeros(0)
        both = torch.stack([torch.stack(grads), torch.stack(weights)]).double().cpu().numpy()
    return tuple(layers), both[0], both[1]


def first_last_ratio(norms: np.ndarray) -> float:
    if len(norms) < 2 or not norms[-1] > 0 or not math.isfinite(float(norms[-1])):
        return math.nan
    return float(norms[0] / norms[-1])


class GradientNorms(Probe):
    name = "gradient norms"
    frame_type = GradientNormFrame
    interval_s = 0.25  # a bar chart and lines that move slowly: 4 frames a second read as live, and cost a third
    budget = 0.05

    def applies(self, info: ModelInfo) -> bool:
        """Any model a run trains by gradients (Boltzmann machines' surrogate losses have them too)."""
        return info.objective is not None

    def frame(self, context: ProbeContext) -> GradientNormFrame | None:
        layers, norms, weight_norms = gradient_norms(context.model)
        if not layers:
            return None  # before the first backward (or a model trained without gradients): nothing to show
        return GradientNormFrame(context.step, layers, norms, weight_norms, first_last_ratio(norms))
