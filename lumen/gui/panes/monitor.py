"""Training monitor pane: run settings and live curves of whatever metrics the engine names.

Each metric name gets a plot: its per-batch values, their smoothed curve and its validation points (a
step's ``loss`` and an epoch's ``val["loss"]`` share the loss plot). Known names get their titles and ranges
from ``PLOT_STYLES``; a name never seen before (an autoencoder's ``kl``, an RBM's ``free_energy``) gets a
plot of its own, titled by its name, the first time it arrives. Curves are kept decimated (a few thousand
points each however long the run), each plot has a log-scale toggle, and epochs add their training mean beside
the validation value.

Beside the curves, tabs host the views of how training goes (``gui.views.MONITOR_VIEWS``: gradient norms,
histograms; the window routes their frames here) and the runs list (``gui.panes.monitor_runs``), whose selected
runs are drawn over the live curves for comparison.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from lumen.engine.data.datasets import DATASETS
from lumen.engine.data.preview import DatasetPreview
from lumen.engine.events import EpochMetrics, Frame, ModelLoaded, StepMetrics
from lumen.engine.runtime.history import readable as readable_value
from lumen.engine.training.config import OPTIMIZERS, SCHEDULES, TrainConfig
from lumen.gui import views as view_registry
from lumen.gui.errors import draw_safely
from lumen.gui.panes.monitor_runs import RunsPanel
from lumen.gui.views.base import View
from lumen.gui.widgets.dataset_preview import DatasetPreviewWidget
from lumen.gui.widgets.decimate import Decimated, DecimatedMean

NOT_TRAINED = "Not trained yet."
DEFAULT_DATA = "the model's own"  # the dataset box's first entry: the preset's default data
DEVICES = ("auto", "cpu", "cuda")
# How often the live views (feature maps, attribution, ...) may refresh while training, as the floor of every
# probe's interval. Drawing them holds the GIL the training thread needs: on LeNet-5 with 2 cores, 10 frames a
# second cost about 16 % of training speed, 5 about 13 % and 2 about 9 % (docs/PERFORMANCE.md), so 2 is the
# default; the curves grow at their own pace whatever this says.
LIVE_RATES = {"10 frames/s": 0.1, "5 frames/s": 0.2, "2 frames/s": 0.5, "1 frame/s": 1.0}
DEFAULT_LIVE_RATE = "2 frames/s"

OPEN_RANGE_STEPS = 200  # the first x-range of a run of unknown length (lumen.watch); it doubles as needed
CURVE_REDRAW_MS = 200  # curves grow smoothly at 5 Hz; redrawing axes and curves is the GUI's costliest work
# ... but only once the new steps reach the next pixel column (or this long has passed, for the newest column's
# height): a long run's x-axis holds hundreds of steps per pixel, and repainting a plot whose curves span it all
# costs the same whatever moved.
CURVE_MAX_WAIT_S = 1.0
# Epoch points (symbols: a scatter rebuilt whole, a few ms a plot) are redrawn at most this often. Short epochs
# (``recall``: 27 batches of ~2 ms) end several times a second, and redrawing them at every curve tick cost more
# than the curves; the points that arrive meanwhile are drawn together, none is dropped.
EPOCH_REDRAW_S = 1.0
# Epoch points drawn as symbols up to this many per curve; beyond (a fast run's short epochs: hundreds, a pixel or
# two apart) they are joined by a line instead, every point still on it: painting a symbol costs ~2.5 µs, and 2,000
# of them made a plot's paint three times dearer.
EPOCH_SYMBOLS_UP_TO = 100
SMOOTHING = 0.9  # exponential moving average of the per-batch curves, as TensorBoard's slider does

TRAIN_PEN = pg.mkPen((90, 160, 230, 90), width=1)
SMOOTH_PEN = pg.mkPen((40, 110, 200), width=2)
VAL_PEN = pg.mkPen((230, 126, 34), width=2)
EPOCH_MEAN_PEN = pg.mkPen(SMOOTH_PEN.color(), width=1)  # the epoch means' line once they are too many for symbols


@dataclass(frozen=True)
class PlotStyle:
    title: str
    y_label: str
    y_range: tuple[float, float] | None = None  # fixed, for bounded measures; None: follow the data
    percent: bool = False  # the readout shows it as a percentage


PLOT_STYLES: dict[str, PlotStyle] = {
    "loss": PlotStyle("Loss", "loss"),  # titled with what the objective minimises once a model is loaded
    "accuracy": PlotStyle("Accuracy", "accuracy", y_range=(0.0, 1.0), percent=True),
    "free_energy": PlotStyle("Free energy of the data", "free energy"),
    "kl": PlotStyle("KL divergence", "KL"),
}
SHOWN_BEFORE_TRAINING = ("loss",)  # every objective reports a loss; other plots appear as their metrics do
PLOT_MIN_HEIGHT = 150  # below this a plot's axis text and curves stop being readable: the column scrolls instead
# One legend for every plot, above them: a legend inside each plot covered the curves of the smaller ones.
LEGEND = (
    '<span style="color:#5aa0e6">━</span> batch &nbsp; <span style="color:#286ec8">━</span> smoothed &nbsp; '
    '<span style="color:#286ec8">■</span> epoch mean &nbsp; <span style="color:#e67e22">●━</span> validation'
)


def spoken(name: str) -> str:
    """A metric's name as people read it: ``free_running_accuracy`` → ``free running accuracy``."""
    return name.replace("_", " ")


def style_of(name: str) -> PlotStyle:
    return PLOT_STYLES.get(name) or PlotStyle(spoken(name).capitalize(), spoken(name))


class MetricPlot:
    """One metric's plot: batch values, their moving average, each epoch's training mean and validation value.

    Batch values are kept decimated (``gui.widgets.decimate``): at most a few thousand points each, however
    long the run, so a redraw costs the same at step 100 and at step 1,000,000. ``log`` switches the y-axis
    to a log scale (the checkbox above the plot).
    """

    def __init__(self, name: str):
        self.name, self.style = name, style_of(name)
        self.widget = pg.PlotWidget(title=self.style.title)
        self.widget.setLabel("bottom", "step")
        self.widget.setLabel("left", self.style.y_label)
        self.widget.getAxis("left").enableAutoSIPrefix(False)  # "(x0.001)" cut the axis title off on small plots
        self.widget.showGrid(x=True, y=True, alpha=0.2)
        # pyqtgraph draws the grid with the axes, whose bounding rects then span the plot: every curve update
        # repainted them, tick text and all (~3 of a plot's ~4.5 ms per paint). Cached as pixmaps, they are drawn
        # again only when their range, scale or size changes (the same picture; the curves cost ~1.5 ms).
        for side in ("left", "bottom"):
            self.widget.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        if self.style.y_range is not None:
            self.widget.setYRange(*self.style.y_range, padding=0.02)
            self.widget.enableAutoRange(y=False)
        # Long runs stay cheap: downsample to the view and skip NaN checks on data we made. Downsampling and
        # clipping are set on the plot, not per curve: PlotItem.addItem overwrites a curve's own settings.
        self.widget.setDownsampling(auto=True, mode="peak")
        self.widget.setClipToView(True)
        self.batch = self.widget.plot(pen=TRAIN_PEN, name="batch", skipFiniteCheck=True)
        self.smooth = self.widget.plot(pen=SMOOTH_PEN, name="batch (smoothed)", skipFiniteCheck=True)
        self.train = self.widget.plot(
            pen=None, symbol="s", symbolSize=6, symbolBrush=SMOOTH_PEN.color(), name="training (epoch mean)"
        )
        self.val = self.widget.plot(
            pen=VAL_PEN, symbol="o", symbolSize=7, symbolBrush=VAL_PEN.color(), name="validation"
        )
        # The epoch's training mean above its validation value: added later, the validation circle (the larger
        # symbol) hid the training square wherever the two were close, as they are for a model that generalises.
        self.train.setZValue(self.val.zValue() + 1)
        self.log = QCheckBox("log y", toolTip=f"Show {self.style.title.lower()} on a log scale")
        self.log.toggled.connect(self.set_log)
        self.container = QWidget()
        column = QVBoxLayout(self.container)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.log, 0, Qt.AlignmentFlag.AlignRight)
        column.addWidget(self.widget, 1)
        self.container.setMinimumHeight(PLOT_MIN_HEIGHT)
        self._symbols: bool | None = None  # whether the epoch points are drawn as symbols (set by clear)
        self.clear()

    def set_title(self, title: str) -> None:
        self.widget.setTitle(title)
        self.log.setToolTip(f"Show {title.lower()} on a log scale")

    def clear(self) -> None:
        self.values = Decimated()
        self.smoothed = DecimatedMean()
        self._ema: float | None = None
        self.train_steps: list[int] = []  # one per epoch: few
        self.train_values: list[float] = []
        self.val_steps: list[int] = []
        self.val_values: list[float] = []
        self._dirty = True
        self._epochs_dirty = True  # the epoch points changed (they are symbols: costlier to hand over)
        self._epoch_symbols(True)
        self._y_range: tuple[float, float] | None = None  # the y-range set while it follows the data
        for curve in (self.batch, self.smooth, self.train, self.val):
            curve.setData([], [])

    @property
    def steps(self) -> int:
        return len(self.values)

    def add_step(self, step: int, value: float) -> None:
        self.values.add(step, value)
        self._ema = value if self._ema is None else SMOOTHING * self._ema + (1 - SMOOTHING) * value
        self.smoothed.add(step, self._ema)
        self._dirty = True

    def add_epoch(self, step: int, train: float | None, val: float | None) -> None:
        if train is not None:
            self.train_steps.append(step)
            self.train_values.append(train)
        if val is not None:
            self.val_steps.append(step)
            self.val_values.append(val)
        self._epochs_dirty = True

    def set_log(self, on: bool) -> None:
        """A log y-axis (values ≤ 0 are not drawn); a bounded measure's fixed range gives way to auto-range."""
        if self.log.isChecked() != on:
            self.log.setChecked(on)  # calls back here through toggled
            return
        self.widget.setLogMode(y=on)
        self._y_range = None
        if on:
            self.widget.enableAutoRange(y=True)
        elif self.style.y_range is not None:
            self.widget.setYRange(*self.style.y_range, padding=0.02)
            self.widget.enableAutoRange(y=False)
        else:
            self._dirty = True
            self.redraw()

    def redraw(self, epochs: bool = True) -> None:
        """Hand the new points to the curves; ``epochs``: the epoch points too (else they wait, still pending)."""
        epochs = epochs and self._epochs_dirty
        if not (self._dirty or epochs):
            return
        if self._dirty:
            self._dirty = False
            self.batch.setData(*self.values.arrays())
            self.smooth.setData(*self.smoothed.arrays())
        if epochs:
            self._epochs_dirty = False
            self._epoch_symbols(max(len(self.train_steps), len(self.val_steps)) <= EPOCH_SYMBOLS_UP_TO)
            self.train.setData(np.asarray(self.train_steps, dtype=np.float64), np.asarray(self.train_values))
            self.val.setData(np.asarray(self.val_steps, dtype=np.float64), np.asarray(self.val_values))
        self.follow_data()

    def _epoch_symbols(self, on: bool) -> None:
        """Symbols on the epoch points (few of them), or a line through them (many)."""
        if self._symbols is on:
            return
        self._symbols = on
        self.train.setSymbol("s" if on else None)
        self.train.setPen(None if on else EPOCH_MEAN_PEN)
        self.val.setSymbol("o" if on else None)

    def follow_data(self) -> None:
        """Fit the y-axis to every curve on the plot (compared runs too), changing it only when the data leaves it
        or shrinks to under a third of it: pyqtgraph's auto-range moves it at every redraw, and an axis that moves
        lays out and paints its text again — the GUI thread's largest cost while training. Log scale and bounded
        measures keep their own range."""
        if self.style.y_range is not None or self.log.isChecked():
            return
        lows, highs = [], []
        for item in self.widget.getPlotItem().listDataItems():
            _, y = item.getData()
            if y is not None and len(y):
                finite = y[np.isfinite(y)]
                if len(finite):
                    lows.append(float(finite.min()))
                    highs.append(float(finite.max()))
        if not lows:
            return
        low, high = min(lows), max(highs)
        if self._y_range is not None:
            bottom, top = self._y_range
            if bottom <= low and high <= top and (high - low) * 3 >= top - bottom:
                return
        margin = (high - low) * 0.05 or max(abs(high) * 0.1, 0.5)
        self._y_range = (low - margin, high + margin)
        self.widget.setYRange(*self._y_range, padding=0)


def readable(name: str, value: float) -> str:
    return readable_value(value, style_of(name).percent)


def _headline_first(values: Mapping[str, float]) -> list[tuple[str, float]]:
    """Percentages (accuracy) lead the readout, then the rest in the engine's order."""
    return sorted(values.items(), key=lambda item: not style_of(item[0]).percent)


class MonitorPane(QWidget):
    dataset_changed = Signal(object)  # a built-in dataset's name, or None for the model's own
    lr_changed = Signal(float)  # "Apply now": the running run's learning rate
    checkpoint_requested = Signal()  # "Checkpoint now"
    command = Signal(object)  # a worker command one of the hosted views asks for (``View.command``)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        defaults = TrainConfig()
        self.epochs = QSpinBox(minimum=1, maximum=1000, value=defaults.epochs)
        self.lr = QDoubleSpinBox(decimals=5, minimum=1e-5, maximum=10.0, singleStep=1e-4, value=defaults.lr)
        self.apply_lr = QPushButton("Apply now", toolTip="Change the learning rate of the run in progress")
        self.apply_lr.clicked.connect(lambda: self.lr_changed.emit(self.lr.value()))
        self.dataset = QComboBox(toolTip="What the model trains on; it is resized to fit the data")
        self.dataset.addItems([DEFAULT_DATA, *DATASETS])
        self.dataset.currentIndexChanged.connect(lambda _: self.dataset_changed.emit(self.dataset_name()))
        self.optimizer = QComboBox()
        self.optimizer.addItems(list(OPTIMIZERS))
        self.schedule = QComboBox(toolTip="How the learning rate changes over the epochs")
        self.schedule.addItems(list(SCHEDULES))
        self.device = QComboBox(toolTip="auto: the CPU here (the live views read the model there); cuda: the GPU")
        self.device.addItems(list(DEVICES))
        self.batch_size = QSpinBox(minimum=1, maximum=4096, value=defaults.batch_size)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=defaults.seed)
        self.live_rate = QComboBox(
            toolTip="How often the live views refresh while the model trains; more often costs training speed"
        )
        for text, interval in LIVE_RATES.items():
            self.live_rate.addItem(text, interval)
        self.live_rate.setCurrentText(DEFAULT_LIVE_RATE)
        self.readout = QLabel(NOT_TRAINED, wordWrap=True, minimumWidth=200)  # wraps: it must not widen the window

        settings = QFormLayout()
        settings.addRow("Data", self.dataset)
        settings.addRow("Epochs", self.epochs)
        lr_row = QHBoxLayout()
        lr_row.addWidget(self.lr, 1)
        lr_row.addWidget(self.apply_lr)
        settings.addRow("Learning rate", lr_row)
        settings.addRow("Optimizer", self.optimizer)
        settings.addRow("Schedule", self.schedule)
        settings.addRow("Batch size", self.batch_size)
        settings.addRow("Seed", self.seed)
        settings.addRow("Device", self.device)
        settings.addRow("Live views", self.live_rate)
        header = QHBoxLayout()
        # The run's settings, in a widget of their own: hidden where Lumen does not run the loop (lumen.watch).
        self.settings_form = QWidget()
        settings.setContentsMargins(0, 0, 0, 0)
        self.settings_form.setLayout(settings)
        header.addWidget(self.settings_form)
        self.data_preview = DatasetPreviewWidget()  # the loaded data's samples (a DatasetPreview frame)
        header.addWidget(self.data_preview)
        header.addWidget(self.readout, 1)

        self._layout = QVBoxLayout(self)
        self._layout.addLayout(header)
        self._layout.addWidget(self._make_plots_area(), 1)
        self.clear()

    def show_settings(self, config: Mapping[str, Any]) -> None:
        """The settings a saved run was trained with (run.json's config), so that training it on goes on alike;
        a value these boxes cannot hold is left as it is."""
        for box, key in ((self.epochs, "epochs"), (self.batch_size, "batch_size"), (self.seed, "seed")):
            value = config.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and box.minimum() <= value <= box.maximum():
                box.setValue(value)
        lr = config.get("lr")
        if isinstance(lr, float | int) and not isinstance(lr, bool) and self.lr.minimum() <= lr <= self.lr.maximum():
            self.lr.setValue(float(lr))
        for combo, key in ((self.optimizer, "optimizer"), (self.schedule, "schedule")):
            value = config.get(key)
            if isinstance(value, str) and combo.findText(value) >= 0:
                combo.setCurrentText(value)

    def config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs.value(),
            lr=self.lr.value(),
            batch_size=self.batch_size.value(),
            seed=self.seed.value(),
            optimizer=self.optimizer.currentText(),
            schedule=self.schedule.currentText(),
            device=self.device.currentText(),
            frame_interval_s=self.live_rate.currentData(),
        )

    def dataset_name(self) -> str | None:
        """The chosen built-in dataset, or None for the model's own (its preset's default)."""
        return None if self.dataset.currentIndex() == 0 else self.dataset.currentText()

    # ---- the plots area: curves on the left; views of how training goes and the runs on the right ----------
    def _make_plots_area(self) -> QWidget:
        self.plots: dict[str, MetricPlot] = {}
        self._redraw = QTimer(self, singleShot=True, interval=CURVE_REDRAW_MS)
        self._redraw.timeout.connect(self._redraw_if_due)
        self._newest_step = self._drawn_step = 0
        self._step_offset = 0
        self._drawn_at = self._epochs_drawn_at = -math.inf
        self._epoch_pending = False  # epoch points arrived: drawn at the next tick whatever the pixels say
        plots = QWidget()
        self.curves_layout = QVBoxLayout(plots)
        self.curves_layout.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(plots)
        self.legend = QLabel(LEGEND, textFormat=Qt.TextFormat.RichText, wordWrap=True)
        curves = QWidget()
        column = QVBoxLayout(curves)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.legend)
        column.addWidget(scroll, 1)
        self.loss_name = ""  # what the loaded model's objective minimises, for the loss plot's title
        for name in SHOWN_BEFORE_TRAINING:
            self._plot(name)
        self.checkpoint = QPushButton("Checkpoint now", toolTip="Save the run's weights now (the run store)")
        self.checkpoint.clicked.connect(self.checkpoint_requested)
        self.checkpoint.setEnabled(False)
        # Views of how training goes (gradient norms, histograms): gui.views.MONITOR_VIEWS, one tab each.
        self.views: dict[type[Frame], View] = {
            frame_type: view_type() for frame_type, view_type in view_registry.MONITOR_VIEWS.items()
        }
        self.frames: dict[type[Frame], Frame] = {}  # the newest frame each view drew
        self.tabs = QTabWidget(documentMode=True)
        for view in self.views.values():
            view.command.connect(self.command)
            self.tabs.addTab(view, view.title)
        self.runs = RunsPanel(self)
        self.runs.overlay_changed.connect(self._overlay)
        self.tabs.addTab(self.runs, "Runs")
        right = QWidget()
        side = QVBoxLayout(right)
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.checkpoint, 0, Qt.AlignmentFlag.AlignRight)
        side.addWidget(self.tabs, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=True)
        self.splitter.addWidget(curves)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.overlays: dict[tuple[str, str], pg.PlotDataItem] = {}  # (run id, metric) -> a compared run's curve
        return self.splitter

    def hosts(self, frame_type: type) -> bool:
        """Whether a view here draws frames of ``frame_type`` (the window routes the rest to the viewer)."""
        return frame_type in self.views or frame_type is DatasetPreview

    def show_frame(self, frame: Frame) -> None:
        if isinstance(frame, DatasetPreview):
            self.data_preview.show_preview(frame)
            return
        view = self.views.get(type(frame))
        if view is not None and draw_safely(view, frame):
            self.frames[type(frame)] = frame

    def model_loaded(self, loaded: ModelLoaded) -> None:
        """Another model: its curves start empty, the loss plot says what its objective minimises, and only the
        views of how training goes that apply to it are offered (no gradients for a model that cannot train)."""
        info = loaded.info
        self.loss_name = info.loss_name
        self.frames.clear()
        self.clear()
        self.readout.setText(NOT_TRAINED)
        for frame_type, view in self.views.items():
            view.clear()
            view.error_line().hide()
            self.tabs.setTabVisible(self.tabs.indexOf(view), frame_type in loaded.frame_types)

    def set_running(self, running: bool) -> None:
        """A run is active: checkpoints can be asked for."""
        self.checkpoint.setEnabled(running)

    def _overlay(self, curves: dict) -> None:
        """Draw the selected runs' curves (``{(run id, metric): (steps, values)}``) over the live ones."""
        for key in [k for k in self.overlays if k not in curves]:
            item = self.overlays.pop(key)
            plot = self.plots.get(key[1])
            if plot is not None:
                plot.widget.removeItem(item)
        for index, ((run_id, metric), (steps, values)) in enumerate(sorted(curves.items())):
            plot = self._plot(metric)
            item = self.overlays.get((run_id, metric))
            if item is None:
                pen = pg.mkPen(pg.intColor(index, hues=max(len(curves), 6)), width=1.5)
                if plot.widget.getPlotItem().legend is None:  # compared runs are named in a compact legend
                    plot.widget.addLegend(offset=(-10, 10), labelTextSize="7pt", verSpacing=-6)
                item = self.overlays[(run_id, metric)] = plot.widget.plot(pen=pen, name=f"run {run_id}")
            item.setData(np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64))
        for plot in self.plots.values():
            plot.follow_data()
        if curves:
            self._anchor.enableAutoRange(x=True)
            self._ranged = True  # the compared runs set the x-range, not the live run's length

    def _plot(self, name: str) -> MetricPlot:
        """The plot of metric ``name``, made (below the others, sharing their x-axis) the first time."""
        plot = self.plots.get(name)
        if plot is None:
            plot = self.plots[name] = MetricPlot(name)
            if name == "loss" and self.loss_name:
                plot.set_title(f"Loss ({self.loss_name})")
            anchor = next(iter(self.plots.values()))
            if plot is not anchor:
                plot.widget.setXLink(anchor.widget)
            self.curves_layout.addWidget(plot.container, 1)
        return plot

    @property
    def _anchor(self) -> pg.PlotWidget:
        return next(iter(self.plots.values())).widget  # the plot whose x-range the others follow

    def clear(self) -> None:
        for name in [n for n in self.plots if n not in SHOWN_BEFORE_TRAINING]:  # the last model's own measures
            plot = self.plots.pop(name)
            self.curves_layout.removeWidget(plot.container)
            plot.container.hide()  # at once: deleteLater waits for the event loop, and the old plot stayed drawn
            plot.container.setParent(None)
            plot.container.deleteLater()
            for key in [k for k in self.overlays if k[1] == name]:
                del self.overlays[key]
        for plot in self.plots.values():
            plot.clear()
        if "loss" in self.plots:
            self.plots["loss"].set_title(f"Loss ({self.loss_name})" if self.loss_name else style_of("loss").title)
        self._ranged = False
        self._open_end = 0  # the x-range's end for a run of unknown length (0: not set yet)
        self._step_offset = 0  # drawn before the run's own steps: the steps of the run it continues
        self._redraw.stop()
        self._newest_step = self._drawn_step = 0
        self._drawn_at = self._epochs_drawn_at = -math.inf
        self._epoch_pending = False
        self._anchor.setXRange(0, 1, padding=0.03)  # not the last run's range until this one's steps arrive
        self._anchor.enableAutoRange(x=True)

    def continue_run(self) -> None:
        """The next run trains on from the weights of the run shown (an opened run): its curves stay, and the new
        run's are drawn on from their last step. The run store numbers the new run's steps from 1, as a run of its
        own; only the drawing carries on."""
        self._step_offset = self._newest_step
        self._ranged = False
        self._anchor.enableAutoRange(x=True)

    def _views_run_length(self, steps: int) -> None:
        for view in self.views.values():
            if hasattr(view, "set_run_length"):  # views with a history over the run's steps
                view.set_run_length(steps)

    def add_metrics(self, events: Iterable[StepMetrics | EpochMetrics]) -> None:
        """Append a batch of StepMetrics/EpochMetrics; the curves are redrawn at most every CURVE_REDRAW_MS."""
        last_step: StepMetrics | None = None
        last_epoch: EpochMetrics | None = None
        for event in events:
            if isinstance(event, StepMetrics):
                step = event.step + self._step_offset
                for name, value in event.values.items():
                    self._plot(name).add_step(step, value)
                if not self._ranged and event.total_steps > 0:  # 0: a length nobody knows (lumen.watch)
                    # The whole run's x-range from the start: the curves grow into it, and the axes
                    # (whose text is the costliest thing to paint) are not redrawn at every update.
                    end = event.total_steps + self._step_offset
                    self._anchor.setXRange(0, end, padding=0.03)  # the last epoch's markers whole
                    self._anchor.enableAutoRange(x=False)
                    self._ranged = True
                    self._views_run_length(event.total_steps)
                elif event.total_steps <= 0 and event.step > self._open_end and not self.overlays:
                    # A run of unknown length (a watched script's): its range doubles as the steps reach its end, so
                    # the axes repaint a few times in a run, not at every redraw.
                    self._open_end = max(OPEN_RANGE_STEPS, 2 * event.step)
                    self._anchor.setXRange(0, self._open_end, padding=0.03)
                    self._anchor.enableAutoRange(x=False)
                    self._views_run_length(self._open_end)
                last_step = event
                self._newest_step = step
            elif isinstance(event, EpochMetrics):
                for name in {**event.train, **event.val}:
                    self._plot(name).add_epoch(
                        event.step + self._step_offset, event.train.get(name), event.val.get(name)
                    )
                self._epoch_pending = True
                last_epoch = event
        if last_epoch is not None:  # the readout tells the newest epoch (a relaid-out label per batch, not per epoch)
            self.readout.setText(
                f"Epoch {last_epoch.epoch}: validation {self._describe(last_epoch.val, bold=True)}<br>"
                f"training {self._describe(last_epoch.train)}"
            )
        elif last_step is not None and not any(p.val_steps for p in self.plots.values()):
            name, value = next(iter(last_step.values.items()), ("", 0.0))
            self.readout.setText(
                f"Epoch {last_step.epoch}, step {last_step.step}: batch {spoken(name)} {readable(name, value)}"
            )
        if not self._redraw.isActive():
            self._redraw.start()

    @staticmethod
    def _describe(values: Mapping[str, float], bold: bool = False) -> str:
        parts = [f"{spoken(name)} {readable(name, value)}" for name, value in _headline_first(values)]
        if bold and parts:
            name, value = _headline_first(values)[0]
            parts[0] = f"{spoken(name)} <b>{readable(name, value)}</b>"
        return ", ".join(parts)

    def _redraw_if_due(self) -> None:
        view = self._anchor.getViewBox()
        (left, right), _ = view.viewRange()
        steps_per_pixel = (right - left) / max(view.width(), 1.0)
        now = time.monotonic()
        epochs = self._epoch_pending and now - self._epochs_drawn_at >= EPOCH_REDRAW_S
        if (
            epochs
            or self._newest_step - self._drawn_step >= steps_per_pixel
            or now - self._drawn_at >= CURVE_MAX_WAIT_S
        ):
            self.redraw(epochs)
        if self._newest_step > self._drawn_step or self._epoch_pending:
            self._redraw.start()  # look again at the next tick

    def redraw(self, epochs: bool = True) -> None:
        """Draw the new points now; ``epochs``: the epoch points too (else they stay pending)."""
        self._drawn_step, self._drawn_at = self._newest_step, time.monotonic()
        if epochs:
            self._epochs_drawn_at, self._epoch_pending = self._drawn_at, False
        for plot in self.plots.values():
            plot.redraw(epochs)
