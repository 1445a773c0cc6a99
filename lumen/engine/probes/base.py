"""What a probe is: something the engine computes live from the model, between batches, as a Frame.

A probe has a name, the Frame type it makes, whether it ``applies`` to the loaded model (``ModelInfo``), how
often it wants to run while training (``interval_s``), a cost budget (``budget``: the largest share of the
worker's time it may take while training) and its own ``Settings`` (a frozen dataclass; the user changes them
through the one ``ConfigureProbe(probe name, settings)`` command, and the probe reads ``self.settings``). One
verb, ``frame(context)``, makes a frame, or a ``Job`` for work too long to do between two batches (run in slices
by the worker, with progress frames), or None when it has nothing to show. Probes are plain objects listed in
``engine/probes/__init__.py``; the worker runs them through ``ProbeRunner``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from lumen.engine.errors import LumenError
from lumen.engine.events import Frame, ModelInfo
from lumen.engine.jobs import Job


@dataclass(frozen=True)
class ProbeInput:
    """The input the user chose, prepared for the current model."""

    x: torch.Tensor  # one input, a batch of 1 shaped as the model takes it
    source: str  # what it is, for people: "validation digit #17", a file name
    label: str | None = None  # its true class, when known
    black: torch.Tensor | None = None  # an all-black picture prepared the same way (attribution's baseline)
    prepare: Callable[[np.ndarray], torch.Tensor] | None = None  # how a picture became ``x`` (for baselines)
    preparation: str = ""  # the same, for people ("RGB, shorter side 256, centre 224×224, mean ... std ...")
    target: torch.Tensor | None = None  # a validation sample's whole target (a class, a sequence of tokens, values)
    tokens: tuple[str, ...] = ()  # a one-hot input's features as text (a sequence's vocabulary)


@dataclass(frozen=True)
class NoSettings:
    """The settings of a probe that has none."""


@dataclass(frozen=True)
class ProbeContext:
    """Everything a probe may look at. Read it; never train the model or keep references past the call."""

    model: nn.Module  # a GraphModel, or any module (probes read it through named submodules and forward)
    input: ProbeInput | None  # None when the chosen input does not fit the model
    classes: tuple[str, ...]  # the dataset's class names, in output order
    step: int  # the training step of the model's weights (0 before training)
    info: ModelInfo | None = None  # what kind of model it is
    # A few validation samples with their targets (the same ones all run long), for probes that look at more than
    # the one probe input; None when the model cannot take the data.
    validation: tuple[torch.Tensor, torch.Tensor] | None = None


class Probe(ABC):
    name: ClassVar[str]
    frame_type: ClassVar[type[Frame]]
    interval_s: ClassVar[float] = 0.1  # while training, run at most this often
    budget: ClassVar[float] = 0.25  # while training, take at most this share of the worker's time
    # Whether its frames can be made again from a run's checkpoint (``ReplayCheckpoint``): a picture of the
    # weights and the probe input alone, needing no batch or gradients of the live run.
    replayable: ClassVar[bool] = False
    # What the user can set, as a frozen dataclass whose defaults are the probe's first settings.
    Settings: ClassVar[type] = NoSettings

    def __init__(self) -> None:
        self.settings = self.Settings()

    def configure(self, settings: object) -> None:
        """New settings (``ConfigureProbe``); the probe's next frame follows them."""
        if not isinstance(settings, self.Settings):
            raise LumenError(f"the {self.name} probe takes {self.Settings.__name__}, not {type(settings).__name__}")
        self.settings = settings

    def applies(self, info: ModelInfo) -> bool:
        """Whether it can say anything about this kind of model; the worker never runs one that does not, and the
        viewer shows no view for it. Default: every model."""
        return True

    @abstractmethod
    def frame(self, context: ProbeContext) -> Frame | Job | None:
        """Look at the model now, or return a ``Job`` that will (its first slice runs at once). Runs on the worker's
        thread; must leave the model's mode as it found it, and keep no reference to the model."""
