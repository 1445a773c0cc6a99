"""A titled mosaic image with a colour bar, for tiled activations; a colour scale that does not jitter."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal

DIVERGING_CMAP = "CET-D1"  # blue–white–red: negative and positive responses read apart


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 × 10^k at or above ``value``: a colour scale that does not jitter per frame."""
    value = max(value, 1e-6)
    exponent = math.floor(math.log10(value))
    return next(step * 10**exponent for step in (1, 2, 5, 10) if step * 10**exponent >= value * (1 - 1e-9))


class TileImage(pg.ImageItem):
    """An ImageItem that reports a left click as the (row, column) of the pixel under it."""

    clicked = Signal(int, int)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            pos = ev.pos()
            self.clicked.emit(int(pos.y()), int(pos.x()))
            ev.accept()


def tile_at(row: int, col: int, tile: tuple[int, int], grid: tuple[int, int], count: int) -> int | None:
    """Which tile (channel) of a mosaic with 1-pixel gaps holds pixel (row, col); None on a gap or outside."""
    h, w = tile
    r, gap_r = divmod(row, h + 1)
    c, gap_c = divmod(col, w + 1)
    if row < 0 or col < 0 or gap_r == h or gap_c == w or r >= grid[0] or c >= grid[1]:
        return None
    index = r * grid[1] + c
    return index if index < count else None


def per_tile(mosaic: np.ndarray, tile: tuple[int, int], grid: tuple[int, int]) -> np.ndarray:
    """The mosaic with each tile scaled to its own largest magnitude (so every tile spans −1…1)."""
    h, w = tile
    out = mosaic.copy()
    for r in range(grid[0]):
        for c in range(grid[1]):
            block = out[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w]
            if block.size and not np.isnan(block).all():
                reach = float(np.nanmax(np.abs(block)))
                if reach > 0:
                    block /= reach
    return out


class MosaicRow:
    """Two rows of a GraphicsLayout: a title, then one image and its colour bar. Levels are explicit and
    symmetric about zero (white means zero), rounded up by ``nice_ceiling``. ``image.clicked`` reports the
    pixel clicked (``tile_at`` turns it into a channel)."""

    def __init__(self, layout: pg.GraphicsLayout, row: int, title: str, cmap: str = DIVERGING_CMAP):
        self.layout = layout
        self.title = layout.addLabel(title, row=row, col=0, colspan=2, justify="left")
        self.box = layout.addViewBox(row=row + 1, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.image = TileImage(axisOrder="row-major")
        self.box.addItem(self.image)
        self.bar = pg.ColorBarItem(colorMap=cmap, interactive=False, width=12)
        self.bar.setImageItem(self.image)
        layout.addItem(self.bar, row=row + 1, col=1)

    def show(self, mosaic: np.ndarray, low: float, high: float, title: str) -> None:
        reach = nice_ceiling(max(abs(low), abs(high)))
        self.image.setImage(mosaic, levels=(-reach, reach), autoLevels=False)
        if self.bar.levels() != (-reach, reach):  # its axis text is costly to redraw; it changes rarely
            self.bar.setLevels((-reach, reach))
        if self.title.text != title:
            self.title.setText(title)

    def remove(self) -> None:
        for item in (self.title, self.box, self.bar):
            self.layout.removeItem(item)
