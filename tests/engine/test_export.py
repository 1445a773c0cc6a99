"""Exports reproduce the model: the generated source, TorchScript and ONNX give the same outputs as Lumen's."""

import ast
import cProfile
import importlib
import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from lumen.engine.errors import LumenError
from lumen.engine.graph import model as graph
from lumen.engine.io import export
from lumen.engine.layers import LAYERS, LayerType
from lumen.engine.presets import Preset
from lumen.engine.spec.model_spec import ModelSpec
from tests.support import all_presets

ROOT = Path(__file__).resolve().parents[2]


PRESETS = all_presets()
BIG = 5_000_000  # parameters; the full-size presets take seconds each on two cores


def _marks(preset: Preset):
    try:
        params = sum(r.params for r in graph.summarize(preset.make()))
    except Exception:  # a broken preset fails its own test below, not the collection
        return []
    return [pytest.mark.slow] if params > BIG else []


def _run_source(source: str, class_name: str) -> nn.Module:
    namespace = {"__name__": "exported"}
    exec(compile(source, "exported.py", "exec"), namespace)
    return namespace[class_name]()


def _class_name(source: str) -> str:
    return next(
        n.name
        for n in ast.parse(source).body
        if isinstance(n, ast.ClassDef)
        and any(ast.unparse(b) == "nn.Module" for b in n.bases)
        and any(isinstance(f, ast.FunctionDef) and f.name == "forward" for f in n.body)
        and "input_shape" in ast.unparse(n)
    )


def _same_outputs(a: nn.Module, b: nn.Module, x: torch.Tensor) -> None:
    a.eval(), b.eval()
    with torch.no_grad():
        torch.manual_seed(1)
        expected = a(x)
        torch.manual_seed(1)
        got = b(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


SMALL = [n for n, p in PRESETS.items() if not _marks(p)]


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
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert not {"lumen", "engine"} & imported and "torch" in imported
    copy = _run_source(source, _class_name(source))
    copy.load_state_dict(model.state_dict(), strict=True)
    _same_outputs(model, copy, graph.example_input(spec))


def test_python_source_reads_step_by_step():
    source = export.to_python_source(PRESETS["lenet5"].make())
    assert "class LeNet5(nn.Module):" in source
    assert (
        "self.conv1 = nn.Conv2d(in_channels=1, out_channels=6, kernel_size=(5, 5), stride=(1, 1),\n"
        "                               padding=(2, 2), dilation=(1, 1))"
    ) in source
    assert "self.fc1 = nn.Linear(in_features=400, out_features=120)" in source
    init = source[source.index("def __init__(self):") : source.index("def forward(")]
    assert max(len(line) for line in init.splitlines()) <= 104
    lines = [line.strip() for line in source.splitlines()]
    assert any(line.startswith("x_conv1 = self.conv1(x)") and line.endswith("# 6×28×28") for line in lines)
    assert any(line.startswith("x_fc1 = self.fc1(x_flatten)") and line.endswith("# 120") for line in lines)
    assert lines[lines.index("return x_fc3") - 1].startswith("x_fc3 = self.fc3(x_relu4)")


# ---- written from the registry: torch's classes, and engine/modules copied whole ---------------------


def test_python_source_is_written_from_the_layer_registry():
    spec = ModelSpec.sequential(
        "small",
        (1, 8, 8),
        [
            ("conv", "conv2d", {"out_channels": 2, "kernel_size": 3, "padding": "same", "bias": False}),
            ("pool", "minpool2d", {"kernel_size": 2}),
            ("flat", "flatten", {}),
            ("noise", "noise", {"noise": "masking", "amount": 0.25}),
        ],
    )
    source = export.to_python_source(spec)
    calls = re.sub(r",\n +", ", ", source)  # long calls are wrapped between arguments
    # each node: its layer type's module class, called with layer.kwargs(params, input shapes) as literals
    # (arguments equal to the constructor's default are left out)
    assert (
        "self.conv = nn.Conv2d(in_channels=1, out_channels=2, kernel_size=(3, 3), stride=(1, 1), padding='same', "
        "dilation=(1, 1), bias=False)\n"
    ) in calls
    assert "self.pool = MinPool2d(kernel_size=(2, 2), padding=(0, 0))\n" in calls
    assert "self.noise = Noise(noise='masking', amount=0.25)\n" in calls
    # Lumen's own classes: their files copied whole, once each, their imports merged into the header
    for module in ("pool", "autoencoder"):
        text = (ROOT / "lumen" / "engine" / "modules" / f"{module}.py").read_text(encoding="utf-8")
        body = text[text.index("\n\n\n") :].strip()  # after the docstring and imports
        assert source.count(body) == 1, module
    assert "import torch.nn.functional as F" in source and "from typing import Any" in source
    assert source.index("from typing import Any") < source.index("import torch\n")  # standard library first
    assert "lumen." not in source and "engine" not in source.split('"""', 2)[2].replace("engine/modules", "")


def test_python_source_works_under_a_profiler():
    """The exporter records nothing while models are built: a profiler (or debugger) running is no matter."""
    source = cProfile.Profile().runcall(export.to_python_source, PRESETS["ae_sparse"].make())
    assert "class SparseAutoencoder(nn.Module):" in source


def test_exported_sources_name_only_what_they_define_or_import(tmp_path):
    """Every small preset's file, run as a script in a fresh interpreter with warnings as errors: every name it
    uses resolves (ae_sparse's used to need ``Any`` without importing it), and it runs a batch."""
    names = [n for n in SMALL if not n.startswith(("rnn_", "gru_", "birnn_", "bilstm_"))]  # lstm_* stand for them
    for name in names:
        (tmp_path / f"{name}.py").write_text(export.to_python_source(PRESETS[name].make()), encoding="utf-8")
    script = "import runpy, sys\nfor name in sys.argv[1:]:\n    runpy.run_path(name + '.py', run_name='__main__')\n"
    result = subprocess.run(
        [sys.executable, "-W", "error", "-I", "-c", script, *names],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("torch.Size([2") == len(names)


def _test_layer(**changes) -> LayerType:
    fields = {
        "name": "test_layer",
        "family": "dense",
        "description": "test only",
        "defaults": {},
        "domains": {},
        "infer": lambda params, in_shapes: in_shapes[0],
        "module": nn.Identity,
        "kwargs": lambda params, in_shapes: {},
    }
    return LayerType(**{**fields, **changes})


class Opaque(nn.Module):
    """A module class neither torch's nor one of engine/modules."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


@pytest.mark.parametrize(
    "layer, reason",
    [
        (
            _test_layer(module=Opaque),
            "its module class tests.engine.test_export.Opaque is neither torch's nor one of engine/modules",
        ),
        (
            _test_layer(module=nn.Softplus, kwargs=lambda params, in_shapes: {"beta": torch.tensor(1.0)}),
            "an argument of type Tensor",
        ),
    ],
)
def test_a_module_that_cannot_be_written_is_refused_naming_the_node(monkeypatch, layer, reason):
    monkeypatch.setitem(LAYERS, layer.name, layer)
    spec = ModelSpec.sequential("opaque", (4,), [("odd", layer.name, {})])
    with pytest.raises(LumenError) as error:
        export.to_python_source(spec)
    assert str(error.value) == f"odd: cannot be written as Python source ({reason})"


# ---- TorchScript and ONNX ----------------------------------------------------------------------------


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
