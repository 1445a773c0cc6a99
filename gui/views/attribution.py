"""The attribution view: one or two attribution maps laid over the probe input, side by side.

Controls choose what the engine's attribution probe computes (the methods, the class explained, each method's
options) and are sent to the worker as one ``SetAttribution`` command; the probe's frames come back at most
10 times a second. Each panel is the input as the model sees it with the map on top: an ImageItem with
explicit levels and a 256-entry RGBA lookup table whose alpha grows with the attribution, so weak
attribution lets the picture through; the opacity slider fades the whole overlay.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.errors import LumenError
from engine.explain.attribution import BASELINES, METHODS, AttributionSettings
from engine.probes.attribution import AttributionFrame, MethodMap
from engine.runtime.commands import SetAttribution
from gui.views.base import View

NONE = "(none)"
SIGNED_CMAP, UNSIGNED_CMAP = "CET-D1", "CET-L3"  # blue–white–red for signed maps, black–red–yellow otherwise
SEND_DELAY_MS = 150  # typing "128" in a spin box sends one command, not three


def overlay_lut(signed: bool) -> np.ndarray:
    """256×4 uint8 RGBA: the colour map with alpha rising with |attribution| (0 at zero)."""
    lut = pg.colormap.get(SIGNED_CMAP if signed else UNSIGNED_CMAP).getLookupTable(nPts=256, alpha=True).copy()
    ramp = np.abs(np.linspace(-1, 1, 256)) if signed else np.linspace(0, 1, 256)
    lut[:, 3] = np.round(255 * np.sqrt(ramp)).astype(np.uint8)
    return np.ascontiguousarray(lut)


class MapPanel:
    """A title and one box: the input image with the attribution overlaid."""

    def __init__(self, layout: pg.GraphicsLayout, col: int):
        self.title = layout.addLabel("", row=0, col=col)
        self.box = layout.addViewBox(row=1, col=col, lockAspect=True, invertY=True, enableMouse=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image)
        self.box.addItem(self.overlay)
        self.luts = {signed: overlay_lut(signed) for signed in (False, True)}
        self.signed: bool | None = None

    def show(self, image: np.ndarray, shown: MethodMap | None, opacity: float) -> None:
        self.image.setImage(image, levels=(0.0, 1.0), autoLevels=False)
        if shown is None or shown.error:
            self.overlay.clear()
            self.title.setText(f"<b>{shown.title}</b>: {shown.error}" if shown else "")
            return
        if shown.signed != self.signed:
            self.signed = shown.signed
            self.overlay.setLookupTable(self.luts[shown.signed])
        self.overlay.setImage(shown.heat, levels=shown.levels, autoLevels=False)
        self.overlay.setOpacity(opacity)
        self.title.setText(_panel_title(shown))

    def set_opacity(self, opacity: float) -> None:
        self.overlay.setOpacity(opacity)


def _panel_title(shown: MethodMap) -> str:
    extra = ""
    if shown.delta is not None:
        extra = f" · convergence δ = {shown.delta:.2g}"
    elif shown.layer:
        extra = f" · layer {shown.layer}"
    return f"<b>{shown.title}</b>{extra}"


class AttributionView(View):
    title = "Attribution"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frame: AttributionFrame | None = None
        names = list(METHODS)
        defaults = AttributionSettings()
        self.method_a = QComboBox()
        self.method_a.addItems(names)
        self.method_a.setCurrentText(defaults.methods[0])
        self.method_b = QComboBox()
        self.method_b.addItems([NONE, *names])
        self.method_b.setCurrentText(defaults.methods[1] if len(defaults.methods) > 1 else NONE)
        self.target = QComboBox()
        self.target.addItem("predicted class", None)
        self.target.setToolTip("The class whose score is explained")
        self.opacity = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=70)
        self.opacity.setToolTip("Opacity of the attribution over the picture")
        # Method options (each method reads the ones it takes).
        self.steps = QSpinBox(minimum=1, maximum=1024, value=50)
        self.steps.setToolTip("Integrated gradients: points on the path from the baseline to the input")
        self.baseline = QComboBox()
        self.baseline.addItems(list(BASELINES))
        self.baseline.setToolTip("Integrated gradients: the picture the path starts from")
        self.samples = QSpinBox(minimum=1, maximum=256, value=16)
        self.samples.setToolTip("SmoothGrad: noisy copies averaged")
        self.noise = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.05, value=0.15, decimals=2)
        self.noise.setToolTip("SmoothGrad: standard deviation of the noise, in input units")
        self.window = QSpinBox(minimum=0, maximum=512, value=0, specialValueText="auto")
        self.window.setToolTip("Occlusion: side of the square patch blacked out (auto: a seventh of the picture)")
        self.stride = QSpinBox(minimum=0, maximum=512, value=0, specialValueText="auto")
        self.stride.setToolTip("Occlusion: how far the patch moves each time (auto: half the window)")
        self.option_rows: dict[str, tuple[QWidget, ...]] = {}

        controls = QHBoxLayout()
        for label, widget in (("Method", self.method_a), ("beside", self.method_b), ("Explain", self.target)):
            controls.addWidget(QLabel(label))
            controls.addWidget(widget)
        controls.addWidget(QLabel("Opacity"))
        controls.addWidget(self.opacity, 1)
        rows = QHBoxLayout()
        for method, widgets in (
            ("integrated-gradients", (("steps", self.steps), ("baseline", self.baseline))),
            ("smoothgrad", (("samples", self.samples), ("noise σ", self.noise))),
            ("occlusion", (("window", self.window), ("stride", self.stride))),
        ):
            box = QWidget()
            row = QHBoxLayout(box)
            row.setContentsMargins(0, 0, 0, 0)
            row.addWidget(QLabel(f"<i>{METHODS[method].title}</i>:"))
            for label, widget in widgets:
                row.addWidget(QLabel(label))
                row.addWidget(widget)
            rows.addWidget(box)
            self.option_rows[method] = (box,)
        rows.addStretch(1)
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setAcceptDrops(False)  # drops go to the pane
        self.panels = [MapPanel(self.canvas.ci, 0), MapPanel(self.canvas.ci, 1)]
        self.predictions = QLabel()
        self.predictions.setWordWrap(True)
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #c0392b;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(rows)
        layout.addWidget(self.problem)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.predictions)

        self._send_timer = QTimer(self, singleShot=True, interval=SEND_DELAY_MS)
        self._send_timer.timeout.connect(self.send_settings)
        for combo in (self.method_a, self.method_b, self.target, self.baseline):
            combo.currentIndexChanged.connect(self._changed)
        for spin in (self.steps, self.samples, self.noise, self.window, self.stride):
            spin.valueChanged.connect(self._changed)
        self.opacity.valueChanged.connect(self._opacity_changed)
        self._show_relevant_options()

    # ---- what the engine computes ------------------------------------------------------------------
    def settings(self) -> AttributionSettings:
        """The controls as the probe's settings (raises LumenError for a combination the engine refuses)."""
        methods = [self.method_a.currentText()]
        if self.method_b.currentText() not in (NONE, methods[0]):
            methods.append(self.method_b.currentText())
        options = {
            "steps": self.steps.value(),
            "baseline": self.baseline.currentText(),
            "samples": self.samples.value(),
            "noise": self.noise.value(),
            "window": self.window.value() or None,
            "stride": self.stride.value() or None,
        }
        return AttributionSettings(tuple(methods), self.target.currentData(), options)

    def _changed(self) -> None:
        self._show_relevant_options()
        self._send_timer.start()

    def send_settings(self) -> None:
        try:
            command = SetAttribution(self.settings())
        except LumenError as exc:
            self.problem.setText(str(exc))
            return
        self.problem.setText("")
        self.command.emit(command)

    def _show_relevant_options(self) -> None:
        chosen = {self.method_a.currentText(), self.method_b.currentText()}
        for method, widgets in self.option_rows.items():
            for widget in widgets:
                widget.setVisible(method in chosen)

    def _opacity_changed(self) -> None:
        for panel in self.panels:
            panel.set_opacity(self.opacity.value() / 100)

    # ---- drawing ----------------------------------------------------------------------------------
    def caption(self, frame: AttributionFrame) -> str:  # type: ignore[override]
        label = f" (true label {frame.label})" if frame.label is not None else ""
        explained = f" · explaining class <b>{frame.target_name}</b>" if frame.target is not None else ""
        return f"<b>{frame.source}</b>{label}{explained} · model at step {frame.step}"

    def show_frame(self, frame: AttributionFrame) -> None:  # type: ignore[override]
        self.frame = frame
        self._update_classes(frame.classes)
        opacity = self.opacity.value() / 100
        for i, panel in enumerate(self.panels):
            shown = frame.maps[i] if i < len(frame.maps) else None
            panel.show(frame.image, shown, opacity)
        if frame.note:
            self.predictions.setText(frame.note)
        else:
            self.predictions.setText("Predictions: " + ", ".join(f"{name} {p:.0%}" for name, p in frame.predictions))

    def _update_classes(self, classes: tuple[str, ...]) -> None:
        current = tuple(self.target.itemText(i) for i in range(1, self.target.count()))
        if not classes or current == classes:
            return
        chosen = self.target.currentData()
        self.target.blockSignals(True)
        try:
            while self.target.count() > 1:
                self.target.removeItem(1)
            for index, name in enumerate(classes):
                self.target.addItem(name, index)
            self.target.setCurrentIndex(chosen + 1 if chosen is not None and chosen < len(classes) else 0)
        finally:
            self.target.blockSignals(False)
