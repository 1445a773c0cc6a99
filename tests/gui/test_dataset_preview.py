"""Every dataset shows a preview before training: the worker makes it when it loads the data (off the GUI
thread) and the monitor draws it beside its Data choice — images as a grid, sequences as curves or token rows."""

import numpy as np
import pytest

from lumen.engine.data.datasets import load_dataset
from lumen.engine.data.preview import CURVES, IMAGES, TOKENS, DatasetPreview, dataset_preview
from lumen.gui.panes.monitor import MonitorPane


@pytest.fixture
def monitor(qtbot):
    pane = MonitorPane()
    qtbot.addWidget(pane)
    return pane


@pytest.mark.parametrize(
    ("name", "kind"),
    [("mnist", IMAGES), ("shapes", IMAGES), ("sine", CURVES), ("adding", CURVES), ("recall", TOKENS),
     ("copy", TOKENS), ("brackets", TOKENS), ("text", TOKENS)],
)  # fmt: skip
def test_each_dataset_is_drawn_the_way_its_kind_needs(monitor, name, kind):
    preview = dataset_preview(load_dataset(name))
    assert preview.kind == kind and preview.name == name
    assert monitor.hosts(DatasetPreview)
    monitor.show_frame(preview)
    widget = monitor.data_preview
    assert widget.stack.currentWidget() is widget.pages[kind]
    assert name in widget.caption.text()
    if kind == IMAGES:
        assert widget.image.image.shape == preview.array.shape
        assert widget.image.levels is not None and tuple(widget.image.levels) == (0.0, 1.0)
    elif kind == CURVES:
        drawn = [c for c in widget.curves if c.xData is not None and len(c.xData)]
        assert len(drawn) == 4
        np.testing.assert_allclose(drawn[0].yData, preview.array[0, :, 0])
    else:
        assert widget.rows.text().splitlines()[0].startswith(preview.rows[0][:20])


def test_recall_rows_show_the_letters_the_query_and_the_answer(monitor):
    preview = dataset_preview(load_dataset("recall", steps=12))
    row, label = preview.rows[0], preview.labels[0]
    assert len(row) == 12 and row[-1] == "?" and row[0] == label and set(row[:-1]) <= set("ABCDEFGH")
    monitor.show_frame(preview)
    assert monitor.data_preview.rows.text().splitlines()[0] == f"{row}  → {label}"


def test_the_window_shows_the_data_before_training_and_again_when_the_data_changes(qtbot, window):
    widget = window.monitor.data_preview
    qtbot.waitUntil(lambda: widget.preview is not None and widget.preview.name == "mnist", timeout=30_000)
    assert widget.stack.currentWidget() is widget.image_view
    window.monitor.dataset.setCurrentText("shapes")  # LeNet-5 is refitted to the shapes; their preview comes
    qtbot.waitUntil(lambda: widget.preview.name == "shapes", timeout=30_000)
    assert widget.image.image.ndim == 3  # RGB
