"""The sequence view: one validation sequence as the model reads it (tokens as text, values as curves), the
target, and what the model predicts, with every wrong position marked, following the weights as it trains."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from lumen.engine.probes.sequence_output import TOKENS, SequenceOutputFrame
from lumen.gui.views.base import View
from lumen.gui.widgets.export import ExportButton

INPUT_PEN = pg.mkPen((120, 120, 120), width=1)
TARGET_PEN = pg.mkPen((230, 126, 34), width=2)
OUTPUT_PEN = pg.mkPen((40, 110, 200), width=2)


def marked(text: str, correct: tuple[bool, ...]) -> str:
    """``text`` as HTML with each character at a wrong position in red on pink (one character per position)."""
    if len(correct) != len(text.rstrip("…")):
        return html.escape(text)
    return "".join(
        html.escape(ch) if ok else f'<span style="color:#c0392b;background:#fadbd8">{html.escape(ch)}</span>'
        for ch, ok in zip(text, correct)
    ) + html.escape(text[len(correct) :])


class SequenceOutputView(View):
    title = "Sequence"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frame: SequenceOutputFrame | None = None
        self.text = QLabel(textFormat=Qt.TextFormat.RichText, wordWrap=True)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setPointSize(font.pointSize() + 3)  # a sequence is read letter by letter
        self.text.setFont(font)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.plot = pg.PlotWidget(title="Input, target and output over time")
        self.plot.setLabel("bottom", "time step")
        self.plot.addLegend(offset=(-10, 10), labelTextSize="8pt")
        self.input_curves: list[pg.PlotDataItem] = []
        self.target_curve = self.plot.plot(pen=TARGET_PEN, symbol="o", symbolSize=5, name="target")
        self.output_curve = self.plot.plot(pen=OUTPUT_PEN, symbol="x", symbolSize=6, name="model")
        # A one-output classifier's answer: the probability of each of its top classes.
        self.top_plot = pg.PlotWidget(title="The model's top classes for this sequence")
        self.top_plot.setLabel("left", "probability")
        self.top_plot.setYRange(0.0, 1.0, padding=0.02)
        self.top_plot.setMouseEnabled(False, False)
        self.top_bars = pg.BarGraphItem(x=[], height=[], width=0.6, brush=(40, 110, 200))
        self.top_plot.addItem(self.top_bars)
        self.top_plot.hide()
        self.export = ExportButton(lambda: self.plot.getPlotItem(), self.export_array, lambda: "sequence")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.export, 0, Qt.AlignmentFlag.AlignRight)
        layout.addWidget(self.text)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.top_plot, 1)

    def caption(self, frame: SequenceOutputFrame) -> str:  # type: ignore[override]
        return f"{html.escape(frame.source)} · model at step {frame.step}"

    def clear(self) -> None:
        self.frame = None
        self.text.setText("")
        self._set_inputs(np.zeros((0, 0), np.float32))
        self.target_curve.setData([], [])
        self.output_curve.setData([], [])

    def show_frame(self, frame: SequenceOutputFrame) -> None:  # type: ignore[override]
        self.frame = frame
        lines = []
        if frame.kind == TOKENS:
            lines.append(f"<b>input&nbsp;&nbsp;</b> {html.escape(frame.input_text)}")
        if frame.target_text:
            lines.append(f"<b>target&nbsp;</b> {html.escape(frame.target_text)}")
        if frame.output_text:
            right = sum(frame.correct)
            score = f" &nbsp;({right} of {len(frame.correct)} right)" if len(frame.correct) > 1 else ""
            lines.append(f"<b>model&nbsp;&nbsp;</b> {marked(frame.output_text, frame.correct)}{score}")
        if frame.top:
            lines.append(
                "<b>top&nbsp;&nbsp;&nbsp;&nbsp;</b> "
                + ", ".join(f"{html.escape(name)} {p:.0%}" for name, p in frame.top)
            )
        if frame.note:
            lines.append(f"<i>{html.escape(frame.note)}</i>")
        self.text.setText("<br>".join(lines))
        self.top_plot.setVisible(bool(frame.top))
        if frame.top:
            self.top_bars.setOpts(x=np.arange(len(frame.top)), height=[p for _, p in frame.top])
            self.top_plot.getAxis("bottom").setTicks([[(i, name) for i, (name, _) in enumerate(frame.top)]])
            self.top_plot.setXRange(-0.5, len(frame.top) - 0.5, padding=0.02)
        # Curves: real-valued inputs, and real-valued targets and outputs (forecasting).
        values = frame.kind != TOKENS or frame.target_values is not None
        self.plot.setVisible(values)
        if not values:
            return
        self._set_inputs(frame.inputs if frame.kind != TOKENS else np.zeros((0, 0), np.float32))
        for curve, rows in ((self.target_curve, frame.target_values), (self.output_curve, frame.output_values)):
            if rows is None:
                curve.setData([], [])
                continue
            first = rows[:, 0] if rows.shape[0] > 1 else rows[0]
            # a per-step output is drawn at its steps; one value for the whole sequence at its last step
            steps = np.arange(len(first)) if rows.shape[0] > 1 or len(frame.inputs) == 1 else None
            x = steps if steps is not None else np.full(len(first), len(frame.inputs) - 1, dtype=np.float64)
            curve.setData(np.asarray(x, dtype=np.float64), np.asarray(first, dtype=np.float64))

    def _set_inputs(self, inputs: np.ndarray) -> None:
        features = inputs.shape[1] if inputs.ndim == 2 else 0
        while len(self.input_curves) > features:
            self.plot.removeItem(self.input_curves.pop())
        while len(self.input_curves) < features:
            self.input_curves.append(self.plot.plot(pen=INPUT_PEN, name="input" if not self.input_curves else None))
        for i, curve in enumerate(self.input_curves):
            curve.setData(np.arange(len(inputs), dtype=np.float64), inputs[:, i].astype(np.float64))

    def export_array(self) -> np.ndarray | None:
        return self.frame.inputs if self.frame is not None else None
