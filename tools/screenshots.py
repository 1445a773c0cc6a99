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

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from lumen.engine.data.shapes import shape_images  # noqa: E402
from lumen.engine.events import RunState  # noqa: E402
from lumen.engine.explain.jobs import DreamFrame  # noqa: E402
from lumen.engine.probes.attribution import AttributionFrame  # noqa: E402
from lumen.engine.probes.feature_maps import FeatureMapFrame  # noqa: E402
from lumen.gui.app import configure_pyqtgraph  # noqa: E402
from lumen.gui.main_window import MainWindow  # noqa: E402


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
    drop(window.viewer, ROOT / "lumen" / "resources" / "samples" / "digit_3.png")
    pump(app, 2)
    window.grab().save(str(ROOT / "docs" / "screenshot-training.png"))
    frame = window.viewer.frames[FeatureMapFrame]
    print(window.status_label.text(), "|", frame.source, frame.predictions[:2])

    # The attribution view: saliency and Grad-CAM side by side on the dropped digit.
    attribution = window.viewer.views[AttributionFrame]
    window.viewer.tabs.setCurrentWidget(attribution)
    drop(window.viewer, ROOT / "lumen" / "resources" / "samples" / "digit_7.png")
    while (
        window.viewer.frames.get(AttributionFrame) is None
        or window.viewer.frames[AttributionFrame].source != "digit_7.png"
    ):
        pump(app, 0.1)
    pump(app, 1)
    window.grab().save(str(ROOT / "docs" / "screenshot-attribution.png"))

    # Activation maximization of the class "7": the picture LeNet itself finds most 7-like.
    dream = window.viewer.views[DreamFrame]
    window.viewer.tabs.setCurrentWidget(dream)
    pump(app, 0.5)
    dream.mode.setCurrentIndex(dream.mode.findData("class"))
    dream.target_class.setCurrentIndex(7)
    dream.start()
    while dream.frame is None or not dream.frame.done:
        pump(app, 0.2)
    pump(app, 1)
    window.grab().save(str(ROOT / "docs" / "screenshot-dream.png"))

    # The shapes CNN built for localisation: integrated gradients and Grad-CAM (16×16) on a colour picture.
    window.builder.load_preset("shapes_gap_cnn")
    window.monitor.epochs.setValue(8)
    window.monitor.lr.setValue(0.003)
    window.monitor.schedule.setCurrentText("cosine")
    pump(app, 1)
    window.train_action.trigger()
    pump(app, 1)
    while window.state is not RunState.FINISHED:
        pump(app, 0.2)
    picture = shape_images(12, size=96, seed=7)
    index = int(np.flatnonzero(picture.labels == 2)[0])  # a triangle
    path = Path(tempfile.mkdtemp()) / "triangle.png"
    Image.fromarray((np.moveaxis(picture.images[index], 0, 2) * 255).astype(np.uint8)).save(path)
    window.viewer.tabs.setCurrentWidget(attribution)
    attribution.method_a.setCurrentText("integrated-gradients")
    attribution.method_b.setCurrentText("gradcam")
    attribution.opacity.setValue(80)
    drop(window.viewer, path)
    pump(app, 1)
    while (
        window.viewer.frames[AttributionFrame].source != "triangle.png"
        or len(window.viewer.frames[AttributionFrame].maps) < 2
        or window.viewer.frames[AttributionFrame].maps[0].method != "integrated-gradients"
    ):
        pump(app, 0.1)
    pump(app, 1)
    window.grab().save(str(ROOT / "docs" / "screenshot-attribution-shapes.png"))
    window.close()


if __name__ == "__main__":
    main()
