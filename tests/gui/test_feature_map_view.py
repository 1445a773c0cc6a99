"""The feature-map, filters and dream views and the viewer's invariance sliders and folder stepping, through
the real main window (LeNet-5 loaded, offscreen)."""

import shutil

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from lumen.engine.explain.jobs import DreamFrame
from lumen.engine.explain.maximize import MaximizeTarget
from lumen.engine.probes.feature_maps import FeatureMapFrame
from lumen.engine.probes.filters import FilterFrame
from lumen.gui.views.dream import DreamView
from lumen.gui.views.feature_maps import FeatureMapView
from lumen.gui.views.filters import FilterView
from tests.support import SAMPLES


def view_of(window, frame_type):
    return window.viewer.views[frame_type]


def shown(window, frame_type):
    return window.viewer.frames.get(frame_type)


def test_the_layer_picker_shows_any_layer_before_or_after_its_activation(qtbot, window):
    view: FeatureMapView = view_of(window, FeatureMapFrame)
    window.viewer.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.layer_picker.findData("fc1") > 0, timeout=10_000)
    assert [m.node for m in view.frame.layers] == ["conv1", "conv2"]
    view.layer_picker.setCurrentIndex(view.layer_picker.findData("fc1"))
    view.layer_picker.activated.emit(view.layer_picker.currentIndex())
    qtbot.waitUntil(lambda: [m.node for m in view.frame.layers] == ["fc1"], timeout=10_000)
    assert list(view.layer_views) == ["fc1"] and view.frame.layers[0].maps.min() < 0
    view.after_activation.setChecked(True)
    qtbot.waitUntil(lambda: view.frame.layers[0].recorded == "relu3", timeout=10_000)
    assert view.frame.layers[0].maps.min() >= 0 and "relu3" in view.layer_views["fc1"].title.text
    view.choose_layer(None, after_activation=False)
    qtbot.waitUntil(lambda: [m.node for m in view.frame.layers] == ["conv1", "conv2"], timeout=10_000)


def test_clicking_a_tile_enlarges_it_with_the_value_under_the_cursor(qtbot, window):
    view: FeatureMapView = view_of(window, FeatureMapFrame)
    window.viewer.tabs.setCurrentWidget(view)
    window.resize(1400, 900)
    qtbot.waitUntil(lambda: "conv1" in view.layer_views, timeout=10_000)
    maps = view.frame.layers[0]
    row = view.layer_views["conv1"]
    h, w = maps.shape[1:]
    # The centre of tile 4 (second row, second column of a 3×2 grid... whatever the grid is), clicked for real.
    r, c = divmod(4, maps.grid[1])
    centre = QPointF(c * (w + 1) + w / 2, r * (h + 1) + h / 2)
    qtbot.waitUntil(lambda: view.canvas.isVisible() and row.box.width() > 10, timeout=5_000)
    scene_pos = row.image.mapToScene(centre)
    widget_pos = view.canvas.mapFromScene(scene_pos)
    qtbot.mouseClick(view.canvas.viewport(), Qt.MouseButton.LeftButton, pos=widget_pos)
    qtbot.waitUntil(lambda: view.zoomed == ("conv1", 4), timeout=5_000)
    np.testing.assert_array_equal(view.zoom_image.image, maps.maps[4])
    assert "channel 4" in view.zoom_title.text
    view._hover(view.zoom_image.mapToScene(QPointF(3.5, 2.5)))  # pixel (row 2, column 3)
    assert view.zoom_value.text() == f"(2, 3): {maps.maps[4][2, 3]:.4g}"
    view.scale.setCurrentIndex(1)  # per-tile colour scale: every tile reaches ±1
    assert np.nanmax(np.abs(row.image.image)) == pytest.approx(1.0)


def test_export_writes_a_png_and_the_raw_maps(qtbot, window, tmp_path, monkeypatch):
    view: FeatureMapView = view_of(window, FeatureMapFrame)
    window.viewer.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.frame is not None and bool(view.frame.layers), timeout=10_000)
    targets = iter([str(tmp_path / "maps.png"), str(tmp_path / "maps.npy")])
    monkeypatch.setattr("lumen.gui.widgets.export.QFileDialog.getSaveFileName", lambda *a, **k: (next(targets), ""))
    png, npy, _both = view.export.menu().actions()
    png.trigger()
    npy.trigger()
    assert (tmp_path / "maps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = np.load(tmp_path / "maps.npy")
    np.testing.assert_array_equal(saved, view.frame.layers[0].maps)
    assert saved.shape == (6, 28, 28)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps.npy", "maps.png"]  # no leftover temporary files


def test_the_filters_view_follows_the_layer_picker(qtbot, window):
    view: FilterView = view_of(window, FilterFrame)
    window.viewer.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.frame is not None and view.frame.filters is not None, timeout=10_000)
    assert view.frame.filters.node == "conv1" and view.frame.conv_layers == ("conv1", "conv2")
    view.choose_layer("conv2")
    qtbot.waitUntil(lambda: view.frame.filters.node == "conv2", timeout=10_000)
    assert view.row.image.image.shape == (16 * 6 - 1, 6 * 6 - 1)


def test_the_dream_view_shows_progress_and_stops(qtbot, window, tmp_path):
    view: DreamView = view_of(window, DreamFrame)
    window.viewer.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.layer.count() > 0 and view.target_class.count() == 10, timeout=10_000)
    view.mode.setCurrentIndex(view.mode.findData("dream"))
    view.layer.setCurrentIndex(view.layer.findData("conv2"))
    view.steps.setValue(5_000)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.frame is not None and 0 < view.progress.value(), timeout=10_000)
    assert view.stop_button.isEnabled() and not view.start_button.isEnabled()
    qtbot.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.frame.done, timeout=10_000)
    assert view.frame.cancelled and view.progress.value() < 500 and view.start_button.isEnabled()
    assert "stopped" in view.status.text()
    # A class: runs to the end; the picture and its probability are shown.
    view.mode.setCurrentIndex(view.mode.findData("class"))
    view.target_class.setCurrentIndex(3)
    view.steps.setValue(40)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.frame.done and view.frame.target == "class 3", timeout=20_000)
    assert view.progress.value() == 1000 and not view.frame.cancelled and "done" in view.status.text()
    assert view.image.image.shape == (28, 28)


def test_the_invariance_sliders_move_the_input_and_the_predictions_follow(qtbot, window):
    viewer = window.viewer
    qtbot.waitUntil(lambda: shown(window, FeatureMapFrame) is not None, timeout=10_000)
    before = shown(window, FeatureMapFrame)
    viewer.transform_sliders["angle"].setValue(90)
    viewer.transform_sliders["scale"].setValue(60)
    qtbot.waitUntil(lambda: "rotated +90°" in shown(window, FeatureMapFrame).source, timeout=10_000)
    after = shown(window, FeatureMapFrame)
    assert "scaled ×0.6" in after.source and viewer.transform_labels["angle"].text() == "rotate +90°"
    assert not np.allclose(after.image, before.image)
    assert after.predictions != before.predictions
    viewer.reset_transform()
    qtbot.waitUntil(lambda: "rotated" not in shown(window, FeatureMapFrame).source, timeout=10_000)
    np.testing.assert_allclose(shown(window, FeatureMapFrame).image, before.image)


def test_a_dropped_folder_is_stepped_through(qtbot, window, tmp_path):
    for name in ("a_three.png", "b_seven.png"):
        shutil.copy(SAMPLES / f"digit_{3 if 'three' in name else 7}.png", tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a picture")
    viewer = window.viewer
    viewer.open_folder(tmp_path)
    assert viewer.folder_step.isVisibleTo(viewer) and viewer.folder_step.suffix() == " of 2"
    qtbot.waitUntil(lambda: shown(window, FeatureMapFrame).source == "a_three.png", timeout=10_000)
    viewer.folder_step.setValue(2)
    qtbot.waitUntil(lambda: shown(window, FeatureMapFrame).source == "b_seven.png", timeout=10_000)
    empty = tmp_path / "empty"
    empty.mkdir()
    viewer.open_folder(empty)
    assert "holds no pictures" in viewer.message.text()


def test_the_dream_view_maximizes_a_neuron_at_the_position_picked(qtbot, window):
    view: DreamView = view_of(window, DreamFrame)
    window.viewer.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.layer.count() > 0, timeout=10_000)
    view.mode.setCurrentIndex(view.mode.findData("neuron"))
    assert view.position.isEnabled()
    view.layer.setCurrentIndex(view.layer.findData("conv2"))
    channels, height, width = view.shapes["conv2"]
    assert view.layer_shape.text() == f"of {channels}×{height}×{width}"  # the boxes reach as far as the map
    assert (view.channel.maximum(), view.neuron_y.maximum(), view.neuron_x.maximum()) == (
        channels - 1,
        height - 1,
        width - 1,
    )
    sent = []
    view.command.connect(sent.append)
    view.channel.setValue(3)
    view.neuron_y.setValue(1)
    view.neuron_x.setValue(width - 2)
    view.steps.setValue(4)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    assert sent[0].objective == MaximizeTarget("neuron", 3, "conv2", 1, width - 2)
    qtbot.waitUntil(lambda: view.frame is not None and view.frame.done, timeout=20_000)
    assert view.frame.target == f"neuron 3 at (1, {width - 2}) of conv2" and "done" in view.status.text()
    # The centre, as before, when no position is picked; other modes have no position.
    view.neuron_y.setValue(-1)
    view.neuron_x.setValue(-1)
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    assert sent[1].objective == MaximizeTarget("neuron", 3, "conv2")
    qtbot.waitUntil(lambda: view.frame.done and view.frame.target == "neuron 3 of conv2", timeout=20_000)
    view.mode.setCurrentIndex(view.mode.findData("channel"))
    assert not view.position.isEnabled()


def test_a_narrow_window_keeps_the_input_and_readable_predictions(qtbot, window):
    """A 1,000-class model's spread-out guess reads 0.4%, not 0%, and wide maps do not squeeze the input away."""
    from dataclasses import replace

    view: FeatureMapView = view_of(window, FeatureMapFrame)
    window.viewer.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.frame is not None, timeout=10_000)
    frame = replace(view.frame, predictions=[("hoopskirt", 0.0041), ("vulture", 0.12), ("dogsled", 0.0)])
    view.show_frame(frame)
    labels = [label for _, label in view._ticks]
    assert labels == ["hoopskirt  0.4%", "vulture  12%", "dogsled  0%"]
    window.resize(700, 700)
    qtbot.waitUntil(lambda: view.io_canvas.width() > 0, timeout=5_000)
    assert view.io_canvas.width() >= 220
