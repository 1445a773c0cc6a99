"""The window of a watched script (``lumen.watch``): the main window's monitor and viewer, fed by a ``PipeBridge``.

Three docks: the model's layers (name, type, parameters, output shape for the probe input), the training monitor
(one curve per metric name the script passes to ``w.step``, gradient norms and histograms, the runs list) and the
activation viewer (the views that apply: feature maps, attribution, gates, ...). Lumen does not run this loop, so
there is no builder, no Train/Pause/Stop, and the monitor's run settings are hidden; the viewer's controls that
choose what the probes look at (a tab, a layer, a method, which probe input) are sent to the script, whose thread
obeys them between its steps. When the script ends, or its process goes, the window says so and stays: *Save run…*
writes a normal run folder from the last weights the script sent and every metric.
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMainWindow,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from lumen.engine.errors import DataError
from lumen.engine.events import EpochMetrics, ModelLoaded, StatusChanged, StepMetrics
from lumen.engine.explain.jobs import DreamFrame
from lumen.engine.io.runs import RunExists, check_run_dir
from lumen.engine.runtime.commands import ConfigureProbe, ProbeSample, WatchFrames
from lumen.engine.runtime.history import readable
from lumen.engine.runtime.watched import ScriptEnded, WatchStarted, save_watched_run
from lumen.engine.untrusted import shown
from lumen.gui.panes.monitor import MonitorPane
from lumen.gui.panes.viewer import ViewerPane
from lumen.gui.run_io import confirm_replace_run
from lumen.gui.watch_bridge import PipeBridge

# What the script can do for the window: the rest of the viewer's commands (maximize, dream, replay, an opened
# picture) need Lumen's own loop, and the window says so.
SENT = (WatchFrames, ConfigureProbe, ProbeSample)
NEEDS_LUMENS_LOOP = (DreamFrame,)  # views whose pictures come only from such jobs (maximize, DeepDream)
STATUS_INTERVAL_S = 0.2


class WatchWindow(QMainWindow):
    def __init__(self, bridge: PipeBridge, name: str = "model", settings: QSettings | None = None):
        super().__init__()
        self.settings = settings or QSettings()
        self.bridge = bridge
        self.name = name
        self.setWindowTitle(f"Lumen · watching {name}")
        self.setDockNestingEnabled(True)
        self.layers = QTableWidget(0, 4)
        self.layers.setHorizontalHeaderLabels(["layer", "type", "parameters", "output"])
        self.layers.verticalHeader().hide()
        self.layers.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.layers.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.layers.horizontalHeader().setStretchLastSection(True)
        self.monitor = MonitorPane()
        self.monitor.settings_form.hide()  # the script's own settings: Lumen does not know them
        self.monitor.data_preview.hide()
        self.monitor.checkpoint.hide()
        self.viewer = ViewerPane()
        self.viewer.open_button.hide()
        self.viewer.replay_row.hide()
        self.docks = {
            "layers": self._dock("Layers", self.layers, Qt.DockWidgetArea.LeftDockWidgetArea),
            "monitor": self._dock("Training monitor", self.monitor, Qt.DockWidgetArea.LeftDockWidgetArea),
            "viewer": self._dock("Activation viewer", self.viewer, Qt.DockWidgetArea.RightDockWidgetArea),
        }
        self.splitDockWidget(self.docks["layers"], self.docks["monitor"], Qt.Orientation.Vertical)
        self.setCentralWidget(QWidget())
        self.centralWidget().hide()
        self.resizeDocks([self.docks["monitor"], self.docks["viewer"]], [820, 620], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["layers"], self.docks["monitor"]], [170, 700], Qt.Orientation.Vertical)
        self.resize(1500, 920)
        self.status_label = QLabel(f"waiting for {name}'s script to connect…")
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.statusBar().addWidget(self.status_label, 1)
        self.script_ended: ScriptEnded | None = None
        self._status_at = -math.inf
        self._newest_step = 0
        self._last_epoch: EpochMetrics | None = None
        self._make_menus()
        self._connect()

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_").lower())
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _make_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction("Save run…", self._save_run).setShortcut(QKeySequence.StandardKey.Save)
        file_menu.addSeparator()
        file_menu.addAction("Close", self.close).setShortcut(QKeySequence.StandardKey.Quit)
        view_menu = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())

    def _connect(self) -> None:
        bridge = self.bridge
        bridge.metrics.connect(self._metrics)
        bridge.frame.connect(self._frame)
        bridge.model_loaded.connect(self._model_loaded)
        bridge.status.connect(self._status)
        bridge.error.connect(self._show_error)
        bridge.other.connect(self._other)
        self.viewer.command.connect(self._command)
        self.monitor.command.connect(self._command)
        self.viewer.probe_index_changed.connect(lambda index: self._command(ProbeSample(int(index))))
        self.viewer.watching.connect(
            lambda shown: self._command(WatchFrames(frozenset(shown) | frozenset(self.monitor.views)))
        )

    # ---- from the script --------------------------------------------------------------------------------
    def _other(self, event: object) -> None:
        if isinstance(event, WatchStarted):
            self._started(event)
        elif isinstance(event, ScriptEnded):
            self._ended(event)

    def _started(self, started: WatchStarted) -> None:
        self.name = started.name
        self.setWindowTitle(f"Lumen · watching {started.name} (process {started.pid})")
        self.layers.setRowCount(len(started.layers))
        for row, layer in enumerate(started.layers):
            cells = (layer.name, layer.type, f"{layer.parameters:,}", layer.output)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column == 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.layers.setItem(row, column, item)
        self.docks["layers"].setWindowTitle(f"Layers of {started.name}: {started.parameters:,} parameters")
        self.viewer.probe.setMaximum(max(0, started.inputs - 1))
        self.viewer.probe.setPrefix("probe input #")
        self.viewer.probe.setToolTip(f"Which of the {started.inputs} probe inputs the script passed to look at")

    def _model_loaded(self, loaded: ModelLoaded) -> None:
        self.monitor.model_loaded(loaded)
        self.viewer.model_loaded(loaded)
        self.viewer.open_button.hide()  # the script chooses the inputs; the window picks among them
        self.viewer.invariance.hide()
        self.viewer.replay_row.hide()
        self.viewer.show_message("")
        for frame_type in NEEDS_LUMENS_LOOP:  # their controls start jobs only Lumen's own loop runs
            view = self.viewer.views.get(frame_type)
            if view is not None:
                self.viewer.tabs.setTabVisible(self.viewer.tabs.indexOf(view), False)
        if self.bridge.started is not None:
            self.viewer.probe.setVisible(self.bridge.started.inputs > 1)
            self.viewer.probe.setPrefix("probe input #")

    def _metrics(self, events: list) -> None:
        self.monitor.add_metrics(events)
        epochs = [e for e in events if isinstance(e, EpochMetrics)]
        if epochs:
            self._last_epoch = epochs[-1]
        steps = [e for e in events if isinstance(e, StepMetrics)]
        if steps:
            last = steps[-1]
            # The readout names the step and every value; the epoch and its validation once the script says them
            # (``w.epoch``): Lumen does not know the loop's epochs otherwise.
            values = ", ".join(
                f"{name} {readable(value, percent=name == 'accuracy')}" for name, value in last.values.items()
            )
            where = f"Epoch {last.epoch}, step {last.step:,}" if self._last_epoch is not None else f"Step {last.step:,}"
            text = f"{where}: {values}"
            if self._last_epoch is not None and self._last_epoch.val:
                measured = ", ".join(
                    f"{name} {readable(value, percent=name == 'accuracy')}"
                    for name, value in self._last_epoch.val.items()
                )
                text += f"\nvalidation after epoch {self._last_epoch.epoch}: {measured}"
            self.monitor.readout.setText(text)
            self._newest_step = last.step
            if time.monotonic() - self._status_at >= STATUS_INTERVAL_S and self.script_ended is None:
                self._status_at = time.monotonic()
                self.status_label.setText(f"watching {self.name}: step {self._newest_step:,}")

    def _frame(self, frame) -> None:
        if self.monitor.hosts(type(frame)):
            self.monitor.show_frame(frame)
        else:
            self.viewer.show_frame(frame)

    def _status(self, event: StatusChanged) -> None:
        if self.script_ended is None:
            self.status_label.setText(event.message)

    def _ended(self, ended: ScriptEnded) -> None:
        self.script_ended = ended
        self.monitor.redraw()
        text = f"{ended.message}. The window stays for inspection; File → Save run… keeps the run."
        self.status_label.setText(text)
        self.status_label.setToolTip(text)
        self.viewer.show_message(text)

    def _show_error(self, message: str) -> None:
        self.viewer.show_message(message, error=True)
        self.statusBar().showMessage(message, 10_000)

    # ---- to the script ----------------------------------------------------------------------------------
    def _command(self, command: object) -> None:
        if not isinstance(command, SENT):
            self._show_error(
                f"{type(command).__name__} needs a loop Lumen runs; here the script runs it (open the run in "
                "Lumen's main window to do that)"
            )
            return
        self.bridge.submit(command)

    # ---- saving and closing -----------------------------------------------------------------------------
    def _save_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the watched run into a folder")
        if folder:
            self.save_run_to(folder)

    def save_run_to(self, folder: str, force: bool | None = None) -> bool:
        """A run folder from the newest weights the script sent and every metric; a run already there is replaced
        only if the user agrees (``force``: answer for them)."""
        weights, history = self.bridge.saved_state()
        if weights is None:
            self._show_error("the script has not sent its weights yet: try again in a few seconds")
            return False
        try:
            check_run_dir(folder)
            replace = False
        except RunExists:
            replace = force if force is not None else confirm_replace_run(self, folder)
            if not replace:
                self.statusBar().showMessage(f"not saved: {shown(folder)} keeps its run", 10_000)
                return False
        except DataError as exc:
            self._show_error(str(exc))
            return False
        try:
            save_watched_run(folder, weights, history, force=replace)
        except DataError as exc:
            self._show_error(str(exc))
            return False
        self.statusBar().showMessage(
            f"saved the run to {shown(folder)} (weights of step {weights.step:,}, {len(history):,} metrics)", 10_000
        )
        return True

    def closeEvent(self, event: QCloseEvent) -> None:
        self.monitor.runs.shutdown()
        self.bridge.shutdown()  # the script's next step finds the window gone, says so once and goes on
        super().closeEvent(event)
