"""The Boltzmann view in the real window: an RBM's filters, inputs above their reconstructions, the chain's
samples and its energy drawn from the frame; the Gibbs-steps box and the start reconfigure the probe."""

import numpy as np

from lumen.engine.probes.boltzmann import BoltzmannFrame
from tests.support import load_preset


def load(qtbot, window, preset):
    return load_preset(qtbot, window, preset, BoltzmannFrame, ready=lambda frame: frame.layer != "")


def test_an_rbm_is_drawn_and_the_steps_box_reconfigures_the_probe(qtbot, window):
    viewer = window.viewer
    view = load(qtbot, window, "rbm")
    tabs = viewer.tabs
    assert tabs.isTabVisible(tabs.indexOf(view)) and view.isVisible() and not viewer.not_yet.isVisible()
    frame = view.frame
    assert frame.layer == "rbm1" and frame.settings.steps == 50 and view.steps.value() == 50
    assert "<b>rbm1</b> of the RBM" in viewer.caption.text()
    shown = view.reconstructions.image.image
    np.testing.assert_array_equal(shown[:28, :28], frame.inputs[0])  # top left: the first input …
    np.testing.assert_array_equal(shown[29:57, :28], frame.reconstructions[0])  # … with its reconstruction below
    filters = view.filters.image.image
    reach = np.abs(frame.filters[0]).max()
    np.testing.assert_allclose(filters[:28, :28], frame.filters[0] / reach, rtol=1e-6)  # each to its own |w|
    x, y = view.energy_line.getData()
    np.testing.assert_allclose(y, frame.energy.mean(axis=1), rtol=1e-6)
    assert list(x) == list(range(1, 51))
    assert view.data_line.value() == frame.validation_free_energy and "validation samples" in view.readout.text()
    samples = view.samples.image.image
    assert samples.shape[1] == max(len(frame.snapshots), 8) * 29 - 1  # a strip of one chain over the full width

    view.steps.setValue(7)
    qtbot.waitUntil(lambda: view.frame.settings.steps == 7, timeout=10_000)
    assert view.frame.energy.shape[0] == 7 and len(view.energy_line.getData()[1]) == 7
    assert "after 7 steps" in view.samples.title.text
    view.start.setCurrentIndex(view.start.findData("noise"))
    view.start.activated.emit(view.start.currentIndex())
    qtbot.waitUntil(lambda: view.frame.settings.start == "noise", timeout=10_000)
    assert view.frame.settings.steps == 7 and "from random noise" in view.samples.title.text


def test_a_dbns_upper_layer_can_be_picked(qtbot, window):
    view = load(qtbot, window, "dbn")
    assert [view.layer.itemText(i) for i in range(view.layer.count())] == ["rbm1", "rbm2"]
    view.layer.setCurrentText("rbm2")
    view.layer.activated.emit(1)
    qtbot.waitUntil(lambda: view.frame.layer == "rbm2", timeout=10_000)
    assert "16×16 tile" in view.filters.title.text and view.reconstructions.image.image.shape[1] == 8 * 29 - 1
