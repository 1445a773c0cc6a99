"""DeepDream (Mordvintsev et al., 2015): gradient ascent on a picture to amplify what a layer (or one of its
channels) already sees in it, octave by octave, coarse to fine.

Each octave works on the picture at a smaller size; the model always sees it resized to its own input size,
so models with a fixed input (LeNet's dense layers want 28×28) dream too. The detail an octave adds is
carried up to the next. Each step: a random jitter, the gradient of the objective (the layer's mean
square, or one channel's mean), normalised by its mean magnitude, added with step size ``lr``.
``dream_steps`` is a generator, one step per ``next()``, so the worker can run it in slices and cancel it.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lumen.engine.errors import LumenError
from lumen.engine.explain.maximize import MaximizeTarget, input_shape_of, objective_value


@dataclass(frozen=True)
class DreamSettings:
    octaves: int = 3
    octave_scale: float = 1.4
    steps: int = 20  # per octave
    lr: float = 0.02
    jitter: int = 2
    seed: int = 0

    def check(self) -> None:
        if not (isinstance(self.octaves, int) and 1 <= self.octaves <= 12):
            raise LumenError(f"octaves must be a whole number from 1 to 12, got {self.octaves}")
        if not (isinstance(self.steps, int) and 1 <= self.steps <= 10_000):
            raise LumenError(f"steps per octave must be a whole number from 1 to 10,000, got {self.steps}")
        if not (self.octave_scale > 1 and math.isfinite(self.octave_scale)):
            raise LumenError(f"the octave scale must be a number above 1, got {self.octave_scale}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise LumenError(f"the step size must be a positive number, got {self.lr}")


def dream_objective(layer: str, channel: int | None) -> MaximizeTarget:
    return MaximizeTarget("layer", 0, layer) if channel is None else MaximizeTarget("channel", channel, layer)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def dream_steps(
    model: nn.Module,
    image: torch.Tensor,
    layer: str,
    channel: int | None = None,
    settings: DreamSettings = DreamSettings(),
) -> Generator[tuple[int, int, torch.Tensor], None, None]:
    """Yields ``(steps done, total steps, picture)``; ``image`` and the pictures are 1×C×H×W in [0, 1]."""
    settings.check()
    objective = dream_objective(layer, channel)
    objective.check(model)
    c, h, w = input_shape_of(model, None) if getattr(model, "spec", None) is not None else tuple(image.shape[1:])
    if image.dim() != 4 or tuple(image.shape[1:]) != (c, h, w):
        raise LumenError(f"the picture is {tuple(image.shape[1:])}; the model takes {(c, h, w)}")
    generator = torch.Generator().manual_seed(settings.seed)
    base = image.detach().float().clamp(0, 1)
    sizes = [
        (max(4, round(h / settings.octave_scale**k)), max(4, round(w / settings.octave_scale**k)))
        for k in reversed(range(settings.octaves))
    ]
    total = settings.octaves * settings.steps
    done = 0
    detail = torch.zeros_like(_resize(base, sizes[0]))
    shift = min(settings.jitter, max(h, w) // 8)
    for size in sizes:
        low = _resize(base, size)
        detail = _resize(detail, size)
        picture = (low + detail).clamp(0, 1)
        for _ in range(settings.steps):
            dy, dx = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=generator))
            was_training = model.training
            model.eval()
            try:
                with torch.enable_grad():
                    moving = torch.roll(picture, (dy, dx), (-2, -1)).requires_grad_(True)
                    value = objective_value(model, _resize(moving, (h, w)), objective)
                    (grad,) = torch.autograd.grad(value, [moving])
            finally:
                model.train(was_training)
            grad = torch.roll(grad, (-dy, -dx), (-2, -1))
            picture = (picture + settings.lr * grad / (grad.abs().mean() + 1e-8)).clamp(0, 1)
            done += 1
            detail = picture - low
            yield done, total, _resize(picture, (h, w)).detach()


def dream(
    model: nn.Module,
    image: torch.Tensor,
    layer: str,
    channel: int | None = None,
    settings: DreamSettings = DreamSettings(),
) -> torch.Tensor:
    picture = image
    for _, _, latest in dream_steps(model, image, layer, channel, settings):
        picture = latest
    return picture
