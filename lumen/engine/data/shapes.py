"""``shapes``: synthetic RGB pictures of one object each, made from a seed, with every object's mask kept.

Each image holds one circle, square, triangle, cross or ring at a random position, size and rotation, in a
random colour on a background of another colour, with Gaussian noise on top. The mask says which pixels
the object covers, so a saliency map can be scored against it (the pointing game in
``benchmarks/attribution.py``). Everything is computed with numpy from the seed: no files, and the same
seed gives the same pixels on every machine. 4,000 images of 32×32 take well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lumen.engine.data.datasets import Dataset, split

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "ring")
SIZE = 32
COUNT = 4000
SEED = 0
NOISE = 0.05  # standard deviation of the Gaussian noise added to every channel, in [0, 1] pixel units


@dataclass(frozen=True)
class ShapeImages:
    """N pictures as float32 N×3×H×W in [0, 1], their class indices, and N×H×W boolean object masks."""

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray


def _inside(kind: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether the object-frame point (u, v) lies in the unit shape of each image's class (batched)."""
    k = kind[:, None, None]
    circle = u**2 + v**2 <= 1.0
    square = np.maximum(np.abs(u), np.abs(v)) <= 0.8
    # An equilateral triangle with its centroid at the origin and circumradius 1: three half-planes.
    edges = [v * np.cos(a) + u * np.sin(a) <= 0.5 for a in (0.0, 2 * np.pi / 3, 4 * np.pi / 3)]
    triangle = edges[0] & edges[1] & edges[2]
    cross = ((np.abs(u) <= 0.3) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 1.0))
    ring = (u**2 + v**2 <= 1.0) & (u**2 + v**2 >= 0.45**2)
    return np.select([k == 0, k == 1, k == 2, k == 3, k == 4], [circle, square, triangle, cross, ring], False)


def shape_images(count: int = COUNT, size: int = SIZE, seed: int = SEED, noise: float = NOISE) -> ShapeImages:
    """``count`` pictures of ``size``×``size``, the same for the same arguments."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(SHAPE_CLASSES), count)
    radius = rng.uniform(0.18, 0.32, count) * size  # the unit shape scaled to this many pixels
    margin = radius * 0.9
    cy = rng.uniform(margin, size - margin)
    cx = rng.uniform(margin, size - margin)
    angle = rng.uniform(0, 2 * np.pi, count)
    background = rng.uniform(0.0, 0.45, (count, 3))
    colour = rng.uniform(0.55, 1.0, (count, 3))
    swap = rng.random(count) < 0.5  # half the objects are dark on a light background
    background[swap], colour[swap] = 1.0 - background[swap], 1.0 - colour[swap]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    dy = (yy[None] - cy[:, None, None]) / radius[:, None, None]
    dx = (xx[None] - cx[:, None, None]) / radius[:, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy  # the pixel in the object's own frame
    masks = _inside(labels, u, v)
    images = np.where(masks[:, None], colour[:, :, None, None], background[:, :, None, None])
    images = images + rng.normal(0.0, noise, images.shape)
    return ShapeImages(np.clip(images, 0.0, 1.0).astype(np.float32), labels.astype(np.int64), masks)


def make_shapes(
    count: int = COUNT, size: int = SIZE, seed: int = SEED, noise: float = NOISE, val_fraction: float = 0.1
) -> Dataset:
    """The ``shapes`` dataset: ``shape_images`` split into training and validation parts (fixed split), with
    the validation images' object masks (``val_masks``)."""
    made = shape_images(count, size, seed, noise)
    train, val = split(made.images, made.labels, val_fraction)
    x, y = torch.from_numpy(made.images), torch.from_numpy(made.labels)
    return Dataset(
        "shapes",
        SHAPE_CLASSES,
        x[train],
        y[train],
        x[val],
        y[val],
        description=f"{count:,} synthetic RGB shapes, 3×{size}×{size}, {len(SHAPE_CLASSES)} classes, with masks",
        val_masks=torch.from_numpy(made.masks[val]),
        options={"count": count, "size": size, "seed": seed, "noise": noise},
    )


load_shapes = make_shapes  # the name engine.data.datasets registers
