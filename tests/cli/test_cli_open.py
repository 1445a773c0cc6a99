"""``lumen open``: an ONNX file or a user's module into a run folder that the other commands read."""

import torch
from torch import nn

from tests.support import lumen, one_line_error

NET = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.fc(x.view(x.size(0), -1))

class Odd(Net):
    def forward(self, x):
        return self.fc(torch.erf(self.conv(x)).flatten(1))
"""


def test_open_a_python_module_traced_and_one_with_an_opaque_op(tmp_path):
    (tmp_path / "my_net.py").write_text(NET)
    weights = tmp_path / "w.pt"
    torch.manual_seed(0)
    net = nn.Module()
    net.conv, net.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(256, 3)
    torch.save(net.state_dict(), weights)
    result = lumen(
        "open", f"{tmp_path}/my_net.py:Net", "--input", "1,1,8,8", "--weights", weights, "--out", tmp_path / "run"
    )
    assert result.returncode == 0, result.stderr
    assert "Net: 4 layers, 811 parameters, input 1×8×8" in result.stdout
    from lumen.engine.io.runs import open_run

    model = open_run(tmp_path / "run")
    assert torch.equal(model.state_dict()["conv.weight"], net.state_dict()["conv.weight"])
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        expected = net.fc(torch.relu(net.conv(x)).flatten(1))
        assert torch.allclose(model.eval()(x), expected, atol=1e-6)

    odd = lumen("open", f"{tmp_path}/my_net.py:Odd", "--input", "1,1,8,8", "--out", tmp_path / "odd")
    assert odd.returncode == 0, odd.stderr
    assert "kept opaque" in odd.stdout and "Erf ×1" in odd.stdout


def test_open_an_onnx_file_and_export_it_back(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    path = tmp_path / "seq.onnx"
    torch.onnx.export(net, (torch.rand(1, 1, 8, 8),), str(path), dynamo=False, input_names=["x"], output_names=["y"])
    result = lumen("open", path, "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "seq: 4 layers, 475 parameters, input 1×8×8" in result.stdout
    back = lumen("export", tmp_path / "run", "--format", "onnx", "--out", tmp_path / "back.onnx")
    assert back.returncode == 0, back.stderr


def test_open_refusals_are_one_line(tmp_path):
    one_line_error(lumen("open", tmp_path / "missing.onnx", "--out", tmp_path / "r"), "no such file")
    (tmp_path / "net.py").write_text(NET)
    one_line_error(lumen("open", f"{tmp_path}/net.py:Net", "--out", tmp_path / "r"), "needs --input")
    one_line_error(lumen("open", f"{tmp_path}/net.py:Nope", "--input", "1,1,8,8", "--out", tmp_path / "r"), "no Nope")
    (tmp_path / "bad.pt").write_bytes(b"not a pickle")
    one_line_error(
        lumen(
            "open",
            f"{tmp_path}/net.py:Net",
            "--input",
            "1,1,8,8",
            "--weights",
            tmp_path / "bad.pt",
            "--out",
            tmp_path / "r",
        ),
        "bad.pt",
    )


RNN_NET = """
from torch import nn

class FinalState(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 16, num_layers=2, batch_first=True)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.fc(h[-1])
"""


def test_open_a_python_module_read_by_its_final_state(tmp_path):
    # fx gives no recurrent layer, so it goes through ONNX: h_n[-1] of the two-layer LSTM is its returns: last
    (tmp_path / "rnn_net.py").write_text(RNN_NET)
    result = lumen("open", f"{tmp_path}/rnn_net.py:FinalState", "--input", "1,20,4", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "FinalState: 2 layers, 3,635 parameters, input 20×4" in result.stdout
    from lumen.engine.io.runs import open_run

    model = open_run(tmp_path / "run")
    lstm = next(n for n in model.spec.nodes if n.type == "lstm")
    assert lstm.params["returns"] == "last" and lstm.params["num_layers"] == 2
