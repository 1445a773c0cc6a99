"""A user's data from a path: an image folder (one sub-folder per class), an MNIST-format IDX file, or a CSV time
series. Every file goes through ``engine.untrusted`` (regular files only, size limits, finite numbers)."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lumen.engine.data.datasets import CLASSIFICATION, REGRESSION, Dataset, split
from lumen.engine.errors import DataError
from lumen.engine.graph.budget import check_data
from lumen.engine.untrusted import MAX_VALUE, read_bytes, read_csv_numbers, shown

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
MAX_IMAGE_BYTES = 40 * 2**20
MAX_IDX_BYTES = 512 * 2**20
MAX_IMAGES = 100_000
MAX_CLASSES = 10_000  # labels 0 … 9,999 (ImageNet has 1,000); a label of 2³¹ − 1 is a damaged file, not 2³¹ classes
IDX_TYPES: dict[int, Any] = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
VAL_FRACTION = 0.1


def load_path(path: Path, **options: object) -> Dataset:
    if path.is_dir():
        return image_folder(path, **options)  # type: ignore[arg-type]
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return csv_series(path, **options)  # type: ignore[arg-type]
    if suffix in (".idx", ".gz") or "idx" in path.name.lower() or "ubyte" in path.name.lower():
        return idx_file(path, **options)  # type: ignore[arg-type]
    raise DataError(f"{shown(path)}: not a folder of images, an IDX file or a .csv file")


def image_folder(path: Path, size: int = 28) -> Dataset:
    """Every picture in ``path/<class>/``, decoded (Pillow), converted to grey or RGB (whichever most are) and
    resized to size×size."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DataError("reading an image folder needs Pillow (pip install pillow)") from None
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{shown(path)}: an image folder needs one sub-folder per class, at least two")
    files = [
        (f, label)
        for label, name in enumerate(classes)
        for f in sorted((path / name).iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not files:
        raise DataError(f"{shown(path)}: no pictures ({', '.join(IMAGE_SUFFIXES)}) in its sub-folders")
    if len(files) > MAX_IMAGES:
        raise DataError(f"{shown(path)}: {len(files):,} pictures, more than {MAX_IMAGES:,}")
    import io

    pictures = []
    for f, _ in files:
        try:
            with Image.open(io.BytesIO(read_bytes(f, MAX_IMAGE_BYTES, "picture"))) as image:
                image.draft("RGB", (size * 2, size * 2))
                pictures.append(image.convert("RGB").resize((size, size)))
        except UnidentifiedImageError:  # Pillow's message names its in-memory buffer, not the file
            raise DataError(f"{shown(f)} is not an image Lumen can read ({', '.join(IMAGE_SUFFIXES)})") from None
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(f"{shown(f)}: cannot be decoded ({exc})") from None
    rgb = np.stack([np.asarray(p, dtype=np.float32) / 255.0 for p in pictures])  # N×H×W×3
    grey = np.allclose(rgb[..., 0], rgb[..., 1], atol=2 / 255) and np.allclose(rgb[..., 1], rgb[..., 2], atol=2 / 255)
    x = rgb.mean(-1, keepdims=True) if grey else rgb
    images = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    labels = np.array([label for _, label in files], dtype=np.int64)
    return _classification(path.name, tuple(classes), images, labels, f"image folder {shown(path)}")


def _classification(name: str, classes: tuple[str, ...], x: np.ndarray, y: np.ndarray, description: str) -> Dataset:
    train, val = split(x, y, VAL_FRACTION)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    return Dataset(name, classes, tx[train], ty[train], tx[val], ty[val], CLASSIFICATION, description)


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (LeCun's MNIST format): magic 0, 0, type, dimensions; big-endian sizes; gzip allowed."""
    data = read_bytes(path, MAX_IDX_BYTES, "IDX file")
    if data[:2] == b"\x1f\x8b":
        import gzip

        try:
            with gzip.GzipFile(fileobj=__import__("io").BytesIO(data)) as f:
                data = f.read(MAX_IDX_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise DataError(f"{shown(path.name)}: not a readable gzip file ({exc})") from None
        if len(data) > MAX_IDX_BYTES:
            raise DataError(f"{shown(path.name)}: more than {MAX_IDX_BYTES // 2**20} MiB once unpacked")
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in IDX_TYPES or not 1 <= data[3] <= 4:
        raise DataError(f"{shown(path.name)} is not an IDX file (it must start 0, 0, a type, 1–4 dimensions)")
    dtype, ndim = np.dtype(IDX_TYPES[data[2]]), data[3]
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{shown(path.name)}: the header is cut short")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    count = math.prod(shape)  # a Python int: four sizes of 65,536 are 2⁶⁴ values, not 0
    body = data[4 + 4 * ndim :]
    if len(body) != count * dtype.itemsize:
        raise DataError(
            f"{shown(path.name)}: the header says {'×'.join(map(str, shape))} = {count:,} values, "
            f"the file holds {len(body) // dtype.itemsize:,}"
        )
    array = np.frombuffer(body, dtype=dtype).reshape(shape)
    if dtype.kind == "f" and array.size and not bool(np.all(np.abs(array) <= MAX_VALUE)):
        index = np.unravel_index(int(np.argmin(np.abs(array) <= MAX_VALUE)), shape)
        value = float(array[index])
        cause = "is not a finite number" if not math.isfinite(value) else f"is beyond ±{MAX_VALUE:.3g}, float32's range"
        raise DataError(f"{shown(path.name)}: the value at {tuple(int(i) for i in index)}, {value!r}, {cause}")
    return array


def idx_file(path: Path, labels: str | None = None) -> Dataset:
    """Images from an IDX file (N×H×W, scaled to [0, 1] when uint8) with labels from ``labels`` or a file beside
    it whose name says ``labels`` where this one says ``images`` (``train-images-idx3-ubyte`` → ``train-labels-
    idx1-ubyte``)."""
    images = read_idx(path)
    if images.ndim != 3:
        raise DataError(f"{shown(path.name)}: images must be N×H×W, got {'×'.join(map(str, images.shape))}")
    if images.size == 0:
        raise DataError(f"{shown(path.name)}: holds no images ({'×'.join(map(str, images.shape))})")
    n, h, w = images.shape
    # float32 pixels, then the training and validation sets taken from them: twice over
    check_data(2 * images.size * 4, f"{shown(path.name)}: {n:,} images of {h}×{w} as float32")
    label_path = (
        Path(labels) if labels else path.with_name(path.name.replace("images", "labels").replace("idx3", "idx1"))
    )
    if label_path == path or not label_path.exists():
        raise DataError(f"{shown(path.name)}: no labels file beside it (looked for {shown(label_path.name)})")
    y = read_idx(label_path)
    if y.ndim != 1:
        raise DataError(
            f"{shown(label_path.name)}: a labels file has one dimension (a label per image), this one has {y.ndim} "
            f"({'×'.join(map(str, y.shape))}): is it an images file?"
        )
    if len(y) != len(images):
        raise DataError(f"{shown(label_path.name)}: {len(y):,} labels for {len(images):,} images")
    if y.dtype.kind == "f" and not bool(np.all(y == np.floor(y))):
        raise DataError(f"{shown(label_path.name)}: labels must be whole numbers (class indices)")
    low, high = y.min(), y.max()
    if low < 0:
        raise DataError(f"{shown(label_path.name)}: labels must be ≥ 0, found {int(low):,}")
    if high >= MAX_CLASSES:
        raise DataError(
            f"{shown(label_path.name)}: a label of {int(high):,} would make {int(high) + 1:,} classes, "
            f"more than {MAX_CLASSES:,} (labels 0 to {MAX_CLASSES - 1:,})"
        )
    if low == high:
        raise DataError(
            f"{shown(label_path.name)}: every label is {int(low)}, one class; classification needs at least two"
        )
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    x = np.ascontiguousarray((images.astype(np.float32) / scale)[:, None])
    classes = tuple(str(c) for c in range(int(high) + 1))
    return _classification(path.name, classes, x, y.astype(np.int64), f"IDX images {shown(path.name)}")


def csv_series(path: Path, steps: int = 32, target: str | None = None) -> Dataset:
    """A time series, one row per time step, one column per variable: windows of ``steps`` rows (features: every
    column, standardised) and the next row's ``target`` column (default: all columns) at every step."""
    columns, values = read_csv_numbers(path)
    if not (isinstance(steps, int) and steps >= 1):
        raise DataError(f"csv: steps must be a whole number ≥ 1, got {steps!r}")
    if len(values) < steps + 2:
        raise DataError(f"{shown(path.name)}: {len(values)} rows, too few for windows of {steps} steps")
    picked = list(range(len(columns))) if target is None else [columns.index(target)] if target in columns else None
    if picked is None:
        raise DataError(f"{shown(path.name)}: no column {target!r} (columns: {', '.join(columns)})")
    windows = len(values) - steps
    check_data(
        windows * steps * (len(columns) + len(picked)) * 4,
        f"{shown(path.name)}: {windows:,} windows of {steps} steps × {len(columns)} column"
        f"{'s' if len(columns) != 1 else ''} (inputs and targets, float32)",
    )
    # Statistics in float64: values near float32's limit (±3e38) would overflow a float32 sum of squares.
    mean, std = values.mean(0, dtype=np.float64), values.std(0, dtype=np.float64)
    series = ((values - mean) / np.where(std > 0, std, 1)).astype(np.float32)
    slide = np.lib.stride_tricks.sliding_window_view  # views: no Python object per window
    x = np.ascontiguousarray(slide(series, steps, axis=0)[:windows].transpose(0, 2, 1))
    y = np.ascontiguousarray(slide(series[1:, picked], steps, axis=0)[:windows].transpose(0, 2, 1))
    n_val = max(1, int(windows * 0.15))  # the end of the series is held out: no future leaks into training
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    return Dataset(
        path.stem,
        (),
        tx[:-n_val],
        ty[:-n_val],
        tx[-n_val:],
        ty[-n_val:],
        REGRESSION,
        f"CSV series {shown(path.name)}: {len(columns)} columns, windows of {steps}",
    )


def check_out_of_data(data: str | Path | None, out: str | Path) -> None:
    """Refuse a run folder ``out`` inside the image folder ``data`` (or equal to it): the next training on that
    folder would count the run folder as a class of its own."""
    if data is None or not Path(data).is_dir():
        return
    try:
        folder, run = Path(data).resolve(), Path(out).resolve()
    except (OSError, RuntimeError):  # a symlink loop: check_run_dir says what is wrong with it
        return
    if run == folder or folder in run.parents:
        raise DataError(
            f"--out {shown(out)} is inside the image folder {shown(data)}: the run folder would become a class "
            "the next time it is read; choose a folder outside it"
        )
