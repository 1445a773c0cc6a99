"""Turning a user's picture (already decoded to pixels) into a model input.

Decoding stays with the caller (the GUI uses Qt's image readers, which check a file's size before
decoding it); this module only does arithmetic on arrays.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lumen.engine.errors import DataError
from lumen.engine.spec.preprocess import Preprocess


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


FLAT = 0.02  # a picture whose lightest and darkest pixels differ by less (5 grey levels) is one colour


def digit_input(pixels: np.ndarray, size: int = 28) -> torch.Tensor:
    """A picture of one digit prepared as MNIST's were: light ink on black, the ink's bounding box scaled
    to fit 20×20 and centred by its centre of mass in a 28×28 frame. Returns 1×1×size×size."""
    gray = to_gray(pixels)
    if gray.size == 0 or float(gray.max() - gray.min()) < FLAT:  # one colour all over, whatever its size (1×1)
        raise DataError("the image looks blank: no ink stands out from the background")
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


def image_input(
    pixels: np.ndarray, input_shape: tuple[int, ...], digits: bool, preprocess: Preprocess | None = None
) -> torch.Tensor:
    """A model input (1×C×H×W) from decoded pixels; ``digits`` asks for MNIST-style preparation; a spec's
    ``preprocess`` (grey or RGB, resize and centre crop, mean and std) replaces the default preparation."""
    if len(input_shape) != 3:
        raise DataError(f"this model takes {input_shape} inputs, not images")
    if preprocess is not None:
        return prepared_input(pixels, input_shape, preprocess)
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


def _planes(pixels: np.ndarray, channels: int, gray: bool) -> np.ndarray:
    """C×H×W float32 in [0, 1]: grey (repeated to ``channels``) or RGB (its grey average for one channel)."""
    if gray or channels == 1:
        return np.repeat(to_gray(pixels)[None], channels, 0)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, 2)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise DataError(f"expected a grey, RGB or RGBA image, got an array of shape {pixels.shape}")
    rgb = pixels[:, :, :3].astype(np.float32) / 255.0
    if pixels.shape[2] == 4:  # transparency over white paper, as to_gray does
        alpha = pixels[:, :, 3:].astype(np.float32) / 255.0
        rgb = rgb * alpha + (1.0 - alpha)
    planes = np.moveaxis(rgb, 2, 0)
    return planes[:channels] if channels <= 3 else np.concatenate([planes, planes[: channels - 3]])


def prepared_input(pixels: np.ndarray, input_shape: tuple[int, ...], preprocess: Preprocess) -> torch.Tensor:
    """1×C×H×W as ``preprocess`` says: grey or RGB; the shorter side scaled to ``resize`` (scaled in proportion
    when the model's input is not ``size``) and the centre cut out, or the whole picture stretched to the input
    without ``resize``; then ``(x − mean) / std`` per channel."""
    channels, height, width = input_shape
    if preprocess.mode == "digit":
        x = digit_input(pixels, height) if height == width else image_input(pixels, input_shape, False)
        return x if channels == 1 else x.repeat(1, channels, 1, 1)
    planes = torch.from_numpy(np.ascontiguousarray(_planes(pixels, channels, preprocess.mode == "gray")))[None]
    if preprocess.resize is not None:
        crop_h = preprocess.size[0] if preprocess.size is not None else height
        shorter = max(1, round(preprocess.resize * height / crop_h))  # 256 for a 224 crop, 73 for a 64 input
        h, w = planes.shape[-2:]
        scale = shorter / min(h, w)
        new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
        planes = F.interpolate(planes, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
        top, left = (new_h - height) // 2, (new_w - width) // 2
        planes = planes[:, :, top : top + height, left : left + width]
    else:
        planes = F.interpolate(planes, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    x = planes.clamp(0.0, 1.0)
    if preprocess.mean is not None and preprocess.std is not None:
        mean, std = _per_channel(preprocess.mean, channels), _per_channel(preprocess.std, channels)
        x = (x - mean) / std
    return x.contiguous()


def _per_channel(values: tuple[float, ...], channels: int) -> torch.Tensor:
    picked = [values[i % len(values)] for i in range(channels)] if len(values) != channels else list(values)
    if len(values) not in (1, channels):  # ImageNet's three for a one-channel model: their average
        picked = [sum(values) / len(values)] * channels
    return torch.tensor(picked, dtype=torch.float32)[None, :, None, None]


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


# The way back, a model input shown as a picture. It lives here, beside the way in, because both the live
# attribution probe (engine/probes) and the maximization/DeepDream jobs and the CLI's dream (engine/explain) show
# inputs, and engine/data sits below both, so neither imports across or up to reach it.
def display_image(x: torch.Tensor) -> np.ndarray:
    """One 1×C×H×W input as a float32 picture in [0, 1]: H×W×3 for 3 channels, else H×W (channels averaged).

    Values already in [0, 1] (Lumen's data, maximized and dreamt pictures) are shown as they are; a normalised
    input (mean/std preprocessing, e.g. ImageNet's) reaches outside, and is stretched to [0, 1] as a whole rather
    than clamped, which would saturate most of it and hide the picture."""
    planes = x[0].detach().float()
    image = planes.permute(1, 2, 0) if planes.shape[0] == 3 else planes.mean(0)
    array = image.cpu().numpy()
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 1:
        array = (array - low) / (high - low) if high > low else np.zeros_like(array)
    return np.ascontiguousarray(array, dtype=np.float32)
