"""Decoding a user's image file without Qt (the CLI), with Pillow, as carefully as the GUI's reader does.

``read_image(path)`` reads a regular file of at most ``MAX_FILE_BYTES`` (never blocking on a FIFO or
device, through ``engine.untrusted.read_bytes``), checks the header before decoding: a known picture
format (PNG, JPEG, BMP, GIF, TIFF, WebP), fewer than ``MAX_PIXELS`` pixels (decompression bombs are files
whose header promises more), then decodes it whole (a truncated file is refused, not padded). 16-bit and
palette images, alpha channels and CMYK come back as 8-bit grey, RGB or RGBA pixels, H×W or H×W×C uint8,
which ``engine.data.images.image_input`` prepares for a model. Every refusal is one ``DataError``.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import numpy as np

from lumen.engine.errors import DataError
from lumen.engine.untrusted import read_bytes, shown

# Pillow logs why it cannot decode some files (a TIFF with 10 samples per pixel) before it raises; without a
# handler, logging prints that to stderr beside Lumen's own one-line refusal.
logging.getLogger("PIL").setLevel(logging.CRITICAL)  # it says so at ERROR level

MAX_PIXELS = 100_000_000  # 100 megapixels and more are refused, here and by the window (gui/image_io.py)
MAX_FILE_BYTES = 256 * 2**20
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")


def read_image(path: str | Path) -> np.ndarray:
    """The decoded pixels of an image file: H×W (grey), H×W×3 (RGB) or H×W×4 (RGBA), uint8."""
    from PIL import Image, UnidentifiedImageError

    name = shown(path)
    data = read_bytes(path, MAX_FILE_BYTES, "picture")
    if not data:
        raise DataError(f"{name} is empty, not an image")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
        try:
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = image.size
            if width * height >= MAX_PIXELS:
                raise DataError(
                    f"{name} is {width:,}×{height:,} pixels ({width * height / 1e6:.0f} megapixels); "
                    f"images of {MAX_PIXELS // 1_000_000} megapixels and more are refused"
                )
            image.load()
            pixels = _eight_bit(image)
        except DataError:
            raise
        except UnidentifiedImageError:
            raise DataError(f"{name} is not an image Lumen can read (PNG, JPEG, BMP, GIF, TIFF or WebP)") from None
        except Image.DecompressionBombError:  # Pillow's own limit, above ours
            raise DataError(
                f"{name} claims far more pixels than {MAX_PIXELS // 1_000_000} megapixels (a decompression bomb?); "
                f"refused"
            ) from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:  # Pillow's ways of saying "broken file"
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise DataError(f"{name} is damaged or truncated: {first}") from None
    return pixels


def _eight_bit(image: object) -> np.ndarray:
    """Any Pillow mode as uint8 L, RGB or RGBA pixels (16-bit scaled down, palettes expanded)."""
    from PIL import Image

    assert isinstance(image, Image.Image)
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        high = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        return np.clip(values / high * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("1", "L"):
        image = image.convert("L")
    elif mode in ("LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
    elif mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
