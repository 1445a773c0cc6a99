"""`main.py activations` and `main.py dream`, run as a user runs them (subprocesses): files written whole, one
line on stderr and a non-zero exit for anything refused."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lumen.engine.graph.model import build_model
from lumen.engine.io.runs import save_run
from lumen.engine.presets import get_preset
from tests.support import SAMPLES, lumen, one_line_error

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.manual_seed(0)
    spec = get_preset("lenet5")
    path = tmp_path_factory.mktemp("runs") / "lenet"
    save_run(path, spec, build_model(spec), [], {"dataset": "mnist"})
    return path


def test_activations_writes_the_grid_and_the_raw_maps(run_dir, tmp_path):
    out, npy = tmp_path / "grid é.png", tmp_path / "maps.npy"
    result = lumen(
        "activations", run_dir, "--image", SAMPLES / "digit_7.png", "--layer", "conv1", "--out", out, "--npy", npy
    )
    assert result.returncode == 0, result.stderr
    assert "conv1: 6 maps of 28×28 in a 2×3 grid" in result.stdout
    maps = np.load(npy)
    assert maps.shape == (6, 28, 28) and maps.dtype == np.float32
    grid = np.asarray(Image.open(out))
    assert grid.ndim == 3 and grid.shape[2] == 3 and min(grid.shape[:2]) >= 400
    # The same numbers as the engine gives for that picture.
    from lumen.engine.data.images import image_input
    from lumen.engine.explain.activations import activations
    from lumen.engine.io.image_files import read_image
    from lumen.engine.io.runs import open_run

    model = open_run(run_dir)
    x = image_input(read_image(SAMPLES / "digit_7.png"), (1, 28, 28), digits=True)
    np.testing.assert_allclose(maps, activations(model, x, ["conv1"])["conv1"], atol=1e-6)


def test_activations_of_a_dense_layer_after_its_relu(run_dir, tmp_path):
    out, npy = tmp_path / "fc1.png", tmp_path / "fc1.npy"
    result = lumen(
        "activations",
        run_dir,
        "--image",
        SAMPLES / "digit_3.png",
        "--layer",
        "fc1",
        "--after-activation",
        "--out",
        out,
        "--npy",
        npy,
    )
    assert result.returncode == 0, result.stderr
    assert "fc1 (after relu3): 1 maps of 1×120" in result.stdout
    assert np.load(npy).shape == (120,) and np.load(npy).min() >= 0


def test_dream_writes_a_picture(run_dir, tmp_path):
    out = tmp_path / "dream.png"
    result = lumen("dream", run_dir, "--layer", "conv2", "--channel", "3", "--steps", "5", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "deepdream of channel 3 of conv2" in result.stdout
    picture = np.asarray(Image.open(out))
    assert picture.shape == (280, 280) and picture.std() > 0
    on_image = tmp_path / "dream7.png"
    assert (
        lumen(
            "dream", run_dir, "--layer", "conv1", "--image", SAMPLES / "digit_7.png", "--steps", "3", "--out", on_image
        ).returncode
        == 0
    )


@pytest.mark.parametrize(
    "args, messages",
    [
        (["activations", "{run}", "--image", "{img}", "--layer", "nope", "--out", "{out}"], ["no layer 'nope'"]),
        (["activations", "{run}", "--image", "{bad}", "--layer", "conv1", "--out", "{out}"], ["not an image"]),
        (["activations", "{missing}", "--image", "{img}", "--layer", "conv1", "--out", "{out}"], ["not a run folder"]),
        (["dream", "{run}", "--layer", "conv1", "--channel", "99", "--out", "{out}"], ["6 channels; channel 99"]),
        (["dream", "{run}", "--layer", "nope", "--out", "{out}"], ["no layer 'nope'"]),
    ],
)
def test_refusals_are_one_line_and_write_nothing(run_dir, tmp_path, args, messages):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture at all")
    names = {
        "run": run_dir,
        "img": SAMPLES / "digit_7.png",
        "bad": bad,
        "out": tmp_path / "out.png",
        "missing": tmp_path / "no-run",
    }
    result = lumen(*(a.format(**names) for a in args))
    one_line_error(result, *messages)
    assert not (tmp_path / "out.png").exists()
