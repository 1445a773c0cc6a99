"""The viewer's replay row through the real main window: a short recorded run keeps checkpoints, the slider shows
a checkpoint's feature maps (live frames do not overwrite them), and Live goes back to the live frames."""

import numpy as np
from PySide6.QtCore import Qt

from lumen.engine.events import RunState
from lumen.engine.probes.feature_maps import FeatureMapFrame
from lumen.engine.training.loop import TrainConfig


def test_the_slider_replays_a_checkpoint_and_live_returns(qtbot, window):
    viewer = window.viewer
    view = viewer.views[FeatureMapFrame]
    viewer.tabs.setCurrentWidget(view)
    slider = viewer.replay_slider
    assert not slider.isEnabled() and "No checkpoints yet" in slider.toolTip()
    assert viewer.replay_label.text() == "live (no checkpoints)"

    viewer.checkpoint_every.setValue(2)  # a checkpoint every 2 steps, from now on
    window.bridge.worker.train(TrainConfig(epochs=1, max_steps=6, batch_size=16))
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=60_000)
    qtbot.waitUntil(lambda: viewer.replay_steps == (2, 4, 6), timeout=10_000)
    qtbot.waitUntil(lambda: viewer.frame.step == 6, timeout=10_000)
    live = viewer.frame
    assert slider.isEnabled() and slider.value() == 2 and viewer.replay_label.text() == "live"
    assert live.checkpoint_step is None and not viewer.live_button.isEnabled()

    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_Home)  # to the first checkpoint, as a person would
    assert viewer.replay_label.text() == "checkpoint step 2 (1 of 3)"
    qtbot.waitUntil(lambda: viewer.frame.checkpoint_step == 2, timeout=10_000)
    replayed = view.frame
    assert replayed.checkpoint_step == 2 and replayed.step == 2
    assert "checkpoint step 2" in viewer.caption.text()
    assert not np.allclose(replayed.layers[0].maps, live.layers[0].maps)  # six steps of training show

    qtbot.keyClick(slider, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: view.frame.checkpoint_step == 4, timeout=10_000)
    assert viewer.replay_label.text() == "checkpoint step 4 (2 of 3)"

    # A live frame (another digit) does not replace the replayed view; the replay follows the new digit.
    viewer.probe.setValue(3)
    qtbot.waitUntil(lambda: viewer.live_frames[FeatureMapFrame].source == "validation digit #3", timeout=10_000)
    qtbot.waitUntil(lambda: view.frame.source == "validation digit #3", timeout=10_000)
    assert view.frame.checkpoint_step == 4 and viewer.frame.checkpoint_step == 4

    qtbot.mouseClick(viewer.live_button, Qt.MouseButton.LeftButton)
    assert view.frame.checkpoint_step is None and view.frame.step == 6
    assert view.frame.source == "validation digit #3" and viewer.replay_label.text() == "live"
    assert "checkpoint step" not in viewer.caption.text() and not viewer.live_button.isEnabled()
    assert slider.value() == 2  # beside the newest checkpoint again
    viewer.probe.setValue(4)  # live frames are drawn again
    qtbot.waitUntil(lambda: view.frame.source == "validation digit #4", timeout=10_000)
    assert view.frame.checkpoint_step is None
