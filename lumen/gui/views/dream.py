"""Activation maximization and DeepDream: pick what to excite, start, watch the picture grow, stop.

The job runs on the worker (``Maximize`` / ``Dream`` commands) in slices, so training, pause and probe
changes still get through; its ``DreamFrame``s bring the picture so far and the share done. The layer and
class pickers follow the model: the view reads them from the ``ModelInfo`` of each model loaded. A neuron is one
unit of a channel: the user picks its row and column in the layer's output (the centre unless chosen); the boxes'
ranges and the shape beside them follow the layer picked.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lumen.engine.events import ModelInfo
from lumen.engine.explain.dream import DreamSettings
from lumen.engine.explain.jobs import DreamFrame
from lumen.engine.explain.maximize import MaximizeSettings, MaximizeTarget
from lumen.engine.runtime.commands import CancelJob, Dream, Maximize
from lumen.gui.views.base import View
from lumen.gui.widgets.export import ExportButton

MODES = {
    "class": "Maximize a class",
    "channel": "Maximize a channel",
    "neuron": "Maximize a neuron (one position of a channel)",
    "dream": "DeepDream on the probe input",
}


class DreamView(View):
    title = "Dream"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frame: DreamFrame | None = None
        self.running = False
        self.mode = QComboBox()
        for key, text in MODES.items():
            self.mode.addItem(text, key)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.layer = QComboBox()
        self.layer.setToolTip("The layer whose channel (or, for DeepDream, whose whole output) is excited")
        self.channel = QSpinBox(minimum=-1, maximum=100_000, value=0, specialValueText="whole layer")
        self.channel.setToolTip("Which channel (or unit) of the layer; DeepDream: −1 for the whole layer")
        self.target_class = QComboBox()
        # A neuron's position: row and column in the channel's map; −1 ("centre") lets the engine take the middle.
        self.neuron_y = QSpinBox(minimum=-1, maximum=100_000, value=-1, specialValueText="centre")
        self.neuron_y.setToolTip("The neuron's row in the channel's map (from the top, 0-based)")
        self.neuron_x = QSpinBox(minimum=-1, maximum=100_000, value=-1, specialValueText="centre")
        self.neuron_x.setToolTip("The neuron's column in the channel's map (from the left, 0-based)")
        self.layer_shape = QLabel()
        self.shapes: dict[str, tuple[int, ...]] = {}  # each layer's output shape, from the model's ModelInfo
        self.layer.currentIndexChanged.connect(self._layer_changed)
        self.steps = QSpinBox(minimum=1, maximum=10_000, value=256)
        self.steps.setToolTip("Optimiser steps (DeepDream: per octave)")
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop", enabled=False)
        self.stop_button.clicked.connect(self.stop)
        self.progress = QProgressBar(minimum=0, maximum=1000, value=0, textVisible=True, format="%p%")
        self.status = QLabel("Pick what to excite and press Start.")
        self.status.setWordWrap(True)
        self.export = ExportButton(lambda: self.canvas.ci, self.export_array, self.export_name)
        form = QFormLayout()
        form.addRow("What", self.mode)
        form.addRow("Class", self.target_class)
        form.addRow("Layer", self.layer)
        form.addRow("Channel", self.channel)
        position = QHBoxLayout()
        for label, box in (("row", self.neuron_y), ("column", self.neuron_x)):
            position.addWidget(QLabel(label))
            position.addWidget(box)
        position.addWidget(self.layer_shape, 1)
        self.position = QWidget()
        self.position.setLayout(position)
        position.setContentsMargins(0, 0, 0, 0)
        form.addRow("Position", self.position)
        form.addRow("Steps", self.steps)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.export)
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setAcceptDrops(False)
        self.box = self.canvas.ci.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image)
        controls = QVBoxLayout()
        controls.addLayout(form)
        controls.addLayout(buttons)
        controls.addWidget(self.status)
        controls.addStretch(1)
        row = QHBoxLayout()
        row.addLayout(controls)
        row.addWidget(self.canvas, 1)
        layout = QVBoxLayout(self)  # vertical, so a view's error line (View.error_line) sits above it
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row, 1)
        self._mode_changed()

    def applies(self, info: ModelInfo) -> bool:
        """Pictures through conv layers."""
        return info.input_kind == "image" and "conv2d" in info.layer_types

    def model_changed(self, info: ModelInfo) -> None:
        """The model's layers (its last conv layer chosen) and classes; maximizing a class needs class scores, so
        it is offered for classifiers only."""
        index = self.mode.findData("class")
        if info.classifier and index < 0:
            self.mode.insertItem(0, MODES["class"], "class")
        elif not info.classifier and index >= 0:
            self.mode.removeItem(index)
        self.shapes = dict(zip((node for node, _ in info.layers), info.layer_shapes, strict=False))
        self.layer.clear()
        for node, kind in info.layers:
            self.layer.addItem(f"{node} ({kind})", node)
        convs = [node for node, kind in info.layers if kind.startswith("conv")]
        if info.layers:
            self.layer.setCurrentIndex(max(0, self.layer.findData((convs or [info.layers[-1][0]])[-1])))
        self.target_class.clear()
        self.target_class.addItems(list(info.classes))

    def _mode_changed(self) -> None:
        mode = self.mode.currentData()
        self.target_class.setEnabled(mode == "class")
        self.layer.setEnabled(mode != "class")
        self.channel.setEnabled(mode != "class")
        self.position.setEnabled(mode == "neuron")
        self.steps.setValue(20 if mode == "dream" else 256)

    def _layer_changed(self) -> None:
        """The channel and position boxes reach as far as the layer's output: C×H×W (a map), C×L, or C."""
        shape = self.shapes.get(self.layer.currentData() or "", ())
        self.layer_shape.setText(f"of {'×'.join(map(str, shape))}" if shape else "")
        if shape:
            self.channel.setMaximum(shape[0] - 1)
        spatial = shape[1:]
        self.neuron_y.setMaximum(spatial[0] - 1 if len(spatial) == 2 else -1)  # a 1-D map has columns only
        self.neuron_x.setMaximum(spatial[-1] - 1 if spatial else -1)
        if not shape:
            for box in (self.channel, self.neuron_y, self.neuron_x):
                box.setMaximum(100_000)

    # ---- commands ------------------------------------------------------------------------------------
    def start(self) -> None:
        mode = self.mode.currentData()
        layer = self.layer.currentData()
        if mode == "class":
            if self.target_class.count() == 0:
                self.status.setText("The model has no classes to maximize.")
                return
            command: Maximize | Dream = Maximize(
                MaximizeTarget("class", self.target_class.currentIndex()), MaximizeSettings(steps=self.steps.value())
            )
        elif layer is None:
            self.status.setText("No layer to excite yet: load a model that takes images.")
            return
        elif mode == "dream":
            channel = self.channel.value()
            command = Dream(layer, None if channel < 0 else channel, DreamSettings(steps=self.steps.value()))
        else:
            y, x = (box.value() if mode == "neuron" and box.value() >= 0 else None for box in self.position_boxes)
            command = Maximize(
                MaximizeTarget(mode, max(self.channel.value(), 0), layer, y, x),
                MaximizeSettings(steps=self.steps.value()),
            )
        self.running = True
        self.progress.setValue(0)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.status.setText("Starting…")
        self.command.emit(command)

    @property
    def position_boxes(self) -> tuple[QSpinBox, QSpinBox]:
        return self.neuron_y, self.neuron_x

    def stop(self) -> None:
        self.command.emit(CancelJob())
        self.stop_button.setEnabled(False)

    # ---- frames --------------------------------------------------------------------------------------
    def caption(self, frame: DreamFrame) -> str:  # type: ignore[override]
        return f"<b>{frame.method}</b> of {frame.target} · model at step {frame.step}"

    def show_frame(self, frame: DreamFrame) -> None:  # type: ignore[override]
        self.frame = frame
        self.image.setImage(frame.image, levels=(0.0, 1.0), autoLevels=False)
        self.progress.setValue(round(frame.fraction * 1000))
        probability = f"; the model gives it {frame.probability:.1%}" if frame.probability is not None else ""
        if frame.done:
            self.running = False
            self.start_button.setEnabled(True)
            self.stop_button.setEnabled(False)
            state = "stopped" if frame.cancelled else "done"
            self.status.setText(f"{frame.method} of {frame.target}: {state} at {frame.fraction:.0%}{probability}")
        else:
            self.status.setText(f"{frame.method} of {frame.target}: {frame.fraction:.0%}{probability}")

    def export_array(self) -> np.ndarray | None:
        return self.frame.picture if self.frame is not None else None

    def export_name(self) -> str:
        if self.frame is None:
            return "dream"
        return f"{'dream' if self.frame.method == 'deepdream' else 'maximize'}-{self.frame.target.replace(' ', '-')}"
