"""A titled mosaic image with a colour bar, for tiled activations; a colour scale that does not jitter."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

DIVERGING_CMAP = "CET-D1"  # blue–white–red: negative and positive responses read apart


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 × 10^k at or above ``value``: a colour scale that does not jitter per frame."""
    value = max(value, 1e-6)
    exponent = math.floor(math.log10(value))
    return next(step * 10**exponent for step in (1, 2, 5, 10) if step * 10**exponent >= value * (1 - 1e-9))


class MosaicRow:
    """Two rows of a GraphicsLayout: a title, then one image and its colour bar. Levels are explicit and
    symmetric about zero (white means zero), rounded up by ``nice_ceiling``."""

    def __init__(self, layout: pg.GraphicsLayout, row: int, title: str, cmap: str = DIVERGING_CMAP):
        self.layout = layout
        self.title = layout.addLabel(title, row=row, col=0, colspan=2, justify="left")
        self.box = layout.addViewBox(row=row + 1, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.image = pg.ImageItem(axisOrder="row-major")
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
