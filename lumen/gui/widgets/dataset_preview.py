"""A small picture of the loaded data, shown before training beside the monitor's *Data* choice.

It draws an ``engine.data.preview.DatasetPreview`` frame (made on the worker's thread when the data is loaded):
an image grid for image sets, a few curves for real-valued sequences, a few token rows with their targets for
token sequences. Nothing here computes anything from a dataset.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QLabel, QStackedWidget, QVBoxLayout, QWidget

from lumen.engine.data.preview import CURVES, IMAGES, TOKENS, DatasetPreview

MAX_CURVES = 4  # sequences drawn; more become a tangle at this size
MAX_ROWS = 5  # token rows shown
HEIGHT = 120


class DatasetPreviewWidget(QWidget):
    """A caption (the dataset and what it holds) over one of: an image, curves, or token rows."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.caption = QLabel("No data loaded yet.", wordWrap=True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self.image_view = pg.GraphicsLayoutWidget()
        box = self.image_view.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        box.addItem(self.image)
        self.curve_view = pg.PlotWidget(enableMenu=False)
        self.curve_view.setMouseEnabled(False, False)
        self.curve_view.hideButtons()
        self.curves: list[pg.PlotDataItem] = []
        self.rows = QLabel(textFormat=Qt.TextFormat.PlainText)
        self.rows.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.rows.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.stack = QStackedWidget()
        for page in (self.image_view, self.curve_view, self.rows):
            self.stack.addWidget(page)
        self.pages = {IMAGES: self.image_view, CURVES: self.curve_view, TOKENS: self.rows}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.stack, 1)
        self.setMinimumWidth(240)
        self.stack.setFixedHeight(HEIGHT)
        self.preview: DatasetPreview | None = None

    def show_preview(self, preview: DatasetPreview) -> None:
        self.preview = preview
        self.caption.setText(f"<b>{preview.name}</b>: {preview.description}" if preview.description else preview.name)
        self.caption.setToolTip(preview.description)
        if preview.kind == IMAGES:
            pixels = np.ascontiguousarray(preview.array, dtype=np.float32)
            self.image.setImage(pixels, levels=(0.0, 1.0), autoLevels=False)
            self.image_view.setToolTip("labels: " + " ".join(preview.labels) if preview.labels else "")
        elif preview.kind == CURVES:
            self._show_curves(preview.array)
        else:
            lines = []
            for i, row in enumerate(preview.rows[:MAX_ROWS]):
                label = preview.labels[i] if i < len(preview.labels) else ""
                lines.append(f"{row}  → {label}" if label and len(label) <= 3 else row)
            self.rows.setText("\n".join(lines))
            targets = [f"{row} → {label}" for row, label in zip(preview.rows, preview.labels, strict=False)]
            self.rows.setToolTip("\n".join(targets))
        self.stack.setCurrentWidget(self.pages.get(preview.kind, self.rows))

    def _show_curves(self, array: np.ndarray) -> None:
        """The first feature of up to ``MAX_CURVES`` sequences (each sequence's other features are in the tooltip
        count); a one-step "sequence" shows its features as a curve instead."""
        samples = array[:MAX_CURVES]
        if samples.shape[1] == 1:  # vectors: plot the features
            samples = samples.transpose(0, 2, 1)
        while len(self.curves) < len(samples):
            colour = pg.intColor(len(self.curves), hues=MAX_CURVES)
            self.curves.append(self.curve_view.plot(pen=pg.mkPen(colour, width=1)))
        for i, curve in enumerate(self.curves):
            if i < len(samples):
                y = np.ascontiguousarray(samples[i, :, 0], dtype=np.float64)
                curve.setData(np.arange(len(y), dtype=np.float64), y, skipFiniteCheck=True)
            else:
                curve.setData([], [])
        features = array.shape[2]
        self.curve_view.setToolTip(f"{len(samples)} of the sequences, feature 1 of {features}")
