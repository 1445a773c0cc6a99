"""A combo box whose choices follow the newest frame (a model's layers, a probe's signals)."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtWidgets import QComboBox


def offer(box: QComboBox, items: Iterable[str], chosen: str | None = None) -> None:
    """Make ``items`` the box's choices — only when they changed, as frames arrive several times a second and
    rebuilding the list would close it under the user's mouse — keeping the selection if it is still offered; then
    select ``chosen`` when given (what the frame was made for)."""
    items = list(items)
    if [box.itemText(i) for i in range(box.count())] != items:
        current = box.currentText()
        box.clear()
        box.addItems(items)
        if current in items:
            box.setCurrentText(current)
    if chosen:
        box.setCurrentText(chosen)
