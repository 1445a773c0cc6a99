"""Opening ONNX models: presets exported and opened give onnxruntime's logits and the same parameter count; a
model from outside Lumen, opaque ops, the round trip, and one clear refusal per bad file."""

from __future__ import annotations

import gc
import os
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
from lumen.engine.presets import get_preset
from lumen.engine.untrusted import read_onnx

ort = pytest.importorskip("onnxruntime")

SMALL = ["alexnet_small", "vgg_small", "googlenet_small", "resnet_small", "mobilenet_small"]
FULL_SIZE = ["alexnet", "vgg11", "vgg16", "resnet18", "mobilenet_v2", "googlenet"]


def built(opened: OpenedModel) -> GraphModel:
    model = GraphModel(opened.spec).eval()
    load_state_dict_checked(model, opened.weights, "test")
    return model


def ort_logits(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: x.numpy()})[0]


def relative(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-12))


def check_preset(name: str, folder: Path) -> None:
    torch.manual_seed(0)
    original = GraphModel(get_preset(name)).eval()
    for module in original.modules():  # statistics that are not 0 and 1, so batch norm is really checked
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    path = folder / f"{name}.onnx"
    to_onnx(original, path)
    params = sum(p.numel() for p in original.parameters())
    del original
    gc.collect()
    opened = open_onnx(path)
    assert opened.opaque == {}
    model = built(opened)
    x = example_input(opened.spec, batch=1, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(x).numpy()
    assert relative(ours, ort_logits(path, x)) < 1e-4
    assert sum(p.numel() for p in model.parameters()) == params
    path.unlink()


@pytest.mark.parametrize("name", SMALL)
def test_small_presets_open_with_onnxruntimes_logits(name, tmp_path):
    check_preset(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", FULL_SIZE)
def test_full_size_presets_open_with_onnxruntimes_logits(name, tmp_path):
    check_preset(name, tmp_path)


def test_names_and_weights_come_back_as_the_presets():
    """Weighted layers keep their ids (the initializers' names), so the state dict's keys are the preset's."""
    torch.manual_seed(0)
    original = GraphModel(get_preset("resnet_small")).eval()
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"lumen-names-{os.getpid()}.onnx"
    try:
        to_onnx(original, path)
        opened = open_onnx(path)
    finally:
        path.unlink(missing_ok=True)
    assert set(opened.weights) == set(original.state_dict())
    for key, tensor in original.state_dict().items():
        assert torch.equal(opened.weights[key], tensor), key


class Outside(nn.Module):
    """A model written without Lumen: branches, concatenation, a residual sum, dropout, an adaptive pool."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.left = nn.Conv2d(8, 4, 1)
        self.right = nn.Conv2d(8, 4, 3, padding=1)
        self.mix = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        y = torch.cat([self.left(x), torch.sigmoid(self.right(x))], 1)
        x = self.pool(nn.functional.leaky_relu(self.mix(y), 0.1) + x)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return torch.softmax(self.head(self.drop(x)), -1)


class WithErf(Outside):
    def forward(self, x):
        x = torch.erf(self.stem(x)) * 0.5
        return self.head(x.mean((2, 3)))


def export_plain(module: nn.Module, path: Path, shape=(1, 3, 16, 16)) -> None:
    torch.manual_seed(0)
    module.eval()
    torch.onnx.export(
        module,
        (torch.rand(shape),),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
    )


def test_a_model_from_outside_lumen(tmp_path):
    module = Outside()
    path = tmp_path / "outside.onnx"
    export_plain(module, path)
    opened = open_onnx(path)
    assert opened.opaque == {}
    types = {n.type for n in opened.spec.nodes}
    assert {"conv2d", "concat", "add", "leaky_relu", "maxpool2d", "linear", "softmax"} <= types
    model = built(opened)
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = model(x).numpy()
    assert relative(ours, ort_logits(path, x)) < 1e-4
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in module.parameters())


def test_an_op_without_a_layer_opens_opaque_and_is_named(tmp_path):
    path = tmp_path / "erf.onnx"
    export_plain(WithErf(), path)
    opened = open_onnx(path)
    assert opened.opaque == {"Erf": 1, "Mul": 1}
    assert "Erf ×1" in opened.opaque_line() and "Mul ×1" in opened.opaque_line()
    model = built(opened)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = model(x).numpy()
    assert relative(ours, ort_logits(path, x)) < 1e-4
    # an opaque node is a named submodule like any other: hooks, feature maps and gradients reach it
    erf = next(n.id for n in opened.spec.nodes if n.type == "onnx_op" and n.params["op"] == "Erf")
    from lumen.engine.explain.activations import record

    _, seen = record(model, x, [erf])
    assert seen[erf].shape == (2, 8, 16, 16)


class WithLayerNorm(nn.Module):
    """LayerNorm has no Lumen layer: it opens opaque, and its scale and shift must still train."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.LayerNorm([4, 16, 16])
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.norm(self.conv(x)).mean((2, 3)) * 2.0)


def test_an_opaque_ops_parameters_train_and_its_folded_constants_do_not(tmp_path):
    module = WithLayerNorm()
    with torch.no_grad():
        module.norm.weight.uniform_(0.5, 1.5)  # not the default ones, so the weights really come along
    path = tmp_path / "norm.onnx"
    export_plain(module, path)
    opened = open_onnx(path)
    assert opened.opaque == {"LayerNormalization": 1, "Mul": 1}
    model = built(opened)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in module.parameters())
    assert f"{sum(p.numel() for p in module.parameters()):,} parameters" in opened.line()
    norm = model.layers["norm"]
    assert torch.equal(norm.constant0, module.norm.weight.detach())
    scale = next(n.id for n in opened.spec.nodes if n.type == "onnx_op" and n.params["op"] == "Mul")
    assert not list(model.layers[scale].parameters())  # the exporter's folded 2.0 stays a constant
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    assert relative(model(x).detach().numpy(), ort_logits(path, x)) < 1e-4
    model.train()
    model(x).sum().backward()
    assert norm.constant0.grad is not None and norm.constant0.grad.abs().sum() > 0


@pytest.mark.parametrize("make", [lambda: GraphModel(get_preset("resnet_small")), lambda: WithErf()])
def test_round_trip_open_export_open_gives_the_same_spec_and_outputs(make, tmp_path):
    torch.manual_seed(0)
    first_path = tmp_path / "first.onnx"
    module = make()
    if isinstance(module, GraphModel):
        to_onnx(module.eval(), first_path)
    else:
        export_plain(module, first_path)
    first = open_onnx(first_path)
    model = built(first)
    again = tmp_path / "again.onnx"
    to_onnx(model, again)
    second = open_onnx(again)
    assert second.spec.nodes == first.spec.nodes and second.spec.edges == first.spec.edges
    x = example_input(first.spec, batch=2, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(built(second)(x), model(x), rtol=1e-5, atol=1e-6)


def test_pad_before_conv_and_matmul_plus_bias_fold(tmp_path):
    class Padded(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.weight = nn.Parameter(torch.randn(2 * 8 * 8, 3))
            self.bias = nn.Parameter(torch.randn(3))

        def forward(self, x):
            x = self.conv(nn.functional.pad(x, (1, 1, 1, 1)))
            return x.reshape(x.shape[0], -1) @ self.weight + self.bias

    path = tmp_path / "padded.onnx"
    export_plain(Padded(), path, (1, 1, 8, 8))
    opened = open_onnx(path)
    assert [n.type for n in opened.spec.nodes] == ["input", "conv2d", "flatten", "linear"]
    assert opened.spec.nodes[1].params["padding"] == 1
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        assert relative(built(opened)(x).numpy(), ort_logits(path, x)) < 1e-4


# ---- refusals: one line each, naming the field or op -------------------------------------------------------------


def tiny_graph(nodes, inputs=None, outputs=None, opset=17, initializers=()):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def refusal(path: Path, **kwargs) -> str:
    with pytest.raises(LumenError) as caught:
        open_onnx(path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_refuses_what_is_not_a_regular_file(tmp_path):
    assert "is a folder" in refusal(tmp_path)
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    assert "not a regular file" in refusal(fifo)
    assert "no such file" in refusal(tmp_path / "missing.onnx")


def test_refuses_a_file_too_large(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(tiny_graph([helper.make_node("Relu", ["x"], ["y"])]), path)
    with pytest.raises(LumenError, match="more than a model file may be"):
        read_onnx(path, 100, limit=10)


def test_refuses_bytes_that_are_not_onnx(tmp_path):
    path = tmp_path / "noise.onnx"
    path.write_bytes(b"\xff\x00garbage" * 50)
    assert "is not an ONNX model" in refusal(path)


def test_refuses_a_graph_the_checker_rejects(tmp_path):
    path = tmp_path / "bad.onnx"
    model = tiny_graph([helper.make_node("Relu", ["nowhere"], ["y"])])
    path.write_bytes(model.SerializeToString())
    assert "fails ONNX's checker" in refusal(path)


def test_refuses_external_data_outside_the_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 64)
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4])
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "64")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    model = tiny_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], initializers=[weight])
    path = folder / "m.onnx"
    path.write_bytes(model.SerializeToString())
    message = refusal(path)
    assert "outside the model's folder" in message and "../secret.bin" in message and "w" in message


def test_refuses_an_opset_out_of_range(tmp_path):
    path = tmp_path / "old.onnx"
    path.write_bytes(tiny_graph([helper.make_node("Relu", ["x"], ["y"])], opset=5).SerializeToString())
    assert "opset 5 is outside" in refusal(path)


def test_refuses_more_nodes_than_a_spec_holds(tmp_path):
    path = tmp_path / "long.onnx"
    nodes = [helper.make_node("Relu", ["x" if i == 0 else f"t{i}"], [f"t{i + 1}" if i < 9 else "y"]) for i in range(10)]
    onnx.save(tiny_graph(nodes), path)
    with pytest.raises(LumenError, match="the graph has 10 nodes; Lumen reads at most 5"):
        read_onnx(path, 5)


def test_refuses_control_flow_and_foreign_domains(tmp_path):
    branch = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["z"])],
        "b",
        [],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 4])],
    )
    cond = helper.make_tensor("c", TensorProto.BOOL, [], [True])
    model = tiny_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)], initializers=[cond]
    )
    path = tmp_path / "if.onnx"
    path.write_bytes(model.SerializeToString())
    assert "op If holds a subgraph" in refusal(path)
    foreign = tiny_graph([helper.make_node("Gelu", ["x"], ["y"], domain="com.microsoft")])
    foreign.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    path.write_bytes(foreign.SerializeToString())
    assert "op Gelu is from the domain com.microsoft" in refusal(path)


def test_refuses_ops_it_can_neither_map_nor_run_naming_each(tmp_path):
    path = tmp_path / "det.onnx"
    model = tiny_graph(
        [
            helper.make_node("Hardmax", ["x"], ["h"]),
            helper.make_node("Det", ["h"], ["d"]),
            helper.make_node("Hardmax", ["x"], ["y"]),
        ],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
    )
    path.write_bytes(model.SerializeToString())
    message = refusal(path)
    assert "Det ×1" in message and "Hardmax ×2" in message


def test_refuses_two_inputs_and_open_sizes(tmp_path):
    two = tiny_graph(
        [helper.make_node("Add", ["x", "x2"], ["y"])],
        inputs=[helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", 4]) for n in ("x", "x2")],
    )
    path = tmp_path / "two.onnx"
    path.write_bytes(two.SerializeToString())
    assert "the graph has 2 inputs (x, x2)" in refusal(path)
    open_size = tiny_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "w"])],
    )
    path.write_bytes(open_size.SerializeToString())
    assert "no fixed size" in refusal(path)
    assert open_onnx(path, input_shape=(4,)).spec.input_shape == (4,)
