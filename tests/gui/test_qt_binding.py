"""Guards against a Qt binding that corrupts Python's reference counts (PySide6 6.12.0 on Python 3.11 does:
each call of a method returning void released one reference to None, and the app died mid-training)."""

import sys

from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage, QPainter, QPen


def test_void_qt_calls_leave_none_refcount_alone():
    image = QImage(32, 32, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        calls = [
            lambda: painter.setPen(QPen(QColor(0, 0, 0))),
            lambda: painter.drawLine(QPointF(0, 0), QPointF(9, 9)),
            lambda: painter.translate(1, 1),
            lambda: (painter.save(), painter.restore()),
        ]
        for call in calls:
            call()
        before = sys.getrefcount(None)
        for _ in range(500):
            for call in calls:
                call()
        assert abs(sys.getrefcount(None) - before) < 50
    finally:
        painter.end()
