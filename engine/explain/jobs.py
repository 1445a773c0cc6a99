"""Long jobs the worker runs in slices: activation maximization and DeepDream, with progress frames.

A ``Job`` wraps one of the step generators (``maximize_steps``, ``dream_steps``). ``advance`` runs steps for
at most ``slice_s`` seconds and returns a ``DreamFrame`` when one is due (no more often than
``interval_s``, and always the last), so the worker handles commands (pause, stop, cancel, a new probe
input) between slices and the GUI gets a bounded number of frames. ``cancel`` ends it with the last picture.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from engine.data.images import display_image
from engine.runtime.events import Frame


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


class Job:
    def __init__(
        self,
        method: str,
        target: str,
        steps: Generator[tuple[int, int, torch.Tensor], None, None],
        model: nn.Module,
        *,
        class_index: int | None = None,
        interval_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.method, self.target = method, target
        self._steps = steps
        self._model = model
        self._class_index = class_index
        self._interval_s = interval_s
        self._clock = clock
        self._last_emit = float("-inf")
        self._picture: torch.Tensor | None = None
        self._fraction = 0.0
        self.finished = False

    def advance(self, step: int, slice_s: float = 0.05) -> DreamFrame | None:
        """Run steps for up to ``slice_s`` seconds (at least one); a frame when one is due or the job ended."""
        began = self._clock()
        while self._clock() - began < slice_s:
            try:
                done, total, self._picture = next(self._steps)
            except StopIteration:
                self.finished = True
                break
            self._fraction = done / total
            if done >= total:
                self.finished = True
                break
        if self.finished or self._clock() - self._last_emit >= self._interval_s:
            self._last_emit = self._clock()
            return self._frame(step, done=self.finished)
        return None

    def cancel(self, step: int) -> DreamFrame | None:
        self.finished = True
        self._steps.close()
        return self._frame(step, done=True, cancelled=True)

    def _frame(self, step: int, *, done: bool, cancelled: bool = False) -> DreamFrame | None:
        if self._picture is None:
            return None
        picture = self._picture
        probability = None
        if self._class_index is not None:
            was_training = self._model.training
            self._model.eval()
            try:
                with torch.no_grad():
                    out = self._model(picture)
            finally:
                self._model.train(was_training)
            probability = float(torch.softmax(out[0].float(), 0)[self._class_index])
        return DreamFrame(
            step,
            self.method,
            self.target,
            display_image(picture),
            np.ascontiguousarray(picture[0].float().numpy()),
            self._fraction,
            done,
            cancelled,
            probability,
        )


def with_totals(
    steps: Generator[tuple[int, torch.Tensor], None, None], total: int
) -> Generator[tuple[int, int, torch.Tensor], None, None]:
    """``maximize_steps``' (done, picture) as (done, total, picture), like ``dream_steps``."""
    try:
        for done, picture in steps:
            yield done, total, picture
    finally:
        steps.close()
