"""Export any view: its picture as PNG (pyqtgraph's ImageExporter) and its raw array as ``.npy``.

A view hands ``ExportButton`` two callables: the graphics item (or scene) to render, and the array it draws
(None when there is nothing yet), and may name that array for the menu (the filters view's is the layer's weights,
not the picture's pixels). *Picture and array…* writes both under one name (``x.png`` and ``x.npy``).
``save_png`` and ``save_npy`` are the plain functions behind the menu, which tests and other code call directly;
both write to a temporary name and rename (never a half file).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtWidgets import QFileDialog, QMenu, QToolButton, QWidget

from lumen.engine.errors import LumenError
from lumen.engine.untrusted import atomic_write


def save_png(item: pg.GraphicsItem | pg.GraphicsScene, path: str | Path, width: int | None = None) -> Path:
    """Render ``item`` to a PNG at ``path`` (at least 600 pixels wide unless ``width`` says otherwise)."""
    path = Path(path)
    exporter = pyqtgraph.exporters.ImageExporter(item)
    size = int(exporter.parameters()["width"])
    exporter.parameters()["width"] = width or max(size, 600)
    image = exporter.export(toBytes=True)
    with atomic_write(path) as tmp:
        if not image.save(str(tmp), "PNG"):
            raise OSError(f"could not write {path.name}")
    return path


def save_npy(array: np.ndarray, path: str | Path) -> Path:
    path = Path(path)
    with atomic_write(path) as tmp, open(tmp, "wb") as file:
        np.save(file, np.asarray(array), allow_pickle=False)
    return path


class ExportButton(QToolButton):
    """“Export ▾”: *Picture (PNG)…*, *Array (.npy)…* (or what ``array_title`` calls it) and *Picture and array…*;
    a failure is reported through ``on_error``."""

    def __init__(
        self,
        picture: Callable[[], pg.GraphicsItem | pg.GraphicsScene],
        array: Callable[[], np.ndarray | None],
        name: Callable[[], str],
        on_error: Callable[[str], None] | None = None,
        parent: QWidget | None = None,
        *,
        array_title: str = "Array",
    ):
        super().__init__(parent, text="Export")
        self._picture, self._array, self._name, self._on_error = picture, array, name, on_error
        self._array_title = array_title
        menu = QMenu(self)
        menu.addAction("Picture (PNG)…", self._png)
        menu.addAction(f"{array_title} (.npy)…", self._npy)
        menu.addAction(f"Picture and {array_title.lower()} (PNG + .npy)…", self._both)
        self.setMenu(menu)
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)

    def _png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the picture", f"{self._name()}.png", "PNG (*.png)")
        if path:
            self._run(lambda: save_png(self._picture(), path))

    def _npy(self) -> None:
        array = self._array()
        if array is None:
            self._report("there is no array to save yet")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the array", f"{self._name()}.npy", "NumPy (*.npy)")
        if path:
            self._run(lambda: save_npy(array, path))

    def _both(self) -> None:
        if self._array() is None:
            self._report(f"there is no {self._array_title.lower()} to save yet")
            return
        path, _ = QFileDialog.getSaveFileName(
            self, f"Save the picture and the {self._array_title.lower()}", f"{self._name()}.png", "PNG (*.png)"
        )
        if path:
            self._run(lambda: self.save_both(path)[0])

    def save_both(self, path: str | Path) -> tuple[Path, Path]:
        """The picture at ``path`` (a ``.png``) and the array beside it with the same name (``.npy``)."""
        array = self._array()
        if array is None:
            raise ValueError(f"there is no {self._array_title.lower()} to save yet")
        png = Path(path).with_suffix(".png")
        return save_png(self._picture(), png), save_npy(array, png.with_suffix(".npy"))

    def _run(self, action: Callable[[], Path]) -> None:
        try:
            action()
        except (OSError, ValueError, LumenError) as exc:
            self._report(f"export failed: {exc}")

    def _report(self, message: str) -> None:
        if self._on_error is not None:
            self._on_error(message)
