"""Bundled datasets, split and served as tensors. Everything here is read from ``resources/``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.errors import DataError
from engine.resources import resource_path

SPLIT_SEED = 0  # the train/validation split is fixed, whatever the training seed


@dataclass(frozen=True)
class Dataset:
    """Images as float32 in [0, 1], N×C×H×W, with integer labels; a fixed train/validation split."""

    name: str
    classes: tuple[str, ...]
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])


def split(images: np.ndarray, labels: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation parts: a seeded shuffle, so every class is in both."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    n_val = int(round(len(images) * val_fraction))
    return order[n_val:], order[:n_val]


def load_mnist(val_fraction: float = 0.1) -> Dataset:
    """The 5,000 MNIST digits shipped in resources/ (see resources/ATTRIBUTION.md)."""
    path = resource_path("mnist_5k.npz")
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"]
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"the bundled MNIST sample at {path} cannot be read: {exc}") from None
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    train, val = split(images, labels, val_fraction)
    return Dataset("mnist", tuple(str(d) for d in range(10)), x[train], y[train], x[val], y[val])


DATASETS = {"mnist": load_mnist}


def load_dataset(name: str) -> Dataset:
    try:
        loader = DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})") from None
    return loader()
