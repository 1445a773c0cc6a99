"""The line a view shows when a frame could not be drawn, and the box that shows an error's details."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget


def show_details(parent: QWidget | None, title: str, summary: str, details: str) -> QMessageBox:
    """A non-modal box with the summary and the traceback under *Show Details…* (selectable, so it can be
    copied), and a *Copy* button that puts both on the clipboard."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, summary, QMessageBox.StandardButton.Close, parent)
    box.setDetailedText(details)
    copy = box.addButton("Copy", QMessageBox.ButtonRole.ActionRole)
    copy.clicked.disconnect()  # keep the box open after copying
    copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(f"{summary}\n\n{details}"))
    box.setWindowModality(Qt.WindowModality.NonModal)
    box.show()
    return box


class ErrorLine(QWidget):
    """One red line and a *Details* button, shown above a view whose frame could not be drawn."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.text = QLabel(wordWrap=True)
        self.text.setStyleSheet("color: #c0392b;")
        self.details = ""
        button = QPushButton("Details")
        button.clicked.connect(lambda: show_details(self, "Lumen: a view failed", self.text.text(), self.details))
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        row.addWidget(self.text, 1)
        row.addWidget(button)
        self.hide()

    def report(self, text: str, details: str) -> None:
        self.text.setText(text)
        self.details = details
        self.show()
