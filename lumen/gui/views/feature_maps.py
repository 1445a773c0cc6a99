"""The feature-map view: the probe input, the model's top predictions and the feature maps of the chosen layers.

Each layer's maps arrive from the engine already tiled into one mosaic, so a layer is one ImageItem (not
one widget per channel); levels are explicit, never auto-computed per frame. Controls: a layer picker (every
conv layer, or any one layer of the model: the probe records what its ``FeatureMapSettings`` ask for), before or
after the activation, a shared or per-tile colour scale; clicking a tile enlarges it on the left, with the
value under the cursor. Export writes the view as PNG or the enlarged (else the first) layer's maps as .npy.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QScrollArea, QSplitter, QVBoxLayout, QWidget

from lumen.engine.probes.feature_maps import FeatureMapFrame, FeatureMaps, FeatureMapSettings, LayerMaps
from lumen.engine.runtime.commands import ConfigureProbe
from lumen.gui.views.base import View
from lumen.gui.widgets.export import ExportButton
from lumen.gui.widgets.mosaic import DIVERGING_CMAP, MosaicRow, nice_ceiling, per_tile, tile_at

LAYER_ROW_PX = 230  # height of one layer's row once there are more than fit the pane
DEFAULT_LAYERS = "every conv layer"


class FeatureMapView(View):
    title = "Feature maps"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frame: FeatureMapFrame | None = None
        self.zoomed: tuple[str, int] | None = None  # (node, channel) of the enlarged tile
        # Controls.
        self.layer_picker = QComboBox()
        self.layer_picker.addItem(DEFAULT_LAYERS, None)
        self.layer_picker.setToolTip("Which layer's activations to show: every conv layer, or any one layer")
        self.layer_picker.activated.connect(self._choose)
        self.after_activation = QCheckBox("after activation")
        self.after_activation.setToolTip("Show each layer's maps after the ReLU (or other activation) that follows it")
        self.after_activation.toggled.connect(self._choose)
        self.scale = QComboBox()
        self.scale.addItem("shared colour scale", "shared")
        self.scale.addItem("per-tile colour scale", "tile")
        self.scale.currentIndexChanged.connect(self._redraw)
        self.export = ExportButton(lambda: self.canvas.ci, self.export_array, self.export_name)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Layers:"))
        controls.addWidget(self.layer_picker, 1)
        controls.addWidget(self.after_activation)
        controls.addWidget(self.scale)
        controls.addWidget(self.export)
        # Left: what goes in and what comes out, and the enlarged tile; right: one row per layer.
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
        self._ticks: list[tuple[int, str]] = []  # the prediction labels shown
        self.predictions.addItem(self.bars)
        self.zoom_title = io.addLabel("Click a tile to enlarge it", row=3, col=0)
        self.zoom_box = io.addViewBox(row=4, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.zoom_image = pg.ImageItem(axisOrder="row-major")
        self.zoom_image.setColorMap(pg.colormap.get(DIVERGING_CMAP))
        self.zoom_box.addItem(self.zoom_image)
        self.zoom_value = QLabel(" ")
        self.io_canvas.scene().sigMouseMoved.connect(self._hover)
        self.canvas = pg.GraphicsLayoutWidget()
        self.layer_views: dict[str, MosaicRow] = {}
        # Deep models have dozens of conv layers: each keeps a readable height and the column scrolls.
        self.layers_scroll = QScrollArea(widgetResizable=True)
        self.layers_scroll.setWidget(self.canvas)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.io_canvas, 1)
        left_layout.addWidget(self.zoom_value)
        splitter = QSplitter()
        for canvas in (self.io_canvas, self.canvas):
            canvas.setAcceptDrops(False)  # drops go to the pane
        splitter.addWidget(left)
        splitter.addWidget(self.layers_scroll)
        splitter.setSizes([280, 620])
        # Wide maps (a 224×224 model's) must not squeeze the input and predictions out of sight: the layers scroll.
        left.setMinimumWidth(220)
        splitter.setCollapsible(0, False)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(splitter, 1)

    def caption(self, frame: FeatureMapFrame) -> str:  # type: ignore[override]
        label = f" (true label {frame.label})" if frame.label is not None else ""
        return f"<b>{frame.source}</b>{label} · model at step {frame.step}"

    def show_frame(self, frame: FeatureMapFrame) -> None:  # type: ignore[override]
        self.frame = frame
        self._update_picker(frame)
        self.input_image.setImage(frame.image, levels=(0.0, 1.0), autoLevels=False)
        self._show_predictions(frame.predictions)
        if list(self.layer_views) != [m.node for m in frame.layers]:
            self._rebuild_layers(frame.layers)
        self._redraw()

    # ---- drawing -----------------------------------------------------------------------------------
    def _redraw(self) -> None:
        frame = self.frame
        if frame is None:
            return
        tiles = self.scale.currentData() == "tile"
        for maps in frame.layers:
            c, h, w = maps.shape
            recorded = f" → {maps.recorded}" if maps.recorded and maps.recorded != maps.node else ""
            title = f"<b>{maps.node}</b>{recorded} — {c} maps of {h}×{w}"
            if tiles:
                self.layer_views[maps.node].show(per_tile(maps.mosaic, (h, w), maps.grid), -1.0, 1.0, title)
            else:
                self.layer_views[maps.node].show(maps.mosaic, *maps.levels, title)
        self._show_zoom()

    def _show_predictions(self, predictions: tuple[tuple[str, float], ...]) -> None:
        ranks = np.arange(len(predictions), dtype=float)
        self.bars.setOpts(x0=np.zeros(len(ranks)), y=ranks, width=[p for _, p in predictions], height=0.7)
        ticks = [(i, f"{name}  {_percent(p)}") for i, (name, p) in enumerate(predictions)]
        if ticks != self._ticks:  # new text makes the axis lay out and paint its labels again: only on a change
            if len(ticks) != len(self._ticks):
                self.predictions.setYRange(-0.6, max(len(predictions), 1) - 0.4, padding=0)
            self._ticks = ticks
            self.predictions.getAxis("left").setTicks([ticks])

    def _rebuild_layers(self, layers: tuple[LayerMaps, ...]) -> None:
        for row in self.layer_views.values():
            row.remove()
        self.layer_views = {}
        for i, m in enumerate(layers):
            row = MosaicRow(self.canvas.ci, 2 * i, m.node)
            row.image.clicked.connect(lambda y, x, node=m.node: self._tile_clicked(node, y, x))
            self.layer_views[m.node] = row
        self.canvas.setMinimumHeight(LAYER_ROW_PX * len(layers) if len(layers) > 2 else 0)

    # ---- the enlarged tile -------------------------------------------------------------------------
    def _layer(self, node: str) -> LayerMaps | None:
        return next((m for m in self.frame.layers if m.node == node), None) if self.frame else None

    def _tile_clicked(self, node: str, y: int, x: int) -> None:
        maps = self._layer(node)
        if maps is None:
            return
        channel = tile_at(y, x, maps.shape[1:], maps.grid, maps.shape[0])
        if channel is not None:
            self.enlarge(node, channel)

    def enlarge(self, node: str, channel: int) -> None:
        """Show channel ``channel`` of layer ``node`` large, on the left."""
        self.zoomed = (node, channel)
        self._show_zoom()

    def _zoom_map(self) -> np.ndarray | None:
        if self.zoomed is None:
            return None
        maps = self._layer(self.zoomed[0])
        if maps is None or maps.maps is None or self.zoomed[1] >= maps.shape[0]:
            return None
        return maps.maps[self.zoomed[1]]

    def _show_zoom(self) -> None:
        tile = self._zoom_map()
        if tile is None or self.zoomed is None:
            return
        reach = nice_ceiling(float(np.abs(tile).max()))
        self.zoom_image.setImage(np.ascontiguousarray(tile), levels=(-reach, reach), autoLevels=False)
        node, channel = self.zoomed
        self.zoom_title.setText(f"<b>{node}</b>, channel {channel} ({tile.shape[0]}×{tile.shape[1]})")

    def _hover(self, pos: QPointF) -> None:
        tile = self._zoom_map()
        if tile is None:
            return
        point = self.zoom_image.mapFromScene(pos)
        self.show_value_at(int(point.y()), int(point.x()))

    def show_value_at(self, row: int, col: int) -> None:
        """The enlarged tile's value at (row, col) in the label under it (blank outside the tile)."""
        tile = self._zoom_map()
        if tile is None or not (0 <= row < tile.shape[0] and 0 <= col < tile.shape[1]):
            self.zoom_value.setText(" ")
            return
        self.zoom_value.setText(f"({row}, {col}): {tile[row, col]:.4g}")

    # ---- the layer picker --------------------------------------------------------------------------
    def _update_picker(self, frame: FeatureMapFrame) -> None:
        wanted = [(f"{node} ({kind})", node) for node, kind in frame.layer_choices]
        have = [
            (self.layer_picker.itemText(i), self.layer_picker.itemData(i)) for i in range(1, self.layer_picker.count())
        ]
        if wanted and wanted != have:
            self.layer_picker.blockSignals(True)
            self.layer_picker.clear()
            self.layer_picker.addItem(DEFAULT_LAYERS, None)
            for text, node in wanted:
                self.layer_picker.addItem(text, node)
            self.layer_picker.blockSignals(False)
        picked = frame.choice.layers[0] if frame.choice.layers and len(frame.choice.layers) == 1 else None
        index = self.layer_picker.findData(picked) if picked else 0
        self.layer_picker.blockSignals(True)
        self.layer_picker.setCurrentIndex(max(index, 0))
        self.layer_picker.blockSignals(False)
        self.after_activation.blockSignals(True)
        self.after_activation.setChecked(frame.choice.after_activation)
        self.after_activation.blockSignals(False)

    def choose_layer(self, node: str | None, after_activation: bool | None = None) -> None:
        """Ask the worker for ``node``'s maps (None: every conv layer), before or after its activation."""
        index = self.layer_picker.findData(node) if node else 0
        if index >= 0:
            self.layer_picker.setCurrentIndex(index)
        if after_activation is not None:
            self.after_activation.blockSignals(True)
            self.after_activation.setChecked(after_activation)
            self.after_activation.blockSignals(False)
        self._choose()

    def _choose(self) -> None:
        node = self.layer_picker.currentData()
        settings = FeatureMapSettings(
            layers=(node,) if node else None, after_activation=self.after_activation.isChecked()
        )
        self.command.emit(ConfigureProbe(FeatureMaps.name, settings))

    # ---- export --------------------------------------------------------------------------------------
    def export_array(self) -> np.ndarray | None:
        """The enlarged tile's layer's maps (C×H×W), else the first layer's."""
        if self.frame is None or not self.frame.layers:
            return None
        maps = self._layer(self.zoomed[0]) if self.zoomed else None
        return (maps or self.frame.layers[0]).maps

    def export_name(self) -> str:
        if self.frame is None or not self.frame.layers:
            return "feature-maps"
        return f"feature-maps-{(self.zoomed[0] if self.zoomed else self.frame.layers[0].node)}"


def _percent(p: float) -> str:
    """A probability as a percentage with the digits it needs: 51%, 0.4% (a 1,000-class model's spread-out guess)."""
    return f"{p:.0%}" if p >= 0.095 or p == 0 else f"{p:.1%}"
