"""Model builder pane (first form): choose a preset, see every layer's output shape and parameters."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from engine.errors import SpecError
from engine.graph import summarize
from engine.layers import fmt
from engine.presets import PRESETS, get_preset
from engine.spec import ModelSpec


class BuilderPane(QWidget):
    model_chosen = Signal(object)  # ModelSpec

    COLUMNS = ("Layer", "Type", "Output shape", "Parameters")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.spec: ModelSpec | None = None
        self.presets = QComboBox()
        for preset in PRESETS.values():
            self.presets.addItem(preset.summary.split(":")[0], preset.name)
            self.presets.setItemData(self.presets.count() - 1, preset.summary, Qt.ItemDataRole.ToolTipRole)
        self.presets.activated.connect(lambda i: self.load_preset(self.presets.itemData(i)))
        self.description = QLabel(wordWrap=True)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.setMinimumWidth(350)  # the whole layer table, parameters column included, without scrolling
        self.total = QLabel()
        self.problem = QLabel(wordWrap=True)
        self.problem.setStyleSheet("color: #c0392b;")

        row = QHBoxLayout()
        row.addWidget(QLabel("Preset:"))
        row.addWidget(self.presets, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.description)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.total)
        layout.addWidget(self.problem)

    def load_preset(self, name: str) -> None:
        self.show_spec(get_preset(name))

    def show_spec(self, spec: ModelSpec) -> bool:
        """Show ``spec``'s layer table and announce it; a bad spec shows its message and changes nothing."""
        try:
            rows = summarize(spec)  # shape arithmetic on the meta device: no weights, no compute
        except SpecError as exc:
            self.problem.setText(str(exc))
            return False
        self.problem.clear()
        self.spec = spec
        self.description.setText(f"<b>{spec.name}</b> — {spec.description}" if spec.description else spec.name)
        self.table.setRowCount(len(rows))
        for r, layer in enumerate(rows):
            cells = (layer.name, layer.type, fmt(layer.output_shape), f"{layer.params:,}")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.total.setText(f"Total parameters: <b>{sum(r.params for r in rows):,}</b>  ·  "
                           f"input {fmt(spec.input_shape)}")
        self.model_chosen.emit(spec)
        return True
