"""`main.py train` for every family: each preset trains a few steps on its own dataset with finite, named losses;
--data, --optimizer, --schedule and --device choose the rest. In-process (main.main) for speed; a few runs as a
subprocess, as a user runs them."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import main
from lumen.engine.presets import PRESETS
from lumen.engine.presets.cnn import FULL_SIZE_PRESETS
from tests.support import one_line_error

ROOT = Path(__file__).resolve().parents[2]
# Names each family's steps carry, beyond "loss".
TERMS = {
    "classification": {"accuracy"},
    "forecast": set(),
    "seq2seq": {"accuracy"},
    "autoencoder": {"reconstruction"},
    "rbm": {"reconstruction", "free_energy"},
    "dbn": {"reconstruction", "free_energy", "layer"},
    "dbm": {"reconstruction"},
}


def train(*args, out):
    code = main.main(["train", *map(str, args), "--out", str(out)])
    assert code == 0
    with open(out / "steps.csv") as f:
        rows = list(csv.DictReader(f))
    return json.loads((out / "run.json").read_text()), rows


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.slow] if n in FULL_SIZE_PRESETS else []) for n in PRESETS]
)
def test_every_preset_trains_a_few_steps_on_its_own_dataset(name, tmp_path):
    torch.set_num_threads(1)
    info, rows = train(name, "--steps", "3", "--batch-size", "16", out=tmp_path / "run")
    preset = PRESETS[name]
    assert info["dataset"] == preset.dataset and info["objective"] == preset.objective
    assert len(rows) == 3
    assert {"loss"} | TERMS[preset.objective] <= set(rows[0]) - {"step", "epoch"}
    assert all(math.isfinite(float(value)) for row in rows for value in row.values() if value != "")
    assert all(math.isfinite(value) for value in info["final"].values())


@pytest.mark.parametrize(
    ("model", "data", "said"),
    [
        ("lstm_many_to_one", "recall", "head out_features 5 → 8; input 20×8 → 50×10"),
        ("lenet5", "shapes", "fc3 out_features 10 → 5; input 1×28×28 → 3×32×32"),
        ("gru_many_to_one", "adding", "head out_features 5 → 1; input 20×8 → 30×2"),
        ("vae", "shapes", "reshape shape 1×28×28 → 3×32×32"),
    ],
)
def test_another_dataset_resizes_the_model_and_says_so_in_one_line(model, data, said):
    from lumen.engine.presets import get_preset
    from lumen.engine.training.fit import load_run_data, plan_run

    loaded, preferred = load_run_data(get_preset(model), data)
    line = plan_run(get_preset(model), loaded, None, preferred).line()
    assert said in line and "\n" not in line


@pytest.mark.parametrize(
    ("model", "data"), [("lstm_many_to_one", "recall"), ("lenet5", "shapes"), ("lstm_encoder_decoder", "copy")]
)
def test_train_with_another_dataset_just_works(model, data, tmp_path):
    result = subprocess.run(
        [sys.executable, "main.py", "train", model, "--data", data, "--steps", "4", "--out", tmp_path / "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("lumen: fitted to the data: ")
    assert json.loads((tmp_path / "run" / "run.json").read_text())["dataset"] == data


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_optimizer_schedule_and_device_are_chosen_on_the_command_line(optimizer, tmp_path):
    info, rows = train(
        "rnn_many_to_one",
        "--optimizer",
        optimizer,
        "--schedule",
        "cosine",
        "--device",
        "cpu",
        "--epochs",
        "2",
        "--steps",
        "40",
        "--batch-size",
        "512",  # recall's 8,500 training sequences: 17 batches an epoch, so the 40 steps cross into epoch 2
        "--clip",
        "1",
        out=tmp_path / "run",
    )
    assert info["config"]["optimizer"] == optimizer and info["config"]["device"] == "cpu"
    assert float(rows[-1]["lr"]) < float(rows[0]["lr"])  # the cosine schedule has lowered it


def test_a_missing_device_and_a_bad_choice_are_one_line_errors(tmp_path):
    if not torch.cuda.is_available():
        result = subprocess.run(
            [sys.executable, "main.py", "train", "lenet5", "--device", "cuda", "--out", tmp_path / "r"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
        )
        one_line_error(result, "no CUDA device")
    result = subprocess.run(
        [sys.executable, "main.py", "train", "lenet5", "--optimizer", "lbfgs", "--out", tmp_path / "r"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "invalid choice: 'lbfgs'" in result.stderr


def test_truncate_trains_an_rnn_by_truncated_backpropagation_through_time(tmp_path):
    info, rows = train("gru_many_to_many", "--data", "sine", "--steps", "2", "--truncate", "10", out=tmp_path / "run")
    assert info["config"]["truncation"] == 10 and len(rows) == 2
    assert all(math.isfinite(float(row["loss"])) for row in rows)
