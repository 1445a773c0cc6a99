"""``lumen.watch`` without a window: the watched session's probes, commands and budget, and a recorded run (a run
folder and the run store's row) left by a script that ends; the script's process never loads Qt."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
from torch import nn

from lumen.engine.events import EngineError, EpochMetrics, ModelLoaded, StepMetrics
from lumen.engine.io.runs import open_run, read_run_info
from lumen.engine.io.store import RunStore
from lumen.engine.probes.feature_maps import FeatureMapFrame
from lumen.engine.probes.gates import GateFrame
from lumen.engine.probes.gradients import GradientNormFrame
from lumen.engine.runtime.commands import ConfigureProbe, ProbeSample, Stop, WatchFrames
from lumen.engine.runtime.watched import ScriptEnded, WatchedSession, WatchStarted, describe_spec, run_spec
from lumen.engine.spec.model_spec import ModelSpec
from tests.support import ROOT


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(5, 6, batch_first=True)
        self.head = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0][:, -1])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_frames_only_for_what_the_window_shows_and_within_the_interval():
    events: list = []
    clock = Clock()
    model = cnn()
    session = WatchedSession(model, events.append, torch.rand(4, 1, 8, 8), clock=clock)
    session.start()
    assert isinstance(events[0], WatchStarted) and events[0].inputs == 4
    assert [r.output for r in events[0].layers] == ["4×8×8", "4×8×8", "256", "3"]
    loaded = next(e for e in events if isinstance(e, ModelLoaded))
    assert loaded.info.classifier and {FeatureMapFrame, GradientNormFrame} <= loaded.frame_types
    session.handle(WatchFrames(frozenset({FeatureMapFrame})))
    events.clear()
    for _ in range(3):  # no time passes: the maps made at the start are not due again until the interval is over
        session.step({"loss": 1.0})
    assert [type(e) for e in events].count(FeatureMapFrame) == 0
    clock.now += 1.1
    session.step({"loss": 0.5})
    assert [type(e) for e in events].count(FeatureMapFrame) == 1
    assert not any(isinstance(e, GradientNormFrame) for e in events)  # not shown: not made
    steps = [e for e in events if isinstance(e, StepMetrics)]
    assert [s.step for s in steps] == [1, 2, 3, 4] and steps[-1].values == {"loss": 0.5}


def test_commands_a_probe_input_and_refusals():
    events: list = []
    session = WatchedSession(cnn(), events.append, (torch.rand(3, 1, 8, 8), torch.tensor([0, 2, 1])), classes="abc")
    session.start()
    events.clear()
    session.handle(ProbeSample(5))  # wraps: 5 % 3
    frame = next(e for e in events if isinstance(e, FeatureMapFrame))
    assert frame.source == "probe input #2 of 3" and frame.label == "b"
    session.handle(ConfigureProbe("feature maps", "not settings"))
    session.handle(Stop())
    errors = [e.message for e in events if isinstance(e, EngineError)]
    assert any("takes FeatureMapSettings" in m for m in errors) and any("cannot Stop" in m for m in errors)


def test_a_recurrent_model_gets_its_gates():
    events: list = []
    session = WatchedSession(Recurrent(), events.append, torch.rand(2, 7, 5))
    assert session.info.family == "recurrent" and GateFrame in session.frame_types
    session.start()
    gates = next(e for e in events if isinstance(e, GateFrame))
    assert gates.layer == "lstm" and gates.maps["l0.fwd.f"].shape == (7, 6)
    assert isinstance(session.finish("done"), ScriptEnded)


def test_a_described_spec_loads_and_says_what_it_is(tmp_path):
    spec = describe_spec(cnn(), "Sequential", (1, 8, 8))
    again = ModelSpec.from_json(spec.to_json())
    assert [n.type for n in again.nodes][:2] == ["input", "torch.nn.modules.conv.Conv2d"]
    assert again.nodes[1].id == "m0" and "Conv2d(1, 4" in again.nodes[1].params["module"]
    session = WatchedSession(cnn(), lambda e: None, torch.rand(1, 1, 8, 8))
    for _ in range(3):
        session.step({"loss": 2.0})
    info = read_run_info(session.save(tmp_path / "run"))
    assert info["watched"] and info["steps"] == 3


def test_an_epoch_is_its_steps_means_beside_the_validation_the_script_measured():
    events: list = []
    session = WatchedSession(cnn(), events.append, torch.rand(2, 1, 8, 8), frames=False)
    for loss in (1.0, 3.0):
        session.step({"loss": loss, "accuracy": 0.5})
    first = session.end_epoch({"loss": 1.5, "accuracy": 0.75})
    session.step({"loss": 0.2, "accuracy": float("nan")})
    second = session.end_epoch({})
    assert first == EpochMetrics(1, 2, {"loss": 2.0, "accuracy": 0.5}, {"loss": 1.5, "accuracy": 0.75})
    assert second == EpochMetrics(2, 3, {"loss": 0.2}, {})  # a NaN step is left out of the mean
    assert [e.epoch for e in events if isinstance(e, StepMetrics)] == [1, 1, 2]
    assert [e for e in events if isinstance(e, EpochMetrics)] == [first, second]


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) if x.sum() > 0 else -self.fc(x)


def test_a_traceable_module_is_saved_as_a_lumen_spec_that_opens_and_gives_its_outputs(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3))
    model.train()
    session = WatchedSession(model, lambda e: None, torch.rand(2, 1, 8, 8), frames=False)
    assert model.training and model[1].num_batches_tracked.item() == 0  # the trace moved no statistics
    assert [n.type for n in session.spec().nodes] == ["input", "conv2d", "batchnorm2d", "relu", "flatten", "linear"]
    session.step({"loss": 1.0})
    opened = open_run(session.save(tmp_path / "run")).eval()
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(opened(x), model.eval()(x), atol=1e-6)
    assert run_spec(Branchy(), "Branchy", (4,)).nodes[1].type.startswith("torch.nn")  # described instead


def test_a_headless_script_leaves_a_complete_run_and_never_loads_qt(tmp_path, lumen_data_dir):
    out = tmp_path / "run"
    script = ROOT / "tests" / "data" / "watch_script.py"
    result = subprocess.run(
        [sys.executable, str(script), "0", "40", "--headless", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # nothing said: no window was asked for
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["steps"] == 40 and report["qt"] is False
    info = read_run_info(out)
    assert info["watched"] and info["steps"] == 40 and info["weights_step"] == 40
    assert (out / "steps.csv").read_text().splitlines()[0] == "step,epoch,loss,accuracy"
    with RunStore(lumen_data_dir) as store:
        row = store.run(report["run"])
        assert row.status == "finished" and row.step == 40 and row.data == "your loop"
        steps, losses = store.metric(row.id, "loss")
        assert steps == list(range(1, 41)) and len(losses) == 40
