"""Regenerate the screenshots in docs/: the real window, used as a person would, then grabbed.

python tools/screenshots.py            (offscreen by default; set QT_QPA_PLATFORM=xcb under Xvfb)
"""

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engine.probes.feature_maps import FeatureMapFrame  # noqa: E402
from engine.runtime.events import RunState  # noqa: E402
from gui.app import configure_pyqtgraph  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402


def pump(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)


def drop(widget, path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, QDragEnterEvent(widget.rect().center(), *args))
    QApplication.sendEvent(widget, QDropEvent(QPointF(widget.rect().center()), *args))


def main() -> None:
    configure_pyqtgraph()
    app = QApplication(sys.argv)
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "shots.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings)
    window.resize(1600, 1000)
    window.show()
    pump(app, 2)

    window.builder.load_preset("googlenet_small")
    pump(app, 2)
    window.grab().save(str(ROOT / "docs" / "screenshot-builder.png"))

    window.builder.load_preset("lenet5")
    window.monitor.epochs.setValue(4)
    pump(app, 1)
    window.train_action.trigger()
    while window.state is not RunState.FINISHED:
        pump(app, 0.2)
    drop(window.viewer, ROOT / "resources" / "samples" / "digit_3.png")
    pump(app, 2)
    window.grab().save(str(ROOT / "docs" / "screenshot-training.png"))
    frame = window.viewer.frames[FeatureMapFrame]
    print(window.status_label.text(), "|", frame.source, frame.predictions[:2])
    window.close()


if __name__ == "__main__":
    main()
