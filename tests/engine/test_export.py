"""Exports reproduce the model: the generated source, TorchScript and ONNX give the same outputs as Lumen's."""

import ast
import importlib
import importlib.util
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from engine.graph import model as graph
from engine.io import export
from engine.errors import LumenError
from engine.layers import LAYERS, LayerType
from engine.presets import Preset
from engine.spec.model_spec import ModelSpec
from tests.support import all_presets

ROOT = Path(__file__).resolve().parents[2]


PRESETS = all_presets()
BIG = 5_000_000  # parameters; the full-size presets take seconds each on two cores


def _marks(preset: Preset):
    try:
        params = sum(r.params for r in graph.summarize(preset.make()))
    except Exception:  # noqa: BLE001 - a broken preset fails its own test below, not the collection
        return []
    return [pytest.mark.slow] if params > BIG else []


def _run_source(source: str, class_name: str) -> nn.Module:
    namespace = {"__name__": "exported"}
    exec(compile(source, "exported.py", "exec"), namespace)
    return namespace[class_name]()


def _class_name(source: str) -> str:
    return next(n.name for n in ast.parse(source).body
                if isinstance(n, ast.ClassDef) and any(ast.unparse(b) == "nn.Module" for b in n.bases)
                and any(isinstance(f, ast.FunctionDef) and f.name == "forward" for f in n.body)
                and "input_shape" in ast.unparse(n))


def _same_outputs(a: nn.Module, b: nn.Module, x: torch.Tensor) -> None:
    a.eval(), b.eval()
    with torch.no_grad():
        torch.manual_seed(1)
        expected = a(x)
        torch.manual_seed(1)
        got = b(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_every_preset_is_found():
    assert "lenet5" in PRESETS and len(PRESETS) >= 1


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(p)) for n, p in PRESETS.items()])
def test_python_source_reproduces_the_preset(name):
    spec = PRESETS[name].make()
    torch.manual_seed(0)
    model = graph.build_model(spec)
    for buffer in model.buffers():  # batch-norm statistics that are not the defaults
        if buffer.is_floating_point():
            buffer.copy_(torch.rand_like(buffer) + 0.5)
    source = export.to_python_source(spec)
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source))
                if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert "engine" not in imported and "torch" in imported
    copy = _run_source(source, _class_name(source))
    copy.load_state_dict(model.state_dict(), strict=True)
    _same_outputs(model, copy, graph.example_input(spec))


def test_python_source_reads_step_by_step():
    source = export.to_python_source(PRESETS["lenet5"].make())
    assert "class LeNet5(nn.Module):" in source
    assert "self.conv1 = nn.Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))" in source
    lines = [line.strip() for line in source.splitlines()]
    assert any(line.startswith("x_conv1 = self.conv1(x)") and line.endswith("# 6×28×28") for line in lines)
    assert any(line.startswith("x_fc1 = self.fc1(x_flatten)") and line.endswith("# 120") for line in lines)
    assert lines[lines.index("return x_fc3") - 1].startswith("x_fc3 = self.fc3(x_relu4)")


# ---- a layer type defined outside engine/, with a module torch cannot print as code ------------------

_SCALES = {"half": lambda z: z * 0.5, "double": lambda z: z * 2}  # a table `repr` cannot write
OFFSET = 0.25


def _shifted(x: torch.Tensor) -> torch.Tensor:
    return x + OFFSET


class ScaledMinPool(nn.Module):
    """Min pooling then a named scale; stores a pool, not its constructor's arguments."""

    def __init__(self, size: int, scale: str = "half", *, shift: bool = False):
        super().__init__()
        self.pool = nn.MaxPool2d(size)
        self.how = (scale, shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _SCALES[self.how[0]](-self.pool(-x))
        return _shifted(y) if self.how[1] else y


class Mix(nn.Module):
    """A merge with weights: a·x + (1 − a)·y."""

    def __init__(self, channels: int):
        super().__init__()
        self.a = nn.Parameter(torch.rand(channels, 1, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.a * x + (1 - self.a) * y


@pytest.fixture
def extra_layers():
    added = [
        LayerType("test_scaled_minpool", "test only", {"size": 2, "scale": "double"},
                  lambda p, ins: (ins[0][0], ins[0][1] // p["size"], ins[0][2] // p["size"]),
                  lambda p, ins: ScaledMinPool(p["size"], p["scale"], shift=True)),
        LayerType("test_mix", "test only", {}, lambda p, ins: ins[0], lambda p, ins: Mix(ins[0][0]), arity=None),
    ]
    for layer in added:
        LAYERS[layer.name] = layer
    yield
    for layer in added:
        del LAYERS[layer.name]


def test_python_source_copies_custom_modules_and_their_helpers(extra_layers):
    spec = ModelSpec.from_dict({
        "format": "lumen.model", "version": 1, "name": "custom net", "nodes": [
            {"id": "input", "type": "input", "params": {"shape": [2, 8, 8]}},
            {"id": "block.0.pool", "type": "test_scaled_minpool", "params": {"size": 2}},
            {"id": "block.0.conv", "type": "conv2d", "params": {"out_channels": 2, "kernel_size": 3, "padding": 1}},
            {"id": "block.mix", "type": "test_mix", "params": {}},
        ],
        "edges": [["input", "block.0.pool"], ["block.0.pool", "block.0.conv"], ["block.0.pool", "block.mix"],
                  ["block.0.conv", "block.mix"]],
    })
    torch.manual_seed(0)
    model = graph.build_model(spec)
    source = export.to_python_source(spec)
    assert "ScaledMinPool(size=2, scale='double', shift=True)" in source  # the recorded call, not a repr
    assert "x_block_mix = self.block['mix'](x_block_0_pool, x_block_0_conv)" in source
    assert source.count("class ScaledMinPool(nn.Module):") == 1 and "def _shifted(" in source
    copy = _run_source(source, "CustomNet")
    assert list(copy.state_dict()) == list(model.state_dict()) == ["block.0.conv.weight", "block.0.conv.bias",
                                                                     "block.mix.a"]
    copy.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(3, 2, 8, 8)
    expected = 2 * -nn.functional.max_pool2d(-x, 2) + 0.25
    torch.testing.assert_close(model(x), copy(x))
    torch.testing.assert_close(model.layers["block.0.pool"](x), expected)


def test_a_module_that_cannot_be_written_is_refused_naming_the_node():
    class Opaque(nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def forward(self, x):
            return self.fn(x)

    LAYERS["test_opaque"] = LayerType("test_opaque", "test only", {}, lambda p, ins: ins[0],
                                      lambda p, ins: Opaque(lambda z: z + 1))
    try:
        spec = ModelSpec.sequential("opaque", (4,), [("odd", "test_opaque", {})])
        with pytest.raises(LumenError, match=r"^odd: cannot be written as Python source"):
            export.to_python_source(spec)
    finally:
        del LAYERS["test_opaque"]


# ---- TorchScript and ONNX ----------------------------------------------------------------------------

SMALL = [n for n, p in PRESETS.items() if not _marks(p)]


@pytest.mark.parametrize("name", SMALL)
def test_torchscript_file_loads_and_matches(tmp_path, name):
    spec = PRESETS[name].make()
    torch.manual_seed(0)
    model = graph.build_model(spec).train()
    path = tmp_path / "model.pt"
    export.to_torchscript(model, path)
    assert model.training  # the export does not leave the model in eval mode
    loaded = torch.jit.load(str(path))
    x = graph.example_input(spec, batch=3)  # another batch size than the trace's
    _same_outputs(model, loaded, x)


def test_onnx_without_the_package_says_how_to_get_it(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(LumenError, match=r"^ONNX export needs the onnx package: pip install onnx$"):
        export.to_onnx(graph.build_model(PRESETS["lenet5"].make()), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("name", SMALL)
def test_onnx_file_is_valid_and_matches(tmp_path, name):
    onnx = pytest.importorskip("onnx")
    spec = PRESETS[name].make()
    torch.manual_seed(0)
    model = graph.build_model(spec)
    path = tmp_path / "m.onnx"
    export.to_onnx(model, path)
    onnx.checker.check_model(onnx.load(str(path)))
    ort = pytest.importorskip("onnxruntime")
    x = graph.example_input(spec, batch=3)
    got = ort.InferenceSession(str(path)).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), model.eval()(x), atol=1e-5, rtol=1e-5)


def test_example_input_fits_the_model():
    spec = PRESETS["lenet5"].make()
    x = graph.example_input(spec, batch=4)
    assert x.shape == (4, 1, 28, 28) and x.dtype == torch.float32 and math.isfinite(x.sum().item())
