"""The autoencoder view: validation pictures beside their reconstructions (the first ones, or those it
reconstructs worst: the most unusual to it), a noise slider for the denoising look (corrupted | output | clean),
and the latent space — every validation sample's code as a point coloured by class; click one to see its picture,
its reconstruction and how unusual its error is among the rest."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QSplitter, QVBoxLayout, QWidget

from lumen.engine.probes.autoencoder import MAX_NOISE, AutoencoderFrame, AutoencoderSettings, Autoencoding
from lumen.engine.runtime.commands import ConfigureProbe
from lumen.gui.views.base import View
from lumen.gui.widgets.export import ExportButton

SHOWN = 16  # pictures in the grid
COLUMNS = 2  # tiles per row of the grid: a tall grid beside the latent space
SHOW = {"first": "the first validation pictures", "worst": "the worst reconstructed (most unusual)"}


def side_by_side(pictures: list[np.ndarray], gap: int = 1) -> np.ndarray:
    """Pictures of one size in a row, ``gap`` blank pixels between them (NaN: drawn as background)."""
    height = pictures[0].shape[0]
    spacer = np.full((height, gap, *pictures[0].shape[2:]), np.nan, np.float32)
    parts: list[np.ndarray] = []
    for picture in pictures:
        parts += [picture.astype(np.float32), spacer]
    return np.concatenate(parts[:-1], axis=1)


def grid(tiles: list[np.ndarray], columns: int, gap: int = 3) -> np.ndarray:
    """Tiles of one size in rows of ``columns``, ``gap`` blank pixels apart."""
    height, width = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    out = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, *tiles[0].shape[2:]), np.nan, np.float32)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (height + gap) : r * (height + gap) + height, c * (width + gap) : c * (width + gap) + width] = tile
    return out


class AutoencoderView(View):
    title = "Autoencoder"
    # The grid and the latent space are of validation samples; the probe input (a picture dropped on the pane, or
    # the sample chosen) is scored against them: its error's rank, its place in the latent space, its neighbours.

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frame: AutoencoderFrame | None = None
        self.picked: int | None = None  # the validation sample clicked in the latent space
        self._latent_key: tuple | None = None  # the classes and labels the scatter's brushes and legend were made for
        self._brushes: list = []
        self.show = QComboBox(toolTip="Which validation pictures the grid shows")
        for key, text in SHOW.items():
            self.show.addItem(text, key)
        self.show.activated.connect(self._draw_grid)
        self.noise = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=int(MAX_NOISE * 100), value=0)
        self.noise.setToolTip("Zero this share of each picture's pixels before the autoencoder sees it")
        self.noise_label = QLabel("noise 0 %")
        self.noise.valueChanged.connect(lambda v: self.noise_label.setText(f"noise {v} %"))
        self._noise_timer = QTimer(self, singleShot=True, interval=120)  # the newest position wins
        self._noise_timer.timeout.connect(self._configure)
        self.noise.valueChanged.connect(self._noise_timer.start)
        self.export = ExportButton(lambda: self.canvas.ci, self.export_array, lambda: "reconstructions")
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Show:"))
        controls.addWidget(self.show)
        controls.addWidget(self.noise_label)
        controls.addWidget(self.noise, 1)
        controls.addWidget(self.export)

        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setAcceptDrops(False)
        self.grid_box = self.canvas.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.grid_image = pg.ImageItem(axisOrder="row-major")
        self.grid_box.addItem(self.grid_image)
        self.grid_title = QLabel(" ", wordWrap=True)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.grid_title)
        left_layout.addWidget(self.canvas, 1)
        # A sparse code: how active each unit is on average, against the target ρ the penalty pulls towards.
        self.sparsity = pg.PlotWidget(title="mean activation of each code unit")
        self.sparsity.setFixedHeight(170)
        self.sparsity.setLabel("bottom", "mean activation over the validation samples")
        self.sparsity.setLabel("left", "units")
        self.sparsity.setMouseEnabled(False, False)
        self.sparsity_bars = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=(70, 130, 180, 160))
        self.sparsity.addItem(self.sparsity_bars)
        self.rho = pg.InfiniteLine(angle=90, pen=pg.mkPen((214, 39, 40), width=2, style=Qt.PenStyle.DashLine))
        self.sparsity.addItem(self.rho)
        self.sparsity.hide()
        left_layout.addWidget(self.sparsity)

        self.latent = pg.PlotWidget(title="latent space: validation samples by class")
        self.latent.setMenuEnabled(False)
        self.legend = self.latent.addLegend(offset=(1, 1), labelTextSize="8pt", colCount=2)
        self.scatter = pg.ScatterPlotItem(size=7, pen=None, hoverable=True)
        self.scatter.sigClicked.connect(self._clicked)
        self.latent.addItem(self.scatter)
        self.mark = pg.ScatterPlotItem(size=16, pen=pg.mkPen("k", width=2), brush=None, symbol="o")
        self.latent.addItem(self.mark)
        self.pick_box = pg.GraphicsLayoutWidget()
        self.pick_box.setFixedHeight(130)
        self.pick_view = self.pick_box.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.pick_image = pg.ImageItem(axisOrder="row-major")
        self.pick_view.addItem(self.pick_image)
        self.pick_text = QLabel("Click a point to see its picture and reconstruction.", wordWrap=True)
        self.probe_mark = pg.ScatterPlotItem(size=22, pen=pg.mkPen("k", width=1.5), brush=(255, 215, 0), symbol="star")
        self.latent.addItem(self.probe_mark)
        self.probe_box = pg.GraphicsLayoutWidget()
        self.probe_box.setFixedHeight(110)
        self.probe_view = self.probe_box.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.probe_image = pg.ImageItem(axisOrder="row-major")
        self.probe_view.addItem(self.probe_image)
        self.probe_text = QLabel(
            "Drop a picture on the pane to see how unusual the autoencoder finds it.", wordWrap=True
        )
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.latent, 1)
        picked = QHBoxLayout()
        picked.addWidget(self.pick_box, 1)
        picked.addWidget(self.pick_text, 1)
        right_layout.addLayout(picked)
        right_layout.addWidget(self.probe_text)
        right_layout.addWidget(self.probe_box)

        split = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([1, 1])  # halves
        left.setMinimumWidth(240)  # the grid's pictures stay readable
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(split, 1)

    def caption(self, frame: AutoencoderFrame) -> str:  # type: ignore[override]
        return (
            f"code <b>{html.escape(frame.code)}</b> · {len(frame.errors)} validation samples, mean reconstruction "
            f"error {float(frame.errors.mean()):.4g} · model at step {frame.step}"
        )

    def clear(self) -> None:
        self.frame, self.picked = None, None
        self.grid_image.clear()
        self.pick_image.clear()
        self.scatter.clear()
        self.mark.clear()
        self.legend.clear()
        self._latent_key = None
        self.probe_mark.clear()
        self.probe_image.clear()

    # ---- drawing ------------------------------------------------------------------------------------------
    def show_frame(self, frame: AutoencoderFrame) -> None:  # type: ignore[override]
        self.frame = frame
        self._draw_grid()
        self._draw_latent(frame)
        self._draw_picked()
        self._draw_sparsity(frame)
        self._draw_probed(frame)

    def _draw_probed(self, frame: AutoencoderFrame) -> None:
        """The probe input: its picture, reconstruction and nearest validation samples; its rank; a star."""
        probed = frame.probed
        if probed is None:
            self.probe_mark.clear()
            self.probe_image.clear()
            return
        self.probe_mark.setData(pos=probed.point[None])
        near = [frame.inputs[int(i)] for i in probed.nearest]
        spacer = np.full_like(probed.input, np.nan, dtype=np.float32)[:, :4]
        row = [side_by_side([probed.input, probed.output]), spacer, side_by_side(near)]
        self.probe_image.setImage(np.concatenate(row, axis=1), levels=(0.0, 1.0), autoLevels=False)
        below = int((frame.errors < probed.error).sum())
        share = 100.0 * below / max(1, len(frame.errors))
        self.probe_text.setText(
            f"★ <b>{html.escape(probed.source)}</b>: reconstruction error {probed.error:.4g}, higher than {below:,} of "
            f"the {len(frame.errors):,} validation samples ({share:.0f}th percentile); then the "
            f"{len(probed.nearest)} validation samples nearest to its code"
        )

    def _draw_sparsity(self, frame: AutoencoderFrame) -> None:
        means = frame.unit_means
        self.sparsity.setVisible(means is not None)
        if means is None:
            return
        counts, edges = np.histogram(means, bins=20, range=(0.0, max(float(means.max()), frame.target or 0.0, 1e-6)))
        self.sparsity_bars.setData(edges, counts)
        self.rho.setVisible(frame.target is not None)
        if frame.target is not None:
            self.rho.setValue(frame.target)
        target = f" (dashed: the target ρ = {frame.target:g})" if frame.target is not None else " (an L1 penalty)"
        self.sparsity.setTitle(f"mean activation of each code unit{target}")

    def chosen(self) -> np.ndarray:
        """The validation samples the grid shows, in order."""
        frame = self.frame
        if frame is None:
            return np.arange(0)
        if self.show.currentData() == "worst":
            return np.argsort(-frame.errors, kind="stable")[:SHOWN]
        return np.arange(min(SHOWN, len(frame.errors)))

    def tile(self, index: int) -> np.ndarray:
        """One sample's pictures side by side: corrupted | output | clean with noise, else input | output."""
        frame = self.frame
        assert frame is not None
        if frame.corrupted is not None:
            return side_by_side([frame.corrupted[index], frame.outputs[index], frame.inputs[index]])
        return side_by_side([frame.inputs[index], frame.outputs[index]])

    def _draw_grid(self) -> None:
        frame = self.frame
        if frame is None or not len(frame.errors):
            return
        picture = grid([self.tile(int(i)) for i in self.chosen()], COLUMNS)
        self.grid_image.setImage(picture, levels=(0.0, 1.0), autoLevels=False)
        what = "corrupted | output | clean" if frame.corrupted is not None else "input | reconstruction"
        contractive = (
            f"; the code's mean ‖∂h/∂x‖_F (what the contractive penalty shrinks): {frame.jacobian:.4g}"
            if frame.jacobian is not None
            else ""
        )
        self.grid_title.setText(f"{SHOW[self.show.currentData()]}, each as {what}{contractive}")

    def _draw_latent(self, frame: AutoencoderFrame) -> None:
        # The samples and their classes stay the same frame after frame: brushes and legend are made once for them
        # (remaking 256 brushes and a legend per frame cost the GUI thread, which shares the GIL with training).
        key = (frame.classes, frame.labels.tobytes())
        if key != self._latent_key:
            self._latent_key = key
            count = max(1, len(frame.classes))
            colours = [pg.mkBrush(pg.intColor(index, hues=count, alpha=200)) for index in range(count)]
            self._brushes = [colours[int(label)] if 0 <= label < count else pg.mkBrush("k") for label in frame.labels]
            self.legend.clear()
            for index, name in enumerate(frame.classes):
                if (frame.labels == index).any():
                    item = pg.ScatterPlotItem(size=7, pen=None, brush=pg.intColor(index, hues=count))
                    self.legend.addItem(item, html.escape(name))
        self.scatter.setData(pos=frame.points, brush=self._brushes, data=np.arange(len(frame.labels)))
        self.latent.setLabel("bottom", frame.axes[0])
        self.latent.setLabel("left", frame.axes[1])

    def _clicked(self, _item, points, _event=None) -> None:
        if len(points):
            self.pick(int(points[0].data()))

    def pick(self, index: int) -> None:
        """Show validation sample ``index`` picked in the latent space."""
        self.picked = index
        self._draw_picked()

    def _draw_picked(self) -> None:
        frame, index = self.frame, self.picked
        if frame is None or index is None or index >= len(frame.errors):
            self.mark.clear()
            self.pick_image.clear()
            return
        self.mark.setData(pos=frame.points[index : index + 1])
        self.pick_image.setImage(self.tile(index), levels=(0.0, 1.0), autoLevels=False)
        error = float(frame.errors[index])
        below = int((frame.errors < error).sum())
        label = int(frame.labels[index])
        name = f"class {html.escape(frame.classes[label])}, " if 0 <= label < len(frame.classes) else ""
        self.pick_text.setText(
            f"validation sample #{index}, {name}reconstruction error {error:.4g}: higher than {below:,} of the "
            f"other {len(frame.errors) - 1:,} samples"
        )

    # ---- settings --------------------------------------------------------------------------------------------
    def _configure(self) -> None:
        self.command.emit(ConfigureProbe(Autoencoding.name, AutoencoderSettings(noise=self.noise.value() / 100)))

    def export_array(self) -> np.ndarray | None:
        frame = self.frame
        return None if frame is None else np.stack([frame.inputs, frame.outputs])
