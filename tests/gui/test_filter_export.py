"""The filters view exports the layer's raw weights (every kernel, as the layer holds them) beside its picture."""

import numpy as np
import torch

from lumen.engine.explain.filters import filter_image
from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
from lumen.engine.probes.filters import FilterFrame
from lumen.gui.views.filters import FilterView

PNG = b"\x89PNG\r\n\x1a\n"


def shown_filters(qtbot, node: str, **options):
    model = build_model(get_preset("lenet5"))
    view = FilterView()
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.show()
    view.show_frame(FilterFrame(3, filter_image(model, node, **options), ("conv1", "conv2")))
    return view, dict(model.named_modules())[node].weight.detach().numpy()


def test_export_writes_the_picture_and_the_raw_weights(qtbot, tmp_path, monkeypatch):
    view, weights = shown_filters(qtbot, "conv2", max_in=4)  # the picture holds 16×4 kernels of the 16×6
    monkeypatch.setattr(
        "lumen.gui.widgets.export.QFileDialog.getSaveFileName", lambda *a, **k: (str(tmp_path / "conv2.png"), "")
    )
    png, npy, both = view.export.menu().actions()
    assert npy.text() == "Weights (.npy)…" and both.text() == "Picture and weights (PNG + .npy)…"
    both.trigger()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conv2.npy", "conv2.png"]  # no temporary files left
    assert (tmp_path / "conv2.png").read_bytes()[:8] == PNG
    saved = np.load(tmp_path / "conv2.npy")
    assert saved.shape == (16, 6, 5, 5) and saved.dtype == np.float32  # every kernel, not the 16×4 drawn
    np.testing.assert_array_equal(saved, weights)


def test_the_weights_alone(qtbot, tmp_path, monkeypatch):
    view, weights = shown_filters(qtbot, "conv1")
    monkeypatch.setattr(
        "lumen.gui.widgets.export.QFileDialog.getSaveFileName", lambda *a, **k: (str(tmp_path / "w.npy"), "")
    )
    view.export.menu().actions()[1].trigger()
    np.testing.assert_array_equal(np.load(tmp_path / "w.npy"), weights)
    assert view.export_name() == "filters-conv1"


def test_the_exported_weights_are_those_of_the_frame_not_of_the_training_model():
    model = build_model(get_preset("lenet5"))
    image = filter_image(model, "conv1")
    before = image.weights.copy()
    with torch.no_grad():
        model.conv1.weight.add_(1.0)  # training moves the parameter in place after the frame was built
    np.testing.assert_array_equal(image.weights, before)
