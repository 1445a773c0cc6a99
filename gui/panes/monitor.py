"""Training monitor pane: run settings and live loss and accuracy curves."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from engine.runtime.events import EpochMetrics, StepMetrics
from engine.training.loop import TrainConfig

CURVE_REDRAW_MS = 200  # curves grow smoothly at 5 Hz; redrawing axes and curves is the GUI's costliest work
SMOOTHING = 0.9  # exponential moving average of the per-batch curves, as TensorBoard's slider does

TRAIN_PEN = pg.mkPen((90, 160, 230, 90), width=1)
SMOOTH_PEN = pg.mkPen((40, 110, 200), width=2)
VAL_PEN = pg.mkPen((230, 126, 34), width=2)


def _plot(title: str, y_label: str, legend_offset: tuple[int, int]) -> pg.PlotWidget:
    plot = pg.PlotWidget(title=title)
    plot.setLabel("bottom", "step")
    plot.setLabel("left", y_label)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.addLegend(offset=legend_offset)  # in the corner the curve leaves free
    return plot


class MonitorPane(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        defaults = TrainConfig()
        self.epochs = QSpinBox(minimum=1, maximum=1000, value=defaults.epochs)
        self.lr = QDoubleSpinBox(decimals=5, minimum=1e-5, maximum=10.0, singleStep=1e-4, value=defaults.lr)
        self.batch_size = QSpinBox(minimum=1, maximum=4096, value=defaults.batch_size)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=defaults.seed)
        self.readout = QLabel("Not trained yet.")

        settings = QFormLayout()
        settings.addRow("Epochs", self.epochs)
        settings.addRow("Learning rate (Adam)", self.lr)
        settings.addRow("Batch size", self.batch_size)
        settings.addRow("Seed", self.seed)
        header = QHBoxLayout()
        header.addLayout(settings)
        header.addWidget(self.readout, 1)

        self.loss_plot = _plot("Loss (cross-entropy)", "loss", (-10, 10))
        self.acc_plot = _plot("Accuracy", "accuracy", (-10, -10))
        self.acc_plot.setYRange(0, 1, padding=0.02)
        self.acc_plot.enableAutoRange(y=False)
        self.acc_plot.setXLink(self.loss_plot)
        self.curves = {}
        for plot, key in ((self.loss_plot, "loss"), (self.acc_plot, "accuracy")):
            # Long runs stay cheap: downsample to the view and skip NaN checks on data we made.
            self.curves[f"train_{key}"] = plot.plot(pen=TRAIN_PEN, name="batch", skipFiniteCheck=True,
                                                    autoDownsample=True, clipToView=True)
            self.curves[f"smooth_{key}"] = plot.plot(pen=SMOOTH_PEN, name="batch (smoothed)",
                                                     skipFiniteCheck=True, autoDownsample=True, clipToView=True)
            self.curves[f"val_{key}"] = plot.plot(pen=VAL_PEN, symbol="o", symbolSize=7, symbolBrush=VAL_PEN.color(),
                                                  name="validation")
        self._redraw = QTimer(self, singleShot=True, interval=CURVE_REDRAW_MS)
        self._redraw.timeout.connect(self.redraw)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.loss_plot, 1)
        layout.addWidget(self.acc_plot, 1)
        self.clear()

    def config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs.value(), lr=self.lr.value(), batch_size=self.batch_size.value(),
                           seed=self.seed.value())

    def clear(self) -> None:
        self.steps: list[int] = []
        self.values: dict[str, list[float]] = {"loss": [], "accuracy": []}
        self.smooth: dict[str, list[float]] = {"loss": [], "accuracy": []}
        self.val_steps: list[int] = []
        self.val: dict[str, list[float]] = {"loss": [], "accuracy": []}
        for curve in self.curves.values():
            curve.setData([], [])
        self._redraw.stop()
        self.loss_plot.enableAutoRange(x=True)

    def add_metrics(self, events: list) -> None:
        """Append a batch of StepMetrics/EpochMetrics; the curves are redrawn at most every CURVE_REDRAW_MS."""
        last_step = None
        for event in events:
            if isinstance(event, StepMetrics):
                self.steps.append(event.step)
                for key, value in (("loss", event.loss), ("accuracy", event.accuracy)):
                    self.values[key].append(value)
                    previous = self.smooth[key][-1] if self.smooth[key] else value
                    self.smooth[key].append(SMOOTHING * previous + (1 - SMOOTHING) * value)
                if len(self.steps) == 1:
                    # The whole run's x-range from the start: the curves grow into it, and the axes
                    # (whose text is the costliest thing to paint) are not redrawn at every update.
                    self.loss_plot.setXRange(0, event.total_steps, padding=0.01)
                    self.loss_plot.enableAutoRange(x=False)
                last_step = event
            elif isinstance(event, EpochMetrics):
                self.val_steps.append(event.step)
                self.val["loss"].append(event.val_loss)
                self.val["accuracy"].append(event.val_accuracy)
                self.readout.setText(f"Epoch {event.epoch}: validation accuracy <b>{event.val_accuracy:.1%}</b>, "
                                     f"loss {event.val_loss:.3f}<br>training accuracy {event.train_accuracy:.1%}, "
                                     f"loss {event.train_loss:.3f}")
        if last_step is not None and not self.val_steps:
            self.readout.setText(f"Epoch {last_step.epoch}, step {last_step.step}: batch loss {last_step.loss:.3f}")
        if not self._redraw.isActive():
            self._redraw.start()

    def redraw(self) -> None:
        steps = np.asarray(self.steps, dtype=np.float64)
        for key in ("loss", "accuracy"):
            self.curves[f"train_{key}"].setData(steps, np.asarray(self.values[key]))
            self.curves[f"smooth_{key}"].setData(steps, np.asarray(self.smooth[key]))
            self.curves[f"val_{key}"].setData(np.asarray(self.val_steps, dtype=np.float64), np.asarray(self.val[key]))
