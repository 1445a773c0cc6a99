"""An ONNX file dropped on the window opens in the builder with its weights; Train fine-tunes them."""

import torch
from torch import nn

from lumen.engine.events import RunState
from lumen.gui.panes.builder.canvas import EdgeItem
from tests.support import click, drop


class Small(nn.Module):
    """A plain PyTorch model with one op Lumen has no layer for (erf)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.erf(self.conv2(x))
        return self.fc(x.mean((2, 3)))


def test_dropping_an_onnx_file_opens_it_with_its_weights_and_train_fine_tunes(qtbot, window, tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "small.onnx"
    torch.onnx.export(
        Small().eval(),
        (torch.rand(1, 3, 64, 64),),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
    )
    drop(window, path)
    qtbot.waitUntil(lambda: window.viewer.info is not None and window.viewer.info.name == "small", timeout=30_000)
    spec = window.builder.doc.spec
    assert [n.type for n in spec.nodes][:3] == ["input", "conv2d", "relu"]
    assert "opaque ONNX ops" in window.builder.problem.text() and "Erf ×1" in window.builder.problem.text()
    edges = [item for item in window.builder.scene.items() if isinstance(item, EdgeItem)]
    assert len(edges) == len(spec.edges) and all(edge.label for edge in edges)  # a shape on every edge
    qtbot.waitUntil(lambda: "weights from small.onnx" in window.status_label.text(), timeout=30_000)
    assert window.opened_model is not None and window.opened_model.opaque == {"Erf": 1}

    window.monitor.epochs.setValue(1)
    click(qtbot, window, window.train_action)
    qtbot.waitUntil(lambda: window.state is RunState.TRAINING, timeout=30_000)
    click(qtbot, window, window.stop_action)
    qtbot.waitUntil(lambda: window.state is not RunState.TRAINING, timeout=30_000)
