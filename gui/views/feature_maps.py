"""The feature-map view: the probe input, the model's top predictions and every conv layer's feature maps.

Each layer's maps arrive from the engine already tiled into one mosaic, so a layer is one ImageItem (not
one widget per channel); levels are explicit, never auto-computed per frame.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QScrollArea, QSplitter, QVBoxLayout, QWidget

from engine.probes.feature_maps import FeatureMapFrame, LayerMaps
from gui.views.base import View
from gui.widgets.mosaic import MosaicRow

LAYER_ROW_PX = 230  # height of one layer's row once there are more than fit the pane


class FeatureMapView(View):
    title = "Feature maps"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frame: FeatureMapFrame | None = None
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
        self.layer_views: dict[str, MosaicRow] = {}
        # Deep models have dozens of conv layers: each keeps a readable height and the column scrolls.
        self.layers_scroll = QScrollArea(widgetResizable=True)
        self.layers_scroll.setWidget(self.canvas)
        splitter = QSplitter()
        for canvas in (self.io_canvas, self.canvas):
            canvas.setAcceptDrops(False)  # drops go to the pane
        splitter.addWidget(self.io_canvas)
        splitter.addWidget(self.layers_scroll)
        splitter.setSizes([280, 620])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    def caption(self, frame: FeatureMapFrame) -> str:  # type: ignore[override]
        label = f" (true label {frame.label})" if frame.label is not None else ""
        return f"<b>{frame.source}</b>{label} · model at step {frame.step}"

    def show_frame(self, frame: FeatureMapFrame) -> None:  # type: ignore[override]
        self.frame = frame
        self.input_image.setImage(frame.image, levels=(0.0, 1.0), autoLevels=False)
        self._show_predictions(frame.predictions)
        if list(self.layer_views) != [m.node for m in frame.layers]:
            self._rebuild_layers(frame.layers)
        for maps in frame.layers:
            c, h, w = maps.shape
            self.layer_views[maps.node].show(maps.mosaic, *maps.levels, f"<b>{maps.node}</b> — {c} maps of {h}×{w}")

    def _show_predictions(self, predictions: tuple[tuple[str, float], ...]) -> None:
        ranks = np.arange(len(predictions), dtype=float)
        self.bars.setOpts(x0=np.zeros(len(ranks)), y=ranks, width=[p for _, p in predictions], height=0.7)
        ticks = [(i, f"{name}  {p:.0%}") for i, (name, p) in enumerate(predictions)]
        self.predictions.getAxis("left").setTicks([ticks])
        self.predictions.setYRange(-0.6, max(len(predictions), 1) - 0.4, padding=0)

    def _rebuild_layers(self, layers: tuple[LayerMaps, ...]) -> None:
        for row in self.layer_views.values():
            row.remove()
        self.layer_views = {m.node: MosaicRow(self.canvas.ci, 2 * i, m.node) for i, m in enumerate(layers)}
        self.canvas.setMinimumHeight(LAYER_ROW_PX * len(layers) if len(layers) > 2 else 0)
