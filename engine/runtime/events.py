"""The typed events the engine emits. Plain frozen dataclasses holding numbers and numpy arrays.

Light events (progress, epoch summaries, status) are emitted as they happen; heavy ones (feature-map
frames) are built at most every ``TrainConfig.frame_interval_s`` seconds, so a slow consumer never faces
a flood. Consumers keep every light event and only the newest heavy one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class State(str, Enum):
    IDLE = "idle"          # a model is loaded; not training
    TRAINING = "training"
    PAUSED = "paused"
    FINISHED = "finished"  # the last run ended (completed or stopped); the model keeps its weights


@dataclass(frozen=True)
class StepMetrics:
    step: int            # 1-based, across epochs
    total_steps: int
    epoch: int           # 1-based
    loss: float          # this batch's mean loss
    accuracy: float      # this batch's accuracy
    samples_per_s: float


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    step: int
    train_loss: float  # mean over the epoch's batches
    train_accuracy: float
    val_loss: float
    val_accuracy: float


@dataclass(frozen=True)
class LayerMaps:
    """One layer's feature maps tiled into one image (so the GUI draws one item, not one per channel)."""
    node: str
    shape: tuple[int, int, int]  # channels, height, width of the real activation
    grid: tuple[int, int]        # rows, columns of the mosaic
    mosaic: np.ndarray           # float32, row-major; gaps between tiles are NaN
    levels: tuple[float, float]  # min and max of the activation, for the colour scale


@dataclass(frozen=True)
class FeatureMapFrame:
    step: int
    source: str                              # what was fed in, e.g. "validation digit #17" or a file name
    image: np.ndarray                        # the model's input as H×W float32 in [0, 1]
    layers: tuple[LayerMaps, ...]
    predictions: tuple[tuple[str, float], ...]  # top classes with probabilities, best first
    label: str | None = None                 # the true class, when known


@dataclass(frozen=True)
class StatusChanged:
    state: State
    message: str


@dataclass(frozen=True)
class EngineError:
    """Something went wrong; the engine stays usable (e.g. a NaN loss pauses training)."""
    message: str


Event = StepMetrics | EpochMetrics | FeatureMapFrame | StatusChanged | EngineError
