"""What a dataset looks like before training: a grid of images, or a few sequences as arrays to plot."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.data.datasets import Dataset


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
