"""The summary view: one row per layer with its output shape and parameters, plus multiply-accumulates,
receptive field and the size formula when ``engine.analysis`` provides them."""

from __future__ import annotations

import importlib
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

from engine.graph import summarize
from engine.layers import fmt
from engine.spec import ModelSpec

COLUMNS = ("Layer", "Type", "Output shape", "Parameters", "MACs", "Receptive field", "Formula")
_NUMERIC = {3, 4}


def _field(row: Any, *names: str, default: Any = "") -> Any:
    for name in names:
        value = row.get(name) if isinstance(row, dict) else getattr(row, name, None)
        if value is not None:
            return value
    return default


def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) for v in value):
        return fmt(tuple(value))
    return str(value)


def rows_for(spec: ModelSpec) -> list[tuple[str, ...]]:
    """Table cells per layer; ``engine.analysis.analyze`` when there is one, ``summarize`` otherwise."""
    try:
        analyze = importlib.import_module("engine.analysis").analyze
    except (ImportError, AttributeError):
        analyze = None
    if analyze is not None:
        try:
            result = analyze(spec)
            rows = _field(result, "rows", "layers", default=result)
            return [(str(_field(r, "name", "node", "id")), str(_field(r, "type")),
                     _text(_field(r, "output_shape", "shape")), _text(_field(r, "params", "parameters")),
                     _text(_field(r, "macs")), _text(_field(r, "receptive_field", "rf")),
                     str(_field(r, "formula")))
                    for r in rows]
        except Exception:  # noqa: BLE001 - an analysis still in the making must not hide the plain table
            pass
    return [(r.name, r.type, fmt(r.output_shape), f"{r.params:,}", "", "", "") for r in summarize(spec)]


class SummaryTable(QTableWidget):
    def __init__(self):
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)  # formulas are long: one line each, the table scrolls sideways
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

    def show_rows(self, rows: list[tuple[str, ...]]) -> None:
        self.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == len(COLUMNS) - 1 and text:
                    item.setToolTip(text)
                if c in _NUMERIC:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(r, c, item)
        empty = {c for c in range(len(COLUMNS)) if not any(len(row) > c and row[c] for row in rows)}
        for c in range(len(COLUMNS)):
            self.setColumnHidden(c, c in empty and c > 3)
