"""The gates view in the real window, on what a user feeds it: typed text for a character model, a CSV file
dropped on the viewer for a model of values."""

import numpy as np
from PySide6.QtCore import Qt

from lumen.engine.probes.gates import GateFrame
from tests.support import drop, load_preset


def load(qtbot, window, preset, dataset=None):
    return load_preset(qtbot, window, preset, GateFrame, dataset, ready=lambda frame: frame.layer != "")


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
    drop(viewer, path)
    qtbot.waitUntil(lambda: view.frame.source == "ramp.csv (23 steps)", timeout=10_000)
    assert view.images[0].image.shape[1] == 23
    wide = tmp_path / "wide.csv"
    wide.write_text("1,2\n3,4\n")
    drop(viewer, wide)
    qtbot.waitUntil(lambda: "wide.csv has 2 columns" in viewer.message.text(), timeout=10_000)
    assert view.frame.source == "ramp.csv (23 steps)"


def test_units_sorted_by_bracket_depth_clicked_over_time_and_a_span_selected(qtbot, window):
    view = load(qtbot, window, "bilstm_many_to_many")  # brackets
    view.sort.setCurrentIndex(view.sort.findData("signal"))
    view.sort.activated.emit(view.sort.currentIndex())
    qtbot.waitUntil(lambda: view.frame.settings.sort == "signal" and view.signal.count() > 0, timeout=10_000)
    assert view.signal.isVisible() and "bracket depth" in view.frame.signals
    view.signal.setCurrentText("bracket depth")
    view.signal.activated.emit(view.signal.currentIndex())
    qtbot.waitUntil(lambda: view.frame.settings.signal == "bracket depth", timeout=10_000)
    frame = view.frame
    r = frame.correlation["l0.fwd.f"]
    order = frame.order["l0.fwd.f"]
    assert list(np.abs(r[order])) == sorted(np.abs(r), reverse=True)  # rows: the most correlated first
    np.testing.assert_array_equal(view.heatmap("fwd"), frame.maps["l0.fwd.f"].T[order])
    view.show_value_at(0, 2, "fwd")
    assert f"unit {order[0]}, step 2" in view.hover.text() and f"r = {r[order[0]]:+.3f} with bracket depth" in (
        view.hover.text()
    )

    view.toggle_unit("fwd", int(order[0]))  # what a click on the top row does
    lines = view.unit_plot.getPlotItem().listDataItems()
    assert len(lines) == 2  # the unit and the depth, scaled
    np.testing.assert_allclose(lines[0].yData, frame.maps["l0.fwd.f"][:, order[0]])
    depth = np.corrcoef(lines[1].yData, frame.signal)[0, 1]
    assert depth > 0.999  # the same shape as the signal

    view.select.setChecked(True)
    qtbot.waitUntil(lambda: view.frame.selected is not None, timeout=10_000)
    chosen = view.frame.selected
    assert chosen.map == "l0.fwd.f" and f"steps {chosen.start}–{chosen.end}" in view.selection.text()
    # One step and a threshold that a unit passes there and stays below elsewhere on average: its most distinct.
    gate = view.frame.maps["l0.fwd.f"]
    elsewhere = (gate.sum(0) - gate) / (len(gate) - 1)  # each step's value against the mean of the other steps
    step, unit = np.unravel_index(np.argmax(gate - elsewhere), gate.shape)
    assert gate[step, unit] - elsewhere[step, unit] > 0.002  # a gap the box's three decimals can sit in
    view.threshold.setValue(round(float(gate[step, unit] + elsewhere[step, unit]) / 2, 3))
    view.span.setRegion((int(step), int(step) + 1))
    view.span.sigRegionChangeFinished.emit(view.span)  # where a drag of the band ends
    qtbot.waitUntil(lambda: unit in view.frame.selected.units, timeout=10_000)
    chosen = view.frame.selected
    assert view.matches.count() == len(chosen.matches) > 0  # the probe input is validation sequence #0 itself
    view.matches.itemDoubleClicked.emit(view.matches.item(len(chosen.matches) - 1))
    wanted = f"validation sequence #{chosen.matches[-1].sample}"
    qtbot.waitUntil(lambda: view.frame.source == wanted, timeout=10_000)


def test_a_kept_gradient_curve_stays_when_another_model_is_loaded(qtbot, window):
    view = load(qtbot, window, "rnn_many_to_one")
    qtbot.waitUntil(lambda: view.frame.gradients is not None, timeout=10_000)
    view.keep_curve()
    assert len(view.kept) == 1 and "RNN" in view.kept[0][0]
    view = load(qtbot, window, "lstm_many_to_one")
    qtbot.waitUntil(lambda: view.frame.kind == "lstm" and view.frame.gradients is not None, timeout=10_000)
    assert len(view.kept) == 1 and view.kept_lines[0] in view.gradient_plot.getPlotItem().listDataItems()
    assert "RNN" in view.gradient_legend.text() and "layer 0 fwd" in view.gradient_legend.text()
    view.clear_kept()
    assert view.kept == [] and "RNN" not in view.gradient_legend.text()
