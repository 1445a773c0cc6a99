"""Renders lumen/resources/lumen.svg (the icon, written by hand) to lumen/resources/lumen.png, 256×256, with Qt's
SVG renderer: ``.venv/bin/python packaging/render_icon.py``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ICONS = Path(__file__).resolve().parents[1] / "lumen" / "resources"
SIZE = 256


def main() -> None:
    app = QGuiApplication.instance() or QGuiApplication(["render_icon", "-platform", "offscreen"])
    renderer = QSvgRenderer(str(ICONS / "lumen.svg"))
    image = QImage(SIZE, SIZE, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not image.save(str(ICONS / "lumen.png"), "PNG"):
        raise SystemExit("could not write lumen.png")
    del app


if __name__ == "__main__":
    main()
