"""Activation maximization and DeepDream as jobs the worker runs in slices (``engine.jobs.Job``), with
progress frames: ``picture_job`` wraps one of the step generators (``maximize_steps``, ``dream_steps``) and makes a
``DreamFrame`` of the picture so far when one is due, and always the last; cancelled, the last picture stays.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from lumen.engine.data.images import display_image
from lumen.engine.events import Frame
from lumen.engine.graph.modes import evaluating
from lumen.engine.jobs import Job


@dataclass(frozen=True)
class DreamFrame(Frame):
    """The picture of an activation-maximization or DeepDream job so far."""

    method: str  # "activation maximization" or "deepdream"
    target: str  # what is being excited, for people: "class 3", "channel 5 of conv2"
    image: np.ndarray  # H×W (grey) or H×W×3 (RGB) float32 in [0, 1], for display
    picture: np.ndarray  # the model input itself, C×H×W float32 (what an export writes)
    fraction: float  # share of the job's steps done, 0…1
    done: bool  # the job ended (finished or cancelled)
    cancelled: bool = False
    probability: float | None = None  # a class objective: the model's probability of that class for the picture


def picture_job(
    method: str,
    target: str,
    steps: Generator[tuple[int, int, torch.Tensor], None, None],
    model: nn.Module,
    *,
    step: int,
    class_index: int | None = None,
) -> Job[DreamFrame]:
    """A job over ``steps`` ((done, total, picture) per step) whose frames show the picture; ``class_index``: the
    frames also give the model's probability of that class for it. ``step``: the training step of the weights."""

    def frame(picture: torch.Tensor, fraction: float, done: bool) -> DreamFrame:
        probability = None
        if class_index is not None:
            with evaluating(model), torch.no_grad():
                out = model(picture)
            probability = float(torch.softmax(out[0].float(), 0)[class_index])
        return DreamFrame(
            step,
            method,
            target,
            display_image(picture),
            np.ascontiguousarray(picture[0].float().numpy()),
            fraction,
            done,
            probability=probability,
        )

    def work() -> Generator[DreamFrame | None, bool, DreamFrame | None]:
        due, picture, fraction = True, None, 0.0
        try:
            for done, total, picture in steps:
                fraction = done / total
                if done >= total:
                    break
                due = yield (frame(picture, fraction, False) if due else None)
        finally:
            steps.close()
        return frame(picture, fraction, True) if picture is not None else None

    return Job(method, target, work(), stopped=lambda last: replace(last, done=True, cancelled=True))


def with_totals(
    steps: Generator[tuple[int, torch.Tensor], None, None], total: int
) -> Generator[tuple[int, int, torch.Tensor], None, None]:
    """``maximize_steps``' (done, picture) as (done, total, picture), like ``dream_steps``."""
    try:
        for done, picture in steps:
            yield done, total, picture
    finally:
        steps.close()
