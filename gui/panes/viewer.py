"""Activation viewer pane: what the probes see. It chooses the probe input (a validation digit, or a picture
dropped or opened here, or one of the pictures of a dropped folder, stepped through) and hosts one view per
frame type (``gui.views.VIEWS``), routing each frame to the view registered for its type. With one view there
are no tabs; with several, one tab each. The invariance sliders shift, rotate and scale the probe input on
the worker (``TransformProbe``), so predictions and maps follow.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.runtime.commands import TransformProbe
from engine.runtime.events import Frame
from gui import views as view_registry
from gui.views.base import View

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
    command = Signal(object)  # a worker command one of the views asks for (``View.command``)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.frame: Frame | None = None  # the newest frame shown by the view on top (the caption's)
        self.frames: dict[type[Frame], Frame] = {}  # the newest frame shown, per type
        self.caption = QLabel("No input yet.", wordWrap=True)  # wraps: a long caption must not widen the window
        self.probe = QSpinBox(minimum=0, maximum=9999, prefix="validation digit #")
        self.probe.setToolTip("Which digit of the validation set to feed the model")
        self.probe.valueChanged.connect(self.probe_index_changed)
        open_button = QPushButton("Open image…")
        open_button.clicked.connect(self._open_dialog)
        self.message = QLabel(
            "Drop a PNG or JPEG of a digit (or a folder of pictures) anywhere on this pane to see what the model "
            "makes of it.",
            wordWrap=True,
        )
        # A dropped folder: its pictures, stepped through with this box (hidden until then).
        self.folder: list[Path] = []
        self.folder_step = QSpinBox(minimum=1, maximum=1, prefix="picture ")
        self.folder_step.setToolTip("Step through the pictures of the dropped folder")
        self.folder_step.setVisible(False)
        self.folder_step.valueChanged.connect(self._show_folder_image)
        # The invariance probe: shift, rotate and scale the probe input (coalesced: the newest values win).
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

        self.views: dict[type[Frame], View] = {
            frame_type: view_type() for frame_type, view_type in view_registry.VIEWS.items()
        }
        self.tabs = QTabWidget(documentMode=True, tabBarAutoHide=True)  # one view: no tab bar at all
        for view in self.views.values():
            view.setAcceptDrops(False)  # drops go to the pane
            view.command.connect(self.command)
            self.tabs.addTab(view, view.title)
        self.tabs.currentChanged.connect(self._show_caption)

        top = QHBoxLayout()
        top.addWidget(self.caption, 1)
        top.addWidget(self.probe)
        top.addWidget(self.folder_step)
        top.addWidget(open_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(invariance)
        layout.addWidget(self.message)
        layout.addWidget(self.tabs, 1)

    # ---- showing frames ---------------------------------------------------------------------------
    def show_frame(self, frame: Frame) -> None:
        view = self.views.get(type(frame))
        if view is None:
            log.warning("no view is registered for %s frames; add one to gui/views/__init__.py", type(frame).__name__)
            return
        self.frames[type(frame)] = frame
        for each in self.views.values():
            each.observe(frame)
        view.show_frame(frame)
        if view is self.tabs.currentWidget():
            self.frame = frame
            self.caption.setText(view.caption(frame))

    def _show_caption(self) -> None:
        view = self.tabs.currentWidget()
        frame = next((f for t, f in self.frames.items() if self.views[t] is view), None)
        if isinstance(view, View) and frame is not None:
            self.frame = frame
            self.caption.setText(view.caption(frame))

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
        if Path(paths[0]).is_dir():
            self.open_folder(paths[0])
            return
        self._leave_folder()
        self.image_dropped.emit(paths[0])
        if len(paths) > 1:
            self.show_message(f"Showing {Path(paths[0]).name}; drop one image at a time.")

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", "", IMAGE_FILTER)
        if path:
            self._leave_folder()
            self.image_dropped.emit(path)

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

    # ---- the invariance probe ---------------------------------------------------------------------------
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
