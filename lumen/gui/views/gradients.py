"""The gradient-norm view: one bar per layer on a log axis, and each layer's norm over time.

Bars show the newest batch's ‖∂loss/∂θ‖ per layer, first layer on the left; the line plot below keeps every
frame's norms (at most ``HISTORY`` frames, so memory stays bounded) on the same log axis. The caption gives
the first/last-layer ratio: far below 1 the early layers barely learn (vanishing gradients).

Both plots keep their ranges still while the data fits them (whole decades up the y-axis, a doubling step range
along the history's x-axis) and draw no grid: a pyqtgraph grid is painted by the axis, whose text is then
repainted with every bar or line update, and an axis that re-ranges every frame regenerates its text. Painting
holds the GIL the training thread needs, so this view stays cheap at its frame rate.
"""

from __future__ import annotations

import html
import math
from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from lumen.engine.probes.gradients import GradientNormFrame
from lumen.gui.views.base import View

HISTORY = 2_000  # frames kept for the lines over time
TINY = 1e-30  # a zero norm is drawn at this height (log axes cannot show 0)
HUGE = 1e30  # and an infinite one at this
BAR_BRUSH = pg.mkBrush(70, 130, 200, 200)


def layer_colour(index: int, count: int) -> tuple[int, int, int]:
    return pg.intColor(index, hues=max(count, 1)).getRgb()[:3]


class GradientNormView(View):
    title = "Gradients"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frame: GradientNormFrame | None = None
        self.ratio = QLabel("Gradient norms appear once the model trains.")
        self.bars_plot = pg.PlotWidget(title="‖gradient‖ per layer (newest batch)")
        self.bars_plot.setLogMode(y=True)
        self.bars_plot.setMouseEnabled(x=False)
        self.bars_plot.enableAutoRange(y=False)
        # Bars as a step curve filled down to a floor: unlike BarGraphItem, a PlotDataItem follows log mode.
        self.bars = self.bars_plot.plot(stepMode="center", fillLevel=0.0, brush=BAR_BRUSH, pen=pg.mkPen(40, 90, 160))
        self.history_plot = pg.PlotWidget(title="‖gradient‖ over time")
        self.history_plot.setLogMode(y=True)
        self.history_plot.setLabel("bottom", "step")
        self.history_plot.enableAutoRange(x=False, y=False)
        # The layers' colours are named above the plot: a legend inside it covered the lines.
        self.legend = QLabel(textFormat=Qt.TextFormat.RichText, wordWrap=True)
        self.history_plot.setDownsampling(auto=True, mode="peak")
        self.history_plot.setClipToView(True)
        self.lines: dict[str, pg.PlotDataItem] = {}
        self._steps: deque[int] = deque(maxlen=HISTORY)
        self._norms: deque[np.ndarray] = deque(maxlen=HISTORY)
        self._layers: tuple[str, ...] = ()
        self._decades: dict[pg.PlotWidget, tuple[int, int]] = {}  # each plot's y-range, in powers of ten
        self._step_range = (math.nan, math.nan)  # the history's x-range
        self.run_steps = 0  # the length of the run being trained (the monitor says); 0: not known
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.ratio)
        layout.addWidget(self.bars_plot, 1)
        layout.addWidget(self.legend)
        layout.addWidget(self.history_plot, 1)

    def caption(self, frame: GradientNormFrame) -> str:  # type: ignore[override]
        if math.isnan(frame.ratio):
            return f"gradient norms · model at step {frame.step}"
        return f"first/last-layer gradient ratio <b>{frame.ratio:.3g}</b> · model at step {frame.step}"

    def clear(self) -> None:
        """Another model: no bars, no lines, until it trains."""
        self.frame = None
        self._restart(())
        self.bars.setData([], [])
        self.run_steps = 0
        self._step_range = (math.nan, math.nan)
        self.ratio.setText("Gradient norms appear once the model trains.")

    def show_frame(self, frame: GradientNormFrame) -> None:  # type: ignore[override]
        self.frame = frame
        if frame.layers != self._layers:
            self._restart(frame.layers)
        # An exploding run's norms overflow: drawn at the top of a log axis (and a NaN at the floor), never fed to
        # the axis arithmetic as they are.
        norms = np.clip(np.nan_to_num(frame.norms, nan=TINY, posinf=HUGE), TINY, HUGE)
        self.bars.setFillLevel(self._fit_decades(self.bars_plot, norms)[0])
        self.bars.setData(np.arange(len(norms) + 1, dtype=np.float64) - 0.5, norms)
        self.ratio.setText(self.caption(frame))
        if self._steps and frame.step < self._steps[-1]:
            self._restart(frame.layers)  # a new run (its steps start again)
        elif self._steps and frame.step == self._steps[-1]:
            self._steps.pop()  # the same step again (a refresh forced by Stop or a new probe input): replace it
            self._norms.pop()
        self._steps.append(frame.step)
        self._norms.append(norms)
        if self.isVisible():  # behind another tab the history still grows; it is drawn when the tab is shown
            self._draw_history()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._steps:
            self._draw_history()

    def _draw_history(self) -> None:
        steps = np.fromiter(self._steps, dtype=np.float64, count=len(self._steps))
        table = np.stack(self._norms)
        self._fit_steps(steps[0], steps[-1])
        self._fit_decades(self.history_plot, table)
        for index, layer in enumerate(self._layers):
            self.lines[layer].setData(steps, table[:, index])

    def _fit_decades(self, plot: pg.PlotWidget, norms: np.ndarray) -> tuple[int, int]:
        """Whole decades from below the smallest norm to above the largest, changed only when the norms leave
        them or come to use less than a third of them (so the axes are not redrawn at every frame)."""
        low = math.floor(math.log10(float(norms.min()))) - 1
        high = math.ceil(math.log10(float(norms.max())))
        old_low, old_high = self._decades.get(plot, (0, 0))
        if old_low <= low and high <= old_high and (high - low) * 3 >= old_high - old_low:
            return old_low, old_high
        self._decades[plot] = (low, high)
        plot.setYRange(low, high, padding=0)  # log mode: the range is in decades
        # Decades only, labelled: pyqtgraph labels the minor ticks (0.2 … 0.9) of a short log range over each other.
        step = max(1, (high - low) // 6)
        plot.getAxis("left").setTicks([[(k, f"{10.0**k:g}") for k in range(low, high + 1, step)], []])
        return low, high

    def _fit_steps(self, first: float, last: float) -> None:
        """The history's step range doubles when the lines reach its end; it starts again from the oldest step
        kept when they do, or when a new run begins (steps going back)."""
        left, right = self._step_range
        if left <= first and last <= right:  # False while the range is NaN (nothing drawn yet)
            return
        if self.run_steps and first <= last <= self.run_steps:  # the run's length is known: it ends there
            self._step_range = (first, float(self.run_steps))
            self.history_plot.setXRange(first, self.run_steps, padding=0.01)
            return
        right = first + 8.0
        while right < last:
            right = first + 2 * (right - first)
        self._step_range = (first, right)
        self.history_plot.setXRange(first, right, padding=0.01)

    def set_run_length(self, steps: int) -> None:
        """The run being trained has ``steps`` steps: the history's x-axis ends at its last one."""
        if steps != self.run_steps:
            self.run_steps = steps
            self._step_range = (math.nan, math.nan)
            if self._steps:
                self._draw_history()

    def _restart(self, layers: tuple[str, ...]) -> None:
        """Another model (or run): new layer names on the bars' axis and new lines."""
        self._layers = layers
        self._steps.clear()
        self._norms.clear()
        self.bars_plot.getAxis("bottom").setTicks([list(enumerate(layers))])
        self.bars_plot.setXRange(-0.5, len(layers) - 0.5, padding=0.02)
        for line in self.lines.values():
            self.history_plot.removeItem(line)
        self.lines = {
            layer: self.history_plot.plot(pen=pg.mkPen(layer_colour(i, len(layers)), width=2), name=layer)
            for i, layer in enumerate(layers)
        }
        self.legend.setText(
            " &nbsp;".join(
                f'<span style="color:#{"".join(f"{c:02x}" for c in layer_colour(i, len(layers)))}">━</span> '
                f"{html.escape(layer)}"
                for i, layer in enumerate(layers)
            )
        )

    def bar_heights(self) -> np.ndarray:
        """The drawn bars' heights (the norms), for tests and export."""
        _, y = self.bars.getOriginalDataset()
        return np.asarray(y if y is not None else [], dtype=np.float64)
