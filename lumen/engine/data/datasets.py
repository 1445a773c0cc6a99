"""Datasets: the ``Dataset`` record every loader returns, and the registry of built-in ones by name.

Importing this module imports neither torch nor numpy (``python main.py datasets`` lists the names without
them): each registry entry names its loader's module and function, imported when the data is loaded. Every
dataset is offline: read from ``resources/`` or generated deterministically from a seed. A path instead of a
name reads a user's data (``engine.data.files``): an image folder (one sub-folder per class), an MNIST-format
IDX file, or a CSV time series.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lumen.engine.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import torch

SPLIT_SEED = 0  # the train/validation split is fixed, whatever the training seed

# What the targets are, and so which objective fits (engine.training.objectives.OBJECTIVE_FOR_TASK).
CLASSIFICATION = "classification"  # y: N class indices; x: images or sequences (many-to-one)
PER_STEP = "per_step"  # y: N×T class indices, one per step (tagging, many-to-many)
REGRESSION = "regression"  # y: N×... floats (forecasting: N×T×F, or N×F)
RECONSTRUCTION = "reconstruction"  # y is x itself (autoencoders, Boltzmann machines)
SEQ2SEQ = "seq2seq"  # x: N×T×V one-hot source, y: N×T′ target token indices (encoder–decoder)
TASKS = (CLASSIFICATION, PER_STEP, REGRESSION, RECONSTRUCTION, SEQ2SEQ)


@dataclass(frozen=True)
class Dataset:
    """Inputs and targets as tensors, with a fixed train/validation split.

    ``train_x``/``val_x``: float32, N×C×H×W images or N×T×F sequences (one-hot tokens are float features).
    ``train_y``/``val_y``: what ``task`` says. ``classes``: class names, or the vocabulary (token i's text) for
    per-step and sequence-to-sequence data; empty for regression. ``masks``: per-sample object masks, N×H×W,
    when the data has them (``shapes``), aligned with ``val_x``.
    """

    name: str
    classes: tuple[str, ...]
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    task: str = CLASSIFICATION
    description: str = ""
    val_masks: torch.Tensor | None = None
    options: dict[str, Any] = field(default_factory=dict)  # how it was made (steps, seed, ...), for run.json
    # One-hot sequences whose features are not ``classes``: each feature's text, for previews (recall's letters
    # and its flag and query marks; brackets' "(" and ")"). Empty: the features are the classes, or not tokens.
    input_tokens: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    @property
    def target_shape(self) -> tuple[int, ...]:
        return tuple(self.train_y.shape[1:])

    @property
    def is_sequence(self) -> bool:
        return len(self.input_shape) == 2

    def preview(self, count: int = 8) -> np.ndarray:
        """A picture of the data before training: a grid of ``count`` validation images (H×W or H×W×3, float32
        in [0, 1]), or for sequences ``count`` of them as a count×T×F array of inputs to plot."""
        from lumen.engine.data.preview import preview

        return preview(self, count)


def split(images: np.ndarray, labels: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation parts: a seeded shuffle, so every class is in both."""
    import numpy as np

    order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    n_val = int(round(len(images) * val_fraction))
    return order[n_val:], order[:n_val]


def load_mnist(val_fraction: float = 0.1, binarise: bool = False) -> Dataset:
    """The 5,000 MNIST digits shipped in resources/ (see resources/ATTRIBUTION.md); ``binarise``: each pixel 1 where
    its intensity is at least a half, else 0 (binary data for Bernoulli RBMs, whose likelihood is of binary v)."""
    import numpy as np
    import torch

    from lumen.engine.resources import resource_path

    path = resource_path("mnist_5k.npz")
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"]
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"the bundled MNIST sample at {path} cannot be read: {exc}") from None
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    if binarise:
        x = (x >= 0.5).float()
    y = torch.from_numpy(labels.astype(np.int64))
    train, val = split(images, labels, val_fraction)
    return Dataset(
        "mnist",
        tuple(str(d) for d in range(10)),
        x[train],
        y[train],
        x[val],
        y[val],
        description="5,000 handwritten digits, 1×28×28" + (", binarised at ½" if binarise else ""),
        options={"binarise": True} if binarise else {},
    )


@dataclass(frozen=True)
class DatasetEntry:
    """A built-in dataset: its name, one line for people, and where its loader lives (``module:function``,
    imported only when the data is loaded). The loader takes keyword options (``steps``, ``seed``, ...)."""

    name: str
    summary: str
    loader: str

    def load(self, **options: Any) -> Dataset:
        module, _, function = self.loader.partition(":")
        make: Callable[..., Dataset] = getattr(importlib.import_module(module), function)
        try:
            return make(**options)
        except TypeError as exc:
            raise DataError(f"{self.name}: {exc}") from None


DATASETS: dict[str, DatasetEntry] = {
    entry.name: entry
    for entry in [
        DatasetEntry(
            "mnist", "5,000 handwritten digits, 1×28×28, 10 classes (bundled)", "lumen.engine.data.datasets:load_mnist"
        ),
        DatasetEntry(
            "shapes",
            "synthetic RGB shapes (circle, square, triangle, ...) with their object masks",
            "lumen.engine.data.shapes:make_shapes",
        ),
        DatasetEntry(
            "sine",
            "mixed sine waves: forecast the next value at every step (many-to-many)",
            "lumen.engine.data.sequences:sine",
        ),
        DatasetEntry(
            "adding",
            "the adding problem: sum the two marked numbers of a sequence (regression)",
            "lumen.engine.data.sequences:adding",
        ),
        DatasetEntry(
            "recall",
            "recall the token shown first, after N distractors (many-to-one)",
            "lumen.engine.data.sequences:recall",
        ),
        DatasetEntry("copy", "copy a token sequence (encoder–decoder)", "lumen.engine.data.sequences:copy"),
        DatasetEntry("reverse", "reverse a token sequence (encoder–decoder)", "lumen.engine.data.sequences:reverse"),
        DatasetEntry(
            "brackets",
            "nesting depth of a bracket string at every step (per-step classes)",
            "lumen.engine.data.sequences:brackets",
        ),
        DatasetEntry(
            "text",
            "next character of a bundled public-domain text (character level)",
            "lumen.engine.data.sequences:text",
        ),
    ]
}


def is_path(name: str) -> bool:
    """Whether --data names a file or folder rather than a built-in dataset."""
    return name not in DATASETS and ("/" in name or "\\" in name or "." in name or Path(name).exists())


def load_dataset(name: str, **options: Any) -> Dataset:
    """A built-in dataset by name, or a user's image folder, IDX file or CSV file by path."""
    if name in DATASETS:
        return DATASETS[name].load(**options)
    if is_path(name):
        from lumen.engine.data.files import load_path

        return load_path(Path(name), **options)
    raise DataError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)}; or a folder, .idx or .csv file)")
