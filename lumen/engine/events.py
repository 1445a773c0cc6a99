"""The typed events the engine emits. Plain frozen dataclasses holding numbers and numpy arrays.

Light events (step and epoch metrics, status, errors) are emitted as they happen and consumers keep every
one. Heavy ones are ``Frame``s, made by probes (``engine.probes``) at most as often as each probe's interval
and cost budget allow; consumers keep only the newest frame of each type (latest-wins), so a slow consumer
never faces a flood.

Metrics are named values: a step carries ``{"loss": ..., "accuracy": ...}`` today, an autoencoder's step
could carry ``{"loss": ..., "reconstruction": ..., "kl": ...}``; the same name in a step and in an epoch's
phases is the same quantity. Files, the CLI and the monitor take their columns, lines and curves from the
names, so a new objective needs no new event class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RunState(StrEnum):
    IDLE = "idle"  # a model is loaded; not training
    TRAINING = "training"
    PAUSED = "paused"
    FINISHED = "finished"  # the last run ended (completed or stopped); the model keeps its weights


@dataclass(frozen=True)
class StepMetrics:
    step: int  # 1-based, across epochs
    total_steps: int
    epoch: int  # 1-based
    values: Mapping[str, float]  # this batch's measures by name, e.g. {"loss": 0.31, "accuracy": 0.92}
    samples_per_s: float  # throughput, a property of the run rather than of the model


@dataclass(frozen=True)
class StepFailed:
    """Step ``step`` could not be trained: its loss was not finite, or memory ran out. The weights are still those
    of the step before it, so the batch can be tried again. Sent instead of raising when the run can be paused
    (``Training.pause_on_failure``); ``reason`` says what happened, ``advice`` what the user can do."""

    step: int
    epoch: int
    reason: str  # "the loss became nan", "out of memory (batch size 512)"
    advice: str


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    step: int
    train: Mapping[str, float]  # means over the epoch's batches, by name (the step's names)
    val: Mapping[str, float]  # the same names measured on the validation set

    def flat(self) -> dict[str, float]:
        """One mapping with the phase as a prefix: ``train_loss``, ``val_accuracy``, ..."""
        return {
            f"{phase}_{name}": value
            for phase, values in (("train", self.train), ("val", self.val))
            for name, value in values.items()
        }


@dataclass(frozen=True)
class Frame:
    """A heavy payload made by a probe (feature maps today). Each probe has its own Frame subclass, defined
    beside it; consumers keep only the newest frame of each type and draw it with the view registered for
    that type."""

    step: int  # the training step of the weights the frame shows (0 before training)
    # Set on a frame made from a run's checkpoint (``ReplayCheckpoint``) rather than the live model: that
    # checkpoint's step. Keyword-only, so every frame type has it without reordering its own fields.
    checkpoint_step: int | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class ModelInfo:
    """What kind of model is loaded, for everything that must not assume an image classifier: which probes and
    views apply (``Probe.applies``), what the monitor titles its loss plot, what the probe input is called."""

    name: str  # the spec's name
    family: str  # "cnn", "recurrent", "autoencoder", "boltzmann" or "dense" (engine.training.info.family_of)
    input_shape: tuple[int, ...]  # one sample's shape
    layer_types: frozenset[str]  # the spec's layer types ("conv2d", "lstm", "rbm", ...)
    data: str  # the dataset's name
    task: str  # the dataset's task (engine.data.datasets.TASKS)
    objective: str | None  # what a run minimises (engine.training.objectives); None: it cannot train on the data
    loss_name: str  # what its loss is, for titles: "cross-entropy", "ELBO: reconstruction + KL", ...
    classes: tuple[str, ...] = ()  # class names, or a sequence task's vocabulary
    layers: tuple[tuple[str, str], ...] = ()  # every node but the input, in the order the model runs them: (id, type)
    layer_shapes: tuple[tuple[int, ...], ...] = ()  # each of ``layers``' output shape for one sample, in that order
    characters: tuple[str, ...] = ()  # a character model's one-hot inputs, in order: what text can be typed in

    @property
    def input_kind(self) -> str:
        """``image`` (C×H×W), ``sequence`` (T×F) or ``vector``."""
        return {3: "image", 2: "sequence"}.get(len(self.input_shape), "vector")

    @property
    def classifier(self) -> bool:
        """Its output is one score per class of a picture (what attribution and class maximization explain)."""
        return self.input_kind == "image" and self.objective == "classification"

    @property
    def sample_noun(self) -> str:
        """What one probe input is called: a digit, a picture, a sequence, a sample."""
        if self.input_kind == "image":
            return "digit" if self.data == "mnist" else "picture"
        return "sequence" if self.input_kind == "sequence" else "sample"


@dataclass(frozen=True)
class ModelLoaded:
    """A model was loaded (light): what it is, and the frame types of the probes that apply to it, so a viewer
    shows only views that can say something about this model and clears everything of the last one."""

    info: ModelInfo
    frame_types: frozenset[type[Frame]]


@dataclass(frozen=True)
class StatusChanged:
    state: RunState
    message: str
    # Why the engine paused the run by itself (a non-finite loss, memory running out), for the window to show
    # until the run trains again; empty when the user paused it, or for any other state.
    cause: str = ""


@dataclass(frozen=True)
class CheckpointList:
    """The checkpoints a recorded run has (light): sent when the worker's own run writes one (``live``), and in
    answer to ``ListCheckpoints`` and ``ReplayCheckpoint``."""

    run: str  # the run-store id (or, for a run given by its folder, the folder's name)
    steps: tuple[int, ...]  # the checkpoints' steps, oldest first
    live: bool = False  # the worker's own run (the one training, or the last one trained)


@dataclass(frozen=True)
class EngineError:
    """Something went wrong; the engine stays usable (e.g. a NaN loss pauses training)."""

    message: str


@dataclass(frozen=True)
class RunOpened:
    """A saved run was opened (``OpenRun``): its model, weights and class names are loaded, its metrics follow as
    ``StepMetrics``/``EpochMetrics``, its checkpoints as a ``CheckpointList`` named ``run``."""

    run: str  # what replay commands call it: a run-store id, or the folder's path when the store has no checkpoints
    folder: str  # the folder opened (a run folder, or the run store's folder of a run picked in the runs list)
    spec: Any  # the run's ModelSpec (events sit below engine.spec, so it is not named here)
    read_only: bool  # the folder cannot be written (a read-only disk): saving goes elsewhere
    classes: int  # how many output names the run carries (0: none; the data's are shown)
    config: Mapping[str, Any] = field(default_factory=dict)  # the settings it was trained with (run.json's config)


Metrics = StepMetrics | EpochMetrics
Event = StepMetrics | EpochMetrics | Frame | StatusChanged | CheckpointList | EngineError | ModelLoaded | RunOpened
