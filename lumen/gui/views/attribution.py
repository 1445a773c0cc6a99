"""The attribution view: one or two attribution maps laid over the probe input, side by side.

Controls choose what the engine's attribution probe computes (the methods, the class explained, each method's
options) and are sent to the worker as one ``ConfigureProbe`` command; the probe's frames come back at most
10 times a second. Each panel is the input as the model sees it with the map on top: an ImageItem with
explicit levels and a 256-entry RGBA lookup table whose alpha grows with the attribution, so weak
attribution lets the picture through; the opacity slider fades the whole overlay.

Integrated gradients can start from a picture of the user's (*picture…* in the baseline list: the engine prepares
it as it prepared the input); Grad-CAM can weigh any conv layer (the list follows the model). A long computation
(integrated gradients on a full-size model) runs on the worker in slices: its frames carry ``progress``, shown
with a bar and a *Stop* button (``CancelJob``). *Export* saves the panels as PNG or the maps as ``.npy``.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSizeF, Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lumen.engine.errors import LumenError
from lumen.engine.explain.attribution import BASELINES, METHODS, AttributionSettings
from lumen.engine.io.image_files import read_image
from lumen.engine.probes.attribution import AttributionFrame, AttributionProbe, BaselinePicture, MethodMap
from lumen.engine.runtime.commands import CancelJob, ConfigureProbe
from lumen.gui.views.base import View
from lumen.gui.widgets.export import ExportButton

NONE = "(none)"
PICTURE = "picture…"  # the baseline item that asks for a file
LAST_CONV = "last conv layer"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp)"
SIGNED_CMAP, UNSIGNED_CMAP = "CET-D1", "CET-L3"  # blue–white–red for signed maps, black–red–yellow otherwise
SEND_DELAY_MS = 150  # typing "128" in a spin box sends one command, not three


def overlay_lut(signed: bool) -> np.ndarray:
    """256×4 uint8 RGBA: the colour map with alpha rising with |attribution| (0 at zero)."""
    lut = pg.colormap.get(SIGNED_CMAP if signed else UNSIGNED_CMAP).getLookupTable(nPts=256, alpha=True).copy()
    ramp = np.abs(np.linspace(-1, 1, 256)) if signed else np.linspace(0, 1, 256)
    lut[:, 3] = np.round(255 * np.sqrt(ramp)).astype(np.uint8)
    return np.ascontiguousarray(lut)


class PanelTitle(pg.LabelItem):
    """A panel's title that never widens its column: a LabelItem asks for its text's width, so a long title
    ("Integrated gradients · convergence δ = …") made its panel wider than the other. Asking for no width, the
    two columns share the canvas equally (their stretch factors are equal) and the text stays centred on it."""

    def updateMin(self) -> None:
        super().updateMin()
        self.setMinimumWidth(0)

    def sizeHint(self, hint: Qt.SizeHint, constraint: QSizeF) -> QSizeF:
        size = super().sizeHint(hint, constraint)
        return QSizeF(0.0, size.height()) if hint != Qt.SizeHint.MaximumSize else size


class MapPanel:
    """A title and one box: the input image with the attribution overlaid. Both panels are the same size, with
    one map or two, whatever their titles say."""

    def __init__(self, layout: pg.GraphicsLayout, col: int):
        self.title = PanelTitle("")
        layout.addItem(self.title, row=0, col=col)
        layout.layout.setColumnStretchFactor(col, 1)
        self.box = layout.addViewBox(row=1, col=col, lockAspect=True, invertY=True, enableMouse=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image)
        self.box.addItem(self.overlay)
        self.luts = {signed: overlay_lut(signed) for signed in (False, True)}
        self.signed: bool | None = None

    def show(self, image: np.ndarray, shown: MethodMap | None, opacity: float, waiting: str = "") -> None:
        self.image.setImage(image, levels=(0.0, 1.0), autoLevels=False)
        if shown is None or shown.error:
            self.overlay.clear()
            self.title.setText(f"<b>{shown.title}</b>: {shown.error}" if shown else waiting)
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
        self.opacity.setMinimumWidth(90)
        # Method options (each method reads the ones it takes).
        self.steps = QSpinBox(minimum=1, maximum=1024, value=50)
        self.steps.setToolTip("Integrated gradients: points on the path from the baseline to the input")
        self.baseline = QComboBox()
        self.baseline.addItems([*BASELINES, PICTURE])
        self.baseline.setToolTip(
            "Integrated gradients: the picture the path starts from (picture…: a file of yours, prepared as the input)"
        )
        self.baseline_picture: BaselinePicture | None = None
        self.layer = QComboBox()
        self.layer.addItem(LAST_CONV, None)
        self.layer.setToolTip("Grad-CAM: the conv layer whose activations are weighed (usually the last one)")
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
            ("gradcam", (("layer", self.layer),)),
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
        self.export = ExportButton(lambda: self.canvas.ci, self.export_array, self.export_name, self._report)
        rows.addWidget(self.export)
        self.progress = QProgressBar(minimum=0, maximum=1000)
        self.progress.setFormat("computing… %p%")
        self.stop = QPushButton("Stop")
        self.stop.setToolTip("Stop this computation (the maps done so far stay)")
        self.stop.clicked.connect(lambda: self.command.emit(CancelJob()))
        busy = QHBoxLayout()
        busy.addWidget(self.progress, 1)
        busy.addWidget(self.stop)
        self.busy = QWidget()
        self.busy.setLayout(busy)
        busy.setContentsMargins(0, 0, 0, 0)
        self.busy.setVisible(False)
        self.predictions = QLabel()
        self.predictions.setWordWrap(True)
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #c0392b;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(rows)
        layout.addWidget(self.problem)
        layout.addWidget(self.busy)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.predictions)

        self._send_timer = QTimer(self, singleShot=True, interval=SEND_DELAY_MS)
        self._send_timer.timeout.connect(self.send_settings)
        for combo in (self.method_a, self.method_b, self.target, self.layer):
            combo.currentIndexChanged.connect(self._changed)
        self.baseline.currentIndexChanged.connect(self._baseline_changed)
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
        baseline: object = self.baseline.currentText()
        if baseline == PICTURE:
            baseline = self.baseline_picture if self.baseline_picture is not None else "black"
        options = {
            "steps": self.steps.value(),
            "baseline": baseline,
            "layer": self.layer.currentData(),
            "samples": self.samples.value(),
            "noise": self.noise.value(),
            "window": self.window.value() or None,
            "stride": self.stride.value() or None,
        }
        return AttributionSettings(tuple(methods), self.target.currentData(), options)

    def _changed(self) -> None:
        self._show_relevant_options()
        self._send_timer.start()

    def _baseline_changed(self) -> None:
        if self.baseline.currentText() == PICTURE:
            path, _ = QFileDialog.getOpenFileName(self, "A picture for the baseline", "", IMAGE_FILTER)
            if path:
                self.use_baseline_picture(path)
            elif self.baseline_picture is None:
                self.baseline.setCurrentIndex(0)  # nothing chosen: back to black
                return
        self._changed()

    def use_baseline_picture(self, path: str) -> bool:
        """Read ``path`` as integrated gradients' baseline; a file that is not a picture is refused with a message."""
        from pathlib import Path

        try:
            pixels = read_image(Path(path))
        except LumenError as exc:
            self._report(str(exc))
            return False
        self.baseline_picture = BaselinePicture(pixels, Path(path).name)
        index = self.baseline.findText(PICTURE)
        self.baseline.setItemText(index, PICTURE)
        self.baseline.setToolTip(f"Integrated gradients starts from {Path(path).name}")
        self.baseline.blockSignals(True)
        self.baseline.setCurrentIndex(index)
        self.baseline.blockSignals(False)
        self._changed()
        return True

    def _report(self, message: str) -> None:
        self.problem.setText(message)

    def send_settings(self) -> None:
        try:
            command = ConfigureProbe(AttributionProbe.name, self.settings())
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
        self._update_layers(frame.layers)
        opacity = self.opacity.value() / 100
        waiting = "<i>computing…</i>" if frame.progress is not None else ""
        for i, panel in enumerate(self.panels):
            shown = frame.maps[i] if i < len(frame.maps) else None
            panel.show(frame.image, shown, opacity, waiting)
        # The engine sends progress only for a computation that has already taken ~0.3 s.
        self.busy.setVisible(frame.progress is not None)
        if frame.progress is not None:
            self.progress.setValue(round(1000 * frame.progress))
        prepared = f" · input prepared: {frame.preparation}" if frame.preparation else ""
        if frame.note:
            self.predictions.setText(frame.note + prepared)
        else:
            top = ", ".join(f"{name} {p:.0%}" for name, p in frame.predictions)
            self.predictions.setText(f"Predictions: {top}{prepared}")

    def _update_layers(self, layers: tuple[str, ...]) -> None:
        current = tuple(self.layer.itemText(i) for i in range(1, self.layer.count()))
        if not layers or current == layers:
            return
        chosen = self.layer.currentData()
        self.layer.blockSignals(True)
        try:
            while self.layer.count() > 1:
                self.layer.removeItem(1)
            for name in layers:
                self.layer.addItem(name, name)
            self.layer.setCurrentIndex(max(0, self.layer.findData(chosen)) if chosen in layers else 0)
        finally:
            self.layer.blockSignals(False)

    # ---- export --------------------------------------------------------------------------------------
    def export_array(self) -> np.ndarray | None:
        """The maps shown (H×W, or 2×H×W side by side), float32 at the input's resolution."""
        if self.frame is None:
            return None
        maps = [m.heat for m in self.frame.maps if m.error is None and m.heat.size]
        if not maps:
            return None
        return maps[0] if len(maps) == 1 else np.stack(maps) if maps[0].shape == maps[1].shape else maps[0]

    def export_name(self) -> str:
        if self.frame is None or not self.frame.maps:
            return "attribution"
        stem = self.frame.source.rsplit(".", 1)[0] or "input"
        return f"{stem}-" + "-".join(m.method for m in self.frame.maps)

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
