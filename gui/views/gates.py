"""The gates view: inside one LSTM, GRU or RNN layer while it trains — a heatmap (unit × time step) of the gate or
state chosen, the input's tokens along the time axis, both directions side by side for a bidirectional layer,
the value under the mouse, units sorted by how saturated they are if asked; below, how much of the loss reaches
each time step (‖∂L/∂h_t‖), the vanishing-gradient picture."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from engine.probes.gates import GateFrame, Gates, GateSettings
from engine.runtime.commands import ConfigureProbe
from gui.views.base import View
from gui.widgets.export import ExportButton
from gui.widgets.mosaic import DIVERGING_CMAP

NAMES = {
    "i": "input gate i",
    "f": "forget gate f",
    "g": "candidate g",
    "o": "output gate o",
    "c": "cell state c",
    "h": "hidden state h",
    "m": "o·tanh(c), before the projection",
    "r": "reset gate r",
    "z": "update gate z",
    "n": "candidate n",
    "a": "pre-activation a",
}
GATES_IN_0_1 = ("i", "f", "o", "r", "z")  # sigmoids: drawn 0…1; the rest symmetric about 0
SORTS = {"unit": "units in order", "saturation": "most saturated first"}
MAX_TICKS = 60  # token labels on the time axis, beyond which they would overlap
LINE_PENS = [(40, 110, 200), (230, 126, 34), (44, 160, 44), (214, 39, 40)]


class GateView(View):
    title = "Gates"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frame: GateFrame | None = None
        self.layer = QComboBox(toolTip="The recurrent layer to look inside")
        self.layer.activated.connect(self._configure)
        self.stacked = QSpinBox(minimum=0, maximum=0, prefix="stacked layer ")
        self.stacked.setToolTip("Which of the layer's stacked layers")
        self.stacked.valueChanged.connect(self._draw)
        self.gate = QComboBox(toolTip="The gate or state drawn")
        self.gate.activated.connect(self._draw)
        self.sort = QComboBox(toolTip="The order of the units (rows)")
        for key, text in SORTS.items():
            self.sort.addItem(text, key)
        self.sort.activated.connect(self._configure)
        for box in (self.layer, self.gate, self.sort):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.export = ExportButton(lambda: self.canvas.ci, self.export_array, lambda: "gates")
        controls = QHBoxLayout()
        for widget in (QLabel("Layer:"), self.layer, self.stacked, QLabel("Show:"), self.gate, self.sort):
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(self.export)
        self.hover = QLabel(" ")
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setAcceptDrops(False)
        self.plots: list[pg.PlotItem] = []
        self.images: list[pg.ImageItem] = []
        for column, direction in enumerate(("forward", "backward")):
            plot = self.canvas.addPlot(row=0, col=column, title=direction)
            plot.invertY(True)
            plot.setLabel("left", "unit")
            plot.setLabel("bottom", "time step")
            plot.setMouseEnabled(False, False)
            image = pg.ImageItem(axisOrder="row-major")
            plot.addItem(image)
            image.hoverEvent = lambda event, d=column: self._hovered(event, d)  # type: ignore[method-assign]
            self.plots.append(plot)
            self.images.append(image)
        self.bar = pg.ColorBarItem(colorMap="viridis", interactive=False, width=12)
        self.bar.setImageItem(self.images)
        self.canvas.addItem(self.bar, row=0, col=2)
        self.gradient_plot = pg.PlotWidget(title="‖∂loss/∂h_t‖: how much of the loss reaches each step")
        self.gradient_plot.setLogMode(y=True)
        self.gradient_plot.setLabel("bottom", "time step")
        self.gradient_plot.setMouseEnabled(False, False)
        self.gradient_legend = QLabel(" ")
        self.gradient_lines: list[pg.PlotDataItem] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.canvas, 3)
        layout.addWidget(self.hover)
        layout.addWidget(self.gradient_legend)
        layout.addWidget(self.gradient_plot, 2)

    def caption(self, frame: GateFrame) -> str:  # type: ignore[override]
        if not frame.layer:
            return f"{html.escape(frame.note)} · model at step {frame.step}"
        return (
            f"<b>{frame.layer}</b> ({frame.kind.upper()}) on {html.escape(frame.source)} · model at step {frame.step}"
        )

    def clear(self) -> None:
        self.frame = None
        for image in self.images:
            image.clear()
        for line in self.gradient_lines:
            self.gradient_plot.removeItem(line)
        self.gradient_lines = []
        self.layer.clear()
        self.gate.clear()

    # ---- drawing ------------------------------------------------------------------------------------------
    def show_frame(self, frame: GateFrame) -> None:  # type: ignore[override]
        self.frame = frame
        if [self.layer.itemText(i) for i in range(self.layer.count())] != list(frame.layers):
            self.layer.clear()
            self.layer.addItems(list(frame.layers))
        if frame.layer:
            self.layer.setCurrentText(frame.layer)
        if [self.gate.itemData(i) for i in range(self.gate.count())] != list(frame.gates):
            current = self.gate.currentData()
            self.gate.clear()
            for gate in frame.gates:
                self.gate.addItem(NAMES.get(gate, gate), gate)
            wanted = (
                current if current in frame.gates else ("f" if "f" in frame.gates else frame.gates[:1] or (None,))[0]
            )
            self.gate.setCurrentIndex(max(0, self.gate.findData(wanted)))
        self.stacked.setMaximum(max(0, frame.num_layers - 1))
        self.stacked.setVisible(frame.num_layers > 1)
        self.sort.setCurrentIndex(max(0, self.sort.findData(frame.settings.sort)))
        self._draw()
        self._draw_gradients(frame)

    def heatmap(self, direction: str) -> np.ndarray | None:
        """The drawn array for ``direction`` ("fwd" or "bwd"): units × time, rows in the chosen order."""
        frame, gate = self.frame, self.gate.currentData()
        if frame is None or gate is None:
            return None
        key = f"l{self.stacked.value()}.{direction}"
        values = frame.maps.get(f"{key}.{gate}")
        if values is None:
            return None
        order = frame.order.get(key, np.arange(values.shape[1]))
        return np.ascontiguousarray(values.T[order])

    def _draw(self) -> None:
        frame, gate = self.frame, self.gate.currentData()
        if frame is None or gate is None:
            return
        if gate in GATES_IN_0_1:
            levels, cmap = (0.0, 1.0), pg.colormap.get("viridis")
        else:
            reach = max(1e-6, max(float(np.abs(v).max()) for k, v in frame.maps.items() if k.endswith(f".{gate}")))
            levels, cmap = (-reach, reach), pg.colormap.get(DIVERGING_CMAP)
        self.bar.setColorMap(cmap)
        self.bar.setLevels(levels)
        ticks = [(t + 0.5, token) for t, token in enumerate(frame.steps)] if len(frame.steps) <= MAX_TICKS else None
        for index, direction in enumerate(("fwd", "bwd")):
            shown = direction in frame.directions
            self.plots[index].setVisible(shown)
            data = self.heatmap(direction) if shown else None
            if data is None:
                self.images[index].clear()
                continue
            self.images[index].setImage(data, levels=levels, autoLevels=False)
            self.images[index].setColorMap(cmap)
            self.plots[index].getAxis("bottom").setTicks([ticks] if ticks else None)
            self.plots[index].setTitle(f"{'forward' if direction == 'fwd' else 'backward'}: {NAMES.get(gate, gate)}")

    def _draw_gradients(self, frame: GateFrame) -> None:
        grads = frame.gradients
        for line in self.gradient_lines:
            self.gradient_plot.removeItem(line)
        self.gradient_lines = []
        self.gradient_plot.setVisible(grads is not None)
        if grads is None:
            self.gradient_legend.setText("No gradient through time: the probe input has no target.")
            return
        steps = np.arange(grads.shape[0], dtype=np.float64)
        names = []
        for k in range(grads.shape[1]):
            for d in range(grads.shape[2]):
                colour = LINE_PENS[(k * grads.shape[2] + d) % len(LINE_PENS)]
                values = np.clip(grads[:, k, d].astype(np.float64), 1e-12, None)
                self.gradient_lines.append(self.gradient_plot.plot(steps, values, pen=pg.mkPen(colour, width=2)))
                rgb = "".join(f"{c:02x}" for c in colour)
                names.append(f'<span style="color:#{rgb}">━</span> layer {k} {frame.directions[d]}')
        self.gradient_legend.setText(" &nbsp;".join(names))

    def _hovered(self, event, index: int) -> None:
        if event.isExit() or self.frame is None:
            self.hover.setText(" ")
            return
        pos: QPointF = event.pos()
        self.show_value_at(int(pos.y()), int(pos.x()), ("fwd", "bwd")[index])

    def show_value_at(self, row: int, col: int, direction: str = "fwd") -> None:
        """The line under the heatmap: the unit, the time step (and its token) and the value there."""
        data, frame = self.heatmap(direction), self.frame
        if data is None or frame is None or not (0 <= row < data.shape[0] and 0 <= col < data.shape[1]):
            self.hover.setText(" ")
            return
        unit = int(frame.order.get(f"l{self.stacked.value()}.{direction}", np.arange(data.shape[0]))[row])
        token = f" ({html.escape(frame.steps[col])!r})" if col < len(frame.steps) else ""
        self.hover.setText(f"{direction} unit {unit}, step {col}{token}: {data[row, col]:.4f}")

    # ---- settings --------------------------------------------------------------------------------------------
    def _configure(self) -> None:
        settings = GateSettings(layer=self.layer.currentText() or None, sort=self.sort.currentData())
        self.command.emit(ConfigureProbe(Gates.name, settings))

    def export_array(self) -> np.ndarray | None:
        return self.heatmap("fwd")
