"""The real main window, driven with qtbot as a user would: train, pause, step, stop, drop images, close."""

import dataclasses
import time

import pytest
import torch

from lumen.engine.events import RunState, StepMetrics
from lumen.engine.probes.feature_maps import FeatureMapFrame
from lumen.gui.main_window import MainWindow
from tests.support import SAMPLES, ask_too_much_when, click, drop, write_png


def test_window_opens_with_three_panes_and_lenet5_on_mnist(window):
    titles = sorted(d.windowTitle() for d in window.docks.values())
    assert titles == ["Activation viewer", "Model builder", "Training monitor"]
    assert window.builder.table.rowCount() == 13
    assert "61,706" in window.builder.total.text()
    frame = window.viewer.frame
    assert frame.step == 0 and frame.source == "validation digit #0"
    view = window.viewer.views[FeatureMapFrame]
    assert list(view.layer_views) == ["conv1", "conv2"]
    assert view.layer_views["conv2"].image.image.shape == frame.layers[1].mosaic.shape
    assert window.viewer.tabs.tabBar().isHidden() == (len(window.viewer.views) == 1)  # tabs only for several views
    assert window.train_action.isEnabled() and not window.stop_action.isEnabled()


def test_train_pause_step_stop(qtbot, window):
    window.monitor.epochs.setValue(3)
    click(qtbot, window, window.train_action)
    curve = window.monitor.plots["loss"].batch
    qtbot.waitUntil(lambda: curve.xData is not None and len(curve.xData) >= 3, timeout=30_000)
    qtbot.waitUntil(lambda: window.viewer.frame.step > 0, timeout=30_000)  # the frame follows training
    assert not window.train_action.isEnabled() and window.stop_action.isEnabled()
    assert window.progress.maximum() == 3 * 71

    click(qtbot, window, window.pause_action)
    qtbot.waitUntil(lambda: window.state is RunState.PAUSED, timeout=10_000)
    assert window.pause_action.text() == "Resume" and window.step_action.isEnabled()
    qtbot.wait(300)
    steps = len(curve.xData)
    qtbot.wait(300)
    assert len(curve.xData) == steps  # really paused
    click(qtbot, window, window.step_action)
    qtbot.waitUntil(lambda: len(curve.xData) == steps + 1, timeout=10_000)
    qtbot.waitUntil(lambda: window.viewer.frame.step == steps + 1, timeout=10_000)  # a frame after the step
    assert window.progress.value() == steps + 1

    click(qtbot, window, window.pause_action)  # resume
    qtbot.waitUntil(lambda: len(curve.xData) > steps + 3, timeout=10_000)
    click(qtbot, window, window.stop_action)
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=10_000)
    assert "stopped at step" in window.status_label.text()
    assert window.train_action.isEnabled() and not window.pause_action.isEnabled()


@pytest.mark.slow
def test_training_to_the_end_shows_validation_points(qtbot, window):
    window.monitor.epochs.setValue(1)
    click(qtbot, window, window.train_action)
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=120_000)
    val = window.monitor.plots["accuracy"].val
    qtbot.waitUntil(lambda: val.xData is not None and len(val.xData) == 1, timeout=5_000)  # next curve redraw
    assert len(val.xData) == 1 and val.xData[0] == 71 and 0.5 < val.yData[0] <= 1
    assert "validation accuracy" in window.status_label.text()


def test_dropping_a_digit_shows_its_feature_maps_and_predictions(qtbot, window):
    event = drop(window.viewer, SAMPLES / "digit_7.png")
    assert event.isAccepted()
    qtbot.waitUntil(lambda: window.viewer.frame.source == "digit_7.png", timeout=10_000)
    frame = window.viewer.frame
    assert len(frame.predictions) == 5 and frame.label is None
    assert frame.image.shape == (28, 28) and frame.image.max() > 0.9 and frame.image[0, 0] == 0  # light on dark
    assert "digit_7.png: 112×112 pixels" in window.viewer.message.text()
    assert window.viewer.views[FeatureMapFrame].input_image.image.shape == (28, 28)


def test_bad_drops_get_a_message_and_change_nothing(qtbot, window, tmp_path):
    (tmp_path / "essay.png").write_text("not a picture")
    (tmp_path / "empty.png").write_bytes(b"")
    good = (SAMPLES / "digit_1.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(good[:100])
    write_png(tmp_path / "huge.png", 20_000, 20_000)
    before = window.viewer.frame
    expected = {
        "essay.png": "is not an image",
        "empty.png": "is empty",
        "truncated.png": "could not be decoded",
        "huge.png": "20,000 × 20,000 pixels",
    }
    for name, message in expected.items():
        drop(window.viewer, tmp_path / name)
        qtbot.waitUntil(lambda message=message: message in window.viewer.message.text(), timeout=10_000)
        assert "c0392b" in window.viewer.message.styleSheet()  # shown as an error
    qtbot.wait(200)
    assert window.viewer.frame is before  # the viewer still shows what it showed


def test_choosing_another_validation_digit(qtbot, window):
    window.viewer.probe.setValue(17)
    qtbot.waitUntil(lambda: window.viewer.frame.source == "validation digit #17", timeout=10_000)
    assert window.viewer.frame.label is not None


def test_closing_mid_training_stops_the_engine_without_a_hang(qtbot, window):
    window.monitor.epochs.setValue(100)
    click(qtbot, window, window.train_action)
    qtbot.waitUntil(lambda: window.state is RunState.TRAINING and window.progress.value() > 0, timeout=30_000)
    began = time.monotonic()
    window.close()
    assert time.monotonic() - began < 5
    assert not window.bridge.worker.alive


def test_the_layout_is_remembered(qtbot, settings):
    first = MainWindow(settings)
    qtbot.addWidget(first)
    first.show()
    first.docks["monitor"].hide()
    first.docks["viewer"].setFloating(True)
    first.close()
    second = MainWindow(settings)
    qtbot.addWidget(second)
    second.show()
    assert second.docks["monitor"].isHidden()
    assert second.docks["viewer"].isFloating()
    assert not second.docks["builder"].isHidden()
    second.close()


def test_bridge_keeps_every_metric_but_only_the_newest_frame(qtbot, window):
    bridge = window.bridge
    bridge.flush()
    frames, batches = [], []
    bridge.frame.connect(frames.append)
    bridge.metrics.connect(batches.append)
    old = window.viewer.frame
    newer = [dataclasses.replace(old, step=i) for i in range(1, 101)]
    metrics = [StepMetrics(i, 100, 1, {"loss": 1.0 / i, "accuracy": 0.5}, 1000.0) for i in range(1, 101)]
    for frame, metric in zip(newer, metrics):  # as the worker thread would, faster than any screen
        bridge._sink(metric)
        bridge._sink(frame)
    bridge.flush()
    assert [f.step for f in frames] == [100]
    assert [m.step for batch in batches for m in batch] == list(range(1, 101))


def test_colour_scale_is_symmetric_and_snaps_to_round_values(window):
    from lumen.gui.widgets.mosaic import nice_ceiling

    assert [nice_ceiling(v) for v in (0.03, 0.9, 1.0, 1.2, 2.17, 4.08, 7.0, 12.0)] == pytest.approx(
        [0.05, 1, 1, 2, 5, 5, 10, 20]
    )
    maps = window.viewer.frame.layers[0]
    low, high = window.viewer.views[FeatureMapFrame].layer_views[maps.node].bar.levels()
    assert low == -high and high >= max(abs(maps.levels[0]), abs(maps.levels[1]))


def test_presets_menu_groups_every_preset_by_family(qtbot, window):
    from lumen.engine.presets import PRESETS

    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Presets")
    families = {a.text(): a.menu() for a in menu.actions()}
    assert list(families) == [
        "CNNs for digits",
        "CNNs for pictures",
        "CNNs, full size",
        "Recurrent",
        "Autoencoders and Boltzmann machines",
    ]
    entries = [action for submenu in families.values() for action in submenu.actions()]
    assert len(entries) == len(PRESETS)
    resnet = next(a for a in families["CNNs for digits"].actions() if a.text().startswith("ResNet"))
    resnet.trigger()
    qtbot.waitUntil(lambda: window.builder.doc.spec.name == "ResNet (small)", timeout=5_000)
    assert window.builder.presets.currentData() == "resnet_small"


def test_a_first_batch_out_of_memory_pauses_the_window_with_a_progress_bar_that_is_not_busy(qtbot, window, monkeypatch):
    import lumen.engine.runtime.session as session_module

    greedy = {"armed": True}
    build = session_module.build_model

    def training_step(model):
        return greedy["armed"] and model.training and torch.is_grad_enabled()

    monkeypatch.setattr(session_module, "build_model", lambda spec: ask_too_much_when(build(spec), training_step))
    window.monitor.epochs.setValue(1)
    window.monitor.batch_size.setValue(512)
    window.train_action.trigger()
    qtbot.waitUntil(lambda: window.state is RunState.PAUSED, timeout=60_000)
    assert "out of memory (batch size 512) at step 1 (epoch 1)" in window.viewer.message.text()
    assert "smaller batch size" in window.status_label.text()
    assert window.progress.maximum() > 0 and window.progress.text() == "no step done yet"  # paused, not busy
    greedy["armed"] = False  # memory freed elsewhere: resume tries the batch again
    window.pause_action.trigger()
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=60_000)
    assert "out of memory" not in window.viewer.message.text()  # the run went on: the reason is taken down
    assert window.progress.value() == window.progress.maximum() > 1  # every step of the epoch, the failed one too


def test_a_diverging_run_pauses_the_window_and_says_why(qtbot, window):
    # The window's own learning-rate box stops at 10, which LeNet-5 survives; this rate makes the loss nan at
    # step 3, so the run is started through the same worker call the Train button makes.
    config = dataclasses.replace(window.monitor.config(), optimizer="sgd", lr=1e8, batch_size=16, epochs=1)
    window.bridge.worker.train(config)
    qtbot.waitUntil(lambda: window.state is RunState.PAUSED, timeout=60_000)
    assert "the loss became nan at step 3" in window.viewer.message.text()
    assert window.status_label.text().startswith("paused: the loss became nan at step 3")
    assert window.pause_action.isChecked() and window.step_action.isEnabled() and window.stop_action.isEnabled()
    assert window.progress.value() == 2  # the last good step
    assert window.monitor.plots["loss"].steps == 2  # the diverged step is not plotted
    readout = window.monitor.readout.text()  # the exploding loss of step 2, short enough for the window's width
    assert "step 2: batch loss" in readout and "e+" in readout and len(readout) < 50
    for view in window.monitor.views.values():  # the views draw the exploded weights and gradients, no error
        window.monitor.tabs.setCurrentWidget(view)
        qtbot.wait(50)
    window.stop_action.trigger()
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=10_000)
