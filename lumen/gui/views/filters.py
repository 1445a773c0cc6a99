"""The filters view: one conv layer's kernels as pictures, following the weights while the model trains.

A first layer reading RGB shows one colour patch per filter (grey is zero); any other layer a grid of
kernels, a row per output channel and a column per input channel, on a symmetric diverging scale. *Export* saves
the picture as PNG and the layer's weights as ``.npy`` (out × in × kh × kw, every kernel, not only those drawn).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from lumen.engine.probes.filters import FilterFrame, Filters, FilterSettings
from lumen.engine.runtime.commands import ConfigureProbe
from lumen.gui.views.base import View
from lumen.gui.widgets.choices import offer
from lumen.gui.widgets.export import ExportButton
from lumen.gui.widgets.mosaic import MosaicRow


class FilterView(View):
    title = "Filters"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frame: FilterFrame | None = None
        self.layer_picker = QComboBox()
        self.layer_picker.activated.connect(self._choose)
        self.colour = QCheckBox("RGB filters in colour", checked=True)
        self.colour.toggled.connect(self._choose)
        self.export = ExportButton(
            lambda: self.canvas.ci, self.export_array, lambda: self.export_name(), array_title="Weights"
        )
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Layer:"))
        controls.addWidget(self.layer_picker, 1)
        controls.addWidget(self.colour)
        controls.addWidget(self.export)
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setAcceptDrops(False)
        self.row = MosaicRow(self.canvas.ci, 0, "No conv layer")
        self.colour_image = pg.ImageItem(axisOrder="row-major")
        self.row.box.addItem(self.colour_image)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.canvas, 1)

    def caption(self, frame: FilterFrame) -> str:  # type: ignore[override]
        if frame.filters is None:
            return f"no conv layer · model at step {frame.step}"
        return f"filters of <b>{frame.filters.node}</b> · model at step {frame.step}"

    def show_frame(self, frame: FilterFrame) -> None:  # type: ignore[override]
        self.frame = frame
        offer(self.layer_picker, frame.conv_layers)
        filters = frame.filters
        if filters is None:
            self.row.image.clear()
            self.colour_image.clear()
            return
        self.layer_picker.setCurrentText(filters.node)
        out_ch, in_ch, kh, kw = filters.shape
        shown = (
            ""
            if filters.shown == (out_ch, in_ch) or filters.colour
            else f" (first {filters.shown[0]}×{filters.shown[1]})"
        )
        title = f"<b>{filters.node}</b> — {out_ch}×{in_ch} kernels of {kh}×{kw}{shown}"
        if filters.colour:
            self.row.image.clear()
            self.colour_image.setImage(filters.mosaic, levels=(0.0, 1.0), autoLevels=False)
            self.row.title.setText(title + ", in colour (grey is zero)")
        else:
            self.colour_image.clear()
            self.row.show(filters.mosaic, *filters.levels, title)

    def _choose(self) -> None:
        if self.frame is None or not self.layer_picker.currentText():
            return
        settings = FilterSettings(layer=self.layer_picker.currentText(), colour=self.colour.isChecked())
        self.command.emit(ConfigureProbe(Filters.name, settings))

    def choose_layer(self, node: str) -> None:
        self.layer_picker.setCurrentText(node)
        self._choose()

    def export_array(self) -> np.ndarray | None:
        """The layer's weights as it holds them (out × in × kh × kw, float32), not the picture's pixels."""
        return self.frame.filters.weights if self.frame is not None and self.frame.filters is not None else None

    def export_name(self) -> str:
        return f"filters-{self.frame.filters.node}" if self.frame and self.frame.filters else "filters"
