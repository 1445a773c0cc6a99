"""Activation viewer pane: the probe input, the model's top predictions and every conv layer's feature maps.

Each layer's maps arrive from the engine already tiled into one mosaic, so a layer is one ImageItem (not
one widget per channel); levels are explicit, never auto-computed per frame.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSpinBox, QSplitter,
                               QVBoxLayout, QWidget)

from engine.runtime.events import FeatureMapFrame, LayerMaps

LAYER_ROW_PX = 230  # height of one layer's row once there are more than fit the pane
FEATURE_CMAP = "CET-D1"  # diverging blue–white–red: negative and positive responses read apart
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp *.tif *.tiff);;All files (*)"


class _LayerView:
    """One layer's row: a title, the mosaic image and its colour bar."""

    def __init__(self, layout: pg.GraphicsLayout, row: int, node: str):
        self.title = layout.addLabel(node, row=row, col=0, colspan=2, justify="left")
        self.box = layout.addViewBox(row=row + 1, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image)
        self.bar = pg.ColorBarItem(colorMap=FEATURE_CMAP, interactive=False, width=12)
        self.bar.setImageItem(self.image)
        layout.addItem(self.bar, row=row + 1, col=1)

    def show(self, maps: LayerMaps) -> None:
        reach = _nice_ceiling(max(abs(maps.levels[0]), abs(maps.levels[1])))  # symmetric: white means zero
        self.image.setImage(maps.mosaic, levels=(-reach, reach), autoLevels=False)
        if self.bar.levels() != (-reach, reach):  # its axis text is costly to redraw; it changes rarely
            self.bar.setLevels((-reach, reach))
        c, h, w = maps.shape
        title = f"<b>{maps.node}</b> — {c} maps of {h}×{w}"
        if self.title.text != title:
            self.title.setText(title)


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 × 10^k at or above ``value``: a colour scale that does not jitter per frame."""
    value = max(value, 1e-6)
    exponent = math.floor(math.log10(value))
    return next(step * 10**exponent for step in (1, 2, 5, 10) if step * 10**exponent >= value * (1 - 1e-9))


class ViewerPane(QWidget):
    probe_index_changed = Signal(int)
    image_dropped = Signal(str)  # a file path the user dropped or opened
    spec_dropped = Signal(str)   # a model spec (.json) dropped here: the window opens it in the builder

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.frame: FeatureMapFrame | None = None
        self.source = QLabel("No input yet.")
        self.probe = QSpinBox(minimum=0, maximum=9999, prefix="validation digit #")
        self.probe.setToolTip("Which digit of the validation set to feed the model")
        self.probe.valueChanged.connect(self.probe_index_changed)
        open_button = QPushButton("Open image…")
        open_button.clicked.connect(self._open_dialog)
        self.message = QLabel("Drop a PNG or JPEG of a digit anywhere on this pane to see what the model makes of it.")
        self.message.setWordWrap(True)

        # Left: what goes in and what comes out; right: one row per conv layer.
        self.io_canvas = pg.GraphicsLayoutWidget()
        io = self.io_canvas.ci
        io.addLabel("<b>Input</b> (as the model sees it)", row=0, col=0)
        self.input_box = io.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.input_image = pg.ImageItem(axisOrder="row-major")
        self.input_box.addItem(self.input_image)
        self.predictions = io.addPlot(row=2, col=0, title="Top predictions")
        self.predictions.setXRange(0, 1, padding=0)
        self.predictions.setMouseEnabled(False, False)
        self.predictions.hideButtons()
        self.predictions.getViewBox().invertY(True)
        self.predictions.setLabel("bottom", "probability")
        self.bars = pg.BarGraphItem(x0=[], y=[], width=[], height=0.7, brush=(40, 110, 200))
        self.predictions.addItem(self.bars)
        self.canvas = pg.GraphicsLayoutWidget()
        self.layer_views: dict[str, _LayerView] = {}
        # Deep models have dozens of conv layers: each keeps a readable height and the column scrolls.
        self.layers_scroll = QScrollArea(widgetResizable=True)
        self.layers_scroll.setWidget(self.canvas)
        splitter = QSplitter()
        for canvas in (self.io_canvas, self.canvas):
            canvas.setAcceptDrops(False)  # drops go to the pane
        splitter.addWidget(self.io_canvas)
        splitter.addWidget(self.layers_scroll)
        splitter.setSizes([280, 620])

        top = QHBoxLayout()
        top.addWidget(self.source, 1)
        top.addWidget(self.probe)
        top.addWidget(open_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.message)
        layout.addWidget(splitter, 1)

    # ---- showing frames ---------------------------------------------------------------------------
    def show_frame(self, frame: FeatureMapFrame) -> None:
        self.frame = frame
        label = f" (true label {frame.label})" if frame.label is not None else ""
        self.source.setText(f"<b>{frame.source}</b>{label} · model at step {frame.step}")
        self.input_image.setImage(frame.image, levels=(0.0, 1.0), autoLevels=False)
        self._show_predictions(frame.predictions)
        if list(self.layer_views) != [m.node for m in frame.layers]:
            self._rebuild_layers(frame.layers)
        for maps in frame.layers:
            self.layer_views[maps.node].show(maps)

    def _show_predictions(self, predictions: tuple[tuple[str, float], ...]) -> None:
        ranks = np.arange(len(predictions), dtype=float)
        self.bars.setOpts(x0=np.zeros(len(ranks)), y=ranks, width=[p for _, p in predictions], height=0.7)
        self.predictions.getAxis("left").setTicks([[(i, f"{name}  {p:.0%}") for i, (name, p) in enumerate(predictions)]])
        self.predictions.setYRange(-0.6, max(len(predictions), 1) - 0.4, padding=0)

    def _rebuild_layers(self, layers: tuple[LayerMaps, ...]) -> None:
        grid = self.canvas.ci
        for view in self.layer_views.values():
            for item in (view.title, view.box, view.bar):
                grid.removeItem(item)
        self.layer_views = {m.node: _LayerView(grid, 2 * i, m.node) for i, m in enumerate(layers)}
        self.canvas.setMinimumHeight(LAYER_ROW_PX * len(layers) if len(layers) > 2 else 0)

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #c0392b; font-weight: bold;" if error else "")
        self.message.setText(text)

    # ---- drag and drop, file dialog ------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        if paths[0].lower().endswith(".json"):
            self.spec_dropped.emit(paths[0])
            return
        self.image_dropped.emit(paths[0])
        if len(paths) > 1:
            self.show_message(f"Showing {Path(paths[0]).name}; drop one image at a time.")

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", "", IMAGE_FILTER)
        if path:
            self.image_dropped.emit(path)
