"""Activation viewer pane: what the probes see. It chooses the probe input (a validation digit, or a picture
dropped or opened here, or one of the pictures of a dropped folder, stepped through) and hosts one view per
frame type (``gui.views.VIEWS``), routing each frame to the view registered for its type. With one view there
are no tabs; with several, one tab each. The invariance sliders shift, rotate and scale the probe input on
the worker (``TransformProbe``), so predictions and maps follow.

The replay row goes back in time: its slider runs over the checkpoints of the run being trained (or the last one,
or the run picked in the monitor's runs list) and shows the views with that checkpoint's weights
(``ReplayCheckpoint``); "Live" goes back to the live frames. While replaying, live frames are kept but not drawn.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from lumen.engine.events import CheckpointList, Frame, ModelInfo, ModelLoaded
from lumen.engine.runtime.commands import (
    ProbeSample,
    ProbeSequence,
    ReplayCheckpoint,
    SetCheckpointInterval,
    TransformProbe,
)
from lumen.gui import views as view_registry
from lumen.gui.errors import draw_safely
from lumen.gui.views.base import View

log = logging.getLogger(__name__)

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp *.tif *.tiff);;All files (*)"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_FOLDER_IMAGES = 10_000  # a dropped folder offers at most this many pictures
# The invariance sliders: (name, minimum, maximum, neutral, label format).
TRANSFORM_SLIDERS = {
    "shift_x": (-14, 14, 0, "shift x {:+d} px"),
    "shift_y": (-14, 14, 0, "shift y {:+d} px"),
    "angle": (-180, 180, 0, "rotate {:+d}°"),
    "scale": (50, 200, 100, "scale {:d} %"),
}
# What the viewer says for a family none of whose views apply yet (rather than a blank pane or another model's picture).
NOT_YET: dict[str, str] = {}  # family → that line (every family has a view now)
NOTHING_APPLIES = "No view of the activation viewer applies to {name}; the monitor shows how it trains."
MIN_VIEW_WIDTH = 420
DROP_HINT = (
    "Drop a PNG or JPEG of a digit (or a folder of pictures) anywhere on this pane to see what the model makes of it."
)
NO_CHECKPOINTS = (
    "No checkpoints yet: a recorded run keeps one at an epoch's end (at most one every 5 s), at its end, every N "
    "steps when chosen here, and when you press Checkpoint now."
)


def _asked(frame: Frame) -> tuple:
    """What a frame was made for: its input and layer choice (for the frame types that have them)."""
    return getattr(frame, "source", None), getattr(frame, "choice", None)


def folder_images(folder: str | Path) -> list[Path]:
    """The pictures directly in ``folder`` (by name: PNG, JPEG, ...), sorted, at most ``MAX_FOLDER_IMAGES``."""
    found = []
    for entry in sorted(Path(folder).iterdir()):
        if entry.suffix.lower() in IMAGE_SUFFIXES and entry.is_file():
            found.append(entry)
            if len(found) >= MAX_FOLDER_IMAGES:
                break
    return found


class ViewerPane(QWidget):
    probe_index_changed = Signal(int)
    image_dropped = Signal(str)  # a file path the user dropped or opened
    spec_dropped = Signal(str)  # a model spec (.json) dropped here: the window opens it in the builder
    run_dropped = Signal(str)  # a run folder (it holds run.json) dropped here: the window opens the run
    command = Signal(object)  # a worker command one of the views asks for (``View.command``)
    watching = Signal(object)  # the frame types on screen, a frozenset: the engine runs only their probes

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.frame: Frame | None = None  # the newest frame shown by the view on top (the caption's)
        self.frames: dict[type[Frame], Frame] = {}  # the newest frame shown, per type
        self.caption = QLabel("No input yet.", wordWrap=True)  # wraps: a long caption must not widen the window
        self.probe = QSpinBox(minimum=0, maximum=9999, prefix="validation digit #")
        self.probe.setToolTip("Which sample of the validation set to feed the model")
        self.info: ModelInfo | None = None  # the model loaded
        self.probe.valueChanged.connect(self.probe_index_changed)
        self.open_button = open_button = QPushButton("Open image…")
        open_button.clicked.connect(self._open_dialog)
        # A sequence model's own input: text typed for a character model (a CSV file is dropped or opened).
        self.text = QLineEdit(
            placeholderText="Type text, press Enter (empty: back to the sample)", clearButtonEnabled=True
        )
        self.text.setToolTip("Feed the model this text, one character per time step")
        self.text.returnPressed.connect(self._send_text)
        self.text.hide()
        self.message = QLabel(DROP_HINT, wordWrap=True)
        # A dropped folder: its pictures, stepped through with this box (hidden until then).
        self.folder: list[Path] = []
        self.folder_step = QSpinBox(minimum=1, maximum=1, prefix="picture ")
        self.folder_step.setToolTip("Step through the pictures of the dropped folder")
        self.folder_step.setVisible(False)
        self.folder_step.valueChanged.connect(self._show_folder_image)
        # Invariance: shift, rotate and scale the probe input (coalesced: the newest values win).
        self.transform_sliders: dict[str, QSlider] = {}
        self.transform_labels: dict[str, QLabel] = {}
        invariance = QHBoxLayout()
        for name, (low, high, neutral, text) in TRANSFORM_SLIDERS.items():
            slider = QSlider(Qt.Orientation.Horizontal, minimum=low, maximum=high, value=neutral)
            label = QLabel(text.format(neutral))
            slider.valueChanged.connect(self._transform_moved)
            self.transform_sliders[name], self.transform_labels[name] = slider, label
            invariance.addWidget(label)
            invariance.addWidget(slider, 1)
        reset = QPushButton("Reset")
        reset.setToolTip("Undo the shift, rotation and scale")
        reset.clicked.connect(self.reset_transform)
        invariance.addWidget(reset)
        self._transform_timer = QTimer(self, singleShot=True, interval=60)
        self._transform_timer.timeout.connect(self._send_transform)
        self.message.setWordWrap(True)
        self.not_yet = QLabel(wordWrap=True)  # said instead of the views when none applies to the model
        self.not_yet.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.not_yet.setStyleSheet("color: #555; font-size: 14px; padding: 24px;")
        self.not_yet.hide()
        self.invariance = QWidget()
        self.invariance.setLayout(invariance)
        invariance.setContentsMargins(0, 0, 0, 0)
        replay = self._make_replay_row()

        self.views: dict[type[Frame], View] = {
            frame_type: view_type() for frame_type, view_type in view_registry.VIEWS.items()
        }
        self.tabs = QTabWidget(documentMode=True, tabBarAutoHide=True)  # one view: no tab bar at all
        # A tab widget is as wide as its widest page's controls, shown or not (the attribution view's: ~730 px);
        # a set minimum bounds the dock, so the window fits a 1366-px screen whatever model is loaded.
        self.tabs.setMinimumWidth(MIN_VIEW_WIDTH)
        for view in self.views.values():
            view.setAcceptDrops(False)  # drops go to the pane
            view.command.connect(self.command)
            self.tabs.addTab(view, view.title)
        self._undrawn: dict[View, Frame] = {}  # the newest frame of each view not drawn while it was hidden
        self._watched: frozenset[type[Frame]] | None = None  # what ``watching`` last said
        self.tabs.currentChanged.connect(self._show_caption)

        top = QHBoxLayout()
        top.addWidget(self.caption, 1)
        top.addWidget(self.text, 1)
        top.addWidget(self.probe)
        top.addWidget(self.folder_step)
        top.addWidget(open_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.invariance)
        self.replay_row = QWidget()
        self.replay_row.setLayout(replay)
        replay.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.replay_row)
        layout.addWidget(self.message)
        layout.addWidget(self.not_yet, 1)
        layout.addWidget(self.tabs, 1)

    def _make_replay_row(self) -> QHBoxLayout:
        self.replay_run: str | None = None  # the run whose checkpoints the slider runs over
        self.replay_steps: tuple[int, ...] = ()
        self.replaying = False  # showing a checkpoint's frames; live ones are kept in ``live_frames``, not drawn
        self.followed_run: str | None = None  # a run picked in the runs list; None: the engine's own run
        self.live_frames: dict[type[Frame], Frame] = {}  # the newest live frame per type, drawn again by Live
        self._replay_asked: dict[type[Frame], tuple] = {}  # the input each replay was asked again for
        self.replay_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=0, enabled=False)
        self.replay_slider.setToolTip(NO_CHECKPOINTS)
        self.replay_slider.valueChanged.connect(self._replay_moved)
        self.replay_label = QLabel("live (no checkpoints)")
        self.live_button = QPushButton("Live", enabled=False)
        self.live_button.setToolTip("Back to the live frames of the model as it trains")
        self.live_button.clicked.connect(self.go_live)
        self.checkpoint_every = QSpinBox(minimum=0, maximum=1_000_000, singleStep=10, prefix="every ", suffix=" steps")
        self.checkpoint_every.setSpecialValueText("each epoch")
        self.checkpoint_every.setToolTip(
            "How often a recorded run keeps a checkpoint to replay (from now on); 'each epoch': at an epoch's end, "
            "at most one every 5 s"
        )
        self.checkpoint_every.valueChanged.connect(lambda steps: self.command.emit(SetCheckpointInterval(steps)))
        self._replay_timer = QTimer(self, singleShot=True, interval=60)  # a dragged slider: its newest position
        self._replay_timer.timeout.connect(self._send_replay)
        row = QHBoxLayout()
        row.addWidget(QLabel("Replay"))
        row.addWidget(self.replay_slider, 1)
        row.addWidget(self.replay_label)
        row.addWidget(self.live_button)
        row.addWidget(QLabel("checkpoints:"))
        row.addWidget(self.checkpoint_every)
        return row

    # ---- showing frames ---------------------------------------------------------------------------
    def show_frame(self, frame: Frame) -> None:
        view = self.views.get(type(frame))
        if view is None:
            log.warning("no view is registered for %s frames; add one to gui/views/__init__.py", type(frame).__name__)
            return
        replayed = frame.checkpoint_step is not None
        if not replayed:
            self.live_frames[type(frame)] = frame
            if self.replaying:
                self._follow_input(frame)
        if replayed != self.replaying:  # a live frame while replaying, or a replay that arrived after Live
            return
        self._draw(view, frame)

    def _draw(self, view: View, frame: Frame) -> None:
        self.frames[type(frame)] = frame
        # A view in a tab behind another (or in a hidden dock) is drawn when it is shown, with its newest frame:
        # drawing it unseen at 10 frames a second would cost the GUI thread, and so training, for nothing.
        if view.isVisible():
            self._undrawn.pop(view, None)
            draw_safely(view, frame)
        else:
            self._undrawn[view] = frame
        if view is self.tabs.currentWidget():
            self.frame = frame
            self.caption.setText(self._caption(view, frame))

    def _caption(self, view: View, frame: Frame) -> str:
        text = view.caption(frame)
        return text if frame.checkpoint_step is None else f"<b>checkpoint step {frame.checkpoint_step}</b> · {text}"

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._draw_undrawn()
        self._announce_watched()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._announce_watched()

    def watched(self) -> frozenset[type[Frame]]:
        """The frame types on screen: the current tab's; none while hidden."""
        view = self.tabs.currentWidget()
        if not self.isVisible() or not self.tabs.isVisibleTo(self) or not isinstance(view, View):
            return frozenset()
        return frozenset({next(t for t, v in self.views.items() if v is view)})

    def _announce_watched(self) -> None:
        watched = self.watched()
        if watched != self._watched:
            self._watched = watched
            self.watching.emit(watched)

    def _draw_undrawn(self) -> None:
        view = self.tabs.currentWidget()
        frame = self._undrawn.pop(view, None) if isinstance(view, View) and view.isVisible() else None
        if frame is not None:
            draw_safely(view, frame)

    def _show_caption(self) -> None:
        self._draw_undrawn()
        self._announce_watched()
        view = self.tabs.currentWidget()
        frame = next((f for t, f in self.frames.items() if self.views[t] is view), None)
        if isinstance(view, View) and frame is not None:
            self.frame = frame
            self.caption.setText(self._caption(view, frame))

    # ---- another model ------------------------------------------------------------------------------------
    def model_loaded(self, loaded: ModelLoaded) -> None:
        """Forget every frame of the last model, show only the tabs whose views apply to this one (or say that
        none does), and name the probe input after the data (a digit, a picture, a sequence)."""
        before, info = self.info, loaded.info
        self.info = info
        if self.replaying:
            self.go_live()
        self.frames.clear()
        self.live_frames.clear()
        self._undrawn.clear()
        self._replay_asked.clear()
        self.frame = None
        for view in self.views.values():
            view.clear()
            view.error_line().hide()
            view.model_changed(info)
        applying = [t for t, v in self.views.items() if self._applies(v, t, loaded)]
        for frame_type, view in self.views.items():
            self.tabs.setTabVisible(self.tabs.indexOf(view), frame_type in applying)
        if applying and self._current_frame_type() not in applying:
            self.tabs.setCurrentWidget(self.views[applying[0]])
        self.tabs.setVisible(bool(applying))
        self.not_yet.setVisible(not applying)
        self.not_yet.setText(NOT_YET.get(info.family, NOTHING_APPLIES.format(name=info.name)))
        # The probe input's controls, where a view uses it (the autoencoder and Boltzmann views look at validation
        # samples of their own).
        probed = any(self.views[t].uses_probe_input for t in applying)
        image = info.input_kind == "image" and probed
        sequence = info.input_kind == "sequence" and probed
        self.open_button.setVisible(image or sequence)
        self.open_button.setText("Open CSV…" if sequence else "Open image…")
        self.open_button.setToolTip(
            "A CSV file of numbers: one row per time step, one column per input feature (or drop it here)"
            if sequence
            else "A picture to look at (or drop it here)"
        )
        self.text.setVisible(sequence and bool(info.characters))
        if before is None or before.characters != info.characters:
            self.text.clear()  # the engine goes back to the sample too: this text cannot be typed for this model
        self.invariance.setVisible(image)
        self.probe.setVisible(probed)
        self.replay_row.setVisible(bool(applying))
        self.replay_run, self.replay_steps = None, ()  # the last model's checkpoints are not this one's
        self.replay_slider.setMaximum(0)
        self.replay_slider.setEnabled(False)
        self._label_replay()
        self.probe.setPrefix(f"validation {info.sample_noun} #")
        self.probe.setToolTip(f"Which {info.sample_noun} of the validation set ({info.data}) to feed the model")
        self.caption.setText(f"<b>{info.name}</b> on {info.data}" + ("" if applying else " · nothing to draw yet"))
        if not image:
            self.show_message("")
        elif before is None or before.input_kind != "image" or not self.message.text():
            self.show_message(DROP_HINT)  # back to pictures; a message about a dropped picture stays otherwise
        self._announce_watched()

    @staticmethod
    def _applies(view: View, frame_type: type[Frame], loaded: ModelLoaded) -> bool:
        said = view.applies(loaded.info)
        return frame_type in loaded.frame_types if said is None else said

    def _current_frame_type(self) -> type[Frame] | None:
        view = self.tabs.currentWidget()
        return next((t for t, v in self.views.items() if v is view), None)

    # ---- replaying a run's checkpoints ---------------------------------------------------------------
    def follow_run(self, run_id: str | None) -> None:
        """Replay the checkpoints of ``run_id`` (picked in the runs list); None: the engine's own run."""
        if run_id is not None and self.replaying and run_id != self.replay_run:
            self.go_live()  # another run picked: its checkpoints replace the slider's
        self.followed_run = run_id

    def set_checkpoints(self, listed: CheckpointList) -> None:
        """A run's checkpoints: the slider runs over them if it is the run followed (the engine's own one unless
        another was picked), and not while another run is being replayed."""
        followed = listed.run == self.followed_run if self.followed_run is not None else listed.live
        if not followed:
            return
        if self.replaying and listed.run != self.replay_run:
            return
        current = self.replay_step()
        self.replay_run, self.replay_steps = listed.run, listed.steps
        slider = self.replay_slider
        slider.blockSignals(True)
        slider.setMaximum(max(0, len(listed.steps) - 1))
        if self.replaying and current in listed.steps:
            slider.setValue(listed.steps.index(current))
        elif not self.replaying:
            slider.setValue(slider.maximum())  # live: the newest checkpoint, one move from the past
        slider.blockSignals(False)
        slider.setEnabled(bool(listed.steps))
        slider.setToolTip(
            f"Checkpoints of run {listed.run}: drag to see the views with their weights" if listed.steps
            else NO_CHECKPOINTS
        )  # fmt: skip
        self._label_replay()

    def replay_step(self) -> int | None:
        """The checkpoint step the slider is on (None: no checkpoints)."""
        index = self.replay_slider.value()
        return self.replay_steps[index] if 0 <= index < len(self.replay_steps) else None

    def _label_replay(self) -> None:
        step, count = self.replay_step(), len(self.replay_steps)
        if self.replaying and step is not None:
            self.replay_label.setText(f"checkpoint step {step} ({self.replay_slider.value() + 1} of {count})")
        else:
            self.replay_label.setText("live" if count else "live (no checkpoints)")

    def _replay_moved(self) -> None:
        if not self.replay_steps:
            return
        self.replaying = True
        self.live_button.setEnabled(True)
        self._label_replay()
        self._replay_timer.start()

    def _send_replay(self) -> None:
        step = self.replay_step()
        if self.replaying and step is not None:
            self.command.emit(ReplayCheckpoint(step, self.replay_run))

    def _follow_input(self, live: Frame) -> None:
        """While replaying, a live frame for another input or layer choice (a new digit, a dropped picture, a
        picked layer) asks for the replay again, once, so the checkpoint is shown on what the user now looks at."""
        shown = self.frames.get(type(live))
        wanted = _asked(live)
        if shown is not None and _asked(shown) != wanted and self._replay_asked.get(type(live)) != wanted:
            self._replay_asked[type(live)] = wanted
            self._replay_timer.start()

    def go_live(self) -> None:
        """Back to the live frames: the newest of each type is drawn at once."""
        self._replay_timer.stop()
        self.replaying = False
        self.live_button.setEnabled(False)
        self.replay_slider.blockSignals(True)
        self.replay_slider.setValue(self.replay_slider.maximum())  # live: beside the newest checkpoint
        self.replay_slider.blockSignals(False)
        self._label_replay()
        for frame_type, frame in self.live_frames.items():
            self._draw(self.views[frame_type], frame)

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #c0392b; font-weight: bold;" if error else "")
        self.message.setText(text)

    # ---- drag and drop, file dialog ------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        if paths[0].lower().endswith(".json"):
            self.spec_dropped.emit(paths[0])
            return
        if (Path(paths[0]) / "run.json").is_file():  # a saved run, not a folder of pictures
            self.run_dropped.emit(paths[0])
            return
        if self.info is not None and self.info.input_kind == "sequence":
            self.command.emit(ProbeSequence(path=paths[0]))  # a CSV file; anything else is refused with the reason
            return
        if Path(paths[0]).is_dir():
            self.open_folder(paths[0])
            return
        self._leave_folder()
        self.image_dropped.emit(paths[0])
        if len(paths) > 1:
            self.show_message(f"Showing {Path(paths[0]).name}; drop one image at a time.")

    def _open_dialog(self) -> None:
        if self.info is not None and self.info.input_kind == "sequence":
            path, _ = QFileDialog.getOpenFileName(self, "Open a sequence", "", "CSV files (*.csv);;All files (*)")
            if path:
                self.command.emit(ProbeSequence(path=path))
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", "", IMAGE_FILTER)
        if path:
            self._leave_folder()
            self.image_dropped.emit(path)

    def _send_text(self) -> None:
        text = self.text.text()
        self.command.emit(ProbeSequence(text=text) if text else ProbeSample(self.probe.value()))

    # ---- a folder of pictures ------------------------------------------------------------------------
    def open_folder(self, folder: str | Path) -> None:
        """Offer the pictures in ``folder`` to step through; the first is opened at once."""
        try:
            found = folder_images(folder)
        except OSError as exc:
            self.show_message(f"{Path(folder).name} cannot be read: {exc.strerror or exc}", error=True)
            return
        if not found:
            self.show_message(f"{Path(folder).name} holds no pictures (PNG, JPEG, BMP, GIF, WebP, TIFF).", error=True)
            return
        self.folder = found
        self.folder_step.blockSignals(True)
        self.folder_step.setMaximum(len(found))
        self.folder_step.setSuffix(f" of {len(found)}")
        self.folder_step.setValue(1)
        self.folder_step.blockSignals(False)
        self.folder_step.setVisible(True)
        self._show_folder_image(1)

    def _show_folder_image(self, number: int) -> None:
        if 1 <= number <= len(self.folder):
            self.image_dropped.emit(str(self.folder[number - 1]))

    def _leave_folder(self) -> None:
        self.folder = []
        self.folder_step.setVisible(False)

    # ---- invariance: the probe input moved --------------------------------------------------------------------------
    def _transform_moved(self) -> None:
        for name, (_, _, _, text) in TRANSFORM_SLIDERS.items():
            self.transform_labels[name].setText(text.format(self.transform_sliders[name].value()))
        self._transform_timer.start()

    def transform(self) -> TransformProbe:
        values = {name: slider.value() for name, slider in self.transform_sliders.items()}
        return TransformProbe(
            float(values["shift_x"]), float(values["shift_y"]), float(values["angle"]), values["scale"] / 100.0
        )

    def _send_transform(self) -> None:
        self.command.emit(self.transform())

    def reset_transform(self) -> None:
        for name, (_, _, neutral, _) in TRANSFORM_SLIDERS.items():
            self.transform_sliders[name].setValue(neutral)
