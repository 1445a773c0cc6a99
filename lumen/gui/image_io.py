"""Reading a user's image file with Qt's decoders, safely, off the GUI thread.

QImageReader reads the header first, so an enormous picture is refused before any pixel is decoded.
Decoding runs on a one-thread pool (QImage is usable outside the GUI thread); results come back as
queued signals.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QSize, Signal
from PySide6.QtGui import QImage, QImageReader

# One limit for the window and the CLI (engine/io/image_files.py, below the GUI, so importing it runs no arrow
# up): a full-resolution photo from a phone or camera (48-64 megapixels) opens, a decompression bomb does not.
from lumen.engine.io.image_files import MAX_PIXELS

MAX_SIDE = 1024  # decode larger pictures scaled down to this longest side; models need far less


class ImageLoadError(Exception):
    pass


def formats() -> list[str]:
    return sorted(bytes(f).decode() for f in QImageReader.supportedImageFormats())


def read_image(path: str | Path) -> np.ndarray:
    """The picture at ``path`` as an H×W×4 uint8 RGBA array, or ImageLoadError with a message for the user."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise ImageLoadError(f"{name} is not a file")
    if path.stat().st_size == 0:
        raise ImageLoadError(f"{name} is empty (0 bytes)")
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)  # honour EXIF rotation from phone cameras
    if not reader.canRead():
        common = ", ".join(f for f in formats() if f in ("png", "jpg", "jpeg", "bmp", "gif"))
        raise ImageLoadError(f"{name} is not an image Lumen can read (readable: {common})")
    size = reader.size()
    if not size.isValid() or size.isEmpty():
        raise ImageLoadError(f"{name}: the image header is damaged (no valid size)")
    if size.width() * size.height() >= MAX_PIXELS:
        raise ImageLoadError(
            f"{name} is {size.width():,} × {size.height():,} pixels; Lumen opens images under "
            f"{MAX_PIXELS // 1_000_000} megapixels. Scale it down first."
        )
    # Qt refuses to allocate more than 256 MB for a decoded image unless told (a process-wide setting); PNG and
    # others decode whole before scaling, 4 bytes a pixel, so a picture under MAX_PIXELS must be allowed that much.
    QImageReader.setAllocationLimit(max(QImageReader.allocationLimit(), -(-MAX_PIXELS * 4 // 2**20)))
    longest = max(size.width(), size.height())
    if longest > MAX_SIDE:
        reader.setScaledSize(
            QSize(max(1, size.width() * MAX_SIDE // longest), max(1, size.height() * MAX_SIDE // longest))
        )
    image = reader.read()
    if image.isNull():
        raise ImageLoadError(f"{name} could not be decoded ({reader.errorString()}); it may be truncated or corrupt")
    image = image.convertToFormat(QImage.Format.Format_RGBA8888)
    stride = image.bytesPerLine()
    raw = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * image.height())
    return raw.reshape(image.height(), stride)[:, : image.width() * 4].reshape(image.height(), image.width(), 4).copy()


class ImageLoader(QObject):
    loaded = Signal(object, str)  # pixels, file name
    failed = Signal(str)  # message

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lumen-image")

    def load(self, path: str | Path) -> None:
        self._pool.submit(self._read, Path(path))

    def _read(self, path: Path) -> None:  # pool thread; signals cross to the GUI thread queued
        try:
            self.loaded.emit(read_image(path), path.name)
        except ImageLoadError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a decoder bug must not be lost silently
            self.failed.emit(f"{path.name} could not be opened: {type(exc).__name__}: {exc}")

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
