"""The commands the engine's worker obeys: one frozen dataclass per command.

A caller builds one and hands it to ``EngineWorker.submit`` (or uses the worker's one-line helpers); the
worker queues it and handles it between batches, looking its handler up by the command's type. A command
the worker has no handler for is refused at ``submit``, in the caller's thread, with a ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lumen.engine.errors import LumenError
from lumen.engine.events import Frame
from lumen.engine.explain.dream import DreamSettings
from lumen.engine.explain.maximize import MaximizeSettings, MaximizeTarget
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.training.loop import TrainConfig


@dataclass(frozen=True)
class LoadModel:
    """Build ``spec`` with fresh weights on ``dataset`` (a built-in name or a path; None: the preset's default
    data), resized to fit it (engine.training.fit); stops a run in progress. ``weights`` (a state dict, such as an
    opened ONNX model's, named in messages by ``weights_from``) replace the fresh ones wherever a tensor still fits
    the resized model; ``Train(keep_weights=True)`` then fine-tunes them."""

    spec: ModelSpec
    dataset: str | None = None
    weights: Mapping[str, Any] | None = None
    weights_from: str = ""


@dataclass(frozen=True)
class OpenRun:
    """Open a saved run: ``run`` is a run folder (as ``train --out`` or ``import`` write it) or a run-store id (the
    runs list). Its spec is built with its weights, its class names name the outputs, its metrics are sent again
    and its checkpoints listed for replay; a folder that is not a run, weights that do not fit, a run of a newer
    Lumen are one ``EngineError`` each, and the current model stays. Stops a run in progress."""

    run: Path | str


@dataclass(frozen=True)
class Train:
    """Start a run: from fresh weights, or (``keep_weights``) from the weights the model has now (an opened run's)."""

    config: TrainConfig
    keep_weights: bool = False


@dataclass(frozen=True)
class SetLearningRate:
    """Change the running (or paused) run's learning rate from the next batch on."""

    lr: float


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class Step:
    """Train one batch while paused; the probes run after it."""


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class ProbeSample:
    """Probe the model with validation sample ``index`` (wrapped around the set's size)."""

    index: int = 0


@dataclass(frozen=True)
class ProbeImage:
    """Probe the model with a user's picture: decoded pixels, H×W[×C] uint8, and its name for people."""

    pixels: np.ndarray
    name: str


@dataclass(frozen=True)
class ProbeSequence:
    """Probe a sequence model with the user's own sequence: ``text`` typed for a character model, or the CSV file
    at ``path`` (one row per time step, one column per input feature); exactly one of them."""

    text: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class ConfigureProbe:
    """New settings for the probe named ``probe``: an instance of its ``Settings`` dataclass (the feature maps'
    layers, the attribution's methods, ...); its next frame follows them. The one command every probe's
    controls use: a probe with settings needs no command or worker field of its own."""

    probe: str
    settings: Any


@dataclass(frozen=True)
class TransformProbe:
    """Shift (pixels of the model's input), rotate (degrees, counter-clockwise) and scale the probe input
    before the probes see it: the invariance probe. The identity by default."""

    shift_x: float = 0.0
    shift_y: float = 0.0
    angle: float = 0.0
    scale: float = 1.0


@dataclass(frozen=True)
class Maximize:
    """Start a long job: the picture that most excites ``objective``; progress arrives as ``DreamFrame``s.
    A job already running is cancelled first."""

    objective: MaximizeTarget
    settings: MaximizeSettings = MaximizeSettings()


@dataclass(frozen=True)
class Dream:
    """Start a long job: DeepDream on the probe input (noise when there is none) for ``layer`` (one ``channel``
    of it, or the whole layer when None)."""

    layer: str
    channel: int | None = None
    settings: DreamSettings = DreamSettings()


@dataclass(frozen=True)
class CancelJob:
    """Stop the long job in progress (maximize, dream); its last picture stays, marked cancelled."""


@dataclass(frozen=True)
class Save:
    """Write the run folder (spec, weights, metrics) to ``run_dir``; a run already there is replaced only with
    ``force`` (a folder holding anything else, never)."""

    run_dir: Path
    force: bool = False


@dataclass(frozen=True)
class Checkpoint:
    """Write a checkpoint of the run in progress into its run-store folder now (``engine.io.store``)."""


@dataclass(frozen=True)
class SetCheckpointInterval:
    """Keep a checkpoint every ``steps`` steps of a recorded run, from now on (0: at each epoch's end and when
    asked for; a run always keeps one at its end)."""

    steps: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.steps, int) and self.steps >= 0):
            raise LumenError(f"the checkpoint interval must be a whole number of steps ≥ 0, got {self.steps}")


@dataclass(frozen=True)
class ListCheckpoints:
    """Send the ``CheckpointList`` of run ``run``: a run-store id or a run folder (None: the worker's own run)."""

    run: str | Path | None = None


@dataclass(frozen=True)
class ReplayCheckpoint:
    """Show the viewer's probes (those marked ``replayable``) with the weights of checkpoint ``step`` of run
    ``run`` (a run-store id or a run folder; None: the worker's own run), on the current probe input, in a model
    of its own: the live model and its run go on untouched. The frames carry ``checkpoint_step``; when several
    replays wait, only the newest is made."""

    step: int
    run: str | Path | None = None


@dataclass(frozen=True)
class WatchFrames:
    """Only these frame types are on screen: probes that make others are skipped (not computed) until they are
    watched again, and then made at once. None: every probe runs (the default; the CLI and tests)."""

    frame_types: frozenset[type[Frame]] | None = None


@dataclass(frozen=True)
class Quit:
    """End the worker's thread (after stopping any run); nothing after it is handled."""


Command = (
    LoadModel
    | OpenRun
    | Train
    | Pause
    | Resume
    | Step
    | Stop
    | ProbeSample
    | ProbeImage
    | ProbeSequence
    | ConfigureProbe
    | TransformProbe
    | Maximize
    | Dream
    | CancelJob
    | SetLearningRate
    | Save
    | Checkpoint
    | SetCheckpointInterval
    | ListCheckpoints
    | WatchFrames
    | ReplayCheckpoint
    | Quit
)
ProbeChoice = ProbeSample | ProbeImage | ProbeSequence  # what the user chose to feed the probes
