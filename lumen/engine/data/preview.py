"""What a dataset looks like before training: a grid of images, or a few sequences as curves or token rows.

``Dataset.preview()`` gives the raw picture (an image grid, or count×T×F inputs); ``dataset_preview`` wraps it
with what a viewer needs to draw it as a ``DatasetPreview`` frame, which the worker emits when it loads data (on
its own thread) and the monitor shows beside its *Data* choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lumen.engine.events import Frame

if TYPE_CHECKING:
    from lumen.engine.data.datasets import Dataset

IMAGES, CURVES, TOKENS = "images", "curves", "tokens"


def image_grid(images: np.ndarray, columns: int = 4) -> np.ndarray:
    """N×C×H×W in [0, 1] → one (rows·H)×(columns·W)[×3] picture with a 1-pixel gap."""
    n, c, h, w = images.shape
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    grid = np.zeros((rows * (h + 1) - 1, columns * (w + 1) - 1, c), dtype=np.float32)
    for i in range(n):
        r, k = divmod(i, columns)
        grid[r * (h + 1) : r * (h + 1) + h, k * (w + 1) : k * (w + 1) + w] = images[i].transpose(1, 2, 0)
    return grid[..., 0] if c == 1 else grid


def preview(data: Dataset, count: int = 8) -> np.ndarray:
    x = data.val_x[:count].detach().cpu().numpy().astype(np.float32)
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return image_grid(np.clip(x, 0, 1))
    return x


@dataclass(frozen=True)
class DatasetPreview(Frame):
    """A few validation samples of the loaded data, ready to draw. ``kind``: ``images`` (``array`` is one grid,
    H×W or H×W×3 in [0, 1]), ``curves`` (``array``: count×T×F real-valued sequences) or ``tokens`` (one-hot
    sequences; ``rows`` holds each as text, ``array`` the inputs). ``labels``: each sample's target as text."""

    name: str
    description: str
    kind: str
    array: np.ndarray
    rows: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()


def is_one_hot(x: np.ndarray) -> bool:
    return x.ndim == 3 and bool(np.isin(x, (0.0, 1.0)).all()) and bool((x.max(axis=2) == 1).all())


def token_names(data: Dataset, features: int) -> tuple[str, ...]:
    if len(data.input_tokens) == features:
        return data.input_tokens
    if len(data.classes) == features:
        return data.classes
    return tuple(str(i) for i in range(features))


def token_text(names: tuple[str, ...], ids: np.ndarray, limit: int = 40) -> str:
    joined = "".join(names[i] if len(names[i]) == 1 else f" {names[i]} " for i in ids[:limit])
    return joined.replace("\n", "⏎") + ("…" if len(ids) > limit else "")


def _labels(data: Dataset, count: int) -> tuple[str, ...]:
    y = data.val_y[:count].detach().cpu().numpy()
    if not data.classes or not np.issubdtype(y.dtype, np.integer):
        return ()
    if y.ndim == 1:
        return tuple(data.classes[int(v)] for v in y)
    return tuple(token_text(data.classes, row.reshape(-1)) for row in y)


def dataset_preview(data: Dataset, count: int = 8) -> DatasetPreview:
    """``count`` validation samples of ``data`` as a frame to draw before training."""
    array = preview(data, count)
    labels = _labels(data, count)
    if array.ndim in (2, 3) and not data.is_sequence:
        return DatasetPreview(0, data.name, data.description, IMAGES, array, labels=labels)
    if is_one_hot(array):
        names = token_names(data, array.shape[2])
        rows = tuple(token_text(names, sample.argmax(axis=1)) for sample in array)
        return DatasetPreview(0, data.name, data.description, TOKENS, array, rows, labels)
    if array.ndim == 2:  # one vector per sample (a one-to-many model's input): each as a one-step sequence
        array = array[:, None, :]
    array = array.reshape(len(array), -1, array.shape[-1])
    return DatasetPreview(0, data.name, data.description, CURVES, array, (), labels)
