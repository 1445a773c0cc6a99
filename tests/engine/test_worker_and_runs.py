"""The engine's worker thread driven through its commands, with no QApplication; run folders."""

import json
import time

import numpy as np
import pytest
import torch

from lumen.engine.errors import DataError
from lumen.engine.events import EngineError, ModelLoaded, RunState, StepMetrics
from lumen.engine.graph.model import build_model
from lumen.engine.io.runs import load_weights, save_run
from lumen.engine.presets import get_preset
from lumen.engine.probes.attribution import AttributionFrame
from lumen.engine.probes.feature_maps import FeatureMapFrame
from lumen.engine.probes.gradients import GradientNormFrame
from lumen.engine.runtime.commands import WatchFrames
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.training.loop import TrainConfig
from tests.support import ask_too_much_when, state_is


def test_load_shows_an_untrained_frame_at_once(worker):
    frame = worker.recorder.wait_for(lambda e: isinstance(e, FeatureMapFrame))
    assert frame.step == 0 and frame.source == "validation digit #0" and len(frame.predictions) == 5


def test_pause_step_resume_stop(worker):
    rec = worker.recorder
    worker.train(TrainConfig(epochs=3))
    rec.wait_for(state_is(RunState.TRAINING))
    rec.wait_for(lambda e: isinstance(e, StepMetrics))
    worker.pause()
    paused = rec.wait_for(state_is(RunState.PAUSED))
    seen = rec.drain()
    steps_at_pause = max(e.step for e in seen if isinstance(e, StepMetrics))
    assert paused.message == f"paused at step {steps_at_pause}"  # commands act between batches
    rec.seen.clear()
    assert not [e for e in rec.drain(0.5) if isinstance(e, StepMetrics)]  # really paused
    worker.step_once()
    stepped = rec.wait_for(lambda e: isinstance(e, StepMetrics))
    assert stepped.step == steps_at_pause + 1
    rec.wait_for(lambda e: isinstance(e, FeatureMapFrame) and e.step == stepped.step)  # forced frame
    worker.resume()
    rec.wait_for(lambda e: isinstance(e, StepMetrics) and e.step > stepped.step + 3)
    worker.stop()
    finished = rec.wait_for(state_is(RunState.FINISHED))
    assert finished.message.startswith("stopped at step")
    rec.seen.clear()
    assert not [e for e in rec.drain(0.5) if isinstance(e, StepMetrics)]


def test_probes_of_frames_nobody_watches_are_skipped_until_watched(worker):
    rec = worker.recorder
    rec.wait_for(lambda e: isinstance(e, FeatureMapFrame))
    worker.submit(WatchFrames(frozenset({GradientNormFrame})))
    worker.train(TrainConfig(epochs=3, batch_size=16))
    # The watched one runs (due 0.25 s after its last run: wait for it rather than for a number of steps).
    rec.wait_for(lambda e: isinstance(e, GradientNormFrame) and e.step > 0, timeout=60)
    rec.wait_for(lambda e: isinstance(e, StepMetrics) and e.step >= 60, timeout=60)
    worker.pause()
    rec.wait_for(state_is(RunState.PAUSED))
    seen = rec.drain()
    assert not any(isinstance(e, (FeatureMapFrame, AttributionFrame)) and e.step > 0 for e in seen)
    worker.submit(WatchFrames(frozenset({FeatureMapFrame})))  # shown again while paused: made at once
    rec.seen.clear()
    frame = rec.wait_for(lambda e: isinstance(e, FeatureMapFrame))
    assert frame.step >= 60
    assert not any(isinstance(e, AttributionFrame) for e in rec.drain(0.3))
    worker.stop()


@pytest.mark.slow
def test_frames_are_throttled_at_the_source(worker):
    rec = worker.recorder
    worker.train(TrainConfig(epochs=1, frame_interval_s=0.25))
    began = time.monotonic()
    rec.wait_for(state_is(RunState.FINISHED), timeout=120)
    elapsed = time.monotonic() - began
    steps = [e for e in rec.seen if isinstance(e, StepMetrics)]
    frames = [e for e in rec.seen if isinstance(e, FeatureMapFrame) and e.step > 0]
    assert len(steps) == 71
    assert 1 <= len(frames) <= elapsed / 0.25 + 3  # ≤ 4 Hz plus the final frame, not one per step


def test_a_bad_spec_is_refused_and_the_loaded_model_stays(worker):
    rec = worker.recorder
    bad = ModelSpec.sequential("bad", (1, 28, 28), [("fc", "linear", {"out_features": 3})])
    worker.load_model(bad)
    error = rec.wait_for(lambda e: isinstance(e, EngineError))
    assert "fc: linear expects a flat input" in error.message
    worker.train(TrainConfig(epochs=1))
    assert "LeNet-5" in rec.wait_for(state_is(RunState.TRAINING)).message


def test_shutdown_mid_training_joins_promptly(worker):
    worker.train(TrainConfig(epochs=50))
    worker.recorder.wait_for(lambda e: isinstance(e, StepMetrics))
    began = time.monotonic()
    assert worker.shutdown(10)
    assert time.monotonic() - began < 2.0
    assert not worker.alive


def test_probe_image_is_prepared_and_shown(worker):
    rec = worker.recorder
    picture = torch.full((60, 40), 255, dtype=torch.uint8).numpy()
    picture[10:50, 18:22] = 0  # a dark vertical stroke on white
    worker.probe_image(picture, "one.png")
    frame = rec.wait_for(lambda e: isinstance(e, FeatureMapFrame) and e.source == "one.png")
    assert frame.image.shape == (28, 28) and frame.image.max() > 0.9 and frame.label is None
    worker.probe_image(torch.full((20, 20), 255, dtype=torch.uint8).numpy(), "blank.png")
    assert "looks blank" in rec.wait_for(lambda e: isinstance(e, EngineError)).message


def test_models_that_do_not_fit_the_data_are_inspected_not_trained(worker):
    rec = worker.recorder
    vector_model = ModelSpec.sequential("tabular", (8,), [("fc", "linear", {"out_features": 3})])
    worker.load_model(vector_model)
    loaded = rec.wait_for(state_is(RunState.IDLE))
    assert "takes 8 inputs" in loaded.message and "not trained" in loaded.message
    kind = rec.wait_for(lambda e: isinstance(e, ModelLoaded) and e.info.name == "tabular")
    assert FeatureMapFrame not in kind.frame_types  # no picture views for a vector model: none stale either
    assert kind.info.objective is None and GradientNormFrame not in kind.frame_types  # it cannot train
    worker.train(TrainConfig(epochs=1))
    assert "cannot train on mnist" in rec.wait_for(lambda e: isinstance(e, EngineError)).message
    worker.probe_image(np.full((20, 20), 128, np.uint8), "grey.png")
    assert "not images" in rec.wait_for(lambda e: isinstance(e, EngineError)).message

    colour_model = ModelSpec.sequential(
        "rgb",
        (3, 32, 32),
        [
            ("conv1", "conv2d", {"out_channels": 4, "kernel_size": 3}),
            ("flatten", "flatten", {}),
            ("fc", "linear", {"out_features": 10}),
        ],
    )
    worker.load_model(colour_model)
    rec.wait_for(state_is(RunState.IDLE))
    picture = np.zeros((40, 60, 4), np.uint8)
    picture[..., 0], picture[..., 3] = 200, 255
    worker.probe_image(picture, "red.png")
    frame = rec.wait_for(lambda e: isinstance(e, FeatureMapFrame) and e.source == "red.png")
    assert frame.layers[0].shape == (4, 30, 30) and frame.image.shape == (32, 32)


def test_run_folder_round_trip_and_refusals(tmp_path):
    torch.manual_seed(0)
    model = build_model(get_preset("lenet5"))
    save_run(tmp_path / "run", model.spec, model, [], {"dataset": "mnist"})
    again = build_model(ModelSpec.load(tmp_path / "run" / "model.json"))
    load_weights(again, tmp_path / "run" / "weights.safetensors")
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(again(x), model(x))

    other = build_model(
        ModelSpec.sequential(
            "small",
            (1, 28, 28),
            [
                ("conv1", "conv2d", {"out_channels": 3, "kernel_size": 5}),
                ("flatten", "flatten", {}),
                ("fc3", "linear", {"out_features": 10}),
            ],
        )
    )
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(
        DataError,
        match=r"do not fit this model: unexpected conv2.bias.*"
        r"conv1.weight is \(6, 1, 5, 5\), the model needs \(3, 1, 5, 5\)",
    ):
        load_weights(other, tmp_path / "run" / "weights.safetensors")
    assert all(torch.equal(v, before[k]) for k, v in other.state_dict().items())

    pickled = tmp_path / "evil.safetensors"
    torch.save({"conv1.weight": torch.zeros(1)}, pickled)  # a pickle, not safetensors
    with pytest.raises(DataError, match="not a readable safetensors file"):
        load_weights(other, pickled)


def test_run_csvs_take_their_columns_from_the_metric_names(tmp_path):
    from lumen.engine.events import EpochMetrics

    model = build_model(get_preset("lenet5"))
    history = [
        StepMetrics(1, 2, 1, {"loss": 0.5, "reconstruction": 0.25}, 10.0),
        StepMetrics(2, 2, 1, {"loss": 0.4, "reconstruction": 0.2, "kl": 0.1}, 10.0),
        EpochMetrics(1, 2, {"loss": 0.45, "kl": 0.1}, {"loss": 0.3, "kl": 0.05}),
    ]
    run = save_run(tmp_path / "run", model.spec, model, history, {"dataset": "mnist"})
    assert (run / "steps.csv").read_text().splitlines() == [
        "step,epoch,loss,reconstruction,kl",
        "1,1,0.5,0.25,",
        "2,1,0.4,0.2,0.1",
    ]
    assert (run / "metrics.csv").read_text().splitlines() == [
        "epoch,step,train_loss,train_kl,val_loss,val_kl",
        "1,2,0.45,0.1,0.3,0.05",
    ]
    assert json.loads((run / "run.json").read_text())["final"] == {"val_loss": 0.3, "val_kl": 0.05}


def test_a_diverging_run_pauses_with_the_last_good_weights_and_retries_the_batch(worker):
    rec = worker.recorder
    worker.train(TrainConfig(epochs=1, batch_size=16, optimizer="sgd", lr=1e8))  # nan at step 3 (seed 0)
    error = rec.wait_for(lambda e: isinstance(e, EngineError), timeout=60)
    paused = rec.wait_for(state_is(RunState.PAUSED))
    assert "the loss became nan at step 3 (epoch 1)" in error.message and "lower the learning rate" in error.message
    assert paused.message.startswith("paused: the loss became nan at step 3")
    steps = [e.step for e in rec.seen if isinstance(e, StepMetrics)]
    assert steps == [1, 2]  # the diverged step is not recorded
    weights = {name: p.detach().clone() for name, p in worker._session._model.named_parameters()}
    assert all(torch.isfinite(w).all() for w in weights.values())  # no update was made from the inf loss
    rec.seen.clear()
    worker.step_once()  # the same batch again, from the same weights: it diverges again, and pauses again
    again = rec.wait_for(lambda e: isinstance(e, EngineError))
    assert "at step 3 (epoch 1)" in again.message
    assert not [e for e in rec.drain(0.3) if isinstance(e, StepMetrics)]
    assert all(torch.equal(weights[n], p) for n, p in worker._session._model.named_parameters())
    worker.stop()
    assert rec.wait_for(state_is(RunState.FINISHED)).message.startswith("stopped at step 2")


def test_a_run_out_of_memory_pauses_with_a_message_and_goes_on_once_there_is_room(worker, monkeypatch):
    import lumen.engine.runtime.session as session_module

    greedy = {"armed": False}
    build = session_module.build_model

    def training_step(model):
        return greedy["armed"] and model.training and torch.is_grad_enabled()

    monkeypatch.setattr(session_module, "build_model", lambda spec: ask_too_much_when(build(spec), training_step))
    rec = worker.recorder
    greedy["armed"] = True
    worker.train(TrainConfig(epochs=1, batch_size=32))
    error = rec.wait_for(lambda e: isinstance(e, EngineError), timeout=60)
    paused = rec.wait_for(state_is(RunState.PAUSED))
    assert error.message.startswith("out of memory (batch size 32) at step 1 (epoch 1): paused with the last good")
    assert "smaller batch size" in error.message and paused.message == f"paused: {error.message}"
    greedy["armed"] = False  # memory was freed elsewhere: resuming tries the batch again, and the run goes on
    worker.resume()
    assert rec.wait_for(lambda e: isinstance(e, StepMetrics)).step == 1
    worker.stop()
    assert rec.wait_for(state_is(RunState.FINISHED)).message.startswith("stopped at step")
