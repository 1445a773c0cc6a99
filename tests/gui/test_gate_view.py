"""The gates view in the real window, on what a user feeds it: typed text for a character model, a CSV file
dropped on the viewer for a model of values."""

import numpy as np
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from engine.presets import PRESETS
from engine.probes.gates import GateFrame


def load(qtbot, window, preset, dataset=None):
    name = PRESETS[preset].make().name
    if dataset is not None:
        window.monitor.dataset.setCurrentText(dataset)  # what the user picks in the training settings
    window.builder.load_preset(preset)
    qtbot.waitUntil(lambda: window.viewer.info is not None and window.viewer.info.name == name, timeout=30_000)
    view = window.viewer.views[GateFrame]
    window.viewer.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.frame is not None and view.frame.layer != "", timeout=10_000)
    return view


def drop_file(widget, path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = widget.rect().center()
    flags = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, QDragEnterEvent(pos, *flags))
    QApplication.sendEvent(widget, QDropEvent(QPointF(pos), *flags))


def test_typed_text_goes_through_the_model_and_a_wrong_character_is_said(qtbot, window):
    viewer = window.viewer
    view = load(qtbot, window, "lstm_many_to_one")
    assert viewer.text.isVisible() and viewer.open_button.text() == "Open CSV…"
    qtbot.keyClicks(viewer.text, "!HEAD?")
    qtbot.keyClick(viewer.text, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: view.frame.steps == tuple("!HEAD?"), timeout=10_000)
    assert view.images[0].image.shape[1] == 6 and "typed text (6 characters)" in viewer.caption.text()
    viewer.text.setText("!hEAD?")
    qtbot.keyClick(viewer.text, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "'h' is not in the vocabulary" in viewer.message.text(), timeout=10_000)
    assert view.frame.steps == tuple("!HEAD?")  # what was shown stays
    viewer.text.clear()
    qtbot.keyClick(viewer.text, Qt.Key.Key_Return)  # empty: back to the validation sample
    qtbot.waitUntil(lambda: view.frame.source.startswith("validation sequence #"), timeout=10_000)


def test_a_csv_dropped_on_the_viewer_is_the_sequence_looked_at(qtbot, window, tmp_path):
    viewer = window.viewer
    view = load(qtbot, window, "lstm_many_to_many", "sine")
    assert not viewer.text.isVisible()  # values, not characters: nothing to type
    path = tmp_path / "ramp.csv"
    path.write_text("\n".join(str(v) for v in np.linspace(-1, 1, 23)))
    drop_file(viewer, path)
    qtbot.waitUntil(lambda: view.frame.source == "ramp.csv (23 steps)", timeout=10_000)
    assert view.images[0].image.shape[1] == 23
    wide = tmp_path / "wide.csv"
    wide.write_text("1,2\n3,4\n")
    drop_file(viewer, wide)
    qtbot.waitUntil(lambda: "wide.csv has 2 columns" in viewer.message.text(), timeout=10_000)
    assert view.frame.source == "ramp.csv (23 steps)"
