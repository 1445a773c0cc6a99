"""The runs list in the monitor: every run of the run store (``engine.io.store``), newest first; ticked runs
are drawn over the live curves for comparison (decimated to a few thousand points each); the selected run's
metrics export as CSV; the monitor's plots export as PNG or SVG (pyqtgraph's exporters).

The store is opened on the GUI thread (its own SQLite connection; the worker writes through another), and
re-read every ``REFRESH_MS`` while the list is visible.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lumen.engine.errors import LumenError
from lumen.engine.io.store import RunRow, RunStore
from lumen.engine.untrusted import atomic_write
from lumen.gui.widgets.decimate import Decimated

REFRESH_MS = 2_000
COLUMNS = ("compare", "id", "model", "data", "status", "best", "steps")


def export_plot(widget: pg.PlotWidget, path: str | Path) -> Path:
    """One plot as PNG (pyqtgraph's ImageExporter) or SVG, by the file's suffix, written under a temporary name
    and renamed. SVG is drawn by Qt's own QSvgGenerator: pyqtgraph 0.14's SVGExporter fails on the path syntax
    of Qt 6.7+ (pyqtgraph issue #3485)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise LumenError(f"plots export as .png or .svg, not {suffix or 'a file without a suffix'}")
    with atomic_write(path) as temp:
        if suffix == ".png":
            exporter = pyqtgraph.exporters.ImageExporter(widget.getPlotItem())
            exporter.parameters()["width"] = max(int(exporter.parameters()["width"]), 800)
            if not exporter.export(toBytes=True).save(str(temp), "PNG"):
                raise OSError(f"could not write {path.name}")
        else:
            generator = QSvgGenerator()
            generator.setFileName(str(temp))
            generator.setSize(widget.size())
            generator.setViewBox(widget.rect())
            generator.setTitle(widget.getPlotItem().titleLabel.text)
            painter = QPainter(generator)
            try:
                widget.render(painter)
            finally:
                painter.end()
    return path


class RunsPanel(QWidget):
    overlay_changed = Signal(object)  # {(run id, metric): (steps, values)} of the ticked runs
    run_selected = Signal(str)  # the id of the run the user selected (the viewer replays its checkpoints)
    run_opened = Signal(str)  # the id of the run the user double-clicked: the window opens it (weights, curves)

    def __init__(self, monitor: QWidget | None = None, store: Callable[[], RunStore] = RunStore):
        super().__init__()
        self._monitor = monitor  # whose plots "Export plots" writes
        self._store_factory = store
        self._store: RunStore | None = None
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.itemChanged.connect(self._item_changed)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.cellDoubleClicked.connect(self._double_clicked)
        self.table.setToolTip("Double-click a run to open it: its model, weights and curves")
        self._selected: str | None = None
        self.message = QLabel("")
        self.message.setWordWrap(True)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        self.export = QToolButton(text="Export")
        menu = QMenu(self)
        menu.addAction("Selected run's metrics (CSV)…", self._export_csv)
        menu.addAction("Plots (PNG)…", lambda: self._export_plots(".png"))
        menu.addAction("Plots (SVG)…", lambda: self._export_plots(".svg"))
        self.export.setMenu(menu)
        self.export.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("Tick runs to draw them over the live curves."), 1)
        buttons.addWidget(refresh)
        buttons.addWidget(self.export)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)
        self.rows: list[RunRow] = []
        self.compared: set[str] = set()
        self._timer = QTimer(self, interval=REFRESH_MS)
        self._timer.timeout.connect(self.refresh)

    # ---- the store ---------------------------------------------------------------------------------------
    def store(self) -> RunStore | None:
        if self._store is None:
            try:
                self._store = self._store_factory()
            except LumenError as exc:
                self.message.setText(str(exc))
                return None
        return self._store

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()
        self._timer.start()

    def hideEvent(self, event) -> None:
        self._timer.stop()
        super().hideEvent(event)

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        self._timer.stop()
        if self._store is not None:
            self._store.close()
            self._store = None

    def refresh(self) -> None:
        store = self.store()
        if store is None:
            return
        try:
            store.mark_interrupted()
            rows = store.runs()
        except LumenError as exc:  # the store was damaged or locked after it opened: say so, stop asking
            self._store_failed(exc)
            return
        if rows == self.rows:
            return
        self.rows = rows
        self.table.blockSignals(True)
        self.table.setRowCount(len(rows))
        for r, run in enumerate(rows):
            tick = QTableWidgetItem()
            tick.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            tick.setCheckState(Qt.CheckState.Checked if run.id in self.compared else Qt.CheckState.Unchecked)
            tick.setData(Qt.ItemDataRole.UserRole, run.id)
            self.table.setItem(r, 0, tick)
            cells = (run.id, run.model, run.data, run.status, run.best(), f"{run.step}/{run.total_steps}")
            for c, text in enumerate(cells, start=1):
                item = QTableWidgetItem(text)
                if c == 1:
                    item.setToolTip(f"{run.folder}\nstarted {time.ctime(run.created)}\n{run.message}")
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.table.blockSignals(False)

    # ---- comparing -----------------------------------------------------------------------------------------
    def set_compared(self, run_ids: set[str]) -> None:
        self.compared = set(run_ids)
        self.rows = []  # redraw the ticks
        self.refresh()
        self._emit_overlay()

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != 0:
            return
        run_id = item.data(Qt.ItemDataRole.UserRole)
        if item.checkState() == Qt.CheckState.Checked:
            self.compared.add(run_id)
        else:
            self.compared.discard(run_id)
        self._emit_overlay()

    def _emit_overlay(self) -> None:
        store = self.store()
        if store is None:
            return
        curves: dict[tuple[str, str], tuple] = {}
        try:
            for run_id in sorted(self.compared):
                for phase, name in store.metric_names(run_id):
                    if phase != "step":
                        continue
                    steps, values = store.metric(run_id, name)
                    line = Decimated()
                    for step, value in zip(steps, values, strict=True):
                        line.add(step, value)
                    curves[(run_id, name)] = line.arrays()
        except LumenError as exc:
            self._store_failed(exc)
            return
        self.overlay_changed.emit(curves)

    def _store_failed(self, exc: LumenError) -> None:
        self.message.setText(str(exc))
        self._timer.stop()
        self.shutdown()

    # ---- export ---------------------------------------------------------------------------------------------
    def selected_run(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _selection_changed(self) -> None:
        run_id = self.selected_run()
        if run_id is not None and run_id != self._selected:
            self._selected = run_id
            self.run_selected.emit(run_id)

    def _double_clicked(self, row: int, column: int) -> None:
        item = self.table.item(row, 0)
        if item is not None and column != 0:  # a double click on the tick box only ticks it
            self.run_opened.emit(item.data(Qt.ItemDataRole.UserRole))

    def _export_csv(self) -> None:
        run_id, store = self.selected_run(), self.store()
        if run_id is None or store is None:
            self.message.setText("select a run to export its metrics")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the metrics", f"{run_id}.csv", "CSV (*.csv)")
        if path:
            try:
                store.export_csv(run_id, path)
                self.message.setText(f"wrote {Path(path).name}")
            except (OSError, LumenError) as exc:
                self.message.setText(f"export failed: {exc}")

    def export_plots(self, base: str | Path, suffix: str) -> list[Path]:
        """Each of the monitor's plots as ``<base>-<metric><suffix>``."""
        plots = getattr(self._monitor, "plots", {})
        base = Path(base)
        stem = base.with_suffix("") if base.suffix.lower() == suffix else base
        return [export_plot(plot.widget, stem.with_name(f"{stem.name}-{name}{suffix}")) for name, plot in plots.items()]

    def _export_plots(self, suffix: str) -> None:
        kind = suffix[1:].upper()
        path, _ = QFileDialog.getSaveFileName(self, "Save the plots", f"curves{suffix}", f"{kind} (*{suffix})")
        if path:
            try:
                written = self.export_plots(path, suffix)
                self.message.setText(f"wrote {', '.join(p.name for p in written)}")
            except (OSError, LumenError) as exc:
                self.message.setText(f"export failed: {exc}")
