"""The summary view: one row per layer — output shape, parameters, multiply-accumulates, activation memory,
receptive field, what a dense layer would need instead, and the output-size formula (engine.graph.analysis)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

from lumen.engine.graph.analysis import NodeReport
from lumen.engine.spec.shapes import fmt

COLUMNS = (
    "Layer",
    "Type",
    "Output shape",
    "Parameters",
    "MACs",
    "Activation memory",
    "Receptive field",
    "Dense equivalent",
    "Formula",
)
_NUMERIC = {3, 4, 5, 6, 7}


def _bytes(count: int) -> str:
    for unit in ("B", "KB", "MB"):
        if count < 1024:
            return f"{count:,} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


def cells(report: NodeReport) -> tuple[str, ...]:
    rf = "" if report.receptive_field is None else f"{report.receptive_field}"
    dense = "" if report.dense_equivalent_params is None else f"{report.dense_equivalent_params:,}"
    return (
        report.id,
        report.type,
        fmt(report.output_shape),
        f"{report.params:,}",
        f"{report.macs:,}",
        _bytes(report.activation_bytes),
        rf,
        dense,
        report.formula,
    )


class SummaryTable(QTableWidget):
    def __init__(self):
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(COLUMNS)
        self.horizontalHeaderItem(7).setToolTip(
            "Parameters a fully connected layer between the same input and "
            "output would need: what weight sharing and local windows save"
        )
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)  # formulas are long: one line each, the table scrolls sideways
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

    def show_reports(self, reports: list[NodeReport]) -> None:
        self.setRowCount(len(reports))
        for r, report in enumerate(reports):
            for c, text in enumerate(cells(report)):
                item = QTableWidgetItem(text)
                if c == len(COLUMNS) - 1 and text:
                    item.setToolTip(text)
                if c in _NUMERIC:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.setItem(r, c, item)
