"""Opening a saved run in the engine's session (``OpenRun``): the run's spec with its weights, its class names, its
metrics and its checkpoints; each bad run folder is one message and the model before it stays."""

import json
from pathlib import Path

import pytest
import torch

from lumen.engine.events import (
    CheckpointList,
    EngineError,
    EpochMetrics,
    ModelLoaded,
    RunOpened,
    RunState,
    StatusChanged,
    StepMetrics,
)
from lumen.engine.graph.model import build_model
from lumen.engine.io.runs import RUN_FORMAT, import_run, read_history, save_run
from lumen.engine.io.store import RunStore
from lumen.engine.presets import get_preset
from lumen.engine.probes.feature_maps import FeatureMapFrame
from lumen.engine.runtime.commands import LoadModel, OpenRun, ProbeImage, Save, Train
from lumen.engine.runtime.session import Session
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.training.loop import TrainConfig
from tests.support import tiny_imagenet_spec

CONFIG = TrainConfig(epochs=1, max_steps=6, batch_size=16)


class Events(list):
    def of(self, kind):
        return [e for e in self if isinstance(e, kind)]


def session(checkpoint_every=2):
    events = Events()
    return Session(events.append, store=RunStore, checkpoint_every=checkpoint_every), events


def finish(s):
    while s.busy:
        s.work()


def trained_run(folder: Path) -> Path:
    """A LeNet-5 run folder as the window or ``train --out`` writes it: 6 steps, a checkpoint every 2 in the store."""
    s, _ = session()
    s.handle(LoadModel(get_preset("lenet5")))
    s.handle(Train(CONFIG))
    finish(s)
    s.handle(Save(folder))
    s.close()
    return folder


def test_a_trained_run_opens_with_its_weights_metrics_and_checkpoints(tmp_path):
    run = trained_run(tmp_path / "run")
    info = json.loads((run / "run.json").read_text())
    assert info["format"] == RUN_FORMAT and info["run_id"]
    s, events = session()
    s.handle(OpenRun(run))
    opened = events.of(RunOpened)[0]
    assert opened.run == info["run_id"] and opened.spec.name == "LeNet-5" and not opened.read_only
    assert [e.state for e in events.of(StatusChanged)] == [RunState.IDLE]
    assert "opened LeNet-5 from run (1 epoch) on mnist" in events.of(StatusChanged)[0].message
    steps = events.of(StepMetrics)
    assert [e.step for e in steps] == [1, 2, 3, 4, 5, 6] and len(events.of(EpochMetrics)) == 1
    listed = events.of(CheckpointList)[-1]
    assert listed.run == info["run_id"] and listed.steps[-1] == 6 and len(listed.steps) >= 3
    expected = build_model(ModelSpec.load(run / "model.json"))
    from lumen.engine.io.runs import load_weights

    load_weights(expected, run / "weights.safetensors")
    for name, tensor in expected.state_dict().items():
        assert torch.equal(s._model.state_dict()[name], tensor), name
    assert events.of(FeatureMapFrame)[-1].step == 6  # the probes show the opened weights at once, at their step
    s.close()


def test_continuing_keeps_the_weights_and_fresh_weights_do_not(tmp_path):
    run = trained_run(tmp_path / "run")
    s, events = session()
    s.handle(OpenRun(run))
    before = {k: v.clone() for k, v in s._model.state_dict().items()}
    config = TrainConfig(epochs=1, max_steps=1, batch_size=16, lr=1e-9, optimizer="sgd")  # a step that moves nothing
    s.handle(Train(config, keep_weights=True))
    finish(s)
    assert not events.of(EngineError)
    assert all(torch.allclose(s._model.state_dict()[k], v, atol=1e-6) for k, v in before.items())
    s.handle(Train(config))
    finish(s)
    assert not any(torch.allclose(s._model.state_dict()[k], v, atol=1e-6) for k, v in before.items() if v.numel() > 1)
    s.close()


def test_a_run_of_the_store_opens_by_its_id(tmp_path):
    run = trained_run(tmp_path / "run")
    run_id = json.loads((run / "run.json").read_text())["run_id"]
    with RunStore() as store:
        recorded = Path(store.run(run_id).folder) / "run.json"
    recorded.write_text(json.dumps({**json.loads(recorded.read_text()), "out": str(run)}))  # as train --out records
    s, events = session()
    s.handle(OpenRun(run_id))
    assert events.of(RunOpened)[0].folder == str(run)  # its run folder, which holds the final weights
    import shutil

    shutil.rmtree(run)  # gone: the newest checkpoint instead
    events.clear()
    s.handle(OpenRun(run_id))
    opened = events.of(RunOpened)[0]
    assert opened.run == run_id and opened.folder != str(run)
    assert len(events.of(StepMetrics)) == 6  # the store's metrics
    s.close()


def test_imported_weights_name_their_outputs_with_the_class_list(tmp_path):
    spec = tiny_imagenet_spec("tiny-imagenet-head")
    weights = tmp_path / "w.safetensors"
    from safetensors.torch import save_file

    save_file(build_model(spec).state_dict(), str(weights))
    run = import_run(spec, weights, tmp_path / "run", classes="imagenet")
    s, events = session()
    s.handle(OpenRun(run))
    assert events.of(RunOpened)[0].classes == 1000
    assert "inspected but not trained" in events.of(StatusChanged)[0].message  # 1000 outputs, not the data's
    s.handle(ProbeImage(torch.randint(0, 255, (20, 20, 3), dtype=torch.uint8).numpy(), "photo"))
    frame = events.of(FeatureMapFrame)[-1]
    names = [name for name, _ in frame.predictions]
    from lumen.engine.io.runs import class_list

    imagenet = set(class_list("imagenet"))
    assert names and all(name in imagenet for name in names)
    s.close()


def bad_runs(tmp_path):
    run = trained_run(tmp_path / "run")

    def newer(folder):
        info = json.loads((folder / "run.json").read_text())
        (folder / "run.json").write_text(json.dumps({**info, "format": RUN_FORMAT + 1}))

    def newer_spec(folder):
        spec = json.loads((folder / "model.json").read_text())
        (folder / "model.json").write_text(json.dumps({**spec, "version": 99}))

    def misfit(folder):
        spec = json.loads((folder / "model.json").read_text())
        for node in spec["nodes"]:
            if node["type"] == "linear":
                node["params"]["out_features"] = 7
        (folder / "model.json").write_text(json.dumps(spec))

    return run, {
        "not a run": (lambda folder: (folder / "model.json").unlink(), "is not a complete run folder"),
        "newer": (newer, "was written by a newer version of Lumen (run format 2"),
        "newer spec": (newer_spec, "was written by a newer version of Lumen (spec version 99"),
        "misfit": (misfit, "do not fit this model"),
    }


def test_each_bad_run_is_one_message_and_the_model_stays(tmp_path):
    import shutil

    run, cases = bad_runs(tmp_path)
    s, events = session()
    s.handle(LoadModel(get_preset("lenet5")))
    model = s._model
    for name, (spoil, message) in cases.items():
        folder = tmp_path / name
        shutil.copytree(run, folder)
        spoil(folder)
        events.clear()
        s.handle(OpenRun(folder))
        errors = events.of(EngineError)
        assert len(errors) == 1 and message in errors[0].message, (name, errors)
        assert s._model is model and not events.of(ModelLoaded)
    s.close()


def test_a_read_only_run_opens_and_says_so(tmp_path, monkeypatch):
    run = trained_run(tmp_path / "run")
    monkeypatch.setattr("lumen.engine.runtime.opening.writable", lambda folder: False)
    s, events = session()
    s.handle(OpenRun(run))
    assert events.of(RunOpened)[0].read_only and not events.of(EngineError)
    s.close()


def test_history_of_a_run_folder_reads_back_as_saved(tmp_path):
    history = [
        StepMetrics(1, 2, 1, {"loss": 1.0, "accuracy": 0.5}, 10.0),
        StepMetrics(2, 2, 1, {"loss": 0.5}, 10.0),
        EpochMetrics(1, 2, {"loss": 0.7}, {"loss": 0.6, "accuracy": 0.8}),
    ]
    spec = get_preset("lenet5")
    run = save_run(tmp_path / "run", spec, build_model(spec), history, {})
    back = read_history(run)
    assert [(e.step, dict(e.values)) for e in back if isinstance(e, StepMetrics)] == [
        (1, {"loss": 1.0, "accuracy": 0.5}),
        (2, {"loss": 0.5}),
    ]
    epoch = [e for e in back if isinstance(e, EpochMetrics)][0]
    assert (epoch.epoch, epoch.step, dict(epoch.train), dict(epoch.val)) == (1, 2, {"loss": 0.7}, history[2].val)
    (run / "steps.csv").write_text("garbage\n")
    assert not [e for e in read_history(run) if isinstance(e, StepMetrics)]


@pytest.mark.parametrize("kind", ["file", "missing"])
def test_a_path_that_is_no_folder_is_refused(tmp_path, kind):
    path = tmp_path / "x"
    if kind == "file":
        path.write_text("{}")
    s, events = session()
    s.handle(OpenRun(path))
    assert "is not a run folder" in events.of(EngineError)[0].message
    s.close()


def test_writable_tells_a_folder_files_can_be_made_in(tmp_path):
    from lumen.engine.io.runs import writable

    (tmp_path / "file").write_text("")
    assert writable(tmp_path) and not writable(tmp_path / "file") and not writable(tmp_path / "gone")
