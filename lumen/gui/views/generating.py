"""The generate view: what an autoencoder can make. Paint over part of the probe input with the mouse and the
autoencoder fills it in (inpainting); pick two validation samples and see the pictures on the straight line
between their codes; for a VAE, pictures from its prior and a walk along each of its first latent dimensions
from the probe input's code (−3σ … +3σ)."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from lumen.engine.probes.generating import GenerateFrame, GenerateSettings, Generating
from lumen.engine.runtime.commands import ConfigureProbe
from lumen.gui.views.autoencoder import grid, side_by_side
from lumen.gui.views.base import View
from lumen.gui.widgets.export import ExportButton

BRUSH = 2  # the mask brush's half-width in pixels: a 5 × 5 square


class MaskImage(pg.ImageItem):
    """The probe input, painted on with the mouse: a drag marks the pixels under it as unknown."""

    def __init__(self, painted):
        super().__init__(axisOrder="row-major")
        self._painted = painted

    def mouseDragEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        event.accept()
        self._painted(event.pos(), event.isFinish())

    def mouseClickEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            event.accept()
            self._painted(event.pos(), True)


class GenerateView(View):
    title = "Generate"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frame: GenerateFrame | None = None
        self.mask: np.ndarray | None = None  # H × W bool, as painted (sent when a stroke ends)
        self.clear_mask = QPushButton("Clear mask")
        self.clear_mask.clicked.connect(self.reset_mask)
        self.first = QSpinBox(minimum=0, maximum=255, prefix="from validation #")
        self.second = QSpinBox(minimum=0, maximum=255, value=1, prefix="to #")
        for box in (self.first, self.second):
            box.setToolTip("The two validation pictures interpolated between, in latent space")
            box.valueChanged.connect(lambda _: self._timer.start())
        self._timer = QTimer(self, singleShot=True, interval=150)
        self._timer.timeout.connect(self._configure)
        self.export = ExportButton(lambda: self.canvas.ci, self.export_array, lambda: "generated")
        controls = QHBoxLayout()
        controls.addWidget(self.clear_mask)
        controls.addStretch(1)
        controls.addWidget(QLabel("Interpolate:"))
        controls.addWidget(self.first)
        controls.addWidget(self.second)
        controls.addWidget(self.export)
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setAcceptDrops(False)
        ci = self.canvas.ci
        self.paint_box = ci.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.picture = MaskImage(self._painted)
        self.paint_box.addItem(self.picture)
        self.overlay = pg.ImageItem(axisOrder="row-major")  # the mask, in translucent red over the picture
        self.overlay.setZValue(1)
        self.paint_box.addItem(self.overlay)
        self.filled_box = ci.addViewBox(row=1, col=1, lockAspect=True, invertY=True, enableMouse=False)
        self.filled = pg.ImageItem(axisOrder="row-major")
        self.filled_box.addItem(self.filled)
        self.between_box = ci.addViewBox(row=3, col=0, colspan=2, lockAspect=True, invertY=True, enableMouse=False)
        self.between = pg.ImageItem(axisOrder="row-major")
        self.between_box.addItem(self.between)
        self.samples_box = ci.addViewBox(row=1, col=2, lockAspect=True, invertY=True, enableMouse=False)
        self.samples = pg.ImageItem(axisOrder="row-major")
        self.samples_box.addItem(self.samples)
        self.walks_box = ci.addViewBox(row=3, col=2, lockAspect=True, invertY=True, enableMouse=False)
        self.walks = pg.ImageItem(axisOrder="row-major")
        self.walks_box.addItem(self.walks)
        self.titles = {
            "paint": ci.addLabel("paint the pixels to fill in", row=0, col=0),
            "filled": ci.addLabel("filled in by the autoencoder", row=0, col=1),
            "between": ci.addLabel("between two codes", row=2, col=0, colspan=2),
            "samples": ci.addLabel("from the prior N(0, I)", row=0, col=2),
            "walks": ci.addLabel("one latent dimension at a time, −3σ … +3σ", row=2, col=2),
        }
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.canvas, 1)

    def caption(self, frame: GenerateFrame) -> str:  # type: ignore[override]
        first, second = frame.ends
        return f"made from {html.escape(frame.source)} and validation #{first} → #{second} · model at step {frame.step}"

    def clear(self) -> None:
        self.frame, self.mask = None, None
        for image in (self.picture, self.overlay, self.filled, self.between, self.samples, self.walks):
            image.clear()

    # ---- drawing ------------------------------------------------------------------------------------------
    def show_frame(self, frame: GenerateFrame) -> None:  # type: ignore[override]
        self.frame = frame
        levels = (0.0, 1.0)
        self.picture.setImage(frame.picture, levels=levels, autoLevels=False)
        if self.mask is None or self.mask.shape != frame.picture.shape[:2]:
            self.mask = np.zeros(frame.picture.shape[:2], bool)
        self._draw_mask()
        if frame.inpainted is not None:
            self.filled.setImage(frame.inpainted, levels=levels, autoLevels=False)
        else:
            self.filled.clear()
        self.between.setImage(side_by_side(list(frame.between)), levels=levels, autoLevels=False)
        vae = frame.samples is not None
        for key in ("samples", "walks"):
            self.titles[key].setVisible(vae)
        self.samples_box.setVisible(vae)
        self.walks_box.setVisible(vae)
        if frame.samples is not None and frame.walks is not None:
            self.samples.setImage(grid(list(frame.samples), 4), levels=levels, autoLevels=False)
            rows = [side_by_side(list(walk)) for walk in frame.walks]
            self.walks.setImage(grid(rows, 1, gap=2), levels=levels, autoLevels=False)

    def _draw_mask(self) -> None:
        if self.mask is None:
            return
        rgba = np.zeros((*self.mask.shape, 4), np.uint8)
        rgba[self.mask] = (220, 40, 40, 150)
        self.overlay.setImage(rgba, autoLevels=False, levels=(0, 255))

    # ---- painting the mask --------------------------------------------------------------------------------
    def _painted(self, pos, finished: bool) -> None:
        if self.mask is None:
            return
        row, col = int(pos.y()), int(pos.x())
        height, width = self.mask.shape
        self.mask[
            max(0, row - BRUSH) : min(height, row + BRUSH + 1), max(0, col - BRUSH) : min(width, col + BRUSH + 1)
        ] = True
        self._draw_mask()
        if finished:
            self._configure()

    def paint(self, rows: slice, cols: slice) -> None:
        """Mark ``rows`` × ``cols`` of the probe input as unknown and ask for the inpainting (what strokes do)."""
        if self.mask is not None:
            self.mask[rows, cols] = True
            self._draw_mask()
            self._configure()

    def reset_mask(self) -> None:
        if self.mask is not None:
            self.mask[:] = False
            self._draw_mask()
        self._configure()

    def settings(self) -> GenerateSettings:
        mask = self.mask.copy() if self.mask is not None and self.mask.any() else None
        return GenerateSettings(mask=mask, ends=(self.first.value(), self.second.value()))

    def _configure(self) -> None:
        self.command.emit(ConfigureProbe(Generating.name, self.settings()))

    def export_array(self) -> np.ndarray | None:
        frame = self.frame
        if frame is None:
            return None
        return frame.samples if frame.samples is not None else frame.between
