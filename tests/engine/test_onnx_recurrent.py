"""Opening ONNX LSTM/GRU/RNN: every recurrent preset exported and opened is the same spec (layer types, recurrent
parameters, weights) with onnxruntime's outputs; plain nn.Modules' recurrent layers open too; what Lumen's layers
cannot express is kept opaque or refused by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from lumen.engine.errors import LumenError
from lumen.engine.graph.model import GraphModel, example_input
from lumen.engine.io.export import to_onnx
from lumen.engine.io.onnx_import import OpenedModel, open_onnx
from lumen.engine.io.runs import load_state_dict_checked
from lumen.engine.layers import LAYERS
from lumen.engine.presets import get_preset
from lumen.engine.presets.sequence import SEQUENCE_PRESETS

ort = pytest.importorskip("onnxruntime")

RECURRENT_PRESETS = [p.name for p in SEQUENCE_PRESETS]
# what a recurrent node's ONNX op says; lstm's forget_bias and input_bias only start the weights, which come along
STRUCTURE = ("hidden_size", "num_layers", "bidirectional", "combine", "returns", "nonlinearity", "steps")


def built(opened: OpenedModel) -> GraphModel:
    model = GraphModel(opened.spec).eval()
    load_state_dict_checked(model, opened.weights, "test")
    return model


def ort_outputs(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def relative(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-12))


def structure(node) -> dict:
    params = LAYERS[node.type].resolve(node.params)
    return {k: params[k] for k in STRUCTURE if k in params}


def test_every_recurrent_preset_is_listed():
    assert len(RECURRENT_PRESETS) >= 20
    for family in ("rnn", "lstm", "gru", "birnn", "bilstm"):
        for io in ("one_to_one", "one_to_many", "many_to_one", "many_to_many"):
            assert f"{family}_{io}" in RECURRENT_PRESETS
    assert "lstm_encoder_decoder" in RECURRENT_PRESETS


@pytest.mark.parametrize("name", RECURRENT_PRESETS)
def test_recurrent_presets_open_as_the_same_spec_with_onnxruntimes_outputs(name, tmp_path):
    torch.manual_seed(0)
    spec = get_preset(name)
    original = GraphModel(spec).eval()
    path = tmp_path / f"{name}.onnx"
    to_onnx(original, path)
    opened = open_onnx(path)
    assert opened.opaque == {}
    assert [(n.id, n.type) for n in opened.spec.nodes] == [(n.id, n.type) for n in spec.nodes]
    assert set(opened.spec.edges) == set(spec.edges)
    for mine, theirs in zip(opened.spec.nodes, spec.nodes):
        assert structure(mine) == structure(theirs), mine.id
    # the same weights under the same names: ONNX's gate order put back into torch's exactly
    assert set(opened.weights) == set(original.state_dict())
    for key, tensor in original.state_dict().items():
        assert torch.equal(opened.weights[key], tensor), key
    model = built(opened)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in original.parameters())
    x = example_input(opened.spec, batch=3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(x).numpy()
    assert relative(ours, ort_outputs(path, x)) < 1e-4


class Tagger(nn.Module):
    """A model written without Lumen: a two-layer bidirectional LSTM (dropout between its layers), a GRU on top
    reading its every step, the GRU's last step into a linear head."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 16, num_layers=2, bidirectional=True, dropout=0.2, batch_first=True)
        self.gru = nn.GRU(32, 12, batch_first=True)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        out, _ = self.gru(torch.tanh(out))
        return self.fc(out[:, -1])


def export_plain(module: nn.Module, path: Path, steps: int = 7, features: int = 6) -> None:
    torch.manual_seed(0)
    module.eval()
    torch.onnx.export(
        module,
        (torch.rand(1, steps, features),),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
    )


def test_an_lstm_from_outside_lumen(tmp_path):
    torch.manual_seed(0)
    module = Tagger()
    path = tmp_path / "tagger.onnx"
    export_plain(module, path)
    opened = open_onnx(path)
    assert opened.opaque == {}
    nodes = {n.id: n for n in opened.spec.nodes}
    assert nodes["lstm"].type == "lstm" and nodes["gru"].type == "gru"
    assert structure(nodes["lstm"]) == {
        "hidden_size": 16,
        "num_layers": 2,
        "bidirectional": True,
        "combine": "concat",
        "returns": "sequence",
    }
    assert structure(nodes["gru"])["returns"] == "last"
    model = built(opened)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in module.parameters())
    for key, tensor in module.lstm.state_dict().items():  # every layer and direction, gates in torch's order
        assert torch.equal(opened.weights[f"lstm.rnn.{key}"], tensor), key
    x = torch.rand(4, 7, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = model(x).numpy()
    assert relative(ours, ort_outputs(path, x)) < 1e-4


class LastOfBoth(nn.Module):
    """out[:, -1] of a bidirectional layer: the backward direction's *last* step (it has seen one step), which is
    not Lumen's returns="last" (the backward direction's first step): kept as an opaque Gather."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(6, 8, bidirectional=True, nonlinearity="relu", batch_first=True)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc(self.rnn(x)[0][:, -1])


def test_a_step_no_lumen_layer_returns_stays_an_opaque_op(tmp_path):
    path = tmp_path / "last_of_both.onnx"
    export_plain(LastOfBoth(), path)
    opened = open_onnx(path)
    assert opened.opaque == {"Gather": 1}
    rnn = next(n for n in opened.spec.nodes if n.type == "rnn")
    assert structure(rnn)["nonlinearity"] == "relu" and structure(rnn)["returns"] == "sequence"
    x = torch.rand(3, 7, 6, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = built(opened)(x).numpy()
    assert relative(ours, ort_outputs(path, x)) < 1e-4


class FinalState(nn.Module):
    """A recurrent layer read by its final state, as ``read`` says: ``read(h_n, c_n)``."""

    def __init__(self, cell: str, read: Callable, num_layers: int = 1, bidirectional: bool = False, width: int = 8):
        super().__init__()
        self.rnn = getattr(nn, cell)(6, 8, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
        self.fc = nn.Linear(width, 3)
        self.read = read

    def forward(self, x):
        _, state = self.rnn(x)
        return self.fc(self.read(*(state if isinstance(state, tuple) else (state, None))))


# idiom → (the module, the Lumen layer it opens as, with these parameters and returns: last)
FINAL_STATES = {
    "lstm h[-1]": (lambda: FinalState("LSTM", lambda h, c: h[-1]), "lstm", {}),
    "2-layer lstm h[-1]": (lambda: FinalState("LSTM", lambda h, c: h[-1], num_layers=2), "lstm", {"num_layers": 2}),
    "gru h[-1]": (lambda: FinalState("GRU", lambda h, c: h[-1]), "gru", {}),
    "rnn h.squeeze(0)": (lambda: FinalState("RNN", lambda h, c: h.squeeze(0)), "rnn", {}),
    "bilstm cat(h[-2], h[-1])": (
        lambda: FinalState("LSTM", lambda h, c: torch.cat([h[-2], h[-1]], 1), bidirectional=True, width=16),
        "lstm",
        {"bidirectional": True, "combine": "concat"},
    ),
}


@pytest.mark.parametrize("idiom", FINAL_STATES)
def test_a_final_state_read_opens_as_the_last_step(idiom, tmp_path):
    make, layer_type, params = FINAL_STATES[idiom]
    torch.manual_seed(0)
    module = make()
    path = tmp_path / "final_state.onnx"
    export_plain(module, path)
    opened = open_onnx(path)
    assert opened.opaque == {}
    (recurrent,) = [n for n in opened.spec.nodes if n.type in ("lstm", "gru", "rnn")]
    assert recurrent.type == layer_type
    expected = {"num_layers": 1, "bidirectional": False, "combine": "concat", **params, "returns": "last"}
    assert {k: v for k, v in structure(recurrent).items() if k in expected} == expected
    model = built(opened)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in module.parameters())
    x = torch.rand(4, 7, 6, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ours = model(x).numpy()
        assert relative(ours, module(x).numpy()) < 1e-4
    assert relative(ours, ort_outputs(path, x)) < 1e-4


FINAL_REFUSALS = {
    "c[-1]": (FinalState("LSTM", lambda h, c: c[-1]), r"op LSTM .*final cell state \(Y_c, torch's c_n\)"),
    "h[0] of 2 layers": (FinalState("GRU", lambda h, c: h[0], num_layers=2), r"h_n \(Y_h\) is read for layer 1 of 2"),
    "h[-1] both ways": (FinalState("LSTM", lambda h, c: h[-1], bidirectional=True), r"backward direction alone"),
    "h whole": (FinalState("RNN", lambda h, c: h.sum(0)), r"h_n \(Y_h\) is read whole"),
}


@pytest.mark.parametrize("read", FINAL_REFUSALS)
def test_a_final_state_no_lumen_layer_gives_is_refused_by_name(read, tmp_path):
    module, words = FINAL_REFUSALS[read]
    path = tmp_path / "final_state.onnx"
    export_plain(module, path)
    with pytest.raises(LumenError, match=f"^final_state.onnx: .*{words}") as refused:
        open_onnx(path)
    assert "\n" not in str(refused.value)


def recurrent_graph(path: Path, op: str, **attributes) -> None:
    """One ONNX recurrent op between the transposes torch writes, built by hand."""
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    rng = np.random.default_rng(0)
    weights = [
        helper.make_tensor(name, TensorProto.FLOAT, shape, rng.standard_normal(shape).astype(np.float32).ravel())
        for name, shape in (("W", [1, gates * 4, 3]), ("R", [1, gates * 4, 4]), ("B", [1, 2 * gates * 4]))
    ]
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
        helper.make_node(op, ["t", "W", "R", "B"], ["y"], hidden_size=4, **attributes),
        helper.make_node("Squeeze", ["y", "axes"], ["s"]),
        helper.make_node("Transpose", ["s"], ["out"], perm=[1, 0, 2]),
    ]
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 5, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 5, 4])],
        [*weights, axes],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_a_hand_written_gru_opens_and_refusals_name_the_field(tmp_path):
    path = tmp_path / "gru.onnx"
    recurrent_graph(path, "GRU", linear_before_reset=1)
    opened = open_onnx(path)
    assert [n.type for n in opened.spec.nodes] == ["input", "gru"]
    x = torch.rand(2, 5, 3, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ours = built(opened)(x).numpy()
    assert relative(ours, ort_outputs(path, x)) < 1e-4
    refused = {
        "GRU": ({}, "linear_before_reset=0"),
        "LSTM": ({"direction": "reverse"}, "runs reverse"),
        "RNN": ({"activations": ["Sigmoid"]}, "activations"),
    }
    for op, (attributes, words) in refused.items():
        recurrent_graph(path, op, **attributes)
        with pytest.raises(LumenError, match=f"gru.onnx: op {op} .*{words}"):
            open_onnx(path)
