"""``main.py import`` of a full-size preset's weights: the run carries ImageNet's 1,000 class names, and ``explain``
prepares the picture with ImageNet's mean and std and names the classes, not their indices."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from lumen.engine.data.images import prepared_input
from lumen.engine.graph.model import build_model
from lumen.engine.io.runs import class_list, read_run_info, run_classes
from lumen.engine.presets import get_preset
from lumen.engine.spec.preprocess import IMAGENET

ROOT = Path(__file__).resolve().parents[2]


def cli(*args):
    return subprocess.run(
        [sys.executable, "main.py", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_imported_imagenet_weights_explain_with_class_names_and_imagenet_preparation(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in build_model(get_preset("resnet18")).state_dict().items()}, str(weights))
    result = cli("import", "resnet18", weights, "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "imagenet class names" in result.stdout
    assert run_classes(read_run_info(tmp_path / "run")) == class_list("imagenet")

    pixels = np.random.default_rng(0).integers(0, 256, (180, 240, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    out, npy = tmp_path / "sal.png", tmp_path / "sal.npy"
    result = cli(
        "explain", tmp_path / "run", "--image", tmp_path / "photo.png", "--method", "saliency",
        "--target", "207", "--out", out, "--npy", npy,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "for class 207 (golden retriever)" in result.stdout
    top = next(line for line in result.stdout.splitlines() if line.startswith("top: "))
    assert sum(name in top for name in class_list("imagenet")) >= 1 and "%" in top
    given = np.load(tmp_path / "sal.input.npy")
    np.testing.assert_allclose(given, prepared_input(pixels, (3, 224, 224), IMAGENET).numpy(), atol=1e-6)
    assert given.min() < -1.5 and given.max() > 2.0  # normalised with ImageNet's mean and std, not [0, 1]


def test_import_can_leave_the_class_names_out(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "lenet.safetensors"
    save_file({k: v.contiguous() for k, v in build_model(get_preset("lenet5")).state_dict().items()}, str(weights))
    result = cli("import", "lenet5", weights, "--out", tmp_path / "run")
    assert result.returncode == 0 and "class names" not in result.stdout
    assert run_classes(read_run_info(tmp_path / "run")) == ()
    result = cli("import", "lenet5", weights, "--out", tmp_path / "named", "--classes", "imagenet")
    assert result.returncode == 0 and run_classes(read_run_info(tmp_path / "named"))[0] == "tench"
