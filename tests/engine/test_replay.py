"""Replaying the viewer's probes over a run's checkpoints: the frames equal those of a model loaded with the
checkpoint's weights by hand, the live model is untouched, and a bad checkpoint is one clear message."""

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lumen.engine.events import CheckpointList, EngineError, RunState, StatusChanged, StepMetrics
from lumen.engine.graph.model import build_model
from lumen.engine.io.store import RunStore, checkpoint_path
from lumen.engine.presets import get_preset
from lumen.engine.probes.attribution import AttributionFrame
from lumen.engine.probes.feature_maps import FeatureMapFrame
from lumen.engine.probes.filters import FilterFrame
from lumen.engine.runtime.commands import ListCheckpoints, Pause, ReplayCheckpoint, Resume, Step, Train
from lumen.engine.runtime.worker import EngineWorker
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.training.fit import load_run_data
from lumen.engine.training.loop import TrainConfig
from tests.support import Recorder, state_is

CONFIG = TrainConfig(epochs=1, max_steps=6, batch_size=16)


def started(store=RunStore, start=True):
    recorder = Recorder()
    w = EngineWorker(recorder, torch_threads=1, store=store, checkpoint_every=2)
    w.recorder = recorder
    w.load_model(get_preset("lenet5"))
    if start:
        w.start()
        recorder.wait_for(state_is(RunState.IDLE))
    return w


@pytest.fixture
def trained():
    """A worker whose recorded LeNet-5 run trained 6 steps with a checkpoint every 2."""
    w = started()
    w.train(CONFIG)
    w.recorder.wait_for(state_is(RunState.FINISHED), timeout=60)
    yield w
    assert w.shutdown(10)


def folder_of(run_id):
    with RunStore() as store:
        return Path(store.run(run_id).folder)


def reference_maps(folder, step, layers):
    """The layers' outputs for validation digit #0, from a model built here with the checkpoint's weights loaded
    by hand (safetensors, state dict, forward hooks)."""
    spec = ModelSpec.load(folder / "model.json")
    model = build_model(spec).eval()
    tensors = load_file(str(checkpoint_path(folder, step)))
    model.load_state_dict({k.removeprefix("model/"): v for k, v in tensors.items() if k.startswith("model/")})
    data, _ = load_run_data(spec, None)
    seen = {}
    hooks = [
        model.get_submodule(name).register_forward_hook(lambda _m, _i, out, name=name: seen.__setitem__(name, out))
        for name in layers
    ]
    try:
        with torch.no_grad():
            model(data.val_x[0:1])
    finally:
        for hook in hooks:
            hook.remove()
    return {name: seen[name][0].numpy() for name in layers}


def replayed(w, step, frame_type=FeatureMapFrame, run=None):
    w.submit(ReplayCheckpoint(step, run))
    return w.recorder.wait_for(lambda e: isinstance(e, frame_type) and e.checkpoint_step == step)


def test_replayed_feature_maps_equal_those_of_the_checkpoints_weights(trained):
    lists = [e for e in trained.recorder.drain() if isinstance(e, CheckpointList)]
    assert lists and lists[-1].live and lists[-1].steps == (2, 4, 6) and lists[-1].run == trained.run_id
    folder = folder_of(trained.run_id)
    shown = {}
    for step in (2, 6):
        frame = replayed(trained, step)
        assert frame.step == step and frame.source == "validation digit #0"
        layers = [m.node for m in frame.layers]
        assert layers == ["conv1", "conv2"]
        expected = reference_maps(folder, step, layers)
        for maps in frame.layers:
            np.testing.assert_allclose(maps.maps, expected[maps.node], rtol=1e-5, atol=1e-6)
        shown[step] = frame
    assert not np.allclose(shown[2].layers[0].maps, shown[6].layers[0].maps)
    # Filters and attribution are replayed too, marked with the step.
    trained.submit(ReplayCheckpoint(4))
    trained.recorder.wait_for(lambda e: isinstance(e, FilterFrame) and e.checkpoint_step == 4)  # the last probe
    attributions = [e for e in trained.recorder.seen if isinstance(e, AttributionFrame) and e.checkpoint_step == 4]
    assert len(attributions) == 1 and attributions[0].maps and attributions[0].progress is None


def test_the_live_run_goes_on_untouched_while_a_checkpoint_is_replayed():
    w = started()
    try:
        w.submit(Train(TrainConfig(epochs=1, max_steps=8, batch_size=16)))
        w.submit(Pause())
        w.recorder.wait_for(state_is(RunState.PAUSED))
        for _ in range(4):
            w.submit(Step())
        w.recorder.wait_for(lambda e: isinstance(e, CheckpointList) and e.steps == (2, 4))
        frame = replayed(w, 2)
        assert frame.checkpoint_step == 2
        w.probe_sample(0)  # the live model's maps again: those of step 4, not of the replayed step 2
        live = w.recorder.wait_for(lambda e: isinstance(e, FeatureMapFrame) and e.checkpoint_step is None)
        assert live.step == 4
        expected = reference_maps(folder_of(w.run_id), 4, ["conv1"])["conv1"]
        np.testing.assert_allclose(live.layers[0].maps, expected, rtol=1e-5, atol=1e-6)
        w.submit(Resume())
        done = w.recorder.wait_for(state_is(RunState.FINISHED), timeout=60)
        assert done.message.startswith("finished")
        steps = [e.step for e in w.recorder.seen if isinstance(e, StepMetrics)]
        assert steps == list(range(1, 9))
    finally:
        assert w.shutdown(10)


def test_a_missing_or_corrupt_checkpoint_is_one_clear_message(trained):
    trained.recorder.drain()
    trained.submit(ReplayCheckpoint(3))
    error = trained.recorder.wait_for(lambda e: isinstance(e, EngineError))
    assert error.message == (
        f"cannot replay checkpoint step 3: run {trained.run_id} has no checkpoint at step 3 (it has: 2, 4, 6)"
    )
    checkpoint_path(folder_of(trained.run_id), 4).write_bytes(b"not a safetensors file")
    trained.submit(ReplayCheckpoint(4))
    error = trained.recorder.wait_for(lambda e: isinstance(e, EngineError))
    assert error.message.startswith("cannot replay checkpoint step 4: cannot read the checkpoint")
    trained.submit(ListCheckpoints("no-such-run"))
    error = trained.recorder.wait_for(lambda e: isinstance(e, EngineError))
    assert "no-such-run" in error.message
    before = len(trained.recorder.seen)
    after = trained.recorder.drain()[before:]
    assert not [e for e in after if isinstance(e, (EngineError, StatusChanged))]  # one message each, no state change
    assert replayed(trained, 6).checkpoint_step == 6  # and replay still works


def test_only_the_newest_of_waiting_replays_is_made(trained):
    folder = folder_of(trained.run_id)
    other = started(start=False)  # commands queue up before its thread runs: a slider dragged while it is busy
    for step in (2, 4, 6, 2, 4):
        other.submit(ReplayCheckpoint(step, folder))
    other.start()
    try:
        frame = other.recorder.wait_for(lambda e: isinstance(e, FeatureMapFrame) and e.checkpoint_step is not None)
        assert frame.checkpoint_step == 4
        replays = [e for e in other.recorder.drain() if getattr(e, "checkpoint_step", None) is not None]
        assert sorted(type(e).__name__ for e in replays) == ["AttributionFrame", "FeatureMapFrame", "FilterFrame"]
        assert {e.checkpoint_step for e in replays} == {4}
        listed = [e for e in other.recorder.seen if isinstance(e, CheckpointList)]
        assert listed == [CheckpointList(folder.name, (2, 4, 6), live=False)]
    finally:
        assert other.shutdown(10)
