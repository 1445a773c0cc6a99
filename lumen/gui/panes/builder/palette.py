"""The layer palette: every layer type, grouped by family, filtered as you type; drag one onto the canvas
(or double-click it) to add a node."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from lumen.engine.layers import LAYERS
from lumen.gui.panes.builder.canvas import LAYER_MIME
from lumen.gui.panes.builder.style import FAMILY_ORDER, family

TYPE_ROLE = Qt.ItemDataRole.UserRole


class _LayerTree(QTreeWidget):
    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME]

    def mimeData(self, items) -> QMimeData:
        data = QMimeData()
        layer_type = next((i.data(0, TYPE_ROLE) for i in items if i.data(0, TYPE_ROLE)), None)
        if layer_type:
            data.setData(LAYER_MIME, layer_type.encode())
        return data


class Palette(QWidget):
    add_requested = Signal(str)  # a layer type, double-clicked

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.search = QLineEdit(placeholderText="Search layers…", clearButtonEnabled=True)
        self.tree = _LayerTree()
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setIndentation(12)
        self.tree.itemDoubleClicked.connect(self._double_clicked)
        self.search.textChanged.connect(self.filter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.tree, 1)
        self.populate()

    def populate(self) -> None:
        """(Re)list LAYERS, grouped by family in the order of ``style.FAMILIES``."""
        self.tree.clear()
        groups: dict[str, QTreeWidgetItem] = {}
        for name in sorted(LAYERS, key=lambda n: (FAMILY_ORDER.index(family(n)[0]), n)):
            group_name, colour = family(name)
            if group_name not in groups:
                group = QTreeWidgetItem(self.tree, [group_name])
                group.setFlags(Qt.ItemFlag.ItemIsEnabled)
                group.setForeground(0, QBrush(QColor(colour)))
                font = group.font(0)
                font.setBold(True)
                group.setFont(0, font)
                groups[group_name] = group
            description = LAYERS[name].description
            item = QTreeWidgetItem(groups[group_name], [name])
            item.setData(0, TYPE_ROLE, name)
            item.setToolTip(0, f"<b>{name}</b><br>{description}<br><i>drag onto the canvas, or double-click</i>")
            item.setStatusTip(0, description)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
        self.tree.expandAll()
        self.filter(self.search.text())

    def filter(self, text: str) -> None:
        words = text.lower().split()
        for g in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(g)
            shown = 0
            for i in range(group.childCount()):
                item = group.child(i)
                haystack = f"{item.text(0)} {item.statusTip(0)} {group.text(0)}".lower()
                hide = not all(w in haystack for w in words)
                item.setHidden(hide)
                shown += not hide
            group.setHidden(shown == 0)

    def visible_types(self) -> list[str]:
        return [
            group.child(i).data(0, TYPE_ROLE)
            for g in range(self.tree.topLevelItemCount())
            if not (group := self.tree.topLevelItem(g)).isHidden()
            for i in range(group.childCount())
            if not group.child(i).isHidden()
        ]

    def _double_clicked(self, item: QTreeWidgetItem) -> None:
        if item.data(0, TYPE_ROLE):
            self.add_requested.emit(item.data(0, TYPE_ROLE))
