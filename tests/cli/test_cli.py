"""The headless CLI, run as a user runs it: a subprocess of main.py."""

import json
from pathlib import Path

import pytest
import torch

from tests.support import lumen, one_line_error

ROOT = Path(__file__).resolve().parents[2]


def test_presets_lists_name_and_description():
    result = lumen("presets")
    assert result.returncode == 0
    name, description = result.stdout.splitlines()[0].split(None, 1)
    assert name == "lenet5" and "LeNet-5" in description


def test_summary_table_ends_with_the_total(tmp_path):
    result = lumen("summary", "lenet5")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "total params: 61706"
    assert any(line.split()[:4] == ["conv2", "conv2d", "16×10×10", "2,416"] for line in lines)
    spec_file = tmp_path / "mine.json"
    from lumen.engine.presets import get_preset

    get_preset("lenet5").save(spec_file)
    assert lumen("summary", spec_file).stdout.splitlines()[-1] == "total params: 61706"


@pytest.mark.parametrize(
    "args, message, status",
    [
        (["summary", "resnet9000"], "unknown preset 'resnet9000'", 1),
        (["train", "lenet5", "--epochs", "two", "--out", "x"], "argument --epochs: invalid int value: 'two'", 2),
        (["train", "lenet5", "--data", "imagenet", "--out", "x"], "unknown dataset 'imagenet'", 1),
        (["train", "lenet5", "--epochs", "0", "--out", "x"], "epochs must be a whole number ≥ 1", 1),
        (["summary", "Makefile"], "Makefile: not valid JSON (line 1, column 1", 1),
        (["--colour"], "unrecognized arguments: --colour", 2),
        (["train", "lenet5", "--out", "Makefile"], "cannot write Makefile: it is a file; name a folder for the run", 1),
    ],
)
def test_errors_are_one_clear_line(args, message, status):
    one_line_error(lumen(*args), message, status=status)


@pytest.mark.slow
def test_train_writes_a_run_folder_that_reloads(tmp_path):
    out = tmp_path / "run"
    result = lumen(
        "train",
        "lenet5",
        "--data",
        "mnist",
        "--epochs",
        "1",
        "--out",
        out,
        "--lr",
        "0.002",
        "--batch-size",
        "128",
        "--seed",
        "5",
    )
    assert result.returncode == 0, result.stderr
    assert "step 36/36" in result.stderr  # the progress bar reached the end (4500 / 128 batches)
    assert {p.name for p in out.iterdir()} >= {
        "model.json",
        "weights.safetensors",
        "metrics.csv",
        "steps.csv",
        "run.json",
    }
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["lr"] == 0.002 and run["config"]["batch_size"] == 128 and run["steps"] == 36
    assert 0.5 < run["final"]["val_accuracy"] <= 1.0

    from lumen.engine.data.datasets import load_mnist
    from lumen.engine.graph.model import build_model
    from lumen.engine.io.runs import load_weights
    from lumen.engine.spec.model_spec import ModelSpec
    from lumen.engine.training.loop import TrainConfig, Training

    model = build_model(ModelSpec.load(out / "model.json"))
    load_weights(model, out / "weights.safetensors")
    validated = Training(model, load_mnist(), TrainConfig()).validate()  # as each epoch of a run measures it
    assert validated["accuracy"] == pytest.approx(run["final"]["val_accuracy"])
    assert torch.isfinite(next(model.parameters())).all()
