"""The run store: SQLite in WAL mode, metrics written in batches, interrupted runs found, exact resume."""

import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
import torch

from lumen.engine.data.datasets import load_mnist
from lumen.engine.errors import DataError
from lumen.engine.events import EpochMetrics, StepMetrics
from lumen.engine.graph.model import build_model
from lumen.engine.io.store import RunRecorder, RunStore, data_dir, latest_checkpoint, load_checkpoint
from lumen.engine.presets import get_preset
from lumen.engine.probes.base import ProbeContext
from lumen.engine.probes.gradients import GradientNorms
from lumen.engine.probes.histograms import BINS, Histograms
from lumen.engine.runtime.history import MetricsHistory
from lumen.engine.training.loop import TrainConfig, Training
from lumen.engine.training.resume import restore_training, training_state


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path / "data") as opened:
        yield opened


def test_the_data_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LUMEN_DATA_DIR", str(tmp_path / "mine"))
    assert data_dir() == tmp_path / "mine"
    monkeypatch.delenv("LUMEN_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "lumen"


def test_the_index_is_sqlite_in_wal_mode(store):
    mode = store.db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert (store.folder / "runs.sqlite").is_file()


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _steps(n, epoch=1):
    return [StepMetrics(i, 100, epoch, {"loss": 1.0 / i, "accuracy": i / 100}, 1000.0) for i in range(1, n + 1)]


def test_metrics_are_written_in_batches_at_most_flush_s_apart(store):
    clock = Clock()
    row = store.new_run("lenet5", "mnist", "classification", 100)
    recorder = RunRecorder(store, row, flush_s=0.5, clock=clock)
    other = sqlite3.connect(store.folder / "runs.sqlite")  # another reader, as the GUI's runs list is

    def written():
        return other.execute("SELECT COUNT(*) FROM metrics WHERE run_id = ?", (row.id,)).fetchone()[0]

    for event in _steps(10):
        recorder.record(event)
    assert written() == 0  # buffered: no transaction per step
    clock.now = 0.6
    recorder.record(_steps(11)[-1])
    assert written() == 22  # the whole buffer in one go once flush_s has passed
    recorder.record(EpochMetrics(1, 11, {"loss": 0.5, "accuracy": 0.6}, {"loss": 0.4, "accuracy": 0.7}))
    recorder.close("finished", "done")
    assert written() == 26
    run = store.run(row.id)
    assert (run.status, run.step, run.best_name, run.best_value) == ("finished", 11, "val_accuracy", 0.7)
    steps, values = store.metric(row.id, "loss")
    assert steps == list(range(1, 12)) and values[0] == 1.0
    assert store.metric(row.id, "accuracy", "val") == ([11], [0.7])
    other.close()


def test_a_run_whose_process_died_is_marked_interrupted(store, tmp_path):
    row = store.new_run("lenet5", "mnist", "classification", 100)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    store.db.execute("UPDATE runs SET pid = ? WHERE id = ?", (int(dead.stdout), row.id))
    alive = store.new_run("lenet5", "mnist", "classification", 100)  # this process: still running
    with RunStore(store.folder) as reopened:
        assert reopened.run(row.id).status == "interrupted"
        assert reopened.run(alive.id).status == "running"
        shared = os.path.commonprefix([row.id, alive.id])  # the timestamp, and maybe a hex digit or two
        found = reopened.find(row.id[: len(shared) + 1])  # the shortest prefix only the dead run has
        assert (found.id, found.status) == (row.id, "interrupted")
        with pytest.raises(DataError, match="2 runs in the store match"):
            reopened.find(shared)


def test_export_csv_has_one_column_per_name(store, tmp_path):
    row = store.new_run("lenet5", "mnist", "classification", 100)
    recorder = RunRecorder(store, row)
    for event in _steps(3):
        recorder.record(event)
    recorder.record(EpochMetrics(1, 3, {"loss": 0.5}, {"loss": 0.4}))
    recorder.close("finished")
    lines = store.export_csv(row.id, tmp_path / "m.csv").read_text().splitlines()
    assert lines[0] == "phase,step,epoch,loss,accuracy"
    assert lines[1] == "step,1,1,1.0,0.01" and lines[-1] == "val,3,1,0.4,"


def _training(max_steps, seed=3):
    torch.manual_seed(seed)
    data = load_mnist()
    model = build_model(get_preset("lenet5"))
    config = TrainConfig(epochs=2, batch_size=64, seed=seed, max_steps=max_steps, schedule="step", step_epochs=1)
    return Training(model, data, config, "classification")


@pytest.mark.slow
def test_a_resumed_run_equals_an_uninterrupted_one(store):
    total = 0
    whole = _training(max_steps=0)
    spe = whole.steps_per_epoch
    stop_at = spe + 7  # mid-way through the second epoch
    events_whole = list(whole.steps())
    total = whole.step

    first = _training(max_steps=0)
    row = store.new_run("lenet5", "mnist", "classification", first.total_steps)
    recorder = RunRecorder(store, row)
    for event in first.steps():
        recorder.record(event)
        if isinstance(event, StepMetrics) and event.step == stop_at:
            recorder.checkpoint(*training_state(first))
            break  # "killed" after the checkpoint
    tensors, meta = load_checkpoint(latest_checkpoint(row.folder))
    assert meta["step"] == stop_at

    resumed = _training(max_steps=0)
    restore_training(resumed, tensors, meta)
    rest = list(resumed.steps())
    assert resumed.step == total
    assert [e.step for e in rest if isinstance(e, StepMetrics)][0] == stop_at + 1
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    last_whole = [e for e in events_whole if isinstance(e, EpochMetrics)][-1]
    last_resumed = [e for e in rest if isinstance(e, EpochMetrics)][-1]
    assert last_resumed.train == pytest.approx(last_whole.train, rel=1e-5)  # the epoch's sums carried over
    assert last_resumed.val == pytest.approx(last_whole.val, rel=1e-5)
    assert resumed.lr == pytest.approx(whole.lr)  # the schedule's state too


def test_gradient_norms_per_layer_after_a_batch():
    training = _training(max_steps=1)
    probe = GradientNorms()
    context = ProbeContext(training.model, None, (), 0)
    assert probe.frame(context) is None  # no backward yet
    next(training.steps())
    frame = probe.frame(ProbeContext(training.model, None, (), 1))
    assert frame.layers == ("conv1", "conv2", "fc1", "fc2", "fc3")
    assert (frame.norms > 0).all() and np.isfinite(frame.norms).all()
    assert frame.ratio == pytest.approx(frame.norms[0] / frame.norms[-1])
    grads = [p.grad for p in training.model.layers["conv1"].parameters()]
    assert frame.norms[0] == pytest.approx(float(torch.sqrt(sum((g**2).sum() for g in grads))), rel=1e-5)


def test_histograms_keep_their_range_while_values_fit():
    training = _training(max_steps=2)
    data = training.data
    probe = Histograms()
    from lumen.engine.probes.base import ProbeInput

    context = ProbeContext(training.model, ProbeInput(data.val_x[:1], "digit"), (), 0)
    first = probe.frame(context)
    assert [h.node for h in first.weights] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert first.weights[0].counts.shape == (BINS,)
    assert first.weights[0].counts.sum() == sum(p.numel() for p in training.model.layers["conv1"].parameters())
    assert len(first.activations) == 5
    next(training.steps())
    second = probe.frame(context)
    assert second.weights[0].limit == first.weights[0].limit  # the same bins: rows stack into an image


def test_the_history_is_compact_and_gives_the_events_back():
    history = MetricsHistory()
    events = _steps(3000)
    for event in events:
        history.append(event)
    history.append(StepMetrics(3001, 3001, 2, {"loss": 0.1, "lr": 0.01}, 5.0))
    history.append(EpochMetrics(1, 3001, {"loss": 0.5}, {"loss": 0.4}))
    back = history.events()
    assert back[:3000] == events and back[3000].values == {"loss": 0.1, "lr": 0.01}
    assert history.epochs[0].val == {"loss": 0.4} and len(history) == 3002


def test_no_stray_files_in_the_user_folder(store):
    assert os.environ.get("LUMEN_DATA_DIR")  # the test session's conftest points the data folder at a temp one
