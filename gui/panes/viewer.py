"""Activation viewer pane: what the probes see. It chooses the probe input (a validation digit, or a picture
dropped or opened here) and hosts one view per frame type (``gui.views.VIEWS``), routing each frame to the
view registered for its type. With one view there are no tabs; with several, one tab each.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QSpinBox, QTabWidget, QVBoxLayout, QWidget

from engine.runtime.events import Frame
from gui import views as view_registry
from gui.views.base import View

log = logging.getLogger(__name__)

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp *.tif *.tiff);;All files (*)"


class ViewerPane(QWidget):
    probe_index_changed = Signal(int)
    image_dropped = Signal(str)  # a file path the user dropped or opened
    spec_dropped = Signal(str)  # a model spec (.json) dropped here: the window opens it in the builder

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.frame: Frame | None = None  # the newest frame shown, of any type
        self.frames: dict[type[Frame], Frame] = {}  # the newest frame shown, per type
        self.caption = QLabel("No input yet.")
        self.probe = QSpinBox(minimum=0, maximum=9999, prefix="validation digit #")
        self.probe.setToolTip("Which digit of the validation set to feed the model")
        self.probe.valueChanged.connect(self.probe_index_changed)
        open_button = QPushButton("Open image…")
        open_button.clicked.connect(self._open_dialog)
        self.message = QLabel("Drop a PNG or JPEG of a digit anywhere on this pane to see what the model makes of it.")
        self.message.setWordWrap(True)

        self.views: dict[type[Frame], View] = {
            frame_type: view_type() for frame_type, view_type in view_registry.VIEWS.items()
        }
        self.tabs = QTabWidget(documentMode=True, tabBarAutoHide=True)  # one view: no tab bar at all
        for view in self.views.values():
            view.setAcceptDrops(False)  # drops go to the pane
            self.tabs.addTab(view, view.title)
        self.tabs.currentChanged.connect(self._show_caption)

        top = QHBoxLayout()
        top.addWidget(self.caption, 1)
        top.addWidget(self.probe)
        top.addWidget(open_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.message)
        layout.addWidget(self.tabs, 1)

    # ---- showing frames ---------------------------------------------------------------------------
    def show_frame(self, frame: Frame) -> None:
        view = self.views.get(type(frame))
        if view is None:
            log.warning("no view is registered for %s frames; add one to gui/views/__init__.py", type(frame).__name__)
            return
        self.frame = frame
        self.frames[type(frame)] = frame
        view.show_frame(frame)
        if view is self.tabs.currentWidget():
            self.caption.setText(view.caption(frame))

    def _show_caption(self) -> None:
        view = self.tabs.currentWidget()
        frame = next((f for t, f in self.frames.items() if self.views[t] is view), None)
        if isinstance(view, View) and frame is not None:
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
        self.image_dropped.emit(paths[0])
        if len(paths) > 1:
            self.show_message(f"Showing {Path(paths[0]).name}; drop one image at a time.")

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", "", IMAGE_FILTER)
        if path:
            self.image_dropped.emit(path)
