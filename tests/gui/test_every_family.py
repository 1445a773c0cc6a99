"""Every family in the real window: views that apply and nothing else, nothing stale, nothing a view, a probe or
a slot raises closes the window, and the self-test passes for every preset."""

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import shiboken6
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QVBoxLayout

import lumen.engine.probes as engine_probes
import lumen.gui.views as gui_views
from lumen.engine.events import Frame, RunState
from lumen.engine.explain.jobs import DreamFrame
from lumen.engine.presets import PRESETS
from lumen.engine.probes import Probe
from lumen.engine.probes.sequence_output import SequenceOutputFrame
from lumen.gui.errors import LOG_NAME, install_excepthook, start_log
from lumen.gui.main_window import MainWindow
from lumen.gui.self_test import run_self_test
from lumen.gui.views import View

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, eq=False)
class BrokenFrame(Frame):
    pixels: np.ndarray


class BrokenProbe(Probe):
    """Makes a frame after every batch; with ``fail`` set, raises instead."""

    name = "broken"
    frame_type = BrokenFrame
    interval_s = 0.001
    budget = 1.0

    def __init__(self, fail: bool = False):
        self.fail = fail

    def frame(self, context):
        if self.fail:
            raise RuntimeError("the toy probe broke")
        return BrokenFrame(context.step, np.zeros((3,), np.float32))  # not a picture


class BrokenView(View):
    """Draws the way the feature-map view did on a sequence model: it indexes a shape the frame does not have."""

    title = "Broken"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel()
        QVBoxLayout(self).addWidget(self.label)
        self.attempts = 0

    def show_frame(self, frame):
        self.attempts += 1
        height, width = frame.pixels.shape  # raises: a 1-D array
        self.label.setText(f"{height}×{width}")


def open_window(qtbot, settings, monkeypatch, probe):
    monkeypatch.setattr(gui_views, "VIEWS", {**gui_views.VIEWS, BrokenFrame: BrokenView})
    monkeypatch.setattr(engine_probes, "PROBES", [*engine_probes.PROBES, probe])
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.viewer.info is not None and window.viewer.frame is not None, timeout=30_000)
    return window


def train_briefly(qtbot, window):
    window.monitor.epochs.setValue(1)
    window.monitor.batch_size.setValue(128)  # 36 batches
    window.train_action.trigger()
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=120_000)


def test_a_view_that_raises_says_so_in_one_line_and_training_goes_on(qtbot, settings, monkeypatch, lumen_data_dir):
    start_log()  # as the app does
    window = open_window(qtbot, settings, monkeypatch, BrokenProbe())
    view = window.viewer.views[BrokenFrame]
    window.viewer.tabs.setCurrentWidget(view)
    train_briefly(qtbot, window)
    assert window.isVisible() and view.attempts > 1  # every frame failed to draw; the window stayed
    line = view.error_line()
    assert line.isVisible()
    assert line.text.text() == "could not draw this frame: ValueError: not enough values to unpack (expected 2, got 1)"
    assert "Traceback" in line.details and "show_frame" in line.details  # what Details shows, to copy
    assert window.progress.value() == 36  # the run reached its end
    log = (lumen_data_dir / LOG_NAME).read_text()
    assert "the Broken view could not draw a BrokenFrame" in log and "ValueError" in log
    # A view that draws again takes the line down.
    window.viewer.views[BrokenFrame].show_frame = lambda frame: None
    window.viewer.tabs.setCurrentWidget(window.viewer.views[next(iter(gui_views.VIEWS))])
    window.viewer.tabs.setCurrentWidget(view)
    window.bridge.worker.probe_sample(1)  # a new probe input: every probe runs again
    qtbot.waitUntil(lambda: not line.isVisible(), timeout=10_000)
    window.close()


def test_a_probe_that_raises_is_reported_and_training_goes_on(qtbot, settings, monkeypatch):
    window = open_window(qtbot, settings, monkeypatch, BrokenProbe(fail=True))
    window.viewer.tabs.setCurrentWidget(window.viewer.views[BrokenFrame])
    qtbot.waitUntil(lambda: "the broken probe failed" in window.viewer.message.text(), timeout=10_000)
    assert "RuntimeError: the toy probe broke" in window.viewer.message.text()
    train_briefly(qtbot, window)
    assert window.isVisible() and window.progress.value() == 36
    window.close()


def test_an_error_in_a_slot_is_shown_logged_and_the_window_stays(qtbot, settings, lumen_data_dir):
    start_log()
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    shown: list[tuple[str, str]] = []
    rescued: list[bool] = []
    uninstall = install_excepthook(
        window, shown=lambda summary, details: shown.append((summary, details)), rescue=lambda: rescued.append(True)
    )
    try:

        def slot():
            raise KeyError("no such layer")

        QTimer.singleShot(0, slot)
        QTimer.singleShot(5, slot)  # the same error again: logged, shown once
        qtbot.waitUntil(lambda: bool(shown), timeout=5_000)
        qtbot.wait(100)
    finally:
        uninstall()
    assert [summary for summary, _ in shown] == ["KeyError: 'no such layer'"]
    assert rescued == [True]  # the run (if any) was saved before the dialog
    assert "Traceback" in shown[0][1]
    assert window.isVisible()
    assert "uncaught KeyError: 'no such layer'" in (lumen_data_dir / LOG_NAME).read_text()
    window.close()


def visible_tabs(tabs):
    return [tabs.tabText(i) for i in range(tabs.count()) if tabs.isTabVisible(i)]


def load(qtbot, window, preset):
    name = PRESETS[preset].make().name
    window.builder.load_preset(preset)
    qtbot.waitUntil(lambda: window.viewer.info is not None and window.viewer.info.name == name, timeout=30_000)


def test_each_family_gets_only_the_views_that_apply_and_nothing_of_the_last_model(qtbot, window):
    viewer, monitor = window.viewer, window.monitor
    assert visible_tabs(viewer.tabs) == ["Feature maps", "Attribution", "Filters", "Dream"]
    assert viewer.probe.prefix() == "validation digit #"
    assert window.viewer.views[next(iter(gui_views.VIEWS))].frame is not None

    load(qtbot, window, "lstm_many_to_one")
    assert visible_tabs(viewer.tabs) == ["Sequence", "Gates"]
    assert viewer.probe.prefix() == "validation sequence #" and viewer.open_button.text() == "Open CSV…"
    assert "digit" not in viewer.caption.text() and "conv1" not in viewer.caption.text()
    assert not any(t in viewer.frames for t in gui_views.VIEWS if t is not SequenceOutputFrame)
    qtbot.waitUntil(lambda: SequenceOutputFrame in viewer.frames, timeout=10_000)
    sequence = viewer.views[SequenceOutputFrame]
    assert sequence.text.text().startswith("<b>input&nbsp;&nbsp;</b> ") and "target" in sequence.text.text()
    assert viewer.caption.text().startswith("validation sequence #0")
    assert monitor.plots["loss"].widget.getPlotItem().titleLabel.text == "Loss (cross-entropy)"

    assert viewer.views[DreamFrame].mode.findData("class") == -1  # no class scores to maximize
    load(qtbot, window, "vae")
    assert visible_tabs(viewer.tabs) == ["Autoencoder", "Generate"] and not viewer.not_yet.isVisible()
    assert list(monitor.plots) == ["loss"]  # no accuracy plot: a VAE reports none
    assert monitor.plots["loss"].widget.getPlotItem().titleLabel.text == "Loss (negative ELBO: reconstruction + KL)"
    assert visible_tabs(monitor.tabs) == ["Gradients", "Histograms", "Runs"]

    load(qtbot, window, "rbm")
    assert visible_tabs(viewer.tabs) == ["Boltzmann"] and not viewer.not_yet.isVisible()
    assert monitor.plots["loss"].widget.getPlotItem().titleLabel.text == "Loss (free-energy gap, data − model (CD))"

    load(qtbot, window, "lenet5")
    assert visible_tabs(viewer.tabs) == ["Feature maps", "Attribution", "Filters", "Dream"]
    assert viewer.views[DreamFrame].mode.findData("class") >= 0  # a classifier: maximizing a class is offered


def test_the_window_never_grows_wider_than_a_small_screen_on_any_family(qtbot, window):
    """Seen under Xvfb: long readouts and status lines (an encoder–decoder's metrics) widened the window."""
    for preset in ("vae", "lstm_encoder_decoder", "rbm", "lenet5"):
        load(qtbot, window, preset)
        window.monitor.epochs.setValue(1)
        window.train_action.trigger()
        qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=120_000)
        qtbot.wait(200)
        assert window.minimumSizeHint().width() <= 1366, preset


def test_loading_another_model_leaves_nothing_of_the_last_run(qtbot, window):
    """Seen under Xvfb: the old plots stayed drawn over the new one, and the header, progress bar, readout and
    replay row still spoke of the last run."""
    load(qtbot, window, "lstm_encoder_decoder")
    window.monitor.epochs.setValue(1)
    window.train_action.trigger()
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=120_000)
    qtbot.waitUntil(lambda: "free_running_accuracy" in window.monitor.plots, timeout=5_000)
    old = window.monitor.plots["free_running_accuracy"].container
    assert window.viewer.replay_steps  # the run's end left a checkpoint
    load(qtbot, window, "gru_many_to_one")
    assert not shiboken6.isValid(old) or not old.isVisible()  # gone from the screen
    assert list(window.monitor.plots) == ["loss"]
    assert window.monitor.readout.text() == "Not trained yet."
    assert window.progress.format() == "not trained yet" and window.progress.value() == 0
    assert window.viewer.replay_steps == () and window.viewer.replay_label.text() == "live (no checkpoints)"
    qtbot.waitUntil(lambda: SequenceOutputFrame in window.viewer.frames, timeout=10_000)
    assert window.viewer.frames[SequenceOutputFrame].step == 0  # fresh weights, not "model at step 107"
    assert "model at step 0" in window.viewer.caption.text()


def test_self_test_on_the_command_line_names_an_unknown_preset():
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--self-test", "nosuch"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1]
        == "self-test failed: unknown preset 'nosuch' (see 'python main.py presets')"
    )


@pytest.mark.slow
@pytest.mark.parametrize("preset", list(PRESETS))
def test_self_test_passes_for_every_preset(qtbot, settings, tmp_path, preset, capsys):
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    assert run_self_test(qtbot_app(), window, preset, tmp_path) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.startswith(f"self-test passed: {preset} ")
    exported = sorted(path.name for path in tmp_path.glob("*.png"))
    assert f"{preset}-gradients-after.png" in exported and f"{preset}-histograms-while.png" in exported


def qtbot_app():
    from PySide6.QtWidgets import QApplication

    return QApplication.instance()


def test_after_an_unexpected_error_a_run_in_progress_is_checkpointed(qtbot, window):
    window.monitor.epochs.setValue(1)
    window.monitor.batch_size.setValue(8)  # thousands of batches: no epoch ends (and checkpoints) on its own
    window.train_action.trigger()
    qtbot.waitUntil(lambda: window.progress.value() >= 5, timeout=30_000)
    assert window.viewer.replay_steps == ()
    window.rescue_run()  # what the excepthook calls before its dialog
    qtbot.waitUntil(lambda: len(window.viewer.replay_steps) == 1, timeout=10_000)
    assert window.viewer.replay_steps[0] >= 5
    window.stop_action.trigger()


def test_the_gates_view_shows_a_bidirectional_lstm_inside_and_sorts_its_units(qtbot, window):
    from lumen.engine.probes.gates import GateFrame

    load(qtbot, window, "bilstm_many_to_many")
    view = window.viewer.views[GateFrame]
    window.viewer.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.frame is not None and view.frame.layer == "lstm1.rnn", timeout=10_000)
    frame = view.frame
    assert view.gate.currentData() == "f" and view.plots[1].isVisible()  # the forget gate, both directions
    forward = view.images[0].image
    assert forward.shape == frame.maps["l0.fwd.f"].T.shape  # units × time
    np.testing.assert_array_equal(forward, frame.maps["l0.fwd.f"].T)
    view.show_value_at(3, 5, "bwd")
    assert view.hover.text() == f"bwd unit 3, step 5 ({frame.steps[5]!r}): {frame.maps['l0.bwd.f'][5, 3]:.4f}"
    view.gate.setCurrentIndex(view.gate.findData("c"))
    view.gate.activated.emit(view.gate.currentIndex())
    low, high = view.bar.levels()
    assert low == -high and high >= np.abs(frame.maps["l0.fwd.c"]).max()  # a state: symmetric about zero
    assert frame.gradients is not None and frame.gradients.shape == (len(frame.steps), 1, 2)
    view.sort.setCurrentIndex(view.sort.findData("saturation"))
    view.sort.activated.emit(view.sort.currentIndex())  # the probe's settings: its next frame sorts the units
    qtbot.waitUntil(lambda: view.frame.settings.sort == "saturation", timeout=10_000)
    order = view.frame.order["l0.fwd.c"]
    np.testing.assert_array_equal(view.heatmap("fwd"), view.frame.maps["l0.fwd.c"].T[order])
