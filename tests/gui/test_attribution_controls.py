"""The attribution view's Grad-CAM layer picker, a picture of the user's as integrated gradients' baseline, export
as PNG and .npy, and a long computation's progress bar with its Stop button — in the real window."""

import numpy as np
import pytest
from PySide6.QtCore import Qt

from lumen.engine.explain.attribution import AttributionSettings
from lumen.engine.probes import runner
from lumen.engine.probes.attribution import AttributionFrame, BaselinePicture
from lumen.engine.runtime.commands import CancelJob, ConfigureProbe
from lumen.gui.widgets.export import save_npy, save_png
from tests.support import SAMPLES, drop


def attribution(window):
    return window.viewer.frames.get(AttributionFrame)


def shown(window, view, name="digit_7.png"):
    window.viewer.tabs.setCurrentWidget(view)
    drop(window.viewer, SAMPLES / name)


def test_the_gradcam_layer_picker_follows_the_model_and_reaches_the_engine(qtbot, window):
    view = window.viewer.views[AttributionFrame]
    shown(window, view)
    qtbot.waitUntil(lambda: attribution(window) is not None and bool(attribution(window).layers), timeout=10_000)
    assert [view.layer.itemText(i) for i in range(view.layer.count())] == ["last conv layer", "conv1", "conv2"]
    assert view.option_rows["gradcam"][0].isVisibleTo(view)  # the default pair includes Grad-CAM
    sent = []
    view.command.connect(sent.append)
    view.layer.setCurrentText("conv1")
    qtbot.waitUntil(lambda: len(sent) == 1, timeout=5_000)
    assert sent[0].settings.options["layer"] == "conv1"
    qtbot.waitUntil(lambda: attribution(window).maps[1].layer == "conv1", timeout=10_000)
    assert "layer conv1" in view.panels[1].title.text


def test_a_picture_of_the_users_is_integrated_gradients_baseline(qtbot, window, tmp_path):
    view = window.viewer.views[AttributionFrame]
    shown(window, view)
    view.method_a.setCurrentText("integrated-gradients")
    sent = []
    view.command.connect(sent.append)
    assert view.use_baseline_picture(str(SAMPLES / "digit_1.png"))
    qtbot.waitUntil(
        lambda: any(isinstance(c.settings.options["baseline"], BaselinePicture) for c in sent), timeout=5_000
    )
    assert view.baseline.currentText() == "picture…"
    qtbot.waitUntil(
        lambda: (
            attribution(window).maps[0].method == "integrated-gradients"
            and attribution(window).maps[0].error is None
            and attribution(window).maps[0].delta is not None
        ),
        timeout=10_000,
    )
    broken = tmp_path / "not a picture.png"
    broken.write_bytes(b"hello")
    assert not view.use_baseline_picture(str(broken))
    assert view.problem.text() and view.baseline_picture.name == "digit_1.png"  # refused; the last one stays


def test_export_writes_the_panels_as_png_and_the_maps_as_npy(qtbot, window, tmp_path):
    view = window.viewer.views[AttributionFrame]
    shown(window, view, "digit_3.png")
    qtbot.waitUntil(
        lambda: attribution(window) is not None and attribution(window).source == "digit_3.png", timeout=10_000
    )
    qtbot.waitUntil(lambda: len(attribution(window).maps) == 2, timeout=10_000)
    array = view.export_array()
    assert array.shape == (2, 28, 28) and array.dtype == np.float32
    assert view.export_name() == "digit_3-saliency-gradcam"
    np.testing.assert_array_equal(np.load(save_npy(array, tmp_path / "maps.npy")), array)
    png = save_png(view.export._picture(), tmp_path / "maps.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("steps", [1000])
def test_a_long_computation_shows_progress_and_stop_ends_it(qtbot, window, monkeypatch, steps):
    monkeypatch.setattr(runner, "FIRST_SLICE_S", 0.0)  # every computation counts as long
    view = window.viewer.views[AttributionFrame]
    shown(window, view)
    qtbot.waitUntil(
        lambda: attribution(window) is not None and attribution(window).source == "digit_7.png", timeout=10_000
    )
    sent = []
    view.command.connect(sent.append)
    view.method_a.setCurrentText("integrated-gradients")
    view.method_b.setCurrentText("(none)")
    view.steps.setValue(steps)
    qtbot.waitUntil(lambda: any(isinstance(c, ConfigureProbe) for c in sent), timeout=5_000)
    # one step a slice, so that LeNet takes long enough to be stopped
    window.bridge.worker.submit(
        ConfigureProbe(
            "attribution", AttributionSettings(("integrated-gradients",), None, {"steps": steps, "chunk": 1})
        )
    )
    qtbot.waitUntil(lambda: view.busy.isVisibleTo(view), timeout=10_000)
    assert 0 <= view.progress.value() < 1000 and "computing" in view.panels[0].title.text
    qtbot.mouseClick(view.stop, Qt.MouseButton.LeftButton)
    assert isinstance(sent[-1], CancelJob)
    qtbot.waitUntil(lambda: not view.busy.isVisibleTo(view), timeout=10_000)
    assert "stopped" in attribution(window).note and "stopped" in view.predictions.text()
