"""``python main.py gates``: the gates and states of a run's recurrent modules for one sequence, as a .npz of
``<layer>.l<k>.<fwd|bwd>.<gate>`` arrays (time × batch × units) equal to ``capture_gates`` on the module itself;
bad input refused in one line with exit 1. Run folders are trained here (one short epoch) as a user makes them."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from lumen.engine.explain.gates import capture_gates
from lumen.engine.graph.model import build_model
from lumen.engine.io.runs import open_run, save_run
from lumen.engine.presets import get_preset
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.training.fit import load_run_data
from tests.support import lumen, one_line_error

ROOT = Path(__file__).resolve().parents[2]
TRAINED = ("lstm_many_to_one", "bilstm_many_to_many", "lstm_encoder_decoder", "rnn_many_to_many")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One run folder per preset of ``TRAINED``: one epoch of two batches, trained side by side."""
    folder = tmp_path_factory.mktemp("gates")
    env = {**os.environ, "LUMEN_DATA_DIR": str(tmp_path_factory.mktemp("lumen-data"))}
    paths = {name: folder / name for name in TRAINED}
    jobs = [
        subprocess.Popen(
            [sys.executable, "main.py", "train", name, "--epochs", "1", "--steps", "2", "--out", str(path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, path in paths.items()
    ]
    for job in jobs:
        _, err = job.communicate(timeout=120)
        assert job.returncode == 0, err
    return paths


def weight_prefixes(run: Path) -> set[str]:
    """The recurrent modules' names as the run's weights file spells them (the prefix of ``weight_ih_l0``)."""
    with safe_open(run / "weights.safetensors", "pt") as f:
        return {key.removesuffix(".weight_ih_l0") for key in f.keys() if key.endswith(".weight_ih_l0")}


def validation_sample(run: Path, index: int) -> torch.Tensor:
    spec = ModelSpec.load(run / "model.json")
    data, _ = load_run_data(spec, None)
    return data.val_x[index : index + 1]


def test_an_lstm_sample_gives_every_gate_equal_to_capture_gates(runs, tmp_path):
    run, out = runs["lstm_many_to_one"], tmp_path / "gates é.npz"
    result = lumen("gates", run, "--sample", 5, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "lstm1.rnn: LSTM, 1 layer, fwd" in result.stdout and "validation sample #5" in result.stdout
    assert weight_prefixes(run) == {"lstm1.rnn"}
    saved = np.load(out)
    x = validation_sample(run, 5)
    trace = capture_gates(open_run(run).get_submodule("lstm1.rnn"), x)
    expected = trace.named("lstm1.rnn")
    gates = {f"lstm1.rnn.l0.fwd.{gate}" for gate in "ifgoch"}
    assert set(saved.files) == gates | {"lstm1.rnn.input"}
    steps, features = x.shape[1], x.shape[2]
    assert saved["lstm1.rnn.input"].shape == (steps, 1, features)
    np.testing.assert_array_equal(saved["lstm1.rnn.input"], x.transpose(0, 1).numpy())
    for name in gates:
        assert saved[name].shape == (steps, 1, 32) and saved[name].dtype == np.float32
        np.testing.assert_allclose(saved[name], expected[name], rtol=0, atol=1e-6)


def test_a_bidirectional_lstm_has_backward_arrays_for_typed_text(runs, tmp_path):
    run, out = runs["bilstm_many_to_many"], tmp_path / "gates.npz"
    result = lumen("gates", run, "--text", "(()())", "--out", out)  # brackets: the vocabulary is "(" and ")"
    assert result.returncode == 0, result.stderr
    saved = np.load(out)
    names = {f"lstm1.rnn.l0.{d}.{gate}" for d in ("fwd", "bwd") for gate in "ifgoch"}
    assert set(saved.files) == names | {"lstm1.rnn.input"}
    x = saved["lstm1.rnn.input"]
    assert x.shape == (6, 1, 2)
    np.testing.assert_array_equal(x[:, 0].argmax(axis=1), [0, 0, 1, 0, 1, 1])  # one-hot over "(" ")"
    expected = capture_gates(open_run(run).get_submodule("lstm1.rnn"), torch.from_numpy(x).transpose(0, 1))
    for name in names:
        assert saved[name].shape == (6, 1, 32)
        np.testing.assert_allclose(saved[name], expected.named("lstm1.rnn")[name], rtol=0, atol=1e-6)
    # The backward direction's arrays are in true time: its last step is the first it saw, from a zero state.
    c = saved["lstm1.rnn.l0.bwd.c"][-1]
    np.testing.assert_allclose(c, (saved["lstm1.rnn.l0.bwd.i"] * saved["lstm1.rnn.l0.bwd.g"])[-1], atol=1e-6)


def test_each_module_gets_what_flows_into_it_inside_the_model(runs, tmp_path):
    """The decoder of an encoder–decoder receives the encoder's summary repeated, not the model's input."""
    run, out = runs["lstm_encoder_decoder"], tmp_path / "gates.npz"
    result = lumen("gates", run, "--sample", 0, "--out", out)
    assert result.returncode == 0, result.stderr
    assert weight_prefixes(run) == {"encoder.rnn", "decoder.rnn"}
    saved = np.load(out)
    model = open_run(run).eval()
    x = validation_sample(run, 0)
    with torch.no_grad():
        _, inner = model.forward_recording(x, ["repeat"])
    for layer, received in (("encoder.rnn", x), ("decoder.rnn", inner["repeat"])):
        np.testing.assert_allclose(saved[f"{layer}.input"], received.transpose(0, 1).numpy(), atol=1e-6)
        expected = capture_gates(model.get_submodule(layer), received).named(layer)
        for name, array in expected.items():
            np.testing.assert_allclose(saved[name], array, rtol=0, atol=1e-6)


def test_a_csv_sequence_gives_one_step_per_row(runs, tmp_path):
    csv, out = tmp_path / "wave.csv", tmp_path / "gates.npz"
    csv.write_text("value\n" + "\n".join(f"{np.sin(t / 3):.4f}" for t in range(30)) + "\n")
    result = lumen("gates", runs["rnn_many_to_many"], "--sequence", csv, "--out", out)
    assert result.returncode == 0, result.stderr
    saved = np.load(out)
    assert set(saved.files) == {"rnn1.rnn.l0.fwd.a", "rnn1.rnn.l0.fwd.h", "rnn1.rnn.input"}
    assert saved["rnn1.rnn.input"].shape == (30, 1, 1) and saved["rnn1.rnn.l0.fwd.h"].shape == (30, 1, 32)
    np.testing.assert_allclose(saved["rnn1.rnn.l0.fwd.h"], np.tanh(saved["rnn1.rnn.l0.fwd.a"]), atol=1e-6)


def test_bad_input_is_refused_in_one_line_and_writes_nothing(runs, tmp_path):
    out = tmp_path / "gates.npz"
    flat = tmp_path / "lenet"
    spec = get_preset("lenet5")
    save_run(flat, spec, build_model(spec), [], {"dataset": "mnist"})
    one_line_error(
        lumen("gates", flat, "--sample", 0, "--out", out),
        "has no recurrent layer (LSTM, GRU or RNN) to look inside",
    )
    wide = tmp_path / "wide.csv"
    wide.write_text("1,2,3\n4,5,6\n")
    one_line_error(
        lumen("gates", runs["rnn_many_to_many"], "--sequence", wide, "--out", out), "wide.csv has 3 columns", "takes 1"
    )
    one_line_error(lumen("gates", runs["lstm_many_to_one"], "--text", "", "--out", out), "the text is empty")
    one_line_error(
        lumen("gates", runs["lstm_many_to_one"], "--text", "ABxC", "--out", out),
        "'x' is not in the vocabulary",
        "ABCDEFGH!?",
    )
    one_line_error(
        lumen("gates", runs["rnn_many_to_many"], "--text", "abc", "--out", out), "text is for character models"
    )
    one_line_error(
        lumen("gates", runs["lstm_many_to_one"], "--sample", 1_000_000, "--out", out),
        "--sample 1,000,000 is out of range",
    )
    result = lumen("gates", runs["lstm_many_to_one"], "--sample", 0, "--text", "A", "--out", out)
    one_line_error(result, "not allowed with argument", status=2)
    assert not out.exists() and not list(tmp_path.glob(".gates.npz*"))
