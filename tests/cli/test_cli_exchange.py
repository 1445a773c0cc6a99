"""The exchange commands (summary --input, import, export), run as a user runs them: subprocesses of main.py."""

import json
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
from tests.support import all_presets, lumen, one_line_error

ROOT = Path(__file__).resolve().parents[2]


def new_file_mode() -> int:
    """What a file written here would get: 0666 less the umask."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@pytest.fixture
def lenet_weights():
    torch.manual_seed(3)
    return build_model(get_preset("lenet5")).state_dict()


def lenet_with(state_dict):
    model = build_model(get_preset("lenet5"))
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


# ---- summary --input ------------------------------------------------------------------------------


def test_summary_with_another_input_shape():
    result = lumen("summary", "lenet5", "--input", "1,32,32")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:3] == ["conv1", "conv2d", "6×32×32"] for line in lines)
    assert any(line.split()[:3] == ["flatten", "flatten", "576"] for line in lines)  # 16×6×6
    conv = (1 * 5 * 5 + 1) * 6 + (6 * 5 * 5 + 1) * 16
    dense = (16 * 6 * 6 + 1) * 120 + (120 + 1) * 84 + (84 + 1) * 10
    assert lines[-1] == f"total params: {conv + dense}"
    assert conv + dense != 61706  # the default 28×28 input's total


@pytest.mark.parametrize(
    "value, message",
    [
        ("1,x,32", "--input takes whole numbers above 0 separated by commas, like 1,28,28; got '1,x,32'"),
        ("0,28,28", "got '0,28,28'"),
        ("1,4,4", "conv2: kernel 5×5 is larger than its 2×2 input (after pool1) (with input 1×4×4)"),
        ("28,28", "conv1: conv2d expects a channels×height×width input, got 28×28"),
    ],
)
def test_summary_refuses_a_bad_input_shape(value, message):
    one_line_error(lumen("summary", "lenet5", "--input", value), message)


# ---- import ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".safetensors"])
def test_import_makes_a_run_folder(tmp_path, lenet_weights, suffix):
    weights = tmp_path / f"lenet{suffix}"
    if suffix == ".safetensors":
        save_file(lenet_weights, str(weights))
    else:
        torch.save(lenet_weights, weights)
    out = tmp_path / "run"
    result = lumen("import", "lenet5", weights, "--out", out)
    assert result.returncode == 0, result.stderr
    run_files = {p.name for p in out.iterdir()}
    assert run_files >= {"model.json", "weights.safetensors", "run.json"}
    # Every file as any new file here (0644 with the usual umask): safetensors' own 0600 is not kept.
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == dict.fromkeys(run_files, new_file_mode())
    run = json.loads((out / "run.json").read_text())
    assert run["imported_from"] == str(weights.resolve()) and len(run["sha256"]) == 64
    saved = load_file(str(out / "weights.safetensors"))
    assert saved.keys() == lenet_weights.keys()
    assert all(torch.equal(saved[k], v) for k, v in lenet_weights.items())


class _RunsCode:
    """Unpickling this calls os.system: what a hostile .pth holds."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_import_refuses_a_pickle_that_runs_code(tmp_path, lenet_weights, how):
    marker = tmp_path / "pwned"
    weights = tmp_path / "evil.pth"
    payload = {**lenet_weights, "conv1.weight": _RunsCode(marker)}
    if how == "torch.save":
        torch.save(payload, weights)
    else:
        with weights.open("wb") as f:
            pickle.dump(payload, f, protocol=2)  # torch's own legacy format
    out = tmp_path / "run"
    result = lumen("import", "lenet5", weights, "--out", out)
    one_line_error(result, "evil.pth was refused (nothing in it was run): it refers to ")
    assert "posix.system" in result.stderr or "nt.system" in result.stderr
    assert not marker.exists(), "the pickle's code ran"
    assert not out.exists()


def test_import_refuses_what_is_not_a_state_dict(tmp_path, lenet_weights):
    cases = {
        "checkpoint.pth": {"model": lenet_weights, "epoch": 3},
        "list.pth": list(lenet_weights.values()),
        "numbers.pth": {"conv1.weight": 1.5},
    }
    messages = {
        "checkpoint.pth": "checkpoint.pth holds a checkpoint, not a state dict: 'model' is a mapping",
        "list.pth": "list.pth holds a list, not a state dict",
        "numbers.pth": "numbers.pth is not a state dict: conv1.weight is a float, not a dense tensor",
    }
    for name, content in cases.items():
        torch.save(content, tmp_path / name)
        one_line_error(lumen("import", "lenet5", tmp_path / name, "--out", tmp_path / "run"), messages[name])
    (tmp_path / "junk.pth").write_text("not a pickle")
    one_line_error(
        lumen("import", "lenet5", tmp_path / "junk.pth", "--out", tmp_path / "run"),
        "junk.pth was refused (nothing in it was run): it is not a plain PyTorch state dict",
    )
    (tmp_path / "empty.pth").write_bytes(b"")
    one_line_error(
        lumen("import", "lenet5", tmp_path / "empty.pth", "--out", tmp_path / "run"),
        "empty.pth is not a readable PyTorch file",
    )
    (tmp_path / "weights.npz").write_bytes(b"")
    one_line_error(
        lumen("import", "lenet5", tmp_path / "weights.npz", "--out", tmp_path / "run"),
        "weights.npz: expected a PyTorch state dict (.pth or .pt) or a .safetensors file",
    )
    assert not (tmp_path / "run").exists()


def test_import_refuses_weights_that_do_not_fit(tmp_path, lenet_weights):
    wrong = dict(lenet_weights)
    wrong["fc1.weight"] = torch.zeros(120, 576)  # LeNet for 32×32 inputs
    del wrong["fc3.bias"]
    wrong["fc4.weight"] = torch.zeros(3)
    torch.save(wrong, tmp_path / "other.pth")
    result = lumen("import", "lenet5", tmp_path / "other.pth", "--out", tmp_path / "run")
    one_line_error(
        result,
        "the weights in other.pth do not fit this model: missing fc3.bias; "
        "unexpected fc4.weight; fc1.weight is (120, 576), the model needs (120, 400)",
    )
    assert not (tmp_path / "run").exists()


# ---- export ---------------------------------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path, lenet_weights):
    save_file(lenet_weights, str(tmp_path / "lenet.safetensors"))
    result = lumen("import", "lenet5", tmp_path / "lenet.safetensors", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    return tmp_path / "run"


def test_export_python_runs_without_lumen(tmp_path, run_dir, lenet_weights):
    out = tmp_path / "exported" / "lenet.py"
    result = lumen("export", run_dir, "--format", "python", "--out", out)
    assert result.returncode == 0, result.stderr
    # the file runs on its own, outside the repository (no engine package to import)
    alone = subprocess.run(
        [sys.executable, str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.strip() == "torch.Size([2, 10])"
    namespace = {"__name__": "exported"}
    exec(compile(out.read_text(encoding="utf-8"), str(out), "exec"), namespace)
    model = namespace["LeNet5"]().eval()
    model.load_state_dict(load_file(str(run_dir / "weights.safetensors")), strict=True)
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model(x), lenet_with(lenet_weights)(x), atol=1e-5, rtol=1e-5)


def test_export_torchscript_and_safetensors(tmp_path, run_dir, lenet_weights):
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        expected = lenet_with(lenet_weights)(x)
    result = lumen("export", run_dir, "--format", "torchscript", "--out", tmp_path / "lenet.pt")
    assert result.returncode == 0, result.stderr
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(tmp_path / "lenet.pt"))(x), expected, atol=1e-5, rtol=1e-5)
    result = lumen("export", run_dir, "--format", "safetensors", "--out", tmp_path / "w.safetensors")
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "w.safetensors").stat().st_mode) == new_file_mode()
    with torch.no_grad():
        torch.testing.assert_close(lenet_with(load_file(str(tmp_path / "w.safetensors")))(x), expected)


def test_exchange_reports_where_it_cannot_write(tmp_path, run_dir):
    a_file = tmp_path / "taken"
    a_file.write_text("")
    one_line_error(
        lumen("import", "lenet5", tmp_path / "lenet.safetensors", "--out", a_file), f"cannot write {a_file}: "
    )
    one_line_error(
        lumen("export", run_dir, "--format", "python", "--out", tmp_path),
        f"{tmp_path} is a folder; --out names the file to write",
    )


def test_export_onnx(tmp_path, run_dir):
    result = lumen("export", run_dir, "--format", "onnx", "--out", tmp_path / "lenet.onnx")
    try:
        import onnx
    except ImportError:
        one_line_error(result, "ONNX export needs the onnx package: pip install onnx")
        assert not (tmp_path / "lenet.onnx").exists()
        return
    assert result.returncode == 0, result.stderr
    onnx.checker.check_model(onnx.load(str(tmp_path / "lenet.onnx")))


@pytest.mark.parametrize(
    "args, message, status",
    [
        ("export nowhere --format python --out x.py".split(), "nowhere is not a run folder (no such folder)", 1),
        (["export", "nowhere", "--format", "keras", "--out", "x.py"], "argument --format: invalid choice: 'keras'", 2),
        (["import", "lenet5", "missing.pth", "--out", "x"], "missing.pth: no such file", 1),
        (["import", "resnet9000", "missing.pth", "--out", "x"], "unknown preset 'resnet9000'", 1),
    ],
)
def test_exchange_errors_are_one_clear_line(args, message, status):
    one_line_error(lumen(*args), message, status=status)


def _every_preset():
    return all_presets()


@pytest.mark.parametrize("name", list(_every_preset()))
def test_summary_covers_every_preset(tmp_path, capsys, name):
    import main
    from lumen.engine.presets import PRESETS

    spec = _every_preset()[name].make()
    arg = name
    if name not in PRESETS:  # not registered by name (yet): the same spec as a JSON file
        arg = tmp_path / "spec.json"
        spec.save(arg)
    assert main.main(["summary", str(arg)]) == 0
    with torch.device("meta"):
        expected = sum(p.numel() for p in build_model(spec).parameters())
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"total params: {expected}"
    assert len(lines) == 3 + len(spec.nodes) + 1  # title, header, rule, a row per node, total
