"""Weight and activation histograms over time: for the chosen layer, one image each, a row per frame.

Columns are the engine's bins (a symmetric range around zero, fixed while the values fit), rows go down in
time; brightness is log(1 + count) of the row's largest count, so both narrow and wide distributions read.
At most ``ROWS`` frames are kept per layer (a ring), so memory does not grow with the run.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from lumen.engine.probes.histograms import BINS, HistogramFrame, LayerHistogram
from lumen.gui.views.base import View

ROWS = 300  # frames shown per layer, newest at the bottom
CMAP = "viridis"


class _Strip:
    """One layer's histograms over time (ROWS × BINS, float32), reset when its range changes."""

    def __init__(self) -> None:
        self.rows = np.zeros((ROWS, BINS), np.float32)
        self.count = 0
        self.limit = 0.0
        self.steps: list[int] = []

    def add(self, histogram: LayerHistogram, step: int) -> None:
        if histogram.limit != self.limit or (self.steps and step < self.steps[-1]):
            self.rows[:] = 0
            self.count, self.limit, self.steps = 0, histogram.limit, []
        row = np.log1p(histogram.counts)
        peak = float(row.max())
        if self.count == ROWS:
            self.rows[:-1] = self.rows[1:]
            self.steps = self.steps[1:]
        else:
            self.count += 1
        self.rows[self.count - 1] = row / peak if peak > 0 else row
        self.steps.append(step)

    def image(self) -> np.ndarray:
        return self.rows[: max(self.count, 1)]


class HistogramView(View):
    title = "Histograms"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frame: HistogramFrame | None = None
        self.strips: dict[tuple[str, str], _Strip] = {}  # (kind, node) -> its history
        self.layer_picker = QComboBox()
        self.layer_picker.activated.connect(lambda _: self._draw())
        self.note = QLabel("")
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Layer:"))
        controls.addWidget(self.layer_picker, 1)
        controls.addWidget(self.note)
        self.canvas = pg.GraphicsLayoutWidget()
        self.plots: dict[str, pg.PlotItem] = {}
        self.images: dict[str, pg.ImageItem] = {}
        for column, kind in enumerate(("weights", "activations")):
            plot = self.canvas.addPlot(row=0, col=column, title=kind)
            plot.invertY(True)
            plot.setLabel("left", "over time (newest at the bottom)")
            plot.getAxis("left").setStyle(showValues=False)  # row numbers said nothing (0.5, 1.5 with few frames)
            plot.setLabel("bottom", "value")
            image = pg.ImageItem(axisOrder="row-major")
            image.setColorMap(pg.colormap.get(CMAP))
            plot.addItem(image)
            self.plots[kind], self.images[kind] = plot, image
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.canvas, 1)

    def clear(self) -> None:
        """Another model: its layers' histories start empty (a layer of the same name is another layer)."""
        self.frame = None
        self.strips = {}
        self.layer_picker.clear()
        for image in self.images.values():
            image.clear()

    def caption(self, frame: HistogramFrame) -> str:  # type: ignore[override]
        return f"histograms of <b>{self.layer_picker.currentText()}</b> · model at step {frame.step}"

    def show_frame(self, frame: HistogramFrame) -> None:  # type: ignore[override]
        self.frame = frame
        layers = [h.node for h in frame.weights]
        if [self.layer_picker.itemText(i) for i in range(self.layer_picker.count())] != layers:
            current = self.layer_picker.currentText()
            self.layer_picker.clear()
            self.layer_picker.addItems(layers)
            if current in layers:
                self.layer_picker.setCurrentText(current)
            self.strips = {key: strip for key, strip in self.strips.items() if key[1] in layers}
        for kind, histograms in (("weights", frame.weights), ("activations", frame.activations)):
            for histogram in histograms:
                self.strips.setdefault((kind, histogram.node), _Strip()).add(histogram, frame.step)
        self.note.setText("" if frame.activations else "no probe input: activations are not shown")
        if self.isVisible():  # behind another tab the strips still grow; they are drawn when it is shown
            self._draw()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._draw()

    def _draw(self) -> None:
        node = self.layer_picker.currentText()
        for kind, image in self.images.items():
            strip = self.strips.get((kind, node))
            if strip is None or strip.count == 0:
                image.clear()
                continue
            data = strip.image().copy()  # setImage keeps a view; the strip's rows change in place
            image.setImage(data, levels=(0.0, 1.0), autoLevels=False)
            # Columns span [-limit, limit]; rows are frames.
            image.setRect(-strip.limit, 0, 2 * strip.limit, data.shape[0])

    def strip(self, kind: str, node: str) -> np.ndarray | None:
        """The drawn image of ``kind`` ("weights" or "activations") for ``node``, for tests and export."""
        found = self.strips.get((kind, node))
        return None if found is None else found.image()
