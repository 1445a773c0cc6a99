"""An attribution map laid over its input as an RGB picture, with numpy only (the CLI writes it as a PNG).

The picture is two panels side by side, scaled up by a whole factor (nearest neighbour, so pixels stay
pixels): the input as the model saw it, and the input with the map on top — red for positive attribution,
blue for negative, more opaque where the attribution is stronger.
"""

from __future__ import annotations

import numpy as np

POSITIVE = np.array([0.90, 0.10, 0.05], np.float32)
NEGATIVE = np.array([0.10, 0.35, 1.00], np.float32)
MIN_SIDE = 224  # small inputs (28×28) are scaled up to at least this many pixels
GAP = 4  # pixels of white between the panels


def display_rgb(model_input: np.ndarray) -> np.ndarray:
    """A 1×C×H×W (or C×H×W) model input as H×W×3 float32 in [0, 1]: RGB as it is, others averaged to grey;
    values outside [0, 1] (a normalised input) are stretched."""
    c, h, w = model_input.shape[-3:]
    planes = model_input.reshape(c, h, w).astype(np.float32)
    rgb = np.moveaxis(planes, 0, 2) if planes.shape[0] == 3 else np.repeat(planes.mean(0)[:, :, None], 3, 2)
    low, high = float(rgb.min()), float(rgb.max())
    if low < 0 or high > 1:
        rgb = (rgb - low) / (high - low) if high > low else np.zeros_like(rgb)
    return rgb


def overlay(model_input: np.ndarray, heat: np.ndarray, opacity: float = 0.75) -> np.ndarray:
    """H×W×3 uint8: the input beside the input with ``heat`` (H×W, signed) overlaid, scaled up."""
    base = display_rgb(model_input)
    reach = float(np.abs(heat).max())
    strength = np.sqrt(np.abs(heat) / reach) if reach > 0 and np.isfinite(reach) else np.zeros_like(heat)
    colour = np.where((heat >= 0)[:, :, None], POSITIVE, NEGATIVE)
    alpha = (opacity * strength)[:, :, None]
    mixed = base * (1 - alpha) + colour * alpha
    h, w = heat.shape
    factor = max(1, -(-MIN_SIDE // max(1, min(h, w))))
    panels = [np.kron(p, np.ones((factor, factor, 1), np.float32)) for p in (base, mixed)]
    gap = np.ones((h * factor, GAP, 3), np.float32)
    picture = np.concatenate([panels[0], gap, panels[1]], 1)
    return np.ascontiguousarray(np.clip(picture * 255 + 0.5, 0, 255).astype(np.uint8))
