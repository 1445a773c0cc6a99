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

from lumen.engine.events import ModelLoaded, RunOpened, RunState, StatusChanged, StepMetrics
from lumen.engine.io.store import RunStore
from lumen.engine.presets import PRESET_GROUPS
from lumen.engine.runtime.commands import OpenRun, Train, WatchFrames
from lumen.engine.untrusted import shown
from lumen.gui.bridge import EngineBridge
from lumen.gui.image_io import ImageLoader
from lumen.gui.panes.builder.pane import BuilderPane
from lumen.gui.panes.monitor import MonitorPane
from lumen.gui.panes.viewer import ViewerPane
from lumen.gui.run_io import FREE, HOLDS_RUN, RunFolderCheck, confirm_replace_run
from lumen.gui.widgets.eta import Eta

DEFAULT_PRESET = "lenet5"
PROGRESS_INTERVAL_S = 0.2  # the status bar's step counter and ETA change at most this often
SETTINGS_VERSION = 2  # bump when docks change, so an old saved layout is not restored onto new docks
RECENT_LIMIT = 10  # entries of File → Recent
STORE_RUN = "run "  # a Recent entry naming a run of the run store by its id, not a path


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
        self.run_check = RunFolderCheck(self)  # Save run…'s folder, checked off the GUI thread
        self.opened_run: RunOpened | None = None  # the run whose weights the engine's model holds, if opened
        self.keep_weights: bool | None = None  # Train on an opened run: continue from its weights (asked once)
        self.opened_model = None  # an opened ONNX model: its weights go with its spec, and Train fine-tunes them
        self._opening: Path | str | None = None  # the run last asked to open (its Recent entry)
        self._asked_to_close = False  # File → Quit asked its questions already
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
        self._restore_live_rate()
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
            toolTip="Train the model from fresh weights with the monitor's settings (an opened run asks once: from "
            "its weights, or fresh ones)",
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
        file_menu.addAction("Open run…", self._open_run_dialog).setShortcut(QKeySequence("Ctrl+Shift+O"))
        file_menu.addAction("Save run…", self._save_run).setShortcut(QKeySequence.StandardKey.Save)
        file_menu.addSeparator()
        file_menu.addAction(self.builder.open_action)
        file_menu.addAction(self.builder.save_action)
        file_menu.addSeparator()
        self.recent_menu = file_menu.addMenu("Recent")  # runs and specs opened, newest first (QSettings)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._fill_recent()
        file_menu.addSeparator()
        file_menu.addAction("Quit", self._quit).setShortcut(QKeySequence.StandardKey.Quit)
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
        self.viewer.run_dropped.connect(lambda folder: self.open_run(Path(folder)))
        self.builder.spec_opened.connect(self.remember)
        self.builder.reader.model_opened.connect(self._model_opened)
        # A spec .json dropped anywhere on the window opens in the builder; a run folder opens the run.
        self.setAcceptDrops(True)
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
        self.monitor.runs.run_opened.connect(self.open_run)
        self.monitor.live_rate.currentIndexChanged.connect(
            lambda: self.settings.setValue("monitor/live_rate", self.monitor.live_rate.currentText())
        )
        self.bridge.other.connect(self._other_event)
        self.run_check.checked.connect(self._run_folder_checked)

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
        keep = False
        if self.pending_spec is not None:  # worker commands run in order: load, then train
            self.bridge.worker.load_model(self.pending_spec, self.monitor.dataset_name(), *self._opened_weights())
            self.pending_spec = None
            self.statusBar().clearMessage()
        elif self.opened_run is not None and self.viewer.info is not None and self.viewer.info.objective is not None:
            if self.keep_weights is None:  # (a run that cannot train on its data is not asked: the engine says why)
                self.keep_weights = self.ask_keep_weights(self.opened_run)
                if self.keep_weights is None:
                    return
            keep = self.keep_weights
        config = self.monitor.config()
        if keep and self.opened_run is not None:
            self.monitor.continue_run()  # the opened run's curves stay, the new steps drawn on from their end
        else:
            self.monitor.clear()
        if not self.docks["monitor"].isFloating():
            self.docks["monitor"].raise_()  # show the curves as they start to grow
        self.progress.setRange(0, 0)  # busy until the first step reports the total
        self._progress_shown_at = -math.inf
        self.progress.setFormat("step %v / %m")
        self.eta.reset()
        self.viewer.follow_run(None)  # the replay slider follows the new run's checkpoints
        keep = keep or self.opened_model is not None  # an opened ONNX model is fine-tuned, not trained afresh
        self.bridge.worker.submit(Train(config, keep_weights=keep))

    def ask_keep_weights(self, opened: RunOpened) -> bool | None:
        """Train an opened run: from its weights (True), from fresh ones (False), or not at all (None)."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Train the opened run",
            f"{shown(opened.spec.name)} holds the weights of the run it was opened from. Train on from them, or "
            f"start again from fresh weights?",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        keep = box.addButton("Continue from these weights", QMessageBox.ButtonRole.AcceptRole)
        fresh = box.addButton("Fresh weights", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(keep)
        box.exec()
        return True if box.clickedButton() is keep else False if box.clickedButton() is fresh else None

    # ---- opening runs and files ---------------------------------------------------------------------------
    def open_path(self, path: str | Path) -> None:
        """What a file manager hands the window (``python main.py PATH``, a drop, the Recent menu): a run folder
        opens the run, a spec file opens in the builder."""
        path = Path(path)
        if path.suffix.lower() in (".json", ".onnx"):  # a spec, or an ONNX model converted to one (even a folder
            self.builder.open_spec(str(path))  # so named: the reader says what it is)
        elif path.is_dir():
            self.open_run(path)
        else:
            self._show_error(f"{shown(str(path))} is neither a run folder nor a model spec (.json)")

    def _open_run_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder")
        if folder:
            self.open_run(Path(folder))

    def open_run(self, run: Path | str) -> bool:
        """Have the engine open ``run`` (a run folder, or a run-store id from the runs list), once a run in
        progress may stop and unsaved builder edits may go; True if it was sent. What the engine refuses is one
        message, and the model stays."""
        name = run.name if isinstance(run, Path) else f"run {run}"
        if self.state in (RunState.TRAINING, RunState.PAUSED) and not self.confirm_stop(f"Opening {shown(name)}"):
            return False
        if not self.builder.undo_stack.isClean() and not self.builder.confirm_discard(name):
            self.statusBar().showMessage(f"{shown(name)} was not opened; your edits are kept", 10_000)
            return False
        self._opening = run
        self.viewer.show_message(f"Opening {shown(name)}…")
        self.bridge.worker.submit(OpenRun(run))
        return True

    def confirm_stop(self, doing: str) -> bool:
        """Ask before ``doing`` (e.g. "Quitting") stops the run in progress."""
        answer = QMessageBox.question(
            self,
            "Stop the run?",
            f"A run is still training. {doing} stops it (its last checkpoint stays in the run store).",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _other_event(self, event) -> None:
        if isinstance(event, RunOpened):
            self._run_opened(event)

    def _run_opened(self, event: RunOpened) -> None:
        """The engine holds the opened run's model: the builder shows its spec (unannounced: loading it would
        replace the weights), the replay slider covers its checkpoints, the monitor shows its curves."""
        self.builder.show_spec(event.spec, opened=True)
        self.opened_run, self.keep_weights = event, None
        self.setWindowTitle(f"Lumen — {Path(event.folder).name if self._opening != event.run else 'run ' + event.run}")
        self.monitor.show_settings(event.config)  # training it on goes on with its own settings
        self.viewer.follow_run(event.run)
        self.viewer.show_message("")
        if not self.docks["monitor"].isFloating():
            self.docks["monitor"].raise_()
        opened = self._opening
        self.remember(f"{STORE_RUN}{opened}" if isinstance(opened, str) else event.folder)
        if event.read_only:
            self.offer_save_elsewhere(event)

    def offer_save_elsewhere(self, event: RunOpened) -> None:
        """A run on a read-only disk opens; what changes can be saved into another folder."""
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "Read-only run",
            f"{shown(event.folder)} cannot be written (a read-only disk or folder). The run is open; to keep what "
            f"you change or train, save the run into another folder.",
            QMessageBox.StandardButton.Close,
            self,
        )
        elsewhere = box.addButton("Save elsewhere…", QMessageBox.ButtonRole.AcceptRole)
        box.exec()
        if box.clickedButton() is elsewhere:
            self._save_run()

    # ---- Recent ---------------------------------------------------------------------------------------------
    def recent(self) -> list[str]:
        value = self.settings.value("recent/paths")
        entries = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        return [e for e in entries if isinstance(e, str)][:RECENT_LIMIT]

    def remember(self, entry: str) -> None:
        """``entry`` (a run folder, a spec file, or ``run ID``) at the top of File → Recent."""
        entries = [entry, *(e for e in self.recent() if e != entry)][:RECENT_LIMIT]
        self.settings.setValue("recent/paths", entries)
        self._fill_recent()

    def _fill_recent(self) -> None:
        menu = self.recent_menu
        menu.clear()
        for entry in self.recent():
            text = entry if entry.startswith(STORE_RUN) else shown(entry, 80)
            menu.addAction(text, lambda e=entry: self._open_recent(e))
        if not menu.isEmpty():
            menu.addSeparator()
            menu.addAction("Clear", lambda: (self.settings.setValue("recent/paths", []), self._fill_recent()))
        menu.setEnabled(not menu.isEmpty())

    def _open_recent(self, entry: str) -> None:
        if entry.startswith(STORE_RUN):
            self.open_run(entry[len(STORE_RUN) :])
        else:
            self.open_path(entry)

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

    @staticmethod
    def _openable(event: QDragEnterEvent | QDropEvent) -> list[str]:
        """The dropped paths the window opens: spec files and folders (runs)."""
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        return [p for p in paths if p.lower().endswith((".json", ".onnx")) or os.path.isdir(p)]

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._openable(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = self._openable(event)
        if paths:
            event.acceptProposedAction()
            self.open_path(paths[0])

    def _save_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the run into a folder")
        if folder:
            self.save_run_to(folder)

    def save_run_to(self, folder: str) -> None:
        """Have the worker save the run into ``folder`` once the folder is known to be writable (checked off the GUI
        thread: a slow disk must not freeze the window); a run already there is replaced only if the user agrees
        (``confirm_replace_run``)."""
        self.statusBar().showMessage(f"checking {shown(folder)}…")
        self.run_check.check(folder)

    def _run_folder_checked(self, folder: str, verdict: str, message: str, serial: int) -> None:
        if serial != self.run_check.serial:
            return  # another Save run… was asked for since
        self.statusBar().clearMessage()
        if verdict == HOLDS_RUN and not self.confirm_replace_run(folder):
            self.statusBar().showMessage(f"not saved: {shown(folder)} keeps its run", 10_000)
        elif verdict in (FREE, HOLDS_RUN):
            self.bridge.worker.save(folder, force=verdict == HOLDS_RUN)
        else:
            self._show_error(message)

    def confirm_replace_run(self, folder: str) -> bool:
        return confirm_replace_run(self, folder)

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
        self.opened_run = None  # fresh weights (an opened run's RunOpened follows its ModelLoaded)
        self.setWindowTitle("Lumen")
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

    def _restore_live_rate(self) -> None:
        rate = self.settings.value("monitor/live_rate")
        if isinstance(rate, str) and self.monitor.live_rate.findText(rate) >= 0:
            self.monitor.live_rate.setCurrentText(rate)

    def may_close(self) -> bool:
        """Before the user closes the window: a run still training may stop, unsaved builder edits may go (saved
        first, or discarded); False if the user cancelled."""
        if self.state in (RunState.TRAINING, RunState.PAUSED) and not self.confirm_stop("Quitting"):
            return False
        why = "Quitting loses them."
        return self.builder.undo_stack.isClean() or self.builder.confirm_discard("", why=why)

    def _quit(self) -> None:
        if self.may_close():
            self._asked_to_close = True
            self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        # The user closing the window (its title bar: a spontaneous event) is asked; File → Quit asked already, and
        # a program closing it (the self-test, tests) is not.
        if event.spontaneous() and not self._asked_to_close and not self.may_close():
            event.ignore()
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(SETTINGS_VERSION))
        self.settings.sync()
        self.loader.shutdown()
        self.run_check.shutdown()
        self.builder.shutdown()
        self.monitor.runs.shutdown()
        if not self.bridge.shutdown():
            QMessageBox.warning(self, "Lumen", "The training thread did not stop in time; quitting anyway.")
        super().closeEvent(event)
