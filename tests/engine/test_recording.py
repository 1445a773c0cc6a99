"""Recording a run: epoch-end checkpoints at most every ``floor_s`` seconds (short epochs made the store a tenth of
the worker's time), while checkpoints asked for — every N steps, now, the last one — are always written, and a
replay still finds them."""

import math

import pytest
import torch

from lumen.engine.events import EpochMetrics, StepMetrics
from lumen.engine.graph.model import build_model
from lumen.engine.io.store import RunStore, checkpoint_path, load_checkpoint
from lumen.engine.presets import get_preset
from lumen.engine.runtime.recording import CHECKPOINT_FLOOR_S, Recording
from lumen.engine.runtime.replay import CheckpointReplay, checkpoint_steps
from lumen.engine.training.fit import load_run_data, plan_run
from lumen.engine.training.loop import TrainConfig, Training


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _training(epochs=3, steps_per_epoch=8):
    """``lstm_many_to_one`` on ``recall`` in epochs of about ``steps_per_epoch`` batches (short, as in the window)."""
    spec = get_preset("lstm_many_to_one")
    data, preferred = load_run_data(spec, None)
    plan = plan_run(spec, data, preferred=preferred)
    config = TrainConfig(epochs=epochs, batch_size=math.ceil(len(data.train_x) / steps_per_epoch), seed=0)
    return Training(build_model(plan.spec), data, config, plan.objective), plan.spec


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path / "data") as opened:
        yield opened


def _recording(store, clock, **options):
    reports = []
    recording = Recording(lambda: store, lambda when, exc: reports.append((when, exc)), clock=clock, **options)
    return recording, reports


def _train(recording, training, clock, seconds_per_step, until=None):
    """Train, recording each event; the clock moves ``seconds_per_step`` a batch. Returns the epochs' end steps."""
    ends = []
    for event in training.steps():
        if isinstance(event, StepMetrics):
            clock.now += seconds_per_step
        recording.record(event, training)
        if isinstance(event, EpochMetrics):
            ends.append(event.step)
        if until is not None and training.step >= until:
            break
    return ends


def test_epoch_end_checkpoints_keep_the_floor_apart_and_the_last_is_always_written(store):
    clock = Clock()
    training, spec = _training(epochs=6)
    recording, reports = _recording(store, clock, floor_s=5.0)
    recording.start(spec, "recall", training, {})
    spe = training.steps_per_epoch
    ends = _train(recording, training, clock, seconds_per_step=2.0 / spe)  # an epoch every 2 s
    assert ends == [spe * k for k in range(1, 7)]
    folder = recording.recorder.folder
    # the first epoch's end, then the first end at least 5 s after the last checkpoint: epochs 1, 4 (6 s later)
    assert checkpoint_steps(folder) == (spe, 4 * spe)
    recording.close("finished", "done", training)  # the last one, however soon after the one before
    assert checkpoint_steps(folder) == (spe, 4 * spe, 6 * spe)
    assert store.run(recording.run_id).status == "finished" and not reports


def test_with_no_floor_every_epoch_end_is_checkpointed_as_before(store):
    clock = Clock()
    training, spec = _training(epochs=3)
    recording, _ = _recording(store, clock, floor_s=0.0)
    recording.start(spec, "recall", training, {})
    _train(recording, training, clock, seconds_per_step=0.001)
    spe = training.steps_per_epoch
    assert checkpoint_steps(recording.recorder.folder) == (spe, 2 * spe, 3 * spe)


def test_checkpoints_asked_for_are_never_held_back_by_the_floor(store):
    clock = Clock()
    training, spec = _training(epochs=4)
    spe = training.steps_per_epoch
    every = next(k for k in (3, 4, 5) if spe > k and spe % k)  # an epoch's end that is not one of them
    recording, _ = _recording(store, clock, checkpoint_every=every)  # the default floor; the clock barely moves
    assert recording.floor_s == CHECKPOINT_FLOOR_S > 0
    recording.start(spec, "recall", training, {})
    _train(recording, training, clock, seconds_per_step=0.001, until=spe + 1)
    folder = recording.recorder.folder
    asked = tuple(range(every, spe + 2, every))
    assert checkpoint_steps(folder) == asked  # every N steps; the first epoch's end came too soon after one of them
    recording.checkpoint(training)  # "Checkpoint now"
    recording.set_interval(0)  # back to epoch ends only
    _train(recording, training, clock, seconds_per_step=0.001, until=2 * spe + 1)
    now = tuple(sorted({*asked, spe + 1}))
    assert checkpoint_steps(folder) == now  # epoch 2's end: within the floor of the one asked for
    clock.now += CHECKPOINT_FLOOR_S
    _train(recording, training, clock, seconds_per_step=0.001, until=3 * spe)
    assert checkpoint_steps(folder) == (*now, 3 * spe)  # the floor has passed: epoch 3's end
    _train(recording, training, clock, seconds_per_step=0.001, until=3 * spe + 2)
    recording.close("stopped", "stopped", training)
    assert checkpoint_steps(folder)[-1] == 3 * spe + 2  # a stopped run's last state is kept, floor or not


def test_replay_reads_the_checkpoints_written_under_the_floor(store):
    clock = Clock()
    training, spec = _training(epochs=2)
    recording, _ = _recording(store, clock)
    recording.start(spec, "recall", training, {})
    _train(recording, training, clock, seconds_per_step=0.01)
    recording.close("finished", "done", training)
    folder = recording.recorder.folder
    steps = checkpoint_steps(folder)
    assert steps == (training.steps_per_epoch, 2 * training.steps_per_epoch)
    model = CheckpointReplay().load(folder, steps[0], recording.run_id)  # the model as it was at the first epoch
    tensors, meta = load_checkpoint(checkpoint_path(folder, steps[0]), "model/")
    assert meta["step"] == steps[0]
    for name, value in model.state_dict().items():
        assert torch.equal(value, tensors[f"model/{name}"])
