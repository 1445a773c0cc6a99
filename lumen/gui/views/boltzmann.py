"""The Boltzmann view: inside an RBM (or one layer of a DBN or DBM) while it trains — what each hidden unit looks
for (its weights as a picture), validation inputs above their reconstructions, the samples of a Gibbs chain with
one chain's pictures along the way, and the chain's energy over its steps beside the validation data's free energy.
The number of Gibbs steps and where the chains start are the probe's settings."""

from __future__ import annotations

import html
import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from lumen.engine.probes.boltzmann import MAX_STEPS, Boltzmann, BoltzmannFrame, BoltzmannSettings
from lumen.engine.runtime.commands import ConfigureProbe
from lumen.gui.views.base import View
from lumen.gui.widgets.choices import offer
from lumen.gui.widgets.export import ExportButton
from lumen.gui.widgets.mosaic import MosaicRow, per_tile

STARTS = {"data": "validation inputs", "noise": "random noise"}
COLUMNS = 8  # pictures per row of the reconstruction and sample grids
ENERGY_PEN = (40, 110, 200)
FREE_PEN = (230, 126, 34)
DATA_PEN = (44, 160, 44)


def grid(pictures: np.ndarray, columns: int) -> np.ndarray:
    """n × h × w pictures as rows of ``columns``, 1-pixel NaN gaps (transparent) between them."""
    count, h, w = pictures.shape
    if count == 0:
        return np.full((1, 1), np.nan, np.float32)
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    out = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1), np.nan, np.float32)
    for i, picture in enumerate(pictures):
        r, c = divmod(i, columns)
        out[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = picture
    return out


def above_below(top: np.ndarray, bottom: np.ndarray, columns: int) -> np.ndarray:
    """Rows of ``columns`` pictures of ``top``, each followed by the same pictures of ``bottom``."""
    rows = []
    for start in range(0, len(top), columns):
        rows.extend([top[start : start + columns], bottom[start : start + columns]])
    return np.concatenate(rows) if rows else top


class PictureBox:
    """A titled grey picture (its own levels) in a GraphicsLayout: rows ``row`` (the title) and ``row + 1``."""

    def __init__(self, layout: pg.GraphicsLayout, row: int, title: str):
        self.title = layout.addLabel(title, row=row, col=0, justify="left")
        self.box = layout.addViewBox(row=row + 1, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image)

    def show(self, picture: np.ndarray, levels: tuple[float, float], title: str) -> None:
        self.image.setImage(np.ascontiguousarray(picture, dtype=np.float32), levels=levels, autoLevels=False)
        if self.title.text != title:
            self.title.setText(title)


class BoltzmannView(View):
    title = "Boltzmann"
    uses_probe_input = False  # it looks at validation samples of its own

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frame: BoltzmannFrame | None = None
        self.layer = QComboBox(toolTip="The rbm layer whose filters, reconstructions and chain are drawn")
        self.layer.activated.connect(self._configure)
        self.steps = QSpinBox(minimum=1, maximum=MAX_STEPS, value=BoltzmannSettings().steps, suffix=" Gibbs steps")
        self.steps.setToolTip("How many steps of block Gibbs sampling (h ~ p(h|v), v ~ p(v|h)) the chains run")
        self.steps.setKeyboardTracking(False)  # one command when typing is done, not one per digit
        self.steps.valueChanged.connect(self._configure)
        self.start = QComboBox(toolTip="Where the chains start")
        for key, text in STARTS.items():
            self.start.addItem(f"from {text}", key)
        self.start.activated.connect(self._configure)
        self.export = ExportButton(lambda: self.canvas.ci, self.export_array, lambda: self.export_name())
        controls = QHBoxLayout()
        for widget in (QLabel("Layer:"), self.layer, self.steps, self.start):
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(self.export)
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setAcceptDrops(False)
        self.canvas.setMinimumHeight(360)
        # Two by two: filters | energy over the chain's steps, reconstructions | samples (titles of two short lines,
        # so each column keeps half of a narrow pane).
        cells = [self.canvas.ci.addLayout(row=r, col=c) for r in (0, 1) for c in (0, 1)]
        self.filters = MosaicRow(cells[0], 0, "hidden-unit filters")
        self.reconstructions = PictureBox(cells[2], 0, "validation inputs and their reconstructions")
        self.samples = PictureBox(cells[3], 0, "Gibbs chain samples")
        self.plot = cells[1].addPlot(row=0, col=0, title="the chains' energy")
        self.plot.setLabel("bottom", "Gibbs step")
        self.plot.setLabel("left", "energy")
        self.plot.setMouseEnabled(False, False)
        self.legend = self.plot.addLegend(offset=(-1, 1), labelTextSize="8pt")
        self.energy_line = self.plot.plot(pen=pg.mkPen(ENERGY_PEN, width=2))
        self.free_line = self.plot.plot(pen=pg.mkPen(FREE_PEN, width=2))
        self.data_line = pg.InfiniteLine(angle=0, pen=pg.mkPen(DATA_PEN, width=2, style=Qt.PenStyle.DashLine))
        self.data_sample = pg.PlotDataItem(pen=self.data_line.pen)  # the dashed line's legend entry
        self.plot.addItem(self.data_line)
        self.joint: bool | None = None  # what the legend names: a whole DBM's energy (True), or an RBM's E and F
        self.spread = pg.FillBetweenItem(
            pg.PlotDataItem(), pg.PlotDataItem(), brush=pg.mkBrush(ENERGY_PEN[0], ENERGY_PEN[1], ENERGY_PEN[2], 50)
        )
        self.plot.addItem(self.spread)
        grid_layout = self.canvas.ci.layout
        for index in (0, 1):
            grid_layout.setColumnStretchFactor(index, 1)
            grid_layout.setRowStretchFactor(index, 1)
        self.readout = QLabel(" ", wordWrap=True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.readout)

    def caption(self, frame: BoltzmannFrame) -> str:  # type: ignore[override]
        if not frame.layer:
            return f"{html.escape(frame.note, quote=False)} · model at step {frame.step}"
        kind = "DBM" if frame.stack == "dbm" else ("DBN" if len(frame.layers) > 1 else "RBM")
        return f"<b>{frame.layer}</b> of the {kind} · model at step {frame.step}"

    def clear(self) -> None:
        super().clear()
        self.frame = None
        self.layer.clear()
        for line in (self.energy_line, self.free_line):
            line.setData([], [])
        self.spread.setCurves(pg.PlotDataItem(), pg.PlotDataItem())
        self.readout.setText(" ")

    def show_frame(self, frame: BoltzmannFrame) -> None:  # type: ignore[override]
        self.frame = frame
        offer(self.layer, frame.layers, frame.layer)
        self.steps.blockSignals(True)  # the frame's settings, not a new request
        self.steps.setValue(frame.settings.steps)
        self.steps.blockSignals(False)
        self.start.setCurrentIndex(max(0, self.start.findData(frame.settings.start)))
        if not frame.layer:
            self.readout.setText(html.escape(frame.note, quote=False))
            return
        self._draw_filters(frame)
        levels = self._levels(frame)
        upper = "" if frame.layer == frame.layers[0] else ", carried down"
        if len(frame.inputs):
            pairs = above_below(frame.inputs, frame.reconstructions, COLUMNS)
            title = (
                f"<b>{len(frame.inputs)} validation inputs</b>, each above<br>"
                f"its <b>reconstruction</b> E[v | p(h|v)]{upper}"
            )
            self.reconstructions.show(grid(pairs, COLUMNS), levels, title)
        else:
            self.reconstructions.image.clear()
            self.reconstructions.title.setText("no validation inputs to reconstruct")
        self._draw_samples(frame, levels)
        self._draw_energy(frame)
        self.readout.setText(self._readout(frame))

    def _draw_filters(self, frame: BoltzmannFrame) -> None:
        h, w = frame.tile
        count = len(frame.filters)
        columns = math.ceil(math.sqrt(count))
        mosaic = grid(frame.filters, columns)
        mosaic = per_tile(mosaic, (h, w), (math.ceil(count / columns), columns))
        first = f"{count} of {frame.units}" if count < frame.units else f"all {count}"
        if frame.layer == frame.layers[0]:
            shape = f"as {h}×{w} pictures, each scaled to its largest |w|"
        else:
            below = frame.layers[frame.layers.index(frame.layer) - 1]
            shape = f"as {h}×{w} tiles of {below}'s units,<br>each scaled to its largest |w|"
        title = f"<b>filters</b>: {first} hidden units' weights<br>{shape}"
        self.filters.show(mosaic, -1.0, 1.0, title)

    def _draw_samples(self, frame: BoltzmannFrame, levels: tuple[float, float]) -> None:
        h, w = frame.picture
        strip = grid(frame.snapshots, len(frame.snapshots)) if len(frame.snapshots) else np.zeros((0, 1))
        final = grid(frame.samples, COLUMNS)
        width = max(strip.shape[1], final.shape[1])
        gap = np.full((max(2, h // 4), width), np.nan, np.float32)
        parts = [np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=np.nan) for p in (strip, gap, final)]
        steps = ", ".join(str(s) for s in frame.snapshot_steps)
        start = STARTS.get(frame.settings.start, frame.settings.start)
        if not len(frame.inputs):
            start = STARTS["noise"]
        title = (
            f"<b>one chain</b> at steps {steps}<br><b>{len(frame.samples)} chains</b> after "
            f"{frame.settings.steps} steps from {start}"
        )
        self.samples.show(np.concatenate(parts), levels, title)

    def _draw_energy(self, frame: BoltzmannFrame) -> None:
        steps = np.arange(1, len(frame.energy) + 1)
        mean = frame.energy.mean(axis=1)
        self.energy_line.setData(steps, mean)
        self.spread.setCurves(
            pg.PlotDataItem(steps, frame.energy.min(axis=1)), pg.PlotDataItem(steps, frame.energy.max(axis=1))
        )
        if frame.free_energy is not None:
            self.free_line.setData(np.arange(len(frame.free_energy)), frame.free_energy.mean(axis=1))
        else:
            self.free_line.setData([], [])
        validation = frame.validation_free_energy
        self.data_line.setVisible(validation is not None)
        if validation is not None:
            self.data_line.setValue(validation)
        joint = frame.free_energy is None
        if joint != self.joint:
            self.joint = joint
            self.legend.clear()
            self.legend.addItem(self.energy_line, "E(v, h¹, h², …), mean" if joint else "E(v, h), mean of the chains")
            if not joint:
                self.legend.addItem(self.free_line, "F(v), mean of the chains")
                self.legend.addItem(self.data_sample, "F(v), validation data")
        whole = "whole DBM; " if joint else ""
        title = f"<b>energy</b> over {frame.settings.steps} Gibbs steps<br>({whole}band: lowest to highest chain)"
        if self.plot.titleLabel.text != title:
            self.plot.setTitle(title)

    @staticmethod
    def _levels(frame: BoltzmannFrame) -> tuple[float, float]:
        if frame.visible == "bernoulli" or frame.layer != frame.layers[0]:
            return 0.0, 1.0
        values = np.concatenate([a.ravel() for a in (frame.inputs, frame.samples) if a.size])
        values = values[np.isfinite(values)]
        return (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)

    @staticmethod
    def _readout(frame: BoltzmannFrame) -> str:
        parts = []
        if frame.validation_free_energy is not None:
            parts.append(
                f"mean free energy F(v): <b>{frame.validation_free_energy:.2f}</b> on "
                f"{frame.validation_count} validation samples"
            )
        if frame.chain_free_energy is not None:
            parts.append(f"{frame.chain_free_energy:.2f} on the chains' last samples")
        line = "; ".join(parts)
        if frame.validation_free_energy is not None:
            line += (
                ". Training data's free energy: the monitor's <i>free_energy</i> plot, beside its validation "
                "points (a widening gap is overfitting)"
            )
        if frame.note:
            line = f"{line}. {html.escape(frame.note, quote=False)}" if line else html.escape(frame.note, quote=False)
        return line

    def _configure(self) -> None:
        if self.frame is None:
            return
        settings = BoltzmannSettings(
            layer=self.layer.currentText() or None, steps=self.steps.value(), start=self.start.currentData()
        )
        if settings != self.frame.settings:
            self.command.emit(ConfigureProbe(Boltzmann.name, settings))

    def export_array(self) -> np.ndarray | None:
        """The chain's samples after its last step (chains × height × width)."""
        return self.frame.samples if self.frame is not None and self.frame.layer else None

    def export_name(self) -> str:
        return f"boltzmann-{self.frame.layer}" if self.frame is not None and self.frame.layer else "boltzmann"
