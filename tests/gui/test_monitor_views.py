"""The monitor's plots area: log toggles, decimated curves, the gradient-norm and histogram views it hosts, the
runs list with overlay and export, ETA; closing the window mid-run leaves the run store consistent."""

import time

import numpy as np
import pytest

from lumen.engine.events import EpochMetrics, RunState, StepMetrics
from lumen.engine.io.store import RunStore
from lumen.engine.probes.gradients import GradientNormFrame
from lumen.engine.probes.histograms import HistogramFrame
from lumen.gui.panes.monitor import MonitorPane
from lumen.gui.widgets.decimate import CAPACITY
from lumen.gui.widgets.eta import Eta


@pytest.fixture
def monitor(qtbot):
    pane = MonitorPane()
    qtbot.addWidget(pane)
    return pane


def test_each_plot_has_a_log_toggle(monitor):
    monitor.add_metrics([StepMetrics(1, 10, 1, {"loss": 2.0, "accuracy": 0.1}, 10.0)])
    loss, accuracy = monitor.plots["loss"], monitor.plots["accuracy"]
    loss.log.setChecked(True)
    assert loss.widget.getPlotItem().ctrl.logYCheck.isChecked()
    assert not accuracy.widget.getPlotItem().ctrl.logYCheck.isChecked()  # one plot at a time
    accuracy.set_log(True)
    assert accuracy.log.isChecked() and accuracy.widget.getViewBox().autoRangeEnabled()[1]
    accuracy.set_log(False)
    assert accuracy.widget.getViewBox().viewRange()[1] == pytest.approx([-0.02, 1.02])  # its fixed range again


def test_a_million_steps_are_drawn_from_a_bounded_number_of_points(monitor):
    plot = monitor.plots["loss"]
    events = [StepMetrics(i, 1_000_000, 1, {"loss": 1.0 + (i % 7)}, 1.0) for i in range(1, 1_000_001)]
    for start in range(0, len(events), 100_000):
        monitor.add_metrics(events[start : start + 100_000])
    began = time.perf_counter()
    monitor.redraw()
    spent = time.perf_counter() - began
    assert plot.steps == 1_000_000
    assert len(plot.batch.xData) <= 2 * CAPACITY and plot.batch.yData.max() == 7.0 and plot.batch.yData.min() == 1.0
    assert plot.batch.xData[0] == 1 and plot.batch.xData[-1] == 1_000_000
    assert spent < 0.5  # the same work as at step 8,000


def test_epochs_show_training_mean_beside_validation(monitor):
    monitor.add_metrics([StepMetrics(1, 10, 1, {"loss": 1.0}, 1.0)])
    monitor.add_metrics([EpochMetrics(1, 5, {"loss": 0.8}, {"loss": 0.7})])
    monitor.redraw()
    loss = monitor.plots["loss"]
    assert list(loss.train.yData) == [0.8] and list(loss.val.yData) == [0.7]


def test_eta_from_recent_steps():
    now = [0.0]
    eta = Eta(clock=lambda: now[0])
    assert eta.update(0, 100) == ""
    now[0] = 10.0
    assert eta.update(50, 100, samples_per_step=64) == "ETA 0:10 · 320 samples/s"
    now[0] = 11.0
    assert eta.update(1, 100) == ""  # a new run starts over


def _train(qtbot, window, steps_at_least):
    window.monitor.epochs.setValue(3)
    window.train_action.trigger()
    curve = window.monitor.plots["loss"].batch
    qtbot.waitUntil(lambda: curve.xData is not None and len(curve.xData) >= steps_at_least, timeout=60_000)


@pytest.mark.slow
def test_gradient_bars_histograms_runs_list_and_export_while_lenet_trains(qtbot, window, tmp_path):
    _train(qtbot, window, 3)
    grads = window.monitor.views[GradientNormFrame]
    qtbot.waitUntil(lambda: grads.frame is not None and grads.frame.step > 0, timeout=30_000)
    heights = grads.bar_heights()
    assert grads.frame.layers == ("conv1", "conv2", "fc1", "fc2", "fc3")
    assert len(heights) == 5 and (heights > 0).all()
    assert grads.bars_plot.getPlotItem().ctrl.logYCheck.isChecked()  # a log axis
    assert "first/last-layer gradient ratio" in grads.ratio.text()
    histograms = window.monitor.views[HistogramFrame]
    qtbot.waitUntil(lambda: histograms.frame is not None, timeout=30_000)
    assert histograms.strip("weights", "conv1") is not None and histograms.strip("activations", "conv1") is not None
    assert not window.viewer.views.get(GradientNormFrame)  # the viewer does not host them
    qtbot.waitUntil(lambda: "ETA" in window.progress.format(), timeout=30_000)  # once the rate is known

    window.stop_action.trigger()
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=30_000)
    runs = window.monitor.runs
    window.monitor.tabs.setCurrentWidget(runs)
    qtbot.waitUntil(lambda: len(runs.rows) == 1 and runs.rows[0].status == "stopped", timeout=10_000)
    run_id = runs.rows[0].id
    assert window.bridge.worker.run_id == run_id
    runs.set_compared({run_id})
    overlay = window.monitor.overlays[(run_id, "loss")]
    assert len(overlay.xData) == runs.rows[0].step and np.isfinite(overlay.yData).all()
    written = runs.export_plots(tmp_path / "curves.png", ".png")
    assert [p.name for p in written] == ["curves-loss.png", "curves-accuracy.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
    svg = runs.export_plots(tmp_path / "curves", ".svg")
    assert svg[0].read_text().lstrip().startswith("<?xml") and "<svg" in svg[0].read_text()
    csv = runs.store().export_csv(run_id, tmp_path / "m.csv").read_text().splitlines()
    assert csv[0] == "phase,step,epoch,loss,accuracy"
    assert sum(line.startswith("step,") for line in csv) == runs.rows[0].step  # (and a row per phase per epoch)
    runs.set_compared(set())
    assert not window.monitor.overlays


@pytest.mark.slow
def test_checkpoint_now_and_closing_mid_run_leave_the_store_consistent(qtbot, settings, lumen_data_dir):
    from lumen.gui.main_window import MainWindow

    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.viewer.frame is not None, timeout=30_000)
    _train(qtbot, window, 2)
    assert window.monitor.checkpoint.isEnabled()
    window.monitor.checkpoint.click()
    qtbot.waitUntil(lambda: "checkpoint at step" in window.status_label.text(), timeout=30_000)
    run_id = window.bridge.worker.run_id
    began = time.monotonic()
    window.close()
    assert time.monotonic() - began < 2.0
    assert not window.bridge.worker.alive
    with RunStore(lumen_data_dir) as store:
        run = store.run(run_id)
        steps, _ = store.metric(run_id, "loss")
        assert run.status == "stopped" and "closed" in run.message
        assert steps == list(range(1, run.step + 1))  # every step up to the last one, each once
        assert list((lumen_data_dir / "runs" / run_id / "checkpoints").glob("step-*.safetensors"))


def test_gradient_history_keeps_its_lines_when_the_last_step_is_drawn_again(qtbot):
    """A run's end forces every probe once more, at the same step: the lines over time must stay."""
    from lumen.gui.views.gradients import GradientNormView

    view = GradientNormView()
    qtbot.addWidget(view)
    layers = ("conv1", "fc1")

    def frame(step: int, first: float) -> GradientNormFrame:
        return GradientNormFrame(step, layers, np.array([first, 1.0]), np.ones(2), first)

    for step in range(1, 4):
        view.show_frame(frame(step, 0.1 * step))
    assert view.lines["conv1"].getOriginalDataset()[0] is None  # hidden: the history grows but is not drawn
    view.show()
    qtbot.waitExposed(view)
    assert list(view.lines["conv1"].getOriginalDataset()[0]) == [1, 2, 3]  # drawn once shown
    for step in range(4, 11):
        view.show_frame(frame(step, 0.1 * step))
    view.show_frame(frame(10, 0.5))  # the forced refresh after Stop
    steps, norms = view.lines["conv1"].getOriginalDataset()
    assert list(steps) == list(range(1, 11))
    assert norms[-1] == 0.5  # the refresh replaced the last point
    view.show_frame(frame(1, 0.2))  # a new run starts again at step 1
    steps, _ = view.lines["conv1"].getOriginalDataset()
    assert list(steps) == [1]


def test_gradient_history_y_range_covers_the_whole_history_not_just_the_newest_bars(qtbot):
    from lumen.gui.views.gradients import GradientNormView

    view = GradientNormView()
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    for step in range(1, 21):  # norms that fall from 100 to 1: the newest bars alone would span only 0.1 to 1
        norms = np.array([100.0 / step**1.5, 1.0])
        view.show_frame(GradientNormFrame(step, ("conv1", "fc1"), norms, np.ones(2), norms[0]))
    low, high = view.history_plot.getViewBox().viewRange()[1]  # log mode: decades
    assert low <= np.log10(100.0 / 20**1.5) and high >= 2.0


def test_a_store_locked_after_the_runs_list_opened_it_is_one_message_not_an_exception(qtbot, tmp_path):
    import sqlite3

    from lumen.engine.io.store import DB_FILE
    from lumen.gui.panes.monitor_runs import RunsPanel

    folder = tmp_path / "data"
    with RunStore(folder) as store:
        run_id = store.new_run("lenet5", "mnist", "classification", 10).id
    panel = RunsPanel(store=lambda: RunStore(folder))
    qtbot.addWidget(panel)
    panel.refresh()
    assert [row.id for row in panel.rows] == [run_id]
    other = sqlite3.connect(folder / DB_FILE, isolation_level=None)
    other.execute("UPDATE runs SET pid = 999999999")  # its process is gone: refreshing marks it interrupted...
    other.execute("BEGIN EXCLUSIVE")  # ...which another process's lock now stops
    try:
        panel.refresh()  # raised out of a timer's slot before
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert "is locked by another process" in panel.message.text()
    assert not panel._timer.isActive()


def test_gradient_history_ends_at_the_runs_last_step_and_names_layers_outside_the_plot(qtbot):
    """Seen under Xvfb: the x-axis ran to 500 for a 355-step run, and the legend covered the lines."""
    from lumen.gui.views.gradients import GradientNormView

    view = GradientNormView()
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    layers = ("conv1", "fc1")
    view.set_run_length(355)
    for step in range(1, 40):
        view.show_frame(GradientNormFrame(step, layers, np.array([0.1, 1.0]), np.ones(2), 0.1))
    (left, right), _ = view.history_plot.getViewBox().viewRange()
    assert left <= 1 and right == pytest.approx(355, rel=0.02)
    assert view.history_plot.getPlotItem().legend is None
    assert "conv1" in view.legend.text() and "fc1" in view.legend.text()


def test_another_model_starts_the_gradient_and_histogram_views_empty(qtbot, window):
    """A layer of the same name in the next model is another layer: its history must not carry on."""
    window.monitor.epochs.setValue(1)
    window.monitor.batch_size.setValue(256)
    window.train_action.trigger()
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=60_000)
    gradients = window.monitor.views[GradientNormFrame]
    histograms = window.monitor.views[HistogramFrame]
    qtbot.waitUntil(lambda: gradients.frame is not None and bool(histograms.strips), timeout=10_000)
    window.builder.load_preset("alexnet_small")  # conv1 again, and other layers
    qtbot.waitUntil(lambda: window.viewer.info.name.startswith("AlexNet"), timeout=30_000)
    assert gradients.frame is None and len(gradients.bar_heights()) == 0 and gradients.lines == {}
    assert all(strip.count <= 1 for strip in histograms.strips.values())  # at most the new model's first frame
