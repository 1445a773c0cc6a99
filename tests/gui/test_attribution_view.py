"""The attribution view in the real window: a dropped picture gets its overlays, the controls reach the engine
as one ConfigureProbe command, the maps follow training."""

import numpy as np
import pytest

from lumen.engine.events import RunState
from lumen.engine.probes.attribution import AttributionFrame, MethodMap
from lumen.engine.runtime.commands import ConfigureProbe
from lumen.gui.views import VIEWS
from lumen.gui.views.attribution import AttributionView, overlay_lut
from tests.support import SAMPLES, click, drop


def attribution(window):
    return window.viewer.frames.get(AttributionFrame)


def test_the_view_is_registered_for_attribution_frames():
    assert VIEWS[AttributionFrame] is AttributionView


def test_overlay_lookup_tables_are_256_rgba_with_alpha_rising_with_strength():
    for signed in (False, True):
        lut = overlay_lut(signed)
        assert lut.shape == (256, 4) and lut.dtype == np.uint8 and lut.flags.c_contiguous
        assert lut[255, 3] == 255
    assert overlay_lut(False)[0, 3] == 0 and overlay_lut(True)[128, 3] < 30  # zero lets the picture through


def test_a_dropped_picture_gets_two_overlays_side_by_side(qtbot, window):
    view = window.viewer.views[AttributionFrame]
    window.viewer.tabs.setCurrentWidget(view)
    drop(window.viewer, SAMPLES / "digit_7.png")
    qtbot.waitUntil(
        lambda: attribution(window) is not None and attribution(window).source == "digit_7.png", timeout=10_000
    )
    frame = attribution(window)
    assert [m.method for m in frame.maps] == ["saliency", "gradcam"]
    for panel, shown in zip(view.panels, frame.maps):
        assert panel.image.image.shape == (28, 28)
        assert panel.overlay.image.shape == (28, 28) and panel.overlay.image.dtype == np.float32
        assert panel.overlay.getLevels() == pytest.approx(shown.levels)
    assert "digit_7.png" in window.viewer.caption.text() and "explaining class" in window.viewer.caption.text()
    view.opacity.setValue(30)
    assert view.panels[0].overlay.opacity() == pytest.approx(0.3)


def test_controls_send_one_command_and_the_ig_delta_is_shown(qtbot, window):
    view = window.viewer.views[AttributionFrame]
    window.viewer.tabs.setCurrentWidget(view)  # a view behind another tab is drawn when it is shown
    sent = []
    view.command.connect(sent.append)
    view.method_a.setCurrentText("integrated-gradients")
    view.steps.setValue(20)
    view.method_b.setCurrentText("occlusion")
    qtbot.waitUntil(lambda: len(sent) == 1, timeout=5_000)  # debounced: three changes, one command
    assert isinstance(sent[0], ConfigureProbe) and sent[0].probe == "attribution"
    assert sent[0].settings.methods == ("integrated-gradients", "occlusion")
    assert sent[0].settings.options["steps"] == 20
    qtbot.waitUntil(
        lambda: (
            attribution(window)
            and [m.method for m in attribution(window).maps] == ["integrated-gradients", "occlusion"]
        ),
        timeout=10_000,
    )
    assert "convergence δ" in view.panels[0].title.text
    assert view.option_rows["occlusion"][0].isVisibleTo(view) and not view.option_rows["smoothgrad"][0].isVisibleTo(
        view
    )
    view.target.setCurrentIndex(4)  # class "3"
    qtbot.waitUntil(lambda: attribution(window).target == 3, timeout=10_000)


@pytest.mark.slow
def test_the_maps_follow_training(qtbot, window):
    window.viewer.tabs.setCurrentWidget(window.viewer.views[AttributionFrame])  # on screen: its probe runs
    window.monitor.epochs.setValue(1)
    click(qtbot, window, window.train_action)
    qtbot.waitUntil(lambda: attribution(window).step > 0, timeout=30_000)
    first = attribution(window).step
    qtbot.waitUntil(lambda: attribution(window).step > first, timeout=30_000)
    window.stop_action.trigger()
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=10_000)


def _method_map(method: str, title: str, **extra) -> MethodMap:
    heat = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    return MethodMap(method, title, heat, (0.0, 1.0), False, **extra)


@pytest.mark.parametrize("width", [1000, 520])  # wide (height-bound pictures) and narrow (width-bound)
def test_both_panels_are_the_same_size_whatever_their_titles(qtbot, width):
    view = AttributionView()
    qtbot.addWidget(view)
    view.resize(width, 480)
    view.show()
    image = np.zeros((28, 28), np.float32)
    long = _method_map("integrated-gradients", "Integrated gradients", delta=0.0123)
    for maps in [
        (long, _method_map("saliency", "Saliency")),  # a long title on the left
        (_method_map("saliency", "Saliency"), _method_map("gradcam", "Grad-CAM", layer="conv2")),
        (_method_map("saliency", "Saliency"),),  # one map: the second panel keeps its half, empty
    ]:
        view.show_frame(AttributionFrame(1, "x.png", image, 1, (), maps))
        qtbot.wait(10)  # the layout settles in the event loop
        boxes = [panel.box.sceneBoundingRect() for panel in view.panels]
        assert boxes[0].width() == pytest.approx(boxes[1].width(), abs=1)
        assert boxes[0].height() == pytest.approx(boxes[1].height(), abs=1)
        assert boxes[0].width() > 0.4 * width  # half of the canvas each, less the margins
        pictures = [panel.image.mapRectToScene(panel.image.boundingRect()) for panel in view.panels]
        assert pictures[0].width() == pytest.approx(pictures[1].width(), abs=1)
