"""The canvas: one item per node (title, type, output shape, parameters), ports, edges labelled with the
tensor shape they carry. The scene draws the document and reports what the user did (moved nodes, a new
connection, a dropped layer); the pane turns those reports into undo commands.
"""

from __future__ import annotations

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsSceneMouseEvent,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from lumen.engine.layers import LAYERS
from lumen.engine.spec.model_spec import Node
from lumen.engine.spec.shapes import fmt
from lumen.gui.panes.builder.document import SpecDocument
from lumen.gui.panes.builder.layout import NODE_H, NODE_W
from lumen.gui.panes.builder.style import family

LAYER_MIME = "application/x-lumen-layer"
ERROR = QColor("#d0312d")
SELECTED = QColor("#1c7ed6")
PORT_R = 5.0
HEADER_H = 21.0
_ABBREVIATIONS = {
    "out_channels": "out",
    "kernel_size": "k",
    "stride": "s",
    "padding": "p",
    "dilation": "d",
    "groups": "g",
    "out_features": "out",
    "hidden_size": "hidden",
    "num_layers": "layers",
    "bidirectional": "bi",
    "negative_slope": "slope",
    "bias": "bias",
}


def param_summary(node: Node) -> str:
    parts = []
    for key, value in node.params.items():
        if node.type == "input" and key == "shape":
            continue
        if isinstance(value, list):
            value = "×".join(map(str, value))
        elif isinstance(value, float):
            value = f"{value:g}"
        parts.append(f"{_ABBREVIATIONS.get(key, key)} {value}")
    return " · ".join(parts)


class PortItem(QGraphicsEllipseItem):
    def __init__(self, node: NodeItem, direction: str, centre: QPointF):
        super().__init__(-PORT_R, -PORT_R, 2 * PORT_R, 2 * PORT_R, node)
        self.node_id, self.direction = node.node.id, direction  # "in" or "out"
        self.setPos(centre)
        self.setBrush(QColor("#ffffff"))
        self.setPen(QPen(QColor("#5c6770"), 1.4))
        self.setCursor(Qt.CursorShape.CrossCursor if direction == "out" else Qt.CursorShape.ArrowCursor)
        self.setToolTip("Drag from here to another node's input to connect" if direction == "out" else "input")


class NodeItem(QGraphicsItem):
    def __init__(self, node: Node, shape, error: str | None):
        super().__init__()
        self.node, self.shape_text, self.error = node, fmt(shape) if shape else "?", error
        self.family, colour = family(node.type)
        self.colour = QColor(colour)
        self.edges: list[EdgeItem] = []
        self.setFlags(
            QGraphicsItem.GraphicsItemFlag.ItemIsMovable
            | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
            | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges
        )
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setZValue(1)
        layer = LAYERS.get(node.type)
        if layer is None or layer.arity != 0:
            self.in_port = PortItem(self, "in", QPointF(NODE_W / 2, 0))
        self.out_port = PortItem(self, "out", QPointF(NODE_W / 2, NODE_H))
        tip = f"<b>{node.id}</b> ({node.type}) → {self.shape_text}"
        if layer is not None:
            tip += f"<br>{layer.description}"
        if error:
            tip += f"<br><span style='color:{ERROR.name()}'><b>{error}</b></span>"
        self.setToolTip(tip)

    def boundingRect(self) -> QRectF:
        return QRectF(-6, -6, NODE_W + 12, NODE_H + 12)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(QRectF(0, 0, NODE_W, NODE_H), 6, 6)
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        body = QRectF(0, 0, NODE_W, NODE_H)
        painter.setPen(Qt.PenStyle.NoPen)
        if self.isSelected():  # a halo, so selection reads apart from the family colours
            painter.setBrush(QColor(28, 126, 214, 70))
            painter.drawRoundedRect(body.adjusted(-5, -5, 5, 5), 9, 9)
        painter.setBrush(QColor("#ffffff"))
        painter.drawRoundedRect(body, 6, 6)
        header = QPainterPath()
        header.addRoundedRect(QRectF(0, 0, NODE_W, HEADER_H + 6), 6, 6)
        clip = QPainterPath()
        clip.addRect(QRectF(0, 0, NODE_W, HEADER_H))
        painter.fillPath(header.intersected(clip), self.colour)

        font = QFont(painter.font())
        font.setPointSizeF(9.0)
        bold = QFont(font)
        bold.setBold(True)
        metrics = QFontMetricsF(font)
        pad = 8.0
        # Header: the id, which may be a long dotted path, gets the whole width.
        painter.setPen(QColor("#ffffff"))
        painter.setFont(bold)
        title = QFontMetricsF(bold).elidedText(self.node.id, Qt.TextElideMode.ElideMiddle, NODE_W - 2 * pad)
        painter.drawText(QRectF(pad, 0, NODE_W - 2 * pad, HEADER_H), Qt.AlignmentFlag.AlignVCenter, title)
        # Body: the output shape and the type, then the parameters or the error.
        painter.setFont(font)
        painter.setPen(self.colour.darker(130))
        painter.drawText(
            QRectF(pad, HEADER_H + 2, NODE_W - 2 * pad, 18),
            Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
            self.node.type,
        )
        painter.setFont(bold)
        painter.setPen(QColor("#1d2329"))
        painter.drawText(
            QRectF(pad, HEADER_H + 2, NODE_W - 2 * pad, 18), Qt.AlignmentFlag.AlignVCenter, f"→ {self.shape_text}"
        )
        painter.setFont(font)
        layer = LAYERS.get(self.node.type)
        line = self.error or param_summary(self.node) or (layer.description if layer else "")
        painter.setPen(ERROR if self.error else QColor("#5c6770"))
        painter.drawText(
            QRectF(pad, HEADER_H + 19, NODE_W - 2 * pad, 17),
            Qt.AlignmentFlag.AlignVCenter,
            metrics.elidedText(line, Qt.TextElideMode.ElideRight, NODE_W - 2 * pad),
        )
        # Outline: red for the invalid node, blue when selected, the family's colour otherwise.
        if self.isSelected():
            pen = QPen(SELECTED, 2.6)
        elif self.error:
            pen = QPen(ERROR, 2.6)
        else:
            pen = QPen(self.colour.darker(115), 1.2)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(body, 6, 6)
        if self.error and self.isSelected():  # keep the error visible on a selected node
            painter.setPen(QPen(ERROR, 1.2, Qt.PenStyle.DashLine))
            painter.drawRoundedRect(body.adjusted(-3, -3, 3, 3), 8, 8)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            for edge in self.edges:
                edge.update_path()
        return super().itemChange(change, value)


class EdgeItem(QGraphicsPathItem):
    def __init__(self, src: NodeItem, dst: NodeItem, route: list[tuple[float, float]], label: str):
        super().__init__()
        self.src, self.dst, self.route, self.label = src, dst, route, label
        self.edge = (src.node.id, dst.node.id)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(0)
        self.setToolTip(f"{self.edge[0]} → {self.edge[1]}" + (f": {label}" if label else ""))
        src.edges.append(self)
        dst.edges.append(self)
        self.update_path()

    def update_path(self) -> None:
        # Bend points are kept only while both ends sit where the layout put them.
        start = self.src.pos() + QPointF(NODE_W / 2, NODE_H + PORT_R)
        end = self.dst.pos() + QPointF(NODE_W / 2, -PORT_R)
        points = [start] + [QPointF(*p) for p in self.route] + [end]
        path = QPainterPath(start)
        for a, b in zip(points, points[1:]):
            bend = max(abs(b.y() - a.y()) / 2, 20.0)
            path.cubicTo(a + QPointF(0, bend), b - QPointF(0, bend), b)
        self.prepareGeometryChange()
        self.setPath(path)
        first = points[1] if len(points) > 2 else end
        self.label_at = path.pointAtPercent(min(0.5, 0.5 * QLineF(start, first).length() / max(path.length(), 1)))

    def boundingRect(self) -> QRectF:
        return super().boundingRect().united(QRectF(self.label_at - QPointF(60, 10), self.label_at + QPointF(60, 10)))

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(10)
        return stroker.createStroke(self.path())

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = SELECTED if self.isSelected() else QColor("#8a949c")
        painter.setPen(QPen(colour, 2.2 if self.isSelected() else 1.5))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path())
        end = self.path().pointAtPercent(1.0)  # arrow head into the input port
        arrow = QPainterPath(end)
        arrow.lineTo(end + QPointF(-4.5, -8))
        arrow.lineTo(end + QPointF(4.5, -8))
        arrow.closeSubpath()
        painter.fillPath(arrow, colour)
        if self.label:
            font = QFont(painter.font())
            font.setPointSizeF(8.0)
            painter.setFont(font)
            metrics = QFontMetricsF(font)
            box = QRectF(0, 0, metrics.horizontalAdvance(self.label) + 10, metrics.height() + 2)
            box.moveCenter(self.label_at)
            painter.setPen(QPen(QColor("#c9d0d6"), 1))
            painter.setBrush(QColor("#f4f6f8"))
            painter.drawRoundedRect(box, 4, 4)
            painter.setPen(QColor("#36414a"))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self.label)


class BuilderScene(QGraphicsScene):
    nodes_moved = Signal(dict)  # {node id: (x, y)}
    connect_requested = Signal(str, str)  # src, dst
    layer_dropped = Signal(str, QPointF)  # layer type, scene position

    def __init__(self, doc: SpecDocument, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict[tuple[str, str], EdgeItem] = {}
        self._wire: QGraphicsPathItem | None = None  # the line that follows the mouse while connecting
        self._wire_from: str | None = None
        self.setBackgroundBrush(QColor("#eef1f4"))
        doc.changed.connect(self.rebuild)

    def rebuild(self, *_: object) -> None:
        selected_nodes = {i for i, item in self.nodes.items() if item.isSelected()}
        selected_edges = {e for e, item in self.edges.items() if item.isSelected()}
        self.nodes, self.edges, self._wire = {}, {}, None
        self.blockSignals(True)  # no selectionChanged for items going away; the pane refreshes after a rebuild
        self.clear()
        doc, snapshot = self.doc, self.doc.snapshot
        bad = doc.error.node if doc.error else None
        for node in snapshot.spec.nodes:
            item = NodeItem(node, doc.shapes.get(node.id), doc.error.reason if node.id == bad else None)
            item.setPos(QPointF(*snapshot.positions[node.id]))
            item.setSelected(node.id in selected_nodes)
            self.addItem(item)
            self.nodes[node.id] = item
        for src, dst in snapshot.spec.edges:
            shape = doc.shapes.get(src)
            edge = EdgeItem(
                self.nodes[src], self.nodes[dst], snapshot.routes.get((src, dst), []), fmt(shape) if shape else ""
            )
            edge.setSelected((src, dst) in selected_edges)
            self.addItem(edge)
            self.edges[(src, dst)] = edge
        self.blockSignals(False)
        self.setSceneRect(self.itemsBoundingRect().adjusted(-400, -300, 400, 300))
        self.update()

    def select_nodes(self, ids) -> None:
        self.clearSelection()
        for node_id in ids:
            if node_id in self.nodes:
                self.nodes[node_id].setSelected(True)

    def selected_node_ids(self) -> list[str]:
        return [i for i, item in self.nodes.items() if item.isSelected()]

    def selected_edges(self) -> list[tuple[str, str]]:
        return [e for e, item in self.edges.items() if item.isSelected()]

    # ---- connecting by dragging from an output port ----------------------------------------------------
    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        hit = self.itemAt(event.scenePos(), self.views()[0].transform() if self.views() else QTransform())
        if event.button() == Qt.MouseButton.LeftButton and isinstance(hit, PortItem) and hit.direction == "out":
            self._wire_from = hit.node_id
            self._wire = self.addPath(QPainterPath(), QPen(SELECTED, 2, Qt.PenStyle.DashLine))
            self._wire.setZValue(3)
            self._draw_wire(event.scenePos())
            event.accept()
            return
        super().mousePressEvent(event)

    def _draw_wire(self, to: QPointF) -> None:
        start = self.nodes[self._wire_from].pos() + QPointF(NODE_W / 2, NODE_H)
        path = QPainterPath(start)
        bend = max(abs(to.y() - start.y()) / 2, 20.0)
        path.cubicTo(start + QPointF(0, bend), to - QPointF(0, bend), to)
        self._wire.setPath(path)

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._wire is not None:
            self._draw_wire(event.scenePos())
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._wire is not None:
            self.removeItem(self._wire)
            self._wire, src = None, self._wire_from
            target = next(
                (item for item in self.items(event.scenePos()) if isinstance(item, (PortItem, NodeItem))), None
            )
            dst = target.node_id if isinstance(target, PortItem) else target.node.id if target else None
            if dst and dst != src:
                # Reported after this event returns: the answer rebuilds the scene, items included.
                QTimer.singleShot(0, lambda: self.connect_requested.emit(src, dst))
            return
        super().mouseReleaseEvent(event)
        moved = {
            i: (item.pos().x(), item.pos().y())
            for i, item in self.nodes.items()
            if (item.pos().x(), item.pos().y()) != tuple(self.doc.snapshot.positions.get(i, (0.0, 0.0)))
        }
        if moved:
            QTimer.singleShot(0, lambda: self.nodes_moved.emit(moved))


class BuilderView(QGraphicsView):
    """Wheel zooms about the cursor; the middle button, or space held, pans; palette layers drop here."""

    MIN_ZOOM, MAX_ZOOM = 0.15, 3.0

    def __init__(self, scene: BuilderScene, parent: QWidget | None = None):
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setAcceptDrops(True)
        self._pan_from: QPointF | None = None
        self._framed = False  # the view shows what show_all chose, untouched by the user since

    def zoom(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float) -> None:
        factor = max(self.MIN_ZOOM / self.zoom(), min(self.MAX_ZOOM / self.zoom(), factor))
        self.scale(factor, factor)

    def wheelEvent(self, event: QWheelEvent) -> None:
        self._framed = False
        self.zoom_by(1.0015 ** event.angleDelta().y())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._framed:  # a model shown before its dock got its final size: frame it again
            self.show_all()

    def show_all(self, min_zoom: float = 0.75) -> None:
        """Fit the model, but never so small that its text is unreadable: then show its top (the input)."""
        rect = self.scene().itemsBoundingRect().adjusted(-30, -30, 30, 30)
        if rect.isEmpty():
            return
        self._framed = True
        self.resetTransform()
        view = self.viewport().rect()
        scale = min(view.width() / rect.width(), view.height() / rect.height(), 1.0)
        scale = max(scale, min_zoom)
        self.scale(scale, scale)
        if scale * rect.height() <= view.height() and scale * rect.width() <= view.width():
            self.centerOn(rect.center())
        else:
            self.centerOn(QPointF(rect.center().x(), rect.top() + view.height() / scale / 2))

    # ---- panning -----------------------------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = event.position()
            self._framed = False
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.MiddleButton and self._pan_from is not None:
            self._pan_from = None
            self.viewport().unsetCursor()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
            return
        super().keyReleaseEvent(event)

    # ---- layers dragged from the palette ------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(LAYER_MIME):
            event.acceptProposedAction()
        else:
            event.ignore()  # files (a spec .json) go on to the window

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasFormat(LAYER_MIME):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        if not event.mimeData().hasFormat(LAYER_MIME):
            event.ignore()
            return
        layer_type = bytes(event.mimeData().data(LAYER_MIME)).decode()
        event.acceptProposedAction()
        at = self.mapToScene(event.position().toPoint()) - QPointF(NODE_W / 2, NODE_H / 2)
        self.scene().layer_dropped.emit(layer_type, at)
