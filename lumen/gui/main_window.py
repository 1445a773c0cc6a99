"""The main window: three dockable panes, a toolbar that drives training, a status bar with progress."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QSizePolicy,
    QStyle,
    QToolBar,
    QWidget,
)

from lumen.engine.errors import DataError
from lumen.engine.events import ModelLoaded, RunState, StatusChanged, StepMetrics
from lumen.engine.io.runs import RunExists, check_run_dir
from lumen.engine.io.store import RunStore
from lumen.engine.presets import PRESET_GROUPS
from lumen.engine.runtime.commands import Train, WatchFrames
from lumen.engine.untrusted import shown
from lumen.gui.bridge import EngineBridge
from lumen.gui.image_io import ImageLoader
from lumen.gui.panes.builder.pane import BuilderPane
from lumen.gui.panes.monitor import MonitorPane
from lumen.gui.panes.viewer import ViewerPane
from lumen.gui.widgets.eta import Eta

DEFAULT_PRESET = "lenet5"
PROGRESS_INTERVAL_S = 0.2  # the status bar's step counter and ETA change at most this often
SETTINGS_VERSION = 2  # bump when docks change, so an old saved layout is not restored onto new docks


def _training_threads() -> int:
    # Leave one core to the GUI thread so the window keeps answering on small (2-core) lab machines.
    return max(1, (os.cpu_count() or 2) - 1)


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        self.settings = settings or QSettings()
        self.setWindowTitle("Lumen")
        self.setDockNestingEnabled(True)
        self.state = RunState.IDLE

        self.bridge = EngineBridge(self, torch_threads=_training_threads(), store=RunStore)
        self.loader = ImageLoader(self)
        self.opened_model = None  # an opened ONNX model: its weights go with its spec, and Train fine-tunes them
        self.builder = BuilderPane()
        self.monitor = MonitorPane()
        self.viewer = ViewerPane()
        self.docks = {
            "builder": self._dock("Model builder", self.builder, Qt.DockWidgetArea.LeftDockWidgetArea),
            "monitor": self._dock("Training monitor", self.monitor, Qt.DockWidgetArea.RightDockWidgetArea),
            "viewer": self._dock("Activation viewer", self.viewer, Qt.DockWidgetArea.RightDockWidgetArea),
        }
        # Builder and monitor share the left area as tabs (one builds, then watches the run); the viewer
        # stays beside them, so curves and feature maps are seen together while training.
        self.tabifyDockWidget(self.docks["builder"], self.docks["monitor"])
        self.docks["builder"].raise_()
        self.setCentralWidget(QWidget())  # all content lives in docks; an empty centre collapses to nothing
        self.centralWidget().hide()
        self.resizeDocks([self.docks["builder"], self.docks["viewer"]], [900, 700], Qt.Orientation.Horizontal)
        self._default_state = self.saveState(SETTINGS_VERSION)

        self._make_actions()
        self._make_status_bar()
        self._connect()
        self._restore_layout()
        self.builder.load_preset(DEFAULT_PRESET)
        self._apply_state(RunState.IDLE)

    # ---- construction ---------------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_").lower())  # saveState needs names
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _make_actions(self) -> None:
        icon = self.style().standardIcon
        self.train_action = QAction(
            icon(QStyle.StandardPixmap.SP_MediaPlay),
            "Train",
            self,
            shortcut=QKeySequence("Ctrl+T"),
            toolTip="Train the model from fresh weights with the monitor's settings",
        )
        self.pause_action = QAction(
            icon(QStyle.StandardPixmap.SP_MediaPause), "Pause", self, checkable=True, shortcut=QKeySequence("Ctrl+P")
        )
        self.step_action = QAction(
            icon(QStyle.StandardPixmap.SP_MediaSkipForward), "Step", self, toolTip="Train one batch while paused"
        )
        self.stop_action = QAction(
            icon(QStyle.StandardPixmap.SP_MediaStop), "Stop", self, shortcut=QKeySequence("Ctrl+.")
        )
        toolbar = QToolBar("Training", objectName="training_toolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.train_action, self.pause_action, self.step_action, self.stop_action):
            toolbar.addAction(action)
        self.addToolBar(toolbar)

        file_menu = self.menuBar().addMenu("&File")
        open_image = file_menu.addAction("Open image…", self.viewer._open_dialog)
        open_image.setShortcut(QKeySequence.StandardKey.Open)
        file_menu.addAction("Save run…", self._save_run).setShortcut(QKeySequence.StandardKey.Save)
        file_menu.addSeparator()
        file_menu.addAction(self.builder.open_action)
        file_menu.addAction(self.builder.save_action)
        file_menu.addSeparator()
        file_menu.addAction("Quit", self.close).setShortcut(QKeySequence.StandardKey.Quit)
        edit_menu = self.menuBar().addMenu("&Edit")  # the builder's actions; their shortcuts work in the builder
        for action in (
            self.builder.undo_action,
            self.builder.redo_action,
            None,
            self.builder.copy_action,
            self.builder.paste_action,
            self.builder.delete_action,
            None,
            self.builder.layout_action,
        ):
            edit_menu.addAction(action) if action else edit_menu.addSeparator()
        presets_menu = self.menuBar().addMenu("&Presets")
        for family, presets in PRESET_GROUPS.items():
            submenu = presets_menu.addMenu(family)
            submenu.setToolTipsVisible(True)
            for preset in presets:
                submenu.addAction(
                    preset.summary.split(":")[0], lambda name=preset.name: self.builder.load_preset(name)
                ).setToolTip(preset.summary)
        view_menu = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        view_menu.addAction("Reset layout", lambda: self.restoreState(self._default_state, SETTINGS_VERSION))
        self.menuBar().addMenu("&Help").addAction("About Lumen", self._about)

    def _make_status_bar(self) -> None:
        self.status_label = QLabel()
        # A long status ("fitted to the data: ...") is cut, not allowed to widen the window past the screen; the
        # whole text is in its tooltip.
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.progress = QProgressBar(minimumWidth=340, textVisible=True)  # "step 40 / 1125 · ETA 0:15" fits
        self.progress.setFormat("step %v / %m")
        self.eta = Eta()
        self._progress_shown_at = -math.inf
        self._progress_pending: tuple[StepMetrics, str] | None = None  # the newest step, not shown yet
        self._paused_because = ""  # why the engine paused the run by itself (a NaN loss, memory), shown in the viewer
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.progress)

    def _connect(self) -> None:
        worker = self.bridge.worker
        self.pending_spec = None  # an edit made while a run is active; loaded when the next run starts
        self.builder.model_chosen.connect(self._model_chosen)
        self.builder.spec_edited.connect(self._spec_edited)
        self.viewer.spec_dropped.connect(self.builder.open_spec)
        self.builder.reader.model_opened.connect(self._model_opened)
        self.setAcceptDrops(
            True
        )  # a spec .json (or an .onnx model) dropped anywhere on the window opens in the builder
        self.train_action.triggered.connect(self._train)
        self.pause_action.toggled.connect(lambda paused: worker.pause() if paused else worker.resume())
        self.step_action.triggered.connect(worker.step_once)
        self.stop_action.triggered.connect(worker.stop)
        self.viewer.probe_index_changed.connect(worker.probe_sample)
        self.monitor.dataset_changed.connect(self._dataset_changed)
        self.monitor.lr_changed.connect(worker.set_learning_rate)
        self.viewer.command.connect(worker.submit)
        # Probes run only for what is on screen: the viewer's current tab, and the monitor's views (whose
        # histories would otherwise have gaps).
        self.viewer.watching.connect(
            lambda shown: worker.submit(WatchFrames(frozenset(shown) | frozenset(self.monitor.views)))
        )
        self.viewer.image_dropped.connect(self._open_image)
        self.loader.loaded.connect(self._image_loaded)
        self.loader.failed.connect(lambda message: self._show_error(message))
        self.bridge.metrics.connect(self._metrics)
        self.bridge.frame.connect(self._frame)
        self.monitor.command.connect(worker.submit)
        self.monitor.checkpoint_requested.connect(worker.checkpoint)
        self.bridge.status.connect(self._status)
        self.bridge.error.connect(self._show_error)
        self.bridge.checkpoints.connect(self.viewer.set_checkpoints)
        self.bridge.model_loaded.connect(self._model_loaded)
        self.monitor.runs.run_selected.connect(self._replay_run)

    # ---- reacting to the user ----------------------------------------------------------------------------
    def _model_chosen(self, spec) -> None:
        if self.opened_model is not None and spec.name != self.opened_model.spec.name:
            self.opened_model = None  # another model: fresh weights again
        if self._is_builders_valid_spec(spec) and not self._defer(spec):
            self.monitor.clear()
            self.bridge.worker.load_model(spec, self.monitor.dataset_name(), *self._opened_weights())

    def _spec_edited(self, spec) -> None:
        if self._is_builders_valid_spec(spec) and not self._defer(spec):
            # the edited model: fresh weights, or an opened model's wherever they still fit
            self.bridge.worker.load_model(spec, self.monitor.dataset_name(), *self._opened_weights())

    def _model_opened(self, opened, path: str, serial: int) -> None:
        """An ONNX file was converted (its spec follows, as any opened spec): its weights go with the spec."""
        if serial == self.builder.reader.serial:
            self.opened_model = opened
            self.statusBar().showMessage(f"opened {shown(Path(path).name)}: {opened.line()}", 20_000)

    def _opened_weights(self) -> tuple:
        """(weights, where from) of the opened ONNX model the builder holds, or (None, "")."""
        if self.opened_model is None:
            return None, ""
        return self.opened_model.weights, Path(self.opened_model.source).name

    def _dataset_changed(self, dataset) -> None:
        """Another dataset: the model is reloaded on it (resized to fit), now or, mid-run, for the next run."""
        spec = self.builder.doc.spec
        if self._is_builders_valid_spec(spec) and not self._defer(spec):
            self.monitor.clear()
            self.bridge.worker.load_model(spec, dataset, *self._opened_weights())

    def _is_builders_valid_spec(self, spec) -> bool:
        """Only the spec the builder holds and finds valid may replace the engine's model (or wait as the next
        run's): the last good model stays otherwise."""
        return self.builder.doc.valid and spec == self.builder.doc.spec

    def _defer(self, spec) -> bool:
        """While a run is active a new spec waits for the next run: loading it now would stop the run."""
        if self.state not in (RunState.TRAINING, RunState.PAUSED):
            self.pending_spec = None
            return False
        self.pending_spec = spec
        self.statusBar().showMessage(f"{spec.name}: changes apply to the next run")
        return True

    def _train(self) -> None:
        if self.pending_spec is not None:  # worker commands run in order: load, then train
            self.bridge.worker.load_model(self.pending_spec, self.monitor.dataset_name(), *self._opened_weights())
            self.pending_spec = None
            self.statusBar().clearMessage()
        config = self.monitor.config()
        self.monitor.clear()
        if not self.docks["monitor"].isFloating():
            self.docks["monitor"].raise_()  # show the curves as they start to grow
        self.progress.setRange(0, 0)  # busy until the first step reports the total
        self._progress_shown_at = -math.inf
        self.progress.setFormat("step %v / %m")
        self.eta.reset()
        self.viewer.follow_run(None)  # the replay slider follows the new run's checkpoints
        # an opened ONNX model is fine-tuned, not trained afresh
        self.bridge.worker.submit(Train(config, keep_weights=self.opened_model is not None))

    def _replay_run(self, run_id: str) -> None:
        """A run picked in the runs list: the viewer's replay slider runs over its checkpoints."""
        self.viewer.follow_run(run_id)
        self.bridge.worker.list_checkpoints(run_id)

    def _open_image(self, path: str) -> None:
        self.viewer.show_message(f"Opening {os.path.basename(path)}…")
        self.loader.load(path)

    def _image_loaded(self, pixels, name: str) -> None:
        self.viewer.show_message(
            f"{name}: {pixels.shape[1]}×{pixels.shape[0]} pixels, prepared as the model's "
            f"input (left). It stays the probe while the model trains."
        )
        self.bridge.worker.probe_image(pixels, name)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.toLocalFile().lower().endswith((".json", ".onnx")) for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [
            url.toLocalFile()
            for url in event.mimeData().urls()
            if url.toLocalFile().lower().endswith((".json", ".onnx"))
        ]
        if paths:
            event.acceptProposedAction()
            self.builder.open_spec(paths[0])

    def _save_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the run into a folder")
        if folder:
            self.save_run_to(folder)

    def save_run_to(self, folder: str) -> bool:
        """Have the worker save the run into ``folder`` once the folder is known to be writable; a run already
        there is replaced only if the user agrees (``confirm_replace_run``). True if the save was sent."""
        force = False
        try:
            check_run_dir(folder)
        except RunExists:
            if not self.confirm_replace_run(folder):
                self.statusBar().showMessage(f"not saved: {shown(folder)} keeps its run", 10_000)
                return False
            force = True
        except DataError as exc:
            self._show_error(str(exc))
            return False
        self.bridge.worker.save(folder, force=force)
        return True

    def confirm_replace_run(self, folder: str) -> bool:
        answer = QMessageBox.question(
            self,
            "Replace the run?",
            f"{shown(folder)} already holds a saved run. Replace it with this one?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About Lumen",
            "<b>Lumen</b> — build, train and look inside neural networks, "
            "offline.<br>Bundled digits: MNIST (Y. LeCun, C. Cortes, C. Burges).",
        )

    # ---- reacting to the engine ----------------------------------------------------------------------------
    def _metrics(self, events: list) -> None:
        self.monitor.add_metrics(events)
        steps = [e for e in events if isinstance(e, StepMetrics)]
        if steps:
            last = steps[-1]
            eta = self.eta.update(last.step, last.total_steps, self.monitor.batch_size.value())
            self._progress_pending = (last, eta)
            # A QProgressBar whose text changes repaints at once, inside setValue: 5 times a second is enough
            # while training; a single step (paused) shows at once.
            if time.monotonic() - self._progress_shown_at >= PROGRESS_INTERVAL_S or self.state is not RunState.TRAINING:
                self._show_progress()

    def _show_progress(self) -> None:
        if self._progress_pending is None:
            return
        last, eta = self._progress_pending
        self._progress_pending = None
        self._progress_shown_at = time.monotonic()
        self.progress.setRange(0, last.total_steps)
        self.progress.setValue(last.step)
        self.progress.setFormat(f"step %v / %m · {eta}" if eta else "step %v / %m")

    def _frame(self, frame) -> None:
        """Each frame to the pane that hosts a view for its type: the monitor's (gradients, histograms) or the
        viewer's."""
        if self.monitor.hosts(type(frame)):
            self.monitor.show_frame(frame)
        else:
            self.viewer.show_frame(frame)

    def _model_loaded(self, loaded: ModelLoaded) -> None:
        """Everything the last model showed goes; the panes offer what applies to this one."""
        self.monitor.model_loaded(loaded)
        self.viewer.model_loaded(loaded)
        if self.state not in (RunState.TRAINING, RunState.PAUSED):  # the last run's progress is not this model's
            self._progress_pending = None
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("not trained yet")

    def _status(self, event: StatusChanged) -> None:
        self.status_label.setText(event.message)
        self.status_label.setToolTip(event.message)
        if event.state is RunState.PAUSED and event.cause:
            self._paused_because = event.cause
        elif event.state is RunState.TRAINING and self.viewer.message.text() == self._paused_because:
            self.viewer.show_message("")  # training again: why it had paused no longer holds
        self._apply_state(event.state)

    def rescue_run(self) -> None:
        """After an unexpected error: a run in progress is checkpointed into the run store at once."""
        if self.state in (RunState.TRAINING, RunState.PAUSED):
            self.bridge.worker.checkpoint()

    def _show_error(self, message: str) -> None:
        self.viewer.show_message(message, error=True)
        self.statusBar().showMessage(message, 10_000)

    def _apply_state(self, state: RunState) -> None:
        self.state = state
        running = state in (RunState.TRAINING, RunState.PAUSED)
        self.train_action.setEnabled(not running)
        self.pause_action.setEnabled(running)
        self.stop_action.setEnabled(running)
        self.step_action.setEnabled(state is RunState.PAUSED)
        self.monitor.set_running(running)
        if state is not RunState.TRAINING:
            self._show_progress()  # the step it stopped at
        if not running:
            self.progress.setFormat("step %v / %m")
        self.pause_action.blockSignals(True)  # reflect the engine's state without sending a command back
        self.pause_action.setChecked(state is RunState.PAUSED)
        self.pause_action.setText("Resume" if state is RunState.PAUSED else "Pause")
        self.pause_action.blockSignals(False)
        if state is not RunState.TRAINING and self.progress.maximum() == 0:
            # Paused or stopped before the first step reported the total (a first batch that failed): not busy.
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("no step done yet")

    # ---- layout memory and shutdown ---------------------------------------------------------------------------
    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1440, 900)
        if isinstance(state, QByteArray):
            self.restoreState(state, SETTINGS_VERSION)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(SETTINGS_VERSION))
        self.settings.sync()
        self.loader.shutdown()
        self.builder.shutdown()
        self.monitor.runs.shutdown()
        if not self.bridge.shutdown():
            QMessageBox.warning(self, "Lumen", "The training thread did not stop in time; quitting anyway.")
        super().closeEvent(event)
