"""Reading a model spec file (or opening an ONNX model, ``engine.io.open_model``) off the GUI thread.

``ModelSpec.load`` reads through ``engine.untrusted`` (a regular file only, of limited size, JSON with depth
and number limits), so a FIFO, a device such as /dev/zero or a huge file is refused with a message. Even so the
read runs on a one-thread pool (a file on a slow or hung network disk must not freeze the window); the result
comes back as a queued signal. Each request gets a serial number, and the receiver uses only the newest.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from lumen.engine.errors import LumenError
from lumen.engine.io.open_model import SUFFIXES, open_model
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.untrusted import shown


class SpecReader(QObject):
    loaded = Signal(object, str, int)  # ModelSpec, path, serial
    model_opened = Signal(object, str, int)  # an ONNX file's OpenedModel (spec, weights, opaque ops), before loaded
    failed = Signal(str, int)  # message, serial

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._pool: ThreadPoolExecutor | None = None  # made on the first read: a pane that opens no file has no thread
        self.serial = 0  # the newest request; results of older ones are stale

    def load(self, path: str | Path) -> int:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lumen-spec")
        self.serial += 1
        self._pool.submit(self._read, Path(path), self.serial)
        return self.serial

    def _read(self, path: Path, serial: int) -> None:  # pool thread; signals cross to the GUI thread queued
        try:
            if path.suffix.lower() in SUFFIXES:  # a model made elsewhere: converted here, off the GUI thread
                opened = open_model(path)
                self.model_opened.emit(opened, str(path), serial)
                spec = opened.spec
            else:
                spec = ModelSpec.load(path)
        except LumenError as exc:
            self.failed.emit(str(exc), serial)
        except Exception as exc:  # a reader bug must become a message, not a silent nothing
            self.failed.emit(f"{shown(path.name)} could not be opened: {type(exc).__name__}: {exc}", serial)
        else:
            self.loaded.emit(spec, str(path), serial)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
