"""Turning a user's picture (already decoded to pixels) into a model input.

Decoding stays with the caller (the GUI uses Qt's image readers, which check a file's size before
decoding it); this module only does arithmetic on arrays.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import DataError


def to_gray(pixels: np.ndarray) -> np.ndarray:
    """H×W, H×W×3 or H×W×4 uint8 → H×W float32 in [0, 1]; transparency is laid over white paper."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 2:
        return pixels.astype(np.float32) / 255.0
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise DataError(f"expected a grey, RGB or RGBA image, got an array of shape {pixels.shape}")
    rgb = pixels[:, :, :3].astype(np.float32) / 255.0
    gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma
    if pixels.shape[2] == 4:
        alpha = pixels[:, :, 3].astype(np.float32) / 255.0
        gray = gray * alpha + (1.0 - alpha)
    return gray


def _resize(gray: np.ndarray, height: int, width: int) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(gray))[None, None]
    return F.interpolate(t, size=(height, width), mode="bilinear", antialias=True, align_corners=False)[0, 0].numpy()


def digit_input(pixels: np.ndarray, size: int = 28) -> torch.Tensor:
    """A picture of one digit prepared as MNIST's were: light ink on black, the ink's bounding box scaled
    to fit 20×20 and centred by its centre of mass in a 28×28 frame. Returns 1×1×size×size."""
    gray = to_gray(pixels)
    if gray.mean() > 0.5:  # dark ink on light paper, as scans and drawings are
        gray = 1.0 - gray
    ink = gray > 0.2 * gray.max() if gray.max() > 0 else np.zeros_like(gray, bool)
    if not ink.any():
        raise DataError("the image looks blank: no ink stands out from the background")
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    crop = gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    box = round(size * 20 / 28)
    scale = box / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    digit = np.clip(_resize(crop, h, w), 0.0, 1.0)
    total = digit.sum()
    cy, cx = ((np.indices(digit.shape) * digit).reshape(2, -1).sum(1) / total) if total > 0 else (h / 2, w / 2)
    top = int(np.clip(round(size / 2 - cy), 0, size - h))
    left = int(np.clip(round(size / 2 - cx), 0, size - w))
    frame = np.zeros((size, size), np.float32)
    frame[top : top + h, left : left + w] = digit
    return torch.from_numpy(frame)[None, None]


def image_input(pixels: np.ndarray, input_shape: tuple[int, ...], digits: bool) -> torch.Tensor:
    """A model input (1×C×H×W) from decoded pixels; ``digits`` asks for MNIST-style preparation."""
    if len(input_shape) != 3:
        raise DataError(f"this model takes {input_shape} inputs, not images")
    channels, height, width = input_shape
    if digits and channels == 1 and height == width:
        return digit_input(pixels, height)
    if channels == 1:
        planes = to_gray(pixels)[None]
    else:
        rgb = pixels[:, :, :3] if pixels.ndim == 3 else np.repeat(pixels[:, :, None], 3, 2)
        planes = np.moveaxis(rgb.astype(np.float32) / 255.0, 2, 0)[:channels]
    resized = np.stack([_resize(p, height, width) for p in planes])
    return torch.from_numpy(np.clip(resized, 0.0, 1.0))[None]


def affine(
    x: torch.Tensor, *, shift_x: float = 0.0, shift_y: float = 0.0, angle: float = 0.0, scale: float = 1.0
) -> torch.Tensor:
    """A model input (N×C×H×W) moved by ``shift_x``/``shift_y`` pixels (right, down), rotated by ``angle``
    degrees counter-clockwise as seen and scaled by ``scale`` about its centre; what comes in from outside
    is 0 (an MNIST digit's black background). The identity returns ``x`` itself."""
    if shift_x == 0 and shift_y == 0 and angle == 0 and scale == 1:
        return x
    if not (scale > 0 and np.isfinite(scale) and np.isfinite(angle) and np.isfinite(shift_x) and np.isfinite(shift_y)):
        raise DataError(f"the transform must be finite with a positive scale, got scale {scale}, angle {angle}")
    h, w = x.shape[-2:]
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    inverse = np.array([[c, -s], [s, c]]) / scale  # output pixel offset → input pixel offset (y down)
    to_unit = np.diag([2.0 / w, 2.0 / h])  # pixels → affine_grid's [-1, 1] coordinates
    a = to_unit @ inverse @ np.linalg.inv(to_unit)
    t = -a @ (to_unit @ np.array([shift_x, shift_y]))
    theta = torch.tensor(np.concatenate([a, t[:, None]], 1), dtype=x.dtype)[None].expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
