"""The monitor draws whatever metric names arrive; LeNet's two plots keep their look and their speed-ups."""

import pyqtgraph as pg
import pytest

from lumen.engine.events import EpochMetrics, ModelInfo, ModelLoaded, StepMetrics
from lumen.engine.probes.gradients import GradientNormFrame
from lumen.gui.panes.monitor import SHOWN_BEFORE_TRAINING, MonitorPane


@pytest.fixture
def monitor(qtbot):
    pane = MonitorPane()
    qtbot.addWidget(pane)
    return pane


def loaded(objective: str, loss_name: str, *frame_types) -> ModelLoaded:
    info = ModelInfo("m", "cnn", (1, 28, 28), frozenset({"conv2d"}), "mnist", "classification", objective, loss_name)
    return ModelLoaded(info, frozenset(frame_types))


def test_before_training_it_shows_the_loss_titled_with_what_the_objective_minimises(monitor):
    assert list(monitor.plots) == list(SHOWN_BEFORE_TRAINING) == ["loss"]
    monitor.model_loaded(loaded("autoencoder", "negative ELBO: reconstruction + KL"))
    assert list(monitor.plots) == ["loss"]  # no empty accuracy plot for a model that reports none
    assert monitor.plots["loss"].widget.getPlotItem().titleLabel.text == "Loss (negative ELBO: reconstruction + KL)"
    monitor.model_loaded(loaded("classification", "cross-entropy", GradientNormFrame))
    monitor.add_metrics([StepMetrics(1, 10, 1, {"loss": 2.0, "accuracy": 0.1}, 10.0)])
    loss, accuracy = monitor.plots["loss"], monitor.plots["accuracy"]
    assert loss.widget.getPlotItem().titleLabel.text == "Loss (cross-entropy)"
    assert accuracy.widget.getPlotItem().titleLabel.text == "Accuracy"
    assert accuracy.widget.getViewBox().viewRange()[1] == pytest.approx([-0.02, 1.02])
    assert accuracy.widget.getViewBox().linkedView(0) is loss.widget.getViewBox()
    for plot in (loss, accuracy):
        assert plot.widget.getPlotItem().legend is None  # one legend above the plots, none covering curves
        assert plot.container.minimumHeight() >= 150
        for curve in (plot.batch, plot.smooth):
            assert curve.opts["skipFiniteCheck"] and curve.opts["autoDownsample"] and curve.opts["clipToView"]
    tabs = monitor.tabs
    shown = [tabs.tabText(i) for i in range(tabs.count()) if tabs.isTabVisible(i)]
    assert shown == ["Gradients", "Runs"]  # only the views whose probes apply (here: gradient norms)


def test_a_new_metric_name_gets_a_plot_of_its_own(qtbot, monitor):
    steps = [
        StepMetrics(i, 40, 1, {"loss": 1.0 / i, "reconstruction": 0.5 / i, "kl": 0.1 * i}, 100.0) for i in range(1, 21)
    ]
    monitor.add_metrics(steps)
    monitor.add_metrics([EpochMetrics(1, 20, {"loss": 0.3, "kl": 1.0}, {"loss": 0.25, "kl": 1.5})])
    assert list(monitor.plots) == ["loss", "reconstruction", "kl"]  # only what the objective reports
    kl = monitor.plots["kl"]
    assert kl.widget.getPlotItem().titleLabel.text == "KL divergence"
    assert kl.widget.isVisibleTo(monitor) and monitor.curves_layout.indexOf(kl.container) > 0
    assert kl.widget.getViewBox().linkedView(0) is monitor.plots["loss"].widget.getViewBox()  # one step axis
    qtbot.waitUntil(lambda: kl.batch.xData is not None and len(kl.batch.xData) == 20, timeout=2_000)
    assert list(kl.batch.yData) == pytest.approx([0.1 * i for i in range(1, 21)])
    assert list(kl.val.xData) == [20] and list(kl.val.yData) == [1.5]
    assert kl.batch.opts["skipFiniteCheck"] and kl.batch.opts["clipToView"]
    assert monitor.plots["loss"].widget.getViewBox().viewRange()[0][1] == pytest.approx(41.2, rel=0.01)
    assert "validation loss <b>0.250</b>, kl 1.500<br>training loss 0.300, kl 1.000" in monitor.readout.text()

    monitor.clear()  # the next run (maybe another model) starts from the loss plot alone
    assert list(monitor.plots) == ["loss"] and monitor.curves_layout.indexOf(kl.container) == -1


def test_lenet_readout_reads_as_before(monitor):
    monitor.add_metrics([StepMetrics(1, 71, 1, {"loss": 2.3, "accuracy": 0.1}, 100.0)])
    assert monitor.readout.text() == "Epoch 1, step 1: batch loss 2.300"
    monitor.add_metrics([EpochMetrics(1, 71, {"loss": 0.5, "accuracy": 0.8}, {"loss": 0.4, "accuracy": 0.875})])
    assert monitor.readout.text() == (
        "Epoch 1: validation accuracy <b>87.5%</b>, loss 0.400<br>training accuracy 80.0%, loss 0.500"
    )


def test_curves_are_redrawn_when_new_steps_reach_the_next_pixel_column_or_after_a_second(qtbot, monitor):
    monitor.resize(900, 700)
    monitor.show()
    qtbot.waitExposed(monitor)
    batch = monitor.plots["loss"].batch

    def drawn():
        x, _ = batch.getOriginalDataset()
        return 0 if x is None else len(x)

    def steps(first, last, total):
        return [StepMetrics(i, total, 1, {"loss": 1.0 / i, "accuracy": 0.5}, 100.0) for i in range(first, last + 1)]

    monitor.add_metrics(steps(1, 5, 1_000_000))  # a million steps across a few hundred pixels
    qtbot.waitUntil(lambda: drawn() == 5, timeout=3_000)  # the first draw: nothing was drawn for a second
    monitor.add_metrics(steps(6, 10, 1_000_000))
    qtbot.wait(500)  # 5 steps are far less than a pixel column: not redrawn yet...
    assert drawn() == 5
    qtbot.waitUntil(lambda: drawn() == 10, timeout=2_000)  # ...until a second has passed
    monitor.add_metrics([EpochMetrics(1, 10, {"loss": 0.3}, {"loss": 0.25})])
    qtbot.wait(300)  # an epoch's points are drawn at the next tick
    assert list(monitor.plots["loss"].val.getOriginalDataset()[1]) == [0.25]

    monitor.clear()
    monitor.add_metrics(steps(1, 5, 20))  # a short run: a step is many pixels wide, drawn at the next tick
    qtbot.wait(300)
    assert drawn() == 5


def test_epoch_means_are_drawn_above_validation_points_where_they_overlap(qtbot, monitor):
    from lumen.gui.panes.monitor import SMOOTH_PEN, VAL_PEN

    monitor.resize(700, 500)
    monitor.show()
    monitor.add_metrics([StepMetrics(i, 40, 1, {"loss": 1.0}, 100.0) for i in range(1, 41)])
    monitor.add_metrics([EpochMetrics(e, 20 * e, {"loss": 0.5}, {"loss": 0.5}) for e in (1, 2)])  # the same values
    plot = monitor.plots["loss"]
    qtbot.waitUntil(lambda: plot.train.xData is not None and len(plot.train.xData) == 2, timeout=2_000)
    assert plot.train.zValue() > plot.val.zValue()
    qtbot.wait(50)
    picture = plot.widget.grab().toImage()
    centre = plot.widget.mapFromScene(plot.widget.getViewBox().mapViewToScene(pg.Point(20, 0.5)))
    near = [picture.pixelColor(centre.x() + dx, centre.y() + dy) for dx in range(-1, 2) for dy in range(-1, 2)]

    def closer_to(colour, a, b):
        def distance(c):
            return sum((x - y) ** 2 for x, y in zip(colour.getRgb()[:3], c.getRgb()[:3]))

        return distance(a) < distance(b)

    square, circle = SMOOTH_PEN.color(), VAL_PEN.color()
    assert all(closer_to(colour, square, circle) for colour in near)  # the training square shows, on top
