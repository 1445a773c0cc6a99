"""The gates view: inside one LSTM, GRU or RNN layer while it trains — a heatmap (unit × time step) of the gate or
state chosen, the input's tokens along the time axis, both directions side by side for a bidirectional layer,
the value under the mouse, units sorted by how saturated they are or by how closely they follow a signal (bracket
depth, position, a token); a span of the input marked with the mouse lists the units high there and low elsewhere
and where in the validation data they are high together (LSTMVis). Below, the units clicked, over time, and how
much of the loss reaches each time step (‖∂L/∂h_t‖, the vanishing-gradient picture), with curves kept from
earlier models to compare (an RNN's beside an LSTM's)."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from lumen.engine.probes.gates import GateFrame, Gates, GateSettings, SpanSelection
from lumen.engine.runtime.commands import ConfigureProbe, ProbeSample
from lumen.gui.views.base import View
from lumen.gui.widgets.choices import offer
from lumen.gui.widgets.export import ExportButton
from lumen.gui.widgets.mosaic import DIVERGING_CMAP

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
SORTS = {"unit": "units in order", "saturation": "most saturated first", "signal": "most correlated with…"}
MAX_TICKS = 60  # token labels on the time axis, beyond which they would overlap
LINE_PENS = [(40, 110, 200), (230, 126, 34), (44, 160, 44), (214, 39, 40)]
MAX_UNITS = 4  # units drawn over time at once (the oldest click gives way)
MAX_KEPT = 6  # gradient curves kept from earlier models


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
        self.signal = QComboBox(toolTip="The signal units are compared with, over the validation sequences")
        self.signal.activated.connect(self._configure)
        self.signal.hide()
        for box in (self.layer, self.gate, self.sort, self.signal):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.export = ExportButton(lambda: self.canvas.ci, self.export_array, lambda: "gates")
        controls = QHBoxLayout()
        for widget in (QLabel("Layer:"), self.layer, self.stacked, QLabel("Show:"), self.gate, self.sort, self.signal):
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(self.export)
        self.hover = QLabel(" ")
        # LSTMVis-style selection: a span of the input marked on the forward heatmap.
        self.select = QPushButton("Select span", checkable=True)
        self.select.setToolTip(
            "Mark steps of the input (drag the band's edges): the units high there and low elsewhere are listed,\n"
            "with the places in the validation data where they are high together"
        )
        self.select.toggled.connect(self._toggle_span)
        self.threshold = QDoubleSpinBox(minimum=-10.0, maximum=10.0, singleStep=0.05, value=0.3, prefix="on ≥ ")
        self.threshold.setDecimals(3)  # gates sit in 0…1, often close together
        self.threshold.setToolTip("A unit is on where its value is at least this")
        self.threshold.valueChanged.connect(self._send_span)
        self.threshold.setEnabled(False)
        self.selection = QLabel(" ", wordWrap=True)
        self.matches = QListWidget()
        self.matches.setToolTip("Where the selected units are high together; double-click to look at that sequence")
        self.matches.setMaximumHeight(96)
        self.matches.itemDoubleClicked.connect(self._open_match)
        self.matches.hide()
        selecting = QHBoxLayout()
        selecting.addWidget(self.select)
        selecting.addWidget(self.threshold)
        selecting.addWidget(self.selection, 1)
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
            image.mouseClickEvent = lambda event, d=column: self._clicked(event, d)  # type: ignore[method-assign]
            self.plots.append(plot)
            self.images.append(image)
        self.span = pg.LinearRegionItem((0, 3), brush=(255, 190, 0, 70), pen=pg.mkPen((230, 140, 0), width=3))
        self.span.sigRegionChangeFinished.connect(self._send_span)
        self.span.hide()
        self.plots[0].addItem(self.span)
        self.bar = pg.ColorBarItem(colorMap="viridis", interactive=False, width=12)
        self.bar.setImageItem(self.images)
        self.canvas.addItem(self.bar, row=0, col=2)
        self.gradient_plot = pg.PlotWidget(title="‖∂loss/∂h_t‖: the loss reaching each step")
        self.gradient_plot.setLogMode(y=True)
        self.gradient_plot.setLabel("bottom", "time step")
        self.gradient_plot.setMouseEnabled(False, False)
        self.gradient_legend = QLabel(" ", wordWrap=True)
        self.gradient_lines: list[pg.PlotDataItem] = []
        # Curves kept from earlier frames (other models too): (label, ‖∂L/∂h_t‖ per step), drawn dashed.
        self.kept: list[tuple[str, np.ndarray]] = []
        self.kept_lines: list[pg.PlotDataItem] = []
        self.keep = QPushButton("Keep curve")
        self.keep.setToolTip("Keep this curve drawn, to compare with the next model's (e.g. an RNN's beside an LSTM's)")
        self.keep.clicked.connect(self.keep_curve)
        self.forget = QPushButton("Clear kept")
        self.forget.clicked.connect(self.clear_kept)
        # Units clicked on a heatmap, drawn over time (and the signal they were sorted by).
        self.units: list[tuple[str, int]] = []  # (direction, unit)
        self.unit_plot = pg.PlotWidget(title="units clicked, over time")
        self.unit_plot.setLabel("bottom", "time step")
        self.unit_plot.setMouseEnabled(False, False)
        self.unit_plot.addLegend(offset=(1, 1), labelTextSize="8pt")
        bottom = QHBoxLayout()
        bottom.addWidget(self.unit_plot, 1)
        right = QVBoxLayout()
        right.addWidget(self.gradient_plot, 1)
        legend = QHBoxLayout()
        legend.addWidget(self.gradient_legend, 1)
        legend.addWidget(self.keep)
        legend.addWidget(self.forget)
        right.addLayout(legend)
        bottom.addLayout(right, 1)
        # The heatmaps above, the curves below, split where the user drags (the heatmaps keep a readable height).
        top = QWidget()
        above = QVBoxLayout(top)
        above.setContentsMargins(0, 0, 0, 0)
        above.addWidget(self.canvas, 1)
        above.addWidget(self.hover)
        above.addLayout(selecting)
        above.addWidget(self.matches)
        self.canvas.setMinimumHeight(220)
        below = QWidget()
        below.setLayout(bottom)
        bottom.setContentsMargins(0, 0, 0, 0)
        split = QSplitter(Qt.Orientation.Vertical, childrenCollapsible=False)
        split.addWidget(top)
        split.addWidget(below)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(split, 1)

    def caption(self, frame: GateFrame) -> str:  # type: ignore[override]
        if not frame.layer:
            return f"{html.escape(frame.note)} · model at step {frame.step}"
        return (
            f"<b>{frame.layer}</b> ({frame.kind.upper()}) on {html.escape(frame.source)} · model at step {frame.step}"
        )

    def clear(self) -> None:
        """Another model: its maps and curves go; the kept gradient curves stay, to compare with it."""
        self.frame = None
        for image in self.images:
            image.clear()
        for line in self.gradient_lines:
            self.gradient_plot.removeItem(line)
        self.gradient_lines = []
        self.layer.clear()
        self.gate.clear()
        self.signal.clear()
        self.units = []
        self.unit_plot.clear()
        self.select.setChecked(False)

    # ---- drawing ------------------------------------------------------------------------------------------
    def show_frame(self, frame: GateFrame) -> None:  # type: ignore[override]
        self.frame = frame
        offer(self.layer, frame.layers, frame.layer)
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
        offer(self.signal, frame.signals, frame.settings.signal)
        self.signal.setVisible(frame.settings.sort == "signal" and bool(frame.signals))
        self._draw()
        self._draw_gradients(frame)
        self._draw_selection(frame)

    def heatmap(self, direction: str) -> np.ndarray | None:
        """The drawn array for ``direction`` ("fwd" or "bwd"): units × time, rows in the chosen order."""
        frame, gate = self.frame, self.gate.currentData()
        if frame is None or gate is None:
            return None
        values = frame.maps.get(self._key(direction, gate))
        if values is None:
            return None
        return np.ascontiguousarray(values.T[self._order(direction)])

    def _key(self, direction: str, gate: str | None = None) -> str:
        """The frame's name of the map shown for ``direction``: "l0.fwd.f"."""
        return f"l{self.stacked.value()}.{direction}.{gate or self.gate.currentData()}"

    def _order(self, direction: str) -> np.ndarray:
        """The units in the rows of ``direction``'s heatmap, top first."""
        frame, key = self.frame, self._key(direction)
        if frame is None or key not in frame.maps:
            return np.arange(0)
        return frame.order.get(key, np.arange(frame.maps[key].shape[1]))

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
            order = self._order(direction)
            every = max(1, len(order) // 16)  # sorted rows are labelled with their units, not their row numbers
            units = [(row + 0.5, str(int(unit))) for row, unit in enumerate(order) if row % every == 0]
            sorted_rows = frame.settings.sort != "unit"
            self.plots[index].getAxis("left").setTicks([units] if sorted_rows else None)
            self.plots[index].setTitle(f"{'forward' if direction == 'fwd' else 'backward'}: {NAMES.get(gate, gate)}")
        self._draw_units()

    def _draw_gradients(self, frame: GateFrame) -> None:
        grads = frame.gradients
        for line in self.gradient_lines:
            self.gradient_plot.removeItem(line)
        self.gradient_lines = []
        self.keep.setEnabled(grads is not None)
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
        for (label, _), line in zip(self.kept, self.kept_lines, strict=True):
            rgb = "".join(f"{c:02x}" for c in line.opts["pen"].color().getRgb()[:3])
            names.append(f'<span style="color:#{rgb}">┅</span> {html.escape(label)}')
        self.gradient_legend.setText(" &nbsp;".join(names))

    def keep_curve(self) -> None:
        """Keep the first line of the gradient plot (layer 0, forward) drawn, labelled with the model and step."""
        frame = self.frame
        if frame is None or frame.gradients is None:
            return
        label = f"{frame.layer} ({frame.kind.upper()}), step {frame.step}"
        if len(self.kept) >= MAX_KEPT:
            self.gradient_plot.removeItem(self.kept_lines.pop(0))
            self.kept.pop(0)
        values = np.clip(frame.gradients[:, 0, 0].astype(np.float64), 1e-12, None)
        colour = pg.intColor(len(self.kept) + 3, hues=MAX_KEPT + 3)
        pen = pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine)
        self.kept.append((label, values))
        self.kept_lines.append(self.gradient_plot.plot(np.arange(len(values), dtype=np.float64), values, pen=pen))
        self._draw_gradients(frame)

    def clear_kept(self) -> None:
        for line in self.kept_lines:
            self.gradient_plot.removeItem(line)
        self.kept, self.kept_lines = [], []
        if self.frame is not None:
            self._draw_gradients(self.frame)

    # ---- units over time ------------------------------------------------------------------------------------
    def _clicked(self, event, index: int) -> None:
        if self.frame is None:
            return
        direction = ("fwd", "bwd")[index]
        order = self._order(direction)
        row = int(event.pos().y())
        if 0 <= row < len(order):
            self.toggle_unit(direction, int(order[row]))

    def toggle_unit(self, direction: str, unit: int) -> None:
        """Draw unit ``unit`` of ``direction`` over time (or stop drawing it)."""
        chosen = (direction, unit)
        if chosen in self.units:
            self.units.remove(chosen)
        else:
            self.units = [*self.units, chosen][-MAX_UNITS:]
        self._draw_units()

    def _draw_units(self) -> None:
        self.unit_plot.clear()
        frame, gate = self.frame, self.gate.currentData()
        if frame is None or gate is None:
            return
        drawn = []
        for n, (direction, unit) in enumerate(self.units):
            values = frame.maps.get(self._key(direction, gate))
            if values is None or unit >= values.shape[1]:
                continue
            drawn.append(values[:, unit])
            r = frame.correlation.get(self._key(direction, gate))
            told = f", r = {r[unit]:+.2f}" if r is not None else ""
            pen = pg.mkPen(LINE_PENS[n % len(LINE_PENS)], width=2)
            self.unit_plot.plot(values[:, unit], pen=pen, name=f"{direction} unit {unit}{told}")
        if frame.signal is not None and drawn:
            # The signal, scaled to the units' range: its shape over the steps, not its size, is the point.
            low, high = float(np.min(drawn)), float(np.max(drawn))
            signal = frame.signal.astype(np.float64)
            span = float(signal.max() - signal.min()) or 1.0
            scaled = low + (signal - signal.min()) / span * (high - low)
            pen = pg.mkPen((120, 120, 120), width=1, style=Qt.PenStyle.DashLine)
            self.unit_plot.plot(scaled, pen=pen, name=f"{frame.settings.signal} (scaled)")

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
        unit = int(self._order(direction)[row])
        token = f" ({html.escape(frame.steps[col])!r})" if col < len(frame.steps) else ""
        r = frame.correlation.get(self._key(direction))
        told = f" · r = {r[unit]:+.3f} with {frame.settings.signal} over {frame.searched}" if r is not None else ""
        self.hover.setText(f"{direction} unit {unit}, step {col}{token}: {data[row, col]:.4f}{told}")

    # ---- settings --------------------------------------------------------------------------------------------
    def settings(self) -> GateSettings:
        """The probe's settings as the controls say."""
        selection = None
        if self.select.isChecked() and self.gate.currentData() is not None:
            low, high = self.span.getRegion()
            start = max(0, int(round(low)))
            end = max(start, int(round(high)) - 1)
            selection = SpanSelection(self._key("fwd"), start, end, self.threshold.value())
        return GateSettings(
            layer=self.layer.currentText() or None,
            sort=self.sort.currentData(),
            signal=self.signal.currentText() or "position",
            selection=selection,
        )

    def _configure(self) -> None:
        self.command.emit(ConfigureProbe(Gates.name, self.settings()))

    # ---- selecting a span (LSTMVis) -----------------------------------------------------------------------
    def _toggle_span(self, on: bool) -> None:
        self.span.setVisible(on)
        self.threshold.setEnabled(on)
        self.matches.setVisible(on)
        if on and self.frame is not None and self.frame.steps:
            steps = len(self.frame.steps)
            self.span.setBounds((0, steps))
            self.span.setRegion((max(0, steps // 2 - 2), max(1, steps // 2 + 1)))
        self._configure()

    def _send_span(self) -> None:
        if self.select.isChecked():
            self._configure()

    def _draw_selection(self, frame: GateFrame) -> None:
        chosen = frame.selected
        if not self.select.isChecked() or chosen is None:
            self.selection.setText(" ")
            self.matches.clear()
            return
        units = ", ".join(str(u) for u in chosen.units[:12]) + ("…" if len(chosen.units) > 12 else "")
        where = f"steps {chosen.start}–{chosen.end}"
        if not chosen.units:
            self.selection.setText(f"No unit is on over all of {where} and off elsewhere: lower the threshold")
        else:
            self.selection.setText(
                f"{len(chosen.units)} unit{'s' if len(chosen.units) != 1 else ''} on over {where} and off elsewhere: "
                f"{units} · {len(chosen.matches)} alike spans in {frame.searched}"
            )
        self.matches.clear()
        for match, text in zip(chosen.matches, chosen.texts, strict=True):
            self.matches.addItem(f"#{match.sample}  steps {match.start}–{match.end}  {text}  ({match.share:.0%} on)")

    def _open_match(self, item) -> None:
        """Look at the validation sequence of a match (the matches are found among the first samples)."""
        frame = self.frame
        row = self.matches.row(item)
        if frame is not None and frame.selected is not None and "validation" in frame.searched:
            self.command.emit(ProbeSample(frame.selected.matches[row].sample))

    def export_array(self) -> np.ndarray | None:
        return self.heatmap("fwd")
